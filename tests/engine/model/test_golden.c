/* SPDX-License-Identifier: MIT
 * Conformance against the reference engine's goldens in ../shared/data:
 *   - aidreams260K.gguf (a real trained model): 8 prompts x 64 greedy tokens;
 *   - 10 synthetic models of every weight type: 2 prompts x 16 tokens.
 * For each case: the last prompt position's logits within the README's
 * normalized-RMSE limit, and greedy ids equal to the golden ids up to the
 * first step whose golden margin is below the README's threshold (after it,
 * a tiny numeric difference may legitimately pick the other token). Each
 * case runs with the KV cache in F32, as the reference kept it, and in F16.
 *
 * Every kernel family this CPU runs is checked (main, below).
 *
 * The prompt is fed as the golden prompt_ids, so this checks the model
 * alone; tokenization has its own tests. To add a model: put its goldens in
 * the data directory and a row in `models` below.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/kernels/kernels.h"
#include "engine/model/model.h"
#include "engine/sample/sampler.h"
#include "engine/sched/threadpool.h"
#include "engine/tok/tok.h"
#include "t.h"

enum prec { P_F32, P_F16, P_BF16, P_QUANT };

struct limits {
    double nrmse;
    double margin_abs;     /* margin threshold in logit units (F32) */
    double margin_rel_std; /* or relative to std(last_logits) */
};

static const struct limits lim[] = {
    [P_F32] = {1e-4, 1e-3, 0},
    [P_F16] = {5e-3, 0, 3e-3},
    [P_BF16] = {5e-3, 0, 2e-2},
    [P_QUANT] = {3e-2, 0, 5e-2},
};

static struct kz_pool *pool;

static double nrmse(const float *a, const double *b, int n, double *std_out)
{
    double mean = 0, var = 0, err = 0;
    for (int i = 0; i < n; i++)
        mean += b[i];
    mean /= n;
    for (int i = 0; i < n; i++) {
        var += (b[i] - mean) * (b[i] - mean);
        err += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    }
    *std_out = sqrt(var / n);
    return sqrt(err / n) / *std_out;
}

static int hexval(char c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

/* Runs one golden JSON case on an already loaded model with the KV cache
 * in kv_type. The reference kept it in F32; with F16 (rounded to 11
 * significant bits, as F16 weights are) the F16 limits apply where the
 * model's own are tighter. */
static void run_case(struct kz_model *m, struct kz_tok *tok, const char *path, enum prec p, uint32_t kv_type)
{
    if (kv_type == KZ_DT_F16 && p == P_F32)
        p = P_F16;
    json_error_t jerr;
    json_t *j = json_load_file(path, 0, &jerr);
    T_OK(j != NULL, "%s: %s (line %d)", path, jerr.text, jerr.line);
    if (!j)
        return;
    json_t *pids = json_object_get(j, "prompt_ids"), *gids = json_object_get(j, "gen_ids");
    json_t *margins = json_object_get(j, "margins"), *ll = json_object_get(j, "last_logits");
    const char *hex = json_string_value(json_object_get(j, "gen_text_hex"));
    int n_vocab = kz_model_config(m)->n_vocab;
    T_EQ_INT(json_array_size(ll), n_vocab);
    size_t np = json_array_size(pids), ng = json_array_size(gids);
    int32_t *ids = kz_calloc(np + ng + 1, sizeof *ids);
    double *gold = kz_calloc((size_t)n_vocab, sizeof *gold);
    for (size_t i = 0; i < np; i++)
        ids[i] = (int32_t)json_integer_value(json_array_get(pids, i));
    for (int i = 0; i < n_vocab; i++)
        gold[i] = json_number_value(json_array_get(ll, (size_t)i));

    /* tokenizer agrees with the golden prompt ids */
    const char *prompt = json_string_value(json_object_get(j, "prompt"));
    int32_t *tids = NULL;
    size_t tn = 0;
    struct kz_err err = {{0}};
    if (kz_tok_encode(tok, prompt, strlen(prompt), 1, 1, &tids, &tn, &err) == KZ_OK) {
        int same = tn == np;
        for (size_t i = 0; same && i < np; i++)
            same = tids[i] == ids[i];
        T_OK(same, "%s: tokenization of the prompt differs from prompt_ids", path);
    } else {
        T_OK(0, "%s: tokenize: %s", path, err.msg);
    }
    kz_free(tids);

    struct kz_ctx *c = NULL;
    kz_status rc = kz_ctx_new(m, 0, kv_type, pool, &c, &err);
    T_OK(rc == KZ_OK, "ctx: %s", err.msg);
    if (rc)
        goto out;
    rc = kz_ctx_eval(c, ids, (int)np, &err);
    T_OK(rc == KZ_OK, "eval: %s", err.msg);
    if (rc)
        goto out;
    double sd, e = nrmse(kz_ctx_logits(c), gold, n_vocab, &sd);
    T_OK(e <= lim[p].nrmse, "%s: last_logits nrmse %.3g > %.3g", path, e, lim[p].nrmse);
    double thr = lim[p].margin_abs > 0 ? lim[p].margin_abs : lim[p].margin_rel_std * sd;

    /* greedy steps, compared while the golden margin is comfortable */
    size_t checked = 0;
    char text[4096];
    size_t text_len = 0;
    int all_checked = 1;
    for (size_t i = 0; i < ng; i++) {
        int32_t want = (int32_t)json_integer_value(json_array_get(gids, i));
        double mg = json_number_value(json_array_get(margins, i));
        int32_t got = kz_argmax(kz_ctx_logits(c), n_vocab);
        if (mg < thr) {
            all_checked = 0;
            break;
        }
        T_OK(got == want, "%s: greedy step %zu: got %d, golden %d (margin %.4g)", path, i, got, want, mg);
        if (got != want)
            break;
        checked++;
        size_t pl = kz_tok_piece(tok, got, text + text_len, sizeof text - text_len, 0);
        text_len = text_len + pl < sizeof text ? text_len + pl : sizeof text;
        if (i + 1 < ng) {
            rc = kz_ctx_eval(c, &got, 1, &err);
            T_OK(rc == KZ_OK, "eval: %s", err.msg);
            if (rc)
                break;
        }
    }
    /* the exact output bytes, when every step was comparable */
    if (all_checked && checked == ng && hex) {
        size_t hl = strlen(hex);
        int same = hl / 2 == text_len;
        for (size_t i = 0; same && i < text_len; i++)
            same = (char)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1])) == text[i];
        T_OK(same, "%s: generated bytes differ from gen_text_hex", path);
    }
    printf("# %s, %s KV: nrmse %.2e (limit %.0e), %zu/%zu greedy steps compared\n", strrchr(path, '/') + 1,
           kz_dtype_name(kv_type), e, lim[p].nrmse, checked, ng);
