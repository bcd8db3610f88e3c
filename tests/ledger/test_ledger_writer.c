/* SPDX-License-Identifier: MIT
 * The settle writer: records are committed in batches (N records in far
 * fewer than N transactions), a full queue refuses with KZ_ELIMIT, stop
 * drains everything, store failures reach each record's callback, and the
 * same request twice in one batch is recorded once.
 */
#include <pthread.h>
#include <string.h>

#include "ledger/writer.h"
#include "tledger.h"

struct outcome {
    pthread_mutex_t mu;
    int ok, dup, failed;
    char last_err[KZ_ERR_MSG_SIZE];
};

static void outcome_init(struct outcome *o)
{
    memset(o, 0, sizeof *o);
    pthread_mutex_init(&o->mu, NULL);
}

static void on_settled(void *ud, kz_status rc, const struct kz_err *err, const struct kz_ledger_usage *stored,
                       int duplicate)
{
    struct outcome *o = ud;
    pthread_mutex_lock(&o->mu);
    if (rc) {
        o->failed++;
        snprintf(o->last_err, sizeof o->last_err, "%s", err ? err->msg : "");
    } else if (duplicate)
        o->dup++;
    else
        o->ok += stored != NULL;
    pthread_mutex_unlock(&o->mu);
}

/* Counts COMMITs on the write connection (SQLite), on any (PostgreSQL). */
static void count_commit(void *ud, int conn, const char *sql)
{
    if ((conn == 0 || tl_pg()) && strcmp(sql, "COMMIT") == 0)
        __atomic_fetch_add((int *)ud, 1, __ATOMIC_SEQ_CST);
}

/* Another process's lock, to make the writer wait. */
static struct tl_holder *lock_db(const char *path)
{
    static struct tl_holder h;
    T_EQ_INT(tl_hold(&h, path), 0);
    return &h;
}

static void unlock_db(struct tl_holder *h) { tl_unhold(h); }

static int64_t usage_count(struct kz_ledger *l, int64_t tenant)
{
    struct kz_ledger_query q = {KZ_GROUP_TOTAL, 0, 0};
    struct kz_ledger_usage_row *rows = NULL;
    size_t n = 0;
    struct kz_err err = {{0}};
    int64_t c = -1;
    if (kz_ledger_usage(l, tenant, &q, &rows, &n, &err) == KZ_OK && n == 1)
        c = rows[0].requests;
    kz_free(rows);
    return c;
}

#define N_BATCHED 1000

/* A fresh ledger (its path into `path`) whose writes wait busy_ms for
 * another process's lock; o may carry more options. */
static struct kz_ledger *open_fresh(const char *name, char path[512], int busy_ms, struct kz_ledger_opts *o)
{
    struct kz_ledger_opts none = {0};
    if (!o)
        o = &none;
    snprintf(path, 512, "%s", tl_fresh(name));
    o->busy_timeout_ms = busy_ms;
    return tl_open(path, o);
}

static void finish(struct kz_ledger *l, struct outcome *out)
{
    tl_check(l);
    kz_ledger_close(l);
    pthread_mutex_destroy(&out->mu);
}

/* A ledger with one tenant, one key and a running writer. */
struct fixture {
    char path[512];
    struct kz_ledger *l;
    int64_t t, k;
    struct kz_ledger_writer *w;
    struct outcome out;
};

static int setup(struct fixture *f, const char *name, int busy_ms, int prepaid)
{
    struct kz_err err = {{0}};
    f->l = open_fresh(name, f->path, busy_ms, NULL);
    if (!f->l)
        return 0;
    f->t = tl_tenant(f->l, name, prepaid, -1, KZ_PERIOD_TOTAL);
    f->k = tl_key(f->l, f->t, -1, KZ_PERIOD_TOTAL, NULL);
    f->w = NULL;
    T_EQ_INT(kz_ledger_writer_start(f->l, NULL, &f->w, &err), KZ_OK);
    outcome_init(&f->out);
    return f->w != NULL;
}

