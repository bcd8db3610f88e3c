/* SPDX-License-Identifier: MIT
 * PostgreSQL backend: reservations (reserve, release, sweep) and
 * settlement.
 *
 * Lock order, everywhere: the tenant row, then the key row. A reservation
 * locks both before it reads what is spent and held, so reservations of one
 * tenant from any number of nodes are decided one after the other, each
 * seeing the holds of those before it. A settle batch takes its records in
 * (tenant, key) order for the same reason: two nodes settling at once never
 * wait on each other in a cycle.
 */
#include <string.h>

#include "core/alloc.h"
#include "ledger/pg_int.h"

/* ---- reservations ------------------------------------------------------------- */

kz_status kz_pg_drop_reservation(struct kz_pg_conn *c, int64_t id, int *found, struct kz_err *err)
{
    struct kz_pg_args a = {.n = 0};
    kz_pg_i64(&a, id);
    PGresult *r;
    kz_status rc = kz_pg_exec(c, "DELETE FROM reservations WHERE id = $1 RETURNING COALESCE(key_id, 0), tenant_id, amount",
                              &a, &r, "removing a reservation", err);
    if (rc)
        return rc;
    *found = PQntuples(r) > 0;
    int64_t key = *found ? kz_pg_col_i64(r, 0, 0) : 0, tenant = *found ? kz_pg_col_i64(r, 0, 1) : 0;
    int64_t amount = *found ? kz_pg_col_i64(r, 0, 2) : 0;
    PQclear(r);
    if (!*found)
        return KZ_OK;
    a.n = 0;
    kz_pg_i64(&a, tenant);
    kz_pg_i64(&a, amount);
    if ((rc = kz_pg_exec(c, "UPDATE tenants SET reserved = reserved - $2 WHERE id = $1", &a, NULL,
                         "releasing a tenant reservation", err)) ||
        !key)
        return rc;
    a.n = 0;
    kz_pg_i64(&a, key);
    kz_pg_i64(&a, amount);
    return kz_pg_exec(c, "UPDATE api_keys SET reserved = reserved - $2 WHERE id = $1", &a, NULL,
                      "releasing a key reservation", err);
}

struct reserve {
    int64_t key_id, tenant_id, max_cost;
    const char *request_id;
    int64_t now, reservation;
    enum kz_ledger_deny *deny;
};

static kz_status check_new_request(struct kz_pg_conn *c, const char *request_id, struct kz_err *err)
{
    struct kz_pg_args a = {.n = 0};
    kz_pg_str(&a, request_id);
    PGresult *r;
    kz_status rc = kz_pg_exec(c,
                              "SELECT EXISTS (SELECT 1 FROM usage WHERE request_id = $1),"
                              " EXISTS (SELECT 1 FROM reservations WHERE request_id = $1)",
                              &a, &r, "looking up the request id", err);
    if (rc)
        return rc;
    int settled = PQgetvalue(r, 0, 0)[0] == 't', reserved = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    if (settled)
        return kz_err_set(err, KZ_EINVAL, "request id '%s' is already in the ledger", request_id);
    if (reserved)
        return kz_err_set(err, KZ_EINVAL, "request id '%s' already has an open reservation", request_id);
    return KZ_OK;
}

static kz_status lock_tenant(struct kz_pg_conn *c, const struct reserve *x, struct kz_ledger_hold_state *h,
                             struct kz_err *err)
{
    struct kz_pg_args a = {.n = 0};
    kz_pg_i64(&a, x->tenant_id);
    PGresult *r;
    kz_status rc = kz_pg_exec(c, "SELECT prepaid, balance, reserved, budget, period FROM tenants WHERE id = $1 FOR UPDATE",
                              &a, &r, "reading a tenant", err);
    if (rc)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return kz_err_set(err, KZ_ENOTFOUND, "no tenant with id %lld", (long long)x->tenant_id);
    }
    h->prepaid = (int)kz_pg_col_i64(r, 0, 0);
    h->balance = kz_pg_col_i64(r, 0, 1);
    h->tenant_reserved = kz_pg_col_i64(r, 0, 2);
    h->has_tenant_budget = !kz_pg_col_null(r, 0, 3);
    h->tenant_budget = kz_pg_col_i64(r, 0, 3);
    enum kz_ledger_period period = (enum kz_ledger_period)kz_pg_col_i64(r, 0, 4);
    PQclear(r);
    return h->has_tenant_budget ? kz_pg_spent(c, 0, x->tenant_id, period, x->now, &h->tenant_spent, err) : KZ_OK;
}

