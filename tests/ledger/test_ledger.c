/* SPDX-License-Identifier: MIT
 * The ledger store: schema migrations, tenants and credit, reservations and
 * their limits, budget periods, settle idempotency, usage totals (exact
 * integer sums over 10,000 random records), the expiry sweep, and that every
 * write runs in a BEGIN IMMEDIATE transaction (RELIABILITY FT-10).
 */
#include <pthread.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "tledger.h"
#include "ledger/writer.h"

/* ---- direct access, to look at the store from outside --------------------------- */

static int64_t sql_int(const char *path, const char *sql) { return tl_int(path, sql); }

static int sql_exec(const char *path, const char *sql)
{
    if (kz_ledger_is_postgres(path)) {
        PGconn *c = PQconnectdb(path);
        int ok = PQstatus(c) == CONNECTION_OK;
        if (ok) {
            PGresult *r = PQexec(c, sql);
            ok = PQresultStatus(r) == PGRES_COMMAND_OK;
            PQclear(r);
        }
        PQfinish(c);
        return ok ? 0 : -1;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

/* ---- migrations ----------------------------------------------------------------- */

static void migrations(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tl_fresh("migrate"));
    int v = kz_ledger_schema_version();
    T_OK(v >= 1, "schema version %d", v);

    struct kz_ledger *l = tl_open(path, NULL);
    if (!l)
        return;
    T_EQ_INT(sql_int(path, "SELECT MAX(version) FROM schema_version"), v);
    T_EQ_INT(sql_int(path, "SELECT COUNT(*) FROM schema_version"), v);
    T_EQ_INT(sql_int(path, tl_pg() ? "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'"
                                     " AND table_name IN ('tenants','api_keys','usage','reservations','key_spend',"
                                     "'tenant_spend','credits')"
                                   : "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('tenants','api_keys','usage',"
                                     "'reservations','key_spend','tenant_spend','credits')"),
             7);
    /* WAL is a property of the file: a second connection sees it. */
    sqlite3 *db = NULL;
    if (!tl_pg()) {
    sqlite3_stmt *st = NULL;
    T_OK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
             sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0,
         "journal_mode is wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    }
    int64_t t = tl_tenant(l, "keepme", 0, -1, KZ_PERIOD_TOTAL);
    kz_ledger_close(l);

    /* Reopening applies nothing again and keeps the data. */
    l = tl_open(path, NULL);
    if (!l)
        return;
    T_EQ_INT(sql_int(path, "SELECT COUNT(*) FROM schema_version"), v);
    struct kz_ledger_tenant tn;
    struct kz_err err = {{0}};
    T_OK(kz_ledger_tenant_get(l, t, &tn, &err) == KZ_OK && strcmp(tn.name, "keepme") == 0, "data kept: %s", err.msg);
    kz_ledger_close(l);

    /* A database from a newer kyozon is refused, and left as it was. */
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO schema_version(version, applied_ms) VALUES (%d, 0)", v + 1);
    T_EQ_INT(sql_exec(path, sql), 0);
    l = NULL;
    kz_status rc = kz_ledger_open(path, NULL, &l, &err);
    T_EQ_INT(rc, KZ_EUNSUPPORTED);
    T_OK(l == NULL, "no handle for a refused database");
    T_OK(strstr(err.msg, "newer") && strstr(err.msg, path), "message names the problem and the file: %s", err.msg);
    T_EQ_INT(sql_int(path, "SELECT MAX(version) FROM schema_version"), v + 1);

    if (tl_pg()) {
        /* No server there: refused at once, the password never shown. */
        rc = kz_ledger_open("postgres://kz:hunter2@127.0.0.1:1/x", NULL, &l, &err);
        T_EQ_INT(rc, KZ_EIO);
        T_OK(strstr(err.msg, "unavailable") && strstr(err.msg, "127.0.0.1:1"), "names the server: %s", err.msg);
        T_OK(!strstr(err.msg, "hunter2"), "no password in: %s", err.msg);
        rc = kz_ledger_open("postgres://kz@127.0.0.1:1/x?password=hunter3", NULL, &l, &err);
        T_EQ_INT(rc, KZ_EIO);
        T_OK(!strstr(err.msg, "hunter3"), "no password in: %s", err.msg);
        /* passwords libpq would read as a host or port (and quote back), or
         * not parse at all: refused in our words, no part of them shown */
        static const char *const odd[] = {"postgres://kz:ab/cdx@127.0.0.1:1/x", "postgres://kz:se@cretx@127.0.0.1:1/x",
                                          "postgres://kz:p%zzx@127.0.0.1:1/x",
                                          "postgres://kz:cdx2@127.0.0.1:1/x?password=cdx3"};
        for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
            rc = kz_ledger_open(odd[i], NULL, &l, &err);
            T_EQ_INT(rc, KZ_EINVAL);
            T_OK(!strstr(err.msg, "ab/") && !strstr(err.msg, "cdx") && !strstr(err.msg, "cretx") &&
                     !strstr(err.msg, "zzx"),
                 "no part of the password in: %s", err.msg);
        }
        char shown[128];
        kz_ledger_redact("postgres://kz:a/b@c@db:5/x?password=q&sslmode=require", shown, sizeof shown);
        T_EQ_STR(shown, "postgres://kz:*****@db:5/x?password=*&sslmode=require");
        return;
    }
    /* Not a database at all. */
    const char *junk = tl_fresh("junk");
    FILE *f = fopen(junk, "w");
    if (f) {
        for (int i = 0; i < 200; i++)
            fputs("this is not an SQLite database\n", f);
        fclose(f);
    }
    rc = kz_ledger_open(junk, NULL, &l, &err);
    T_OK(rc != KZ_OK && strstr(err.msg, "junk"), "junk refused: %s", err.msg);
}

/* ---- tenants -------------------------------------------------------------------- */

static void tenants(void)
{
    struct kz_ledger *l = tl_open(tl_fresh("tenants"), NULL);
    if (!l)
        return;
    struct kz_err err = {{0}};
    int64_t a = tl_tenant(l, "acme", 1, 5000000, KZ_PERIOD_MONTH);
    int64_t b = tl_tenant(l, "beta.co", 0, -1, KZ_PERIOD_TOTAL);
    T_OK(a > 0 && b > a, "ids %lld %lld", (long long)a, (long long)b);

    struct kz_ledger_tenant_spec dup = {.name = "acme", .period = KZ_PERIOD_TOTAL};
    int64_t id = 0;
    T_EQ_INT(kz_ledger_tenant_create(l, &dup, &id, &err), KZ_EINVAL);
    T_OK(strstr(err.msg, "already exists") != NULL, "%s", err.msg);
    struct kz_ledger_tenant_spec bad = {.name = "no spaces", .period = KZ_PERIOD_TOTAL};
    T_EQ_INT(kz_ledger_tenant_create(l, &bad, &id, &err), KZ_EINVAL);
    bad.name = "";
    T_EQ_INT(kz_ledger_tenant_create(l, &bad, &id, &err), KZ_EINVAL);
    struct kz_ledger_tenant_spec neg = {.name = "neg", .has_budget = 1, .budget = -1, .period = KZ_PERIOD_TOTAL};
    T_EQ_INT(kz_ledger_tenant_create(l, &neg, &id, &err), KZ_EINVAL);

    struct kz_ledger_tenant t;
    T_EQ_INT(kz_ledger_tenant_find(l, "acme", &t, &err), KZ_OK);
    T_EQ_INT(t.id, a);
    T_OK(t.prepaid && t.has_budget && t.budget == 5000000 && t.period == KZ_PERIOD_MONTH, "acme's settings");
    T_EQ_INT(t.balance, 0);
    T_EQ_INT(kz_ledger_tenant_find(l, "nobody", &t, &err), KZ_ENOTFOUND);
    T_EQ_INT(kz_ledger_tenant_get(l, 9999, &t, &err), KZ_ENOTFOUND);

    int64_t bal = 0;
    T_EQ_INT(kz_ledger_tenant_credit(l, a, 2500000, &bal, &err), KZ_OK);
    T_EQ_INT(bal, 2500000);
    T_EQ_INT(kz_ledger_tenant_credit(l, a, -500000, &bal, &err), KZ_OK);
    T_EQ_INT(bal, 2000000);
    T_EQ_INT(kz_ledger_tenant_credit(l, a, 0, &bal, &err), KZ_EINVAL);
    T_EQ_INT(kz_ledger_tenant_credit(l, 9999, 1, &bal, &err), KZ_ENOTFOUND);
    T_EQ_INT(kz_ledger_tenant_credit(l, a, KZ_LEDGER_MONEY_MAX + 1, &bal, &err), KZ_EINVAL);
    T_EQ_INT(kz_ledger_tenant_balance(l, a, &bal, &err), KZ_OK);
    T_EQ_INT(bal, 2000000);

    struct kz_ledger_tenant *all = NULL;
    size_t n = 0;
    T_EQ_INT(kz_ledger_tenant_list(l, &all, &n, &err), KZ_OK);
    T_EQ_INT(n, 2);
    if (n == 2) {
        T_EQ_STR(all[0].name, "acme");
        T_EQ_STR(all[1].name, "beta.co");
        T_EQ_INT(all[0].balance, 2000000);
        T_OK(!all[1].prepaid && !all[1].has_budget, "beta's settings");
    }
    kz_free(all);
    tl_check(l);
    kz_ledger_close(l);
}

/* ---- reservations -------------------------------------------------------------- */

static void reserve_rules(void)
{
    struct kz_ledger *l = tl_open(tl_fresh("reserve"), NULL);
    if (!l)
        return;
    struct kz_err err = {{0}};
    enum kz_ledger_deny deny = KZ_DENY_NONE;
    int64_t r = 0;
    int64_t a = tl_tenant(l, "a", 0, 1000, KZ_PERIOD_TOTAL);
    int64_t b = tl_tenant(l, "b", 1, -1, KZ_PERIOD_TOTAL);
    int64_t ka = tl_key(l, a, 600, KZ_PERIOD_TOTAL, NULL);
    int64_t kb = tl_key(l, b, -1, KZ_PERIOD_TOTAL, NULL);

    T_EQ_INT(kz_ledger_reserve(l, ka, 9999, 1, "x1", &r, &deny, &err), KZ_ENOTFOUND);
    T_EQ_INT(kz_ledger_reserve(l, kb, a, 1, "x2", &r, &deny, &err), KZ_ENOTFOUND); /* b's key for a */
    T_OK(strstr(err.msg, "does not belong") != NULL, "%s", err.msg);
    T_EQ_INT(kz_ledger_reserve(l, 9999, a, 1, "x3", &r, &deny, &err), KZ_ENOTFOUND);
    T_EQ_INT(kz_ledger_reserve(l, ka, a, -1, "x4", &r, &deny, &err), KZ_EINVAL);
    T_EQ_INT(kz_ledger_reserve(l, ka, a, 1, "", &r, &deny, &err), KZ_EINVAL);

    /* The key's budget (600) binds first. */
    int64_t r1 = tl_reserve(l, ka, a, 400, "r1");
    T_EQ_INT(kz_ledger_reserve(l, ka, a, 201, "r2", &r, &deny, &err), KZ_ELIMIT);
    T_EQ_INT(deny, KZ_DENY_KEY_BUDGET);
    T_OK(strncmp(err.msg, "budget exhausted", 16) == 0, "%s", err.msg);
    T_EQ_INT(kz_ledger_reserve(l, ka, a, 400, "r1", &r, &deny, &err), KZ_EINVAL); /* same request id */
    T_OK(strstr(err.msg, "open reservation") != NULL, "%s", err.msg);
    int64_t r2 = tl_reserve(l, ka, a, 200, "r2");
    /* Without a key only the tenant's budget (1000) applies. */
    T_EQ_INT(kz_ledger_reserve(l, 0, a, 401, "r3", &r, &deny, &err), KZ_ELIMIT);
    T_EQ_INT(deny, KZ_DENY_TENANT_BUDGET);
    T_OK(strncmp(err.msg, "budget exhausted", 16) == 0, "%s", err.msg);
    int64_t r3 = tl_reserve(l, 0, a, 400, "r3");

    struct kz_keys_info k;
    T_EQ_INT(kz_keys_get(l, ka, &k, &err), KZ_OK);
    T_EQ_INT(k.reserved, 600);
    kz_keys_info_free(&k);
    struct kz_ledger_tenant t;
    T_EQ_INT(kz_ledger_tenant_get(l, a, &t, &err), KZ_OK);
    T_EQ_INT(t.reserved, 1000);
    int64_t count = 0, amount = 0;
    T_EQ_INT(kz_ledger_reservations(l, &count, &amount, &err), KZ_OK);
    T_OK(count == 3 && amount == 1000, "3 open, 1000 held (%lld, %lld)", (long long)count, (long long)amount);

    T_EQ_INT(kz_ledger_release(l, r2, &err), KZ_OK);
    T_EQ_INT(kz_ledger_release(l, r2, &err), KZ_ENOTFOUND);
    T_EQ_INT(kz_keys_get(l, ka, &k, &err), KZ_OK);
    T_EQ_INT(k.reserved, 400);
    kz_keys_info_free(&k);

    /* Prepaid tenant b: nothing without credit. */
    T_EQ_INT(kz_ledger_reserve(l, kb, b, 1, "b1", &r, &deny, &err), KZ_ELIMIT);
    T_EQ_INT(deny, KZ_DENY_CREDIT);
    T_OK(strncmp(err.msg, "insufficient credit", 19) == 0, "%s", err.msg);
    T_EQ_INT(kz_ledger_tenant_credit(l, b, 100, NULL, &err), KZ_OK);
    int64_t rb = tl_reserve(l, kb, b, 100, "b1");
    T_EQ_INT(kz_ledger_reserve(l, kb, b, 1, "b2", &r, &deny, &err), KZ_ELIMIT);
    T_EQ_INT(deny, KZ_DENY_CREDIT);

    /* A revoked key reserves nothing more. */
    T_EQ_INT(kz_keys_revoke(l, kb, &err), KZ_OK);
    T_EQ_INT(kz_ledger_tenant_credit(l, b, 100, NULL, &err), KZ_OK);
    T_EQ_INT(kz_ledger_reserve(l, kb, b, 1, "b3", &r, &deny, &err), KZ_ENOTFOUND);
    T_OK(strstr(err.msg, "revoked") != NULL, "%s", err.msg);

    T_EQ_INT(kz_ledger_release(l, r1, &err), KZ_OK);
    T_EQ_INT(kz_ledger_release(l, r3, &err), KZ_OK);
    T_EQ_INT(kz_ledger_release(l, rb, &err), KZ_OK);
    T_EQ_INT(tl_open_reservations(l), 0);
    tl_check(l);
    kz_ledger_close(l);
}

/* Day and month budgets count the current UTC period only. */
static void periods(void)
{
    struct tl_clock clk = {TL_T0};
    struct kz_ledger_opts o = {0};
    o.clock_ms = tl_clock_read;
    o.clock_ud = &clk;
    struct kz_ledger *l = tl_open(tl_fresh("periods"), &o);
    if (!l)
        return;
    struct kz_err err = {{0}};
    int64_t t = tl_tenant(l, "p", 0, -1, KZ_PERIOD_TOTAL);
    int64_t kd = tl_key(l, t, 100, KZ_PERIOD_DAY, NULL);
    int64_t km = tl_key(l, t, 100, KZ_PERIOD_MONTH, NULL);
    int64_t kt = tl_key(l, t, 100, KZ_PERIOD_TOTAL, NULL);
    int64_t keys[3] = {kd, km, kt};
    struct kz_ledger_usage u;
    char id[64];
    int64_t r;
    /* Spend each key's whole budget on 2024-03-31. */
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "spend-%d", i);
        int64_t res = tl_reserve(l, keys[i], t, 100, id);
        tl_usage(&u, id, t, keys[i], "m", 100, TL_T0 + 1000);
        T_EQ_INT(kz_ledger_settle(l, res, &u, NULL, NULL, &err), KZ_OK);
        snprintf(id, sizeof id, "more-%d", i);
        T_EQ_INT(kz_ledger_reserve(l, keys[i], t, 1, id, &r, NULL, &err), KZ_ELIMIT);
    }
    struct kz_keys_info k;
    T_EQ_INT(kz_keys_get(l, kd, &k, &err), KZ_OK);
    T_EQ_INT(k.spent, 100);
    kz_keys_info_free(&k);

    /* 2024-04-01: a new day and a new month; the total stays spent. */
    tl_clock_set(&clk, TL_T0 + TL_DAY);
    T_EQ_INT(kz_keys_get(l, kd, &k, &err), KZ_OK);
    T_EQ_INT(k.spent, 0);
    kz_keys_info_free(&k);
    T_EQ_INT(kz_ledger_reserve(l, kd, t, 100, "day2", &r, NULL, &err), KZ_OK);
    T_EQ_INT(kz_ledger_release(l, r, &err), KZ_OK);
    T_EQ_INT(kz_ledger_reserve(l, km, t, 100, "month2", &r, NULL, &err), KZ_OK);
    T_EQ_INT(kz_ledger_release(l, r, &err), KZ_OK);
    T_EQ_INT(kz_ledger_reserve(l, kt, t, 1, "total2", &r, NULL, &err), KZ_ELIMIT);

    /* 2024-04-15: same month as 04-01; a spend on 04-01 still counts. */
    tl_clock_set(&clk, TL_T0 + TL_DAY);
    int64_t res = tl_reserve(l, km, t, 60, "apr1");
    tl_usage(&u, "apr1", t, km, "m", 60, TL_T0 + TL_DAY);
    T_EQ_INT(kz_ledger_settle(l, res, &u, NULL, NULL, &err), KZ_OK);
    tl_clock_set(&clk, TL_T0 + 15 * TL_DAY);
    T_EQ_INT(kz_ledger_reserve(l, km, t, 41, "apr15", &r, NULL, &err), KZ_ELIMIT);
    T_EQ_INT(kz_ledger_reserve(l, km, t, 40, "apr15", &r, NULL, &err), KZ_OK);
    T_EQ_INT(kz_ledger_release(l, r, &err), KZ_OK);
    /* The tenant budget follows its own period the same way. */
    int64_t td = tl_tenant(l, "pd", 0, 50, KZ_PERIOD_DAY);
    res = tl_reserve(l, 0, td, 50, "pd1");
    tl_usage(&u, "pd1", td, 0, "m", 50, TL_T0 + 15 * TL_DAY);
    T_EQ_INT(kz_ledger_settle(l, res, &u, NULL, NULL, &err), KZ_OK);
    T_EQ_INT(kz_ledger_reserve(l, 0, td, 1, "pd2", &r, NULL, &err), KZ_ELIMIT);
    tl_clock_set(&clk, TL_T0 + 16 * TL_DAY);
    T_EQ_INT(kz_ledger_reserve(l, 0, td, 50, "pd2", &r, NULL, &err), KZ_OK);
    T_EQ_INT(kz_ledger_release(l, r, &err), KZ_OK);
    tl_check(l);
    kz_ledger_close(l);
}

