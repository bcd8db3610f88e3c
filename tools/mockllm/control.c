/* SPDX-License-Identifier: MIT
 * The control API under /_mock/ (always answered normally, whatever the
 * mode, and never counted):
 *   POST /_mock/mode   {"mode","tokens","cadence_ms","retry_after","after"}
 *                      every field optional; one left out takes its
 *                      command-line value, so each call fully says what the
 *                      next requests get and tests do not leak into each other
 *   GET  /_mock/modes  every mode, one per line (garbage variants expanded)
 *   GET  /_mock/stats  the counters (stats.c)
 *   POST /_mock/reset  zero the counters; the mode stays
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "mock.h"

/* An error object naming the problem (the control API's own, plain shape). */
static struct kz_mock_script *problem_reply(int status, const char *msg, int keep_alive)
{
    return kz_mock_respond_json(status, NULL,
                                json_pack("{s:{s:s, s:s}}", "error", "message", msg, "type", "invalid_request_error"),
                                keep_alive);
}

/* Reads an optional non-negative integer field into *out. 0 or -1 (bad). */
static int opt_uint(json_t *o, const char *key, long long max, long long *out)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return -1;
    *out = json_integer_value(v);
    return 0;
}

static struct kz_mock_script *set_mode(struct kz_mock_server *srv, const struct kz_mock_req *req)
{
    json_error_t je;
    json_t *o = json_loadb(req->body, req->body_len, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return problem_reply(400, "the body must be a JSON object such as {\"mode\":\"status:429\",\"retry_after\":2}",
                             req->keep_alive);
    }
    struct kz_mock_settings st = srv->start;
    struct kz_err err = {{0}};
    json_t *mode = json_object_get(o, "mode");
    long long tokens = st.tokens, cadence = st.cadence_ms, retry = st.retry_after, after = (long long)st.after;
    const char *problem = NULL;
    if (mode && (!json_is_string(mode) || kz_mock_mode_parse(json_string_value(mode), &st.mode, &err) != KZ_OK))
        problem = err.msg[0] ? err.msg : "'mode' must be a string";
    else if (opt_uint(o, "tokens", 100000, &tokens) || opt_uint(o, "cadence_ms", 600000, &cadence) ||
             opt_uint(o, "retry_after", 86400, &retry) || opt_uint(o, "after", 1LL << 40, &after))
        problem = "tokens, cadence_ms, retry_after and after must be non-negative integers in range";
    json_decref(o);
    if (problem)
        return problem_reply(400, problem, req->keep_alive);
    st.tokens = (int)tokens;
    st.cadence_ms = (unsigned)cadence;
    st.retry_after = (long)retry;
    st.after = (unsigned long)after;
    srv->cur = st;
    char name[64];
    json_t *v = json_pack("{s:s, s:i, s:I, s:I, s:I}", "mode", kz_mock_mode_name(&st.mode, name, sizeof name), "tokens",
                          st.tokens, "cadence_ms", (json_int_t)st.cadence_ms, "retry_after",
                          (json_int_t)st.retry_after, "after", (json_int_t)st.after);
    return kz_mock_respond_json(200, NULL, v, req->keep_alive);
}

struct kz_mock_script *kz_mock_control(struct kz_mock_server *srv, const struct kz_mock_req *req)
{
    const char *p = req->path + strlen("/_mock/");
    int get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;
    if (strcmp(p, "mode") == 0 && post)
        return set_mode(srv, req);
    if (strcmp(p, "modes") == 0 && get) {
        char *list = kz_mock_mode_list();
        struct kz_mock_script *s =
            list ? kz_mock_respond(200, "text/plain; charset=utf-8", NULL, list, strlen(list), req->keep_alive) : NULL;
        kz_free(list);
        return s;
    }
    if (strcmp(p, "stats") == 0 && get)
        return kz_mock_respond_json(200, NULL, kz_mock_stats_json(srv), req->keep_alive);
    if (strcmp(p, "reset") == 0 && post) {
        kz_mock_stats_reset(srv);
        return kz_mock_respond_json(200, NULL, json_pack("{s:b}", "reset", 1), req->keep_alive);
    }
    return problem_reply(404, "no such control route", req->keep_alive);
}
