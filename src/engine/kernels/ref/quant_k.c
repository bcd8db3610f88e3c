/* SPDX-License-Identifier: MIT
 * Reference kernels for the 256-element "K" super-block types Q2_K, Q3_K,
 * Q4_K, Q5_K and Q6_K (layouts in quant.h).
 *
 * Each type is handled in two steps: unpack a super-block into integer
 * codes q[256] (element order) and per-sub-block factors dl[s], ml[s], so
 * that weight e of sub-block s = e / sub_len is
 *     w[e] = dl[s] * q[e] - ml[s]
 * (ml is 0 for the symmetric types Q3_K and Q6_K, whose q is de-biased).
 * The f32 operations are the same, in the same order, as the format's
 * published dequantization, so to_float is bit-exact.
 *
 * Dot products, per super-block, sub-blocks s in order, elements in order:
 *     a_s = sum_e q[e] * x[e]        t_s = sum_e x[e]    (both f32)
 *     total += dl[s] * a_s - ml[s] * t_s                (t_s skipped when ml is 0)
 * with `total` an f32 accumulated over sub-blocks and super-blocks in order.
 *
 * Quantizers: every sub-block gets a least-squares fit of its scale (and
 * min) over a small grid of candidate code assignments; the sub-block
 * factors are then quantized against the super-block scale, and the codes
 * are recomputed with the factors that will actually be stored, so the
 * rounding of the scales is not compounded.
 */
#include "engine/kernels/kernels.h"
#include "engine/kernels/quant.h"

#include <math.h>
#include <string.h>

#include "core/assert.h"

static inline int nearest_int(float v)
{
    return (int)lrintf(v); /* round to nearest, ties to even */
}

static inline int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* w = dl[s] * q[e] - ml[s] for one super-block: q (256,), dl/ml (256/sub_len,). */
static void emit_block(float *restrict dst, const int *q, const float *dl, const float *ml,
                       int sub_len)
{
    for (int e = 0; e < KZ_QK_K; e++)
        dst[e] = dl[e / sub_len] * (float)q[e] - ml[e / sub_len];
}

/* One super-block's contribution to a dot product (order as in the file header). */
static float dot_block(const int *q, const float *dl, const float *ml, int sub_len,
                       const float *x)
{
    float total = 0.0f;
    for (int s = 0; s < KZ_QK_K / sub_len; s++) {
        const int *qs = q + s * sub_len;
        const float *xs = x + s * sub_len;
        float a = 0.0f, t = 0.0f;
        for (int e = 0; e < sub_len; e++)
            a += (float)qs[e] * xs[e];
        if (ml[s] != 0.0f) {
            for (int e = 0; e < sub_len; e++)
                t += xs[e];
        }
        total += dl[s] * a - ml[s] * t;
    }
    return total;
}

// ---------------------------------------------------------------- sub-block fitting

/* Affine fit of x (n,) with codes 0..nmax: x[i] ~= scale * L[i] - min, with
 * scale >= 0 and min >= 0 (the formats store the min as a positive offset,
 * so the represented range always includes 0). Tries code assignments for a
 * grid of inverse scales around nmax / range; for each, solves the 2x2 least
 * squares problem for (scale, min) and keeps the pair with the smallest
 * squared error. */
