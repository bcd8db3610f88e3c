/* SPDX-License-Identifier: MIT
 * One client request served through the router (see gateway.h).
 *
 * A call runs attempts one at a time: the router picks a deployment, its
 * provider answers with events, and the events become the client's answer.
 * The promise to the client (DESIGN.md, "streaming failover"):
 *   - before any content reached the client, a failed attempt is retried on
 *     another deployment (within max_attempts, the retry budget and the
 *     deadline), after a backoff with full jitter; the client never sees it;
 *   - after content was sent, a failure ends the stream with an error event
 *     (data: {"error":...}), the usage so far when it was asked for, and
 *     [DONE]: a truncated answer never ends like a complete one;
 *   - a non-streamed answer is only sent once complete, so any failure
 *     before that can still be retried.
 * While a stream waits for its first content (a slow provider, retries), a
 * keep-alive comment goes out every 15 s so proxies do not cut it.
 *
 * Lifetime: the call lives until the response is finished (or the client
 * left) and no attempt is running; then its timers close and it is freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/gateway.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/fmt.h"

#define KEEPALIVE_MS 15000
#define MAX_TEXT (64u << 20) /* one non-streamed answer */

struct choice {
    struct kz_buf text;
    const char *finish;
};

struct call {
    struct kz_gateway *gw;
    struct kz_gen *gen; /* the configuration this request started with (a reference) */
    struct kz_http_res *res; /* NULL once the response ended or the client left */
    struct kz_api_request r;
    const char *route;
    uint64_t t0_ns;
    size_t model;
    struct kz_route_hints hints;
    struct kz_route_state rs;
    int attempts;
    /* the attempt running now */
    struct kz_provider *prov;
    struct kz_attempt *att;
    size_t am, ad;
    uint64_t att_t0_ms;
    double ttft_ms;
    struct kz_attempt_result last;
    int have_last;
    uint64_t deadline_ms;
    uint64_t no_dep_retry_ms;
    /* the client's answer */
    char id[64];
    long created;
    int head_sent, content_sent, ended;
    size_t n_choices;
    struct choice *choices;
    float **vecs;
    size_t *dims;
    long prompt_tokens, completion_tokens, n_text;
    int have_usage;
    const char *served_by;
    int counted;       /* kz_router_request_begin was called */
    int holding_retry; /* a place in the retry budget is ours */
    int budget_waits;  /* times a retry waited for the budget */
    uv_timer_t retry_timer, deadline_timer, keepalive_timer;
    int closing;
    int admitting;     /* the ledger is deciding on admission: c stays (on_admit) */
    /* tenancy: the meter from admission to settlement */
    struct kz_meter meter;
};

static double since_s(uint64_t t0) { return (double)(uv_hrtime() - t0) * 1e-9; }
static uint64_t now_ms(const struct call *c) { return uv_now(c->gw->loop); }

static void try_next(struct call *c);
static void on_admit(void *ud, int refused, const struct kz_api_error *e, long retry_after_ms);
static void admitted(struct call *c);

/* ---- lifetime --------------------------------------------------------------------- */

static void reset_answer(struct call *c)
{
    for (size_t i = 0; i < c->n_choices; i++) {
        c->choices[i].text.len = 0;
        c->choices[i].finish = NULL;
        kz_free(c->vecs[i]);
        c->vecs[i] = NULL;
        c->dims[i] = 0;
    }
    c->prompt_tokens = c->completion_tokens = c->n_text = 0;
    c->have_usage = 0;
}

static void call_closed(uv_handle_t *h)
{
    struct call *c = h->data;
    if (--c->closing)
        return;
    for (size_t i = 0; i < c->n_choices; i++) {
        kz_buf_free(&c->choices[i].text);
        if (c->vecs)
            kz_free(c->vecs[i]);
    }
    kz_free(c->choices);
    kz_free(c->vecs);
    kz_free(c->dims);
    kz_api_request_free(&c->r);
    c->gw->n_calls--;
    kz_gen_release(c->gen);
    kz_free(c);
}

static void release_retry(struct call *c)
{
    if (c->holding_retry)
        kz_router_retry_end(c->gen->router);
    c->holding_retry = 0;
}

