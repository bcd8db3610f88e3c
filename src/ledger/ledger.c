/* SPDX-License-Identifier: MIT
 * Opening and closing a ledger: options with their defaults, the choice of
 * backend by path, and the self-check.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

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
    kz_status rc;
    if (kz_ledger_is_postgres(path)) {
        rc = kz_ledger_pg_open(path, &o, out, err);
    } else {
        /* sqlite://PATH and sqlite:///ABSOLUTE name a file like a bare path */
        if (strncmp(path, "sqlite://", 9) == 0)
            path += 9;
        if (!path[0])
            return kz_err_set(err, KZ_EINVAL, "ledger: sqlite:// needs a file path");
        rc = kz_ledger_sqlite_open(path, &o, out, err);
    }
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

int kz_ledger_is_postgres(const char *path)
{
    return strncmp(path, "postgres://", 11) == 0 || strncmp(path, "postgresql://", 13) == 0;
}

void kz_ledger_redact(const char *path, char *buf, size_t size)
{
    snprintf(buf, size, "%s", path);
    if (!kz_ledger_is_postgres(buf))
        return;
    /* postgres://user:SECRET@host/db?password=SECRET: stars over both */
    char *auth = strstr(buf, "://") + 3;
    char *at = strchr(auth, '@'), *slash = strchr(auth, '/');
    if (at && (!slash || at < slash)) {
        char *colon = memchr(auth, ':', (size_t)(at - auth));
        if (colon)
            memset(colon + 1, '*', (size_t)(at - colon - 1));
    }
    for (char *pw = strstr(buf, "password="); pw; pw = strstr(pw + 1, "password="))
        for (char *v = pw + 9; *v && *v != '&'; v++)
            *v = '*';
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

void *kz_ledger_grow(void *v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return v;
    size_t ncap = *cap ? 2 * *cap : 16;
    void *nv = kz_realloc(v, ncap * size);
    if (nv)
        *cap = ncap;
    return nv;
}
