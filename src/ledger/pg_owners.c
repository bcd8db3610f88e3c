/* SPDX-License-Identifier: MIT
 * PostgreSQL backend: tenants (with their credits and spend) and API keys
 * (hash, display prefix and scopes; never the key).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "ledger/pg_int.h"

#define TENANT_COLS "id, name, prepaid, balance, reserved, budget, period, created_ms, rpm, tpm"
#define KEY_COLS                                                                                               \
    "k.id, k.tenant_id, k.prefix, k.models, k.privacy, k.admin, k.budget, k.period, k.rpm, k.tpm, k.reserved," \
    " k.created_ms, k.expires_ms, k.revoked_ms, t.rpm, t.tpm FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"

kz_status kz_pg_spent(struct kz_pg_conn *c, int is_key, int64_t owner, enum kz_ledger_period p, int64_t now,
                      int64_t *spent, struct kz_err *err)
{
    struct kz_pg_args a = {.n = 0};
    kz_pg_i64(&a, owner);
    kz_pg_i64(&a, kz_ledger_period_start(p, now));
    PGresult *r;
    kz_status rc = kz_pg_exec(c,
                              is_key ? "SELECT amount FROM key_spend WHERE key_id = $1 AND period_ms = $2"
                                     : "SELECT amount FROM tenant_spend WHERE tenant_id = $1 AND period_ms = $2",
                              &a, &r, "reading spend", err);
    if (rc)
        return rc;
    *spent = PQntuples(r) ? kz_pg_col_i64(r, 0, 0) : 0;
    PQclear(r);
    return KZ_OK;
}

/* ---- tenants ---------------------------------------------------------------------- */

struct tenant_create {
    const struct kz_ledger_tenant_spec *s;
    int64_t now, id;
};

static kz_status tenant_create_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    struct tenant_create *x = ud;
    struct kz_pg_args a = {.n = 0};
    kz_pg_str(&a, x->s->name);
    kz_pg_i64(&a, x->s->prepaid ? 1 : 0);
    if (x->s->has_budget)
        kz_pg_i64(&a, x->s->budget);
    else
        kz_pg_null(&a);
    kz_pg_i64(&a, (int64_t)x->s->period);
    kz_pg_i64(&a, x->now);
    kz_pg_i64(&a, x->s->rpm);
    kz_pg_i64(&a, x->s->tpm);
    PGresult *r;
    /* ON CONFLICT: a name taken by another node a moment ago is an answer,
     * not an aborted transaction */
    kz_status rc = kz_pg_exec(c,
                              "INSERT INTO tenants(name, prepaid, budget, period, created_ms, rpm, tpm)"
                              " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING RETURNING id",
                              &a, &r, "creating a tenant", err);
    if (rc)
        return rc;
    if (PQntuples(r) == 0)
        rc = kz_err_set(err, KZ_EINVAL, "tenant '%s' already exists", x->s->name);
    else
        x->id = kz_pg_col_i64(r, 0, 0);
    PQclear(r);
    return rc;
}

kz_status kz_pg_tenant_create(struct kz_ledger *l, const struct kz_ledger_tenant_spec *s, int64_t now, int64_t *id,
                              struct kz_err *err)
{
    struct tenant_create x = {s, now, 0};
    kz_status rc = kz_pg_tx((struct kz_pg *)l, tenant_create_in, &x, err);
    if (!rc)
        *id = x.id;
    return rc;
}

/* Row `row` of TENANT_COLS, plus its current spend. */
static kz_status read_tenant(struct kz_pg_conn *c, const PGresult *r, int row, int64_t now,
                             struct kz_ledger_tenant *t, struct kz_err *err)
{
    memset(t, 0, sizeof *t);
    t->id = kz_pg_col_i64(r, row, 0);
    kz_pg_col_text(r, row, 1, t->name, sizeof t->name);
    t->prepaid = (int)kz_pg_col_i64(r, row, 2);
    t->balance = kz_pg_col_i64(r, row, 3);
    t->reserved = kz_pg_col_i64(r, row, 4);
    t->has_budget = !kz_pg_col_null(r, row, 5);
    t->budget = kz_pg_col_i64(r, row, 5);
    t->period = (enum kz_ledger_period)kz_pg_col_i64(r, row, 6);
    t->created_ms = kz_pg_col_i64(r, row, 7);
    t->rpm = kz_pg_col_i64(r, row, 8);
    t->tpm = kz_pg_col_i64(r, row, 9);
    return kz_pg_spent(c, 0, t->id, t->period, now, &t->spent, err);
}

struct tenant_get {
    int64_t id;
    const char *name;
    int64_t now;
    struct kz_ledger_tenant *out;
};

