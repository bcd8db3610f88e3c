/* SPDX-License-Identifier: MIT
 * Vocabulary loading, lookup tables, the special-token split that runs
 * before every algorithm, and the public encode/decode entry points.
 *
 * The rules for which metadata wins, which ids are end-of-generation and
 * which texts are cut out as special tokens follow the reference engine;
 * the tokenizer tests compare against its output id for id.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/gguf.h"
#include "engine/tok/tok_int.h"

/* ---- small containers --------------------------------------------------------- */

kz_status kz_tok__push(struct tok_ids *v, int32_t id)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = kz_realloc(v->p, cap * sizeof *p);
        if (!p)
            return KZ_ENOMEM;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = id;
    return KZ_OK;
}

kz_status kz_tok__buf_put(struct tok_buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *q;
        while (cap < b->len + n)
            cap *= 2;
        q = kz_realloc(b->p, cap);
        if (!q)
            return KZ_ENOMEM;
        b->p = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    return KZ_OK;
}

/* FNV-1a; continues from h so a key can be hashed in pieces. */
uint32_t kz_tok__hash(const char *p, size_t n, uint32_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 16777619u;
    }
    return h;
}

static kz_status map_init(struct tok_map *m, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    m->slots = kz_calloc(cap, sizeof *m->slots);
    if (!m->slots)
        return KZ_ENOMEM;
    m->mask = (uint32_t)(cap - 1);
    return KZ_OK;
}

static const char *tok_str(const struct kz_tok *t, int32_t id) { return t->pool + t->tok[id].off; }

#define SLOT_VAL(s) ((uint32_t)(s))
#define SLOT_HASH(s) ((uint32_t)((s) >> 32))
#define SLOT(val, h) (((uint64_t)(h) << 32) | ((uint64_t)(val) + 1))

int32_t kz_tok__lookup(const struct kz_tok *t, const char *p, size_t n)
{
    uint32_t h = kz_tok__hash(p, n, TOK_HASH_SEED), i = h & t->map.mask;
    for (;; i = (i + 1) & t->map.mask) {
        uint64_t s = t->map.slots[i];
        int32_t id;
        if (!s)
            return -1;
        if (SLOT_HASH(s) != h)
            continue;
        id = (int32_t)(SLOT_VAL(s) - 1);
        if (t->tok[id].len == n && memcmp(tok_str(t, id), p, n) == 0)
            return id;
    }
}

/* Later ids replace earlier ones with the same text, as in the reference. */
static void map_put_token(struct kz_tok *t, int32_t id, uint32_t h)
{
    const char *p = tok_str(t, id);
    size_t n = t->tok[id].len;
    uint32_t i = h & t->map.mask;
    for (;; i = (i + 1) & t->map.mask) {
        uint64_t s = t->map.slots[i];
        int32_t o = (int32_t)(SLOT_VAL(s) - 1);
        if (!s || (SLOT_HASH(s) == h && t->tok[o].len == n && memcmp(tok_str(t, o), p, n) == 0)) {
            t->map.slots[i] = SLOT(id, h);
            return;
        }
    }
}

static uint32_t merge_hash(const char *a, size_t a_len, const char *b, size_t b_len)
{
    /* 0xFF never occurs in UTF-8, so it separates the halves unambiguously */
    return kz_tok__hash(b, b_len, kz_tok__hash("\xff", 1, kz_tok__hash(a, a_len, TOK_HASH_SEED)));
}

int32_t kz_tok__merge_rank(const struct kz_tok *t, const char *a, size_t a_len, const char *b, size_t b_len)
{
    uint32_t h, i;
    if (!t->n_merges)
        return -1;
    h = merge_hash(a, a_len, b, b_len);
    for (i = h & t->merge_map.mask;; i = (i + 1) & t->merge_map.mask) {
        uint64_t s = t->merge_map.slots[i];
        const struct tok_merge *m;
        if (!s)
            return -1;
        if (SLOT_HASH(s) != h)
            continue;
        m = &t->merges[SLOT_VAL(s) - 1];
        if (m->first_len == a_len && m->second_len == b_len && memcmp(t->pool + m->off, a, a_len) == 0 &&
            memcmp(t->pool + m->off + a_len + 1, b, b_len) == 0)
            return (int32_t)(SLOT_VAL(s) - 1);
    }
}

/* The first rank of a pair wins; later duplicates are ignored. */
static void merge_put(struct kz_tok *t, uint32_t rank, uint32_t h)
{
    const struct tok_merge *m = &t->merges[rank];
    const char *a = t->pool + m->off;
    uint32_t i;
    for (i = h & t->merge_map.mask;; i = (i + 1) & t->merge_map.mask) {
        uint64_t s = t->merge_map.slots[i];
        const struct tok_merge *o;
        if (!s) {
            t->merge_map.slots[i] = SLOT(rank, h);
            return;
        }
        if (SLOT_HASH(s) != h)
            continue;
        o = &t->merges[SLOT_VAL(s) - 1];
        if (o->first_len == m->first_len && o->second_len == m->second_len &&
            memcmp(t->pool + o->off, a, m->first_len + 1 + m->second_len) == 0)
            return;
    }
}

