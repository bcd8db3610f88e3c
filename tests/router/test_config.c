/* SPDX-License-Identifier: MIT
 * The YAML configuration loader: the documented example field by field,
 * defaults, every class of error with its file:line prefix and key path,
 * secrets kept out of messages, file: references, relative paths, limits
 * against hostile files, price rounding, lookups and allocation failures.
 *
 * To add an error case, append {yaml, line, "substring"} to bad_cases[]:
 * the message must start with "bad.yaml:LINE: " and contain the substring.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "router/config.h"
#include "t.h"

#define NODE_B_KEY "nodeb-secret-1234"
#define OPENAI_KEY "sk-test-5678"
/* Never to appear in a message. */
#define CANARY "canary-Zq7xW3pL9v"

/* The example from the issue, verbatim, plus the `chat-large` model its
 * fallback names (lines 31-36). */
static const char example[] =
    "server:\n"                                                    /* 1 */
    "  host: 127.0.0.1\n"                                          /* 2 */
    "  port: 8080\n"                                               /* 3 */
    "providers:\n"                                                 /* 4 */
    "  - name: local\n"                                            /* 5 */
    "    type: local\n"                                            /* 6 */
    "    model_path: models/llama-3.2-1b-q4_0.gguf\n"              /* 7 */
    "    privacy: local\n"                                         /* 8 */
    "  - name: node-b\n"                                           /* 9 */
    "    type: kyozon\n"                                           /* 10 */
    "    base_url: http://127.0.0.1:8081/v1\n"                     /* 11 */
    "    api_key: env:NODE_B_KEY\n"                                /* 12 */
    "    privacy: private\n"                                       /* 13 */
    "  - name: openai\n"                                           /* 14 */
    "    type: openai\n"                                           /* 15 */
    "    base_url: https://api.openai.com/v1\n"                    /* 16 */
    "    api_key: env:OPENAI_API_KEY\n"                            /* 17 */
    "    privacy: external\n"                                      /* 18 */
    "    price: {input_per_mtok: 0.15, output_per_mtok: 0.60}\n"   /* 19 */
    "models:\n"                                                    /* 20 */
    "  - name: chat\n"                                             /* 21 */
    "    strategy: priority          # priority | weighted | least-busy | latency | cost\n"
    "    deployments:\n"                                           /* 23 */
    "      - {provider: local, model: llama-3.2-1b}\n"             /* 24 */
    "      - {provider: node-b, model: chat, weight: 2}\n"         /* 25 */
    "      - {provider: openai, model: gpt-4o-mini}\n"             /* 26 */
    "    fallbacks: [chat-large]\n"                                /* 27 */
    "  - name: chat-large\n"                                       /* 28 */
    "    strategy: cost\n"                                         /* 29 */
    "    deployments:\n"                                           /* 30 */
    "      - provider: openai\n"                                   /* 31 */
    "        model: gpt-4o\n"                                      /* 32 */
    "        price: {input_per_mtok: 2.5, output_per_mtok: 10}\n"  /* 33 */
    "    fallbacks: [chat]\n";                                     /* 34 */

static void set_env(void)
{
    setenv("NODE_B_KEY", NODE_B_KEY, 1);
    setenv("OPENAI_API_KEY", OPENAI_KEY, 1);
    setenv("KZ_TEST_CANARY", CANARY, 1);
    setenv("KZ_TEST_CANARY_CTRL", CANARY "\r\nX-Injected: 1", 1);
    setenv("KZ_TEST_EMPTY", "", 1);
    unsetenv("KZ_TEST_UNSET");
}

static kz_status parse(const char *yaml, const char *name, struct kz_config **c, struct kz_err *e)
{
    memset(e, 0, sizeof *e);
    *c = NULL;
    return kz_config_parse(yaml, strlen(yaml), name, c, e);
}

static void check_default_timeouts(const struct kz_cfg_provider *p)
{
    T_EQ_INT(p->connect_timeout_ms, 2000);
    T_EQ_INT(p->header_timeout_ms, 30000);
    T_EQ_INT(p->idle_timeout_ms, 30000);
    T_EQ_INT(p->request_timeout_ms, 600000);
    T_EQ_INT(p->max_concurrency, 0);
}

static void check_default_router(const struct kz_cfg_router *r)
{
    T_EQ_INT(r->max_attempts, 3);
    T_EQ_INT(r->backoff_base_ms, 25);
    T_EQ_INT(r->backoff_max_ms, 1000);
    T_OK(r->retry_budget == 0.2, "retry_budget %g", r->retry_budget);
    T_EQ_INT(r->retry_min_concurrent, 3);
    T_EQ_INT(r->eject_after, 5);
    T_EQ_INT(r->eject_base_ms, 30000);
    T_EQ_INT(r->eject_max_ms, 300000);
    T_EQ_INT(r->health_interval_ms, 0);
    T_EQ_INT(r->deadline_ms, 600000);
}

/* ---- the example --------------------------------------------------------- */

