/* SPDX-License-Identifier: MIT
 * WordPiece ("bert" vocabularies). Normalisation first, the way BERT's basic
 * tokenizer does it: optionally map each code point to the first code point
 * of its canonical decomposition and drop combining marks (accent
 * stripping), drop control characters, lowercase, split on white space, and
 * make every punctuation mark, ASCII symbol and CJK ideograph a word of its
 * own. Then each word, prefixed with U+2581 (how the vocabulary marks a word
 * start), is cut greedily into the longest vocabulary tokens from the left;
 * a word with any uncovered rest becomes the single unknown token.
 */
#include "core/alloc.h"
#include "engine/tok/tok_int.h"

/* CJK ideograph blocks, as BERT lists them (including its 0x2B920 start). */
static int is_cjk(uint32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) ||
           (cp >= 0x2B920 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

#define WORD_MARK "\xe2\x96\x81" /* U+2581 */

/* Greedy longest-match of one word held in w (already prefixed). */
static kz_status word_pieces(const struct kz_tok *t, const struct tok_buf *w, struct tok_ids *out)
{
    size_t n = w->len, before = out->n;
    kz_status rc = KZ_OK;
    for (size_t i = 0; i < n && !rc;) {
        size_t j = i + (size_t)t->max_token_len + 1 < n ? i + (size_t)t->max_token_len + 1 : n;
        int32_t id = -1;
        for (; j > i; j--) {
            id = kz_tok__lookup(t, w->p + i, j - i);
            if (id >= 0)
                break;
        }
        if (id < 0) {
            out->n = before; /* part of the word is not covered: drop it all */
            break;
        }
        rc = kz_tok__push(out, id);
        i = j;
    }
    if (!rc && out->n == before && t->unk >= 0)
        rc = kz_tok__push(out, t->unk);
    return rc;
}

static kz_status finish(const struct kz_tok *t, struct tok_buf *w, struct tok_ids *out)
{
    kz_status rc = KZ_OK;
    if (w->len > 3)
        rc = word_pieces(t, w, out);
    w->len = 3; /* keep the U+2581 prefix for the next word */
    return rc;
}

kz_status kz_tok__wpm(const struct kz_tok *t, const char *text, size_t len, struct tok_ids *out)
{
    struct tok_buf w = {0};
    kz_status rc = kz_tok__buf_put(&w, WORD_MARK, 3);
    for (size_t i = 0; i < len && !rc;) {
        size_t adv;
        uint32_t cp = kz_tok__utf8_decode(text + i, len - i, &adv);
        unsigned f;
        char u[4];
        size_t nu;
        i += adv;
        if (t->strip_accents)
            cp = kz_tok__nfd_first(cp);
        f = kz_tok__cpt_flags(cp);
        if (f & TOK_CPT_SPACE) {
            rc = finish(t, &w, out);
            continue;
        }
        if (cp == 0 || cp == 0xFFFD || (f & TOK_CPT_CONTROL))
            continue;
        if (t->strip_accents && (f & TOK_CPT_MARK))
            continue;
        nu = kz_tok__utf8_encode(t->lowercase ? kz_tok__tolower(cp) : cp, u);
        if ((f & TOK_CPT_PUNCT) || (cp < 0x7F && (f & TOK_CPT_SYMBOL)) || is_cjk(cp)) {
            rc = finish(t, &w, out);
            if (!rc)
                rc = kz_tok__buf_put(&w, u, nu);
            if (!rc)
                rc = finish(t, &w, out);
        } else {
            rc = kz_tok__buf_put(&w, u, nu);
        }
    }
    if (!rc)
        rc = finish(t, &w, out);
    kz_free(w.p);
    return rc;
}