out:
    kz_ctx_free(c);
    kz_free(ids);
    kz_free(gold);
    json_decref(j);
}

/* Goldens are <golden_prefix>/NN.json (two digits) when two_digit, else <golden_prefix>.N.json. */
static void run_model(const char *model_rel, const char *golden_prefix, int two_digit, int n_cases, enum prec p)
{
    char mpath[4096];
    const char *dp = t_data_path(model_rel);
    if (!dp) {
        t_skip(n_cases, model_rel);
        return;
    }
    snprintf(mpath, sizeof mpath, "%s", dp);
    struct kz_model *m = NULL;
    struct kz_tok *tok = NULL;
    struct kz_err err = {{0}};
    kz_status rc = kz_model_load(mpath, &m, &err);
    T_OK(rc == KZ_OK, "load %s: %s", model_rel, err.msg);
    if (rc)
        return;
    rc = kz_tok_load(kz_model_gguf(m), &tok, &err);
    T_OK(rc == KZ_OK, "tokenizer %s: %s", model_rel, err.msg);
    for (int i = 1; rc == KZ_OK && i <= n_cases; i++) {
        char rel[256];
        if (two_digit)
            snprintf(rel, sizeof rel, "%s/%02d.json", golden_prefix, i);
        else
            snprintf(rel, sizeof rel, "%s.%d.json", golden_prefix, i);
        char gpath[4096];
        snprintf(gpath, sizeof gpath, "%s", t_data_path(rel));
        run_case(m, tok, gpath, p, KZ_DT_F32);
        run_case(m, tok, gpath, p, KZ_DT_F16);
    }
    kz_tok_free(tok);
    kz_model_free(m);
}

static void aidreams(void) { run_model("aidreams260K.gguf", "golden/aidreams260K", 1, 8, P_F32); }

static const struct {
    const char *name;
    enum prec p;
} models[] = {
    {"llama-f32", P_F32},     {"llama-f16", P_F16},     {"llama-bf16", P_BF16},
    {"llama-q8_0", P_QUANT},  {"llama-q4_0", P_QUANT},  {"llama-q6_k", P_QUANT},
    {"llama-q4_k_m", P_QUANT}, {"qwen2-f32", P_F32},    {"qwen2-q8_0", P_QUANT},
    {"llama-tied-f32", P_F32},
};

static void synthetic(void)
{
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char rel[128], prefix[128];
        snprintf(rel, sizeof rel, "models/%s.gguf", models[i].name);
        snprintf(prefix, sizeof prefix, "golden/synthetic/%s", models[i].name);
        run_model(rel, prefix, 0, 2, models[i].p);
    }
}

static void run_all(void)
{
    printf("# kernels: %s\n", kz_kernels_get()->name);
    pool = kz_pool_new(2);
    t_subtest("aidreams260K goldens", aidreams);
    t_subtest("synthetic model goldens", synthetic);
    kz_pool_free(pool);
}

/* The goldens hold for every kernel family this CPU runs. A process keeps
 * the family it first chose, so the best one runs here and each other one
 * in a child with KZ_KERNELS naming it; KZ_KERNELS set by the caller runs
 * that family only. */
int main(void)
{
    const char *forced = getenv("KZ_KERNELS");
    if (!forced || !*forced) {
        const struct kz_kernels *list[8];
        int n = kz_kernels_list(list, 8);
        for (int i = 1; i < n; i++) {
            fflush(stdout);
            fflush(stderr);
            pid_t pid = fork();
            if (pid == 0) {
                setenv("KZ_KERNELS", list[i]->name, 1);
                run_all();
                int rc = t_done();
                fflush(stdout);
                _exit(rc);
            }
            int status = -1;
            T_OK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                 "goldens with the %s kernels", list[i]->name);
        }
    }
    run_all();
    T_OK(!forced || !*forced || strcmp(kz_kernels_get()->name, forced) == 0, "KZ_KERNELS=%s was used",
         forced ? forced : "");
    return t_done();
}