/* Builds the text -> id and merge -> rank tables once all texts are in the
 * pool. */
static void fill_tables(struct kz_tok *t)
{
    for (int32_t i = 0; i < t->n_vocab; i++)
        map_put_token(t, i, kz_tok__hash(tok_str(t, i), t->tok[i].len, TOK_HASH_SEED));
    for (uint32_t r = 0; r < t->n_merges; r++) {
        const struct tok_merge *m = &t->merges[r];
        const char *a = t->pool + m->off;
        /* a merge without a space can never apply, but it keeps its rank */
        if (m->first_len || m->second_len)
            merge_put(t, r, merge_hash(a, m->first_len, a + m->first_len + 1, m->second_len));
    }
}

/* ---- loading ----------------------------------------------------------------------- */

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_PRE "tokenizer.ggml.pre"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"
#define KEY_MERGES "tokenizer.ggml.merges"

/* tokenizer.ggml.token_type values */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

static uint32_t type_to_attr(int64_t ty)
{
    switch (ty) {
    case TT_NORMAL: return TOK_ATTR_NORMAL;
    case TT_UNKNOWN: return TOK_ATTR_UNKNOWN;
    case TT_CONTROL: return TOK_ATTR_CONTROL;
    case TT_USER: return TOK_ATTR_USER;
    case TT_UNUSED: return TOK_ATTR_UNUSED;
    case TT_BYTE: return TOK_ATTR_BYTE;
    default: return 0; /* undefined: rendered as nothing, never matched */
    }
}

/* Optional bool key: absent leaves *v alone; a wrong type is an error. */
static kz_status opt_bool(const struct kz_gguf *g, const char *key, int *v, struct kz_err *err)
{
    int b;
    kz_status rc = kz_gguf_get_bool(g, key, &b, err);
    if (rc == KZ_ENOTFOUND)
        return KZ_OK;
    if (!rc)
        *v = b;
    return rc;
}

/* Optional id key: out-of-range values keep the default (files carry
 * 0xFFFFFFFF for "none"); a default that is out of range becomes -1. */
static kz_status opt_id(const struct kz_tok *t, const struct kz_gguf *g, const char *key, int32_t *id,
                        struct kz_err *err)
{
    int64_t v;
    kz_status rc;
    if (*id >= t->n_vocab)
        *id = -1;
    rc = kz_gguf_get_int(g, key, &v, err);
    if (rc == KZ_ENOTFOUND)
        return KZ_OK;
    if (rc)
        return rc;
    if (v >= 0 && v < t->n_vocab)
        *id = (int32_t)v;
    return KZ_OK;
}

static int tok_is(const struct kz_tok *t, int32_t id, const char *s)
{
    size_t n = strlen(s);
    return t->tok[id].len == n && memcmp(tok_str(t, id), s, n) == 0;
}

static int tok_is_any(const struct kz_tok *t, int32_t id, const char *const *list)
{
    for (; *list; list++)
        if (tok_is(t, id, *list))
            return 1;
    return 0;
}

/* Token texts that identify end-of-turn and fill-in-the-middle tokens in
 * vocabularies whose metadata does not name them. */
static const char *const eot_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                        "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                                        "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>",
                                        "<end_of_utterance>", NULL};
static const char *const eom_texts[] = {"<|eom_id|>", NULL};
static const char *const fim_pre_texts[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                                            "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>",
                                            "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", NULL};
static const char *const fim_suf_texts[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                                            "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>", "<SUF>",
                                            "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>", NULL};
static const char *const fim_mid_texts[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                                            "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>",
                                            "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL};
static const char *const fim_pad_texts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL};
static const char *const fim_rep_texts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL};
static const char *const fim_sep_texts[] = {"<|file_sep|>", NULL};
static const char *const eog_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>",
                                        "<|flush|>", "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>",
                                        "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
                                        "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                                        "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>",
                                        "[e~[", NULL};

/* Could the text of id be one of the role texts above? They all start
 * with '<', '[', '_' or U+2581 and are short; checking that first keeps
 * the scan over a large vocabulary cheap. Duplicated texts only count for
 * the id the text maps to (the last one). */
static int role_candidate(const struct kz_tok *t, int32_t id)
{
    unsigned char c = (unsigned char)tok_str(t, id)[0];
    if (t->tok[id].len > 32 || !(c == '<' || c == '[' || c == '_' || c == 0xE2))
        return 0;
    return kz_tok__lookup(t, tok_str(t, id), t->tok[id].len) == id;
}

static int32_t find_text(const struct kz_tok *t, const char *s) { return kz_tok__lookup(t, s, strlen(s)); }