static void example_loads(void)
{
    struct kz_config *c;
    struct kz_err e;
    kz_status rc = parse(example, "/etc/kyozon/kyozon.yaml", &c, &e);
    T_OK(rc == KZ_OK, "example: %s", e.msg);
    if (rc)
        return;
    T_EQ_STR(c->path, "<memory>");
    T_EQ_STR(c->server.host, "127.0.0.1");
    T_EQ_INT(c->server.port, 8080);
    T_EQ_INT(c->server.max_body, 4 << 20);
    T_EQ_INT(c->server.drain_ms, 10000);
    check_default_router(&c->router);
    T_OK(c->ledger == NULL, "no ledger");

    T_EQ_INT(c->n_providers, 3);
    const struct kz_cfg_provider *p = &c->providers[0];
    T_EQ_STR(p->name, "local");
    T_EQ_INT(p->type, KZ_PROV_LOCAL);
    T_OK(!p->base_url && !p->api_key && !p->api_version && !p->region, "local has no remote fields");
    T_OK(!p->access_key_id && !p->secret_access_key && !p->session_token, "local has no AWS secrets");
    T_EQ_STR(p->model_path, "/etc/kyozon/models/llama-3.2-1b-q4_0.gguf");
    T_EQ_INT(p->n_parallel, 0);
    T_EQ_INT(p->n_ctx, 0);
    T_EQ_INT(p->n_threads, 0);
    T_EQ_INT(p->kv_f32, 0); /* F16 by default */
    T_EQ_INT(p->privacy, KZ_PRIVACY_LOCAL);
    T_EQ_INT(p->weight, 1);
    T_EQ_INT(p->has_price, 0);
    T_EQ_INT(p->price.input_per_mtok, 0);
    T_EQ_INT(p->line, 5);
    check_default_timeouts(p);

    p = &c->providers[1];
    T_EQ_STR(p->name, "node-b");
    T_EQ_INT(p->type, KZ_PROV_KYOZON);
    T_EQ_STR(p->base_url, "http://127.0.0.1:8081/v1");
    T_EQ_STR(p->api_key, NODE_B_KEY);
    T_OK(!p->model_path, "no model_path");
    T_EQ_INT(p->privacy, KZ_PRIVACY_PRIVATE);
    T_EQ_INT(p->weight, 1);
    T_EQ_INT(p->has_price, 0);
    T_EQ_INT(p->line, 9);
    check_default_timeouts(p);

    p = &c->providers[2];
    T_EQ_STR(p->name, "openai");
    T_EQ_INT(p->type, KZ_PROV_OPENAI);
    T_EQ_STR(p->base_url, "https://api.openai.com/v1");
    T_EQ_STR(p->api_key, OPENAI_KEY);
    T_EQ_INT(p->privacy, KZ_PRIVACY_EXTERNAL);
    T_EQ_INT(p->has_price, 1);
    T_EQ_INT(p->price.input_per_mtok, 150000);
    T_EQ_INT(p->price.output_per_mtok, 600000);
    T_EQ_INT(p->line, 14);
    check_default_timeouts(p);

    T_EQ_INT(c->n_models, 2);
    const struct kz_cfg_model *m = &c->models[0];
    T_EQ_STR(m->name, "chat");
    T_EQ_INT(m->strategy, KZ_STRAT_PRIORITY);
    T_EQ_INT(m->line, 21);
    T_EQ_INT(m->n_deployments, 3);
    if (m->n_deployments == 3) {
        const struct kz_cfg_deployment *d = m->deployments;
        T_EQ_INT(d[0].provider, 0);
        T_EQ_STR(d[0].model, "llama-3.2-1b");
        T_EQ_INT(d[0].weight, 1);
        T_EQ_INT(d[0].has_price, 0);
        T_EQ_INT(d[1].provider, 1);
        T_EQ_STR(d[1].model, "chat");
        T_EQ_INT(d[1].weight, 2);
        T_EQ_INT(d[1].has_price, 0);
        T_EQ_INT(d[2].provider, 2);
        T_EQ_STR(d[2].model, "gpt-4o-mini");
        T_EQ_INT(d[2].weight, 1);
        T_EQ_INT(d[2].has_price, 1); /* inherited from the provider */
        T_EQ_INT(d[2].price.input_per_mtok, 150000);
        T_EQ_INT(d[2].price.output_per_mtok, 600000);
    }
    T_EQ_INT(m->n_fallbacks, 1);
    if (m->n_fallbacks == 1)
        T_EQ_INT(m->fallbacks[0], 1);

    m = &c->models[1];
    T_EQ_STR(m->name, "chat-large");
    T_EQ_INT(m->strategy, KZ_STRAT_COST);
    T_EQ_INT(m->line, 28);
    T_EQ_INT(m->n_deployments, 1);
    if (m->n_deployments == 1) {
        T_EQ_INT(m->deployments[0].provider, 2);
        T_EQ_STR(m->deployments[0].model, "gpt-4o");
        T_EQ_INT(m->deployments[0].has_price, 1); /* its own, over the provider's */
        T_EQ_INT(m->deployments[0].price.input_per_mtok, 2500000);
        T_EQ_INT(m->deployments[0].price.output_per_mtok, 10000000);
    }
    /* chat -> chat-large -> chat: cycles are allowed (the router tracks visits) */
    T_EQ_INT(m->n_fallbacks, 1);
    if (m->n_fallbacks == 1)
        T_EQ_INT(m->fallbacks[0], 0);
    kz_config_free(c);
}

/* ---- defaults and every optional key -------------------------------------- */

