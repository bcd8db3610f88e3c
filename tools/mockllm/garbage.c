/* SPDX-License-Identifier: MIT
 * garbage:NAME, the scripted malformed answers: each variant is one way an
 * upstream (or a proxy in front of it) has been seen to break HTTP, chunked
 * framing or SSE. Whatever the route, the bytes are shaped like an OpenAI
 * chat stream (that is what most of them corrupt), and every variant ends
 * the connection (never keep-alive), except the ones that stall on purpose.
 * Random bytes come from a fixed-seed generator: a failing test replays.
 *
 * To add a variant: write a static builder and add it to the table at the
 * bottom; GET /_mock/modes lists it and the tests walk it automatically.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "mock.h"

#define TEN_MIB (10u << 20)

/* xorshift64: deterministic noise. */
static uint64_t next_rand(uint64_t *st)
{
    uint64_t x = *st;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *st = x;
}

static void add_random(struct kz_mock_script *s, size_t n, uint64_t seed)
{
    char *b = kz_malloc(n);
    for (size_t i = 0; b && i < n; i++)
        b[i] = (char)(next_rand(&seed) >> 56);
    if (b && n && b[0] == 'H') /* never start like a status line by chance */
        b[0] = 0x7f;
    if (b)
        kz_mock_add(s, b, n, 0);
    else
        s->failed = 1;
    kz_free(b);
}

static void add_filled(struct kz_mock_script *s, const char *prefix, char fill, size_t n, const char *suffix,
                       int chunked)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *b = kz_malloc(pl + n + sl);
    if (!b) {
        s->failed = 1;
        return;
    }
    memcpy(b, prefix, pl);
    memset(b + pl, fill, n);
    memcpy(b + pl + n, suffix, sl);
    if (chunked)
        kz_mock_add_chunk(s, b, pl + n + sl, 0);
    else
        kz_mock_add(s, b, pl + n + sl, 0);
    kz_free(b);
}

static void chunk_str(struct kz_mock_script *s, const char *str) { kz_mock_add_chunk(s, str, strlen(str), 0); }

static void sse_head(struct kz_mock_script *s) { kz_mock_add_head(s, 200, "text/event-stream", NULL, -1, 0); }

#define CHUNK_PREFIX "{\"id\":\"chatcmpl-garbage\",\"object\":\"chat.completion.chunk\",\"created\":1700000000," \
                     "\"model\":\"mock-model\","

/* data: events of a chat stream: role, n tokens, finish (no [DONE]). raw:
 * without chunk framing (for close-delimited bodies). */
static void chat_events(struct kz_mock_script *s, int n, int raw)
{
    char ev[512];
    int len = snprintf(ev, sizeof ev,
                       "data: " CHUNK_PREFIX "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                       "\"content\":\"\"},\"finish_reason\":null}]}\n\n");
    raw ? kz_mock_add(s, ev, (size_t)len, 0) : kz_mock_add_chunk(s, ev, (size_t)len, 0);
    for (int i = 0; i < n; i++) {
        len = snprintf(ev, sizeof ev,
                       "data: " CHUNK_PREFIX "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"},"
                       "\"finish_reason\":null}]}\n\n",
                       i);
        raw ? kz_mock_add(s, ev, (size_t)len, 1) : kz_mock_add_chunk(s, ev, (size_t)len, 1);
    }
    len = snprintf(ev, sizeof ev,
                   "data: " CHUNK_PREFIX "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    raw ? kz_mock_add(s, ev, (size_t)len, 0) : kz_mock_add_chunk(s, ev, (size_t)len, 0);
}

static void done(struct kz_mock_script *s) { chunk_str(s, "data: [DONE]\n\n"); }

/* A complete, valid stream: head, events, [DONE], last chunk. */
static void full_stream(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    sse_head(s);
    chat_events(s, c->tokens, 0);
    done(s);
    kz_mock_add_last_chunk(s);
}

static const char json_body[] = "{\"id\":\"chatcmpl-garbage\",\"object\":\"chat.completion\",\"created\":1700000000,"
                                "\"model\":\"mock-model\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                                "\"assistant\",\"content\":\"tok0 \"},\"finish_reason\":\"stop\"}],"
                                "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}";

/* ---- the variants ------------------------------------------------------------- */

static void g_binary_status(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    add_random(s, 512, 0x9e3779b97f4a7c15ull);
}

