/* SPDX-License-Identifier: MIT
 * Routing decisions and passive health (see router.h).
 */
#include "router/router.h"

#include <string.h>

#include "core/alloc.h"

struct dep {
    enum kz_dep_health health;
    int in_flight;
    int consecutive;
    int ejections;
    int probing; /* a half-open or panic probe is in flight */
    uint64_t until_ms;
    uint64_t restored_ms;
    double ewma_ttft;
    uint64_t ok, failed;
};

struct kz_router {
    const struct kz_config *cfg;
    size_t *first;   /* first[m]: index of model m's deployment 0 in deps */
    struct dep *deps;
    int *prov_in_flight;
    uint64_t rng;
    int active;   /* client requests in flight */
    int retrying; /* retries in flight */
};

kz_status kz_router_new(const struct kz_config *cfg, uint64_t seed, struct kz_router **out, struct kz_err *err)
{
    struct kz_router *r = kz_calloc(1, sizeof *r);
    size_t n = 0;
    if (r) {
        r->first = kz_calloc(cfg->n_models + 1, sizeof *r->first);
        for (size_t m = 0; r->first && m < cfg->n_models; m++) {
            r->first[m] = n;
            n += cfg->models[m].n_deployments;
        }
        r->deps = kz_calloc(n ? n : 1, sizeof *r->deps);
        r->prov_in_flight = kz_calloc(cfg->n_providers ? cfg->n_providers : 1, sizeof *r->prov_in_flight);
    }
    if (!r || !r->first || !r->deps || !r->prov_in_flight) {
        kz_router_free(r);
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        r->deps[i].ewma_ttft = -1.0;
    r->cfg = cfg;
    r->rng = seed | 1;
    *out = r;
    return KZ_OK;
}

void kz_router_free(struct kz_router *r)
{
    if (!r)
        return;
    kz_free(r->first);
    kz_free(r->deps);
    kz_free(r->prov_in_flight);
    kz_free(r);
}

const struct kz_config *kz_router_config(const struct kz_router *r) { return r->cfg; }

static struct dep *dep_of(const struct kz_router *r, size_t m, size_t d) { return &r->deps[r->first[m] + d]; }

static uint64_t rnd(struct kz_router *r)
{
    uint64_t x = r->rng; /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return r->rng = x;
}

/* Time moves an ejection to half-open and ends a cooldown. */
static void age(struct dep *s, uint64_t now)
{
    if (s->health == KZ_DEP_COOLDOWN && now >= s->until_ms)
        s->health = KZ_DEP_HEALTHY;
    else if (s->health == KZ_DEP_EJECTED && now >= s->until_ms)
        s->health = KZ_DEP_HALF_OPEN;
}

static int tried(const struct kz_route_state *st, size_t m, size_t d)
{
    for (size_t i = 0; i < st->n_tried; i++)
        if (st->tried_model[i] == m && st->tried_dep[i] == d)
            return 1;
    return 0;
}

static int64_t price_sum(const struct kz_config *c, const struct kz_cfg_deployment *d)
{
    const struct kz_price *p = d->has_price ? &d->price : &c->providers[d->provider].price;
    return p->input_per_mtok + p->output_per_mtok;
}

/* Deployment d of model m may be used by this request at all. */
static int allowed(const struct kz_router *r, size_t m, size_t d, const struct kz_route_hints *h,
                   const struct kz_route_state *st)
{
    const struct kz_cfg_deployment *cd = &r->cfg->models[m].deployments[d];
    const struct kz_cfg_provider *p = &r->cfg->providers[cd->provider];
    if (p->privacy > h->ceiling || tried(st, m, d))
        return 0;
    if (h->openai_only && (p->type == KZ_PROV_ANTHROPIC || p->type == KZ_PROV_BEDROCK))
        return 0;
    return !(p->max_concurrency > 0 && r->prov_in_flight[cd->provider] >= p->max_concurrency);
}

/* Chooses among n candidates (deployment indices of model m). */
static size_t choose(struct kz_router *r, size_t m, const size_t *cand, size_t n, int strategy)
{
    const struct kz_cfg_model *cm = &r->cfg->models[m];
    size_t best = 0, ties = 1;
    switch (strategy) {
    case KZ_STRAT_PRIORITY:
        return cand[0];
    case KZ_STRAT_WEIGHTED: {
        uint64_t total = 0;
        for (size_t i = 0; i < n; i++)
            total += (uint64_t)cm->deployments[cand[i]].weight;
        uint64_t x = total ? rnd(r) % total : 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t w = (uint64_t)cm->deployments[cand[i]].weight;
            if (x < w)
                return cand[i];
            x -= w;
        }
        return cand[n - 1];
    }
    case KZ_STRAT_LEAST_BUSY:
    case KZ_STRAT_LATENCY:
        /* least-busy: fewest in flight; latency: lowest EWMA time to first
         * token, unmeasured first. Ties are broken at random so equal
         * deployments share the load. */
        for (size_t i = 1; i < n; i++) {
            const struct dep *a = dep_of(r, m, cand[i]), *b = dep_of(r, m, cand[best]);
            double ka = strategy == KZ_STRAT_LATENCY ? a->ewma_ttft : a->in_flight;
            double kb = strategy == KZ_STRAT_LATENCY ? b->ewma_ttft : b->in_flight;
            if (ka < kb) {
                best = i;
                ties = 1;
            } else if (ka == kb && rnd(r) % ++ties == 0) {
                best = i;
            }
        }
        return cand[best];
    case KZ_STRAT_COST:
        for (size_t i = 1; i < n; i++)
            if (price_sum(r->cfg, &cm->deployments[cand[i]]) < price_sum(r->cfg, &cm->deployments[cand[best]]))
                best = i;
        return cand[best];
    }
    return cand[0];
}

