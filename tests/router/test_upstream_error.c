/* SPDX-License-Identifier: MIT
 * Reading providers' error bodies and Retry-After values.
 */
#include <string.h>

#include "core/utf8.h"
#include "router/upstream_error.h"
#include "t.h"

/* Valid UTF-8 with no control character, no leading or trailing space. */
static int clean_line(const char *s)
{
    size_t len = strlen(s);
    if (len && (s[0] == ' ' || s[len - 1] == ' '))
        return 0;
    for (size_t i = 0; i < len;) {
        size_t n = kz_utf8_seq_len(s + i, len - i);
        if (n == 0 || (n == 1 && ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)) ||
            (n == 2 && (unsigned char)s[i] == 0xC2 && (unsigned char)s[i + 1] < 0xA0))
            return 0;
        i += n;
    }
    return 1;
}

static void read_body(const char *body, size_t len, char *msg, size_t msg_size, char *type, size_t type_size)
{
    kz_upstream_error_text(body, len, msg, msg_size, type, type_size);
    T_OK(clean_line(msg), "message is one clean line: '%s'", msg);
    T_OK(clean_line(type), "type is one clean line: '%s'", type);
}

static void dialects(void)
{
    static const struct {
        const char *body, *msg, *type;
    } cases[] = {
        /* OpenAI: the documented invalid-key error (OpenAI error codes guide) */
        {"{\"error\": {\"message\": \"Incorrect API key provided: sk-abc. You can find your API key at "
         "https://platform.openai.com/account/api-keys.\", \"type\": \"invalid_request_error\", \"param\": null, "
         "\"code\": \"invalid_api_key\"}}",
         "Incorrect API key provided: sk-abc. You can find your API key at https://platform.openai.com/account/api-keys.",
         "invalid_request_error"},
        {"{\"error\":{\"message\":\"You exceeded your current quota.\",\"type\":\"insufficient_quota\",\"param\":null,"
         "\"code\":\"insufficient_quota\"}}",
         "You exceeded your current quota.", "insufficient_quota"},
        /* Azure OpenAI: a code, no type */
        {"{\"error\":{\"code\":\"429\",\"message\":\"Requests to the ChatCompletions_Create Operation have exceeded "
         "call rate limit.\"}}",
         "Requests to the ChatCompletions_Create Operation have exceeded call rate limit.", "429"},
        /* Anthropic ("Errors" page shape) */
        {"{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"},"
         "\"request_id\":\"req_1\"}",
         "Overloaded", "overloaded_error"},
        /* Bedrock */
        {"{\"message\":\"Too many requests, please wait before trying again.\"}",
         "Too many requests, please wait before trying again.", ""},
        {"{\"Message\":\"User: arn:aws:iam::123:user/x is not authorized to perform: bedrock:InvokeModel\"}",
         "User: arn:aws:iam::123:user/x is not authorized to perform: bedrock:InvokeModel", ""},
        {"{\"__type\":\"com.amazon.coral.validate#ValidationException\",\"message\":\"Malformed input request\"}",
         "Malformed input request", "ValidationException"},
        {"{\"__type\":\"ThrottlingException:http://internal.amazon.com/coral/\",\"message\":\"slow down\"}",
         "slow down", "ThrottlingException"},
        /* servers speaking OpenAI loosely */
        {"{\"object\":\"error\",\"message\":\"max_tokens is too large\",\"type\":\"BadRequestError\",\"code\":400}",
         "max_tokens is too large", "BadRequestError"},
        {"{\"error\":\"model 'llama9' not found\"}", "model 'llama9' not found", ""},
        {"{\"detail\":\"Not Found\"}", "Not Found", ""},
        /* control characters and invisible reordering characters */
        {"{\"error\":{\"message\":\"line one\\n\\tline two\\r\\n  \\u202eevil\\u0007\",\"type\":\"x\\ny\"}}",
         "line one line two evil", "x y"},
        /* a known shape without a message: the body itself is quoted */
        {"{\"error\":{\"message\":null,\"type\":\"server_error\"}}",
         "{\"error\":{\"message\":null,\"type\":\"server_error\"}}", "server_error"},
        /* not JSON at all */
        {"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
         "Gateway</h1></center>\r\n</body>\r\n</html>\r\n",
         "<html> <head><title>502 Bad Gateway</title></head> <body> <center><h1>502 Bad Gateway</h1></center> </body> "
         "</html>",
         ""},
        {"upstream connect error or disconnect/reset before headers. reset reason: overflow",
         "upstream connect error or disconnect/reset before headers. reset reason: overflow", ""},
        {"[1,2,3]", "[1,2,3]", ""},
        {"", "empty response body", ""},
        {"\x01\x02\r\n\t ", "unreadable response body", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[512], type[64];
        read_body(cases[i].body, strlen(cases[i].body), msg, sizeof msg, type, sizeof type);
        T_EQ_STR(msg, cases[i].msg);
        T_EQ_STR(type, cases[i].type);
    }
    char msg[64] = "x", type[64] = "x";
    kz_upstream_error_text(NULL, 10, msg, sizeof msg, type, sizeof type);
    T_EQ_STR(msg, "empty response body");
    T_EQ_STR(type, "");
}

