/* SPDX-License-Identifier: MIT
 * JSON writer (see jsonw.h).
 */
#include "core/jsonw.h"

#include <string.h>

#include "core/alloc.h"
#include "core/bytescan.h"
#include "core/fmt.h"
#include "core/utf8.h"

void kz_jw_raw_grow(struct kz_buf *b, const char *s, size_t n)
{
    if (!b->oom && kz_buf_append(b, s, n, 0))
        b->oom = 1;
}

/* The escape for byte c, or NULL when it goes as it is. */
static const char *escape(unsigned char c, char tmp[8])
{
    static const char hex[] = "0123456789ABCDEF";
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    default:
        if (c >= 0x20)
            return NULL;
        memcpy(tmp, "\\u00", 4);
        tmp[4] = hex[c >> 4];
        tmp[5] = hex[c & 15];
        tmp[6] = '\0';
        return tmp;
    }
}

/* 1 when s is well-formed UTF-8 and was written; 0 (nothing written past
 * the opening state) when it is not. Runs of plain bytes go in one append. */
static int str_body(struct kz_buf *b, const char *s, size_t n)
{
    size_t run = 0, i = 0;
    char tmp[8];
    while (i < n) {
        i += kz_scan_json_text(s + i, n - i);
        if (i == n)
            break;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80)
            return 0; /* ill-formed UTF-8 */
        const char *e = escape(c, tmp);
        kz_jw_raw(b, s + run, i - run);
        kz_jw_raw(b, e, strlen(e));
        run = ++i;
    }
    kz_jw_raw(b, s + run, n - run);
    return 1;
}

void kz_jw_str(struct kz_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    size_t start = b->len;
    KZ_JW_LIT(b, "\"");
    if (!str_body(b, s, n)) {
        /* rare: a token cut a character; write the repaired copy instead */
        if (!b->oom) {
            b->len = start + 1;
            b->p[b->len] = '\0';
        }
        size_t m = 0;
        char *fixed = kz_utf8_sanitize(s, n, &m);
        if (!fixed) {
            b->oom = 1;
            return;
        }
        str_body(b, fixed, m);
        kz_free(fixed);
    }
    KZ_JW_LIT(b, "\"");
}

void kz_jw_cstr(struct kz_buf *b, const char *s)
{
    if (s)
        kz_jw_str(b, s, strlen(s));
    else
        KZ_JW_LIT(b, "null");
}

void kz_jw_int(struct kz_buf *b, long long v)
{
    char tmp[KZ_FMT_INT_SIZE];
    kz_jw_raw(b, tmp, kz_fmt_i64(tmp, v));
}
