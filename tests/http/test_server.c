/* SPDX-License-Identifier: MIT
 * The HTTP server end to end: a real server on 127.0.0.1 (port 0) with its
 * loop on a thread, spoken to with raw sockets. Covers the conformance and
 * smuggling table (http_cases.h) over the wire, limits (414/431/413),
 * keep-alive and pipelining, chunked bodies, SSE, backpressure with a slow
 * reader and the hard cap, client-disconnect abort, and cross-thread posts.
 * Timeouts, connection caps and shutdown are in test_server_life.c.
 *
 * The test handler routes on the path (see handler()); to add a behaviour,
 * add a route there and a subtest that calls it.
 */
#include <stdatomic.h>

#include "http_cases.h"
#include "http_test_util.h"
#include "t.h"

#define TIMEOUT 3000 /* ms: any single read in these tests */

static struct tsrv S;
static atomic_int n_handled, n_aborts, flood_rc, post_done;
static pthread_t producer;
static atomic_int producer_started;

// ---------------------------------------------------------------- handler

static long query_num(struct kz_http_req *req, const char *key, long dflt)
{
    struct kz_slice q = kz_http_req_query(req);
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl < q.len; i++)
        if ((i == 0 || q.p[i - 1] == '&') && memcmp(q.p + i, key, kl) == 0 && q.p[i + kl] == '=')
            return strtol(q.p + i + kl + 1, NULL, 10);
    return dflt;
}

/* /flood: streams `left` bytes, pausing at the high-water mark. */
struct flood {
    size_t left;
    int ignore_backpressure;
};

static char flood_chunk[65536];

static void flood_abort(struct kz_http_res *res, void *arg)
{
    (void)res;
    kz_free(arg);
    atomic_fetch_add(&n_aborts, 1);
}

static void flood_pump(struct kz_http_res *res, void *arg)
{
    struct flood *f = arg;
    while (f->left > 0) {
        size_t n = f->left < 16384 ? f->left : 16384;
        if (f->ignore_backpressure)
            n = f->left < sizeof flood_chunk ? f->left : sizeof flood_chunk;
        size_t q;
        kz_status rc = kz_http_res_write(res, flood_chunk, n, &q);
        if (rc != KZ_OK) {
            atomic_store(&flood_rc, (int)rc);
            return; /* the abort callback follows and frees f */
        }
        f->left -= n;
        if (!f->ignore_backpressure && kz_http_res_over_high_water(res))
            return; /* flood_pump runs again from the drain callback */
    }
    kz_http_res_on_abort(res, NULL, NULL);
    kz_http_res_end(res);
    kz_free(f);
}

/* /delay: answers after a timer. */
struct delayed {
    uv_timer_t timer;
    struct kz_http_res *res;
};

static void delayed_closed(uv_handle_t *h) { kz_free(h->data); }

static void delayed_fire(uv_timer_t *t)
{
    struct delayed *d = t->data;
    if (kz_http_res_is_open(d->res))
        kz_http_res_send(d->res, 200, "text/plain", "delayed", 7);
    kz_http_res_unref(d->res);
    uv_close((uv_handle_t *)&d->timer, delayed_closed);
}

/* /post: a producer thread hands tokens to the loop. */
struct tok {
    struct kz_http_res *res;
    int i, last;
};

static void tok_run(void *arg)
{
    struct tok *t = arg;
    if (kz_http_res_is_open(t->res)) {
        if (t->last) {
            kz_http_res_end(t->res);
        } else {
            char buf[32];
            int n = snprintf(buf, sizeof buf, "tok%d", t->i);
            kz_http_res_sse_event(t->res, NULL, buf, (size_t)n, NULL);
        }
    }
    if (t->last) {
        kz_http_res_unref(t->res);
        atomic_store(&post_done, 1);
    }
    kz_free(t);
}

struct prod {
    struct kz_http_server *srv;
    struct kz_http_res *res;
    int n;
};