static void raw_limits(void)
{
    char body[1000], msg[512], type[32];
    /* long text: the first KZ_UPSTREAM_RAW_MAX bytes */
    memset(body, 'a', sizeof body);
    read_body(body, sizeof body, msg, sizeof msg, type, sizeof type);
    T_EQ_INT(strlen(msg), KZ_UPSTREAM_RAW_MAX);

    /* a character straddling the limit is left out whole, not cut */
    memset(body, 'b', KZ_UPSTREAM_RAW_MAX - 1);
    memcpy(body + KZ_UPSTREAM_RAW_MAX - 1, "\xC3\xA9 tail", 7);
    read_body(body, KZ_UPSTREAM_RAW_MAX + 6, msg, sizeof msg, type, sizeof type);
    T_EQ_INT(strlen(msg), KZ_UPSTREAM_RAW_MAX - 1);

    /* binary garbage: every byte value, twice */
    for (size_t i = 0; i < 512; i++)
        body[i] = (char)(i * 7 + 3);
    read_body(body, 512, msg, sizeof msg, type, sizeof type);
    T_OK(msg[0] != '\0', "something readable comes out");
    T_OK(strstr(msg, "\xEF\xBF\xBD") != NULL, "invalid bytes shown as U+FFFD");
    T_EQ_STR(type, "");

    /* invalid UTF-8 in an otherwise plain body */
    const char *latin1 = "caf\xE9 ferm\xE9";
    read_body(latin1, strlen(latin1), msg, sizeof msg, type, sizeof type);
    T_EQ_STR(msg, "caf\xEF\xBF\xBD ferm\xEF\xBF\xBD");
}

static void small_buffers(void)
{
    const char *body = "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"h\xC3\xA9llo w\xC3\xB6rld\"}}";
    char msg[16], type[8];
    /* cut at a character boundary: "héllo" is 6 bytes, "héllo wö" would be 10 */
    read_body(body, strlen(body), msg, 10, type, sizeof type);
    T_EQ_STR(msg, "h\xC3\xA9llo w");
    T_EQ_STR(type, "rate_li");
    read_body(body, strlen(body), msg, 1, type, 1);
    T_EQ_STR(msg, "");
    T_EQ_STR(type, "");
    /* size 0: not written at all */
    memcpy(msg, "untouched", 10);
    memcpy(type, "same", 5);
    kz_upstream_error_text(body, strlen(body), msg, 0, type, 0);
    T_EQ_STR(msg, "untouched");
    T_EQ_STR(type, "same");
}

/* 06 Nov 1994 08:49:37 GMT, the example date of RFC 9110 section 5.6.7. */
#define RFC_DATE 784111777L

static long ra(const char *v, int ms, long now) { return kz_retry_after_ms(v, v ? strlen(v) : 0, ms, now); }

