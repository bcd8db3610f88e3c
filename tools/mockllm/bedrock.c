/* SPDX-License-Identifier: MIT
 * The Bedrock Converse dialect: POST /model/{modelId}/converse (JSON) and
 * /model/{modelId}/converse-stream (binary event-stream frames, one per
 * HTTP chunk): messageStart, contentBlockDelta x n, contentBlockStop,
 * messageStop, metadata (usage). The signature itself is not checked: only
 * that the Authorization header has the shape of SigV4 or of a Bedrock API
 * key, which is what tells a signing bug from a transport bug in a test.
 *
 * Prompt tokens: the bytes of messages[].content[].text / 4 + 1.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "router/eventstream.h"
#include "mock.h"

#define PREFIX "/model/"

static size_t content_bytes(json_t *messages)
{
    size_t bytes = 0, i, k;
    json_t *m, *b;
    json_array_foreach(messages, i, m) {
        json_array_foreach(json_object_get(m, "content"), k, b) bytes += json_string_length(json_object_get(b, "text"));
    }
    return bytes;
}

/* One frame as one chunk; the payload JSON is consumed. */
static void add_frame(struct kz_mock_script *s, const char *event, json_t *payload, int token)
{
    const char *names[3] = {":event-type", ":content-type", ":message-type"};
    const char *values[3] = {event, "application/json", "event"};
    char *j = kz_mock_dump(payload);
    uint8_t *frame = NULL;
    size_t len = 0;
    struct kz_err err;
    if (!j || kz_evs_encode(names, values, 3, j, strlen(j), &frame, &len, &err) != KZ_OK)
        s->failed = 1;
    else
        kz_mock_add_chunk(s, frame, len, token);
    kz_free(frame);
    kz_free(j);
}

static json_t *usage(json_int_t in, int n)
{
    return json_pack("{s:I, s:i, s:I}", "inputTokens", in, "outputTokens", n, "totalTokens", in + n);
}

static struct kz_mock_script *answer(const struct kz_mock_ctx *c, json_t *req, int stream)
{
    json_t *mt = json_object_get(json_object_get(req, "inferenceConfig"), "maxTokens");
    int limited = json_is_integer(mt) && json_integer_value(mt) < c->tokens;
    int n = limited ? (int)json_integer_value(mt) : c->tokens;
    const char *stop = limited ? "max_tokens" : "end_turn";
    json_int_t in = kz_mock_prompt_tokens(content_bytes(json_object_get(req, "messages")));

    if (!stream)
        return kz_mock_respond_json(200, NULL,
                                    json_pack("{s:{s:{s:s, s:[{s:o}]}}, s:s, s:o, s:{s:i}}", "output", "message",
                                              "role", "assistant", "content", "text", kz_mock_tokens_json(n),
                                              "stopReason", stop, "usage", usage(in, n), "metrics", "latencyMs", 0),
                                    c->keep_alive);
    struct kz_mock_script *s = kz_mock_stream_start("application/vnd.amazon.eventstream", NULL, c->keep_alive);
    if (!s)
        return NULL;
    add_frame(s, "messageStart", json_pack("{s:s}", "role", "assistant"), 0);
    for (int i = 0; i < n; i++) {
        char tok[80];
        kz_mock_token(i, tok, sizeof tok);
        add_frame(s, "contentBlockDelta", json_pack("{s:i, s:{s:s}}", "contentBlockIndex", 0, "delta", "text", tok),
                  1);
    }
    add_frame(s, "contentBlockStop", json_pack("{s:i}", "contentBlockIndex", 0), 0);
    add_frame(s, "messageStop", json_pack("{s:s}", "stopReason", stop), 0);
    add_frame(s, "metadata", json_pack("{s:o, s:{s:i}}", "usage", usage(in, n), "metrics", "latencyMs", 0), 0);
    kz_mock_add_last_chunk(s);
    return s;
}

static int auth_ok(const char *a)
{
    return a && (strncmp(a, "AWS4-HMAC-SHA256 Credential=", 28) == 0 || strncmp(a, "Bearer ", 7) == 0);
}

struct kz_mock_script *kz_mock_bedrock(const struct kz_mock_ctx *c)
{
    const enum kz_mock_dialect d = KZ_MOCK_D_BEDROCK;
    const char *path = c->req->path, *slash = NULL;
    if (strncmp(path, PREFIX, strlen(PREFIX)) == 0)
        slash = strchr(path + strlen(PREFIX), '/');
    int stream = slash && strcmp(slash, "/converse-stream") == 0;
    if (!slash || slash == path + strlen(PREFIX) || (!stream && strcmp(slash, "/converse") != 0) ||
        strcmp(c->req->method, "POST") != 0)
        return kz_mock_error(c, d, 404, "mockllm: no such Bedrock route");
    if (!auth_ok(kz_mock_req_header(c->req, "authorization")))
        return kz_mock_error(c, d, 403,
                             "Authorization header is missing or is neither AWS4-HMAC-SHA256 nor a Bearer key");
    json_error_t je;
    json_t *req = json_loadb(c->req->body, c->req->body_len, 0, &je);
    struct kz_mock_script *s;
    if (!json_is_object(req) || !json_is_array(json_object_get(req, "messages")))
        s = kz_mock_error(c, d, 400, "The request body must be a JSON object with a messages array");
    else
        s = answer(c, req, stream);
    json_decref(req);
    return s;
}
