/* SPDX-License-Identifier: MIT
 * YAML text -> a tree of kz_cfg_node, through libyaml's event API.
 *
 * The event API (not yaml_parser_load) is used so that every limit holds
 * before memory is spent: an alias is refused when it is met, never
 * expanded, so a billion-laughs file costs nothing; nesting, key counts,
 * item counts and scalar sizes are checked as the events arrive.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "core/alloc.h"
#include "router/config_int.h"

/* ---- messages ----------------------------------------------------------- */

const char *kz_cfg__show(char *buf, size_t cap, const char *s)
{
    size_t n = 0, len = strlen(s);
    int cut = len > cap - 1;
    size_t keep = cut ? (cap > 4 ? cap - 4 : 0) : len;
    for (; n < keep; n++) {
        unsigned char ch = (unsigned char)s[n];
        buf[n] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    if (cut && cap > 4) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

/* Writes n's key path ("providers[1].price.input_per_mtok") into buf, with
 * `tail` (a key of n not yet attached) appended when given. */
static void node_path(const struct kz_cfg_node *n, const char *tail, char *buf, size_t cap)
{
    const struct kz_cfg_node *chain[KZ_CFG_MAX_DEPTH + 2];
    size_t depth = 0, used = 0;
    for (const struct kz_cfg_node *p = n; p && p->parent && depth < sizeof chain / sizeof *chain; p = p->parent)
        chain[depth++] = p;
    buf[0] = '\0';
    char shown[96];
    while (depth-- > 0 && used < cap) {
        const struct kz_cfg_node *p = chain[depth];
        int w;
        if (p->key)
            w = snprintf(buf + used, cap - used, "%s%s", used ? "." : "", kz_cfg__show(shown, sizeof shown, p->key));
        else
            w = snprintf(buf + used, cap - used, "[%zu]", p->index);
        if (w < 0)
            return;
        used += (size_t)w;
    }
    if (tail && used < cap)
        snprintf(buf + used, cap - used, "%s%s", used ? "." : "", kz_cfg__show(shown, sizeof shown, tail));
}

static kz_status failv(const struct kz_cfg_ctx *cx, int line, const struct kz_cfg_node *n, const char *tail,
                       kz_status s, const char *fmt, va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 0)))
#endif
    ;
static kz_status failv(const struct kz_cfg_ctx *cx, int line, const struct kz_cfg_node *n, const char *tail,
                       kz_status s, const char *fmt, va_list ap)
{
    if (!cx->err)
        return s;
    char path[256], msg[KZ_ERR_MSG_SIZE];
    node_path(n, tail, path, sizeof path);
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (path[0])
        return kz_err_set(cx->err, s, "%s:%d: %s: %s", cx->name, line, path, msg);
    return kz_err_set(cx->err, s, "%s:%d: %s", cx->name, line, msg);
}

kz_status kz_cfg__fail(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, kz_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kz_status rc = failv(cx, n ? n->line : 1, n, NULL, s, fmt, ap);
    va_end(ap);
    return rc;
}

kz_status kz_cfg__fail_key(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, kz_status s,
                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kz_status rc = failv(cx, n->key ? n->key_line : n->line, n, NULL, s, fmt, ap);
    va_end(ap);
    return rc;
}

