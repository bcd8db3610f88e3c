/* SPDX-License-Identifier: MIT
 * PostgreSQL backend: usage queries. SUM over BIGINT is NUMERIC in
 * PostgreSQL; the ::bigint casts make a sum past int64 an error ("bigint out
 * of range") instead of a number we would misread. Text groups sort by
 * bytes (COLLATE "C"), as SQLite sorts them, whatever the server's locale.
 */
#include <string.h>

#include "core/alloc.h"
#include "ledger/pg_int.h"

/* Columns: group text, group number (day or key id), then the four sums.
 * $1, $2: the time range; $3: the tenant (the one-tenant queries). */
#define SUMS                                                                                                 \
    "COUNT(*), COALESCE(SUM(u.input_tokens), 0)::bigint, COALESCE(SUM(u.output_tokens), 0)::bigint,"      \
    " COALESCE(SUM(u.cost), 0)::bigint"
#define RANGE "u.finished_ms >= $1 AND u.finished_ms < $2"
#define TENANT "u.tenant_id = $3 AND "
#define KEY_JOIN " FROM usage u LEFT JOIN api_keys k ON k.id = u.key_id WHERE "
#define QUERIES(F)                                                                                           \
    {"SELECT '', 0, " SUMS " FROM usage u WHERE " F RANGE,                                                   \
     "SELECT u.model, 0, " SUMS " FROM usage u WHERE " F RANGE                                               \
     " GROUP BY u.model ORDER BY u.model COLLATE \"C\"",                                                     \
     "SELECT '', u.day, " SUMS " FROM usage u WHERE " F RANGE " GROUP BY u.day ORDER BY u.day",              \
     "SELECT COALESCE(k.prefix, ''), COALESCE(u.key_id, 0), " SUMS KEY_JOIN F RANGE                          \
     " GROUP BY u.key_id, k.prefix ORDER BY COALESCE(u.key_id, 0)"}

/* [0]: every tenant, [1]: one tenant. Indexed by kz_ledger_group. */
static const char *const SQL[2][4] = {QUERIES(""), QUERIES(TENANT)};

struct query {
    int64_t tenant_id;
    const struct kz_ledger_query *q;
    struct kz_ledger_usage_row *v;
    size_t n;
};

static kz_status query_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    struct query *x = ud;
    struct kz_pg_args a = {.n = 0};
    kz_pg_i64(&a, x->q->since_ms);
    kz_pg_i64(&a, x->q->until_ms ? x->q->until_ms : INT64_MAX);
    if (x->tenant_id)
        kz_pg_i64(&a, x->tenant_id);
    PGresult *r;
    kz_status rc = kz_pg_exec(c, SQL[x->tenant_id != 0][x->q->by], &a, &r, "summing usage", err);
    if (rc)
        return rc;
    int n = PQntuples(r);
    kz_free(x->v); /* from an attempt that was retried */
    x->v = NULL;
    x->n = 0;
    if (n > 0 && !(x->v = kz_calloc((size_t)n, sizeof *x->v))) {
        PQclear(r);
        return kz_err_set(err, KZ_ENOMEM, "summing usage: out of memory");
    }
    for (int i = 0; i < n; i++) {
        struct kz_ledger_usage_row *row = &x->v[x->n++];
        if (x->q->by == KZ_GROUP_DAY)
            kz_ledger_day_name(kz_pg_col_i64(r, i, 1), row->group, sizeof row->group);
        else
            kz_pg_col_text(r, i, 0, row->group, sizeof row->group);
        if (x->q->by == KZ_GROUP_KEY)
            row->key_id = kz_pg_col_i64(r, i, 1);
        row->requests = kz_pg_col_i64(r, i, 2);
        row->input_tokens = kz_pg_col_i64(r, i, 3);
        row->output_tokens = kz_pg_col_i64(r, i, 4);
        row->cost = kz_pg_col_i64(r, i, 5);
    }
    PQclear(r);
    return KZ_OK;
}

kz_status kz_pg_usage(struct kz_ledger *l, int64_t tenant_id, const struct kz_ledger_query *q,
                      struct kz_ledger_usage_row **rows, size_t *n, struct kz_err *err)
{
    struct query x = {tenant_id, q, NULL, 0};
    kz_status rc = kz_pg_read((struct kz_pg *)l, query_in, &x, err);
    if (rc) {
        kz_free(x.v);
        return rc;
    }
    *rows = x.v;
    *n = x.n;
    return KZ_OK;
}

struct get {
    int64_t tenant_id;
    const char *request_id;
    struct kz_ledger_usage *out;
};

static kz_status get_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    struct get *x = ud;
    struct kz_pg_args a = {.n = 0};
    kz_pg_str(&a, x->request_id);
    kz_pg_i64(&a, x->tenant_id);
    PGresult *r;
    kz_status rc = kz_pg_exec(c, "SELECT " KZ_PG_USAGE_COLS " FROM usage WHERE request_id = $1 AND tenant_id = $2",
                              &a, &r, "reading a usage record", err);
    if (rc)
        return rc;
    if (PQntuples(r) == 0)
        rc = kz_err_set(err, KZ_ENOTFOUND, "no usage record for request id '%s'", x->request_id);
    else
        kz_pg_read_usage(r, 0, x->out);
    PQclear(r);
    return rc;
}

kz_status kz_pg_usage_get(struct kz_ledger *l, int64_t tenant_id, const char *request_id,
                          struct kz_ledger_usage *out, struct kz_err *err)
{
    struct get x = {tenant_id, request_id, out};
    return kz_pg_read((struct kz_pg *)l, get_in, &x, err);
}