/* ---- settle --------------------------------------------------------------------- */

static void settle_idempotent(void)
{
    struct tl_clock clk = {TL_T0};
    struct kz_ledger_opts o = {0};
    o.clock_ms = tl_clock_read;
    o.clock_ud = &clk;
    o.reservation_ttl_ms = 60000;
    struct kz_ledger *l = tl_open(tl_fresh("settle"), &o);
    if (!l)
        return;
    struct kz_err err = {{0}};
    int64_t a = tl_tenant(l, "a", 1, -1, KZ_PERIOD_TOTAL);
    int64_t b = tl_tenant(l, "b", 0, -1, KZ_PERIOD_TOTAL);
    int64_t ka = tl_key(l, a, 1000, KZ_PERIOD_TOTAL, NULL);
    T_EQ_INT(kz_ledger_tenant_credit(l, a, 1000, NULL, &err), KZ_OK);

    int64_t r1 = tl_reserve(l, ka, a, 300, "req-1");
    struct kz_ledger_usage u, stored;
    tl_usage(&u, "req-1", a, ka, "gpt-x", 70, TL_T0);
    int dup = -1;
    T_EQ_INT(kz_ledger_settle(l, r1, &u, &stored, &dup, &err), KZ_OK);
    T_EQ_INT(dup, 0);
    T_EQ_INT(stored.cost, 70);

    /* The same request id again, even with other figures: nothing added. */
    struct kz_ledger_usage again = u;
    again.cost = 999;
    again.output_tokens = 12345;
    T_EQ_INT(kz_ledger_settle(l, 0, &again, &stored, &dup, &err), KZ_OK);
    T_EQ_INT(dup, 1);
    T_EQ_INT(stored.cost, 70);
    T_EQ_INT(stored.output_tokens, 20);
    T_EQ_STR(stored.model, "gpt-x");

    struct kz_ledger_tenant t;
    T_EQ_INT(kz_ledger_tenant_get(l, a, &t, &err), KZ_OK);
    T_EQ_INT(t.balance, 930);
    T_EQ_INT(t.reserved, 0);
    struct kz_keys_info k;
    T_EQ_INT(kz_keys_get(l, ka, &k, &err), KZ_OK);
    T_OK(k.spent == 70 && k.reserved == 0, "key spent 70 (%lld), reserved 0 (%lld)", (long long)k.spent,
         (long long)k.reserved);
    kz_keys_info_free(&k);

    /* A retry cannot reserve again; the stored record answers it, for its
     * own tenant only. */
    int64_t r = 0;
    T_EQ_INT(kz_ledger_reserve(l, ka, a, 10, "req-1", &r, NULL, &err), KZ_EINVAL);
    T_OK(strstr(err.msg, "already in the ledger") != NULL, "%s", err.msg);
    T_EQ_INT(kz_ledger_usage_get(l, a, "req-1", &stored, &err), KZ_OK);
    T_EQ_INT(stored.cost, 70);
    T_EQ_INT(stored.ttft_ms, 2);
    T_EQ_INT(kz_ledger_usage_get(l, b, "req-1", &stored, &err), KZ_ENOTFOUND);

    /* A reservation is settled only by its own request. */
    int64_t r2 = tl_reserve(l, ka, a, 100, "req-2");
    tl_usage(&u, "req-3", a, ka, "gpt-x", 10, TL_T0);
    T_EQ_INT(kz_ledger_settle(l, r2, &u, NULL, NULL, &err), KZ_EINVAL);
    T_EQ_INT(kz_ledger_usage_get(l, a, "req-3", &stored, &err), KZ_ENOTFOUND);
    /* ... and a key only for its own tenant. */
    tl_usage(&u, "req-4", b, ka, "gpt-x", 10, TL_T0);
    T_EQ_INT(kz_ledger_settle(l, 0, &u, NULL, NULL, &err), KZ_EINVAL);
    /* Bad records are refused before the store sees them. */
    tl_usage(&u, "req-5", a, ka, "gpt-x", -1, TL_T0);
    T_EQ_INT(kz_ledger_settle(l, 0, &u, NULL, NULL, &err), KZ_EINVAL);
    tl_usage(&u, "req-5", a, ka, "", 1, TL_T0);
    T_EQ_INT(kz_ledger_settle(l, 0, &u, NULL, NULL, &err), KZ_EINVAL);
    memset(u.deployment, 'x', sizeof u.deployment); /* not terminated */
    T_EQ_INT(kz_ledger_settle(l, 0, &u, NULL, NULL, &err), KZ_EINVAL);

    /* A reservation swept before its settle: the request is still charged. */
    tl_clock_set(&clk, TL_T0 + 120000);
    int64_t released = 0;
    T_EQ_INT(kz_ledger_sweep(l, &released, &err), KZ_OK);
    T_EQ_INT(released, 1);
    tl_usage(&u, "req-2", a, ka, "gpt-x", 50, TL_T0 + 120000);
    T_EQ_INT(kz_ledger_settle(l, r2, &u, NULL, &dup, &err), KZ_OK);
    T_EQ_INT(dup, 0);
    T_EQ_INT(kz_ledger_tenant_get(l, a, &t, &err), KZ_OK);
    T_OK(t.balance == 880 && t.reserved == 0, "balance 880 (%lld)", (long long)t.balance);

    struct kz_ledger_query q = {KZ_GROUP_TOTAL, 0, 0};
    struct kz_ledger_usage_row *rows = NULL;
    size_t n = 0;
    T_EQ_INT(kz_ledger_usage(l, a, &q, &rows, &n, &err), KZ_OK);
    T_OK(n == 1 && rows[0].requests == 2 && rows[0].cost == 120, "2 records, 120 in all");
    kz_free(rows);
    tl_check(l);
    kz_ledger_close(l);
}

