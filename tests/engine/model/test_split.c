/* SPDX-License-Identifier: MIT
 * How threads share a decode step does not change a bit of its result.
 * At one token a step, threads take the weight rows in chunks and steal
 * chunks from each other's back ends; which thread runs a chunk depends on
 * timing, so the logits of 1, 2, 3 and 4 threads are compared byte for
 * byte, for every step of a short generation, in three weight types (each
 * has its own decode kernel). Self-contained (synthetic models).
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/model/model.h"
#include "engine/model/synth.h"
#include "engine/sample/sampler.h"
#include "engine/sched/threadpool.h"
#include "t.h"

enum { STEPS = 12, MAX_TH = 4 };

/* Greedy generation from a fixed prompt; the logits of every step go to
 * out (STEPS * n_vocab). */
static int generate(const struct kz_model *m, struct kz_pool *pool, float *out)
{
    int nv = kz_model_config(m)->n_vocab;
    struct kz_ctx *x = NULL;
    struct kz_err err = {{0}};
    if (kz_ctx_new(m, 64, KZ_DT_F16, pool, &x, &err)) {
        T_OK(0, "context: %s", err.msg);
        return -1;
    }
    int32_t prompt[5] = {1, 17, 230, 5, 99}, t = 0;
    int rc = kz_ctx_eval(x, prompt, 5, &err);
    for (int s = 0; s < STEPS && !rc; s++) {
        const float *l = kz_ctx_logits(x);
        memcpy(out + (size_t)s * (size_t)nv, l, (size_t)nv * sizeof *out);
        t = kz_argmax(l, nv);
        rc = kz_ctx_eval(x, &t, 1, &err);
    }
    T_OK(rc == 0, "generation: %s", err.msg);
    kz_ctx_free(x);
    return rc ? -1 : 0;
}

static void same_bits(const char *type)
{
    char path[512];
    snprintf(path, sizeof path, "%s/split-%s.gguf", t_tmpdir(), type);
    struct kz_synth_opts o = {.out_path = path, .shape = "tiny", .type = type, .seed = 5, .n_threads = 2};
    struct kz_err err = {{0}};
    struct kz_model *m = NULL;
    if (kz_synth_write(&o, &err) || kz_model_load(path, &m, &err)) {
        T_OK(0, "setup %s: %s", type, err.msg);
        return;
    }
    size_t n = (size_t)STEPS * (size_t)kz_model_config(m)->n_vocab;
    float *ref = kz_malloc(n * sizeof *ref), *got = kz_malloc(n * sizeof *got);
    if (ref && got && generate(m, NULL, ref) == 0) {
        for (int th = 2; th <= MAX_TH; th++) {
            struct kz_pool *pool = kz_pool_new(th);
            T_OK(pool != NULL, "pool of %d", th);
            /* several rounds: each is another interleaving of the threads */
            for (int round = 0; pool && round < 3; round++) {
                if (generate(m, pool, got))
                    break;
                size_t i = 0;
                while (i < n && memcmp(&ref[i], &got[i], sizeof *ref) == 0)
                    i++;
                T_OK(i == n, "%s, %d threads, round %d: logit %zu of step %zu differs (%.9g vs %.9g)", type, th,
                     round, i % (size_t)kz_model_config(m)->n_vocab, i / (size_t)kz_model_config(m)->n_vocab,
                     i < n ? (double)ref[i] : 0.0, i < n ? (double)got[i] : 0.0);
            }
            kz_pool_free(pool);
        }
    }
    kz_free(ref);
    kz_free(got);
    kz_model_free(m);
    remove(path);
}

static void q8_0(void) { same_bits("q8_0"); }
static void q4_0(void) { same_bits("q4_0"); }
static void q4_k_m(void) { same_bits("q4_k_m"); }

int main(void)
{
    t_subtest("Q8_0 decode, 1 to 4 threads", q8_0);
    t_subtest("Q4_0 decode, 1 to 4 threads", q4_0);
    t_subtest("Q4_K_M decode, 1 to 4 threads", q4_k_m);
    return t_done();
}
