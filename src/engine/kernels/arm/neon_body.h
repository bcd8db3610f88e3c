/* SPDX-License-Identifier: MIT
 * The AArch64 NEON kernel bodies shared by arm/neon.c and
 * arm/neon_dotprod.c. As with x86/x86_body.h, each of those files defines
 * the macros below and includes this once, so the same loops are compiled
 * twice with different flags; every function here is static and the only
 * symbol exported is the table KZ_ARM_TABLE.
 *
 * The includer defines:
 *   KZ_ARM_TABLE      name of the struct kz_kernels to define
 *   KZ_ARM_NAME       its .name ("neon", "neon-dotprod"), the KZ_KERNELS value
 *   KZ_ARM_DOT_S8(acc, a, b)
 *                     int32x4_t: acc plus the 16 products a[i] * b[i] of two
 *                     int8x16_t, summed into the 4 lanes in any grouping
 *                     (smull + sadalp on ARMv8.0, one sdot with the
 *                     dot-product extension); exact for every int8 input
 *
 * Shape: one weight row against one activation row at a time. gemm_rows
 * walks the rows and, for each, every token, so the row stays in L1 while
 * the tokens pass. There are no register-blocked multi-row tiles yet: these
 * kernels are checked against the reference under emulation (qemu) on the
 * x86 build machines and have not been tuned on ARM hardware.
 *
 * Integer parts equal the reference (ref/dot_q8.c) exactly; the same codes
 * are multiplied and summed in int32 with no overflow possible (bounds at
 * each kernel, activation codes in -127..127). Float parts are accumulated
 * in 4 lanes, so they agree with the reference to rounding.
 */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "core/assert.h"
#include "engine/gguf/dtype.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/q8.h"
#include "engine/kernels/quant.h"
#include "engine/kernels/simd.h"

#define KZ_INLINE static inline __attribute__((always_inline))

// ---------------------------------------------------------------- helpers

KZ_INLINE int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    return KZ_ARM_DOT_S8(acc, a, b);
}

/* 32 codes against 32 activation codes, lanes not yet summed */
KZ_INLINE int32x4_t dot32(int8x16_t w0, int8x16_t w1, const int8_t *a)
{
    return dot16(dot16(vdupq_n_s32(0), w0, vld1q_s8(a)), w1, vld1q_s8(a + 16));
}

KZ_INLINE int8x16_t lo_nib(uint8x16_t q)
{
    return vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(15)));
}

KZ_INLINE int8x16_t hi_nib(uint8x16_t q)
{
    return vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
}

/* `val` in each byte of v that has any bit of mask set, else 0 */
KZ_INLINE uint8x16_t bit_to(uint8x16_t v, uint8_t mask, uint8_t val)
{
    return vandq_u8(vtstq_u8(v, vdupq_n_u8(mask)), vdupq_n_u8(val));
}

/* 16 bytes of 0x10 where bit e (e < 16) of the little-endian pair h[0..1] is set */
KZ_INLINE uint8x16_t bit4_of16(const uint8_t *h)
{
    static const uint8_t bits[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t v = vcombine_u8(vdup_n_u8(h[0]), vdup_n_u8(h[1]));
    return vandq_u8(vtstq_u8(v, vld1q_u8(bits)), vdupq_n_u8(16));
}

/* sum of the 32 activation codes of a Q8_0 block (|sum| <= 4064) */
KZ_INLINE int32_t asum32(const int8_t *a)
{
    return vaddlvq_s8(vld1q_s8(a)) + vaddlvq_s8(vld1q_s8(a + 16));
}

// ---------------------------------------------------------------- 32-element types x Q8_0

/* Block i of a 32-element type: its codes (c0 elements 0..15, c1 16..31,
 * de-biased where the type has a bias), scale d and offset m (0 without). */
typedef void (*codes_fn)(const void *w, int64_t i, int8x16_t *c0, int8x16_t *c1, float *d, float *m);

/* Per block: isum over 32 codes (|isum| <= 32 * 128 * 127), its 4 lanes
 * scaled by d_w * d_a into a float vector; offset types (Q4_1, Q5_1) add
 * m_w * d_a * (sum of the activation codes). `codes` is a constant at
 * every call, so each type gets its own inlined loop. */
KZ_INLINE float dot_32(int64_t n, const void *w, const struct kz_block_q8_0 *ba, codes_fn codes, int offset)
{
    float32x4_t acc = vdupq_n_f32(0.0f);
    float mins = 0.0f;
    for (int64_t i = 0; i < n / 32; i++) {
        int8x16_t c0, c1;
        float d, m;
        codes(w, i, &c0, &c1, &d, &m);
        float da = kz_fp16_to_fp32(ba[i].d);
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(dot32(c0, c1, ba[i].qs)), d * da);
        if (offset)
            mins += m * da * (float)asum32(ba[i].qs);
    }
    return vaddvq_f32(acc) + mins;
}

