/* SPDX-License-Identifier: MIT
 * Two kyozon servers sharing one PostgreSQL ledger (a private server,
 * tpg.h), in front of mockllm:
 *   journal    each server needs its own settle journal: a second server on
 *              the same journal refuses to start, naming it
 *   budget     SC-5 on PostgreSQL: a key budget that affords 10 requests,
 *              100 requests at a barrier spread over both servers, 50
 *              rounds: at most 10 admitted, spent + reserved (read from the
 *              database every 1 ms) never above the budget, no reservation
 *              left once the answers are recorded
 *   ft15       RELIABILITY FT-15: `pg_ctl stop -m immediate` under load,
 *              restart: requests during the outage get 503 within 2 s, the
 *              servers serve again within 5 s of PostgreSQL's return, every
 *              answered request is in the ledger exactly once, a retry with
 *              its Idempotency-Key adds nothing, and the ledger's own check
 *              holds once expired reservations are swept
 */
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>

#include "ledger/keys.h"
#include "ledger/ledger.h"
#include "t.h"
#include "tnet.h"
#include "tpg.h"

#define YAML_FMT                                                                                                 \
    "server: {max_connections_per_ip: 512}\n"                                                                    \
    "providers:\n"                                                                                               \
    "  - name: up\n"                                                                                             \
    "    type: openai\n"                                                                                         \
    "    base_url: http://127.0.0.1:%d/v1\n"                                                                     \
    "    price: {input_per_mtok: 1, output_per_mtok: 1000}\n"                                                    \
    "models:\n"                                                                                                  \
    "  - name: chat\n"                                                                                           \
    "    deployments: [{provider: up, model: m}]\n"

static struct tnet_proc mock, srv[2];
static char url[256], yaml[600];

static const char chat_body[] =
    "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],\"max_tokens\":4}";

static int spawn_srv(struct tnet_proc *p, int i)
{
    char journal[600];
    snprintf(journal, sizeof journal, "%s/node-%d.journal", t_tmpdir(), i);
    const char *argv[] = {getenv("KZ_BIN"), "serve", "--config", yaml, "--db", url, "--journal", journal,
                          "--port", "0", NULL};
    return tnet_spawn(p, argv, NULL, NULL, 20000);
}

