/* SPDX-License-Identifier: MIT
 * Reference f32 vector ops for the forward pass: RMS norm, softmax, SiLU,
 * SwiGLU and the matrix-vector product over any supported weight type.
 *
 * Reductions over a whole vector (mean of squares, softmax denominator) are
 * accumulated in double, in index order: these vectors are long (4096+),
 * and a cheap exact-ish yardstick makes the tolerance for faster variants
 * easy to state.
 */
#include "engine/kernels/kernels.h"

#include <math.h>
#include <string.h>

#include "core/assert.h"
#include "engine/gguf/dtype.h"

/* x (n,), w (n,) -> out (n,) */
void kz_ref_rmsnorm(float *out, const float *x, const float *restrict w, int64_t n, float eps)
{
    KZ_ASSERT(n > 0);
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)x[i] * (double)x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

/* x (n,) in place */
void kz_ref_softmax(float *x, int64_t n)
{
    KZ_ASSERT(n > 0);
    float max = x[0];
    for (int64_t i = 1; i < n; i++)
        if (x[i] > max)
            max = x[i];
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += (double)x[i];
    }
    /* sum >= 1: the max element contributes exp(0) */
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
}

static inline float silu1(float v)
{
    return v / (1.0f + expf(-v));
}

void kz_ref_silu(float *out, const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = silu1(x[i]);
}

void kz_ref_swiglu(float *out, const float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = silu1(gate[i]) * up[i];
}

float kz_ref_sum(const float *x, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i];
    return (float)s;
}

/* W (rows, cols) @ x (cols,) -> out (rows,), rows [r0, r1) only */
void kz_ref_matvec_rows(const void *w, uint32_t type, int64_t cols, const float *restrict x,
                        float *restrict out, int64_t r0, int64_t r1)
{
    const struct kz_type_ops *ops = kz_type_ops_ref(type);
    KZ_ASSERT(ops != NULL);
    uint32_t blck = 1, type_size = 0;
    kz_dtype_info(type, &blck, &type_size);
    KZ_ASSERT(cols % blck == 0);
    size_t row_size = (size_t)(cols / blck) * type_size;
    const unsigned char *base = w;
    for (int64_t r = r0; r < r1; r++)
        out[r] = ops->dot_f32(cols, base + (size_t)r * row_size, x);
}

void kz_ref_matvec(const void *w, uint32_t type, int64_t rows, int64_t cols,
                   const float *restrict x, float *restrict out)
{
    kz_ref_matvec_rows(w, type, cols, x, out, 0, rows);
}

uint32_t kz_ref_act_type(uint32_t wtype)
{
    (void)wtype;
    return KZ_DT_F32; /* the reference multiplies with exact f32 activations */
}

void kz_ref_act_quantize(uint32_t wtype, const float *restrict x, void *restrict dst, int64_t cols)
{
    (void)wtype;
    memcpy(dst, x, (size_t)cols * sizeof(float));
}

void kz_ref_gemm_rows(uint32_t wtype, const void *w, int64_t cols, const void *act, int n_tok,
                      float *out, int64_t out_stride, int64_t r0, int64_t r1)
{
    const float *x = act;
    /* token-major: each token is one matvec over the row range */
    for (int t = 0; t < n_tok; t++)
        kz_ref_matvec_rows(w, wtype, cols, x + (size_t)t * (size_t)cols, out + (size_t)t * (size_t)out_stride,
                           r0, r1);
}

void kz_ref_attn_scores(const float *q, const float *kt, int n, int hd, float scale, float *out)
{
    for (int p = 0; p < n; p++) {
        const float *col = kt + (size_t)(p / KZ_ATTN_TILE) * (size_t)hd * KZ_ATTN_TILE + p % KZ_ATTN_TILE;
        double s = 0.0; /* products of floats are exact in double */
        for (int i = 0; i < hd; i++)
            s += (double)q[i] * (double)col[(size_t)i * KZ_ATTN_TILE];
        out[p] = scale * (float)s;
    }
}

void kz_ref_attn_values(const float *s, const float *v, size_t stride, int n, int hd, float *out)
{
    for (int p = 0; p < n; p++)
        for (int i = 0; i < hd; i++)
            out[i] += s[p] * v[(size_t)p * stride + (size_t)i];
}