/* Q5_0/Q5_1 codes: nibble | bit 4 from qh (elements 0..15: qh bits 0..15) */
KZ_INLINE void q5_codes(const uint8_t *qs, const uint8_t *qh, int8x16_t *c0, int8x16_t *c1)
{
    uint8x16_t q = vld1q_u8(qs);
    *c0 = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(q, vdupq_n_u8(15)), bit4_of16(qh)));
    *c1 = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(q, 4), bit4_of16(qh + 2)));
}

KZ_INLINE void codes_q8_0(const void *w, int64_t i, int8x16_t *c0, int8x16_t *c1, float *d, float *m)
{
    const struct kz_block_q8_0 *b = (const struct kz_block_q8_0 *)w + i;
    *c0 = vld1q_s8(b->qs);
    *c1 = vld1q_s8(b->qs + 16);
    *d = kz_fp16_to_fp32(b->d);
    *m = 0.0f;
}

KZ_INLINE void codes_q4_0(const void *w, int64_t i, int8x16_t *c0, int8x16_t *c1, float *d, float *m)
{
    const struct kz_block_q4_0 *b = (const struct kz_block_q4_0 *)w + i;
    uint8x16_t q = vld1q_u8(b->qs);
    *c0 = vsubq_s8(lo_nib(q), vdupq_n_s8(8));
    *c1 = vsubq_s8(hi_nib(q), vdupq_n_s8(8));
    *d = kz_fp16_to_fp32(b->d);
    *m = 0.0f;
}

KZ_INLINE void codes_q4_1(const void *w, int64_t i, int8x16_t *c0, int8x16_t *c1, float *d, float *m)
{
    const struct kz_block_q4_1 *b = (const struct kz_block_q4_1 *)w + i;
    uint8x16_t q = vld1q_u8(b->qs);
    *c0 = lo_nib(q);
    *c1 = hi_nib(q);
    *d = kz_fp16_to_fp32(b->d);
    *m = kz_fp16_to_fp32(b->m);
}

KZ_INLINE void codes_q5_0(const void *w, int64_t i, int8x16_t *c0, int8x16_t *c1, float *d, float *m)
{
    const struct kz_block_q5_0 *b = (const struct kz_block_q5_0 *)w + i;
    q5_codes(b->qs, b->qh, c0, c1);
    *c0 = vsubq_s8(*c0, vdupq_n_s8(16));
    *c1 = vsubq_s8(*c1, vdupq_n_s8(16));
    *d = kz_fp16_to_fp32(b->d);
    *m = 0.0f;
}

KZ_INLINE void codes_q5_1(const void *w, int64_t i, int8x16_t *c0, int8x16_t *c1, float *d, float *m)
{
    const struct kz_block_q5_1 *b = (const struct kz_block_q5_1 *)w + i;
    q5_codes(b->qs, b->qh, c0, c1);
    *d = kz_fp16_to_fp32(b->d);
    *m = kz_fp16_to_fp32(b->m);
}

static float dot_q8_0(int64_t n, const void *restrict w, const void *restrict a)
{
    return dot_32(n, w, a, codes_q8_0, 0);
}

static float dot_q4_0(int64_t n, const void *restrict w, const void *restrict a)
{
    return dot_32(n, w, a, codes_q4_0, 0);
}

static float dot_q4_1(int64_t n, const void *restrict w, const void *restrict a)
{
    return dot_32(n, w, a, codes_q4_1, 1);
}

static float dot_q5_0(int64_t n, const void *restrict w, const void *restrict a)
{
    return dot_32(n, w, a, codes_q5_0, 0);
}

static float dot_q5_1(int64_t n, const void *restrict w, const void *restrict a)
{
    return dot_32(n, w, a, codes_q5_1, 1);
}

// ---------------------------------------------------------------- K-quants x Q8_K

/* Per super-block: sumi = sum over sub-blocks of scale * (codes . acts),
 * kept in 4 int32 lanes (vmlaq_n_s32) and summed once; summ from the
 * activation's bsums. Both exact; the float step is the reference's. */
KZ_INLINE float kfinish(int32x4_t sumi, int32_t summ, float d, float dmin, float da)
{
    return (d * da) * (float)vaddvq_s32(sumi) - (dmin * da) * (float)summ;
}

