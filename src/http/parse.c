/* SPDX-License-Identifier: MIT
 * HTTP/1.1 request head and chunked body parsing (see parse.h).
 *
 * Two passes over a head: kz_http_scan_head runs as bytes arrive and only
 * finds line ends, enforces the size limits and rejects bytes that can never
 * be valid (bare CR/LF, control characters); kz_http_parse_head then parses
 * the complete head once, strictly. The grammar is RFC 9112 §3 and §5 with
 * every leniency the RFC permits turned off where it touches framing.
 */
#include "http/parse.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "core/bytescan.h"
#include "core/fmt.h"

// ---------------------------------------------------------------- bytes

/* A control character that may not appear anywhere in a head (CR and LF are
 * handled as line structure; HTAB is whitespace inside field values). */
static int is_bad_ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f;
}

static int is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Case-insensitive equality of a slice and a lower-case C string. */
static int slice_ieq(struct kz_slice s, const char *lc)
{
    size_t n = strlen(lc);
    if (s.len != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s.p[i]) != (unsigned char)lc[i])
            return 0;
    return 1;
}

static int prefix_ieq(const char *p, size_t len, const char *lc)
{
    size_t n = strlen(lc);
    if (len < n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)p[i]) != (unsigned char)lc[i])
            return 0;
    return 1;
}

void kz_http_parse_limits_default(struct kz_http_parse_limits *lim)
{
    lim->max_request_line = KZ_HTTP_DEFAULT_MAX_REQUEST_LINE;
    lim->max_header_line = KZ_HTTP_DEFAULT_MAX_HEADER_LINE;
    lim->max_header_bytes = KZ_HTTP_DEFAULT_MAX_HEADER_BYTES;
    lim->max_headers = KZ_HTTP_DEFAULT_MAX_HEADERS;
}

static int reject(struct kz_http_head *out, int status, const char *msg)
{
    out->err_status = status;
    out->err_msg = msg;
    return -1;
}

// ---------------------------------------------------------------- scan

/* Empty lines tolerated before a request line (RFC 9112 §2.2 asks for at
 * least one); more is not a client being robust, it is noise. */
#define MAX_LEADING_EMPTY_LINES 4

/* Which size limit, if any, the bytes of the current line up to index
 * last break; when both do, the one the byte-by-byte checks below would
 * have hit first (the line's, on a tie). */
static size_t first_over(size_t base, size_t limit, size_t slack)
{
    /* base + limit + slack, the first index over a limit; SIZE_MAX (never)
     * where that does not fit, as the per-byte check never fires there either */
    return limit > SIZE_MAX - slack - base ? SIZE_MAX : base + limit + slack;
}

static const char *run_over_limit(const struct kz_http_parse_limits *lim, const struct kz_http_scan *st, size_t last)
{
    if (st->n_lines == 0)
        return last >= first_over(st->line_start, lim->max_request_line, 1) ? "request line too long" : NULL;
    size_t line_at = first_over(st->line_start, lim->max_header_line, 1);
    size_t section_at = first_over(st->line0, lim->max_header_bytes, 2);
    if (line_at <= last && line_at <= section_at)
        return "header line too long";
    return section_at <= last ? "header section too large" : NULL;
}

