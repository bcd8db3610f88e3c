/* SPDX-License-Identifier: MIT
 * The ledger under faults, with a real server (RELIABILITY.md):
 *   FT-11  SIGKILL at a random moment under streaming load, 100 times:
 *          restart within 2 s, integrity holds, every acknowledged stream
 *          (200 with its final usage chunk and [DONE]) has its ledger row, a
 *          retry with the same Idempotency-Key adds nothing, and the
 *          recovery sweep releases what the killed requests held
 *   FT-10  another process holds the database exclusively for 2 s, then
 *          10 s: answers go on (their records wait in the settle journal and
 *          reach the ledger when the lock goes); once the ledger is more than
 *          5 s behind, new requests get 503 at once; none answered unbilled
 *   FT-9   the ledger on an 8 MiB tmpfs that fills up: 503 with Retry-After,
 *          never an unmetered answer; service comes back without a restart
 *          once space is freed
 */
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "ledger/keys.h"
#include "ledger/ledger.h"
#include "t.h"
#include "tnet.h"


/* The ledger's record of a request the client sent with Idempotency-Key
 * `key`: the ledger keeps it as TENANT:KEY (tenant 1 here). */
static kz_status usage_of(struct kz_ledger *l, const char *key, struct kz_ledger_usage *u, struct kz_err *err)
{
    char rid[300];
    snprintf(rid, sizeof rid, "1:%s", key);
    return kz_ledger_usage_get(l, 1, rid, u, err);
}

static struct tnet_proc mock, srv;
static char db[800], yaml[800], key[64];
static int port;

static int spawn_srv(void)
{
    char pt[16];
    snprintf(pt, sizeof pt, "%d", port);
    const char *argv[] = {getenv("KZ_BIN"), "serve", "--config", yaml, "--db", db, "--port", pt, NULL};
    return tnet_spawn(&srv, argv, NULL, NULL, 20000);
}

/* A fresh ledger at `path` with tenant "t" and one key (into `key`). */
static int setup_ledger(const char *path)
{
    snprintf(db, sizeof db, "%s", path);
    struct kz_ledger *l;
    struct kz_err err = {{0}};
    if (kz_ledger_open(db, NULL, &l, &err) != KZ_OK) {
        T_OK(0, "open %s: %s", db, err.msg);
        return -1;
    }
    struct kz_ledger_tenant_spec ts = {.name = "t"};
    int64_t tid, kid;
    struct kz_keys_spec ks = {.privacy = KZ_PRIVACY_EXTERNAL};
    kz_status rc = kz_ledger_tenant_create(l, &ts, &tid, &err);
    ks.tenant_id = tid;
    if (!rc)
        rc = kz_keys_create(l, &ks, key, &kid, &err);
    kz_ledger_close(l);
    T_OK(rc == KZ_OK, "ledger set up: %s", err.msg);
    return rc == KZ_OK ? 0 : -1;
}

static void write_yaml(void)
{
    snprintf(yaml, sizeof yaml, "%s/faults.yaml", t_tmpdir());
    FILE *f = fopen(yaml, "w");
    if (!f)
        return;
    fprintf(f,
            "providers:\n  - name: up\n    type: openai\n    base_url: http://127.0.0.1:%d/v1\n"
            "    price: {input_per_mtok: 1, output_per_mtok: 1000}\n"
            "models:\n  - name: chat\n    deployments: [{provider: up, model: m}]\n",
            mock.port);
    fclose(f);
}

/* ---- one streamed request ------------------------------------------------------------------ */

enum outcome { ACKED, FAILED, REFUSED };

/* A stream with include_usage; ACKED only with the usage chunk and [DONE]
 * and no error event. *status gets the HTTP status. */
