/* SPDX-License-Identifier: MIT
 * Inside the ledger: the backend interface and the rules every backend
 * shares.
 *
 * The public functions (ledger.h, keys.h) check their arguments and then
 * call the backend through struct kz_ledger_ops, so a backend only moves
 * data: it runs each operation as one transaction and applies the shared
 * decision functions below (kz_ledger_admit for reservations) to what it
 * read inside that transaction. SQLite is ledger/sqlite_*.c; a PostgreSQL
 * backend fills the same table.
 *
 * Conventions for ops: arguments are already valid; `now` is the ledger's
 * clock; tenant_id 0 in tenant_get, key_list and usage means "by name",
 * "every tenant" and "every tenant" respectively (the public API only lets
 * admin entry points pass it).
 */
#ifndef KZ_LEDGER_INT_H
#define KZ_LEDGER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/sha256.h"
#include "core/status.h"
#include "ledger/keys.h"
#include "ledger/ledger.h"

/* One record of a settle batch: inputs, then what happened to it. */
struct kz_ledger_settle_item {
    int64_t reservation;
    const struct kz_ledger_usage *u;
    struct kz_ledger_usage stored; /* out */
    int duplicate;                 /* out */
    kz_status rc;                  /* out */
    struct kz_err err;             /* out */
};

struct kz_ledger_ops {
    void (*close)(struct kz_ledger *l);
    kz_status (*check)(struct kz_ledger *l, struct kz_err *err);

    kz_status (*tenant_create)(struct kz_ledger *l, const struct kz_ledger_tenant_spec *s, int64_t now, int64_t *id,
                               struct kz_err *err);
    kz_status (*tenant_get)(struct kz_ledger *l, int64_t id, const char *name, int64_t now,
                            struct kz_ledger_tenant *out, struct kz_err *err);
    kz_status (*tenant_list)(struct kz_ledger *l, int64_t now, struct kz_ledger_tenant **out, size_t *n,
                             struct kz_err *err);
    kz_status (*tenant_credit)(struct kz_ledger *l, int64_t id, int64_t amount, int64_t *balance,
                               struct kz_err *err);

    kz_status (*key_insert)(struct kz_ledger *l, const struct kz_keys_spec *s, const uint8_t hash[KZ_SHA256_SIZE],
                            const char *prefix, int64_t now, int64_t *id, struct kz_err *err);
    /* By id, or by hash when hash is not NULL. Revoked and expired keys too. */
    kz_status (*key_get)(struct kz_ledger *l, int64_t id, const uint8_t *hash, int64_t now,
                         struct kz_keys_info *out, struct kz_err *err);
    kz_status (*key_list)(struct kz_ledger *l, int64_t tenant_id, int64_t now, struct kz_keys_info **out,
                          size_t *n, struct kz_err *err);
    kz_status (*key_revoke)(struct kz_ledger *l, int64_t id, int64_t now, struct kz_err *err);

    kz_status (*reserve)(struct kz_ledger *l, int64_t key_id, int64_t tenant_id, int64_t max_cost,
                         const char *request_id, int64_t now, int64_t *reservation, enum kz_ledger_deny *deny,
                         struct kz_err *err);
    kz_status (*release)(struct kz_ledger *l, int64_t reservation, struct kz_err *err);
    kz_status (*sweep)(struct kz_ledger *l, int64_t before_ms, int64_t *released, struct kz_err *err);
    kz_status (*reservations)(struct kz_ledger *l, int64_t *count, int64_t *amount, struct kz_err *err);
    /* All items in one transaction; an item's own failure is in item->rc
     * (the others still commit). A failing transaction returns nonzero and
     * sets every item's rc. */
    kz_status (*settle)(struct kz_ledger *l, struct kz_ledger_settle_item *items, size_t n, struct kz_err *err);

    kz_status (*usage)(struct kz_ledger *l, int64_t tenant_id, const struct kz_ledger_query *q,
                       struct kz_ledger_usage_row **rows, size_t *n, struct kz_err *err);
    kz_status (*usage_get)(struct kz_ledger *l, int64_t tenant_id, const char *request_id,
                           struct kz_ledger_usage *out, struct kz_err *err);
};

/* The common head of every backend's handle. */
struct kz_ledger {
    const struct kz_ledger_ops *ops;
    struct kz_ledger_opts opts;  /* defaults filled in */
    uint64_t *epoch;             /* the change counter, mapped from PATH-kzepoch (NULL: none) */
};

/* Where the password of a postgres://USER:PASSWORD@HOST... URL stands, as
 * a reader of the text sees it: 1 and [*start, *end), or 0 when there is
 * none. (kz_ledger_redact stars it; the PostgreSQL backend checks that
 * libpq reads the same.) */
int kz_ledger_url_password(const char *url, size_t *start, size_t *end);

/* After a change to tenants, keys, credit or budgets has committed. */
void kz_ledger_bump(struct kz_ledger *l);

/* Backends. */
kz_status kz_ledger_sqlite_open(const char *path, const struct kz_ledger_opts *opts, struct kz_ledger **out,
                                struct kz_err *err);
kz_status kz_ledger_pg_open(const char *url, const struct kz_ledger_opts *opts, struct kz_ledger **out,
                            struct kz_err *err);

/* ---- shared rules ---------------------------------------------------------- */

int64_t kz_ledger_now(const struct kz_ledger *l);

/* UTC day number (days since 1970-01-01) of a time. */
int64_t kz_ledger_day(int64_t ms);

/* "YYYY-MM-DD" of a day number into buf (>= 11 bytes). */
void kz_ledger_day_name(int64_t day, char *buf, size_t size);

/* What a reservation decision reads, inside the reserving transaction. */
struct kz_ledger_hold_state {
    int has_key_budget;
    int64_t key_budget, key_spent, key_reserved;
    int has_tenant_budget;
    int64_t tenant_budget, tenant_spent, tenant_reserved;
    int prepaid;
    int64_t balance;
};

/* KZ_OK when max_cost fits every limit; KZ_ELIMIT with *deny and a message
 * naming the limit otherwise (also when a sum would overflow). */
kz_status kz_ledger_admit(const struct kz_ledger_hold_state *s, int64_t max_cost, enum kz_ledger_deny *deny,
                          struct kz_err *err);

/* *out = a + b, or KZ_ELIMIT naming `what` on int64 overflow. */
kz_status kz_ledger_add(int64_t a, int64_t b, int64_t *out, const char *what, struct kz_err *err);

/* Makes room for one more element in a growing result array (v holds n of
 * *cap elements of `size` bytes): returns the array, moved or not, or NULL
 * when out of memory (v is then still valid). */
void *kz_ledger_grow(void *v, size_t *cap, size_t n, size_t size);

/* A key's allowed models as stored (a JSON array of strings): the text
 * (free() it; NULL when out of memory), and back into k->models (one block,
 * the pointer array then the strings). */
char *kz_keys_models_json(const struct kz_keys_spec *s);
kz_status kz_keys_models_parse(const char *text, struct kz_keys_info *k, struct kz_err *err);

/* Validation shared by the public entry points. */
kz_status kz_ledger_check_request_id(const char *id, struct kz_err *err);
kz_status kz_ledger_check_money(int64_t v, const char *what, struct kz_err *err);

#endif
