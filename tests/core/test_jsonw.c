/* SPDX-License-Identifier: MIT
 * The JSON writer against jansson's compact dump, the reference it must
 * match byte for byte: random strings (quotes, backslashes, every control
 * byte, multi-byte characters, ill-formed UTF-8), integers at the edges,
 * null, and a failure that sticks.
 */
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/jsonw.h"
#include "core/utf8.h"
#include "t.h"

/* jansson's dump of the string, repaired the way the writer repairs it */
static char *ref_str(const char *s, size_t n)
{
    json_t *v = json_stringn(s, n);
    if (!v) {
        size_t m = 0;
        char *fixed = kz_utf8_sanitize(s, n, &m);
        v = json_stringn_nocheck(fixed, m);
        kz_free(fixed);
    }
    char *d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    return d;
}

static uint64_t rng = 0x9e3779b97f4a7c15u;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void strings(void)
{
    /* pieces the strings are made of: plain, escaped, UTF-8, broken UTF-8 */
    static const char *const parts[] = {"a", "Hello", " ", "\"", "\\", "/", "\n", "\r", "\t", "\b", "\f", "\x01",
                                        "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                        "\xe2\x82", "\xff", "\xc0\xaf", "\xed\xa0\x80", "\x80"};
    int bad = 0, broken = 0;
    for (int iter = 0; iter < 3000; iter++) {
        char s[256];
        size_t n = 0;
        int k = (int)rnd(24);
        for (int i = 0; i < k; i++) {
            const char *p = parts[rnd(sizeof parts / sizeof *parts)];
            size_t l = strlen(p);
            memcpy(s + n, p, l);
            n += l;
        }
        if (iter % 7 == 0 && n < sizeof s)
            s[n++] = '\0'; /* an embedded NUL: \u0000 */
        struct kz_buf b = {0};
        kz_jw_str(&b, s, n);
        char *want = ref_str(s, n);
        json_t *valid = json_stringn(s, n);
        broken += valid == NULL;
        json_decref(valid);
        if (b.oom || !want || b.len != strlen(want) || memcmp(b.p, want, b.len) != 0) {
            if (bad++ < 3)
                T_OK(0, "string %d: writer '%s', jansson '%s'", iter, b.p ? b.p : "(none)", want ? want : "(none)");
        }
        free(want);
        kz_buf_free(&b);
    }
    T_OK(bad == 0, "3000 random strings written as jansson dumps them (%d differ)", bad);
    T_OK(broken > 100, "ill-formed UTF-8 among them (%d)", broken);

    /* every single byte */
    bad = 0;
    for (int c = 0; c < 256; c++) {
        char s[1] = {(char)c};
        struct kz_buf b = {0};
        kz_jw_str(&b, s, 1);
        char *want = ref_str(s, 1);
        bad += !want || strcmp(b.p, want) != 0;
        free(want);
        kz_buf_free(&b);
    }
    T_EQ_INT(bad, 0);
}

static void ints_and_null(void)
{
    static const long long v[] = {0, 1, -1, 9, 10, -10, 1700000000, LLONG_MAX, LLONG_MIN, 4294967296LL};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        struct kz_buf b = {0};
        kz_jw_int(&b, v[i]);
        json_t *j = json_integer(v[i]);
        char *want = json_dumps(j, JSON_ENCODE_ANY);
        T_EQ_STR(b.p, want);
        free(want);
        json_decref(j);
        kz_buf_free(&b);
    }
    struct kz_buf b = {0};
    kz_jw_cstr(&b, NULL);
    KZ_JW_LIT(&b, ",");
    kz_jw_cstr(&b, "x");
    T_EQ_STR(b.p, "null,\"x\"");
    kz_buf_free(&b);
}

static void failure_sticks(void)
{
    struct kz_buf b = {0};
    KZ_JW_LIT(&b, "ab");
    b.oom = 1;
    kz_jw_str(&b, "cd", 2);
    kz_jw_int(&b, 5);
    KZ_JW_LIT(&b, "x");
    T_OK(b.oom && b.len == 2 && strcmp(b.p, "ab") == 0, "nothing written after a failure");
    kz_buf_free(&b);
}

int main(void)
{
    t_subtest("strings", strings);
    t_subtest("ints_and_null", ints_and_null);
    t_subtest("failure_sticks", failure_sticks);
    return t_done();
}
