/* SPDX-License-Identifier: MIT
 * Continuous batching (see scheduler.h). One thread; the only shared state
 * is the job queue and the cancel flags, both under `mu`.
 *
 * A slot is one sequence: a kz_ctx (KV cache) plus the job it serves. Slot
 * life: PREFILL (prompt chunks) -> DECODE (one token per step) -> free.
 */
#include "engine/sched/scheduler.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/model/model.h"
#include "engine/sched/threadpool.h"
#include "engine/tok/tok.h"

struct job {
    struct kz_sched_job j;   /* prompt points at our own copy */
    int32_t *prompt;
    uint64_t id;
    _Atomic int cancelled;
    int oom;                 /* admission could not allocate its sampler */
    struct job *next;        /* queue link */
};

enum slot_state { SLOT_FREE, SLOT_PREFILL, SLOT_DECODE };

struct slot {
    enum slot_state state;
    struct job *job;
    struct kz_ctx *ctx;
    struct kz_sampler *smp;
    int n_fed;      /* prompt tokens already in the batch pipeline */
    int n_gen;
    int32_t next;   /* sampled token to feed in the next step */
    int taken;      /* holds a job; changed only under mu (state is the scheduler thread's) */
};

struct kz_sched {
    const struct kz_model *m;
    const struct kz_tok *tok;
    struct kz_sched_config cfg;
    struct kz_pool *pool;
    struct kz_work *work;
    struct slot *slots;
    struct kz_batch_item *items;
    int *item_slot;  /* (n_batch) slot of each batch item */
    float *embd;     /* (n_embd) */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *q_head, *q_tail;
    int n_queued;
    int stop;
    uint64_t next_id;
    /* stats, written by the scheduler thread under mu */
    int active;
    long kv_used;
    unsigned long long tokens_in, tokens_out;
    unsigned long long step_out; /* generated tokens, scheduler thread only */
};

/* Frees the slot's job. The pointer is cleared under mu because
 * kz_sched_cancel reads slot jobs from other threads; only this thread
 * frees, so reading without mu here is safe. */
static void release(struct kz_sched *s, struct slot *sl)
{
    struct job *jb = sl->job;
    pthread_mutex_lock(&s->mu);
    sl->job = NULL;
    sl->state = SLOT_FREE;
    sl->taken = 0;
    pthread_mutex_unlock(&s->mu);
    kz_free(jb->prompt);
    kz_free(jb);
    kz_sampler_free(sl->smp);
    sl->smp = NULL;
}

/* Ends the slot's job with a terminal event. The slot is released first,
 * so a client woken by the event can count on the capacity being back. */
static void terminate(struct kz_sched *s, struct slot *sl, struct kz_sched_event *ev)
{
    kz_sched_cb cb = sl->job->j.cb;
    void *ud = sl->job->j.ud;
    char msg[KZ_ERR_MSG_SIZE];
    if (ev->error) { /* the message may live in the job being freed */
        snprintf(msg, sizeof msg, "%s", ev->error);
        ev->error = msg;
    }
    release(s, sl);
    cb(ud, ev);
}

static void finish(struct kz_sched *s, struct slot *sl, const char *why)
{
    struct kz_sched_event ev = {.type = KZ_SCHED_DONE, .finish = why, .n_prompt = sl->job->j.n_prompt,
                                .n_gen = sl->n_gen};
    terminate(s, sl, &ev);
}

/* Moves queued jobs into free slots. Called with mu held. */
static void admit(struct kz_sched *s)
{
    for (int i = 0; i < s->cfg.n_parallel && s->q_head; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->state != SLOT_FREE)
            continue;
        struct job *jb = s->q_head;
        s->q_head = jb->next;
        if (!s->q_head)
            s->q_tail = NULL;
        s->n_queued--;
        /* callbacks never run under mu (they may call kz_sched_cancel), so
         * an allocation failure here is reported by the loop */
        sl->smp = kz_sampler_new(&jb->j.sampling, kz_model_config(s->m)->n_vocab);
        jb->oom = sl->smp == NULL;
        for (int k = 0; sl->smp && k < jb->j.n_prompt; k++)
            kz_sampler_accept(sl->smp, jb->prompt[k]);
        kz_ctx_reset(sl->ctx);
        sl->job = jb;
        sl->taken = 1;
        sl->state = SLOT_PREFILL;
        sl->n_fed = 0;
        sl->n_gen = 0;
    }
}

