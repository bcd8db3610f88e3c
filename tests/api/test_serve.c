/* SPDX-License-Identifier: MIT
 * `kyozon serve` end to end: the real binary on 127.0.0.1 (a free port),
 * a synthetic model, and plain HTTP/1.1 over sockets. Checks the OpenAI
 * shapes, greedy equality with `kyozon run`, streaming with usage and
 * [DONE], stop sequences, embeddings, the error objects, /metrics,
 * concurrency, and a graceful SIGTERM while a stream is in flight.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/utf8.h"
#include "t.h"

static int port;
static pid_t server_pid = -1;
static char model_path[600];

struct resp {
    int status;
    char *head;
    char *body; /* de-chunked */
    size_t body_len;
};

static void resp_free(struct resp *r)
{
    kz_free(r->head);
    kz_free(r->body);
}

/* Decodes a chunked body in place; returns the new length. */
static size_t dechunk(char *b, size_t n)
{
    size_t in = 0, out = 0;
    while (in < n) {
        char *end;
        unsigned long sz = strtoul(b + in, &end, 16);
        char *crlf = strstr(end, "\r\n");
        if (!crlf)
            break;
        in = (size_t)(crlf - b) + 2;
        if (sz == 0)
            break;
        memmove(b + out, b + in, sz);
        out += sz;
        in += sz + 2;
    }
    b[out] = '\0';
    return out;
}

/* One request on a fresh connection ("Connection: close"); reads to EOF. */
static struct resp http(const char *method, const char *path, const char *body)
{
    struct resp r = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        r.status = -1;
        return r;
    }
    char head[1024];
    size_t blen = body ? strlen(body) : 0;
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, blen);
    if (write(fd, head, (size_t)hn) < 0 || (blen && write(fd, body, blen) < 0)) {
        close(fd);
        r.status = -1;
        return r;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = kz_malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = kz_realloc(buf, cap + 1);
        }
        ssize_t k = read(fd, buf + n, cap - n);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (!sep) {
        r.status = -2;
        kz_free(buf);
        return r;
    }
    r.head = kz_strndup(buf, (size_t)(sep - buf));
    r.status = atoi(buf + 9);
    size_t off = (size_t)(sep - buf) + 4;
    r.body = kz_strndup(buf + off, n - off);
    r.body_len = n - off;
    if (strstr(r.head, "Transfer-Encoding: chunked") || strstr(r.head, "transfer-encoding: chunked"))
        r.body_len = dechunk(r.body, r.body_len);
    kz_free(buf);
    return r;
}

static json_t *jparse(const struct resp *r)
{
    json_t *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
    T_OK(j != NULL, "JSON body: %.300s", r->body ? r->body : "(none)");
    return j;
}

static int start_server_with(const char *model, const char *name, const char *extra)
{
    char log[600], cmd[2400];
    snprintf(log, sizeof log, "%s/serve.log", t_tmpdir());
    unlink(log);
    const char *bin = getenv("KZ_BIN") ? getenv("KZ_BIN") : "./kyozon";
    snprintf(cmd, sizeof cmd, "exec %s serve -m %s --port 0 --model-name %s -t 1 %s 2>%s", bin, model, name, extra,
             log);
    server_pid = fork();
    if (server_pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* the port from the log line, then /health until ready */
    for (int i = 0; i < 300 && port == 0; i++) {
        usleep(20000);
        char *txt = t_read_file(log, NULL);
        const char *p = txt ? strstr(txt, "listening on http://127.0.0.1:") : NULL;
        if (p)
            port = atoi(p + strlen("listening on http://127.0.0.1:"));
        kz_free(txt);
    }
    if (!port)
        return -1;
    for (int i = 0; i < 500; i++) {
        struct resp r = http("GET", "/health", NULL);
        int st = r.status;
        resp_free(&r);
        if (st == 200)
            return 0;
        usleep(20000);
    }
    return -1;
}

static int start_server(const char *extra)
{
    char e[512];
    snprintf(e, sizeof e, "--ctx 96 %s", extra);
    return start_server_with(model_path, "tiny", e);
}

static int stop_server(void)
{
    if (server_pid <= 0)
        return -1;
    kill(server_pid, SIGTERM);
    int st = 0;
    waitpid(server_pid, &st, 0);
    server_pid = -1;
    port = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- cases ------------------------------------------------------------------ */

static void models(void)
{
    struct resp r = http("GET", "/v1/models", NULL);
    T_EQ_INT(r.status, 200);
    json_t *j = jparse(&r);
    T_EQ_STR(json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "id")), "tiny");
    json_decref(j);
    resp_free(&r);
    r = http("GET", "/v1/models/tiny", NULL);
    T_EQ_INT(r.status, 200);
    resp_free(&r);
    r = http("GET", "/v1/models/other", NULL);
    T_EQ_INT(r.status, 404);
    resp_free(&r);
}

