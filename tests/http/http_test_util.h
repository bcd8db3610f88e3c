/* SPDX-License-Identifier: MIT
 * Helpers for the HTTP server tests: a server on 127.0.0.1 (port 0) whose
 * loop runs on its own thread, and a raw-socket client with a small
 * response reader. Header-only (static functions) so that each test
 * program stays one file; only loopback is ever contacted.
 */
#ifndef KZ_TEST_HTTP_UTIL_H
#define KZ_TEST_HTTP_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "http/http.h"

/* Not every program uses every helper. */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

// ---------------------------------------------------------------- server on a thread

struct tsrv {
    uv_loop_t loop;
    struct kz_http_server *srv;
    pthread_t th;
    int port;
};

static void *tsrv_main(void *arg)
{
    struct tsrv *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Starts a server with cfg (host/port forced to 127.0.0.1:0). 0 on success. */
static int tsrv_start(struct tsrv *t, struct kz_http_config *cfg, kz_http_handler_fn fn, void *user)
{
    struct kz_err err = {{0}};
    memset(t, 0, sizeof *t);
    cfg->host = "127.0.0.1";
    cfg->port = 0;
    if (uv_loop_init(&t->loop) != 0)
        return -1;
    if (kz_http_server_new(&t->loop, cfg, fn, user, &t->srv, &err) != KZ_OK ||
        kz_http_server_listen(t->srv, &err) != KZ_OK) {
        fprintf(stderr, "tsrv_start: %s\n", err.msg);
        return -1;
    }
    t->port = kz_http_server_port(t->srv);
    if (pthread_create(&t->th, NULL, tsrv_main, t) != 0)
        return -1;
    return 0;
}

struct tsrv_call {
    struct tsrv *t;
    void (*fn)(struct tsrv *t, void *arg);
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
};

static void tsrv_call_cb(void *arg)
{
    struct tsrv_call *c = arg;
    c->fn(c->t, c->arg);
    pthread_mutex_lock(&c->mu);
    c->done = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Runs fn(t, arg) on the loop thread and waits for it. */
static void tsrv_call(struct tsrv *t, void (*fn)(struct tsrv *, void *), void *arg)
{
    struct tsrv_call c = {t, fn, arg, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    if (kz_http_server_post(t->srv, tsrv_call_cb, &c) != KZ_OK)
        return;
    pthread_mutex_lock(&c.mu);
    while (!c.done)
        pthread_cond_wait(&c.cv, &c.mu);
    pthread_mutex_unlock(&c.mu);
}

static void stats_fn(struct tsrv *t, void *arg) { kz_http_server_stats(t->srv, arg); }

static void tsrv_stats(struct tsrv *t, struct kz_http_stats *st) { tsrv_call(t, stats_fn, st); }

static unsigned stop_drain_ms;

static void stop_fn(void *arg)
{
    struct tsrv *t = arg;
    kz_http_server_stop_graceful(t->srv, stop_drain_ms);
}

/* Asks for a graceful stop (drain_ms), waits for uv_run to return, frees. */
static void tsrv_stop(struct tsrv *t, unsigned drain_ms)
{
    stop_drain_ms = drain_ms;
    kz_http_server_post(t->srv, stop_fn, t);
    pthread_join(t->th, NULL);
    kz_http_server_free(t->srv);
    uv_loop_close(&t->loop);
}

// ---------------------------------------------------------------- client

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A connected socket to 127.0.0.1:port, or -1. rcvbuf > 0 sets SO_RCVBUF
 * first (a small window makes a slow reader quickly visible). */
static int tconnect2(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int tconnect(int port) { return tconnect2(port, 0); }

static int send_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_str(int fd, const char *s) { return send_all(fd, s, strlen(s)); }

/* Buffered reader for one connection. */
struct rbuf {
    int fd;
    char d[65536];
    size_t len;
    int eof;        /* peer closed (EOF or reset) */
    int timed_out;
};

static void rb_init(struct rbuf *rb, int fd)
{
    rb->fd = fd;
    rb->len = 0;
    rb->eof = rb->timed_out = 0;
}

/* Reads more within timeout_ms: >0 bytes, 0 on EOF/reset, -1 on timeout or
 * a full buffer. */
static int rb_fill(struct rbuf *rb, int timeout_ms)
{
    if (rb->len == sizeof rb->d)
        return -1;
    struct pollfd p = {rb->fd, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r <= 0) {
        rb->timed_out = 1;
        return -1;
    }
    ssize_t n = recv(rb->fd, rb->d + rb->len, sizeof rb->d - rb->len, 0);
    if (n <= 0) {
        rb->eof = 1;
        return 0;
    }
    rb->len += (size_t)n;
    return (int)n;
}

static void rb_drop(struct rbuf *rb, size_t n)
{
    memmove(rb->d, rb->d + n, rb->len - n);
    rb->len -= n;
}

struct tresp {
    int status;
    char head[4096];
    char body[65536];   /* first bytes of the body */
    size_t body_len;    /* bytes kept in body */
    size_t total;       /* body bytes received in all */
    int chunked, close_delimited, conn_close;
};

static const char *find_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, n) == 0)
            return p;
    return NULL;
}

static void body_put(struct tresp *r, const char *p, size_t n)
{
    size_t room = sizeof r->body - 1 - r->body_len;
    size_t k = n < room ? n : room;
    memcpy(r->body + r->body_len, p, k);
    r->body_len += k;
    r->body[r->body_len] = '\0';
    r->total += n;
}

/* Reads one response (skipping 1xx). 0 on success, -1 on EOF/timeout/garbage.
 * no_body: the answer to a HEAD request (framing headers but no body). */
static int read_response_ex(struct rbuf *rb, struct tresp *r, int timeout_ms, int no_body)
{
    memset(r, 0, sizeof *r);
    for (;;) {
        char *end = NULL;
        for (;;) {
            if (rb->len >= 4) {
                for (size_t i = 0; i + 3 < rb->len; i++)
                    if (memcmp(rb->d + i, "\r\n\r\n", 4) == 0) {
                        end = rb->d + i + 4;
                        break;
                    }
            }
            if (end)
                break;
            if (rb_fill(rb, timeout_ms) <= 0)
                return -1;
        }
        size_t hl = (size_t)(end - rb->d);
        if (hl >= sizeof r->head)
            return -1;
        memcpy(r->head, rb->d, hl);
        r->head[hl] = '\0';
        rb_drop(rb, hl);
        if (strncmp(r->head, "HTTP/1.1 ", 9) != 0)
            return -1;
        r->status = atoi(r->head + 9);
        if (r->status >= 100 && r->status < 200)
            continue;
        break;
    }
    r->chunked = find_ci(r->head, "\r\nTransfer-Encoding: chunked\r\n") != NULL;
    r->conn_close = find_ci(r->head, "\r\nConnection: close\r\n") != NULL;
    if (no_body)
        return 0;
    const char *cl = find_ci(r->head, "\r\nContent-Length:");
    if (cl) {
        size_t want = (size_t)strtoull(cl + 17, NULL, 10);
        while (r->total < want) {
            if (rb->len == 0 && rb_fill(rb, timeout_ms) <= 0)
                return -1;
            size_t k = rb->len < want - r->total ? rb->len : want - r->total;
            body_put(r, rb->d, k);
            rb_drop(rb, k);
        }
        return 0;
    }
    if (r->chunked) {
        for (;;) {
            char *nl;
            while (!(nl = memchr(rb->d, '\n', rb->len)))
                if (rb_fill(rb, timeout_ms) <= 0)
                    return -1;
            size_t sz = (size_t)strtoull(rb->d, NULL, 16);
            rb_drop(rb, (size_t)(nl - rb->d) + 1);
            if (sz == 0) {
                while (rb->len < 2)
                    if (rb_fill(rb, timeout_ms) <= 0)
                        return -1;
                if (memcmp(rb->d, "\r\n", 2) != 0)
                    return -1;
                rb_drop(rb, 2);
                return 0;
            }
            while (sz > 0) {
                if (rb->len == 0 && rb_fill(rb, timeout_ms) <= 0)
                    return -1;
                size_t k = rb->len < sz ? rb->len : sz;
                body_put(r, rb->d, k);
                rb_drop(rb, k);
                sz -= k;
            }
            while (rb->len < 2)
                if (rb_fill(rb, timeout_ms) <= 0)
                    return -1;
            if (memcmp(rb->d, "\r\n", 2) != 0)
                return -1;
            rb_drop(rb, 2);
        }
    }
    /* Close-delimited. */
    r->close_delimited = 1;
    for (;;) {
        body_put(r, rb->d, rb->len);
        rb->len = 0;
        int n = rb_fill(rb, timeout_ms);
        if (n == 0)
            return 0;
        if (n < 0)
            return -1;
    }
}

static int read_response(struct rbuf *rb, struct tresp *r, int timeout_ms)
{
    return read_response_ex(rb, r, timeout_ms, 0);
}

/* 1 when the peer closes within timeout_ms with no further bytes. */
static int expect_closed(struct rbuf *rb, int timeout_ms)
{
    if (rb->len)
        return 0;
    if (rb->eof)
        return 1;
    int n = rb_fill(rb, timeout_ms);
    return n == 0;
}

#endif