static void defaults(void)
{
    struct kz_config *c;
    struct kz_err e;
    /* An empty file (and one holding only comments) is every default. */
    const char *empties[] = {"", "# nothing\n", "---\n", "~\n"};
    for (size_t i = 0; i < sizeof empties / sizeof *empties; i++) {
        kz_status rc = parse(empties[i], "k.yaml", &c, &e);
        T_OK(rc == KZ_OK, "empty %zu: %s", i, e.msg);
        if (rc)
            continue;
        T_EQ_STR(c->server.host, "127.0.0.1");
        T_EQ_INT(c->server.port, 8080);
        T_EQ_INT(c->server.max_body, 4 << 20);
        T_EQ_INT(c->server.drain_ms, 10000);
        check_default_router(&c->router);
        T_OK(c->n_providers == 0 && c->n_models == 0 && !c->providers && !c->models, "nothing defined");
        kz_config_free(c);
    }

    /* Every optional key given once. */
    const char *all = "server: {host: 0.0.0.0, port: 0, max_body: 1048576, drain_ms: 0}\n"
                      "router:\n"
                      "  max_attempts: 5\n"
                      "  backoff_base_ms: 10\n"
                      "  backoff_max_ms: 500\n"
                      "  retry_budget: 0.5\n"
                      "  retry_min_concurrent: 0\n"
                      "  eject_after: 2\n"
                      "  eject_base_ms: 1000\n"
                      "  eject_max_ms: 2000\n"
                      "  health_interval_ms: 5000\n"
                      "  deadline_ms: 90000\n"
                      "ledger: sqlite:///var/lib/kyozon/ledger.db\n"
                      "providers:\n"
                      "  - {name: eng, type: local, model_path: /m/a.gguf, n_parallel: 4, n_ctx: 8192, n_threads: 8,\n"
                      "     kv_type: f32, request_timeout_ms: 1000, max_concurrency: 16, weight: 3, privacy: private,\n"
                      "     price: {input_per_mtok: 0.01}}\n"
                      "  - name: az\n"
                      "    type: azure\n"
                      "    base_url: https://x.openai.azure.com/\n"
                      "    api_key: env:OPENAI_API_KEY\n"
                      "    api_version: 2024-10-21\n"
                      "    connect_timeout_ms: 1\n"
                      "    header_timeout_ms: 2\n"
                      "    idle_timeout_ms: 3\n"
                      "    request_timeout_ms: 2147483647\n"
                      "  - {name: br, type: bedrock, base_url: 'https://bedrock-runtime.us-east-1.amazonaws.com',\n"
                      "     region: us-east-1, access_key_id: env:NODE_B_KEY, secret_access_key: env:OPENAI_API_KEY,\n"
                      "     session_token: env:KZ_TEST_CANARY}\n"
                      "  - {name: br2, type: bedrock, base_url: http://127.0.0.1:1, region: eu-west-3,\n"
                      "     api_key: env:NODE_B_KEY}\n"
                      "  - {name: an, type: anthropic, base_url: http://127.0.0.1:2, api_key: env:NODE_B_KEY}\n"
                      "  - {name: oa, type: openai, base_url: http://127.0.0.1:3/v1, weight: 7, privacy: private, upstream_stream: client,\n"
                      "     price: {output_per_mtok: 1}}\n"
                      "models:\n"
                      "  - name: meta-llama/Llama-3.1-8B:q4\n"
                      "    strategy: least-busy\n"
                      "    deployments: [{provider: eng}, {provider: oa, model: m1}, {provider: oa, model: m2, "
                      "weight: 9, price: {input_per_mtok: 3}}]\n"
                      "  - {name: w, strategy: weighted, deployments: [{provider: an, model: claude}], fallbacks: ~}\n"
                      "  - {name: l, strategy: latency, deployments: [{provider: br, model: x}, {provider: br2, model: y},"
                      " {provider: az, model: dep}]}\n";
    kz_status rc = parse(all, "k.yaml", &c, &e);
    T_OK(rc == KZ_OK, "all keys: %s", e.msg);
    if (rc)
        return;
    T_EQ_STR(c->server.host, "0.0.0.0");
    T_EQ_INT(c->server.port, 0);
    T_EQ_INT(c->server.max_body, 1048576);
    T_EQ_INT(c->server.drain_ms, 0);
    T_EQ_INT(c->router.max_attempts, 5);
    T_EQ_INT(c->router.backoff_base_ms, 10);
    T_EQ_INT(c->router.backoff_max_ms, 500);
    T_OK(c->router.retry_budget == 0.5, "retry_budget");
    T_EQ_INT(c->router.retry_min_concurrent, 0);
    T_EQ_INT(c->router.eject_after, 2);
    T_EQ_INT(c->router.eject_base_ms, 1000);
    T_EQ_INT(c->router.eject_max_ms, 2000);
    T_EQ_INT(c->router.health_interval_ms, 5000);
    T_EQ_INT(c->router.deadline_ms, 90000);
    T_EQ_STR(c->ledger, "sqlite:///var/lib/kyozon/ledger.db");
    T_EQ_INT(c->n_providers, 6);
    if (c->n_providers != 6) {
        kz_config_free(c);
        return;
    }
    const struct kz_cfg_provider *p = &c->providers[0];
    T_EQ_STR(p->model_path, "/m/a.gguf"); /* absolute: kept */
    T_OK(p->n_parallel == 4 && p->n_ctx == 8192 && p->n_threads == 8 && p->kv_f32 == 1, "engine knobs");
    T_OK(p->request_timeout_ms == 1000 && p->max_concurrency == 16 && p->weight == 3, "limits");
    T_EQ_INT(p->privacy, KZ_PRIVACY_PRIVATE);
    T_OK(p->has_price && p->price.input_per_mtok == 10000 && p->price.output_per_mtok == 0, "half a price");
    p = &c->providers[1];
    T_EQ_STR(p->base_url, "https://x.openai.azure.com"); /* one trailing '/' stripped */
    T_EQ_STR(p->api_version, "2024-10-21");
    T_OK(p->connect_timeout_ms == 1 && p->header_timeout_ms == 2 && p->idle_timeout_ms == 3, "timeouts");
    T_EQ_INT(p->request_timeout_ms, 2147483647);
    p = &c->providers[2];
    T_EQ_STR(p->region, "us-east-1");
    T_EQ_STR(p->access_key_id, NODE_B_KEY);
    T_EQ_STR(p->secret_access_key, OPENAI_KEY);
    T_EQ_STR(p->session_token, CANARY);
    T_OK(!p->api_key, "no bearer key");
    p = &c->providers[3];
    T_OK(p->api_key && !p->access_key_id && !p->secret_access_key, "bedrock bearer key");
    T_EQ_INT(c->providers[4].type, KZ_PROV_ANTHROPIC);
    T_EQ_INT(c->providers[4].privacy, KZ_PRIVACY_EXTERNAL);
    T_EQ_INT(c->providers[4].upstream_stream_client, 0);
    T_EQ_INT(c->providers[5].weight, 7);
    T_EQ_INT(c->providers[5].upstream_stream_client, 1);

    T_EQ_INT(c->n_models, 3);
    const struct kz_cfg_model *m = &c->models[0];
    T_EQ_STR(m->name, "meta-llama/Llama-3.1-8B:q4");
    T_EQ_INT(m->strategy, KZ_STRAT_LEAST_BUSY);
    T_EQ_INT(m->n_deployments, 3);
    T_EQ_INT(m->n_fallbacks, 0);
    if (m->n_deployments == 3) {
        T_EQ_STR(m->deployments[0].model, "meta-llama/Llama-3.1-8B:q4"); /* local: the model's name */
        T_EQ_INT(m->deployments[0].weight, 3);                           /* the provider's weight */
        T_OK(m->deployments[0].has_price && m->deployments[0].price.input_per_mtok == 10000, "local price");
        T_EQ_INT(m->deployments[1].weight, 7);
        T_OK(m->deployments[1].has_price && m->deployments[1].price.output_per_mtok == 1000000, "provider price");
        T_EQ_INT(m->deployments[2].weight, 9);
        T_OK(m->deployments[2].price.input_per_mtok == 3000000 && m->deployments[2].price.output_per_mtok == 0,
             "own price replaces the provider's");
    }
    T_EQ_INT(c->models[1].strategy, KZ_STRAT_WEIGHTED);
    T_EQ_INT(c->models[1].n_fallbacks, 0);
    T_EQ_INT(c->models[2].strategy, KZ_STRAT_LATENCY);
    kz_config_free(c);
}

/* ---- errors ----------------------------------------------------------------- */

#define OA "providers:\n  - name: o\n    type: openai\n    base_url: http://127.0.0.1:9/v1\n" /* lines 1-4 */
#define ENG "providers:\n  - name: e\n    type: local\n    model_path: m.gguf\n"             /* lines 1-4 */