/* The key's limits into the hold state, refusing keys that may not spend. */
static kz_status lock_key(struct kz_pg_conn *c, const struct reserve *x, struct kz_ledger_hold_state *h,
                          struct kz_err *err)
{
    struct kz_pg_args a = {.n = 0};
    kz_pg_i64(&a, x->key_id);
    PGresult *r;
    kz_status rc = kz_pg_exec(
        c, "SELECT tenant_id, budget, period, reserved, expires_ms, revoked_ms FROM api_keys WHERE id = $1 FOR UPDATE",
        &a, &r, "reading a key", err);
    if (rc)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return kz_err_set(err, KZ_ENOTFOUND, "no API key with id %lld", (long long)x->key_id);
    }
    int64_t tenant = kz_pg_col_i64(r, 0, 0), expires = kz_pg_col_i64(r, 0, 4), revoked = kz_pg_col_i64(r, 0, 5);
    enum kz_ledger_period period = (enum kz_ledger_period)kz_pg_col_i64(r, 0, 2);
    h->has_key_budget = !kz_pg_col_null(r, 0, 1);
    h->key_budget = kz_pg_col_i64(r, 0, 1);
    h->key_reserved = kz_pg_col_i64(r, 0, 3);
    PQclear(r);
    if (tenant != x->tenant_id)
        return kz_err_set(err, KZ_ENOTFOUND, "API key %lld does not belong to tenant %lld", (long long)x->key_id,
                          (long long)x->tenant_id);
    if (revoked)
        return kz_err_set(err, KZ_ENOTFOUND, "API key revoked");
    if (expires && x->now >= expires)
        return kz_err_set(err, KZ_ENOTFOUND, "API key expired");
    return h->has_key_budget ? kz_pg_spent(c, 1, x->key_id, period, x->now, &h->key_spent, err) : KZ_OK;
}

static kz_status reserve_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    struct reserve *x = ud;
    struct kz_ledger_hold_state h;
    memset(&h, 0, sizeof h);
    kz_status rc;
    if ((rc = check_new_request(c, x->request_id, err)) || (rc = lock_tenant(c, x, &h, err)) ||
        (x->key_id && (rc = lock_key(c, x, &h, err))) || (rc = kz_ledger_admit(&h, x->max_cost, x->deny, err)))
        return rc;
    int64_t sum;
    if ((rc = kz_ledger_add(h.key_reserved, x->max_cost, &sum, "key reserved", err)) ||
        (rc = kz_ledger_add(h.tenant_reserved, x->max_cost, &sum, "tenant reserved", err)))
        return rc;
    struct kz_pg_args a = {.n = 0};
    kz_pg_str(&a, x->request_id);
    kz_pg_i64(&a, x->tenant_id);
    kz_pg_id(&a, x->key_id);
    kz_pg_i64(&a, x->max_cost);
    kz_pg_i64(&a, x->now);
    PGresult *r;
    /* ON CONFLICT: the same id reserved by another node a moment ago */
    if ((rc = kz_pg_exec(c,
                         "INSERT INTO reservations(request_id, tenant_id, key_id, amount, created_ms)"
                         " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id) DO NOTHING RETURNING id",
                         &a, &r, "storing a reservation", err)))
        return rc;
    int stored = PQntuples(r) > 0;
    x->reservation = stored ? kz_pg_col_i64(r, 0, 0) : 0;
    PQclear(r);
    if (!stored)
        return kz_err_set(err, KZ_EINVAL, "request id '%s' already has an open reservation", x->request_id);
    a.n = 0;
    kz_pg_i64(&a, x->tenant_id);
    kz_pg_i64(&a, x->max_cost);
    if ((rc = kz_pg_exec(c, "UPDATE tenants SET reserved = reserved + $2 WHERE id = $1", &a, NULL,
                         "updating reserved", err)) ||
        !x->key_id)
        return rc;
    a.n = 0;
    kz_pg_i64(&a, x->key_id);
    kz_pg_i64(&a, x->max_cost);
    return kz_pg_exec(c, "UPDATE api_keys SET reserved = reserved + $2 WHERE id = $1", &a, NULL, "updating reserved",
                      err);
}

