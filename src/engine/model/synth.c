/* SPDX-License-Identifier: MIT */
#include "engine/model/synth.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/gguf/gguf.h"
#include "engine/kernels/kernels.h"
#include "engine/sched/threadpool.h"

const struct kz_synth_shape kz_synth_shapes[] = {
    {"tiny", 256, 2, 8, 2, 768, 256, 512, 10000.0f},
    /* ~125M parameters with the 32000-token vocabulary: big enough that
     * weights, not overheads, dominate a step (server benchmarks) */
    {"small", 768, 12, 12, 4, 2048, 2048, 32000, 10000.0f},
    /* TinyLlama 1.1B */
    {"tinyllama-1.1b", 2048, 22, 32, 4, 5632, 2048, 32000, 10000.0f},
    /* its widths with one layer and a small vocabulary (26-49 MB): fits a
     * large L3 in Q4_0 and Q4_K_M, so the kernels, not memory, set the speed */
    {"tinyllama-1layer", 2048, 1, 32, 4, 5632, 2048, 512, 10000.0f},
    /* Llama 3.2 3B geometry (every width a multiple of 256, so K-quants apply);
     * the vocabulary is the synthetic 32000-token one unless --vocab is given. */
    {"llama-3b", 3072, 28, 24, 8, 8192, 8192, 32000, 500000.0f},
    {NULL, 0, 0, 0, 0, 0, 0, 0, 0.0f},
};

/* ---- deterministic random numbers ------------------------------------------ */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r) { return mix64(r->s += 0x9e3779b97f4a7c15ull); }