int kz_http_scan_head(const char *buf, size_t len, const struct kz_http_parse_limits *lim,
                      struct kz_http_scan *st, struct kz_http_head *out)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t i = st->pos;
    /* The head is at most a request line, the header section and a few CRLFs;
     * an int return can hold it as long as the limits are sane. */
    if (lim->max_request_line + lim->max_header_bytes > (size_t)1 << 30)
        return reject(out, 400, "parser limits too large");
    for (; i < len; i++) {
        /* A run of printable bytes needs only the size limits, and those
         * grow with every byte: checked once at the run's last byte, with
         * the verdict the first byte over a limit would have had. */
        size_t run = kz_scan_printable(buf + i, len - i);
        if (run) {
            const char *over = run_over_limit(lim, st, i + run - 1);
            if (over)
                return reject(out, st->n_lines == 0 ? 414 : 431, over);
            i += run;
            if (i == len)
                break;
        }
        unsigned char c = b[i];
        if (c != '\n') {
            /* Size limits, checked at every byte so that the verdict does not
             * depend on how the bytes were split across reads. The +1 lets a
             * line of exactly the limit be followed by its CR. */
            size_t cur = i + 1 - st->line_start;
            if (st->n_lines == 0) {
                if (cur > lim->max_request_line + 1)
                    return reject(out, 414, "request line too long");
            } else {
                if (cur > lim->max_header_line + 1)
                    return reject(out, 431, "header line too long");
                if (i + 1 - st->line0 > lim->max_header_bytes + 2)
                    return reject(out, 431, "header section too large");
            }
            if (c == '\r') {
                if (i + 1 == len)
                    break; /* cannot tell a bare CR yet: look again with more bytes */
                if (b[i + 1] != '\n')
                    return reject(out, 400, "bare CR in request head");
                continue;
            }
            if (is_bad_ctl(c))
                return reject(out, 400, "control character in request head");
            if (st->n_lines == 0 && (c == '\t' || c >= 0x80))
                return reject(out, 400, "invalid character in request line");
            continue;
        }
        if (i == st->line_start || b[i - 1] != '\r')
            return reject(out, 400, "bare LF in request head");
        size_t line_len = i - 1 - st->line_start;
        if (st->n_lines == 0) {
            if (line_len == 0) {
                /* An empty line before the request line: skipped. */
                if (i + 1 > 2 * MAX_LEADING_EMPTY_LINES)
                    return reject(out, 400, "too many empty lines before the request line");
                st->line_start = st->line0 = i + 1;
                continue;
            }
            if (line_len > lim->max_request_line)
                return reject(out, 414, "request line too long");
            st->n_lines = 1;
            st->line_start = st->line0 = i + 1; /* line0 now marks the header section */
            continue;
        }
        if (line_len == 0) {
            st->pos = i + 1;
            return (int)(i + 1);
        }
        if (line_len > lim->max_header_line)
            return reject(out, 431, "header line too long");
        st->n_lines++;
        if (st->n_lines - 1 > lim->max_headers)
            return reject(out, 431, "too many header fields");
        st->line_start = i + 1;
        if (st->line_start - st->line0 > lim->max_header_bytes)
            return reject(out, 431, "header section too large");
    }
    st->pos = i;
    return -2;
}

// ---------------------------------------------------------------- head

/* Host = uri-host [ ":" port ]: reg-name, IPv4 or an IP-literal in brackets.
 * Stricter than the URI grammar on purpose: no userinfo, no commas, no
 * spaces, nothing a proxy and we could split differently. */
static int host_ok(struct kz_slice v)
{
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        switch (c) {
        case '-': case '.': case '_': case '~': case '%': case ':': case '[': case ']':
        case '!': case '$': case '&': case '\'': case '(': case ')': case '*': case '+':
        case ';': case '=':
            continue;
        default:
            return 0;
        }
    }
    return 1;
}

/* Content-Length = 1*DIGIT (a list, even of equal values, is rejected). */
static int parse_content_length(struct kz_slice v, uint64_t *out)
{
    uint64_t n = 0;
    if (v.len == 0)
        return -1;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if (c < '0' || c > '9')
            return -1;
        unsigned d = (unsigned)(c - '0');
        if (n > (UINT64_MAX - d) / 10)
            return -1;
        n = n * 10 + d;
    }
    *out = n;
    return 0;
}

