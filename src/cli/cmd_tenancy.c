/* SPDX-License-Identifier: MIT
 * kyozon keys | tenants | usage: the ledger from the command line, through
 * the same operations as the admin HTTP API (tenancy/manage.h). They open the
 * ledger file directly, so they work whether or not a server is running on it
 * (SQLite in WAL mode lets both in at once).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "core/alloc.h"
#include "router/config.h"
#include "tenancy/manage.h"

static const char keys_help[] =
    "Usage: kyozon keys create --tenant NAME [options]\n"
    "       kyozon keys list [--tenant NAME] [--json]\n"
    "       kyozon keys revoke ID|PREFIX\n"
    "\n"
    "API keys. 'create' prints the new key, and nothing else, on stdout; it is shown\n"
    "this once (the ledger keeps only its hash). A revoked key is refused from the\n"
    "next request on.\n"
    "\n"
    "Options for create:\n"
    "      --budget USD       spend limit of this key in its period\n"
    "      --period P         day, month (default with --budget) or total\n"
    "      --rpm N            requests per minute (default: no limit)\n"
    "      --tpm N            tokens per minute (default: no limit)\n"
    "      --models a,b       the public models it may use (default: all)\n"
    "      --privacy TIER     highest privacy tier it may reach: local, private, external (default)\n"
    "      --admin            may use /admin routes and see every tenant\n"
    "Common options:\n"
    "      --db PATH|URL      the ledger: a file, or postgres://... (or --config FILE with a 'ledger:' key)\n"
    "      --json             machine-readable output\n"
    "  -h, --help             show this help\n";

static const char tenants_help[] =
    "Usage: kyozon tenants create NAME [--budget USD] [--period day|month|total] [--prepaid]\n"
    "                                  [--rpm N] [--tpm N]\n"
    "       kyozon tenants list [--json]\n"
    "       kyozon tenants credit NAME USD\n"
    "\n"
    "Tenants own keys and pay for their usage. A --prepaid tenant can only spend its\n"
    "credit ('credit' adds to it; a negative amount corrects it); a --budget caps what\n"
    "it spends per period whatever its credit. --rpm and --tpm limit requests and\n"
    "tokens per minute over all of the tenant's keys together.\n"
    "\n"
    "Options:\n"
    "      --db PATH|URL      the ledger: a file, or postgres://... (or --config FILE with a 'ledger:' key)\n"
    "      --json             machine-readable output\n"
    "  -h, --help             show this help\n";

static const char usage_help[] =
    "Usage: kyozon usage [--tenant NAME] [--by model|day|key] [--json]\n"
    "\n"
    "Requests, tokens and cost from the ledger, for one tenant or all of them.\n"
    "--json prints {\"requests\": N, \"input_tokens\": N, \"output_tokens\": N,\n"
    "\"cost_usd\": X, ...}, or with --by an array of such objects, one per group.\n"
    "\n"
    "Options:\n"
    "      --db PATH|URL      the ledger: a file, or postgres://... (or --config FILE with a 'ledger:' key)\n"
    "  -h, --help             show this help\n";

struct opts {
    const char *cmd;
    const char *db, *config, *tenant, *budget, *period, *models, *privacy, *by;
    long rpm, tpm;
    int admin, prepaid, json;
    const char *pos[3];
    int n_pos;
};

/* Parses the options every one of these commands shares: -1 to go on, or
 * the exit status (kz_args). */
static int parse(struct opts *o, int argc, char **argv, const char *help)
{
    struct kz_args_pos pos = {o->pos, 3, 0};
    const struct kz_opt opts[] = {
        KZ_ARG_TEXT("--db", &o->db),
        KZ_ARG_TEXT("--config", &o->config),
        KZ_ARG_TEXT("--tenant", &o->tenant),
        KZ_ARG_TEXT("--budget", &o->budget),
        KZ_ARG_TEXT("--period", &o->period),
        KZ_ARG_TEXT("--models", &o->models),
        KZ_ARG_TEXT("--privacy", &o->privacy),
        KZ_ARG_TEXT("--by", &o->by),
        KZ_ARG_INT("--rpm", &o->rpm, 0, 1000000000L),
        KZ_ARG_INT("--tpm", &o->tpm, 0, 1000000000L),
        KZ_ARG_FLAG("--admin", &o->admin),
        KZ_ARG_FLAG("--prepaid", &o->prepaid),
        KZ_ARG_FLAG("--json", &o->json),
    };
    int rc = KZ_ARGS(o->cmd, help, opts, argc, argv, &pos);
    o->n_pos = pos.n;
    return rc;
}

