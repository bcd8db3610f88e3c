/* SPDX-License-Identifier: MIT
 * OpenAI response encoding: complete responses, SSE stream chunks, usage,
 * error objects, embeddings and model lists, field for field as the OpenAI
 * API sends them (see WIRE.md). Model text may hold invalid UTF-8 (a token
 * can end inside a character); JSON cannot, so such bytes become U+FFFD.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "api/openai.h"
#include "core/alloc.h"
#include "core/fmt.h"
#include "core/jsonw.h"

static char *dump(json_t *v)
{
    if (!v)
        return NULL;
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(v);
    if (!s)
        return NULL;
    char *out = kz_strdup(s); /* callers free with kz_free */
    free(s);                  /* jansson's own allocation */
    return out;
}

/* Ids must be unique, not secret: a per-process random salt (one getrandom)
 * and a counter through splitmix64, a bijection, so no two ids of a process
 * are alike and those of two processes collide with chance 2^-96 at most.
 * One syscall per process instead of one per request. */
static uint64_t id_salt[2];
static atomic_uint_fast64_t id_counter;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;

static void id_init(void)
{
    if (getrandom(id_salt, sizeof id_salt, 0) != (ssize_t)sizeof id_salt) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        id_salt[0] = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        id_salt[1] = (uint64_t)getpid();
    }
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

void kz_api_new_id(const char *prefix, char *buf, size_t size)
{
    pthread_once(&id_once, id_init);
    uint64_t n = atomic_fetch_add(&id_counter, 1);
    /* prefix-<8 hex><16 hex>, built by hand: one of these per request */
    char hex[KZ_FMT_HEX_SIZE * 2];
    size_t k = kz_fmt_hex(hex, id_salt[1] & 0xffffffffu, 8);
    kz_fmt_hex(hex + k, splitmix64(n ^ id_salt[0]), 16);
    size_t pl = kz_fmt_copy(buf, size, prefix);
    if (pl + 1 < size) {
        buf[pl] = '-';
        kz_fmt_copy(buf + pl + 1, size - pl - 1, hex);
    }
}

/* The answers below are written once per request or once per token, so they
 * go straight into a buffer (core/jsonw.h) instead of through a jansson
 * tree, which cost more than the rest of a proxied request; the bytes are
 * the same as jansson's compact dump (tests/api/test_openai.c). */

/* {"id":...,"object":...,"created":...,"model":..., */
static void head(struct kz_buf *b, const char *id, const char *object, long created, const char *model)
{
    KZ_JW_LIT(b, "{\"id\":");
    kz_jw_cstr(b, id);
    KZ_JW_LIT(b, ",\"object\":\"");
    kz_jw_raw(b, object, strlen(object));
    KZ_JW_LIT(b, "\",\"created\":");
    kz_jw_int(b, created);
    KZ_JW_LIT(b, ",\"model\":");
    kz_jw_cstr(b, model);
}

static void usage_w(struct kz_buf *b, const struct kz_api_usage *u)
{
    KZ_JW_LIT(b, "{\"prompt_tokens\":");
    kz_jw_int(b, u->prompt_tokens);
    KZ_JW_LIT(b, ",\"completion_tokens\":");
    kz_jw_int(b, u->completion_tokens);
    KZ_JW_LIT(b, ",\"total_tokens\":");
    kz_jw_int(b, (long long)u->prompt_tokens + u->completion_tokens);
    KZ_JW_LIT(b, "}");
}

/* The buffer's text, or NULL (and nothing to free) when it ran out of memory. */
static char *done(struct kz_buf *b)
{
    if (b->oom) {
        kz_buf_free(b);
        return NULL;
    }
    return b->p;
}

/* "data: " + the chunk + "\n\n" */
static char *event_done(struct kz_buf *b)
{
    KZ_JW_LIT(b, "\n\n");
    return done(b);
}

/* A chunk's choice from its logprobs on, and the rest of the event. */
static char *chunk_end(struct kz_buf *b, const char *finish, int usage_null)
{
    KZ_JW_LIT(b, ",\"logprobs\":null,\"finish_reason\":");
    kz_jw_cstr(b, finish);
    KZ_JW_LIT(b, "}]");
    if (usage_null)
        KZ_JW_LIT(b, ",\"usage\":null");
    KZ_JW_LIT(b, "}");
    return event_done(b);
}

/* {"error":{...}}. The message and param can quote client bytes (a JSON
 * parse error shows the offending text), which may not be UTF-8:
 * kz_jw_str repairs them as it does model text. */
static void error_w(struct kz_buf *b, const struct kz_api_error *e)
{
    KZ_JW_LIT(b, "{\"error\":{\"message\":");
    kz_jw_cstr(b, e->message);
    KZ_JW_LIT(b, ",\"type\":");
    kz_jw_cstr(b, e->type ? e->type : "error");
    KZ_JW_LIT(b, ",\"param\":");
    kz_jw_cstr(b, e->param[0] ? e->param : NULL);
    KZ_JW_LIT(b, ",\"code\":");
    kz_jw_cstr(b, e->code);
    KZ_JW_LIT(b, "}}");
}

char *kz_api_error_json(const struct kz_api_error *e)
{
    struct kz_buf b = {0};
    error_w(&b, e);
    return done(&b);
}

char *kz_api_error_event(const struct kz_api_error *e)
{
    struct kz_buf b = {0};
    KZ_JW_LIT(&b, "data: ");
    error_w(&b, e);
    return event_done(&b);
}

