/* SPDX-License-Identifier: MIT
 * The security tests SC-1..SC-9 of RELIABILITY.md, against a real server
 * with a ledger and mockllm upstream:
 *   SC-1  every non-public route of the route table answers 401 without a key
 *   SC-2  wrong, revoked, expired keys and a real prefix with a wrong body: 401;
 *         revocation holds for the very next request
 *   SC-3  tenant A's key against tenant B's usage, keys and tenant: 403/404,
 *         and no body carries B's key prefix or B's spend
 *   SC-4  a non-admin key cannot mint, widen, revoke, credit or read the
 *         router's state; the stored keys and tenants stay byte-identical
 *   SC-5  budget race: budget = 10 reservations, 100 requests released at a
 *         barrier, 50 rounds; <= 10 admitted, spent + reserved <= budget at
 *         every 1 ms sample, no reservation left
 *   SC-6  8 concurrent first requests on a new key that affords one: <= 1
 *   SC-7  10,000 mixed requests: the ledger's cost is exactly the upstream's
 *         usage times the prices, in integer micro-dollars
 *   SC-8  100 keys: none of them in the database, its WAL, the log or /metrics;
 *         32-byte hashes and 12-character prefixes stored
 *   SC-9  a canary prompt and a canary answer: in no log, database or metrics
 *         byte, nor in any error body
 */
#include <pthread.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>

#include "api/routes.h"
#include "ledger/keys.h"
#include "ledger/ledger.h"
#include "t.h"
#include "tnet.h"
#include "tenancy/manage.h"

#define CANARY_PROMPT "CANARY-7f3a-prompt-91c2"
#define CANARY_WORD "CANARY7f3aANSWER"

static struct tnet_proc mock, srv;
static char db[800], yaml[800], logpath[800];
static char admin_key[64];

static int64_t now_ms(void) { return (int64_t)(tnet_now_ms()); }

