/* SPDX-License-Identifier: MIT
 * SQLite backend: reservations (reserve, release, sweep).
 *
 * Durability: reservations, releases and sweeps commit with
 * synchronous=NORMAL. Losing the newest of them to a power cut only forgets
 * holds of requests that died with the machine (and a lost release is swept
 * later), while a settle, which records money actually spent, is committed
 * with FULL before the caller hears of it (sqlite_settle.c).
 */
#include <string.h>

#include "ledger/sqlite_int.h"

kz_status kz_sq_drop_reservation(struct kz_sq_conn *c, int64_t id, int *found, struct kz_err *err)
{
    sqlite3_stmt *st;
    kz_status rc = kz_sq_prep(c, "SELECT key_id, tenant_id, amount FROM reservations WHERE id = ?1", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    if ((rc = kz_sq_row(c, st, found, "reading a reservation", err)) || !*found)
        return rc;
    int64_t key = sqlite3_column_int64(st, 0), tenant = sqlite3_column_int64(st, 1), amount = sqlite3_column_int64(st, 2);
    sqlite3_reset(st);
    if ((rc = kz_sq_prep(c, "DELETE FROM reservations WHERE id = ?1", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, id);
    if ((rc = kz_sq_done(c, st, "removing a reservation", err)))
        return rc;
    if (key) {
        if ((rc = kz_sq_prep(c, "UPDATE api_keys SET reserved = reserved - ?2 WHERE id = ?1", &st, err)))
            return rc;
        sqlite3_bind_int64(st, 1, key);
        sqlite3_bind_int64(st, 2, amount);
        if ((rc = kz_sq_done(c, st, "releasing a key reservation", err)))
            return rc;
    }
    if ((rc = kz_sq_prep(c, "UPDATE tenants SET reserved = reserved - ?2 WHERE id = ?1", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, tenant);
    sqlite3_bind_int64(st, 2, amount);
    return kz_sq_done(c, st, "releasing a tenant reservation", err);
}

/* ---- reserve --------------------------------------------------------------- */

struct reserve_ctx {
    int64_t key_id, tenant_id, max_cost;
    const char *request_id;
    int64_t now, reservation;
    enum kz_ledger_deny *deny;
};

static kz_status check_new_request(struct kz_sq_conn *c, const char *request_id, struct kz_err *err)
{
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c,
                              "SELECT EXISTS (SELECT 1 FROM usage WHERE request_id = ?1),"
                              " EXISTS (SELECT 1 FROM reservations WHERE request_id = ?1)",
                              &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
    if ((rc = kz_sq_row(c, st, &row, "looking up the request id", err)))
        return rc;
    int settled = row && sqlite3_column_int(st, 0), reserved = row && sqlite3_column_int(st, 1);
    sqlite3_reset(st);
    if (settled)
        return kz_err_set(err, KZ_EINVAL, "request id '%s' is already in the ledger", request_id);
    if (reserved)
        return kz_err_set(err, KZ_EINVAL, "request id '%s' already has an open reservation", request_id);
    return KZ_OK;
}

/* The key's limits into the hold state, refusing keys that may not spend. */
static kz_status read_key_hold(struct kz_sq_conn *c, const struct reserve_ctx *x, struct kz_ledger_hold_state *h,
                               struct kz_err *err)
{
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(
        c, "SELECT tenant_id, budget, period, reserved, expires_ms, revoked_ms FROM api_keys WHERE id = ?1", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, x->key_id);
    if ((rc = kz_sq_row(c, st, &row, "reading a key", err)))
        return rc;
    if (!row)
        return kz_err_set(err, KZ_ENOTFOUND, "no API key with id %lld", (long long)x->key_id);
    int64_t tenant = sqlite3_column_int64(st, 0), expires = sqlite3_column_int64(st, 4);
    int64_t revoked = sqlite3_column_int64(st, 5);
    enum kz_ledger_period period = (enum kz_ledger_period)sqlite3_column_int(st, 2);
    h->has_key_budget = sqlite3_column_type(st, 1) != SQLITE_NULL;
    h->key_budget = sqlite3_column_int64(st, 1);
    h->key_reserved = sqlite3_column_int64(st, 3);
    sqlite3_reset(st);
    if (tenant != x->tenant_id)
        return kz_err_set(err, KZ_ENOTFOUND, "API key %lld does not belong to tenant %lld", (long long)x->key_id,
                          (long long)x->tenant_id);
    if (revoked)
        return kz_err_set(err, KZ_ENOTFOUND, "API key revoked");
    if (expires && x->now >= expires)
        return kz_err_set(err, KZ_ENOTFOUND, "API key expired");
    return h->has_key_budget ? kz_sq_spent(c, 1, x->key_id, period, x->now, &h->key_spent, err) : KZ_OK;
}

static kz_status read_tenant_hold(struct kz_sq_conn *c, const struct reserve_ctx *x,
                                  struct kz_ledger_hold_state *h, struct kz_err *err)
{
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc =
        kz_sq_prep(c, "SELECT prepaid, balance, reserved, budget, period FROM tenants WHERE id = ?1", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, x->tenant_id);
    if ((rc = kz_sq_row(c, st, &row, "reading a tenant", err)))
        return rc;
    if (!row)
        return kz_err_set(err, KZ_ENOTFOUND, "no tenant with id %lld", (long long)x->tenant_id);
    h->prepaid = sqlite3_column_int(st, 0);
    h->balance = sqlite3_column_int64(st, 1);
    h->tenant_reserved = sqlite3_column_int64(st, 2);
    h->has_tenant_budget = sqlite3_column_type(st, 3) != SQLITE_NULL;
    h->tenant_budget = sqlite3_column_int64(st, 3);
    enum kz_ledger_period period = (enum kz_ledger_period)sqlite3_column_int(st, 4);
    sqlite3_reset(st);
    return h->has_tenant_budget ? kz_sq_spent(c, 0, x->tenant_id, period, x->now, &h->tenant_spent, err) : KZ_OK;
}

static kz_status set_reserved(struct kz_sq_conn *c, const char *sql, int64_t id, int64_t value, struct kz_err *err)
{
    sqlite3_stmt *st;
    kz_status rc = kz_sq_prep(c, sql, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, value);
    return kz_sq_done(c, st, "updating reserved", err);
}

static kz_status reserve_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    struct reserve_ctx *x = ud;
    struct kz_ledger_hold_state h;
    memset(&h, 0, sizeof h);
    kz_status rc;
    if ((rc = check_new_request(c, x->request_id, err)) || (rc = read_tenant_hold(c, x, &h, err)) ||
        (x->key_id && (rc = read_key_hold(c, x, &h, err))) || (rc = kz_ledger_admit(&h, x->max_cost, x->deny, err)))
        return rc;
    int64_t key_reserved, tenant_reserved;
    if ((rc = kz_ledger_add(h.key_reserved, x->max_cost, &key_reserved, "key reserved", err)) ||
        (rc = kz_ledger_add(h.tenant_reserved, x->max_cost, &tenant_reserved, "tenant reserved", err)))
        return rc;
    sqlite3_stmt *st;
    if ((rc = kz_sq_prep(c,
                         "INSERT INTO reservations(request_id, tenant_id, key_id, amount, created_ms)"
                         " VALUES (?1, ?2, ?3, ?4, ?5)",
                         &st, err)))
        return rc;
    sqlite3_bind_text(st, 1, x->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, x->tenant_id);
    kz_sq_bind_id(st, 3, x->key_id);
    sqlite3_bind_int64(st, 4, x->max_cost);
    sqlite3_bind_int64(st, 5, x->now);
    if ((rc = kz_sq_done(c, st, "storing a reservation", err)))
        return rc;
    x->reservation = sqlite3_last_insert_rowid(c->db);
    if (x->key_id &&
        (rc = set_reserved(c, "UPDATE api_keys SET reserved = ?2 WHERE id = ?1", x->key_id, key_reserved, err)))
        return rc;
    return set_reserved(c, "UPDATE tenants SET reserved = ?2 WHERE id = ?1", x->tenant_id, tenant_reserved, err);
}

kz_status kz_sq_reserve(struct kz_ledger *l, int64_t key_id, int64_t tenant_id, int64_t max_cost,
                        const char *request_id, int64_t now, int64_t *reservation, enum kz_ledger_deny *deny,
                        struct kz_err *err)
{
    struct reserve_ctx x = {key_id, tenant_id, max_cost, request_id, now, 0, deny};
    kz_status rc = kz_sq_write((struct kz_sq *)l, 0, reserve_in, &x, err);
    if (!rc)
        *reservation = x.reservation;
    return rc;
}

/* ---- release, sweep ------------------------------------------------------------ */

static kz_status release_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    int64_t id = *(int64_t *)ud;
    int found = 0;
    kz_status rc = kz_sq_drop_reservation(c, id, &found, err);
    if (!rc && !found)
        return kz_err_set(err, KZ_ENOTFOUND, "no open reservation %lld (settled, released or expired)", (long long)id);
    return rc;
}

kz_status kz_sq_release(struct kz_ledger *l, int64_t reservation, struct kz_err *err)
{
    return kz_sq_write((struct kz_sq *)l, 0, release_in, &reservation, err);
}

struct sweep_ctx {
    int64_t before, released;
};

static kz_status sweep_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    /* Set-based: the counters lose exactly the sums of the rows deleted
     * after them, all under the same write lock. */
    static const char *const SQL[] = {
        "UPDATE api_keys SET reserved = reserved - (SELECT SUM(amount) FROM reservations r"
        " WHERE r.key_id = api_keys.id AND r.created_ms < ?1)"
        " WHERE id IN (SELECT key_id FROM reservations WHERE created_ms < ?1)",
        "UPDATE tenants SET reserved = reserved - (SELECT SUM(amount) FROM reservations r"
        " WHERE r.tenant_id = tenants.id AND r.created_ms < ?1)"
        " WHERE id IN (SELECT tenant_id FROM reservations WHERE created_ms < ?1)",
        "DELETE FROM reservations WHERE created_ms < ?1",
    };
    struct sweep_ctx *x = ud;
    for (size_t i = 0; i < sizeof SQL / sizeof SQL[0]; i++) {
        sqlite3_stmt *st;
        kz_status rc = kz_sq_prep(c, SQL[i], &st, err);
        if (rc)
            return rc;
        sqlite3_bind_int64(st, 1, x->before);
        if ((rc = kz_sq_done(c, st, "sweeping expired reservations", err)))
            return rc;
    }
    x->released = sqlite3_changes(c->db);
    return KZ_OK;
}

kz_status kz_sq_sweep(struct kz_ledger *l, int64_t before_ms, int64_t *released, struct kz_err *err)
{
    struct sweep_ctx x = {before_ms, 0};
    kz_status rc = kz_sq_write((struct kz_sq *)l, 0, sweep_in, &x, err);
    *released = rc ? 0 : x.released;
    return rc;
}

struct count_ctx {
    int64_t count, amount;
};

static kz_status count_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    struct count_ctx *x = ud;
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c, "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM reservations", &st, err);
    if (rc || (rc = kz_sq_row(c, st, &row, "counting reservations", err)) || !row)
        return rc;
    x->count = sqlite3_column_int64(st, 0);
    x->amount = sqlite3_column_int64(st, 1);
    return KZ_OK;
}

kz_status kz_sq_reservations(struct kz_ledger *l, int64_t *count, int64_t *amount, struct kz_err *err)
{
    struct count_ctx x = {0, 0};
    kz_status rc = kz_sq_read((struct kz_sq *)l, count_in, &x, err);
    *count = x.count;
    *amount = x.amount;
    return rc;
}
