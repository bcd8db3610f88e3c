/* SPDX-License-Identifier: MIT
 * The x86 kernel bodies shared by x86/avx2.c and x86/avx512.c. Not a
 * header in the usual sense: each of those files defines the macros below
 * and includes this once, so the same loops are compiled twice, each time
 * with that file's ISA flags (the two files hold nothing else but their
 * differences). Every function here is static; the only symbol exported is
 * the table KZ_X86_TABLE.
 *
 * The includer defines:
 *   KZ_X86_TABLE        name of the struct kz_kernels to define
 *   KZ_X86_NAME         its .name ("avx2", "avx512"), the KZ_KERNELS value
 *   KZ_X86_DOT_U8S8(u, s)
 *                       __m256i of 8 int32: lane k = sum over bytes 4k..4k+3
 *                       of (uint8)u * (int8)s, exact for |s| <= 127 and
 *                       u <= 128 (pmaddubsw + pmaddwd on AVX2, vpdpbusd on
 *                       AVX-512 VNNI)
 *
 * Shape of the batched product (kernels.h): gemm_rows walks the weight rows
 * in chunks that stay in cache and, inside a chunk, tiles the activation
 * rows. Several tokens go to register-blocked micro tiles (many weight rows
 * x many tokens, all accumulators in registers: the row-lane tiles tr_*,
 * the 4 x 4 blk_*, the K-quant tiles and f_blk for F16, BF16 and F32
 * weights); one token, and the types without
 * a micro tile, go to the one-row tile, which computes one weight row
 * against nt <= KZ_NT activation rows, unpacking each weight block once for
 * all of them. docs/internals/kernels.md describes each.
 *
 * avx512.c also defines KZ_X86_ZMM: the micro tiles then use zmm vectors
 * and VNNI directly.
 *
 * Integer parts equal the reference (ref/dot_q8.c) exactly: the same codes
 * are multiplied and summed in int32, with no saturation possible under the
 * bounds noted at each kernel (activation codes are in -127..127). Float
 * parts (scales times integer sums) are accumulated in 8 lanes, so the order
 * differs from the reference and results agree to rounding.
 */
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "core/assert.h"
#include "engine/gguf/dtype.h"
#include "engine/kernels/kernels.h"
#include "engine/kernels/q8.h"
#include "engine/kernels/quant.h"
#include "engine/kernels/simd.h"

#define KZ_INLINE static inline __attribute__((always_inline))

enum { KZ_NT = 4 }; /* activation rows per tile */
/* K-quant tiles (Q8_K activations): a super-block's unpacked codes and
 * scales (16 vectors, in memory beside the ymm registers) serve 8 tokens on
 * ymm: +3% (Q4_K_M) and +5% (Q6_K) in avx2 prompt processing; the f32
 * accumulators of 8 tokens would not fit beside the legacy and float tiles'
 * state, which keep 4. */
#ifdef KZ_X86_ZMM
enum { KZ_NT_K = 4 };
#else
enum { KZ_NT_K = 8 };
#endif
enum { KZ_CHUNK_BYTES = 64 * 1024 }; /* weight rows kept hot while the token tiles pass */

/* a tile: one weight row w (n elements) against nt activation rows starting
 * at act, astride bytes apart; result t goes to out[t * ostride]. prep is
 * the tile's prep_q8_0 data for the 32-element types, unused otherwise. */
typedef void (*tile_fn)(int64_t n, const void *w, const unsigned char *act, size_t astride,
                        const float *prep, float *out, int64_t ostride, int nt);

// ---------------------------------------------------------------- helpers

/* Weights stream through decode once per token, in long runs of rows that
 * lie one after the other. Some cores' hardware prefetchers follow such a
 * run poorly while the loop does a lot of work per byte: on a 2-core Intel
 * Xeon VM, one core read Q4_0 weights at 5.3 GB/s in decode where a plain
 * vector read got 16, and llama.cpp was as slow. So every decode loop
 * prefetches what it will read: into L2 16 KiB ahead and from there into
 * L1 4 KiB ahead, each line of each step. Two levels: the far one hides the
 * memory latency without holding L1 fill buffers for long, the near one the
 * L2 latency. On that machine generation at 2 threads went 1.6-2.2x
 * faster; L1 alone (0.5 to 4 KiB ahead) got about half of that, and NTA
 * was worse than none. The distances were 4 and 1 KiB there, and longer
 * ones measured the same; on a 2-core AMD EPYC (Zen 4) 4 and 1 KiB left
 * one core's decode at 14-18 GB/s from memory, 16 and 4 KiB reach 22-29,
 * and generation at 1 thread went 1.2-1.5x faster (farther than 16 KiB:
 * no better; docs/PERFORMANCE.md). There, the loops that do little work
 * per byte ask twice on AMD (amd_cpu).
 * Past the end of a row the prefetch runs into the next row, the next read;
 * past the end of the matrix it fetches lines not needed, and a prefetch
 * never faults. -DKZ_NO_PREFETCH builds without it, for comparisons. */
enum { KZ_PF_L1 = 4096, KZ_PF_L2 = 16384 };

/* prefetch the `bytes` bytes the step at p reads, at both distances, one
 * request every `step` bytes: 64 asks once per line, 32 twice (amd_cpu).
 * bytes and step are constants, so the loops unroll. */
KZ_INLINE void pf_every(const void *p, const int bytes, const int step)
{
#ifndef KZ_NO_PREFETCH
    for (int o = 0; o < bytes; o += step) /* near first: a little faster than the other order */
        _mm_prefetch((const char *)p + KZ_PF_L1 + o, _MM_HINT_T0);
    for (int o = 0; o < bytes; o += step)
        _mm_prefetch((const char *)p + KZ_PF_L2 + o, _MM_HINT_T1);
#else
    (void)p, (void)bytes, (void)step;
#endif
}

/* the lines of the `bytes` bytes the step at p reads, once each */
KZ_INLINE void pf_ahead(const void *p, const int bytes)
{
    pf_every(p, bytes, 64);
}

#ifdef KZ_X86_ZMM
/* Whether this is an AMD CPU, for the decode loops that do little work per
 * byte (Q8_0, F32 on zmm). On an AMD EPYC (Zen 4), with the weights on
 * huge pages, prefetching each line once costs more than it brings: the
 * hardware prefetchers alone read Q8_0 weights at 29 against 26-28 GB/s
 * (bench_kernels, one core). Asking for each line twice (a prefetch every
 * 32 bytes) beats both, 32.6-33.1 GB/s, and took Q8_0 generation at 1
 * thread from 26.2-27.4 to 31.0 t/s. Elsewhere the Q8_0 loop asks once:
 * an Intel Xeon VM needed the prefetch in every decode loop, and none is
 * at hand to try the second request on. The float rows ask twice on every
 * vendor (f_row, and f_row16 wherever it prefetches); the heavier loops
 * (Q4_0, Q4_K, Q5_K, Q6_K) ask once everywhere, as twice was level or
 * slower for them here. The vendor is read once: in a VM cpuid traps to
 * the hypervisor. */
static int amd_cpu(void)
{
    static _Atomic int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        unsigned a = 0, b = 0, c = 0, d = 0;
        /* "AuthenticAMD" in ebx, edx, ecx */
        v = __get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541u && d == 0x69746e65u && c == 0x444d4163u;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}
#endif

KZ_INLINE float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

KZ_INLINE float hmax_ps(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

KZ_INLINE double hsum_pd(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

/* binary16 -> f32 with F16C (exact, like kz_fp16_to_fp32) */
KZ_INLINE float h2f(uint16_t h)
{
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

/* the binary16 scales that open four consecutive blocks of `size` bytes
 * (an even number), d0 in the low bits (18- and 34-byte blocks: no vector
 * load gathers them as cheaply) */
KZ_INLINE uint64_t halves4(const void *blocks, const size_t size)
{
    const uint16_t *h = (const uint16_t *)blocks;
    const size_t s = size / 2;
    return (uint64_t)h[0] | (uint64_t)h[s] << 16 | (uint64_t)h[2 * s] << 32 | (uint64_t)h[3 * s] << 48;
}

KZ_INLINE uint64_t q4_0_halves4(const struct kz_block_q4_0 *b)
{
    return halves4(b, sizeof *b);
}

KZ_INLINE __m256i load256(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

KZ_INLINE __m128i load128(const void *p)
{
    return _mm_loadu_si128((const __m128i *)p);
}

/* 16 bytes of packed nibbles -> 32 bytes 0..15: low nibbles first, then high */
KZ_INLINE __m256i nibbles32(const uint8_t *qs)
{
    __m128i x = load128(qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x), _mm256_set1_epi8(15));
}

/* 32 bits (little-endian) -> 32 bytes: byte e is 0xff if bit e is set, else 0 */
KZ_INLINE __m256i bits32(const uint8_t *p)
{
    uint32_t u;
    memcpy(&u, p, 4);
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, /* lane 0 */
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)u), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* int32 lanes -> f32, then acc += s * that */
KZ_INLINE __m256 fma_i32(float s, __m256i v, __m256 acc)
{
    return _mm256_fmadd_ps(_mm256_set1_ps(s), _mm256_cvtepi32_ps(v), acc);
}

/* pmaddubsw then pmaddwd by int16 factors f: lane k = f[2k]*(u*s pair 2k) + f[2k+1]*(pair 2k+1).
 * pmaddubsw cannot saturate when u <= 63 and |s| <= 127 (2*63*127 < 32767). */
KZ_INLINE __m256i dot_u8s8_scaled(__m256i u, __m256i s, __m256i f)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), f);
}

/* One code vector v (32 elements) of super-block i of a K-quant weight
 * row, unsigned codes q with their int16 scale factors f, against the same
 * 32 elements of each of nt Q8_K activation rows, into each token's int32
 * sums. The K-quant one-row tiles go vector by vector through this, each
 * token's sum in a register: unpacking all eight vectors of a super-block
 * first, with their scales, took ymm's whole register file, and they were
 * reloaded from the stack for every token (avx2 prompts +15-19% in Q4_K_M,
 * Q3_K +40-55% in cache on avx512). */
KZ_INLINE void kq_tokens(__m256i q, __m256i f, int v, const unsigned char *act, size_t astride, int64_t i, int nt,
                         __m256i *sumi)
{
    for (int t = 0; t < nt; t++) {
        const struct kz_block_q8_k *a = (const struct kz_block_q8_k *)(act + t * astride) + i;
        sumi[t] = _mm256_add_epi32(sumi[t], dot_u8s8_scaled(q, load256(a->qs + 32 * v), f));
    }
}

// ---------------------------------------------------------------- 32-element types (Q8_0 activations)

enum leg_kind { L_Q4_0, L_Q4_1, L_Q5_0, L_Q5_1, L_Q8_0 };

KZ_INLINE int leg_block_size(const enum leg_kind kind)
{
    switch (kind) {
    case L_Q4_0: return (int)sizeof(struct kz_block_q4_0);
    case L_Q4_1: return (int)sizeof(struct kz_block_q4_1);
    case L_Q5_0: return (int)sizeof(struct kz_block_q5_0);
    case L_Q5_1: return (int)sizeof(struct kz_block_q5_1);
    case L_Q8_0:
    default: return (int)sizeof(struct kz_block_q8_0);
    }
}

/* Codes of weight block i, in element order, and the block as
 * w[e] = d * q[e] + m: Q8_0 codes are signed (m = 0); the others are
 * unsigned 0..31, with Q4_0/Q5_0's bias folded into m = -8d / -16d. */
KZ_INLINE __m256i leg_unpack(const enum leg_kind kind, const void *w, int64_t i, float *d, float *m)
{
    switch (kind) {
    case L_Q4_0: {
        const struct kz_block_q4_0 *b = (const struct kz_block_q4_0 *)w + i;
        *d = h2f(b->d);
        *m = -8.0f * *d;
        return nibbles32(b->qs);
    }
    case L_Q4_1: {
        const struct kz_block_q4_1 *b = (const struct kz_block_q4_1 *)w + i;
        *d = h2f(b->d);
        *m = h2f(b->m);
        return nibbles32(b->qs);
    }
    case L_Q5_0: {
        const struct kz_block_q5_0 *b = (const struct kz_block_q5_0 *)w + i;
        *d = h2f(b->d);
        *m = -16.0f * *d;
        return _mm256_or_si256(nibbles32(b->qs), _mm256_and_si256(bits32(b->qh), _mm256_set1_epi8(16)));
    }
    case L_Q5_1: {
        const struct kz_block_q5_1 *b = (const struct kz_block_q5_1 *)w + i;
        *d = h2f(b->d);
        *m = h2f(b->m);
        return _mm256_or_si256(nibbles32(b->qs), _mm256_and_si256(bits32(b->qh), _mm256_set1_epi8(16)));
    }
    case L_Q8_0:
    default: {
        const struct kz_block_q8_0 *b = (const struct kz_block_q8_0 *)w + i;
        *d = h2f(b->d);
        *m = 0.0f;
        return load256(b->qs);
    }
    }
}

/* Per activation row of a tile, converted once per tile instead of once per
 * weight row: prep[t * 2 * nb + i] = d of block i (f32), and
 * prep[t * 2 * nb + nb + i] = d * (the sum of its 32 codes). */
enum { KZ_PREP_BLOCKS = 1024 }; /* rows of up to 32768 elements; wider go to the reference */

static void prep_q8_0(const unsigned char *act, size_t astride, int nt, int64_t nb, float *prep)
{
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int t = 0; t < nt; t++, prep += 2 * nb) {
        const struct kz_block_q8_0 *a = (const struct kz_block_q8_0 *)(act + t * astride);
        for (int64_t i = 0; i < nb; i++) {
            prep[i] = h2f(a[i].d);
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, load256(a[i].qs)), ones16);
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 1));
            prep[nb + i] = prep[i] * (float)_mm_cvtsi128_si32(h);
        }
    }
}

/* Block i of the weight row against block i of nt activation rows.
 * Q8_0: q * a = |q| * (a with q's sign), |q| <= 128 as u8.
 * Others: q (0..31) * a directly, and the m * d_a * sum(a) part goes to
 * the scalar corr[t] (one FMA per block, no vector work for the bias). */
KZ_INLINE void leg_step(const enum leg_kind kind, const void *w, int64_t i, const unsigned char *act,
                        size_t astride, const float *prep, int64_t nb, __m256 *acc, float *corr, const int nt)
{
    float d, m;
    __m256i q = leg_unpack(kind, w, i, &d, &m);
    __m256 dw = _mm256_set1_ps(d);
    if (kind != L_Q8_0) {
        for (int t = 0; t < nt; t++) {
            const struct kz_block_q8_0 *a = (const struct kz_block_q8_0 *)(act + t * astride) + i;
            const float *pt = prep + t * 2 * nb;
            __m256 s = _mm256_mul_ps(dw, _mm256_broadcast_ss(pt + i));
            acc[t] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(KZ_X86_DOT_U8S8(q, load256(a->qs))), acc[t]);
            corr[t] = fmaf(m, pt[nb + i], corr[t]);
        }
    } else {
        __m256i uq = _mm256_sign_epi8(q, q);
        for (int t = 0; t < nt; t++) {
            const struct kz_block_q8_0 *a = (const struct kz_block_q8_0 *)(act + t * astride) + i;
            __m256i sa = _mm256_sign_epi8(load256(a->qs), q);
            __m256 s = _mm256_mul_ps(dw, _mm256_broadcast_ss(prep + t * 2 * nb + i));
            acc[t] = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(KZ_X86_DOT_U8S8(uq, sa)), acc[t]);
        }
    }
}

/* Two independent accumulator sets (even and odd blocks) so one token still
 * keeps two FMA chains in flight. */
KZ_INLINE void leg_tile(const enum leg_kind kind, int64_t n, const void *w, const unsigned char *act,
                        size_t astride, const float *prep, float *out, int64_t ostride, const int nt)
{
    int64_t nb = n / 32;
    __m256 acc0[KZ_NT], acc1[KZ_NT];
    float corr0[KZ_NT], corr1[KZ_NT];
    for (int t = 0; t < nt; t++) {
        acc0[t] = acc1[t] = _mm256_setzero_ps();
        corr0[t] = corr1[t] = 0.0f;
    }
    int64_t i = 0;
    for (; i + 1 < nb; i += 2) {
        pf_ahead((const char *)w + (size_t)i * leg_block_size(kind), 2 * leg_block_size(kind));
        leg_step(kind, w, i, act, astride, prep, nb, acc0, corr0, nt);
        leg_step(kind, w, i + 1, act, astride, prep, nb, acc1, corr1, nt);
    }
    if (i < nb)
        leg_step(kind, w, i, act, astride, prep, nb, acc0, corr0, nt);
    for (int t = 0; t < nt; t++)
        out[t * ostride] = hsum_ps(_mm256_add_ps(acc0[t], acc1[t])) + (corr0[t] + corr1[t]);
}

// ---------------------------------------------------------------- register-blocked tiles (n_tok >= 2)

/* With several activation rows the per-token tile above is compute-bound:
 * every (row, token, block) pays for the block's scale work. Here a micro
 * tile computes KZ_MR weight rows x KZ_NR activation rows at once, with all
 * KZ_MR * KZ_NR float accumulators in registers, so each decoded weight
 * block serves KZ_NR tokens and each loaded activation block KZ_MR rows.
 * One vector holds KZ_VB consecutive 32-element blocks (2 in a zmm, 1 in a
 * ymm); per (row, token) and vector the work is one integer dot product,
 * one int -> float conversion, one scale product and one FMA.
 *
 * The weight codes enter the byte product unsigned: Q4_0 / Q5_0 codes are
 * 0..15 / 0..31 with the bias B = 8 / 16 taken out as q.a - B * sum(a).
 * With VNNI, Q8_0 codes become unsigned too (w + 128, B = 128), and the
 * -B * sum(a) lanes of each activation vector are the starting value of the
 * dot product, so the bias costs nothing per pair. Without VNNI (pmaddubsw
 * saturates past 2 * 127 * 128), Q8_0 uses the sign trick |w| * (a with
 * w's sign) instead, and Q4_0 / Q5_0 take the bias per block in float, once
 * for the whole tile (blk_prep, blk_step). Integer sums are exact, so
 * results differ from the reference only in float order. */
#ifdef KZ_X86_ZMM
typedef __m512i kvi;
typedef __m512 kvf;
#define KZ_VB 2 /* 32-element blocks per vector */
#define KZ_MR 4 /* weight rows per micro tile */
#define KZ_NR 4 /* activation rows per micro tile */
#define KZ_NR_MAX KZ_NR
KZ_INLINE kvi kv_join(__m256i lo, __m256i hi)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}
KZ_INLINE kvf kv_joinf(__m256 lo, __m256 hi)
{
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
}
KZ_INLINE kvf kv_fzero(void) { return _mm512_setzero_ps(); }
KZ_INLINE kvf kv_cvt(kvi v) { return _mm512_cvtepi32_ps(v); }
KZ_INLINE kvf kv_mul(kvf a, kvf b) { return _mm512_mul_ps(a, b); }
KZ_INLINE kvf kv_fma(kvf a, kvf b, kvf c) { return _mm512_fmadd_ps(a, b, c); }
KZ_INLINE float kv_hsum(kvf v) { return hsum_ps(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1))); }
KZ_INLINE kvf kv_loadu(const float *p) { return _mm512_loadu_ps(p); }
KZ_INLINE kvf kv_add(kvf a, kvf b) { return _mm512_add_ps(a, b); }
KZ_INLINE kvf kv_set1(float x) { return _mm512_set1_ps(x); }
KZ_INLINE void kv_storeu(float *p, kvf v) { _mm512_storeu_ps(p, v); }
#else
typedef __m256i kvi;
typedef __m256 kvf;
#define KZ_VB 1
#define KZ_MR 2 /* 16 ymm registers: 8 accumulators */
#define KZ_NR 4
/* From 8 tokens on, 1 row x 8 tokens instead (blk_for): the same 8
 * accumulators without the second row's codes, so nothing spills (prompt
 * processing Q4_0 +4%); below 8 tokens 2 x 4 keeps decode batches fast. */
