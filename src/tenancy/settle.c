/* SPDX-License-Identifier: MIT
 * Settlement: from an answered request to its ledger record.
 *
 *   kz_tenancy_settle (loop)  the hold of the request becomes pending cost,
 *                             the record is appended to the journal (one
 *                             write(): after it the answer may go out) and
 *                             handed to the ledger's writer thread
 *   writer thread             commits a batch, posts each outcome to the loop
 *   on the loop               committed: the pending cost goes (the ledger
 *                             has it now) and, once nothing is outstanding,
 *                             the journal is emptied; failed (locked, full):
 *                             resubmitted a second later, still counted
 *
 * A record is outstanding from its journal write to its commit; the oldest
 * one's age is the backlog admission refuses on (tenancy.c), so an answer is
 * never given that the ledger cannot catch up with.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "tenancy/tenancy_int.h"

#define RETRY_MS 1000

static void unlink_out(struct kz_tenancy *t, struct kz_outstanding *o)
{
    if (o->prev)
        o->prev->next = o->next;
    else
        t->out_head = o->next;
    if (o->next)
        o->next->prev = o->prev;
    else
        t->out_tail = o->prev;
    t->n_out--;
}

static void hold_pending(struct kz_tenancy *t, const struct kz_ledger_usage *u, int64_t delta)
{
    struct kz_hold *hk = u->key_id ? kz_hold_get(t, 'k', u->key_id) : NULL, *ht = kz_hold_get(t, 't', u->tenant_id);
    if (hk)
        hk->pending += delta;
    if (ht)
        ht->pending += delta;
}

static void submit(struct kz_outstanding *o);
static void on_retry(uv_timer_t *h);

/* On the loop: the writer's word on one record. */
static void committed_on_loop(void *arg)
{
    struct kz_outstanding *o = arg;
    struct kz_tenancy *t = o->t;
    o->in_writer = 0;
    if (o->rc == KZ_EINVAL) {
        /* the ledger refuses this record for good (it names a key or tenant
         * that is not there): say so with its figures, and stop trying */
        fprintf(stderr,
                "kyozon: the ledger refused the record of request '%s' (tenant %lld, key %lld, %lld+%lld tokens, "
                "cost %lld micro-USD)\n",
                o->u.request_id, (long long)o->u.tenant_id, (long long)o->u.key_id, (long long)o->u.input_tokens,
                (long long)o->u.output_tokens, (long long)o->u.cost);
        hold_pending(t, &o->u, -o->u.cost);
    } else if (o->rc) {
        if (!uv_is_active((uv_handle_t *)t->retry_timer))
            uv_timer_start(t->retry_timer, on_retry, RETRY_MS, 0);
        return;
    }
    if (!o->rc)
        hold_pending(t, &o->u, -o->u.cost);
    unlink_out(t, o);
    kz_free(o);
    if (!t->out_head)
        kz_journal_reset(t->journal);
}

/* On the writer thread. */
static void on_written(void *ud, kz_status rc, const struct kz_err *err, const struct kz_ledger_usage *stored,
                       int duplicate)
{
    (void)err;
    (void)stored;
    (void)duplicate; /* already in the ledger (a replay): recorded once, which is what counts */
    struct kz_outstanding *o = ud;
    o->rc = rc;
    /* when the server is gone, the record stays outstanding and in the
     * journal; the next start settles it again */
    (void)kz_http_server_post(o->t->http, committed_on_loop, o);
}

static void submit(struct kz_outstanding *o)
{
    struct kz_err err = {{0}};
    o->in_writer = 1;
    if (kz_ledger_writer_submit(o->t->writer, 0, &o->u, on_written, o, &err) != KZ_OK) {
        o->in_writer = 0; /* the queue is full: try again shortly */
        if (!uv_is_active((uv_handle_t *)o->t->retry_timer))
            uv_timer_start(o->t->retry_timer, on_retry, RETRY_MS, 0);
    }
}

static void on_retry(uv_timer_t *h)
{
    struct kz_tenancy *t = h->data;
    for (struct kz_outstanding *o = t->out_head; o; o = o->next)
        if (!o->in_writer)
            submit(o);
}

static kz_status replay_one(void *ud, const struct kz_ledger_usage *u, struct kz_err *err)
{
    return kz_ledger_settle(ud, 0, u, NULL, NULL, err);
}

