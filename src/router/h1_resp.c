/* SPDX-License-Identifier: MIT
 * HTTP/1.x response parsing (see h1_resp.h). */
#include "router/h1_resp.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/fmt.h"

#define MAX_HEAD (64u << 10)

enum { S_STATUS, S_HEADER, S_BODY_LEN, S_BODY_CLOSE, S_CHUNK_SIZE, S_CHUNK_DATA, S_CHUNK_END, S_TRAILER, S_DONE };

static void head_reset(struct kz_h1_resp *p)
{
    p->status = 0;
    p->http10 = 0;
    p->chunked = p->has_len = p->te = p->conn_close = p->conn_ka = 0;
    p->len = p->remain = 0;
}

void kz_h1_resp_init(struct kz_h1_resp *p)
{
    memset(p, 0, sizeof *p);
    p->state = S_STATUS;
}

void kz_h1_resp_reset(struct kz_h1_resp *p)
{
    head_reset(p);
    p->state = S_STATUS;
    p->keep_alive = 0;
    p->line_len = 0;
    p->head_bytes = 0;
    p->touched = 0;
    p->msg[0] = '\0';
}

void kz_h1_resp_free(struct kz_h1_resp *p)
{
    kz_free(p->line);
    p->line = NULL;
    p->line_cap = p->line_len = 0;
}

int kz_h1_resp_untouched(const struct kz_h1_resp *p) { return !p->touched; }

static enum kz_h1_rc fail(struct kz_h1_resp *p, const char *msg)
{
    snprintf(p->msg, sizeof p->msg, "%s", msg);
    return KZ_H1_ERROR;
}

/* The next whole line from buf[*i..n) into (*line, *len), line end included:
 * 1 when there is one, 0 when the input ran out first (the partial line is
 * kept), -1 (p->msg set) when it would pass the head limit or memory ran out. */
static int next_line(struct kz_h1_resp *p, const char *buf, size_t n, size_t *i, const char **line, size_t *len)
{
    const char *s = buf + *i, *nl = memchr(s, '\n', n - *i);
    size_t take = nl ? (size_t)(nl - s) + 1 : n - *i;
    if (p->head_bytes + take > MAX_HEAD) {
        snprintf(p->msg, sizeof p->msg, "upstream response head larger than 64 KiB");
        return -1;
    }
    p->head_bytes += take;
    *i += take;
    if (nl && p->line_len == 0) { /* the common case: the line is whole in this read */
        *line = s;
        *len = take;
        return 1;
    }
    if (p->line_len + take > p->line_cap) {
        size_t cap = p->line_cap ? p->line_cap : 256;
        while (cap < p->line_len + take)
            cap *= 2;
        char *nb = kz_realloc(p->line, cap);
        if (!nb) {
            snprintf(p->msg, sizeof p->msg, "out of memory");
            return -1;
        }
        p->line = nb;
        p->line_cap = cap;
    }
    memcpy(p->line + p->line_len, s, take);
    p->line_len += take;
    if (!nl)
        return 0;
    *line = p->line;
    *len = p->line_len;
    p->line_len = 0; /* the caller uses it before the next call */
    return 1;
}

static int blank(const char *l, size_t n) { return n == 1 || (n == 2 && l[0] == '\r'); }

/* Without its line end and surrounding blanks. */
static void trim(const char **v, size_t *n)
{
    while (*n && (**v == ' ' || **v == '\t'))
        (*v)++, (*n)--;
    while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t' || (*v)[*n - 1] == '\r' || (*v)[*n - 1] == '\n'))
        (*n)--;
}

static int has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i < n;) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t j = i;
        while (j < n && v[j] != ',' && v[j] != ' ' && v[j] != '\t' && v[j] != ';')
            j++;
        if (j - i == tl && strncasecmp(v + i, tok, tl) == 0)
            return 1;
        while (j < n && v[j] != ',')
            j++;
        i = j;
    }
    return 0;
}

static enum kz_h1_rc status_line(struct kz_h1_resp *p, const char *l, size_t n)
{
    if (n < 13 || memcmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') || l[8] != ' ' ||
        l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' || l[11] > '9' ||
        (l[12] != ' ' && l[12] != '\r' && l[12] != '\n'))
        return fail(p, "malformed status line in the upstream response");
    head_reset(p);
    p->http10 = l[7] == '0';
    p->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    return KZ_H1_MORE;
}

static enum kz_h1_rc header_line(struct kz_h1_resp *p, const char *l, size_t n)
{
    const char *colon = memchr(l, ':', n);
    if (!colon || colon == l || l[0] == ' ' || l[0] == '\t')
        return fail(p, "malformed header line in the upstream response");
    size_t nl = (size_t)(colon - l);
    for (size_t i = 0; i < nl; i++)
        if (l[i] == ' ' || l[i] == '\t')
            return fail(p, "malformed header line in the upstream response");
    const char *v = colon + 1;
    size_t vn = n - nl - 1;
    trim(&v, &vn);
    if (nl == 14 && strncasecmp(l, "content-length", 14) == 0) {
        uint64_t x = 0;
        if (vn == 0 || vn > 18)
            return fail(p, "bad Content-Length in the upstream response");
        for (size_t i = 0; i < vn; i++) {
            if (v[i] < '0' || v[i] > '9')
                return fail(p, "bad Content-Length in the upstream response");
            x = x * 10 + (uint64_t)(v[i] - '0');
        }
        if (p->has_len && x != p->len)
            return fail(p, "conflicting Content-Length headers in the upstream response");
        p->has_len = 1;
        p->len = x;
    } else if (nl == 17 && strncasecmp(l, "transfer-encoding", 17) == 0) {
        p->te = 1;
        /* the last coding decides: "gzip, chunked" is chunked framing */
        const char *last = v;
        size_t ln = vn;
        for (size_t i = 0; i < vn; i++)
            if (v[i] == ',')
                last = v + i + 1, ln = vn - i - 1;
        trim(&last, &ln);
        p->chunked = ln == 7 && strncasecmp(last, "chunked", 7) == 0;
    } else if (nl == 10 && strncasecmp(l, "connection", 10) == 0) {
        p->conn_close |= has_token(v, vn, "close");
        p->conn_ka |= has_token(v, vn, "keep-alive");
    }
    return KZ_H1_MORE;
}

