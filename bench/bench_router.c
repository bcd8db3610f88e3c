/* SPDX-License-Identifier: MIT
 * Router overhead: what `kyozon serve --config` adds to a request, measured
 * against calling its upstream directly. It starts mockllm (an upstream that
 * answers at once) and kyozon with one openai provider pointing at it, then
 * sends non-streamed POST /v1/chat/completions at constant arrival rates to
 *   direct  mockllm itself,
 *   kyozon  the router in front of it,
 *   peer    optionally another gateway in front of the same mockllm (--peer).
 *
 * The load is open-loop: request i is due at t0 + i / rate, and its latency
 * runs from that due time, so a server that stalls pays for every request
 * queued behind the stall (no coordinated omission). --conns keep-alive
 * connections, one request in flight on each, one epoll thread. Targets
 * take turns at each rate and the sweep repeats --reps times; tables show
 * medians, added latency against the direct run of the same repetition. A
 * target stops climbing (in that repetition) at the first rate it does not
 * hold: an error, or a p99 above the bound. With --interleave MS, kyozon
 * and the second target (peer or ledger) share each run instead, taking
 * turns every MS ms at the full rate; with --together both get the full
 * rate for the whole run, their requests alternating. Either way both meet
 * the same machine, which on a shared host moves by more than small
 * differences between them. With --pin the load generator keeps the first
 * CPU to itself and the servers (mockllm, kyozon, the peer's threads) share
 * the others, as when clients are on other machines; otherwise the kernel
 * places all three where it likes. Only 127.0.0.1 is contacted:
 * URLs must name it (or localhost), sockets connect to INADDR_LOOPBACK.
 */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <sched.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/prctl.h>

#include "../tests/tnet.h"

#define MAX_RATES 16
#define MAX_REPS 9
#define MAX_CONNS 1024
#define NONE ((double)NAN) /* no figure: the target did not run */
enum { T_DIRECT, T_KYOZON, T_PEER, N_TARGETS };

struct opts {
    double rates[MAX_RATES];
    int n_rates;
    double duration_s, warmup_s, p99_bound_ms;
    int max_requests, conns, reps, timeout_ms, mock_port, peer_pid, peer_port, ledger;
    double interleave_ms; /* > 0: kyozon and the second target take turns within one run */
    int together;         /* kyozon and the second target both at the full rate in one run */
    int pin;              /* the load generator on the first CPU, the servers on the others */
    const char *kyozon_bin, *mockllm_bin, *peer_url, *peer_name, *upstream_stream;
    char peer_prefix[256];   /* the path of its base URL */
    char peer_headers[2048]; /* "Name: value\r\n" lines */
};

struct target {
    const char *name;
    int port;
    pid_t pid;      /* for its CPU column; 0 when unknown */
    char *request;  /* the whole request, the same bytes every time */
    size_t request_len;
};

struct result {
    int ran;
    long errors;
    double p50, p90, p99, max, cpu_pct, mock_cpu_pct;
};

struct conn {
    struct tnet_conn c;
    int busy, have_head, status, closing;
    double due_ms;
    struct tnet_body body;
    char *scratch; /* the decoded body, thrown away */
    size_t scratch_len, scratch_cap;
};

struct load {
    struct conn conns[MAX_CONNS];
    int n_conns, epfd;
    int idle[MAX_CONNS], n_idle;
    double *lat; /* latencies of the good answers, ms */
    long n_lat, done;
    int timeout_ms;
    const struct target *t;
    long total; /* requests due to this target */
};

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_router [options]\n"
               "  --rates LIST         req/s to sweep (default 100,250,500,1000,2000,3000,4000,5000,6000,8000,10000)\n"
               "  --duration S         seconds per target and rate (default 3); --requests N: at most N (1000000)\n"
               "  --warmup S           seconds at the first rate before each repetition (default 2)\n"
               "  --conns N            keep-alive connections per target (default 64)\n"
               "  --reps N             repetitions of the sweep; tables show medians (default 3)\n"
               "  --p99-bound-ms MS    a rate is held with 0 errors and p99 at most MS (default 50)\n"
               "  --timeout-ms MS      an answer later than MS after its due time is an error (default 2000)\n"
               "  --kyozon PATH        the kyozon to measure (default: next to this program, as is mockllm)\n"
               "  --mock-port P        mockllm's port, for a peer's upstream URL (default 0: any free one)\n"
               "  --peer URL           also measure this gateway: base URL, http://127.0.0.1:PORT/... only\n"
               "  --peer-name NAME     its name in the tables (default peer)\n"
               "  --peer-header 'H: V' a header for every peer request (repeatable)\n"
               "  --peer-pid PID       the peer's process, for its CPU column\n"
               "  --upstream-stream M  kyozon's provider setting upstream_stream: always (default) or client\n"
               "  --ledger             instead of a peer: a second kyozon with a ledger (--db) and an API key,\n"
               "                       to measure what authentication, budgets and the usage ledger add\n"
               "  --interleave MS      kyozon and the peer (or ledger) share each run, taking turns every MS ms\n"
               "                       at the full rate (default 0: one run after the other)\n"
               "  --together           kyozon and the peer (or ledger) share each run, both at the full rate\n"
               "                       all the time (requests alternate between them)\n"
               "  --pin                the load generator on the first allowed CPU, mockllm, kyozon and the\n"
               "                       peer (every thread of --peer-pid, given its CPUs back at the end) on\n"
               "                       the others; needs 2 CPUs or more\n");
}

