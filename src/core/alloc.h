/* SPDX-License-Identifier: MIT
 * All heap allocation goes through here: one place for accounting and for
 * test fault injection. kz_free(NULL) is a no-op; KZ_FREE frees and clears.
 *
 * Fault injection: kz_alloc_fail_after(n) makes the n-th following
 * allocation (1-based) and every later one fail until reset with 0.
 * kz_alloc__fault() is the named breakpoint target hit on each injected
 * failure. Not thread-safe to reconfigure while other threads allocate.
 *
 * Size cap: kz_alloc_set_limit(n) makes any single request above n bytes
 * print a message and abort. Fuzz targets and tests set it so that an input
 * which makes us allocate out of proportion is a finding, not a slow run;
 * production leaves it off (0).
 */
#ifndef KZ_ALLOC_H
#define KZ_ALLOC_H

#include <stddef.h>

void *kz_malloc(size_t size);
void *kz_calloc(size_t n, size_t size);   /* checks n*size for overflow */
void *kz_realloc(void *p, size_t size);   /* on failure p stays valid */
void kz_free(void *p);
char *kz_strdup(const char *s);
char *kz_strndup(const char *s, size_t len);

/* Memory aligned to `align` (a power of two >= sizeof(void*)); free with kz_free_aligned. */
void *kz_malloc_aligned(size_t size, size_t align);
void kz_free_aligned(void *p);

void kz_alloc_fail_after(long n);
void kz_alloc__fault(void);

/* Aborts (with a message on stderr) on any later single allocation larger
 * than max_single bytes; 0 removes the cap. Covers kz_malloc, kz_calloc
 * (n * size), kz_realloc and kz_malloc_aligned. Meant for test and fuzz
 * programs. kz_alloc__over_limit() is the breakpoint target hit first. */
void kz_alloc_set_limit(size_t max_single);
void kz_alloc__over_limit(void);

#define KZ_FREE(p) do { kz_free(p); (p) = NULL; } while (0)

#endif
