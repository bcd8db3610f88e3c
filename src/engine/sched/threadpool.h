/* SPDX-License-Identifier: MIT
 * A fixed pool of worker threads that run one parallel job at a time.
 *
 * kz_pool_run(pool, fn, arg) calls fn(arg, ith, nth) once for every ith in
 * [0, nth), where nth = the pool's thread count and the caller itself runs
 * ith = 0; it returns when all calls have returned. Work is split by the
 * callee (rows by ith/nth), so kernels take no locks.
 *
 * Thread-safety: one kz_pool_run at a time per pool (the engine's scheduler
 * thread owns the pool).
 */
#ifndef KZ_THREADPOOL_H
#define KZ_THREADPOOL_H

#include <stdio.h>

typedef void (*kz_pool_fn)(void *arg, int ith, int nth);

struct kz_pool;

/* n_threads >= 1 (1 means: run everything on the caller). NULL on failure. */
struct kz_pool *kz_pool_new(int n_threads);
void kz_pool_free(struct kz_pool *p); /* NULL is a no-op; joins the workers */
int kz_pool_size(const struct kz_pool *p);
void kz_pool_run(struct kz_pool *p, kz_pool_fn fn, void *arg);

/* Number of physical cores of this machine (>= 1), for the -t default. */
int kz_cpu_physical_cores(void);

/* Distinct (physical id, core id) pairs in a /proc/cpuinfo text (0 if none). */
int kz_cpu_cores_parse(FILE *f);

/* Rows [*r0, *r1) of n for thread ith of nth. */
static inline void kz_split_rows(long n, int ith, int nth, long *r0, long *r1)
{
    long per = (n + nth - 1) / nth;
    long a = per * ith;
    long b = a + per;
    *r0 = a < n ? a : n;
    *r1 = b < n ? b : n;
}

#endif
