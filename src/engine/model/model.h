/* SPDX-License-Identifier: MIT
 * Llama-family model: hyperparameters and weights read from a GGUF file, and
 * a per-sequence context (KV cache + scratch) that evaluates tokens.
 *
 * Architectures: `llama` (Llama 1/2/3, Mistral, TinyLlama, SmolLM: RMSNorm,
 * RoPE on adjacent pairs, grouped-query attention, SwiGLU) and `qwen2`
 * (the same plus q/k/v biases, RoPE on split halves). The output projection
 * is tied to the token embedding when `output.weight` is absent.
 *
 * Ownership: kz_model owns the mapped GGUF; weights point into the mapping
 * and are never copied. A kz_ctx borrows its model, which must outlive it.
 * A model is immutable after load and may be shared by many contexts; a
 * context is used by one thread at a time.
 */
#ifndef KZ_MODEL_H
#define KZ_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

struct kz_gguf;
struct kz_pool;

#define KZ_MODEL_MAX_LAYERS 512
#define KZ_MODEL_MAX_EMBD 65536
#define KZ_MODEL_MAX_HEADS 1024
#define KZ_MODEL_MAX_FF (1 << 20)
#define KZ_MODEL_MAX_VOCAB (1 << 22)
#define KZ_MODEL_MAX_CTX (1 << 22)

enum kz_arch { KZ_ARCH_LLAMA, KZ_ARCH_QWEN2 };

struct kz_model_config {
    enum kz_arch arch;
    char arch_name[32];
    int n_vocab;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int head_dim;      /* per head; n_head * head_dim is the Q width */
    int n_ff;
    int n_ctx_train;
    int n_rot;         /* rotated dims per head (<= head_dim) */
    int rope_neox;     /* 1: rotate (i, i + n_rot/2); 0: rotate (2i, 2i+1) */
    float rope_base;
    float rope_freq_scale; /* 1 / linear scaling factor */
    float norm_eps;
};

struct kz_model;

/* Opens, validates and maps `path`. Errors name the file and the problem
 * (missing tensor, wrong shape, unsupported type, bad hyperparameter). */
kz_status kz_model_load(const char *path, struct kz_model **out, struct kz_err *err);
void kz_model_free(struct kz_model *m); /* NULL is a no-op */

const struct kz_model_config *kz_model_config(const struct kz_model *m);
const struct kz_gguf *kz_model_gguf(const struct kz_model *m);
/* Total number of weight elements (for `info`). */
uint64_t kz_model_n_params(const struct kz_model *m);
/* Weight bytes one decoded token reads (every matrix once, one embedding
 * row): the numerator of the memory-bandwidth roofline. */
uint64_t kz_model_decode_bytes(const struct kz_model *m);

/* Reads and checks hyperparameters only (used by load and by `info`). */
kz_status kz_model_read_config(const struct kz_gguf *g, struct kz_model_config *cfg, struct kz_err *err);

struct kz_ctx;

/* A context for one sequence of up to n_ctx tokens (n_ctx 0: the training
 * context). kv_type is the KV cache's element type: KZ_DT_F16 (half the
 * memory and half the bytes attention reads; K and V rounded to 11
 * significant bits) or KZ_DT_F32 (exact). `pool` (borrowed, may be NULL for
 * single-threaded) runs kernels. */
kz_status kz_ctx_new(const struct kz_model *m, int n_ctx, uint32_t kv_type, struct kz_pool *pool,
                     struct kz_ctx **out, struct kz_err *err);
/* The KV cache type called name: "f16" or "f32" (NULL or "": "f16", the
 * default). KZ_EINVAL naming the accepted values otherwise. */
kz_status kz_kv_type_parse(const char *name, uint32_t *out, struct kz_err *err);
void kz_ctx_free(struct kz_ctx *c);
int kz_ctx_n_ctx(const struct kz_ctx *c);
int kz_ctx_n_past(const struct kz_ctx *c);
/* Forgets the sequence (KV cache contents are simply overwritten later). */
void kz_ctx_reset(struct kz_ctx *c);

/* Appends n tokens at positions n_past..n_past+n-1 and computes the logits of
 * the last one. KZ_ELIMIT (with a message) when the tokens do not fit in the
 * context; KZ_EINVAL for a token id outside the vocabulary. On error the
 * context is unchanged. */
kz_status kz_ctx_eval(struct kz_ctx *c, const int32_t *tokens, int n, struct kz_err *err);
/* Logits of the last evaluated token: n_vocab floats, valid until the next eval. */
const float *kz_ctx_logits(const struct kz_ctx *c);

/* Pooled embedding: the mean over every token evaluated with KZ_BATCH_EMBD
 * (or by kz_ctx_eval_embd) of the final, normalized hidden state, scaled to
 * unit L2 norm, into out (n_embd floats). KZ_EINVAL when no token was pooled. */
kz_status kz_ctx_embedding(const struct kz_ctx *c, float *out, struct kz_err *err);
/* As kz_ctx_eval, but every token also adds its hidden state to the pool. */
kz_status kz_ctx_eval_embd(struct kz_ctx *c, const int32_t *tokens, int n, struct kz_err *err);

/* ---- batches over many contexts (continuous batching) ---------------------
 * One call evaluates tokens of several sequences at once, reading every
 * weight once for all of them. Items of one context must be in order; item
 * i of context c is placed at position c.n_past + (earlier items of c), and
 * each context's n_past advances by its item count. */
enum {
    KZ_BATCH_LOGITS = 1, /* compute logits for this token into its context */
    KZ_BATCH_EMBD = 2,   /* add this token's hidden state to its context's pool */
};

struct kz_batch_item {
    struct kz_ctx *ctx;
    int32_t token;
    unsigned flags;
};

/* Scratch memory for batches of up to n_tok_max tokens of which at most
 * n_logits_max want logits, over contexts of at most n_ctx_max positions.
 * Owned by one thread (the scheduler); free with kz_work_free. */
struct kz_work;
kz_status kz_work_new(const struct kz_model *m, int n_tok_max, int n_logits_max, int n_ctx_max,
                      struct kz_work **out, struct kz_err *err);
void kz_work_free(struct kz_work *w);

/* Evaluates the batch. KZ_ELIMIT when it exceeds the work's sizes or a
 * context's free positions, KZ_EINVAL for a bad token id; on error no
 * context changes. `pool` may be NULL. */
kz_status kz_model_eval_batch(const struct kz_model *m, struct kz_work *w, struct kz_pool *pool,
                              const struct kz_batch_item *items, int n, struct kz_err *err);

#endif
