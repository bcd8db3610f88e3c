/* SPDX-License-Identifier: MIT
 * The OpenAI dialect: chat and text completions (whole or streamed as SSE),
 * embeddings, the model list and /health. Requests go through kyozon's own
 * decoder (api/openai.h), so a body it refuses gets its 400 here too, and
 * the answers are built with its encoders: the shapes a client of kyozon
 * sees are the shapes a router in front of mockllm sees.
 *
 * Answers are deterministic: N tokens "tok0 ".."tok<N-1> " (fewer when
 * max_tokens is smaller, then finish_reason "length"), fixed "created",
 * ids numbered by request.
 */
#include <stdio.h>
#include <string.h>

#include "api/openai.h"
#include "core/alloc.h"
#include "core/sha256.h"
#include "mock.h"

/* The generated length and finish reason for a request asking max_tokens (-1: no limit). */
static int plan(const struct kz_mock_ctx *c, int max_tokens, const char **finish)
{
    if (max_tokens >= 0 && max_tokens < c->tokens) {
        *finish = "length";
        return max_tokens;
    }
    *finish = "stop";
    return c->tokens;
}

static struct kz_mock_script *decode_failed(const struct kz_mock_ctx *c, enum kz_mock_dialect d,
                                            struct kz_api_request *r, const struct kz_api_error *e)
{
    kz_api_request_free(r);
    return kz_mock_error(c, d, e->status, e->message);
}

/* Ends an SSE answer: the optional usage chunk, [DONE], the last chunk. */
static void stream_tail(struct kz_mock_script *s, const char *id, const char *model, int chat, int include_usage,
                        const struct kz_api_usage *u)
{
    if (include_usage) {
        char *ev = kz_api_usage_chunk(id, KZ_MOCK_CREATED, model, chat, u);
        kz_mock_add_chunk(s, ev, ev ? strlen(ev) : 0, 0);
        if (!ev)
            s->failed = 1;
        kz_free(ev);
    }
    const char *done = "data: [DONE]\n\n";
    kz_mock_add_chunk(s, done, strlen(done), 0);
    kz_mock_add_last_chunk(s);
}

/* Appends an event built by an encoder (which may have failed: NULL). */
static void add_event(struct kz_mock_script *s, char *ev, int token)
{
    if (!ev) {
        s->failed = 1;
        return;
    }
    kz_mock_add_chunk(s, ev, strlen(ev), token);
    kz_free(ev);
}

static struct kz_mock_script *json_answer(const struct kz_mock_ctx *c, char *body)
{
    if (!body)
        return NULL;
    struct kz_mock_script *s = kz_mock_respond(200, "application/json", NULL, body, strlen(body), c->keep_alive);
    kz_free(body);
    return s;
}

/* The request's content bytes: chat messages, or completion prompts. */
static size_t content_bytes(const struct kz_api_request *r)
{
    size_t bytes = 0, i;
    json_t *m;
    json_array_foreach(r->messages, i, m) {
        bytes += json_string_length(json_object_get(m, "content"));
    }
    for (i = 0; i < r->n_inputs; i++)
        bytes += strlen(r->inputs[i]);
    return bytes;
}

/* One stream chunk of choice `index`: token k's text, or (text NULL) the finish chunk. */
static char *text_chunk(int chat, const char *id, const char *model, size_t index, const char *text, size_t len,
                        const char *finish, int usage_null)
{
    if (chat)
        return kz_api_chat_chunk(id, KZ_MOCK_CREATED, model, NULL, text, len, finish, usage_null);
    return kz_api_completion_chunk(id, KZ_MOCK_CREATED, model, index, text ? text : "", len, finish, usage_null);
}

