/* SPDX-License-Identifier: MIT
 * Upstream HTTP calls: libcurl's multi interface driven by the server's
 * libuv loop (curl's sockets are watched with uv_poll, its timeout with a
 * uv_timer), so a call to a provider never blocks the loop and connections
 * to a provider are kept alive and reused across requests.
 *
 * Each call has three clocks of our own, on top of curl's connect timeout:
 * the head deadline (request start to the end of the response head: a
 * provider that accepts and says nothing), the idle deadline (longest gap
 * between body bytes: a stream that stalls), and the total deadline. Any of
 * them ends the call with KZ_EIO and a message saying which.
 *
 * on_done's status: KZ_OK (complete), KZ_ENOTFOUND (no connection could be
 * made: refused, unresolvable, connect timeout; the request was not sent),
 * KZ_EIO (anything else, msg says what).
 *
 * Callbacks run on the loop thread: on_head once the response head is
 * complete, on_data for body bytes, on_done exactly once at the end (unless
 * the call was cancelled: then nothing more is called). A callback may
 * return nonzero to end the call; on_done then follows with KZ_EINVAL
 * ("stopped by the caller"). kz_up_cancel may be called at any time,
 * inside callbacks too.
 *
 * Response heads are capped (64 KiB, curl's own limit is similar); bodies
 * are not buffered here: the caller caps what it keeps.
 */
#ifndef KZ_UPSTREAM_H
#define KZ_UPSTREAM_H

#include <stddef.h>
#include <uv.h>

#include "core/status.h"

struct kz_upstream;
struct kz_up_call;

struct kz_up_head {
    int status;
    const char *headers; /* the raw header lines ("Name: value\r\n"...), NUL-terminated */
    size_t headers_len;
};

/* Case-insensitive header lookup in a head: 1 and the trimmed value, or 0. */
int kz_up_header(const struct kz_up_head *h, const char *name, const char **value, size_t *len);

struct kz_up_cbs {
    int (*on_head)(void *ud, const struct kz_up_head *h);
    int (*on_data)(void *ud, const char *p, size_t n);
    void (*on_done)(void *ud, kz_status rc, const char *msg);
};

struct kz_up_req {
    const char *method;          /* "POST" or "GET" */
    const char *url;
    const char *const *headers;  /* "Name: value" lines */
    size_t n_headers;
    const char *body;            /* copied by curl? no: must live until on_done or cancel */
    size_t body_len;
    unsigned connect_timeout_ms; /* 0: 2000 */
    unsigned head_timeout_ms;    /* 0: none */
    unsigned idle_timeout_ms;    /* 0: none */
    unsigned total_timeout_ms;   /* 0: none */
};

kz_status kz_upstream_new(uv_loop_t *loop, struct kz_upstream **out, struct kz_err *err);
/* Ends every call (on_done with KZ_EIO "shutting down") and frees; then run
 * the loop once so the poll and timer handles finish closing. The client's
 * handles are unreferenced: they never keep uv_run going on their own. */
void kz_upstream_free(struct kz_upstream *u);

/* Starts a call. The body must stay valid until on_done or cancel. */
kz_status kz_up_start(struct kz_upstream *u, const struct kz_up_req *req, const struct kz_up_cbs *cbs, void *ud,
                      struct kz_up_call **out, struct kz_err *err);
void kz_up_cancel(struct kz_up_call *c);

/* Calls started and in flight, for metrics and tests. */
size_t kz_upstream_active(const struct kz_upstream *u);

#endif
