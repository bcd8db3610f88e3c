/* SPDX-License-Identifier: MIT
 * OpenAI dialect, upstream side (see openai_up.h).
 */
#include "router/openai_up.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "router/openai_scan.h"

kz_status kz_openai_build_request(const struct kz_api_request *r, const char *upstream_model, int stream, char **body,
                                  size_t *len, struct kz_err *err)
{
    json_t *o = json_deep_copy(r->root);
    if (!o || json_object_set_new(o, "model", json_string(upstream_model)))
        goto oom;
    if (r->kind == KZ_API_EMBEDDINGS) {
        if (json_object_set_new(o, "encoding_format", json_string("float")))
            goto oom;
    } else if (stream) {
        json_t *so = json_object_get(o, "stream_options");
        if (!json_is_object(so)) {
            so = json_object();
            if (!so || json_object_set_new(o, "stream_options", so))
                goto oom;
        }
        if (json_object_set_new(o, "stream", json_true()) || json_object_set_new(so, "include_usage", json_true()))
            goto oom;
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    o = NULL;
    if (!s)
        goto oom;
    *len = strlen(s);
    *body = kz_strndup(s, *len);
    free(s); /* jansson's allocation */
    if (!*body)
        goto oom;
    return KZ_OK;
oom:
    json_decref(o);
    return kz_err_set(err, KZ_ENOMEM, "out of memory");
}

const char *kz_openai_finish(const char *reason)
{
    if (!reason)
        return KZ_FINISH_STOP;
    if (strcmp(reason, "length") == 0)
        return KZ_FINISH_LENGTH;
    if (strcmp(reason, "tool_calls") == 0 || strcmp(reason, "function_call") == 0)
        return KZ_FINISH_TOOL_CALLS;
    if (strcmp(reason, "content_filter") == 0)
        return KZ_FINISH_CONTENT_FILTER;
    return KZ_FINISH_STOP;
}

static long count(json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (long)json_integer_value(v) : -1;
}

/* Events from a scanned chunk, in the order the jansson path gives them. */
static void emit_scanned(const struct kz_scan_chunk *sc, int chat, kz_ev_fn fn, void *ud)
{
    struct kz_ev ev;
    for (size_t i = 0; i < sc->n_choices; i++) {
        const struct kz_scan_choice *c = &sc->choices[i];
        int idx = (int)(c->has_index ? c->index : (long)i);
        const char *t = chat ? c->content : c->text;
        size_t tl = chat ? c->content_len : c->text_len;
        if (tl > 0) {
            memset(&ev, 0, sizeof ev);
            ev.type = KZ_EV_TEXT;
            ev.index = idx;
            ev.text = t;
            ev.len = tl;
            if (fn(ud, &ev))
                return;
        }
        if (c->has_finish) {
            memset(&ev, 0, sizeof ev);
            ev.type = KZ_EV_FINISH;
            ev.index = idx;
            ev.finish = kz_openai_finish(c->finish);
            if (fn(ud, &ev))
                return;
        }
    }
    if (sc->has_usage) {
        memset(&ev, 0, sizeof ev);
        ev.type = KZ_EV_USAGE;
        ev.prompt_tokens = sc->prompt_tokens;
        ev.completion_tokens = sc->completion_tokens;
        fn(ud, &ev);
    }
}

kz_status kz_openai_dec_chunk(struct kz_openai_dec *d, int chat, const char *data, size_t len, kz_ev_fn fn,
                              void *ud, struct kz_err *err)
{
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        d->done = 1;
        return KZ_OK;
    }
    struct kz_scan_chunk sc;
    if (!d->no_fast && kz_openai_scan_chunk(data, len, &sc)) {
        /* an index the scanner read but that is out of range is left to
         * jansson, before any event went out */
        int bad = 0;
        for (size_t i = 0; i < sc.n_choices; i++)
            bad |= sc.choices[i].has_index && (sc.choices[i].index < 0 || sc.choices[i].index > 1024);
        if (!bad) {
            emit_scanned(&sc, chat, fn, ud);
            d->n_chunks++;
            d->n_fast++;
            return KZ_OK;
        }
    }
    json_error_t je;
    json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return kz_err_set(err, KZ_EPROTO, "upstream sent an invalid stream chunk (%s)",
                          o ? "not an object" : je.text);
    }
    kz_status rc = KZ_OK;
    struct kz_ev ev;
    d->n_chunks++;
    json_t *e = json_object_get(o, "error");
    if (e) { /* a mid-stream error event (vLLM, LiteLLM and kyozon send these) */
        memset(&ev, 0, sizeof ev);
        ev.type = KZ_EV_ERROR;
        ev.status = 502;
        json_t *msg = json_is_object(e) ? json_object_get(e, "message") : e;
        ev.message = json_is_string(msg) ? json_string_value(msg) : "upstream error";
        json_t *ty = json_is_object(e) ? json_object_get(e, "type") : NULL;
        ev.err_type = json_is_string(ty) ? json_string_value(ty) : NULL;
        fn(ud, &ev);
        goto out;
    }
    json_t *choices = json_object_get(o, "choices");
    if (choices && !json_is_null(choices) && !json_is_array(choices)) {
        rc = kz_err_set(err, KZ_EPROTO, "upstream stream chunk: choices is not an array");
        goto out;
    }
    size_t i;
    json_t *c;
    json_array_foreach(choices, i, c) {
        if (!json_is_object(c)) {
            rc = kz_err_set(err, KZ_EPROTO, "upstream stream chunk: a choice is not an object");
            goto out;
        }
        json_t *jidx = json_object_get(c, "index");
        long idx = jidx ? count(jidx) : (long)i;
        if (idx < 0 || idx > 1024) {
            rc = kz_err_set(err, KZ_EPROTO, "upstream stream chunk: bad choice index");
            goto out;
        }
        json_t *text;
        if (chat) {
            json_t *delta = json_object_get(c, "delta");
            if (delta && !json_is_object(delta) && !json_is_null(delta)) {
                rc = kz_err_set(err, KZ_EPROTO, "upstream stream chunk: delta is not an object");
                goto out;
            }
            text = json_object_get(delta, "content");
        } else {
            text = json_object_get(c, "text");
        }
        if (text && !json_is_null(text) && !json_is_string(text)) {
            rc = kz_err_set(err, KZ_EPROTO, "upstream stream chunk: content is not a string");
            goto out;
        }
        if (json_string_length(text) > 0) {
            memset(&ev, 0, sizeof ev);
            ev.type = KZ_EV_TEXT;
            ev.index = (int)idx;
            ev.text = json_string_value(text);
            ev.len = json_string_length(text);
            if (fn(ud, &ev))
                goto out;
        }
        json_t *fr = json_object_get(c, "finish_reason");
        if (json_is_string(fr)) {
            memset(&ev, 0, sizeof ev);
            ev.type = KZ_EV_FINISH;
            ev.index = (int)idx;
            ev.finish = kz_openai_finish(json_string_value(fr));
            if (fn(ud, &ev))
                goto out;
        }
    }
    json_t *u = json_object_get(o, "usage");
    if (json_is_object(u)) {
        memset(&ev, 0, sizeof ev);
        ev.type = KZ_EV_USAGE;
        ev.prompt_tokens = count(json_object_get(u, "prompt_tokens"));
        ev.completion_tokens = count(json_object_get(u, "completion_tokens"));
        fn(ud, &ev);
    }
