/* SPDX-License-Identifier: MIT
 * Connections: reading requests with kyozon's own parser (http/parse.h),
 * and playing scripts byte for byte, including the ways of ending that a
 * real HTTP server would never choose (reset, hang, repeat forever).
 *
 * Invariants:
 *   - One write in flight per connection: the next piece is written (after
 *     its delay) only when the previous write completed, so delays and
 *     one-byte writes really reach the wire separately.
 *   - A connection is freed only when both its handles (TCP and timer) have
 *     closed; callbacks that see it run before that.
 *   - Memory is bounded: a head by the parser's limits, a body by
 *     KZ_MOCK_MAX_BODY (413), input received while answering by IN_MAX_BUSY
 *     (beyond it bytes are dropped and the connection is not reused).
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "http/parse.h"
#include "mock.h"

#define IN_MAX_BUSY (1u << 20)
#define LINGER_MS 1000 /* after our FIN: how long to drain what the client still sends */

enum conn_state { C_HEAD, C_BODY, C_ANSWER };

struct kz_mock_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    uv_shutdown_t shut;
    struct kz_mock_server *srv;
    struct kz_mock_conn *prev, *next;
    int handles;   /* open libuv handles; freed at 0 */
    int closing;
    enum conn_state state;
    char *in;      /* received, not yet consumed */
    size_t in_len, in_cap;
    int dropped;   /* input was discarded: never reuse the connection */
    struct kz_http_scan scan;
    struct kz_mock_req req;
    enum kz_http_body_kind body_kind;
    uint64_t body_need; /* KZ_HTTP_BODY_LENGTH: bytes still to read */
    size_t body_cap;
    struct kz_http_chunked chunked;
    struct kz_mock_script *script;
    size_t next_piece;
    int repeating; /* END_REPEAT reached: the timer resends the last piece */
    int counted;   /* counted in srv->in_flight */
    int lingering; /* FIN sent: discard input until the client's EOF or LINGER_MS */
};

static void process(struct kz_mock_conn *c);
static void write_next(struct kz_mock_conn *c);

// ---------------------------------------------------------------- closing

static void on_handle_closed(uv_handle_t *h)
{
    struct kz_mock_conn *c = h->data;
    if (--c->handles > 0)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    kz_mock_script_free(c->script);
    kz_mock_req_free(&c->req);
    kz_free(c->in);
    kz_free(c);
}

static void uncount(struct kz_mock_conn *c)
{
    if (c->counted) {
        c->srv->in_flight--;
        c->counted = 0;
    }
}

/* reset: close with RST (SO_LINGER 0) instead of FIN. */
static void conn_close(struct kz_mock_conn *c, int reset)
{
    if (c->closing)
        return;
    c->closing = 1;
    uncount(c);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (!reset || uv_tcp_close_reset(&c->tcp, on_handle_closed) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_linger_end(uv_timer_t *t) { conn_close(t->data, 0); }

/* Closing a socket with unread input makes the kernel send RST, which can
 * destroy the answer the client has not read yet (a 413 sent before the
 * body arrived); so after the FIN, read and drop until the client closes. */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct kz_mock_conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c, 0);
        return;
    }
    c->lingering = 1;
    uv_timer_start(&c->timer, on_linger_end, LINGER_MS, 0);
}

/* FIN after the last byte, then close once the client has closed too. */
static void close_clean(struct kz_mock_conn *c)
{
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c, 0);
}

void kz_mock_conn_close_all(struct kz_mock_server *srv)
{
    for (struct kz_mock_conn *c = srv->conns; c; c = c->next)
        conn_close(c, 0);
}

// ---------------------------------------------------------------- writing

static void on_written(uv_write_t *w, int status)
{
    struct kz_mock_conn *c = w->data;
    if (c->closing)
        return;
    if (status < 0) { /* the client went away */
        conn_close(c, 0);
        return;
    }
    if (!c->repeating)
        c->next_piece++;
    write_next(c);
}

