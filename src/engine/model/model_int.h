/* SPDX-License-Identifier: MIT
 * Internal to src/engine/model: the loaded model's layout, shared by the
 * loader (llama.c) and the forward pass (forward.c).
 */
#ifndef KZ_MODEL_INT_H
#define KZ_MODEL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/kernels/kernels.h"
#include "engine/model/model.h"

struct kz_gguf;

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
    double *rope_inv_freq;   /* (n_rot/2) freq_scale * base^(-2i/n_rot) / rope_freqs[i] */
    struct layer *layers;
    uint64_t n_params;
};

#endif
