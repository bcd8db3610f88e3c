/* SPDX-License-Identifier: MIT
 * libcurl multi on a libuv loop (see upstream.h).
 *
 * The glue is the usual one: curl tells us which sockets to watch
 * (socket callback → uv_poll) and when to wake it (timer callback →
 * uv_timer); we hand readiness back with curl_multi_socket_action and then
 * collect finished transfers with curl_multi_info_read.
 *
 * A call is only removed from the multi handle outside curl's callbacks
 * (curl forbids it inside them): a cancel or a stop requested from inside a
 * header/write callback makes that callback return an error, curl ends the
 * transfer, and the removal happens when the transfer is collected.
 *
 * A connection's uv_poll lives as long as its socket, not as long as one
 * transfer: curl says "remove" when a kept-alive connection goes back to its
 * pool and "watch" again when the next call reuses it, and making a new
 * uv_poll each time costs an ioctl and several epoll_ctl calls per request.
 * Connection sockets (marked in the sockopt callback) are closed by curl
 * through our close-socket callback, where their uv_poll is closed first;
 * while pooled they stay watched for reading, and a pooled socket that
 * becomes readable (the peer closed it) is simply no longer watched: curl's
 * own liveness check discards it on reuse. Other sockets curl may watch
 * (a resolver's) are closed on "remove", as curl closes them itself.
 */
#include "router/upstream.h"
#include "router/upstream_int.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/alloc.h"

struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct kz_upstream *u;
    struct sock *prev, *next; /* open ones, so free can close what curl did not */
    int events;               /* what the uv_poll watches now */
    int pooled;               /* curl does not watch it now (kept-alive, between calls) */
};

/* What we know of one socket number. */
struct fd_slot {
    struct sock *s; /* its uv_poll, if it has one */
    int conn;       /* a connection socket curl made: it closes it through on_close_socket */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* the plain client writes with write(2): a peer that closed must give
     * EPIPE, not kill the process (the server sets this too) */
    signal(SIGPIPE, SIG_IGN);
}

static uint64_t now_ms(const struct kz_upstream *u) { return uv_now(u->loop); }

static void check_done(struct kz_upstream *u);

/* ---- easy handles ------------------------------------------------------- */

static CURL *easy_get(struct kz_upstream *u) { return u->n_spare ? u->spare[--u->n_spare] : curl_easy_init(); }

/* Takes back a handle already removed from the multi handle. */
static void easy_put(struct kz_upstream *u, CURL *e)
{
    if (u->n_spare == KZ_UP_SPARE_EASY) {
        curl_easy_cleanup(e);
        return;
    }
    curl_easy_reset(e); /* every option back to its default: nothing of this call leaks into the next */
    u->spare[u->n_spare++] = e;
}

/* ---- finishing ---------------------------------------------------------- */

static void call_freed(uv_handle_t *h)
{
    struct kz_up_call *c = h->data;
    kz_free(c->head);
    kz_free(c);
}

/* Removes the transfer from its transport and reports (unless cancelled). */
void kz_up__finish(struct kz_up_call *c, kz_status rc, const char *msg)
{
    if (c->finished)
        return;
    c->finished = 1;
    struct kz_upstream *u = c->u;
    if (c->easy) {
        curl_multi_remove_handle(u->multi, c->easy);
        easy_put(u, c->easy);
        curl_slist_free_all(c->hdrs);
        c->easy = NULL;
        c->hdrs = NULL;
    }
    kz_h1_detach(c);
    kz_free(c->req);
    c->req = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        u->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    u->active--;
    uv_timer_stop(&c->deadline);
    if (!c->cancelled && c->cbs.on_done) {
        c->cancelled = 1;
        c->cbs.on_done(c->ud, rc, msg);
    }
    uv_close((uv_handle_t *)&c->deadline, call_freed);
}

static void stop_from_cb(struct kz_up_call *c, kz_status rc, const char *msg)
{
    if (!c->stop_rc) {
        c->stop_rc = (int)rc;
        snprintf(c->stop_msg, sizeof c->stop_msg, "%s", msg);
    }
}