static void stop_srv(struct tnet_proc *p)
{
    int st = tnet_stop(p, SIGTERM, 15000);
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "server exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static struct kz_ledger *ledger(const struct kz_ledger_opts *o)
{
    struct kz_ledger *l = NULL;
    struct kz_err err = {{0}};
    if (kz_ledger_open(url, o, &l, &err) != KZ_OK)
        T_OK(0, "open %s: %s", url, err.msg);
    return l;
}

static int64_t key(struct kz_ledger *l, int64_t tid, int64_t budget, char out[64])
{
    struct kz_keys_spec s = {.tenant_id = tid, .privacy = KZ_PRIVACY_EXTERNAL, .has_budget = budget > 0,
                             .budget = budget, .period = KZ_PERIOD_TOTAL};
    int64_t id = 0;
    struct kz_err err = {{0}};
    T_OK(kz_keys_create(l, &s, out, &id, &err) == KZ_OK, "key: %s", err.msg);
    return id;
}

static int64_t new_tenant(struct kz_ledger *l, const char *name)
{
    struct kz_ledger_tenant_spec ts = {.name = name};
    int64_t tid = 0;
    struct kz_err err = {{0}};
    T_EQ_INT(kz_ledger_tenant_create(l, &ts, &tid, &err), KZ_OK);
    return tid;
}

static int chat(int port, const char *k, const char *idem, int timeout_ms, struct tnet_resp *r)
{
    char auth[128], id[160];
    snprintf(auth, sizeof auth, "Authorization: Bearer %.100s", k);
    snprintf(id, sizeof id, "Idempotency-Key: %.120s", idem ? idem : "");
    const char *h[] = {auth, idem ? id : NULL, NULL};
    return tnet_request(port, "POST", "/v1/chat/completions", h, chat_body, timeout_ms, r);
}

static void mock_mode(const char *json)
{
    struct tnet_resp r;
    T_EQ_INT(tnet_request(mock.port, "POST", "/_mock/mode", NULL, json, 5000, &r), 200);
    tnet_resp_free(&r);
}

/* Waits until the database holds no reservation (the answers' records are
 * committed behind them); the count left. */
static int64_t drain_reservations(struct kz_ledger *l, int timeout_ms)
{
    int64_t n = -1;
    for (double end = tnet_now_ms() + timeout_ms; tnet_now_ms() < end; usleep(20000)) {
        struct kz_err err = {{0}};
        if (kz_ledger_reservations(l, &n, NULL, &err) == KZ_OK && n == 0)
            break;
    }
    return n;
}

/* ---- the loop does not wait for the database ---------------------------------------- */

struct pending_chat {
    int port;
    const char *key;
    int status;
    double done_ms;
};

static void *pending_main(void *arg)
{
    struct pending_chat *pc = arg;
    struct tnet_resp r;
    pc->status = chat(pc->port, pc->key, NULL, 20000, &r);
    pc->done_ms = tnet_now_ms();
    tnet_resp_free(&r);
    return NULL;
}

/* A reservation waits on its tenant's row lock; a test transaction holds
 * that lock for a while. The request waits, but the server's loop does not:
 * /health answers at once meanwhile, and the request goes on when the lock
 * is released. A request whose client leaves while it waits has its
 * reservation ended when the answer comes. */
static void loop_free(void)
{
    struct kz_ledger *l = ledger(NULL);
    if (!l)
        return;
    int64_t tid = new_tenant(l, "locked");
    struct kz_err err = {{0}};
    char k[64];
    key(l, tid, 0, k);
    kz_ledger_close(l);
    struct tnet_resp r;
    T_EQ_INT(chat(srv[0].port, k, NULL, 10000, &r), 200); /* the key is known and cached */
    tnet_resp_free(&r);

    PGconn *pc = PQconnectdb(url);
    T_OK(PQstatus(pc) == CONNECTION_OK, "test connection");
    char sql[128];
    snprintf(sql, sizeof sql, "BEGIN; SELECT 1 FROM tenants WHERE id = %lld FOR UPDATE", (long long)tid);
    PGresult *res = PQexec(pc, sql);
    T_OK(PQresultStatus(res) == PGRES_TUPLES_OK, "tenant row locked: %s", PQresultErrorMessage(res));
    PQclear(res);
    struct pending_chat c = {.port = srv[0].port, .key = k};
    pthread_t th;
    pthread_create(&th, NULL, pending_main, &c);
    /* a second one gives up while it waits: its client leaves after 300 ms */
    T_OK(chat(srv[0].port, k, NULL, 300, &r) != 200, "the impatient request was not answered");
    tnet_resp_free(&r);
    double t0 = tnet_now_ms();
    T_EQ_INT(tnet_request(srv[0].port, "GET", "/health", NULL, NULL, 5000, &r), 200);
    double health_ms = tnet_now_ms() - t0;
    tnet_resp_free(&r);
    T_OK(health_ms < 250, "/health answered in %.0f ms while a reservation waited", health_ms);
    T_OK(c.done_ms == 0, "the request still waits for the lock");
    double released = tnet_now_ms();
    res = PQexec(pc, "COMMIT");
    PQclear(res);
    PQfinish(pc);
    pthread_join(th, NULL);
    T_EQ_INT(c.status, 200);
    T_OK(c.done_ms - released < 5000, "answered %.0f ms after the lock went", c.done_ms - released);
    /* the reservation made for the client that left ends too */
    if ((l = ledger(NULL))) {
        T_EQ_INT(drain_reservations(l, 10000), 0);
        struct kz_ledger_usage_row *rows = NULL;
        size_t n = 0;
        struct kz_ledger_query q = {.by = KZ_GROUP_TOTAL};
        T_OK(kz_ledger_usage(l, tid, &q, &rows, &n, &err) == KZ_OK && n == 1 && rows[0].requests == 3,
             "3 requests recorded (the first, the patient one, the one whose client left): %lld",
             n ? (long long)rows[0].requests : -1LL);
        kz_free(rows);
        kz_ledger_close(l);
    }
}

/* ---- one settle journal per server ------------------------------------------------- */

static void journal(void)
{
    char journal0[600];
    snprintf(journal0, sizeof journal0, "%s/node-0.journal", t_tmpdir());
    const char *argv[] = {getenv("KZ_BIN"), "serve", "--config", yaml, "--db", url, "--journal", journal0,
                          "--port", "0", NULL};
    char log[700];
    snprintf(log, sizeof log, "%s/second.log", t_tmpdir());
    struct tnet_proc p;
    T_OK(tnet_spawn(&p, argv, NULL, log, 5000) != 0, "a second server on the same journal does not start");
    char *text = t_read_file(log, NULL);
    T_OK(text && strstr(text, "in use by another kyozon server") && strstr(text, "node-0.journal"),
         "the message names the journal: %s", text ? text : "(no log)");
    kz_free(text);
}

/* ---- SC-5 on PostgreSQL, across two servers --------------------------------------------- */

#define RACE_N 100
#define ROUNDS 50

struct race {
    const char *key;
    pthread_barrier_t go;
    int status[RACE_N];
};

struct race_arg {
    struct race *r;
    int i;
};

static void *race_main(void *arg)
{
    struct race_arg *a = arg;
    pthread_barrier_wait(&a->r->go);
    struct tnet_resp resp;
    a->r->status[a->i] = chat(srv[a->i % 2].port, a->r->key, NULL, 20000, &resp);
    tnet_resp_free(&resp);
    return NULL;
}

struct sampler {
    struct kz_ledger *l;
    int64_t key_id, budget;
    volatile int stop;
    int samples, over;
};

static void *sampler_main(void *arg)
{
    struct sampler *s = arg;
    while (!s->stop) {
        struct kz_keys_info k;
        struct kz_err err = {{0}};
        if (kz_keys_get(s->l, s->key_id, &k, &err) == KZ_OK) {
            s->samples++;
            s->over += k.spent + k.reserved > s->budget;
            kz_keys_info_free(&k);
        }
        usleep(1000);
    }
    return NULL;
}

static void budget(void)
{
    struct kz_ledger *l = ledger(NULL);
    if (!l)
        return;
    int64_t tid = new_tenant(l, "racer"), left = 0;
    struct kz_err err = {{0}};
    /* slow answers: nothing settles while the others are admitted */
    mock_mode("{\"mode\":\"slow\",\"cadence_ms\":20,\"tokens\":4}");
    int64_t reserve = (int64_t)strlen(chat_body) + 4 * 1000;
    int worst = 0, least = RACE_N, over = 0, samples = 0, spent_over = 0;
    for (int round = 0; round < ROUNDS && !t_failures(); round++) {
        char k[64];
        struct sampler s = {.l = l, .budget = 10 * reserve};
        s.key_id = key(l, tid, 10 * reserve, k);
        struct race r = {.key = k};
        pthread_barrier_init(&r.go, NULL, RACE_N);
        struct race_arg args[RACE_N];
        pthread_t th[RACE_N], sth;
        pthread_create(&sth, NULL, sampler_main, &s);
        for (int i = 0; i < RACE_N; i++) {
            args[i] = (struct race_arg){&r, i};
            pthread_create(&th[i], NULL, race_main, &args[i]);
        }
        for (int i = 0; i < RACE_N; i++)
            pthread_join(th[i], NULL);
        left = drain_reservations(l, 5000);
        s.stop = 1;
        pthread_join(sth, NULL);
        pthread_barrier_destroy(&r.go);
        int ok = 0, refused = 0;
        for (int i = 0; i < RACE_N; i++) {
            ok += r.status[i] == 200;
            refused += r.status[i] == 402;
        }
        T_EQ_INT(ok + refused, RACE_N);
        worst = ok > worst ? ok : worst;
        least = ok < least ? ok : least;
        over += s.over;
        samples += s.samples;
        struct kz_keys_info ki;
        if (kz_keys_get(l, s.key_id, &ki, &err) == KZ_OK) {
            spent_over += ki.spent > s.budget;
            kz_keys_info_free(&ki);
        }
        T_EQ_INT(left, 0);
    }
    fprintf(stderr, "SC-5 (PostgreSQL, 2 servers): %d rounds, %d..%d admitted, %d samples, %d over the budget\n",
            ROUNDS, least, worst, samples, over);
    T_OK(worst <= 10 && least > 0, "at most 10 of 100 admitted per round across both servers (%d..%d)", least, worst);
    T_OK(over == 0 && spent_over == 0 && samples > ROUNDS, "spent + reserved within the budget at all %d samples",
         samples);
    struct kz_err cerr = {{0}};
    T_OK(kz_ledger_check(l, &cerr) == KZ_OK, "ledger check: %s", cerr.msg);
    kz_ledger_close(l);
    mock_mode("{\"mode\":\"ok\",\"tokens\":4}");
}

/* ---- FT-15: PostgreSQL stops under load ------------------------------------------------- */

#define FT_THREADS 8
#define FT_MAX 20000

struct shot {
    int status;
    double sent, answered;
};

struct load {
    const char *key;
    volatile int stop;
    int next; /* atomic */
    struct shot *shots;
};

static void *load_main(void *arg)
{
    struct load *ld = arg;
    while (!ld->stop) {
        int i = __atomic_fetch_add(&ld->next, 1, __ATOMIC_SEQ_CST);
        if (i >= FT_MAX)
            break;
        char id[32];
        snprintf(id, sizeof id, "ft15-%d", i);
        struct tnet_resp r;
        ld->shots[i].sent = tnet_now_ms();
        ld->shots[i].status = chat(srv[i % 2].port, ld->key, id, 20000, &r);
        ld->shots[i].answered = tnet_now_ms();
        tnet_resp_free(&r);
        if (ld->shots[i].status != 200)
            usleep(5000); /* a client backing off a little */
    }
    return NULL;
}

static void ft15(void)
{
    struct kz_ledger *l = ledger(NULL);
    if (!l)
        return;
    struct kz_ledger_tenant_spec ts = {.name = "ft15", .prepaid = 1};
    int64_t tid = 0;
    struct kz_err err = {{0}};
    T_EQ_INT(kz_ledger_tenant_create(l, &ts, &tid, &err), KZ_OK);
    T_EQ_INT(kz_ledger_tenant_credit(l, tid, INT64_C(100000000000), NULL, &err), KZ_OK);
    char k[64];
    key(l, tid, 0, k);
    kz_ledger_close(l);
    mock_mode("{\"mode\":\"slow\",\"cadence_ms\":5,\"tokens\":4}");

    struct load ld = {.key = k, .shots = kz_calloc(FT_MAX, sizeof(struct shot))};
    if (!ld.shots)
        return;
    pthread_t th[FT_THREADS];
    for (int i = 0; i < FT_THREADS; i++)
        pthread_create(&th[i], NULL, load_main, &ld);
    usleep(1500000);
    double stop0 = tnet_now_ms();
    T_EQ_INT(tpg_ctl("stop -m immediate"), 0);
    double stopped = tnet_now_ms();
    usleep(2000000);
    double start0 = tnet_now_ms();
    T_EQ_INT(tpg_start_server(), 0);
    double back = tnet_now_ms();
    usleep(6000000);
    ld.stop = 1;
    for (int i = 0; i < FT_THREADS; i++)
        pthread_join(th[i], NULL);
    int n = ld.next < FT_MAX ? ld.next : FT_MAX;

    /* the outage: sent after PostgreSQL was gone, answered before it came back */
    int during = 0, during_503 = 0, slow = 0, ok_after = 0, failed_late = 0, ok_total = 0;
    double first_ok = 0, worst = 0;
    for (int i = 0; i < n; i++) {
        const struct shot *s = &ld.shots[i];
        ok_total += s->status == 200;
        if (s->sent > stopped && s->answered < start0) {
            during++;
            during_503 += s->status == 503;
            double took = s->answered - s->sent;
            worst = took > worst ? took : worst;
            slow += took > 2000;
        }
        if (s->sent > back && s->status == 200) {
            ok_after++;
            if (!first_ok || s->answered < first_ok)
                first_ok = s->answered;
        }
        failed_late += s->sent > back + 5000 && s->status != 200;
    }
    fprintf(stderr,
            "FT-15: %d requests (%d answered 200); stop took %.0f ms; %d during the outage (%d got 503, slowest "
            "%.0f ms); first 200 %.0f ms after PostgreSQL was back (start took %.0f ms)\n",
            n, ok_total, stopped - stop0, during, during_503, worst, first_ok ? first_ok - back : -1.0,
            back - start0);
    T_OK(during > 20 && during_503 == during && slow == 0,
         "every request during the outage got 503 within 2 s (%d of %d, slowest %.0f ms)", during_503, during, worst);
    T_OK(ok_after > 0 && first_ok - back < 5000, "served again %.0f ms after PostgreSQL returned",
         first_ok ? first_ok - back : -1.0);
    T_EQ_INT(failed_late, 0);

    /* every answered request recorded once (the servers commit what they
     * journaled; SIGTERM waits for it) */
    stop_srv(&srv[0]);
    stop_srv(&srv[1]);
    l = ledger(NULL);
    if (!l) {
        kz_free(ld.shots);
        return;
    }
    int missing = 0;
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof id, "%lld:ft15-%d", (long long)tid, i); /* the ledger keeps TENANT:KEY */
        struct kz_ledger_usage u;
        if (ld.shots[i].status == 200 && kz_ledger_usage_get(l, tid, id, &u, &err) != KZ_OK) {
            fprintf(stderr, "FT-15: %s was answered 200 and is not in the ledger\n", id);
            missing++;
        }
    }
    T_EQ_INT(missing, 0);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) - COUNT(DISTINCT request_id) FROM usage");
    T_EQ_INT(tpg_int(url, sql), 0);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM usage WHERE tenant_id = %lld", (long long)tid);
    int64_t rows = tpg_int(url, sql);
    T_OK(rows >= ok_total, "%lld rows for %d answers", (long long)rows, ok_total);
    /* a reservation can only be left by a request that was not answered */
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM reservations");
    int64_t open = tpg_int(url, sql);
    fprintf(stderr, "FT-15: %lld usage rows, %lld reservations left open by the outage\n", (long long)rows,
            (long long)open);
    kz_ledger_close(l);

    /* restart both; a retry of an answered request adds nothing */
    T_EQ_INT(spawn_srv(&srv[0], 0), 0);
    T_EQ_INT(spawn_srv(&srv[1], 1), 0);
    int retried = -1;
    for (int i = 0; i < n && retried < 0; i++)
        if (ld.shots[i].status == 200)
            retried = i;
    if (retried >= 0) {
        char id[32];
        snprintf(id, sizeof id, "ft15-%d", retried);
        struct tnet_resp r;
        T_EQ_INT(chat(srv[1].port, k, id, 10000, &r), 409);
        tnet_resp_free(&r);
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM usage WHERE tenant_id = %lld", (long long)tid);
        T_EQ_INT(tpg_int(url, sql), rows);
    }
    /* expired reservations swept: the ledger's sums all agree */
    struct kz_ledger_opts o = {.reservation_ttl_ms = 1};
    usleep(5000);
    l = ledger(&o);
    if (l) {
        T_EQ_INT(drain_reservations(l, 1000), 0);
        struct kz_err cerr = {{0}};
        T_OK(kz_ledger_check(l, &cerr) == KZ_OK, "ledger check: %s", cerr.msg);
        kz_ledger_close(l);
    }
    kz_free(ld.shots);
    mock_mode("{\"mode\":\"ok\",\"tokens\":4}");
}

