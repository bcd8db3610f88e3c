/* SPDX-License-Identifier: MIT
 * Remote providers over HTTP (see remote.h): OpenAI-compatible endpoints
 * and other kyozon nodes, Azure OpenAI, Anthropic Messages and Bedrock
 * Converse. One attempt is one upstream call; the answer is decoded by the
 * dialect's decoder into kz_ev events as bytes arrive.
 *
 * How an attempt ends, and what the router makes of it:
 *   - 200 and the stream's end marker ([DONE], message_stop, Bedrock's
 *     messageStop + metadata): success;
 *   - an HTTP error status: kz_attempt_from_status (Retry-After honoured);
 *   - no head (connect error, head timeout): a failure, retryable;
 *   - a stream that breaks, stalls past the idle timeout, ends without its
 *     marker, or carries bytes the decoder refuses: a failure, retryable
 *     as long as nothing reached the client (the caller knows that);
 *   - an error event inside the stream: mapped like the status it names.
 */
#include "router/remote.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "router/anthropic.h"
#include "router/bedrock.h"
#include "router/eventstream.h"
#include "router/openai_up.h"
#include "router/sigv4.h"
#include "router/sse.h"
#include "router/upstream_error.h"

#define MAX_ERROR_BODY (64u << 10)
#define MAX_WHOLE_BODY (32u << 20) /* non-streamed answers: embeddings of many long inputs */
#define MAX_EVENT (4u << 20)
#define MAX_HEADERS 8

enum dialect { D_OPENAI, D_ANTHROPIC, D_BEDROCK };
enum body_mode { BODY_WHOLE, BODY_SSE, BODY_EVS };

struct remote {
    struct kz_upstream *up;
};

struct kz_attempt {
    struct kz_provider *p;
    struct remote *rm;
    struct kz_up_call *call;
    struct kz_attempt_cbs cbs;
    void *ud;
    enum kz_api_kind kind;
    enum dialect dialect;
    char *url, *body;
    size_t body_len;
    char *hdr[MAX_HEADERS];
    size_t n_hdr;
    int status;
    long retry_after_ms;
    char amz_error[96];
    enum body_mode mode;
    struct kz_sse sse;
    struct kz_openai_dec od;
    struct kz_anthropic_dec ad;
    struct kz_bedrock_dec bd;
    struct kz_buf body_in; /* whole body, or event-stream bytes not decoded yet */
    int failed;
    struct kz_attempt_result res;
};

/* ---- building the request ------------------------------------------------------- */

/* "Name: value" */
static kz_status add_hdr(struct kz_attempt *a, const char *name, const char *v)
{
    if (a->n_hdr == MAX_HEADERS)
        return KZ_ELIMIT;
    size_t nl = strlen(name), vl = strlen(v);
    char *h = kz_malloc(nl + vl + 3);
    if (!h)
        return KZ_ENOMEM;
    memcpy(h, name, nl);
    memcpy(h + nl, ": ", 2);
    memcpy(h + nl + 2, v, vl + 1);
    a->hdr[a->n_hdr++] = h;
    return KZ_OK;
}

static char *join(const char *a, const char *b, const char *c, const char *d)
{
    const char *part[4] = {a, b, c, d};
    size_t len[4], n = 0;
    for (int i = 0; i < 4; i++)
        n += len[i] = strlen(part[i]);
    char *s = kz_malloc(n + 1);
    if (!s)
        return NULL;
    char *w = s;
    for (int i = 0; i < 4; w += len[i], i++)
        memcpy(w, part[i], len[i]);
    *w = '\0';
    return s;
}

static kz_status add_bearer(struct kz_attempt *a, const char *key)
{
    char *v = join("Bearer ", key, "", "");
    kz_status rc = v ? add_hdr(a, "Authorization", v) : KZ_ENOMEM;
    kz_free(v);
    return rc;
}

static const char *kind_path(enum kz_api_kind k)
{
    return k == KZ_API_CHAT ? "/chat/completions" : k == KZ_API_COMPLETION ? "/completions" : "/embeddings";
}

/* "host[:port]" of an http(s) URL, for the SigV4 host header. */
static void url_host(const char *url, char *out, size_t size)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    snprintf(out, size, "%.*s", (int)n, p);
}

