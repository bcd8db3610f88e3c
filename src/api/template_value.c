/* SPDX-License-Identifier: MIT
 * Template runtime values: the arena and string builder they live in,
 * UTF-8 helpers, and the Python semantics every other file relies on:
 * truthiness, ==, ordering, str(), repr(), json.dumps() and the mapping
 * from jansson values.
 */
#include <jansson.h>
#include <math.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "api/template_int.h"
#include "core/alloc.h"
#include "core/utf8.h"

/* ---- arena ------------------------------------------------------------- */

#define ARENA_CHUNK ((size_t)64 << 10)
#define ARENA_ALIGN (alignof(max_align_t))

struct tmpl_chunk {
    struct tmpl_chunk *next;
    size_t used, size;
    max_align_t data[];
};

void tmpl_arena_init(struct tmpl_arena *a, size_t cap)
{
    memset(a, 0, sizeof *a);
    a->cap = cap;
}

void tmpl_arena_deinit(struct tmpl_arena *a)
{
    struct tmpl_chunk *c = a->head;
    while (c) {
        struct tmpl_chunk *nx = c->next;
        kz_free(c);
        c = nx;
    }
    a->head = NULL;
    a->total = 0;
}

void *tmpl_arena_alloc(struct tmpl_arena *a, size_t size)
{
    if (size > a->cap) {
        a->failed = KZ_ELIMIT;
        return NULL;
    }
    size_t need = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (need == 0)
        need = ARENA_ALIGN;
    struct tmpl_chunk *c = a->head;
    if (!c || c->size - c->used < need) {
        size_t sz = need > ARENA_CHUNK / 4 ? need : ARENA_CHUNK;
        if (sz + sizeof *c > a->cap - (a->total < a->cap ? a->total : a->cap)) {
            a->failed = KZ_ELIMIT;
            return NULL;
        }
        struct tmpl_chunk *nc = kz_malloc(sizeof *nc + sz);
        if (!nc) {
            a->failed = KZ_ENOMEM;
            return NULL;
        }
        nc->used = 0;
        nc->size = sz;
        a->total += sizeof *nc + sz;
        if (c && sz != ARENA_CHUNK) {
            /* A big one-off block goes behind the current chunk so the
             * chunk's free space stays in use. */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
    }
    void *p = (char *)c->data + c->used;
    c->used += need;
    memset(p, 0, size);
    return p;
}

char *tmpl_arena_strndup(struct tmpl_arena *a, const char *s, size_t len)
{
    if (len == SIZE_MAX) {
        a->failed = KZ_ELIMIT;
        return NULL;
    }
    char *p = tmpl_arena_alloc(a, len + 1);
    if (p) {
        if (len)
            memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* ---- string builder ----------------------------------------------------- */

void tmpl_sb_init(struct tmpl_sb *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void tmpl_sb_deinit(struct tmpl_sb *b)
{
    kz_free(b->p);
    memset(b, 0, sizeof *b);
}

int tmpl_sb_put(struct tmpl_sb *b, const char *s, size_t n)
{
    if (n == 0)
        return b->failed ? -1 : 0;
    if (b->failed)
        return -1;
    if (n > b->max - b->len) {
        b->failed = KZ_ELIMIT;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1)
            nc = nc > SIZE_MAX / 2 ? b->len + n + 1 : nc * 2;
        char *np = kz_realloc(b->p, nc);
        if (!np) {
            b->failed = KZ_ENOMEM;
            return -1;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int tmpl_sb_putc(struct tmpl_sb *b, char c) { return tmpl_sb_put(b, &c, 1); }
int tmpl_sb_puts(struct tmpl_sb *b, const char *s) { return tmpl_sb_put(b, s, strlen(s)); }

int tmpl_sb_putcp(struct tmpl_sb *b, uint32_t cp)
{
    char buf[4];
    return tmpl_sb_put(b, buf, tmpl_utf8_encode(cp, buf));
}

/* ---- UTF-8 ------------------------------------------------------------- */

size_t tmpl_utf8_next(const char *p, size_t n, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)p;
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = c;
        return 1;
    }
    if (len > n)
        goto bad;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            goto bad;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        goto bad;
    *cp = v;
    return len;
bad:
    *cp = c;
    return 1;
}

size_t tmpl_utf8_count(const char *p, size_t n)
{
    size_t count = 0;
    uint32_t cp;
    for (size_t i = 0; i < n; count++) {
        if ((unsigned char)p[i] < 0x80)
            i++;
        else
            i += tmpl_utf8_next(p + i, n - i, &cp);
    }
    return count;
}

size_t tmpl_utf8_encode(uint32_t cp, char *out)
{
    return kz_utf8_encode(cp, out);
}

int tmpl_is_space(uint32_t cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* ---- Python semantics ---------------------------------------------------- */

const char *tmpl_type_name(const struct tmpl_val *v)
{
    switch (v->t) {
    case TV_UNDEF: return "Undefined";
    case TV_NONE: return "NoneType";
    case TV_BOOL: return "bool";
    case TV_INT: return "int";
    case TV_FLOAT: return "float";
    case TV_STR: return "str";
    case TV_LIST: return v->u.l->is_tuple ? "tuple" : "list";
    case TV_DICT: return v->u.d->is_ns ? "Namespace" : "dict";
    case TV_FUNC: return "function";
    case TV_LOOP: return "LoopContext";
    }
    return "object";
}

int tmpl_truthy(const struct tmpl_val *v)
{
    switch (v->t) {
    case TV_UNDEF:
    case TV_NONE: return 0;
    case TV_BOOL: return v->u.b;
    case TV_INT: return v->u.i != 0;
    case TV_FLOAT: return v->u.f != 0.0;
    case TV_STR: return v->u.s.len != 0;
    case TV_LIST: return v->u.l->n != 0;
    case TV_DICT: return v->u.d->is_ns || v->u.d->n != 0;
    default: return 1;
    }
}

static int is_num(const struct tmpl_val *v) { return v->t == TV_BOOL || v->t == TV_INT || v->t == TV_FLOAT; }

static double num_f(const struct tmpl_val *v)
{
    return v->t == TV_FLOAT ? v->u.f : v->t == TV_INT ? (double)v->u.i : (double)v->u.b;
}

static int64_t num_i(const struct tmpl_val *v) { return v->t == TV_INT ? v->u.i : v->u.b; }

int tmpl_equal(const struct tmpl_val *a, const struct tmpl_val *b, int depth)
{
    if (depth > TMPL_MAX_VALUE_DEPTH)
        return 0;
    if (is_num(a) && is_num(b)) {
        if (a->t == TV_FLOAT || b->t == TV_FLOAT)
            return num_f(a) == num_f(b);
        return num_i(a) == num_i(b);
    }
    if (a->t != b->t)
        return 0;
    switch (a->t) {
    case TV_UNDEF:
    case TV_NONE: return 1;
    case TV_STR: return a->u.s.len == b->u.s.len && (a->u.s.len == 0 || !memcmp(a->u.s.p, b->u.s.p, a->u.s.len));
    case TV_LIST:
        if (a->u.l->n != b->u.l->n || a->u.l->is_tuple != b->u.l->is_tuple)
            return 0;
        for (size_t i = 0; i < a->u.l->n; i++)
            if (!tmpl_equal(&a->u.l->v[i], &b->u.l->v[i], depth + 1))
                return 0;
        return 1;
    case TV_DICT:
        if (a->u.d->is_ns || b->u.d->is_ns)
            return a->u.d == b->u.d;
        if (a->u.d->n != b->u.d->n)
            return 0;
        for (size_t i = 0; i < a->u.d->n; i++) {
            const struct tmpl_val *o = tmpl_dict_get(b->u.d, &a->u.d->k[i]);
            if (!o || !tmpl_equal(&a->u.d->v[i], o, depth + 1))
                return 0;
        }
        return 1;
    case TV_FUNC: return a->u.fn == b->u.fn;
    case TV_LOOP: return a->u.loop == b->u.loop;
    }
    return 0;
}

int tmpl_compare(const struct tmpl_val *a, const struct tmpl_val *b, int *cmp, int depth)
{
    if (depth > TMPL_MAX_VALUE_DEPTH)
        return -1;
    if (is_num(a) && is_num(b)) {
        if (a->t == TV_FLOAT || b->t == TV_FLOAT) {
            double x = num_f(a), y = num_f(b);
            *cmp = x < y ? -1 : x > y ? 1 : 0; /* NaN compares equal-ish: no order */
        } else {
            int64_t x = num_i(a), y = num_i(b);
            *cmp = x < y ? -1 : x > y ? 1 : 0;
        }
        return 0;
    }
    if (a->t == TV_STR && b->t == TV_STR) {
        /* UTF-8 byte order is code point order, which is Python's */
        size_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
        int c = n ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
        *cmp = c ? (c < 0 ? -1 : 1) : a->u.s.len < b->u.s.len ? -1 : a->u.s.len > b->u.s.len;
        return 0;
    }
    if (a->t == TV_LIST && b->t == TV_LIST && a->u.l->is_tuple == b->u.l->is_tuple) {
        size_t n = a->u.l->n < b->u.l->n ? a->u.l->n : b->u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (tmpl_equal(&a->u.l->v[i], &b->u.l->v[i], depth + 1))
                continue;
            return tmpl_compare(&a->u.l->v[i], &b->u.l->v[i], cmp, depth + 1);
        }
        *cmp = a->u.l->n < b->u.l->n ? -1 : a->u.l->n > b->u.l->n;
        return 0;
    }
    return -1;
}

void tmpl_fmt_float(double f, char *buf, size_t size)
{
    if (isnan(f)) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, size, f < 0 ? "-inf" : "inf");
        return;
    }
    if (f == 0.0) {
        snprintf(buf, size, signbit(f) ? "-0.0" : "0.0");
        return;
    }
    /* Shortest digits that read back as the same double, as Python's repr. */
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f)
            break;
    }
    /* tmp is [-]d[.ddd]e[+-]XX */
    const char *p = tmp;
    int neg = *p == '-';
    if (neg)
        p++;
    char digits[24];
    size_t nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.' && nd < sizeof digits - 1)
            digits[nd++] = *p;
    int exp = (int)strtol(p + 1, NULL, 10);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    char out[64];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++)
                out[o++] = (size_t)i < nd ? digits[i] : '0';
            out[o++] = '.';
            if ((size_t)exp + 1 < nd)
                for (size_t i = (size_t)exp + 1; i < nd; i++)
                    out[o++] = digits[i];
            else
                out[o++] = '0';
        } else {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -exp - 1; i++)
                out[o++] = '0';
            for (size_t i = 0; i < nd; i++)
                out[o++] = digits[i];
        }
        out[o] = '\0';
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (size_t i = 1; i < nd; i++)
                out[o++] = digits[i];
        }
        snprintf(out + o, sizeof out - o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    snprintf(buf, size, "%s", out);
}