/* "1000,2000,5000" into o->rates. */
static int parse_rates(const char *s, struct opts *o)
{
    o->n_rates = 0;
    for (char *end; *s; s = *end ? end + 1 : end) {
        double r = strtod(s, &end);
        if (end == s || r <= 0 || o->n_rates == MAX_RATES || (*end && *end != ','))
            return -1;
        o->rates[o->n_rates++] = r;
    }
    return o->n_rates ? 0 : -1;
}

/* http://127.0.0.1:PORT/PREFIX taken apart; any other host is refused, so
 * that a typo cannot point load at another machine. */
static int parse_loopback_url(const char *url, int *port, char *prefix, size_t prefix_size)
{
    int n = 0;
    if (sscanf(url, "http://127.0.0.1:%5d%n", port, &n) != 1 && sscanf(url, "http://localhost:%5d%n", port, &n) != 1)
        return -1;
    size_t pl = strlen(url + n);
    while (pl && url[n + pl - 1] == '/')
        pl--; /* one form of base URL: no trailing slash */
    if (*port <= 0 || *port > 65535 || (url[n] && url[n] != '/') || pl >= prefix_size)
        return -1;
    snprintf(prefix, prefix_size, "%.*s", (int)pl, url + n);
    return 0;
}

/* One option: a string (s), or a number in [min, max] (d, or i: whole). */
struct optdef {
    const char *name;
    const char **s;
    double *d;
    int *i;
    double min, max;
};

static int set_option(const struct optdef *d, const char *v)
{
    char *end;
    double x = strtod(v, &end);
    if (d->s)
        *d->s = v;
    else if (end == v || *end || !(x >= d->min && x <= d->max) || (d->i && x != floor(x)))
        return -1;
    else if (d->d)
        *d->d = x;
    else
        *d->i = (int)x;
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    const struct optdef defs[] = {
        {"--duration", .d = &o->duration_s, .min = 1e-3, .max = 1e5},
        {"--requests", .i = &o->max_requests, .min = 1, .max = 1e9},
        {"--warmup", .d = &o->warmup_s, .min = 0, .max = 1e5},
        {"--conns", .i = &o->conns, .min = 1, .max = MAX_CONNS},
        {"--reps", .i = &o->reps, .min = 1, .max = MAX_REPS},
        {"--p99-bound-ms", .d = &o->p99_bound_ms, .min = 1e-3, .max = 1e7},
        {"--timeout-ms", .i = &o->timeout_ms, .min = 1, .max = 1e7},
        {"--mock-port", .i = &o->mock_port, .min = 0, .max = 65535},
        {"--peer-pid", .i = &o->peer_pid, .min = 1, .max = 1e9},
        {"--interleave", .d = &o->interleave_ms, .min = 0, .max = 1e6},
        {"--kyozon", .s = &o->kyozon_bin},
        {"--peer-name", .s = &o->peer_name},
        {"--upstream-stream", .s = &o->upstream_stream},
    };
    for (int i = 1; i < argc; i++) {
        int *flag = !strcmp(argv[i], "--ledger")     ? &o->ledger /* the flags without a value */
                    : !strcmp(argv[i], "--together") ? &o->together
                    : !strcmp(argv[i], "--pin")      ? &o->pin
                                                     : NULL;
        if (flag) {
            *flag = 1;
            continue;
        }
        const char *a = argv[i], *v = i + 1 < argc ? argv[++i] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!v)
            return fprintf(stderr, "bench_router: %s needs a value (see --help)\n", a), -1;
        int bad = -2;
        if (!strcmp(a, "--rates"))
            bad = parse_rates(v, o);
        else if (!strcmp(a, "--peer")) {
            o->peer_url = v;
            bad = parse_loopback_url(v, &o->peer_port, o->peer_prefix, sizeof o->peer_prefix);
        } else if (!strcmp(a, "--peer-header")) {
            size_t used = strlen(o->peer_headers), n = strlen(v) + 2;
            bad = !strchr(v, ':') || strpbrk(v, "\r\n") || used + n >= sizeof o->peer_headers;
            if (!bad)
                snprintf(o->peer_headers + used, n + 1, "%s\r\n", v);
        }
        for (size_t k = 0; bad == -2 && k < sizeof defs / sizeof defs[0]; k++)
            if (!strcmp(a, defs[k].name))
                bad = set_option(&defs[k], v);
        if (bad == -2)
            return fprintf(stderr, "bench_router: unknown option %s (see --help)\n", a), -1;
        if (bad)
            return fprintf(stderr, "bench_router: bad value for %s: '%s'\n", a, v), -1;
    }
    if (o->ledger && o->peer_url)
        return fprintf(stderr, "bench_router: --ledger and --peer take the same slot; give one\n"), -1;
    if (o->together && o->interleave_ms > 0)
        return fprintf(stderr, "bench_router: --together and --interleave are two ways to pair; give one\n"), -1;
    return 0;
}

