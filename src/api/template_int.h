/* SPDX-License-Identifier: MIT
 * Internals shared by the template_*.c files only: the bump arena, the
 * bounded string builder, runtime values, tokens and the syntax tree.
 *
 * Memory model: a compiled template owns one arena (tokens' decoded text,
 * nodes, literal values). A render owns another, capped, arena for every
 * value it creates; nothing in either is freed on its own, so values are
 * plain structs copied by value, and strings are (pointer, length) views
 * that may point into the caller's JSON, the template or the render arena.
 */
#ifndef KZ_TEMPLATE_INT_H
#define KZ_TEMPLATE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "api/template.h"
#include "core/slice.h"
#include "core/status.h"

/* ---- arena ------------------------------------------------------------- */

struct tmpl_chunk;

struct tmpl_arena {
    struct tmpl_chunk *head;
    size_t total;     /* bytes taken from kz_malloc so far */
    size_t cap;       /* ceiling on total */
    kz_status failed; /* KZ_ELIMIT or KZ_ENOMEM once an allocation was refused */
};

void tmpl_arena_init(struct tmpl_arena *a, size_t cap);
void tmpl_arena_deinit(struct tmpl_arena *a);
/* Zeroed, max-aligned memory that lives until deinit; NULL (and
 * a->failed set) when the cap or the allocator refuses. */
void *tmpl_arena_alloc(struct tmpl_arena *a, size_t size);
/* Copy of s[0..len) plus a NUL; NULL on failure. */
char *tmpl_arena_strndup(struct tmpl_arena *a, const char *s, size_t len);

/* ---- bounded string builder (kz_realloc-backed) ------------------------- */

struct tmpl_sb {
    char *p;          /* NUL-terminated when non-NULL */
    size_t len, cap;
    size_t max;       /* ceiling on len */
    kz_status failed; /* KZ_ELIMIT or KZ_ENOMEM after a refused append */
};

void tmpl_sb_init(struct tmpl_sb *b, size_t max);
void tmpl_sb_deinit(struct tmpl_sb *b);
/* Each returns 0, or -1 with b->failed set (the contents stay as they were). */
int tmpl_sb_put(struct tmpl_sb *b, const char *s, size_t n);
int tmpl_sb_putc(struct tmpl_sb *b, char c);
int tmpl_sb_puts(struct tmpl_sb *b, const char *s);
int tmpl_sb_putcp(struct tmpl_sb *b, uint32_t cp); /* UTF-8 encoding of cp */

/* ---- UTF-8 ----------------------------------------------------------- */

/* Decodes one character at p (n > 0 bytes left) into *cp and returns its
 * length. A byte that starts no valid sequence is one character whose code
 * point is the byte value, so lengths and offsets stay total on bad input. */
size_t tmpl_utf8_next(const char *p, size_t n, uint32_t *cp);
size_t tmpl_utf8_count(const char *p, size_t n);
/* Encodes cp (<= 0x10FFFF) into out (4 bytes); returns the length. */
size_t tmpl_utf8_encode(uint32_t cp, char *out);
/* Python's str.isspace() for one code point. */
int tmpl_is_space(uint32_t cp);

/* ---- values ------------------------------------------------------------ */

enum tmpl_vt {
    TV_UNDEF, /* Jinja's Undefined: prints as "", false, iterates as empty */
    TV_NONE,
    TV_BOOL,
    TV_INT,
    TV_FLOAT,
    TV_STR,
    TV_LIST, /* list or tuple */
    TV_DICT, /* dict or namespace() */
    TV_FUNC,
    TV_LOOP
};

/* Why a value is undefined, for the error raised when it is used. */
enum tmpl_undef_kind { TU_NAME, TU_ATTR, TU_ITEM, TU_OTHER };

struct tmpl_list;
struct tmpl_dict;
struct tmpl_func;
struct tmpl_loop;

struct tmpl_val {
    uint8_t t;    /* enum tmpl_vt */
    uint8_t kind; /* TV_UNDEF: enum tmpl_undef_kind */
    union {
        int b;
        int64_t i;
        double f;
        struct kz_slice s; /* TV_STR text; TV_UNDEF: the missing name */
        struct tmpl_list *l;
        struct tmpl_dict *d;
        struct tmpl_func *fn;
        struct tmpl_loop *loop;
    } u;
};

struct tmpl_list {
    size_t n;
    int is_tuple;
    struct tmpl_val *v; /* n */
};

struct tmpl_dict {
    size_t n, cap;
    int is_ns;          /* namespace(): the only object `set x.y = ...` may write */
    struct tmpl_val *k; /* cap */
    struct tmpl_val *v; /* cap */
};

