/* SPDX-License-Identifier: MIT
 * Compute kernels: per-type conversion and dot products, and the handful of
 * f32 vector ops the forward pass needs.
 *
 * Two layers:
 *   - kz_ref_*: the scalar reference implementation (src/engine/kernels/ref/).
 *     Always compiled, written to be read, and the yardstick every faster
 *     variant is tested against. SIMD files call these for tails and for
 *     types they don't specialise.
 *   - struct kz_kernels: a table of function pointers the engine calls
 *     through. kz_kernels_get() picks the table once per process.
 *
 * Conventions for every kernel declared here:
 *   - n (elements) is a multiple of the type's block size (kz_dtype_info);
 *     checked with KZ_ASSERT, since a violation is a bug in the caller;
 *   - quantized data lives in the block layouts of quant.h (2-byte aligned);
 *   - inputs are const, one output pointer, `restrict` unless aliasing is
 *     documented as allowed;
 *   - kernels hold no state, take no locks and are safe to call from many
 *     threads on disjoint outputs.
 */
#ifndef KZ_KERNELS_H
#define KZ_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------ */
/* Per-type operations                                                       */
/* ------------------------------------------------------------------------ */

/* Dequantize n elements: src (n/blck blocks) -> dst (n,). */
typedef void (*kz_to_float_fn)(const void *restrict src, float *restrict dst, int64_t n);
/* Quantize n elements: src (n,) -> dst (n/blck blocks). Deterministic:
 * equal inputs give identical bytes. */
typedef void (*kz_from_float_fn)(const float *restrict src, void *restrict dst, int64_t n);
/* sum_i w[i] * x[i] over one row of n elements: w (n/blck blocks), x (n,). */
typedef float (*kz_dot_f32_fn)(int64_t n, const void *restrict w, const float *restrict x);

struct kz_type_ops {
    kz_to_float_fn to_float;
    kz_from_float_fn from_float; /* optional: NULL if no quantizer */
    kz_dot_f32_fn dot_f32;
};

/* Reference ops for a ggml type id (enum kz_dtype). Returns a pointer to
 * static storage, or NULL when the type is not supported. Thread-safe. */
const struct kz_type_ops *kz_type_ops_ref(uint32_t type);

/* The reference implementations themselves, one triple per type. Block
 * layouts and exact formulas are in quant.h; accumulation order of the
 * dot products is documented in docs/internals/kernels.md and at each
 * definition. All from_float functions round to nearest. */
void kz_ref_f32_to_float(const void *restrict src, float *restrict dst, int64_t n);
void kz_ref_f32_from_float(const float *restrict src, void *restrict dst, int64_t n);
float kz_ref_f32_dot_f32(int64_t n, const void *restrict w, const float *restrict x);

void kz_ref_f16_to_float(const void *restrict src, float *restrict dst, int64_t n);
void kz_ref_f16_from_float(const float *restrict src, void *restrict dst, int64_t n);
float kz_ref_f16_dot_f32(int64_t n, const void *restrict w, const float *restrict x);

void kz_ref_bf16_to_float(const void *restrict src, float *restrict dst, int64_t n);
void kz_ref_bf16_from_float(const float *restrict src, void *restrict dst, int64_t n);
float kz_ref_bf16_dot_f32(int64_t n, const void *restrict w, const float *restrict x);

void kz_ref_q4_0_to_float(const void *restrict src, float *restrict dst, int64_t n);
void kz_ref_q4_0_from_float(const float *restrict src, void *restrict dst, int64_t n);
float kz_ref_q4_0_dot_f32(int64_t n, const void *restrict w, const float *restrict x);

void kz_ref_q4_1_to_float(const void *restrict src, float *restrict dst, int64_t n);
void kz_ref_q4_1_from_float(const float *restrict src, void *restrict dst, int64_t n);
float kz_ref_q4_1_dot_f32(int64_t n, const void *restrict w, const float *restrict x);

void kz_ref_q5_0_to_float(const void *restrict src, float *restrict dst, int64_t n);
void kz_ref_q5_0_from_float(const float *restrict src, void *restrict dst, int64_t n);
float kz_ref_q5_0_dot_f32(int64_t n, const void *restrict w, const float *restrict x);