/* For problems found before a node exists (a key, a stray document). */
static kz_status fail_at(const struct kz_cfg_ctx *cx, int line, const struct kz_cfg_node *n, const char *tail,
                         kz_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;
static kz_status fail_at(const struct kz_cfg_ctx *cx, int line, const struct kz_cfg_node *n, const char *tail,
                         kz_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kz_status rc = failv(cx, line, n, tail, s, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- the tree ----------------------------------------------------------- */

void kz_cfg__tree_free(struct kz_cfg_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_kids; i++)
        kz_cfg__tree_free(n->kids[i]);
    kz_free(n->kids);
    kz_free(n->key);
    kz_free(n->val);
    kz_free(n);
}

const struct kz_cfg_node *kz_cfg__get(const struct kz_cfg_node *m, const char *key)
{
    if (!m || m->kind != KZ_CFG_MAP)
        return NULL;
    for (size_t i = 0; i < m->n_kids; i++)
        if (strcmp(m->kids[i]->key, key) == 0)
            return m->kids[i];
    return NULL;
}

/* One open mapping or sequence, and for a mapping the key waiting for its value. */
struct frame {
    struct kz_cfg_node *node;
    char *key; /* owned until handed to the value node */
    int key_line;
};

struct builder {
    const struct kz_cfg_ctx *cx;
    struct kz_cfg_node *root;
    struct frame st[KZ_CFG_MAX_DEPTH];
    int depth;
    int docs;
};

static int line_of(const yaml_mark_t *m) { return m->line < 100000000 ? (int)m->line + 1 : 100000000; }

/* Adds a new node of `kind` where the parser is: as the root, the value of
 * the pending key, or the next item. The node belongs to the tree at once,
 * so one kz_cfg__tree_free(root) releases everything on any error. */
static kz_status attach(struct builder *b, enum kz_cfg_kind kind, int line, struct kz_cfg_node **out)
{
    struct kz_cfg_node *parent = b->depth ? b->st[b->depth - 1].node : NULL;
    if (parent && parent->kind == KZ_CFG_SEQ && parent->n_kids >= KZ_CFG_MAX_ITEMS)
        return fail_at(b->cx, line, parent, NULL, KZ_ELIMIT, "too many items (at most %d)", KZ_CFG_MAX_ITEMS);
    if (!parent && b->root)
        return fail_at(b->cx, line, NULL, NULL, KZ_EPROTO, "only one YAML document is allowed");
    struct kz_cfg_node *n = kz_calloc(1, sizeof *n);
    if (!n)
        return KZ_ENOMEM;
    n->kind = kind;
    n->line = line;
    if (!parent) {
        b->root = n;
        *out = n;
        return KZ_OK;
    }
    if (parent->n_kids == parent->cap_kids) {
        size_t cap = parent->cap_kids ? 2 * parent->cap_kids : 4;
        struct kz_cfg_node **k = kz_realloc(parent->kids, cap * sizeof *k);
        if (!k) {
            kz_free(n);
            return KZ_ENOMEM;
        }
        parent->kids = k;
        parent->cap_kids = cap;
    }
    n->parent = parent;
    if (parent->kind == KZ_CFG_MAP) {
        struct frame *f = &b->st[b->depth - 1];
        n->key = f->key;
        n->key_line = f->key_line;
        f->key = NULL;
    } else {
        n->index = parent->n_kids;
    }
    parent->kids[parent->n_kids++] = n;
    *out = n;
    return KZ_OK;
}

/* Anchors and tags change what a value means in ways this schema has no use
 * for; refusing them keeps one meaning per spelling. */
static kz_status no_props(struct builder *b, const struct kz_cfg_node *n, const yaml_char_t *anchor,
                             const yaml_char_t *tag)
{
    if (anchor)
        return kz_cfg__fail(b->cx, n, KZ_EUNSUPPORTED, "anchors are not supported");
    if (tag)
        return kz_cfg__fail(b->cx, n, KZ_EUNSUPPORTED, "tags are not supported");
    return KZ_OK;
}

static kz_status scalar_ok(struct builder *b, const struct kz_cfg_node *at, const char *tail, int line,
                           const yaml_event_t *ev)
{
    if (ev->data.scalar.length > KZ_CFG_MAX_SCALAR)
        return fail_at(b->cx, line, at, tail, KZ_ELIMIT, "value longer than %d bytes", KZ_CFG_MAX_SCALAR);
    if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length))
        return fail_at(b->cx, line, at, tail, KZ_EPROTO, "NUL bytes are not allowed");
    return KZ_OK;
}

/* A scalar in key position: checked and parked in the frame until its value comes. */
static kz_status take_key(struct builder *b, struct frame *f, const yaml_event_t *ev, int line)
{
    struct kz_cfg_node *m = f->node;
    if (ev->data.scalar.anchor || ev->data.scalar.tag)
        return fail_at(b->cx, line, m, NULL, KZ_EUNSUPPORTED, "anchors and tags are not supported");
    kz_status rc = scalar_ok(b, m, NULL, line, ev);
    if (rc)
        return rc;
    const char *key = (const char *)ev->data.scalar.value;
    for (size_t i = 0; i < m->n_kids; i++)
        if (strcmp(m->kids[i]->key, key) == 0)
            return fail_at(b->cx, line, m, key, KZ_EINVAL, "duplicate key (first at line %d)", m->kids[i]->key_line);
    if (m->n_kids >= KZ_CFG_MAX_KEYS)
        return fail_at(b->cx, line, m, NULL, KZ_ELIMIT, "too many keys (at most %d)", KZ_CFG_MAX_KEYS);
    f->key = kz_strndup(key, ev->data.scalar.length);
    if (!f->key)
        return KZ_ENOMEM;
    f->key_line = line;
    return KZ_OK;
}

