/* SPDX-License-Identifier: MIT
 * Reference integer dot products: weight rows against activations quantized
 * to 8 bits (Q8_0 for the 32-element types, Q8_K for the K-quants; layouts
 * in quant.h and q8.h). These are the yardstick for the SIMD families'
 * batched products, which must agree exactly in every integer sum and
 * within a float-rounding tolerance overall.
 *
 * Each kernel unpacks a weight block into integer codes (element order, the
 * formulas of quant.h), then, per block:
 *   32-element types, one block of weights w and activations a:
 *       isum = sum_e q[e] * a.qs[e]          (int32, exact; q de-biased)
 *       total += (d_w * d_a) * isum
 *     offset types Q4_1/Q5_1 (w = d*q + m) also add
 *       total += (m_w * d_a) * asum,  asum = sum_e a.qs[e]
 *   K-quants, one super-block of 256:
 *       sumi = sum_s scale_s * (sum_{e in s} q[e] * a.qs[e])   (int32, exact)
 *       summ = sum_s min_s * (a's code sum over sub-block s)   (int32, exact)
 *       total += (d_w * d_a) * sumi - (dmin_w * d_a) * summ
 *     with q de-biased for Q3_K (q-4) and Q6_K (q-32) and signed scales.
 * `total` is an f32 accumulated over blocks in order. No int32 sum can
 * overflow: the largest, Q4_K/Q5_K sumi, is below 8 * 63 * 32 * 31 * 127.
 */
#include "engine/kernels/kernels.h"
#include "engine/kernels/q8.h"
#include "engine/kernels/quant.h"

#include <math.h>
#include <string.h>

#include "core/assert.h"
#include "engine/gguf/dtype.h"

uint32_t kz_q8_act_type(uint32_t wtype)
{
    switch (wtype) {
    case KZ_DT_Q4_0:
    case KZ_DT_Q4_1:
    case KZ_DT_Q5_0:
    case KZ_DT_Q5_1:
    case KZ_DT_Q8_0:
        return KZ_DT_Q8_0;
    case KZ_DT_Q2_K:
    case KZ_DT_Q3_K:
    case KZ_DT_Q4_K:
    case KZ_DT_Q5_K:
    case KZ_DT_Q6_K:
        return KZ_DT_Q8_K;
    default:
        return KZ_DT_F32;
    }
}

// ---------------------------------------------------------------- Q8_K quantizer

/* x (n,) -> (n/256,) blocks */
void kz_ref_quantize_q8_k(const float *restrict x, void *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    struct kz_block_q8_k *b = dst;
    for (int64_t i = 0; i < n / KZ_QK_K; i++, x += KZ_QK_K) {
        float amax = 0.0f;
        for (int e = 0; e < KZ_QK_K; e++)
            amax = fmaxf(amax, fabsf(x[e]));
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        b[i].d = amax / 127.0f;
        for (int e = 0; e < KZ_QK_K; e++) {
            long q = lrintf(x[e] * id); /* |x * id| <= 127 up to rounding */
            b[i].qs[e] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
        }
        for (int j = 0; j < KZ_QK_K / 16; j++) {
            int s = 0;
            for (int e = 0; e < 16; e++)
                s += b[i].qs[16 * j + e];
            b[i].bsums[j] = (int16_t)s;
        }
    }
}

// ---------------------------------------------------------------- 32-element types

/* 4-bit code of element e: low nibble of qs[e] (e < 16) or high nibble of qs[e-16]. */
static inline int nib(const uint8_t qs[16], int e)
{
    return e < 16 ? (qs[e] & 15) : (qs[e - 16] >> 4);
}

/* Fifth bit of element e: bit e of qh as a little-endian u32. */
static inline int bit5(const uint8_t qh[4], int e)
{
    return (qh[e / 8] >> (e % 8)) & 1;
}

static inline int32_t isum32(const int q[32], const int8_t a[32])
{
    int32_t s = 0;
    for (int e = 0; e < 32; e++)
        s += q[e] * a[e];
    return s;
}

static inline int32_t asum32(const int8_t a[32])
{
    int32_t s = 0;
    for (int e = 0; e < 32; e++)
        s += a[e];
    return s;
}

