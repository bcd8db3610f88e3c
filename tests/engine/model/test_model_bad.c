/* SPDX-License-Identifier: MIT
 * Model files that are valid GGUF but not a valid model: each hyperparameter
 * and tensor rule gives an error naming the file and the problem. Files are
 * made with the GGUF writer: a good tiny model, then one change per case.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/gguf/gguf.h"
#include "engine/model/model.h"
#include "t.h"

#define E 32
#define FF 64
#define V 8

static float zeros[V * FF * 4];

struct mut {
    const char *name;
    const char *skip_key;    /* key to leave out */
    const char *set_key;     /* u32 key to set instead of the default */
    uint32_t set_val;
    const char *skip_tensor; /* tensor to leave out */
    const char *bad_tensor;  /* tensor written with the wrong width */
    const char *arch;
    const char *want;        /* substring of the error */
};

static kz_status build(const struct mut *m, char *path, size_t path_size)
{
    struct kz_gguf_writer *w = kz_gguf_writer_new();
    const char *arch = m->arch ? m->arch : "llama";
    kz_gguf_writer_set_str(w, "general.architecture", arch, strlen(arch));
    static const struct {
        const char *k;
        uint32_t v;
    } keys[] = {{"llama.context_length", 64},     {"llama.embedding_length", E},
                {"llama.block_count", 1},         {"llama.feed_forward_length", FF},
                {"llama.attention.head_count", 4}, {"llama.attention.head_count_kv", 2}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (m->skip_key && !strcmp(m->skip_key, keys[i].k))
            continue;
        if (m->set_key && !strcmp(m->set_key, keys[i].k))
            continue;
        kz_gguf_writer_set_u32(w, keys[i].k, keys[i].v);
    }
    if (m->set_key)
        kz_gguf_writer_set_u32(w, m->set_key, m->set_val);
    struct kz_slice toks[V] = {{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}, {"e", 1}, {"f", 1}, {"g", 1}, {"h", 1}};
    kz_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5);
    kz_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, V);
    static const struct {
        const char *n;
        int64_t c, r;
    } ts[] = {{"token_embd.weight", E, V},        {"output_norm.weight", E, 1},
              {"blk.0.attn_norm.weight", E, 1},   {"blk.0.attn_q.weight", E, E},
              {"blk.0.attn_k.weight", E, E / 2},  {"blk.0.attn_v.weight", E, E / 2},
              {"blk.0.attn_output.weight", E, E}, {"blk.0.ffn_norm.weight", E, 1},
              {"blk.0.ffn_gate.weight", E, FF},   {"blk.0.ffn_up.weight", E, FF},
              {"blk.0.ffn_down.weight", FF, E}};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        if (m->skip_tensor && !strcmp(m->skip_tensor, ts[i].n))
            continue;
        int64_t ne[2] = {ts[i].c, ts[i].r};
        if (m->bad_tensor && !strcmp(m->bad_tensor, ts[i].n))
            ne[0] += 1;
        kz_gguf_writer_add_tensor(w, ts[i].n, KZ_DT_F32, ts[i].r > 1 ? 2 : 1, ne, zeros);
    }
    snprintf(path, path_size, "%s/%s.gguf", t_tmpdir(), m->name);
    kz_status rc = kz_gguf_writer_write(w, path, NULL);
    kz_gguf_writer_free(w);
    return rc;
}

static const struct mut cases[] = {
    {"good", NULL, NULL, 0, NULL, NULL, NULL, NULL},
    {"no-arch-key", "llama.embedding_length", NULL, 0, NULL, NULL, NULL, "missing required key 'llama.embedding_length'"},
    {"block-count-huge", NULL, "llama.block_count", 100000, NULL, NULL, NULL, "block_count = 100000 is out of range"},
    {"heads-zero", NULL, "llama.attention.head_count", 0, NULL, NULL, NULL, "head_count = 0 is out of range"},
    {"heads-not-divisible", NULL, "llama.attention.head_count_kv", 3, NULL, NULL, NULL, "not a multiple of head_count_kv"},
    {"ctx-huge", NULL, "llama.context_length", 0xffffffffu, NULL, NULL, NULL, "context_length = 4294967295 is out of range"},
    {"vocab-mismatch", NULL, "llama.vocab_size", 9, NULL, NULL, NULL, "vocab_size is 9 but tokenizer.ggml.tokens has 8"},
    {"missing-tensor", NULL, NULL, 0, "blk.0.ffn_up.weight", NULL, NULL, "missing tensor 'blk.0.ffn_up.weight'"},
    {"wrong-shape", NULL, NULL, 0, NULL, "blk.0.attn_k.weight", NULL, "tensor 'blk.0.attn_k.weight' has shape [33, 16"},
    {"unknown-arch", NULL, NULL, 0, NULL, NULL, "mamba", "architecture 'mamba' is not supported"},
};

static void each(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        T_EQ_INT(build(&cases[i], path, sizeof path), KZ_OK);
        struct kz_model *m = NULL;
        struct kz_err err = {{0}};
        kz_status rc = kz_model_load(path, &m, &err);
        if (!cases[i].want) {
            T_OK(rc == KZ_OK, "%s: %s", cases[i].name, err.msg);
        } else {
            T_OK(rc != KZ_OK && m == NULL, "%s: rejected", cases[i].name);
            T_OK(strstr(err.msg, cases[i].want) != NULL, "%s: message '%s' lacks '%s'", cases[i].name, err.msg,
                 cases[i].want);
            T_OK(strncmp(err.msg, path, strlen(path)) == 0, "%s: message starts with the file name: %s",
                 cases[i].name, err.msg);
        }
        kz_model_free(m);
    }
}

/* A good model evaluates, and refuses what does not fit. */
static void eval_limits(void)
{
    char path[512];
    struct mut good = {"good2", NULL, NULL, 0, NULL, NULL, NULL, NULL};
    T_EQ_INT(build(&good, path, sizeof path), KZ_OK);
    struct kz_model *m = NULL;
    struct kz_err err = {{0}};
    T_EQ_INT(kz_model_load(path, &m, &err), KZ_OK);
    if (!m)
        return;
    struct kz_ctx *c = NULL;
    T_EQ_INT(kz_ctx_new(m, 4, KZ_DT_F32, NULL, &c, &err), KZ_OK);
    int32_t toks[5] = {1, 2, 3, 4, 5};
    T_EQ_INT(kz_ctx_eval(c, toks, 5, &err), KZ_ELIMIT);
    T_OK(strstr(err.msg, "do not fit in the context") != NULL, "%s", err.msg);
    T_EQ_INT(kz_ctx_n_past(c), 0);
    int32_t bad = V;
    T_EQ_INT(kz_ctx_eval(c, &bad, 1, &err), KZ_EINVAL);
    T_EQ_INT(kz_ctx_eval(c, toks, 4, &err), KZ_OK);
    T_EQ_INT(kz_ctx_n_past(c), 4);
    T_EQ_INT(kz_ctx_eval(c, toks, 1, &err), KZ_ELIMIT);
    kz_ctx_free(c);
    c = NULL;
    T_EQ_INT(kz_ctx_new(m, 4, KZ_DT_Q8_0, NULL, &c, &err), KZ_EINVAL);
    T_OK(c == NULL && strstr(err.msg, "KV cache type Q8_0 is not supported") != NULL, "%s", err.msg);
    kz_model_free(m);
}

int main(void)
{
    t_subtest("model validation", each);
    t_subtest("eval limits", eval_limits);
    return t_done();
}
