/* SPDX-License-Identifier: MIT
 * Reference quantization kernels: half/bfloat conversions against known bit
 * patterns, hand-built blocks of each layout decoded to hand-computed
 * values, quantize -> dequantize round trips, and dot_f32 against
 * dequantize-then-dot.
 *
 * To add a type: give it a row in `types` below (with its round-trip
 * tolerance), and if its layout is new, a hand-built block in the
 * "hand blocks" section whose bytes are written out from the published
 * layout rather than produced by our own quantizer.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/quant.h"
#include "t.h"

/* ------------------------------------------------------------------------ */
/* Deterministic random data                                                 */
/* ------------------------------------------------------------------------ */

static uint64_t rng_state;

static void rng_seed(uint64_t s)
{
    rng_state = s * 0x9e3779b97f4a7c15ull + 1;
}

static uint32_t rng_u32(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static float rng_uniform(void) /* (0, 1) */
{
    return ((float)(rng_u32() >> 8) + 0.5f) / 16777216.0f;
}

static float rng_normal(void)
{
    float u = rng_uniform(), v = rng_uniform();
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

/* ------------------------------------------------------------------------ */
/* fp16 / bf16                                                               */
/* ------------------------------------------------------------------------ */

#define CHECK_H(f, want)                                                                \
    do {                                                                                \
        uint16_t got_ = kz_fp32_to_fp16(f);                                             \
        T_OK(got_ == (want), "fp16(%s) = 0x%04x, want 0x%04x", #f, got_, (unsigned)(want)); \
    } while (0)

#define CHECK_B(f, want)                                                                \
    do {                                                                                \
        uint16_t got_ = kz_fp32_to_bf16(f);                                             \
        T_OK(got_ == (want), "bf16(%s) = 0x%04x, want 0x%04x", #f, got_, (unsigned)(want)); \
    } while (0)

static void fp16_conversions(void)
{
    CHECK_H(1.0f, 0x3c00);
    CHECK_H(-2.0f, 0xc000);
    CHECK_H(0.0f, 0x0000);
    CHECK_H(-0.0f, 0x8000);
    CHECK_H(65504.0f, 0x7bff);              /* largest finite */
    CHECK_H(65519.0f, 0x7bff);              /* below the halfway point: rounds down */
    CHECK_H(65520.0f, 0x7c00);              /* halfway, 0x7bff is odd: up to inf */
    CHECK_H(1e10f, 0x7c00);                 /* overflow */
    CHECK_H(-1e10f, 0xfc00);
    CHECK_H(INFINITY, 0x7c00);
    CHECK_H(-INFINITY, 0xfc00);
    CHECK_H(6.103515625e-05f, 0x0400);      /* 2^-14, smallest normal */
    CHECK_H(5.9604644775390625e-08f, 0x0001); /* 2^-24, smallest subnormal */
    CHECK_H(6.097555160522461e-05f, 0x03ff); /* 1023 * 2^-24, largest subnormal */
    CHECK_H(2.98023223876953125e-08f, 0x0000); /* 2^-25: tie between 0 and 2^-24 -> even 0 */
    CHECK_H(4.470348358154297e-08f, 0x0001);  /* 1.5 * 2^-25 -> 2^-24 */
    CHECK_H(8.940696716308594e-08f, 0x0002);  /* 1.5 * 2^-24: tie between 1 and 2 -> 2 */
    CHECK_H(1e-30f, 0x0000);                  /* underflow */
    CHECK_H(1.00048828125f, 0x3c00);          /* 1 + 2^-11: tie, 0x3c00 is even: down */
    CHECK_H(1.00146484375f, 0x3c02);          /* 1 + 3*2^-11: tie, 0x3c01 odd: up */
    CHECK_H(kz_bits_f32(0x3f801001u), 0x3c01);  /* one ulp above that tie: up */
    CHECK_H(0.1f, 0x2e66);
    CHECK_H(-3.140625f, 0xc248);              /* exactly representable */

    uint16_t hn = kz_fp32_to_fp16(NAN);
    T_OK((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff) != 0, "NaN stays NaN (0x%04x)", hn);
    uint16_t hn2 = kz_fp32_to_fp16(kz_bits_f32(0x7f800001u)); /* payload only in low bits */
    T_OK((hn2 & 0x7c00) == 0x7c00 && (hn2 & 0x3ff) != 0, "low-payload NaN stays NaN (0x%04x)", hn2);

    T_OK(kz_fp16_to_fp32(0x3c00) == 1.0f, "0x3c00 -> 1");
    T_OK(kz_fp16_to_fp32(0x7bff) == 65504.0f, "0x7bff -> 65504");
    T_OK(kz_fp16_to_fp32(0x0001) == 5.9604644775390625e-08f, "0x0001 -> 2^-24");
    T_OK(kz_fp16_to_fp32(0x03ff) == 6.097555160522461e-05f, "0x03ff -> 1023*2^-24");
    T_OK(kz_fp16_to_fp32(0x8001) == -5.9604644775390625e-08f, "0x8001 -> -2^-24");
    T_OK(isinf(kz_fp16_to_fp32(0x7c00)) && kz_fp16_to_fp32(0x7c00) > 0, "0x7c00 -> +inf");
    T_OK(isinf(kz_fp16_to_fp32(0xfc00)) && kz_fp16_to_fp32(0xfc00) < 0, "0xfc00 -> -inf");
    T_OK(isnan(kz_fp16_to_fp32(0x7e00)), "0x7e00 -> NaN");
    T_OK(isnan(kz_fp16_to_fp32(0x7c01)), "0x7c01 -> NaN");
    T_OK(kz_f32_bits(kz_fp16_to_fp32(0x8000)) == 0x80000000u, "0x8000 -> -0");

    /* every non-NaN half survives half -> float -> half */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue;
        if (kz_fp32_to_fp16(kz_fp16_to_fp32((uint16_t)h)) != h)
            bad++;
    }
    T_EQ_INT(bad, 0);

    /* between two neighbouring halves, the nearest one wins */
    bad = 0;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        float lo = kz_fp16_to_fp32((uint16_t)h), hi = kz_fp16_to_fp32((uint16_t)(h + 1));
        float a = lo + (hi - lo) * 0.25f, b = lo + (hi - lo) * 0.75f;
        if (kz_fp32_to_fp16(a) != h || kz_fp32_to_fp16(b) != h + 1)
            bad++;
    }
    T_EQ_INT(bad, 0);
}

static void bf16_conversions(void)
{
    CHECK_B(1.0f, 0x3f80);
    CHECK_B(-2.0f, 0xc000);
    CHECK_B(kz_bits_f32(0x3f808000u), 0x3f80); /* tie, even: down */
    CHECK_B(kz_bits_f32(0x3f818000u), 0x3f82); /* tie, odd: up */
    CHECK_B(kz_bits_f32(0x3f808001u), 0x3f81); /* above the tie */
    CHECK_B(kz_bits_f32(0x3f807fffu), 0x3f80); /* below the tie */
    CHECK_B(INFINITY, 0x7f80);
    CHECK_B(-INFINITY, 0xff80);
    CHECK_B(kz_bits_f32(0x7f7fffffu), 0x7f80); /* FLT_MAX rounds to inf */
    CHECK_B(kz_bits_f32(0x00000001u), 0x0000); /* smallest denormal rounds to 0 */
    CHECK_B(kz_bits_f32(0x00018000u), 0x0002); /* denormal tie, odd: up (not flushed) */
    CHECK_B(-0.0f, 0x8000);
    uint16_t bn = kz_fp32_to_bf16(kz_bits_f32(0x7f800001u)); /* payload only in low bits */
    T_OK((bn & 0x7f80) == 0x7f80 && (bn & 0x7f) != 0, "NaN stays NaN (0x%04x)", bn);
    T_OK(isnan(kz_bf16_to_fp32(kz_fp32_to_bf16(NAN))), "NaN round trip");
    T_OK(kz_bf16_to_fp32(0x3f80) == 1.0f, "0x3f80 -> 1");
    T_OK(kz_f32_bits(kz_bf16_to_fp32(0xc049)) == 0xc0490000u, "widening is a shift");

    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7f80) == 0x7f80 && (h & 0x7f))
            continue;
        if (kz_fp32_to_bf16(kz_bf16_to_fp32((uint16_t)h)) != h)
            bad++;
    }
    T_EQ_INT(bad, 0);
}

