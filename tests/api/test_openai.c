/* SPDX-License-Identifier: MIT
 * OpenAI wire format: request decoding (accepted forms, every rejection with
 * its param), and the response encoders' JSON shapes.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/openai.h"
#include "core/alloc.h"
#include "core/utf8.h"
#include "t.h"

static kz_status dec(enum kz_api_kind k, const char *body, struct kz_api_request *r, struct kz_api_error *e)
{
    memset(e, 0, sizeof *e);
    return kz_api_request_decode(k, body, strlen(body), r, e);
}

static void chat_ok(void)
{
    struct kz_api_request r;
    struct kz_api_error e;
    const char *b = "{\"model\":\"m\",\"messages\":[{\"role\":\"developer\",\"content\":\"be brief\"},"
                    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hel\"},{\"type\":\"text\",\"text\":\"lo\"}]}],"
                    "\"max_tokens\":5,\"max_completion_tokens\":7,\"temperature\":0.5,\"top_p\":0.9,\"seed\":-3,"
                    "\"stop\":[\"a\",\"bc\"],\"presence_penalty\":1,\"frequency_penalty\":-1,\"user\":\"u1\","
                    "\"stream\":true,\"stream_options\":{\"include_usage\":true},\"n\":1,\"tools\":[],"
                    "\"some_future_field\":{\"x\":1}}";
    T_EQ_INT(dec(KZ_API_CHAT, b, &r, &e), KZ_OK);
    T_EQ_STR(r.model, "m");
    T_EQ_INT(json_array_size(r.messages), 2);
    T_EQ_STR(json_string_value(json_object_get(json_array_get(r.messages, 0), "role")), "system");
    T_EQ_STR(json_string_value(json_object_get(json_array_get(r.messages, 1), "content")), "Hello");
    /* key order too: a chat template's tojson or items() sees the keys in this order */
    char *msgs = json_dumps(r.messages, JSON_COMPACT);
    T_EQ_STR(msgs, "[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"Hello\"}]");
    free(msgs);
    T_EQ_INT(r.max_tokens, 7);
    T_OK(r.has_temperature && r.temperature == 0.5, "temperature");
    T_OK(r.has_seed && r.seed == (uint64_t)-3, "seed");
    T_EQ_INT(r.n_stop, 2);
    T_EQ_STR(r.stop[1], "bc");
    T_OK(r.stream && r.include_usage, "stream options");
    T_EQ_STR(r.user, "u1");
    kz_api_request_free(&r);

    T_EQ_INT(dec(KZ_API_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":\"\\n\"}",
                 &r, &e), KZ_OK);
    T_EQ_INT(r.n_stop, 1);
    T_EQ_INT(r.max_tokens, -1);
    T_OK(!r.stream && !r.has_temperature, "defaults");
    kz_api_request_free(&r);
}

static void chat_bad(void)
{
    static const struct {
        const char *body, *param, *msg;
    } cases[] = {
        {"{\"model\":\"m\",", "", "line 1, column"},
        {"[1,2]", "", "must be a JSON object"},
        {"{\"messages\":[]}", "model", "'model' is required"},
        {"{\"model\":\"\",\"messages\":[]}", "model", "must not be empty"},
        {"{\"model\":\"m\"}", "messages", "'messages' is required"},
        {"{\"model\":\"m\",\"messages\":[]}", "messages", "non-empty array"},
        {"{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", "messages[0].role", "is required"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages[0].role", "not supported"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content", "string or an array"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
         "messages[0].content[0].type", "'image_url' is not supported"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]}", "messages[0].content", "is required"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}", "temperature", "must be a number"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":3}", "temperature", "between 0 and 2"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0}", "max_tokens", "between 1"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":-5}", "max_tokens", "between 1"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1.5}", "max_tokens", "must be an integer"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", "n", "'n' > 1"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":0}", "n", "between 1"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]}", "tools", "not supported"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true}", "logprobs", "not supported"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_object\"}}", "response_format", "only"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop", "at most 4"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[1]}", "stop", "non-empty string"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream_options\":{\"include_usage\":true}}", "stream_options", "only allowed"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"presence_penalty\":9}", "presence_penalty", "between -2 and 2"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"1\":5}}", "logit_bias", "not supported"},
        {"{\"model\":\"m\",\"model\":\"n\",\"messages\":[]}", "", "duplicate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kz_api_request r;
        struct kz_api_error e;
        kz_status rc = dec(KZ_API_CHAT, cases[i].body, &r, &e);
        T_OK(rc == KZ_EINVAL && e.status == 400, "case %zu rejected with 400", i);
        T_EQ_STR(e.param, cases[i].param);
        T_OK(strstr(e.message, cases[i].msg) != NULL, "case %zu: '%s' lacks '%s'", i, e.message, cases[i].msg);
        T_EQ_STR(e.type, "invalid_request_error");
        kz_api_request_free(&r);
    }
    /* nesting deeper than the limit */
    char deep[400];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof deep, "{\"model\":\"m\",\"x\":");
    for (int i = 0; i < 70; i++)
        deep[n++] = '[';
    for (int i = 0; i < 70; i++)
        deep[n++] = ']';
    snprintf(deep + n, sizeof deep - n, "}");
    struct kz_api_request r;
    struct kz_api_error e;
    T_EQ_INT(dec(KZ_API_CHAT, deep, &r, &e), KZ_EINVAL);
    T_OK(strstr(e.message, "nested deeper") != NULL, "%s", e.message);
    kz_api_request_free(&r);
}

