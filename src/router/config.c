/* SPDX-License-Identifier: MIT
 * The configuration loader's entry points: the top level of the file, the
 * `server` and `router` sections, file reading, freeing, lookups, names and
 * the cost formula. Providers and models are in config_provider.c and
 * config_model.c; the YAML tree and the value readers in config_tree.c,
 * config_value.c and config_secret.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "router/config.h"
#include "router/config_int.h"

const char *const kz_cfg__type_names[6] = {"local", "openai", "azure", "anthropic", "bedrock", "kyozon"};
const char *const kz_cfg__privacy_names[3] = {"local", "private", "external"};
const char *const kz_cfg__strategy_names[5] = {"priority", "weighted", "least-busy", "latency", "cost"};

/* ---- server and router: flat mappings of numbers ------------------------- */

enum fkind { F_INT, F_MS, F_NUM, F_SIZE, F_HOST };

struct field {
    const char *key;
    enum fkind kind;
    long long lo, hi; /* F_INT, F_SIZE: range; F_MS: lo (hi is KZ_CFG_MAX_MS); F_NUM: range */
    size_t off;       /* where in the section struct */
};

#define SRV(k, kind, lo, hi) {#k, kind, lo, hi, offsetof(struct kz_cfg_server, k)}
#define RTR(k, kind, lo, hi) {#k, kind, lo, hi, offsetof(struct kz_cfg_router, k)}

static const struct field server_fields[] = {
    SRV(host, F_HOST, 0, 0),
    SRV(port, F_INT, 0, 65535), /* 0: the system picks a free port */
    SRV(max_body, F_SIZE, 1, 1LL << 30),
    SRV(drain_ms, F_MS, 0, 0),
    SRV(max_connections_per_ip, F_INT, 0, 1000000),
};

static const struct field router_fields[] = {
    RTR(max_attempts, F_INT, 1, 100),
    RTR(backoff_base_ms, F_MS, 0, 0),
    RTR(backoff_max_ms, F_MS, 0, 0),
    RTR(retry_budget, F_NUM, 0, 10),
    RTR(retry_min_concurrent, F_INT, 0, 1000000),
    RTR(eject_after, F_INT, 1, 1000000),
    RTR(eject_base_ms, F_MS, 1, 0),
    RTR(eject_max_ms, F_MS, 1, 0),
    RTR(health_interval_ms, F_MS, 0, 0),
    RTR(deadline_ms, F_MS, 1, 0),
};

static kz_status read_host(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, char **out)
{
    kz_status rc = kz_cfg__string(cx, n, 255, out);
    if (!rc && strchr(*out, ' '))
        rc = kz_cfg__fail(cx, n, KZ_EINVAL, "must not contain spaces");
    return rc;
}

static kz_status read_field(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, const struct field *f,
                            char *base)
{
    void *at = base + f->off;
    long long v = 0;
    kz_status rc;
    switch (f->kind) {
    case F_INT:
        return kz_cfg__int(cx, n, (int)f->lo, (int)f->hi, at);
    case F_MS:
        return kz_cfg__ms(cx, n, (unsigned)f->lo, at);
    case F_NUM:
        return kz_cfg__number(cx, n, (double)f->lo, (double)f->hi, at);
    case F_SIZE:
        rc = kz_cfg__integer(cx, n, f->lo, f->hi, &v);
        if (!rc)
            *(size_t *)at = (size_t)v;
        return rc;
    case F_HOST:
        return read_host(cx, n, at);
    }
    return KZ_OK;
}

/* Reads mapping n (absent or null: defaults stay) into the struct at base. */
static kz_status read_section(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, const struct field *fields,
                              size_t count, void *base)
{
    if (!n || kz_cfg__is_null(n))
        return KZ_OK;
    const char *names[16];
    for (size_t i = 0; i < count; i++)
        names[i] = fields[i].key;
    kz_status rc = kz_cfg__want_map(cx, n);
    if (!rc)
        rc = kz_cfg__known_keys(cx, n, names, count);
    for (size_t i = 0; i < n->n_kids && !rc; i++) {
        const struct kz_cfg_node *v = n->kids[i];
        size_t k = 0;
        while (strcmp(fields[k].key, v->key) != 0)
            k++; /* found: known_keys passed */
        if (!kz_cfg__is_null(v))
            rc = read_field(cx, v, &fields[k], base);
    }
    return rc;
}

/* A maximum below its base would make the doubling start above its cap. */
static kz_status check_order(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *router, const char *base_key,
                             unsigned base, const char *max_key, unsigned max)
{
    if (base <= max)
        return KZ_OK;
    const struct kz_cfg_node *at = kz_cfg__get(router, max_key);
    if (!at || kz_cfg__is_null(at))
        at = kz_cfg__get(router, base_key);
    return kz_cfg__fail(cx, at, KZ_EINVAL, "%s (%u) must not be above %s (%u)", base_key, base, max_key, max);
}

