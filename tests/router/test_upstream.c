/* SPDX-License-Identifier: MIT
 * The upstream side of the router: the SSE parser on every split of a
 * stream, the OpenAI chunk decoder, and upstream calls on a libuv loop
 * against a local HTTP server (streams, the head and idle deadlines,
 * refused connections, cancellation, connection reuse), once with the plain
 * HTTP/1.1 client and once with libcurl (KZ_HTTP_CLIENT=curl); and the
 * plain client against a scripted raw server: a kept-alive connection that
 * dies under a request (sent again once, on a new connection), answers that
 * close their connection, bytes past an answer.
 */
#include <stdlib.h>
#include <string.h>

#include "http/http_test_util.h"
#include "router/openai_scan.h"
#include "router/openai_up.h"
#include "router/sse.h"
#include "router/upstream.h"
#include "t.h"

/* ---- SSE ------------------------------------------------------------------ */

struct sse_log {
    char out[4096];
    size_t n;
    int stop_after;
};

static int sse_cb(void *ud, const char *event, const char *data, size_t len)
{
    struct sse_log *l = ud;
    l->n++;
    size_t k = strlen(l->out);
    snprintf(l->out + k, sizeof l->out - k, "[%s|%.*s]", event, (int)len, data);
    return l->stop_after && (int)l->n >= l->stop_after;
}

static void sse_splits(void)
{
    const char *in = ": comment\r\n"
                     "data: one\n\n"
                     "event: named\r\ndata:two\r\ndata:  three\r\n\r\n"
                     "id: 7\rretry: 10\rdata: four\r\r"
                     "data\n\n"
                     "event: nodata\n\n"
                     "data: last";
    const char *want = "[|one][named|two\n three][|four][|]";
    size_t n = strlen(in);
    int bad = 0;
    for (size_t cut1 = 0; cut1 <= n; cut1++)
        for (size_t cut2 = cut1; cut2 <= n; cut2 += 3) {
            struct kz_sse p;
            struct sse_log l = {{0}, 0, 0};
            struct kz_err err;
            kz_sse_init(&p, 0);
            kz_status rc = kz_sse_feed(&p, in, cut1, sse_cb, &l, &err);
            rc |= kz_sse_feed(&p, in + cut1, cut2 - cut1, sse_cb, &l, &err);
            rc |= kz_sse_feed(&p, in + cut2, n - cut2, sse_cb, &l, &err);
            if (rc || strcmp(l.out, want) != 0) {
                if (!bad++)
                    T_OK(0, "split %zu/%zu gives %s", cut1, cut2, l.out);
            }
            kz_sse_free(&p);
        }
    T_OK(bad == 0, "every split of the stream gives the same events (%d bad)", bad);

    struct kz_sse p;
    struct sse_log l = {{0}, 0, 1};
    struct kz_err err;
    kz_sse_init(&p, 0);
    T_EQ_INT(kz_sse_feed(&p, "data: a\n\ndata: b\n\n", 18, sse_cb, &l, &err), KZ_OK);
    T_OK(l.n == 1 && p.stopped, "a callback can stop the parser");
    kz_sse_free(&p);

    /* limits: one huge line, many data lines without a blank line */
    kz_sse_init(&p, 1000);
    char big[600];
    memset(big, 'x', sizeof big);
    memcpy(big, "data: ", 6);
    struct sse_log l2 = {{0}, 0, 0};
    kz_status rc = kz_sse_feed(&p, big, sizeof big, sse_cb, &l2, &err);
    rc = rc ? rc : kz_sse_feed(&p, big, sizeof big, sse_cb, &l2, &err);
    T_EQ_INT(rc, KZ_ELIMIT);
    kz_sse_free(&p);
    kz_sse_init(&p, 1000);
    rc = KZ_OK;
    for (int i = 0; i < 1000 && !rc; i++)
        rc = kz_sse_feed(&p, "data: 0123456789\n", 17, sse_cb, &l2, &err);
    T_EQ_INT(rc, KZ_ELIMIT);
    T_OK(strstr(err.msg, "larger than") != NULL, "message: %s", err.msg);
    kz_sse_free(&p);
    /* comments never accumulate */
    kz_sse_init(&p, 1000);
    rc = KZ_OK;
    for (int i = 0; i < 10000 && !rc; i++)
        rc = kz_sse_feed(&p, ": ping\n", 7, sse_cb, &l2, &err);
    T_EQ_INT(rc, KZ_OK);
    T_EQ_INT((long)p.n_comments, 10000);
    kz_sse_free(&p);
}