/* The request a target gets, built once (a short answer: max_tokens 4);
 * bearer: its API key (every target gets one, so requests weigh the same);
 * hdrs: extra header lines. */
static int build_request(struct target *t, const char *prefix, const char *bearer, const char *hdrs)
{
    static const char body[] = "{\"model\":\"bench\",\"messages\":[{\"role\":\"user\",\"content\":\"Say ok.\"}],"
                               "\"max_tokens\":4}";
    int bl = (int)sizeof body - 1;
    size_t cap = strlen(prefix) + strlen(bearer) + strlen(hdrs) + (size_t)bl + 256;
    if (!(t->request = kz_malloc(cap)))
        return -1;
    t->request_len = (size_t)snprintf(t->request, cap,
                                      "POST %s/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                      "Content-Type: application/json\r\nAuthorization: Bearer %s\r\n"
                                      "%sContent-Length: %d\r\n\r\n%s",
                                      prefix, t->port, bearer, hdrs, bl, body);
    return 0;
}

/* CPU time a process has used (user and system, ns precision), in ms; -1
 * if unknown. */
static double proc_cpu_ms(pid_t pid)
{
    char path[64];
    double ns = -1e6;
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
    FILE *f = pid > 0 ? fopen(path, "r") : NULL;
    if (f && fscanf(f, "%lf", &ns) != 1)
        ns = -1e6;
    if (f)
        fclose(f);
    return ns / 1e6;
}

// ---------------------------------------------------------------- one connection

