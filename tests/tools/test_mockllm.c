/* SPDX-License-Identifier: MIT
 * mockllm end to end: the real program (KZ_MOCKLLM) on a free loopback port,
 * driven through tests/tnet.h. Checks every dialect (exact stream event
 * sequences, usage numbers, the providers' header checks and error shapes),
 * every mode's observable behaviour on the wire, every garbage variant that
 * GET /_mock/modes lists, the counters, and the process's life (ready line,
 * loopback-only, SIGTERM exits 0, kill_self dies of SIGKILL).
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "t.h"
#include "tnet.h"

#define N_TOKENS 5 /* the instance under test runs with --tokens 5 */

static struct tnet_proc mock;
static int port;

static const char *mock_bin(void)
{
    const char *b = getenv("KZ_MOCKLLM");
    return b && *b ? b : "./mockllm";
}

/* ---- small helpers -------------------------------------------------------------- */

/* A value inside JSON by a dotted path; numbers index arrays ("choices.0.delta"). */
static json_t *jpath(json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *part = strtok_r(buf, ".", &save); j && part; part = strtok_r(NULL, ".", &save))
        j = json_is_array(j) ? json_array_get(j, (size_t)atoi(part)) : json_object_get(j, part);
    return j;
}

static const char *jstr(json_t *j, const char *path) { return json_string_value(jpath(j, path)); }
static long long jint(json_t *j, const char *path) { return json_integer_value(jpath(j, path)); }

static json_t *jload(const char *text)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    T_OK(j != NULL, "JSON: %.300s", text ? text : "(none)");
    return j;
}

static int post_json(const char *path, const char *const *headers, const char *body, struct tnet_resp *r)
{
    return tnet_request(port, "POST", path, headers, body, 5000, r);
}

/* Posts body and checks the status and one string field of the JSON answer. */
static void expect_json(const char *path, const char *const *headers, const char *body, int status,
                        const char *field, const char *want)
{
    struct tnet_resp r;
    T_EQ_INT(post_json(path, headers, body, &r), status);
    json_t *j = jload(r.body);
    T_EQ_STR(jstr(j, field), want);
    json_decref(j);
    tnet_resp_free(&r);
}

static void set_mode(const char *json)
{
    struct tnet_resp r;
    T_EQ_INT(post_json("/_mock/mode", NULL, json, &r), 200);
    tnet_resp_free(&r);
}

/* "tok0 tok1 ... tok<n-1> " */
static const char *tokens_text(int n)
{
    static char buf[256];
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "tok%d ", i);
    return buf;
}

/* Runs the program with argv to completion (output discarded); its wait status. */
static int run_to_end(const char *const *argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    int st = -1;
    waitpid(pid, &st, 0);
    return st;
}

static const char *chat_body = "{\"model\":\"m1\",\"messages\":[{\"role\":\"system\",\"content\":\"abcd\"},"
                               "{\"role\":\"user\",\"content\":\"hello world!\"}]}";
static const char *stream_body =
    "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";

/* Starts a chat stream (headers may be NULL); the HTTP status. */
static int open_chat_stream(struct tnet_sse *s, const char *const *headers)
{
    return tnet_sse_open(s, port, "POST", "/v1/chat/completions", headers, stream_body, 5000);
}

/* 4 + 12 content bytes: 16 / 4 + 1 */
#define CHAT_PROMPT_TOKENS 5

/* ---- the process ---------------------------------------------------------------- */

static void cli(void)
{
    const char *help[] = {mock_bin(), "--help", NULL};
    int st = run_to_end(help);
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "--help exits 0 (status %d)", st);
    const char *any[] = {mock_bin(), "--host", "0.0.0.0", NULL};
    st = run_to_end(any);
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) != 0, "a non-loopback host is refused (status %d)", st);
    const char *lan[] = {mock_bin(), "--host", "10.1.2.3", NULL};
    st = run_to_end(lan);
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) != 0, "10.1.2.3 is refused (status %d)", st);
    const char *badmode[] = {mock_bin(), "--mode", "sometimes", NULL};
    st = run_to_end(badmode);
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) != 0, "an unknown mode is refused (status %d)", st);

    /* A fixed port and "localhost"; SIGINT ends it with status 0. */
    int want = tnet_free_port();
    char ps[16];
    snprintf(ps, sizeof ps, "%d", want);
    const char *argv[] = {mock_bin(), "--host", "localhost", "--port", ps, NULL};
    struct tnet_proc p;
    T_EQ_INT(tnet_spawn(&p, argv, NULL, NULL, 10000), 0);
    if (p.pid <= 0)
        return;
    T_EQ_INT(p.port, want);
    T_EQ_STR(p.host, "127.0.0.1");
    struct tnet_resp r;
    T_EQ_INT(tnet_request(p.port, "GET", "/health", NULL, NULL, 5000, &r), 200);
    tnet_resp_free(&r);
    st = tnet_stop(&p, SIGINT, 5000);
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGINT exits 0 (status %d)", st);
}

/* ---- OpenAI ----------------------------------------------------------------------- */