#define KZ_NR8 8
#define KZ_NR_MAX KZ_NR8
KZ_INLINE kvi kv_join(__m256i lo, __m256i hi)
{
    (void)hi;
    return lo;
}
KZ_INLINE kvf kv_joinf(__m256 lo, __m256 hi)
{
    (void)hi;
    return lo;
}
KZ_INLINE kvf kv_fzero(void) { return _mm256_setzero_ps(); }
KZ_INLINE kvf kv_cvt(kvi v) { return _mm256_cvtepi32_ps(v); }
KZ_INLINE kvf kv_mul(kvf a, kvf b) { return _mm256_mul_ps(a, b); }
KZ_INLINE kvf kv_fma(kvf a, kvf b, kvf c) { return _mm256_fmadd_ps(a, b, c); }
KZ_INLINE float kv_hsum(kvf v) { return hsum_ps(v); }
KZ_INLINE kvf kv_loadu(const float *p) { return _mm256_loadu_ps(p); }
KZ_INLINE kvf kv_add(kvf a, kvf b) { return _mm256_add_ps(a, b); }
KZ_INLINE kvf kv_set1(float x) { return _mm256_set1_ps(x); }
KZ_INLINE void kv_storeu(float *p, kvf v) { _mm256_storeu_ps(p, v); }
#endif

/* the integer bias B of a kind's unsigned codes (Q8_0: with VNNI only) */
KZ_INLINE int blk_bias(const enum leg_kind kind)
{
    return kind == L_Q4_0 ? 8 : kind == L_Q5_0 ? 16 : 128;
}

/* The f16 scale of weight block i (the first field of every legacy block). */
KZ_INLINE uint16_t leg_half(const enum leg_kind kind, const void *w, int64_t i)
{
    switch (kind) {
    case L_Q4_0: return ((const struct kz_block_q4_0 *)w)[i].d;
    case L_Q5_0: return ((const struct kz_block_q5_0 *)w)[i].d;
    case L_Q4_1: return ((const struct kz_block_q4_1 *)w)[i].d;
    case L_Q5_1: return ((const struct kz_block_q5_1 *)w)[i].d;
    case L_Q8_0:
    default: return ((const struct kz_block_q8_0 *)w)[i].d;
    }
}

/* Per activation row of a token tile, once per tile, the scale of block i
 * as f32: ds[t * nb + i] on zmm. On ymm ds[i * KZ_NR + t], the tile's
 * tokens side by side (zero past nt), so that one load gives a block's
 * scales for all of them (blk_step), and for the kinds with a bias B, at
 * ds[KZ_NR * nb + i * KZ_NR + t], the block's bias term -B * scale * sum of
 * its codes: blk_step adds it once per block for two rows and four tokens
 * in one FMA instead of taking B * sums out of every pair's product. */
KZ_INLINE void blk_prep(const enum leg_kind kind, const unsigned char *act, size_t astride, int nt, int64_t nb,
                        float *ds, const int NR)
{
#ifdef KZ_X86_ZMM
    (void)kind;
    (void)NR;
    for (int t = 0; t < nt; t++, ds += nb) {
        const struct kz_block_q8_0 *a = (const struct kz_block_q8_0 *)(act + t * astride);
        for (int64_t i = 0; i < nb; i++)
            ds[i] = h2f(a[i].d);
    }
#else
    float *sa = ds + NR * nb;
    const struct kz_block_q8_0 *a[KZ_NR8];
    for (int t = 0; t < NR; t++) /* missing tokens repeat the first: finite, and their scale is 0 */
        a[t] = (const struct kz_block_q8_0 *)(act + (t < nt ? t : 0) * astride);
    const __m256i one8 = _mm256_set1_epi8(1), one16 = _mm256_set1_epi16(1);
    const __m128 bias = _mm_set1_ps(kind == L_Q8_0 ? 0.0f : -(float)blk_bias(kind));
    for (int64_t i = 0; i < nb; i++)
        for (int t0 = 0; t0 < NR; t0 += 4) { /* four tokens at a time */
            const struct kz_block_q8_0 *const *g = a + t0;
            __m128 d = _mm_setr_ps(t0 < nt ? h2f(g[0][i].d) : 0.0f, t0 + 1 < nt ? h2f(g[1][i].d) : 0.0f,
                                   t0 + 2 < nt ? h2f(g[2][i].d) : 0.0f, t0 + 3 < nt ? h2f(g[3][i].d) : 0.0f);
            _mm_storeu_ps(ds + i * NR + t0, d);
            if (kind == L_Q8_0)
                continue;
            __m256i s[4];
            for (int t = 0; t < 4; t++)
                s[t] = _mm256_madd_epi16(_mm256_maddubs_epi16(one8, load256(g[t][i].qs)), one16);
            /* lane t of each half: token t's partial sums; the halves add to the whole */
            __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
            __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            _mm_storeu_ps(sa + i * NR + t0, _mm_mul_ps(_mm_mul_ps(bias, d), _mm_cvtepi32_ps(sum)));
        }
#endif
}

#ifdef KZ_X86_ZMM
/* lanes 0..7 take element 0, lanes 8..15 element 1 */
KZ_INLINE __m512i kv_spread_idx(void)
{
    return _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
}
#endif

/* Blocks i .. i + nblk - 1 (nblk <= KZ_VB; missing blocks are zero) of a
 * weight row: codes ready for the product (q; for Q8_0 without VNNI, |w|
 * in q and w itself in qs) and the block scales spread over their lanes. */
KZ_INLINE void blk_row(const enum leg_kind kind, const void *w, int64_t i, const int nblk, kvi *q, kvi *qs, kvf *dw)
{
    float d, m;
#ifdef KZ_X86_ZMM
    __m256i c0 = leg_unpack(kind, w, i, &d, &m);
    __m256i c1 = nblk > 1 ? leg_unpack(kind, w, i + 1, &d, &m) : _mm256_setzero_si256();
    uint32_t hh = leg_half(kind, w, i) | (nblk > 1 ? (uint32_t)leg_half(kind, w, i + 1) << 16 : 0u);
    __m128 d2 = _mm_cvtph_ps(_mm_cvtsi32_si128((int)hh));
    *dw = _mm512_permutexvar_ps(kv_spread_idx(), _mm512_castps128_ps512(d2));
    kvi v = kv_join(c0, c1);
    *qs = v;
    *q = kind == L_Q8_0 ? _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80)) : v;
#else
    (void)nblk;
    kvi v = leg_unpack(kind, w, i, &d, &m);
    *dw = _mm256_set1_ps(d);
    *qs = v;
    *q = kind == L_Q8_0 ? _mm256_sign_epi8(v, v) : v;
#endif
}

#ifdef KZ_X86_ZMM
/* The same blocks of an activation row (ds: its blk_prep row): codes,
 * scales, and the bias term, -B * sums of 4 codes as int32 lanes, so each
 * lane of the product is the exact dot of its own 4 elements. */
KZ_INLINE void blk_act(const enum leg_kind kind, const unsigned char *act, const float *ds, int64_t i,
                       const int nblk, kvi *a, kvf *da, kvi *bias)
{
    const struct kz_block_q8_0 *ab = (const struct kz_block_q8_0 *)act + i;
    __m256i c0 = load256(ab[0].qs), c1 = nblk > 1 ? load256(ab[1].qs) : _mm256_setzero_si256();
    *a = kv_join(c0, c1);
    __m128 d2 = nblk > 1 ? _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(ds + i))) : _mm_load_ss(ds + i);
    *da = _mm512_permutexvar_ps(kv_spread_idx(), _mm512_castps128_ps512(d2));
    /* per lane, so every lane of the product is its own small exact sum */
    __m512i bsum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)blk_bias(kind)), *a);
    *bias = _mm512_sub_epi32(_mm512_setzero_si512(), bsum);
}
#else
/* integer q . a of one (row, token) pair, int32 lanes: exact, Q8_0 by the
 * sign trick, Q4_0 / Q5_0 with their unsigned codes (q <= 31: pairs within
 * +-7874) and the bias left to blk_step's correction */
KZ_INLINE __m256i blk_dot_y(const enum leg_kind kind, __m256i q, __m256i qs, __m256i a)
{
    const __m256i ones = _mm256_set1_epi16(1);
    if (kind == L_Q8_0)
        return _mm256_madd_epi16(_mm256_maddubs_epi16(q, _mm256_sign_epi8(a, qs)), ones);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), ones);
}
#endif

KZ_INLINE void blk_step(const enum leg_kind kind, const unsigned char *w, size_t wstride, const unsigned char *act,
                        size_t astride, const float *ds, int64_t nb, int64_t i, const int nblk,
                        kvf acc[KZ_MR][KZ_NR_MAX], kvf *corr, const int MR, const int NR, const int mr, const int nr)
{
    kvi q[KZ_MR], qs[KZ_MR];
    kvf dw[KZ_MR];
    for (int r = 0; r < mr; r++)
        blk_row(kind, w + (size_t)r * wstride, i, nblk, &q[r], &qs[r], &dw[r]);
#ifdef KZ_X86_ZMM
    (void)corr;
    (void)MR;
    (void)NR;
    for (int t = 0; t < nr; t++) {
        kvi a, bias;
        kvf da;
        blk_act(kind, act + (size_t)t * astride, ds + t * nb, i, nblk, &a, &da, &bias);
        for (int r = 0; r < mr; r++) /* the product starts from the bias lanes */
            acc[r][t] = kv_fma(kv_cvt(_mm512_dpbusd_epi32(bias, q[r], a)), kv_mul(dw[r], da), acc[r][t]);
    }
#else
    /* The 2 x 4 scale products of the step in one multiply (lane 4r + t),
     * each then broadcast from memory by its FMA: a load instead of a
     * multiply per (row, token) pair, which on AVX2 leaves five ALU ops per
     * pair where the integer dot product already takes three (Q8_0), and
     * the bias terms of all eight pairs in one FMA (lane 4r + t again).
     * The 1 x 8 shape (prompts) spreads its eight products by a lane
     * permute instead: through memory (a store, then a broadcast load per
     * pair) it was 10-16% slower in cache on an AMD EPYC (Zen 4; Q8_0 and
     * Q4_0, 64 tokens), presumably because those loads wait for the store,
     * while for 2 x 4 the permute was 8-10% slower there (Q8_0, 4 tokens).
     * On Intel cores the permute takes the shuffle port, which the pair's
     * other ops leave free. */
    /* shapes 2 x 4 and 1 x 8: lane r * NR + t */
    __m256 dwv = MR == 1 ? dw[0] : _mm256_blend_ps(dw[0], dw[mr > 1 ? 1 : 0], 0xf0);
    const float *dsi = ds + i * NR, *sai = ds + NR * nb + i * NR;
    const __m256 prodv = _mm256_mul_ps(dwv, NR == 8 ? _mm256_loadu_ps(dsi) : _mm256_broadcast_ps((const __m128 *)dsi));
    _Alignas(32) float prod[8];
    if (NR != 8)
        _mm256_store_ps(prod, prodv);
    if (kind != L_Q8_0)
        *corr = _mm256_fmadd_ps(dwv, NR == 8 ? _mm256_loadu_ps(sai) : _mm256_broadcast_ps((const __m128 *)sai), *corr);
    for (int t = 0; t < nr; t++) {
        __m256i a = load256(((const struct kz_block_q8_0 *)(act + (size_t)t * astride) + i)->qs);
        for (int r = 0; r < mr; r++)
            acc[r][t] = kv_fma(kv_cvt(blk_dot_y(kind, q[r], qs[r], a)),
                               NR == 8 ? _mm256_permutevar8x32_ps(prodv, _mm256_set1_epi32(t))
                                       : _mm256_broadcast_ss(prod + r * NR + t),
                               acc[r][t]);
    }
#endif
}

/* mr weight rows (wstride bytes apart) x nr activation rows (astride bytes
 * apart, blk_prep scales in ds) -> out[t * ostride + r] */
KZ_INLINE void blk_tile(const enum leg_kind kind, int64_t n, const unsigned char *w, size_t wstride,
                        const unsigned char *act, size_t astride, const float *ds, float *out, int64_t ostride,
                        const unsigned char *pf, const int MR, const int NR, const int mr, const int nr)
{
    const int64_t nb = n / 32;
    const size_t pf_step = (size_t)MR * (wstride / (size_t)nb) * KZ_VB; /* next tile's span per step */
    kvf acc[KZ_MR][KZ_NR_MAX], corr = kv_fzero();
    for (int r = 0; r < mr; r++)
        for (int t = 0; t < nr; t++)
            acc[r][t] = kv_fzero();
    int64_t i = 0;
    for (; i + KZ_VB <= nb; i += KZ_VB) {
        blk_step(kind, w, wstride, act, astride, ds, nb, i, KZ_VB, acc, &corr, MR, NR, mr, nr);
        if (pf)
            for (size_t o = 0; o < pf_step; o += 64)
                _mm_prefetch((const char *)pf + (size_t)(i / KZ_VB) * pf_step + o, _MM_HINT_T0);
    }
    if (KZ_VB > 1 && i < nb)
        blk_step(kind, w, wstride, act, astride, ds, nb, i, 1, acc, &corr, MR, NR, mr, nr);
#ifdef KZ_X86_ZMM
    (void)corr; /* the bias is inside each pair's integer product */
    for (int r = 0; r < mr; r++)
        for (int t = 0; t < nr; t++)
            out[t * ostride + r] = kv_hsum(acc[r][t]);
#else
    _Alignas(32) float c[8];
    _mm256_store_ps(c, corr); /* lane r * NR + t */
    for (int r = 0; r < mr; r++)
        for (int t = 0; t < nr; t++)
            out[t * ostride + r] = kv_hsum(acc[r][t]) + c[r * NR + t];
#endif
}

// ---------------------------------------------------------------- K-quants (Q8_K activations)

/* Pair-scale vectors for a super-block of 16 sub-blocks of 16: the 8 code
 * vectors cover sub-blocks (2v, 2v+1), so f[v] holds sc[2v] (int16) in its
 * low 128-bit half and sc[2v+1] in its high half. all16 gets sc[0..15]. */
KZ_INLINE void pair_scales(__m128i sc8 /* 16 int8 */, __m256i f[8], __m256i *all16)
{
    __m128i lo = _mm_cvtepi8_epi16(sc8), hi = _mm_cvtepi8_epi16(_mm_unpackhi_epi64(sc8, sc8));
    *all16 = _mm256_set_m128i(hi, lo);
    __m256i ga = _mm256_broadcastsi128_si256(lo), gb = _mm256_broadcastsi128_si256(hi);
    /* within a 128-bit lane of 8 int16: pick element 2j (lane 0) or 2j+1 (lane 1) */
    const __m256i base = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                          2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    for (int v = 0; v < 8; v++) {
        __m256i sel = _mm256_add_epi8(base, _mm256_set1_epi8((char)(4 * (v % 4))));
        f[v] = _mm256_shuffle_epi8(v < 4 ? ga : gb, sel);
    }
}

/* A Q4_K/Q5_K super-block's 8 scales and 8 mins (u8, the low 8 bytes of
 * each; the high 8 are zero) and d, dmin as floats (dd lanes 0, 1), from
 * the 12-byte packing read as three u32 u[0..2]: sc/m 0..3 are the low 6
 * bits of u[0]/u[1]; sc/m 4..7 take their low 4 bits from u[2] and their
 * top 2 bits from the top of u[0]/u[1]. In general-purpose registers: the
 * vector form this replaced took the shuffle ports, which the codes need
 * (one core in L2, avx2: Q4_K at 1 token 72.9 -> 81.2 Gop/s, Q5_K 44.3 ->
 * 50.8; avx512: level, Q4_K at 4 tokens 180 -> 195). */
KZ_INLINE void q4k_scales(const void *blk, __m128i *sc8, __m128i *m8, __m128 *dd)
{
    const struct kz_block_q4_k *b = (const struct kz_block_q4_k *)blk;
    uint32_t u[3];
    memcpy(u, b->scales, 12);
    const uint32_t s03 = u[0] & 0x3f3f3f3fu, m03 = u[1] & 0x3f3f3f3fu;
    const uint32_t s47 = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 6) & 0x03030303u) << 4;
    const uint32_t m47 = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 6) & 0x03030303u) << 4;
    *sc8 = _mm_cvtsi64_si128((long long)((uint64_t)s47 << 32 | s03));
    *m8 = _mm_cvtsi64_si128((long long)((uint64_t)m47 << 32 | m03));
    *dd = _mm_cvtph_ps(_mm_cvtsi32_si128((int)(b->d | (uint32_t)b->dmin << 16)));
}

/* Q4_K: codes 0..15; scale and min per 32 (6-bit, 12-byte packing, quant.h).
 * sumi = sum_s sc[s] * (q . a over s); summ = sum_s m[s] * bsum32[s]. */
KZ_INLINE void q4k_tile(int64_t n, const void *w, const unsigned char *act, size_t astride, float *out,
                        int64_t ostride, const int nt, const int five)
{
    __m256 acc[KZ_NT_K];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(15);
    for (int64_t i = 0; i < n / KZ_QK_K; i++) {
        const uint8_t *qs, *qhp = NULL;
        const int bsz = five ? (int)sizeof(struct kz_block_q5_k) : (int)sizeof(struct kz_block_q4_k);
        const unsigned char *blk = (const unsigned char *)w + (size_t)i * (size_t)bsz;
        pf_ahead(blk, bsz);
        if (five)
            qs = ((const struct kz_block_q5_k *)blk)->qs, qhp = ((const struct kz_block_q5_k *)blk)->qh;
        else
            qs = ((const struct kz_block_q4_k *)blk)->qs;
        __m128i sc8, m8;
        __m128 dd;
        q4k_scales(blk, &sc8, &m8, &dd); /* d, dmin, scales: the same head in Q4_K and Q5_K */
        const float d = _mm_cvtss_f32(dd), dmin = _mm_cvtss_f32(_mm_movehdup_ps(dd));
        /* mins repeated per pair of 16-sums: m0 m0 m1 m1 ... as int16 */
        __m256i mins = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
        __m256i scb = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sc8));
        __m256i qh = five ? load256(qhp) : _mm256_setzero_si256();
        __m256i sumi[KZ_NT_K];
        for (int t = 0; t < nt; t++)
            sumi[t] = _mm256_setzero_si256();
        for (int s = 0; s < 8; s++) {
            __m256i x = load256(qs + 32 * (s / 2));
            __m256i q = s % 2 ? _mm256_and_si256(_mm256_srli_epi16(x, 4), low4) : _mm256_and_si256(x, low4);
            if (five) { /* bit 4 = bit s of qh[l] */
                __m256i bit = _mm256_set1_epi8((char)(1 << s));
                __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
                q = _mm256_or_si256(q, _mm256_and_si256(set, _mm256_set1_epi8(16)));
            }
            kq_tokens(q, _mm256_shuffle_epi8(scb, _mm256_set1_epi16((short)(0x0100 + 0x0202 * s))), s, act, astride, i,
                      nt, sumi);
        }
        for (int t = 0; t < nt; t++) {
            const struct kz_block_q8_k *a = (const struct kz_block_q8_k *)(act + t * astride) + i;
            __m256i summ = _mm256_madd_epi16(load256(a->bsums), mins);
            acc[t] = fma_i32(d * a->d, sumi[t], acc[t]);
            acc[t] = fma_i32(-(dmin * a->d), summ, acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        out[t * ostride] = hsum_ps(acc[t]);
}

/* Q6_K: codes 0..63 used unsigned, the -32 bias applied through the
 * activation sums: sum (q-32)*a = sum q*a - 32 * bsum. Signed int8 scales
 * per 16. */
KZ_INLINE void q6k_tile(int64_t n, const void *w, const unsigned char *act, size_t astride, float *out,
                        int64_t ostride, const int nt)
{
    __m256 acc[KZ_NT_K];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(15);
    for (int64_t i = 0; i < n / KZ_QK_K; i++) {
        const struct kz_block_q6_k *b = (const struct kz_block_q6_k *)w + i;
        pf_ahead(b, (int)sizeof *b);
        float d = h2f(b->d);
        __m256i f[8], sc16;
        pair_scales(load128(b->scales), f, &sc16);
        __m256i sumi[KZ_NT_K];
        for (int t = 0; t < nt; t++)
            sumi[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = load256(b->ql + 64 * h), l1 = load256(b->ql + 64 * h + 32);
            const __m256i qh = load256(b->qh + 32 * h);
            for (int k = 0; k < 4; k++) {
                /* low four bits from ql, high bits 2k..2k+1 of qh moved to bits 4..5 */
                const __m256i l = k % 2 ? l1 : l0;
                const __m256i lo = k < 2 ? _mm256_and_si256(l, low4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), low4);
                const __m256i hb = _mm256_and_si256(qh, _mm256_set1_epi8((char)(3 << (2 * k))));
                const __m256i hi = k == 0 ? _mm256_slli_epi16(hb, 4)
                                   : k == 1 ? _mm256_slli_epi16(hb, 2)
                                   : k == 2 ? hb
                                            : _mm256_srli_epi16(hb, 2);
                kq_tokens(_mm256_or_si256(lo, hi), f[4 * h + k], 4 * h + k, act, astride, i, nt, sumi);
            }
        }
        for (int t = 0; t < nt; t++) {
            const struct kz_block_q8_k *a = (const struct kz_block_q8_k *)(act + t * astride) + i;
            __m256i bias = _mm256_slli_epi32(_mm256_madd_epi16(load256(a->bsums), sc16), 5);
            acc[t] = fma_i32(d * a->d, _mm256_sub_epi32(sumi[t], bias), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        out[t * ostride] = hsum_ps(acc[t]);
}

#ifdef KZ_X86_ZMM
/* Row-lane tiles for Q8_0 and Q4_0 (zmm only): lane l of every vector
 * belongs to weight row r0 + l, 16 rows at a time. Per block, the 16 rows'
 * codes are transposed in registers into 8 vectors G[k] holding bytes
 * 4k..4k+3 of each row (unsigned: Q4_0 codes, Q8_0 codes + 128), then for
 * each token 8 vpdpbusd against its bytes 4k..4k+3 broadcast from memory
 * give the 16 rows' exact block dot products in one int32 vector (started
 * at the token's -B * sum(a), so the bias is gone too). The block scales
 * then cost one conversion, one product and one FMA per 16 rows and token,
 * the transposition is paid once per block for all tokens of the tile, and
 * the 16 results of a token are one store. */
#define KZ_TR_ROWS 16
#define KZ_TR_TOK 16 /* tokens per tile: one accumulator each */
/* Fewest tokens that take this path: one for Q4_0 (its unpacking is then
 * still cheaper than the one-row tile's; but a single token goes to
 * dec_rows_q4_0_grp first for rows of a multiple of 256 up to 16384
 * elements, and to dec_rows_q4_0 for other rows up to 16352), two for Q8_0
 * (the one-row tile streams a single token faster). */
#define KZ_TR_MIN_TOK(wtype) ((wtype) == KZ_DT_Q4_0 ? 1 : 2)

/* ds[t * nb + i] = scale of block i of token t, bs[...] = -B * sum of its codes */
static void tr_prep(int bias, const unsigned char *act, size_t astride, int nt, int64_t nb, float *ds, int32_t *bs)
{
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int t = 0; t < nt; t++, ds += nb, bs += nb) {
        const struct kz_block_q8_0 *a = (const struct kz_block_q8_0 *)(act + t * astride);
        for (int64_t i = 0; i < nb; i++) {
            ds[i] = h2f(a[i].d);
            __m256i v = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, load256(a[i].qs)), ones16);
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
            h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 1));
            bs[i] = -bias * _mm_cvtsi128_si32(h);
        }
    }
}