void kz_ref_q5_1_to_float(const void *restrict src, float *restrict dst, int64_t n);
void kz_ref_q5_1_from_float(const float *restrict src, void *restrict dst, int64_t n);
float kz_ref_q5_1_dot_f32(int64_t n, const void *restrict w, const float *restrict x);

void kz_ref_q8_0_to_float(const void *restrict src, float *restrict dst, int64_t n);
void kz_ref_q8_0_from_float(const float *restrict src, void *restrict dst, int64_t n);
float kz_ref_q8_0_dot_f32(int64_t n, const void *restrict w, const float *restrict x);

void kz_ref_q2_k_to_float(const void *restrict src, float *restrict dst, int64_t n);
void kz_ref_q2_k_from_float(const float *restrict src, void *restrict dst, int64_t n);
float kz_ref_q2_k_dot_f32(int64_t n, const void *restrict w, const float *restrict x);

void kz_ref_q3_k_to_float(const void *restrict src, float *restrict dst, int64_t n);
void kz_ref_q3_k_from_float(const float *restrict src, void *restrict dst, int64_t n);
float kz_ref_q3_k_dot_f32(int64_t n, const void *restrict w, const float *restrict x);

void kz_ref_q4_k_to_float(const void *restrict src, float *restrict dst, int64_t n);
void kz_ref_q4_k_from_float(const float *restrict src, void *restrict dst, int64_t n);
float kz_ref_q4_k_dot_f32(int64_t n, const void *restrict w, const float *restrict x);

void kz_ref_q5_k_to_float(const void *restrict src, float *restrict dst, int64_t n);
void kz_ref_q5_k_from_float(const float *restrict src, void *restrict dst, int64_t n);
float kz_ref_q5_k_dot_f32(int64_t n, const void *restrict w, const float *restrict x);

void kz_ref_q6_k_to_float(const void *restrict src, float *restrict dst, int64_t n);
void kz_ref_q6_k_from_float(const float *restrict src, void *restrict dst, int64_t n);
float kz_ref_q6_k_dot_f32(int64_t n, const void *restrict w, const float *restrict x);

/* ------------------------------------------------------------------------ */
/* f32 vector ops (ref/ops.c)                                                */
/* ------------------------------------------------------------------------ */

/* RMS norm: out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]; x, w, out (n,).
 * The mean of squares is accumulated in double, in index order.
 * out may equal x (in place); otherwise they must not overlap. */
void kz_ref_rmsnorm(float *out, const float *x, const float *restrict w, int64_t n, float eps);

/* In-place softmax over x (n,), n >= 1, at least one element finite
 * (-inf entries, e.g. masked positions, become 0): x[i] = exp(x[i] - max) / sum.
 * The sum is accumulated in double, in index order. */
void kz_ref_softmax(float *x, int64_t n);

/* Keys are stored in tiles of KZ_ATTN_TILE positions, transposed: element
 * i of position p of a tile at tile[i * KZ_ATTN_TILE + p], tiles of
 * hd * KZ_ATTN_TILE floats one after the other. A position's score is then
 * a column of FMAs across the tile, with no horizontal sum per position.
 * out[p] = scale * (q . k_p) for p < n: one attention head's scores over n
 * positions from the start of kt. The last tile is read whole; its
 * positions from n on may hold any values and are not written to out. */
enum { KZ_ATTN_TILE = 16 };
void kz_ref_attn_scores(const float *q, const float *kt, int n, int hd, float scale, float *out);

/* out[i] += sum over p < n of s[p] * v_p[i] for i < hd, v_p = v + p * stride:
 * one attention head's output, its weights s over the value rows (added to
 * out, so a context can be taken a block of positions at a time). The
 * reference adds to each out[i] in position order. */
void kz_ref_attn_values(const float *s, const float *v, size_t stride, int n, int hd, float *out);

/* out[i] = x[i] * sigmoid(x[i]); out may equal x. */
void kz_ref_silu(float *out, const float *x, int64_t n);

/* SwiGLU gate: out[i] = silu(gate[i]) * up[i]; out may equal gate or up. */
void kz_ref_swiglu(float *out, const float *gate, const float *up, int64_t n);