static kz_status sign_bedrock(struct kz_attempt *a, const struct kz_cfg_provider *c, const char *path,
                              struct kz_err *err)
{
    char host[256], date[20], auth[1024];
    url_host(a->url, host, sizeof host);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
    struct kz_sigv4_header hs[4] = {{"host", host}, {"x-amz-date", date}, {"content-type", "application/json"}};
    size_t nh = 3;
    if (c->session_token)
        hs[nh++] = (struct kz_sigv4_header){"x-amz-security-token", c->session_token};
    struct kz_sigv4_req q = {.method = "POST", .path = path, .query = "", .headers = hs, .n_headers = nh,
                             .payload = a->body, .payload_len = a->body_len, .region = c->region,
                             .service = "bedrock", .access_key_id = c->access_key_id,
                             .secret_access_key = c->secret_access_key, .session_token = c->session_token,
                             .amz_date = date};
    kz_status rc = kz_sigv4_sign(&q, auth, sizeof auth, err);
    if (!rc)
        rc = add_hdr(a, "x-amz-date", date);
    if (!rc)
        rc = add_hdr(a, "Authorization", auth);
    if (!rc && c->session_token)
        rc = add_hdr(a, "x-amz-security-token", c->session_token);
    return rc;
}

static kz_status build(struct kz_attempt *a, const struct kz_api_request *r, const char *model, struct kz_err *err)
{
    const struct kz_cfg_provider *c = a->p->cfg;
    kz_status rc = KZ_OK;
    char *path = NULL;
    /* a stream shows a try alive from its first token; `upstream_stream: client` trades that for
     * the cheaper whole answer when the client does not stream */
    int stream = !c->upstream_stream_client || r->stream;
    switch (c->type) {
    case KZ_PROV_OPENAI:
    case KZ_PROV_KYOZON:
    case KZ_PROV_AZURE:
        a->dialect = D_OPENAI;
        rc = kz_openai_build_request(r, model, stream, &a->body, &a->body_len, err);
        if (c->type == KZ_PROV_AZURE) {
            /* the deployment is in the URL; the body's model is ignored there */
            char *p1 = join(c->base_url, "/openai/deployments/", model, kind_path(r->kind));
            a->url = p1 ? join(p1, "?api-version=", c->api_version, "") : NULL;
            kz_free(p1);
            if (!rc && c->api_key)
                rc = add_hdr(a, "api-key", c->api_key);
        } else {
            a->url = join(c->base_url, kind_path(r->kind), "", "");
            if (!rc && c->api_key)
                rc = add_bearer(a, c->api_key);
        }
        break;
    case KZ_PROV_ANTHROPIC:
        a->dialect = D_ANTHROPIC;
        rc = kz_anthropic_build_request(r, model, stream, 4096, &a->body, &a->body_len, err);
        a->url = join(c->base_url, "/messages", "", "");
        if (!rc)
            rc = add_hdr(a, "anthropic-version", "2023-06-01");
        if (!rc && c->api_key)
            rc = add_hdr(a, "x-api-key", c->api_key);
        break;
    case KZ_PROV_BEDROCK:
        a->dialect = D_BEDROCK;
        rc = kz_bedrock_build_request(r, &a->body, &a->body_len, err);
        path = kz_bedrock_path(model, stream);
        a->url = path ? join(c->base_url, path, "", "") : NULL;
        if (!rc && a->url) {
            if (c->api_key)
                rc = add_bearer(a, c->api_key);
            else
                rc = sign_bedrock(a, c, path, err);
        }
        break;
    case KZ_PROV_LOCAL:
        rc = kz_err_set(err, KZ_EINVAL, "not a remote provider");
        break;
    }
    kz_free(path);
    if (!rc && !a->url)
        rc = KZ_ENOMEM;
    if (!rc)
        rc = add_hdr(a, "Content-Type", "application/json");
    if (rc == KZ_ENOMEM)
        kz_err_set(err, KZ_ENOMEM, "out of memory");
    return rc;
}

/* ---- decoding ---------------------------------------------------------------------- */

static void fail_once(struct kz_attempt *a, const struct kz_attempt_result *res)
{
    if (!a->failed) {
        a->failed = 1;
        a->res = *res;
    }
}

