/* SPDX-License-Identifier: MIT
 * Inside the SQLite backend: connections, the transaction helpers every
 * operation runs through, and the per-area operation files
 * (sqlite_tenants.c, sqlite_keys.c, sqlite_budget.c, sqlite_usage.c).
 *
 * Connections: one write connection behind a mutex, and a small pool of
 * read-only connections, each behind its own mutex. SQLite lets one writer
 * at a time in any case; serializing our own writers in-process means they
 * queue on a mutex instead of meeting SQLITE_BUSY and sleeping in SQLite's
 * busy handler (which polls in steps of up to 100 ms), so busy_timeout only
 * ever waits for another process. Readers see a WAL snapshot and never wait
 * for the writer, so key lookups do not stall behind a settle's fsync.
 *
 * Every change goes through kz_sq_write, which opens the transaction with
 * BEGIN IMMEDIATE: the write lock is taken up front, so a transaction that
 * started never fails later with SQLITE_BUSY because another connection
 * wrote first (RELIABILITY FT-10; tests/ledger asserts it from the trace).
 */
#ifndef KZ_LEDGER_SQLITE_INT_H
#define KZ_LEDGER_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "ledger/ledger_int.h"

#define KZ_SQ_CACHE 64 /* prepared statements kept per connection */

struct kz_sq;

struct kz_sq_conn {
    sqlite3 *db;
    pthread_mutex_t mu;
    int index;             /* 0: writer; 1..: readers (trace) */
    int sync;              /* PRAGMA synchronous now in force: 2 FULL, 1 NORMAL */
    struct kz_sq *owner;
    struct {
        const char *sql;   /* static text: compared by address */
        sqlite3_stmt *st;
    } cache[KZ_SQ_CACHE];
    size_t n_cache;
};

struct kz_sq {
    struct kz_ledger base; /* first: the handle callers hold */
    char *path;
    struct kz_sq_conn w;
    struct kz_sq_conn *r;
    size_t n_r;
    unsigned next_reader; /* round robin start (atomic) */
};

typedef kz_status (*kz_sq_fn)(struct kz_sq_conn *c, void *ud, struct kz_err *err);

/* Runs fn inside BEGIN IMMEDIATE ... COMMIT on the write connection; fn's
 * failure (or a failing COMMIT) rolls back. `durable` commits with
 * synchronous=FULL (the commit is on disk when this returns); 0 commits with
 * NORMAL (safe from corruption; a power loss may forget it). */
kz_status kz_sq_write(struct kz_sq *s, int durable, kz_sq_fn fn, void *ud, struct kz_err *err);

/* Runs fn in one read transaction (one snapshot) on a read-only connection. */
kz_status kz_sq_read(struct kz_sq *s, kz_sq_fn fn, void *ud, struct kz_err *err);

/* A cached prepared statement for static `sql`, reset and unbound. */
kz_status kz_sq_prep(struct kz_sq_conn *c, const char *sql, sqlite3_stmt **st, struct kz_err *err);

/* Steps a statement that returns no rows, then resets it. */
kz_status kz_sq_done(struct kz_sq_conn *c, sqlite3_stmt *st, const char *what, struct kz_err *err);

/* Steps once: KZ_OK with *row 1 on a row, 0 at the end (then resets). */
kz_status kz_sq_row(struct kz_sq_conn *c, sqlite3_stmt *st, int *row, const char *what, struct kz_err *err);

/* Maps an SQLite result code to a status with a message naming `what`:
 * "ledger busy: ...", "ledger full: ...", or "ledger: ...". */
kz_status kz_sq_fail(struct kz_sq_conn *c, int rc, const char *what, struct kz_err *err);

/* Runs SQL text with no parameters (PRAGMAs, migrations). */
kz_status kz_sq_exec(struct kz_sq_conn *c, const char *sql, const char *what, struct kz_err *err);

/* Opens one connection (writer when index is 0), with pragmas and tracing. */
kz_status kz_sq_conn_open(struct kz_sq *s, struct kz_sq_conn *c, int index, struct kz_err *err);
void kz_sq_conn_close(struct kz_sq_conn *c);