static int put_int(struct tmpl_sb *b, int64_t i)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)i);
    return tmpl_sb_put(b, buf, (size_t)n);
}

static int put_float(struct tmpl_sb *b, double f)
{
    char buf[48];
    tmpl_fmt_float(f, buf, sizeof buf);
    return tmpl_sb_puts(b, buf);
}

/* Python's str.isprintable() for one code point (repr escapes the rest). */
static int printable(uint32_t cp)
{
    if (cp == ' ')
        return 1;
    if (cp < 0x20 || cp == 0x7F)
        return 0;
    if (cp < 0x7F)
        return 1;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS: return 0;
    default: return 1;
    }
}

static int repr_str(struct tmpl_sb *b, struct kz_slice s)
{
    int has_sq = memchr(s.p, '\'', s.len) != NULL, has_dq = memchr(s.p, '"', s.len) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    int rc = tmpl_sb_putc(b, q);
    for (size_t i = 0; i < s.len && !rc;) {
        uint32_t cp;
        size_t l = tmpl_utf8_next(s.p + i, s.len - i, &cp);
        char esc[16];
        if (cp == (uint32_t)q || cp == '\\') {
            esc[0] = '\\';
            esc[1] = (char)cp;
            rc = tmpl_sb_put(b, esc, 2);
        } else if (cp == '\n') {
            rc = tmpl_sb_put(b, "\\n", 2);
        } else if (cp == '\r') {
            rc = tmpl_sb_put(b, "\\r", 2);
        } else if (cp == '\t') {
            rc = tmpl_sb_put(b, "\\t", 2);
        } else if (l == 1 && cp >= 0x80) {
            rc = tmpl_sb_put(b, s.p + i, 1); /* invalid byte: pass through */
        } else if (!printable(cp)) {
            int n = snprintf(esc, sizeof esc, cp < 0x100 ? "\\x%02x" : cp < 0x10000 ? "\\u%04x" : "\\U%08x",
                             (unsigned)cp);
            rc = tmpl_sb_put(b, esc, (size_t)n);
        } else {
            rc = tmpl_sb_put(b, s.p + i, l);
        }
        i += l;
    }
    return rc ? rc : tmpl_sb_putc(b, q);
}

