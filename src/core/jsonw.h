/* SPDX-License-Identifier: MIT
 * Writing JSON straight into a kz_buf, without building a tree: for the
 * answers written once per request or per token (a chat completion, a
 * stream chunk), where building and dumping a jansson tree cost more than
 * the rest of the request. The output is what jansson's compact dump gives
 * for the same values, byte for byte (tests/core/test_jsonw.c checks it):
 * '"', '\\' and control bytes escaped, everything else as UTF-8.
 *
 * Errors stick: a failed append sets b->oom, later calls do nothing, and
 * the caller checks b->oom once at the end.
 */
#ifndef KZ_JSONW_H
#define KZ_JSONW_H

#include <stddef.h>
#include <string.h>

#include "core/buf.h"

/* Bytes as they are (keys, punctuation, literals). Inline while they fit
 * the buffer: an answer is written in a hundred small pieces, and a
 * literal's memcpy then compiles to a move or two. */
void kz_jw_raw_grow(struct kz_buf *b, const char *s, size_t n);
static inline void kz_jw_raw(struct kz_buf *b, const char *s, size_t n)
{
    if (!b->oom && b->p && n < b->cap - b->len) { /* room for the bytes and the NUL */
        if (n) /* s may be NULL then */
            memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
        return;
    }
    kz_jw_raw_grow(b, s, n);
}
#define KZ_JW_LIT(b, lit) kz_jw_raw((b), (lit), sizeof(lit) - 1)

/* A JSON string of n arbitrary bytes: ill-formed UTF-8 becomes U+FFFD (as
 * kz_utf8_sanitize does it). */
void kz_jw_str(struct kz_buf *b, const char *s, size_t n);

/* kz_jw_str of a NUL-terminated string, or null when s is NULL. */
void kz_jw_cstr(struct kz_buf *b, const char *s);

void kz_jw_int(struct kz_buf *b, long long v);

#endif