static kz_status tenant_get_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    struct tenant_get *x = ud;
    struct kz_pg_args a = {.n = 0};
    if (x->name)
        kz_pg_str(&a, x->name);
    else
        kz_pg_i64(&a, x->id);
    PGresult *r;
    kz_status rc = kz_pg_exec(c,
                              x->name ? "SELECT " TENANT_COLS " FROM tenants WHERE name = $1"
                                      : "SELECT " TENANT_COLS " FROM tenants WHERE id = $1",
                              &a, &r, "reading a tenant", err);
    if (rc)
        return rc;
    if (PQntuples(r) == 0)
        rc = x->name ? kz_err_set(err, KZ_ENOTFOUND, "no tenant named '%s'", x->name)
                     : kz_err_set(err, KZ_ENOTFOUND, "no tenant with id %lld", (long long)x->id);
    else
        rc = read_tenant(c, r, 0, x->now, x->out, err);
    PQclear(r);
    return rc;
}

kz_status kz_pg_tenant_in(struct kz_pg_conn *c, int64_t id, int64_t now, struct kz_ledger_tenant *out,
                          struct kz_err *err)
{
    struct tenant_get x = {id, NULL, now, out};
    return tenant_get_in(c, &x, err);
}

kz_status kz_pg_tenant_get(struct kz_ledger *l, int64_t id, const char *name, int64_t now,
                           struct kz_ledger_tenant *out, struct kz_err *err)
{
    struct tenant_get x = {id, name, now, out};
    return kz_pg_read((struct kz_pg *)l, tenant_get_in, &x, err);
}

struct tenant_list {
    int64_t now;
    struct kz_ledger_tenant *v;
    size_t n;
};

static kz_status tenant_list_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    struct tenant_list *x = ud;
    PGresult *r;
    kz_status rc = kz_pg_exec(c, "SELECT " TENANT_COLS " FROM tenants ORDER BY id", NULL, &r, "listing tenants", err);
    if (rc)
        return rc;
    int n = PQntuples(r);
    kz_free(x->v); /* from an attempt that was retried */
    x->v = NULL;
    x->n = 0;
    if (n > 0 && !(x->v = kz_calloc((size_t)n, sizeof *x->v)))
        rc = kz_err_set(err, KZ_ENOMEM, "listing tenants: out of memory");
    for (int i = 0; !rc && i < n; i++)
        if (!(rc = read_tenant(c, r, i, x->now, &x->v[i], err)))
            x->n++;
    PQclear(r);
    return rc;
}

kz_status kz_pg_tenant_list(struct kz_ledger *l, int64_t now, struct kz_ledger_tenant **out, size_t *n,
                            struct kz_err *err)
{
    struct tenant_list x = {now, NULL, 0};
    kz_status rc = kz_pg_read((struct kz_pg *)l, tenant_list_in, &x, err);
    if (rc) {
        kz_free(x.v);
        return rc;
    }
    *out = x.v;
    *n = x.n;
    return KZ_OK;
}

struct credit {
    int64_t id, amount, balance;
};

static kz_status credit_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    struct credit *x = ud;
    struct kz_pg_args a = {.n = 0};
    kz_pg_i64(&a, x->id);
    PGresult *r;
    kz_status rc =
        kz_pg_exec(c, "SELECT balance FROM tenants WHERE id = $1 FOR UPDATE", &a, &r, "reading a balance", err);
    if (rc)
        return rc;
    int found = PQntuples(r) > 0;
    int64_t old = found ? kz_pg_col_i64(r, 0, 0) : 0;
    PQclear(r);
    if (!found)
        return kz_err_set(err, KZ_ENOTFOUND, "no tenant with id %lld", (long long)x->id);
    if ((rc = kz_ledger_add(old, x->amount, &x->balance, "tenant credit", err)))
        return rc;
    kz_pg_i64(&a, x->balance);
    if ((rc = kz_pg_exec(c, "UPDATE tenants SET balance = $2 WHERE id = $1", &a, NULL, "updating a balance", err)))
        return rc;
    a.n = 0;
    kz_pg_i64(&a, x->id);
    kz_pg_i64(&a, x->amount);
    kz_pg_i64(&a, kz_ledger_now(&c->owner->base));
    return kz_pg_exec(c, "INSERT INTO credits(tenant_id, amount, created_ms) VALUES ($1, $2, $3)", &a, NULL,
                      "recording a credit", err);
}

kz_status kz_pg_tenant_credit(struct kz_ledger *l, int64_t id, int64_t amount, int64_t *balance,
                              struct kz_err *err)
{
    struct credit x = {id, amount, 0};
    kz_status rc = kz_pg_tx((struct kz_pg *)l, credit_in, &x, err);
    if (!rc)
        *balance = x.balance;
    return rc;
}

