/* SPDX-License-Identifier: MIT
 * Tenancy per request (see tenancy.h).
 */
#include "tenancy/tenancy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "tenancy/tenancy_int.h"

int64_t kz_tenancy_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void) { return kz_tenancy_wall_ms(); }

struct kz_hold *kz_hold_get(struct kz_tenancy *t, char kind, int64_t id)
{
    uint64_t h = ((uint64_t)id * 0x9E3779B97F4A7C15ull) ^ (uint64_t)(unsigned char)kind;
    struct kz_hold **b = &t->holds[(h >> 32) % KZ_HOLD_BUCKETS];
    for (struct kz_hold *x = *b; x; x = x->next)
        if (x->id == id && x->kind == kind)
            return x;
    struct kz_hold *x = kz_calloc(1, sizeof *x);
    if (x) {
        x->kind = kind;
        x->id = id;
        x->next = *b;
        *b = x;
    }
    return x;
}

kz_status kz_tenancy_open(const char *db, const char *journal, uv_loop_t *loop, struct kz_http_server *http,
                          struct kz_tenancy **out, struct kz_err *err)
{
    struct kz_tenancy *t = kz_calloc(1, sizeof *t);
    if (!t || kz_rl_new(&t->rl)) {
        kz_free(t);
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    }
    t->loop = loop;
    t->http = http;
    t->shared = kz_ledger_is_postgres(db);
    struct kz_ledger_opts lo = {.busy_timeout_ms = KZ_LEDGER_BUSY_MS};
    kz_status rc = kz_ledger_open(db, &lo, &t->ledger, err);
    if (!rc && !t->shared && kz_ledger_epoch(t->ledger) && !(t->cache = kz_calloc(KZ_KEY_CACHE, sizeof *t->cache)))
        rc = kz_err_set(err, KZ_ENOMEM, "out of memory");
    if (!rc) /* before serving: what the last run answered but did not commit */
        rc = kz_settle_open(t, db, journal, err);
    if (!rc)
        /* shared ledger: a batch holds its tenants' rows until it commits,
         * and reservations (on the loop) wait for them: small batches */
        rc = kz_ledger_writer_start(t->ledger,
                                    &(struct kz_ledger_writer_opts){.linger_ms = 10, .max_batch = t->shared ? 32 : 0},
                                    &t->writer, err);
    if (rc) {
        kz_tenancy_close(t);
        return rc;
    }
    *out = t;
    return KZ_OK;
}

void kz_tenancy_close(struct kz_tenancy *t)
{
    if (!t)
        return;
    /* the loop ran until its work requests were done, admissions included */
    KZ_ASSERT(t->admitting == 0);
    kz_ledger_writer_stop(t->writer); /* commits what is queued; its posts may no longer arrive */
    if (t->journal)
        kz_settle_close(t);
    kz_ledger_close(t->ledger);
    kz_rl_free(t->rl);
    for (size_t i = 0; t->cache && i < KZ_KEY_CACHE; i++)
        kz_keys_info_free(&t->cache[i].info);
    kz_free(t->cache);
    for (size_t i = 0; i < KZ_HOLD_BUCKETS; i++)
        for (struct kz_hold *x = t->holds[i], *n; x; x = n) {
            n = x->next;
            kz_free(x);
        }
    kz_free(t);
}

struct kz_ledger *kz_tenancy_ledger(struct kz_tenancy *t) { return t ? t->ledger : NULL; }

void kz_tenancy_flush(struct kz_tenancy *t)
{
    if (t)
        kz_ledger_writer_flush(t->writer);
}

int kz_tenancy_has_keys(struct kz_tenancy *t)
{
    if (!t)
        return 0;
    if (!t->has_keys) {
        struct kz_keys_info *keys = NULL;
        size_t n = 0;
        struct kz_err err = {{0}};
        /* while there are none, the list is empty and the read cheap; a
         * store that cannot be read is treated as "keys exist" (fail closed) */
        if (kz_keys_list_all(t->ledger, &keys, &n, &err) != KZ_OK || n > 0)
            t->has_keys = 1;
        kz_keys_list_free(keys, n);
    }
    return t->has_keys;
}

