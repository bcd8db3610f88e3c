/* SPDX-License-Identifier: MIT
 * Cost of one decode step against the number of sequences in the batch:
 * the core figure behind continuous batching. For each batch size n it
 * evaluates `steps` steps of n single-token sequences and prints ms per step
 * and tokens/s. Weights are read once per step, so while the kernels are
 * memory-bound tokens/s grows with n; once compute-bound it flattens.
 *
 *   build/bench_batch MODEL.gguf [THREADS] [STEPS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "engine/gguf/dtype.h"
#include "engine/model/model.h"
#include "engine/sched/threadpool.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_batch MODEL.gguf [THREADS] [STEPS]\n");
        return 2;
    }
    int nth = argc > 2 ? atoi(argv[2]) : 1, steps = argc > 3 ? atoi(argv[3]) : 20;
    enum { MAXB = 16 };
    struct kz_model *m = NULL;
    struct kz_err e = {{0}};
    struct kz_work *w = NULL;
    struct kz_ctx *c[MAXB];
    if (kz_model_load(argv[1], &m, &e) || kz_work_new(m, MAXB, MAXB, 512, &w, &e)) {
        fprintf(stderr, "bench_batch: %s\n", e.msg);
        return 1;
    }
    struct kz_pool *p = nth > 1 ? kz_pool_new(nth) : NULL;
    for (int i = 0; i < MAXB; i++) {
        int32_t t = 5 + i;
        if (kz_ctx_new(m, 512, KZ_DT_F16, p, &c[i], &e) || kz_ctx_eval(c[i], &t, 1, &e)) {
            fprintf(stderr, "bench_batch: %s\n", e.msg);
            return 1;
        }
    }
    printf("%s, %d thread(s), %d steps per size\n| batch | ms/step | tokens/s | vs batch 1 |\n|---|---|---|---|\n",
           argv[1], nth, steps);
    {   /* warm-up: fault the weights in and settle the clocks */
        struct kz_batch_item it[MAXB];
        for (int i = 0; i < MAXB; i++)
            it[i] = (struct kz_batch_item){c[i], 100, KZ_BATCH_LOGITS};
        kz_model_eval_batch(m, w, p, it, MAXB, &e);
        kz_model_eval_batch(m, w, p, it, 1, &e);
    }
    static const int sizes[] = {1, 2, 4, 8, 16};
    double base = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int n = sizes[k];
        struct kz_batch_item it[MAXB];
        for (int i = 0; i < MAXB; i++)
            kz_ctx_reset(c[i]);
        double t0 = now();
        for (int s = 0; s < steps; s++) {
            for (int i = 0; i < n; i++)
                it[i] = (struct kz_batch_item){c[i], 100 + s, KZ_BATCH_LOGITS};
            if (kz_model_eval_batch(m, w, p, it, n, &e)) {
                fprintf(stderr, "bench_batch: %s\n", e.msg);
                return 1;
            }
        }
        double dt = (now() - t0) / steps, tps = n / dt;
        if (n == 1)
            base = tps;
        printf("| %d | %.2f | %.1f | %.2fx |\n", n, dt * 1e3, tps, tps / base);
    }
    for (int i = 0; i < MAXB; i++)
        kz_ctx_free(c[i]);
    kz_work_free(w);
    kz_pool_free(p);
    kz_model_free(m);
    return 0;
}
