/* SPDX-License-Identifier: MIT
 * Activation block layouts for the integer dot products (internal to
 * src/engine/kernels/).
 *
 * A batched product first converts each activation row into an 8-bit block
 * format (kernels.h, "Matrix products over a batch of activations"); the
 * weight's codes are then multiplied with int8 activations in integer
 * arithmetic and the scales applied once per block. Two formats are used:
 *
 *   - Q8_0 (struct kz_block_q8_0 in quant.h) for the 32-element weight types
 *     Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0;
 *   - Q8_K (below) for the K-quants Q2_K..Q6_K: an f32 scale for 256 values
 *     and the sums of each run of 16 codes, which the kernels need to apply
 *     the weights' per-sub-block minimums (Q2_K, Q4_K, Q5_K) and code biases
 *     (Q3_K, Q6_K) without touching the codes again.
 *
 * Both quantizers produce codes in -127..127 (never -128), which the x86
 * kernels rely on (sign tricks, no saturation in pairwise int16 sums).
 * Q8_K is ggml's layout byte for byte (292 bytes, kz_dtype_info agrees).
 */
#ifndef KZ_Q8_H
#define KZ_Q8_H

#include <stdint.h>

#include "engine/kernels/quant.h"

/* Q8_K: x[e] ~= d * qs[e]; bsums[j] = sum of qs[16j .. 16j+15]. */
struct kz_block_q8_k {
    float d;
    int8_t qs[KZ_QK_K];
    int16_t bsums[KZ_QK_K / 16];
};

_Static_assert(sizeof(struct kz_block_q8_k) == 292, "Q8_K block layout");

#endif