kz_status kz_pg_reserve(struct kz_ledger *l, int64_t key_id, int64_t tenant_id, int64_t max_cost,
                        const char *request_id, int64_t now, int64_t *reservation, enum kz_ledger_deny *deny,
                        struct kz_err *err)
{
    struct reserve x = {key_id, tenant_id, max_cost, request_id, now, 0, deny};
    kz_status rc = kz_pg_tx((struct kz_pg *)l, reserve_in, &x, err);
    if (!rc)
        *reservation = x.reservation;
    return rc;
}

static kz_status release_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    int64_t id = *(int64_t *)ud;
    int found = 0;
    kz_status rc = kz_pg_drop_reservation(c, id, &found, err);
    if (!rc && !found)
        return kz_err_set(err, KZ_ENOTFOUND, "no open reservation %lld (settled, released or expired)", (long long)id);
    return rc;
}

kz_status kz_pg_release(struct kz_ledger *l, int64_t reservation, struct kz_err *err)
{
    return kz_pg_tx((struct kz_pg *)l, release_in, &reservation, err);
}

struct sweep {
    int64_t before, released;
};

static kz_status sweep_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    struct sweep *x = ud;
    struct kz_pg_args a = {.n = 0};
    kz_pg_i64(&a, x->before);
    PGresult *r;
    /* one statement: the rows deleted are exactly the rows whose sums come
     * off the counters (tenants first, the lock order) */
    kz_status rc = kz_pg_exec(
        c,
        "WITH gone AS (DELETE FROM reservations WHERE created_ms < $1 RETURNING tenant_id, key_id, amount),"
        " t AS (UPDATE tenants SET reserved = reserved - s.amount FROM"
        "  (SELECT tenant_id, SUM(amount)::bigint AS amount FROM gone GROUP BY tenant_id) s"
        "  WHERE tenants.id = s.tenant_id RETURNING 1),"
        " k AS (UPDATE api_keys SET reserved = reserved - s.amount FROM"
        "  (SELECT key_id, SUM(amount)::bigint AS amount FROM gone WHERE key_id IS NOT NULL GROUP BY key_id) s"
        "  WHERE api_keys.id = s.key_id RETURNING 1)"
        " SELECT (SELECT COUNT(*) FROM gone), (SELECT COUNT(*) FROM t), (SELECT COUNT(*) FROM k)",
        &a, &r, "sweeping expired reservations", err);
    if (rc)
        return rc;
    x->released = kz_pg_col_i64(r, 0, 0);
    PQclear(r);
    return KZ_OK;
}

kz_status kz_pg_sweep(struct kz_ledger *l, int64_t before_ms, int64_t *released, struct kz_err *err)
{
    struct sweep x = {before_ms, 0};
    kz_status rc = kz_pg_tx((struct kz_pg *)l, sweep_in, &x, err);
    *released = rc ? 0 : x.released;
    return rc;
}

struct count {
    int64_t count, amount;
};

static kz_status count_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    struct count *x = ud;
    PGresult *r;
    kz_status rc = kz_pg_exec(c, "SELECT COUNT(*), COALESCE(SUM(amount), 0)::bigint FROM reservations", NULL, &r,
                              "counting reservations", err);
    if (rc)
        return rc;
    x->count = kz_pg_col_i64(r, 0, 0);
    x->amount = kz_pg_col_i64(r, 0, 1);
    PQclear(r);
    return KZ_OK;
}