static void stop_srv(void)
{
    int st = tnet_stop(&srv, SIGTERM, 10000);
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "server exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* ---- helpers --------------------------------------------------------------------------------- */

static struct kz_ledger *ledger(void)
{
    struct kz_ledger *l = NULL;
    struct kz_err err = {{0}};
    if (kz_ledger_open(db, NULL, &l, &err) != KZ_OK)
        T_OK(0, "open %s: %s", db, err.msg);
    return l;
}

static int64_t tenant(struct kz_ledger *l, const char *name)
{
    struct kz_ledger_tenant_spec s = {.name = name};
    int64_t id = 0;
    struct kz_err err = {{0}};
    T_OK(kz_ledger_tenant_create(l, &s, &id, &err) == KZ_OK, "tenant %s: %s", name, err.msg);
    return id;
}

static int64_t key(struct kz_ledger *l, int64_t tid, int admin, int64_t budget, int64_t expires_ms, char out[64])
{
    struct kz_keys_spec s = {.tenant_id = tid, .privacy = KZ_PRIVACY_EXTERNAL, .admin = admin,
                             .has_budget = budget > 0, .budget = budget, .period = KZ_PERIOD_TOTAL,
                             .expires_ms = expires_ms};
    int64_t id = 0;
    struct kz_err err = {{0}};
    T_OK(kz_keys_create(l, &s, out, &id, &err) == KZ_OK, "key: %s", err.msg);
    return id;
}

static int call(const char *method, const char *path, const char *k, const char *body, struct tnet_resp *r)
{
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %.100s", k ? k : "");
    const char *h[] = {auth, NULL};
    return tnet_request(srv.port, method, path, k ? h : NULL, body, 20000, r);
}

static int status(const char *method, const char *path, const char *k, const char *body)
{
    struct tnet_resp r;
    int st = call(method, path, k, body, &r);
    tnet_resp_free(&r);
    return st;
}

static const char chat_body[] =
    "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],\"max_tokens\":4}";

/* Everything in a file, for grepping (kz_free). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f)
        return NULL;
    size_t cap = 1 << 16;
    char *b = kz_malloc(cap);
    size_t n;
    while (b && (n = fread(b + *len, 1, cap - *len, f)) > 0) {
        *len += n;
        if (*len == cap) {
            char *nb = kz_realloc(b, cap * 2);
            if (!nb)
                break;
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    return b;
}

static int contains(const char *hay, size_t len, const char *needle)
{
    return hay && memmem(hay, len, needle, strlen(needle)) != NULL;
}

/* How many of the places a secret could leak hold `needle`. */
static int leaks(const char *needle, const char *metrics)
{
    static const char *const files[] = {"", "-wal", "-shm"};
    int hits = 0;
    for (int i = 0; i < 3; i++) {
        char p[900];
        snprintf(p, sizeof p, "%s%s", db, files[i]);
        size_t n;
        char *b = slurp(p, &n);
        hits += contains(b, n, needle);
        kz_free(b);
    }
    size_t n;
    char *b = slurp(logpath, &n);
    hits += contains(b, n, needle);
    kz_free(b);
    hits += metrics && strstr(metrics, needle) != NULL;
    return hits;
}

/* Answers are recorded behind them; any admin or usage read waits until
 * the ledger holds every answer given before it. Then the file is current. */
static void sync_ledger(void)
{
    struct tnet_resp r;
    call("GET", "/admin/usage", admin_key, NULL, &r);
    tnet_resp_free(&r);
}

static char *metrics_text(void)
{
    struct tnet_resp r;
    char *out = NULL;
    if (call("GET", "/metrics", NULL, NULL, &r) == 200 && r.body)
        out = kz_strdup(r.body);
    tnet_resp_free(&r);
    return out;
}

/* ---- SC-1 / SC-2 ------------------------------------------------------------------------------- */

static void sc1_routes(void)
{
    int bad = 0, checked = 0;
    for (size_t i = 0; i < kz_n_routes; i++) {
        char path[128];
        /* a concrete path for the pattern */
        const char *p = kz_routes[i].pattern;
        size_t k = 0;
        while (*p && k + 8 < sizeof path) {
            if (*p == '{') {
                k += (size_t)snprintf(path + k, sizeof path - k, "1");
                p = strchr(p, '}') + 1;
            } else {
                path[k++] = *p++;
            }
        }
        path[k] = '\0';
        const char *body = strcmp(kz_routes[i].method, "POST") == 0 ? "{}" : NULL;
        int st = status(kz_routes[i].method, path, NULL, body);
        int want_401 = kz_routes[i].auth != KZ_AUTH_PUBLIC;
        if (want_401 ? st != 401 : st == 401 || st < 0) {
            T_OK(0, "SC-1: %s %s without a key: %d", kz_routes[i].method, path, st);
            bad++;
        }
        checked++;
    }
    T_OK(bad == 0 && checked == (int)kz_n_routes, "SC-1: %d routes checked", checked);
    /* paths the table does not know: 401 too, before any 404 */
    T_EQ_INT(status("GET", "/v1/secret-route", NULL, NULL), 401);
    T_EQ_INT(status("GET", "/admin/other", NULL, NULL), 401);
}

static void sc2_keys(struct kz_ledger *l, int64_t tid)
{
    char k[64], exp[64], rev[64];
    key(l, tid, 0, 0, 0, k);
    int64_t expires = (int64_t)time(NULL) * 1000 + 3000;
    key(l, tid, 0, 0, expires, exp);
    int64_t rev_id = key(l, tid, 0, 0, 0, rev);
    T_EQ_INT(status("POST", "/v1/chat/completions", k, chat_body), 200);
    T_EQ_INT(status("POST", "/v1/chat/completions", exp, chat_body), 200);
    char wrong[64];
    snprintf(wrong, sizeof wrong, "%s", k);
    wrong[strlen(wrong) - 1] = wrong[strlen(wrong) - 1] == 'A' ? 'B' : 'A'; /* the prefix is right */
    T_EQ_INT(status("POST", "/v1/chat/completions", wrong, chat_body), 401);
    T_EQ_INT(status("POST", "/v1/chat/completions", "kz-0000000000000000000000000000000000000000000", chat_body),
             401);
    T_EQ_INT(status("POST", "/v1/chat/completions", "sk-not-ours", chat_body), 401);
    /* revoked over the admin API: refused on the very next request */
    T_EQ_INT(status("POST", "/v1/chat/completions", rev, chat_body), 200);
    char path[64];
    snprintf(path, sizeof path, "/admin/keys/%lld/revoke", (long long)rev_id);
    T_EQ_INT(status("POST", path, admin_key, "{}"), 200);
    T_EQ_INT(status("POST", "/v1/chat/completions", rev, chat_body), 401);
    /* expired */
    while ((int64_t)time(NULL) * 1000 <= expires + 1000)
        usleep(100 * 1000);
    struct tnet_resp r;
    T_EQ_INT(call("POST", "/v1/chat/completions", exp, chat_body, &r), 401);
    T_OK(r.body && strstr(r.body, "expired"), "says expired: %s", r.body ? r.body : "");
    tnet_resp_free(&r);
}

/* ---- SC-3 / SC-4 ------------------------------------------------------------------------------- */

/* The stored keys and tenants as text: equal before and after means unchanged. */
static char *snapshot(void)
{
    struct kz_ledger *l = ledger();
    struct kz_mg_error e;
    json_t *a = kz_mg_key_list(l, NULL, &e), *b = kz_mg_tenant_list(l, &e);
    json_t *o = json_pack("{s:o?, s:o?}", "keys", a, "tenants", b);
    char *s = kz_mg_dump(o);
    json_decref(o);
    kz_ledger_close(l);
    return s;
}

static void sc3_sc4(struct kz_ledger *l)
{
    int64_t ta = tenant(l, "alpha"), tb = tenant(l, "beta");
    char ka[64], kb[64];
    key(l, ta, 0, 0, 0, ka);
    int64_t kb_id = key(l, tb, 0, 0, 0, kb);
    /* beta spends a recognisable amount: 7 answers */
    for (int i = 0; i < 7; i++)
        status("POST", "/v1/chat/completions", kb, chat_body);
    status("POST", "/v1/chat/completions", ka, chat_body);
    sync_ledger();
    struct kz_keys_info bi;
    struct kz_err err = {{0}};
    T_OK(kz_keys_get(l, kb_id, &bi, &err) == KZ_OK, "beta's key");
    char b_spent[32], b_prefix[16];
    snprintf(b_spent, sizeof b_spent, "%lld", (long long)bi.spent);
    snprintf(b_prefix, sizeof b_prefix, "%s", bi.prefix);
    kz_keys_info_free(&bi);
    char p1[128], p2[128], p3[128];
    snprintf(p1, sizeof p1, "/admin/keys/%lld/revoke", (long long)kb_id);
    snprintf(p2, sizeof p2, "/admin/keys/%lld", (long long)kb_id);
    snprintf(p3, sizeof p3, "/v1/usage?tenant=beta&tenant_id=%lld&by=key", (long long)tb);
    struct {
        const char *method, *path, *body;
    } probes[] = {
        {"GET", "/admin/usage?tenant=beta", NULL},
        {"GET", "/admin/usage?tenant=beta&by=key", NULL},
        {"GET", "/admin/keys?tenant=beta", NULL},
        {"GET", "/admin/keys", NULL},
        {"GET", "/admin/tenants", NULL},
        {"POST", p1, "{}"},
        {"DELETE", p2, NULL},
        {"POST", "/admin/tenants/beta/credit", "{\"amount_usd\": 5}"},
        {"GET", p3, NULL},
        {"GET", "/v1/usage?by=key", NULL},
        {"GET", "/v1/usage?by=model", NULL},
        /* SC-4: minting and widening */
        {"POST", "/admin/keys", "{\"tenant\":\"alpha\",\"admin\":true}"},
        {"POST", "/admin/keys", "{\"tenant\":\"beta\"}"},
        {"POST", "/admin/keys", "{\"tenant\":\"alpha\",\"budget_usd\":1000000}"},
        {"POST", "/admin/keys", "{\"tenant\":\"alpha\",\"models\":[\"chat\",\"other\"]}"},
        {"POST", "/admin/tenants", "{\"name\":\"gamma\"}"},
        {"POST", "/admin/tenants/alpha/credit", "{\"amount_usd\": 100}"},
        {"GET", "/v1/providers", NULL},
    };
    char *before = snapshot();
    int leaked = 0, allowed = 0;
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        struct tnet_resp r;
        int st = call(probes[i].method, probes[i].path, ka, probes[i].body, &r);
        int is_own_usage = strncmp(probes[i].path, "/v1/usage", 9) == 0;
        if (is_own_usage ? st != 200 : st != 403 && st != 404) {
            T_OK(0, "%s %s with alpha's key: %d", probes[i].method, probes[i].path, st);
            allowed++;
        }
        if (r.body && (strstr(r.body, b_prefix) || strstr(r.body, b_spent) || strstr(r.body, "beta"))) {
            T_OK(0, "%s %s shows beta's data: %s", probes[i].method, probes[i].path, r.body);
            leaked++;
        }
        tnet_resp_free(&r);
    }
    char *after = snapshot();
    T_EQ_INT(allowed, 0);
    T_EQ_INT(leaked, 0);
    T_OK(before && after && strcmp(before, after) == 0, "SC-4: keys and tenants unchanged");
    kz_free(before);
    kz_free(after);
    /* beta's own key still works: nothing was revoked */
    T_EQ_INT(status("POST", "/v1/chat/completions", kb, chat_body), 200);
}

