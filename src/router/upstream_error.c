/* SPDX-License-Identifier: MIT
 * Error response bodies of any provider, read into a short safe line (the
 * shapes are listed in upstream_error.h).
 */
#include <jansson.h>
#include <string.h>

#include "core/utf8.h"
#include "router/upstream_error.h"

/* Characters that would break a log line or a terminal, or hide what the
 * text says: C0 and C1 controls, DEL, the Unicode line and paragraph
 * separators, and the bidirectional embeddings, overrides and isolates. */
static int unsafe(const unsigned char *c, size_t n)
{
    if (n == 1)
        return c[0] < 0x20 || c[0] == 0x7F;
    if (n == 2)
        return c[0] == 0xC2 && c[1] < 0xA0;
    if (n == 3 && c[0] == 0xE2 && c[1] == 0x80)
        return c[2] >= 0xA8 && c[2] <= 0xAE;
    if (n == 3 && c[0] == 0xE2 && c[1] == 0x81)
        return c[2] >= 0xA6 && c[2] <= 0xA9;
    return 0;
}

/* Writes s as one clean line into out (size >= 1, always NUL-terminated);
 * see kz_upstream_error_text. This walks the bytes itself rather than using
 * kz_utf8_sanitize: that allocates, and this must work when nothing can be
 * allocated (an out-of-memory error is an error worth reporting too). */
static void put_line(char *out, size_t size, const char *s, size_t len)
{
    size_t o = 0;
    size_t gap = 0; /* 1: a space is owed before the next visible character */
    for (size_t i = 0; i < len;) {
        const char *c = s + i;
        size_t n = kz_utf8_seq_len(c, len - i);
        if (n == 0) {
            c = "\xEF\xBF\xBD"; /* U+FFFD for a byte that is no character */
            i++;
            n = 3;
        } else {
            i += n;
        }
        if (c[0] == ' ' || unsafe((const unsigned char *)c, n)) {
            gap = o > 0 ? 1 : 0;
            continue;
        }
        if (o + gap + n > size - 1)
            break;
        if (gap)
            out[o++] = ' ';
        gap = 0;
        memcpy(out + o, c, n);
        o += n;
    }
    out[o] = '\0';
}

static void put_str(char *out, size_t size, const char *s)
{
    if (size)
        put_line(out, size, s, strlen(s));
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && s[0] ? s : NULL;
}

/* Bedrock's "__type" may be qualified: "com.amazon.coral.service#ValidationException"
 * or "ValidationException:http://internal.amazon.com/..."; the bare name is
 * what the documentation lists. */
static void put_aws_type(char *out, size_t size, const char *t)
{
    const char *hash = strrchr(t, '#');
    if (hash)
        t = hash + 1;
    size_t n = strcspn(t, ":");
    if (size)
        put_line(out, size, t, n);
}

/* Length of the longest prefix of s (at most max bytes) that does not cut a
 * UTF-8 character in two. */
static size_t char_prefix(const char *s, size_t len, size_t max)
{
    size_t i = 0;
    while (i < len) {
        size_t n = kz_utf8_seq_len(s + i, len - i);
        if (n == 0)
            n = 1;
        if (i + n > max)
            break;
        i += n;
    }
    return i;
}

void kz_upstream_error_text(const char *body, size_t len, char *msg, size_t msg_size, char *type, size_t type_size)
{
    if (msg_size)
        msg[0] = '\0';
    if (type_size)
        type[0] = '\0';
    if (!body)
        len = 0;
    const char *m = NULL;
    json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
    if (json_is_object(root)) {
        json_t *e = json_object_get(root, "error");
        if (json_is_object(e)) { /* OpenAI, Azure, Anthropic, newer vLLM */
            m = str(e, "message");
            const char *t = str(e, "type");
            if (!t)
                t = str(e, "code"); /* Azure gives only a code ("429", "content_filter") */
            if (t)
                put_str(type, type_size, t);
        } else if (json_is_string(e)) {
            m = str(root, "error"); /* llama.cpp, Ollama */
        }
        if (!m)
            m = str(root, "message"); /* Bedrock, older vLLM */
        if (!m)
            m = str(root, "Message"); /* Bedrock through some AWS front ends */
        if (!m)
            m = str(root, "detail"); /* FastAPI-based servers */
        const char *t = str(root, "__type");
        if (type_size && !type[0] && t)
            put_aws_type(type, type_size, t);
        t = str(root, "type");
        if (type_size && !type[0] && t && strcmp(t, "error"))
            put_str(type, type_size, t);
    }
    if (msg_size) {
        if (m)
            put_str(msg, msg_size, m);
        else if (len)
            put_line(msg, msg_size, body, char_prefix(body, len, KZ_UPSTREAM_RAW_MAX));
        if (!msg[0])
            put_str(msg, msg_size, len ? "unreadable response body" : "empty response body");
    }
    json_decref(root);
}