static const struct bad {
    const char *yaml;
    int line;
    const char *msg;
} bad_cases[] = {
    /* YAML syntax: libyaml's line and words */
    {"server:\n  port: 1\n  host: [a\n", 4, "did not find expected"},
    {"server:\n  port: 1\n bad: x\n", 3, "did not find expected key"},
    {"a: \"unterminated\n", 2, "found unexpected end of stream"},
    {"server:\n\tport: 1\n", 2, "found character that cannot start any token"},
    {"a: \xff\xfe\n", 1, "invalid"},
    /* structure */
    {"- a\n- b\n", 1, "the top level must be a mapping"},
    {"servr:\n  port: 1\n", 1, "servr: unknown key (expected server, providers, models, router or ledger)"},
    {"server: [a]\n", 1, "server: must be a mapping"},
    {"server:\n  hots: x\n", 2, "server.hots: unknown key (expected host, port, max_body, drain_ms or max_connections_per_ip)"},
    {"server:\n  port: 1\n  port: 2\n", 3, "server.port: duplicate key (first at line 2)"},
    {"a: 1\n---\nb: 2\n", 2, "only one YAML document is allowed"},
    {"ledger: [a]\n", 1, "ledger: must be a string, not a list"},
    {"server: {port: 1}\nkeys: [a]\n", 2, "keys: API keys and tenants are not supported yet"},
    {"tenants: {a: 1}\n", 1, "tenants: API keys and tenants are not supported yet"},
    /* server */
    {"server:\n  port: abc\n", 2, "server.port: must be an integer (got 'abc')"},
    {"server:\n  port: 70000\n", 2, "server.port: must be between 0 and 65535 (got 70000)"},
    {"server:\n  port: -1\n", 2, "server.port: must be between 0 and 65535"},
    {"server:\n  port: [8080]\n", 2, "server.port: must be an integer, not a list"},
    {"server:\n  port: \"8080\"\n", 2, "server.port: must be an integer, not a quoted string"},
    {"server:\n  port: 99999999999999999999999\n", 2, "server.port: must be between 0 and 65535"},
    {"server:\n  max_body: 1.5\n", 2, "server.max_body: must be an integer"},
    {"server:\n  drain_ms: 4294967296\n", 2, "server.drain_ms: must be between 0 and 2147483647"},
    {"server:\n  host: ''\n", 2, "server.host: must not be empty"},
    /* router */
    {"router:\n  max_attempt: 3\n", 2, "router.max_attempt: unknown key (expected max_attempts,"},
    {"router:\n  max_attempts: 0\n", 2, "router.max_attempts: must be between 1 and 100"},
    {"router:\n  retry_budget: lots\n", 2, "router.retry_budget: must be a number (got 'lots')"},
    {"router:\n  retry_budget: -0.1\n", 2, "router.retry_budget: must be between 0 and 10"},
    {"router:\n  retry_budget: .nan\n", 2, "router.retry_budget: must be a number"},
    {"router:\n  backoff_base_ms: 50\n  backoff_max_ms: 40\n", 3,
     "router.backoff_max_ms: backoff_base_ms (50) must not be above backoff_max_ms (40)"},
    {"router:\n  eject_base_ms: 400000\n", 2, "router.eject_base_ms: eject_base_ms (400000) must not be above"},
    {"router:\n  deadline_ms: 0\n", 2, "router.deadline_ms: must be between 1 and 2147483647"},
    /* providers */
    {"providers:\n  name: x\n", 2, "providers: must be a list, not a mapping"},
    {"providers:\n  - x\n", 2, "providers[0]: must be a mapping"},
    {"providers:\n  - type: openai\n    base_url: http://h\n", 2, "providers[0]: missing required key 'name'"},
    {"providers:\n  - name: a b\n    type: openai\n", 2, "providers[0].name: must use only letters, digits"},
    {"providers:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n    type: local\n", 2,
     "providers[0].name: longer than 64 bytes"},
    {OA "  - name: o\n    type: openai\n", 5, "providers[1].name: duplicate provider name 'o' (first at line 2)"},
    {OA "  - name: p\n    type: opneai\n", 6,
     "providers[1].type: unknown provider type 'opneai' (expected local, openai, azure, anthropic, bedrock or kyozon)"},
    {"providers:\n  - name: p\n", 2, "providers[0]: missing required key 'type'"},
    {"providers:\n  - name: p\n    type: openai\n", 2,
     "providers[0]: missing required key 'base_url' (a provider of type openai needs it)"},
    {"providers:\n  - name: p\n    type: openai\n    base_url: ftp://h\n", 4,
     "providers[0].base_url: must start with http:// or https://"},
    {"providers:\n  - name: p\n    type: kyozon\n    base_url: https://\n", 4, "providers[0].base_url: has no host"},
    {"providers:\n  - name: e\n    type: local\n", 2, "providers[0]: missing required key 'model_path'"},
    {OA "    api_version: 2024-10-21\n", 5, "providers[0].api_version: not allowed for a provider of type openai"},
    {ENG "    base_url: http://h\n", 5, "providers[0].base_url: not allowed for a provider of type local"},
    {ENG "    api_key: env:NODE_B_KEY\n", 5, "providers[0].api_key: not allowed for a provider of type local"},
    {OA "    n_ctx: 4096\n", 5, "providers[0].n_ctx: not allowed for a provider of type openai"},
    {OA "    api_kye: env:X\n", 5, "providers[0].api_kye: unknown key"},
    {"providers:\n  - {name: a, type: azure, base_url: 'http://h', api_key: env:NODE_B_KEY}\n", 2,
     "providers[0]: missing required key 'api_version'"},
    {"providers:\n  - {name: a, type: azure, base_url: 'http://h', api_version: 2024-10-21}\n", 2,
     "missing required key 'api_key' (a provider of type azure needs it)"},
    {"providers:\n  - {name: a, type: azure, base_url: 'http://h', api_version: 'v 1'}\n", 2,
     "providers[0].api_version: must use only letters"},
    {"providers:\n  - {name: a, type: anthropic, base_url: 'http://h'}\n", 2, "missing required key 'api_key'"},
    {"providers:\n  - {name: b, type: bedrock, base_url: 'http://h', api_key: env:NODE_B_KEY}\n", 2,
     "providers[0]: missing required key 'region'"},
    {"providers:\n  - {name: b, type: bedrock, base_url: 'http://h', region: US_EAST}\n", 2,
     "providers[0].region: must use only lower-case letters"},
    {"providers:\n  - {name: b, type: bedrock, base_url: 'http://h', region: us-east-1}\n", 2,
     "providers[0]: missing credentials"},
    {"providers:\n  - {name: b, type: bedrock, base_url: 'http://h', region: us-east-1,\n"
     "     access_key_id: env:NODE_B_KEY}\n",
     2, "access_key_id and secret_access_key must be given together"},
    {"providers:\n  - {name: b, type: bedrock, base_url: 'http://h', region: us-east-1, api_key: env:NODE_B_KEY,\n"
     "     access_key_id: env:NODE_B_KEY, secret_access_key: env:NODE_B_KEY}\n",
     2, "give either api_key or access_key_id and secret_access_key, not both"},
    {ENG "  - name: f\n    type: local\n    model_path: n.gguf\n", 6,
     "providers[1].type: only one provider of type local is allowed (providers[0] is one)"},
    {ENG "    kv_type: q8_0\n", 5, "providers[0].kv_type: unknown kv_type 'q8_0' (expected f16 or f32)"},
    {OA "    kv_type: f32\n", 5, "providers[0].kv_type"},
    {OA "    privacy: local\n", 5, "providers[0].privacy: only a provider of type local can have privacy local"},
    {OA "    privacy: public\n", 5, "providers[0].privacy: unknown privacy 'public' (expected local, private or external)"},
    {OA "    upstream_stream: sometimes\n", 5,
     "providers[0].upstream_stream: unknown upstream_stream 'sometimes' (expected always or client)"},
    {OA "    weight: 0\n", 5, "providers[0].weight: must be between 1 and 1000000 (got 0)"},
    {OA "    weight: -3\n", 5, "providers[0].weight: must be between 1"},
    {OA "    max_concurrency: lots\n", 5, "providers[0].max_concurrency: must be an integer"},
    {OA "    header_timeout_ms: 4294967296\n", 5, "providers[0].header_timeout_ms: must be between 1 and 2147483647"},
    {OA "    connect_timeout_ms: 0\n", 5, "providers[0].connect_timeout_ms: must be between 1"},
    {OA "    price: {input_per_mtok: -1}\n", 5, "providers[0].price.input_per_mtok: must not be negative"},
    {OA "    price:\n      output_per_mtok: cheap\n", 6,
     "providers[0].price.output_per_mtok: must be a number of dollars per million tokens (got 'cheap')"},
    {OA "    price: {input_per_mtok: 1000001}\n", 5,
     "providers[0].price.input_per_mtok: must be at most 1000000 dollars per million tokens"},
    {OA "    price: {input_per_mtok: 1e400}\n", 5, "providers[0].price.input_per_mtok: must be at most 1000000"},
    {OA "    price: {input_per_mtok: '0.1'}\n", 5, "price.input_per_mtok: must be a number of dollars per million tokens, not a quoted"},
    {OA "    price: {input: 1}\n", 5, "providers[0].price.input: unknown key (expected input_per_mtok or output_per_mtok)"},
    {OA "    price: 0.15\n", 5, "providers[0].price: must be a mapping"},
    {OA "    api_key: sk-live-abc\n", 5,
     "providers[0].api_key: secrets must be references (env:NAME or file:PATH), not literal values"},
    {OA "    api_key: env:KZ_TEST_UNSET\n", 5, "providers[0].api_key: environment variable KZ_TEST_UNSET is not set"},
    {OA "    api_key: env:KZ_TEST_EMPTY\n", 5, "providers[0].api_key: environment variable KZ_TEST_EMPTY is empty"},
    {OA "    api_key: 'env:'\n", 5, "providers[0].api_key: env: must be followed by a variable name"},
    {OA "    api_key: file:/nonexistent/kz-secret\n", 5,
     "providers[0].api_key: cannot read secret file '/nonexistent/kz-secret': No such file"},
    {OA "    api_key: file:/\n", 5, "providers[0].api_key: secret file '/' is not a regular file"},
    {OA "    api_key: [env:X]\n", 5, "providers[0].api_key: must be a reference"},
    /* models */
    {"models:\n  - name: m\n", 2, "models[0]: missing required key 'deployments'"},
    {"models:\n  - name: m\n    deployments: []\n", 3, "models[0].deployments: must list at least one deployment"},
    {"models:\n  - name: m\n    deployment: []\n", 3,
     "models[0].deployment: unknown key (expected name, strategy, deployments or fallbacks)"},
    {"models:\n  - deployments: []\n", 2, "models[0]: missing required key 'name'"},
    {"models:\n  - name: a b\n", 2, "models[0].name: must use only letters"},
    {"models:\n  - name: m\n  - name: m\n", 3, "models[1].name: duplicate model name 'm' (first at line 2)"},
    {OA "models:\n  - name: m\n    strategy: random\n    deployments: [{provider: o, model: x}]\n", 7,
     "models[0].strategy: unknown strategy 'random' (expected priority, weighted, least-busy, latency or cost)"},
    {OA "models:\n  - name: m\n    deployments:\n      - {provider: nope, model: x}\n", 8,
     "models[0].deployments[0].provider: unknown provider 'nope'"},
    {OA "models:\n  - name: m\n    deployments:\n      - provider: o\n", 8,
     "models[0].deployments[0]: missing required key 'model'"},
    {OA "models:\n  - name: m\n    deployments:\n      - {provider: o, model: x, weight: -1}\n", 8,
     "models[0].deployments[0].weight: must be between 1"},
    {OA "models:\n  - name: m\n    deployments:\n      - {provider: o, model: x, region: y}\n", 8,
     "models[0].deployments[0].region: unknown key (expected provider, model, weight or price)"},
    {OA "models:\n  - name: m\n    deployments: [{provider: o, model: x, price: {input_per_mtok: -2}}]\n", 7,
     "models[0].deployments[0].price.input_per_mtok: must not be negative"},
    {OA "models:\n  - name: m\n    deployments: [{provider: o, model: x}]\n    fallbacks: [n]\n", 8,
     "models[0].fallbacks[0]: unknown model 'n' (not in models)"},
    {OA "models:\n  - name: m\n    deployments: [{provider: o, model: x}]\n    fallbacks: [m]\n", 8,
     "models[0].fallbacks[0]: a model cannot fall back to itself"},
    {OA "models:\n  - name: m\n    deployments: [{provider: o, model: x}]\n    fallbacks: [k, k]\n"
        "  - name: k\n    deployments: [{provider: o, model: x}]\n",
     8, "models[0].fallbacks[1]: 'k' is listed twice"},
    {OA "models:\n  - name: m\n    deployments: [{provider: o, model: x}]\n    fallbacks: k\n", 8,
     "models[0].fallbacks: must be a list"},
    /* hostile input */
    {"a: &x [1, 2]\nb: *x\n", 1, "a: anchors are not supported"},
    {"a: [1, 2]\nb: *x\n", 2, "b: aliases are not supported"},
    {"a: [1, *x]\n", 1, "a: aliases are not supported"},
    {"a: !!str 1\n", 1, "a: tags are not supported"},
    {"? [a, b]\n: c\n", 1, "keys must be scalars"},
    {"a: [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]\n", 1, "nested deeper than 16 levels"},
    {"a: \"x\\0y\"\n", 1, "a: NUL bytes are not allowed"},
};

