/* SPDX-License-Identifier: MIT
 * Reference kernels for the unquantized types F32, F16 and BF16.
 *
 * Dot products accumulate w[i] * x[i] into a single f32 sum in index order
 * (i = 0, 1, ..., n-1), each product formed after widening w[i] to f32.
 */
#include "engine/kernels/kernels.h"
#include "engine/kernels/quant.h"

#include <string.h>

// ---------------------------------------------------------------- F32

void kz_ref_f32_to_float(const void *restrict src, float *restrict dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void kz_ref_f32_from_float(const float *restrict src, void *restrict dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

/* w (n,) f32 . x (n,) */
float kz_ref_f32_dot_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    const float *wf = w;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += wf[i] * x[i];
    return sum;
}

// ---------------------------------------------------------------- F16

void kz_ref_f16_to_float(const void *restrict src, float *restrict dst, int64_t n)
{
    const uint16_t *h = src; /* (n,) binary16 bit patterns */
    for (int64_t i = 0; i < n; i++)
        dst[i] = kz_fp16_to_fp32(h[i]);
}

void kz_ref_f16_from_float(const float *restrict src, void *restrict dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++)
        h[i] = kz_fp32_to_fp16(src[i]);
}

float kz_ref_f16_dot_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    const uint16_t *h = w;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += kz_fp16_to_fp32(h[i]) * x[i];
    return sum;
}

// ---------------------------------------------------------------- BF16

void kz_ref_bf16_to_float(const void *restrict src, float *restrict dst, int64_t n)
{
    const uint16_t *h = src; /* (n,) bfloat16 bit patterns */
    for (int64_t i = 0; i < n; i++)
        dst[i] = kz_bf16_to_fp32(h[i]);
}

void kz_ref_bf16_from_float(const float *restrict src, void *restrict dst, int64_t n)
{
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++)
        h[i] = kz_fp32_to_bf16(src[i]);
}

float kz_ref_bf16_dot_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    const uint16_t *h = w;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++)
        sum += kz_bf16_to_fp32(h[i]) * x[i];
    return sum;
}
