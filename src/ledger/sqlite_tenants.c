/* SPDX-License-Identifier: MIT
 * SQLite backend: tenants, their credits, and the spend counters they share
 * with keys.
 */
#include <string.h>

#include "core/alloc.h"
#include "ledger/sqlite_int.h"

#define TENANT_COLS "id, name, prepaid, balance, reserved, budget, period, created_ms, rpm, tpm"

kz_status kz_sq_spent(struct kz_sq_conn *c, int is_key, int64_t owner, enum kz_ledger_period p, int64_t now,
                      int64_t *spent, struct kz_err *err)
{
    static const char KEY_SQL[] = "SELECT amount FROM key_spend WHERE key_id = ?1 AND period_ms = ?2";
    static const char TENANT_SQL[] = "SELECT amount FROM tenant_spend WHERE tenant_id = ?1 AND period_ms = ?2";
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c, is_key ? KEY_SQL : TENANT_SQL, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, owner);
    sqlite3_bind_int64(st, 2, kz_ledger_period_start(p, now));
    if ((rc = kz_sq_row(c, st, &row, "reading spend", err)))
        return rc;
    *spent = row ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return KZ_OK;
}

struct create_ctx {
    const struct kz_ledger_tenant_spec *s;
    int64_t now, id;
};

static kz_status create_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    struct create_ctx *x = ud;
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c, "SELECT 1 FROM tenants WHERE name = ?1", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, x->s->name, -1, SQLITE_STATIC);
    if ((rc = kz_sq_row(c, st, &row, "looking up the tenant name", err)))
        return rc;
    sqlite3_reset(st);
    if (row)
        return kz_err_set(err, KZ_EINVAL, "tenant '%s' already exists", x->s->name);
    if ((rc = kz_sq_prep(c,
                         "INSERT INTO tenants(name, prepaid, budget, period, created_ms, rpm, tpm)"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                         &st, err)))
        return rc;
    sqlite3_bind_text(st, 1, x->s->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, x->s->prepaid ? 1 : 0);
    if (x->s->has_budget)
        sqlite3_bind_int64(st, 3, x->s->budget);
    sqlite3_bind_int(st, 4, (int)x->s->period);
    sqlite3_bind_int64(st, 5, x->now);
    sqlite3_bind_int64(st, 6, x->s->rpm);
    sqlite3_bind_int64(st, 7, x->s->tpm);
    if ((rc = kz_sq_done(c, st, "creating a tenant", err)))
        return rc;
    x->id = sqlite3_last_insert_rowid(c->db);
    return KZ_OK;
}

kz_status kz_sq_tenant_create(struct kz_ledger *l, const struct kz_ledger_tenant_spec *s, int64_t now, int64_t *id,
                              struct kz_err *err)
{
    struct create_ctx x = {s, now, 0};
    kz_status rc = kz_sq_write((struct kz_sq *)l, 1, create_in, &x, err);
    if (!rc)
        *id = x.id;
    return rc;
}

/* A row of TENANT_COLS, plus its current spend. */
static kz_status read_tenant(struct kz_sq_conn *c, sqlite3_stmt *st, int64_t now, struct kz_ledger_tenant *t,
                             struct kz_err *err)
{
    memset(t, 0, sizeof *t);
    t->id = sqlite3_column_int64(st, 0);
    kz_sq_col_text(st, 1, t->name, sizeof t->name);
    t->prepaid = sqlite3_column_int(st, 2);
    t->balance = sqlite3_column_int64(st, 3);
    t->reserved = sqlite3_column_int64(st, 4);
    t->has_budget = sqlite3_column_type(st, 5) != SQLITE_NULL;
    t->budget = sqlite3_column_int64(st, 5);
    t->period = (enum kz_ledger_period)sqlite3_column_int(st, 6);
    t->created_ms = sqlite3_column_int64(st, 7);
    t->rpm = sqlite3_column_int64(st, 8);
    t->tpm = sqlite3_column_int64(st, 9);
    return kz_sq_spent(c, 0, t->id, t->period, now, &t->spent, err);
}

struct get_ctx {
    int64_t id;
    const char *name;
    int64_t now;
    struct kz_ledger_tenant *out;
};

