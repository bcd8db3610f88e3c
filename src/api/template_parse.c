/* SPDX-License-Identifier: MIT
 * Template parser: tokens to a syntax tree, following Jinja2's grammar and
 * operator precedence (lowest first):
 *   x if c else y | or | and | not | comparisons, in, not in |
 *   + - | ~ | * / // % | ** | unary - + | primary with .attr [item] (call),
 *   then | filter and `is` test, which bind tighter than every binary
 *   operator ('a' + x | trim is 'a' + (x | trim)).
 * Recursion is bounded by TMPL_PARSE_MAX_DEPTH so that no input can exhaust
 * the stack; loop controls outside a loop are rejected here, as Jinja2 does.
 */
#include <string.h>

#include "api/template_int.h"
#include "core/alloc.h"

#define TMPL_PARSE_MAX_DEPTH 200

struct parser {
    struct tmpl_arena *a;
    const struct tmpl_tok *t;
    size_t n, pos;
    int depth;
    int loop_depth; /* enclosing for loops (reset inside macros) */
    struct kz_err *err;
};

static const struct tmpl_tok *cur(const struct parser *P) { return &P->t[P->pos]; }
static const struct tmpl_tok *peek(const struct parser *P, size_t k)
{
    return P->pos + k < P->n ? &P->t[P->pos + k] : &P->t[P->n - 1];
}
static void next(struct parser *P)
{
    if (P->pos + 1 < P->n)
        P->pos++;
}

static kz_status fail(struct parser *P, kz_status s, const char *fmt, const char *arg, size_t arg_len)
{
    char what[96];
    size_t n = arg_len < 64 ? arg_len : 64;
    memcpy(what, arg ? arg : "", arg ? n : 0);
    what[arg ? n : 0] = '\0';
    return kz_err_set(P->err, s, "template line %d: %s%s%s%s", cur(P)->line, fmt, arg ? "'" : "", what,
                      arg ? "'" : "");
}

static const char *tok_desc(const struct tmpl_tok *t)
{
    switch (t->kind) {
    case TK_EOF: return "end of template";
    case TK_TEXT: return "text";
    case TK_VAR_BEGIN: return "'{{'";
    case TK_VAR_END: return "'}}'";
    case TK_BLOCK_BEGIN: return "'{%'";
    case TK_BLOCK_END: return "'%}'";
    case TK_NAME: return "name";
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    default: return "operator";
    }
}

static kz_status unexpected(struct parser *P, const char *expected)
{
    const struct tmpl_tok *t = cur(P);
    if (t->kind == TK_NAME)
        return kz_err_set(P->err, KZ_EPROTO, "template line %d: expected %s, got '%.*s'", t->line, expected,
                          (int)(t->s.len < 64 ? t->s.len : 64), t->s.p);
    return kz_err_set(P->err, KZ_EPROTO, "template line %d: expected %s, got %s", t->line, expected, tok_desc(t));
}

static int is_op(const struct parser *P, enum tmpl_op op)
{
    return cur(P)->kind == TK_OP && cur(P)->op == op;
}

static int is_name(const struct parser *P, const char *name)
{
    return cur(P)->kind == TK_NAME && kz_slice_eq(cur(P)->s, name);
}

static kz_status expect_op(struct parser *P, enum tmpl_op op, const char *what)
{
    if (!is_op(P, op))
        return unexpected(P, what);
    next(P);
    return KZ_OK;
}

static kz_status new_node(struct parser *P, enum tmpl_nk kind, int line, struct tmpl_node **out)
{
    struct tmpl_node *n = tmpl_arena_alloc(P->a, sizeof *n);
    *out = n;
    if (!n)
        return kz_err_set(P->err, P->a->failed, "template: out of memory");
    n->kind = (uint8_t)kind;
    n->line = line;
    *out = n;
    return KZ_OK;
}

/* A growable node list, copied into the arena when done. */
struct nlist {
    struct tmpl_node **v;
    size_t n, cap;
    struct kz_slice *names; /* parallel, when used for keyword arguments */
};

static kz_status nl_push(struct parser *P, struct nlist *l, struct tmpl_node *x, struct kz_slice name)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        struct tmpl_node **nv = kz_realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return kz_err_set(P->err, KZ_ENOMEM, "template: out of memory");
        l->v = nv;
        struct kz_slice *nn = kz_realloc(l->names, nc * sizeof *nn);
        if (!nn)
            return kz_err_set(P->err, KZ_ENOMEM, "template: out of memory");
        l->names = nn;
        l->cap = nc;
    }
    l->names[l->n] = name;
    l->v[l->n++] = x;
    return KZ_OK;
}

static void nl_free(struct nlist *l)
{
    kz_free(l->v);
    kz_free(l->names);
    memset(l, 0, sizeof *l);
}

/* Moves the list into the arena; *names_out gets the names when non-NULL. */
static kz_status nl_done(struct parser *P, struct nlist *l, struct tmpl_node ***out, size_t *n_out,
                         struct kz_slice **names_out)
{
    kz_status rc = KZ_OK;
    *out = NULL;
    *n_out = l->n;
    if (l->n) {
        *out = tmpl_arena_alloc(P->a, l->n * sizeof **out);
        if (!*out) {
            rc = kz_err_set(P->err, P->a->failed, "template: out of memory");
            goto out;
        }
        memcpy(*out, l->v, l->n * sizeof **out);
        if (names_out) {
            *names_out = tmpl_arena_alloc(P->a, l->n * sizeof **names_out);
            if (!*names_out) {
                rc = kz_err_set(P->err, P->a->failed, "template: out of memory");
                goto out;
            }
            memcpy(*names_out, l->names, l->n * sizeof **names_out);
        }
    }
out:
    nl_free(l);
    return rc;
}