/* The greedy completion equals `kyozon run --temp 0` on the same prompt. */
static char greedy_text[1024];

static void completion_matches_run(void)
{
    char cmd[1800], out[600];
    snprintf(out, sizeof out, "%s/run.out", t_tmpdir());
    const char *bin = getenv("KZ_BIN") ? getenv("KZ_BIN") : "./kyozon";
    snprintf(cmd, sizeof cmd, "%s run -m %s -p 'Hello there' -n 10 --temp 0 -t 1 >%s 2>/dev/null", bin, model_path,
             out);
    T_EQ_INT(system(cmd), 0);
    size_t n = 0, wn = 0;
    char *raw = t_read_file(out, &n);
    /* JSON carries text: bytes that are no UTF-8 arrive as U+FFFD */
    char *want = raw ? kz_utf8_sanitize(raw, n, &wn) : NULL;
    kz_free(raw);
    struct resp r = http("POST", "/v1/completions",
                         "{\"model\":\"tiny\",\"prompt\":\"Hello there\",\"max_tokens\":10,\"temperature\":0}");
    T_EQ_INT(r.status, 200);
    json_t *j = jparse(&r);
    json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
    const char *text = json_string_value(json_object_get(c0, "text"));
    T_OK(want && text && strcmp(want, text) == 0, "server text '%s' == run text '%s'", text ? text : "",
         want ? want : "");
    snprintf(greedy_text, sizeof greedy_text, "%s", text ? text : "");
    T_EQ_STR(json_string_value(json_object_get(c0, "finish_reason")), "length");
    T_EQ_STR(json_string_value(json_object_get(j, "object")), "text_completion");
    json_t *u = json_object_get(j, "usage");
    T_EQ_INT(json_integer_value(json_object_get(u, "completion_tokens")), 10);
    T_OK(json_integer_value(json_object_get(u, "prompt_tokens")) > 0, "prompt tokens counted");
    json_decref(j);
    kz_free(want);
    resp_free(&r);
}