/* The sum of x (n,), n >= 0, accumulated in double in index order. The
 * SIMD variants add in float over several independent vector accumulators
 * (their own order): `kyozon bench` measures the machine's read bandwidth
 * through this entry, so it must go as fast as the loads can. */
float kz_ref_sum(const float *x, int64_t n);

/* W (rows, cols) of `type` @ x (cols,) -> out (rows,):
 * out[r] = dot_f32(row r of w, x). Rows are contiguous, each
 * kz_dtype_row_size(type, cols) bytes. The type must be supported by
 * kz_type_ops_ref (KZ_ASSERT); cols a multiple of its block size. */
void kz_ref_matvec(const void *w, uint32_t type, int64_t rows, int64_t cols,
                   const float *restrict x, float *restrict out);

/* Same for rows [r0, r1) only: writes out[r0..r1) and nothing else, so
 * threads given disjoint ranges may share w, x and out. */
void kz_ref_matvec_rows(const void *w, uint32_t type, int64_t cols, const float *restrict x,
                        float *restrict out, int64_t r0, int64_t r1);

/* ------------------------------------------------------------------------ */
/* Matrix products over a batch of activations                               */
/* ------------------------------------------------------------------------ */

/* A product W (rows, cols) @ X^T for n_tok activation rows runs in two steps:
 *   1. each activation row x (cols,) is converted once into the format
 *      act_type(wtype) (F32 in the reference; a SIMD family may pick an 8-bit
 *      block format such as Q8_0 or Q8_K so the inner loop is integer);
 *   2. threads split the weight rows: gemm_rows writes
 *      out[t * out_stride + r] = dot(W row r, act row t)
 *      for r in [r0, r1) and t in [0, n_tok). Activation rows are
 *      kz_dtype_row_size(act_type(wtype), cols) bytes apart. Each out
 *      value is the same bits whatever [r0, r1) contains row r (no
 *      row-group tail computed another way): threads split and steal rows
 *      at bounds that vary from run to run (forward.c).
 * Weights are read once per call for all n_tok rows, which is what makes
 * batched prefill and multi-sequence decode cheaper than n separate products. */
uint32_t kz_ref_act_type(uint32_t wtype);
void kz_ref_act_quantize(uint32_t wtype, const float *restrict x, void *restrict dst, int64_t cols);
void kz_ref_gemm_rows(uint32_t wtype, const void *w, int64_t cols, const void *act, int n_tok,
                      float *out, int64_t out_stride, int64_t r0, int64_t r1);

/* ------------------------------------------------------------------------ */
/* Integer dot products over 8-bit activations (ref/dot_q8.c)                */
/* ------------------------------------------------------------------------ */

/* The activation format the SIMD families pair with weight type wtype:
 * KZ_DT_Q8_0 for Q4_0, Q4_1, Q5_0, Q5_1, Q8_0; KZ_DT_Q8_K for Q2_K..Q6_K;
 * KZ_DT_F32 for everything else. Layouts in q8.h. */
uint32_t kz_q8_act_type(uint32_t wtype);

/* x (n,) -> n/256 Q8_K blocks: d = amax/127, qs = round(x * (127/amax))
 * (nearest, ties to even; all zero when amax is 0), bsums from the codes.
 * Q8_0 activations use kz_ref_q8_0_from_float. Codes are in -127..127. */
void kz_ref_quantize_q8_k(const float *restrict x, void *restrict dst, int64_t n);

/* sum_e w[e] * a[e] over n elements: w (n/blck weight blocks), a (n/blck
 * activation blocks of kz_q8_act_type(wtype)). Per weight block the
 * integer products are summed exactly in int32 and the scales applied once
 * (accumulation order at each definition). */