static enum outcome stream_once(const char *idem, int *status)
{
    char auth[128], ik[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    snprintf(ik, sizeof ik, "Idempotency-Key: %s", idem);
    const char *h[] = {auth, ik, NULL};
    static const char body[] = "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                               "\"max_tokens\":10,\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    struct tnet_sse s;
    int st = tnet_sse_open(&s, port, "POST", "/v1/chat/completions", h, body, 10000);
    *status = st;
    if (st != 200) {
        tnet_sse_close(&s);
        return st > 0 ? REFUSED : FAILED;
    }
    int usage = 0, done = 0, error = 0;
    for (;;) {
        char ev[64], *data = NULL;
        int r = tnet_sse_next(&s, 10000, ev, sizeof ev, &data);
        if (r != 1) {
            kz_free(data);
            break;
        }
        if (strcmp(data, "[DONE]") == 0)
            done = 1;
        else if (strstr(data, "\"error\""))
            error = 1;
        else if (strstr(data, "\"usage\":{"))
            usage = 1;
        kz_free(data);
    }
    tnet_sse_close(&s);
    return usage && done && !error ? ACKED : FAILED;
}

/* ---- FT-11 ------------------------------------------------------------------------------------ */

#define FT11_ITER 100
#define FT11_CLIENTS 12
#define FT11_MAX 4096

static struct {
    pthread_mutex_t mu;
    int stop;
    int iter;
    int n;
    char ids[FT11_MAX][40];
    int acked[FT11_MAX];
} L = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *load_main(void *arg)
{
    int who = (int)(intptr_t)arg;
    for (int seq = 0;; seq++) {
        pthread_mutex_lock(&L.mu);
        int i = !L.stop && L.n < FT11_MAX ? L.n++ : -1;
        if (i >= 0)
            snprintf(L.ids[i], sizeof L.ids[i], "ft11-%d-%d-%d", L.iter, who, seq);
        pthread_mutex_unlock(&L.mu);
        if (i < 0)
            return NULL;
        int st;
        L.acked[i] = stream_once(L.ids[i], &st) == ACKED;
    }
}

static int64_t rows_total(struct kz_ledger *l)
{
    struct kz_ledger_usage_row *rows = NULL;
    size_t n = 0;
    struct kz_err err = {{0}};
    struct kz_ledger_query q = {.by = KZ_GROUP_TOTAL};
    int64_t total = kz_ledger_usage(l, 1, &q, &rows, &n, &err) == KZ_OK && n == 1 ? rows[0].requests : -1;
    kz_free(rows);
    return total;
}

static int64_t far_future(void *ud)
{
    (void)ud;
    return (int64_t)time(NULL) * 1000 + 24 * 3600 * 1000LL;
}

static void ft11(void)
{
    char path[800];
    snprintf(path, sizeof path, "%s/ft11.db", t_tmpdir());
    if (setup_ledger(path))
        return;
    T_OK(spawn_srv() == 0, "server");
    srand(11);
    int acked_total = 0, missing = 0, slow_restarts = 0, bad_checks = 0, retries_added = 0, retries_not_409 = 0;
    double worst_restart = 0;
    for (int it = 0; it < FT11_ITER; it++) {
        L.stop = 0;
        L.n = 0;
        L.iter = it;
        memset(L.acked, 0, sizeof L.acked);
        pthread_t th[FT11_CLIENTS];
        for (int c = 0; c < FT11_CLIENTS; c++)
            pthread_create(&th[c], NULL, load_main, (void *)(intptr_t)c);
        usleep((useconds_t)(50 + rand() % 400) * 1000); /* a random moment */
        kill(srv.pid, SIGKILL);
        tnet_stop(&srv, SIGKILL, 5000);
        pthread_mutex_lock(&L.mu);
        L.stop = 1;
        pthread_mutex_unlock(&L.mu);
        for (int c = 0; c < FT11_CLIENTS; c++)
            pthread_join(th[c], NULL);
        double t0 = tnet_now_ms();
        if (spawn_srv() != 0) {
            T_OK(0, "iteration %d: restart failed", it);
            return;
        }
        double restart = tnet_now_ms() - t0;
        worst_restart = restart > worst_restart ? restart : worst_restart;
        slow_restarts += restart > 2000;
        /* the ledger, read beside the running server */
        struct kz_ledger *l;
        struct kz_err err = {{0}};
        if (kz_ledger_open(db, NULL, &l, &err) != KZ_OK) {
            T_OK(0, "iteration %d: open: %s", it, err.msg);
            return;
        }
        bad_checks += kz_ledger_check(l, &err) != KZ_OK;
        int first = -1;
        for (int i = 0; i < L.n; i++) {
            if (!L.acked[i])
                continue;
            acked_total++;
            first = first < 0 ? i : first;
            struct kz_ledger_usage u;
            if (usage_of(l, L.ids[i], &u, &err) != KZ_OK || u.status != 200)
                missing++;
        }
        if (first >= 0 && it % 10 == 0) {
            int64_t before = rows_total(l);
            int st;
            enum outcome o = stream_once(L.ids[first], &st);
            retries_not_409 += !(o == REFUSED && st == 409);
            retries_added += rows_total(l) != before;
        }
        kz_ledger_close(l);
    }
    int st = tnet_stop(&srv, SIGTERM, 10000);
    fprintf(stderr, "FT-11: %d kills, %d streams acknowledged and all recorded: %d missing, worst restart %.0f ms\n",
            FT11_ITER, acked_total, missing, worst_restart);
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "clean stop");
    T_OK(acked_total > FT11_ITER, "%d streams acknowledged over %d kills", acked_total, FT11_ITER);
    T_EQ_INT(missing, 0);
    T_EQ_INT(bad_checks, 0);
    T_OK(slow_restarts == 0, "every restart within 2 s (worst %.0f ms)", worst_restart);
    T_EQ_INT(retries_not_409, 0);
    T_EQ_INT(retries_added, 0);
    /* the killed requests' reservations: released by the recovery sweep once
     * older than the TTL (opening sweeps; the clock a day on) */
    struct kz_ledger_opts o = {.clock_ms = far_future};
    struct kz_ledger *l;
    struct kz_err err = {{0}};
    int64_t open_count = -1, amount = -1;
    T_OK(kz_ledger_open(db, &o, &l, &err) == KZ_OK, "open later: %s", err.msg);
    kz_ledger_reservations(l, &open_count, &amount, &err);
    T_OK(open_count == 0 && amount == 0, "no reservation left after the sweep (%lld)", (long long)open_count);
    T_OK(kz_ledger_check(l, &err) == KZ_OK, "check: %s", err.msg);
    kz_ledger_close(l);
}