char *kz_api_chat_response(const char *id, long created, const char *model, const char *text, size_t text_len,
                           const char *finish, const struct kz_api_usage *u)
{
    struct kz_buf b = {0};
    head(&b, id, "chat.completion", created, model);
    KZ_JW_LIT(&b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    kz_jw_str(&b, text ? text : "", text ? text_len : 0);
    KZ_JW_LIT(&b, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":");
    kz_jw_cstr(&b, finish);
    KZ_JW_LIT(&b, "}],\"usage\":");
    usage_w(&b, u);
    KZ_JW_LIT(&b, "}");
    return done(&b);
}

char *kz_api_completion_response(const char *id, long created, const char *model, size_t n_choices,
                                 const char *const *texts, const size_t *text_lens, const char *const *finish,
                                 const struct kz_api_usage *u)
{
    struct kz_buf b = {0};
    head(&b, id, "text_completion", created, model);
    KZ_JW_LIT(&b, ",\"choices\":[");
    for (size_t i = 0; i < n_choices; i++) {
        KZ_JW_LIT(&b, "{\"text\":");
        kz_jw_str(&b, texts[i] ? texts[i] : "", texts[i] ? text_lens[i] : 0);
        KZ_JW_LIT(&b, ",\"index\":");
        kz_jw_int(&b, (long long)i);
        KZ_JW_LIT(&b, ",\"logprobs\":null,\"finish_reason\":");
        kz_jw_cstr(&b, finish[i]);
        kz_jw_raw(&b, i + 1 < n_choices ? "}," : "}", i + 1 < n_choices ? 2 : 1);
    }
    KZ_JW_LIT(&b, "],\"usage\":");
    usage_w(&b, u);
    KZ_JW_LIT(&b, "}");
    return done(&b);
}

char *kz_api_chat_chunk(const char *id, long created, const char *model, const char *role, const char *text,
                        size_t text_len, const char *finish, int usage_null)
{
    struct kz_buf b = {0};
    KZ_JW_LIT(&b, "data: ");
    head(&b, id, "chat.completion.chunk", created, model);
    KZ_JW_LIT(&b, ",\"choices\":[{\"index\":0,\"delta\":{");
    if (role) {
        KZ_JW_LIT(&b, "\"role\":");
        kz_jw_cstr(&b, role);
    }
    if (text) {
        kz_jw_raw(&b, role ? ",\"content\":" : "\"content\":", role ? 11 : 10);
        kz_jw_str(&b, text, text_len);
    }
    KZ_JW_LIT(&b, "}");
    return chunk_end(&b, finish, usage_null);
}

char *kz_api_completion_chunk(const char *id, long created, const char *model, size_t index, const char *text,
                              size_t text_len, const char *finish, int usage_null)
{
    struct kz_buf b = {0};
    KZ_JW_LIT(&b, "data: ");
    head(&b, id, "text_completion", created, model);
    KZ_JW_LIT(&b, ",\"choices\":[{\"text\":");
    kz_jw_str(&b, text ? text : "", text ? text_len : 0);
    KZ_JW_LIT(&b, ",\"index\":");
    kz_jw_int(&b, (long long)index);
    return chunk_end(&b, finish, usage_null);
}

char *kz_api_usage_chunk(const char *id, long created, const char *model, int chat, const struct kz_api_usage *u)
{
    struct kz_buf b = {0};
    KZ_JW_LIT(&b, "data: ");
    head(&b, id, chat ? "chat.completion.chunk" : "text_completion", created, model);
    KZ_JW_LIT(&b, ",\"choices\":[],\"usage\":");
    usage_w(&b, u);
    KZ_JW_LIT(&b, "}");
    return event_done(&b);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 (with padding) of n bytes; kz_free the result. */
static char *base64(const unsigned char *p, size_t n)
{
    char *o = kz_malloc((n + 2) / 3 * 4 + 1);
    if (!o)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        o[j++] = b64[v >> 18 & 63];
        o[j++] = b64[v >> 12 & 63];
        o[j++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        o[j++] = i + 2 < n ? b64[v & 63] : '=';
    }
    o[j] = '\0';
    return o;
}

char *kz_api_embeddings_response(const char *model, size_t n, size_t dim, const float *vectors, int b64enc,
                                 long prompt_tokens)
{
    json_t *data = json_array();
    for (size_t i = 0; data && i < n; i++) {
        const float *v = vectors + i * dim;
        json_t *emb;
        if (b64enc) {
            /* little-endian float32 bytes, as the OpenAI clients decode them */
            char *s = base64((const unsigned char *)v, dim * sizeof(float));
            emb = s ? json_string(s) : NULL;
            kz_free(s);
        } else {
            emb = json_array();
            for (size_t k = 0; emb && k < dim; k++)
                json_array_append_new(emb, json_real((double)v[k]));
        }
        json_array_append_new(data, json_pack("{s:s, s:I, s:o}", "object", "embedding", "index", (json_int_t)i,
                                              "embedding", emb));
    }
    return dump(json_pack("{s:s, s:o, s:s, s:{s:I, s:I}}", "object", "list", "data", data, "model", model, "usage",
                          "prompt_tokens", (json_int_t)prompt_tokens, "total_tokens", (json_int_t)prompt_tokens));
}

static json_t *model_obj(const char *id, long created)
{
    return json_pack("{s:s, s:s, s:I, s:s}", "id", id, "object", "model", "created", (json_int_t)created, "owned_by",
                     "kyozon");
}

char *kz_api_models_response(size_t n, const char *const *ids, long created)
{
    json_t *data = json_array();
    for (size_t i = 0; data && i < n; i++)
        json_array_append_new(data, model_obj(ids[i], created));
    return dump(json_pack("{s:s, s:o}", "object", "list", "data", data));
}

char *kz_api_model_response(const char *id, long created) { return dump(model_obj(id, created)); }
