/* SPDX-License-Identifier: MIT
 * API keys: making a secret, hashing what a client presents, scope checks
 * and the entry points (the backend stores hashes, never secrets).
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/alloc.h"
#include "ledger/ledger_int.h"

#define KEY_RANDOM_BYTES 32
static const char KEY_TAG[] = "kz-";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Reads n bytes from the kernel CSPRNG. getrandom blocks only until the pool
 * is first initialized, and returns short only when interrupted. */
static kz_status random_bytes(uint8_t *p, size_t n, struct kz_err *err)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return kz_err_set(err, KZ_EIO, "API key: getrandom failed: %s", strerror(errno));
        got += (size_t)r;
    }
    return KZ_OK;
}

/* base64url without padding: 32 bytes give 43 characters. */
static void encode_b64url(const uint8_t *in, size_t n, char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            *out++ = B64URL[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        *out++ = B64URL[(acc << (6 - bits)) & 63];
    *out = '\0';
}

/* The shape of a key, checked before any store access so garbage costs no
 * query. */
static int well_formed(const char *s)
{
    if (strnlen(s, KZ_KEYS_SECRET_SIZE) != KZ_KEYS_SECRET_LEN || strncmp(s, KEY_TAG, sizeof KEY_TAG - 1) != 0)
        return 0;
    for (const char *p = s + sizeof KEY_TAG - 1; *p; p++)
        if (!strchr(B64URL, *p))
            return 0;
    return 1;
}

static kz_status check_spec(const struct kz_keys_spec *s, struct kz_err *err)
{
    if (s->tenant_id <= 0)
        return kz_err_set(err, KZ_EINVAL, "key: a tenant id (> 0) is required");
    if (s->n_models > KZ_KEYS_MAX_MODELS || (s->n_models && !s->models))
        return kz_err_set(err, KZ_EINVAL, "key models: at most %d names", KZ_KEYS_MAX_MODELS);
    for (size_t i = 0; i < s->n_models; i++) {
        const char *m = s->models[i];
        if (!m || !m[0] || strnlen(m, KZ_LEDGER_NAME_MAX) >= KZ_LEDGER_NAME_MAX)
            return kz_err_set(err, KZ_EINVAL, "key models[%zu]: must be 1..%d bytes", i, KZ_LEDGER_NAME_MAX - 1);
    }
    if ((unsigned)s->privacy > KZ_PRIVACY_EXTERNAL)
        return kz_err_set(err, KZ_EINVAL, "key privacy: unknown ceiling %d", (int)s->privacy);
    if (s->admin != 0 && s->admin != 1)
        return kz_err_set(err, KZ_EINVAL, "key admin: must be 0 or 1");
    kz_status rc;
    if (s->has_budget && (rc = kz_ledger_check_money(s->budget, "key budget", err)))
        return rc;
    if ((unsigned)s->period > KZ_PERIOD_MONTH)
        return kz_err_set(err, KZ_EINVAL, "key budget period: unknown value %d", (int)s->period);
    if (s->rpm < 0 || s->tpm < 0 || s->expires_ms < 0)
        return kz_err_set(err, KZ_EINVAL, "key rpm, tpm, expiry: must not be negative");
    return KZ_OK;
}

kz_status kz_keys_create(struct kz_ledger *l, const struct kz_keys_spec *spec, char secret[KZ_KEYS_SECRET_SIZE],
                         int64_t *id, struct kz_err *err)
{
    if (!l || !spec || !secret || !id)
        return kz_err_set(err, KZ_EINVAL, "key create: no ledger, spec or output");
    kz_status rc = check_spec(spec, err);
    if (rc)
        return rc;
    uint8_t raw[KEY_RANDOM_BYTES], hash[KZ_SHA256_SIZE];
    char text[KZ_KEYS_SECRET_SIZE], prefix[KZ_KEYS_PREFIX_LEN + 1];
    if ((rc = random_bytes(raw, sizeof raw, err)))
        return rc;
    memcpy(text, KEY_TAG, sizeof KEY_TAG - 1);
    encode_b64url(raw, sizeof raw, text + sizeof KEY_TAG - 1);
    kz_sha256(text, KZ_KEYS_SECRET_LEN, hash);
    memcpy(prefix, text, KZ_KEYS_PREFIX_LEN);
    prefix[KZ_KEYS_PREFIX_LEN] = '\0';
    rc = l->ops->key_insert(l, spec, hash, prefix, kz_ledger_now(l), id, err);
    if (!rc) {
        memcpy(secret, text, KZ_KEYS_SECRET_SIZE);
        kz_ledger_bump(l);
    }
    /* The only other copies of the secret: gone before returning. */
    explicit_bzero(raw, sizeof raw);
    explicit_bzero(text, sizeof text);
    return rc;
}

kz_status kz_keys_lookup(struct kz_ledger *l, const char *presented, struct kz_keys_info *out, struct kz_err *err)
{
    if (!l || !out)
        return kz_err_set(err, KZ_EINVAL, "key lookup: no ledger or no output");
    memset(out, 0, sizeof *out);
    if (!presented || !well_formed(presented))
        return kz_err_set(err, KZ_ENOTFOUND, "invalid API key");
    uint8_t hash[KZ_SHA256_SIZE];
    kz_sha256(presented, KZ_KEYS_SECRET_LEN, hash);
    int64_t now = kz_ledger_now(l);
    kz_status rc = l->ops->key_get(l, 0, hash, now, out, err);
    if (rc)
        kz_keys_info_free(out); /* a backend may fail after filling it (its COMMIT) */
    if (rc == KZ_ENOTFOUND)
        return kz_err_set(err, KZ_ENOTFOUND, "invalid API key");
    if (rc)
        return rc;
    if (out->revoked_ms) {
        kz_keys_info_free(out);
        return kz_err_set(err, KZ_ENOTFOUND, "API key revoked");
    }
    if (out->expires_ms && now >= out->expires_ms) {
        kz_keys_info_free(out);
        return kz_err_set(err, KZ_ENOTFOUND, "API key expired");
    }
    return KZ_OK;
}

int kz_keys_digest(const char *presented, uint8_t hash[KZ_SHA256_SIZE])
{
    if (!presented || !well_formed(presented))
        return 0;
    kz_sha256(presented, KZ_KEYS_SECRET_LEN, hash);
    return 1;
}

kz_status kz_keys_info_copy(struct kz_keys_info *dst, const struct kz_keys_info *src)
{
    *dst = *src;
    dst->models = NULL;
    if (!src->n_models)
        return KZ_OK;
    size_t bytes = src->n_models * sizeof(char *);
    for (size_t i = 0; i < src->n_models; i++)
        bytes += strlen(src->models[i]) + 1;
    dst->models = kz_malloc(bytes);
    if (!dst->models) {
        dst->n_models = 0;
        return KZ_ENOMEM;
    }
    char *p = (char *)(dst->models + src->n_models);
    for (size_t i = 0; i < src->n_models; i++) {
        size_t len = strlen(src->models[i]) + 1;
        memcpy(p, src->models[i], len);
        dst->models[i] = p;
        p += len;
    }
    return KZ_OK;
}

kz_status kz_keys_get(struct kz_ledger *l, int64_t id, struct kz_keys_info *out, struct kz_err *err)
{
    if (!l || !out || id <= 0)
        return kz_err_set(err, KZ_EINVAL, "key get: no ledger, no output or a key id <= 0");
    memset(out, 0, sizeof *out);
    kz_status rc = l->ops->key_get(l, id, NULL, kz_ledger_now(l), out, err);
    if (rc)
        kz_keys_info_free(out); /* a backend may fail after filling it (its COMMIT) */
    return rc;
}

kz_status kz_keys_revoke(struct kz_ledger *l, int64_t id, struct kz_err *err)
{
    if (!l || id <= 0)
        return kz_err_set(err, KZ_EINVAL, "key revoke: no ledger or a key id <= 0");
    kz_status rc = l->ops->key_revoke(l, id, kz_ledger_now(l), err);
    kz_ledger_bump(l); /* also on failure: bumping too often is harmless */
    return rc;
}

static kz_status list_keys(struct kz_ledger *l, int64_t tenant_id, struct kz_keys_info **out, size_t *n,
                           struct kz_err *err)
{
    if (!l || !out || !n)
        return kz_err_set(err, KZ_EINVAL, "key list: no ledger or no output");
    *out = NULL;
    *n = 0;
    return l->ops->key_list(l, tenant_id, kz_ledger_now(l), out, n, err);
}

kz_status kz_keys_list(struct kz_ledger *l, int64_t tenant_id, struct kz_keys_info **out, size_t *n,
                       struct kz_err *err)
{
    if (tenant_id <= 0)
        return kz_err_set(err, KZ_EINVAL, "key list: a tenant id (> 0) is required");
    return list_keys(l, tenant_id, out, n, err);
}

kz_status kz_keys_list_all(struct kz_ledger *l, struct kz_keys_info **out, size_t *n, struct kz_err *err)
{
    return list_keys(l, 0, out, n, err);
}

int kz_keys_allows_model(const struct kz_keys_info *k, const char *model)
{
    if (!k || !model)
        return 0;
    if (k->n_models == 0)
        return 1;
    for (size_t i = 0; i < k->n_models; i++)
        if (strcmp(k->models[i], model) == 0)
            return 1;
    return 0;
}

void kz_keys_info_free(struct kz_keys_info *k)
{
    if (!k)
        return;
    KZ_FREE(k->models);
    k->n_models = 0;
}

void kz_keys_list_free(struct kz_keys_info *keys, size_t n)
{
    if (!keys)
        return;
    for (size_t i = 0; i < n; i++)
        kz_keys_info_free(&keys[i]);
    kz_free(keys);
}

/* ---- the allowed models as stored: a JSON array of strings ---------------------- */

char *kz_keys_models_json(const struct kz_keys_spec *s)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->n_models; i++)
        if (json_array_append_new(a, json_string(s->models[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return text; /* jansson's allocator: free() */
}

kz_status kz_keys_models_parse(const char *text, struct kz_keys_info *k, struct kz_err *err)
{
    json_error_t je;
    json_t *a = json_loads(text ? text : "", 0, &je);
    kz_status rc = KZ_OK;
    size_t n = json_array_size(a), bytes = 0;
    if (!json_is_array(a)) {
        rc = kz_err_set(err, KZ_EPROTO, "ledger: key %lld: stored models are not a JSON array", (long long)k->id);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *m = json_string_value(json_array_get(a, i));
        if (!m) {
            rc = kz_err_set(err, KZ_EPROTO, "ledger: key %lld: a stored model is not a string", (long long)k->id);
            goto out;
        }
        bytes += strlen(m) + 1;
    }
    if (n == 0)
        goto out;
    k->models = kz_malloc(n * sizeof(char *) + bytes);
    if (!k->models) {
        rc = kz_err_set(err, KZ_ENOMEM, "reading a key: out of memory");
        goto out;
    }
    char *p = (char *)(k->models + n);
    for (size_t i = 0; i < n; i++) {
        const char *m = json_string_value(json_array_get(a, i));
        size_t len = strlen(m) + 1;
        memcpy(p, m, len);
        k->models[i] = p;
        p += len;
    }
    k->n_models = n;
out:
    json_decref(a);
    return rc;
}
