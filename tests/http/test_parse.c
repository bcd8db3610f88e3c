/* SPDX-License-Identifier: MIT
 * The HTTP request parser (src/http/parse.c): every prefix of valid
 * requests, the conformance/smuggling table of http_cases.h at the parser
 * level, the size limits, and the chunked decoder fed in every split.
 *
 * To add a request shape, add it to http_cases.h (the server test runs it
 * too) or to `valid[]` below for prefix-only coverage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "http/parse.h"
#include "http_cases.h"
#include "t.h"

#define MAX_BODY ((uint64_t)4 << 20)
#define SENTINEL "GET /end HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"

static struct kz_http_parse_limits lim;

/* Parses buf[0..len) in one call with a fresh scanner. */
static int parse1(const char *buf, size_t len, struct kz_http_header *hdrs, size_t n_hdrs, struct kz_http_head *h)
{
    struct kz_http_scan st;
    kz_http_scan_reset(&st);
    return kz_http_parse_request(buf, len, &lim, &st, hdrs, n_hdrs, h);
}

// ---------------------------------------------------------------- prefixes

static const char *const valid[] = {
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /v1/models?x=1&y HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
    "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
    "Authorization: Bearer sk-123\r\nContent-Length: 2\r\n\r\n",
    "\r\nGET / HTTP/1.0\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: a\r\nX:\r\nY: \t v \t\r\n\r\n",
};

static void check_prefixes_of(const char *req, size_t n)
{
    struct kz_http_header hdrs[16];
    struct kz_http_head h;
    /* Fresh scanner on each prefix: -2 until complete. */
    for (size_t k = 0; k < n; k++) {
        int r = parse1(req, k, hdrs, 16, &h);
        if (r != -2) {
            T_OK(0, "prefix %zu/%zu of %.20s: %d", k, n, req, r);
            return;
        }
    }
    T_EQ_INT(parse1(req, n, hdrs, 16, &h), (long long)n);
    /* One scanner fed one more byte at a time (the server's way). */
    struct kz_http_scan st;
    kz_http_scan_reset(&st);
    for (size_t k = 0; k <= n; k++) {
        int r = kz_http_parse_request(req, k, &lim, &st, hdrs, 16, &h);
        if (k < n && r != -2) {
            T_OK(0, "incremental prefix %zu/%zu: %d", k, n, r);
            return;
        }
        if (k == n)
            T_EQ_INT(r, (long long)n);
    }
    /* Bytes after the head are never consumed. */
    char *more = kz_malloc(n + 8);
    memcpy(more, req, n);
    memcpy(more + n, "GET / HT", 8);
    T_EQ_INT(parse1(more, n + 8, hdrs, 16, &h), (long long)n);
    kz_free(more);
}

static void prefixes(void)
{
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
        check_prefixes_of(valid[i], strlen(valid[i]));
    /* Every accepted case of the table, up to the end of its head. */
    for (size_t i = 0; i < N_HTTP_CASES; i++) {
        const struct http_case *c = &http_cases[i];
        if (c->expect != 200)
            continue;
        struct kz_http_header hdrs[16];
        struct kz_http_head h;
        int n = parse1(c->raw, c->len, hdrs, 16, &h);
        T_OK(n > 0, "%s parses: %d", c->name, n);
        if (n > 0)
            check_prefixes_of(c->raw, (size_t)n);
    }
}