static void maybe_free(struct call *c)
{
    if (c->res || c->att || c->closing || c->admitting)
        return;
    release_retry(c);
    if (c->counted)
        kz_router_request_end(c->gen->router);
    c->counted = 0;
    c->closing = 3;
    uv_close((uv_handle_t *)&c->retry_timer, call_closed);
    uv_close((uv_handle_t *)&c->deadline_timer, call_closed);
    uv_close((uv_handle_t *)&c->keepalive_timer, call_closed);
}

/* ---- writing the answer -------------------------------------------------------------- */

static void write_ev(struct call *c, char *ev /* kz_free'd here */)
{
    if (ev && c->res)
        kz_http_res_write(c->res, ev, strlen(ev), NULL);
    kz_free(ev);
}

static void routing_headers(struct call *c)
{
    char n[KZ_FMT_INT_SIZE];
    kz_fmt_i64(n, c->attempts);
    kz_http_res_add_header(c->res, "x-request-id", c->id);
    if (c->served_by)
        kz_http_res_add_header(c->res, "x-kyozon-provider", c->served_by);
    kz_http_res_add_header(c->res, "x-kyozon-attempts", n);
    kz_tenancy_headers(&c->meter, c->res);
}

static void ensure_head(struct call *c)
{
    if (c->head_sent || !c->res)
        return;
    c->head_sent = 1;
    routing_headers(c);
    kz_http_res_sse_start(c->res, 200);
    if (c->r.kind == KZ_API_CHAT)
        write_ev(c, kz_api_chat_chunk(c->id, c->created, c->r.model, "assistant", "", 0, NULL, c->r.include_usage));
}

static kz_status settle_now(struct call *c, int status, char *msg, size_t size);

static void end_response(struct call *c, int status)
{
    /* a failure, or a client that left: recorded with what it used so far,
     * nobody waits for the record */
    settle_now(c, status, NULL, 0);
    kz_metrics_request(c->gw->metrics, c->route, status, since_s(c->t0_ns));
    c->res = NULL;
    c->ended = 1;
    uv_timer_stop(&c->keepalive_timer);
    uv_timer_stop(&c->deadline_timer);
    uv_timer_stop(&c->retry_timer);
}

static void send_json(struct call *c, int status, char *body /* kz_free'd here */)
{
    if (!body) {
        kz_http_res_send_error(c->res, 503, "server_error", NULL, "out of memory");
        end_response(c, 503);
        return;
    }
    kz_http_res_send(c->res, status, "application/json", body, strlen(body));
    kz_free(body);
    end_response(c, status);
}

static struct kz_api_usage usage_now(const struct call *c)
{
    struct kz_api_usage u = {c->prompt_tokens > 0 ? c->prompt_tokens : 0,
                             c->completion_tokens >= 0 && c->have_usage ? c->completion_tokens : c->n_text};
    return u;
}

static int64_t dep_cost(const struct call *c, long in, long out)
{
    if (!c->served_by)
        return 0;
    const struct kz_cfg_deployment *d = &c->gen->cfg->models[c->am].deployments[c->ad];
    return d->has_price ? kz_price_cost(&d->price, in, out) : 0;
}

/* The ledger record of this request (see tenancy.h); a no-op for requests
 * that are not metered or already settled. */
static kz_status settle_now(struct call *c, int status, char *msg, size_t size)
{
    if (!c->meter.active)
        return KZ_OK; /* what kz_tenancy_settle would say, without building the record first */
    struct kz_api_usage u = usage_now(c);
    struct kz_ledger_usage rec;
    memset(&rec, 0, sizeof rec);
    kz_fmt_copy(rec.model, sizeof rec.model, c->r.model ? c->r.model : "");
    if (c->served_by) {
        const char *dm = c->gen->cfg->models[c->am].deployments[c->ad].model;
        kz_fmt_copy(rec.provider, sizeof rec.provider, c->served_by);
        kz_fmt_copy(rec.deployment, sizeof rec.deployment, dm ? dm : "");
    }
    rec.input_tokens = u.prompt_tokens;
    rec.output_tokens = u.completion_tokens;
    rec.cost = dep_cost(c, u.prompt_tokens, u.completion_tokens);
    rec.status = status;
    rec.ttft_ms = c->ttft_ms >= 0 ? (int64_t)c->ttft_ms : -1;
    return kz_tenancy_settle(&c->meter, &rec, msg, size);
}

