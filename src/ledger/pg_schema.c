/* SPDX-License-Identifier: MIT
 * The PostgreSQL schema as a list of migrations, applying them, and the
 * self-check.
 *
 * The versions match the SQLite backend's one for one (the same tables and
 * columns; sqlite_schema.c), so "schema version N" means the same on both.
 * Each migration runs in its own transaction with the row recording it,
 * under an advisory lock: nodes starting together migrate one at a time,
 * and each sees what the previous one did. Append new migrations; never
 * edit one that has shipped.
 */
#include <inttypes.h>
#include <stdio.h>

#include "ledger/pg_int.h"

#define MIGRATION_LOCK "727165001" /* pg_advisory_xact_lock key: kyozon schema */

static const char *const MIGRATIONS[] = {
    /* 1: tenants, credits, keys, spend counters, reservations, usage. */
    "CREATE TABLE tenants ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  prepaid SMALLINT NOT NULL CHECK (prepaid IN (0, 1)),"
    "  balance BIGINT NOT NULL DEFAULT 0,"
    "  reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),"
    "  budget BIGINT CHECK (budget >= 0),"
    "  period SMALLINT NOT NULL CHECK (period IN (0, 1, 2)),"
    "  created_ms BIGINT NOT NULL);"
    "CREATE TABLE credits ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  tenant_id BIGINT NOT NULL REFERENCES tenants(id),"
    "  amount BIGINT NOT NULL,"
    "  created_ms BIGINT NOT NULL);"
    "CREATE INDEX credits_tenant ON credits(tenant_id);"
    "CREATE TABLE api_keys ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  tenant_id BIGINT NOT NULL REFERENCES tenants(id),"
    "  hash BYTEA NOT NULL UNIQUE CHECK (length(hash) = 32),"
    "  prefix TEXT NOT NULL CHECK (length(prefix) <= 12),"
    "  models TEXT NOT NULL,"
    "  privacy SMALLINT NOT NULL CHECK (privacy IN (0, 1, 2)),"
    "  admin SMALLINT NOT NULL CHECK (admin IN (0, 1)),"
    "  budget BIGINT CHECK (budget >= 0),"
    "  period SMALLINT NOT NULL CHECK (period IN (0, 1, 2)),"
    "  rpm BIGINT NOT NULL CHECK (rpm >= 0),"
    "  tpm BIGINT NOT NULL CHECK (tpm >= 0),"
    "  reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),"
    "  created_ms BIGINT NOT NULL,"
    "  expires_ms BIGINT,"
    "  revoked_ms BIGINT);"
    "CREATE INDEX api_keys_tenant ON api_keys(tenant_id);"
    "CREATE TABLE key_spend ("
    "  key_id BIGINT NOT NULL REFERENCES api_keys(id),"
    "  period_ms BIGINT NOT NULL,"
    "  amount BIGINT NOT NULL,"
    "  PRIMARY KEY (key_id, period_ms));"
    "CREATE TABLE tenant_spend ("
    "  tenant_id BIGINT NOT NULL REFERENCES tenants(id),"
    "  period_ms BIGINT NOT NULL,"
    "  amount BIGINT NOT NULL,"
    "  PRIMARY KEY (tenant_id, period_ms));"
    "CREATE TABLE reservations ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  request_id TEXT NOT NULL UNIQUE,"
    "  tenant_id BIGINT NOT NULL REFERENCES tenants(id),"
    "  key_id BIGINT REFERENCES api_keys(id),"
    "  amount BIGINT NOT NULL CHECK (amount >= 0),"
    "  created_ms BIGINT NOT NULL);"
    "CREATE INDEX reservations_created ON reservations(created_ms);"
    "CREATE TABLE usage ("
    "  id BIGSERIAL PRIMARY KEY,"
    "  request_id TEXT NOT NULL UNIQUE,"
    "  tenant_id BIGINT NOT NULL REFERENCES tenants(id),"
    "  key_id BIGINT REFERENCES api_keys(id),"
    "  model TEXT NOT NULL,"
    "  provider TEXT NOT NULL,"
    "  deployment TEXT NOT NULL,"
    "  input_tokens BIGINT NOT NULL CHECK (input_tokens >= 0),"
    "  output_tokens BIGINT NOT NULL CHECK (output_tokens >= 0),"
    "  cost BIGINT NOT NULL CHECK (cost >= 0),"
    "  status INTEGER NOT NULL,"
    "  latency_ms BIGINT NOT NULL,"
    "  ttft_ms BIGINT NOT NULL,"
    "  started_ms BIGINT NOT NULL,"
    "  finished_ms BIGINT NOT NULL,"
    "  day BIGINT NOT NULL);"
    "CREATE INDEX usage_tenant_finished ON usage(tenant_id, finished_ms);"
    "CREATE INDEX usage_key ON usage(key_id);",
    /* 2: requests and tokens per minute for a whole tenant. */
    "ALTER TABLE tenants ADD COLUMN rpm BIGINT NOT NULL DEFAULT 0 CHECK (rpm >= 0);"
    "ALTER TABLE tenants ADD COLUMN tpm BIGINT NOT NULL DEFAULT 0 CHECK (tpm >= 0);",
};

#define N_MIGRATIONS ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

struct step {
    int done;
};

