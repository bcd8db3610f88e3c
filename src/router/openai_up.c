/* SPDX-License-Identifier: MIT
 * OpenAI dialect, upstream side (see openai_up.h).
 */
#include "router/openai_up.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/jsonw.h"
#include "router/openai_scan.h"

static int dump_cb(const char *buf, size_t size, void *data)
{
    struct kz_buf *b = data;
    kz_jw_raw(b, buf, size);
    return b->oom ? -1 : 0;
}

static void value(struct kz_buf *b, json_t *v)
{
    if (!b->oom && json_dump_callback(v, dump_cb, b, JSON_COMPACT | JSON_ENCODE_ANY))
        b->oom = 1;
}

static void key(struct kz_buf *b, int *first, const char *k, size_t n)
{
    if (!*first)
        KZ_JW_LIT(b, ",");
    *first = 0;
    kz_jw_str(b, k, n);
    KZ_JW_LIT(b, ":");
}

/* Compared with their length: jansson refuses keys with NUL bytes today,
 * but its API gives keys a length, and this does not depend on it. */
static int is(const char *k, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(k, name, n) == 0;
}

#define KEY(b, first, lit) key((b), (first), (lit), sizeof(lit) - 1)

/* The client's stream_options with include_usage true, in place or added. */
static void stream_options(struct kz_buf *b, json_t *so)
{
    int first = 1, seen = 0;
    KZ_JW_LIT(b, "{");
    for (void *it = json_object_iter(so); it; it = json_object_iter_next(so, it)) {
        const char *k = json_object_iter_key(it);
        size_t n = json_object_iter_key_len(it);
        key(b, &first, k, n);
        if (is(k, n, "include_usage")) {
            KZ_JW_LIT(b, "true");
            seen = 1;
        } else {
            value(b, json_object_iter_value(it));
        }
    }
    if (!seen) {
        KEY(b, &first, "include_usage");
        KZ_JW_LIT(b, "true");
    }
    KZ_JW_LIT(b, "}");
}

/* The keys we set whatever the client sent, in the order jansson would
 * append them when absent. */
enum { ENC = 1, SO = 2, STREAM = 4 };
static const struct {
    unsigned bit;
    const char *key, *value;
} forced[] = {
    {ENC, "encoding_format", "\"float\""},
    {SO, "stream_options", "{\"include_usage\":true}"},
    {STREAM, "stream", "true"},
};

/* Written key by key from the client's tree rather than from an edited deep
 * copy of it: the copy cost more than the rest of the request. Replaced
 * keys keep their place, added ones go last, as jansson would set them. */
kz_status kz_openai_build_request(const struct kz_api_request *r, const char *upstream_model, int stream, char **body,
                                  size_t *len, struct kz_err *err)
{
    unsigned want = r->kind == KZ_API_EMBEDDINGS ? ENC : stream ? SO | STREAM : 0;
    int has_model = 0;
    struct kz_buf b = {0};
    int first = 1;
    KZ_JW_LIT(&b, "{");
    for (void *it = json_object_iter(r->root); it; it = json_object_iter_next(r->root, it)) {
        const char *k = json_object_iter_key(it);
        size_t n = json_object_iter_key_len(it);
        json_t *v = json_object_iter_value(it);
        key(&b, &first, k, n);
        size_t f = 0;
        while (f < sizeof forced / sizeof *forced && !((want & forced[f].bit) && is(k, n, forced[f].key)))
            f++;
        if (is(k, n, "model")) {
            kz_jw_cstr(&b, upstream_model);
            has_model = 1;
        } else if (f == sizeof forced / sizeof *forced) {
            value(&b, v);
        } else {
            want &= ~forced[f].bit;
            if (forced[f].bit == SO && json_is_object(v))
                stream_options(&b, v); /* the client's other options stay */
            else
                kz_jw_raw(&b, forced[f].value, strlen(forced[f].value));
        }
    }
    if (!has_model) { /* the request decoder requires it; kept for other callers */
        KEY(&b, &first, "model");
        kz_jw_cstr(&b, upstream_model);
    }
    for (size_t f = 0; f < sizeof forced / sizeof *forced; f++)
        if (want & forced[f].bit) {
            key(&b, &first, forced[f].key, strlen(forced[f].key));
            kz_jw_raw(&b, forced[f].value, strlen(forced[f].value));
        }
    KZ_JW_LIT(&b, "}");
    if (b.oom) {
        kz_buf_free(&b);
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    }
    *body = b.p;
    *len = b.len;
    return KZ_OK;
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

/* Events from a scanned chunk or body, in the order the jansson paths give
 * them; a body has a finish event for every choice. */
static void emit_scanned(const struct kz_scan_chunk *sc, int chat, int body, kz_ev_fn fn, void *ud)
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
        if (c->has_finish || body) {
            memset(&ev, 0, sizeof ev);
            ev.type = KZ_EV_FINISH;
            ev.index = idx;
            ev.finish = kz_openai_finish(c->has_finish ? c->finish : NULL);
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

/* An index the scanner read but that is out of range is left to jansson,
 * before any event went out, so the error is jansson's. */
static int indexes_ok(const struct kz_scan_chunk *sc)
{
    for (size_t i = 0; i < sc->n_choices; i++)
        if (sc->choices[i].has_index && (sc->choices[i].index < 0 || sc->choices[i].index > 1024))
            return 0;
    return 1;
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
        if (indexes_ok(&sc)) {
            emit_scanned(&sc, chat, 0, fn, ud);
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
            if (fn(ud, &ev)) { /* stop: no more events */
                kz_free(v);
                return KZ_OK;
            }
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
    return kz_openai_decode_body_opt(kind, body, len, 0, fn, ud, err);
}

kz_status kz_openai_decode_body_opt(enum kz_api_kind kind, const char *body, size_t len, int no_fast, kz_ev_fn fn,
                                    void *ud, struct kz_err *err)
{
    struct kz_scan_chunk sc;
    if (!no_fast && kind != KZ_API_EMBEDDINGS && kz_openai_scan_body(body, len, &sc) && indexes_ok(&sc)) {
        emit_scanned(&sc, kind == KZ_API_CHAT, 1, fn, ud);
        return KZ_OK;
    }
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
    int stopped = 0;
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
            if ((stopped = fn(ud, &ev)) != 0)
                break;
        }
        json_t *fr = json_object_get(c, "finish_reason");
        ev.type = KZ_EV_FINISH;
        ev.text = NULL;
        ev.len = 0;
        ev.finish = kz_openai_finish(json_is_string(fr) ? json_string_value(fr) : NULL);
        if ((stopped = fn(ud, &ev)) != 0)
            break;
    }
    if (!rc && !stopped) /* the callback said stop: no more events (kz_ev_fn) */
        emit_usage(o, fn, ud);
    json_decref(o);
    return rc;
}