static void completions_embeddings(void)
{
    struct kz_api_request r;
    struct kz_api_error e;
    T_EQ_INT(dec(KZ_API_COMPLETION, "{\"model\":\"m\",\"prompt\":[\"a\",\"b\"],\"max_tokens\":3}", &r, &e), KZ_OK);
    T_EQ_INT(r.n_inputs, 2);
    T_EQ_STR(r.inputs[1], "b");
    kz_api_request_free(&r);
    T_EQ_INT(dec(KZ_API_COMPLETION, "{\"model\":\"m\",\"prompt\":[1,2]}", &r, &e), KZ_EINVAL);
    T_EQ_STR(e.param, "prompt[0]");
    kz_api_request_free(&r);
    T_EQ_INT(dec(KZ_API_COMPLETION, "{\"model\":\"m\",\"prompt\":\"x\",\"echo\":true}", &r, &e), KZ_EINVAL);
    T_EQ_STR(e.param, "echo");
    kz_api_request_free(&r);
    T_EQ_INT(dec(KZ_API_COMPLETION, "{\"model\":\"m\",\"prompt\":\"x\",\"best_of\":3}", &r, &e), KZ_EINVAL);
    kz_api_request_free(&r);
    T_EQ_INT(dec(KZ_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":\"hi\",\"encoding_format\":\"base64\"}", &r, &e), KZ_OK);
    T_OK(r.base64 && r.n_inputs == 1, "base64 embeddings");
    kz_api_request_free(&r);
    T_EQ_INT(dec(KZ_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":\"hi\",\"encoding_format\":\"hex\"}", &r, &e), KZ_EINVAL);
    T_EQ_STR(e.param, "encoding_format");
    kz_api_request_free(&r);
    T_EQ_INT(dec(KZ_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":[]}", &r, &e), KZ_EINVAL);
    kz_api_request_free(&r);
    T_EQ_INT(dec(KZ_API_EMBEDDINGS, "{\"model\":\"m\",\"input\":\"x\",\"dimensions\":8}", &r, &e), KZ_EINVAL);
    T_EQ_STR(e.param, "dimensions");
    kz_api_request_free(&r);
}

static json_t *parse(const char *s)
{
    json_t *j = json_loads(s, 0, NULL);
    T_OK(j != NULL, "valid JSON: %s", s ? s : "(null)");
    return j;
}

/* The encoders write JSON directly; the same objects built as jansson trees
 * and dumped compactly are the reference, byte for byte. */
static json_t *ref_text(const char *t, size_t n)
{
    json_t *v = json_stringn(t, n);
    if (!v) {
        size_t m = 0;
        char *f = kz_utf8_sanitize(t, n, &m);
        v = json_stringn_nocheck(f, m);
        kz_free(f);
    }
    return v;
}

static json_t *ref_usage(const struct kz_api_usage *u)
{
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)u->prompt_tokens, "completion_tokens",
                     (json_int_t)u->completion_tokens, "total_tokens",
                     (json_int_t)(u->prompt_tokens + u->completion_tokens));
}

static char *ref_dump(json_t *v, int sse)
{
    char *d = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(v);
    size_t n = strlen(d);
    char *out = malloc(n + 9);
    snprintf(out, n + 9, "%s%s%s", sse ? "data: " : "", d, sse ? "\n\n" : "");
    free(d);
    return out;
}

