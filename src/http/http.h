/* SPDX-License-Identifier: MIT
 * HTTP/1.1 server on a libuv loop: keep-alive and pipelining, Content-Length
 * and chunked request bodies, complete and streamed (SSE) responses, with
 * every network-fed buffer bounded and every phase of a request on a clock.
 *
 * Threads: everything here runs on the loop thread (the thread calling
 * uv_run on the loop given to kz_http_server_new), except
 * kz_http_server_post, which any thread may call to get a function run on
 * the loop thread. Handlers must not block the loop: model math and disk
 * fsync go elsewhere, results come back through kz_http_server_post.
 *
 * Requests and responses. The handler receives a request and its response,
 * two views of one object (an "exchange"). It may answer at once or later
 * (from any loop-thread callback), either with one kz_http_res_send or by
 * streaming: kz_http_res_stream_start / kz_http_res_sse_start, then
 * kz_http_res_write / kz_http_res_sse_event, then kz_http_res_end.
 *
 * Lifetime (read this before keeping a pointer):
 *   - req and res stay valid from the handler call until the first of
 *       (a) kz_http_res_send / kz_http_res_end returning, or
 *       (b) the abort callback (kz_http_res_on_abort) returning; when the
 *           connection dies before the response ended. It is called from
 *           the loop, never from inside a kz_http_res_* call.
 *     After that the pointers are dangling, unless the user holds a
 *     reference (kz_http_res_ref): then the object lives until the last
 *     kz_http_res_unref, every response call on it returns an error and does
 *     nothing (KZ_EIO after an abort, KZ_EINVAL after the end), and the
 *     request accessors still work. A producer on another thread should take
 *     a reference for every callback it posts that names the response.
 *   - Slices returned by request accessors live as long as the request.
 *   - A handler that never ends its response holds the connection until
 *     the client goes away or the server stops (then the abort callback
 *     fires).
 *
 * Framing of streamed responses: chunked transfer coding when the client
 * spoke HTTP/1.1 (the connection can then be kept alive), close-delimited
 * for HTTP/1.0 clients. A HEAD request gets the head only.
 *
 * Backpressure: every response write copies the bytes into the connection's
 * send queue (or straight into the socket when it is empty). kz_http_res_write
 * reports the queued byte count; at or above cfg.write_high_water the
 * producer should pause until the drain callback (kz_http_res_on_drain)
 * fires, which happens once the queue falls to half the high-water mark. A
 * streaming write that would take the queue past cfg.write_hard_cap closes
 * the connection (KZ_ELIMIT; the abort callback follows).
 *
 * Errors the server answers itself (malformed or oversized requests,
 * timeouts, overload) carry an OpenAI-style JSON body:
 *   {"error":{"message":"...","type":"invalid_request_error","param":null,"code":...}}
 * and close the connection; no further bytes from it are parsed.
 */
#ifndef KZ_HTTP_H
#define KZ_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/slice.h"
#include "core/status.h"
#include "http/parse.h"

struct kz_http_server;
struct kz_http_req;
struct kz_http_res;

// ---------------------------------------------------------------- config

struct kz_http_config {
    const char *host;              /* address to bind, IPv4 or IPv6 literal; copied. Default "127.0.0.1" */
    int port;                      /* 0: pick a free port (see kz_http_server_port). Default 8080 */
    int backlog;                   /* listen backlog. Default 511 */
    struct kz_http_parse_limits limits; /* request line 8 KiB (414), header line 8 KiB,
                                           header section 16 KiB, 100 headers (431) */
    size_t max_body;               /* request body bytes (413, sent before reading it). Default 4 MiB */
    unsigned header_timeout_ms;    /* whole head, from its first byte, or from accept for the first
                                      request (408 and close). Default 10000 */
    unsigned body_timeout_ms;      /* whole body, from the end of the head (408). Default 60000 */
    size_t body_min_rate;          /* bytes/s averaged since the body started, checked once
                                      body_rate_grace_ms have passed (408); 0: off. Default 500 */
    unsigned body_rate_grace_ms;   /* Default 5000 */
    unsigned keepalive_timeout_ms; /* idle time between requests before a quiet close. Default 5000 */
    unsigned write_timeout_ms;     /* no progress on a non-empty send queue (close). Default 30000 */
    unsigned linger_ms;            /* after an error response: read and discard for at most this long
                                      before closing, so the client sees the answer. Default 2000 */
    unsigned max_connections;      /* beyond it, accept, answer 503 and close. Default 1024 */
    unsigned max_connections_per_ip; /* same per client address; 0: no cap. Default 64 */
    size_t write_high_water;       /* send-queue level that asks producers to pause. Default 64 KiB */
    size_t write_hard_cap;         /* send-queue level that closes a streaming response. Default 1 MiB */
};

/* Fills *cfg with the defaults listed above. */
void kz_http_config_default(struct kz_http_config *cfg /* out */);

// ---------------------------------------------------------------- server

/* The request handler, called on the loop thread once a request's head and
 * whole body have arrived. See the lifetime rules above. */
