/* SPDX-License-Identifier: MIT
 * Router state as metrics and JSON (see report.h).
 */
#include "router/report.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"

static const char *const health_names[] = {"healthy", "half_open", "ejected", "cooldown"};

/* Label values: backslash, quote and newline escaped (Prometheus text format). */
static const char *label(const char *s, char *buf, size_t size)
{
    size_t k = 0;
    for (; *s && k + 3 < size; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n') {
            buf[k++] = '\\';
            buf[k++] = *s == '\n' ? 'n' : *s;
        } else {
            buf[k++] = *s;
        }
    }
    buf[k] = '\0';
    return buf;
}

char *kz_router_metrics(const struct kz_router *r, uint64_t now_ms)
{
    const struct kz_config *c = kz_router_config(r);
    struct kz_buf o = {0};
    static const char *const heads[] = {
        "# HELP kyozon_deployment_state Deployment health: 0 healthy, 1 partial (half-open or cooling down "
        "after a 429), 2 ejected.\n# TYPE kyozon_deployment_state gauge\n",
        "# HELP kyozon_deployment_in_flight Attempts running on a deployment.\n"
        "# TYPE kyozon_deployment_in_flight gauge\n",
        "# HELP kyozon_deployment_attempts_total Attempts on a deployment by result.\n"
        "# TYPE kyozon_deployment_attempts_total counter\n",
        "# HELP kyozon_deployment_ejections_total Times a deployment was ejected.\n"
        "# TYPE kyozon_deployment_ejections_total counter\n"};
    for (int metric = 0; metric < 4; metric++) {
        kz_buf_printf(&o, "%s", heads[metric]);
        for (size_t m = 0; m < c->n_models; m++)
            for (size_t d = 0; d < c->models[m].n_deployments; d++) {
                struct kz_dep_stats s;
                kz_router_dep_stats(r, m, d, now_ms, &s);
                char lm[300], lp[160];
                label(c->models[m].name, lm, sizeof lm);
                label(c->providers[c->models[m].deployments[d].provider].name, lp, sizeof lp);
                if (metric == 0)
                    kz_buf_printf(&o, "kyozon_deployment_state{model=\"%s\",provider=\"%s\"} %d\n", lm, lp,
                        s.health == KZ_DEP_HEALTHY ? 0 : s.health == KZ_DEP_EJECTED ? 2 : 1);
                else if (metric == 1)
                    kz_buf_printf(&o, "kyozon_deployment_in_flight{model=\"%s\",provider=\"%s\"} %d\n", lm, lp, s.in_flight);
                else if (metric == 2)
                    kz_buf_printf(&o,
                        "kyozon_deployment_attempts_total{model=\"%s\",provider=\"%s\",result=\"ok\"} %llu\n"
                        "kyozon_deployment_attempts_total{model=\"%s\",provider=\"%s\",result=\"failed\"} %llu\n",
                        lm, lp, (unsigned long long)s.ok, lm, lp, (unsigned long long)s.failed);
                else
                    kz_buf_printf(&o, "kyozon_deployment_ejections_total{model=\"%s\",provider=\"%s\"} %d\n", lm, lp,
                        s.ejections);
            }
    }
    if (o.oom)
        kz_buf_free(&o);
    return o.p;
}

char *kz_router_providers_json(const struct kz_router *r, uint64_t now_ms)
{
    const struct kz_config *c = kz_router_config(r);
    json_t *data = json_array();
    for (size_t p = 0; data && p < c->n_providers; p++) {
        const struct kz_cfg_provider *cp = &c->providers[p];
        json_t *deps = json_array();
        for (size_t m = 0; deps && m < c->n_models; m++)
            for (size_t d = 0; d < c->models[m].n_deployments; d++) {
                const struct kz_cfg_deployment *cd = &c->models[m].deployments[d];
                if (cd->provider != p)
                    continue;
                struct kz_dep_stats s;
                kz_router_dep_stats(r, m, d, now_ms, &s);
                json_array_append_new(
                    deps, json_pack("{s:s, s:s?, s:s, s:i, s:i, s:i, s:I, s:o, s:I, s:I}", "model", c->models[m].name,
                                    "upstream_model", cd->model, "health", health_names[s.health], "in_flight",
                                    s.in_flight, "consecutive_failures", s.consecutive_failures, "ejections",
                                    s.ejections, "unavailable_for_ms",
                                    (json_int_t)(s.until_ms > now_ms && s.health != KZ_DEP_HEALTHY
                                                     ? s.until_ms - now_ms
                                                     : 0),
                                    "ewma_ttft_ms", s.ewma_ttft_ms < 0 ? json_null() : json_real(s.ewma_ttft_ms), "ok",
                                    (json_int_t)s.ok, "failed", (json_int_t)s.failed));
            }
        json_array_append_new(data, json_pack("{s:s, s:s, s:s, s:s?, s:i, s:o}", "name", cp->name, "type",
                                              kz_provider_type_name(cp->type), "privacy", kz_privacy_name(cp->privacy),
                                              "base_url", cp->base_url, "in_flight",
                                              kz_router_provider_in_flight(r, p), "deployments",
                                              deps ? deps : json_array()));
    }
    json_t *o = json_pack("{s:s, s:o}", "object", "list", "data", data ? data : json_array());
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    char *out = s ? kz_strdup(s) : NULL;
    free(s);
    return out;
}
