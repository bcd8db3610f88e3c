/* SPDX-License-Identifier: MIT
 * kyozon bench: prompt and generation speed of a model on this machine, and
 * generation as a fraction of the memory-bandwidth roofline.
 *
 * Decode reads every weight once per token, so its ceiling is
 * bandwidth / bytes-per-token. The bandwidth is measured here, in the same
 * run: a vectorized read (the kernel table's sum, four independent vector
 * accumulators) of a 1 GiB float array with the same thread count, best of
 * 7, before the first repetition and after each one. Each repetition's
 * roofline takes the faster of the two probes around it: on a shared
 * machine whose bandwidth swings within minutes (the EPYC VM of
 * docs/PERFORMANCE.md: 28 to 56 GB/s), one probe after all the runs put
 * generation at 51% or at 149% of a roofline from another minute. An
 * earlier probe, the f32 dot against a cached vector, read 30-40% more
 * slowly than this on the 2-vCPU EPYC of docs/PERFORMANCE.md, below what Q8_0
 * decode itself reached: a roofline has to be the fastest read we can make.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "cli/args.h"
#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/kernels/kernels.h"
#include "engine/model/model.h"
#include "engine/sample/sampler.h"
#include "engine/sched/threadpool.h"

static const char help[] =
    "Usage: kyozon bench -m FILE [-p N] [-n N] [-d N] [-t THREADS] [-r REPS] [--kv-type T]\n"
    "\n"
    "Measures prompt processing and generation speed (median and range over\n"
    "the repetitions), this machine's memory bandwidth (before and after each\n"
    "repetition), and generation as a percentage of the bandwidth roofline\n"
    "(bandwidth / weight bytes per token; the median over the repetitions, each\n"
    "against the faster of the two measurements around it).\n"
    "\n"
    "Options:\n"
    "  -m, --model FILE   GGUF model\n"
    "  -p N               prompt tokens, evaluated as one batch (default 512)\n"
    "  -n N               generated tokens, one at a time (default 128)\n"
    "  -d N               tokens already in the context when generation starts,\n"
    "                     evaluated as one batch and not timed (default 0)\n"
    "  -t, --threads N    threads (default: physical cores)\n"
    "  -r N               repetitions (default 5)\n"
    "      --kv-type T    KV cache type, f16 (default) or f32\n"
    "  -h, --help         show this help\n";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define BW_CHUNK 16384 /* floats: the unit in which the array is split between threads */

struct bw_job {
    const float *a;
    size_t n;
    float (*sum)(const float *x, int64_t n);
    float sums[64];
};

static void bw_task(void *arg, int ith, int nth)
{
    struct bw_job *j = arg;
    long c0, c1;
    kz_split_rows((long)(j->n / BW_CHUNK), ith, nth, &c0, &c1);
    /* kept, so the reads cannot be optimized away */
    j->sums[ith & 63] = j->sum(j->a + (size_t)c0 * BW_CHUNK, (int64_t)(c1 - c0) * BW_CHUNK);
}

/* A 1 GiB float array, on huge pages where the system allows, as the
 * weights are (kz_gguf_load): a read on 4 KiB pages measured about 10% less
 * on an AMD EPYC, which would flatter the share of the roofline. NULL when
 * out of memory. */
static float *bw_array(size_t n)
{
    float *a = kz_malloc_aligned(n * sizeof(float), (size_t)2 << 20);
    if (!a)
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(a, n * sizeof(float), MADV_HUGEPAGE);
#endif
    for (size_t i = 0; i < n; i++)
        a[i] = (float)(i & 7);
    return a;
}

/* GB/s of a vectorized read of a (n floats) with the pool's threads, best
 * of 7; 0 without an array. */