static void openai_chat(void)
{
    struct tnet_resp r;
    T_EQ_INT(post_json("/v1/chat/completions", NULL, chat_body, &r), 200);
    T_EQ_STR(tnet_header(&r, "content-type"), "application/json");
    json_t *j = jload(r.body);
    T_EQ_STR(jstr(j, "object"), "chat.completion");
    T_EQ_STR(jstr(j, "model"), "m1");
    T_EQ_STR(jstr(j, "choices.0.message.role"), "assistant");
    T_EQ_STR(jstr(j, "choices.0.message.content"), tokens_text(N_TOKENS));
    T_EQ_STR(jstr(j, "choices.0.finish_reason"), "stop");
    T_EQ_INT(jint(j, "usage.prompt_tokens"), CHAT_PROMPT_TOKENS);
    T_EQ_INT(jint(j, "usage.completion_tokens"), N_TOKENS);
    T_EQ_INT(jint(j, "usage.total_tokens"), CHAT_PROMPT_TOKENS + N_TOKENS);
    json_decref(j);
    tnet_resp_free(&r);

    /* max_tokens below N: only that many, finish_reason length */
    T_EQ_INT(post_json("/v1/chat/completions", NULL,
                       "{\"model\":\"m1\",\"max_tokens\":3,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r),
             200);
    j = jload(r.body);
    T_EQ_STR(jstr(j, "choices.0.message.content"), tokens_text(3));
    T_EQ_STR(jstr(j, "choices.0.finish_reason"), "length");
    T_EQ_INT(jint(j, "usage.completion_tokens"), 3);
    T_EQ_INT(jint(j, "usage.prompt_tokens"), 1); /* 2 bytes / 4 + 1 */
    json_decref(j);
    tnet_resp_free(&r);

    /* max_completion_tokens at or above N changes nothing */
    T_EQ_INT(post_json("/v1/chat/completions", NULL,
                       "{\"model\":\"m1\",\"max_completion_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}",
                       &r),
             200);
    j = jload(r.body);
    T_EQ_STR(jstr(j, "choices.0.finish_reason"), "stop");
    json_decref(j);
    tnet_resp_free(&r);

    /* a body kyozon's decoder refuses: 400 in OpenAI's shape */
    expect_json("/v1/chat/completions", NULL, "{\"model\":\"m1\"}", 400, "error.type", "invalid_request_error");
}

/* Reads a chat stream and checks its exact sequence. */
static void check_chat_stream(const char *body, const char *model, int n, const char *finish, int usage)
{
    struct tnet_sse s;
    T_EQ_INT(tnet_sse_open(&s, port, "POST", "/v1/chat/completions", NULL, body, 5000), 200);
    T_EQ_STR(tnet_header(&s.r, "content-type"), "text/event-stream");
    T_EQ_STR(tnet_header(&s.r, "transfer-encoding"), "chunked");
    char ev[64], *data = NULL, id[64] = "";
    int i = 0, rc;
    for (; (rc = tnet_sse_next(&s, 5000, ev, sizeof ev, &data)) == 1; i++) {
        T_EQ_STR(ev, "");
        if (strcmp(data, "[DONE]") == 0) {
            T_EQ_INT(i, n + 2 + usage);
            kz_free(data);
            i++;
            break;
        }
        json_t *j = jload(data);
        if (i == 0)
            snprintf(id, sizeof id, "%s", jstr(j, "id") ? jstr(j, "id") : "");
        T_EQ_STR(jstr(j, "id"), id); /* the same id on every chunk */
        T_EQ_STR(jstr(j, "object"), "chat.completion.chunk");
        T_EQ_STR(jstr(j, "model"), model);
        T_OK(usage ? json_object_get(j, "usage") != NULL : json_object_get(j, "usage") == NULL,
             "usage key iff include_usage (chunk %d)", i);
        if (i == 0) {
            T_EQ_STR(jstr(j, "choices.0.delta.role"), "assistant");
        } else if (i <= n) {
            char want[16];
            snprintf(want, sizeof want, "tok%d ", i - 1);
            T_EQ_STR(jstr(j, "choices.0.delta.content"), want);
            T_OK(json_is_null(jpath(j, "choices.0.finish_reason")), "no finish_reason mid-stream");
        } else if (i == n + 1) {
            T_EQ_STR(jstr(j, "choices.0.finish_reason"), finish);
            T_EQ_INT(json_object_size(jpath(j, "choices.0.delta")), 0);
        } else {
            T_OK(usage && i == n + 2, "an extra chunk %d only for usage", i);
            T_EQ_INT(json_array_size(jpath(j, "choices")), 0);
            T_EQ_INT(jint(j, "usage.completion_tokens"), n);
            T_OK(jint(j, "usage.prompt_tokens") >= 1, "usage.prompt_tokens");
        }
        json_decref(j);
        kz_free(data);
    }
    T_EQ_INT(i, n + 3 + usage);
    T_EQ_INT(tnet_sse_next(&s, 5000, ev, sizeof ev, &data), 0); /* nothing after [DONE]; body ends */
    tnet_sse_close(&s);
}

static void openai_chat_stream(void)
{
    check_chat_stream("{\"model\":\"m2\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"hello world!\"}]}",
                      "m2", N_TOKENS, "stop", 1);
    check_chat_stream("{\"model\":\"m2\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "m2",
                      N_TOKENS, "stop", 0);
    check_chat_stream("{\"model\":\"m3\",\"stream\":true,\"max_tokens\":2,\"stream_options\":{\"include_usage\":true},"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                      "m3", 2, "length", 1);
}

static void openai_other(void)
{
    struct tnet_resp r;
    T_EQ_INT(post_json("/v1/completions", NULL, "{\"model\":\"c1\",\"prompt\":\"12345678\"}", &r), 200);
    json_t *j = jload(r.body);
    T_EQ_STR(jstr(j, "object"), "text_completion");
    T_EQ_STR(jstr(j, "choices.0.text"), tokens_text(N_TOKENS));
    T_EQ_INT(jint(j, "usage.prompt_tokens"), 3);
    json_decref(j);
    tnet_resp_free(&r);

    /* streamed completion: N text chunks, the finish chunk, usage, [DONE] */
    struct tnet_sse s;
    T_EQ_INT(tnet_sse_open(&s, port, "POST", "/v1/completions", NULL,
                           "{\"model\":\"c1\",\"prompt\":\"p\",\"stream\":true,\"max_tokens\":4,"
                           "\"stream_options\":{\"include_usage\":true}}",
                           5000),
             200);
    char ev[64], *data;
    int i = 0;
    while (tnet_sse_next(&s, 5000, ev, sizeof ev, &data) == 1) {
        json_t *jj = strcmp(data, "[DONE]") ? jload(data) : NULL;
        if (i < 4) {
            char want[16];
            snprintf(want, sizeof want, "tok%d ", i);
            T_EQ_STR(jstr(jj, "choices.0.text"), want);
        } else if (i == 4) {
            T_EQ_STR(jstr(jj, "choices.0.finish_reason"), "length");
        } else if (i == 5) {
            T_EQ_INT(jint(jj, "usage.completion_tokens"), 4);
        } else {
            T_EQ_STR(data, "[DONE]");
        }
        json_decref(jj);
        kz_free(data);
        i++;
    }
    T_EQ_INT(i, 7);
    tnet_sse_close(&s);

    /* embeddings: dim 8, deterministic per input */
    double first[2][8];
    for (int round = 0; round < 2; round++) {
        T_EQ_INT(post_json("/v1/embeddings", NULL, "{\"model\":\"e1\",\"input\":[\"alpha\",\"beta\"]}", &r), 200);
        j = jload(r.body);
        T_EQ_INT(json_array_size(jpath(j, "data")), 2);
        T_EQ_INT(jint(j, "usage.prompt_tokens"), 3); /* 9 bytes / 4 + 1 */
        for (int k = 0; k < 2; k++) {
            char p[32];
            snprintf(p, sizeof p, "data.%d.embedding", k);
            json_t *v = jpath(j, p);
            T_EQ_INT(json_array_size(v), 8);
            for (size_t d = 0; d < 8 && d < json_array_size(v); d++) {
                double x = json_number_value(json_array_get(v, d));
                T_OK(x >= -1.0 && x <= 1.0, "component in [-1, 1]: %f", x);
                if (round == 0)
                    first[k][d] = x;
                else
                    T_OK(first[k][d] == x, "same input, same vector");
            }
        }
        json_decref(j);
        tnet_resp_free(&r);
    }
    T_OK(memcmp(first[0], first[1], sizeof first[0]) != 0, "different inputs, different vectors");

    T_EQ_INT(tnet_request(port, "GET", "/v1/models", NULL, NULL, 5000, &r), 200);
    j = jload(r.body);
    T_EQ_STR(jstr(j, "data.0.id"), "mock-model");
    json_decref(j);
    tnet_resp_free(&r);
    T_EQ_INT(tnet_request(port, "GET", "/health", NULL, NULL, 5000, &r), 200);
    tnet_resp_free(&r);
    T_EQ_INT(tnet_request(port, "GET", "/v2/nothing", NULL, NULL, 5000, &r), 404);
    j = jload(r.body);
    T_OK(jstr(j, "error.message") != NULL, "404 in OpenAI's error shape");
    json_decref(j);
    tnet_resp_free(&r);
}

static void keep_alive(void)
{
    struct tnet_conn c;
    T_EQ_INT(tnet_connect(&c, port), 0);
    struct tnet_resp r;
    for (int i = 0; i < 2; i++) {
        T_EQ_INT(tnet_send(&c, "POST", "/v1/chat/completions", NULL, chat_body), 0);
        T_EQ_INT(tnet_read_response(&c, "POST", 5000, &r), 200);
        T_OK(tnet_header(&r, "connection") == NULL, "no Connection: close on a good answer");
        tnet_resp_free(&r);
    }
    const char *close_hdr[] = {"Connection: close", NULL};
    T_EQ_INT(tnet_send(&c, "GET", "/health", close_hdr, NULL), 0);
    T_EQ_INT(tnet_read_response(&c, "GET", 5000, &r), 200);
    tnet_resp_free(&r);
    T_EQ_INT(tnet_read_raw(&c, 1, 2000), 1); /* then the server closes */
    T_EQ_INT(c.len, 0);
    tnet_disconnect(&c);
}

/* ---- Azure, Anthropic, Bedrock --------------------------------------------------------- */

static void azure(void)
{
    const char *path = "/openai/deployments/dep-1/chat/completions?api-version=2024-10-21";
    const char *key[] = {"api-key: k1", NULL};
    struct tnet_resp r;
    T_EQ_INT(post_json(path, NULL, chat_body, &r), 401);
    json_t *j = jload(r.body);
    T_EQ_STR(jstr(j, "error.code"), "401");
    T_OK(jstr(j, "error.message") && !jpath(j, "error.type"), "Azure's shape: code and message");
    json_decref(j);
    tnet_resp_free(&r);

    expect_json("/openai/deployments/dep-1/chat/completions", key, chat_body, 400, "error.code", "BadRequest");

    T_EQ_INT(post_json(path, key, chat_body, &r), 200);
    j = jload(r.body);
    T_EQ_STR(jstr(j, "model"), "dep-1");
    T_EQ_STR(jstr(j, "choices.0.message.content"), tokens_text(N_TOKENS));
    T_EQ_INT(jint(j, "usage.prompt_tokens"), CHAT_PROMPT_TOKENS);
    json_decref(j);
    tnet_resp_free(&r);

    struct tnet_sse s;
    T_EQ_INT(tnet_sse_open(&s, port, "POST", path, key,
                           "{\"model\":\"x\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 5000),
             200);
    char ev[64], *data;
    int n = 0, done = 0;
    while (tnet_sse_next(&s, 5000, ev, sizeof ev, &data) == 1) {
        if (strcmp(data, "[DONE]") == 0)
            done = 1;
        else {
            json_t *jj = jload(data);
            T_EQ_STR(jstr(jj, "model"), "dep-1");
            json_decref(jj);
        }
        n++;
        kz_free(data);
    }
    T_EQ_INT(n, N_TOKENS + 3);
    T_OK(done, "[DONE]");
    tnet_sse_close(&s);
}

static const char *anth_hdrs[] = {"x-api-key: k", "anthropic-version: 2023-06-01", NULL};

static void anthropic(void)
{
    const char *body = "{\"model\":\"claude-x\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\",\"content\":"
                       "[{\"type\":\"text\",\"text\":\"12345678\"}]}]}";
    struct tnet_resp r;
    const char *no_key[] = {"anthropic-version: 2023-06-01", NULL};
    expect_json("/v1/messages", no_key, body, 401, "type", "error");
    expect_json("/v1/messages", no_key, body, 401, "error.type", "authentication_error");
    const char *no_version[] = {"x-api-key: k", NULL};
    expect_json("/v1/messages", no_version, body, 400, "error.type", "invalid_request_error");
    T_EQ_INT(post_json("/v1/messages", anth_hdrs, "{\"model\":\"c\",\"messages\":[]}", &r), 400); /* no max_tokens */
    tnet_resp_free(&r);

    T_EQ_INT(post_json("/v1/messages", anth_hdrs, body, &r), 200);
    json_t *j = jload(r.body);
    T_EQ_STR(jstr(j, "type"), "message");
    T_EQ_STR(jstr(j, "role"), "assistant");
    T_EQ_STR(jstr(j, "model"), "claude-x");
    T_EQ_STR(jstr(j, "content.0.type"), "text");
    T_EQ_STR(jstr(j, "content.0.text"), tokens_text(N_TOKENS));
    T_EQ_STR(jstr(j, "stop_reason"), "end_turn");
    T_EQ_INT(jint(j, "usage.input_tokens"), 3);
    T_EQ_INT(jint(j, "usage.output_tokens"), N_TOKENS);
    json_decref(j);
    tnet_resp_free(&r);

    for (int limited = 0; limited < 2; limited++) {
        int n = limited ? 2 : N_TOKENS;
        char sbody[256];
        snprintf(sbody, sizeof sbody,
                 "{\"model\":\"claude-x\",\"max_tokens\":%d,\"stream\":true,\"messages\":[{\"role\":\"user\","
                 "\"content\":\"hello\"}]}",
                 limited ? 2 : 50);
        struct tnet_sse s;
        T_EQ_INT(tnet_sse_open(&s, port, "POST", "/v1/messages", anth_hdrs, sbody, 5000), 200);
        const char *want[16];
        int nw = 0;
        want[nw++] = "message_start";
        want[nw++] = "content_block_start";
        want[nw++] = "ping";
        for (int i = 0; i < n; i++)
            want[nw++] = "content_block_delta";
        want[nw++] = "content_block_stop";
        want[nw++] = "message_delta";
        want[nw++] = "message_stop";
        char ev[64], *data;
        int i = 0;
        while (tnet_sse_next(&s, 5000, ev, sizeof ev, &data) == 1) {
            T_OK(i < nw, "event %d (%s) expected", i, ev);
            if (i < nw)
                T_EQ_STR(ev, want[i]);
            j = jload(data);
            T_EQ_STR(jstr(j, "type"), ev); /* data.type repeats the event name */
            if (strcmp(ev, "message_start") == 0) {
                T_EQ_STR(jstr(j, "message.model"), "claude-x");
                T_EQ_INT(jint(j, "message.usage.input_tokens"), 2);
            } else if (strcmp(ev, "content_block_delta") == 0) {
                char tw[16];
                snprintf(tw, sizeof tw, "tok%d ", i - 3);
                T_EQ_STR(jstr(j, "delta.type"), "text_delta");
                T_EQ_STR(jstr(j, "delta.text"), tw);
            } else if (strcmp(ev, "message_delta") == 0) {
                T_EQ_STR(jstr(j, "delta.stop_reason"), limited ? "max_tokens" : "end_turn");
                T_EQ_INT(jint(j, "usage.output_tokens"), n);
            }
            json_decref(j);
            kz_free(data);
            i++;
        }
        T_EQ_INT(i, nw);
        tnet_sse_close(&s);
    }
}

/* A CRC-32 written independently of mockllm's, checked against the
 * standard check value below. */
static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return ~c;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Decodes one event-stream frame with string headers, checking both CRCs,
 * and copies the value of header `want` into value ("" when absent).
 * Returns the frame's size, 0 on any defect. */
static size_t evs_decode(const unsigned char *p, size_t n, const char *want, char *value, size_t vsize,
                         const unsigned char **payload, size_t *plen)
{
    if (n < 16)
        return 0;
    uint32_t total = be32(p), hlen = be32(p + 4);
    if (total > n || total < 16 || hlen > total - 16 || crc32_ieee(p, 8) != be32(p + 8) ||
        crc32_ieee(p, total - 4) != be32(p + total - 4))
        return 0;
    value[0] = '\0';
    for (size_t o = 12; o < 12 + hlen;) {
        size_t nl = p[o];
        const unsigned char *name = p + o + 1;
        if (o + 1 + nl + 3 > 12 + hlen || p[o + 1 + nl] != 7)
            return 0;
        size_t vl = (size_t)p[o + 2 + nl] << 8 | p[o + 3 + nl];
        const unsigned char *val = p + o + 4 + nl;
        if (o + 4 + nl + vl > 12 + hlen)
            return 0;
        if (nl == strlen(want) && memcmp(name, want, nl) == 0)
            snprintf(value, vsize, "%.*s", (int)vl, (const char *)val);
        o += 4 + nl + vl;
    }
    *payload = p + 12 + hlen;
    *plen = total - 16 - hlen;
    return total;
}

static void eventstream_decoder(void)
{
    T_EQ_INT(crc32_ieee((const unsigned char *)"123456789", 9), 0xCBF43926u); /* the standard CRC-32 check value */
    /* A published example frame: the Elixir event_stream package's docs,
     * EventStream.encode!(~s/{"foo": "bar"}/, "content-type": "application/json"). */
    static const unsigned char vec[] = {0,   0,   0,   62,  0,   0,   0,   32,  64,  93,  249, 70,  12,  99,  111, 110,
                                        116, 101, 110, 116, 45,  116, 121, 112, 101, 7,   0,   16,  97,  112, 112, 108,
                                        105, 99,  97,  116, 105, 111, 110, 47,  106, 115, 111, 110, 123, 34,  102, 111,
                                        111, 34,  58,  32,  34,  98,  97,  114, 34,  125, 111, 162, 191, 59};
    char ct[64];
    const unsigned char *pl;
    size_t plen;
    T_EQ_INT(evs_decode(vec, sizeof vec, "content-type", ct, sizeof ct, &pl, &plen), sizeof vec);
    T_EQ_STR(ct, "application/json");
    T_OK(plen == 14 && memcmp(pl, "{\"foo\": \"bar\"}", 14) == 0, "payload of the published frame");
    unsigned char bad[sizeof vec];
    memcpy(bad, vec, sizeof vec);
    bad[50] ^= 1;
    T_EQ_INT(evs_decode(bad, sizeof bad, "content-type", ct, sizeof ct, &pl, &plen), 0); /* a flipped bit is caught */
}

static void bedrock(void)
{
    const char *path = "/model/anthropic.claude-v2/converse";
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"12345678\"}]}]}";
    const char *sigv4[] = {"Authorization: AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/bedrock/aws4_request, "
                           "SignedHeaders=host, Signature=00",
                           NULL};
    const char *basic[] = {"Authorization: Basic eDp5", NULL};
    struct tnet_resp r;
    T_EQ_INT(post_json(path, NULL, body, &r), 403);
    T_EQ_STR(tnet_header(&r, "x-amzn-errortype"), "AccessDeniedException");
    json_t *j = jload(r.body);
    T_OK(jstr(j, "message") != NULL, "Bedrock's shape: {message}");
    json_decref(j);
    tnet_resp_free(&r);
    T_EQ_INT(post_json(path, basic, body, &r), 403);
    tnet_resp_free(&r);

    T_EQ_INT(post_json(path, sigv4, body, &r), 200);
    j = jload(r.body);
    T_EQ_STR(jstr(j, "output.message.role"), "assistant");
    T_EQ_STR(jstr(j, "output.message.content.0.text"), tokens_text(N_TOKENS));
    T_EQ_STR(jstr(j, "stopReason"), "end_turn");
    T_EQ_INT(jint(j, "usage.inputTokens"), 3);
    T_EQ_INT(jint(j, "usage.outputTokens"), N_TOKENS);
    T_EQ_INT(jint(j, "usage.totalTokens"), 3 + N_TOKENS);
    json_decref(j);
    tnet_resp_free(&r);

    const char *bearer[] = {"Authorization: Bearer bedrock-api-key", NULL};
    T_EQ_INT(post_json("/model/m/converse-stream", bearer,
                       "{\"inferenceConfig\":{\"maxTokens\":3},\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":"
                       "\"hello\"}]}]}",
                       &r),
             200);
    T_EQ_STR(tnet_header(&r, "content-type"), "application/vnd.amazon.eventstream");
    const char *want[] = {"messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockDelta",
                          "contentBlockStop", "messageStop", "metadata"};
    size_t off = 0, nf = 0;
    while (off < r.body_len) {
        char type[64], ctype[64], mtype[64];
        const unsigned char *pl, *frame = (const unsigned char *)r.body + off;
        size_t plen, used = evs_decode(frame, r.body_len - off, ":event-type", type, sizeof type, &pl, &plen);
        T_OK(used > 0, "frame %zu decodes with valid CRCs", nf);
        if (!used)
            break;
        evs_decode(frame, used, ":content-type", ctype, sizeof ctype, &pl, &plen);
        evs_decode(frame, used, ":message-type", mtype, sizeof mtype, &pl, &plen);
        T_EQ_STR(ctype, "application/json");
        T_EQ_STR(mtype, "event");
        T_OK(nf < 7 && strcmp(type, want[nf]) == 0, "frame %zu is %s", nf, type);
        json_t *p = json_loadb((const char *)pl, plen, 0, NULL);
        T_OK(p != NULL, "frame payload is JSON");
        if (strcmp(type, "contentBlockDelta") == 0) {
            char tw[16];
            snprintf(tw, sizeof tw, "tok%zu ", nf - 1);
            T_EQ_STR(jstr(p, "delta.text"), tw);
            T_EQ_INT(jint(p, "contentBlockIndex"), 0);
        } else if (strcmp(type, "messageStop") == 0) {
            T_EQ_STR(jstr(p, "stopReason"), "max_tokens");
        } else if (strcmp(type, "metadata") == 0) {
            T_EQ_INT(jint(p, "usage.inputTokens"), 2);
            T_EQ_INT(jint(p, "usage.outputTokens"), 3);
            T_EQ_INT(jint(p, "usage.totalTokens"), 5);
        }
        json_decref(p);
        off += used;
        nf++;
    }
    T_EQ_INT(nf, 7);
    tnet_resp_free(&r);
}

/* ---- modes ------------------------------------------------------------------------------- */

static void status_modes(void)
{
    set_mode("{\"mode\":\"status:429\",\"retry_after\":3}");
    struct tnet_resp r;
    T_EQ_INT(post_json("/v1/chat/completions", NULL, chat_body, &r), 429);
    T_EQ_STR(tnet_header(&r, "retry-after"), "3");
    json_t *j = jload(r.body);
    T_EQ_STR(jstr(j, "error.code"), "rate_limit_exceeded");
    json_decref(j);
    tnet_resp_free(&r);
    expect_json("/v1/messages", anth_hdrs, "{}", 429, "error.type", "rate_limit_error");
    T_EQ_INT(post_json("/model/m/converse", NULL, "{}", &r), 429);
    T_EQ_STR(tnet_header(&r, "x-amzn-errortype"), "ThrottlingException");
    T_EQ_STR(tnet_header(&r, "retry-after"), "3");
    tnet_resp_free(&r);
    expect_json("/openai/deployments/d/chat/completions?api-version=1", NULL, "{}", 429, "error.code", "429");

    /* Each POST says everything: retry_after left out goes back to none. */
    set_mode("{\"mode\":\"status:529\"}");
    expect_json("/v1/messages", anth_hdrs, "{}", 529, "error.type", "overloaded_error");
    T_EQ_INT(post_json("/v1/messages", anth_hdrs, "{}", &r), 529);
    T_OK(tnet_header(&r, "retry-after") == NULL, "no Retry-After unless asked");
    tnet_resp_free(&r);
    T_EQ_INT(tnet_request(port, "GET", "/_mock/stats", NULL, NULL, 5000, &r), 200); /* controls stay normal */
    tnet_resp_free(&r);

    T_EQ_INT(post_json("/_mock/mode", NULL, "{\"mode\":\"status:abc\"}", &r), 400);
    tnet_resp_free(&r);
    T_EQ_INT(post_json("/_mock/mode", NULL, "{\"mode\":\"ok\",\"tokens\":-1}", &r), 400);
    tnet_resp_free(&r);
    set_mode("{\"mode\":\"ok\"}");
    T_EQ_INT(post_json("/v1/chat/completions", NULL, chat_body, &r), 200);
    tnet_resp_free(&r);
}

static void header_override(void)
{
    const char *h500[] = {"x-mock-mode: status:500", NULL};
    struct tnet_resp r;
    expect_json("/v1/chat/completions", h500, chat_body, 500, "error.type", "server_error");
    T_EQ_INT(post_json("/v1/chat/completions", NULL, chat_body, &r), 200); /* only that request */
    tnet_resp_free(&r);
    const char *bad[] = {"x-mock-mode: nonsense", NULL};
    T_EQ_INT(post_json("/v1/chat/completions", bad, chat_body, &r), 400);
    tnet_resp_free(&r);
}

static long stat_in_flight(void)
{
    struct tnet_resp r;
    long n = -1;
    if (tnet_request(port, "GET", "/_mock/stats", NULL, NULL, 5000, &r) == 200) {
        json_t *j = json_loads(r.body, 0, NULL);
        n = (long)jint(j, "in_flight");
        json_decref(j);
    }
    tnet_resp_free(&r);
    return n;
}

static void hang_headers(void)
{
    struct tnet_conn c;
    const char *h[] = {"x-mock-mode: hang_headers", NULL};
    T_EQ_INT(tnet_connect(&c, port), 0);
    T_EQ_INT(tnet_send(&c, "POST", "/v1/chat/completions", h, chat_body), 0);
    double t0 = tnet_now_ms();
    T_EQ_INT(tnet_read_raw(&c, 1, 1000), 0); /* neither a byte nor a close within 1 s */
    T_OK(tnet_now_ms() - t0 >= 990, "waited the whole second");
    T_EQ_INT(c.len, 0);
    T_EQ_INT(stat_in_flight(), 1);
    tnet_disconnect(&c);
    long n = -1;
    for (int i = 0; i < 100 && (n = stat_in_flight()) != 0; i++)
        usleep(10000);
    T_EQ_INT(n, 0); /* the client leaving ends it */
}

static void hang_mid(void)
{
    set_mode("{\"mode\":\"hang_mid\",\"after\":2}");
    struct tnet_sse s;
    T_EQ_INT(open_chat_stream(&s, NULL), 200);
    T_EQ_STR(tnet_header(&s.r, "connection"), "close");
    char ev[64], *data;
    int got = 0;
    for (int i = 0; i < 3; i++) {
        if (tnet_sse_next(&s, 2000, ev, sizeof ev, &data) != 1)
            break;
        json_t *j = jload(data);
        if (i > 0) {
            char tw[16];
            snprintf(tw, sizeof tw, "tok%d ", i - 1);
            T_EQ_STR(jstr(j, "choices.0.delta.content"), tw);
        }
        json_decref(j);
        kz_free(data);
        got++;
    }
    T_EQ_INT(got, 3); /* the role chunk and `after` tokens */
    T_EQ_INT(tnet_sse_next(&s, 400, ev, sizeof ev, &data), TNET_ETIMEOUT);
    T_OK(!s.c.eof && !s.c.reset, "the socket stays open");
    tnet_sse_close(&s);

    /* a whole answer: the head and the first half of the body, then nothing */
    struct tnet_resp r;
    T_EQ_INT(tnet_request(port, "POST", "/v1/chat/completions", NULL, chat_body, 800, &r), TNET_ETIMEOUT);
    T_OK(r.body_len > 0 && r.body_len < 200, "half a body arrived (%zu bytes)", r.body_len);
    tnet_resp_free(&r);
    set_mode("{\"mode\":\"ok\"}");
}

static void close_mid(void)
{
    set_mode("{\"mode\":\"close_mid\",\"after\":2}");
    struct tnet_sse s;
    T_EQ_INT(open_chat_stream(&s, NULL), 200);
    char ev[64], *data;
    int got = 0, rc;
    while ((rc = tnet_sse_next(&s, 2000, ev, sizeof ev, &data)) == 1) {
        T_OK(strcmp(data, "[DONE]") != 0, "no [DONE]");
        kz_free(data);
        got++;
    }
    T_EQ_INT(got, 3);
    T_EQ_INT(rc, TNET_ECLOSED); /* the chunked body never ended ... */
    T_OK(s.c.eof && !s.c.reset, "... and the close was a clean FIN");
    tnet_sse_close(&s);
    set_mode("{\"mode\":\"ok\"}");
}

static void reset_after(void)
{
    set_mode("{\"mode\":\"reset_after\",\"after\":300}");
    struct tnet_conn c;
    T_EQ_INT(tnet_connect(&c, port), 0);
    T_EQ_INT(tnet_send(&c, "POST", "/v1/chat/completions", NULL, stream_body), 0);
    T_EQ_INT(tnet_read_raw(&c, 1 << 20, 3000), 1);
    T_OK(c.reset, "closed by RST");
    T_EQ_INT(c.len, 300);
    T_OK(c.len >= 12 && memcmp(c.buf, "HTTP/1.1 200", 12) == 0, "the bytes are the start of a normal answer");
    tnet_disconnect(&c);
    set_mode("{\"mode\":\"ok\"}");
    struct tnet_resp r;
    T_EQ_INT(post_json("/v1/chat/completions", NULL, chat_body, &r), 200);
    tnet_resp_free(&r);
}

static void slow(void)
{
    set_mode("{\"mode\":\"slow\",\"tokens\":3,\"cadence_ms\":100}");
    struct tnet_sse s;
    double t0 = tnet_now_ms();
    T_EQ_INT(open_chat_stream(&s, NULL), 200);
    char ev[64], *data;
    int n = 0;
    double first = 0;
    while (tnet_sse_next(&s, 5000, ev, sizeof ev, &data) == 1) {
        if (n == 0)
            first = tnet_now_ms() - t0;
        kz_free(data);
        n++;
    }
    double total = tnet_now_ms() - t0;
    T_EQ_INT(n, 1 + 3 + 2); /* role, 3 tokens, finish, [DONE] */
    T_OK(first < total - 150, "the role chunk does not wait for the cadence (%.0f of %.0f ms)", first, total);
    T_OK(total >= 290, "3 tokens 100 ms apart take >= 300 ms (%.0f ms)", total);
    tnet_sse_close(&s);
    set_mode("{\"mode\":\"ok\"}");
}

static void kill_self(void)
{
    const char *argv[] = {mock_bin(), "--mode", "kill_self", NULL};
    struct tnet_proc p;
    T_EQ_INT(tnet_spawn(&p, argv, NULL, NULL, 10000), 0);
    if (p.pid <= 0)
        return;
    struct tnet_resp r;
    T_EQ_INT(tnet_request(p.port, "GET", "/_mock/stats", NULL, NULL, 5000, &r), 200); /* controls do not trigger it */
    tnet_resp_free(&r);
    T_EQ_INT(tnet_request(p.port, "GET", "/health", NULL, NULL, 5000, &r), TNET_ECLOSED);
    tnet_resp_free(&r);
    int st = tnet_wait(&p, 5000);
    T_OK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "ended by SIGKILL (status %d)", st);
    if (st == -1)
        tnet_stop(&p, SIGKILL, 1000);
}

/* ---- garbage ---------------------------------------------------------------------------- */

static size_t count(const char *hay, size_t n, const char *needle)
{
    size_t c = 0, nl = strlen(needle);
    for (const char *p = hay; (p = memmem(p, n - (size_t)(p - hay), needle, nl)) != NULL; p += nl)
        c++;
    return c;
}

static const char *body_of(const struct tnet_conn *c)
{
    const char *e = memmem(c->buf, c->len, "\r\n\r\n", 4);
    return e ? e + 4 : c->buf + c->len;
}

/* What one variant must have put on the wire (beyond "something, then a close"). */
static void check_variant(const char *name, const struct tnet_conn *c)
{
    const char *buf = c->buf ? c->buf : "";
    size_t body_len = c->len - (size_t)(body_of(c) - buf);
    if (strcmp(name, "binary_status") == 0)
        T_OK(c->len == 512 && memcmp(buf, "HTTP/", 5) != 0, "%s: 512 bytes, no status line", name);
    else if (strcmp(name, "binary_body") == 0)
        T_OK(memcmp(buf, "HTTP/1.1 200 OK", 15) == 0 && body_len == 4096, "%s: a 200 head and 4096 bytes", name);
    else if (strcmp(name, "huge_header") == 0 || strcmp(name, "sse_huge_line") == 0)
        T_OK(c->len > (10u << 20), "%s: over 10 MiB (%zu)", name, c->len);
    else if (strcmp(name, "sse_no_blank_lines") == 0)
        T_OK(count(body_of(c), body_len, "data: ") == 100000 && !memmem(body_of(c), body_len, "\n\n", 2),
             "%s: 100k lines and no blank one", name);
    else if (strcmp(name, "chunk_negative") == 0)
        T_OK(strstr(buf, "\r\n\r\n-5\r\n") != NULL, "%s", name);
    else if (strcmp(name, "chunk_huge") == 0)
        T_OK(strstr(buf, "\r\n\r\nffffffffffffffff\r\n") != NULL, "%s", name);
    else if (strcmp(name, "chunk_nonhex") == 0)
        T_OK(strstr(buf, "\r\n\r\nzz\r\n") != NULL, "%s", name);
    else if (strcmp(name, "length_too_large") == 0 || strcmp(name, "length_too_small") == 0) {
        const char *cl = strstr(buf, "Content-Length: ");
        size_t want = cl ? (size_t)atol(cl + 16) : 0;
        T_OK(strcmp(name, "length_too_large") == 0 ? want > body_len : want < body_len, "%s: Content-Length %zu, body %zu", name, want,
             body_len);
    } else if (strcmp(name, "html") == 0)
        T_OK(strstr(buf, "Content-Type: text/html") && strstr(buf, "<html>"), "%s", name);
    else if (strcmp(name, "http10_cut") == 0)
        T_OK(memcmp(buf, "HTTP/1.0 200", 12) == 0 && buf[c->len - 1] != '\n', "%s: cut mid-event", name);
    else if (strcmp(name, "double_done") == 0)
        T_EQ_INT(count(buf, c->len, "data: [DONE]"), 2);
    else if (strcmp(name, "no_done") == 0)
        T_OK(!strstr(buf, "[DONE]") && c->len > 5 && memcmp(buf + c->len - 5, "0\r\n\r\n", 5) == 0, "%s", name);
    else if (strcmp(name, "no_final_chunk") == 0)
        T_OK(strstr(buf, "[DONE]") && memcmp(buf + c->len - 5, "0\r\n\r\n", 5) != 0, "%s", name);
    else if (strcmp(name, "nul_bytes") == 0)
        T_OK(memchr(body_of(c), '\0', body_len) != NULL, "%s", name);
    else if (strcmp(name, "bad_utf8") == 0)
        T_OK(memmem(buf, c->len, "\xff\xfe", 2) != NULL, "%s", name);
    else if (strcmp(name, "empty_close") == 0)
        T_EQ_INT(c->len, 0);
    else if (strcmp(name, "lf_only") == 0)
        T_OK(memcmp(buf, "HTTP/1.1 200 OK\n", 16) == 0, "%s", name);
    else if (strcmp(name, "comments_forever") == 0)
        T_OK(count(buf, c->len, ": ping") >= 3, "%s: pings keep coming (%zu)", name, count(buf, c->len, ": ping"));
}

/* split_bytes is valid: the SSE reader gets the whole stream. */
static void split_bytes_parses(void)
{
    const char *h[] = {"x-mock-mode: garbage:split_bytes", NULL};
    struct tnet_sse s;
    T_EQ_INT(open_chat_stream(&s, h), 200);
    char ev[64], *data;
    int n = 0, rc, done = 0;
    while ((rc = tnet_sse_next(&s, 5000, ev, sizeof ev, &data)) == 1) {
        done = strcmp(data, "[DONE]") == 0;
        kz_free(data);
        n++;
    }
    T_EQ_INT(rc, 0);
    T_EQ_INT(n, N_TOKENS + 3);
    T_OK(done, "split_bytes ends with [DONE]");
    tnet_sse_close(&s);
}

static void garbage(void)
{
    struct tnet_resp r;
    T_EQ_INT(tnet_request(port, "GET", "/_mock/modes", NULL, NULL, 5000, &r), 200);
    const char *required[] = {"ok", "hang_headers", "hang_mid", "reset_after", "close_mid", "kill_self", "slow",
                              "status:CODE"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        char line[64];
        snprintf(line, sizeof line, "%s\n", required[i]);
        T_OK(r.body && strstr(r.body, line), "mode %s listed", required[i]);
    }
    int n = 0;
    char *save = NULL;
    for (char *line = strtok_r(r.body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "garbage:", 8) != 0)
            continue;
        n++;
        const char *name = line + 8;
        int forever = strcmp(name, "comments_forever") == 0;
        char hdr[96];
        snprintf(hdr, sizeof hdr, "x-mock-mode: %s", line);
        const char *h[] = {hdr, NULL};
        struct tnet_conn c;
        T_EQ_INT(tnet_connect(&c, port), 0);
        T_EQ_INT(tnet_send(&c, "POST", "/v1/chat/completions", h, stream_body), 0);
        int closed = tnet_read_raw(&c, 64u << 20, forever ? 350 : 5000);
        T_OK(forever ? !closed : closed, "%s: %s", name, forever ? "still open" : "closed by the server");
        T_OK(c.len > 0 || strcmp(name, "empty_close") == 0, "%s: sent bytes", name);
        check_variant(name, &c);
        tnet_disconnect(&c);
        struct tnet_resp ok;
        T_EQ_INT(post_json("/v1/chat/completions", NULL, chat_body, &ok), 200); /* still serving */
        tnet_resp_free(&ok);
    }
    T_OK(n >= 20, "at least 20 garbage variants (%d)", n);
    tnet_resp_free(&r);
    split_bytes_parses();
}

