/* SPDX-License-Identifier: MIT
 * Tokenizer: text <-> token ids for the vocabularies a GGUF file describes
 * under `tokenizer.ggml.*`.
 *
 *   tokenizer.ggml.model = "llama"  SentencePiece-style BPE over scores, with
 *                                    byte fallback (<0xNN>) and U+2581 for ' '
 *                          "gpt2"   byte-level BPE over ranked merges, words cut
 *                                    first by the pre-tokenizer that
 *                                    `tokenizer.ggml.pre` names
 *                          "bert"   WordPiece (greedy longest match) after
 *                                    BERT normalisation (lowercase, accents,
 *                                    punctuation and CJK split)
 *
 * Special tokens (token_type 2 unknown, 3 control, 4 user-defined) are cut out
 * of the input text before the model-specific algorithm runs, longest text
 * first. User-defined tokens are always cut out; control and unknown tokens
 * only when the caller asks for special-token parsing.
 *
 * Invariants: a loaded kz_tok owns copies of everything it uses (the GGUF
 * handle may be closed right after kz_tok_load), and it is immutable, so any
 * number of threads may encode and decode with one kz_tok at once.
 * Ids handed out are always in [0, kz_tok_n_vocab()).
 * See docs/internals/tok.md for the algorithms and their limits.
 */
#ifndef KZ_TOK_H
#define KZ_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

struct kz_gguf;
struct kz_tok;

/* Reads the tokenizer.ggml.* metadata of `g` and builds the lookup tables.
 * On success *out is a new tokenizer (free with kz_tok_free) that keeps no
 * pointer into g. Returns KZ_ENOTFOUND when the file has no vocabulary,
 * KZ_EUNSUPPORTED for a tokenizer model or pre-tokenizer name we do not
 * implement, KZ_EPROTO for inconsistent metadata (array lengths, types),
 * KZ_ENOMEM; *out is NULL and err says why on every failure. */
kz_status kz_tok_load(const struct kz_gguf *g, struct kz_tok **out, struct kz_err *err);

/* NULL is a no-op. */
void kz_tok_free(struct kz_tok *t);

int32_t kz_tok_n_vocab(const struct kz_tok *t);
/* Beginning / end of sequence ids, -1 when the vocabulary has none. */
int32_t kz_tok_bos(const struct kz_tok *t);
int32_t kz_tok_eos(const struct kz_tok *t);
/* Nonzero when `id` ends generation: eos, eot, eom and the end-of-turn tokens
 * recognised by their text (<|eot_id|>, <|im_end|>, <|endoftext|>, ...).
 * Out-of-range ids give 0. */
int kz_tok_is_eog(const struct kz_tok *t, int32_t id);

/* Tokenizes text[0..len) (any bytes; invalid UTF-8 is handled like the
 * reference engine does: SPM falls back to byte tokens, byte-level BPE and
 * WordPiece see U+FFFD).
 *   add_special:   prepend BOS when the vocabulary says so
 *                  (tokenizer.ggml.add_bos_token; default on for "llama",
 *                  off for "gpt2"), append EOS when add_eos_token is set;
 *                  WordPiece always wraps the ids in [CLS] ... [SEP].
 *   parse_special: text equal to a control/unknown token's text becomes that
 *                  single token; when 0 such text is tokenized as plain text.
 *                  (User-defined tokens are matched either way.)
 * On success *ids is a new array of *n_ids ids (kz_free it; non-NULL even when
 * *n_ids is 0). On failure (KZ_ENOMEM, KZ_ELIMIT for len > KZ_TOK_MAX_INPUT)
 * *ids is NULL and *n_ids 0. Thread-safe. */
#define KZ_TOK_MAX_INPUT ((size_t)1 << 28)
kz_status kz_tok_encode(const struct kz_tok *t, const char *text, size_t len, int add_special,
                        int parse_special, int32_t **ids /* out */, size_t *n_ids /* out */,
                        struct kz_err *err);

/* Writes the bytes token `id` contributes to output text into buf (at most
 * `size` bytes, no NUL added): SPM/WordPiece U+2581 becomes ' ', byte tokens
 * <0xNN> become that raw byte, byte-level BPE text is mapped back to bytes;
 * control and unknown tokens give nothing unless render_special is nonzero
 * (then their text). Returns the piece's full length: when that is larger than
 * `size`, buf holds only a prefix and the caller retries with a bigger one.
 * Out-of-range ids give 0. A piece may be part of a UTF-8 sequence; callers
 * that stream text must join pieces before validating. Thread-safe. */
size_t kz_tok_piece(const struct kz_tok *t, int32_t id, char *buf, size_t size, int render_special);

/* The raw vocabulary string of `id`, valid until kz_tok_free. *len gets its
 * length; a NUL byte follows it. NULL (and *len 0) when out of range. len
 * may be NULL. Tokens with an empty text in the file read "[EMPTY_<id>]". */
const char *kz_tok_text(const struct kz_tok *t, int32_t id, size_t *len /* out */);

#endif