/* The last word is a failure. */
static void fail_client(struct call *c, const struct kz_api_error *e, long retry_after_ms)
{
    if (!c->res)
        return;
    if (c->head_sent) {
        /* after the first byte: an explicit error event, never a clean end */
        write_ev(c, kz_api_error_event(e));
        if (c->r.include_usage) {
            struct kz_api_usage u = usage_now(c);
            write_ev(c, kz_api_usage_chunk(c->id, c->created, c->r.model, c->r.kind == KZ_API_CHAT, &u));
        }
        kz_http_res_write(c->res, "data: [DONE]\n\n", 14, NULL);
        kz_http_res_end(c->res);
        end_response(c, e->status);
        return;
    }
    if (e->status == 429 || e->status == 503 || retry_after_ms > 0) {
        char ra[24];
        long s = retry_after_ms > 0 ? (retry_after_ms + 999) / 1000 : 1;
        snprintf(ra, sizeof ra, "%ld", s);
        kz_http_res_add_header(c->res, "Retry-After", ra);
    }
    routing_headers(c);
    send_json(c, e->status, kz_api_error_json(e));
}

static void fail_with_result(struct call *c, const struct kz_attempt_result *res)
{
    struct kz_api_error e;
    kz_api_fail(&e, res->status ? res->status : 502, res->type ? res->type : "server_error", res->code, res->param,
                "%s", res->message);
    fail_client(c, &e, res->retry_after_ms);
}


static void send_success(struct call *c);

/* A complete answer is acknowledged only once its ledger record is durable;
 * never an answer the ledger will not hold. */
static void succeed(struct call *c)
{
    char msg[KZ_ERR_MSG_SIZE] = "";
    if (settle_now(c, 200, msg, sizeof msg) == KZ_OK) {
        send_success(c);
        return;
    }
    struct kz_api_error e;
    kz_api_fail(&e, 503, "server_error", "ledger_unavailable", NULL, "the usage could not be recorded: %s", msg);
    fail_client(c, &e, 1000);
}

static void send_success(struct call *c)
{
    struct kz_api_usage u = usage_now(c);
    kz_metrics_tokens(c->gw->metrics, u.prompt_tokens, u.completion_tokens);
    if (c->r.stream) {
        ensure_head(c);
        if (c->r.include_usage)
            write_ev(c, kz_api_usage_chunk(c->id, c->created, c->r.model, c->r.kind == KZ_API_CHAT, &u));
        kz_http_res_write(c->res, "data: [DONE]\n\n", 14, NULL);
        kz_http_res_end(c->res);
        end_response(c, 200);
        return;
    }
    routing_headers(c);
    char *body = NULL;
    if (c->r.kind == KZ_API_EMBEDDINGS) {
        size_t dim = c->dims[0];
        for (size_t i = 0; i < c->n_choices; i++)
            if (!c->vecs[i] || c->dims[i] != dim) {
                struct kz_api_error e;
                kz_api_fail(&e, 502, "server_error", "upstream_malformed", NULL,
                            "provider '%s' returned %s embedding for input %zu", c->served_by,
                            c->vecs[i] ? "a different-sized" : "no", i);
                send_json(c, 502, kz_api_error_json(&e));
                return;
            }
        float *all = kz_malloc(c->n_choices * dim * sizeof *all);
        if (all) {
            for (size_t i = 0; i < c->n_choices; i++)
                memcpy(all + i * dim, c->vecs[i], dim * sizeof *all);
            body = kz_api_embeddings_response(c->r.model, c->n_choices, dim, all, c->r.base64, u.prompt_tokens);
            kz_free(all);
        }
    } else if (c->r.kind == KZ_API_CHAT) {
        body = kz_api_chat_response(c->id, c->created, c->r.model, c->choices[0].text.p ? c->choices[0].text.p : "",
                                    c->choices[0].text.len,
                                    c->choices[0].finish ? c->choices[0].finish : KZ_FINISH_STOP, &u);
    } else {
        const char **texts = kz_calloc(c->n_choices, sizeof *texts);
        const char **fin = kz_calloc(c->n_choices, sizeof *fin);
        size_t *lens = kz_calloc(c->n_choices, sizeof *lens);
        if (texts && fin && lens) {
            for (size_t i = 0; i < c->n_choices; i++) {
                texts[i] = c->choices[i].text.p ? c->choices[i].text.p : "";
                lens[i] = c->choices[i].text.len;
                fin[i] = c->choices[i].finish ? c->choices[i].finish : KZ_FINISH_STOP;
            }
            body = kz_api_completion_response(c->id, c->created, c->r.model, c->n_choices, texts, lens, fin, &u);
        }
        kz_free(texts);
        kz_free(fin);
        kz_free(lens);
    }
    send_json(c, 200, body);
}