int tmpl_repr(struct tmpl_sb *b, const struct tmpl_val *v, int depth)
{
    if (v->t == TV_STR)
        return repr_str(b, v->u.s);
    if (v->t == TV_UNDEF)
        return tmpl_sb_puts(b, "Undefined");
    return tmpl_str(b, v, depth);
}

int tmpl_str(struct tmpl_sb *b, const struct tmpl_val *v, int depth)
{
    int rc = 0;
    switch (v->t) {
    case TV_UNDEF: return 0;
    case TV_NONE: return tmpl_sb_puts(b, "None");
    case TV_BOOL: return tmpl_sb_puts(b, v->u.b ? "True" : "False");
    case TV_INT: return put_int(b, v->u.i);
    case TV_FLOAT: return put_float(b, v->u.f);
    case TV_STR: return tmpl_sb_put(b, v->u.s.p, v->u.s.len);
    case TV_LIST: {
        const struct tmpl_list *l = v->u.l;
        if (depth > TMPL_MAX_VALUE_DEPTH)
            return tmpl_sb_puts(b, l->is_tuple ? "(...)" : "[...]");
        rc = tmpl_sb_putc(b, l->is_tuple ? '(' : '[');
        for (size_t i = 0; i < l->n && !rc; i++) {
            if (i)
                rc = tmpl_sb_put(b, ", ", 2);
            if (!rc)
                rc = tmpl_repr(b, &l->v[i], depth + 1);
        }
        if (!rc && l->is_tuple && l->n == 1)
            rc = tmpl_sb_putc(b, ',');
        return rc ? rc : tmpl_sb_putc(b, l->is_tuple ? ')' : ']');
    }
    case TV_DICT: {
        const struct tmpl_dict *d = v->u.d;
        if (depth > TMPL_MAX_VALUE_DEPTH)
            return tmpl_sb_puts(b, "{...}");
        if (d->is_ns)
            rc = tmpl_sb_puts(b, "<Namespace ");
        if (!rc)
            rc = tmpl_sb_putc(b, '{');
        for (size_t i = 0; i < d->n && !rc; i++) {
            if (i)
                rc = tmpl_sb_put(b, ", ", 2);
            if (!rc)
                rc = tmpl_repr(b, &d->k[i], depth + 1);
            if (!rc)
                rc = tmpl_sb_put(b, ": ", 2);
            if (!rc)
                rc = tmpl_repr(b, &d->v[i], depth + 1);
        }
        if (!rc)
            rc = tmpl_sb_putc(b, '}');
        if (!rc && d->is_ns)
            rc = tmpl_sb_putc(b, '>');
        return rc;
    }
    case TV_FUNC:
        rc = tmpl_sb_puts(b, "<function ");
        if (!rc)
            rc = tmpl_sb_put(b, v->u.fn->name.p, v->u.fn->name.len);
        return rc ? rc : tmpl_sb_putc(b, '>');
    case TV_LOOP: {
        char buf[64];
        int n = snprintf(buf, sizeof buf, "<LoopContext %lld/%lld>", (long long)v->u.loop->index0 + 1,
                         (long long)v->u.loop->length);
        return tmpl_sb_put(b, buf, (size_t)n);
    }
    }
    return 0;
}

