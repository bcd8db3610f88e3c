/* SPDX-License-Identifier: MIT
 * Llama-family forward pass over a batch of tokens from one or many
 * sequences, each with its own KV cache (struct kz_ctx).
 *
 * Per layer, for every token t of the batch (x is the residual stream):
 *   h = rmsnorm(x) * attn_norm
 *   q = Wq h (+bq)  k = Wk h (+bk)  v = Wv h (+bv)     (qwen2 adds biases)
 *   rope(q, k, pos_t); store k, v in t's context at pos_t
 *   a = softmax(q k^T / sqrt(head_dim)) v over positions 0..pos_t of t's
 *       context; GQA: head h reads kv head h / (n_head / n_head_kv)
 *   x += Wo a
 *   h = rmsnorm(x) * ffn_norm
 *   x += Wdown (silu(Wgate h) * (Wup h))
 * logits = Wout (rmsnorm(x) * output_norm)  (only for tokens that ask)
 *
 * Matrix products go through the kernel table in two steps (kernels.h):
 * each activation row is converted once to the format the weight type wants,
 * then threads split the weight rows and multiply every token at once, so a
 * weight is streamed from memory once per batch, not once per token.
 * Because all K/V of the batch are stored before attention runs, tokens of
 * one sequence in one batch see each other causally.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/quant.h"
#include "engine/model/model.h"
#include "engine/model/model_int.h"
#include "engine/sched/threadpool.h"

#define KZ_CTX_BATCH 256 /* prompt chunk for kz_ctx_eval */

struct kz_ctx {
    const struct kz_model *m;
    struct kz_pool *pool;
    int n_ctx;
    int n_past;
    /* (n_layer, n_head_kv, n_pos, head_dim), n_pos = n_ctx rounded up to
     * KZ_ATTN_TILE: head-major, so the attention of one KV head streams one
     * contiguous run (position-major interleaved the heads: 256 bytes read
     * out of every 1 KiB). V rows are positions; K is in the transposed
     * tiles of kernels.h (KZ_ATTN_TILE positions of head_dim elements each),
     * whose scores need no horizontal sum per position. */
    void *k_cache;
    void *v_cache;
    int n_pos;
    uint32_t kv_type; /* KZ_DT_F32 or KZ_DT_F16 */
    size_t kv_esize;  /* bytes per element */
    float *logits;    /* (n_vocab) */
    double *embd_sum; /* (n_embd) pooled hidden states */
    long embd_count;
    struct kz_work *work; /* for kz_ctx_eval; created on first use */
    int batch_count;  /* items of this context in the batch being evaluated */
};

struct kz_work {
    int n_tok_max, n_logits_max, n_ctx_max;
    size_t act_row_max;   /* bytes of one converted activation row, upper bound */
    float *x;             /* (n_tok, n_embd) residual stream */
    float *h;             /* (n_tok, n_embd) normed / layer output */
    float *q, *k, *v;     /* (n_tok, nq), (n_tok, nkv), (n_tok, nkv) */
    float *att;           /* (n_tok, nq) attention output */
    float *fa, *fb;       /* (n_tok, n_ff) */
    unsigned char *act[3]; /* (n_tok, act_row_max) converted activations */
    float *rope;          /* (n_tok, n_rot) cos, sin pairs */
    int *pos;             /* (n_tok) */
    float *hsel;          /* (n_logits, n_embd) rows that want logits */
    float *logits;        /* (n_logits, n_vocab) */
    float *scores;        /* (scores_nth, n_ctx_max) */
    struct steal_word *steal; /* (scores_nth) one per thread */
    int scores_nth;
};

/* ---- contexts ------------------------------------------------------------------ */

kz_status kz_kv_type_parse(const char *name, uint32_t *out, struct kz_err *err)
{
    if (!name || !*name || strcmp(name, "f16") == 0)
        *out = KZ_DT_F16;
    else if (strcmp(name, "f32") == 0)
        *out = KZ_DT_F32;
    else
        return kz_err_set(err, KZ_EINVAL, "unknown KV cache type '%s' (f16 or f32)", name);
    return KZ_OK;
}