enum tmpl_fn_kind { FN_GLOBAL, FN_METHOD, FN_MACRO, FN_LOOP_CYCLE };

struct tmpl_node;

struct tmpl_func {
    int kind;                    /* enum tmpl_fn_kind */
    struct kz_slice name;        /* global or method name */
    struct tmpl_val self;        /* FN_METHOD receiver, FN_LOOP_CYCLE loop */
    const struct tmpl_node *mac; /* FN_MACRO definition */
};

struct tmpl_loop {
    int64_t index0, length;
    const struct tmpl_list *items;
};

static inline struct tmpl_val tv_none(void) { struct tmpl_val v = {.t = TV_NONE}; return v; }
static inline struct tmpl_val tv_bool(int b) { struct tmpl_val v = {.t = TV_BOOL}; v.u.b = !!b; return v; }
static inline struct tmpl_val tv_int(int64_t i) { struct tmpl_val v = {.t = TV_INT}; v.u.i = i; return v; }
static inline struct tmpl_val tv_float(double f) { struct tmpl_val v = {.t = TV_FLOAT}; v.u.f = f; return v; }
static inline struct tmpl_val tv_str(const char *p, size_t len)
{
    struct tmpl_val v = {.t = TV_STR};
    v.u.s.p = p;
    v.u.s.len = len;
    return v;
}
static inline struct tmpl_val tv_undef(enum tmpl_undef_kind kind, struct kz_slice name)
{
    struct tmpl_val v = {.t = TV_UNDEF, .kind = (uint8_t)kind};
    v.u.s = name;
    return v;
}

/* Deepest nesting the recursive helpers below follow (self-referencing
 * namespaces make cycles); deeper structures print as "[...]", fail tojson
 * and compare unequal. */
#define TMPL_MAX_VALUE_DEPTH 200

/* Python's type name ("str", "NoneType", "Undefined", ...). */
const char *tmpl_type_name(const struct tmpl_val *v);
int tmpl_truthy(const struct tmpl_val *v);
/* Python ==, with Jinja's Undefined == Undefined. */
int tmpl_equal(const struct tmpl_val *a, const struct tmpl_val *b, int depth);
/* Python ordering: *cmp <0, 0, >0. Returns 0, or -1 when the types do not
 * order (str vs int, dict, None...). */
int tmpl_compare(const struct tmpl_val *a, const struct tmpl_val *b, int *cmp /* out */, int depth);
/* Appends str(v) / repr(v) as Python prints them. 0 or -1 (b->failed). */
int tmpl_str(struct tmpl_sb *b, const struct tmpl_val *v, int depth);
int tmpl_repr(struct tmpl_sb *b, const struct tmpl_val *v, int depth);
/* Python's repr(float) ("1.0", "1e+16", "0.0001", "inf"); buf >= 32 bytes. */
void tmpl_fmt_float(double f, char *buf, size_t size);

struct tmpl_json_opts {
    int ensure_ascii;
    int sort_keys;
    int indent_on;            /* indent given (even 0 or "") */
    struct kz_slice indent;   /* text of one level */
    struct kz_slice item_sep; /* ", " or "," */
    struct kz_slice key_sep;  /* ": " */
};
/* json.dumps(v) with opts. Returns KZ_OK, KZ_EINVAL with *bad set to the
 * value that has no JSON form, or b->failed. */
kz_status tmpl_tojson(struct tmpl_sb *b, const struct tmpl_val *v, const struct tmpl_json_opts *o,
                      int level, const struct tmpl_val **bad /* out */);

/* Converts a jansson value into arena values; strings are borrowed from j.
 * *text_bytes accumulates the bytes of every string seen. */
kz_status tmpl_from_json(struct tmpl_arena *a, const struct json_t *j, int depth,
                         struct tmpl_val *out /* out */, size_t *text_bytes);

/* Dict helpers: lookup by key value (linear; dicts here are small). */
struct tmpl_val *tmpl_dict_get(const struct tmpl_dict *d, const struct tmpl_val *key);
struct tmpl_val *tmpl_dict_get_str(const struct tmpl_dict *d, const char *key, size_t key_len);
/* Sets or adds key; 0, or -1 when the arena refuses. */
int tmpl_dict_set(struct tmpl_arena *a, struct tmpl_dict *d, struct tmpl_val key, struct tmpl_val val);

/* ---- tokens ------------------------------------------------------------ */

enum tmpl_tk {
    TK_EOF,
    TK_TEXT,        /* s: literal template text (whitespace control applied) */
    TK_VAR_BEGIN,   /* {{ */
    TK_VAR_END,     /* }} */
    TK_BLOCK_BEGIN, /* {% */
    TK_BLOCK_END,   /* %} */
    TK_NAME,        /* s */
    TK_STRING,      /* s: decoded text */
    TK_INT,         /* i */
    TK_FLOAT,       /* f */
    TK_OP           /* op */
};