/* ---- attempt events ---------------------------------------------------------------- */

static int on_event(void *ud, const struct kz_ev *ev)
{
    struct call *c = ud;
    if (c->ttft_ms < 0 && (ev->type == KZ_EV_TEXT || ev->type == KZ_EV_FINISH || ev->type == KZ_EV_EMBEDDING)) {
        c->ttft_ms = (double)(now_ms(c) - c->att_t0_ms);
        kz_metrics_ttft(c->gw->metrics, since_s(c->t0_ns));
    }
    size_t idx = ev->index >= 0 ? (size_t)ev->index : 0;
    switch (ev->type) {
    case KZ_EV_TEXT:
        c->n_text++;
        if (idx >= c->n_choices)
            return 0; /* a choice we did not ask for */
        if (c->r.stream) {
            ensure_head(c);
            c->content_sent = 1;
            uv_timer_stop(&c->keepalive_timer);
            if (c->r.kind == KZ_API_CHAT)
                write_ev(c, kz_api_chat_chunk(c->id, c->created, c->r.model, NULL, ev->text, ev->len, NULL,
                                              c->r.include_usage));
            else
                write_ev(c, kz_api_completion_chunk(c->id, c->created, c->r.model, idx, ev->text, ev->len, NULL,
                                                    c->r.include_usage));
        } else if (kz_buf_append(&c->choices[idx].text, ev->text, ev->len, MAX_TEXT)) {
            return 1;
        }
        break;
    case KZ_EV_FINISH:
        if (idx >= c->n_choices)
            return 0;
        c->choices[idx].finish = ev->finish;
        if (c->r.stream) {
            ensure_head(c);
            c->content_sent = 1;
            if (c->r.kind == KZ_API_CHAT)
                write_ev(c, kz_api_chat_chunk(c->id, c->created, c->r.model, NULL, NULL, 0, ev->finish,
                                              c->r.include_usage));
            else
                write_ev(c, kz_api_completion_chunk(c->id, c->created, c->r.model, idx, "", 0, ev->finish,
                                                    c->r.include_usage));
        }
        break;
    case KZ_EV_USAGE:
        c->have_usage = 1;
        if (ev->prompt_tokens >= 0)
            c->prompt_tokens = ev->prompt_tokens;
        if (ev->completion_tokens >= 0)
            c->completion_tokens = ev->completion_tokens;
        break;
    case KZ_EV_EMBEDDING:
        if (idx < c->n_choices && !c->vecs[idx] && ev->dim > 0) {
            c->vecs[idx] = kz_malloc(ev->dim * sizeof(float));
            if (!c->vecs[idx])
                return 1;
            memcpy(c->vecs[idx], ev->vec, ev->dim * sizeof(float));
            c->dims[idx] = ev->dim;
        }
        break;
    case KZ_EV_ERROR:
        break; /* adapters end the attempt instead */
    }
    return 0;
}

static void on_retry_timer(uv_timer_t *t) { try_next(t->data); }

#define BUDGET_WAIT_MS 25
#define BUDGET_WAITS 20