static kz_status enter(struct parser *P)
{
    if (++P->depth > TMPL_PARSE_MAX_DEPTH)
        return fail(P, KZ_ELIMIT, "template nested too deeply", NULL, 0);
    return KZ_OK;
}

static kz_status parse_expr(struct parser *P, struct tmpl_node **out);
static kz_status parse_or(struct parser *P, struct tmpl_node **out);
static kz_status parse_unary(struct parser *P, int with_filter, struct tmpl_node **out);
static kz_status parse_primary(struct parser *P, struct tmpl_node **out);
static kz_status parse_postfix(struct parser *P, struct tmpl_node **node);

/* ( args ) after the '(' was seen: positional then keyword arguments. */
static kz_status parse_call_args(struct parser *P, struct tmpl_node *n)
{
    struct nlist pos = {0}, kw = {0};
    static const struct kz_slice none = {NULL, 0};
    kz_status rc = expect_op(P, OP_LPAREN, "'('");
    while (!rc && !is_op(P, OP_RPAREN)) {
        if (pos.n + kw.n >= TMPL_MAX_ARGS) {
            rc = fail(P, KZ_EUNSUPPORTED, "too many arguments", NULL, 0);
            break;
        }
        struct tmpl_node *x = NULL;
        if (cur(P)->kind == TK_NAME && peek(P, 1)->kind == TK_OP && peek(P, 1)->op == OP_ASSIGN) {
            struct kz_slice name = cur(P)->s;
            next(P);
            next(P);
            rc = parse_expr(P, &x);
            if (!rc)
                rc = nl_push(P, &kw, x, name);
        } else {
            if (is_op(P, OP_MUL) || is_op(P, OP_POW)) {
                rc = fail(P, KZ_EUNSUPPORTED, "*args and **kwargs are not supported", NULL, 0);
                break;
            }
            if (kw.n) {
                rc = fail(P, KZ_EPROTO, "positional argument after keyword argument", NULL, 0);
                break;
            }
            rc = parse_expr(P, &x);
            if (!rc)
                rc = nl_push(P, &pos, x, none);
        }
        if (rc)
            break;
        if (!is_op(P, OP_COMMA))
            break;
        next(P);
    }
    if (!rc)
        rc = expect_op(P, OP_RPAREN, "')'");
    if (!rc)
        rc = nl_done(P, &pos, &n->kids, &n->n_kids, NULL);
    if (!rc)
        rc = nl_done(P, &kw, &n->kids2, &n->n_kids2, &n->kw);
    nl_free(&pos);
    nl_free(&kw);
    return rc;
}

/* After '|' or 'is': a filter / test name, possibly dotted (Jinja allows
 * a.b); only the last part matters for the built-ins. */
static kz_status parse_fname(struct parser *P, struct kz_slice *name)
{
    if (cur(P)->kind != TK_NAME)
        return unexpected(P, "a filter or test name");
    *name = cur(P)->s;
    next(P);
    while (is_op(P, OP_DOT) && peek(P, 1)->kind == TK_NAME) {
        next(P);
        name->len = (size_t)(cur(P)->s.p + cur(P)->s.len - name->p);
        next(P);
    }
    return KZ_OK;
}

/* Filters and tests applied to *node. */
static kz_status parse_filter_expr(struct parser *P, struct tmpl_node **node)
{
    for (;;) {
        kz_status rc;
        if (is_op(P, OP_PIPE)) {
            struct tmpl_node *f = NULL;
            int line = cur(P)->line;
            next(P);
            rc = new_node(P, N_FILTER, line, &f);
            if (!rc)
                rc = parse_fname(P, &f->name);
            if (!rc && is_op(P, OP_LPAREN))
                rc = parse_call_args(P, f);
            if (rc)
                return rc;
            f->a = *node;
            f->filter = tmpl_find_filter(f->name);
            *node = f;
        } else if (is_name(P, "is")) {
            struct tmpl_node *t = NULL;
            int line = cur(P)->line;
            next(P);
            rc = new_node(P, N_TEST, line, &t);
            if (rc)
                return rc;
            if (is_name(P, "not")) {
                t->op = 1;
                next(P);
            }
            rc = parse_fname(P, &t->name);
            if (rc)
                return rc;
            const struct tmpl_tok *c = cur(P);
            if (is_op(P, OP_LPAREN)) {
                rc = parse_call_args(P, t);
            } else if ((c->kind == TK_NAME || c->kind == TK_STRING || c->kind == TK_INT || c->kind == TK_FLOAT ||
                        (c->kind == TK_OP && (c->op == OP_LBRACKET || c->op == OP_LBRACE))) &&
                       !is_name(P, "else") && !is_name(P, "or") && !is_name(P, "and") && !is_name(P, "is") &&
                       !is_name(P, "if") && !is_name(P, "in") && !is_name(P, "not")) {
                /* `x is divisibleby 3`, `x is sameas none`: one bare argument */
                struct tmpl_node *arg = NULL;
                rc = parse_primary(P, &arg);
                if (!rc)
                    rc = parse_postfix(P, &arg);
                if (!rc) {
                    t->kids = tmpl_arena_alloc(P->a, sizeof *t->kids);
                    if (!t->kids)
                        return kz_err_set(P->err, P->a->failed, "template: out of memory");
                    t->kids[0] = arg;
                    t->n_kids = 1;
                }
            }
            if (rc)
                return rc;
            t->a = *node;
            t->test = tmpl_find_test(t->name);
            *node = t;
        } else if (is_op(P, OP_LPAREN)) {
            struct tmpl_node *c = NULL;
            rc = new_node(P, N_CALL, cur(P)->line, &c);
            if (!rc)
                rc = parse_call_args(P, c);
            if (rc)
                return rc;
            c->a = *node;
            *node = c;
        } else {
            return KZ_OK;
        }
    }
}

