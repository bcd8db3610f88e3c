/* SPDX-License-Identifier: MIT */
#include "core/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"

struct kz_arena_chunk {
    struct kz_arena_chunk *next;
    size_t size; /* usable bytes after the header */
    size_t off;  /* bytes used */
    alignas(max_align_t) unsigned char data[];
};

void kz_arena_init(struct kz_arena *a, size_t limit)
{
    a->_head = NULL;
    a->_used = 0;
    a->_limit = limit;
}

void kz_arena_deinit(struct kz_arena *a)
{
    struct kz_arena_chunk *c = a->_head;
    while (c) {
        struct kz_arena_chunk *n = c->next;
        kz_free(c);
        c = n;
    }
    a->_head = NULL;
    a->_used = 0;
}

void *kz_arena_alloc(struct kz_arena *a, size_t size)
{
    const size_t al = alignof(max_align_t);
    if (size > SIZE_MAX / 2)
        return NULL;
    size = (size + al - 1) & ~(al - 1);
    struct kz_arena_chunk *c = a->_head;
    if (!c || c->size - c->off < size) {
        size_t want = size > KZ_ARENA_CHUNK ? size : KZ_ARENA_CHUNK;
        if (a->_limit && a->_used + want + sizeof *c > a->_limit)
            return NULL;
        c = kz_malloc(sizeof *c + want);
        if (!c)
            return NULL;
        c->size = want;
        c->off = 0;
        /* a big one-off chunk goes behind the current one so the current
         * chunk's free space is still used by later small requests */
        if (size > KZ_ARENA_CHUNK && a->_head) {
            c->next = a->_head->next;
            a->_head->next = c;
        } else {
            c->next = a->_head;
            a->_head = c;
        }
        a->_used += sizeof *c + want;
    }
    void *p = c->data + c->off;
    c->off += size;
    return p;
}

char *kz_arena_strndup(struct kz_arena *a, const char *s, size_t len)
{
    char *d = kz_arena_alloc(a, len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *kz_arena_strdup(struct kz_arena *a, const char *s) { return kz_arena_strndup(a, s, strlen(s)); }

size_t kz_arena_used(const struct kz_arena *a) { return a->_used; }
