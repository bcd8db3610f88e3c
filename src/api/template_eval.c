/* SPDX-License-Identifier: MIT
 * Template evaluator: walks the syntax tree with Jinja2's semantics
 * (Python values, Undefined for anything missing, a scope per loop
 * iteration and per macro call, namespace() as the one writable object),
 * plus the render entry points.
 *
 * Bounds: every statement, loop iteration and call counts one step against
 * max_steps; nesting of evaluation is capped at KZ_TEMPLATE_MAX_DEPTH; all
 * values come from one arena capped at max_memory and the output buffer is
 * capped at max_output. Any of these ends the render with KZ_ELIMIT.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/template_int.h"
#include "core/alloc.h"

/* Jinja2's sandbox refuses range() results longer than this. */
#define TMPL_MAX_RANGE 100000

enum { CTL_NONE, CTL_BREAK, CTL_CONTINUE };

kz_status tmpl_fail(struct tmpl_rt *rt, int line, kz_status s, const char *fmt, ...)
{
    if (rt->failed)
        return s;
    rt->failed = 1;
    if (!rt->err)
        return s;
    int n = snprintf(rt->err->msg, sizeof rt->err->msg, "template line %d: ", line);
    if (n < 0 || (size_t)n >= sizeof rt->err->msg)
        return s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rt->err->msg + n, sizeof rt->err->msg - (size_t)n, fmt, ap);
    va_end(ap);
    return s;
}

kz_status tmpl_fail_alloc(struct tmpl_rt *rt, int line, kz_status s)
{
    if (s == KZ_ELIMIT)
        return tmpl_fail(rt, line, KZ_ELIMIT, "rendering needs more than the %zu-byte memory limit",
                         rt->max_memory);
    return tmpl_fail(rt, line, KZ_ENOMEM, "out of memory");
}

static kz_status fail_sb(struct tmpl_rt *rt, int line, const struct tmpl_sb *b)
{
    if (b->failed == KZ_ELIMIT && b->max == rt->max_output)
        return tmpl_fail(rt, line, KZ_ELIMIT, "output is over the %zu-byte limit", rt->max_output);
    return tmpl_fail_alloc(rt, line, b->failed ? b->failed : KZ_ENOMEM);
}

kz_status tmpl_fail_undef(struct tmpl_rt *rt, int line, const struct tmpl_val *v)
{
    int len = (int)(v->u.s.len < 128 ? v->u.s.len : 128);
    switch (v->kind) {
    case TU_NAME: return tmpl_fail(rt, line, KZ_EINVAL, "'%.*s' is undefined", len, v->u.s.p);
    case TU_ATTR: return tmpl_fail(rt, line, KZ_EINVAL, "object has no attribute '%.*s'", len, v->u.s.p);
    case TU_ITEM: return tmpl_fail(rt, line, KZ_EINVAL, "object has no item %.*s", len, v->u.s.p);
    default: return tmpl_fail(rt, line, KZ_EINVAL, "%.*s", len, v->u.s.len ? v->u.s.p : "undefined value");
    }
}

struct tmpl_arena *tmpl_rt_arena(struct tmpl_rt *rt) { return &rt->arena; }
size_t tmpl_rt_max_memory(const struct tmpl_rt *rt) { return rt->max_memory; }

kz_status tmpl_rt_step(struct tmpl_rt *rt, int line)
{
    if (++rt->steps > rt->max_steps)
        return tmpl_fail(rt, line, KZ_ELIMIT, "more than %llu steps (loop iterations, statements, calls)",
                         (unsigned long long)rt->max_steps);
    return KZ_OK;
}

/* ---- value builders ------------------------------------------------------ */

kz_status tmpl_new_str(struct tmpl_rt *rt, int line, const char *p, size_t len, struct tmpl_val *out)
{
    char *s = tmpl_arena_strndup(&rt->arena, p, len);
    if (!s)
        return tmpl_fail_alloc(rt, line, rt->arena.failed);
    *out = tv_str(s, len);
    return KZ_OK;
}

kz_status tmpl_sb_to_str(struct tmpl_rt *rt, int line, struct tmpl_sb *b, struct tmpl_val *out)
{
    if (b->failed)
        return fail_sb(rt, line, b);
    return tmpl_new_str(rt, line, b->p ? b->p : "", b->len, out);
}

kz_status tmpl_new_list(struct tmpl_rt *rt, int line, size_t n, struct tmpl_val *out)
{
    struct tmpl_list *l = tmpl_arena_alloc(&rt->arena, sizeof *l);
    if (l && n) {
        l->v = n <= SIZE_MAX / sizeof *l->v ? tmpl_arena_alloc(&rt->arena, n * sizeof *l->v) : NULL;
        if (!l->v)
            l = NULL;
    }
    if (!l)
        return tmpl_fail_alloc(rt, line, rt->arena.failed ? rt->arena.failed : KZ_ELIMIT);
    l->n = n;
    out->t = TV_LIST;
    out->u.l = l;
    return KZ_OK;
}

kz_status tmpl_new_dict(struct tmpl_rt *rt, int line, struct tmpl_val *out)
{
    struct tmpl_dict *d = tmpl_arena_alloc(&rt->arena, sizeof *d);
    if (!d)
        return tmpl_fail_alloc(rt, line, rt->arena.failed);
    out->t = TV_DICT;
    out->u.d = d;
    return KZ_OK;
}

kz_status tmpl_to_str(struct tmpl_rt *rt, int line, const struct tmpl_val *v, struct tmpl_val *out)
{
    if (v->t == TV_STR) {
        *out = *v;
        return KZ_OK;
    }
    if (v->t == TV_UNDEF) {
        *out = tv_str("", 0);
        return KZ_OK;
    }
    struct tmpl_sb b;
    tmpl_sb_init(&b, rt->max_memory);
    tmpl_str(&b, v, 0);
    kz_status rc = tmpl_sb_to_str(rt, line, &b, out);
    tmpl_sb_deinit(&b);
    return rc;
}

static kz_status new_func(struct tmpl_rt *rt, int line, int kind, struct kz_slice name, struct tmpl_val *out)
{
    struct tmpl_func *f = tmpl_arena_alloc(&rt->arena, sizeof *f);
    if (!f)
        return tmpl_fail_alloc(rt, line, rt->arena.failed);
    f->kind = kind;
    f->name = name;
    out->t = TV_FUNC;
    out->u.fn = f;
    return KZ_OK;
}

kz_status tmpl_iterate(struct tmpl_rt *rt, int line, const struct tmpl_val *v, struct tmpl_list **out)
{
    struct tmpl_val lv;
    kz_status rc;
    switch (v->t) {
    case TV_LIST: *out = v->u.l; return KZ_OK;
    case TV_UNDEF:
        rc = tmpl_new_list(rt, line, 0, &lv);
        break;
    case TV_DICT:
        if (v->u.d->is_ns)
            goto bad;
        rc = tmpl_new_list(rt, line, v->u.d->n, &lv);
        for (size_t i = 0; !rc && i < v->u.d->n; i++)
            lv.u.l->v[i] = v->u.d->k[i];
        break;
    case TV_STR: {
        size_t n = tmpl_utf8_count(v->u.s.p, v->u.s.len), o = 0;
        rc = tmpl_new_list(rt, line, n, &lv);
        for (size_t i = 0; !rc && i < n; i++) {
            uint32_t cp;
            size_t l = tmpl_utf8_next(v->u.s.p + o, v->u.s.len - o, &cp);
            lv.u.l->v[i] = tv_str(v->u.s.p + o, l);
            o += l;
        }
        break;
    }
    default:
        goto bad;
    }
    if (!rc)
        *out = lv.u.l;
    return rc;
bad:
    return tmpl_fail(rt, line, KZ_EINVAL, "'%s' object is not iterable", tmpl_type_name(v));
}