/* ---- usage totals ----------------------------------------------------------------- */

#define N_RECORDS 10000
#define N_MODELS 4
#define N_DAYS 10

struct expect {
    int64_t requests, in, out, cost;
};

static void add_expect(struct expect *e, const struct kz_ledger_usage *u)
{
    e->requests++;
    e->in += u->input_tokens;
    e->out += u->output_tokens;
    e->cost += u->cost;
}

static int row_is(const struct kz_ledger_usage_row *r, const struct expect *e)
{
    return r->requests == e->requests && r->input_tokens == e->in && r->output_tokens == e->out &&
           r->cost == e->cost;
}

static void settled_cb(void *ud, kz_status rc, const struct kz_err *err, const struct kz_ledger_usage *stored,
                       int duplicate)
{
    (void)err;
    (void)stored;
    if (rc || duplicate)
        __atomic_fetch_add((int *)ud, 1, __ATOMIC_SEQ_CST);
}

static void usage_totals(void)
{
    struct kz_ledger *l = tl_open(tl_fresh("totals"), NULL);
    if (!l)
        return;
    struct kz_err err = {{0}};
    static const char *const models[N_MODELS] = {"alpha", "beta", "gamma", "delta"};
    int64_t ta = tl_tenant(l, "ta", 1, -1, KZ_PERIOD_TOTAL);
    int64_t tb = tl_tenant(l, "tb", 0, -1, KZ_PERIOD_TOTAL);
    int64_t keys[3] = {tl_key(l, ta, -1, KZ_PERIOD_TOTAL, NULL), tl_key(l, ta, -1, KZ_PERIOD_TOTAL, NULL),
                       tl_key(l, tb, -1, KZ_PERIOD_TOTAL, NULL)};
    int64_t credit = INT64_C(100000000000000); /* $100M: more than the 10,000 requests cost */
    T_EQ_INT(kz_ledger_tenant_credit(l, ta, credit, NULL, &err), KZ_OK);

    struct expect total[2] = {{0}}, by_model[2][N_MODELS] = {{{0}}}, by_day[2][N_DAYS] = {{{0}}}, by_key[3] = {{0}};
    struct expect window = {0}; /* tenant a, days 3..6 */
    int64_t day0 = (TL_T0 / TL_DAY) * TL_DAY;
    struct kz_ledger_writer *w = NULL;
    T_EQ_INT(kz_ledger_writer_start(l, NULL, &w, &err), KZ_OK);
    if (!w) {
        kz_ledger_close(l);
        return;
    }
    srand(7);
    int bad = 0;
    for (int i = 0; i < N_RECORDS; i++) {
        int k = rand() % 3, ti = k == 2 ? 1 : 0, m = rand() % N_MODELS, d = rand() % N_DAYS;
        struct kz_ledger_usage u;
        char id[32];
        snprintf(id, sizeof id, "u%05d", i);
        int64_t cost = (int64_t)(rand() % 1000000) * (rand() % 3 ? 1 : 1000); /* up to ~$1000 */
        tl_usage(&u, id, ti ? tb : ta, keys[k], models[m], cost, day0 + d * TL_DAY + rand() % TL_DAY);
        u.input_tokens = rand() % 100000;
        u.output_tokens = rand() % 5000;
        /* Reserve more than it will cost: the settle must refund the rest. */
        int64_t res = tl_reserve(l, keys[k], u.tenant_id, cost + rand() % 5000, id);
        if (kz_ledger_writer_submit(w, res, &u, settled_cb, &bad, &err) != KZ_OK) {
            kz_ledger_writer_flush(w); /* queue full: wait for room */
            T_EQ_INT(kz_ledger_writer_submit(w, res, &u, settled_cb, &bad, &err), KZ_OK);
        }
        add_expect(&total[ti], &u);
        add_expect(&by_model[ti][m], &u);
        add_expect(&by_day[ti][d], &u);
        add_expect(&by_key[k], &u);
        if (!ti && d >= 3 && d <= 6)
            add_expect(&window, &u);
    }
    kz_ledger_writer_stop(w);
    T_EQ_INT(bad, 0);
    T_EQ_INT(tl_open_reservations(l), 0);

    struct kz_ledger_usage_row *rows = NULL;
    size_t n = 0;
    int64_t tenants[2] = {ta, tb};
    for (int ti = 0; ti < 2; ti++) {
        struct kz_ledger_query q = {KZ_GROUP_TOTAL, 0, 0};
        T_EQ_INT(kz_ledger_usage(l, tenants[ti], &q, &rows, &n, &err), KZ_OK);
        T_OK(n == 1 && row_is(&rows[0], &total[ti]), "tenant %d totals exact", ti);
        kz_free(rows);

        q.by = KZ_GROUP_MODEL;
        T_EQ_INT(kz_ledger_usage(l, tenants[ti], &q, &rows, &n, &err), KZ_OK);
        T_EQ_INT(n, N_MODELS);
        for (size_t i = 0; i < n; i++)
            for (int m = 0; m < N_MODELS; m++)
                if (strcmp(rows[i].group, models[m]) == 0)
                    T_OK(row_is(&rows[i], &by_model[ti][m]), "tenant %d model %s exact", ti, models[m]);
        T_OK(n == N_MODELS && strcmp(rows[0].group, "alpha") == 0 && strcmp(rows[3].group, "gamma") == 0,
             "ordered by model");
        kz_free(rows);

        q.by = KZ_GROUP_DAY;
        T_EQ_INT(kz_ledger_usage(l, tenants[ti], &q, &rows, &n, &err), KZ_OK);
        T_EQ_INT(n, N_DAYS);
        for (size_t i = 0; i < n && i < N_DAYS; i++)
            T_OK(row_is(&rows[i], &by_day[ti][i]), "tenant %d day %zu exact", ti, i);
        if (n == N_DAYS) {
            T_EQ_STR(rows[0].group, "2024-03-31");
            T_EQ_STR(rows[1].group, "2024-04-01");
            T_EQ_STR(rows[9].group, "2024-04-09");
        }
        kz_free(rows);
    }
    struct kz_ledger_query q = {KZ_GROUP_KEY, 0, 0};
    T_EQ_INT(kz_ledger_usage(l, ta, &q, &rows, &n, &err), KZ_OK);
    T_EQ_INT(n, 2); /* only tenant a's keys */
    for (size_t i = 0; i < n; i++) {
        int k = rows[i].key_id == keys[0] ? 0 : rows[i].key_id == keys[1] ? 1 : -1;
        T_OK(k >= 0 && row_is(&rows[i], &by_key[k]), "key row %zu exact", i);
        T_OK(strncmp(rows[i].group, "kz-", 3) == 0 && strlen(rows[i].group) == KZ_KEYS_PREFIX_LEN, "prefix %s",
             rows[i].group);
    }
    kz_free(rows);

    /* A time window: days 3..6 of tenant a. */
    q.by = KZ_GROUP_TOTAL;
    q.since_ms = day0 + 3 * TL_DAY;
    q.until_ms = day0 + 7 * TL_DAY;
    T_EQ_INT(kz_ledger_usage(l, ta, &q, &rows, &n, &err), KZ_OK);
    T_OK(n == 1 && row_is(&rows[0], &window), "window exact");
    kz_free(rows);

    /* Every tenant: the admin form. The tenant form refuses to run without one. */
    q.since_ms = q.until_ms = 0;
    T_EQ_INT(kz_ledger_usage_all_tenants(l, &q, &rows, &n, &err), KZ_OK);
    struct expect both = total[0];
    both.requests += total[1].requests;
    both.in += total[1].in;
    both.out += total[1].out;
    both.cost += total[1].cost;
    T_OK(n == 1 && row_is(&rows[0], &both), "all tenants exact");
    kz_free(rows);
    T_EQ_INT(kz_ledger_usage(l, 0, &q, &rows, &n, &err), KZ_EINVAL);

    /* Money moved exactly: balance = credit - costs, key spend = its costs. */
    struct kz_ledger_tenant t;
    T_EQ_INT(kz_ledger_tenant_get(l, ta, &t, &err), KZ_OK);
    T_EQ_INT(t.balance, credit - total[0].cost);
    T_EQ_INT(t.reserved, 0);
    T_EQ_INT(kz_ledger_tenant_get(l, tb, &t, &err), KZ_OK);
    T_EQ_INT(t.balance, -total[1].cost);
    for (int k = 0; k < 3; k++) {
        struct kz_keys_info ki;
        T_EQ_INT(kz_keys_get(l, keys[k], &ki, &err), KZ_OK);
        T_OK(ki.spent == by_key[k].cost && ki.reserved == 0, "key %d spend exact", k);
        kz_keys_info_free(&ki);
    }
    tl_check(l);
    kz_ledger_close(l);
}