kz_status kz_ctx_new(const struct kz_model *m, int n_ctx, uint32_t kv_type, struct kz_pool *pool,
                     struct kz_ctx **out, struct kz_err *err)
{
    const struct kz_model_config *c = &m->cfg;
    *out = NULL;
    if (n_ctx <= 0)
        n_ctx = c->n_ctx_train;
    if (n_ctx > KZ_MODEL_MAX_CTX)
        return kz_err_set(err, KZ_EINVAL, "context size %d is above the limit %d", n_ctx, KZ_MODEL_MAX_CTX);
    if (kv_type != KZ_DT_F32 && kv_type != KZ_DT_F16)
        return kz_err_set(err, KZ_EINVAL, "KV cache type %s is not supported (f32 or f16)", kz_dtype_name(kv_type));
    struct kz_ctx *x = kz_calloc(1, sizeof *x);
    if (!x)
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    x->m = m;
    x->pool = pool;
    x->n_ctx = n_ctx;
    x->kv_type = kv_type;
    x->kv_esize = kz_dtype_row_size(kv_type, 1);
    x->n_pos = (n_ctx + KZ_ATTN_TILE - 1) / KZ_ATTN_TILE * KZ_ATTN_TILE;
    size_t bytes = (size_t)c->n_layer * (size_t)x->n_pos * (size_t)c->n_head_kv * (size_t)c->head_dim * x->kv_esize;
    /* calloc: pages are touched only as positions fill */
    x->k_cache = kz_calloc(bytes, 1);
    x->v_cache = kz_calloc(bytes, 1);
    x->logits = kz_calloc((size_t)c->n_vocab, sizeof(float));
    x->embd_sum = kz_calloc((size_t)c->n_embd, sizeof(double));
    if (!x->k_cache || !x->v_cache || !x->logits || !x->embd_sum) {
        kz_ctx_free(x);
        return kz_err_set(err, KZ_ENOMEM, "out of memory allocating a %d-token context (%zu MiB KV cache)", n_ctx,
                          2 * bytes >> 20);
    }
    *out = x;
    return KZ_OK;
}

void kz_ctx_free(struct kz_ctx *x)
{
    if (!x)
        return;
    kz_free(x->k_cache);
    kz_free(x->v_cache);
    kz_free(x->logits);
    kz_free(x->embd_sum);
    kz_work_free(x->work);
    kz_free(x);
}

int kz_ctx_n_ctx(const struct kz_ctx *x) { return x->n_ctx; }
int kz_ctx_n_past(const struct kz_ctx *x) { return x->n_past; }
const float *kz_ctx_logits(const struct kz_ctx *x) { return x->logits; }

void kz_ctx_reset(struct kz_ctx *x)
{
    x->n_past = 0;
    x->embd_count = 0;
    memset(x->embd_sum, 0, (size_t)x->m->cfg.n_embd * sizeof *x->embd_sum);
}

kz_status kz_ctx_embedding(const struct kz_ctx *x, float *out, struct kz_err *err)
{
    int n = x->m->cfg.n_embd;
    if (x->embd_count == 0)
        return kz_err_set(err, KZ_EINVAL, "no tokens were pooled for an embedding");
    double ss = 0.0;
    for (int i = 0; i < n; i++) {
        double v = x->embd_sum[i] / (double)x->embd_count;
        ss += v * v;
    }
    double inv = ss > 0.0 ? 1.0 / sqrt(ss) : 0.0;
    for (int i = 0; i < n; i++)
        out[i] = (float)(x->embd_sum[i] / (double)x->embd_count * inv);
    return KZ_OK;
}