float kz_ref_vec_dot_q4_0_q8_0(int64_t n, const void *restrict w, const void *restrict a)
{
    KZ_ASSERT(n % 32 == 0);
    const struct kz_block_q4_0 *bw = w;
    const struct kz_block_q8_0 *ba = a;
    float total = 0.0f;
    int q[32];
    for (int64_t i = 0; i < n / 32; i++) {
        for (int e = 0; e < 32; e++)
            q[e] = nib(bw[i].qs, e) - 8;
        float d = kz_fp16_to_fp32(bw[i].d) * kz_fp16_to_fp32(ba[i].d);
        total += d * (float)isum32(q, ba[i].qs);
    }
    return total;
}

float kz_ref_vec_dot_q4_1_q8_0(int64_t n, const void *restrict w, const void *restrict a)
{
    KZ_ASSERT(n % 32 == 0);
    const struct kz_block_q4_1 *bw = w;
    const struct kz_block_q8_0 *ba = a;
    float total = 0.0f;
    int q[32];
    for (int64_t i = 0; i < n / 32; i++) {
        for (int e = 0; e < 32; e++)
            q[e] = nib(bw[i].qs, e);
        float da = kz_fp16_to_fp32(ba[i].d);
        float d = kz_fp16_to_fp32(bw[i].d) * da, m = kz_fp16_to_fp32(bw[i].m) * da;
        total += d * (float)isum32(q, ba[i].qs) + m * (float)asum32(ba[i].qs);
    }
    return total;
}

float kz_ref_vec_dot_q5_0_q8_0(int64_t n, const void *restrict w, const void *restrict a)
{
    KZ_ASSERT(n % 32 == 0);
    const struct kz_block_q5_0 *bw = w;
    const struct kz_block_q8_0 *ba = a;
    float total = 0.0f;
    int q[32];
    for (int64_t i = 0; i < n / 32; i++) {
        for (int e = 0; e < 32; e++)
            q[e] = (nib(bw[i].qs, e) | bit5(bw[i].qh, e) << 4) - 16;
        float d = kz_fp16_to_fp32(bw[i].d) * kz_fp16_to_fp32(ba[i].d);
        total += d * (float)isum32(q, ba[i].qs);
    }
    return total;
}

float kz_ref_vec_dot_q5_1_q8_0(int64_t n, const void *restrict w, const void *restrict a)
{
    KZ_ASSERT(n % 32 == 0);
    const struct kz_block_q5_1 *bw = w;
    const struct kz_block_q8_0 *ba = a;
    float total = 0.0f;
    int q[32];
    for (int64_t i = 0; i < n / 32; i++) {
        for (int e = 0; e < 32; e++)
            q[e] = nib(bw[i].qs, e) | bit5(bw[i].qh, e) << 4;
        float da = kz_fp16_to_fp32(ba[i].d);
        float d = kz_fp16_to_fp32(bw[i].d) * da, m = kz_fp16_to_fp32(bw[i].m) * da;
        total += d * (float)isum32(q, ba[i].qs) + m * (float)asum32(ba[i].qs);
    }
    return total;
}

float kz_ref_vec_dot_q8_0_q8_0(int64_t n, const void *restrict w, const void *restrict a)
{
    KZ_ASSERT(n % 32 == 0);
    const struct kz_block_q8_0 *bw = w;
    const struct kz_block_q8_0 *ba = a;
    float total = 0.0f;
    int q[32];
    for (int64_t i = 0; i < n / 32; i++) {
        for (int e = 0; e < 32; e++)
            q[e] = bw[i].qs[e];
        float d = kz_fp16_to_fp32(bw[i].d) * kz_fp16_to_fp32(ba[i].d);
        total += d * (float)isum32(q, ba[i].qs);
    }
    return total;
}

// ---------------------------------------------------------------- K-quants

/* One super-block's contribution from de-biased codes q (256,), per
 * sub-block scales sc and mins m (nsub sub-blocks of 256/nsub), against a. */