/* ---- keys ------------------------------------------------------------------------- */

struct key_insert {
    const struct kz_keys_spec *s;
    const char *hash_hex, *prefix, *models;
    int64_t now, id;
};

static kz_status key_insert_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    struct key_insert *x = ud;
    const struct kz_keys_spec *s = x->s;
    struct kz_pg_args a = {.n = 0};
    kz_pg_i64(&a, s->tenant_id);
    PGresult *r;
    /* FOR SHARE: the tenant cannot go away before the key is in */
    kz_status rc = kz_pg_exec(c, "SELECT 1 FROM tenants WHERE id = $1 FOR SHARE", &a, &r,
                              "looking up the key's tenant", err);
    if (rc)
        return rc;
    int found = PQntuples(r) > 0;
    PQclear(r);
    if (!found)
        return kz_err_set(err, KZ_ENOTFOUND, "no tenant with id %lld", (long long)s->tenant_id);
    kz_pg_str(&a, x->hash_hex);
    kz_pg_str(&a, x->prefix);
    kz_pg_str(&a, x->models);
    kz_pg_i64(&a, (int64_t)s->privacy);
    kz_pg_i64(&a, s->admin ? 1 : 0);
    if (s->has_budget)
        kz_pg_i64(&a, s->budget);
    else
        kz_pg_null(&a);
    kz_pg_i64(&a, (int64_t)s->period);
    kz_pg_i64(&a, s->rpm);
    kz_pg_i64(&a, s->tpm);
    kz_pg_i64(&a, x->now);
    kz_pg_id(&a, s->expires_ms);
    if ((rc = kz_pg_exec(c,
                         "INSERT INTO api_keys(tenant_id, hash, prefix, models, privacy, admin, budget, period,"
                         " rpm, tpm, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                         " RETURNING id",
                         &a, &r, "storing a key", err)))
        return rc;
    x->id = kz_pg_col_i64(r, 0, 0);
    PQclear(r);
    return KZ_OK;
}

/* bytea's hex input form: \x and two digits a byte */
static void hash_hex(const uint8_t *hash, char out[2 + 2 * KZ_SHA256_SIZE + 1])
{
    static const char HEX[] = "0123456789abcdef";
    out[0] = '\\';
    out[1] = 'x';
    for (size_t i = 0; i < KZ_SHA256_SIZE; i++) {
        out[2 + 2 * i] = HEX[hash[i] >> 4];
        out[3 + 2 * i] = HEX[hash[i] & 15];
    }
    out[2 + 2 * KZ_SHA256_SIZE] = '\0';
}

kz_status kz_pg_key_insert(struct kz_ledger *l, const struct kz_keys_spec *s, const uint8_t hash[KZ_SHA256_SIZE],
                           const char *prefix, int64_t now, int64_t *id, struct kz_err *err)
{
    char *models = kz_keys_models_json(s);
    if (!models)
        return kz_err_set(err, KZ_ENOMEM, "storing a key: out of memory");
    char hex[2 + 2 * KZ_SHA256_SIZE + 1];
    hash_hex(hash, hex);
    struct key_insert x = {s, hex, prefix, models, now, 0};
    kz_status rc = kz_pg_tx((struct kz_pg *)l, key_insert_in, &x, err);
    free(models);
    if (!rc)
        *id = x.id;
    return rc;
}

/* Row `row` of KEY_COLS, plus its current spend. */
static kz_status read_key(struct kz_pg_conn *c, const PGresult *r, int row, int64_t now, struct kz_keys_info *k,
                          struct kz_err *err)
{
    memset(k, 0, sizeof *k);
    k->id = kz_pg_col_i64(r, row, 0);
    k->tenant_id = kz_pg_col_i64(r, row, 1);
    kz_pg_col_text(r, row, 2, k->prefix, sizeof k->prefix);
    k->privacy = (enum kz_privacy)kz_pg_col_i64(r, row, 4);
    k->admin = (int)kz_pg_col_i64(r, row, 5);
    k->has_budget = !kz_pg_col_null(r, row, 6);
    k->budget = kz_pg_col_i64(r, row, 6);
    k->period = (enum kz_ledger_period)kz_pg_col_i64(r, row, 7);
    k->rpm = kz_pg_col_i64(r, row, 8);
    k->tpm = kz_pg_col_i64(r, row, 9);
    k->reserved = kz_pg_col_i64(r, row, 10);
    k->created_ms = kz_pg_col_i64(r, row, 11);
    k->expires_ms = kz_pg_col_i64(r, row, 12);
    k->revoked_ms = kz_pg_col_i64(r, row, 13);
    k->tenant_rpm = kz_pg_col_i64(r, row, 14);
    k->tenant_tpm = kz_pg_col_i64(r, row, 15);
    kz_status rc = kz_keys_models_parse(PQgetvalue(r, row, 3), k, err);
    if (!rc)
        rc = kz_pg_spent(c, 1, k->id, k->period, now, &k->spent, err);
    if (rc)
        kz_keys_info_free(k);
    return rc;
}

