/* SPDX-License-Identifier: MIT
 * The word-at-a-time run finders against their byte-at-a-time definitions:
 * every byte value in every position of a word, and random text of awkward
 * lengths at every offset, mostly ordinary bytes with rare special ones.
 */
#include <string.h>

#include "core/bytescan.h"
#include "t.h"

typedef size_t (*scan_fn)(const char *, size_t);

static const struct {
    const char *name;
    scan_fn fast, ref;
} fns[] = {
    {"printable", kz_scan_printable, kz_scan_printable_ref},
    {"line", kz_scan_line, kz_scan_line_ref},
    {"json_plain", kz_scan_json_plain, kz_scan_json_plain_ref},
};

static unsigned rng = 12345;

static unsigned next(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

/* Every byte value placed at every position of a 24-byte run of 'a', and
 * the lengths around it: the borrow of one byte must not hide another. */
static void each_byte(void)
{
    int bad = 0;
    for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++)
        for (int v = 0; v < 256; v++)
            for (size_t pos = 0; pos < 24; pos++) {
                char buf[24];
                memset(buf, 'a', sizeof buf);
                buf[pos] = (char)v;
                if (pos + 1 < sizeof buf)
                    buf[pos + 1] = (char)(v ^ 0x80); /* a second odd byte right behind it */
                for (size_t n = 0; n <= sizeof buf; n++)
                    bad += fns[f].fast(buf, n) != fns[f].ref(buf, n);
            }
    T_EQ_INT(bad, 0);
}

static void random_text(void)
{
    static const char specials[] = "\r\n\"\\\t\x7f\x80\xff\x01\x1f";
    char buf[300];
    int bad = 0;
    for (int round = 0; round < 3000; round++) {
        unsigned rate = 1 + next() % 64; /* one special byte in `rate`, on average */
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = next() % rate ? (char)(0x20 + next() % 95) : specials[next() % (sizeof specials - 1)];
        size_t off = next() % 16, n = next() % (sizeof buf - off);
        for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++)
            bad += fns[f].fast(buf + off, n) != fns[f].ref(buf + off, n);
    }
    T_EQ_INT(bad, 0);
    char all[512];
    memset(all, 'z', sizeof all);
    T_OK(kz_scan_printable(all, sizeof all) == sizeof all && kz_scan_line(all, sizeof all) == sizeof all &&
             kz_scan_json_plain(all, sizeof all) == sizeof all,
         "a run to the end is the whole length");
}

int main(void)
{
    t_subtest("each_byte", each_byte);
    t_subtest("random_text", random_text);
    return t_done();
}
