/* SPDX-License-Identifier: MIT
 * kyozon serve: the OpenAI-compatible HTTP server over a local model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/serve.h"
#include "cli/args.h"
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
    "      --config FILE      a router configuration: providers, models, routing\n"
    "      --host H           address to bind (default: the config's, else 127.0.0.1)\n"
    "      --port P           port (default: the config's, else 8080; 0 picks a free one)\n"
    "      --parallel N       sequences generated at once (default 4)\n"
    "  -c, --ctx N            context positions per sequence (default: the model's, at most 4096)\n"
    "  -t, --threads N        kernel threads (default: physical cores)\n"
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
    const char *model = getenv("KYOZON_MODEL");
    const char *config = NULL;
    long port = -1, par = 4, ctx = 0, thr = 0, mq = 64, body = 4 << 20, drain = 10000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help, stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            bad = kz_arg_need("serve", a, v);
            model = v;
            i++;
        } else if (!strcmp(a, "--config")) {
            bad = kz_arg_need("serve", a, v);
            config = v;
            i++;
        } else if (!strcmp(a, "--host")) {
            bad = kz_arg_need("serve", a, v);
            o.host = v;
            i++;
        } else if (!strcmp(a, "--port")) {
            bad = kz_arg_int("serve", a, v, 0, 65535, &port);
            i++;
        } else if (!strcmp(a, "--parallel")) {
            bad = kz_arg_int("serve", a, v, 1, 256, &par);
            i++;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            bad = kz_arg_int("serve", a, v, 16, 1 << 20, &ctx);
            i++;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            bad = kz_arg_int("serve", a, v, 1, 1024, &thr);
            i++;
        } else if (!strcmp(a, "--model-name")) {
            bad = kz_arg_need("serve", a, v);
            o.model_name = v;
            i++;
        } else if (!strcmp(a, "--max-queue")) {
            bad = kz_arg_int("serve", a, v, 1, 1 << 20, &mq);
            i++;
        } else if (!strcmp(a, "--max-body")) {
            bad = kz_arg_int("serve", a, v, 1024, 1L << 30, &body);
            i++;
        } else if (!strcmp(a, "--db")) {
            bad = kz_arg_need("serve", a, v);
            o.db = v;
            i++;
        } else if (!strcmp(a, "--journal")) {
            bad = kz_arg_need("serve", a, v);
            o.journal = v;
            i++;
        } else if (!strcmp(a, "--insecure")) {
            o.insecure = 1;
        } else if (!strcmp(a, "--drain-ms")) {
            bad = kz_arg_int("serve", a, v, 0, 3600000, &drain);
            i++;
        } else {
            fprintf(stderr, "kyozon serve: unknown option '%s' (see kyozon serve --help)\n", a);
            return 2;
        }
        if (bad)
            return 2;
    }
    char path[4096];
    struct kz_err err = {{0}};
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
    o.n_parallel = (int)par;
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
