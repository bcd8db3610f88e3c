/* SPDX-License-Identifier: MIT
 * Numbers and bounded copies without printf (see fmt.h).
 */
#include "core/fmt.h"

#include <string.h>

size_t kz_fmt_u64(char *out, uint64_t v)
{
    char tmp[KZ_FMT_INT_SIZE];
    char *p = tmp + sizeof tmp;
    do { /* digits from the end */
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t n = (size_t)(tmp + sizeof tmp - p);
    memcpy(out, p, n);
    out[n] = '\0';
    return n;
}

size_t kz_fmt_i64(char *out, int64_t v)
{
    if (v >= 0)
        return kz_fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    /* negated as unsigned, so that INT64_MIN has a magnitude too */
    return 1 + kz_fmt_u64(out + 1, 0u - (uint64_t)v);
}

size_t kz_fmt_hex(char *out, uint64_t v, int width)
{
    static const char digits[] = "0123456789abcdef";
    int n = 1;
    while (n < 16 && (v >> (4 * n)))
        n++;
    if (n < width)
        n = width > 16 ? 16 : width;
    for (int i = n - 1; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
    out[n] = '\0';
    return (size_t)n;
}

size_t kz_fmt_copy(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}