/* The failed attempt may be retried, but the budget is full: wait a little
 * and ask again. By then the deployment may be ejected (when a provider
 * dies, all its requests in flight fail at once, and only the fifth
 * failure ejects it), or a retry may have ended. Bounded: retries in flight
 * stay within the budget, and after BUDGET_WAITS the client gets the
 * failure. */
static void on_budget_timer(uv_timer_t *t)
{
    struct call *c = t->data;
    uint64_t now = now_ms(c);
    if (c->res && now < c->deadline_ms &&
        kz_router_may_retry(c->gen->router, c->am, c->ad, now, &c->holding_retry)) {
        reset_answer(c);
        try_next(c);
        return;
    }
    if (c->res && ++c->budget_waits < BUDGET_WAITS && now < c->deadline_ms) {
        uv_timer_start(&c->retry_timer, on_budget_timer, BUDGET_WAIT_MS, 0);
        return;
    }
    fail_with_result(c, &c->last);
    maybe_free(c);
}

static void on_end(void *ud, const struct kz_attempt_result *res)
{
    struct call *c = ud;
    uint64_t now = now_ms(c);
    c->att = NULL;
    release_retry(c);
    struct kz_attempt_result partial;
    if (res->ok && c->r.kind != KZ_API_EMBEDDINGS) {
        /* every choice must have ended: a provider that skips a prompt did
         * not answer the request */
        size_t done = 0;
        for (size_t i = 0; i < c->n_choices; i++)
            done += c->choices[i].finish != NULL;
        if (done < c->n_choices) {
            kz_attempt_fail(&partial, KZ_OUT_FAIL, 1, 502, "server_error", "upstream_malformed",
                            "provider '%s' answered %zu of %zu prompts", c->served_by, done, c->n_choices);
            res = &partial;
        }
    }
    kz_router_end(c->gen->router, c->am, c->ad, res->ok ? KZ_OUT_OK : res->outcome, res->retry_after_ms, c->ttft_ms,
                  now);
    if (!c->res) { /* the client left meanwhile (cannot happen: abort cancels), or the deadline answered */
        maybe_free(c);
        return;
    }
    if (res->ok) {
        succeed(c);
        maybe_free(c);
        return;
    }
    c->last = *res;
    c->have_last = 1;
    const struct kz_cfg_router *rc = &c->gen->cfg->router;
    /* a request that never reached its provider costs nobody anything:
     * trying it elsewhere needs no place in the retry budget */
    if (!c->content_sent && res->retryable && c->attempts < rc->max_attempts && now < c->deadline_ms &&
        (res->unsent || kz_router_may_retry(c->gen->router, c->am, c->ad, now, &c->holding_retry))) {
        reset_answer(c);
        /* full jitter over an exponential ceiling (base, 2 base, ...) */
        uint64_t ceil = (uint64_t)rc->backoff_base_ms << (c->attempts - 1 < 10 ? c->attempts - 1 : 10);
        if (ceil > rc->backoff_max_ms)
            ceil = rc->backoff_max_ms;
        uint64_t x = uv_hrtime() * 0x9E3779B97F4A7C15ull; /* jitter needs spread, not quality */
        uint64_t delay = ceil ? (x >> 33) % (ceil + 1) : 0;
        uv_timer_start(&c->retry_timer, on_retry_timer, delay, 0);
        return;
    }
    if (!c->content_sent && res->retryable && c->attempts < rc->max_attempts && now < c->deadline_ms &&
        c->budget_waits < BUDGET_WAITS) {
        uv_timer_start(&c->retry_timer, on_budget_timer, BUDGET_WAIT_MS, 0);
        return;
    }
    if (c->content_sent) {
        struct kz_api_error e;
        kz_api_fail(&e, res->status ? res->status : 502, res->type ? res->type : "server_error", res->code, NULL,
                    "the answer broke off: %s", res->message);
        fail_client(c, &e, -1);
    } else {
        fail_with_result(c, res);
    }
    maybe_free(c);
}

static const struct kz_attempt_cbs attempt_cbs = {on_event, on_end};