/* .attr, [item], [a:b:c] and calls after a primary. */
static kz_status parse_postfix(struct parser *P, struct tmpl_node **node)
{
    for (;;) {
        kz_status rc;
        int line = cur(P)->line;
        if (is_op(P, OP_DOT)) {
            next(P);
            struct tmpl_node *x = NULL;
            if (cur(P)->kind == TK_NAME) {
                rc = new_node(P, N_ATTR, line, &x);
                if (rc)
                    return rc;
                x->name = cur(P)->s;
            } else if (cur(P)->kind == TK_INT) {
                struct tmpl_node *k = NULL;
                rc = new_node(P, N_ITEM, line, &x);
                if (!rc)
                    rc = new_node(P, N_CONST, line, &k);
                if (rc)
                    return rc;
                k->cval = tv_int(cur(P)->i);
                x->b = k;
            } else {
                return unexpected(P, "an attribute name");
            }
            next(P);
            x->a = *node;
            *node = x;
        } else if (is_op(P, OP_LBRACKET)) {
            next(P);
            struct tmpl_node *x = NULL, *parts[3] = {NULL, NULL, NULL};
            int k = 0, is_slice = 0;
            rc = enter(P);
            while (!rc) {
                if (is_op(P, OP_COLON)) {
                    is_slice = 1;
                    if (++k > 2) {
                        rc = unexpected(P, "']'");
                        break;
                    }
                    next(P);
                    continue;
                }
                if (is_op(P, OP_RBRACKET))
                    break;
                if (parts[k]) {
                    rc = unexpected(P, "']'");
                    break;
                }
                rc = parse_expr(P, &parts[k]);
                if (!rc && !is_slice && is_op(P, OP_COMMA)) {
                    /* x[a, b]: a tuple key */
                    struct nlist l = {0};
                    static const struct kz_slice none = {NULL, 0};
                    struct tmpl_node *tup = NULL;
                    rc = new_node(P, N_TUPLE, line, &tup);
                    if (!rc)
                        rc = nl_push(P, &l, parts[k], none);
                    while (!rc && is_op(P, OP_COMMA)) {
                        next(P);
                        if (is_op(P, OP_RBRACKET))
                            break;
                        struct tmpl_node *e = NULL;
                        rc = parse_expr(P, &e);
                        if (!rc)
                            rc = nl_push(P, &l, e, none);
                    }
                    if (!rc)
                        rc = nl_done(P, &l, &tup->kids, &tup->n_kids, NULL);
                    nl_free(&l);
                    parts[k] = tup;
                }
            }
            P->depth--;
            if (!rc)
                rc = expect_op(P, OP_RBRACKET, "']'");
            if (!rc && !is_slice && !parts[0])
                rc = fail(P, KZ_EPROTO, "empty subscript", NULL, 0);
            if (!rc)
                rc = new_node(P, is_slice ? N_SLICE : N_ITEM, line, &x);
            if (rc)
                return rc;
            x->a = *node;
            x->b = parts[0];
            x->c = parts[1];
            x->d = parts[2];
            *node = x;
        } else if (is_op(P, OP_LPAREN)) {
            struct tmpl_node *c = NULL;
            rc = new_node(P, N_CALL, line, &c);
            if (!rc)
                rc = parse_call_args(P, c);
            if (rc)
                return rc;
            c->a = *node;
            *node = c;
        } else {
            return KZ_OK;
        }
    }
}

/* Items of [ ... ], ( ... ) or { k: v, ... } after the opener. */
static kz_status parse_seq(struct parser *P, struct tmpl_node *n, enum tmpl_op close, int is_dict)
{
    struct nlist ks = {0}, vs = {0};
    static const struct kz_slice none = {NULL, 0};
    kz_status rc = KZ_OK;
    while (!is_op(P, close)) {
        struct tmpl_node *k, *v = NULL;
        rc = parse_expr(P, &k);
        if (!rc && is_dict) {
            rc = expect_op(P, OP_COLON, "':'");
            if (!rc)
                rc = parse_expr(P, &v);
            if (!rc)
                rc = nl_push(P, &vs, v, none);
        }
        if (!rc)
            rc = nl_push(P, &ks, k, none);
        if (rc)
            break;
        if (!is_op(P, OP_COMMA))
            break;
        if (n->kind == N_TUPLE && ks.n == 1)
            n->op = 1; /* (x,) is a tuple even with one element */
        next(P);
    }
    if (!rc)
        rc = expect_op(P, close, close == OP_RBRACKET ? "']'" : close == OP_RPAREN ? "')'" : "'}'");
    if (!rc)
        rc = nl_done(P, &ks, &n->kids, &n->n_kids, NULL);
    if (!rc)
        rc = nl_done(P, &vs, &n->kids2, &n->n_kids2, NULL);
    nl_free(&ks);
    nl_free(&vs);
    return rc;
}