/* 4 x 4 transpose of dwords inside each 128-bit chunk: chunk L of out[m]
 * = dword m of chunk L of in[0], in[1], in[2], in[3] */
KZ_INLINE void tr4x4(__m512i in[4], __m512i out[4])
{
    __m512i a = _mm512_unpacklo_epi32(in[0], in[1]), b = _mm512_unpackhi_epi32(in[0], in[1]);
    __m512i c = _mm512_unpacklo_epi32(in[2], in[3]), d = _mm512_unpackhi_epi32(in[2], in[3]);
    out[0] = _mm512_unpacklo_epi64(a, c);
    out[1] = _mm512_unpackhi_epi64(a, c);
    out[2] = _mm512_unpacklo_epi64(b, d);
    out[3] = _mm512_unpackhi_epi64(b, d);
}

KZ_INLINE __m512i load4x128(const uint8_t *p0, const uint8_t *p1, const uint8_t *p2, const uint8_t *p3)
{
    __m512i v = _mm512_castsi128_si512(load128(p0));
    v = _mm512_inserti32x4(v, load128(p1), 1);
    v = _mm512_inserti32x4(v, load128(p2), 2);
    return _mm512_inserti32x4(v, load128(p3), 3);
}

/* 16 bytes at offset off of each of 16 rows, transposed: lane l of t[m] =
 * bytes 4m..4m+3 of row l's 16 (z[j] chunk L = row 4L + j, so chunk L of
 * t[m] is rows 4L..4L+3) */
KZ_INLINE void tr16(const unsigned char *const row[KZ_TR_ROWS], size_t off, __m512i t[4])
{
    __m512i z[4];
    for (int j = 0; j < 4; j++)
        z[j] = load4x128(row[j] + off, row[4 + j] + off, row[8 + j] + off, row[12 + j] + off);
    tr4x4(z, t);
}

/* Block i of 16 rows (row[l], l < 16) as G[k] (lane l = bytes 4k..4k+3 of
 * row l's codes, unsigned) and their scales. */
KZ_INLINE void tr_block(const enum leg_kind kind, const unsigned char *const row[KZ_TR_ROWS], __m512i offs, int64_t i,
                        __m512i G[8], __m512 *dw)
{
    const size_t bsize = (size_t)leg_block_size(kind);
    __m512i z[4], t[4];
    if (kind == L_Q4_0) {
        tr16(row, (size_t)i * bsize + offsetof(struct kz_block_q4_0, qs), t);
        const __m512i low4 = _mm512_set1_epi8(15);
        for (int m = 0; m < 4; m++) {
            G[m] = _mm512_and_si512(t[m], low4);                         /* elements 4m .. 4m+3 */
            G[4 + m] = _mm512_and_si512(_mm512_srli_epi16(t[m], 4), low4); /* 16 + 4m .. */
        }
    } else {
        const struct kz_block_q8_0 *b[KZ_TR_ROWS];
        for (int l = 0; l < KZ_TR_ROWS; l++)
            b[l] = (const struct kz_block_q8_0 *)row[l] + i;
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        for (int half = 0; half < 2; half++) {
            /* rows 8 half .. 8 half + 7: z[j] = [row j | row 4 + j] (32 bytes each) */
            const int r = 8 * half;
            for (int j = 0; j < 4; j++)
                z[j] = _mm512_inserti64x4(_mm512_castsi256_si512(load256(b[r + j]->qs)), load256(b[r + 4 + j]->qs), 1);
            /* chunks of t[m]: rows r..r+3 dword m, rows r..r+3 dword 4+m, rows r+4..r+7 dword m, ... 4+m */
            tr4x4(z, t);
            for (int m = 0; m < 4; m++) {
                if (half == 0) {
                    G[m] = t[m];
                    G[4 + m] = t[m];
                } else { /* chunks 0, 2 of the first half and 0, 2 of this one; then 1, 3 */
                    G[m] = _mm512_xor_si512(_mm512_shuffle_i32x4(G[m], t[m], 0x88), flip);
                    G[4 + m] = _mm512_xor_si512(_mm512_shuffle_i32x4(G[4 + m], t[m], 0xdd), flip);
                }
            }
        }
    }
    /* the 16 f16 scales: one gather of the dwords at the blocks' starts (the
     * scale and the first code bytes), truncated to their low halves */
    __m512i hd = _mm512_i32gather_epi32(offs, (const void *)(row[0] + (size_t)i * bsize), 1);
    *dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(hd));
}

/* rows row[0..15] (the ones past mr repeat row 0; their lanes are not
 * stored) x nt tokens -> out[t * ostride + l], l < mr. The 16 rows are one
 * contiguous span of memory, read as 16 interleaved streams, which the
 * hardware prefetchers follow poorly: so while a tile runs, it prefetches
 * the next tile's span (pf, 16 rows or NULL), one block's worth per block. */
KZ_INLINE void tr_tile(const enum leg_kind kind, int64_t n, const unsigned char *w, size_t wstride, int mr,
                       const unsigned char *act, size_t astride, const float *ds, const int32_t *bs, float *out,
                       int64_t ostride, const unsigned char *pf, const int nt)
{
    const size_t pf_step = KZ_TR_ROWS * (size_t)leg_block_size(kind);
    const int64_t nb = n / 32;
    const unsigned char *row[KZ_TR_ROWS];
    int32_t off[KZ_TR_ROWS];
    for (int l = 0; l < KZ_TR_ROWS; l++) {
        off[l] = l < mr ? (int32_t)((size_t)l * wstride) : 0;
        row[l] = w + off[l];
    }
    const __m512i offs = _mm512_loadu_si512((const void *)off);
    __m512 acc[KZ_TR_TOK];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        __m512i G[8];
        __m512 dw;
        tr_block(kind, row, offs, i, G, &dw);
        if (pf)
            for (size_t o = 0; o < pf_step; o += 64)
                _mm_prefetch((const char *)pf + (size_t)i * pf_step + o, _MM_HINT_T0);
        for (int t = 0; t < nt; t++) {
            const struct kz_block_q8_0 *a = (const struct kz_block_q8_0 *)(act + (size_t)t * astride) + i;
            __m512i s = _mm512_set1_epi32(bs[t * nb + i]);
            for (int k = 0; k < 8; k++) {
                int32_t g;
                memcpy(&g, a->qs + 4 * k, 4);
                s = _mm512_dpbusd_epi32(s, G[k], _mm512_set1_epi32(g));
            }
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(ds[t * nb + i])), acc[t]);
        }
    }
    const __mmask16 keep = (__mmask16)((1u << mr) - 1);
    for (int t = 0; t < nt; t++)
        _mm512_mask_storeu_ps(out + t * ostride, keep, acc[t]);
}

#define KZ_TR_CASE(kind, k) \
    case k: tr_tile(kind, n, w, wstride, mr, act, astride, ds, bs, out, ostride, pf, k); break;
#define KZ_TR(name, kind)                                                                            \
    static void name(int64_t n, const unsigned char *w, size_t wstride, int mr, const unsigned char *act, \
                     size_t astride, const float *ds, const int32_t *bs, float *out, int64_t ostride,      \
                     const unsigned char *pf, int nt)                                                  \
    {                                                                                                \
        KZ_ASSERT(mr >= 1 && mr <= KZ_TR_ROWS && nt >= 1 && nt <= KZ_TR_TOK);                        \
        switch (nt) {                                                                                \
            KZ_TR_CASE(kind, 1) KZ_TR_CASE(kind, 2) KZ_TR_CASE(kind, 3) KZ_TR_CASE(kind, 4)          \
            KZ_TR_CASE(kind, 5) KZ_TR_CASE(kind, 6) KZ_TR_CASE(kind, 7) KZ_TR_CASE(kind, 8)          \
            KZ_TR_CASE(kind, 9) KZ_TR_CASE(kind, 10) KZ_TR_CASE(kind, 11) KZ_TR_CASE(kind, 12)       \
            KZ_TR_CASE(kind, 13) KZ_TR_CASE(kind, 14) KZ_TR_CASE(kind, 15) KZ_TR_CASE(kind, 16)      \
        default: break;                                                                              \
        }                                                                                            \
    }
KZ_TR(tr_q4_0, L_Q4_0)
KZ_TR(tr_q8_0, L_Q8_0)

typedef void (*tr_fn)(int64_t n, const unsigned char *w, size_t wstride, int mr, const unsigned char *act,
                      size_t astride, const float *ds, const int32_t *bs, float *out, int64_t ostride,
                      const unsigned char *pf, int nt);

/* W rows [r0, r1) x n_tok Q8_0 activation rows with tr tiles; kept out of
 * x_gemm_rows so its prep buffers are not on the stack of the other paths.
 * Rows go in chunks that stay in L2 while the token tiles pass; the tokens'
 * prep is done once when it fits (else once per tile and chunk). */
enum { KZ_TR_PREP = 16 * KZ_PREP_BLOCKS, KZ_TR_CHUNK_BYTES = 256 * 1024 };

static __attribute__((noinline)) void tr_gemm_rows(tr_fn tile, int bias, int64_t cols, const unsigned char *w,
                                                   size_t wrow, const unsigned char *act, size_t arow, int n_tok,
                                                   float *out, int64_t out_stride, int64_t r0, int64_t r1)
{
    const int64_t nb = cols / 32;
    _Alignas(64) float ds[KZ_TR_PREP];
    _Alignas(64) int32_t bs[KZ_TR_PREP];
    KZ_ASSERT(nb <= KZ_PREP_BLOCKS && wrow * (KZ_TR_ROWS - 1) <= INT32_MAX); /* prep room, gather offsets */
    const int once = n_tok * nb <= KZ_TR_PREP;
    if (once)
        tr_prep(bias, act, arow, n_tok, nb, ds, bs);
    int64_t chunk = n_tok <= KZ_TR_TOK ? r1 - r0 : (int64_t)(KZ_TR_CHUNK_BYTES / wrow);
    chunk = chunk < KZ_TR_ROWS ? KZ_TR_ROWS : chunk - chunk % KZ_TR_ROWS;
    for (int64_t c0 = r0; c0 < r1; c0 += chunk) {
        int64_t c1 = c0 + chunk < r1 ? c0 + chunk : r1;
        for (int t0 = 0; t0 < n_tok; t0 += KZ_TR_TOK) {
            int nt = n_tok - t0 < KZ_TR_TOK ? n_tok - t0 : KZ_TR_TOK;
            const unsigned char *at = act + (size_t)t0 * arow;
            size_t p0 = once ? (size_t)t0 * (size_t)nb : 0;
            if (!once)
                tr_prep(bias, at, arow, nt, nb, ds, bs);
            for (int64_t r = c0; r < c1; r += KZ_TR_ROWS) {
                int mr = c1 - r < KZ_TR_ROWS ? (int)(c1 - r) : KZ_TR_ROWS;
                /* the next tile: the next 16 rows, or back to this chunk's first ones for the next tokens */
                int64_t nx = r + 2 * KZ_TR_ROWS <= c1 ? r + KZ_TR_ROWS : t0 + KZ_TR_TOK < n_tok ? c0 : -1;
                const unsigned char *pf = nx >= 0 ? w + (size_t)nx * wrow : NULL;
                tile(cols, w + (size_t)r * wrow, wrow, mr, at, arow, ds + p0, bs + p0,
                     out + (size_t)t0 * (size_t)out_stride + r, out_stride, pf, nt);
            }
        }
    }
}
#endif

#ifdef KZ_X86_ZMM
/* Register-blocked Q6_K for a few activation rows (zmm only; from
 * KZ_KT_MIN_TOK tokens on, the rows-in-lanes tile below is faster):
 * KZ_KMR weight rows x KZ_KNR tokens. Per super-block, each 64-element
 * step holds four groups of 16; the codes (0..63, bias -32) times the
 * activations go to int16 pairs (pmaddubsw, exact) and are weighted by the
 * signed 8-bit group scales straight into one int32 accumulator per pair
 * (vpdpwssd). Once per super-block the sum goes to float, less the code
 * bias, taken out in integers as 32 * (bsums . scales).
 *
 * One row by eight tokens, not two by four (chosen on the Q4_K tile of
 * the same shape that the row-lane tile replaced): a super-block's scales
 * then serve eight tokens instead of four, and the 16 accumulators leave
 * room for the rest, where the 2 x 4 shape spilled; 1 x 12 was no faster. */
#define KZ_KMR 1
#define KZ_KNR 8

KZ_INLINE void q6k_blk(int64_t n, const unsigned char *w, size_t wstride, const unsigned char *act, size_t astride,
                       float *out, int64_t ostride, const unsigned char *pf, const int mr, const int nr)
{
    __m512 acc[KZ_KMR][KZ_KNR];
    for (int r = 0; r < mr; r++)
        for (int t = 0; t < nr; t++)
            acc[r][t] = _mm512_setzero_ps();
    const __m512i low4 = _mm512_set1_epi8(15), low2 = _mm512_set1_epi8(3);
    /* qh bit pairs: per 256-bit half, shift counts 0 | 2 (steps 2h) and 4 | 6 (steps 2h + 1) */
    const __m512i sh_lo = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    const __m512i sh_hi = _mm512_add_epi16(sh_lo, _mm512_set1_epi16(4));
    const size_t pf_step = (size_t)KZ_KMR * (wstride / (size_t)(n / KZ_QK_K));
    for (int64_t i = 0; i < n / KZ_QK_K; i++) {
        if (pf)
            for (size_t o = 0; o < pf_step; o += 64)
                _mm_prefetch((const char *)pf + (size_t)i * pf_step + o, _MM_HINT_T0);
        const struct kz_block_q6_k *b[KZ_KMR];
        __m512i sc16[KZ_KMR];
        for (int r = 0; r < mr; r++) {
            b[r] = (const struct kz_block_q6_k *)(w + (size_t)r * wstride) + i;
            sc16[r] = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(load128(b[r]->scales)));
        }
        __m512i isum[KZ_KMR][KZ_KNR];
        for (int r = 0; r < mr; r++)
            for (int t = 0; t < nr; t++)
                isum[r][t] = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            const int h = c / 2, j = c % 2;
            /* int16 lane k (elements 2k, 2k+1 of the step) takes scale 4c + k/8 */
            const __m512i pick = _mm512_add_epi16(_mm512_set1_epi16((short)(4 * c)),
                                                  _mm512_srli_epi16(_mm512_setr_epi32(
                                                      0x00010000, 0x00030002, 0x00050004, 0x00070006,
                                                      0x00090008, 0x000b000a, 0x000d000c, 0x000f000e,
                                                      0x00110010, 0x00130012, 0x00150014, 0x00170016,
                                                      0x00190018, 0x001b001a, 0x001d001c, 0x001f001e), 3));
            __m512i q[KZ_KMR], f[KZ_KMR];
            for (int r = 0; r < mr; r++) {
                __m512i l = _mm512_loadu_si512((const void *)(b[r]->ql + 64 * h));
                __m512i qh = _mm512_broadcast_i64x4(load256(b[r]->qh + 32 * h));
                __m512i hi = _mm512_and_si512(_mm512_srlv_epi16(qh, j ? sh_hi : sh_lo), low2);
                __m512i lo = _mm512_and_si512(j ? _mm512_srli_epi16(l, 4) : l, low4);
                q[r] = _mm512_or_si512(lo, _mm512_slli_epi16(hi, 4));
                f[r] = _mm512_permutexvar_epi16(pick, sc16[r]);
            }
            for (int t = 0; t < nr; t++) {
                const struct kz_block_q8_k *a = (const struct kz_block_q8_k *)(act + (size_t)t * astride) + i;
                __m512i av = _mm512_loadu_si512((const void *)(a->qs + 64 * c));
                for (int r = 0; r < mr; r++)
                    isum[r][t] = _mm512_dpwssd_epi32(isum[r][t], _mm512_maddubs_epi16(q[r], av), f[r]);
            }
        }
        for (int r = 0; r < mr; r++) {
            __m512 d = _mm512_set1_ps(h2f(b[r]->d));
            for (int t = 0; t < nr; t++) {
                const struct kz_block_q8_k *a = (const struct kz_block_q8_k *)(act + (size_t)t * astride) + i;
                __m256i bias = _mm256_slli_epi32(
                    _mm256_madd_epi16(load256(a->bsums), _mm512_castsi512_si256(sc16[r])), 5);
                __m512i v = _mm512_sub_epi32(isum[r][t], _mm512_zextsi256_si512(bias));
                acc[r][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(v), d), _mm512_set1_ps(a->d), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < mr; r++)
        for (int t = 0; t < nr; t++)
            out[t * ostride + r] = kv_hsum(acc[r][t]);
}

/* Q4_K, Q5_K and Q6_K for several tokens with the rows in lanes, as
 * tr_tile does for Q4_0. The 1 x 8 tile above (Q4_K and Q5_K had one of the
 * same shape) pays, per (row, token, super-block), a pmaddubsw and a
 * vpdpwssd per 64 elements and a float epilogue as long as its products; here one vpdpbusd does 16 rows x 4
 * elements against one broadcast activation dword, and the float work (one
 * conversion and one FMA per 16 rows and scale group) is spread over 16
 * rows.
 *
 * The weights are first laid out once for all tokens in a panel of 16
 * rows x up to KZ_KT_SB super-blocks (about 22 KiB, so that it and a token
 * tile's activations stay in L1): codes 0..63 as bytes, transposed; group
 * scales as floats (d * sc; groups of 32 elements in Q4_K / Q5_K, 16 in
 * Q6_K); and the integer pairs that meet the activations' bsums (sums of
 * 16 codes, read as pairs straight from the Q8_K block) in one vpdpwssd
 * per 32 elements: the mins (m, m) of Q4_K / Q5_K with -dmin, or the
 * scales (sc, sc') of Q6_K with -32 d for its code bias. A super-block of
 * 16 rows and one token is then 64 + 8 integer products and about 27
 * (Q4_K) or 35 (Q6_K) other vector operations. */
