/* SPDX-License-Identifier: MIT
 * Synthetic models of every type and architecture load and evaluate, and
 * the RoPE variants agree where the math says they must:
 *   - rope_freqs.weight of all 1.0 changes nothing;
 *   - rope_freqs.weight of all 2.0 equals linear scaling with factor 2.
 * Self-contained: needs no shared data.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/gguf/gguf.h"
#include "engine/model/model.h"
#include "engine/model/synth.h"
#include "t.h"

static const int32_t prompt[] = {1, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310};
#define N_PROMPT ((int)(sizeof prompt / sizeof prompt[0]))

/* Logits of the prompt's last position; kz_free the result. NULL on error. */
static float *logits_of(const char *path, int *n_vocab)
{
    struct kz_model *m = NULL;
    struct kz_ctx *c = NULL;
    struct kz_err err = {{0}};
    float *out = NULL;
    kz_status rc = kz_model_load(path, &m, &err);
    T_OK(rc == KZ_OK, "load %s: %s", path, err.msg);
    if (rc)
        return NULL;
    rc = kz_ctx_new(m, 64, KZ_DT_F32, NULL, &c, &err);
    if (!rc)
        rc = kz_ctx_eval(c, prompt, N_PROMPT, &err);
    T_OK(rc == KZ_OK, "eval %s: %s", path, err.msg);
    if (!rc) {
        *n_vocab = kz_model_config(m)->n_vocab;
        out = kz_malloc((size_t)*n_vocab * sizeof *out);
        memcpy(out, kz_ctx_logits(c), (size_t)*n_vocab * sizeof *out);
    }
    kz_ctx_free(c);
    kz_model_free(m);
    return out;
}

static double rel_diff(const float *a, const float *b, int n)
{
    double d = 0, s = 0;
    for (int i = 0; i < n; i++) {
        d += ((double)a[i] - (double)b[i]) * ((double)a[i] - (double)b[i]);
        s += (double)b[i] * (double)b[i];
    }
    return sqrt(d / s);
}

static void every_type(void)
{
    static const char *types[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q5_k", "q6_k", "q4_k_m"};
    static const char *archs[] = {"llama", "qwen2"};
    char path[512];
    float *ref[2] = {NULL, NULL};
    int nv = 0;
    for (int a = 0; a < 2; a++) {
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            snprintf(path, sizeof path, "%s/%s-%s.gguf", t_tmpdir(), archs[a], types[t]);
            struct kz_synth_opts o = {.out_path = path, .shape = "tiny", .type = types[t], .arch = archs[a],
                                      .seed = 5, .n_threads = 2};
            struct kz_err err = {{0}};
            kz_status rc = kz_synth_write(&o, &err);
            T_OK(rc == KZ_OK, "synth %s %s: %s", archs[a], types[t], err.msg);
            if (rc)
                continue;
            float *l = logits_of(path, &nv);
            if (!l)
                continue;
            int finite = 1;
            for (int i = 0; i < nv; i++)
                finite &= isfinite(l[i]);
            T_OK(finite, "%s %s: finite logits", archs[a], types[t]);
            if (t == 0) {
                ref[a] = l;
                continue;
            }
            /* same seed, same master weights: each type stays near the F32
             * model (loose bounds: random 4-bit weights drift the most) */
            double d = rel_diff(l, ref[a], nv);
            T_OK(d < 0.5, "%s %s vs f32: relative difference %.3f", archs[a], types[t], d);
            kz_free(l);
        }
    }
    kz_free(ref[0]);
    kz_free(ref[1]);
}

/* Copies `src` to `dst`, adding a rope_freqs.weight of `rf` (when > 0) and a
 * linear rope scaling factor (when > 0). */