static void fit_affine(const float *x, int n, int nmax, float *scale /* out */,
                       float *min /* out */)
{
    float lo = 0.0f, hi = x[0];
    for (int i = 0; i < n; i++) {
        if (x[i] < lo)
            lo = x[i];
        if (x[i] > hi)
            hi = x[i];
    }
    if (!(hi > lo)) { /* all values equal to lo <= 0: min alone represents them */
        *scale = 0.0f;
        *min = -lo;
        return;
    }
    /* start with the plain min/max mapping */
    float best_a = (hi - lo) / (float)nmax, best_b = lo;
    float best_err = INFINITY;
    for (int k = -1; k <= 20; k++) {
        float a, b;
        if (k < 0) {
            a = best_a;
            b = best_b;
        } else {
            /* candidate: codes from iscale = (nmax - 1 + 0.1 k) / range */
            float iscale = ((float)nmax - 1.0f + 0.1f * (float)k) / (hi - lo);
            double sl = 0, sll = 0, sx = 0, slx = 0;
            for (int i = 0; i < n; i++) {
                int l = clamp_int(nearest_int(iscale * (x[i] - lo)), 0, nmax);
                sl += l;
                sll += (double)l * l;
                sx += (double)x[i];
                slx += (double)l * (double)x[i];
            }
            double det = n * sll - sl * sl;
            if (det <= 0)
                continue;
            double da = (n * slx - sl * sx) / det;
            double db = (sll * sx - sl * slx) / det;
            if (db > 0) { /* min must be >= 0: refit the scale alone with b = 0 */
                db = 0;
                da = slx / sll;
            }
            if (da <= 0)
                continue;
            a = (float)da;
            b = (float)db;
        }
        /* error of (a, b) with the codes it implies */
        float err = 0.0f;
        for (int i = 0; i < n; i++) {
            int l = clamp_int(nearest_int((x[i] - b) / a), 0, nmax);
            float diff = a * (float)l + b - x[i];
            err += diff * diff;
        }
        if (err < best_err) {
            best_err = err;
            best_a = a;
            best_b = b;
        }
    }
    *scale = best_a;
    *min = -best_b;
}

/* Symmetric fit of x (n,) with codes -nneg..nneg-1: x[i] ~= scale * L[i].
 * The value of largest magnitude anchors the grid (it maps near -nneg, the
 * code with no positive twin); for each candidate the least-squares scale
 * sum(x L) / sum(L L) is computed and the one with the smallest error kept.
 * The returned scale may be negative. */
static float fit_symmetric(const float *x, int n, int nneg)
{
    float amax = 0.0f, v = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            v = x[i];
        }
    }
    if (amax == 0.0f)
        return 0.0f;
    float best = v / -(float)nneg;
    double best_gain = -1.0;
    for (int k = -9; k <= 9; k++) {
        float iscale = -((float)nneg + 0.1f * (float)k) / v;
        double sxl = 0, sll = 0;
        for (int i = 0; i < n; i++) {
            int l = clamp_int(nearest_int(iscale * x[i]), -nneg, nneg - 1);
            sxl += (double)x[i] * l;
            sll += (double)l * l;
        }
        if (sll <= 0)
            continue;
        /* squared error = sum x^2 - sxl^2 / sll: maximise the second term */
        double gain = sxl * sxl / sll;
        if (gain > best_gain) {
            best_gain = gain;
            best = (float)(sxl / sll);
        }
    }
    return best;
}

// ---------------------------------------------------------------- Q2_K

/* Codes and factors of one Q2_K super-block (sub-blocks of 16). */
static void q2_k_unpack(const struct kz_block_q2_k *b, int q[256], float dl[16], float ml[16])
{
    float d = kz_fp16_to_fp32(b->d), dmin = kz_fp16_to_fp32(b->dmin);
    for (int s = 0; s < 16; s++) {
        dl[s] = d * (float)(b->scales[s] & 15);
        ml[s] = dmin * (float)(b->scales[s] >> 4);
    }
    /* e = 128 h + 32 j + t: bits 2j..2j+1 of qs[32 h + t] */
    for (int e = 0; e < 256; e++) {
        int h = e / 128, j = (e % 128) / 32, t = e % 32;
        q[e] = (b->qs[32 * h + t] >> (2 * j)) & 3;
    }
}

void kz_ref_q2_k_to_float(const void *restrict src, float *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    const struct kz_block_q2_k *b = src;
    int q[256];
    float dl[16], ml[16];
    for (int64_t i = 0; i < n / KZ_QK_K; i++, dst += KZ_QK_K) {
        q2_k_unpack(&b[i], q, dl, ml);
        emit_block(dst, q, dl, ml, 16);
    }
}