struct key_get {
    int64_t id;
    const char *hash_hex;
    int64_t now;
    struct kz_keys_info *out;
};

static kz_status key_get_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    struct key_get *x = ud;
    struct kz_pg_args a = {.n = 0};
    if (x->hash_hex)
        kz_pg_str(&a, x->hash_hex);
    else
        kz_pg_i64(&a, x->id);
    PGresult *r;
    kz_status rc = kz_pg_exec(c, x->hash_hex ? "SELECT " KEY_COLS " WHERE k.hash = $1" : "SELECT " KEY_COLS " WHERE k.id = $1",
                              &a, &r, "reading a key", err);
    if (rc)
        return rc;
    if (PQntuples(r) == 0)
        rc = kz_err_set(err, KZ_ENOTFOUND, "no such API key");
    else
        rc = read_key(c, r, 0, x->now, x->out, err);
    PQclear(r);
    /* a lookup also reads the key's tenant, in the same transaction */
    if (!rc && x->hash_hex && (rc = kz_pg_tenant_in(c, x->out->tenant_id, x->now, &x->out->tenant, err)))
        kz_keys_info_free(x->out);
    return rc;
}

kz_status kz_pg_key_get(struct kz_ledger *l, int64_t id, const uint8_t *hash, int64_t now,
                        struct kz_keys_info *out, struct kz_err *err)
{
    char hex[2 + 2 * KZ_SHA256_SIZE + 1];
    if (hash)
        hash_hex(hash, hex);
    struct key_get x = {id, hash ? hex : NULL, now, out};
    return kz_pg_read((struct kz_pg *)l, key_get_in, &x, err);
}

struct key_list {
    int64_t tenant_id, now;
    struct kz_keys_info *v;
    size_t n;
};

static kz_status key_list_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    struct key_list *x = ud;
    struct kz_pg_args a = {.n = 0};
    if (x->tenant_id)
        kz_pg_i64(&a, x->tenant_id);
    PGresult *r;
    kz_status rc = kz_pg_exec(c,
                              x->tenant_id ? "SELECT " KEY_COLS " WHERE k.tenant_id = $1 ORDER BY k.id"
                                           : "SELECT " KEY_COLS " ORDER BY k.id",
                              &a, &r, "listing keys", err);
    if (rc)
        return rc;
    int n = PQntuples(r);
    kz_keys_list_free(x->v, x->n); /* from an attempt that was retried */
    x->v = NULL;
    x->n = 0;
    if (n > 0 && !(x->v = kz_calloc((size_t)n, sizeof *x->v)))
        rc = kz_err_set(err, KZ_ENOMEM, "listing keys: out of memory");
    for (int i = 0; !rc && i < n; i++)
        if (!(rc = read_key(c, r, i, x->now, &x->v[i], err)))
            x->n++;
    PQclear(r);
    return rc;
}

kz_status kz_pg_key_list(struct kz_ledger *l, int64_t tenant_id, int64_t now, struct kz_keys_info **out,
                         size_t *n, struct kz_err *err)
{
    struct key_list x = {tenant_id, now, NULL, 0};
    kz_status rc = kz_pg_read((struct kz_pg *)l, key_list_in, &x, err);
    if (rc) {
        kz_keys_list_free(x.v, x.n);
        return rc;
    }
    *out = x.v;
    *n = x.n;
    return KZ_OK;
}

struct key_revoke {
    int64_t id, now;
};

static kz_status key_revoke_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    struct key_revoke *x = ud;
    struct kz_pg_args a = {.n = 0};
    kz_pg_i64(&a, x->id);
    kz_pg_i64(&a, x->now);
    PGresult *r;
    kz_status rc = kz_pg_exec(c, "UPDATE api_keys SET revoked_ms = COALESCE(revoked_ms, $2) WHERE id = $1", &a, &r,
                              "revoking a key", err);
    if (rc)
        return rc;
    int changed = atoi(PQcmdTuples(r));
    PQclear(r);
    return changed ? KZ_OK : kz_err_set(err, KZ_ENOTFOUND, "no API key with id %lld", (long long)x->id);
}

kz_status kz_pg_key_revoke(struct kz_ledger *l, int64_t id, int64_t now, struct kz_err *err)
{
    struct key_revoke x = {id, now};
    return kz_pg_tx((struct kz_pg *)l, key_revoke_in, &x, err);
}