/* ------------------------------------------------------------------------ */
/* Hand-built blocks                                                         */
/* ------------------------------------------------------------------------ */

/* Decodes `bytes` (one block of `type`) and compares every element with
 * want[] exactly. */
static void check_decode(uint32_t type, const uint8_t *bytes, const float *want, int n)
{
    const struct kz_type_ops *ops = kz_type_ops_ref(type);
    T_OK(ops != NULL, "%s supported", kz_dtype_name(type));
    if (!ops)
        return;
    /* copy into a 2-aligned buffer, as a mapped tensor would be */
    uint16_t blk[256];
    uint32_t blck = 0, size = 0;
    kz_dtype_info(type, &blck, &size);
    T_EQ_INT(blck, (uint32_t)n);
    memcpy(blk, bytes, size);
    float got[256];
    ops->to_float(blk, got, n);
    int bad = 0;
    for (int e = 0; e < n; e++) {
        if (got[e] != want[e] && bad++ < 4)
            T_OK(0, "%s element %d: got %.9g want %.9g", kz_dtype_name(type), e, (double)got[e], (double)want[e]);
    }
    T_EQ_INT(bad, 0);

    /* and the dot product against unit vectors picks out single elements */
    float x[256] = {0};
    for (int e = 0; e < n; e += 7) {
        x[e] = 1.0f;
        float d = ops->dot_f32(n, blk, x);
        T_OK(d == want[e], "%s dot with e_%d: %.9g want %.9g", kz_dtype_name(type), e, (double)d, (double)want[e]);
        x[e] = 0.0f;
    }
}

