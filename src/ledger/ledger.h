/* SPDX-License-Identifier: MIT
 * The tenancy store: tenants and their prepaid credit, budgets enforced by
 * reservations, and the usage ledger (one record per request). API keys are
 * in ledger/keys.h and the batching settle thread in ledger/writer.h; they
 * work on the same handle. docs/LEDGER.md describes the schema and what the
 * durability settings guarantee.
 *
 * Money is integer micro-dollars (int64_t) everywhere; times are Unix
 * milliseconds (UTC). Day and month periods are UTC calendar days and months.
 *
 * The flow of one metered request:
 *   kz_ledger_reserve(max cost)      before routing: admitted or refused
 *   ... the request runs ...
 *   kz_ledger_settle(actual cost)    or kz_ledger_writer_submit (group commit)
 * Each step is one atomic transaction, so concurrent reservations can never
 * make spent + reserved exceed a key budget, a tenant budget or a prepaid
 * tenant's balance. A reservation that is never settled (the process died)
 * is released by kz_ledger_sweep once older than the reservation TTL; open
 * runs a sweep.
 *
 * Backends: the store is selected by kz_ledger_open's path: a file (SQLite,
 * ledger/sqlite_*.c) or a postgres:// URL (PostgreSQL through libpq,
 * ledger/pg_*.c, for several nodes sharing keys, budgets and usage). Both
 * implement ledger/ledger_int.h with the same behaviour and the same
 * schema versions; nothing here exposes either's types.
 *
 * Threads: every function may be called from any thread on one shared
 * handle, except kz_ledger_close (no call may be running or follow). The
 * calls block on disk or network I/O (a settle waits for fsync, PostgreSQL
 * for its round trips). The server's request path uses only key lookups and,
 * with PostgreSQL, reservations (tenancy/tenancy.h); settles run on the
 * writer thread (ledger/writer.h).
 *
 * Errors: KZ_EINVAL for a bad argument (the message names it), KZ_ENOTFOUND
 * for an absent tenant, key, reservation or record, KZ_ELIMIT when a budget
 * or credit refuses a reservation (see enum kz_ledger_deny), KZ_EIO when the
 * store fails. Store failures are worded so the caller can tell them apart:
 * "ledger busy: ..." (another writer held the database past the busy
 * timeout), "ledger full: ..." (disk or database full), "ledger: ..." for
 * anything else. The server answers 503 for KZ_EIO and never serves a
 * metered request it could not reserve or settle.
 *
 * Ownership: the handle is the caller's (kz_ledger_close). Results are
 * written into caller-owned structs with fixed-size strings, except the
 * arrays returned by list and usage functions, which the caller frees with
 * kz_free.
 */
#ifndef KZ_LEDGER_H
#define KZ_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Largest money amount accepted in one argument (a billion dollars): sums of
 * such amounts stay far from int64 overflow, which is checked anyway. */
#define KZ_LEDGER_MONEY_MAX INT64_C(1000000000000000)

#define KZ_LEDGER_TENANT_MAX 65  /* tenant name bytes, NUL included */
#define KZ_LEDGER_ID_MAX 256     /* request id bytes, NUL included */
#define KZ_LEDGER_NAME_MAX 256   /* model, provider, deployment bytes, NUL included */

struct kz_ledger; /* opaque */

enum kz_ledger_period {
    KZ_PERIOD_TOTAL = 0, /* never resets */
    KZ_PERIOD_DAY = 1,   /* the current UTC day */
    KZ_PERIOD_MONTH = 2  /* the current UTC calendar month */
};

/* "total", "day", "month". */
const char *kz_ledger_period_name(enum kz_ledger_period p);
/* Start (Unix ms, UTC) of the period containing `ms`; 0 for KZ_PERIOD_TOTAL. */
int64_t kz_ledger_period_start(enum kz_ledger_period p, int64_t ms);

/* Parses one of the names; KZ_EINVAL naming the text otherwise. */
kz_status kz_ledger_period_parse(const char *s, enum kz_ledger_period *out, struct kz_err *err);

/* ---- opening --------------------------------------------------------------- */

/* Options; zero means the default in brackets. */
struct kz_ledger_opts {
    int busy_timeout_ms;        /* [5000] how long a write waits for another process's lock */
    int64_t reservation_ttl_ms; /* [900000] age after which kz_ledger_sweep releases a
                                 * reservation; longer than any request may run */
    int readers;                /* [4] read-only connections used by lookups and queries */
    /* [wall clock] the ledger's clock in Unix ms (tests move time with it). */
    int64_t (*clock_ms)(void *ud);
    void *clock_ud;
    /* [none] called with the SQL text of every statement as it runs (never
     * the bound values, so no secret reaches it), from the calling thread;
     * `conn` is 0 for the write connection, 1.. for readers. For tests and
     * debugging. */
    void (*trace)(void *ud, int conn, const char *sql);
    void *trace_ud;
};