/* ---- FT-10 ------------------------------------------------------------------------------------- */

/* A child process that holds an exclusive transaction for hold_ms. */
static pid_t hold_exclusive(int hold_ms, int ready_fd)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    sqlite3 *d;
    int ok = sqlite3_open(db, &d) == SQLITE_OK && sqlite3_busy_timeout(d, 5000) == SQLITE_OK &&
             sqlite3_exec(d, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK;
    char c = ok ? 'y' : 'n';
    if (write(ready_fd, &c, 1) != 1)
        _exit(2);
    usleep((useconds_t)hold_ms * 1000);
    sqlite3_exec(d, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(d);
    _exit(ok ? 0 : 1);
}

struct burst {
    int status[8];
    double ms[8];
    int acked[8];
    char ids[8][32];
};

static void *burst_one(void *arg)
{
    struct burst *b = arg;
    static int next;
    int i = __atomic_fetch_add(&next, 1, __ATOMIC_SEQ_CST) % 8;
    double t0 = tnet_now_ms();
    b->acked[i] = stream_once(b->ids[i], &b->status[i]) == ACKED;
    b->ms[i] = tnet_now_ms() - t0;
    return NULL;
}

static void run_burst(struct burst *b, const char *tag)
{
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        snprintf(b->ids[i], sizeof b->ids[i], "%s-%d", tag, i);
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, burst_one, b);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
}

/* Polls the ledger until every acked id of b is recorded; ms it took, or -1. */
static double wait_recorded(const struct burst *b, double since, int timeout_ms)
{
    while (tnet_now_ms() - since < timeout_ms) {
        struct kz_ledger *l;
        struct kz_err err = {{0}};
        int missing = 0;
        if (kz_ledger_open(db, NULL, &l, &err) == KZ_OK) {
            for (int i = 0; i < 8; i++) {
                struct kz_ledger_usage u;
                missing += b->acked[i] && usage_of(l, b->ids[i], &u, &err) != KZ_OK;
            }
            kz_ledger_close(l);
            if (!missing)
                return tnet_now_ms() - since;
        }
        usleep(50000);
    }
    return -1;
}

