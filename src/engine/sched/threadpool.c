/* SPDX-License-Identifier: MIT
 * Worker threads wait on a generation counter: a new job bumps it and wakes
 * everyone; each worker runs its share and the last one to finish signals
 * the caller. Workers spin briefly before sleeping because decode issues a
 * job every few microseconds and a futex round trip per job would dominate.
 */
#include "engine/sched/threadpool.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"

struct kz_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    kz_pool_fn fn;
    void *arg;
    _Atomic unsigned gen;     /* bumped per job */
    _Atomic int pending;      /* workers still running the current job */
    _Atomic int stop;
};

struct worker_arg {
    struct kz_pool *p;
    int ith;
};

/* A spin-wait step: PAUSE (x86) or YIELD (AArch64) tells the core this
 * thread is waiting, so a hyperthread beside it gets the core's issue
 * slots. That matters where the two threads of a 2-vCPU VM can land on one
 * physical core (docs/PERFORMANCE.md): a bare loop of loads competes with
 * the thread still multiplying. (On that VM generation measured the same
 * with and without: it shares a core only in some seconds.) */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

/* About 0.1 ms of spinning (a PAUSE is 25 ns on the AMD EPYC, up to 40 on
 * Intel cores), then sleep: decode issues a job every 0.1-0.3 ms, and an
 * idle server should not hold a core for long. */
#define SPIN_ITERS 4096

static void *worker(void *a)
{
    struct worker_arg *wa = a;
    struct kz_pool *p = wa->p;
    int ith = wa->ith;
    kz_free(wa);
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && !atomic_load(&p->stop) &&
               spins < SPIN_ITERS) {
            cpu_relax();
            spins++;
        }
        if (g == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv_work, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = g;
        p->fn(p->arg, ith, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

struct kz_pool *kz_pool_new(int n_threads)
{
    if (n_threads < 1)
        n_threads = 1;
    struct kz_pool *p = kz_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    p->threads = kz_calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) {
        kz_pool_free(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *wa = kz_malloc(sizeof *wa);
        if (wa) {
            wa->p = p;
            wa->ith = i;
        }
        if (!wa || pthread_create(&p->threads[i], NULL, worker, wa) != 0) {
            kz_free(wa);
            p->n = i; /* only join what started */
            kz_pool_free(p);
            return NULL;
        }
    }
    return p;
}

void kz_pool_free(struct kz_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        if (p->threads)
            pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    kz_free(p->threads);
    kz_free(p);
}

int kz_pool_size(const struct kz_pool *p) { return p->n; }

void kz_pool_run(struct kz_pool *p, kz_pool_fn fn, void *arg)
{
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0 && spins < SPIN_ITERS) {
        cpu_relax();
        spins++;
    }
    if (atomic_load(&p->pending) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) > 0)
            pthread_cond_wait(&p->cv_done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

int kz_cpu_cores_parse(FILE *f)
{
    char line[256];
    int phys = -1, n = 0, at_start = 1;
    int seen[1024][2];
    while (fgets(line, sizeof line, f)) {
        /* a line longer than the buffer comes in pieces: only a piece that
         * starts a line can name a key */
        int starts = at_start;
        at_start = strchr(line, '\n') != NULL;
        if (!starts)
            continue;
        /* only the two keys are read: other lines (flags, sizes) hold long
         * runs of digits that no int holds */
        int is_phys = strncmp(line, "physical id", 11) == 0, is_core = strncmp(line, "core id", 7) == 0;
        char *c = strchr(line, ':');
        if (!c || (!is_phys && !is_core))
            continue;
        long lv = strtol(c + 1, NULL, 10);
        int v = lv < 0 || lv > INT_MAX ? -1 : (int)lv;
        if (is_phys)
            phys = v;
        else if (n < 1024) {
            int dup = 0;
            for (int i = 0; i < n; i++)
                dup |= seen[i][0] == phys && seen[i][1] == v;
            if (!dup) {
                seen[n][0] = phys;
                seen[n][1] = v;
                n++;
            }
        }
    }
    return n;
}

int kz_cpu_physical_cores(void)
{
    /* Count distinct (physical id, core id) pairs; fall back to online CPUs. */
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    FILE *f = fopen("/proc/cpuinfo", "r");
    int n = f ? kz_cpu_cores_parse(f) : 0;
    if (f)
        fclose(f);
    if (n <= 0)
        return online > 0 ? (int)online : 1;
    return n;
}