static void fail_proto(struct kz_attempt *a, const char *what)
{
    struct kz_attempt_result res;
    kz_attempt_fail(&res, KZ_OUT_FAIL, 1, 502, "server_error", "upstream_malformed",
                    "provider '%s' sent a malformed answer: %s", a->p->cfg->name, what);
    fail_once(a, &res);
}

static int on_ev(void *ud, const struct kz_ev *ev)
{
    struct kz_attempt *a = ud;
    if (a->failed)
        return 1;
    if (ev->type == KZ_EV_ERROR) {
        struct kz_attempt_result res;
        kz_attempt_from_status(&res, ev->status ? ev->status : 502, -1, a->p->cfg->name,
                               ev->message ? ev->message : "error event in the stream");
        fail_once(a, &res);
        return 1;
    }
    return a->cbs.on_event(a->ud, ev);
}

static int on_sse(void *ud, const char *event, const char *data, size_t len)
{
    struct kz_attempt *a = ud;
    struct kz_err err = {{0}};
    kz_status rc;
    if (a->dialect == D_ANTHROPIC)
        rc = kz_anthropic_dec_event(&a->ad, event[0] ? event : NULL, data, len, on_ev, a, &err);
    else
        rc = kz_openai_dec_chunk(&a->od, a->kind == KZ_API_CHAT, data, len, on_ev, a, &err);
    if (rc)
        fail_proto(a, err.msg);
    return a->failed;
}

static void decode_evs(struct kz_attempt *a)
{
    size_t off = 0;
    while (!a->failed) {
        struct kz_evs_msg m;
        size_t used = 0;
        struct kz_err err = {{0}};
        if (kz_evs_decode((const uint8_t *)a->body_in.p + off, a->body_in.len - off, &m, &used, &err)) {
            fail_proto(a, err.msg);
            break;
        }
        if (!used)
            break;
        off += used;
        if (kz_bedrock_dec_message(&a->bd, &m, on_ev, a, &err))
            fail_proto(a, err.msg);
    }
    memmove(a->body_in.p, a->body_in.p + off, a->body_in.len - off);
    a->body_in.len -= off;
}

static int up_head(void *ud, const struct kz_up_head *h)
{
    struct kz_attempt *a = ud;
    a->status = h->status;
    const char *v;
    size_t n;
    if (kz_up_header(h, "retry-after-ms", &v, &n))
        a->retry_after_ms = kz_retry_after_ms(v, n, 1, (long)time(NULL));
    else if (kz_up_header(h, "retry-after", &v, &n))
        a->retry_after_ms = kz_retry_after_ms(v, n, 0, (long)time(NULL));
    if (kz_up_header(h, "x-amzn-errortype", &v, &n))
        snprintf(a->amz_error, sizeof a->amz_error, "%.*s", (int)(n < 90 ? n : 90), v);
    a->mode = BODY_WHOLE;
    if (h->status == 200 && kz_up_header(h, "content-type", &v, &n)) {
        if (n >= 17 && memmem(v, n, "text/event-stream", 17))
            a->mode = BODY_SSE;
        else if (n >= 31 && memmem(v, n, "application/vnd.amazon.eventstream", 31))
            a->mode = a->dialect == D_BEDROCK ? BODY_EVS : BODY_WHOLE;
    }
    return 0;
}

static int up_data(void *ud, const char *p, size_t n)
{
    struct kz_attempt *a = ud;
    if (a->failed)
        return 1;
    switch (a->mode) {
    case BODY_SSE: {
        struct kz_err err = {{0}};
        if (kz_sse_feed(&a->sse, p, n, on_sse, a, &err))
            fail_proto(a, err.msg);
        break;
    }
    case BODY_EVS:
        if (kz_buf_append(&a->body_in, p, n, MAX_EVENT + 16))
            fail_proto(a, "an event-stream message over 4 MiB");
        else
            decode_evs(a);
        break;
    case BODY_WHOLE:
        if (a->status != 200) {
            size_t have = a->body_in.len;
            if (have < MAX_ERROR_BODY)
                kz_buf_append(&a->body_in, p, n < MAX_ERROR_BODY - have ? n : MAX_ERROR_BODY - have, MAX_ERROR_BODY);
            break; /* the rest of an oversized error body is read and dropped */
        }
        if (kz_buf_append(&a->body_in, p, n, MAX_WHOLE_BODY))
            fail_proto(a, "a response body over 32 MiB");
        break;
    }
    return a->failed;
}

