/* SPDX-License-Identifier: MIT
 * The ledger over HTTP: /admin/... for admin keys, GET /v1/usage for any key
 * (its own tenant only). The operations are tenancy/manage.c's, the same the
 * CLI runs; they touch the store, so they run on a libuv worker thread and
 * the answer is sent back on the loop.
 *
 * Routes (JSON bodies; amounts in dollars, as numbers or decimal strings):
 *   GET  /admin/tenants
 *   POST /admin/tenants                {"name", "budget_usd"?, "period"?, "prepaid"?, "rpm"?, "tpm"?}
 *   POST /admin/tenants/NAME/credit    {"amount_usd"}
 *   GET  /admin/keys[?tenant=NAME]
 *   POST /admin/keys                   {"tenant", "budget_usd"?, "period"?, "rpm"?, "tpm"?,
 *                                       "models"?: [...], "privacy"?, "admin"?}
 *                                      -> 201 with "key": the secret, shown this once
 *   POST /admin/keys/ID/revoke         (or DELETE /admin/keys/ID)
 *   GET  /admin/usage[?tenant=NAME][&by=model|day|key]
 *   GET  /v1/usage[?by=model|day|key]  the caller's tenant
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/gateway.h"
#include "core/alloc.h"
#include "tenancy/manage.h"

enum op { OP_TENANTS, OP_TENANT_NEW, OP_CREDIT, OP_KEYS, OP_KEY_NEW, OP_REVOKE, OP_USAGE, OP_MY_USAGE };

struct job {
    uv_work_t w;
    struct kz_gateway *gw;
    struct kz_http_res *res; /* NULL once the client left */
    const char *route;
    uint64_t t0;
    enum op op;
    char arg[256];           /* tenant name or key id from the path */
    char tenant[128], by[16];
    int64_t tenant_id;       /* OP_MY_USAGE */
    json_t *body;
    json_t *out;
    struct kz_mg_error e;
    char secret[KZ_KEYS_SECRET_SIZE];
    int status;
};

static double since_s(uint64_t t0) { return (double)(uv_hrtime() - t0) * 1e-9; }

static void reply(struct kz_gateway *gw, struct kz_http_res *res, const char *route, uint64_t t0, int status,
                  const char *type, const char *code, const char *msg, char *body)
{
    if (body) {
        kz_http_res_send(res, status, "application/json", body, strlen(body));
        kz_free(body);
    } else {
        if (status == 503)
            kz_http_res_add_header(res, "Retry-After", "1");
        kz_http_res_send_error(res, status, type, code, msg);
    }
    kz_metrics_request(gw->metrics, route, status, since_s(t0));
}

/* One query parameter (no percent-decoding beyond what names and numbers need). */
static int query_get(struct kz_slice q, const char *name, char *out, size_t size)
{
    size_t nl = strlen(name);
    const char *p = q.p, *end = q.p + q.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t vl = (size_t)(stop - p) - nl - 1;
            if (vl >= size)
                return -1;
            memcpy(out, p + nl + 1, vl);
            out[vl] = '\0';
            return 1;
        }
        p = stop + 1;
    }
    return 0;
}

