/* SPDX-License-Identifier: MIT
 * The SQLite backend's handle: opening (connections, migrations), closing,
 * and the self-check.
 */
#include <string.h>

#include "core/alloc.h"
#include "ledger/sqlite_int.h"

static void sq_close(struct kz_ledger *l)
{
    struct kz_sq *s = (struct kz_sq *)l;
    for (size_t i = 0; i < s->n_r; i++)
        kz_sq_conn_close(&s->r[i]);
    kz_free(s->r);
    /* The writer goes last: closing the last connection checkpoints the WAL
     * into the database file and removes the -wal and -shm files. */
    kz_sq_conn_close(&s->w);
    kz_free(s->path);
    kz_free(s);
}

static const struct kz_ledger_ops SQLITE_OPS = {
    .close = sq_close,
    .check = kz_sq_check,
    .tenant_create = kz_sq_tenant_create,
    .tenant_get = kz_sq_tenant_get,
    .tenant_list = kz_sq_tenant_list,
    .tenant_credit = kz_sq_tenant_credit,
    .key_insert = kz_sq_key_insert,
    .key_get = kz_sq_key_get,
    .key_list = kz_sq_key_list,
    .key_revoke = kz_sq_key_revoke,
    .reserve = kz_sq_reserve,
    .release = kz_sq_release,
    .sweep = kz_sq_sweep,
    .reservations = kz_sq_reservations,
    .settle = kz_sq_settle,
    .usage = kz_sq_usage,
    .usage_get = kz_sq_usage_get,
};

kz_status kz_ledger_sqlite_open(const char *path, const struct kz_ledger_opts *opts, struct kz_ledger **out,
                                struct kz_err *err)
{
    struct kz_sq *s = kz_calloc(1, sizeof *s);
    if (!s || !(s->path = kz_strdup(path))) {
        kz_free(s);
        return kz_err_set(err, KZ_ENOMEM, "ledger: out of memory");
    }
    s->base.ops = &SQLITE_OPS;
    s->base.opts = *opts;
    /* The writer first: it creates the file, switches it to WAL and brings
     * the schema up to date before any reader looks at it. */
    kz_status rc = kz_sq_conn_open(s, &s->w, 0, err);
    if (!rc)
        rc = kz_sq_migrate(s, err);
    if (!rc && !(s->r = kz_calloc((size_t)opts->readers, sizeof *s->r)))
        rc = kz_err_set(err, KZ_ENOMEM, "ledger: out of memory");
    for (int i = 0; !rc && i < opts->readers; i++) {
        rc = kz_sq_conn_open(s, &s->r[i], i + 1, err);
        if (!rc || s->r[i].db)
            s->n_r++;
    }
    if (rc) {
        kz_err_prefix(err, path);
        sq_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return KZ_OK;
}

/* ---- self-check ------------------------------------------------------------ */

/* Each query returns a row only when something is inconsistent: the id at
 * fault and the two figures that differ. */
static const struct {
    const char *what;
    const char *sql;
} CHECKS[] = {
    {"key reserved != its open reservations",
     "SELECT id, reserved, (SELECT COALESCE(SUM(amount), 0) FROM reservations r WHERE r.key_id = k.id) AS s"
     " FROM api_keys k WHERE reserved != s LIMIT 1"},
    {"tenant reserved != its open reservations",
     "SELECT id, reserved, (SELECT COALESCE(SUM(amount), 0) FROM reservations r WHERE r.tenant_id = t.id) AS s"
     " FROM tenants t WHERE reserved != s LIMIT 1"},
    {"key spend counters != its usage records",
     "SELECT id, (SELECT COALESCE(SUM(amount), 0) FROM key_spend p WHERE p.key_id = k.id) AS a,"
     " (SELECT COALESCE(SUM(cost), 0) FROM usage u WHERE u.key_id = k.id) AS b FROM api_keys k WHERE a != b LIMIT 1"},
    {"tenant spend counters != its usage records",
     "SELECT id, (SELECT COALESCE(SUM(amount), 0) FROM tenant_spend p WHERE p.tenant_id = t.id) AS a,"
     " (SELECT COALESCE(SUM(cost), 0) FROM usage u WHERE u.tenant_id = t.id) AS b FROM tenants t WHERE a != b LIMIT 1"},
    {"tenant balance != credits - usage",
     "SELECT id, balance, (SELECT COALESCE(SUM(amount), 0) FROM credits c WHERE c.tenant_id = t.id)"
     " - (SELECT COALESCE(SUM(cost), 0) FROM usage u WHERE u.tenant_id = t.id) AS b"
     " FROM tenants t WHERE balance != b LIMIT 1"},
};

static kz_status check_in(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    (void)ud;
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c, "PRAGMA integrity_check", &st, err);
    if (!rc)
        rc = kz_sq_row(c, st, &row, "integrity check", err);
    if (rc)
        return rc;
    const unsigned char *res = row ? sqlite3_column_text(st, 0) : NULL;
    if (!res || strcmp((const char *)res, "ok") != 0) {
        kz_err_set(err, KZ_EPROTO, "ledger integrity check: %s", res ? (const char *)res : "no answer");
        sqlite3_reset(st);
        return KZ_EPROTO;
    }
    sqlite3_reset(st);
    if ((rc = kz_sq_prep(c, "PRAGMA foreign_key_check", &st, err)) ||
        (rc = kz_sq_row(c, st, &row, "foreign key check", err)))
        return rc;
    sqlite3_reset(st);
    if (row)
        return kz_err_set(err, KZ_EPROTO, "ledger: a row refers to a missing tenant or key");
    for (size_t i = 0; i < sizeof CHECKS / sizeof CHECKS[0]; i++) {
        if ((rc = kz_sq_prep(c, CHECKS[i].sql, &st, err)) || (rc = kz_sq_row(c, st, &row, CHECKS[i].what, err)))
            return rc;
        if (row) {
            kz_err_set(err, KZ_EPROTO, "ledger: %s (id %lld: %lld vs %lld)", CHECKS[i].what,
                       (long long)sqlite3_column_int64(st, 0), (long long)sqlite3_column_int64(st, 1),
                       (long long)sqlite3_column_int64(st, 2));
            sqlite3_reset(st);
            return KZ_EPROTO;
        }
    }
    return KZ_OK;
}

kz_status kz_sq_check(struct kz_ledger *l, struct kz_err *err)
{
    return kz_sq_read((struct kz_sq *)l, check_in, NULL, err);
}