/* Prompt in chunks through the context's own workspace. */
static kz_status ctx_eval(struct kz_ctx *x, const int32_t *tokens, int n, unsigned every, struct kz_err *err)
{
    const struct kz_model_config *c = &x->m->cfg;
    if (n <= 0)
        return kz_err_set(err, KZ_EINVAL, "no tokens to evaluate");
    if (n > x->n_ctx - x->n_past)
        return kz_err_set(err, KZ_ELIMIT, "%d tokens do not fit in the context: %d of %d positions used (raise --ctx)",
                          n, x->n_past, x->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
            return kz_err_set(err, KZ_EINVAL, "token id %d is outside the vocabulary (0..%d)", tokens[i],
                              c->n_vocab - 1);
    if (!x->work) {
        int nb = x->n_ctx < KZ_CTX_BATCH ? x->n_ctx : KZ_CTX_BATCH;
        kz_status rc = kz_work_new(x->m, nb, 1, x->n_ctx, &x->work, err);
        if (rc)
            return rc;
    }
    struct kz_batch_item items[KZ_CTX_BATCH];
    for (int done = 0; done < n;) {
        int nb = n - done < x->work->n_tok_max ? n - done : x->work->n_tok_max;
        for (int i = 0; i < nb; i++) {
            items[i].ctx = x;
            items[i].token = tokens[done + i];
            items[i].flags = every | (done + i == n - 1 ? KZ_BATCH_LOGITS : 0u);
        }
        kz_status rc = kz_model_eval_batch(x->m, x->work, x->pool, items, nb, err);
        if (rc)
            return rc;
        done += nb;
    }
    return KZ_OK;
}

kz_status kz_ctx_eval(struct kz_ctx *x, const int32_t *tokens, int n, struct kz_err *err)
{
    return ctx_eval(x, tokens, n, 0, err);
}

kz_status kz_ctx_eval_embd(struct kz_ctx *x, const int32_t *tokens, int n, struct kz_err *err)
{
    return ctx_eval(x, tokens, n, KZ_BATCH_EMBD, err);
}

/* ---- workspace ------------------------------------------------------------------- */

static int max3(int a, int b, int c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

kz_status kz_work_new(const struct kz_model *m, int n_tok_max, int n_logits_max, int n_ctx_max,
                      struct kz_work **out, struct kz_err *err)
{
    const struct kz_model_config *c = &m->cfg;
    *out = NULL;
    if (n_tok_max < 1 || n_logits_max < 1 || n_ctx_max < 1 || n_logits_max > n_tok_max)
        return kz_err_set(err, KZ_EINVAL, "bad batch sizes (%d tokens, %d logits, %d context)", n_tok_max,
                          n_logits_max, n_ctx_max);
    struct kz_work *w = kz_calloc(1, sizeof *w);
    if (!w)
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    size_t n = (size_t)n_tok_max;
    size_t nq = (size_t)c->n_head * (size_t)c->head_dim, nkv = (size_t)c->n_head_kv * (size_t)c->head_dim;
    w->n_tok_max = n_tok_max;
    w->n_logits_max = n_logits_max;
    w->n_ctx_max = n_ctx_max;
    /* f32 is the widest activation format (Q8_0 and Q8_K take ~1.1 bytes) */
    w->act_row_max = (size_t)max3(c->n_embd, (int)nq, c->n_ff) * sizeof(float);
    w->x = kz_calloc(n * (size_t)c->n_embd, sizeof(float));
    w->h = kz_calloc(n * (size_t)c->n_embd, sizeof(float));
    w->q = kz_calloc(n * nq, sizeof(float));
    w->k = kz_calloc(n * nkv, sizeof(float));
    w->v = kz_calloc(n * nkv, sizeof(float));
    w->att = kz_calloc(n * nq, sizeof(float));
    w->fa = kz_calloc(n * (size_t)c->n_ff, sizeof(float));
    w->fb = kz_calloc(n * (size_t)c->n_ff, sizeof(float));
    int ok = w->x && w->h && w->q && w->k && w->v && w->att && w->fa && w->fb;
    for (int i = 0; i < 3; i++) {
        w->act[i] = kz_malloc_aligned(n * w->act_row_max, 64);
        ok = ok && w->act[i];
    }
    w->rope = kz_calloc(n * (size_t)(c->n_rot + 2), sizeof(float));
    w->pos = kz_calloc(n, sizeof(int));
    w->hsel = kz_calloc((size_t)n_logits_max * (size_t)c->n_embd, sizeof(float));
    w->logits = kz_calloc((size_t)n_logits_max * (size_t)c->n_vocab, sizeof(float));
    if (!ok || !w->rope || !w->pos || !w->hsel || !w->logits) {
        kz_work_free(w);
        return kz_err_set(err, KZ_ENOMEM, "out of memory allocating a %d-token batch", n_tok_max);
    }
    *out = w;
    return KZ_OK;
}

void kz_work_free(struct kz_work *w)
{
    if (!w)
        return;
    kz_free(w->x);
    kz_free(w->h);
    kz_free(w->q);
    kz_free(w->k);
    kz_free(w->v);
    kz_free(w->att);
    kz_free(w->fa);
    kz_free(w->fb);
    for (int i = 0; i < 3; i++)
        kz_free_aligned(w->act[i]);
    kz_free(w->rope);
    kz_free(w->pos);
    kz_free(w->hsel);
    kz_free(w->logits);
    kz_free(w->scores);
    kz_free_aligned(w->steal);
    kz_free(w);
}

/* ---- parallel pieces ------------------------------------------------------------------ */

static void run(struct kz_pool *pool, kz_pool_fn fn, void *arg)
{
    if (pool)
        kz_pool_run(pool, fn, arg);
    else
        fn(arg, 0, 1);
}

#define MAX_GEMM 3

/* Decode products are split so that no thread waits long for another at
 * the end. Two cores streaming equal shares from memory do not finish
 * together: with a static split by rows the caller waited 1-4 ms of a
 * 20-40 ms token (1.1B model, 2 threads, AMD EPYC). Each thread still owns
 * its rows of every weight (kz_split_rows) and takes them from the front, in
 * order, so its prefetch stream runs on; a thread with none left takes
 * chunks (STEAL_ROWS rows or more, about STEAL_CHUNK bytes: 18-94 KiB on the
 * 1.1B shape) from the back of another's. The wait fell to 0.3-0.4 ms and
 * tokens came 0.5-5% faster (tokens alternating between the two within one
 * run). Which rows one kernel call covers then depends on timing; results
 * do not, because gemm_rows computes every row independently of the range
 * it is given (kernels.h), so logits are the same bit for bit at any thread
 * count (test_split). Only for products of one activation row (decode, and
 * a prompt's last-token logits): batched ones run other kernels, not
 * measured with it. */
enum { STEAL_CHUNK = 32 * 1024, STEAL_ROWS = 16, STEAL_MAX_TOK = 1 };

/* Chunks [front, back) of one thread's rows still to take, packed in one
 * word (front << 32 | back) so that owner and thief agree with one CAS;
 * a line each, so that threads' words do not share one. */
struct steal_word {
    _Atomic uint64_t v;
    char pad[64 - sizeof(uint64_t)];
};

/* Up to three products sharing one input matrix, run as one pool job. */
struct gemm_job {
    const struct kz_kernels *k;
    int n_w;
    const struct weight *w[MAX_GEMM];
    const unsigned char *act[MAX_GEMM]; /* converted input for each weight */
    float *out[MAX_GEMM];
    int64_t out_stride[MAX_GEMM];
    int n_tok;
    struct steal_word *steal; /* (nth), or NULL for the static split */
    /* conversion step */
    const float *in;       /* (n_tok, cols) */
    int64_t cols;
    int n_conv;            /* distinct activation formats */
    uint32_t conv_wtype[MAX_GEMM];
    unsigned char *conv_dst[MAX_GEMM];
    size_t conv_row_size[MAX_GEMM];
};

static void convert_task(void *arg, int ith, int nth)
{
    const struct gemm_job *j = arg;
    long t0, t1;
    kz_split_rows(j->n_tok, ith, nth, &t0, &t1);
    for (int c = 0; c < j->n_conv; c++)
        for (long t = t0; t < t1; t++)
            j->k->act_quantize(j->conv_wtype[c], j->in + (size_t)t * (size_t)j->cols,
                               j->conv_dst[c] + (size_t)t * j->conv_row_size[c], j->cols);
}

/* Thread t's rows [*r0, *r1) of w (kz_split_rows) cut into chunks of *c
 * rows, a multiple of STEAL_ROWS of about STEAL_CHUNK bytes; returns how
 * many chunks. */
static long weight_chunks(const struct weight *w, int t, int nth, long *r0, long *r1, long *c)
{
    kz_split_rows((long)w->rows, t, nth, r0, r1);
    long rows = (long)(STEAL_CHUNK / w->row_size) / STEAL_ROWS * STEAL_ROWS;
    *c = rows > STEAL_ROWS ? rows : STEAL_ROWS;
    return (*r1 - *r0 + *c - 1) / *c;
}

/* Chunks of thread t's rows of all the job's weights, in order. */
static long thread_chunks(const struct gemm_job *j, int t, int nth)
{
    long n = 0, r0, r1, c;
    for (int i = 0; i < j->n_w; i++)
        n += weight_chunks(j->w[i], t, nth, &r0, &r1, &c);
    return n;
}

/* Multiplies chunks [u, u + n) of thread t's rows: one kernel call per
 * weight they touch. */
static void run_chunks(const struct gemm_job *j, int t, int nth, long u, long n)
{
    for (int i = 0; i < j->n_w && n > 0; i++) {
        const struct weight *w = j->w[i];
        long r0, r1, c, nc = weight_chunks(w, t, nth, &r0, &r1, &c);
        if (u < nc) {
            long k = n < nc - u ? n : nc - u;
            long a = r0 + u * c, b = a + k * c < r1 ? a + k * c : r1;
            j->k->gemm_rows(w->type, w->data, w->cols, j->act[i], j->n_tok, j->out[i], j->out_stride[i], a, b);
            n -= k;
            u = 0;
        } else
            u -= nc;
    }
}

/* Takes chunks of s: the owner half of those left from the front, a thief
 * one from the back. One kernel call per chunk was slower than no stealing
 * (0.92x in Q4_0): a call first lays out the activation row for its kernel,
 * so the owner takes long runs while the end is far.
 * Returns the first chunk and sets *n; -1: none left. */
static long steal_take(struct steal_word *s, int thief, long *n)
{
    uint64_t v = atomic_load_explicit(&s->v, memory_order_relaxed);
    for (;;) {
        uint64_t f = v >> 32, b = v & 0xffffffffu;
        if (f >= b)
            return -1;
        uint64_t k = thief ? 1 : (b - f + 1) / 2;
        uint64_t nv = thief ? (f << 32 | (b - 1)) : ((f + k) << 32 | b);
        if (atomic_compare_exchange_weak_explicit(&s->v, &v, nv, memory_order_relaxed, memory_order_relaxed)) {
            *n = (long)k;
            return (long)(thief ? b - 1 : f);
        }
    }
}

static void gemm_task(void *arg, int ith, int nth)
{
    const struct gemm_job *j = arg;
    if (j->steal) {
        long u, n;
        while ((u = steal_take(&j->steal[ith], 0, &n)) >= 0)
            run_chunks(j, ith, nth, u, n);
        for (int d = 1; d < nth; d++) {
            int t = (ith + d) % nth;
            while ((u = steal_take(&j->steal[t], 1, &n)) >= 0)
                run_chunks(j, t, nth, u, n);
        }
        return;
    }
    for (int i = 0; i < j->n_w; i++) {
        const struct weight *w = j->w[i];
        long r0, r1;
        kz_split_rows((long)w->rows, ith, nth, &r0, &r1);
        if (r0 < r1)
            j->k->gemm_rows(w->type, w->data, w->cols, j->act[i], j->n_tok, j->out[i], j->out_stride[i], r0, r1);
    }
}

/* out_i (n_tok, rows_i) = in (n_tok, cols) @ w_i^T for each weight. */
static void gemm(const struct kz_model *m, struct kz_work *wk, struct kz_pool *pool, int n_w,
                 const struct weight *const *w, const float *in, int n_tok, float *const *out)
{
    struct gemm_job j = {.k = m->kernels, .n_w = n_w, .n_tok = n_tok, .in = in, .cols = w[0]->cols};
    for (int i = 0; i < n_w; i++) {
        uint32_t at = m->kernels->act_type(w[i]->type);
        int c = 0;
        while (c < j.n_conv && m->kernels->act_type(j.conv_wtype[c]) != at)
            c++;
        if (c == j.n_conv) {
            j.conv_wtype[c] = w[i]->type;
            j.conv_dst[c] = wk->act[c];
            j.conv_row_size[c] = kz_dtype_row_size(at, j.cols);
            j.n_conv++;
        }
        j.w[i] = w[i];
        j.act[i] = j.conv_dst[c];
        j.out[i] = out[i];
        j.out_stride[i] = w[i]->rows;
    }
    int nth = pool ? kz_pool_size(pool) : 1;
    if (nth > 1 && n_tok <= STEAL_MAX_TOK) {
        j.steal = wk->steal;
        for (int t = 0; t < nth; t++) /* published to the workers by the pool's job start */
            atomic_store_explicit(&j.steal[t].v, (uint64_t)thread_chunks(&j, t, nth), memory_order_relaxed);
    }
    /* converting a few rows is cheaper than a round trip through the pool */
    if (n_tok * j.cols <= 16384 || !pool)
        convert_task(&j, 0, 1);
    else
        kz_pool_run(pool, convert_task, &j);
    run(pool, gemm_task, &j);
}

struct attn_job {
    const struct kz_model *m;
    struct kz_work *w;
    const struct kz_batch_item *items;
    int n;
    int layer;
};

enum { ATTN_BLOCK = 64 }; /* positions whose K (or V) rows of one KV head stay in L1 for the whole group */

/* Floats of scratch per thread: a score row for each query head of a KV
 * group, and a block of K or V rows converted to f32 (F16 cache). */
static size_t attn_scratch(const struct kz_model_config *c, int n_ctx_max)
{
    return (size_t)(c->n_head / c->n_head_kv) * (size_t)n_ctx_max + (size_t)ATTN_BLOCK * (size_t)c->head_dim;
}

/* b positions of one KV head from p0 (V rows, or whole K tiles) as f32:
 * the cache itself when it is F32, else converted once into buf for all
 * the heads of the group (a conversion in the kernels would be made once
 * per head). */
static const float *kv_rows(const struct kz_kernels *k, const struct kz_ctx *x, const char *base, int p0, int b,
                            int hd, float *buf)
{
    const char *r = base + (size_t)p0 * (size_t)hd * x->kv_esize;
    if (x->kv_type == KZ_DT_F32)
        return (const float *)(const void *)r;
    k->type_ops(x->kv_type)->to_float(r, buf, (int64_t)b * hd);
    return buf;
}

/* Stores one token's K (into its tile, transposed) and V rows of KV head h. */
static void kv_store(const struct kz_kernels *k, struct kz_ctx *x, int layer, int h, int pos, const float *kr,
                     const float *vr, int hd)
{
    const struct kz_type_ops *o = k->type_ops(x->kv_type);
    size_t head = ((size_t)layer * (size_t)x->m->cfg.n_head_kv + (size_t)h) * (size_t)x->n_pos * (size_t)hd;
    o->from_float(vr, (char *)x->v_cache + (head + (size_t)pos * (size_t)hd) * x->kv_esize, hd);
    /* element i of K lands KZ_ATTN_TILE elements after element i - 1 */
    size_t e = head + (size_t)(pos - pos % KZ_ATTN_TILE) * (size_t)hd + (size_t)(pos % KZ_ATTN_TILE);
    for (int i = 0; i < hd; i++, e += KZ_ATTN_TILE) {
        if (x->kv_type == KZ_DT_F32)
            ((float *)x->k_cache)[e] = kr[i];
        else
            ((uint16_t *)x->k_cache)[e] = kz_fp32_to_fp16(kr[i]); /* as from_float rounds */
    }
}

/* One (token, KV head) pair per unit: the `group` query heads that share
 * the KV head go together, a block of positions at a time, so each K and V
 * row is read from memory once per token and then from L1 by the other
 * heads of the group (one head at a time read them `group` times, from L2
 * or L3 at long contexts: at a depth of 2048 that was most of a token's
 * time). Scores for all positions first, then each head's softmax, then the
 * values block by block. */
static void attn_task(void *arg, int ith, int nth)
{
    const struct attn_job *j = arg;
    const struct kz_model_config *c = &j->m->cfg;
    const struct kz_kernels *k = j->m->kernels;
    int hd = c->head_dim, group = c->n_head / c->n_head_kv, nmax = j->w->n_ctx_max;
    size_t nq = (size_t)c->n_head * (size_t)hd;
    float scale = 1.0f / sqrtf((float)hd);
    float *s = j->w->scores + (size_t)ith * attn_scratch(c, nmax);
    float *buf = s + (size_t)group * (size_t)nmax;
    long u0, u1;
    kz_split_rows((long)j->n * c->n_head_kv, ith, nth, &u0, &u1);
    for (long u = u0; u < u1; u++) {
        int t = (int)(u / c->n_head_kv), kh = (int)(u % c->n_head_kv);
        const struct kz_ctx *x = j->items[t].ctx;
        int n = j->w->pos[t] + 1;
        size_t kvo = ((size_t)j->layer * (size_t)c->n_head_kv + (size_t)kh) * (size_t)x->n_pos * (size_t)hd;
        const char *kc = (const char *)x->k_cache + kvo * x->kv_esize;
        const char *vc = (const char *)x->v_cache + kvo * x->kv_esize;
        const float *q = j->w->q + (size_t)t * nq + (size_t)kh * (size_t)group * (size_t)hd;
        float *out = j->w->att + (size_t)t * nq + (size_t)kh * (size_t)group * (size_t)hd;
        for (int p0 = 0; p0 < n; p0 += ATTN_BLOCK) {
            int b = n - p0 < ATTN_BLOCK ? n - p0 : ATTN_BLOCK;
            int bt = (b + KZ_ATTN_TILE - 1) / KZ_ATTN_TILE * KZ_ATTN_TILE; /* whole tiles */
            const float *kr = kv_rows(k, x, kc, p0, bt, hd, buf);
            for (int g = 0; g < group; g++)
                k->attn_scores(q + (size_t)g * (size_t)hd, kr, b, hd, scale, s + (size_t)g * (size_t)nmax + p0);
        }
        for (int g = 0; g < group; g++)
            k->softmax(s + (size_t)g * (size_t)nmax, n);
        memset(out, 0, (size_t)group * (size_t)hd * sizeof *out);
        for (int p0 = 0; p0 < n; p0 += ATTN_BLOCK) {
            int b = n - p0 < ATTN_BLOCK ? n - p0 : ATTN_BLOCK;
            const float *vr = kv_rows(k, x, vc, p0, b, hd, buf);
            for (int g = 0; g < group; g++)
                k->attn_values(s + (size_t)g * (size_t)nmax + p0, vr, (size_t)hd, b, hd,
                               out + (size_t)g * (size_t)hd);
        }
    }
}

static void rope_apply(const struct kz_model_config *c, const float *cs, float *v, int n_heads)
{
    int half = c->n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *p = v + h * c->head_dim;
        for (int i = 0; i < half; i++) {
            float co = cs[2 * i], sn = cs[2 * i + 1];
            /* llama: adjacent pairs (2i, 2i+1); neox/qwen2: split halves (i, i+half) */
            int a = c->rope_neox ? i : 2 * i;
            int b = c->rope_neox ? i + half : 2 * i + 1;
            float x0 = p[a], x1 = p[b];
            p[a] = x0 * co - x1 * sn;
            p[b] = x0 * sn + x1 * co;
        }
    }
}

/* ---- the batch ------------------------------------------------------------------------ */

static kz_status check_batch(const struct kz_model *m, struct kz_work *w, const struct kz_batch_item *items, int n,
                             struct kz_err *err)
{
    const struct kz_model_config *c = &m->cfg;
    if (n < 1 || n > w->n_tok_max)
        return kz_err_set(err, KZ_ELIMIT, "batch of %d tokens (1..%d allowed)", n, w->n_tok_max);
    int n_logits = 0;
    kz_status rc = KZ_OK;
    for (int i = 0; i < n; i++)
        items[i].ctx->batch_count = 0;
    for (int i = 0; i < n && !rc; i++) {
        struct kz_ctx *x = items[i].ctx;
        if (x->m != m)
            rc = kz_err_set(err, KZ_EINVAL, "batch item %d belongs to another model", i);
        else if (items[i].token < 0 || items[i].token >= c->n_vocab)
            rc = kz_err_set(err, KZ_EINVAL, "token id %d is outside the vocabulary (0..%d)", items[i].token,
                            c->n_vocab - 1);
        else if (x->n_past + x->batch_count >= x->n_ctx)
            rc = kz_err_set(err, KZ_ELIMIT, "tokens do not fit in the context: %d of %d positions used", x->n_past,
                            x->n_ctx);
        else if (x->n_ctx > w->n_ctx_max)
            rc = kz_err_set(err, KZ_ELIMIT, "context of %d positions exceeds the batch limit %d", x->n_ctx,
                            w->n_ctx_max);
        if (rc)
            break;
        w->pos[i] = x->n_past + x->batch_count++;
        if (items[i].flags & KZ_BATCH_LOGITS)
            n_logits++;
    }
    if (!rc && n_logits > w->n_logits_max)
        rc = kz_err_set(err, KZ_ELIMIT, "%d tokens want logits, the batch allows %d", n_logits, w->n_logits_max);
    return rc;
}

kz_status kz_model_eval_batch(const struct kz_model *m, struct kz_work *w, struct kz_pool *pool,
                              const struct kz_batch_item *items, int n, struct kz_err *err)
{
    const struct kz_model_config *c = &m->cfg;
    const struct kz_kernels *k = m->kernels;
    kz_status rc = check_batch(m, w, items, n, err);
    if (rc)
        return rc;
    int nth = pool ? kz_pool_size(pool) : 1;
    if (w->scores_nth < nth) {
        float *s = kz_calloc((size_t)nth * attn_scratch(c, w->n_ctx_max), sizeof *s);
        struct steal_word *sw = kz_malloc_aligned((size_t)nth * sizeof *sw, 64);
        if (!s || !sw) {
            kz_free(s);
            kz_free_aligned(sw);
            return kz_err_set(err, KZ_ENOMEM, "out of memory");
        }
        kz_free(w->scores);
        kz_free_aligned(w->steal);
        w->scores = s;
        w->steal = sw;
        w->scores_nth = nth;
    }
    int ne = c->n_embd, nq = c->n_head * c->head_dim, nkv = c->n_head_kv * c->head_dim, nr = c->n_rot + 2;

    for (int t = 0; t < n; t++) {
        const struct weight *e = &m->tok_embd;
        e->ops->to_float((const char *)e->data + (size_t)items[t].token * e->row_size, w->x + (size_t)t * ne, ne);
        float *cs = w->rope + (size_t)t * nr;
        for (int i = 0; i < c->n_rot / 2; i++) {
            double theta = (double)w->pos[t] * m->rope_inv_freq[i];
            cs[2 * i] = (float)cos(theta);
            cs[2 * i + 1] = (float)sin(theta);
        }
    }
    for (int l = 0; l < c->n_layer; l++) {
        const struct layer *L = &m->layers[l];
        for (int t = 0; t < n; t++)
            k->rmsnorm(w->h + (size_t)t * ne, w->x + (size_t)t * ne, L->attn_norm, ne, c->norm_eps);
        const struct weight *wqkv[3] = {&L->wq, &L->wk, &L->wv};
        float *oqkv[3] = {w->q, w->k, w->v};
        gemm(m, w, pool, 3, wqkv, w->h, n, oqkv);
        for (int t = 0; t < n; t++) {
            float *q = w->q + (size_t)t * nq, *kr = w->k + (size_t)t * nkv, *vr = w->v + (size_t)t * nkv;
            if (L->bq) {
                for (int i = 0; i < nq; i++)
                    q[i] += L->bq[i];
                for (int i = 0; i < nkv; i++) {
                    kr[i] += L->bk[i];
                    vr[i] += L->bv[i];
                }
            }
            const float *cs = w->rope + (size_t)t * nr;
            rope_apply(c, cs, q, c->n_head);
            rope_apply(c, cs, kr, c->n_head_kv);
            struct kz_ctx *x = items[t].ctx;
            for (int h = 0; h < c->n_head_kv; h++)
                kv_store(k, x, l, h, w->pos[t], kr + (size_t)h * (size_t)c->head_dim,
                         vr + (size_t)h * (size_t)c->head_dim, c->head_dim);
        }
        struct attn_job aj = {m, w, items, n, l};
        run(pool, attn_task, &aj);
        const struct weight *wo[1] = {&L->wo};
        float *oo[1] = {w->h};
        gemm(m, w, pool, 1, wo, w->att, n, oo);
        for (size_t i = 0; i < (size_t)n * (size_t)ne; i++)
            w->x[i] += w->h[i];

        for (int t = 0; t < n; t++)
            k->rmsnorm(w->h + (size_t)t * ne, w->x + (size_t)t * ne, L->ffn_norm, ne, c->norm_eps);
        const struct weight *wgu[2] = {&L->w_gate, &L->w_up};
        float *ogu[2] = {w->fa, w->fb};
        gemm(m, w, pool, 2, wgu, w->h, n, ogu);
        k->swiglu(w->fa, w->fa, w->fb, (int64_t)n * c->n_ff);
        const struct weight *wd[1] = {&L->w_down};
        float *od[1] = {w->h};
        gemm(m, w, pool, 1, wd, w->fa, n, od);
        for (size_t i = 0; i < (size_t)n * (size_t)ne; i++)
            w->x[i] += w->h[i];
    }

    /* final norm only where needed: pooled embeddings and logits */
    int n_logits = 0;
    for (int t = 0; t < n; t++) {
        if (!(items[t].flags & (KZ_BATCH_LOGITS | KZ_BATCH_EMBD)))
            continue;
        float *hr = w->h + (size_t)t * ne;
        k->rmsnorm(hr, w->x + (size_t)t * ne, m->output_norm, ne, c->norm_eps);
        if (items[t].flags & KZ_BATCH_EMBD) {
            struct kz_ctx *x = items[t].ctx;
            for (int i = 0; i < ne; i++)
                x->embd_sum[i] += (double)hr[i];
            x->embd_count++;
        }
        if (items[t].flags & KZ_BATCH_LOGITS)
            memcpy(w->hsel + (size_t)n_logits++ * ne, hr, (size_t)ne * sizeof(float));
    }
    if (n_logits) {
        const struct weight *wout[1] = {&m->output};
        float *olog[1] = {w->logits};
        gemm(m, w, pool, 1, wout, w->hsel, n_logits, olog);
        int r = 0;
        for (int t = 0; t < n; t++)
            if (items[t].flags & KZ_BATCH_LOGITS)
                memcpy(items[t].ctx->logits, w->logits + (size_t)r++ * c->n_vocab, (size_t)c->n_vocab * sizeof(float));
    }
    for (int t = 0; t < n; t++)
        items[t].ctx->n_past = w->pos[t] + 1;
    return KZ_OK;
}
