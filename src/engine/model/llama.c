/* SPDX-License-Identifier: MIT
 * Llama-family forward pass, one token at a time through the KV cache.
 *
 * Per layer (x is the residual stream, n_embd floats):
 *   h = rmsnorm(x) * attn_norm
 *   q = Wq h (+bq)  k = Wk h (+bk)  v = Wv h (+bv)     (qwen2 adds biases)
 *   rope(q, k, pos); cache k, v at pos
 *   a = softmax(q k^T / sqrt(head_dim)) v   per head, GQA: head h reads kv head h / (n_head/n_head_kv)
 *   x += Wo a
 *   h = rmsnorm(x) * ffn_norm
 *   x += Wdown (silu(Wgate h) * (Wup h))
 * logits = Wout rmsnorm(x) * output_norm   (Wout = token_embd when tied)
 *
 * Weights stay in their file type; matrix-vector products call the kernel
 * table's dot product for that type, split by rows across the pool.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/gguf/gguf.h"
#include "engine/kernels/kernels.h"
#include "engine/model/model.h"
#include "engine/sched/threadpool.h"

struct weight {
    const void *data;
    uint32_t type;
    int64_t cols;   /* ne[0]: input width */
    int64_t rows;   /* ne[1]: output width */
    size_t row_size;
    const struct kz_type_ops *ops;
};

struct layer {
    const float *attn_norm; /* (n_embd) */
    struct weight wq;       /* (n_embd) -> (n_head*head_dim) */
    struct weight wk;       /* (n_embd) -> (n_head_kv*head_dim) */
    struct weight wv;       /* (n_embd) -> (n_head_kv*head_dim) */
    struct weight wo;       /* (n_head*head_dim) -> (n_embd) */
    const float *bq, *bk, *bv; /* qwen2 only */
    const float *ffn_norm;  /* (n_embd) */
    struct weight w_gate;   /* (n_embd) -> (n_ff) */
    struct weight w_up;     /* (n_embd) -> (n_ff) */
    struct weight w_down;   /* (n_ff) -> (n_embd) */
};

struct kz_model {
    struct kz_gguf *g;
    const struct kz_kernels *kernels;
    struct kz_model_config cfg;
    struct weight tok_embd; /* (n_embd) x n_vocab rows */
    struct weight output;   /* tok_embd when tied */
    const float *output_norm;
    const float *rope_freqs; /* (n_rot/2) frequency divisors (Llama 3), or NULL */
    struct layer *layers;
    uint64_t n_params;
};

struct kz_ctx {
    const struct kz_model *m;
    struct kz_pool *pool;
    int n_ctx;
    int n_past;
    float *k_cache; /* (n_layer, n_ctx, n_head_kv*head_dim) */
    float *v_cache; /* (n_layer, n_ctx, n_head_kv*head_dim) */
    float *x;       /* (n_embd) residual */
    float *h;       /* (n_embd) normed */
    float *q;       /* (n_head*head_dim) */
    float *att_out; /* (n_head*head_dim) */
    float *ff_a;    /* (n_ff) */
    float *ff_b;    /* (n_ff) */
    float *scores;  /* (n_head, n_ctx) */
    float *rope_cs; /* (n_rot) cos,sin pairs for the current position */
    float *logits;  /* (n_vocab) */
};

/* ---- loading ---------------------------------------------------------------- */

static kz_status find_tensor(const struct kz_model *m, const char *name, int required,
                             const struct kz_gguf_tensor **out, struct kz_err *err)
{
    *out = kz_gguf_find_tensor(m->g, name);
    if (!*out && required)
        return kz_err_set(err, KZ_EPROTO, "%s: missing tensor '%s'", kz_gguf_name(m->g), name);
    return KZ_OK;
}

static kz_status shape_err(const struct kz_model *m, const char *name, const struct kz_gguf_tensor *t, int64_t c,
                           int64_t r, struct kz_err *err)
{
    return kz_err_set(err, KZ_EPROTO, "%s: tensor '%s' has shape [%lld, %lld, %lld], expected [%lld, %lld]",
                      kz_gguf_name(m->g), name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                      (long long)c, (long long)r);
}