/* ---- OpenAI chunks --------------------------------------------------------------- */

static int ev_cb(void *ud, const struct kz_ev *ev)
{
    char *out = ud;
    size_t k = strlen(out);
    switch (ev->type) {
    case KZ_EV_TEXT:
        snprintf(out + k, 1024 - k, "T%d:%.*s;", ev->index, (int)ev->len, ev->text);
        break;
    case KZ_EV_FINISH:
        snprintf(out + k, 1024 - k, "F%d:%s;", ev->index, ev->finish);
        break;
    case KZ_EV_USAGE:
        snprintf(out + k, 1024 - k, "U:%ld/%ld;", ev->prompt_tokens, ev->completion_tokens);
        break;
    case KZ_EV_ERROR:
        snprintf(out + k, 1024 - k, "E%d:%s;", ev->status, ev->message ? ev->message : "");
        break;
    case KZ_EV_EMBEDDING:
        snprintf(out + k, 1024 - k, "V%d:%zu;", ev->index, ev->dim);
        break;
    }
    return 0;
}

static void openai_chunks(void)
{
    static const struct {
        int chat;
        const char *data;
        kz_status rc;
        const char *want;
    } cases[] = {
        {1, "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}",
         KZ_OK, ""},
        {1, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}", KZ_OK,
         "T0:Hi;"},
        {1, "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}", KZ_OK, "F0:length;"},
        {1, "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"function_call\"}]}", KZ_OK, "F0:tool_calls;"},
        {1, "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}}", KZ_OK,
         "U:5/7;"},
        {1, "{\"choices\":null,\"usage\":{\"prompt_tokens\":5}}", KZ_OK, "U:5/-1;"}, /* vLLM-style */
        {1, "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}", KZ_OK, "U:1/2;"},
        {0, "{\"choices\":[{\"index\":1,\"text\":\"ab\",\"finish_reason\":\"stop\"}]}", KZ_OK, "T1:ab;F1:stop;"},
        {1, "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}", KZ_OK, "E502:boom;"},
        {1, "{\"choices\":{}}", KZ_EPROTO, ""},
        {1, "{\"choices\":[{\"delta\":{\"content\":5}}]}", KZ_EPROTO, ""},
        {1, "{\"choices\":[{\"delta\":\"x\"}]}", KZ_EPROTO, ""},
        {1, "{\"choices\":[{\"index\":-1}]}", KZ_EPROTO, ""},
        {1, "{\"choices\":[7]}", KZ_EPROTO, ""},
        {1, "{not json", KZ_EPROTO, ""},
        {1, "[1,2]", KZ_EPROTO, ""},
    };
    /* every case through the fast path (when it takes it) and through jansson alone */
    for (int no_fast = 0; no_fast < 2; no_fast++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            struct kz_openai_dec d;
            memset(&d, 0, sizeof d);
            d.no_fast = no_fast;
            struct kz_err err = {{0}};
            char out[1024] = "";
            kz_status rc =
                kz_openai_dec_chunk(&d, cases[i].chat, cases[i].data, strlen(cases[i].data), ev_cb, out, &err);
            T_OK(rc == cases[i].rc && strcmp(out, cases[i].want) == 0, "chunk %zu (jansson only %d): rc %d events '%s' (%s)",
                 i, no_fast, rc, out, err.msg);
        }
    /* the common shapes take the fast path; odd ones fall back and agree */
    static const char *const fast[] = {
        "{\"id\":\"c-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m\","
        "\"system_fingerprint\":null,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\u00e9\"},"
        "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}",
        "{\"id\":\"c-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\xc3\xa9 ok\"},\"finish_reason\":null}]}",
        " { \"choices\" : [ { \"index\" : 1 , \"text\" : \"x\" , \"finish_reason\" : \"length\" } ] } \n",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}}",
    };
    static const char *const odd[] = {
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\\nb\"}}]}",          /* an escape */
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}],\"x_new\":{\"k\":[1]}}", /* unknown key */
        "{\"choices\":[{\"index\":0,\"index\":1,\"delta\":{\"content\":\"a\"}}]}", /* duplicate */
        "{\"choices\":[{\"index\":-1,\"delta\":{}}]}",                                 /* bad index */
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]} x",              /* trailing bytes */
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\xff\"}}]}",             /* invalid UTF-8 */
        "{\"usage\":{\"prompt_tokens\":1.5}}",                                            /* a real */
        "{\"choices\":[{\"index\":01}]}",                                               /* leading zero */
    };
    for (int k = 0; k < 2; k++) {
        const char *const *set = k ? odd : fast;
        size_t n = k ? sizeof odd / sizeof *odd : sizeof fast / sizeof *fast;
        for (size_t i = 0; i < n; i++) {
            char a[1024] = "", b[1024] = "";
            struct kz_openai_dec d1, d2;
            memset(&d1, 0, sizeof d1);
            memset(&d2, 0, sizeof d2);
            d2.no_fast = 1;
            kz_status r1 = kz_openai_dec_chunk(&d1, 1 - k % 2, set[i], strlen(set[i]), ev_cb, a, NULL);
            kz_status r2 = kz_openai_dec_chunk(&d2, 1 - k % 2, set[i], strlen(set[i]), ev_cb, b, NULL);
            T_OK(r1 == r2 && strcmp(a, b) == 0, "%s %zu: fast '%s' (%d) vs jansson '%s' (%d)", k ? "odd" : "common", i,
                 a, r1, b, r2);
            T_OK(d1.n_fast == (k ? 0 : 1), "%s %zu: fast path %s", k ? "odd" : "common", i,
                 k ? "declined" : "taken");
        }
    }
    struct kz_openai_dec d = {0, 0, 0, 0};
    char out[1024] = "";
    T_EQ_INT(kz_openai_dec_chunk(&d, 1, "[DONE]", 6, ev_cb, out, NULL), KZ_OK);
    T_OK(d.done, "[DONE] ends the stream");

    struct kz_api_request r;
    struct kz_api_error e;
    const char *body = "{\"model\":\"pub\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"x_ext\":1}";
    T_EQ_INT(kz_api_request_decode(KZ_API_CHAT, body, strlen(body), &r, &e), KZ_OK);
    char *up = NULL;
    size_t len = 0;
    T_EQ_INT(kz_openai_build_request(&r, "up-model", 1, &up, &len, NULL), KZ_OK);
    json_t *j = json_loadb(up, len, 0, NULL);
    T_EQ_STR(json_string_value(json_object_get(j, "model")), "up-model");
    T_OK(json_is_true(json_object_get(j, "stream")), "forced to stream");
    T_OK(json_is_true(json_object_get(json_object_get(j, "stream_options"), "include_usage")), "usage asked for");
    T_OK(json_integer_value(json_object_get(j, "x_ext")) == 1, "unknown fields pass through");
    json_decref(j);
    kz_free(up);
    kz_api_request_free(&r);
}