static void variant(const char *src, const char *dst, float rf, float linear)
{
    struct kz_gguf *g = NULL;
    struct kz_err err = {{0}};
    T_EQ_INT(kz_gguf_open(src, &g, &err), KZ_OK);
    if (!g)
        return;
    struct kz_gguf_writer *w = kz_gguf_writer_new();
    kz_gguf_writer_copy_kv(w, g, NULL);
    if (linear > 0) {
        kz_gguf_writer_set_str(w, "llama.rope.scaling.type", "linear", 6);
        kz_gguf_writer_set_f32(w, "llama.rope.scaling.factor", linear);
    }
    for (size_t i = 0; i < kz_gguf_n_tensors(g); i++) {
        const struct kz_gguf_tensor *t = kz_gguf_tensor(g, i);
        char name[80];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.p);
        kz_gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data);
    }
    float freqs[16]; /* tiny: head_dim 32 -> 16 rotated pairs */
    for (int i = 0; i < 16; i++)
        freqs[i] = rf;
    int64_t ne = 16;
    if (rf > 0)
        kz_gguf_writer_add_tensor(w, "rope_freqs.weight", KZ_DT_F32, 1, &ne, freqs);
    T_EQ_INT(kz_gguf_writer_write(w, dst, &err), KZ_OK);
    kz_gguf_writer_free(w);
    kz_gguf_close(g);
}

static void rope_scaling(void)
{
    char base[512], ones[512], twos[512], lin[512];
    snprintf(base, sizeof base, "%s/rope-base.gguf", t_tmpdir());
    snprintf(ones, sizeof ones, "%s/rope-ones.gguf", t_tmpdir());
    snprintf(twos, sizeof twos, "%s/rope-twos.gguf", t_tmpdir());
    snprintf(lin, sizeof lin, "%s/rope-lin2.gguf", t_tmpdir());
    struct kz_synth_opts o = {.out_path = base, .shape = "tiny", .type = "f32", .seed = 9, .n_threads = 1};
    struct kz_err err = {{0}};
    T_EQ_INT(kz_synth_write(&o, &err), KZ_OK);
    variant(base, ones, 1.0f, 0);
    variant(base, twos, 2.0f, 0);
    variant(base, lin, 0, 2.0f);
    int nv = 0;
    float *lb = logits_of(base, &nv), *l1 = logits_of(ones, &nv), *l2 = logits_of(twos, &nv),
          *ll = logits_of(lin, &nv);
    if (lb && l1 && l2 && ll) {
        T_OK(rel_diff(l1, lb, nv) < 1e-6, "rope_freqs of 1 changes nothing (%.2g)", rel_diff(l1, lb, nv));
        T_OK(rel_diff(l2, ll, nv) < 1e-6, "rope_freqs of 2 == linear factor 2 (%.2g)", rel_diff(l2, ll, nv));
        T_OK(rel_diff(l2, lb, nv) > 1e-4, "scaling does change the result (%.2g)", rel_diff(l2, lb, nv));
    }
    kz_free(lb);
    kz_free(l1);
    kz_free(l2);
    kz_free(ll);
}

/* A tied model has no output.weight and still evaluates. */
static void tied(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tied.gguf", t_tmpdir());
    struct kz_synth_opts o = {.out_path = path, .shape = "tiny", .type = "q8_0", .seed = 2, .tied = 1};
    struct kz_err err = {{0}};
    T_EQ_INT(kz_synth_write(&o, &err), KZ_OK);
    struct kz_gguf *g = NULL;
    T_EQ_INT(kz_gguf_open(path, &g, &err), KZ_OK);
    T_OK(g && kz_gguf_find_tensor(g, "output.weight") == NULL, "no output.weight");
    kz_gguf_close(g);
    int nv = 0;
    float *l = logits_of(path, &nv);
    T_OK(l != NULL, "tied model evaluates");
    kz_free(l);
}

int main(void)
{
    t_subtest("every type and arch", every_type);
    t_subtest("rope scaling", rope_scaling);
    t_subtest("tied embeddings", tied);
    return t_done();
}
