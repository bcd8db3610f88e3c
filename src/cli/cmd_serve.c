/* SPDX-License-Identifier: MIT
 * kyozon serve: the OpenAI-compatible HTTP server over a local model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/serve.h"
#include "cli/args.h"
#include "engine/gguf/dtype.h"
#include "engine/model/model.h"
#include "store/modelcache.h"

static const char help[] =
    "Usage: kyozon serve -m MODEL [options]\n"
    "       kyozon serve --config FILE [options]\n"
    "\n"
    "Serves the OpenAI API (/v1/chat/completions, /v1/completions, /v1/embeddings,\n"
    "/v1/models, /v1/providers) plus /health and /metrics, over a local GGUF model or\n"
    "over the providers and models of a YAML configuration (see docs/CONFIG.md).\n"
    "SIGTERM or SIGINT stops accepting, lets requests in flight finish, and exits 0.\n"
    "SIGHUP reloads the configuration file; requests in flight finish on the old one.\n"
    "Once the ledger holds an API key, every /v1 and /admin request needs one\n"
    "(Authorization: Bearer kz-... or x-api-key); until then the server only binds\n"
    "loopback addresses unless --insecure is given.\n"
    "\n"
    "Options:\n"
    "  -m, --model MODEL      a GGUF file, or the name of a model pulled with 'kyozon pull'\n"
    "                         (default: $KYOZON_MODEL)\n"
    "      --config FILE      a router configuration: providers, models, routing (the local\n"
    "                         engine's settings are then the config's: -m, --parallel, --ctx,\n"
    "                         --threads, --kv-type and --model-name are refused)\n"
    "      --host H           address to bind (default: the config's, else 127.0.0.1)\n"
    "      --port P           port (default: the config's, else 8080; 0 picks a free one)\n"
    "      --parallel N       sequences generated at once (default 4)\n"
    "  -c, --ctx N            context positions per sequence (default: the model's, at most 4096)\n"
    "  -t, --threads N        kernel threads (default: physical cores)\n"
    "      --kv-type T        KV cache type: f16 (default, half the memory) or f32 (exact)\n"
    "      --model-name NAME  the model id clients send (default: the file name without .gguf)\n"
    "      --max-queue N      requests waiting for a slot before 503 (default 64)\n"
    "      --max-body BYTES   request body limit (default 4194304)\n"
    "      --drain-ms MS      how long shutdown waits for requests in flight (default 10000)\n"
    "      --db PATH          the ledger: API keys, budgets, usage (default: the config's\n"
    "                         'ledger:'; none: no keys, nothing metered). A file is SQLite\n"
    "                         (one server per file); postgres://USER@HOST/DB is PostgreSQL,\n"
    "                         which several servers share. See 'kyozon keys'.\n"
    "      --journal FILE     this server's settle journal (default: beside an SQLite ledger;\n"
    "                         with PostgreSQL ./kyozon-settle.journal: one per server)\n"
    "      --insecure         serve a non-loopback address although no API key exists\n"
    "  -h, --help             show this help\n";

int kz_cmd_serve(int argc, char **argv)
{
    struct kz_serve_opts o = {0};
    const char *model_arg = NULL;
    const char *config = NULL, *kv_name = NULL;
    long port = -1, par = 0, ctx = 0, thr = 0, mq = 64, body = 4 << 20, drain = 10000;
    const struct kz_opt opts[] = {
        KZ_ARG_TEXT("-m|--model", &model_arg),
        KZ_ARG_TEXT("--config", &config),
        KZ_ARG_TEXT("--host", &o.host),
        KZ_ARG_INT("--port", &port, 0, 65535),
        KZ_ARG_INT("--parallel", &par, 1, 256),
        KZ_ARG_INT("-c|--ctx", &ctx, 16, 1 << 20),
        KZ_ARG_INT("-t|--threads", &thr, 1, 1024),
        KZ_ARG_TEXT("--kv-type", &kv_name),
        KZ_ARG_TEXT("--model-name", &o.model_name),
        KZ_ARG_INT("--max-queue", &mq, 1, 1 << 20),
        KZ_ARG_INT("--max-body", &body, 1024, 1L << 30),
        KZ_ARG_TEXT("--db", &o.db),
        KZ_ARG_TEXT("--journal", &o.journal),
        KZ_ARG_FLAG("--insecure", &o.insecure),
        KZ_ARG_INT("--drain-ms", &drain, 0, 3600000),
    };
    int rc = KZ_ARGS("serve", help, opts, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    char path[4096];
    struct kz_err err = {{0}};
    uint32_t kv_type;
    if (kz_kv_type_parse(kv_name, &kv_type, &err) != KZ_OK) {
        fprintf(stderr, "kyozon serve: %s\n", err.msg);
        return 2;
    }
    o.kv_f32 = kv_type == KZ_DT_F32;
    const char *model = model_arg ? model_arg : getenv("KYOZON_MODEL");
    /* these set up the engine for -m MODEL; a configuration sets them per
     * local provider, and dropping them silently would serve something else
     * than asked for */
    const char *local_flag = model_arg ? "-m"
                             : ctx     ? "--ctx"
                             : thr     ? "--threads"
                             : par     ? "--parallel"
                             : kv_name ? "--kv-type"
                             : o.model_name ? "--model-name"
                                            : NULL;
    if (config && local_flag) {
        fprintf(stderr,
                "kyozon serve: %s is for -m MODEL; with --config set it on the local provider in %s "
                "(model_path, n_ctx, n_threads, n_parallel, kv_type; see docs/CONFIG.md)\n",
                local_flag, config);
        return 2;
    }
    if (config) {
        o.config_path = config;
    } else if (!model || !*model) {
        fprintf(stderr, "kyozon serve: -m MODEL or --config FILE is required (see kyozon serve --help)\n");
        return 2;
    } else if (kz_model_resolve(model, path, sizeof path, &err) != KZ_OK) {
        fprintf(stderr, "kyozon serve: %s\n", err.msg);
        return 1;
    } else {
        o.model_path = path;
    }
    o.port = (int)port;
    o.n_parallel = par ? (int)par : 4;
    o.n_ctx = (int)ctx;
    o.n_threads = (int)thr;
    o.max_queue = (int)mq;
    o.max_body = (size_t)body;
    o.drain_ms = (unsigned)drain;
    if (kz_serve_run(&o, &err) != KZ_OK) {
        fprintf(stderr, "kyozon serve: %s\n", err.msg);
        return 1;
    }
    return 0;
}