/* ---- deadlines ---------------------------------------------------------- */

static uint64_t next_deadline(const struct kz_up_call *c)
{
    uint64_t d = UINT64_MAX;
    if (c->connecting && c->connect_ms)
        d = c->t_start + c->connect_ms;
    if (!c->head_done && c->head_deadline_ms && c->t_start + c->head_deadline_ms < d)
        d = c->t_start + c->head_deadline_ms;
    if (c->idle_ms && c->head_done && c->t_last + c->idle_ms < d)
        d = c->t_last + c->idle_ms;
    if (c->total_ms && c->t_start + c->total_ms < d)
        d = c->t_start + c->total_ms;
    return d;
}


static void on_deadline(uv_timer_t *t);

void kz_up__rearm(struct kz_up_call *c)
{
    uint64_t d = next_deadline(c), now = now_ms(c->u);
    if (d != UINT64_MAX)
        uv_timer_start(&c->deadline, on_deadline, d > now ? d - now : 0, 0);
    else
        uv_timer_stop(&c->deadline);
}

static void on_deadline(uv_timer_t *t)
{
    struct kz_up_call *c = t->data;
    uint64_t now = now_ms(c->u);
    char msg[160];
    if (c->connecting && c->connect_ms && now >= c->t_start + c->connect_ms) {
        snprintf(msg, sizeof msg, "cannot connect within %llu ms", (unsigned long long)c->connect_ms);
        kz_up__finish(c, KZ_ENOTFOUND, msg); /* like curl's connect timeout: the request never left */
        return;
    }
    if (!c->head_done && c->head_deadline_ms && now >= c->t_start + c->head_deadline_ms)
        snprintf(msg, sizeof msg, "no response head within %llu ms", (unsigned long long)c->head_deadline_ms);
    else if (c->total_ms && now >= c->t_start + c->total_ms)
        snprintf(msg, sizeof msg, "no complete response within %llu ms", (unsigned long long)c->total_ms);
    else if (c->head_done && c->idle_ms && now >= c->t_last + c->idle_ms)
        snprintf(msg, sizeof msg, "the response stalled for %llu ms", (unsigned long long)c->idle_ms);
    else { /* data arrived since: sleep until the new deadline */
        kz_up__rearm(c);
        return;
    }
    kz_up__finish(c, KZ_EIO, msg);
}

/* ---- curl callbacks ------------------------------------------------------ */

size_t kz_up__head_line(struct kz_up_call *c, const char *p, size_t len)
{
    if (c->cancelled || c->stop_rc)
        return 0;
    c->t_last = now_ms(c->u);
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new head (after 1xx too) */
        c->head_len = 0;
        const char *sp = memchr(p, ' ', len);
        c->status = sp && (size_t)(sp - p) + 4 <= len ? atoi(sp + 1) : 0;
        return len;
    }
    if (len <= 2 && (len == 0 || p[0] == '\r' || p[0] == '\n')) { /* end of a head */
        if (c->status < 200)
            return len; /* interim response: the real head follows */
        c->head_done = 1;
        kz_up__rearm(c); /* from the head deadline to the idle one */
        if (!c->head && !(c->head = kz_malloc(1)))
            return 0;
        c->head[c->head_len] = '\0';
        struct kz_up_head h = {c->status, c->head, c->head_len};
        if (c->cbs.on_head) {
            c->in_cb = 1;
            int stop = c->cbs.on_head(c->ud, &h);
            c->in_cb = 0;
            if (stop)
                stop_from_cb(c, KZ_EINVAL, "stopped by the caller");
        }
        return c->cancelled || c->stop_rc ? 0 : len;
    }
    if (c->head_len + len + 1 > KZ_UP_MAX_HEAD) {
        stop_from_cb(c, KZ_EPROTO, "upstream response head larger than 64 KiB");
        return 0;
    }
    if (c->head_len + len + 1 > c->head_cap) {
        size_t cap = c->head_cap ? c->head_cap * 2 : 1024;
        while (cap < c->head_len + len + 1)
            cap *= 2;
        char *nh = kz_realloc(c->head, cap);
        if (!nh) {
            stop_from_cb(c, KZ_ENOMEM, "out of memory");
            return 0;
        }
        c->head = nh;
        c->head_cap = cap;
    }
    memcpy(c->head + c->head_len, p, len);
    c->head_len += len;
    c->head[c->head_len] = '\0';
    return len;
}

