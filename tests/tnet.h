/* SPDX-License-Identifier: MIT
 * Helpers for tests that drive real server programs (kyozon, mockllm) over
 * loopback. Header-only (static inline) so that every test program stays one
 * file; only 127.0.0.1 is ever contacted.
 *
 *   processes  tnet_spawn starts a program, reads its stderr until the line
 *              "listening on http://HOST:PORT" and returns; a relay thread
 *              keeps copying its later stderr to ours (or to a log file), so
 *              a chatty server never blocks on a full pipe. tnet_stop sends a
 *              signal and reaps it; tnet_wait reaps one that ends by itself.
 *   HTTP       blocking HTTP/1.1 over one socket: tnet_request (one-shot) or
 *              tnet_connect + tnet_send + tnet_read_response (keep-alive),
 *              with a timeout; bodies de-chunked; header lookup by lower-case
 *              name.
 *   SSE        tnet_sse_open + tnet_sse_next read a stream one event at a
 *              time, so a test can stop reading, or close, mid-stream.
 *   mockllm    tnet_mock_count: a path's request count from /_mock/stats.
 *
 * Ownership: a struct tnet_resp owns its strings (tnet_resp_free), a struct
 * tnet_sse its connection and buffers (tnet_sse_close), a struct tnet_proc
 * the child and the relay thread until tnet_stop / tnet_wait succeeds; the
 * relay reads the struct, so it must not move until then.
 */
#ifndef KZ_TEST_TNET_H
#define KZ_TEST_TNET_H

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"

extern char **environ;

static inline double tnet_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

// ---------------------------------------------------------------- processes

#define TNET_READY_MARK "listening on http://"

struct tnet_proc {
    pid_t pid;
    int port;
    char host[64];
    /* relay state (private) */
    pthread_t relay;
    int err_fd;          /* read end of the child's stderr */
    int log_fd;          /* where its output goes */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready;           /* 1: the line was seen; -1: stderr closed first */
    char line[512];
    size_t line_len;
};

/* Looks at one complete stderr line for the ready mark. */
static inline void tnet_relay_line(struct tnet_proc *p)
{
    p->line[p->line_len] = '\0';
    const char *m = strstr(p->line, TNET_READY_MARK);
    if (!m)
        return;
    m += strlen(TNET_READY_MARK);
    const char *colon = strrchr(m, ':');
    if (!colon || (size_t)(colon - m) >= sizeof p->host)
        return;
    pthread_mutex_lock(&p->mu);
    memcpy(p->host, m, (size_t)(colon - m));
    p->host[colon - m] = '\0';
    p->port = atoi(colon + 1);
    p->ready = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static inline void *tnet_relay_main(void *arg)
{
    struct tnet_proc *p = arg;
    char buf[4096];
    for (;;) {
        ssize_t n = read(p->err_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(p->log_fd, buf + off, (size_t)(n - off));
            if (w <= 0)
                break;
            off += w;
        }
        for (ssize_t i = 0; i < n && p->ready != 1; i++) {
            if (buf[i] == '\n') {
                tnet_relay_line(p);
                p->line_len = 0;
            } else if (p->line_len + 1 < sizeof p->line) {
                p->line[p->line_len++] = buf[i];
            }
        }
    }
    pthread_mutex_lock(&p->mu);
    if (p->ready != 1)
        p->ready = -1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* The environment for the child: ours with `env` ("NAME=VALUE", NULL-ended)
 * laid over it. Built before fork so the child only calls execve. */
static inline char **tnet_make_env(const char *const *env)
{
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    for (size_t i = 0; env && env[i]; i++)
        k++;
    char **out = kz_calloc(n + k + 1, sizeof *out);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int overridden = 0;
        for (size_t j = 0; env && env[j]; j++)
            if (strncmp(env[j], environ[i], nl) == 0 && env[j][nl] == '=')
                overridden = 1;
        if (!overridden)
            out[o++] = environ[i];
    }
    for (size_t j = 0; env && env[j]; j++)
        out[o++] = (char *)(uintptr_t)env[j];
    return out;
}

/* Starts argv[0] (a path) with argv, the environment overrides `env` (may be
 * NULL), and waits up to timeout_ms for its ready line. Its stderr goes on to
 * log_path (truncated) or, when NULL, to ours. 0 on success (p->pid, p->port,
 * p->host set); -1 when it could not start or did not get ready (then it has
 * been killed and reaped). */
static inline int tnet_spawn(struct tnet_proc *p, const char *const *argv, const char *const *env,
                             const char *log_path, int timeout_ms)
{
    memset(p, 0, sizeof *p);
    p->pid = -1;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    p->log_fd = log_path ? open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : dup(2);
    char **envp = tnet_make_env(env);
    if (p->log_fd < 0 || !envp) {
        close(fds[0]);
        close(fds[1]);
        if (p->log_fd >= 0)
            close(p->log_fd);
        kz_free(envp);
        return -1;
    }
    p->pid = fork();
    if (p->pid == 0) {
        dup2(fds[1], 2);
        execve(argv[0], (char *const *)(uintptr_t)argv, envp);
        _exit(127);
    }
    kz_free(envp);
    close(fds[1]);
    p->err_fd = fds[0];
    if (p->pid < 0) {
        close(p->err_fd);
        close(p->log_fd);
        return -1;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->relay, NULL, tnet_relay_main, p) != 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        close(p->err_fd);
        close(p->log_fd);
        return -1;
    }
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    while (p->ready == 0)
        if (pthread_cond_timedwait(&p->cv, &p->mu, &dl) == ETIMEDOUT)
            break;
    int ready = p->ready;
    pthread_mutex_unlock(&p->mu);
    if (ready == 1)
        return 0;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    pthread_join(p->relay, NULL);
    close(p->err_fd);
    close(p->log_fd);
    p->pid = -1;
    return -1;
}

