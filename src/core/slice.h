/* SPDX-License-Identifier: MIT
 * A borrowed view of bytes someone else owns. Whoever hands one out states
 * how long it stays valid. Not NUL-terminated.
 */
#ifndef KZ_SLICE_H
#define KZ_SLICE_H

#include <stddef.h>
#include <string.h>

struct kz_slice {
    const char *p;
    size_t len;
};

static inline int kz_slice_eq(struct kz_slice s, const char *cstr)
{
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.p, cstr, n) == 0);
}

#endif