/* Q2_K/Q3_K low bits: element 128h + 32j + t is bits 2j..2j+1 of qs[32h + t] */
KZ_INLINE uint8x16_t two_bits(uint8x16_t q, int j)
{
    return vandq_u8(vshlq_u8(q, vdupq_n_s8((int8_t)(-2 * j))), vdupq_n_u8(3));
}

/* |sumi| <= 16 * 15 * 16 * 3 * 127 */
static float dot_q2_k(int64_t n, const void *restrict w, const void *restrict a)
{
    const struct kz_block_q2_k *bw = w;
    const struct kz_block_q8_k *ba = a;
    float total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK_K; i++) {
        const struct kz_block_q2_k *b = &bw[i];
        const struct kz_block_q8_k *q8 = &ba[i];
        int32_t summ = 0;
        for (int s = 0; s < 16; s++)
            summ += (b->scales[s] >> 4) * q8->bsums[s];
        int32x4_t sumi = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            uint8x16_t q0 = vld1q_u8(b->qs + 32 * h), q1 = vld1q_u8(b->qs + 32 * h + 16);
            for (int j = 0; j < 4; j++) {
                int s = 8 * h + 2 * j; /* sub-blocks of 16: t < 16, then t >= 16 */
                const int8_t *aq = q8->qs + 128 * h + 32 * j;
                int32x4_t p0 = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(two_bits(q0, j)), vld1q_s8(aq));
                int32x4_t p1 = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(two_bits(q1, j)), vld1q_s8(aq + 16));
                sumi = vmlaq_n_s32(sumi, p0, b->scales[s] & 15);
                sumi = vmlaq_n_s32(sumi, p1, b->scales[s + 1] & 15);
            }
        }
        total += kfinish(sumi, summ, kz_fp16_to_fp32(b->d), kz_fp16_to_fp32(b->dmin), q8->d);
    }
    return total;
}

/* codes q - 4 in -4..3, scales -32..31: |sumi| <= 16 * 32 * 16 * 4 * 127 */
static float dot_q3_k(int64_t n, const void *restrict w, const void *restrict a)
{
    const struct kz_block_q3_k *bw = w;
    const struct kz_block_q8_k *ba = a;
    const int8x16_t four = vdupq_n_s8(4);
    float total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK_K; i++) {
        const struct kz_block_q3_k *b = &bw[i];
        const struct kz_block_q8_k *q8 = &ba[i];
        uint8x16_t m0 = vld1q_u8(b->hmask), m1 = vld1q_u8(b->hmask + 16);
        int32x4_t sumi = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            uint8x16_t q0 = vld1q_u8(b->qs + 32 * h), q1 = vld1q_u8(b->qs + 32 * h + 16);
            for (int j = 0; j < 4; j++) {
                int s = 8 * h + 2 * j;
                uint8_t bit = (uint8_t)(1u << (4 * h + j)); /* bit 2 of element 128h + 32j + t: hmask[t] */
                const int8_t *aq = q8->qs + 128 * h + 32 * j;
                int8x16_t c0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(two_bits(q0, j), bit_to(m0, bit, 4))), four);
                int8x16_t c1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(two_bits(q1, j), bit_to(m1, bit, 4))), four);
                sumi = vmlaq_n_s32(sumi, dot16(vdupq_n_s32(0), c0, vld1q_s8(aq)), kz_q3k_scale(b->scales, s) - 32);
                sumi = vmlaq_n_s32(sumi, dot16(vdupq_n_s32(0), c1, vld1q_s8(aq + 16)),
                                   kz_q3k_scale(b->scales, s + 1) - 32);
            }
        }
        total += kfinish(sumi, 0, kz_fp16_to_fp32(b->d), 0.0f, q8->d);
    }
    return total;
}

/* Q4_K and Q5_K: sub-block 2c is the low nibbles of qs[32c .. 32c+31],
 * 2c+1 the high ones; Q5_K's bit 4 of sub-block s is bit s of qh[0..31].
 * |sumi| <= 8 * 63 * 32 * 31 * 127. */
