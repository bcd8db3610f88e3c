/* SPDX-License-Identifier: MIT
 * Arena: alignment, growth past a chunk, big one-off allocations, the limit,
 * and allocation failure at every step (no leak, NULL returned).
 */
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/arena.h"
#include "t.h"

static void basics(void)
{
    struct kz_arena a;
    kz_arena_init(&a, 0);
    char *s = kz_arena_strdup(&a, "hello");
    T_EQ_STR(s, "hello");
    for (int i = 1; i < 3000; i++) {
        void *p = kz_arena_alloc(&a, (size_t)(i % 97) + 1);
        T_OK(p && (uintptr_t)p % alignof(max_align_t) == 0, "aligned allocation %d", i);
        memset(p, 0xab, (size_t)(i % 97) + 1);
    }
    void *big = kz_arena_alloc(&a, 3 * KZ_ARENA_CHUNK);
    T_OK(big != NULL, "larger than a chunk");
    memset(big, 1, 3 * KZ_ARENA_CHUNK);
    T_EQ_STR(s, "hello");
    T_OK(kz_arena_used(&a) > 3 * KZ_ARENA_CHUNK, "accounting");
    kz_arena_deinit(&a);
    T_EQ_INT(kz_arena_used(&a), 0);
}

static void limit(void)
{
    struct kz_arena a;
    kz_arena_init(&a, 4 * KZ_ARENA_CHUNK);
    int n = 0;
    while (kz_arena_alloc(&a, 1000) && n < 1000)
        n++;
    T_OK(n > 10 && n < 40, "limit stops growth (%d allocations)", n);
    T_OK(kz_arena_used(&a) <= 4 * KZ_ARENA_CHUNK, "never above the limit");
    kz_arena_deinit(&a);
}

static void oom(void)
{
    for (long k = 1; k < 6; k++) {
        struct kz_arena a;
        kz_arena_init(&a, 0);
        kz_alloc_fail_after(k);
        int failed = 0;
        for (int i = 0; i < 20 && !failed; i++)
            failed = kz_arena_alloc(&a, KZ_ARENA_CHUNK) == NULL;
        kz_alloc_fail_after(0);
        T_OK(failed, "failure %ld reported as NULL", k);
        kz_arena_deinit(&a);
    }
}

int main(void)
{
    t_subtest("basics", basics);
    t_subtest("limit", limit);
    t_subtest("allocation failure", oom);
    return t_done();
}