/* Opens or creates the ledger at `path` (a file name or sqlite://PATH:
 * SQLite; a postgres:// or postgresql:// URL in libpq's form: PostgreSQL,
 * whose database must exist and let the user create tables), applies pending schema migrations (each in
 * one transaction) and sweeps expired reservations. A database written by a
 * newer kyozon (a higher schema version) is refused with KZ_EUNSUPPORTED.
 * opts may be NULL. */
kz_status kz_ledger_open(const char *path, const struct kz_ledger_opts *opts, struct kz_ledger **out,
                         struct kz_err *err);

/* 1 when `path` names a PostgreSQL database (a postgres:// URL). */
int kz_ledger_is_postgres(const char *path);

/* `path` as it may be shown (logs, messages): a PostgreSQL URL with any
 * password replaced by stars (buf: at least strlen(path) + 1 bytes). */
void kz_ledger_redact(const char *path, char *buf, size_t size);

/* Closes the handle; NULL is a no-op. Stop any writer (ledger/writer.h) first. */
void kz_ledger_close(struct kz_ledger *l);

/* A number that changes whenever a tenant, a key, a credit or a budget
 * changes, made by any process on this machine through this library: a
 * cache of keys and tenants is valid while it stays the same. SQLite: a
 * counter in the file PATH-kzepoch, mapped into memory (reading it costs no
 * system call). 0, always, when there is none (PostgreSQL, whose servers
 * may sit on other machines; or the file could not be made): then nothing
 * may be cached. */
uint64_t kz_ledger_epoch(const struct kz_ledger *l);

/* The schema version this build writes (and the newest it opens). */
int kz_ledger_schema_version(void);

/* Self-check: the store's own integrity check, and that the reserved
 * counters of keys and tenants equal the sum of their open reservations and
 * the spend counters the sum of their usage records. KZ_EPROTO with what
 * differs. */
kz_status kz_ledger_check(struct kz_ledger *l, struct kz_err *err);

/* ---- tenants ------------------------------------------------------------- */

struct kz_ledger_tenant_spec {
    const char *name;           /* 1..64 bytes of [A-Za-z0-9._@-]; unique */
    int prepaid;                /* 1: reservations need balance - reserved >= max cost */
    int has_budget;             /* 1: spend in the period is capped at budget */
    int64_t budget;             /* micro-dollars, 0..KZ_LEDGER_MONEY_MAX */
    enum kz_ledger_period period;
    int64_t rpm, tpm;           /* requests and tokens per minute over all its keys; 0: no limit */
};

struct kz_ledger_tenant {
    int64_t id;
    char name[KZ_LEDGER_TENANT_MAX];
    int prepaid;
    int64_t balance;            /* credits minus settled costs (negative: owed, if not prepaid) */
    int64_t reserved;           /* sum of open reservations */
    int has_budget;
    int64_t budget;
    enum kz_ledger_period period;
    int64_t spent;              /* settled costs in the current period */
    int64_t created_ms;
    int64_t rpm, tpm;           /* 0: no limit */
};

/* KZ_EINVAL when the name is taken or malformed. */
kz_status kz_ledger_tenant_create(struct kz_ledger *l, const struct kz_ledger_tenant_spec *spec, int64_t *id,
                                  struct kz_err *err);
/* One tenant, read in one snapshot (balance, reserved and spent agree). */
kz_status kz_ledger_tenant_get(struct kz_ledger *l, int64_t id, struct kz_ledger_tenant *out, struct kz_err *err);
kz_status kz_ledger_tenant_find(struct kz_ledger *l, const char *name, struct kz_ledger_tenant *out,
                                struct kz_err *err);
/* Every tenant ordered by id; *out is one kz_malloc'd array (kz_free), NULL when n is 0. */
kz_status kz_ledger_tenant_list(struct kz_ledger *l, struct kz_ledger_tenant **out, size_t *n, struct kz_err *err);
/* Adds `amount` (nonzero; negative for a correction) to the balance; the new
 * balance goes to *balance (may be NULL). Committed durably. */
kz_status kz_ledger_tenant_credit(struct kz_ledger *l, int64_t id, int64_t amount, int64_t *balance,
                                  struct kz_err *err);
/* The balance alone. */
kz_status kz_ledger_tenant_balance(struct kz_ledger *l, int64_t id, int64_t *balance, struct kz_err *err);

/* ---- reservations and settlement ------------------------------------------- */

/* Why a reservation was refused (with KZ_ELIMIT). */
enum kz_ledger_deny {
    KZ_DENY_NONE = 0,
    KZ_DENY_KEY_BUDGET,    /* "budget exhausted" (the key's) */
    KZ_DENY_TENANT_BUDGET, /* "budget exhausted" (the tenant's) */
    KZ_DENY_CREDIT         /* "insufficient credit" */
};

