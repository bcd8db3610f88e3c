/* SPDX-License-Identifier: MIT
 * Routing decisions and passive health with a fake clock: strategies,
 * privacy ceilings, fallbacks, ejection and its doubling, half-open probes,
 * Retry-After cooldowns, active checks, the retry budget and concurrency
 * caps.
 */
#include <string.h>

#include "router/router.h"
#include "t.h"

static struct kz_cfg_provider provs[4];
static struct kz_cfg_deployment deps_a[3], deps_b[1];
static size_t fb_a[1] = {1};
static struct kz_cfg_model models[2];
static struct kz_config cfg;

/* providers p0 local, p1 private, p2 external, p3 external; model "a" on
 * p0, p1, p2 with fallback "b" on p3. */
static void setup(enum kz_strategy strat)
{
    memset(&cfg, 0, sizeof cfg);
    memset(provs, 0, sizeof provs);
    const enum kz_privacy tiers[4] = {KZ_PRIVACY_LOCAL, KZ_PRIVACY_PRIVATE, KZ_PRIVACY_EXTERNAL, KZ_PRIVACY_EXTERNAL};
    for (int i = 0; i < 4; i++) {
        provs[i].privacy = tiers[i];
        provs[i].weight = 1;
    }
    provs[0].price = (struct kz_price){300, 300};
    provs[1].price = (struct kz_price){100, 100};
    provs[2].price = (struct kz_price){200, 200};
    for (size_t i = 0; i < 3; i++)
        deps_a[i] = (struct kz_cfg_deployment){.provider = i, .weight = 1};
    deps_b[0] = (struct kz_cfg_deployment){.provider = 3, .weight = 1};
    models[0] = (struct kz_cfg_model){.name = "a", .strategy = strat, .deployments = deps_a, .n_deployments = 3,
                                      .fallbacks = fb_a, .n_fallbacks = 1};
    models[1] = (struct kz_cfg_model){.name = "b", .deployments = deps_b, .n_deployments = 1};
    cfg.providers = provs;
    cfg.n_providers = 4;
    cfg.models = models;
    cfg.n_models = 2;
    cfg.router = (struct kz_cfg_router){.max_attempts = 3, .retry_budget = 0.2, .retry_min_concurrent = 3,
                                        .eject_after = 5, .eject_base_ms = 30000, .eject_max_ms = 300000};
}

static const struct kz_route_hints open_hints = {KZ_PRIVACY_EXTERNAL, -1, 0};

/* One pick from a fresh request state: the provider index, or -1. */
static int pick1(struct kz_router *r, const struct kz_route_hints *h, uint64_t now)
{
    struct kz_route_state st;
    memset(&st, 0, sizeof st);
    size_t m, d;
    uint64_t ra;
    if (!kz_router_pick(r, 0, h, &st, now, &m, &d, &ra))
        return -1;
    return (int)cfg.models[m].deployments[d].provider;
}

static void fail_n(struct kz_router *r, size_t dep, int n, uint64_t now)
{
    for (int i = 0; i < n; i++) {
        kz_router_begin(r, 0, dep, now);
        kz_router_end(r, 0, dep, KZ_OUT_FAIL, 0, -1, now);
    }
}

static void priority_and_fallbacks(void)
{
    setup(KZ_STRAT_PRIORITY);
    struct kz_router *r;
    T_EQ_INT(kz_router_new(&cfg, 1, &r, NULL), KZ_OK);
    T_EQ_INT(pick1(r, &open_hints, 0), 0);
    /* one request walks the whole chain in order, then runs out */
    struct kz_route_state st;
    memset(&st, 0, sizeof st);
    size_t m, d, order[8];
    uint64_t ra;
    int n = 0;
    while (n < 8 && kz_router_pick(r, 0, &open_hints, &st, 0, &m, &d, &ra))
        order[n++] = cfg.models[m].deployments[d].provider;
    T_OK(n == 4 && order[0] == 0 && order[1] == 1 && order[2] == 2 && order[3] == 3,
         "priority then fallback: %d picks", n);
    /* privacy ceilings */
    struct kz_route_hints local = {KZ_PRIVACY_LOCAL, -1, 0}, priv = {KZ_PRIVACY_PRIVATE, -1, 0};
    memset(&st, 0, sizeof st);
    n = 0;
    while (n < 8 && kz_router_pick(r, 0, &local, &st, 0, &m, &d, &ra))
        order[n++] = cfg.models[m].deployments[d].provider;
    T_OK(n == 1 && order[0] == 0, "local ceiling: only the local provider (%d picks)", n);
    T_EQ_INT((long)ra, 0);
    /* the local provider ejected: a local request gets nothing, never another provider */
    fail_n(r, 0, 5, 0);
    T_EQ_INT(pick1(r, &priv, 10), 1);
    memset(&st, 0, sizeof st);
    T_OK(!kz_router_pick(r, 0, &local, &st, 10, &m, &d, &ra) && ra == 29990,
         "nothing for a local request; retry after %llu ms", (unsigned long long)ra);
    kz_router_free(r);
}

