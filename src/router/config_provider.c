/* SPDX-License-Identifier: MIT
 * The `providers` section: one struct kz_cfg_provider per list item.
 *
 * Which keys a provider accepts depends on its type (the table below): a key
 * meant for another type is an error rather than silently unused, since it
 * usually means the type or the key is wrong.
 */
#include <string.h>

#include "core/alloc.h"
#include "router/config_int.h"

enum pkey {
    PK_NAME, PK_TYPE, PK_BASE_URL, PK_API_KEY, PK_MODEL_PATH, PK_N_PARALLEL, PK_N_CTX, PK_N_THREADS, PK_KV_TYPE,
    PK_API_VERSION, PK_REGION, PK_ACCESS_KEY_ID, PK_SECRET_ACCESS_KEY, PK_SESSION_TOKEN, PK_CONNECT_TIMEOUT,
    PK_HEADER_TIMEOUT, PK_IDLE_TIMEOUT, PK_REQUEST_TIMEOUT, PK_MAX_CONCURRENCY, PK_PRICE, PK_PRIVACY, PK_WEIGHT,
    PK_UPSTREAM_STREAM,
    PK_COUNT
};

#define T(x) (1u << KZ_PROV_##x)
#define REMOTE (T(OPENAI) | T(AZURE) | T(ANTHROPIC) | T(BEDROCK) | T(KYOZON))
#define ALL (REMOTE | T(LOCAL))

static const struct {
    const char *key;
    unsigned types; /* bit per enum kz_provider_type that accepts it */
} pkeys[PK_COUNT] = {
    [PK_NAME] = {"name", ALL},
    [PK_TYPE] = {"type", ALL},
    [PK_BASE_URL] = {"base_url", REMOTE},
    [PK_API_KEY] = {"api_key", REMOTE},
    [PK_MODEL_PATH] = {"model_path", T(LOCAL)},
    [PK_N_PARALLEL] = {"n_parallel", T(LOCAL)},
    [PK_N_CTX] = {"n_ctx", T(LOCAL)},
    [PK_N_THREADS] = {"n_threads", T(LOCAL)},
    [PK_KV_TYPE] = {"kv_type", T(LOCAL)},
    [PK_API_VERSION] = {"api_version", T(AZURE)},
    [PK_REGION] = {"region", T(BEDROCK)},
    [PK_ACCESS_KEY_ID] = {"access_key_id", T(BEDROCK)},
    [PK_SECRET_ACCESS_KEY] = {"secret_access_key", T(BEDROCK)},
    [PK_SESSION_TOKEN] = {"session_token", T(BEDROCK)},
    /* The local engine has no connection to open or wait on. */
    [PK_CONNECT_TIMEOUT] = {"connect_timeout_ms", REMOTE},
    [PK_HEADER_TIMEOUT] = {"header_timeout_ms", REMOTE},
    [PK_IDLE_TIMEOUT] = {"idle_timeout_ms", REMOTE},
    [PK_REQUEST_TIMEOUT] = {"request_timeout_ms", ALL},
    [PK_MAX_CONCURRENCY] = {"max_concurrency", ALL},
    [PK_PRICE] = {"price", ALL},
    [PK_PRIVACY] = {"privacy", ALL},
    [PK_WEIGHT] = {"weight", ALL},
    [PK_UPSTREAM_STREAM] = {"upstream_stream", REMOTE},
};

static int find_key(const char *key)
{
    for (int i = 0; i < PK_COUNT; i++)
        if (strcmp(pkeys[i].key, key) == 0)
            return i;
    return -1;
}

/* Characters allowed in a name, an api-version or a region: all of them end
 * up in URLs, metric labels or log lines without quoting. */
static int only_chars(const char *s, const char *extra, int upper)
{
    for (; *s; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (upper && c >= 'A' && c <= 'Z') ||
                 strchr(extra, c) != NULL;
        if (!ok)
            return 0;
    }
    return 1;
}

static kz_status read_name(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *m, struct kz_config *c, size_t i)
{
    const struct kz_cfg_node *n = kz_cfg__get(m, "name");
    if (!n || kz_cfg__is_null(n))
        return kz_cfg__fail(cx, m, KZ_EINVAL, "missing required key 'name'");
    struct kz_cfg_provider *p = &c->providers[i];
    kz_status rc = kz_cfg__string(cx, n, KZ_CFG_MAX_PROVIDER_NAME, &p->name);
    if (rc)
        return rc;
    if (!only_chars(p->name, "._-", 1))
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must use only letters, digits, '.', '_' and '-'");
    for (size_t j = 0; j < i; j++)
        if (strcmp(c->providers[j].name, p->name) == 0)
            return kz_cfg__fail(cx, n, KZ_EINVAL, "duplicate provider name '%s' (first at line %d)", p->name,
                                c->providers[j].line);
    return KZ_OK;
}

