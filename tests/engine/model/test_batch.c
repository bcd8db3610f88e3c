/* SPDX-License-Identifier: MIT
 * Batched evaluation agrees with one-token-at-a-time evaluation:
 *   - a prompt in one batch == the same prompt token by token;
 *   - three sequences decoded in one batch == each decoded alone;
 *   - pooled embeddings are unit length and batch-independent;
 *   - batches that do not fit are refused without changing any context.
 * Self-contained (a synthetic model); the ctest run also covers KZ_KERNELS.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/model/model.h"
#include "engine/model/synth.h"
#include "engine/sched/threadpool.h"
#include "t.h"

static struct kz_model *model;
static struct kz_pool *pool;
static int nv;

static double maxdiff(const float *a, const float *b, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m)
            m = d;
    }
    return m;
}

static void prompt_batch(void)
{
    int32_t toks[40];
    for (int i = 0; i < 40; i++)
        toks[i] = (i * 37 + 11) % nv;
    struct kz_ctx *a = NULL, *b = NULL;
    struct kz_err err = {{0}};
    T_EQ_INT(kz_ctx_new(model, 64, KZ_DT_F32, pool, &a, &err), KZ_OK);
    T_EQ_INT(kz_ctx_new(model, 64, KZ_DT_F32, pool, &b, &err), KZ_OK);
    T_EQ_INT(kz_ctx_eval(a, toks, 40, &err), KZ_OK);
    for (int i = 0; i < 40; i++)
        T_EQ_INT(kz_ctx_eval(b, &toks[i], 1, &err), KZ_OK);
    double d = maxdiff(kz_ctx_logits(a), kz_ctx_logits(b), nv);
    T_OK(d < 1e-3, "batched prompt vs token by token: max diff %.3g", d);
    T_EQ_INT(kz_ctx_n_past(a), 40);
    kz_ctx_free(a);
    kz_ctx_free(b);
}

static void multi_sequence(void)
{
    enum { NS = 3 };
    struct kz_ctx *solo[NS], *multi[NS];
    struct kz_err err = {{0}};
    struct kz_work *w = NULL;
    T_EQ_INT(kz_work_new(model, 16, NS, 64, &w, &err), KZ_OK);
    for (int s = 0; s < NS; s++) {
        int32_t p[5];
        for (int i = 0; i < 5 + s - 2; i++)
            p[i] = (s * 101 + i * 7 + 3) % nv;
        kz_ctx_new(model, 64, KZ_DT_F32, pool, &solo[s], &err);
        kz_ctx_new(model, 64, KZ_DT_F32, pool, &multi[s], &err);
        kz_ctx_eval(solo[s], p, 3 + s, &err);
        kz_ctx_eval(multi[s], p, 3 + s, &err);
    }
    for (int step = 0; step < 4; step++) {
        struct kz_batch_item items[NS];
        for (int s = 0; s < NS; s++) {
            int32_t t = (step * 13 + s * 29 + 5) % nv;
            kz_ctx_eval(solo[s], &t, 1, &err);
            items[s].ctx = multi[s];
            items[s].token = t;
            items[s].flags = KZ_BATCH_LOGITS;
        }
        T_EQ_INT(kz_model_eval_batch(model, w, pool, items, NS, &err), KZ_OK);
        for (int s = 0; s < NS; s++) {
            double d = maxdiff(kz_ctx_logits(solo[s]), kz_ctx_logits(multi[s]), nv);
            T_OK(d < 1e-3, "step %d seq %d: max diff %.3g", step, s, d);
            T_EQ_INT(kz_ctx_n_past(multi[s]), kz_ctx_n_past(solo[s]));
        }
    }
    /* two tokens of one context and one of another in the same batch */
    struct kz_batch_item mix[3] = {{multi[0], 5, 0}, {multi[1], 6, KZ_BATCH_LOGITS}, {multi[0], 7, KZ_BATCH_LOGITS}};
    int32_t t57[2] = {5, 7}, t6 = 6;
    kz_ctx_eval(solo[0], t57, 2, &err);
    kz_ctx_eval(solo[1], &t6, 1, &err);
    T_EQ_INT(kz_model_eval_batch(model, w, pool, mix, 3, &err), KZ_OK);
    T_OK(maxdiff(kz_ctx_logits(solo[0]), kz_ctx_logits(multi[0]), nv) < 1e-3, "interleaved seq 0");
    T_OK(maxdiff(kz_ctx_logits(solo[1]), kz_ctx_logits(multi[1]), nv) < 1e-3, "interleaved seq 1");

    /* refusals leave every context as it was */
    int before = kz_ctx_n_past(multi[0]);
    struct kz_batch_item bad[2] = {{multi[0], 1, 0}, {multi[1], nv, 0}};
    T_EQ_INT(kz_model_eval_batch(model, w, pool, bad, 2, &err), KZ_EINVAL);
    struct kz_batch_item many[4] = {{multi[0], 1, 1}, {multi[1], 1, 1}, {multi[2], 1, 1}, {multi[0], 1, 1}};
    T_EQ_INT(kz_model_eval_batch(model, w, pool, many, 4, &err), KZ_ELIMIT); /* 4 logits > 3 */
    T_EQ_INT(kz_ctx_n_past(multi[0]), before);
    for (int s = 0; s < NS; s++) {
        kz_ctx_free(solo[s]);
        kz_ctx_free(multi[s]);
    }
    kz_work_free(w);
}

