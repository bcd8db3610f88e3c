/* SPDX-License-Identifier: MIT
 * SQLite connections and the transaction helpers (see sqlite_int.h for why
 * one writer and a pool of readers, and why BEGIN IMMEDIATE).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "ledger/sqlite_int.h"

static const char SQL_BEGIN_IMMEDIATE[] = "BEGIN IMMEDIATE";
static const char SQL_BEGIN_READ[] = "BEGIN";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SYNC_FULL[] = "PRAGMA synchronous=FULL";
static const char SQL_SYNC_NORMAL[] = "PRAGMA synchronous=NORMAL";

kz_status kz_sq_fail(struct kz_sq_conn *c, int rc, const char *what, struct kz_err *err)
{
    const char *msg = c && c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return kz_err_set(err, KZ_EIO, "ledger busy: %s: another process held the database for more than %d ms (%s)",
                          what, c && c->owner ? c->owner->base.opts.busy_timeout_ms : 0, msg);
    case SQLITE_FULL:
        return kz_err_set(err, KZ_EIO, "ledger full: %s: the disk or the database is full (%s)", what, msg);
    case SQLITE_NOMEM:
        return kz_err_set(err, KZ_ENOMEM, "ledger: %s: out of memory", what);
    case SQLITE_CONSTRAINT:
        return kz_err_set(err, KZ_EINVAL, "ledger: %s: %s", what, msg);
    default:
        return kz_err_set(err, KZ_EIO, "ledger: %s: %s", what, msg);
    }
}

kz_status kz_sq_prep(struct kz_sq_conn *c, const char *sql, sqlite3_stmt **st, struct kz_err *err)
{
    for (size_t i = 0; i < c->n_cache; i++)
        if (c->cache[i].sql == sql) {
            sqlite3_reset(c->cache[i].st);
            sqlite3_clear_bindings(c->cache[i].st);
            *st = c->cache[i].st;
            return KZ_OK;
        }
    /* Every statement text is a static string and there are fewer than
     * KZ_SQ_CACHE of them, so the cache never evicts. */
    if (c->n_cache == KZ_SQ_CACHE)
        return kz_err_set(err, KZ_ELIMIT, "ledger: statement cache full (raise KZ_SQ_CACHE)");
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc != SQLITE_OK)
        return kz_sq_fail(c, rc, "preparing a statement", err);
    c->cache[c->n_cache].sql = sql;
    c->cache[c->n_cache].st = *st;
    c->n_cache++;
    return KZ_OK;
}

kz_status kz_sq_done(struct kz_sq_conn *c, sqlite3_stmt *st, const char *what, struct kz_err *err)
{
    int rc = sqlite3_step(st);
    kz_status s = KZ_OK;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        s = kz_sq_fail(c, rc, what, err);
    sqlite3_reset(st);
    return s;
}

kz_status kz_sq_row(struct kz_sq_conn *c, sqlite3_stmt *st, int *row, const char *what, struct kz_err *err)
{
    int rc = sqlite3_step(st);
    *row = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        return KZ_OK;
    kz_status s = rc == SQLITE_DONE ? KZ_OK : kz_sq_fail(c, rc, what, err);
    sqlite3_reset(st);
    return s;
}

kz_status kz_sq_exec(struct kz_sq_conn *c, const char *sql, const char *what, struct kz_err *err)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? KZ_OK : kz_sq_fail(c, rc, what, err);
}

static kz_status run_static(struct kz_sq_conn *c, const char *sql, const char *what, struct kz_err *err)
{
    sqlite3_stmt *st;
    kz_status rc = kz_sq_prep(c, sql, &st, err);
    return rc ? rc : kz_sq_done(c, st, what, err);
}

/* A statement left mid-result by an early return would keep its snapshot;
 * reset whatever is still running before the transaction ends. */
static void reset_busy(struct kz_sq_conn *c)
{
    for (size_t i = 0; i < c->n_cache; i++)
        if (sqlite3_stmt_busy(c->cache[i].st))
            sqlite3_reset(c->cache[i].st);
}

