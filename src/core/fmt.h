/* SPDX-License-Identifier: MIT
 * Numbers and bounded copies without printf (and the value of a hex
 * digit, for the parsers), for the paths every request
 * takes (response heads, ids, chunk sizes, headers): snprintf parses its
 * format on every call and cost more there than the rest of building a
 * response head. Output is the same as printf's "%llu", "%lld", "%0*llx"
 * and "%s" into a buffer of the given size; the test compares them.
 */
#ifndef KZ_FMT_H
#define KZ_FMT_H

#include <stddef.h>
#include <stdint.h>

#define KZ_FMT_INT_SIZE 21 /* room for any 64-bit integer in decimal, sign and NUL */
#define KZ_FMT_HEX_SIZE 17 /* room for 16 hex digits and NUL */

/* Decimal digits of v into out (KZ_FMT_INT_SIZE bytes), NUL-terminated; returns the length. */
size_t kz_fmt_u64(char *out, uint64_t v);
size_t kz_fmt_i64(char *out, int64_t v);

/* Lowercase hex of v, zero-padded to at least width digits (0-16), into out
 * (KZ_FMT_HEX_SIZE bytes), NUL-terminated; returns the length. */
size_t kz_fmt_hex(char *out, uint64_t v, int width);

/* The value of hex digit c (either case), or -1 when c is none; for the
 * parsers of chunk sizes, \u and \x escapes and percent-escapes. Inline:
 * some of them run on every request. */
static inline int kz_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies src into dst (size >= 1 bytes), cut to size - 1 bytes, always
 * NUL-terminated; returns the bytes copied. */
size_t kz_fmt_copy(char *dst, size_t size, const char *src);

#endif