static void embeddings(void)
{
    int32_t toks[6] = {3, 50, 60, 70, 80, 90};
    struct kz_ctx *a = NULL, *b = NULL;
    struct kz_err err = {{0}};
    kz_ctx_new(model, 32, KZ_DT_F32, pool, &a, &err);
    kz_ctx_new(model, 32, KZ_DT_F32, NULL, &b, &err);
    int ne = kz_model_config(model)->n_embd;
    float *ea = kz_malloc((size_t)ne * sizeof *ea), *eb = kz_malloc((size_t)ne * sizeof *eb);
    T_EQ_INT(kz_ctx_embedding(a, ea, &err), KZ_EINVAL);
    T_EQ_INT(kz_ctx_eval_embd(a, toks, 6, &err), KZ_OK);
    for (int i = 0; i < 6; i++)
        kz_ctx_eval_embd(b, &toks[i], 1, &err);
    T_EQ_INT(kz_ctx_embedding(a, ea, &err), KZ_OK);
    T_EQ_INT(kz_ctx_embedding(b, eb, &err), KZ_OK);
    double n2 = 0;
    for (int i = 0; i < ne; i++)
        n2 += (double)ea[i] * (double)ea[i];
    T_OK(fabs(n2 - 1.0) < 1e-5, "unit norm (%.8f)", n2);
    T_OK(maxdiff(ea, eb, ne) < 1e-4, "batch-independent (%.3g)", maxdiff(ea, eb, ne));
    kz_ctx_reset(a);
    T_EQ_INT(kz_ctx_embedding(a, ea, &err), KZ_EINVAL);
    kz_free(ea);
    kz_free(eb);
    kz_ctx_free(a);
    kz_ctx_free(b);
}

int main(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/batch.gguf", t_tmpdir());
    struct kz_synth_opts o = {.out_path = path, .shape = "tiny", .type = "q8_0", .seed = 11, .n_threads = 2};
    struct kz_err err = {{0}};
    if (kz_synth_write(&o, &err) || kz_model_load(path, &model, &err)) {
        T_OK(0, "setup: %s", err.msg);
        return t_done();
    }
    nv = kz_model_config(model)->n_vocab;
    pool = kz_pool_new(2);
    t_subtest("prompt in one batch", prompt_batch);
    t_subtest("several sequences in one batch", multi_sequence);
    t_subtest("pooled embeddings", embeddings);
    kz_pool_free(pool);
    kz_model_free(model);
    return t_done();
}