static void hand_q4_0(void)
{
    /* d = 0.5 (half 0x3800, little-endian), qs[j] = j | (15 - j) << 4 */
    uint8_t b[18] = {0x00, 0x38};
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(j | (15 - j) << 4);
    float want[32];
    for (int j = 0; j < 16; j++) {
        want[j] = (float)(j - 8) * 0.5f;            /* low nibbles: elements 0..15 */
        want[16 + j] = (float)(15 - j - 8) * 0.5f;  /* high nibbles: elements 16..31 */
    }
    T_OK(want[0] == -4.0f && want[15] == 3.5f && want[16] == 3.5f && want[31] == -4.0f, "setup");
    check_decode(KZ_DT_Q4_0, b, want, 32);
}

static void hand_q8_0(void)
{
    /* d = 0.25 (0x3400), qs[e] = 8 e - 128 (so -128 appears) */
    uint8_t b[34] = {0x00, 0x34};
    float want[32];
    for (int e = 0; e < 32; e++) {
        int v = 8 * e - 128;
        b[2 + e] = (uint8_t)(int8_t)v;
        want[e] = (float)v * 0.25f;
    }
    T_OK(want[0] == -32.0f && want[31] == 30.0f, "setup");
    check_decode(KZ_DT_Q8_0, b, want, 32);
}

static void hand_q5_0(void)
{
    /* d = 1 (0x3c00), qh bits 0, 15 and 24..31 set, qs[j] = j | (15 - j) << 4 */
    uint8_t b[22] = {0x00, 0x3c, 0x01, 0x80, 0x00, 0xff};
    for (int j = 0; j < 16; j++)
        b[6 + j] = (uint8_t)(j | (15 - j) << 4);
    float want[32];
    for (int e = 0; e < 32; e++) {
        int lo = e < 16 ? e : 15 - (e - 16);
        int hi = (e == 0 || e == 15 || e >= 24) ? 16 : 0;
        want[e] = (float)(lo + hi - 16);
    }
    T_OK(want[0] == 0.0f && want[1] == -15.0f && want[15] == 15.0f && want[31] == 0.0f, "setup");
    check_decode(KZ_DT_Q5_0, b, want, 32);
}