static void decode_whole(struct kz_attempt *a)
{
    const char *body = a->body_in.p ? a->body_in.p : "";
    struct kz_err err = {{0}};
    kz_status rc;
    if (a->dialect == D_ANTHROPIC)
        rc = kz_anthropic_decode_response(body, a->body_in.len, on_ev, a, &err);
    else if (a->dialect == D_BEDROCK)
        rc = kz_bedrock_decode_response(body, a->body_in.len, on_ev, a, &err);
    else
        rc = kz_openai_decode_body(a->kind, body, a->body_in.len, on_ev, a, &err);
    if (rc)
        fail_proto(a, err.msg);
}

static int stream_complete(const struct kz_attempt *a)
{
    switch (a->dialect) {
    case D_OPENAI:
        return a->od.done;
    case D_ANTHROPIC:
        return kz_anthropic_dec_done(&a->ad);
    case D_BEDROCK:
        return a->bd.finished; /* messageStop; the metadata event with usage may follow */
    }
    return 0;
}

static void attempt_free(struct kz_attempt *a)
{
    for (size_t i = 0; i < a->n_hdr; i++)
        kz_free(a->hdr[i]);
    kz_sse_free(&a->sse);
    kz_buf_free(&a->body_in);
    kz_free(a->url);
    kz_free(a->body);
    kz_free(a);
}

static void up_done(void *ud, kz_status rc, const char *msg)
{
    struct kz_attempt *a = ud;
    const char *name = a->p->cfg->name;
    struct kz_attempt_result res;
    memset(&res, 0, sizeof res);
    res.retry_after_ms = -1;
    int timeout = msg && (strstr(msg, "within") || strstr(msg, "stalled") || strstr(msg, "imed out"));
    if (a->failed) {
        res = a->res;
    } else if (rc) {
        if (a->status == 0) {
            kz_attempt_fail(&res, KZ_OUT_FAIL, 1, timeout ? 504 : 502, "server_error",
                            timeout ? "upstream_timeout" : "upstream_unreachable", "provider '%s': %s", name, msg);
            res.unsent = rc == KZ_ENOTFOUND;
        }
        else {
            kz_attempt_fail(&res, KZ_OUT_FAIL, 1, timeout ? 504 : 502, "server_error",
                            timeout ? "upstream_timeout" : "upstream_truncated",
                            "provider '%s' broke off its answer: %s", name, msg);
        }
    } else if (a->status != 200) {
        char text[300], type[64];
        kz_upstream_error_text(a->body_in.p ? a->body_in.p : "", a->body_in.len, text, sizeof text, type,
                               sizeof type);
        if (a->amz_error[0] && !text[0])
            snprintf(text, sizeof text, "%s", a->amz_error);
        kz_attempt_from_status(&res, a->status, a->retry_after_ms, name, text);
    } else {
        if (a->mode == BODY_WHOLE)
            decode_whole(a);
        else if (a->mode == BODY_SSE)
            kz_sse_feed(&a->sse, "\n\n", 2, on_sse, a, NULL); /* an unterminated last event */
        if (a->failed)
            res = a->res;
        else if (a->mode != BODY_WHOLE && !stream_complete(a))
            kz_attempt_fail(&res, KZ_OUT_FAIL, 1, 502, "server_error", "upstream_truncated",
                            "provider '%s' ended its stream without finishing the answer", name);
        else
            res.ok = 1, res.outcome = KZ_OUT_OK, res.status = 200;
    }
    struct kz_attempt_cbs cbs = a->cbs;
    void *cud = a->ud;
    attempt_free(a);
    cbs.on_end(cud, &res);
}

static const struct kz_up_cbs up_cbs = {up_head, up_data, up_done};

