/* SPDX-License-Identifier: MIT
 * Tenancy per request (see tenancy.h).
 */
#include "tenancy/tenancy.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/alloc.h"
#include "ledger/writer.h"

/* How long a request may wait for the ledger in all (a worker thread, the
 * write connection, the database lock) before it gets 503. */
#define LEDGER_BUSY_MS 5000

struct kz_tenancy {
    uv_loop_t *loop;
    struct kz_http_server *http;
    struct kz_ledger *ledger;
    struct kz_ledger_writer *writer;
    struct kz_rl *rl;
    int has_keys; /* sticky: keys are never deleted */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

kz_status kz_tenancy_open(const char *db, uv_loop_t *loop, struct kz_http_server *http, struct kz_tenancy **out,
                          struct kz_err *err)
{
    struct kz_tenancy *t = kz_calloc(1, sizeof *t);
    if (!t || kz_rl_new(&t->rl)) {
        kz_free(t);
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    }
    t->loop = loop;
    t->http = http;
    struct kz_ledger_opts lo = {.busy_timeout_ms = LEDGER_BUSY_MS};
    kz_status rc = kz_ledger_open(db, &lo, &t->ledger, err);
    if (!rc)
        rc = kz_ledger_writer_start(t->ledger, NULL, &t->writer, err);
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
    kz_ledger_writer_stop(t->writer);
    kz_ledger_close(t->ledger);
    kz_rl_free(t->rl);
    kz_free(t);
}

struct kz_ledger *kz_tenancy_ledger(struct kz_tenancy *t) { return t ? t->ledger : NULL; }

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
    kz_status rc = kz_keys_lookup(t->ledger, key, &p->key, &err);
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

struct admit_job {
    uv_work_t w;
    struct kz_meter *m;
    kz_admit_fn fn;
    void *ud;
    kz_status rc;
    enum kz_ledger_deny deny;
    struct kz_err err;
    int replay;                   /* the request id is already recorded: `prior` */
    struct kz_ledger_usage prior;
};

static void reserve_work(uv_work_t *w)
{
    struct admit_job *j = w->data;
    struct kz_meter *m = j->m;
    if (wall_ms() - m->admitted_ms >= LEDGER_BUSY_MS) { /* queued behind stuck ones */
        j->rc = kz_err_set(&j->err, KZ_EIO, "ledger busy: no worker free for %d ms", LEDGER_BUSY_MS);
        return;
    }
    j->rc = kz_ledger_reserve(m->t->ledger, m->key_id, m->tenant_id, m->max_cost, m->request_id, &m->reservation,
                              &j->deny, &j->err);
    /* a retry of a request the ledger holds: answered from its record */
    struct kz_err e2 = {{0}};
    if (j->rc == KZ_EINVAL &&
        kz_ledger_usage_get(m->t->ledger, m->tenant_id, m->request_id, &j->prior, &e2) == KZ_OK)
        j->replay = 1;
}

static void rl_undo(struct kz_meter *m)
{
    if (m->n_owners)
        kz_rl_settle(m->t->rl, m->owners, m->n_owners, m->admitted_ms, m->est_tokens, 0, wall_ms());
}

static void reserve_done(uv_work_t *w, int status)
{
    struct admit_job *j = w->data;
    struct kz_meter *m = j->m;
    struct kz_api_error e;
    m->waiting = 0;
    if (status == UV_ECANCELED && !j->rc)
        j->rc = kz_err_set(&j->err, KZ_EIO, "ledger: reservation cancelled");
    if (!j->rc) {
        m->active = 1;
        j->fn(j->ud, 1, NULL, 0);
    } else {
        rl_undo(m);
        if (j->rc == KZ_ELIMIT)
            kz_api_fail(&e, 402, "insufficient_quota",
                        j->deny == KZ_DENY_CREDIT ? "insufficient_credit" : "budget_exhausted", NULL, "%s%s",
                        j->deny == KZ_DENY_KEY_BUDGET ? "this API key's " : j->deny == KZ_DENY_TENANT_BUDGET
                                                                                ? "this tenant's "
                                                                                : "",
                        j->err.msg);
        else if (j->replay)
            kz_api_fail(&e, 409, "invalid_request_error", "duplicate_request", NULL,
                        "a request with this Idempotency-Key was already answered (status %d, %lld input and %lld "
                        "output tokens, cost %lld micro-USD); it is not run or billed again",
                        j->prior.status, (long long)j->prior.input_tokens, (long long)j->prior.output_tokens,
                        (long long)j->prior.cost);
        else if (j->rc == KZ_EINVAL && strstr(j->err.msg, "request id"))
            kz_api_fail(&e, 409, "invalid_request_error", "duplicate_request", NULL,
                        "a request with this Idempotency-Key is still running");
        else if (j->rc == KZ_ENOTFOUND)
            kz_api_fail(&e, 401, "invalid_request_error", "invalid_api_key", NULL, "%s", j->err.msg);
        else
            kz_api_fail(&e, 503, "server_error", "ledger_unavailable", NULL, "%s", j->err.msg);
        j->fn(j->ud, 0, &e, e.status == 503 ? 1000 : 0);
    }
    kz_free(j);
}

void kz_tenancy_admit(struct kz_tenancy *t, const struct kz_principal *p, const char *model, int64_t max_cost,
                      int64_t est_tokens, const char *request_id, struct kz_meter *m, kz_admit_fn fn, void *ud)
{
    struct kz_api_error e;
    memset(m, 0, sizeof *m);
    m->t = t;
    m->reservation = 0;
    if (!t || p->open) {
        fn(ud, 1, NULL, 0);
        return;
    }
    const struct kz_keys_info *k = &p->key;
    if (!kz_keys_allows_model(k, model)) {
        kz_api_fail(&e, 403, "permission_error", "model_not_allowed", "model",
                    "this API key may not use the model '%s'", model);
        fn(ud, 0, &e, 0);
        return;
    }
    snprintf(m->request_id, sizeof m->request_id, "%s", request_id);
    m->tenant_id = k->tenant_id;
    m->key_id = k->id;
    m->max_cost = max_cost;
    m->est_tokens = est_tokens;
    m->started_ms = m->admitted_ms = wall_ms();
    /* the limited owners: the key and its tenant; headers show the first */
    m->n_owners = 0;
    if (k->rpm || k->tpm)
        m->owners[m->n_owners++] = (struct kz_rl_owner){'k', k->id, k->rpm, k->tpm};
    if (k->tenant_rpm || k->tenant_tpm)
        m->owners[m->n_owners++] = (struct kz_rl_owner){'t', k->tenant_id, k->tenant_rpm, k->tenant_tpm};
    if (m->n_owners) {
        int64_t retry = 0;
        m->have_rl = 1;
        if (!kz_rl_admit(t->rl, m->owners, m->n_owners, est_tokens, m->admitted_ms, &retry, &m->rl)) {
            m->n_owners = 0; /* nothing was counted */
            kz_api_fail(&e, 429, "requests", "rate_limit_exceeded", NULL,
                        "rate limit reached (this API key: %lld requests and %lld tokens per minute, its tenant: "
                        "%lld and %lld; 0 is none); retry in %.1f s",
                        (long long)k->rpm, (long long)k->tpm, (long long)k->tenant_rpm, (long long)k->tenant_tpm,
                        (double)retry / 1000.0);
            fn(ud, 0, &e, retry > 0 ? retry : 1);
            return;
        }
    }
    struct admit_job *j = kz_calloc(1, sizeof *j);
    if (!j) {
        rl_undo(m);
        kz_api_fail(&e, 503, "server_error", NULL, NULL, "out of memory");
        fn(ud, 0, &e, 1000);
        return;
    }
    j->w.data = j;
    j->m = m;
    j->fn = fn;
    j->ud = ud;
    m->waiting = 1;
    if (uv_queue_work(t->loop, &j->w, reserve_work, reserve_done) != 0) {
        m->waiting = 0;
        kz_free(j);
        rl_undo(m);
        kz_api_fail(&e, 503, "server_error", NULL, NULL, "cannot queue the reservation");
        fn(ud, 0, &e, 1000);
    }
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

/* ---- settlement ------------------------------------------------------------------------ */

struct settle_job {
    struct kz_tenancy *t;
    kz_settled_fn fn;
    void *ud;
    kz_status rc;
    char msg[KZ_ERR_MSG_SIZE];
};

static void settled_on_loop(void *arg)
{
    struct settle_job *j = arg;
    if (j->fn)
        j->fn(j->ud, j->rc, j->msg);
    kz_free(j);
}

/* On the writer thread. */
static void on_settled(void *ud, kz_status rc, const struct kz_err *err, const struct kz_ledger_usage *stored,
                       int duplicate)
{
    (void)stored;
    (void)duplicate; /* a retry of a recorded request: recorded once, which is what counts */
    struct settle_job *j = ud;
    j->rc = rc;
    if (rc)
        snprintf(j->msg, sizeof j->msg, "%s", err && err->msg[0] ? err->msg : "ledger: settle failed");
    if (!j->fn || kz_http_server_post(j->t->http, settled_on_loop, j) != KZ_OK)
        kz_free(j); /* nobody waits, or the server is gone */
}

void kz_tenancy_settle(struct kz_meter *m, const struct kz_ledger_usage *u0, kz_settled_fn fn, void *ud)
{
    if (!m->active) {
        if (fn)
            fn(ud, KZ_OK, "");
        return;
    }
    m->active = 0;
    struct kz_tenancy *t = m->t;
    struct kz_ledger_usage u = *u0;
    snprintf(u.request_id, sizeof u.request_id, "%s", m->request_id);
    u.tenant_id = m->tenant_id;
    u.key_id = m->key_id;
    u.started_ms = m->started_ms;
    u.finished_ms = wall_ms();
    if (u.finished_ms < u.started_ms)
        u.finished_ms = u.started_ms;
    u.latency_ms = u.finished_ms - u.started_ms;
    if (m->n_owners)
        kz_rl_settle(t->rl, m->owners, m->n_owners, m->admitted_ms, m->est_tokens,
                     u.input_tokens + u.output_tokens, u.finished_ms);
    struct settle_job *j = kz_calloc(1, sizeof *j);
    struct kz_err err = {{0}};
    kz_status rc = j ? KZ_OK : kz_err_set(&err, KZ_ENOMEM, "out of memory");
    if (j) {
        j->t = t;
        j->fn = fn;
        j->ud = ud;
        rc = kz_ledger_writer_submit(t->writer, m->reservation, &u, on_settled, j, &err);
        if (rc)
            kz_free(j);
    }
    if (rc && fn)
        fn(ud, rc, err.msg);
}