/* A database locked by another process does not stop answers: records wait
 * in the settle journal and are committed when the lock goes. Once the
 * ledger is more than its 5 s busy timeout behind, new metered requests get
 * 503 at once, so what is answered but unrecorded stays bounded. */
static void ft10(void)
{
    char path[800];
    snprintf(path, sizeof path, "%s/ft10.db", t_tmpdir());
    if (setup_ledger(path))
        return;
    T_OK(spawn_srv() == 0, "server");
    for (int phase = 0; phase < 2; phase++) {
        int hold = phase == 0 ? 2000 : 10000;
        int fds[2];
        T_OK(pipe(fds) == 0, "pipe");
        double t0 = tnet_now_ms();
        pid_t h = hold_exclusive(hold, fds[1]);
        char c = 0;
        T_OK(read(fds[0], &c, 1) == 1 && c == 'y', "the other process holds the lock");
        close(fds[0]);
        close(fds[1]);
        struct burst a, b;
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        run_burst(&a, phase == 0 ? "ft10a" : "ft10b");
        int ok = 0, worst = 0;
        for (int i = 0; i < 8; i++) {
            ok += a.acked[i];
            worst = a.ms[i] > worst ? (int)a.ms[i] : worst;
        }
        fprintf(stderr, "FT-10: %d s lock: %d of 8 answered at once (slowest %d ms)\n", hold / 1000, ok, worst);
        T_OK(ok == 8, "%d s lock: requests are answered while the ledger waits (%d of 8)", hold / 1000, ok);
        if (phase == 1) {
            /* 5.5 s in: the ledger is more than 5 s behind */
            double at = t0 + 5600 - tnet_now_ms();
            if (at > 0)
                usleep((useconds_t)(at * 1000));
            run_burst(&b, "ft10c");
            int s503 = 0, acked = 0;
            double slow = 0;
            for (int i = 0; i < 8; i++) {
                s503 += b.status[i] == 503;
                acked += b.acked[i];
                slow = b.ms[i] > slow ? b.ms[i] : slow;
            }
            fprintf(stderr, "FT-10: 5.6 s into the lock: %d of 8 refused with 503 within %.0f ms\n", s503, slow);
            T_OK(s503 == 8 && acked == 0 && slow < 500, "behind by more than 5 s: 503 at once (%d, %.0f ms)", s503,
                 slow);
        }
        int st;
        waitpid(h, &st, 0);
        double took = wait_recorded(&a, t0, hold + 4000);
        fprintf(stderr, "FT-10: %d s lock: every answer recorded %.0f ms after the lock began\n", hold / 1000, took);
        T_OK(took >= 0 && (phase == 1 || took <= 2500 + 500), "%d s lock: all recorded after the lock (%.0f ms)",
             hold / 1000, took);
        struct kz_ledger *l;
        struct kz_err err = {{0}};
        T_OK(kz_ledger_open(db, NULL, &l, &err) == KZ_OK, "open: %s", err.msg);
        int refused_recorded = 0;
        for (int i = 0; phase == 1 && i < 8; i++) {
            struct kz_ledger_usage u;
            refused_recorded += usage_of(l, b.ids[i], &u, &err) == KZ_OK;
        }
        T_EQ_INT(refused_recorded, 0);
        T_OK(kz_ledger_check(l, &err) == KZ_OK, "check: %s", err.msg);
        kz_ledger_close(l);
    }
    /* after the lock: back to normal */
    int st = 0;
    T_OK(stream_once("ft10-after", &st) == ACKED, "served again (%d)", st);
    st = tnet_stop(&srv, SIGTERM, 10000);
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "clean stop");
}

/* ---- FT-9 --------------------------------------------------------------------------------------- */