static void try_next(struct call *c)
{
    struct kz_gen *gen = c->gen;
    const struct kz_config *cfg = gen->cfg;
    while (c->res) {
        uint64_t now = now_ms(c), ra = 0;
        size_t m, d;
        if (!kz_router_pick(gen->router, c->model, &c->hints, &c->rs, now, &m, &d, &ra)) {
            if (c->have_last) {
                fail_with_result(c, &c->last);
            } else {
                struct kz_api_error e;
                if (c->hints.ceiling == KZ_PRIVACY_LOCAL)
                    kz_api_fail(&e, 503, "server_error", "no_local_deployment", NULL,
                                "no local deployment of model '%s' is available; privacy tier local keeps this "
                                "request on this node",
                                c->r.model);
                else
                    kz_api_fail(&e, 503, "server_error", "no_deployment", NULL,
                                "no deployment of model '%s' is available now", c->r.model);
                fail_client(c, &e, (long)ra);
            }
            break;
        }
        const struct kz_cfg_deployment *dep = &cfg->models[m].deployments[d];
        c->prov = gen->providers[dep->provider];
        c->am = m;
        c->ad = d;
        c->attempts++;
        c->ttft_ms = -1;
        c->att_t0_ms = now;
        c->served_by = c->prov->cfg->name;
        kz_router_begin(gen->router, m, d, now);
        struct kz_attempt_result res;
        struct kz_attempt *a = NULL;
        if (c->prov->ops->start(c->prov, &c->r, dep->model, &attempt_cbs, c, &a, &res) == KZ_OK) {
            c->att = a;
            return;
        }
        /* failed to start: account for it like an attempt that failed at once */
        kz_router_end(gen->router, m, d, res.outcome, res.retry_after_ms, -1, now);
        c->last = res;
        c->have_last = 1;
        release_retry(c);
        if (!res.retryable || c->attempts >= cfg->router.max_attempts ||
            !kz_router_may_retry(gen->router, m, d, now, &c->holding_retry)) {
            fail_with_result(c, &res);
            break;
        }
    }
    maybe_free(c);
}

/* ---- timers and the client ---------------------------------------------------------- */

static void on_deadline(uv_timer_t *t)
{
    struct call *c = t->data;
    if (c->att) {
        c->prov->ops->cancel(c->att);
        c->att = NULL;
        kz_router_end(c->gen->router, c->am, c->ad, KZ_OUT_FAIL, -1, -1, now_ms(c));
    }
    uv_timer_stop(&c->retry_timer);
    struct kz_api_error e;
    kz_api_fail(&e, 504, "server_error", "deadline_exceeded", NULL, "no complete answer within %u ms",
                c->gen->cfg->router.deadline_ms);
    fail_client(c, &e, -1);
    maybe_free(c);
}

static void on_keepalive(uv_timer_t *t)
{
    struct call *c = t->data;
    if (!c->res || c->content_sent)
        return;
    ensure_head(c);
    kz_http_res_write(c->res, ": keep-alive\n\n", 14, NULL);
}

static void on_abort(struct kz_http_res *res, void *arg)
{
    (void)res;
    struct call *c = arg;
    if (c->att) {
        c->prov->ops->cancel(c->att);
        c->att = NULL;
        kz_router_end(c->gen->router, c->am, c->ad, KZ_OUT_NEUTRAL, -1, -1, now_ms(c));
    }
    end_response(c, 499); /* client closed */
    maybe_free(c);
}

