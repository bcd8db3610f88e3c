/* SPDX-License-Identifier: MIT
 * Fuzz target: the tokenizers' pair merging (engine/tok/merge.h) and the
 * encoders around it, on two generated vocabularies: SentencePiece and
 * byte-level BPE, each holding every string of one to four symbols over
 * {a, b, c, space}, with scores or merge ranks that tie often.
 *
 * Input: the first byte picks add_special and parse_special; the rest is
 * the text.
 *
 * Oracles, beyond the sanitizers:
 *   - kz_tok_encode succeeds on any bytes and gives ids within the
 *     vocabulary, for both;
 *   - SentencePiece merging (kz_tok__spm on the text as it comes) gives
 *     the same ids as a plain quadratic merge written here: repeatedly
 *     join the adjacent pair whose text is the best-scored token, the
 *     leftmost among equals;
 *   - both turn valid UTF-8 back into the same bytes (kz_tok_piece of
 *     every id, joined; for SentencePiece less the space it puts in
 *     front, and only for text without U+2581, which it decodes as a
 *     space). This is FZ-6 of the reliability plan.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/utf8.h"
#include "engine/gguf/gguf.h"
#include "engine/tok/tok.h"
#include "engine/tok/tok_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ORACLE 512 /* longest text given to the quadratic merge */

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_tok: %s\n", what);
    abort();
}

/* The strings of 1..4 symbols over four symbols: 340 of them. */
enum { N_GEN = 4 + 16 + 64 + 256 };
static size_t gen_string(int i, const char *const sym[4], char *out)
{
    int len = i < 4 ? 1 : i < 20 ? 2 : i < 84 ? 3 : 4;
    int k = i - (len == 1 ? 0 : len == 2 ? 4 : len == 3 ? 20 : 84);
    size_t n = 0;
    for (int j = 0; j < len; j++, k /= 4) {
        size_t sl = strlen(sym[k % 4]);
        memcpy(out + n, sym[k % 4], sl);
        n += sl;
    }
    return n;
}

static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    return x ^ (x >> 16);
}

static struct kz_tok *open_vocab(struct kz_gguf_writer *w, void **mem, struct kz_gguf **g)
{
    size_t size;
    struct kz_err err = {{0}};
    struct kz_tok *t = NULL;
    if (!w || kz_gguf_writer_to_mem(w, mem, &size) || kz_gguf_open_mem(*mem, size, "fuzz", g, &err) ||
        kz_tok_load(*g, &t, &err)) {
        fprintf(stderr, "fuzz_tok: vocabulary: %s\n", err.msg);
        abort();
    }
    kz_gguf_writer_free(w);
    return t;
}

/* <unk> <s> </s>, the 256 byte tokens, then the generated pieces with
 * scores in -2..2 (many ties). */
static struct kz_tok *make_spm(void **mem, struct kz_gguf **g)
{
    static const char *const sym[4] = {"a", "b", "c", "\xe2\x96\x81"};
    enum { N = 3 + 256 + N_GEN };
    static char text[N_GEN][16], bytes[256][8];
    static struct kz_slice toks[N];
    static float scores[N];
    static int32_t types[N];
    static const char *const specials[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) {
        toks[i] = (struct kz_slice){specials[i], strlen(specials[i])};
        types[i] = i == 0 ? 2 : 3;
    }
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        toks[3 + b] = (struct kz_slice){bytes[b], 6};
        types[3 + b] = 6;
    }
    for (int i = 0; i < N_GEN; i++) {
        toks[259 + i] = (struct kz_slice){text[i], gen_string(i, sym, text[i])};
        scores[259 + i] = (float)(int)(mix((uint32_t)i) % 5) - 2.0f;
        types[259 + i] = 1;
    }
    struct kz_gguf_writer *w = kz_gguf_writer_new();
    if (w) {
        kz_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5);
        kz_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, N);
        kz_gguf_writer_set_arr(w, "tokenizer.ggml.scores", KZ_GGUF_F32, scores, N);
        kz_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", KZ_GGUF_I32, types, N);
        kz_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
        kz_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    }
    return open_vocab(w, mem, g);
}

/* The 256 byte spellings (id = byte), the generated strings of two or more
 * symbols in the byte alphabet (space is U+0120), <|endoftext|>, and a
 * merge for every split of every generated string, ranked by a hash. */