static const char *str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An amount as decimal text: strings as given, numbers with 6 decimals. */
static const char *amount(json_t *o, const char *k, char *buf, size_t size)
{
    json_t *v = json_object_get(o, k);
    if (json_is_number(v)) {
        snprintf(buf, size, "%.6f", json_number_value(v));
        return buf;
    }
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void work(uv_work_t *w)
{
    struct job *j = w->data;
    struct kz_ledger *l = kz_tenancy_ledger(j->gw->tenancy);
    char b1[64];
    /* read your writes: the records of answers already given are committed
     * behind them; wait for those before reading or changing anything */
    kz_tenancy_flush(j->gw->tenancy);
    j->status = 200;
    switch (j->op) {
    case OP_TENANTS:
        j->out = kz_mg_tenant_list(l, &j->e);
        break;
    case OP_TENANT_NEW: {
        json_t *pp = json_object_get(j->body, "prepaid");
        json_t *rpm = json_object_get(j->body, "rpm"), *tpm = json_object_get(j->body, "tpm");
        j->out = kz_mg_tenant_create(l, str(j->body, "name"), amount(j->body, "budget_usd", b1, sizeof b1),
                                     str(j->body, "period"), json_is_true(pp),
                                     json_is_integer(rpm) ? json_integer_value(rpm) : 0,
                                     json_is_integer(tpm) ? json_integer_value(tpm) : 0, &j->e);
        j->status = 201;
        break;
    }
    case OP_CREDIT:
        j->out = kz_mg_tenant_credit(l, j->arg, amount(j->body, "amount_usd", b1, sizeof b1), &j->e);
        break;
    case OP_KEYS:
        j->out = kz_mg_key_list(l, j->tenant[0] ? j->tenant : NULL, &j->e);
        break;
    case OP_KEY_NEW: {
        char models[4096] = "";
        json_t *m = json_object_get(j->body, "models");
        size_t n = 0;
        if (json_is_array(m)) {
            size_t i;
            json_t *v;
            json_array_foreach(m, i, v) {
                if (json_is_string(v))
                    n += (size_t)snprintf(models + n, n < sizeof models ? sizeof models - n : 0, "%s%s",
                                          n ? "," : "", json_string_value(v));
            }
        } else if (json_is_string(m)) {
            snprintf(models, sizeof models, "%s", json_string_value(m));
        }
        json_t *rpm = json_object_get(j->body, "rpm"), *tpm = json_object_get(j->body, "tpm");
        struct kz_mg_key_spec s = {
            .tenant = str(j->body, "tenant"), .budget_usd = amount(j->body, "budget_usd", b1, sizeof b1),
            .period = str(j->body, "period"), .rpm = json_is_integer(rpm) ? json_integer_value(rpm) : 0,
            .tpm = json_is_integer(tpm) ? json_integer_value(tpm) : 0, .models = models[0] ? models : NULL,
            .privacy = str(j->body, "privacy"), .admin = json_is_true(json_object_get(j->body, "admin"))};
        if (n >= sizeof models) {
            j->e.status = 400;
            snprintf(j->e.msg, sizeof j->e.msg, "the models list is too long");
            break;
        }
        j->out = kz_mg_key_create(l, &s, j->secret, &j->e);
        if (j->out)
            json_object_set_new(j->out, "key", json_string(j->secret));
        memset(j->secret, 0, sizeof j->secret);
        j->status = 201;
        break;
    }
    case OP_REVOKE:
        j->out = kz_mg_key_revoke(l, j->arg, &j->e);
        break;
    case OP_USAGE:
        j->out = kz_mg_usage(l, 0, j->tenant[0] ? j->tenant : NULL, j->by[0] ? j->by : NULL, &j->e);
        break;
    case OP_MY_USAGE:
        j->out = kz_mg_usage(l, j->tenant_id, NULL, j->by[0] ? j->by : NULL, &j->e);
        break;
    }
}

static void on_abort(struct kz_http_res *res, void *arg)
{
    (void)res;
    struct job *j = arg;
    j->res = NULL;
}

static void done(uv_work_t *w, int status)
{
    (void)status;
    struct job *j = w->data;
    if (j->res) {
        kz_http_res_on_abort(j->res, NULL, NULL);
        if (j->out)
            reply(j->gw, j->res, j->route, j->t0, j->status, NULL, NULL, NULL, kz_mg_dump(j->out));
        else
            reply(j->gw, j->res, j->route, j->t0, j->e.status ? j->e.status : 500, NULL,
                  j->e.status == 404 ? "not_found" : NULL, j->e.msg, NULL);
    }
    json_decref(j->out);
    json_decref(j->body);
    kz_free(j);
}

static void run(struct kz_gateway *gw, struct kz_http_res *res, struct job *j)
{
    j->w.data = j;
    j->gw = gw;
    j->res = res;
    kz_http_res_on_abort(res, on_abort, j);
    if (uv_queue_work(gw->loop, &j->w, work, done) != 0) {
        kz_http_res_on_abort(res, NULL, NULL);
        reply(gw, res, j->route, j->t0, 503, NULL, NULL, "cannot queue the request", NULL);
        json_decref(j->body);
        kz_free(j);
    }
}

static struct job *new_job(const char *route, uint64_t t0)
{
    struct job *j = kz_calloc(1, sizeof *j);
    if (j) {
        j->route = route;
        j->t0 = t0;
    }
    return j;
}

static int no_ledger(struct kz_gateway *gw, struct kz_http_res *res, const char *route, uint64_t t0)
{
    if (gw->tenancy)
        return 0;
    reply(gw, res, route, t0, 404, NULL, "no_ledger", "this server has no ledger (start it with --db PATH)", NULL);
    return 1;
}

void kz_usage_handle(struct kz_gateway *gw, const struct kz_principal *p, struct kz_http_req *req,
                     struct kz_http_res *res, uint64_t t0)
{
    const char *route = "/v1/usage";
    if (no_ledger(gw, res, route, t0))
        return;
    struct job *j = new_job(route, t0);
    if (!j) {
        reply(gw, res, route, t0, 503, NULL, NULL, "out of memory", NULL);
        return;
    }
    if (query_get(kz_http_req_query(req), "by", j->by, sizeof j->by) < 0) {
        kz_free(j);
        reply(gw, res, route, t0, 400, NULL, NULL, "by must be model, day or key", NULL);
        return;
    }
    /* open mode: the only caller is this machine's operator: every tenant */
    j->op = p->open ? OP_USAGE : OP_MY_USAGE;
    j->tenant_id = p->open ? 0 : p->key.tenant_id;
    run(gw, res, j);
}

void kz_admin_handle(struct kz_gateway *gw, const struct kz_principal *p, struct kz_http_req *req,
                     struct kz_http_res *res, uint64_t t0)
{
    const char *route = "/admin";
    if (no_ledger(gw, res, route, t0))
        return;
    (void)p; /* admin or open: the route table's rule, checked before this is called */
    struct kz_slice m = kz_http_req_method(req), path = kz_http_req_path(req);
    int get = kz_slice_eq(m, "GET"), post = kz_slice_eq(m, "POST"), del = kz_slice_eq(m, "DELETE");
    struct job *j = new_job(route, t0);
    if (!j) {
        reply(gw, res, route, t0, 503, NULL, NULL, "out of memory", NULL);
        return;
    }
    char tail[300];
    snprintf(tail, sizeof tail, "%.*s", (int)(path.len < 299 ? path.len : 299), path.p);
    const char *rest = tail + 6; /* after "/admin" */
    int ok = 1;
    if (strcmp(rest, "/tenants") == 0 && (get || post)) {
        j->op = get ? OP_TENANTS : OP_TENANT_NEW;
    } else if (strncmp(rest, "/tenants/", 9) == 0 && post && strlen(rest) > 16 &&
               strcmp(rest + strlen(rest) - 7, "/credit") == 0) {
        j->op = OP_CREDIT;
        snprintf(j->arg, sizeof j->arg, "%.*s", (int)(strlen(rest) - 16), rest + 9);
    } else if (strcmp(rest, "/keys") == 0 && (get || post)) {
        j->op = get ? OP_KEYS : OP_KEY_NEW;
        ok = query_get(kz_http_req_query(req), "tenant", j->tenant, sizeof j->tenant) >= 0;
    } else if (strncmp(rest, "/keys/", 6) == 0 && ((post && strlen(rest) > 13 &&
                                                    strcmp(rest + strlen(rest) - 7, "/revoke") == 0) ||
                                                   (del && !strchr(rest + 6, '/')))) {
        j->op = OP_REVOKE;
        snprintf(j->arg, sizeof j->arg, "%.*s", (int)(strlen(rest) - 6 - (post ? 7 : 0)), rest + 6);
    } else if (strcmp(rest, "/usage") == 0 && get) {
        j->op = OP_USAGE;
        ok = query_get(kz_http_req_query(req), "tenant", j->tenant, sizeof j->tenant) >= 0 &&
             query_get(kz_http_req_query(req), "by", j->by, sizeof j->by) >= 0;
    } else {
        kz_free(j);
        reply(gw, res, route, t0, 404, NULL, "unknown_url", "no such admin route (see docs/API.md)", NULL);
        return;
    }
    if (ok && (j->op == OP_TENANT_NEW || j->op == OP_CREDIT || j->op == OP_KEY_NEW)) {
        size_t len;
        const char *body = kz_http_req_body(req, &len);
        json_error_t je;
        j->body = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(j->body)) {
            json_decref(j->body);
            kz_free(j);
            reply(gw, res, route, t0, 400, NULL, NULL, "the body must be a JSON object", NULL);
            return;
        }
    }
    if (!ok) {
        json_decref(j->body);
        kz_free(j);
        reply(gw, res, route, t0, 400, NULL, NULL, "a query parameter is too long", NULL);
        return;
    }
    run(gw, res, j);
}