/* ---- authentication ------------------------------------------------------------------ */

static int presented_key(struct kz_http_req *req, char *buf, size_t size)
{
    struct kz_slice v;
    if (kz_http_req_header(req, "authorization", &v)) {
        if (v.len > 7 && strncasecmp(v.p, "Bearer ", 7) == 0) {
            v.p += 7;
            v.len -= 7;
        } else {
            return -1;
        }
    } else if (!kz_http_req_header(req, "x-api-key", &v)) {
        return 0;
    }
    while (v.len && (*v.p == ' ' || *v.p == '\t'))
        v.p++, v.len--;
    while (v.len && (v.p[v.len - 1] == ' ' || v.p[v.len - 1] == '\t'))
        v.len--;
    if (v.len == 0 || v.len >= size)
        return -1;
    memcpy(buf, v.p, v.len);
    buf[v.len] = '\0';
    return 1;
}

static struct kz_key_entry *cache_slot(struct kz_tenancy *t, const uint8_t *hash)
{
    return &t->cache[(hash[0] | (unsigned)hash[1] << 8) % KZ_KEY_CACHE]; /* a hash: already uniform */
}

/* 1 when the cache answered (*rc and p, or err, set), 0 to read the ledger. */
static int cached(struct kz_tenancy *t, const uint8_t *hash, struct kz_principal *p, struct kz_err *err,
                  kz_status *rc)
{
    if (!t->cache)
        return 0;
    const struct kz_key_entry *c = cache_slot(t, hash);
    int64_t now = wall_ms();
    const struct kz_keys_info *k = &c->info;
    if (!c->used || memcmp(c->hash, hash, sizeof c->hash) != 0 || c->epoch != kz_ledger_epoch(t->ledger) ||
        now - c->fetched_ms >= KZ_KEY_CACHE_MS || now < c->fetched_ms ||
        kz_ledger_period_start(k->period, now) != kz_ledger_period_start(k->period, c->fetched_ms) ||
        kz_ledger_period_start(k->tenant.period, now) != kz_ledger_period_start(k->tenant.period, c->fetched_ms))
        return 0;
    if (k->expires_ms && now >= k->expires_ms) {
        *rc = kz_err_set(err, KZ_ENOTFOUND, "API key expired");
        return 1;
    }
    if (kz_keys_info_copy(&p->key, k) != KZ_OK)
        return 0;
    p->base_k = c->base_k;
    p->base_t = c->base_t;
    *rc = KZ_OK;
    return 1;
}

/* The ledger's word on a key; kept in the cache when there is one. */
static kz_status lookup(struct kz_tenancy *t, const char *key, const uint8_t *hash, struct kz_principal *p,
                        struct kz_err *err)
{
    uint64_t epoch = kz_ledger_epoch(t->ledger); /* before the read: a change during it stales the entry */
    int64_t now = wall_ms();
    kz_status rc = kz_keys_lookup(t->ledger, key, &p->key, err);
    if (rc)
        return rc;
    if (t->shared)
        return KZ_OK; /* holds are the database's: no base, no cache */
    struct kz_hold *hk = kz_hold_get(t, 'k', p->key.id), *ht = kz_hold_get(t, 't', p->key.tenant_id);
    p->base_k = hk ? hk->committed : 0;
    p->base_t = ht ? ht->committed : 0;
    if (t->cache && hk && ht) {
        struct kz_key_entry *c = cache_slot(t, hash);
        kz_keys_info_free(&c->info);
        c->used = kz_keys_info_copy(&c->info, &p->key) == KZ_OK;
        memcpy(c->hash, hash, sizeof c->hash);
        c->epoch = epoch;
        c->fetched_ms = now;
        c->base_k = p->base_k;
        c->base_t = p->base_t;
    }
    return KZ_OK;
}