size_t kz_up__body(struct kz_up_call *c, const char *p, size_t len)
{
    if (c->cancelled || c->stop_rc)
        return 0;
    c->t_last = now_ms(c->u);
    if (c->cbs.on_data && len) {
        c->in_cb = 1;
        int stop = c->cbs.on_data(c->ud, p, len);
        c->in_cb = 0;
        if (stop)
            stop_from_cb(c, KZ_EINVAL, "stopped by the caller");
    }
    return c->cancelled || c->stop_rc ? 0 : len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) { return kz_up__head_line(ud, p, size * n); }
static size_t on_write(char *p, size_t size, size_t n, void *ud) { return kz_up__body(ud, p, size * n); }

static void sock_closed(uv_handle_t *h) { kz_free(h->data); }

/* The slot of socket fd, grown on demand; NULL when memory is short. */
static struct fd_slot *fd_slot(struct kz_upstream *u, curl_socket_t fd)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= u->n_fds) {
        size_t n = u->n_fds ? u->n_fds : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct fd_slot *t = kz_realloc(u->fds, n * sizeof *t);
        if (!t)
            return NULL;
        memset(t + u->n_fds, 0, (n - u->n_fds) * sizeof *t);
        u->fds = t;
        u->n_fds = n;
    }
    return &u->fds[fd];
}

static void sock_close(struct sock *s)
{
    struct kz_upstream *u = s->u;
    if (s->prev)
        s->prev->next = s->next;
    else
        u->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if ((size_t)s->fd < u->n_fds && u->fds[s->fd].s == s)
        u->fds[s->fd].s = NULL;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void sock_watch(struct sock *s, int events);

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *s = h->data;
    struct kz_upstream *u = s->u;
    if (s->pooled) { /* closed by the peer, or bytes nobody asked for: curl's reuse check sees it */
        sock_watch(s, 0);
        return;
    }
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(u->multi, s->fd, flags, &running);
    check_done(u);
}

/* Watches for events (UV_* flags, 0: none); no system call when unchanged. */
static void sock_watch(struct sock *s, int events)
{
    if (events == s->events)
        return;
    s->events = events;
    if (events)
        uv_poll_start(&s->poll, events, on_poll);
    else
        uv_poll_stop(&s->poll);
}

static struct sock *sock_new(struct kz_upstream *u, curl_socket_t fd, struct fd_slot *slot)
{
    struct sock *s = kz_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fd = fd;
    s->u = u;
    if (uv_poll_init_socket(u->loop, &s->poll, fd) != 0) {
        kz_free(s);
        return NULL;
    }
    s->poll.data = s;
    uv_unref((uv_handle_t *)&s->poll);
    s->next = u->socks;
    if (u->socks)
        u->socks->prev = s;
    u->socks = s;
    if (slot)
        slot->s = s;
    return s;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct kz_upstream *u = userp;
    struct fd_slot *slot = fd_slot(u, fd);
    struct sock *s = socketp ? socketp : slot ? slot->s : NULL;
    if (what == CURL_POLL_REMOVE) {
        if (s && slot && slot->conn) {
            s->pooled = 1; /* kept until curl closes the socket */
            sock_watch(s, s->events ? UV_READABLE : 0);
        } else if (s) {
            sock_close(s);
        }
        return 0;
    }
    if (!s && !(s = sock_new(u, fd, slot)))
        return -1;
    s->pooled = 0;
    curl_multi_assign(u->multi, fd, s);
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    sock_watch(s, ev);
    return 0;
}