static kz_status parse_primary(struct parser *P, struct tmpl_node **out)
{
    const struct tmpl_tok *t = cur(P);
    struct tmpl_node *n = NULL;
    kz_status rc = enter(P);
    if (rc)
        return rc;
    switch (t->kind) {
    case TK_NAME:
        rc = new_node(P, N_CONST, t->line, &n);
        if (rc)
            break;
        if (kz_slice_eq(t->s, "true") || kz_slice_eq(t->s, "True")) {
            n->cval = tv_bool(1);
        } else if (kz_slice_eq(t->s, "false") || kz_slice_eq(t->s, "False")) {
            n->cval = tv_bool(0);
        } else if (kz_slice_eq(t->s, "none") || kz_slice_eq(t->s, "None")) {
            n->cval = tv_none();
        } else {
            n->kind = N_NAME;
            n->name = t->s;
        }
        next(P);
        break;
    case TK_STRING: {
        /* Adjacent literals concatenate: "a" "b" is "ab". */
        size_t total = 0, k = 0;
        while (peek(P, k)->kind == TK_STRING)
            total += peek(P, k++)->s.len;
        rc = new_node(P, N_CONST, t->line, &n);
        if (rc)
            break;
        if (k == 1) {
            n->cval = tv_str(t->s.p, t->s.len);
            next(P);
            break;
        }
        char *buf = tmpl_arena_alloc(P->a, total + 1);
        if (!buf) {
            rc = kz_err_set(P->err, P->a->failed, "template: out of memory");
            break;
        }
        size_t o = 0;
        while (cur(P)->kind == TK_STRING) {
            memcpy(buf + o, cur(P)->s.p, cur(P)->s.len);
            o += cur(P)->s.len;
            next(P);
        }
        n->cval = tv_str(buf, o);
        break;
    }
    case TK_INT:
    case TK_FLOAT:
        rc = new_node(P, N_CONST, t->line, &n);
        if (rc)
            break;
        n->cval = t->kind == TK_INT ? tv_int(t->i) : tv_float(t->f);
        next(P);
        break;
    case TK_OP:
        if (t->op == OP_LPAREN) {
            next(P);
            if (is_op(P, OP_RPAREN)) { /* () is the empty tuple */
                rc = new_node(P, N_TUPLE, t->line, &n);
                next(P);
                break;
            }
            struct tmpl_node *first = NULL;
            rc = parse_expr(P, &first);
            if (rc)
                break;
            if (is_op(P, OP_RPAREN)) {
                next(P);
                n = first;
                break;
            }
            if (!is_op(P, OP_COMMA)) {
                rc = unexpected(P, "')' or ','");
                break;
            }
            next(P);
            rc = new_node(P, N_TUPLE, t->line, &n);
            if (rc)
                break;
            struct tmpl_node *rest = NULL;
            rc = new_node(P, N_TUPLE, t->line, &rest);
            if (!rc)
                rc = parse_seq(P, rest, OP_RPAREN, 0);
            if (rc)
                break;
            n->n_kids = rest->n_kids + 1;
            n->kids = tmpl_arena_alloc(P->a, n->n_kids * sizeof *n->kids);
            if (!n->kids) {
                rc = kz_err_set(P->err, P->a->failed, "template: out of memory");
                break;
            }
            n->kids[0] = first;
            if (rest->n_kids)
                memcpy(n->kids + 1, rest->kids, rest->n_kids * sizeof *n->kids);
        } else if (t->op == OP_LBRACKET) {
            next(P);
            rc = new_node(P, N_LIST, t->line, &n);
            if (!rc)
                rc = parse_seq(P, n, OP_RBRACKET, 0);
        } else if (t->op == OP_LBRACE) {
            next(P);
            rc = new_node(P, N_DICT, t->line, &n);
            if (!rc)
                rc = parse_seq(P, n, OP_RBRACE, 1);
        } else {
            rc = unexpected(P, "an expression");
        }
        break;
    default:
        rc = unexpected(P, "an expression");
        break;
    }
    P->depth--;
    if (!rc)
        *out = n;
    return rc;
}

static kz_status parse_unary(struct parser *P, int with_filter, struct tmpl_node **out)
{
    kz_status rc = enter(P);
    if (rc)
        return rc;
    struct tmpl_node *n = NULL;
    if (is_op(P, OP_SUB) || is_op(P, OP_ADD)) {
        int line = cur(P)->line;
        uint8_t op = is_op(P, OP_SUB) ? OP_NEG : OP_POS;
        next(P);
        rc = new_node(P, N_UNARY, line, &n);
        if (!rc)
            rc = parse_unary(P, 0, &n->a);
        n->op = op;
    } else {
        rc = parse_primary(P, &n);
    }
    if (!rc)
        rc = parse_postfix(P, &n);
    if (!rc && with_filter)
        rc = parse_filter_expr(P, &n);
    P->depth--;
    if (!rc)
        *out = n;
    return rc;
}

static kz_status binary(struct parser *P, int line, uint8_t op, enum tmpl_nk kind, struct tmpl_node *l,
                        struct tmpl_node *r, struct tmpl_node **out)
{
    kz_status rc = new_node(P, kind, line, out);
    if (rc)
        return rc;
    (*out)->op = op;
    (*out)->a = l;
    (*out)->b = r;
    return KZ_OK;
}

static kz_status parse_pow(struct parser *P, struct tmpl_node **out)
{
    kz_status rc = parse_unary(P, 1, out);
    while (!rc && is_op(P, OP_POW)) {
        int line = cur(P)->line;
        struct tmpl_node *r = NULL;
        next(P);
        rc = parse_unary(P, 1, &r);
        if (!rc)
            rc = binary(P, line, OP_POW, N_BINARY, *out, r, out);
    }
    return rc;
}

static kz_status parse_math2(struct parser *P, struct tmpl_node **out)
{
    kz_status rc = parse_pow(P, out);
    while (!rc && (is_op(P, OP_MUL) || is_op(P, OP_DIV) || is_op(P, OP_FLOORDIV) || is_op(P, OP_MOD))) {
        int line = cur(P)->line;
        uint8_t op = cur(P)->op;
        struct tmpl_node *r = NULL;
        next(P);
        rc = parse_pow(P, &r);
        if (!rc)
            rc = binary(P, line, op, N_BINARY, *out, r, out);
    }
    return rc;
}

static kz_status parse_concat(struct parser *P, struct tmpl_node **out)
{
    kz_status rc = parse_math2(P, out);
    while (!rc && is_op(P, OP_TILDE)) {
        int line = cur(P)->line;
        struct tmpl_node *r = NULL;
        next(P);
        rc = parse_math2(P, &r);
        if (!rc)
            rc = binary(P, line, OP_TILDE, N_BINARY, *out, r, out);
    }
    return rc;
}

