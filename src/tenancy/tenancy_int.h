/* SPDX-License-Identifier: MIT
 * Inside the tenancy: the state tenancy.c (authentication, admission) and
 * settle.c (the journal, the writer, the in-memory holds) share. Loop thread
 * only, except where a field says otherwise.
 */
#ifndef KZ_TENANCY_INT_H
#define KZ_TENANCY_INT_H

#include "ledger/writer.h"
#include "tenancy/journal.h"
#include "tenancy/tenancy.h"

/* How long a request may wait for the ledger, and how far the ledger may
 * fall behind the answers already given, before new requests get 503. */
#define KZ_LEDGER_BUSY_MS 5000

/* What this process holds against one key or tenant beyond what the ledger
 * has committed: reservations of requests running, and costs of answered
 * requests whose records are journaled but not yet committed. */
struct kz_hold {
    char kind; /* 'k' key, 't' tenant */
    int64_t id;
    int64_t reserved, pending;
    int64_t committed;  /* costs this process has committed since it started: what a
                         * cached figure of spend lacks is committed - its base */
    struct kz_hold *next;
};

/* Verified keys with their tenants, as the ledger held them (SQLite only:
 * the process is the only one spending, and the ledger's change epoch tells
 * when another process changed a key, a tenant, a credit or a budget). An
 * entry serves while the epoch is unchanged, for at most KZ_KEY_CACHE_MS,
 * and within the budget periods it was read in. */
#define KZ_KEY_CACHE 256
#define KZ_KEY_CACHE_MS 1000

struct kz_key_entry {
    uint8_t hash[KZ_SHA256_SIZE];
    int used;
    uint64_t epoch;
    int64_t fetched_ms;
    struct kz_keys_info info; /* owns its models */
    int64_t base_k, base_t;   /* the holds' `committed` at the read */
};

/* A journaled record on its way into the ledger (oldest first). */
struct kz_outstanding {
    struct kz_tenancy *t;
    struct kz_ledger_usage u;
    int64_t reservation;      /* shared ledger: ended by the same commit */
    int64_t journaled_ms;
    kz_status rc;             /* set on the writer thread, read on the loop after the post */
    int duplicate;            /* likewise: it was in the ledger already (nothing new spent) */
    char msg[160];            /* why it failed, likewise */
    int in_writer;            /* submitted and not yet answered */
    struct kz_outstanding *prev, *next;
};

#define KZ_HOLD_BUCKETS 1024u

struct kz_tenancy {
    uv_loop_t *loop;
    struct kz_http_server *http;
    struct kz_ledger *ledger;
    struct kz_ledger_writer *writer;
    struct kz_journal *journal;
    struct kz_rl *rl;
    int has_keys;                       /* sticky: keys are never deleted */
    int shared;                         /* PostgreSQL: holds are reservations in the database */
    int admitting;                      /* shared: admissions waiting for the database (admit_job) */
    int commit_failing;                 /* said so on stderr; said again when it ends */
    uv_timer_t *sweep_timer;            /* shared: releases reservations of dead servers (own allocation) */
    struct kz_hold *holds[KZ_HOLD_BUCKETS];
    struct kz_outstanding *out_head, *out_tail;
    size_t n_out;
    uv_timer_t *retry_timer;            /* resubmits records the writer failed (own allocation) */
    struct kz_meter *running;           /* admitted meters with a client-chosen id (duplicates) */
    struct kz_key_entry *cache;         /* KZ_KEY_CACHE entries; NULL: every request reads the ledger */
};

int64_t kz_tenancy_wall_ms(void);
struct kz_hold *kz_hold_get(struct kz_tenancy *t, char kind, int64_t id); /* NULL only when out of memory */

/* settle.c */
kz_status kz_settle_open(struct kz_tenancy *t, const char *db, const char *journal, struct kz_err *err);
void kz_settle_close(struct kz_tenancy *t);
/* Milliseconds the oldest unrecorded answer has waited (0: none). */
int64_t kz_settle_backlog_ms(const struct kz_tenancy *t);
/* 1 when a record of request_id is journaled and not yet committed. */
int kz_settle_has(const struct kz_tenancy *t, const char *request_id);

#endif