/* Connection = #connection-option: looks for "close" and "keep-alive". */
static void parse_connection(struct kz_slice v, int *has_close, int *has_keep_alive)
{
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (is_ows((unsigned char)v.p[i]) || v.p[i] == ','))
            i++;
        size_t s = i;
        while (i < v.len && v.p[i] != ',')
            i++;
        size_t e = i;
        while (e > s && is_ows((unsigned char)v.p[e - 1]))
            e--;
        struct kz_slice tok = {v.p + s, e - s};
        if (slice_ieq(tok, "close"))
            *has_close = 1;
        else if (slice_ieq(tok, "keep-alive"))
            *has_keep_alive = 1;
    }
}

/* Splits the request-target into path, query and (absolute-form) authority. */
static int parse_target(const char *t, size_t n, struct kz_http_head *out)
{
    static const char slash[] = "/";
    size_t i = 0;
    if (memchr(t, '#', n))
        return reject(out, 400, "fragment in request-target");
    if (t[0] == '/') {
        /* origin-form: nothing to strip */
    } else if (n == 1 && t[0] == '*') {
        if (!kz_slice_eq(out->method, "OPTIONS"))
            return reject(out, 400, "asterisk-form is only for OPTIONS");
        out->path = (struct kz_slice){t, 1};
        return 0;
    } else if (prefix_ieq(t, n, "http://") || prefix_ieq(t, n, "https://")) {
        i = (t[4] == ':') ? 7 : 8;
        size_t a = i;
        while (i < n && t[i] != '/' && t[i] != '?')
            i++;
        out->authority = (struct kz_slice){t + a, i - a};
        if (out->authority.len == 0 || !host_ok(out->authority))
            return reject(out, 400, "invalid authority in request-target");
    } else {
        return reject(out, 400, "invalid request-target");
    }
    size_t ps = i;
    while (i < n && t[i] != '?')
        i++;
    out->path = (struct kz_slice){t + ps, i - ps};
    if (out->path.len == 0)
        out->path = (struct kz_slice){slash, 1};
    if (i < n)
        out->query = (struct kz_slice){t + i + 1, n - i - 1};
    return 0;
}

