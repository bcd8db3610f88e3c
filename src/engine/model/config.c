/* SPDX-License-Identifier: MIT
 * Hyperparameters from GGUF metadata (`<arch>.*` keys), each range-checked
 * before anything is sized from it, so a hostile file cannot make us
 * allocate without bound or index outside a tensor.
 */
#include <stdio.h>
#include <string.h>

#include "engine/gguf/gguf.h"
#include "engine/model/model.h"

static kz_status get_req(const struct kz_gguf *g, const char *arch, const char *suffix, int64_t lo, int64_t hi,
                         int *out, struct kz_err *err)
{
    char key[128];
    int64_t v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    kz_status rc = kz_gguf_get_int(g, key, &v, err);
    if (rc == KZ_ENOTFOUND)
        return kz_err_set(err, KZ_EPROTO, "%s: missing required key '%s'", kz_gguf_name(g), key);
    if (rc)
        return rc;
    if (v < lo || v > hi)
        return kz_err_set(err, KZ_EPROTO, "%s: %s = %lld is out of range (%lld..%lld)", kz_gguf_name(g), key,
                          (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return KZ_OK;
}

/* Optional integer: leaves *out alone when absent. */
static kz_status get_opt(const struct kz_gguf *g, const char *arch, const char *suffix, int64_t lo, int64_t hi,
                         int *out, struct kz_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (kz_gguf_find(g, key) < 0)
        return KZ_OK;
    return get_req(g, arch, suffix, lo, hi, out, err);
}

static kz_status get_optf(const struct kz_gguf *g, const char *arch, const char *suffix, double lo, double hi,
                          float *out, struct kz_err *err)
{
    char key[128];
    double v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    kz_status rc = kz_gguf_get_float(g, key, &v, err);
    if (rc == KZ_ENOTFOUND)
        return KZ_OK;
    if (rc)
        return rc;
    if (!(v >= lo && v <= hi))
        return kz_err_set(err, KZ_EPROTO, "%s: %s = %g is out of range (%g..%g)", kz_gguf_name(g), key, v, lo, hi);
    *out = (float)v;
    return KZ_OK;
}

kz_status kz_model_read_config(const struct kz_gguf *g, struct kz_model_config *cfg, struct kz_err *err)
{
    const char *name = kz_gguf_name(g);
    struct kz_slice a;
    kz_status rc;
    memset(cfg, 0, sizeof *cfg);
    rc = kz_gguf_get_str(g, "general.architecture", &a, err);
    if (rc == KZ_ENOTFOUND)
        return kz_err_set(err, KZ_EPROTO, "%s: missing required key 'general.architecture'", name);
    if (rc)
        return rc;
    if (a.len >= sizeof cfg->arch_name)
        return kz_err_set(err, KZ_EUNSUPPORTED, "%s: architecture name too long", name);
    memcpy(cfg->arch_name, a.p, a.len);
    cfg->arch_name[a.len] = '\0';
    if (strcmp(cfg->arch_name, "llama") == 0)
        cfg->arch = KZ_ARCH_LLAMA;
    else if (strcmp(cfg->arch_name, "qwen2") == 0)
        cfg->arch = KZ_ARCH_QWEN2;
    else
        return kz_err_set(err, KZ_EUNSUPPORTED, "%s: architecture '%s' is not supported (llama, qwen2 are)", name,
                          cfg->arch_name);
    const char *ar = cfg->arch_name;
    char key[128];
    snprintf(key, sizeof key, "%s.feed_forward_length", ar);
    if (kz_gguf_find(g, key) >= 0 && kz_gguf_kv_type(g, (size_t)kz_gguf_find(g, key)) == KZ_GGUF_ARRAY)
        return kz_err_set(err, KZ_EUNSUPPORTED, "%s: per-layer '%s' is not supported", name, key);
    if ((rc = get_req(g, ar, "context_length", 1, KZ_MODEL_MAX_CTX, &cfg->n_ctx_train, err)) ||
        (rc = get_req(g, ar, "embedding_length", 1, KZ_MODEL_MAX_EMBD, &cfg->n_embd, err)) ||
        (rc = get_req(g, ar, "block_count", 1, KZ_MODEL_MAX_LAYERS, &cfg->n_layer, err)) ||
        (rc = get_req(g, ar, "feed_forward_length", 1, KZ_MODEL_MAX_FF, &cfg->n_ff, err)) ||
        (rc = get_req(g, ar, "attention.head_count", 1, KZ_MODEL_MAX_HEADS, &cfg->n_head, err)))
        return rc;
    cfg->n_head_kv = cfg->n_head;
    if ((rc = get_opt(g, ar, "attention.head_count_kv", 1, KZ_MODEL_MAX_HEADS, &cfg->n_head_kv, err)))
        return rc;
    if (cfg->n_head % cfg->n_head_kv)
        return kz_err_set(err, KZ_EPROTO, "%s: head_count %d is not a multiple of head_count_kv %d", name,
                          cfg->n_head, cfg->n_head_kv);
    if (cfg->n_embd % cfg->n_head)
        return kz_err_set(err, KZ_EPROTO, "%s: embedding_length %d is not a multiple of head_count %d", name,
                          cfg->n_embd, cfg->n_head);
    cfg->head_dim = cfg->n_embd / cfg->n_head;
    if ((rc = get_opt(g, ar, "attention.key_length", 1, 4096, &cfg->head_dim, err)))
        return rc;
    int vdim = cfg->head_dim;
    if ((rc = get_opt(g, ar, "attention.value_length", 1, 4096, &vdim, err)))
        return rc;
    if (vdim != cfg->head_dim)
        return kz_err_set(err, KZ_EUNSUPPORTED, "%s: key_length %d != value_length %d is not supported", name,
                          cfg->head_dim, vdim);
    cfg->n_rot = cfg->head_dim;
    if ((rc = get_opt(g, ar, "rope.dimension_count", 0, cfg->head_dim, &cfg->n_rot, err)))
        return rc;
    if (cfg->n_rot % 2)
        return kz_err_set(err, KZ_EPROTO, "%s: rope.dimension_count %d is odd", name, cfg->n_rot);
    cfg->rope_neox = cfg->arch == KZ_ARCH_QWEN2;
    cfg->rope_base = 10000.0f;
    cfg->norm_eps = 1e-5f;
    cfg->rope_freq_scale = 1.0f;
    if ((rc = get_optf(g, ar, "rope.freq_base", 1e-3, 1e12, &cfg->rope_base, err)) ||
        (rc = get_optf(g, ar, "attention.layer_norm_rms_epsilon", 0.0, 1.0, &cfg->norm_eps, err)))
        return rc;
    /* Linear RoPE scaling: either the newer type+factor pair or the legacy key. */
    float factor = 0.0f;
    if ((rc = get_optf(g, ar, "rope.scale_linear", 1e-6, 1e6, &factor, err)))
        return rc;
    snprintf(key, sizeof key, "%s.rope.scaling.type", ar);
    struct kz_slice st = {"", 0};
    rc = kz_gguf_get_str(g, key, &st, err);
    if (rc && rc != KZ_ENOTFOUND)
        return rc;
    if (st.len && !kz_slice_eq(st, "none") && !kz_slice_eq(st, "linear"))
        return kz_err_set(err, KZ_EUNSUPPORTED, "%s: rope scaling type '%.*s' is not supported (none, linear are)",
                          name, (int)st.len, st.p);
    if (kz_slice_eq(st, "linear") || !st.len)
        if ((rc = get_optf(g, ar, "rope.scaling.factor", 0.0, 1e6, &factor, err)))
            return rc;
    if (kz_slice_eq(st, "none"))
        factor = 0.0f;
    if (factor > 0.0f)
        cfg->rope_freq_scale = 1.0f / factor;
    /* vocabulary size: explicit key, else the token list */
    cfg->n_vocab = 0;
    if ((rc = get_opt(g, ar, "vocab_size", 1, KZ_MODEL_MAX_VOCAB, &cfg->n_vocab, err)))
        return rc;
    uint64_t nt = 0;
    rc = kz_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &nt, err);
    if (rc && rc != KZ_ENOTFOUND)
        return rc;
    if (cfg->n_vocab && nt && nt != (uint64_t)cfg->n_vocab)
        return kz_err_set(err, KZ_EPROTO, "%s: %s.vocab_size is %d but tokenizer.ggml.tokens has %llu entries", name,
                          ar, cfg->n_vocab, (unsigned long long)nt);
    if (!cfg->n_vocab) {
        if (nt == 0 || nt > KZ_MODEL_MAX_VOCAB)
            return kz_err_set(err, KZ_EPROTO, "%s: vocabulary size unknown (no tokenizer.ggml.tokens, no %s.vocab_size)",
                              name, ar);
        cfg->n_vocab = (int)nt;
    }
    return KZ_OK;
}
