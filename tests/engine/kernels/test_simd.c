/* SPDX-License-Identifier: MIT
 * Every kernel variant this CPU runs, against the scalar reference:
 *   - dispatch: the list, lookup by name, KZ_KERNELS, and the exact list
 *     when KZ_TEST_VARIANTS gives it (the emulated ARM CPUs);
 *   - act_quantize: byte-identical to the reference quantizers;
 *   - gemm_rows / matvec_rows / dot_f32 for every weight type, on realistic
 *     (quantized from floats), random-byte and adversarial blocks, at 1, 2, 3,
 *     many and (quantized types) 32768 / block-size blocks, n_tok in
 *     {1..8, 13, 17} (token tiles of 8 with a last one of 5 or 1), 19 rows
 *     or 18 from row 1 (full and partial micro tiles of 2, 4 and 16 rows), a
 *     padded out_stride, pointers off the natural alignment, and the
 *     weights ending where their allocation ends (so that the sanitizer
 *     build catches a read past the last row);
 *   - float weights with several tokens: each result the same bit for bit
 *     whichever rows and tokens share its register tile;
 *   - rmsnorm, softmax, silu, swiglu at awkward lengths, in place too;
 *   - sum: exact on whole numbers, bounded on random floats.
 * The integer parts of the quantized products are exact, so the tolerances
 * below only cover float accumulation order.
 *
 * To add a kernel: compare it here with its ref/ counterpart under a named
 * tolerance, for every entry of kz_kernels_list().
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/quant.h"
#include "t.h"

/* |got - want| <= TOL * mag + TOL_ABS, mag = sum |w_e| * |a_e| (dequantized) + |want| */
#define TOL_Q8_DOT 2e-6  /* quantized weights x 8-bit activations (float order only) */
#define TOL_F_DOT 4e-6   /* F32/F16/BF16 x f32 (float order only) */
#define TOL_MATVEC 2e-6  /* matvec_rows vs the 8-bit reference product */
#define TOL_ABS 1e-30
#define TOL_RMSNORM 1e-6 /* relative, per element */
#define TOL_SILU 2e-6    /* relative per element, vector exp vs expf */
#define TOL_SOFTMAX 2e-6 /* relative per element, plus TOL_SOFTMAX_ABS */
#define TOL_SOFTMAX_ABS 1e-37

static uint64_t rng_state = 88172645463325252ull;