/* The models a request may use, primary first, then fallbacks depth-first. */
static size_t chain(const struct kz_config *c, size_t m, size_t *out, size_t n, size_t cap)
{
    for (size_t i = 0; i < n; i++)
        if (out[i] == m)
            return n; /* visited: fallback cycles are allowed and end here */
    if (n == cap)
        return n;
    out[n++] = m;
    for (size_t f = 0; f < c->models[m].n_fallbacks; f++)
        n = chain(c, c->models[m].fallbacks[f], out, n, cap);
    return n;
}

int kz_router_pick(struct kz_router *r, size_t model, const struct kz_route_hints *h, struct kz_route_state *st,
                   uint64_t now_ms, size_t *out_model, size_t *out_dep, uint64_t *retry_after_ms)
{
    size_t models[32], cand[64];
    size_t nm = chain(r->cfg, model, models, 0, 32);
    uint64_t soonest = UINT64_MAX;
    *retry_after_ms = 0;
    if (st->n_tried >= KZ_ROUTE_MAX_TRIED)
        return 0;
    for (size_t k = 0; k < nm; k++) {
        size_t m = models[k], n = 0;
        const struct kz_cfg_model *cm = &r->cfg->models[m];
        for (size_t d = 0; d < cm->n_deployments && n < 64; d++) {
            if (!allowed(r, m, d, h, st))
                continue;
            struct dep *s = dep_of(r, m, d);
            age(s, now_ms);
            if (s->health == KZ_DEP_HEALTHY || (s->health == KZ_DEP_HALF_OPEN && !s->probing))
                cand[n++] = d;
            else if (s->until_ms > now_ms && s->until_ms < soonest)
                soonest = s->until_ms;
        }
        if (n) {
            size_t d = choose(r, m, cand, n, h->strategy >= 0 ? h->strategy : (int)cm->strategy);
            struct dep *s = dep_of(r, m, d);
            if (s->health == KZ_DEP_HALF_OPEN)
                s->probing = 1;
            *out_model = m;
            *out_dep = d;
            st->tried_model[st->n_tried] = m;
            st->tried_dep[st->n_tried++] = d;
            return 1;
        }
    }
    if (soonest != UINT64_MAX)
        *retry_after_ms = soonest - now_ms;
    return 0;
}

void kz_router_begin(struct kz_router *r, size_t model, size_t dep, uint64_t now_ms)
{
    (void)now_ms;
    dep_of(r, model, dep)->in_flight++;
    r->prov_in_flight[r->cfg->models[model].deployments[dep].provider]++;
}

static void eject(const struct kz_cfg_router *c, struct dep *s, uint64_t now)
{
    if (s->restored_ms && now - s->restored_ms > c->eject_max_ms)
        s->ejections = 0; /* long healthy: the backoff starts over */
    int shift = s->ejections < 20 ? s->ejections : 20;
    uint64_t len = (uint64_t)c->eject_base_ms << shift;
    if (len > c->eject_max_ms)
        len = c->eject_max_ms;
    s->ejections++;
    s->health = KZ_DEP_EJECTED;
    s->until_ms = now + len;
}