static float dot_q45_k(int64_t n, const uint8_t *d_dmin_scales, size_t bsize, int qs_off, int qh_off,
                       const struct kz_block_q8_k *ba)
{
    float total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK_K; i++) {
        const uint8_t *b = d_dmin_scales + (size_t)i * bsize;
        const struct kz_block_q8_k *q8 = &ba[i];
        uint16_t d, dmin; /* the same first 16 bytes in Q4_K and Q5_K */
        memcpy(&d, b + offsetof(struct kz_block_q4_k, d), 2);
        memcpy(&dmin, b + offsetof(struct kz_block_q4_k, dmin), 2);
        uint8_t sc[8], mn[8];
        int32_t summ = 0;
        for (int s = 0; s < 8; s++) {
            kz_q4k_scale_min(b + offsetof(struct kz_block_q4_k, scales), s, &sc[s], &mn[s]);
            summ += mn[s] * (q8->bsums[2 * s] + q8->bsums[2 * s + 1]);
        }
        uint8x16_t h0 = vdupq_n_u8(0), h1 = vdupq_n_u8(0);
        if (qh_off >= 0) {
            h0 = vld1q_u8(b + qh_off);
            h1 = vld1q_u8(b + qh_off + 16);
        }
        int32x4_t sumi = vdupq_n_s32(0);
        for (int c = 0; c < 4; c++) {
            uint8x16_t q0 = vld1q_u8(b + qs_off + 32 * c), q1 = vld1q_u8(b + qs_off + 32 * c + 16);
            uint8_t blo = (uint8_t)(1u << (2 * c)), bhi = (uint8_t)(1u << (2 * c + 1));
            int8x16_t l0 = vorrq_s8(lo_nib(q0), vreinterpretq_s8_u8(bit_to(h0, blo, 16)));
            int8x16_t l1 = vorrq_s8(lo_nib(q1), vreinterpretq_s8_u8(bit_to(h1, blo, 16)));
            int8x16_t u0 = vorrq_s8(hi_nib(q0), vreinterpretq_s8_u8(bit_to(h0, bhi, 16)));
            int8x16_t u1 = vorrq_s8(hi_nib(q1), vreinterpretq_s8_u8(bit_to(h1, bhi, 16)));
            sumi = vmlaq_n_s32(sumi, dot32(l0, l1, q8->qs + 64 * c), sc[2 * c]);
            sumi = vmlaq_n_s32(sumi, dot32(u0, u1, q8->qs + 64 * c + 32), sc[2 * c + 1]);
        }
        total += kfinish(sumi, summ, kz_fp16_to_fp32(d), kz_fp16_to_fp32(dmin), q8->d);
    }
    return total;
}

static float dot_q4_k(int64_t n, const void *restrict w, const void *restrict a)
{
    return dot_q45_k(n, w, sizeof(struct kz_block_q4_k), (int)offsetof(struct kz_block_q4_k, qs), -1, a);
}

static float dot_q5_k(int64_t n, const void *restrict w, const void *restrict a)
{
    return dot_q45_k(n, w, sizeof(struct kz_block_q5_k), (int)offsetof(struct kz_block_q5_k, qs),
                     (int)offsetof(struct kz_block_q5_k, qh), a);
}

/* Element 128h + 32k + l: low 4 bits are nibble (k >= 2) of
 * ql[64h + 32(k & 1) + l], high 2 bits are bits 2k..2k+1 of qh[32h + l];
 * sub-blocks of 16 with signed scales. |sumi| <= 16 * 128 * 16 * 32 * 127. */
static float dot_q6_k(int64_t n, const void *restrict w, const void *restrict a)
{
    const struct kz_block_q6_k *bw = w;
    const struct kz_block_q8_k *ba = a;
    const int8x16_t bias = vdupq_n_s8(32);
    float total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK_K; i++) {
        const struct kz_block_q6_k *b = &bw[i];
        const struct kz_block_q8_k *q8 = &ba[i];
        int32x4_t sumi = vdupq_n_s32(0);
        for (int h = 0; h < 2; h++) {
            uint8x16_t ql[4], qh[2];
            for (int v = 0; v < 4; v++)
                ql[v] = vld1q_u8(b->ql + 64 * h + 16 * v);
            qh[0] = vld1q_u8(b->qh + 32 * h);
            qh[1] = vld1q_u8(b->qh + 32 * h + 16);
            for (int k = 0; k < 4; k++)
                for (int half = 0; half < 2; half++) { /* l in 0..15, then 16..31 */
                    uint8x16_t src = ql[2 * (k & 1) + half];
                    uint8x16_t lo = k >= 2 ? vshrq_n_u8(src, 4) : vandq_u8(src, vdupq_n_u8(15));
                    uint8x16_t hi = vandq_u8(vshlq_u8(qh[half], vdupq_n_s8((int8_t)(4 - 2 * k))), vdupq_n_u8(0x30));
                    int8x16_t c = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, hi)), bias);
                    int s = 8 * h + 2 * k + half;
                    sumi = vmlaq_n_s32(sumi, dot16(vdupq_n_s32(0), c, vld1q_s8(q8->qs + 16 * s)), b->scales[s]);
                }
        }
        total += kfinish(sumi, 0, kz_fp16_to_fp32(b->d), 0.0f, q8->d);
    }
    return total;
}

