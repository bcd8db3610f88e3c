/* SPDX-License-Identifier: MIT
 * The settle journal (see journal.h).
 */
#include "tenancy/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/alloc.h"

/* Emptying the file on every chance would cost a metadata change per
 * request at low rates (the last record committed, the file truncated, the
 * next append allocates again); it is emptied once it holds this much. */
#define RESET_BYTES (4u << 20)

struct kz_journal {
    int fd;
    size_t bytes; /* appended since the last reset */
};

static void copy(char *dst, size_t size, json_t *v)
{
    snprintf(dst, size, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static int64_t num(json_t *o, const char *k) { return (int64_t)json_integer_value(json_object_get(o, k)); }

/* One line back into a record; -1 when it is not a whole one. */
static int parse(const char *line, size_t len, struct kz_ledger_usage *u)
{
    json_t *o = json_loadb(line, len, 0, NULL);
    if (!json_is_object(o) || !json_is_string(json_object_get(o, "request_id"))) {
        json_decref(o);
        return -1;
    }
    memset(u, 0, sizeof *u);
    copy(u->request_id, sizeof u->request_id, json_object_get(o, "request_id"));
    copy(u->model, sizeof u->model, json_object_get(o, "model"));
    copy(u->provider, sizeof u->provider, json_object_get(o, "provider"));
    copy(u->deployment, sizeof u->deployment, json_object_get(o, "deployment"));
    u->tenant_id = num(o, "tenant_id");
    u->key_id = num(o, "key_id");
    u->input_tokens = num(o, "input_tokens");
    u->output_tokens = num(o, "output_tokens");
    u->cost = num(o, "cost");
    u->status = (int)num(o, "status");
    u->latency_ms = num(o, "latency_ms");
    u->ttft_ms = num(o, "ttft_ms");
    u->started_ms = num(o, "started_ms");
    u->finished_ms = num(o, "finished_ms");
    json_decref(o);
    return 0;
}

static kz_status replay(int fd, kz_journal_replay_fn fn, void *ud, long *skipped, struct kz_err *err)
{
    off_t size = lseek(fd, 0, SEEK_END);
    if (size <= 0)
        return KZ_OK;
    char *buf = kz_malloc((size_t)size + 1);
    if (!buf)
        return kz_err_set(err, KZ_ENOMEM, "out of memory reading the settle journal");
    ssize_t n = pread(fd, buf, (size_t)size, 0);
    kz_status rc = n == (ssize_t)size ? KZ_OK : kz_err_set(err, KZ_EIO, "reading the settle journal failed");
    for (char *p = buf, *end = buf + (n > 0 ? n : 0); !rc && p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        struct kz_ledger_usage u;
        if (len && parse(p, len, &u) == 0)
            rc = fn(ud, &u, err);
        else if (len && skipped)
            (*skipped)++;
        p += len + 1;
    }
    kz_free(buf);
    return rc;
}

kz_status kz_journal_open(const char *path, kz_journal_replay_fn fn, void *ud, struct kz_journal **out,
                          long *skipped, struct kz_err *err)
{
    if (skipped)
        *skipped = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return kz_err_set(err, KZ_EIO, "settle journal %s: %s", path, strerror(errno));
    /* one server per journal: a second one would replay and empty records
     * the first has not committed yet. The lock goes with the process. */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return kz_err_set(err, KZ_EIO, "settle journal %s: %s", path,
                          e == EWOULDBLOCK ? "in use by another kyozon server (each server needs its own; see --journal)"
                                           : strerror(e));
    }
    kz_status rc = replay(fd, fn, ud, skipped, err);
    if (!rc && ftruncate(fd, 0) != 0)
        rc = kz_err_set(err, KZ_EIO, "settle journal %s: %s", path, strerror(errno));
    struct kz_journal *j = rc ? NULL : kz_calloc(1, sizeof *j);
    if (!rc && !j)
        rc = kz_err_set(err, KZ_ENOMEM, "out of memory");
    if (rc) {
        close(fd);
        return rc;
    }
    j->fd = fd;
    *out = j;
    return KZ_OK;
}

kz_status kz_journal_append(struct kz_journal *j, const struct kz_ledger_usage *u, struct kz_err *err)
{
    json_t *o = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:I, s:I, s:I, s:I}", "request_id",
                          u->request_id, "tenant_id", (json_int_t)u->tenant_id, "key_id", (json_int_t)u->key_id,
                          "model", u->model, "provider", u->provider, "deployment", u->deployment, "input_tokens",
                          (json_int_t)u->input_tokens, "output_tokens", (json_int_t)u->output_tokens, "cost",
                          (json_int_t)u->cost, "status", u->status, "latency_ms", (json_int_t)u->latency_ms,
                          "ttft_ms", (json_int_t)u->ttft_ms, "started_ms", (json_int_t)u->started_ms,
                          "finished_ms", (json_int_t)u->finished_ms);
    char line[2048];
    size_t n = o ? json_dumpb(o, line, sizeof line - 1, JSON_COMPACT) : 0;
    json_decref(o);
    if (n == 0 || n >= sizeof line - 1)
        return kz_err_set(err, KZ_ENOMEM, "settle journal: cannot encode the record");
    line[n++] = '\n';
    ssize_t w = write(j->fd, line, n);
    if (w != (ssize_t)n) {
        int e = w < 0 ? errno : ENOSPC;
        if (w > 0) /* a partial line: cut it off again, so the next one starts clean */
            (void)!ftruncate(j->fd, lseek(j->fd, 0, SEEK_END) - w);
        return kz_err_set(err, KZ_EIO, "ledger full: settle journal: %s", strerror(e));
    }
    j->bytes += n;
    return KZ_OK;
}

void kz_journal_reset(struct kz_journal *j)
{
    if (j && j->bytes >= RESET_BYTES && ftruncate(j->fd, 0) == 0)
        j->bytes = 0;
}

void kz_journal_close(struct kz_journal *j)
{
    if (!j)
        return;
    close(j->fd);
    kz_free(j);
}