static void errors(void)
{
    size_t n = sizeof bad_cases / sizeof *bad_cases;
    T_OK(n >= 30, "at least 30 bad configurations (%zu)", n);
    for (size_t i = 0; i < n; i++) {
        const struct bad *b = &bad_cases[i];
        struct kz_config *c;
        struct kz_err e;
        kz_status rc = parse(b->yaml, "bad.yaml", &c, &e);
        char prefix[32];
        snprintf(prefix, sizeof prefix, "bad.yaml:%d: ", b->line);
        T_OK(rc != KZ_OK && c == NULL, "case %zu (%s) is refused", i, b->msg);
        T_OK(strncmp(e.msg, prefix, strlen(prefix)) == 0, "case %zu: wanted '%s', got '%s'", i, prefix, e.msg);
        T_OK(strstr(e.msg, b->msg) != NULL, "case %zu: wanted '%s' in '%s'", i, b->msg, e.msg);
        kz_config_free(c);
    }
}

/* Counts and sizes at and past each limit. */
static char *repeat(const char *head, const char *item, size_t times, const char *tail)
{
    size_t hl = strlen(head), il = strlen(item), tl = strlen(tail);
    char *s = kz_malloc(hl + il * times + tl + 1);
    if (!s)
        return NULL;
    memcpy(s, head, hl);
    for (size_t i = 0; i < times; i++)
        memcpy(s + hl + i * il, item, il);
    memcpy(s + hl + il * times, tail, tl + 1);
    return s;
}

/* "keys: " and n nested flow lists around one value. */
static char *nest(size_t n)
{
    char *s = kz_malloc(2 * n + 16);
    if (!s)
        return NULL;
    size_t at = 0;
    memcpy(s, "keys: ", 6);
    at = 6;
    for (size_t i = 0; i < n; i++)
        s[at++] = '[';
    s[at++] = '1';
    for (size_t i = 0; i < n; i++)
        s[at++] = ']';
    memcpy(s + at, "\n", 2);
    return s;
}

static void limit_case(const char *what, char *yaml, int want_ok, const char *msg)
{
    struct kz_config *c;
    struct kz_err e;
    if (!yaml) {
        T_OK(0, "%s: out of memory building the input", what);
        return;
    }
    kz_status rc = parse(yaml, "big.yaml", &c, &e);
    if (want_ok)
        T_OK(rc == KZ_OK, "%s: %s", what, e.msg);
    else
        T_OK(rc != KZ_OK && strstr(e.msg, msg), "%s: wanted '%s', got '%s'", what, msg, e.msg);
    kz_config_free(c);
    kz_free(yaml);
}