static int same(char *got, char *want, const char *what)
{
    int ok = got && want && strcmp(got, want) == 0;
    T_OK(ok, "%s: '%s' vs jansson's '%s'", what, got ? got : "(null)", want ? want : "(null)");
    kz_free(got);
    free(want);
    return ok;
}

static void encoders_match_jansson(void)
{
    static const char *const texts[] = {"", "hi", "a\"b\\c\n\t\x01", "caf\xc3\xa9 \xf0\x9f\x98\x80", "cut \xe2\x82",
                                        "\xff\xfe"};
    struct kz_api_usage u = {12, 345};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        const char *t = texts[i];
        size_t n = strlen(t);
        const char *fin = i % 2 ? "length" : "stop";
        json_t *msg = json_pack("{s:s, s:o, s:n}", "role", "assistant", "content", ref_text(t, n), "refusal");
        json_t *ch = json_pack("{s:i, s:o, s:n, s:s}", "index", 0, "message", msg, "logprobs", "finish_reason", fin);
        json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o}", "id", "chatcmpl-\"1", "object", "chat.completion",
                              "created", (json_int_t)1700000000, "model", "m\xc3\xa9", "choices", ch, "usage",
                              ref_usage(&u));
        same(kz_api_chat_response("chatcmpl-\"1", 1700000000, "m\xc3\xa9", t, n, fin, &u), ref_dump(o, 0),
             "chat response");

        for (int shape = 0; shape < 8; shape++) {
            const char *role = shape & 1 ? "assistant" : NULL;
            const char *text = shape & 2 ? t : NULL;
            const char *f = shape & 4 ? fin : NULL;
            json_t *delta = json_object();
            if (role)
                json_object_set_new(delta, "role", json_string(role));
            if (text)
                json_object_set_new(delta, "content", ref_text(text, n));
            json_t *c = json_pack("{s:i, s:o, s:n, s:o}", "index", 0, "delta", delta, "logprobs", "finish_reason",
                                  f ? json_string(f) : json_null());
            json_t *k = json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", "c", "object", "chat.completion.chunk",
                                  "created", (json_int_t)7, "model", "m", "choices", c);
            if (shape & 1)
                json_object_set_new(k, "usage", json_null());
            same(kz_api_chat_chunk("c", 7, "m", role, text, n, f, shape & 1), ref_dump(k, 1), "chat chunk");

            json_t *cc = json_pack("{s:o, s:I, s:n, s:o}", "text", ref_text(text ? text : "", text ? n : 0), "index",
                                   (json_int_t)shape, "logprobs", "finish_reason", f ? json_string(f) : json_null());
            json_t *ck = json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", "c", "object", "text_completion", "created",
                                   (json_int_t)7, "model", "m", "choices", cc);
            if (shape & 1)
                json_object_set_new(ck, "usage", json_null());
            same(kz_api_completion_chunk("c", 7, "m", (size_t)shape, text, n, f, shape & 1), ref_dump(ck, 1),
                 "completion chunk");
        }
    }
    /* completions with several choices, and the usage chunks */
    const char *ct[3] = {"one", "tw\xc3\xb6", "\""};
    size_t cl[3] = {3, 4, 1};
    const char *cf[3] = {"stop", "length", "stop"};
    json_t *arr = json_array();
    for (int i = 0; i < 3; i++)
        json_array_append_new(arr, json_pack("{s:o, s:I, s:n, s:s}", "text", ref_text(ct[i], cl[i]), "index",
                                             (json_int_t)i, "logprobs", "finish_reason", cf[i]));
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", "cmpl-1", "object", "text_completion", "created",
                          (json_int_t)0, "model", "m", "choices", arr, "usage", ref_usage(&u));
    same(kz_api_completion_response("cmpl-1", 0, "m", 3, ct, cl, cf, &u), ref_dump(o, 0), "completion response");
    o = json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", "cmpl-1", "object", "text_completion", "created",
                  (json_int_t)0, "model", "m", "choices", "usage", ref_usage(&u));
    same(kz_api_completion_response("cmpl-1", 0, "m", 0, NULL, NULL, NULL, &u), ref_dump(o, 0),
         "completion response without choices");
    for (int chat = 0; chat < 2; chat++) {
        o = json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", "c", "object",
                      chat ? "chat.completion.chunk" : "text_completion", "created", (json_int_t)-5, "model", "m",
                      "choices", "usage", ref_usage(&u));
        same(kz_api_usage_chunk("c", -5, "m", chat, &u), ref_dump(o, 1), "usage chunk");
    }
    /* errors: the message and param may quote the client's broken bytes */
    for (int k = 0; k < 4; k++) {
        struct kz_api_error e;
        kz_api_fail(&e, 400, k & 1 ? "invalid_request_error" : NULL, k & 2 ? "bad_thing" : NULL,
                    k == 3 ? "messages[0].\xff" : k == 2 ? "model" : NULL, "near '%s'", texts[k + 2]);
        const char *m = e.message, *pm = e.param;
        json_t *inner = json_pack("{s:o, s:s, s:o, s:o}", "message", ref_text(m, strlen(m)), "type",
                                  e.type ? e.type : "error", "param", pm[0] ? ref_text(pm, strlen(pm)) : json_null(),
                                  "code", e.code ? json_string(e.code) : json_null());
        json_t *ev = json_deep_copy(inner);
        same(kz_api_error_json(&e), ref_dump(json_pack("{s:o}", "error", inner), 0), "error");
        same(kz_api_error_event(&e), ref_dump(json_pack("{s:o}", "error", ev), 1), "error event");
    }
}

