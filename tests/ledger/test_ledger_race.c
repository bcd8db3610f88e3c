/* SPDX-License-Identifier: MIT
 * The budget race (RELIABILITY SC-5, in-process): a limit that affords 10
 * reservations, 100 threads reserving at once at a barrier, 20 rounds, for a
 * key budget, a tenant budget and a prepaid tenant's credit. Every round: at
 * most 10 admitted (exactly 10, as nothing else competes), spent + reserved
 * within the limit at every sample of a sampler thread reading about every
 * millisecond, and no reservation left once the admitted ones settled.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tledger.h"

#define THREADS 100
#define ROUNDS 20
#define HOLD 1000 /* one request's reservation, micro-dollars */
#define AFFORD 10

enum mode { MODE_KEY_BUDGET, MODE_TENANT_BUDGET, MODE_CREDIT, N_MODES };
static const char *const MODE_NAMES[N_MODES] = {"key budget", "tenant budget", "credit"};

struct race {
    struct kz_ledger *l;
    enum mode mode;
    pthread_barrier_t start, reserved, settled;
    pthread_mutex_t mu; /* guards tenant, key, round for the sampler */
    int64_t tenant, key;
    int round;
    int admitted, unexpected; /* atomics */
    int stop, samples, violations;
    char first_violation[160];
};

static void target(struct race *r, int64_t *tenant, int64_t *key, int *round)
{
    pthread_mutex_lock(&r->mu);
    *tenant = r->tenant;
    *key = r->key;
    *round = r->round;
    pthread_mutex_unlock(&r->mu);
}

/* One sample: the limit's spent + reserved, read in one snapshot. */
static void sample(struct race *r)
{
    int64_t tenant, key, used = 0, cap = 0;
    int round;
    target(r, &tenant, &key, &round);
    if (!tenant)
        return;
    struct kz_err err = {{0}};
    if (r->mode == MODE_KEY_BUDGET) {
        struct kz_keys_info k;
        if (kz_keys_get(r->l, key, &k, &err))
            return;
        used = k.spent + k.reserved;
        cap = k.budget;
        kz_keys_info_free(&k);
    } else {
        struct kz_ledger_tenant t;
        if (kz_ledger_tenant_get(r->l, tenant, &t, &err))
            return;
        used = r->mode == MODE_CREDIT ? t.reserved : t.spent + t.reserved;
        cap = r->mode == MODE_CREDIT ? t.balance : t.budget;
    }
    __atomic_fetch_add(&r->samples, 1, __ATOMIC_RELAXED);
    if (used > cap && !__atomic_fetch_add(&r->violations, 1, __ATOMIC_RELAXED))
        snprintf(r->first_violation, sizeof r->first_violation, "round %d: %lld used of %lld", round,
                 (long long)used, (long long)cap);
}

static void *sampler(void *arg)
{
    struct race *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_SEQ_CST)) {
        sample(r);
        usleep(1000);
    }
    return NULL;
}

struct worker {
    struct race *r;
    int index;
    unsigned seed;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct race *r = w->r;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_wait(&r->start);
        int64_t tenant, key, hold = 0;
        int rnd;
        target(r, &tenant, &key, &rnd);
        char id[64];
        snprintf(id, sizeof id, "m%d-r%d-t%d", (int)r->mode, round, w->index);
        struct kz_err err = {{0}};
        enum kz_ledger_deny deny;
        kz_status rc = kz_ledger_reserve(r->l, key, tenant, HOLD, id, &hold, &deny, &err);
        if (rc == KZ_OK)
            __atomic_fetch_add(&r->admitted, 1, __ATOMIC_SEQ_CST);
        else if (rc != KZ_ELIMIT || deny == KZ_DENY_NONE)
            __atomic_fetch_add(&r->unexpected, 1, __ATOMIC_SEQ_CST);
        pthread_barrier_wait(&r->reserved);
        if (rc == KZ_OK) {
            /* The real cost is anything up to the reservation. */
            struct kz_ledger_usage u;
            tl_usage(&u, id, tenant, key, "m", (int64_t)(rand_r(&w->seed) % (HOLD + 1)), TL_T0);
            if (kz_ledger_settle(r->l, hold, &u, NULL, NULL, &err))
                __atomic_fetch_add(&r->unexpected, 1, __ATOMIC_SEQ_CST);
        }
        pthread_barrier_wait(&r->settled);
    }
    return NULL;
}

