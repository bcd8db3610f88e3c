/* SPDX-License-Identifier: MIT
 * PostgreSQL backend: the handle, the connection pool, transactions and
 * statements (see pg_int.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/fmt.h"
#include "ledger/pg_int.h"

#define RECONNECT_MS 250 /* between connection attempts of one slot while the server is away */
#define MAX_ATTEMPTS 8   /* of a transaction aborted as a deadlock victim */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- parameters and results ----------------------------------------------------- */

void kz_pg_i64(struct kz_pg_args *a, int64_t v)
{
    snprintf(a->buf[a->n], sizeof a->buf[a->n], "%" PRId64, v);
    a->v[a->n] = a->buf[a->n];
    a->n++;
}

void kz_pg_id(struct kz_pg_args *a, int64_t id)
{
    if (id)
        kz_pg_i64(a, id);
    else
        kz_pg_null(a);
}

void kz_pg_str(struct kz_pg_args *a, const char *s) { a->v[a->n++] = s; }

void kz_pg_null(struct kz_pg_args *a) { a->v[a->n++] = NULL; }

int64_t kz_pg_col_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

int kz_pg_col_null(const PGresult *r, int row, int col) { return PQgetisnull(r, row, col); }

void kz_pg_col_text(const PGresult *r, int row, int col, char *buf, size_t size)
{
    snprintf(buf, size, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

/* ---- statements ----------------------------------------------------------------- */

/* libpq's messages may span lines (an indented hint after a newline); ours
 * are one line: each run of white space becomes one space. */
static void copy_msg(char *dst, size_t size, const char *src)
{
    if (!src || !src[0])
        src = "no message";
    size_t n = 0;
    for (const char *p = src; *p && n + 1 < size; p++) {
        int space = *p == '\n' || *p == '\t' || *p == ' ';
        if (space && (n == 0 || dst[n - 1] == ' '))
            continue;
        dst[n++] = space ? ' ' : *p;
    }
    while (n && dst[n - 1] == ' ')
        n--;
    dst[n] = '\0';
}

static kz_status fail(struct kz_pg_conn *c, const PGresult *r, const char *what, struct kz_err *err)
{
    char msg[256];
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    copy_msg(msg, sizeof msg, r ? PQresultErrorMessage(r) : PQerrorMessage(c->pc));
    if (!state)
        state = "";
    if (PQstatus(c->pc) != CONNECTION_OK || strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
        return kz_err_set(err, KZ_EIO, "ledger unavailable: %s: %s", what, msg);
    if (strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0 || strcmp(state, "40001") == 0 ||
        strcmp(state, "40P01") == 0)
        return kz_err_set(err, KZ_EIO, "ledger busy: %s: %s", what, msg);
    if (strncmp(state, "53", 2) == 0)
        return kz_err_set(err, KZ_EIO, "ledger full: %s: %s", what, msg);
    if (strncmp(state, "23", 2) == 0)
        return kz_err_set(err, KZ_EINVAL, "ledger: %s: %s", what, msg);
    if (strcmp(state, "22003") == 0)
        return kz_err_set(err, KZ_ELIMIT, "ledger: %s: a sum is out of range (%s)", what, msg);
    return kz_err_set(err, KZ_EIO, "ledger: %s: %s", what, msg);
}

kz_status kz_pg_exec(struct kz_pg_conn *c, const char *sql, const struct kz_pg_args *a, PGresult **res,
                     const char *what, struct kz_err *err)
{
    const struct kz_ledger_opts *o = &c->owner->base.opts;
    if (o->trace)
        o->trace(o->trace_ud, c->index, sql);
    if (res)
        *res = NULL;
    /* without parameters: the simple protocol, which also runs several
     * statements in one text (migrations) */
    PGresult *r = a ? PQexecParams(c->pc, sql, a->n, NULL, a->v, NULL, NULL, 0) : PQexec(c->pc, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        kz_status rc = fail(c, r, what, err);
        PQclear(r);
        return rc;
    }
    if (res)
        *res = r;
    else
        PQclear(r);
    return KZ_OK;
}

/* ---- connections ---------------------------------------------------------------- */

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs ("relation already exists, skipping") are not the user's business */
}

static kz_status connect_slot(struct kz_pg_conn *c, struct kz_err *err)
{
    struct kz_pg *p = c->owner;
    if (c->pc && PQstatus(c->pc) == CONNECTION_OK)
        return KZ_OK;
    if (c->pc) {
        PQfinish(c->pc);
        c->pc = NULL;
    }
    int64_t now = mono_ms();
    if (now < c->retry_at_ms)
        return kz_err_set(err, KZ_EIO, "ledger unavailable: %s did not answer a moment ago", p->shown);
    /* the URL's own settings come after (and so override) these defaults */
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"2", "kyozon", p->url, NULL};
    c->pc = PQconnectdbParams(keys, vals, 1);
    if (!c->pc || PQstatus(c->pc) != CONNECTION_OK) {
        char msg[256];
        copy_msg(msg, sizeof msg, c->pc ? PQerrorMessage(c->pc) : "out of memory");
        PQfinish(c->pc);
        c->pc = NULL;
        c->retry_at_ms = now + RECONNECT_MS;
        return kz_err_set(err, KZ_EIO, "ledger unavailable: cannot connect to %s: %s", p->shown, msg);
    }
    PQsetNoticeProcessor(c->pc, quiet, NULL);
    /* waiting for another node's lock is bounded like SQLite's busy timeout */
    char sql[160];
    int t = p->base.opts.busy_timeout_ms;
    snprintf(sql, sizeof sql, "SET lock_timeout = %d; SET statement_timeout = %d; SET TIME ZONE 'UTC'", t, 2 * t);
    PGresult *r = PQexec(c->pc, sql);
    kz_status rc = PQresultStatus(r) == PGRES_COMMAND_OK ? KZ_OK : fail(c, r, "setting up a connection", err);
    PQclear(r);
    if (rc) {
        PQfinish(c->pc);
        c->pc = NULL;
    }
    return rc;
}

static struct kz_pg_conn *take(struct kz_pg *p)
{
    unsigned start = __atomic_fetch_add(&p->next, 1u, __ATOMIC_RELAXED);
    for (size_t i = 0; i < p->n_c; i++) {
        struct kz_pg_conn *c = &p->c[(start + i) % p->n_c];
        if (pthread_mutex_trylock(&c->mu) == 0)
            return c;
    }
    struct kz_pg_conn *c = &p->c[start % p->n_c];
    pthread_mutex_lock(&c->mu);
    return c;
}

static int retryable(const PGconn *pc, const struct kz_err *err)
{
    /* fail() words deadlocks and serialization failures as "ledger busy";
     * the SQLSTATE itself is gone by now, so look at the text it kept */
    return pc && PQstatus(pc) == CONNECTION_OK &&
           (strstr(err->msg, "deadlock detected") || strstr(err->msg, "could not serialize"));
}

static kz_status run_tx(struct kz_pg *p, const char *begin, kz_pg_fn fn, void *ud, struct kz_err *err)
{
    struct kz_err local;
    if (!err)
        err = &local;
    struct kz_pg_conn *c = take(p);
    kz_status rc = KZ_OK;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        int was_open = c->pc != NULL;
        if ((rc = connect_slot(c, err)))
            break;
        rc = kz_pg_exec(c, begin, NULL, NULL, "starting a transaction", err);
        if (rc && was_open && PQstatus(c->pc) != CONNECTION_OK)
            continue; /* a connection the server dropped while idle (a restart): open a new one */
        if (!rc && !(rc = fn(c, ud, err)))
            rc = kz_pg_exec(c, "COMMIT", NULL, NULL, "committing", err);
        if (!rc)
            break;
        if (PQstatus(c->pc) == CONNECTION_OK) {
            PGresult *r = PQexec(c->pc, "ROLLBACK");
            PQclear(r);
        }
        if (!retryable(c->pc, err))
            break;
        struct timespec ts = {0, (long)(1 + attempt) * 2000000L};
        nanosleep(&ts, NULL);
    }
    if (rc && c->pc && PQstatus(c->pc) != CONNECTION_OK) {
        PQfinish(c->pc);
        c->pc = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

kz_status kz_pg_tx(struct kz_pg *p, kz_pg_fn fn, void *ud, struct kz_err *err)
{
    return run_tx(p, "BEGIN", fn, ud, err);
}

kz_status kz_pg_read(struct kz_pg *p, kz_pg_fn fn, void *ud, struct kz_err *err)
{
    return run_tx(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", fn, ud, err);
}

/* ---- the handle ----------------------------------------------------------------- */

static void pg_close(struct kz_ledger *l)
{
    struct kz_pg *p = (struct kz_pg *)l;
    for (size_t i = 0; i < p->n_c; i++) {
        PQfinish(p->c[i].pc);
        pthread_mutex_destroy(&p->c[i].mu);
    }
    kz_free(p->c);
    kz_free(p->url);
    kz_free(p->shown);
    kz_free(p);
}

/* The URL's password (kz_ledger_url_password), percent-decoded: 1 and out
 * filled, or 0 when there is none. */
static int url_password(const char *url, char *out, size_t size)
{
    size_t start, end, n = 0;
    if (!kz_ledger_url_password(url, &start, &end))
        return 0;
    for (size_t i = start; i < end && n + 1 < size; i++) {
        if (url[i] == '%' && i + 2 < end && kz_hex_value(url[i + 1]) >= 0 && kz_hex_value(url[i + 2]) >= 0) {
            out[n++] = (char)(kz_hex_value(url[i + 1]) * 16 + kz_hex_value(url[i + 2]));
            i += 2;
        } else {
            out[n++] = url[i];
        }
    }
    out[n] = '\0';
    return 1;
}

static const struct kz_ledger_ops PG_OPS = {
    .close = pg_close,
    .check = kz_pg_check,
    .tenant_create = kz_pg_tenant_create,
    .tenant_get = kz_pg_tenant_get,
    .tenant_list = kz_pg_tenant_list,
    .tenant_credit = kz_pg_tenant_credit,
    .key_insert = kz_pg_key_insert,
    .key_get = kz_pg_key_get,
    .key_list = kz_pg_key_list,
    .key_revoke = kz_pg_key_revoke,
    .reserve = kz_pg_reserve,
    .release = kz_pg_release,
    .sweep = kz_pg_sweep,
    .reservations = kz_pg_reservations,
    .settle = kz_pg_settle,
    .usage = kz_pg_usage,
    .usage_get = kz_pg_usage_get,
};

kz_status kz_ledger_pg_open(const char *url, const struct kz_ledger_opts *opts, struct kz_ledger **out,
                            struct kz_err *err)
{
    struct kz_err local;
    if (!err)
        err = &local;
    /* libpq's own complaint about a malformed URL may quote any part of
     * it, the password included: a URL it cannot parse is refused here, in
     * our words */
    char *perr = NULL;
    PQconninfoOption *parsed = PQconninfoParse(url, &perr);
    PQfreemem(perr);
    if (!parsed)
        return kz_err_set(err, KZ_EINVAL,
                          "ledger: a postgres:// URL that libpq cannot parse (expected "
                          "postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?param=value...], special characters "
                          "percent-encoded)");
    /* and one it reads differently from us (a password with an unencoded
     * '/' or '@' becomes a host or a port, which its errors then quote) */
    const char *theirs = NULL;
    for (PQconninfoOption *o = parsed; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0)
            theirs = o->val;
    char ours[512];
    int differs = url_password(url, ours, sizeof ours) && (!theirs || strcmp(ours, theirs) != 0);
    explicit_bzero(ours, sizeof ours);
    PQconninfoFree(parsed);
    if (differs)
        return kz_err_set(err, KZ_EINVAL,
                          "ledger: the postgres:// URL's password is ambiguous: percent-encode '/', '@', '?' and "
                          "':' in it (%%2F, %%40, %%3F, %%3A), and give it once (not also as ?password=)");
    struct kz_pg *p = kz_calloc(1, sizeof *p);
    if (p) {
        p->url = kz_strdup(url);
        p->shown = kz_malloc(strlen(url) + 1);
        if (p->shown)
            kz_ledger_redact(url, p->shown, strlen(url) + 1);
        p->n_c = (size_t)opts->readers + 1;
        p->c = kz_calloc(p->n_c, sizeof *p->c);
    }
    if (!p || !p->url || !p->shown || !p->c) {
        if (p) {
            kz_free(p->url);
            kz_free(p->shown);
            kz_free(p->c);
        }
        kz_free(p);
        return kz_err_set(err, KZ_ENOMEM, "ledger: out of memory");
    }
    p->base.ops = &PG_OPS;
    p->base.opts = *opts;
    for (size_t i = 0; i < p->n_c; i++) {
        pthread_mutex_init(&p->c[i].mu, NULL);
        p->c[i].index = (int)i;
        p->c[i].owner = p;
    }
    kz_status rc = kz_pg_migrate(p, err);
    if (rc) {
        if (strstr(err->msg, p->shown) == NULL)
            kz_err_prefix(err, p->shown);
        pg_close(&p->base);
        return rc;
    }
    *out = &p->base;
    return KZ_OK;
}
