/* SPDX-License-Identifier: MIT
 * Bedrock Converse translation: request bodies (system and alternation
 * merges, every inference parameter, blanks, rejections), URL paths, a
 * ConverseStream answer framed exactly as the API sends it, every stop
 * reason, in-stream exceptions and stream errors, the non-streamed
 * response, HTTP errors, and malformed payloads.
 *
 * Payload shapes follow the AWS Bedrock API Reference (ConverseStreamOutput:
 * each event's payload is its member structure, e.g. MessageStopEvent
 * {"stopReason"}, ConverseStreamMetadataEvent {"usage","metrics"}); the
 * "p" field is the padding Bedrock adds to event payloads.
 */
#include <stdio.h>
#include <string.h>

#include "api/openai.h"
#include "core/alloc.h"
#include "router/bedrock.h"
#include "router/sigv4.h"
#include "t.h"

/* ---- request bodies ---- */

/* Decodes an OpenAI chat body and builds the Converse body from it. */
static kz_status build(const char *openai, char **body, struct kz_err *err)
{
    struct kz_api_request r;
    struct kz_api_error e;
    memset(&e, 0, sizeof e);
    *body = NULL;
    kz_status rc = kz_api_request_decode(KZ_API_CHAT, openai, strlen(openai), &r, &e);
    T_OK(rc == KZ_OK, "the OpenAI body decodes (%s)", e.message);
    if (rc == KZ_OK) {
        size_t len = 0;
        rc = kz_bedrock_build_request(&r, body, &len, err);
        T_OK(rc != KZ_OK || (*body && strlen(*body) == len), "length matches");
    }
    kz_api_request_free(&r);
    return rc;
}

static void expect_body(const char *openai, const char *want)
{
    char *b;
    struct kz_err err = {{0}};
    T_EQ_INT(build(openai, &b, &err), KZ_OK);
    T_EQ_STR(b, want);
    kz_free(b);
}