int kz_tenancy_auth(struct kz_tenancy *t, struct kz_http_req *req, struct kz_principal *p, struct kz_api_error *e)
{
    memset(p, 0, sizeof *p);
    if (!kz_tenancy_has_keys(t)) {
        p->open = 1;
        return 0;
    }
    char key[256];
    int got = presented_key(req, key, sizeof key);
    if (got <= 0) {
        kz_api_fail(e, 401, "invalid_request_error", "invalid_api_key", NULL,
                    got == 0 ? "You didn't provide an API key. Send it as 'Authorization: Bearer kz-...' or "
                               "'x-api-key: kz-...'."
                             : "The Authorization header must read 'Bearer <API key>'.");
        return -1;
    }
    struct kz_err err = {{0}};
    uint8_t hash[KZ_SHA256_SIZE];
    kz_status rc = KZ_OK;
    if (!kz_keys_digest(key, hash))
        rc = kz_err_set(&err, KZ_ENOTFOUND, "invalid API key");
    else if (!cached(t, hash, p, &err, &rc))
        rc = lookup(t, key, hash, p, &err);
    memset(key, 0, sizeof key);
    if (rc == KZ_ENOTFOUND) {
        kz_api_fail(e, 401, "invalid_request_error", "invalid_api_key", NULL, "%s", err.msg);
        return -1;
    }
    if (rc) {
        kz_api_fail(e, 503, "server_error", "ledger_unavailable", NULL, "%s", err.msg);
        return -1;
    }
    return 0;
}

void kz_principal_free(struct kz_principal *p)
{
    if (p && !p->open)
        kz_keys_info_free(&p->key);
}

/* ---- admission ------------------------------------------------------------------------ */

static void rl_undo(struct kz_meter *m)
{
    if (m->n_owners)
        kz_rl_settle(m->t->rl, m->owners, m->n_owners, m->admitted_ms, m->est_tokens, 0, wall_ms());
}

/* 409 for a request id the ledger has a record of. */
static void answered_before(const struct kz_ledger_usage *prior, struct kz_api_error *e)
{
    kz_api_fail(e, 409, "invalid_request_error", "duplicate_request", NULL,
                "a request with this Idempotency-Key was already answered (status %d, %lld input and "
                "%lld output tokens, cost %lld micro-USD); it is not run or billed again",
                prior->status, (long long)prior->input_tokens, (long long)prior->output_tokens,
                (long long)prior->cost);
}

/* A client-chosen request id that is running or waiting to be committed
 * here, or (in_ledger) recorded in the ledger: 409, with the recorded
 * figures when there are some. */
static int duplicate(struct kz_tenancy *t, const char *id, int64_t tenant_id, int in_ledger, struct kz_api_error *e)
{
    for (const struct kz_meter *r = t->running; r; r = r->run_next)
        if (strcmp(r->request_id, id) == 0)
            return kz_api_fail(e, 409, "invalid_request_error", "duplicate_request", NULL,
                               "a request with this Idempotency-Key is still running"),
                   1;
    if (kz_settle_has(t, id))
        return kz_api_fail(e, 409, "invalid_request_error", "duplicate_request", NULL,
                           "a request with this Idempotency-Key was already answered; it is not run or billed again"),
               1;
    struct kz_ledger_usage prior;
    struct kz_err err = {{0}};
    if (in_ledger && kz_ledger_usage_get(t->ledger, tenant_id, id, &prior, &err) == KZ_OK) {
        answered_before(&prior, e);
        return 1;
    }
    return 0;
}

/* Budgets and credit, decided here on the loop from what the ledger has
 * committed (the key's and its tenant's spend came with the key) plus
 * what this process holds: reservations of running requests and the cost
 * of answers not yet committed. One process per SQLite ledger makes this
 * exact (docs/LEDGER.md). 0 admitted, else e says why. */
