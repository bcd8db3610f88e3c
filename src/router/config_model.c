/* SPDX-License-Identifier: MIT
 * The `models` section: the public model names clients send, each with its
 * deployments (provider + upstream model) and its fallback models.
 *
 * Names are read in a first pass over all models so that a fallback may
 * name a model defined further down the file.
 */
#include <string.h>

#include "core/alloc.h"
#include "router/config_int.h"

static const char *const model_keys[] = {"name", "strategy", "deployments", "fallbacks"};
static const char *const dep_keys[] = {"provider", "model", "weight", "price"};

/* Model names appear in URLs (/v1/models/{id}) and metric labels; '/' and
 * ':' are allowed because upstream ids use them ("org/model", "model:tag"). */
static int model_name_ok(const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._-/:", c)))
            return 0;
    }
    return 1;
}

/* The value of a required key, or an error naming the key at the mapping. */
static kz_status required(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *m, const char *key,
                          const struct kz_cfg_node **out)
{
    const struct kz_cfg_node *n = kz_cfg__get(m, key);
    if (!n || kz_cfg__is_null(n))
        return kz_cfg__fail(cx, m, KZ_EINVAL, "missing required key '%s'", key);
    *out = n;
    return KZ_OK;
}

/* An item of a list of mappings: checks its keys and finds the required one. */
static kz_status open_item(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *m, const char *const *keys,
                           size_t n_keys, const char *key, const struct kz_cfg_node **out)
{
    kz_status rc = kz_cfg__want_map(cx, m);
    if (!rc)
        rc = kz_cfg__known_keys(cx, m, keys, n_keys);
    if (!rc)
        rc = required(cx, m, key, out);
    return rc;
}

static kz_status read_name(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *m, struct kz_config *c, size_t i)
{
    struct kz_cfg_model *md = &c->models[i];
    md->line = m->line;
    const struct kz_cfg_node *n = NULL;
    kz_status rc = open_item(cx, m, model_keys, sizeof model_keys / sizeof *model_keys, "name", &n);
    if (!rc)
        rc = kz_cfg__string(cx, n, KZ_CFG_MAX_MODEL_NAME, &md->name);
    if (rc)
        return rc;
    if (!model_name_ok(md->name))
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must use only letters, digits, '.', '_', '-', '/' and ':'");
    for (size_t j = 0; j < i; j++)
        if (strcmp(c->models[j].name, md->name) == 0)
            return kz_cfg__fail(cx, n, KZ_EINVAL, "duplicate model name '%s' (first at line %d)", md->name,
                                c->models[j].line);
    return KZ_OK;
}

/* Index of the provider named by scalar n, or an error naming it. */
static kz_status find_provider(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, const struct kz_config *c,
                               size_t *out)
{
    char *name = NULL;
    kz_status rc = kz_cfg__string(cx, n, KZ_CFG_MAX_SCALAR, &name);
    if (rc)
        return rc;
    size_t i = 0;
    while (i < c->n_providers && strcmp(c->providers[i].name, name) != 0)
        i++;
    if (i == c->n_providers) {
        char shown[80];
        rc = kz_cfg__fail(cx, n, KZ_EINVAL, "unknown provider '%s' (not in providers)",
                          kz_cfg__show(shown, sizeof shown, name));
    }
    kz_free(name);
    *out = i;
    return rc;
}

static kz_status one_deployment(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *m, const struct kz_config *c,
                                const struct kz_cfg_model *md, struct kz_cfg_deployment *d)
{
    const struct kz_cfg_node *n = NULL;
    kz_status rc = open_item(cx, m, dep_keys, sizeof dep_keys / sizeof *dep_keys, "provider", &n);
    if (!rc)
        rc = find_provider(cx, n, c, &d->provider);
    if (rc)
        return rc;
    const struct kz_cfg_provider *p = &c->providers[d->provider];
    d->weight = p->weight;
    d->price = p->price;
    d->has_price = p->has_price;
    n = kz_cfg__get(m, "model");
    if (n && !kz_cfg__is_null(n)) {
        rc = kz_cfg__string(cx, n, KZ_CFG_MAX_SCALAR, &d->model);
    } else if (p->type == KZ_PROV_LOCAL) {
        /* The local engine serves one model; the name is only informational. */
        d->model = kz_strdup(md->name);
        if (!d->model)
            rc = KZ_ENOMEM;
    } else {
        rc = kz_cfg__fail(cx, m, KZ_EINVAL, "missing required key 'model' (the upstream model id for provider %s)",
                          p->name);
    }
    n = kz_cfg__get(m, "weight");
    if (!rc && n && !kz_cfg__is_null(n))
        rc = kz_cfg__int(cx, n, 1, 1000000, &d->weight);
    n = kz_cfg__get(m, "price");
    if (!rc && n && !kz_cfg__is_null(n)) {
        d->has_price = 1;
        rc = kz_cfg__price(cx, n, &d->price);
    }
    return rc;
}

