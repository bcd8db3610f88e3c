/* SPDX-License-Identifier: MIT
 * OpenAI request decoding: JSON body -> struct kz_api_request.
 *
 * Every numeric parameter is range-checked here, before anything sizes
 * memory or loops from it; every rejection names the parameter in `param`
 * and in the message, in the shape OpenAI's own API uses.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/openai.h"
#include "core/alloc.h"
#include "core/jsonr.h"

kz_status kz_api_fail(struct kz_api_error *e, int status, const char *type, const char *code, const char *param,
                      const char *fmt, ...)
{
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return status >= 500 ? KZ_EIO : KZ_EINVAL;
}

#define BAD(param, ...) kz_api_fail(e, 400, "invalid_request_error", NULL, param, __VA_ARGS__)

static int depth_ok(const json_t *v, int depth)
{
    if (depth > KZ_API_MAX_DEPTH)
        return 0;
    if (json_is_array(v)) {
        size_t i;
        const json_t *x;
        json_array_foreach(v, i, x) if (!depth_ok(x, depth + 1)) return 0;
    } else if (json_is_object(v)) {
        const char *k;
        const json_t *x;
        json_object_foreach((json_t *)(uintptr_t)v, k, x) if (!depth_ok(x, depth + 1)) return 0;
    }
    return 1;
}

/* ---- typed fields -------------------------------------------------------------- */

static kz_status get_number(json_t *root, const char *key, double lo, double hi, int *has, double *out,
                            struct kz_api_error *e)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return KZ_OK;
    if (!json_is_number(v))
        return BAD(key, "'%s' must be a number", key);
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return BAD(key, "'%s' must be between %g and %g (got %g)", key, lo, hi, d);
    *out = d;
    if (has)
        *has = 1;
    return KZ_OK;
}

static kz_status get_int(json_t *root, const char *key, long long lo, long long hi, int *has, long long *out,
                         struct kz_api_error *e)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return KZ_OK;
    if (!json_is_integer(v))
        return BAD(key, "'%s' must be an integer", key);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return BAD(key, "'%s' must be between %lld and %lld (got %lld)", key, lo, hi, x);
    *out = x;
    if (has)
        *has = 1;
    return KZ_OK;
}

static kz_status get_bool(json_t *root, const char *key, int *out, struct kz_api_error *e)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return KZ_OK;
    if (!json_is_boolean(v))
        return BAD(key, "'%s' must be a boolean", key);
    *out = json_is_true(v);
    return KZ_OK;
}

static kz_status get_string(json_t *root, const char *key, int required, const char **out, struct kz_api_error *e)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required)
            return BAD(key, "'%s' is required", key);
        return KZ_OK;
    }
    if (!json_is_string(v))
        return BAD(key, "'%s' must be a string", key);
    *out = json_string_value(v);
    return KZ_OK;
}

/* Fields that change the semantics of a request and that kyozon does not
 * implement: refuse them rather than silently produce something else. */