/* Waits up to timeout_ms for the child to end by itself. Returns its wait
 * status (use WIFEXITED and friends), or -1 if it is still running. */
static inline int tnet_wait(struct tnet_proc *p, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    double until = tnet_now_ms() + timeout_ms;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid)
            break;
        if (r < 0 || tnet_now_ms() > until)
            return -1;
        usleep(5000);
    }
    p->pid = -1;
    pthread_join(p->relay, NULL); /* its stderr is closed now */
    close(p->err_fd);
    close(p->log_fd);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    return st;
}

/* Sends sig and reaps the child (SIGKILL after timeout_ms). Its wait status. */
static inline int tnet_stop(struct tnet_proc *p, int sig, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    int st = tnet_wait(p, timeout_ms);
    if (st == -1) {
        kill(p->pid, SIGKILL);
        st = tnet_wait(p, 5000);
    }
    return st;
}

/* A port that was free a moment ago on 127.0.0.1 (0 on failure). */
static inline int tnet_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

// ---------------------------------------------------------------- connections

struct tnet_conn {
    int fd;
    char *buf;      /* received, not yet consumed */
    size_t len, cap;
    int eof;        /* the peer closed (FIN) */
    int reset;      /* the peer reset the connection (RST) */
};

/* 0 on success, -1 when nothing listens there. */
static inline int tnet_connect(struct tnet_conn *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

static inline void tnet_disconnect(struct tnet_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    KZ_FREE(c->buf);
    c->len = c->cap = 0;
}

static inline int tnet_send_all(struct tnet_conn *c, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends a request: Host and (with a body) Content-Length are added; headers
 * are full lines without CRLF ("Name: value"), NULL-ended, may be NULL. */
static inline int tnet_send(struct tnet_conn *c, const char *method, const char *path, const char *const *headers,
                            const char *body)
{
    size_t cap = 512 + strlen(path), blen = body ? strlen(body) : 0;
    for (size_t i = 0; headers && headers[i]; i++)
        cap += strlen(headers[i]) + 2;
    char *head = kz_malloc(cap);
    if (!head)
        return -1;
    int n = snprintf(head, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, path);
    for (size_t i = 0; headers && headers[i]; i++)
        n += snprintf(head + n, cap - (size_t)n, "%s\r\n", headers[i]);
    if (body)
        n += snprintf(head + n, cap - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
    n += snprintf(head + n, cap - (size_t)n, "\r\n");
    int rc = tnet_send_all(c, head, (size_t)n);
    kz_free(head);
    if (rc == 0 && blen)
        rc = tnet_send_all(c, body, blen);
    return rc;
}

/* Reads more bytes before the deadline: >0 bytes, 0 on EOF or reset (c->eof /
 * c->reset), -1 on timeout. */
static inline int tnet_fill(struct tnet_conn *c, double deadline_ms)
{
    if (c->eof || c->reset)
        return 0;
    if (c->cap - c->len < 65536) {
        size_t cap = c->cap ? c->cap * 2 : 131072;
        char *b = kz_realloc(c->buf, cap);
        if (!b)
            return -1;
        c->buf = b;
        c->cap = cap;
    }
    for (;;) {
        double left = deadline_ms - tnet_now_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {c->fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)left + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            c->reset = 1;
            return 0;
        }
        if (n == 0) {
            c->eof = 1;
            return 0;
        }
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
        return (int)n;
    }
}

static inline void tnet_consume(struct tnet_conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    if (c->buf)
        c->buf[c->len] = '\0';
}

/* Everything the peer sends until it closes, max bytes are held, or timeout:
 * the bytes stay in c->buf (c->len). 1 when the peer closed, 0 otherwise. */
static inline int tnet_read_raw(struct tnet_conn *c, size_t max, int timeout_ms)
{
    double deadline = tnet_now_ms() + timeout_ms;
    while (c->len < max) {
        int r = tnet_fill(c, deadline);
        if (r == 0)
            return 1;
        if (r < 0)
            return 0;
    }
    return 0;
}

// ---------------------------------------------------------------- responses

/* Status values below 0 say why there is no (complete) response. */
#define TNET_ECONNECT (-1) /* nothing listens */
#define TNET_ETIMEOUT (-2) /* the answer (or its end) did not come in time */
#define TNET_ECLOSED (-3)  /* closed or reset before the answer was complete */
#define TNET_EBAD (-4)     /* not a well-formed HTTP/1.x answer */

struct tnet_resp {
    int status;        /* the HTTP status, or a TNET_E* value */
    char *head;        /* the head as received, without the blank line */
    char **names;      /* lower-cased */
    char **values;
    size_t n_headers;
    char *body;        /* de-chunked, NUL-terminated (what arrived, even on failure) */
    size_t body_len;
    double elapsed_ms; /* from sending to the end of the body */
};

static inline void tnet_resp_free(struct tnet_resp *r)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        kz_free(r->names[i]);
        kz_free(r->values[i]);
    }
    kz_free(r->names);
    kz_free(r->values);
    kz_free(r->head);
    kz_free(r->body);
    memset(r, 0, sizeof *r);
}