static kz_status read_router(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, struct kz_cfg_router *r)
{
    kz_status rc = read_section(cx, n, router_fields, sizeof router_fields / sizeof *router_fields, r);
    if (!rc)
        rc = check_order(cx, n, "backoff_base_ms", r->backoff_base_ms, "backoff_max_ms", r->backoff_max_ms);
    if (!rc)
        rc = check_order(cx, n, "eject_base_ms", r->eject_base_ms, "eject_max_ms", r->eject_max_ms);
    return rc;
}

/* ---- the top level ------------------------------------------------------ */

static kz_status set_defaults(struct kz_config *c)
{
    c->server.host = kz_strdup("127.0.0.1");
    if (!c->server.host)
        return KZ_ENOMEM;
    c->server.port = 8080;
    c->server.max_body = 4u << 20;
    c->server.drain_ms = 10000;
    c->server.max_connections_per_ip = 64;
    c->router.max_attempts = 3;
    c->router.backoff_base_ms = 25;
    c->router.backoff_max_ms = 1000;
    c->router.retry_budget = 0.2;
    c->router.retry_min_concurrent = 3;
    c->router.eject_after = 5;
    c->router.eject_base_ms = 30000;
    c->router.eject_max_ms = 300000;
    c->router.health_interval_ms = 0;
    c->router.deadline_ms = 600000;
    return KZ_OK;
}

static kz_status read_top(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *root, struct kz_config *c)
{
    if (!root || kz_cfg__is_null(root))
        return KZ_OK; /* an empty file: every default, no providers, no models */
    if (root->kind != KZ_CFG_MAP)
        return kz_cfg__fail(cx, root, KZ_EINVAL,
                            "the top level must be a mapping (server:, providers:, models:, router:)");
    for (size_t i = 0; i < root->n_kids; i++) {
        const char *k = root->kids[i]->key;
        /* `keys` and `tenants` would say who may call: ignoring them would
         * leave a server open that its configuration says is closed */
        if (!strcmp(k, "keys") || !strcmp(k, "tenants"))
            return kz_cfg__fail_key(cx, root->kids[i], KZ_EUNSUPPORTED,
                                    "API keys and tenants are not supported yet; this server would run open");
        if (strcmp(k, "server") && strcmp(k, "providers") && strcmp(k, "models") && strcmp(k, "router") &&
            strcmp(k, "ledger"))
            return kz_cfg__fail_key(cx, root->kids[i], KZ_EINVAL,
                                    "unknown key (expected server, providers, models, router or ledger)");
    }
    kz_status rc = read_section(cx, kz_cfg__get(root, "server"), server_fields,
                                sizeof server_fields / sizeof *server_fields, &c->server);
    if (!rc)
        rc = read_router(cx, kz_cfg__get(root, "router"), &c->router);
    if (!rc)
        rc = kz_cfg__providers(cx, kz_cfg__get(root, "providers"), c);
    if (!rc)
        rc = kz_cfg__models(cx, kz_cfg__get(root, "models"), c);
    const struct kz_cfg_node *ledger = kz_cfg__get(root, "ledger");
    if (!rc && ledger && !kz_cfg__is_null(ledger))
        rc = kz_cfg__string(cx, ledger, KZ_CFG_MAX_SCALAR, &c->ledger);
    return rc;
}

/* Parses text; `name` is for messages and relative paths, `path` is what
 * kz_config.path records. */
static kz_status parse_as(const char *text, size_t len, const char *name, const char *path, struct kz_config **out,
                          struct kz_err *err)
{
    struct kz_cfg_ctx cx = {name, err};
    if (len > KZ_CFG_MAX_FILE)
        return kz_err_set(err, KZ_ELIMIT, "%s: larger than %u bytes (the limit for a configuration file)", name,
                          KZ_CFG_MAX_FILE);
    struct kz_cfg_node *root = NULL;
    struct kz_config *c = kz_calloc(1, sizeof *c);
    if (!c)
        return KZ_ENOMEM;
    kz_status rc = set_defaults(c);
    if (!rc) {
        c->path = kz_strdup(path);
        if (!c->path)
            rc = KZ_ENOMEM;
    }
    if (!rc)
        rc = kz_cfg__tree_build(&cx, text ? text : "", text ? len : 0, &root);
    if (!rc)
        rc = read_top(&cx, root, c);
    kz_cfg__tree_free(root);
    if (rc) {
        if (rc == KZ_ENOMEM)
            kz_err_set(err, rc, "%s: out of memory while loading the configuration", name);
        kz_config_free(c);
        return rc;
    }
    *out = c;
    return KZ_OK;
}

