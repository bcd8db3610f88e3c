/* SPDX-License-Identifier: MIT
 * mockllm's internals: a scripted upstream LLM server for the router tests
 * (see README.md next to this file). One libuv loop, raw TCP, so that an
 * answer can be anything from a correct OpenAI stream to random bytes.
 *
 * The central idea is the script: every answer, good or broken, is built
 * first as a list of pieces (bytes, an optional delay before them, and a
 * mark on the pieces that carry generated tokens) plus what to do after the
 * last piece (keep the connection, close it, reset it, hang, repeat). The
 * modes that break a normal answer (hang_mid, close_mid, reset_after, slow)
 * are edits of that list, so every dialect gets them for free.
 *
 * Ownership: a script owns its pieces' bytes (kz_mock_script_free). A
 * request owns its strings (kz_mock_req_free). Builders return new scripts
 * the caller frees; NULL only on allocation failure.
 */
#ifndef KZ_MOCK_H
#define KZ_MOCK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/status.h"

#define KZ_MOCK_MAX_BODY (8u << 20) /* request bodies above this get a 413 */
#define KZ_MOCK_EMBED_DIM 8
#define KZ_MOCK_CREATED 1700000000L /* fixed "created": answers are deterministic */
#define KZ_MOCK_MODEL "mock-model"  /* the model GET /v1/models lists */

/* ---- requests --------------------------------------------------------------- */

struct kz_mock_header {
    char *name;  /* lower-cased */
    char *value;
};

struct kz_mock_req {
    char *method;
    char *path;   /* without the query */
    char *query;  /* after '?', "" when absent */
    struct kz_mock_header *headers;
    size_t n_headers;
    char *body;   /* NUL-terminated, body_len bytes (may hold NULs) */
    size_t body_len;
    int keep_alive; /* the client allows another request on the connection */
};

void kz_mock_req_free(struct kz_mock_req *r); /* frees the fields, not r */
/* The first header called `lname` (lower case), or NULL. */
const char *kz_mock_req_header(const struct kz_mock_req *r, const char *lname);
/* Copies the raw value of query parameter `name` into out; 1 if present. */
int kz_mock_req_query(const struct kz_mock_req *r, const char *name, char *out, size_t size);

/* ---- scripts ---------------------------------------------------------------- */

enum kz_mock_end {
    KZ_MOCK_END_KEEP,   /* answer complete: read the next request (or close if not keep-alive) */
    KZ_MOCK_END_CLOSE,  /* close cleanly (FIN) */
    KZ_MOCK_END_RESET,  /* close abruptly (RST, SO_LINGER 0) */
    KZ_MOCK_END_HANG,   /* say nothing more, keep the socket open until the client leaves */
    KZ_MOCK_END_REPEAT  /* send the last piece again every repeat_ms, forever */
};

struct kz_mock_piece {
    char *data;
    size_t len;
    unsigned delay_ms; /* wait this long before writing it */
    int token;         /* carries generated text (what hang_mid/close_mid count) */
};

struct kz_mock_script {
    struct kz_mock_piece *pieces;
    size_t n, cap;
    enum kz_mock_end end;
    unsigned repeat_ms;
    int keep_alive;    /* END_KEEP: the head allowed reuse */
    int streamed;      /* tokens are pieces of their own (else the body is two halves) */
    int failed;        /* an append ran out of memory: do not send it */
};

struct kz_mock_script *kz_mock_script_new(void);
void kz_mock_script_free(struct kz_mock_script *s); /* NULL is a no-op */

