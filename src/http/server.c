/* SPDX-License-Identifier: MIT
 * The HTTP/1.1 server: connections, request reading, response writing,
 * timers, limits and shutdown on one libuv loop (see http.h for the API and
 * docs/internals/http.md for the design).
 *
 * Invariants:
 *   - A connection's memory is freed only in its uv_close callback, so a
 *     conn pointer stays valid for the whole of any callback that saw it.
 *   - Abort callbacks run from that close callback too, never from inside a
 *     kz_http_res_* call made by the user.
 *   - conn->in holds bytes received and not yet parsed; it never grows past
 *     in_max, which is just above the largest head the limits allow. A body
 *     buffer grows only as bytes arrive, up to max_body.
 *   - Once the server has sent an error (or decided to close), state is
 *     CS_CLOSING and received bytes are discarded: nothing after a rejected
 *     request is ever parsed.
 *   - One exchange (request + response) per connection at a time; pipelined
 *     requests wait in conn->in until the previous response has ended.
 */
#include "http/http.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "core/fmt.h"

// ---------------------------------------------------------------- types

enum conn_state {
    CS_HEAD,     /* reading a request head (idle when in_len == 0) */
    CS_BODY,     /* reading a request body */
    CS_HANDLING, /* the handler has the request; waiting for the response to end */
    CS_CLOSING,  /* answered and shutting down: discard input until EOF or linger */
};

enum res_state { RS_NEW, RS_STREAMING, RS_ENDED, RS_ABORTED };

struct conn;

struct kz_http_res {
    enum res_state state;
    int chunked;         /* streamed with chunked framing */
    int close_delimited; /* streamed until close (HTTP/1.0) */
    int head_only;       /* HEAD request: no body bytes on the wire */
    char *hdrs;          /* extra header lines "Name: value\r\n" */
    size_t hdrs_len, hdrs_cap;
    kz_http_res_fn on_abort, on_drain;
    void *abort_arg, *drain_arg;
    int drain_armed;
};

struct kz_http_req {
    struct conn *conn; /* NULL once the exchange is detached from its connection */
    int refs;          /* the server's (until end/abort) + the user's */
    int dispatched;    /* the handler has seen it */
    uint64_t id;
    struct kz_http_head head; /* slices into raw */
    struct kz_http_header *headers;
    char *raw;                /* copy of the head bytes */
    char *body;               /* NUL-terminated; body_len bytes */
    size_t body_len, body_cap;
    char addr[64];            /* the peer, copied: valid after the connection is gone */
    int port;
    struct kz_http_res res;
};

struct conn {
    uv_tcp_t tcp; /* tcp.data == this */
    struct kz_http_server *srv;
    struct conn *prev, *next;
    enum conn_state state;
    int closed;     /* uv_close called */
    int reading;
    int in_handler; /* inside the user's handler: don't recurse into parsing */
    int wait_drain; /* a response ended with the queue over high water: parse the next later */
    int shutting;   /* uv_shutdown issued */
    char *in;
    size_t in_len, in_cap;
    struct kz_http_scan scan;
    struct kz_http_req *ex;
    struct kz_http_chunked chunked;
    uint64_t idle_since;  /* CS_HEAD with nothing buffered */
    uint64_t head_start;  /* first byte of the current head */
    uint64_t body_start;
    uint64_t linger_until;
    uint64_t last_write;  /* last write completion, or queue start */
    size_t queued;        /* bytes in uv_write requests not yet completed */
    unsigned n_requests;
    int keep_alive;       /* for the current exchange */
    struct conn *pend_prev, *pend_next; /* on srv->pending while is_pending */
    int is_pending;
    uv_shutdown_t shut;
    char addr[64];
    int port;
};

struct post_item {
    kz_http_post_fn fn;
    void *arg;
    struct post_item *next;
};

struct kz_http_server {
    uv_loop_t *loop;
    struct kz_http_config cfg;
    char *host;
    kz_http_handler_fn handler;
    void *user;
    uv_tcp_t listener;
    uv_timer_t sweep;
    uv_timer_t drain;
    uv_async_t async;  /* wakes the loop for kz_http_server_post from other threads */
    uv_check_t turn;   /* runs pending connections after this turn's I/O callbacks */
    uv_idle_t nowait;  /* while any are pending: the next poll must not block */
    uv_signal_t sig_int, sig_term;
    int listening, have_signals;
    int open_handles; /* initialised and not yet closed */
    int stopping, finished;
    unsigned signal_drain_ms;
    int port;
    struct conn *conns;
    struct conn *pending; /* connections whose next request is parsed on the next loop turn */
    size_t n_conns;
    size_t in_max;
    uint64_t next_id;
    struct kz_http_stats stats;
    pthread_mutex_t post_mu;
    struct post_item *post_head, *post_tail;
    int post_closed;
    char scratch[16384]; /* read target while discarding input */
};

#define RES_MAX_EXTRA_HEADERS 8192u
#define WRITE_PIECE 65536u /* a write request carries at most this: progress shows per piece */

static void conn_process(struct conn *c);
static void conn_schedule(struct conn *c);
static void conn_close(struct conn *c);
static void conn_begin_close(struct conn *c);
static void server_maybe_finish(struct kz_http_server *srv);

static struct kz_http_req *res_ex(struct kz_http_res *res)
{
    return (struct kz_http_req *)(void *)((char *)res - offsetof(struct kz_http_req, res));
}

static const struct kz_http_req *res_cex(const struct kz_http_res *res)
{
    return (const struct kz_http_req *)(const void *)((const char *)res - offsetof(struct kz_http_req, res));
}

// ---------------------------------------------------------------- config

void kz_http_config_default(struct kz_http_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->host = "127.0.0.1";
    cfg->port = 8080;
    cfg->backlog = 511;
    kz_http_parse_limits_default(&cfg->limits);
    cfg->max_body = (size_t)4 << 20;
    cfg->header_timeout_ms = 10000;
    cfg->body_timeout_ms = 60000;
    cfg->body_min_rate = 500;
    cfg->body_rate_grace_ms = 5000;
    cfg->keepalive_timeout_ms = 5000;
    cfg->write_timeout_ms = 30000;
    cfg->linger_ms = 2000;
    cfg->max_connections = 1024;
    cfg->max_connections_per_ip = 64;
    cfg->write_high_water = (size_t)64 << 10;
    cfg->write_hard_cap = (size_t)1 << 20;
}

const char *kz_http_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 529: return "Site Overloaded";
    default: return "Unknown";
    }
}

// ---------------------------------------------------------------- bounded text

/* A small bounded byte builder for response heads and error bodies. */
struct tbuf {
    char *p;
    size_t len, cap, max;
    int failed; /* an append hit max or ran out of memory */
};

static void tb_init(struct tbuf *b, size_t max)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->max = max;
    b->failed = 0;
}