/* Every connection socket curl makes comes through here (after socket()). */
static int on_sockopt(void *userp, curl_socket_t fd, curlsocktype purpose)
{
    struct fd_slot *slot = purpose == CURLSOCKTYPE_IPCXN ? fd_slot(userp, fd) : NULL;
    if (slot) /* without a slot it is handled like any other socket: closed on "remove" */
        slot->conn = 1;
    return CURL_SOCKOPT_OK;
}

/* curl closes its connection sockets here: the uv_poll goes first, as
 * libuv requires of a descriptor it watches. */
static int on_close_socket(void *userp, curl_socket_t fd)
{
    struct kz_upstream *u = userp;
    struct fd_slot *slot = (size_t)fd < u->n_fds ? &u->fds[fd] : NULL;
    if (slot) {
        if (slot->s)
            sock_close(slot->s);
        slot->conn = 0;
    }
    return close(fd);
}

static void on_curl_timer(uv_timer_t *t)
{
    struct kz_upstream *u = t->data;
    int running;
    curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(u);
}

static int on_timer_change(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct kz_upstream *u = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&u->timer);
    else /* 0 means "now", but socket_action may not be called from here: next loop turn */
        uv_timer_start(&u->timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void check_done(struct kz_upstream *u)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(u->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct kz_up_call *c = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        CURLcode res = m->data.result;
        if (!c)
            continue;
        if (c->stop_rc)
            kz_up__finish(c, (kz_status)c->stop_rc, c->stop_msg);
        else if (res == CURLE_OK)
            kz_up__finish(c, KZ_OK, NULL);
        else {
            char msg[CURL_ERROR_SIZE + 64];
            snprintf(msg, sizeof msg, "%s", c->errbuf[0] ? c->errbuf : curl_easy_strerror(res));
            /* curl's only clock here is the connect timeout (ours cover the
             * rest), so all three mean the request never left */
            int unsent = res == CURLE_COULDNT_CONNECT || res == CURLE_COULDNT_RESOLVE_HOST ||
                         res == CURLE_OPERATION_TIMEDOUT;
            kz_up__finish(c, unsent ? KZ_ENOTFOUND : KZ_EIO, msg);
        }
    }
}

/* ---- public -------------------------------------------------------------- */

/* The plain client serves eligible URLs unless KZ_HTTP_CLIENT=curl asks
 * for curl everywhere, or a proxy is configured in the environment: only
 * curl honours http_proxy and its relatives. */
static int use_native(void)
{
    const char *v = getenv("KZ_HTTP_CLIENT");
    if (v && strcmp(v, "curl") == 0)
        return 0;
    static const char *const proxies[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof proxies / sizeof *proxies; i++)
        if ((v = getenv(proxies[i])) && *v)
            return 0;
    return 1;
}

kz_status kz_upstream_new(uv_loop_t *loop, struct kz_upstream **out, struct kz_err *err)
{
    pthread_once(&curl_once, curl_init_once);
    struct kz_upstream *u = kz_calloc(1, sizeof *u);
    if (!u)
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    u->loop = loop;
    u->multi = curl_multi_init();
    if (!u->multi) {
        kz_free(u);
        return kz_err_set(err, KZ_ENOMEM, "cannot create a curl multi handle");
    }
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    /* Our handles never keep the loop alive by themselves: idle pooled
     * connections must not stop a server from exiting once it has drained. */
    uv_unref((uv_handle_t *)&u->timer);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, 512L); /* keep-alive pool across requests */
    u->native = use_native();
    *out = u;
    return KZ_OK;
}

static void upstream_closed(uv_handle_t *h) { kz_free(h->data); }

