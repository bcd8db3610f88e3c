/* SPDX-License-Identifier: MIT
 * Anthropic Messages answers, streamed and whole, into the internal event
 * stream (the contract is in anthropic.h). Stop reasons and error types
 * follow the Anthropic API reference ("Stop reasons", "Errors"; WIRE.md).
 */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "router/anthropic.h"

static const struct {
    const char *reason, *finish;
} finish_map[] = {
    {"end_turn", KZ_FINISH_STOP},
    {"stop_sequence", KZ_FINISH_STOP},
    {"pause_turn", KZ_FINISH_STOP}, /* a server-tool loop paused; what came is a complete text */
    {"max_tokens", KZ_FINISH_LENGTH},
    {"model_context_window_exceeded", KZ_FINISH_LENGTH},
    {"tool_use", KZ_FINISH_TOOL_CALLS},
    {"refusal", KZ_FINISH_CONTENT_FILTER},
};

const char *kz_anthropic_finish(const char *stop_reason)
{
    for (size_t i = 0; stop_reason && i < sizeof finish_map / sizeof finish_map[0]; i++)
        if (strcmp(stop_reason, finish_map[i].reason) == 0)
            return finish_map[i].finish;
    return KZ_FINISH_STOP; /* new reasons appear over time; the answer did end */
}

static const struct {
    const char *type;
    int status;
} status_map[] = {
    {"invalid_request_error", 400}, {"authentication_error", 401}, {"permission_error", 403},
    {"not_found_error", 404},       {"request_too_large", 413},    {"rate_limit_error", 429},
    {"api_error", 500},             {"overloaded_error", 529},
};

int kz_anthropic_error_status(const char *type)
{
    for (size_t i = 0; type && i < sizeof status_map / sizeof status_map[0]; i++)
        if (strcmp(type, status_map[i].type) == 0)
            return status_map[i].status;
    return 500;
}

/* ---- shared by both decoders ---------------------------------------------- */