static kz_status parse_math1(struct parser *P, struct tmpl_node **out)
{
    kz_status rc = parse_concat(P, out);
    while (!rc && (is_op(P, OP_ADD) || is_op(P, OP_SUB))) {
        int line = cur(P)->line;
        uint8_t op = cur(P)->op;
        struct tmpl_node *r = NULL;
        next(P);
        rc = parse_concat(P, &r);
        if (!rc)
            rc = binary(P, line, op, N_BINARY, *out, r, out);
    }
    return rc;
}

static kz_status parse_compare(struct parser *P, struct tmpl_node **out)
{
    struct tmpl_node *first = NULL;
    kz_status rc = parse_math1(P, &first);
    if (rc)
        return rc;
    struct nlist rest = {0};
    uint8_t ops[TMPL_MAX_ARGS];
    static const struct kz_slice none = {NULL, 0};
    for (;;) {
        uint8_t op = OP_NONE;
        if (cur(P)->kind == TK_OP && cur(P)->op >= OP_EQ && cur(P)->op <= OP_GE) {
            op = cur(P)->op;
            next(P);
        } else if (is_name(P, "in")) {
            op = OP_IN;
            next(P);
        } else if (is_name(P, "not") && peek(P, 1)->kind == TK_NAME && kz_slice_eq(peek(P, 1)->s, "in")) {
            op = OP_NOTIN;
            next(P);
            next(P);
        } else {
            break;
        }
        if (rest.n == TMPL_MAX_ARGS) {
            rc = fail(P, KZ_EUNSUPPORTED, "comparison chain too long", NULL, 0);
            break;
        }
        struct tmpl_node *r = NULL;
        rc = parse_math1(P, &r);
        if (!rc)
            rc = nl_push(P, &rest, r, none);
        if (rc)
            break;
        ops[rest.n - 1] = op;
    }
    if (!rc && rest.n == 0) {
        *out = first;
    } else if (!rc) {
        struct tmpl_node *n = NULL;
        rc = new_node(P, N_COMPARE, first->line, &n);
        if (!rc) {
            n->a = first;
            n->ops = tmpl_arena_alloc(P->a, rest.n);
            if (!n->ops)
                rc = kz_err_set(P->err, P->a->failed, "template: out of memory");
            else
                memcpy(n->ops, ops, rest.n);
        }
        if (!rc)
            rc = nl_done(P, &rest, &n->kids, &n->n_kids, NULL);
        if (!rc)
            *out = n;
    }
    nl_free(&rest);
    return rc;
}

static kz_status parse_not(struct parser *P, struct tmpl_node **out)
{
    if (is_name(P, "not")) {
        struct tmpl_node *n = NULL;
        kz_status rc = enter(P);
        if (!rc)
            rc = new_node(P, N_NOT, cur(P)->line, &n);
        next(P);
        if (!rc)
            rc = parse_not(P, &n->a);
        P->depth--;
        if (!rc)
            *out = n;
        return rc;
    }
    return parse_compare(P, out);
}

static kz_status parse_and(struct parser *P, struct tmpl_node **out)
{
    kz_status rc = parse_not(P, out);
    while (!rc && is_name(P, "and")) {
        int line = cur(P)->line;
        struct tmpl_node *r = NULL;
        next(P);
        rc = parse_not(P, &r);
        if (!rc)
            rc = binary(P, line, 0, N_AND, *out, r, out);
    }
    return rc;
}

static kz_status parse_or(struct parser *P, struct tmpl_node **out)
{
    kz_status rc = parse_and(P, out);
    while (!rc && is_name(P, "or")) {
        int line = cur(P)->line;
        struct tmpl_node *r = NULL;
        next(P);
        rc = parse_and(P, &r);
        if (!rc)
            rc = binary(P, line, 0, N_OR, *out, r, out);
    }
    return rc;
}

/* Full expression with the conditional: a if c else b. */
static kz_status parse_expr(struct parser *P, struct tmpl_node **out)
{
    kz_status rc = enter(P);
    if (!rc)
        rc = parse_or(P, out);
    while (!rc && is_name(P, "if")) {
        struct tmpl_node *n = NULL;
        rc = new_node(P, N_COND, cur(P)->line, &n);
        next(P);
        if (!rc)
            rc = parse_or(P, &n->b);
        if (!rc && is_name(P, "else")) {
            next(P);
            rc = parse_expr(P, &n->c);
        }
        if (!rc) {
            n->a = *out;
            *out = n;
        }
    }
    P->depth--;
    return rc;
}

/* expr [, expr ...]: a bare tuple where Jinja2 allows one ({{ }}, set, for). */
static kz_status parse_tuple(struct parser *P, int names_only, struct tmpl_node **out)
{
    struct tmpl_node *first = NULL;
    kz_status rc;
    if (names_only) {
        if (cur(P)->kind != TK_NAME)
            return unexpected(P, "a variable name");
        rc = new_node(P, N_NAME, cur(P)->line, &first);
        if (rc)
            return rc;
        first->name = cur(P)->s;
        next(P);
        /* set ns.attr = ... */
        if (is_op(P, OP_DOT) && peek(P, 1)->kind == TK_NAME) {
            struct tmpl_node *at = NULL;
            next(P);
            rc = new_node(P, N_ATTR, cur(P)->line, &at);
            if (rc)
                return rc;
            at->a = first;
            at->name = cur(P)->s;
            next(P);
            first = at;
        }
    } else {
        rc = parse_expr(P, &first);
        if (rc)
            return rc;
    }
    if (!is_op(P, OP_COMMA)) {
        *out = first;
        return KZ_OK;
    }
    struct nlist l = {0};
    static const struct kz_slice none = {NULL, 0};
    struct tmpl_node *tup = NULL;
    rc = new_node(P, N_TUPLE, first->line, &tup);
    if (!rc)
        rc = nl_push(P, &l, first, none);
    while (!rc && is_op(P, OP_COMMA)) {
        next(P);
        struct tmpl_node *e = NULL;
        if (names_only) {
            if (cur(P)->kind != TK_NAME)
                break;
            rc = new_node(P, N_NAME, cur(P)->line, &e);
            if (rc)
                break;
            e->name = cur(P)->s;
            next(P);
        } else {
            if (cur(P)->kind == TK_VAR_END || cur(P)->kind == TK_BLOCK_END || is_op(P, OP_RPAREN))
                break;
            rc = parse_expr(P, &e);
            if (rc)
                break;
        }
        rc = nl_push(P, &l, e, none);
    }
    if (!rc)
        rc = nl_done(P, &l, &tup->kids, &tup->n_kids, NULL);
    nl_free(&l);
    if (!rc)
        *out = tup;
    return rc;
}