static void ejection(void)
{
    setup(KZ_STRAT_PRIORITY);
    struct kz_router *r;
    T_EQ_INT(kz_router_new(&cfg, 1, &r, NULL), KZ_OK);
    struct kz_dep_stats s;
    fail_n(r, 0, 4, 1000);
    kz_router_dep_stats(r, 0, 0, 1000, &s);
    T_OK(s.health == KZ_DEP_HEALTHY && s.consecutive_failures == 4, "4 failures: still in");
    fail_n(r, 0, 1, 1000);
    kz_router_dep_stats(r, 0, 0, 1000, &s);
    T_OK(s.health == KZ_DEP_EJECTED && s.until_ms == 31000, "5th failure ejects for 30 s");
    T_EQ_INT(pick1(r, &open_hints, 2000), 1);
    T_EQ_INT(pick1(r, &open_hints, 30999), 1);
    /* half-open: exactly one probe */
    struct kz_route_state st;
    memset(&st, 0, sizeof st);
    size_t m, d;
    uint64_t ra;
    T_OK(kz_router_pick(r, 0, &open_hints, &st, 31000, &m, &d, &ra) && d == 0, "probe after the ejection");
    kz_router_begin(r, m, d, 31000);
    T_EQ_INT(pick1(r, &open_hints, 31001), 1);
    kz_router_end(r, m, d, KZ_OUT_FAIL, 0, -1, 31002);
    kz_router_dep_stats(r, 0, 0, 31002, &s);
    T_OK(s.health == KZ_DEP_EJECTED && s.until_ms == 31002 + 60000, "failed probe: ejected for 60 s (doubled)");
    /* a successful probe restores it */
    memset(&st, 0, sizeof st);
    T_OK(kz_router_pick(r, 0, &open_hints, &st, 91002, &m, &d, &ra) && d == 0, "second probe");
    kz_router_begin(r, m, d, 91002);
    kz_router_end(r, m, d, KZ_OUT_OK, 0, 5.0, 91003);
    kz_router_dep_stats(r, 0, 0, 91003, &s);
    T_OK(s.health == KZ_DEP_HEALTHY && s.consecutive_failures == 0, "restored");
    T_EQ_INT(pick1(r, &open_hints, 91004), 0);
    /* neutral outcomes (the request's own 4xx) never eject */
    for (int i = 0; i < 20; i++) {
        kz_router_begin(r, 0, 0, 92000);
        kz_router_end(r, 0, 0, KZ_OUT_NEUTRAL, 0, -1, 92000);
    }
    kz_router_dep_stats(r, 0, 0, 92000, &s);
    T_OK(s.health == KZ_DEP_HEALTHY, "4xx do not eject");
    /* active checks end an ejection early */
    fail_n(r, 0, 5, 100000);
    kz_router_check_result(r, 0, 1, 100500);
    kz_router_dep_stats(r, 0, 0, 100500, &s);
    T_OK(s.health == KZ_DEP_HEALTHY, "a passing health check restores at once");
    kz_router_free(r);
}

static void cooldown(void)
{
    setup(KZ_STRAT_PRIORITY);
    struct kz_router *r;
    T_EQ_INT(kz_router_new(&cfg, 1, &r, NULL), KZ_OK);
    kz_router_begin(r, 0, 0, 0);
    kz_router_end(r, 0, 0, KZ_OUT_THROTTLED, 7000, -1, 0);
    int zero = 1;
    for (uint64_t t = 0; t < 7000; t += 100)
        if (pick1(r, &open_hints, t) == 0)
            zero = 0;
    T_OK(zero, "0 picks of a throttled deployment during Retry-After");
    T_EQ_INT(pick1(r, &open_hints, 7000), 0);
    /* all deployments in cooldown: nothing, with the time to wait */
    for (size_t d = 0; d < 3; d++) {
        kz_router_begin(r, 0, d, 8000);
        kz_router_end(r, 0, d, KZ_OUT_THROTTLED, 2000 + (long)d * 1000, -1, 8000);
    }
    kz_router_begin(r, 1, 0, 8000);
    kz_router_end(r, 1, 0, KZ_OUT_THROTTLED, 500, -1, 8000);
    struct kz_route_state st;
    memset(&st, 0, sizeof st);
    size_t m, d;
    uint64_t ra;
    T_OK(!kz_router_pick(r, 0, &open_hints, &st, 8100, &m, &d, &ra) && ra == 400,
         "cooldowns are never probed; retry after the nearest end (%llu)", (unsigned long long)ra);
    kz_router_free(r);
}