/* ---- json.dumps ------------------------------------------------------- */

static int json_str(struct tmpl_sb *b, struct kz_slice s, int ensure_ascii)
{
    int rc = tmpl_sb_putc(b, '"');
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    for (size_t i = 0; i < s.len && !rc;) {
        unsigned char c = (unsigned char)s.p[i];
        const char *esc = NULL;
        char buf[16];
        size_t l = 1;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20 || (ensure_ascii && c == 0x7F)) {
                snprintf(buf, sizeof buf, "\\u%04x", c);
                esc = buf;
            } else if (c >= 0x80 && ensure_ascii) {
                uint32_t cp;
                l = tmpl_utf8_next(s.p + i, s.len - i, &cp);
                if (cp >= 0x10000) {
                    uint32_t x = cp - 0x10000;
                    snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (unsigned)(x >> 10),
                             0xDC00 + (unsigned)(x & 0x3FF));
                } else {
                    snprintf(buf, sizeof buf, "\\u%04x", (unsigned)cp);
                }
                esc = buf;
            }
        }
        if (esc) {
            rc = tmpl_sb_put(b, s.p + run, i - run);
            if (!rc)
                rc = tmpl_sb_puts(b, esc);
            run = i + l;
        }
        i += l;
    }
    if (!rc)
        rc = tmpl_sb_put(b, s.p + run, s.len - run);
    return rc ? rc : tmpl_sb_putc(b, '"');
}

