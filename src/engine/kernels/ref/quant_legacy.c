/* SPDX-License-Identifier: MIT
 * Reference kernels for the 32-element block types Q4_0, Q4_1, Q5_0, Q5_1
 * and Q8_0 (layouts in quant.h).
 *
 * Every kernel first unpacks a block's integer codes into a small array
 * (q[32], element order), then does the arithmetic on that array; the
 * unpacking is the only place that knows the bit layout.
 *
 * Dot products, per block b, elements e = 0..31 in order:
 *   symmetric types (Q4_0, Q5_0, Q8_0):
 *       s_b = sum_e q[e] * x[e]                 (f32, q already de-biased)
 *       total += d_b * s_b
 *   offset types (Q4_1, Q5_1):
 *       s_b = sum_e q[e] * x[e],  t_b = sum_e x[e]
 *       total += d_b * s_b + m_b * t_b
 * with `total` an f32 accumulated over blocks in order.
 *
 * Quantizers round to nearest with one f32 scale per block derived from the
 * block's extreme values (see each from_float); they are deterministic.
 */
#include "engine/kernels/kernels.h"
#include "engine/kernels/quant.h"

#include <math.h>

#include "core/assert.h"

static inline int nearest_int(float v)
{
    return (int)lrintf(v); /* round to nearest, ties to even */
}

static inline int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Signed value of largest magnitude in x (n,): the first one on ties. */
static float signed_absmax(const float *x, int n)
{
    float amax = 0.0f, v = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            v = x[i];
        }
    }
    return v;
}

static void min_max(const float *x, int n, float *lo /* out */, float *hi /* out */)
{
    *lo = x[0];
    *hi = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < *lo)
            *lo = x[i];
        if (x[i] > *hi)
            *hi = x[i];
    }
}

// ---------------------------------------------------------------- nibble packing

/* 4-bit codes: element e < 16 in the low nibble of qs[e], e >= 16 in the
 * high nibble of qs[e - 16]. */
static inline int nibble_get(const uint8_t qs[16], int e)
{
    return e < 16 ? (qs[e] & 15) : (qs[e - 16] >> 4);
}

static void nibbles_put(uint8_t qs[16], const uint8_t q[32])
{
    for (int j = 0; j < 16; j++)
        qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
}

/* Fifth bit: bit e of qh read as a little-endian u32. */
static inline int qh_bit(const uint8_t qh[4], int e)
{
    return (qh[e / 8] >> (e % 8)) & 1;
}

static void qh_put(uint8_t qh[4], const uint8_t q[32])
{
    for (int k = 0; k < 4; k++) {
        uint8_t v = 0;
        for (int b = 0; b < 8; b++)
            v |= (uint8_t)(((q[8 * k + b] >> 4) & 1) << b);
        qh[k] = v;
    }
}

/* Symmetric dot of one block: sum_e q[e] * x[e], e ascending. */
static inline float block_dot_i(const int q[32], const float *x)
{
    float s = 0.0f;
    for (int e = 0; e < 32; e++)
        s += (float)q[e] * x[e];
    return s;
}

static inline float block_sum(const float *x)
{
    float t = 0.0f;
    for (int e = 0; e < 32; e++)
        t += x[e];
    return t;
}

// ---------------------------------------------------------------- Q4_0

/* q[e] - 8 for one block. */
static void q4_0_codes(const struct kz_block_q4_0 *b, int q[32] /* out */)
{
    for (int e = 0; e < 32; e++)
        q[e] = nibble_get(b->qs, e) - 8;
}

void kz_ref_q4_0_to_float(const void *restrict src, float *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK4_0 == 0);
    const struct kz_block_q4_0 *b = src; /* (n/32,) */
    int q[32];
    for (int64_t i = 0; i < n / KZ_QK4_0; i++, dst += 32) {
        float d = kz_fp16_to_fp32(b[i].d);
        q4_0_codes(&b[i], q);
        for (int e = 0; e < 32; e++)
            dst[e] = (float)q[e] * d;
    }
}

/* Scale from the signed extreme v: d = v / -8, so v itself maps to code 0
 * (value -8*d = v) and the full range [-8, 7] stays usable. */