static void responses(void)
{
    struct kz_api_usage u = {5, 3};
    char *s = kz_api_chat_response("chatcmpl-1", 1700000000, "m", "hi\xff", 3, "stop", &u);
    json_t *j = parse(s);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    T_EQ_STR(json_string_value(json_object_get(j, "object")), "chat.completion");
    T_EQ_STR(json_string_value(json_object_get(msg, "content")), "hi\xEF\xBF\xBD");
    T_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "usage"), "total_tokens")), 8);
    json_decref(j);
    kz_free(s);

    s = kz_api_chat_chunk("c", 1, "m", "assistant", "", 0, NULL, 1);
    T_OK(s && strncmp(s, "data: {", 7) == 0 && strcmp(s + strlen(s) - 2, "\n\n") == 0, "SSE framing");
    j = parse(s + 6);
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    T_EQ_STR(json_string_value(json_object_get(json_object_get(ch, "delta"), "role")), "assistant");
    T_OK(json_is_null(json_object_get(ch, "finish_reason")), "finish null while streaming");
    T_OK(json_is_null(json_object_get(j, "usage")) && json_object_get(j, "usage"), "usage: null present");
    json_decref(j);
    kz_free(s);

    s = kz_api_usage_chunk("c", 1, "m", 1, &u);
    j = parse(s + 6);
    T_EQ_INT(json_array_size(json_object_get(j, "choices")), 0);
    T_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")), 3);
    json_decref(j);
    kz_free(s);

    float v[3] = {1.0f, -2.5f, 0.0f};
    s = kz_api_embeddings_response("m", 1, 3, v, 1, 4);
    j = parse(s);
    const char *b = json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "embedding"));
    T_EQ_STR(b, "AACAPwAAIMAAAAAA"); /* 1.0f, -2.5f, 0.0f little-endian */
    json_decref(j);
    kz_free(s);

    struct kz_api_error e;
    kz_api_fail(&e, 404, "invalid_request_error", "model_not_found", "model", "The model 'x' does not exist");
    s = kz_api_error_json(&e);
    j = parse(s);
    json_t *eo = json_object_get(j, "error");
    T_EQ_STR(json_string_value(json_object_get(eo, "code")), "model_not_found");
    T_EQ_STR(json_string_value(json_object_get(eo, "param")), "model");
    json_decref(j);
    kz_free(s);

    /* a parse error quoting bytes that are not UTF-8 still gives a JSON error */
    struct kz_api_request r;
    T_EQ_INT(dec(KZ_API_CHAT, "{\"model\":\"m\",\"b\\\xca\x8f\":1}", &r, &e), KZ_EINVAL);
    kz_api_request_free(&r);
    s = kz_api_error_json(&e);
    j = parse(s);
    T_OK(j && strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")), "line 1") != NULL,
         "error JSON despite invalid UTF-8 in the message");
    json_decref(j);
    kz_free(s);

    char id[64];
    kz_api_new_id("chatcmpl", id, sizeof id);
    T_OK(strncmp(id, "chatcmpl-", 9) == 0 && strlen(id) == 33, "id %s", id);
}

int main(void)
{
    t_subtest("chat request accepted", chat_ok);
    t_subtest("chat request rejected", chat_bad);
    t_subtest("completions and embeddings requests", completions_embeddings);
    t_subtest("response encoders", responses);
    t_subtest("encoders match jansson", encoders_match_jansson);
    return t_done();
}
