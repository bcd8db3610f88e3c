/* SPDX-License-Identifier: MIT
 * Template built-ins: Jinja2's filters and tests, the str/dict methods the
 * sandbox lets templates call, and Python's printf-style % formatting.
 * Semantics follow Jinja2 3.x and Python 3 (e.g. `length` counts code
 * points, `title` the filter and str.title() the method differ, `tojson`
 * is Hugging Face's json.dumps(x, ensure_ascii=False, ...)).
 * Case mapping is per code point (utf8proc), so 'ß'.upper() stays 'ß'
 * where Python gives 'SS'.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "api/template_int.h"
#include "core/alloc.h"

#define LINE (n->line)

static kz_status steps_add(struct tmpl_rt *rt, int line, size_t k)
{
    if (rt->steps + k > rt->max_steps) {
        rt->steps = rt->max_steps;
        return tmpl_rt_step(rt, line);
    }
    rt->steps += k;
    return KZ_OK;
}

static int intlike(const struct tmpl_val *v) { return v->t == TV_INT || v->t == TV_BOOL; }
static int64_t ival(const struct tmpl_val *v) { return v->t == TV_INT ? v->u.i : v->u.b; }

/* str(v) as a slice valid for the render. */
static kz_status soft_str(struct tmpl_rt *rt, int line, const struct tmpl_val *v, struct kz_slice *out)
{
    struct tmpl_val s;
    kz_status rc = tmpl_to_str(rt, line, v, &s);
    if (!rc)
        *out = s.u.s;
    return rc;
}

static kz_status need_str(struct tmpl_rt *rt, int line, const struct tmpl_val *v, const char *what,
                          struct kz_slice *out)
{
    if (!v || v->t != TV_STR)
        return tmpl_fail(rt, line, KZ_EINVAL, "%s: expected a string, got '%s'", what, v ? tmpl_type_name(v) : "nothing");
    *out = v->u.s;
    return KZ_OK;
}

static int arg_true(const struct tmpl_args *a, size_t idx, const char *name)
{
    const struct tmpl_val *v = tmpl_arg(a, idx, name);
    return v && tmpl_truthy(v);
}

/* ---- string helpers ----------------------------------------------------- */

/* Start of the character that ends at `end` (walks back over continuation
 * bytes; a malformed tail is one byte). */
static size_t prev_char(const char *s, size_t start, size_t end, uint32_t *cp)
{
    size_t p = end - 1;
    int k = 0;
    while (p > start && k < 3 && ((unsigned char)s[p] & 0xC0) == 0x80) {
        p--;
        k++;
    }
    size_t l = tmpl_utf8_next(s + p, end - p, cp);
    if (p + l != end) {
        p = end - 1;
        *cp = (unsigned char)s[p];
    }
    return p;
}

static int in_set(uint32_t cp, const struct kz_slice *chars)
{
    if (!chars)
        return tmpl_is_space(cp);
    for (size_t i = 0; i < chars->len;) {
        uint32_t c;
        i += tmpl_utf8_next(chars->p + i, chars->len - i, &c);
        if (c == cp)
            return 1;
    }
    return 0;
}

static struct kz_slice strip(struct kz_slice s, const struct kz_slice *chars, int left, int right)
{
    size_t a = 0, b = s.len;
    while (left && a < b) {
        uint32_t cp;
        size_t l = tmpl_utf8_next(s.p + a, b - a, &cp);
        if (!in_set(cp, chars))
            break;
        a += l;
    }
    while (right && b > a) {
        uint32_t cp;
        size_t p = prev_char(s.p, a, b, &cp);
        if (!in_set(cp, chars))
            break;
        b = p;
    }
    struct kz_slice r = {s.p + a, b - a};
    return r;
}

enum casemode { C_UPPER, C_LOWER, C_TITLE_FILTER, C_TITLE_METHOD, C_CAPITALIZE };