static void request_bodies(void)
{
    /* one system and one user message, nothing else */
    expect_body("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                "{\"role\":\"user\",\"content\":\"Hello\"}]}",
                "{\"system\":[{\"text\":\"Be brief.\"}],\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Hello\"}]}]}");
    /* system and developer messages anywhere go to "system" in order */
    expect_body("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s1\"},"
                "{\"role\":\"user\",\"content\":\"u1\"},{\"role\":\"developer\",\"content\":\"s2\"},"
                "{\"role\":\"assistant\",\"content\":\"a1\"},{\"role\":\"system\",\"content\":\"s3\"},"
                "{\"role\":\"user\",\"content\":\"u2\"}]}",
                "{\"system\":[{\"text\":\"s1\"},{\"text\":\"s2\"},{\"text\":\"s3\"}],\"messages\":["
                "{\"role\":\"user\",\"content\":[{\"text\":\"u1\"}]},"
                "{\"role\":\"assistant\",\"content\":[{\"text\":\"a1\"}]},"
                "{\"role\":\"user\",\"content\":[{\"text\":\"u2\"}]}]}");
    /* consecutive same-role messages merge into one message, blocks in order;
     * a system message between two user messages does not split them */
    expect_body("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"u1\"},"
                "{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":\"u2\"},"
                "{\"role\":\"assistant\",\"content\":\"a1\"},{\"role\":\"assistant\",\"content\":\"a2\"},"
                "{\"role\":\"user\",\"content\":\"u3\"}]}",
                "{\"system\":[{\"text\":\"s\"}],\"messages\":["
                "{\"role\":\"user\",\"content\":[{\"text\":\"u1\"},{\"text\":\"u2\"}]},"
                "{\"role\":\"assistant\",\"content\":[{\"text\":\"a1\"},{\"text\":\"a2\"}]},"
                "{\"role\":\"user\",\"content\":[{\"text\":\"u3\"}]}]}");
    /* blank texts are dropped, and the merge then sees the two users as adjacent */
    expect_body("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
                "{\"role\":\"assistant\",\"content\":\" \\n\\t\"},{\"role\":\"system\",\"content\":\"\"},"
                "{\"role\":\"user\",\"content\":\"y\"}]}",
                "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"x\"},{\"text\":\"y\"}]}]}");
    /* every inference parameter; the ones Converse lacks are not sent */
    expect_body("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":100,"
                "\"temperature\":0.5,\"top_p\":0.9,\"stop\":[\"END\",\"\\n\\n\"],\"top_k\":40,\"seed\":7,"
                "\"presence_penalty\":0.5,\"frequency_penalty\":0.25,\"user\":\"u\"}",
                "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}],"
                "\"inferenceConfig\":{\"maxTokens\":100,\"temperature\":0.5,\"topP\":0.9,"
                "\"stopSequences\":[\"END\",\"\\n\\n\"]},\"additionalModelRequestFields\":{\"top_k\":40}}");
    /* max_completion_tokens wins over max_tokens (the decoder's rule), a single
     * stop string, temperature 0 and 1 (the ends of Converse's range) */
    expect_body("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":5,"
                "\"max_completion_tokens\":9,\"stop\":\"Q:\",\"temperature\":0}",
                "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}],"
                "\"inferenceConfig\":{\"maxTokens\":9,\"temperature\":0.0,\"stopSequences\":[\"Q:\"]}}");
    /* top_k 0 means no cut: nothing to send */
    expect_body("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":1,\"top_k\":0}",
                "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}],"
                "\"inferenceConfig\":{\"temperature\":1.0}}");
    /* text passes through byte for byte: quotes, control characters, non-ASCII */
    expect_body("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
                "\"say \\\"\\u00e9t\\u00e9\\\"\\u0001 \\ud83d\\ude00\"}]}]}",
                "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"say \\\"\xc3\xa9t\xc3\xa9\\\"\\u0001 "
                "\xf0\x9f\x98\x80\"}]}]}");
}

static void request_rejects(void)
{
    char *b = (char *)1;
    struct kz_err err = {{0}};
    T_EQ_INT(build("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"only\"}]}", &b, &err), KZ_EINVAL);
    T_OK(b == NULL && strstr(err.msg, "non-blank user or assistant") != NULL, "system only: %s", err.msg);
    T_EQ_INT(build("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"  \"}]}", &b, &err), KZ_EINVAL);
    T_EQ_INT(build("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":1.5}", &b,
                   &err),
             KZ_EINVAL);
    T_OK(strstr(err.msg, "temperature") != NULL, "temperature named: %s", err.msg);

    struct kz_api_request r;
    struct kz_api_error e;
    const char *comp = "{\"model\":\"m\",\"prompt\":\"once upon\"}";
    T_EQ_INT(kz_api_request_decode(KZ_API_COMPLETION, comp, strlen(comp), &r, &e), KZ_OK);
    size_t len = 7;
    T_EQ_INT(kz_bedrock_build_request(&r, &b, &len, &err), KZ_EUNSUPPORTED);
    T_OK(b == NULL && len == 0, "outputs cleared");
    kz_api_request_free(&r);
}

/* ---- paths ---- */