enum tmpl_op {
    OP_NONE,
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_TILDE,
    OP_LBRACKET, OP_RBRACKET, OP_LPAREN, OP_RPAREN, OP_LBRACE, OP_RBRACE,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN,
    OP_ASSIGN, OP_DOT, OP_COLON, OP_PIPE, OP_COMMA, OP_SEMICOLON,
    OP_NEG, OP_POS /* unary, in nodes only */
};

struct tmpl_tok {
    uint8_t kind; /* enum tmpl_tk */
    uint8_t op;   /* enum tmpl_op */
    int line;
    struct kz_slice s;
    int64_t i;
    double f;
};

/* Splits src into tokens (*toks: kz_realloc'ed, kz_free) with Hugging
 * Face's whitespace settings applied to the text between tags. Token text
 * lives in `a`. Returns KZ_OK or KZ_EPROTO/KZ_ELIMIT/KZ_ENOMEM with err. */
kz_status tmpl_lex(struct tmpl_arena *a, const char *src, size_t len, struct tmpl_tok **toks /* out */,
                   size_t *n_toks /* out */, struct kz_err *err);

/* ---- syntax tree ------------------------------------------------------- */

struct tmpl_rt;
struct tmpl_args;
struct tmpl_node;

typedef kz_status (*tmpl_filter_fn)(struct tmpl_rt *rt, const struct tmpl_node *n, struct tmpl_val in,
                                    const struct tmpl_args *args, struct tmpl_val *out);
typedef kz_status (*tmpl_test_fn)(struct tmpl_rt *rt, const struct tmpl_node *n, const struct tmpl_val *v,
                                  const struct tmpl_args *args, int *result);

enum tmpl_nk {
    /* statements */
    N_TEXT,      /* cval */
    N_OUTPUT,    /* a */
    N_IF,        /* a cond, kids then, kids2 else */
    N_FOR,       /* c target, a iterable, b filter (or NULL), kids body, kids2 else */
    N_SET,       /* c target, a value */
    N_SET_BLOCK, /* c target, kids body */
    N_MACRO,     /* name; kw params, kids2 defaults (NULL entries); kids body */
    N_BREAK,
    N_CONTINUE,
    N_WITH,      /* kw names, kids2 values, kids body */
    N_FILTER_BLOCK, /* a: filter chain whose innermost operand is N_BLOCK_INPUT; kids body */
    N_BODY,      /* kids: a plain statement list (generation blocks, the root) */
    /* expressions */
    N_CONST,     /* cval */
    N_NAME,      /* name */
    N_ATTR,      /* a . name */
    N_ITEM,      /* a [ b ] */
    N_SLICE,     /* a [ b : c : d ] */
    N_CALL,      /* a ( kids, kw = kids2 ) */
    N_FILTER,    /* a | name ( kids, kw = kids2 ); fn */
    N_TEST,      /* a is [not] name ( kids ); fn; op = negated */
    N_UNARY,     /* op a */
    N_NOT,       /* not a */
    N_BINARY,    /* a op b */
    N_COMPARE,   /* a ops[0] kids[0] ops[1] kids[1] ... */
    N_AND,       /* a and b */
    N_OR,        /* a or b */
    N_COND,      /* a if b else c (c may be NULL) */
    N_LIST,      /* [ kids ] */
    N_TUPLE,     /* ( kids ) */
    N_DICT,      /* { kids : kids2 } */
    N_BLOCK_INPUT /* the rendered body of a filter block */
};

struct tmpl_node {
    uint8_t kind; /* enum tmpl_nk */
    uint8_t op;   /* enum tmpl_op, or the negation flag of N_TEST */
    int line;
    struct tmpl_val cval;
    struct kz_slice name;
    tmpl_filter_fn filter; /* N_FILTER; NULL: unknown (reported when evaluated) */
    tmpl_test_fn test;     /* N_TEST; NULL: unknown */
    struct tmpl_node *a, *b, *c, *d;
    struct tmpl_node **kids;
    size_t n_kids;
    struct tmpl_node **kids2;
    size_t n_kids2;
    struct kz_slice *kw; /* n_kids2 names (N_CALL/N_FILTER kwargs, N_MACRO/N_WITH names) */
    uint8_t *ops;        /* N_COMPARE: n_kids operators */
};

struct kz_template {
    struct tmpl_arena arena;
    struct tmpl_node *root; /* N_BODY */
    size_t src_len;
};

/* ---- runtime ----------------------------------------------------------- */

/* Most arguments a call, filter or test takes (positional + keyword). */
#define TMPL_MAX_ARGS 16

