/* SPDX-License-Identifier: MIT
 * Reference f32 ops (rmsnorm, softmax, silu, swiglu), the matrix-vector
 * product over quantized rows, and the dispatch table.
 *
 * To add an op: compute the expected values in double in the test, from
 * the op's defining formula, and compare with a named tolerance.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/kernels/kernels.h"
#include "t.h"

#define TOL_OP 1e-6 /* relative, f32 ops vs a double evaluation of the formula */

static uint32_t rng = 2463534242u;

static float frand(void) /* [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return (float)(rng >> 8) / 8388608.0f - 1.0f;
}

static int close_to(double got, double want, double tol)
{
    return fabs(got - want) <= tol * (fabs(want) + 1e-30);
}

static void rmsnorm(void)
{
    enum { N = 300 };
    float x[N], w[N], out[N];
    for (int i = 0; i < N; i++) {
        x[i] = frand() * 3.0f;
        w[i] = 1.0f + frand() * 0.5f;
    }
    double ss = 0;
    for (int i = 0; i < N; i++)
        ss += (double)x[i] * (double)x[i];
    double scale = 1.0 / sqrt(ss / N + 1e-5);
    kz_ref_rmsnorm(out, x, w, N, 1e-5f);
    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += !close_to((double)out[i], (double)x[i] * scale * (double)w[i], TOL_OP);
    T_EQ_INT(bad, 0);

    /* in place gives the same bytes */
    float y[N];
    memcpy(y, x, sizeof y);
    kz_ref_rmsnorm(y, y, w, N, 1e-5f);
    T_OK(memcmp(y, out, sizeof y) == 0, "in place");

    /* all zeros: eps keeps it finite */
    float z[4] = {0}, one[4] = {1, 1, 1, 1};
    kz_ref_rmsnorm(z, z, one, 4, 1e-6f);
    T_OK(z[0] == 0.0f && z[3] == 0.0f, "zeros stay zeros");
}

static void softmax(void)
{
    enum { N = 257 };
    float x[N];
    double want[N], m = -(double)INFINITY, sum = 0;
    for (int i = 0; i < N; i++) {
        x[i] = frand() * 20.0f;
        if ((double)x[i] > m)
            m = (double)x[i];
    }
    for (int i = 0; i < N; i++) {
        want[i] = exp((double)x[i] - m);
        sum += want[i];
    }
    kz_ref_softmax(x, N);
    int bad = 0;
    double total = 0;
    for (int i = 0; i < N; i++) {
        bad += !close_to((double)x[i], want[i] / sum, 1e-5);
        total += (double)x[i];
    }
    T_EQ_INT(bad, 0);
    T_OK(fabs(total - 1.0) < 1e-5, "sums to 1 (%.9f)", total);

    /* large logits must not overflow: the max is subtracted first */
    float big[3] = {1000.0f, 1000.0f, -1000.0f};
    kz_ref_softmax(big, 3);
    T_OK(big[0] == 0.5f && big[1] == 0.5f && big[2] == 0.0f, "max-subtracted");
    float single[1] = {-3.0f};
    kz_ref_softmax(single, 1);
    T_OK(single[0] == 1.0f, "single element");
    float ninf[2] = {-INFINITY, 0.0f};
    kz_ref_softmax(ninf, 2);
    T_OK(ninf[0] == 0.0f && ninf[1] == 1.0f, "masked (-inf) entry");
}

static void silu_swiglu(void)
{
    enum { N = 64 };
    float x[N], u[N], out[N], out2[N];
    for (int i = 0; i < N; i++) {
        x[i] = frand() * 8.0f;
        u[i] = frand();
    }
    kz_ref_silu(out, x, N);
    kz_ref_swiglu(out2, x, u, N);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        double s = (double)x[i] / (1.0 + exp(-(double)x[i]));
        bad += !close_to((double)out[i], s, TOL_OP);
        bad += !close_to((double)out2[i], s * (double)u[i], TOL_OP);
    }
    T_EQ_INT(bad, 0);
    float big[2] = {-100.0f, 100.0f};
    kz_ref_silu(big, big, 2);
    T_OK(big[0] <= 0.0f && big[0] > -1e-30f && big[1] == 100.0f, "saturation");
}

/* matvec over every supported type equals per-row dot_f32, and the row
 * range version writes exactly its rows. */
static void matvec(void)
{
    static const uint32_t ts[] = {KZ_DT_F32, KZ_DT_F16, KZ_DT_BF16, KZ_DT_Q8_0, KZ_DT_Q4_0,
                                  KZ_DT_Q4_K, KZ_DT_Q6_K, KZ_DT_Q5_K, KZ_DT_Q2_K};
    enum { ROWS = 5, COLS = 512 };
    float *wf = kz_malloc(ROWS * COLS * sizeof *wf);
    float x[COLS], out[ROWS + 2], want[ROWS];
    for (int i = 0; i < ROWS * COLS; i++)
        wf[i] = frand();
    for (int i = 0; i < COLS; i++)
        x[i] = frand();
    for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) {
        const struct kz_type_ops *ops = kz_type_ops_ref(ts[k]);
        size_t rs = kz_dtype_row_size(ts[k], COLS);
        unsigned char *w = kz_malloc(rs * ROWS);
        for (int r = 0; r < ROWS; r++) {
            ops->from_float(wf + r * COLS, w + r * rs, COLS);
            want[r] = ops->dot_f32(COLS, w + r * rs, x);
        }
        kz_ref_matvec(w, ts[k], ROWS, COLS, x, out);
        T_OK(memcmp(out, want, sizeof want) == 0, "%s matvec == row dots", kz_dtype_name(ts[k]));

        for (int i = 0; i < ROWS + 2; i++)
            out[i] = -7.0f;
        kz_ref_matvec_rows(w, ts[k], COLS, x, out, 1, 3);
        T_OK(out[0] == -7.0f && out[3] == -7.0f && out[4] == -7.0f, "only rows [1,3) written");
        T_OK(out[1] == want[1] && out[2] == want[2], "%s rows 1..2", kz_dtype_name(ts[k]));
        kz_ref_matvec_rows(w, ts[k], COLS, x, out, 2, 2);
        T_OK(out[4] == -7.0f, "empty range writes nothing");
        kz_free(w);
    }
    kz_free(wf);
}

static void dispatch(void)
{
    setenv("KZ_KERNELS", "ref", 1);
    const struct kz_kernels *k = kz_kernels_get();
    T_OK(k != NULL && strcmp(k->name, "ref") == 0, "ref table");
    T_OK(k == kz_kernels_get(), "stable across calls");
    T_OK(k->type_ops && k->matvec_rows && k->rmsnorm && k->softmax && k->silu && k->swiglu,
         "every entry filled");
    T_OK(k->type_ops(KZ_DT_Q4_K) == kz_type_ops_ref(KZ_DT_Q4_K), "type ops");
    T_OK(k->type_ops(KZ_DT_IQ4_XS) == NULL, "unsupported type");
}

int main(void)
{
    t_subtest("rmsnorm", rmsnorm);
    t_subtest("softmax", softmax);
    t_subtest("silu and swiglu", silu_swiglu);
    t_subtest("matvec", matvec);
    t_subtest("dispatch table", dispatch);
    return t_done();
}
