/* SPDX-License-Identifier: MIT
 * Anthropic Messages translation: request bodies built from OpenAI-style
 * requests, and streamed and whole answers decoded into internal events.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/openai.h"
#include "core/alloc.h"
#include "router/anthropic.h"
#include "t.h"

/* ---- requests ------------------------------------------------------------- */

/* Decodes an OpenAI chat body, builds the Anthropic body and parses it back;
 * NULL (with a failed check) when any step fails. */
static json_t *build(const char *openai_body, const char *model, int stream, int def_max)
{
    struct kz_api_request r;
    struct kz_api_error e;
    memset(&e, 0, sizeof e);
    json_t *out = NULL;
    kz_status rc = kz_api_request_decode(KZ_API_CHAT, openai_body, strlen(openai_body), &r, &e);
    T_OK(rc == KZ_OK, "openai body decodes (%s)", e.message);
    if (rc == KZ_OK) {
        char *body = NULL;
        size_t len = 0;
        struct kz_err err = {{0}};
        rc = kz_anthropic_build_request(&r, model, stream, def_max, &body, &len, &err);
        T_OK(rc == KZ_OK, "anthropic body builds (%s)", err.msg);
        if (rc == KZ_OK) {
            T_EQ_INT(len, strlen(body));
            out = json_loadb(body, len, 0, NULL);
            T_OK(json_is_object(out), "body is a JSON object: %s", body);
        }
        kz_free(body);
    }
    kz_api_request_free(&r);
    return out;
}

static const char *sget(const json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }

static const char *turn(const json_t *b, size_t i, const char *key)
{
    return sget(json_array_get(json_object_get(b, "messages"), i), key);
}

/* The turns are exactly the NULL-terminated role, content pairs in want. */
static void check_turns(const json_t *b, const char *const *want)
{
    size_t n = 0;
    while (want[2 * n])
        n++;
    T_EQ_INT(json_array_size(json_object_get(b, "messages")), n);
    for (size_t i = 0; i < n; i++) {
        T_EQ_STR(turn(b, i, "role"), want[2 * i]);
        T_EQ_STR(turn(b, i, "content"), want[2 * i + 1]);
    }
}

