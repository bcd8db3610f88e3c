/* SPDX-License-Identifier: MIT
 * Tenant, key and usage operations shared by the CLI and the admin API (see
 * manage.h).
 */
#include "tenancy/manage.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "router/config.h"

static json_t *fail(struct kz_mg_error *e, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    e->status = status;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return NULL;
}

/* A ledger error: 404 for absent things, 400 for bad arguments, 503 else. */
static json_t *fail_ledger(struct kz_mg_error *e, kz_status rc, const struct kz_err *err)
{
    int st = rc == KZ_ENOTFOUND ? 404 : rc == KZ_EINVAL ? 400 : 503;
    if (rc == KZ_EINVAL && strstr(err->msg, "taken"))
        st = 409;
    return fail(e, st, "%s", err->msg);
}

int kz_usd_parse(const char *s, int64_t *micro, struct kz_mg_error *e)
{
    const char *p = s ? s : "";
    int64_t whole = 0, frac = 0;
    int nd = 0, nf = 0;
    while (isdigit((unsigned char)*p) && nd < 10) {
        whole = whole * 10 + (*p++ - '0');
        nd++;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p) && nf < 6) {
            frac = frac * 10 + (*p++ - '0');
            nf++;
        }
    }
    if (*p || (nd == 0 && nf == 0) || whole > 1000000000) {
        fail(e, 400, "'%s' is not an amount in dollars (like 12.50, at most 6 decimals, at most 1000000000)",
             s ? s : "");
        return -1;
    }
    for (; nf < 6; nf++)
        frac *= 10;
    *micro = whole * 1000000 + frac;
    return 0;
}

static json_t *money(int64_t micro) { return json_real((double)micro / 1e6); }

static int put_money(json_t *o, const char *name, int64_t micro)
{
    char exact[64];
    snprintf(exact, sizeof exact, "%s_micro_usd", name);
    char usd[64];
    snprintf(usd, sizeof usd, "%s_usd", name);
    return json_object_set_new(o, usd, money(micro)) || json_object_set_new(o, exact, json_integer(micro));
}

static json_t *tenant_json(const struct kz_ledger_tenant *t)
{
    json_t *o = json_pack("{s:I, s:s, s:b, s:I, s:I}", "id", (json_int_t)t->id, "name", t->name, "prepaid",
                          t->prepaid, "rpm", (json_int_t)t->rpm, "tpm", (json_int_t)t->tpm);
    if (!o)
        return NULL;
    put_money(o, "balance", t->balance);
    put_money(o, "reserved", t->reserved);
    if (t->has_budget) {
        put_money(o, "budget", t->budget);
        json_object_set_new(o, "period", json_string(kz_ledger_period_name(t->period)));
    }
    put_money(o, "spent", t->spent);
    return o;
}

static json_t *key_json(const struct kz_keys_info *k, const char *tenant)
{
    json_t *o = json_pack("{s:I, s:s, s:s?, s:s, s:b, s:I, s:I, s:I}", "id", (json_int_t)k->id, "prefix", k->prefix,
                          "tenant", tenant, "privacy", kz_privacy_name(k->privacy), "admin", k->admin, "rpm",
                          (json_int_t)k->rpm, "tpm", (json_int_t)k->tpm, "created_ms", (json_int_t)k->created_ms);
    if (!o)
        return NULL;
    json_t *models = json_array();
    for (size_t i = 0; models && i < k->n_models; i++)
        json_array_append_new(models, json_string(k->models[i]));
    json_object_set_new(o, "models", models ? models : json_null());
    if (k->has_budget) {
        put_money(o, "budget", k->budget);
        json_object_set_new(o, "period", json_string(kz_ledger_period_name(k->period)));
    }
    put_money(o, "spent", k->spent);
    json_object_set_new(o, "revoked", json_boolean(k->revoked_ms != 0));
    return o;
}

/* The key as stored now, as JSON. */
static json_t *key_now(struct kz_ledger *l, int64_t id, const char *tenant, struct kz_mg_error *e)
{
    struct kz_err err = {{0}};
    struct kz_keys_info k;
    kz_status rc = kz_keys_get(l, id, &k, &err);
    if (rc)
        return fail_ledger(e, rc, &err);
    json_t *o = key_json(&k, tenant);
    kz_keys_info_free(&k);
    return o ? o : fail(e, 503, "out of memory");
}

static int find_tenant(struct kz_ledger *l, const char *name, struct kz_ledger_tenant *t, struct kz_mg_error *e)
{
    struct kz_err err = {{0}};
    kz_status rc = kz_ledger_tenant_find(l, name ? name : "", t, &err);
    if (rc == KZ_ENOTFOUND)
        fail(e, 404, "no tenant named '%s'", name ? name : "");
    else if (rc)
        fail_ledger(e, rc, &err);
    return rc ? -1 : 0;
}

