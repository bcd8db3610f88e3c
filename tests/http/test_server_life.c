/* SPDX-License-Identifier: MIT
 * The HTTP server's clocks and lifecycle, on 127.0.0.1 with short timeouts:
 * slow-loris (the header deadline), slow and stalled bodies, idle and
 * keep-alive timeouts, a reader that stops reading (write timeout),
 * connection caps (total and per address), graceful stop with a request in
 * flight, the drain deadline aborting what is left, SIGTERM through
 * kz_http_server_handle_signals, and posts after the stop.
 *
 * Timings are asserted with generous upper bounds (a loaded CI machine is
 * slow, never fast); every timeout here is a few hundred milliseconds.
 */
#include <signal.h>
#include <stdatomic.h>

#include "http_test_util.h"
#include "t.h"

#define TIMEOUT 3000

static atomic_int n_handled, n_aborts;

static void on_abort(struct kz_http_res *res, void *arg)
{
    (void)res;
    (void)arg;
    atomic_fetch_add(&n_aborts, 1);
}

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

static char big[1 << 16];

static void flood_drain(struct kz_http_res *res, void *arg)
{
    (void)arg;
    while (kz_http_res_write(res, big, sizeof big, NULL) == KZ_OK && !kz_http_res_over_high_water(res)) {
    }
}

static void handler(void *user, struct kz_http_req *req, struct kz_http_res *res)
{
    uv_loop_t *loop = user;
    struct kz_slice path = kz_http_req_path(req);
    atomic_fetch_add(&n_handled, 1);
    if (kz_slice_eq(path, "/delay")) {
        struct delayed *d = kz_malloc(sizeof *d);
        d->res = res;
        kz_http_res_ref(res);
        uv_timer_init(loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, delayed_fire, 200, 0);
    } else if (kz_slice_eq(path, "/hold")) {
        kz_http_res_on_abort(res, on_abort, NULL);
    } else if (kz_slice_eq(path, "/flood")) {
        /* Endless stream that respects the high-water mark. */
        kz_http_res_on_abort(res, on_abort, NULL);
        kz_http_res_on_drain(res, flood_drain, NULL);
        kz_http_res_stream_start(res, 200, "application/octet-stream");
        flood_drain(res, NULL);
    } else {
        kz_http_res_send(res, 200, "text/plain", "ok", 2);
    }
}

static void base_config(struct kz_http_config *cfg)
{
    kz_http_config_default(cfg);
    cfg->header_timeout_ms = 300;
    cfg->body_timeout_ms = 400;
    cfg->keepalive_timeout_ms = 300;
    cfg->write_timeout_ms = 300;
    cfg->linger_ms = 200;
    cfg->body_min_rate = 0;
    cfg->max_connections_per_ip = 0;
}

/* Waits for a response or a close, returns the status (0 closed with no
 * response, -1 still open after timeout_ms) and the time it took. */
static int wait_outcome(struct rbuf *rb, int timeout_ms, double *ms)
{
    struct tresp r;
    double t0 = now_ms();
    int e = read_response(rb, &r, timeout_ms);
    *ms = now_ms() - t0;
    if (e == 0)
        return r.status;
    return rb->eof ? 0 : -1;
}

// ---------------------------------------------------------------- timeouts

