/* SPDX-License-Identifier: MIT
 * The plain HTTP/1.1 transport of the upstream client (see upstream_int.h).
 *
 * Per request on a kept-alive connection this costs one writev and one
 * read per burst of the answer, with no epoll changes: a connection is
 * always watched for reading, in a call or idle in its pool (so a peer's
 * close is seen, and the connection dropped, as it happens), and libuv
 * writes at once when nothing is queued.
 *
 * Pools are per address; idle connections are reused last-in first-out, so
 * the warmest one goes first and ones the peer has timed out age away.
 * A kept-alive connection can die just as a request goes out on it (the
 * peer closed it at its idle timeout); when one ends without a single byte
 * of answer, the request is sent once more on a new connection, as
 * browsers and curl do.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/fmt.h"
#include "router/h1_resp.h"
#include "router/upstream_int.h"

#define MAX_IDLE 512 /* kept-alive connections over all pools, as for curl */
#define RBUF (16u << 10)

struct h1_pool {
    struct h1_pool *next;
    struct sockaddr_storage addr;
    char name[64]; /* "address:port", for messages */
    struct h1_conn *idle; /* doubly linked, most recently used first */
};

struct h1_conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    struct kz_upstream *u;
    struct h1_pool *pool;
    struct h1_conn *prev, *next; /* in the pool's idle list */
    struct kz_up_call *call;     /* the call it carries, NULL when idle */
    int idle, closing, reused;
    int writing; /* a request write is pending: it holds the call's buffers */
    struct kz_h1_resp resp;
    char rbuf[RBUF];
};

/* ---- URLs ------------------------------------------------------------------ */

struct h1_url {
    struct sockaddr_storage addr;
    const char *authority, *path; /* path: from its '/' or '?' to the end or the '#' */
    size_t authority_len, path_len;
};

static int parse_url(const char *url, struct h1_url *o)
{
    if (strncasecmp(url, "http://", 7) != 0)
        return 0;
    const char *a = url + 7, *end = a + strcspn(a, "/?#");
    if (memchr(a, '@', (size_t)(end - a)))
        return 0; /* user:password@: curl's basic authentication */
    const char *host = a, *host_end, *port = NULL;
    char buf[64];
    memset(&o->addr, 0, sizeof o->addr);
    int v6 = *a == '[';
    if (v6) {
        host++;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (!host_end)
            return 0;
        if (host_end + 1 < end) {
            if (host_end[1] != ':')
                return 0;
            port = host_end + 2;
        }
    } else {
        host_end = memchr(a, ':', (size_t)(end - a));
        if (host_end)
            port = host_end + 1;
        else
            host_end = end;
    }
    if ((size_t)(host_end - host) >= sizeof buf)
        return 0;
    memcpy(buf, host, (size_t)(host_end - host));
    buf[host_end - host] = '\0';
    unsigned long pn = 80;
    if (port) {
        if (port == end || end - port > 5)
            return 0;
        pn = 0;
        for (const char *q = port; q < end; q++) {
            if (*q < '0' || *q > '9')
                return 0;
            pn = pn * 10 + (unsigned long)(*q - '0');
        }
        if (pn == 0 || pn > 65535)
            return 0;
    }
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&o->addr;
        if (inet_pton(AF_INET6, buf, &s6->sin6_addr) != 1)
            return 0;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)pn);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&o->addr;
        if (inet_pton(AF_INET, buf, &s4->sin_addr) != 1)
            return 0;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)pn);
    }
    o->authority = a;
    o->authority_len = (size_t)(end - a);
    o->path = end;
    o->path_len = strcspn(end, "#");
    for (size_t i = 0; i < o->path_len; i++) /* what curl would refuse or escape stays curl's */
        if ((unsigned char)end[i] <= ' ' || end[i] == 0x7f)
            return 0;
    return 1;
}

/* ---- connections ------------------------------------------------------------------ */

static void conn_freed(uv_handle_t *h)
{
    struct h1_conn *k = h->data;
    kz_h1_resp_free(&k->resp);
    kz_free(k);
}