/* The upstream body is written key by key; the reference is the client's
 * tree deep-copied, edited with jansson and dumped, byte for byte. */
static char *ref_build(const struct kz_api_request *r, const char *model, int stream)
{
    json_t *o = json_deep_copy(r->root);
    json_object_set_new(o, "model", json_string(model));
    if (r->kind == KZ_API_EMBEDDINGS) {
        json_object_set_new(o, "encoding_format", json_string("float"));
    } else if (stream) {
        json_t *so = json_object_get(o, "stream_options");
        if (!json_is_object(so)) {
            so = json_object();
            json_object_set_new(o, "stream_options", so);
        }
        json_object_set_new(o, "stream", json_true());
        json_object_set_new(so, "include_usage", json_true());
    }
    char *d = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return d;
}

static void build_request(void)
{
    static const struct {
        enum kz_api_kind kind;
        const char *body;
    } cases[] = {
        {KZ_API_CHAT, "{\"model\":\"pub\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"x_ext\":1}"},
        {KZ_API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\\"\\u0001\\u00e9\"}],\"model\":\"pub\","
                      "\"stream\":false,\"temperature\":0.7,\"top_p\":0.25,\"max_tokens\":4,\"stop\":[\"\\n\"]}"},
        {KZ_API_CHAT, "{\"model\":\"pub\",\"stream\":true,\"stream_options\":{\"include_usage\":false,\"x\":[1]},"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"},
        {KZ_API_CHAT, "{\"stream_options\":null,\"model\":\"pub\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                      "\"metadata\":{\"k\":\"v\"},"
                      "\"a\\u00e9\\tb\":{\"nested\":[1.5e300,-0.0,null,true]}}"},
        {KZ_API_COMPLETION, "{\"model\":\"pub\",\"prompt\":[\"a\",\"b\"],\"n\":1,\"seed\":-3}"},
        {KZ_API_EMBEDDINGS, "{\"model\":\"pub\",\"input\":\"hi\",\"encoding_format\":\"base64\",\"user\":\"u1\"}"},
        {KZ_API_EMBEDDINGS, "{\"input\":[\"a\",\"b\"],\"model\":\"pub\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kz_api_request r;
        struct kz_api_error e;
        const char *body = cases[i].body;
        kz_status drc = kz_api_request_decode(cases[i].kind, body, strlen(body), &r, &e);
        T_OK(drc == KZ_OK, "case %zu decodes (%s)", i, drc ? e.message : "");
        if (drc)
            continue;
        for (int stream = 0; stream < 2; stream++) {
            char *up = NULL;
            size_t len = 0;
            T_EQ_INT(kz_openai_build_request(&r, "up-\xc3\xa9", stream, &up, &len, NULL), KZ_OK);
            char *want = ref_build(&r, "up-\xc3\xa9", stream);
            T_OK(up && want && len == strlen(up) && strcmp(up, want) == 0, "case %zu stream %d: '%s' vs tree '%s'", i,
                 stream, up ? up : "(null)", want ? want : "(null)");
            kz_free(up);
            free(want);
        }
        /* without a model (the decoder requires one; the builder does not) */
        json_object_del(r.root, "model");
        char *up = NULL;
        size_t len = 0;
        T_EQ_INT(kz_openai_build_request(&r, "m2", 1, &up, &len, NULL), KZ_OK);
        char *want = ref_build(&r, "m2", 1);
        T_OK(up && want && strcmp(up, want) == 0, "case %zu without model: '%s' vs tree '%s'", i, up ? up : "(null)",
             want ? want : "(null)");
        kz_free(up);
        free(want);
        kz_api_request_free(&r);
    }
}

struct stop_log {
    char out[1024];
    int after, n;
};

static int stop_cb(void *ud, const struct kz_ev *ev)
{
    struct stop_log *l = ud;
    ev_cb(l->out, ev);
    return ++l->n >= l->after;
}

/* Whole answers (upstream_stream: client): the scanner and jansson give the
 * same events, the common shapes take the scanner, the odd ones fall back. */
static void openai_bodies(void)
{
    static const struct {
        int chat;
        const char *data;
        kz_status rc;
        const char *want;
        int fast;
    } cases[] = {
        /* what kyozon and mockllm send */
        {1, "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"m\","
            "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hi there\",\"refusal\":null},"
            "\"logprobs\":null,\"finish_reason\":\"length\"}],"
            "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}",
         KZ_OK, "T0:Hi there;F0:length;U:5/2;", 1},
        /* OpenAI's own: annotations, usage details, service tier */
        {1, "{\"id\":\"c\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{"
            "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ok\",\"refusal\":null,\"annotations\":[]},"
            "\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,"
            "\"total_tokens\":10,\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
            "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0}},"
            "\"service_tier\":\"default\",\"system_fingerprint\":\"fp_1\"}",
         KZ_OK, "T0:ok;F0:stop;U:9/1;", 1},
        /* no finish_reason: stop; no index: the position; empty content: no text */
        {1, "{\"choices\":[{\"message\":{\"content\":\"\"}},{\"message\":{\"content\":\"b\"}}]}", KZ_OK,
         "F0:stop;T1:b;F1:stop;", 1},
        {0, "{\"object\":\"text_completion\",\"choices\":[{\"text\":\"ab\",\"index\":0,\"logprobs\":null,"
            "\"finish_reason\":\"stop\"},{\"text\":\"cd\",\"index\":1,\"finish_reason\":null}]}",
         KZ_OK, "T0:ab;F0:stop;T1:cd;F1:stop;", 1},
        /* the chat content lives in the message, not in "text" */
        {1, "{\"choices\":[{\"index\":0,\"text\":\"no\",\"message\":null}]}", KZ_OK, "F0:stop;", 1},
        /* odd: an escape, a tool call, an unknown key, a duplicate, a non-empty annotation, a real */
        {1, "{\"choices\":[{\"message\":{\"content\":\"a\\nb\"}}]}", KZ_OK, "T0:a\nb;F0:stop;", 0},
        {1, "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[]},\"finish_reason\":\"tool_calls\"}]}",
         KZ_OK, "F0:tool_calls;", 0},
        {1, "{\"choices\":[],\"x_new\":1}", KZ_OK, "", 0},
        {1, "{\"choices\":[{\"message\":{\"content\":\"a\",\"content\":\"b\"}}]}", KZ_EPROTO, "", 0},
        {1, "{\"choices\":[{\"message\":{\"content\":\"a\",\"annotations\":[{\"type\":\"url\"}]}}]}", KZ_OK,
         "T0:a;F0:stop;", 0},
        {1, "{\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"prompt_tokens_details\":{\"a\":1,\"a\":2}}}",
         KZ_EPROTO, "", 0},
        {1, "{\"choices\":[],\"usage\":{\"prompt_tokens_details\":{\"cached_tokens\":0.5}}}", KZ_OK, "U:-1/-1;", 0},
        /* errors: choices missing, null or not an array; a bad index; content not a string */
        {1, "{\"usage\":{\"prompt_tokens\":1}}", KZ_EPROTO, "", 0},
        {1, "{\"choices\":null}", KZ_EPROTO, "", 0},
        {1, "{\"choices\":{}}", KZ_EPROTO, "", 0},
        /* (the scanner reads this one; its index sends it to jansson) */
        {1, "{\"choices\":[{\"index\":2000,\"message\":{\"content\":\"a\"}}]}", KZ_EPROTO, "", 1},
        {1, "{\"choices\":[{\"message\":{\"content\":5}}]}", KZ_EPROTO, "", 0},
        {1, "{\"choices\":[]} x", KZ_EPROTO, "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum kz_api_kind kind = cases[i].chat ? KZ_API_CHAT : KZ_API_COMPLETION;
        const char *d = cases[i].data;
        for (int no_fast = 0; no_fast < 2; no_fast++) {
            char out[1024] = "";
            struct kz_err err = {{0}};
            kz_status rc = kz_openai_decode_body_opt(kind, d, strlen(d), no_fast, ev_cb, out, &err);
            T_OK(rc == cases[i].rc && strcmp(out, cases[i].want) == 0, "body %zu (jansson only %d): rc %d events '%s' (%s)",
                 i, no_fast, rc, out, err.msg);
        }
        struct kz_scan_chunk sc;
        T_OK(kz_openai_scan_body(d, strlen(d), &sc) == cases[i].fast, "body %zu: scanner %s", i,
             cases[i].fast ? "takes it" : "declines");
    }
    /* a callback that says stop gets no more events, on either path */
    const char *two = "{\"choices\":[{\"message\":{\"content\":\"a\"}},{\"message\":{\"content\":\"b\"}}],"
                      "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}";
    for (int no_fast = 0; no_fast < 2; no_fast++)
        for (int after = 1; after <= 5; after++) {
            struct stop_log l = {{0}, after, 0};
            T_EQ_INT(kz_openai_decode_body_opt(KZ_API_CHAT, two, strlen(two), no_fast, stop_cb, &l, NULL), KZ_OK);
            T_OK(l.n == after, "jansson only %d, stop after %d: %d events (%s)", no_fast, after, l.n, l.out);
        }
}

/* ---- upstream calls against a local server ---------------------------------------- */

static struct kz_http_res *held[8];
static int n_held;

static void srv_handler(void *user, struct kz_http_req *req, struct kz_http_res *res)
{
    (void)user;
    struct kz_slice p = kz_http_req_path(req);
    if (kz_slice_eq(p, "/sse")) {
        kz_http_res_sse_start(res, 200);
        kz_http_res_write(res, "data: a\n\n", 9, NULL);
        kz_http_res_write(res, "data: b\n\n", 9, NULL);
        kz_http_res_write(res, "data: [DONE]\n\n", 14, NULL);
        kz_http_res_end(res);
    } else if (kz_slice_eq(p, "/hang") || kz_slice_eq(p, "/stall")) {
        if (kz_slice_eq(p, "/stall")) {
            kz_http_res_sse_start(res, 200);
            kz_http_res_write(res, "data: a\n\n", 9, NULL);
        }
        if (n_held < 8)
            held[n_held++] = res; /* answered never; the stop closes it */
    } else {
        size_t n;
        const char *b = kz_http_req_body(req, &n);
        kz_http_res_add_header(res, "X-Echo-Len", n > 0 ? "some" : "none");
        kz_http_res_send(res, 404, "text/plain", b, n);
    }
}

struct callres {
    int status, done;
    kz_status rc;
    char msg[256];
    char body[1024];
    size_t body_len;
    int stop_at_data;
    struct kz_up_call *call;
    char echo[16];
};

static int c_head(void *ud, const struct kz_up_head *h)
{
    struct callres *r = ud;
    r->status = h->status;
    const char *v;
    size_t n;
    if (kz_up_header(h, "x-echo-len", &v, &n))
        snprintf(r->echo, sizeof r->echo, "%.*s", (int)n, v);
    return 0;
}

static int c_data(void *ud, const char *p, size_t n)
{
    struct callres *r = ud;
    if (r->body_len + n < sizeof r->body) {
        memcpy(r->body + r->body_len, p, n);
        r->body_len += n;
    }
    if (r->stop_at_data == 2) {
        kz_up_cancel(r->call);
        r->done = 1;
        return 0;
    }
    return r->stop_at_data;
}

static void c_done(void *ud, kz_status rc, const char *msg)
{
    struct callres *r = ud;
    r->done = 1;
    r->rc = rc;
    snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "");
}

static const struct kz_up_cbs cbs = {c_head, c_data, c_done};

static double call(uv_loop_t *loop, struct kz_upstream *u, const char *url, const char *body, unsigned head_ms,
                   unsigned idle_ms, struct callres *r, int stop)
{
    memset(r, 0, sizeof *r);
    r->stop_at_data = stop;
    const char *hdrs[] = {"Content-Type: application/json"};
    struct kz_up_req q = {body ? "POST" : "GET", url, hdrs, 1, body, body ? strlen(body) : 0, 1000, head_ms,
                          idle_ms, 10000};
    struct kz_err err;
    double t0 = now_ms();
    if (kz_up_start(u, &q, &cbs, r, &r->call, &err) != KZ_OK) {
        T_OK(0, "start: %s", err.msg);
        return 0;
    }
    while (!r->done)
        uv_run(loop, UV_RUN_ONCE);
    return now_ms() - t0;
}

static void on_tick(uv_timer_t *t) { (void)t; }

/* A loop with an upstream client on it. The client's handles do not keep
 * a loop alive (a server owns that); here a ticking timer does, so uv_run
 * waits for I/O. */
static struct kz_upstream *client_loop(uv_loop_t *loop, uv_timer_t *keeper)
{
    uv_loop_init(loop);
    uv_timer_init(loop, keeper);
    uv_timer_start(keeper, on_tick, 10, 10);
    struct kz_upstream *u = NULL;
    struct kz_err err;
    T_EQ_INT(kz_upstream_new(loop, &u, &err), KZ_OK);
    return u;
}

static void upstream_calls(void)
{
    struct tsrv t;
    struct kz_http_config cfg;
    kz_http_config_default(&cfg);
    T_OK(tsrv_start(&t, &cfg, srv_handler, NULL) == 0, "server started");
    uv_loop_t loop;
    uv_timer_t keeper;
    struct kz_err err;
    struct kz_upstream *u = client_loop(&loop, &keeper);
    char url[128];
    struct callres r;

    snprintf(url, sizeof url, "http://127.0.0.1:%d/sse", t.port);
    for (int i = 0; i < 10; i++) {
        call(&loop, u, url, "{}", 2000, 2000, &r, 0);
        if (r.rc != KZ_OK || r.status != 200 || strcmp(r.body, "data: a\n\ndata: b\n\ndata: [DONE]\n\n") != 0)
            break;
    }
    T_OK(r.rc == KZ_OK && r.status == 200, "stream: rc %d status %d %s", r.rc, r.status, r.msg);
    T_EQ_STR(r.body, "data: a\n\ndata: b\n\ndata: [DONE]\n\n");
    struct kz_http_stats st;
    tsrv_stats(&t, &st);
    T_OK(st.accepted == 1, "10 calls over one kept-alive connection (%llu accepted)",
         (unsigned long long)st.accepted);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/other", t.port);
    call(&loop, u, url, "hello", 2000, 2000, &r, 0);
    T_OK(r.rc == KZ_OK && r.status == 404 && strcmp(r.body, "hello") == 0 && strcmp(r.echo, "some") == 0,
         "POST body and headers: %d %s %s", r.status, r.body, r.echo);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/hang", t.port);
    double ms = call(&loop, u, url, "{}", 300, 0, &r, 0);
    T_OK(r.rc == KZ_EIO && strstr(r.msg, "no response head within 300 ms") && ms >= 280 && ms < 1000,
         "head deadline: rc %d after %.0f ms: %s", r.rc, ms, r.msg);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/stall", t.port);
    ms = call(&loop, u, url, "{}", 1000, 300, &r, 0);
    T_OK(r.rc == KZ_EIO && r.status == 200 && strstr(r.msg, "stalled") && ms >= 280 && ms < 1000,
         "idle deadline: rc %d after %.0f ms: %s (%s)", r.rc, ms, r.msg, r.body);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/sse", t.port);
    call(&loop, u, url, "{}", 1000, 1000, &r, 1);
    T_OK(r.rc == KZ_EINVAL && strstr(r.msg, "stopped"), "stop from on_data: %d %s", r.rc, r.msg);
    call(&loop, u, url, "{}", 1000, 1000, &r, 2);
    T_OK(r.rc == KZ_OK && r.msg[0] == 0, "cancel inside on_data: no on_done after it");

    /* a port nobody listens on */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(a.sin_port));
    close(fd);
    ms = call(&loop, u, url, "{}", 1000, 1000, &r, 0);
    T_OK(r.rc == KZ_ENOTFOUND && ms < 500, "refused (not sent): %d in %.0f ms: %s", r.rc, ms, r.msg);

    /* cancel before anything comes back */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hang", t.port);
    memset(&r, 0, sizeof r);
    const char *hdrs[] = {"A: b"};
    struct kz_up_req q = {"POST", url, hdrs, 1, "{}", 2, 1000, 0, 0, 0};
    T_EQ_INT(kz_up_start(u, &q, &cbs, &r, &r.call, &err), KZ_OK);
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    T_EQ_INT((long)kz_upstream_active(u), 1);
    kz_up_cancel(r.call);
    T_EQ_INT((long)kz_upstream_active(u), 0);
    T_OK(!r.done, "no callback after a cancel");

    kz_upstream_free(u);
    uv_close((uv_handle_t *)&keeper, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
    tsrv_stop(&t, 0);
}

static void upstream_calls_curl(void)
{
    setenv("KZ_HTTP_CLIENT", "curl", 1);
    upstream_calls();
    unsetenv("KZ_HTTP_CLIENT");
}

/* ---- the plain client against a scripted raw server ------------------------------- */

#define RAW_CLOSE "" /* an answer that closes the connection instead */

struct raw_srv {
    int fd, port, accepted;
    pthread_t th;
    const char *const *script[4]; /* per connection, in accept order: answers, NULL-ended */
};

/* Reads one request (head and Content-Length body): 0, or -1 at the close. */
static int raw_read_request(int fd)
{
    char buf[8192];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        buf[n] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        const char *cl = strcasestr(buf, "content-length:");
        size_t want = (size_t)(end + 4 - buf) + (cl && cl < end ? (size_t)atoi(cl + 15) : 0);
        if (n >= want)
            return 0;
    }
}

static void *raw_main(void *arg)
{
    struct raw_srv *s = arg;
    for (int k = 0; k < 4 && s->script[k]; k++) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        s->accepted++;
        for (const char *const *a = s->script[k]; *a; a++) {
            if (raw_read_request(c) != 0)
                break;
            if ((*a)[0] == '\0')
                break; /* RAW_CLOSE: the request was read, no answer */
            if (write(c, *a, strlen(*a)) < 0)
                break;
        }
        close(c); /* everything sent was read: a plain FIN, which the client sees in its pool */
    }
    return NULL;
}