static kz_dot_q8_fn dot_q8_for(uint32_t wtype)
{
    switch (wtype) {
    case KZ_DT_Q4_0: return dot_q4_0;
    case KZ_DT_Q4_1: return dot_q4_1;
    case KZ_DT_Q5_0: return dot_q5_0;
    case KZ_DT_Q5_1: return dot_q5_1;
    case KZ_DT_Q8_0: return dot_q8_0;
    case KZ_DT_Q2_K: return dot_q2_k;
    case KZ_DT_Q3_K: return dot_q3_k;
    case KZ_DT_Q4_K: return dot_q4_k;
    case KZ_DT_Q5_K: return dot_q5_k;
    case KZ_DT_Q6_K: return dot_q6_k;
    default: return NULL;
    }
}

// ---------------------------------------------------------------- float weights x f32

/* w as 4 floats from element i: each type's loader */
KZ_INLINE float32x4_t ld_f32(const void *w, int64_t i)
{
    return vld1q_f32((const float *)w + i);
}

KZ_INLINE float32x4_t ld_f16(const void *w, int64_t i)
{
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)w + i)));
}

KZ_INLINE float32x4_t ld_bf16(const void *w, int64_t i)
{
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)w + i), 16));
}

static float el_f32(const void *w, int64_t i)
{
    return ((const float *)w)[i];
}

static float el_f16(const void *w, int64_t i)
{
    return kz_fp16_to_fp32(((const uint16_t *)w)[i]);
}

static float el_bf16(const void *w, int64_t i)
{
    return kz_bits_f32((uint32_t)((const uint16_t *)w)[i] << 16);
}

/* four chains of FMAs, then the tail one element at a time */
#define KZ_FDOT(name, LD, EL)                                                                      \
    static float name(int64_t n, const void *restrict w, const float *restrict x)                 \
    {                                                                                              \
        float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;                             \
        int64_t i = 0;                                                                             \
        for (; i + 16 <= n; i += 16) {                                                             \
            a0 = vfmaq_f32(a0, LD(w, i), vld1q_f32(x + i));                                        \
            a1 = vfmaq_f32(a1, LD(w, i + 4), vld1q_f32(x + i + 4));                                \
            a2 = vfmaq_f32(a2, LD(w, i + 8), vld1q_f32(x + i + 8));                                \
            a3 = vfmaq_f32(a3, LD(w, i + 12), vld1q_f32(x + i + 12));                              \
        }                                                                                          \
        for (; i + 4 <= n; i += 4)                                                                 \
            a0 = vfmaq_f32(a0, LD(w, i), vld1q_f32(x + i));                                        \
        float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));                     \
        for (; i < n; i++)                                                                         \
            s += EL(w, i) * x[i];                                                                  \
        return s;                                                                                  \
    }

KZ_FDOT(dot_f32_f32, ld_f32, el_f32)
KZ_FDOT(dot_f16_f32, ld_f16, el_f16)
KZ_FDOT(dot_bf16_f32, ld_bf16, el_bf16)

static kz_dot_f32_fn dot_f_for(uint32_t wtype)
{
    switch (wtype) {
    case KZ_DT_F32: return dot_f32_f32;
    case KZ_DT_F16: return dot_f16_f32;
    case KZ_DT_BF16: return dot_bf16_f32;
    default: return NULL;
    }
}

/* F16 <-> F32, 4 at a time (the KV cache converts whole blocks of
 * positions every token): exact against the reference both ways with the
 * default rounding (to nearest even); a signalling NaN comes back quiet. */
static void f16_to_float(const void *restrict src, float *restrict dst, int64_t n)
{
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(dst + i, ld_f16(h, i));
    for (; i < n; i++)
        dst[i] = kz_fp16_to_fp32(h[i]);
}

static void f16_from_float(const float *restrict src, void *restrict dst, int64_t n)
{
    uint16_t *h = dst;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1_u16(h + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
    for (; i < n; i++)
        h[i] = kz_fp32_to_fp16(src[i]);
}

static const struct kz_type_ops ops_f32 = {kz_ref_f32_to_float, kz_ref_f32_from_float, dot_f32_f32};
static const struct kz_type_ops ops_f16 = {f16_to_float, f16_from_float, dot_f16_f32};
static const struct kz_type_ops ops_bf16 = {kz_ref_bf16_to_float, kz_ref_bf16_from_float, dot_bf16_f32};

static const struct kz_type_ops *n_type_ops(uint32_t type)
{
    switch (type) {
    case KZ_DT_F32: return &ops_f32;
    case KZ_DT_F16: return &ops_f16;
    case KZ_DT_BF16: return &ops_bf16;
    default: return kz_type_ops_ref(type);
    }
}

// ---------------------------------------------------------------- activation quantizers

KZ_INLINE float absmax(const float *x, int n)
{
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int k = 0; k < n; k += 4)
        m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + k)));
    return vmaxvq_f32(m);
}