/* ---- the expiry sweep --------------------------------------------------------------- */

static void sweep(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tl_fresh("sweep"));
    struct tl_clock clk = {TL_T0};
    struct kz_ledger_opts o = {0};
    o.clock_ms = tl_clock_read;
    o.clock_ud = &clk;
    o.reservation_ttl_ms = 60000;
    struct kz_ledger *l = tl_open(path, &o);
    if (!l)
        return;
    struct kz_err err = {{0}};
    int64_t t = tl_tenant(l, "s", 0, 1000, KZ_PERIOD_TOTAL);
    int64_t k = tl_key(l, t, 1000, KZ_PERIOD_TOTAL, NULL);
    tl_reserve(l, k, t, 300, "old-1");
    tl_reserve(l, k, t, 300, "old-2");
    tl_clock_set(&clk, TL_T0 + 30000);
    tl_reserve(l, k, t, 300, "young");
    int64_t released = -1;
    T_EQ_INT(kz_ledger_sweep(l, &released, &err), KZ_OK);
    T_EQ_INT(released, 0); /* nothing older than 60 s yet */
    tl_clock_set(&clk, TL_T0 + 60001);
    T_EQ_INT(kz_ledger_sweep(l, &released, &err), KZ_OK);
    T_EQ_INT(released, 2);
    struct kz_keys_info ki;
    T_EQ_INT(kz_keys_get(l, k, &ki, &err), KZ_OK);
    T_EQ_INT(ki.reserved, 300);
    kz_keys_info_free(&ki);
    tl_check(l);
    kz_ledger_close(l);

    /* Opening sweeps too: the process that held "young" is gone. */
    tl_clock_set(&clk, TL_T0 + 200000);
    l = tl_open(path, &o);
    if (!l)
        return;
    T_EQ_INT(tl_open_reservations(l), 0);
    struct kz_ledger_tenant tn;
    T_EQ_INT(kz_ledger_tenant_get(l, t, &tn, &err), KZ_OK);
    T_EQ_INT(tn.reserved, 0);
    tl_check(l);
    kz_ledger_close(l);
}