/* Fills the batch: decode tokens first (they are latency-critical), then
 * prompt chunks in slot order up to n_batch tokens. */
static int build_batch(struct kz_sched *s, int *n_prompt_tok)
{
    int n = 0;
    for (int i = 0; i < s->cfg.n_parallel; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->state != SLOT_DECODE)
            continue;
        s->items[n] = (struct kz_batch_item){sl->ctx, sl->next, KZ_BATCH_LOGITS};
        s->item_slot[n++] = i;
    }
    for (int i = 0; i < s->cfg.n_parallel && n < s->cfg.n_batch; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->state != SLOT_PREFILL)
            continue;
        int left = sl->job->j.n_prompt - sl->n_fed;
        int take = left < s->cfg.n_batch - n ? left : s->cfg.n_batch - n;
        for (int k = 0; k < take; k++) {
            int last = sl->n_fed + k == sl->job->j.n_prompt - 1;
            unsigned fl = sl->job->j.embedding ? KZ_BATCH_EMBD : (last ? KZ_BATCH_LOGITS : 0u);
            s->items[n] = (struct kz_batch_item){sl->ctx, sl->job->prompt[sl->n_fed + k], fl};
            s->item_slot[n++] = i;
        }
        sl->n_fed += take;
        *n_prompt_tok += take;
    }
    return n;
}

/* After a step: sample for every slot whose last item asked for logits. */
static void after_step(struct kz_sched *s, int n)
{
    for (int t = 0; t < n; t++) {
        struct slot *sl = &s->slots[s->item_slot[t]];
        int last_of_slot = t == n - 1 || s->item_slot[t + 1] != s->item_slot[t];
        if (!last_of_slot || sl->state == SLOT_FREE)
            continue;
        if (atomic_load(&sl->job->cancelled)) {
            finish(s, sl, "cancelled");
            continue;
        }
        if (sl->state == SLOT_PREFILL && sl->n_fed < sl->job->j.n_prompt)
            continue; /* more prompt chunks to come */
        if (sl->job->j.embedding) {
            struct kz_err err = {{0}};
            kz_ctx_embedding(sl->ctx, s->embd, &err);
            struct kz_sched_event ev = {.type = KZ_SCHED_EMBEDDING, .embd = s->embd,
                                        .n_embd = kz_model_config(s->m)->n_embd};
            sl->job->j.cb(sl->job->j.ud, &ev);
            finish(s, sl, "stop");
            continue;
        }
        sl->state = SLOT_DECODE;
        int32_t tok = kz_sampler_sample(sl->smp, kz_ctx_logits(sl->ctx));
        sl->n_gen++;
        s->step_out++;
        if (kz_tok_is_eog(s->tok, tok)) {
            finish(s, sl, "stop");
            continue;
        }
        struct kz_sched_event ev = {.type = KZ_SCHED_TOKEN, .token = tok};
        sl->job->j.cb(sl->job->j.ud, &ev);
        kz_sampler_accept(sl->smp, tok);
        sl->next = tok;
        if ((sl->job->j.max_tokens > 0 && sl->n_gen >= sl->job->j.max_tokens) ||
            kz_ctx_n_past(sl->ctx) >= kz_ctx_n_ctx(sl->ctx)) {
            finish(s, sl, "length");
            continue;
        }
    }
}