static void tb_put(struct tbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (n > b->max - b->len) {
        b->failed = 1;
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        if (cap > b->max)
            cap = b->max;
        char *np = kz_realloc(b->p, cap);
        if (!np) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void tb_str(struct tbuf *b, const char *s) { tb_put(b, s, strlen(s)); }

static void tb_fmt(struct tbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void tb_fmt(struct tbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->failed = 1;
        return;
    }
    tb_put(b, tmp, (size_t)n);
}

static void tb_json_str(struct tbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    tb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            tb_put(b, e, 2);
        } else if (c == '\n') {
            tb_put(b, "\\n", 2);
        } else if (c == '\r') {
            tb_put(b, "\\r", 2);
        } else if (c == '\t') {
            tb_put(b, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            tb_put(b, e, 6);
        } else {
            tb_put(b, (const char *)p, 1);
        }
    }
    tb_put(b, "\"", 1);
}

/* Builds the OpenAI-style error object. */
static void build_error_json(struct tbuf *b, int status, const char *type, const char *code, const char *msg)
{
    if (!type)
        type = status >= 500 ? "server_error" : "invalid_request_error";
    tb_str(b, "{\"error\":{\"message\":");
    tb_json_str(b, msg ? msg : kz_http_status_reason(status));
    tb_str(b, ",\"type\":");
    tb_json_str(b, type);
    tb_str(b, ",\"param\":null,\"code\":");
    if (code)
        tb_json_str(b, code);
    else
        tb_str(b, "null");
    tb_str(b, "}}");
}

static const char *default_error_code(int status)
{
    switch (status) {
    case 408: return "request_timeout";
    case 413: return "request_too_large";
    case 414: return "uri_too_long";
    case 417: return "expectation_failed";
    case 431: return "headers_too_large";
    case 503: return "server_busy";
    case 505: return "http_version_not_supported";
    default: return NULL;
    }
}

// ---------------------------------------------------------------- writing

/* A uv_buf_t over caller bytes. Fields are set directly: uv_buf_init takes
 * an unsigned int length, which would truncate a body above 4 GiB (uv_buf_t
 * holds a size_t on Unix). libuv never writes through a buffer it sends. */
static uv_buf_t mkbuf(const void *p, size_t len)
{
    uv_buf_t b;
    b.base = (char *)(uintptr_t)p;
    b.len = len;
    return b;
}

struct wreq {
    uv_write_t w;
    struct conn *c;
    size_t len;
    char data[];
};

static void res_check_drain(struct conn *c)
{
    size_t low = c->srv->cfg.write_high_water / 2;
    if (c->queued > low)
        return;
    struct kz_http_req *ex = c->ex;
    if (ex && ex->res.drain_armed && ex->res.state == RS_STREAMING && ex->res.on_drain) {
        ex->res.drain_armed = 0;
        ex->res.on_drain(&ex->res, ex->res.drain_arg);
    }
    if (c->wait_drain && !c->closed && c->state == CS_HEAD) {
        c->wait_drain = 0;
        conn_schedule(c);
    }
}

static void on_write(uv_write_t *w, int status)
{
    struct wreq *r = (struct wreq *)(void *)w;
    struct conn *c = r->c;
    c->queued -= r->len;
    c->last_write = uv_now(c->srv->loop);
    kz_free(r);
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (!c->closed)
        res_check_drain(c);
}

/* Writes the concatenation of n pieces: straight into the socket when
 * nothing is queued, the rest copied into write requests. cap > 0: fail
 * with KZ_ELIMIT (closing the connection) if the queue would exceed it.
 * KZ_EIO when the connection is closed or the write fails. */
static kz_status conn_write(struct conn *c, const uv_buf_t *pieces, unsigned n, size_t cap)
{
    size_t total = 0, skip = 0;
    if (c->closed || c->shutting)
        return KZ_EIO;
    for (unsigned i = 0; i < n; i++)
        total += pieces[i].len;
    if (total == 0)
        return KZ_OK;
    if (c->queued == 0) {
        int r = uv_try_write((uv_stream_t *)&c->tcp, pieces, n);
        if (r >= 0) {
            skip = (size_t)r;
        } else if (r != UV_EAGAIN && r != UV_ENOSYS) {
            conn_close(c);
            return KZ_EIO;
        }
    }
    if (skip == total)
        return KZ_OK;
    size_t rest = total - skip;
    if (cap && c->queued + rest > cap) {
        conn_close(c);
        return KZ_ELIMIT;
    }
    if (c->queued == 0)
        c->last_write = uv_now(c->srv->loop);
    /* Copy the unsent bytes into pieces of at most WRITE_PIECE. */
    unsigned pi = 0;
    size_t off = skip;
    while (pi < n && off >= pieces[pi].len) {
        off -= pieces[pi].len;
        pi++;
    }
    while (rest > 0) {
        size_t take = rest < WRITE_PIECE ? rest : WRITE_PIECE;
        struct wreq *r = kz_malloc(sizeof *r + take);
        if (!r) {
            conn_close(c);
            return KZ_ENOMEM;
        }
        r->c = c;
        r->len = take;
        size_t got = 0;
        while (got < take) {
            size_t avail = pieces[pi].len - off;
            size_t k = take - got < avail ? take - got : avail;
            memcpy(r->data + got, pieces[pi].base + off, k);
            got += k;
            off += k;
            if (off == pieces[pi].len) {
                pi++;
                off = 0;
            }
        }
        uv_buf_t b = mkbuf(r->data, take);
        int e = uv_write(&r->w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
        if (e < 0) {
            kz_free(r);
            conn_close(c);
            return KZ_EIO;
        }
        c->queued += take;
        rest -= take;
    }
    if (c->queued > c->srv->stats.max_queued)
        c->srv->stats.max_queued = c->queued;
    return KZ_OK;
}

static kz_status conn_write1(struct conn *c, const char *p, size_t len)
{
    uv_buf_t b = mkbuf(p, len);
    return conn_write(c, &b, 1, 0);
}

// ---------------------------------------------------------------- exchanges

static void ex_free(struct kz_http_req *ex)
{
    kz_free(ex->body);
    kz_free(ex->res.hdrs);
    kz_free(ex);
}

static void ex_unref(struct kz_http_req *ex)
{
    KZ_ASSERT(ex->refs > 0);
    if (--ex->refs == 0)
        ex_free(ex);
}

/* Allocates an exchange holding a copy of the head (head_len bytes) and room
 * for n_hdr headers. */
static struct kz_http_req *ex_new(struct conn *c, size_t head_len, size_t n_hdr)
{
    size_t hsz = n_hdr * sizeof(struct kz_http_header);
    struct kz_http_req *ex = kz_malloc(sizeof *ex + hsz + head_len + 1);
    if (!ex)
        return NULL;
    memset(ex, 0, sizeof *ex);
    ex->conn = c;
    ex->refs = 1;
    ex->headers = (struct kz_http_header *)(void *)(ex + 1);
    ex->raw = (char *)(ex + 1) + hsz;
    memcpy(ex->raw, c->in, head_len);
    ex->raw[head_len] = '\0';
    memcpy(ex->addr, c->addr, sizeof ex->addr);
    ex->port = c->port;
    ex->res.state = RS_NEW;
    return ex;
}

/* The exchange is over for the connection (response ended): drop the
 * server's reference and move on to the next request or close. */
static void conn_finish_exchange(struct conn *c)
{
    struct kz_http_req *ex = c->ex;
    c->ex = NULL;
    ex->conn = NULL;
    ex_unref(ex);
    c->n_requests++;
    if (!c->keep_alive || c->srv->stopping) {
        conn_begin_close(c);
        return;
    }
    c->state = CS_HEAD;
    c->idle_since = uv_now(c->srv->loop);
    if (c->queued > c->srv->cfg.write_high_water)
        c->wait_drain = 1;
    else if (!c->in_handler)
        conn_schedule(c); /* not from inside the caller's kz_http_res_end: no nested handler calls */
}

// ---------------------------------------------------------------- closing

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct kz_http_server *srv = c->srv;
    struct kz_http_req *ex = c->ex;
    if (ex) {
        c->ex = NULL;
        ex->conn = NULL;
        if (ex->res.state == RS_ABORTED && ex->dispatched && ex->res.on_abort) {
            kz_http_res_fn fn = ex->res.on_abort;
            ex->res.on_abort = NULL;
            fn(&ex->res, ex->res.abort_arg);
        }
        ex_unref(ex);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    srv->stats.active = srv->n_conns;
    kz_free(c->in);
    kz_free(c);
    server_maybe_finish(srv);
}

/* Closes now. A response in progress is aborted; its callback runs from the
 * close callback. */
static void pending_unlink(struct conn *c)
{
    if (!c->is_pending)
        return;
    if (c->pend_prev)
        c->pend_prev->pend_next = c->pend_next;
    else
        c->srv->pending = c->pend_next;
    if (c->pend_next)
        c->pend_next->pend_prev = c->pend_prev;
    c->pend_prev = c->pend_next = NULL;
    c->is_pending = 0;
}

static void conn_close(struct conn *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    pending_unlink(c);
    if (c->ex && (c->ex->res.state == RS_NEW || c->ex->res.state == RS_STREAMING))
        c->ex->res.state = RS_ABORTED;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *s, int status)
{
    struct conn *c = s->data;
    if (status < 0 || c->closed) {
        conn_close(c);
        return;
    }
    c->linger_until = uv_now(c->srv->loop) + c->srv->cfg.linger_ms;
}

static void conn_start_reading(struct conn *c);

/* Closes after the queued bytes are sent: shutdown, then read and discard
 * until EOF or the linger time, so that the client gets to read the
 * response instead of a reset. */
static void conn_begin_close(struct conn *c)
{
    if (c->closed || c->state == CS_CLOSING)
        return;
    if (c->ex && (c->ex->res.state == RS_NEW || c->ex->res.state == RS_STREAMING)) {
        conn_close(c);
        return;
    }
    c->state = CS_CLOSING;
    c->in_len = 0;
    c->wait_drain = 0;
    c->linger_until = 0; /* set when the shutdown completes */
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    c->shutting = 1;
    conn_start_reading(c);
}

/* Answers with the JSON error and closes; no more input is parsed. */
static void conn_error(struct conn *c, int status, const char *msg)
{
    struct tbuf body, head;
    if (c->closed || c->state == CS_CLOSING)
        return;
    c->srv->stats.errors++;
    tb_init(&body, 4096);
    tb_init(&head, 4096);
    build_error_json(&body, status, NULL, default_error_code(status), msg);
    tb_fmt(&head, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                  "Connection: close\r\n\r\n",
           status, kz_http_status_reason(status), body.len);
    if (c->ex && (c->ex->res.state == RS_NEW))
        c->ex->res.state = RS_ENDED; /* not dispatched: nobody to tell */
    if (!body.failed && !head.failed) {
        uv_buf_t b[2] = {mkbuf(head.p, head.len), mkbuf(body.p, body.len)};
        conn_write(c, b, 2, 0);
    }
    kz_free(body.p);
    kz_free(head.p);
    if (c->ex) {
        struct kz_http_req *ex = c->ex;
        c->ex = NULL;
        ex->conn = NULL;
        ex_unref(ex);
    }
    conn_begin_close(c);
}

// ---------------------------------------------------------------- reading

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    (void)suggested;
    if (c->state == CS_CLOSING || c->closed) {
        *buf = mkbuf(c->srv->scratch, sizeof c->srv->scratch);
        return;
    }
    struct kz_http_req *ex = c->ex;
    if (c->state == CS_BODY && ex->head.body_kind == KZ_HTTP_BODY_LENGTH) {
        /* Read straight into the body, never past its end: the bytes after it
         * belong to the next request and stay in the socket. */
        size_t want = (size_t)ex->head.content_length - ex->body_len;
        if (ex->body_cap - 1 == ex->body_len) {
            size_t cap = ex->body_cap * 2;
            if (cap - 1 > (size_t)ex->head.content_length)
                cap = (size_t)ex->head.content_length + 1;
            char *nb = kz_realloc(ex->body, cap);
            if (!nb) {
                *buf = mkbuf(NULL, 0);
                return;
            }
            ex->body = nb;
            ex->body_cap = cap;
        }
        size_t room = ex->body_cap - 1 - ex->body_len;
        if (room > want)
            room = want;
        *buf = mkbuf(ex->body + ex->body_len, room);
        return;
    }
    if (c->in_len == c->in_cap && c->in_cap < c->srv->in_max) {
        size_t cap = c->in_cap ? c->in_cap * 2 : 4096;
        if (cap > c->srv->in_max)
            cap = c->srv->in_max;
        char *nb = kz_realloc(c->in, cap);
        if (nb) {
            c->in = nb;
            c->in_cap = cap;
        }
    }
    /* Zero room makes libuv report UV_ENOBUFS: reading pauses until the
     * buffered request is dealt with. */
    *buf = mkbuf(c->in ? c->in + c->in_len : NULL, c->in_cap - c->in_len);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void conn_start_reading(struct conn *c)
{
    if (c->reading || c->closed)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    c->reading = 1;
}

static void conn_stop_reading(struct conn *c)
{
    if (!c->reading)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    (void)buf;
    if (c->closed)
        return;
    if (nread == UV_ENOBUFS) {
        conn_stop_reading(c);
        if (c->state == CS_BODY) /* out of memory growing the body */
            conn_error(c, 503, "out of memory reading the request body");
        return;
    }
    if (nread < 0) {
        /* EOF or error. While a response is in progress this is the client
         * going away (half-closed clients are not supported): abort. */
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    size_t n = (size_t)nread;
    if (c->state == CS_CLOSING)
        return; /* discarded */
    if (c->state == CS_BODY && c->ex->head.body_kind == KZ_HTTP_BODY_LENGTH) {
        c->ex->body_len += n;
    } else {
        c->in_len += n;
    }
    if (c->state == CS_HANDLING)
        return; /* pipelined bytes wait for the response to end */
    if (c->wait_drain)
        return;
    conn_process(c);
}

static void in_consume(struct conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

static void dispatch(struct conn *c)
{
    struct kz_http_req *ex = c->ex;
    struct kz_http_server *srv = c->srv;
    ex->body[ex->body_len] = '\0';
    ex->dispatched = 1;
    c->state = CS_HANDLING;
    srv->stats.requests++;
    c->in_handler = 1;
    srv->handler(srv->user, ex, &ex->res);
    c->in_handler = 0;
}

/* Appends decoded chunk data to the body, enforcing max_body. */
static int body_append(struct conn *c, const char *p, size_t n)
{
    struct kz_http_req *ex = c->ex;
    size_t max = c->srv->cfg.max_body;
    if (n > max - ex->body_len)
        return -1;
    if (ex->body_len + n + 1 > ex->body_cap) {
        size_t cap = ex->body_cap ? ex->body_cap : 4096;
        while (cap < ex->body_len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        char *nb = kz_realloc(ex->body, cap);
        if (!nb)
            return -2;
        ex->body = nb;
        ex->body_cap = cap;
    }
    memcpy(ex->body + ex->body_len, p, n);
    ex->body_len += n;
    return 0;
}

/* Starts a request whose head is in->[0..head_len). Returns 0 to go on,
 * -1 when the connection was answered/closed. */
static int start_request(struct conn *c, size_t head_len)
{
    struct kz_http_server *srv = c->srv;
    size_t n_hdr = c->scan.n_lines ? c->scan.n_lines - 1 : 0;
    if (n_hdr > srv->cfg.limits.max_headers)
        n_hdr = srv->cfg.limits.max_headers;
    struct kz_http_req *ex = ex_new(c, head_len, n_hdr);
    if (!ex) {
        conn_error(c, 503, "out of memory");
        return -1;
    }
    c->ex = ex;
    in_consume(c, head_len);
    kz_http_scan_reset(&c->scan);
    c->head_start = 0;
    int r = kz_http_parse_head(ex->raw, head_len, ex->headers, n_hdr, &ex->head);
    if (r < 0) {
        conn_error(c, ex->head.err_status, ex->head.err_msg);
        return -1;
    }
    ex->id = ++srv->next_id;
    c->keep_alive = ex->head.keep_alive;
    ex->res.head_only = kz_slice_eq(ex->head.method, "HEAD");
    c->body_start = uv_now(srv->loop);

    size_t first = 4096;
    if (ex->head.body_kind == KZ_HTTP_BODY_LENGTH) {
        if (ex->head.content_length > srv->cfg.max_body) {
            conn_error(c, 413, "request body too large");
            return -1;
        }
        if (first > ex->head.content_length)
            first = (size_t)ex->head.content_length;
    } else if (ex->head.body_kind == KZ_HTTP_BODY_NONE) {
        first = 0;
    }
    ex->body = kz_malloc(first + 1);
    if (!ex->body) {
        conn_error(c, 503, "out of memory");
        return -1;
    }
    ex->body_cap = first + 1;
    if (ex->head.body_kind == KZ_HTTP_BODY_NONE) {
        dispatch(c);
        return 0;
    }
    c->state = CS_BODY;
    if (ex->head.body_kind == KZ_HTTP_BODY_CHUNKED)
        kz_http_chunked_init(&c->chunked);
    else {
        size_t cl = (size_t)ex->head.content_length;
        size_t take = c->in_len < cl ? c->in_len : cl;
        if (take && body_append(c, c->in, take) != 0) {
            conn_error(c, 503, "out of memory");
            return -1;
        }
        in_consume(c, take);
    }
    if (ex->head.expect_continue && ex->head.minor_version == 1 && c->in_len == 0 &&
        (ex->head.body_kind == KZ_HTTP_BODY_CHUNKED || ex->body_len < ex->head.content_length)) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (conn_write1(c, cont, sizeof cont - 1) != KZ_OK)
            return -1;
    }
    return 0;
}

/* Parses and dispatches what is buffered, as far as it goes. */
static void conn_process(struct conn *c)
{
    struct kz_http_server *srv = c->srv;
    for (;;) {
        if (c->closed || c->state == CS_CLOSING || c->wait_drain)
            return;
        if (c->state == CS_HEAD) {
            if (c->in_len == 0) {
                if (srv->stopping) {
                    conn_begin_close(c);
                    return;
                }
                conn_start_reading(c);
                return;
            }
            if (c->head_start == 0)
                c->head_start = uv_now(srv->loop);
            struct kz_http_head tmp;
            int n = kz_http_scan_head(c->in, c->in_len, &srv->cfg.limits, &c->scan, &tmp);
            if (n == -2) {
                conn_start_reading(c);
                return;
            }
            if (n < 0) {
                conn_error(c, tmp.err_status, tmp.err_msg);
                return;
            }
            if (start_request(c, (size_t)n) != 0)
                return;
            continue; /* dispatched, or reading the body */
        }
        if (c->state == CS_BODY) {
            struct kz_http_req *ex = c->ex;
            if (ex->head.body_kind == KZ_HTTP_BODY_LENGTH) {
                if (ex->body_len == ex->head.content_length) {
                    dispatch(c);
                    continue;
                }
                conn_start_reading(c);
                return;
            }
            size_t used = 0;
            while (used < c->in_len && !kz_http_chunked_done(&c->chunked)) {
                struct kz_slice d;
                long r = kz_http_chunked_step(&c->chunked, c->in + used, c->in_len - used, &d);
                if (r < 0) {
                    conn_error(c, 400, "malformed chunked body");
                    return;
                }
                if (r == 0)
                    break;
                used += (size_t)r;
                if (d.len) {
                    int e = body_append(c, d.p, d.len);
                    if (e == -1) {
                        conn_error(c, 413, "request body too large");
                        return;
                    }
                    if (e < 0) {
                        conn_error(c, 503, "out of memory");
                        return;
                    }
                }
                if (kz_http_chunked_pending(&c->chunked) > srv->cfg.max_body - ex->body_len) {
                    conn_error(c, 413, "request body too large");
                    return;
                }
            }
            in_consume(c, used);
            if (kz_http_chunked_done(&c->chunked)) {
                dispatch(c);
                continue;
            }
            conn_start_reading(c);
            return;
        }
        /* CS_HANDLING: keep reading (to notice a disconnect) while there is
         * room; the bytes wait for the response to end. */
        conn_start_reading(c);
        return;
    }
}

// ---------------------------------------------------------------- accepting

static int count_same_addr(struct kz_http_server *srv, const char *addr)
{
    int n = 0;
    for (struct conn *c = srv->conns; c; c = c->next)
        if (!c->closed && strcmp(c->addr, addr) == 0)
            n++;
    return n;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct kz_http_server *srv = server->data;
    if (status < 0 || srv->stopping)
        return;
    struct conn *c = kz_calloc(1, sizeof *c);
    if (!c)
        return; /* the kernel keeps it in the backlog; try on the next one */
    c->srv = srv;
    if (uv_tcp_init(srv->loop, &c->tcp) < 0) {
        kz_free(c);
        return;
    }
    c->tcp.data = c;
    /* Linked first so that on_conn_closed can always unlink. */
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    srv->stats.active = srv->n_conns;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    srv->stats.accepted++;
    struct sockaddr_storage ss;
    int sl = (int)sizeof ss;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)(const void *)&ss;
            uv_ip6_name(a6, c->addr, sizeof c->addr);
            c->port = ntohs(a6->sin6_port);
        } else {
            const struct sockaddr_in *a4 = (const struct sockaddr_in *)(const void *)&ss;
            uv_ip4_name(a4, c->addr, sizeof c->addr);
            c->port = ntohs(a4->sin_port);
        }
    }
    c->idle_since = c->last_write = uv_now(srv->loop);
    c->state = CS_HEAD;
    if (srv->n_conns > srv->cfg.max_connections ||
        (srv->cfg.max_connections_per_ip && count_same_addr(srv, c->addr) > (int)srv->cfg.max_connections_per_ip)) {
        /* Over capacity: a best-effort 503 in one non-blocking write, then close. */
        static const char busy_body[] = "{\"error\":{\"message\":\"too many connections\","
                                        "\"type\":\"server_error\",\"param\":null,\"code\":\"server_busy\"}}";
        char busy[512];
        int k = snprintf(busy, sizeof busy,
                         "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         sizeof busy_body - 1, busy_body);
        srv->stats.rejected++;
        uv_buf_t b = mkbuf(busy, (size_t)k);
        (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    conn_start_reading(c);
}

// ---------------------------------------------------------------- timers

static void sweep_conn(struct kz_http_server *srv, struct conn *c, uint64_t now)
{
    const struct kz_http_config *cfg = &srv->cfg;
    if (c->closed)
        return;
    if (c->queued > 0 && now - c->last_write >= cfg->write_timeout_ms) {
        srv->stats.timeouts++;
        conn_close(c);
        return;
    }
    switch (c->state) {
    case CS_HEAD:
        if (c->wait_drain)
            return;
        if (c->in_len == 0) {
            unsigned lim = c->n_requests ? cfg->keepalive_timeout_ms : cfg->header_timeout_ms;
            if (now - c->idle_since >= lim) {
                srv->stats.timeouts++;
                if (c->queued)
                    conn_begin_close(c);
                else
                    conn_close(c);
            }
        } else if (c->head_start && now - c->head_start >= cfg->header_timeout_ms) {
            srv->stats.timeouts++;
            conn_error(c, 408, "timed out reading the request head");
        }
        return;
    case CS_BODY: {
        uint64_t el = now - c->body_start;
        if (el >= cfg->body_timeout_ms) {
            srv->stats.timeouts++;
            conn_error(c, 408, "timed out reading the request body");
        } else if (cfg->body_min_rate && el >= cfg->body_rate_grace_ms &&
                   (uint64_t)c->ex->body_len * 1000u < (uint64_t)cfg->body_min_rate * el) {
            srv->stats.timeouts++;
            conn_error(c, 408, "request body arriving too slowly");
        }
        return;
    }
    case CS_HANDLING:
        return;
    case CS_CLOSING:
        if (c->linger_until && now >= c->linger_until)
            conn_close(c);
        return;
    }
}

static void on_sweep(uv_timer_t *t)
{
    struct kz_http_server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    struct conn *c = srv->conns;
    while (c) {
        struct conn *next = c->next; /* conn memory outlives this loop (freed on close cb) */
        sweep_conn(srv, c, now);
        c = next;
    }
}

static unsigned sweep_period(const struct kz_http_config *cfg)
{
    unsigned m = cfg->header_timeout_ms;
    unsigned v[] = {cfg->body_timeout_ms, cfg->keepalive_timeout_ms, cfg->write_timeout_ms, cfg->linger_ms};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (v[i] && v[i] < m)
            m = v[i];
    m /= 8;
    if (m < 5)
        m = 5;
    if (m > 500)
        m = 500;
    return m;
}

// ---------------------------------------------------------------- posting

static void run_posts(struct kz_http_server *srv)
{
    pthread_mutex_lock(&srv->post_mu);
    struct post_item *it = srv->post_head;
    srv->post_head = srv->post_tail = NULL;
    pthread_mutex_unlock(&srv->post_mu);
    while (it) {
        struct post_item *next = it->next;
        it->fn(it->arg);
        kz_free(it);
        it = next;
    }
}

/* Parses the next request of connections whose response ended outside the
 * handler: deferred to here so that kz_http_res_end never calls a handler. */
static void run_pending(struct kz_http_server *srv)
{
    while (srv->pending) {
        struct conn *c = srv->pending;
        pending_unlink(c);
        conn_process(c);
    }
}

static void on_async(uv_async_t *a) { run_posts(a->data); }

static void on_turn(uv_check_t *h)
{
    struct kz_http_server *srv = h->data;
    run_pending(srv);
    uv_check_stop(&srv->turn);
    uv_idle_stop(&srv->nowait);
}

/* Only there to keep the loop from sleeping; on_turn does the work. */
static void on_nowait(uv_idle_t *h) { (void)h; }

static void conn_schedule(struct conn *c)
{
    struct kz_http_server *srv = c->srv;
    if (c->is_pending || c->closed)
        return;
    c->is_pending = 1;
    c->pend_prev = NULL;
    c->pend_next = srv->pending;
    if (srv->pending)
        srv->pending->pend_prev = c;
    srv->pending = c;
    /* A check and an idle handle instead of a self-sent async: no eventfd
     * write and read per request. The check runs in this loop turn when the
     * response ended in an I/O callback; the idle makes the poll of the next
     * turn return at once when it ended anywhere else. */
    if (!srv->finished) {
        uv_check_start(&srv->turn, on_turn);
        uv_idle_start(&srv->nowait, on_nowait);
    }
}

kz_status kz_http_server_post(struct kz_http_server *srv, kz_http_post_fn fn, void *arg)
{
    struct post_item *it = kz_malloc(sizeof *it);
    if (!it)
        return KZ_ENOMEM;
    it->fn = fn;
    it->arg = arg;
    it->next = NULL;
    pthread_mutex_lock(&srv->post_mu);
    if (srv->post_closed) {
        pthread_mutex_unlock(&srv->post_mu);
        kz_free(it);
        return KZ_EIO;
    }
    if (srv->post_tail)
        srv->post_tail->next = it;
    else
        srv->post_head = it;
    srv->post_tail = it;
    /* Under the lock, so the handle cannot be closed in between. */
    uv_async_send(&srv->async);
    pthread_mutex_unlock(&srv->post_mu);
    return KZ_OK;
}

// ---------------------------------------------------------------- server

static void on_handle_closed(uv_handle_t *h)
{
    struct kz_http_server *srv = h->data;
    srv->open_handles--;
}

static void close_handle(struct kz_http_server *srv, uv_handle_t *h)
{
    (void)srv;
    if (!uv_is_closing(h))
        uv_close(h, on_handle_closed);
}

static void server_maybe_finish(struct kz_http_server *srv)
{
    if (!srv->stopping || srv->finished || srv->n_conns > 0)
        return;
    srv->finished = 1;
    close_handle(srv, (uv_handle_t *)&srv->sweep);
    close_handle(srv, (uv_handle_t *)&srv->drain);
    pthread_mutex_lock(&srv->post_mu);
    srv->post_closed = 1;
    pthread_mutex_unlock(&srv->post_mu);
    close_handle(srv, (uv_handle_t *)&srv->async);
    close_handle(srv, (uv_handle_t *)&srv->turn);
    close_handle(srv, (uv_handle_t *)&srv->nowait);
    run_posts(srv); /* the last ones: nothing can be queued after post_closed */
}

static void on_drain_timeout(uv_timer_t *t)
{
    struct kz_http_server *srv = t->data;
    struct conn *c = srv->conns;
    while (c) {
        struct conn *next = c->next;
        conn_close(c);
        c = next;
    }
    server_maybe_finish(srv);
}

void kz_http_server_stop_graceful(struct kz_http_server *srv, unsigned drain_timeout_ms)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    if (srv->listening)
        close_handle(srv, (uv_handle_t *)&srv->listener);
    if (srv->have_signals) {
        close_handle(srv, (uv_handle_t *)&srv->sig_int);
        close_handle(srv, (uv_handle_t *)&srv->sig_term);
    }
    struct conn *c = srv->conns;
    while (c) {
        struct conn *next = c->next;
        if (!c->closed && c->state == CS_HEAD) {
            /* No request in flight (a partial head is not one). */
            if (c->queued)
                conn_begin_close(c);
            else
                conn_close(c);
        }
        c = next;
    }
    uv_timer_start(&srv->drain, on_drain_timeout, drain_timeout_ms, 0);
    server_maybe_finish(srv);
}

void kz_http_server_stop(struct kz_http_server *srv) { kz_http_server_stop_graceful(srv, 0); }

static void on_signal(uv_signal_t *s, int signum)
{
    struct kz_http_server *srv = s->data;
    (void)signum;
    kz_http_server_stop_graceful(srv, srv->signal_drain_ms);
}

kz_status kz_http_server_handle_signals(struct kz_http_server *srv, unsigned drain_timeout_ms, struct kz_err *err)
{
    if (srv->have_signals || srv->stopping)
        return kz_err_set(err, KZ_EINVAL, "http: signal handlers already installed or server stopping");
    srv->signal_drain_ms = drain_timeout_ms;
    uv_signal_init(srv->loop, &srv->sig_int);
    uv_signal_init(srv->loop, &srv->sig_term);
    srv->sig_int.data = srv->sig_term.data = srv;
    srv->open_handles += 2;
    srv->have_signals = 1;
    int e = uv_signal_start(&srv->sig_int, on_signal, SIGINT);
    if (e == 0)
        e = uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
    if (e < 0)
        return kz_err_set(err, KZ_EIO, "http: uv_signal_start: %s", uv_strerror(e));
    return KZ_OK;
}

kz_status kz_http_server_new(uv_loop_t *loop, const struct kz_http_config *cfg, kz_http_handler_fn handler,
                             void *user, struct kz_http_server **out, struct kz_err *err)
{
    kz_status rc = KZ_OK;
    struct kz_http_server *srv = NULL;
    *out = NULL;
    /* A write to a socket the peer has closed must come back as EPIPE, not
     * kill the process: libuv leaves SIGPIPE at its default action. */
    signal(SIGPIPE, SIG_IGN);
    if (!loop || !cfg || !handler)
        return kz_err_set(err, KZ_EINVAL, "http: loop, config and handler are required");
    if (!cfg->limits.max_request_line || !cfg->limits.max_header_line || !cfg->limits.max_header_bytes ||
        !cfg->limits.max_headers || cfg->limits.max_request_line > (1u << 20) ||
        cfg->limits.max_header_bytes > (1u << 24) || cfg->limits.max_headers > 100000)
        return kz_err_set(err, KZ_EINVAL, "http: header limits must be non-zero and sane");
    if (!cfg->max_body || cfg->max_body > ((size_t)1 << 40))
        return kz_err_set(err, KZ_EINVAL, "http: max_body must be in 1..2^40");
    if (!cfg->header_timeout_ms || !cfg->body_timeout_ms || !cfg->keepalive_timeout_ms ||
        !cfg->write_timeout_ms)
        return kz_err_set(err, KZ_EINVAL, "http: timeouts must be non-zero");
    if (!cfg->max_connections || !cfg->write_high_water || cfg->write_hard_cap < cfg->write_high_water)
        return kz_err_set(err, KZ_EINVAL, "http: max_connections and write_high_water must be non-zero, "
                                          "write_hard_cap >= write_high_water");
    if (cfg->port < 0 || cfg->port > 65535)
        return kz_err_set(err, KZ_EINVAL, "http: port %d out of range", cfg->port);
    srv = kz_calloc(1, sizeof *srv);
    if (!srv)
        return kz_err_set(err, KZ_ENOMEM, "http: out of memory");
    srv->loop = loop;
    srv->cfg = *cfg;
    srv->handler = handler;
    srv->user = user;
    srv->host = kz_strdup(cfg->host ? cfg->host : "127.0.0.1");
    if (!srv->host) {
        rc = kz_err_set(err, KZ_ENOMEM, "http: out of memory");
        goto out;
    }
    srv->cfg.host = srv->host;
    /* Room for the largest head the limits let through, and a little more. */
    srv->in_max = cfg->limits.max_request_line + cfg->limits.max_header_bytes + 64;
    if (pthread_mutex_init(&srv->post_mu, NULL) != 0) {
        rc = kz_err_set(err, KZ_EIO, "http: pthread_mutex_init failed");
        goto out;
    }
    uv_timer_init(loop, &srv->sweep);
    uv_timer_init(loop, &srv->drain);
    uv_check_init(loop, &srv->turn);
    uv_idle_init(loop, &srv->nowait);
    srv->sweep.data = srv->drain.data = srv;
    srv->turn.data = srv->nowait.data = srv;
    srv->open_handles += 4;
    int e = uv_async_init(loop, &srv->async, on_async);
    if (e < 0) {
        /* Nothing the loop holds yet besides the timers: close them and run
         * the loop briefly so their memory can go. */
        close_handle(srv, (uv_handle_t *)&srv->sweep);
        close_handle(srv, (uv_handle_t *)&srv->drain);
        close_handle(srv, (uv_handle_t *)&srv->turn);
        close_handle(srv, (uv_handle_t *)&srv->nowait);
        while (srv->open_handles)
            uv_run(loop, UV_RUN_NOWAIT);
        pthread_mutex_destroy(&srv->post_mu);
        rc = kz_err_set(err, KZ_EIO, "http: uv_async_init: %s", uv_strerror(e));
        goto out;
    }
    srv->async.data = srv;
    srv->open_handles++;
    unsigned period = sweep_period(cfg);
    uv_timer_start(&srv->sweep, on_sweep, period, period);
    *out = srv;
    srv = NULL;
out:
    if (srv) {
        kz_free(srv->host);
        kz_free(srv);
    }
    return rc;
}

kz_status kz_http_server_listen(struct kz_http_server *srv, struct kz_err *err)
{
    struct sockaddr_storage ss;
    int e;
    if (srv->listening || srv->stopping)
        return kz_err_set(err, KZ_EINVAL, "http: already listening or stopping");
    if (strchr(srv->host, ':'))
        e = uv_ip6_addr(srv->host, srv->cfg.port, (struct sockaddr_in6 *)(void *)&ss);
    else
        e = uv_ip4_addr(srv->host, srv->cfg.port, (struct sockaddr_in *)(void *)&ss);
    if (e < 0)
        return kz_err_set(err, KZ_EINVAL, "http: bad listen address \"%s\": %s", srv->host, uv_strerror(e));
    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    srv->open_handles++;
    srv->listening = 1;
    e = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
    if (e == 0)
        e = uv_listen((uv_stream_t *)&srv->listener, srv->cfg.backlog, on_connection);
    if (e < 0) {
        close_handle(srv, (uv_handle_t *)&srv->listener);
        srv->listening = 0;
        return kz_err_set(err, KZ_EIO, "http: cannot listen on %s:%d: %s", srv->host, srv->cfg.port,
                          uv_strerror(e));
    }
    struct sockaddr_storage bound;
    int bl = (int)sizeof bound;
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &bl) == 0) {
        if (bound.ss_family == AF_INET6)
            srv->port = ntohs(((const struct sockaddr_in6 *)(const void *)&bound)->sin6_port);
        else
            srv->port = ntohs(((const struct sockaddr_in *)(const void *)&bound)->sin_port);
    }
    return KZ_OK;
}

int kz_http_server_port(const struct kz_http_server *srv) { return srv->port; }

void kz_http_server_stats(const struct kz_http_server *srv, struct kz_http_stats *out) { *out = srv->stats; }

void kz_http_server_free(struct kz_http_server *srv)
{
    if (!srv)
        return;
    if (!srv->finished || srv->open_handles > 0) {
        kz_http_server_stop(srv);
        while (!srv->finished || srv->open_handles > 0)
            uv_run(srv->loop, UV_RUN_NOWAIT);
    }
    pthread_mutex_destroy(&srv->post_mu);
    kz_free(srv->host);
    kz_free(srv);
}

// ---------------------------------------------------------------- request accessors

struct kz_slice kz_http_req_method(const struct kz_http_req *req) { return req->head.method; }
struct kz_slice kz_http_req_target(const struct kz_http_req *req) { return req->head.target; }
struct kz_slice kz_http_req_path(const struct kz_http_req *req) { return req->head.path; }

struct kz_slice kz_http_req_query(const struct kz_http_req *req)
{
    struct kz_slice q = req->head.query;
    if (!q.p)
        q.p = "";
    return q;
}

int kz_http_req_minor_version(const struct kz_http_req *req) { return req->head.minor_version; }

int kz_http_req_header(const struct kz_http_req *req, const char *name, struct kz_slice *value)
{
    return kz_http_head_find(&req->head, name, value);
}

size_t kz_http_req_n_headers(const struct kz_http_req *req) { return req->head.n_headers; }

const struct kz_http_header *kz_http_req_header_at(const struct kz_http_req *req, size_t i)
{
    KZ_ASSERT(i < req->head.n_headers);
    return &req->head.headers[i];
}

const char *kz_http_req_body(const struct kz_http_req *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body ? req->body : "";
}

const char *kz_http_req_remote_addr(const struct kz_http_req *req) { return req->addr; }

int kz_http_req_remote_port(const struct kz_http_req *req) { return req->port; }

uint64_t kz_http_req_id(const struct kz_http_req *req) { return req->id; }

struct kz_http_res *kz_http_req_res(struct kz_http_req *req) { return &req->res; }
struct kz_http_req *kz_http_res_req(struct kz_http_res *res) { return res_ex(res); }

// ---------------------------------------------------------------- responses

static int header_name_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!kz_http_is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

static int header_value_ok(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

static int ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a, y = *b;
        if (x >= 'A' && x <= 'Z')
            x = (char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (char)(y + 32);
        if (x != y)
            return 0;
    }
    return *a == *b;
}

kz_status kz_http_res_add_header(struct kz_http_res *res, const char *name, const char *value)
{
    if (res->state != RS_NEW)
        return res->state == RS_ABORTED ? KZ_EIO : KZ_EINVAL;
    if (!header_name_ok(name) || !header_value_ok(value) || ieq(name, "content-length") ||
        ieq(name, "transfer-encoding") || ieq(name, "connection"))
        return KZ_EINVAL;
    size_t nl = strlen(name), vl = strlen(value), need = nl + vl + 4;
    if (need > RES_MAX_EXTRA_HEADERS - res->hdrs_len)
        return KZ_ELIMIT;
    if (res->hdrs_len + need > res->hdrs_cap) {
        size_t cap = res->hdrs_cap ? res->hdrs_cap : 256;
        while (cap < res->hdrs_len + need)
            cap *= 2;
        char *np = kz_realloc(res->hdrs, cap);
        if (!np)
            return KZ_ENOMEM;
        res->hdrs = np;
        res->hdrs_cap = cap;
    }
    char *p = res->hdrs + res->hdrs_len;
    memcpy(p, name, nl);
    memcpy(p + nl, ": ", 2);
    memcpy(p + nl + 2, value, vl);
    memcpy(p + nl + 2 + vl, "\r\n", 2);
    res->hdrs_len += need;
    return KZ_OK;
}

/* The response head. framing: 0 Content-Length, 1 chunked, 2 close-delimited. */
static void build_head(struct tbuf *b, struct kz_http_req *ex, struct conn *c, int status, const char *ctype,
                       int framing, size_t len)
{
    char num[KZ_FMT_INT_SIZE]; /* put by hand, not printed: one head per response */
    tb_str(b, "HTTP/1.1 ");
    tb_put(b, num, kz_fmt_i64(num, status));
    tb_str(b, " ");
    tb_str(b, kz_http_status_reason(status));
    tb_str(b, "\r\n");
    if (ctype) {
        tb_str(b, "Content-Type: ");
        tb_put(b, ctype, strnlen(ctype, 200));
        tb_str(b, "\r\n");
    }
    int no_body = (status >= 100 && status < 200) || status == 204 || status == 304;
    if (framing == 0 && !no_body) {
        tb_str(b, "Content-Length: ");
        tb_put(b, num, kz_fmt_u64(num, len));
        tb_str(b, "\r\n");
    }
    else if (framing == 1)
        tb_str(b, "Transfer-Encoding: chunked\r\n");
    if (framing == 2 || !c->keep_alive || c->srv->stopping) {
        c->keep_alive = 0;
        tb_str(b, "Connection: close\r\n");
    } else if (ex->head.minor_version == 0) {
        tb_str(b, "Connection: keep-alive\r\n");
    }
    if (ex->res.hdrs_len)
        tb_put(b, ex->res.hdrs, ex->res.hdrs_len);
    tb_str(b, "\r\n");
}

static kz_status res_usable(struct kz_http_res *res, enum res_state want)
{
    if (res->state == RS_ABORTED)
        return KZ_EIO;
    if (res->state != want)
        return KZ_EINVAL;
    struct kz_http_req *ex = res_ex(res);
    if (!ex->conn || ex->conn->closed)
        return KZ_EIO;
    return KZ_OK;
}

kz_status kz_http_res_send(struct kz_http_res *res, int status, const char *content_type, const void *body,
                           size_t len)
{
    struct kz_http_req *ex = res_ex(res);
    kz_status rc = res_usable(res, RS_NEW);
    if (res->state == RS_ABORTED)
        res->on_abort = NULL; /* the caller is done with res: no callback after this returns */
    if (rc == KZ_OK && (status < 100 || status > 599))
        rc = KZ_EINVAL;
    if (rc != KZ_OK) {
        /* A send on a live exchange that cannot go out still ends it, so a
         * handler's error path cannot leak the connection's exchange. */
        if (res->state == RS_NEW || res->state == RS_STREAMING) {
            struct conn *c = ex->conn;
            res->state = RS_ENDED;
            if (c && !c->closed) {
                c->keep_alive = 0;
                conn_finish_exchange(c);
            }
        }
        return rc;
    }
    struct conn *c = ex->conn;
    struct tbuf head;
    tb_init(&head, 16384);
    build_head(&head, ex, c, status, content_type, 0, len);
    res->state = RS_ENDED;
    if (head.failed) {
        kz_free(head.p);
        conn_close(c);
        return KZ_ENOMEM;
    }
    int no_body = res->head_only || (status >= 100 && status < 200) || status == 204 || status == 304;
    uv_buf_t b[2] = {mkbuf(head.p, head.len), mkbuf(body, no_body ? 0 : len)};
    rc = conn_write(c, b, no_body || len == 0 ? 1u : 2u, 0);
    kz_free(head.p);
    if (rc == KZ_OK)
        conn_finish_exchange(c);
    return rc;
}

kz_status kz_http_res_send_error(struct kz_http_res *res, int status, const char *type, const char *code,
                                 const char *message)
{
    struct tbuf body;
    tb_init(&body, 65536);
    build_error_json(&body, status, type, code, message);
    kz_status rc;
    if (body.failed)
        rc = kz_http_res_send(res, 500, "application/json",
                              "{\"error\":{\"message\":\"error too long\",\"type\":\"server_error\","
                              "\"param\":null,\"code\":null}}",
                              86);
    else
        rc = kz_http_res_send(res, status, "application/json", body.p, body.len);
    kz_free(body.p);
    return rc;
}

kz_status kz_http_res_stream_start(struct kz_http_res *res, int status, const char *content_type)
{
    kz_status rc = res_usable(res, RS_NEW);
    if (rc != KZ_OK)
        return rc;
    if (status < 200 || status > 599 || status == 204 || status == 304)
        return KZ_EINVAL;
    struct kz_http_req *ex = res_ex(res);
    struct conn *c = ex->conn;
    int framing = ex->head.minor_version == 1 ? 1 : 2;
    res->chunked = framing == 1;
    res->close_delimited = framing == 2;
    struct tbuf head;
    tb_init(&head, 16384);
    build_head(&head, ex, c, status, content_type, framing, 0);
    if (head.failed) {
        kz_free(head.p);
        return KZ_ENOMEM;
    }
    res->state = RS_STREAMING;
    rc = conn_write1(c, head.p, head.len);
    kz_free(head.p);
    return rc;
}

kz_status kz_http_res_sse_start(struct kz_http_res *res, int status)
{
    kz_status rc = res_usable(res, RS_NEW);
    if (rc != KZ_OK)
        return rc;
    /* Added before the head goes out; a failure here leaves res as it was. */
    rc = kz_http_res_add_header(res, "Cache-Control", "no-cache");
    if (rc == KZ_OK)
        rc = kz_http_res_add_header(res, "X-Accel-Buffering", "no");
    if (rc != KZ_OK)
        return rc;
    return kz_http_res_stream_start(res, status, "text/event-stream");
}

kz_status kz_http_res_write(struct kz_http_res *res, const void *data, size_t len, size_t *queued)
{
    kz_status rc = res_usable(res, RS_STREAMING);
    struct kz_http_req *ex = res_ex(res);
    if (queued)
        *queued = 0;
    if (rc != KZ_OK)
        return rc;
    struct conn *c = ex->conn;
    if (len > 0 && !res->head_only) {
        const struct kz_http_config *cfg = &c->srv->cfg;
        char sz[24];
        uv_buf_t b[3];
        unsigned n = 0;
        if (res->chunked) {
            size_t k = kz_fmt_hex(sz, len, 0);
            memcpy(sz + k, "\r\n", 2);
            b[n++] = mkbuf(sz, k + 2);
        }
        b[n++] = mkbuf(data, len);
        if (res->chunked)
            b[n++] = mkbuf("\r\n", 2);
        rc = conn_write(c, b, n, cfg->write_hard_cap);
        if (rc != KZ_OK)
            return rc;
        if (c->queued >= cfg->write_high_water)
            res->drain_armed = 1;
    }
    if (queued)
        *queued = c->queued;
    return KZ_OK;
}

kz_status kz_http_res_end(struct kz_http_res *res)
{
    kz_status rc = res_usable(res, RS_STREAMING);
    struct kz_http_req *ex = res_ex(res);
    if (res->state == RS_ABORTED)
        res->on_abort = NULL; /* the caller is done with res: no callback after this returns */
    if (rc != KZ_OK)
        return rc;
    struct conn *c = ex->conn;
    res->state = RS_ENDED;
    if (res->chunked && !res->head_only) {
        static const char last[] = "0\r\n\r\n";
        rc = conn_write1(c, last, sizeof last - 1);
        if (rc != KZ_OK)
            return rc;
    }
    if (res->close_delimited)
        c->keep_alive = 0;
    conn_finish_exchange(c);
    return KZ_OK;
}

size_t kz_http_res_queued(const struct kz_http_res *res)
{
    const struct kz_http_req *ex = res_cex(res);
    return ex->conn && !ex->conn->closed ? ex->conn->queued : 0;
}

int kz_http_res_over_high_water(const struct kz_http_res *res)
{
    const struct kz_http_req *ex = res_cex(res);
    return ex->conn && !ex->conn->closed && ex->conn->queued >= ex->conn->srv->cfg.write_high_water;
}

int kz_http_res_is_open(const struct kz_http_res *res)
{
    const struct kz_http_req *ex = res_cex(res);
    return (res->state == RS_NEW || res->state == RS_STREAMING) && ex->conn && !ex->conn->closed;
}

void kz_http_res_on_abort(struct kz_http_res *res, kz_http_res_fn fn, void *arg)
{
    res->on_abort = fn;
    res->abort_arg = arg;
}

void kz_http_res_on_drain(struct kz_http_res *res, kz_http_res_fn fn, void *arg)
{
    res->on_drain = fn;
    res->drain_arg = arg;
}

void kz_http_res_ref(struct kz_http_res *res) { res_ex(res)->refs++; }

void kz_http_res_unref(struct kz_http_res *res) { ex_unref(res_ex(res)); }
