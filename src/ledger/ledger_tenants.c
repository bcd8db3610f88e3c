/* SPDX-License-Identifier: MIT
 * Tenants: name rules and the entry points (the backend stores them).
 */
#include <string.h>

#include "ledger/ledger_int.h"

/* Names appear in CLI arguments, URLs and logs: a conservative alphabet
 * keeps them unambiguous there without quoting. */
static kz_status check_name(const char *name, struct kz_err *err)
{
    if (!name || !name[0])
        return kz_err_set(err, KZ_EINVAL, "tenant name: must not be empty");
    size_t n = strnlen(name, KZ_LEDGER_TENANT_MAX);
    if (n >= KZ_LEDGER_TENANT_MAX)
        return kz_err_set(err, KZ_EINVAL, "tenant name: longer than %d bytes", KZ_LEDGER_TENANT_MAX - 1);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                 c == '_' || c == '-' || c == '@';
        if (!ok)
            return kz_err_set(err, KZ_EINVAL, "tenant name '%s': only letters, digits and . _ - @ are allowed",
                              name);
    }
    return KZ_OK;
}

kz_status kz_ledger_tenant_create(struct kz_ledger *l, const struct kz_ledger_tenant_spec *spec, int64_t *id,
                                  struct kz_err *err)
{
    int64_t scratch;
    if (!l || !spec)
        return kz_err_set(err, KZ_EINVAL, "tenant create: no ledger or no tenant");
    kz_status rc = check_name(spec->name, err);
    if (rc)
        return rc;
    if (spec->has_budget && (rc = kz_ledger_check_money(spec->budget, "tenant budget", err)))
        return rc;
    if ((unsigned)spec->period > KZ_PERIOD_MONTH)
        return kz_err_set(err, KZ_EINVAL, "tenant budget period: unknown value %d", (int)spec->period);
    if (spec->rpm < 0 || spec->tpm < 0)
        return kz_err_set(err, KZ_EINVAL, "tenant rpm and tpm must be 0 (no limit) or more");
    rc = l->ops->tenant_create(l, spec, kz_ledger_now(l), id ? id : &scratch, err);
    kz_ledger_bump(l);
    return rc;
}

kz_status kz_ledger_tenant_get(struct kz_ledger *l, int64_t id, struct kz_ledger_tenant *out, struct kz_err *err)
{
    if (!l || !out || id <= 0)
        return kz_err_set(err, KZ_EINVAL, "tenant get: no ledger, no output or a tenant id <= 0");
    return l->ops->tenant_get(l, id, NULL, kz_ledger_now(l), out, err);
}

kz_status kz_ledger_tenant_find(struct kz_ledger *l, const char *name, struct kz_ledger_tenant *out,
                                struct kz_err *err)
{
    if (!l || !out)
        return kz_err_set(err, KZ_EINVAL, "tenant find: no ledger or no output");
    kz_status rc = check_name(name, err);
    if (rc)
        return rc;
    return l->ops->tenant_get(l, 0, name, kz_ledger_now(l), out, err);
}

kz_status kz_ledger_tenant_list(struct kz_ledger *l, struct kz_ledger_tenant **out, size_t *n, struct kz_err *err)
{
    if (!l || !out || !n)
        return kz_err_set(err, KZ_EINVAL, "tenant list: no ledger or no output");
    *out = NULL;
    *n = 0;
    return l->ops->tenant_list(l, kz_ledger_now(l), out, n, err);
}

kz_status kz_ledger_tenant_credit(struct kz_ledger *l, int64_t id, int64_t amount, int64_t *balance,
                                  struct kz_err *err)
{
    int64_t scratch;
    if (!l || id <= 0)
        return kz_err_set(err, KZ_EINVAL, "tenant credit: no ledger or a tenant id <= 0");
    if (amount == 0 || amount < -KZ_LEDGER_MONEY_MAX || amount > KZ_LEDGER_MONEY_MAX)
        return kz_err_set(err, KZ_EINVAL, "tenant credit: amount must be nonzero and within +-%lld micro-dollars",
                          (long long)KZ_LEDGER_MONEY_MAX);
    kz_status rc = l->ops->tenant_credit(l, id, amount, balance ? balance : &scratch, err);
    kz_ledger_bump(l);
    return rc;
}

kz_status kz_ledger_tenant_balance(struct kz_ledger *l, int64_t id, int64_t *balance, struct kz_err *err)
{
    struct kz_ledger_tenant t;
    if (!balance)
        return kz_err_set(err, KZ_EINVAL, "tenant balance: no output");
    kz_status rc = kz_ledger_tenant_get(l, id, &t, err);
    if (!rc)
        *balance = t.balance;
    return rc;
}