/* ---- scopes -------------------------------------------------------------- */

static struct tmpl_val *scope_find(struct tmpl_scope *s, struct kz_slice name)
{
    for (; s; s = s->parent)
        for (size_t i = s->n; i-- > 0;)
            if (s->names[i].len == name.len && !memcmp(s->names[i].p, name.p, name.len))
                return &s->vals[i];
    return NULL;
}

static kz_status scope_set(struct tmpl_rt *rt, int line, struct tmpl_scope *s, struct kz_slice name,
                           struct tmpl_val v)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->names[i].len == name.len && !memcmp(s->names[i].p, name.p, name.len)) {
            s->vals[i] = v;
            return KZ_OK;
        }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        struct kz_slice *nn = tmpl_arena_alloc(&rt->arena, nc * sizeof *nn);
        struct tmpl_val *nv = nn ? tmpl_arena_alloc(&rt->arena, nc * sizeof *nv) : NULL;
        if (!nv)
            return tmpl_fail_alloc(rt, line, rt->arena.failed);
        if (s->n) {
            memcpy(nn, s->names, s->n * sizeof *nn);
            memcpy(nv, s->vals, s->n * sizeof *nv);
        }
        s->names = nn;
        s->vals = nv;
        s->cap = nc;
    }
    s->names[s->n] = name;
    s->vals[s->n++] = v;
    return KZ_OK;
}

static const char *const globals[] = {"range", "namespace", "dict", "raise_exception", "strftime_now", NULL};

static kz_status lookup(struct tmpl_rt *rt, int line, struct kz_slice name, struct tmpl_val *out)
{
    const struct tmpl_val *v = scope_find(rt->scope, name);
    if (v) {
        *out = *v;
        return KZ_OK;
    }
    for (const char *const *g = globals; *g; g++)
        if (kz_slice_eq(name, *g)) {
            struct kz_slice gs = {*g, strlen(*g)};
            return new_func(rt, line, FN_GLOBAL, gs, out);
        }
    *out = tv_undef(TU_NAME, name);
    return KZ_OK;
}

/* ---- attribute and item access -------------------------------------------- */

static kz_status loop_attr(struct tmpl_rt *rt, int line, const struct tmpl_val *lv, struct kz_slice name,
                           struct tmpl_val *out)
{
    const struct tmpl_loop *l = lv->u.loop;
    int64_t i = l->index0, n = l->length;
    if (kz_slice_eq(name, "index"))
        *out = tv_int(i + 1);
    else if (kz_slice_eq(name, "index0"))
        *out = tv_int(i);
    else if (kz_slice_eq(name, "revindex"))
        *out = tv_int(n - i);
    else if (kz_slice_eq(name, "revindex0"))
        *out = tv_int(n - i - 1);
    else if (kz_slice_eq(name, "first"))
        *out = tv_bool(i == 0);
    else if (kz_slice_eq(name, "last"))
        *out = tv_bool(i == n - 1);
    else if (kz_slice_eq(name, "length"))
        *out = tv_int(n);
    else if (kz_slice_eq(name, "depth"))
        *out = tv_int(1);
    else if (kz_slice_eq(name, "depth0"))
        *out = tv_int(0);
    else if (kz_slice_eq(name, "previtem"))
        *out = i > 0 ? l->items->v[i - 1] : tv_undef(TU_OTHER, (struct kz_slice){"there is no previous item", 25});
    else if (kz_slice_eq(name, "nextitem"))
        *out = i + 1 < n ? l->items->v[i + 1] : tv_undef(TU_OTHER, (struct kz_slice){"there is no next item", 21});
    else if (kz_slice_eq(name, "cycle")) {
        kz_status rc = new_func(rt, line, FN_LOOP_CYCLE, name, out);
        if (!rc)
            out->u.fn->self = *lv;
        return rc;
    } else
        *out = tv_undef(TU_ATTR, name);
    return KZ_OK;
}

kz_status tmpl_getattr(struct tmpl_rt *rt, int line, const struct tmpl_val *obj, struct kz_slice name,
                       struct tmpl_val *out)
{
    if (obj->t == TV_UNDEF)
        return tmpl_fail_undef(rt, line, obj);
    if (obj->t == TV_LOOP)
        return loop_attr(rt, line, obj, name, out);
    if (tmpl_has_method(obj, name)) {
        kz_status rc = new_func(rt, line, FN_METHOD, name, out);
        if (!rc)
            out->u.fn->self = *obj;
        return rc;
    }
    if (obj->t == TV_DICT) {
        const struct tmpl_val *v = tmpl_dict_get_str(obj->u.d, name.p, name.len);
        *out = v ? *v : tv_undef(TU_ATTR, name);
        return KZ_OK;
    }
    *out = tv_undef(TU_ATTR, name);
    return KZ_OK;
}

static kz_status key_text(struct tmpl_rt *rt, int line, const struct tmpl_val *key, struct kz_slice *out)
{
    struct tmpl_val s;
    struct tmpl_sb b;
    tmpl_sb_init(&b, 256);
    tmpl_repr(&b, key, TMPL_MAX_VALUE_DEPTH); /* shallow: only for the message */
    b.failed = 0;
    kz_status rc = tmpl_sb_to_str(rt, line, &b, &s);
    tmpl_sb_deinit(&b);
    if (!rc)
        *out = s.u.s;
    return rc;
}

kz_status tmpl_getitem(struct tmpl_rt *rt, int line, const struct tmpl_val *obj, const struct tmpl_val *key,
                       struct tmpl_val *out)
{
    if (obj->t == TV_UNDEF)
        return tmpl_fail_undef(rt, line, obj);
    if (obj->t == TV_DICT) {
        const struct tmpl_val *v = tmpl_dict_get(obj->u.d, key);
        if (v) {
            *out = *v;
            return KZ_OK;
        }
    } else if ((obj->t == TV_LIST || obj->t == TV_STR) && (key->t == TV_INT || key->t == TV_BOOL)) {
        int64_t i = key->t == TV_INT ? key->u.i : key->u.b;
        if (obj->t == TV_LIST) {
            int64_t n = (int64_t)obj->u.l->n;
            if (i < 0)
                i += n;
            if (i >= 0 && i < n) {
                *out = obj->u.l->v[i];
                return KZ_OK;
            }
        } else {
            int64_t n = (int64_t)tmpl_utf8_count(obj->u.s.p, obj->u.s.len);
            if (i < 0)
                i += n;
            if (i >= 0 && i < n) {
                size_t o = 0, l = 0;
                uint32_t cp;
                for (int64_t k = 0; k <= i; k++) {
                    o += l;
                    l = tmpl_utf8_next(obj->u.s.p + o, obj->u.s.len - o, &cp);
                }
                *out = tv_str(obj->u.s.p + o, l);
                return KZ_OK;
            }
        }
    }
    if (key->t == TV_STR && obj->t != TV_DICT)
        return tmpl_getattr(rt, line, obj, key->u.s, out);
    if (key->t == TV_STR && tmpl_has_method(obj, key->u.s))
        return tmpl_getattr(rt, line, obj, key->u.s, out);
    struct kz_slice kt;
    kz_status rc = key_text(rt, line, key, &kt);
    if (!rc)
        *out = tv_undef(key->t == TV_STR ? TU_ATTR : TU_ITEM, key->t == TV_STR ? key->u.s : kt);
    return rc;
}

