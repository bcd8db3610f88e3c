/* SPDX-License-Identifier: MIT
 * Requests-per-minute and tokens-per-minute limits, in memory.
 *
 * Each limited owner (a key or a tenant) has a sliding window of the last 60
 * seconds in one-second slots. A request is admitted when, over that window,
 *   requests so far < rpm     and     tokens so far < tpm
 * and is then counted at once: one request, plus its estimated tokens
 * (prompt bytes and max_tokens, see tenancy.c), which kz_rl_settle replaces
 * by the real figure when it ends. So RPM holds exactly, and TPM is exceeded
 * by at most the one request that crossed it (the limit is checked before a
 * request whose size is not known yet).
 *
 * The window forgets a slot 60 s after it began: a refused client learns
 * when enough of the oldest slots leave for it to fit (Retry-After), and the
 * x-ratelimit-reset-* figures say when the window is empty again (as
 * OpenAI's do).
 *
 * State is per process: nodes sharing one ledger limit separately.
 *
 * Threads: one thread (the server loop). Ownership: the table is the
 * caller's (kz_rl_free); an owner's entry is created on its first limited
 * request and kept (a few hundred bytes per key or tenant).
 */
#ifndef KZ_RATELIMIT_H
#define KZ_RATELIMIT_H

#include <stdint.h>

#include "core/status.h"

#define KZ_RL_WINDOW_S 60

struct kz_rl; /* opaque */

/* What the window looked like for one owner at the last check. */
struct kz_rl_state {
    int64_t limit_requests, remaining_requests; /* limit 0: unlimited */
    int64_t limit_tokens, remaining_tokens;
    int64_t reset_requests_ms;  /* until the window is empty again (0: it is) */
    int64_t reset_tokens_ms;
};

kz_status kz_rl_new(struct kz_rl **out);
void kz_rl_free(struct kz_rl *rl); /* NULL is a no-op */

/* Owners are named by a kind (e.g. 'k' key, 't' tenant) and an id. */
struct kz_rl_owner {
    char kind;
    int64_t id;
    int64_t rpm, tpm; /* 0: that limit is off */
};

/* Checks every owner (n <= 4) and, when all admit, counts the request and
 * `tokens` against each; 1 then. 0 when one refuses (nothing counted);
 * *retry_ms says when the refusing window has room. st (may be NULL) gets
 * the figures of owners[0] after the decision. */
int kz_rl_admit(struct kz_rl *rl, const struct kz_rl_owner *owners, int n, int64_t tokens, int64_t now_ms,
                int64_t *retry_ms, struct kz_rl_state *st);

/* A request admitted at admitted_ms ended: its token count changes from
 * `estimated` to `actual` (the slot it was counted in keeps it, if still in
 * the window). */
void kz_rl_settle(struct kz_rl *rl, const struct kz_rl_owner *owners, int n, int64_t admitted_ms, int64_t estimated,
                  int64_t actual, int64_t now_ms);

#endif