kz_status kz_settle_open(struct kz_tenancy *t, const char *db, struct kz_err *err)
{
    char path[4200];
    if (strncmp(db, "sqlite://", 9) == 0)
        db += 9;
    snprintf(path, sizeof path, "%s-kzsettle", db);
    long skipped = 0;
    kz_status rc = kz_journal_open(path, replay_one, t->ledger, &t->journal, &skipped, err);
    if (rc)
        return rc;
    if (skipped)
        fprintf(stderr, "kyozon: %ld unreadable lines in the settle journal %s were skipped\n", skipped, path);
    /* its own allocation: a closing handle must outlive the tenancy until
     * the loop has finished closing it */
    t->retry_timer = kz_malloc(sizeof *t->retry_timer);
    if (!t->retry_timer)
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    uv_timer_init(t->loop, t->retry_timer);
    t->retry_timer->data = t;
    uv_unref((uv_handle_t *)t->retry_timer);
    return KZ_OK;
}

static void free_handle(uv_handle_t *h) { kz_free(h); }

void kz_settle_close(struct kz_tenancy *t)
{
    /* the writer was stopped: nothing refers to these any more. What was not
     * committed is still in the journal, which is left as it is. */
    while (t->out_head) {
        struct kz_outstanding *o = t->out_head;
        unlink_out(t, o);
        kz_free(o);
    }
    if (t->retry_timer) {
        uv_timer_stop(t->retry_timer);
        uv_close((uv_handle_t *)t->retry_timer, free_handle);
        t->retry_timer = NULL;
    }
    kz_journal_close(t->journal);
}

int64_t kz_settle_backlog_ms(const struct kz_tenancy *t)
{
    return t->out_head ? kz_tenancy_wall_ms() - t->out_head->journaled_ms : 0;
}

int kz_settle_has(const struct kz_tenancy *t, const char *request_id)
{
    for (const struct kz_outstanding *o = t->out_head; o; o = o->next)
        if (strcmp(o->u.request_id, request_id) == 0)
            return 1;
    return 0;
}

kz_status kz_tenancy_settle(struct kz_meter *m, const struct kz_ledger_usage *u0, char *msg, size_t size)
{
    if (!m->active)
        return KZ_OK;
    m->active = 0;
    struct kz_tenancy *t = m->t;
    /* off the list of running requests with a client-chosen id */
    if (m->run_prev)
        m->run_prev->run_next = m->run_next;
    else if (t->running == m)
        t->running = m->run_next;
    if (m->run_next)
        m->run_next->run_prev = m->run_prev;
    m->run_prev = m->run_next = NULL;
    struct kz_outstanding *o = kz_calloc(1, sizeof *o);
    struct kz_err err = {{0}};
    kz_status rc = o ? KZ_OK : kz_err_set(&err, KZ_ENOMEM, "out of memory");
    if (o) {
        struct kz_ledger_usage *u = &o->u;
        *u = *u0;
        snprintf(u->request_id, sizeof u->request_id, "%s", m->request_id);
        u->tenant_id = m->tenant_id;
        u->key_id = m->key_id;
        u->started_ms = m->started_ms;
        u->finished_ms = kz_tenancy_wall_ms();
        if (u->finished_ms < u->started_ms)
            u->finished_ms = u->started_ms;
        u->latency_ms = u->finished_ms - u->started_ms;
        if (m->n_owners)
            kz_rl_settle(t->rl, m->owners, m->n_owners, m->admitted_ms, m->est_tokens,
                         u->input_tokens + u->output_tokens, u->finished_ms);
        rc = kz_ledger_usage_validate(u, &err);
        if (!rc)
            rc = kz_journal_append(t->journal, u, &err);
    }
    /* the reservation is over either way */
    struct kz_hold *hk = kz_hold_get(t, 'k', m->key_id), *ht = kz_hold_get(t, 't', m->tenant_id);
    if (hk)
        hk->reserved -= m->max_cost;
    if (ht)
        ht->reserved -= m->max_cost;
    if (rc) {
        kz_free(o);
        if (msg)
            snprintf(msg, size, "%s", err.msg);
        return rc;
    }
    o->t = t;
    o->journaled_ms = o->u.finished_ms;
    o->prev = t->out_tail;
    if (t->out_tail)
        t->out_tail->next = o;
    else
        t->out_head = o;
    t->out_tail = o;
    t->n_out++;
    hold_pending(t, &o->u, o->u.cost);
    submit(o);
    return KZ_OK; /* durable in the journal: the answer may go out */
}