/* x-kyozon-route and x-kyozon-privacy. */
static int read_hints(struct kz_http_req *req, struct kz_route_hints *h, struct kz_api_error *e,
                      const struct kz_principal *p)
{
    struct kz_slice v;
    h->ceiling = p->open ? KZ_PRIVACY_EXTERNAL : p->key.privacy; /* the key's ceiling applies unless asked lower */
    h->strategy = -1;
    if (kz_http_req_header(req, "x-kyozon-privacy", &v)) {
        if (kz_slice_eq(v, "local"))
            h->ceiling = KZ_PRIVACY_LOCAL;
        else if (kz_slice_eq(v, "private"))
            h->ceiling = KZ_PRIVACY_PRIVATE;
        else if (kz_slice_eq(v, "external"))
            h->ceiling = KZ_PRIVACY_EXTERNAL;
        else
            return kz_api_fail(e, 400, "invalid_request_error", NULL, NULL,
                               "x-kyozon-privacy must be local, private or external"),
                   -1;
        if (!p->open && h->ceiling > p->key.privacy)
            return kz_api_fail(e, 403, "permission_error", "privacy_not_allowed", NULL,
                               "this API key is limited to privacy tier '%s'", kz_privacy_name(p->key.privacy)),
                   -1;
    }
    if (kz_http_req_header(req, "x-kyozon-route", &v)) {
        if (kz_slice_eq(v, "cost"))
            h->strategy = KZ_STRAT_COST;
        else if (kz_slice_eq(v, "latency"))
            h->strategy = KZ_STRAT_LATENCY;
        else if (kz_slice_eq(v, "local-only"))
            h->ceiling = KZ_PRIVACY_LOCAL;
        else
            return kz_api_fail(e, 400, "invalid_request_error", NULL, NULL,
                               "x-kyozon-route must be cost, latency or local-only"),
                   -1;
    }
    return 0;
}

/* The most this request can cost: every prompt byte a token (no tokenizer
 * makes more tokens than bytes), max_tokens of output per choice (or
 * DEFAULT_MAX_OUTPUT when not given), at the dearest deployment of the model
 * and its fallbacks. *tokens gets the same token count for TPM. */
#define DEFAULT_MAX_OUTPUT 4096
static int64_t max_cost_of(const struct kz_config *cfg, const struct kz_cfg_model *cm, const struct kz_api_request *r,
                           size_t body_len, int64_t *tokens)
{
    long in = (long)(body_len < 100000000 ? body_len : 100000000);
    long out = r->kind == KZ_API_EMBEDDINGS ? 0 : (r->max_tokens >= 0 ? r->max_tokens : DEFAULT_MAX_OUTPUT);
    size_t n = r->kind == KZ_API_CHAT ? 1 : r->n_inputs;
    out *= (long)(n ? n : 1);
    *tokens = in + out;
    int64_t worst = 0;
    for (size_t k = 0; k <= cm->n_fallbacks; k++) {
        const struct kz_cfg_model *mm = k == 0 ? cm : &cfg->models[cm->fallbacks[k - 1]];
        for (size_t i = 0; i < mm->n_deployments; i++) {
            const struct kz_cfg_deployment *d = &mm->deployments[i];
            int64_t cost = d->has_price ? kz_price_cost(&d->price, in, out) : 0;
            worst = cost > worst ? cost : worst;
        }
    }
    return worst;
}