static kz_status load_matrix(struct kz_model *m, const char *name, int64_t cols, int64_t rows, int required,
                             struct weight *w, struct kz_err *err)
{
    const struct kz_gguf_tensor *t;
    kz_status rc = find_tensor(m, name, required, &t, err);
    if (rc || !t)
        return rc;
    if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1)
        return shape_err(m, name, t, cols, rows, err);
    w->ops = m->kernels->type_ops(t->type);
    if (!w->ops || !w->ops->dot_f32 || !w->ops->to_float)
        return kz_err_set(err, KZ_EUNSUPPORTED, "%s: tensor '%s' has type %s, which kyozon cannot compute with yet",
                          kz_gguf_name(m->g), name, kz_dtype_name(t->type));
    w->data = t->data;
    w->type = t->type;
    w->cols = cols;
    w->rows = rows;
    w->row_size = kz_dtype_row_size(t->type, cols);
    m->n_params += (uint64_t)cols * (uint64_t)rows;
    return KZ_OK;
}

static kz_status load_vector(struct kz_model *m, const char *name, int64_t n, int required, const float **out,
                             struct kz_err *err)
{
    const struct kz_gguf_tensor *t;
    *out = NULL;
    kz_status rc = find_tensor(m, name, required, &t, err);
    if (rc || !t)
        return rc;
    if (t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
        return shape_err(m, name, t, n, 1, err);
    if (t->type != KZ_DT_F32)
        return kz_err_set(err, KZ_EUNSUPPORTED, "%s: tensor '%s' has type %s; vectors must be F32",
                          kz_gguf_name(m->g), name, kz_dtype_name(t->type));
    if ((uintptr_t)t->data % sizeof(float))
        return kz_err_set(err, KZ_EPROTO, "%s: tensor '%s' data is misaligned", kz_gguf_name(m->g), name);
    *out = t->data;
    m->n_params += (uint64_t)n;
    return KZ_OK;
}

static kz_status load_weights(struct kz_model *m, struct kz_err *err)
{
    const struct kz_model_config *c = &m->cfg;
    int64_t nq = (int64_t)c->n_head * c->head_dim, nkv = (int64_t)c->n_head_kv * c->head_dim;
    kz_status rc;
    char nm[96];
    if ((rc = load_matrix(m, "token_embd.weight", c->n_embd, c->n_vocab, 1, &m->tok_embd, err)) ||
        (rc = load_vector(m, "output_norm.weight", c->n_embd, 1, &m->output_norm, err)) ||
        (rc = load_matrix(m, "output.weight", c->n_embd, c->n_vocab, 0, &m->output, err)) ||
        (rc = load_vector(m, "rope_freqs.weight", c->n_rot / 2, 0, &m->rope_freqs, err)))
        return rc;
    if (!m->output.data)
        m->output = m->tok_embd; /* tied embeddings */
    m->layers = kz_calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers)
        return kz_err_set(err, KZ_ENOMEM, "%s: out of memory", kz_gguf_name(m->g));
    int bias = c->arch == KZ_ARCH_QWEN2;
    for (int i = 0; i < c->n_layer; i++) {
        struct layer *L = &m->layers[i];
#define LNAME(s) (snprintf(nm, sizeof nm, "blk.%d." s, i), nm)
        if ((rc = load_vector(m, LNAME("attn_norm.weight"), c->n_embd, 1, &L->attn_norm, err)) ||
            (rc = load_matrix(m, LNAME("attn_q.weight"), c->n_embd, nq, 1, &L->wq, err)) ||
            (rc = load_matrix(m, LNAME("attn_k.weight"), c->n_embd, nkv, 1, &L->wk, err)) ||
            (rc = load_matrix(m, LNAME("attn_v.weight"), c->n_embd, nkv, 1, &L->wv, err)) ||
            (rc = load_matrix(m, LNAME("attn_output.weight"), nq, c->n_embd, 1, &L->wo, err)) ||
            (rc = load_vector(m, LNAME("attn_q.bias"), nq, bias, &L->bq, err)) ||
            (rc = load_vector(m, LNAME("attn_k.bias"), nkv, bias, &L->bk, err)) ||
            (rc = load_vector(m, LNAME("attn_v.bias"), nkv, bias, &L->bv, err)) ||
            (rc = load_vector(m, LNAME("ffn_norm.weight"), c->n_embd, 1, &L->ffn_norm, err)) ||
            (rc = load_matrix(m, LNAME("ffn_gate.weight"), c->n_embd, c->n_ff, 1, &L->w_gate, err)) ||
            (rc = load_matrix(m, LNAME("ffn_up.weight"), c->n_embd, c->n_ff, 1, &L->w_up, err)) ||
            (rc = load_matrix(m, LNAME("ffn_down.weight"), c->n_ff, c->n_embd, 1, &L->w_down, err)))
            return rc;
#undef LNAME
    }
    return KZ_OK;
}

