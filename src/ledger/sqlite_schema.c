/* SPDX-License-Identifier: MIT
 * The SQLite schema as a list of migrations, and applying them.
 *
 * Migration N takes the database from version N-1 to N. Each runs in its own
 * write transaction together with the row recording it in schema_version,
 * so a crash mid-migration leaves the previous version intact. Append new
 * migrations; never edit one that has shipped. docs/LEDGER.md explains the
 * tables.
 *
 * Tables are STRICT: a money column holding anything but an integer is an
 * error, not a silently stored float.
 */
#include <inttypes.h>
#include <stdio.h>

#include "ledger/sqlite_int.h"

static const char *const MIGRATIONS[] = {
    /* 1: tenants, credits, keys, spend counters, reservations, usage. */
    "CREATE TABLE tenants ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  prepaid INTEGER NOT NULL CHECK (prepaid IN (0, 1)),"
    "  balance INTEGER NOT NULL DEFAULT 0,"
    "  reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),"
    "  budget INTEGER CHECK (budget >= 0),"
    "  period INTEGER NOT NULL CHECK (period IN (0, 1, 2)),"
    "  created_ms INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE credits ("
    "  id INTEGER PRIMARY KEY,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
    "  amount INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX credits_tenant ON credits(tenant_id);"
    "CREATE TABLE api_keys ("
    "  id INTEGER PRIMARY KEY,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
    "  hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
    "  prefix TEXT NOT NULL CHECK (length(prefix) <= 12),"
    "  models TEXT NOT NULL,"
    "  privacy INTEGER NOT NULL CHECK (privacy IN (0, 1, 2)),"
    "  admin INTEGER NOT NULL CHECK (admin IN (0, 1)),"
    "  budget INTEGER CHECK (budget >= 0),"
    "  period INTEGER NOT NULL CHECK (period IN (0, 1, 2)),"
    "  rpm INTEGER NOT NULL CHECK (rpm >= 0),"
    "  tpm INTEGER NOT NULL CHECK (tpm >= 0),"
    "  reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),"
    "  created_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER,"
    "  revoked_ms INTEGER"
    ") STRICT;"
    "CREATE INDEX api_keys_tenant ON api_keys(tenant_id);"
    "CREATE TABLE key_spend ("
    "  key_id INTEGER NOT NULL REFERENCES api_keys(id),"
    "  period_ms INTEGER NOT NULL,"
    "  amount INTEGER NOT NULL,"
    "  PRIMARY KEY (key_id, period_ms)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TABLE tenant_spend ("
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
    "  period_ms INTEGER NOT NULL,"
    "  amount INTEGER NOT NULL,"
    "  PRIMARY KEY (tenant_id, period_ms)"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TABLE reservations ("
    "  id INTEGER PRIMARY KEY,"
    "  request_id TEXT NOT NULL UNIQUE,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
    "  key_id INTEGER REFERENCES api_keys(id),"
    "  amount INTEGER NOT NULL CHECK (amount >= 0),"
    "  created_ms INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX reservations_created ON reservations(created_ms);"
    "CREATE TABLE usage ("
    "  id INTEGER PRIMARY KEY,"
    "  request_id TEXT NOT NULL UNIQUE,"
    "  tenant_id INTEGER NOT NULL REFERENCES tenants(id),"
    "  key_id INTEGER REFERENCES api_keys(id),"
    "  model TEXT NOT NULL,"
    "  provider TEXT NOT NULL,"
    "  deployment TEXT NOT NULL,"
    "  input_tokens INTEGER NOT NULL CHECK (input_tokens >= 0),"
    "  output_tokens INTEGER NOT NULL CHECK (output_tokens >= 0),"
    "  cost INTEGER NOT NULL CHECK (cost >= 0),"
    "  status INTEGER NOT NULL,"
    "  latency_ms INTEGER NOT NULL,"
    "  ttft_ms INTEGER NOT NULL,"
    "  started_ms INTEGER NOT NULL,"
    "  finished_ms INTEGER NOT NULL,"
    "  day INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX usage_tenant_finished ON usage(tenant_id, finished_ms);"
    "CREATE INDEX usage_key ON usage(key_id);",
    /* 2: requests and tokens per minute for a whole tenant. */
    "ALTER TABLE tenants ADD COLUMN rpm INTEGER NOT NULL DEFAULT 0 CHECK (rpm >= 0);"
    "ALTER TABLE tenants ADD COLUMN tpm INTEGER NOT NULL DEFAULT 0 CHECK (tpm >= 0);",
};

#define N_MIGRATIONS ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

int kz_ledger_schema_version(void) { return N_MIGRATIONS; }

struct step {
    int from;  /* out: the version found */
    int done;  /* out: nothing left to apply */
};

/* One transaction: read the version (another process may have migrated
 * since we last looked) and apply the next migration if there is one. */
static kz_status migrate_one(struct kz_sq_conn *c, void *ud, struct kz_err *err)
{
    struct step *s = ud;
    kz_status rc = kz_sq_exec(c,
                              "CREATE TABLE IF NOT EXISTS schema_version ("
                              " version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL) STRICT",
                              "creating schema_version", err);
    sqlite3_stmt *st;
    int row = 0;
    if (rc || (rc = kz_sq_prep(c, "SELECT COALESCE(MAX(version), 0) FROM schema_version", &st, err)) ||
        (rc = kz_sq_row(c, st, &row, "reading the schema version", err)))
        return rc;
    int64_t v = row ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (v > N_MIGRATIONS)
        return kz_err_set(err, KZ_EUNSUPPORTED,
                          "ledger: the database has schema version %" PRId64
                          ", newer than this kyozon knows (%d): upgrade kyozon to use it",
                          v, N_MIGRATIONS);
    s->from = (int)v;
    if (v == N_MIGRATIONS) {
        s->done = 1;
        return KZ_OK;
    }
    char what[64];
    snprintf(what, sizeof what, "applying schema migration %d", (int)v + 1);
    if ((rc = kz_sq_exec(c, MIGRATIONS[v], what, err)) ||
        (rc = kz_sq_prep(c, "INSERT INTO schema_version(version, applied_ms) VALUES (?1, ?2)", &st, err)))
        return rc;
    sqlite3_bind_int64(st, 1, v + 1);
    sqlite3_bind_int64(st, 2, kz_ledger_now(&c->owner->base));
    return kz_sq_done(c, st, what, err);
}

kz_status kz_sq_migrate(struct kz_sq *s, struct kz_err *err)
{
    for (;;) {
        struct step st = {0, 0};
        kz_status rc = kz_sq_write(s, 1, migrate_one, &st, err);
        if (rc || st.done)
            return rc;
    }
}