static void hand_q4_k(void)
{
    /* d = 1 (0x3c00), dmin = 0.5 (0x3800).
     * 6-bit scales sc = {1, 2, 3, 4, 33, 50, 63, 17}
     * 6-bit mins   m  = {0, 5, 10, 63, 20, 47, 1, 32}
     * packed by hand:
     *   bytes 0..3  = sc[0..3]  | (sc[4..7] >> 4) << 6 = 0x81 0xc2 0xc3 0x44
     *   bytes 4..7  = m[0..3]   | (m[4..7] >> 4) << 6  = 0x40 0x85 0x0a 0xbf
     *   bytes 8..11 = (sc[4..7] & 15) | (m[4..7] & 15) << 4 = 0x41 0xf2 0x1f 0x01 */
    static const int sc[8] = {1, 2, 3, 4, 33, 50, 63, 17};
    static const int m[8] = {0, 5, 10, 63, 20, 47, 1, 32};
    uint8_t b[144] = {0x00, 0x3c, 0x00, 0x38, 0x81, 0xc2, 0xc3, 0x44, 0x40, 0x85,
                      0x0a, 0xbf, 0x41, 0xf2, 0x1f, 0x01};
    for (int i = 0; i < 128; i++)
        b[16 + i] = (uint8_t)(i * 37 + 11);
    const uint8_t *qs = b + 16;
    float want[256];
    for (int e = 0; e < 256; e++) {
        /* 64-element chunk c uses qs[32c..32c+31]: low nibbles first, then high */
        int c = e / 64, hi = (e % 64) >= 32, l = e % 32;
        int q = hi ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 15;
        want[e] = 1.0f * (float)sc[e / 32] * (float)q - 0.5f * (float)m[e / 32];
    }
    /* a few worked by hand from the byte values */
    T_OK(want[33] == 3.5f, "e33: qs[1]=0x30 hi=3: 2*3 - 0.5*5");
    T_OK(want[140] == 221.0f, "e140: qs[76]=0x07 lo=7: 33*7 - 0.5*20");
    T_OK(want[170] == 526.5f, "e170: qs[74]=0xbd hi=11: 50*11 - 0.5*47");
    T_OK(want[200] == 188.5f, "e200: qs[104]=0x13 lo=3: 63*3 - 0.5*1");
    T_OK(want[255] == 86.0f, "e255: qs[127]=0x66 hi=6: 17*6 - 0.5*32");
    check_decode(KZ_DT_Q4_K, b, want, 256);

    uint8_t s, mm;
    for (int j = 0; j < 8; j++) {
        kz_q4k_scale_min(b + 4, j, &s, &mm);
        T_OK(s == sc[j] && mm == m[j], "scale/min %d: %d/%d", j, s, mm);
    }
}