static void fields(void)
{
    struct kz_http_header hdrs[16];
    struct kz_http_head h;
    const char *req = valid[1];
    T_EQ_INT(parse1(req, strlen(req), hdrs, 16, &h), (long long)strlen(req));
    T_OK(kz_slice_eq(h.method, "GET"), "method");
    T_OK(kz_slice_eq(h.target, "/v1/models?x=1&y"), "target");
    T_OK(kz_slice_eq(h.path, "/v1/models"), "path");
    T_OK(kz_slice_eq(h.query, "x=1&y"), "query");
    T_EQ_INT(h.minor_version, 1);
    T_EQ_INT(h.n_headers, 3);
    T_OK(kz_slice_eq(h.host, "localhost:8080"), "host");
    T_OK(h.keep_alive, "1.1 keeps alive");
    struct kz_slice v;
    T_OK(kz_http_head_find(&h, "user-agent", &v) && kz_slice_eq(v, "t"), "case-insensitive find");
    T_OK(!kz_http_head_find(&h, "user-agen", &v), "no prefix match");

    req = valid[4];
    T_EQ_INT(parse1(req, strlen(req), hdrs, 16, &h), (long long)strlen(req));
    T_OK(kz_http_head_find(&h, "y", &v) && kz_slice_eq(v, "v"), "OWS trimmed: '%.*s'", (int)v.len, v.p);
    T_OK(kz_http_head_find(&h, "x", &v) && v.len == 0, "empty value");
    T_OK(kz_slice_eq(h.path, "*"), "asterisk");

    req = "GET http://Example.com:80?q HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, close\r\n\r\n";
    T_EQ_INT(parse1(req, strlen(req), hdrs, 16, &h), (long long)strlen(req));
    T_OK(kz_slice_eq(h.authority, "Example.com:80"), "authority");
    T_OK(kz_slice_eq(h.path, "/"), "empty path is /");
    T_OK(kz_slice_eq(h.query, "q"), "query after authority");
    T_OK(!h.keep_alive, "close wins");

    req = "GET / HTTP/1.0\r\nConnection: foo,  keep-alive\r\n\r\n";
    T_EQ_INT(parse1(req, strlen(req), hdrs, 16, &h), (long long)strlen(req));
    T_OK(h.keep_alive, "1.0 keep-alive");
    req = "GET / HTTP/1.0\r\n\r\n";
    T_EQ_INT(parse1(req, strlen(req), hdrs, 16, &h), (long long)strlen(req));
    T_OK(!h.keep_alive, "1.0 closes by default");

    req = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n";
    T_EQ_INT(parse1(req, strlen(req), hdrs, 16, &h), (long long)strlen(req));
    T_OK(h.content_length == UINT64_MAX, "max CL parses (the server answers 413)");
    req = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n";
    T_EQ_INT(parse1(req, strlen(req), hdrs, 16, &h), -1);
    T_EQ_INT(h.err_status, 400);

    /* The header array is the caller's: more lines than it holds -> 431. */
    req = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    T_EQ_INT(parse1(req, strlen(req), hdrs, 2, &h), -1);
    T_EQ_INT(h.err_status, 431);
}

// ---------------------------------------------------------------- table

/* What the server would answer for the first request in buf: the parser's
 * status, 413 for a body over MAX_BODY, 200 when it is accepted (then
 * *body_len is its decoded length); -2 when the bytes end too early. */
static int judge(const char *buf, size_t len, long *body_len)
{
    struct kz_http_header hdrs[128];
    struct kz_http_head h;
    int n = parse1(buf, len, hdrs, 128, &h);
    *body_len = 0;
    if (n == -1)
        return h.err_status;
    if (n == -2)
        return -2;
    size_t off = (size_t)n;
    if (h.body_kind == KZ_HTTP_BODY_LENGTH) {
        if (h.content_length > MAX_BODY)
            return 413;
        if (len - off < h.content_length)
            return -2;
        *body_len = (long)h.content_length;
        return 200;
    }
    if (h.body_kind == KZ_HTTP_BODY_CHUNKED) {
        struct kz_http_chunked d;
        kz_http_chunked_init(&d);
        uint64_t total = 0;
        while (!kz_http_chunked_done(&d)) {
            struct kz_slice data;
            long r = kz_http_chunked_step(&d, buf + off, len - off, &data);
            if (r < 0)
                return 400;
            if (r == 0)
                return -2;
            off += (size_t)r;
            total += data.len;
            if (total + kz_http_chunked_pending(&d) > MAX_BODY)
                return 413;
        }
        *body_len = (long)total;
    }
    return 200;
}

static void table(void)
{
    int n_reject = 0;
    for (size_t i = 0; i < N_HTTP_CASES; i++) {
        const struct http_case *c = &http_cases[i];
        size_t len = c->len + sizeof SENTINEL - 1;
        char *buf = kz_malloc(len);
        memcpy(buf, c->raw, c->len);
        memcpy(buf + c->len, SENTINEL, sizeof SENTINEL - 1);
        long body_len;
        int st = judge(buf, len, &body_len);
        T_OK(st == c->expect, "case %s: got %d, want %d", c->name, st, c->expect);
        if (c->expect == 200 && c->body_len >= 0)
            T_OK(body_len == c->body_len, "case %s: body %ld, want %ld", c->name, body_len, c->body_len);
        if (c->expect != 200)
            n_reject++;
        kz_free(buf);
    }
    T_OK(n_reject >= 89, "at least 89 reject cases (%d)", n_reject);
}

