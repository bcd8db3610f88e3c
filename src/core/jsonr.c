/* SPDX-License-Identifier: MIT
 * Reading a JSON object into a jansson tree (see jsonr.h). A recursive
 * descent over RFC 8259 with jansson's choices where the RFC leaves them
 * open: integers without fraction or exponent are integers, strings are
 * valid UTF-8 without U+0000, duplicate keys are refused. Every function
 * returns 0 (NULL) for "not claimed" and the whole parse gives up.
 */
#include "core/jsonr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/bytescan.h"
#include "core/fmt.h"
#include "core/jsonw.h"
#include "core/utf8.h"

#define MAX_INT_DIGITS 18 /* below 2^63 whatever the digits: no overflow check needed */
#define MAX_REAL_TEXT 63  /* longer reals go to jansson */

struct jr {
    const char *p, *end;
    int depth, max_depth;
    struct kz_buf tmp; /* a string with escapes, decoded (kz_jw_raw: errors stick in tmp.oom) */
};

static json_t *value(struct jr *s);

static void ws(struct jr *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hex4(const char *q, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = kz_hex_value(q[i]);
        if (d < 0)
            return 0;
        v = v * 16 + (unsigned)d;
    }
    *out = v;
    return 1;
}

/* One escape after its backslash (q points at the letter), appended to
 * s->tmp; returns the bytes it took, 0 when refused. */
static size_t escape(struct jr *s, const char *q)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *e = q < s->end && *q ? strchr(from, *q) : NULL;
    if (e) {
        kz_jw_raw(&s->tmp, &to[e - from], 1);
        return 1;
    }
    unsigned cp, lo;
    if (s->end - q < 5 || *q != 'u' || !hex4(q + 1, &cp) || cp == 0)
        return 0; /* U+0000 is jansson's to refuse (no JSON_ALLOW_NUL) */
    size_t took = 5;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return 0; /* a low surrogate first */
    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (s->end - q < 11 || q[5] != '\\' || q[6] != 'u' || !hex4(q + 7, &lo) || lo < 0xdc00 || lo > 0xdfff)
            return 0;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        took = 11;
    }
    char u[4];
    kz_jw_raw(&s->tmp, u, kz_utf8_encode(cp, u));
    return took;
}

/* A string after its opening quote: its bytes, in the input when it has no
 * escape, else decoded into s->tmp. */
static int string(struct jr *s, const char **out, size_t *len)
{
    const char *q = s->p;
    int escaped = 0;
    for (;;) {
        size_t run = kz_scan_json_text(q, (size_t)(s->end - q));
        if (escaped)
            kz_jw_raw(&s->tmp, q, run);
        q += run;
        if (q == s->end)
            return 0;
        if (*q == '"')
            break;
        if (*q != '\\')
            return 0; /* a control byte or ill-formed UTF-8 */
        if (!escaped) { /* the first escape: what came before it goes first */
            escaped = 1;
            s->tmp.len = 0;
            kz_jw_raw(&s->tmp, s->p, (size_t)(q - s->p));
        }
        size_t k = escape(s, q + 1);
        if (!k)
            return 0;
        q += 1 + k;
    }
    if (escaped && s->tmp.oom)
        return 0; /* an escape always wrote a byte, so s->tmp.p is set otherwise */
    *out = escaped ? s->tmp.p : s->p;
    *len = escaped ? s->tmp.len : (size_t)(q - s->p);
    s->p = q + 1;
    return 1;
}

static json_t *number(struct jr *s)
{
    const char *st = s->p, *q = st, *end = s->end;
    int neg = q < end && *q == '-', real = 0;
    q += neg;
    const char *digits = q;
    if (q < end && *q == '0')
        q++;
    else
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    if (q == digits)
        return NULL;
    size_t n_int = (size_t)(q - digits);
    if (q < end && *q == '.') {
        const char *f = ++q;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
        if (q == f)
            return NULL;
        real = 1;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        const char *x = q;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
        if (q == x)
            return NULL;
        real = 1;
    }
    s->p = q;
    if (!real) {
        if (n_int > MAX_INT_DIGITS)
            return NULL;
        json_int_t v = 0;
        for (const char *d = digits; d < q; d++)
            v = v * 10 + (*d - '0');
        return json_integer(neg ? -v : v);
    }
    size_t len = (size_t)(q - st);
    if (len > MAX_REAL_TEXT)
        return NULL;
    char text[MAX_REAL_TEXT + 1];
    memcpy(text, st, len);
    text[len] = '\0';
    errno = 0;
    /* jansson swaps '.' for the locale's radix before strtod; kyozon never
     * calls setlocale, so the C locale's '.' is the radix here as there */
    double d = strtod(text, NULL);
    return errno == ERANGE ? NULL : json_real(d);
}

static json_t *literal(struct jr *s, const char *word, size_t n, json_t *v)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return NULL;
    s->p += n;
    return v;
}

static json_t *object(struct jr *s)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    s->p++; /* '{' */
    ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return o;
    }
    for (;;) {
        const char *k;
        size_t kn;
        if (s->p == s->end || *s->p != '"')
            break;
        s->p++;
        if (!string(s, &k, &kn) || json_object_getn(o, k, kn))
            break; /* a duplicate key: jansson refuses it */
        char *own = NULL;
        if (k == s->tmp.p) { /* decoded: the value may need s->tmp too */
            if (!(own = kz_malloc(kn + 1)))
                break;
            memcpy(own, k, kn + 1);
            k = own;
        }
        ws(s);
        json_t *v = NULL;
        if (s->p < s->end && *s->p == ':') {
            s->p++;
            v = value(s);
        }
        int bad = !v || json_object_setn_new_nocheck(o, k, kn, v) != 0; /* it takes v even on failure */
        kz_free(own);
        if (bad)
            break;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            ws(s);
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return o;
        }
        break;
    }
    json_decref(o);
    return NULL;
}

static json_t *array(struct jr *s)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    s->p++; /* '[' */
    ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return a;
    }
    for (;;) {
        json_t *v = value(s);
        if (!v || json_array_append_new(a, v) != 0)
            break;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            return a;
        }
        break;
    }
    json_decref(a);
    return NULL;
}

static json_t *value(struct jr *s)
{
    ws(s);
    if (s->p == s->end)
        return NULL;
    const char *k;
    size_t kn;
    json_t *v = NULL;
    switch (*s->p) {
    case '{':
    case '[':
        if (++s->depth > s->max_depth)
            return NULL;
        v = *s->p == '{' ? object(s) : array(s);
        s->depth--;
        return v;
    case '"':
        s->p++;
        return string(s, &k, &kn) ? json_stringn_nocheck(k, kn) : NULL;
    case 't':
        return literal(s, "true", 4, json_true());
    case 'f':
        return literal(s, "false", 5, json_false());
    case 'n':
        return literal(s, "null", 4, json_null());
    default:
        return number(s);
    }
}

json_t *kz_jr_object(const char *p, size_t n, int max_depth)
{
    if (!p)
        return NULL;
    struct jr s = {p, p + n, 0, max_depth, {0}};
    ws(&s);
    json_t *v = s.p < s.end && *s.p == '{' ? value(&s) : NULL;
    ws(&s);
    if (v && s.p != s.end) {
        json_decref(v); /* something after the object */
        v = NULL;
    }
    kz_buf_free(&s.tmp);
    return v;
}
