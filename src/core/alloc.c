/* SPDX-License-Identifier: MIT */
#include "core/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 0: off. >0: allocations left before failures start. */
static _Atomic long fail_countdown;

void kz_alloc_fail_after(long n) { atomic_store(&fail_countdown, n); }

/* Named no-op: a breakpoint target for injected failures. */
void kz_alloc__fault(void) {}

/* 0: no cap on the size of one allocation. */
static _Atomic size_t limit_single;

void kz_alloc_set_limit(size_t max_single) { atomic_store(&limit_single, max_single); }

/* Named no-op: a breakpoint target for an allocation above the cap. */
void kz_alloc__over_limit(void) {}

/* Abort rather than return NULL: callers treat NULL as plain OOM and would
 * report a clean error, hiding exactly the bug the cap is there to catch. */
static void check_limit(size_t size)
{
    size_t lim = atomic_load_explicit(&limit_single, memory_order_relaxed);
    if (lim && size > lim) {
        kz_alloc__over_limit();
        fprintf(stderr, "kz_alloc: a single allocation of %zu bytes is above the limit of %zu bytes\n", size, lim);
        abort();
    }
}

static int should_fail(void)
{
    long c = atomic_load(&fail_countdown);
    if (c <= 0)
        return 0;
    if (c == 1) {
        kz_alloc__fault();
        return 1; /* stays at 1: persistent failure until reset */
    }
    atomic_fetch_sub(&fail_countdown, 1);
    return 0;
}

void *kz_malloc(size_t size)
{
    check_limit(size);
    if (should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

void *kz_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    check_limit(n * size);
    if (should_fail())
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *kz_realloc(void *p, size_t size)
{
    check_limit(size);
    if (should_fail())
        return NULL;
    return realloc(p, size ? size : 1);
}

void kz_free(void *p) { free(p); }

char *kz_strndup(const char *s, size_t len)
{
    char *d = kz_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *kz_strdup(const char *s) { return kz_strndup(s, strlen(s)); }

void *kz_malloc_aligned(size_t size, size_t align)
{
    check_limit(size);
    if (should_fail())
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, align, size ? size : 1))
        return NULL;
    return p;
}

void kz_free_aligned(void *p) { free(p); }
