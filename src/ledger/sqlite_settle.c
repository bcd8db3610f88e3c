/* SPDX-License-Identifier: MIT
 * SQLite backend: settlement. A batch is one durable transaction; each
 * record runs inside a savepoint so that one bad record (an unknown key, a
 * reservation of another request) is rolled back alone and the rest of the
 * batch still commits.
 */
#include <string.h>

#include "ledger/sqlite_int.h"

static const char SQL_SAVEPOINT[] = "SAVEPOINT kz_settle";
static const char SQL_RELEASE[] = "RELEASE kz_settle";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO kz_settle";

/* The stored record for a request id, if any. */
static kz_status find_usage(struct kz_sq_conn *c, const char *request_id, struct kz_ledger_usage *out, int *found,
                            struct kz_err *err)
{
    sqlite3_stmt *st;
    kz_status rc = kz_sq_prep(c, "SELECT " KZ_SQ_USAGE_COLS " FROM usage WHERE request_id = ?1", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, request_id, -1, SQLITE_STATIC);
    if ((rc = kz_sq_row(c, st, found, "looking up the request id", err)) || !*found)
        return rc;
    kz_sq_read_usage(st, out);
    sqlite3_reset(st);
    return KZ_OK;
}

/* The reservation to end with this record: the one given (it must be this
 * request's: settling another request's hold would free money that is
 * still in flight), or else the one under the record's request id, if any
 * (a record replayed from the server's journal does not know its id). */
static kz_status take_reservation(struct kz_sq_conn *c, int64_t id, const struct kz_ledger_usage *u,
                                  struct kz_err *err)
{
    static const char BY_ID[] = "SELECT id, tenant_id, COALESCE(key_id, 0), request_id = ?1 FROM reservations"
                                " WHERE id = ?2";
    static const char BY_REQUEST[] = "SELECT id, tenant_id, COALESCE(key_id, 0), 1 FROM reservations"
                                     " WHERE request_id = ?1";
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c, id ? BY_ID : BY_REQUEST, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, u->request_id, -1, SQLITE_STATIC);
    if (id)
        sqlite3_bind_int64(st, 2, id);
    if ((rc = kz_sq_row(c, st, &row, "reading a reservation", err)) || !row)
        return rc; /* swept, or never made: the request is charged all the same */
    int64_t rid = sqlite3_column_int64(st, 0);
    int same = sqlite3_column_int64(st, 1) == u->tenant_id && sqlite3_column_int64(st, 2) == u->key_id &&
               sqlite3_column_int(st, 3) == 1;
    sqlite3_reset(st);
    if (!same)
        return kz_err_set(err, KZ_EINVAL, "reservation %lld belongs to another request, key or tenant", (long long)rid);
    int found;
    return kz_sq_drop_reservation(c, rid, &found, err);
}