static void *producer_main(void *arg)
{
    struct prod *p = arg;
    for (int i = 0; i <= p->n; i++) {
        struct tok *t = kz_malloc(sizeof *t);
        t->res = p->res;
        t->i = i;
        t->last = i == p->n;
        if (kz_http_server_post(p->srv, tok_run, t) != KZ_OK)
            kz_free(t);
        if (i % 7 == 0)
            sched_yield();
    }
    kz_free(p);
    return NULL;
}

static void hold_abort(struct kz_http_res *res, void *arg)
{
    (void)res;
    (void)arg;
    atomic_fetch_add(&n_aborts, 1);
}

static void handler(void *user, struct kz_http_req *req, struct kz_http_res *res)
{
    struct tsrv *t = user;
    struct kz_slice path = kz_http_req_path(req);
    atomic_fetch_add(&n_handled, 1);
    if (kz_slice_eq(path, "/end")) {
        kz_http_res_send(res, 200, "text/plain", "end", 3);
    } else if (kz_slice_eq(path, "/sse")) {
        long n = query_num(req, "n", 3);
        kz_http_res_sse_start(res, 200);
        for (long i = 0; i < n; i++) {
            char buf[32];
            int k = snprintf(buf, sizeof buf, "tok%ld", i);
            kz_http_res_sse_event(res, NULL, buf, (size_t)k, NULL);
        }
        kz_http_res_sse_event(res, "multi", "a\nb\r\nc", 6, NULL);
        kz_http_res_sse_comment(res, "ping", NULL);
        kz_http_res_write(res, "data: [DONE]\n\n", 14, NULL);
        kz_http_res_end(res);
    } else if (kz_slice_eq(path, "/delay")) {
        struct delayed *d = kz_malloc(sizeof *d);
        d->res = res;
        kz_http_res_ref(res);
        uv_timer_init(&t->loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, delayed_fire, (uint64_t)query_num(req, "ms", 100), 0);
    } else if (kz_slice_eq(path, "/hold")) {
        kz_http_res_on_abort(res, hold_abort, NULL);
    } else if (kz_slice_eq(path, "/flood") || kz_slice_eq(path, "/flood_ignore")) {
        struct flood *f = kz_malloc(sizeof *f);
        f->left = (size_t)query_num(req, "n", 1 << 20);
        f->ignore_backpressure = kz_slice_eq(path, "/flood_ignore");
        kz_http_res_on_abort(res, flood_abort, f);
        kz_http_res_on_drain(res, flood_pump, f);
        kz_http_res_stream_start(res, 200, "application/octet-stream");
        flood_pump(res, f);
    } else if (kz_slice_eq(path, "/post")) {
        struct prod *p = kz_malloc(sizeof *p);
        p->srv = t->srv;
        p->res = res;
        p->n = (int)query_num(req, "n", 10);
        kz_http_res_ref(res);
        kz_http_res_sse_start(res, 200);
        pthread_create(&producer, NULL, producer_main, p);
        atomic_store(&producer_started, 1);
    } else if (kz_slice_eq(path, "/headers")) {
        struct kz_slice v;
        char buf[256];
        int has = kz_http_req_header(req, "x-test", &v);
        /* Checks on the loop thread travel back in the body (t_ok is not thread-safe). */
        int refused = kz_http_res_add_header(res, "Content-Length", "5") == KZ_EINVAL &&
                      kz_http_res_add_header(res, "X-Bad", "a\r\nb") == KZ_EINVAL;
        int n = snprintf(buf, sizeof buf, "%.*s|%s|%d|%d|%llu|%zu", has ? (int)v.len : 0, has ? v.p : "",
                         kz_http_req_remote_addr(req), kz_http_req_remote_port(req) > 0, refused,
                         (unsigned long long)kz_http_req_id(req), kz_http_req_n_headers(req));
        kz_http_res_add_header(res, "X-Reply", "yes");
        kz_http_res_send(res, 201, "text/plain", buf, (size_t)n);
    } else if (kz_slice_eq(path, "/error")) {
        kz_http_res_send_error(res, 404, NULL, "model_not_found", "no model \"x\"\n");
    } else {
        char buf[128];
        size_t len;
        kz_http_req_body(req, &len);
        struct kz_slice tg = kz_http_req_target(req);
        int n = snprintf(buf, sizeof buf, "len=%zu;%.*s", len, (int)(tg.len > 60 ? 60 : tg.len), tg.p);
        kz_http_res_send(res, 200, "text/plain", buf, (size_t)n);
    }
}

