/* SPDX-License-Identifier: MIT */
#include "core/utf8.h"

#include <string.h>

#include "core/alloc.h"

size_t kz_utf8_seq_len(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[0];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || n > len)
        return 0;
    if (n == 1)
        return 1;
    unsigned cp = c & (0x7Fu >> n);
    for (size_t k = 1; k < n; k++) {
        if ((u[k] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (u[k] & 0x3F);
    }
    /* overlong forms, surrogates and values past U+10FFFF are not characters */
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    return n;
}

/* Bytes of the longest prefix of a well-formed sequence at s (at least 1),
 * following the Unicode "maximal subpart" rule: an ill-formed run becomes
 * one U+FFFD, a byte that can start nothing becomes one U+FFFD each. This
 * is what browsers' TextDecoder and Python's errors="replace" do. */
static size_t maximal_subpart(const unsigned char *u, size_t len)
{
    unsigned c = u[0];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else
        return 1;
    size_t m = 1;
    if (m < len && u[m] >= lo && u[m] <= hi)
        m++;
    else
        return 1;
    while (m < n && m < len && (u[m] & 0xC0) == 0x80)
        m++;
    return m;
}

char *kz_utf8_sanitize(const char *s, size_t len, size_t *out_len)
{
    char *buf = kz_malloc(len * 3 + 1);
    if (!buf)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = kz_utf8_seq_len(s + i, len - i);
        if (n) {
            memcpy(buf + o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(buf + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += maximal_subpart((const unsigned char *)s + i, len - i);
        }
    }
    buf[o] = '\0';
    *out_len = o;
    return buf;
}

size_t kz_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
