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
#define SWEEP_MS 60000

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

/* The cost of a journaled record moves into `pending`, and out of it when
 * the record is committed (or refused), into `committed` when the commit
 * spent it. */
static void hold_pending(struct kz_tenancy *t, const struct kz_ledger_usage *u, int64_t delta, int spent)
{
    if (t->shared)
        return; /* the reservation in the database holds until the commit */
    struct kz_hold *hk = u->key_id ? kz_hold_get(t, 'k', u->key_id) : NULL, *ht = kz_hold_get(t, 't', u->tenant_id);
    if (hk) {
        hk->pending += delta;
        hk->committed += spent ? -delta : 0;
    }
    if (ht) {
        ht->pending += delta;
        ht->committed += spent ? -delta : 0;
    }
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
        hold_pending(t, &o->u, -o->u.cost, 0);
    } else if (o->rc) {
        if (!t->commit_failing) { /* once per outage, not once per record */
            t->commit_failing = 1;
            fprintf(stderr, "kyozon: the ledger cannot commit usage records (%s); retrying every second\n", o->msg);
        }
        if (!uv_is_active((uv_handle_t *)t->retry_timer))
            uv_timer_start(t->retry_timer, on_retry, RETRY_MS, 0);
        return;
    } else {
        hold_pending(t, &o->u, -o->u.cost, !o->duplicate);
        if (t->commit_failing) {
            t->commit_failing = 0;
            fprintf(stderr, "kyozon: the ledger commits again\n");
        }
    }
    unlink_out(t, o);
    kz_free(o);
    if (!t->out_head)
        kz_journal_reset(t->journal);
}

/* On the writer thread. */
static void on_written(void *ud, kz_status rc, const struct kz_err *err, const struct kz_ledger_usage *stored,
                       int duplicate)
{
    (void)stored;
    struct kz_outstanding *o = ud;
    o->rc = rc;
    o->duplicate = duplicate; /* already in the ledger (a replay): recorded once, which is what counts */
    if (rc)
        snprintf(o->msg, sizeof o->msg, "%.150s", err && err->msg[0] ? err->msg : "no message");
    /* when the server is gone, the record stays outstanding and in the
     * journal; the next start settles it again */
    (void)kz_http_server_post(o->t->http, committed_on_loop, o);
}

static void submit(struct kz_outstanding *o)
{
    struct kz_err err = {{0}};
    o->in_writer = 1;
    if (kz_ledger_writer_submit(o->t->writer, o->reservation, &o->u, on_written, o, &err) != KZ_OK) {
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

/* Shared ledger: reservations of servers that died (or lost a request
 * between admission and settlement) are released once they expire. */
static void on_sweep(uv_timer_t *h)
{
    struct kz_tenancy *t = h->data;
    int64_t released = 0;
    struct kz_err err = {{0}};
    if (kz_ledger_sweep(t->ledger, &released, &err) != KZ_OK)
        fprintf(stderr, "kyozon: sweeping expired reservations: %s\n", err.msg);
    else if (released)
        fprintf(stderr, "kyozon: released %lld expired reservations\n", (long long)released);
}

static uv_timer_t *new_timer(struct kz_tenancy *t)
{
    /* its own allocation: a closing handle must outlive the tenancy until
     * the loop has finished closing it */
    uv_timer_t *h = kz_malloc(sizeof *h);
    if (h) {
        uv_timer_init(t->loop, h);
        h->data = t;
        uv_unref((uv_handle_t *)h);
    }
    return h;
}

kz_status kz_settle_open(struct kz_tenancy *t, const char *db, const char *journal, struct kz_err *err)
{
    char path[4200];
    if (strncmp(db, "sqlite://", 9) == 0)
        db += 9;
    if (journal)
        snprintf(path, sizeof path, "%s", journal);
    else if (t->shared)
        snprintf(path, sizeof path, "kyozon-settle.journal");
    else
        snprintf(path, sizeof path, "%s-kzsettle", db);
    long skipped = 0;
    kz_status rc = kz_journal_open(path, replay_one, t->ledger, &t->journal, &skipped, err);
    if (rc)
        return rc;
    if (skipped)
        fprintf(stderr, "kyozon: %ld unreadable lines in the settle journal %s were skipped\n", skipped, path);
    if (!(t->retry_timer = new_timer(t)) || (t->shared && !(t->sweep_timer = new_timer(t))))
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    if (t->sweep_timer)
        uv_timer_start(t->sweep_timer, on_sweep, SWEEP_MS, SWEEP_MS);
    return KZ_OK;
}

static void free_handle(uv_handle_t *h) { kz_free(h); }

void kz_settle_close(struct kz_tenancy *t)
{
    /* the writer was stopped: nothing refers to these any more. What was not
     * committed is still in the journal, which is left as it is. */
    size_t left = 0; /* the writer's last batches did commit: their posts just never ran */
    for (const struct kz_outstanding *o = t->out_head; o; o = o->next)
        left += !o->in_writer || o->rc;
    if (left)
        fprintf(stderr,
                "kyozon: %zu answered requests are not in the ledger yet: they stay in the settle journal and are "
                "recorded at the next start\n",
                left);
    while (t->out_head) {
        struct kz_outstanding *o = t->out_head;
        unlink_out(t, o);
        kz_free(o);
    }
    uv_timer_t **timers[2] = {&t->retry_timer, &t->sweep_timer};
    for (int i = 0; i < 2; i++)
        if (*timers[i]) {
            uv_timer_stop(*timers[i]);
            uv_close((uv_handle_t *)*timers[i], free_handle);
            *timers[i] = NULL;
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
    /* the in-memory reservation is over either way (a database one ends
     * with the commit, or expires) */
    struct kz_hold *hk = t->shared ? NULL : kz_hold_get(t, 'k', m->key_id);
    struct kz_hold *ht = t->shared ? NULL : kz_hold_get(t, 't', m->tenant_id);
    if (hk)
        hk->reserved -= m->max_cost;
    if (ht)
        ht->reserved -= m->max_cost;
    if (rc) {
        kz_free(o);
        struct kz_err ignored = {{0}};
        if (m->reservation) /* nothing will settle it: no answer goes out */
            (void)kz_ledger_release(t->ledger, m->reservation, &ignored);
        if (msg)
            snprintf(msg, size, "%s", err.msg);
        return rc;
    }
    o->t = t;
    o->reservation = m->reservation;
    o->journaled_ms = o->u.finished_ms;
    o->prev = t->out_tail;
    if (t->out_tail)
        t->out_tail->next = o;
    else
        t->out_head = o;
    t->out_tail = o;
    t->n_out++;
    hold_pending(t, &o->u, o->u.cost, 0);
    submit(o);
    return KZ_OK; /* durable in the journal: the answer may go out */
}
