/* SPDX-License-Identifier: MIT
 * The word-at-a-time run finders against their byte-at-a-time definitions:
 * every byte value in every position of a word, and random text of awkward
 * lengths at every offset, mostly ordinary bytes with rare special ones.
 */
#include <string.h>

#include "core/bytescan.h"
#include "core/utf8.h"
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

/* kz_scan_json_text by its definition: byte by byte, UTF-8 by kz_utf8_seq_len. */
static size_t json_text_ref(const char *p, size_t n)
{
    size_t i = 0, k;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\')
            k = 1;
        else if (c < 0x80 || !(k = kz_utf8_seq_len(p + i, n - i)))
            break;
        i += k;
    }
    return i;
}

/* Text of plain bytes, whole and cut UTF-8 sequences and the stop bytes. */
static void json_text(void)
{
    static const char *const bits[] = {"abcdefgh", "x", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xe2\x82",
                                       "\xc0\xaf", "\xed\xa0\x80", "\xff", "\"", "\\", "\x01", "\x7f"};
    char buf[200];
    int bad = 0;
    for (int round = 0; round < 20000; round++) {
        size_t n = 0;
        while (n < sizeof buf - 8) {
            const char *b = bits[next() % 13 < 6 ? next() % 5 : next() % 13];
            size_t l = strlen(b);
            memcpy(buf + n, b, l);
            n += l;
            if (next() % 16 == 0)
                break;
        }
        size_t cut = next() % (n + 1); /* the end may fall inside a sequence */
        bad += kz_scan_json_text(buf, cut) != json_text_ref(buf, cut);
    }
    T_EQ_INT(bad, 0);
}

int main(void)
{
    t_subtest("each_byte", each_byte);
    t_subtest("random_text", random_text);
    t_subtest("json_text", json_text);
    return t_done();
}