static void batching(void)
{
    char path[512];
    int commits = 0;
    struct kz_ledger_opts o = {0};
    o.trace = count_commit;
    o.trace_ud = &commits;
    struct kz_ledger *l = open_fresh("writer_batch", path, 10000, &o);
    if (!l)
        return;
    struct kz_err err = {{0}};
    int64_t t = tl_tenant(l, "wb", 0, -1, KZ_PERIOD_TOTAL);
    int64_t k = tl_key(l, t, -1, KZ_PERIOD_TOTAL, NULL);
    struct kz_ledger_writer_opts wo = {.capacity = 2 * N_BATCHED, .max_batch = 256};
    struct kz_ledger_writer *w = NULL;
    T_EQ_INT(kz_ledger_writer_start(l, &wo, &w, &err), KZ_OK);
    if (!w)
        return;
    struct outcome out;
    outcome_init(&out);

    /* Held back: everything queues, then goes in max_batch-sized groups. */
    struct tl_holder *other = lock_db(path);
    int before = __atomic_load_n(&commits, __ATOMIC_SEQ_CST);
    for (int i = 0; i < N_BATCHED; i++) {
        struct kz_ledger_usage u;
        char id[32];
        snprintf(id, sizeof id, "held-%d", i);
        tl_usage(&u, id, t, k, "m", i, TL_T0);
        T_EQ_INT(kz_ledger_writer_submit(w, 0, &u, on_settled, &out, &err), KZ_OK);
    }
    usleep(20000);
    unlock_db(other);
    kz_ledger_writer_flush(w);
    int held_commits = __atomic_load_n(&commits, __ATOMIC_SEQ_CST) - before;
    T_EQ_INT(out.ok, N_BATCHED);
    T_OK(held_commits >= 4 && held_commits <= 6, "%d records in %d transactions (1 + ceil(999/256) expected)",
         N_BATCHED, held_commits);

    /* Free running: still far fewer transactions than records. */
    before = __atomic_load_n(&commits, __ATOMIC_SEQ_CST);
    for (int i = 0; i < N_BATCHED; i++) {
        struct kz_ledger_usage u;
        char id[32];
        snprintf(id, sizeof id, "free-%d", i);
        tl_usage(&u, id, t, k, "m", i, TL_T0);
        T_EQ_INT(kz_ledger_writer_submit(w, 0, &u, on_settled, &out, &err), KZ_OK);
    }
    kz_ledger_writer_flush(w);
    int free_commits = __atomic_load_n(&commits, __ATOMIC_SEQ_CST) - before;
    T_EQ_INT(out.ok, 2 * N_BATCHED);
    T_OK(free_commits < N_BATCHED / 2, "%d records in %d transactions", N_BATCHED, free_commits);
    kz_ledger_writer_stop(w);
    T_EQ_INT(usage_count(l, t), 2 * N_BATCHED);
    T_EQ_INT(out.failed, 0);
    finish(l, &out);
}

static void full_queue(void)
{
    char path[512];
    struct kz_ledger *l = open_fresh("writer_full", path, 10000, NULL);
    if (!l)
        return;
    struct kz_err err = {{0}};
    int64_t t = tl_tenant(l, "wf", 0, -1, KZ_PERIOD_TOTAL);
    struct kz_ledger_writer_opts wo = {.capacity = 8, .max_batch = 4};
    struct kz_ledger_writer *w = NULL;
    T_EQ_INT(kz_ledger_writer_start(l, &wo, &w, &err), KZ_OK);
    if (!w)
        return;
    struct outcome out;
    outcome_init(&out);
    struct kz_ledger_usage u;
    tl_usage(&u, "bad", t, 0, "", 1, TL_T0);
    T_EQ_INT(kz_ledger_writer_submit(w, 0, &u, on_settled, &out, &err), KZ_EINVAL); /* checked at submit */

    struct tl_holder *other = lock_db(path);
    int accepted = 0;
    kz_status rc = KZ_OK;
    for (int i = 0; i < 100 && rc == KZ_OK; i++) {
        char id[32];
        snprintf(id, sizeof id, "f-%d", i);
        tl_usage(&u, id, t, 0, "m", 1, TL_T0);
        rc = kz_ledger_writer_submit(w, 0, &u, on_settled, &out, &err);
        accepted += rc == KZ_OK;
        if (i == 0)
            usleep(20000); /* let the writer take the first one and block on the lock */
    }
    T_EQ_INT(rc, KZ_ELIMIT);
    T_OK(strstr(err.msg, "queue full") != NULL, "%s", err.msg);
    T_OK(accepted >= 8 && accepted <= 8 + 4, "capacity 8 (+ a batch of at most 4 in flight): %d accepted", accepted);
    unlock_db(other);
    kz_ledger_writer_flush(w);
    T_EQ_INT(out.ok, accepted);
    T_EQ_INT(usage_count(l, t), accepted);
    /* Room again once drained. */
    tl_usage(&u, "after", t, 0, "m", 1, TL_T0);
    T_EQ_INT(kz_ledger_writer_submit(w, 0, &u, on_settled, &out, &err), KZ_OK);
    kz_ledger_writer_stop(w);
    T_EQ_INT(out.ok, accepted + 1);
    finish(l, &out);
}