static void request_defaults(void)
{
    json_t *b = build("{\"model\":\"public\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                      "{\"role\":\"developer\",\"content\":\"Answer in French.\"},"
                      "{\"role\":\"user\",\"content\":\"Hello\"}]}",
                      "claude-sonnet-4-5", 0, 1024);
    if (!b)
        return;
    T_EQ_STR(sget(b, "model"), "claude-sonnet-4-5");
    T_EQ_STR(sget(b, "system"), "Be brief.\n\nAnswer in French.");
    check_turns(b, (const char *const[]){"user", "Hello", NULL});
    T_EQ_INT(json_integer_value(json_object_get(b, "max_tokens")), 1024);
    /* nothing the client did not ask for */
    const char *absent[] = {"temperature", "top_p", "top_k", "stop_sequences", "stream", "metadata"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        T_OK(!json_object_get(b, absent[i]), "no '%s' by default", absent[i]);
    json_decref(b);

    /* no system text: no "system" key at all */
    b = build("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":9}", "c", 0, 1024);
    if (!b)
        return;
    T_OK(!json_object_get(b, "system"), "no system");
    T_EQ_INT(json_integer_value(json_object_get(b, "max_tokens")), 9);
    json_decref(b);
}

static void request_alternation(void)
{
    /* Consecutive same-role messages merge; system text anywhere is hoisted;
     * an empty message is dropped (so the users around it merge). */
    json_t *b = build("{\"model\":\"m\",\"messages\":["
                      "{\"role\":\"system\",\"content\":\"S1\"},"
                      "{\"role\":\"user\",\"content\":\"u1\"},{\"role\":\"user\",\"content\":\"u2\"},"
                      "{\"role\":\"assistant\",\"content\":\"a1\"},{\"role\":\"assistant\",\"content\":\"a2\"},"
                      "{\"role\":\"system\",\"content\":\"S2\"},"
                      "{\"role\":\"user\",\"content\":\"u3\"},{\"role\":\"assistant\",\"content\":\"\"},"
                      "{\"role\":\"user\",\"content\":\"u4\"}]}",
                      "c", 0, 100);
    if (!b)
        return;
    T_EQ_STR(sget(b, "system"), "S1\n\nS2");
    check_turns(b, (const char *const[]){"user", "u1\n\nu2", "assistant", "a1\n\na2", "user", "u3\n\nu4", NULL});
    json_decref(b);

    /* Many consecutive messages (the merge grows one buffer). */
    char big[64 * 1024];
    size_t o = (size_t)snprintf(big, sizeof big, "{\"model\":\"m\",\"messages\":[");
    for (int i = 0; i < 1000; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "%s{\"role\":\"user\",\"content\":\"m%d\"}", i ? "," : "", i);
    snprintf(big + o, sizeof big - o, "]}");
    b = build(big, "c", 0, 100);
    if (!b)
        return;
    T_EQ_INT(json_array_size(json_object_get(b, "messages")), 1);
    const char *all = turn(b, 0, "content");
    T_OK(all && strncmp(all, "m0\n\nm1\n\n", 8) == 0 && strstr(all, "\n\nm999") != NULL, "1000 messages merged");
    json_decref(b);
}

static void request_leading_user(void)
{
    /* An assistant greeting first: a user turn is put before it. */
    json_t *b = build("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"S\"},"
                      "{\"role\":\"assistant\",\"content\":\"Hi, how can I help?\"},"
                      "{\"role\":\"user\",\"content\":\"Weather?\"}]}",
                      "c", 0, 100);
    if (!b)
        return;
    check_turns(b, (const char *const[]){"user", KZ_ANTHROPIC_LEAD_USER, "assistant", "Hi, how can I help?", "user",
                                         "Weather?", NULL});
    json_decref(b);

    /* Only system text: the one user turn carries the lead text. */
    b = build("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Tell a joke.\"}]}", "c", 0, 100);
    if (!b)
        return;
    T_EQ_STR(sget(b, "system"), "Tell a joke.");
    check_turns(b, (const char *const[]){"user", KZ_ANTHROPIC_LEAD_USER, NULL});
    json_decref(b);
}

static void request_all_params(void)
{
    json_t *b = build("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":77,"
                      "\"temperature\":0.5,\"top_p\":0.9,\"top_k\":40,\"stop\":[\"END\",\"\\n\",\" \\t\",\"##\"],"
                      "\"stream\":true,\"user\":\"user-42\",\"seed\":7,\"presence_penalty\":1}",
                      "claude-opus", 1, 1024);
    if (!b)
        return;
    T_EQ_INT(json_integer_value(json_object_get(b, "max_tokens")), 77);
    T_OK(fabs(json_real_value(json_object_get(b, "temperature")) - 0.5) < 1e-12, "temperature 0.5");
    T_OK(!json_object_get(b, "top_p"), "top_p left out next to temperature");
    T_EQ_INT(json_integer_value(json_object_get(b, "top_k")), 40);
    json_t *stops = json_object_get(b, "stop_sequences");
    T_EQ_INT(json_array_size(stops), 2); /* the whitespace-only ones cannot cross */
    T_EQ_STR(json_string_value(json_array_get(stops, 0)), "END");
    T_EQ_STR(json_string_value(json_array_get(stops, 1)), "##");
    T_OK(json_is_true(json_object_get(b, "stream")), "stream true");
    T_EQ_STR(sget(json_object_get(b, "metadata"), "user_id"), "user-42");
    T_OK(!json_object_get(b, "seed") && !json_object_get(b, "presence_penalty"), "no Anthropic equivalent: dropped");
    json_decref(b);

    /* top_p alone crosses; top_k 0 (no cut) and only-blank stops do not. */
    b = build("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":0.25,\"top_k\":0,"
              "\"stop\":\"\\n\"}",
              "c", 0, 64);
    if (!b)
        return;
    T_OK(fabs(json_real_value(json_object_get(b, "top_p")) - 0.25) < 1e-12, "top_p 0.25");
    T_OK(!json_object_get(b, "top_k") && !json_object_get(b, "stop_sequences"), "top_k 0, blank stop");
    T_OK(!json_object_get(b, "temperature"), "no temperature");
    json_decref(b);
}

static void request_temperature_clamp(void)
{
    static const struct {
        const char *t;
        double want;
    } cases[] = {{"0", 0.0}, {"0.7", 0.7}, {"1", 1.0}, {"1.01", 1.0}, {"1.5", 1.0}, {"2", 1.0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[200];
        snprintf(body, sizeof body,
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":%s}", cases[i].t);
        json_t *b = build(body, "c", 0, 64);
        if (!b)
            continue;
        json_t *t = json_object_get(b, "temperature");
        T_OK(json_is_number(t) && fabs(json_number_value(t) - cases[i].want) < 1e-9, "temperature %s -> %g (got %g)",
             cases[i].t, cases[i].want, json_number_value(t));
        json_decref(b);
    }
}

static void request_refused(void)
{
    struct kz_api_request r;
    struct kz_api_error e;
    struct kz_err err = {{0}};
    char *body = NULL;
    size_t len = 0;
    const char *chat = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    T_EQ_INT(kz_api_request_decode(KZ_API_CHAT, chat, strlen(chat), &r, &e), KZ_OK);
    T_EQ_INT(kz_anthropic_build_request(&r, "c", 0, 0, &body, &len, &err), KZ_EINVAL);
    T_OK(strstr(err.msg, "max_tokens") != NULL, "names max_tokens: %s", err.msg);
    T_EQ_INT(kz_anthropic_build_request(&r, "", 0, 100, &body, &len, &err), KZ_EINVAL);
    T_OK(strstr(err.msg, "model") != NULL, "names the model: %s", err.msg);
    T_OK(body == NULL, "no body on failure");
    kz_api_request_free(&r);

    const char *comp = "{\"model\":\"m\",\"prompt\":\"x\"}";
    T_EQ_INT(kz_api_request_decode(KZ_API_COMPLETION, comp, strlen(comp), &r, &e), KZ_OK);
    T_EQ_INT(kz_anthropic_build_request(&r, "c", 0, 100, &body, &len, &err), KZ_EUNSUPPORTED);
    T_OK(strstr(err.msg, "chat") != NULL, "says chat only: %s", err.msg);
    kz_api_request_free(&r);

    /* out of memory at every step in turn: a clean failure, never a crash or leak */
    T_EQ_INT(kz_api_request_decode(KZ_API_CHAT, chat, strlen(chat), &r, &e), KZ_OK);
    int failed = 0;
    for (long n = 1; n < 20; n++) {
        kz_alloc_fail_after(n);
        kz_status rc = kz_anthropic_build_request(&r, "c", 1, 100, &body, &len, &err);
        kz_alloc_fail_after(0);
        if (rc == KZ_OK)
            KZ_FREE(body);
        else
            failed += rc == KZ_ENOMEM;
    }
    T_OK(failed > 0, "allocation failures reported as KZ_ENOMEM (%d)", failed);
    kz_api_request_free(&r);
}

/* ---- answers --------------------------------------------------------------- */

/* Everything the decoder emitted, in order. */
struct sink {
    char seq[64];       /* one letter per event: T F U E */
    char text[512];
    size_t text_len;
    const char *finish;
    long in, out;
    int status;
    char type[64], msg[256];
    int stop_after;     /* nonzero: ask to stop after this many events */
};

static int collect(void *ud, const struct kz_ev *ev)
{
    struct sink *s = ud;
    size_t n = strlen(s->seq);
    if (n + 1 < sizeof s->seq)
        s->seq[n] = "TFUE"[ev->type];
    switch (ev->type) {
    case KZ_EV_TEXT:
        T_EQ_INT(ev->index, 0);
        if (s->text_len + ev->len < sizeof s->text) {
            memcpy(s->text + s->text_len, ev->text, ev->len);
            s->text_len += ev->len;
        }
        break;
    case KZ_EV_FINISH:
        s->finish = ev->finish;
        break;
    case KZ_EV_USAGE:
        s->in = ev->prompt_tokens;
        s->out = ev->completion_tokens;
        break;
    case KZ_EV_EMBEDDING:
        T_OK(0, "no embeddings from a chat decoder");
        break;
    case KZ_EV_ERROR:
        s->status = ev->status;
        snprintf(s->type, sizeof s->type, "%s", ev->err_type ? ev->err_type : "(null)");
        snprintf(s->msg, sizeof s->msg, "%s", ev->message ? ev->message : "(null)");
        break;
    }
    return s->stop_after && (int)strlen(s->seq) >= s->stop_after;
}

static void sink_init(struct sink *s)
{
    memset(s, 0, sizeof *s);
    s->in = s->out = -2;
}

/* A decoder, what it emitted, and its error detail. */
struct run {
    struct kz_anthropic_dec d;
    struct sink s;
    struct kz_err err;
};

static void run_init(struct run *r)
{
    kz_anthropic_dec_init(&r->d);
    sink_init(&r->s);
    r->err.msg[0] = '\0';
}

/* One event fed to r's decoder. */
static kz_status ev1(struct run *r, const char *event, const char *data)
{
    return kz_anthropic_dec_event(&r->d, event, data, strlen(data), collect, &r->s, &r->err);
}

/* A whole response body decoded into a fresh sink. */
static kz_status whole(struct run *r, const char *body)
{
    sink_init(&r->s);
    return kz_anthropic_decode_response(body, strlen(body), collect, &r->s, &r->err);
}

/* Splits SSE text as Anthropic sends it ("event: NAME\ndata: JSON\n\n") and
 * feeds each event, with its name or (named == 0) without. Returns the
 * first failure, or KZ_OK. */
static kz_status feed(struct run *r, const char *sse, int named)
{
    char name[64];
    const char *p = sse;
    while (*p) {
        const char *ev = strstr(p, "event: "), *data = strstr(p, "data: ");
        if (!ev || !data)
            break;
        size_t nlen = strcspn(ev + 7, "\n");
        snprintf(name, sizeof name, "%.*s", (int)nlen, ev + 7);
        data += 6;
        size_t dlen = strcspn(data, "\n");
        kz_status rc = kz_anthropic_dec_event(&r->d, named ? name : NULL, data, dlen, collect, &r->s, &r->err);
        if (rc)
            return rc;
        p = data + dlen;
    }
    return KZ_OK;
}

/* The "Basic streaming request" response from the Anthropic streaming
 * documentation (https://docs.anthropic.com/en/api/messages-streaming, now
 * https://platform.claude.com/docs/en/build-with-claude/streaming),
 * reproduced byte for byte as data. */
static const char spec_stream[] =
    "event: message_start\n"
    "data: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\", \"type\": "
    "\"message\", \"role\": \"assistant\", \"content\": [], \"model\": \"claude-sonnet-4-5-20250929\", \"stop_reason\": "
    "null, \"stop_sequence\": null, \"usage\": {\"input_tokens\": 25, \"output_tokens\": 1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": \"text\", \"text\": \"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"Hello\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"text_delta\", \"text\": \"!\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\": \"content_block_stop\", \"index\": 0}\n\n"
    "event: message_delta\n"
    "data: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"end_turn\", \"stop_sequence\":null}, \"usage\": "
    "{\"output_tokens\": 15}}\n\n"
    "event: message_stop\n"
    "data: {\"type\": \"message_stop\"}\n\n";

static void stream_spec_example(void)
{
    for (int named = 1; named >= 0; named--) {
        struct run r;
        run_init(&r);
        T_OK(!kz_anthropic_dec_done(&r.d), "not done before any event");
        T_EQ_INT(feed(&r, spec_stream, named), KZ_OK);
        T_EQ_STR(r.s.seq, "TTFU");
        T_OK(r.s.text_len == 6 && memcmp(r.s.text, "Hello!", 6) == 0, "text 'Hello!' (%d)", named);
        T_EQ_STR(r.s.finish, KZ_FINISH_STOP);
        T_EQ_INT(r.s.in, 25);
        T_EQ_INT(r.s.out, 15);
        T_OK(kz_anthropic_dec_done(&r.d), "done after message_stop (%d)", named);
    }

    /* the same stream cut before message_stop is not done */
    struct run r;
    run_init(&r);
    const char *cut = strstr(spec_stream, "event: message_stop");
    char partial[sizeof spec_stream];
    snprintf(partial, sizeof partial, "%.*s", (int)(cut - spec_stream), spec_stream);
    T_EQ_INT(feed(&r, partial, 1), KZ_OK);
    T_EQ_STR(r.s.seq, "TTFU");
    T_OK(!kz_anthropic_dec_done(&r.d), "a cut stream is not done");
}

/* A thinking block and a tool_use block before the text. The thinking part
 * is the "Streaming request with extended thinking" example of the same
 * documentation page (which has no usage counts at all); the tool_use block
 * follows the page's tool use example. */
static const char thinking_tool_stream[] =
    "event: message_start\n"
    "data: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_01...\", \"type\": \"message\", \"role\": "
    "\"assistant\", \"content\": [], \"model\": \"claude-sonnet-4-5-20250929\", \"stop_reason\": null, "
    "\"stop_sequence\": null}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\": \"content_block_start\", \"index\": 0, \"content_block\": {\"type\": \"thinking\", \"thinking\": "
    "\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"thinking_delta\", \"thinking\": "
    "\"Let me solve this step by step:\\n\\n1. First break down 27 * 453\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"thinking_delta\", \"thinking\": "
    "\"\\n2. 453 = 400 + 50 + 3\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\"type\": \"signature_delta\", \"signature\": "
    "\"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds...\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\": \"content_block_stop\", \"index\": 0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":"
    "\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":"
    "\"{\\\"location\\\":\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: content_block_start\n"
    "data: {\"type\": \"content_block_start\", \"index\": 2, \"content_block\": {\"type\": \"text\", \"text\": \"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\": \"content_block_delta\", \"index\": 2, \"delta\": {\"type\": \"text_delta\", \"text\": \"27 * 453 "
    "= 12,231\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\": \"content_block_stop\", \"index\": 2}\n\n"
    "event: message_delta\n"
    "data: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"tool_use\", \"stop_sequence\": null}}\n\n"
    "event: message_stop\n"
    "data: {\"type\": \"message_stop\"}\n\n";

static void stream_thinking_and_tools(void)
{
    struct run r;
    run_init(&r);
    T_EQ_INT(feed(&r, thinking_tool_stream, 1), KZ_OK);
    T_EQ_STR(r.s.seq, "TF"); /* no counts anywhere: no USAGE */
    T_OK(r.s.text_len == 17 && memcmp(r.s.text, "27 * 453 = 12,231", 17) == 0, "only the text block: '%.*s'",
         (int)r.s.text_len, r.s.text);
    T_EQ_STR(r.s.finish, KZ_FINISH_TOOL_CALLS);
    T_OK(kz_anthropic_dec_done(&r.d), "done");
}

static void stream_usage(void)
{
    /* Counts from the "web search tool" example of the streaming page: the
     * final message_delta carries input_tokens too, which then win. */
    struct run r;
    run_init(&r);
    const char *sse =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01G...\",\"type\":\"message\",\"role\":"
        "\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":"
        "null,\"usage\":{\"input_tokens\":2679,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
        "\"output_tokens\":3}}}\n\n"
        "event: message_delta\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":"
        "{\"input_tokens\":10682,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":510,"
        "\"server_tool_use\":{\"web_search_requests\":1}}}\n\n";
    T_EQ_INT(feed(&r, sse, 1), KZ_OK);
    T_EQ_STR(r.s.seq, "FU");
    T_EQ_INT(r.s.in, 10682);
    T_EQ_INT(r.s.out, 510);

    /* a message_delta without a stop_reason only updates; one after FINISH
     * gives a new USAGE; message_stop adds nothing */
    run_init(&r);
    sse = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":7}}}\n\n"
          "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":null},"
          "\"usage\":{\"output_tokens\":4}}\n\n"
          "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},"
          "\"usage\":{\"output_tokens\":5}}\n\n"
          "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":6}}\n\n"
          "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    T_EQ_INT(feed(&r, sse, 1), KZ_OK);
    T_EQ_STR(r.s.seq, "FUU");
    T_EQ_STR(r.s.finish, KZ_FINISH_LENGTH);
    T_EQ_INT(r.s.in, 7);
    T_EQ_INT(r.s.out, 6);

    /* no message_delta at all: message_stop finishes the answer */
    run_init(&r);
    sse = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,"
          "\"output_tokens\":1}}}\n\n"
          "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    T_EQ_INT(feed(&r, sse, 1), KZ_OK);
    T_EQ_STR(r.s.seq, "FU");
    T_EQ_STR(r.s.finish, KZ_FINISH_STOP);
    T_EQ_INT(r.s.in, 3);
    T_EQ_INT(r.s.out, 1);
}

