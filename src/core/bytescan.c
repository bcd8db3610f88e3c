/* SPDX-License-Identifier: MIT
 * Runs of ordinary bytes, eight at a time (see bytescan.h).
 *
 * A word is tested for "some byte is special" with the classic tricks:
 * below(x, k) has a high bit set in some byte iff some byte of x is below k
 * (k <= 128), and is_byte(x, c) iff some byte equals c. Borrows can mark
 * bytes after the first special one too, but never one before it, so the
 * first flag in memory order is exact.
 */
#include "core/bytescan.h"

#include <stdint.h>
#include <string.h>

#include "core/utf8.h"

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

static inline uint64_t load(const char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof x); /* any alignment; one load where the target allows it */
    return x;
}

static inline uint64_t below(uint64_t x, unsigned k) { return (x - ONES * k) & ~x & HIGHS; }

static inline uint64_t is_byte(uint64_t x, unsigned char c) { return below(x ^ (ONES * c), 1); }

static inline int printable(unsigned char c) { return c >= 0x20 && c < 0x7f; }
static inline int line_byte(unsigned char c) { return c != '\r' && c != '\n'; }
static inline int json_plain(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

/* The whole-word tests: nonzero when the word may hold a byte outside the class. */
static inline uint64_t printable_stop(uint64_t x) { return below(x, 0x20) | is_byte(x, 0x7f) | (x & HIGHS); }
static inline uint64_t line_stop(uint64_t x) { return is_byte(x, '\r') | is_byte(x, '\n'); }
static inline uint64_t json_stop(uint64_t x)
{
    return below(x, 0x20) | is_byte(x, '"') | is_byte(x, '\\') | (x & HIGHS);
}

/* Where in a word that has one the run ends. On a little-endian target the
 * lowest flag is exact (a borrow only runs toward higher bytes, which lie
 * later in memory), so it is the lowest set bit; elsewhere the word is
 * read again byte by byte. */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define IN_WORD(mask, bytes_fn, p, n) ((size_t)__builtin_ctzll(mask) / 8)
#else
#define IN_WORD(mask, bytes_fn, p, n) bytes_fn(p, n)
#endif

#define RUN(name, stop, in_class)                                                                                     \
    size_t name##_ref(const char *p, size_t n)                                                                        \
    {                                                                                                                 \
        size_t i = 0;                                                                                                 \
        while (i < n && in_class((unsigned char)p[i]))                                                                \
            i++;                                                                                                      \
        return i;                                                                                                     \
    }                                                                                                                 \
    size_t name(const char *p, size_t n)                                                                              \
    {                                                                                                                 \
        size_t i = 0;                                                                                                 \
        for (; i + 8 <= n; i += 8) {                                                                                  \
            uint64_t m = stop(load(p + i));                                                                           \
            if (m)                                                                                                    \
                return i + IN_WORD(m, name##_ref, p + i, n - i);                                                      \
        }                                                                                                             \
        return i + name##_ref(p + i, n - i);                                                                          \
    }

RUN(kz_scan_printable, printable_stop, printable)
RUN(kz_scan_line, line_stop, line_byte)
RUN(kz_scan_json_plain, json_stop, json_plain)

size_t kz_scan_json_text(const char *p, size_t n)
{
    size_t i = 0, k;
    for (;;) {
        i += kz_scan_json_plain(p + i, n - i);
        if (i == n || (unsigned char)p[i] < 0x80 || !(k = kz_utf8_seq_len(p + i, n - i)))
            return i;
        i += k;
    }
}