static void limits(void)
{
    /* providers: 256 fit, 257 do not (names p + index, built below) */
    for (int n = 256; n <= 257; n++) {
        size_t cap = (size_t)n * 80 + 32, used = 0;
        char *y = kz_malloc(cap);
        if (!y)
            return;
        used += (size_t)snprintf(y, cap, "providers:\n");
        for (int i = 0; i < n; i++)
            used += (size_t)snprintf(y + used, cap - used, "  - {name: p%d, type: openai, base_url: 'http://h'}\n", i);
        limit_case(n == 256 ? "256 providers" : "257 providers", y, n == 256, "too many providers (at most 256)");
    }
    limit_case("64 deployments", repeat(OA "models:\n  - name: m\n    deployments:\n", "      - {provider: o, model: x}\n", 64, ""), 1, NULL);
    limit_case("65 deployments", repeat(OA "models:\n  - name: m\n    deployments:\n", "      - {provider: o, model: x}\n", 65, ""), 0,
               "models[0].deployments: too many deployments (at most 64)");
    limit_case("1025 models", repeat("models:\n", "  - {}\n", 1025, ""), 0, "models: too many items (at most 1024)");
    {
        /* 65 distinct keys in one mapping */
        size_t cap = 65 * 16 + 16, used = 0;
        char *y = kz_malloc(cap);
        if (y) {
            used += (size_t)snprintf(y, cap, "tenants:\n");
            for (int i = 0; i < 65; i++)
                used += (size_t)snprintf(y + used, cap - used, "  k%d: 1\n", i);
        }
        limit_case("65 keys", y, 0, "tenants: too many keys (at most 64)");
    }
    limit_case("scalar of 4096 bytes", repeat("ledger: ", "x", 4096, "\n"), 1, NULL);
    limit_case("scalar of 4097 bytes", repeat("ledger: ", "x", 4097, "\n"), 0, "ledger: value longer than 4096 bytes");
    limit_case("key of 4097 bytes", repeat("", "x", 4097, ": 1\n"), 0, "value longer than 4096 bytes");
    /* the top-level mapping is level 1; depth 16 passes the tree's limit and
     * is refused only for the key itself */
    limit_case("depth 16", nest(15), 0, "keys: API keys and tenants are not supported yet");
    limit_case("depth 17", nest(16), 0, "keys[0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nested deeper than 16 levels");
    limit_case("1 MiB + 1", repeat("", "#", (1u << 20) + 1, ""), 0, "big.yaml: larger than 1048576 bytes");
    limit_case("1 MiB of comment", repeat("", "#", (1u << 20) - 1, "\n"), 1, NULL);

    /* A billion laughs: refused at the first alias, before any expansion. */
    const char *laughs = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                         "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                         "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                         "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n";
    struct kz_config *c;
    struct kz_err e;
    T_OK(parse(laughs, "lol.yaml", &c, &e) != KZ_OK && strstr(e.msg, "not supported"), "billion laughs: %s", e.msg);
}

/* ---- secrets --------------------------------------------------------------- */

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    T_OK(f != NULL, "create %s", path);
    if (!f)
        return;
    T_OK(fwrite(data, 1, len, f) == len, "write %s", path);
    fclose(f);
}

static void secrets_stay_secret(void)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/canary", t_tmpdir());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/ctrl.key", dir);
    write_file(path, CANARY "\x01" CANARY "\n", strlen(CANARY) * 2 + 2);

    static const char *const cases[] = {
        OA "    api_key: " CANARY "\n",                                    /* a literal */
        OA "    api_key: \"" CANARY "\"\n",                                /* quoted */
        OA "    api_key: env:" CANARY "\n",                                /* a pasted key after env: */
        OA "    api_key: env:KZ_TEST_CANARY_CTRL\n",                       /* header injection */
        OA "    api_key: file:canary/ctrl.key\n",                          /* same, from a file */
        ENG "    api_key: " CANARY "\n",                                   /* on a type without keys */
        OA "    api_key: env:KZ_TEST_CANARY\n    api_key: env:KZ_TEST_CANARY\n", /* duplicate key */
        OA "    api_key: env:KZ_TEST_CANARY\n    privacy: local\n",        /* error after resolving */
        OA "    api_key: env:KZ_TEST_CANARY\nmodels:\n  - {name: m, deployments: [{provider: o}]}\n",
        "providers:\n  - {name: b, type: bedrock, base_url: 'http://h', region: us-east-1,\n"
        "     api_key: env:KZ_TEST_CANARY, secret_access_key: " CANARY "}\n",
        "providers:\n  - {name: b, type: bedrock, base_url: 'http://h', region: us-east-1,\n"
        "     api_key: env:KZ_TEST_CANARY, secret_access_key: env:KZ_TEST_CANARY}\n",
        "providers:\n  - {name: b, type: bedrock, base_url: 'http://h', region: us-east-1,\n"
        "     session_token: \"" CANARY "\"}\n",
        "providers:\n  - {name: b, type: bedrock, base_url: 'http://h', region: us-east-1,\n"
        "     access_key_id: [" CANARY "]}\n",
    };
    char name[600];
    snprintf(name, sizeof name, "%s/k.yaml", t_tmpdir());
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct kz_config *c;
        struct kz_err e;
        kz_status rc = parse(cases[i], name, &c, &e);
        T_OK(rc != KZ_OK, "secret case %zu is refused", i);
        T_OK(e.msg[0] != '\0', "secret case %zu has a message", i);
        T_OK(strstr(e.msg, CANARY) == NULL && strstr(e.msg, "Zq7xW3") == NULL, "secret case %zu leaks: %s", i,
             e.msg);
        kz_config_free(c);
    }
}