/* ---- every write in BEGIN IMMEDIATE (FT-10) ------------------------------------------ */

#define MAX_CONN 16

struct tracer {
    pthread_mutex_t mu;
    int in_write[MAX_CONN];
    int writes, immediates, savepoints, violations;
    char first_bad[200];
};

static int starts(const char *s, const char *word)
{
    size_t n = strlen(word);
    return strncasecmp(s, word, n) == 0 && (s[n] == '\0' || s[n] == ' ' || s[n] == ';' || s[n] == '\n');
}

static void bad(struct tracer *t, int conn, const char *sql)
{
    if (!t->violations++)
        snprintf(t->first_bad, sizeof t->first_bad, "conn %d: %s", conn, sql);
}

static void on_sql(void *ud, int conn, const char *sql)
{
    struct tracer *t = ud;
    while (*sql == ' ' || *sql == '\n')
        sql++;
    pthread_mutex_lock(&t->mu);
    if (conn < 0 || conn >= MAX_CONN)
        bad(t, conn, sql);
    else if (starts(sql, "BEGIN")) {
        /* SQLite: the writer only IMMEDIATE, readers only plain reads;
         * PostgreSQL: every connection writes, in plain transactions */
        int imm = tl_pg() || strncasecmp(sql, "BEGIN IMMEDIATE", 15) == 0;
        if (!tl_pg() && imm != (conn == 0))
            bad(t, conn, sql);
        t->in_write[conn] = imm;
        t->immediates += imm;
    } else if (starts(sql, "COMMIT") || starts(sql, "END") ||
               (starts(sql, "ROLLBACK") && strncasecmp(sql, "ROLLBACK TO", 11) != 0))
        t->in_write[conn] = 0;
    else if (starts(sql, "INSERT") || starts(sql, "UPDATE") || starts(sql, "DELETE") || starts(sql, "REPLACE") ||
             starts(sql, "CREATE") || starts(sql, "DROP") || starts(sql, "ALTER")) {
        t->writes++;
        if ((!tl_pg() && conn != 0) || !t->in_write[conn])
            bad(t, conn, sql);
    } else if (starts(sql, "SAVEPOINT")) {
        t->savepoints++;
        if (!t->in_write[conn])
            bad(t, conn, sql);
    }
    pthread_mutex_unlock(&t->mu);
}

