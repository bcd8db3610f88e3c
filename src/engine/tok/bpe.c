/* SPDX-License-Identifier: MIT
 * Byte-level BPE ("gpt2" vocabularies): the pre-tokenizer cuts the text into
 * words; each word's UTF-8 bytes are spelled in the GPT-2 byte alphabet and
 * split into characters; then the adjacent pair with the lowest merge rank
 * is merged (ties: leftmost) until no listed merge applies. A final symbol
 * that is no token falls back to its single-byte tokens.
 *
 * The merging is merge.h's, O(k log k) per word of k characters; merge ranks
 * are one hash probe each (see kz_tok__merge_rank).
 */
#include "core/alloc.h"
#include "engine/tok/merge.h"
#include "engine/tok/tok_int.h"

/* Scratch reused across the words of one call. */
struct work {
    struct tok_buf word; /* byte-level spelling of the current word */
    struct tok_merger m;
};

/* tok_pair_key for merge ranks */
static int rank_key(const void *ctx, const char *text, const struct tok_sym *s, int32_t l, int32_t r, int32_t *key)
{
    *key = kz_tok__merge_rank(ctx, text + s[l].off, s[l].n, text + s[r].off, s[r].n);
    return *key < 0 ? -1 : 0;
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
    rc = tok_merge(&w->m, p, len, rank_key, t, &n);
    for (size_t i = 0; i < n && !rc; i++) {
        const struct tok_sym *s = &w->m.sym[i];
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
    tok_merger_free(&w.m);
    kz_free(lens.p);
    kz_free(cps);
    return rc;
}
