/* SPDX-License-Identifier: MIT
 * A growable byte buffer, always NUL-terminated after its bytes once it has
 * any, with an optional size limit: what network-fed text (an upstream
 * answer, an answer being aggregated) and generated text (metrics) are
 * collected in. The caller owns it: zero-initialize, kz_buf_free at the end.
 */
#ifndef KZ_BUF_H
#define KZ_BUF_H

#include <stddef.h>

#include "core/status.h"

struct kz_buf {
    char *p;    /* NULL until the first append */
    size_t len; /* bytes, not counting the NUL */
    size_t cap;
    int oom;    /* kz_buf_printf or a core/jsonw.h call failed once: the text is incomplete */
};

/* Appends n bytes. KZ_ELIMIT when len would pass max (0: no limit; the
 * buffer is unchanged), KZ_ENOMEM. */
kz_status kz_buf_append(struct kz_buf *b, const void *p, size_t n, size_t max);

/* Appends formatted text; on failure sets b->oom and later calls do nothing. */
void kz_buf_printf(struct kz_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void kz_buf_free(struct kz_buf *b);

#endif