/* Appends a copy of the bytes. Failures set s->failed (checked once at the end). */
void kz_mock_add(struct kz_mock_script *s, const void *data, size_t len, int token);
void kz_mock_add_str(struct kz_mock_script *s, const char *str);
void kz_mock_addf(struct kz_mock_script *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* One chunk of a chunked body: "<hex>\r\n" data "\r\n" as one piece. */
void kz_mock_add_chunk(struct kz_mock_script *s, const void *data, size_t len, int token);
/* The zero-size last chunk. */
void kz_mock_add_last_chunk(struct kz_mock_script *s);
/* A response head. content_length < 0: chunked. extra: more header lines,
 * each ending in "\r\n", or NULL. Adds "Connection: close" unless keep_alive. */
void kz_mock_add_head(struct kz_mock_script *s, int status, const char *content_type, const char *extra,
                      long long content_length, int keep_alive);

/* A complete non-streamed answer: head plus the body as two halves (the
 * second marked as a token, so hang_mid / close_mid cut the body in the middle). */
struct kz_mock_script *kz_mock_respond(int status, const char *content_type, const char *extra, const char *body,
                                       size_t len, int keep_alive);
/* The same with a JSON body, which it consumes (NULL: allocation failed, returns NULL). */
struct kz_mock_script *kz_mock_respond_json(int status, const char *extra, json_t *v, int keep_alive);

/* A streamed answer so far: a 200 head with chunked framing (NULL on OOM). */
struct kz_mock_script *kz_mock_stream_start(const char *content_type, const char *extra, int keep_alive);

/* The edits that modes make to a normal answer. */
void kz_mock_cut_tokens(struct kz_mock_script *s, unsigned long keep_tokens); /* drop from the next token on */
void kz_mock_cut_bytes(struct kz_mock_script *s, unsigned long keep_bytes);
void kz_mock_pace_tokens(struct kz_mock_script *s, unsigned delay_ms);

/* ---- modes ------------------------------------------------------------------ */

enum kz_mock_mode_kind {
    KZ_MOCK_OK,
    KZ_MOCK_STATUS,
    KZ_MOCK_HANG_HEADERS,
    KZ_MOCK_HANG_MID,
    KZ_MOCK_RESET_AFTER,
    KZ_MOCK_CLOSE_MID,
    KZ_MOCK_KILL_SELF,
    KZ_MOCK_SLOW,
    KZ_MOCK_GARBAGE
};

struct kz_mock_mode {
    enum kz_mock_mode_kind kind;
    int status;     /* STATUS: the HTTP status */
    size_t garbage; /* GARBAGE: index into the variant table */
};

/* Parses "ok", "status:429", "garbage:html", ...; err names the problem. */
kz_status kz_mock_mode_parse(const char *s, struct kz_mock_mode *out, struct kz_err *err);
/* The mode's name as parsed ("status:429"), into buf. */
const char *kz_mock_mode_name(const struct kz_mock_mode *m, char *buf, size_t size);
/* Every mode, one per line, garbage variants expanded (new string, kz_free). */
char *kz_mock_mode_list(void);

/* What the next requests get: the mode and its parameters. */
struct kz_mock_settings {
    struct kz_mock_mode mode;
    int tokens;           /* tokens in a full answer */
    unsigned cadence_ms;  /* slow: delay before each token */
    long retry_after;     /* status: Retry-After seconds, -1 for none */
    unsigned long after;  /* hang_mid/close_mid: tokens; reset_after: bytes */
};

/* ---- answering ---------------------------------------------------------------- */

enum kz_mock_dialect { KZ_MOCK_D_OPENAI, KZ_MOCK_D_AZURE, KZ_MOCK_D_ANTHROPIC, KZ_MOCK_D_BEDROCK };

/* What a dialect builder needs to know about the request being answered. */
struct kz_mock_ctx {
    const struct kz_mock_req *req;
    int tokens;         /* N */
    int keep_alive;     /* a good answer may keep the connection */
    unsigned long seq;  /* request number, for deterministic ids */
    long retry_after;   /* error answers: Retry-After seconds, -1 for none */
};

/* "tok<i> " into buf; returns its length. */
size_t kz_mock_token(int i, char *buf, size_t size);
extern const char *kz_mock_word; /* "tok", or --word */
/* "tok0 tok1 ... tok<n-1> " as a new string (kz_free), its length in *len; NULL on OOM. */
char *kz_mock_tokens_text(int n, size_t *len);
/* The same as a new JSON string (NULL on OOM). */
json_t *kz_mock_tokens_json(int n);
/* The usage rule: content bytes / 4 + 1. */
long kz_mock_prompt_tokens(size_t content_bytes);
/* Compact JSON text of v, which it consumes (kz_free the result; NULL on failure). */
char *kz_mock_dump(json_t *v);

/* An error answer in the dialect's shape (status, body, Retry-After). */
struct kz_mock_script *kz_mock_error(const struct kz_mock_ctx *c, enum kz_mock_dialect d, int status,
                                     const char *message);

/* The dialects. Each answers every request whose path belongs to it
 * (including its own 4xx for a bad request). */
struct kz_mock_script *kz_mock_openai(const struct kz_mock_ctx *c);
struct kz_mock_script *kz_mock_azure(const struct kz_mock_ctx *c);
struct kz_mock_script *kz_mock_anthropic(const struct kz_mock_ctx *c);
struct kz_mock_script *kz_mock_bedrock(const struct kz_mock_ctx *c);
/* The dialect a path belongs to. */
enum kz_mock_dialect kz_mock_dialect_of(const char *path);

/* OpenAI chat (chat != 0) and text completion answers, shared with Azure.
 * model: the model to report (NULL: the request's); errors come in dialect d. */
struct kz_mock_script *kz_mock_openai_text(const struct kz_mock_ctx *c, const char *model, enum kz_mock_dialect d,
                                           int chat);
struct kz_mock_script *kz_mock_openai_embeddings(const struct kz_mock_ctx *c, const char *model,
                                                 enum kz_mock_dialect d);

/* Garbage variants. */
size_t kz_mock_garbage_count(void);
const char *kz_mock_garbage_name(size_t i);
struct kz_mock_script *kz_mock_garbage(size_t i, const struct kz_mock_ctx *c);

/* ---- the server ------------------------------------------------------------- */

struct kz_mock_conn;

struct kz_mock_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_signal_t sig_int, sig_term;
    struct kz_mock_settings cur;   /* what the next request gets */
    struct kz_mock_settings start; /* the command line's: defaults for POST /_mock/mode */
    unsigned long requests;        /* since the last reset, /_mock/... excluded */
    unsigned long seq;             /* every request ever: ids */
    long in_flight;
    json_t *by_path;               /* {"/path": n} */
    json_t *last;                  /* the last request, or NULL */
    struct kz_mock_conn *conns;    /* open connections */
    int stopping;
};

