/* SPDX-License-Identifier: MIT
 * Synthetic models: GGUF files of a named Llama-family shape with random
 * weights drawn from a fixed seed, for tests, fuzz seeds and benchmarks.
 *
 * Weights: token_embd and output ~ N(0, 1); attention and FFN matrices
 * ~ N(0, 0.02); norm weights 1; qwen2 q/k/v biases ~ N(0, 0.1). Every row is
 * seeded from (seed, tensor name, row), so the file does not depend on the
 * thread count. The vocabulary is copied from a real GGUF when one is given,
 * otherwise a small byte-fallback SentencePiece vocabulary is generated.
 */
#ifndef KZ_SYNTH_H
#define KZ_SYNTH_H

#include <stdint.h>

#include "core/status.h"

struct kz_synth_shape {
    const char *name;
    int n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx, n_vocab_default;
    float rope_base;
};

/* Named shapes (tiny, small, tinyllama-1.1b, tinyllama-1layer, llama-3b); NULL-name terminated. */
extern const struct kz_synth_shape kz_synth_shapes[];

struct kz_synth_opts {
    const char *out_path;
    const char *shape;      /* a kz_synth_shapes name */
    const char *type;       /* f32 f16 bf16 q8_0 q4_0 q4_k q6_k q4_k_m */
    const char *arch;       /* "llama" (default) or "qwen2" */
    const char *vocab_path; /* GGUF to copy tokenizer.* from, or NULL */
    uint64_t seed;
    int n_threads;
    int tied;               /* 1: no output.weight (logits use token_embd) */
};

kz_status kz_synth_write(const struct kz_synth_opts *o, struct kz_err *err);

#endif
