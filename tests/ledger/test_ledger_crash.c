/* SPDX-License-Identifier: MIT
 * Crash recovery (RELIABILITY FT-11, at the store level): a child process
 * reserves and settles in a loop, reporting each settle the ledger confirmed
 * on a pipe before going on, and is SIGKILLed at a random moment; 20 times,
 * on the same database, alternating synchronous settles and the batching
 * writer. After each kill: the store's integrity check passes, every
 * reported request is in the ledger exactly once, retries added nothing, and
 * the reservations the dead child held are released by the sweep.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "ledger/writer.h"
#include "tledger.h"

#define ITERATIONS 20
#define HOLD 500
#define MAX_IDS 100000

static void report(int fd, const char *id)
{
    char line[KZ_LEDGER_ID_MAX + 1];
    int n = snprintf(line, sizeof line, "%s\n", id);
    /* One write per line (< PIPE_BUF), so the parent never sees half an id. */
    while (write(fd, line, (size_t)n) < 0 && errno == EINTR) {
    }
}

static void on_settled(void *ud, kz_status rc, const struct kz_err *err, const struct kz_ledger_usage *stored,
                       int duplicate)
{
    (void)err;
    if (rc == KZ_OK && !duplicate)
        report(*(int *)ud, stored->request_id);
}

/* The child: never returns. */
static void child(const char *path, int fd, int iteration, int64_t tenant, int64_t key)
{
    struct kz_ledger *l = NULL;
    struct kz_err err;
    if (kz_ledger_open(path, NULL, &l, &err))
        _exit(3);
    struct kz_ledger_writer *w = NULL;
    if (iteration % 2 && kz_ledger_writer_start(l, NULL, &w, &err))
        _exit(4);
    for (int i = 0; i < MAX_IDS; i++) {
        char id[64];
        snprintf(id, sizeof id, "c%02d-%06d", iteration, i);
        int64_t r = 0;
        if (kz_ledger_reserve(l, key, tenant, HOLD, id, &r, NULL, &err))
            _exit(5);
        if (i % 7 == 3)
            continue; /* a request still in flight when the process dies */
        struct kz_ledger_usage u;
        tl_usage(&u, id, tenant, key, i % 2 ? "m-odd" : "m-even", (int64_t)(i % (HOLD + 1)), TL_T0 + i);
        if (w) {
            if (kz_ledger_writer_submit(w, r, &u, on_settled, &fd, &err))
                kz_ledger_writer_flush(w);
        } else {
            int dup = 0;
            if (kz_ledger_settle(l, r, &u, NULL, &dup, &err) || dup)
                _exit(6);
            report(fd, id);
            if (i % 5 == 0 && (kz_ledger_settle(l, 0, &u, NULL, &dup, &err) || !dup))
                _exit(7); /* a retry must find the first record */
        }
    }
    _exit(0);
}

struct ids {
    char (*v)[64];
    size_t n;
    char partial[64];
    size_t plen;
};

static void take_lines(struct ids *s, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] != '\n') {
            if (s->plen < sizeof s->partial - 1)
                s->partial[s->plen++] = buf[i];
            continue;
        }
        s->partial[s->plen] = '\0';
        if (s->n < MAX_IDS)
            snprintf(s->v[s->n++], sizeof s->v[0], "%s", s->partial);
        s->plen = 0;
    }
}

/* Reads the child's reports until `deadline_ms` (monotonic), then kills it
 * and reads what is left. */
static int run_child(const char *path, int iteration, int64_t tenant, int64_t key, int run_ms, struct ids *s)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(p[0]);
        child(path, p[1], iteration, tenant, key);
    }
    close(p[1]);
    double end = tl_mono_ms() + run_ms;
    char buf[4096];
    int killed = 0;
    for (;;) {
        double left = end - tl_mono_ms();
        if (!killed && left <= 0) {
            kill(pid, SIGKILL);
            killed = 1;
        }
        struct pollfd pf = {p[0], POLLIN, 0};
        int pr = poll(&pf, 1, killed ? 1000 : (int)left + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        ssize_t n = read(p[0], buf, sizeof buf);
        if (n > 0)
            take_lines(s, buf, (size_t)n);
        else if (n == 0 || errno != EINTR)
            break; /* EOF: the child is gone */
    }
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? 0 : (WIFEXITED(status) ? WEXITSTATUS(status) : -2);
}

static void kill_and_recover(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tl_fresh("crash"));
    struct kz_err err = {{0}};
    struct kz_ledger *l = tl_open(path, NULL);
    if (!l)
        return;
    int64_t tenant = tl_tenant(l, "crash", 1, -1, KZ_PERIOD_TOTAL);
    int64_t key = tl_key(l, tenant, -1, KZ_PERIOD_TOTAL, NULL);
    T_EQ_INT(kz_ledger_tenant_credit(l, tenant, INT64_C(1000000000000), NULL, &err), KZ_OK);
    /* No connection may cross a fork: the children open their own. */
    kz_ledger_close(l);

    struct ids s;
    memset(&s, 0, sizeof s);
    s.v = kz_calloc(MAX_IDS, sizeof *s.v);
    if (!s.v)
        return;
    srand(11);
    int64_t swept_total = 0, reported_total = 0;
    for (int it = 0; it < ITERATIONS && !t_failures(); it++) {
        s.n = 0;
        s.plen = 0;
        /* PostgreSQL: connecting and each round trip take longer than a
         * local file, so the child needs longer to get anything done */
        int run_ms = tl_pg() ? 300 + rand() % 400 : 30 + rand() % 150;
        int rc = run_child(path, it, tenant, key, run_ms, &s);
        T_OK(rc == 0, "iteration %d: the child was killed, not ended (%d)", it, rc);
        reported_total += (int64_t)s.n;

        /* A long TTL first: what the dead child held is still there... */
        l = tl_open(path, NULL);
        if (!l)
            break;
        tl_check(l);
        int64_t held = tl_open_reservations(l);
        kz_ledger_close(l);
        /* ... until the sweep at open finds it expired. */
        usleep(3000);
        struct kz_ledger_opts o = {0};
        o.reservation_ttl_ms = 2;
        l = tl_open(path, &o);
        if (!l)
            break;
        T_EQ_INT(tl_open_reservations(l), 0);
        swept_total += held;
        size_t missing = 0;
        for (size_t i = 0; i < s.n; i++) {
            struct kz_ledger_usage u;
            missing += kz_ledger_usage_get(l, tenant, s.v[i], &u, &err) != KZ_OK;
        }
        T_OK(missing == 0, "iteration %d: %zu of %zu confirmed settles missing", it, missing, s.n);
        struct kz_ledger_tenant t;
        T_EQ_INT(kz_ledger_tenant_get(l, tenant, &t, &err), KZ_OK);
        T_EQ_INT(t.reserved, 0);
        tl_check(l); /* integrity, counters, balance = credits - usage */
        kz_ledger_close(l);
        T_EQ_INT(tl_int(path, "SELECT COUNT(*) - COUNT(DISTINCT request_id) FROM usage"), 0);
    }
    T_OK(reported_total >= ITERATIONS, "the children confirmed %lld settles in all", (long long)reported_total);
    T_OK(swept_total > 0, "the sweep released %lld reservations of dead children", (long long)swept_total);
    kz_free(s.v);
}

int main(void)
{
    t_subtest("kill_and_recover", kill_and_recover);
    return t_done();
}