typedef void (*kz_http_handler_fn)(void *user, struct kz_http_req *req, struct kz_http_res *res);

/* A function queued by kz_http_server_post, run on the loop thread. */
typedef void (*kz_http_post_fn)(void *arg);

/* Creates a server on `loop` (not yet listening). The config is copied.
 * Returns KZ_OK and *out, KZ_EINVAL for a bad config (err says which field),
 * KZ_ENOMEM. Loop thread. Free with kz_http_server_free. */
kz_status kz_http_server_new(uv_loop_t *loop, const struct kz_http_config *cfg, kz_http_handler_fn handler,
                             void *user, struct kz_http_server **out /* out */, struct kz_err *err);

/* Binds cfg.host:cfg.port and starts accepting. KZ_EIO when the address
 * cannot be bound (err has the reason), KZ_EINVAL for a bad host or a
 * second call. */
kz_status kz_http_server_listen(struct kz_http_server *srv, struct kz_err *err);

/* The bound port (useful with port 0); 0 before a successful listen. */
int kz_http_server_port(const struct kz_http_server *srv);

/* Graceful stop: stops accepting, closes idle connections, lets requests in
 * flight finish (their responses say "Connection: close"), and when
 * drain_timeout_ms has passed closes what is left (abort callbacks fire).
 * Then every handle of the server is closed, queued posts are run one last
 * time, and uv_run returns once the loop has nothing else of yours. Calling
 * it again does nothing. Loop thread. */
void kz_http_server_stop_graceful(struct kz_http_server *srv, unsigned drain_timeout_ms);

/* Immediate stop: kz_http_server_stop_graceful with no drain time. */
void kz_http_server_stop(struct kz_http_server *srv);

/* Installs SIGINT and SIGTERM handlers (uv_signal) that call
 * kz_http_server_stop_graceful(srv, drain_timeout_ms). Their handles close
 * when the stop begins, so a second signal during the drain gets the
 * default action (the process ends at once). KZ_EIO if libuv refuses.
 * Loop thread. */
kz_status kz_http_server_handle_signals(struct kz_http_server *srv, unsigned drain_timeout_ms,
                                        struct kz_err *err);

/* Thread-safe: queues fn(arg) to run on the loop thread (FIFO, one
 * uv_async_t wakes the loop; many posts may run in one wake-up). Returns
 * KZ_OK, KZ_ENOMEM, or KZ_EIO once the server has finished stopping (fn will
 * then never run: the caller still owns arg). Posts queued before that run,
 * even during the stop. */
kz_status kz_http_server_post(struct kz_http_server *srv, kz_http_post_fn fn, void *arg);

/* Frees the server. Call it on the loop thread when uv_run is not running
 * (after it returned, or before it started). A server that has not finished
 * stopping is stopped immediately and the loop is run (UV_RUN_NOWAIT) until
 * its handles are closed. NULL is a no-op. */
void kz_http_server_free(struct kz_http_server *srv);

/* Counters, for tests and metrics. Loop thread (or after uv_run returned). */
struct kz_http_stats {
    uint64_t accepted;          /* connections accepted, rejected ones included */
    uint64_t rejected;          /* connections refused by max_connections(_per_ip) */
    uint64_t requests;          /* requests handed to the handler */
    uint64_t errors;            /* error responses the server sent itself (4xx/5xx) */
    uint64_t timeouts;          /* connections closed by a read, write or idle timer */
    size_t active;              /* connections open now */
    size_t max_queued;          /* largest send queue seen on one connection, bytes */
};
void kz_http_server_stats(const struct kz_http_server *srv, struct kz_http_stats *out /* out */);

// ---------------------------------------------------------------- request

struct kz_slice kz_http_req_method(const struct kz_http_req *req);
struct kz_slice kz_http_req_target(const struct kz_http_req *req); /* as sent */
struct kz_slice kz_http_req_path(const struct kz_http_req *req);   /* not percent-decoded */
struct kz_slice kz_http_req_query(const struct kz_http_req *req);  /* after '?', empty if none */
int kz_http_req_minor_version(const struct kz_http_req *req);      /* 0 or 1 */

/* Case-insensitive lookup of the first header named `name`: 1 and *value,
 * or 0. Values have surrounding whitespace removed. */
int kz_http_req_header(const struct kz_http_req *req, const char *name, struct kz_slice *value /* out */);
size_t kz_http_req_n_headers(const struct kz_http_req *req);
/* The i-th header as received (i < kz_http_req_n_headers). */
const struct kz_http_header *kz_http_req_header_at(const struct kz_http_req *req, size_t i);

/* The decoded body (chunked framing removed) and its length. Followed by a
 * NUL byte that is not counted, so text bodies can be read as C strings
 * (a body may itself contain NULs). Never NULL. */
const char *kz_http_req_body(const struct kz_http_req *req, size_t *len /* out, may be NULL */);

/* Peer address as text ("127.0.0.1", "::1") and port. */
const char *kz_http_req_remote_addr(const struct kz_http_req *req);
int kz_http_req_remote_port(const struct kz_http_req *req);

