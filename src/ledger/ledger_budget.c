/* SPDX-License-Identifier: MIT
 * Reservations and settlement: argument checks, the admission rule every
 * backend applies inside its reserving transaction, and the entry points.
 */
#include <inttypes.h>
#include <string.h>

#include "ledger/ledger_int.h"

kz_status kz_ledger_add(int64_t a, int64_t b, int64_t *out, const char *what, struct kz_err *err)
{
    if (__builtin_add_overflow(a, b, out))
        return kz_err_set(err, KZ_ELIMIT, "%s: amount out of range", what);
    return KZ_OK;
}

kz_status kz_ledger_check_money(int64_t v, const char *what, struct kz_err *err)
{
    if (v < 0 || v > KZ_LEDGER_MONEY_MAX)
        return kz_err_set(err, KZ_EINVAL, "%s: %" PRId64 " micro-dollars is out of range (0..%" PRId64 ")", what, v,
                          KZ_LEDGER_MONEY_MAX);
    return KZ_OK;
}

kz_status kz_ledger_check_request_id(const char *id, struct kz_err *err)
{
    if (!id || !id[0])
        return kz_err_set(err, KZ_EINVAL, "request id: must not be empty");
    if (strnlen(id, KZ_LEDGER_ID_MAX) >= KZ_LEDGER_ID_MAX)
        return kz_err_set(err, KZ_EINVAL, "request id: longer than %d bytes", KZ_LEDGER_ID_MAX - 1);
    return KZ_OK;
}

/* One limit: used + reserved + max_cost <= cap, with overflow counted as
 * "does not fit". */
static int fits(int64_t used, int64_t reserved, int64_t max_cost, int64_t cap)
{
    int64_t need;
    if (__builtin_add_overflow(used, reserved, &need) || __builtin_add_overflow(need, max_cost, &need))
        return 0;
    return need <= cap;
}

kz_status kz_ledger_admit(const struct kz_ledger_hold_state *s, int64_t max_cost, enum kz_ledger_deny *deny,
                          struct kz_err *err)
{
    if (s->has_key_budget && !fits(s->key_spent, s->key_reserved, max_cost, s->key_budget)) {
        *deny = KZ_DENY_KEY_BUDGET;
        return kz_err_set(err, KZ_ELIMIT,
                          "budget exhausted: the key's budget is %" PRId64 " micro-dollars, %" PRId64
                          " spent and %" PRId64 " reserved; this request may cost %" PRId64,
                          s->key_budget, s->key_spent, s->key_reserved, max_cost);
    }
    if (s->has_tenant_budget && !fits(s->tenant_spent, s->tenant_reserved, max_cost, s->tenant_budget)) {
        *deny = KZ_DENY_TENANT_BUDGET;
        return kz_err_set(err, KZ_ELIMIT,
                          "budget exhausted: the tenant's budget is %" PRId64 " micro-dollars, %" PRId64
                          " spent and %" PRId64 " reserved; this request may cost %" PRId64,
                          s->tenant_budget, s->tenant_spent, s->tenant_reserved, max_cost);
    }
    /* Prepaid: the balance already has settled costs taken off, so only
     * the open reservations stand between it and this request. */
    if (s->prepaid && !fits(0, s->tenant_reserved, max_cost, s->balance)) {
        *deny = KZ_DENY_CREDIT;
        return kz_err_set(err, KZ_ELIMIT,
                          "insufficient credit: balance %" PRId64 " micro-dollars, %" PRId64
                          " reserved; this request may cost %" PRId64,
                          s->balance, s->tenant_reserved, max_cost);
    }
    *deny = KZ_DENY_NONE;
    return KZ_OK;
}

static kz_status check_text(const char *field, const char *s, size_t size, int required, struct kz_err *err)
{
    size_t n = strnlen(s, size);
    if (n == size)
        return kz_err_set(err, KZ_EINVAL, "usage.%s: longer than %zu bytes or not terminated", field, size - 1);
    if (required && n == 0)
        return kz_err_set(err, KZ_EINVAL, "usage.%s: must not be empty", field);
    return KZ_OK;
}

