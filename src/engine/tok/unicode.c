/* SPDX-License-Identifier: MIT
 * Code point helpers for the tokenizer: lenient UTF-8 decoding, category
 * flags, case folding and the GPT-2 byte-level alphabet.
 *
 * Categories come from utf8proc's Unicode tables; the grouping (one flag per
 * major category, White_Space as an extra bit) is what the pre-tokenizer
 * regexes and the WordPiece normaliser test.
 */
#include <utf8proc.h>

#include "core/alloc.h"
#include "core/utf8.h"
#include "engine/tok/tok_int.h"

/* White_Space from the UCD's PropList.txt. */
static int is_white_space(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20;
    if (cp < 0x1680)
        return cp == 0x85 || cp == 0xA0;
    return cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static unsigned category_flag(uint32_t cp)
{
    if (cp > 0x10FFFF)
        return TOK_CPT_UNDEF;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return TOK_CPT_LETTER;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
        return TOK_CPT_MARK;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return TOK_CPT_NUMBER;
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        return TOK_CPT_PUNCT;
    case UTF8PROC_CATEGORY_SM:
    case UTF8PROC_CATEGORY_SC:
    case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO:
        return TOK_CPT_SYMBOL;
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
        return TOK_CPT_SEPARATOR;
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
        return TOK_CPT_CONTROL;
    case UTF8PROC_CATEGORY_CN:
    default:
        return TOK_CPT_UNDEF;
    }
}

unsigned kz_tok__cpt_flags(uint32_t cp)
{
    unsigned f = category_flag(cp);
    if (is_white_space(cp))
        f |= TOK_CPT_SPACE;
    return f;
}

size_t kz_tok__utf8_len(unsigned char lead)
{
    /* by the high nibble: 0-b -> 1 (ASCII and stray continuation bytes) */
    static const unsigned char n[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return n[lead >> 4];
}

static int cont(const char *s, size_t i) { return ((unsigned char)s[i] & 0xC0) == 0x80; }

uint32_t kz_tok__utf8_decode(const char *s, size_t len, size_t *adv)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t cp;
    *adv = 1;
    if (u[0] < 0x80)
        return u[0];
    if (!(u[0] & 0x40))
        return 0xFFFD; /* continuation byte where a lead was expected */
    if (!(u[0] & 0x20)) {
        if (len < 2 || !cont(s, 1))
            return 0xFFFD;
        *adv = 2;
        return ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    }
    if (!(u[0] & 0x10)) {
        if (len < 3 || !cont(s, 1) || !cont(s, 2))
            return 0xFFFD;
        *adv = 3;
        return ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    }
    if (!(u[0] & 0x08)) {
        if (len < 4 || !cont(s, 1) || !cont(s, 2) || !cont(s, 3))
            return 0xFFFD;
        cp = ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
             ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
        /* F5..F7 leads decode past U+10FFFF, which has no encoding back */
        if (cp > 0x10FFFF)
            return 0xFFFD;
        *adv = 4;
        return cp;
    }
    return 0xFFFD;
}

size_t kz_tok__utf8_encode(uint32_t cp, char *out)
{
    return kz_utf8_encode(cp, out);
}

kz_status kz_tok__to_cpts(const char *s, size_t len, uint32_t **cps, size_t *n)
{
    /* one code point per byte at most */
    uint32_t *v = kz_malloc((len ? len : 1) * sizeof *v);
    size_t i = 0, k = 0, adv;
    if (!v)
        return KZ_ENOMEM;
    while (i < len) {
        v[k++] = kz_tok__utf8_decode(s + i, len - i, &adv);
        i += adv;
    }
    *cps = v;
    *n = k;
    return KZ_OK;
}

uint32_t kz_tok__tolower(uint32_t cp)
{
    if (cp > 0x10FFFF)
        return cp;
    return (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
}

uint32_t kz_tok__nfd_first(uint32_t cp)
{
    /* the longest canonical decomposition is 4 code points; 8 is ample */
    utf8proc_int32_t d[8];
    int last = 0;
    utf8proc_ssize_t n;
    if (cp < 0xC0 || cp > 0x10FFFF)
        return cp; /* nothing below U+00C0 decomposes */
    n = utf8proc_decompose_char((utf8proc_int32_t)cp, d, 8, UTF8PROC_DECOMPOSE, &last);
    if (n < 1 || n > 8)
        return cp;
    return (uint32_t)d[0];
}

/* GPT-2's byte-level alphabet keeps the printable bytes ! .. ~, ¡ .. ¬ and
 * ® .. ÿ as themselves and moves the other 68 (0x00-0x20, 0x7F-0xA0, 0xAD),
 * in byte order, to U+0100 onwards, so every byte is a visible character. */
static uint32_t byte_cp(unsigned char b)
{
    if (b <= 0x20)
        return 0x100u + b;
    if (b >= 0x7F && b <= 0xA0)
        return 0x100u + 33 + (b - 0x7Fu);
    if (b == 0xAD)
        return 0x100u + 67;
    return b;
}

size_t kz_tok__byte_char(unsigned char b, char *out) { return kz_tok__utf8_encode(byte_cp(b), out); }

int kz_tok__char_byte(uint32_t cp)
{
    if (cp >= 0x100 && cp < 0x100 + 33)
        return (int)(cp - 0x100);
    if (cp >= 0x100 + 33 && cp < 0x100 + 67)
        return (int)(0x7F + (cp - 0x100 - 33));
    if (cp == 0x100 + 67)
        return 0xAD;
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    return -1;
}