kz_status kz_config_parse(const char *text, size_t len, const char *name, struct kz_config **out, struct kz_err *err)
{
    return parse_as(text, len, name ? name : "<memory>", "<memory>", out, err);
}

kz_status kz_config_load(const char *path, struct kz_config **out, struct kz_err *err)
{
    /* Not O_NONBLOCK and no regular-file check: `--config <(generate)`
     * hands us a pipe, which is fine to read to its end. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kz_err_set(err, errno == ENOENT ? KZ_ENOTFOUND : KZ_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1u << 16, len = 0;
    char *buf = kz_malloc(cap);
    kz_status rc = buf ? KZ_OK : KZ_ENOMEM;
    while (!rc) {
        if (len == cap) {
            if (cap > KZ_CFG_MAX_FILE) {
                rc = kz_err_set(err, KZ_ELIMIT, "%s: larger than %u bytes (the limit for a configuration file)",
                                path, KZ_CFG_MAX_FILE);
                break;
            }
            char *nb = kz_realloc(buf, 2 * cap);
            if (!nb) {
                rc = KZ_ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t k = read(fd, buf + len, cap - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            rc = kz_err_set(err, KZ_EIO, "%s: cannot read: %s", path, strerror(errno));
        else if (k == 0)
            break;
        else
            len += (size_t)k;
    }
    close(fd);
    if (!rc)
        rc = parse_as(buf, len, path, path, out, err);
    else if (rc == KZ_ENOMEM)
        kz_err_set(err, rc, "%s: out of memory while loading the configuration", path);
    kz_free(buf);
    return rc;
}

void kz_config_free(struct kz_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_providers; i++) {
        struct kz_cfg_provider *p = &c->providers[i];
        kz_free(p->name);
        kz_free(p->base_url);
        kz_free(p->model_path);
        kz_free(p->api_version);
        kz_free(p->region);
        kz_cfg__secret_free(p->api_key);
        kz_cfg__secret_free(p->access_key_id);
        kz_cfg__secret_free(p->secret_access_key);
        kz_cfg__secret_free(p->session_token);
    }
    for (size_t i = 0; i < c->n_models; i++) {
        struct kz_cfg_model *m = &c->models[i];
        for (size_t j = 0; j < m->n_deployments; j++)
            kz_free(m->deployments[j].model);
        kz_free(m->deployments);
        kz_free(m->fallbacks);
        kz_free(m->name);
    }
    kz_free(c->providers);
    kz_free(c->models);
    kz_free(c->server.host);
    kz_free(c->path);
    kz_free(c->ledger);
    kz_free(c);
}

/* ---- lookups, names, cost ------------------------------------------------ */

const struct kz_cfg_provider *kz_config_provider(const struct kz_config *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->n_providers; i++)
        if (strcmp(c->providers[i].name, name) == 0)
            return &c->providers[i];
    return NULL;
}

const struct kz_cfg_model *kz_config_model(const struct kz_config *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->n_models; i++)
        if (strcmp(c->models[i].name, name) == 0)
            return &c->models[i];
    return NULL;
}

const char *kz_provider_type_name(enum kz_provider_type t)
{
    return (unsigned)t < 6 ? kz_cfg__type_names[t] : "unknown";
}

const char *kz_privacy_name(enum kz_privacy p) { return (unsigned)p < 3 ? kz_cfg__privacy_names[p] : "unknown"; }

const char *kz_strategy_name(enum kz_strategy s) { return (unsigned)s < 5 ? kz_cfg__strategy_names[s] : "unknown"; }

/* 128-bit arithmetic: 2^31 tokens times a price of 10^12 micro-dollars is
 * about 2^71, past int64. Every product and their sum fit in unsigned 128
 * bits for any non-negative long inputs (2 * 2^63 * 2^63 = 2^127), so the
 * ceiling division is exact; results past int64 saturate. */
__extension__ typedef unsigned __int128 kz_u128;

int64_t kz_price_cost(const struct kz_price *p, long input_tokens, long output_tokens)
{
    /* Negative counts or prices mean "unknown" or a bug upstream: they add nothing. */
    kz_u128 in = input_tokens > 0 ? (kz_u128)input_tokens : 0;
    kz_u128 out = output_tokens > 0 ? (kz_u128)output_tokens : 0;
    kz_u128 pi = p->input_per_mtok > 0 ? (kz_u128)p->input_per_mtok : 0;
    kz_u128 po = p->output_per_mtok > 0 ? (kz_u128)p->output_per_mtok : 0;
    kz_u128 total = in * pi + out * po;
    kz_u128 cost = total / 1000000 + (total % 1000000 != 0);
    return cost > (kz_u128)INT64_MAX ? INT64_MAX : (int64_t)cost;
}
