/* SPDX-License-Identifier: MIT
 * The OpenAI-compatible server over the router (see serve.h).
 *
 * serve.c owns the process-level pieces: the loop and HTTP server, the
 * configuration (a file, or one synthesized from -m for a single local
 * model), the router, one runtime provider per configured provider, the
 * upstream HTTP client and active health checks. Generation requests go to
 * call.c; the small routes (/health, /metrics, /v1/models, /v1/providers)
 * are answered here.
 */
#include "api/serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "api/gateway.h"
#include "api/openai.h"
#include "api/routes.h"
#include "core/alloc.h"
#include "router/local.h"
#include "router/remote.h"
#include "router/report.h"

struct server {
    struct kz_gateway gw;
    struct kz_serve_opts o;
    int synthesized;         /* the config came from -m: a failed load ends the server */
    int n_loading;           /* local providers still loading */
    uv_timer_t health_timer;
    uv_signal_t hup;         /* SIGHUP: reload the configuration */
    kz_status exit_status;
    char exit_msg[KZ_ERR_MSG_SIZE];
};

static const char *const routes[] = {"/health", "/metrics", "/v1/models", "/v1/models/{id}", "/v1/chat/completions",
                                     "/v1/completions", "/v1/embeddings", "/v1/providers", "other"};

static double since_s(uint64_t t0) { return (double)(uv_hrtime() - t0) * 1e-9; }

static void send_json(struct server *s, struct kz_http_res *res, const char *route, uint64_t t0, int status,
                      char *body /* kz_free'd here */)
{
    if (!body) {
        kz_http_res_send_error(res, 503, "server_error", NULL, "out of memory");
        kz_metrics_request(s->gw.metrics, route, 503, since_s(t0));
        return;
    }
    kz_http_res_send(res, status, "application/json", body, strlen(body));
    kz_free(body);
    kz_metrics_request(s->gw.metrics, route, status, since_s(t0));
}

static void send_error(struct server *s, struct kz_http_res *res, const char *route, uint64_t t0,
                       const struct kz_api_error *e)
{
    if (e->status == 503 || e->status == 429)
        kz_http_res_add_header(res, "Retry-After", "1");
    send_json(s, res, route, t0, e->status, kz_api_error_json(e));
}

/* Text for /metrics: the server's own series, the engine's, the router's. */
static char *metrics_text(struct server *s)
{
    struct kz_sched_stats st;
    struct kz_sched *sched = s->gw.local ? kz_local_sched(s->gw.local) : NULL;
    if (sched)
        kz_sched_get_stats(sched, &st);
    char *a = kz_metrics_render(s->gw.metrics, sched ? &st : NULL);
    char *b = kz_router_metrics(s->gw.gen->router, uv_now(s->gw.loop));
    char *out = NULL;
    if (a && b) {
        size_t na = strlen(a), nb = strlen(b);
        out = kz_malloc(na + nb + 1);
        if (out) {
            memcpy(out, a, na);
            memcpy(out + na, b, nb + 1);
        }
    }
    kz_free(a);
    kz_free(b);
    return out;
}

static void route_request(struct server *s, const struct kz_principal *pr, struct kz_http_req *req,
                          struct kz_http_res *res, uint64_t t0);

/* /v1 and /admin need a key once any exists (tenancy.h). */
static void handler(void *user, struct kz_http_req *req, struct kz_http_res *res)
{
    struct server *s = user;
    uint64_t t0 = uv_hrtime();
    struct kz_slice p = kz_http_req_path(req);
    struct kz_principal pr;
    memset(&pr, 0, sizeof pr);
    pr.open = 1;
    enum kz_route_auth need = kz_route_auth_of(p);
    if (need != KZ_AUTH_PUBLIC) {
        struct kz_api_error e;
        if (kz_tenancy_auth(s->gw.tenancy, req, &pr, &e)) {
            send_error(s, res, routes[8], t0, &e);
            return;
        }
        if (need == KZ_AUTH_ADMIN && !pr.open && !pr.key.admin) {
            kz_api_fail(&e, 403, "permission_error", "admin_required", NULL, "this route needs an admin API key");
            send_error(s, res, routes[8], t0, &e);
            kz_principal_free(&pr);
            return;
        }
    }
    route_request(s, &pr, req, res, t0);
    kz_principal_free(&pr);
}