/* ---- SC-5 / SC-6 ------------------------------------------------------------------------------- */

#define RACE_N 100

struct race {
    const char *key;
    int n;
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
    a->r->status[a->i] = status("POST", "/v1/chat/completions", a->r->key, chat_body);
    return NULL;
}

struct sampler {
    struct kz_ledger *l;
    int64_t key_id, budget;
    volatile int stop;
    int samples, over;
    int64_t worst;
};

static void *sampler_main(void *arg)
{
    struct sampler *s = arg;
    while (!s->stop) {
        struct kz_keys_info k;
        struct kz_err err = {{0}};
        if (kz_keys_get(s->l, s->key_id, &k, &err) == KZ_OK) {
            s->samples++;
            int64_t held = k.spent + k.reserved;
            s->worst = held > s->worst ? held : s->worst;
            s->over += held > s->budget;
            kz_keys_info_free(&k);
        }
        usleep(1000);
    }
    return NULL;
}

/* n concurrent requests on a new key whose budget affords `fits`
 * reservations; the number answered. */
static int race(struct kz_ledger *l, int64_t tid, int n, int fits, struct sampler *smp)
{
    int64_t reserve = (int64_t)strlen(chat_body) + 4 * 1000;
    char k[64];
    int64_t kid = key(l, tid, 0, fits * reserve, 0, k);
    struct race r = {.key = k, .n = n};
    pthread_barrier_init(&r.go, NULL, (unsigned)n);
    struct race_arg args[RACE_N];
    pthread_t th[RACE_N], sth;
    smp->l = l;
    smp->key_id = kid;
    smp->budget = fits * reserve;
    smp->stop = 0;
    pthread_create(&sth, NULL, sampler_main, smp);
    for (int i = 0; i < n; i++) {
        args[i] = (struct race_arg){&r, i};
        pthread_create(&th[i], NULL, race_main, &args[i]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    smp->stop = 1;
    pthread_join(sth, NULL);
    pthread_barrier_destroy(&r.go);
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok += r.status[i] == 200;
    struct kz_keys_info ki;
    struct kz_err err = {{0}};
    if (kz_keys_get(l, kid, &ki, &err) == KZ_OK) {
        smp->over += ki.spent > smp->budget || ki.reserved != 0;
        kz_keys_info_free(&ki);
    }
    return ok;
}

static void sc5_sc6(struct kz_ledger *l)
{
    /* slow answers: no request settles while the others are admitted */
    struct tnet_resp r;
    T_EQ_INT(tnet_request(mock.port, "POST", "/_mock/mode", NULL,
                          "{\"mode\":\"slow\",\"cadence_ms\":20,\"tokens\":4}", 5000, &r),
             200);
    tnet_resp_free(&r);
    int64_t tid = tenant(l, "racer");
    int worst_admitted = 0, over = 0, samples = 0;
    for (int round = 0; round < 50; round++) {
        struct sampler s = {0};
        int ok = race(l, tid, RACE_N, 10, &s);
        worst_admitted = ok > worst_admitted ? ok : worst_admitted;
        over += s.over;
        samples += s.samples;
    }
    fprintf(stderr, "SC-5: 50 rounds, at most %d admitted, %d samples, %d over the budget\n", worst_admitted, samples,
            over);
    T_OK(worst_admitted <= 10 && worst_admitted > 0, "SC-5: at most 10 admitted per round (worst %d)",
         worst_admitted);
    T_OK(over == 0 && samples > 50, "SC-5: spent + reserved within the budget at all %d samples, and after",
         samples);
    int64_t count = -1;
    struct kz_err err = {{0}};
    kz_ledger_reservations(l, &count, NULL, &err);
    T_EQ_INT(count, 0);
    /* SC-6: a new key, 8 first requests at once, a budget for one */
    int worst6 = 0;
    for (int round = 0; round < 10; round++) {
        struct sampler s = {0};
        int ok = race(l, tid, 8, 1, &s);
        worst6 = ok > worst6 ? ok : worst6;
        over += s.over;
    }
    T_OK(worst6 == 1 && over == 0, "SC-6: at most one of 8 first requests admitted (worst %d)", worst6);
    T_EQ_INT(tnet_request(mock.port, "POST", "/_mock/mode", NULL, "{\"mode\":\"ok\",\"tokens\":8}", 5000, &r), 200);
    tnet_resp_free(&r);
}

/* ---- SC-7 ---------------------------------------------------------------------------------------- */

#define SC7_N 10000
#define SC7_THREADS 8

struct sc7 {
    const char *key;
    int next;
    pthread_mutex_t mu;
    int64_t expected; /* micro-dollars by mockllm's rules */
    int errors;
};

/* mockllm's usage rules: prompt tokens = content bytes / 4 + 1, completion
 * tokens = min(max_tokens, 8) per choice. Prices: 1 and 1000 micro-dollars. */
static void *sc7_main(void *arg)
{
    struct sc7 *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int i = s->next < SC7_N ? s->next++ : -1;
        pthread_mutex_unlock(&s->mu);
        if (i < 0)
            return NULL;
        unsigned x = (unsigned)i * 2654435761u;
        int max_tokens = 1 + (int)(x % 12), content = 1 + (int)((x >> 8) % 200), stream = (x >> 16) & 1;
        char text[256], body[512];
        memset(text, 'a', (size_t)content);
        text[content] = '\0';
        snprintf(body, sizeof body,
                 "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"max_tokens\":%d%s}",
                 text, max_tokens, stream ? ",\"stream\":true" : "");
        struct tnet_resp r;
        int st = call("POST", "/v1/chat/completions", s->key, body, &r);
        int ok = st == 200 && r.body && (stream ? strstr(r.body, "[DONE]") != NULL : 1);
        tnet_resp_free(&r);
        int64_t cost = (int64_t)(content / 4 + 1) + 1000 * (max_tokens < 8 ? max_tokens : 8);
        pthread_mutex_lock(&s->mu);
        if (ok)
            s->expected += cost;
        else
            s->errors++;
        pthread_mutex_unlock(&s->mu);
    }
}

static void sc7(struct kz_ledger *l)
{
    int64_t tid = tenant(l, "counted");
    char k[64];
    int64_t kid = key(l, tid, 0, 0, 0, k);
    struct sc7 s = {.key = k, .mu = PTHREAD_MUTEX_INITIALIZER};
    pthread_t th[SC7_THREADS];
    for (int i = 0; i < SC7_THREADS; i++)
        pthread_create(&th[i], NULL, sc7_main, &s);
    for (int i = 0; i < SC7_THREADS; i++)
        pthread_join(th[i], NULL);
    T_EQ_INT(s.errors, 0);
    sync_ledger();
    struct kz_ledger_usage_row *rows = NULL;
    size_t n = 0;
    struct kz_err err = {{0}};
    struct kz_ledger_query q = {.by = KZ_GROUP_TOTAL};
    T_OK(kz_ledger_usage(l, tid, &q, &rows, &n, &err) == KZ_OK && n == 1, "usage");
    T_OK(n == 1 && rows[0].requests == SC7_N && rows[0].cost == s.expected,
         "SC-7: %lld requests cost %lld micro-USD in the ledger, %lld by the upstream's usage", n ? (long long)rows[0].requests : -1LL,
         n ? (long long)rows[0].cost : -1LL, (long long)s.expected);
    kz_free(rows);
    struct kz_keys_info ki;
    T_OK(kz_keys_get(l, kid, &ki, &err) == KZ_OK && ki.spent == s.expected && ki.reserved == 0,
         "SC-7: the key's spend equals it and nothing stays reserved");
    kz_keys_info_free(&ki);
    struct kz_ledger_tenant t;
    T_OK(kz_ledger_tenant_get(l, tid, &t, &err) == KZ_OK && t.balance == -s.expected && t.reserved == 0,
         "SC-7: the tenant's balance is minus the same sum");
}

/* ---- SC-8 / SC-9 ---------------------------------------------------------------------------------- */

static void sc8(struct kz_ledger *l)
{
    int64_t tid = tenant(l, "many");
    static char keys[100][64];
    for (int i = 0; i < 100; i++) {
        struct tnet_resp r;
        T_EQ_INT(call("POST", "/admin/keys", admin_key, "{\"tenant\":\"many\"}", &r), 201);
        json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
        const char *v = json_string_value(json_object_get(j, "key"));
        snprintf(keys[i], sizeof keys[i], "%s", v ? v : "");
        json_decref(j);
        tnet_resp_free(&r);
        if (i % 10 == 0) /* and use some */
            status("POST", "/v1/chat/completions", keys[i], chat_body);
    }
    (void)tid;
    char *metrics = metrics_text();
    int hits = 0, distinct = 1;
    for (int i = 0; i < 100; i++) {
        hits += leaks(keys[i], metrics);
        hits += leaks(keys[i] + 12, metrics); /* the secret part alone */
        for (int j = 0; j < i; j++)
            distinct &= strcmp(keys[i], keys[j]) != 0;
    }
    kz_free(metrics);
    T_EQ_INT(hits, 0);
    T_OK(distinct, "100 distinct keys");
    /* what is stored per key */
    sqlite3 *d;
    sqlite3_stmt *st;
    int bad = 1;
    if (sqlite3_open_v2(db, &d, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(d, "SELECT count(*) FROM api_keys WHERE length(hash) != 32 OR length(prefix) > 12", -1,
                           &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            bad = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(d);
    T_EQ_INT(bad, 0);
}

static void sc9(void)
{
    char k[64];
    struct kz_ledger *l = ledger();
    int64_t tid = tenant(l, "canary");
    key(l, tid, 0, 0, 0, k);
    kz_ledger_close(l);
    static const char good[] = "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"" CANARY_PROMPT
                               "\"}],\"max_tokens\":6}";
    static const char streamed[] = "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"" CANARY_PROMPT
                                   "\"}],\"max_tokens\":6,\"stream\":true}";
    struct tnet_resp r;
    T_EQ_INT(call("POST", "/v1/chat/completions", k, good, &r), 200);
    T_OK(r.body && strstr(r.body, CANARY_WORD), "the answer carries the canary word");
    tnet_resp_free(&r);
    T_EQ_INT(status("POST", "/v1/chat/completions", k, streamed), 200);
    /* error paths with the canary in the request */
    static const char *const bad_bodies[] = {
        "{\"model\":\"nope\",\"messages\":[{\"role\":\"user\",\"content\":\"" CANARY_PROMPT "\"}]}",
        "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"" CANARY_PROMPT "\"}],\"max_tokens\":-5}",
        "{\"model\":\"chat\",\"messages\":[{\"role\":\"wizard\",\"content\":\"" CANARY_PROMPT "\"}]}",
        "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"" CANARY_PROMPT "\"}],\"n\":\"x\"}",
    };
    int in_errors = 0;
    for (size_t i = 0; i < sizeof bad_bodies / sizeof bad_bodies[0]; i++) {
        int st = call("POST", "/v1/chat/completions", k, bad_bodies[i], &r);
        T_OK(st >= 400 && st < 500, "bad request %zu: %d", i, st);
        in_errors += r.body && strstr(r.body, CANARY_PROMPT) != NULL;
        tnet_resp_free(&r);
        call("POST", "/v1/chat/completions", NULL, bad_bodies[i], &r); /* and without a key */
        in_errors += r.body && strstr(r.body, CANARY_PROMPT) != NULL;
        tnet_resp_free(&r);
    }
    T_EQ_INT(in_errors, 0);
    char *metrics = metrics_text();
    T_EQ_INT(leaks(CANARY_PROMPT, metrics), 0);
    T_EQ_INT(leaks(CANARY_WORD, metrics), 0);
    kz_free(metrics);
}

int main(void)
{
    const char *margv[] = {getenv("KZ_MOCKLLM"), "--port", "0", "--word", CANARY_WORD, NULL};
    int up = tnet_spawn(&mock, margv, NULL, NULL, 10000) == 0;
    T_OK(up, "mockllm");
    if (!up)
        return t_done();
    snprintf(db, sizeof db, "%s/security.db", t_tmpdir());
    snprintf(yaml, sizeof yaml, "%s/security.yaml", t_tmpdir());
    snprintf(logpath, sizeof logpath, "%s/security.log", t_tmpdir());
    FILE *f = fopen(yaml, "w");
    if (f) {
        fprintf(f,
                "server: {max_connections_per_ip: 512}\n"
                "providers:\n  - name: up\n    type: openai\n    base_url: http://127.0.0.1:%d/v1\n"
                "    api_key: env:SC_UPSTREAM_KEY\n"
                "    price: {input_per_mtok: 1, output_per_mtok: 1000}\n"
                "models:\n  - name: chat\n    deployments: [{provider: up, model: m}]\n",
                mock.port);
        fclose(f);
    }
    struct kz_ledger *l = ledger();
    if (!l)
        return t_done();
    int64_t ops = tenant(l, "ops");
    key(l, ops, 1, 0, 0, admin_key);
    const char *argv[] = {getenv("KZ_BIN"), "serve", "--config", yaml, "--db", db, "--port", "0", NULL};
    const char *env[] = {"SC_UPSTREAM_KEY=sk-upstream-CANARY-secret", NULL};
    up = tnet_spawn(&srv, argv, env, logpath, 20000) == 0;
    T_OK(up, "server");
    if (up) {
        (void)now_ms;
        sc1_routes();
        sc2_keys(l, ops);
        sc3_sc4(l);
        sc5_sc6(l);
        sc7(l);
        sc8(l);
        sc9();
        char *metrics = metrics_text();
        T_EQ_INT(leaks("sk-upstream-CANARY-secret", metrics), 0); /* SC-12 as well */
        kz_free(metrics);
        stop_srv();
    }
    struct kz_err err = {{0}};
    T_OK(kz_ledger_check(l, &err) == KZ_OK, "ledger invariants: %s", err.msg);
    kz_ledger_close(l);
    tnet_stop(&mock, SIGTERM, 5000);
    return t_done();
}