static void hand_q6_k(void)
{
    /* ql[i] = 29 i + 3, qh[i] = 53 i + 7, signed scales, d = 0.5 (0x3800) at the end */
    static const int sc[16] = {1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12, 13, -14, 15, -128};
    uint8_t b[210];
    for (int i = 0; i < 128; i++)
        b[i] = (uint8_t)(i * 29 + 3);
    for (int i = 0; i < 64; i++)
        b[128 + i] = (uint8_t)(i * 53 + 7);
    for (int s = 0; s < 16; s++)
        b[192 + s] = (uint8_t)(int8_t)sc[s];
    b[208] = 0x00;
    b[209] = 0x38;
    const uint8_t *ql = b, *qh = b + 128;
    float want[256];
    for (int e = 0; e < 256; e++) {
        /* 128-element half h; quarter k of it: k = 0, 1 low nibbles of
         * ql[64h .. 64h+63], k = 2, 3 high nibbles of the same bytes;
         * bits 2k, 2k+1 of qh[32h + l] on top */
        int h = e / 128, k = (e % 128) / 32, l = e % 32;
        int byte = ql[64 * h + 32 * (k % 2) + l];
        int lo = k < 2 ? byte & 15 : byte >> 4;
        int hi = (qh[32 * h + l] >> (2 * k)) & 3;
        want[e] = 0.5f * (float)sc[e / 16] * (float)((lo | hi << 4) - 32);
    }
    T_OK(want[0] == 9.5f, "e0: ql 0x03, qh 0x07: q=51-32, 0.5*1*19");
    T_OK(want[100] == 59.5f, "e100: ql[36]=0x17 hi=1, qh[4]=0xdb>>6=3: q=17, 0.5*7*17");
    T_OK(want[150] == 75.0f, "e150: ql[86]=0xc1 lo=1, qh[54]=0x35&3=1: q=-15, 0.5*-10*-15");
    T_OK(want[255] == 1664.0f, "e255: ql[127]=0x66 hi=6, qh[63]=0x12>>6=0: q=-26, 0.5*-128*-26");
    check_decode(KZ_DT_Q6_K, b, want, 256);
}

static void hand_q3_k(void)
{
    /* biased 6-bit scale codes c[s] (signed scale = c - 32), packed by hand:
     *   bytes 0..7:  low nibble = c[s] & 15 (s < 8), high nibble = c[s+8] & 15
     *   bytes 8..11: byte 8+i holds c[i] >> 4, c[i+4] >> 4, c[i+8] >> 4, c[i+12] >> 4
     *                in bit pairs 0-1, 2-3, 4-5, 6-7 */
    static const int c[16] = {0, 63, 32, 33, 31, 16, 47, 1, 2, 62, 40, 24, 8, 56, 48, 15};
    static const uint8_t scales[12] = {0x20, 0xef, 0x80, 0x81, 0x8f, 0x80, 0x0f, 0xf1,
                                       0x04, 0xf7, 0xea, 0x12};
    uint8_t b[110];
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(i * 59 + 13); /* hmask */
    for (int i = 0; i < 64; i++)
        b[32 + i] = (uint8_t)(i * 41 + 5); /* qs */
    memcpy(b + 96, scales, 12);
    b[108] = 0x00; /* d = 0.25 (0x3400) */
    b[109] = 0x34;
    const uint8_t *hmask = b, *qs = b + 32;
    float want[256];
    for (int e = 0; e < 256; e++) {
        /* 128-element half h, 32-element quarter j, position t:
         * low bits = bits 2j..2j+1 of qs[32h + t], high bit = bit 4h+j of hmask[t];
         * a clear high bit means "minus 4" */
        int h = e / 128, j = (e % 128) / 32, t = e % 32;
        int lo = (qs[32 * h + t] >> (2 * j)) & 3;
        int hb = (hmask[t] >> (4 * h + j)) & 1;
        int q = lo - (hb ? 0 : 4);
        want[e] = 0.25f * (float)(c[e / 16] - 32) * (float)q;
    }
    T_OK(want[0] == -8.0f, "e0: qs 0x05 lo=1, hmask 0x0d bit0=1: 0.25*-32*1");
    T_OK(want[20] == 7.75f, "e20: qs[20]=0x39 lo=1, hmask[20]=0xa9 bit0=1: 0.25*31*1");
    T_OK(want[77] == -0.25f, "e77: qs[13]=0x1a>>4=1, hmask[13]=0x0c bit2=1: 0.25*-1*1");
    T_OK(want[170] == -2.0f, "e170: qs[42]=0xbf>>2=3, hmask[10]=0x5b bit5=0: 0.25*8*-1");
    T_OK(want[255] == 17.0f, "e255: qs[63]=0x1c>>6=0, hmask[31]=0x32 bit7=0: 0.25*-17*-4");
    check_decode(KZ_DT_Q3_K, b, want, 256);
    for (int s = 0; s < 16; s++)
        T_OK(kz_q3k_scale(scales, s) == c[s], "scale %d: %d", s, kz_q3k_scale(scales, s));
}