static void route_request(struct server *s, const struct kz_principal *pr, struct kz_http_req *req,
                          struct kz_http_res *res, uint64_t t0)
{
    const struct kz_config *cfg = s->gw.gen->cfg;
    struct kz_slice m = kz_http_req_method(req), p = kz_http_req_path(req);
    int get = kz_slice_eq(m, "GET") || kz_slice_eq(m, "HEAD"), post = kz_slice_eq(m, "POST");
    struct kz_api_error e;
    const char *route = routes[8], *gen_route = NULL;
    int loading = s->n_loading > 0;
    if (kz_slice_eq(p, "/health")) {
        route = routes[0];
        if (!get)
            goto method;
        send_json(s, res, route, t0, loading ? 503 : 200,
                  kz_strdup(loading ? "{\"status\":\"loading\"}" : "{\"status\":\"ok\"}"));
        return;
    }
    if (kz_slice_eq(p, "/metrics")) {
        route = routes[1];
        if (!get)
            goto method;
        char *text = metrics_text(s);
        if (!text) {
            kz_http_res_send_error(res, 503, NULL, NULL, "out of memory");
            return;
        }
        kz_http_res_send(res, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
        kz_free(text);
        kz_metrics_request(s->gw.metrics, route, 200, since_s(t0));
        return;
    }
    if (p.len >= 6 && memcmp(p.p, "/admin", 6) == 0 && (p.len == 6 || p.p[6] == '/')) {
        kz_admin_handle(&s->gw, pr, req, res, t0);
        return;
    }
    if (kz_slice_eq(p, "/v1/usage")) {
        if (!get) {
            route = "/v1/usage";
            goto method;
        }
        kz_usage_handle(&s->gw, pr, req, res, t0);
        return;
    }
    enum kz_api_kind kind = KZ_API_CHAT;
    if (kz_slice_eq(p, "/v1/chat/completions")) {
        gen_route = routes[4];
    } else if (kz_slice_eq(p, "/v1/completions")) {
        gen_route = routes[5];
        kind = KZ_API_COMPLETION;
    } else if (kz_slice_eq(p, "/v1/embeddings")) {
        gen_route = routes[6];
        kind = KZ_API_EMBEDDINGS;
    }
    int is_models = kz_slice_eq(p, "/v1/models");
    int is_model = p.len > 11 && memcmp(p.p, "/v1/models/", 11) == 0;
    int is_providers = kz_slice_eq(p, "/v1/providers");
    if (!gen_route && !is_models && !is_model && !is_providers) {
        kz_api_fail(&e, 404, "invalid_request_error", "unknown_url", NULL, "Unknown route: %.*s %.*s", (int)m.len, m.p,
                    (int)(p.len > 200 ? 200 : p.len), p.p);
        send_error(s, res, route, t0, &e);
        return;
    }
    route = gen_route ? gen_route : is_models ? routes[2] : is_model ? routes[3] : routes[7];
    if ((gen_route && !post) || (!gen_route && !get))
        goto method;
    if (is_providers) { /* admin only: the route table's rule, checked in handler() */
        send_json(s, res, route, t0, 200, kz_router_providers_json(s->gw.gen->router, uv_now(s->gw.loop)));
        return;
    }
    if (loading && s->synthesized) {
        /* one local model and nothing else to answer with yet */
        kz_api_fail(&e, 503, "server_error", "model_loading", NULL, "the model is still loading; retry shortly");
        send_error(s, res, route, t0, &e);
        return;
    }
    if (is_models) {
        const char **ids = kz_calloc(cfg->n_models ? cfg->n_models : 1, sizeof *ids);
        size_t n = 0;
        for (size_t i = 0; ids && i < cfg->n_models; i++)
            if (pr->open || kz_keys_allows_model(&pr->key, cfg->models[i].name))
                ids[n++] = cfg->models[i].name;
        send_json(s, res, route, t0, 200, ids ? kz_api_models_response(n, ids, s->gw.created) : NULL);
        kz_free(ids);
        return;
    }
    if (is_model) {
        char name[256];
        size_t n = p.len - 11;
        snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name - 1 ? n : sizeof name - 1), p.p + 11);
        if (n >= sizeof name || !kz_config_model(cfg, name) || (!pr->open && !kz_keys_allows_model(&pr->key, name))) {
            kz_api_fail(&e, 404, "invalid_request_error", "model_not_found", "model", "The model '%.*s' does not exist",
                        (int)(n > 200 ? 200 : n), p.p + 11);
            send_error(s, res, route, t0, &e);
            return;
        }
        send_json(s, res, route, t0, 200, kz_api_model_response(name, s->gw.created));
        return;
    }
    kz_call_handle(&s->gw, pr, req, res, kind, route, t0);
    return;