kz_status kz_pg_reservations(struct kz_ledger *l, int64_t *count, int64_t *amount, struct kz_err *err)
{
    struct count x = {0, 0};
    kz_status rc = kz_pg_read((struct kz_pg *)l, count_in, &x, err);
    *count = x.count;
    *amount = x.amount;
    return rc;
}

/* ---- settlement ------------------------------------------------------------------ */

void kz_pg_read_usage(const PGresult *r, int row, struct kz_ledger_usage *u)
{
    memset(u, 0, sizeof *u);
    kz_pg_col_text(r, row, 0, u->request_id, sizeof u->request_id);
    u->tenant_id = kz_pg_col_i64(r, row, 1);
    u->key_id = kz_pg_col_i64(r, row, 2);
    kz_pg_col_text(r, row, 3, u->model, sizeof u->model);
    kz_pg_col_text(r, row, 4, u->provider, sizeof u->provider);
    kz_pg_col_text(r, row, 5, u->deployment, sizeof u->deployment);
    u->input_tokens = kz_pg_col_i64(r, row, 6);
    u->output_tokens = kz_pg_col_i64(r, row, 7);
    u->cost = kz_pg_col_i64(r, row, 8);
    u->status = (int)kz_pg_col_i64(r, row, 9);
    u->latency_ms = kz_pg_col_i64(r, row, 10);
    u->ttft_ms = kz_pg_col_i64(r, row, 11);
    u->started_ms = kz_pg_col_i64(r, row, 12);
    u->finished_ms = kz_pg_col_i64(r, row, 13);
}

/* The reservation to end with this record: the one given (it must be this
 * request's: settling another request's hold would free money still in
 * flight), or else the one under the record's request id, if any. */
static kz_status take_reservation(struct kz_pg_conn *c, int64_t id, const struct kz_ledger_usage *u,
                                  struct kz_err *err)
{
    struct kz_pg_args a = {.n = 0};
    kz_pg_str(&a, u->request_id);
    if (id)
        kz_pg_i64(&a, id);
    PGresult *r;
    kz_status rc = kz_pg_exec(c,
                              id ? "SELECT id, tenant_id, COALESCE(key_id, 0), request_id = $1 FROM reservations"
                                   " WHERE id = $2"
                                 : "SELECT id, tenant_id, COALESCE(key_id, 0), TRUE FROM reservations"
                                   " WHERE request_id = $1",
                              &a, &r, "reading a reservation", err);
    if (rc)
        return rc;
    int found = PQntuples(r) > 0;
    int same = found && kz_pg_col_i64(r, 0, 1) == u->tenant_id && kz_pg_col_i64(r, 0, 2) == u->key_id &&
               PQgetvalue(r, 0, 3)[0] == 't';
    int64_t rid = found ? kz_pg_col_i64(r, 0, 0) : 0;
    PQclear(r);
    if (!found)
        return KZ_OK; /* swept, or never made: the request is charged all the same */
    if (!same)
        return kz_err_set(err, KZ_EINVAL, "reservation %lld belongs to another request, key or tenant",
                          (long long)rid);
    return kz_pg_drop_reservation(c, rid, &found, err);
}

/* Locks the tenant (the lock order) and reads the periods that decide the
 * spend buckets; the key must exist and be the tenant's. */