json_t *kz_mg_tenant_create(struct kz_ledger *l, const char *name, const char *budget_usd, const char *period,
                            int prepaid, int64_t rpm, int64_t tpm, struct kz_mg_error *e)
{
    struct kz_ledger_tenant_spec s = {.name = name, .prepaid = prepaid, .rpm = rpm, .tpm = tpm};
    struct kz_err err = {{0}};
    if (budget_usd) {
        s.has_budget = 1;
        if (kz_usd_parse(budget_usd, &s.budget, e))
            return NULL;
    }
    s.period = budget_usd ? KZ_PERIOD_MONTH : KZ_PERIOD_TOTAL;
    if (period && kz_ledger_period_parse(period, &s.period, &err))
        return fail(e, 400, "%s", err.msg);
    int64_t id;
    kz_status rc = kz_ledger_tenant_create(l, &s, &id, &err);
    if (rc)
        return fail_ledger(e, rc, &err);
    struct kz_ledger_tenant t;
    rc = kz_ledger_tenant_get(l, id, &t, &err);
    return rc ? fail_ledger(e, rc, &err) : tenant_json(&t);
}

json_t *kz_mg_tenant_list(struct kz_ledger *l, struct kz_mg_error *e)
{
    struct kz_ledger_tenant *ts = NULL;
    size_t n = 0;
    struct kz_err err = {{0}};
    kz_status rc = kz_ledger_tenant_list(l, &ts, &n, &err);
    if (rc)
        return fail_ledger(e, rc, &err);
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, tenant_json(&ts[i]));
    kz_free(ts);
    return a ? a : fail(e, 503, "out of memory");
}

json_t *kz_mg_tenant_credit(struct kz_ledger *l, const char *name, const char *usd, struct kz_mg_error *e)
{
    struct kz_ledger_tenant t;
    int64_t amount;
    struct kz_err err = {{0}};
    int neg = usd && usd[0] == '-';
    if (kz_usd_parse(neg ? usd + 1 : usd, &amount, e) || find_tenant(l, name, &t, e))
        return NULL;
    if (amount == 0)
        return fail(e, 400, "a credit of 0 changes nothing");
    kz_status rc = kz_ledger_tenant_credit(l, t.id, neg ? -amount : amount, NULL, &err);
    if (!rc)
        rc = kz_ledger_tenant_get(l, t.id, &t, &err);
    return rc ? fail_ledger(e, rc, &err) : tenant_json(&t);
}

static int parse_privacy(const char *s, enum kz_privacy *out)
{
    static const char *const names[] = {"local", "private", "external"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum kz_privacy)i;
            return 0;
        }
    return -1;
}

json_t *kz_mg_key_create(struct kz_ledger *l, const struct kz_mg_key_spec *s, char secret[KZ_KEYS_SECRET_SIZE],
                         struct kz_mg_error *e)
{
    struct kz_ledger_tenant t;
    if (find_tenant(l, s->tenant, &t, e))
        return NULL;
    struct kz_keys_spec ks = {.tenant_id = t.id, .privacy = KZ_PRIVACY_EXTERNAL, .admin = s->admin,
                              .rpm = s->rpm, .tpm = s->tpm};
    struct kz_err err = {{0}};
    if (s->rpm < 0 || s->tpm < 0)
        return fail(e, 400, "rpm and tpm must be 0 (no limit) or more");
    if (s->budget_usd) {
        ks.has_budget = 1;
        if (kz_usd_parse(s->budget_usd, &ks.budget, e))
            return NULL;
    }
    ks.period = s->budget_usd ? KZ_PERIOD_MONTH : KZ_PERIOD_TOTAL;
    if (s->period && kz_ledger_period_parse(s->period, &ks.period, &err))
        return fail(e, 400, "%s", err.msg);
    if (s->privacy && parse_privacy(s->privacy, &ks.privacy))
        return fail(e, 400, "unknown privacy tier '%s' (expected local, private or external)", s->privacy);
    /* models: split a copy of the list at commas */
    char *copy = s->models ? kz_strdup(s->models) : NULL;
    const char *names[KZ_KEYS_MAX_MODELS];
    size_t n = 0;
    if (s->models && !copy)
        return fail(e, 503, "out of memory");
    for (char *tok = copy ? strtok(copy, ",") : NULL; tok; tok = strtok(NULL, ",")) {
        if (n == KZ_KEYS_MAX_MODELS) {
            kz_free(copy);
            return fail(e, 400, "at most %d models per key", KZ_KEYS_MAX_MODELS);
        }
        names[n++] = tok;
    }
    if (s->models && n == 0) {
        kz_free(copy);
        return fail(e, 400, "--models needs at least one model name");
    }
    ks.models = names;
    ks.n_models = n;
    int64_t id;
    kz_status rc = kz_keys_create(l, &ks, secret, &id, &err);
    kz_free(copy);
    return rc ? fail_ledger(e, rc, &err) : key_now(l, id, t.name, e);
}

