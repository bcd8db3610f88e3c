/* SPDX-License-Identifier: MIT
 * ConverseStream: one decoded event-stream message at a time into the
 * internal events (bedrock.h gives the mapping). Each event's payload is the
 * JSON of that ConverseStreamOutput member, unwrapped (for contentBlockDelta:
 * {"contentBlockIndex":0,"delta":{"text":"..."},"p":"..."}; "p" is padding
 * Bedrock adds and we ignore).
 */
#include <string.h>
#include <strings.h>

#include "router/bedrock.h"
#include "router/bedrock_int.h"

void kz_bedrock_dec_init(struct kz_bedrock_dec *d)
{
    memset(d, 0, sizeof *d);
    d->in_tokens = d->out_tokens = -1;
}

static int is(const struct kz_evs_header *h, const char *s)
{
    return h->str_len == strlen(s) && memcmp(h->str, s, h->str_len) == 0;
}

/* In-stream exceptions and the HTTP status each stands for. Matched without
 * regard to case: the stream names them throttlingException, the HTTP
 * error header ThrottlingException. */
static int exception_status(const char *type)
{
    static const struct {
        const char *name;
        int status;
    } map[] = {
        {"throttlingException", 429},   {"serviceUnavailableException", 503}, {"validationException", 400},
        {"internalServerException", 500}, {"modelStreamErrorException", 500},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(type, map[i].name) == 0)
            return map[i].status;
    return 500;
}

/* Ends the answer with an ERROR event; empty texts are sent as NULL. */
static kz_status send_error(struct kz_bedrock_dec *d, kz_ev_fn fn, void *ud, int status, const char *type,
                            const char *message)
{
    struct kz_ev ev = {.type = KZ_EV_ERROR, .status = status, .err_type = type[0] ? type : NULL,
                       .message = message[0] ? message : NULL};
    d->failed = 1;
    fn(ud, &ev);
    return KZ_OK;
}

static kz_status on_exception(struct kz_bedrock_dec *d, const struct kz_evs_msg *m, kz_ev_fn fn, void *ud)
{
    char type[96] = "", message[512] = "";
    const struct kz_evs_header *t = kz_evs_get(m, ":exception-type");
    if (t)
        kz_bedrock__copy_text(type, sizeof type, t->str, t->str_len);
    /* The payload is read for its message only: an exception is reported
     * with its status even when its body is unreadable. */
    json_t *p = json_loadb((const char *)m->payload, m->payload_len, 0, NULL);
    const json_t *msg = json_object_get(p, "message");
    if (!json_is_string(msg))
        msg = json_object_get(p, "Message");
    if (json_is_string(msg))
        kz_bedrock__copy_text(message, sizeof message, json_string_value(msg), json_string_length(msg));
    json_decref(p);
    return send_error(d, fn, ud, exception_status(type), type, message);
}

/* A failure of the stream itself (":message-type" "error"). */
static kz_status on_error(struct kz_bedrock_dec *d, const struct kz_evs_msg *m, kz_ev_fn fn, void *ud)
{
    char code[96] = "", message[512] = "";
    const struct kz_evs_header *c = kz_evs_get(m, ":error-code"), *t = kz_evs_get(m, ":error-message");
    if (c)
        kz_bedrock__copy_text(code, sizeof code, c->str, c->str_len);
    if (t)
        kz_bedrock__copy_text(message, sizeof message, t->str, t->str_len);
    return send_error(d, fn, ud, 500, code, message);
}

static kz_status on_delta(struct kz_bedrock_dec *d, const json_t *p, kz_ev_fn fn, void *ud, struct kz_err *err)
{
    const json_t *delta = json_object_get(p, "delta");
    if (!json_is_object(delta))
        return kz_err_set(err, KZ_EPROTO, "bedrock: contentBlockDelta has no delta object");
    const json_t *text = json_object_get(delta, "text");
    if (!text)
        return KZ_OK; /* toolUse / reasoningContent / citation deltas: not surfaced */
    if (!json_is_string(text))
        return kz_err_set(err, KZ_EPROTO, "bedrock: contentBlockDelta.delta.text is not a string");
    if (json_string_length(text) == 0)
        return KZ_OK;
    struct kz_ev ev = {.type = KZ_EV_TEXT, .text = json_string_value(text), .len = json_string_length(text)};
    d->n_text++;
    fn(ud, &ev);
    return KZ_OK;
}

static kz_status on_stop(struct kz_bedrock_dec *d, const json_t *p, kz_ev_fn fn, void *ud, struct kz_err *err)
{
    const json_t *r = json_object_get(p, "stopReason");
    if (!json_is_string(r))
        return kz_err_set(err, KZ_EPROTO, "bedrock: messageStop has no stopReason string");
    struct kz_ev ev = {.type = KZ_EV_FINISH, .finish = kz_bedrock__finish(json_string_value(r))};
    d->finished = 1;
    fn(ud, &ev);
    return KZ_OK;
}

static kz_status on_metadata(struct kz_bedrock_dec *d, const json_t *p, kz_ev_fn fn, void *ud, struct kz_err *err)
{
    const json_t *usage = json_object_get(p, "usage");
    if (!usage)
        return KZ_OK; /* nothing to report */
    kz_status rc = kz_bedrock__usage(usage, "metadata", &d->in_tokens, &d->out_tokens, err);
    if (rc)
        return rc;
    struct kz_ev ev = {.type = KZ_EV_USAGE, .prompt_tokens = d->in_tokens, .completion_tokens = d->out_tokens};
    fn(ud, &ev);
    return KZ_OK;
}

kz_status kz_bedrock_dec_message(struct kz_bedrock_dec *d, const struct kz_evs_msg *m, kz_ev_fn fn, void *ud,
                                 struct kz_err *err)
{
    const struct kz_evs_header *mt = kz_evs_get(m, ":message-type");
    if (!mt)
        return kz_err_set(err, KZ_EPROTO, "bedrock: stream message without a :message-type header");
    if (is(mt, "exception"))
        return on_exception(d, m, fn, ud);
    if (is(mt, "error"))
        return on_error(d, m, fn, ud);
    if (!is(mt, "event"))
        return kz_err_set(err, KZ_EPROTO, "bedrock: stream message of unknown :message-type '%.*s'",
                          (int)(mt->str_len > 40 ? 40 : mt->str_len), mt->str);
    const struct kz_evs_header *et = kz_evs_get(m, ":event-type");
    if (!et)
        return kz_err_set(err, KZ_EPROTO, "bedrock: event without an :event-type header");
    enum { START, BLOCK, DELTA, STOP, META } kind;
    if (is(et, "messageStart"))
        kind = START;
    else if (is(et, "contentBlockStart") || is(et, "contentBlockStop"))
        kind = BLOCK;
    else if (is(et, "contentBlockDelta"))
        kind = DELTA;
    else if (is(et, "messageStop"))
        kind = STOP;
    else if (is(et, "metadata"))
        kind = META;
    else
        return KZ_OK; /* an event type added after this was written */
    json_t *p;
    kz_status rc = kz_bedrock__parse_object(m->payload, m->payload_len, "the event payload", &p, err);
    if (rc)
        return rc;
    switch (kind) {
    case START: d->started = 1; break;
    case BLOCK: break; /* block boundaries carry nothing a text answer needs */
    case DELTA: rc = on_delta(d, p, fn, ud, err); break;
    case STOP: rc = on_stop(d, p, fn, ud, err); break;
    case META: rc = on_metadata(d, p, fn, ud, err); break;
    }
    json_decref(p);
    return rc;
}