#define KZ_KT_SB 4  /* super-blocks per panel */
#define KZ_KT_TOK 8 /* tokens per pass over a panel: two accumulators each */
/* Fewest tokens that take this path: from two tokens on it was faster than
 * the 1 x 8 tile it replaced for Q4_K and Q5_K (1.3-2.1x); Q6_K's panel,
 * three bit fields from two arrays, costs more, and its 1 x 8 tile wins
 * below six. */
#define KZ_KT_MIN_TOK(wtype) ((wtype) == KZ_DT_Q6_K ? 6 : 2)

struct kt_panel {
    _Alignas(64) uint8_t g[KZ_KT_SB][64][64]; /* [super-block][dword k]: lane l = codes 4k..4k+3 of row l */
    _Alignas(64) float sc[KZ_KT_SB][16][16];  /* d * scale of group j, per row */
    _Alignas(64) int32_t mn[KZ_KT_SB][8][16]; /* int16 pair meeting bsums 2j, 2j+1, per row */
    _Alignas(64) float mscale[KZ_KT_SB][16];  /* what that sum is scaled by (-dmin, or -32 d), per row */
};

enum kt_kind { KT_Q4_K, KT_Q5_K, KT_Q6_K };

KZ_INLINE __m512i kt_bits(__m512i v, int shift, int mask)
{
    return _mm512_and_si512(_mm512_srli_epi16(v, (unsigned)shift), _mm512_set1_epi8((char)mask));
}

/* The codes of one Q4_K / Q5_K super-block (at base in each row) into g. */
KZ_INLINE void kt_codes_q4k(const unsigned char *const row[KZ_TR_ROWS], size_t base, const int five, uint8_t g[64][64])
{
    const size_t qs = base + (five ? offsetof(struct kz_block_q5_k, qs) : offsetof(struct kz_block_q4_k, qs));
    __m512i hq[8]; /* Q5_K: lane l of hq[k] = qh[4k..4k+3] of row l (Q4_K: not set, not read) */
    if (five) {
        tr16(row, base + offsetof(struct kz_block_q5_k, qh), hq);
        tr16(row, base + offsetof(struct kz_block_q5_k, qh) + 16, hq + 4);
    }
    /* bytes 32c + 4k' of qs: sub-block 2c (low nibbles) and 2c + 1 (high), elements 4k'.. */
    for (int c = 0; c < 4; c++)
        for (int h = 0; h < 2; h++) {
            __m512i t[4];
            tr16(row, qs + 32 * (size_t)c + 16 * (size_t)h, t);
            for (int m = 0; m < 4; m++) {
                const int k = 4 * h + m;
                __m512i lo = kt_bits(t[m], 0, 15), hi = kt_bits(t[m], 4, 15);
                if (five) { /* bit 4 of element e of sub-block j = bit j of qh[e] */
                    lo = _mm512_or_si512(lo, _mm512_slli_epi16(kt_bits(hq[k], 2 * c, 1), 4));
                    hi = _mm512_or_si512(hi, _mm512_slli_epi16(kt_bits(hq[k], 2 * c + 1, 1), 4));
                }
                _mm512_store_si512((void *)g[8 * (2 * c) + k], lo);
                _mm512_store_si512((void *)g[8 * (2 * c + 1) + k], hi);
            }
        }
}

/* The codes of one Q6_K super-block. In half h (128 elements), dword D
 * (elements 4D..4D+3) takes its low 4 bits from dword D % 16 of ql[64h..]
 * (low nibbles for D < 16, high ones after) and its top 2 bits from dword
 * D % 8 of qh[32h..], bits 2 (D / 8) and up. */
KZ_INLINE void kt_codes_q6k(const unsigned char *const row[KZ_TR_ROWS], size_t base, uint8_t g[64][64])
{
    for (int h = 0; h < 2; h++) {
        __m512i ql[16], qh[8];
        for (int q = 0; q < 4; q++)
            tr16(row, base + offsetof(struct kz_block_q6_k, ql) + 64 * (size_t)h + 16 * (size_t)q, ql + 4 * q);
        for (int u = 0; u < 2; u++)
            tr16(row, base + offsetof(struct kz_block_q6_k, qh) + 32 * (size_t)h + 16 * (size_t)u, qh + 4 * u);
        for (int D = 0; D < 32; D++) {
            __m512i lo = kt_bits(ql[D % 16], D < 16 ? 0 : 4, 15);
            __m512i hi = kt_bits(qh[D % 8], 2 * (D / 8), 3);
            _mm512_store_si512((void *)g[32 * h + D], _mm512_or_si512(lo, _mm512_slli_epi16(hi, 4)));
        }
    }
}

/* byte b of each dword of v, zero- or sign-extended */
KZ_INLINE __m512i kt_byte(__m512i v, int b) { return _mm512_and_si512(_mm512_srli_epi32(v, 8u * (unsigned)b), _mm512_set1_epi32(0xff)); }
KZ_INLINE __m512i kt_sbyte(__m512i v, int b) { return _mm512_srai_epi32(_mm512_slli_epi32(v, 24u - 8u * (unsigned)b), 24); }

/* The scales of one Q4_K / Q5_K super-block, from its first 16 bytes (d,
 * dmin and the 12-byte packing of q4k_scales, here on 16 rows at once). */
KZ_INLINE void kt_head_q4k(const unsigned char *const row[KZ_TR_ROWS], size_t base, float sc[16][16],
                           int32_t mn[8][16], float mscale[16])
{
    __m512i t[4]; /* t[0] = d | dmin << 16, t[1..3] = the three words of the packing */
    tr16(row, base, t);
    const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(t[0]));
    const __m512 dm = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(t[0], 16)));
    _mm512_store_ps(mscale, _mm512_sub_ps(_mm512_setzero_ps(), dm));
    const __m512i m6 = _mm512_set1_epi32(0x3f3f3f3f), m4 = _mm512_set1_epi32(0x0f0f0f0f),
                  m2 = _mm512_set1_epi32(0x03030303);
    const __m512i scw[2] = {_mm512_and_si512(t[1], m6),
                            _mm512_or_si512(_mm512_and_si512(t[3], m4),
                                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(t[1], 6), m2), 4))};
    const __m512i mw[2] = {_mm512_and_si512(t[2], m6),
                           _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(t[3], 4), m4),
                                           _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(t[2], 6), m2), 4))};
    for (int j = 0; j < 8; j++) {
        _mm512_store_ps(sc[j], _mm512_mul_ps(_mm512_cvtepi32_ps(kt_byte(scw[j / 4], j % 4)), d));
        const __m512i m = kt_byte(mw[j / 4], j % 4);
        _mm512_store_si512((void *)mn[j], _mm512_or_si512(m, _mm512_slli_epi32(m, 16)));
    }
}

/* The scales of one Q6_K super-block: 16 signed bytes at 192, d at 208
 * (read as the top of the 16 bytes that end the block). */
KZ_INLINE void kt_head_q6k(const unsigned char *const row[KZ_TR_ROWS], size_t base, float sc[16][16],
                           int32_t mn[8][16], float mscale[16])
{
    __m512i t[4], e[4];
    tr16(row, base + offsetof(struct kz_block_q6_k, scales), t);
    tr16(row, base + sizeof(struct kz_block_q6_k) - 16, e);
    const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(e[3], 16)));
    _mm512_store_ps(mscale, _mm512_mul_ps(d, _mm512_set1_ps(-32.0f)));
    for (int j = 0; j < 16; j++)
        _mm512_store_ps(sc[j], _mm512_mul_ps(_mm512_cvtepi32_ps(kt_sbyte(t[j / 4], j % 4)), d));
    for (int m = 0; m < 4; m++) {
        /* int16 lanes of the dword bytes b0..b3: even (b0, b2) and odd (b1, b3), sign-extended */
        __m512i ev = _mm512_srai_epi16(_mm512_slli_epi16(t[m], 8), 8), od = _mm512_srai_epi16(t[m], 8);
        const __mmask32 high = 0xaaaaaaaau;
        _mm512_store_si512((void *)mn[2 * m], _mm512_mask_blend_epi16(high, ev, _mm512_slli_epi32(od, 16)));
        _mm512_store_si512((void *)mn[2 * m + 1], _mm512_mask_blend_epi16(high, _mm512_srli_epi32(ev, 16), od));
    }
}

/* Super-blocks i0 .. i0 + nsb - 1 of rows row[0..15] into p. */
KZ_INLINE void kt_prep(const unsigned char *const row[KZ_TR_ROWS], int64_t i0, int nsb, const enum kt_kind kind,
                       struct kt_panel *p)
{
    const size_t bsize = kind == KT_Q6_K   ? sizeof(struct kz_block_q6_k)
                         : kind == KT_Q5_K ? sizeof(struct kz_block_q5_k)
                                           : sizeof(struct kz_block_q4_k);
    for (int s = 0; s < nsb; s++) {
        const size_t base = (size_t)(i0 + s) * bsize;
        if (kind == KT_Q6_K) {
            kt_codes_q6k(row, base, p->g[s]);
            kt_head_q6k(row, base, p->sc[s], p->mn[s], p->mscale[s]);
        } else {
            kt_codes_q4k(row, base, kind == KT_Q5_K, p->g[s]);
            kt_head_q4k(row, base, p->sc[s], p->mn[s], p->mscale[s]);
        }
    }
}

/* nt tokens (Q8_K rows astride apart, starting at the panel's first
 * super-block) against a panel of nsb super-blocks with ng scale groups
 * each (8 or 16); the 16 row lanes (keep: the real ones) go to
 * out[t * ostride + l], added to what is there unless first. */
KZ_INLINE void kt_tile(const struct kt_panel *p, int nsb, const unsigned char *act, size_t astride, float *out,
                       int64_t ostride, __mmask16 keep, int first, const int ng, const int nt)
{
    const int kg = 64 / ng; /* dwords per scale group */
    __m512 acc[KZ_KT_TOK];
    for (int t = 0; t < nt; t++)
        acc[t] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(keep, out + t * ostride);
    for (int s = 0; s < nsb; s++) {
        __m512 accs[KZ_KT_TOK];
        const __m512 mscale = _mm512_load_ps(p->mscale[s]);
        for (int t = 0; t < nt; t++) {
            const struct kz_block_q8_k *a = (const struct kz_block_q8_k *)(act + (size_t)t * astride) + s;
            __m512i summ = _mm512_setzero_si512();
            for (int j = 0; j < 8; j++) {
                int32_t pair;
                memcpy(&pair, a->bsums + 2 * j, 4);
                summ = _mm512_dpwssd_epi32(summ, _mm512_load_si512((const void *)p->mn[s][j]), _mm512_set1_epi32(pair));
            }
            accs[t] = _mm512_mul_ps(_mm512_cvtepi32_ps(summ), mscale);
        }
        for (int j = 0; j < ng; j++) {
            __m512i G[8];
            for (int k = 0; k < kg; k++)
                G[k] = _mm512_load_si512((const void *)p->g[s][kg * j + k]);
            const __m512 f = _mm512_load_ps(p->sc[s][j]);
            for (int t = 0; t < nt; t++) {
                const struct kz_block_q8_k *a = (const struct kz_block_q8_k *)(act + (size_t)t * astride) + s;
                /* groups of 32: two chains, as eight dependent vpdpbusd left
                 * the ports idle (+5%); groups of 16 are faster with one (+3%) */
                const int nch = kg == 8 ? 2 : 1;
                __m512i sum[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
                for (int k = 0; k < kg; k++) {
                    int32_t g;
                    memcpy(&g, a->qs + 4 * (kg * j + k), 4);
                    sum[k % nch] = _mm512_dpbusd_epi32(sum[k % nch], G[k], _mm512_set1_epi32(g));
                }
                if (nch == 2)
                    sum[0] = _mm512_add_epi32(sum[0], sum[1]);
                accs[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[0]), f, accs[t]);
            }
        }
        for (int t = 0; t < nt; t++) {
            const struct kz_block_q8_k *a = (const struct kz_block_q8_k *)(act + (size_t)t * astride) + s;
            acc[t] = _mm512_fmadd_ps(accs[t], _mm512_set1_ps(a->d), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++)
        _mm512_mask_storeu_ps(out + t * ostride, keep, acc[t]);
}

#define KZ_KT_CASE(k) \
    case k: kt_tile(p, nsb, act, astride, out, ostride, keep, first, ng, k); break;
#define KZ_KT(name, groups)                                                                                \
    static void name(const struct kt_panel *p, int nsb, const unsigned char *act, size_t astride, float *out, \
                     int64_t ostride, __mmask16 keep, int first, int nt)                                     \
    {                                                                                                      \
        const int ng = (groups);                                                                           \
        KZ_ASSERT(nt >= 1 && nt <= KZ_KT_TOK);                                                             \
        switch (nt) {                                                                                      \
            KZ_KT_CASE(1) KZ_KT_CASE(2) KZ_KT_CASE(3) KZ_KT_CASE(4) KZ_KT_CASE(5) KZ_KT_CASE(6)            \
            KZ_KT_CASE(7) KZ_KT_CASE(8) default: break;                                                    \
        }                                                                                                  \
    }
KZ_KT(kt_tiles_32, 8)  /* Q4_K, Q5_K: scale groups of 32 */
KZ_KT(kt_tiles_16, 16) /* Q6_K: of 16 */

/* W rows [r0, r1) of a K-quant x n_tok Q8_K rows: per 16 rows and
 * KZ_KT_SB super-blocks, one panel, then every token tile over it. */
static __attribute__((noinline)) void kt_gemm_rows(enum kt_kind kind, int64_t cols, const unsigned char *w,
                                                   size_t wrow, const unsigned char *act, size_t arow, int n_tok,
                                                   float *out, int64_t out_stride, int64_t r0, int64_t r1)
{
    struct kt_panel p;
    const int64_t nsb_all = cols / KZ_QK_K;
    for (int64_t r = r0; r < r1; r += KZ_TR_ROWS) {
        const int mr = r1 - r < KZ_TR_ROWS ? (int)(r1 - r) : KZ_TR_ROWS;
        const __mmask16 keep = (__mmask16)((1u << mr) - 1);
        const unsigned char *row[KZ_TR_ROWS];
        for (int l = 0; l < KZ_TR_ROWS; l++)
            row[l] = w + (size_t)(r + (l < mr ? l : 0)) * wrow;
        for (int64_t s0 = 0; s0 < nsb_all; s0 += KZ_KT_SB) {
            const int nsb = nsb_all - s0 < KZ_KT_SB ? (int)(nsb_all - s0) : KZ_KT_SB;
            switch (kind) { /* one constant kind per call, so each inlined copy drops the others' branches */
            case KT_Q4_K: kt_prep(row, s0, nsb, KT_Q4_K, &p); break;
            case KT_Q5_K: kt_prep(row, s0, nsb, KT_Q5_K, &p); break;
            case KT_Q6_K: kt_prep(row, s0, nsb, KT_Q6_K, &p); break;
            }
            for (int t0 = 0; t0 < n_tok; t0 += KZ_KT_TOK) {
                const int nt = n_tok - t0 < KZ_KT_TOK ? n_tok - t0 : KZ_KT_TOK;
                (kind == KT_Q6_K ? kt_tiles_16 : kt_tiles_32)(
                    &p, nsb, act + (size_t)t0 * arow + (size_t)s0 * sizeof(struct kz_block_q8_k), arow,
                    out + (size_t)t0 * (size_t)out_stride + r, out_stride, keep, s0 == 0, nt);
            }
        }
    }
}

_Static_assert(KZ_KMR == 1 && KZ_KNR == 8, "KZ_KBLK below lists the shapes 1 x 1..8");
#define KZ_KBLK_CASE(m, k, call) \
    case (m) * 16 + (k): call(m, k); break;
#define KZ_KBLK(name, call)                                                                         \
    static void name(int64_t n, const unsigned char *w, size_t wstride, const unsigned char *act,   \
                     size_t astride, const float *ds, float *out, int64_t ostride,                  \
                     const unsigned char *pf, int mr, int nr)                                       \
    {                                                                                               \
        (void)ds;                                                                                   \
        KZ_ASSERT(mr >= 1 && mr <= KZ_KMR && nr >= 1 && nr <= KZ_KNR);                              \
        switch (mr * 16 + nr) {                                                                     \
            KZ_KBLK_CASE(1, 1, call) KZ_KBLK_CASE(1, 2, call) KZ_KBLK_CASE(1, 3, call)              \
            KZ_KBLK_CASE(1, 4, call) KZ_KBLK_CASE(1, 5, call) KZ_KBLK_CASE(1, 6, call)              \
            KZ_KBLK_CASE(1, 7, call) KZ_KBLK_CASE(1, 8, call) default: break;                       \
        }                                                                                           \
    }
#endif

/* Q3_K (codes 0..7 unsigned, bias -4 via bsums, signed 6-bit scales) and
 * Q2_K (codes 0..3, 4-bit scale and min per 16). Same element order:
 * vector 4h + j holds e = 128h + 32j + t, bits 2j..2j+1 of qs[32h + t]. */
KZ_INLINE void q23k_tile(int64_t n, const void *w, const unsigned char *act, size_t astride, float *out,
                         int64_t ostride, const int nt, const int three)
{
    __m256 acc[KZ_NT_K];
    for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    const __m256i low2 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / KZ_QK_K; i++) {
        __m256i f[8], sc16, mins = _mm256_setzero_si256(), hm = _mm256_setzero_si256();
        float d, dmin = 0.0f;
        const uint8_t *qs;
        const int bsz = three ? (int)sizeof(struct kz_block_q3_k) : (int)sizeof(struct kz_block_q2_k);
        pf_ahead((const char *)w + (size_t)i * (size_t)bsz, bsz);
        if (three) {
            const struct kz_block_q3_k *b = (const struct kz_block_q3_k *)w + i;
            d = h2f(b->d);
            qs = b->qs;
            int8_t sc[16];
            for (int s = 0; s < 16; s++)
                sc[s] = (int8_t)(kz_q3k_scale(b->scales, s) - 32);
            pair_scales(load128(sc), f, &sc16);
            hm = load256(b->hmask);
        } else {
            const struct kz_block_q2_k *b = (const struct kz_block_q2_k *)w + i;
            d = h2f(b->d);
            dmin = h2f(b->dmin);
            qs = b->qs;
            __m128i raw = load128(b->scales);
            pair_scales(_mm_and_si128(raw, _mm_set1_epi8(15)), f, &sc16);
            mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(15)));
        }
        __m256i sumi[KZ_NT_K];
        for (int t = 0; t < nt; t++)
            sumi[t] = _mm256_setzero_si256();
        for (int v = 0; v < 8; v++) {
            /* vector v = 4h + j: bits 2j..2j+1 of qs[32h + l]; Q3_K's bit 2 is bit v of hmask[l] */
            const __m256i x = load256(qs + 32 * (v / 4));
            __m256i q = _mm256_and_si256(v % 4 ? _mm256_srli_epi16(x, 2 * (v % 4)) : x, low2);
            if (three) {
                __m256i bit = _mm256_set1_epi8((char)(1 << v));
                __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit);
                q = _mm256_or_si256(q, _mm256_and_si256(set, _mm256_set1_epi8(4)));
            }
            kq_tokens(q, f[v], v, act, astride, i, nt, sumi);
        }
        for (int t = 0; t < nt; t++) {
            const struct kz_block_q8_k *a = (const struct kz_block_q8_k *)(act + t * astride) + i;
            __m256i bs = load256(a->bsums);
            if (three) {
                __m256i bias = _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 2);
                acc[t] = fma_i32(d * a->d, _mm256_sub_epi32(sumi[t], bias), acc[t]);
            } else {
                acc[t] = fma_i32(d * a->d, sumi[t], acc[t]);
                acc[t] = fma_i32(-(dmin * a->d), _mm256_madd_epi16(bs, mins), acc[t]);
            }
        }
    }
    for (int t = 0; t < nt; t++)
        out[t * ostride] = hsum_ps(acc[t]);
}

// ---------------------------------------------------------------- F32 / F16 / BF16 (f32 activations)

enum f_kind { F_F32, F_F16, F_BF16 };

KZ_INLINE __m256 f_load8(const enum f_kind kind, const void *w, int64_t i)
{
    switch (kind) {
    case F_F16:
        return _mm256_cvtph_ps(load128((const uint16_t *)w + i));
    case F_BF16:
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(load128((const uint16_t *)w + i)), 16));
    case F_F32:
    default:
        return _mm256_loadu_ps((const float *)w + i);
    }
}

