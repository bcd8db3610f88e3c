/* SPDX-License-Identifier: MIT
 * Tenancy in the server: who is calling (API keys), whether they may (scopes,
 * rate limits, budgets and credit), and what it cost (the usage ledger).
 * The store is ledger/ledger.h; this is the part that runs per request.
 *
 * The flow of one generation request (api/call.c):
 *   kz_tenancy_auth     on the loop: the key the client presented, or the
 *                       open mode (no key exists yet); 401 otherwise
 *   kz_tenancy_admit    on the loop: scope (403), the ledger's backlog (503),
 *                       a client-chosen request id seen before (409), rate
 *                       limits (429), then the request's maximum cost held
 *                       against the key's and the tenant's budgets and
 *                       credit (402): what the ledger has committed plus what
 *                       this process holds (tenancy_int.h)
 *   ... routing ...
 *   kz_tenancy_settle   the usage record appended to the settle journal
 *                       (journal.h) and handed to the ledger's batching
 *                       writer; it returns once the record is in the
 *                       journal: a complete answer is only acknowledged
 *                       (the last bytes sent) after that, so every answered
 *                       request reaches the ledger, also across a kill, and
 *                       a request whose record cannot be written is
 *                       answered 503 instead.
 *
 * Everything on the request path runs on the loop thread. With SQLite it
 * does not wait: a verified key comes from a small cache (tenancy_int.h)
 * or one read of a WAL snapshot (SQLite never makes a reader wait for a
 * writer), and the record is one append. Commits happen on the writer
 * thread behind the answers; when they fall more than 5 s behind (a locked
 * or full database), new requests get 503 until the ledger catches up.
 *
 * Shared ledger (PostgreSQL): several servers spend the same budgets, so
 * what one process holds in memory is not enough. Admission then reserves
 * the maximum cost in the database (kz_ledger_reserve: one transaction that
 * locks the tenant's row), and the settle that commits the record ends that
 * reservation in the same transaction. The reservation (and the ledger
 * lookup of a client-chosen request id) runs on libuv's thread pool, so the
 * loop never waits for the database on that path: the request goes on when
 * the answer is back. The key lookup is still a round trip made on the
 * loop (keys are not cached with a shared ledger: another server may revoke
 * one). While PostgreSQL is unreachable, metered requests get 503 at
 * once, and the connections come back by themselves when it does. Rate
 * limits stay per process. Expired reservations of servers that died are
 * swept every minute.
 *
 * Open mode: while no API key exists in the ledger (or there is no ledger),
 * requests need none and are not metered; the server then only binds
 * loopback unless started with --insecure. Once a key exists, every /v1 and
 * /admin request needs one.
 *
 * Threads: everything here is called on the loop thread. Ownership: the
 * tenancy owns its ledger, writer and journal; a kz_principal owns its key
 * info (kz_principal_free); a kz_meter is the caller's, and an active one
 * must be settled before it goes.
 */
#ifndef KZ_TENANCY_H
#define KZ_TENANCY_H

#include <stdint.h>
#include <uv.h>

#include "api/openai.h"
#include "http/http.h"
#include "ledger/keys.h"
#include "ledger/ledger.h"
#include "tenancy/ratelimit.h"

struct kz_tenancy; /* opaque */

/* Opens (or creates) the ledger at `db` and starts its writer. `journal`
 * is this server's settle journal (NULL: "DB-kzsettle" beside an SQLite
 * file; with PostgreSQL, "kyozon-settle.journal" in the working directory).
 * Results of the writer thread come back through kz_http_server_post on
 * `http`. */
kz_status kz_tenancy_open(const char *db, const char *journal, uv_loop_t *loop, struct kz_http_server *http,
                          struct kz_tenancy **out, struct kz_err *err);

/* Waits for every queued record to commit, then closes. NULL is a no-op. */
void kz_tenancy_close(struct kz_tenancy *t);

/* 1 once any API key exists (revoked ones count: revoking every key must not
 * open the server). */
int kz_tenancy_has_keys(struct kz_tenancy *t);

struct kz_ledger *kz_tenancy_ledger(struct kz_tenancy *t);

/* Returns once every record handed to the writer so far is committed (or
 * failed): reads after it see every answer given before it. Any thread. */
void kz_tenancy_flush(struct kz_tenancy *t);

/* The caller of one request. */
struct kz_principal {
    int open;                /* open mode: no key needed, nothing metered */
    struct kz_keys_info key; /* when !open */
    int64_t base_k, base_t;  /* internal: what this process had committed for the key and its
                              * tenant when `key` was read (its spend lacks what came after) */
};

/* Reads `Authorization: Bearer kz-...` or `x-api-key`. 0 with *p filled, or
 * -1 with e set (401 invalid_api_key, 503 when the store fails). t may be
 * NULL (no ledger: open). */
int kz_tenancy_auth(struct kz_tenancy *t, struct kz_http_req *req, struct kz_principal *p, struct kz_api_error *e);
void kz_principal_free(struct kz_principal *p);

/* One metered request, from admission to settlement. */
struct kz_meter {
    struct kz_tenancy *t;
    int active;                    /* admitted and metered: settle it */
    char request_id[KZ_LEDGER_ID_MAX];
    int64_t tenant_id, key_id;
    int64_t max_cost;              /* micro-dollars held */
    int64_t est_tokens;            /* counted against TPM at admission */
    int64_t admitted_ms;
    int64_t started_ms;
    struct kz_rl_owner owners[2];
    int n_owners;
    struct kz_rl_state rl;         /* for the x-ratelimit-* headers */
    int have_rl;
    struct kz_meter *run_prev, *run_next; /* running with a client-chosen id */
    int64_t reservation;           /* shared ledger: the database's hold (0: held in memory) */
};

/* The word on an admission that had to ask the database: the return value
 * and arguments of kz_tenancy_admit below. Called once, on the loop. */
typedef void (*kz_admit_fn)(void *ud, int refused, const struct kz_api_error *e, long retry_after_ms);

/* Admits one request of `p` for public `model`: scope, rate limits and a
 * hold of max_cost micro-dollars, under request_id (explicit_id: the client
 * chose it, so it is checked against earlier requests). 0: admitted (open
 * principals unmetered); an admitted meter must be settled. -1: e says why
 * (the status and code to answer), *retry_after_ms when > 0.
 * 1: pending (a shared ledger: the reservation is a database round trip,
 * made off the loop): done(ud, ...) says which later; until then the meter
 * must stay where it is, and settling it is a no-op. */
int kz_tenancy_admit(struct kz_tenancy *t, const struct kz_principal *p, const char *model, int64_t max_cost,
                     int64_t est_tokens, const char *request_id, int explicit_id, struct kz_meter *m,
                     kz_admit_fn done, void *ud, struct kz_api_error *e, long *retry_after_ms);

/* Adds x-ratelimit-* headers for the limits that applied. */
void kz_tenancy_headers(const struct kz_meter *m, struct kz_http_res *res);

/* Records the request (u: tokens, cost, status, provider, times; the ids
 * come from the meter) and ends its hold. KZ_OK when the record is durable
 * (journaled) or the meter was not active; else msg (may be NULL) says why. */
kz_status kz_tenancy_settle(struct kz_meter *m, const struct kz_ledger_usage *u, char *msg, size_t size);

#endif