static void write_paths(void)
{
    struct tracer tr;
    memset(&tr, 0, sizeof tr);
    pthread_mutex_init(&tr.mu, NULL);
    struct tl_clock clk = {TL_T0};
    struct kz_ledger_opts o = {0};
    o.trace = on_sql;
    o.trace_ud = &tr;
    o.clock_ms = tl_clock_read;
    o.clock_ud = &clk;
    o.reservation_ttl_ms = 1000;
    /* A fresh file: the migrations are traced too. */
    char path[512];
    snprintf(path, sizeof path, "%s", tl_fresh("trace"));
    struct kz_ledger *l = tl_open(path, &o);
    if (!l)
        return;
    struct kz_err err = {{0}};
    int64_t t = tl_tenant(l, "tr", 1, 10000, KZ_PERIOD_DAY);
    T_EQ_INT(kz_ledger_tenant_credit(l, t, 10000, NULL, &err), KZ_OK);
    char secret[KZ_KEYS_SECRET_SIZE];
    int64_t k = tl_key(l, t, 5000, KZ_PERIOD_MONTH, secret);
    int64_t k2 = tl_key(l, t, -1, KZ_PERIOD_TOTAL, NULL);
    struct kz_keys_info ki;
    T_EQ_INT(kz_keys_lookup(l, secret, &ki, &err), KZ_OK);
    kz_keys_info_free(&ki);
    T_EQ_INT(kz_keys_revoke(l, k2, &err), KZ_OK);
    int64_t r1 = tl_reserve(l, k, t, 100, "t1");
    int64_t r2 = tl_reserve(l, k, t, 100, "t2");
    int64_t r3 = tl_reserve(l, k, t, 100, "t3");
    int64_t r = 0;
    T_EQ_INT(kz_ledger_reserve(l, k, t, 100000, "t4", &r, NULL, &err), KZ_ELIMIT); /* rolled back */
    T_EQ_INT(kz_ledger_release(l, r1, &err), KZ_OK);
    struct kz_ledger_usage u;
    tl_usage(&u, "t2", t, k, "m", 40, TL_T0);
    T_EQ_INT(kz_ledger_settle(l, r2, &u, NULL, NULL, &err), KZ_OK);
    /* A batch with one bad record: the savepoint path. */
    struct kz_ledger_writer *w = NULL;
    T_EQ_INT(kz_ledger_writer_start(l, NULL, &w, &err), KZ_OK);
    if (w) {
        int failures = 0;
        struct kz_ledger_usage b1, b2, b3;
        tl_usage(&b1, "t3", t, k, "m", 10, TL_T0);
        tl_usage(&b2, "t5", t, 424242, "m", 10, TL_T0); /* no such key */
        tl_usage(&b3, "t6", t, k, "m", 10, TL_T0);
        /* Another connection holds the write lock while the three are
         * queued, so b2 and b3 at least share a batch. */
        struct tl_holder other;
        T_EQ_INT(tl_hold(&other, path), 0);
        T_EQ_INT(kz_ledger_writer_submit(w, r3, &b1, settled_cb, &failures, &err), KZ_OK);
        T_EQ_INT(kz_ledger_writer_submit(w, 0, &b2, settled_cb, &failures, &err), KZ_OK);
        T_EQ_INT(kz_ledger_writer_submit(w, 0, &b3, settled_cb, &failures, &err), KZ_OK);
        usleep(50000);
        tl_unhold(&other);
        kz_ledger_writer_stop(w);
        T_EQ_INT(failures, 1);
        T_EQ_INT(kz_ledger_usage_get(l, t, "t6", &u, &err), KZ_OK);
        T_EQ_INT(kz_ledger_usage_get(l, t, "t5", &u, &err), KZ_ENOTFOUND);
    }
    tl_clock_set(&clk, TL_T0 + 5000);
    tl_reserve(l, k, t, 1, "t7");
    tl_clock_set(&clk, TL_T0 + 10000);
    T_EQ_INT(kz_ledger_sweep(l, NULL, &err), KZ_OK);
    struct kz_ledger_query q = {KZ_GROUP_KEY, 0, 0};
    struct kz_ledger_usage_row *rows = NULL;
    size_t n = 0;
    T_EQ_INT(kz_ledger_usage(l, t, &q, &rows, &n, &err), KZ_OK);
    kz_free(rows);
    tl_check(l);
    kz_ledger_close(l);

    T_EQ_INT(tr.violations, 0);
    if (tr.violations)
        T_OK(0, "first statement outside BEGIN IMMEDIATE: %s", tr.first_bad);
    T_OK(tr.savepoints >= 2, "the batch ran record by record in savepoints (%d)", tr.savepoints);
    T_OK(tr.writes > 20 && tr.immediates > 10, "the trace saw the writes (%d) and their BEGIN IMMEDIATE (%d)",
         tr.writes, tr.immediates);
    pthread_mutex_destroy(&tr.mu);
}