static const struct {
    const char *reason, *finish;
} stop_reasons[] = {
    {"end_turn", KZ_FINISH_STOP},
    {"stop_sequence", KZ_FINISH_STOP},
    {"pause_turn", KZ_FINISH_STOP},
    {"max_tokens", KZ_FINISH_LENGTH},
    {"model_context_window_exceeded", KZ_FINISH_LENGTH},
    {"tool_use", KZ_FINISH_TOOL_CALLS},
    {"refusal", KZ_FINISH_CONTENT_FILTER},
    {"a_reason_from_the_future", KZ_FINISH_STOP},
};

static void every_stop_reason(void)
{
    for (size_t i = 0; i < sizeof stop_reasons / sizeof stop_reasons[0]; i++) {
        char data[256];
        struct run r;
        /* streamed */
        run_init(&r);
        snprintf(data, sizeof data,
                 "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\",\"stop_sequence\":null},"
                 "\"usage\":{\"output_tokens\":2}}",
                 stop_reasons[i].reason);
        T_EQ_INT(ev1(&r, "message_delta", data), KZ_OK);
        T_EQ_STR(r.s.seq, "FU");
        T_EQ_STR(r.s.finish, stop_reasons[i].finish);
        T_EQ_INT(r.s.in, -1); /* no message_start: the provider did not say */
        T_EQ_INT(r.s.out, 2);
        /* whole */
        snprintf(data, sizeof data,
                 "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"stop_reason\":\"%s\","
                 "\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}",
                 stop_reasons[i].reason);
        T_EQ_INT(whole(&r, data), KZ_OK);
        T_EQ_STR(r.s.seq, "FU");
        T_EQ_STR(r.s.finish, stop_reasons[i].finish);
        T_EQ_STR(kz_anthropic_finish(stop_reasons[i].reason), stop_reasons[i].finish);
    }
    T_EQ_STR(kz_anthropic_finish(NULL), KZ_FINISH_STOP);
}