static float kblock(const int q[256], const int sc[16], const int m[16], int nsub, float d,
                    float dmin, const struct kz_block_q8_k *a)
{
    int len = KZ_QK_K / nsub;
    int32_t sumi = 0, summ = 0;
    for (int s = 0; s < nsub; s++) {
        int32_t is = 0, as = 0;
        for (int e = s * len; e < (s + 1) * len; e++) {
            is += q[e] * a->qs[e];
            as += a->qs[e];
        }
        sumi += sc[s] * is;
        summ += m[s] * as;
    }
    return (d * a->d) * (float)sumi - (dmin * a->d) * (float)summ;
}

float kz_ref_vec_dot_q2_k_q8_k(int64_t n, const void *restrict w, const void *restrict a)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    const struct kz_block_q2_k *bw = w;
    const struct kz_block_q8_k *ba = a;
    int q[256], sc[16], m[16];
    float total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK_K; i++) {
        const struct kz_block_q2_k *b = &bw[i];
        for (int s = 0; s < 16; s++) {
            sc[s] = b->scales[s] & 15;
            m[s] = b->scales[s] >> 4;
        }
        /* e = 128h + 32j + t: bits 2j..2j+1 of qs[32h + t] */
        for (int e = 0; e < 256; e++)
            q[e] = (b->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        total += kblock(q, sc, m, 16, kz_fp16_to_fp32(b->d), kz_fp16_to_fp32(b->dmin), &ba[i]);
    }
    return total;
}

float kz_ref_vec_dot_q3_k_q8_k(int64_t n, const void *restrict w, const void *restrict a)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    const struct kz_block_q3_k *bw = w;
    const struct kz_block_q8_k *ba = a;
    int q[256], sc[16], m[16] = {0};
    float total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK_K; i++) {
        const struct kz_block_q3_k *b = &bw[i];
        for (int s = 0; s < 16; s++)
            sc[s] = kz_q3k_scale(b->scales, s) - 32;
        /* e = 128h + 32j + t: low bits as Q2_K, bit 2 = bit (4h + j) of hmask[t] */
        for (int e = 0; e < 256; e++) {
            int h = e / 128, j = (e % 128) / 32, t = e % 32;
            int lo = (b->qs[32 * h + t] >> (2 * j)) & 3;
            int hi = (b->hmask[t] >> (4 * h + j)) & 1;
            q[e] = (lo | hi << 2) - 4;
        }
        total += kblock(q, sc, m, 16, kz_fp16_to_fp32(b->d), 0.0f, &ba[i]);
    }
    return total;
}

static void k4_scales(const uint8_t scales[12], int sc[16], int m[16])
{
    for (int s = 0; s < 8; s++) {
        uint8_t a, b;
        kz_q4k_scale_min(scales, s, &a, &b);
        sc[s] = a;
        m[s] = b;
    }
}

float kz_ref_vec_dot_q4_k_q8_k(int64_t n, const void *restrict w, const void *restrict a)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    const struct kz_block_q4_k *bw = w;
    const struct kz_block_q8_k *ba = a;
    int q[256], sc[16], m[16];
    float total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK_K; i++) {
        const struct kz_block_q4_k *b = &bw[i];
        k4_scales(b->scales, sc, m);
        /* e = 64c + 32k + l: nibble k of qs[32c + l] */
        for (int e = 0; e < 256; e++)
            q[e] = (b->qs[32 * (e / 64) + e % 32] >> (4 * ((e % 64) / 32))) & 15;
        total += kblock(q, sc, m, 8, kz_fp16_to_fp32(b->d), kz_fp16_to_fp32(b->dmin), &ba[i]);
    }
    return total;
}

float kz_ref_vec_dot_q5_k_q8_k(int64_t n, const void *restrict w, const void *restrict a)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    const struct kz_block_q5_k *bw = w;
    const struct kz_block_q8_k *ba = a;
    int q[256], sc[16], m[16];
    float total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK_K; i++) {
        const struct kz_block_q5_k *b = &bw[i];
        k4_scales(b->scales, sc, m);
        /* low 4 bits as Q4_K; bit 4 = bit (e / 32) of qh[e % 32] */
        for (int e = 0; e < 256; e++) {
            int lo = (b->qs[32 * (e / 64) + e % 32] >> (4 * ((e % 64) / 32))) & 15;
            q[e] = lo | ((b->qh[e % 32] >> (e / 32)) & 1) << 4;
        }
        total += kblock(q, sc, m, 8, kz_fp16_to_fp32(b->d), kz_fp16_to_fp32(b->dmin), &ba[i]);
    }
    return total;
}

