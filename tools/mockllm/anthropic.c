/* SPDX-License-Identifier: MIT
 * The Anthropic Messages dialect: POST /v1/messages, whole or streamed. The
 * stream is the documented event order, each event as
 * "event: <type>\ndata: <json>\n\n":
 *   message_start, content_block_start, ping, content_block_delta (text_delta) x n,
 *   content_block_stop, message_delta (stop_reason, usage.output_tokens), message_stop
 * There is no [DONE]. message_start reports output_tokens 0 (nothing is
 * generated yet); message_delta carries the cumulative count.
 *
 * Prompt tokens: the bytes of the messages' text content (string content or
 * text blocks; the system prompt is not counted) / 4 + 1.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "mock.h"

static size_t content_bytes(json_t *messages)
{
    size_t bytes = 0, i, k;
    json_t *m, *b;
    json_array_foreach(messages, i, m) {
        json_t *content = json_object_get(m, "content");
        if (json_is_string(content))
            bytes += json_string_length(content);
        else
            json_array_foreach(content, k, b) bytes += json_string_length(json_object_get(b, "text"));
    }
    return bytes;
}

/* One named event as one chunk; the JSON is consumed. */
static void add_event(struct kz_mock_script *s, const char *type, json_t *data, int token)
{
    char *j = kz_mock_dump(data);
    if (!j) {
        s->failed = 1;
        return;
    }
    size_t cap = strlen(type) + strlen(j) + 24;
    char *ev = kz_malloc(cap);
    if (ev) {
        int n = snprintf(ev, cap, "event: %s\ndata: %s\n\n", type, j);
        kz_mock_add_chunk(s, ev, (size_t)n, token);
    } else {
        s->failed = 1;
    }
    kz_free(ev);
    kz_free(j);
}

static struct kz_mock_script *answer(const struct kz_mock_ctx *c, json_t *req)
{
    const char *model = json_string_value(json_object_get(req, "model"));
    json_int_t max_tokens = json_integer_value(json_object_get(req, "max_tokens"));
    int n = max_tokens < c->tokens ? (int)max_tokens : c->tokens;
    const char *stop = max_tokens < c->tokens ? "max_tokens" : "end_turn";
    json_int_t in = kz_mock_prompt_tokens(content_bytes(json_object_get(req, "messages")));
    char id[48];
    snprintf(id, sizeof id, "msg_mock%lu", c->seq);

    if (!json_is_true(json_object_get(req, "stream")))
        return kz_mock_respond_json(
            200, NULL,
            json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:o}], s:s, s:n, s:{s:I, s:I}}", "id", id, "type", "message",
                      "role", "assistant", "model", model, "content", "type", "text", "text", kz_mock_tokens_json(n),
                      "stop_reason", stop, "stop_sequence", "usage", "input_tokens", in, "output_tokens",
                      (json_int_t)n),
            c->keep_alive);

    struct kz_mock_script *s = kz_mock_stream_start("text/event-stream", "Cache-Control: no-cache\r\n", c->keep_alive);
    if (!s)
        return NULL;
    add_event(s, "message_start",
              json_pack("{s:s, s:{s:s, s:s, s:s, s:[], s:s, s:n, s:n, s:{s:I, s:i}}}", "type", "message_start",
                        "message", "id", id, "type", "message", "role", "assistant", "content", "model", model,
                        "stop_reason", "stop_sequence", "usage", "input_tokens", in, "output_tokens", 0),
              0);
    add_event(s, "content_block_start",
              json_pack("{s:s, s:i, s:{s:s, s:s}}", "type", "content_block_start", "index", 0, "content_block",
                        "type", "text", "text", ""),
              0);
    add_event(s, "ping", json_pack("{s:s}", "type", "ping"), 0);
    for (int i = 0; i < n; i++) {
        char tok[80];
        kz_mock_token(i, tok, sizeof tok);
        add_event(s, "content_block_delta",
                  json_pack("{s:s, s:i, s:{s:s, s:s}}", "type", "content_block_delta", "index", 0, "delta", "type",
                            "text_delta", "text", tok),
                  1);
    }
    add_event(s, "content_block_stop", json_pack("{s:s, s:i}", "type", "content_block_stop", "index", 0), 0);
    add_event(s, "message_delta",
              json_pack("{s:s, s:{s:s, s:n}, s:{s:I}}", "type", "message_delta", "delta", "stop_reason", stop,
                        "stop_sequence", "usage", "output_tokens", (json_int_t)n),
              0);
    add_event(s, "message_stop", json_pack("{s:s}", "type", "message_stop"), 0);
    kz_mock_add_last_chunk(s);
    return s;
}

struct kz_mock_script *kz_mock_anthropic(const struct kz_mock_ctx *c)
{
    const enum kz_mock_dialect d = KZ_MOCK_D_ANTHROPIC;
    if (strcmp(c->req->path, "/v1/messages") != 0 || strcmp(c->req->method, "POST") != 0)
        return kz_mock_error(c, d, 404, "mockllm: no such Anthropic route");
    if (!kz_mock_req_header(c->req, "x-api-key"))
        return kz_mock_error(c, d, 401, "x-api-key header is required");
    if (!kz_mock_req_header(c->req, "anthropic-version"))
        return kz_mock_error(c, d, 400, "anthropic-version: header is required");
    json_error_t je;
    json_t *req = json_loadb(c->req->body, c->req->body_len, 0, &je);
    const char *problem = NULL;
    json_int_t mt = json_integer_value(json_object_get(req, "max_tokens"));
    if (!json_is_object(req))
        problem = "the request body must be a JSON object";
    else if (!json_is_string(json_object_get(req, "model")))
        problem = "model: Field required";
    else if (!json_is_integer(json_object_get(req, "max_tokens")) || mt < 1)
        problem = "max_tokens: Field required (an integer >= 1)";
    else if (!json_is_array(json_object_get(req, "messages")))
        problem = "messages: Field required";
    struct kz_mock_script *s = problem ? kz_mock_error(c, d, 400, problem) : answer(c, req);
    json_decref(req);
    return s;
}