static void stream_error_event(void)
{
    /* The documented error event ("Error events" on the streaming page),
     * arriving after a 200 and some text. */
    struct run r;
    run_init(&r);
    const char *sse =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5}}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
        "{\"type\":\"text_delta\",\"text\":\"Par\"}}\n\n"
        "event: error\n"
        "data: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
        "{\"type\":\"text_delta\",\"text\":\"tial\"}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    T_EQ_INT(feed(&r, sse, 1), KZ_OK);
    T_EQ_STR(r.s.seq, "TE"); /* nothing after the error */
    T_EQ_INT(r.s.status, 529);
    T_EQ_STR(r.s.type, "overloaded_error");
    T_EQ_STR(r.s.msg, "Overloaded");
    T_OK(!kz_anthropic_dec_done(&r.d), "an errored stream is not done");

    static const struct {
        const char *type;
        int status;
    } types[] = {{"overloaded_error", 529},     {"rate_limit_error", 429}, {"api_error", 500},
                 {"invalid_request_error", 400}, {"authentication_error", 401}, {"permission_error", 403},
                 {"not_found_error", 404},       {"request_too_large", 413},   {"billing_error", 500},
                 {"brand_new_error", 500}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char data[200];
        snprintf(data, sizeof data, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"m%zu\"}}",
                 types[i].type, i);
        run_init(&r);
        /* unnamed: the data's "type" says it is an error */
        T_EQ_INT(ev1(&r, NULL, data), KZ_OK);
        T_EQ_STR(r.s.seq, "E");
        T_EQ_INT(r.s.status, types[i].status);
        T_EQ_STR(r.s.type, types[i].type);
        T_EQ_INT(kz_anthropic_error_status(types[i].type), types[i].status);
    }
    /* an error without details still ends the answer as an error */
    run_init(&r);
    T_EQ_INT(ev1(&r, "error", "{}"), KZ_OK);
    T_EQ_STR(r.s.seq, "E");
    T_EQ_INT(r.s.status, 500);
    T_EQ_STR(r.s.type, "(null)");
    T_OK(r.s.msg[0] && strcmp(r.s.msg, "(null)") != 0, "a message all the same: %s", r.s.msg);
}