void kz_ref_q2_k_from_float(const float *restrict src, void *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    struct kz_block_q2_k *b = dst;
    for (int64_t i = 0; i < n / KZ_QK_K; i++, src += KZ_QK_K) {
        float scale[16], min[16], max_scale = 0.0f, max_min = 0.0f;
        for (int s = 0; s < 16; s++) {
            fit_affine(src + 16 * s, 16, 3, &scale[s], &min[s]);
            max_scale = fmaxf(max_scale, scale[s]);
            max_min = fmaxf(max_min, min[s]);
        }
        /* 4-bit scale and min codes against super-scales max / 15 */
        b[i].d = kz_fp32_to_fp16(max_scale / 15.0f);
        b[i].dmin = kz_fp32_to_fp16(max_min / 15.0f);
        float is = max_scale > 0.0f ? 15.0f / max_scale : 0.0f;
        float im = max_min > 0.0f ? 15.0f / max_min : 0.0f;
        for (int s = 0; s < 16; s++) {
            int ls = clamp_int(nearest_int(is * scale[s]), 0, 15);
            int lm = clamp_int(nearest_int(im * min[s]), 0, 15);
            b[i].scales[s] = (uint8_t)(ls | lm << 4);
        }
        /* codes against the stored factors */
        int q[256];
        float dl[16], ml[16];
        q2_k_unpack(&b[i], q, dl, ml);
        memset(b[i].qs, 0, sizeof b[i].qs);
        for (int e = 0; e < 256; e++) {
            int s = e / 16;
            int l = dl[s] != 0.0f ? clamp_int(nearest_int((src[e] + ml[s]) / dl[s]), 0, 3) : 0;
            int h = e / 128, j = (e % 128) / 32, t = e % 32;
            b[i].qs[32 * h + t] |= (uint8_t)(l << (2 * j));
        }
    }
}

float kz_ref_q2_k_dot_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    const struct kz_block_q2_k *b = w;
    int q[256];
    float dl[16], ml[16], total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK_K; i++, x += KZ_QK_K) {
        q2_k_unpack(&b[i], q, dl, ml);
        total += dot_block(q, dl, ml, 16, x);
    }
    return total;
}

// ---------------------------------------------------------------- Q3_K

/* Codes (de-biased: -4..3) and factors of one Q3_K super-block. */
static void q3_k_unpack(const struct kz_block_q3_k *b, int q[256], float dl[16], float ml[16])
{
    float d = kz_fp16_to_fp32(b->d);
    for (int s = 0; s < 16; s++) {
        dl[s] = d * (float)(kz_q3k_scale(b->scales, s) - 32);
        ml[s] = 0.0f;
    }
    /* e = 128 h + 32 j + t: low bits as Q2_K, bit 2 = bit (4h + j) of hmask[t] */
    for (int e = 0; e < 256; e++) {
        int h = e / 128, j = (e % 128) / 32, t = e % 32;
        int lo = (b->qs[32 * h + t] >> (2 * j)) & 3;
        int hi = (b->hmask[t] >> (4 * h + j)) & 1;
        q[e] = (lo | hi << 2) - 4;
    }
}

void kz_ref_q3_k_to_float(const void *restrict src, float *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    const struct kz_block_q3_k *b = src;
    int q[256];
    float dl[16], ml[16];
    for (int64_t i = 0; i < n / KZ_QK_K; i++, dst += KZ_QK_K) {
        q3_k_unpack(&b[i], q, dl, ml);
        for (int e = 0; e < 256; e++)
            dst[e] = dl[e / 16] * (float)q[e];
    }
}