kz_status kz_model_load(const char *path, struct kz_model **out, struct kz_err *err)
{
    *out = NULL;
    struct kz_model *m = kz_calloc(1, sizeof *m);
    if (!m)
        return kz_err_set(err, KZ_ENOMEM, "%s: out of memory", path);
    m->kernels = kz_kernels_get();
    kz_status rc = kz_gguf_open(path, &m->g, err);
    if (rc)
        goto fail;
    rc = kz_model_read_config(m->g, &m->cfg, err);
    if (rc)
        goto fail;
    rc = load_weights(m, err);
    if (rc)
        goto fail;
    *out = m;
    return KZ_OK;
fail:
    kz_model_free(m);
    return rc;
}

void kz_model_free(struct kz_model *m)
{
    if (!m)
        return;
    kz_free(m->layers);
    kz_gguf_close(m->g);
    kz_free(m);
}

const struct kz_model_config *kz_model_config(const struct kz_model *m) { return &m->cfg; }
const struct kz_gguf *kz_model_gguf(const struct kz_model *m) { return m->g; }
uint64_t kz_model_n_params(const struct kz_model *m) { return m->n_params; }

/* ---- context ------------------------------------------------------------------- */

kz_status kz_ctx_new(const struct kz_model *m, int n_ctx, struct kz_pool *pool, struct kz_ctx **out,
                     struct kz_err *err)
{
    const struct kz_model_config *c = &m->cfg;
    *out = NULL;
    if (n_ctx <= 0)
        n_ctx = c->n_ctx_train;
    if (n_ctx > KZ_MODEL_MAX_CTX)
        return kz_err_set(err, KZ_EINVAL, "context size %d is above the limit %d", n_ctx, KZ_MODEL_MAX_CTX);
    struct kz_ctx *x = kz_calloc(1, sizeof *x);
    if (!x)
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    x->m = m;
    x->pool = pool;
    x->n_ctx = n_ctx;
    size_t nkv = (size_t)c->n_head_kv * (size_t)c->head_dim, nq = (size_t)c->n_head * (size_t)c->head_dim;
    size_t cache = (size_t)c->n_layer * (size_t)n_ctx * nkv;
    x->k_cache = kz_calloc(cache, sizeof(float));
    x->v_cache = kz_calloc(cache, sizeof(float));
    x->x = kz_calloc((size_t)c->n_embd, sizeof(float));
    x->h = kz_calloc((size_t)c->n_embd, sizeof(float));
    x->q = kz_calloc(nq + 2 * nkv, sizeof(float)); /* q, k, v back to back */
    x->att_out = kz_calloc(nq, sizeof(float));
    x->ff_a = kz_calloc((size_t)c->n_ff, sizeof(float));
    x->ff_b = kz_calloc((size_t)c->n_ff, sizeof(float));
    x->scores = kz_calloc((size_t)c->n_head * (size_t)n_ctx, sizeof(float));
    x->rope_cs = kz_calloc((size_t)c->n_rot + 2, sizeof(float));
    x->logits = kz_calloc((size_t)c->n_vocab, sizeof(float));
    if (!x->k_cache || !x->v_cache || !x->x || !x->h || !x->q || !x->att_out || !x->ff_a || !x->ff_b ||
        !x->scores || !x->rope_cs || !x->logits) {
        kz_ctx_free(x);
        return kz_err_set(err, KZ_ENOMEM, "out of memory allocating a %d-token context (%zu MiB KV cache)", n_ctx,
                          2 * cache * sizeof(float) >> 20);
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
    kz_free(x->x);
    kz_free(x->h);
    kz_free(x->q);
    kz_free(x->att_out);
    kz_free(x->ff_a);
    kz_free(x->ff_b);
    kz_free(x->scores);
    kz_free(x->rope_cs);
    kz_free(x->logits);
    kz_free(x);
}

int kz_ctx_n_ctx(const struct kz_ctx *x) { return x->n_ctx; }
int kz_ctx_n_past(const struct kz_ctx *x) { return x->n_past; }
void kz_ctx_reset(struct kz_ctx *x) { x->n_past = 0; }
const float *kz_ctx_logits(const struct kz_ctx *x) { return x->logits; }

/* ---- parallel pieces -------------------------------------------------------------- */

#define MAX_MATVEC 3

/* Up to three products sharing one input, run as one pool job. */
struct matvec_job {
    int n;
    const struct weight *w[MAX_MATVEC];
    const float *in;
    float *out[MAX_MATVEC];
};

static void matvec_task(void *arg, int ith, int nth)
{
    const struct matvec_job *j = arg;
    for (int k = 0; k < j->n; k++) {
        const struct weight *w = j->w[k];
        long r0, r1;
        kz_split_rows((long)w->rows, ith, nth, &r0, &r1);
        const char *base = w->data;
        for (long r = r0; r < r1; r++)
            j->out[k][r] = w->ops->dot_f32(w->cols, base + (size_t)r * w->row_size, j->in);
    }
}

static void matvec(struct kz_ctx *x, int n, const struct weight **w, const float *in, float **out)
{
    struct matvec_job j = {.n = n, .in = in};
    for (int k = 0; k < n; k++) {
        j.w[k] = w[k];
        j.out[k] = out[k];
    }
    if (x->pool)
        kz_pool_run(x->pool, matvec_task, &j);
    else
        matvec_task(&j, 0, 1);
}

struct attn_job {
    struct kz_ctx *x;
    int layer;
    int pos;
};

/* One query position against cache positions 0..pos, heads split by thread. */
static void attn_task(void *arg, int ith, int nth)
{
    const struct attn_job *j = arg;
    struct kz_ctx *x = j->x;
    const struct kz_model_config *c = &x->m->cfg;
    int hd = c->head_dim, group = c->n_head / c->n_head_kv, n = j->pos + 1;
    size_t nkv = (size_t)c->n_head_kv * (size_t)hd;
    const float *kc = x->k_cache + (size_t)j->layer * (size_t)x->n_ctx * nkv;
    const float *vc = x->v_cache + (size_t)j->layer * (size_t)x->n_ctx * nkv;
    float scale = 1.0f / sqrtf((float)hd);
    long h0, h1;
    kz_split_rows(c->n_head, ith, nth, &h0, &h1);
    for (long h = h0; h < h1; h++) {
        const float *q = x->q + h * hd;
        float *s = x->scores + h * x->n_ctx;
        size_t kvo = (size_t)(h / group) * (size_t)hd;
        float mx = -INFINITY;
        for (int t = 0; t < n; t++) {
            const float *k = kc + (size_t)t * nkv + kvo;
            float d = 0.0f;
            for (int i = 0; i < hd; i++)
                d += q[i] * k[i];
            s[t] = d * scale;
            if (s[t] > mx)
                mx = s[t];
        }
        float sum = 0.0f;
        for (int t = 0; t < n; t++) {
            s[t] = expf(s[t] - mx);
            sum += s[t];
        }
        float inv = 1.0f / sum;
        float *o = x->att_out + h * hd;
        memset(o, 0, (size_t)hd * sizeof *o);
        for (int t = 0; t < n; t++) {
            const float *v = vc + (size_t)t * nkv + kvo;
            float p = s[t] * inv;
            for (int i = 0; i < hd; i++)
                o[i] += p * v[i];
        }
    }
}

/* cos/sin of every rotated pair for position pos. Angles are computed in
 * double so that long contexts do not lose phase precision. */
static void rope_prepare(struct kz_ctx *x, int pos)
{
    const struct kz_model *m = x->m;
    const struct kz_model_config *c = &m->cfg;
    for (int i = 0; i < c->n_rot / 2; i++) {
        double freq = pow((double)c->rope_base, -2.0 * i / c->n_rot);
        double theta = (double)pos * (double)c->rope_freq_scale * freq;
        if (m->rope_freqs)
            theta /= (double)m->rope_freqs[i];
        x->rope_cs[2 * i] = (float)cos(theta);
        x->rope_cs[2 * i + 1] = (float)sin(theta);
    }
}

static void rope_apply(const struct kz_ctx *x, float *v, int n_heads)
{
    const struct kz_model_config *c = &x->m->cfg;
    int half = c->n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *p = v + h * c->head_dim;
        for (int i = 0; i < half; i++) {
            float cs = x->rope_cs[2 * i], sn = x->rope_cs[2 * i + 1];
            /* llama: adjacent pairs (2i, 2i+1); neox/qwen2: split halves (i, i+half) */
            int a = c->rope_neox ? i : 2 * i;
            int b = c->rope_neox ? i + half : 2 * i + 1;
            float x0 = p[a], x1 = p[b];
            p[a] = x0 * cs - x1 * sn;
            p[b] = x0 * sn + x1 * cs;
        }
    }
}