/* 16 codes: x * id rounded to nearest, ties to even (lrintf's rounding),
 * clamped to -127..127 as the reference does */
KZ_INLINE int8x16_t round16(const float *x, float32x4_t id)
{
    int16x8_t a = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x), id))),
                               vqmovn_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + 4), id))));
    int16x8_t b = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + 8), id))),
                               vqmovn_s32(vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + 12), id))));
    return vmaxq_s8(vcombine_s8(vqmovn_s16(a), vqmovn_s16(b)), vdupq_n_s8(-127));
}

/* Bit-exact with kz_ref_q8_0_from_float: same amax, d, 1/d and rounding. */
static void quantize_q8_0(const float *restrict x, void *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK8_0 == 0);
    struct kz_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / KZ_QK8_0; i++, x += 32) {
        float d = absmax(x, 32) / 127.0f;
        float32x4_t id = vdupq_n_f32(d != 0.0f ? 1.0f / d : 0.0f);
        b[i].d = kz_fp32_to_fp16(d);
        vst1q_s8(b[i].qs, round16(x, id));
        vst1q_s8(b[i].qs + 16, round16(x + 16, id));
    }
}

/* Bit-exact with kz_ref_quantize_q8_k. */
static void quantize_q8_k(const float *restrict x, void *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    struct kz_block_q8_k *b = dst;
    for (int64_t i = 0; i < n / KZ_QK_K; i++, x += KZ_QK_K) {
        float amax = absmax(x, KZ_QK_K);
        float32x4_t id = vdupq_n_f32(amax != 0.0f ? 127.0f / amax : 0.0f);
        b[i].d = amax / 127.0f;
        for (int g = 0; g < KZ_QK_K / 16; g++) {
            int8x16_t q = round16(x + 16 * g, id);
            vst1q_s8(b[i].qs + 16 * g, q);
            b[i].bsums[g] = vaddlvq_s8(q);
        }
    }
}

// ---------------------------------------------------------------- batched products

static uint32_t n_act_type(uint32_t wtype)
{
    return kz_q8_act_type(wtype);
}

static void n_act_quantize(uint32_t wtype, const float *restrict x, void *restrict dst, int64_t cols)
{
    switch (n_act_type(wtype)) {
    case KZ_DT_Q8_0:
        quantize_q8_0(x, dst, cols);
        break;
    case KZ_DT_Q8_K:
        quantize_q8_k(x, dst, cols);
        break;
    default:
        kz_ref_act_quantize(wtype, x, dst, cols);
        break;
    }
}

/* W (rows, cols) @ act^T -> out[t * out_stride + r] for r in [r0, r1) */
static void n_gemm_rows(uint32_t wtype, const void *w, int64_t cols, const void *act, int n_tok, float *out,
                        int64_t out_stride, int64_t r0, int64_t r1)
{
    kz_dot_q8_fn dq = dot_q8_for(wtype);
    kz_dot_f32_fn df = dq ? NULL : dot_f_for(wtype);
    if (!dq && !df) {
        kz_ref_gemm_rows(wtype, w, cols, act, n_tok, out, out_stride, r0, r1);
        return;
    }
    size_t wrow = kz_dtype_row_size(wtype, cols), arow = kz_dtype_row_size(n_act_type(wtype), cols);
    KZ_ASSERT(wrow > 0 && arow > 0);
    const unsigned char *wb = w, *ab = act;
    for (int64_t r = r0; r < r1; r++) {
        const unsigned char *wr = wb + (size_t)r * wrow;
        for (int t = 0; t < n_tok; t++) {
            const unsigned char *at = ab + (size_t)t * arow;
            out[(size_t)t * (size_t)out_stride + (size_t)r] =
                dq ? dq(cols, wr, at) : df(cols, wr, (const float *)(const void *)at);
        }
    }
}

enum { KZ_MATVEC_BUF = 40 * 1024 }; /* stack room for one quantized activation row */