// ---------------------------------------------------------------- limits

static char *make_request_line(size_t line_len)
{
    /* "GET /aaa... HTTP/1.1" of exactly line_len bytes, then a Host. */
    const char *tail = " HTTP/1.1\r\nHost: a\r\n\r\n";
    char *b = kz_malloc(line_len + strlen(tail) + 1);
    memcpy(b, "GET /", 5);
    memset(b + 5, 'a', line_len - 5 - 9);
    strcpy(b + line_len - 9, tail);
    return b;
}

static char *make_headers(size_t n, size_t value_len)
{
    size_t cap = 64 + n * (value_len + 16);
    char *b = kz_malloc(cap);
    size_t o = (size_t)snprintf(b, cap, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (size_t i = 1; i < n; i++) {
        o += (size_t)snprintf(b + o, cap - o, "X%05zu: ", i);
        memset(b + o, 'v', value_len);
        o += value_len;
        memcpy(b + o, "\r\n", 2);
        o += 2;
    }
    memcpy(b + o, "\r\n", 3);
    return b;
}

static int status_of(const char *req, size_t len)
{
    struct kz_http_header *hdrs = kz_malloc(sizeof *hdrs * 200);
    struct kz_http_head h;
    int r = parse1(req, len, hdrs, 200, &h);
    kz_free(hdrs);
    return r == -1 ? h.err_status : r;
}

static void limits(void)
{
    char *b = make_request_line(8192);
    T_EQ_INT(status_of(b, strlen(b)), (long long)strlen(b));
    kz_free(b);
    b = make_request_line(8193);
    T_EQ_INT(status_of(b, strlen(b)), 414);
    /* Rejected before the line ends: the bytes received prove it. */
    T_EQ_INT(status_of(b, 8194), 414);
    T_EQ_INT(status_of(b, 8193), -2);
    kz_free(b);

    /* One header line of 8192 bytes passes, 8193 does not. */
    b = make_headers(2, 8192 - 8);
    T_OK(status_of(b, strlen(b)) > 0, "8 KiB header line");
    kz_free(b);
    b = make_headers(2, 8192 - 7);
    T_EQ_INT(status_of(b, strlen(b)), 431);
    T_EQ_INT(status_of(b, 8400), 431);
    kz_free(b);

    /* Header section: 16 KiB in total. */
    b = make_headers(5, 4100);
    T_EQ_INT(status_of(b, strlen(b)), 431);
    kz_free(b);
    b = make_headers(4, 4100);
    T_OK(status_of(b, strlen(b)) > 0, "12 KiB of headers");
    kz_free(b);

    /* 100 headers pass, 101 do not, without waiting for the end. */
    b = make_headers(100, 4);
    T_OK(status_of(b, strlen(b)) > 0, "100 headers");
    kz_free(b);
    b = make_headers(101, 4);
    T_EQ_INT(status_of(b, strlen(b)), 431);
    T_EQ_INT(status_of(b, strlen(b) - 2), 431);
    kz_free(b);

    /* A configured smaller limit applies. */
    struct kz_http_parse_limits saved = lim;
    lim.max_request_line = 16;
    const char *r = "GET /0123456789 HTTP/1.1\r\nHost: a\r\n\r\n";
    T_EQ_INT(status_of(r, strlen(r)), 414);
    /* A header line limit so large that "first byte over it" does not fit
     * in a size_t: never reached, rather than wrapping to "at once". */
    lim = saved;
    lim.max_header_line = SIZE_MAX - 1;
    T_EQ_INT(status_of(r, strlen(r)), (long long)strlen(r));
    lim = saved;
}

// ---------------------------------------------------------------- chunked

/* Decodes buf[0..len) feeding it in pieces of `step` bytes (0: all at once).
 * Returns the bytes consumed, or -1; out receives the data. */
static long decode(const char *buf, size_t len, size_t step, char *out, size_t *out_len)
{
    struct kz_http_chunked d;
    kz_http_chunked_init(&d);
    size_t off = 0, avail = step ? 0 : len;
    *out_len = 0;
    while (!kz_http_chunked_done(&d)) {
        if (off == avail) {
            if (avail == len)
                return -2;
            avail = avail + step > len ? len : avail + step;
        }
        struct kz_slice data;
        long r = kz_http_chunked_step(&d, buf + off, avail - off, &data);
        if (r < 0)
            return -1;
        if (data.len) {
            if (data.p < buf + off || data.p + data.len > buf + off + (size_t)r)
                return -3;
            memcpy(out + *out_len, data.p, data.len);
            *out_len += data.len;
        }
        off += (size_t)r;
    }
    return (long)off;
}

static void chunked(void)
{
    static const char body[] = "4;ext=\"v;x\"\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: v\r\n\r\nNEXT";
    size_t blen = sizeof body - 1 - 4;
    char out[64];
    size_t out_len;
    for (size_t step = 0; step <= blen; step++) {
        long r = decode(body, sizeof body - 1, step, out, &out_len);
        if (r != (long)blen || out_len != 23 || memcmp(out, "Wikipedia in\r\n\r\nchunks.", 23) != 0) {
            T_OK(0, "step %zu: consumed %ld, %zu bytes", step, r, out_len);
            break;
        }
    }
    /* Every proper prefix is incomplete (needs more), never an error. */
    for (size_t k = 0; k < blen; k++) {
        long r = decode(body, k, 0, out, &out_len);
        if (r != -2) {
            T_OK(0, "prefix %zu: %ld", k, r);
            break;
        }
    }
    /* Done stays done: nothing more is consumed. */
    struct kz_http_chunked d;
    struct kz_slice data;
    kz_http_chunked_init(&d);
    T_EQ_INT(kz_http_chunked_step(&d, "0\r\n\r\nX", 6, &data), 5);
    T_OK(kz_http_chunked_done(&d), "done");
    T_EQ_INT(kz_http_chunked_step(&d, "X", 1, &data), 0);
    /* An error is sticky. */
    kz_http_chunked_init(&d);
    T_EQ_INT(kz_http_chunked_step(&d, "g", 1, &data), -1);
    T_EQ_INT(kz_http_chunked_step(&d, "0\r\n\r\n", 5, &data), -1);
    /* Extension and trailer sizes are bounded. */
    char *big = kz_malloc(KZ_HTTP_CHUNK_MAX_TRAILERS + 64);
    memcpy(big, "1;a=", 4);
    memset(big + 4, 'x', KZ_HTTP_CHUNK_MAX_EXT + 8);
    kz_http_chunked_init(&d);
    T_EQ_INT(kz_http_chunked_step(&d, big, KZ_HTTP_CHUNK_MAX_EXT + 12, &data), -1);
    memcpy(big, "0\r\nX:", 5);
    memset(big + 5, 'x', KZ_HTTP_CHUNK_MAX_TRAILERS + 8);
    kz_http_chunked_init(&d);
    T_EQ_INT(kz_http_chunked_step(&d, big, KZ_HTTP_CHUNK_MAX_TRAILERS + 13, &data), -1);
    kz_free(big);
    /* 15 hex digits are the most a size may have. */
    kz_http_chunked_init(&d);
    T_OK(kz_http_chunked_step(&d, "000fffffffffffffff\r\n", 20, &data) == 20, "15 significant digits");
    T_EQ_INT(kz_http_chunked_pending(&d), 0xfffffffffffffffULL);
}

static void head_scan_rejects_early(void)
{
    /* Bad bytes are refused as soon as they arrive, not at the end. */
    struct kz_http_header hdrs[4];
    struct kz_http_head h;
    T_EQ_INT(parse1("GET / HTTP/1.1\r\nHost: a\nX", 26, hdrs, 4, &h), -1);
    T_EQ_INT(parse1("GET /\x01", 6, hdrs, 4, &h), -1);
    T_EQ_INT(parse1("GET / HTTP/1.1\rX", 16, hdrs, 4, &h), -1);
    /* A CR at the very end may still be followed by LF. */
    T_EQ_INT(parse1("GET / HTTP/1.1\r", 15, hdrs, 4, &h), -2);
}

int main(void)
{
    kz_http_parse_limits_default(&lim);
    t_subtest("prefixes", prefixes);
    t_subtest("fields", fields);
    t_subtest("conformance_table", table);
    t_subtest("limits", limits);
    t_subtest("chunked", chunked);
    t_subtest("scan_rejects_early", head_scan_rejects_early);
    return t_done();
}
