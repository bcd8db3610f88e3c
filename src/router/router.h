/* SPDX-License-Identifier: MIT
 * Routing decisions and provider health, for one configuration: which
 * deployment a request tries next, and what each attempt's outcome does to
 * the deployment's standing. No I/O here: the caller (router/call.c) runs
 * the attempts and reports back, so this file is tested with a fake clock.
 *
 * Health is passive outlier detection per deployment:
 *   - `eject_after` consecutive failures (connect errors, timeouts, 5xx,
 *     garbage) eject it for eject_base_ms << (ejections so far), capped at
 *     eject_max_ms;
 *   - when the ejection ends it is half-open: one request at a time probes
 *     it; success restores it, failure ejects it again for longer;
 *   - a 429 (or Anthropic's 529) with Retry-After puts it in cooldown for
 *     exactly that long: it gets no requests at all, probes included;
 *   - with active health checks on, a successful check ends an ejection at
 *     once (kz_router_check_result).
 * When every deployment a request could use is ejected, it gets nothing
 * (the caller answers 503 with the time until the first ejection ends):
 * probing on every request would turn an outage into load. Active health
 * checks end ejections early when providers come back.
 *
 * Retries are capped by a budget (the Envoy rule): retries in flight at once
 * may number at most max(retry_min_concurrent, retry_budget x requests in
 * flight), so an outage cannot multiply the load on the providers that are
 * left. Failing over away from a deployment that is now ejected is not a
 * retry in that sense (it moves load, it does not add any): those are
 * bounded by the requests that were in flight on it when it died.
 *
 * Threads: loop thread only.
 */
#ifndef KZ_ROUTER_H
#define KZ_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "router/config.h"

#define KZ_ROUTE_MAX_TRIED 64

struct kz_router;

enum kz_dep_health { KZ_DEP_HEALTHY = 0, KZ_DEP_HALF_OPEN = 1, KZ_DEP_EJECTED = 2, KZ_DEP_COOLDOWN = 3 };

struct kz_dep_stats {
    enum kz_dep_health health;
    int in_flight;
    int consecutive_failures;
    int ejections;           /* ejections so far (the backoff exponent) */
    uint64_t until_ms;       /* end of the ejection or cooldown */
    double ewma_ttft_ms;     /* -1: no sample yet */
    uint64_t ok, failed;
};

/* Per-request options (headers x-kyozon-route and x-kyozon-privacy, later
 * the key's ceiling). */
struct kz_route_hints {
    enum kz_privacy ceiling; /* providers above it are never used */
    int strategy;            /* -1: the model's own; else enum kz_strategy */
    int openai_only;         /* completions and embeddings: skip anthropic and bedrock providers */
};

/* What one request has tried so far. Zero-initialize. */
struct kz_route_state {
    size_t tried_model[KZ_ROUTE_MAX_TRIED], tried_dep[KZ_ROUTE_MAX_TRIED];
    size_t n_tried;
};

enum kz_outcome {
    KZ_OUT_OK,        /* answered */
    KZ_OUT_FAIL,      /* connect error, timeout, 5xx, garbage: counts towards ejection */
    KZ_OUT_THROTTLED, /* 429/529: cooldown (retry_after_ms, or 1 s when not given) */
    KZ_OUT_NEUTRAL    /* the request's own fault (4xx) or the client left: no health change */
};

kz_status kz_router_new(const struct kz_config *cfg, uint64_t seed, struct kz_router **out, struct kz_err *err);
void kz_router_free(struct kz_router *r);
const struct kz_config *kz_router_config(const struct kz_router *r);

/* The next deployment for a request of public model `model` (index into
 * cfg->models), following the strategy and then the fallbacks in order.
 * Returns 1 and the (model, deployment) pair, or 0 when nothing is left
 * (then *retry_after_ms says when something might be: the nearest end of an
 * ejection or cooldown among the candidates, or 0 when nothing allowed
 * exists at all, e.g. privacy rules out every provider). */
int kz_router_pick(struct kz_router *r, size_t model, const struct kz_route_hints *h, struct kz_route_state *st,
                   uint64_t now_ms, size_t *out_model, size_t *out_dep, uint64_t *retry_after_ms);

/* Bookkeeping around one attempt on (model, dep): begin before starting it,
 * end once with its outcome. ttft_ms < 0 when there was no first byte. */
void kz_router_begin(struct kz_router *r, size_t model, size_t dep, uint64_t now_ms);
void kz_router_end(struct kz_router *r, size_t model, size_t dep, enum kz_outcome o, long retry_after_ms,
                   double ttft_ms, uint64_t now_ms);

/* A client request starts / ends (the retry budget's base). */
void kz_router_request_begin(struct kz_router *r);
void kz_router_request_end(struct kz_router *r);
/* Whether the request may try again after its attempt on (model, dep)
 * failed: 1 when that deployment is ejected now (a failover, free), 1 and
 * *took = 1 when the budget has room (release it with kz_router_retry_end
 * when that retry attempt ends), else 0. */
int kz_router_may_retry(struct kz_router *r, size_t model, size_t dep, uint64_t now_ms, int *took);
void kz_router_retry_end(struct kz_router *r);

/* Active health check result for every deployment on provider p. */
void kz_router_check_result(struct kz_router *r, size_t provider, int ok, uint64_t now_ms);

void kz_router_dep_stats(const struct kz_router *r, size_t model, size_t dep, uint64_t now_ms,
                         struct kz_dep_stats *out);
/* In-flight requests on provider p over all its deployments (max_concurrency). */
int kz_router_provider_in_flight(const struct kz_router *r, size_t provider);

#endif