static void *loop(void *arg)
{
    struct kz_sched *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        admit(s);
        int busy = 0;
        for (int i = 0; i < s->cfg.n_parallel; i++)
            busy += s->slots[i].state != SLOT_FREE;
        while (!busy && !s->q_head && !s->stop) {
            s->active = 0;
            pthread_cond_wait(&s->cv, &s->mu);
            admit(s);
            for (int i = 0; i < s->cfg.n_parallel; i++)
                busy += s->slots[i].state != SLOT_FREE;
        }
        int stopping = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stopping)
            break;
        /* jobs cancelled before their first step end here without a batch */
        for (int i = 0; i < s->cfg.n_parallel; i++) {
            struct slot *sl = &s->slots[i];
            if (sl->state == SLOT_FREE)
                continue;
            if (sl->job->oom) {
                struct kz_sched_event ev = {.type = KZ_SCHED_ERROR, .error = "out of memory",
                                            .n_prompt = sl->job->j.n_prompt};
                terminate(s, sl, &ev);
            } else if (atomic_load(&sl->job->cancelled)) {
                finish(s, sl, "cancelled");
            }
        }
        int n_prompt_tok = 0;
        unsigned long long out_before = s->step_out;
        int n = build_batch(s, &n_prompt_tok);
        if (n > 0) {
            struct kz_err err = {{0}};
            kz_status rc = kz_model_eval_batch(s->m, s->work, s->pool, s->items, n, &err);
            if (rc) {
                /* a model error fails every sequence in the batch */
                for (int i = 0; i < s->cfg.n_parallel; i++) {
                    struct slot *sl = &s->slots[i];
                    if (sl->state == SLOT_FREE)
                        continue;
                    struct kz_sched_event ev = {.type = KZ_SCHED_ERROR, .error = err.msg,
                                                .n_prompt = sl->job->j.n_prompt, .n_gen = sl->n_gen};
                    terminate(s, sl, &ev);
                }
                n_prompt_tok = 0;
            } else {
                after_step(s, n);
            }
        }
        pthread_mutex_lock(&s->mu);
        s->tokens_in += (unsigned long long)n_prompt_tok;
        s->tokens_out += s->step_out - out_before;
        int act = 0;
        long kv = 0;
        for (int i = 0; i < s->cfg.n_parallel; i++)
            if (s->slots[i].state != SLOT_FREE) {
                act++;
                kv += kz_ctx_n_past(s->slots[i].ctx);
            }
        s->active = act;
        s->kv_used = kv;
        pthread_mutex_unlock(&s->mu);
    }
    /* shutting down: every job still held gets its terminal event */
    for (int i = 0; i < s->cfg.n_parallel; i++)
        if (s->slots[i].state != SLOT_FREE)
            finish(s, &s->slots[i], "cancelled");
    pthread_mutex_lock(&s->mu);
    struct job *q = s->q_head;
    s->q_head = s->q_tail = NULL;
    s->n_queued = 0;
    pthread_mutex_unlock(&s->mu);
    while (q) {
        struct job *nx = q->next;
        struct kz_sched_event ev = {.type = KZ_SCHED_DONE, .finish = "cancelled", .n_prompt = q->j.n_prompt};
        q->j.cb(q->j.ud, &ev);
        kz_free(q->prompt);
        kz_free(q);
        q = nx;
    }
    return NULL;
}

/* Frees what kz_sched_new made, any part of it (the thread has ended or
 * never started). */
static void destroy(struct kz_sched *s)
{
    for (int i = 0; s->slots && i < s->cfg.n_parallel; i++)
        kz_ctx_free(s->slots[i].ctx);
    kz_free(s->slots);
    kz_free(s->items);
    kz_free(s->item_slot);
    kz_free(s->embd);
    kz_work_free(s->work);
    kz_pool_free(s->pool);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    kz_free(s);
}

kz_status kz_sched_new(const struct kz_model *m, const struct kz_tok *tok, const struct kz_sched_config *cfg,
                       struct kz_sched **out, struct kz_err *err)
{
    *out = NULL;
    struct kz_sched *s = kz_calloc(1, sizeof *s);
    if (!s)
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    s->m = m;
    s->tok = tok;
    s->cfg = *cfg;
    if (s->cfg.n_parallel <= 0)
        s->cfg.n_parallel = 4;
    if (s->cfg.n_parallel > 256)
        s->cfg.n_parallel = 256;
    if (s->cfg.n_ctx <= 0)
        s->cfg.n_ctx = kz_model_config(m)->n_ctx_train < 4096 ? kz_model_config(m)->n_ctx_train : 4096;
    if (s->cfg.n_batch <= 0)
        s->cfg.n_batch = 256;
    if (s->cfg.n_batch < s->cfg.n_parallel)
        s->cfg.n_batch = s->cfg.n_parallel;
    if (s->cfg.max_queue <= 0)
        s->cfg.max_queue = 64;
    s->next_id = 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    kz_status rc = KZ_OK;
    s->pool = kz_pool_new(s->cfg.n_threads > 0 ? s->cfg.n_threads : kz_cpu_physical_cores());
    s->slots = kz_calloc((size_t)s->cfg.n_parallel, sizeof *s->slots);
    s->items = kz_calloc((size_t)s->cfg.n_batch, sizeof *s->items);
    s->item_slot = kz_calloc((size_t)s->cfg.n_batch, sizeof *s->item_slot);
    s->embd = kz_calloc((size_t)kz_model_config(m)->n_embd, sizeof *s->embd);
    if (!s->pool || !s->slots || !s->items || !s->item_slot || !s->embd) {
        rc = kz_err_set(err, KZ_ENOMEM, "out of memory starting the scheduler");
        goto fail;
    }
    uint32_t kv_type;
    rc = kz_kv_type_parse(s->cfg.kv_type, &kv_type, err);
    if (!rc)
        rc = kz_work_new(m, s->cfg.n_batch, s->cfg.n_parallel, s->cfg.n_ctx, &s->work, err);
    for (int i = 0; !rc && i < s->cfg.n_parallel; i++)
        rc = kz_ctx_new(m, s->cfg.n_ctx, kv_type, s->pool, &s->slots[i].ctx, err);
    if (rc)
        goto fail;
    if (pthread_create(&s->thread, NULL, loop, s) != 0) {
        rc = kz_err_set(err, KZ_EIO, "cannot start the scheduler thread");
        goto fail;
    }
    *out = s;
    return KZ_OK;
fail:
    destroy(s);
    return rc;
}

