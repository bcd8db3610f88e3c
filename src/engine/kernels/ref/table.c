/* SPDX-License-Identifier: MIT
 * The reference dispatch tables: per-type ops by ggml type id and the
 * kz_kernels_ref table. Choosing among the variants is kernels/dispatch.c.
 */
#include "engine/kernels/kernels.h"

#include "engine/gguf/dtype.h"

#define OPS(t, quantizer) {kz_ref_##t##_to_float, quantizer, kz_ref_##t##_dot_f32}

/* Indexed by type id; an all-NULL entry marks an unsupported type. */
static const struct kz_type_ops ref_ops[KZ_DT_COUNT] = {
    [KZ_DT_F32] = OPS(f32, kz_ref_f32_from_float),
    [KZ_DT_F16] = OPS(f16, kz_ref_f16_from_float),
    [KZ_DT_BF16] = OPS(bf16, kz_ref_bf16_from_float),
    [KZ_DT_Q4_0] = OPS(q4_0, kz_ref_q4_0_from_float),
    [KZ_DT_Q4_1] = OPS(q4_1, kz_ref_q4_1_from_float),
    [KZ_DT_Q5_0] = OPS(q5_0, kz_ref_q5_0_from_float),
    [KZ_DT_Q5_1] = OPS(q5_1, kz_ref_q5_1_from_float),
    [KZ_DT_Q8_0] = OPS(q8_0, kz_ref_q8_0_from_float),
    [KZ_DT_Q2_K] = OPS(q2_k, kz_ref_q2_k_from_float),
    [KZ_DT_Q3_K] = OPS(q3_k, kz_ref_q3_k_from_float),
    [KZ_DT_Q4_K] = OPS(q4_k, kz_ref_q4_k_from_float),
    [KZ_DT_Q5_K] = OPS(q5_k, kz_ref_q5_k_from_float),
    [KZ_DT_Q6_K] = OPS(q6_k, kz_ref_q6_k_from_float),
};

const struct kz_type_ops *kz_type_ops_ref(uint32_t type)
{
    if (type >= KZ_DT_COUNT || !ref_ops[type].to_float)
        return NULL;
    return &ref_ops[type];
}

const struct kz_kernels kz_kernels_ref = {
    .name = "ref",
    .type_ops = kz_type_ops_ref,
    .matvec_rows = kz_ref_matvec_rows,
    .rmsnorm = kz_ref_rmsnorm,
    .softmax = kz_ref_softmax,
    .silu = kz_ref_silu,
    .swiglu = kz_ref_swiglu,
    .sum = kz_ref_sum,
    .attn_scores = kz_ref_attn_scores,
    .attn_values = kz_ref_attn_values,
    .act_type = kz_ref_act_type,
    .act_quantize = kz_ref_act_quantize,
    .gemm_rows = kz_ref_gemm_rows,
};
