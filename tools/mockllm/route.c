/* SPDX-License-Identifier: MIT
 * One request in, one script out: the control API, or the dialect's normal
 * answer shaped by the mode in force (the global one, or the request's own
 * x-mock-mode header). The order matters and is documented in README.md:
 * kill_self and hang_headers act before anything is built; status:CODE
 * answers before the dialect checks the request; the other modes edit the
 * dialect's answer (which may be its own 4xx for a bad request).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "mock.h"

enum kz_mock_dialect kz_mock_dialect_of(const char *path)
{
    if (strncmp(path, "/openai/", 8) == 0)
        return KZ_MOCK_D_AZURE;
    if (strcmp(path, "/v1/messages") == 0)
        return KZ_MOCK_D_ANTHROPIC;
    if (strncmp(path, "/model/", 7) == 0)
        return KZ_MOCK_D_BEDROCK;
    return KZ_MOCK_D_OPENAI;
}

static struct kz_mock_script *normal_answer(const struct kz_mock_ctx *c, enum kz_mock_dialect d)
{
    switch (d) {
    case KZ_MOCK_D_AZURE: return kz_mock_azure(c);
    case KZ_MOCK_D_ANTHROPIC: return kz_mock_anthropic(c);
    case KZ_MOCK_D_BEDROCK: return kz_mock_bedrock(c);
    case KZ_MOCK_D_OPENAI: break;
    }
    return kz_mock_openai(c);
}

struct kz_mock_script *kz_mock_route(struct kz_mock_server *srv, const struct kz_mock_req *req, int *counted)
{
    srv->seq++;
    if (strncmp(req->path, "/_mock/", 7) == 0) {
        *counted = 0;
        return kz_mock_control(srv, req);
    }
    *counted = 1;
    kz_mock_stats_record(srv, req);

    struct kz_mock_settings st = srv->cur;
    enum kz_mock_dialect d = kz_mock_dialect_of(req->path);
    struct kz_mock_ctx c = {req, st.tokens, req->keep_alive, srv->seq, -1};
    const char *override = kz_mock_req_header(req, "x-mock-mode");
    if (override) {
        struct kz_err err = {{0}};
        if (kz_mock_mode_parse(override, &st.mode, &err) != KZ_OK)
            return kz_mock_error(&c, d, 400, err.msg);
    }

    enum kz_mock_mode_kind kind = st.mode.kind;
    /* Only complete, well-formed answers may keep the connection. */
    c.keep_alive = req->keep_alive && (kind == KZ_MOCK_OK || kind == KZ_MOCK_STATUS || kind == KZ_MOCK_SLOW);
    switch (kind) {
    case KZ_MOCK_KILL_SELF:
        raise(SIGKILL); /* a crash test wants the process gone mid-request, no cleanup */
        return NULL;
    case KZ_MOCK_HANG_HEADERS: {
        struct kz_mock_script *s = kz_mock_script_new();
        if (s)
            s->end = KZ_MOCK_END_HANG;
        return s;
    }
    case KZ_MOCK_GARBAGE:
        return kz_mock_garbage(st.mode.garbage, &c);
    case KZ_MOCK_STATUS: {
        c.retry_after = st.retry_after;
        char msg[96];
        snprintf(msg, sizeof msg, "mockllm: status %d on request (mode status:%d)", st.mode.status, st.mode.status);
        return kz_mock_error(&c, d, st.mode.status, msg);
    }
    default: break;
    }

    struct kz_mock_script *s = normal_answer(&c, d);
    if (!s)
        return NULL;
    switch (kind) {
    case KZ_MOCK_HANG_MID:
        kz_mock_cut_tokens(s, s->streamed ? st.after : 0);
        s->end = KZ_MOCK_END_HANG;
        break;
    case KZ_MOCK_CLOSE_MID:
        kz_mock_cut_tokens(s, s->streamed ? st.after : 0);
        s->end = KZ_MOCK_END_CLOSE;
        break;
    case KZ_MOCK_RESET_AFTER:
        kz_mock_cut_bytes(s, st.after);
        s->end = KZ_MOCK_END_RESET;
        break;
    case KZ_MOCK_SLOW:
        kz_mock_pace_tokens(s, st.cadence_ms);
        break;
    default: break;
    }
    return s;
}