static kz_status unsupported(json_t *root, enum kz_api_kind kind, struct kz_api_error *e)
{
    json_t *v;
    long long n = 1;
    kz_status rc = get_int(root, "n", 1, 1 << 20, NULL, &n, e);
    if (rc)
        return rc;
    if (n != 1)
        return BAD("n", "'n' > 1 is not supported; send separate requests");
    if (kind == KZ_API_CHAT) {
        v = json_object_get(root, "tools");
        if (v && !json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0))
            return BAD("tools", "'tools' (function calling) is not supported yet");
        v = json_object_get(root, "tool_choice");
        if (v && !json_is_null(v) && !(json_is_string(v) && strcmp(json_string_value(v), "none") == 0))
            return BAD("tool_choice", "'tool_choice' is not supported yet");
        v = json_object_get(root, "functions");
        if (v && !json_is_null(v))
            return BAD("functions", "'functions' (function calling) is not supported");
        v = json_object_get(root, "function_call");
        if (v && !json_is_null(v))
            return BAD("function_call", "'function_call' is not supported");
        v = json_object_get(root, "logprobs");
        if (v && json_is_true(v))
            return BAD("logprobs", "'logprobs' is not supported yet");
        v = json_object_get(root, "top_logprobs");
        if (v && !json_is_null(v))
            return BAD("top_logprobs", "'top_logprobs' is not supported yet");
        v = json_object_get(root, "response_format");
        if (v && !json_is_null(v)) {
            json_t *t = json_object_get(v, "type");
            if (!json_is_object(v) || !json_is_string(t) || strcmp(json_string_value(t), "text") != 0)
                return BAD("response_format", "only 'response_format' {\"type\": \"text\"} is supported");
        }
    }
    if (kind == KZ_API_COMPLETION) {
        v = json_object_get(root, "logprobs");
        if (v && !json_is_null(v) && !(json_is_integer(v) && json_integer_value(v) == 0))
            return BAD("logprobs", "'logprobs' is not supported yet");
        v = json_object_get(root, "echo");
        if (v && json_is_true(v))
            return BAD("echo", "'echo' is not supported");
        v = json_object_get(root, "suffix");
        if (v && !json_is_null(v))
            return BAD("suffix", "'suffix' is not supported");
        long long bo = 1;
        rc = get_int(root, "best_of", 1, 1 << 20, NULL, &bo, e);
        if (rc)
            return rc;
        if (bo != 1)
            return BAD("best_of", "'best_of' > 1 is not supported");
    }
    v = json_object_get(root, "logit_bias");
    if (v && !json_is_null(v) && !(json_is_object(v) && json_object_size(v) == 0))
        return BAD("logit_bias", "'logit_bias' is not supported yet");
    return KZ_OK;
}

/* ---- messages ------------------------------------------------------------------ */

/* content: a string, or an array of {"type":"text","text":...} parts joined. */
static kz_status message_text(json_t *content, size_t i, json_t **out, struct kz_api_error *e)
{
    char param[96]; /* written only on the way to an error: requests carry many messages */
    if (json_is_string(content)) {
        *out = json_incref(content);
        return KZ_OK;
    }
    if (!json_is_array(content)) {
        snprintf(param, sizeof param, "messages[%zu].content", i);
        return BAD(param, "'%s' must be a string or an array of text parts", param);
    }
    size_t total = 0, j;
    json_t *part;
    json_array_foreach(content, j, part) {
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(type) || strcmp(json_string_value(type), "text") != 0) {
            snprintf(param, sizeof param, "messages[%zu].content[%zu].type", i, j);
            if (!json_is_object(part) || !json_is_string(type))
                return BAD(param, "each content part must be an object with a 'type'");
            return BAD(param, "content part type '%s' is not supported (only 'text')", json_string_value(type));
        }
        if (!json_is_string(text)) {
            snprintf(param, sizeof param, "messages[%zu].content[%zu].text", i, j);
            return BAD(param, "'%s' must be a string", param);
        }
        total += json_string_length(text);
    }
    char *buf = kz_malloc(total + 1);
    if (!buf)
        return kz_api_fail(e, 503, "server_error", NULL, NULL, "out of memory");
    size_t off = 0;
    json_array_foreach(content, j, part) {
        json_t *text = json_object_get(part, "text");
        memcpy(buf + off, json_string_value(text), json_string_length(text));
        off += json_string_length(text);
    }
    *out = json_stringn_nocheck(buf, off); /* parts were valid UTF-8 already */
    kz_free(buf);
    return *out ? KZ_OK : kz_api_fail(e, 503, "server_error", NULL, NULL, "out of memory");
}