static void mark_eog(struct kz_tok *t, const struct kz_gguf *g)
{
    /* special roles recognised by text, when the metadata left them unset */
    struct {
        const char *key;
        const char *const *texts;
        int32_t id;
        int eog;
    } roles[] = {
        {"tokenizer.ggml.fim_pre_token_id", fim_pre_texts, -1, 0},
        {"tokenizer.ggml.fim_suf_token_id", fim_suf_texts, -1, 0},
        {"tokenizer.ggml.fim_mid_token_id", fim_mid_texts, -1, 0},
        {"tokenizer.ggml.fim_pad_token_id", fim_pad_texts, -1, 1},
        {"tokenizer.ggml.fim_rep_token_id", fim_rep_texts, -1, 1},
        {"tokenizer.ggml.fim_sep_token_id", fim_sep_texts, -1, 1},
    };
    const char *const deprecated[] = {"tokenizer.ggml.prefix_token_id", "tokenizer.ggml.suffix_token_id",
                                      "tokenizer.ggml.middle_token_id"};
    size_t n_roles = sizeof roles / sizeof roles[0];
    int32_t end_id = -1;
    int has_return = 0, has_call = 0, has_flush = 0, has_tool_response = 0;

    for (size_t r = 0; r < n_roles; r++) {
        (void)opt_id(t, g, roles[r].key, &roles[r].id, NULL);
        if (r < 3)
            (void)opt_id(t, g, deprecated[r], &roles[r].id, NULL);
    }
    for (int32_t id = 0; id < t->n_vocab; id++) {
        uint32_t *a = &t->tok[id].attr;
        if (!role_candidate(t, id))
            continue;
        /* a role token that is not control-typed is a conversion bug; treat
         * it as control so it is never produced from plain text */
        if (t->eot < 0 && tok_is_any(t, id, eot_texts)) {
            t->eot = id;
            *a |= TOK_ATTR_CONTROL;
        }
        if (t->eom < 0 && tok_is_any(t, id, eom_texts)) {
            t->eom = id;
            *a |= TOK_ATTR_CONTROL;
        }
        for (size_t r = 0; r < n_roles; r++)
            if (roles[r].id < 0 && tok_is_any(t, id, roles[r].texts)) {
                roles[r].id = id;
                *a |= TOK_ATTR_CONTROL;
            }
    }
    for (size_t r = 0; r < n_roles; r++)
        if (roles[r].eog && roles[r].id >= 0)
            t->tok[roles[r].id].attr |= TOK_ATTR_EOG;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (role_candidate(t, id) && tok_is_any(t, id, eog_texts))
            t->tok[id].attr |= TOK_ATTR_EOG | TOK_ATTR_CONTROL;
    }
    if (t->eos >= 0)
        t->tok[t->eos].attr |= TOK_ATTR_EOG;
    if (t->eot >= 0)
        t->tok[t->eot].attr |= TOK_ATTR_EOG;
    if (t->eom >= 0)
        t->tok[t->eom].attr |= TOK_ATTR_EOG;

    /* Harmony-style vocabularies end a message with <|end|> but the turn
     * with <|return|>/<|call|>: there <|end|> is ordinary. Likewise </s>
     * when <|tool_response> exists. */
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!(t->tok[id].attr & TOK_ATTR_EOG))
            continue;
        has_return |= tok_is(t, id, "<|return|>");
        has_call |= tok_is(t, id, "<|call|>") || tok_is(t, id, "<|calls|>");
        has_flush |= tok_is(t, id, "<|flush|>");
        has_tool_response |= tok_is(t, id, "<|tool_response>");
        if (tok_is(t, id, "<|end|>"))
            end_id = id;
    }
    if (end_id >= 0 && has_call && (has_return || has_flush))
        t->tok[end_id].attr = TOK_ATTR_USER;
    if (has_tool_response) {
        int32_t s = find_text(t, "</s>");
        if (s >= 0 && (t->tok[s].attr & TOK_ATTR_EOG))
            t->tok[s].attr = TOK_ATTR_NORMAL;
    }
}

static void set_attr(struct kz_tok *t, const char *text, uint32_t bit, int on)
{
    int32_t id = find_text(t, text);
    if (id < 0)
        return;
    if (on)
        t->tok[id].attr |= bit;
    else
        t->tok[id].attr &= ~bit;
}

/* qsort has no context argument in C11; the sort keys are copied instead. */
struct special_key {
    uint32_t len;
    int32_t id;
};

static int cmp_special_key(const void *a, const void *b)
{
    const struct special_key *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1; /* longest first */
    return x->id < y->id ? -1 : x->id > y->id;
}