static void slowloris(void)
{
    struct kz_http_config cfg;
    base_config(&cfg);
    struct tsrv t;
    if (tsrv_start(&t, &cfg, handler, &t.loop) != 0) {
        T_OK(0, "start");
        return;
    }
    /* A header line that never ends, one byte every 30 ms: 408 at the
     * header deadline, counted from the first byte. */
    int fd = tconnect(t.port);
    struct rbuf rb;
    rb_init(&rb, fd);
    double t0 = now_ms();
    send_str(fd, "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ");
    struct tresp r;
    int got = -1;
    while (now_ms() - t0 < 2000) {
        send_all(fd, "a", 1);
        if (rb_fill(&rb, 30) != -1 || rb.len) {
            got = read_response(&rb, &r, TIMEOUT) == 0 ? r.status : 0;
            break;
        }
        rb.timed_out = 0;
    }
    double el = now_ms() - t0;
    T_EQ_INT(got, 408);
    T_OK(el >= 250 && el < 1000, "closed at the header deadline: %.0f ms", el);
    T_OK(expect_closed(&rb, TIMEOUT), "closed after 408");
    close(fd);

    /* Connected, nothing sent: closed quietly at the header deadline. */
    fd = tconnect(t.port);
    rb_init(&rb, fd);
    double ms;
    T_EQ_INT(wait_outcome(&rb, TIMEOUT, &ms), 0);
    T_OK(ms >= 250 && ms < 1000, "idle connect closed: %.0f ms", ms);
    close(fd);

    /* Keep-alive idle after one request. */
    fd = tconnect(t.port);
    rb_init(&rb, fd);
    send_str(fd, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    T_OK(read_response(&rb, &r, TIMEOUT) == 0 && r.status == 200, "first request");
    T_EQ_INT(wait_outcome(&rb, TIMEOUT, &ms), 0);
    T_OK(ms >= 250 && ms < 1000, "keep-alive idle closed: %.0f ms", ms);
    close(fd);

    /* A body that stalls: 408 at the body deadline. */
    fd = tconnect(t.port);
    rb_init(&rb, fd);
    send_str(fd, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    T_EQ_INT(wait_outcome(&rb, TIMEOUT, &ms), 408);
    T_OK(ms >= 350 && ms < 1200, "body deadline: %.0f ms", ms);
    close(fd);

    /* Many slow clients do not stop a normal one. */
    int slow[20];
    for (int i = 0; i < 20; i++) {
        slow[i] = tconnect(t.port);
        send_str(slow[i], "GET / HTTP/1.1\r\n");
    }
    fd = tconnect(t.port);
    rb_init(&rb, fd);
    t0 = now_ms();
    send_str(fd, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    T_OK(read_response(&rb, &r, TIMEOUT) == 0 && r.status == 200, "served among slow clients");
    T_OK(now_ms() - t0 < 500, "promptly: %.1f ms", now_ms() - t0);
    close(fd);
    for (int i = 0; i < 20; i++)
        close(slow[i]);

    struct kz_http_stats st;
    tsrv_stats(&t, &st);
    T_OK(st.timeouts >= 4, "timeouts counted: %llu", (unsigned long long)st.timeouts);
    tsrv_stop(&t, 100);
}

static void slow_body_rate(void)
{
    struct kz_http_config cfg;
    base_config(&cfg);
    cfg.body_timeout_ms = 5000;
    cfg.body_min_rate = 1000; /* bytes/s */
    cfg.body_rate_grace_ms = 200;
    struct tsrv t;
    if (tsrv_start(&t, &cfg, handler, &t.loop) != 0) {
        T_OK(0, "start");
        return;
    }
    int fd = tconnect(t.port);
    struct rbuf rb;
    rb_init(&rb, fd);
    send_str(fd, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n");
    double t0 = now_ms();
    int got = -1;
    struct tresp r;
    while (now_ms() - t0 < 2000) {
        send_all(fd, "0123456789", 10); /* 10 bytes per 50 ms = 200 B/s */
        if (rb_fill(&rb, 50) != -1 || rb.len) {
            got = read_response(&rb, &r, TIMEOUT) == 0 ? r.status : 0;
            break;
        }
    }
    double el = now_ms() - t0;
    T_EQ_INT(got, 408);
    T_OK(el >= 150 && el < 1000, "slow body dropped at %.0f ms", el);
    T_OK(strstr(r.body, "too slowly") != NULL, "reason: %s", r.body);
    close(fd);
    tsrv_stop(&t, 100);
}

static void write_timeout(void)
{
    struct kz_http_config cfg;
    base_config(&cfg);
    struct tsrv t;
    if (tsrv_start(&t, &cfg, handler, &t.loop) != 0) {
        T_OK(0, "start");
        return;
    }
    int aborts = atomic_load(&n_aborts);
    int fd = tconnect2(t.port, 4096);
    send_str(fd, "GET /flood HTTP/1.1\r\nHost: a\r\n\r\n");
    double t0 = now_ms();
    while (atomic_load(&n_aborts) == aborts && now_ms() - t0 < TIMEOUT)
        sleep_ms(5);
    double el = now_ms() - t0;
    T_EQ_INT(atomic_load(&n_aborts), aborts + 1);
    T_OK(el >= 250 && el < 1500, "a reader that stops reading is dropped: %.0f ms", el);
    close(fd);
    tsrv_stop(&t, 100);
}

// ---------------------------------------------------------------- caps

static int request_ok(int fd)
{
    struct rbuf rb;
    struct tresp r;
    rb_init(&rb, fd);
    send_str(fd, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    return read_response(&rb, &r, TIMEOUT) == 0 && r.status == 200;
}

/* The (n+1)-th connection gets a 503 or is closed at once. */
static int refused(int fd)
{
    struct rbuf rb;
    struct tresp r;
    rb_init(&rb, fd);
    int e = read_response(&rb, &r, TIMEOUT);
    if (e == 0)
        return r.status == 503 && strstr(r.body, "server_busy") != NULL;
    return rb.eof;
}

static void max_connections(void)
{
    struct kz_http_config cfg;
    base_config(&cfg);
    cfg.keepalive_timeout_ms = 5000;
    cfg.max_connections = 3;
    struct tsrv t;
    if (tsrv_start(&t, &cfg, handler, &t.loop) != 0) {
        T_OK(0, "start");
        return;
    }
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = tconnect(t.port);
        T_OK(request_ok(fds[i]), "connection %d served", i);
    }
    int extra = tconnect(t.port);
    T_OK(refused(extra), "fourth connection refused");
    close(extra);
    close(fds[0]);
    struct kz_http_stats st;
    double t0 = now_ms();
    do {
        sleep_ms(5);
        tsrv_stats(&t, &st);
    } while (st.active > 2 && now_ms() - t0 < TIMEOUT);
    T_EQ_INT(st.active, 2);
    T_OK(st.rejected == 1, "one rejected: %llu", (unsigned long long)st.rejected);
    fds[0] = tconnect(t.port);
    T_OK(request_ok(fds[0]), "a freed slot is usable again");
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    tsrv_stop(&t, 100);

    /* Per client address. */
    base_config(&cfg);
    cfg.keepalive_timeout_ms = 5000;
    cfg.max_connections_per_ip = 2;
    if (tsrv_start(&t, &cfg, handler, &t.loop) != 0) {
        T_OK(0, "start");
        return;
    }
    int a = tconnect(t.port), b = tconnect(t.port);
    T_OK(request_ok(a) && request_ok(b), "two from one address");
    int c = tconnect(t.port);
    T_OK(refused(c), "third from the same address refused");
    close(a);
    close(b);
    close(c);
    tsrv_stop(&t, 100);
}

// ---------------------------------------------------------------- stopping

struct stop_arg {
    struct tsrv *t;
    unsigned drain_ms;
};

static void do_stop(void *arg)
{
    struct stop_arg *s = arg;
    kz_http_server_stop_graceful(s->t->srv, s->drain_ms);
}

static void noop(void *arg) { (void)arg; }

static void graceful_stop(void)
{
    struct kz_http_config cfg;
    base_config(&cfg);
    cfg.keepalive_timeout_ms = 5000;
    struct tsrv t;
    if (tsrv_start(&t, &cfg, handler, &t.loop) != 0) {
        T_OK(0, "start");
        return;
    }
    int port = t.port;
    /* An idle keep-alive connection and a request in flight. */
    int idle = tconnect(port);
    T_OK(request_ok(idle), "idle connection served once");
    int handled = atomic_load(&n_handled);
    int fd = tconnect(port);
    struct rbuf rb;
    rb_init(&rb, fd);
    send_str(fd, "GET /delay HTTP/1.1\r\nHost: a\r\n\r\n");
    double t0 = now_ms();
    while (atomic_load(&n_handled) == handled && now_ms() - t0 < TIMEOUT)
        sleep_ms(1);
    struct stop_arg sa = {&t, 3000};
    kz_http_server_post(t.srv, do_stop, &sa);

    struct rbuf rbi;
    rb_init(&rbi, idle);
    T_OK(expect_closed(&rbi, TIMEOUT), "idle connection closed by the stop");
    T_OK(tconnect(port) < 0, "no longer accepting");
    struct tresp r;
    T_OK(read_response(&rb, &r, TIMEOUT) == 0 && strcmp(r.body, "delayed") == 0 && r.conn_close,
         "in-flight request finished, with Connection: close");
    T_OK(expect_closed(&rb, TIMEOUT), "then closed");
    pthread_join(t.th, NULL);
    double el = now_ms() - t0;
    T_OK(el < 1500, "uv_run returned without waiting for the drain deadline: %.0f ms", el);
    T_EQ_INT(kz_http_server_post(t.srv, noop, NULL), KZ_EIO);
    kz_http_server_free(t.srv);
    T_EQ_INT(uv_loop_close(&t.loop), 0);
    close(fd);
    close(idle);

    /* The drain deadline: a request that never ends is aborted. */
    if (tsrv_start(&t, &cfg, handler, &t.loop) != 0) {
        T_OK(0, "start");
        return;
    }
    int aborts = atomic_load(&n_aborts);
    handled = atomic_load(&n_handled);
    fd = tconnect(t.port);
    send_str(fd, "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n");
    t0 = now_ms();
    while (atomic_load(&n_handled) == handled && now_ms() - t0 < TIMEOUT)
        sleep_ms(1);
    t0 = now_ms();
    sa.drain_ms = 200;
    kz_http_server_post(t.srv, do_stop, &sa);
    pthread_join(t.th, NULL);
    el = now_ms() - t0;
    T_EQ_INT(atomic_load(&n_aborts), aborts + 1);
    T_OK(el >= 150 && el < 1500, "stopped at the drain deadline: %.0f ms", el);
    kz_http_server_free(t.srv);
    T_EQ_INT(uv_loop_close(&t.loop), 0);
    close(fd);
}

static void sigterm(void)
{
    struct kz_http_config cfg;
    base_config(&cfg);
    struct tsrv t;
    struct kz_err err = {{0}};
    /* Set up before the loop thread starts (loop-thread calls). */
    memset(&t, 0, sizeof t);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    uv_loop_init(&t.loop);
    T_EQ_INT(kz_http_server_new(&t.loop, &cfg, handler, &t.loop, &t.srv, &err), KZ_OK);
    T_EQ_INT(kz_http_server_listen(t.srv, &err), KZ_OK);
    T_EQ_INT(kz_http_server_handle_signals(t.srv, 100, &err), KZ_OK);
    t.port = kz_http_server_port(t.srv);
    pthread_create(&t.th, NULL, tsrv_main, &t);
    int fd = tconnect(t.port);
    T_OK(request_ok(fd), "served before the signal");
    double t0 = now_ms();
    kill(getpid(), SIGTERM);
    pthread_join(t.th, NULL);
    T_OK(now_ms() - t0 < 1000, "SIGTERM stopped the server: %.0f ms", now_ms() - t0);
    kz_http_server_free(t.srv);
    T_EQ_INT(uv_loop_close(&t.loop), 0);
    close(fd);
}

static void free_without_run(void)
{
    /* A server that never ran its loop can be freed (it runs the loop
     * itself to close its handles), and config errors are reported. */
    uv_loop_t loop;
    struct kz_http_config cfg;
    struct kz_http_server *srv;
    struct kz_err err = {{0}};
    uv_loop_init(&loop);
    base_config(&cfg);
    cfg.port = 0;
    T_EQ_INT(kz_http_server_new(&loop, &cfg, handler, &loop, &srv, &err), KZ_OK);
    T_EQ_INT(kz_http_server_listen(srv, &err), KZ_OK);
    T_OK(kz_http_server_port(srv) > 0, "port chosen");
    kz_http_server_free(srv);
    T_EQ_INT(uv_loop_close(&loop), 0);

    cfg.write_hard_cap = 10;
    T_EQ_INT(kz_http_server_new(&loop, &cfg, handler, &loop, &srv, &err), KZ_EINVAL);
    T_OK(strstr(err.msg, "write_hard_cap") != NULL, "names the field: %s", err.msg);
    base_config(&cfg);
    cfg.host = "not-an-ip";
    uv_loop_init(&loop);
    T_EQ_INT(kz_http_server_new(&loop, &cfg, handler, &loop, &srv, &err), KZ_OK);
    T_EQ_INT(kz_http_server_listen(srv, &err), KZ_EINVAL);
    kz_http_server_free(srv);
    T_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    memset(big, 'b', sizeof big);
    t_subtest("slowloris_and_idle", slowloris);
    t_subtest("slow_body_rate", slow_body_rate);
    t_subtest("write_timeout", write_timeout);
    t_subtest("max_connections", max_connections);
    t_subtest("graceful_stop", graceful_stop);
    t_subtest("sigterm", sigterm);
    t_subtest("free_without_run", free_without_run);
    return t_done();
}