static void end_failed(struct kz_sq_conn *c)
{
    reset_busy(c);
    /* Some errors (disk full, I/O) already rolled the transaction back. */
    if (!sqlite3_get_autocommit(c->db))
        run_static(c, SQL_ROLLBACK, "rolling back", NULL);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The busy timeout bounds the whole wait of one write: for the connection
 * (other threads' writes queue on its mutex) and then for the database lock.
 * Without that, writes queued behind one stuck on another process's lock
 * would wait one timeout each, one after the other. */
static kz_status lock_writer(struct kz_sq *s, struct kz_sq_conn *c, struct kz_err *err)
{
    int budget = s->base.opts.busy_timeout_ms;
    int64_t t0 = mono_ms();
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += budget / 1000;
    dl.tv_nsec += (long)(budget % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    if (pthread_mutex_timedlock(&c->mu, &dl) != 0)
        return kz_err_set(err, KZ_EIO, "ledger busy: other writes held the ledger for %d ms", budget);
    int64_t left = budget - (mono_ms() - t0);
    sqlite3_busy_timeout(c->db, left > 1 ? (int)left : 1);
    return KZ_OK;
}

kz_status kz_sq_write(struct kz_sq *s, int durable, kz_sq_fn fn, void *ud, struct kz_err *err)
{
    struct kz_sq_conn *c = &s->w;
    kz_status rc = lock_writer(s, c, err);
    if (rc)
        return rc;
    int want = durable ? 2 : 1;
    if (c->sync != want) {
        rc = run_static(c, durable ? SQL_SYNC_FULL : SQL_SYNC_NORMAL, "setting synchronous", err);
        if (!rc)
            c->sync = want;
    }
    if (!rc)
        rc = run_static(c, SQL_BEGIN_IMMEDIATE, "starting a write transaction", err);
    if (!rc) {
        rc = fn(c, ud, err);
        if (!rc) {
            reset_busy(c);
            rc = run_static(c, SQL_COMMIT, "committing", err);
        }
        if (rc)
            end_failed(c);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static struct kz_sq_conn *take_reader(struct kz_sq *s)
{
    unsigned start = __atomic_fetch_add(&s->next_reader, 1u, __ATOMIC_RELAXED);
    for (size_t i = 0; i < s->n_r; i++) {
        struct kz_sq_conn *c = &s->r[(start + i) % s->n_r];
        if (pthread_mutex_trylock(&c->mu) == 0)
            return c;
    }
    struct kz_sq_conn *c = &s->r[start % s->n_r];
    pthread_mutex_lock(&c->mu);
    return c;
}

kz_status kz_sq_read(struct kz_sq *s, kz_sq_fn fn, void *ud, struct kz_err *err)
{
    struct kz_sq_conn *c = take_reader(s);
    kz_status rc = run_static(c, SQL_BEGIN_READ, "starting a read transaction", err);
    if (!rc) {
        rc = fn(c, ud, err);
        reset_busy(c);
        if (rc)
            end_failed(c);
        else
            rc = run_static(c, SQL_COMMIT, "ending a read transaction", err);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static int on_trace(unsigned type, void *ctx, void *stmt, void *text)
{
    (void)stmt;
    struct kz_sq_conn *c = ctx;
    const struct kz_ledger_opts *o = &c->owner->base.opts;
    if (type == SQLITE_TRACE_STMT && o->trace)
        o->trace(o->trace_ud, c->index, (const char *)text);
    return 0;
}

static kz_status wal_mode(struct kz_sq_conn *c, struct kz_err *err)
{
    sqlite3_stmt *st;
    int row = 0;
    kz_status rc = kz_sq_prep(c, "PRAGMA journal_mode=WAL", &st, err);
    if (!rc)
        rc = kz_sq_row(c, st, &row, "switching to WAL", err);
    if (rc)
        return rc;
    const char *mode = row ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int ok = mode && strcmp(mode, "wal") == 0;
    char got[16];
    snprintf(got, sizeof got, "%s", mode ? mode : "none");
    sqlite3_reset(st);
    if (!ok)
        return kz_err_set(err, KZ_EUNSUPPORTED, "ledger: the database cannot use WAL (journal mode %s)", got);
    return KZ_OK;
}

kz_status kz_sq_conn_open(struct kz_sq *s, struct kz_sq_conn *c, int index, struct kz_err *err)
{
    memset(c, 0, sizeof *c);
    c->index = index;
    c->owner = s;
    int flags = (index == 0 ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(s->path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        kz_status st = kz_sq_fail(c, rc, "opening the database", err);
        sqlite3_close(c->db);
        c->db = NULL;
        return st;
    }
    pthread_mutex_init(&c->mu, NULL);
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, s->base.opts.busy_timeout_ms);
    /* Defensive: no writable_schema or other ways to corrupt the file from SQL. */
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    if (s->base.opts.trace)
        sqlite3_trace_v2(c->db, SQLITE_TRACE_STMT, on_trace, c);
    kz_status st = KZ_OK;
    if (index == 0) {
        st = wal_mode(c, err);
        if (!st)
            st = kz_sq_exec(c, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", "setting pragmas", err);
        c->sync = 2;
    }
    return st;
}

void kz_sq_conn_close(struct kz_sq_conn *c)
{
    if (!c->db)
        return;
    for (size_t i = 0; i < c->n_cache; i++)
        sqlite3_finalize(c->cache[i].st);
    c->n_cache = 0;
    sqlite3_close(c->db);
    c->db = NULL;
    pthread_mutex_destroy(&c->mu);
}

int kz_sq_bind_id(sqlite3_stmt *st, int col, int64_t id)
{
    return id ? sqlite3_bind_int64(st, col, id) : sqlite3_bind_null(st, col);
}

void kz_sq_col_text(sqlite3_stmt *st, int col, char *buf, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(buf, size, "%s", t ? (const char *)t : "");
}
