/* SPDX-License-Identifier: MIT
 * kyozon run: load a model, evaluate the prompt, stream generated text.
 * stdout carries exactly the bytes of the generated tokens; everything else
 * (speeds, errors) goes to stderr, so output can be piped and compared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cli/args.h"
#include "core/alloc.h"
#include "engine/model/model.h"
#include "engine/sample/sampler.h"
#include "engine/sched/threadpool.h"
#include "engine/tok/tok.h"

static const char help[] =
    "Usage: kyozon run -m FILE -p PROMPT [options]\n"
    "\n"
    "Generates text from a GGUF model on the CPU and streams it to stdout.\n"
    "Prompt and generation speeds are printed to stderr.\n"
    "\n"
    "Options:\n"
    "  -m, --model FILE        GGUF model file (required)\n"
    "  -p, --prompt TEXT       prompt text (required; special-token text such as <s> is recognized)\n"
    "  -n, --n-predict N       tokens to generate (default 128; -1: until end of text or context)\n"
    "      --temp T            temperature, 0 = greedy (default 0.8)\n"
    "      --top-k K           keep the K most likely tokens, 0 = off (default 40)\n"
    "      --top-p P           nucleus sampling threshold, 1 = off (default 0.95)\n"
    "      --min-p P           drop tokens below P x the top probability, 0 = off (default 0.05)\n"
    "      --repeat-penalty R  penalty for recent tokens, 1 = off (default 1)\n"
    "      --repeat-last-n N   window of recent tokens for penalties (default 64)\n"
    "  -s, --seed S            random seed (default: random, printed to stderr)\n"
    "  -t, --threads N         worker threads (default: physical cores)\n"
    "  -c, --ctx N             context size in tokens (default: the model's training context)\n"
    "      --kv-type T         KV cache type: f16 (default, half the memory) or f32 (exact)\n"
    "      --logits-out FILE   write the logits of the last prompt position as a JSON array\n"
    "  -h, --help              show this help\n";

static int write_logits(const char *path, const float *v, int n)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    fputc('[', f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%.9g", i ? "," : "", (double)v[i]);
    fputs("]\n", f);
    if (fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int kz_cmd_run(int argc, char **argv)
{
    const char *model_path = NULL, *prompt = NULL, *logits_out = NULL, *kv_name = NULL;
    long n_predict = 128, threads = 0, n_ctx = 0, rl = 64, top_k = 40;
    struct kz_sampler_params sp = kz_sampler_defaults();
    int have_seed = 0;
    const struct kz_opt opts[] = {
        KZ_ARG_TEXT("-m|--model", &model_path),
        KZ_ARG_TEXT("-p|--prompt", &prompt),
        KZ_ARG_INT("-n|--n-predict", &n_predict, -1, 1 << 24),
        KZ_ARG_FLOAT("--temp", &sp.temp, 0.0, 100.0),
        KZ_ARG_INT("--top-k", &top_k, 0, 1 << 24),
        KZ_ARG_FLOAT("--top-p", &sp.top_p, 1e-9, 1.0),
        KZ_ARG_FLOAT("--min-p", &sp.min_p, 0.0, 1.0),
        KZ_ARG_FLOAT("--repeat-penalty", &sp.repeat_penalty, 1e-3, 100.0),
        KZ_ARG_INT("--repeat-last-n", &rl, 0, 1 << 20),
        KZ_ARG_U64_GIVEN("-s|--seed", &sp.seed, &have_seed),
        KZ_ARG_INT("-t|--threads", &threads, 1, 1024),
        KZ_ARG_INT("-c|--ctx", &n_ctx, 1, KZ_MODEL_MAX_CTX),
        KZ_ARG_TEXT("--logits-out", &logits_out),
        KZ_ARG_TEXT("--kv-type", &kv_name),
    };
    int rc = KZ_ARGS("run", help, opts, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!model_path || !prompt) {
        fprintf(stderr, "kyozon run: %s is required (see kyozon run --help)\n", !model_path ? "-m FILE" : "-p PROMPT");
        return 2;
    }
    sp.top_k = (int)top_k;
    sp.repeat_last_n = (int)rl;
    if (!have_seed) {
        if (getrandom(&sp.seed, sizeof sp.seed, 0) != sizeof sp.seed)
            sp.seed = (uint64_t)time(NULL);
        if (sp.temp > 0.0f)
            fprintf(stderr, "seed: %llu\n", (unsigned long long)sp.seed);
    }

    struct kz_err err = {{0}};
    struct kz_model *m = NULL;
    struct kz_tok *tok = NULL;
    struct kz_pool *pool = NULL;
    struct kz_ctx *ctx = NULL;
    struct kz_sampler *smp = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int status = 1;

    uint32_t kv_type;
    if (kz_sampler_params_check(&sp, &err) != KZ_OK || kz_kv_type_parse(kv_name, &kv_type, &err) != KZ_OK)
        goto fail;
    if (kz_model_load(model_path, &m, &err) != KZ_OK)
        goto fail;
    if (kz_tok_load(kz_model_gguf(m), &tok, &err) != KZ_OK)
        goto fail;
    if (kz_tok_encode(tok, prompt, strlen(prompt), 1, 1, &ids, &n_ids, &err) != KZ_OK)
        goto fail;
    if (n_ids == 0) {
        kz_err_set(&err, KZ_EINVAL, "the prompt is empty after tokenization");
        goto fail;
    }
    pool = kz_pool_new(threads > 0 ? (int)threads : kz_cpu_physical_cores());
    if (!pool) {
        kz_err_set(&err, KZ_ENOMEM, "cannot start worker threads");
        goto fail;
    }
    if (kz_ctx_new(m, (int)n_ctx, kv_type, pool, &ctx, &err) != KZ_OK)
        goto fail;
    if (n_ids > (size_t)kz_ctx_n_ctx(ctx)) {
        kz_err_set(&err, KZ_ELIMIT, "the prompt is %zu tokens, the context holds %d (raise --ctx)", n_ids,
                   kz_ctx_n_ctx(ctx));
        goto fail;
    }
    smp = kz_sampler_new(&sp, kz_model_config(m)->n_vocab);
    if (!smp) {
        kz_err_set(&err, KZ_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n_ids; i++)
        kz_sampler_accept(smp, ids[i]);

    double t0 = now_s();
    if (kz_ctx_eval(ctx, ids, (int)n_ids, &err) != KZ_OK)
        goto fail;
    double t_prompt = now_s() - t0;
    if (logits_out && write_logits(logits_out, kz_ctx_logits(ctx), kz_model_config(m)->n_vocab))
        goto out;

    long n_gen = 0;
    double t1 = now_s();
    char piece[256];
    while (n_predict < 0 || n_gen < n_predict) {
        int32_t t = kz_sampler_sample(smp, kz_ctx_logits(ctx));
        n_gen++;
        if (kz_tok_is_eog(tok, t))
            break;
        size_t len = kz_tok_piece(tok, t, piece, sizeof piece, 0);
        if (len > sizeof piece)
            len = sizeof piece; /* no vocabulary piece is this long; never overflow */
        fwrite(piece, 1, len, stdout);
        fflush(stdout);
        kz_sampler_accept(smp, t);
        if (n_predict >= 0 && n_gen >= n_predict)
            break;
        if (kz_ctx_n_past(ctx) >= kz_ctx_n_ctx(ctx)) {
            fprintf(stderr, "\nkyozon run: context full (%d tokens); stopping\n", kz_ctx_n_ctx(ctx));
            break;
        }
        if (kz_ctx_eval(ctx, &t, 1, &err) != KZ_OK)
            goto fail;
    }
    double t_gen = now_s() - t1;
    fprintf(stderr, "\nprompt: %zu tokens in %.3f s (%.2f t/s)\n", n_ids, t_prompt,
            t_prompt > 0 ? (double)n_ids / t_prompt : 0.0);
    fprintf(stderr, "generation: %ld tokens in %.3f s (%.2f t/s)\n", n_gen, t_gen,
            t_gen > 0 ? (double)n_gen / t_gen : 0.0);
    status = 0;
    goto out;
fail:
    fprintf(stderr, "kyozon run: %s\n", err.msg[0] ? err.msg : "failed");
out:
    kz_free(ids);
    kz_sampler_free(smp);
    kz_ctx_free(ctx);
    kz_pool_free(pool);
    kz_tok_free(tok);
    kz_model_free(m);
    return status;
}