/* ---- forward --------------------------------------------------------------------------- */

static void forward_token(struct kz_ctx *x, int32_t token, int pos, int want_logits)
{
    const struct kz_model *m = x->m;
    const struct kz_model_config *c = &m->cfg;
    int n_embd = c->n_embd;
    int nq = c->n_head * c->head_dim, nkv = c->n_head_kv * c->head_dim;
    float *q = x->q, *k = x->q + nq, *v = k + nkv;
    const struct kz_kernels *k_ = m->kernels;

    m->tok_embd.ops->to_float((const char *)m->tok_embd.data + (size_t)token * m->tok_embd.row_size, x->x,
                              n_embd);
    rope_prepare(x, pos);
    for (int l = 0; l < c->n_layer; l++) {
        const struct layer *L = &m->layers[l];
        k_->rmsnorm(x->h, x->x, L->attn_norm, n_embd, c->norm_eps);
        const struct weight *wqkv[3] = {&L->wq, &L->wk, &L->wv};
        float *oqkv[3] = {q, k, v};
        matvec(x, 3, wqkv, x->h, oqkv);
        if (L->bq) {
            for (int i = 0; i < nq; i++)
                q[i] += L->bq[i];
            for (int i = 0; i < nkv; i++) {
                k[i] += L->bk[i];
                v[i] += L->bv[i];
            }
        }
        rope_apply(x, q, c->n_head);
        rope_apply(x, k, c->n_head_kv);
        size_t off = ((size_t)l * (size_t)x->n_ctx + (size_t)pos) * (size_t)nkv;
        memcpy(x->k_cache + off, k, (size_t)nkv * sizeof(float));
        memcpy(x->v_cache + off, v, (size_t)nkv * sizeof(float));
        struct attn_job aj = {x, l, pos};
        if (x->pool)
            kz_pool_run(x->pool, attn_task, &aj);
        else
            attn_task(&aj, 0, 1);
        const struct weight *wo[1] = {&L->wo};
        float *oh[1] = {x->h};
        matvec(x, 1, wo, x->att_out, oh);
        for (int i = 0; i < n_embd; i++)
            x->x[i] += x->h[i];

        k_->rmsnorm(x->h, x->x, L->ffn_norm, n_embd, c->norm_eps);
        const struct weight *wgu[2] = {&L->w_gate, &L->w_up};
        float *ogu[2] = {x->ff_a, x->ff_b};
        matvec(x, 2, wgu, x->h, ogu);
        k_->swiglu(x->ff_a, x->ff_a, x->ff_b, c->n_ff);
        const struct weight *wd[1] = {&L->w_down};
        float *od[1] = {x->h};
        matvec(x, 1, wd, x->ff_a, od);
        for (int i = 0; i < n_embd; i++)
            x->x[i] += x->h[i];
    }
    if (!want_logits)
        return;
    k_->rmsnorm(x->h, x->x, m->output_norm, n_embd, c->norm_eps);
    const struct weight *wout[1] = {&m->output};
    float *olog[1] = {x->logits};
    matvec(x, 1, wout, x->h, olog);
}

kz_status kz_ctx_eval(struct kz_ctx *x, const int32_t *tokens, int n, struct kz_err *err)
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
    for (int i = 0; i < n; i++)
        forward_token(x, tokens[i], x->n_past + i, i == n - 1);
    x->n_past += n;
    return KZ_OK;
}