static int conn_open(struct load *L, struct conn *k, int port)
{
    k->busy = k->have_head = k->closing = 0;
    if (tnet_connect(&k->c, port) != 0)
        return -1;
    fcntl(k->c.fd, F_SETFL, fcntl(k->c.fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = k};
    return epoll_ctl(L->epfd, EPOLL_CTL_ADD, k->c.fd, &ev);
}

static void conn_close(struct conn *k)
{
    tnet_disconnect(&k->c); /* closing the socket also takes it out of the epoll set */
    KZ_FREE(k->scratch);
    k->scratch_len = k->scratch_cap = 0;
}

/* A short write counts as a failure: the previous answer was read whole,
 * so an idle keep-alive socket has room for a few hundred bytes unless
 * something is wrong with it. */
static int conn_send(struct conn *k, const struct target *t, double due_ms)
{
    k->due_ms = due_ms;
    k->have_head = 0;
    k->busy = send(k->c.fd, t->request, t->request_len, MSG_NOSIGNAL) == (ssize_t)t->request_len;
    return k->busy ? 0 : -1;
}

/* The status and the body's framing, from a response head. */
static int parse_head(struct conn *k, const char *head, size_t len)
{
    if (len < 12 || strncmp(head, "HTTP/1.", 7) != 0)
        return -1;
    k->status = atoi(head + 9);
    memset(&k->body, 0, sizeof k->body);
    k->body.mode = 2; /* until close, unless a header says otherwise */
    k->closing = head[7] == '0';
    for (const char *l = memchr(head, '\n', len); l; l = memchr(l, '\n', (size_t)(head + len - l))) {
        l++;
        size_t ll = (size_t)(head + len - l);
        const char *eol = memchr(l, '\r', ll);
        size_t vl = eol ? (size_t)(eol - l) : ll;
        if (vl > 15 && strncasecmp(l, "content-length:", 15) == 0 && k->body.mode != 1) {
            k->body.mode = 0;
            k->body.left = strtoull(l + 15, NULL, 10);
        } else if (vl > 18 && strncasecmp(l, "transfer-encoding:", 18) == 0) {
            k->body.mode = 1;
        } else if (vl > 11 && strncasecmp(l, "connection:", 11) == 0) {
            k->closing = memmem(l, vl, "close", 5) != NULL;
        }
    }
    if (k->status == 204 || k->status == 304)
        k->body.mode = 3;
    return 0;
}

/* Reads what has arrived. 1: an answer is complete (k->status); 0: more to
 * come; -1: the connection failed or broke the protocol. */
static int conn_read(struct conn *k)
{
    char tmp[16384];
    ssize_t n;
    do /* a short read means the socket is drained: no extra read for EAGAIN */
        n = recv(k->c.fd, tmp, sizeof tmp, 0);
    while (n > 0 && tnet_append(&k->c.buf, &k->c.len, &k->c.cap, tmp, (size_t)n) == 0 && n == sizeof tmp);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        k->c.eof = 1; /* FIN, or an error such as a reset */
    if (!k->busy)
        return k->c.len || k->c.eof ? -1 : 0; /* bytes nobody asked for */
    if (!k->have_head) {
        char *end = k->c.len >= 4 ? memmem(k->c.buf, k->c.len, "\r\n\r\n", 4) : NULL;
        if (!end)
            return k->c.eof || k->c.len > (64u << 10) ? -1 : 0;
        size_t hl = (size_t)(end - k->c.buf);
        if (parse_head(k, k->c.buf, hl) != 0)
            return -1;
        tnet_consume(&k->c, hl + 4);
        k->have_head = 1;
        k->scratch_len = 0;
    }
    int s = tnet_body_step(&k->c, &k->body, &k->scratch, &k->scratch_len, &k->scratch_cap);
    if (s == 0 && k->c.eof && k->body.mode == 2)
        s = 1, k->closing = 1;
    return s < 0 || (s == 0 && k->c.eof) ? -1 : s;
}

// ---------------------------------------------------------------- one run

static double due_at(double t0, double period, long i) { return t0 + period * (double)i; }

/* The answer (or a failure) for the request in flight on k. */
static void finish(struct load *L, struct conn *k, int ok, double now)
{
    double lat = now - k->due_ms;
    if (ok && lat <= L->timeout_ms)
        L->lat[L->n_lat++] = lat;
    L->done++;
    k->busy = 0;
}

/* Replaces a connection that broke or that the server closes; `listed`: it
 * is on the idle stack already (it broke while idle). */
static void reopen(struct load *L, struct conn *k, int port, int listed)
{
    conn_close(k);
    if (conn_open(L, k, port) == 0 && !listed)
        L->idle[L->n_idle++] = (int)(k - L->conns);
}

static void on_readable(struct load *L, struct conn *k, int port, double now)
{
    int r = conn_read(k), was_busy = k->busy;
    if (r == 0)
        return;
    if (was_busy)
        finish(L, k, r == 1 && k->status >= 200 && k->status < 300, now);
    if (r < 0 || k->closing || !was_busy)
        reopen(L, k, port, !was_busy);
    else
        L->idle[L->n_idle++] = (int)(k - L->conns);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarize(struct load *L, long total, struct result *r)
{
    qsort(L->lat, (size_t)L->n_lat, sizeof *L->lat, cmp_double);
    long n = L->n_lat;
    r->ran = 1;
    r->errors = total - n; /* failed, late, or never sent */
    r->p50 = n ? L->lat[(long)ceil(0.50 * (double)n) - 1] : NONE;
    r->p90 = n ? L->lat[(long)ceil(0.90 * (double)n) - 1] : NONE;
    r->p99 = n ? L->lat[(long)ceil(0.99 * (double)n) - 1] : NONE;
    r->max = n ? L->lat[n - 1] : NONE;
}

/* The load a connection belongs to, among n loads. */
static struct load *owner(struct load *Ls, int n, const struct conn *k)
{
    for (int m = 0; m < n; m++)
        if (k >= Ls[m].conns && k < Ls[m].conns + MAX_CONNS)
            return &Ls[m];
    return &Ls[0];
}

/* rate × duration requests (at most max_requests) over o->conns connections
 * per target, open-loop. With one target every request goes to it; with
 * two, request i goes to the one whose turn it is at its due time (turns of
 * o->interleave_ms). Requests not answered timeout_ms after the last one
 * was due are errors. mock: the upstream's process, for its CPU. r[m] gets
 * target m's figures; its CPU share is scaled to the time it had the load. */
static int run_load(const struct opts *o, const struct target *const *ts, int nts, pid_t mock, double rate,
                    double duration_s, struct result *r)
{
    static struct load Ls[2];
    long total = (long)(rate * duration_s) < o->max_requests ? (long)(rate * duration_s) : o->max_requests;
    int epfd = epoll_create1(EPOLL_CLOEXEC), rc = epfd < 0 ? -1 : 0;
    double cpu0[2], mcpu0 = proc_cpu_ms(mock);
    for (int m = 0; m < nts; m++) {
        struct load *L = &Ls[m];
        memset(L, 0, sizeof *L);
        L->timeout_ms = o->timeout_ms;
        L->t = ts[m];
        L->epfd = epfd;
        L->lat = kz_malloc((size_t)(total > 0 ? total : 1) * sizeof *L->lat);
        rc |= !L->lat ? -1 : 0;
        for (L->n_conns = 0; !rc && L->n_conns < o->conns; L->n_conns++) {
            rc = conn_open(L, &L->conns[L->n_conns], L->t->port);
            L->idle[L->n_idle++] = L->n_conns;
        }
        cpu0[m] = proc_cpu_ms(ts[m]->pid);
    }
    if (nts > 1 && o->together) /* each target at the full rate: the requests alternate */
        rate *= nts, total *= nts;
    double period = 1e3 / rate, t0 = tnet_now_ms() + 1, end = due_at(t0, period, total - 1) + o->timeout_ms;
    long next = 0, done = 0;
    for (double now = tnet_now_ms(); !rc && done < total && now < end; now = tnet_now_ms()) {
        long due = now < t0 ? 0 : (long)((now - t0) / period) + 1;
        due = due < total ? due : total;
        while (next < due) {
            double at = due_at(t0, period, next);
            int m = nts == 1 ? 0 : o->together ? (int)(next % nts) : (int)((long)((at - t0) / o->interleave_ms) % nts);
            struct load *L = &Ls[m];
            if (L->n_idle == 0)
                break;
            struct conn *k = &L->conns[L->idle[--L->n_idle]];
            next++;
            L->total++;
            if (conn_send(k, L->t, at) != 0) {
                finish(L, k, 0, now);
                reopen(L, k, L->t->port, 0);
            }
        }
        /* Wake for the next request, unless one already waits for a
         * connection: then only an answer can move things on. epoll_pwait2
         * (Linux 5.11) takes ns: whole ms are too coarse at 0.1 ms apart. */
        struct epoll_event evs[64];
        double left = fmax(0, (next == due && due < total ? due_at(t0, period, due) : end) - now);
        struct timespec ts_ = {(time_t)(left / 1e3), (long)(fmod(left, 1e3) * 1e6)};
        int n = epoll_pwait2(epfd, evs, 64, &ts_, NULL);
        now = tnet_now_ms();
        for (int i = 0; i < n; i++) {
            struct load *L = owner(Ls, nts, evs[i].data.ptr);
            long before = L->done;
            on_readable(L, evs[i].data.ptr, L->t->port, now);
            done += L->done - before;
        }
    }
    double wall = tnet_now_ms() - t0, mcpu1 = proc_cpu_ms(mock);
    for (int m = 0; m < nts; m++) {
        struct load *L = &Ls[m];
        double cpu1 = proc_cpu_ms(ts[m]->pid);
        /* requests never sent (the run ended first) are this target's errors too */
        long mine = nts == 1 ? total : L->total + (total - next) / nts;
        summarize(L, mine, &r[m]);
        double share = o->together ? 1 : nts; /* in turns, each had the load 1/nts of the time */
        r[m].cpu_pct = cpu0[m] >= 0 && cpu1 >= 0 ? 100.0 * share * (cpu1 - cpu0[m]) / wall : NONE;
        r[m].mock_cpu_pct = mcpu0 >= 0 && mcpu1 >= 0 ? 100.0 * (mcpu1 - mcpu0) / wall : NONE;
        for (int i = 0; i < L->n_conns; i++)
            conn_close(&L->conns[i]);
        kz_free(L->lat);
    }
    if (epfd >= 0)
        close(epfd);
    return rc;
}

// ---------------------------------------------------------------- the servers

/* kyozon with one openai provider (the upstream) and one model, "bench";
 * with a ledger when db is not NULL. */
static int start_kyozon(const struct opts *o, int upstream_port, const char *db, struct tnet_proc *p)
{
    char cfg[64], log[64];
    snprintf(cfg, sizeof cfg, "/tmp/bench_router.%d.yaml", (int)getpid());
    snprintf(log, sizeof log, "/tmp/bench_router.%d.kyozon%s.log", (int)getpid(), db ? "-ledger" : "");
    FILE *f = fopen(cfg, "w");
    if (!f)
        return -1;
    fprintf(f,
            "server: {host: 127.0.0.1, port: 0}\n"
            "providers:\n  - {name: mock, type: openai, base_url: \"http://127.0.0.1:%d/v1\", privacy: private,\n"
            "     upstream_stream: %s,\n"
            "     price: {input_per_mtok: 0.15, output_per_mtok: 0.6}}\n"
            "models:\n  - name: bench\n    deployments:\n      - {provider: mock, model: bench}\n",
            upstream_port, o->upstream_stream);
    if (fclose(f) != 0)
        return -1;
    const char *argv[] = {o->kyozon_bin, "serve", "--config", cfg, db ? "--db" : NULL, db, NULL};
    int rc = tnet_spawn(p, argv, NULL, log, 10000);
    unlink(cfg);
    return rc;
}

/* A fresh ledger at db with one tenant and one key (into key). */
static int make_ledger(const struct opts *o, const char *db, char *key, size_t size)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -f '%s' '%s-wal' '%s-shm' && '%s' tenants create bench --db '%s' >/dev/null", db, db,
             db, o->kyozon_bin, db);
    if (system(cmd) != 0)
        return -1;
    snprintf(cmd, sizeof cmd, "'%s' keys create --tenant bench --db '%s'", o->kyozon_bin, db);
    FILE *p = popen(cmd, "r");
    int ok = p && fgets(key, (int)size, p) != NULL;
    if (p)
        ok &= pclose(p) == 0;
    key[strcspn(key, "\n")] = '\0';
    return ok && strncmp(key, "kz-", 3) == 0 ? 0 : -1;
}