void kz_call_handle(struct kz_gateway *gw, const struct kz_principal *p, struct kz_http_req *req,
                    struct kz_http_res *res, enum kz_api_kind kind, const char *route, uint64_t t0_ns)
{
    struct kz_api_error e;
    size_t len;
    const char *body = kz_http_req_body(req, &len);
    struct call *c = kz_calloc(1, sizeof *c);
    if (!c) {
        kz_http_res_send_error(res, 503, "server_error", NULL, "out of memory");
        kz_metrics_request(gw->metrics, route, 503, since_s(t0_ns));
        return;
    }
    c->gw = gw;
    c->gen = gw->gen;
    c->gen->refs++;
    struct kz_gen *gen = c->gen;
    c->res = res;
    c->route = route;
    c->t0_ns = t0_ns;
    gw->n_calls++;
    uv_timer_init(gw->loop, &c->retry_timer);
    uv_timer_init(gw->loop, &c->deadline_timer);
    uv_timer_init(gw->loop, &c->keepalive_timer);
    c->retry_timer.data = c->deadline_timer.data = c->keepalive_timer.data = c;
    /* the client's connection keeps the loop running, not these */
    uv_unref((uv_handle_t *)&c->retry_timer);
    uv_unref((uv_handle_t *)&c->deadline_timer);
    uv_unref((uv_handle_t *)&c->keepalive_timer);
    kz_status rc = kz_api_request_decode(kind, body, len, &c->r, &e);
    const struct kz_cfg_model *cm = NULL;
    if (!rc) {
        cm = kz_config_model(gen->cfg, c->r.model);
        if (!cm)
            rc = kz_api_fail(&e, 404, "invalid_request_error", "model_not_found", "model",
                             "The model '%s' does not exist", c->r.model);
    }
    if (!rc && read_hints(req, &c->hints, &e, p))
        rc = KZ_EINVAL;
    c->hints.openai_only = kind != KZ_API_CHAT;
    c->n_choices = kind == KZ_API_CHAT ? 1 : c->r.n_inputs;
    if (!rc && c->n_choices > 0) {
        c->choices = kz_calloc(c->n_choices, sizeof *c->choices);
        c->vecs = kz_calloc(c->n_choices, sizeof *c->vecs);
        c->dims = kz_calloc(c->n_choices, sizeof *c->dims);
        if (!c->choices || !c->vecs || !c->dims)
            rc = kz_api_fail(&e, 503, "server_error", NULL, NULL, "out of memory");
    }
    if (rc) {
        c->n_choices = c->choices ? c->n_choices : 0;
        fail_client(c, &e, -1);
        maybe_free(c);
        return;
    }
    c->model = (size_t)(cm - gen->cfg->models);
    c->created = (long)time(NULL);
    kz_api_new_id(kind == KZ_API_CHAT ? "chatcmpl" : kind == KZ_API_COMPLETION ? "cmpl" : "embd", c->id, sizeof c->id);
    kz_http_res_on_abort(res, on_abort, c);
    char rid[KZ_LEDGER_ID_MAX];
    struct kz_slice ik;
    int explicit_id = kz_http_req_header(req, "idempotency-key", &ik);
    if (explicit_id) {
        int ok = ik.len > 0 && ik.len < 200;
        for (size_t i = 0; ok && i < ik.len; i++)
            ok = ik.p[i] > 0x20 && ik.p[i] < 0x7f;
        if (!ok) {
            kz_api_fail(&e, 400, "invalid_request_error", "invalid_idempotency_key", NULL,
                        "Idempotency-Key must be 1 to 199 printable ASCII characters without spaces");
            fail_client(c, &e, -1);
            maybe_free(c);
            return;
        }
        /* a client's key is its tenant's: the same key from another tenant
         * is another request (the ledger's ids are unique over all tenants) */
        if (p && !p->open)
            snprintf(rid, sizeof rid, "%lld:%.*s", (long long)p->key.tenant_id, (int)ik.len, ik.p);
        else
            snprintf(rid, sizeof rid, "%.*s", (int)ik.len, ik.p);
    } else {
        kz_fmt_copy(rid, sizeof rid, c->id);
    }
    int64_t est_tokens = 0;
    int64_t max_cost = max_cost_of(gen->cfg, cm, &c->r, len, &est_tokens);
    long retry_after_ms = 0;
    int adm = kz_tenancy_admit(gw->tenancy, p, c->r.model, max_cost, est_tokens, rid, explicit_id, &c->meter,
                               on_admit, c, &e, &retry_after_ms);
    if (adm < 0) {
        fail_client(c, &e, retry_after_ms);
        maybe_free(c);
        return;
    }
    if (adm > 0) {
        c->admitting = 1;
        return;
    }
    admitted(c);
}

/* The ledger's word on an admission it had to look up (tenancy.h). */
static void on_admit(void *ud, int refused, const struct kz_api_error *e, long retry_after_ms)
{
    struct call *c = ud;
    c->admitting = 0;
    if (refused)
        fail_client(c, e, retry_after_ms);
    else if (!c->res)
        settle_now(c, 499, NULL, 0); /* the client left meanwhile (answered 499 then): its hold ends now */
    else
        admitted(c);
    maybe_free(c);
}

/* Admitted: the request starts its attempts. */
static void admitted(struct call *c)
{
    struct kz_gen *gen = c->gen;
    uint64_t now = now_ms(c);
    c->deadline_ms = now + gen->cfg->router.deadline_ms;
    uv_timer_start(&c->deadline_timer, on_deadline, gen->cfg->router.deadline_ms, 0);
    if (c->r.stream)
        uv_timer_start(&c->keepalive_timer, on_keepalive, KEEPALIVE_MS, KEEPALIVE_MS);
    kz_router_request_begin(gen->router);
    c->counted = 1;
    try_next(c);
}
