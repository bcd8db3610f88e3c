/* SPDX-License-Identifier: MIT
 * Bedrock Converse answers that are not streamed: the JSON body of a
 * successful call, and error answers (status, x-amzn-ErrorType, body).
 * Also the functions the stream decoder shares (bedrock_int.h).
 */
#include <stdio.h>
#include <string.h>

#include "core/utf8.h"
#include "router/bedrock.h"
#include "router/bedrock_int.h"

const char *kz_bedrock__finish(const char *r)
{
    if (strcmp(r, "max_tokens") == 0 || strcmp(r, "model_context_window_exceeded") == 0)
        return KZ_FINISH_LENGTH;
    if (strcmp(r, "tool_use") == 0)
        return KZ_FINISH_TOOL_CALLS;
    if (strcmp(r, "guardrail_intervened") == 0 || strcmp(r, "content_filtered") == 0)
        return KZ_FINISH_CONTENT_FILTER;
    return KZ_FINISH_STOP; /* end_turn, stop_sequence, and reasons we do not know */
}

static kz_status count(const json_t *usage, const char *key, const char *where, long *out, struct kz_err *err)
{
    const json_t *v = json_object_get(usage, key);
    *out = -1;
    if (!v)
        return KZ_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 0x7fffffffLL)
        return kz_err_set(err, KZ_EPROTO, "bedrock: %s.usage.%s is not a token count", where, key);
    *out = (long)json_integer_value(v);
    return KZ_OK;
}

kz_status kz_bedrock__usage(const json_t *usage, const char *where, long *in, long *out, struct kz_err *err)
{
    *in = *out = -1;
    if (!json_is_object(usage))
        return kz_err_set(err, KZ_EPROTO, "bedrock: %s.usage is not an object", where);
    kz_status rc = count(usage, "inputTokens", where, in, err);
    return rc ? rc : count(usage, "outputTokens", where, out, err);
}

void kz_bedrock__copy_text(char *dst, size_t size, const char *src, size_t len)
{
    size_t j = 0, i = 0;
    while (i < len) {
        size_t n = kz_utf8_seq_len(src + i, len - i);
        if (j + (n ? n : 1) >= size)
            break;
        if (n == 0) {
            dst[j++] = '?';
            i++;
        } else if (n == 1 && ((unsigned char)src[i] < 0x20 || src[i] == 0x7f)) {
            dst[j++] = ' ';
            i++;
        } else {
            memcpy(dst + j, src + i, n);
            j += n;
            i += n;
        }
    }
    dst[j] = '\0';
}

kz_status kz_bedrock__parse_object(const void *data, size_t len, const char *what, json_t **out, struct kz_err *err)
{
    json_error_t je;
    *out = json_loadb(data, len, JSON_DECODE_ANY, &je); /* so a bare value is "not an object" */
    if (json_is_object(*out))
        return KZ_OK;
    if (*out) {
        json_decref(*out);
        *out = NULL;
        return kz_err_set(err, KZ_EPROTO, "bedrock: %s is not a JSON object", what);
    }
    return kz_err_set(err, KZ_EPROTO, "bedrock: %s is not JSON: %s", what, je.text);
}

static int emit(kz_ev_fn fn, void *ud, const struct kz_ev *ev) { return fn(ud, ev) != 0; }

kz_status kz_bedrock_decode_response(const char *body, size_t len, kz_ev_fn fn, void *ud, struct kz_err *err)
{
    json_t *root;
    kz_status rc = kz_bedrock__parse_object(body, len, "the Converse response", &root, err);
    if (rc)
        return rc;
    const json_t *content = json_object_get(json_object_get(json_object_get(root, "output"), "message"), "content");
    const json_t *stop = json_object_get(root, "stopReason"), *usage = json_object_get(root, "usage");
    long in = -1, out = -1;
    if (!json_is_array(content))
        rc = kz_err_set(err, KZ_EPROTO, "bedrock: the Converse response has no output.message.content array");
    else if (!json_is_string(stop))
        rc = kz_err_set(err, KZ_EPROTO, "bedrock: the Converse response has no stopReason string");
    else if (usage)
        rc = kz_bedrock__usage(usage, "response", &in, &out, err);
    /* Check every block before sending any text, so that a malformed body
     * produces no events at all. */
    size_t i;
    const json_t *block;
    if (rc == KZ_OK) {
        json_array_foreach(content, i, block) {
            const json_t *t = json_object_get(block, "text");
            if (!json_is_object(block) || (t && !json_is_string(t))) {
                rc = kz_err_set(err, KZ_EPROTO, "bedrock: output.message.content[%zu] is malformed", i);
                break;
            }
        }
    }
    if (rc == KZ_OK) {
        int stopped = 0;
        json_array_foreach(content, i, block) {
            const json_t *t = json_object_get(block, "text");
            if (!t || json_string_length(t) == 0)
                continue; /* toolUse, reasoningContent, ...: not surfaced */
            struct kz_ev ev = {.type = KZ_EV_TEXT, .text = json_string_value(t), .len = json_string_length(t)};
            if ((stopped = emit(fn, ud, &ev)))
                break;
        }
        struct kz_ev fin = {.type = KZ_EV_FINISH, .finish = kz_bedrock__finish(json_string_value(stop))};
        if (!stopped)
            stopped = emit(fn, ud, &fin);
        struct kz_ev use = {.type = KZ_EV_USAGE, .prompt_tokens = in, .completion_tokens = out};
        if (!stopped && usage)
            emit(fn, ud, &use);
    }
    json_decref(root);
    return rc;
}

/* "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
 * -> "ValidationException"; "com.amazon.coral#ThrottlingException" ->
 * "ThrottlingException". */
static void error_type(char *dst, size_t size, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    if (colon)
        n = (size_t)(colon - s);
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == '#') {
            s += i;
            n -= i;
            break;
        }
    kz_bedrock__copy_text(dst, size, s, n);
}

void kz_bedrock_http_error(int status, const char *amzn_error_type, const char *body, size_t len,
                           struct kz_bedrock_error *e)
{
    e->status = status;
    e->err_type[0] = '\0';
    e->message[0] = '\0';
    json_error_t je;
    json_t *root = body && len ? json_loadb(body, len, 0, &je) : NULL;
    if (amzn_error_type && amzn_error_type[0]) {
        error_type(e->err_type, sizeof e->err_type, amzn_error_type, strlen(amzn_error_type));
    } else if (json_is_object(root)) {
        const json_t *t = json_object_get(root, "__type");
        if (!json_is_string(t))
            t = json_object_get(root, "code");
        if (json_is_string(t))
            error_type(e->err_type, sizeof e->err_type, json_string_value(t), json_string_length(t));
    }
    const json_t *m = json_object_get(root, "message");
    if (!json_is_string(m))
        m = json_object_get(root, "Message");
    if (json_is_string(m) && json_string_length(m))
        kz_bedrock__copy_text(e->message, sizeof e->message, json_string_value(m), json_string_length(m));
    else
        snprintf(e->message, sizeof e->message, "Bedrock answered HTTP %d%s%s", status, e->err_type[0] ? " " : "",
                 e->err_type);
    json_decref(root);
}

void kz_bedrock_error_event(const struct kz_bedrock_error *e, struct kz_ev *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->type = KZ_EV_ERROR;
    ev->status = e->status;
    ev->err_type = e->err_type[0] ? e->err_type : NULL;
    ev->message = e->message;
}
