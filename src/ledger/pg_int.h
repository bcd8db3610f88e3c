/* SPDX-License-Identifier: MIT
 * Inside the PostgreSQL backend: the connection pool, the transaction
 * helper every operation runs through, and parameter and result helpers
 * for libpq's text protocol. The operations are in pg_owners.c (tenants,
 * keys), pg_money.c (reservations, settlement), pg_usage.c and pg_schema.c.
 *
 * Several kyozon nodes share one database, so every decision that must hold
 * across nodes is taken inside one transaction that locks the rows it
 * decides on: a reservation locks its tenant row (then its key row: the same
 * order everywhere, so two nodes never deadlock on a reservation), reads
 * spend and reserved amounts, and adds its hold before it commits. Writes
 * run at READ COMMITTED, where the row locks make the read-decide-write
 * sequences serial per tenant; reads run at REPEATABLE READ (one snapshot). A transaction PostgreSQL aborts as a deadlock victim or
 * serialization failure is retried (a settle batch may lock tenants in any
 * order).
 *
 * Connections: a pool of opts.readers + 1 connections, each behind its own
 * mutex, opened on first use and reopened after PostgreSQL went away. While
 * the server is unreachable, a call fails at once with KZ_EIO "ledger
 * unavailable: ..." (at most one connection attempt per slot every 250 ms),
 * so a request is refused within milliseconds during an outage and the pool
 * is back as soon as the server is.
 *
 * Money is BIGINT: PostgreSQL refuses an overflowing sum ("bigint out of
 * range") instead of going inexact, which fails the operation.
 */
#ifndef KZ_LEDGER_PG_INT_H
#define KZ_LEDGER_PG_INT_H

#include <libpq-fe.h>
#include <pthread.h>

#include "ledger/ledger_int.h"

#define KZ_PG_MAX_PARAMS 16

struct kz_pg;

struct kz_pg_conn {
    PGconn *pc;            /* NULL until first used, and after it broke */
    pthread_mutex_t mu;
    int index;             /* trace: 0.. */
    int64_t retry_at_ms;   /* monotonic: no new connection attempt before this */
    struct kz_pg *owner;
};

struct kz_pg {
    struct kz_ledger base; /* first: the handle callers hold */
    char *url;             /* as given: only for libpq, never printed */
    char *shown;           /* the URL with any password masked, for messages */
    struct kz_pg_conn *c;
    size_t n_c;
    unsigned next;         /* round robin start (atomic) */
};

typedef kz_status (*kz_pg_fn)(struct kz_pg_conn *c, void *ud, struct kz_err *err);

/* Runs fn inside BEGIN ... COMMIT on a pooled connection; fn's failure (or a
 * failing COMMIT) rolls back. Deadlocks and serialization failures are
 * retried from BEGIN (fn must be safe to run again: it only touches the
 * database and its own outputs). */
kz_status kz_pg_tx(struct kz_pg *p, kz_pg_fn fn, void *ud, struct kz_err *err);

/* Runs fn in one read-only transaction that sees one snapshot (REPEATABLE
 * READ): figures read by several statements agree with each other (a
 * key's reserved amount and its spend, say, across a settle that moves
 * money from one to the other). */
kz_status kz_pg_read(struct kz_pg *p, kz_pg_fn fn, void *ud, struct kz_err *err);

/* Text parameters for one statement: $1.. in the order added. */
struct kz_pg_args {
    const char *v[KZ_PG_MAX_PARAMS];
    char buf[KZ_PG_MAX_PARAMS][24];
    int n;
};
void kz_pg_i64(struct kz_pg_args *a, int64_t v);
void kz_pg_id(struct kz_pg_args *a, int64_t id); /* NULL for 0 (no key) */
void kz_pg_str(struct kz_pg_args *a, const char *s);
void kz_pg_null(struct kz_pg_args *a);

/* Runs one statement. KZ_OK with *res (PQclear it) when it succeeded; res
 * may be NULL for statements whose rows nobody reads. Failures are mapped
 * to statuses with a message naming `what`: "ledger unavailable: ..." (the
 * connection is gone), "ledger busy: ..." (a lock or statement timeout),
 * "ledger full: ...", KZ_EINVAL for a constraint, "ledger: ..." else. */