static kz_status build_specials(struct kz_tok *t)
{
    struct special_key *keys = NULL;
    size_t n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->tok[id].attr & (TOK_ATTR_CONTROL | TOK_ATTR_USER | TOK_ATTR_UNKNOWN))
            n++;
    t->special = kz_malloc((n ? n : 1) * sizeof *t->special);
    keys = kz_malloc((n ? n : 1) * sizeof *keys);
    if (!t->special || !keys) {
        kz_free(keys);
        return KZ_ENOMEM;
    }
    n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->tok[id].attr & (TOK_ATTR_CONTROL | TOK_ATTR_USER | TOK_ATTR_UNKNOWN))
            keys[n++] = (struct special_key){t->tok[id].len, id};
    /* longer texts are cut out first so "<|im_end|>" is not split by a
     * shorter token it contains */
    qsort(keys, n, sizeof *keys, cmp_special_key);
    for (size_t i = 0; i < n; i++)
        t->special[i] = keys[i].id;
    t->n_special = n;
    kz_free(keys);
    return KZ_OK;
}

/* Strip flags some families set on their special tokens, keyed by name. */
static void name_attrs(struct kz_tok *t, const struct kz_gguf *g)
{
    struct kz_slice s = {0}, pre = {0}, arch = {0};
    char name[256];
    size_t n;
    (void)kz_gguf_get_str(g, "general.name", &s, NULL);
    (void)kz_gguf_get_str(g, KEY_PRE, &pre, NULL);
    (void)kz_gguf_get_str(g, "general.architecture", &arch, NULL);
    n = s.len < sizeof name - 1 ? s.len : sizeof name - 1;
    for (size_t i = 0; i < n; i++)
        name[i] = (char)((s.p[i] >= 'A' && s.p[i] <= 'Z') ? s.p[i] + 32 : s.p[i]);
    name[n] = '\0';

#define SLICE_HAS(sl, lit) ((sl).len >= sizeof(lit) - 1 && memmem((sl).p, (sl).len, lit, sizeof(lit) - 1))
    if (SLICE_HAS(pre, "jina-v2-de") || SLICE_HAS(pre, "jina-v2-es") || SLICE_HAS(pre, "jina-v2-code") ||
        SLICE_HAS(arch, "nomic-bert-moe") || SLICE_HAS(arch, "jina-bert-v3")) {
        set_attr(t, "<mask>", TOK_ATTR_LSTRIP, 1);
    } else if (strstr(name, "phi-3") || strstr(name, "phi3")) {
        /* Phi-3's chat tokens swallow the newline that follows them */
        for (size_t i = 0; i < t->n_special; i++)
            t->tok[t->special[i]].attr |= TOK_ATTR_RSTRIP;
        set_attr(t, "</s>", TOK_ATTR_RSTRIP, 1);
        set_attr(t, "<unk>", TOK_ATTR_RSTRIP, 0);
        set_attr(t, "<s>", TOK_ATTR_RSTRIP, 0);
        set_attr(t, "<|endoftext|>", TOK_ATTR_RSTRIP, 0);
    } else if (strstr(name, "modern-bert")) {
        set_attr(t, "[MASK]", TOK_ATTR_LSTRIP, 1);
    }
#undef SLICE_HAS
}

static kz_status load_merges(struct kz_tok *t, const struct kz_gguf *g, size_t merge_off, struct kz_err *err)
{
    int64_t kv = kz_gguf_find(g, KEY_MERGES);
    uint64_t n;
    size_t off = merge_off;
    kz_status rc;
    if (kv < 0)
        return kz_err_set(err, KZ_EPROTO, "%s: BPE vocabulary without %s", kz_gguf_name(g), KEY_MERGES);
    n = kz_gguf_kv_arr_len(g, (size_t)kv);
    t->merges = kz_malloc((n ? n : 1) * sizeof *t->merges);
    if (!t->merges)
        return KZ_ENOMEM;
    rc = map_init(&t->merge_map, n);
    if (rc)
        return rc;
    for (uint64_t i = 0; i < n; i++) {
        struct kz_slice m = kz_gguf_kv_arr_str(g, (size_t)kv, i);
        /* "first second"; the search starts at 1 so a leading space belongs
         * to the first half */
        const char *sp = m.len > 1 ? memchr(m.p + 1, ' ', m.len - 1) : NULL;
        struct tok_merge *mg = &t->merges[t->n_merges];
        memcpy(t->pool + off, m.p, m.len);
        t->pool[off + m.len] = '\0';
        mg->off = (uint32_t)off;
        mg->first_len = sp ? (uint32_t)(sp - m.p) : 0;
        mg->second_len = sp ? (uint32_t)(m.len - mg->first_len - 1) : 0;
        t->n_merges++;
        off += m.len + 1;
    }
    return KZ_OK;
}

enum { ARR_STR, ARR_INT, ARR_FLOAT };

/* Finds an optional array key and checks its element type and length; *kv
 * is -1 when absent. */
