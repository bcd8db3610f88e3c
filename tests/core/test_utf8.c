/* SPDX-License-Identifier: MIT
 * UTF-8 sequence validation and sanitizing, on the classic edge cases.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/utf8.h"
#include "t.h"

static void seq(void)
{
    T_EQ_INT(kz_utf8_seq_len("a", 1), 1);
    T_EQ_INT(kz_utf8_seq_len("\xC3\xA9", 2), 2);          /* é */
    T_EQ_INT(kz_utf8_seq_len("\xE2\x96\x81", 3), 3);      /* U+2581 */
    T_EQ_INT(kz_utf8_seq_len("\xF0\x9F\x98\x80", 4), 4);  /* emoji */
    T_EQ_INT(kz_utf8_seq_len("\xC3", 1), 0);              /* cut short */
    T_EQ_INT(kz_utf8_seq_len("\x80", 1), 0);              /* lone continuation */
    T_EQ_INT(kz_utf8_seq_len("\xC0\xAF", 2), 0);          /* overlong '/' */
    T_EQ_INT(kz_utf8_seq_len("\xE0\x80\xAF", 3), 0);      /* overlong */
    T_EQ_INT(kz_utf8_seq_len("\xED\xA0\x80", 3), 0);      /* surrogate */
    T_EQ_INT(kz_utf8_seq_len("\xF4\x90\x80\x80", 4), 0);  /* > U+10FFFF */
    T_EQ_INT(kz_utf8_seq_len("\xFF", 1), 0);
    T_EQ_INT(kz_utf8_seq_len("\xC3\x28", 2), 0);          /* bad continuation */
}

static void sanitize(void)
{
    size_t n;
    char *s = kz_utf8_sanitize("ok\xFFhi\xC3", 6, &n);
    T_EQ_STR(s, "ok\xEF\xBF\xBDhi\xEF\xBF\xBD");
    T_EQ_INT(n, strlen("ok\xEF\xBF\xBDhi\xEF\xBF\xBD"));
    kz_free(s);
    s = kz_utf8_sanitize("a\xE2\x96z\xF0\x9F\x98", 7, &n); /* maximal subparts: one U+FFFD each */
    T_EQ_STR(s, "a\xEF\xBF\xBDz\xEF\xBF\xBD");
    kz_free(s);
    s = kz_utf8_sanitize("\xE0\x80\xED\xA0\x80", 5, &n); /* no valid second byte: one per byte */
    T_EQ_STR(s, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    kz_free(s);
    s = kz_utf8_sanitize("h\xC3\xA9llo", 6, &n);
    T_EQ_STR(s, "h\xC3\xA9llo");
    kz_free(s);
}

int main(void)
{
    t_subtest("sequence lengths", seq);
    t_subtest("sanitize", sanitize);
    return t_done();
}
