/* SPDX-License-Identifier: MIT
 * The counters GET /_mock/stats reports: how many requests reached each
 * path and a copy of the last one, so a router test can assert what was
 * actually sent upstream (retries, headers, the rewritten body).
 */
#include <string.h>

#include "core/alloc.h"
#include "core/utf8.h"
#include "mock.h"

/* JSON strings must be UTF-8: a body that is not gets U+FFFD for bad bytes. */
static json_t *text(const char *s, size_t len)
{
    json_t *v = json_stringn(s, len);
    if (v)
        return v;
    size_t n = 0;
    char *clean = kz_utf8_sanitize(s, len, &n);
    v = clean ? json_stringn(clean, n) : NULL;
    kz_free(clean);
    return v ? v : json_string("");
}

void kz_mock_stats_record(struct kz_mock_server *srv, const struct kz_mock_req *req)
{
    srv->requests++;
    json_t *n = json_object_get(srv->by_path, req->path);
    json_object_set_new(srv->by_path, req->path, json_integer(n ? json_integer_value(n) + 1 : 1));
    json_t *headers = json_object();
    for (size_t i = 0; i < req->n_headers; i++) {
        const char *name = req->headers[i].name, *value = req->headers[i].value;
        json_t *old = json_object_get(headers, name);
        if (!old) {
            json_object_set_new(headers, name, text(value, strlen(value)));
            continue;
        }
        /* a repeated field reads as one comma-joined value (RFC 9110 5.3) */
        size_t len = json_string_length(old) + 2 + strlen(value);
        char *joined = kz_malloc(len + 1);
        if (joined) {
            memcpy(joined, json_string_value(old), json_string_length(old));
            memcpy(joined + json_string_length(old), ", ", 2);
            memcpy(joined + json_string_length(old) + 2, value, strlen(value) + 1);
            json_object_set_new(headers, name, text(joined, len));
        }
        kz_free(joined);
    }
    json_decref(srv->last);
    srv->last = json_pack("{s:s, s:o, s:o, s:o, s:o}", "method", req->method, "path", text(req->path, strlen(req->path)),
                          "query", text(req->query, strlen(req->query)), "headers", headers, "body",
                          text(req->body, req->body_len));
}

void kz_mock_stats_reset(struct kz_mock_server *srv)
{
    srv->requests = 0;
    json_object_clear(srv->by_path);
    json_decref(srv->last);
    srv->last = NULL;
}

json_t *kz_mock_stats_json(const struct kz_mock_server *srv)
{
    return json_pack("{s:I, s:O, s:I, s:O}", "requests", (json_int_t)srv->requests, "by_path", srv->by_path,
                     "in_flight", (json_int_t)srv->in_flight, "last", srv->last ? srv->last : json_null());
}