static int json_newline(struct tmpl_sb *b, const struct tmpl_json_opts *o, int level)
{
    int rc = tmpl_sb_putc(b, '\n');
    for (int i = 0; i < level && !rc; i++)
        rc = tmpl_sb_put(b, o->indent.p, o->indent.len);
    return rc;
}

/* A dict key as json.dumps writes it: str as is, numbers/bools/None as text. */
static kz_status json_key(struct tmpl_sb *b, const struct tmpl_val *k, const struct tmpl_json_opts *o,
                          const struct tmpl_val **bad)
{
    char buf[48];
    switch (k->t) {
    case TV_STR: return json_str(b, k->u.s, o->ensure_ascii) ? b->failed : KZ_OK;
    case TV_INT: snprintf(buf, sizeof buf, "\"%lld\"", (long long)k->u.i); break;
    case TV_FLOAT: {
        char f[40];
        tmpl_fmt_float(k->u.f, f, sizeof f);
        snprintf(buf, sizeof buf, "\"%s\"", f);
        break;
    }
    case TV_BOOL: snprintf(buf, sizeof buf, "\"%s\"", k->u.b ? "true" : "false"); break;
    case TV_NONE: snprintf(buf, sizeof buf, "\"null\""); break;
    default: *bad = k; return KZ_EINVAL;
    }
    return tmpl_sb_puts(b, buf) ? b->failed : KZ_OK;
}

static int key_cmp(const struct tmpl_val *a, const struct tmpl_val *b)
{
    int c = 0;
    if (tmpl_compare(a, b, &c, 0))
        c = a->t < b->t ? -1 : a->t > b->t;
    return c;
}

