/* SPDX-License-Identifier: MIT
 * Quantized block layouts and scalar half-precision conversions.
 *
 * The block structs below are the on-disk layouts of the GGUF/ggml tensor
 * types, byte for byte: a row of n elements of type T is n / KZ_QK_T
 * consecutive blocks, with no padding between them. Model files are mapped
 * and cast to these structs, so every field offset matters; the static
 * asserts at the bottom pin the sizes that kz_dtype_info() also reports.
 *
 * Invariants and assumptions:
 *   - little-endian host (GGUF data is little-endian and is read in place);
 *   - a block pointer is at least 2-byte aligned (it holds uint16_t halves).
 *     GGUF aligns tensor data to 32 bytes and every block size is even, so
 *     any row of a mapped tensor qualifies;
 *   - "half" fields hold IEEE 754 binary16 bit patterns; convert them with
 *     kz_fp16_to_fp32().
 *
 * Notation used in the per-type comments: d, dmin are the f16 super-scales,
 * q the stored unsigned integer code of one weight, sc / m the per-sub-block
 * scale and min codes. Element e of a block is the e-th weight of the row
 * slice the block covers (0-based).
 */
#ifndef KZ_QUANT_H
#define KZ_QUANT_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "kyozon reads GGUF tensor data in place and needs a little-endian host"
#endif

/* ------------------------------------------------------------------------ */
/* Half-precision conversions                                                */
/* ------------------------------------------------------------------------ */

static inline uint32_t kz_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float kz_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE binary16 -> binary32. Exact for every input: subnormals become
 * normal floats, infinities stay infinite, NaNs keep sign and payload
 * (shifted into the top of the f32 mantissa, so they stay NaN). */
static inline float kz_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;

    if (exp == 0x1f) /* inf or NaN */
        return kz_bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp != 0) /* normal: rebias 15 -> 127 */
        return kz_bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
    if (man == 0)
        return kz_bits_f32(sign); /* signed zero */
    /* subnormal: man * 2^-24; both factors are exact in f32, so is the product */
    float v = (float)man * 5.9604644775390625e-08f; /* 2^-24 */
    return sign ? -v : v;
}

/* IEEE binary32 -> binary16 with round-to-nearest, ties to even (what
 * F16C's vcvtps2ph does in its default mode). Values that round past 65504
 * become infinity; values at or below 2^-25 become signed zero; results in
 * the subnormal range are rounded at the 2^-24 granularity. NaN stays NaN
 * (quieted, top payload bits kept). */
static inline uint16_t kz_fp32_to_fp16(float f)
{
    uint32_t u = kz_f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;

    if (a > 0x7f800000u) /* NaN: set the quiet bit so a payload of 0 can't turn into inf */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) /* >= 65520 (halfway past 65504, ties to even = up): inf */
        return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) { /* >= 2^-14: normal half */
        uint32_t h = (a - (112u << 23)) >> 13; /* rebias 127 -> 15, drop 13 bits */
        uint32_t rest = a & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
            h++; /* a mantissa carry correctly bumps the exponent */
        return (uint16_t)(sign | h);
    }
    /* Subnormal half or zero: result = round(|f| / 2^-24). |f| = m * 2^(e-150)
     * with the implicit bit in m, so the result is m >> (126 - e), rounded. */
    uint32_t e = a >> 23;
    if (e < 102) /* |f| < 2^-25: rounds to zero (2^-25 itself is a tie to even 0) */
        return sign;
    uint32_t m = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e; /* 14..24 */
    uint32_t h = m >> shift;
    uint32_t rest = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (h & 1u)))
        h++; /* may become 0x400, the smallest normal: still correct */
    return (uint16_t)(sign | h);
}

/* bfloat16 -> binary32: the top 16 bits of the f32 pattern. Exact. */
static inline float kz_bf16_to_fp32(uint16_t h)
{
    return kz_bits_f32((uint32_t)h << 16);
}

/* binary32 -> bfloat16, round-to-nearest, ties to even. Large finite values
 * may round to infinity; NaN stays NaN (quiet bit forced so truncating the
 * payload can never produce infinity). Subnormals are rounded, not flushed. */
static inline uint16_t kz_fp32_to_bf16(float f)
{
    uint32_t u = kz_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x0040u);
    uint32_t bias = 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)((u + bias) >> 16);
}

/* ------------------------------------------------------------------------ */
/* Legacy 32-element blocks                                                  */
/* ------------------------------------------------------------------------ */

#define KZ_QK4_0 32
#define KZ_QK4_1 32
#define KZ_QK5_0 32
#define KZ_QK5_1 32
#define KZ_QK8_0 32

/* Q4_0: w[e] = d * (q[e] - 8), q in 0..15.
 * qs[j] holds q[j] in its low nibble and q[j+16] in its high nibble. */
struct kz_block_q4_0 {
    uint16_t d;      /* half */
    uint8_t qs[16];
};

/* Q4_1: w[e] = d * q[e] + m, q in 0..15; nibbles as in Q4_0. */
struct kz_block_q4_1 {
    uint16_t d;      /* half */
    uint16_t m;      /* half */
    uint8_t qs[16];
};

/* Q5_0: w[e] = d * (q[e] - 16), q in 0..31.
 * Low 4 bits of q[e] as in Q4_0; bit 4 of q[e] is bit e of qh read as a
 * little-endian u32. */
struct kz_block_q5_0 {
    uint16_t d;      /* half */
    uint8_t qh[4];
    uint8_t qs[16];
};