// ---------------------------------------------------------------- table

#define SENTINEL "GET /end HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"

static void table(void)
{
    for (size_t i = 0; i < N_HTTP_CASES; i++) {
        const struct http_case *c = &http_cases[i];
        int fd = tconnect(S.port);
        T_OK(fd >= 0, "connect");
        if (fd < 0)
            return;
        send_all(fd, c->raw, c->len);
        send_str(fd, SENTINEL);
        struct rbuf rb;
        struct tresp r;
        rb_init(&rb, fd);
        if (c->expect == 200) {
            for (int k = 0; k < c->n_resp; k++) {
                int e = read_response(&rb, &r, TIMEOUT);
                T_OK(e == 0 && r.status == 200, "%s: response %d: %d status %d", c->name, k, e, r.status);
                if (k == 0 && c->body_len >= 0) {
                    char want[32];
                    snprintf(want, sizeof want, "len=%ld;", c->body_len);
                    T_OK(strncmp(r.body, want, strlen(want)) == 0, "%s: body '%s' want '%s'", c->name, r.body, want);
                }
            }
            int e = read_response(&rb, &r, TIMEOUT);
            T_OK(e == 0 && strcmp(r.body, "end") == 0 && r.conn_close, "%s: sentinel answered (%d '%s')",
                 c->name, e, r.body);
        } else {
            int e = read_response(&rb, &r, TIMEOUT);
            T_OK(e == 0 && r.status == c->expect, "%s: got %d (%d), want %d", c->name, r.status, e, c->expect);
            T_OK(r.conn_close, "%s: Connection: close", c->name);
            T_OK(strstr(r.body, "{\"error\":{\"message\":") == r.body && strstr(r.body, "\"param\":null"),
                 "%s: JSON error body: %s", c->name, r.body);
        }
        T_OK(expect_closed(&rb, TIMEOUT), "%s: closed with nothing more (%zu bytes: %.40s)", c->name, rb.len,
             rb.d);
        close(fd);
    }
}

// ---------------------------------------------------------------- limits

static int one_status(const char *req, size_t len, struct tresp *r, int *closed)
{
    int fd = tconnect(S.port);
    struct rbuf rb;
    rb_init(&rb, fd);
    send_all(fd, req, len);
    int e = read_response(&rb, r, TIMEOUT);
    *closed = e == 0 && r->status >= 400 && expect_closed(&rb, TIMEOUT);
    close(fd);
    return e == 0 ? r->status : -1;
}

