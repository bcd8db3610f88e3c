/* SPDX-License-Identifier: MIT
 * Tenancy end to end: a real `kyozon serve --db` in front of mockllm, keys
 * and tenants made with the real CLI.
 *   open       no key: loopback only (a public address is refused without
 *              --insecure), requests need no key
 *   cli        `keys create` prints the key and nothing else; usage --json
 *   auth       401 without, with a wrong and with a revoked key (revocation
 *              holds for the next request); x-api-key works too
 *   scope      403 for a model or privacy tier outside the key's scope;
 *              /v1/models shows only the key's models
 *   isolation  another tenant's key reads only its own usage and cannot
 *              manage keys or tenants; /admin and /v1/providers need admin
 *   ratelimit  RPM and TPM hold within one request, x-ratelimit-* headers,
 *              429 with Retry-After; a tenant's limit binds all its keys
 *   billing    the ledger parts of FT-1, FT-2 and FT-8: a failover bills only
 *              the provider that served, at its price; a stream cut after 3
 *              tokens bills those 3 once; a client that leaves is billed for
 *              the tokens generated until then
 *   budget     100 concurrent requests against a key budget that affords
 *              10, 20 times: spend never passes the budget
 *   crash      kill -9 with ~150 requests in flight, restart on the same
 *              ledger: every answered request is recorded exactly once and
 *              balances equal the ledger's sums; a retry with the same
 *              Idempotency-Key adds nothing
 */
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>

#include "ledger/ledger.h"
#include "t.h"
#include "tnet.h"

/* Prices: 1 micro-dollar per input token, 1000 per output token. */
#define YAML_FMT                                                                                                 \
    "server: {max_connections_per_ip: 512}\n"                                                                    \
    "providers:\n"                                                                                               \
    "  - name: up\n"                                                                                             \
    "    type: openai\n"                                                                                         \
    "    base_url: http://127.0.0.1:%d/v1\n"                                                                     \
    "    price: {input_per_mtok: 1, output_per_mtok: 1000}\n"                                                    \
    "  - name: near\n"                                                                                           \
    "    type: kyozon\n"                                                                                         \
    "    base_url: http://127.0.0.1:%d/v1\n"                                                                     \
    "    privacy: private\n"                                                                                     \
    "    price: {input_per_mtok: 1, output_per_mtok: 1000}\n"                                                    \
    "models:\n"                                                                                                  \
    "  - name: chat\n"                                                                                           \
    "    deployments: [{provider: up, model: m}]\n"                                                              \
    "  - name: other\n"                                                                                          \
    "    deployments: [{provider: up, model: m}]\n"                                                              \
    "  - name: near\n"                                                                                           \
    "    deployments: [{provider: near, model: m}]\n"

static struct tnet_proc mock, srv;
static char db[700], yaml[700];
static int n_db;

static int spawn_mock(const char *mode, const char *tokens, const char *cadence)
{
    const char *argv[] = {getenv("KZ_MOCKLLM"), "--port", "0", "--mode", mode, "--tokens", tokens, "--cadence-ms",
                          cadence, NULL};
    return tnet_spawn(&mock, argv, NULL, NULL, 10000);
}

static void new_db(void)
{
    snprintf(db, sizeof db, "%s/ledger-%d.db", t_tmpdir(), n_db++);
    snprintf(yaml, sizeof yaml, "%s/tenancy.yaml", t_tmpdir());
    FILE *f = fopen(yaml, "w");
    if (f) {
        fprintf(f, YAML_FMT, mock.port, mock.port);
        fclose(f);
    }
}

static int spawn_srv_port(const char *port)
{
    const char *argv[] = {getenv("KZ_BIN"), "serve", "--config", yaml, "--db", db, "--port", port, NULL};
    return tnet_spawn(&srv, argv, NULL, NULL, 20000);
}

static int spawn_srv(void) { return spawn_srv_port("0"); }

static void stop_srv(void)
{
    int st = tnet_stop(&srv, SIGTERM, 10000);
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "server exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* Runs the CLI; its stdout into out. The exit status. */
static int cli(char *out, size_t size, const char *const *args)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = getenv("KZ_BIN");
    for (int i = 0; args[i] && n < 28; i++)
        argv[n++] = args[i];
    argv[n++] = "--db";
    argv[n++] = db;
    argv[n] = NULL;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t r;
    while ((r = read(fds[0], out + len, size - 1 - len)) > 0 && len + 1 < size)
        len += (size_t)r;
    out[len] = '\0';
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `kyozon keys create ...`: the key, or "" on failure. */
static void make_key(char key[64], const char *const *args)
{
    char out[256];
    const char *a[24] = {"keys", "create"};
    int n = 2;
    for (int i = 0; args[i] && n < 22; i++)
        a[n++] = args[i];
    a[n] = NULL;
    int rc = cli(out, sizeof out, a);
    size_t len = strlen(out);
    T_OK(rc == 0 && len == 47 && out[46] == '\n' && strncmp(out, "kz-", 3) == 0,
         "keys create prints the key and nothing else (rc %d, '%s')", rc, out);
    snprintf(key, 64, "%.46s", rc == 0 ? out : "");
}

static char chat_json[512];

static const char *body(const char *model, int max_tokens)
{
    snprintf(chat_json, sizeof chat_json,
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],\"max_tokens\":%d}", model,
             max_tokens);
    return chat_json;
}