static void n_matvec_rows(const void *w, uint32_t type, int64_t cols, const float *restrict x,
                          float *restrict out, int64_t r0, int64_t r1)
{
    uint32_t at = n_act_type(type);
    if (at == KZ_DT_F32) {
        if (dot_f_for(type))
            n_gemm_rows(type, w, cols, x, 1, out, 0, r0, r1);
        else
            kz_ref_matvec_rows(w, type, cols, x, out, r0, r1);
        return;
    }
    _Alignas(16) unsigned char buf[KZ_MATVEC_BUF];
    if (kz_dtype_row_size(at, cols) > sizeof buf) {
        kz_ref_matvec_rows(w, type, cols, x, out, r0, r1);
        return;
    }
    n_act_quantize(type, x, buf, cols);
    n_gemm_rows(type, w, cols, buf, 1, out, 0, r0, r1);
}

// ---------------------------------------------------------------- f32 vector ops

/* e^x, 4 lanes: the algorithm of the x86 families (x86_body.h exp_ps):
 * n = round(x / ln 2), r = x - n ln 2 in two parts, e^r by its degree-7
 * Taylor polynomial, times 2^n built in the exponent field; 0 below
 * ln(FLT_MIN), +inf above ln(FLT_MAX). */
KZ_INLINE float32x4_t exp4(float32x4_t x)
{
    const float32x4_t lo = vdupq_n_f32(-87.33654475f), hi = vdupq_n_f32(88.72283905f);
    float32x4_t xc = vminq_f32(vmaxq_f32(x, lo), vdupq_n_f32(88.37626266f));
    float32x4_t nf = vrndnq_f32(vmulq_f32(xc, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(xc, nf, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, nf, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.0f / 5040.0f);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 720.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(nf), vdupq_n_s32(127)), 23);
    float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
    y = vbslq_f32(vcltq_f32(x, lo), vdupq_n_f32(0.0f), y);
    return vbslq_f32(vcgtq_f32(x, hi), vdupq_n_f32(INFINITY), y);
}

/* silu(g) = g / (1 + e^-g), the reference's formula */
KZ_INLINE float32x4_t silu4(float32x4_t g)
{
    return vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(g))));
}

static void n_silu(float *out, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(out + i, silu4(vld1q_f32(x + i)));
    for (; i < n; i++)
        out[i] = x[i] / (1.0f + expf(-x[i]));
}