/* Q5_1: w[e] = d * q[e] + m, q in 0..31; bits as in Q5_0. */
struct kz_block_q5_1 {
    uint16_t d;      /* half */
    uint16_t m;      /* half */
    uint8_t qh[4];
    uint8_t qs[16];
};

/* Q8_0: w[e] = d * qs[e], qs signed. */
struct kz_block_q8_0 {
    uint16_t d;      /* half */
    int8_t qs[32];
};

/* ------------------------------------------------------------------------ */
/* K-quants: 256-element super-blocks                                        */
/* ------------------------------------------------------------------------ */

#define KZ_QK_K 256

/* Q2_K: 16 sub-blocks of 16. scales[s] = sc | m << 4 (4 bits each) for
 * sub-block s = e / 16; w[e] = d*sc * q[e] - dmin*m, q in 0..3.
 * q[e], with e = 128*h + 32*j + t (h 0..1, j 0..3, t 0..31), is bits
 * 2j..2j+1 of qs[32*h + t]. */
struct kz_block_q2_k {
    uint8_t scales[16];
    uint8_t qs[64];
    uint16_t d;      /* half */
    uint16_t dmin;   /* half */
};

/* Q3_K: 16 sub-blocks of 16, signed 6-bit scales stored with a +32 bias.
 * w[e] = d * (sc[s] - 32) * (q[e] - 4), s = e / 16, q in 0..7.
 * Low 2 bits of q[e] are placed as in Q2_K; bit 2 of q[e] is bit (4h + j)
 * of hmask[t] (same e = 128h + 32j + t). Scale s: low 4 bits are the low
 * (s < 8) or high (s >= 8) nibble of scales[s % 8]; high 2 bits are bits
 * 2*(s/4)..2*(s/4)+1 of scales[8 + s % 4]. */
struct kz_block_q3_k {
    uint8_t hmask[32];
    uint8_t qs[64];
    uint8_t scales[12];
    uint16_t d;      /* half */
};

/* Q4_K: 8 sub-blocks of 32, 6-bit scale sc and min m each (packing below).
 * w[e] = d*sc[s] * q[e] - dmin*m[s], s = e / 32, q in 0..15.
 * With e = 64*c + 32*k + l (c 0..3, k 0..1, l 0..31), q[e] is the low
 * (k = 0) or high (k = 1) nibble of qs[32*c + l].
 * Scale packing for sub-block s (12 bytes, also used by Q5_K):
 *   s < 4:  sc = scales[s] & 63,            m = scales[s+4] & 63
 *   s >= 4: sc = (scales[s+4] & 15) | (scales[s-4] >> 6) << 4
 *           m  = (scales[s+4] >> 4) | (scales[s]   >> 6) << 4 */
struct kz_block_q4_k {
    uint16_t d;      /* half */
    uint16_t dmin;   /* half */
    uint8_t scales[12];
    uint8_t qs[128];
};

/* Q5_K: as Q4_K with q in 0..31; bit 4 of q[e] is bit (e / 32) of qh[e % 32]. */
struct kz_block_q5_k {
    uint16_t d;      /* half */
    uint16_t dmin;   /* half */
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
};

/* Q6_K: 16 sub-blocks of 16, signed 8-bit scales. w[e] = d * scales[e/16] * (q[e] - 32),
 * q in 0..63. With e = 128*h + 32*k + l (h 0..1, k 0..3, l 0..31):
 * low 4 bits of q[e] are the low (k < 2) or high (k >= 2) nibble of
 * ql[64*h + 32*(k & 1) + l]; high 2 bits are bits 2k..2k+1 of qh[32*h + l]. */
struct kz_block_q6_k {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;      /* half */
};

_Static_assert(sizeof(struct kz_block_q4_0) == 18, "Q4_0 block layout");
_Static_assert(sizeof(struct kz_block_q4_1) == 20, "Q4_1 block layout");
_Static_assert(sizeof(struct kz_block_q5_0) == 22, "Q5_0 block layout");
_Static_assert(sizeof(struct kz_block_q5_1) == 24, "Q5_1 block layout");
_Static_assert(sizeof(struct kz_block_q8_0) == 34, "Q8_0 block layout");
_Static_assert(sizeof(struct kz_block_q2_k) == 84, "Q2_K block layout");
_Static_assert(sizeof(struct kz_block_q3_k) == 110, "Q3_K block layout");
_Static_assert(sizeof(struct kz_block_q4_k) == 144, "Q4_K block layout");
_Static_assert(sizeof(struct kz_block_q5_k) == 176, "Q5_K block layout");
_Static_assert(sizeof(struct kz_block_q6_k) == 210, "Q6_K block layout");

/* Unpacks the 6-bit scale and min of sub-block s (0..7) of a Q4_K/Q5_K
 * scales[12] array; see the packing table at struct kz_block_q4_k. */
static inline void kz_q4k_scale_min(const uint8_t *scales, int s, uint8_t *sc /* out */,
                                    uint8_t *m /* out */)
{
    if (s < 4) {
        *sc = scales[s] & 63;
        *m = scales[s + 4] & 63;
    } else {
        *sc = (uint8_t)((scales[s + 4] & 15) | ((scales[s - 4] >> 6) << 4));
        *m = (uint8_t)((scales[s + 4] >> 4) | ((scales[s] >> 6) << 4));
    }
}

/* Unpacks the biased 6-bit scale of sub-block s (0..15) of a Q3_K block
 * (0..63; subtract 32 for the signed scale). */
static inline int kz_q3k_scale(const uint8_t *scales, int s)
{
    int lo = s < 8 ? (scales[s] & 15) : (scales[s - 8] >> 4);
    int hi = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
    return lo | hi << 4;
}

#endif
