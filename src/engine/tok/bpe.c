/* SPDX-License-Identifier: MIT
 * Byte-level BPE ("gpt2" vocabularies): the pre-tokenizer cuts the text into
 * words; each word's UTF-8 bytes are spelled in the GPT-2 byte alphabet and
 * split into characters; then the adjacent pair with the lowest merge rank
 * is merged (ties: leftmost) until no listed merge applies. A final symbol
 * that is no token falls back to its single-byte tokens.
 *
 * Per word this is O(k log k) with a heap of candidate pairs; merge ranks are
 * one hash probe each (see kz_tok__merge_rank).
 */
#include "core/alloc.h"
#include "engine/tok/tok_int.h"

struct sym {
    int32_t prev, next;
    uint32_t off, n; /* bytes of the word; n == 0 once merged away */
};

struct pair {
    int32_t rank;
    int32_t left, right;
    uint32_t size; /* bytes of left+right when queued */
};

struct heap {
    struct pair *p;
    size_t n, cap;
};

/* a ranks before b: lower merge rank, then the leftmost */
static int before(const struct pair *a, const struct pair *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static kz_status heap_push(struct heap *h, struct pair v)
{
    size_t i;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct pair *p = kz_realloc(h->p, cap * sizeof *p);
        if (!p)
            return KZ_ENOMEM;
        h->p = p;
        h->cap = cap;
    }
    i = h->n++;
    while (i > 0 && before(&v, &h->p[(i - 1) / 2])) {
        h->p[i] = h->p[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->p[i] = v;
    return KZ_OK;
}

static struct pair heap_pop(struct heap *h)
{
    struct pair top = h->p[0], last = h->p[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && before(&h->p[c + 1], &h->p[c]))
            c++;
        if (!before(&h->p[c], &last))
            break;
        h->p[i] = h->p[c];
        i = c;
    }
    if (h->n)
        h->p[i] = last;
    return top;
}

/* Scratch reused across the words of one call. */
struct work {
    struct tok_buf word; /* byte-level spelling of the current word */
    struct sym *sym;
    size_t sym_cap;
    struct heap heap;
};

static kz_status add_pair(const struct kz_tok *t, struct work *w, int32_t l, int32_t r)
{
    const struct sym *s = w->sym;
    int32_t rank;
    if (l < 0 || r < 0)
        return KZ_OK;
    rank = kz_tok__merge_rank(t, w->word.p + s[l].off, s[l].n, w->word.p + s[r].off, s[r].n);
    if (rank < 0)
        return KZ_OK;
    return heap_push(&w->heap, (struct pair){rank, l, r, s[l].n + s[r].n});
}

static kz_status merge_word(const struct kz_tok *t, struct work *w, struct tok_ids *out)
{
    const char *p = w->word.p;
    size_t len = w->word.len, n = 0;
    kz_status rc = KZ_OK;
    int32_t id;

    if (t->ignore_merges) {
        id = kz_tok__lookup(t, p, len);
        if (id >= 0)
            return kz_tok__push(out, id);
    }
    if (len > w->sym_cap) {
        struct sym *s = kz_realloc(w->sym, len * sizeof *s);
        if (!s)
            return KZ_ENOMEM;
        w->sym = s;
        w->sym_cap = len;
    }
    for (size_t off = 0; off < len; n++) {
        size_t k = kz_tok__utf8_len((unsigned char)p[off]);
        if (k > len - off)
            k = len - off;
        w->sym[n] = (struct sym){(int32_t)n - 1, off + k == len ? -1 : (int32_t)n + 1, (uint32_t)off, (uint32_t)k};
        off += k;
    }
    w->heap.n = 0;
    for (size_t i = 1; i < n && !rc; i++)
        rc = add_pair(t, w, (int32_t)i - 1, (int32_t)i);
    while (w->heap.n && !rc) {
        struct pair pr = heap_pop(&w->heap);
        struct sym *l = &w->sym[pr.left], *r = &w->sym[pr.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != pr.size)
            continue; /* stale: a side was merged elsewhere meanwhile */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            w->sym[r->next].prev = pr.left;
        rc = add_pair(t, w, l->prev, pr.left);
        if (!rc)
            rc = add_pair(t, w, pr.left, l->next);
    }
    for (size_t i = 0; i < n && !rc; i++) {
        const struct sym *s = &w->sym[i];
        if (!s->n)
            continue;
        id = kz_tok__lookup(t, p + s->off, s->n);
        if (id >= 0) {
            rc = kz_tok__push(out, id);
            continue;
        }
        /* Fallback per byte of the spelling. Only 1-byte spellings can be
         * tokens, so characters spelled with 2 bytes are dropped, as the
         * reference does; with a complete byte alphabet this never runs. */
        for (uint32_t j = 0; j < s->n && !rc; j++) {
            id = kz_tok__lookup(t, p + s->off + j, 1);
            if (id >= 0)
                rc = kz_tok__push(out, id);
        }
    }
    return rc;
}

kz_status kz_tok__bpe(const struct kz_tok *t, const char *text, size_t len, struct tok_ids *out)
{
    uint32_t *cps = NULL;
    size_t n_cps = 0, start = 0;
    struct tok_ids lens = {0};
    struct work w = {0};
    kz_status rc;

    rc = kz_tok__to_cpts(text, len, &cps, &n_cps);
    if (!rc)
        rc = kz_tok__pre_split(t, cps, n_cps, &lens);
    for (size_t i = 0; i < lens.n && !rc; i++) {
        size_t end = start + (size_t)lens.p[i];
        w.word.len = 0;
        for (size_t k = start; k < end && !rc; k++) {
            char u[4], b[2];
            size_t nu = kz_tok__utf8_encode(cps[k], u);
            for (size_t j = 0; j < nu && !rc; j++)
                rc = kz_tok__buf_put(&w.word, b, kz_tok__byte_char((unsigned char)u[j], b));
        }
        if (!rc)
            rc = merge_word(t, &w, out);
        start = end;
    }
    kz_free(w.word.p);
    kz_free(w.sym);
    kz_free(w.heap.p);
    kz_free(lens.p);
    kz_free(cps);
    return rc;
}