/* Per-server request number, from 1, unique for the server's life. */
uint64_t kz_http_req_id(const struct kz_http_req *req);

/* The response that belongs to the request, and back. */
struct kz_http_res *kz_http_req_res(struct kz_http_req *req);
struct kz_http_req *kz_http_res_req(struct kz_http_res *res);

// ---------------------------------------------------------------- response

/* A callback about a response (abort, drain), on the loop thread. */
typedef void (*kz_http_res_fn)(struct kz_http_res *res, void *arg);

/* Adds a header line to the response head (before send / stream start).
 * Name must be a token, value printable (no CR, LF); the server sets
 * Content-Length, Transfer-Encoding and Connection itself, so those are
 * refused (KZ_EINVAL). KZ_ELIMIT beyond 8 KiB of added headers. */
kz_status kz_http_res_add_header(struct kz_http_res *res, const char *name, const char *value);

/* Sends a complete response and ends it (see the lifetime rules: res is
 * gone when this returns). content_type may be NULL (no Content-Type).
 * status 100..599. KZ_EINVAL when the response already started or ended or
 * status is out of range, KZ_EIO when the connection is gone; in both
 * cases the exchange is still released as if it had ended, except when
 * the response was already ended or aborted. The body is copied. */
kz_status kz_http_res_send(struct kz_http_res *res, int status, const char *content_type, const void *body,
                           size_t len);

/* Sends the OpenAI-style error object with `status`. type defaults to
 * "invalid_request_error" (4xx) or "server_error" (5xx) when NULL; code is
 * a string or NULL (JSON null). The message is JSON-escaped. Ends the
 * response like kz_http_res_send. */
kz_status kz_http_res_send_error(struct kz_http_res *res, int status, const char *type, const char *code,
                                 const char *message);

/* Starts a streamed response: writes the head now (chunked, or
 * close-delimited for HTTP/1.0). Then kz_http_res_write... kz_http_res_end. */
kz_status kz_http_res_stream_start(struct kz_http_res *res, int status, const char *content_type);

/* Starts a Server-Sent Events stream: Content-Type: text/event-stream,
 * Cache-Control: no-cache, X-Accel-Buffering: no. */
kz_status kz_http_res_sse_start(struct kz_http_res *res, int status);

/* Queues bytes of a streamed response (for SSE: raw event text, the caller
 * formats it; or kz_http_res_sse_event). The bytes are copied. *queued
 * (may be NULL) receives the connection's send-queue size after the write.
 * Returns KZ_OK (check kz_http_res_over_high_water, or *queued against
 * cfg.write_high_water, to pause), KZ_ELIMIT when the write would pass the
 * hard cap (the connection is being closed), KZ_EIO when the connection is
 * gone, KZ_EINVAL when the stream was not started or already ended. */
kz_status kz_http_res_write(struct kz_http_res *res, const void *data, size_t len, size_t *queued /* out */);

/* Formats and writes one SSE event: an optional "event:" line, one "data:"
 * line per line of `data` (split at LF, CRLF or CR), and the blank line.
 * Returns as kz_http_res_write. */
kz_status kz_http_res_sse_event(struct kz_http_res *res, const char *event, const char *data, size_t len,
                                size_t *queued /* out */);

/* Writes an SSE comment line (": text\n\n"), e.g. as a keep-alive ping. */
kz_status kz_http_res_sse_comment(struct kz_http_res *res, const char *text, size_t *queued /* out */);

/* Ends a streamed response (the terminating chunk, or the close for a
 * close-delimited one). res is gone when this returns. KZ_EINVAL if the
 * stream never started (use send), KZ_EIO if the connection is gone. */
kz_status kz_http_res_end(struct kz_http_res *res);

/* Bytes in the connection's send queue; 0 once the connection is gone. */
size_t kz_http_res_queued(const struct kz_http_res *res);
/* 1 when the send queue is at or above cfg.write_high_water. */
int kz_http_res_over_high_water(const struct kz_http_res *res);
/* 1 while the connection is up and the response has not ended. */
int kz_http_res_is_open(const struct kz_http_res *res);

/* Called when the connection goes away before the response ended (client
 * disconnect, timeout, hard cap, server stop). After it returns, res and
 * req are gone (unless referenced). At most once; replaces a previous one. */
void kz_http_res_on_abort(struct kz_http_res *res, kz_http_res_fn fn, void *arg);

/* Called once the send queue, after reaching the high-water mark, falls to
 * half of it: resume producing. Re-armed by every write that ends at or
 * above the mark. Not called after end or abort. */
void kz_http_res_on_drain(struct kz_http_res *res, kz_http_res_fn fn, void *arg);

/* Keeps the exchange's memory alive past end/abort (loop thread only, not
 * atomic). Every ref needs one unref. */
void kz_http_res_ref(struct kz_http_res *res);
void kz_http_res_unref(struct kz_http_res *res);

/* The reason phrase of a status code ("Not Found"); "Unknown" if none. */
const char *kz_http_status_reason(int status);

#endif
