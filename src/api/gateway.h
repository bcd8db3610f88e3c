/* SPDX-License-Identifier: MIT
 * What serving a request needs, gathered in one place: the loop and HTTP
 * server, the upstream HTTP client, the metrics, and the current
 * *generation*: a configuration with its router and one runtime provider
 * per configured provider. Built and owned by serve.c; read by call.c on the
 * loop thread.
 *
 * A configuration reload (SIGHUP) makes a new generation current; requests
 * in flight keep the one they started with (a reference each), and an old
 * generation is freed when its last request ends. The local provider (the
 * engine and its model) belongs to the gateway and is shared by every
 * generation: a reload does not reload the model.
 */
#ifndef KZ_GATEWAY_H
#define KZ_GATEWAY_H

#include <uv.h>

#include "http/http.h"
#include "obs/metrics.h"
#include "router/config.h"
#include "router/provider.h"
#include "router/router.h"
#include "router/upstream.h"
#include "tenancy/tenancy.h"

struct kz_gen {
    int refs;                       /* the gateway's (while current) + one per request */
    struct kz_config *cfg;
    struct kz_router *router;
    struct kz_provider **providers; /* cfg->n_providers entries; the local one is the gateway's */
};

struct kz_gateway {
    uv_loop_t *loop;
    struct kz_http_server *http;
    struct kz_metrics *metrics;
    struct kz_upstream *up;
    struct kz_gen *gen;             /* current */
    struct kz_provider *local;      /* the local provider or NULL (owned here) */
    struct kz_tenancy *tenancy;     /* keys, budgets, ledger; NULL without a ledger */
    long created;
    uint64_t n_calls;               /* calls alive (tests, drain) */
};

/* Drops a reference; the last one frees the router, the remote providers
 * and the configuration. */
void kz_gen_release(struct kz_gen *g);

/* Serves one generation request of caller p (chat, completions, embeddings) through the
 * router: decodes the body, picks deployments, retries and fails over, and
 * writes the answer in the OpenAI dialect. `route` is a static label for
 * metrics. */
void kz_call_handle(struct kz_gateway *gw, const struct kz_principal *p, struct kz_http_req *req,
                    struct kz_http_res *res, enum kz_api_kind kind, const char *route, uint64_t t0_ns);

/* /admin/... (admin keys) and GET /v1/usage (the caller's own tenant): the
 * ledger over HTTP. Answers 404 when the server has no ledger. */
void kz_admin_handle(struct kz_gateway *gw, const struct kz_principal *p, struct kz_http_req *req,
                     struct kz_http_res *res, uint64_t t0_ns);
void kz_usage_handle(struct kz_gateway *gw, const struct kz_principal *p, struct kz_http_req *req,
                     struct kz_http_res *res, uint64_t t0_ns);

#endif