/* POST a chat with `key` (NULL: none); extra header may be NULL. */
static int chat_with(const char *key, const char *model, const char *extra, struct tnet_resp *r)
{
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key ? key : "");
    const char *h[] = {key ? auth : extra, key ? extra : NULL, NULL};
    return tnet_request(srv.port, "POST", "/v1/chat/completions", h, body(model, 4), 10000, r);
}

static int status_of(const char *key, const char *model, const char *extra)
{
    struct tnet_resp r;
    int st = chat_with(key, model, extra, &r);
    tnet_resp_free(&r);
    return st;
}

static int get_with(const char *key, const char *path, struct tnet_resp *r)
{
    char auth[128];
    snprintf(auth, sizeof auth, "x-api-key: %s", key ? key : "");
    const char *h[] = {auth, NULL};
    return tnet_request(srv.port, "GET", path, key ? h : NULL, NULL, 10000, r);
}

static const char *err_code(const struct tnet_resp *r, char *buf, size_t size)
{
    json_t *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    snprintf(buf, size, "%s", c ? c : "(none)");
    json_decref(j);
    return buf;
}

/* ---- open mode ------------------------------------------------------------------------ */

static void open_mode(void)
{
    new_db();
    /* a public address without keys: refused before binding */
    const char *argv[] = {getenv("KZ_BIN"), "serve", "--config", yaml, "--db", db, "--host", "0.0.0.0", "--port", "0",
                          NULL};
    char log[800];
    snprintf(log, sizeof log, "%s/refused.log", t_tmpdir());
    struct tnet_proc p;
    T_OK(tnet_spawn(&p, argv, NULL, log, 10000) != 0, "0.0.0.0 without keys does not start");
    char text[2048] = "";
    FILE *f = fopen(log, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    T_OK(strstr(text, "--insecure") && strstr(text, "0.0.0.0"), "the refusal says why: %s", text);
    /* loopback: open, no key needed, and it says so */
    T_OK(spawn_srv() == 0, "server on loopback");
    T_EQ_INT(status_of(NULL, "chat", NULL), 200);
    struct tnet_resp r;
    T_EQ_INT(get_with(NULL, "/v1/providers", &r), 200);
    tnet_resp_free(&r);
    /* the first key (made over HTTP, the operator's way while open) closes it */
    const char *h[] = {NULL};
    T_EQ_INT(tnet_request(srv.port, "POST", "/admin/tenants", h, "{\"name\":\"ops\"}", 10000, &r), 201);
    tnet_resp_free(&r);
    T_EQ_INT(tnet_request(srv.port, "POST", "/admin/keys", h, "{\"tenant\":\"ops\",\"admin\":true}", 10000, &r), 201);
    json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
    const char *key = json_string_value(json_object_get(j, "key"));
    T_OK(key && strlen(key) == 46, "the admin API returns the new key once");
    tnet_resp_free(&r);
    T_EQ_INT(status_of(NULL, "chat", NULL), 401);
    T_EQ_INT(status_of(key, "chat", NULL), 200);
    T_EQ_INT(get_with(NULL, "/admin/tenants", &r), 401);
    tnet_resp_free(&r);
    json_decref(j);
    stop_srv();
}

/* ---- auth, scope, isolation ------------------------------------------------------------- */

static void auth_scope_isolation(void)
{
    new_db();
    char out[4096], a1[64], a2[64], b1[64], adm[64];
    T_EQ_INT(cli(out, sizeof out, (const char *[]){"tenants", "create", "acme", NULL}), 0);
    T_EQ_INT(cli(out, sizeof out, (const char *[]){"tenants", "create", "bolt", NULL}), 0);
    T_EQ_INT(cli(out, sizeof out, (const char *[]){"tenants", "create", "acme", NULL}), 1); /* taken */
    make_key(a1, (const char *[]){"--tenant", "acme", "--models", "chat,near", NULL});
    make_key(a2, (const char *[]){"--tenant", "acme", "--privacy", "private", NULL});
    make_key(b1, (const char *[]){"--tenant", "bolt", NULL});
    make_key(adm, (const char *[]){"--tenant", "acme", "--admin", NULL});
    T_OK(cli(out, sizeof out, (const char *[]){"keys", "create", "--tenant", "nobody", NULL}) == 1,
         "a key for an unknown tenant is refused");
    T_OK(spawn_srv() == 0, "server");
    char code[64];
    struct tnet_resp r;
    /* 401s */
    T_EQ_INT(chat_with(NULL, "chat", NULL, &r), 401);
    T_EQ_STR(err_code(&r, code, sizeof code), "invalid_api_key");
    tnet_resp_free(&r);
    T_EQ_INT(status_of("kz-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "chat", NULL), 401);
    T_EQ_INT(status_of(NULL, "chat", "Authorization: Basic abc"), 401);
    T_EQ_INT(status_of(NULL, "chat", "x-api-key: wrong"), 401);
    char xk[100];
    snprintf(xk, sizeof xk, "x-api-key: %s", b1);
    T_EQ_INT(status_of(NULL, "chat", xk), 200);
    T_EQ_INT(status_of(a1, "chat", NULL), 200);
    /* scope: models */
    T_EQ_INT(chat_with(a1, "other", NULL, &r), 403);
    T_EQ_STR(err_code(&r, code, sizeof code), "model_not_allowed");
    tnet_resp_free(&r);
    T_EQ_INT(get_with(a1, "/v1/models", &r), 200);
    T_OK(r.body && strstr(r.body, "\"chat\"") && strstr(r.body, "\"near\"") && !strstr(r.body, "\"other\""),
         "/v1/models lists the key's models only: %s", r.body ? r.body : "");
    tnet_resp_free(&r);
    T_EQ_INT(get_with(a1, "/v1/models/other", &r), 404);
    tnet_resp_free(&r);
    /* scope: privacy ceiling private: the external provider is out of reach */
    T_EQ_INT(chat_with(a2, "chat", "x-kyozon-privacy: external", &r), 403);
    T_EQ_STR(err_code(&r, code, sizeof code), "privacy_not_allowed");
    tnet_resp_free(&r);
    T_EQ_INT(chat_with(a2, "chat", NULL, &r), 503); /* only an external deployment */
    T_EQ_STR(err_code(&r, code, sizeof code), "no_deployment");
    tnet_resp_free(&r);
    /* isolation: usage */
    T_EQ_INT(get_with(b1, "/v1/usage", &r), 200);
    json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
    T_EQ_INT(json_integer_value(json_object_get(j, "requests")), 1); /* bolt's one request */
    json_decref(j);
    tnet_resp_free(&r);
    T_EQ_INT(get_with(a1, "/v1/usage?by=key", &r), 200);
    j = json_loads(r.body ? r.body : "", 0, NULL);
    long total = 0;
    size_t i;
    json_t *row;
    json_array_foreach(j, i, row) total += (long)json_integer_value(json_object_get(row, "requests"));
    T_OK(json_is_array(j) && total >= 1 && (!r.body || !strstr(r.body, b1)), "acme sees acme's usage by key");
    json_decref(j);
    tnet_resp_free(&r);
    /* isolation: management */
    T_EQ_INT(get_with(b1, "/admin/keys", &r), 403);
    tnet_resp_free(&r);
    T_EQ_INT(get_with(b1, "/admin/usage?tenant=acme", &r), 403);
    tnet_resp_free(&r);
    T_EQ_INT(get_with(b1, "/v1/providers", &r), 403);
    tnet_resp_free(&r);
    char auth[100];
    snprintf(auth, sizeof auth, "x-api-key: %s", b1);
    const char *hb[] = {auth, NULL};
    T_EQ_INT(tnet_request(srv.port, "POST", "/admin/keys/1/revoke", hb, "{}", 10000, &r), 403);
    tnet_resp_free(&r);
    T_EQ_INT(status_of(a1, "chat", NULL), 200); /* still valid */
    T_EQ_INT(get_with(adm, "/admin/usage?tenant=acme&by=model", &r), 200);
    T_OK(r.body && strstr(r.body, "\"model\":\"chat\""), "admin reads any tenant's usage: %s", r.body ? r.body : "");
    tnet_resp_free(&r);
    T_EQ_INT(get_with(adm, "/v1/providers", &r), 200);
    tnet_resp_free(&r);
    /* revocation holds for the next request */
    T_EQ_INT(cli(out, sizeof out, (const char *[]){"keys", "revoke", "1", NULL}), 0);
    T_EQ_INT(chat_with(a1, "chat", NULL, &r), 401);
    T_OK(r.body && strstr(r.body, "revoked"), "says revoked: %s", r.body ? r.body : "");
    tnet_resp_free(&r);
    /* usage --json for scripts */
    T_EQ_INT(cli(out, sizeof out, (const char *[]){"usage", "--tenant", "bolt", "--json", NULL}), 0);
    j = json_loads(out, 0, NULL);
    T_OK(json_integer_value(json_object_get(j, "requests")) == 1 &&
             json_integer_value(json_object_get(j, "input_tokens")) >= 1 &&
             json_integer_value(json_object_get(j, "output_tokens")) == 4 &&
             json_is_number(json_object_get(j, "cost_usd")),
         "usage --json: %s", out);
    json_decref(j);
    T_EQ_INT(cli(out, sizeof out, (const char *[]){"usage", "--by", "model", "--json", NULL}), 0);
    j = json_loads(out, 0, NULL);
    T_OK(json_is_array(j) && json_array_size(j) == 1 &&
             json_string_value(json_object_get(json_array_get(j, 0), "model")) &&
             strcmp(json_string_value(json_object_get(json_array_get(j, 0), "model")), "chat") == 0,
         "usage --by model --json: %s", out);
    json_decref(j);
    /* an Idempotency-Key is its tenant's: the same key from another tenant
     * is another request, run and billed; from the same tenant, a repeat */
    T_EQ_INT(status_of(adm, "chat", "Idempotency-Key: same-key"), 200);
    T_EQ_INT(status_of(b1, "chat", "Idempotency-Key: same-key"), 200);
    T_EQ_INT(status_of(adm, "chat", "Idempotency-Key: same-key"), 409);
    T_EQ_INT(status_of(b1, "chat", "Idempotency-Key: same-key"), 409);
    T_EQ_INT(get_with(adm, "/admin/usage", &r), 200); /* waits for the writer */
    tnet_resp_free(&r);
    T_EQ_INT(cli(out, sizeof out, (const char *[]){"usage", "--tenant", "bolt", "--json", NULL}), 0);
    j = json_loads(out, 0, NULL);
    T_OK(json_integer_value(json_object_get(j, "requests")) == 2, "bolt's same-key request was billed: %s", out);
    json_decref(j);
    stop_srv();
}

/* ---- what the ledger bills when things go wrong (FT-1, FT-2, FT-8) --------------------------- */

static int spawn_extra(struct tnet_proc *p, const char *mode, const char *after, const char *cadence)
{
    const char *argv[] = {getenv("KZ_MOCKLLM"), "--port", "0", "--mode", mode, "--tokens", "8", "--after", after,
                          "--cadence-ms", cadence, NULL};
    return tnet_spawn(p, argv, NULL, NULL, 10000);
}

/* The one ledger row of a request id, read after a usage call made the
 * ledger current. 0 when found. */
static int row_of(const char *admin, const char *id, struct kz_ledger_usage *u)
{
    struct tnet_resp r;
    get_with(admin, "/admin/usage", &r); /* waits for the writer */
    tnet_resp_free(&r);
    struct kz_ledger *l = NULL;
    struct kz_err err = {{0}};
    int rc = -1;
    char rid[128]; /* a client's Idempotency-Key is its tenant's: the ledger keeps TENANT:KEY */
    snprintf(rid, sizeof rid, "1:%s", id);
    if (kz_ledger_open(db, NULL, &l, &err) == KZ_OK) {
        rc = kz_ledger_usage_get(l, 1, rid, u, &err) == KZ_OK ? 0 : -1;
        kz_ledger_close(l);
    }
    return rc;
}

static void billing(void)
{
    struct tnet_proc down, cut, slow;
    int ok = spawn_extra(&down, "status:503", "1", "0") == 0 && spawn_extra(&cut, "close_mid", "3", "0") == 0 &&
             spawn_extra(&slow, "slow", "1", "50") == 0;
    T_OK(ok, "extra mocks");
    if (!ok)
        return;
    new_db();
    FILE *f = fopen(yaml, "w");
    if (f) {
        fprintf(f,
                "providers:\n"
                "  - {name: down, type: openai, base_url: \"http://127.0.0.1:%d/v1\", price: {input_per_mtok: 1, "
                "output_per_mtok: 1000}}\n"
                "  - {name: up, type: openai, base_url: \"http://127.0.0.1:%d/v1\", price: {input_per_mtok: 2, "
                "output_per_mtok: 2000}}\n"
                "  - {name: cut, type: openai, base_url: \"http://127.0.0.1:%d/v1\", price: {input_per_mtok: 1, "
                "output_per_mtok: 1000}}\n"
                "  - {name: slow, type: openai, base_url: \"http://127.0.0.1:%d/v1\", price: {input_per_mtok: 1, "
                "output_per_mtok: 1000}}\n"
                "models:\n"
                "  - {name: fo, strategy: priority, deployments: [{provider: down, model: m}, {provider: up, model: m}]}\n"
                "  - {name: cut, deployments: [{provider: cut, model: m}]}\n"
                "  - {name: slow, deployments: [{provider: slow, model: m}]}\n",
                down.port, mock.port, cut.port, slow.port);
        fclose(f);
    }
    char out[512], key[64], adm[64];
    cli(out, sizeof out, (const char *[]){"tenants", "create", "bill", NULL});
    make_key(key, (const char *[]){"--tenant", "bill", NULL});
    make_key(adm, (const char *[]){"--tenant", "bill", "--admin", NULL});
    T_OK(spawn_srv() == 0, "server");
    struct kz_ledger_usage u;
    struct tnet_resp r;
    /* FT-1: the first deployment fails before any byte; only the one that served is billed */
    T_EQ_INT(chat_with(key, "fo", "Idempotency-Key: bill-fo", &r), 200);
    long out_tokens = -1;
    json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
    out_tokens = (long)json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens"));
    json_decref(j);
    tnet_resp_free(&r);
    T_OK(row_of(adm, "bill-fo", &u) == 0 && strcmp(u.provider, "up") == 0 && u.output_tokens == out_tokens &&
             u.cost == 2 * u.input_tokens + 2000 * u.output_tokens,
         "FT-1: billed once, to the provider that served, at its price (%s, %lld tokens, %lld)", u.provider,
         (long long)u.output_tokens, (long long)u.cost);
    /* FT-2: the stream breaks after 3 tokens: the partial usage, once */
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    const char *h2[] = {auth, "Idempotency-Key: bill-cut", NULL};
    struct tnet_sse s;
    static const char sbody[] = "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                                "\"max_tokens\":8,\"stream\":true}";
    char b2[256];
    snprintf(b2, sizeof b2, sbody, "cut");
    int chunks = 0, error = 0;
    if (tnet_sse_open(&s, srv.port, "POST", "/v1/chat/completions", h2, b2, 10000) == 200) {
        char ev[64], *data = NULL;
        while (tnet_sse_next(&s, 10000, ev, sizeof ev, &data) == 1) {
            chunks += strstr(data, "\"content\":\"tok") != NULL;
            error |= strstr(data, "\"error\"") != NULL;
            kz_free(data);
            data = NULL;
        }
    }
    tnet_sse_close(&s);
    T_OK(chunks == 3 && error, "FT-2: 3 tokens then an error event (%d, %d)", chunks, error);
    T_OK(row_of(adm, "bill-cut", &u) == 0 && u.output_tokens == 3 && u.status >= 500 &&
             u.cost == u.input_tokens + 3000,
         "FT-2: the partial usage billed once (%lld tokens, status %d)", (long long)u.output_tokens, u.status);
    /* FT-8: the client leaves after 2 tokens of a slow stream: billed for
     * what the provider had sent when kyozon closed the upstream call */
    const char *h3[] = {auth, "Idempotency-Key: bill-left", NULL};
    snprintf(b2, sizeof b2, sbody, "slow");
    chunks = 0;
    if (tnet_sse_open(&s, srv.port, "POST", "/v1/chat/completions", h3, b2, 10000) == 200) {
        char ev[64], *data = NULL;
        while (chunks < 2 && tnet_sse_next(&s, 10000, ev, sizeof ev, &data) == 1) {
            chunks += strstr(data, "\"content\":\"tok") != NULL;
            kz_free(data);
            data = NULL;
        }
    }
    tnet_sse_close(&s);
    usleep(300 * 1000);
    T_OK(row_of(adm, "bill-left", &u) == 0 && u.status == 499 && u.output_tokens >= 2 && u.output_tokens <= 3 &&
             u.cost == u.input_tokens + 1000 * u.output_tokens,
         "FT-8: a client that left is billed for the tokens generated so far (%lld, status %d)",
         (long long)u.output_tokens, u.status);
    stop_srv();
    tnet_stop(&down, SIGTERM, 5000);
    tnet_stop(&cut, SIGTERM, 5000);
    tnet_stop(&slow, SIGTERM, 5000);
}

/* ---- rate limits ---------------------------------------------------------------------------- */

static void rate_limits(void)
{
    new_db();
    char out[512], k1[64], k2[64];
    cli(out, sizeof out, (const char *[]){"tenants", "create", "rl", NULL});
    make_key(k1, (const char *[]){"--tenant", "rl", "--rpm", "5", NULL});
    make_key(k2, (const char *[]){"--tenant", "rl", "--tpm", "50", NULL});
    T_OK(spawn_srv() == 0, "server");
    struct tnet_resp r;
    int ok = 0, limited = 0;
    for (int i = 0; i < 8; i++) {
        int st = chat_with(k1, "chat", NULL, &r);
        ok += st == 200;
        if (st == 200) {
            const char *rem = tnet_header(&r, "x-ratelimit-remaining-requests");
            T_OK(rem && atoi(rem) == 5 - ok, "remaining %s after %d", rem ? rem : "(none)", ok);
            T_OK(tnet_header(&r, "x-ratelimit-limit-requests") &&
                     strcmp(tnet_header(&r, "x-ratelimit-limit-requests"), "5") == 0,
                 "limit header");
        } else if (st == 429) {
            limited++;
            const char *ra = tnet_header(&r, "retry-after");
            T_OK(ra && atoi(ra) >= 1 && atoi(ra) <= 60, "Retry-After %s", ra ? ra : "(none)");
            T_OK(tnet_header(&r, "x-ratelimit-reset-requests") != NULL, "reset header");
            char code[64];
            T_EQ_STR(err_code(&r, code, sizeof code), "rate_limit_exceeded");
        }
        tnet_resp_free(&r);
    }
    T_EQ_INT(ok, 5);
    T_EQ_INT(limited, 3);
    /* TPM 50: requests are admitted while fewer than 50 tokens were used, so
     * with `per` tokens each, ceil(50 / per) fit */
    ok = 0;
    long per = 0;
    for (int i = 0; i < 20; i++) {
        if (chat_with(k2, "chat", NULL, &r) == 200) {
            ok++;
            json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
            if (!per)
                per = (long)json_integer_value(json_object_get(json_object_get(j, "usage"), "total_tokens"));
            json_decref(j);
        }
        tnet_resp_free(&r);
    }
    T_OK(per > 0 && ok == (50 + per - 1) / per, "TPM 50: %d answers of %ld tokens", ok, per);
    /* a tenant's RPM binds all its keys together */
    char t1[64], t2[64];
    T_EQ_INT(cli(out, sizeof out, (const char *[]){"tenants", "create", "rt", "--rpm", "4", NULL}), 0);
    make_key(t1, (const char *[]){"--tenant", "rt", NULL});
    make_key(t2, (const char *[]){"--tenant", "rt", "--rpm", "100", NULL});
    ok = 0;
    for (int i = 0; i < 8; i++)
        ok += status_of(i % 2 ? t2 : t1, "chat", NULL) == 200;
    T_EQ_INT(ok, 4);
    stop_srv();
}

/* ---- budgets under concurrency ------------------------------------------------------------- */

#define N_CONC 100

struct conc {
    const char *key;
    int status[N_CONC];
    char code[N_CONC][40];
    int next;
    pthread_mutex_t mu;
};

static void *conc_main(void *arg)
{
    struct conc *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int i = c->next < N_CONC ? c->next++ : -1;
        pthread_mutex_unlock(&c->mu);
        if (i < 0)
            return NULL;
        struct tnet_resp r;
        char auth[128];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->key);
        const char *h[] = {auth, NULL};
        static const char b[] = "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],"
                                "\"max_tokens\":4}";
        c->status[i] = tnet_request(srv.port, "POST", "/v1/chat/completions", h, b, 20000, &r);
        err_code(&r, c->code[i], sizeof c->code[i]);
        tnet_resp_free(&r);
    }
}

static void budgets(void)
{
    new_db();
    char out[4096];
    cli(out, sizeof out, (const char *[]){"tenants", "create", "b", NULL});
    char adm[64];
    make_key(adm, (const char *[]){"--tenant", "b", "--admin", NULL});
    T_OK(spawn_srv() == 0, "server");
    /* the reservation: every body byte a token at 1 micro-dollar, 4 output
     * tokens at 1000; an answer costs 1 + 4000 */
    static const char b[] = "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],"
                            "\"max_tokens\":4}";
    int64_t reserve = (int64_t)strlen(b) + 4000;
    int64_t budget = 10 * reserve;
    /* what one answer really costs: its usage at the configured prices */
    struct tnet_resp pr;
    char pauth[100];
    snprintf(pauth, sizeof pauth, "x-api-key: %s", adm);
    const char *ph[] = {pauth, NULL};
    T_EQ_INT(tnet_request(srv.port, "POST", "/v1/chat/completions", ph, b, 10000, &pr), 200);
    json_t *pj = json_loads(pr.body ? pr.body : "", 0, NULL);
    json_t *pu = json_object_get(pj, "usage");
    int64_t per = json_integer_value(json_object_get(pu, "prompt_tokens")) +
                  1000 * json_integer_value(json_object_get(pu, "completion_tokens"));
    json_decref(pj);
    tnet_resp_free(&pr);
    T_OK(per > 0 && per <= reserve, "an answer costs %lld, reserved %lld", (long long)per, (long long)reserve);
    int worst_over = 0, min_ok = N_CONC, max_ok = 0, bad_refusals = 0;
    for (int rep = 0; rep < 20; rep++) {
        char body_txt[256], auth[100];
        snprintf(body_txt, sizeof body_txt, "{\"tenant\":\"b\",\"budget_usd\":\"%lld.%06lld\",\"period\":\"total\"}",
                 (long long)(budget / 1000000), (long long)(budget % 1000000));
        snprintf(auth, sizeof auth, "x-api-key: %s", adm);
        const char *h[] = {auth, NULL};
        struct tnet_resp r;
        T_EQ_INT(tnet_request(srv.port, "POST", "/admin/keys", h, body_txt, 10000, &r), 201);
        json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
        char key[64], id[32];
        const char *kv = json_string_value(json_object_get(j, "key"));
        snprintf(key, sizeof key, "%s", kv ? kv : "");
        snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(j, "id")));
        json_decref(j);
        tnet_resp_free(&r);
        struct conc c = {.key = key};
        pthread_mutex_init(&c.mu, NULL);
        pthread_t th[N_CONC];
        for (int i = 0; i < N_CONC; i++)
            pthread_create(&th[i], NULL, conc_main, &c);
        for (int i = 0; i < N_CONC; i++)
            pthread_join(th[i], NULL);
        int ok = 0;
        for (int i = 0; i < N_CONC; i++) {
            ok += c.status[i] == 200;
            if (c.status[i] != 200 && (c.status[i] != 402 || strcmp(c.code[i], "budget_exhausted") != 0)) {
                if (!bad_refusals)
                    T_OK(0, "a refusal other than 402 budget_exhausted: %d %s", c.status[i], c.code[i]);
                bad_refusals++;
            }
        }
        min_ok = ok < min_ok ? ok : min_ok;
        max_ok = ok > max_ok ? ok : max_ok;
        /* the key's spend, from the admin API */
        char path[64];
        snprintf(path, sizeof path, "/admin/keys?tenant=b");
        T_EQ_INT(get_with(adm, path, &r), 200);
        j = json_loads(r.body ? r.body : "", 0, NULL);
        size_t i;
        json_t *k;
        int64_t spent = -1;
        json_array_foreach(j, i, k) if (json_integer_value(json_object_get(k, "id")) == atoll(id)) spent =
            json_integer_value(json_object_get(k, "spent_micro_usd"));
        json_decref(j);
        tnet_resp_free(&r);
        T_OK(spent == (int64_t)ok * per, "rep %d: spent %lld for %d answers", rep, (long long)spent, ok);
        if (spent > budget)
            worst_over++;
        pthread_mutex_destroy(&c.mu);
    }
    T_EQ_INT(worst_over, 0);
    T_EQ_INT(bad_refusals, 0);
    T_OK(min_ok >= 10 && max_ok <= (int)(budget / per), "answers per repetition %d..%d (10 reservations fit, "
                                                         "at most %lld answers)",
         min_ok, max_ok, (long long)(budget / per));

    /* One at a time, quickly (the key stays in the server's cache of
     * verified keys): request i is admitted while i answers' cost plus one
     * reservation fit, so exactly floor((budget - reserve) / per) + 1 are.
     * A cached spend that forgot the answers committed since it was read
     * would admit more (each is committed before the next, all within the
     * cache's second). */
    char seq[64];
    make_key(seq, (const char *[]){"--tenant", "b", "--budget", "0.05", "--period", "total", NULL});
    int64_t seq_budget = 50000, answered = 0, status = 200;
    while (status == 200 && answered < 100) {
        struct tnet_resp r;
        char auth[100];
        snprintf(auth, sizeof auth, "x-api-key: %s", seq);
        const char *h[] = {auth, NULL};
        status = tnet_request(srv.port, "POST", "/v1/chat/completions", h, b, 10000, &r);
        tnet_resp_free(&r);
        answered += status == 200;
        usleep(30000); /* its record committed (the writer gathers for 10 ms) before the next */
    }
    T_EQ_INT(status, 402);
    T_EQ_INT(answered, (seq_budget - reserve) / per + 1);
    stop_srv();
}