/* Binds an id, or NULL for 0 (no key). */
int kz_sq_bind_id(sqlite3_stmt *st, int col, int64_t id);
/* Copies a text column into buf (truncating at size - 1). */
void kz_sq_col_text(sqlite3_stmt *st, int col, char *buf, size_t size);

/* Schema. */
kz_status kz_sq_migrate(struct kz_sq *s, struct kz_err *err);

/* Operations (the ops table entries). */
kz_status kz_sq_tenant_create(struct kz_ledger *l, const struct kz_ledger_tenant_spec *s, int64_t now, int64_t *id,
                              struct kz_err *err);
kz_status kz_sq_tenant_get(struct kz_ledger *l, int64_t id, const char *name, int64_t now,
                           struct kz_ledger_tenant *out, struct kz_err *err);
kz_status kz_sq_tenant_list(struct kz_ledger *l, int64_t now, struct kz_ledger_tenant **out, size_t *n,
                            struct kz_err *err);
kz_status kz_sq_tenant_credit(struct kz_ledger *l, int64_t id, int64_t amount, int64_t *balance,
                              struct kz_err *err);
kz_status kz_sq_key_insert(struct kz_ledger *l, const struct kz_keys_spec *s, const uint8_t hash[KZ_SHA256_SIZE],
                           const char *prefix, int64_t now, int64_t *id, struct kz_err *err);
kz_status kz_sq_key_get(struct kz_ledger *l, int64_t id, const uint8_t *hash, int64_t now,
                        struct kz_keys_info *out, struct kz_err *err);
kz_status kz_sq_key_list(struct kz_ledger *l, int64_t tenant_id, int64_t now, struct kz_keys_info **out,
                         size_t *n, struct kz_err *err);
kz_status kz_sq_key_revoke(struct kz_ledger *l, int64_t id, int64_t now, struct kz_err *err);
kz_status kz_sq_reserve(struct kz_ledger *l, int64_t key_id, int64_t tenant_id, int64_t max_cost,
                        const char *request_id, int64_t now, int64_t *reservation, enum kz_ledger_deny *deny,
                        struct kz_err *err);
kz_status kz_sq_release(struct kz_ledger *l, int64_t reservation, struct kz_err *err);
kz_status kz_sq_sweep(struct kz_ledger *l, int64_t before_ms, int64_t *released, struct kz_err *err);
kz_status kz_sq_reservations(struct kz_ledger *l, int64_t *count, int64_t *amount, struct kz_err *err);
kz_status kz_sq_settle(struct kz_ledger *l, struct kz_ledger_settle_item *items, size_t n, struct kz_err *err);
kz_status kz_sq_usage(struct kz_ledger *l, int64_t tenant_id, const struct kz_ledger_query *q,
                      struct kz_ledger_usage_row **rows, size_t *n, struct kz_err *err);
kz_status kz_sq_usage_get(struct kz_ledger *l, int64_t tenant_id, const char *request_id,
                          struct kz_ledger_usage *out, struct kz_err *err);
kz_status kz_sq_check(struct kz_ledger *l, struct kz_err *err);

/* Removes an open reservation and takes its amount off the key's and the
 * tenant's reserved counters; *found 0 when there was none. */
kz_status kz_sq_drop_reservation(struct kz_sq_conn *c, int64_t id, int *found, struct kz_err *err);

/* The usage columns, in the order kz_sq_read_usage expects. */
#define KZ_SQ_USAGE_COLS                                                                                   \
    "request_id, tenant_id, key_id, model, provider, deployment, input_tokens, output_tokens, cost, status," \
    " latency_ms, ttft_ms, started_ms, finished_ms"
void kz_sq_read_usage(sqlite3_stmt *st, struct kz_ledger_usage *u);

/* Shared by tenants and keys: spend of an owner in the period holding `now`. */
/* A tenant by id inside a transaction already open on c. */
kz_status kz_sq_tenant_in(struct kz_sq_conn *c, int64_t id, int64_t now, struct kz_ledger_tenant *out,
                          struct kz_err *err);
kz_status kz_sq_spent(struct kz_sq_conn *c, int is_key, int64_t owner, enum kz_ledger_period p, int64_t now,
                      int64_t *spent, struct kz_err *err);

#endif