static void chat_plain(void)
{
    struct resp r = http("POST", "/v1/chat/completions",
                         "{\"model\":\"tiny\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                         "{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":6,\"seed\":3}");
    T_EQ_INT(r.status, 200);
    T_OK(r.head && strstr(r.head, "x-request-id: chatcmpl-"), "x-request-id header");
    json_t *j = jparse(&r);
    T_EQ_STR(json_string_value(json_object_get(j, "object")), "chat.completion");
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    T_EQ_STR(json_string_value(json_object_get(msg, "role")), "assistant");
    T_OK(json_is_string(json_object_get(msg, "content")), "content string");
    T_OK(json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")) <= 6, "max_tokens");
    json_decref(j);
    resp_free(&r);
}

static void chat_stream(void)
{
    struct resp r = http("POST", "/v1/chat/completions",
                         "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":5,"
                         "\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    T_EQ_INT(r.status, 200);
    T_OK(r.head && strstr(r.head, "text/event-stream"), "SSE content type");
    int n_events = 0, saw_role = 0, saw_finish = 0, saw_usage = 0, done_last = 0;
    long completion = -1;
    char *save = NULL;
    for (char *ev = strtok_r(r.body, "\n", &save); ev; ev = strtok_r(NULL, "\n", &save)) {
        if (strncmp(ev, "data: ", 6) != 0)
            continue;
        n_events++;
        done_last = strcmp(ev + 6, "[DONE]") == 0;
        if (done_last)
            continue;
        json_t *j = json_loads(ev + 6, 0, NULL);
        T_OK(j != NULL, "event is JSON: %s", ev);
        if (!j)
            continue;
        T_EQ_STR(json_string_value(json_object_get(j, "object")), "chat.completion.chunk");
        json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
        json_t *delta = json_object_get(ch, "delta");
        if (json_object_get(delta, "role"))
            saw_role++;
        if (json_is_string(json_object_get(ch, "finish_reason")))
            saw_finish++;
        json_t *u = json_object_get(j, "usage");
        if (json_is_object(u)) {
            saw_usage++;
            T_EQ_INT(json_array_size(json_object_get(j, "choices")), 0);
            completion = (long)json_integer_value(json_object_get(u, "completion_tokens"));
        }
        json_decref(j);
    }
    T_EQ_INT(saw_role, 1);
    T_EQ_INT(saw_finish, 1);
    T_EQ_INT(saw_usage, 1);
    T_EQ_INT(completion, 5);
    T_OK(done_last, "stream ends with [DONE]");
    T_OK(n_events >= 4, "several events (%d)", n_events);
    resp_free(&r);
}

static void stop_sequence(void)
{
    size_t n = strlen(greedy_text);
    if (n < 6) {
        T_OK(0, "greedy text too short for a stop test: '%s'", greedy_text);
        return;
    }
    /* stop at a 2-byte piece from the middle of the known greedy output */
    char stop[3] = {greedy_text[n / 2], greedy_text[n / 2 + 1], 0};
    const char *at = strstr(greedy_text, stop);
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\":\"tiny\",\"prompt\":\"Hello there\",\"max_tokens\":10,\"temperature\":0,\"stop\":[\"%s\"]}",
             stop[0] == '"' || stop[0] == '\\' || stop[1] == '"' || stop[1] == '\\' ? "zz" : stop);
    for (int stream = 0; stream < 2; stream++) {
        char b2[600];
        snprintf(b2, sizeof b2, "%.*s%s}", (int)strlen(body) - 1, body, stream ? ",\"stream\":true" : "");
        struct resp r = http("POST", "/v1/completions", b2);
        T_EQ_INT(r.status, 200);
        char got[1024] = "";
        const char *finish = "";
        if (!stream) {
            json_t *j = jparse(&r);
            json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
            snprintf(got, sizeof got, "%s", json_string_value(json_object_get(c0, "text")));
            finish = strcmp(json_string_value(json_object_get(c0, "finish_reason")), "stop") == 0 ? "stop" : "other";
            json_decref(j);
        } else {
            char *save = NULL;
            for (char *ev = strtok_r(r.body, "\n", &save); ev; ev = strtok_r(NULL, "\n", &save)) {
                if (strncmp(ev, "data: {", 7) != 0)
                    continue;
                json_t *j = json_loads(ev + 6, 0, NULL);
                json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
                const char *tx = json_string_value(json_object_get(c0, "text"));
                strncat(got, tx ? tx : "", sizeof got - strlen(got) - 1);
                if (json_is_string(json_object_get(c0, "finish_reason")))
                    finish = strcmp(json_string_value(json_object_get(c0, "finish_reason")), "stop") == 0 ? "stop"
                                                                                                          : "other";
                json_decref(j);
            }
        }
        if (strstr(body, "zz") == NULL) {
            T_OK(strlen(got) == (size_t)(at - greedy_text) && strncmp(got, greedy_text, strlen(got)) == 0,
                 "stream=%d: text before the stop sequence: got '%s' from '%s' stop '%s'", stream, got, greedy_text,
                 stop);
            T_EQ_STR(finish, "stop");
        }
        resp_free(&r);
    }
}

static void embeddings(void)
{
    struct resp r = http("POST", "/v1/embeddings", "{\"model\":\"tiny\",\"input\":[\"hello\",\"world wide\"]}");
    T_EQ_INT(r.status, 200);
    json_t *j = jparse(&r);
    json_t *data = json_object_get(j, "data");
    T_EQ_INT(json_array_size(data), 2);
    json_t *e1 = json_object_get(json_array_get(data, 1), "embedding");
    T_EQ_INT(json_array_size(e1), 256);
    double n2 = 0;
    for (size_t i = 0; i < json_array_size(e1); i++)
        n2 += pow(json_number_value(json_array_get(e1, i)), 2);
    T_OK(fabs(n2 - 1.0) < 1e-4, "unit length (%.6f)", n2);
    T_OK(json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")) > 0, "usage");
    json_decref(j);
    resp_free(&r);
    r = http("POST", "/v1/embeddings", "{\"model\":\"tiny\",\"input\":\"hello\",\"encoding_format\":\"base64\"}");
    T_EQ_INT(r.status, 200);
    j = jparse(&r);
    const char *b = json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "embedding"));
    T_OK(b && strlen(b) == (256 * 4 + 2) / 3 * 4, "base64 of 256 floats");
    json_decref(j);
    resp_free(&r);
}

static void errors(void)
{
    static const struct {
        const char *method, *path, *body;
        int status;
        const char *want;
    } cases[] = {
        {"POST", "/v1/chat/completions", "{\"model\":\"tiny\",", 400, "line 1, column"},
        {"POST", "/v1/chat/completions", "{\"model\":\"gpt-9\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         404, "model_not_found"},
        {"POST", "/v1/chat/completions",
         "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", 400, "\"param\":\"n\""},
        {"POST", "/v1/completions", "{\"model\":\"tiny\",\"prompt\":\"x\",\"temperature\":-1}", 400, "temperature"},
        {"POST", "/v1/completions", "{\"model\":\"tiny\",\"prompt\":\"x\",\"max_tokens\":100000}", 400,
         "\"param\":\"max_tokens\""},
        {"GET", "/v1/nothing", NULL, 404, "unknown_url"},
        {"GET", "/v1/chat/completions", NULL, 405, "method_not_allowed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct resp r = http(cases[i].method, cases[i].path, cases[i].body);
        T_EQ_INT(r.status, cases[i].status);
        T_OK(r.body && strstr(r.body, "\"error\"") && strstr(r.body, cases[i].want), "case %zu: %s", i,
             r.body ? r.body : "");
        resp_free(&r);
    }
    /* a prompt longer than the context (96 tokens) */
    char big[4096] = "{\"model\":\"tiny\",\"prompt\":\"";
    for (int i = 0; i < 300; i++)
        strcat(big, "ab ");
    strcat(big, "\"}");
    struct resp r = http("POST", "/v1/completions", big);
    T_EQ_INT(r.status, 400);
    T_OK(r.body && strstr(r.body, "context_length_exceeded"), "%s", r.body ? r.body : "");
    resp_free(&r);
}

static void *one_request(void *arg)
{
    int *ok = arg;
    struct resp r = http("POST", "/v1/completions", "{\"model\":\"tiny\",\"prompt\":\"Hi\",\"max_tokens\":8}");
    *ok = r.status == 200 && r.body && strstr(r.body, "\"finish_reason\"");
    resp_free(&r);
    return NULL;
}

static void concurrency(void)
{
    enum { N = 8 };
    pthread_t th[N];
    int ok[N] = {0};
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, one_request, &ok[i]);
    int good = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        good += ok[i];
    }
    T_EQ_INT(good, N);
}

static void metrics(void)
{
    struct resp r = http("GET", "/metrics", NULL);
    T_EQ_INT(r.status, 200);
    T_OK(r.body && strstr(r.body, "kyozon_http_requests_total{route=\"/v1/completions\",status=\"200\"}"),
         "requests counter");
    T_OK(r.body && strstr(r.body, "kyozon_tokens_total{type=\"output\"}"), "token counter");
    T_OK(r.body && strstr(r.body, "kyozon_time_to_first_token_seconds_bucket"), "ttft histogram");
    T_OK(r.body && strstr(r.body, "kyozon_kv_cache_tokens{state=\"total\"} 192"), "kv gauge (2 x 96)");
    resp_free(&r);
}

struct bg {
    struct resp r;
};

static void *stream_bg(void *arg)
{
    struct bg *b = arg;
    b->r = http("POST", "/v1/completions",
                "{\"model\":\"tiny\",\"prompt\":\"Hi\",\"max_tokens\":60,\"stream\":true,\"temperature\":0}");
    return NULL;
}

static void graceful_stop(void)
{
    struct bg b = {{0}};
    pthread_t th;
    pthread_create(&th, NULL, stream_bg, &b);
    usleep(150000); /* the stream has started */
    int code = stop_server();
    pthread_join(th, NULL);
    T_EQ_INT(code, 0);
    T_EQ_INT(b.r.status, 200);
    T_OK(b.r.body && strstr(b.r.body, "data: [DONE]"), "in-flight stream finished: %.200s", b.r.body ? b.r.body : "");
    resp_free(&b.r);
}

/* ---- load, disconnects, overload, shutdown -------------------------------- */

/* A streaming request on its own connection, read to the end. */
struct stream_res {
    const char *body;
    int status;
    int done;          /* ended with data: [DONE] */
    long completion;   /* usage.completion_tokens, -1 if absent */
    int content_chunks;
};

static void *stream_one(void *arg)
{
    struct stream_res *sr = arg;
    struct resp r = http("POST", "/v1/chat/completions", sr->body);
    sr->status = r.status;
    sr->completion = -1;
    if (r.body) {
        sr->done = strstr(r.body, "data: [DONE]") != NULL;
        char *save = NULL;
        for (char *ev = strtok_r(r.body, "\n", &save); ev; ev = strtok_r(NULL, "\n", &save)) {
            if (strncmp(ev, "data: {", 7) != 0)
                continue;
            json_t *j = json_loads(ev + 6, 0, NULL);
            json_t *u = json_object_get(j, "usage");
            if (json_is_object(u))
                sr->completion = (long)json_integer_value(json_object_get(u, "completion_tokens"));
            json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
            const char *tx = json_string_value(json_object_get(json_object_get(c0, "delta"), "content"));
            if (tx && tx[0])
                sr->content_chunks++;
            json_decref(j);
        }
    }
    resp_free(&r);
    return NULL;
}

static const char *served_name = "tiny";

static long metric(const char *name)
{
    struct resp r = http("GET", "/metrics", NULL);
    long v = -1;
    const char *p = r.body ? strstr(r.body, name) : NULL;
    if (p)
        v = atol(p + strlen(name) + 1);
    resp_free(&r);
    return v;
}

/* 32 concurrent streaming clients all finish, each with the usage of the
 * same request made alone (greedy, so every stream is the same). */
static void many_streams(void)
{
    enum { N = 32 };
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],\"max_tokens\":24,"
             "\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
             served_name);
    struct stream_res alone = {.body = body};
    stream_one(&alone);
    T_EQ_INT(alone.status, 200);
    T_OK(alone.completion > 0, "reference usage (%ld)", alone.completion);
    static struct stream_res sr[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        memset(&sr[i], 0, sizeof sr[i]);
        sr[i].body = body;
        pthread_create(&th[i], NULL, stream_one, &sr[i]);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += sr[i].status == 200 && sr[i].done && sr[i].completion == alone.completion;
    }
    T_EQ_INT(ok, N);
    T_EQ_INT(metric("kyozon_active_sequences"), 0);
}