static double measure_bandwidth(struct kz_pool *pool, const float *a, size_t n)
{
    if (!a)
        return 0.0;
    struct bw_job j = {a, n, kz_kernels_get()->sum, {0}};
    double best = 0.0;
    for (int r = 0; r < 7; r++) {
        double t0 = now();
        kz_pool_run(pool, bw_task, &j);
        double gbs = (double)(n * sizeof(float)) / (now() - t0) / 1e9;
        if (gbs > best)
            best = gbs;
    }
    return best;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int kz_cmd_bench(int argc, char **argv)
{
    const char *path = NULL, *kv_name = NULL;
    long n_prompt = 512, n_gen = 128, depth = 0, threads = 0, reps = 5;
    const struct kz_opt opts[] = {
        KZ_ARG_TEXT("-m|--model", &path),
        KZ_ARG_INT("-p", &n_prompt, 1, 1 << 16),
        KZ_ARG_INT("-n", &n_gen, 1, 1 << 16),
        KZ_ARG_INT("-d", &depth, 0, 1 << 16),
        KZ_ARG_INT("-t|--threads", &threads, 1, 1024),
        KZ_ARG_INT("-r", &reps, 1, 1000),
        KZ_ARG_TEXT("--kv-type", &kv_name),
    };
    int rc = KZ_ARGS("bench", help, opts, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!path) {
        fprintf(stderr, "kyozon bench: -m FILE is required (see kyozon bench --help)\n");
        return 2;
    }
    int nth = threads > 0 ? (int)threads : kz_cpu_physical_cores();
    struct kz_err err = {{0}};
    struct kz_model *m = NULL;
    struct kz_ctx *ctx = NULL;
    struct kz_pool *pool = kz_pool_new(nth);
    int32_t *toks = NULL;
    double *tp = NULL, *tg = NULL, *bw = NULL, *frac = NULL;
    size_t bw_n = ((size_t)1 << 30) / sizeof(float);
    float *bw_a = NULL;
    int status = 1;
    if (!pool) {
        fprintf(stderr, "kyozon bench: cannot start %d threads\n", nth);
        return 1;
    }
    long n_toks = n_prompt > depth ? n_prompt : depth;
    uint32_t kv_type;
    if (kz_kv_type_parse(kv_name, &kv_type, &err) || kz_model_load(path, &m, &err) ||
        kz_ctx_new(m, (int)(n_toks + n_gen), kv_type, pool, &ctx, &err))
        goto fail;
    const struct kz_model_config *c = kz_model_config(m);
    toks = kz_malloc((size_t)n_toks * sizeof *toks);
    tp = kz_calloc((size_t)reps, sizeof *tp);
    tg = kz_calloc((size_t)reps, sizeof *tg);
    bw = kz_calloc((size_t)reps + 1, sizeof *bw);
    frac = kz_calloc((size_t)reps, sizeof *frac);
    bw_a = bw_array(bw_n); /* NULL: no roofline, the speeds still count */
    if (!toks || !tp || !tg || !bw || !frac) {
        kz_err_set(&err, KZ_ENOMEM, "out of memory");
        goto fail;
    }
    for (long i = 0; i < n_toks; i++)
        toks[i] = (int32_t)((i * 7919 + 13) % c->n_vocab);
    /* warm-up: fault the weights in */
    kz_ctx_reset(ctx);
    if (kz_ctx_eval(ctx, toks, (int)(n_prompt < 16 ? n_prompt : 16), &err))
        goto fail;
    double bytes = (double)kz_model_decode_bytes(m);
    bw[0] = measure_bandwidth(pool, bw_a, bw_n);
    for (long r = 0; r < reps; r++) {
        kz_ctx_reset(ctx);
        double t0 = now();
        if (kz_ctx_eval(ctx, toks, (int)n_prompt, &err))
            goto fail;
        tp[r] = (double)n_prompt / (now() - t0);
        /* generation from an empty context (or after -d tokens), as
         * llama-bench's tg test does, so the two tools' figures compare */
        kz_ctx_reset(ctx);
        if (depth > 0 && kz_ctx_eval(ctx, toks, (int)depth, &err))
            goto fail;
        int32_t t = toks[0];
        t0 = now();
        for (long i = 0; i < n_gen; i++) {
            if (kz_ctx_eval(ctx, &t, 1, &err))
                goto fail;
            t = kz_argmax(kz_ctx_logits(ctx), c->n_vocab);
        }
        tg[r] = (double)n_gen / (now() - t0);
        bw[r + 1] = measure_bandwidth(pool, bw_a, bw_n);
        double around = bw[r] > bw[r + 1] ? bw[r] : bw[r + 1];
        frac[r] = around > 0 ? tg[r] * bytes / (around * 1e9) : 0.0;
    }
    qsort(tp, (size_t)reps, sizeof *tp, cmp_double);
    qsort(tg, (size_t)reps, sizeof *tg, cmp_double);
    qsort(bw, (size_t)reps + 1, sizeof *bw, cmp_double);
    qsort(frac, (size_t)reps, sizeof *frac, cmp_double);
    double med_bw = bw[(reps + 1) / 2], roof = med_bw * 1e9 / bytes; /* the upper median of reps + 1 */
    double med_p = tp[reps / 2], med_g = tg[reps / 2];
    printf("model        %s (%s, %.2f B parameters, %.0f MB read per token)\n", path, c->arch_name,
           (double)kz_model_n_params(m) / 1e9, bytes / 1e6);
    printf("kernels      %s, %d thread(s), %s KV cache\n", kz_kernels_get()->name, nth, kz_dtype_name(kv_type));
    if (bw_a)
        printf("bandwidth    %.1f GB/s median, %.1f-%.1f (vectorized 1 GiB read, best of 7, before and after each "
               "repetition)\n",
               med_bw, bw[0], bw[reps]);
    else
        printf("bandwidth    not measured (no memory for the 1 GiB read)\n");
    printf("\n| test | t/s (median) | min | max | %% of roofline |\n|---|---|---|---|---|\n");
    printf("| pp%ld | %.2f | %.2f | %.2f | |\n", n_prompt, med_p, tp[0], tp[reps - 1]);
    char depth_s[32] = "";
    if (depth > 0) /* the roofline counts weights only; the KV cache read at depth is on top */
        snprintf(depth_s, sizeof depth_s, " @ d%ld", depth);
    /* the median of each repetition's share of its own roofline (not the
     * median t/s over the roofline at the median bandwidth shown beside it) */
    if (bw_a)
        printf("| tg%ld%s | %.2f | %.2f | %.2f | %.1f%% of %.1f t/s |\n", n_gen, depth_s, med_g, tg[0], tg[reps - 1],
               100.0 * frac[reps / 2], roof);
    else
        printf("| tg%ld%s | %.2f | %.2f | %.2f | n/a |\n", n_gen, depth_s, med_g, tg[0], tg[reps - 1]);
    status = 0;
    goto out;
fail:
    fprintf(stderr, "kyozon bench: %s\n", err.msg);
out:
    kz_free(toks);
    kz_free(tp);
    kz_free(tg);
    kz_free(bw);
    kz_free(frac);
    kz_free_aligned(bw_a);
    kz_ctx_free(ctx);
    kz_model_free(m);
    kz_pool_free(pool);
    return status;
}