/* Python's slice.indices() followed by the copy. */
static kz_status do_slice(struct tmpl_rt *rt, int line, const struct tmpl_val *obj, const struct tmpl_val *bounds,
                          struct tmpl_val *out)
{
    int64_t v[3];
    int given[3];
    for (int k = 0; k < 3; k++) {
        const struct tmpl_val *b = &bounds[k];
        given[k] = b->t != TV_NONE && b->t != TV_UNDEF;
        if (given[k] && b->t != TV_INT && b->t != TV_BOOL)
            return tmpl_fail(rt, line, KZ_EINVAL, "slice indices must be integers or None, not %s",
                             tmpl_type_name(b));
        v[k] = given[k] ? (b->t == TV_INT ? b->u.i : b->u.b) : 0;
    }
    if (obj->t == TV_UNDEF)
        return tmpl_fail_undef(rt, line, obj);
    if (obj->t != TV_LIST && obj->t != TV_STR)
        return tmpl_fail(rt, line, KZ_EINVAL, "'%s' object is not subscriptable", tmpl_type_name(obj));
    int is_str = obj->t == TV_STR;
    int64_t len = is_str ? (int64_t)tmpl_utf8_count(obj->u.s.p, obj->u.s.len) : (int64_t)obj->u.l->n;
    int64_t step = given[2] ? v[2] : 1;
    if (step == 0)
        return tmpl_fail(rt, line, KZ_EINVAL, "slice step cannot be zero");
    if (step == INT64_MIN)
        step = -INT64_MAX;
    int64_t lower = step < 0 ? -1 : 0, upper = step < 0 ? len - 1 : len;
    int64_t se[2];
    for (int k = 0; k < 2; k++) {
        if (!given[k]) {
            se[k] = (k == 0) == (step < 0) ? upper : lower;
            continue;
        }
        int64_t x = v[k];
        if (x < 0) {
            x = x < -len ? lower : x + len;
            if (x < lower)
                x = lower;
        } else if (x > upper) {
            x = upper;
        }
        se[k] = x;
    }
    int64_t start = se[0], stop = se[1];
    int64_t count = step > 0 ? (stop > start ? (stop - start - 1) / step + 1 : 0)
                             : (stop < start ? (start - stop - 1) / (-step) + 1 : 0);
    if (!is_str) {
        kz_status rc = tmpl_new_list(rt, line, (size_t)count, out);
        if (rc)
            return rc;
        out->u.l->is_tuple = obj->u.l->is_tuple;
        for (int64_t i = 0; i < count; i++)
            out->u.l->v[i] = obj->u.l->v[start + i * step];
        return KZ_OK;
    }
    /* Strings: character offsets, then either a view (step 1) or a copy. */
    const char *s = obj->u.s.p;
    size_t slen = obj->u.s.len;
    if ((size_t)len == slen) { /* ASCII: bytes are characters */
        if (step == 1) {
            *out = tv_str(s + start, (size_t)count);
            return KZ_OK;
        }
        char *buf = tmpl_arena_alloc(&rt->arena, (size_t)count + 1);
        if (!buf)
            return tmpl_fail_alloc(rt, line, rt->arena.failed);
        for (int64_t i = 0; i < count; i++)
            buf[i] = s[start + i * step];
        *out = tv_str(buf, (size_t)count);
        return KZ_OK;
    }
    size_t *off = kz_malloc(((size_t)len + 1) * sizeof *off);
    if (!off)
        return tmpl_fail_alloc(rt, line, KZ_ENOMEM);
    size_t o = 0;
    for (int64_t i = 0; i < len; i++) {
        uint32_t cp;
        off[i] = o;
        o += tmpl_utf8_next(s + o, slen - o, &cp);
    }
    off[len] = slen;
    kz_status rc = KZ_OK;
    if (step == 1) {
        *out = count ? tv_str(s + off[start], off[start + count] - off[start]) : tv_str("", 0);
    } else {
        struct tmpl_sb b;
        tmpl_sb_init(&b, rt->max_memory);
        for (int64_t i = 0; i < count; i++) {
            int64_t c = start + i * step;
            tmpl_sb_put(&b, s + off[c], off[c + 1] - off[c]);
        }
        rc = tmpl_sb_to_str(rt, line, &b, out);
        tmpl_sb_deinit(&b);
    }
    kz_free(off);
    return rc;
}

/* ---- operators ----------------------------------------------------------- */

static int is_num(const struct tmpl_val *v) { return v->t == TV_BOOL || v->t == TV_INT || v->t == TV_FLOAT; }
static int is_intlike(const struct tmpl_val *v) { return v->t == TV_BOOL || v->t == TV_INT; }
static double as_f(const struct tmpl_val *v)
{
    return v->t == TV_FLOAT ? v->u.f : v->t == TV_INT ? (double)v->u.i : (double)v->u.b;
}
static int64_t as_i(const struct tmpl_val *v) { return v->t == TV_INT ? v->u.i : v->u.b; }

static const char *op_text(int op)
{
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_FLOORDIV: return "//";
    case OP_MOD: return "%";
    case OP_POW: return "**";
    case OP_LT: return "<";
    case OP_LE: return "<=";
    case OP_GT: return ">";
    case OP_GE: return ">=";
    default: return "?";
    }
}

static kz_status overflow(struct tmpl_rt *rt, int line)
{
    return tmpl_fail(rt, line, KZ_EUNSUPPORTED, "integer overflow (beyond 64 bits)");
}

/* seq * n for str and list, bounded by the memory cap. */
static kz_status repeat(struct tmpl_rt *rt, int line, const struct tmpl_val *seq, int64_t n, struct tmpl_val *out)
{
    if (n < 0)
        n = 0;
    if (seq->t == TV_STR) {
        if (seq->u.s.len && (uint64_t)n > rt->max_memory / seq->u.s.len)
            return tmpl_fail_alloc(rt, line, KZ_ELIMIT);
        size_t total = seq->u.s.len * (size_t)n;
        char *buf = tmpl_arena_alloc(&rt->arena, total + 1);
        if (!buf)
            return tmpl_fail_alloc(rt, line, rt->arena.failed);
        for (int64_t i = 0; i < n; i++)
            memcpy(buf + (size_t)i * seq->u.s.len, seq->u.s.p, seq->u.s.len);
        *out = tv_str(buf, total);
        return KZ_OK;
    }
    size_t m = seq->u.l->n;
    if (m && (uint64_t)n > rt->max_memory / (m * sizeof(struct tmpl_val)))
        return tmpl_fail_alloc(rt, line, KZ_ELIMIT);
    kz_status rc = tmpl_new_list(rt, line, m * (size_t)n, out);
    if (rc)
        return rc;
    out->u.l->is_tuple = seq->u.l->is_tuple;
    for (int64_t i = 0; i < n; i++)
        if (m)
            memcpy(out->u.l->v + (size_t)i * m, seq->u.l->v, m * sizeof *seq->u.l->v);
    return KZ_OK;
}

