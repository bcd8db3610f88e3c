/* SPDX-License-Identifier: MIT
 * Federation under failure, with real nodes: three `kyozon serve` nodes
 * (each its own engine on a synthetic model) behind a fourth as `kyozon`
 * providers. Under a bounded load of 2,000 requests (half streamed), one
 * node is killed with SIGKILL and later restarted on the same port:
 *   - every request that had not started streaming succeeds (a stream
 *     that had content when its node died may end with an error event);
 *   - the killed node is ejected within 1 s;
 *   - it is restored within 5 s of its restart (active health checks).
 */
#include <pthread.h>
#include <string.h>

#include "t.h"
#include "tnet.h"

#define N_REQUESTS 2000
#define N_WORKERS 12

static char model_path[600];
static int node_port[3], gw_port;
static struct tnet_proc node[3], gw;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int next_req, done_req, ok, broken_mid_stream, failed;
static char first_failure[400];

static int spawn_node(int i)
{
    char port[16];
    snprintf(port, sizeof port, "%d", node_port[i]);
    const char *argv[] = {getenv("KZ_BIN"), "serve", "-m", model_path, "--port", port, "--model-name", "chat",
                          "-t", "1", "--parallel", "4", "--ctx", "128", NULL};
    return tnet_spawn(&node[i], argv, NULL, NULL, 20000);
}

static int wait_health(int port, int timeout_ms)
{
    double until = tnet_now_ms() + timeout_ms;
    while (tnet_now_ms() < until) {
        struct tnet_resp r;
        int st = tnet_request(port, "GET", "/health", NULL, NULL, 2000, &r);
        tnet_resp_free(&r);
        if (st == 200)
            return 0;
        usleep(20000);
    }
    return -1;
}

static void record(int result, const char *what)
{
    pthread_mutex_lock(&mu);
    done_req++;
    if (result == 0)
        ok++;
    else if (result == 1)
        broken_mid_stream++;
    else {
        failed++;
        if (!first_failure[0])
            snprintf(first_failure, sizeof first_failure, "%s", what);
    }
    pthread_mutex_unlock(&mu);
}

/* 0 ok, 1 a stream that broke after content (allowed), 2 a failure. */
static int one_request(int k)
{
    char body[256], what[300];
    int stream = k % 2;
    snprintf(body, sizeof body,
             "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"request %d\"}],\"max_tokens\":6,"
             "\"temperature\":0%s}",
             k, stream ? ",\"stream\":true" : "");
    if (!stream) {
        struct tnet_resp r;
        int st = tnet_request(gw_port, "POST", "/v1/chat/completions", NULL, body, 30000, &r);
        json_t *j = st == 200 ? json_loads(r.body, 0, NULL) : NULL;
        int good = j && json_is_string(json_object_get(
                            json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"), "content"));
        snprintf(what, sizeof what, "request %d: %d %.200s", k, st, r.body ? r.body : "");
        json_decref(j);
        tnet_resp_free(&r);
        record(good ? 0 : 2, what);
        return 0;
    }
    struct tnet_sse s;
    int st = tnet_sse_open(&s, gw_port, "POST", "/v1/chat/completions", NULL, body, 30000);
    int content = 0, error = 0, done = 0, bad = 0;
    while (st == 200) {
        char ev[64], *data = NULL;
        int rc = tnet_sse_next(&s, 30000, ev, sizeof ev, &data);
        if (rc != 1) {
            bad = rc < 0;
            kz_free(data);
            break;
        }
        if (strcmp(data, "[DONE]") == 0)
            done = 1;
        else if (strstr(data, "\"error\""))
            error = 1;
        else if (strstr(data, "\"content\":\"") && !strstr(data, "\"content\":\"\""))
            content = 1;
        kz_free(data);
    }
    tnet_sse_close(&s);
    snprintf(what, sizeof what, "stream %d: status %d content %d error %d done %d bad %d", k, st, content, error, done,
             bad);
    if (st == 200 && done && !error && !bad)
        record(0, what);
    else if (st == 200 && content && (error || bad))
        record(1, what); /* it had started streaming when its node died */
    else
        record(2, what);
    return 0;
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&mu);
        int k = next_req < N_REQUESTS ? next_req++ : -1;
        pthread_mutex_unlock(&mu);
        if (k < 0)
            return NULL;
        one_request(k);
    }
}

static int done_count(void)
{
    pthread_mutex_lock(&mu);
    int n = done_req;
    pthread_mutex_unlock(&mu);
    return n;
}