static struct kz_ledger *open_ledger(const struct opts *o)
{
    struct kz_err err = {{0}};
    struct kz_config *cfg = NULL;
    const char *db = o->db;
    if (!db && o->config) {
        if (kz_config_load(o->config, &cfg, &err) != KZ_OK) {
            fprintf(stderr, "kyozon %s: %s\n", o->cmd, err.msg);
            return NULL;
        }
        db = cfg->ledger;
        if (!db) {
            fprintf(stderr, "kyozon %s: %s has no 'ledger:' key\n", o->cmd, o->config);
            kz_config_free(cfg);
            return NULL;
        }
    }
    if (!db) {
        fprintf(stderr, "kyozon %s: which ledger? give --db PATH (or --config FILE with a 'ledger:' key)\n", o->cmd);
        return NULL;
    }
    struct kz_ledger *l = NULL;
    if (kz_ledger_open(db, NULL, &l, &err) != KZ_OK) { /* name the ledger once, never its password */
        char shown[1024];
        kz_ledger_redact(db, shown, sizeof shown);
        int named = strstr(err.msg, shown) != NULL;
        fprintf(stderr, "kyozon %s: %s%s%s\n", o->cmd, named ? "" : shown, named ? "" : ": ", err.msg);
    }
    kz_config_free(cfg);
    return l;
}

static int print_json(json_t *v)
{
    char *s = kz_mg_dump(v);
    if (!s)
        return 1;
    puts(s);
    kz_free(s);
    return 0;
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : "";
}