kz_status tmpl_tojson(struct tmpl_sb *b, const struct tmpl_val *v, const struct tmpl_json_opts *o, int level,
                      const struct tmpl_val **bad)
{
    kz_status rc = KZ_OK;
    if (level > TMPL_MAX_VALUE_DEPTH) {
        *bad = v;
        return KZ_EINVAL;
    }
    switch (v->t) {
    case TV_NONE: return tmpl_sb_puts(b, "null") ? b->failed : KZ_OK;
    case TV_BOOL: return tmpl_sb_puts(b, v->u.b ? "true" : "false") ? b->failed : KZ_OK;
    case TV_INT: return put_int(b, v->u.i) ? b->failed : KZ_OK;
    case TV_FLOAT:
        if (isnan(v->u.f))
            return tmpl_sb_puts(b, "NaN") ? b->failed : KZ_OK;
        if (isinf(v->u.f))
            return tmpl_sb_puts(b, v->u.f < 0 ? "-Infinity" : "Infinity") ? b->failed : KZ_OK;
        return put_float(b, v->u.f) ? b->failed : KZ_OK;
    case TV_STR: return json_str(b, v->u.s, o->ensure_ascii) ? b->failed : KZ_OK;
    case TV_LIST: {
        const struct tmpl_list *l = v->u.l;
        if (l->n == 0)
            return tmpl_sb_puts(b, "[]") ? b->failed : KZ_OK;
        if (tmpl_sb_putc(b, '['))
            return b->failed;
        for (size_t i = 0; i < l->n; i++) {
            if (i && tmpl_sb_put(b, o->item_sep.p, o->item_sep.len))
                return b->failed;
            if (o->indent_on && json_newline(b, o, level + 1))
                return b->failed;
            rc = tmpl_tojson(b, &l->v[i], o, level + 1, bad);
            if (rc)
                return rc;
        }
        if (o->indent_on && json_newline(b, o, level))
            return b->failed;
        return tmpl_sb_putc(b, ']') ? b->failed : KZ_OK;
    }
    case TV_DICT: {
        const struct tmpl_dict *d = v->u.d;
        if (d->is_ns) {
            *bad = v;
            return KZ_EINVAL;
        }
        if (d->n == 0)
            return tmpl_sb_puts(b, "{}") ? b->failed : KZ_OK;
        size_t *order = NULL;
        if (o->sort_keys) {
            order = kz_malloc(d->n * sizeof *order);
            if (!order) {
                b->failed = KZ_ENOMEM;
                return KZ_ENOMEM;
            }
            /* insertion sort: stable, and dicts here are small */
            for (size_t i = 0; i < d->n; i++) {
                size_t j = i;
                while (j > 0 && key_cmp(&d->k[order[j - 1]], &d->k[i]) > 0) {
                    order[j] = order[j - 1];
                    j--;
                }
                order[j] = i;
            }
        }
        rc = tmpl_sb_putc(b, '{') ? b->failed : KZ_OK;
        for (size_t i = 0; i < d->n && !rc; i++) {
            size_t k = order ? order[i] : i;
            if (i && tmpl_sb_put(b, o->item_sep.p, o->item_sep.len))
                rc = b->failed;
            if (!rc && o->indent_on && json_newline(b, o, level + 1))
                rc = b->failed;
            if (!rc)
                rc = json_key(b, &d->k[k], o, bad);
            if (!rc && tmpl_sb_put(b, o->key_sep.p, o->key_sep.len))
                rc = b->failed;
            if (!rc)
                rc = tmpl_tojson(b, &d->v[k], o, level + 1, bad);
        }
        kz_free(order);
        if (!rc && o->indent_on && json_newline(b, o, level))
            rc = b->failed;
        if (!rc && tmpl_sb_putc(b, '}'))
            rc = b->failed;
        return rc;
    }
    default:
        *bad = v;
        return KZ_EINVAL;
    }
}

/* ---- dicts ------------------------------------------------------------- */

struct tmpl_val *tmpl_dict_get(const struct tmpl_dict *d, const struct tmpl_val *key)
{
    for (size_t i = 0; i < d->n; i++)
        if (tmpl_equal(&d->k[i], key, 0))
            return &d->v[i];
    return NULL;
}