/* ---- counters, limits, shutdown ------------------------------------------------------------ */

static void stats(void)
{
    struct tnet_resp r;
    T_EQ_INT(post_json("/_mock/reset", NULL, "{}", &r), 200);
    tnet_resp_free(&r);
    T_EQ_INT(tnet_mock_count(port, NULL), 0);
    for (int i = 0; i < 2; i++) {
        T_EQ_INT(post_json("/v1/chat/completions", NULL, chat_body, &r), 200);
        tnet_resp_free(&r);
    }
    const char *h[] = {"api-key: k", "X-Trace-Id: abc", NULL};
    const char *body = "{\"model\":\"e\",\"input\":\"q\"}";
    T_EQ_INT(post_json("/openai/deployments/d/embeddings?api-version=2024-10-21", h, body, &r), 200);
    tnet_resp_free(&r);
    T_EQ_INT(tnet_mock_count(port, NULL), 3);
    T_EQ_INT(tnet_mock_count(port, "/v1/chat/completions"), 2);
    T_EQ_INT(tnet_mock_count(port, "/openai/deployments/d/embeddings"), 1);
    T_EQ_INT(tnet_mock_count(port, "/v1/messages"), 0);

    T_EQ_INT(tnet_request(port, "GET", "/_mock/stats", NULL, NULL, 5000, &r), 200);
    json_t *j = jload(r.body);
    T_EQ_INT(jint(j, "requests"), 3); /* the /_mock/ calls above were not counted */
    T_EQ_INT(jint(j, "in_flight"), 0);
    T_EQ_STR(jstr(j, "last.method"), "POST");
    T_EQ_STR(jstr(j, "last.path"), "/openai/deployments/d/embeddings");
    T_EQ_STR(jstr(j, "last.query"), "api-version=2024-10-21");
    T_EQ_STR(jstr(j, "last.headers.x-trace-id"), "abc");
    T_EQ_STR(jstr(j, "last.headers.api-key"), "k");
    T_EQ_STR(jstr(j, "last.body"), body);
    json_decref(j);
    tnet_resp_free(&r);

    /* reset zeros the counters and keeps the mode */
    set_mode("{\"mode\":\"status:418\"}");
    T_EQ_INT(post_json("/_mock/reset", NULL, "{}", &r), 200);
    tnet_resp_free(&r);
    T_EQ_INT(tnet_mock_count(port, NULL), 0);
    T_EQ_INT(tnet_mock_count(port, "/v1/chat/completions"), 0);
    T_EQ_INT(post_json("/v1/chat/completions", NULL, chat_body, &r), 418);
    tnet_resp_free(&r);
    set_mode("{\"mode\":\"ok\"}");
}