static void file_references(void)
{
    char dir[512], sub[600], path[700];
    snprintf(dir, sizeof dir, "%s/conf", t_tmpdir());
    mkdir(dir, 0700);
    snprintf(sub, sizeof sub, "%s/secrets", dir);
    mkdir(sub, 0700);
    snprintf(path, sizeof path, "%s/openai.key", sub);
    write_file(path, "sk-from-file \t\r\n\n", 17);
    char abs_key[700];
    snprintf(abs_key, sizeof abs_key, "%s/abs.key", dir);
    write_file(abs_key, "abs-secret", 10); /* no newline at all */
    snprintf(path, sizeof path, "%s/empty.key", sub);
    write_file(path, " \n", 2);
    char *big = repeat("", "k", 64u << 10, "");
    snprintf(path, sizeof path, "%s/max.key", sub);
    if (big)
        write_file(path, big, 64u << 10);
    kz_free(big);
    big = repeat("", "k", (64u << 10) + 1, "");
    snprintf(path, sizeof path, "%s/big.key", sub);
    if (big)
        write_file(path, big, (64u << 10) + 1);
    kz_free(big);

    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "providers:\n"
             "  - {name: e, type: local, model_path: ../models/x.gguf}\n"
             "  - {name: a, type: openai, base_url: 'http://h', api_key: file:secrets/openai.key}\n"
             "  - {name: b, type: openai, base_url: 'http://h', api_key: 'file:%s'}\n"
             "  - {name: c, type: openai, base_url: 'http://h', api_key: file:secrets/max.key}\n",
             abs_key);
    char conf[700];
    snprintf(conf, sizeof conf, "%s/kyozon.yaml", dir);
    write_file(conf, yaml, strlen(yaml));

    struct kz_config *c = NULL;
    struct kz_err e = {{0}};
    kz_status rc = kz_config_load(conf, &c, &e);
    T_OK(rc == KZ_OK, "load: %s", e.msg);
    if (rc == KZ_OK) {
        T_EQ_STR(c->path, conf);
        char want[800];
        snprintf(want, sizeof want, "%s/../models/x.gguf", dir);
        T_EQ_STR(c->providers[0].model_path, want);
        T_EQ_STR(c->providers[1].api_key, "sk-from-file");
        T_EQ_STR(c->providers[2].api_key, "abs-secret");
        T_EQ_INT(strlen(c->providers[3].api_key), 64 << 10);
        kz_config_free(c);
    }

    /* Failures name the key and the file, relative as written. */
    static const struct {
        const char *ref, *msg;
    } bad[] = {
        {"file:secrets/missing.key", "providers[0].api_key: cannot read secret file 'secrets/missing.key'"},
        {"file:secrets/empty.key", "providers[0].api_key: secret file 'secrets/empty.key' is empty"},
        {"file:secrets/big.key", "providers[0].api_key: secret file 'secrets/big.key' is larger than 65536 bytes"},
        {"file:secrets", "providers[0].api_key: secret file 'secrets' is not a regular file"},
        {"'file:'", "providers[0].api_key: file: must be followed by a path"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(yaml, sizeof yaml, "providers:\n  - {name: a, type: openai, base_url: 'http://h', api_key: %s}\n",
                 bad[i].ref);
        write_file(conf, yaml, strlen(yaml));
        c = NULL;
        rc = kz_config_load(conf, &c, &e);
        char prefix[800];
        snprintf(prefix, sizeof prefix, "%s:2: ", conf);
        T_OK(rc != KZ_OK && c == NULL, "bad file ref %zu refused", i);
        T_OK(strncmp(e.msg, prefix, strlen(prefix)) == 0 && strstr(e.msg, bad[i].msg), "file ref %zu: %s", i,
             e.msg);
    }

    /* The file itself. */
    snprintf(path, sizeof path, "%s/none.yaml", dir);
    rc = kz_config_load(path, &c, &e);
    T_OK(rc == KZ_ENOTFOUND && strstr(e.msg, "none.yaml: cannot open: No such file"), "missing file: %s", e.msg);
    rc = kz_config_load(dir, &c, &e);
    T_OK(rc == KZ_EIO && strstr(e.msg, "cannot read"), "a directory: %s", e.msg);
    big = repeat("", "#", (1u << 20) + 1, "");
    if (big)
        write_file(conf, big, (1u << 20) + 1);
    kz_free(big);
    rc = kz_config_load(conf, &c, &e);
    T_OK(rc == KZ_ELIMIT && strstr(e.msg, "larger than 1048576 bytes"), "a large file: %s", e.msg);
}