static kz_status owner_periods(struct kz_pg_conn *c, const struct kz_ledger_usage *u, enum kz_ledger_period *kp,
                               enum kz_ledger_period *tp, struct kz_err *err)
{
    struct kz_pg_args a = {.n = 0};
    kz_pg_i64(&a, u->tenant_id);
    PGresult *r;
    kz_status rc = kz_pg_exec(c, "SELECT period FROM tenants WHERE id = $1 FOR UPDATE", &a, &r, "reading a tenant", err);
    if (rc)
        return rc;
    int found = PQntuples(r) > 0;
    *tp = found ? (enum kz_ledger_period)kz_pg_col_i64(r, 0, 0) : KZ_PERIOD_TOTAL;
    PQclear(r);
    if (!found)
        return kz_err_set(err, KZ_ENOTFOUND, "usage: no tenant with id %lld", (long long)u->tenant_id);
    if (!u->key_id)
        return KZ_OK;
    a.n = 0;
    kz_pg_i64(&a, u->key_id);
    if ((rc = kz_pg_exec(c, "SELECT tenant_id, period FROM api_keys WHERE id = $1", &a, &r, "reading a key", err)))
        return rc;
    int64_t tenant = PQntuples(r) ? kz_pg_col_i64(r, 0, 0) : 0;
    *kp = PQntuples(r) ? (enum kz_ledger_period)kz_pg_col_i64(r, 0, 1) : KZ_PERIOD_TOTAL;
    PQclear(r);
    if (tenant != u->tenant_id)
        return kz_err_set(err, KZ_EINVAL, "usage: key %lld is not a key of tenant %lld", (long long)u->key_id,
                          (long long)u->tenant_id);
    return KZ_OK;
}

static kz_status insert_usage(struct kz_pg_conn *c, const struct kz_ledger_usage *u, struct kz_err *err)
{
    struct kz_pg_args a = {.n = 0};
    kz_pg_str(&a, u->request_id);
    kz_pg_i64(&a, u->tenant_id);
    kz_pg_id(&a, u->key_id);
    kz_pg_str(&a, u->model);
    kz_pg_str(&a, u->provider);
    kz_pg_str(&a, u->deployment);
    kz_pg_i64(&a, u->input_tokens);
    kz_pg_i64(&a, u->output_tokens);
    kz_pg_i64(&a, u->cost);
    kz_pg_i64(&a, u->status);
    kz_pg_i64(&a, u->latency_ms);
    kz_pg_i64(&a, u->ttft_ms);
    kz_pg_i64(&a, u->started_ms);
    kz_pg_i64(&a, u->finished_ms);
    kz_pg_i64(&a, kz_ledger_day(u->finished_ms));
    return kz_pg_exec(c,
                      "INSERT INTO usage(request_id, tenant_id, key_id, model, provider, deployment, input_tokens,"
                      " output_tokens, cost, status, latency_ms, ttft_ms, started_ms, finished_ms, day)"
                      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                      &a, NULL, "recording usage", err);
}

static kz_status add(struct kz_pg_conn *c, const char *sql, int64_t owner, int64_t v2, int64_t v3,
                     const char *what, struct kz_err *err)
{
    struct kz_pg_args a = {.n = 0};
    kz_pg_i64(&a, owner);
    kz_pg_i64(&a, v2);
    kz_pg_i64(&a, v3);
    return kz_pg_exec(c, sql, &a, NULL, what, err);
}

static kz_status settle_one(struct kz_pg_conn *c, struct kz_ledger_settle_item *it, struct kz_err *err)
{
    const struct kz_ledger_usage *u = it->u;
    struct kz_pg_args a = {.n = 0};
    kz_pg_str(&a, u->request_id);
    PGresult *r;
    kz_status rc = kz_pg_exec(c, "SELECT " KZ_PG_USAGE_COLS " FROM usage WHERE request_id = $1", &a, &r,
                              "looking up the request id", err);
    if (rc)
        return rc;
    if (PQntuples(r) > 0) {
        /* A retry: nothing new is charged; its own hold goes back. */
        kz_pg_read_usage(r, 0, &it->stored);
        PQclear(r);
        it->duplicate = 1;
        return take_reservation(c, it->reservation, u, err);
    }
    PQclear(r);
    enum kz_ledger_period kp = KZ_PERIOD_TOTAL, tp = KZ_PERIOD_TOTAL;
    int64_t now = u->finished_ms;
    if ((rc = take_reservation(c, it->reservation, u, err)) || (rc = owner_periods(c, u, &kp, &tp, err)) ||
        (rc = insert_usage(c, u, err)))
        return rc;
    if (u->key_id && (rc = add(c,
                               "INSERT INTO key_spend(key_id, period_ms, amount) VALUES ($1, $2, $3)"
                               " ON CONFLICT (key_id, period_ms) DO UPDATE SET amount = key_spend.amount + $3",
                               u->key_id, kz_ledger_period_start(kp, now), u->cost, "adding spend", err)))
        return rc;
    if ((rc = add(c,
                  "INSERT INTO tenant_spend(tenant_id, period_ms, amount) VALUES ($1, $2, $3)"
                  " ON CONFLICT (tenant_id, period_ms) DO UPDATE SET amount = tenant_spend.amount + $3",
                  u->tenant_id, kz_ledger_period_start(tp, now), u->cost, "adding spend", err)))
        return rc;
    a.n = 0;
    kz_pg_i64(&a, u->tenant_id);
    kz_pg_i64(&a, u->cost);
    if ((rc = kz_pg_exec(c, "UPDATE tenants SET balance = balance - $2 WHERE id = $1", &a, NULL, "charging the tenant",
                         err)))
        return rc;
    it->stored = *u;
    it->duplicate = 0;
    return KZ_OK;
}