out:
    json_decref(o);
    return rc;
}

static kz_status emit_usage(json_t *o, kz_ev_fn fn, void *ud)
{
    json_t *u = json_object_get(o, "usage");
    if (json_is_object(u)) {
        struct kz_ev ev;
        memset(&ev, 0, sizeof ev);
        ev.type = KZ_EV_USAGE;
        ev.prompt_tokens = count(json_object_get(u, "prompt_tokens"));
        ev.completion_tokens = count(json_object_get(u, "completion_tokens"));
        fn(ud, &ev);
    }
    return KZ_OK;
}

static kz_status decode_embeddings(json_t *o, kz_ev_fn fn, void *ud, struct kz_err *err)
{
    json_t *data = json_object_get(o, "data");
    if (!json_is_array(data))
        return kz_err_set(err, KZ_EPROTO, "upstream embeddings: data is not an array");
    size_t i;
    json_t *d;
    kz_status rc = KZ_OK;
    json_array_foreach(data, i, d) {
        json_t *e = json_object_get(d, "embedding");
        json_t *jidx = json_object_get(d, "index");
        long idx = jidx ? count(jidx) : (long)i;
        if (!json_is_array(e) || json_array_size(e) == 0 || json_array_size(e) > 65536 || idx < 0 || idx > 4096)
            return kz_err_set(err, KZ_EPROTO, "upstream embeddings: item %zu has no usable vector", i);
        size_t dim = json_array_size(e);
        float *v = kz_malloc(dim * sizeof *v);
        if (!v)
            return kz_err_set(err, KZ_ENOMEM, "out of memory");
        for (size_t k = 0; k < dim && !rc; k++) {
            json_t *x = json_array_get(e, k);
            if (!json_is_number(x))
                rc = kz_err_set(err, KZ_EPROTO, "upstream embeddings: a value is not a number");
            else
                v[k] = (float)json_number_value(x);
        }
        if (!rc) {
            struct kz_ev ev;
            memset(&ev, 0, sizeof ev);
            ev.type = KZ_EV_EMBEDDING;
            ev.index = (int)idx;
            ev.vec = v;
            ev.dim = dim;
            fn(ud, &ev);
        }
        kz_free(v);
        if (rc)
            return rc;
    }
    return emit_usage(o, fn, ud);
}

