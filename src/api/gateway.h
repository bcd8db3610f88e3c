/* SPDX-License-Identifier: MIT
 * What serving a request needs, gathered in one place: the loop and HTTP
 * server, the configuration and its router, one runtime provider per
 * configured provider, the upstream HTTP client and the metrics. Built and
 * owned by serve.c; read by call.c on the loop thread.
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

struct kz_gateway {
    uv_loop_t *loop;
    struct kz_http_server *http;
    struct kz_metrics *metrics;
    struct kz_config *cfg;
    struct kz_router *router;
    struct kz_upstream *up;
    struct kz_provider **providers; /* cfg->n_providers entries */
    struct kz_provider *local;      /* the local provider or NULL */
    long created;
    uint64_t n_calls;               /* calls alive (tests, drain) */
};

/* Serves one generation request (chat, completions, embeddings) through the
 * router: decodes the body, picks deployments, retries and fails over, and
 * writes the answer in the OpenAI dialect. `route` is a static label for
 * metrics. */
void kz_call_handle(struct kz_gateway *gw, struct kz_http_req *req, struct kz_http_res *res, enum kz_api_kind kind,
                    const char *route, uint64_t t0_ns);

#endif