static void idle_remove(struct h1_conn *k)
{
    if (!k->idle)
        return;
    if (k->prev)
        k->prev->next = k->next;
    else
        k->pool->idle = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->prev = k->next = NULL;
    k->idle = 0;
    k->u->n_idle--;
}

static void conn_close(struct h1_conn *k)
{
    if (k->closing)
        return;
    idle_remove(k);
    k->closing = 1;
    k->call = NULL;
    uv_close((uv_handle_t *)&k->tcp, conn_freed); /* a pending connect or write ends with UV_ECANCELED */
}

/* The call is done with k; k goes back to its pool or is closed. */
static void conn_release(struct h1_conn *k, int reusable)
{
    k->call = NULL;
    if (!reusable || k->u->n_idle >= MAX_IDLE) {
        conn_close(k);
        return;
    }
    k->idle = 1;
    k->reused = 1;
    k->prev = NULL;
    k->next = k->pool->idle;
    if (k->next)
        k->next->prev = k;
    k->pool->idle = k;
    k->u->n_idle++;
}

void kz_h1_detach(struct kz_up_call *c)
{
    struct h1_conn *k = c->h1;
    if (!k)
        return;
    c->h1 = NULL;
    conn_close(k);
}

static int dispatch(struct kz_up_call *c, int fresh, struct kz_err *err);

/* The answer ended with an error on k. */
static void fail(struct h1_conn *k, kz_status rc, const char *msg)
{
    struct kz_up_call *c = k->call;
    /* a kept-alive connection that died before a byte of answer: once more, anew */
    if (k->reused && !c->retried && kz_h1_resp_untouched(&k->resp) && !c->cancelled && !c->stop_rc) {
        c->retried = 1;
        kz_h1_detach(c);
        struct kz_err err = {{0}};
        kz_status r2 = dispatch(c, 1, &err);
        if (r2)
            kz_up__finish(c, r2, err.msg);
        else
            kz_up__rearm(c); /* the connect deadline */
        return;
    }
    kz_up__finish(c, rc, msg); /* detaches and closes k */
}

static int on_line(void *ud, const char *p, size_t n) { return kz_up__head_line(ud, p, n) == 0; }
static int on_body(void *ud, const char *p, size_t n) { return kz_up__body(ud, p, n) == 0; }
static const struct kz_h1_cbs resp_cbs = {on_line, on_body};

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct h1_conn *k = h->data;
    *buf = uv_buf_init(k->rbuf, RBUF);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct h1_conn *k = s->data;
    struct kz_up_call *c = k->call;
    if (nread == 0 || k->closing)
        return;
    if (!c) { /* idle: the peer closed it, or sent what nobody asked for */
        conn_close(k);
        return;
    }
    if (nread < 0) {
        enum kz_h1_rc r = nread == UV_EOF ? kz_h1_resp_eof(&k->resp) : KZ_H1_ERROR;
        if (r == KZ_H1_DONE) {
            c->h1 = NULL;
            conn_release(k, 0);
            kz_up__finish(c, KZ_OK, NULL);
            return;
        }
        char msg[256];
        if (nread == UV_EOF)
            snprintf(msg, sizeof msg, "%s (%s)", k->resp.msg, k->pool->name);
        else
            snprintf(msg, sizeof msg, "reading the answer from %s: %s", k->pool->name, uv_strerror((int)nread));
        fail(k, KZ_EIO, msg);
        return;
    }
    size_t used;
    enum kz_h1_rc r = kz_h1_resp_feed(&k->resp, buf->base, (size_t)nread, &used, &resp_cbs, c);
    if (r == KZ_H1_MORE)
        return;
    if (r == KZ_H1_DONE) {
        /* bytes past the answer: nothing was asked for them, so the connection is not clean */
        c->h1 = NULL;
        conn_release(k, k->resp.keep_alive && used == (size_t)nread && !k->writing);
        kz_up__finish(c, KZ_OK, NULL);
    } else if (r == KZ_H1_STOP || c->stop_rc || c->cancelled) {
        kz_up__finish(c, c->stop_rc ? (kz_status)c->stop_rc : KZ_EIO, c->stop_rc ? c->stop_msg : "cancelled");
    } else {
        kz_up__finish(c, KZ_EIO, k->resp.msg);
    }
}

