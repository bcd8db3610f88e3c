/* SPDX-License-Identifier: MIT
 * Opening and closing a ledger: options with their defaults, the choice of
 * backend by path, and the self-check.
 */
#include <string.h>

#include "ledger/ledger_int.h"

#define DEFAULT_BUSY_TIMEOUT_MS 5000
#define DEFAULT_RESERVATION_TTL_MS INT64_C(900000)
#define DEFAULT_READERS 4
#define MAX_READERS 64

kz_status kz_ledger_open(const char *path, const struct kz_ledger_opts *opts, struct kz_ledger **out,
                         struct kz_err *err)
{
    if (!path || !path[0] || !out)
        return kz_err_set(err, KZ_EINVAL, "ledger: no database path given");
    struct kz_ledger_opts o;
    memset(&o, 0, sizeof o);
    if (opts)
        o = *opts;
    if (o.busy_timeout_ms < 0 || o.reservation_ttl_ms < 0 || o.readers < 0 || o.readers > MAX_READERS)
        return kz_err_set(err, KZ_EINVAL, "ledger options: negative timeout or TTL, or readers not in 0..%d",
                          MAX_READERS);
    if (!o.busy_timeout_ms)
        o.busy_timeout_ms = DEFAULT_BUSY_TIMEOUT_MS;
    if (!o.reservation_ttl_ms)
        o.reservation_ttl_ms = DEFAULT_RESERVATION_TTL_MS;
    if (!o.readers)
        o.readers = DEFAULT_READERS;
    if (strncmp(path, "postgres://", 11) == 0 || strncmp(path, "postgresql://", 13) == 0)
        return kz_err_set(err, KZ_EUNSUPPORTED, "ledger: the PostgreSQL backend is not built yet (use a file path)");
    /* sqlite://PATH and sqlite:///ABSOLUTE name a file like a bare path */
    if (strncmp(path, "sqlite://", 9) == 0)
        path += 9;
    if (!path[0])
        return kz_err_set(err, KZ_EINVAL, "ledger: sqlite:// needs a file path");
    kz_status rc = kz_ledger_sqlite_open(path, &o, out, err);
    if (rc)
        return rc;
    int64_t released;
    rc = (*out)->ops->sweep(*out, kz_ledger_now(*out) - o.reservation_ttl_ms, &released, err);
    if (rc) {
        kz_err_prefix(err, "ledger: sweeping expired reservations");
        kz_ledger_close(*out);
        *out = NULL;
    }
    return rc;
}

void kz_ledger_close(struct kz_ledger *l)
{
    if (l)
        l->ops->close(l);
}

kz_status kz_ledger_check(struct kz_ledger *l, struct kz_err *err)
{
    if (!l)
        return kz_err_set(err, KZ_EINVAL, "check: no ledger");
    return l->ops->check(l, err);
}