static void body_limit(void)
{
    struct tnet_conn c;
    T_EQ_INT(tnet_connect(&c, port), 0);
    const char *head = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       "Content-Length: 9437184\r\n\r\n";
    T_EQ_INT(tnet_send_all(&c, head, strlen(head)), 0);
    struct tnet_resp r;
    T_EQ_INT(tnet_read_response(&c, "POST", 5000, &r), 413); /* refused before the body is sent */
    tnet_resp_free(&r);
    tnet_disconnect(&c);

    /* a client that sends part of the body anyway still reads the 413 */
    T_EQ_INT(tnet_connect(&c, port), 0);
    size_t part = 256u << 10;
    char *junk = kz_malloc(part);
    memset(junk, 'x', part);
    T_EQ_INT(tnet_send_all(&c, head, strlen(head)), 0);
    T_EQ_INT(tnet_send_all(&c, junk, part), 0);
    kz_free(junk);
    T_EQ_INT(tnet_read_response(&c, "POST", 5000, &r), 413);
    tnet_resp_free(&r);
    tnet_disconnect(&c);
}

/* Request framing mockllm must get right: chunked bodies, 100-continue,
 * pipelining, malformed heads, a client leaving mid-answer. */
static void wire(void)
{
    struct tnet_conn c;
    struct tnet_resp r;
    T_EQ_INT(tnet_connect(&c, port), 0);
    const char *chunked = "POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                          "Expect: 100-continue\r\n\r\n"
                          "c\r\n{\"model\":\"e\"\r\n12\r\n,\"input\":\"chunky\"}\r\n0\r\n\r\n";
    T_EQ_INT(tnet_send_all(&c, chunked, strlen(chunked)), 0);
    T_EQ_INT(tnet_read_response(&c, "POST", 5000, &r), 200); /* the 100 is skipped */
    tnet_resp_free(&r);
    /* two requests in one write: two answers in order */
    const char *two = "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";
    T_EQ_INT(tnet_send_all(&c, two, strlen(two)), 0);
    T_EQ_INT(tnet_read_response(&c, "GET", 5000, &r), 200);
    T_OK(r.body && strstr(r.body, "\"ok\""), "the /health answer first");
    tnet_resp_free(&r);
    T_EQ_INT(tnet_read_response(&c, "GET", 5000, &r), 200);
    T_OK(r.body && strstr(r.body, "mock-model"), "then the /v1/models one");
    tnet_resp_free(&r);
    tnet_disconnect(&c);

    T_EQ_INT(tnet_connect(&c, port), 0);
    const char *bad = "GET /health HTTP/1.1\r\nBad Header\r\n\r\n";
    T_EQ_INT(tnet_send_all(&c, bad, strlen(bad)), 0);
    T_EQ_INT(tnet_read_response(&c, "GET", 5000, &r), 400);
    tnet_resp_free(&r);
    T_EQ_INT(tnet_read_raw(&c, 1, 2000), 1); /* and closes */
    tnet_disconnect(&c);

    /* a client that leaves in the middle of a slow stream */
    const char *slow_hdr[] = {"x-mock-mode: slow", NULL};
    struct tnet_sse s;
    T_EQ_INT(open_chat_stream(&s, slow_hdr), 200);
    char ev[64], *data;
    T_EQ_INT(tnet_sse_next(&s, 5000, ev, sizeof ev, &data), 1);
    kz_free(data);
    tnet_sse_close(&s);
    long n = -1;
    for (int i = 0; i < 100 && (n = stat_in_flight()) != 0; i++)
        usleep(10000);
    T_EQ_INT(n, 0);
    T_EQ_INT(post_json("/v1/chat/completions", NULL, chat_body, &r), 200);
    tnet_resp_free(&r);
}