static int afford(struct kz_tenancy *t, const struct kz_principal *p, int64_t cost, struct kz_api_error *e)
{
    const struct kz_keys_info *k = &p->key;
    struct kz_ledger_tenant ten = k->tenant; /* read with the key */
    struct kz_hold *hk = kz_hold_get(t, 'k', k->id), *ht = kz_hold_get(t, 't', k->tenant_id);
    if (!hk || !ht)
        return kz_api_fail(e, 503, "server_error", NULL, NULL, "out of memory"), -1;
    /* what this process committed since the figures were read (a cached
     * read may be up to a second old) */
    int64_t since_k = hk->committed - p->base_k, since_t = ht->committed - p->base_t;
    ten.spent += since_t;
    ten.balance -= since_t;
    int64_t key_used = k->spent + since_k + k->reserved + hk->reserved + hk->pending;
    int64_t ten_held = ten.reserved + ht->reserved + ht->pending;
    if (k->has_budget && key_used + cost > k->budget)
        return kz_api_fail(e, 402, "insufficient_quota", "budget_exhausted", NULL,
                           "this API key's budget is exhausted: %lld of %lld micro-USD used or held this %s, the "
                           "request may cost %lld",
                           (long long)key_used, (long long)k->budget, kz_ledger_period_name(k->period),
                           (long long)cost),
               -1;
    if (ten.has_budget && ten.spent + ten_held + cost > ten.budget)
        return kz_api_fail(e, 402, "insufficient_quota", "budget_exhausted", NULL,
                           "this tenant's budget is exhausted: %lld of %lld micro-USD used or held this %s, the "
                           "request may cost %lld",
                           (long long)(ten.spent + ten_held), (long long)ten.budget,
                           kz_ledger_period_name(ten.period), (long long)cost),
               -1;
    if (ten.prepaid && ten_held + cost > ten.balance)
        return kz_api_fail(e, 402, "insufficient_quota", "insufficient_credit", NULL,
                           "insufficient credit: balance %lld micro-USD, %lld held, the request may cost %lld",
                           (long long)ten.balance, (long long)ten_held, (long long)cost),
               -1;
    hk->reserved += cost;
    ht->reserved += cost;
    return 0;
}

/* A refused admission: its rate-limit counts are taken back; the Retry-After
 * to answer with (ms, 0: none). */
static long refuse(struct kz_meter *m, const struct kz_api_error *e)
{
    rl_undo(m);
    return e->status == 503 ? 1000 : 0;
}

/* Shared ledger: the hold is a reservation in the database, decided there
 * against what every server has spent and holds. What kz_ledger_reserve
 * said, as an answer: 0 admitted, else e says why. */
static int reserve_outcome(kz_status rc, enum kz_ledger_deny deny, const struct kz_err *err, int64_t max_cost,
                           struct kz_api_error *e)
{
    switch (rc) {
    case KZ_OK:
        return 0;
    case KZ_ELIMIT:
        if (deny == KZ_DENY_CREDIT)
            kz_api_fail(e, 402, "insufficient_quota", "insufficient_credit", NULL, "%s", err->msg);
        else
            kz_api_fail(e, 402, "insufficient_quota", "budget_exhausted", NULL, "%s (the request may cost %lld)",
                        err->msg, (long long)max_cost);
        return -1;
    case KZ_ENOTFOUND: /* revoked or expired since the lookup */
        kz_api_fail(e, 401, "invalid_request_error", "invalid_api_key", NULL, "%s", err->msg);
        return -1;
    case KZ_EINVAL: /* the request id: another server runs or ran it */
        kz_api_fail(e, 409, "invalid_request_error", "duplicate_request", NULL, "%s; it is not run or billed again",
                    err->msg);
        return -1;
    default:
        kz_api_fail(e, 503, "server_error", "ledger_unavailable", NULL, "%s", err->msg);
        return -1;
    }
}

/* The admitted meter starts to count; with a client-chosen id it is listed
 * as running (duplicate() looks there). */
static void activate(struct kz_tenancy *t, struct kz_meter *m, int explicit_id)
{
    m->active = 1;
    if (explicit_id) {
        m->run_next = t->running;
        if (t->running)
            t->running->run_prev = m;
        t->running = m;
    }
}