static kz_status migrate_one(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    struct step *s = ud;
    PGresult *r;
    kz_status rc =
        kz_pg_exec(c, "SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ")", NULL, NULL, "locking the schema", err);
    if (!rc)
        rc = kz_pg_exec(c,
                        "CREATE TABLE IF NOT EXISTS schema_version ("
                        " version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)",
                        NULL, NULL, "creating schema_version", err);
    if (rc || (rc = kz_pg_exec(c, "SELECT COALESCE(MAX(version), 0) FROM schema_version", NULL, &r,
                               "reading the schema version", err)))
        return rc;
    int64_t v = kz_pg_col_i64(r, 0, 0);
    PQclear(r);
    if (v > N_MIGRATIONS)
        return kz_err_set(err, KZ_EUNSUPPORTED,
                          "ledger: the database has schema version %" PRId64
                          ", newer than this kyozon knows (%d): upgrade kyozon to use it",
                          v, N_MIGRATIONS);
    if (v == N_MIGRATIONS) {
        s->done = 1;
        return KZ_OK;
    }
    char what[64];
    snprintf(what, sizeof what, "applying schema migration %d", (int)v + 1);
    if ((rc = kz_pg_exec(c, MIGRATIONS[v], NULL, NULL, what, err)))
        return rc;
    struct kz_pg_args a = {.n = 0};
    kz_pg_i64(&a, v + 1);
    kz_pg_i64(&a, kz_ledger_now(&c->owner->base));
    return kz_pg_exec(c, "INSERT INTO schema_version(version, applied_ms) VALUES ($1, $2)", &a, NULL, what, err);
}

kz_status kz_pg_migrate(struct kz_pg *p, struct kz_err *err)
{
    if (N_MIGRATIONS != kz_ledger_schema_version())
        return kz_err_set(err, KZ_EPROTO, "ledger: the PostgreSQL schema has %d migrations, SQLite's %d",
                          N_MIGRATIONS, kz_ledger_schema_version());
    for (;;) {
        struct step st = {0};
        kz_status rc = kz_pg_tx(p, migrate_one, &st, err);
        if (rc || st.done)
            return rc;
    }
}

/* ---- self-check ------------------------------------------------------------ */

/* Each query returns a row only when something is inconsistent: the id at
 * fault and the two figures that differ. (Foreign keys and CHECKs are
 * enforced by PostgreSQL on every write, so they need no pass here.) */
static const struct {
    const char *what;
    const char *sql;
} CHECKS[] = {
    {"key reserved != its open reservations",
     "SELECT * FROM (SELECT id, reserved AS a, (SELECT COALESCE(SUM(amount), 0) FROM reservations r"
     " WHERE r.key_id = k.id) AS b FROM api_keys k) x WHERE a <> b LIMIT 1"},
    {"tenant reserved != its open reservations",
     "SELECT * FROM (SELECT id, reserved AS a, (SELECT COALESCE(SUM(amount), 0) FROM reservations r"
     " WHERE r.tenant_id = t.id) AS b FROM tenants t) x WHERE a <> b LIMIT 1"},
    {"key spend counters != its usage records",
     "SELECT * FROM (SELECT id, (SELECT COALESCE(SUM(amount), 0) FROM key_spend p WHERE p.key_id = k.id) AS a,"
     " (SELECT COALESCE(SUM(cost), 0) FROM usage u WHERE u.key_id = k.id) AS b FROM api_keys k) x"
     " WHERE a <> b LIMIT 1"},
    {"tenant spend counters != its usage records",
     "SELECT * FROM (SELECT id, (SELECT COALESCE(SUM(amount), 0) FROM tenant_spend p WHERE p.tenant_id = t.id) AS a,"
     " (SELECT COALESCE(SUM(cost), 0) FROM usage u WHERE u.tenant_id = t.id) AS b FROM tenants t) x"
     " WHERE a <> b LIMIT 1"},
    {"tenant balance != credits - usage",
     "SELECT * FROM (SELECT id, balance AS a, (SELECT COALESCE(SUM(amount), 0) FROM credits c"
     " WHERE c.tenant_id = t.id) - (SELECT COALESCE(SUM(cost), 0) FROM usage u WHERE u.tenant_id = t.id) AS b"
     " FROM tenants t) x WHERE a <> b LIMIT 1"},
};

static kz_status check_in(struct kz_pg_conn *c, void *ud, struct kz_err *err)
{
    (void)ud;
    kz_status rc = KZ_OK;
    for (size_t i = 0; !rc && i < sizeof CHECKS / sizeof CHECKS[0]; i++) {
        PGresult *r;
        if ((rc = kz_pg_exec(c, CHECKS[i].sql, NULL, &r, CHECKS[i].what, err)))
            return rc;
        if (PQntuples(r) > 0)
            rc = kz_err_set(err, KZ_EPROTO, "ledger: %s (id %lld: %lld vs %lld)", CHECKS[i].what,
                            (long long)kz_pg_col_i64(r, 0, 0), (long long)kz_pg_col_i64(r, 0, 1),
                            (long long)kz_pg_col_i64(r, 0, 2));
        PQclear(r);
    }
    return rc;
}

kz_status kz_pg_check(struct kz_ledger *l, struct kz_err *err)
{
    return kz_pg_read((struct kz_pg *)l, check_in, NULL, err); /* one snapshot for all */
}
