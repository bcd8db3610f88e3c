/* SPDX-License-Identifier: MIT
 * Managing tenants, keys and usage: the operations behind both the CLI
 * (`kyozon keys|tenants|usage`) and the admin HTTP API (/admin/...,
 * GET /v1/usage), so the two cannot drift apart. Each takes already-split
 * arguments, works on a ledger, and returns a JSON value (jansson, the
 * caller's to json_decref) or an error whose status says how HTTP answers it
 * (400 bad argument, 404 absent, 409 name taken, 503 store failure).
 *
 * Money: the API speaks US dollars as decimal text or JSON numbers
 * ("12.5"); the ledger keeps integer micro-dollars. Every amount in JSON is
 * given twice: `..._usd` (a number, for people) and `..._micro_usd` (an
 * integer, exact, for scripts).
 */
#ifndef KZ_MANAGE_H
#define KZ_MANAGE_H

#include <jansson.h>
#include <stdint.h>

#include "ledger/keys.h"
#include "ledger/ledger.h"

struct kz_mg_error {
    int status;
    char msg[KZ_ERR_MSG_SIZE];
};

/* "12", "12.5", "0.000001": at most 6 decimals, 0..1e9. */
int kz_usd_parse(const char *s, int64_t *micro, struct kz_mg_error *e);

struct kz_mg_key_spec {
    const char *tenant;
    const char *budget_usd;   /* NULL: none */
    const char *period;       /* NULL: month when a budget is given */
    int64_t rpm, tpm;
    const char *models;       /* comma-separated, NULL: all */
    const char *privacy;      /* NULL: external */
    int admin;
};

json_t *kz_mg_tenant_create(struct kz_ledger *l, const char *name, const char *budget_usd, const char *period,
                            int prepaid, int64_t rpm, int64_t tpm, struct kz_mg_error *e);
json_t *kz_mg_tenant_list(struct kz_ledger *l, struct kz_mg_error *e);
json_t *kz_mg_tenant_credit(struct kz_ledger *l, const char *name, const char *usd, struct kz_mg_error *e);

/* The new key's secret goes to `secret`; the JSON describes the key (no secret). */
json_t *kz_mg_key_create(struct kz_ledger *l, const struct kz_mg_key_spec *s, char secret[KZ_KEYS_SECRET_SIZE],
                         struct kz_mg_error *e);
/* tenant NULL: every tenant's keys. tenant_id > 0 restricts further (a
 * caller acting for one tenant). */
json_t *kz_mg_key_list(struct kz_ledger *l, const char *tenant, struct kz_mg_error *e);
/* `which` is the key's id or its display prefix. */
json_t *kz_mg_key_revoke(struct kz_ledger *l, const char *which, struct kz_mg_error *e);

/* Usage totals: by NULL or "total" gives one object, "model", "day" or
 * "key" an array of objects, each {"requests", "input_tokens",
 * "output_tokens", "cost_usd", "cost_micro_usd"} plus the group's name.
 * tenant_id > 0 is one tenant (the caller's own); tenant_name another way to
 * name one; neither: every tenant (admin). */
json_t *kz_mg_usage(struct kz_ledger *l, int64_t tenant_id, const char *tenant_name, const char *by,
                    struct kz_mg_error *e);

/* Dumps with money-friendly real precision; kz_malloc'd text. */
char *kz_mg_dump(const json_t *v);

#endif
