/* SPDX-License-Identifier: MIT
 * Tokenizer internals shared by the files of src/engine/tok/ only.
 *
 * Layout: vocab.c loads and owns struct kz_tok and runs the special-token
 * split; unicode.c has code point helpers; pretok.c the pre-tokenizer
 * regex sets; spm.c, bpe.c, wpm.c the three algorithms, the first two
 * sharing their pair merging (merge.h). All of them only read struct
 * kz_tok after load, and keep their scratch in the caller's struct tok_ids
 * or local buffers, which is what makes encoding thread-safe.
 */
#ifndef KZ_TOK_INT_H
#define KZ_TOK_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/status.h"
#include "engine/tok/tok.h"

/* ---- token attributes (bit set; a token can be e.g. user-defined and
 * forced to control by its end-of-turn text) ------------------------------ */
#define TOK_ATTR_UNKNOWN 0x001u
#define TOK_ATTR_UNUSED 0x002u
#define TOK_ATTR_NORMAL 0x004u
#define TOK_ATTR_CONTROL 0x008u
#define TOK_ATTR_USER 0x010u /* user-defined */
#define TOK_ATTR_BYTE 0x020u
#define TOK_ATTR_LSTRIP 0x080u /* eat whitespace left of the token when cut out */
#define TOK_ATTR_RSTRIP 0x100u /* ... and right of it */
#define TOK_ATTR_EOG 0x200u    /* ends generation */

enum tok_kind { TOK_SPM, TOK_BPE, TOK_WPM };

struct tok_entry {
    uint32_t off;  /* into kz_tok.pool; text is followed by a NUL */
    uint32_t len;
    float score;   /* SPM merge priority; 0 elsewhere */
    uint32_t attr; /* TOK_ATTR_* */
};

/* Open-addressing hash set keyed by text. A slot holds the value + 1 in its
 * low 32 bits (0 = empty) and the key's full hash in the high 32, so most
 * probes settle without touching the text. Capacity is a power of two at
 * least twice the entries. */
struct tok_map {
    uint64_t *slots;
    uint32_t mask;
};

/* One BPE merge "first second": first lives at pool[off .. off+first_len),
 * second right after a separating space. */
struct tok_merge {
    uint32_t off;
    uint32_t first_len;
    uint32_t second_len;
};

/* How one pre-tokenizer stage cuts fragments. The three hand-written kinds
 * are the common regexes of byte-level BPE, spelled out for speed. */
enum tok_re_kind {
    TOK_RE_GPT2,   /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
    TOK_RE_LLAMA3, /* (?i:'s|..)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
    TOK_RE_QWEN2,  /* as LLAMA3 with \p{N} taken one at a time */
    TOK_RE_PCRE    /* anything else, compiled with PCRE2 */
};

#define TOK_MAX_STAGES 6

struct tok_stage {
    enum tok_re_kind kind;
    int collapsed;   /* PCRE: runs on one byte per code point (see pretok.c) */
    void *code;      /* pcre2_code_8 *, NULL for hand-written stages */
};

struct kz_tok {
    enum tok_kind kind;
    int32_t n_vocab;
    struct tok_entry *tok; /* (n_vocab) */
    char *pool;            /* token texts, then merge texts */
    struct tok_map map;    /* text -> id; the last id wins for duplicate texts */

    struct tok_merge *merges; /* (n_merges) in rank order */
    uint32_t n_merges;
    struct tok_map merge_map; /* (first, second) -> rank + 1 */

    int32_t bos, eos, eot, eom, unk, sep, pad;
    int add_bos, add_eos, add_space_prefix;
    int ignore_merges;          /* BPE: a word that is a token is not split */
    int lowercase, strip_accents; /* WordPiece normaliser */
    int max_token_len;          /* bytes */
    int32_t byte_tok[256];      /* SPM: id of <0xNN> (or the 1-byte token), -1 */

    int32_t *special;           /* (n_special) cut-out order: longest text first */
    size_t n_special;

    struct tok_stage stages[TOK_MAX_STAGES]; /* BPE pre-tokenizer */
    int n_stages;
    void *pcre_gctx;            /* pcre2_general_context_8 *, allocs via kz_malloc */
};

/* ---- growable id vector --------------------------------------------------- */
struct tok_ids {
    int32_t *p;
    size_t n, cap;
};
kz_status kz_tok__push(struct tok_ids *v, int32_t id);