/* A token count, or -1 when absent, null or not a count. */
static long count(const json_t *usage, const char *key)
{
    json_t *v = json_object_get(usage, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= LONG_MAX
               ? (long)json_integer_value(v)
               : -1;
}

/* The emitters return the sink's answer: nonzero means stop decoding. */
static int emit_text(kz_ev_fn fn, void *ud, const json_t *text)
{
    if (json_string_length(text) == 0)
        return 0;
    struct kz_ev ev = {.type = KZ_EV_TEXT, .text = json_string_value(text), .len = json_string_length(text)};
    return fn(ud, &ev);
}

static int emit_finish(kz_ev_fn fn, void *ud, const char *stop_reason)
{
    struct kz_ev ev = {.type = KZ_EV_FINISH, .finish = kz_anthropic_finish(stop_reason)};
    return fn(ud, &ev);
}

/* Nothing when the provider gave no count at all. */
static int emit_usage(kz_ev_fn fn, void *ud, long input, long output)
{
    if (input < 0 && output < 0)
        return 0;
    struct kz_ev ev = {.type = KZ_EV_USAGE, .prompt_tokens = input, .completion_tokens = output};
    return fn(ud, &ev);
}

/* `e` is the "error" member: {"type": ..., "message": ...}; either may lack. */
static int emit_error(kz_ev_fn fn, void *ud, const json_t *e)
{
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    struct kz_ev ev = {.type = KZ_EV_ERROR,
                       .status = kz_anthropic_error_status(type),
                       .err_type = type,
                       .message = msg ? msg : "the provider reported an error without a message"};
    return fn(ud, &ev);
}

/* The data as a JSON object, or NULL with err naming `what`. */
static json_t *parse_object(const char *what, const char *data, size_t len, struct kz_err *err)
{
    json_error_t je;
    json_t *root = data ? json_loadb(data, len, 0, &je) : NULL;
    if (!root) {
        /* Only the position: jansson's text quotes input bytes, which need
         * not be UTF-8 and would travel on into logs and JSON. */
        kz_err_set(err, KZ_EPROTO, "%s: not valid JSON (line %d, column %d)", what, data ? je.line : 0,
                   data ? je.column : 0);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        kz_err_set(err, KZ_EPROTO, "%s: not a JSON object", what);
        return NULL;
    }
    return root;
}

/* ---- streamed answers ------------------------------------------------------ */

enum ev_kind {
    EV_UNKNOWN,
    EV_MESSAGE_START,
    EV_BLOCK_START,
    EV_BLOCK_DELTA,
    EV_BLOCK_STOP,
    EV_MESSAGE_DELTA,
    EV_MESSAGE_STOP,
    EV_PING,
    EV_ERROR
};

/* The names double as the text of error messages, so an unknown name (which
 * may be any bytes) is never printed. */
static const char *const ev_names[] = {
    [EV_MESSAGE_START] = "message_start", [EV_BLOCK_START] = "content_block_start",
    [EV_BLOCK_DELTA] = "content_block_delta", [EV_BLOCK_STOP] = "content_block_stop",
    [EV_MESSAGE_DELTA] = "message_delta",   [EV_MESSAGE_STOP] = "message_stop",
    [EV_PING] = "ping",                     [EV_ERROR] = "error",
};

static enum ev_kind ev_kind(const char *name)
{
    for (size_t k = EV_MESSAGE_START; k < sizeof ev_names / sizeof ev_names[0]; k++)
        if (strcmp(name, ev_names[k]) == 0)
            return (enum ev_kind)k;
    return EV_UNKNOWN;
}

void kz_anthropic_dec_init(struct kz_anthropic_dec *d)
{
    memset(d, 0, sizeof *d);
    d->input_tokens = -1;
    d->output_tokens = -1;
}

int kz_anthropic_dec_done(const struct kz_anthropic_dec *d) { return d->stopped; }

/* Counts in a usage object replace what we had: Anthropic's are cumulative. */
static void take_usage(struct kz_anthropic_dec *d, const json_t *usage)
{
    long in = count(usage, "input_tokens"), out = count(usage, "output_tokens");
    if (in >= 0)
        d->input_tokens = in;
    if (out >= 0)
        d->output_tokens = out;
}

/* One known event, its data parsed. Returns KZ_OK also when the sink asked
 * to stop. */
static kz_status dispatch(struct kz_anthropic_dec *d, enum ev_kind k, const json_t *root, kz_ev_fn fn, void *ud,
                          struct kz_err *err)
{
    switch (k) {
    case EV_MESSAGE_START: {
        json_t *msg = json_object_get(root, "message");
        if (!json_is_object(msg))
            return kz_err_set(err, KZ_EPROTO, "anthropic stream: message_start event: 'message' must be an object");
        take_usage(d, json_object_get(msg, "usage"));
        return KZ_OK;
    }
    case EV_BLOCK_START: {
        /* A text block normally starts empty; should one start with text,
         * that text is part of the answer. */
        json_t *block = json_object_get(root, "content_block");
        const char *type = json_string_value(json_object_get(block, "type"));
        if (type && strcmp(type, "text") == 0)
            emit_text(fn, ud, json_object_get(block, "text"));
        return KZ_OK;
    }
    case EV_BLOCK_DELTA: {
        json_t *delta = json_object_get(root, "delta");
        if (!json_is_object(delta))
            return kz_err_set(err, KZ_EPROTO, "anthropic stream: content_block_delta event: 'delta' must be an object");
        const char *type = json_string_value(json_object_get(delta, "type"));
        /* Only text reaches the client: thinking and signature deltas are the
         * model's private reasoning, input_json_delta builds a tool call the
         * OpenAI side did not ask for, citations annotate text already sent.
         * Every text block goes to choice 0, the one choice we serve. */
        if (!type || strcmp(type, "text_delta"))
            return KZ_OK;
        json_t *text = json_object_get(delta, "text");
        if (!json_is_string(text))
            return kz_err_set(err, KZ_EPROTO, "anthropic stream: content_block_delta event: text_delta without a 'text' string");
        emit_text(fn, ud, text);
        return KZ_OK;
    }
    case EV_MESSAGE_DELTA: {
        const char *reason = json_string_value(json_object_get(json_object_get(root, "delta"), "stop_reason"));
        json_t *usage = json_object_get(root, "usage");
        take_usage(d, usage);
        if (reason && !d->finished) {
            d->finished = 1;
            if (emit_finish(fn, ud, reason))
                return KZ_OK;
            emit_usage(fn, ud, d->input_tokens, d->output_tokens);
        } else if (d->finished && json_is_object(usage)) {
            emit_usage(fn, ud, d->input_tokens, d->output_tokens); /* a later total replaces the earlier */
        }
        return KZ_OK;
    }
    case EV_MESSAGE_STOP:
        d->stopped = 1;
        /* No message_delta said why it stopped: the answer still ended, and
         * a stream without FINISH would read as cut short. */
        if (!d->finished) {
            d->finished = 1;
            if (emit_finish(fn, ud, NULL))
                return KZ_OK;
            emit_usage(fn, ud, d->input_tokens, d->output_tokens);
        }
        return KZ_OK;
    case EV_ERROR:
        d->failed = 1;
        emit_error(fn, ud, json_object_get(root, "error"));
        return KZ_OK;
    case EV_PING:
    case EV_BLOCK_STOP:
    case EV_UNKNOWN:
        return KZ_OK;
    }
    return KZ_OK;
}

kz_status kz_anthropic_dec_event(struct kz_anthropic_dec *d, const char *event, const char *data, size_t len,
                                 kz_ev_fn fn, void *ud, struct kz_err *err)
{
    if (d->stopped || d->failed)
        return KZ_OK; /* the answer has ended; anything after is noise */
    json_t *root = NULL;
    enum ev_kind k;
    if (event) {
        k = ev_kind(event);
        if (k == EV_UNKNOWN)
            return KZ_OK; /* a newer event type: its data need not even be JSON we know */
        char what[64];
        snprintf(what, sizeof what, "anthropic stream: %s event", ev_names[k]);
        if (!(root = parse_object(what, data, len, err)))
            return KZ_EPROTO;
    } else {
        if (!(root = parse_object("anthropic stream: unnamed event", data, len, err)))
            return KZ_EPROTO;
        const char *type = json_string_value(json_object_get(root, "type"));
        if (!type) {
            json_decref(root);
            return kz_err_set(err, KZ_EPROTO, "anthropic stream: unnamed event without a 'type' in its data");
        }
        k = ev_kind(type);
    }
    kz_status rc = dispatch(d, k, root, fn, ud, err);
    json_decref(root);
    return rc;
}

/* ---- whole answers --------------------------------------------------------- */

kz_status kz_anthropic_decode_response(const char *body, size_t len, kz_ev_fn fn, void *ud, struct kz_err *err)
{
    json_t *root = parse_object("anthropic response", body, len, err);
    if (!root)
        return KZ_EPROTO;
    kz_status rc = KZ_OK;
    const char *type = json_string_value(json_object_get(root, "type"));
    /* Some gateways in front of Anthropic answer errors with a 200. */
    if (type && strcmp(type, "error") == 0) {
        emit_error(fn, ud, json_object_get(root, "error"));
        goto out;
    }
    json_t *content = json_object_get(root, "content");
    if (!json_is_array(content)) {
        rc = kz_err_set(err, KZ_EPROTO, "anthropic response: 'content' must be an array");
        goto out;
    }
    size_t i;
    json_t *block;
    json_array_foreach(content, i, block) {
        const char *bt = json_string_value(json_object_get(block, "type"));
        if (bt && strcmp(bt, "text") == 0 && emit_text(fn, ud, json_object_get(block, "text")))
            goto out; /* other block types: as in the stream, only text is the answer */
    }
    if (emit_finish(fn, ud, json_string_value(json_object_get(root, "stop_reason"))))
        goto out;
    json_t *usage = json_object_get(root, "usage");
    emit_usage(fn, ud, count(usage, "input_tokens"), count(usage, "output_tokens"));
out:
    json_decref(root);
    return rc;
}