static struct kz_tok *make_bpe(void **mem, struct kz_gguf **g)
{
    static const char *const sym[4] = {"a", "b", "c", "\xc4\xa0"};
    enum { N = 256 + (N_GEN - 4) + 1, N_MERGES = 16 * 1 + 64 * 2 + 256 * 3 };
    static char spell[256][4], text[N_GEN][16], merge_text[N_MERGES][20];
    static struct kz_slice toks[N], merges[N_MERGES];
    static int32_t types[N];
    static uint32_t order[N_MERGES];
    for (int b = 0; b < 256; b++) {
        toks[b] = (struct kz_slice){spell[b], kz_tok__byte_char((unsigned char)b, spell[b])};
        types[b] = 1;
    }
    int nm = 0;
    for (int i = 4; i < N_GEN; i++) {
        size_t n = gen_string(i, sym, text[i]);
        toks[256 + i - 4] = (struct kz_slice){text[i], n};
        types[256 + i - 4] = 1;
        /* split after each symbol boundary but the last */
        for (size_t cut = 1; cut < n; cut++) {
            if (((unsigned char)text[i][cut] & 0xC0) == 0x80)
                continue; /* inside the two-byte space */
            snprintf(merge_text[nm], sizeof merge_text[nm], "%.*s %.*s", (int)cut, text[i], (int)(n - cut),
                     text[i] + cut);
            order[nm] = mix((uint32_t)nm * 2654435761U) & ~0x3FFU; /* ties broken by the index below */
            order[nm] |= (uint32_t)nm;
            nm++;
        }
    }
    if (nm != N_MERGES)
        fail("merge count");
    /* rank = place after sorting by the hash: a shuffled but fixed order */
    for (int i = 1; i < nm; i++)
        for (int j = i; j > 0 && order[j - 1] > order[j]; j--) {
            uint32_t o = order[j];
            order[j] = order[j - 1];
            order[j - 1] = o;
        }
    for (int r = 0; r < nm; r++) {
        const char *m = merge_text[order[r] & 0x3FFU];
        merges[r] = (struct kz_slice){m, strlen(m)};
    }
    static const char eot[] = "<|endoftext|>";
    toks[N - 1] = (struct kz_slice){eot, sizeof eot - 1};
    types[N - 1] = 3;
    struct kz_gguf_writer *w = kz_gguf_writer_new();
    if (w) {
        kz_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", 4);
        kz_gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2", 5);
        kz_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, N);
        kz_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", KZ_GGUF_I32, types, N);
        kz_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, (size_t)nm);
        kz_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", N - 1);
        kz_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", N - 1);
    }
    return open_vocab(w, mem, g);
}

static struct kz_tok *spm, *bpe;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static void *mem[2];
    static struct kz_gguf *g[2];
    spm = make_spm(&mem[0], &g[0]);
    bpe = make_bpe(&mem[1], &g[1]);
    return 0; /* both live as long as the process */
}

/* The quadratic merge: the ids SentencePiece merging must give for x. */
static size_t naive_spm(const struct kz_tok *t, const char *x, size_t n, int32_t *out)
{
    uint32_t off[MAX_ORACLE], len[MAX_ORACLE];
    size_t ns = 0, n_out = 0;
    for (size_t o = 0; o < n; ns++) {
        size_t k = kz_tok__utf8_len((unsigned char)x[o]);
        if (k > n - o)
            k = n - o;
        off[ns] = (uint32_t)o;
        len[ns] = (uint32_t)k;
        o += k;
    }
    for (;;) {
        size_t best = SIZE_MAX;
        float best_score = 0;
        for (size_t i = 0; i + 1 < ns; i++) {
            int32_t id = kz_tok__lookup(t, x + off[i], len[i] + len[i + 1]);
            if (id >= 0 && (best == SIZE_MAX || t->tok[id].score > best_score)) {
                best = i;
                best_score = t->tok[id].score;
            }
        }
        if (best == SIZE_MAX)
            break;
        len[best] += len[best + 1];
        memmove(off + best + 1, off + best + 2, (ns - best - 2) * sizeof *off);
        memmove(len + best + 1, len + best + 2, (ns - best - 2) * sizeof *len);
        ns--;
    }
    for (size_t i = 0; i < ns; i++) {
        int32_t id = kz_tok__lookup(t, x + off[i], len[i]);
        if (id >= 0) {
            out[n_out++] = id;
            continue;
        }
        for (uint32_t j = 0; j < len[i]; j++) {
            id = t->byte_tok[(unsigned char)x[off[i] + j]];
            out[n_out++] = id >= 0 ? id : t->unk;
        }
    }
    return n_out;
}

static void check_range(const struct kz_tok *t, const int32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= kz_tok_n_vocab(t))
            fail("an id outside the vocabulary");
}

static int valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = kz_utf8_seq_len(s + i, n - i)))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!spm)
        LLVMFuzzerInitialize(NULL, NULL);
    if (size < 1)
        return 0;
    int add_special = data[0] & 1, parse_special = (data[0] >> 1) & 1;
    const char *x = (const char *)data + 1;
    size_t n = size - 1;
    struct kz_err err = {{0}};
    for (int v = 0; v < 2; v++) {
        const struct kz_tok *t = v ? bpe : spm;
        int32_t *ids = NULL;
        size_t m = 0;
        if (kz_tok_encode(t, x, n, add_special, parse_special, &ids, &m, &err) != KZ_OK)
            fail(err.msg);
        check_range(t, ids, m);
        /* decode(encode(x)) == x for valid UTF-8; SentencePiece puts a
         * space in front, and cannot tell U+2581 from a space */
        if (!add_special && !parse_special && valid_utf8(x, n) && (v || !memmem(x, n, "\xe2\x96\x81", 3))) {
            char *back = kz_malloc(m * 64 + 1);
            size_t k = 0;
            for (size_t i = 0; back && i < m; i++)
                k += kz_tok_piece(t, ids[i], back + k, 64, 0);
            const char *b = back;
            if (!v && k > 0 && b[0] == ' ')
                b++, k--;
            if (!back || k != n || memcmp(b, x, n) != 0)
                fail(v ? "byte-level BPE did not give the text back" : "SentencePiece did not give the text back");
            kz_free(back);
        }
        kz_free(ids);
    }
    if (n <= MAX_ORACLE) {
        static int32_t want[MAX_ORACLE * 4];
        struct tok_ids got = {0};
        if (kz_tok__spm(spm, x, n, &got) != KZ_OK)
            fail("kz_tok__spm failed");
        size_t nw = naive_spm(spm, x, n, want);
        if (got.n != nw || (nw && memcmp(got.p, want, nw * sizeof *want) != 0))
            fail("SentencePiece merging differs from the quadratic merge");
        kz_free(got.p);
    }
    return 0;
}