static kz_status read_type(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *m, struct kz_config *c, size_t i)
{
    const struct kz_cfg_node *n = kz_cfg__get(m, "type");
    if (!n || kz_cfg__is_null(n))
        return kz_cfg__fail(cx, m, KZ_EINVAL, "missing required key 'type'");
    int t = 0;
    kz_status rc = kz_cfg__choice(cx, n, "provider type", kz_cfg__type_names, 6, &t);
    if (rc)
        return rc;
    /* One engine per process: two local providers would share one model
     * slot and one thread pool while the router counted them twice. */
    for (size_t j = 0; j < i && t == KZ_PROV_LOCAL; j++)
        if (c->providers[j].type == KZ_PROV_LOCAL)
            return kz_cfg__fail(cx, n, KZ_EINVAL, "only one provider of type local is allowed (providers[%zu] is one)",
                                j);
    c->providers[i].type = (enum kz_provider_type)t;
    return KZ_OK;
}

static kz_status read_base_url(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, char **out)
{
    kz_status rc = kz_cfg__string(cx, n, 2048, out);
    if (rc)
        return rc;
    char *s = *out;
    size_t scheme = strncmp(s, "http://", 7) == 0 ? 7 : strncmp(s, "https://", 8) == 0 ? 8 : 0;
    if (!scheme)
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must start with http:// or https://");
    if (!s[scheme] || s[scheme] == '/')
        return kz_cfg__fail(cx, n, KZ_EINVAL, "has no host after the scheme");
    if (strchr(s, ' '))
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must not contain spaces");
    /* Adapters append "/chat/completions" and the like. */
    size_t len = strlen(s);
    if (s[len - 1] == '/')
        s[len - 1] = '\0';
    return KZ_OK;
}

static kz_status read_checked(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, size_t max, const char *extra,
                              int upper, const char *allowed, char **out)
{
    kz_status rc = kz_cfg__string(cx, n, max, out);
    if (!rc && !only_chars(*out, extra, upper))
        rc = kz_cfg__fail(cx, n, KZ_EINVAL, "must use only %s", allowed);
    return rc;
}

static kz_status read_model_path(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, char **out)
{
    char *rel = NULL;
    kz_status rc = kz_cfg__string(cx, n, KZ_CFG_MAX_SCALAR, &rel);
    if (rc)
        return rc;
    char *full = kz_cfg__path_near(cx->name, rel);
    kz_free(rel);
    if (!full)
        return KZ_ENOMEM;
    kz_free(*out);
    *out = full;
    return KZ_OK;
}

static kz_status read_privacy(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, struct kz_cfg_provider *p)
{
    int v = 0;
    kz_status rc = kz_cfg__choice(cx, n, "privacy", kz_cfg__privacy_names, 3, &v);
    if (rc)
        return rc;
    /* `local` promises the data never leaves this machine; only the engine
     * in this process can keep that promise. */
    if (v == KZ_PRIVACY_LOCAL && p->type != KZ_PROV_LOCAL)
        return kz_cfg__fail(cx, n, KZ_EINVAL, "only a provider of type local can have privacy local (use private "
                                              "for machines you control)");
    p->privacy = (enum kz_privacy)v;
    return KZ_OK;
}

static kz_status read_key(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, enum pkey k,
                          struct kz_cfg_provider *p)
{
    switch (k) {
    case PK_NAME:
    case PK_TYPE:
    case PK_COUNT:
        return KZ_OK; /* read first, by read_name and read_type */
    case PK_BASE_URL:
        return read_base_url(cx, n, &p->base_url);
    case PK_API_KEY:
        return kz_cfg__secret(cx, n, &p->api_key);
    case PK_MODEL_PATH:
        return read_model_path(cx, n, &p->model_path);
    case PK_N_PARALLEL:
        return kz_cfg__int(cx, n, 0, 1024, &p->n_parallel);
    case PK_N_CTX:
        return kz_cfg__int(cx, n, 0, 1 << 24, &p->n_ctx);
    case PK_N_THREADS:
        return kz_cfg__int(cx, n, 0, 1024, &p->n_threads);
    case PK_KV_TYPE: {
        static const char *const names[2] = {"f16", "f32"};
        return kz_cfg__choice(cx, n, "kv_type", names, 2, &p->kv_f32);
    }
    case PK_API_VERSION:
        return read_checked(cx, n, 64, "._-", 1, "letters, digits, '.', '_' and '-'", &p->api_version);
    case PK_REGION:
        return read_checked(cx, n, 32, "-", 0, "lower-case letters, digits and '-'", &p->region);
    case PK_ACCESS_KEY_ID:
        return kz_cfg__secret(cx, n, &p->access_key_id);
    case PK_SECRET_ACCESS_KEY:
        return kz_cfg__secret(cx, n, &p->secret_access_key);
    case PK_SESSION_TOKEN:
        return kz_cfg__secret(cx, n, &p->session_token);
    case PK_CONNECT_TIMEOUT:
        return kz_cfg__ms(cx, n, 1, &p->connect_timeout_ms);
    case PK_HEADER_TIMEOUT:
        return kz_cfg__ms(cx, n, 1, &p->header_timeout_ms);
    case PK_IDLE_TIMEOUT:
        return kz_cfg__ms(cx, n, 1, &p->idle_timeout_ms);
    case PK_REQUEST_TIMEOUT:
        return kz_cfg__ms(cx, n, 1, &p->request_timeout_ms);
    case PK_MAX_CONCURRENCY:
        return kz_cfg__int(cx, n, 0, 1000000, &p->max_concurrency);
    case PK_PRICE:
        p->has_price = 1;
        return kz_cfg__price(cx, n, &p->price);
    case PK_PRIVACY:
        return read_privacy(cx, n, p);
    case PK_WEIGHT:
        return kz_cfg__int(cx, n, 1, 1000000, &p->weight);
    case PK_UPSTREAM_STREAM: {
        static const char *const names[2] = {"always", "client"};
        return kz_cfg__choice(cx, n, "upstream_stream", names, 2, &p->upstream_stream_client);
    }
    }
    return KZ_OK;
}