static uint32_t rng_u32(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

static float rng_uniform(void) /* [-1, 1) */
{
    return (float)(rng_u32() >> 8) / 8388608.0f - 1.0f;
}

static float rng_normal(void)
{
    float s = 0.0f;
    for (int i = 0; i < 4; i++)
        s += rng_uniform();
    return s * 0.866f;
}

static const struct kz_kernels *variants[8];
static int n_variants;

static const uint32_t wtypes[] = {KZ_DT_Q4_0, KZ_DT_Q8_0, KZ_DT_Q4_K, KZ_DT_Q6_K, KZ_DT_Q5_K,
                                  KZ_DT_Q4_1, KZ_DT_Q5_0, KZ_DT_Q5_1, KZ_DT_Q3_K, KZ_DT_Q2_K,
                                  KZ_DT_F16,  KZ_DT_BF16, KZ_DT_F32};
#define N_WTYPES (int)(sizeof wtypes / sizeof wtypes[0])

static int blck_of(uint32_t t)
{
    uint32_t b = 1, s = 0;
    kz_dtype_info(t, &b, &s);
    return (int)b;
}

static int is_float_type(uint32_t t)
{
    return t == KZ_DT_F32 || t == KZ_DT_F16 || t == KZ_DT_BF16;
}

/* ------------------------------------------------------------------------ */
/* Data                                                                      */
/* ------------------------------------------------------------------------ */

enum wmode { W_QUANTIZED, W_RANDOM_BYTES, W_MAX_CODES, W_ZERO, W_TINY_SCALES, W_COUNT };
static const char *wmode_name[] = {"quantized", "random bytes", "max codes", "zero", "tiny scales"};

/* Offsets of the f16 scale fields in each block type (-1 ends). */
static const int *scale_offsets(uint32_t t)
{
    static const int d0[] = {0, -1}, dm[] = {0, 2, -1}, q2k[] = {80, 82, -1}, q3k[] = {108, -1},
                     q6k[] = {208, -1};
    switch (t) {
    case KZ_DT_Q4_0: case KZ_DT_Q5_0: case KZ_DT_Q8_0: return d0;
    case KZ_DT_Q4_1: case KZ_DT_Q5_1: case KZ_DT_Q4_K: case KZ_DT_Q5_K: return dm;
    case KZ_DT_Q2_K: return q2k;
    case KZ_DT_Q3_K: return q3k;
    case KZ_DT_Q6_K: return q6k;
    default: return NULL;
    }
}

static void put_half(unsigned char *p, float f)
{
    uint16_t h = kz_fp32_to_fp16(f);
    memcpy(p, &h, 2);
}

/* rows x cols weights of type t into w (row_size * rows bytes) */
static void make_weights(uint32_t t, enum wmode mode, unsigned char *w, int rows, int cols)
{
    size_t rs = kz_dtype_row_size(t, cols);
    float *f = kz_malloc((size_t)cols * sizeof(float));
    for (int r = 0; r < rows; r++) {
        unsigned char *row = w + (size_t)r * rs;
        if (mode == W_QUANTIZED || is_float_type(t)) {
            for (int i = 0; i < cols; i++)
                f[i] = mode == W_ZERO ? 0.0f : mode == W_MAX_CODES ? 60000.0f * (i % 2 ? 1.0f : -1.0f)
                                                                   : rng_normal() * (1.0f + (float)(r % 3));
            kz_type_ops_ref(t)->from_float(f, row, cols);
            continue;
        }
        for (size_t i = 0; i < rs; i++)
            row[i] = mode == W_ZERO ? 0 : mode == W_MAX_CODES ? 0xff : (unsigned char)rng_u32();
        const int *off = scale_offsets(t);
        size_t bs = rs / (size_t)(cols / blck_of(t));
        for (size_t b = 0; b < rs / bs; b++)
            for (int k = 0; off[k] >= 0; k++) {
                float s = mode == W_MAX_CODES ? 65504.0f
                        : mode == W_TINY_SCALES ? 6e-8f * (float)(1 + rng_u32() % 4)
                        : mode == W_ZERO ? 0.0f : rng_uniform() * 0.1f;
                put_half(row + b * bs + off[k], s);
            }
    }
    kz_free(f);
}

enum amode { A_NORMAL, A_ZERO, A_SPIKE, A_CONST_MAX, A_HUGE, A_TINY, A_COUNT };
static const char *amode_name[] = {"normal", "zero", "spike", "constant", "huge", "tiny"};

static void make_acts(enum amode mode, float *x, int n)
{
    for (int i = 0; i < n; i++) {
        switch (mode) {
        case A_NORMAL: x[i] = rng_normal(); break;
        case A_ZERO: x[i] = 0.0f; break;
        case A_SPIKE: x[i] = i % 37 == 5 ? 40.0f : rng_uniform() * 0.01f; break;
        case A_CONST_MAX: x[i] = i % 2 ? 3.0f : -3.0f; break;
        case A_HUGE: x[i] = rng_uniform() * 1e4f; break;
        case A_TINY: x[i] = rng_uniform() * 1e-6f; break;
        default: break;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                  */
/* ------------------------------------------------------------------------ */

static void dispatch(void)
{
    T_OK(n_variants >= 1 && strcmp(variants[n_variants - 1]->name, "ref") == 0, "ref is listed last");
    for (int v = 0; v < n_variants; v++) {
        const struct kz_kernels *k = variants[v];
        T_OK(kz_kernels_find(k->name) == k, "find(%s)", k->name);
        T_OK(k->type_ops && k->matvec_rows && k->rmsnorm && k->softmax && k->silu && k->swiglu && k->sum &&
                 k->attn_scores && k->attn_values && k->act_type && k->act_quantize && k->gemm_rows,
             "%s: every entry filled", k->name);
        T_OK(k->type_ops(KZ_DT_IQ4_XS) == NULL, "%s: unsupported type", k->name);
        printf("# variant available: %s\n", k->name);
    }
    T_OK(kz_kernels_find("no-such-isa") == NULL, "unknown name");
    T_OK(kz_kernels_find("ref") == &kz_kernels_ref, "ref by name");
    const char *want = getenv("KZ_KERNELS");
    const struct kz_kernels *forced = want && *want ? kz_kernels_find(want) : NULL;
    const struct kz_kernels *k = kz_kernels_get();
    T_OK(k == (forced ? forced : variants[0]), "get() = %s (KZ_KERNELS=%s)", k->name, want ? want : "");
#if defined(__x86_64__)
    printf("# x86-64: %d variants\n", n_variants);
#endif
    /* KZ_TEST_VARIANTS=a,b,ref: the exact list this (emulated) CPU must give */
    const char *expect = getenv("KZ_TEST_VARIANTS");
    if (expect && *expect) {
        char got[256] = "";
        for (int v = 0; v < n_variants; v++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", v ? "," : "", variants[v]->name);
        T_OK(strcmp(got, expect) == 0, "variants %s, expected %s", got, expect);
    }
}

/* ------------------------------------------------------------------------ */
/* Activation quantizers                                                     */
/* ------------------------------------------------------------------------ */

static void act_quantize(void)
{
    for (int v = 0; v < n_variants; v++) {
        const struct kz_kernels *k = variants[v];
        if (k == &kz_kernels_ref)
            continue;
        for (int ti = 0; ti < N_WTYPES; ti++) {
            uint32_t t = wtypes[ti];
            uint32_t at = k->act_type(t);
            T_OK(at == kz_q8_act_type(t), "%s %s: act type %s", k->name, kz_dtype_name(t), kz_dtype_name(at));
            int blck = at == KZ_DT_Q8_K ? 256 : at == KZ_DT_Q8_0 ? 32 : 1;
            int bad = 0, cases = 0;
            for (int am = 0; am < A_COUNT; am++) {
                const int nbs[] = {1, 2, 3, 17};
                for (int ni = 0; ni < 4; ni++) {
                    int n = nbs[ni] * (blck == 1 ? 33 : blck);
                    size_t rs = kz_dtype_row_size(at, n);
                    /* odd offsets within the alignment the layout allows */
                    float *xb = kz_malloc((size_t)(n + 1) * sizeof(float));
                    unsigned char *a = kz_malloc(rs + 8), *b = kz_malloc(rs + 8);
                    float *x = xb + 1;
                    make_acts((enum amode)am, x, n);
                    memset(a, 0x5a, rs + 8);
                    memset(b, 0x5a, rs + 8);
                    k->act_quantize(t, x, a + 4, n);
                    kz_ref_q8_act_quantize(t, x, b + 4, n);
                    cases++;
                    if (memcmp(a, b, rs + 8) != 0) {
                        if (!bad)
                            printf("# %s %s act %s n=%d differs\n", k->name, kz_dtype_name(t), amode_name[am], n);
                        bad++;
                    }
                    kz_free(xb);
                    kz_free(a);
                    kz_free(b);
                }
            }
            T_OK(bad == 0, "%s %s: act_quantize bit-exact (%d cases, %d differ)", k->name, kz_dtype_name(t),
                 cases, bad);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Batched products                                                          */
/* ------------------------------------------------------------------------ */

/* sum_e |w_e| * |a_e| for a dequantized weight row against the dequantized activation row */
static double magnitude_f(const float *wf, int cols, const float *adeq)
{
    double m = 0;
    for (int i = 0; i < cols; i++)
        m += fabs((double)wf[i] * (double)adeq[i]);
    return m;
}

/* the same for row w of type t */
static double magnitude(uint32_t t, const unsigned char *w, int cols, const float *adeq)
{
    float *wf = kz_malloc((size_t)cols * sizeof(float));
    kz_type_ops_ref(t)->to_float(w, wf, cols);
    double m = magnitude_f(wf, cols, adeq);
    kz_free(wf);
    return m;
}

/* activation row (of type at, cols) back to floats */
static void act_dequant(uint32_t at, const unsigned char *a, float *out, int cols)
{
    if (at == KZ_DT_Q8_0) {
        kz_ref_q8_0_to_float(a, out, cols);
    } else if (at == KZ_DT_Q8_K) {
        for (int b = 0; b < cols / 256; b++) {
            float d;
            memcpy(&d, a + (size_t)b * 292, 4);
            for (int e = 0; e < 256; e++)
                out[b * 256 + e] = d * (float)(int8_t)a[(size_t)b * 292 + 4 + e];
        }
    } else {
        memcpy(out, a, (size_t)cols * sizeof(float));
    }
}

enum { ROWS = 19 }; /* 19 rows, or 18 from row 1: the SIMD micro tiles span 2, 4 or 16 rows */

/* one (variant, type, weight mode, act mode, cols) case over all n_tok;
 * returns the number of mismatching outputs */
static int gemm_case(const struct kz_kernels *k, uint32_t t, enum wmode wm, enum amode am, int cols,
                     double *worst)
{
    static const int ntoks[] = {1, 2, 3, 4, 5, 6, 7, 8, 13, 17};
    uint32_t at = k->act_type(t);
    size_t wrs = kz_dtype_row_size(t, cols), ars = kz_dtype_row_size(at, cols);
    /* weights and activations 2 (quantized) or 4 (f32) bytes past a 64-byte
     * boundary; the weights' last byte is their allocation's last */
    size_t woff = is_float_type(t) ? 4 : 2, aoff = at == KZ_DT_Q8_0 ? 2 : 4;
    unsigned char *wbuf = kz_malloc_aligned(wrs * ROWS + woff, 64), *w = wbuf + woff;
    make_weights(t, wm, w, ROWS, cols);
    float *wf = kz_malloc(sizeof(float) * (size_t)cols * ROWS); /* dequantized once for the magnitudes */
    for (int r = 0; r < ROWS; r++)
        kz_type_ops_ref(t)->to_float(w + (size_t)r * wrs, wf + (size_t)r * (size_t)cols, cols);
    int maxtok = 17, bad = 0;
    unsigned char *abuf = kz_malloc_aligned(ars * (size_t)maxtok + 64, 64), *act = abuf + aoff;
    float *x = kz_malloc((size_t)cols * sizeof(float)), *adeq = kz_malloc((size_t)cols * sizeof(float));
    for (int tk = 0; tk < maxtok; tk++) {
        make_acts(tk == 0 ? am : A_NORMAL, x, cols);
        kz_ref_q8_act_quantize(t, x, act + (size_t)tk * ars, cols);
    }
    int64_t stride = ROWS + 3;
    float *got = kz_malloc(sizeof(float) * (size_t)stride * (size_t)maxtok);
    float *want = kz_malloc(sizeof(float) * (size_t)stride * (size_t)maxtok);
    for (int ni = 0; ni < (int)(sizeof ntoks / sizeof ntoks[0]); ni++) {
        int n_tok = ntoks[ni];
        int64_t r0 = n_tok % 2, r1 = ROWS; /* a sub-range on odd counts */
        for (int64_t i = 0; i < stride * maxtok; i++)
            got[i] = want[i] = -12345.0f;
        k->gemm_rows(t, w, cols, act, n_tok, got, stride, r0, r1);
        kz_ref_q8_gemm_rows(t, w, cols, act, n_tok, want, stride, r0, r1);
        for (int tk = 0; tk < maxtok; tk++) {
            if (tk < n_tok)
                act_dequant(at, act + (size_t)tk * ars, adeq, cols);
            for (int64_t r = 0; r < stride; r++) {
                float g = got[tk * stride + r], wv = want[tk * stride + r];
                int inside = tk < n_tok && r >= r0 && r < r1;
                if (!inside) {
                    if (g != -12345.0f)
                        bad++;
                    continue;
                }
                double mag = magnitude_f(wf + (size_t)r * (size_t)cols, cols, adeq) + fabs((double)wv);
                double err = fabs((double)g - (double)wv);
                double tol = (is_float_type(t) ? TOL_F_DOT : TOL_Q8_DOT) * mag + TOL_ABS;
                if (!(err <= tol)) {
                    if (!bad)
                        printf("# %s %s cols=%d %s/%s n_tok=%d t=%d r=%d: got %g want %g (mag %g)\n", k->name,
                               kz_dtype_name(t), cols, wmode_name[wm], amode_name[am], n_tok, tk, (int)r,
                               (double)g, (double)wv, mag);
                    bad++;
                }
                if (mag > 0 && err / mag > *worst)
                    *worst = err / mag;
            }
        }
    }
    kz_free(got);
    kz_free(want);
    kz_free(wf);
    kz_free(x);
    kz_free(adeq);
    kz_free_aligned(abuf);
    kz_free_aligned(wbuf);
    return bad;
}

static void gemm_rows(void)
{
    for (int v = 0; v < n_variants; v++) {
        const struct kz_kernels *k = variants[v];
        if (k == &kz_kernels_ref)
            continue;
        for (int ti = 0; ti < N_WTYPES; ti++) {
            uint32_t t = wtypes[ti];
            int blck = blck_of(t);
            /* 1, 2, 3 and 6 blocks (Q4_0 decode: one four-block step and a
             * pair left over), 16 blocks (Q4_0 decode: two eight-block steps)
             * and a large row (K-quants: 19 super-blocks, four of the
             * 4-super-block panels of the many-token tile and a part of 3);
             * float types get odd lengths */
            int sizes[6] = {blck, 2 * blck, 3 * blck, blck == 256 ? 19 * 256 : 2048 + 32, 6 * blck, 16 * blck};
            if (blck == 1) {
                sizes[0] = 1, sizes[1] = 7, sizes[2] = 17, sizes[3] = 2051, sizes[4] = 64, sizes[5] = 0;
            }
            int bad = 0, cases = 0;
            double worst = 0;
            for (int si = 0; si < 6 && sizes[si]; si++)
                for (int wm = 0; wm < W_COUNT; wm++)
                    for (int am = 0; am < A_COUNT; am++) {
                        if (is_float_type(t) && am == A_HUGE && wm == W_MAX_CODES)
                            continue; /* 6e4 * 1e4 * n: fine, but skip the pointless overflow risk */
                        bad += gemm_case(k, t, (enum wmode)wm, (enum amode)am, sizes[si], &worst);
                        cases++;
                    }
            if (!is_float_type(t)) { /* one wide row: 32768 columns, the widest the SIMD tiles take
                                      * (17 tokens' block scales no longer fit their one-pass prep) */
                bad += gemm_case(k, t, W_QUANTIZED, A_NORMAL, 32768, &worst);
                cases++;
            }
            if (t == KZ_DT_Q4_0 || t == KZ_DT_Q8_0 || t == KZ_DT_Q4_K || t == KZ_DT_Q5_K || t == KZ_DT_Q6_K) { /* the widest row of the
                                                                        * grouped decode steps (avx512) */
                bad += gemm_case(k, t, W_QUANTIZED, A_NORMAL, 16384, &worst);
                cases++;
            }
            T_OK(bad == 0, "%s %s: gemm_rows vs ref (%d cases, %d bad, worst rel err %.2g)", k->name,
                 kz_dtype_name(t), cases, bad, worst);
            printf("# %s %s: %d gemm cases, worst error / magnitude %.2g\n", k->name, kz_dtype_name(t), cases,
                   worst);
        }
    }
}

/* matvec_rows and type_ops dot_f32 with f32 x: against the 8-bit reference
 * on the same quantized x (quantized types) or the ref dot (float types). */
static void matvec_and_dot(void)
{
    enum { R = 7 };
    for (int v = 0; v < n_variants; v++) {
        const struct kz_kernels *k = variants[v];
        if (k == &kz_kernels_ref)
            continue;
        for (int ti = 0; ti < N_WTYPES; ti++) {
            uint32_t t = wtypes[ti];
            int cols = blck_of(t) == 256 ? 768 : blck_of(t) == 32 ? 96 : 103;
            size_t wrs = kz_dtype_row_size(t, cols);
            unsigned char *w = kz_malloc(wrs * R);
            make_weights(t, W_QUANTIZED, w, R, cols);
            float *x = kz_malloc(sizeof(float) * (size_t)cols), got[R + 1], want[R + 1];
            make_acts(A_NORMAL, x, cols);
            uint32_t at = k->act_type(t);
            unsigned char *a = kz_malloc(kz_dtype_row_size(at, cols));
            kz_ref_q8_act_quantize(t, x, a, cols);
            float *adeq = kz_malloc(sizeof(float) * (size_t)cols);
            act_dequant(at, a, adeq, cols);
            got[R] = want[R] = 7.0f;
            k->matvec_rows(w, t, cols, x, got, 1, R);
            kz_ref_q8_gemm_rows(t, w, cols, a, 1, want, 0, 1, R);
            int bad = 0;
            for (int r = 1; r < R; r++) {
                double mag = magnitude(t, w + (size_t)r * wrs, cols, adeq) + fabs((double)want[r]);
                bad += !(fabs((double)got[r] - (double)want[r]) <= TOL_MATVEC * mag + TOL_ABS);
            }
            bad += got[R] != 7.0f;
            const struct kz_type_ops *ops = k->type_ops(t);
            T_OK(ops && ops->to_float && ops->dot_f32, "%s %s: type ops", k->name, kz_dtype_name(t));
            float d = ops->dot_f32(cols, w, x), dr = kz_type_ops_ref(t)->dot_f32(cols, w, x);
            double mag = magnitude(t, w, cols, x) + fabs((double)dr);
            T_OK(fabs((double)d - (double)dr) <= TOL_F_DOT * mag + TOL_ABS, "%s %s: dot_f32 %g vs %g", k->name,
                 kz_dtype_name(t), (double)d, (double)dr);
            T_OK(bad == 0, "%s %s: matvec_rows (%d bad)", k->name, kz_dtype_name(t), bad);
            kz_free(w);
            kz_free(x);
            kz_free(a);
            kz_free(adeq);
        }
    }
}

/* Several tokens with float weights (F16, BF16, F32): every (row, token)
 * result must be the same bit for bit whichever rows and tokens share its
 * register tile, so batched prompts give the same logits at any thread
 * count and split. The whole product (rows x 13 tokens: full tiles and
 * edges) against each row alone with each pair of tokens. */
static void float_tiling(void)
{
    enum { R = 11, NT = 13 };
    static const uint32_t ft[] = {KZ_DT_F16, KZ_DT_BF16, KZ_DT_F32};
    for (int v = 0; v < n_variants; v++) {
        const struct kz_kernels *k = variants[v];
        for (int ti = 0; ti < 3; ti++) {
            uint32_t t = ft[ti];
            int bad = 0;
            static const int widths[] = {61, 301, 2100}; /* tails of 13, 13 and 4 elements on zmm */
            for (int wi = 0; wi < 3; wi++) {
                const int cols = widths[wi];
                size_t wrs = kz_dtype_row_size(t, cols), ars = kz_dtype_row_size(k->act_type(t), cols);
                unsigned char *w = kz_malloc(wrs * R), *a = kz_malloc(ars * NT);
                float *x = kz_malloc(sizeof(float) * (size_t)cols * NT), all[NT * R], one[2 * R];
                make_weights(t, W_QUANTIZED, w, R, cols);
                make_acts(A_NORMAL, x, cols * NT);
                for (int tk = 0; tk < NT; tk++)
                    k->act_quantize(t, x + (size_t)tk * (size_t)cols, a + (size_t)tk * ars, cols);
                k->gemm_rows(t, w, cols, a, NT, all, R, 0, R);
                for (int r = 0; r < R; r++)
                    for (int tk = 0; tk + 1 < NT; tk++) {
                        k->gemm_rows(t, w, cols, a + (size_t)tk * ars, 2, one, R, r, r + 1);
                        bad += memcmp(&one[r], &all[tk * R + r], sizeof(float)) != 0;
                        bad += memcmp(&one[R + r], &all[(tk + 1) * R + r], sizeof(float)) != 0;
                    }
                kz_free(w);
                kz_free(a);
                kz_free(x);
            }
            T_OK(bad == 0, "%s %s: batched results independent of the tiling (%d differ)", k->name, kz_dtype_name(t),
                 bad);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* f32 vector ops                                                            */
/* ------------------------------------------------------------------------ */

static int rel_close(float got, float want, double tol, double abs_tol)
{
    if (isinf(want) || isnan(want))
        return got == want || (isnan(got) && isnan(want));
    return fabs((double)got - (double)want) <= tol * fabs((double)want) + abs_tol;
}

static const int vec_sizes[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 64, 67, 4099};
#define N_VEC_SIZES (int)(sizeof vec_sizes / sizeof vec_sizes[0])

static void vec_ops(void)
{
    for (int v = 0; v < n_variants; v++) {
        const struct kz_kernels *k = variants[v];
        if (k == &kz_kernels_ref)
            continue;
        int bad_rms = 0, bad_sm = 0, bad_silu = 0, bad_swi = 0, bad_inplace = 0;
        for (int si = 0; si < N_VEC_SIZES; si++) {
            int n = vec_sizes[si];
            size_t bytes = sizeof(float) * (size_t)(n + 1);
            float *xb = kz_malloc(bytes), *wb = kz_malloc(bytes), *g = kz_malloc(bytes), *r = kz_malloc(bytes),
                  *ub = kz_malloc(bytes);
            float *x = xb + 1, *w = wb + 1, *u = ub + 1; /* 4 bytes off 16-byte alignment */
            for (int mode = 0; mode < 4; mode++) {
                for (int i = 0; i < n; i++) {
                    float s = mode == 0 ? 3.0f : mode == 1 ? 40.0f : mode == 2 ? 1e-3f : 100.0f;
                    x[i] = rng_uniform() * s;
                    w[i] = 1.0f + rng_uniform() * 0.5f;
                    u[i] = rng_normal();
                }
                if (mode == 3 && n > 2) { /* masked positions and extremes */
                    x[0] = -INFINITY;
                    x[n - 1] = -INFINITY;
                    x[n / 2] = 90.0f;
                }
                if (mode != 3) {
                    k->rmsnorm(g, x, w, n, 1e-5f);
                    kz_ref_rmsnorm(r, x, w, n, 1e-5f);
                    for (int i = 0; i < n; i++)
                        bad_rms += !rel_close(g[i], r[i], TOL_RMSNORM, 0);
                    memcpy(g, x, sizeof(float) * (size_t)n);
                    k->rmsnorm(g, g, w, n, 1e-5f);
                    for (int i = 0; i < n; i++)
                        bad_inplace += !rel_close(g[i], r[i], TOL_RMSNORM, 0);

                    k->silu(g, x, n);
                    kz_ref_silu(r, x, n);
                    for (int i = 0; i < n; i++)
                        bad_silu += !rel_close(g[i], r[i], TOL_SILU, TOL_ABS);
                    k->swiglu(g, x, u, n);
                    kz_ref_swiglu(r, x, u, n);
                    for (int i = 0; i < n; i++)
                        bad_swi += !rel_close(g[i], r[i], TOL_SILU, TOL_ABS);
                    memcpy(g, x, sizeof(float) * (size_t)n);
                    k->swiglu(g, g, u, n); /* out == gate */
                    for (int i = 0; i < n; i++)
                        bad_inplace += !rel_close(g[i], r[i], TOL_SILU, TOL_ABS);
                }
                memcpy(g, x, sizeof(float) * (size_t)n);
                memcpy(r, x, sizeof(float) * (size_t)n);
                k->softmax(g, n);
                kz_ref_softmax(r, n);
                for (int i = 0; i < n; i++)
                    bad_sm += !rel_close(g[i], r[i], TOL_SOFTMAX, TOL_SOFTMAX_ABS);
            }
            kz_free(xb);
            kz_free(wb);
            kz_free(g);
            kz_free(r);
            kz_free(ub);
        }
        T_EQ_INT(bad_rms, 0);
        T_EQ_INT(bad_sm, 0);
        T_EQ_INT(bad_silu, 0);
        T_EQ_INT(bad_swi, 0);
        T_EQ_INT(bad_inplace, 0);
        printf("# %s vector ops checked\n", k->name);
    }
}

/* The sum (kyozon bench's bandwidth probe). On whole numbers every order of
 * addition gives the exact sum, so any variant must match the reference to
 * the bit: a lane dropped or counted twice cannot hide in a tolerance. Then
 * random floats, within the error bound of any summation order. Lengths
 * 0..130 and 4099, one float off alignment. */
static void sum_op(void)
{
    enum { MAXN = 4099 };
    float *xb = kz_malloc(sizeof(float) * (MAXN + 1)), *x = xb + 1;
    for (int v = 0; v < n_variants; v++) {
        const struct kz_kernels *k = variants[v];
        int bad_exact = 0, bad_float = 0;
        for (int n = 0; n <= MAXN; n = n < 130 ? n + 1 : MAXN + (n == MAXN)) {
            double abs_sum = 0.0;
            for (int i = 0; i < n; i++)
                x[i] = (float)((int)(rng_u32() % 2001) - 1000); /* partial sums stay below 2^24 */
            bad_exact += k->sum(x, n) != kz_ref_sum(x, n);
            for (int i = 0; i < n; i++) {
                x[i] = rng_uniform() * 50.0f;
                abs_sum += fabs((double)x[i]);
            }
            bad_float += fabs((double)k->sum(x, n) - (double)kz_ref_sum(x, n)) > (double)FLT_EPSILON * (n + 1) * abs_sum;
        }
        T_EQ_INT(bad_exact, 0);
        T_EQ_INT(bad_float, 0);
        printf("# %s sum checked\n", k->name);
    }
    kz_free(xb);
}

/* n rows of hd random floats, `stride` apart; the padding between them is
 * huge, so a kernel that reads it shows. */
static void make_rows(float *rows, int n, int hd, size_t stride)
{
    make_acts(A_NORMAL, rows, (int)stride * n);
    for (size_t i = 0; i < stride * (size_t)n; i++)
        if (i % stride >= (size_t)hd)
            rows[i] = 1e30f;
}

/* One head's scores and output over n positions against the reference:
 * K in the transposed tiles of kernels.h (the last tile's positions past n
 * are NaN, which must not reach the scores of the others), V rows `stride`
 * floats apart (padded, so a kernel reading past hd would be caught).
 * Scores within 1e-6 of sum |q k| * scale, each output (added to a random
 * start) within 1e-6 of |result| + sum |s v|. */
static void attn_ops(void)
{
    static const int hds[] = {8, 16, 24, 32, 64, 80, 100, 128, 256, 272};
    static const int ns[] = {1, 2, 3, 17, 70};
    for (int v = 0; v < n_variants; v++) {
        const struct kz_kernels *k = variants[v];
        int bad_s = 0, bad_v = 0;
        for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++)
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                int hd = hds[hi], n = ns[ni];
                size_t stride = (size_t)hd + 5;
                float *q = kz_malloc(sizeof(float) * (size_t)hd);
                float *rows = kz_malloc(sizeof(float) * stride * (size_t)n);
                float *got = kz_malloc(sizeof(float) * (size_t)(hd + 1)), *want = kz_malloc(sizeof(float) * (size_t)hd);
                float sc[71], sw[71], s[70];
                make_acts(A_NORMAL, q, hd);
                make_acts(A_NORMAL, s, n);
                make_rows(rows, n, hd, stride);
                int np = (n + KZ_ATTN_TILE - 1) / KZ_ATTN_TILE * KZ_ATTN_TILE;
                float *kt = kz_malloc(sizeof(float) * (size_t)np * (size_t)hd);
                for (int p = 0; p < np; p++)
                    for (int i = 0; i < hd; i++)
                        kt[(size_t)(p / KZ_ATTN_TILE) * (size_t)hd * KZ_ATTN_TILE + (size_t)i * KZ_ATTN_TILE +
                           (size_t)(p % KZ_ATTN_TILE)] = p < n ? rows[(size_t)p * stride + (size_t)i] : NAN;
                sc[n] = 7.0f;
                k->attn_scores(q, kt, n, hd, 0.125f, sc);
                kz_ref_attn_scores(q, kt, n, hd, 0.125f, sw);
                kz_free(kt);
                for (int p = 0; p < n; p++) {
                    double mag = 0;
                    for (int i = 0; i < hd; i++)
                        mag += fabs((double)q[i] * (double)rows[(size_t)p * stride + (size_t)i]);
                    bad_s += !(fabs((double)sc[p] - (double)sw[p]) <= 1e-6 * 0.125 * mag + TOL_ABS);
                }
                bad_s += sc[n] != 7.0f;
                make_acts(A_NORMAL, want, hd);
                memcpy(got, want, sizeof(float) * (size_t)hd);
                got[hd] = 7.0f;
                k->attn_values(s, rows, stride, n, hd, got);
                kz_ref_attn_values(s, rows, stride, n, hd, want);
                for (int i = 0; i < hd; i++) {
                    double mag = fabs((double)want[i]); /* the sum, which bounds |start| with the terms */
                    for (int p = 0; p < n; p++)
                        mag += fabs((double)s[p] * (double)rows[(size_t)p * stride + (size_t)i]);
                    bad_v += !(fabs((double)got[i] - (double)want[i]) <= 1e-6 * mag + TOL_ABS);
                }
                bad_v += got[hd] != 7.0f;
                kz_free(q);
                kz_free(rows);
                kz_free(got);
                kz_free(want);
            }
        T_OK(bad_s == 0, "%s: attention scores vs ref (%d bad)", k->name, bad_s);
        T_OK(bad_v == 0, "%s: attention values vs ref (%d bad)", k->name, bad_v);
    }
}

/* A half is NaN: all-ones exponent, nonzero mantissa. */
static int half_is_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu); }

/* F16 to_float and from_float (the KV cache's conversions) are exact
 * against the reference: every half to float; back, every half, every
 * midpoint between neighbours (ties to even), values past the largest half
 * and below the smallest subnormal. NaNs need only stay NaN. Odd lengths
 * and offsets exercise the tails. */
static void f16_convert(void)
{
    enum { N = 65536 };
    uint16_t *h = kz_malloc(sizeof(uint16_t) * N * 3), *got16 = kz_malloc(sizeof(uint16_t) * N * 3);
    float *f = kz_malloc(sizeof(float) * N * 3), *got = kz_malloc(sizeof(float) * N * 3);
    for (uint32_t i = 0; i < N; i++)
        h[i] = (uint16_t)i;
    size_t nf = 0;
    for (uint32_t i = 0; i < N; i++) {
        if (half_is_nan((uint16_t)i))
            continue;
        f[nf++] = kz_fp16_to_fp32((uint16_t)i);
        if ((i & 0x7fffu) < 0x7bffu) /* the midpoint to the next half of the same sign, exact in f32 */
            f[nf++] = 0.5f * (kz_fp16_to_fp32((uint16_t)i) + kz_fp16_to_fp32((uint16_t)(i + 1)));
    }
    static const float special[] = {65504.0f, 65519.996f, 65520.0f, 1e6f, -1e30f, 2.9802322e-08f /* 2^-25 */,
                                    4.4703484e-08f /* 3 * 2^-26 */, 1e-30f, -0.0f, 0.0f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        f[nf++] = special[i];
    f[nf++] = NAN;
    for (int v = 0; v < n_variants; v++) {
        const struct kz_type_ops *ops = variants[v]->type_ops(KZ_DT_F16);
        int bad_to = 0, bad_from = 0;
        for (int off = 0; off < 2; off++) {
            size_t n = (size_t)N - (size_t)off * 3; /* 65533 from element 3: a misaligned start and a tail */
            memset(got, 0, sizeof(float) * n);
            ops->to_float(h + off * 3, got, (int64_t)n);
            for (size_t i = 0; i < n; i++) {
                float want = kz_fp16_to_fp32(h[off * 3 + i]);
                bad_to += half_is_nan(h[off * 3 + i]) ? !isnan(got[i]) : memcmp(&want, &got[i], sizeof want) != 0;
            }
            size_t m = nf - (size_t)off * 3;
            memset(got16, 0, sizeof(uint16_t) * m);
            ops->from_float(f + off * 3, got16, (int64_t)m);
            for (size_t i = 0; i < m; i++) {
                uint16_t want = kz_fp32_to_fp16(f[off * 3 + i]);
                bad_from += isnan(f[off * 3 + i]) ? !half_is_nan(got16[i]) : got16[i] != want;
            }
        }
        T_OK(bad_to == 0, "%s: f16 to_float vs ref (%d bad)", variants[v]->name, bad_to);
        T_OK(bad_from == 0, "%s: f16 from_float vs ref (%d bad of %zu)", variants[v]->name, bad_from, nf);
    }
    kz_free(h);
    kz_free(got16);
    kz_free(f);
    kz_free(got);
}

int main(void)
{
    n_variants = kz_kernels_list(variants, 8);
    t_subtest("dispatch", dispatch);
    t_subtest("act_quantize vs ref", act_quantize);
    t_subtest("gemm_rows vs ref", gemm_rows);
    t_subtest("matvec_rows and dot_f32 vs ref", matvec_and_dot);
    t_subtest("float weights: batches independent of the tiling", float_tiling);
    t_subtest("vector ops vs ref", vec_ops);
    t_subtest("sum vs ref", sum_op);
    t_subtest("attention scores and values vs ref", attn_ops);
    t_subtest("f16 conversions vs ref", f16_convert);
    return t_done();
}