static void stream_malformed(void)
{
    static const char *const names[] = {"message_start", "content_block_start", "content_block_delta",
                                        "content_block_stop", "message_delta", "message_stop", "ping", "error"};
    static const char *const bad[] = {"{\"type\":", "", "[1,2]", "\"text\"", "{\"a\":1} x"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
            struct run r;
            run_init(&r);
            kz_status rc = ev1(&r, names[i], bad[j]);
            T_OK(rc == KZ_EPROTO, "%s with '%s' -> KZ_EPROTO (%d)", names[i], bad[j], (int)rc);
            T_OK(strstr(r.err.msg, names[i]) != NULL, "message names the event: %s", r.err.msg);
            T_EQ_STR(r.s.seq, "");
        }

    /* structure we rely on */
    static const struct {
        const char *event, *data;
    } wrong[] = {
        {"message_start", "{\"type\":\"message_start\",\"message\":\"x\"}"},
        {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0}"},
        {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\"}}"},
        {"content_block_delta",
         "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":5}}"},
        {NULL, "{\"index\":0}"},
        {NULL, "not json"},
    };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        struct run r;
        run_init(&r);
        kz_status rc = ev1(&r, wrong[i].event, wrong[i].data);
        T_OK(rc == KZ_EPROTO && r.err.msg[0], "case %zu -> KZ_EPROTO: %s", i, r.err.msg);
        T_EQ_STR(r.s.seq, "");
    }

    /* unknown event names are skipped without reading their data; an
     * unnamed event of an unknown type is skipped too */
    struct run r;
    run_init(&r);
    T_EQ_INT(ev1(&r, "some_new_event", "<not json>"), KZ_OK);
    T_EQ_INT(ev1(&r, NULL, "{\"type\":\"brand_new\"}"), KZ_OK);
    /* data that is not NUL-terminated: only len bytes are read */
    const char text[] = "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ok\"}}"
                        "GARBAGE";
    T_EQ_INT(kz_anthropic_dec_event(&r.d, "content_block_delta", text, sizeof text - 1 - 7, collect, &r.s, &r.err), KZ_OK);
    T_EQ_STR(r.s.seq, "T");
    T_OK(r.s.text_len == 2 && memcmp(r.s.text, "ok", 2) == 0, "text ok");
}