method:
    kz_http_res_add_header(res, "Allow", gen_route ? "POST" : "GET, HEAD");
    kz_api_fail(&e, 405, "invalid_request_error", "method_not_allowed", NULL, "Method %.*s is not allowed here",
                (int)m.len, m.p);
    send_error(s, res, route, t0, &e);
}

/* ---- providers -------------------------------------------------------------------------- */

static int post_to_loop(void *ud, void (*fn)(void *), void *arg)
{
    return kz_http_server_post(ud, fn, arg) != KZ_OK;
}

static void on_loaded(void *ud, kz_status rc, const char *msg)
{
    struct server *s = ud;
    s->n_loading--;
    if (!rc) {
        fprintf(stderr, "kyozon: local model ready\n");
        return;
    }
    if (s->synthesized) {
        s->exit_status = KZ_EPROTO;
        snprintf(s->exit_msg, sizeof s->exit_msg, "%s", msg);
        kz_http_server_stop(s->gw.http);
        return;
    }
    /* other providers can still answer; local-only requests get 503 */
    fprintf(stderr, "kyozon: the local provider failed to load: %s\n", msg);
}

/* One runtime provider per configured one. The local provider is created
 * once and shared by later generations (a reload does not reload the
 * model): it only follows the new configuration's name for it. */
static kz_status make_providers(struct server *s, struct kz_gen *g, struct kz_err *err)
{
    const struct kz_config *cfg = g->cfg;
    g->providers = kz_calloc(cfg->n_providers ? cfg->n_providers : 1, sizeof *g->providers);
    if (!g->providers)
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const struct kz_cfg_provider *cp = &cfg->providers[i];
        kz_status rc = KZ_OK;
        if (cp->type == KZ_PROV_LOCAL && s->gw.local) {
            if (strcmp(kz_local_model_path(s->gw.local), cp->model_path) != 0)
                fprintf(stderr, "kyozon: the local model changes only with a restart; still serving %s\n",
                        kz_local_model_path(s->gw.local));
            s->gw.local->cfg = cp;
            g->providers[i] = s->gw.local;
        } else if (cp->type == KZ_PROV_LOCAL) {
            struct kz_local_opts lo = {.model_path = cp->model_path, .n_parallel = cp->n_parallel, .n_ctx = cp->n_ctx,
                                       .n_threads = cp->n_threads, .max_queue = s->o.max_queue,
                                       .kv_type = cp->kv_f32 ? "f32" : "f16",
                                       .post = post_to_loop, .post_ud = s->gw.http, .on_loaded = on_loaded, .ud = s};
            rc = kz_local_new(cp, &lo, s->gw.loop, &g->providers[i], err);
            if (!rc) {
                s->gw.local = g->providers[i];
                s->n_loading++;
            }
        } else {
            rc = kz_remote_new(cp, s->gw.up, &g->providers[i], err);
        }
        if (rc)
            return rc;
    }
    return KZ_OK;
}

void kz_gen_release(struct kz_gen *g)
{
    if (!g || --g->refs > 0)
        return;
    for (size_t i = 0; g->providers && i < g->cfg->n_providers; i++)
        if (g->providers[i] && g->cfg->providers[i].type != KZ_PROV_LOCAL) /* the local one is the gateway's */
            g->providers[i]->ops->free(g->providers[i]);
    kz_free(g->providers);
    kz_router_free(g->router);
    kz_config_free(g->cfg);
    kz_free(g);
}

/* A generation for cfg (taken over, also on failure). */
static kz_status make_gen(struct server *s, struct kz_config *cfg, struct kz_gen **out, struct kz_err *err)
{
    struct kz_gen *g = kz_calloc(1, sizeof *g);
    if (!g) {
        kz_config_free(cfg);
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    }
    g->refs = 1;
    g->cfg = cfg;
    kz_status rc = kz_router_new(cfg, (uint64_t)uv_hrtime(), &g->router, err);
    if (!rc)
        rc = make_providers(s, g, err);
    if (rc) {
        kz_gen_release(g);
        return rc;
    }
    *out = g;
    return KZ_OK;
}

/* SIGHUP: a new configuration for new requests; those in flight finish on
 * the one they started with. A file that does not load changes nothing. */
static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    struct server *s = h->data;
    struct kz_config *cfg;
    struct kz_gen *g;
    struct kz_err err = {{0}};
    if (s->synthesized) {
        fprintf(stderr, "kyozon: SIGHUP ignored: no configuration file (started with -m)\n");
        return;
    }
    if (kz_config_load(s->o.config_path, &cfg, &err) != KZ_OK || make_gen(s, cfg, &g, &err) != KZ_OK) {
        fprintf(stderr, "kyozon: configuration not reloaded: %s\n", err.msg);
        return;
    }
    kz_gen_release(s->gw.gen);
    s->gw.gen = g;
    fprintf(stderr, "kyozon: configuration reloaded from %s (%zu providers, %zu models)\n", s->o.config_path,
            g->cfg->n_providers, g->cfg->n_models);
}

