/* SPDX-License-Identifier: MIT
 * Tensor element types as numbered in the GGUF format (the ggml type ids),
 * with their block geometry. A "block" is the unit of quantization: ne[0] of
 * a tensor must be a multiple of its block size, and a row of n elements
 * takes n / blck * type_size bytes.
 *
 * This table only knows sizes; kernels/ knows how to compute with a type.
 */
#ifndef KZ_DTYPE_H
#define KZ_DTYPE_H

#include <stddef.h>
#include <stdint.h>

enum kz_dtype {
    KZ_DT_F32 = 0,
    KZ_DT_F16 = 1,
    KZ_DT_Q4_0 = 2,
    KZ_DT_Q4_1 = 3,
    KZ_DT_Q5_0 = 6,
    KZ_DT_Q5_1 = 7,
    KZ_DT_Q8_0 = 8,
    KZ_DT_Q8_1 = 9,
    KZ_DT_Q2_K = 10,
    KZ_DT_Q3_K = 11,
    KZ_DT_Q4_K = 12,
    KZ_DT_Q5_K = 13,
    KZ_DT_Q6_K = 14,
    KZ_DT_Q8_K = 15,
    KZ_DT_IQ2_XXS = 16,
    KZ_DT_IQ2_XS = 17,
    KZ_DT_IQ3_XXS = 18,
    KZ_DT_IQ1_S = 19,
    KZ_DT_IQ4_NL = 20,
    KZ_DT_IQ3_S = 21,
    KZ_DT_IQ2_S = 22,
    KZ_DT_IQ4_XS = 23,
    KZ_DT_I8 = 24,
    KZ_DT_I16 = 25,
    KZ_DT_I32 = 26,
    KZ_DT_I64 = 27,
    KZ_DT_F64 = 28,
    KZ_DT_IQ1_M = 29,
    KZ_DT_BF16 = 30,
    KZ_DT_TQ1_0 = 34,
    KZ_DT_TQ2_0 = 35,
    KZ_DT_MXFP4 = 39,
    KZ_DT_COUNT = 40
};

/* Block geometry of type t: returns 0 and leaves outputs alone when t is not
 * a known type id (including retired ids such as 4, 5 and 31-33). */
int kz_dtype_info(uint32_t t, uint32_t *blck /* out */, uint32_t *type_size /* out */);

/* "Q4_K" etc., or NULL for an unknown id. Static storage. */
const char *kz_dtype_name(uint32_t t);

/* Parses a name such as "q4_k" or "Q8_0" (case-insensitive); -1 if unknown. */
int kz_dtype_from_name(const char *name);

/* Bytes of a row of n elements of type t (n a multiple of the block size). */
size_t kz_dtype_row_size(uint32_t t, int64_t n);

#endif
