/* SPDX-License-Identifier: MIT
 * Token sampler: turns a logits vector into the next token id.
 *
 * Order of operations (each step is skipped at its neutral setting):
 *   penalties (repetition, presence, frequency over the last repeat_last_n
 *   accepted tokens) -> top-k -> top-p -> min-p -> temperature -> draw.
 * temp <= 0 is greedy: the argmax after penalties, ties to the lowest id.
 * Tokens more than 30 x max(temp, 1) logits below the best are never drawn
 * (each is under e^-30 of the best's probability; this keeps sampling from
 * sorting the whole vocabulary).
 * The draw uses a seeded xoshiro256** generator, so a fixed seed and the
 * same logits give the same tokens on every machine.
 *
 * Ownership: kz_sampler_new allocates; kz_sampler_free releases. Not
 * thread-safe; one sampler per sequence.
 */
#ifndef KZ_SAMPLER_H
#define KZ_SAMPLER_H

#include <stdint.h>

#include "core/status.h"

struct kz_sampler_params {
    float temp;             /* 0: greedy; default 0.8 */
    int top_k;              /* <= 0: off; default 40 */
    float top_p;            /* >= 1: off; default 0.95 */
    float min_p;            /* <= 0: off; default 0.05 */
    float repeat_penalty;   /* 1: off */
    int repeat_last_n;      /* window for all penalties; default 64 */
    float presence_penalty; /* 0: off (OpenAI semantics) */
    float frequency_penalty;/* 0: off (OpenAI semantics) */
    uint64_t seed;
};

/* Defaults as documented above, seed 0 (callers pick a random one if wanted). */
struct kz_sampler_params kz_sampler_defaults(void);

/* Checks ranges (temp >= 0, top_p in (0,1], min_p in [0,1], penalties
 * finite, repeat_penalty > 0); the message names the parameter. */
kz_status kz_sampler_params_check(const struct kz_sampler_params *p, struct kz_err *err);

struct kz_sampler;

struct kz_sampler *kz_sampler_new(const struct kz_sampler_params *p, int n_vocab);
void kz_sampler_free(struct kz_sampler *s);

/* Picks the next token from n_vocab logits (not modified). */
int32_t kz_sampler_sample(struct kz_sampler *s, const float *logits);
/* Records a token (prompt or generated) for the penalties. */
void kz_sampler_accept(struct kz_sampler *s, int32_t token);

/* Index of the largest value, lowest index on ties. */
int32_t kz_argmax(const float *v, int n);

#endif