static kz_status remote_start(struct kz_provider *p, const struct kz_api_request *r, const char *model,
                              const struct kz_attempt_cbs *cbs, void *ud, struct kz_attempt **out,
                              struct kz_attempt_result *res)
{
    struct kz_err err = {{0}};
    struct kz_attempt *a = kz_calloc(1, sizeof *a);
    if (!a) {
        kz_attempt_fail(res, KZ_OUT_NEUTRAL, 0, 503, "server_error", NULL, "out of memory");
        return KZ_ENOMEM;
    }
    a->p = p;
    a->rm = p->impl;
    a->cbs = *cbs;
    a->ud = ud;
    a->kind = r->kind;
    a->retry_after_ms = -1;
    kz_sse_init(&a->sse, MAX_EVENT);
    kz_anthropic_dec_init(&a->ad);
    kz_bedrock_dec_init(&a->bd);
    kz_status rc = build(a, r, model, &err);
    if (!rc) {
        const struct kz_cfg_provider *c = p->cfg;
        struct kz_up_req q = {"POST", a->url, (const char *const *)a->hdr, a->n_hdr, a->body, a->body_len,
                              c->connect_timeout_ms, c->header_timeout_ms, c->idle_timeout_ms,
                              c->request_timeout_ms};
        rc = kz_up_start(a->rm->up, &q, &up_cbs, a, &a->call, &err);
    }
    if (rc) {
        kz_attempt_fail(res, rc == KZ_ENOMEM ? KZ_OUT_NEUTRAL : KZ_OUT_FAIL, rc != KZ_ENOMEM,
                        rc == KZ_ENOMEM ? 503 : 502, "server_error", NULL, "provider '%s': %s", p->cfg->name,
                        err.msg);
        attempt_free(a);
        return rc;
    }
    *out = a;
    return KZ_OK;
}

static void remote_cancel(struct kz_attempt *a)
{
    kz_up_cancel(a->call);
    attempt_free(a);
}

/* ---- active health checks ------------------------------------------------------------ */

struct check {
    void (*done)(void *ud, int ok);
    void *ud;
    int status;
    char *url;
    char *hdr;
};

static int check_head(void *ud, const struct kz_up_head *h)
{
    ((struct check *)ud)->status = h->status;
    return 0;
}

static int check_data(void *ud, const char *p, size_t n)
{
    (void)ud, (void)p, (void)n;
    return 0;
}

static void check_done(void *ud, kz_status rc, const char *msg)
{
    (void)msg;
    struct check *k = ud;
    k->done(k->ud, rc == KZ_OK && k->status >= 200 && k->status < 500);
    kz_free(k->url);
    kz_free(k->hdr);
    kz_free(k);
}

static const struct kz_up_cbs check_cbs = {check_head, check_data, check_done};

static void remote_check(struct kz_provider *p, void (*done)(void *ud, int ok), void *ud)
{
    const struct kz_cfg_provider *c = p->cfg;
    struct remote *rm = p->impl;
    struct check *k = kz_calloc(1, sizeof *k);
    if (!k) {
        done(ud, 0);
        return;
    }
    k->done = done;
    k->ud = ud;
    /* a cheap authenticated GET every dialect has */
    k->url = c->type == KZ_PROV_AZURE ? join(c->base_url, "/openai/models?api-version=", c->api_version, "")
                                      : join(c->base_url, "/models", "", "");
    if (c->api_key)
        k->hdr = join(c->type == KZ_PROV_AZURE ? "api-key: " : c->type == KZ_PROV_ANTHROPIC ? "x-api-key: "
                                                                                          : "Authorization: Bearer ",
                      c->api_key, "", "");
    const char *hdrs[1] = {k->hdr};
    struct kz_up_req q = {"GET", k->url, hdrs, k->hdr ? 1 : 0, NULL, 0, c->connect_timeout_ms, 2000, 2000, 5000};
    struct kz_up_call *call;
    if (!k->url || kz_up_start(rm->up, &q, &check_cbs, k, &call, NULL) != KZ_OK) {
        kz_free(k->url);
        kz_free(k->hdr);
        kz_free(k);
        done(ud, 0);
    }
}

static void remote_free(struct kz_provider *p)
{
    kz_free(p->impl);
    kz_free(p);
}

static const struct kz_provider_ops remote_ops = {remote_start, remote_cancel, remote_check, remote_free};

kz_status kz_remote_new(const struct kz_cfg_provider *cfg, struct kz_upstream *up, struct kz_provider **out,
                        struct kz_err *err)
{
    struct kz_provider *p = kz_calloc(1, sizeof *p);
    struct remote *rm = kz_calloc(1, sizeof *rm);
    if (!p || !rm) {
        kz_free(p);
        kz_free(rm);
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    }
    rm->up = up;
    p->cfg = cfg;
    p->ops = &remote_ops;
    p->impl = rm;
    *out = p;
    return KZ_OK;
}