static void sigterm(void)
{
    /* with a request hanging: the stop must not wait for it */
    struct tnet_conn c;
    const char *h[] = {"x-mock-mode: hang_headers", NULL};
    T_EQ_INT(tnet_connect(&c, port), 0);
    T_EQ_INT(tnet_send(&c, "GET", "/health", h, NULL), 0);
    usleep(50000);
    int st = tnet_stop(&mock, SIGTERM, 5000);
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGTERM exits 0 (status %d)", st);
    T_EQ_INT(tnet_read_raw(&c, 1, 2000), 1);
    tnet_disconnect(&c);
}

int main(void)
{
    const char *argv[] = {mock_bin(), "--tokens", "5", NULL};
    if (tnet_spawn(&mock, argv, NULL, NULL, 10000) != 0) {
        T_OK(0, "mockllm (%s) started", mock_bin());
        return t_done();
    }
    port = mock.port;
    t_subtest("cli", cli);
    t_subtest("openai_chat", openai_chat);
    t_subtest("openai_chat_stream", openai_chat_stream);
    t_subtest("openai_other", openai_other);
    t_subtest("keep_alive", keep_alive);
    t_subtest("azure", azure);
    t_subtest("anthropic", anthropic);
    t_subtest("eventstream_decoder", eventstream_decoder);
    t_subtest("bedrock", bedrock);
    t_subtest("status_modes", status_modes);
    t_subtest("header_override", header_override);
    t_subtest("hang_headers", hang_headers);
    t_subtest("hang_mid", hang_mid);
    t_subtest("close_mid", close_mid);
    t_subtest("reset_after", reset_after);
    t_subtest("slow", slow);
    t_subtest("kill_self", kill_self);
    t_subtest("garbage", garbage);
    t_subtest("stats", stats);
    t_subtest("body_limit", body_limit);
    t_subtest("wire", wire);
    t_subtest("sigterm", sigterm);
    return t_done();
}