static void federation(void)
{
    for (int i = 0; i < 3; i++) {
        node_port[i] = tnet_free_port();
        T_OK(spawn_node(i) == 0 && wait_health(node_port[i], 20000) == 0, "node %d serving on %d", i, node_port[i]);
    }
    char yaml[2048], path[700];
    snprintf(yaml, sizeof yaml,
             "providers:\n"
             "  - {name: n0, type: kyozon, base_url: \"http://127.0.0.1:%d/v1\", privacy: private}\n"
             "  - {name: n1, type: kyozon, base_url: \"http://127.0.0.1:%d/v1\", privacy: private}\n"
             "  - {name: n2, type: kyozon, base_url: \"http://127.0.0.1:%d/v1\", privacy: private}\n"
             "models:\n"
             "  - name: chat\n"
             "    strategy: least-busy\n"
             "    deployments: [{provider: n0, model: chat}, {provider: n1, model: chat}, "
             "{provider: n2, model: chat}]\n"
             "router: {health_interval_ms: 250}\n",
             node_port[0], node_port[1], node_port[2]);
    snprintf(path, sizeof path, "%s/federation.yaml", t_tmpdir());
    FILE *f = fopen(path, "w");
    fputs(yaml, f);
    fclose(f);
    const char *argv[] = {getenv("KZ_BIN"), "serve", "--config", path, "--port", "0", NULL};
    T_OK(tnet_spawn(&gw, argv, NULL, NULL, 20000) == 0, "gateway started");
    gw_port = gw.port;

    pthread_t th[N_WORKERS];
    for (int i = 0; i < N_WORKERS; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    while (done_count() < N_REQUESTS / 4)
        usleep(5000);

    /* kill node 1 mid-load */
    char h[32];
    tnet_provider_health(gw_port, "n1", h, sizeof h);
    T_EQ_STR(h, "healthy");
    double t_kill = tnet_now_ms();
    kill(node[1].pid, SIGKILL);
    double ejected_ms = -1;
    while (tnet_now_ms() - t_kill < 3000) {
        tnet_provider_health(gw_port, "n1", h, sizeof h);
        if (strcmp(h, "ejected") == 0) {
            ejected_ms = tnet_now_ms() - t_kill;
            break;
        }
        usleep(10000);
    }
    tnet_wait(&node[1], 5000);
    T_OK(ejected_ms >= 0 && ejected_ms <= 1000, "the killed node was ejected after %.0f ms (at most 1000)", ejected_ms);
    int at_kill = done_count();

    /* restart it on the same port while the load goes on */
    while (done_count() < at_kill + N_REQUESTS / 4 && done_count() < N_REQUESTS - 200)
        usleep(5000);
    double t_restart = tnet_now_ms();
    T_OK(spawn_node(1) == 0, "node 1 restarted on port %d", node_port[1]);
    double restored_ms = -1;
    while (tnet_now_ms() - t_restart < 8000) {
        tnet_provider_health(gw_port, "n1", h, sizeof h);
        if (strcmp(h, "healthy") == 0) {
            restored_ms = tnet_now_ms() - t_restart;
            break;
        }
        usleep(10000);
    }
    T_OK(restored_ms >= 0 && restored_ms <= 5000, "restored %.0f ms after its restart (at most 5000)", restored_ms);
    int at_restore = done_count();

    for (int i = 0; i < N_WORKERS; i++)
        pthread_join(th[i], NULL);
    T_OK(at_restore < N_REQUESTS, "the load was still running when the node came back (%d done)", at_restore);
    T_EQ_INT(done_req, N_REQUESTS);
    printf("# %d requests: %d ok, %d streams broken after content, %d failed; ejected after %.0f ms, "
           "restored %.0f ms after the restart; kill at request %d, back at %d\n",
           N_REQUESTS, ok, broken_mid_stream, failed, ejected_ms, restored_ms, at_kill, at_restore);
    T_OK(failed == 0, "%d requests: %d ok, %d streams broken after content, %d failed%s%s", N_REQUESTS, ok,
         broken_mid_stream, failed, failed ? ": " : "", first_failure);
    /* the restarted node takes traffic again */
    struct tnet_resp r;
    tnet_request(gw_port, "GET", "/v1/providers", NULL, NULL, 2000, &r);
    T_OK(r.body && strstr(r.body, "\"name\":\"n1\""), "providers listed");
    tnet_resp_free(&r);

    int st = tnet_stop(&gw, SIGTERM, 10000);
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "gateway exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    for (int i = 0; i < 3; i++) {
        st = tnet_stop(&node[i], SIGTERM, 10000);
        T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "node %d exit status %d", i, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
}

int main(void)
{
    const char *bin = getenv("KZ_BIN");
    char cmd[1400];
    snprintf(model_path, sizeof model_path, "%s/fed-tiny.gguf", t_tmpdir());
    snprintf(cmd, sizeof cmd, "%s synth -o %s --shape tiny --type q8_0 --seed 5 -t 1 >/dev/null", bin, model_path);
    T_OK(system(cmd) == 0, "synthetic model written");
    signal(SIGPIPE, SIG_IGN);
    t_subtest("federation", federation);
    return t_done();
}
