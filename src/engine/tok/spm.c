/* SPDX-License-Identifier: MIT
 * SentencePiece-style BPE ("llama" vocabularies): start from single UTF-8
 * characters and keep merging the adjacent pair whose concatenation is the
 * vocabulary token with the highest score (ties: leftmost pair). Symbols
 * that end up as no token are emitted as byte tokens <0xNN>.
 *
 * Input is the already space-escaped text (' ' as U+2581). The merging is
 * merge.h's, O(n log n) in the text length.
 */
#include "engine/tok/merge.h"
#include "engine/tok/tok_int.h"

/* tok_pair_key for token scores: the best-scored joined text first */
static int score_key(const void *ctx, const char *text, const struct tok_sym *s, int32_t l, int32_t r, int32_t *key)
{
    const struct kz_tok *t = ctx;
    int32_t id = kz_tok__lookup(t, text + s[l].off, s[l].n + s[r].n);
    if (id < 0)
        return -1;
    *key = tok_score_key(t->tok[id].score);
    return 0;
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
    struct tok_merger m = {0};
    size_t n = 0;
    if (len == 0)
        return KZ_OK;
    kz_status rc = tok_merge(&m, text, len, score_key, t, &n);
    for (int32_t i = 0; i != -1 && !rc; i = m.sym[i].next) {
        const struct tok_sym *s = &m.sym[i];
        int32_t id = kz_tok__lookup(t, text + s->off, s->n);
        rc = id >= 0 ? kz_tok__push(out, id) : emit_bytes(t, text + s->off, s->n, out);
    }
    tok_merger_free(&m);
    return rc;
}