static void ft9(void)
{
    char dir[800], path[900], filler[900];
    snprintf(dir, sizeof dir, "%s/tmpfs", t_tmpdir());
    mkdir(dir, 0700);
    /* needs root (as CI and the setup script run); said plainly otherwise */
    int mounted = mount("tmpfs", dir, "tmpfs", 0, "size=8m") == 0;
    T_OK(mounted, "mount an 8 MiB tmpfs at %s: %s", dir, mounted ? "ok" : strerror(errno));
    if (!mounted)
        return;
    snprintf(path, sizeof path, "%s/ledger.db", dir);
    if (setup_ledger(path)) {
        umount(dir);
        return;
    }
    T_OK(spawn_srv() == 0, "server");
    int st = 0;
    T_OK(stream_once("ft9-before", &st) == ACKED, "served (%d)", st);
    /* fill the file system to the last block */
    snprintf(filler, sizeof filler, "%s/filler", dir);
    FILE *f = fopen(filler, "w");
    static char block[4096];
    memset(block, 'x', sizeof block);
    while (f && fwrite(block, 1, sizeof block, f) == sizeof block && fflush(f) == 0)
        ;
    while (f && fwrite(block, 1, 1, f) == 1 && fflush(f) == 0)
        ;
    if (f)
        fclose(f);
    int acked = 0, refused = 0, other = 0, with_retry = 0, answered[40] = {0};
    for (int i = 0; i < 40; i++) {
        char id[32];
        snprintf(id, sizeof id, "ft9-full-%d", i);
        char auth[128], ik[64];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        snprintf(ik, sizeof ik, "Idempotency-Key: %s", id);
        const char *h[] = {auth, ik, NULL};
        struct tnet_resp r;
        int s = tnet_request(port, "POST", "/v1/chat/completions", h,
                             "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":10}",
                             10000, &r);
        if (s == 200)
            acked++, answered[i] = 1;
        else if (s == 503) {
            refused++;
            with_retry += tnet_header(&r, "retry-after") != NULL;
        } else {
            other++;
        }
        tnet_resp_free(&r);
    }
    fprintf(stderr, "FT-9: disk full: %d refused with 503, %d answered, %d other\n", refused, acked, other);
    T_OK(refused > 0 && other == 0 && with_retry == refused, "disk full: %d refused with 503 + Retry-After, %d "
                                                              "answered, %d other",
         refused, acked, other);
    /* every answer that went out is in the ledger (read after space is back) */
    unlink(filler);
    double t0 = tnet_now_ms();
    int back = 0;
    while (!back && tnet_now_ms() - t0 < 5000) {
        back = stream_once("ft9-after", &st) == ACKED;
        if (!back)
            usleep(100000);
    }
    fprintf(stderr, "FT-9: served again %.0f ms after space was freed\n", tnet_now_ms() - t0);
    T_OK(back, "served again without a restart within 5 s (%.0f ms)", tnet_now_ms() - t0);
    struct kz_ledger *l;
    struct kz_err err = {{0}};
    T_OK(kz_ledger_open(db, NULL, &l, &err) == KZ_OK, "open: %s", err.msg);
    /* answers given while the disk was full wait in the settle journal; the
     * writer retries them each second */
    for (double w0 = tnet_now_ms(); rows_total(l) < acked + 2 && tnet_now_ms() - w0 < 5000;)
        usleep(50000);
    int missing = 0;
    for (int i = 0; i < 40; i++) {
        char id[32];
        snprintf(id, sizeof id, "ft9-full-%d", i);
        struct kz_ledger_usage u;
        missing += answered[i] && usage_of(l, id, &u, &err) != KZ_OK;
    }
    T_OK(rows_total(l) >= acked + 2, "every answer recorded (%lld rows, %d answered while full)",
         (long long)rows_total(l), acked);
    T_EQ_INT(missing, 0);
    T_OK(kz_ledger_check(l, &err) == KZ_OK, "integrity: %s", err.msg);
    kz_ledger_close(l);
    st = tnet_stop(&srv, SIGTERM, 10000);
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "clean stop");
    umount2(dir, MNT_DETACH);
}

int main(void)
{
    const char *argv[] = {getenv("KZ_MOCKLLM"), "--port", "0", "--mode", "slow", "--tokens", "10", "--cadence-ms",
                          "10", NULL};
    int up = tnet_spawn(&mock, argv, NULL, NULL, 10000) == 0;
    T_OK(up, "mockllm");
    if (!up)
        return t_done();
    port = tnet_free_port();
    write_yaml();
    ft11();
    ft10();
    ft9();
    tnet_stop(&mock, SIGTERM, 5000);
    return t_done();
}