static void strategies(void)
{
    struct kz_router *r;
    int hits[4];
    /* weighted: 1:2:1 */
    setup(KZ_STRAT_WEIGHTED);
    deps_a[1].weight = 2;
    T_EQ_INT(kz_router_new(&cfg, 42, &r, NULL), KZ_OK);
    memset(hits, 0, sizeof hits);
    for (int i = 0; i < 4000; i++)
        hits[pick1(r, &open_hints, 0)]++;
    T_OK(hits[0] > 850 && hits[0] < 1150 && hits[1] > 1850 && hits[1] < 2150 && hits[2] > 850 && hits[2] < 1150,
         "weighted 1:2:1 -> %d %d %d", hits[0], hits[1], hits[2]);
    kz_router_free(r);
    /* least-busy: follows in-flight counts */
    setup(KZ_STRAT_LEAST_BUSY);
    T_EQ_INT(kz_router_new(&cfg, 42, &r, NULL), KZ_OK);
    kz_router_begin(r, 0, 0, 0);
    kz_router_begin(r, 0, 2, 0);
    T_EQ_INT(pick1(r, &open_hints, 0), 1);
    kz_router_free(r);
    /* latency: lowest EWMA, unmeasured tried first */
    setup(KZ_STRAT_LATENCY);
    T_EQ_INT(kz_router_new(&cfg, 42, &r, NULL), KZ_OK);
    const double ttft[3] = {50, 10, 30};
    for (size_t d = 0; d < 3; d++) {
        kz_router_begin(r, 0, d, 0);
        kz_router_end(r, 0, d, KZ_OUT_OK, 0, ttft[d], 0);
    }
    T_EQ_INT(pick1(r, &open_hints, 0), 1);
    for (int i = 0; i < 10; i++) { /* d1 slows down: the EWMA follows */
        kz_router_begin(r, 0, 1, 0);
        kz_router_end(r, 0, 1, KZ_OUT_OK, 0, 100, 0);
    }
    T_EQ_INT(pick1(r, &open_hints, 0), 2);
    /* per-request override: cost */
    struct kz_route_hints cost = {KZ_PRIVACY_EXTERNAL, KZ_STRAT_COST, 0};
    T_EQ_INT(pick1(r, &cost, 0), 1);
    deps_a[1].has_price = 1;
    deps_a[1].price = (struct kz_price){1000, 0};
    T_EQ_INT(pick1(r, &cost, 0), 2);
    kz_router_free(r);
    /* max_concurrency */
    setup(KZ_STRAT_PRIORITY);
    provs[0].max_concurrency = 2;
    T_EQ_INT(kz_router_new(&cfg, 1, &r, NULL), KZ_OK);
    kz_router_begin(r, 0, 0, 0);
    T_EQ_INT(pick1(r, &open_hints, 0), 0);
    kz_router_begin(r, 0, 0, 0);
    T_EQ_INT(pick1(r, &open_hints, 0), 1);
    T_EQ_INT(kz_router_provider_in_flight(r, 0), 2);
    kz_router_free(r);
}

static void retry_budget(void)
{
    setup(KZ_STRAT_PRIORITY);
    struct kz_router *r;
    T_EQ_INT(kz_router_new(&cfg, 1, &r, NULL), KZ_OK);
    /* 10 requests in flight: max(3, 20% of 10) = 3 retries at once */
    for (int i = 0; i < 10; i++)
        kz_router_request_begin(r);
    int took, granted = 0;
    for (int i = 0; i < 10; i++)
        granted += kz_router_may_retry(r, 0, 1, 0, &took);
    T_EQ_INT(granted, 3);
    kz_router_retry_end(r);
    T_OK(kz_router_may_retry(r, 0, 1, 0, &took) && took, "a finished retry frees its place");
    /* 100 in flight: 20 */
    for (int i = 0; i < 90; i++)
        kz_router_request_begin(r);
    granted = 0;
    for (int i = 0; i < 100; i++)
        granted += kz_router_may_retry(r, 0, 1, 0, &took);
    T_EQ_INT(granted, 20 - 3);
    /* failing over away from an ejected deployment is free */
    fail_n(r, 0, 5, 0);
    T_OK(kz_router_may_retry(r, 0, 0, 1, &took) && !took, "failover from an ejected deployment: no budget used");
    kz_router_free(r);
}

int main(void)
{
    t_subtest("priority_and_fallbacks", priority_and_fallbacks);
    t_subtest("ejection", ejection);
    t_subtest("cooldown", cooldown);
    t_subtest("strategies", strategies);
    t_subtest("retry_budget", retry_budget);
    return t_done();
}