float kz_ref_vec_dot_q6_k_q8_k(int64_t n, const void *restrict w, const void *restrict a)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    const struct kz_block_q6_k *bw = w;
    const struct kz_block_q8_k *ba = a;
    int q[256], sc[16], m[16] = {0};
    float total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK_K; i++) {
        const struct kz_block_q6_k *b = &bw[i];
        for (int s = 0; s < 16; s++)
            sc[s] = b->scales[s];
        /* e = 128h + 32k + l: nibble (k >= 2) of ql[64h + 32(k & 1) + l],
         * high bits 2k..2k+1 of qh[32h + l] */
        for (int e = 0; e < 256; e++) {
            int h = e / 128, k = (e % 128) / 32, l = e % 32;
            int lo = (b->ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 15;
            int hi = (b->qh[32 * h + l] >> (2 * k)) & 3;
            q[e] = (lo | hi << 4) - 32;
        }
        total += kblock(q, sc, m, 16, kz_fp16_to_fp32(b->d), 0.0f, &ba[i]);
    }
    return total;
}

kz_dot_q8_fn kz_ref_dot_q8(uint32_t wtype)
{
    switch (wtype) {
    case KZ_DT_Q4_0: return kz_ref_vec_dot_q4_0_q8_0;
    case KZ_DT_Q4_1: return kz_ref_vec_dot_q4_1_q8_0;
    case KZ_DT_Q5_0: return kz_ref_vec_dot_q5_0_q8_0;
    case KZ_DT_Q5_1: return kz_ref_vec_dot_q5_1_q8_0;
    case KZ_DT_Q8_0: return kz_ref_vec_dot_q8_0_q8_0;
    case KZ_DT_Q2_K: return kz_ref_vec_dot_q2_k_q8_k;
    case KZ_DT_Q3_K: return kz_ref_vec_dot_q3_k_q8_k;
    case KZ_DT_Q4_K: return kz_ref_vec_dot_q4_k_q8_k;
    case KZ_DT_Q5_K: return kz_ref_vec_dot_q5_k_q8_k;
    case KZ_DT_Q6_K: return kz_ref_vec_dot_q6_k_q8_k;
    default: return NULL;
    }
}

// ---------------------------------------------------------------- batched products

void kz_ref_q8_act_quantize(uint32_t wtype, const float *restrict x, void *restrict dst, int64_t cols)
{
    switch (kz_q8_act_type(wtype)) {
    case KZ_DT_Q8_0:
        kz_ref_q8_0_from_float(x, dst, cols);
        break;
    case KZ_DT_Q8_K:
        kz_ref_quantize_q8_k(x, dst, cols);
        break;
    default:
        kz_ref_act_quantize(wtype, x, dst, cols);
        break;
    }
}

/* W (rows, cols) @ act^T -> out[t * out_stride + r], rows [r0, r1) */
void kz_ref_q8_gemm_rows(uint32_t wtype, const void *w, int64_t cols, const void *act, int n_tok,
                         float *out, int64_t out_stride, int64_t r0, int64_t r1)
{
    kz_dot_q8_fn dot = kz_ref_dot_q8(wtype);
    if (!dot) {
        kz_ref_gemm_rows(wtype, w, cols, act, n_tok, out, out_stride, r0, r1);
        return;
    }
    size_t wrow = kz_dtype_row_size(wtype, cols);
    size_t arow = kz_dtype_row_size(kz_q8_act_type(wtype), cols);
    KZ_ASSERT(wrow > 0 && arow > 0);
    const unsigned char *wb = w, *ab = act;
    for (int t = 0; t < n_tok; t++)
        for (int64_t r = r0; r < r1; r++)
            out[(size_t)t * (size_t)out_stride + (size_t)r] =
                dot(cols, wb + (size_t)r * wrow, ab + (size_t)t * arow);
}
