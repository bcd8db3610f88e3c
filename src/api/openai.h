/* SPDX-License-Identifier: MIT
 * The OpenAI wire format: decoding request bodies into kyozon's one internal
 * request form, and encoding responses, stream chunks and error objects.
 *
 * Decoding is strict where a field changes what the model does (a bad type,
 * an out-of-range number, or a feature we do not implement such as n > 1 or
 * tools gives a 400 naming the field) and lenient elsewhere (unknown fields
 * are ignored, as OpenAI clients send new ones all the time).
 *
 * Ownership: a decoded request owns the parsed JSON; every string in it
 * points into that JSON and lives until kz_api_request_free. Encoders return
 * new NUL-terminated strings the caller frees with kz_free.
 */
#ifndef KZ_OPENAI_H
#define KZ_OPENAI_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define KZ_API_MAX_STOP 4
#define KZ_API_MAX_TOKENS_LIMIT (1 << 20)
#define KZ_API_MAX_DEPTH 64

/* An error as the client sees it: HTTP status plus the OpenAI error object. */
struct kz_api_error {
    int status;
    const char *type;  /* static: "invalid_request_error", "server_error", ... */
    const char *code;  /* static or NULL */
    char param[96];    /* "" when no parameter is at fault */
    char message[512];
};

/* Fills e and returns KZ_EINVAL (status 4xx) or KZ_EIO (5xx), for `return kz_api_fail(...)`. */
kz_status kz_api_fail(struct kz_api_error *e, int status, const char *type, const char *code, const char *param,
                      const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

/* {"error":{"message","type","param","code"}}; kz_free the result (NULL on OOM). */
char *kz_api_error_json(const struct kz_api_error *e);

enum kz_api_kind { KZ_API_CHAT, KZ_API_COMPLETION, KZ_API_EMBEDDINGS };

struct kz_api_request {
    enum kz_api_kind kind;
    json_t *root;          /* the parsed body (owned) */
    const char *model;
    json_t *messages;      /* chat: normalized [{role, content: string}] (owned) */
    const char **inputs;   /* completion prompts / embedding inputs (n_inputs) */
    size_t n_inputs;
    int max_tokens;        /* -1: not given */
    int has_temperature, has_top_p, has_seed;
    double temperature, top_p, min_p, repeat_penalty;
    int top_k;             /* -1: not given */
    double presence_penalty, frequency_penalty;
    uint64_t seed;
    const char *stop[KZ_API_MAX_STOP];
    size_t n_stop;
    int stream, include_usage;
    const char *user;
    int base64;            /* embeddings: encoding_format "base64" */
};

/* Decodes a request body of `kind`. On failure *e says why (status 400).
 * Call kz_api_request_free afterwards in both cases: a failed decode may
 * already hold the parsed body. */
kz_status kz_api_request_decode(enum kz_api_kind kind, const char *body, size_t len, struct kz_api_request *req,
                                struct kz_api_error *e);
void kz_api_request_free(struct kz_api_request *req);

/* ---- responses ------------------------------------------------------------ */

struct kz_api_usage {
    long prompt_tokens;
    long completion_tokens;
};

/* A new id such as "chatcmpl-<24 hex digits>", unique in this process and
 * unlikely to repeat across processes, into buf (>= 48 bytes). */
void kz_api_new_id(const char *prefix, char *buf, size_t size);

/* Complete (non-streamed) responses. texts/finish have n_choices entries. */
char *kz_api_chat_response(const char *id, long created, const char *model, const char *text, size_t text_len,
                           const char *finish, const struct kz_api_usage *u);
char *kz_api_completion_response(const char *id, long created, const char *model, size_t n_choices,
                                 const char *const *texts, const size_t *text_lens, const char *const *finish,
                                 const struct kz_api_usage *u);

/* One SSE event "data: {...}\n\n" for a stream chunk. For chat: role set on the
 * first chunk; text may be NULL (no content); finish NULL while streaming.
 * usage_null: add "usage":null (when the client asked for usage). */
char *kz_api_chat_chunk(const char *id, long created, const char *model, const char *role, const char *text,
                        size_t text_len, const char *finish, int usage_null);
char *kz_api_completion_chunk(const char *id, long created, const char *model, size_t index, const char *text,
                              size_t text_len, const char *finish, int usage_null);
/* The final usage chunk (choices: []). */
char *kz_api_usage_chunk(const char *id, long created, const char *model, int chat, const struct kz_api_usage *u);
/* "data: {"error":{...}}\n\n" for a failure after the stream started. */
char *kz_api_error_event(const struct kz_api_error *e);

/* Embeddings: n vectors of dim floats each. */
char *kz_api_embeddings_response(const char *model, size_t n, size_t dim, const float *vectors, int base64,
                                 long prompt_tokens);

/* GET /v1/models and /v1/models/{id}. */
char *kz_api_models_response(size_t n, const char *const *ids, long created);
char *kz_api_model_response(const char *id, long created);

#endif