static void n_swiglu(float *out, const float *gate, const float *up, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(out + i, vmulq_f32(silu4(vld1q_f32(gate + i)), vld1q_f32(up + i)));
    for (; i < n; i++)
        out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* Scores of nt <= 2 key tiles (kernels.h layout), as in the x86 families:
 * a tile is four vectors, so two tiles make eight accumulators. */
static inline void n_attn_tiles(const float *q, const float *kt, int hd, float scale, float *out, const int nt)
{
    enum { T = KZ_ATTN_TILE, V = T / 4 };
    float32x4_t a[2][V];
    for (int t = 0; t < nt; t++)
        for (int v = 0; v < V; v++)
            a[t][v] = vdupq_n_f32(0.0f);
    for (int i = 0; i < hd; i++)
        for (int t = 0; t < nt; t++)
            for (int v = 0; v < V; v++)
                a[t][v] = vfmaq_n_f32(a[t][v], vld1q_f32(kt + ((size_t)t * (size_t)hd + (size_t)i) * T + 4 * v), q[i]);
    for (int t = 0; t < nt; t++)
        for (int v = 0; v < V; v++)
            vst1q_f32(out + t * T + 4 * v, vmulq_n_f32(a[t][v], scale));
}

/* Two tiles at a time; the last one or two through a buffer, so nothing
 * past out[n - 1] is written. */
static void n_attn_scores(const float *q, const float *kt, int n, int hd, float scale, float *out)
{
    enum { T = KZ_ATTN_TILE };
    const size_t tile = (size_t)hd * T;
    int full = n / T, j = 0;
    for (; j + 2 <= full; j += 2)
        n_attn_tiles(q, kt + (size_t)j * tile, hd, scale, out + j * T, 2);
    int rest = (n + T - 1) / T - j; /* at most one full tile and a partial one */
    if (rest == 0)
        return;
    float buf[2 * T];
    if (rest == 1)
        n_attn_tiles(q, kt + (size_t)j * tile, hd, scale, buf, 1);
    else
        n_attn_tiles(q, kt + (size_t)j * tile, hd, scale, buf, 2);
    memcpy(out + j * T, buf, (size_t)(n - j * T) * sizeof *out);
}

/* One head's output, added to out, with its sums in registers, as in the
 * x86 families (nv = hd / 4 a constant per instance; two sets of sums up
 * to 8 vectors). */
static inline void n_attn_values_nv(const float *s, const float *v, size_t stride, int n, float *out, const int nv)
{
    const int sets = nv <= 8 ? 2 : 1;
    float32x4_t a[2][32];
    for (int j = 0; j < nv; j++) {
        a[0][j] = vld1q_f32(out + 4 * j);
        a[1][j] = vdupq_n_f32(0.0f);
    }
    int p = 0;
    for (; p + sets <= n; p += sets)
        for (int k = 0; k < sets; k++) {
            const float *vp = v + (size_t)(p + k) * stride;
            for (int j = 0; j < nv; j++)
                a[k][j] = vfmaq_n_f32(a[k][j], vld1q_f32(vp + 4 * j), s[p + k]);
        }
    for (; p < n; p++)
        for (int j = 0; j < nv; j++)
            a[0][j] = vfmaq_n_f32(a[0][j], vld1q_f32(v + (size_t)p * stride + 4 * j), s[p]);
    for (int j = 0; j < nv; j++)
        vst1q_f32(out + 4 * j, sets == 2 ? vaddq_f32(a[0][j], a[1][j]) : a[0][j]);
}

static void n_attn_values(const float *s, const float *v, size_t stride, int n, int hd, float *out)
{
    switch (hd % 4 ? 0 : hd / 4) {
    case 8: n_attn_values_nv(s, v, stride, n, out, 8); break;
    case 16: n_attn_values_nv(s, v, stride, n, out, 16); break;
    case 32: n_attn_values_nv(s, v, stride, n, out, 32); break;
    default: kz_ref_attn_values(s, v, stride, n, hd, out); break;
    }
}

/* Four independent accumulators: the loads set the pace (see x_sum). */
static float n_sum(const float *x, int64_t n)
{
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vaddq_f32(a0, vld1q_f32(x + i));
        a1 = vaddq_f32(a1, vld1q_f32(x + i + 4));
        a2 = vaddq_f32(a2, vld1q_f32(x + i + 8));
        a3 = vaddq_f32(a3, vld1q_f32(x + i + 12));
    }
    for (; i + 4 <= n; i += 4)
        a0 = vaddq_f32(a0, vld1q_f32(x + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++)
        s += x[i];
    return s;
}

/* Mean of squares in double (products of floats are exact in double), then
 * the reference's out = (x * scale) * w. */
static void n_rmsnorm(float *out, const float *x, const float *restrict w, int64_t n, float eps)
{
    KZ_ASSERT(n > 0);
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        float64x2_t lo = vcvt_f64_f32(vget_low_f32(v)), hi = vcvt_high_f64_f32(v);
        s0 = vfmaq_f64(s0, lo, lo);
        s1 = vfmaq_f64(s1, hi, hi);
    }
    double ss = vaddvq_f64(vaddq_f64(s0, s1));
    for (; i < n; i++)
        ss += (double)x[i] * (double)x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    float32x4_t vs = vdupq_n_f32(scale);
    for (i = 0; i + 4 <= n; i += 4)
        vst1q_f32(out + i, vmulq_f32(vmulq_f32(vld1q_f32(x + i), vs), vld1q_f32(w + i)));
    for (; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

static void n_softmax(float *x, int64_t n)
{
    KZ_ASSERT(n > 0);
    float32x4_t vm = vdupq_n_f32(-INFINITY);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vm = vmaxq_f32(vm, vld1q_f32(x + i));
    float max = vmaxvq_f32(vm);
    for (; i < n; i++)
        max = x[i] > max ? x[i] : max;
    float32x4_t m4 = vdupq_n_f32(max);
    float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0;
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), m4));
        vst1q_f32(x + i, e);
        s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(e)));
        s1 = vaddq_f64(s1, vcvt_high_f64_f32(e));
    }
    double sum = vaddvq_f64(vaddq_f64(s0, s1));
    for (; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += (double)x[i];
    }
    float32x4_t inv = vdupq_n_f32((float)(1.0 / sum));
    for (i = 0; i + 4 <= n; i += 4)
        vst1q_f32(x + i, vmulq_f32(vld1q_f32(x + i), inv));
    for (; i < n; i++)
        x[i] *= (float)(1.0 / sum);
}

// ---------------------------------------------------------------- the table

const struct kz_kernels KZ_ARM_TABLE = {
    .name = KZ_ARM_NAME,
    .type_ops = n_type_ops,
    .matvec_rows = n_matvec_rows,
    .rmsnorm = n_rmsnorm,
    .attn_scores = n_attn_scores,
    .attn_values = n_attn_values,
    .softmax = n_softmax,
    .silu = n_silu,
    .swiglu = n_swiglu,
    .sum = n_sum,
    .act_type = n_act_type,
    .act_quantize = n_act_quantize,
    .gemm_rows = n_gemm_rows,
};