/* ---- statements --------------------------------------------------------- */

static kz_status parse_body(struct parser *P, const char *const *ends, struct tmpl_node ***out, size_t *n_out,
                            struct kz_slice *which);

static kz_status expect_block_end(struct parser *P)
{
    if (cur(P)->kind != TK_BLOCK_END)
        return unexpected(P, "'%}'");
    next(P);
    return KZ_OK;
}

static kz_status parse_if(struct parser *P, struct tmpl_node **out)
{
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    struct tmpl_node *n = NULL;
    struct kz_slice which;
    kz_status rc = new_node(P, N_IF, cur(P)->line, &n);
    next(P); /* if / elif */
    if (!rc)
        rc = parse_tuple(P, 0, &n->a);
    if (!rc)
        rc = expect_block_end(P);
    if (!rc)
        rc = parse_body(P, ends, &n->kids, &n->n_kids, &which);
    if (rc)
        return rc;
    if (kz_slice_eq(which, "elif")) {
        /* elif is an if nested in the else branch; parse_if consumes it */
        n->kids2 = tmpl_arena_alloc(P->a, sizeof *n->kids2);
        if (!n->kids2)
            return kz_err_set(P->err, P->a->failed, "template: out of memory");
        n->n_kids2 = 1;
        P->pos--; /* back onto "elif" so the nested parse sees its keyword */
        rc = enter(P);
        if (!rc)
            rc = parse_if(P, &n->kids2[0]);
        P->depth--;
        if (rc)
            return rc;
    } else if (kz_slice_eq(which, "else")) {
        static const char *const ends2[] = {"endif", NULL};
        rc = expect_block_end(P);
        if (!rc)
            rc = parse_body(P, ends2, &n->kids2, &n->n_kids2, &which);
        if (!rc)
            rc = expect_block_end(P);
    } else {
        rc = expect_block_end(P);
    }
    if (!rc)
        *out = n;
    return rc;
}

static kz_status parse_for(struct parser *P, struct tmpl_node **out)
{
    static const char *const ends[] = {"else", "endfor", NULL};
    static const char *const ends2[] = {"endfor", NULL};
    struct tmpl_node *n = NULL;
    struct kz_slice which;
    kz_status rc = new_node(P, N_FOR, cur(P)->line, &n);
    next(P);
    if (!rc)
        rc = parse_tuple(P, 1, &n->c);
    if (!rc && n->c->kind == N_ATTR)
        rc = fail(P, KZ_EPROTO, "a for loop cannot assign to an attribute", NULL, 0);
    if (!rc && !is_name(P, "in"))
        rc = unexpected(P, "'in'");
    if (rc)
        return rc;
    next(P);
    /* parse_or, not parse_expr: the "if" that follows filters the loop */
    rc = parse_or(P, &n->a);
    if (!rc && is_op(P, OP_COMMA)) {
        struct tmpl_node *first = n->a;
        struct nlist l = {0};
        static const struct kz_slice none = {NULL, 0};
        rc = new_node(P, N_TUPLE, first->line, &n->a);
        if (!rc)
            rc = nl_push(P, &l, first, none);
        while (!rc && is_op(P, OP_COMMA)) {
            next(P);
            struct tmpl_node *e = NULL;
            rc = parse_or(P, &e);
            if (!rc)
                rc = nl_push(P, &l, e, none);
        }
        if (!rc)
            rc = nl_done(P, &l, &n->a->kids, &n->a->n_kids, NULL);
        nl_free(&l);
    }
    if (!rc && is_name(P, "if")) {
        next(P);
        rc = parse_expr(P, &n->b);
    }
    if (!rc && is_name(P, "recursive"))
        rc = fail(P, KZ_EUNSUPPORTED, "recursive for loops are not supported", NULL, 0);
    if (!rc)
        rc = expect_block_end(P);
    if (rc)
        return rc;
    P->loop_depth++;
    rc = parse_body(P, ends, &n->kids, &n->n_kids, &which);
    P->loop_depth--;
    if (!rc && kz_slice_eq(which, "else")) {
        rc = expect_block_end(P);
        if (!rc)
            rc = parse_body(P, ends2, &n->kids2, &n->n_kids2, &which);
    }
    if (!rc)
        rc = expect_block_end(P);
    if (!rc)
        *out = n;
    return rc;
}

static kz_status parse_set(struct parser *P, struct tmpl_node **out)
{
    struct tmpl_node *n = NULL;
    kz_status rc = new_node(P, N_SET, cur(P)->line, &n);
    next(P);
    if (!rc)
        rc = parse_tuple(P, 1, &n->c);
    if (rc)
        return rc;
    if (is_op(P, OP_ASSIGN)) {
        next(P);
        rc = parse_tuple(P, 0, &n->a);
        if (!rc)
            rc = expect_block_end(P);
    } else {
        static const char *const ends[] = {"endset", NULL};
        struct kz_slice which;
        if (n->c->kind != N_NAME && n->c->kind != N_ATTR)
            return fail(P, KZ_EPROTO, "a block set assigns one name", NULL, 0);
        if (is_op(P, OP_PIPE))
            return fail(P, KZ_EUNSUPPORTED, "filters on a block set are not supported", NULL, 0);
        n->kind = N_SET_BLOCK;
        rc = expect_block_end(P);
        if (!rc)
            rc = parse_body(P, ends, &n->kids, &n->n_kids, &which);
        if (!rc)
            rc = expect_block_end(P);
    }
    if (!rc)
        *out = n;
    return rc;
}

