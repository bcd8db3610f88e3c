/* SPDX-License-Identifier: MIT
 * Adjacent-pair merging, shared by the two BPE flavours: SentencePiece
 * (spm.c: the pair whose joined text is the best-scored token) and
 * byte-level BPE (bpe.c: the pair with the lowest merge rank). Only the key
 * differs, so it comes from the caller. Included by those two files only:
 * as static functions the key function is inlined into each copy, which
 * a call through a pointer into another file would prevent.
 *
 * Symbols form a doubly linked chain over the text. Candidate pairs wait in
 * a binary heap keyed by (key, left index). A merge leaves stale entries
 * behind rather than deleting them: an entry is stale when one side has
 * been merged away or has grown since it was queued, which the recorded
 * byte size of the pair reveals. O(n log n) in the text length.
 */
#ifndef KZ_TOK_MERGE_H
#define KZ_TOK_MERGE_H

#include "core/alloc.h"
#include "engine/tok/tok_int.h"

/* A symbol: a run of bytes of the text being merged. */
struct tok_sym {
    int32_t prev, next; /* neighbours in the live chain, -1 at the ends */
    uint32_t off, n;    /* bytes of the text; n == 0 once merged away */
};

/* The key of merging symbols l and r of text (the smallest merges first);
 * returns -1 when the two do not merge. */
typedef int (*tok_pair_key)(const void *ctx, const char *text, const struct tok_sym *s, int32_t l, int32_t r,
                            int32_t *key);

struct tok_pair {
    int32_t key;         /* a merge rank, or tok_score_key of a score */
    int32_t left, right; /* symbol indices */
    uint32_t size;       /* bytes of left+right when queued */
};

/* Scratch that one caller may keep across calls: zero to start,
 * tok_merger_free at the end. */
struct tok_merger {
    struct tok_sym *sym;
    size_t sym_cap;
    struct tok_pair *heap;
    size_t heap_n, heap_cap;
};

/* a comes out of the heap before b: smaller key, then the leftmost */
static inline int tok_pair_before(const struct tok_pair *a, const struct tok_pair *b)
{
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

static inline kz_status tok_pair_push(struct tok_merger *m, struct tok_pair v)
{
    if (m->heap_n == m->heap_cap) {
        size_t cap = m->heap_cap ? m->heap_cap * 2 : 64;
        struct tok_pair *p = kz_realloc(m->heap, cap * sizeof *p);
        if (!p)
            return KZ_ENOMEM;
        m->heap = p;
        m->heap_cap = cap;
    }
    size_t i = m->heap_n++;
    while (i > 0 && tok_pair_before(&v, &m->heap[(i - 1) / 2])) {
        m->heap[i] = m->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    m->heap[i] = v;
    return KZ_OK;
}

static inline struct tok_pair tok_pair_pop(struct tok_merger *m)
{
    struct tok_pair *h = m->heap, top = h[0], last = h[--m->heap_n];
    size_t i = 0, n = m->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && tok_pair_before(&h[c + 1], &h[c]))
            c++;
        if (!tok_pair_before(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (n)
        h[i] = last;
    return top;
}

/* Queues l+r when both exist and the caller's key says they merge. */
static inline kz_status tok_pair_offer(struct tok_merger *m, const char *text, int32_t l, int32_t r,
                                       tok_pair_key key, const void *ctx)
{
    int32_t k;
    if (l < 0 || r < 0 || key(ctx, text, m->sym, l, r, &k) != 0)
        return KZ_OK;
    return tok_pair_push(m, (struct tok_pair){k, l, r, m->sym[l].n + m->sym[r].n});
}

/* Splits text[0..len) into UTF-8 characters (a sequence cut short at the
 * end is one symbol) and merges the adjacent pair with the smallest key,
 * ties to the leftmost, until no pair merges. On KZ_OK m->sym[0..*n_out)
 * hold the symbols; the live ones (n > 0) form the chain from 0. */
static inline kz_status tok_merge(struct tok_merger *m, const char *text, size_t len, tok_pair_key key,
                                  const void *ctx, size_t *n_out)
{
    size_t n = 0;
    kz_status rc = KZ_OK;
    *n_out = 0;
    if (len > m->sym_cap) {
        struct tok_sym *s = kz_realloc(m->sym, len * sizeof *s);
        if (!s)
            return KZ_ENOMEM;
        m->sym = s;
        m->sym_cap = len;
    }
    struct tok_sym *s = m->sym;
    for (size_t off = 0; off < len; n++) {
        size_t k = kz_tok__utf8_len((unsigned char)text[off]);
        if (k > len - off)
            k = len - off;
        s[n] = (struct tok_sym){(int32_t)n - 1, off + k == len ? -1 : (int32_t)n + 1, (uint32_t)off, (uint32_t)k};
        off += k;
    }
    m->heap_n = 0;
    for (size_t i = 1; i < n && !rc; i++)
        rc = tok_pair_offer(m, text, (int32_t)i - 1, (int32_t)i, key, ctx);
    while (m->heap_n && !rc) {
        struct tok_pair p = tok_pair_pop(m);
        struct tok_sym *l = &s[p.left], *r = &s[p.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != p.size)
            continue; /* stale: a side was merged elsewhere meanwhile */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            s[r->next].prev = p.left;
        rc = tok_pair_offer(m, text, l->prev, p.left, key, ctx);
        if (!rc)
            rc = tok_pair_offer(m, text, p.left, l->next, key, ctx);
    }
    *n_out = n;
    return rc;
}

static inline void tok_merger_free(struct tok_merger *m)
{
    kz_free(m->sym);
    kz_free(m->heap);
    *m = (struct tok_merger){0};
}

#endif
