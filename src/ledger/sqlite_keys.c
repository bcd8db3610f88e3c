/* SPDX-License-Identifier: MIT
 * SQLite backend: API keys (hash, display prefix and scopes; never the key).
 * The allowed models are kept as a JSON array of strings.
 */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "ledger/sqlite_int.h"

#define KEY_COLS                                                                                            \
    "id, tenant_id, prefix, models, privacy, admin, budget, period, rpm, tpm, reserved, created_ms, expires_ms," \
    " revoked_ms, (SELECT t.rpm FROM tenants t WHERE t.id = tenant_id)," \
    " (SELECT t.tpm FROM tenants t WHERE t.id = tenant_id)"

struct insert_ctx {
    const struct kz_keys_spec *s;
    const uint8_t *hash;
    const char *prefix, *models;
    int64_t now, id;
};

static kz_status insert_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    struct insert_ctx *x = ud;
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c, "SELECT 1 FROM tenants WHERE id = ?1", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, x->s->tenant_id);
    if ((rc = kz_sq_row(c, st, &row, "looking up the key's tenant", err)))
        return rc;
    sqlite3_reset(st);
    if (!row)
        return kz_err_set(err, KZ_ENOTFOUND, "no tenant with id %lld", (long long)x->s->tenant_id);
    if ((rc = kz_sq_prep(c,
                         "INSERT INTO api_keys(tenant_id, hash, prefix, models, privacy, admin, budget, period,"
                         " rpm, tpm, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                         &st, err)))
        return rc;
    const struct kz_keys_spec *s = x->s;
    sqlite3_bind_int64(st, 1, s->tenant_id);
    sqlite3_bind_blob(st, 2, x->hash, KZ_SHA256_SIZE, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, x->prefix, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, x->models, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, (int)s->privacy);
    sqlite3_bind_int(st, 6, s->admin);
    if (s->has_budget)
        sqlite3_bind_int64(st, 7, s->budget);
    sqlite3_bind_int(st, 8, (int)s->period);
    sqlite3_bind_int64(st, 9, s->rpm);
    sqlite3_bind_int64(st, 10, s->tpm);
    sqlite3_bind_int64(st, 11, x->now);
    if (s->expires_ms)
        sqlite3_bind_int64(st, 12, s->expires_ms);
    if ((rc = kz_sq_done(c, st, "storing a key", err)))
        return rc;
    x->id = sqlite3_last_insert_rowid(c->db);
    return KZ_OK;
}

kz_status kz_sq_key_insert(struct kz_ledger *l, const struct kz_keys_spec *s, const uint8_t hash[KZ_SHA256_SIZE],
                           const char *prefix, int64_t now, int64_t *id, struct kz_err *err)
{
    char *models = kz_keys_models_json(s);
    if (!models)
        return kz_err_set(err, KZ_ENOMEM, "storing a key: out of memory");
    struct insert_ctx x = {s, hash, prefix, models, now, 0};
    kz_status rc = kz_sq_write((struct kz_sq *)l, 1, insert_in, &x, err);
    free(models);
    if (!rc)
        *id = x.id;
    return rc;
}

/* A row of KEY_COLS, plus its current spend. */
static kz_status read_key(struct kz_sq_conn *c, sqlite3_stmt *st, int64_t now, struct kz_keys_info *k,
                          struct kz_err *err)
{
    memset(k, 0, sizeof *k);
    k->id = sqlite3_column_int64(st, 0);
    k->tenant_id = sqlite3_column_int64(st, 1);
    kz_sq_col_text(st, 2, k->prefix, sizeof k->prefix);
    k->privacy = (enum kz_privacy)sqlite3_column_int(st, 4);
    k->admin = sqlite3_column_int(st, 5);
    k->has_budget = sqlite3_column_type(st, 6) != SQLITE_NULL;
    k->budget = sqlite3_column_int64(st, 6);
    k->period = (enum kz_ledger_period)sqlite3_column_int(st, 7);
    k->rpm = sqlite3_column_int64(st, 8);
    k->tpm = sqlite3_column_int64(st, 9);
    k->reserved = sqlite3_column_int64(st, 10);
    k->created_ms = sqlite3_column_int64(st, 11);
    k->expires_ms = sqlite3_column_int64(st, 12);
    k->revoked_ms = sqlite3_column_int64(st, 13);
    k->tenant_rpm = sqlite3_column_int64(st, 14);
    k->tenant_tpm = sqlite3_column_int64(st, 15);
    kz_status rc = kz_keys_models_parse((const char *)sqlite3_column_text(st, 3), k, err);
    if (!rc)
        rc = kz_sq_spent(c, 1, k->id, k->period, now, &k->spent, err);
    if (rc)
        kz_keys_info_free(k);
    return rc;
}

struct get_ctx {
    int64_t id;
    const uint8_t *hash;
    int64_t now;
    struct kz_keys_info *out;
};

static kz_status get_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    struct get_ctx *x = ud;
    static const char BY_ID[] = "SELECT " KEY_COLS " FROM api_keys WHERE id = ?1";
    static const char BY_HASH[] = "SELECT " KEY_COLS " FROM api_keys WHERE hash = ?1";
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c, x->hash ? BY_HASH : BY_ID, &st, err);
    if (rc)
        return rc;
    if (x->hash)
        sqlite3_bind_blob(st, 1, x->hash, KZ_SHA256_SIZE, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, x->id);
    if ((rc = kz_sq_row(c, st, &row, "reading a key", err)))
        return rc;
    if (!row)
        return kz_err_set(err, KZ_ENOTFOUND, "no such API key");
    rc = read_key(c, st, x->now, x->out, err);
    sqlite3_reset(st);
    /* a lookup also reads the key's tenant, in the same snapshot: what the
     * server's admission needs, in one read transaction */
    if (!rc && x->hash && (rc = kz_sq_tenant_in(c, x->out->tenant_id, x->now, &x->out->tenant, err)))
        kz_keys_info_free(x->out);
    return rc;
}