/* model_path is relative to the config file's directory. */
static void relative_paths(void)
{
    static const struct {
        const char *name, *path, *want;
    } cases[] = {
        {"kyozon.yaml", "models/a.gguf", "models/a.gguf"},
        {"conf/kyozon.yaml", "models/a.gguf", "conf/models/a.gguf"},
        {"/etc/kyozon/k.yaml", "a.gguf", "/etc/kyozon/a.gguf"},
        {"/k.yaml", "m/a.gguf", "/m/a.gguf"},
        {"conf/k.yaml", "/abs/a.gguf", "/abs/a.gguf"},
        {NULL, "models/a.gguf", "models/a.gguf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, "providers: [{name: e, type: local, model_path: %s}]\n", cases[i].path);
        struct kz_config *c = NULL;
        struct kz_err e = {{0}};
        kz_status rc = kz_config_parse(yaml, strlen(yaml), cases[i].name, &c, &e);
        T_OK(rc == KZ_OK, "path %zu: %s", i, e.msg);
        if (rc == KZ_OK)
            T_EQ_STR(c->providers[0].model_path, cases[i].want);
        kz_config_free(c);
    }
    /* Without a name, messages say <memory>. */
    struct kz_config *c = NULL;
    struct kz_err e = {{0}};
    T_OK(kz_config_parse("x: 1\n", 5, NULL, &c, &e) != KZ_OK && strncmp(e.msg, "<memory>:1: x: unknown key", 26) == 0,
         "NULL name: %s", e.msg);
}

/* ---- prices ---------------------------------------------------------------- */

static int64_t price_of(const char *text, int *ok)
{
    char yaml[256];
    snprintf(yaml, sizeof yaml, "providers: [{name: o, type: openai, base_url: 'http://h', price: {input_per_mtok: %s}}]\n",
             text);
    struct kz_config *c;
    struct kz_err e;
    *ok = parse(yaml, "p.yaml", &c, &e) == KZ_OK;
    int64_t v = *ok ? c->providers[0].price.input_per_mtok : -1;
    kz_config_free(c);
    return v;
}

static void prices(void)
{
    /* Dollars per million tokens -> micro-dollars, exact, half up. */
    static const struct {
        const char *text;
        int64_t micro;
    } ok[] = {
        {"0", 0}, {"0.15", 150000}, {"0.60", 600000}, {"2.5", 2500000}, {"10", 10000000}, {"+3", 3000000},
        {".5", 500000}, {"5.", 5000000}, {"1.5e-1", 150000}, {"15E-2", 150000}, {"0.0000005", 1},
        {"0.00000049999999999999999999", 0}, {"0.0000015", 2}, {"0.000001", 1}, {"-0", 0}, {"1e6", 1000000000000LL},
        {"1000000", 1000000000000LL}, {"000000000000000000000000000000000000000000000000001.25", 1250000},
        {"0.1234564999", 123456}, {"0.1234565", 123457}, {"1e-400", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        int good = 0;
        int64_t v = price_of(ok[i].text, &good);
        T_OK(good && v == ok[i].micro, "price %s: %lld (wanted %lld)", ok[i].text, (long long)v,
             (long long)ok[i].micro);
    }
    static const char *const bad[] = {"1000000.0000005", "1e7", "-0.01", "abc", "1e", "e5", ".", "0x10", "1,5",
                                      ".inf", "1_000", "2 dollars", "1.2.3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int good = 1;
        price_of(bad[i], &good);
        T_OK(!good, "price %s refused", bad[i]);
    }

    /* cost = ceil((in * input + out * output) / 1e6) */
    struct kz_price p = {150000, 600000}; /* $0.15 / $0.60 per million */
    T_EQ_INT(kz_price_cost(&p, 0, 0), 0);
    T_EQ_INT(kz_price_cost(&p, 1, 0), 1);          /* 0.15 rounds up */
    T_EQ_INT(kz_price_cost(&p, 6, 0), 1);          /* 0.9 */
    T_EQ_INT(kz_price_cost(&p, 7, 0), 2);          /* 1.05 */
    T_EQ_INT(kz_price_cost(&p, 20, 0), 3);         /* exactly 3 */
    T_EQ_INT(kz_price_cost(&p, 1000000, 0), 150000);
    T_EQ_INT(kz_price_cost(&p, 1000, 500), 450);   /* 150 + 300 */
    T_EQ_INT(kz_price_cost(&p, 1, 1), 1);          /* 0.75 */
    T_EQ_INT(kz_price_cost(&p, 3, 1), 2);          /* 1.05 */
    T_EQ_INT(kz_price_cost(&p, -5, -5), 0);        /* unknown counts add nothing */
    struct kz_price big = {1000000000000LL, 1000000000000LL};
    /* 2^31 tokens at the largest price: 2^31 * 10^12 / 10^6, past int64 mid-way */
    T_EQ_INT(kz_price_cost(&big, 2147483648L, 0), 2147483648000000LL);
    T_EQ_INT(kz_price_cost(&big, 2147483648L, 2147483648L), 4294967296000000LL);
    struct kz_price odd = {999999, 1};
    T_EQ_INT(kz_price_cost(&odd, 2147483647L, 2147483647L), 2147483647LL); /* (999999 + 1) * n / 1e6 */
    T_EQ_INT(kz_price_cost(&odd, 2147483647L, 0), 2147481500LL);           /* ceil(2147481499.52) */
    T_EQ_INT(kz_price_cost(&big, LONG_MAX, LONG_MAX), INT64_MAX);          /* saturates */
    struct kz_price none = {0, 0};
    T_EQ_INT(kz_price_cost(&none, 1000000, 1000000), 0);
}

/* ---- lookups and names ------------------------------------------------------- */

static void lookups(void)
{
    struct kz_config *c;
    struct kz_err e;
    kz_status rc = parse(example, "kyozon.yaml", &c, &e);
    T_OK(rc == KZ_OK, "example: %s", e.msg);
    if (rc)
        return;
    T_OK(kz_config_provider(c, "node-b") == &c->providers[1], "provider node-b");
    T_OK(kz_config_provider(c, "local") == &c->providers[0], "provider local");
    T_OK(kz_config_provider(c, "node") == NULL && kz_config_provider(c, "") == NULL, "absent provider");
    T_OK(kz_config_provider(c, NULL) == NULL && kz_config_provider(NULL, "x") == NULL, "NULL arguments");
    T_OK(kz_config_model(c, "chat-large") == &c->models[1], "model chat-large");
    T_OK(kz_config_model(c, "chat") == &c->models[0], "model chat");
    T_OK(kz_config_model(c, "Chat") == NULL && kz_config_model(c, "openai") == NULL, "absent model");
    kz_config_free(c);
    kz_config_free(NULL);

    T_EQ_STR(kz_provider_type_name(KZ_PROV_LOCAL), "local");
    T_EQ_STR(kz_provider_type_name(KZ_PROV_OPENAI), "openai");
    T_EQ_STR(kz_provider_type_name(KZ_PROV_AZURE), "azure");
    T_EQ_STR(kz_provider_type_name(KZ_PROV_ANTHROPIC), "anthropic");
    T_EQ_STR(kz_provider_type_name(KZ_PROV_BEDROCK), "bedrock");
    T_EQ_STR(kz_provider_type_name(KZ_PROV_KYOZON), "kyozon");
    T_EQ_STR(kz_provider_type_name((enum kz_provider_type)99), "unknown");
    T_EQ_STR(kz_privacy_name(KZ_PRIVACY_LOCAL), "local");
    T_EQ_STR(kz_privacy_name(KZ_PRIVACY_PRIVATE), "private");
    T_EQ_STR(kz_privacy_name(KZ_PRIVACY_EXTERNAL), "external");
    T_EQ_STR(kz_strategy_name(KZ_STRAT_PRIORITY), "priority");
    T_EQ_STR(kz_strategy_name(KZ_STRAT_WEIGHTED), "weighted");
    T_EQ_STR(kz_strategy_name(KZ_STRAT_LEAST_BUSY), "least-busy");
    T_EQ_STR(kz_strategy_name(KZ_STRAT_LATENCY), "latency");
    T_EQ_STR(kz_strategy_name(KZ_STRAT_COST), "cost");
}

/* ---- out of memory ---------------------------------------------------------- */

/* Out of memory at each allocation in turn (and every one after it): each
 * must end in KZ_ENOMEM with a message and nothing left allocated
 * (LeakSanitizer checks at exit in the sanitizer build), until the load
 * needs fewer allocations than the failure point and succeeds. */
static void oom_every_allocation(void)
{
    char dir[512], path[700];
    snprintf(dir, sizeof dir, "%s/oom", t_tmpdir());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/node-b.key", dir);
    write_file(path, NODE_B_KEY "\n", strlen(NODE_B_KEY) + 1);
    /* The example, with a file: secret and a Bedrock provider for more paths. */
    size_t el = strlen(example);
    const char *extra = "  - {name: br, type: bedrock, base_url: 'http://h', region: us-east-1,\n"
                        "     access_key_id: file:node-b.key, secret_access_key: env:NODE_B_KEY}\n";
    size_t cap = el + strlen(extra) + 1;
    char *yaml = kz_malloc(cap);
    if (!yaml)
        return;
    const char *models_at = strstr(example, "models:\n");
    snprintf(yaml, cap, "%.*s%s%s", (int)(models_at - example), example, extra, models_at);
    snprintf(path, sizeof path, "%s/kyozon.yaml", dir);
    write_file(path, yaml, strlen(yaml));

    int succeeded = 0;
    long k = 1, failures = 0;
    for (; k <= 10000 && !succeeded; k++) {
        struct kz_config *c = NULL;
        struct kz_err e = {{0}};
        kz_alloc_fail_after(k);
        kz_status rc = k % 2 ? kz_config_load(path, &c, &e) : kz_config_parse(yaml, strlen(yaml), path, &c, &e);
        kz_alloc_fail_after(0);
        if (rc == KZ_OK) {
            succeeded = 1;
            T_EQ_INT(c->n_providers, 4);
            T_EQ_STR(c->providers[3].access_key_id, NODE_B_KEY);
            kz_config_free(c);
            continue;
        }
        failures++;
        T_OK(rc == KZ_ENOMEM && c == NULL, "failing allocation %ld: rc %d (%s)", k, (int)rc, e.msg);
        T_OK(strstr(e.msg, "out of memory") != NULL, "allocation %ld: %s", k, e.msg);
    }
    T_OK(succeeded, "load succeeds once allocations stop failing");
    T_OK(failures > 50, "the load allocates often enough to test (%ld failures)", failures);
    kz_free(yaml);
}

int main(void)
{
    set_env();
    t_subtest("the documented example loads, field by field", example_loads);
    t_subtest("defaults and every optional key", defaults);
    t_subtest("bad configurations name file, line and key", errors);
    t_subtest("limits against hostile files", limits);
    t_subtest("secrets never appear in messages", secrets_stay_secret);
    t_subtest("file: references and loading files", file_references);
    t_subtest("relative model_path", relative_paths);
    t_subtest("prices and kz_price_cost", prices);
    t_subtest("lookups and names", lookups);
    t_subtest("out of memory at every allocation", oom_every_allocation);
    return t_done();
}
