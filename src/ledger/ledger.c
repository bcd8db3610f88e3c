/* SPDX-License-Identifier: MIT
 * Opening and closing a ledger: options with their defaults, the choice of
 * backend by path, and the self-check.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/alloc.h"

#include "ledger/ledger_int.h"

#define DEFAULT_BUSY_TIMEOUT_MS 5000
#define DEFAULT_RESERVATION_TTL_MS INT64_C(900000)
#define DEFAULT_READERS 4
#define MAX_READERS 64

/* PATH-kzepoch: 8 bytes, shared by every process using the ledger on this
 * machine through a MAP_SHARED mapping, so a bump is one atomic add and a
 * read one load. NULL when it cannot be made (the server's key cache then
 * stays off, and every request reads the ledger). */
static uint64_t *map_epoch(const char *path)
{
    char name[4200];
    snprintf(name, sizeof name, "%s-kzepoch", path);
    int fd = open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    /* the block must be allocated before it is mapped: a store into a page
     * the file system cannot back (a full disk) would be a SIGBUS, not an
     * error. posix_fallocate reserves it now, or says the disk is full. */
    void *p = MAP_FAILED;
    if (posix_fallocate(fd, 0, 8) == 0)
        p = mmap(NULL, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

uint64_t kz_ledger_epoch(const struct kz_ledger *l)
{
    /* never 0 while there is one: 0 means "no cache" */
    return l && l->epoch ? __atomic_load_n(l->epoch, __ATOMIC_ACQUIRE) | (UINT64_C(1) << 63) : 0;
}

void kz_ledger_bump(struct kz_ledger *l)
{
    if (l && l->epoch)
        __atomic_add_fetch(l->epoch, 1, __ATOMIC_RELEASE);
}

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
        if (!rc)
            (*out)->epoch = map_epoch(path);
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

int kz_ledger_url_password(const char *url, size_t *start, size_t *end)
{
    /* postgres://user:SECRET@host/db: the user info ends at the last '@'
     * before the query (a password may hold '/' or '@'), and the password
     * starts after its first ':' */
    const char *auth = strstr(url, "://");
    if (!auth)
        return 0;
    auth += 3;
    const char *query = strchr(auth, '?'), *at = NULL;
    for (const char *c = auth; *c && (!query || c < query); c++)
        if (*c == '@')
            at = c;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon)
        return 0;
    *start = (size_t)(colon + 1 - url);
    *end = (size_t)(at - url);
    return 1;
}

void kz_ledger_redact(const char *path, char *buf, size_t size)
{
    snprintf(buf, size, "%s", path);
    if (!kz_ledger_is_postgres(buf))
        return;
    /* stars over the password, in the user info and as ?password= */
    size_t start, end;
    if (kz_ledger_url_password(buf, &start, &end))
        memset(buf + start, '*', end - start);
    for (char *pw = strstr(buf, "password="); pw; pw = strstr(pw + 1, "password="))
        for (char *v = pw + 9; *v && *v != '&'; v++)
            *v = '*';
}

void kz_ledger_close(struct kz_ledger *l)
{
    if (!l)
        return;
    if (l->epoch)
        munmap(l->epoch, 8);
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