static kz_status binop(struct tmpl_rt *rt, int line, int op, const struct tmpl_val *a, const struct tmpl_val *b,
                       struct tmpl_val *out)
{
    if (op == OP_TILDE) {
        struct tmpl_sb sb;
        tmpl_sb_init(&sb, rt->max_memory);
        tmpl_str(&sb, a, 0);
        tmpl_str(&sb, b, 0);
        kz_status rc = tmpl_sb_to_str(rt, line, &sb, out);
        tmpl_sb_deinit(&sb);
        return rc;
    }
    if (a->t == TV_UNDEF)
        return tmpl_fail_undef(rt, line, a);
    if (b->t == TV_UNDEF)
        return tmpl_fail_undef(rt, line, b);
    if (op == OP_MOD && a->t == TV_STR)
        return tmpl_percent_format(rt, line, a->u.s, b, out);
    if (is_num(a) && is_num(b)) {
        if (a->t != TV_FLOAT && b->t != TV_FLOAT && op != OP_DIV) {
            int64_t x = as_i(a), y = as_i(b), r;
            switch (op) {
            case OP_ADD:
                if (__builtin_add_overflow(x, y, &r))
                    return overflow(rt, line);
                break;
            case OP_SUB:
                if (__builtin_sub_overflow(x, y, &r))
                    return overflow(rt, line);
                break;
            case OP_MUL:
                if (__builtin_mul_overflow(x, y, &r))
                    return overflow(rt, line);
                break;
            case OP_FLOORDIV:
            case OP_MOD:
                if (y == 0)
                    return tmpl_fail(rt, line, KZ_EINVAL, "integer division or modulo by zero");
                if (x == INT64_MIN && y == -1) {
                    if (op == OP_FLOORDIV)
                        return overflow(rt, line);
                    r = 0;
                    break;
                }
                r = op == OP_FLOORDIV ? x / y : x % y;
                /* Python floors toward -inf; C truncates toward zero */
                if (op == OP_FLOORDIV && (x % y != 0) && ((x < 0) != (y < 0)))
                    r--;
                if (op == OP_MOD && r != 0 && ((r < 0) != (y < 0)))
                    r += y;
                break;
            case OP_POW:
                if (y < 0) {
                    *out = tv_float(pow((double)x, (double)y));
                    return KZ_OK;
                }
                r = 1;
                for (int64_t k = 0; k < y; k++) {
                    if (__builtin_mul_overflow(r, x, &r))
                        return overflow(rt, line);
                    if (r == 0 || r == 1)
                        break;
                    if (r == -1) {
                        r = ((y - k - 1) % 2 == 0) ? -1 : 1;
                        break;
                    }
                }
                break;
            default: goto bad;
            }
            *out = tv_int(r);
            return KZ_OK;
        }
        double x = as_f(a), y = as_f(b), r;
        switch (op) {
        case OP_ADD: r = x + y; break;
        case OP_SUB: r = x - y; break;
        case OP_MUL: r = x * y; break;
        case OP_DIV:
            if (y == 0.0)
                return tmpl_fail(rt, line, KZ_EINVAL, "division by zero");
            r = x / y;
            break;
        case OP_FLOORDIV:
        case OP_MOD:
            if (y == 0.0)
                return tmpl_fail(rt, line, KZ_EINVAL, "float division or modulo by zero");
            r = fmod(x, y);
            if (r != 0.0 && ((r < 0) != (y < 0)))
                r += y;
            if (op == OP_FLOORDIV)
                r = floor((x - r) / y + 0.5) == (x - r) / y ? (x - r) / y : floor(x / y);
            break;
        case OP_POW: r = pow(x, y); break;
        default: goto bad;
        }
        *out = tv_float(r);
        return KZ_OK;
    }
    if (op == OP_ADD && a->t == TV_STR && b->t == TV_STR) {
        if (b->u.s.len == 0) {
            *out = *a;
            return KZ_OK;
        }
        if (a->u.s.len == 0) {
            *out = *b;
            return KZ_OK;
        }
        if (a->u.s.len > rt->max_memory || b->u.s.len > rt->max_memory - a->u.s.len)
            return tmpl_fail_alloc(rt, line, KZ_ELIMIT);
        char *buf = tmpl_arena_alloc(&rt->arena, a->u.s.len + b->u.s.len + 1);
        if (!buf)
            return tmpl_fail_alloc(rt, line, rt->arena.failed);
        memcpy(buf, a->u.s.p, a->u.s.len);
        memcpy(buf + a->u.s.len, b->u.s.p, b->u.s.len);
        *out = tv_str(buf, a->u.s.len + b->u.s.len);
        return KZ_OK;
    }
    if (op == OP_ADD && a->t == TV_LIST && b->t == TV_LIST && a->u.l->is_tuple == b->u.l->is_tuple) {
        kz_status rc = tmpl_new_list(rt, line, a->u.l->n + b->u.l->n, out);
        if (rc)
            return rc;
        out->u.l->is_tuple = a->u.l->is_tuple;
        if (a->u.l->n)
            memcpy(out->u.l->v, a->u.l->v, a->u.l->n * sizeof *a->u.l->v);
        if (b->u.l->n)
            memcpy(out->u.l->v + a->u.l->n, b->u.l->v, b->u.l->n * sizeof *b->u.l->v);
        return KZ_OK;
    }
    if (op == OP_MUL && (a->t == TV_STR || a->t == TV_LIST) && is_intlike(b))
        return repeat(rt, line, a, as_i(b), out);
    if (op == OP_MUL && (b->t == TV_STR || b->t == TV_LIST) && is_intlike(a))
        return repeat(rt, line, b, as_i(a), out);
bad:
    return tmpl_fail(rt, line, KZ_EINVAL, "unsupported operand type(s) for %s: '%s' and '%s'", op_text(op),
                     tmpl_type_name(a), tmpl_type_name(b));
}

static kz_status contains(struct tmpl_rt *rt, int line, const struct tmpl_val *item, const struct tmpl_val *c,
                          int *res)
{
    switch (c->t) {
    case TV_UNDEF: *res = 0; return KZ_OK;
    case TV_STR:
        if (item->t != TV_STR)
            return tmpl_fail(rt, line, KZ_EINVAL, "'in <string>' requires string as left operand, not %s",
                             tmpl_type_name(item));
        *res = item->u.s.len == 0 || (item->u.s.len <= c->u.s.len &&
                                      memmem(c->u.s.p, c->u.s.len, item->u.s.p, item->u.s.len) != NULL);
        return KZ_OK;
    case TV_LIST:
        *res = 0;
        for (size_t i = 0; i < c->u.l->n && !*res; i++)
            *res = tmpl_equal(item, &c->u.l->v[i], 0);
        return KZ_OK;
    case TV_DICT:
        if ((item->t == TV_LIST && !item->u.l->is_tuple) || item->t == TV_DICT)
            return tmpl_fail(rt, line, KZ_EINVAL, "unhashable type: '%s'", tmpl_type_name(item));
        if (!c->u.d->is_ns) {
            *res = tmpl_dict_get(c->u.d, item) != NULL;
            return KZ_OK;
        }
        break;
    default: break;
    }
    return tmpl_fail(rt, line, KZ_EINVAL, "argument of type '%s' is not iterable", tmpl_type_name(c));
}

static kz_status compare(struct tmpl_rt *rt, int line, int op, const struct tmpl_val *a, const struct tmpl_val *b,
                         int *res)
{
    int c;
    switch (op) {
    case OP_EQ: *res = tmpl_equal(a, b, 0); return KZ_OK;
    case OP_NE: *res = !tmpl_equal(a, b, 0); return KZ_OK;
    case OP_IN: return contains(rt, line, a, b, res);
    case OP_NOTIN: {
        kz_status rc = contains(rt, line, a, b, res);
        *res = !*res;
        return rc;
    }
    default: break;
    }
    if (a->t == TV_UNDEF)
        return tmpl_fail_undef(rt, line, a);
    if (b->t == TV_UNDEF)
        return tmpl_fail_undef(rt, line, b);
    if (tmpl_compare(a, b, &c, 0))
        return tmpl_fail(rt, line, KZ_EINVAL, "'%s' not supported between instances of '%s' and '%s'", op_text(op),
                         tmpl_type_name(a), tmpl_type_name(b));
    if ((a->t == TV_FLOAT && isnan(a->u.f)) || (b->t == TV_FLOAT && isnan(b->u.f))) {
        *res = 0;
        return KZ_OK;
    }
    *res = op == OP_LT ? c < 0 : op == OP_LE ? c <= 0 : op == OP_GT ? c > 0 : c >= 0;
    return KZ_OK;
}