static kz_status read_deployments(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *m, const struct kz_config *c,
                                  struct kz_cfg_model *md)
{
    const struct kz_cfg_node *n = NULL;
    void *arr = NULL;
    kz_status rc = required(cx, m, "deployments", &n);
    if (!rc)
        rc = kz_cfg__list(cx, n, KZ_CFG_MAX_DEPLOYMENTS, "deployments", sizeof *md->deployments, &arr,
                          &md->n_deployments);
    md->deployments = arr;
    if (!rc && md->n_deployments == 0)
        rc = kz_cfg__fail(cx, n, KZ_EINVAL, "must list at least one deployment");
    for (size_t i = 0; i < md->n_deployments && !rc; i++)
        rc = one_deployment(cx, n->kids[i], c, md, &md->deployments[i]);
    return rc;
}

/* Fallbacks may form cycles (a -> b -> a): the router keeps the set of
 * models a request has visited and never enters one twice, so a cycle ends
 * instead of looping, and refusing it here would forbid useful mutual
 * fallbacks. Only a model naming itself is refused, as it can never help. */
static kz_status read_fallbacks(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *m, const struct kz_config *c,
                                size_t self)
{
    struct kz_cfg_model *md = &c->models[self];
    const struct kz_cfg_node *n = kz_cfg__get(m, "fallbacks");
    if (!n || kz_cfg__is_null(n))
        return KZ_OK;
    void *arr = NULL;
    size_t count = 0;
    kz_status rc = kz_cfg__list(cx, n, KZ_CFG_MAX_ITEMS, "fallbacks", sizeof *md->fallbacks, &arr, &count);
    md->fallbacks = arr;
    char *name = NULL;
    for (size_t i = 0; i < count && !rc; i++) {
        const struct kz_cfg_node *f = n->kids[i];
        rc = kz_cfg__string(cx, f, KZ_CFG_MAX_SCALAR, &name);
        if (rc)
            break;
        char shown[144];
        kz_cfg__show(shown, sizeof shown, name);
        size_t j = 0;
        while (j < c->n_models && strcmp(c->models[j].name, name) != 0)
            j++;
        if (j == c->n_models)
            rc = kz_cfg__fail(cx, f, KZ_EINVAL, "unknown model '%s' (not in models)", shown);
        else if (j == self)
            rc = kz_cfg__fail(cx, f, KZ_EINVAL, "a model cannot fall back to itself");
        for (size_t k = 0; k < md->n_fallbacks && !rc; k++)
            if (md->fallbacks[k] == j)
                rc = kz_cfg__fail(cx, f, KZ_EINVAL, "'%s' is listed twice", shown);
        if (!rc)
            md->fallbacks[md->n_fallbacks++] = j;
    }
    kz_free(name);
    return rc;
}

kz_status kz_cfg__models(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, struct kz_config *c)
{
    if (!n || kz_cfg__is_null(n))
        return KZ_OK;
    void *arr = NULL;
    kz_status rc = kz_cfg__list(cx, n, KZ_CFG_MAX_MODELS, "models", sizeof *c->models, &arr, &c->n_models);
    c->models = arr;
    for (size_t i = 0; i < c->n_models && !rc; i++)
        rc = read_name(cx, n->kids[i], c, i);
    for (size_t i = 0; i < c->n_models && !rc; i++) {
        const struct kz_cfg_node *m = n->kids[i];
        const struct kz_cfg_node *s = kz_cfg__get(m, "strategy");
        int v = KZ_STRAT_PRIORITY;
        if (s && !kz_cfg__is_null(s))
            rc = kz_cfg__choice(cx, s, "strategy", kz_cfg__strategy_names, 5, &v);
        c->models[i].strategy = (enum kz_strategy)v;
        if (!rc)
            rc = read_deployments(cx, m, c, &c->models[i]);
        if (!rc)
            rc = read_fallbacks(cx, m, c, i);
    }
    return rc;
}