static kz_status parse_macro(struct parser *P, struct tmpl_node **out)
{
    static const char *const ends[] = {"endmacro", NULL};
    struct tmpl_node *n = NULL;
    struct kz_slice which;
    struct nlist params = {0};
    kz_status rc = new_node(P, N_MACRO, cur(P)->line, &n);
    next(P);
    if (rc)
        return rc;
    if (cur(P)->kind != TK_NAME)
        return unexpected(P, "a macro name");
    n->name = cur(P)->s;
    next(P);
    rc = expect_op(P, OP_LPAREN, "'('");
    while (!rc && !is_op(P, OP_RPAREN)) {
        if (cur(P)->kind != TK_NAME) {
            rc = unexpected(P, "a parameter name");
            break;
        }
        if (params.n == TMPL_MAX_ARGS) {
            rc = fail(P, KZ_EUNSUPPORTED, "too many macro parameters", NULL, 0);
            break;
        }
        struct kz_slice name = cur(P)->s;
        struct tmpl_node *def = NULL;
        next(P);
        if (is_op(P, OP_ASSIGN)) {
            next(P);
            rc = parse_expr(P, &def);
        }
        if (!rc)
            rc = nl_push(P, &params, def, name);
        if (rc || !is_op(P, OP_COMMA))
            break;
        next(P);
    }
    if (!rc)
        rc = expect_op(P, OP_RPAREN, "')'");
    if (!rc)
        rc = nl_done(P, &params, &n->kids2, &n->n_kids2, &n->kw);
    nl_free(&params);
    if (!rc)
        rc = expect_block_end(P);
    if (rc)
        return rc;
    int saved_loops = P->loop_depth;
    P->loop_depth = 0;
    rc = parse_body(P, ends, &n->kids, &n->n_kids, &which);
    P->loop_depth = saved_loops;
    if (!rc && cur(P)->kind == TK_NAME)
        next(P); /* {% endmacro name %} */
    if (!rc)
        rc = expect_block_end(P);
    if (!rc)
        *out = n;
    return rc;
}

static kz_status parse_with(struct parser *P, struct tmpl_node **out)
{
    static const char *const ends[] = {"endwith", NULL};
    struct tmpl_node *n = NULL;
    struct kz_slice which;
    struct nlist vals = {0};
    kz_status rc = new_node(P, N_WITH, cur(P)->line, &n);
    next(P);
    while (!rc && cur(P)->kind == TK_NAME) {
        struct kz_slice name = cur(P)->s;
        struct tmpl_node *v = NULL;
        next(P);
        rc = expect_op(P, OP_ASSIGN, "'='");
        if (!rc)
            rc = parse_expr(P, &v);
        if (!rc)
            rc = nl_push(P, &vals, v, name);
        if (rc || !is_op(P, OP_COMMA))
            break;
        next(P);
    }
    if (!rc)
        rc = nl_done(P, &vals, &n->kids2, &n->n_kids2, &n->kw);
    nl_free(&vals);
    if (!rc)
        rc = expect_block_end(P);
    if (!rc)
        rc = parse_body(P, ends, &n->kids, &n->n_kids, &which);
    if (!rc)
        rc = expect_block_end(P);
    if (!rc)
        *out = n;
    return rc;
}

static kz_status parse_filter_block(struct parser *P, struct tmpl_node **out)
{
    static const char *const ends[] = {"endfilter", NULL};
    struct tmpl_node *n = NULL, *in = NULL;
    struct kz_slice which;
    kz_status rc = new_node(P, N_FILTER_BLOCK, cur(P)->line, &n);
    if (!rc)
        rc = new_node(P, N_BLOCK_INPUT, cur(P)->line, &in);
    if (rc)
        return rc;
    /* Reuse the filter-chain parser: pretend a '|' precedes the name. */
    n->a = in;
    do {
        struct tmpl_node *f = NULL;
        next(P); /* "filter" or '|' */
        rc = new_node(P, N_FILTER, cur(P)->line, &f);
        if (!rc)
            rc = parse_fname(P, &f->name);
        if (!rc && is_op(P, OP_LPAREN))
            rc = parse_call_args(P, f);
        if (rc)
            return rc;
        f->a = n->a;
        f->filter = tmpl_find_filter(f->name);
        n->a = f;
    } while (is_op(P, OP_PIPE));
    rc = expect_block_end(P);
    if (!rc)
        rc = parse_body(P, ends, &n->kids, &n->n_kids, &which);
    if (!rc)
        rc = expect_block_end(P);
    if (!rc)
        *out = n;
    return rc;
}

static int in_list(struct kz_slice s, const char *const *names)
{
    for (; names && *names; names++)
        if (kz_slice_eq(s, *names))
            return 1;
    return 0;
}

/* Statements until one of `ends` (a block tag whose name is in the list:
 * its name is consumed and returned in *which, the rest of the tag is left
 * for the caller) or the end of the template when ends is NULL. */