kz_status kz_openai_decode_body(enum kz_api_kind kind, const char *body, size_t len, kz_ev_fn fn, void *ud,
                                struct kz_err *err)
{
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return kz_err_set(err, KZ_EPROTO, "upstream sent an invalid response body (%s)", o ? "not an object" : je.text);
    }
    kz_status rc = KZ_OK;
    if (kind == KZ_API_EMBEDDINGS) {
        rc = decode_embeddings(o, fn, ud, err);
        json_decref(o);
        return rc;
    }
    json_t *choices = json_object_get(o, "choices");
    if (!json_is_array(choices)) {
        json_decref(o);
        return kz_err_set(err, KZ_EPROTO, "upstream response: choices is not an array");
    }
    size_t i;
    json_t *c;
    json_array_foreach(choices, i, c) {
        json_t *jidx = json_object_get(c, "index");
        long idx = jidx ? count(jidx) : (long)i;
        json_t *text = kind == KZ_API_CHAT ? json_object_get(json_object_get(c, "message"), "content")
                                           : json_object_get(c, "text");
        if (!json_is_object(c) || idx < 0 || idx > 1024 || (text && !json_is_string(text) && !json_is_null(text))) {
            rc = kz_err_set(err, KZ_EPROTO, "upstream response: choice %zu is malformed", i);
            break;
        }
        struct kz_ev ev;
        memset(&ev, 0, sizeof ev);
        ev.index = (int)idx;
        if (json_string_length(text)) {
            ev.type = KZ_EV_TEXT;
            ev.text = json_string_value(text);
            ev.len = json_string_length(text);
            fn(ud, &ev);
        }
        json_t *fr = json_object_get(c, "finish_reason");
        ev.type = KZ_EV_FINISH;
        ev.text = NULL;
        ev.len = 0;
        ev.finish = kz_openai_finish(json_is_string(fr) ? json_string_value(fr) : NULL);
        fn(ud, &ev);
    }
    if (!rc)
        emit_usage(o, fn, ud);
    json_decref(o);
    return rc;
}