typedef float (*kz_dot_q8_fn)(int64_t n, const void *restrict w, const void *restrict a);
float kz_ref_vec_dot_q4_0_q8_0(int64_t n, const void *restrict w, const void *restrict a);
float kz_ref_vec_dot_q4_1_q8_0(int64_t n, const void *restrict w, const void *restrict a);
float kz_ref_vec_dot_q5_0_q8_0(int64_t n, const void *restrict w, const void *restrict a);
float kz_ref_vec_dot_q5_1_q8_0(int64_t n, const void *restrict w, const void *restrict a);
float kz_ref_vec_dot_q8_0_q8_0(int64_t n, const void *restrict w, const void *restrict a);
float kz_ref_vec_dot_q2_k_q8_k(int64_t n, const void *restrict w, const void *restrict a);
float kz_ref_vec_dot_q3_k_q8_k(int64_t n, const void *restrict w, const void *restrict a);
float kz_ref_vec_dot_q4_k_q8_k(int64_t n, const void *restrict w, const void *restrict a);
float kz_ref_vec_dot_q5_k_q8_k(int64_t n, const void *restrict w, const void *restrict a);
float kz_ref_vec_dot_q6_k_q8_k(int64_t n, const void *restrict w, const void *restrict a);

/* The function above for wtype, or NULL when kz_q8_act_type(wtype) is F32. */
kz_dot_q8_fn kz_ref_dot_q8(uint32_t wtype);

/* act_quantize / gemm_rows with the act_type kz_q8_act_type: the scalar
 * yardstick for the SIMD families' batched products (same contracts as
 * kz_ref_act_quantize / kz_ref_gemm_rows; F32 activations go to those). */
void kz_ref_q8_act_quantize(uint32_t wtype, const float *restrict x, void *restrict dst,
                            int64_t cols);
void kz_ref_q8_gemm_rows(uint32_t wtype, const void *w, int64_t cols, const void *act, int n_tok,
                         float *out, int64_t out_stride, int64_t r0, int64_t r1);

/* ------------------------------------------------------------------------ */
/* Dispatch table                                                            */
/* ------------------------------------------------------------------------ */

/* One implementation family (reference, avx2, neon, ...). Every entry is
 * required; a variant that lacks a specialised op points it at the
 * reference function. Argument contracts are those of the kz_ref_* above. */
struct kz_kernels {
    const char *name; /* "ref", "avx2", ...: the value KZ_KERNELS selects */
    /* per-type ops; NULL for unsupported types */
    const struct kz_type_ops *(*type_ops)(uint32_t type);
    void (*matvec_rows)(const void *w, uint32_t type, int64_t cols, const float *restrict x,
                        float *restrict out, int64_t r0, int64_t r1);
    void (*rmsnorm)(float *out, const float *x, const float *restrict w, int64_t n, float eps);
    void (*softmax)(float *x, int64_t n);
    void (*silu)(float *out, const float *x, int64_t n);
    void (*swiglu)(float *out, const float *gate, const float *up, int64_t n);
    float (*sum)(const float *x, int64_t n);
    void (*attn_scores)(const float *q, const float *kt, int n, int hd, float scale, float *out);
    void (*attn_values)(const float *s, const float *v, size_t stride, int n, int hd, float *out);
    /* batched products, contracts of kz_ref_act_type / act_quantize / gemm_rows */
    uint32_t (*act_type)(uint32_t wtype);
    void (*act_quantize)(uint32_t wtype, const float *restrict x, void *restrict dst, int64_t cols);
    void (*gemm_rows)(uint32_t wtype, const void *w, int64_t cols, const void *act, int n_tok,
                      float *out, int64_t out_stride, int64_t r0, int64_t r1);
};

/* The reference table (static storage). */
extern const struct kz_kernels kz_kernels_ref;

/* The table the engine should use, chosen on the first call and then fixed
 * for the life of the process (static storage; thread-safe after the first
 * call returns; call it once at startup before spawning workers).
 * Without KZ_KERNELS it is the best variant this CPU runs (avx512 > avx2 >
 * ref on x86-64; neon-dotprod > neon > ref on AArch64). KZ_KERNELS=<name>
 * forces a variant; a name that is unknown or that this CPU cannot run is
 * refused with a warning on stderr and the automatic choice is used
 * instead (dispatch.c). */
const struct kz_kernels *kz_kernels_get(void);

/* Every variant built into this binary that this CPU can run, best first,
 * "ref" always last. Writes at most max pointers; returns how many. */
int kz_kernels_list(const struct kz_kernels **out, int max);

/* The variant called name if this CPU can run it, else NULL. */
const struct kz_kernels *kz_kernels_find(const char *name);

#endif