void kz_ref_q4_0_from_float(const float *restrict src, void *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK4_0 == 0);
    struct kz_block_q4_0 *b = dst;
    uint8_t q[32];
    for (int64_t i = 0; i < n / KZ_QK4_0; i++, src += 32) {
        float d = signed_absmax(src, 32) / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = kz_fp32_to_fp16(d);
        for (int e = 0; e < 32; e++)
            q[e] = (uint8_t)clamp_int(nearest_int(src[e] * id) + 8, 0, 15);
        nibbles_put(b[i].qs, q);
    }
}

float kz_ref_q4_0_dot_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    KZ_ASSERT(n % KZ_QK4_0 == 0);
    const struct kz_block_q4_0 *b = w;
    int q[32];
    float total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK4_0; i++, x += 32) {
        q4_0_codes(&b[i], q);
        total += kz_fp16_to_fp32(b[i].d) * block_dot_i(q, x);
    }
    return total;
}

// ---------------------------------------------------------------- Q4_1

static void q4_1_codes(const struct kz_block_q4_1 *b, int q[32] /* out */)
{
    for (int e = 0; e < 32; e++)
        q[e] = nibble_get(b->qs, e);
}

void kz_ref_q4_1_to_float(const void *restrict src, float *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK4_1 == 0);
    const struct kz_block_q4_1 *b = src;
    int q[32];
    for (int64_t i = 0; i < n / KZ_QK4_1; i++, dst += 32) {
        float d = kz_fp16_to_fp32(b[i].d), m = kz_fp16_to_fp32(b[i].m);
        q4_1_codes(&b[i], q);
        for (int e = 0; e < 32; e++)
            dst[e] = (float)q[e] * d + m;
    }
}

/* Range [min, max] mapped onto codes 0..15. */
void kz_ref_q4_1_from_float(const float *restrict src, void *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK4_1 == 0);
    struct kz_block_q4_1 *b = dst;
    uint8_t q[32];
    for (int64_t i = 0; i < n / KZ_QK4_1; i++, src += 32) {
        float lo, hi;
        min_max(src, 32, &lo, &hi);
        float d = (hi - lo) / 15.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = kz_fp32_to_fp16(d);
        b[i].m = kz_fp32_to_fp16(lo);
        for (int e = 0; e < 32; e++)
            q[e] = (uint8_t)clamp_int(nearest_int((src[e] - lo) * id), 0, 15);
        nibbles_put(b[i].qs, q);
    }
}

float kz_ref_q4_1_dot_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    KZ_ASSERT(n % KZ_QK4_1 == 0);
    const struct kz_block_q4_1 *b = w;
    int q[32];
    float total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK4_1; i++, x += 32) {
        q4_1_codes(&b[i], q);
        total += kz_fp16_to_fp32(b[i].d) * block_dot_i(q, x) + kz_fp16_to_fp32(b[i].m) * block_sum(x);
    }
    return total;
}

// ---------------------------------------------------------------- Q5_0

static void q5_0_codes(const struct kz_block_q5_0 *b, int q[32] /* out */)
{
    for (int e = 0; e < 32; e++)
        q[e] = (nibble_get(b->qs, e) | qh_bit(b->qh, e) << 4) - 16;
}

void kz_ref_q5_0_to_float(const void *restrict src, float *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK5_0 == 0);
    const struct kz_block_q5_0 *b = src;
    int q[32];
    for (int64_t i = 0; i < n / KZ_QK5_0; i++, dst += 32) {
        float d = kz_fp16_to_fp32(b[i].d);
        q5_0_codes(&b[i], q);
        for (int e = 0; e < 32; e++)
            dst[e] = (float)q[e] * d;
    }
}

/* As Q4_0 with codes -16..15: d = v / -16. */
void kz_ref_q5_0_from_float(const float *restrict src, void *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK5_0 == 0);
    struct kz_block_q5_0 *b = dst;
    uint8_t q[32];
    for (int64_t i = 0; i < n / KZ_QK5_0; i++, src += 32) {
        float d = signed_absmax(src, 32) / -16.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = kz_fp32_to_fp16(d);
        for (int e = 0; e < 32; e++)
            q[e] = (uint8_t)clamp_int(nearest_int(src[e] * id) + 16, 0, 31);
        nibbles_put(b[i].qs, q);
        qh_put(b[i].qh, q);
    }
}