static void paths(void)
{
    char *p = kz_bedrock_path("anthropic.claude-3-haiku-20240307-v1:0", 0);
    T_EQ_STR(p, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse");
    kz_free(p);
    p = kz_bedrock_path("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-v1:0",
                        1);
    T_EQ_STR(p, "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2F"
                "us.anthropic.claude-3-5-sonnet-v1%3A0/converse-stream");
    kz_free(p);
    p = kz_bedrock_path("a b~\xc3\xa9", 0);
    T_EQ_STR(p, "/model/a%20b~%C3%A9/converse");
    kz_free(p);
    T_OK(kz_bedrock_path("", 1) == NULL && kz_bedrock_path(NULL, 0) == NULL, "empty id");

    /* The path as SigV4 sees it: encoded once more in the canonical request. */
    p = kz_bedrock_path("meta.llama3-8b-instruct-v1:0", 1);
    struct kz_sigv4_header h[1] = {{"host", "bedrock-runtime.us-west-2.amazonaws.com"}};
    struct kz_sigv4_req sr = {.method = "POST", .path = p, .headers = h, .n_headers = 1, .region = "us-west-2",
                              .service = "bedrock", .access_key_id = "AKIDEXAMPLE", .secret_access_key = "secret",
                              .amz_date = "20240101T000000Z"};
    char *creq = NULL;
    T_EQ_INT(kz_sigv4_canonical_request(&sr, &creq, NULL), KZ_OK);
    T_OK(creq && strncmp(creq, "POST\n/model/meta.llama3-8b-instruct-v1%253A0/converse-stream\n", 59) == 0,
         "canonical path: %s", creq ? creq : "(null)");
    kz_free(creq);
    kz_free(p);
}

/* ---- an event log for the decoders ---- */

struct log {
    char text[4096];
    size_t text_len;
    int n_text, n_finish, n_usage, n_error;
    const char *finish;
    long in, out;
    int status;
    char err_type[128], message[600];
    int stop_after; /* return nonzero after this many events (0: never) */
    int n_events;
    char order[64]; /* one letter per event: T F U E */
};

static int record(void *ud, const struct kz_ev *ev)
{
    struct log *l = ud;
    if (l->n_events < (int)sizeof l->order - 1)
        l->order[l->n_events] = "TFUE"[ev->type];
    l->n_events++;
    switch (ev->type) {
    case KZ_EV_TEXT:
        T_OK(ev->index == 0 && ev->text && ev->len > 0, "TEXT has bytes for choice 0");
        if (l->text_len + ev->len < sizeof l->text) {
            memcpy(l->text + l->text_len, ev->text, ev->len);
            l->text_len += ev->len;
            l->text[l->text_len] = '\0';
        }
        l->n_text++;
        break;
    case KZ_EV_FINISH:
        l->finish = ev->finish;
        l->n_finish++;
        break;
    case KZ_EV_USAGE:
        l->in = ev->prompt_tokens;
        l->out = ev->completion_tokens;
        l->n_usage++;
        break;
    case KZ_EV_EMBEDDING:
        T_OK(0, "no embeddings from a chat decoder");
        break;
    case KZ_EV_ERROR:
        l->status = ev->status;
        snprintf(l->err_type, sizeof l->err_type, "%s", ev->err_type ? ev->err_type : "(null)");
        snprintf(l->message, sizeof l->message, "%s", ev->message ? ev->message : "(null)");
        l->n_error++;
        break;
    }
    return l->stop_after && l->n_events >= l->stop_after;
}

/* ---- ConverseStream ---- */

/* Appends one frame with the three headers ConverseStream sends. */
static void frame(uint8_t **buf, size_t *len, const char *message_type, const char *type_header, const char *type,
                  const char *json)
{
    const char *names[3] = {":message-type", type_header, ":content-type"};
    const char *values[3] = {message_type, type, "application/json"};
    uint8_t *f;
    size_t fl;
    T_EQ_INT(kz_evs_encode(names, values, type ? 3 : 1, json, strlen(json), &f, &fl, NULL), KZ_OK);
    uint8_t *nb = kz_realloc(*buf, *len + fl);
    memcpy(nb + *len, f, fl);
    *buf = nb;
    *len += fl;
    kz_free(f);
}

static void event(uint8_t **buf, size_t *len, const char *type, const char *json)
{
    frame(buf, len, "event", ":event-type", type, json);
}

/* Decodes a whole stream; returns the first failure. */
static kz_status run(const uint8_t *buf, size_t len, struct kz_bedrock_dec *d, struct log *l, struct kz_err *err)
{
    size_t off = 0;
    while (off < len) {
        struct kz_evs_msg m;
        size_t used;
        kz_status rc = kz_evs_decode(buf + off, len - off, &m, &used, err);
        if (rc)
            return rc;
        if (!used)
            return kz_err_set(err, KZ_EPROTO, "test: truncated stream");
        if ((rc = kz_bedrock_dec_message(d, &m, record, l, err)))
            return rc;
        off += used;
    }
    return KZ_OK;
}

static void stream_answer(void)
{
    uint8_t *s = NULL;
    size_t n = 0;
    event(&s, &n, "messageStart", "{\"role\":\"assistant\",\"p\":\"abcdefghijklmnopqrstuvwxyzABCDEFGH\"}");
    event(&s, &n, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hel\"},\"p\":\"abcd\"}");
    event(&s, &n, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"lo, \"},\"p\":\"abcdefgh\"}");
    event(&s, &n, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"w\\u00f6rld\"},\"p\":\"ab\"}");
    event(&s, &n, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"\"},\"p\":\"ab\"}");
    event(&s, &n, "contentBlockStop", "{\"contentBlockIndex\":0,\"p\":\"abcdefghijklm\"}");
    event(&s, &n, "messageStop", "{\"stopReason\":\"end_turn\",\"p\":\"abcdefghijklmnopq\"}");
    event(&s, &n, "metadata",
          "{\"usage\":{\"inputTokens\":12,\"outputTokens\":4,\"totalTokens\":16},\"metrics\":{\"latencyMs\":321},"
          "\"p\":\"abcdef\"}");
    struct kz_bedrock_dec d;
    struct log l = {0};
    struct kz_err err = {{0}};
    kz_bedrock_dec_init(&d);
    T_OK(d.in_tokens == -1 && d.out_tokens == -1 && !d.started && !d.finished, "fresh state");
    T_EQ_INT(run(s, n, &d, &l, &err), KZ_OK);
    T_EQ_STR(l.text, "Hello, w\xc3\xb6rld");
    T_EQ_STR(l.order, "TTTFU"); /* the empty delta sends nothing */
    T_EQ_STR(l.finish, KZ_FINISH_STOP);
    T_OK(l.in == 12 && l.out == 4, "usage 12/4 (got %ld/%ld)", l.in, l.out);
    T_OK(d.started && d.finished && !d.failed && d.n_text == 3 && d.in_tokens == 12 && d.out_tokens == 4,
         "decoder state");
    kz_free(s);
}

/* Tool and reasoning blocks, and event types this code predates, send
 * nothing; a metadata event without usage sends nothing. */
static void stream_ignores(void)
{
    uint8_t *s = NULL;
    size_t n = 0;
    event(&s, &n, "messageStart", "{\"role\":\"assistant\"}");
    event(&s, &n, "contentBlockStart",
          "{\"contentBlockIndex\":1,\"start\":{\"toolUse\":{\"toolUseId\":\"t1\",\"name\":\"f\"}}}");
    event(&s, &n, "contentBlockDelta", "{\"contentBlockIndex\":1,\"delta\":{\"toolUse\":{\"input\":\"{\\\"a\\\"\"}}}");
    event(&s, &n, "contentBlockDelta",
          "{\"contentBlockIndex\":2,\"delta\":{\"reasoningContent\":{\"text\":\"hmm\"}}}");
    event(&s, &n, "someFutureEvent", "not even JSON");
    event(&s, &n, "metadata", "{\"metrics\":{\"latencyMs\":5}}");
    struct kz_bedrock_dec d;
    struct log l = {0};
    kz_bedrock_dec_init(&d);
    T_EQ_INT(run(s, n, &d, &l, NULL), KZ_OK);
    T_EQ_INT(l.n_events, 0);
    kz_free(s);
}

static const struct {
    const char *reason, *finish;
} stop_map[] = {
    {"end_turn", KZ_FINISH_STOP},
    {"stop_sequence", KZ_FINISH_STOP},
    {"max_tokens", KZ_FINISH_LENGTH},
    {"model_context_window_exceeded", KZ_FINISH_LENGTH},
    {"tool_use", KZ_FINISH_TOOL_CALLS},
    {"guardrail_intervened", KZ_FINISH_CONTENT_FILTER},
    {"content_filtered", KZ_FINISH_CONTENT_FILTER},
    {"malformed_model_output", KZ_FINISH_STOP},
    {"malformed_tool_use", KZ_FINISH_STOP},
    {"a_reason_from_the_future", KZ_FINISH_STOP},
};

static void stop_reasons(void)
{
    for (size_t i = 0; i < sizeof stop_map / sizeof stop_map[0]; i++) {
        char json[160];
        snprintf(json, sizeof json, "{\"stopReason\":\"%s\"}", stop_map[i].reason);
        uint8_t *s = NULL;
        size_t n = 0;
        event(&s, &n, "messageStop", json);
        struct kz_bedrock_dec d;
        struct log l = {0};
        kz_bedrock_dec_init(&d);
        T_EQ_INT(run(s, n, &d, &l, NULL), KZ_OK);
        T_OK(l.n_finish == 1 && l.finish && strcmp(l.finish, stop_map[i].finish) == 0, "stream %s -> %s (got %s)",
             stop_map[i].reason, stop_map[i].finish, l.finish ? l.finish : "(none)");
        kz_free(s);
        /* the same through the non-streamed response */
        char body[256];
        snprintf(body, sizeof body,
                 "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":\"x\"}]}},"
                 "\"stopReason\":\"%s\",\"usage\":{\"inputTokens\":1,\"outputTokens\":1,\"totalTokens\":2}}",
                 stop_map[i].reason);
        struct log r = {0};
        T_EQ_INT(kz_bedrock_decode_response(body, strlen(body), record, &r, NULL), KZ_OK);
        T_OK(r.finish && strcmp(r.finish, stop_map[i].finish) == 0, "response %s", stop_map[i].reason);
    }
}

static void exceptions(void)
{
    static const struct {
        const char *type;
        int status;
    } cases[] = {
        {"throttlingException", 429},       {"serviceUnavailableException", 503}, {"validationException", 400},
        {"internalServerException", 500},   {"modelStreamErrorException", 500},   {"somethingNewException", 500},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *s = NULL;
        size_t n = 0;
        event(&s, &n, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"partial\"}}");
        frame(&s, &n, "exception", ":exception-type", cases[i].type, "{\"message\":\"it went wrong\"}");
        struct kz_bedrock_dec d;
        struct log l = {0};
        kz_bedrock_dec_init(&d);
        T_EQ_INT(run(s, n, &d, &l, NULL), KZ_OK);
        T_EQ_STR(l.order, "TE");
        T_EQ_INT(l.status, cases[i].status);
        T_EQ_STR(l.err_type, cases[i].type);
        T_EQ_STR(l.message, "it went wrong");
        T_OK(d.failed, "failed is set");
        kz_free(s);
    }
    /* an exception whose payload cannot be read still reports its status */
    uint8_t *s = NULL;
    size_t n = 0;
    frame(&s, &n, "exception", ":exception-type", "throttlingException", "<html>");
    struct kz_bedrock_dec d;
    struct log l = {0};
    kz_bedrock_dec_init(&d);
    T_EQ_INT(run(s, n, &d, &l, NULL), KZ_OK);
    T_OK(l.n_error == 1 && l.status == 429 && strcmp(l.message, "(null)") == 0, "unreadable exception payload");
    kz_free(s);
    /* a failure of the stream itself: ":message-type" "error" */
    s = NULL;
    n = 0;
    const char *names[3] = {":message-type", ":error-code", ":error-message"};
    const char *values[3] = {"error", "InternalFailure", "the stream\nbroke"};
    uint8_t *f;
    size_t fl;
    T_EQ_INT(kz_evs_encode(names, values, 3, NULL, 0, &f, &fl, NULL), KZ_OK);
    struct log e = {0};
    kz_bedrock_dec_init(&d);
    T_EQ_INT(run(f, fl, &d, &e, NULL), KZ_OK);
    T_OK(e.n_error == 1 && e.status == 500, "stream error -> 500");
    T_EQ_STR(e.err_type, "InternalFailure");
    T_EQ_STR(e.message, "the stream broke"); /* control characters shown as spaces */
    kz_free(f);
}

static void stream_malformed(void)
{
    static const struct {
        const char *message_type, *type, *json, *why;
    } cases[] = {
        {"event", "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"x\"}", "not JSON"},
        {"event", "contentBlockDelta", "[1,2]", "not a JSON object"},
        {"event", "contentBlockDelta", "", "not JSON"},
        {"event", "messageStart", "\"assistant\"", "not a JSON object"},
        {"event", "contentBlockDelta", "{\"contentBlockIndex\":0}", "no delta object"},
        {"event", "contentBlockDelta", "{\"delta\":\"text\"}", "no delta object"},
        {"event", "contentBlockDelta", "{\"delta\":{\"text\":5}}", "delta.text is not a string"},
        {"event", "messageStop", "{}", "no stopReason"},
        {"event", "messageStop", "{\"stopReason\":null}", "no stopReason"},
        {"event", "metadata", "{\"usage\":[]}", "usage is not an object"},
        {"event", "metadata", "{\"usage\":{\"inputTokens\":\"12\"}}", "usage.inputTokens"},
        {"event", "metadata", "{\"usage\":{\"outputTokens\":-1}}", "usage.outputTokens"},
        {"event", "metadata", "{\"usage\":{\"outputTokens\":1.5}}", "usage.outputTokens"},
        {"event", NULL, "{}", ":event-type"},
        {"gossip", NULL, "{}", "unknown :message-type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *s = NULL;
        size_t n = 0;
        frame(&s, &n, cases[i].message_type, ":event-type", cases[i].type, cases[i].json);
        struct kz_bedrock_dec d;
        struct log l = {0};
        struct kz_err err = {{0}};
        kz_bedrock_dec_init(&d);
        T_EQ_INT(run(s, n, &d, &l, &err), KZ_EPROTO);
        T_OK(strstr(err.msg, cases[i].why) != NULL, "case %zu: '%s' says '%s'", i, err.msg, cases[i].why);
        T_EQ_INT(l.n_events, 0);
        kz_free(s);
    }
    /* no :message-type at all */
    const char *names[1] = {":event-type"}, *values[1] = {"messageStop"};
    uint8_t *f;
    size_t fl;
    T_EQ_INT(kz_evs_encode(names, values, 1, "{}", 2, &f, &fl, NULL), KZ_OK);
    struct kz_bedrock_dec d;
    struct log l = {0};
    struct kz_err err = {{0}};
    kz_bedrock_dec_init(&d);
    T_EQ_INT(run(f, fl, &d, &l, &err), KZ_EPROTO);
    T_OK(strstr(err.msg, ":message-type") != NULL, "%s", err.msg);
    kz_free(f);
}

/* ---- non-streamed response ---- */

static void response(void)
{
    /* The ConverseResponse shape of the API reference: output.message with
     * content blocks (text, and a toolUse we do not surface), stopReason,
     * usage, metrics. */
    const char *body =
        "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":\"Paris is the capital\"},"
        "{\"toolUse\":{\"toolUseId\":\"t\",\"name\":\"f\",\"input\":{}}},{\"text\":\" of France.\"},{\"text\":\"\"}]}},"
        "\"stopReason\":\"max_tokens\",\"usage\":{\"inputTokens\":25,\"outputTokens\":9,\"totalTokens\":34},"
        "\"metrics\":{\"latencyMs\":412}}";
    struct log l = {0};
    T_EQ_INT(kz_bedrock_decode_response(body, strlen(body), record, &l, NULL), KZ_OK);
    T_EQ_STR(l.order, "TTFU");
    T_EQ_STR(l.text, "Paris is the capital of France.");
    T_EQ_STR(l.finish, KZ_FINISH_LENGTH);
    T_OK(l.in == 25 && l.out == 9, "usage");

    /* usage absent: no USAGE event; a count absent: -1 */
    const char *b2 = "{\"output\":{\"message\":{\"content\":[]}},\"stopReason\":\"end_turn\"}";
    struct log l2 = {0};
    T_EQ_INT(kz_bedrock_decode_response(b2, strlen(b2), record, &l2, NULL), KZ_OK);
    T_EQ_STR(l2.order, "F");
    const char *b3 = "{\"output\":{\"message\":{\"content\":[]}},\"stopReason\":\"end_turn\",\"usage\":{\"outputTokens\":3}}";
    struct log l3 = {0};
    T_EQ_INT(kz_bedrock_decode_response(b3, strlen(b3), record, &l3, NULL), KZ_OK);
    T_OK(l3.n_usage == 1 && l3.in == -1 && l3.out == 3, "partial usage");

    /* a sink that stops after the first event */
    struct log l4 = {.stop_after = 1};
    T_EQ_INT(kz_bedrock_decode_response(body, strlen(body), record, &l4, NULL), KZ_OK);
    T_EQ_STR(l4.order, "T");
}

static void response_malformed(void)
{
    static const struct {
        const char *body, *why;
    } cases[] = {
        {"", "not JSON"},
        {"{\"output\":", "not JSON"},
        {"[]", "not a JSON object"},
        {"{\"stopReason\":\"end_turn\"}", "output.message.content"},
        {"{\"output\":{\"message\":{\"content\":{}}},\"stopReason\":\"end_turn\"}", "output.message.content"},
        {"{\"output\":{\"message\":{\"content\":[]}}}", "stopReason"},
        {"{\"output\":{\"message\":{\"content\":[]}},\"stopReason\":7}", "stopReason"},
        {"{\"output\":{\"message\":{\"content\":[{\"text\":\"ok\"},{\"text\":3}]}},\"stopReason\":\"end_turn\"}",
         "content[1]"},
        {"{\"output\":{\"message\":{\"content\":[\"text\"]}},\"stopReason\":\"end_turn\"}", "content[0]"},
        {"{\"output\":{\"message\":{\"content\":[]}},\"stopReason\":\"end_turn\",\"usage\":5}", "usage"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct log l = {0};
        struct kz_err err = {{0}};
        T_EQ_INT(kz_bedrock_decode_response(cases[i].body, strlen(cases[i].body), record, &l, &err), KZ_EPROTO);
        T_OK(strstr(err.msg, cases[i].why) != NULL, "case %zu: '%s' says '%s'", i, err.msg, cases[i].why);
        T_EQ_INT(l.n_events, 0); /* nothing is sent from a body that is then refused */
    }
}

/* ---- HTTP errors ---- */

static void http_errors(void)
{
    struct kz_bedrock_error e;
    const char *b = "{\"message\":\"Malformed input request: #: extraneous key [foo] is not permitted\"}";
    kz_bedrock_http_error(400, "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/", b,
                          strlen(b), &e);
    T_EQ_INT(e.status, 400);
    T_EQ_STR(e.err_type, "ValidationException");
    T_EQ_STR(e.message, "Malformed input request: #: extraneous key [foo] is not permitted");
    struct kz_ev ev;
    kz_bedrock_error_event(&e, &ev);
    T_OK(ev.type == KZ_EV_ERROR && ev.status == 400 && ev.err_type == e.err_type && ev.message == e.message,
         "error event points into e");

    /* no header: the body's __type (namespace dropped) and Message */
    b = "{\"__type\":\"com.amazon.coral.service#ThrottlingException\",\"Message\":\"Too many requests, please wait.\"}";
    kz_bedrock_http_error(429, NULL, b, strlen(b), &e);
    T_EQ_STR(e.err_type, "ThrottlingException");
    T_EQ_STR(e.message, "Too many requests, please wait.");

    /* a body that is not JSON (a load balancer's page) */
    b = "<html><body>503 Service Unavailable</body></html>";
    kz_bedrock_http_error(503, "", b, strlen(b), &e);
    T_EQ_INT(e.status, 503);
    T_EQ_STR(e.err_type, "");
    T_EQ_STR(e.message, "Bedrock answered HTTP 503");
    kz_bedrock_error_event(&e, &ev);
    T_OK(ev.err_type == NULL, "no type -> NULL");
    kz_bedrock_http_error(403, "AccessDeniedException", NULL, 0, &e);
    T_EQ_STR(e.message, "Bedrock answered HTTP 403 AccessDeniedException");

    /* a long message is cut on a character boundary; invalid bytes become '?' */
    char big[2 + 13 + 2 * 600 + 3] = "{\"message\":\"";
    size_t n = strlen(big);
    for (int i = 0; i < 600; i++) {
        big[n++] = '\xc3';
        big[n++] = '\xa9';
    }
    memcpy(big + n, "\"}", 3);
    kz_bedrock_http_error(500, "InternalServerException", big, strlen(big), &e);
    size_t ml = strlen(e.message);
    T_OK(ml >= 500 && ml < sizeof e.message && ml % 2 == 0, "cut at a boundary (%zu bytes)", ml);
    T_OK((unsigned char)e.message[ml - 2] == 0xc3 && (unsigned char)e.message[ml - 1] == 0xa9, "last char whole");
    kz_bedrock_http_error(500, "Bad\xff\x01Type:x", NULL, 0, &e);
    T_EQ_STR(e.err_type, "Bad? Type");
}

int main(void)
{
    t_subtest("request_bodies", request_bodies);
    t_subtest("request_rejects", request_rejects);
    t_subtest("paths", paths);
    t_subtest("stream_answer", stream_answer);
    t_subtest("stream_ignores", stream_ignores);
    t_subtest("stop_reasons", stop_reasons);
    t_subtest("exceptions", exceptions);
    t_subtest("stream_malformed", stream_malformed);
    t_subtest("response", response);
    t_subtest("response_malformed", response_malformed);
    t_subtest("http_errors", http_errors);
    return t_done();
}