static void limits(void)
{
    static struct tresp r;
    int closed;
    size_t big = 32768;
    char *b = kz_malloc(big);

    /* Request line: 8192 bytes pass, 8193 get 414. */
    for (int extra = 0; extra <= 1; extra++) {
        size_t line = 8192 + (size_t)extra;
        memcpy(b, "GET /", 5);
        memset(b + 5, 'a', line - 14);
        memcpy(b + line - 9, " HTTP/1.1\r\nHost: a\r\n\r\n", 23);
        int st = one_status(b, line + 14, &r, &closed);
        T_EQ_INT(st, extra ? 414 : 200);
        if (extra)
            T_OK(closed && strstr(r.body, "\"code\":\"uri_too_long\""), "414 closes: %s", r.body);
    }
    /* A header line over 8 KiB: 431 without the end of the head. */
    int n = snprintf(b, big, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(b + n, 'v', 8300);
    T_EQ_INT(one_status(b, (size_t)n + 8300, &r, &closed), 431);
    T_OK(closed, "431 closes");
    /* Header section over 16 KiB. */
    n = snprintf(b, big, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 5; i++) {
        n += snprintf(b + n, big - (size_t)n, "X-%d: ", i);
        memset(b + n, 'v', 4000);
        n += 4000;
        n += snprintf(b + n, big - (size_t)n, "\r\n");
    }
    n += snprintf(b + n, big - (size_t)n, "\r\n");
    T_EQ_INT(one_status(b, (size_t)n, &r, &closed), 431);
    /* 100 headers pass, 101 get 431. */
    for (int count = 100; count <= 101; count++) {
        n = snprintf(b, big, "GET / HTTP/1.1\r\nHost: a\r\n");
        for (int i = 1; i < count; i++)
            n += snprintf(b + n, big - (size_t)n, "X-%d: v\r\n", i);
        n += snprintf(b + n, big - (size_t)n, "\r\n");
        T_EQ_INT(one_status(b, (size_t)n, &r, &closed), count == 100 ? 200 : 431);
    }
    kz_free(b);

    /* Body over 4 MiB: 413 answered from the head alone, body never sent. */
    const char *h413 = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4194305\r\n\r\n";
    T_EQ_INT(one_status(h413, strlen(h413), &r, &closed), 413);
    T_EQ_STR(r.body, "{\"error\":{\"message\":\"request body too large\",\"type\":\"invalid_request_error\","
                     "\"param\":null,\"code\":\"request_too_large\"}}");
    T_OK(closed, "413 closes");

    /* Exactly 4 MiB passes, sent in one go and as chunks. */
    size_t mb4 = (size_t)4 << 20;
    char *body = kz_malloc(mb4);
    memset(body, 'x', mb4);
    int fd = tconnect(S.port);
    struct rbuf rb;
    rb_init(&rb, fd);
    send_str(fd, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4194304\r\n\r\n");
    send_all(fd, body, mb4);
    T_OK(read_response(&rb, &r, TIMEOUT) == 0 && strncmp(r.body, "len=4194304;", 12) == 0, "4 MiB body: %s",
         r.body);
    /* Same connection: chunked 4 MiB + 1 in 1 MiB chunks -> 413 mid-body. */
    send_str(fd, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 4; i++) {
        send_str(fd, "100000\r\n");
        send_all(fd, body, (size_t)1 << 20);
        send_str(fd, "\r\n");
    }
    send_all(fd, "1\r\nx\r\n0\r\n\r\n", 11);
    T_OK(read_response(&rb, &r, TIMEOUT) == 0 && r.status == 413, "chunked over the limit: %d", r.status);
    T_OK(expect_closed(&rb, TIMEOUT), "closed after 413");
    close(fd);
    kz_free(body);
}

// ---------------------------------------------------------------- keep-alive

static void keep_alive(void)
{
    struct tresp r;
    int fd = tconnect(S.port);
    struct rbuf rb;
    rb_init(&rb, fd);
    for (int i = 0; i < 3; i++) {
        char req[128];
        snprintf(req, sizeof req, "GET /seq?%d HTTP/1.1\r\nHost: a\r\n\r\n", i);
        send_str(fd, req);
        char want[32];
        snprintf(want, sizeof want, "len=0;/seq?%d", i);
        T_OK(read_response(&rb, &r, TIMEOUT) == 0 && strcmp(r.body, want) == 0 && !r.conn_close,
             "sequential %d: %s", i, r.body);
    }
    /* Pipelined: five requests of every framing in one write. */
    const char *pipe = "GET /p0 HTTP/1.1\r\nHost: a\r\n\r\n"
                       "POST /p1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                       "POST /p2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
                       "GET /p3 HTTP/1.1\r\nHost: a\r\n\r\n"
                       "GET /p4 HTTP/1.1\r\nHost: a\r\n\r\n";
    send_str(fd, pipe);
    const char *want[] = {"len=0;/p0", "len=3;/p1", "len=5;/p2", "len=0;/p3", "len=0;/p4"};
    for (int i = 0; i < 5; i++)
        T_OK(read_response(&rb, &r, TIMEOUT) == 0 && strcmp(r.body, want[i]) == 0, "pipelined %d: %s", i, r.body);
    /* One byte at a time, including a chunked body. */
    const char *slow = "POST /slow HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "4;x=y\r\nWiki\r\n5\r\npedia\r\n0\r\nT: 1\r\n\r\n";
    for (const char *p = slow; *p; p++)
        send_all(fd, p, 1);
    T_OK(read_response(&rb, &r, TIMEOUT) == 0 && strcmp(r.body, "len=9;/slow") == 0, "bytewise: %s", r.body);
    /* Connection: close is honoured. */
    send_str(fd, "GET /bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    T_OK(read_response(&rb, &r, TIMEOUT) == 0 && r.conn_close, "close honoured");
    T_OK(expect_closed(&rb, TIMEOUT), "closed");
    close(fd);

    /* HTTP/1.0: closes by default, stays with keep-alive. */
    fd = tconnect(S.port);
    rb_init(&rb, fd);
    send_str(fd, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    T_OK(read_response(&rb, &r, TIMEOUT) == 0 && strstr(r.head, "Connection: keep-alive"), "1.0 keep-alive");
    send_str(fd, "GET /b HTTP/1.0\r\n\r\n");
    T_OK(read_response(&rb, &r, TIMEOUT) == 0 && r.conn_close && strcmp(r.body, "len=0;/b") == 0, "1.0 close");
    T_OK(expect_closed(&rb, TIMEOUT), "1.0 closed");
    close(fd);

    /* HEAD gets the head only; 100-continue is sent when the body is awaited. */
    fd = tconnect(S.port);
    rb_init(&rb, fd);
    send_str(fd, "HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n");
    T_OK(read_response_ex(&rb, &r, TIMEOUT, 1) == 0 && strstr(r.head, "Content-Length: 8\r\n") && r.body_len == 0,
         "HEAD: %s", r.head);
    send_str(fd, "POST /c HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    rb_fill(&rb, TIMEOUT);
    T_OK(strncmp(rb.d, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0, "100 Continue: %.30s", rb.d);
    send_str(fd, "hi");
    T_OK(read_response(&rb, &r, TIMEOUT) == 0 && strcmp(r.body, "len=2;/c") == 0, "after continue: %s", r.body);
    /* Accessors and handler-added headers. */
    send_str(fd, "GET /headers HTTP/1.1\r\nHost: a\r\nX-Test:  hello \r\n\r\n");
    T_OK(read_response(&rb, &r, TIMEOUT) == 0 && r.status == 201 && strstr(r.head, "\r\nX-Reply: yes\r\n"),
         "headers: %s", r.head);
    T_OK(strncmp(r.body, "hello|127.0.0.1|1|1|", 20) == 0 && strstr(r.body, "|2"), "accessors: %s", r.body);
    send_str(fd, "GET /error HTTP/1.1\r\nHost: a\r\n\r\n");
    T_OK(read_response(&rb, &r, TIMEOUT) == 0 && r.status == 404, "error status");
    T_EQ_STR(r.body, "{\"error\":{\"message\":\"no model \\\"x\\\"\\n\",\"type\":\"invalid_request_error\","
                     "\"param\":null,\"code\":\"model_not_found\"}}");
    close(fd);
}

// ---------------------------------------------------------------- SSE

static void sse(void)
{
    struct tresp r;
    int fd = tconnect(S.port);
    struct rbuf rb;
    rb_init(&rb, fd);
    send_str(fd, "GET /sse?n=3 HTTP/1.1\r\nHost: a\r\n\r\n");
    T_OK(read_response(&rb, &r, TIMEOUT) == 0 && r.chunked, "chunked SSE");
    T_OK(strstr(r.head, "Content-Type: text/event-stream\r\n") && strstr(r.head, "Cache-Control: no-cache\r\n"),
         "SSE head: %s", r.head);
    T_EQ_STR(r.body, "data: tok0\n\ndata: tok1\n\ndata: tok2\n\nevent: multi\ndata: a\ndata: b\ndata: c\n\n"
                     ": ping\n\ndata: [DONE]\n\n");
    /* The connection is reusable after a chunked stream. */
    send_str(fd, "GET /after HTTP/1.1\r\nHost: a\r\n\r\n");
    T_OK(read_response(&rb, &r, TIMEOUT) == 0 && strcmp(r.body, "len=0;/after") == 0, "reuse after SSE");
    close(fd);

    /* HTTP/1.0: close-delimited. */
    fd = tconnect(S.port);
    rb_init(&rb, fd);
    send_str(fd, "GET /sse?n=1 HTTP/1.0\r\n\r\n");
    T_OK(read_response(&rb, &r, TIMEOUT) == 0 && r.close_delimited && !r.chunked, "1.0 SSE close-delimited");
    T_OK(strncmp(r.body, "data: tok0\n\n", 12) == 0, "1.0 SSE body: %s", r.body);
    close(fd);
}

// ---------------------------------------------------------------- backpressure

static void slow_reader(void)
{
    struct kz_http_config def;
    kz_http_config_default(&def);
    struct kz_http_stats st;
    struct tresp r;
    size_t total = (size_t)16 << 20;
    char req[128];
    snprintf(req, sizeof req, "GET /flood?n=%zu HTTP/1.1\r\nHost: a\r\n\r\n", total);
    int fd = tconnect2(S.port, 8192);
    struct rbuf rb;
    rb_init(&rb, fd);
    send_str(fd, req);
    sleep_ms(400); /* not reading: the kernel buffers fill, then the server's queue */
    tsrv_stats(&S, &st);
    T_OK(st.max_queued >= def.write_high_water, "queue reached the high-water mark (%zu)", st.max_queued);
    T_OK(st.max_queued <= def.write_high_water + 16384 + 64, "producer paused at the mark: %zu", st.max_queued);
    /* Now read it all: the drain callback resumes the producer to the end. */
    T_OK(read_response(&rb, &r, 5000) == 0 && r.total == total, "all %zu bytes arrive: %zu", total, r.total);
    close(fd);

    /* A producer that ignores backpressure hits the hard cap: KZ_ELIMIT,
     * the connection closes and the abort callback runs. */
    int aborts = atomic_load(&n_aborts);
    atomic_store(&flood_rc, 0);
    snprintf(req, sizeof req, "GET /flood_ignore?n=%zu HTTP/1.1\r\nHost: a\r\n\r\n", (size_t)64 << 20);
    fd = tconnect2(S.port, 8192);
    rb_init(&rb, fd);
    send_str(fd, req);
    double t0 = now_ms();
    while (atomic_load(&n_aborts) == aborts && now_ms() - t0 < TIMEOUT)
        sleep_ms(5);
    T_EQ_INT(atomic_load(&flood_rc), KZ_ELIMIT);
    T_EQ_INT(atomic_load(&n_aborts), aborts + 1);
    tsrv_stats(&S, &st);
    T_OK(st.max_queued <= def.write_hard_cap, "queue never above the hard cap: %zu", st.max_queued);
    /* The client sees the stream cut short, never a clean end. */
    int e = read_response(&rb, &r, TIMEOUT);
    T_OK(e != 0, "truncated stream is not a complete response");
    close(fd);
}

// ---------------------------------------------------------------- abort, post

static void client_abort(void)
{
    int handled = atomic_load(&n_handled), aborts = atomic_load(&n_aborts);
    int fd = tconnect(S.port);
    send_str(fd, "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n");
    double t0 = now_ms();
    while (atomic_load(&n_handled) == handled && now_ms() - t0 < TIMEOUT)
        sleep_ms(2);
    T_EQ_INT(atomic_load(&n_aborts), aborts);
    close(fd);
    while (atomic_load(&n_aborts) == aborts && now_ms() - t0 < TIMEOUT)
        sleep_ms(2);
    T_EQ_INT(atomic_load(&n_aborts), aborts + 1);

    /* A delayed answer whose client left: the timer finds the response
     * closed (it holds a reference), nothing crashes or leaks. */
    fd = tconnect(S.port);
    send_str(fd, "GET /delay?ms=50 HTTP/1.1\r\nHost: a\r\n\r\n");
    sleep_ms(10);
    close(fd);
    sleep_ms(100);
}

static void cross_thread_post(void)
{
    struct tresp r;
    atomic_store(&post_done, 0);
    atomic_store(&producer_started, 0);
    int fd = tconnect(S.port);
    struct rbuf rb;
    rb_init(&rb, fd);
    send_str(fd, "GET /post?n=200 HTTP/1.1\r\nHost: a\r\n\r\n");
    T_OK(read_response(&rb, &r, TIMEOUT) == 0, "post stream");
    char want[64];
    int ok = 1;
    const char *p = r.body;
    for (int i = 0; i < 200 && ok; i++) {
        snprintf(want, sizeof want, "data: tok%d\n\n", i);
        ok = strncmp(p, want, strlen(want)) == 0;
        p += strlen(want);
    }
    T_OK(ok && *p == '\0', "200 tokens in order");
    if (atomic_load(&producer_started))
        pthread_join(producer, NULL);
    double t0 = now_ms();
    while (!atomic_load(&post_done) && now_ms() - t0 < TIMEOUT)
        sleep_ms(1);
    T_OK(atomic_load(&post_done), "last post ran");
    close(fd);

    /* The client leaves mid-stream: posts keep arriving and find the
     * response closed; the references keep it alive until the last one. */
    atomic_store(&post_done, 0);
    atomic_store(&producer_started, 0);
    fd = tconnect(S.port);
    send_str(fd, "GET /post?n=20000 HTTP/1.1\r\nHost: a\r\n\r\n");
    rb_init(&rb, fd);
    rb_fill(&rb, TIMEOUT);
    close(fd);
    t0 = now_ms();
    while (!atomic_load(&producer_started) && now_ms() - t0 < TIMEOUT)
        sleep_ms(1);
    pthread_join(producer, NULL);
    while (!atomic_load(&post_done) && now_ms() - t0 < TIMEOUT)
        sleep_ms(1);
    T_OK(atomic_load(&post_done), "last post ran after the client left");
}

// ---------------------------------------------------------------- concurrency

/* Many connections at once on the one loop thread, interleaved keep-alive
 * requests, and one slow-loris-like idle partial request that blocks none. */
static void many_connections(void)
{
    enum { N = 200, ROUNDS = 3 };
    static int fds[N];
    static struct rbuf rbs[N];
    struct tresp r;
    int partial = tconnect(S.port);
    send_str(partial, "GET / HTTP/1.1\r\nHo");
    for (int i = 0; i < N; i++) {
        fds[i] = tconnect(S.port);
        rb_init(&rbs[i], fds[i]);
    }
    int ok = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < N; i++) {
            char req[96];
            snprintf(req, sizeof req, "POST /c%d HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", i);
            send_str(fds[i], req);
        }
        for (int i = N - 1; i >= 0; i--) {
            char want[32];
            snprintf(want, sizeof want, "len=2;/c%d", i);
            ok += read_response(&rbs[i], &r, TIMEOUT) == 0 && strcmp(r.body, want) == 0;
        }
    }
    T_EQ_INT(ok, N * ROUNDS);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    close(partial);
}

int main(void)
{
    struct kz_http_config cfg;
    kz_http_config_default(&cfg);
    cfg.max_connections_per_ip = 0;
    memset(flood_chunk, 'f', sizeof flood_chunk);
    if (tsrv_start(&S, &cfg, handler, &S) != 0) {
        T_OK(0, "server start");
        return t_done();
    }
    t_subtest("conformance_table", table);
    t_subtest("limits", limits);
    t_subtest("keep_alive", keep_alive);
    t_subtest("sse", sse);
    t_subtest("slow_reader", slow_reader);
    t_subtest("client_abort", client_abort);
    t_subtest("cross_thread_post", cross_thread_post);
    t_subtest("many_connections", many_connections);
    tsrv_stop(&S, 1000);
    return t_done();
}
