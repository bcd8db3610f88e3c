/* SPDX-License-Identifier: MIT
 * The printf-free formatters against snprintf itself: edge values, random
 * values of every magnitude, every hex width, copies cut at every size.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fmt.h"
#include "t.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A value of random bit length, so that every digit count comes up. */
static uint64_t any_magnitude(void)
{
    unsigned bits = (unsigned)(next() % 65);
    return bits == 64 ? next() : next() & ((UINT64_C(1) << bits) - 1);
}

static int same_u64(uint64_t v)
{
    char a[KZ_FMT_INT_SIZE], b[32];
    size_t n = kz_fmt_u64(a, v);
    int m = snprintf(b, sizeof b, "%" PRIu64, v);
    return (int)n == m && strcmp(a, b) == 0;
}

static int same_i64(int64_t v)
{
    char a[KZ_FMT_INT_SIZE], b[32];
    size_t n = kz_fmt_i64(a, v);
    int m = snprintf(b, sizeof b, "%" PRId64, v);
    return (int)n == m && strcmp(a, b) == 0;
}

static int same_hex(uint64_t v, int width)
{
    char a[KZ_FMT_HEX_SIZE], b[32];
    size_t n = kz_fmt_hex(a, v, width);
    int m = snprintf(b, sizeof b, "%0*" PRIx64, width, v);
    return (int)n == m && strcmp(a, b) == 0;
}

static void integers(void)
{
    const uint64_t edges[] = {0, 1, 9, 10, 99, 100, UINT32_MAX, (uint64_t)INT64_MAX, (uint64_t)INT64_MAX + 1,
                              UINT64_MAX - 1, UINT64_MAX};
    int bad = 0;
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        bad += !same_u64(edges[i]) + !same_i64((int64_t)edges[i]) + !same_i64(-(int64_t)(edges[i] >> 1));
    T_EQ_INT(bad, 0);
    T_OK(same_i64(INT64_MIN) && same_i64(INT64_MAX), "the signed extremes");
    for (int i = 0; i < 200000; i++) {
        uint64_t v = any_magnitude();
        bad += !same_u64(v) + !same_i64((int64_t)v) + !same_i64(-(int64_t)(v >> 1));
    }
    T_EQ_INT(bad, 0);
}

static void hex(void)
{
    int bad = 0;
    for (int w = 0; w <= 16; w++) {
        bad += !same_hex(0, w) + !same_hex(UINT64_MAX, w) + !same_hex(0xabc, w);
        for (int i = 0; i < 20000; i++)
            bad += !same_hex(any_magnitude(), w);
    }
    T_EQ_INT(bad, 0);
}

/* kz_hex_value against strtol on every byte value. */
static void hex_digits(void)
{
    int bad = 0;
    for (int c = 0; c < 256; c++) {
        char s[2] = {(char)c, '\0'}, *end;
        long want = isxdigit(c) ? strtol(s, &end, 16) : -1;
        bad += kz_hex_value((char)c) != want;
    }
    T_EQ_INT(bad, 0);
}

static void copies(void)
{
    const char *src = "x-kyozon-provider";
    int bad = 0;
    for (size_t size = 1; size < 24; size++) {
        char a[24], b[24];
        memset(a, '#', sizeof a);
        size_t n = kz_fmt_copy(a, size, src);
        snprintf(b, size, "%s", src);
        bad += strcmp(a, b) != 0 || n != strlen(b) || (size < sizeof a && a[size] != '#');
    }
    T_EQ_INT(bad, 0);
    char one[1];
    T_OK(kz_fmt_copy(one, 1, "abc") == 0 && one[0] == '\0', "a one-byte buffer holds the empty string");
}

int main(void)
{
    t_subtest("integers", integers);
    t_subtest("hex", hex);
    t_subtest("hex digits", hex_digits);
    t_subtest("copies", copies);
    return t_done();
}