int kz_http_parse_head(const char *buf, size_t head_len, struct kz_http_header *headers,
                       size_t max_headers, struct kz_http_head *out)
{
    const unsigned char *b = (const unsigned char *)buf;
    const size_t end = head_len;
    size_t p = 0;
    int seen_cl = 0, seen_te = 0, seen_host = 0, conn_close = 0, conn_keep = 0;

    memset(out, 0, sizeof *out);
    out->headers = headers;
    if (head_len > (size_t)1 << 30)
        return reject(out, 400, "request head too large");
    while (p + 1 < end && b[p] == '\r' && b[p + 1] == '\n')
        p += 2;

    /* request-line = method SP request-target SP HTTP-version CRLF */
    size_t s = p;
    while (p < end && kz_http_is_tchar(b[p]))
        p++;
    if (p == s || p >= end || b[p] != ' ')
        return reject(out, 400, "invalid method");
    out->method = (struct kz_slice){buf + s, p - s};
    p++;
    s = p;
    while (p < end && b[p] > 0x20 && b[p] < 0x7f)
        p++;
    if (p == s || p >= end || b[p] != ' ')
        return reject(out, 400, "invalid request-target");
    out->target = (struct kz_slice){buf + s, p - s};
    p++;
    if (end - p < 10 || memcmp(buf + p, "HTTP/", 5) != 0 || b[p + 5] < '0' || b[p + 5] > '9' ||
        b[p + 6] != '.' || b[p + 7] < '0' || b[p + 7] > '9' || b[p + 8] != '\r' || b[p + 9] != '\n')
        return reject(out, 400, "invalid HTTP version");
    if (b[p + 5] != '1' || b[p + 7] > '1')
        return reject(out, 505, "HTTP version not supported");
    out->minor_version = b[p + 7] - '0';
    p += 10;
    if (parse_target(out->target.p, out->target.len, out) != 0)
        return -1;

    /* *( field-line CRLF ) CRLF */
    for (;;) {
        if (p >= end)
            return reject(out, 400, "truncated request head");
        if (b[p] == '\r') {
            if (p + 1 >= end || b[p + 1] != '\n')
                return reject(out, 400, "bare CR in request head");
            p += 2;
            break;
        }
        if (is_ows(b[p]))
            return reject(out, 400, "obsolete line folding or whitespace before a field");
        s = p;
        while (p < end && kz_http_is_tchar(b[p]))
            p++;
        if (p >= end || p == s)
            return reject(out, 400, "invalid header name");
        if (b[p] != ':')
            return reject(out, 400, is_ows(b[p]) ? "whitespace between header name and colon"
                                                  : "invalid header name");
        struct kz_slice name = {buf + s, p - s};
        p++;
        while (p < end && is_ows(b[p]))
            p++;
        s = p;
        while (p < end && b[p] != '\r') {
            if (is_bad_ctl(b[p]) || b[p] == '\n')
                return reject(out, 400, "invalid character in header value");
            p++;
        }
        if (p + 1 >= end || b[p + 1] != '\n')
            return reject(out, 400, "bare CR in request head");
        size_t e = p;
        while (e > s && is_ows(b[e - 1]))
            e--;
        struct kz_slice value = {buf + s, e - s};
        p += 2;
        if (out->n_headers >= max_headers)
            return reject(out, 431, "too many header fields");
        headers[out->n_headers].name = name;
        headers[out->n_headers].value = value;
        out->n_headers++;

        if (slice_ieq(name, "content-length")) {
            if (seen_cl)
                return reject(out, 400, "duplicate Content-Length");
            seen_cl = 1;
            if (parse_content_length(value, &out->content_length) != 0)
                return reject(out, 400, "invalid Content-Length");
        } else if (slice_ieq(name, "transfer-encoding")) {
            if (seen_te)
                return reject(out, 400, "duplicate Transfer-Encoding");
            seen_te = 1;
            if (!slice_ieq(value, "chunked"))
                return reject(out, 400, "unsupported Transfer-Encoding (only \"chunked\" is accepted)");
        } else if (slice_ieq(name, "host")) {
            if (seen_host)
                return reject(out, 400, "duplicate Host");
            seen_host = 1;
            if (!host_ok(value))
                return reject(out, 400, "invalid Host");
            out->host = value;
        } else if (slice_ieq(name, "connection")) {
            parse_connection(value, &conn_close, &conn_keep);
        } else if (slice_ieq(name, "expect")) {
            if (!slice_ieq(value, "100-continue"))
                return reject(out, 417, "unsupported expectation");
            out->expect_continue = 1;
        }
    }
    if (p != end)
        return reject(out, 400, "bytes after the end of the request head");
    if (seen_cl && seen_te)
        return reject(out, 400, "both Content-Length and Transfer-Encoding");
    if (seen_te && out->minor_version == 0)
        return reject(out, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (out->minor_version == 1 && !seen_host)
        return reject(out, 400, "missing Host");
    if (seen_te)
        out->body_kind = KZ_HTTP_BODY_CHUNKED;
    else if (seen_cl && out->content_length > 0)
        out->body_kind = KZ_HTTP_BODY_LENGTH;
    if (out->minor_version == 1)
        out->keep_alive = !conn_close;
    else
        out->keep_alive = conn_keep && !conn_close;
    return (int)end;
}

int kz_http_parse_request(const char *buf, size_t len, const struct kz_http_parse_limits *lim,
                          struct kz_http_scan *st, struct kz_http_header *headers,
                          size_t max_headers, struct kz_http_head *out)
{
    int n = kz_http_scan_head(buf, len, lim, st, out);
    if (n < 0)
        return n;
    if (max_headers > lim->max_headers)
        max_headers = lim->max_headers;
    return kz_http_parse_head(buf, (size_t)n, headers, max_headers, out);
}

int kz_http_head_find(const struct kz_http_head *h, const char *name, struct kz_slice *value)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < h->n_headers; i++) {
        struct kz_slice hn = h->headers[i].name;
        if (hn.len != n)
            continue;
        size_t k = 0;
        while (k < n && lower((unsigned char)hn.p[k]) == lower((unsigned char)name[k]))
            k++;
        if (k == n) {
            *value = h->headers[i].value;
            return 1;
        }
    }
    return 0;
}