/* Standard normal by Box-Muller (one value per call keeps rows independent). */
static float rng_normal(struct rng *r)
{
    double u1 = ((double)(rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* ---- tensors -------------------------------------------------------------------- */

struct gen_job {
    uint64_t seed;
    const char *name;
    int64_t cols, rows;
    float stddev;
    uint32_t type;
    const struct kz_type_ops *ops;
    size_t row_size;
    uint8_t *out;
    float *scratch; /* (nth, cols) */
};

static void gen_task(void *arg, int ith, int nth)
{
    struct gen_job *j = arg;
    long r0, r1;
    kz_split_rows((long)j->rows, ith, nth, &r0, &r1);
    float *row = j->scratch + (size_t)ith * (size_t)j->cols;
    uint64_t base = j->seed ^ hash_str(j->name);
    for (long r = r0; r < r1; r++) {
        struct rng g = {mix64(base + (uint64_t)r * 0x632be59bd9b4e019ull)};
        for (int64_t c = 0; c < j->cols; c++)
            row[c] = j->stddev * rng_normal(&g);
        uint8_t *dst = j->out + (size_t)r * j->row_size;
        if (j->type == KZ_DT_F32)
            memcpy(dst, row, (size_t)j->cols * sizeof(float));
        else
            j->ops->from_float(row, dst, j->cols);
    }
}

struct synth {
    struct kz_gguf_writer *w;
    struct kz_pool *pool;
    uint64_t seed;
    void **bufs; /* tensor data kept until the file is written */
    size_t n_bufs, cap_bufs;
    struct kz_err *err;
};

static kz_status keep(struct synth *s, void *p)
{
    if (s->n_bufs == s->cap_bufs) {
        size_t cap = s->cap_bufs ? 2 * s->cap_bufs : 64;
        void **nb = kz_realloc(s->bufs, cap * sizeof *nb);
        if (!nb)
            return KZ_ENOMEM;
        s->bufs = nb;
        s->cap_bufs = cap;
    }
    s->bufs[s->n_bufs++] = p;
    return KZ_OK;
}

static kz_status add_matrix(struct synth *s, const char *name, int64_t cols, int64_t rows, float stddev,
                            uint32_t type)
{
    const struct kz_type_ops *ops = kz_type_ops_ref(type);
    if (type != KZ_DT_F32 && (!ops || !ops->from_float))
        return kz_err_set(s->err, KZ_EUNSUPPORTED, "no quantizer for type %s", kz_dtype_name(type));
    uint32_t blck = 1;
    kz_dtype_info(type, &blck, NULL);
    if (cols % blck)
        return kz_err_set(s->err, KZ_EINVAL, "tensor '%s': width %lld is not a multiple of %s's block size %u", name,
                          (long long)cols, kz_dtype_name(type), blck);
    size_t row_size = kz_dtype_row_size(type, cols);
    int nth = kz_pool_size(s->pool);
    struct gen_job j = {s->seed, name, cols, rows, stddev, type, ops, row_size, NULL, NULL};
    j.out = kz_malloc(row_size * (size_t)rows);
    j.scratch = kz_malloc((size_t)nth * (size_t)cols * sizeof(float));
    if (!j.out || !j.scratch || keep(s, j.out)) {
        kz_free(j.out);
        kz_free(j.scratch);
        return kz_err_set(s->err, KZ_ENOMEM, "out of memory generating '%s'", name);
    }
    kz_pool_run(s->pool, gen_task, &j);
    kz_free(j.scratch);
    int64_t ne[2] = {cols, rows};
    return kz_gguf_writer_add_tensor(s->w, name, type, rows > 1 ? 2 : 1, ne, j.out);
}

static kz_status add_ones(struct synth *s, const char *name, int64_t n)
{
    float *v = kz_malloc((size_t)n * sizeof *v);
    if (!v || keep(s, v)) {
        kz_free(v);
        return KZ_ENOMEM;
    }
    for (int64_t i = 0; i < n; i++)
        v[i] = 1.0f;
    return kz_gguf_writer_add_tensor(s->w, name, KZ_DT_F32, 1, &n, v);
}

/* ---- vocabulary ---------------------------------------------------------------------- */

/* A SentencePiece-style vocabulary: <unk> <s> </s>, 256 byte tokens, then
 * printable characters with and without the word-start mark, then filler
 * pieces, scores decreasing so earlier pieces merge first. */
static kz_status synth_vocab(struct synth *s, int n_vocab)
{
    kz_status rc = KZ_ENOMEM;
    struct kz_slice *toks = kz_calloc((size_t)n_vocab, sizeof *toks);
    char *text = kz_malloc((size_t)n_vocab * 16);
    float *scores = kz_malloc((size_t)n_vocab * sizeof *scores);
    int32_t *types = kz_malloc((size_t)n_vocab * sizeof *types);
    if (!toks || !text || !scores || !types)
        goto out;
    size_t off = 0;
    for (int i = 0; i < n_vocab; i++) {
        char *p = text + off;
        int len;
        int32_t type = 1;
        if (i == 0) {
            len = snprintf(p, 16, "<unk>");
            type = 2;
        } else if (i == 1) {
            len = snprintf(p, 16, "<s>");
            type = 3;
        } else if (i == 2) {
            len = snprintf(p, 16, "</s>");
            type = 3;
        } else if (i < 259) {
            len = snprintf(p, 16, "<0x%02X>", i - 3);
            type = 6;
        } else if (i < 259 + 95) {
            p[0] = (char)(' ' + (i - 259));
            len = 1;
            if (p[0] == ' ') {
                memcpy(p, "\xe2\x96\x81", 3); /* U+2581 stands for a space */
                len = 3;
            }
        } else if (i < 259 + 95 + 94) {
            memcpy(p, "\xe2\x96\x81", 3);
            p[3] = (char)('!' + (i - 259 - 95));
            len = 4;
        } else {
            len = snprintf(p, 16, "\xe2\x96\x81w%d", i);
        }
        toks[i].p = p;
        toks[i].len = (size_t)len;
        scores[i] = (float)-i;
        types[i] = type;
        off += (size_t)len;
    }
    static const char model[] = "llama";
    if ((rc = kz_gguf_writer_set_str(s->w, "tokenizer.ggml.model", model, sizeof model - 1)) ||
        (rc = kz_gguf_writer_set_arr_str(s->w, "tokenizer.ggml.tokens", toks, (uint64_t)n_vocab)) ||
        (rc = kz_gguf_writer_set_arr(s->w, "tokenizer.ggml.scores", KZ_GGUF_F32, scores, (uint64_t)n_vocab)) ||
        (rc = kz_gguf_writer_set_arr(s->w, "tokenizer.ggml.token_type", KZ_GGUF_I32, types, (uint64_t)n_vocab)) ||
        (rc = kz_gguf_writer_set_u32(s->w, "tokenizer.ggml.bos_token_id", 1)) ||
        (rc = kz_gguf_writer_set_u32(s->w, "tokenizer.ggml.eos_token_id", 2)) ||
        (rc = kz_gguf_writer_set_u32(s->w, "tokenizer.ggml.unknown_token_id", 0)))
        goto out;
    /* the writer copied everything; the buffers can go */
out:
    kz_free(toks);
    kz_free(text);
    kz_free(scores);
    kz_free(types);
    return rc;
}

/* Layers that a Q4_K_M-style mix gives more bits: the first and last eighth
 * of the stack and every third layer in between. */
static int more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

kz_status kz_synth_write(const struct kz_synth_opts *o, struct kz_err *err)
{
    const struct kz_synth_shape *sh = NULL;
    for (const struct kz_synth_shape *p = kz_synth_shapes; p->name; p++)
        if (strcmp(p->name, o->shape) == 0)
            sh = p;
    if (!sh)
        return kz_err_set(err, KZ_EINVAL, "unknown shape '%s' (tiny, small, tinyllama-1.1b, tinyllama-1layer, llama-3b)", o->shape);
    int mix = strcmp(o->type, "q4_k_m") == 0 || strcmp(o->type, "Q4_K_M") == 0;
    int dt = mix ? KZ_DT_Q4_K : kz_dtype_from_name(o->type);
    static const int allowed[] = {KZ_DT_F32, KZ_DT_F16, KZ_DT_BF16, KZ_DT_Q8_0, KZ_DT_Q4_0,
                                  KZ_DT_Q4_K, KZ_DT_Q5_K, KZ_DT_Q6_K};
    int ok = 0;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        ok |= dt == allowed[i];
    if (!ok)
        return kz_err_set(err, KZ_EINVAL, "unknown weight type '%s' (f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k q4_k_m)", o->type);
    const char *arch = o->arch ? o->arch : "llama";
    if (strcmp(arch, "llama") && strcmp(arch, "qwen2"))
        return kz_err_set(err, KZ_EINVAL, "unknown architecture '%s' (llama, qwen2)", arch);

    struct synth s = {0};
    struct kz_gguf *vocab = NULL;
    kz_status rc = KZ_ENOMEM;
    s.seed = mix64(o->seed + 1);
    s.err = err;
    s.w = kz_gguf_writer_new();
    s.pool = kz_pool_new(o->n_threads > 0 ? o->n_threads : kz_cpu_physical_cores());
    if (!s.w || !s.pool) {
        kz_err_set(err, KZ_ENOMEM, "out of memory");
        goto out;
    }
    int n_vocab = sh->n_vocab_default;
    if (o->vocab_path) {
        rc = kz_gguf_open(o->vocab_path, &vocab, err);
        if (rc)
            goto out;
        uint64_t nv = 0;
        rc = kz_gguf_get_arr(vocab, "tokenizer.ggml.tokens", NULL, &nv, err);
        if (rc == KZ_ENOTFOUND || nv == 0 || nv > (1u << 22)) {
            rc = kz_err_set(err, KZ_EINVAL, "%s: no usable tokenizer.ggml.tokens array", o->vocab_path);
            goto out;
        }
        if (rc)
            goto out;
        n_vocab = (int)nv;
        /* copy only the tokenizer: the source's own hyperparameters would clash */
        static const char *const not_tok[] = {"general.", "llama.", "qwen2.", "gpt2.", "bert.", "falcon.", "mpt.",
                                              "starcoder.", "refact.", "deepseek", "phi3.", NULL};
        rc = kz_gguf_writer_copy_kv(s.w, vocab, not_tok);
        if (rc) {
            kz_err_set(err, rc, "%s: cannot copy the vocabulary", o->vocab_path);
            goto out;
        }
    } else {
        rc = synth_vocab(&s, n_vocab);
        if (rc) {
            kz_err_set(err, rc, "out of memory building the vocabulary");
            goto out;
        }
    }
    char name[96];
    snprintf(name, sizeof name, "synthetic %s %s %s", sh->name, arch, o->type);
    char key[128];
#define KEY(sfx) (snprintf(key, sizeof key, "%s." sfx, arch), key)
    if ((rc = kz_gguf_writer_set_str(s.w, "general.architecture", arch, strlen(arch))) ||
        (rc = kz_gguf_writer_set_str(s.w, "general.name", name, strlen(name))) ||
        (rc = kz_gguf_writer_set_u32(s.w, KEY("context_length"), (uint32_t)sh->n_ctx)) ||
        (rc = kz_gguf_writer_set_u32(s.w, KEY("embedding_length"), (uint32_t)sh->n_embd)) ||
        (rc = kz_gguf_writer_set_u32(s.w, KEY("block_count"), (uint32_t)sh->n_layer)) ||
        (rc = kz_gguf_writer_set_u32(s.w, KEY("feed_forward_length"), (uint32_t)sh->n_ff)) ||
        (rc = kz_gguf_writer_set_u32(s.w, KEY("attention.head_count"), (uint32_t)sh->n_head)) ||
        (rc = kz_gguf_writer_set_u32(s.w, KEY("attention.head_count_kv"), (uint32_t)sh->n_head_kv)) ||
        (rc = kz_gguf_writer_set_u32(s.w, KEY("rope.dimension_count"), (uint32_t)(sh->n_embd / sh->n_head))) ||
        (rc = kz_gguf_writer_set_f32(s.w, KEY("rope.freq_base"), sh->rope_base)) ||
        (rc = kz_gguf_writer_set_f32(s.w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f))) {
        kz_err_set(err, rc, "out of memory");
        goto out;
    }
#undef KEY
    int64_t hd = sh->n_embd / sh->n_head, nq = sh->n_head * hd, nkv = sh->n_head_kv * hd;
    uint32_t t = (uint32_t)dt, t6 = mix ? KZ_DT_Q6_K : (uint32_t)dt;
    if ((rc = add_matrix(&s, "token_embd.weight", sh->n_embd, n_vocab, 1.0f, t)) ||
        (rc = add_ones(&s, "output_norm.weight", sh->n_embd)) ||
        (!o->tied && (rc = add_matrix(&s, "output.weight", sh->n_embd, n_vocab, 1.0f, t6))))
        goto out;
    for (int i = 0; i < sh->n_layer; i++) {
        char nm[96];
#define LN(sfx) (snprintf(nm, sizeof nm, "blk.%d." sfx, i), nm)
        uint32_t tdown = mix && more_bits(i, sh->n_layer) ? KZ_DT_Q6_K : t;
        if ((rc = add_ones(&s, LN("attn_norm.weight"), sh->n_embd)) ||
            (rc = add_matrix(&s, LN("attn_q.weight"), sh->n_embd, nq, 0.02f, t)) ||
            (rc = add_matrix(&s, LN("attn_k.weight"), sh->n_embd, nkv, 0.02f, t)) ||
            (rc = add_matrix(&s, LN("attn_v.weight"), sh->n_embd, nkv, 0.02f, t6)) ||
            (rc = add_matrix(&s, LN("attn_output.weight"), nq, sh->n_embd, 0.02f, t)) ||
            (rc = add_ones(&s, LN("ffn_norm.weight"), sh->n_embd)) ||
            (rc = add_matrix(&s, LN("ffn_gate.weight"), sh->n_embd, sh->n_ff, 0.02f, t)) ||
            (rc = add_matrix(&s, LN("ffn_up.weight"), sh->n_embd, sh->n_ff, 0.02f, t)) ||
            (rc = add_matrix(&s, LN("ffn_down.weight"), sh->n_ff, sh->n_embd, 0.02f, tdown)))
            goto out;
        if (strcmp(arch, "qwen2") == 0 && ((rc = add_matrix(&s, LN("attn_q.bias"), nq, 1, 0.1f, KZ_DT_F32)) ||
                                           (rc = add_matrix(&s, LN("attn_k.bias"), nkv, 1, 0.1f, KZ_DT_F32)) ||
                                           (rc = add_matrix(&s, LN("attn_v.bias"), nkv, 1, 0.1f, KZ_DT_F32))))
            goto out;
#undef LN
    }
    rc = kz_gguf_writer_write(s.w, o->out_path, err);
out:
    if (rc && !err->msg[0])
        kz_err_set(err, rc, "%s", kz_status_str(rc));
    for (size_t i = 0; i < s.n_bufs; i++)
        kz_free(s.bufs[i]);
    kz_free(s.bufs);
    kz_gguf_writer_free(s.w);
    kz_pool_free(s.pool);
    kz_gguf_close(vocab);
    return rc;
}
