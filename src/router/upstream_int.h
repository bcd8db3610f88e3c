/* SPDX-License-Identifier: MIT
 * Inside the upstream client (upstream.h): what its two transports share.
 *
 * upstream.c owns calls (their deadlines, the response head they gather,
 * the user's callbacks, finishing) and drives libcurl for every URL;
 * up_h1.c is a plain HTTP/1.1 client on libuv for http:// URLs whose host
 * is an IP address, the common case for a provider on the same network
 * (kyozon nodes, vLLM, Ollama), where curl's general machinery costs more
 * system calls and wake-ups per request than the request itself.
 * Both feed a call the same way: head lines through kz_up__head_line (the
 * status line, each header line, the blank line, as curl hands them out),
 * body bytes through kz_up__body; both return 0 when the call must stop.
 */
#ifndef KZ_UPSTREAM_INT_H
#define KZ_UPSTREAM_INT_H

#include <curl/curl.h>
#include <stdint.h>

#include "router/upstream.h"

#define KZ_UP_MAX_HEAD (64u << 10)
/* Finished easy handles kept for the next calls: curl_easy_init allocates
 * a handle of several KiB plus its 16 KiB receive buffer, and cleanup frees
 * them again, on every call otherwise. curl_easy_reset keeps the buffers. */
#define KZ_UP_SPARE_EASY 64

struct h1_pool;
struct h1_conn;

struct kz_upstream {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct kz_up_call *calls; /* doubly linked, for free */
    struct sock *socks;
    struct fd_slot *fds; /* indexed by socket */
    size_t n_fds;
    size_t active;
    CURL *spare[KZ_UP_SPARE_EASY]; /* reset, not in the multi handle */
    size_t n_spare;
    int native;              /* eligible URLs go through up_h1.c */
    struct h1_pool *pools;   /* up_h1.c: one per address, with its idle connections */
    size_t n_idle;
};

struct kz_up_call {
    struct kz_upstream *u;
    struct kz_up_call *prev, *next;
    CURL *easy;              /* curl's transfer, or NULL */
    struct curl_slist *hdrs;
    struct h1_conn *h1;      /* up_h1.c's connection, while it carries this call */
    struct h1_pool *pool;    /* up_h1.c: where it goes */
    char *req;               /* up_h1.c: the request head, kept for a retry */
    size_t req_len;
    const char *body;        /* the caller's */
    size_t body_len;
    int retried;             /* up_h1.c: resent once after a kept-alive connection died */
    int connecting;          /* up_h1.c: the connect deadline runs */
    uint64_t connect_ms;
    struct kz_up_cbs cbs;
    void *ud;
    char *head;
    size_t head_len, head_cap;
    int status;
    int head_done;
    int in_cb;      /* inside a user callback: removal must wait */
    int cancelled;  /* no more user callbacks */
    int finished;   /* removed from its transport; only the timer's close is pending */
    int stop_rc;    /* set when we asked the transport to stop: why */
    char stop_msg[160];
    uint64_t t_start, t_last, head_deadline_ms, idle_ms, total_ms;
    uv_timer_t deadline;
    char errbuf[CURL_ERROR_SIZE];
};

/* upstream.c, for the transports */
size_t kz_up__head_line(struct kz_up_call *c, const char *p, size_t len);
size_t kz_up__body(struct kz_up_call *c, const char *p, size_t len);
void kz_up__finish(struct kz_up_call *c, kz_status rc, const char *msg);
void kz_up__rearm(struct kz_up_call *c);

/* up_h1.c */
/* Readies c for the plain client: KZ_EUNSUPPORTED (nothing done) unless
 * the URL is "http://" and an IPv4 address or a bracketed IPv6 one, an
 * optional port, no user name; then the request head is built (freed with
 * c) and KZ_OK, or an error. */
kz_status kz_h1_prepare(struct kz_up_call *c, const struct kz_up_req *req, struct kz_err *err);
/* Sends a prepared c (its public fields set) on a kept-alive connection or
 * a new one. Errors are returned, not reported to c. */
kz_status kz_h1_send(struct kz_up_call *c, struct kz_err *err);
/* Takes c off its connection, which is closed (c did not finish cleanly). */
void kz_h1_detach(struct kz_up_call *c);
/* Closes every idle connection and frees the pools. */
void kz_h1_free(struct kz_upstream *u);

#endif