struct check_ctx {
    struct server *s;
    struct kz_gen *gen; /* a reference */
    size_t provider;
};

static void check_done(void *ud, int ok)
{
    struct check_ctx *k = ud;
    if (k->gen == k->s->gw.gen) /* results for a replaced configuration are dropped */
        kz_router_check_result(k->gen->router, k->provider, ok, uv_now(k->s->gw.loop));
    kz_gen_release(k->gen);
    kz_free(k);
}

static void on_health_timer(uv_timer_t *t)
{
    struct server *s = t->data;
    struct kz_gen *g = s->gw.gen;
    for (size_t i = 0; i < g->cfg->n_providers; i++) {
        struct kz_provider *p = g->providers[i];
        struct check_ctx *k = p && p->ops->check ? kz_malloc(sizeof *k) : NULL;
        if (!k)
            continue;
        k->s = s;
        k->gen = g;
        g->refs++;
        k->provider = i;
        p->ops->check(p, check_done, k);
    }
}

/* ---- configuration ---------------------------------------------------------------------- */

/* A YAML double-quoted scalar. */
static void yq(char *out, size_t size, const char *v)
{
    size_t k = 0;
    out[k++] = '"';
    for (; *v && k + 3 < size; v++) {
        if (*v == '"' || *v == '\\')
            out[k++] = '\\';
        out[k++] = *v;
    }
    out[k++] = '"';
    out[k] = '\0';
}

/* `serve -m FILE`: one local provider, one model, no retries. */
static kz_status synthesize(const struct kz_serve_opts *o, struct kz_config **out, struct kz_err *err)
{
    char name[300], path[8300], qname[620], qpath[16700];
    if (o->model_name) {
        snprintf(name, sizeof name, "%s", o->model_name);
    } else {
        const char *b = strrchr(o->model_path, '/');
        snprintf(name, sizeof name, "%s", b ? b + 1 : o->model_path);
        size_t n = strlen(name);
        if (n > 5 && strcmp(name + n - 5, ".gguf") == 0)
            name[n - 5] = '\0';
    }
    snprintf(path, sizeof path, "%s", o->model_path);
    yq(qname, sizeof qname, name);
    yq(qpath, sizeof qpath, path);
    size_t cap = strlen(qname) + strlen(qpath) + 512;
    char *y = kz_malloc(cap);
    if (!y)
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    int n = snprintf(y, cap, "providers:\n  - name: local\n    type: local\n    model_path: %s\n", qpath);
    if (o->n_parallel > 0)
        n += snprintf(y + n, cap - (size_t)n, "    n_parallel: %d\n", o->n_parallel);
    if (o->n_ctx > 0)
        n += snprintf(y + n, cap - (size_t)n, "    n_ctx: %d\n", o->n_ctx);
    if (o->n_threads > 0)
        n += snprintf(y + n, cap - (size_t)n, "    n_threads: %d\n", o->n_threads);
    if (o->kv_f32)
        n += snprintf(y + n, cap - (size_t)n, "    kv_type: f32\n");
    snprintf(y + n, cap - (size_t)n, "models:\n  - name: %s\n    deployments:\n      - {provider: local}\n"
                                     "router:\n  max_attempts: 1\n",
             qname);
    kz_status rc = kz_config_parse(y, strlen(y), "kyozon serve", out, err);
    kz_free(y);
    return rc;
}

/* ---- running ---------------------------------------------------------------------------- */

static int is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0 || strncmp(host, "127.", 4) == 0;
}

