/* SPDX-License-Identifier: MIT
 * Building answers as scripts (see mock.h) and the edits modes make to them.
 * Appends never fail loudly: a failed allocation marks the script, and the
 * connection refuses to send a marked script, so builders stay linear.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "http/http.h"
#include "mock.h"

struct kz_mock_script *kz_mock_script_new(void)
{
    struct kz_mock_script *s = kz_calloc(1, sizeof *s);
    if (s)
        s->end = KZ_MOCK_END_KEEP;
    return s;
}

void kz_mock_script_free(struct kz_mock_script *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        kz_free(s->pieces[i].data);
    kz_free(s->pieces);
    kz_free(s);
}

/* Takes ownership of data (freed here on failure). */
static void add_owned(struct kz_mock_script *s, char *data, size_t len, int token)
{
    if (!s || s->failed || !data) {
        kz_free(data);
        if (s)
            s->failed = 1;
        return;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct kz_mock_piece *p = kz_realloc(s->pieces, cap * sizeof *p);
        if (!p) {
            kz_free(data);
            s->failed = 1;
            return;
        }
        s->pieces = p;
        s->cap = cap;
    }
    s->pieces[s->n++] = (struct kz_mock_piece){data, len, 0, token};
}

void kz_mock_add(struct kz_mock_script *s, const void *data, size_t len, int token)
{
    char *copy = kz_malloc(len ? len : 1);
    if (copy && len)
        memcpy(copy, data, len);
    add_owned(s, copy, len, token);
}

void kz_mock_add_str(struct kz_mock_script *s, const char *str) { kz_mock_add(s, str, strlen(str), 0); }

void kz_mock_addf(struct kz_mock_script *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *buf = n >= 0 ? kz_malloc((size_t)n + 1) : NULL;
    if (buf) {
        va_start(ap, fmt);
        vsnprintf(buf, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    add_owned(s, buf, buf ? (size_t)n : 0, 0);
}

void kz_mock_add_chunk(struct kz_mock_script *s, const void *data, size_t len, int token)
{
    char size_line[24];
    int h = snprintf(size_line, sizeof size_line, "%zx\r\n", len);
    char *buf = kz_malloc((size_t)h + len + 2);
    if (buf) {
        memcpy(buf, size_line, (size_t)h);
        if (len)
            memcpy(buf + h, data, len);
        memcpy(buf + (size_t)h + len, "\r\n", 2);
    }
    add_owned(s, buf, (size_t)h + len + 2, token);
}

void kz_mock_add_last_chunk(struct kz_mock_script *s) { kz_mock_add_str(s, "0\r\n\r\n"); }

void kz_mock_add_head(struct kz_mock_script *s, int status, const char *content_type, const char *extra,
                      long long content_length, int keep_alive)
{
    char framing[64];
    if (content_length < 0)
        snprintf(framing, sizeof framing, "Transfer-Encoding: chunked\r\n");
    else
        snprintf(framing, sizeof framing, "Content-Length: %lld\r\n", content_length);
    kz_mock_addf(s, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s%s%s\r\n", status, kz_http_status_reason(status),
                 content_type, extra ? extra : "", framing, keep_alive ? "" : "Connection: close\r\n");
    if (s)
        s->keep_alive = keep_alive;
}

struct kz_mock_script *kz_mock_respond(int status, const char *content_type, const char *extra, const char *body,
                                       size_t len, int keep_alive)
{
    struct kz_mock_script *s = kz_mock_script_new();
    kz_mock_add_head(s, status, content_type, extra, (long long)len, keep_alive);
    size_t half = len / 2;
    if (half)
        kz_mock_add(s, body, half, 0);
    if (len - half)
        kz_mock_add(s, body + half, len - half, 1);
    return s;
}

struct kz_mock_script *kz_mock_respond_json(int status, const char *extra, json_t *v, int keep_alive)
{
    char *body = kz_mock_dump(v);
    if (!body)
        return NULL;
    struct kz_mock_script *s = kz_mock_respond(status, "application/json", extra, body, strlen(body), keep_alive);
    kz_free(body);
    return s;
}

struct kz_mock_script *kz_mock_stream_start(const char *content_type, const char *extra, int keep_alive)
{
    struct kz_mock_script *s = kz_mock_script_new();
    if (!s)
        return NULL;
    s->streamed = 1;
    kz_mock_add_head(s, 200, content_type, extra, -1, keep_alive);
    return s;
}

void kz_mock_cut_tokens(struct kz_mock_script *s, unsigned long keep_tokens)
{
    unsigned long seen = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!s->pieces[i].token)
            continue;
        if (seen == keep_tokens) {
            for (size_t k = i; k < s->n; k++)
                kz_free(s->pieces[k].data);
            s->n = i;
            return;
        }
        seen++;
    }
}

void kz_mock_cut_bytes(struct kz_mock_script *s, unsigned long keep_bytes)
{
    unsigned long total = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct kz_mock_piece *p = &s->pieces[i];
        if (total + p->len <= keep_bytes) {
            total += p->len;
            continue;
        }
        p->len = keep_bytes - total; /* this piece is sent in part, the rest dropped */
        size_t first_dropped = p->len ? i + 1 : i;
        for (size_t k = first_dropped; k < s->n; k++)
            kz_free(s->pieces[k].data);
        s->n = first_dropped;
        return;
    }
}

void kz_mock_pace_tokens(struct kz_mock_script *s, unsigned delay_ms)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->pieces[i].token)
            s->pieces[i].delay_ms = delay_ms;
}