/* The first header called lname (lower case), or NULL. */
static inline const char *tnet_header(const struct tnet_resp *r, const char *lname)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->names[i], lname) == 0)
            return r->values[i];
    return NULL;
}

/* How the body is framed, and the decoder's position. */
struct tnet_body {
    int mode;        /* 0 Content-Length, 1 chunked, 2 until close, 3 none */
    uint64_t left;   /* length: bytes left; chunked: bytes left in the chunk */
    int cstate;      /* chunked: 0 size line, 1 data, 2 CRLF after data, 3 trailers */
    int done;
};

static inline int tnet_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n + 1)
            c *= 2;
        char *b = kz_realloc(*buf, c);
        if (!b)
            return -1;
        *buf = b;
        *cap = c;
    }
    if (n)
        memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* Moves decoded body bytes from the connection into out. Returns 1 when the
 * body is complete, 0 when more input is needed, -1 on malformed framing. */
static inline int tnet_body_step(struct tnet_conn *c, struct tnet_body *b, char **out, size_t *len, size_t *cap)
{
    if (b->mode == 3)
        b->done = 1;
    while (!b->done) {
        if (b->mode == 0 || b->mode == 2) {
            size_t k = b->mode == 0 && b->left < c->len ? (size_t)b->left : c->len;
            if (tnet_append(out, len, cap, c->buf, k) != 0)
                return -1;
            tnet_consume(c, k);
            if (b->mode == 0) {
                b->left -= k;
                b->done = b->left == 0;
            }
            return b->done;
        }
        if (b->cstate == 1) {
            size_t k = b->left < c->len ? (size_t)b->left : c->len;
            if (k == 0)
                return 0;
            if (tnet_append(out, len, cap, c->buf, k) != 0)
                return -1;
            tnet_consume(c, k);
            b->left -= k;
            if (b->left == 0)
                b->cstate = 2;
            continue;
        }
        char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
        if (!nl)
            return 0;
        size_t ll = (size_t)(nl - c->buf);
        if (ll == 0 || c->buf[ll - 1] != '\r')
            return -1;
        ll--; /* without CRLF */
        if (b->cstate == 2) {
            if (ll != 0)
                return -1;
            b->cstate = 0;
        } else if (b->cstate == 3) {
            if (ll == 0)
                b->done = 1;
        } else {
            uint64_t size = 0;
            size_t i = 0;
            for (; i < ll && i < 16 && isxdigit((unsigned char)c->buf[i]); i++)
                size = size * 16 + (uint64_t)(isdigit((unsigned char)c->buf[i]) ? c->buf[i] - '0'
                                                                                   : (tolower(c->buf[i]) - 'a' + 10));
            if (i == 0 || (i < ll && c->buf[i] != ';') || (i == 16 && i < ll && isxdigit((unsigned char)c->buf[i])))
                return -1;
            b->left = size;
            b->cstate = size ? 1 : 3;
        }
        tnet_consume(c, (size_t)(nl - c->buf) + 1);
    }
    return 1;
}

