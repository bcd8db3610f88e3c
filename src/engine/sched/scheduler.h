/* SPDX-License-Identifier: MIT
 * The engine scheduler: one thread that owns a model's sequences and runs
 * continuous batching. Each step evaluates one batch holding the next token
 * of every generating sequence plus prompt chunks of newly admitted ones, so
 * a long prompt never stalls the others for more than one chunk and every
 * weight is read once per step for all sequences.
 *
 * Jobs enter through kz_sched_submit (any thread). Results come back through
 * the job's callback, called on the scheduler thread: zero or more TOKEN
 * events (or one EMBEDDING), then exactly one terminal event (DONE or
 * ERROR), after which the callback is never called again for that job; by
 * then the job's sequence slot is already free for the next submit. The
 * callback must be quick (copy and hand off, e.g. uv_async_send).
 */
#ifndef KZ_SCHEDULER_H
#define KZ_SCHEDULER_H

#include <stdint.h>

#include "core/status.h"
#include "engine/sample/sampler.h"

struct kz_model;
struct kz_tok;

struct kz_sched_config {
    int n_parallel; /* sequences generated at once (default 4) */
    int n_ctx;      /* positions per sequence (default: model's, capped at 4096) */
    int n_batch;    /* tokens per step (default 256) */
    int max_queue;  /* jobs waiting beyond n_parallel before submit refuses (default 64) */
    int n_threads;  /* kernel threads (default: physical cores) */
    const char *kv_type; /* KV cache type, "f16" (default) or "f32" (kz_kv_type_parse); read by kz_sched_new only */
};

enum kz_sched_event_type { KZ_SCHED_TOKEN, KZ_SCHED_EMBEDDING, KZ_SCHED_DONE, KZ_SCHED_ERROR };

struct kz_sched_event {
    enum kz_sched_event_type type;
    int32_t token;        /* TOKEN */
    const float *embd;    /* EMBEDDING: n_embd floats, valid during the call */
    int n_embd;
    const char *finish;   /* DONE: "stop" (end of text), "length" (max_tokens or context), "cancelled" */
    int n_prompt, n_gen;  /* DONE and ERROR: tokens evaluated / generated */
    const char *error;    /* ERROR: message */
};

typedef void (*kz_sched_cb)(void *ud, const struct kz_sched_event *ev);

struct kz_sched_job {
    const int32_t *prompt; /* copied by submit */
    int n_prompt;
    int max_tokens;        /* <= 0: until end of text or the context is full */
    struct kz_sampler_params sampling;
    int embedding;         /* 1: evaluate the prompt only and return its pooled embedding */
    kz_sched_cb cb;
    void *ud;
};

struct kz_sched_stats {
    int queued, active, n_parallel;
    long kv_used, kv_total;           /* positions */
    unsigned long long tokens_in, tokens_out;
};

struct kz_sched;

/* Starts the scheduler thread. model and tok are borrowed and must outlive it. */
kz_status kz_sched_new(const struct kz_model *m, const struct kz_tok *tok, const struct kz_sched_config *cfg,
                       struct kz_sched **out, struct kz_err *err);
/* Cancels every job (each gets its terminal event), stops and joins the thread. */
void kz_sched_free(struct kz_sched *s);

/* Queues a job. KZ_ELIMIT when the queue is full (the server answers 503) or
 * the prompt does not fit a sequence (400); KZ_EINVAL for an empty prompt.
 * On success *id identifies the job for kz_sched_cancel. Thread-safe. */
kz_status kz_sched_submit(struct kz_sched *s, const struct kz_sched_job *job, uint64_t *id, struct kz_err *err);
/* Asks a job to stop; its terminal event follows soon (finish "cancelled").
 * Unknown or finished ids are ignored. Thread-safe. */
void kz_sched_cancel(struct kz_sched *s, uint64_t id);
void kz_sched_get_stats(struct kz_sched *s, struct kz_sched_stats *st);
int kz_sched_n_ctx(const struct kz_sched *s);

#endif