static void run_mode(enum mode mode)
{
    struct tl_clock clk = {TL_T0};
    struct kz_ledger_opts o = {0};
    o.clock_ms = tl_clock_read;
    o.clock_ud = &clk;
    o.readers = 2;
    char name[32];
    snprintf(name, sizeof name, "race%d", (int)mode);
    struct kz_ledger *l = tl_open(tl_fresh(name), &o);
    if (!l)
        return;
    static struct race r;
    memset(&r, 0, sizeof r);
    r.l = l;
    r.mode = mode;
    pthread_mutex_init(&r.mu, NULL);
    pthread_barrier_init(&r.start, NULL, THREADS + 1);
    pthread_barrier_init(&r.reserved, NULL, THREADS + 1);
    pthread_barrier_init(&r.settled, NULL, THREADS + 1);
    static struct worker ws[THREADS];
    pthread_t th[THREADS], sam;
    for (int i = 0; i < THREADS; i++) {
        ws[i] = (struct worker){&r, i, (unsigned)(i * 7919 + 1)};
        pthread_create(&th[i], NULL, work, &ws[i]);
    }
    pthread_create(&sam, NULL, sampler, &r);

    const int64_t limit = AFFORD * HOLD;
    int over = 0, not_all = 0, leaked = 0, overspent = 0;
    for (int round = 0; round < ROUNDS; round++) {
        char tname[32];
        snprintf(tname, sizeof tname, "t%d", round);
        int64_t tenant = tl_tenant(l, tname, mode == MODE_CREDIT, mode == MODE_TENANT_BUDGET ? limit : -1,
                                   KZ_PERIOD_DAY);
        int64_t key = tl_key(l, tenant, mode == MODE_KEY_BUDGET ? limit : -1, KZ_PERIOD_MONTH, NULL);
        struct kz_err err = {{0}};
        if (mode == MODE_CREDIT)
            T_EQ_INT(kz_ledger_tenant_credit(l, tenant, limit, NULL, &err), KZ_OK);
        pthread_mutex_lock(&r.mu);
        r.tenant = tenant;
        r.key = key;
        r.round = round;
        pthread_mutex_unlock(&r.mu);
        __atomic_store_n(&r.admitted, 0, __ATOMIC_SEQ_CST);

        pthread_barrier_wait(&r.start);
        pthread_barrier_wait(&r.reserved);
        int admitted = __atomic_load_n(&r.admitted, __ATOMIC_SEQ_CST);
        over += admitted > AFFORD;
        not_all += admitted != AFFORD;
        sample(&r); /* at the peak: everything reserved, nothing settled */
        pthread_barrier_wait(&r.settled);

        leaked += tl_open_reservations(l) != 0;
        struct kz_ledger_tenant t;
        struct kz_keys_info k;
        if (kz_ledger_tenant_get(l, tenant, &t, &err) == KZ_OK && kz_keys_get(l, key, &k, &err) == KZ_OK) {
            leaked += t.reserved != 0 || k.reserved != 0;
            overspent += k.spent > limit || t.spent > limit || (mode == MODE_CREDIT && t.balance < 0);
            kz_keys_info_free(&k);
        } else
            T_OK(0, "reading round %d: %s", round, err.msg);
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(sam, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);

    T_OK(over == 0, "%s: more than %d admitted in %d of %d rounds", MODE_NAMES[mode], AFFORD, over, ROUNDS);
    T_OK(not_all == 0, "%s: exactly %d admitted in every round (%d rounds differ)", MODE_NAMES[mode], AFFORD,
         not_all);
    T_EQ_INT(r.unexpected, 0);
    T_OK(r.violations == 0, "%s: spent + reserved over the limit %d times (%s)", MODE_NAMES[mode], r.violations,
         r.first_violation);
    T_OK(r.samples >= ROUNDS, "%s: %d samples taken", MODE_NAMES[mode], r.samples);
    T_EQ_INT(leaked, 0);
    T_EQ_INT(overspent, 0);
    tl_check(l);
    pthread_barrier_destroy(&r.start);
    pthread_barrier_destroy(&r.reserved);
    pthread_barrier_destroy(&r.settled);
    pthread_mutex_destroy(&r.mu);
    kz_ledger_close(l);
}

static void key_budget(void) { run_mode(MODE_KEY_BUDGET); }
static void tenant_budget(void) { run_mode(MODE_TENANT_BUDGET); }
static void tenant_credit(void) { run_mode(MODE_CREDIT); }

int main(void)
{
    t_subtest("key_budget", key_budget);
    t_subtest("tenant_budget", tenant_budget);
    t_subtest("tenant_credit", tenant_credit);
    return t_done();
}
