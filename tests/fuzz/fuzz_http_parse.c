/* SPDX-License-Identifier: MIT
 * Fuzz target (RELIABILITY.md FZ-1): the HTTP/1.1 request parser, head and
 * chunked body (src/http/parse.c).
 *
 * Oracles, beyond the sanitizers:
 *   - the result never exceeds the input (consumed <= len) and is one of
 *     -1, -2 or a byte count;
 *   - feeding the same bytes incrementally (split at a few points, and one
 *     byte at a time for short inputs, with one scanner kept across calls,
 *     the way the server does it) gives exactly the one-shot result, and
 *     every strict prefix of an accepted head is "need more" (-2);
 *   - a rejection carries an HTTP status among 400/414/417/431/505 and a
 *     message;
 *   - an accepted head: every slice (method, target, path, query, host,
 *     each header name and value) lies inside the head; names are non-empty;
 *     values have no leading/trailing whitespace; body_kind is consistent;
 *     HTTP/1.1 has exactly the Host that a case-insensitive lookup finds;
 *   - the chunked decoder, on whatever follows the head, consumes no more
 *     than it is given, reports data only inside the consumed bytes, and
 *     decodes the same data and stops at the same byte whether fed all at
 *     once or in small pieces.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "http/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEADERS 100

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_http_parse: invariant broken: %s\n", what);
    abort();
}

static volatile unsigned char sink;

static void check_slice(struct kz_slice s, const char *lo, size_t len, const char *what)
{
    if (!s.p) {
        if (s.len)
            fail(what);
        return;
    }
    /* Constant slices ("/" for an empty absolute-form path) live outside. */
    if (s.p < lo || s.p > lo + len || s.len > (size_t)(lo + len - s.p)) {
        if (!(s.len == 1 && s.p[0] == '/'))
            fail(what);
        return;
    }
    if (s.len)
        sink = (unsigned char)(sink + (unsigned char)s.p[0] + (unsigned char)s.p[s.len - 1]);
}

static int is_ws(char c) { return c == ' ' || c == '\t'; }

static void check_head(const struct kz_http_head *h, const char *buf, size_t n)
{
    check_slice(h->method, buf, n, "method");
    check_slice(h->target, buf, n, "target");
    check_slice(h->path, buf, n, "path");
    check_slice(h->query, buf, n, "query");
    check_slice(h->authority, buf, n, "authority");
    check_slice(h->host, buf, n, "host");
    if (h->method.len == 0 || h->target.len == 0)
        fail("empty method or target");
    if (h->minor_version != 0 && h->minor_version != 1)
        fail("minor version");
    if (h->n_headers > MAX_HEADERS)
        fail("header count");
    for (size_t i = 0; i < h->n_headers; i++) {
        struct kz_slice nm = h->headers[i].name, v = h->headers[i].value;
        check_slice(nm, buf, n, "header name");
        check_slice(v, buf, n, "header value");
        if (nm.len == 0)
            fail("empty header name");
        if (v.len && (is_ws(v.p[0]) || is_ws(v.p[v.len - 1])))
            fail("untrimmed value");
    }
    struct kz_slice host;
    int has_host = kz_http_head_find(h, "HOST", &host);
    if (has_host != (h->host.p != NULL) || (has_host && (host.p != h->host.p || host.len != h->host.len)))
        fail("Host lookup disagrees with the parsed Host");
    if (h->minor_version == 1 && !has_host)
        fail("HTTP/1.1 accepted without Host");
    if (h->body_kind == KZ_HTTP_BODY_LENGTH && h->content_length == 0)
        fail("length body of 0");
    if (h->body_kind == KZ_HTTP_BODY_CHUNKED && h->minor_version != 1)
        fail("chunked in HTTP/1.0");
}

static int parse_once(const char *buf, size_t len, const struct kz_http_parse_limits *lim,
                      struct kz_http_header *hdrs, struct kz_http_head *h)
{
    struct kz_http_scan st;
    kz_http_scan_reset(&st);
    return kz_http_parse_request(buf, len, lim, &st, hdrs, MAX_HEADERS, h);
}

/* The same bytes fed as growing prefixes ending at each of cuts[], with one
 * scanner across calls. Returns the final result. */
static int parse_split(const char *buf, size_t len, const struct kz_http_parse_limits *lim, const size_t *cuts,
                       size_t n_cuts, struct kz_http_header *hdrs, struct kz_http_head *h)
{
    struct kz_http_scan st;
    kz_http_scan_reset(&st);
    int r = -2;
    for (size_t i = 0; i < n_cuts; i++) {
        if (cuts[i] > len)
            continue;
        r = kz_http_parse_request(buf, cuts[i], lim, &st, hdrs, MAX_HEADERS, h);
        if (r != -2)
            return r;
    }
    return kz_http_parse_request(buf, len, lim, &st, hdrs, MAX_HEADERS, h);
}