static void g_binary_body(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    kz_mock_add_str(s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n");
    add_random(s, 4096, 0xdeadbeefcafef00dull);
}

static void g_bad_json(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    sse_head(s);
    chat_events(s, 0, 0);
    chunk_str(s, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok0 \"}\n\n");
    chunk_str(s, "data: this is not json\n\n");
    done(s);
    kz_mock_add_last_chunk(s);
}

static void g_length_too_large(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    kz_mock_add_head(s, 200, "application/json", NULL, (long long)(sizeof json_body - 1 + 1000), 0);
    kz_mock_add_str(s, json_body);
}

static void g_length_too_small(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    kz_mock_add_head(s, 200, "application/json", NULL, 10, 0);
    kz_mock_add_str(s, json_body);
}

static void g_huge_header(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    add_filled(s, "HTTP/1.1 200 OK\r\nX-Huge: ", 'a', TEN_MIB,
               "\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", 0);
}

static void g_sse_no_blank_lines(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    sse_head(s);
    static const char line[] = "data: {\"n\":0}\n";
    const size_t per_chunk = 1000, line_len = sizeof line - 1;
    char *b = kz_malloc(per_chunk * line_len);
    if (!b) {
        s->failed = 1;
        return;
    }
    for (size_t i = 0; i < per_chunk; i++)
        memcpy(b + i * line_len, line, line_len);
    for (int k = 0; k < 100; k++) /* 100 x 1000 lines */
        kz_mock_add_chunk(s, b, per_chunk * line_len, 0);
    kz_free(b);
    kz_mock_add_last_chunk(s);
}

static void g_sse_huge_line(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    sse_head(s);
    add_filled(s, "data: ", 'x', TEN_MIB, "\n\n", 1);
    done(s);
    kz_mock_add_last_chunk(s);
}

static void g_no_final_chunk(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    sse_head(s);
    chat_events(s, c->tokens, 0);
    done(s);
}

static void g_http10_cut(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    kz_mock_add_str(s, "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n");
    chat_events(s, 1, 1);
    kz_mock_add_str(s, "data: " CHUNK_PREFIX "\"choi");
}

static void g_html(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    static const char page[] = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
                               "<body><h1>Bad Gateway</h1><p>The upstream is unavailable.</p></body></html>\n";
    kz_mock_add_head(s, 200, "text/html; charset=utf-8", NULL, (long long)(sizeof page - 1), 0);
    kz_mock_add_str(s, page);
}

static void g_no_done(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    sse_head(s);
    chat_events(s, c->tokens, 0);
    kz_mock_add_last_chunk(s);
}

static void g_comments_forever(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    sse_head(s);
    chunk_str(s, ": ping\n\n");
    s->end = KZ_MOCK_END_REPEAT;
    s->repeat_ms = 100;
}

static void g_double_done(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    sse_head(s);
    chat_events(s, c->tokens, 0);
    done(s);
    done(s);
    kz_mock_add_last_chunk(s);
}

/* A valid stream whose body goes out one byte per write (TCP_NODELAY is on),
 * so a client's parser sees every possible split point. */
static void g_split_bytes(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    struct kz_mock_script *whole = kz_mock_script_new();
    if (!whole) {
        s->failed = 1;
        return;
    }
    full_stream(whole, c);
    s->failed |= whole->failed;
    for (size_t i = 0; !s->failed && i < whole->n; i++) {
        const struct kz_mock_piece *p = &whole->pieces[i];
        if (i == 0)
            kz_mock_add(s, p->data, p->len, 0); /* the head in one write */
        else
            for (size_t k = 0; k < p->len; k++)
                kz_mock_add(s, p->data + k, 1, p->token);
    }
    kz_mock_script_free(whole);
}

static void g_nul_bytes(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    sse_head(s);
    chat_events(s, 0, 0);
    static const char ev[] = "data: " CHUNK_PREFIX
                             "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok0 \"},\"finish_reason\":null}]}"
                             "\0\0\0\n\n\0\0\0\0\n\n";
    kz_mock_add_chunk(s, ev, sizeof ev - 1, 0);
    done(s);
    kz_mock_add_last_chunk(s);
}

static void g_empty_close(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)s;
    (void)c; /* no bytes at all: the script is empty and ends with a close */
}