/* ------------------------------------------------------------------------ */
/* Round trips and dot products                                              */
/* ------------------------------------------------------------------------ */

/* Relative RMS error rms(deq - x) / rms(x) allowed after quantize ->
 * dequantize of normal data whose magnitude changes every 32 elements over
 * a 300x range (computed per block, then RMS-averaged over blocks). The
 * measured values are printed by the test; these limits leave ~25% room. */
#define TOL_RT_F32 0.0
#define TOL_RT_F16 2.5e-4
#define TOL_RT_BF16 2e-3
#define TOL_RT_Q8_0 0.0067
#define TOL_RT_Q6_K 0.022
#define TOL_RT_Q5_0 0.055
#define TOL_RT_Q5_1 0.048
#define TOL_RT_Q5_K 0.045
#define TOL_RT_Q4_0 0.105
#define TOL_RT_Q4_1 0.098
#define TOL_RT_Q4_K 0.09
#define TOL_RT_Q3_K 0.18
#define TOL_RT_Q2_K 0.34

/* |dot_f32 - sum(deq * x)| <= TOL_DOT * sum(|deq * x|): only f32 summation
 * order differs between the two. */
#define TOL_DOT 1e-5

struct type_case {
    uint32_t type;
    double tol_rt;
};

static const struct type_case types[] = {
    {KZ_DT_F32, TOL_RT_F32},   {KZ_DT_F16, TOL_RT_F16},   {KZ_DT_BF16, TOL_RT_BF16},
    {KZ_DT_Q8_0, TOL_RT_Q8_0}, {KZ_DT_Q4_0, TOL_RT_Q4_0}, {KZ_DT_Q4_1, TOL_RT_Q4_1},
    {KZ_DT_Q5_0, TOL_RT_Q5_0}, {KZ_DT_Q5_1, TOL_RT_Q5_1}, {KZ_DT_Q2_K, TOL_RT_Q2_K},
    {KZ_DT_Q3_K, TOL_RT_Q3_K}, {KZ_DT_Q4_K, TOL_RT_Q4_K}, {KZ_DT_Q5_K, TOL_RT_Q5_K},
    {KZ_DT_Q6_K, TOL_RT_Q6_K},
};