static kz_status get_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    struct get_ctx *x = ud;
    static const char BY_ID[] = "SELECT " TENANT_COLS " FROM tenants WHERE id = ?1";
    static const char BY_NAME[] = "SELECT " TENANT_COLS " FROM tenants WHERE name = ?1";
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c, x->name ? BY_NAME : BY_ID, &st, err);
    if (rc)
        return rc;
    if (x->name)
        sqlite3_bind_text(st, 1, x->name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, x->id);
    if ((rc = kz_sq_row(c, st, &row, "reading a tenant", err)))
        return rc;
    if (!row) {
        if (x->name)
            return kz_err_set(err, KZ_ENOTFOUND, "no tenant named '%s'", x->name);
        return kz_err_set(err, KZ_ENOTFOUND, "no tenant with id %lld", (long long)x->id);
    }
    return read_tenant(c, st, x->now, x->out, err);
}

kz_status kz_sq_tenant_in(struct kz_sq_conn *c, int64_t id, int64_t now, struct kz_ledger_tenant *out,
                          struct kz_err *err)
{
    struct get_ctx x = {id, NULL, now, out};
    return get_in(c, &x, err);
}

kz_status kz_sq_tenant_get(struct kz_ledger *l, int64_t id, const char *name, int64_t now,
                           struct kz_ledger_tenant *out, struct kz_err *err)
{
    struct get_ctx x = {id, name, now, out};
    return kz_sq_read((struct kz_sq *)l, get_in, &x, err);
}

struct list_ctx {
    int64_t now;
    struct kz_ledger_tenant *v;
    size_t n, cap;
};

static kz_status list_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    struct list_ctx *x = ud;
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c, "SELECT " TENANT_COLS " FROM tenants ORDER BY id", &st, err);
    while (!rc && !(rc = kz_sq_row(c, st, &row, "listing tenants", err)) && row) {
        struct kz_ledger_tenant *nv = kz_ledger_grow(x->v, &x->cap, x->n, sizeof *nv);
        if (!nv)
            return kz_err_set(err, KZ_ENOMEM, "listing tenants: out of memory");
        x->v = nv;
        rc = read_tenant(c, st, x->now, &x->v[x->n], err);
        if (!rc)
            x->n++;
    }
    return rc;
}

kz_status kz_sq_tenant_list(struct kz_ledger *l, int64_t now, struct kz_ledger_tenant **out, size_t *n,
                            struct kz_err *err)
{
    struct list_ctx x = {now, NULL, 0, 0};
    kz_status rc = kz_sq_read((struct kz_sq *)l, list_in, &x, err);
    if (rc) {
        kz_free(x.v);
        return rc;
    }
    *out = x.v;
    *n = x.n;
    return KZ_OK;
}

struct credit_ctx {
    int64_t id, amount, balance;
};

static kz_status credit_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    struct credit_ctx *x = ud;
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c, "SELECT balance FROM tenants WHERE id = ?1", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, x->id);
    if ((rc = kz_sq_row(c, st, &row, "reading a balance", err)))
        return rc;
    if (!row)
        return kz_err_set(err, KZ_ENOTFOUND, "no tenant with id %lld", (long long)x->id);
    int64_t old = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if ((rc = kz_ledger_add(old, x->amount, &x->balance, "tenant credit", err)) ||
        (rc = kz_sq_prep(c, "UPDATE tenants SET balance = ?2 WHERE id = ?1", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, x->id);
    sqlite3_bind_int64(st, 2, x->balance);
    if ((rc = kz_sq_done(c, st, "updating a balance", err)) ||
        (rc = kz_sq_prep(c, "INSERT INTO credits(tenant_id, amount, created_ms) VALUES (?1, ?2, ?3)", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, x->id);
    sqlite3_bind_int64(st, 2, x->amount);
    sqlite3_bind_int64(st, 3, kz_ledger_now(&c->owner->base));
    return kz_sq_done(c, st, "recording a credit", err);
}

kz_status kz_sq_tenant_credit(struct kz_ledger *l, int64_t id, int64_t amount, int64_t *balance,
                              struct kz_err *err)
{
    struct credit_ctx x = {id, amount, 0};
    kz_status rc = kz_sq_write((struct kz_sq *)l, 1, credit_in, &x, err);
    if (!rc)
        *balance = x.balance;
    return rc;
}
