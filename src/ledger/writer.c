/* SPDX-License-Identifier: MIT
 * The settle writer thread (see writer.h): a ring of waiting records, and a
 * loop that commits whatever has gathered, up to max_batch, in one
 * transaction. While one batch waits for its fsync the next one gathers, so
 * the batch size grows with the load by itself.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "ledger/ledger_int.h"
#include "ledger/writer.h"

#define DEFAULT_CAPACITY 4096
#define DEFAULT_MAX_BATCH 256

struct entry {
    int64_t reservation;
    struct kz_ledger_usage u;
    kz_ledger_settled_fn done;
    void *ud;
};

struct kz_ledger_writer {
    struct kz_ledger *l;
    size_t capacity, max_batch;
    int linger_ms;
    struct entry *ring;   /* capacity entries; `count` waiting from `head` */
    size_t head, count;
    struct entry *batch;  /* max_batch: the records being committed */
    struct kz_ledger_settle_item *items;
    uint64_t submitted;   /* records accepted so far */
    uint64_t finished;    /* records whose callback has returned */
    int stopping;
    int idle;             /* the thread waits for a first record (not lingering) */
    pthread_mutex_t mu;
    pthread_cond_t wake;     /* records arrived, or stop */
    pthread_cond_t progress; /* `finished` grew */
    pthread_t thread;
};

static void commit_batch(struct kz_ledger_writer *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        memset(&w->items[i], 0, sizeof w->items[i]);
        w->items[i].reservation = w->batch[i].reservation;
        w->items[i].u = &w->batch[i].u;
    }
    struct kz_err err;
    err.msg[0] = '\0';
    /* The per-record outcomes are in the items; the batch status adds nothing. */
    (void)w->l->ops->settle(w->l, w->items, n, &err);
    for (size_t i = 0; i < n; i++) {
        const struct kz_ledger_settle_item *it = &w->items[i];
        if (w->batch[i].done)
            w->batch[i].done(w->batch[i].ud, it->rc, &it->err, it->rc ? NULL : &it->stored, it->duplicate);
    }
}

static void *run(void *arg)
{
    struct kz_ledger_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        w->idle = 1;
        while (w->count == 0 && !w->stopping)
            pthread_cond_wait(&w->wake, &w->mu);
        w->idle = 0;
        if (w->count == 0)
            break; /* stopping and drained */
        if (w->linger_ms > 0 && w->count < w->max_batch && !w->stopping) {
            /* let a batch gather: one commit (one fsync) for more records */
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_nsec += (long)w->linger_ms * 1000000L;
            dl.tv_sec += dl.tv_nsec / 1000000000L;
            dl.tv_nsec %= 1000000000L;
            while (w->count < w->max_batch && !w->stopping &&
                   pthread_cond_timedwait(&w->wake, &w->mu, &dl) == 0)
                ;
        }
        size_t n = w->count < w->max_batch ? w->count : w->max_batch;
        for (size_t i = 0; i < n; i++)
            w->batch[i] = w->ring[(w->head + i) % w->capacity];
        w->head = (w->head + n) % w->capacity;
        w->count -= n;
        pthread_mutex_unlock(&w->mu);
        commit_batch(w, n);
        pthread_mutex_lock(&w->mu);
        w->finished += n;
        pthread_cond_broadcast(&w->progress);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void destroy(struct kz_ledger_writer *w)
{
    kz_free(w->ring);
    kz_free(w->batch);
    kz_free(w->items);
    kz_free(w);
}

kz_status kz_ledger_writer_start(struct kz_ledger *l, const struct kz_ledger_writer_opts *opts,
                                 struct kz_ledger_writer **out, struct kz_err *err)
{
    if (!l || !out)
        return kz_err_set(err, KZ_EINVAL, "ledger writer: no ledger or no output");
    struct kz_ledger_writer *w = kz_calloc(1, sizeof *w);
    if (!w)
        return kz_err_set(err, KZ_ENOMEM, "ledger writer: out of memory");
    w->l = l;
    w->capacity = opts && opts->capacity ? opts->capacity : DEFAULT_CAPACITY;
    w->max_batch = opts && opts->max_batch ? opts->max_batch : DEFAULT_MAX_BATCH;
    w->linger_ms = opts && opts->linger_ms > 0 ? opts->linger_ms : 0;
    w->ring = kz_calloc(w->capacity, sizeof *w->ring);
    w->batch = kz_calloc(w->max_batch, sizeof *w->batch);
    w->items = kz_calloc(w->max_batch, sizeof *w->items);
    if (!w->ring || !w->batch || !w->items) {
        destroy(w);
        return kz_err_set(err, KZ_ENOMEM, "ledger writer: out of memory for %zu records", w->capacity);
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->progress, NULL);
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        pthread_cond_destroy(&w->progress);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->mu);
        destroy(w);
        return kz_err_set(err, KZ_EIO, "ledger writer: cannot start a thread");
    }
    *out = w;
    return KZ_OK;
}

kz_status kz_ledger_writer_submit(struct kz_ledger_writer *w, int64_t reservation, const struct kz_ledger_usage *u,
                                  kz_ledger_settled_fn done, void *ud, struct kz_err *err)
{
    if (!w || reservation < 0)
        return kz_err_set(err, KZ_EINVAL, "ledger writer: no writer or a negative reservation id");
    kz_status rc = kz_ledger_usage_validate(u, err);
    if (rc)
        return rc;
    pthread_mutex_lock(&w->mu);
    if (w->stopping)
        rc = kz_err_set(err, KZ_EINVAL, "ledger writer: stopping");
    else if (w->count == w->capacity)
        rc = kz_err_set(err, KZ_ELIMIT, "ledger queue full (%zu records waiting)", w->capacity);
    else {
        struct entry *e = &w->ring[(w->head + w->count) % w->capacity];
        e->reservation = reservation;
        e->u = *u;
        e->done = done;
        e->ud = ud;
        w->count++;
        w->submitted++;
        /* a lingering thread wakes at its deadline anyway: waking it for
         * every record would cost a futex call here and a context switch
         * there per request, for nothing */
        if (w->idle || w->count == w->max_batch)
            pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void kz_ledger_writer_flush(struct kz_ledger_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    uint64_t target = w->submitted;
    while (w->finished < target)
        pthread_cond_wait(&w->progress, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

void kz_ledger_writer_stop(struct kz_ledger_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->progress);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
    destroy(w);
}