/* The files a run leaves under /tmp, removed when it succeeds and named
 * when it fails (the servers' logs say why). */
static void tidy_files(int failed)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "/tmp/bench_router.%d.*", (int)getpid());
    if (failed) {
        fprintf(stderr, "bench_router: the servers' logs are in %s\n", pattern);
        return;
    }
    glob_t g = {0};
    if (glob(pattern, 0, NULL, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; i++)
            unlink(g.gl_pathv[i]);
    globfree(&g);
}

// ---------------------------------------------------------------- placement

/* The CPUs this program may use, split for --pin: the first into load, the
 * others into servers. -1 with fewer than two. */
static int split_cpus(cpu_set_t *load, cpu_set_t *servers)
{
    cpu_set_t all;
    if (sched_getaffinity(0, sizeof all, &all) != 0 || CPU_COUNT(&all) < 2)
        return -1;
    CPU_ZERO(load);
    *servers = all;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all)) {
            CPU_SET(c, load);
            CPU_CLR(c, servers);
            break;
        }
    return 0;
}

/* Every thread of process pid onto set; threads it starts later inherit
 * it. Passes repeat until one finds every thread already there, so that a
 * thread started meanwhile by one not yet moved is caught too; a thread
 * that ends meanwhile (ESRCH) is no error. */