static kz_status check_arr(const struct kz_gguf *g, const char *key, int want, uint64_t min_n, int64_t *kv,
                           struct kz_err *err)
{
    enum kz_gguf_type et;
    uint64_t n;
    kz_status rc = kz_gguf_get_arr(g, key, &et, &n, err);
    *kv = -1;
    if (rc == KZ_ENOTFOUND)
        return KZ_OK;
    if (rc)
        return rc;
    if (want == ARR_STR ? et != KZ_GGUF_STRING
        : want == ARR_FLOAT ? (et != KZ_GGUF_F32 && et != KZ_GGUF_F64)
                            : (et == KZ_GGUF_STRING || et == KZ_GGUF_ARRAY || et == KZ_GGUF_F32 || et == KZ_GGUF_F64))
        return kz_err_set(err, KZ_EPROTO, "%s: %s has elements of type %s", kz_gguf_name(g), key,
                          kz_gguf_type_name(et));
    if (n < min_n)
        return kz_err_set(err, KZ_EPROTO, "%s: %s has %llu entries, need %llu", kz_gguf_name(g), key,
                          (unsigned long long)n, (unsigned long long)min_n);
    *kv = kz_gguf_find(g, key);
    return KZ_OK;
}

/* A byte-fallback token's text must be exactly "<0x" two hex digits ">". */
static int is_byte_text(const char *p, size_t len)
{
    return len == 6 && memcmp(p, "<0x", 3) == 0 && isxdigit((unsigned char)p[3]) &&
           isxdigit((unsigned char)p[4]) && p[5] == '>';
}