KZ_INLINE float f_load1(const enum f_kind kind, const void *w, int64_t i)
{
    switch (kind) {
    case F_F16:
        return kz_fp16_to_fp32(((const uint16_t *)w)[i]);
    case F_BF16:
        return kz_bf16_to_fp32(((const uint16_t *)w)[i]);
    case F_F32:
    default:
        return ((const float *)w)[i];
    }
}

#ifdef KZ_X86_ZMM
KZ_INLINE __m512 f_load16(const enum f_kind kind, const void *w, int64_t i)
{
    switch (kind) {
    case F_F16:
        return _mm512_cvtph_ps(load256((const uint16_t *)w + i));
    case F_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load256((const uint16_t *)w + i)), 16));
    case F_F32:
    default:
        return _mm512_loadu_ps((const float *)w + i);
    }
}

/* One F32 row against one f32 vector on zmm (f_row; F16 and BF16 go to
 * the ymm loop there). Four FMA chains: with two, each waited on its own
 * latency. f_row64 takes the whole runs of 64, with or without prefetches,
 * and returns where it stopped; the last n % 16 elements in scalar. */
KZ_INLINE int64_t f_row64(int64_t n, const float *w, const float *x, __m512 acc[4], const int pf)
{
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        if (pf) /* each line twice, as in f_row */
            pf_every(w + i, 64 * 4, 32);
        for (int k = 0; k < 4; k++)
            acc[k] = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16 * k), _mm512_loadu_ps(x + i + 16 * k), acc[k]);
    }
    return i;
}

KZ_INLINE float f_row16(int64_t n, const float *w, const float *x)
{
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    /* Rows of more than 4096 elements (an activation of 16 KiB and more)
     * run slower from memory, and there the prefetch pays: one core, 2048
     * x 5632, 28.7-29.2 GB/s against 22.4-22.9 without it (and 27.4 with
     * f_row's ymm loop); at 2048 columns 30.2-30.6 without it, 28.3 with. */
    const int pf = n > 4096 || !amd_cpu();
    int64_t i = pf ? f_row64(n, w, x, acc, 1) : f_row64(n, w, x, acc, 0);
    for (; i + 16 <= n; i += 16)
        acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), acc[0]);
    float s = kv_hsum(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
    for (; i < n; i++)
        s += w[i] * x[i];
    return s;
}
#endif

/* One row against one f32 vector (one token; several take f_blk below).
 * F32 on avx512 takes f_row16. Otherwise four ymm FMA chains, 32 elements
 * a step, with a prefetch at each 32 bytes of weights, so every line is
 * asked for twice. Decode reads these weights from memory; on an AMD EPYC
 * (Zen 4), one core, a 2048 x 5632 F16 matrix read at 32.6 GB/s this way,
 * against 19-20 with four zmm chains asking once per line (the loop F16
 * had on avx512), 31-33 with zmm asking twice, 23 with these four ymm
 * chains asking once, and 30 with two ymm chains asking twice (the loop
 * avx2 had); at 2048 columns, 34.6 against 23.6 (zmm) and 33.9 (two
 * chains). Why a second prefetch of a line helps is not known. In L2 the
 * zmm loop without prefetches is faster (58 against 40-43 GB/s), but F16
 * and BF16 weights of a model hardly ever fit in a cache. Any n >= 0; the
 * last n % 8 elements in scalar. */
KZ_INLINE float f_row(const enum f_kind kind, int64_t n, const void *w, const float *x)
{
#ifdef KZ_X86_ZMM
    if (kind == F_F32)
        return f_row16(n, w, x);
#endif
    const size_t esz = kind == F_F32 ? 4 : 2;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        pf_every((const char *)w + (size_t)i * esz, 32 * (int)esz, 32); /* each line twice */
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(f_load8(kind, w, i + 8 * k), _mm256_loadu_ps(x + i + 8 * k), acc[k]);
    }
    for (; i + 8 <= n; i += 8)
        acc[0] = _mm256_fmadd_ps(f_load8(kind, w, i), _mm256_loadu_ps(x + i), acc[0]);
    float s = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++)
        s += f_load1(kind, w, i) * x[i];
    return s;
}

/* Float weights (F16, BF16, F32) against two or more f32 activation rows
 * (prompts, batches): a tile of up to KZ_FMR rows by KZ_FNR tokens in
 * vector accumulators. The one-row tile for several tokens that this
 * replaced loaded an activation vector for every FMA, so the load ports
 * held it to half the FMA rate (F16 prompts at half of llama.cpp's speed
 * on an AMD EPYC); here a step loads
 * and converts KZ_FMR weight vectors and loads KZ_FNR activation vectors
 * for KZ_FMR * KZ_FNR FMAs. Every (row, token) sum runs in the same order
 * whatever the tile's shape (whole vectors, one horizontal sum, then the
 * last n % lanes elements in scalar), so a row's result does not depend on
 * which rows or tokens share its tile. */
#ifdef KZ_X86_ZMM
enum { KZ_FL = 16, KZ_FMR = 4, KZ_FNR = 6 }; /* 24 accumulators, 4 weight vectors, 1 activation vector */
#else
enum { KZ_FL = 8, KZ_FMR = 3, KZ_FNR = 4 }; /* 16 ymm registers: 12 accumulators, 3 + 1 vectors */
#endif

KZ_INLINE kvf f_loadv(const enum f_kind kind, const void *w, int64_t i)
{
#ifdef KZ_X86_ZMM
    return f_load16(kind, w, i);
#else
    return f_load8(kind, w, i);
#endif
}

KZ_INLINE void f_blk(const enum f_kind kind, int64_t n, const unsigned char *w, size_t wstride, const float *x,
                     size_t xstride, float *out, int64_t ostride, const int mr, const int nt)
{
    kvf acc[KZ_FMR][KZ_FNR];
    for (int r = 0; r < mr; r++)
        for (int t = 0; t < nt; t++)
            acc[r][t] = kv_fzero();
    int64_t i = 0;
    for (; i + KZ_FL <= n; i += KZ_FL) {
        kvf wv[KZ_FMR];
        for (int r = 0; r < mr; r++)
            wv[r] = f_loadv(kind, w + (size_t)r * wstride, i);
        for (int t = 0; t < nt; t++) {
            const kvf xv = kv_loadu(x + (size_t)t * xstride + i);
            for (int r = 0; r < mr; r++)
                acc[r][t] = kv_fma(wv[r], xv, acc[r][t]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int t = 0; t < nt; t++) {
            float v = kv_hsum(acc[r][t]);
            for (int64_t j = i; j < n; j++)
                v += f_load1(kind, w + (size_t)r * wstride, j) * x[(size_t)t * xstride + j];
            out[t * ostride + r] = v;
        }
}

typedef void (*fblk_fn)(int64_t n, const unsigned char *w, size_t wstride, const float *x, size_t xstride,
                        float *out, int64_t ostride, int nt);

/* one function per (kind, rows), the token count a constant inside */
#define KZ_FBLK_NT(k) ((k) < KZ_FNR ? (k) : KZ_FNR)
#define KZ_FBLK(name, kind, mr)                                                                                   \
    static void name(int64_t n, const unsigned char *w, size_t wstride, const float *x, size_t xstride,            \
                     float *out, int64_t ostride, int nt)                                                          \
    {                                                                                                              \
        switch (nt) {                                                                                              \
        case 1: f_blk(kind, n, w, wstride, x, xstride, out, ostride, mr, 1); break;                                \
        case 2: f_blk(kind, n, w, wstride, x, xstride, out, ostride, mr, 2); break;                                \
        case 3: f_blk(kind, n, w, wstride, x, xstride, out, ostride, mr, 3); break;                                \
        case 4: f_blk(kind, n, w, wstride, x, xstride, out, ostride, mr, KZ_FBLK_NT(4)); break;                    \
        case 5: f_blk(kind, n, w, wstride, x, xstride, out, ostride, mr, KZ_FBLK_NT(5)); break;                    \
        default: f_blk(kind, n, w, wstride, x, xstride, out, ostride, mr, KZ_FNR); break;                          \
        }                                                                                                          \
    }
KZ_FBLK(fblk_f16_m, F_F16, KZ_FMR)
KZ_FBLK(fblk_f16_1, F_F16, 1)
KZ_FBLK(fblk_bf16_m, F_BF16, KZ_FMR)
KZ_FBLK(fblk_bf16_1, F_BF16, 1)
KZ_FBLK(fblk_f32_m, F_F32, KZ_FMR)
KZ_FBLK(fblk_f32_1, F_F32, 1)

/* out (n_tok, rows [r0, r1)) for float weights; chunks of rows stay in
 * cache while the token tiles pass, as in x_gemm_rows; the rows past the
 * last whole group of KZ_FMR go one at a time */
static void f_gemm_rows(uint32_t wtype, int64_t cols, const unsigned char *w, const unsigned char *act, int n_tok,
                        float *out, int64_t out_stride, int64_t r0, int64_t r1)
{
    const fblk_fn bm = wtype == KZ_DT_F16 ? fblk_f16_m : wtype == KZ_DT_BF16 ? fblk_bf16_m : fblk_f32_m;
    const fblk_fn b1 = wtype == KZ_DT_F16 ? fblk_f16_1 : wtype == KZ_DT_BF16 ? fblk_bf16_1 : fblk_f32_1;
    const size_t wrow = kz_dtype_row_size(wtype, cols), xs = (size_t)cols;
    int64_t chunk = (int64_t)(KZ_CHUNK_BYTES / wrow);
    chunk = chunk < KZ_FMR ? KZ_FMR : chunk - chunk % KZ_FMR;
    for (int64_t c0 = r0; c0 < r1; c0 += chunk) {
        int64_t c1 = c0 + chunk < r1 ? c0 + chunk : r1;
        for (int t0 = 0; t0 < n_tok; t0 += KZ_FNR) {
            int nt = n_tok - t0 < KZ_FNR ? n_tok - t0 : KZ_FNR;
            const float *x = (const float *)act + (size_t)t0 * xs;
            float *ot = out + (size_t)t0 * (size_t)out_stride;
            int64_t r = c0;
            for (; r + KZ_FMR <= c1; r += KZ_FMR)
                bm(cols, w + (size_t)r * wrow, wrow, x, xs, ot + r, out_stride, nt);
            for (; r < c1; r++)
                b1(cols, w + (size_t)r * wrow, wrow, x, xs, ot + r, out_stride, nt);
        }
    }
}

// ---------------------------------------------------------------- tile instances

/* One function per weight type; nt is turned into a constant so each
 * instance keeps its accumulators in registers. */
#define KZ_TILE_NT(k, max) ((k) < (max) ? (k) : (max))
#define KZ_TILE_MAX(name, call, max)                                                         \
    static void name(int64_t n, const void *w, const unsigned char *act, size_t astride,     \
                     const float *prep, float *out, int64_t ostride, int nt)                 \
    {                                                                                        \
        (void)prep;                                                                          \
        KZ_ASSERT(nt >= 1 && nt <= (max));                                                   \
        switch (nt) {                                                                        \
        case 1: call(1); break;                                                              \
        case 2: call(2); break;                                                              \
        case 3: call(3); break;                                                              \
        case 4: call(KZ_TILE_NT(4, max)); break;                                             \
        case 5: call(KZ_TILE_NT(5, max)); break;                                             \
        case 6: call(KZ_TILE_NT(6, max)); break;                                             \
        case 7: call(KZ_TILE_NT(7, max)); break;                                             \
        default: call(max); break;                                                           \
        }                                                                                    \
    }
#define KZ_TILE(name, call) KZ_TILE_MAX(name, call, KZ_NT)

#define C_Q4_0(k) leg_tile(L_Q4_0, n, w, act, astride, prep, out, ostride, k)
#define C_Q4_1(k) leg_tile(L_Q4_1, n, w, act, astride, prep, out, ostride, k)
#define C_Q5_0(k) leg_tile(L_Q5_0, n, w, act, astride, prep, out, ostride, k)
#define C_Q5_1(k) leg_tile(L_Q5_1, n, w, act, astride, prep, out, ostride, k)
#define C_Q8_0(k) leg_tile(L_Q8_0, n, w, act, astride, prep, out, ostride, k)
#define C_Q2_K(k) q23k_tile(n, w, act, astride, out, ostride, k, 0)
#define C_Q3_K(k) q23k_tile(n, w, act, astride, out, ostride, k, 1)
#define C_Q4_K(k) q4k_tile(n, w, act, astride, out, ostride, k, 0)
#define C_Q5_K(k) q4k_tile(n, w, act, astride, out, ostride, k, 1)
#define C_Q6_K(k) q6k_tile(n, w, act, astride, out, ostride, k)

#ifndef KZ_X86_TILE_Q4_0
KZ_TILE(tile_q4_0, C_Q4_0)
#define KZ_X86_TILE_Q4_0 tile_q4_0
#endif
#ifndef KZ_X86_TILE_Q8_0
KZ_TILE(tile_q8_0, C_Q8_0)
#define KZ_X86_TILE_Q8_0 tile_q8_0
#endif
KZ_TILE(tile_q4_1, C_Q4_1)
KZ_TILE(tile_q5_0, C_Q5_0)
KZ_TILE(tile_q5_1, C_Q5_1)
KZ_TILE_MAX(tile_q2_k, C_Q2_K, KZ_NT_K)
KZ_TILE_MAX(tile_q3_k, C_Q3_K, KZ_NT_K)
KZ_TILE_MAX(tile_q4_k, C_Q4_K, KZ_NT_K)
KZ_TILE_MAX(tile_q5_k, C_Q5_K, KZ_NT_K)
KZ_TILE_MAX(tile_q6_k, C_Q6_K, KZ_NT_K)
/* float weights, one token only: batches take f_gemm_rows */
#define KZ_FTILE(name, kind)                                                                 \
    static void name(int64_t n, const void *w, const unsigned char *act, size_t astride,     \
                     const float *prep, float *out, int64_t ostride, int nt)                 \
    {                                                                                        \
        (void)astride, (void)prep, (void)ostride;                                            \
        KZ_ASSERT(nt == 1);                                                                  \
        out[0] = f_row(kind, n, w, (const float *)act);                                      \
    }
KZ_FTILE(tile_f32, F_F32)
KZ_FTILE(tile_f16, F_F16)
KZ_FTILE(tile_bf16, F_BF16)

/* The register-blocked tiles: one function per weight type, the edge shapes
 * (rows % KZ_MR, tokens % KZ_NR) each compiled with constant bounds. */
typedef void (*blk_fn)(int64_t n, const unsigned char *w, size_t wstride, const unsigned char *act,
                       size_t astride, const float *ds, float *out, int64_t ostride, const unsigned char *pf,
                       int mr, int nr);

#define KZ_BLK_CASE(kind, m, k)                                                              \
    case (m) * 8 + (k):                                                                      \
        blk_tile(kind, n, w, wstride, act, astride, ds, out, ostride, pf, KZ_MR, KZ_NR,      \
                 (m) < KZ_MR ? (m) : KZ_MR, (k) < KZ_NR ? (k) : KZ_NR);                      \
        break;
#define KZ_BLK_ROW(kind, m) \
    KZ_BLK_CASE(kind, m, 1) KZ_BLK_CASE(kind, m, 2) KZ_BLK_CASE(kind, m, 3) KZ_BLK_CASE(kind, m, 4)
#if KZ_MR == 4
#define KZ_BLK_CASES(kind) KZ_BLK_ROW(kind, 1) KZ_BLK_ROW(kind, 2) KZ_BLK_ROW(kind, 3) KZ_BLK_ROW(kind, 4)
#else
#define KZ_BLK_CASES(kind) KZ_BLK_ROW(kind, 1) KZ_BLK_ROW(kind, 2)
#endif
#define KZ_BLK(name, kind)                                                                          \
    static void name(int64_t n, const unsigned char *w, size_t wstride, const unsigned char *act,   \
                     size_t astride, const float *ds, float *out, int64_t ostride,                  \
                     const unsigned char *pf, int mr, int nr)                                       \
    {                                                                                               \
        KZ_ASSERT(mr >= 1 && mr <= KZ_MR && nr >= 1 && nr <= KZ_NR);                                \
        switch (mr * 8 + nr) { KZ_BLK_CASES(kind) default: break; }                                 \
    }

KZ_BLK(blk_q4_0, L_Q4_0)
KZ_BLK(blk_q5_0, L_Q5_0)
KZ_BLK(blk_q8_0, L_Q8_0)

#ifndef KZ_X86_ZMM
/* the 1 x 8 shape: one row, nr <= 8 tokens */
#define KZ_BLK8_CASE(kind, k)                                                                      \
    case k: blk_tile(kind, n, w, wstride, act, astride, ds, out, ostride, pf, 1, KZ_NR8, 1, k); break;
#define KZ_BLK8(name, kind)                                                                         \
    static void name(int64_t n, const unsigned char *w, size_t wstride, const unsigned char *act,   \
                     size_t astride, const float *ds, float *out, int64_t ostride,                  \
                     const unsigned char *pf, int mr, int nr)                                       \
    {                                                                                               \
        KZ_ASSERT(mr == 1 && nr >= 1 && nr <= KZ_NR8);                                              \
        (void)mr;                                                                                   \
        switch (nr) {                                                                               \
            KZ_BLK8_CASE(kind, 1) KZ_BLK8_CASE(kind, 2) KZ_BLK8_CASE(kind, 3) KZ_BLK8_CASE(kind, 4) \
            KZ_BLK8_CASE(kind, 5) KZ_BLK8_CASE(kind, 6) KZ_BLK8_CASE(kind, 7) KZ_BLK8_CASE(kind, 8) \
        default: break;                                                                             \
        }                                                                                           \
    }
KZ_BLK8(blk8_q4_0, L_Q4_0)
KZ_BLK8(blk8_q5_0, L_Q5_0)
KZ_BLK8(blk8_q8_0, L_Q8_0)
#endif

#ifdef KZ_X86_ZMM
#define K_Q6_K(m, k) q6k_blk(n, w, wstride, act, astride, out, ostride, pf, m, k)
KZ_KBLK(blk_q6_k, K_Q6_K)
#endif

/* The register-blocked tile for wtype and its shape (rows x tokens), or NULL. */
static blk_fn blk_for(uint32_t wtype, int n_tok, enum leg_kind *kind, int *mr, int *nr)
{
    *mr = KZ_MR, *nr = KZ_NR;
#ifndef KZ_X86_ZMM
    if (n_tok >= KZ_NR8) {
        *mr = 1, *nr = KZ_NR8;
        switch (wtype) {
        case KZ_DT_Q4_0: *kind = L_Q4_0; return blk8_q4_0;
        case KZ_DT_Q5_0: *kind = L_Q5_0; return blk8_q5_0;
        case KZ_DT_Q8_0: *kind = L_Q8_0; return blk8_q8_0;
        default: return NULL;
        }
    }
#else
    (void)n_tok;
#endif
    switch (wtype) {
    case KZ_DT_Q4_0: *kind = L_Q4_0; return blk_q4_0;
    case KZ_DT_Q5_0: *kind = L_Q5_0; return blk_q5_0;
    case KZ_DT_Q8_0: *kind = L_Q8_0; return blk_q8_0;
#ifdef KZ_X86_ZMM
    case KZ_DT_Q6_K: *mr = KZ_KMR, *nr = KZ_KNR; return blk_q6_k;
#endif
    default: return NULL;
    }
}

static tile_fn tile_for(uint32_t wtype)
{
    switch (wtype) {
    case KZ_DT_Q4_0: return KZ_X86_TILE_Q4_0;
    case KZ_DT_Q4_1: return tile_q4_1;
    case KZ_DT_Q5_0: return tile_q5_0;
    case KZ_DT_Q5_1: return tile_q5_1;
    case KZ_DT_Q8_0: return KZ_X86_TILE_Q8_0;
    case KZ_DT_Q2_K: return tile_q2_k;
    case KZ_DT_Q3_K: return tile_q3_k;
    case KZ_DT_Q4_K: return tile_q4_k;
    case KZ_DT_Q5_K: return tile_q5_k;
    case KZ_DT_Q6_K: return tile_q6_k;
    case KZ_DT_F32: return tile_f32;
    case KZ_DT_F16: return tile_f16;
    case KZ_DT_BF16: return tile_bf16;
    default: return NULL;
    }
}

// ---------------------------------------------------------------- activation quantizers

/* 32 floats times id, rounded to nearest even, packed to int8 in order.
 * Callers guarantee |v * id| <= 127 up to rounding, so packing never clips. */
KZ_INLINE __m256i round_pack32(const float *x, __m256 id)
{
    __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), id));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), id));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), id));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), id));
    /* packs work per 128-bit lane: dwords come out as i0lo i1lo i2lo i3lo i0hi ... */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