static kz_status decode_messages(struct kz_api_request *r, struct kz_api_error *e)
{
    json_t *msgs = json_object_get(r->root, "messages");
    if (!msgs)
        return BAD("messages", "'messages' is required");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return BAD("messages", "'messages' must be a non-empty array");
    r->messages = json_array();
    if (!r->messages)
        return kz_api_fail(e, 503, "server_error", NULL, NULL, "out of memory");
    size_t i;
    json_t *m;
    char param[96]; /* written only on the way to an error */
#define BAD_MSG(field, ...) (snprintf(param, sizeof param, "messages[%zu]%s", i, field), BAD(param, __VA_ARGS__))
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m))
            return BAD_MSG("", "'messages[%zu]' must be an object", i);
        json_t *role = json_object_get(m, "role");
        if (!json_is_string(role))
            return BAD_MSG(".role", "'messages[%zu].role' is required and must be a string", i);
        const char *rs = json_string_value(role);
        if (strcmp(rs, "developer") == 0)
            rs = "system"; /* the newer name for the same role */
        if (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant"))
            return BAD_MSG(".role", "role '%s' is not supported (system, developer, user, assistant)", rs);
        json_t *tc = json_object_get(m, "tool_calls");
        if (tc && !json_is_null(tc))
            return BAD_MSG(".tool_calls", "'tool_calls' are not supported yet");
        json_t *content = json_object_get(m, "content"), *text = NULL;
        if (!content || json_is_null(content))
            return BAD_MSG(".content", "'messages[%zu].content' is required", i);
        kz_status rc = message_text(content, i, &text, e);
        if (rc)
            return rc;
        /* set by hand, not json_pack, which parses its format for every
         * message; role first: chat templates see the keys in this order */
        json_t *nm = json_object();
        int bad = !nm || json_object_set_new_nocheck(nm, "role", json_string_nocheck(rs)) != 0;
        if (bad)
            json_decref(text);
        else
            bad = json_object_set_new_nocheck(nm, "content", text) != 0; /* takes text either way */
        if (bad)
            json_decref(nm);
        if (bad || json_array_append_new(r->messages, nm)) /* takes nm either way */
            return kz_api_fail(e, 503, "server_error", NULL, NULL, "out of memory");
    }
#undef BAD_MSG
    return KZ_OK;
}

/* prompt / input: a string or a non-empty array of strings. */
static kz_status decode_inputs(struct kz_api_request *r, const char *key, struct kz_api_error *e)
{
    json_t *v = json_object_get(r->root, key);
    if (!v || json_is_null(v))
        return BAD(key, "'%s' is required", key);
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (json_is_array(v) && n == 0)
        return BAD(key, "'%s' must not be an empty array", key);
    if (!json_is_string(v) && !json_is_array(v))
        return BAD(key, "'%s' must be a string or an array of strings", key);
    r->inputs = kz_calloc(n, sizeof *r->inputs);
    if (!r->inputs)
        return kz_api_fail(e, 503, "server_error", NULL, NULL, "out of memory");
    r->n_inputs = n;
    if (json_is_string(v)) {
        r->inputs[0] = json_string_value(v);
        return KZ_OK;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(v, i);
        if (!json_is_string(s)) {
            char param[96];
            snprintf(param, sizeof param, "%s[%zu]", key, i);
            return BAD(param, "'%s' must be a string (token arrays are not supported)", param);
        }
        r->inputs[i] = json_string_value(s);
    }
    return KZ_OK;
}

static kz_status decode_stop(struct kz_api_request *r, struct kz_api_error *e)
{
    json_t *v = json_object_get(r->root, "stop");
    if (!v || json_is_null(v))
        return KZ_OK;
    if (json_is_string(v)) {
        if (json_string_length(v) == 0)
            return BAD("stop", "'stop' must not be empty");
        r->stop[r->n_stop++] = json_string_value(v);
        return KZ_OK;
    }
    if (!json_is_array(v))
        return BAD("stop", "'stop' must be a string or an array of strings");
    if (json_array_size(v) > KZ_API_MAX_STOP)
        return BAD("stop", "'stop' holds at most %d sequences", KZ_API_MAX_STOP);
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) {
        if (!json_is_string(s) || json_string_length(s) == 0)
            return BAD("stop", "'stop[%zu]' must be a non-empty string", i);
        r->stop[r->n_stop++] = json_string_value(s);
    }
    return KZ_OK;
}

