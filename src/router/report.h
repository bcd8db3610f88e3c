/* SPDX-License-Identifier: MIT
 * The router's state for people and dashboards: Prometheus text for
 * /metrics and the JSON of GET /v1/providers. Secrets never appear: only
 * names, types, tiers, URLs and health.
 */
#ifndef KZ_ROUTER_REPORT_H
#define KZ_ROUTER_REPORT_H

#include <stdint.h>

#include "router/router.h"

/* Prometheus text (kz_free): kyozon_deployment_state (0 healthy, 1 partial:
 * half-open or in a Retry-After cooldown, 2 ejected), in-flight gauge,
 * attempts by result, ejections. */
char *kz_router_metrics(const struct kz_router *r, uint64_t now_ms);

/* {"object":"list","data":[{provider, deployments:[...]}]} (kz_free). */
char *kz_router_providers_json(const struct kz_router *r, uint64_t now_ms);

#endif