kz_status kz_tok_load(const struct kz_gguf *g, struct kz_tok **out, struct kz_err *err)
{
    struct kz_tok *t = NULL;
    struct kz_slice model = {0}, pre = {0};
    int64_t kv_tok, kv_score = -1, kv_type = -1, kv_merges = -1;
    uint64_t n;
    size_t pool_size = 0;
    kz_status rc;

    *out = NULL;
    rc = kz_gguf_get_str(g, KEY_MODEL, &model, err);
    if (rc)
        goto out;
    t = kz_calloc(1, sizeof *t);
    if (!t) {
        rc = KZ_ENOMEM;
        goto out;
    }
    if (kz_slice_eq(model, "llama")) {
        t->kind = TOK_SPM;
        t->bos = 1, t->eos = 2, t->unk = 0, t->sep = -1, t->pad = -1;
        t->add_bos = 1, t->add_space_prefix = 1;
    } else if (kz_slice_eq(model, "gpt2")) {
        t->kind = TOK_BPE;
        /* the reference defaults both to 11 (Falcon's <|endoftext|>) */
        t->bos = 11, t->eos = 11, t->unk = -1, t->sep = -1, t->pad = -1;
    } else if (kz_slice_eq(model, "bert")) {
        t->kind = TOK_WPM;
        t->bos = 101, t->eos = -1, t->unk = 100, t->sep = 102, t->pad = 0;
        t->add_bos = 1;
    } else {
        rc = kz_err_set(err, KZ_EUNSUPPORTED, "%s: tokenizer model '%.*s' is not supported", kz_gguf_name(g),
                        (int)model.len, model.p);
        goto out;
    }
    t->eot = t->eom = -1;
    t->lowercase = t->strip_accents = 1;

    rc = check_arr(g, KEY_TOKENS, ARR_STR, 1, &kv_tok, err);
    if (!rc && kv_tok < 0)
        rc = kz_err_set(err, KZ_ENOTFOUND, "%s: no %s", kz_gguf_name(g), KEY_TOKENS);
    if (rc)
        goto out;
    n = kz_gguf_kv_arr_len(g, (size_t)kv_tok);
    if (n >= INT32_MAX) {
        rc = kz_err_set(err, KZ_ELIMIT, "%s: %llu tokens", kz_gguf_name(g), (unsigned long long)n);
        goto out;
    }
    t->n_vocab = (int32_t)n;
    rc = check_arr(g, KEY_SCORES, ARR_FLOAT, n, &kv_score, err);
    if (!rc)
        rc = check_arr(g, KEY_TYPES, ARR_INT, n, &kv_type, err);
    if (!rc && t->kind == TOK_BPE)
        rc = check_arr(g, KEY_MERGES, ARR_STR, 0, &kv_merges, err);
    if (rc)
        goto out;

    /* one pool for token texts (each NUL-terminated) and merge texts */
    for (uint64_t i = 0; i < n; i++) {
        size_t len = kz_gguf_kv_arr_str(g, (size_t)kv_tok, i).len;
        pool_size += (len ? len : 24) + 1;
    }
    if (kv_merges >= 0)
        for (uint64_t i = 0; i < kz_gguf_kv_arr_len(g, (size_t)kv_merges); i++)
            pool_size += kz_gguf_kv_arr_str(g, (size_t)kv_merges, i).len + 1;
    if (pool_size >= UINT32_MAX) {
        rc = kz_err_set(err, KZ_ELIMIT, "%s: vocabulary text is %zu bytes", kz_gguf_name(g), pool_size);
        goto out;
    }
    t->pool = kz_malloc(pool_size ? pool_size : 1);
    t->tok = kz_calloc((size_t)n, sizeof *t->tok);
    if (!t->pool || !t->tok) {
        rc = KZ_ENOMEM;
        goto out;
    }
    rc = map_init(&t->map, (size_t)n);
    if (rc)
        goto out;
    {
        size_t off = 0;
        for (uint64_t i = 0; i < n; i++) {
            struct kz_slice s = kz_gguf_kv_arr_str(g, (size_t)kv_tok, i);
            struct tok_entry *e = &t->tok[i];
            e->off = (uint32_t)off;
            if (s.len) {
                memcpy(t->pool + off, s.p, s.len);
                e->len = (uint32_t)s.len;
            } else {
                /* an empty text would match everywhere; give it a name */
                e->len = (uint32_t)snprintf(t->pool + off, 24, "[EMPTY_%llu]", (unsigned long long)i);
            }
            t->pool[off + e->len] = '\0';
            off += (s.len ? s.len : 24) + 1;
            e->score = kv_score >= 0 ? (float)kz_gguf_kv_arr_float(g, (size_t)kv_score, i) : 0.0f;
            e->attr = kv_type >= 0 ? type_to_attr(kz_gguf_kv_arr_int(g, (size_t)kv_type, i)) : TOK_ATTR_NORMAL;
            if ((e->attr & TOK_ATTR_BYTE) && !is_byte_text(t->pool + e->off, e->len)) {
                rc = kz_err_set(err, KZ_EPROTO, "%s: token %llu is a byte token but its text '%.16s' is not <0xNN>",
                                kz_gguf_name(g), (unsigned long long)i, t->pool + e->off);
                goto out;
            }
            if ((int)e->len > t->max_token_len)
                t->max_token_len = (int)e->len;
        }
        if (t->kind == TOK_BPE)
            rc = load_merges(t, g, off, err);
        if (rc)
            goto out;
        fill_tables(t);
    }

    if (t->kind == TOK_BPE) {
        rc = kz_gguf_get_str(g, KEY_PRE, &pre, err);
        if (rc == KZ_ENOTFOUND || (!rc && pre.len == 0)) {
            pre.p = "default";
            pre.len = 7;
            rc = KZ_OK;
        }
        if (!rc)
            rc = kz_tok__pre_init(t, pre.p, pre.len, err);
        if (rc)
            goto out;
        if (kz_slice_eq(pre, "glm4") || kz_slice_eq(pre, "chatglm-bpe"))
            t->bos = -1;
    }
    rc = opt_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err);
    if (!rc)
        rc = opt_id(t, g, "tokenizer.ggml.bos_token_id", &t->bos, err);
    if (!rc)
        rc = opt_id(t, g, "tokenizer.ggml.eos_token_id", &t->eos, err);
    if (!rc)
        rc = opt_id(t, g, "tokenizer.ggml.eot_token_id", &t->eot, err);
    if (!rc)
        rc = opt_id(t, g, "tokenizer.ggml.eom_token_id", &t->eom, err);
    if (!rc)
        rc = opt_id(t, g, "tokenizer.ggml.unknown_token_id", &t->unk, err);
    if (!rc)
        rc = opt_id(t, g, "tokenizer.ggml.seperator_token_id", &t->sep, err);
    if (!rc)
        rc = opt_id(t, g, "tokenizer.ggml.padding_token_id", &t->pad, err);
    if (!rc)
        rc = opt_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos, err);
    if (!rc)
        rc = opt_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos, err);
    if (!rc)
        rc = opt_bool(g, "tokenizer.ggml.normalizer.lowercase", &t->lowercase, err);
    if (rc)
        goto out;
    t->strip_accents = t->lowercase;
    rc = opt_bool(g, "tokenizer.ggml.normalizer.strip_accents", &t->strip_accents, err);
    if (rc)
        goto out;

    mark_eog(t, g);
    rc = build_specials(t);
    if (rc)
        goto out;
    name_attrs(t, g);

    for (int b = 0; b < 256; b++) {
        char hex[7];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        t->byte_tok[b] = find_text(t, hex);
        if (t->byte_tok[b] < 0) {
            char c = (char)b;
            t->byte_tok[b] = kz_tok__lookup(t, &c, 1);
        }
    }
    *out = t;
    t = NULL;
out:
    if (rc && err && !strstr(err->msg, kz_gguf_name(g)))
        kz_err_prefix(err, kz_gguf_name(g));
    kz_tok_free(t);
    return rc;
}

void kz_tok_free(struct kz_tok *t)
{
    if (!t)
        return;
    kz_tok__pre_free(t);
    kz_free(t->tok);
    kz_free(t->pool);
    kz_free(t->map.slots);
    kz_free(t->merges);
    kz_free(t->merge_map.slots);
    kz_free(t->special);
    kz_free(t);
}