kz_status kz_pg_exec(struct kz_pg_conn *c, const char *sql, const struct kz_pg_args *a, PGresult **res,
                     const char *what, struct kz_err *err);

/* Result fields (text protocol). */
int64_t kz_pg_col_i64(const PGresult *r, int row, int col);
int kz_pg_col_null(const PGresult *r, int row, int col);
void kz_pg_col_text(const PGresult *r, int row, int col, char *buf, size_t size);

/* Schema (pg_schema.c). */
kz_status kz_pg_migrate(struct kz_pg *p, struct kz_err *err);
kz_status kz_pg_check(struct kz_ledger *l, struct kz_err *err);

/* Operations (the ops table entries). */
kz_status kz_pg_tenant_create(struct kz_ledger *l, const struct kz_ledger_tenant_spec *s, int64_t now, int64_t *id,
                              struct kz_err *err);
kz_status kz_pg_tenant_get(struct kz_ledger *l, int64_t id, const char *name, int64_t now,
                           struct kz_ledger_tenant *out, struct kz_err *err);
kz_status kz_pg_tenant_list(struct kz_ledger *l, int64_t now, struct kz_ledger_tenant **out, size_t *n,
                            struct kz_err *err);
kz_status kz_pg_tenant_credit(struct kz_ledger *l, int64_t id, int64_t amount, int64_t *balance,
                              struct kz_err *err);
kz_status kz_pg_key_insert(struct kz_ledger *l, const struct kz_keys_spec *s, const uint8_t hash[KZ_SHA256_SIZE],
                           const char *prefix, int64_t now, int64_t *id, struct kz_err *err);
kz_status kz_pg_key_get(struct kz_ledger *l, int64_t id, const uint8_t *hash, int64_t now,
                        struct kz_keys_info *out, struct kz_err *err);
kz_status kz_pg_key_list(struct kz_ledger *l, int64_t tenant_id, int64_t now, struct kz_keys_info **out,
                         size_t *n, struct kz_err *err);
kz_status kz_pg_key_revoke(struct kz_ledger *l, int64_t id, int64_t now, struct kz_err *err);
kz_status kz_pg_reserve(struct kz_ledger *l, int64_t key_id, int64_t tenant_id, int64_t max_cost,
                        const char *request_id, int64_t now, int64_t *reservation, enum kz_ledger_deny *deny,
                        struct kz_err *err);
kz_status kz_pg_release(struct kz_ledger *l, int64_t reservation, struct kz_err *err);
kz_status kz_pg_sweep(struct kz_ledger *l, int64_t before_ms, int64_t *released, struct kz_err *err);
kz_status kz_pg_reservations(struct kz_ledger *l, int64_t *count, int64_t *amount, struct kz_err *err);
kz_status kz_pg_settle(struct kz_ledger *l, struct kz_ledger_settle_item *items, size_t n, struct kz_err *err);
kz_status kz_pg_usage(struct kz_ledger *l, int64_t tenant_id, const struct kz_ledger_query *q,
                      struct kz_ledger_usage_row **rows, size_t *n, struct kz_err *err);
kz_status kz_pg_usage_get(struct kz_ledger *l, int64_t tenant_id, const char *request_id,
                          struct kz_ledger_usage *out, struct kz_err *err);

/* Shared by the operation files, inside a transaction open on c. */
kz_status kz_pg_spent(struct kz_pg_conn *c, int is_key, int64_t owner, enum kz_ledger_period p, int64_t now,
                      int64_t *spent, struct kz_err *err);
kz_status kz_pg_tenant_in(struct kz_pg_conn *c, int64_t id, int64_t now, struct kz_ledger_tenant *out,
                          struct kz_err *err);
/* Removes an open reservation and takes its amount off the key's and the
 * tenant's reserved counters; *found 0 when there was none. */
kz_status kz_pg_drop_reservation(struct kz_pg_conn *c, int64_t id, int *found, struct kz_err *err);

/* The usage columns, in the order kz_pg_read_usage expects. */
#define KZ_PG_USAGE_COLS                                                                                   \
    "request_id, tenant_id, COALESCE(key_id, 0), model, provider, deployment, input_tokens, output_tokens, cost," \
    " status, latency_ms, ttft_ms, started_ms, finished_ms"
void kz_pg_read_usage(const PGresult *r, int row, struct kz_ledger_usage *u);

#endif