static kz_status decode_sampling(struct kz_api_request *r, struct kz_api_error *e)
{
    kz_status rc;
    long long mt = -1, mct = -1, seed = 0, top_k = -1;
    int has_mt = 0, has_mct = 0;
    if ((rc = get_int(r->root, "max_tokens", 1, KZ_API_MAX_TOKENS_LIMIT, &has_mt, &mt, e)) ||
        (rc = get_int(r->root, "max_completion_tokens", 1, KZ_API_MAX_TOKENS_LIMIT, &has_mct, &mct, e)))
        return rc;
    r->max_tokens = has_mct ? (int)mct : has_mt ? (int)mt : -1;
    if ((rc = get_number(r->root, "temperature", 0.0, 2.0, &r->has_temperature, &r->temperature, e)) ||
        (rc = get_number(r->root, "top_p", 0.0, 1.0, &r->has_top_p, &r->top_p, e)) ||
        (rc = get_number(r->root, "min_p", 0.0, 1.0, NULL, &r->min_p, e)) ||
        (rc = get_number(r->root, "repeat_penalty", 0.01, 100.0, NULL, &r->repeat_penalty, e)) ||
        (rc = get_number(r->root, "presence_penalty", -2.0, 2.0, NULL, &r->presence_penalty, e)) ||
        (rc = get_number(r->root, "frequency_penalty", -2.0, 2.0, NULL, &r->frequency_penalty, e)) ||
        (rc = get_int(r->root, "seed", INT64_MIN, INT64_MAX, &r->has_seed, &seed, e)) ||
        (rc = get_int(r->root, "top_k", 0, 1 << 20, NULL, &top_k, e)))
        return rc;
    r->seed = (uint64_t)seed;
    r->top_k = (int)top_k;
    return decode_stop(r, e);
}

static kz_status decode_stream(struct kz_api_request *r, struct kz_api_error *e)
{
    kz_status rc = get_bool(r->root, "stream", &r->stream, e);
    if (rc)
        return rc;
    json_t *so = json_object_get(r->root, "stream_options");
    if (!so || json_is_null(so))
        return KZ_OK;
    if (!json_is_object(so))
        return BAD("stream_options", "'stream_options' must be an object");
    if (!r->stream)
        return BAD("stream_options", "'stream_options' is only allowed when 'stream' is true");
    return get_bool(so, "include_usage", &r->include_usage, e);
}

kz_status kz_api_request_decode(enum kz_api_kind kind, const char *body, size_t len, struct kz_api_request *r,
                                struct kz_api_error *e)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->max_tokens = -1;
    r->top_k = -1;
    r->min_p = -1.0;
    r->repeat_penalty = 1.0;
    json_error_t je;
    /* the common body without jansson's byte-at-a-time parser; anything it
     * does not claim (errors included) gets jansson's verdict and words */
    r->root = kz_jr_object(body, len, KZ_API_MAX_DEPTH + 1);
    if (!r->root)
        r->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!r->root)
        return BAD(NULL, "invalid JSON in the request body at line %d, column %d: %s", je.line, je.column, je.text);
    if (!json_is_object(r->root))
        return BAD(NULL, "the request body must be a JSON object");
    if (!depth_ok(r->root, 0))
        return BAD(NULL, "the request body is nested deeper than %d levels", KZ_API_MAX_DEPTH);
    kz_status rc = get_string(r->root, "model", 1, &r->model, e);
    if (rc)
        return rc;
    if (!r->model[0])
        return BAD("model", "'model' must not be empty");
    if ((rc = get_string(r->root, "user", 0, &r->user, e)) || (rc = unsupported(r->root, kind, e)))
        return rc;
    switch (kind) {
    case KZ_API_CHAT:
        if ((rc = decode_messages(r, e)) || (rc = decode_sampling(r, e)) || (rc = decode_stream(r, e)))
            return rc;
        break;
    case KZ_API_COMPLETION:
        if ((rc = decode_inputs(r, "prompt", e)) || (rc = decode_sampling(r, e)) || (rc = decode_stream(r, e)))
            return rc;
        break;
    case KZ_API_EMBEDDINGS: {
        if ((rc = decode_inputs(r, "input", e)))
            return rc;
        const char *fmt = "float";
        if ((rc = get_string(r->root, "encoding_format", 0, &fmt, e)))
            return rc;
        if (strcmp(fmt, "float") && strcmp(fmt, "base64"))
            return BAD("encoding_format", "'encoding_format' must be 'float' or 'base64'");
        r->base64 = strcmp(fmt, "base64") == 0;
        json_t *d = json_object_get(r->root, "dimensions");
        if (d && !json_is_null(d))
            return BAD("dimensions", "'dimensions' is not supported: the model's embedding size is fixed");
        break;
    }
    }
    return KZ_OK;
}

void kz_api_request_free(struct kz_api_request *r)
{
    if (!r)
        return;
    json_decref(r->messages);
    json_decref(r->root);
    kz_free(r->inputs);
    memset(r, 0, sizeof *r);
}