static void retry_after_seconds(void)
{
    T_EQ_INT(ra("120", 0, 0), 120000);
    T_EQ_INT(ra(" \t5 ", 0, 0), 5000);
    T_EQ_INT(ra("0", 0, 0), 0);
    T_EQ_INT(ra("1.5", 0, 0), 1500);
    T_EQ_INT(ra("0.0015", 0, 0), 1);
    T_EQ_INT(ra("3600", 0, 0), KZ_RETRY_AFTER_MAX_MS);
    T_EQ_INT(ra("3601", 0, 0), KZ_RETRY_AFTER_MAX_MS);
    T_EQ_INT(ra("99999999999999999999999999999999", 0, 0), KZ_RETRY_AFTER_MAX_MS);
    T_EQ_INT(ra("99999999999999999999999999999999.999", 0, 0), KZ_RETRY_AFTER_MAX_MS);
    /* only len bytes count */
    T_EQ_INT(kz_retry_after_ms("12345", 2, 0, 0), 12000);
    /* retry-after-ms */
    T_EQ_INT(ra("1500", 1, 0), 1500);
    T_EQ_INT(ra("250.7", 1, 0), 250);
    T_EQ_INT(ra("5000000", 1, 0), KZ_RETRY_AFTER_MAX_MS);
    T_EQ_INT(ra("Sun, 06 Nov 1994 08:49:37 GMT", 1, RFC_DATE), -1);
}

static void retry_after_dates(void)
{
    /* the three forms RFC 9110 makes recipients accept, 30 s ahead */
    T_EQ_INT(ra("Sun, 06 Nov 1994 08:49:37 GMT", 0, RFC_DATE - 30), 30000);
    T_EQ_INT(ra("Sunday, 06-Nov-94 08:49:37 GMT", 0, RFC_DATE - 30), 30000);
    T_EQ_INT(ra("Sun Nov  6 08:49:37 1994", 0, RFC_DATE - 30), 30000);
    /* in the past, now, far ahead */
    T_EQ_INT(ra("Sun, 06 Nov 1994 08:49:37 GMT", 0, RFC_DATE + 1000), 0);
    T_EQ_INT(ra("Sun, 06 Nov 1994 08:49:37 GMT", 0, RFC_DATE), 0);
    T_EQ_INT(ra("Sun, 06 Nov 1994 08:49:37 GMT", 0, RFC_DATE - 86400), KZ_RETRY_AFTER_MAX_MS);
    T_EQ_INT(ra("Fri, 31 Dec 9999 23:59:59 GMT", 0, RFC_DATE), KZ_RETRY_AFTER_MAX_MS);
    T_EQ_INT(ra("Sun, 20 Jul 1969 20:17:00 GMT", 0, RFC_DATE), 0);
    /* a leap day (2024-02-29 00:00:00 is 1709164800) */
    T_EQ_INT(ra("Thu, 29 Feb 2024 00:00:00 GMT", 0, 1709164800L - 10), 10000);
    /* a two-digit year is the one within 50 years ahead of now: "30" seen
     * from the last minute of 2029 is 2030 (1893456000), "94" is 1994 */
    T_EQ_INT(ra("Tuesday, 01-Jan-30 00:00:00 GMT", 0, 1893455940L), 60000);
    T_EQ_INT(ra("Sunday, 06-Nov-94 08:49:37 GMT", 0, 1893455940L), 0);
}

static void retry_after_garbage(void)
{
    static const char *const bad[] = {
        "",
        "   ",
        "soon",
        "-5",
        "+5",
        "5s",
        "1e3",
        "1.",
        ".5",
        "5 5",
        "0x10",
        "Sun, 31 Feb 1994 08:49:37 GMT",  /* no such day */
        "Thu, 29 Feb 2023 00:00:00 GMT",  /* not a leap year */
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "sun, 06 nov 1994 08:49:37 gmt",  /* the grammar is case-sensitive */
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 GMT x",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun, 06 Nov 1994 08:49",
        "\xFF\xFE",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        T_OK(ra(bad[i], 0, RFC_DATE) == -1, "'%s' -> -1 (got %ld)", bad[i], ra(bad[i], 0, RFC_DATE));
    T_EQ_INT(ra(NULL, 0, 0), -1);
    T_EQ_INT(ra("", 1, 0), -1);
    T_EQ_INT(ra("abc", 1, 0), -1);
}

int main(void)
{
    t_subtest("error bodies of each dialect", dialects);
    t_subtest("raw bodies: length, UTF-8, garbage", raw_limits);
    t_subtest("small buffers", small_buffers);
    t_subtest("Retry-After: seconds and milliseconds", retry_after_seconds);
    t_subtest("Retry-After: HTTP-dates", retry_after_dates);
    t_subtest("Retry-After: garbage", retry_after_garbage);
    return t_done();
}