kz_status kz_ledger_usage_validate(const struct kz_ledger_usage *u, struct kz_err *err)
{
    if (!u)
        return kz_err_set(err, KZ_EINVAL, "usage: no record");
    kz_status rc;
    if ((rc = check_text("request_id", u->request_id, sizeof u->request_id, 1, err)) ||
        (rc = check_text("model", u->model, sizeof u->model, 1, err)) ||
        (rc = check_text("provider", u->provider, sizeof u->provider, 0, err)) ||
        (rc = check_text("deployment", u->deployment, sizeof u->deployment, 0, err)))
        return rc;
    if (u->tenant_id <= 0)
        return kz_err_set(err, KZ_EINVAL, "usage.tenant_id: must be a tenant id (> 0)");
    if (u->key_id < 0)
        return kz_err_set(err, KZ_EINVAL, "usage.key_id: must be a key id or 0");
    if (u->input_tokens < 0 || u->output_tokens < 0)
        return kz_err_set(err, KZ_EINVAL, "usage tokens: must not be negative");
    if ((rc = kz_ledger_check_money(u->cost, "usage.cost", err)))
        return rc;
    if (u->status < 0 || u->status > 999)
        return kz_err_set(err, KZ_EINVAL, "usage.status: %d is not an HTTP status", u->status);
    if (u->latency_ms < 0 || u->ttft_ms < -1)
        return kz_err_set(err, KZ_EINVAL, "usage latency: must not be negative (ttft_ms -1: none)");
    if (u->started_ms < 0 || u->finished_ms <= 0)
        return kz_err_set(err, KZ_EINVAL, "usage timestamps: finished_ms must be set (> 0), started_ms >= 0");
    return KZ_OK;
}

kz_status kz_ledger_reserve(struct kz_ledger *l, int64_t key_id, int64_t tenant_id, int64_t max_cost,
                            const char *request_id, int64_t *reservation, enum kz_ledger_deny *deny,
                            struct kz_err *err)
{
    enum kz_ledger_deny scratch;
    if (!deny)
        deny = &scratch;
    *deny = KZ_DENY_NONE;
    if (!l || !reservation)
        return kz_err_set(err, KZ_EINVAL, "reserve: no ledger or no place for the reservation id");
    if (tenant_id <= 0 || key_id < 0)
        return kz_err_set(err, KZ_EINVAL, "reserve: tenant id must be > 0 and key id >= 0");
    kz_status rc;
    if ((rc = kz_ledger_check_money(max_cost, "reserve: max cost", err)) ||
        (rc = kz_ledger_check_request_id(request_id, err)))
        return rc;
    return l->ops->reserve(l, key_id, tenant_id, max_cost, request_id, kz_ledger_now(l), reservation, deny, err);
}

kz_status kz_ledger_release(struct kz_ledger *l, int64_t reservation, struct kz_err *err)
{
    if (!l || reservation <= 0)
        return kz_err_set(err, KZ_EINVAL, "release: no ledger or no reservation id");
    return l->ops->release(l, reservation, err);
}

kz_status kz_ledger_sweep(struct kz_ledger *l, int64_t *released, struct kz_err *err)
{
    int64_t scratch;
    if (!l)
        return kz_err_set(err, KZ_EINVAL, "sweep: no ledger");
    return l->ops->sweep(l, kz_ledger_now(l) - l->opts.reservation_ttl_ms, released ? released : &scratch, err);
}

kz_status kz_ledger_reservations(struct kz_ledger *l, int64_t *count, int64_t *amount, struct kz_err *err)
{
    int64_t c, a;
    if (!l)
        return kz_err_set(err, KZ_EINVAL, "reservations: no ledger");
    return l->ops->reservations(l, count ? count : &c, amount ? amount : &a, err);
}

kz_status kz_ledger_settle(struct kz_ledger *l, int64_t reservation, const struct kz_ledger_usage *u,
                           struct kz_ledger_usage *stored, int *duplicate, struct kz_err *err)
{
    if (!l || reservation < 0)
        return kz_err_set(err, KZ_EINVAL, "settle: no ledger or a negative reservation id");
    kz_status rc = kz_ledger_usage_validate(u, err);
    if (rc)
        return rc;
    struct kz_ledger_settle_item it;
    memset(&it, 0, sizeof it);
    it.reservation = reservation;
    it.u = u;
    l->ops->settle(l, &it, 1, err);
    if (it.rc) {
        if (err)
            *err = it.err;
        return it.rc;
    }
    if (stored)
        *stored = it.stored;
    if (duplicate)
        *duplicate = it.duplicate;
    return KZ_OK;
}