static void on_written(uv_write_t *w, int status)
{
    struct h1_conn *k = w->data;
    k->writing = 0;
    if (status == 0 || k->closing || !k->call)
        return;
    char msg[160];
    snprintf(msg, sizeof msg, "sending the request to %s: %s", k->pool->name, uv_strerror(status));
    fail(k, KZ_EIO, msg);
}

/* 0, or the error writing gave at once (no callback follows then).
 * uv_try_write first: a request goes out whole in one writev nearly
 * always, and then there is no write request whose completion costs the
 * loop another turn and an epoll_ctl. uv_write queues what is left. */
static int send_request(struct h1_conn *k)
{
    struct kz_up_call *c = k->call;
    uv_buf_t b[2] = {uv_buf_init(c->req, (unsigned)c->req_len), uv_buf_init((char *)(uintptr_t)c->body, (unsigned)c->body_len)}; /* libuv only reads it */
    unsigned nb = c->body_len ? 2 : 1;
    int n = uv_try_write((uv_stream_t *)&k->tcp, b, nb);
    if (n < 0 && n != UV_EAGAIN)
        return n;
    size_t done = n > 0 ? (size_t)n : 0;
    unsigned i = 0;
    for (; i < nb && done >= b[i].len; i++)
        done -= b[i].len;
    if (i == nb)
        return 0;
    b[i].base += done;
    b[i].len -= done;
    k->wreq.data = k;
    int e = uv_write(&k->wreq, (uv_stream_t *)&k->tcp, b + i, nb - i, on_written);
    k->writing = e == 0;
    return e;
}

static void on_connect(uv_connect_t *r, int status)
{
    struct h1_conn *k = r->data;
    if (k->closing || !k->call)
        return;
    struct kz_up_call *c = k->call;
    if (status < 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "cannot connect to %s: %s", k->pool->name, uv_strerror(status));
        kz_up__finish(c, KZ_ENOTFOUND, msg); /* the request never left */
        return;
    }
    c->connecting = 0;
    kz_up__rearm(c);
    uv_tcp_nodelay(&k->tcp, 1);
    int e = uv_read_start((uv_stream_t *)&k->tcp, on_alloc, on_read);
    if (e) {
        char msg[160];
        snprintf(msg, sizeof msg, "cannot read from %s: %s", k->pool->name, uv_strerror(e));
        kz_up__finish(c, KZ_EIO, msg);
        return;
    }
    if ((e = send_request(k)) != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "sending the request to %s: %s", k->pool->name, uv_strerror(e));
        kz_up__finish(c, KZ_EIO, msg);
    }
}

/* c on a kept-alive connection to its pool's address (unless fresh), or
 * on a new one. Never calls back into c's owner: errors are returned. */
static int dispatch(struct kz_up_call *c, int fresh, struct kz_err *err)
{
    struct kz_upstream *u = c->u;
    struct h1_pool *pool = c->pool;
    struct h1_conn *k;
    while (!fresh && (k = pool->idle)) {
        idle_remove(k);
        k->call = c;
        c->h1 = k;
        kz_h1_resp_reset(&k->resp);
        if (send_request(k) == 0)
            return KZ_OK;
        kz_h1_detach(c); /* unusable: try the next one */
    }
    if (!(k = kz_calloc(1, sizeof *k)))
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    k->u = u;
    k->pool = pool;
    kz_h1_resp_init(&k->resp);
    int e = uv_tcp_init(u->loop, &k->tcp);
    if (e) {
        kz_free(k);
        return kz_err_set(err, KZ_EIO, "cannot make a socket for %s: %s", pool->name, uv_strerror(e));
    }
    k->tcp.data = k;
    k->creq.data = k;
    uv_unref((uv_handle_t *)&k->tcp); /* as curl's: a client never keeps the loop alive */
    k->call = c;
    c->h1 = k;
    c->connecting = 1;
    e = uv_tcp_connect(&k->creq, &k->tcp, (const struct sockaddr *)&pool->addr, on_connect);
    if (e) {
        kz_h1_detach(c);
        return kz_err_set(err, KZ_ENOTFOUND, "cannot connect to %s: %s", pool->name, uv_strerror(e));
    }
    return KZ_OK;
}