static void restore(struct dep *s, uint64_t now)
{
    if (s->health != KZ_DEP_HEALTHY)
        s->restored_ms = now;
    s->health = KZ_DEP_HEALTHY;
    s->consecutive = 0;
}

void kz_router_end(struct kz_router *r, size_t model, size_t dep, enum kz_outcome o, long retry_after_ms,
                   double ttft_ms, uint64_t now_ms)
{
    struct dep *s = dep_of(r, model, dep);
    const struct kz_cfg_router *c = &r->cfg->router;
    s->in_flight--;
    r->prov_in_flight[r->cfg->models[model].deployments[dep].provider]--;
    int was_probe = s->probing;
    s->probing = 0;
    age(s, now_ms);
    switch (o) {
    case KZ_OUT_OK:
        s->ok++;
        if (s->health != KZ_DEP_COOLDOWN)
            restore(s, now_ms);
        s->consecutive = 0;
        if (ttft_ms >= 0)
            s->ewma_ttft = s->ewma_ttft < 0 ? ttft_ms : 0.8 * s->ewma_ttft + 0.2 * ttft_ms;
        break;
    case KZ_OUT_FAIL:
        s->failed++;
        s->consecutive++;
        if ((was_probe && s->health != KZ_DEP_HEALTHY) ||
            (s->health == KZ_DEP_HEALTHY && s->consecutive >= c->eject_after))
            eject(c, s, now_ms);
        break;
    case KZ_OUT_THROTTLED:
        s->failed++;
        s->health = KZ_DEP_COOLDOWN;
        s->until_ms = now_ms + (uint64_t)(retry_after_ms > 0 ? retry_after_ms : 1000);
        break;
    case KZ_OUT_NEUTRAL:
        break;
    }
}

void kz_router_request_begin(struct kz_router *r) { r->active++; }
void kz_router_request_end(struct kz_router *r) { r->active--; }
void kz_router_retry_end(struct kz_router *r) { r->retrying--; }

int kz_router_may_retry(struct kz_router *r, size_t model, size_t dep, uint64_t now_ms, int *took)
{
    struct dep *s = dep_of(r, model, dep);
    *took = 0;
    age(s, now_ms);
    if (s->health == KZ_DEP_EJECTED)
        return 1;
    double cap = r->cfg->router.retry_budget * (double)r->active;
    if (cap < (double)r->cfg->router.retry_min_concurrent)
        cap = (double)r->cfg->router.retry_min_concurrent;
    if ((double)r->retrying + 1.0 > cap)
        return 0;
    r->retrying++;
    *took = 1;
    return 1;
}

void kz_router_check_result(struct kz_router *r, size_t provider, int ok, uint64_t now_ms)
{
    const struct kz_cfg_router *c = &r->cfg->router;
    for (size_t m = 0; m < r->cfg->n_models; m++)
        for (size_t d = 0; d < r->cfg->models[m].n_deployments; d++) {
            if (r->cfg->models[m].deployments[d].provider != provider)
                continue;
            struct dep *s = dep_of(r, m, d);
            age(s, now_ms);
            if (ok && (s->health == KZ_DEP_EJECTED || s->health == KZ_DEP_HALF_OPEN))
                restore(s, now_ms);
            else if (!ok && s->health == KZ_DEP_HEALTHY && ++s->consecutive >= c->eject_after)
                eject(c, s, now_ms);
        }
}

void kz_router_dep_stats(const struct kz_router *r, size_t model, size_t dep, uint64_t now_ms,
                         struct kz_dep_stats *out)
{
    struct dep *s = dep_of(r, model, dep);
    age(s, now_ms);
    out->health = s->health;
    out->in_flight = s->in_flight;
    out->consecutive_failures = s->consecutive;
    out->ejections = s->ejections;
    out->until_ms = s->until_ms;
    out->ewma_ttft_ms = s->ewma_ttft;
    out->ok = s->ok;
    out->failed = s->failed;
}

int kz_router_provider_in_flight(const struct kz_router *r, size_t provider) { return r->prov_in_flight[provider]; }
