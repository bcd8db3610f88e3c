/* SPDX-License-Identifier: MIT
 * Kernel benchmark: for every variant this CPU runs and every weight type,
 *   - decode: gemm_rows with one activation row over a weight matrix
 *     (default 5632 x 2048, the TinyLlama FFN shape), reported as GB/s of
 *     weight bytes streamed. Several copies of the matrix are cycled so the
 *     working set (>= 256 MiB) is larger than any cache. They are advised
 *     for transparent huge pages, as the model loader advises the weights
 *     (kz_gguf_load), since page walks change what a stream costs; with --hot one
 *     copy is cycled, from cache if it fits (e.g. --rows 256: 288 KiB of
 *     Q4_0), which gives the kernel's own bound, without memory;
 *   - prefill: gemm_rows with 16 activation rows (--tok N: N rows, e.g. the
 *     sequences of a decode batch) on one copy, reported as Gop/s
 *     (2 * rows * cols * n_tok / time);
 *   - act_quantize: activation rows per second is noise next to these and
 *     is not reported.
 * Single thread; each figure is the median of the runs (default 7).
 *
 * Usage: bench_kernels [--rows R] [--cols C] [--runs N] [--variant NAME]
 *                      [--type NAME] [--tok N] [--no-prefill] [--hot]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/mman.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/kernels/kernels.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint32_t rng = 2463534242u;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return (float)(rng >> 8) / 8388608.0f - 1.0f;
}

static const uint32_t types[] = {KZ_DT_Q4_0, KZ_DT_Q8_0, KZ_DT_Q4_K, KZ_DT_Q6_K, KZ_DT_Q5_K,
                                 KZ_DT_Q4_1, KZ_DT_Q5_0, KZ_DT_Q5_1, KZ_DT_Q3_K, KZ_DT_Q2_K,
                                 KZ_DT_F16,  KZ_DT_BF16, KZ_DT_F32};

int main(int argc, char **argv)
{
    int64_t rows = 5632, cols = 2048;
    int runs = 7, prefill = 1, ptok = 16, hot = 0;
    const char *only_variant = NULL, *only_type = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            rows = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--cols") && i + 1 < argc)
            cols = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--variant") && i + 1 < argc)
            only_variant = argv[++i];
        else if (!strcmp(argv[i], "--type") && i + 1 < argc)
            only_type = argv[++i];
        else if (!strcmp(argv[i], "--tok") && i + 1 < argc)
            ptok = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-prefill"))
            prefill = 0;
        else if (!strcmp(argv[i], "--hot"))
            hot = 1;
        else {
            fprintf(stderr,
                    "usage: %s [--rows R] [--cols C] [--runs N] [--variant NAME] [--type NAME] [--tok N] "
                    "[--no-prefill] [--hot]\n",
                    argv[0]);
            return 2;
        }
    }
    if (cols % 256 != 0 || rows <= 0 || runs <= 0 || runs > 101 || ptok < 1 || ptok > 256) {
        fprintf(stderr, "cols must be a multiple of 256, rows > 0, 1 <= runs <= 101, 1 <= tok <= 256\n");
        return 2;
    }
    const struct kz_kernels *variants[8];
    int nv = kz_kernels_list(variants, 8);
    const int n_pre = ptok;
    float *x = kz_malloc(sizeof(float) * (size_t)cols * n_pre);
    float *out = kz_malloc(sizeof(float) * (size_t)rows * n_pre);
    unsigned char *act = kz_malloc_aligned(sizeof(float) * (size_t)cols * n_pre, 64);
    for (int64_t i = 0; i < cols * n_pre; i++)
        x[i] = frand();
    printf("%-6s %-7s %12s %11s%-3d\n", "type", "variant", "decode GB/s", "Gop/s tok=", n_pre);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        uint32_t t = types[ti];
        if (only_type && kz_dtype_from_name(only_type) != (int)t)
            continue;
        size_t rs = kz_dtype_row_size(t, cols), mat = rs * (size_t)rows;
        /* copies past any cache, so decode reads memory; --hot: one copy, read
         * from cache if it fits, for the kernel's own (instruction) bound */
        int copies = hot ? 1 : (int)((256u << 20) / mat) + 1;
        unsigned char *w = kz_malloc_aligned(mat * (size_t)copies, (size_t)2 << 20);
        if (!w) {
            fprintf(stderr, "out of memory for %s\n", kz_dtype_name(t));
            return 1;
        }
#ifdef MADV_HUGEPAGE
        (void)madvise(w, mat * (size_t)copies, MADV_HUGEPAGE); /* advice: without it the figures are for 4 KiB pages */
#endif
        /* one quantized row, repeated: contents do not affect speed */
        float *row = kz_malloc(sizeof(float) * (size_t)cols);
        for (int64_t i = 0; i < cols; i++)
            row[i] = frand();
        kz_type_ops_ref(t)->from_float(row, w, cols);
        for (size_t r = 1; r < (size_t)rows * (size_t)copies; r++)
            memcpy(w + r * rs, w, rs);
        kz_free(row);
        for (int v = 0; v < nv; v++) {
            const struct kz_kernels *k = variants[v];
            if (only_variant && strcmp(only_variant, k->name) != 0)
                continue;
            size_t ars = kz_dtype_row_size(k->act_type(t), cols);
            for (int tk = 0; tk < n_pre; tk++)
                k->act_quantize(t, x + (size_t)tk * (size_t)cols, act + (size_t)tk * ars, cols);
            double times[101];
            int druns = k == &kz_kernels_ref && runs > 3 ? 3 : runs; /* ref is slow */
            /* decode: one pass over every copy per run, after a warm-up pass */
            for (int r = -1; r < druns; r++) {
                double t0 = now();
                for (int c = 0; c < copies; c++)
                    k->gemm_rows(t, w + (size_t)c * mat, cols, act, 1, out, 0, 0, rows);
                if (r >= 0)
                    times[r] = now() - t0;
            }
            double gbs = (double)mat * copies / median(times, druns) / 1e9;
            double gops = 0;
            if (prefill) {
                int pruns = k == &kz_kernels_ref ? 1 : runs;
                for (int r = -1; r < pruns; r++) {
                    double t0 = now();
                    k->gemm_rows(t, w, cols, act, n_pre, out, rows, 0, rows);
                    if (r >= 0)
                        times[r] = now() - t0;
                }
                gops = 2.0 * (double)rows * (double)cols * n_pre / median(times, pruns) / 1e9;
            }
            printf("%-6s %-7s %12.2f %14.1f\n", kz_dtype_name(t), k->name, gbs, gops);
            fflush(stdout);
        }
        kz_free_aligned(w);
    }
    kz_free(x);
    kz_free(out);
    kz_free_aligned(act);
    return 0;
}