static double rel_rms(const float *a, const float *ref, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* dot_f32 vs dequantize-then-dot on the quantized row q (n elements). */
static void check_dot(const struct kz_type_ops *ops, uint32_t type, const void *q, int64_t n,
                      const float *x, float *scratch)
{
    ops->to_float(q, scratch, n);
    double want = 0, mag = 0;
    for (int64_t i = 0; i < n; i++) {
        want += (double)scratch[i] * (double)x[i];
        mag += fabs((double)scratch[i] * (double)x[i]);
    }
    double got = (double)ops->dot_f32(n, q, x);
    T_OK(fabs(got - want) <= TOL_DOT * mag + 1e-30, "%s dot n=%lld: %.9g vs %.9g",
         kz_dtype_name(type), (long long)n, got, want);
}

static void round_trips(void)
{
    /* sizes in blocks: one, a few, and a longer row */
    static const int n_blocks[] = {1, 2, 3, 5, 17};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        uint32_t t = types[ti].type;
        const struct kz_type_ops *ops = kz_type_ops_ref(t);
        T_OK(ops && ops->from_float, "%s has a quantizer", kz_dtype_name(t));
        if (!ops || !ops->from_float)
            continue;
        uint32_t blck, bsize;
        kz_dtype_info(t, &blck, &bsize);
        /* a block of 32 for the unquantized types keeps sizes awkward but nonzero */
        int64_t unit = blck == 1 ? 37 : blck;
        double sum_e2 = 0;
        int n_units = 0;
        for (size_t si = 0; si < sizeof n_blocks / sizeof n_blocks[0]; si++) {
            int64_t n = unit * n_blocks[si];
            size_t qsize = kz_dtype_row_size(t, n);
            float *x = kz_malloc((size_t)n * sizeof *x);
            float *y = kz_malloc((size_t)n * sizeof *y);
            float *v = kz_malloc((size_t)n * sizeof *v);
            void *q = kz_malloc(qsize);
            void *q2 = kz_malloc(qsize);
            rng_seed((uint64_t)(t * 100 + si));
            for (int64_t i = 0; i < n; i++) {
                /* magnitude changes every 32 elements: 0.01 .. 3 */
                float mag = 0.01f * powf(300.0f, (float)((i / 32 * 7919) % 97) / 96.0f);
                x[i] = rng_normal() * mag;
                v[i] = rng_normal();
            }
            ops->from_float(x, q, n);
            ops->from_float(x, q2, n);
            T_OK(memcmp(q, q2, qsize) == 0, "%s quantizer is deterministic", kz_dtype_name(t));
            ops->to_float(q, y, n);
            int finite = 1;
            for (int64_t i = 0; i < n; i++)
                finite &= isfinite(y[i]);
            T_OK(finite, "%s n=%lld finite", kz_dtype_name(t), (long long)n);
            /* relative error per block, since magnitudes vary by block */
            for (int64_t b0 = 0; b0 < n; b0 += unit) {
                double e = rel_rms(y + b0, x + b0, unit);
                sum_e2 += e * e;
                n_units++;
            }
            check_dot(ops, t, q, n, v, y);
            kz_free(x);
            kz_free(y);
            kz_free(v);
            kz_free(q);
            kz_free(q2);
        }
        double err = sqrt(sum_e2 / n_units);
        T_OK(err <= types[ti].tol_rt, "%s round-trip rel RMS %.5f <= %.5f", kz_dtype_name(t), err,
             types[ti].tol_rt);
        printf("# %-5s rel RMS error %.5f (limit %.5f)\n", kz_dtype_name(t), err, types[ti].tol_rt);
    }
}

/* Adversarial inputs: zeros, constants, a single spike, all-negative and
 * all-positive ramps, tiny values. Every quantizer must produce finite output;
 * zeros must come back exactly; where the input is representable the error
 * must stay within the type's tolerance. */
static void adversarial(void)
{
    enum { N = 512 };
    float x[N], y[N];
    static uint8_t q[N * 4];
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        uint32_t t = types[ti].type;
        const struct kz_type_ops *ops = kz_type_ops_ref(t);
        for (int kind = 0; kind < 6; kind++) {
            for (int i = 0; i < N; i++) {
                switch (kind) {
                case 0: x[i] = 0.0f; break;
                case 1: x[i] = 0.75f; break;
                case 2: x[i] = i == 77 ? 5.0f : 0.0f; break;
                case 3: x[i] = -1.0f - (float)(i % 32) / 31.0f; break;
                case 4: x[i] = 1.0f + (float)(i % 256) / 255.0f; break;
                default: x[i] = (float)((i * 37) % 19 - 9) * 1e-3f; break;
                }
            }
            ops->from_float(x, q, N);
            ops->to_float(q, y, N);
            int finite = 1;
            for (int i = 0; i < N; i++)
                finite &= isfinite(y[i]);
            T_OK(finite, "%s kind %d finite", kz_dtype_name(t), kind);
            double e = rel_rms(y, x, N);
            if (kind == 0)
                T_OK(e == 0.0, "%s zeros come back as zeros", kz_dtype_name(t));
            else
                T_OK(e <= types[ti].tol_rt * 2, "%s kind %d rel RMS %.5f", kz_dtype_name(t), kind, e);
            float v[N];
            for (int i = 0; i < N; i++)
                v[i] = (float)((i * 13) % 7) - 3.0f;
            check_dot(ops, t, q, N, v, y);
        }
    }
}

/* dot_f32 == dequantize-then-dot for arbitrary block bytes (every code
 * value, every scale byte), with only the f16 scale fields tamed so the
 * values stay finite. */