json_t *kz_mg_key_list(struct kz_ledger *l, const char *tenant, struct kz_mg_error *e)
{
    struct kz_ledger_tenant *ts = NULL, one;
    size_t nt = 0;
    struct kz_err err = {{0}};
    kz_status rc;
    if (tenant) {
        if (find_tenant(l, tenant, &one, e))
            return NULL;
    } else if ((rc = kz_ledger_tenant_list(l, &ts, &nt, &err)) != KZ_OK) {
        return fail_ledger(e, rc, &err);
    }
    struct kz_keys_info *ks = NULL;
    size_t n = 0;
    rc = tenant ? kz_keys_list(l, one.id, &ks, &n, &err) : kz_keys_list_all(l, &ks, &n, &err);
    if (rc) {
        kz_free(ts);
        return fail_ledger(e, rc, &err);
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        const char *name = tenant ? one.name : NULL;
        for (size_t j = 0; !name && j < nt; j++)
            if (ts[j].id == ks[i].tenant_id)
                name = ts[j].name;
        json_array_append_new(a, key_json(&ks[i], name));
    }
    kz_keys_list_free(ks, n);
    kz_free(ts);
    return a ? a : fail(e, 503, "out of memory");
}

json_t *kz_mg_key_revoke(struct kz_ledger *l, const char *which, struct kz_mg_error *e)
{
    struct kz_err err = {{0}};
    int64_t id = 0;
    char *end = NULL;
    long long v = which && isdigit((unsigned char)which[0]) ? strtoll(which, &end, 10) : 0;
    if (end && !*end && v > 0) {
        id = v;
    } else {
        struct kz_keys_info *ks = NULL;
        size_t n = 0;
        kz_status rc = kz_keys_list_all(l, &ks, &n, &err);
        if (rc)
            return fail_ledger(e, rc, &err);
        size_t wl = which ? strlen(which) : 0;
        int hits = 0;
        for (size_t i = 0; wl >= 4 && i < n; i++)
            if (strncmp(ks[i].prefix, which, wl < sizeof ks[i].prefix ? wl : sizeof ks[i].prefix - 1) == 0 &&
                wl <= KZ_KEYS_PREFIX_LEN) {
                id = ks[i].id;
                hits++;
            }
        kz_keys_list_free(ks, n);
        if (hits > 1)
            return fail(e, 400, "'%s' matches %d keys; give the key's id", which, hits);
        if (hits == 0)
            return fail(e, 404, "no key with id or prefix '%s'", which ? which : "");
    }
    kz_status rc = kz_keys_revoke(l, id, &err);
    return rc ? fail_ledger(e, rc, &err) : key_now(l, id, NULL, e);
}

static json_t *row_json(const struct kz_ledger_usage_row *r, const char *group_name)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (group_name)
        json_object_set_new(o, group_name, json_string(r->group));
    if (group_name && strcmp(group_name, "key") == 0)
        json_object_set_new(o, "key_id", json_integer(r->key_id));
    json_object_set_new(o, "requests", json_integer(r->requests));
    json_object_set_new(o, "input_tokens", json_integer(r->input_tokens));
    json_object_set_new(o, "output_tokens", json_integer(r->output_tokens));
    put_money(o, "cost", r->cost);
    return o;
}

json_t *kz_mg_usage(struct kz_ledger *l, int64_t tenant_id, const char *tenant_name, const char *by,
                    struct kz_mg_error *e)
{
    struct kz_ledger_query q = {.by = KZ_GROUP_TOTAL};
    const char *gname = NULL;
    if (by && strcmp(by, "total") != 0) {
        if (strcmp(by, "model") == 0)
            q.by = KZ_GROUP_MODEL;
        else if (strcmp(by, "day") == 0)
            q.by = KZ_GROUP_DAY;
        else if (strcmp(by, "key") == 0)
            q.by = KZ_GROUP_KEY;
        else
            return fail(e, 400, "unknown grouping '%s' (expected model, day or key)", by);
        gname = by;
    }
    if (tenant_name && tenant_id <= 0) {
        struct kz_ledger_tenant t;
        if (find_tenant(l, tenant_name, &t, e))
            return NULL;
        tenant_id = t.id;
    }
    struct kz_ledger_usage_row *rows = NULL;
    size_t n = 0;
    struct kz_err err = {{0}};
    kz_status rc = tenant_id > 0 ? kz_ledger_usage(l, tenant_id, &q, &rows, &n, &err)
                                 : kz_ledger_usage_all_tenants(l, &q, &rows, &n, &err);
    if (rc)
        return fail_ledger(e, rc, &err);
    json_t *out;
    if (!gname) {
        struct kz_ledger_usage_row zero = {{0}, 0, 0, 0, 0, 0};
        out = row_json(n ? &rows[0] : &zero, NULL);
    } else {
        out = json_array();
        for (size_t i = 0; out && i < n; i++)
            json_array_append_new(out, row_json(&rows[i], gname));
    }
    kz_free(rows);
    return out ? out : fail(e, 503, "out of memory");
}

char *kz_mg_dump(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    char *out = s ? kz_strdup(s) : NULL;
    free(s);
    return out;
}