// ---------------------------------------------------------------- chunked

/* chunked-body = *chunk last-chunk trailer-section CRLF
 * chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 * chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
 * ext-val      = token / quoted-string                       (RFC 9112 §7.1) */
enum {
    CH_SIZE_START = 0, /* first hex digit of a size */
    CH_SIZE,           /* more hex digits */
    CH_SIZE_WS,        /* BWS after the size or a value: only ';' may follow */
    CH_EXT_PRE_NAME,   /* after ';' */
    CH_EXT_NAME,
    CH_EXT_POST_NAME,  /* BWS after a name: '=' or ';' must follow */
    CH_EXT_PRE_VAL,    /* after '=' */
    CH_EXT_VAL_TOKEN,
    CH_EXT_VAL_Q,      /* inside a quoted-string */
    CH_EXT_VAL_QESC,   /* after a backslash in a quoted-string */
    CH_EXT_VAL_END,    /* after the closing quote */
    CH_SIZE_LF,        /* CR of the size line seen */
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TR_START,       /* start of a trailer line or the final CRLF */
    CH_TR_NAME,
    CH_TR_VALUE,
    CH_TR_LF,
    CH_FINAL_LF,
    CH_DONE,
    CH_BAD,
};

void kz_http_chunked_init(struct kz_http_chunked *d)
{
    memset(d, 0, sizeof *d);
    d->state = CH_SIZE_START;
}

int kz_http_chunked_done(const struct kz_http_chunked *d) { return d->state == CH_DONE; }

static int is_qdtext(unsigned char c)
{
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) ||
           c >= 0x80;
}