/* ---- expressions --------------------------------------------------------- */

static kz_status eval(struct tmpl_rt *rt, const struct tmpl_node *n, struct tmpl_val *out);
static kz_status exec_body(struct tmpl_rt *rt, struct tmpl_node *const *kids, size_t n);

/* Evaluates call/filter/test arguments into the caller's arrays. */
static kz_status eval_args(struct tmpl_rt *rt, const struct tmpl_node *n, struct tmpl_val *pos,
                           struct tmpl_val *kwv, struct tmpl_args *args)
{
    args->n = n->n_kids;
    args->pos = pos;
    args->n_kw = n->n_kids2;
    args->kw = n->kw;
    args->kwv = kwv;
    for (size_t i = 0; i < n->n_kids; i++) {
        kz_status rc = eval(rt, n->kids[i], &pos[i]);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < n->n_kids2; i++) {
        kz_status rc = eval(rt, n->kids2[i], &kwv[i]);
        if (rc)
            return rc;
    }
    return KZ_OK;
}

const struct tmpl_val *tmpl_arg(const struct tmpl_args *args, size_t idx, const char *name)
{
    if (idx < args->n)
        return &args->pos[idx];
    for (size_t i = 0; name && i < args->n_kw; i++)
        if (kz_slice_eq(args->kw[i], name))
            return &args->kwv[i];
    return NULL;
}

static kz_status strftime_now(struct tmpl_rt *rt, int line, const struct tmpl_args *args, struct tmpl_val *out)
{
    const struct tmpl_val *f = tmpl_arg(args, 0, "format");
    if (!f || f->t != TV_STR)
        return tmpl_fail(rt, line, KZ_EINVAL, "strftime_now() needs a format string");
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (rt->opts.clock) {
        if (rt->opts.clock(rt->opts.clock_ud, &tm))
            return tmpl_fail(rt, line, KZ_EINVAL, "strftime_now: the clock is unavailable");
    } else {
        time_t now = time(NULL);
        if (!localtime_r(&now, &tm))
            return tmpl_fail(rt, line, KZ_EINVAL, "strftime_now: the clock is unavailable");
    }
    /* One conversion at a time through strftime, and only conversions it
     * defines: anything else is copied as text, so no format string can
     * reach undefined strftime behaviour. */
    static const char allowed[] = "aAbBcCdDeFgGhHIjmMnpRSTuUVwWxXyYzZ%";
    struct tmpl_sb b;
    tmpl_sb_init(&b, rt->max_memory);
    const char *s = f->u.s.p;
    size_t n = f->u.s.len;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%' || i + 1 >= n) {
            tmpl_sb_putc(&b, s[i]);
            continue;
        }
        size_t j = i + 1;
        char spec[8] = "%";
        size_t sl = 1;
        if (s[j] == '-' || s[j] == '_' || s[j] == '0' || s[j] == '^' || s[j] == '#')
            spec[sl++] = s[j++];
        if (j < n && s[j] && strchr(allowed, s[j])) {
            spec[sl++] = s[j];
            spec[sl] = '\0';
            char buf[256];
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#endif
            /* spec is "%", an optional flag and one letter from `allowed` */
            size_t w = strftime(buf, sizeof buf, spec, &tm);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
            tmpl_sb_put(&b, buf, w);
            i = j;
        } else {
            tmpl_sb_putc(&b, '%');
        }
    }
    kz_status rc = tmpl_sb_to_str(rt, line, &b, out);
    tmpl_sb_deinit(&b);
    return rc;
}

static kz_status call_global(struct tmpl_rt *rt, int line, struct kz_slice name, const struct tmpl_args *args,
                             struct tmpl_val *out)
{
    kz_status rc;
    if (kz_slice_eq(name, "raise_exception")) {
        struct tmpl_val m = {.t = TV_STR};
        const struct tmpl_val *a = tmpl_arg(args, 0, "message");
        rc = a ? tmpl_to_str(rt, line, a, &m) : KZ_OK;
        if (rc)
            return rc;
        return tmpl_fail(rt, line, KZ_EINVAL, "raise_exception: %.*s", (int)(m.u.s.len < 400 ? m.u.s.len : 400),
                         m.u.s.len ? m.u.s.p : "");
    }
    if (kz_slice_eq(name, "strftime_now"))
        return strftime_now(rt, line, args, out);
    if (kz_slice_eq(name, "range")) {
        int64_t v[3] = {0, 0, 1};
        if (args->n < 1 || args->n > 3 || args->n_kw)
            return tmpl_fail(rt, line, KZ_EINVAL, "range() takes 1 to 3 integer arguments");
        for (size_t i = 0; i < args->n; i++) {
            if (!is_intlike(&args->pos[i]))
                return tmpl_fail(rt, line, KZ_EINVAL, "range(): '%s' object cannot be interpreted as an integer",
                                 tmpl_type_name(&args->pos[i]));
            v[args->n == 1 ? 1 : i] = as_i(&args->pos[i]);
        }
        if (v[2] == 0)
            return tmpl_fail(rt, line, KZ_EINVAL, "range() arg 3 must not be zero");
        double cnt = v[2] > 0 ? ceil(((double)v[1] - (double)v[0]) / (double)v[2])
                              : ceil(((double)v[0] - (double)v[1]) / -(double)v[2]);
        if (cnt < 0)
            cnt = 0;
        if (cnt > TMPL_MAX_RANGE)
            return tmpl_fail(rt, line, KZ_ELIMIT, "range() of more than %d items", TMPL_MAX_RANGE);
        rc = tmpl_new_list(rt, line, (size_t)cnt, out);
        for (size_t i = 0; !rc && i < (size_t)cnt; i++)
            out->u.l->v[i] = tv_int(v[0] + (int64_t)i * v[2]);
        return rc;
    }
    if (kz_slice_eq(name, "namespace") || kz_slice_eq(name, "dict")) {
        rc = tmpl_new_dict(rt, line, out);
        if (rc)
            return rc;
        out->u.d->is_ns = kz_slice_eq(name, "namespace");
        for (size_t i = 0; i < args->n; i++) {
            if (args->pos[i].t != TV_DICT || args->pos[i].u.d->is_ns)
                return tmpl_fail(rt, line, KZ_EINVAL, "%.*s() takes keyword arguments or a dict", (int)name.len,
                                 name.p);
            const struct tmpl_dict *d = args->pos[i].u.d;
            for (size_t k = 0; k < d->n; k++)
                if (tmpl_dict_set(&rt->arena, out->u.d, d->k[k], d->v[k]))
                    return tmpl_fail_alloc(rt, line, rt->arena.failed);
        }
        for (size_t i = 0; i < args->n_kw; i++)
            if (tmpl_dict_set(&rt->arena, out->u.d, tv_str(args->kw[i].p, args->kw[i].len), args->kwv[i]))
                return tmpl_fail_alloc(rt, line, rt->arena.failed);
        return KZ_OK;
    }
    return tmpl_fail(rt, line, KZ_EUNSUPPORTED, "unknown function '%.*s'", (int)name.len, name.p);
}

