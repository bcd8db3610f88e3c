/* SPDX-License-Identifier: MIT
 * Fuzz target: the YAML configuration loader. Every input must be accepted
 * or refused with a "NAME:" message, never crash or leak; an accepted
 * configuration must hold what the router relies on (indices in range,
 * required fields present, the privacy and local-provider rules).
 *
 * Seeds reference env:KZ_FUZZ_KEY, set here, so valid seeds load.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "router/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("KZ_FUZZ_KEY", "fuzz-key-0123", 1);
    /* Nothing the loader keeps is larger than a 64 KiB secret file. */
    kz_alloc_set_limit(1u << 20);
    return 0;
}

static void check_provider(const struct kz_config *c, size_t i, int *n_local)
{
    const struct kz_cfg_provider *p = &c->providers[i];
    if (!p->name || !p->name[0] || strlen(p->name) > 64 || kz_config_provider(c, p->name) != p)
        abort();
    if ((unsigned)p->type > KZ_PROV_KYOZON || (unsigned)p->privacy > KZ_PRIVACY_EXTERNAL || p->weight < 1)
        abort();
    if (p->type == KZ_PROV_LOCAL) {
        ++*n_local;
        if (!p->model_path || p->base_url || p->api_key)
            abort();
    } else {
        if (!p->base_url || (strncmp(p->base_url, "http://", 7) && strncmp(p->base_url, "https://", 8)))
            abort();
        if (p->privacy == KZ_PRIVACY_LOCAL || p->model_path)
            abort();
    }
    if (p->type == KZ_PROV_AZURE && (!p->api_version || !p->api_key))
        abort();
    if (p->type == KZ_PROV_BEDROCK && (!p->region || (!p->api_key && !(p->access_key_id && p->secret_access_key))))
        abort();
    if (p->price.input_per_mtok < 0 || p->price.output_per_mtok < 0 || p->connect_timeout_ms < 1)
        abort();
}

static void check_model(const struct kz_config *c, size_t i)
{
    const struct kz_cfg_model *m = &c->models[i];
    if (!m->name || kz_config_model(c, m->name) != m || (unsigned)m->strategy > KZ_STRAT_COST)
        abort();
    if (m->n_deployments < 1 || m->n_deployments > 64)
        abort();
    for (size_t j = 0; j < m->n_deployments; j++) {
        const struct kz_cfg_deployment *d = &m->deployments[j];
        if (d->provider >= c->n_providers || !d->model || d->weight < 1)
            abort();
        if (kz_price_cost(&d->price, 1000, 1000) < 0)
            abort();
    }
    for (size_t j = 0; j < m->n_fallbacks; j++)
        if (m->fallbacks[j] >= c->n_models || m->fallbacks[j] == i)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kz_config *c = NULL;
    struct kz_err e;
    memset(&e, 0, sizeof e);
    kz_status rc = kz_config_parse((const char *)data, size, "fuzz.yaml", &c, &e);
    if (rc) {
        if (c || strncmp(e.msg, "fuzz.yaml", 9) != 0)
            abort();
        return 0;
    }
    if (!c || !c->path || !c->server.host || c->server.port < 0 || c->server.port > 65535)
        abort();
    if (c->router.max_attempts < 1 || c->router.backoff_base_ms > c->router.backoff_max_ms)
        abort();
    int n_local = 0;
    for (size_t i = 0; i < c->n_providers; i++)
        check_provider(c, i, &n_local);
    if (n_local > 1)
        abort();
    for (size_t i = 0; i < c->n_models; i++)
        check_model(c, i);
    kz_config_free(c);
    return 0;
}