void kz_ref_q3_k_from_float(const float *restrict src, void *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    struct kz_block_q3_k *b = dst;
    for (int64_t i = 0; i < n / KZ_QK_K; i++, src += KZ_QK_K) {
        float scale[16], amax = 0.0f, v = 0.0f;
        for (int s = 0; s < 16; s++) {
            scale[s] = fit_symmetric(src + 16 * s, 16, 4);
            if (fabsf(scale[s]) > amax) {
                amax = fabsf(scale[s]);
                v = scale[s];
            }
        }
        memset(&b[i], 0, sizeof b[i]);
        /* signed 6-bit scale codes -32..31 against d = v / -32 */
        float d = v / -32.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = kz_fp32_to_fp16(d);
        for (int s = 0; s < 16; s++) {
            int code = clamp_int(nearest_int(id * scale[s]), -32, 31) + 32; /* 0..63 */
            if (s < 8)
                b[i].scales[s] |= (uint8_t)(code & 15);
            else
                b[i].scales[s - 8] |= (uint8_t)((code & 15) << 4);
            b[i].scales[8 + s % 4] |= (uint8_t)((code >> 4) << (2 * (s / 4)));
        }
        int q[256];
        float dl[16], ml[16];
        q3_k_unpack(&b[i], q, dl, ml);
        for (int e = 0; e < 256; e++) {
            float f = dl[e / 16];
            int l = f != 0.0f ? clamp_int(nearest_int(src[e] / f), -4, 3) + 4 : 4;
            int h = e / 128, j = (e % 128) / 32, t = e % 32;
            b[i].qs[32 * h + t] |= (uint8_t)((l & 3) << (2 * j));
            b[i].hmask[t] |= (uint8_t)((l >> 2) << (4 * h + j));
        }
    }
}

float kz_ref_q3_k_dot_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    const struct kz_block_q3_k *b = w;
    int q[256];
    float dl[16], ml[16], total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK_K; i++, x += KZ_QK_K) {
        q3_k_unpack(&b[i], q, dl, ml);
        total += dot_block(q, dl, ml, 16, x);
    }
    return total;
}

// ---------------------------------------------------------------- Q4_K / Q5_K shared

/* Factors of the 8 sub-blocks of 32 from d, dmin and the packed scales. */
static void k4_factors(uint16_t d16, uint16_t dmin16, const uint8_t scales[12], float dl[8],
                       float ml[8])
{
    float d = kz_fp16_to_fp32(d16), dmin = kz_fp16_to_fp32(dmin16);
    for (int s = 0; s < 8; s++) {
        uint8_t sc, m;
        kz_q4k_scale_min(scales, s, &sc, &m);
        dl[s] = d * (float)sc;
        ml[s] = dmin * (float)m;
    }
}

/* Fits all 8 sub-blocks of x (256,) with codes 0..nmax, stores d, dmin and
 * the 6-bit packed scales, and returns the resulting factors in dl, ml. */