static kz_status call_macro(struct tmpl_rt *rt, int line, const struct tmpl_node *m, const struct tmpl_args *args,
                            struct tmpl_val *out)
{
    int nl = (int)(m->name.len < 64 ? m->name.len : 64);
    if (args->n > m->n_kids2)
        return tmpl_fail(rt, line, KZ_EINVAL, "macro '%.*s' takes not more than %zu argument(s)", nl, m->name.p,
                         m->n_kids2);
    for (size_t i = 0; i < args->n_kw; i++) {
        size_t k = 0;
        while (k < m->n_kids2 && !(m->kw[k].len == args->kw[i].len &&
                                   !memcmp(m->kw[k].p, args->kw[i].p, args->kw[i].len)))
            k++;
        if (k == m->n_kids2)
            return tmpl_fail(rt, line, KZ_EINVAL, "macro '%.*s' has no argument '%.*s'", nl, m->name.p,
                             (int)args->kw[i].len, args->kw[i].p);
    }
    struct tmpl_scope frame = {.parent = rt->root};
    struct tmpl_scope *saved_scope = rt->scope;
    struct tmpl_sb *saved_out = rt->out, body;
    kz_status rc = KZ_OK;
    tmpl_sb_init(&body, rt->max_output);
    rt->scope = &frame;
    for (size_t k = 0; k < m->n_kids2 && !rc; k++) {
        const struct tmpl_val *a = tmpl_arg(args, k, NULL);
        struct tmpl_val v = tv_undef(TU_NAME, m->kw[k]);
        for (size_t i = 0; !a && i < args->n_kw; i++)
            if (args->kw[i].len == m->kw[k].len && !memcmp(args->kw[i].p, m->kw[k].p, m->kw[k].len))
                a = &args->kwv[i];
        if (a)
            v = *a;
        else if (m->kids2[k])
            rc = eval(rt, m->kids2[k], &v);
        if (!rc)
            rc = scope_set(rt, line, &frame, m->kw[k], v);
    }
    rt->out = &body;
    if (!rc)
        rc = exec_body(rt, m->kids, m->n_kids);
    rt->out = saved_out;
    rt->scope = saved_scope;
    if (!rc)
        rc = tmpl_sb_to_str(rt, line, &body, out);
    tmpl_sb_deinit(&body);
    return rc;
}

static kz_status eval_call(struct tmpl_rt *rt, const struct tmpl_node *n, struct tmpl_val *out)
{
    struct tmpl_val fv, pos[TMPL_MAX_ARGS], kwv[TMPL_MAX_ARGS];
    struct tmpl_args args;
    kz_status rc = tmpl_rt_step(rt, n->line);
    if (!rc)
        rc = eval(rt, n->a, &fv);
    if (!rc)
        rc = eval_args(rt, n, pos, kwv, &args);
    if (rc)
        return rc;
    if (fv.t == TV_UNDEF)
        return tmpl_fail_undef(rt, n->line, &fv);
    if (fv.t != TV_FUNC)
        return tmpl_fail(rt, n->line, KZ_EINVAL, "'%s' object is not callable", tmpl_type_name(&fv));
    const struct tmpl_func *f = fv.u.fn;
    switch (f->kind) {
    case FN_GLOBAL: return call_global(rt, n->line, f->name, &args, out);
    case FN_METHOD: return tmpl_call_method(rt, n->line, &f->self, f->name, &args, out);
    case FN_MACRO: return call_macro(rt, n->line, f->mac, &args, out);
    case FN_LOOP_CYCLE: {
        if (args.n == 0)
            return tmpl_fail(rt, n->line, KZ_EINVAL, "loop.cycle() needs at least one argument");
        *out = args.pos[(size_t)f->self.u.loop->index0 % args.n];
        return KZ_OK;
    }
    }
    return tmpl_fail(rt, n->line, KZ_EINVAL, "object is not callable");
}

static kz_status eval_filter(struct tmpl_rt *rt, const struct tmpl_node *n, struct tmpl_val *out)
{
    struct tmpl_val in, pos[TMPL_MAX_ARGS], kwv[TMPL_MAX_ARGS];
    struct tmpl_args args;
    kz_status rc = KZ_OK;
    if (n->a->kind == N_BLOCK_INPUT)
        in = rt->block_input;
    else
        rc = eval(rt, n->a, &in);
    if (!rc)
        rc = eval_args(rt, n, pos, kwv, &args);
    if (rc)
        return rc;
    if (!n->filter)
        return tmpl_fail(rt, n->line, KZ_EUNSUPPORTED, "unknown filter '%.*s'", (int)n->name.len, n->name.p);
    return n->filter(rt, n, in, &args, out);
}

kz_status tmpl_call_test(struct tmpl_rt *rt, const struct tmpl_node *n, struct kz_slice name,
                         const struct tmpl_val *v, const struct tmpl_args *args, int *result)
{
    tmpl_test_fn fn = tmpl_find_test(name);
    if (!fn)
        return tmpl_fail(rt, n->line, KZ_EUNSUPPORTED, "unknown test '%.*s'", (int)name.len, name.p);
    return fn(rt, n, v, args, result);
}

static kz_status eval_test(struct tmpl_rt *rt, const struct tmpl_node *n, struct tmpl_val *out)
{
    struct tmpl_val in, pos[TMPL_MAX_ARGS], kwv[TMPL_MAX_ARGS];
    struct tmpl_args args;
    int r = 0;
    kz_status rc = eval(rt, n->a, &in);
    if (!rc)
        rc = eval_args(rt, n, pos, kwv, &args);
    if (rc)
        return rc;
    if (!n->test)
        return tmpl_fail(rt, n->line, KZ_EUNSUPPORTED, "unknown test '%.*s'", (int)n->name.len, n->name.p);
    rc = n->test(rt, n, &in, &args, &r);
    if (!rc)
        *out = tv_bool(n->op ? !r : r);
    return rc;
}