/* Reads a response head into r and sets up the body decoder. 0, or a TNET_E*. */
static inline int tnet_read_head(struct tnet_conn *c, const char *method, double deadline, struct tnet_resp *r,
                                 struct tnet_body *b)
{
    for (;;) {
        char *end = c->len >= 4 ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (end) {
            size_t hl = (size_t)(end - c->buf);
            if (memchr(c->buf, '\0', hl))
                return TNET_EBAD;
            r->head = kz_strndup(c->buf, hl);
            tnet_consume(c, hl + 4);
            break;
        }
        if (c->len > (1u << 20))
            return TNET_EBAD;
        int n = tnet_fill(c, deadline);
        if (n == 0)
            return TNET_ECLOSED;
        if (n < 0)
            return TNET_ETIMEOUT;
    }
    if (!r->head || strncmp(r->head, "HTTP/1.", 7) != 0 || strlen(r->head) < 12 || r->head[8] != ' ')
        return TNET_EBAD;
    int status = atoi(r->head + 9);
    size_t cap = 8;
    r->names = kz_calloc(cap, sizeof *r->names);
    r->values = kz_calloc(cap, sizeof *r->values);
    for (char *line = strstr(r->head, "\r\n"); line && r->names; line = strstr(line, "\r\n")) {
        line += 2;
        char *colon = strchr(line, ':'), *eol = strstr(line, "\r\n");
        if (!eol)
            eol = line + strlen(line);
        if (!colon || colon > eol)
            return TNET_EBAD;
        if (r->n_headers == cap) {
            cap *= 2;
            char **nn = kz_realloc(r->names, cap * sizeof *nn);
            if (nn)
                r->names = nn;
            char **vv = kz_realloc(r->values, cap * sizeof *vv);
            if (vv)
                r->values = vv;
            if (!nn || !vv)
                return TNET_EBAD;
        }
        char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        char *ve = eol;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        char *name = kz_strndup(line, (size_t)(colon - line));
        for (char *q = name; q && *q; q++)
            *q = (char)tolower((unsigned char)*q);
        r->names[r->n_headers] = name;
        r->values[r->n_headers++] = kz_strndup(v, (size_t)(ve - v));
    }
    if (status >= 100 && status < 200) { /* an interim answer: the real one follows */
        tnet_resp_free(r);
        return tnet_read_head(c, method, deadline, r, b);
    }
    r->status = status;
    memset(b, 0, sizeof *b);
    const char *te = tnet_header(r, "transfer-encoding"), *cl = tnet_header(r, "content-length");
    if (strcmp(method, "HEAD") == 0 || status == 204 || status == 304)
        b->mode = 3;
    else if (te && strcasecmp(te, "chunked") == 0)
        b->mode = 1;
    else if (cl) {
        b->mode = 0;
        b->left = strtoull(cl, NULL, 10);
    } else
        b->mode = 2;
    return 0;
}

