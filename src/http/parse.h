/* SPDX-License-Identifier: MIT
 * Incremental HTTP/1.1 request parser (RFC 9112): the request head and the
 * chunked body framing. Used by the server (server.c), the fuzz target and
 * the tests; nothing here allocates, blocks or keeps pointers after return.
 *
 * Invariants:
 *   - Strict on framing: anything that two HTTP implementations could
 *     read differently (CL+TE, duplicate Content-Length, a Transfer-Encoding
 *     other than exactly "chunked", obs-fold, whitespace before a colon, a bare
 *     CR or LF, malformed chunk sizes) is rejected, never "repaired".
 *   - Bounded: a head that is not complete within the configured limits is
 *     rejected as soon as the bytes received prove it (414/431), without
 *     waiting for more input; the chunked decoder bounds extensions and
 *     trailers.
 *   - Linear: the head scanner keeps its position between calls, so a client
 *     sending one byte at a time costs O(total bytes), not O(n^2).
 *
 * Return convention (like every incremental parser in kyozon): >= 0 is the
 * number of bytes consumed, -1 malformed (the head tells the HTTP status and
 * a static reason), -2 more input needed.
 */
#ifndef KZ_HTTP_PARSE_H
#define KZ_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"

/* A header as received. name and value point into the parsed buffer; the
 * value has its leading and trailing whitespace removed. */
struct kz_http_header {
    struct kz_slice name;
    struct kz_slice value;
};

/* Size limits for the request head. Zero fields are not allowed; use
 * kz_http_parse_limits_default(). */
struct kz_http_parse_limits {
    size_t max_request_line; /* bytes of the request line without CRLF (-> 414) */
    size_t max_header_line;  /* bytes of one header line without CRLF (-> 431) */
    size_t max_header_bytes; /* bytes of the header section after the request line (-> 431) */
    size_t max_headers;      /* number of header lines (-> 431) */
};

#define KZ_HTTP_DEFAULT_MAX_REQUEST_LINE 8192u
#define KZ_HTTP_DEFAULT_MAX_HEADER_LINE 8192u
#define KZ_HTTP_DEFAULT_MAX_HEADER_BYTES 16384u
#define KZ_HTTP_DEFAULT_MAX_HEADERS 100u

/* Fills *lim with the defaults above. */
void kz_http_parse_limits_default(struct kz_http_parse_limits *lim /* out */);

/* How the body of a request is framed. */
enum kz_http_body_kind {
    KZ_HTTP_BODY_NONE = 0,
    KZ_HTTP_BODY_LENGTH,  /* Content-Length bytes follow the head */
    KZ_HTTP_BODY_CHUNKED, /* chunked transfer coding (decode with kz_http_chunked_step) */
};

/* tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" /
 *         "_" / "`" / "|" / "~" / DIGIT / ALPHA   (RFC 9110 §5.6.2): the bytes
 * of a header name or method. */
static inline int kz_http_is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return 1;
    default:
        return 0;
    }
}

/* Scanner state kept by the caller between calls for one request. Zero it
 * (or call kz_http_scan_reset) before the first call for each request. */
struct kz_http_scan {
    size_t pos;        /* bytes examined so far */
    size_t line_start; /* offset of the line being scanned */
    size_t line0;      /* offset of the request line (after ignored blank lines) */
    size_t n_lines;    /* lines completed, the request line included */
};

static inline void kz_http_scan_reset(struct kz_http_scan *st)
{
    st->pos = st->line_start = st->line0 = st->n_lines = 0;
}

/* The parsed request head. All slices point into the buffer given to the
 * parser and stay valid as long as those bytes do. */
struct kz_http_head {
    struct kz_slice method;
    struct kz_slice target;    /* the request-target as sent */
    struct kz_slice path;      /* path part (absolute-form: after the authority), without the query */
    struct kz_slice query;     /* after '?', without it; len 0 if none (p NULL if absent) */
    struct kz_slice authority; /* absolute-form only: the authority of the target */
    struct kz_slice host;      /* Host header value (p NULL if absent) */
    int minor_version;         /* 0 or 1 */
    struct kz_http_header *headers; /* the caller's array (see kz_http_parse_head) */
    size_t n_headers;
    enum kz_http_body_kind body_kind;
    uint64_t content_length;   /* KZ_HTTP_BODY_LENGTH only */
    int keep_alive;            /* 1 when the connection may stay open after this request */
    int expect_continue;       /* "Expect: 100-continue" was sent */
    /* On -1: the HTTP status to answer (400, 414, 417, 431, 505) and a static,
     * human-readable reason; the connection must be closed after answering. */
    int err_status;
    const char *err_msg;
};