/* Answers one request: /_mock/... controls, or the dialect answer shaped by
 * the mode. *counted says whether it counts as in flight (not /_mock/...). */
struct kz_mock_script *kz_mock_route(struct kz_mock_server *srv, const struct kz_mock_req *req, int *counted);
/* The /_mock/... control API. */
struct kz_mock_script *kz_mock_control(struct kz_mock_server *srv, const struct kz_mock_req *req);
/* Counters. */
void kz_mock_stats_record(struct kz_mock_server *srv, const struct kz_mock_req *req);
void kz_mock_stats_reset(struct kz_mock_server *srv);
json_t *kz_mock_stats_json(const struct kz_mock_server *srv);

/* Binds host:port (port 0: any free one), listens and handles SIGINT and
 * SIGTERM (they stop the server: uv_run then returns). srv is zeroed here
 * except its settings, which the caller sets first. *bound_port: the port. */
kz_status kz_mock_server_start(struct kz_mock_server *srv, uv_loop_t *loop, const char *host, int port,
                               int *bound_port /* out */, struct kz_err *err);
/* Closes the listener, the signal handles and every connection. */
void kz_mock_server_stop(struct kz_mock_server *srv);
/* Frees what the counters hold, once uv_run has returned. */
void kz_mock_server_free(struct kz_mock_server *srv);

/* Connections (conn.c): a new one from the listener; closing all of them. */
void kz_mock_conn_accept(struct kz_mock_server *srv);
void kz_mock_conn_close_all(struct kz_mock_server *srv);

#endif