static kz_status parse_body(struct parser *P, const char *const *ends, struct tmpl_node ***out, size_t *n_out,
                            struct kz_slice *which)
{
    static const char *const unsupported[] = {"include", "extends", "block", "import", "from", "call",
                                              "autoescape", "do", NULL};
    static const char *const stray[] = {"endif", "endfor", "endset", "endmacro", "endwith", "endfilter",
                                        "endgeneration", "elif", "else", "endcall", "endblock", "endraw", NULL};
    struct nlist body = {0};
    static const struct kz_slice none = {NULL, 0};
    /* the opener's line: its "%}" is the token just before the body */
    int line0 = P->pos > 0 ? P->t[P->pos - 1].line : cur(P)->line;
    kz_status rc = enter(P);
    while (!rc) {
        const struct tmpl_tok *t = cur(P);
        struct tmpl_node *n = NULL;
        if (t->kind == TK_EOF) {
            if (ends) {
                /* name the closing tag the opener needs */
                const char *need = ends[0];
                for (const char *const *e = ends; *e; e++)
                    if (strncmp(*e, "end", 3) == 0)
                        need = *e;
                rc = kz_err_set(P->err, KZ_EPROTO, "template line %d: missing {%% %s %%} for the block opened here",
                                line0, need);
            }
            break;
        }
        if (t->kind == TK_TEXT) {
            rc = new_node(P, N_TEXT, t->line, &n);
            if (!rc)
                n->cval = tv_str(t->s.p, t->s.len);
            next(P);
        } else if (t->kind == TK_VAR_BEGIN) {
            rc = new_node(P, N_OUTPUT, t->line, &n);
            next(P);
            if (!rc)
                rc = parse_tuple(P, 0, &n->a);
            if (!rc && cur(P)->kind != TK_VAR_END)
                rc = unexpected(P, "'}}'");
            next(P);
        } else if (t->kind == TK_BLOCK_BEGIN) {
            next(P);
            const struct tmpl_tok *kw = cur(P);
            if (kw->kind != TK_NAME) {
                rc = unexpected(P, "a tag name");
                break;
            }
            if (in_list(kw->s, ends)) {
                *which = kw->s;
                next(P);
                break;
            }
            if (kz_slice_eq(kw->s, "if")) {
                rc = parse_if(P, &n);
            } else if (kz_slice_eq(kw->s, "for")) {
                rc = parse_for(P, &n);
            } else if (kz_slice_eq(kw->s, "set")) {
                rc = parse_set(P, &n);
            } else if (kz_slice_eq(kw->s, "macro")) {
                rc = parse_macro(P, &n);
            } else if (kz_slice_eq(kw->s, "with")) {
                rc = parse_with(P, &n);
            } else if (kz_slice_eq(kw->s, "filter")) {
                rc = parse_filter_block(P, &n);
            } else if (kz_slice_eq(kw->s, "generation")) {
                /* Hugging Face's assistant-mask marker: renders its body. */
                static const char *const gends[] = {"endgeneration", NULL};
                struct kz_slice w;
                rc = new_node(P, N_BODY, kw->line, &n);
                next(P);
                if (!rc)
                    rc = expect_block_end(P);
                if (!rc)
                    rc = parse_body(P, gends, &n->kids, &n->n_kids, &w);
                if (!rc)
                    rc = expect_block_end(P);
            } else if (kz_slice_eq(kw->s, "break") || kz_slice_eq(kw->s, "continue")) {
                int is_break = kz_slice_eq(kw->s, "break");
                if (P->loop_depth == 0) {
                    rc = fail(P, KZ_EPROTO, is_break ? "'break' outside a loop" : "'continue' outside a loop",
                              NULL, 0);
                    break;
                }
                rc = new_node(P, is_break ? N_BREAK : N_CONTINUE, kw->line, &n);
                next(P);
                if (!rc)
                    rc = expect_block_end(P);
            } else if (in_list(kw->s, unsupported)) {
                rc = fail(P, KZ_EUNSUPPORTED, "unsupported tag ", kw->s.p, kw->s.len);
            } else if (in_list(kw->s, stray)) {
                rc = fail(P, KZ_EPROTO, "unexpected tag ", kw->s.p, kw->s.len);
            } else {
                rc = fail(P, KZ_EPROTO, "unknown tag ", kw->s.p, kw->s.len);
            }
        } else {
            rc = unexpected(P, "text or a tag");
        }
        if (!rc && n)
            rc = nl_push(P, &body, n, none);
    }
    if (!rc)
        rc = nl_done(P, &body, out, n_out, NULL);
    nl_free(&body);
    P->depth--;
    return rc;
}

kz_status kz_template_compile(const char *src, size_t src_len, struct kz_template **out, struct kz_err *err)
{
    struct kz_template *t = NULL;
    struct tmpl_tok *toks = NULL;
    size_t n_toks = 0;
    kz_status rc;
    *out = NULL;
    if (src_len > KZ_TEMPLATE_MAX_SOURCE)
        return kz_err_set(err, KZ_ELIMIT, "template: %zu bytes is over the %zu-byte limit", src_len,
                          (size_t)KZ_TEMPLATE_MAX_SOURCE);
    t = kz_calloc(1, sizeof *t);
    if (!t)
        return kz_err_set(err, KZ_ENOMEM, "template: out of memory");
    /* Tokens and nodes grow linearly with the source; the cap only guards
     * against a bug, never against legitimate input. */
    tmpl_arena_init(&t->arena, 64 * src_len + ((size_t)1 << 20));
    t->src_len = src_len;
    rc = tmpl_lex(&t->arena, src, src_len, &toks, &n_toks, err);
    if (rc)
        goto out;
    struct parser P = {.a = &t->arena, .t = toks, .n = n_toks, .err = err};
    rc = new_node(&P, N_BODY, 1, &t->root);
    if (!rc)
        rc = parse_body(&P, NULL, &t->root->kids, &t->root->n_kids, NULL);
out:
    kz_free(toks);
    if (rc) {
        kz_template_free(t);
        return rc;
    }
    *out = t;
    return KZ_OK;
}

void kz_template_free(struct kz_template *t)
{
    if (!t)
        return;
    tmpl_arena_deinit(&t->arena);
    kz_free(t);
}