static int pin_process(pid_t pid, const cpu_set_t *set)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    for (int pass = 0; pass < 10; pass++) {
        DIR *d = opendir(path);
        if (!d)
            return -1;
        int moved = 0, seen = 0, failed = 0;
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (e->d_name[0] == '.')
                continue;
            pid_t tid = (pid_t)atoi(e->d_name);
            cpu_set_t now;
            if (sched_getaffinity(tid, sizeof now, &now) != 0) {
                failed |= errno != ESRCH;
                continue;
            }
            seen++;
            if (CPU_EQUAL(&now, set))
                continue;
            if (sched_setaffinity(tid, sizeof *set, set) != 0)
                failed |= errno != ESRCH;
            else
                moved++;
        }
        closedir(d);
        if (failed || !seen)
            return -1;
        if (!moved)
            return 0;
    }
    return -1;
}

/* Starts mockllm and kyozon and builds each target's request. The number
 * of targets, or -1. */
static int setup_targets(const struct opts *o, struct tnet_proc *mock, struct tnet_proc *kz, struct tnet_proc *kz2,
                         struct target *t)
{
    char mport[16], log[64];
    snprintf(mport, sizeof mport, "%d", o->mock_port);
    snprintf(log, sizeof log, "/tmp/bench_router.%d.mockllm.log", (int)getpid());
    const char *argv[] = {o->mockllm_bin, "--host", "127.0.0.1", "--port", mport, NULL};
    if (tnet_spawn(mock, argv, NULL, log, 10000) != 0)
        return fprintf(stderr, "bench_router: %s did not start\n", o->mockllm_bin), -1;
    if (start_kyozon(o, mock->port, NULL, kz) != 0)
        return fprintf(stderr, "bench_router: %s did not start\n", o->kyozon_bin), -1;
    t[T_DIRECT] = (struct target){.name = "direct", .port = mock->port, .pid = mock->pid};
    t[T_KYOZON] = (struct target){.name = "kyozon", .port = kz->port, .pid = kz->pid};
    /* a dummy key of a real key's length where none is checked */
    static const char dummy[] = "kz-bench0000000000000000000000000000000000000000";
    if (build_request(&t[T_DIRECT], "/v1", dummy, "") || build_request(&t[T_KYOZON], "/v1", dummy, ""))
        return -1;
    if (o->ledger) {
        static char db[64], key[128];
        snprintf(db, sizeof db, "/tmp/bench_router.%d.db", (int)getpid());
        if (make_ledger(o, db, key, sizeof key) != 0 || start_kyozon(o, mock->port, db, kz2) != 0)
            return fprintf(stderr, "bench_router: kyozon with a ledger at %s did not start\n", db), -1;
        t[T_PEER] = (struct target){.name = "kz+ledger", .port = kz2->port, .pid = kz2->pid};
        return build_request(&t[T_PEER], "/v1", key, "") ? -1 : 3;
    }
    if (!o->peer_url)
        return 2;
    t[T_PEER] = (struct target){.name = o->peer_name, .port = o->peer_port, .pid = o->peer_pid};
    return build_request(&t[T_PEER], o->peer_prefix, "sk-bench", o->peer_headers) ? -1 : 3;
}

// ---------------------------------------------------------------- tables

static double median(double *v, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]))
            v[k++] = v[i];
    qsort(v, (size_t)k, sizeof *v, cmp_double);
    return !k ? NONE : k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

typedef struct result sweep_t[MAX_RATES][N_TARGETS];

/* The median over repetitions of a result field, or of its difference to
 * the direct run of the same repetition (added latency). */