static void stop_drains(void)
{
    static struct fixture f;
    if (!setup(&f, "writer_drain", 5000, 1))
        return;
    struct kz_ledger *l = f.l;
    int64_t t = f.t, k = f.k;
    struct kz_err err = {{0}};
    T_EQ_INT(kz_ledger_tenant_credit(l, t, 1000000, NULL, &err), KZ_OK);
    int64_t cost = 0;
    for (int i = 0; i < 500; i++) {
        char id[32];
        snprintf(id, sizeof id, "d-%d", i);
        int64_t r = tl_reserve(l, k, t, 100, id);
        struct kz_ledger_usage u;
        tl_usage(&u, id, t, k, "m", i % 100, TL_T0);
        cost += i % 100;
        T_EQ_INT(kz_ledger_writer_submit(f.w, r, &u, on_settled, &f.out, &err), KZ_OK);
    }
    kz_ledger_writer_stop(f.w); /* no flush first */
    T_EQ_INT(f.out.ok, 500);
    T_EQ_INT(usage_count(l, t), 500);
    T_EQ_INT(tl_open_reservations(l), 0);
    int64_t bal = 0;
    T_EQ_INT(kz_ledger_tenant_balance(l, t, &bal, &err), KZ_OK);
    T_EQ_INT(bal, 1000000 - cost);
    finish(l, &f.out);
}

static void failures(void)
{
    static struct fixture f;
    if (!setup(&f, "writer_fail", 200, 0))
        return;
    struct kz_ledger *l = f.l;
    int64_t t = f.t, k = f.k;
    struct kz_err err = {{0}};
    int64_t r1 = tl_reserve(l, k, t, 100, "x1");
    int64_t r2 = tl_reserve(l, k, t, 100, "x2");
    struct kz_ledger_usage u1, u2;
    tl_usage(&u1, "x1", t, k, "m", 10, TL_T0);
    tl_usage(&u2, "x2", t, k, "m", 20, TL_T0);

    /* Held past the busy timeout: both records fail, loudly, and their
     * reservations stay open (money still held, nothing unbilled). */
    struct tl_holder *other = lock_db(f.path);
    T_EQ_INT(kz_ledger_writer_submit(f.w, r1, &u1, on_settled, &f.out, &err), KZ_OK);
    T_EQ_INT(kz_ledger_writer_submit(f.w, r2, &u2, on_settled, &f.out, &err), KZ_OK);
    kz_ledger_writer_flush(f.w);
    unlock_db(other);
    T_EQ_INT(f.out.failed, 2);
    T_OK(strncmp(f.out.last_err, "ledger busy", 11) == 0, "%s", f.out.last_err);
    T_EQ_INT(tl_open_reservations(l), 2);
    T_EQ_INT(usage_count(l, t), 0);

    /* Submitted again they go through; the same request twice in one
     * batch is recorded once. */
    T_EQ_INT(kz_ledger_writer_submit(f.w, r1, &u1, on_settled, &f.out, &err), KZ_OK);
    T_EQ_INT(kz_ledger_writer_submit(f.w, r2, &u2, on_settled, &f.out, &err), KZ_OK);
    T_EQ_INT(kz_ledger_writer_submit(f.w, 0, &u2, on_settled, &f.out, &err), KZ_OK);
    kz_ledger_writer_stop(f.w);
    T_EQ_INT(f.out.ok, 2);
    T_EQ_INT(f.out.dup, 1);
    T_EQ_INT(usage_count(l, t), 2);
    T_EQ_INT(tl_open_reservations(l), 0);
    finish(l, &f.out);
}

int main(void)
{
    t_subtest("batching", batching);
    t_subtest("full_queue", full_queue);
    t_subtest("stop_drains", stop_drains);
    t_subtest("failures", failures);
    return t_done();
}
