/* SPDX-License-Identifier: MIT
 * Model loading: binds every tensor of a `llama` or `qwen2` GGUF by name,
 * checks shapes and types against the hyperparameters, and precomputes the
 * RoPE frequencies. The forward pass is in forward.c.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/gguf/gguf.h"
#include "engine/kernels/kernels.h"
#include "engine/model/model.h"
#include "engine/model/model_int.h"
#include "engine/sched/threadpool.h"

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
    /* base^(-2i/n_rot) once per model, in double: the per-position angle is
     * then one multiply, and long contexts keep their phase precision */
    m->rope_inv_freq = kz_calloc((size_t)(c->n_rot / 2 + 1), sizeof *m->rope_inv_freq);
    if (!m->rope_inv_freq)
        return kz_err_set(err, KZ_ENOMEM, "%s: out of memory", kz_gguf_name(m->g));
    for (int i = 0; i < c->n_rot / 2; i++) {
        m->rope_inv_freq[i] = pow((double)c->rope_base, -2.0 * i / c->n_rot) * (double)c->rope_freq_scale;
        if (m->rope_freqs)
            m->rope_inv_freq[i] /= (double)m->rope_freqs[i];
    }
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
    kz_status rc = kz_gguf_load(path, &m->g, err);
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
    kz_free(m->rope_inv_freq);
    kz_gguf_close(m->g);
    kz_free(m);
}

const struct kz_model_config *kz_model_config(const struct kz_model *m) { return &m->cfg; }
const struct kz_gguf *kz_model_gguf(const struct kz_model *m) { return m->g; }
uint64_t kz_model_n_params(const struct kz_model *m) { return m->n_params; }

static uint64_t matrix_bytes(const struct weight *w) { return (uint64_t)w->row_size * (uint64_t)w->rows; }

uint64_t kz_model_decode_bytes(const struct kz_model *m)
{
    const struct kz_model_config *c = &m->cfg;
    /* every layer matrix and the output projection are read in full; of the
     * embedding only one row; norms and biases are noise at this scale */
    uint64_t b = matrix_bytes(&m->output) + m->tok_embd.row_size;
    for (int l = 0; l < c->n_layer; l++) {
        const struct layer *L = &m->layers[l];
        b += matrix_bytes(&L->wq) + matrix_bytes(&L->wk) + matrix_bytes(&L->wv) + matrix_bytes(&L->wo) +
             matrix_bytes(&L->w_gate) + matrix_bytes(&L->w_up) + matrix_bytes(&L->w_down);
    }
    return b;
}
