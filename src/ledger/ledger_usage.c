/* SPDX-License-Identifier: MIT
 * Usage queries: the tenant-scoped entry points and the explicit admin one.
 * The backend's "every tenant" form is reachable only through
 * kz_ledger_usage_all_tenants, so a request handler holding a tenant id has
 * no call that forgets to filter by it.
 */
#include "ledger/ledger_int.h"

static kz_status check_query(struct kz_ledger *l, const struct kz_ledger_query *q,
                             struct kz_ledger_usage_row **rows, size_t *n, struct kz_err *err)
{
    if (!l || !q || !rows || !n)
        return kz_err_set(err, KZ_EINVAL, "usage: no ledger, query or output");
    *rows = NULL;
    *n = 0;
    if ((unsigned)q->by > KZ_GROUP_KEY)
        return kz_err_set(err, KZ_EINVAL, "usage: unknown grouping %d", (int)q->by);
    if (q->since_ms < 0 || q->until_ms < 0)
        return kz_err_set(err, KZ_EINVAL, "usage: negative time bound");
    return KZ_OK;
}

kz_status kz_ledger_usage(struct kz_ledger *l, int64_t tenant_id, const struct kz_ledger_query *q,
                          struct kz_ledger_usage_row **rows, size_t *n, struct kz_err *err)
{
    kz_status rc = check_query(l, q, rows, n, err);
    if (rc)
        return rc;
    if (tenant_id <= 0)
        return kz_err_set(err, KZ_EINVAL, "usage: a tenant id (> 0) is required");
    return l->ops->usage(l, tenant_id, q, rows, n, err);
}

kz_status kz_ledger_usage_all_tenants(struct kz_ledger *l, const struct kz_ledger_query *q,
                                      struct kz_ledger_usage_row **rows, size_t *n, struct kz_err *err)
{
    kz_status rc = check_query(l, q, rows, n, err);
    if (rc)
        return rc;
    return l->ops->usage(l, 0, q, rows, n, err);
}

kz_status kz_ledger_usage_get(struct kz_ledger *l, int64_t tenant_id, const char *request_id,
                              struct kz_ledger_usage *out, struct kz_err *err)
{
    if (!l || !out || tenant_id <= 0)
        return kz_err_set(err, KZ_EINVAL, "usage get: no ledger, no output or a tenant id <= 0");
    kz_status rc = kz_ledger_check_request_id(request_id, err);
    if (rc)
        return rc;
    return l->ops->usage_get(l, tenant_id, request_id, out, err);
}