KZ_INLINE __m256 absmax8(const float *x, __m256 m)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    return _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x)));
}

/* Bit-exact with kz_ref_q8_0_from_float: same amax, d, 1/d and rounding. */
static void quantize_q8_0(const float *restrict x, void *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK8_0 == 0);
    struct kz_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / KZ_QK8_0; i++, x += 32) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 32; k += 8)
            m = absmax8(x + k, m);
        float d = hmax_ps(m) / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = kz_fp32_to_fp16(d);
        _mm256_storeu_si256((__m256i *)b[i].qs, round_pack32(x, _mm256_set1_ps(id)));
    }
}

/* Bit-exact with kz_ref_quantize_q8_k. */
static void quantize_q8_k(const float *restrict x, void *restrict dst, int64_t n)
{
    KZ_ASSERT(n % KZ_QK_K == 0);
    struct kz_block_q8_k *b = dst;
    for (int64_t i = 0; i < n / KZ_QK_K; i++, x += KZ_QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < KZ_QK_K; k += 8)
            m = absmax8(x + k, m);
        float amax = hmax_ps(m);
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        b[i].d = amax / 127.0f;
        __m256 vid = _mm256_set1_ps(id);
        const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
        for (int g = 0; g < KZ_QK_K / 32; g++) {
            __m256i p = round_pack32(x + 32 * g, vid);
            _mm256_storeu_si256((__m256i *)(b[i].qs + 32 * g), p);
            /* sums of 16: bytes -> pairs -> quads, then the 4 quads of each lane */
            __m256i s4 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, p), ones16);
            __m256i s8 = _mm256_hadd_epi32(s4, s4);
            __m256i s16 = _mm256_hadd_epi32(s8, s8);
            b[i].bsums[2 * g] = (int16_t)_mm256_extract_epi32(s16, 0);
            b[i].bsums[2 * g + 1] = (int16_t)_mm256_extract_epi32(s16, 4);
        }
    }
}

// ---------------------------------------------------------------- batched products

static uint32_t x_act_type(uint32_t wtype)
{
    return tile_for(wtype) ? kz_q8_act_type(wtype) : KZ_DT_F32;
}

static void x_act_quantize(uint32_t wtype, const float *restrict x, void *restrict dst, int64_t cols)
{
    switch (x_act_type(wtype)) {
    case KZ_DT_Q8_0:
        quantize_q8_0(x, dst, cols);
        break;
    case KZ_DT_Q8_K:
        quantize_q8_k(x, dst, cols);
        break;
    default:
        memcpy(dst, x, (size_t)cols * sizeof(float));
        break;
    }
}


/* W (rows, cols) @ act^T -> out[t * out_stride + r] for r in [r0, r1) */
#ifdef KZ_X86_ZMM
/* Decode (one token) with Q4_0 weights: two blocks per step on zmm.
 *
 * The activation row is laid out once per call, per pair of blocks: its 64
 * codes, each block's scale repeated over the 8 int32 lanes that block's
 * products land in, and those lanes' share of the Q4_0 bias: vpdpbusd takes
 * the codes unsigned (0..15, the block meaning q - 8), so
 * w . a = q . a - 8 * sum(a), and each lane's 4-element part of
 * -8 * sum(a) is the value vpdpbusd starts from. A step is then: 32 bytes
 * of nibbles to 64 codes, one vpdpbusd, the two weight scales spread over
 * their lanes, one multiply, one FMA: about half the instructions of the
 * one-block ymm step, which decode was bound by. (Q8_0 weights, twice the
 * bytes per weight, are bound by memory already: the ymm step stays.)
 *
 * The high nibbles are not shifted down: they are masked in place (16 q,
 * at most 240, still a valid unsigned byte), and their lanes' bias is
 * -128 * sum(a) and their activation scale d / 16 (exact), so the lane
 * still ends as d * (q - 8) . a. That takes a shift and a blend off each
 * step; on an Intel Xeon the step is bound by the one port that shifts,
 * multiplies and converts, and it went 12% faster (bench_kernels, in cache
 * and from memory). */
struct dec_pair {
    int8_t qs[64];
    float da[16];
    int32_t bias[16];
};
enum { KZ_DEC_PAIRS = 256 }; /* rows of up to 16352 elements; wider ones take the general path */

static void dec_prep(const unsigned char *act, int64_t nb, struct dec_pair *p)
{
    const struct kz_block_q8_0 *a = (const struct kz_block_q8_0 *)act;
    for (int64_t i = 0; i < nb; i++) {
        struct dec_pair *pp = &p[i / 2];
        int h = (int)(i % 2) * 8;
        memcpy(pp->qs + 4 * h, a[i].qs, 32);
        float d = h2f(a[i].d);
        for (int j = 0; j < 8; j++) { /* lanes 4..7: the high nibbles, taken in place as 16 q */
            const int8_t *q = a[i].qs + 4 * j;
            int hi = j >= 4;
            pp->da[h + j] = hi ? d / 16.0f : d;
            pp->bias[h + j] = (hi ? -128 : -8) * (q[0] + q[1] + q[2] + q[3]);
        }
    }
}

/* the weight scales of two pairs of blocks, d0 d1 d2 d3, converted in one step for both pairs */
KZ_INLINE __m512 dec_scales4(const struct kz_block_q4_0 *b)
{
    return _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi64_si128((long long)q4_0_halves4(b))));
}

/* dw: the pair's two weight scales, each over its block's 8 lanes */
KZ_INLINE __m512 dec_step(const struct kz_block_q4_0 *b, const struct dec_pair *p, __m512 dw, __m512i nib, __m512 acc)
{
    /* lanes qs0 qs0 qs1 qs1: two broadcast loads (load ports only) and a
     * blend, where an insert and a lane shuffle took the shuffle port twice
     * (in cache +10.6%; from memory, in the model, level on the Intel VM) */
    __m512i y = _mm512_mask_blend_epi64(0xF0, _mm512_broadcast_i32x4(load128(b[0].qs)),
                                        _mm512_broadcast_i32x4(load128(b[1].qs)));
    /* low nibbles in lanes 0 and 2, high nibbles in 1 and 3, element order;
     * the high ones are not shifted down but masked in place (16 q), which
     * the prepared bias and scale of those lanes allow for */
    __m512i u = _mm512_and_si512(y, nib);
    __m512i dot = _mm512_dpbusd_epi32(_mm512_load_si512(p->bias), u, _mm512_load_si512(p->qs));
    return _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_load_ps(p->da)), _mm512_cvtepi32_ps(dot), acc);
}

static void dec_rows_q4_0(const void *w, int64_t cols, const unsigned char *act, float *out, int64_t r0, int64_t r1)
{
    int64_t nb = cols / 32, np = nb / 2;
    _Alignas(64) struct dec_pair p[KZ_DEC_PAIRS];
    dec_prep(act, nb, p);
    /* d0 (d2) over lanes 0..7, d1 (d3) over lanes 8..15 */
    const __m512i idx01 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i idx23 = _mm512_add_epi32(idx01, _mm512_set1_epi32(2));
    /* byte masks: 0x0F in 128-bit lanes 0 and 2 (low nibbles), 0xF0 in 1 and 3 (high, in place) */
    const __m512i nib = _mm512_mask_blend_epi64(0xCC, _mm512_set1_epi8(0x0F), _mm512_set1_epi8((char)0xF0));
    size_t wrow = kz_dtype_row_size(KZ_DT_Q4_0, cols);
    for (int64_t r = r0; r < r1; r++) {
        const struct kz_block_q4_0 *b = (const struct kz_block_q4_0 *)((const unsigned char *)w + (size_t)r * wrow);
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        int64_t k = 0;
        for (; k + 1 < np; k += 2) { /* two FMA chains */
            pf_ahead(b + 2 * k, 64); /* 72 bytes a step: the first line is enough, the L2 one catches the rest */
            __m512 d4 = dec_scales4(b + 2 * k);
            acc0 = dec_step(b + 2 * k, &p[k], _mm512_permutexvar_ps(idx01, d4), nib, acc0);
            acc1 = dec_step(b + 2 * k + 2, &p[k + 1], _mm512_permutexvar_ps(idx23, d4), nib, acc1);
        }
        if (k < np) {
            uint32_t hh = (uint32_t)b[2 * k].d | (uint32_t)b[2 * k + 1].d << 16;
            __m512 d2 = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128((int)hh)));
            acc0 = dec_step(b + 2 * k, &p[k], _mm512_permutexvar_ps(idx01, d2), nib, acc0);
        }
        float sum = kv_hsum(_mm512_add_ps(acc0, acc1));
        if (nb % 2) { /* the last block alone, on ymm */
            const struct kz_block_q4_0 *lb = b + nb - 1;
            const struct dec_pair *lp = &p[np];
            __m256i u = _mm256_and_si256(_mm256_broadcastsi128_si256(load128(lb->qs)), _mm512_castsi512_si256(nib));
            __m256i dot = _mm256_dpbusd_epi32(_mm256_load_si256((const __m256i *)lp->bias), u,
                                              _mm256_load_si256((const __m256i *)lp->qs));
            __m256 s = _mm256_mul_ps(_mm256_set1_ps(h2f(lb->d)), _mm256_load_ps(lp->da));
            sum += hsum_ps(_mm256_mul_ps(s, _mm256_cvtepi32_ps(dot)));
        }
        out[r] = sum;
    }
}
#endif

#ifdef KZ_X86_ZMM
/* Decode (one token) with Q4_0 weights, eight blocks per step, for rows of a
 * multiple of 256 elements (every layer of the usual model shapes).
 *
 * The pair step above converts and scales its products every two blocks.
 * Here each block keeps two int32 lanes for the whole step: the eight
 * blocks' 16-byte code runs are gathered from three loads by word permutes
 * into two vectors (qword j, lanes 2j and 2j+1: block j's code bytes 0..7
 * in the first vector, 8..15 in the second),
 * their low and high nibbles go through four vpdpbusd against an activation
 * laid out to match, and only then is the sum converted, once, and weighted
 * by the eight blocks' scales (gathered by one more permute). That is about
 * 23 micro-ops on the two ports that take 512-bit work per 256 weights
 * (a two-table word permute counts as two on an Intel Xeon), where the pair
 * step takes 34; in cache it reads 1.36x the bytes per second. A block is
 * 18 bytes (scale, then codes), so every run starts at an even byte and
 * word permutes (AVX-512BW) suffice; byte permutes (VBMI) were no faster. */
struct dec_grp {
    int8_t a[4][64]; /* against the low nibbles of bytes 0..7, their high ones, then the same for bytes 8..15 */
    int32_t bias[16]; /* -8 * sum(a) of block j, split over lanes 2j and 2j+1 (the codes are taken unsigned) */
    float da[16]; /* block j's activation scale in lanes 2j and 2j+1 */
};
enum { KZ_DEC_GRP_COLS = 16384 }; /* rows of up to 16384 elements (64 steps: 24 KiB of layout) */

static void dec_grp_prep(const unsigned char *act, int64_t nb, struct dec_grp *g)
{
    const struct kz_block_q8_0 *a = (const struct kz_block_q8_0 *)act;
    for (int64_t i = 0; i < nb; i++) {
        struct dec_grp *gg = &g[i / 8];
        int j = (int)(i % 8);
        /* byte k of a block's codes holds elements k (low nibble) and k + 16 (high) */
        memcpy(gg->a[0] + 8 * j, a[i].qs, 8);
        memcpy(gg->a[1] + 8 * j, a[i].qs + 16, 8);
        memcpy(gg->a[2] + 8 * j, a[i].qs + 8, 8);
        memcpy(gg->a[3] + 8 * j, a[i].qs + 24, 8);
        /* each lane's own share of -8 * sum(a), so it ends as the exact
         * sum of (q - 8) * a over its 16 products: lane 2j takes bytes 0..3
         * and 8..11 (elements 0..3, 16..19, 8..11, 24..27), lane 2j + 1 the
         * rest. (All of it in lane 2j would leave two large lanes that
         * cancel only after the conversion to float.) */
        int32_t s0 = 0, s1 = 0;
        for (int k = 0; k < 32; k++) {
            if (k % 8 < 4)
                s0 += a[i].qs[k];
            else
                s1 += a[i].qs[k];
        }
        gg->bias[2 * j] = -8 * s0;
        gg->bias[2 * j + 1] = -8 * s1;
        gg->da[2 * j] = gg->da[2 * j + 1] = h2f(a[i].d);
    }
}

static void dec_rows_q4_0_grp(const void *w, int64_t cols, const unsigned char *act, float *out, int64_t r0,
                              int64_t r1)
{
    int64_t nb = cols / 32, ng = nb / 8;
    _Alignas(64) struct dec_grp g[KZ_DEC_GRP_COLS / 256];
    dec_grp_prep(act, nb, g);
    /* Word indices into the 144 bytes of a step as two 64-byte loads (words
     * 0..63: bytes 0..127); block j starts at byte 18j. Block 7's codes
     * (bytes 128..143) are past them: they come from a third load of bytes
     * 80..143, whose qwords 6 and 7 they are. */
    _Alignas(64) int16_t i_lo[32], i_hi[32], i_d[32];
    for (int o = 0; o < 32; o++) {
        int j = o / 4, q = o % 4;
        i_lo[o] = (int16_t)(j < 7 ? 9 * j + 1 + q : 0); /* codes 0..7 of block j */
        i_hi[o] = (int16_t)(j < 7 ? 9 * j + 5 + q : 0); /* codes 8..15 */
        i_d[o] = (int16_t)(o < 16 ? 9 * (o / 2) : 0); /* block o/2's scale, in words 0..15 */
    }
    const __m512i ilo = _mm512_load_si512(i_lo), ihi = _mm512_load_si512(i_hi), id = _mm512_load_si512(i_d);
    const __m512i q6to7 = _mm512_set1_epi64(6), low4 = _mm512_set1_epi8(15);
    size_t wrow = kz_dtype_row_size(KZ_DT_Q4_0, cols);
    for (int64_t r = r0; r < r1; r++) {
        const unsigned char *row = (const unsigned char *)w + (size_t)r * wrow;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t k = 0; k < ng; k++) {
            const unsigned char *s = row + 144 * k;
            const struct dec_grp *gk = &g[k];
            pf_ahead(s, 144);
            __m512i x0 = _mm512_loadu_si512(s), x1 = _mm512_loadu_si512(s + 64), x2 = _mm512_loadu_si512(s + 80);
            /* each permute below overwrites a table register, and GCC would
             * rather load x0 and x1 again than copy them: three loads each,
             * 11% slower in cache. Hidden from it, they are loaded once. */
            __asm__("" : "+v"(x0), "+v"(x1), "+v"(x2));
            __m512i v0 = _mm512_mask_permutexvar_epi64(_mm512_permutex2var_epi16(x0, ilo, x1), 0x80, q6to7, x2);
            __m512i v1 = _mm512_mask_mov_epi64(_mm512_permutex2var_epi16(x0, ihi, x1), 0x80, x2);
            __m512i dot = _mm512_load_si512(gk->bias);
            dot = _mm512_dpbusd_epi32(dot, _mm512_and_si512(v0, low4), _mm512_load_si512(gk->a[0]));
            dot = _mm512_dpbusd_epi32(dot, _mm512_and_si512(_mm512_srli_epi16(v0, 4), low4), _mm512_load_si512(gk->a[1]));
            dot = _mm512_dpbusd_epi32(dot, _mm512_and_si512(v1, low4), _mm512_load_si512(gk->a[2]));
            dot = _mm512_dpbusd_epi32(dot, _mm512_and_si512(_mm512_srli_epi16(v1, 4), low4), _mm512_load_si512(gk->a[3]));
            __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(x0, id, x1)));
            acc = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_load_ps(gk->da)), _mm512_cvtepi32_ps(dot), acc);
        }
        out[r] = kv_hsum(acc);
    }
}

/* Decode (one token) with Q8_0 weights, eight blocks a step. The leg tile
 * spent about eight vector ops a block, half of them on its scale (a
 * conversion, a broadcast, a product). Here a pair of blocks is one zmm
 * (a load and an insert), made unsigned by flipping the sign bit (q + 128)
 * and summed against the activation in one vpdpbusd that starts from
 * -128 * (the sum of the lane's four activation codes), so the integer
 * sums stay exact; the products are converted and weighted by the two
 * blocks' d_w * d_a (one permute of eight scales converted and multiplied
 * once per step). About 3.5 vector ops a block. */
struct dec_q8 {
    int8_t qs[KZ_DEC_GRP_COLS];
    int32_t bias[KZ_DEC_GRP_COLS / 4];
    float da[KZ_DEC_GRP_COLS / 32];
};

KZ_INLINE void dec_rows_q8_0_pf(const void *w, int64_t cols, const unsigned char *act, float *out, int64_t r0,
                                int64_t r1, const int pf_step)
{
    const int64_t nb = cols / 32;
    _Alignas(64) struct dec_q8 p;
    const struct kz_block_q8_0 *a = (const struct kz_block_q8_0 *)act;
    for (int64_t i = 0; i < nb; i++) {
        memcpy(p.qs + 32 * i, a[i].qs, 32);
        for (int j = 0; j < 8; j++) {
            const int8_t *q = a[i].qs + 4 * j;
            p.bias[8 * i + j] = -128 * (q[0] + q[1] + q[2] + q[3]);
        }
        p.da[i] = h2f(a[i].d);
    }
    __m512i isc[4]; /* lanes 0..7 take block 2k's scale, 8..15 block 2k + 1's */
    for (int k = 0; k < 4; k++)
        isc[k] = _mm512_inserti64x4(_mm512_set1_epi32(2 * k), _mm256_set1_epi32(2 * k + 1), 1);
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const size_t wrow = kz_dtype_row_size(KZ_DT_Q8_0, cols);
    for (int64_t r = r0; r < r1; r++) {
        const struct kz_block_q8_0 *b = (const struct kz_block_q8_0 *)((const unsigned char *)w + (size_t)r * wrow);
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        for (int64_t g = 0; g < nb; g += 8) {
            const struct kz_block_q8_0 *bg = b + g;
            pf_every(bg, 8 * (int)sizeof *bg, pf_step);
            const __m256 dw = _mm256_cvtph_ps(
                _mm_set_epi64x((long long)halves4(bg + 4, sizeof *bg), (long long)halves4(bg, sizeof *bg)));
            const __m512 f = _mm512_castps256_ps512(_mm256_mul_ps(dw, _mm256_loadu_ps(p.da + g)));
            for (int k = 0; k < 4; k += 2) { /* two FMA chains */
                const int64_t i = g + 2 * k; /* first block of this pair of pairs */
                __m512i w0 = _mm512_inserti64x4(_mm512_castsi256_si512(load256(bg[2 * k].qs)), load256(bg[2 * k + 1].qs), 1);
                __m512i w1 = _mm512_inserti64x4(_mm512_castsi256_si512(load256(bg[2 * k + 2].qs)),
                                                load256(bg[2 * k + 3].qs), 1);
                __m512i s0 = _mm512_dpbusd_epi32(_mm512_load_si512(p.bias + 8 * i), _mm512_xor_si512(w0, flip),
                                                 _mm512_load_si512(p.qs + 32 * i));
                __m512i s1 = _mm512_dpbusd_epi32(_mm512_load_si512(p.bias + 8 * i + 16), _mm512_xor_si512(w1, flip),
                                                 _mm512_load_si512(p.qs + 32 * i + 64));
                acc0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(isc[k], f), _mm512_cvtepi32_ps(s0), acc0);
                acc1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(isc[k + 1], f), _mm512_cvtepi32_ps(s1), acc1);
            }
        }
        out[r] = kv_hsum(_mm512_add_ps(acc0, acc1));
    }
}

static void dec_rows_q8_0(const void *w, int64_t cols, const unsigned char *act, float *out, int64_t r0, int64_t r1)
{
    if (amd_cpu())
        dec_rows_q8_0_pf(w, cols, act, out, r0, r1, 32); /* each line twice: amd_cpu */
    else
        dec_rows_q8_0_pf(w, cols, act, out, r0, r1, 64);
}
#endif

#ifdef KZ_X86_ZMM
/* Decode (one token) with Q4_K (and Q5_K) weights, 128 elements per step on zmm.
 *
 * A 64-byte run of a super-block's codes holds four sub-blocks of 32: its
 * low nibbles are sub-blocks 4k and 4k+2, its high nibbles 4k+1 and 4k+3.
 * The activation row is reordered once per call to match (each 128 codes as
 * sub-blocks 4k, 4k+2, 4k+1, 4k+3), so a step is one load, two masks, two
 * vpdpbusd against contiguous activation codes, one pack of the two int32
 * results to int16 (exact: at most 4 * 31 * 128 per lane) and one vpdpwssd
 * by the sub-block scales (int16, spread by vpshufb): the exact integer sum
 * of scale * (q . a) for four sub-blocks. About 9 vector ops per 128 codes
 * on the 512-bit ports, where two vpmaddubsw and two vpmaddwd took 11; in a
 * loop that is bound by those ports rather than by memory on some machines,
 * that is the gain. The mins go through the activation's 32-element sums,
 * one vpdpwssd per four super-blocks. */