static void dot_random_bytes(void)
{
    static const struct {
        uint32_t type;
        int half_off[2]; /* byte offsets of f16 fields in the block, -1 if none */
    } cases[] = {
        {KZ_DT_Q4_0, {0, -1}}, {KZ_DT_Q4_1, {0, 2}},   {KZ_DT_Q5_0, {0, -1}},
        {KZ_DT_Q5_1, {0, 2}},  {KZ_DT_Q8_0, {0, -1}},  {KZ_DT_Q2_K, {80, 82}},
        {KZ_DT_Q3_K, {108, -1}}, {KZ_DT_Q4_K, {0, 2}}, {KZ_DT_Q5_K, {0, 2}},
        {KZ_DT_Q6_K, {208, -1}},
    };
    rng_seed(4242);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        uint32_t t = cases[ci].type, blck, bsize;
        kz_dtype_info(t, &blck, &bsize);
        const struct kz_type_ops *ops = kz_type_ops_ref(t);
        int nb = 7;
        int64_t n = (int64_t)nb * blck;
        uint16_t *q = kz_malloc((size_t)nb * bsize);
        uint8_t *qb = (uint8_t *)q;
        float *x = kz_malloc((size_t)n * sizeof *x), *y = kz_malloc((size_t)n * sizeof *y);
        for (size_t i = 0; i < (size_t)nb * bsize; i++)
            qb[i] = (uint8_t)rng_u32();
        for (int b = 0; b < nb; b++) {
            for (int h = 0; h < 2; h++) {
                if (cases[ci].half_off[h] < 0)
                    continue;
                uint16_t v = kz_fp32_to_fp16(rng_normal() * 0.1f);
                memcpy(qb + (size_t)b * bsize + cases[ci].half_off[h], &v, 2);
            }
        }
        for (int64_t i = 0; i < n; i++)
            x[i] = rng_normal();
        check_dot(ops, t, q, n, x, y);
        kz_free(q);
        kz_free(x);
        kz_free(y);
    }
}

static void lookup(void)
{
    static const uint32_t supported[] = {KZ_DT_F32, KZ_DT_F16, KZ_DT_BF16, KZ_DT_Q4_0, KZ_DT_Q4_1,
                                         KZ_DT_Q5_0, KZ_DT_Q5_1, KZ_DT_Q8_0, KZ_DT_Q2_K, KZ_DT_Q3_K,
                                         KZ_DT_Q4_K, KZ_DT_Q5_K, KZ_DT_Q6_K};
    for (size_t i = 0; i < sizeof supported / sizeof supported[0]; i++) {
        const struct kz_type_ops *o = kz_type_ops_ref(supported[i]);
        T_OK(o && o->to_float && o->dot_f32, "%s supported", kz_dtype_name(supported[i]));
    }
    T_OK(kz_type_ops_ref(KZ_DT_Q8_1) == NULL, "Q8_1 not supported");
    T_OK(kz_type_ops_ref(KZ_DT_IQ2_XXS) == NULL, "IQ2_XXS not supported");
    T_OK(kz_type_ops_ref(4) == NULL, "retired id 4");
    T_OK(kz_type_ops_ref(KZ_DT_COUNT) == NULL, "id past the end");
    T_OK(kz_type_ops_ref(0xffffffffu) == NULL, "huge id");
}

int main(void)
{
    t_subtest("fp16 conversions", fp16_conversions);
    t_subtest("bf16 conversions", bf16_conversions);
    t_subtest("hand-built Q4_0 block", hand_q4_0);
    t_subtest("hand-built Q8_0 block", hand_q8_0);
    t_subtest("hand-built Q5_0 block", hand_q5_0);
    t_subtest("hand-built Q4_K block", hand_q4_k);
    t_subtest("hand-built Q6_K block", hand_q6_k);
    t_subtest("hand-built Q3_K block", hand_q3_k);
    t_subtest("type lookup", lookup);
    t_subtest("quantize round trips and dot", round_trips);
    t_subtest("adversarial inputs", adversarial);
    t_subtest("dot on arbitrary block bytes", dot_random_bytes);
    return t_done();
}