/* Reads one whole response (the answer to `method`). Returns r->status. */
static inline int tnet_read_response(struct tnet_conn *c, const char *method, int timeout_ms, struct tnet_resp *r)
{
    double t0 = tnet_now_ms(), deadline = t0 + timeout_ms;
    memset(r, 0, sizeof *r);
    struct tnet_body b;
    int rc = tnet_read_head(c, method, deadline, r, &b);
    size_t cap = 0;
    if (tnet_append(&r->body, &r->body_len, &cap, "", 0) != 0)
        rc = TNET_EBAD;
    while (rc == 0) {
        int s = tnet_body_step(c, &b, &r->body, &r->body_len, &cap);
        if (s == 1)
            break;
        if (s < 0) {
            rc = TNET_EBAD;
            break;
        }
        int n = tnet_fill(c, deadline);
        if (n == 0 && b.mode == 2 && !c->reset)
            break; /* a close-delimited body ends here */
        if (n == 0)
            rc = TNET_ECLOSED;
        else if (n < 0)
            rc = TNET_ETIMEOUT;
    }
    if (rc)
        r->status = rc;
    r->elapsed_ms = tnet_now_ms() - t0;
    return r->status;
}

/* One request on its own connection. body: JSON text or NULL. Returns r->status. */
static inline int tnet_request(int port, const char *method, const char *path, const char *const *headers,
                               const char *body, int timeout_ms, struct tnet_resp *r)
{
    memset(r, 0, sizeof *r);
    struct tnet_conn c;
    double t0 = tnet_now_ms();
    if (tnet_connect(&c, port) != 0)
        return r->status = TNET_ECONNECT;
    if (tnet_send(&c, method, path, headers, body) != 0) {
        tnet_disconnect(&c);
        return r->status = TNET_ECLOSED;
    }
    tnet_read_response(&c, method, timeout_ms, r);
    r->elapsed_ms = tnet_now_ms() - t0;
    tnet_disconnect(&c);
    return r->status;
}

// ---------------------------------------------------------------- SSE

struct tnet_sse {
    struct tnet_conn c;
    struct tnet_resp r;   /* status and headers (body unused) */
    struct tnet_body b;
    char *text;           /* decoded body not yet split into events */
    size_t len, cap;
    int body_done;
};

/* Sends the request and reads the head. Returns the HTTP status or a TNET_E*. */
static inline int tnet_sse_open(struct tnet_sse *s, int port, const char *method, const char *path,
                                const char *const *headers, const char *body, int timeout_ms)
{
    memset(s, 0, sizeof *s);
    if (tnet_connect(&s->c, port) != 0)
        return s->r.status = TNET_ECONNECT;
    if (tnet_send(&s->c, method, path, headers, body) != 0)
        return s->r.status = TNET_ECLOSED;
    int rc = tnet_read_head(&s->c, method, tnet_now_ms() + timeout_ms, &s->r, &s->b);
    if (rc)
        s->r.status = rc;
    return s->r.status;
}

/* The next event: 1 with its name (empty when it had no event: line) in
 * event and its data (lines joined with \n) in *data (kz_free); 0 when the
 * body ended cleanly; TNET_ETIMEOUT; TNET_ECLOSED when the connection closed
 * or was reset before the body's end (s->c.reset tells which); TNET_EBAD on
 * broken framing. Comment lines are skipped. */