void kz_sched_free(struct kz_sched *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    destroy(s);
}

kz_status kz_sched_submit(struct kz_sched *s, const struct kz_sched_job *job, uint64_t *id, struct kz_err *err)
{
    if (job->n_prompt <= 0)
        return kz_err_set(err, KZ_EINVAL, "the prompt is empty");
    if (job->n_prompt >= s->cfg.n_ctx)
        return kz_err_set(err, KZ_ELIMIT, "the prompt is %d tokens; this model's context holds %d", job->n_prompt,
                          s->cfg.n_ctx);
    struct job *jb = kz_calloc(1, sizeof *jb);
    int32_t *p = kz_malloc((size_t)job->n_prompt * sizeof *p);
    if (!jb || !p) {
        kz_free(jb);
        kz_free(p);
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    }
    memcpy(p, job->prompt, (size_t)job->n_prompt * sizeof *p);
    jb->j = *job;
    jb->prompt = p;
    jb->j.prompt = p;
    pthread_mutex_lock(&s->mu);
    /* slot states change under mu (admit, release), so this count is exact;
     * the `active` statistic may lag a step behind */
    int free_slots = 0;
    for (int i = 0; i < s->cfg.n_parallel; i++)
        free_slots += !s->slots[i].taken;
    if (s->stop || s->n_queued >= s->cfg.max_queue + free_slots) {
        pthread_mutex_unlock(&s->mu);
        kz_free(p);
        kz_free(jb);
        return kz_err_set(err, KZ_ELIMIT, "the server is busy: %d requests are waiting", s->cfg.max_queue);
    }
    jb->id = s->next_id++;
    if (s->q_tail)
        s->q_tail->next = jb;
    else
        s->q_head = jb;
    s->q_tail = jb;
    s->n_queued++;
    *id = jb->id;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return KZ_OK;
}

void kz_sched_cancel(struct kz_sched *s, uint64_t id)
{
    pthread_mutex_lock(&s->mu);
    for (struct job *q = s->q_head, *prev = NULL; q; prev = q, q = q->next) {
        if (q->id != id)
            continue;
        /* still queued: the scheduler thread has never seen it; mark it so
         * it finishes at its first step (keeps one thread calling back) */
        atomic_store(&q->cancelled, 1);
        (void)prev;
        pthread_mutex_unlock(&s->mu);
        return;
    }
    for (int i = 0; i < s->cfg.n_parallel; i++) {
        struct job *jb = s->slots[i].job;
        if (jb && jb->id == id)
            atomic_store(&jb->cancelled, 1);
    }
    pthread_mutex_unlock(&s->mu);
}

void kz_sched_get_stats(struct kz_sched *s, struct kz_sched_stats *st)
{
    pthread_mutex_lock(&s->mu);
    st->queued = s->n_queued;
    st->active = s->active;
    st->n_parallel = s->cfg.n_parallel;
    st->kv_used = s->kv_used;
    st->kv_total = (long)s->cfg.n_parallel * s->cfg.n_ctx;
    st->tokens_in = s->tokens_in;
    st->tokens_out = s->tokens_out;
    pthread_mutex_unlock(&s->mu);
}

int kz_sched_n_ctx(const struct kz_sched *s) { return s->cfg.n_ctx; }
