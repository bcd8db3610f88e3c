/* SPDX-License-Identifier: MIT
 * SQLite backend: usage queries. Sums are SQLite integer SUMs, which fail
 * with "integer overflow" instead of going inexact.
 */
#include <string.h>

#include "core/alloc.h"
#include "ledger/sqlite_int.h"

void kz_sq_read_usage(sqlite3_stmt *st, struct kz_ledger_usage *u)
{
    memset(u, 0, sizeof *u);
    kz_sq_col_text(st, 0, u->request_id, sizeof u->request_id);
    u->tenant_id = sqlite3_column_int64(st, 1);
    u->key_id = sqlite3_column_int64(st, 2);
    kz_sq_col_text(st, 3, u->model, sizeof u->model);
    kz_sq_col_text(st, 4, u->provider, sizeof u->provider);
    kz_sq_col_text(st, 5, u->deployment, sizeof u->deployment);
    u->input_tokens = sqlite3_column_int64(st, 6);
    u->output_tokens = sqlite3_column_int64(st, 7);
    u->cost = sqlite3_column_int64(st, 8);
    u->status = sqlite3_column_int(st, 9);
    u->latency_ms = sqlite3_column_int64(st, 10);
    u->ttft_ms = sqlite3_column_int64(st, 11);
    u->started_ms = sqlite3_column_int64(st, 12);
    u->finished_ms = sqlite3_column_int64(st, 13);
}

/* Columns: group text, group number (day or key id), then the four sums. */
#define SUMS                                                                                                  \
    "COUNT(*), COALESCE(SUM(u.input_tokens), 0), COALESCE(SUM(u.output_tokens), 0), COALESCE(SUM(u.cost), 0)"
#define RANGE "u.finished_ms >= ?2 AND u.finished_ms < ?3"
#define TENANT "u.tenant_id = ?1 AND "
#define KEY_JOIN " FROM usage u LEFT JOIN api_keys k ON k.id = u.key_id WHERE "
#define QUERIES(F)                                                                                            \
    {"SELECT '', 0, " SUMS " FROM usage u WHERE " F RANGE,                                                    \
     "SELECT u.model, 0, " SUMS " FROM usage u WHERE " F RANGE " GROUP BY u.model ORDER BY u.model",          \
     "SELECT '', u.day, " SUMS " FROM usage u WHERE " F RANGE " GROUP BY u.day ORDER BY u.day",               \
     "SELECT COALESCE(k.prefix, ''), COALESCE(u.key_id, 0), " SUMS KEY_JOIN F RANGE                           \
     " GROUP BY u.key_id ORDER BY u.key_id"}

/* [0]: every tenant (?1 unused), [1]: one tenant. Indexed by kz_ledger_group. */
static const char *const SQL[2][4] = {QUERIES(""), QUERIES(TENANT)};

struct query_ctx {
    int64_t tenant_id;
    const struct kz_ledger_query *q;
    struct kz_ledger_usage_row *v;
    size_t n, cap;
};

static kz_status query_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    struct query_ctx *x = ud;
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c, SQL[x->tenant_id != 0][x->q->by], &st, err);
    if (rc)
        return rc;
    if (x->tenant_id)
        sqlite3_bind_int64(st, 1, x->tenant_id);
    sqlite3_bind_int64(st, 2, x->q->since_ms);
    sqlite3_bind_int64(st, 3, x->q->until_ms ? x->q->until_ms : INT64_MAX);
    while (!(rc = kz_sq_row(c, st, &row, "summing usage", err)) && row) {
        struct kz_ledger_usage_row *nv = kz_ledger_grow(x->v, &x->cap, x->n, sizeof *nv);
        if (!nv)
            return kz_err_set(err, KZ_ENOMEM, "summing usage: out of memory");
        x->v = nv;
        struct kz_ledger_usage_row *r = &x->v[x->n++];
        memset(r, 0, sizeof *r);
        if (x->q->by == KZ_GROUP_DAY)
            kz_ledger_day_name(sqlite3_column_int64(st, 1), r->group, sizeof r->group);
        else
            kz_sq_col_text(st, 0, r->group, sizeof r->group);
        if (x->q->by == KZ_GROUP_KEY)
            r->key_id = sqlite3_column_int64(st, 1);
        r->requests = sqlite3_column_int64(st, 2);
        r->input_tokens = sqlite3_column_int64(st, 3);
        r->output_tokens = sqlite3_column_int64(st, 4);
        r->cost = sqlite3_column_int64(st, 5);
    }
    return rc;
}

kz_status kz_sq_usage(struct kz_ledger *l, int64_t tenant_id, const struct kz_ledger_query *q,
                      struct kz_ledger_usage_row **rows, size_t *n, struct kz_err *err)
{
    struct query_ctx x = {tenant_id, q, NULL, 0, 0};
    kz_status rc = kz_sq_read((struct kz_sq *)l, query_in, &x, err);
    if (rc) {
        kz_free(x.v);
        return rc;
    }
    *rows = x.v;
    *n = x.n;
    return KZ_OK;
}

struct get_ctx {
    int64_t tenant_id;
    const char *request_id;
    struct kz_ledger_usage *out;
};

static kz_status get_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    struct get_ctx *x = ud;
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c, "SELECT " KZ_SQ_USAGE_COLS " FROM usage WHERE request_id = ?1 AND tenant_id = ?2",
                              &st, err);
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, x->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, x->tenant_id);
    if ((rc = kz_sq_row(c, st, &row, "reading a usage record", err)))
        return rc;
    if (!row)
        return kz_err_set(err, KZ_ENOTFOUND, "no usage record for request id '%s'", x->request_id);
    kz_sq_read_usage(st, x->out);
    return KZ_OK;
}

kz_status kz_sq_usage_get(struct kz_ledger *l, int64_t tenant_id, const char *request_id,
                          struct kz_ledger_usage *out, struct kz_err *err)
{
    struct get_ctx x = {tenant_id, request_id, out};
    return kz_sq_read((struct kz_sq *)l, get_in, &x, err);
}
