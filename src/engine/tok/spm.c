/* SPDX-License-Identifier: MIT
 * SentencePiece-style BPE ("llama" vocabularies): start from single UTF-8
 * characters and keep merging the adjacent pair whose concatenation is the
 * vocabulary token with the highest score (ties: leftmost pair). Symbols
 * that end up as no token are emitted as byte tokens <0xNN>.
 *
 * Input is the already space-escaped text (' ' as U+2581). Work is
 * O(n log n) in the text length with a binary heap of candidate pairs.
 */
#include "core/alloc.h"
#include "engine/tok/tok_int.h"

struct sym {
    int32_t prev, next; /* neighbours in the live chain, -1 at the ends */
    uint32_t off, n;    /* bytes of the text; n == 0 once merged away */
};

struct pair {
    float score;
    int32_t left, right;
    uint32_t size; /* bytes of left+right when queued: a stale entry differs */
};

struct heap {
    struct pair *p;
    size_t n, cap;
};

/* a ranks before b: higher score, then the leftmost */
static int before(const struct pair *a, const struct pair *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
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

static kz_status try_pair(const struct kz_tok *t, const char *text, const struct sym *s, int32_t l, int32_t r,
                          struct heap *h)
{
    int32_t id;
    if (l < 0 || r < 0)
        return KZ_OK;
    id = kz_tok__lookup(t, text + s[l].off, s[l].n + s[r].n);
    if (id < 0)
        return KZ_OK;
    return heap_push(h, (struct pair){t->tok[id].score, l, r, s[l].n + s[r].n});
}

static kz_status emit_bytes(const struct kz_tok *t, const char *p, size_t n, struct tok_ids *out)
{
    kz_status rc = KZ_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        int32_t id = t->byte_tok[(unsigned char)p[i]];
        if (id < 0)
            id = t->unk; /* a vocabulary without byte tokens */
        if (id >= 0)
            rc = kz_tok__push(out, id);
    }
    return rc;
}

kz_status kz_tok__spm(const struct kz_tok *t, const char *text, size_t len, struct tok_ids *out)
{
    struct sym *s = NULL;
    struct heap h = {0};
    size_t n = 0;
    kz_status rc = KZ_OK;

    if (len == 0)
        return KZ_OK;
    s = kz_malloc(len * sizeof *s);
    if (!s)
        return KZ_ENOMEM;
    for (size_t off = 0; off < len; n++) {
        size_t k = kz_tok__utf8_len((unsigned char)text[off]);
        if (k > len - off)
            k = len - off;
        s[n] = (struct sym){(int32_t)n - 1, off + k == len ? -1 : (int32_t)n + 1, (uint32_t)off, (uint32_t)k};
        off += k;
    }
    for (size_t i = 1; i < n && !rc; i++)
        rc = try_pair(t, text, s, (int32_t)i - 1, (int32_t)i, &h);
    while (h.n && !rc) {
        struct pair p = heap_pop(&h);
        struct sym *l = &s[p.left], *r = &s[p.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != p.size)
            continue; /* one side changed since this pair was queued */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            s[r->next].prev = p.left;
        rc = try_pair(t, text, s, l->prev, p.left, &h);
        if (!rc)
            rc = try_pair(t, text, s, p.left, l->next, &h);
    }
    for (int32_t i = 0; i != -1 && !rc; i = s[i].next) {
        int32_t id = kz_tok__lookup(t, text + s[i].off, s[i].n);
        rc = id >= 0 ? kz_tok__push(out, id) : emit_bytes(t, text + s[i].off, s[i].n, out);
    }
    kz_free(h.p);
    kz_free(s);
    return rc;
}