/* Scans buf[0..len) for the end of a request head, checking the size limits
 * and line endings on the way. Resumes from *st, so call it again with the
 * same buffer grown by new bytes (the bytes already scanned must not change).
 *
 * Returns the length of the head (through the empty line) when it is
 * complete; -2 when more bytes are needed; -1 when the bytes already prove
 * the request bad: out->err_status / err_msg say why (only those two fields
 * of *out are written). st->n_lines - 1 is then an upper bound for the number
 * of header lines. Leading empty lines (CRLF) before the request line are
 * skipped and counted in the returned length. */
int kz_http_scan_head(const char *buf, size_t len, const struct kz_http_parse_limits *lim,
                      struct kz_http_scan *st, struct kz_http_head *out /* out */);

/* Parses a complete head, buf[0..head_len) as found by kz_http_scan_head.
 * headers[0..max_headers) receives the header lines; a head with more lines
 * is rejected (431). Validates the syntax strictly and derives the framing
 * (body_kind, content_length), keep_alive and expect_continue.
 * Returns head_len on success, -1 on a bad request (out->err_status and
 * out->err_msg set). Slices in *out point into buf. */
int kz_http_parse_head(const char *buf, size_t head_len, struct kz_http_header *headers,
                       size_t max_headers, struct kz_http_head *out /* out */);

/* Both steps on one buffer: the convenient form for tests and one-shot use.
 * Same returns as kz_http_scan_head; on a complete head, *out is parsed. */
int kz_http_parse_request(const char *buf, size_t len, const struct kz_http_parse_limits *lim,
                          struct kz_http_scan *st, struct kz_http_header *headers,
                          size_t max_headers, struct kz_http_head *out /* out */);

/* Case-insensitive lookup of the first header called `name` in a parsed
 * head; returns 1 and sets *value, or 0. */
int kz_http_head_find(const struct kz_http_head *h, const char *name, struct kz_slice *value /* out */);

/* ---- chunked body ------------------------------------------------------ */

/* Decoder state, zeroed (kz_http_chunked_init) before the first byte of each
 * body. Chunk extensions are validated and ignored; trailer fields are
 * validated and ignored. */
struct kz_http_chunked {
    int state;
    uint64_t remaining;      /* data bytes left in the current chunk */
    unsigned n_digits;       /* significant hex digits of the size being read */
    size_t line_bytes;       /* extension bytes on the current size line */
    size_t trailer_bytes;    /* bytes of the trailer section so far */
};

#define KZ_HTTP_CHUNK_MAX_EXT 4096u        /* extension bytes per size line */
#define KZ_HTTP_CHUNK_MAX_TRAILERS 16384u  /* bytes of the trailer section */

void kz_http_chunked_init(struct kz_http_chunked *d);

/* Consumes a prefix of buf[0..len). When the consumed bytes end with chunk
 * data, *data is that data (a slice inside buf); otherwise data->len is 0.
 * Call again with the rest of the input until it returns 0 with no data or
 * the body is done (kz_http_chunked_done). Bytes after the end of the body
 * (the next request) are never consumed.
 *
 * Returns the number of bytes consumed (0 only when the body is done or len
 * is 0), or -1 when the framing is malformed (then the connection must be
 * closed after a 400). Never needs the caller to keep bytes: a partial size
 * line or trailer is remembered in *d. */
long kz_http_chunked_step(struct kz_http_chunked *d, const char *buf, size_t len,
                          struct kz_slice *data /* out */);

/* 1 once the last chunk, the trailers and the final CRLF were consumed. */
int kz_http_chunked_done(const struct kz_http_chunked *d);

/* Data bytes still to come in the chunk being read (0 between chunks): lets
 * a server refuse an oversized body as soon as the chunk size is known. */
static inline uint64_t kz_http_chunked_pending(const struct kz_http_chunked *d)
{
    return d->remaining;
}

#endif
