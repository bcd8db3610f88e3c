/* SPDX-License-Identifier: MIT
 * Real model files: every quantized tensor of the synthetic llama models in
 * the shared test data, dequantized with the reference kernels, is compared
 * with the same tensor of the F32 master (llama-f32.gguf) from which those
 * files were made. This checks the block layouts against files written by
 * another implementation, which hand-built blocks alone cannot.
 *
 * Also per tensor: dot_f32 on a few rows against dequantize-then-dot, and
 * our own quantizer run on the master tensor must do about as well as the
 * file's (F16/BF16 conversions must reproduce the file byte for byte).
 *
 * To add a file: a row in `files`; per-type limits live in limit_for().
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/gguf/gguf.h"
#include "engine/kernels/kernels.h"
#include "t.h"

/* Relative RMS error of a dequantized tensor vs its F32 master. */
#define TOL_FILE_F16 1e-3
#define TOL_FILE_BF16 5e-3
#define TOL_FILE_Q8_0 0.01
#define TOL_FILE_Q6_K 0.03
#define TOL_FILE_Q4_K 0.08
#define TOL_FILE_Q4_0 0.15
/* Our quantizer's error on the master may exceed the file's by this factor. */
#define TOL_REQUANT_RATIO 1.05
/* |dot_f32 - sum(deq * x)| <= TOL_DOT * sum(|deq * x|) */
#define TOL_DOT 1e-5

static const char *const files[] = {
    "models/llama-f16.gguf",  "models/llama-bf16.gguf", "models/llama-q8_0.gguf",
    "models/llama-q4_0.gguf", "models/llama-q6_k.gguf", "models/llama-q4_k_m.gguf",
};

static double limit_for(uint32_t type)
{
    switch (type) {
    case KZ_DT_F16: return TOL_FILE_F16;
    case KZ_DT_BF16: return TOL_FILE_BF16;
    case KZ_DT_Q8_0: return TOL_FILE_Q8_0;
    case KZ_DT_Q6_K: return TOL_FILE_Q6_K;
    case KZ_DT_Q4_K: return TOL_FILE_Q4_K;
    case KZ_DT_Q4_0: return TOL_FILE_Q4_0;
    default: return -1;
    }
}

