/* SPDX-License-Identifier: MIT
 * The local provider: this node's engine (model, tokenizer, chat template,
 * continuous-batching scheduler) behind the provider interface.
 *
 * The model loads on a libuv worker thread; until it is ready, attempts
 * fail with a retryable 503 (another deployment may answer), and a model
 * that failed to load fails every attempt. An attempt tokenizes on the
 * loop thread, submits one scheduler job per prompt, and turns tokens into
 * text events: stop sequences are matched here across token boundaries
 * (text that could still become a stop sequence, or that ends inside a
 * UTF-8 character, is held back), because only the engine needs it —
 * remote providers apply `stop` themselves.
 *
 * Threads: scheduler events are copied on the scheduler thread and posted
 * to the loop (post_fn); everything else runs on the loop thread.
 */
#ifndef KZ_LOCAL_H
#define KZ_LOCAL_H

#include <uv.h>

#include "engine/sched/scheduler.h"
#include "router/provider.h"

struct kz_local_opts {
    const char *model_path;
    int n_parallel, n_ctx, n_threads, max_queue; /* 0: defaults */
    const char *kv_type; /* "f16" or "f32" (NULL: f16); static storage */
    /* queues fn(arg) on the loop thread from any thread; nonzero when the
     * loop is gone (then the caller runs fn itself) */
    int (*post)(void *post_ud, void (*fn)(void *), void *arg);
    void *post_ud;
    /* called on the loop thread once loading ended (rc KZ_OK or not; msg
     * says why it failed) */
    void (*on_loaded)(void *ud, kz_status rc, const char *msg);
    void *ud;
};

kz_status kz_local_new(const struct kz_cfg_provider *cfg, const struct kz_local_opts *o, uv_loop_t *loop,
                       struct kz_provider **out, struct kz_err *err);

/* 0 loading, 1 ready, -1 failed. */
int kz_local_state(const struct kz_provider *p);
/* The model file it serves (its own copy). */
const char *kz_local_model_path(const struct kz_provider *p);
/* The scheduler once ready (metrics), else NULL. */
struct kz_sched *kz_local_sched(const struct kz_provider *p);

#endif