kz_status kz_serve_run(const struct kz_serve_opts *opts, struct kz_err *err)
{
    struct server *s = kz_calloc(1, sizeof *s);
    if (!s)
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    s->o = *opts;
    s->gw.created = (long)time(NULL);
    struct kz_config *cfg0;
    kz_status rc;
    if (opts->config_path) {
        rc = kz_config_load(opts->config_path, &cfg0, err);
    } else {
        s->synthesized = 1;
        rc = synthesize(opts, &cfg0, err);
    }
    if (rc) {
        kz_free(s);
        return rc;
    }
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        kz_config_free(cfg0);
        kz_free(s);
        return kz_err_set(err, KZ_EIO, "cannot create the event loop");
    }
    s->gw.loop = &loop;
    uv_timer_init(&loop, &s->health_timer);
    s->health_timer.data = s;
    uv_signal_init(&loop, &s->hup);
    s->hup.data = s;
    s->gw.metrics = kz_metrics_new();
    struct kz_http_config hc;
    kz_http_config_default(&hc);
    hc.host = opts->host ? opts->host : cfg0->server.host ? cfg0->server.host : "127.0.0.1";
    hc.port = opts->port >= 0 ? opts->port : cfg0->server.port;
    hc.max_body = opts->max_body ? opts->max_body : cfg0->server.max_body ? cfg0->server.max_body : hc.max_body;
    hc.max_connections_per_ip = (unsigned)cfg0->server.max_connections_per_ip;
    unsigned drain = opts->drain_ms ? opts->drain_ms : cfg0->server.drain_ms ? cfg0->server.drain_ms : 10000;
    rc = s->gw.metrics ? KZ_OK : kz_err_set(err, KZ_ENOMEM, "out of memory");
    if (!rc)
        rc = kz_upstream_new(&loop, &s->gw.up, err);
    if (!rc)
        rc = kz_http_server_new(&loop, &hc, handler, s, &s->gw.http, err);
    const char *db = opts->db ? opts->db : cfg0->ledger;
    char shown[1024] = "PATH"; /* the ledger as it may be printed: no password */
    if (db)
        kz_ledger_redact(db, shown, sizeof shown);
    if (!rc && db)
        rc = kz_tenancy_open(db, opts->journal, &loop, s->gw.http, &s->gw.tenancy, err);
    int keys = kz_tenancy_has_keys(s->gw.tenancy);
    if (!rc && !keys && !is_loopback(hc.host) && !opts->insecure)
        rc = kz_err_set(err, KZ_EINVAL,
                        "refusing to serve %s without API keys: anyone who can reach it could use it. Create a key "
                        "('kyozon keys create --db %s --tenant NAME'), bind 127.0.0.1, or pass --insecure",
                        hc.host, shown);
    if (!rc)
        rc = kz_http_server_listen(s->gw.http, err);
    if (!rc)
        rc = kz_http_server_handle_signals(s->gw.http, drain, err);
    if (!rc)
        rc = make_gen(s, cfg0, &s->gw.gen, err);
    else
        kz_config_free(cfg0);
    if (rc)
        goto out;
    const struct kz_config *cfg = s->gw.gen->cfg;
    if (s->synthesized)
        fprintf(stderr, "kyozon: listening on http://%s:%d (model '%s' loading from %s)\n", hc.host,
                kz_http_server_port(s->gw.http), cfg->models[0].name, opts->model_path);
    else
        fprintf(stderr, "kyozon: listening on http://%s:%d (%zu providers, %zu models from %s)\n", hc.host,
                kz_http_server_port(s->gw.http), cfg->n_providers, cfg->n_models, opts->config_path);
    if (!keys)
        fprintf(stderr, "kyozon: no API keys%s: open to anyone who can connect%s\n",
                db ? "" : " (no ledger: --db PATH keeps keys and usage)",
                is_loopback(hc.host) ? " (loopback only)" : " (--insecure)");
    else
        fprintf(stderr, "kyozon: API keys required (ledger %s)\n", shown);
    /* neither keeps the server running: the HTTP server does */
    if (cfg->router.health_interval_ms) {
        uv_timer_start(&s->health_timer, on_health_timer, cfg->router.health_interval_ms,
                       cfg->router.health_interval_ms);
        uv_unref((uv_handle_t *)&s->health_timer);
    }
    if (uv_signal_start(&s->hup, on_sighup, SIGHUP) == 0)
        uv_unref((uv_handle_t *)&s->hup);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (s->exit_status)
        rc = kz_err_set(err, s->exit_status, "%s", s->exit_msg);
out:
    uv_timer_stop(&s->health_timer);
    uv_close((uv_handle_t *)&s->health_timer, NULL);
    uv_signal_stop(&s->hup);
    uv_close((uv_handle_t *)&s->hup, NULL);
    /* The local engine first: the scheduler ends its jobs (their posts run
     * inline now); then the configuration and remote providers; then the
     * upstream client ends what is left (health checks answer "failed"),
     * then the server. */
    if (s->gw.local)
        s->gw.local->ops->free(s->gw.local);
    kz_gen_release(s->gw.gen);
    kz_upstream_free(s->gw.up);
    /* before the server: the ledger writer's last callbacks post to it */
    kz_tenancy_close(s->gw.tenancy);
    kz_http_server_free(s->gw.http);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    kz_metrics_free(s->gw.metrics);
    kz_free(s);
    return rc;
}