long kz_http_chunked_step(struct kz_http_chunked *d, const char *buf, size_t len, struct kz_slice *data)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t i = 0;
    data->p = NULL;
    data->len = 0;
    if (len > (size_t)LONG_MAX)
        len = (size_t)LONG_MAX;
    while (i < len) {
        unsigned char c = b[i];
        int hex;
        switch (d->state) {
        case CH_SIZE_START:
            if ((hex = kz_hex_value((char)c)) < 0)
                goto bad;
            d->remaining = (uint64_t)hex;
            d->n_digits = d->remaining ? 1 : 0;
            d->line_bytes = 0;
            d->state = CH_SIZE;
            break;
        case CH_SIZE:
            if ((hex = kz_hex_value((char)c)) >= 0) {
                if (d->remaining || c != '0')
                    d->n_digits++;
                if (d->n_digits > 15) /* 60 bits: far above any body limit */
                    goto bad;
                d->remaining = (d->remaining << 4) | (uint64_t)hex;
            } else if (c == ';') {
                d->state = CH_EXT_PRE_NAME;
            } else if (is_ows(c)) {
                d->state = CH_SIZE_WS;
            } else if (c == '\r') {
                d->state = CH_SIZE_LF;
            } else {
                goto bad;
            }
            break;
        case CH_SIZE_WS:
            if (c == ';')
                d->state = CH_EXT_PRE_NAME;
            else if (!is_ows(c))
                goto bad;
            break;
        case CH_EXT_PRE_NAME:
            if (kz_http_is_tchar(c))
                d->state = CH_EXT_NAME;
            else if (!is_ows(c))
                goto bad;
            break;
        case CH_EXT_NAME:
            if (c == '=')
                d->state = CH_EXT_PRE_VAL;
            else if (c == ';')
                d->state = CH_EXT_PRE_NAME;
            else if (is_ows(c))
                d->state = CH_EXT_POST_NAME;
            else if (c == '\r')
                d->state = CH_SIZE_LF;
            else if (!kz_http_is_tchar(c))
                goto bad;
            break;
        case CH_EXT_POST_NAME:
            if (c == '=')
                d->state = CH_EXT_PRE_VAL;
            else if (c == ';')
                d->state = CH_EXT_PRE_NAME;
            else if (!is_ows(c))
                goto bad;
            break;
        case CH_EXT_PRE_VAL:
            if (c == '"')
                d->state = CH_EXT_VAL_Q;
            else if (kz_http_is_tchar(c))
                d->state = CH_EXT_VAL_TOKEN;
            else if (!is_ows(c))
                goto bad;
            break;
        case CH_EXT_VAL_TOKEN:
            if (c == ';')
                d->state = CH_EXT_PRE_NAME;
            else if (is_ows(c))
                d->state = CH_SIZE_WS;
            else if (c == '\r')
                d->state = CH_SIZE_LF;
            else if (!kz_http_is_tchar(c))
                goto bad;
            break;
        case CH_EXT_VAL_Q:
            if (c == '"')
                d->state = CH_EXT_VAL_END;
            else if (c == '\\')
                d->state = CH_EXT_VAL_QESC;
            else if (!is_qdtext(c))
                goto bad;
            break;
        case CH_EXT_VAL_QESC:
            if (c == '\t' || c == ' ' || (c >= 0x21 && c <= 0x7e) || c >= 0x80)
                d->state = CH_EXT_VAL_Q;
            else
                goto bad;
            break;
        case CH_EXT_VAL_END:
            if (c == ';')
                d->state = CH_EXT_PRE_NAME;
            else if (is_ows(c))
                d->state = CH_SIZE_WS;
            else if (c == '\r')
                d->state = CH_SIZE_LF;
            else
                goto bad;
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                goto bad;
            d->state = d->remaining ? CH_DATA : CH_TR_START;
            break;
        case CH_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > d->remaining)
                n = (size_t)d->remaining;
            data->p = buf + i;
            data->len = n;
            d->remaining -= n;
            if (d->remaining == 0)
                d->state = CH_DATA_CR;
            return (long)(i + n);
        }
        case CH_DATA_CR:
            if (c != '\r')
                goto bad;
            d->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                goto bad;
            d->state = CH_SIZE_START;
            break;
        case CH_TR_START:
            if (c == '\r')
                d->state = CH_FINAL_LF;
            else if (kz_http_is_tchar(c))
                d->state = CH_TR_NAME;
            else
                goto bad; /* obs-fold, bare LF, junk */
            break;
        case CH_TR_NAME:
            if (c == ':')
                d->state = CH_TR_VALUE;
            else if (!kz_http_is_tchar(c))
                goto bad;
            break;
        case CH_TR_VALUE:
            if (c == '\r')
                d->state = CH_TR_LF;
            else if (c == '\n' || is_bad_ctl(c))
                goto bad;
            break;
        case CH_TR_LF:
            if (c != '\n')
                goto bad;
            d->state = CH_TR_START;
            break;
        case CH_FINAL_LF:
            if (c != '\n')
                goto bad;
            d->state = CH_DONE;
            return (long)(i + 1);
        case CH_DONE:
            return (long)i;
        default:
            goto bad;
        }
        /* Bound what we parse without keeping: extensions and trailers. */
        if (d->state >= CH_SIZE_WS && d->state <= CH_EXT_VAL_END &&
            ++d->line_bytes > KZ_HTTP_CHUNK_MAX_EXT)
            goto bad;
        if (d->state >= CH_TR_START && d->state <= CH_FINAL_LF &&
            ++d->trailer_bytes > KZ_HTTP_CHUNK_MAX_TRAILERS)
            goto bad;
        i++;
    }
    return (long)i;
bad:
    d->state = CH_BAD;
    return -1;
}
