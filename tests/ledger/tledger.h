/* SPDX-License-Identifier: MIT
 * Helpers for the ledger tests: fresh database paths, a movable clock,
 * tenants, keys and usage records in one call. Header-only (static inline)
 * so that every test program stays one file.
 *
 * Backends: each ledger test program runs twice (CMakeLists.txt), on SQLite
 * and, with KZ_TEST_LEDGER=pg in its environment, on PostgreSQL (a private
 * server, tpg.h): tl_fresh then gives a fresh database's URL, and tl_int
 * reads either kind.
 */
#ifndef KZ_TEST_TLEDGER_H
#define KZ_TEST_TLEDGER_H

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/alloc.h"
#include "ledger/keys.h"
#include "ledger/ledger.h"
#include "t.h"
#include "tpg.h"

/* 2024-03-31 12:00:00 UTC: a month end, so +1 day crosses into April. */
#define TL_T0 INT64_C(1711886400000)
#define TL_DAY INT64_C(86400000)

/* A clock tests move by hand; read from any thread. */
struct tl_clock {
    int64_t now;
};

static inline int64_t tl_clock_read(void *ud)
{
    return __atomic_load_n(&((struct tl_clock *)ud)->now, __ATOMIC_SEQ_CST);
}

static inline void tl_clock_set(struct tl_clock *c, int64_t ms) { __atomic_store_n(&c->now, ms, __ATOMIC_SEQ_CST); }

static inline double tl_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A database path in the test's directory, with no database, WAL or shm
 * file left from an earlier run. Static buffer: copy it to keep it. */
static inline int tl_pg(void)
{
    const char *b = getenv("KZ_TEST_LEDGER");
    return b && strcmp(b, "pg") == 0;
}

static inline const char *tl_fresh(const char *name)
{
    if (tl_pg()) {
        const char *url = tpg_db(name);
        return url ? url : "postgres://kz@127.0.0.1:1/unavailable";
    }
    static char path[512];
    char side[560];
    snprintf(path, sizeof path, "%s/%s.db", t_tmpdir(), name);
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    return path;
}

/* The first column of a query's first row on the ledger at `path`, as an
 * integer; -1 when there is none or the query fails. */
static inline int64_t tl_int(const char *path, const char *sql)
{
    if (kz_ledger_is_postgres(path))
        return tpg_int(path, sql);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Another connection holding a lock every reservation needs: SQLite's
 * whole-database write lock, or in PostgreSQL every tenant row (plain reads
 * go on either way). */
struct tl_holder {
    sqlite3 *sq;
    PGconn *pg;
};

static inline int tl_hold(struct tl_holder *h, const char *path)
{
    memset(h, 0, sizeof *h);
    if (kz_ledger_is_postgres(path)) {
        h->pg = PQconnectdb(path);
        PGresult *r = PQexec(h->pg, "BEGIN; SELECT id FROM tenants FOR UPDATE");
        int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        return ok ? 0 : -1;
    }
    if (sqlite3_open_v2(path, &h->sq, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        return -1;
    return sqlite3_exec(h->sq, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static inline void tl_unhold(struct tl_holder *h)
{
    if (h->pg) {
        PQclear(PQexec(h->pg, "COMMIT"));
        PQfinish(h->pg);
    }
    if (h->sq) {
        sqlite3_exec(h->sq, "COMMIT", NULL, NULL, NULL);
        sqlite3_close(h->sq);
    }
    memset(h, 0, sizeof *h);
}

static inline struct kz_ledger *tl_open(const char *path, const struct kz_ledger_opts *o)
{
    struct kz_ledger *l = NULL;
    struct kz_err err = {{0}};
    kz_status rc = kz_ledger_open(path, o, &l, &err);
    T_OK(rc == KZ_OK, "open %s: %s", path, err.msg);
    return rc ? NULL : l;
}

static inline int64_t tl_tenant(struct kz_ledger *l, const char *name, int prepaid, int64_t budget,
                                enum kz_ledger_period period)
{
    struct kz_ledger_tenant_spec s = {
        .name = name, .prepaid = prepaid, .has_budget = budget >= 0, .budget = budget >= 0 ? budget : 0, .period = period};
    struct kz_err err = {{0}};
    int64_t id = 0;
    kz_status rc = kz_ledger_tenant_create(l, &s, &id, &err);
    T_OK(rc == KZ_OK && id > 0, "tenant %s: %s", name, err.msg);
    return id;
}

/* A key with an optional budget (< 0: none); the secret into `secret` when
 * given. */
static inline int64_t tl_key(struct kz_ledger *l, int64_t tenant, int64_t budget, enum kz_ledger_period period,
                             char *secret)
{
    struct kz_keys_spec s;
    memset(&s, 0, sizeof s);
    s.tenant_id = tenant;
    s.privacy = KZ_PRIVACY_EXTERNAL;
    s.has_budget = budget >= 0;
    s.budget = budget >= 0 ? budget : 0;
    s.period = period;
    char buf[KZ_KEYS_SECRET_SIZE];
    struct kz_err err = {{0}};
    int64_t id = 0;
    kz_status rc = kz_keys_create(l, &s, secret ? secret : buf, &id, &err);
    T_OK(rc == KZ_OK && id > 0, "key for tenant %lld: %s", (long long)tenant, err.msg);
    return id;
}

static inline void tl_usage(struct kz_ledger_usage *u, const char *request_id, int64_t tenant, int64_t key,
                            const char *model, int64_t cost, int64_t finished_ms)
{
    memset(u, 0, sizeof *u);
    snprintf(u->request_id, sizeof u->request_id, "%s", request_id);
    u->tenant_id = tenant;
    u->key_id = key;
    snprintf(u->model, sizeof u->model, "%s", model);
    snprintf(u->provider, sizeof u->provider, "prov");
    snprintf(u->deployment, sizeof u->deployment, "dep-1");
    u->input_tokens = 10;
    u->output_tokens = 20;
    u->cost = cost;
    u->status = 200;
    u->latency_ms = 5;
    u->ttft_ms = 2;
    u->started_ms = finished_ms - 5;
    u->finished_ms = finished_ms;
}

/* Reserve, expecting success; the reservation id. */
static inline int64_t tl_reserve(struct kz_ledger *l, int64_t key, int64_t tenant, int64_t max_cost,
                                 const char *request_id)
{
    int64_t r = 0;
    struct kz_err err = {{0}};
    kz_status rc = kz_ledger_reserve(l, key, tenant, max_cost, request_id, &r, NULL, &err);
    T_OK(rc == KZ_OK && r > 0, "reserve %s: %s", request_id, err.msg);
    return r;
}

static inline int64_t tl_open_reservations(struct kz_ledger *l)
{
    int64_t n = -1;
    struct kz_err err = {{0}};
    T_OK(kz_ledger_reservations(l, &n, NULL, &err) == KZ_OK, "reservations: %s", err.msg);
    return n;
}

static inline void tl_check(struct kz_ledger *l)
{
    struct kz_err err = {{0}};
    T_OK(kz_ledger_check(l, &err) == KZ_OK, "ledger check: %s", err.msg);
}

#endif