static double rel_rms(const float *a, const float *ref, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static struct kz_gguf *open_data(const char *rel)
{
    const char *path = t_data_path(rel);
    if (!path)
        return NULL;
    struct kz_gguf *g = NULL;
    struct kz_err err = {{0}};
    kz_status rc = kz_gguf_open(path, &g, &err);
    T_OK(rc == KZ_OK, "open %s: %s", rel, err.msg);
    return rc == KZ_OK ? g : NULL;
}

/* Per type, over the tensors of one file: worst errors, identical bytes. */
struct type_stats {
    int n;
    double err_file, err_ours;
    size_t same, bytes;
};
static struct type_stats stats[KZ_DT_COUNT];

/* Compares one quantized tensor with its master; returns 1 if checked. */
static int check_tensor(const struct kz_gguf_tensor *q, const struct kz_gguf_tensor *m,
                        const char *file)
{
    const struct kz_type_ops *ops = kz_type_ops_ref(q->type);
    T_OK(ops != NULL, "%s: type %s supported", file, kz_dtype_name(q->type));
    if (!ops)
        return 0;
    int64_t n = 1;
    for (int d = 0; d < KZ_GGUF_MAX_DIMS; d++) {
        T_EQ_INT(q->ne[d], m->ne[d]);
        n *= q->ne[d];
    }
    T_EQ_INT(m->type, KZ_DT_F32);
    if (m->type != KZ_DT_F32 || t_failures())
        return 0;
    const float *master = m->data; /* (n,) */
    float *deq = kz_malloc((size_t)n * sizeof *deq);
    ops->to_float(q->data, deq, n);
    double err = rel_rms(deq, master, n);
    double lim = limit_for(q->type);
    T_OK(lim > 0 && err <= lim, "%s %.*s (%s): rel RMS %.5f > %.5f", file, (int)q->name.len,
         q->name.p, kz_dtype_name(q->type), err, lim);

    /* dot_f32 on the first rows against dequantize-then-dot */
    int64_t cols = q->ne[0];
    size_t row_size = kz_dtype_row_size(q->type, cols);
    float *x = kz_malloc((size_t)cols * sizeof *x);
    for (int64_t i = 0; i < cols; i++)
        x[i] = (float)((i * 7919) % 201 - 100) / 100.0f;
    for (int64_t r = 0; r < 3 && r < n / cols; r++) {
        const float *row = deq + r * cols;
        double want = 0, mag = 0;
        for (int64_t i = 0; i < cols; i++) {
            want += (double)row[i] * (double)x[i];
            mag += fabs((double)row[i] * (double)x[i]);
        }
        double got = (double)ops->dot_f32(cols, (const unsigned char *)q->data + r * row_size, x);
        T_OK(fabs(got - want) <= TOL_DOT * mag, "%s %.*s row %lld dot %.9g vs %.9g", file,
             (int)q->name.len, q->name.p, (long long)r, got, want);
    }

    /* our quantizer on the master */
    size_t qsize = kz_dtype_row_size(q->type, n);
    T_EQ_INT(qsize, q->nbytes);
    unsigned char *mine = kz_malloc(qsize);
    ops->from_float(master, mine, n);
    float *deq2 = kz_malloc((size_t)n * sizeof *deq2);
    ops->to_float(mine, deq2, n);
    double err2 = rel_rms(deq2, master, n);
    size_t same = 0;
    for (size_t i = 0; i < qsize; i++)
        same += mine[i] == ((const unsigned char *)q->data)[i];
    if (q->type == KZ_DT_F16 || q->type == KZ_DT_BF16)
        T_OK(same == qsize, "%s %.*s: conversion reproduces the file (%zu of %zu bytes)", file,
             (int)q->name.len, q->name.p, same, qsize);
    else
        T_OK(err2 <= err * TOL_REQUANT_RATIO + 1e-7, "%s %.*s: our %s error %.5f vs file %.5f",
             file, (int)q->name.len, q->name.p, kz_dtype_name(q->type), err2, err);
    struct type_stats *st = &stats[q->type];
    st->n++;
    st->err_file = fmax(st->err_file, err);
    st->err_ours = fmax(st->err_ours, err2);
    st->same += same;
    st->bytes += qsize;
    kz_free(x);
    kz_free(deq);
    kz_free(deq2);
    kz_free(mine);
    return 1;
}

static void model_files(void)
{
    struct kz_gguf *master = open_data("models/llama-f32.gguf");
    if (!master) {
        t_skip((int)(sizeof files / sizeof files[0]), "shared test data (models/llama-f32.gguf) absent");
        return;
    }
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        struct kz_gguf *g = open_data(files[f]);
        if (!g) {
            t_skip(1, files[f]);
            continue;
        }
        int checked = 0;
        memset(stats, 0, sizeof stats);
        for (size_t i = 0; i < kz_gguf_n_tensors(g); i++) {
            const struct kz_gguf_tensor *t = kz_gguf_tensor(g, i);
            if (t->type == KZ_DT_F32)
                continue; /* norms stay F32 */
            char name[KZ_GGUF_MAX_NAME + 1];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.p);
            const struct kz_gguf_tensor *m = kz_gguf_find_tensor(master, name);
            T_OK(m != NULL, "%s: master has %s", files[f], name);
            if (m)
                checked += check_tensor(t, m, files[f]);
        }
        T_EQ_INT(checked, 16); /* 2 layers x 7 matrices + token_embd + output */
        for (uint32_t t = 0; t < KZ_DT_COUNT; t++) {
            if (!stats[t].n)
                continue;
            printf("# %-24s %2d x %-5s worst rel RMS: file %.5f, our quantizer %.5f; "
                   "identical bytes %.1f%%\n",
                   files[f], stats[t].n, kz_dtype_name(t), stats[t].err_file, stats[t].err_ours,
                   100.0 * (double)stats[t].same / (double)stats[t].bytes);
        }
        kz_gguf_close(g);
    }
    kz_gguf_close(master);
}

int main(void)
{
    t_subtest("model files vs F32 master", model_files);
    return t_done();
}