kz_status kz_sq_key_get(struct kz_ledger *l, int64_t id, const uint8_t *hash, int64_t now,
                        struct kz_keys_info *out, struct kz_err *err)
{
    struct get_ctx x = {id, hash, now, out};
    return kz_sq_read((struct kz_sq *)l, get_in, &x, err);
}

struct list_ctx {
    int64_t tenant_id, now;
    struct kz_keys_info *v;
    size_t n, cap;
};

static kz_status list_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    struct list_ctx *x = ud;
    static const char ONE[] = "SELECT " KEY_COLS " FROM api_keys WHERE tenant_id = ?1 ORDER BY id";
    static const char ALL[] = "SELECT " KEY_COLS " FROM api_keys ORDER BY id";
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c, x->tenant_id ? ONE : ALL, &st, err);
    if (!rc && x->tenant_id)
        sqlite3_bind_int64(st, 1, x->tenant_id);
    while (!rc && !(rc = kz_sq_row(c, st, &row, "listing keys", err)) && row) {
        struct kz_keys_info *nv = kz_ledger_grow(x->v, &x->cap, x->n, sizeof *nv);
        if (!nv)
            return kz_err_set(err, KZ_ENOMEM, "listing keys: out of memory");
        x->v = nv;
        rc = read_key(c, st, x->now, &x->v[x->n], err);
        if (!rc)
            x->n++;
    }
    return rc;
}

kz_status kz_sq_key_list(struct kz_ledger *l, int64_t tenant_id, int64_t now, struct kz_keys_info **out,
                         size_t *n, struct kz_err *err)
{
    struct list_ctx x = {tenant_id, now, NULL, 0, 0};
    kz_status rc = kz_sq_read((struct kz_sq *)l, list_in, &x, err);
    if (rc) {
        kz_keys_list_free(x.v, x.n);
        return rc;
    }
    *out = x.v;
    *n = x.n;
    return KZ_OK;
}

struct revoke_ctx {
    int64_t id, now;
};

static kz_status revoke_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    struct revoke_ctx *x = ud;
    sqlite3_stmt *st;
    kz_status rc = kz_sq_prep(c, "UPDATE api_keys SET revoked_ms = COALESCE(revoked_ms, ?2) WHERE id = ?1", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, x->id);
    sqlite3_bind_int64(st, 2, x->now);
    if ((rc = kz_sq_done(c, st, "revoking a key", err)))
        return rc;
    if (sqlite3_changes(c->db) == 0)
        return kz_err_set(err, KZ_ENOTFOUND, "no API key with id %lld", (long long)x->id);
    return KZ_OK;
}

kz_status kz_sq_key_revoke(struct kz_ledger *l, int64_t id, int64_t now, struct kz_err *err)
{
    struct revoke_ctx x = {id, now};
    return kz_sq_write((struct kz_sq *)l, 1, revoke_in, &x, err);
}