static inline int tnet_sse_next(struct tnet_sse *s, int timeout_ms, char *event, size_t event_size, char **data)
{
    double deadline = tnet_now_ms() + timeout_ms;
    char *d = NULL;
    size_t dl = 0, dcap = 0;
    int have = 0;
    event[0] = '\0';
    *data = NULL;
    for (;;) {
        char *nl = s->len ? memchr(s->text, '\n', s->len) : NULL;
        if (nl) {
            size_t ll = (size_t)(nl - s->text);
            if (ll && s->text[ll - 1] == '\r')
                ll--;
            const char *line = s->text;
            const char *colon = memchr(line, ':', ll);
            size_t fl = colon ? (size_t)(colon - line) : ll;
            const char *v = colon ? colon + 1 : line + ll;
            if (colon && v < line + ll && *v == ' ')
                v++;
            size_t vl = (size_t)(line + ll - v);
            int dispatch = 0;
            if (ll == 0)
                dispatch = have;
            else if (fl == 5 && strncmp(line, "event", 5) == 0) {
                snprintf(event, event_size, "%.*s", (int)vl, v);
                have = 1;
            } else if (fl == 4 && strncmp(line, "data", 4) == 0) {
                if ((d && tnet_append(&d, &dl, &dcap, "\n", 1) != 0) || tnet_append(&d, &dl, &dcap, v, vl) != 0) {
                    kz_free(d);
                    return TNET_EBAD;
                }
                have = 1;
            }
            memmove(s->text, nl + 1, s->len - (size_t)(nl + 1 - s->text));
            s->len -= (size_t)(nl + 1 - s->text);
            if (dispatch) {
                if (!d)
                    tnet_append(&d, &dl, &dcap, "", 0);
                *data = d;
                return 1;
            }
            continue;
        }
        if (s->body_done) {
            kz_free(d);
            return 0;
        }
        int st = tnet_body_step(&s->c, &s->b, &s->text, &s->len, &s->cap);
        if (st < 0) {
            kz_free(d);
            return TNET_EBAD;
        }
        if (st == 1) {
            s->body_done = 1;
            continue;
        }
        if (s->len && memchr(s->text, '\n', s->len))
            continue;
        int n = tnet_fill(&s->c, deadline);
        if (n == 0 && s->b.mode == 2 && !s->c.reset) {
            s->body_done = 1;
            continue;
        }
        if (n <= 0) {
            kz_free(d);
            return n == 0 ? TNET_ECLOSED : TNET_ETIMEOUT;
        }
    }
}

static inline void tnet_sse_close(struct tnet_sse *s)
{
    tnet_disconnect(&s->c);
    tnet_resp_free(&s->r);
    KZ_FREE(s->text);
    s->len = s->cap = 0;
}

// ---------------------------------------------------------------- mockllm

/* Requests mockllm counted for path (NULL: all) since its last reset, from
 * GET /_mock/stats; -1 on failure. */
static inline long tnet_mock_count(int port, const char *path)
{
    struct tnet_resp r;
    long n = -1;
    if (tnet_request(port, "GET", "/_mock/stats", NULL, NULL, 5000, &r) == 200) {
        json_t *j = json_loads(r.body, 0, NULL);
        json_t *v = path ? json_object_get(json_object_get(j, "by_path"), path) : json_object_get(j, "requests");
        n = v ? (long)json_integer_value(v) : j ? 0 : -1;
        json_decref(j);
    }
    tnet_resp_free(&r);
    return n;
}

/* The health ("healthy", "ejected", ...) of the first deployment of
 * provider `name` in a kyozon gateway's GET /v1/providers; "" when absent. */
static inline void tnet_provider_health(int port, const char *name, char *out, size_t size)
{
    struct tnet_resp r;
    out[0] = '\0';
    if (tnet_request(port, "GET", "/v1/providers", NULL, NULL, 5000, &r) == 200) {
        json_t *j = json_loads(r.body, 0, NULL);
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(j, "data"), i, p) {
            const char *h = json_string_value(
                json_object_get(json_array_get(json_object_get(p, "deployments"), 0), "health"));
            if (strcmp(json_string_value(json_object_get(p, "name")), name) == 0 && h)
                snprintf(out, size, "%s", h);
        }
        json_decref(j);
    }
    tnet_resp_free(&r);
}

#endif
