/* SPDX-License-Identifier: MIT
 * `kyozon serve`: the OpenAI-compatible HTTP API over the router: the
 * local engine and the providers of a configuration file (router/config.h).
 * Without a configuration it serves one local model, as one local provider.
 *
 * Routes: GET /health, GET /metrics, GET /v1/models, GET /v1/models/{id},
 * GET /v1/providers (admin), POST /v1/chat/completions, POST /v1/completions,
 * POST /v1/embeddings, GET /v1/usage, /admin/... (api/admin.c). With a
 * ledger holding API keys, /v1 and /admin need a key (tenancy/tenancy.h).
 *
 * Threads: the HTTP loop (the caller of kz_serve_run) owns every request;
 * the model loads on a libuv worker thread while the server already
 * answers /health with "loading"; generation runs on the engine scheduler
 * thread and comes back to the loop through kz_http_server_post.
 */
#ifndef KZ_SERVE_H
#define KZ_SERVE_H

#include <stddef.h>

#include "core/status.h"

struct kz_serve_opts {
    const char *config_path; /* YAML router configuration; NULL: one local provider from model_path */
    const char *model_path;  /* GGUF file (already resolved); ignored with a config */
    const char *model_name;  /* id clients use; NULL: the file name without .gguf */
    const char *host;        /* NULL: the config's, else 127.0.0.1 */
    int port;                /* -1: the config's (8080 without one); 0 picks a free one */
    int n_parallel;          /* sequences at once (default 4) */
    int n_ctx;               /* positions per sequence (0: model's, capped at 4096) */
    int n_threads;           /* 0: physical cores */
    int kv_f32;              /* KV cache in F32 (default F16) */
    int max_queue;           /* waiting requests before 503 (default 64) */
    size_t max_body;         /* request body limit (default 4 MiB) */
    unsigned drain_ms;       /* graceful shutdown bound (default 10000) */
    const char *db;          /* ledger (keys, budgets, usage); NULL: the config's `ledger:`, else none */
    const char *journal;     /* the settle journal (NULL: beside an SQLite ledger; with
                              * PostgreSQL kyozon-settle.journal in the working directory) */
    int insecure;            /* allow a non-loopback address while no API key exists */
};

/* Runs the server until SIGTERM/SIGINT (then drains and returns KZ_OK) or a
 * fatal error (bind failure, model load failure: err says which). Prints
 * "kyozon: listening on http://HOST:PORT" to stderr once bound. */
kz_status kz_serve_run(const struct kz_serve_opts *o, struct kz_err *err);

#endif