struct kz_mock_script *kz_mock_openai_text(const struct kz_mock_ctx *c, const char *model, enum kz_mock_dialect d,
                                           int chat)
{
    struct kz_api_request r;
    struct kz_api_error e;
    memset(&e, 0, sizeof e);
    if (kz_api_request_decode(chat ? KZ_API_CHAT : KZ_API_COMPLETION, c->req->body, c->req->body_len, &r, &e))
        return decode_failed(c, d, &r, &e);
    if (!model)
        model = r.model;
    const char *finish;
    int n = plan(c, r.max_tokens, &finish);
    /* completions answer every prompt: one choice each, the same tokens */
    size_t n_choices = chat || r.n_inputs == 0 ? 1 : r.n_inputs;
    if (n_choices > 64)
        n_choices = 64;
    struct kz_api_usage u = {kz_mock_prompt_tokens(content_bytes(&r)), n * (long)n_choices};
    char id[48];
    snprintf(id, sizeof id, "%s-mock%lu", chat ? "chatcmpl" : "cmpl", c->seq);
    struct kz_mock_script *s;
    if (!r.stream) {
        size_t len;
        char *text = kz_mock_tokens_text(n, &len);
        const char *texts[64], *fins[64];
        size_t lens[64];
        for (size_t i = 0; i < n_choices; i++) {
            texts[i] = text;
            lens[i] = len;
            fins[i] = finish;
        }
        char *body = !text ? NULL
                     : chat ? kz_api_chat_response(id, KZ_MOCK_CREATED, model, text, len, finish, &u)
                            : kz_api_completion_response(id, KZ_MOCK_CREATED, model, n_choices, texts, lens, fins, &u);
        s = json_answer(c, body);
        kz_free(text);
    } else if ((s = kz_mock_stream_start("text/event-stream", "Cache-Control: no-cache\r\n", c->keep_alive))) {
        int un = r.include_usage;
        if (chat)
            add_event(s, kz_api_chat_chunk(id, KZ_MOCK_CREATED, model, "assistant", "", 0, NULL, un), 0);
        for (int k = 0; k < n; k++) {
            char tok[80];
            size_t tl = kz_mock_token(k, tok, sizeof tok);
            for (size_t i = 0; i < n_choices; i++)
                add_event(s, text_chunk(chat, id, model, i, tok, tl, NULL, un), 1);
        }
        for (size_t i = 0; i < n_choices; i++)
            add_event(s, text_chunk(chat, id, model, i, NULL, 0, finish, un), 0);
        stream_tail(s, id, model, chat, un, &u);
    }
    kz_api_request_free(&r);
    return s;
}

/* Vectors from the SHA-256 of each input: deterministic, different inputs
 * give different vectors, and equal inputs equal ones. */
struct kz_mock_script *kz_mock_openai_embeddings(const struct kz_mock_ctx *c, const char *model,
                                                 enum kz_mock_dialect d)
{
    struct kz_api_request r;
    struct kz_api_error e;
    memset(&e, 0, sizeof e);
    if (kz_api_request_decode(KZ_API_EMBEDDINGS, c->req->body, c->req->body_len, &r, &e))
        return decode_failed(c, d, &r, &e);
    float *vec = kz_calloc(r.n_inputs, KZ_MOCK_EMBED_DIM * sizeof(float));
    size_t bytes = 0;
    for (size_t i = 0; vec && i < r.n_inputs; i++) {
        uint8_t dg[KZ_SHA256_SIZE];
        size_t len = strlen(r.inputs[i]);
        bytes += len;
        kz_sha256(r.inputs[i], len, dg);
        for (size_t k = 0; k < KZ_MOCK_EMBED_DIM; k++)
            vec[i * KZ_MOCK_EMBED_DIM + k] = ((float)dg[k] - 127.5f) / 127.5f;
    }
    struct kz_mock_script *s =
        vec ? json_answer(c, kz_api_embeddings_response(model ? model : r.model, r.n_inputs, KZ_MOCK_EMBED_DIM, vec,
                                                        r.base64, kz_mock_prompt_tokens(bytes)))
            : NULL;
    kz_free(vec);
    kz_api_request_free(&r);
    return s;
}

struct kz_mock_script *kz_mock_openai(const struct kz_mock_ctx *c)
{
    const char *method = c->req->method, *path = c->req->path;
    int post = strcmp(method, "POST") == 0, get = strcmp(method, "GET") == 0;
    if (strcmp(path, "/health") == 0 && get) {
        const char *ok = "{\"status\":\"ok\"}";
        return kz_mock_respond(200, "application/json", NULL, ok, strlen(ok), c->keep_alive);
    }
    if (strcmp(path, "/v1/models") == 0 && get) {
        const char *ids[1] = {KZ_MOCK_MODEL};
        return json_answer(c, kz_api_models_response(1, ids, KZ_MOCK_CREATED));
    }
    if (strcmp(path, "/v1/chat/completions") == 0 && post)
        return kz_mock_openai_text(c, NULL, KZ_MOCK_D_OPENAI, 1);
    if (strcmp(path, "/v1/completions") == 0 && post)
        return kz_mock_openai_text(c, NULL, KZ_MOCK_D_OPENAI, 0);
    if (strcmp(path, "/v1/embeddings") == 0 && post)
        return kz_mock_openai_embeddings(c, NULL, KZ_MOCK_D_OPENAI);
    char msg[160];
    snprintf(msg, sizeof msg, "mockllm has no route %.10s %.100s", method, path);
    return kz_mock_error(c, KZ_MOCK_D_OPENAI, 404, msg);
}
