/* SPDX-License-Identifier: MIT
 * Sliding-window rate limits (see ratelimit.h).
 */
#include "tenancy/ratelimit.h"

#include <string.h>

#include "core/alloc.h"

#define N_BUCKETS 1024u

struct slot {
    int64_t sec; /* which second this slot counts; stale when older than the window */
    int64_t requests, tokens;
};

struct entry {
    char kind;
    int64_t id;
    struct slot slots[KZ_RL_WINDOW_S];
    struct entry *next;
};

struct kz_rl {
    struct entry *buckets[N_BUCKETS];
};

kz_status kz_rl_new(struct kz_rl **out)
{
    *out = kz_calloc(1, sizeof **out);
    return *out ? KZ_OK : KZ_ENOMEM;
}

void kz_rl_free(struct kz_rl *rl)
{
    if (!rl)
        return;
    for (size_t i = 0; i < N_BUCKETS; i++)
        for (struct entry *e = rl->buckets[i], *n; e; e = n) {
            n = e->next;
            kz_free(e);
        }
    kz_free(rl);
}

static struct entry *find(struct kz_rl *rl, char kind, int64_t id, int create)
{
    uint64_t h = ((uint64_t)id * 0x9E3779B97F4A7C15ull) ^ (uint64_t)(unsigned char)kind;
    struct entry **b = &rl->buckets[(h >> 32) % N_BUCKETS];
    for (struct entry *e = *b; e; e = e->next)
        if (e->id == id && e->kind == kind)
            return e;
    if (!create)
        return NULL;
    struct entry *e = kz_calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->kind = kind;
    e->id = id;
    for (int i = 0; i < KZ_RL_WINDOW_S; i++)
        e->slots[i].sec = INT64_MIN;
    e->next = *b;
    *b = e;
    return e;
}

static int live(const struct slot *s, int64_t now_s) { return s->sec > now_s - KZ_RL_WINDOW_S; }

/* How long until the window's sum of field drops below limit: the oldest
 * slots leave first, each 60 s after its second began. */
static int64_t wait_ms(const struct entry *e, int64_t now_ms, int64_t limit, int tokens)
{
    int64_t now_s = now_ms / 1000, total = 0;
    for (int i = 0; i < KZ_RL_WINDOW_S; i++)
        if (live(&e->slots[i], now_s))
            total += tokens ? e->slots[i].tokens : e->slots[i].requests;
    if (total < limit)
        return 0;
    /* seconds from the oldest possible to now, each at most one slot */
    for (int64_t sec = now_s - KZ_RL_WINDOW_S + 1; sec <= now_s; sec++) {
        const struct slot *s = &e->slots[sec % KZ_RL_WINDOW_S];
        if (s->sec != sec)
            continue;
        total -= tokens ? s->tokens : s->requests;
        if (total < limit)
            return (sec + KZ_RL_WINDOW_S) * 1000 - now_ms;
    }
    return KZ_RL_WINDOW_S * 1000; /* not reached: the newest slot leaves last */
}

static void sums(const struct entry *e, int64_t now_s, int64_t *req, int64_t *tok)
{
    *req = *tok = 0;
    for (int i = 0; e && i < KZ_RL_WINDOW_S; i++)
        if (live(&e->slots[i], now_s)) {
            *req += e->slots[i].requests;
            *tok += e->slots[i].tokens;
        }
}

static void fill_state(const struct entry *e, const struct kz_rl_owner *o, int64_t now_ms, struct kz_rl_state *st)
{
    int64_t req, tok;
    sums(e, now_ms / 1000, &req, &tok);
    st->limit_requests = o->rpm;
    st->limit_tokens = o->tpm;
    st->remaining_requests = o->rpm > req ? o->rpm - req : 0;
    st->remaining_tokens = o->tpm > tok ? o->tpm - tok : 0;
    /* as OpenAI: until the window is back to its initial state (empty) */
    st->reset_requests_ms = o->rpm && e ? wait_ms(e, now_ms, 1, 0) : 0;
    st->reset_tokens_ms = o->tpm && e ? wait_ms(e, now_ms, 1, 1) : 0;
}

static struct slot *current(struct entry *e, int64_t now_s)
{
    struct slot *s = &e->slots[now_s % KZ_RL_WINDOW_S];
    if (s->sec != now_s) {
        s->sec = now_s;
        s->requests = s->tokens = 0;
    }
    return s;
}

int kz_rl_admit(struct kz_rl *rl, const struct kz_rl_owner *owners, int n, int64_t tokens, int64_t now_ms,
                int64_t *retry_ms, struct kz_rl_state *st)
{
    struct entry *es[4] = {0};
    int64_t now_s = now_ms / 1000, wait = 0;
    int ok = 1;
    if (n > 4)
        n = 4;
    for (int i = 0; i < n; i++) {
        const struct kz_rl_owner *o = &owners[i];
        if (!o->rpm && !o->tpm)
            continue;
        es[i] = find(rl, o->kind, o->id, 1);
        if (!es[i]) { /* out of memory: do not refuse service for it */
            continue;
        }
        int64_t req, tok;
        sums(es[i], now_s, &req, &tok);
        if (o->rpm && req >= o->rpm) {
            ok = 0;
            int64_t w = wait_ms(es[i], now_ms, o->rpm, 0);
            wait = w > wait ? w : wait;
        }
        if (o->tpm && tok >= o->tpm) {
            ok = 0;
            int64_t w = wait_ms(es[i], now_ms, o->tpm, 1);
            wait = w > wait ? w : wait;
        }
    }
    if (ok)
        for (int i = 0; i < n; i++)
            if (es[i]) {
                struct slot *s = current(es[i], now_s);
                s->requests++;
                s->tokens += tokens;
            }
    if (retry_ms)
        *retry_ms = ok ? 0 : wait;
    if (st) {
        memset(st, 0, sizeof *st);
        if (n > 0)
            fill_state(es[0], &owners[0], now_ms, st);
    }
    return ok;
}

void kz_rl_settle(struct kz_rl *rl, const struct kz_rl_owner *owners, int n, int64_t admitted_ms, int64_t estimated,
                  int64_t actual, int64_t now_ms)
{
    int64_t sec = admitted_ms / 1000, now_s = now_ms / 1000;
    for (int i = 0; i < n && i < 4; i++) {
        if (!owners[i].rpm && !owners[i].tpm)
            continue;
        struct entry *e = find(rl, owners[i].kind, owners[i].id, 0);
        if (!e)
            continue;
        struct slot *s = &e->slots[sec % KZ_RL_WINDOW_S];
        if (s->sec == sec && live(s, now_s)) {
            s->tokens += actual - estimated;
            if (s->tokens < 0)
                s->tokens = 0;
        }
    }
}