static kz_status on_scalar(struct builder *b, const yaml_event_t *ev, int line)
{
    if (b->depth) {
        struct frame *f = &b->st[b->depth - 1];
        if (f->node->kind == KZ_CFG_MAP && !f->key)
            return take_key(b, f, ev, line);
    }
    struct kz_cfg_node *n;
    kz_status rc = attach(b, KZ_CFG_SCALAR, line, &n);
    if (rc)
        return rc;
    rc = no_props(b, n, ev->data.scalar.anchor, ev->data.scalar.tag);
    if (!rc)
        rc = scalar_ok(b, n, NULL, line, ev);
    if (rc)
        return rc;
    n->len = ev->data.scalar.length;
    n->val = kz_strndup((const char *)ev->data.scalar.value, n->len);
    if (!n->val)
        return KZ_ENOMEM;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    return KZ_OK;
}

static kz_status on_start(struct builder *b, const yaml_event_t *ev, int line)
{
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    if (b->depth) {
        struct frame *f = &b->st[b->depth - 1];
        if (f->node->kind == KZ_CFG_MAP && !f->key)
            return fail_at(b->cx, line, f->node, NULL, KZ_EUNSUPPORTED, "keys must be scalars");
    }
    if (b->depth == KZ_CFG_MAX_DEPTH)
        return fail_at(b->cx, line, b->st[b->depth - 1].node, NULL, KZ_ELIMIT, "nested deeper than %d levels",
                       KZ_CFG_MAX_DEPTH);
    struct kz_cfg_node *n;
    kz_status rc = attach(b, is_map ? KZ_CFG_MAP : KZ_CFG_SEQ, line, &n);
    if (rc)
        return rc;
    rc = is_map ? no_props(b, n, ev->data.mapping_start.anchor, ev->data.mapping_start.tag)
                : no_props(b, n, ev->data.sequence_start.anchor, ev->data.sequence_start.tag);
    if (rc)
        return rc;
    b->st[b->depth].node = n;
    b->st[b->depth].key = NULL;
    b->depth++;
    return KZ_OK;
}

static kz_status on_event(struct builder *b, const yaml_event_t *ev, int *done)
{
    int line = line_of(&ev->start_mark);
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev, line);
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        return on_start(b, ev, line);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        if (b->depth)
            b->depth--;
        return KZ_OK;
    case YAML_ALIAS_EVENT: {
        /* Refused where met: never expanded, so a billion laughs costs nothing. */
        const struct frame *f = b->depth ? &b->st[b->depth - 1] : NULL;
        return fail_at(b->cx, line, f ? f->node : NULL, f ? f->key : NULL, KZ_EUNSUPPORTED,
                       "aliases are not supported");
    }
    case YAML_DOCUMENT_START_EVENT:
        if (b->docs++)
            return fail_at(b->cx, line, NULL, NULL, KZ_EPROTO, "only one YAML document is allowed");
        return KZ_OK;
    case YAML_STREAM_END_EVENT:
        *done = 1;
        return KZ_OK;
    default:
        return KZ_OK;
    }
}

/* libyaml's own words and line; a reader error (bad UTF-8, control
 * characters) carries a byte offset instead of a line, so count to it. */
static kz_status syntax_error(const struct kz_cfg_ctx *cx, const yaml_parser_t *p, const char *text, size_t len)
{
    if (p->error == YAML_MEMORY_ERROR)
        return KZ_ENOMEM;
    int line = line_of(&p->problem_mark);
    if (p->error == YAML_READER_ERROR) {
        line = 1;
        for (size_t i = 0; i < p->problem_offset && i < len; i++)
            line += text[i] == '\n';
    }
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->context)
        return fail_at(cx, line, NULL, NULL, KZ_EPROTO, "%s (%s at line %d)", problem, p->context,
                       line_of(&p->context_mark));
    return fail_at(cx, line, NULL, NULL, KZ_EPROTO, "%s", problem);
}

kz_status kz_cfg__tree_build(const struct kz_cfg_ctx *cx, const char *text, size_t len, struct kz_cfg_node **root)
{
    struct builder b;
    memset(&b, 0, sizeof b);
    b.cx = cx;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return KZ_ENOMEM;
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    kz_status rc = KZ_OK;
    int done = 0;
    while (!done && !rc) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = syntax_error(cx, &p, text, len);
            break;
        }
        rc = on_event(&b, &ev, &done);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    for (int i = 0; i < b.depth; i++)
        kz_free(b.st[i].key);
    if (rc) {
        kz_cfg__tree_free(b.root);
        return rc;
    }
    *root = b.root;
    return KZ_OK;
}