/* The blank line after a head: picks the framing. */
static enum kz_h1_rc head_end(struct kz_h1_resp *p)
{
    if (p->status == 101)
        return fail(p, "the upstream switched protocols (101), which was not asked for");
    if (p->status < 200) { /* interim: the real head follows */
        p->state = S_STATUS;
        return KZ_H1_MORE;
    }
    p->keep_alive = p->http10 ? p->conn_ka && !p->conn_close : !p->conn_close;
    if (p->status == 204 || p->status == 304) {
        p->state = S_DONE;
    } else if (p->te) {
        if (p->chunked) {
            p->state = S_CHUNK_SIZE;
            p->head_bytes = 0; /* chunk-size lines and trailers have budgets of their own */
        } else {
            p->state = S_BODY_CLOSE;
            p->keep_alive = 0;
        }
    } else if (p->has_len) {
        p->remain = p->len;
        p->state = p->len ? S_BODY_LEN : S_DONE;
    } else {
        p->state = S_BODY_CLOSE;
        p->keep_alive = 0;
    }
    return KZ_H1_MORE;
}

static enum kz_h1_rc chunk_size(struct kz_h1_resp *p, const char *l, size_t n)
{
    uint64_t x = 0;
    size_t i = 0;
    for (; i < n; i++) {
        int d = kz_hex_value(l[i]);
        if (d < 0)
            break;
        if (x >> 56)
            return fail(p, "chunk size too large in the upstream response");
        x = x * 16 + (uint64_t)d;
    }
    if (i == 0 || (l[i] != ';' && l[i] != ' ' && l[i] != '\t' && l[i] != '\r' && l[i] != '\n'))
        return fail(p, "bad chunk size in the upstream response");
    p->remain = x;
    p->state = x ? S_CHUNK_DATA : S_TRAILER;
    return KZ_H1_MORE;
}

enum kz_h1_rc kz_h1_resp_feed(struct kz_h1_resp *p, const char *buf, size_t n, size_t *used,
                              const struct kz_h1_cbs *cbs, void *ud)
{
    size_t i = 0;
    enum kz_h1_rc rc = KZ_H1_MORE;
    if (n)
        p->touched = 1;
    while (rc == KZ_H1_MORE && p->state != S_DONE && i < n) {
        const char *l;
        size_t ln;
        if (p->state == S_BODY_LEN || p->state == S_CHUNK_DATA || p->state == S_BODY_CLOSE) {
            size_t take = n - i;
            if (p->state != S_BODY_CLOSE && take > p->remain)
                take = (size_t)p->remain;
            const char *s = buf + i;
            i += take;
            if (p->state != S_BODY_CLOSE && (p->remain -= take) == 0)
                p->state = p->state == S_BODY_LEN ? S_DONE : S_CHUNK_END;
            if (cbs->on_body && cbs->on_body(ud, s, take))
                rc = KZ_H1_STOP;
            continue;
        }
        int got = next_line(p, buf, n, &i, &l, &ln);
        if (got < 0)
            rc = KZ_H1_ERROR;
        if (got <= 0)
            continue;
        int head = p->state == S_STATUS || p->state == S_HEADER;
        switch (p->state) {
        case S_STATUS:
            rc = status_line(p, l, ln);
            if (rc == KZ_H1_MORE)
                p->state = S_HEADER;
            break;
        case S_HEADER:
            rc = blank(l, ln) ? head_end(p) : header_line(p, l, ln);
            break;
        case S_CHUNK_SIZE:
            rc = chunk_size(p, l, ln);
            p->head_bytes = 0; /* the limit is per line here: a long stream has many */
            break;
        case S_CHUNK_END:
            if (!blank(l, ln))
                rc = fail(p, "chunk data not followed by a line end in the upstream response");
            else
                p->state = S_CHUNK_SIZE;
            p->head_bytes = 0;
            break;
        default: /* S_TRAILER: read and dropped */
            if (blank(l, ln))
                p->state = S_DONE;
            break;
        }
        /* head lines (status, headers, the blank line) go to the caller as they came */
        if (rc == KZ_H1_MORE && head && cbs->on_line && cbs->on_line(ud, l, ln))
            rc = KZ_H1_STOP;
    }
    *used = i;
    if (rc == KZ_H1_MORE && p->state == S_DONE)
        rc = KZ_H1_DONE;
    return rc;
}

enum kz_h1_rc kz_h1_resp_eof(struct kz_h1_resp *p)
{
    if (p->state == S_BODY_CLOSE) {
        p->state = S_DONE;
        p->keep_alive = 0;
        return KZ_H1_DONE;
    }
    if (p->state == S_DONE)
        return KZ_H1_DONE;
    return fail(p, p->touched ? "the upstream closed the connection before the response was complete"
                              : "the upstream closed the connection without answering");
}