/* ---- kill -9 with requests in flight ---------------------------------------------------------- */

#define N_CRASH 300

struct crash {
    const char *key;
    int port;
    int next;
    int answered[N_CRASH]; /* a complete 200 reached the client */
    int n_answered;        /* under mu */
    pthread_mutex_t mu;
};

static void *crash_main(void *arg)
{
    struct crash *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int i = c->next < N_CRASH ? c->next++ : -1;
        pthread_mutex_unlock(&c->mu);
        if (i < 0)
            return NULL;
        usleep((useconds_t)i * 2000); /* request i starts at 2i ms */
        char auth[128], idem[64];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->key);
        snprintf(idem, sizeof idem, "Idempotency-Key: crash-%d", i);
        const char *h[] = {auth, idem, NULL};
        struct tnet_resp r;
        int st = tnet_request(c->port, "POST", "/v1/chat/completions", h, body("chat", 10), 20000, &r);
        json_t *j = st == 200 && r.body ? json_loads(r.body, 0, NULL) : NULL;
        c->answered[i] = json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")) == 10;
        pthread_mutex_lock(&c->mu);
        c->n_answered += c->answered[i];
        pthread_mutex_unlock(&c->mu);
        json_decref(j);
        tnet_resp_free(&r);
    }
}

static void crash(void)
{
    /* answers take 10 x 50 ms, so many are in flight at the kill */
    tnet_stop(&mock, SIGTERM, 5000);
    T_OK(spawn_mock("slow", "10", "50") == 0, "slow mockllm");
    new_db();
    char out[512], key[64];
    cli(out, sizeof out, (const char *[]){"tenants", "create", "c", NULL});
    cli(out, sizeof out, (const char *[]){"tenants", "credit", "c", "100", NULL});
    make_key(key, (const char *[]){"--tenant", "c", NULL});
    T_OK(spawn_srv() == 0, "server");
    int port = srv.port;
    struct crash c = {.key = key, .port = port};
    pthread_mutex_init(&c.mu, NULL);
    pthread_t th[N_CRASH];
    for (int i = 0; i < N_CRASH; i++)
        pthread_create(&th[i], NULL, crash_main, &c);
    /* each answer takes 500 ms and request i starts at 2i ms: the kill comes
     * once 50 are answered (about 600 ms in on an idle machine, later on a
     * loaded one or under the sanitizers), with most of the others in
     * flight and some answers leaving at that moment */
    double t_wait = tnet_now_ms();
    for (;;) {
        pthread_mutex_lock(&c.mu);
        int na = c.n_answered;
        pthread_mutex_unlock(&c.mu);
        if (na >= 50 || tnet_now_ms() - t_wait > 20000)
            break;
        usleep(2000);
    }
    kill(srv.pid, SIGKILL);
    tnet_stop(&srv, SIGKILL, 5000);
    for (int i = 0; i < N_CRASH; i++)
        pthread_join(th[i], NULL);
    int answered = 0;
    for (int i = 0; i < N_CRASH; i++)
        answered += c.answered[i];
    T_OK(answered > 0 && answered < N_CRASH, "%d of %d answered before the kill", answered, N_CRASH);
    /* restart on the same ledger and port */
    char pt[16];
    snprintf(pt, sizeof pt, "%d", port);
    double t0 = tnet_now_ms();
    T_OK(spawn_srv_port(pt) == 0, "restarted");
    T_OK(tnet_now_ms() - t0 < 2000, "restart in %.0f ms", tnet_now_ms() - t0);
    /* a retry of an answered request adds nothing */
    int first = -1;
    for (int i = 0; i < N_CRASH && first < 0; i++)
        if (c.answered[i])
            first = i;
    char auth[128], idem[64];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    snprintf(idem, sizeof idem, "Idempotency-Key: crash-%d", first);
    const char *h[] = {auth, idem, NULL};
    struct tnet_resp r;
    T_EQ_INT(tnet_request(port, "POST", "/v1/chat/completions", h, body("chat", 10), 20000, &r), 409);
    tnet_resp_free(&r);
    stop_srv();
    /* the ledger itself */
    struct kz_ledger *l = NULL;
    struct kz_err err = {{0}};
    T_OK(kz_ledger_open(db, NULL, &l, &err) == KZ_OK, "open: %s", err.msg);
    int missing = 0;
    int64_t sum = 0, rows = 0;
    for (int i = 0; i < N_CRASH; i++) {
        char id[64];
        snprintf(id, sizeof id, "1:crash-%d", i); /* TENANT:KEY */
        struct kz_ledger_usage u;
        kz_status rc = kz_ledger_usage_get(l, 1, id, &u, &err);
        if (rc == KZ_OK) {
            rows++;
            sum += u.cost;
        }
        if (c.answered[i] && rc != KZ_OK)
            missing++;
    }
    T_EQ_INT(missing, 0);
    struct kz_ledger_usage_row *tot = NULL;
    size_t n = 0;
    struct kz_ledger_query q = {.by = KZ_GROUP_TOTAL};
    T_OK(kz_ledger_usage(l, 1, &q, &tot, &n, &err) == KZ_OK && n == 1, "usage");
    T_OK(n == 1 && tot[0].requests == rows && tot[0].cost == sum, "one row per request id (%lld rows, %lld total)",
         (long long)rows, n ? (long long)tot[0].requests : -1LL);
    kz_free(tot);
    struct kz_ledger_tenant t;
    T_OK(kz_ledger_tenant_get(l, 1, &t, &err) == KZ_OK, "tenant");
    T_EQ_INT(t.balance, 100000000 - sum);
    T_OK(kz_ledger_check(l, &err) == KZ_OK, "ledger invariants hold: %s", err.msg);
    kz_ledger_close(l);
    pthread_mutex_destroy(&c.mu);
}

int main(void)
{
    if (spawn_mock("ok", "4", "0") != 0) {
        T_OK(0, "mockllm starts");
        return t_done();
    }
    open_mode();
    auth_scope_isolation();
    rate_limits();
    billing();
    budgets();
    crash();
    tnet_stop(&mock, SIGTERM, 5000);
    return t_done();
}