/* Clients that hang up mid-stream free their sequences. */
static void disconnects(void)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"Go on\"}],\"max_tokens\":90,"
             "\"temperature\":1,\"stream\":true}",
             served_name);
    for (int i = 0; i < 4; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connect(fd, (struct sockaddr *)&a, sizeof a);
        char req[1024];
        int n = snprintf(req, sizeof req,
                         "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s", strlen(body),
                         body);
        T_OK(write(fd, req, (size_t)n) == n, "request sent");
        char buf[256];
        T_OK(read(fd, buf, sizeof buf) > 0, "stream started");
        /* hang up at once: on the 260K-parameter model 90 tokens take a few
         * ms, so a client that waited for the others could outlive its stream */
        close(fd);
    }
    /* wait for both: the sequences freed and the hang-ups counted */
    long active = -1, hung_up = 0;
    for (int i = 0; i < 100 && (active != 0 || hung_up < 1); i++) {
        usleep(50000);
        active = metric("kyozon_active_sequences");
        hung_up = metric("kyozon_http_requests_total{route=\"/v1/chat/completions\",status=\"499\"}");
    }
    T_EQ_INT(active, 0);
    T_OK(hung_up >= 1, "disconnects counted as 499");
}

/* SIGTERM while 8 streams run: all 8 complete, exit status 0. */
static void sigterm_streams(void)
{
    enum { N = 8 };
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"Tell a story\"}],\"max_tokens\":40,"
             "\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
             served_name);
    static struct stream_res sr[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        memset(&sr[i], 0, sizeof sr[i]);
        sr[i].body = body;
        pthread_create(&th[i], NULL, stream_one, &sr[i]);
    }
    long active = 0;
    for (int i = 0; i < 200 && active < 2; i++) {
        usleep(5000);
        active = metric("kyozon_active_sequences");
    }
    int code = stop_server();
    int ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += sr[i].status == 200 && sr[i].done && sr[i].completion > 0;
    }
    T_EQ_INT(ok, N);
    T_EQ_INT(code, 0);
}