struct tmpl_val *tmpl_dict_get_str(const struct tmpl_dict *d, const char *key, size_t key_len)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == TV_STR && d->k[i].u.s.len == key_len && (key_len == 0 || !memcmp(d->k[i].u.s.p, key, key_len)))
            return &d->v[i];
    return NULL;
}

int tmpl_dict_set(struct tmpl_arena *a, struct tmpl_dict *d, struct tmpl_val key, struct tmpl_val val)
{
    struct tmpl_val *slot = tmpl_dict_get(d, &key);
    if (slot) {
        *slot = val;
        return 0;
    }
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 4;
        struct tmpl_val *nk = tmpl_arena_alloc(a, nc * sizeof *nk);
        struct tmpl_val *nv = nk ? tmpl_arena_alloc(a, nc * sizeof *nv) : NULL;
        if (!nv)
            return -1;
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof *nk);
            memcpy(nv, d->v, d->n * sizeof *nv);
        }
        d->k = nk;
        d->v = nv;
        d->cap = nc;
    }
    d->k[d->n] = key;
    d->v[d->n] = val;
    d->n++;
    return 0;
}

/* ---- from jansson ------------------------------------------------------ */

kz_status tmpl_from_json(struct tmpl_arena *a, const json_t *j, int depth, struct tmpl_val *out,
                         size_t *text_bytes)
{
    if (depth > TMPL_MAX_VALUE_DEPTH)
        return KZ_ELIMIT;
    switch (json_typeof(j)) {
    case JSON_NULL: *out = tv_none(); return KZ_OK;
    case JSON_TRUE: *out = tv_bool(1); return KZ_OK;
    case JSON_FALSE: *out = tv_bool(0); return KZ_OK;
    case JSON_INTEGER: *out = tv_int((int64_t)json_integer_value(j)); return KZ_OK;
    case JSON_REAL: *out = tv_float(json_real_value(j)); return KZ_OK;
    case JSON_STRING:
        *out = tv_str(json_string_value(j), json_string_length(j));
        *text_bytes += json_string_length(j);
        return KZ_OK;
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        struct tmpl_list *l = tmpl_arena_alloc(a, sizeof *l);
        if (!l)
            return a->failed;
        if (n) {
            if (n > SIZE_MAX / sizeof *l->v) {
                a->failed = KZ_ELIMIT;
                return KZ_ELIMIT;
            }
            l->v = tmpl_arena_alloc(a, n * sizeof *l->v);
            if (!l->v)
                return a->failed;
        }
        for (size_t i = 0; i < n; i++) {
            kz_status rc = tmpl_from_json(a, json_array_get(j, i), depth + 1, &l->v[i], text_bytes);
            if (rc)
                return rc;
            l->n = i + 1;
        }
        out->t = TV_LIST;
        out->u.l = l;
        return KZ_OK;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(j);
        struct tmpl_dict *d = tmpl_arena_alloc(a, sizeof *d);
        if (!d)
            return a->failed;
        if (n) {
            d->k = tmpl_arena_alloc(a, n * sizeof *d->k);
            d->v = d->k ? tmpl_arena_alloc(a, n * sizeof *d->v) : NULL;
            if (!d->v)
                return a->failed;
            d->cap = n;
        }
        /* jansson's iterator API takes a non-const object; it only reads. */
        json_t *jm = (json_t *)(uintptr_t)j;
        for (void *it = json_object_iter(jm); it && d->n < n; it = json_object_iter_next(jm, it)) {
            const char *key = json_object_iter_key(it);
            size_t klen = strlen(key);
            d->k[d->n] = tv_str(key, klen);
            *text_bytes += klen;
            kz_status rc = tmpl_from_json(a, json_object_iter_value(it), depth + 1, &d->v[d->n], text_bytes);
            if (rc)
                return rc;
            d->n++;
        }
        out->t = TV_DICT;
        out->u.d = d;
        return KZ_OK;
    }
    }
    *out = tv_none();
    return KZ_OK;
}