static void g_bad_status_line(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    kz_mock_add_str(s, "HTTP/1.1 2x0 WHAT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

static void g_lf_only(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    kz_mock_addf(s, "HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: %zu\nConnection: close\n\n%s",
                 sizeof json_body - 1, json_body);
}

static void g_length_and_chunked(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    kz_mock_add_str(s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 5\r\n"
                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    chat_events(s, 1, 0);
    done(s);
    kz_mock_add_last_chunk(s);
}

static void g_error_after_200(struct kz_mock_script *s, const struct kz_mock_ctx *c)
{
    (void)c;
    sse_head(s);
    chat_events(s, 1, 0);
    chunk_str(s, "data: {\"error\":{\"message\":\"The server had an error while processing your request.\","
                 "\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n");
    done(s);
    kz_mock_add_last_chunk(s);
}

/* A variant is a builder, or fixed bytes after an SSE head (after_head), or
 * one bad event inside an otherwise valid stream (event). */
static const struct {
    const char *name;
    void (*build)(struct kz_mock_script *s, const struct kz_mock_ctx *c);
    const char *after_head;
    const char *event;
} variants[] = {
    {"binary_status", g_binary_status, NULL, NULL},           /* random bytes instead of a status line */
    {"binary_body", g_binary_body, NULL, NULL},               /* a valid 200 head, then random bytes */
    {"bad_json", g_bad_json, NULL, NULL},                     /* data: lines that are not JSON */
    {"choices_not_array", NULL, NULL,                         /* JSON of the wrong shape */
     "data: " CHUNK_PREFIX "\"choices\":{\"index\":0,\"delta\":{\"content\":\"tok0 \"}}}\n\n"},
    {"content_number", NULL, NULL,                            /* delta.content is a number */
     "data: " CHUNK_PREFIX "\"choices\":[{\"index\":0,\"delta\":{\"content\":42},\"finish_reason\":null}]}\n\n"},
    {"chunk_negative", NULL, "-5\r\nhello\r\n0\r\n\r\n", NULL},  /* chunk size "-5" */
    {"chunk_huge", NULL, "ffffffffffffffff\r\ndata: {}\n\n", NULL}, /* chunk size 2^64 - 1 */
    {"chunk_nonhex", NULL, "zz\r\nhello\r\n0\r\n\r\n", NULL},    /* chunk size "zz" */
    {"length_too_large", g_length_too_large, NULL, NULL},     /* Content-Length beyond the body, then close */
    {"length_too_small", g_length_too_small, NULL, NULL},     /* Content-Length short of the body */
    {"huge_header", g_huge_header, NULL, NULL},               /* a 10 MiB header line */
    {"sse_no_blank_lines", g_sse_no_blank_lines, NULL, NULL}, /* 100k data: lines, no event ends */
    {"sse_huge_line", g_sse_huge_line, NULL, NULL},           /* one 10 MiB data: line */
    {"no_final_chunk", g_no_final_chunk, NULL, NULL},         /* chunked body without the last chunk */
    {"http10_cut", g_http10_cut, NULL, NULL},                 /* HTTP/1.0 close-delimited, cut mid-event */
    {"html", g_html, NULL, NULL},                             /* 200 text/html */
    {"no_done", g_no_done, NULL, NULL},                       /* complete framing, no [DONE] */
    {"comments_forever", g_comments_forever, NULL, NULL},     /* ": ping" every 100 ms, forever */
    {"double_done", g_double_done, NULL, NULL},               /* [DONE] twice */
    {"split_bytes", g_split_bytes, NULL, NULL},               /* valid, one byte per write */
    {"nul_bytes", g_nul_bytes, NULL, NULL},                   /* NUL bytes in the body */
    {"bad_utf8", NULL, NULL,                                  /* invalid UTF-8 in content */
     "data: " CHUNK_PREFIX
     "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok\xff\xfe\xc3(\"},\"finish_reason\":null}]}\n\n"},
    {"empty_close", g_empty_close, NULL, NULL},               /* close with no bytes */
    {"bad_status_line", g_bad_status_line, NULL, NULL},       /* "HTTP/1.1 2x0 WHAT" */
    {"lf_only", g_lf_only, NULL, NULL},                       /* bare LF line endings */
    {"length_and_chunked", g_length_and_chunked, NULL, NULL}, /* Content-Length and chunked together */
    {"error_after_200", g_error_after_200, NULL, NULL},       /* an error object mid-stream */
};

size_t kz_mock_garbage_count(void) { return sizeof variants / sizeof variants[0]; }

const char *kz_mock_garbage_name(size_t i) { return i < kz_mock_garbage_count() ? variants[i].name : "?"; }

struct kz_mock_script *kz_mock_garbage(size_t i, const struct kz_mock_ctx *c)
{
    struct kz_mock_script *s = kz_mock_script_new();
    if (!s || i >= kz_mock_garbage_count())
        return s;
    s->end = KZ_MOCK_END_CLOSE;
    s->streamed = 1;
    if (variants[i].build) {
        variants[i].build(s, c);
        return s;
    }
    sse_head(s);
    if (variants[i].after_head) {
        kz_mock_add_str(s, variants[i].after_head);
        return s;
    }
    chat_events(s, 0, 0);
    chunk_str(s, variants[i].event);
    done(s);
    kz_mock_add_last_chunk(s);
    return s;
}