/* ---- another process holding the lock ------------------------------------------------- */

static void busy(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tl_fresh("busy"));
    struct kz_ledger_opts o = {0};
    o.busy_timeout_ms = 300;
    struct kz_ledger *l = tl_open(path, &o);
    if (!l)
        return;
    struct kz_err err = {{0}};
    int64_t t = tl_tenant(l, "bz", 0, -1, KZ_PERIOD_TOTAL);
    struct tl_holder other;
    T_EQ_INT(tl_hold(&other, path), 0);

    double t0 = tl_mono_ms();
    int64_t r = 0;
    kz_status rc = kz_ledger_reserve(l, 0, t, 1, "b1", &r, NULL, &err);
    double waited = tl_mono_ms() - t0;
    T_EQ_INT(rc, KZ_EIO);
    T_OK(strncmp(err.msg, "ledger busy", 11) == 0, "%s", err.msg);
    T_OK(waited >= 250 && waited < 3000, "waited the busy timeout (%.0f ms)", waited);
    /* Readers are not blocked by a writer (WAL; PostgreSQL's MVCC). */
    struct kz_ledger_tenant tn;
    T_EQ_INT(kz_ledger_tenant_get(l, t, &tn, &err), KZ_OK);
    tl_unhold(&other);
    r = tl_reserve(l, 0, t, 1, "b1");
    T_EQ_INT(kz_ledger_release(l, r, &err), KZ_OK);
    tl_check(l);
    kz_ledger_close(l);
}

