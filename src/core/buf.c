/* SPDX-License-Identifier: MIT
 * Growable byte buffer (see buf.h). Capacity doubles, so appending n bytes
 * one piece at a time costs O(n) copies in all.
 */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

static kz_status reserve(struct kz_buf *b, size_t need)
{
    if (need <= b->cap)
        return KZ_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *np = kz_realloc(b->p, cap);
    if (!np)
        return KZ_ENOMEM;
    b->p = np;
    b->cap = cap;
    return KZ_OK;
}

kz_status kz_buf_append(struct kz_buf *b, const void *p, size_t n, size_t max)
{
    if (max && b->len + n > max)
        return KZ_ELIMIT;
    if (reserve(b, b->len + n + 1))
        return KZ_ENOMEM;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return KZ_OK;
}

void kz_buf_printf(struct kz_buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        if (reserve(b, b->len + (size_t)n + 1)) {
            b->oom = 1;
            return;
        }
    }
}

void kz_buf_free(struct kz_buf *b)
{
    kz_free(b->p);
    memset(b, 0, sizeof *b);
}