/* Decodes a chunked body from buf[0..len) in pieces of `step` (0: whole).
 * Returns bytes consumed (-1 malformed); *total: data bytes; *hash: a
 * checksum of the data. */
static long chunked_run(const char *buf, size_t len, size_t step, uint64_t *total, uint64_t *hash, int *done)
{
    struct kz_http_chunked d;
    kz_http_chunked_init(&d);
    size_t off = 0, avail = step ? 0 : len;
    *total = 0;
    *hash = 1469598103934665603ull;
    for (;;) {
        if (kz_http_chunked_done(&d))
            break;
        if (off == avail) {
            if (avail == len)
                break;
            avail = step && avail + step < len ? avail + step : len;
        }
        struct kz_slice data;
        long r = kz_http_chunked_step(&d, buf + off, avail - off, &data);
        if (r < 0)
            return -1;
        if ((size_t)r > avail - off)
            fail("chunked consumed more than given");
        if (data.len) {
            if (data.p < buf + off || data.len > (size_t)r || data.p + data.len > buf + off + (size_t)r)
                fail("chunk data outside the consumed bytes");
            for (size_t i = 0; i < data.len; i++)
                *hash = (*hash ^ (unsigned char)data.p[i]) * 1099511628211ull;
            *total += data.len;
        }
        if (r == 0 && !kz_http_chunked_done(&d) && off + (size_t)r == avail && avail == len)
            break;
        off += (size_t)r;
    }
    *done = kz_http_chunked_done(&d);
    return (long)off;
}

static void check_chunked(const char *buf, size_t len)
{
    uint64_t t0, h0, t1, h1;
    int d0, d1;
    long r0 = chunked_run(buf, len, 0, &t0, &h0, &d0);
    static const size_t steps[] = {1, 3, 17};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (steps[i] == 1 && len > 4096)
            continue;
        long r1 = chunked_run(buf, len, steps[i], &t1, &h1, &d1);
        if ((r0 < 0) != (r1 < 0))
            fail("chunked: split changes acceptance");
        if (r0 >= 0 && (r0 != r1 || t0 != t1 || h0 != h1 || d0 != d1))
            fail("chunked: split changes the result");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct kz_http_parse_limits lim;
    static struct kz_http_header hdrs[MAX_HEADERS], hdrs2[MAX_HEADERS];
    struct kz_http_head h, h2;

    kz_alloc_set_limit((size_t)1 << 20); /* the parser must not allocate at all */
    kz_http_parse_limits_default(&lim);
    /* Small limits for a third of the inputs, so the limit paths are reached
     * with short inputs. */
    if (size > 0 && data[0] % 3 == 0) {
        lim.max_request_line = 64;
        lim.max_header_line = 48;
        lim.max_header_bytes = 160;
        lim.max_headers = 6;
    }

    int r = parse_once(buf, size, &lim, hdrs, &h);
    if (r < -2 || (r >= 0 && (size_t)r > size))
        fail("result out of range");
    if (r == -1) {
        int s = h.err_status;
        if ((s != 400 && s != 414 && s != 417 && s != 431 && s != 505) || !h.err_msg || !*h.err_msg)
            fail("rejection without a proper status/message");
    }

    /* Split feeding must agree with one-shot feeding. */
    size_t cuts[5] = {size / 4, size / 3, size / 2, size - (size > 0), size};
    int r2 = parse_split(buf, size, &lim, cuts, 5, hdrs2, &h2);
    if (r2 != r)
        fail("split feeding changes the result");
    if (r == -1 && h2.err_status != h.err_status)
        fail("split feeding changes the status");
    if (size <= 2048) {
        struct kz_http_scan st;
        kz_http_scan_reset(&st);
        int rb = -2;
        for (size_t k = 0; k <= size && rb == -2; k++)
            rb = kz_http_parse_request(buf, k, &lim, &st, hdrs2, MAX_HEADERS, &h2);
        if (rb != r)
            fail("byte-at-a-time feeding changes the result");
    }

    if (r >= 0) {
        check_head(&h, buf, (size_t)r);
        /* Any strict prefix of an accepted head needs more bytes. */
        if (r > 0 && parse_once(buf, (size_t)r - 1, &lim, hdrs2, &h2) != -2)
            fail("prefix of an accepted head is not incomplete");
        if (h.body_kind == KZ_HTTP_BODY_CHUNKED)
            check_chunked(buf + r, size - (size_t)r);
    }
    /* The chunked decoder on the raw input too: it sees every byte pattern. */
    check_chunked(buf, size);
    kz_alloc_set_limit(0);
    return 0;
}