struct tmpl_args {
    size_t n;                /* positional */
    struct tmpl_val *pos;
    size_t n_kw;
    const struct kz_slice *kw;
    struct tmpl_val *kwv;
};

/* One frame of variables: the root (context + top-level set), one per loop
 * iteration, macro call and with block. Linear lookup: frames are small. */
struct tmpl_scope {
    struct tmpl_scope *parent;
    size_t n, cap;
    struct kz_slice *names; /* cap */
    struct tmpl_val *vals;  /* cap */
};

/* State of one render. */
struct tmpl_rt {
    struct tmpl_arena arena; /* every value made during the render */
    struct tmpl_sb *out;     /* where text goes (a macro or set block redirects it) */
    size_t max_output, max_memory;
    uint64_t steps, max_steps;
    int depth;  /* current evaluation nesting */
    int ctl;    /* pending break / continue */
    int failed; /* an error message has been written */
    struct tmpl_scope *scope, *root;
    struct kz_template_opts opts;
    struct kz_err *err;
    struct tmpl_val block_input; /* body text of the innermost filter block */
};

/* Filter / test by name; NULL when unknown (reported when evaluated, so a
 * template with an unsupported filter in a branch it never takes renders). */
tmpl_filter_fn tmpl_find_filter(struct kz_slice name);
tmpl_test_fn tmpl_find_test(struct kz_slice name);

/* Records "template line N: <message>" (first error wins) and returns s. */
kz_status tmpl_fail(struct tmpl_rt *rt, int line, kz_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* The error for a refused arena/builder allocation. */
kz_status tmpl_fail_alloc(struct tmpl_rt *rt, int line, kz_status s);
/* The error for using an undefined value (names what was missing). */
kz_status tmpl_fail_undef(struct tmpl_rt *rt, int line, const struct tmpl_val *v);

struct tmpl_arena *tmpl_rt_arena(struct tmpl_rt *rt);
size_t tmpl_rt_max_memory(const struct tmpl_rt *rt);
/* Counts one unit of work against max_steps; KZ_ELIMIT when spent. */
kz_status tmpl_rt_step(struct tmpl_rt *rt, int line);

/* Value builders in the render arena (NULL/-1 with tmpl_fail_alloc done). */
kz_status tmpl_new_str(struct tmpl_rt *rt, int line, const char *p, size_t len, struct tmpl_val *out);
kz_status tmpl_sb_to_str(struct tmpl_rt *rt, int line, struct tmpl_sb *b, struct tmpl_val *out);
kz_status tmpl_new_list(struct tmpl_rt *rt, int line, size_t n, struct tmpl_val *out);
kz_status tmpl_new_dict(struct tmpl_rt *rt, int line, struct tmpl_val *out);
/* str(v) as a string value (the value itself when it is one). */
kz_status tmpl_to_str(struct tmpl_rt *rt, int line, const struct tmpl_val *v, struct tmpl_val *out);
/* Items of an iterable as a list (str: characters, dict: keys, Undefined:
 * empty); KZ_EINVAL when v does not iterate. */
kz_status tmpl_iterate(struct tmpl_rt *rt, int line, const struct tmpl_val *v, struct tmpl_list **out);
/* Jinja's getattr / getitem: attribute or key, Undefined when absent. */
kz_status tmpl_getattr(struct tmpl_rt *rt, int line, const struct tmpl_val *obj, struct kz_slice name,
                       struct tmpl_val *out);
kz_status tmpl_getitem(struct tmpl_rt *rt, int line, const struct tmpl_val *obj, const struct tmpl_val *key,
                       struct tmpl_val *out);
/* Calls a filter or test by runtime name (map, select, selectattr). */
kz_status tmpl_call_test(struct tmpl_rt *rt, const struct tmpl_node *n, struct kz_slice name,
                         const struct tmpl_val *v, const struct tmpl_args *args, int *result);
/* Methods of str, dict and list values (template_filters.c). */
int tmpl_has_method(const struct tmpl_val *self, struct kz_slice name);
kz_status tmpl_call_method(struct tmpl_rt *rt, int line, const struct tmpl_val *self, struct kz_slice name,
                           const struct tmpl_args *args, struct tmpl_val *out);
/* Python's fmt % args (%s %r %d %i %f %x %%, flags, width, precision). */
kz_status tmpl_percent_format(struct tmpl_rt *rt, int line, struct kz_slice fmt, const struct tmpl_val *args,
                              struct tmpl_val *out);
/* Positional-or-keyword argument lookup: args->pos[idx] or kw `name`. */
const struct tmpl_val *tmpl_arg(const struct tmpl_args *args, size_t idx, const char *name);

#endif