static kz_status eval_inner(struct tmpl_rt *rt, const struct tmpl_node *n, struct tmpl_val *out)
{
    struct tmpl_val a, b;
    kz_status rc;
    switch (n->kind) {
    case N_CONST: *out = n->cval; return KZ_OK;
    case N_NAME: return lookup(rt, n->line, n->name, out);
    case N_BLOCK_INPUT: *out = rt->block_input; return KZ_OK;
    case N_ATTR:
        rc = eval(rt, n->a, &a);
        return rc ? rc : tmpl_getattr(rt, n->line, &a, n->name, out);
    case N_ITEM:
        rc = eval(rt, n->a, &a);
        if (!rc)
            rc = eval(rt, n->b, &b);
        return rc ? rc : tmpl_getitem(rt, n->line, &a, &b, out);
    case N_SLICE: {
        struct tmpl_val bounds[3] = {tv_none(), tv_none(), tv_none()};
        const struct tmpl_node *bn[3] = {n->b, n->c, n->d};
        rc = eval(rt, n->a, &a);
        for (int k = 0; k < 3 && !rc; k++)
            if (bn[k])
                rc = eval(rt, bn[k], &bounds[k]);
        return rc ? rc : do_slice(rt, n->line, &a, bounds, out);
    }
    case N_CALL: return eval_call(rt, n, out);
    case N_FILTER: return eval_filter(rt, n, out);
    case N_TEST: return eval_test(rt, n, out);
    case N_UNARY:
        rc = eval(rt, n->a, &a);
        if (rc)
            return rc;
        if (a.t == TV_UNDEF)
            return tmpl_fail_undef(rt, n->line, &a);
        if (a.t == TV_FLOAT) {
            *out = tv_float(n->op == OP_NEG ? -a.u.f : a.u.f);
        } else if (is_intlike(&a)) {
            int64_t i = as_i(&a);
            if (n->op == OP_NEG && i == INT64_MIN)
                return overflow(rt, n->line);
            *out = tv_int(n->op == OP_NEG ? -i : i);
        } else {
            return tmpl_fail(rt, n->line, KZ_EINVAL, "bad operand type for unary %s: '%s'",
                             n->op == OP_NEG ? "-" : "+", tmpl_type_name(&a));
        }
        return KZ_OK;
    case N_NOT:
        rc = eval(rt, n->a, &a);
        if (!rc)
            *out = tv_bool(!tmpl_truthy(&a));
        return rc;
    case N_AND:
    case N_OR:
        rc = eval(rt, n->a, &a);
        if (rc)
            return rc;
        if (tmpl_truthy(&a) == (n->kind == N_OR)) {
            *out = a;
            return KZ_OK;
        }
        return eval(rt, n->b, out);
    case N_COND:
        rc = eval(rt, n->b, &a);
        if (rc)
            return rc;
        if (tmpl_truthy(&a))
            return eval(rt, n->a, out);
        if (n->c)
            return eval(rt, n->c, out);
        *out = tv_undef(TU_OTHER, (struct kz_slice){"the inline if had no else branch", 32});
        return KZ_OK;
    case N_BINARY:
        rc = eval(rt, n->a, &a);
        if (!rc)
            rc = eval(rt, n->b, &b);
        return rc ? rc : binop(rt, n->line, n->op, &a, &b, out);
    case N_COMPARE: {
        int r = 1;
        rc = eval(rt, n->a, &a);
        for (size_t i = 0; i < n->n_kids && !rc && r; i++) {
            rc = eval(rt, n->kids[i], &b);
            if (!rc)
                rc = compare(rt, n->line, n->ops[i], &a, &b, &r);
            a = b;
        }
        if (!rc)
            *out = tv_bool(r);
        return rc;
    }
    case N_LIST:
    case N_TUPLE:
        rc = tmpl_new_list(rt, n->line, n->n_kids, out);
        if (rc)
            return rc;
        out->u.l->is_tuple = n->kind == N_TUPLE;
        for (size_t i = 0; i < n->n_kids && !rc; i++)
            rc = eval(rt, n->kids[i], &out->u.l->v[i]);
        return rc;
    case N_DICT:
        rc = tmpl_new_dict(rt, n->line, out);
        for (size_t i = 0; i < n->n_kids && !rc; i++) {
            rc = eval(rt, n->kids[i], &a);
            if (!rc)
                rc = eval(rt, n->kids2[i], &b);
            if (!rc && (a.t == TV_LIST && !a.u.l->is_tuple))
                rc = tmpl_fail(rt, n->line, KZ_EINVAL, "unhashable type: 'list'");
            if (!rc && (a.t == TV_DICT || a.t == TV_UNDEF))
                rc = tmpl_fail(rt, n->line, KZ_EINVAL, "unhashable type: '%s'", tmpl_type_name(&a));
            if (!rc && tmpl_dict_set(&rt->arena, out->u.d, a, b))
                rc = tmpl_fail_alloc(rt, n->line, rt->arena.failed);
        }
        return rc;
    default:
        return tmpl_fail(rt, n->line, KZ_EPROTO, "statement used as an expression");
    }
}

static kz_status eval(struct tmpl_rt *rt, const struct tmpl_node *n, struct tmpl_val *out)
{
    if (++rt->depth > KZ_TEMPLATE_MAX_DEPTH) {
        rt->depth--;
        return tmpl_fail(rt, n->line, KZ_ELIMIT, "nesting deeper than %d (recursive macro?)", KZ_TEMPLATE_MAX_DEPTH);
    }
    kz_status rc = eval_inner(rt, n, out);
    rt->depth--;
    return rc;
}

/* ---- statements ---------------------------------------------------------- */

static kz_status assign(struct tmpl_rt *rt, const struct tmpl_node *target, const struct tmpl_val *v)
{
    int line = target->line;
    if (target->kind == N_NAME)
        return scope_set(rt, line, rt->scope, target->name, *v);
    if (target->kind == N_ATTR) {
        struct tmpl_val obj;
        kz_status rc = eval(rt, target->a, &obj);
        if (rc)
            return rc;
        if (obj.t != TV_DICT || !obj.u.d->is_ns)
            return tmpl_fail(rt, line, KZ_EINVAL, "cannot assign attribute on non-namespace object ('%s')",
                             tmpl_type_name(&obj));
        if (tmpl_dict_set(&rt->arena, obj.u.d, tv_str(target->name.p, target->name.len), *v))
            return tmpl_fail_alloc(rt, line, rt->arena.failed);
        return KZ_OK;
    }
    /* tuple unpacking */
    struct tmpl_list *l;
    kz_status rc = tmpl_iterate(rt, line, v, &l);
    if (rc)
        return rc;
    if (l->n != target->n_kids)
        return tmpl_fail(rt, line, KZ_EINVAL, "%s values to unpack (expected %zu, got %zu)",
                         l->n > target->n_kids ? "too many" : "not enough", target->n_kids, l->n);
    for (size_t i = 0; i < l->n && !rc; i++)
        rc = assign(rt, target->kids[i], &l->v[i]);
    return rc;
}

/* Renders a body into a fresh string (set blocks, filter blocks). */
static kz_status capture(struct tmpl_rt *rt, const struct tmpl_node *n, struct tmpl_val *out)
{
    struct tmpl_sb body, *saved = rt->out;
    tmpl_sb_init(&body, rt->max_output);
    rt->out = &body;
    kz_status rc = exec_body(rt, n->kids, n->n_kids);
    rt->out = saved;
    if (!rc)
        rc = tmpl_sb_to_str(rt, n->line, &body, out);
    tmpl_sb_deinit(&body);
    return rc;
}

static kz_status exec_for(struct tmpl_rt *rt, const struct tmpl_node *n)
{
    struct tmpl_val it, item, cond;
    struct tmpl_list *items;
    struct tmpl_scope frame = {.parent = rt->scope};
    struct tmpl_scope *saved = rt->scope;
    static const struct kz_slice loop_name = {"loop", 4};
    kz_status rc = eval(rt, n->a, &it);
    if (!rc)
        rc = tmpl_iterate(rt, n->line, &it, &items);
    if (rc)
        return rc;
    rt->scope = &frame;
    if (n->b) { /* for x in xs if cond: filter first, so loop.* counts what is kept */
        struct tmpl_val kept;
        size_t k = 0;
        rc = tmpl_new_list(rt, n->line, items->n, &kept);
        for (size_t i = 0; i < items->n && !rc; i++) {
            frame.n = 0;
            rc = tmpl_rt_step(rt, n->line);
            if (!rc)
                rc = assign(rt, n->c, &items->v[i]);
            if (!rc)
                rc = eval(rt, n->b, &cond);
            if (!rc && tmpl_truthy(&cond))
                kept.u.l->v[k++] = items->v[i];
        }
        if (!rc) {
            kept.u.l->n = k;
            items = kept.u.l;
        }
    }
    struct tmpl_loop *loop = rc ? NULL : tmpl_arena_alloc(&rt->arena, sizeof *loop);
    if (!rc && !loop)
        rc = tmpl_fail_alloc(rt, n->line, rt->arena.failed);
    if (!rc) {
        loop->length = (int64_t)items->n;
        loop->items = items;
    }
    for (size_t i = 0; !rc && i < items->n; i++) {
        struct tmpl_val lv = {.t = TV_LOOP};
        lv.u.loop = loop;
        loop->index0 = (int64_t)i;
        frame.n = 0; /* each iteration starts a fresh scope, as in Jinja2 */
        item = items->v[i];
        rc = tmpl_rt_step(rt, n->line);
        if (!rc)
            rc = assign(rt, n->c, &item);
        if (!rc)
            rc = scope_set(rt, n->line, &frame, loop_name, lv);
        if (!rc)
            rc = exec_body(rt, n->kids, n->n_kids);
        if (rt->ctl == CTL_BREAK) {
            rt->ctl = CTL_NONE;
            break;
        }
        rt->ctl = CTL_NONE;
    }
    if (!rc && items->n == 0 && n->n_kids2) {
        frame.n = 0;
        rc = exec_body(rt, n->kids2, n->n_kids2);
    }
    rt->scope = saved;
    return rc;
}

