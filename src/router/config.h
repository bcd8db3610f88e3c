/* SPDX-License-Identifier: MIT
 * The router's configuration: a YAML file (libyaml) with `server`,
 * `providers`, `models` and `router` sections, validated completely at load.
 * Every error names the file, the line and the key path, for example
 *   kyozon.yaml:14: providers[1].type: unknown provider type 'opneai'
 *   (expected local, openai, azure, anthropic, bedrock or kyozon)
 * Unknown keys are errors too (a typo must not silently do nothing).
 *
 * Secrets are references only: `api_key: env:NAME` or `api_key: file:PATH`;
 * a literal secret in the file is refused. References are resolved at load
 * (a missing variable or file is an error naming the key, never the value);
 * the resolved values live in the struct and are never logged or printed.
 *
 * Ownership: kz_config_parse/kz_config_load allocate one struct kz_config
 * with every string and array in it; kz_config_free frees it all.
 */
#ifndef KZ_ROUTER_CONFIG_H
#define KZ_ROUTER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

enum kz_provider_type {
    KZ_PROV_LOCAL,     /* this node's engine (at most one per config) */
    KZ_PROV_OPENAI,    /* any OpenAI-compatible endpoint: OpenAI, vLLM, llama.cpp, Ollama */
    KZ_PROV_AZURE,     /* Azure OpenAI: deployment URLs, api-version, api-key header */
    KZ_PROV_ANTHROPIC, /* Anthropic Messages */
    KZ_PROV_BEDROCK,   /* AWS Bedrock Converse / ConverseStream, SigV4 */
    KZ_PROV_KYOZON     /* another kyozon node (OpenAI dialect) */
};

/* Ordered: a request may go to providers whose tier is <= its ceiling. */
enum kz_privacy { KZ_PRIVACY_LOCAL = 0, KZ_PRIVACY_PRIVATE = 1, KZ_PRIVACY_EXTERNAL = 2 };

enum kz_strategy { KZ_STRAT_PRIORITY, KZ_STRAT_WEIGHTED, KZ_STRAT_LEAST_BUSY, KZ_STRAT_LATENCY, KZ_STRAT_COST };

/* Money is integer micro-dollars. A price is micro-dollars per million
 * tokens: `input_per_mtok: 0.15` is 150000. */
struct kz_price {
    int64_t input_per_mtok;
    int64_t output_per_mtok;
};

struct kz_cfg_provider {
    char *name;
    enum kz_provider_type type;
    char *base_url;          /* remote types: required, no trailing '/'. NULL for local */
    char *api_key;           /* resolved secret or NULL (optional for openai/kyozon) */
    /* local */
    char *model_path;        /* local: required; relative paths are relative to the config file's directory */
    int n_parallel, n_ctx, n_threads; /* local: 0 means the engine default */
    int kv_f32;              /* local: kv_type f32 (1) or f16 (0, the default) */
    /* azure */
    char *api_version;       /* azure: required (e.g. "2024-10-21") */
    /* bedrock */
    char *region;            /* bedrock: required */
    char *access_key_id;     /* bedrock: resolved secrets (required unless api_key is a bearer key) */
    char *secret_access_key;
    char *session_token;     /* optional */
    /* limits and timeouts (milliseconds); defaults in brackets */
    unsigned connect_timeout_ms; /* [2000] TCP/TLS connect */
    unsigned header_timeout_ms;  /* [30000] per try: request sent to response head */
    unsigned idle_timeout_ms;    /* [30000] longest silence inside a streamed answer */
    unsigned request_timeout_ms; /* [600000] whole try */
    int max_concurrency;         /* [0 = unlimited] requests in flight to this provider */
    struct kz_price price;       /* [0, 0] */
    int has_price;
    enum kz_privacy privacy;     /* [local for type local, external otherwise] */
    int weight;                  /* [1] default weight of its deployments */
    int upstream_stream_client;  /* [0: always stream] 1: stream only when the client does */
    int line;                    /* where it was defined, for messages */
};

struct kz_cfg_deployment {
    size_t provider;             /* index into kz_config.providers */
    char *model;                 /* upstream model id (for local: informational) */
    int weight;                  /* [provider's weight] >= 1 */
    struct kz_price price;       /* [provider's price] */
    int has_price;
};

struct kz_cfg_model {
    char *name;                  /* public model name clients send */
    enum kz_strategy strategy;   /* [priority] */
    struct kz_cfg_deployment *deployments;
    size_t n_deployments;        /* >= 1 */
    size_t *fallbacks;           /* indices into kz_config.models, in order (never itself) */
    size_t n_fallbacks;
    int line;
};

/* Resilience knobs (all optional; defaults in brackets). */
struct kz_cfg_router {
    int max_attempts;            /* [3] tries per request over all deployments and fallbacks */
    unsigned backoff_base_ms;    /* [25] first retry delay; doubles, with full jitter */
    unsigned backoff_max_ms;     /* [1000] */
    double retry_budget;         /* [0.2] retries in flight at once, as a fraction of requests in flight ... */
    int retry_min_concurrent;    /* [3] ... but at least this many */
    int eject_after;             /* [5] consecutive failures that eject a deployment */
    unsigned eject_base_ms;      /* [30000] first ejection; doubles on each repeat */
    unsigned eject_max_ms;       /* [300000] */
    unsigned health_interval_ms; /* [0 = off] active health checks (GET /models or /health) */
    unsigned deadline_ms;        /* [600000] whole request, all attempts */
};

struct kz_cfg_server {
    char *host;                  /* [127.0.0.1] */
    int port;                    /* [8080] */
    size_t max_body;             /* [4 MiB] */
    unsigned drain_ms;           /* [10000] */
    int max_connections_per_ip;  /* [64] 0: no cap (behind a proxy every client is one address) */
};

struct kz_config {
    char *path;                  /* as given to kz_config_load ("<memory>" for parse) */
    struct kz_cfg_server server;
    struct kz_cfg_router router;
    struct kz_cfg_provider *providers;
    size_t n_providers;
    struct kz_cfg_model *models;
    size_t n_models;
    char *ledger;                /* [NULL] `ledger:` as written; reserved for the usage ledger */
};

/* Parses and validates YAML text. `name` is used in messages and to resolve
 * relative paths (its directory). On failure err reads
 * "NAME:LINE: key.path: problem" and *out is untouched. */
kz_status kz_config_parse(const char *text, size_t len, const char *name, struct kz_config **out /* out */,
                          struct kz_err *err);

/* Reads and parses a file (at most 1 MiB). */
kz_status kz_config_load(const char *path, struct kz_config **out /* out */, struct kz_err *err);

void kz_config_free(struct kz_config *c); /* NULL is a no-op */

/* Lookups; NULL when absent. */
const struct kz_cfg_provider *kz_config_provider(const struct kz_config *c, const char *name);
const struct kz_cfg_model *kz_config_model(const struct kz_config *c, const char *name);

/* Names for messages and /v1/providers. */
const char *kz_provider_type_name(enum kz_provider_type t);
const char *kz_privacy_name(enum kz_privacy p);
const char *kz_strategy_name(enum kz_strategy s);

/* Cost in micro-dollars of a request, rounded up (a provider never bills
 * less than us): ceil((in * price.input + out * price.output) / 1e6). */
int64_t kz_price_cost(const struct kz_price *p, long input_tokens, long output_tokens);

#endif