static double jnum(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static void print_tenants(json_t *a)
{
    printf("%-6s %-24s %-8s %14s %14s %14s %s\n", "ID", "NAME", "PREPAID", "BALANCE_USD", "SPENT_USD", "BUDGET_USD",
           "PERIOD");
    size_t i;
    json_t *t;
    json_array_foreach(a, i, t) {
        json_t *b = json_object_get(t, "budget_usd");
        char budget[32] = "-";
        if (b)
            snprintf(budget, sizeof budget, "%.6f", json_number_value(b));
        printf("%-6.0f %-24s %-8s %14.6f %14.6f %14s %s\n", jnum(t, "id"), jstr(t, "name"),
               json_is_true(json_object_get(t, "prepaid")) ? "yes" : "no", jnum(t, "balance_usd"),
               jnum(t, "spent_usd"), budget, b ? jstr(t, "period") : "-");
    }
}

static void print_keys(json_t *a)
{
    printf("%-6s %-14s %-20s %-6s %-9s %8s %10s %12s %12s %s\n", "ID", "PREFIX", "TENANT", "ADMIN", "PRIVACY", "RPM",
           "TPM", "SPENT_USD", "BUDGET_USD", "STATE");
    size_t i;
    json_t *k;
    json_array_foreach(a, i, k) {
        json_t *b = json_object_get(k, "budget_usd");
        char budget[32] = "-";
        if (b)
            snprintf(budget, sizeof budget, "%.6f", json_number_value(b));
        printf("%-6.0f %-14s %-20s %-6s %-9s %8.0f %10.0f %12.6f %12s %s\n", jnum(k, "id"), jstr(k, "prefix"),
               jstr(k, "tenant"), json_is_true(json_object_get(k, "admin")) ? "yes" : "no", jstr(k, "privacy"),
               jnum(k, "rpm"), jnum(k, "tpm"), jnum(k, "spent_usd"), budget,
               json_is_true(json_object_get(k, "revoked")) ? "revoked" : "active");
    }
}

static void print_usage_row(json_t *r, const char *group)
{
    const char *g = group ? jstr(r, group) : "total";
    printf("%-24s %10.0f %14.0f %14.0f %14.6f\n", g[0] ? g : "(none)", jnum(r, "requests"), jnum(r, "input_tokens"),
           jnum(r, "output_tokens"), jnum(r, "cost_usd"));
}

/* Runs one operation's result: prints it, or the error. */
static int finish(const struct opts *o, json_t *v, const struct kz_mg_error *e, void (*text)(json_t *))
{
    if (!v) {
        fprintf(stderr, "kyozon %s: %s\n", o->cmd, e->msg);
        return 1;
    }
    int rc = 0;
    if (o->json || !text)
        rc = print_json(v);
    else
        text(v);
    json_decref(v);
    return rc;
}

static void print_one_tenant(json_t *t)
{
    json_t *a = json_array();
    json_array_append(a, t);
    print_tenants(a);
    json_decref(a);
}

static void print_one_key(json_t *k)
{
    json_t *a = json_array();
    json_array_append(a, k);
    print_keys(a);
    json_decref(a);
}

int kz_cmd_keys(int argc, char **argv)
{
    struct opts o = {.cmd = "keys"};
    int r = parse(&o, argc, argv, keys_help);
    if (r >= 0)
        return r;
    const char *verb = o.n_pos ? o.pos[0] : NULL;
    if (!verb || (strcmp(verb, "create") && strcmp(verb, "list") && strcmp(verb, "revoke"))) {
        fprintf(stderr, "kyozon keys: say create, list or revoke (see kyozon keys --help)\n");
        return 2;
    }
    if (!strcmp(verb, "create") && !o.tenant) {
        fprintf(stderr, "kyozon keys create: --tenant NAME is required\n");
        return 2;
    }
    if (!strcmp(verb, "revoke") && o.n_pos != 2) {
        fprintf(stderr, "kyozon keys revoke: give the key's id or prefix (see kyozon keys list)\n");
        return 2;
    }
    struct kz_ledger *l = open_ledger(&o);
    if (!l)
        return 1;
    struct kz_mg_error e = {0, ""};
    int rc;
    if (!strcmp(verb, "create")) {
        struct kz_mg_key_spec s = {o.tenant, o.budget, o.period, o.rpm, o.tpm, o.models, o.privacy, o.admin};
        char secret[KZ_KEYS_SECRET_SIZE];
        json_t *v = kz_mg_key_create(l, &s, secret, &e);
        if (v && o.json)
            json_object_set_new(v, "key", json_string(secret));
        else if (v)
            puts(secret);
        memset(secret, 0, sizeof secret);
        rc = v && !o.json ? (json_decref(v), 0) : finish(&o, v, &e, NULL);
    } else if (!strcmp(verb, "list")) {
        rc = finish(&o, kz_mg_key_list(l, o.tenant, &e), &e, print_keys);
    } else {
        rc = finish(&o, kz_mg_key_revoke(l, o.pos[1], &e), &e, print_one_key);
    }
    kz_ledger_close(l);
    return rc;
}

int kz_cmd_tenants(int argc, char **argv)
{
    struct opts o = {.cmd = "tenants"};
    int r = parse(&o, argc, argv, tenants_help);
    if (r >= 0)
        return r;
    const char *verb = o.n_pos ? o.pos[0] : NULL;
    int create = verb && !strcmp(verb, "create"), list = verb && !strcmp(verb, "list"),
        credit = verb && !strcmp(verb, "credit");
    if (!create && !list && !credit) {
        fprintf(stderr, "kyozon tenants: say create, list or credit (see kyozon tenants --help)\n");
        return 2;
    }
    if ((create && o.n_pos != 2) || (credit && o.n_pos != 3) || (list && o.n_pos != 1)) {
        fprintf(stderr, "kyozon tenants %s: %s\n", verb,
                create ? "give the new tenant's NAME" : credit ? "give NAME and USD" : "takes no arguments");
        return 2;
    }
    struct kz_ledger *l = open_ledger(&o);
    if (!l)
        return 1;
    struct kz_mg_error e = {0, ""};
    int rc;
    if (create)
        rc = finish(&o, kz_mg_tenant_create(l, o.pos[1], o.budget, o.period, o.prepaid, o.rpm, o.tpm, &e), &e,
                    print_one_tenant);
    else if (list)
        rc = finish(&o, kz_mg_tenant_list(l, &e), &e, print_tenants);
    else
        rc = finish(&o, kz_mg_tenant_credit(l, o.pos[1], o.pos[2], &e), &e, print_one_tenant);
    kz_ledger_close(l);
    return rc;
}

int kz_cmd_usage(int argc, char **argv)
{
    struct opts o = {.cmd = "usage"};
    int r = parse(&o, argc, argv, usage_help);
    if (r >= 0)
        return r;
    if (o.n_pos) {
        fprintf(stderr, "kyozon usage: unexpected argument '%s' (see kyozon usage --help)\n", o.pos[0]);
        return 2;
    }
    struct kz_ledger *l = open_ledger(&o);
    if (!l)
        return 1;
    struct kz_mg_error e = {0, ""};
    json_t *v = kz_mg_usage(l, 0, o.tenant, o.by, &e);
    kz_ledger_close(l);
    if (!v || o.json)
        return finish(&o, v, &e, NULL);
    const char *group = o.by && strcmp(o.by, "total") ? o.by : NULL;
    printf("%-24s %10s %14s %14s %14s\n", group ? group : "", "REQUESTS", "INPUT_TOKENS", "OUTPUT_TOKENS",
           "COST_USD");
    if (json_is_array(v)) {
        size_t i;
        json_t *row;
        json_array_foreach(v, i, row) print_usage_row(row, group);
    } else {
        print_usage_row(v, NULL);
    }
    json_decref(v);
    return 0;
}