/* One slot and a queue of one: the rest get 503 with Retry-After. */
static void *long_completion(void *arg)
{
    struct resp *r = arg;
    *r = http("POST", "/v1/completions", "{\"model\":\"tiny\",\"prompt\":\"Hi\",\"max_tokens\":80}");
    return NULL;
}

static void overload(void)
{
    if (start_server("--parallel 1 --max-queue 1") != 0) {
        T_OK(0, "overload server did not start");
        return;
    }
    enum { N = 5 };
    struct resp r[N];
    pthread_t th[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, long_completion, &r[i]);
    int ok = 0, busy = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += r[i].status == 200;
        if (r[i].status == 503) {
            busy++;
            T_OK(r[i].head && strstr(r[i].head, "Retry-After: 1"), "Retry-After on 503");
            T_OK(r[i].body && strstr(r[i].body, "server_overloaded"), "%s", r[i].body ? r[i].body : "");
        }
        resp_free(&r[i]);
    }
    T_OK(ok >= 1 && busy >= 1 && ok + busy == N, "%d served, %d refused", ok, busy);
    T_EQ_INT(stop_server(), 0);
}

int main(void)
{
    snprintf(model_path, sizeof model_path, "%s/tiny.gguf", t_tmpdir());
    char cmd[1400];
    const char *bin = getenv("KZ_BIN") ? getenv("KZ_BIN") : "./kyozon";
    snprintf(cmd, sizeof cmd, "%s synth -o %s --shape tiny --type q8_0 --seed 3 -t 1", bin, model_path);
    if (system(cmd) != 0 || start_server("--parallel 2") != 0) {
        T_OK(0, "server did not start");
        stop_server();
        return t_done();
    }
    t_subtest("models", models);
    t_subtest("completion equals kyozon run", completion_matches_run);
    t_subtest("chat", chat_plain);
    t_subtest("chat stream", chat_stream);
    t_subtest("stop sequences", stop_sequence);
    t_subtest("embeddings", embeddings);
    t_subtest("errors", errors);
    t_subtest("concurrency", concurrency);
    t_subtest("metrics", metrics);
    t_subtest("graceful stop", graceful_stop);
    stop_server();
    t_subtest("overload", overload);

    /* load tests on the real small model when the shared data is here,
     * otherwise on the synthetic one */
    const char *real = t_data_path("aidreams260K.gguf");
    char real_path[4096];
    int started;
    if (real) {
        snprintf(real_path, sizeof real_path, "%s", real);
        served_name = "aidreams260K";
        started = start_server_with(real_path, served_name, "--parallel 8 --ctx 128") == 0;
    } else {
        t_skip(1, "shared data absent: the 32-stream test runs on the synthetic model, not aidreams260K");
        started = start_server("--parallel 8") == 0;
    }
    T_OK(started, "load server started");
    if (started) {
        t_subtest("32 concurrent streams", many_streams);
        t_subtest("disconnects free their sequences", disconnects);
        t_subtest("SIGTERM during 8 streams", sigterm_streams);
    }
    stop_server();
    return t_done();
}