/* The key must exist and be the tenant's; its period decides the bucket. */
static kz_status owner_periods(struct kz_sq_conn *c, const struct kz_ledger_usage *u, enum kz_ledger_period *kp,
                               enum kz_ledger_period *tp, struct kz_err *err)
{
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c, "SELECT period FROM tenants WHERE id = ?1", &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, u->tenant_id);
    if ((rc = kz_sq_row(c, st, &row, "reading a tenant", err)))
        return rc;
    if (!row)
        return kz_err_set(err, KZ_ENOTFOUND, "usage: no tenant with id %lld", (long long)u->tenant_id);
    *tp = (enum kz_ledger_period)sqlite3_column_int(st, 0);
    sqlite3_reset(st);
    if (!u->key_id)
        return KZ_OK;
    if ((rc = kz_sq_prep(c, "SELECT tenant_id, period FROM api_keys WHERE id = ?1", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, u->key_id);
    if ((rc = kz_sq_row(c, st, &row, "reading a key", err)))
        return rc;
    int64_t tenant = row ? sqlite3_column_int64(st, 0) : 0;
    *kp = row ? (enum kz_ledger_period)sqlite3_column_int(st, 1) : KZ_PERIOD_TOTAL;
    sqlite3_reset(st);
    if (tenant != u->tenant_id)
        return kz_err_set(err, KZ_EINVAL, "usage: key %lld is not a key of tenant %lld", (long long)u->key_id,
                          (long long)u->tenant_id);
    return KZ_OK;
}

static kz_status insert_usage(struct kz_sq_conn *c, const struct kz_ledger_usage *u, struct kz_err *err)
{
    sqlite3_stmt *st;
    kz_status rc = kz_sq_prep(c,
                              "INSERT INTO usage(" KZ_SQ_USAGE_COLS ", day)"
                              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                              &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, u->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, u->tenant_id);
    kz_sq_bind_id(st, 3, u->key_id);
    sqlite3_bind_text(st, 4, u->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, u->provider, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, u->deployment, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, u->input_tokens);
    sqlite3_bind_int64(st, 8, u->output_tokens);
    sqlite3_bind_int64(st, 9, u->cost);
    sqlite3_bind_int(st, 10, u->status);
    sqlite3_bind_int64(st, 11, u->latency_ms);
    sqlite3_bind_int64(st, 12, u->ttft_ms);
    sqlite3_bind_int64(st, 13, u->started_ms);
    sqlite3_bind_int64(st, 14, u->finished_ms);
    sqlite3_bind_int64(st, 15, kz_ledger_day(u->finished_ms));
    return kz_sq_done(c, st, "recording usage", err);
}

/* Adds the cost to a spend bucket. An amount past int64 becomes a REAL in
 * SQLite arithmetic, which the STRICT INTEGER column refuses: the settle
 * fails rather than store an inexact sum. */
static kz_status add_spend(struct kz_sq_conn *c, const char *sql, int64_t owner, int64_t period_ms, int64_t cost,
                           struct kz_err *err)
{
    sqlite3_stmt *st;
    kz_status rc = kz_sq_prep(c, sql, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, owner);
    sqlite3_bind_int64(st, 2, period_ms);
    sqlite3_bind_int64(st, 3, cost);
    return kz_sq_done(c, st, "adding spend", err);
}

static kz_status settle_one(struct kz_sq_conn *c, struct kz_ledger_settle_item *it, struct kz_err *err)
{
    const struct kz_ledger_usage *u = it->u;
    int found = 0;
    kz_status rc = find_usage(c, u->request_id, &it->stored, &found, err);
    if (rc)
        return rc;
    if (found) {
        /* A retry: nothing new is charged; its own hold goes back. */
        it->duplicate = 1;
        return take_reservation(c, it->reservation, u, err);
    }
    enum kz_ledger_period kp = KZ_PERIOD_TOTAL, tp = KZ_PERIOD_TOTAL;
    if ((rc = take_reservation(c, it->reservation, u, err)) ||
        (rc = owner_periods(c, u, &kp, &tp, err)) || (rc = insert_usage(c, u, err)))
        return rc;
    if (u->key_id &&
        (rc = add_spend(c,
                        "INSERT INTO key_spend(key_id, period_ms, amount) VALUES (?1, ?2, ?3)"
                        " ON CONFLICT (key_id, period_ms) DO UPDATE SET amount = amount + excluded.amount",
                        u->key_id, kz_ledger_period_start(kp, u->finished_ms), u->cost, err)))
        return rc;
    if ((rc = add_spend(c,
                        "INSERT INTO tenant_spend(tenant_id, period_ms, amount) VALUES (?1, ?2, ?3)"
                        " ON CONFLICT (tenant_id, period_ms) DO UPDATE SET amount = amount + excluded.amount",
                        u->tenant_id, kz_ledger_period_start(tp, u->finished_ms), u->cost, err)))
        return rc;
    sqlite3_stmt *st;
    if ((rc = kz_sq_prep(c, "UPDATE tenants SET balance = balance - ?2 WHERE id = ?1", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, u->tenant_id);
    sqlite3_bind_int64(st, 2, u->cost);
    if ((rc = kz_sq_done(c, st, "charging the tenant", err)))
        return rc;
    it->stored = *u;
    it->duplicate = 0;
    return KZ_OK;
}

static kz_status run(struct kz_sq_conn *c, const char *sql, struct kz_err *err)
{
    sqlite3_stmt *st;
    kz_status rc = kz_sq_prep(c, sql, &st, err);
    return rc ? rc : kz_sq_done(c, st, sql, err);
}

struct batch {
    struct kz_ledger_settle_item *items;
    size_t n;
};

static kz_status settle_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
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
        struct kz_ledger_settle_item *it = &b->items[i];
        kz_status rc = run(c, SQL_SAVEPOINT, err);
        if (rc)
            return rc;
        it->rc = settle_one(c, it, &it->err);
        if (it->rc && sqlite3_get_autocommit(c->db)) {
            /* Disk full or an I/O error ended the whole transaction. */
            if (err)
                *err = it->err;
            return it->rc;
        }
        if (it->rc && (rc = run(c, SQL_ROLLBACK_TO, err)))
            return rc;
        if ((rc = run(c, SQL_RELEASE, err)))
            return rc;
    }
    return KZ_OK;
}

kz_status kz_sq_settle(struct kz_ledger *l, struct kz_ledger_settle_item *items, size_t n, struct kz_err *err)
{
    struct kz_err local;
    if (!err)
        err = &local;
    for (size_t i = 0; i < n; i++) {
        items[i].rc = KZ_OK;
        items[i].duplicate = 0;
        items[i].err.msg[0] = '\0';
    }
    struct batch b = {items, n};
    kz_status rc = kz_sq_write((struct kz_sq *)l, 1, settle_in, &b, err);
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