static kz_status exec_stmt(struct tmpl_rt *rt, const struct tmpl_node *n)
{
    struct tmpl_val v;
    kz_status rc = tmpl_rt_step(rt, n->line);
    if (rc)
        return rc;
    switch (n->kind) {
    case N_TEXT:
        if (tmpl_sb_put(rt->out, n->cval.u.s.p, n->cval.u.s.len))
            return fail_sb(rt, n->line, rt->out);
        return KZ_OK;
    case N_OUTPUT:
        rc = eval(rt, n->a, &v);
        if (!rc && tmpl_str(rt->out, &v, 0))
            rc = fail_sb(rt, n->line, rt->out);
        return rc;
    case N_IF:
        rc = eval(rt, n->a, &v);
        if (rc)
            return rc;
        return tmpl_truthy(&v) ? exec_body(rt, n->kids, n->n_kids) : exec_body(rt, n->kids2, n->n_kids2);
    case N_FOR: return exec_for(rt, n);
    case N_SET:
        rc = eval(rt, n->a, &v);
        return rc ? rc : assign(rt, n->c, &v);
    case N_SET_BLOCK:
        rc = capture(rt, n, &v);
        return rc ? rc : assign(rt, n->c, &v);
    case N_MACRO:
        rc = new_func(rt, n->line, FN_MACRO, n->name, &v);
        if (rc)
            return rc;
        v.u.fn->mac = n;
        return scope_set(rt, n->line, rt->scope, n->name, v);
    case N_BREAK: rt->ctl = CTL_BREAK; return KZ_OK;
    case N_CONTINUE: rt->ctl = CTL_CONTINUE; return KZ_OK;
    case N_WITH: {
        struct tmpl_scope frame = {.parent = rt->scope}, *saved = rt->scope;
        for (size_t i = 0; i < n->n_kids2 && !rc; i++) {
            rc = eval(rt, n->kids2[i], &v);
            if (!rc)
                rc = scope_set(rt, n->line, &frame, n->kw[i], v);
        }
        rt->scope = &frame;
        if (!rc)
            rc = exec_body(rt, n->kids, n->n_kids);
        rt->scope = saved;
        return rc;
    }
    case N_FILTER_BLOCK: {
        struct tmpl_val saved = rt->block_input;
        rc = capture(rt, n, &rt->block_input);
        if (!rc)
            rc = eval(rt, n->a, &v);
        rt->block_input = saved;
        if (!rc && tmpl_str(rt->out, &v, 0))
            rc = fail_sb(rt, n->line, rt->out);
        return rc;
    }
    case N_BODY: return exec_body(rt, n->kids, n->n_kids);
    default: return tmpl_fail(rt, n->line, KZ_EPROTO, "expression used as a statement");
    }
}

static kz_status exec_body(struct tmpl_rt *rt, struct tmpl_node *const *kids, size_t n)
{
    if (++rt->depth > KZ_TEMPLATE_MAX_DEPTH) {
        rt->depth--;
        return tmpl_fail(rt, n ? kids[0]->line : 0, KZ_ELIMIT, "nesting deeper than %d (recursive macro?)",
                         KZ_TEMPLATE_MAX_DEPTH);
    }
    kz_status rc = KZ_OK;
    for (size_t i = 0; i < n && !rc && rt->ctl == CTL_NONE; i++)
        rc = exec_stmt(rt, kids[i]);
    rt->depth--;
    return rc;
}

/* ---- entry points ------------------------------------------------------- */

static size_t sat_add(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }
static size_t sat_mul(size_t a, size_t k) { return a > SIZE_MAX / k ? SIZE_MAX : a * k; }

kz_status kz_template_render_compiled(const struct kz_template *t, const struct json_t *context,
                                      const struct kz_template_opts *opts, char **out, size_t *out_len,
                                      struct kz_err *err)
{
    struct tmpl_rt rt;
    struct tmpl_sb sb;
    struct tmpl_scope root = {0};
    kz_status rc = KZ_OK;
    *out = NULL;
    *out_len = 0;
    memset(&rt, 0, sizeof rt);
    if (opts)
        rt.opts = *opts;
    rt.err = err;
    if (err)
        err->msg[0] = '\0';
    tmpl_sb_init(&sb, 0);
    if (context && !json_is_object(context)) {
        rc = kz_err_set(err, KZ_EINVAL, "template: the context must be a JSON object");
        goto out;
    }

    /* The context is converted first, under a provisional cap, since the
     * final caps scale with the text it holds. */
    size_t text = 0;
    tmpl_arena_init(&rt.arena, rt.opts.max_memory ? rt.opts.max_memory : SIZE_MAX / 2);
    struct tmpl_val ctx = tv_none();
    if (context) {
        rc = tmpl_from_json(&rt.arena, context, 0, &ctx, &text);
        if (rc) {
            rc = kz_err_set(err, rc, rc == KZ_ENOMEM ? "template: out of memory"
                                                     : "template: context too large or nested too deeply");
            goto out;
        }
    }
    size_t input = sat_add(t->src_len, text);
    rt.max_output = rt.opts.max_output ? rt.opts.max_output
                                       : sat_add(KZ_TEMPLATE_DEFAULT_OUTPUT_BASE, sat_mul(input, 8));
    rt.max_memory = rt.opts.max_memory ? rt.opts.max_memory
                                       : sat_add(KZ_TEMPLATE_DEFAULT_MEMORY_BASE, sat_mul(input, 16));
    rt.arena.cap = sat_add(rt.max_memory, rt.arena.total);
    rt.max_steps = rt.opts.max_steps ? rt.opts.max_steps : KZ_TEMPLATE_DEFAULT_STEPS;
    sb.max = rt.max_output;
    rt.out = &sb;
    rt.root = rt.scope = &root;
    rt.block_input = tv_str("", 0);
    if (context) {
        for (size_t i = 0; i < ctx.u.d->n && !rc; i++)
            rc = scope_set(&rt, 0, &root, ctx.u.d->k[i].u.s, ctx.u.d->v[i]);
        if (rc)
            goto out;
    }
    rc = exec_body(&rt, t->root->kids, t->root->n_kids);
    if (rc)
        goto out;
    if (!sb.p) { /* nothing was written: still hand back a valid string */
        sb.p = kz_malloc(1);
        if (!sb.p) {
            rc = kz_err_set(err, KZ_ENOMEM, "template: out of memory");
            goto out;
        }
        sb.p[0] = '\0';
    }
    *out = sb.p;
    *out_len = sb.len;
    sb.p = NULL;
out:
    tmpl_sb_deinit(&sb);
    tmpl_arena_deinit(&rt.arena);
    return rc;
}

kz_status kz_template_render(const char *src, size_t src_len, const struct json_t *context,
                             const struct kz_template_opts *opts, char **out, size_t *out_len, struct kz_err *err)
{
    struct kz_template *t = NULL;
    *out = NULL;
    *out_len = 0;
    kz_status rc = kz_template_compile(src, src_len, &t, err);
    if (!rc)
        rc = kz_template_render_compiled(t, context, opts, out, out_len, err);
    kz_template_free(t);
    return rc;
}