/* What each type cannot work without, once every key is read. */
static kz_status check_required(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *m,
                                 const struct kz_cfg_provider *p)
{
    const char *tn = kz_provider_type_name(p->type);
    const char *missing = NULL;
    if (p->type != KZ_PROV_LOCAL && !p->base_url)
        missing = "base_url";
    else if (p->type == KZ_PROV_LOCAL && !p->model_path)
        missing = "model_path";
    else if (p->type == KZ_PROV_AZURE && !p->api_version)
        missing = "api_version";
    else if ((p->type == KZ_PROV_AZURE || p->type == KZ_PROV_ANTHROPIC) && !p->api_key)
        missing = "api_key";
    else if (p->type == KZ_PROV_BEDROCK && !p->region)
        missing = "region";
    if (missing)
        return kz_cfg__fail(cx, m, KZ_EINVAL, "missing required key '%s' (a provider of type %s needs it)", missing,
                            tn);
    if (p->type != KZ_PROV_BEDROCK)
        return KZ_OK;
    int sigv4 = p->access_key_id || p->secret_access_key || p->session_token;
    if (sigv4 && p->api_key)
        return kz_cfg__fail(cx, m, KZ_EINVAL, "give either api_key or access_key_id and secret_access_key, not both");
    if (sigv4 && (!p->access_key_id || !p->secret_access_key))
        return kz_cfg__fail(cx, m, KZ_EINVAL, "access_key_id and secret_access_key must be given together");
    if (!sigv4 && !p->api_key)
        return kz_cfg__fail(cx, m, KZ_EINVAL,
                            "missing credentials: access_key_id and secret_access_key, or api_key (a Bedrock API key)");
    return KZ_OK;
}

static kz_status one_provider(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *m, struct kz_config *c,
                              size_t i)
{
    struct kz_cfg_provider *p = &c->providers[i];
    p->line = m->line;
    kz_status rc = kz_cfg__want_map(cx, m);
    if (rc)
        return rc;
    /* Unknown keys first: a misspelt `name` is reported as what it is. */
    for (size_t k = 0; k < m->n_kids; k++)
        if (find_key(m->kids[k]->key) < 0)
            return kz_cfg__fail_key(cx, m->kids[k], KZ_EINVAL, "unknown key");
    rc = read_name(cx, m, c, i);
    if (!rc)
        rc = read_type(cx, m, c, i);
    if (rc)
        return rc;
    p->connect_timeout_ms = 2000;
    p->header_timeout_ms = 30000;
    p->idle_timeout_ms = 30000;
    p->request_timeout_ms = 600000;
    p->privacy = p->type == KZ_PROV_LOCAL ? KZ_PRIVACY_LOCAL : KZ_PRIVACY_EXTERNAL;
    p->weight = 1;
    for (size_t k = 0; k < m->n_kids && !rc; k++) {
        const struct kz_cfg_node *n = m->kids[k];
        int key = find_key(n->key);
        if (!(pkeys[key].types & (1u << p->type)))
            return kz_cfg__fail_key(cx, n, KZ_EINVAL, "not allowed for a provider of type %s",
                                    kz_provider_type_name(p->type));
        if (!kz_cfg__is_null(n))
            rc = read_key(cx, n, (enum pkey)key, p);
    }
    if (!rc)
        rc = check_required(cx, m, p);
    return rc;
}

kz_status kz_cfg__providers(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, struct kz_config *c)
{
    if (!n || kz_cfg__is_null(n))
        return KZ_OK;
    void *arr = NULL;
    kz_status rc = kz_cfg__list(cx, n, KZ_CFG_MAX_PROVIDERS, "providers", sizeof *c->providers, &arr, &c->n_providers);
    c->providers = arr;
    for (size_t i = 0; i < c->n_providers && !rc; i++)
        rc = one_provider(cx, n->kids[i], c, i);
    return rc;
}