void kz_upstream_free(struct kz_upstream *u)
{
    if (!u)
        return;
    while (u->calls) /* their owners hear about it: nothing is left dangling */
        kz_up__finish(u->calls, KZ_EIO, "shutting down");
    while (u->n_spare)
        curl_easy_cleanup(u->spare[--u->n_spare]);
    curl_multi_cleanup(u->multi); /* closes the pooled connections */
    while (u->socks)              /* polls curl did not tell us to remove */
        sock_close(u->socks);
    kz_h1_free(u);
    kz_free(u->fds);
    uv_timer_stop(&u->timer);
    uv_close((uv_handle_t *)&u->timer, upstream_closed);
}

size_t kz_upstream_active(const struct kz_upstream *u) { return u->active; }

/* c's curl transfer, not yet added to the multi handle. */
static kz_status curl_prepare(struct kz_up_call *c, const struct kz_up_req *req, struct kz_err *err)
{
    struct kz_upstream *u = c->u;
    c->easy = easy_get(u);
    if (!c->easy)
        return kz_err_set(err, KZ_ENOMEM, "cannot create a curl handle");
    struct curl_slist *h = curl_slist_append(NULL, "Expect:"); /* no 100-continue round trip */
    for (size_t i = 0; h && i < req->n_headers; i++) {
        struct curl_slist *nh = curl_slist_append(h, req->headers[i]);
        if (!nh)
            curl_slist_free_all(h);
        h = nh;
    }
    if (!h) {
        easy_put(u, c->easy);
        c->easy = NULL;
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    }
    c->hdrs = h;
    CURL *e = c->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)c);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
    curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, u);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, u);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_ms);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    if (strcmp(req->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (strcmp(req->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    }
    return KZ_OK;
}

kz_status kz_up_start(struct kz_upstream *u, const struct kz_up_req *req, const struct kz_up_cbs *cbs, void *ud,
                      struct kz_up_call **out, struct kz_err *err)
{
    struct kz_up_call *c = kz_calloc(1, sizeof *c);
    if (!c)
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    c->u = u;
    c->cbs = *cbs;
    c->ud = ud;
    c->connect_ms = req->connect_timeout_ms ? req->connect_timeout_ms : 2000;
    kz_status rc = u->native ? kz_h1_prepare(c, req, err) : KZ_EUNSUPPORTED;
    int native = rc == KZ_OK;
    if (rc == KZ_EUNSUPPORTED)
        rc = curl_prepare(c, req, err);
    if (rc) {
        kz_free(c->req);
        kz_free(c);
        return rc;
    }
    uv_timer_init(u->loop, &c->deadline);
    uv_unref((uv_handle_t *)&c->deadline);
    c->deadline.data = c;
    c->t_start = c->t_last = now_ms(u);
    c->head_deadline_ms = req->head_timeout_ms;
    c->idle_ms = req->idle_timeout_ms;
    c->total_ms = req->total_timeout_ms;
    c->next = u->calls;
    if (u->calls)
        u->calls->prev = c;
    u->calls = c;
    u->active++;
    if (native)
        rc = kz_h1_send(c, err);
    else if (curl_multi_add_handle(u->multi, c->easy) != CURLM_OK)
        rc = kz_err_set(err, KZ_EIO, "cannot start the upstream call");
    if (rc) {
        c->cancelled = 1;
        kz_up__finish(c, rc, "");
        return rc;
    }
    kz_up__rearm(c);
    *out = c;
    return KZ_OK;
}

void kz_up_cancel(struct kz_up_call *c)
{
    if (!c || c->cancelled)
        return;
    c->cancelled = 1;
    if (c->finished)
        return;
    if (c->in_cb)
        return; /* the callback returns an error; the transport then finishes it */
    kz_up__finish(c, KZ_EIO, "cancelled");
}

int kz_up_header(const struct kz_up_head *h, const char *name, const char **value, size_t *len)
{
    size_t nl = strlen(name);
    const char *p = h->headers, *end = h->headers + h->headers_len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *value = v;
            *len = (size_t)(ve - v);
            return 1;
        }
        p = eol + 1;
    }
    return 0;
}