enum { KZ_DEC_K_COLS = 16384 }; /* rows of up to 16384 elements; wider ones take the general path */

/* The activation, laid out once per call: codes reordered as above, the
 * 32-element sums (pairs of bsums) as int16 per sub-block, and each
 * super-block's scale twice (against d and dmin). Padded with zeros to a
 * whole group of four super-blocks, so a short last group weighs nothing
 * past the row's end. */
struct dec_k {
    int8_t qs[KZ_DEC_K_COLS];
    int16_t b32[KZ_DEC_K_COLS / 32];
    float da2[KZ_DEC_K_COLS / 128];
};

static void dec_prep_q8_k(const unsigned char *act, int64_t nb, struct dec_k *p)
{
    const struct kz_block_q8_k *a = (const struct kz_block_q8_k *)act;
    static const int order[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    int64_t npad = (nb + 3) / 4 * 4;
    for (int64_t i = 0; i < npad; i++) {
        for (int j = 0; j < 8; j++) {
            if (i < nb)
                memcpy(p->qs + KZ_QK_K * i + 32 * j, a[i].qs + 32 * order[j], 32);
            p->b32[8 * i + j] = (int16_t)(i < nb ? a[i].bsums[2 * j] + a[i].bsums[2 * j + 1] : 0);
        }
        p->da2[2 * i] = p->da2[2 * i + 1] = i < nb ? a[i].d : 0.0f;
    }
}

/* Four super-block heads (d, dmin, scales[12] in each 128-bit lane) to
 * sc0..7 then m0..7 in each lane, as bytes (the 12-byte packing of
 * quant.h: sc/m 0..3 are the low 6 bits of scales[0..7]; sc/m 4..7 take
 * the low/high nibble of scales[8..11] and the top 2 bits of scales[0..7]). */
KZ_INLINE __m512i q4k_heads4(__m512i v)
{
    const __m512i a = _mm512_shuffle_epi32(v, (_MM_PERM_ENUM)0xA5); /* scales[0..3], [0..3], [4..7], [4..7] */
    const __m512i b = _mm512_srlv_epi32(_mm512_shuffle_epi32(v, (_MM_PERM_ENUM)0xFF), _mm512_set4_epi32(4, 0, 0, 0));
    const __m512i y = _mm512_mask_blend_epi32(0xAAAA, a, b); /* dwords 1, 3: the nibbles of scales[8..11] */
    const __m512i top = _mm512_and_si512(_mm512_srli_epi32(a, 2), _mm512_set4_epi32(0x30303030, 0, 0x30303030, 0));
    /* (y & keep) | top, keep = 6 bits in dwords 0 and 2, 4 in dwords 1 and 3 */
    return _mm512_ternarylogic_epi32(y, _mm512_set4_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f), top, 0xEA);
}

/* Q4_K and (five) Q5_K: the same head and layout, Q5_K with a fifth bit per
 * code in qh (bit 2r of qh[l] for the low nibble of byte l of run r, bit
 * 2r + 1 for the high one), set by a byte test and a masked add.
 *
 * Four super-blocks make a group: their heads are unpacked together in one
 * zmm (q4k_heads4) and widened to int16, the scale vectors of each
 * super-block are picked from them by word permutes, d and dmin are converted
 * and scaled for all four in one ymm, and the four min terms take one
 * vpdpwssd against the activation's 32-element sums. */
KZ_INLINE void dec_rows_k45(const void *w, int64_t cols, const unsigned char *act, float *out, int64_t r0, int64_t r1,
                            const int five)
{
    int64_t nb = cols / KZ_QK_K;
    _Alignas(64) struct dec_k p;
    dec_prep_q8_k(act, nb, &p);
    /* byte-shuffle controls that spread one super-block's eight scale bytes
     * (broadcast to every qword) to int16: shf[k] matches the pack of the
     * run pair k's low-nibble sums (sub-blocks 4k, 4k + 2) with its
     * high-nibble ones (4k + 1, 4k + 3), four int16 of each in every
     * 128-bit lane; the high byte of each int16 is zeroed (0x80). A word
     * permute of the four super-blocks' widened scales did the same, at
     * 4% less speed in cache on an AMD EPYC (Zen 4). */
    _Alignas(64) int8_t shfb[2][64];
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 32; j++) {
            shfb[k][2 * j] = (int8_t)(4 * k + (j % 8 >= 4) + (j / 8 >= 2 ? 2 : 0));
            shfb[k][2 * j + 1] = (int8_t)0x80;
        }
    const __m512i shf[2] = {_mm512_load_si512(shfb[0]), _mm512_load_si512(shfb[1])};
    const __m512i low4 = _mm512_set1_epi8(15), bit16 = _mm512_set1_epi8(16);
    const __m512i idx_sm = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7); /* all sc bytes, then all m bytes */
    const __m512i idx_d = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i idx_m = _mm512_setr_epi32(1, 1, 1, 1, 3, 3, 3, 3, 5, 5, 5, 5, 7, 7, 7, 7);
    size_t wrow = kz_dtype_row_size(five ? KZ_DT_Q5_K : KZ_DT_Q4_K, cols);
    const size_t bsz = five ? sizeof(struct kz_block_q5_k) : sizeof(struct kz_block_q4_k);
    for (int64_t r = r0; r < r1; r++) {
        const unsigned char *row = (const unsigned char *)w + (size_t)r * wrow;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t i = 0; i < nb; i += 4) {
            const int g = nb - i < 4 ? (int)(nb - i) : 4;
            const unsigned char *b0 = row + (size_t)i * bsz;
            /* a short group repeats its first head; its missing blocks
             * weigh nothing (zero activation scale and sums) */
            __m512i v = _mm512_castsi128_si512(load128(b0));
            v = _mm512_inserti32x4(v, load128(b0 + (g > 1 ? bsz : 0)), 1);
            v = _mm512_inserti32x4(v, load128(b0 + (g > 2 ? 2 * bsz : 0)), 2);
            v = _mm512_inserti32x4(v, load128(b0 + (g > 3 ? 3 * bsz : 0)), 3);
            const __m512i t = _mm512_permutexvar_epi64(idx_sm, q4k_heads4(v));
            _Alignas(64) uint64_t scb[8]; /* qword b: super-block b's sc bytes */
            _mm512_store_si512(scb, t);
            /* d * da and dmin * da of the four super-blocks */
            _Alignas(32) float f[8];
            const __m256 dd = _mm256_mul_ps(_mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi32(idx_d, v))),
                                            _mm256_loadu_ps(p.da2 + 2 * i));
            _mm256_store_ps(f, dd);
            /* scb and f are read back below by broadcast loads (load ports
             * only); left to itself GCC takes each from the register by
             * two shuffles */
            __asm__("" : : : "memory");
            __m512i summ = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(t, 1)),
                                               _mm512_loadu_si512(p.b32 + 8 * i));
            acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(summ),
                                   _mm512_permutexvar_ps(idx_m, _mm512_castps256_ps512(dd)), acc);
            for (int bi = 0; bi < g; bi++) {
                const unsigned char *b = b0 + (size_t)bi * bsz;
                const uint8_t *qsw = five ? ((const struct kz_block_q5_k *)b)->qs : ((const struct kz_block_q4_k *)b)->qs;
                __m512i qh2 = _mm512_setzero_si512();
                if (five) /* qh in both halves: bytes 0..31 go with run 2k, 32..63 with run 2k + 1 */
                    qh2 = _mm512_broadcast_i64x4(load256(((const struct kz_block_q5_k *)b)->qh));
                pf_ahead(b, (int)bsz);
                const int8_t *aq = p.qs + KZ_QK_K * (i + bi);
                __m512i sumi = _mm512_setzero_si512();
                for (int k = 0; k < 2; k++) {
                    __m512i x = _mm512_loadu_si512(qsw + 64 * k);
                    __m512i lo = _mm512_and_si512(x, low4), hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), low4);
                    if (five) { /* bits 4k, 4k + 2 (low nibbles of runs 2k, 2k + 1) and 4k + 1, 4k + 3 (high) */
                        const __m512i blo = _mm512_mask_blend_epi64(0xF0, _mm512_set1_epi8((char)(1 << (4 * k))),
                                                                    _mm512_set1_epi8((char)(1 << (4 * k + 2))));
                        lo = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(qh2, blo), lo, bit16);
                        hi = _mm512_mask_add_epi8(hi, _mm512_test_epi8_mask(qh2, _mm512_add_epi8(blo, blo)), hi, bit16);
                    }
                    /* four codes against four activations per int32 lane
                     * (at most 4 * 31 * 128, so the pack to int16 is exact),
                     * then weighted by the sub-block scales (VNNI) */
                    __m512i plo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_load_si512(aq + 128 * k));
                    __m512i phi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi, _mm512_load_si512(aq + 128 * k + 64));
                    const __m512i scv = _mm512_shuffle_epi8(_mm512_set1_epi64((long long)scb[bi]), shf[k]);
                    sumi = _mm512_dpwssd_epi32(sumi, _mm512_packs_epi32(plo, phi), scv);
                }
                acc = _mm512_fmadd_ps(_mm512_set1_ps(f[2 * bi]), _mm512_cvtepi32_ps(sumi), acc);
            }
        }
        out[r] = kv_hsum(acc);
    }
}

static void dec_rows_q4_k(const void *w, int64_t cols, const unsigned char *act, float *out, int64_t r0, int64_t r1)
{
    dec_rows_k45(w, cols, act, out, r0, r1, 0);
}

static void dec_rows_q5_k(const void *w, int64_t cols, const unsigned char *act, float *out, int64_t r0, int64_t r1)
{
    dec_rows_k45(w, cols, act, out, r0, r1, 1);
}

/* Decode (one token) with Q6_K weights on zmm, 128 elements per step.
 *
 * The 64 bytes ql[64h..] of half h hold, in their low nibbles, the low four
 * bits of elements 128h + 0..63 in order, and in their high nibbles those of
 * 128h + 64..127; the two high bits of element 128h + 32k + l are bits 2k,
 * 2k + 1 of qh[32h + l]. So the activation needs no reordering, and a step
 * is: qh of the half broadcast to both 256-bit halves and masked (0x33 in
 * the low half, 0xCC in the high one), shifted by qword so the wanted pair
 * lands on bits 4..5 with zeros on 6..7 (by 4 and by 2 for the low codes,
 * by 0 and 2 for the high), then joined to the nibbles by one vpternlog each
 * (bits 0..3 from ql, 4..7 from the shifted qh). The codes, 0..63 unsigned,
 * meet the activation in two vpdpbusd (at most 4 * 63 * 127 per lane, exact
 * in int16), are packed and take the signed sub-block scales in one
 * vpdpwssd: about 11 vector ops per 128 codes. The -32 bias is one more
 * vpdpwssd per super-block, 32 * scale against the activation's negated
 * 16-element sums. A version that read two super-blocks' scales and d with
 * one load and permute was slower (41 against 44 GB/s in cache) and, from
 * memory, 2-3% slower at two threads: it reads the second super-block's
 * tail before the first one's codes. */
struct dec_q6 {
    int8_t qs[KZ_DEC_K_COLS];
    int16_t nbs[KZ_DEC_K_COLS / KZ_QK_K][16]; /* -bsums */
    float da[KZ_DEC_K_COLS / KZ_QK_K];
};

static void dec_prep_q6(const unsigned char *act, int64_t nb, struct dec_q6 *p)
{
    const struct kz_block_q8_k *a = (const struct kz_block_q8_k *)act;
    for (int64_t i = 0; i < nb; i++) {
        memcpy(p->qs + KZ_QK_K * i, a[i].qs, KZ_QK_K);
        for (int j = 0; j < 16; j++)
            p->nbs[i][j] = (int16_t)-a[i].bsums[j];
        p->da[i] = a[i].d;
    }
}

static void dec_rows_q6_k(const void *w, int64_t cols, const unsigned char *act, float *out, int64_t r0, int64_t r1)
{
    int64_t nb = cols / KZ_QK_K;
    _Alignas(64) struct dec_q6 p;
    dec_prep_q6(act, nb, &p);
    /* isc[h]: word permute of the 16 int16 scales to the pack of half h's
     * low-code sums (scale 8h + L in 128-bit lane L) with its high-code ones
     * (8h + 4 + L), four words of each per lane */
    _Alignas(64) int16_t isc[2][32];
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 32; j++)
            isc[h][j] = (int16_t)(8 * h + j / 8 + (j % 8 >= 4 ? 4 : 0));
    const __m512i qh_keep = _mm512_inserti64x4(_mm512_set1_epi8(0x33), _mm256_set1_epi8((char)0xCC), 1);
    const __m512i sh_lo = _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2), sh_hi = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);
    const __m512i low4 = _mm512_set1_epi8(15);
    const size_t wrow = kz_dtype_row_size(KZ_DT_Q6_K, cols);
    for (int64_t r = r0; r < r1; r++) {
        const struct kz_block_q6_k *row = (const struct kz_block_q6_k *)((const unsigned char *)w + (size_t)r * wrow);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t i = 0; i < nb; i++) {
            const struct kz_block_q6_k *b = row + i;
            pf_ahead(b, (int)sizeof *b);
            const __m512i sc16 = _mm512_zextsi256_si512(_mm256_cvtepi8_epi16(load128(b->scales)));
            const int8_t *aq = p.qs + KZ_QK_K * i;
            __m512i sumi = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_slli_epi16(sc16, 5),
                                               _mm512_zextsi256_si512(load256(p.nbs[i])));
            for (int h = 0; h < 2; h++) {
                const __m512i x = _mm512_loadu_si512(b->ql + 64 * h);
                const __m512i m = _mm512_and_si512(_mm512_broadcast_i64x4(load256(b->qh + 32 * h)), qh_keep);
                /* bits 0..3 from the first operand, 4..7 from the second */
                const __m512i lo = _mm512_ternarylogic_epi32(x, _mm512_sllv_epi64(m, sh_lo), low4, 0xE4);
                const __m512i hi =
                    _mm512_ternarylogic_epi32(_mm512_srli_epi16(x, 4), _mm512_srlv_epi64(m, sh_hi), low4, 0xE4);
                const __m512i plo = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_load_si512(aq + 128 * h));
                const __m512i phi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), hi, _mm512_load_si512(aq + 128 * h + 64));
                sumi = _mm512_dpwssd_epi32(sumi, _mm512_packs_epi32(plo, phi),
                                           _mm512_permutexvar_epi16(_mm512_load_si512(isc[h]), sc16));
            }
            acc = _mm512_fmadd_ps(_mm512_set1_ps(h2f(b->d) * p.da[i]), _mm512_cvtepi32_ps(sumi), acc);
        }
        out[r] = kv_hsum(acc);
    }
}
#endif

#ifndef KZ_X86_ZMM
/* Decode (one token) with Q4_0 weights on ymm (the avx2 family), which has
 * no VNNI: each byte product is a vpmaddubsw and a vpmaddwd.
 *
 * The shared one-row tile spends about 13 micro-ops a block, half of them
 * on the block's scale. Here eight blocks' scales are converted at once
 * (q4_0_d8) and multiplied by the activation scales in one vector, and the
 * bias terms (-8 * d_w * d_a * sum(a)) of the eight blocks are one FMA.
 * The codes go two blocks a step: one vector holds the 16 code bytes of
 * blocks 2k and 2k + 1, its low nibbles meet the first 16 activation codes
 * of both, its high nibbles the last 16, with the activation row reordered
 * once per call to match (dec_y_prep); the two vpmaddubsw results add in
 * int16, and one vpmaddwd, conversion and FMA serve both blocks, whose
 * factors a lane permute spreads. About 5.5 micro-ops a block. One core,
 * in L2: 60 Gop/s for the loop that took a block a step (one 16-byte load
 * into both lanes, a shift per lane) and gathered the scales in scalar
 * code, 85 with two blocks a step, 91-94 with q4_0_d8 too; from memory,
 * a 2048 x 5632 matrix at 25.7 against 15-16.5 GB/s (bench_kernels). */
enum { KZ_DEC_Y_BLOCKS = 1024 }; /* rows of up to 32768 elements */

/* the activation codes of blocks 2k and 2k + 1: their first 16 codes, then
 * their last 16 (np pairs) */
struct dec_y {
    _Alignas(32) int8_t qs[32 * KZ_DEC_Y_BLOCKS];
};

static void dec_y_prep(const struct kz_block_q8_0 *a, int64_t np, struct dec_y *p)
{
    for (int64_t i = 0; i < np; i++) {
        __m256i x0 = load256(a[2 * i].qs), x1 = load256(a[2 * i + 1].qs);
        _mm256_store_si256((__m256i *)(void *)(p->qs + 64 * i), _mm256_permute2x128_si256(x0, x1, 0x20));
        _mm256_store_si256((__m256i *)(void *)(p->qs + 64 * i + 32), _mm256_permute2x128_si256(x0, x1, 0x31));
    }
}

/* The scales of eight Q4_0 blocks (18 bytes each) as floats: the group's
 * bytes 16j..16j+15 hold block j's scale in their 16-bit word j, so four
 * loads and four blends pick them up (the scalar gather took about 25
 * instructions). */
KZ_INLINE __m256 q4_0_d8(const struct kz_block_q4_0 *bg)
{
    const unsigned char *p = (const unsigned char *)bg;
    __m256i z = _mm256_blend_epi16(load256(p), load256(p + 32), 0x0C);
    z = _mm256_blend_epi16(z, load256(p + 64), 0x30);
    z = _mm256_blend_epi16(z, load256(p + 96), 0xC0); /* words 0, 2, 4, 6 in the low lane, 1, 3, 5, 7 in the high */
    return _mm256_cvtph_ps(_mm_blend_epi16(_mm256_castsi256_si128(z), _mm256_extracti128_si256(z, 1), 0xAA));
}

/* blocks b[0] and b[1] against their reordered activation codes aq: the
 * integer sums (lanes 0-3 the first block's, 4-7 the second's) times
 * their factors, f spread by idx */
KZ_INLINE __m256 dec_y_pair(const struct kz_block_q4_0 *b, const int8_t *aq, __m256 f, __m256i idx, __m256 acc)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(load128(b[0].qs)), load128(b[1].qs), 1);
    __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    /* each 16-bit sum is at most 2 * 2 * 15 * 127 in magnitude: no saturation */
    __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, load256(aq)), _mm256_maddubs_epi16(hi, load256(aq + 32)));
    __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
    return _mm256_fmadd_ps(_mm256_permutevar8x32_ps(f, idx), _mm256_cvtepi32_ps(s32), acc);
}

/* one block against its activation block as it is (the blocks past the
 * last whole group of eight): one 16-byte load into both lanes, shifted by
 * 0 in the low lane and 4 in the high */
KZ_INLINE __m256 dec_y_one(const struct kz_block_q4_0 *b, const struct kz_block_q8_0 *a, float f, __m256 acc)
{
    __m256i v = _mm256_broadcastsi128_si256(load128(b->qs));
    __m256i u = _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), _mm256_set1_epi8(15));
    return _mm256_fmadd_ps(_mm256_set1_ps(f), _mm256_cvtepi32_ps(KZ_X86_DOT_U8S8(u, load256(a->qs))), acc);
}