static double med(sweep_t *res, int reps, int ri, int ti, size_t off, int added)
{
    double v[MAX_REPS];
    for (int k = 0; k < reps; k++) {
        const struct result *a = &res[k][ri][ti], *d = &res[k][ri][T_DIRECT];
        double x = *(const double *)(const void *)((const char *)a + off);
        double y = *(const double *)(const void *)((const char *)d + off);
        v[k] = !a->ran || (added && !d->ran) ? NONE : added ? x - y : x;
    }
    return median(v, reps);
}
#define MED(ri, ti, field, added) med(res, o->reps, ri, ti, offsetof(struct result, field), added)

static void print_cpu(double pct) { isnan(pct) ? printf(" |") : printf(" %.0f%% |", pct); }

static void print_tables(sweep_t *res, const struct opts *o, const struct target *t, int nt)
{
    printf("\n| req/s | target | p50 ms | p90 ms | p99 ms | max ms | errors | added p50 | added p99 "
           "| server CPU | mockllm CPU |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int ri = 0; ri < o->n_rates; ri++)
        for (int ti = 0; ti < nt; ti++) {
            double err[MAX_REPS];
            int ran = 0;
            for (int k = 0; k < o->reps; k++) {
                ran += res[k][ri][ti].ran;
                err[k] = res[k][ri][ti].ran ? (double)res[k][ri][ti].errors : NONE;
            }
            if (!ran)
                continue;
            printf("| %.0f | %s | %.3f | %.3f | %.3f | %.2f | %.0f%s |", o->rates[ri], t[ti].name, MED(ri, ti, p50, 0),
                   MED(ri, ti, p90, 0), MED(ri, ti, p99, 0), MED(ri, ti, max, 0), median(err, o->reps),
                   ran < o->reps ? " (not in every rep)" : "");
            if (ti == T_DIRECT)
                printf(" | |");
            else
                printf(" %.3f | %.3f |", MED(ri, ti, p50, 1), MED(ri, ti, p99, 1));
            print_cpu(MED(ri, ti, cpu_pct, 0));
            print_cpu(MED(ri, ti, mock_cpu_pct, 0));
            printf("\n");
        }
    printf("\n| target | highest rate held: 0 errors in every rep, median p99 <= %g ms |\n|---|---|\n",
           o->p99_bound_ms);
    for (int ti = 0; ti < nt; ti++) {
        double best = 0;
        for (int ri = 0; ri < o->n_rates; ri++) {
            int held = MED(ri, ti, p99, 0) <= o->p99_bound_ms;
            for (int k = 0; k < o->reps; k++)
                held &= res[k][ri][ti].ran && !res[k][ri][ti].errors;
            best = held && o->rates[ri] > best ? o->rates[ri] : best;
        }
        printf("| %s | %.0f req/s |\n", t[ti].name, best);
    }
}

/* --ledger: what the ledger and authentication add on top of the router,
 * per repetition (kz+ledger minus kyozon, run side by side), then the median. */
static void print_ledger_table(sweep_t *res, const struct opts *o)
{
    printf("\n| req/s | ledger + auth add p50 ms | p99 ms | kz+ledger CPU | kyozon CPU |\n|---|---|---|---|---|\n");
    for (int ri = 0; ri < o->n_rates; ri++) {
        double d50[MAX_REPS], d99[MAX_REPS];
        for (int k = 0; k < o->reps; k++) {
            const struct result *a = &res[k][ri][T_PEER], *b = &res[k][ri][T_KYOZON];
            int both = a->ran && b->ran;
            d50[k] = both ? a->p50 - b->p50 : NONE;
            d99[k] = both ? a->p99 - b->p99 : NONE;
        }
        double m50 = median(d50, o->reps);
        if (isnan(m50))
            continue;
        printf("| %.0f | %.3f | %.3f |", o->rates[ri], m50, median(d99, o->reps));
        print_cpu(MED(ri, T_PEER, cpu_pct, 0));
        print_cpu(MED(ri, T_KYOZON, cpu_pct, 0));
        printf("\n");
    }
}

// ---------------------------------------------------------------- main

/* Repetitions × rates × targets, targets taking turns at each rate. */
static int sweep(const struct opts *o, const struct target *t, int nt, pid_t mock, sweep_t *res)
{
    for (int k = 0; k < o->reps; k++) {
        int stopped[N_TARGETS] = {0};
        struct result w;
        for (int ti = 0; ti < nt && o->warmup_s > 0; ti++) { /* connections, caches, a JIT */
            const struct target *one = &t[ti];
            run_load(o, &one, 1, mock, o->rates[0], o->warmup_s, &w);
        }
        for (int ri = 0; ri < o->n_rates; ri++)
            for (int ti = 0; ti < nt; ti++) {
                /* paired (--interleave, --together): kyozon's run carries the peer's too */
                int paired = o->interleave_ms > 0 || o->together;
                int pair = paired && nt == 3 && ti == T_KYOZON && !stopped[T_PEER];
                if (stopped[ti] || (paired && ti == T_PEER))
                    continue;
                const struct target *ts[2] = {&t[ti], &t[T_PEER]};
                struct result *r = &res[k][ri][ti];
                struct result two[2];
                if (run_load(o, ts, pair ? 2 : 1, mock, o->rates[ri], o->duration_s, pair ? two : r) != 0)
                    return fprintf(stderr, "bench_router: cannot reach %s on port %d\n", t[ti].name, t[ti].port),
                           -1;
                if (pair) {
                    *r = two[0];
                    res[k][ri][T_PEER] = two[1];
                }
                for (int m = 0; m < (pair ? 2 : 1); m++) {
                    int tj = m ? T_PEER : ti;
                    const struct result *x = &res[k][ri][tj];
                    fprintf(stderr, "rep %d  %6.0f req/s  %-8s p50 %.3f  p99 %.3f  max %.2f ms  errors %ld\n",
                            k + 1, o->rates[ri], t[tj].name, x->p50, x->p99, x->max, x->errors);
                    stopped[tj] = x->errors > 0 || !(x->p99 <= o->p99_bound_ms);
                }
            }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct opts o = {.duration_s = 3, .warmup_s = 2, .p99_bound_ms = 50,
                            .max_requests = 1000000, .conns = 64, .reps = 3,
                            .timeout_ms = 2000, .peer_name = "peer", .upstream_stream = "always"};
    static char kbin[4200], mbin[4200]; /* next to this program, where the build puts them */
    const char *slash = strrchr(argv[0], '/');
    int dl = slash ? (int)(slash - argv[0]) : 1;
    snprintf(kbin, sizeof kbin, "%.*s/kyozon", dl, slash ? argv[0] : ".");
    snprintf(mbin, sizeof mbin, "%.*s/mockllm", dl, slash ? argv[0] : ".");
    o.kyozon_bin = kbin;
    o.mockllm_bin = mbin;
    parse_rates("100,250,500,1000,2000,3000,4000,5000,6000,8000,10000", &o);
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1UL); /* wake at the due time, not up to 50 us after it */
    static struct tnet_proc mock, kz, kz2;
    static struct target t[N_TARGETS];
    static sweep_t res[MAX_REPS];
    cpu_set_t load_cpus, server_cpus;
    if (o.pin && split_cpus(&load_cpus, &server_cpus) != 0)
        return fprintf(stderr, "bench_router: --pin needs at least 2 CPUs this program may run on\n"), 2;
    /* the servers inherit this thread's CPUs when they are started */
    if (o.pin && sched_setaffinity(0, sizeof server_cpus, &server_cpus) != 0)
        return perror("bench_router: sched_setaffinity"), 2;
    /* the peer's CPUs as they were, given back at the end */
    cpu_set_t peer_cpus;
    int peer_pinned = 0;
    if (o.pin && o.peer_url && (!o.peer_pid || sched_getaffinity(o.peer_pid, sizeof peer_cpus, &peer_cpus) != 0))
        return fprintf(stderr, "bench_router: --pin with --peer needs the peer's --peer-pid, to move it too\n"), 2;
    int nt = setup_targets(&o, &mock, &kz, &kz2, t), rc = nt < 0;
    if (!rc && o.pin && o.peer_url) {
        peer_pinned = 1;
        if (pin_process(o.peer_pid, &server_cpus) != 0)
            rc = 1, fprintf(stderr, "bench_router: could not move the threads of --peer-pid %d\n", o.peer_pid);
    }
    if (!rc && o.pin && sched_setaffinity(0, sizeof load_cpus, &load_cpus) != 0)
        rc = 1, perror("bench_router: sched_setaffinity");
    if (!rc) {
        printf("bench_router: %ld CPUs online, %d connections, %g s per run, %d reps%s\n",
               sysconf(_SC_NPROCESSORS_ONLN), o.conns, o.duration_s, o.reps,
               o.pin ? ", load generator pinned to one CPU, servers to the others" : "");
        rc = sweep(&o, t, nt, mock.pid, res) != 0;
    }
    if (!rc)
        print_tables(res, &o, t, nt);
    if (!rc && o.ledger)
        print_ledger_table(res, &o);
    if (kz.pid > 0)
        tnet_stop(&kz, SIGTERM, 5000);
    if (kz2.pid > 0)
        tnet_stop(&kz2, SIGTERM, 5000);
    if (mock.pid > 0)
        tnet_stop(&mock, SIGTERM, 5000);
    if (peer_pinned && pin_process(o.peer_pid, &peer_cpus) != 0)
        fprintf(stderr, "bench_router: could not give the threads of --peer-pid %d their CPUs back\n", o.peer_pid);
    for (int ti = 0; ti < N_TARGETS; ti++)
        kz_free(t[ti].request);
    tidy_files(rc);
    return rc;
}