int main(void)
{
    const char *base = tpg_base();
    const char *u = base ? tpg_db("kyozon") : NULL;
    if (!u)
        return t_done();
    snprintf(url, sizeof url, "%s", u);
    const char *margv[] = {getenv("KZ_MOCKLLM"), "--port", "0", "--mode", "ok", "--tokens", "4", NULL};
    if (tnet_spawn(&mock, margv, NULL, NULL, 10000) != 0) {
        T_OK(0, "mockllm started");
        return t_done();
    }
    snprintf(yaml, sizeof yaml, "%s/pg.yaml", t_tmpdir());
    FILE *f = fopen(yaml, "w");
    if (f) {
        fprintf(f, YAML_FMT, mock.port);
        fclose(f);
    }
    /* a key first: the servers start in metered mode */
    struct kz_ledger *l = ledger(NULL);
    if (l) {
        struct kz_ledger_tenant_spec ts = {.name = "ops"};
        int64_t tid = 0;
        struct kz_err err = {{0}};
        T_EQ_INT(kz_ledger_tenant_create(l, &ts, &tid, &err), KZ_OK);
        char k[64];
        key(l, tid, 0, k);
        kz_ledger_close(l);
    }
    if (spawn_srv(&srv[0], 0) != 0 || spawn_srv(&srv[1], 1) != 0) {
        T_OK(0, "two servers on the PostgreSQL ledger started");
        return t_done();
    }
    t_subtest("journal", journal);
    t_subtest("the loop does not wait for the database", loop_free);
    if (!getenv("KZ_SKIP_BUDGET"))
        t_subtest("budget", budget);
    t_subtest("ft15", ft15);
    stop_srv(&srv[0]);
    stop_srv(&srv[1]);
    tnet_stop(&mock, SIGTERM, 5000);
    return t_done();
}