/* A shared ledger's admission, off the loop: the database round trips (the
 * ledger lookup of a client-chosen id, then the reservation) run on libuv's
 * thread pool, and the request goes on when they are back. The meter is
 * the caller's and stays put until `done` (kz_tenancy.h); the thread only
 * writes this job. */
struct admit_job {
    uv_work_t req;
    struct kz_tenancy *t;
    struct kz_meter *m;
    int explicit_id;
    kz_admit_fn done;
    void *ud;
    /* inputs copied from the meter, results: the thread's */
    int64_t key_id, tenant_id, max_cost;
    char request_id[KZ_LEDGER_ID_MAX];
    int answered;                 /* the ledger has a record of this id */
    struct kz_ledger_usage prior;
    kz_status rc;
    enum kz_ledger_deny deny;
    int64_t reservation;
    struct kz_err err;
};

static void admit_work(uv_work_t *req)
{
    struct admit_job *j = req->data;
    if (j->explicit_id && kz_ledger_usage_get(j->t->ledger, j->tenant_id, j->request_id, &j->prior, &j->err) == KZ_OK) {
        j->answered = 1;
        return;
    }
    memset(&j->err, 0, sizeof j->err);
    j->rc = kz_ledger_reserve(j->t->ledger, j->key_id, j->tenant_id, j->max_cost, j->request_id, &j->reservation,
                              &j->deny, &j->err);
}

static void admit_after(uv_work_t *req, int status)
{
    struct admit_job *j = req->data;
    struct kz_api_error e;
    memset(&e, 0, sizeof e);
    long retry_after_ms = 0;
    int refused = 0;
    if (status != 0) { /* cancelled: the loop is going away */
        kz_api_fail(&e, 503, "server_error", "ledger_unavailable", NULL, "the server is stopping");
        refused = 1;
    } else if (j->answered) {
        answered_before(&j->prior, &e);
        refused = 1;
    } else {
        refused = reserve_outcome(j->rc, j->deny, &j->err, j->max_cost, &e) != 0;
    }
    if (refused) {
        retry_after_ms = refuse(j->m, &e);
    } else {
        j->m->reservation = j->reservation;
        activate(j->t, j->m, j->explicit_id);
    }
    j->t->admitting--;
    j->done(j->ud, refused ? -1 : 0, &e, retry_after_ms);
    kz_free(j);
}

static int admit_shared(struct kz_tenancy *t, struct kz_meter *m, int explicit_id, kz_admit_fn done, void *ud,
                        struct kz_api_error *e)
{
    struct admit_job *j = kz_calloc(1, sizeof *j);
    if (!j)
        return kz_api_fail(e, 503, "server_error", NULL, NULL, "out of memory"), -1;
    *j = (struct admit_job){.t = t, .m = m, .explicit_id = explicit_id, .done = done, .ud = ud,
                            .key_id = m->key_id, .tenant_id = m->tenant_id, .max_cost = m->max_cost};
    snprintf(j->request_id, sizeof j->request_id, "%s", m->request_id);
    j->req.data = j;
    if (uv_queue_work(t->loop, &j->req, admit_work, admit_after) != 0) {
        kz_free(j);
        return kz_api_fail(e, 503, "server_error", "ledger_unavailable", NULL, "cannot queue the reservation"), -1;
    }
    t->admitting++;
    return 1;
}