static void k4_fit(const float *x, int nmax, uint16_t *d16, uint16_t *dmin16, uint8_t scales[12],
                   float dl[8], float ml[8])
{
    float scale[8], min[8], max_scale = 0.0f, max_min = 0.0f;
    for (int s = 0; s < 8; s++) {
        fit_affine(x + 32 * s, 32, nmax, &scale[s], &min[s]);
        max_scale = fmaxf(max_scale, scale[s]);
        max_min = fmaxf(max_min, min[s]);
    }
    *d16 = kz_fp32_to_fp16(max_scale / 63.0f);
    *dmin16 = kz_fp32_to_fp16(max_min / 63.0f);
    float is = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    float im = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    memset(scales, 0, 12);
    for (int s = 0; s < 8; s++) {
        int ls = clamp_int(nearest_int(is * scale[s]), 0, 63);
        int lm = clamp_int(nearest_int(im * min[s]), 0, 63);
        /* the packing table of struct kz_block_q4_k, written forwards */
        if (s < 4) {
            scales[s] |= (uint8_t)ls;
            scales[s + 4] |= (uint8_t)lm;
        } else {
            scales[s + 4] = (uint8_t)((ls & 15) | (lm & 15) << 4);
            scales[s - 4] |= (uint8_t)((ls >> 4) << 6);
            scales[s] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    k4_factors(*d16, *dmin16, scales, dl, ml);
}

/* Code of x under factors (dl, ml), clamped to 0..nmax. */
static inline int affine_code(float x, float dl, float ml, int nmax)
{
    return dl != 0.0f ? clamp_int(nearest_int((x + ml) / dl), 0, nmax) : 0;
}

// ---------------------------------------------------------------- Q4_K

static void q4_k_unpack(const struct kz_block_q4_k *b, int q[256], float dl[8], float ml[8])
{
    k4_factors(b->d, b->dmin, b->scales, dl, ml);
    /* e = 64 c + 32 k + l: nibble k of qs[32 c + l] */
    for (int e = 0; e < 256; e++) {
        int c = e / 64, k = (e % 64) / 32, l = e % 32;
        q[e] = (b->qs[32 * c + l] >> (4 * k)) & 15;
    }
}

void kz_ref_q4_k_to_float(const void *restrict src, float *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    const struct kz_block_q4_k *b = src;
    int q[256];
    float dl[8], ml[8];
    for (int64_t i = 0; i < n / KZ_QK_K; i++, dst += KZ_QK_K) {
        q4_k_unpack(&b[i], q, dl, ml);
        emit_block(dst, q, dl, ml, 32);
    }
}

void kz_ref_q4_k_from_float(const float *restrict src, void *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    struct kz_block_q4_k *b = dst;
    for (int64_t i = 0; i < n / KZ_QK_K; i++, src += KZ_QK_K) {
        float dl[8], ml[8];
        k4_fit(src, 15, &b[i].d, &b[i].dmin, b[i].scales, dl, ml);
        memset(b[i].qs, 0, sizeof b[i].qs);
        for (int e = 0; e < 256; e++) {
            int l = affine_code(src[e], dl[e / 32], ml[e / 32], 15);
            int c = e / 64, k = (e % 64) / 32, j = e % 32;
            b[i].qs[32 * c + j] |= (uint8_t)(l << (4 * k));
        }
    }
}

float kz_ref_q4_k_dot_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    const struct kz_block_q4_k *b = w;
    int q[256];
    float dl[8], ml[8], total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK_K; i++, x += KZ_QK_K) {
        q4_k_unpack(&b[i], q, dl, ml);
        total += dot_block(q, dl, ml, 32, x);
    }
    return total;
}

// ---------------------------------------------------------------- Q5_K

static void q5_k_unpack(const struct kz_block_q5_k *b, int q[256], float dl[8], float ml[8])
{
    k4_factors(b->d, b->dmin, b->scales, dl, ml);
    /* low 4 bits as Q4_K; bit 4 = bit (e / 32) of qh[e % 32] */
    for (int e = 0; e < 256; e++) {
        int c = e / 64, k = (e % 64) / 32, l = e % 32;
        int lo = (b->qs[32 * c + l] >> (4 * k)) & 15;
        int hi = (b->qh[l] >> (e / 32)) & 1;
        q[e] = lo | hi << 4;
    }
}

void kz_ref_q5_k_to_float(const void *restrict src, float *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    const struct kz_block_q5_k *b = src;
    int q[256];
    float dl[8], ml[8];
    for (int64_t i = 0; i < n / KZ_QK_K; i++, dst += KZ_QK_K) {
        q5_k_unpack(&b[i], q, dl, ml);
        emit_block(dst, q, dl, ml, 32);
    }
}

void kz_ref_q5_k_from_float(const float *restrict src, void *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    struct kz_block_q5_k *b = dst;
    for (int64_t i = 0; i < n / KZ_QK_K; i++, src += KZ_QK_K) {
        float dl[8], ml[8];
        k4_fit(src, 31, &b[i].d, &b[i].dmin, b[i].scales, dl, ml);
        memset(b[i].qs, 0, sizeof b[i].qs);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int e = 0; e < 256; e++) {
            int l = affine_code(src[e], dl[e / 32], ml[e / 32], 31);
            int c = e / 64, k = (e % 64) / 32, j = e % 32;
            b[i].qs[32 * c + j] |= (uint8_t)((l & 15) << (4 * k));
            b[i].qh[j] |= (uint8_t)((l >> 4) << (e / 32));
        }
    }
}