int32_t kz_tok_n_vocab(const struct kz_tok *t) { return t->n_vocab; }
int32_t kz_tok_bos(const struct kz_tok *t) { return t->bos; }
int32_t kz_tok_eos(const struct kz_tok *t) { return t->eos; }

int kz_tok_is_eog(const struct kz_tok *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab && (t->tok[id].attr & TOK_ATTR_EOG) != 0;
}

const char *kz_tok_text(const struct kz_tok *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = t->tok[id].len;
    return tok_str(t, id);
}

/* ---- special-token split ---------------------------------------------------------- */

/* A piece of the input: plain text [off, off+len) when id < 0, else a token. */
struct frag {
    size_t off, len;
    int32_t id;
};

struct frags {
    struct frag *p;
    size_t n, cap;
};

static kz_status frag_push(struct frags *v, size_t off, size_t len, int32_t id)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        struct frag *p = kz_realloc(v->p, cap * sizeof *p);
        if (!p)
            return KZ_ENOMEM;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = (struct frag){off, len, id};
    return KZ_OK;
}

static int is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Cuts every special token's text out of the plain-text fragments, longest
 * token first. User-defined tokens are always cut; control and unknown ones
 * only with parse_special. */
static kz_status split_special(const struct kz_tok *t, const char *text, size_t len, int parse_special,
                               struct frags *cur)
{
    struct frags nxt = {0};
    const unsigned char *u = (const unsigned char *)text;
    /* Byte pairs (and bytes) present in the input. A token whose first two
     * bytes never occur cannot match, which settles almost all of the
     * thousands of special tokens some vocabularies have without a search. */
    uint64_t pairs[65536 / 64], bytes[256 / 64];
    kz_status rc = KZ_OK;

    cur->n = 0;
    if (len == 0)
        return KZ_OK;
    rc = frag_push(cur, 0, len, -1);
    if (t->n_special) {
        memset(pairs, 0, sizeof pairs);
        memset(bytes, 0, sizeof bytes);
        for (size_t i = 0; i < len; i++) {
            unsigned pr = (unsigned)u[i] << 8 | (i + 1 < len ? u[i + 1] : 0);
            bytes[u[i] / 64] |= (uint64_t)1 << (u[i] % 64);
            pairs[pr / 64] |= (uint64_t)1 << (pr % 64);
        }
    }
    for (size_t si = 0; si < t->n_special && !rc; si++) {
        int32_t id = t->special[si];
        const struct tok_entry *e = &t->tok[id];
        const char *s = tok_str(t, id);
        const unsigned char *su = (const unsigned char *)s;
        unsigned pr = (unsigned)su[0] << 8 | su[1]; /* su[1] is the NUL for 1-byte texts */
        if (!parse_special && (e->attr & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)))
            continue;
        if (e->len > len)
            continue;
        if (e->len == 1 ? !(bytes[su[0] / 64] >> (su[0] % 64) & 1) : !(pairs[pr / 64] >> (pr % 64) & 1))
            continue;
        if (!memmem(text, len, s, e->len))
            continue; /* the common case: this token is nowhere in the input */
        nxt.n = 0;
        for (size_t fi = 0; fi < cur->n && !rc; fi++) {
            struct frag f = cur->p[fi];
            if (f.id >= 0) {
                rc = frag_push(&nxt, f.off, f.len, f.id);
                continue;
            }
            while (!rc) {
                const char *m = f.len >= e->len ? memmem(text + f.off, f.len, s, e->len) : NULL;
                size_t left_len, right_off, right_len;
                if (!m) {
                    if (f.len)
                        rc = frag_push(&nxt, f.off, f.len, -1);
                    break;
                }
                left_len = (size_t)(m - (text + f.off));
                if (e->attr & TOK_ATTR_LSTRIP)
                    while (left_len && is_ascii_space(text[f.off + left_len - 1]))
                        left_len--;
                if (left_len)
                    rc = frag_push(&nxt, f.off, left_len, -1);
                if (!rc)
                    rc = frag_push(&nxt, 0, 0, id);
                right_off = (size_t)(m - text) + e->len;
                right_len = f.off + f.len - right_off;
                if (e->attr & TOK_ATTR_RSTRIP)
                    while (right_len && is_ascii_space(text[right_off])) {
                        right_off++;
                        right_len--;
                    }
                f.off = right_off;
                f.len = right_len;
            }
        }
        {
            struct frags sw = *cur;
            *cur = nxt;
            nxt = sw;
        }
    }
    kz_free(nxt.p);
    return rc;
}

/* ---- encode / decode ------------------------------------------------------------- */