int kz_tenancy_admit(struct kz_tenancy *t, const struct kz_principal *p, const char *model, int64_t max_cost,
                     int64_t est_tokens, const char *request_id, int explicit_id, struct kz_meter *m,
                     kz_admit_fn done, void *ud, struct kz_api_error *e, long *retry_after_ms)
{
    memset(m, 0, sizeof *m);
    *retry_after_ms = 0;
    m->t = t;
    if (!t || p->open)
        return 0;
    const struct kz_keys_info *k = &p->key;
    if (!kz_keys_allows_model(k, model)) {
        kz_api_fail(e, 403, "permission_error", "model_not_allowed", "model",
                    "this API key may not use the model '%s'", model);
        return -1;
    }
    int64_t behind = kz_settle_backlog_ms(t);
    if (behind > KZ_LEDGER_BUSY_MS) {
        kz_api_fail(e, 503, "server_error", "ledger_unavailable", NULL,
                    "ledger busy: answers of the last %.1f s are not recorded yet", (double)behind / 1000.0);
        *retry_after_ms = 1000;
        return -1;
    }
    /* a shared ledger is asked off the loop, with the reservation */
    if (explicit_id && duplicate(t, request_id, k->tenant_id, !t->shared, e))
        return -1;
    snprintf(m->request_id, sizeof m->request_id, "%s", request_id);
    m->tenant_id = k->tenant_id;
    m->key_id = k->id;
    m->max_cost = max_cost;
    m->est_tokens = est_tokens;
    m->started_ms = m->admitted_ms = wall_ms();
    /* the limited owners: the key and its tenant; headers show the first */
    if (k->rpm || k->tpm)
        m->owners[m->n_owners++] = (struct kz_rl_owner){'k', k->id, k->rpm, k->tpm};
    if (k->tenant_rpm || k->tenant_tpm)
        m->owners[m->n_owners++] = (struct kz_rl_owner){'t', k->tenant_id, k->tenant_rpm, k->tenant_tpm};
    if (m->n_owners) {
        int64_t retry = 0;
        m->have_rl = 1;
        if (!kz_rl_admit(t->rl, m->owners, m->n_owners, est_tokens, m->admitted_ms, &retry, &m->rl)) {
            m->n_owners = 0; /* nothing was counted */
            kz_api_fail(e, 429, "requests", "rate_limit_exceeded", NULL,
                        "rate limit reached (this API key: %lld requests and %lld tokens per minute, its tenant: "
                        "%lld and %lld; 0 is none); retry in %.1f s",
                        (long long)k->rpm, (long long)k->tpm, (long long)k->tenant_rpm, (long long)k->tenant_tpm,
                        (double)retry / 1000.0);
            *retry_after_ms = retry > 0 ? (long)retry : 1;
            return -1;
        }
    }
    int rc = t->shared ? admit_shared(t, m, explicit_id, done, ud, e) : afford(t, p, max_cost, e);
    if (rc < 0) {
        *retry_after_ms = refuse(m, e);
        return -1;
    }
    if (rc == 0)
        activate(t, m, explicit_id);
    return rc;
}

static void ms_text(char *buf, size_t size, int64_t ms)
{
    if (ms % 1000 == 0)
        snprintf(buf, size, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, size, "%.3fs", (double)ms / 1000.0);
}

static void limit_headers(struct kz_http_res *res, const char *what, int64_t limit, int64_t remaining,
                          int64_t reset_ms)
{
    char name[48], v[32];
    snprintf(v, sizeof v, "%lld", (long long)limit);
    snprintf(name, sizeof name, "x-ratelimit-limit-%s", what);
    kz_http_res_add_header(res, name, v);
    snprintf(v, sizeof v, "%lld", (long long)remaining);
    snprintf(name, sizeof name, "x-ratelimit-remaining-%s", what);
    kz_http_res_add_header(res, name, v);
    ms_text(v, sizeof v, reset_ms);
    snprintf(name, sizeof name, "x-ratelimit-reset-%s", what);
    kz_http_res_add_header(res, name, v);
}

void kz_tenancy_headers(const struct kz_meter *m, struct kz_http_res *res)
{
    const struct kz_rl_state *s = &m->rl;
    if (m->have_rl && s->limit_requests)
        limit_headers(res, "requests", s->limit_requests, s->remaining_requests, s->reset_requests_ms);
    if (m->have_rl && s->limit_tokens)
        limit_headers(res, "tokens", s->limit_tokens, s->remaining_tokens, s->reset_tokens_ms);
}