/* Holds `max_cost` against the key's budget (key_id 0: no key), the tenant's
 * budget and, for a prepaid tenant, its balance, in one transaction. On
 * success *reservation is the id to settle or release. KZ_ELIMIT with *deny
 * (may be NULL) saying which limit refused; KZ_ENOTFOUND for an unknown,
 * revoked or expired key, or a key of another tenant; KZ_EINVAL when
 * request_id (1..255 bytes) is already settled or reserved: a retry, which
 * the caller answers from kz_ledger_usage_get. */
kz_status kz_ledger_reserve(struct kz_ledger *l, int64_t key_id, int64_t tenant_id, int64_t max_cost,
                            const char *request_id, int64_t *reservation, enum kz_ledger_deny *deny,
                            struct kz_err *err);

/* Gives a reservation back without a usage record (the request was refused
 * before it cost anything). KZ_ENOTFOUND when it is not open (settled,
 * released or swept). */
kz_status kz_ledger_release(struct kz_ledger *l, int64_t reservation, struct kz_err *err);

/* Releases reservations older than the TTL; how many to *released (may be NULL). */
kz_status kz_ledger_sweep(struct kz_ledger *l, int64_t *released, struct kz_err *err);

/* Open reservations: how many and their sum (either may be NULL). */
kz_status kz_ledger_reservations(struct kz_ledger *l, int64_t *count, int64_t *amount, struct kz_err *err);

/* One request as the ledger keeps it. Prompts and answers are never stored. */
struct kz_ledger_usage {
    char request_id[KZ_LEDGER_ID_MAX]; /* idempotency key, unique in the ledger */
    int64_t tenant_id;
    int64_t key_id;                    /* 0: no key */
    char model[KZ_LEDGER_NAME_MAX];    /* the public model name */
    char provider[KZ_LEDGER_NAME_MAX];
    char deployment[KZ_LEDGER_NAME_MAX];
    int64_t input_tokens, output_tokens;
    int64_t cost;                      /* micro-dollars, >= 0 */
    int status;                        /* HTTP status the client got */
    int64_t latency_ms;                /* >= 0 */
    int64_t ttft_ms;                   /* time to first token; -1 when none */
    int64_t started_ms, finished_ms;   /* finished_ms > 0 decides the day and the budget period */
};

/* Records `u` and turns the reservation (0: none) into spend, in one durable
 * transaction: the reservation goes, the cost is added to the key's and the
 * tenant's period spend and taken from the tenant's balance. A reservation
 * already swept is not an error: the request happened, so it is charged.
 *
 * Idempotent: when u->request_id is already in the ledger nothing is added,
 * the reservation (if still open) is released, *duplicate is 1 and *stored
 * the record kept the first time. Otherwise *duplicate is 0 and *stored a
 * copy of u. stored and duplicate may be NULL. */
kz_status kz_ledger_settle(struct kz_ledger *l, int64_t reservation, const struct kz_ledger_usage *u,
                           struct kz_ledger_usage *stored, int *duplicate, struct kz_err *err);

/* Checks a record before it is queued or stored (sizes, NUL termination,
 * signs); KZ_EINVAL naming the field. */
kz_status kz_ledger_usage_validate(const struct kz_ledger_usage *u, struct kz_err *err);

/* ---- usage queries ------------------------------------------------------------- */

enum kz_ledger_group { KZ_GROUP_TOTAL, KZ_GROUP_MODEL, KZ_GROUP_DAY, KZ_GROUP_KEY };

struct kz_ledger_query {
    enum kz_ledger_group by;
    int64_t since_ms;  /* records finished at or after; 0: from the start */
    int64_t until_ms;  /* records finished before; 0: no end */
};

struct kz_ledger_usage_row {
    char group[KZ_LEDGER_NAME_MAX]; /* model name, "YYYY-MM-DD" (UTC), key prefix
                                     * ("" for records without a key); "" for totals */
    int64_t key_id;                 /* KZ_GROUP_KEY: the key (0: none) */
    int64_t requests, input_tokens, output_tokens, cost;
};

/* Totals of one tenant's records, grouped (ordered by model, day or key id).
 * tenant_id must be > 0: no call without a tenant filter exists here, so a
 * handler cannot forget it. KZ_GROUP_TOTAL gives exactly one row. *rows is one
 * kz_malloc'd array (kz_free), NULL when n is 0. */
kz_status kz_ledger_usage(struct kz_ledger *l, int64_t tenant_id, const struct kz_ledger_query *q,
                          struct kz_ledger_usage_row **rows, size_t *n, struct kz_err *err);
/* The same over every tenant: for admin callers only. */
kz_status kz_ledger_usage_all_tenants(struct kz_ledger *l, const struct kz_ledger_query *q,
                                      struct kz_ledger_usage_row **rows, size_t *n, struct kz_err *err);
/* One tenant's stored record for a request id; KZ_ENOTFOUND when absent
 * (or another tenant's). */
kz_status kz_ledger_usage_get(struct kz_ledger *l, int64_t tenant_id, const char *request_id,
                              struct kz_ledger_usage *out, struct kz_err *err);

#endif
