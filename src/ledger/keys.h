/* SPDX-License-Identifier: MIT
 * API keys: creation, lookup by the presented secret, revocation, listing.
 *
 * A key is "kz-" followed by 43 base64url characters encoding 32 bytes from
 * getrandom() (256 bits of entropy). It is returned once, by
 * kz_keys_create, and never stored: the ledger keeps its SHA-256 and a
 * display prefix (the first KZ_KEYS_PREFIX_LEN characters, 54 bits of the
 * key, far from enough to guess the other 202).
 *
 * Lookup hashes the presented text and finds the hash through the store's
 * index. The comparison is not constant-time and need not be: what an
 * attacker could learn from timing is how much of the stored *hash* matches
 * the hash of a key they chose, and without a SHA-256 preimage they cannot
 * turn that into a key.
 *
 * Revocation and expiry are checked on every lookup, against the store, so
 * they take effect for the next request.
 *
 * Threads and ownership as in ledger/ledger.h; a kz_keys_info owns its
 * `models` (kz_keys_info_free).
 */
#ifndef KZ_LEDGER_KEYS_H
#define KZ_LEDGER_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "core/sha256.h"
#include "core/status.h"
#include "ledger/ledger.h"
#include "router/config.h" /* enum kz_privacy */

#define KZ_KEYS_SECRET_LEN 46     /* "kz-" + 43 characters */
#define KZ_KEYS_SECRET_SIZE 47    /* ... and the NUL */
#define KZ_KEYS_PREFIX_LEN 12     /* stored display prefix */
#define KZ_KEYS_MAX_MODELS 256    /* allowed models per key */

struct kz_keys_spec {
    int64_t tenant_id;
    const char *const *models;    /* allowed public model names; n_models 0: every model */
    size_t n_models;
    enum kz_privacy privacy;      /* ceiling: local, private or external */
    int admin;                    /* may use /admin routes */
    int has_budget;
    int64_t budget;               /* micro-dollars, 0..KZ_LEDGER_MONEY_MAX */
    enum kz_ledger_period period;
    int64_t rpm, tpm;             /* requests and tokens per minute; 0: unlimited */
    int64_t expires_ms;           /* 0: never */
};

struct kz_keys_info {
    int64_t id;
    int64_t tenant_id;
    char prefix[KZ_KEYS_PREFIX_LEN + 1];
    char **models;                /* one kz_malloc'd block (kz_keys_info_free); NULL when n_models is 0 */
    size_t n_models;
    enum kz_privacy privacy;
    int admin;
    int has_budget;
    int64_t budget;
    enum kz_ledger_period period;
    int64_t rpm, tpm;
    int64_t spent;                /* settled costs in the current period */
    int64_t reserved;             /* open reservations (same snapshot as spent) */
    int64_t created_ms;
    int64_t expires_ms;           /* 0: never */
    int64_t revoked_ms;           /* 0: not revoked */
    int64_t tenant_rpm, tenant_tpm; /* the tenant's own limits (0: none), read with the key */
    struct kz_ledger_tenant tenant; /* kz_keys_lookup only: the key's tenant in the same snapshot */
};

/* Creates a key; the secret (KZ_KEYS_SECRET_LEN characters and a NUL) goes
 * to `secret` and nowhere else, its id to *id. */
kz_status kz_keys_create(struct kz_ledger *l, const struct kz_keys_spec *spec, char secret[KZ_KEYS_SECRET_SIZE],
                         int64_t *id, struct kz_err *err);

/* Finds the key a client presented. KZ_ENOTFOUND ("invalid API key", "API
 * key revoked", "API key expired") when it must not be accepted. On success
 * *out is filled (kz_keys_info_free it). */
kz_status kz_keys_lookup(struct kz_ledger *l, const char *presented, struct kz_keys_info *out, struct kz_err *err);

/* A key by id, revoked or not (admin views, the budget sampler in tests). */
kz_status kz_keys_get(struct kz_ledger *l, int64_t id, struct kz_keys_info *out, struct kz_err *err);

/* Marks a key revoked (idempotent: the first time stays). The caller checks
 * that the revoker may act on the key's tenant. KZ_ENOTFOUND when absent. */
kz_status kz_keys_revoke(struct kz_ledger *l, int64_t id, struct kz_err *err);

/* One tenant's keys (tenant_id > 0), ordered by id; never any secret.
 * Free with kz_keys_list_free. */
kz_status kz_keys_list(struct kz_ledger *l, int64_t tenant_id, struct kz_keys_info **out, size_t *n,
                       struct kz_err *err);
/* Every tenant's keys: for admin callers only. */
kz_status kz_keys_list_all(struct kz_ledger *l, struct kz_keys_info **out, size_t *n, struct kz_err *err);

/* 1 when `model` is allowed by the key's scope. */
int kz_keys_allows_model(const struct kz_keys_info *k, const char *model);

/* 1 and the SHA-256 a key is stored under when `presented` has the shape
 * of a key; 0 when it cannot be one. */
int kz_keys_digest(const char *presented, uint8_t hash[KZ_SHA256_SIZE]);

/* A deep copy (the models too); KZ_ENOMEM leaves dst without models. */
kz_status kz_keys_info_copy(struct kz_keys_info *dst, const struct kz_keys_info *src);

void kz_keys_info_free(struct kz_keys_info *k);            /* frees the models; NULL is a no-op */
void kz_keys_list_free(struct kz_keys_info *keys, size_t n);

#endif