/* SPM: optional leading space, then ' ' -> U+2581. */
static kz_status spm_fragment(const struct kz_tok *t, const char *p, size_t n, int prefix, struct tok_buf *b,
                              struct tok_ids *out)
{
    kz_status rc = KZ_OK;
    b->len = 0;
    if (prefix)
        rc = kz_tok__buf_put(b, "\xe2\x96\x81", 3);
    for (size_t i = 0; i < n && !rc; i++)
        rc = p[i] == ' ' ? kz_tok__buf_put(b, "\xe2\x96\x81", 3) : kz_tok__buf_put(b, p + i, 1);
    if (!rc)
        rc = kz_tok__spm(t, b->p, b->len, out);
    return rc;
}

kz_status kz_tok_encode(const struct kz_tok *t, const char *text, size_t len, int add_special, int parse_special,
                        int32_t **ids, size_t *n_ids, struct kz_err *err)
{
    struct frags fr = {0};
    struct tok_ids out = {0};
    struct tok_buf buf = {0};
    int prev_special = 1; /* SPM: the start counts as "after a special token" */
    kz_status rc;

    *ids = NULL;
    *n_ids = 0;
    if (len > KZ_TOK_MAX_INPUT) {
        rc = kz_err_set(err, KZ_ELIMIT, "input of %zu bytes is over the tokenizer limit", len);
        goto out;
    }
    rc = split_special(t, text, len, parse_special, &fr);
    if (rc)
        goto out;
    if (add_special && t->bos >= 0 && (t->kind == TOK_WPM || t->add_bos))
        rc = kz_tok__push(&out, t->bos);
    for (size_t i = 0; i < fr.n && !rc; i++) {
        const struct frag *f = &fr.p[i];
        if (f->id >= 0) {
            rc = kz_tok__push(&out, f->id);
            prev_special = 1;
            continue;
        }
        switch (t->kind) {
        case TOK_SPM:
            rc = spm_fragment(t, text + f->off, f->len, t->add_space_prefix && prev_special, &buf, &out);
            break;
        case TOK_BPE: rc = kz_tok__bpe(t, text + f->off, f->len, &out); break;
        case TOK_WPM: rc = kz_tok__wpm(t, text + f->off, f->len, &out); break;
        }
        prev_special = 0;
    }
    if (!rc && add_special) {
        if (t->kind == TOK_WPM && t->sep >= 0)
            rc = kz_tok__push(&out, t->sep);
        else if (t->kind != TOK_WPM && t->add_eos && t->eos >= 0)
            rc = kz_tok__push(&out, t->eos);
    }
    if (!rc && !out.p) {
        /* callers always get an array to free, even an empty one */
        rc = kz_tok__push(&out, 0);
        out.n = 0;
    }
    if (rc)
        goto out;
    *ids = out.p;
    *n_ids = out.n;
    out.p = NULL;
out:
    if (rc == KZ_ENOMEM)
        kz_err_set(err, rc, "out of memory while tokenizing %zu bytes", len);
    kz_free(out.p);
    kz_free(fr.p);
    kz_free(buf.p);
    return rc;
}

static size_t put(char *buf, size_t size, const char *p, size_t n)
{
    if (n <= size && n)
        memcpy(buf, p, n);
    return n;
}

size_t kz_tok_piece(const struct kz_tok *t, int32_t id, char *buf, size_t size, int render_special)
{
    const struct tok_entry *e;
    const char *s;
    if (id < 0 || id >= t->n_vocab)
        return 0;
    e = &t->tok[id];
    s = tok_str(t, id);
    if (!render_special && (e->attr & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL)))
        return 0;
    if (e->attr & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER))
        return put(buf, size, s, e->len);
    if (e->attr & TOK_ATTR_NORMAL) {
        size_t n = 0;
        if (t->kind == TOK_BPE) {
            /* byte-level text back to bytes; characters outside the
             * alphabet are kept as they are */
            for (size_t i = 0; i < e->len;) {
                size_t adv;
                uint32_t cp = kz_tok__utf8_decode(s + i, e->len - i, &adv);
                int b = kz_tok__char_byte(cp);
                if (b >= 0) {
                    if (n < size)
                        buf[n] = (char)b;
                    n++;
                } else {
                    if (n + adv <= size)
                        memcpy(buf + n, s + i, adv);
                    n += adv;
                }
                i += adv;
            }
            return n;
        }
        /* SPM and WordPiece: U+2581 stands for a space */
        for (size_t i = 0; i < e->len;) {
            if (i + 3 <= e->len && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                if (n < size)
                    buf[n] = ' ';
                n++;
                i += 3;
            } else {
                if (n < size)
                    buf[n] = s[i];
                n++;
                i++;
            }
        }
        return n;
    }
    if (e->attr & TOK_ATTR_BYTE) {
        /* "<0xNN>" */
        char c;
        if (e->len != 6)
            return 0;
        c = (char)strtol(s + 3, NULL, 16);
        return put(buf, size, &c, 1);
    }
    return 0;
}