static void sink_stops(void)
{
    /* the sink asks to stop after the first event: nothing more comes */
    struct run r;
    run_init(&r);
    r.s.stop_after = 1;
    const char *md = "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1}}";
    T_EQ_INT(ev1(&r, "message_delta", md), KZ_OK);
    T_EQ_STR(r.s.seq, "F");

    const char *body = "{\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}],"
                       "\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}";
    sink_init(&r.s);
    r.s.stop_after = 1;
    T_EQ_INT(kz_anthropic_decode_response(body, strlen(body), collect, &r.s, &r.err), KZ_OK);
    T_EQ_STR(r.s.seq, "T");
}

static void whole_responses(void)
{
    struct run r;
    run_init(&r);
    /* Shaped like the response example of the "Stop reasons" documentation
     * page (https://platform.claude.com/docs/en/build-with-claude/handling-stop-reasons). */
    const char *doc = "{\"id\": \"msg_01234\", \"type\": \"message\", \"role\": \"assistant\", \"content\": [{\"type\": "
                      "\"text\", \"text\": \"Here's the answer to your question...\"}], \"stop_reason\": \"end_turn\", "
                      "\"stop_sequence\": null, \"usage\": {\"input_tokens\": 100, \"output_tokens\": 50}}";
    T_EQ_INT(whole(&r, doc), KZ_OK);
    T_EQ_STR(r.s.seq, "TFU");
    T_OK(r.s.text_len == 37 && memcmp(r.s.text, "Here's the answer to your question...", 37) == 0, "text");
    T_EQ_STR(r.s.finish, KZ_FINISH_STOP);
    T_EQ_INT(r.s.in, 100);
    T_EQ_INT(r.s.out, 50);

    /* text blocks around thinking and tool_use blocks: only text, in order */
    const char *mixed =
        "{\"type\":\"message\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"x\"},"
        "{\"type\":\"text\",\"text\":\"Let me check. \"},{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\","
        "\"input\":{\"a\":1}},{\"type\":\"text\",\"text\":\"Done.\"},{\"type\":\"text\",\"text\":\"\"}],"
        "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":10,\"output_tokens\":5,"
        "\"cache_read_input_tokens\":3}}";
    T_EQ_INT(whole(&r, mixed), KZ_OK);
    T_EQ_STR(r.s.seq, "TTFU");
    T_OK(r.s.text_len == 19 && memcmp(r.s.text, "Let me check. Done.", 19) == 0, "text in order: '%.*s'", (int)r.s.text_len,
         r.s.text);
    T_EQ_STR(r.s.finish, KZ_FINISH_TOOL_CALLS);

    /* no usage object, null stop_reason */
    const char *bare = "{\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"stop_reason\":null}";
    T_EQ_INT(whole(&r, bare), KZ_OK);
    T_EQ_STR(r.s.seq, "TF");
    T_EQ_STR(r.s.finish, KZ_FINISH_STOP);

    /* an error object, in the shape of the "Errors" documentation page */
    const char *e = "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":\"The requested resource "
                    "could not be found.\"},\"request_id\":\"req_011CSHoEeqs5C35K2UUqR7Fy\"}";
    T_EQ_INT(whole(&r, e), KZ_OK);
    T_EQ_STR(r.s.seq, "E");
    T_EQ_INT(r.s.status, 404);
    T_EQ_STR(r.s.msg, "The requested resource could not be found.");

    static const char *const broken[] = {"", "<html>502</html>", "[]", "{\"type\":\"message\"}",
                                         "{\"content\":{\"type\":\"text\"}}", "{\"content\":[]"};
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        kz_status rc = whole(&r, broken[i]);
        T_OK(rc == KZ_EPROTO && strstr(r.err.msg, "anthropic response") != NULL, "'%s' -> KZ_EPROTO: %s", broken[i],
             r.err.msg);
        T_EQ_STR(r.s.seq, "");
    }
}

int main(void)
{
    t_subtest("request: defaults and system text", request_defaults);
    t_subtest("request: alternation", request_alternation);
    t_subtest("request: leading user turn", request_leading_user);
    t_subtest("request: every parameter", request_all_params);
    t_subtest("request: temperature clamp", request_temperature_clamp);
    t_subtest("request: refused", request_refused);
    t_subtest("stream: documented example", stream_spec_example);
    t_subtest("stream: thinking and tool_use blocks", stream_thinking_and_tools);
    t_subtest("stream: usage", stream_usage);
    t_subtest("every stop reason", every_stop_reason);
    t_subtest("stream: error events", stream_error_event);
    t_subtest("stream: malformed events", stream_malformed);
    t_subtest("sink asks to stop", sink_stops);
    t_subtest("whole responses", whole_responses);
    return t_done();
}