/* Growable byte buffer. */
struct tok_buf {
    char *p;
    size_t len, cap;
};
kz_status kz_tok__buf_put(struct tok_buf *b, const void *p, size_t n);

/* Id of the token whose text is p[0..n), or -1. */
int32_t kz_tok__lookup(const struct kz_tok *t, const char *p, size_t n);
uint32_t kz_tok__hash(const char *p, size_t n, uint32_t h);
#define TOK_HASH_SEED 2166136261u

/* ---- unicode.c ------------------------------------------------------------ */
/* Category flags as the reference engine assigns them (from the Unicode
 * general category, plus the White_Space property as a separate bit). */
#define TOK_CPT_UNDEF 0x001u
#define TOK_CPT_NUMBER 0x002u
#define TOK_CPT_LETTER 0x004u
#define TOK_CPT_SEPARATOR 0x008u
#define TOK_CPT_MARK 0x010u
#define TOK_CPT_PUNCT 0x020u
#define TOK_CPT_SYMBOL 0x040u
#define TOK_CPT_CONTROL 0x080u
#define TOK_CPT_SPACE 0x100u

unsigned kz_tok__cpt_flags(uint32_t cp);
/* Decodes the code point at s[0..len) (len > 0) and sets *adv to the bytes
 * used. Malformed input yields U+FFFD and advances one byte; no check for
 * overlong forms or surrogates (the reference does none either). */
uint32_t kz_tok__utf8_decode(const char *s, size_t len, size_t *adv);
/* Writes 1..4 bytes; returns the count. cp must be <= 0x10FFFF. */
size_t kz_tok__utf8_encode(uint32_t cp, char *out);
/* Byte length a UTF-8 lead byte announces (1 for continuation bytes). */
size_t kz_tok__utf8_len(unsigned char lead);
/* Whole text to code points: *cps is a new array (kz_free) of *n entries. */
kz_status kz_tok__to_cpts(const char *s, size_t len, uint32_t **cps, size_t *n);
uint32_t kz_tok__tolower(uint32_t cp);
/* First code point of the canonical decomposition (cp itself if none). */
uint32_t kz_tok__nfd_first(uint32_t cp);
/* GPT-2 byte-level alphabet: writes the UTF-8 of the code point standing in
 * for byte b (1 or 2 bytes) and returns its length. */
size_t kz_tok__byte_char(unsigned char b, char *out);
/* Reverse: code point -> byte, or -1 when cp is not in the alphabet. */
int kz_tok__char_byte(uint32_t cp);

/* ---- pretok.c --------------------------------------------------------------- */
/* Sets the stages (and ignore_merges / add_bos defaults) for a pre-tokenizer
 * name; KZ_EUNSUPPORTED for names we do not know. */
kz_status kz_tok__pre_init(struct kz_tok *t, const char *name, size_t name_len, struct kz_err *err);
void kz_tok__pre_free(struct kz_tok *t);
/* Cuts cps[0..n) into words: *lens gets the word lengths in code points. */
kz_status kz_tok__pre_split(const struct kz_tok *t, const uint32_t *cps, size_t n, struct tok_ids *lens);

/* An integer that sorts the way a SentencePiece score sorts from high to
 * low (merge.h's heap takes the smallest key first): the bits of -score,
 * turned from sign and magnitude into two's complement. Exact for every
 * score, and four bytes, so a heap entry stays 16 bytes (a double key made
 * one 24 and SentencePiece encoding 7% slower). -0 counts as +0, as a
 * float compare has it; NaN sorts last. */
static inline int32_t tok_score_key(float score)
{
    if (score != score)
        return INT32_MAX;
    float f = score == 0 ? 0.0f : -score;
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i < 0 ? i ^ INT32_MAX : i; /* a negative f: more magnitude, less key */
}

/* ---- the algorithms: append ids for one plain-text fragment ---------------- */
kz_status kz_tok__spm(const struct kz_tok *t, const char *text, size_t len, struct tok_ids *out);
kz_status kz_tok__bpe(const struct kz_tok *t, const char *text, size_t len, struct tok_ids *out);
kz_status kz_tok__wpm(const struct kz_tok *t, const char *text, size_t len, struct tok_ids *out);

/* ---- merge lookup (bpe.c) ------------------------------------------------------ */
/* Rank of merging a+b, or -1. */
int32_t kz_tok__merge_rank(const struct kz_tok *t, const char *a, size_t a_len, const char *b, size_t b_len);

#endif