float kz_ref_q5_k_dot_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    const struct kz_block_q5_k *b = w;
    int q[256];
    float dl[8], ml[8], total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK_K; i++, x += KZ_QK_K) {
        q5_k_unpack(&b[i], q, dl, ml);
        total += dot_block(q, dl, ml, 32, x);
    }
    return total;
}

// ---------------------------------------------------------------- Q6_K

/* Codes (de-biased: -32..31) and factors of one Q6_K super-block. */
static void q6_k_unpack(const struct kz_block_q6_k *b, int q[256], float dl[16], float ml[16])
{
    float d = kz_fp16_to_fp32(b->d);
    for (int s = 0; s < 16; s++) {
        dl[s] = d * (float)b->scales[s];
        ml[s] = 0.0f;
    }
    /* e = 128 h + 32 k + l: low nibble (k < 2) or high nibble (k >= 2) of
     * ql[64 h + 32 (k & 1) + l]; high 2 bits = bits 2k..2k+1 of qh[32 h + l] */
    for (int e = 0; e < 256; e++) {
        int h = e / 128, k = (e % 128) / 32, l = e % 32;
        int lo = (b->ql[64 * h + 32 * (k & 1) + l] >> (4 * (k / 2))) & 15;
        int hi = (b->qh[32 * h + l] >> (2 * k)) & 3;
        q[e] = (lo | hi << 4) - 32;
    }
}

void kz_ref_q6_k_to_float(const void *restrict src, float *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    const struct kz_block_q6_k *b = src;
    int q[256];
    float dl[16], ml[16];
    for (int64_t i = 0; i < n / KZ_QK_K; i++, dst += KZ_QK_K) {
        q6_k_unpack(&b[i], q, dl, ml);
        for (int e = 0; e < 256; e++)
            dst[e] = dl[e / 16] * (float)q[e];
    }
}

void kz_ref_q6_k_from_float(const float *restrict src, void *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    struct kz_block_q6_k *b = dst;
    for (int64_t i = 0; i < n / KZ_QK_K; i++, src += KZ_QK_K) {
        float scale[16], amax = 0.0f, v = 0.0f;
        for (int s = 0; s < 16; s++) {
            scale[s] = fit_symmetric(src + 16 * s, 16, 32);
            if (fabsf(scale[s]) > amax) {
                amax = fabsf(scale[s]);
                v = scale[s];
            }
        }
        memset(&b[i], 0, sizeof b[i]);
        /* signed 8-bit scale codes against d = v / -128 */
        float d = v / -128.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = kz_fp32_to_fp16(d);
        for (int s = 0; s < 16; s++)
            b[i].scales[s] = (int8_t)clamp_int(nearest_int(id * scale[s]), -128, 127);
        int q[256];
        float dl[16], ml[16];
        q6_k_unpack(&b[i], q, dl, ml);
        for (int e = 0; e < 256; e++) {
            float f = dl[e / 16];
            int l = f != 0.0f ? clamp_int(nearest_int(src[e] / f), -32, 31) + 32 : 32;
            int h = e / 128, k = (e % 128) / 32, j = e % 32;
            b[i].ql[64 * h + 32 * (k & 1) + j] |= (uint8_t)((l & 15) << (4 * (k / 2)));
            b[i].qh[32 * h + j] |= (uint8_t)((l >> 4) << (2 * k));
        }
    }
}

float kz_ref_q6_k_dot_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    const struct kz_block_q6_k *b = w;
    int q[256];
    float dl[16], ml[16], total = 0.0f;
    for (int64_t i = 0; i < n / KZ_QK_K; i++, x += KZ_QK_K) {
        q6_k_unpack(&b[i], q, dl, ml);
        total += dot_block(q, dl, ml, 16, x);
    }
    return total;
}