struct batch {
    struct kz_ledger_settle_item *items;
    size_t *order; /* items by (tenant, key): the lock order */
    size_t n;
};

static kz_status settle_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    struct batch *b = ud;
    if (b->n == 1) {
        /* Alone in its transaction: its failure is the transaction's. */
        struct kz_ledger_settle_item *it = &b->items[0];
        it->rc = settle_one(c, it, &it->err);
        if (it->rc && err)
            *err = it->err;
        return it->rc;
    }
    for (size_t i = 0; i < b->n; i++) {
        struct kz_ledger_settle_item *it = &b->items[b->order[i]];
        it->rc = KZ_OK; /* again, when the transaction is retried */
        it->duplicate = 0;
        kz_status rc = kz_pg_exec(c, "SAVEPOINT kz_settle", NULL, NULL, "settling", err);
        if (rc)
            return rc;
        it->rc = settle_one(c, it, &it->err);
        if (it->rc && PQstatus(c->pc) != CONNECTION_OK) {
            if (err)
                *err = it->err;
            return it->rc;
        }
        if (it->rc && (rc = kz_pg_exec(c, "ROLLBACK TO SAVEPOINT kz_settle", NULL, NULL, "settling", err)))
            return rc;
        if ((rc = kz_pg_exec(c, "RELEASE SAVEPOINT kz_settle", NULL, NULL, "settling", err)))
            return rc;
    }
    return KZ_OK;
}

/* 1 when item a must be settled before item b: (tenant, key) order. */
static int before(const struct kz_ledger_settle_item *a, const struct kz_ledger_settle_item *b)
{
    if (a->u->tenant_id != b->u->tenant_id)
        return a->u->tenant_id < b->u->tenant_id;
    return a->u->key_id < b->u->key_id;
}

kz_status kz_pg_settle(struct kz_ledger *l, struct kz_ledger_settle_item *items, size_t n, struct kz_err *err)
{
    struct kz_err local;
    if (!err)
        err = &local;
    for (size_t i = 0; i < n; i++) {
        items[i].rc = KZ_OK;
        items[i].duplicate = 0;
        items[i].err.msg[0] = '\0';
    }
    struct batch b = {items, kz_calloc(n ? n : 1, sizeof *b.order), n};
    if (!b.order)
        return kz_err_set(err, KZ_ENOMEM, "settling: out of memory");
    for (size_t i = 0; i < n; i++) { /* insertion sort: a batch is at most a few hundred */
        size_t j = i;
        for (; j > 0 && before(&items[i], &items[b.order[j - 1]]); j--)
            b.order[j] = b.order[j - 1];
        b.order[j] = i;
    }
    kz_status rc = kz_pg_tx((struct kz_pg *)l, settle_in, &b, err);
    kz_free(b.order);
    if (rc)
        /* Nothing of the batch was kept: every record failed with it,
         * except those that had already failed for a reason of their own. */
        for (size_t i = 0; i < n; i++)
            if (!items[i].rc) {
                items[i].rc = rc;
                items[i].err = *err;
                items[i].duplicate = 0;
            }
    return rc;
}