static int is_cased(uint32_t cp)
{
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

static kz_status map_case(struct tmpl_rt *rt, int line, struct kz_slice s, enum casemode mode, struct tmpl_val *out)
{
    struct tmpl_sb b;
    tmpl_sb_init(&b, tmpl_rt_max_memory(rt));
    int start = 1; /* at a word start (title) / string start (capitalize) */
    for (size_t i = 0; i < s.len;) {
        uint32_t cp;
        size_t l = tmpl_utf8_next(s.p + i, s.len - i, &cp);
        if (l == 1 && cp >= 0x80) { /* malformed byte: as is */
            tmpl_sb_put(&b, s.p + i, 1);
            i++;
            continue;
        }
        uint32_t m = cp;
        switch (mode) {
        case C_UPPER:
            if (cp == 0xDF) { /* Python's full mapping: 'ß'.upper() == 'SS' */
                tmpl_sb_put(&b, "SS", 2);
                i += l;
                continue;
            }
            m = (uint32_t)utf8proc_toupper((utf8proc_int32_t)cp);
            break;
        case C_LOWER: m = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp); break;
        case C_CAPITALIZE:
            m = (uint32_t)(start ? utf8proc_totitle((utf8proc_int32_t)cp) : utf8proc_tolower((utf8proc_int32_t)cp));
            start = 0;
            break;
        case C_TITLE_METHOD: {
            int cased = is_cased(cp);
            m = (uint32_t)(start ? utf8proc_totitle((utf8proc_int32_t)cp) : utf8proc_tolower((utf8proc_int32_t)cp));
            start = !cased;
            break;
        }
        case C_TITLE_FILTER: {
            int boundary = tmpl_is_space(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
            if (boundary)
                m = cp;
            else
                m = (uint32_t)(start ? utf8proc_toupper((utf8proc_int32_t)cp) : utf8proc_tolower((utf8proc_int32_t)cp));
            start = boundary;
            break;
        }
        }
        tmpl_sb_putcp(&b, m);
        i += l;
    }
    kz_status rc = tmpl_sb_to_str(rt, line, &b, out);
    tmpl_sb_deinit(&b);
    return rc;
}

static kz_status str_replace(struct tmpl_rt *rt, int line, struct kz_slice s, struct kz_slice old, struct kz_slice rep,
                             int64_t count, struct tmpl_val *out)
{
    struct tmpl_sb b;
    tmpl_sb_init(&b, tmpl_rt_max_memory(rt));
    if (count < 0)
        count = INT64_MAX;
    if (old.len == 0) {
        /* Python inserts the replacement before every character and at the end */
        size_t i = 0;
        while (i <= s.len) {
            if (count > 0) {
                tmpl_sb_put(&b, rep.p, rep.len);
                count--;
            }
            if (i == s.len)
                break;
            uint32_t cp;
            size_t l = tmpl_utf8_next(s.p + i, s.len - i, &cp);
            tmpl_sb_put(&b, s.p + i, l);
            i += l;
        }
    } else {
        size_t i = 0;
        while (i < s.len) {
            const char *hit = count > 0 ? memmem(s.p + i, s.len - i, old.p, old.len) : NULL;
            if (!hit) {
                tmpl_sb_put(&b, s.p + i, s.len - i);
                break;
            }
            tmpl_sb_put(&b, s.p + i, (size_t)(hit - (s.p + i)));
            tmpl_sb_put(&b, rep.p, rep.len);
            i = (size_t)(hit - s.p) + old.len;
            count--;
        }
    }
    kz_status rc = tmpl_sb_to_str(rt, line, &b, out);
    tmpl_sb_deinit(&b);
    return rc;
}

/* A list under construction in a growable kz_malloc array. */
struct vec {
    struct tmpl_val *v;
    size_t n, cap;
};

static int vec_push(struct vec *x, struct tmpl_val v)
{
    if (x->n == x->cap) {
        size_t nc = x->cap ? x->cap * 2 : 8;
        struct tmpl_val *nv = kz_realloc(x->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        x->v = nv;
        x->cap = nc;
    }
    x->v[x->n++] = v;
    return 0;
}

static kz_status vec_done(struct tmpl_rt *rt, int line, struct vec *x, kz_status rc, struct tmpl_val *out)
{
    if (!rc) {
        rc = tmpl_new_list(rt, line, x->n, out);
        if (!rc && x->n)
            memcpy(out->u.l->v, x->v, x->n * sizeof *x->v);
    }
    kz_free(x->v);
    x->v = NULL;
    return rc;
}

/* Line ends as str.splitlines() sees them. Returns the length of the line
 * break at s[i] (0 if none). */
static size_t line_break(const char *s, size_t n, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    if (c == '\r')
        return i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
    if (c == '\n' || c == '\v' || c == '\f' || (c >= 0x1C && c <= 0x1E))
        return 1;
    if (c >= 0x80) {
        uint32_t cp;
        size_t l = tmpl_utf8_next(s + i, n - i, &cp);
        if (cp == 0x85 || cp == 0x2028 || cp == 0x2029)
            return l;
    }
    return 0;
}

static kz_status splitlines(struct tmpl_rt *rt, int line, struct kz_slice s, struct tmpl_val *out)
{
    struct vec x = {0};
    kz_status rc = KZ_OK;
    size_t start = 0;
    for (size_t i = 0; i < s.len && !rc;) {
        size_t bl = line_break(s.p, s.len, i);
        if (!bl) {
            i++;
            continue;
        }
        if (vec_push(&x, tv_str(s.p + start, i - start)))
            rc = tmpl_fail_alloc(rt, line, KZ_ENOMEM);
        i += bl;
        start = i;
    }
    if (!rc && start < s.len && vec_push(&x, tv_str(s.p + start, s.len - start)))
        rc = tmpl_fail_alloc(rt, line, KZ_ENOMEM);
    return vec_done(rt, line, &x, rc, out);
}

/* str.split / str.rsplit. */
static kz_status split(struct tmpl_rt *rt, int line, struct kz_slice s, const struct tmpl_val *sepv, int64_t maxsplit,
                       int from_right, struct tmpl_val *out)
{
    struct vec x = {0};
    kz_status rc = KZ_OK;
    if (maxsplit < 0)
        maxsplit = INT64_MAX;
    if (sepv && sepv->t != TV_NONE) {
        if (sepv->t != TV_STR)
            return tmpl_fail(rt, line, KZ_EINVAL, "split(): separator must be str or None");
        struct kz_slice sep = sepv->u.s;
        if (sep.len == 0)
            return tmpl_fail(rt, line, KZ_EINVAL, "split(): empty separator");
        if (!from_right) {
            size_t i = 0;
            while (!rc) {
                const char *hit = maxsplit > 0 ? memmem(s.p + i, s.len - i, sep.p, sep.len) : NULL;
                size_t end = hit ? (size_t)(hit - s.p) : s.len;
                if (vec_push(&x, tv_str(s.p + i, end - i)))
                    rc = tmpl_fail_alloc(rt, line, KZ_ENOMEM);
                if (!hit)
                    break;
                i = end + sep.len;
                maxsplit--;
            }
        } else {
            size_t j = s.len; /* pieces collected right to left, reversed below */
            while (!rc) {
                const char *hit = NULL;
                if (maxsplit > 0 && j >= sep.len)
                    for (size_t k = j - sep.len + 1; k-- > 0;)
                        if (!memcmp(s.p + k, sep.p, sep.len)) {
                            hit = s.p + k;
                            break;
                        }
                size_t st = hit ? (size_t)(hit - s.p) + sep.len : 0;
                if (vec_push(&x, tv_str(s.p + st, j - st)))
                    rc = tmpl_fail_alloc(rt, line, KZ_ENOMEM);
                if (!hit)
                    break;
                j = (size_t)(hit - s.p);
                maxsplit--;
            }
            for (size_t a = 0, b = x.n; !rc && a + 1 < b; a++, b--) {
                struct tmpl_val t = x.v[a];
                x.v[a] = x.v[b - 1];
                x.v[b - 1] = t;
            }
        }
        return vec_done(rt, line, &x, rc, out);
    }
    /* whitespace runs */
    if (!from_right) {
        size_t i = 0;
        while (!rc) {
            struct kz_slice rest = {s.p + i, s.len - i};
            rest = strip(rest, NULL, 1, 0);
            i = (size_t)(rest.p - s.p);
            if (i >= s.len)
                break;
            if (maxsplit == 0) {
                if (vec_push(&x, tv_str(s.p + i, s.len - i)))
                    rc = tmpl_fail_alloc(rt, line, KZ_ENOMEM);
                break;
            }
            size_t e = i;
            while (e < s.len) {
                uint32_t cp;
                size_t l = tmpl_utf8_next(s.p + e, s.len - e, &cp);
                if (tmpl_is_space(cp))
                    break;
                e += l;
            }
            if (vec_push(&x, tv_str(s.p + i, e - i)))
                rc = tmpl_fail_alloc(rt, line, KZ_ENOMEM);
            i = e;
            maxsplit--;
        }
    } else {
        size_t j = s.len;
        while (!rc) {
            struct kz_slice rest = {s.p, j};
            rest = strip(rest, NULL, 0, 1);
            j = rest.len;
            if (j == 0)
                break;
            if (maxsplit == 0) {
                if (vec_push(&x, tv_str(s.p, j)))
                    rc = tmpl_fail_alloc(rt, line, KZ_ENOMEM);
                break;
            }
            size_t b = j;
            while (b > 0) {
                uint32_t cp;
                size_t p = prev_char(s.p, 0, b, &cp);
                if (tmpl_is_space(cp))
                    break;
                b = p;
            }
            if (vec_push(&x, tv_str(s.p + b, j - b)))
                rc = tmpl_fail_alloc(rt, line, KZ_ENOMEM);
            j = b;
            maxsplit--;
        }
        for (size_t a = 0, b = x.n; !rc && a + 1 < b; a++, b--) {
            struct tmpl_val t = x.v[a];
            x.v[a] = x.v[b - 1];
            x.v[b - 1] = t;
        }
    }
    return vec_done(rt, line, &x, rc, out);
}

/* Code point index of byte offset off in s. */
static int64_t char_index(struct kz_slice s, size_t off) { return (int64_t)tmpl_utf8_count(s.p, off); }

/* Python's str.format: {} {0} {name}, optional !r/!s, no format specs. */
static kz_status str_format(struct tmpl_rt *rt, int line, struct kz_slice f, const struct tmpl_args *a,
                            struct tmpl_val *out)
{
    struct tmpl_sb b;
    kz_status rc = KZ_OK;
    size_t auto_idx = 0;
    tmpl_sb_init(&b, tmpl_rt_max_memory(rt));
    for (size_t i = 0; i < f.len && !rc; i++) {
        char c = f.p[i];
        if (c == '}' ) {
            if (i + 1 < f.len && f.p[i + 1] == '}')
                i++;
            else
                rc = tmpl_fail(rt, line, KZ_EINVAL, "format(): single '}' encountered in format string");
            tmpl_sb_putc(&b, '}');
            continue;
        }
        if (c != '{') {
            tmpl_sb_putc(&b, c);
            continue;
        }
        if (i + 1 < f.len && f.p[i + 1] == '{') {
            tmpl_sb_putc(&b, '{');
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < f.len && f.p[j] != '}')
            j++;
        if (j >= f.len) {
            rc = tmpl_fail(rt, line, KZ_EINVAL, "format(): unmatched '{' in format string");
            break;
        }
        struct kz_slice field = {f.p + i + 1, j - i - 1};
        int conv = 0;
        const char *bang = memchr(field.p, '!', field.len), *colon = memchr(field.p, ':', field.len);
        if (colon && (!bang || colon < bang)) {
            if ((size_t)(colon - field.p) + 1 < field.len) {
                rc = tmpl_fail(rt, line, KZ_EUNSUPPORTED, "format(): format specs are not supported");
                break;
            }
            field.len = (size_t)(colon - field.p);
        }
        if (bang) {
            conv = (size_t)(bang - field.p) + 1 < field.len ? bang[1] : 0;
            field.len = (size_t)(bang - field.p);
        }
        const struct tmpl_val *v = NULL;
        if (field.len == 0) {
            v = auto_idx < a->n ? &a->pos[auto_idx] : NULL;
            auto_idx++;
        } else if (field.p[0] >= '0' && field.p[0] <= '9') {
            size_t k = 0;
            for (size_t q = 0; q < field.len && k < 1000; q++)
                k = k * 10 + (size_t)(field.p[q] >= '0' && field.p[q] <= '9' ? field.p[q] - '0' : 1000);
            v = k < a->n ? &a->pos[k] : NULL;
        } else {
            for (size_t q = 0; q < a->n_kw && !v; q++)
                if (a->kw[q].len == field.len && !memcmp(a->kw[q].p, field.p, field.len))
                    v = &a->kwv[q];
        }
        if (!v) {
            rc = tmpl_fail(rt, line, KZ_EINVAL, "format(): no argument for field {%.*s}", (int)(field.len < 64 ? field.len : 64),
                           field.p);
            break;
        }
        if (conv == 'r')
            tmpl_repr(&b, v, 0);
        else
            tmpl_str(&b, v, 0);
        i = j;
    }
    if (!rc)
        rc = tmpl_sb_to_str(rt, line, &b, out);
    tmpl_sb_deinit(&b);
    return rc;
}

/* ---- methods ----------------------------------------------------------- */

static const char *const str_methods[] = {
    "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "upper",
    "lower", "title", "capitalize", "replace", "find", "rfind", "count", "join", "format", "isdigit",
    "isalpha", "isalnum", "isspace", "islower", "isupper", "removeprefix", "removesuffix", NULL};
static const char *const dict_methods[] = {"get", "items", "keys", "values", NULL};
static const char *const list_methods[] = {"count", "index", NULL};

static int in_names(struct kz_slice s, const char *const *names)
{
    for (; *names; names++)
        if (kz_slice_eq(s, *names))
            return 1;
    return 0;
}

int tmpl_has_method(const struct tmpl_val *self, struct kz_slice name)
{
    if (self->t == TV_STR)
        return in_names(name, str_methods);
    if (self->t == TV_DICT && !self->u.d->is_ns)
        return in_names(name, dict_methods);
    if (self->t == TV_LIST)
        return in_names(name, list_methods);
    return 0;
}

static kz_status dict_items(struct tmpl_rt *rt, int line, const struct tmpl_dict *d, int what, struct tmpl_val *out)
{
    kz_status rc = tmpl_new_list(rt, line, d->n, out);
    for (size_t i = 0; !rc && i < d->n; i++) {
        if (what == 0) {
            out->u.l->v[i] = d->k[i];
        } else if (what == 1) {
            out->u.l->v[i] = d->v[i];
        } else {
            struct tmpl_val pair;
            rc = tmpl_new_list(rt, line, 2, &pair);
            if (rc)
                break;
            pair.u.l->is_tuple = 1;
            pair.u.l->v[0] = d->k[i];
            pair.u.l->v[1] = d->v[i];
            out->u.l->v[i] = pair;
        }
    }
    return rc;
}

static int is_class(struct kz_slice s, int (*pred)(uint32_t))
{
    if (s.len == 0)
        return 0;
    for (size_t i = 0; i < s.len;) {
        uint32_t cp;
        i += tmpl_utf8_next(s.p + i, s.len - i, &cp);
        if (!pred(cp))
            return 0;
    }
    return 1;
}

static int cp_digit(uint32_t cp) { return utf8proc_category((utf8proc_int32_t)cp) == UTF8PROC_CATEGORY_ND; }
static int cp_alpha(uint32_t cp)
{
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}
static int cp_alnum(uint32_t cp)
{
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return cp_alpha(cp) || (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}
static int cp_space(uint32_t cp) { return tmpl_is_space(cp); }

/* Python's islower/isupper: at least one cased character, none of the other case. */
static int case_test(struct kz_slice s, int upper)
{
    int cased = 0;
    for (size_t i = 0; i < s.len;) {
        uint32_t cp;
        i += tmpl_utf8_next(s.p + i, s.len - i, &cp);
        utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
        if (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LT) {
            if (!upper)
                return 0;
            cased = 1;
        } else if (c == UTF8PROC_CATEGORY_LL) {
            if (upper)
                return 0;
            cased = 1;
        }
    }
    return cased;
}

static int starts_with(struct kz_slice s, struct kz_slice p, int at_end)
{
    if (p.len > s.len)
        return 0;
    return p.len == 0 || !memcmp(at_end ? s.p + s.len - p.len : s.p, p.p, p.len);
}

static kz_status str_method(struct tmpl_rt *rt, int line, struct kz_slice s, struct kz_slice name,
                            const struct tmpl_args *a, struct tmpl_val *out)
{
    const struct tmpl_val *a0 = tmpl_arg(a, 0, NULL), *a1 = tmpl_arg(a, 1, NULL);
    kz_status rc = KZ_OK;
    if (kz_slice_eq(name, "strip") || kz_slice_eq(name, "lstrip") || kz_slice_eq(name, "rstrip")) {
        struct kz_slice chars;
        int has = a0 && a0->t != TV_NONE;
        if (has && (rc = need_str(rt, line, a0, "strip()", &chars)) != KZ_OK)
            return rc;
        struct kz_slice r = strip(s, has ? &chars : NULL, name.p[0] != 'r', name.p[0] != 'l');
        *out = tv_str(r.p, r.len);
        return KZ_OK;
    }
    if (kz_slice_eq(name, "split") || kz_slice_eq(name, "rsplit")) {
        const struct tmpl_val *sep = tmpl_arg(a, 0, "sep"), *mx = tmpl_arg(a, 1, "maxsplit");
        if (mx && !intlike(mx))
            return tmpl_fail(rt, line, KZ_EINVAL, "split(): maxsplit must be an integer");
        return split(rt, line, s, sep, mx ? ival(mx) : -1, name.p[0] == 'r', out);
    }
    if (kz_slice_eq(name, "splitlines"))
        return splitlines(rt, line, s, out);
    if (kz_slice_eq(name, "startswith") || kz_slice_eq(name, "endswith")) {
        int at_end = name.p[0] == 'e', r = 0;
        if (!a0)
            return tmpl_fail(rt, line, KZ_EINVAL, "%.*s() takes at least 1 argument", (int)name.len, name.p);
        if (a0->t == TV_LIST && a0->u.l->is_tuple) {
            for (size_t i = 0; i < a0->u.l->n && !r; i++) {
                if (a0->u.l->v[i].t != TV_STR)
                    return tmpl_fail(rt, line, KZ_EINVAL, "%.*s(): tuple items must be str", (int)name.len, name.p);
                r = starts_with(s, a0->u.l->v[i].u.s, at_end);
            }
        } else {
            struct kz_slice p = {NULL, 0};
            if ((rc = need_str(rt, line, a0, "startswith()/endswith()", &p)) != KZ_OK)
                return rc;
            r = starts_with(s, p, at_end);
        }
        *out = tv_bool(r);
        return KZ_OK;
    }
    if (kz_slice_eq(name, "upper"))
        return map_case(rt, line, s, C_UPPER, out);
    if (kz_slice_eq(name, "lower"))
        return map_case(rt, line, s, C_LOWER, out);
    if (kz_slice_eq(name, "title"))
        return map_case(rt, line, s, C_TITLE_METHOD, out);
    if (kz_slice_eq(name, "capitalize"))
        return map_case(rt, line, s, C_CAPITALIZE, out);
    if (kz_slice_eq(name, "replace")) {
        struct kz_slice o = {NULL, 0}, r = {NULL, 0};
        if ((rc = need_str(rt, line, a0, "replace()", &o)) != KZ_OK ||
            (rc = need_str(rt, line, a1, "replace()", &r)) != KZ_OK)
            return rc;
        const struct tmpl_val *c = tmpl_arg(a, 2, "count");
        return str_replace(rt, line, s, o, r, c && intlike(c) ? ival(c) : -1, out);
    }
    if (kz_slice_eq(name, "find") || kz_slice_eq(name, "rfind") || kz_slice_eq(name, "count")) {
        struct kz_slice sub = {NULL, 0};
        if ((rc = need_str(rt, line, a0, "find()/count()", &sub)) != KZ_OK)
            return rc;
        if (name.p[0] == 'c') {
            int64_t k = 0;
            if (sub.len == 0) {
                k = (int64_t)tmpl_utf8_count(s.p, s.len) + 1;
            } else {
                for (size_t i = 0; i + sub.len <= s.len;) {
                    const char *hit = memmem(s.p + i, s.len - i, sub.p, sub.len);
                    if (!hit)
                        break;
                    k++;
                    i = (size_t)(hit - s.p) + sub.len;
                }
            }
            *out = tv_int(k);
            return KZ_OK;
        }
        int64_t r = -1;
        if (name.p[0] == 'f') {
            const char *hit = sub.len ? memmem(s.p, s.len, sub.p, sub.len) : s.p;
            if (hit)
                r = char_index(s, (size_t)(hit - s.p));
        } else if (sub.len <= s.len) {
            for (size_t k = s.len - sub.len + 1; k-- > 0;)
                if (!memcmp(s.p + k, sub.p, sub.len)) {
                    r = char_index(s, k);
                    break;
                }
        }
        *out = tv_int(r);
        return KZ_OK;
    }
    if (kz_slice_eq(name, "join")) {
        struct tmpl_list *l;
        struct tmpl_sb b;
        if (!a0)
            return tmpl_fail(rt, line, KZ_EINVAL, "join() takes exactly one argument");
        rc = tmpl_iterate(rt, line, a0, &l);
        if (rc)
            return rc;
        tmpl_sb_init(&b, tmpl_rt_max_memory(rt));
        for (size_t i = 0; i < l->n && !rc; i++) {
            if (l->v[i].t != TV_STR) {
                rc = tmpl_fail(rt, line, KZ_EINVAL, "sequence item %zu: expected str instance, %s found", i,
                               tmpl_type_name(&l->v[i]));
                break;
            }
            if (i)
                tmpl_sb_put(&b, s.p, s.len);
            tmpl_sb_put(&b, l->v[i].u.s.p, l->v[i].u.s.len);
        }
        if (!rc)
            rc = tmpl_sb_to_str(rt, line, &b, out);
        tmpl_sb_deinit(&b);
        return rc;
    }
    if (kz_slice_eq(name, "format"))
        return str_format(rt, line, s, a, out);
    if (kz_slice_eq(name, "isdigit")) {
        *out = tv_bool(is_class(s, cp_digit));
        return KZ_OK;
    }
    if (kz_slice_eq(name, "isalpha")) {
        *out = tv_bool(is_class(s, cp_alpha));
        return KZ_OK;
    }
    if (kz_slice_eq(name, "isalnum")) {
        *out = tv_bool(is_class(s, cp_alnum));
        return KZ_OK;
    }
    if (kz_slice_eq(name, "isspace")) {
        *out = tv_bool(is_class(s, cp_space));
        return KZ_OK;
    }
    if (kz_slice_eq(name, "islower") || kz_slice_eq(name, "isupper")) {
        *out = tv_bool(case_test(s, name.p[2] == 'u'));
        return KZ_OK;
    }
    if (kz_slice_eq(name, "removeprefix") || kz_slice_eq(name, "removesuffix")) {
        struct kz_slice p = {NULL, 0};
        int at_end = name.p[6] == 's';
        if ((rc = need_str(rt, line, a0, "removeprefix()/removesuffix()", &p)) != KZ_OK)
            return rc;
        if (p.len && starts_with(s, p, at_end))
            *out = tv_str(at_end ? s.p : s.p + p.len, s.len - p.len);
        else
            *out = tv_str(s.p, s.len);
        return KZ_OK;
    }
    return tmpl_fail(rt, line, KZ_EUNSUPPORTED, "str has no method '%.*s'", (int)name.len, name.p);
}

kz_status tmpl_call_method(struct tmpl_rt *rt, int line, const struct tmpl_val *self, struct kz_slice name,
                           const struct tmpl_args *args, struct tmpl_val *out)
{
    if (self->t == TV_STR)
        return str_method(rt, line, self->u.s, name, args, out);
    if (self->t == TV_DICT) {
        const struct tmpl_dict *d = self->u.d;
        if (kz_slice_eq(name, "get")) {
            const struct tmpl_val *k = tmpl_arg(args, 0, NULL), *def = tmpl_arg(args, 1, NULL);
            if (!k)
                return tmpl_fail(rt, line, KZ_EINVAL, "get() takes at least 1 argument");
            const struct tmpl_val *v = tmpl_dict_get(d, k);
            *out = v ? *v : def ? *def : tv_none();
            return KZ_OK;
        }
        if (kz_slice_eq(name, "keys"))
            return dict_items(rt, line, d, 0, out);
        if (kz_slice_eq(name, "values"))
            return dict_items(rt, line, d, 1, out);
        if (kz_slice_eq(name, "items"))
            return dict_items(rt, line, d, 2, out);
    }
    if (self->t == TV_LIST) {
        const struct tmpl_val *x = tmpl_arg(args, 0, NULL);
        const struct tmpl_list *l = self->u.l;
        int64_t k = 0, at = -1;
        if (!x)
            return tmpl_fail(rt, line, KZ_EINVAL, "%.*s() takes exactly one argument", (int)name.len, name.p);
        for (size_t i = 0; i < l->n; i++)
            if (tmpl_equal(&l->v[i], x, 0)) {
                k++;
                if (at < 0)
                    at = (int64_t)i;
            }
        if (kz_slice_eq(name, "count")) {
            *out = tv_int(k);
            return KZ_OK;
        }
        if (at < 0)
            return tmpl_fail(rt, line, KZ_EINVAL, "list.index(x): x not in list");
        *out = tv_int(at);
        return KZ_OK;
    }
    return tmpl_fail(rt, line, KZ_EUNSUPPORTED, "'%s' has no method '%.*s'", tmpl_type_name(self), (int)name.len,
                     name.p);
}

/* ---- % formatting -------------------------------------------------------- */

/* The printf specs below are assembled from the parsed flags, width,
 * precision and a conversion letter checked by the switch, never copied
 * from the template. */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#endif
kz_status tmpl_percent_format(struct tmpl_rt *rt, int line, struct kz_slice f, const struct tmpl_val *args,
                              struct tmpl_val *out)
{
    struct tmpl_sb b;
    kz_status rc = KZ_OK;
    size_t next = 0;
    const struct tmpl_val *items = args;
    size_t n_items = 1;
    if (args->t == TV_LIST && args->u.l->is_tuple) {
        items = args->u.l->v;
        n_items = args->u.l->n;
    }
    int mapping = args->t == TV_DICT;
    tmpl_sb_init(&b, tmpl_rt_max_memory(rt));
    for (size_t i = 0; i < f.len && !rc; i++) {
        if (f.p[i] != '%') {
            tmpl_sb_putc(&b, f.p[i]);
            continue;
        }
        if (++i >= f.len) {
            rc = tmpl_fail(rt, line, KZ_EINVAL, "incomplete format");
            break;
        }
        const struct tmpl_val *v = NULL;
        if (f.p[i] == '(') {
            size_t j = i + 1;
            while (j < f.len && f.p[j] != ')')
                j++;
            if (j >= f.len || !mapping) {
                rc = tmpl_fail(rt, line, KZ_EINVAL, "format requires a mapping");
                break;
            }
            v = tmpl_dict_get_str(args->u.d, f.p + i + 1, j - i - 1);
            if (!v) {
                rc = tmpl_fail(rt, line, KZ_EINVAL, "format: missing key '%.*s'", (int)(j - i - 1 < 64 ? j - i - 1 : 64),
                               f.p + i + 1);
                break;
            }
            i = j + 1;
        }
        char spec[32] = "%";
        size_t sl = 1;
        while (i < f.len && strchr("-+ #0", f.p[i]) && f.p[i]) {
            if (sl < 8)
                spec[sl++] = f.p[i];
            i++;
        }
        int width = 0, prec = -1;
        while (i < f.len && f.p[i] >= '0' && f.p[i] <= '9' && width < 10000)
            width = width * 10 + (f.p[i++] - '0');
        if (i < f.len && f.p[i] == '.') {
            prec = 0;
            i++;
            while (i < f.len && f.p[i] >= '0' && f.p[i] <= '9' && prec < 10000)
                prec = prec * 10 + (f.p[i++] - '0');
        }
        if (width > 4096 || prec > 4096) {
            rc = tmpl_fail(rt, line, KZ_ELIMIT, "format: width or precision over 4096");
            break;
        }
        while (i < f.len && (f.p[i] == 'l' || f.p[i] == 'h' || f.p[i] == 'L'))
            i++;
        if (i >= f.len) {
            rc = tmpl_fail(rt, line, KZ_EINVAL, "incomplete format");
            break;
        }
        char conv = f.p[i];
        if (conv == '%') {
            tmpl_sb_putc(&b, '%');
            continue;
        }
        if (!v) {
            if (mapping) {
                v = args;
            } else {
                if (next >= n_items) {
                    rc = tmpl_fail(rt, line, KZ_EINVAL, "not enough arguments for format string");
                    break;
                }
                v = &items[next++];
            }
        }
        char buf[8300];
        int w = 0;
        size_t sl0 = sl;
        if (width)
            sl += (size_t)snprintf(spec + sl, sizeof spec - sl, "%d", width);
        if (prec >= 0)
            sl += (size_t)snprintf(spec + sl, sizeof spec - sl, ".%d", prec);
        if (conv == 's' || conv == 'r' || conv == 'a') {
            struct tmpl_sb t;
            tmpl_sb_init(&t, tmpl_rt_max_memory(rt));
            if (conv == 's')
                tmpl_str(&t, v, 0);
            else
                tmpl_repr(&t, v, 0);
            size_t len = t.len, chars = tmpl_utf8_count(t.p ? t.p : "", len);
            if (prec >= 0 && (size_t)prec < chars) { /* precision truncates to that many characters */
                size_t o = 0;
                uint32_t cp;
                for (int k = 0; k < prec; k++)
                    o += tmpl_utf8_next(t.p + o, len - o, &cp);
                len = o;
                chars = (size_t)prec;
            }
            int left = memchr(spec + 1, '-', sl0 - 1) != NULL;
            for (size_t k = chars; !left && k < (size_t)width; k++)
                tmpl_sb_putc(&b, ' ');
            tmpl_sb_put(&b, t.p ? t.p : "", len);
            for (size_t k = chars; left && k < (size_t)width; k++)
                tmpl_sb_putc(&b, ' ');
            if (t.failed)
                b.failed = t.failed;
            tmpl_sb_deinit(&t);
            continue;
        }
        if (v->t != TV_INT && v->t != TV_BOOL && v->t != TV_FLOAT) {
            rc = tmpl_fail(rt, line, KZ_EINVAL, "%%%c format: a real number is required, not %s", conv,
                           tmpl_type_name(v));
            break;
        }
        double fv = v->t == TV_FLOAT ? v->u.f : (double)ival(v);
        switch (conv) {
        case 'd':
        case 'i':
        case 'u': {
            long long iv = v->t == TV_FLOAT ? (long long)(fabs(fv) < 9.2e18 ? fv : 0) : (long long)ival(v);
            spec[sl++] = 'l';
            spec[sl++] = 'l';
            spec[sl++] = 'd';
            spec[sl] = '\0';
            w = snprintf(buf, sizeof buf, spec, iv);
            break;
        }
        case 'x':
        case 'X':
        case 'o': {
            if (v->t == TV_FLOAT) {
                rc = tmpl_fail(rt, line, KZ_EINVAL, "%%%c format: an integer is required, not float", conv);
                break;
            }
            long long iv = (long long)ival(v);
            int neg = iv < 0;
            spec[sl++] = 'l';
            spec[sl++] = 'l';
            spec[sl++] = conv;
            spec[sl] = '\0';
            w = snprintf(buf + neg, sizeof buf - 1, spec, (unsigned long long)(neg ? -(unsigned long long)iv : (unsigned long long)iv));
            if (neg)
                buf[0] = '-', w++;
            break;
        }
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G':
            spec[sl++] = conv;
            spec[sl] = '\0';
            w = snprintf(buf, sizeof buf, spec, fv);
            break;
        case 'c':
            if (intlike(v) && ival(v) >= 0 && ival(v) <= 0x10FFFF)
                w = (int)tmpl_utf8_encode((uint32_t)ival(v), buf);
            else
                rc = tmpl_fail(rt, line, KZ_EINVAL, "%%c requires an int in range(0x110000)");
            break;
        default:
            rc = tmpl_fail(rt, line, KZ_EINVAL, "unsupported format character '%c'", conv);
            break;
        }
        if (!rc && w > 0)
            tmpl_sb_put(&b, buf, (size_t)w < sizeof buf ? (size_t)w : sizeof buf - 1);
    }
    if (!rc && !mapping && next < n_items)
        rc = tmpl_fail(rt, line, KZ_EINVAL, "not all arguments converted during string formatting");
    if (!rc)
        rc = tmpl_sb_to_str(rt, line, &b, out);
    tmpl_sb_deinit(&b);
    return rc;
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* ---- attribute paths (selectattr, map, sort, ...) ------------------------ */

/* "a.b.0": each part through getitem (which falls back to attributes). */
static kz_status attr_path(struct tmpl_rt *rt, int line, const struct tmpl_val *item, struct kz_slice path,
                           struct tmpl_val *out)
{
    struct tmpl_val cur = *item;
    size_t i = 0;
    while (i <= path.len) {
        size_t j = i;
        while (j < path.len && path.p[j] != '.')
            j++;
        struct kz_slice part = {path.p + i, j - i};
        struct tmpl_val key = tv_str(part.p, part.len), next;
        int digits = part.len > 0 && part.len < 18;
        for (size_t k = 0; k < part.len && digits; k++)
            digits = part.p[k] >= '0' && part.p[k] <= '9';
        if (digits) {
            int64_t v = 0;
            for (size_t k = 0; k < part.len; k++)
                v = v * 10 + (part.p[k] - '0');
            key = tv_int(v);
        }
        if (cur.t == TV_UNDEF) {
            *out = cur;
            return KZ_OK;
        }
        kz_status rc = tmpl_getitem(rt, line, &cur, &key, &next);
        if (rc)
            return rc;
        cur = next;
        i = j + 1;
    }
    *out = cur;
    return KZ_OK;
}

static kz_status attr_arg(struct tmpl_rt *rt, int line, const struct tmpl_val *v, struct kz_slice *out)
{
    if (v->t == TV_STR) {
        *out = v->u.s;
        return KZ_OK;
    }
    return soft_str(rt, line, v, out);
}

/* ---- filters ------------------------------------------------------------ */

#define FILTER(name) \
    static kz_status name(struct tmpl_rt *rt, const struct tmpl_node *n, struct tmpl_val in, \
                          const struct tmpl_args *a, struct tmpl_val *out)

FILTER(f_trim)
{
    struct kz_slice s, chars;
    const struct tmpl_val *c = tmpl_arg(a, 0, "chars");
    kz_status rc = soft_str(rt, LINE, &in, &s);
    int has = c && c->t != TV_NONE;
    if (!rc && has)
        rc = need_str(rt, LINE, c, "trim", &chars);
    if (rc)
        return rc;
    struct kz_slice r = strip(s, has ? &chars : NULL, 1, 1);
    *out = tv_str(r.p, r.len);
    return KZ_OK;
}

FILTER(f_upper)
{
    (void)a;
    struct kz_slice s;
    kz_status rc = soft_str(rt, LINE, &in, &s);
    return rc ? rc : map_case(rt, LINE, s, C_UPPER, out);
}

FILTER(f_lower)
{
    (void)a;
    struct kz_slice s;
    kz_status rc = soft_str(rt, LINE, &in, &s);
    return rc ? rc : map_case(rt, LINE, s, C_LOWER, out);
}

FILTER(f_title)
{
    (void)a;
    struct kz_slice s;
    kz_status rc = soft_str(rt, LINE, &in, &s);
    return rc ? rc : map_case(rt, LINE, s, C_TITLE_FILTER, out);
}

FILTER(f_capitalize)
{
    (void)a;
    struct kz_slice s;
    kz_status rc = soft_str(rt, LINE, &in, &s);
    return rc ? rc : map_case(rt, LINE, s, C_CAPITALIZE, out);
}

FILTER(f_length)
{
    (void)a;
    switch (in.t) {
    case TV_STR: *out = tv_int((int64_t)tmpl_utf8_count(in.u.s.p, in.u.s.len)); return KZ_OK;
    case TV_LIST: *out = tv_int((int64_t)in.u.l->n); return KZ_OK;
    case TV_DICT:
        if (in.u.d->is_ns)
            break;
        *out = tv_int((int64_t)in.u.d->n);
        return KZ_OK;
    case TV_UNDEF: *out = tv_int(0); return KZ_OK;
    default: break;
    }
    return tmpl_fail(rt, LINE, KZ_EINVAL, "object of type '%s' has no len()", tmpl_type_name(&in));
}

FILTER(f_replace)
{
    struct kz_slice s, o, r;
    const struct tmpl_val *ov = tmpl_arg(a, 0, "old"), *rv = tmpl_arg(a, 1, "new"), *c = tmpl_arg(a, 2, "count");
    if (!ov || !rv)
        return tmpl_fail(rt, LINE, KZ_EINVAL, "replace needs the old and new strings");
    kz_status rc = soft_str(rt, LINE, &in, &s);
    if (!rc)
        rc = soft_str(rt, LINE, ov, &o);
    if (!rc)
        rc = soft_str(rt, LINE, rv, &r);
    if (rc)
        return rc;
    return str_replace(rt, LINE, s, o, r, c && intlike(c) ? ival(c) : -1, out);
}

FILTER(f_join)
{
    struct tmpl_list *l;
    struct kz_slice sep = {"", 0}, attr = {NULL, 0};
    const struct tmpl_val *d = tmpl_arg(a, 0, "d"), *at = tmpl_arg(a, 1, "attribute");
    kz_status rc = tmpl_iterate(rt, LINE, &in, &l);
    if (!rc && d)
        rc = soft_str(rt, LINE, d, &sep);
    if (!rc && at && at->t != TV_NONE)
        rc = attr_arg(rt, LINE, at, &attr);
    if (rc)
        return rc;
    struct tmpl_sb b;
    tmpl_sb_init(&b, tmpl_rt_max_memory(rt));
    for (size_t i = 0; i < l->n && !rc; i++) {
        struct tmpl_val v = l->v[i];
        if (attr.p)
            rc = attr_path(rt, LINE, &l->v[i], attr, &v);
        if (i)
            tmpl_sb_put(&b, sep.p, sep.len);
        tmpl_str(&b, &v, 0);
    }
    if (!rc)
        rc = tmpl_sb_to_str(rt, LINE, &b, out);
    tmpl_sb_deinit(&b);
    return rc;
}

static kz_status first_last(struct tmpl_rt *rt, const struct tmpl_node *n, struct tmpl_val in, int last,
                            struct tmpl_val *out)
{
    struct tmpl_list *l;
    kz_status rc = tmpl_iterate(rt, LINE, &in, &l);
    if (rc)
        return rc;
    if (l->n == 0) {
        static const char msg[] = "No first item, sequence was empty.";
        static const char msg2[] = "No last item, sequence was empty.";
        *out = tv_undef(TU_OTHER, last ? (struct kz_slice){msg2, sizeof msg2 - 1} : (struct kz_slice){msg, sizeof msg - 1});
        return KZ_OK;
    }
    *out = l->v[last ? l->n - 1 : 0];
    return KZ_OK;
}

FILTER(f_first)
{
    (void)a;
    return first_last(rt, n, in, 0, out);
}

FILTER(f_last)
{
    (void)a;
    return first_last(rt, n, in, 1, out);
}

FILTER(f_default)
{
    (void)rt;
    (void)n;
    const struct tmpl_val *d = tmpl_arg(a, 0, "default_value");
    int boolean = arg_true(a, 1, "boolean");
    if (in.t == TV_UNDEF || (boolean && !tmpl_truthy(&in)))
        *out = d ? *d : tv_str("", 0);
    else
        *out = in;
    return KZ_OK;
}

FILTER(f_string)
{
    (void)a;
    return tmpl_to_str(rt, LINE, &in, out);
}

FILTER(f_safe)
{
    (void)a;
    return tmpl_to_str(rt, LINE, &in, out);
}

FILTER(f_escape)
{
    (void)a;
    struct kz_slice s;
    kz_status rc = soft_str(rt, LINE, &in, &s);
    if (rc)
        return rc;
    struct tmpl_sb b;
    tmpl_sb_init(&b, tmpl_rt_max_memory(rt));
    size_t run = 0;
    for (size_t i = 0; i < s.len; i++) {
        const char *e = NULL;
        switch (s.p[i]) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&#34;"; break;
        case '\'': e = "&#39;"; break;
        default: continue;
        }
        tmpl_sb_put(&b, s.p + run, i - run);
        tmpl_sb_puts(&b, e);
        run = i + 1;
    }
    tmpl_sb_put(&b, s.p + run, s.len - run);
    rc = tmpl_sb_to_str(rt, LINE, &b, out);
    tmpl_sb_deinit(&b);
    return rc;
}

/* Python int("..."): optional sign, digits with single underscores, spaces around. */
static int parse_int(struct kz_slice s, int64_t *out)
{
    s = strip(s, NULL, 1, 1);
    size_t i = 0;
    int neg = 0;
    if (i < s.len && (s.p[i] == '+' || s.p[i] == '-'))
        neg = s.p[i++] == '-';
    if (i >= s.len)
        return -1;
    int64_t v = 0;
    for (; i < s.len; i++) {
        char c = s.p[i];
        if (c == '_' && i + 1 < s.len && s.p[i + 1] != '_' && i > 0 && s.p[i - 1] >= '0' && s.p[i - 1] <= '9')
            continue;
        if (c < '0' || c > '9')
            return -1;
        if (v > (INT64_MAX - (c - '0')) / 10)
            return -1;
        v = v * 10 + (c - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

static int parse_float(struct kz_slice s, double *out)
{
    char buf[128];
    s = strip(s, NULL, 1, 1);
    if (s.len == 0 || s.len >= sizeof buf)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (c == 'x' || c == 'X' || c == 'p' || c == 'P' || c == '\0')
            return -1; /* no hex floats: Python has none */
        if (c != '_')
            buf[o++] = c;
    }
    buf[o] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (end == buf || *end)
        return -1;
    *out = v;
    return 0;
}

FILTER(f_int)
{
    const struct tmpl_val *d = tmpl_arg(a, 0, "default");
    int64_t iv;
    double fv;
    if (in.t == TV_UNDEF)
        return tmpl_fail_undef(rt, LINE, &in);
    if (intlike(&in)) {
        *out = tv_int(ival(&in));
        return KZ_OK;
    }
    if (in.t == TV_FLOAT && isfinite(in.u.f) && fabs(in.u.f) < 9.2e18) {
        *out = tv_int((int64_t)in.u.f);
        return KZ_OK;
    }
    if (in.t == TV_STR) {
        if (!parse_int(in.u.s, &iv)) {
            *out = tv_int(iv);
            return KZ_OK;
        }
        if (!parse_float(in.u.s, &fv) && isfinite(fv) && fabs(fv) < 9.2e18) {
            *out = tv_int((int64_t)fv);
            return KZ_OK;
        }
    }
    *out = d ? *d : tv_int(0);
    return KZ_OK;
}

FILTER(f_float)
{
    const struct tmpl_val *d = tmpl_arg(a, 0, "default");
    double fv;
    if (in.t == TV_UNDEF)
        return tmpl_fail_undef(rt, LINE, &in);
    if (intlike(&in) || in.t == TV_FLOAT) {
        *out = tv_float(in.t == TV_FLOAT ? in.u.f : (double)ival(&in));
        return KZ_OK;
    }
    if (in.t == TV_STR && !parse_float(in.u.s, &fv)) {
        *out = tv_float(fv);
        return KZ_OK;
    }
    *out = d ? *d : tv_float(0.0);
    return KZ_OK;
}

FILTER(f_list)
{
    (void)a;
    struct tmpl_list *l;
    kz_status rc = tmpl_iterate(rt, LINE, &in, &l);
    if (!rc)
        rc = tmpl_new_list(rt, LINE, l->n, out);
    if (!rc && l->n)
        memcpy(out->u.l->v, l->v, l->n * sizeof *l->v);
    return rc;
}

FILTER(f_items)
{
    (void)a;
    if (in.t == TV_UNDEF)
        return tmpl_new_list(rt, LINE, 0, out);
    if (in.t != TV_DICT || in.u.d->is_ns)
        return tmpl_fail(rt, LINE, KZ_EINVAL, "items: can only get item pairs from a mapping, not '%s'",
                         tmpl_type_name(&in));
    return dict_items(rt, LINE, in.u.d, 2, out);
}

FILTER(f_tojson)
{
    struct tmpl_json_opts o = {0};
    const struct tmpl_val *ea = tmpl_arg(a, 0, "ensure_ascii"), *ind = tmpl_arg(a, 1, "indent"),
                          *sep = tmpl_arg(a, 2, "separators"), *sk = tmpl_arg(a, 3, "sort_keys");
    char spaces[64];
    o.ensure_ascii = ea && tmpl_truthy(ea);
    o.sort_keys = sk && tmpl_truthy(sk);
    if (ind && ind->t != TV_NONE) {
        o.indent_on = 1;
        if (ind->t == TV_STR) {
            o.indent = ind->u.s;
        } else if (intlike(ind)) {
            int64_t k = ival(ind);
            if (k > (int64_t)sizeof spaces)
                return tmpl_fail(rt, LINE, KZ_ELIMIT, "tojson: indent over %zu", sizeof spaces);
            memset(spaces, ' ', sizeof spaces);
            o.indent.p = spaces;
            o.indent.len = k > 0 ? (size_t)k : 0;
        } else {
            return tmpl_fail(rt, LINE, KZ_EINVAL, "tojson: indent must be an integer or a string");
        }
    }
    o.item_sep.p = o.indent_on ? "," : ", ";
    o.item_sep.len = o.indent_on ? 1 : 2;
    o.key_sep.p = ": ";
    o.key_sep.len = 2;
    if (sep && sep->t != TV_NONE) {
        if (sep->t != TV_LIST || sep->u.l->n != 2 || sep->u.l->v[0].t != TV_STR || sep->u.l->v[1].t != TV_STR)
            return tmpl_fail(rt, LINE, KZ_EINVAL, "tojson: separators must be a pair of strings");
        o.item_sep = sep->u.l->v[0].u.s;
        o.key_sep = sep->u.l->v[1].u.s;
    }
    struct tmpl_sb b;
    const struct tmpl_val *bad = NULL;
    tmpl_sb_init(&b, tmpl_rt_max_memory(rt));
    kz_status rc = tmpl_tojson(&b, &in, &o, 0, &bad);
    if (rc == KZ_EINVAL)
        rc = tmpl_fail(rt, LINE, KZ_EINVAL, "tojson: object of type '%s' is not JSON serializable (or nested too deeply)",
                       bad ? tmpl_type_name(bad) : "?");
    else
        rc = tmpl_sb_to_str(rt, LINE, &b, out);
    tmpl_sb_deinit(&b);
    return rc;
}

/* select / reject / selectattr / rejectattr share this. */
static kz_status select_common(struct tmpl_rt *rt, const struct tmpl_node *n, struct tmpl_val in,
                               const struct tmpl_args *a, int by_attr, int keep, struct tmpl_val *out)
{
    struct tmpl_list *l;
    struct kz_slice attr = {NULL, 0}, test = {NULL, 0};
    size_t first_arg = by_attr ? 1 : 0;
    if (!tmpl_truthy(&in)) /* Jinja2 iterates only a true value here */
        return tmpl_new_list(rt, LINE, 0, out);
    kz_status rc = tmpl_iterate(rt, LINE, &in, &l);
    if (rc)
        return rc;
    if (by_attr) {
        if (a->n < 1)
            return tmpl_fail(rt, LINE, KZ_EINVAL, "selectattr/rejectattr need an attribute name");
        rc = attr_arg(rt, LINE, &a->pos[0], &attr);
    }
    if (!rc && a->n > first_arg) {
        if (a->pos[first_arg].t != TV_STR)
            return tmpl_fail(rt, LINE, KZ_EINVAL, "select: the test name must be a string");
        test = a->pos[first_arg].u.s;
    }
    if (rc)
        return rc;
    struct tmpl_args targs = {0};
    if (a->n > first_arg + 1) {
        targs.n = a->n - first_arg - 1;
        targs.pos = a->pos + first_arg + 1;
    }
    struct vec x = {0};
    for (size_t i = 0; i < l->n && !rc; i++) {
        struct tmpl_val v = l->v[i];
        int r;
        rc = tmpl_rt_step(rt, LINE);
        if (!rc && by_attr)
            rc = attr_path(rt, LINE, &l->v[i], attr, &v);
        if (rc)
            break;
        if (test.p)
            rc = tmpl_call_test(rt, n, test, &v, &targs, &r);
        else
            r = tmpl_truthy(&v);
        if (!rc && !r == !keep && vec_push(&x, l->v[i]))
            rc = tmpl_fail_alloc(rt, LINE, KZ_ENOMEM);
    }
    return vec_done(rt, LINE, &x, rc, out);
}

FILTER(f_select) { return select_common(rt, n, in, a, 0, 1, out); }
FILTER(f_reject) { return select_common(rt, n, in, a, 0, 0, out); }
FILTER(f_selectattr) { return select_common(rt, n, in, a, 1, 1, out); }
FILTER(f_rejectattr) { return select_common(rt, n, in, a, 1, 0, out); }

FILTER(f_map)
{
    struct tmpl_list *l;
    if (!tmpl_truthy(&in)) /* Jinja2 iterates only a true value here */
        return tmpl_new_list(rt, LINE, 0, out);
    kz_status rc = tmpl_iterate(rt, LINE, &in, &l);
    if (rc)
        return rc;
    const struct tmpl_val *attr = NULL, *def = NULL;
    for (size_t i = 0; i < a->n_kw; i++) {
        if (kz_slice_eq(a->kw[i], "attribute"))
            attr = &a->kwv[i];
        else if (kz_slice_eq(a->kw[i], "default"))
            def = &a->kwv[i];
    }
    struct kz_slice path = {NULL, 0};
    tmpl_filter_fn fn = NULL;
    struct tmpl_args fargs = {0};
    if (attr) {
        rc = attr_arg(rt, LINE, attr, &path);
        if (rc)
            return rc;
    } else {
        if (a->n < 1 || a->pos[0].t != TV_STR)
            return tmpl_fail(rt, LINE, KZ_EINVAL, "map needs a filter name or attribute=");
        fn = tmpl_find_filter(a->pos[0].u.s);
        if (!fn)
            return tmpl_fail(rt, LINE, KZ_EUNSUPPORTED, "unknown filter '%.*s'", (int)a->pos[0].u.s.len,
                             a->pos[0].u.s.p);
        fargs.n = a->n - 1;
        fargs.pos = a->pos + 1;
    }
    rc = tmpl_new_list(rt, LINE, l->n, out);
    for (size_t i = 0; i < l->n && !rc; i++) {
        rc = tmpl_rt_step(rt, LINE);
        if (rc)
            break;
        if (fn) {
            rc = fn(rt, n, l->v[i], &fargs, &out->u.l->v[i]);
        } else {
            rc = attr_path(rt, LINE, &l->v[i], path, &out->u.l->v[i]);
            if (!rc && def && out->u.l->v[i].t == TV_UNDEF)
                out->u.l->v[i] = *def;
        }
    }
    return rc;
}

FILTER(f_indent)
{
    const struct tmpl_val *wv = tmpl_arg(a, 0, "width");
    int first = arg_true(a, 1, "first"), blank = arg_true(a, 2, "blank");
    struct kz_slice s, ind;
    char spaces[256];
    if (in.t == TV_UNDEF)
        return tmpl_fail_undef(rt, LINE, &in);
    if (in.t != TV_STR) /* Jinja2 appends "\n" to the value itself */
        return tmpl_fail(rt, LINE, KZ_EINVAL, "indent: expected a string, got '%s'", tmpl_type_name(&in));
    s = in.u.s;
    kz_status rc;
    if (wv && wv->t == TV_STR) {
        ind = wv->u.s;
    } else {
        int64_t w = wv && intlike(wv) ? ival(wv) : 4;
        if (w > (int64_t)sizeof spaces)
            return tmpl_fail(rt, LINE, KZ_ELIMIT, "indent: width over %zu", sizeof spaces);
        memset(spaces, ' ', sizeof spaces);
        ind.p = spaces;
        ind.len = w > 0 ? (size_t)w : 0;
    }
    struct tmpl_sb b;
    tmpl_sb_init(&b, tmpl_rt_max_memory(rt));
    if (first)
        tmpl_sb_put(&b, ind.p, ind.len);
    /* Jinja2 splits s + "\n" with str.splitlines(): the lines of s, plus an
     * empty last line when s ends with a line break. Lines after the first
     * are indented unless empty (blank=True indents those too). */
    for (size_t i = 0, idx = 0;; idx++) {
        size_t e = i, bl = 0;
        while (e < s.len && (bl = line_break(s.p, s.len, e)) == 0)
            e++;
        if (idx > 0) {
            tmpl_sb_putc(&b, '\n');
            if (blank || e > i)
                tmpl_sb_put(&b, ind.p, ind.len);
        }
        tmpl_sb_put(&b, s.p + i, e - i);
        if (e >= s.len)
            break;
        i = e + bl;
    }
    rc = tmpl_sb_to_str(rt, LINE, &b, out);
    tmpl_sb_deinit(&b);
    return rc;
}

FILTER(f_round)
{
    const struct tmpl_val *pv = tmpl_arg(a, 0, "precision"), *mv = tmpl_arg(a, 1, "method");
    int64_t prec = pv && intlike(pv) ? ival(pv) : 0;
    struct kz_slice method = {"common", 6};
    if (mv) {
        kz_status rc = need_str(rt, LINE, mv, "round", &method);
        if (rc)
            return rc;
    }
    int common = kz_slice_eq(method, "common"), ceil_ = kz_slice_eq(method, "ceil"), floor_ = kz_slice_eq(method, "floor");
    if (!common && !ceil_ && !floor_)
        return tmpl_fail(rt, LINE, KZ_EINVAL, "round: method must be common, ceil or floor");
    if (in.t != TV_FLOAT && !intlike(&in))
        return tmpl_fail(rt, LINE, KZ_EINVAL, "round: expected a number, got '%s'", tmpl_type_name(&in));
    if (prec > 300)
        prec = 300;
    if (prec < -300)
        prec = -300;
    if (common && intlike(&in)) {
        *out = tv_int(ival(&in)); /* Python's round(int, n) stays an int */
        return KZ_OK;
    }
    double x = in.t == TV_FLOAT ? in.u.f : (double)ival(&in), r;
    if (!isfinite(x)) {
        r = x;
    } else if (common && prec >= 0) {
        /* printf rounds the exact binary value half-to-even, as Python does */
        char buf[400];
        snprintf(buf, sizeof buf, "%.*f", (int)prec, x);
        r = strtod(buf, NULL);
    } else {
        double p = pow(10.0, (double)prec);
        r = common ? nearbyint(x * p) / p : ceil_ ? ceil(x * p) / p : floor(x * p) / p;
    }
    *out = tv_float(r);
    return KZ_OK;
}

FILTER(f_abs)
{
    (void)a;
    if (in.t == TV_FLOAT) {
        *out = tv_float(fabs(in.u.f));
        return KZ_OK;
    }
    if (intlike(&in)) {
        int64_t v = ival(&in);
        if (v == INT64_MIN)
            return tmpl_fail(rt, LINE, KZ_EUNSUPPORTED, "integer overflow (beyond 64 bits)");
        *out = tv_int(v < 0 ? -v : v);
        return KZ_OK;
    }
    return tmpl_fail(rt, LINE, KZ_EINVAL, "bad operand type for abs(): '%s'", tmpl_type_name(&in));
}

/* Sort/unique key: the attribute, lower-cased when not case-sensitive. */
static kz_status sort_key(struct tmpl_rt *rt, int line, const struct tmpl_val *v, struct kz_slice attr, int cs,
                          struct tmpl_val *out)
{
    kz_status rc = KZ_OK;
    *out = *v;
    if (attr.p)
        rc = attr_path(rt, line, v, attr, out);
    if (!rc && !cs && out->t == TV_STR)
        rc = map_case(rt, line, out->u.s, C_LOWER, out);
    return rc;
}

FILTER(f_unique)
{
    struct tmpl_list *l;
    int cs = arg_true(a, 0, "case_sensitive");
    const struct tmpl_val *at = tmpl_arg(a, 1, "attribute");
    struct kz_slice attr = {NULL, 0};
    kz_status rc = tmpl_iterate(rt, LINE, &in, &l);
    if (!rc && at && at->t != TV_NONE)
        rc = attr_arg(rt, LINE, at, &attr);
    if (rc)
        return rc;
    struct vec keep = {0}, keys = {0};
    for (size_t i = 0; i < l->n && !rc; i++) {
        struct tmpl_val k;
        int seen = 0;
        rc = steps_add(rt, LINE, keys.n + 1);
        if (!rc)
            rc = sort_key(rt, LINE, &l->v[i], attr, cs, &k);
        for (size_t j = 0; !rc && j < keys.n && !seen; j++)
            seen = tmpl_equal(&keys.v[j], &k, 0);
        if (!rc && !seen && (vec_push(&keys, k) || vec_push(&keep, l->v[i])))
            rc = tmpl_fail_alloc(rt, LINE, KZ_ENOMEM);
    }
    kz_free(keys.v);
    return vec_done(rt, LINE, &keep, rc, out);
}

struct sort_item {
    struct tmpl_val key, val;
};

/* Stable merge sort on keys; *bad set when two keys do not order. */
static void merge_sort(struct sort_item *v, struct sort_item *tmp, size_t n, int reverse, int *bad)
{
    if (n < 2 || *bad)
        return;
    size_t h = n / 2;
    merge_sort(v, tmp, h, reverse, bad);
    merge_sort(v + h, tmp, n - h, reverse, bad);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int c = 0;
        if (tmpl_compare(&v[j].key, &v[i].key, &c, 0))
            *bad = 1;
        if (reverse ? c > 0 : c < 0)
            tmp[k++] = v[j++];
        else
            tmp[k++] = v[i++];
    }
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static kz_status sort_list(struct tmpl_rt *rt, const struct tmpl_node *n, struct sort_item *items, size_t cnt,
                           int reverse, struct tmpl_val *out)
{
    kz_status rc = steps_add(rt, LINE, cnt);
    struct sort_item *tmp = rc || !cnt ? NULL : kz_malloc(cnt * sizeof *tmp);
    int bad = 0;
    if (!rc && cnt && !tmp)
        rc = tmpl_fail_alloc(rt, LINE, KZ_ENOMEM);
    if (!rc)
        merge_sort(items, tmp, cnt, reverse, &bad);
    kz_free(tmp);
    if (!rc && bad)
        rc = tmpl_fail(rt, LINE, KZ_EINVAL, "sort: items of these types cannot be compared");
    if (!rc)
        rc = tmpl_new_list(rt, LINE, cnt, out);
    for (size_t i = 0; !rc && i < cnt; i++)
        out->u.l->v[i] = items[i].val;
    return rc;
}

FILTER(f_sort)
{
    struct tmpl_list *l;
    int reverse = arg_true(a, 0, "reverse"), cs = arg_true(a, 1, "case_sensitive");
    const struct tmpl_val *at = tmpl_arg(a, 2, "attribute");
    struct kz_slice attr = {NULL, 0};
    kz_status rc = tmpl_iterate(rt, LINE, &in, &l);
    if (!rc && at && at->t != TV_NONE)
        rc = attr_arg(rt, LINE, at, &attr);
    if (rc)
        return rc;
    struct sort_item *items = l->n ? kz_malloc(l->n * sizeof *items) : NULL;
    if (l->n && !items)
        return tmpl_fail_alloc(rt, LINE, KZ_ENOMEM);
    for (size_t i = 0; i < l->n && !rc; i++) {
        items[i].val = l->v[i];
        rc = sort_key(rt, LINE, &l->v[i], attr, cs, &items[i].key);
    }
    if (!rc)
        rc = sort_list(rt, n, items, l->n, reverse, out);
    kz_free(items);
    return rc;
}

FILTER(f_dictsort)
{
    int cs = arg_true(a, 0, "case_sensitive"), reverse = arg_true(a, 2, "reverse");
    const struct tmpl_val *by = tmpl_arg(a, 1, "by");
    int by_value = by && by->t == TV_STR && kz_slice_eq(by->u.s, "value");
    struct tmpl_val pairs;
    if (in.t != TV_DICT || in.u.d->is_ns)
        return tmpl_fail(rt, LINE, KZ_EINVAL, "dictsort: expected a dict, got '%s'", tmpl_type_name(&in));
    kz_status rc = dict_items(rt, LINE, in.u.d, 2, &pairs);
    if (rc)
        return rc;
    size_t cnt = pairs.u.l->n;
    struct sort_item *items = cnt ? kz_malloc(cnt * sizeof *items) : NULL;
    if (cnt && !items)
        return tmpl_fail_alloc(rt, LINE, KZ_ENOMEM);
    struct kz_slice none = {NULL, 0};
    for (size_t i = 0; i < cnt && !rc; i++) {
        items[i].val = pairs.u.l->v[i];
        rc = sort_key(rt, LINE, &pairs.u.l->v[i].u.l->v[by_value ? 1 : 0], none, cs, &items[i].key);
    }
    if (!rc)
        rc = sort_list(rt, n, items, cnt, reverse, out);
    kz_free(items);
    return rc;
}

FILTER(f_reverse)
{
    (void)a;
    if (in.t == TV_STR) {
        struct tmpl_sb b;
        tmpl_sb_init(&b, tmpl_rt_max_memory(rt));
        for (size_t e = in.u.s.len; e > 0;) {
            uint32_t cp;
            size_t p = prev_char(in.u.s.p, 0, e, &cp);
            tmpl_sb_put(&b, in.u.s.p + p, e - p);
            e = p;
        }
        kz_status rc = tmpl_sb_to_str(rt, LINE, &b, out);
        tmpl_sb_deinit(&b);
        return rc;
    }
    struct tmpl_list *l;
    kz_status rc = tmpl_iterate(rt, LINE, &in, &l);
    if (!rc)
        rc = tmpl_new_list(rt, LINE, l->n, out);
    for (size_t i = 0; !rc && i < l->n; i++)
        out->u.l->v[i] = l->v[l->n - 1 - i];
    return rc;
}

FILTER(f_sum)
{
    struct tmpl_list *l;
    const struct tmpl_val *at = tmpl_arg(a, 0, "attribute"), *st = tmpl_arg(a, 1, "start");
    struct kz_slice attr = {NULL, 0};
    kz_status rc = tmpl_iterate(rt, LINE, &in, &l);
    if (!rc && at && at->t != TV_NONE)
        rc = attr_arg(rt, LINE, at, &attr);
    if (rc)
        return rc;
    int is_float = st && st->t == TV_FLOAT;
    int64_t si = st && intlike(st) ? ival(st) : 0;
    double sf = st && st->t == TV_FLOAT ? st->u.f : (double)si;
    for (size_t i = 0; i < l->n && !rc; i++) {
        struct tmpl_val v = l->v[i];
        if (attr.p)
            rc = attr_path(rt, LINE, &l->v[i], attr, &v);
        if (rc)
            break;
        if (v.t == TV_FLOAT) {
            if (!is_float)
                sf = (double)si;
            is_float = 1;
            sf += v.u.f;
        } else if (intlike(&v)) {
            if (is_float)
                sf += (double)ival(&v);
            else if (__builtin_add_overflow(si, ival(&v), &si))
                rc = tmpl_fail(rt, LINE, KZ_EUNSUPPORTED, "integer overflow (beyond 64 bits)");
        } else {
            rc = tmpl_fail(rt, LINE, KZ_EINVAL, "sum: unsupported operand type '%s'", tmpl_type_name(&v));
        }
    }
    if (!rc)
        *out = is_float ? tv_float(sf) : tv_int(si);
    return rc;
}

static kz_status min_max(struct tmpl_rt *rt, const struct tmpl_node *n, struct tmpl_val in, const struct tmpl_args *a,
                         int want_max, struct tmpl_val *out)
{
    struct tmpl_list *l;
    int cs = arg_true(a, 0, "case_sensitive");
    const struct tmpl_val *at = tmpl_arg(a, 1, "attribute");
    struct kz_slice attr = {NULL, 0};
    kz_status rc = tmpl_iterate(rt, LINE, &in, &l);
    if (!rc && at && at->t != TV_NONE)
        rc = attr_arg(rt, LINE, at, &attr);
    if (rc)
        return rc;
    if (l->n == 0) {
        *out = tv_undef(TU_OTHER, (struct kz_slice){"No aggregated item, sequence was empty.", 39});
        return KZ_OK;
    }
    struct tmpl_val best_key;
    size_t best = 0;
    rc = sort_key(rt, LINE, &l->v[0], attr, cs, &best_key);
    for (size_t i = 1; i < l->n && !rc; i++) {
        struct tmpl_val k;
        int c;
        rc = sort_key(rt, LINE, &l->v[i], attr, cs, &k);
        if (rc)
            break;
        if (tmpl_compare(&k, &best_key, &c, 0)) {
            rc = tmpl_fail(rt, LINE, KZ_EINVAL, "min/max: items of these types cannot be compared");
            break;
        }
        if (want_max ? c > 0 : c < 0) {
            best = i;
            best_key = k;
        }
    }
    if (!rc)
        *out = l->v[best];
    return rc;
}

FILTER(f_min) { return min_max(rt, n, in, a, 0, out); }
FILTER(f_max) { return min_max(rt, n, in, a, 1, out); }

FILTER(f_wordcount)
{
    (void)a;
    struct kz_slice s;
    kz_status rc = soft_str(rt, LINE, &in, &s);
    if (rc)
        return rc;
    int64_t words = 0;
    int inword = 0;
    for (size_t i = 0; i < s.len;) {
        uint32_t cp;
        i += tmpl_utf8_next(s.p + i, s.len - i, &cp);
        int w = cp == '_' || cp_alnum(cp);
        if (w && !inword)
            words++;
        inword = w;
    }
    *out = tv_int(words);
    return KZ_OK;
}

FILTER(f_center)
{
    const struct tmpl_val *wv = tmpl_arg(a, 0, "width");
    struct kz_slice s;
    kz_status rc = soft_str(rt, LINE, &in, &s);
    if (rc)
        return rc;
    int64_t w = wv && intlike(wv) ? ival(wv) : 80;
    int64_t len = (int64_t)tmpl_utf8_count(s.p, s.len);
    if (w > 100000)
        return tmpl_fail(rt, LINE, KZ_ELIMIT, "center: width over 100000");
    if (w <= len) {
        *out = in.t == TV_STR ? in : tv_str(s.p, s.len);
        return KZ_OK;
    }
    /* Python's str.center puts the odd space on the right unless both the
     * padding and the width are odd. */
    int64_t pad = w - len, left = pad / 2 + (pad & w & 1);
    struct tmpl_sb b;
    tmpl_sb_init(&b, tmpl_rt_max_memory(rt));
    for (int64_t i = 0; i < left; i++)
        tmpl_sb_putc(&b, ' ');
    tmpl_sb_put(&b, s.p, s.len);
    for (int64_t i = 0; i < pad - left; i++)
        tmpl_sb_putc(&b, ' ');
    rc = tmpl_sb_to_str(rt, LINE, &b, out);
    tmpl_sb_deinit(&b);
    return rc;
}

FILTER(f_format)
{
    struct kz_slice f;
    struct tmpl_val tup;
    kz_status rc = soft_str(rt, LINE, &in, &f);
    if (rc)
        return rc;
    if (a->n_kw) {
        rc = tmpl_new_dict(rt, LINE, &tup);
        for (size_t i = 0; i < a->n_kw && !rc; i++)
            if (tmpl_dict_set(tmpl_rt_arena(rt), tup.u.d, tv_str(a->kw[i].p, a->kw[i].len), a->kwv[i]))
                rc = tmpl_fail_alloc(rt, LINE, KZ_ENOMEM);
    } else {
        rc = tmpl_new_list(rt, LINE, a->n, &tup);
        if (!rc) {
            tup.u.l->is_tuple = 1;
            if (a->n)
                memcpy(tup.u.l->v, a->pos, a->n * sizeof *a->pos);
        }
    }
    return rc ? rc : tmpl_percent_format(rt, LINE, f, &tup, out);
}

FILTER(f_attr)
{
    const struct tmpl_val *name = tmpl_arg(a, 0, "name");
    struct kz_slice s;
    kz_status rc = need_str(rt, LINE, name, "attr", &s);
    return rc ? rc : tmpl_getattr(rt, LINE, &in, s, out);
}

FILTER(f_batch)
{
    const struct tmpl_val *cv = tmpl_arg(a, 0, "linecount"), *fill = tmpl_arg(a, 1, "fill_with");
    struct tmpl_list *l;
    if (!cv || !intlike(cv) || ival(cv) <= 0)
        return tmpl_fail(rt, LINE, KZ_EINVAL, "batch: linecount must be a positive integer");
    size_t per = (size_t)ival(cv);
    kz_status rc = tmpl_iterate(rt, LINE, &in, &l);
    if (rc)
        return rc;
    size_t groups = l->n / per + (l->n % per != 0);
    rc = tmpl_new_list(rt, LINE, groups, out);
    for (size_t g = 0; g < groups && !rc; g++) {
        size_t cnt = g + 1 < groups || l->n % per == 0 || fill ? per : l->n % per;
        struct tmpl_val grp;
        rc = tmpl_new_list(rt, LINE, cnt, &grp);
        for (size_t k = 0; k < cnt && !rc; k++) {
            size_t idx = g * per + k;
            grp.u.l->v[k] = idx < l->n ? l->v[idx] : *fill;
        }
        if (!rc)
            out->u.l->v[g] = grp;
    }
    return rc;
}

struct filter_def {
    const char *name;
    tmpl_filter_fn fn;
};

static const struct filter_def filters[] = {
    {"abs", f_abs}, {"attr", f_attr}, {"batch", f_batch}, {"capitalize", f_capitalize}, {"center", f_center},
    {"count", f_length}, {"d", f_default}, {"default", f_default}, {"dictsort", f_dictsort}, {"e", f_escape},
    {"escape", f_escape}, {"first", f_first}, {"float", f_float}, {"forceescape", f_escape}, {"format", f_format},
    {"indent", f_indent}, {"int", f_int}, {"items", f_items}, {"join", f_join}, {"last", f_last},
    {"length", f_length}, {"list", f_list}, {"lower", f_lower}, {"map", f_map}, {"max", f_max}, {"min", f_min},
    {"reject", f_reject}, {"rejectattr", f_rejectattr}, {"replace", f_replace}, {"reverse", f_reverse},
    {"round", f_round}, {"safe", f_safe}, {"select", f_select}, {"selectattr", f_selectattr}, {"sort", f_sort},
    {"string", f_string}, {"sum", f_sum}, {"title", f_title}, {"tojson", f_tojson}, {"trim", f_trim},
    {"unique", f_unique}, {"upper", f_upper}, {"wordcount", f_wordcount},
};

tmpl_filter_fn tmpl_find_filter(struct kz_slice name)
{
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (kz_slice_eq(name, filters[i].name))
            return filters[i].fn;
    return NULL;
}

/* ---- tests --------------------------------------------------------------- */

#define TEST(name) \
    static kz_status name(struct tmpl_rt *rt, const struct tmpl_node *n, const struct tmpl_val *v, \
                          const struct tmpl_args *a, int *r)

#define SIMPLE_TEST(name, expr) \
    TEST(name)                  \
    {                           \
        (void)rt;               \
        (void)n;                \
        (void)a;                \
        *r = (expr);            \
        return KZ_OK;           \
    }

SIMPLE_TEST(t_defined, v->t != TV_UNDEF)
SIMPLE_TEST(t_undefined, v->t == TV_UNDEF)
SIMPLE_TEST(t_none, v->t == TV_NONE)
SIMPLE_TEST(t_string, v->t == TV_STR)
SIMPLE_TEST(t_mapping, v->t == TV_DICT && !v->u.d->is_ns)
SIMPLE_TEST(t_iterable, v->t == TV_STR || v->t == TV_LIST || (v->t == TV_DICT && !v->u.d->is_ns) || v->t == TV_UNDEF)
SIMPLE_TEST(t_sequence, v->t == TV_STR || v->t == TV_LIST || (v->t == TV_DICT && !v->u.d->is_ns) || v->t == TV_UNDEF)
SIMPLE_TEST(t_number, v->t == TV_INT || v->t == TV_FLOAT || v->t == TV_BOOL)
SIMPLE_TEST(t_integer, v->t == TV_INT)
SIMPLE_TEST(t_float, v->t == TV_FLOAT)
SIMPLE_TEST(t_boolean, v->t == TV_BOOL)
SIMPLE_TEST(t_true, v->t == TV_BOOL && v->u.b)
SIMPLE_TEST(t_false, v->t == TV_BOOL && !v->u.b)
SIMPLE_TEST(t_callable, v->t == TV_FUNC)
SIMPLE_TEST(t_escaped, v->t < 0) /* nothing here is Markup */

/* Python's value % 2 on an int or a float. */
static kz_status parity(struct tmpl_rt *rt, const struct tmpl_node *n, const struct tmpl_val *v, int want_odd, int *r)
{
    if (intlike(v)) {
        *r = (ival(v) % 2 != 0) == want_odd;
        return KZ_OK;
    }
    if (v->t == TV_FLOAT) {
        double m = fmod(v->u.f, 2.0);
        *r = want_odd ? (m == 1.0 || m == -1.0) : m == 0.0;
        return KZ_OK;
    }
    return tmpl_fail(rt, LINE, KZ_EINVAL, "even/odd need a number, got '%s'", tmpl_type_name(v));
}

/* Jinja2 tests str(value).islower() / isupper(). */
static kz_status case_of(struct tmpl_rt *rt, const struct tmpl_node *n, const struct tmpl_val *v, int upper, int *r)
{
    struct kz_slice s;
    kz_status rc = soft_str(rt, LINE, v, &s);
    if (!rc)
        *r = case_test(s, upper);
    return rc;
}

TEST(t_lower)
{
    (void)a;
    return case_of(rt, n, v, 0, r);
}

TEST(t_upper)
{
    (void)a;
    return case_of(rt, n, v, 1, r);
}

TEST(t_even)
{
    (void)a;
    return parity(rt, n, v, 0, r);
}

TEST(t_odd)
{
    (void)a;
    return parity(rt, n, v, 1, r);
}

TEST(t_divisibleby)
{
    const struct tmpl_val *dv = tmpl_arg(a, 0, "num");
    if (!dv)
        return tmpl_fail(rt, LINE, KZ_EINVAL, "divisibleby needs a number");
    if (intlike(v) && intlike(dv)) {
        int64_t i = ival(v), d = ival(dv);
        if (d == 0)
            return tmpl_fail(rt, LINE, KZ_EINVAL, "integer division or modulo by zero");
        *r = d == -1 || i % d == 0;
        return KZ_OK;
    }
    if ((intlike(v) || v->t == TV_FLOAT) && (intlike(dv) || dv->t == TV_FLOAT)) {
        double x = v->t == TV_FLOAT ? v->u.f : (double)ival(v), d = dv->t == TV_FLOAT ? dv->u.f : (double)ival(dv);
        if (d == 0.0)
            return tmpl_fail(rt, LINE, KZ_EINVAL, "float modulo by zero");
        *r = fmod(x, d) == 0.0;
        return KZ_OK;
    }
    return tmpl_fail(rt, LINE, KZ_EINVAL, "divisibleby needs numbers, got '%s' and '%s'", tmpl_type_name(v),
                     tmpl_type_name(dv));
}

static kz_status cmp_test(struct tmpl_rt *rt, const struct tmpl_node *n, const struct tmpl_val *v,
                          const struct tmpl_args *a, int op, int *r)
{
    const struct tmpl_val *o = tmpl_arg(a, 0, "other");
    int c;
    if (!o)
        return tmpl_fail(rt, LINE, KZ_EINVAL, "comparison test needs a value to compare with");
    if (op == 0) {
        *r = tmpl_equal(v, o, 0);
        return KZ_OK;
    }
    if (op == 1) {
        *r = !tmpl_equal(v, o, 0);
        return KZ_OK;
    }
    if (tmpl_compare(v, o, &c, 0))
        return tmpl_fail(rt, LINE, KZ_EINVAL, "'%s' and '%s' cannot be ordered", tmpl_type_name(v), tmpl_type_name(o));
    *r = op == 2 ? c < 0 : op == 3 ? c <= 0 : op == 4 ? c > 0 : c >= 0;
    return KZ_OK;
}

TEST(t_eq) { return cmp_test(rt, n, v, a, 0, r); }
TEST(t_ne) { return cmp_test(rt, n, v, a, 1, r); }
TEST(t_lt) { return cmp_test(rt, n, v, a, 2, r); }
TEST(t_le) { return cmp_test(rt, n, v, a, 3, r); }
TEST(t_gt) { return cmp_test(rt, n, v, a, 4, r); }
TEST(t_ge) { return cmp_test(rt, n, v, a, 5, r); }

TEST(t_in)
{
    const struct tmpl_val *seq = tmpl_arg(a, 0, "seq");
    if (!seq)
        return tmpl_fail(rt, LINE, KZ_EINVAL, "'in' test needs a sequence");
    if (seq->t == TV_STR) {
        if (v->t != TV_STR)
            return tmpl_fail(rt, LINE, KZ_EINVAL, "'in <string>' requires string as left operand, not %s",
                             tmpl_type_name(v));
        *r = v->u.s.len == 0 || memmem(seq->u.s.p, seq->u.s.len, v->u.s.p, v->u.s.len) != NULL;
        return KZ_OK;
    }
    if (seq->t == TV_DICT && !seq->u.d->is_ns) {
        *r = tmpl_dict_get(seq->u.d, v) != NULL;
        return KZ_OK;
    }
    struct tmpl_list *l;
    kz_status rc = tmpl_iterate(rt, LINE, seq, &l);
    *r = 0;
    for (size_t i = 0; !rc && i < l->n && !*r; i++)
        *r = tmpl_equal(v, &l->v[i], 0);
    return rc;
}

TEST(t_sameas)
{
    const struct tmpl_val *o = tmpl_arg(a, 0, "other");
    (void)rt;
    (void)n;
    if (!o) {
        *r = 0;
        return KZ_OK;
    }
    if (v->t != o->t) {
        *r = 0;
    } else if (v->t == TV_LIST || v->t == TV_DICT || v->t == TV_FUNC || v->t == TV_LOOP) {
        *r = v->u.l == o->u.l; /* identity of the shared object */
    } else {
        *r = tmpl_equal(v, o, 0);
    }
    return KZ_OK;
}

struct test_def {
    const char *name;
    tmpl_test_fn fn;
};

static const struct test_def tests[] = {
    {"boolean", t_boolean}, {"callable", t_callable}, {"defined", t_defined}, {"divisibleby", t_divisibleby},
    {"eq", t_eq}, {"equalto", t_eq}, {"escaped", t_escaped}, {"even", t_even}, {"false", t_false},
    {"float", t_float}, {"ge", t_ge}, {"greaterthan", t_gt}, {"gt", t_gt}, {"in", t_in}, {"integer", t_integer},
    {"iterable", t_iterable}, {"le", t_le}, {"lessthan", t_lt}, {"lower", t_lower}, {"lt", t_lt},
    {"mapping", t_mapping}, {"ne", t_ne}, {"none", t_none}, {"number", t_number}, {"odd", t_odd},
    {"sameas", t_sameas}, {"sequence", t_sequence}, {"string", t_string}, {"true", t_true},
    {"undefined", t_undefined}, {"upper", t_upper},
};

tmpl_test_fn tmpl_find_test(struct kz_slice name)
{
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (kz_slice_eq(name, tests[i].name))
            return tests[i].fn;
    return NULL;
}