/* ---- the change epoch (what the server's key cache keys on) ------------------------ */

static void epoch(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tl_fresh("epoch"));
    struct kz_ledger *l = tl_open(path, NULL), *other = tl_open(path, NULL);
    if (!l || !other)
        return;
    struct kz_err err = {{0}};
    if (tl_pg()) { /* servers may be on other machines: nothing may be cached */
        T_EQ_INT(kz_ledger_epoch(l), 0);
        tl_tenant(l, "e", 0, -1, KZ_PERIOD_TOTAL);
        T_EQ_INT(kz_ledger_epoch(l), 0);
        kz_ledger_close(other);
        kz_ledger_close(l);
        return;
    }
    uint64_t e0 = kz_ledger_epoch(l);
    T_OK(e0 != 0 && kz_ledger_epoch(other) == e0, "one epoch for both handles (%llx)", (unsigned long long)e0);
    int64_t t = tl_tenant(l, "e", 1, -1, KZ_PERIOD_TOTAL);
    uint64_t e1 = kz_ledger_epoch(other);
    T_OK(e1 != e0, "a new tenant changes it, seen by the other handle");
    int64_t k = tl_key(other, t, 1000, KZ_PERIOD_TOTAL, NULL);
    uint64_t e2 = kz_ledger_epoch(l);
    T_OK(e2 != e1, "a new key changes it");
    T_EQ_INT(kz_ledger_tenant_credit(l, t, 5000, NULL, &err), KZ_OK);
    uint64_t e3 = kz_ledger_epoch(other);
    T_OK(e3 != e2, "a credit changes it");
    /* spending does not: the server accounts for its own spend */
    int64_t r = tl_reserve(l, k, t, 10, "ep-1");
    struct kz_ledger_usage u;
    tl_usage(&u, "ep-1", t, k, "m", 5, TL_T0);
    T_EQ_INT(kz_ledger_settle(l, r, &u, NULL, NULL, &err), KZ_OK);
    T_EQ_INT(kz_ledger_epoch(other), e3);
    T_EQ_INT(kz_keys_revoke(other, k, &err), KZ_OK);
    T_OK(kz_ledger_epoch(l) != e3, "a revocation changes it");
    kz_ledger_close(other);
    kz_ledger_close(l);

    /* no epoch file can be made: the ledger works, the epoch is 0 */
    char side[600];
    snprintf(path, sizeof path, "%s", tl_fresh("epoch_none"));
    snprintf(side, sizeof side, "%s-kzepoch", path);
    rmdir(side);
    T_EQ_INT(mkdir(side, 0700), 0);
    l = tl_open(path, NULL);
    if (l) {
        T_EQ_INT(kz_ledger_epoch(l), 0);
        tl_tenant(l, "e", 0, -1, KZ_PERIOD_TOTAL);
        kz_ledger_close(l);
    }
    rmdir(side);
}

int main(void)
{
    t_subtest("migrations", migrations);
    t_subtest("tenants", tenants);
    t_subtest("reserve_rules", reserve_rules);
    t_subtest("periods", periods);
    t_subtest("settle_idempotent", settle_idempotent);
    t_subtest("usage_totals", usage_totals);
    t_subtest("sweep", sweep);
    t_subtest("write_paths", write_paths);
    t_subtest("busy", busy);
    t_subtest("epoch", epoch);
    return t_done();
}
