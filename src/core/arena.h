/* SPDX-License-Identifier: MIT
 * Arena: a bump allocator for data that lives exactly as long as one request
 * (parsed JSON fields, prompt text, response pieces). Everything is released
 * by one kz_arena_deinit; nothing inside needs its own free.
 *
 * Memory comes in chunks of at least KZ_ARENA_CHUNK bytes from kz_malloc;
 * a request larger than a chunk gets a chunk of its own. An optional limit
 * bounds the total, so a request cannot grow the server without bound.
 * Not thread-safe: one owner at a time.
 */
#ifndef KZ_ARENA_H
#define KZ_ARENA_H

#include <stddef.h>

#ifndef KZ_ARENA_CHUNK
#define KZ_ARENA_CHUNK 8192
#endif

struct kz_arena_chunk;

struct kz_arena {
    struct kz_arena_chunk *_head;
    size_t _used;  /* bytes handed out plus chunk overhead */
    size_t _limit; /* 0: none */
};

/* limit: maximum total bytes (0 for none). */
void kz_arena_init(struct kz_arena *a, size_t limit);
void kz_arena_deinit(struct kz_arena *a);

/* size bytes aligned for any type; NULL when out of memory or over the limit. */
void *kz_arena_alloc(struct kz_arena *a, size_t size);
/* A NUL-terminated copy of len bytes of s; NULL on failure. */
char *kz_arena_strndup(struct kz_arena *a, const char *s, size_t len);
char *kz_arena_strdup(struct kz_arena *a, const char *s);
size_t kz_arena_used(const struct kz_arena *a);

#endif