static void dec_rows_q4_0_y(const void *w, int64_t cols, const unsigned char *act, float *out, int64_t r0, int64_t r1)
{
    int64_t nb = cols / 32, ng = nb / 8;
    const struct kz_block_q8_0 *a = (const struct kz_block_q8_0 *)act;
    float prep[2 * KZ_DEC_Y_BLOCKS];
    prep_q8_0(act, 0, 1, nb, prep);
    const float *da = prep, *sa = prep + nb; /* d_a, and d_a * sum(a) (the bias is -8 times that) */
    struct dec_y p;
    dec_y_prep(a, 4 * ng, &p);
    __m256i idx[4];
    for (int k = 0; k < 4; k++)
        idx[k] = _mm256_setr_epi32(2 * k, 2 * k, 2 * k, 2 * k, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1);
    size_t wrow = kz_dtype_row_size(KZ_DT_Q4_0, cols);
    for (int64_t r = r0; r < r1; r++) {
        const struct kz_block_q4_0 *b = (const struct kz_block_q4_0 *)((const unsigned char *)w + (size_t)r * wrow);
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), accb = _mm256_setzero_ps();
        for (int64_t g = 0; g < ng; g++) {
            const struct kz_block_q4_0 *bg = b + 8 * g;
            pf_ahead(bg, 8 * (int)sizeof *bg);
            __m256 dw = q4_0_d8(bg);
            accb = _mm256_fmadd_ps(dw, _mm256_loadu_ps(sa + 8 * g), accb);
            __m256 f = _mm256_mul_ps(dw, _mm256_loadu_ps(da + 8 * g)); /* d_w * d_a of each block */
            const int8_t *aq = p.qs + 256 * g;
            for (int k = 0; k < 4; k += 2) { /* two FMA chains */
                acc0 = dec_y_pair(bg + 2 * k, aq + 64 * k, f, idx[k], acc0);
                acc1 = dec_y_pair(bg + 2 * k + 2, aq + 64 * k + 64, f, idx[k + 1], acc1);
            }
        }
        float corr = 0.0f;
        for (int64_t i = 8 * ng; i < nb; i++) {
            float dw = h2f(b[i].d);
            acc0 = dec_y_one(b + i, a + i, dw * da[i], acc0);
            corr += dw * sa[i];
        }
        out[r] = hsum_ps(_mm256_add_ps(acc0, acc1)) - 8.0f * (hsum_ps(accb) + corr);
    }
}
#endif

static void x_gemm_rows(uint32_t wtype, const void *w, int64_t cols, const void *act, int n_tok, float *out,
                        int64_t out_stride, int64_t r0, int64_t r1)
{
#ifdef KZ_X86_ZMM
    if (n_tok == 1 && wtype == KZ_DT_Q4_0 && cols % 256 == 0 && cols <= KZ_DEC_GRP_COLS) {
        dec_rows_q4_0_grp(w, cols, act, out, r0, r1);
        return;
    }
    if (n_tok == 1 && wtype == KZ_DT_Q4_0 && cols / 32 <= 2 * KZ_DEC_PAIRS - 1) {
        dec_rows_q4_0(w, cols, act, out, r0, r1);
        return;
    }
    if (n_tok == 1 && wtype == KZ_DT_Q8_0 && cols % 256 == 0 && cols <= KZ_DEC_GRP_COLS) {
        dec_rows_q8_0(w, cols, act, out, r0, r1);
        return;
    }
    if (n_tok == 1 && wtype == KZ_DT_Q4_K && cols <= KZ_DEC_K_COLS) {
        dec_rows_q4_k(w, cols, act, out, r0, r1);
        return;
    }
    if (n_tok == 1 && wtype == KZ_DT_Q5_K && cols <= KZ_DEC_K_COLS) {
        dec_rows_q5_k(w, cols, act, out, r0, r1);
        return;
    }
    if (n_tok == 1 && wtype == KZ_DT_Q6_K && cols <= KZ_DEC_K_COLS) {
        dec_rows_q6_k(w, cols, act, out, r0, r1);
        return;
    }
#else
    if (n_tok == 1 && wtype == KZ_DT_Q4_0 && cols / 32 <= KZ_DEC_Y_BLOCKS) {
        dec_rows_q4_0_y(w, cols, act, out, r0, r1);
        return;
    }
#endif
    if (n_tok >= 2 && (wtype == KZ_DT_F16 || wtype == KZ_DT_BF16 || wtype == KZ_DT_F32)) {
        f_gemm_rows(wtype, cols, w, act, n_tok, out, out_stride, r0, r1);
        return;
    }
    tile_fn tile = tile_for(wtype);
    if (!tile) {
        kz_ref_gemm_rows(wtype, w, cols, act, n_tok, out, out_stride, r0, r1);
        return;
    }
    uint32_t at = x_act_type(wtype);
    int64_t nb = cols / 32;
    size_t wrow = kz_dtype_row_size(wtype, cols);
    size_t arow = kz_dtype_row_size(at, cols);
    KZ_ASSERT(wrow > 0 && arow > 0);
    const unsigned char *wb = w, *ab = act;
#ifdef KZ_X86_ZMM
    if (n_tok >= KZ_TR_MIN_TOK(wtype) && nb <= KZ_PREP_BLOCKS && (wtype == KZ_DT_Q8_0 || wtype == KZ_DT_Q4_0)) {
        int q8 = wtype == KZ_DT_Q8_0;
        tr_gemm_rows(q8 ? tr_q8_0 : tr_q4_0, q8 ? 128 : 8, cols, wb, wrow, ab, arow, n_tok, out, out_stride, r0, r1);
        return;
    }
    if (n_tok >= KZ_KT_MIN_TOK(wtype) && (wtype == KZ_DT_Q4_K || wtype == KZ_DT_Q5_K || wtype == KZ_DT_Q6_K)) {
        kt_gemm_rows(wtype == KZ_DT_Q4_K ? KT_Q4_K : wtype == KZ_DT_Q5_K ? KT_Q5_K : KT_Q6_K, cols, wb, wrow, ab, arow,
                     n_tok, out, out_stride, r0, r1);
        return;
    }
#endif
    enum leg_kind kind = L_Q8_0;
    int mr_max, nr_max;
    blk_fn blk = n_tok >= 2 && nb <= KZ_PREP_BLOCKS ? blk_for(wtype, n_tok, &kind, &mr_max, &nr_max) : NULL;
    if (blk) {
        _Alignas(64) float ds[2 * KZ_NR_MAX * KZ_PREP_BLOCKS];
        /* chunks of rows stay in cache while the token tiles pass */
        int64_t chunk = n_tok <= nr_max ? r1 - r0 : wrow >= KZ_CHUNK_BYTES ? mr_max : (int64_t)(KZ_CHUNK_BYTES / wrow);
        chunk = chunk < mr_max ? mr_max : chunk - chunk % mr_max;
        for (int64_t c0 = r0; c0 < r1; c0 += chunk) {
            int64_t c1 = c0 + chunk < r1 ? c0 + chunk : r1;
            for (int t0 = 0; t0 < n_tok; t0 += nr_max) {
                int nr = n_tok - t0 < nr_max ? n_tok - t0 : nr_max;
                const unsigned char *at_ = ab + (size_t)t0 * arow;
                if (at == KZ_DT_Q8_0)
                    blk_prep(kind, at_, arow, nr, nb, ds, nr_max);
                for (int64_t r = c0; r < c1; r += mr_max) {
                    int mr = c1 - r < mr_max ? (int)(c1 - r) : mr_max;
                    /* the next tile, for the prefetch: next rows, or this chunk again for the next tokens */
                    int64_t nx = r + 2 * mr_max <= c1 ? r + mr_max : t0 + nr_max < n_tok ? c0 : -1;
                    blk(cols, wb + (size_t)r * wrow, wrow, at_, arow, ds, out + (size_t)t0 * (size_t)out_stride + r,
                        out_stride, nx >= 0 ? wb + (size_t)nx * wrow : NULL, mr, nr);
                }
            }
        }
        return;
    }
    if (at == KZ_DT_Q8_0 && nb > KZ_PREP_BLOCKS) {
        kz_ref_q8_gemm_rows(wtype, w, cols, act, n_tok, out, out_stride, r0, r1);
        return;
    }
    _Alignas(64) float prep[KZ_NT * 2 * KZ_PREP_BLOCKS];
    /* one tile of tokens: prepare it once and sweep all rows; more: sweep
     * chunks of rows that stay in cache while the tiles pass */
    const int nt_max = at == KZ_DT_Q8_K ? KZ_NT_K : KZ_NT;
    int64_t chunk = n_tok <= nt_max && r1 > r0 ? r1 - r0 : wrow >= KZ_CHUNK_BYTES ? 1 : (int64_t)(KZ_CHUNK_BYTES / wrow);
    for (int64_t c0 = r0; c0 < r1; c0 += chunk) {
        int64_t c1 = c0 + chunk < r1 ? c0 + chunk : r1;
        for (int t0 = 0; t0 < n_tok; t0 += nt_max) {
            int nt = n_tok - t0 < nt_max ? n_tok - t0 : nt_max;
            const unsigned char *at_ = ab + (size_t)t0 * arow;
            float *ot = out + (size_t)t0 * (size_t)out_stride;
            if (at == KZ_DT_Q8_0)
                prep_q8_0(at_, arow, nt, nb, prep);
            for (int64_t r = c0; r < c1; r++)
                tile(cols, wb + (size_t)r * wrow, at_, arow, prep, ot + r, out_stride, nt);
        }
    }
}

enum { KZ_MATVEC_BUF = 40 * 1024 }; /* stack room for one quantized activation row */

static void x_matvec_rows(const void *w, uint32_t type, int64_t cols, const float *restrict x,
                          float *restrict out, int64_t r0, int64_t r1)
{
    uint32_t at = x_act_type(type);
    if (!tile_for(type)) {
        kz_ref_matvec_rows(w, type, cols, x, out, r0, r1);
        return;
    }
    if (at == KZ_DT_F32) {
        x_gemm_rows(type, w, cols, x, 1, out, 0, r0, r1);
        return;
    }
    _Alignas(64) unsigned char buf[KZ_MATVEC_BUF];
    if (kz_dtype_row_size(at, cols) > sizeof buf) {
        kz_ref_matvec_rows(w, type, cols, x, out, r0, r1);
        return;
    }
    x_act_quantize(type, x, buf, cols);
    x_gemm_rows(type, w, cols, buf, 1, out, 0, r0, r1);
}

// ---------------------------------------------------------------- per-type ops

static float dot_f32_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    float r;
    tile_f32(n, w, (const unsigned char *)x, 0, NULL, &r, 0, 1);
    return r;
}

static float dot_f16_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    float r;
    tile_f16(n, w, (const unsigned char *)x, 0, NULL, &r, 0, 1);
    return r;
}

static float dot_bf16_f32(int64_t n, const void *restrict w, const float *restrict x)
{
    float r;
    tile_bf16(n, w, (const unsigned char *)x, 0, NULL, &r, 0, 1);
    return r;
}

/* F16 <-> F32 through F16C, 8 at a time (the KV cache converts whole
 * blocks of positions every token). Exact against the reference both ways:
 * vcvtps2ph rounds to nearest even as kz_fp32_to_fp16 does; the one
 * difference is that vcvtph2ps returns a signalling NaN quieted. */
static void f16_to_float(const void *restrict src, float *restrict dst, int64_t n)
{
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(load128(h + i)));
    for (; i < n; i++)
        dst[i] = kz_fp16_to_fp32(h[i]);
}

static void f16_from_float(const float *restrict src, void *restrict dst, int64_t n)
{
    uint16_t *h = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++)
        h[i] = kz_fp32_to_fp16(src[i]);
}

static const struct kz_type_ops ops_f32 = {kz_ref_f32_to_float, kz_ref_f32_from_float, dot_f32_f32};
static const struct kz_type_ops ops_f16 = {f16_to_float, f16_from_float, dot_f16_f32};
static const struct kz_type_ops ops_bf16 = {kz_ref_bf16_to_float, kz_ref_bf16_from_float, dot_bf16_f32};

static const struct kz_type_ops *x_type_ops(uint32_t type)
{
    switch (type) {
    case KZ_DT_F32: return &ops_f32;
    case KZ_DT_F16: return &ops_f16;
    case KZ_DT_BF16: return &ops_bf16;
    default: return kz_type_ops_ref(type);
    }
}

// ---------------------------------------------------------------- f32 vector ops

/* e^x, 8 lanes: n = round(x / ln 2), r = x - n ln 2 (two-part ln 2),
 * e^r by its degree-7 Taylor polynomial (|r| <= 0.35: error < 1e-8
 * relative), times 2^n built in the exponent field. Below ln(FLT_MIN) the
 * result is 0 (the reference would give a subnormal), above ln(FLT_MAX)
 * +inf; in between the input is clamped so 2^n stays a normal float. */
KZ_INLINE __m256 exp_ps(__m256 x)
{
    const __m256 lo = _mm256_set1_ps(-87.33654475f), hi = _mm256_set1_ps(88.72283905f);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.37626266f));
    __m256 nf = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(nf), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    return _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
}

/* silu(g) = g / (1 + e^-g), the reference's formula */
KZ_INLINE __m256 silu_ps(__m256 g)
{
    __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

static void x_silu(float *out, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, silu_ps(_mm256_loadu_ps(x + i)));
    for (; i < n; i++)
        out[i] = x[i] / (1.0f + expf(-x[i]));
}

static void x_swiglu(float *out, const float *gate, const float *up, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 s = silu_ps(_mm256_loadu_ps(gate + i));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++)
        out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* Four independent vector accumulators, so that the loads and not a chain
 * of dependent adds set the pace (the bandwidth probe of kyozon bench). */
static float x_sum(const float *x, int64_t n)
{
    enum { W = (int)(sizeof(kvf) / sizeof(float)) };
    kvf a0 = kv_fzero(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        a0 = kv_add(a0, kv_loadu(x + i));
        a1 = kv_add(a1, kv_loadu(x + i + W));
        a2 = kv_add(a2, kv_loadu(x + i + 2 * W));
        a3 = kv_add(a3, kv_loadu(x + i + 3 * W));
    }
    for (; i + W <= n; i += W)
        a0 = kv_add(a0, kv_loadu(x + i));
    float s = kv_hsum(kv_add(kv_add(a0, a1), kv_add(a2, a3)));
    for (; i < n; i++)
        s += x[i];
    return s;
}

/* Scores of nt <= 4 key tiles (kernels.h layout) into out (nt *
 * KZ_ATTN_TILE floats): per element of q one broadcast and one FMA per
 * vector of each tile, no horizontal sums. Eight accumulators, so the FMA
 * chains overlap: on zmm a tile is one vector, and even and odd elements
 * of q go to two sets. */
KZ_INLINE void attn_tiles(const float *q, const float *kt, int hd, kvf sv, float *out, const int nt)
{
    enum { T = KZ_ATTN_TILE, W = (int)(sizeof(kvf) / sizeof(float)), V = T / W, S = V == 1 ? 2 : 1 };
    kvf a[S][4][V];
    for (int e = 0; e < S; e++)
        for (int t = 0; t < nt; t++)
            for (int v = 0; v < V; v++)
                a[e][t][v] = kv_fzero();
    int i = 0;
    for (; i + S <= hd; i += S)
        for (int e = 0; e < S; e++) {
            kvf qi = kv_set1(q[i + e]);
            for (int t = 0; t < nt; t++)
                for (int v = 0; v < V; v++)
                    a[e][t][v] = kv_fma(kv_loadu(kt + ((size_t)t * (size_t)hd + (size_t)(i + e)) * T + v * W), qi,
                                        a[e][t][v]);
        }
    for (; i < hd; i++) {
        kvf qi = kv_set1(q[i]);
        for (int t = 0; t < nt; t++)
            for (int v = 0; v < V; v++)
                a[0][t][v] = kv_fma(kv_loadu(kt + ((size_t)t * (size_t)hd + (size_t)i) * T + v * W), qi, a[0][t][v]);
    }
    for (int t = 0; t < nt; t++)
        for (int v = 0; v < V; v++)
            kv_storeu(out + t * T + v * W, kv_mul(S == 2 ? kv_add(a[0][t][v], a[S - 1][t][v]) : a[0][t][v], sv));
}

/* One head's scores, four tiles (64 positions) at a time; the last tiles
 * (a partial one among them) through a buffer, so nothing past out[n - 1]
 * is written. */
static void x_attn_scores(const float *q, const float *kt, int n, int hd, float scale, float *out)
{
    enum { T = KZ_ATTN_TILE };
    const kvf sv = kv_set1(scale);
    const size_t tile = (size_t)hd * T;
    int full = n / T, j = 0;
    for (; j + 4 <= full; j += 4)
        attn_tiles(q, kt + (size_t)j * tile, hd, sv, out + j * T, 4);
    int rest = (n + T - 1) / T - j; /* at most 3 full tiles and a partial one */
    if (rest == 0)
        return;
    float buf[4 * T];
    switch (rest) {
    case 1: attn_tiles(q, kt + (size_t)j * tile, hd, sv, buf, 1); break;
    case 2: attn_tiles(q, kt + (size_t)j * tile, hd, sv, buf, 2); break;
    case 3: attn_tiles(q, kt + (size_t)j * tile, hd, sv, buf, 3); break;
    default: attn_tiles(q, kt + (size_t)j * tile, hd, sv, buf, 4); break;
    }
    memcpy(out + j * T, buf, (size_t)(n - j * T) * sizeof *out);
}

/* One head's output, added to out: the hd sums stay in registers across
 * all positions (nv = hd / W vectors, a constant in each instance); with
 * four vectors or fewer, two sets of them (even and odd positions) so the
 * FMA chains overlap. Each position is one broadcast and nv FMAs. */
KZ_INLINE void attn_values_nv(const float *s, const float *v, size_t stride, int n, float *out, const int nv)
{
    enum { W = (int)(sizeof(kvf) / sizeof(float)) };
    const int sets = nv <= 4 ? 2 : 1;
    kvf a[2][16];
    for (int j = 0; j < nv; j++) {
        a[0][j] = kv_loadu(out + j * W);
        a[1][j] = kv_fzero();
    }
    int p = 0;
    for (; p + sets <= n; p += sets)
        for (int k = 0; k < sets; k++) {
            const float *vp = v + (size_t)(p + k) * stride;
            kvf sp = kv_set1(s[p + k]);
            for (int j = 0; j < nv; j++)
                a[k][j] = kv_fma(kv_loadu(vp + j * W), sp, a[k][j]);
        }
    for (; p < n; p++) {
        const float *vp = v + (size_t)p * stride;
        kvf sp = kv_set1(s[p]);
        for (int j = 0; j < nv; j++)
            a[0][j] = kv_fma(kv_loadu(vp + j * W), sp, a[0][j]);
    }
    for (int j = 0; j < nv; j++)
        kv_storeu(out + j * W, sets == 2 ? kv_add(a[0][j], a[1][j]) : a[0][j]);
}

/* Head sizes of 2, 4, 8 or 16 vectors (64 and 128 on zmm, 32 to 128 on
 * ymm); others take the reference. */
static void x_attn_values(const float *s, const float *v, size_t stride, int n, int hd, float *out)
{
    enum { W = (int)(sizeof(kvf) / sizeof(float)) };
    switch (hd % W ? 0 : hd / W) {
    case 2: attn_values_nv(s, v, stride, n, out, 2); break;
    case 4: attn_values_nv(s, v, stride, n, out, 4); break;
    case 8: attn_values_nv(s, v, stride, n, out, 8); break;
    case 16: attn_values_nv(s, v, stride, n, out, 16); break;
    default: kz_ref_attn_values(s, v, stride, n, hd, out); break;
    }
}

/* Mean of squares in double (products of floats are exact in double), then
 * the reference's out = (x * scale) * w. */
static void x_rmsnorm(float *out, const float *x, const float *restrict w, int64_t n, float eps)
{
    KZ_ASSERT(n > 0);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        s0 = _mm256_fmadd_pd(lo, lo, s0);
        s1 = _mm256_fmadd_pd(hi, hi, s1);
    }
    double ss = hsum_pd(_mm256_add_pd(s0, s1));
    for (; i < n; i++)
        ss += (double)x[i] * (double)x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
    __m256 vs = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
    for (; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

static void x_softmax(float *x, int64_t n)
{
    KZ_ASSERT(n > 0);
    __m256 vm = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    float max = hmax_ps(vm);
    for (; i < n; i++)
        max = x[i] > max ? x[i] : max;
    __m256 m8 = _mm256_set1_ps(max);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m8));
        _mm256_storeu_ps(x + i, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double sum = hsum_pd(_mm256_add_pd(s0, s1));
    for (; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += (double)x[i];
    }
    __m256 inv = _mm256_set1_ps((float)(1.0 / sum));
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++)
        x[i] *= (float)(1.0 / sum);
}

// ---------------------------------------------------------------- the table

const struct kz_kernels KZ_X86_TABLE = {
    .name = KZ_X86_NAME,
    .type_ops = x_type_ops,
    .matvec_rows = x_matvec_rows,
    .rmsnorm = x_rmsnorm,
    .attn_scores = x_attn_scores,
    .attn_values = x_attn_values,
    .softmax = x_softmax,
    .silu = x_silu,
    .swiglu = x_swiglu,
    .sum = x_sum,
    .act_type = x_act_type,
    .act_quantize = x_act_quantize,
    .gemm_rows = x_gemm_rows,
};