static void write_piece(struct kz_mock_conn *c, const struct kz_mock_piece *p)
{
    uv_buf_t b = uv_buf_init(p->data, (unsigned)p->len);
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        conn_close(c, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct kz_mock_conn *c = t->data;
    if (c->closing)
        return;
    if (c->repeating) {
        write_piece(c, &c->script->pieces[c->script->n - 1]);
        return;
    }
    write_piece(c, &c->script->pieces[c->next_piece]);
}

/* The answer is complete (or, for KEEP, may be followed by the next one). */
static void script_done(struct kz_mock_conn *c)
{
    struct kz_mock_script *s = c->script;
    switch (s->end) {
    case KZ_MOCK_END_KEEP:
        uncount(c);
        if (!s->keep_alive || !c->req.keep_alive || c->dropped) {
            close_clean(c);
            return;
        }
        kz_mock_script_free(s);
        c->script = NULL;
        kz_mock_req_free(&c->req);
        c->state = C_HEAD;
        process(c); /* a pipelined request may already be waiting */
        return;
    case KZ_MOCK_END_CLOSE:
        uncount(c);
        close_clean(c);
        return;
    case KZ_MOCK_END_RESET:
        conn_close(c, 1);
        return;
    case KZ_MOCK_END_HANG:
        return; /* stays in flight until the client leaves */
    case KZ_MOCK_END_REPEAT:
        if (s->n == 0)
            return;
        c->repeating = 1;
        uv_timer_start(&c->timer, on_timer, s->repeat_ms, 0);
        return;
    }
}

static void write_next(struct kz_mock_conn *c)
{
    struct kz_mock_script *s = c->script;
    if (c->repeating) {
        uv_timer_start(&c->timer, on_timer, s->repeat_ms, 0);
        return;
    }
    if (c->next_piece == s->n) {
        script_done(c);
        return;
    }
    const struct kz_mock_piece *p = &s->pieces[c->next_piece];
    if (p->delay_ms) {
        uv_timer_start(&c->timer, on_timer, p->delay_ms, 0);
        return;
    }
    write_piece(c, p);
}

static void play(struct kz_mock_conn *c, struct kz_mock_script *s)
{
    c->script = s;
    c->next_piece = 0;
    c->repeating = 0;
    c->state = C_ANSWER;
    write_next(c);
}

/* A request we refuse before routing it: a plain JSON error, then close. */
static void fail(struct kz_mock_conn *c, int status, const char *msg)
{
    json_t *v = json_pack("{s:{s:s, s:s}}", "error", "message", msg, "type", "invalid_request_error");
    struct kz_mock_script *s = kz_mock_respond_json(status, NULL, v, 0);
    if (!s || s->failed) {
        kz_mock_script_free(s);
        conn_close(c, 0);
        return;
    }
    s->end = KZ_MOCK_END_CLOSE;
    play(c, s);
}

static void on_continue_written(uv_write_t *w, int status)
{
    (void)status;
    kz_free(w);
}

// ---------------------------------------------------------------- reading

static void drop_in(struct kz_mock_conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

static char *slice_dup(struct kz_slice s) { return kz_strndup(s.p ? s.p : "", s.p ? s.len : 0); }

/* Copies what the answer builders need out of the parsed head. */
static int take_head(struct kz_mock_conn *c, const struct kz_http_head *h)
{
    struct kz_mock_req *r = &c->req;
    memset(r, 0, sizeof *r);
    r->method = slice_dup(h->method);
    r->path = slice_dup(h->path);
    r->query = slice_dup(h->query);
    r->keep_alive = h->keep_alive;
    r->headers = kz_calloc(h->n_headers ? h->n_headers : 1, sizeof *r->headers);
    if (!r->method || !r->path || !r->query || !r->headers)
        return -1;
    for (size_t i = 0; i < h->n_headers; i++) {
        char *name = slice_dup(h->headers[i].name), *value = slice_dup(h->headers[i].value);
        r->headers[r->n_headers++] = (struct kz_mock_header){name, value};
        if (!name || !value)
            return -1;
        for (char *p = name; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
    return 0;
}

/* Makes room for need bytes in *buf (capacity *cap), at least doubling. */
static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = need < 2 * *cap ? 2 * *cap : need;
    char *b = kz_realloc(*buf, n);
    if (!b)
        return -1;
    *buf = b;
    *cap = n;
    return 0;
}

static int body_append(struct kz_mock_conn *c, const char *p, size_t n)
{
    struct kz_mock_req *r = &c->req;
    if (reserve(&r->body, &c->body_cap, r->body_len + n + 1) != 0)
        return -1;
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return 0;
}

/* Reads the head; 1 when the body comes next, 0 to wait, -1 answered/closed. */
static int read_head(struct kz_mock_conn *c)
{
    struct kz_http_parse_limits lim;
    kz_http_parse_limits_default(&lim);
    struct kz_http_head h;
    memset(&h, 0, sizeof h);
    int r = kz_http_scan_head(c->in, c->in_len, &lim, &c->scan, &h);
    if (r == -2)
        return 0;
    struct kz_http_header hdrs[KZ_HTTP_DEFAULT_MAX_HEADERS];
    if (r >= 0)
        r = kz_http_parse_head(c->in, (size_t)r, hdrs, KZ_HTTP_DEFAULT_MAX_HEADERS, &h);
    if (r < 0) {
        fail(c, h.err_status ? h.err_status : 400, h.err_msg ? h.err_msg : "malformed request");
        return -1;
    }
    if (take_head(c, &h) != 0) {
        fail(c, 500, "out of memory");
        return -1;
    }
    c->body_kind = h.body_kind;
    c->body_need = h.body_kind == KZ_HTTP_BODY_LENGTH ? h.content_length : 0;
    if (c->body_need > KZ_MOCK_MAX_BODY) {
        fail(c, 413, "the request body is larger than mockllm's 8 MiB limit");
        return -1;
    }
    if (h.expect_continue) {
        static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_write_t *w = kz_malloc(sizeof *w);
        uv_buf_t b = uv_buf_init(cont, sizeof cont - 1);
        if (w && uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_continue_written) != 0)
            kz_free(w);
    }
    drop_in(c, (size_t)r);
    kz_http_scan_reset(&c->scan);
    kz_http_chunked_init(&c->chunked);
    c->body_cap = 0;
    c->state = C_BODY;
    return 1;
}

/* Reads body bytes; 1 when complete, 0 to wait, -1 answered/closed. */
static int read_body(struct kz_mock_conn *c)
{
    if (c->body_kind == KZ_HTTP_BODY_LENGTH) {
        size_t k = c->in_len < c->body_need ? c->in_len : (size_t)c->body_need;
        if (k && body_append(c, c->in, k) != 0) {
            fail(c, 500, "out of memory");
            return -1;
        }
        drop_in(c, k);
        c->body_need -= k;
        return c->body_need == 0;
    }
    if (c->body_kind == KZ_HTTP_BODY_CHUNKED) {
        while (!kz_http_chunked_done(&c->chunked)) {
            struct kz_slice data;
            long used = kz_http_chunked_step(&c->chunked, c->in, c->in_len, &data);
            if (used < 0) {
                fail(c, 400, "malformed chunked request body");
                return -1;
            }
            if (c->req.body_len + data.len + kz_http_chunked_pending(&c->chunked) > KZ_MOCK_MAX_BODY) {
                fail(c, 413, "the request body is larger than mockllm's 8 MiB limit");
                return -1;
            }
            if (data.len && body_append(c, data.p, data.len) != 0) {
                fail(c, 500, "out of memory");
                return -1;
            }
            drop_in(c, (size_t)used);
            if (used == 0)
                break;
        }
        if (!kz_http_chunked_done(&c->chunked))
            return 0;
    }
    if (!c->req.body && body_append(c, "", 0) != 0) { /* builders may rely on a NUL-terminated body */
        fail(c, 500, "out of memory");
        return -1;
    }
    return 1;
}

static void dispatch(struct kz_mock_conn *c)
{
    int counted = 0;
    struct kz_mock_script *s = kz_mock_route(c->srv, &c->req, &counted);
    if (counted) {
        c->counted = 1;
        c->srv->in_flight++;
    }
    if (!s || s->failed) {
        kz_mock_script_free(s);
        uncount(c);
        fail(c, 500, "mockllm ran out of memory building the answer");
        return;
    }
    play(c, s);
}

static void process(struct kz_mock_conn *c)
{
    if (c->closing)
        return;
    if (c->state == C_HEAD) {
        if (c->in_len == 0 || read_head(c) <= 0)
            return;
    }
    if (c->state == C_BODY && read_body(c) == 1)
        dispatch(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char scratch[65536]; /* one loop thread; on_read copies out at once */
    *buf = uv_buf_init(scratch, sizeof scratch);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct kz_mock_conn *c = s->data;
    if (c->closing)
        return;
    if (nread < 0) {
        conn_close(c, 0); /* EOF or error: the client is gone, whatever we were doing */
        return;
    }
    size_t n = (size_t)nread;
    if (c->lingering)
        return;
    if (c->state == C_ANSWER && c->in_len + n > IN_MAX_BUSY) {
        c->dropped = 1;
        return;
    }
    if (reserve(&c->in, &c->in_cap, c->in_len + n) != 0) {
        conn_close(c, 0);
        return;
    }
    memcpy(c->in + c->in_len, buf->base, n);
    c->in_len += n;
    if (c->state != C_ANSWER)
        process(c);
}

void kz_mock_conn_accept(struct kz_mock_server *srv)
{
    struct kz_mock_conn *c = kz_calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c, 0);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1); /* one write, one segment: split_bytes relies on it */
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c, 0);
}