static void raw_start(struct raw_srv *s)
{
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    T_OK(bind(s->fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(s->fd, 8) == 0, "raw server listens");
    getsockname(s->fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->th, NULL, raw_main, s);
}

static void raw_stop(struct raw_srv *s)
{
    shutdown(s->fd, SHUT_RDWR); /* wakes an accept that waits for a connection that never comes */
    pthread_join(s->th, NULL);
    close(s->fd);
}

#define OK_ANSWER "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

static void plain_client(void)
{
    uv_loop_t loop;
    uv_timer_t keeper;
    struct kz_err err;
    struct kz_upstream *u = client_loop(&loop, &keeper);
    char url[128];
    struct callres r;

    /* the kept-alive connection dies with the second request on it: sent again on a new one */
    static const char *const keep_then_die[] = {OK_ANSWER, RAW_CLOSE, NULL}, *const one_ok[] = {OK_ANSWER, NULL};
    struct raw_srv s = {.script = {keep_then_die, one_ok}};
    raw_start(&s);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/a?b=c", s.port);
    call(&loop, u, url, "{}", 2000, 2000, &r, 0);
    T_OK(r.rc == KZ_OK && strcmp(r.body, "ok") == 0, "first call: %d %s", r.rc, r.msg);
    call(&loop, u, url, "{}", 2000, 2000, &r, 0);
    T_OK(r.rc == KZ_OK && strcmp(r.body, "ok") == 0, "sent again after the kept-alive connection died: %d %s", r.rc,
         r.msg);
    raw_stop(&s);
    T_EQ_INT(s.accepted, 2);

    /* only once: when the new connection dies too, the call fails */
    static const char *const die[] = {RAW_CLOSE, NULL};
    struct raw_srv s2 = {.script = {keep_then_die, die}};
    raw_start(&s2);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", s2.port);
    call(&loop, u, url, "{}", 2000, 2000, &r, 0);
    T_OK(r.rc == KZ_OK, "first call: %d %s", r.rc, r.msg);
    call(&loop, u, url, "{}", 2000, 2000, &r, 0);
    T_OK(r.rc == KZ_EIO && strstr(r.msg, "without answering"), "no second retry: %d %s", r.rc, r.msg);
    raw_stop(&s2);
    T_EQ_INT(s2.accepted, 2);

    /* "Connection: close", and bytes past an answer: the next call takes a new connection; a
     * chunked answer with a trailer keeps it */
    static const char *const closing[] = {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
                                          NULL},
                             *const extra[] = {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nyEXTRA", NULL},
                             *const chunked[] = {
                                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;e\r\nab\r\n0\r\nT: 1\r\n\r\n",
                                 OK_ANSWER, NULL};
    struct raw_srv s3 = {.script = {closing, extra, chunked}};
    raw_start(&s3);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", s3.port);
    call(&loop, u, url, NULL, 2000, 2000, &r, 0);
    T_OK(r.rc == KZ_OK && strcmp(r.body, "x") == 0, "Connection: close: %d %s", r.rc, r.msg);
    call(&loop, u, url, "{}", 2000, 2000, &r, 0);
    T_OK(r.rc == KZ_OK && strcmp(r.body, "y") == 0, "bytes past the answer: %d %s %s", r.rc, r.msg, r.body);
    call(&loop, u, url, "{}", 2000, 2000, &r, 0);
    T_OK(r.rc == KZ_OK && strcmp(r.body, "ab") == 0, "chunked: %d %s %s", r.rc, r.msg, r.body);
    call(&loop, u, url, "{}", 2000, 2000, &r, 0);
    T_OK(r.rc == KZ_OK && strcmp(r.body, "ok") == 0, "kept after a chunked answer: %d %s", r.rc, r.msg);
    raw_stop(&s3);
    T_EQ_INT(s3.accepted, 3);

    /* a header holding a line break is refused before anything is sent */
    const char *hdrs[] = {"X: a\r\nInjected: yes"};
    struct kz_up_req q = {"POST", url, hdrs, 1, "{}", 2, 1000, 0, 0, 0};
    struct kz_up_call *c = NULL;
    T_EQ_INT(kz_up_start(u, &q, &cbs, &r, &c, &err), KZ_EINVAL);
    T_OK(strstr(err.msg, "line break") != NULL, "message: %s", err.msg);
    T_EQ_INT((long)kz_upstream_active(u), 0);

    kz_upstream_free(u);
    uv_close((uv_handle_t *)&keeper, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    T_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    t_subtest("sse_splits", sse_splits);
    t_subtest("openai_chunks", openai_chunks);
    t_subtest("openai_bodies", openai_bodies);
    t_subtest("build_request", build_request);
    t_subtest("upstream_calls", upstream_calls);
    t_subtest("upstream_calls_curl", upstream_calls_curl);
    t_subtest("plain_client", plain_client);
    return t_done();
}