/* ---- calls ------------------------------------------------------------------------ */

static struct h1_pool *pool_get(struct kz_upstream *u, const struct sockaddr_storage *a)
{
    size_t alen = a->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    for (struct h1_pool *p = u->pools; p; p = p->next)
        if (memcmp(&p->addr, a, alen) == 0)
            return p;
    struct h1_pool *p = kz_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->addr = *a;
    char ip[INET6_ADDRSTRLEN] = "";
    int port;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)a;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
        port = ntohs(s->sin_port);
        snprintf(p->name, sizeof p->name, "%s:%d", ip, port);
    } else {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
        port = ntohs(s->sin6_port);
        snprintf(p->name, sizeof p->name, "[%s]:%d", ip, port);
    }
    p->next = u->pools;
    u->pools = p;
    return p;
}

/* The request head: the request line, Host, Accept and Content-Length
 * (as curl sends them), then the caller's lines. */
static kz_status build_head(struct kz_up_call *c, const struct kz_up_req *req, const struct h1_url *url,
                            struct kz_err *err)
{
    int get = strcmp(req->method, "GET") == 0;
    size_t n = strlen(req->method) + url->path_len + url->authority_len + 96;
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *h = req->headers[i];
        if (strpbrk(h, "\r\n"))
            return kz_err_set(err, KZ_EINVAL, "a request header holds a line break");
        n += strlen(h) + 2;
    }
    char *b = kz_malloc(n);
    if (!b)
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    /* put by hand, not printed: every proxied request builds one (n counted room for all of it) */
    size_t len = 0;
#define PUT(p, k) (memcpy(b + len, (p), (k)), len += (k))
#define PUT_LIT(s) PUT(s, sizeof s - 1)
    PUT(req->method, strlen(req->method));
    PUT_LIT(" ");
    if (!(url->path_len && url->path[0] == '/'))
        PUT_LIT("/");
    PUT(url->path, url->path_len);
    PUT_LIT(" HTTP/1.1\r\nHost: ");
    PUT(url->authority, url->authority_len);
    PUT_LIT("\r\nAccept: */*\r\n");
    if (!get) {
        char num[KZ_FMT_INT_SIZE];
        PUT_LIT("Content-Length: ");
        PUT(num, kz_fmt_u64(num, req->body_len));
        PUT_LIT("\r\n");
    }
#undef PUT_LIT
#undef PUT
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *h = req->headers[i];
        size_t hl = strlen(h);
        if (hl && h[hl - 1] == ':')
            continue; /* "Name:" with no value: curl's way to say "do not send Name" */
        memcpy(b + len, h, hl);
        memcpy(b + len + hl, "\r\n", 2);
        len += hl + 2;
    }
    memcpy(b + len, "\r\n", 2);
    c->req = b;
    c->req_len = len + 2;
    return KZ_OK;
}

kz_status kz_h1_prepare(struct kz_up_call *c, const struct kz_up_req *req, struct kz_err *err)
{
    struct h1_url url;
    if (!parse_url(req->url, &url))
        return KZ_EUNSUPPORTED;
    if (!(c->pool = pool_get(c->u, &url.addr)))
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    kz_status rc = build_head(c, req, &url, err);
    if (rc)
        return rc;
    c->body = strcmp(req->method, "GET") == 0 ? NULL : req->body;
    c->body_len = c->body ? req->body_len : 0;
    return KZ_OK;
}

kz_status kz_h1_send(struct kz_up_call *c, struct kz_err *err) { return dispatch(c, 0, err); }

void kz_h1_free(struct kz_upstream *u)
{
    while (u->pools) {
        struct h1_pool *p = u->pools;
        while (p->idle)
            conn_close(p->idle);
        u->pools = p->next;
        kz_free(p);
    }
}