float kz_ref_q5_0_dot_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    KZ_ASSERT(n % KZ_QK5_0 == 0);
    const struct kz_block_q5_0 *b = w;
    int q[32];
    float total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK5_0; i++, x += 32) {
        q5_0_codes(&b[i], q);
        total += kz_fp16_to_fp32(b[i].d) * block_dot_i(q, x);
    }
    return total;
}

// ---------------------------------------------------------------- Q5_1

static void q5_1_codes(const struct kz_block_q5_1 *b, int q[32] /* out */)
{
    for (int e = 0; e < 32; e++)
        q[e] = nibble_get(b->qs, e) | qh_bit(b->qh, e) << 4;
}

void kz_ref_q5_1_to_float(const void *restrict src, float *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK5_1 == 0);
    const struct kz_block_q5_1 *b = src;
    int q[32];
    for (int64_t i = 0; i < n / KZ_QK5_1; i++, dst += 32) {
        float d = kz_fp16_to_fp32(b[i].d), m = kz_fp16_to_fp32(b[i].m);
        q5_1_codes(&b[i], q);
        for (int e = 0; e < 32; e++)
            dst[e] = (float)q[e] * d + m;
    }
}

/* Range [min, max] mapped onto codes 0..31. */
void kz_ref_q5_1_from_float(const float *restrict src, void *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK5_1 == 0);
    struct kz_block_q5_1 *b = dst;
    uint8_t q[32];
    for (int64_t i = 0; i < n / KZ_QK5_1; i++, src += 32) {
        float lo, hi;
        min_max(src, 32, &lo, &hi);
        float d = (hi - lo) / 31.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = kz_fp32_to_fp16(d);
        b[i].m = kz_fp32_to_fp16(lo);
        for (int e = 0; e < 32; e++)
            q[e] = (uint8_t)clamp_int(nearest_int((src[e] - lo) * id), 0, 31);
        nibbles_put(b[i].qs, q);
        qh_put(b[i].qh, q);
    }
}

float kz_ref_q5_1_dot_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    KZ_ASSERT(n % KZ_QK5_1 == 0);
    const struct kz_block_q5_1 *b = w;
    int q[32];
    float total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK5_1; i++, x += 32) {
        q5_1_codes(&b[i], q);
        total += kz_fp16_to_fp32(b[i].d) * block_dot_i(q, x) + kz_fp16_to_fp32(b[i].m) * block_sum(x);
    }
    return total;
}

// ---------------------------------------------------------------- Q8_0

void kz_ref_q8_0_to_float(const void *restrict src, float *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK8_0 == 0);
    const struct kz_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / KZ_QK8_0; i++, dst += 32) {
        float d = kz_fp16_to_fp32(b[i].d);
        for (int e = 0; e < 32; e++)
            dst[e] = (float)b[i].qs[e] * d;
    }
}

/* d = max|x| / 127: the largest magnitude maps to +-127. */
void kz_ref_q8_0_from_float(const float *restrict src, void *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK8_0 == 0);
    struct kz_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / KZ_QK8_0; i++, src += 32) {
        float d = fabsf(signed_absmax(src, 32)) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = kz_fp32_to_fp16(d);
        for (int e = 0; e < 32; e++)
            b[i].qs[e] = (int8_t)clamp_int(nearest_int(src[e] * id), -127, 127);
    }
}

float kz_ref_q8_0_dot_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    KZ_ASSERT(n % KZ_QK8_0 == 0);
    const struct kz_block_q8_0 *b = w;
    float total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK8_0; i++, x += 32) {
        float s = 0.0f;
        for (int e = 0; e < 32; e++)
            s += (float)b[i].qs[e] * x[e];
        total += kz_fp16_to_fp32(b[i].d) * s;
    }
    return total;
}
