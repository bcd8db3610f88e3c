/* SPDX-License-Identifier: MIT
 * API keys: their shape, that only a hash reaches the disk (RELIABILITY SC-8:
 * the database, WAL and shm files searched for 100 keys), lookup of wrong,
 * revoked and expired keys (SC-2), scopes, and listing.
 */
#include <string.h>

#include "core/sha256.h"
#include "tledger.h"

static int b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* The database, WAL and shm files, read once per search pass. */
struct files {
    char *buf[3];
    size_t len[3];
};

static void files_read(struct files *f, const char *db)
{
    static const char *const suffix[3] = {"", "-wal", "-shm"};
    if (kz_ledger_is_postgres(db)) {
        /* every row of the tables that hold keys and tenants, as text */
        memset(f, 0, sizeof *f);
        PGconn *c = PQconnectdb(db);
        PGresult *r = PQexec(c, "SELECT string_agg(x, E'\\n') FROM (SELECT k::text AS x FROM api_keys k"
                                " UNION ALL SELECT t::text FROM tenants t) s");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            f->buf[0] = kz_strdup(PQgetvalue(r, 0, 0));
            f->len[0] = f->buf[0] ? strlen(f->buf[0]) : 0;
        }
        PQclear(r);
        PQfinish(c);
        return;
    }
    for (int i = 0; i < 3; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s%s", db, suffix[i]);
        f->len[i] = 0;
        f->buf[i] = t_read_file(path, &f->len[i]); /* NULL when absent */
    }
}

static void files_free(struct files *f)
{
    for (int i = 0; i < 3; i++)
        KZ_FREE(f->buf[i]);
}

/* Occurrences of needle in the three files. */
static int count_in(const struct files *f, const void *needle, size_t n)
{
    int hits = 0;
    for (int i = 0; i < 3; i++) {
        const char *b = f->buf[i], *end = b + f->len[i];
        for (const char *p = b; p && (p = memmem(p, (size_t)(end - p), needle, n)) != NULL; p++)
            hits++;
    }
    return hits;
}

#define N_KEYS 100

static void stored_as_hash(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", tl_fresh("keys_sc8"));
    struct kz_ledger *l = tl_open(path, NULL);
    if (!l)
        return;
    int64_t t = tl_tenant(l, "sc8", 0, -1, KZ_PERIOD_TOTAL);
    static char secrets[N_KEYS][KZ_KEYS_SECRET_SIZE];
    int64_t ids[N_KEYS];
    for (int i = 0; i < N_KEYS; i++)
        ids[i] = tl_key(l, t, -1, KZ_PERIOD_TOTAL, secrets[i]);

    int shape_ok = 1, distinct = 1;
    for (int i = 0; i < N_KEYS; i++) {
        const char *s = secrets[i];
        shape_ok &= strlen(s) == KZ_KEYS_SECRET_LEN && strncmp(s, "kz-", 3) == 0;
        for (const char *p = s + 3; *p; p++)
            shape_ok &= b64url_char(*p);
        for (int j = 0; j < i; j++)
            distinct &= strcmp(s, secrets[j]) != 0 && strncmp(s, secrets[j], KZ_KEYS_PREFIX_LEN) != 0;
    }
    T_OK(shape_ok, "every key is kz- and 43 base64url characters");
    T_OK(distinct, "100 keys, 100 different keys and display prefixes");
    /* 256 random bits spread over 43 characters: every position varies. */
    int varied = 0;
    for (int pos = 3; pos < KZ_KEYS_SECRET_LEN - 1; pos++) {
        int seen[256] = {0}, kinds = 0;
        for (int i = 0; i < N_KEYS; i++)
            kinds += !seen[(unsigned char)secrets[i][pos]]++;
        varied += kinds >= 20;
    }
    T_EQ_INT(varied, KZ_KEYS_SECRET_LEN - 4);

    /* While open (WAL and shm present) and after close (checkpointed). */
    for (int pass = 0; pass < 2; pass++) {
        int secret_hits = 0, body_hits = 0, hash_missing = 0;
        struct files f;
        files_read(&f, path);
        T_OK(f.buf[0] && (pass == 1 || f.buf[1] || tl_pg()), "pass %d: the database%s read", pass, pass ? "" : " and its WAL");
        for (int i = 0; i < N_KEYS; i++) {
            secret_hits += count_in(&f, secrets[i], KZ_KEYS_SECRET_LEN);
            body_hits += count_in(&f, secrets[i] + 3, KZ_KEYS_SECRET_LEN - 3);
            uint8_t h[KZ_SHA256_SIZE];
            kz_sha256(secrets[i], KZ_KEYS_SECRET_LEN, h);
            char hex[2 * KZ_SHA256_SIZE + 1]; /* PostgreSQL shows bytea as \\x and hex */
            for (size_t j = 0; j < KZ_SHA256_SIZE; j++)
                snprintf(hex + 2 * j, 3, "%02x", h[j]);
            /* the search does see stored bytes */
            hash_missing += tl_pg() ? count_in(&f, hex, 2 * KZ_SHA256_SIZE) == 0 : count_in(&f, h, sizeof h) == 0;
        }
        files_free(&f);
        T_EQ_INT(secret_hits, 0);
        T_EQ_INT(body_hits, 0);
        T_EQ_INT(hash_missing, 0);
        if (pass == 0) {
            struct kz_keys_info k;
            struct kz_err err = {{0}};
            T_EQ_INT(kz_keys_get(l, ids[7], &k, &err), KZ_OK);
            T_OK(strncmp(k.prefix, secrets[7], KZ_KEYS_PREFIX_LEN) == 0 && strlen(k.prefix) == KZ_KEYS_PREFIX_LEN,
                 "display prefix %s", k.prefix);
            kz_keys_info_free(&k);
            kz_ledger_close(l);
        }
    }
}

static void lookup(void)
{
    struct tl_clock clk = {TL_T0};
    struct kz_ledger_opts o = {0};
    o.clock_ms = tl_clock_read;
    o.clock_ud = &clk;
    struct kz_ledger *l = tl_open(tl_fresh("keys_lookup"), &o);
    if (!l)
        return;
    struct kz_err err = {{0}};
    int64_t t = tl_tenant(l, "lk", 0, -1, KZ_PERIOD_TOTAL);
    char secret[KZ_KEYS_SECRET_SIZE], other[KZ_KEYS_SECRET_SIZE];
    int64_t id = tl_key(l, t, -1, KZ_PERIOD_TOTAL, secret);
    int64_t id2 = tl_key(l, t, -1, KZ_PERIOD_TOTAL, other);

    struct kz_keys_info k;
    T_EQ_INT(kz_keys_lookup(l, secret, &k, &err), KZ_OK);
    T_OK(k.id == id && k.tenant_id == t && !k.revoked_ms, "found the key");
    kz_keys_info_free(&k);

    /* Wrong keys: the right prefix with another body, one character off,
     * too long, too short, not a key at all. */
    char wrong[KZ_KEYS_SECRET_SIZE + 1];
    memcpy(wrong, secret, sizeof secret);
    wrong[KZ_KEYS_SECRET_LEN - 1] = wrong[KZ_KEYS_SECRET_LEN - 1] == 'A' ? 'B' : 'A';
    T_EQ_INT(kz_keys_lookup(l, wrong, &k, &err), KZ_ENOTFOUND);
    T_EQ_STR(err.msg, "invalid API key");
    memcpy(wrong, secret, KZ_KEYS_PREFIX_LEN);
    memcpy(wrong + KZ_KEYS_PREFIX_LEN, other + KZ_KEYS_PREFIX_LEN, sizeof other - KZ_KEYS_PREFIX_LEN);
    T_EQ_INT(kz_keys_lookup(l, wrong, &k, &err), KZ_ENOTFOUND);
    memcpy(wrong, secret, sizeof secret);
    strcat(wrong, "x");
    T_EQ_INT(kz_keys_lookup(l, wrong, &k, &err), KZ_ENOTFOUND);
    wrong[KZ_KEYS_SECRET_LEN - 1] = '\0';
    T_EQ_INT(kz_keys_lookup(l, wrong, &k, &err), KZ_ENOTFOUND);
    T_EQ_INT(kz_keys_lookup(l, "", &k, &err), KZ_ENOTFOUND);
    T_EQ_INT(kz_keys_lookup(l, NULL, &k, &err), KZ_ENOTFOUND);
    memcpy(wrong, secret, sizeof secret);
    wrong[10] = '.';
    T_EQ_INT(kz_keys_lookup(l, wrong, &k, &err), KZ_ENOTFOUND);

    /* Revocation: the next lookup already fails; the other key still works. */
    T_EQ_INT(kz_keys_revoke(l, id, &err), KZ_OK);
    T_EQ_INT(kz_keys_lookup(l, secret, &k, &err), KZ_ENOTFOUND);
    T_EQ_STR(err.msg, "API key revoked");
    T_EQ_INT(kz_keys_revoke(l, id, &err), KZ_OK);
    T_EQ_INT(kz_keys_revoke(l, 424242, &err), KZ_ENOTFOUND);
    T_EQ_INT(kz_keys_lookup(l, other, &k, &err), KZ_OK);
    kz_keys_info_free(&k);
    T_EQ_INT(kz_keys_get(l, id, &k, &err), KZ_OK);
    T_EQ_INT(k.revoked_ms, TL_T0);
    kz_keys_info_free(&k);
    (void)id2;

    /* Expiry. */
    struct kz_keys_spec s;
    memset(&s, 0, sizeof s);
    s.tenant_id = t;
    s.expires_ms = TL_T0 + 1000;
    int64_t eid = 0;
    T_EQ_INT(kz_keys_create(l, &s, secret, &eid, &err), KZ_OK);
    tl_clock_set(&clk, TL_T0 + 999);
    T_EQ_INT(kz_keys_lookup(l, secret, &k, &err), KZ_OK);
    kz_keys_info_free(&k);
    int64_t r = tl_reserve(l, eid, t, 1, "before-expiry");
    T_EQ_INT(kz_ledger_release(l, r, &err), KZ_OK);
    tl_clock_set(&clk, TL_T0 + 1000);
    T_EQ_INT(kz_keys_lookup(l, secret, &k, &err), KZ_ENOTFOUND);
    T_EQ_STR(err.msg, "API key expired");
    T_EQ_INT(kz_ledger_reserve(l, eid, t, 1, "after-expiry", &r, NULL, &err), KZ_ENOTFOUND);
    kz_ledger_close(l);
}

static void scopes(void)
{
    struct kz_ledger *l = tl_open(tl_fresh("keys_scopes"), NULL);
    if (!l)
        return;
    struct kz_err err = {{0}};
    int64_t t = tl_tenant(l, "sc", 0, -1, KZ_PERIOD_TOTAL);
    int64_t t2 = tl_tenant(l, "sc2", 0, -1, KZ_PERIOD_TOTAL);
    static const char *const models[] = {"gpt-4o", "llama-3.1-8b", "claude \"quoted\" \\ name"};
    struct kz_keys_spec s;
    memset(&s, 0, sizeof s);
    s.tenant_id = t;
    s.models = models;
    s.n_models = 3;
    s.privacy = KZ_PRIVACY_PRIVATE;
    s.admin = 1;
    s.has_budget = 1;
    s.budget = 12345678;
    s.period = KZ_PERIOD_MONTH;
    s.rpm = 60;
    s.tpm = 100000;
    s.expires_ms = INT64_C(4102444800000); /* 2100-01-01 */
    char secret[KZ_KEYS_SECRET_SIZE];
    int64_t id = 0;
    T_EQ_INT(kz_keys_create(l, &s, secret, &id, &err), KZ_OK);

    struct kz_keys_info k;
    T_EQ_INT(kz_keys_lookup(l, secret, &k, &err), KZ_OK);
    T_EQ_INT(k.n_models, 3);
    for (size_t i = 0; i < k.n_models && i < 3; i++)
        T_EQ_STR(k.models[i], models[i]);
    T_OK(k.privacy == KZ_PRIVACY_PRIVATE && k.admin == 1, "privacy and admin");
    T_OK(k.has_budget && k.budget == 12345678 && k.period == KZ_PERIOD_MONTH, "budget");
    T_OK(k.rpm == 60 && k.tpm == 100000 && k.expires_ms == s.expires_ms, "limits and expiry");
    T_OK(kz_keys_allows_model(&k, "gpt-4o") && !kz_keys_allows_model(&k, "gpt-4o-mini") &&
             kz_keys_allows_model(&k, models[2]),
         "model scope");
    kz_keys_info_free(&k);
    T_OK(k.models == NULL && k.n_models == 0, "freed");

    /* No models listed: every model; defaults otherwise. */
    char open_secret[KZ_KEYS_SECRET_SIZE];
    int64_t open_id = tl_key(l, t, -1, KZ_PERIOD_TOTAL, open_secret);
    T_EQ_INT(kz_keys_lookup(l, open_secret, &k, &err), KZ_OK);
    T_OK(k.n_models == 0 && kz_keys_allows_model(&k, "anything") && !k.admin && !k.has_budget && !k.expires_ms,
         "an unscoped key");
    kz_keys_info_free(&k);
    int64_t other_id = tl_key(l, t2, -1, KZ_PERIOD_TOTAL, NULL);

    /* Listing: one tenant's keys, or all for an admin; never a secret. */
    struct kz_keys_info *list = NULL;
    size_t n = 0;
    T_EQ_INT(kz_keys_list(l, t, &list, &n, &err), KZ_OK);
    T_EQ_INT(n, 2);
    if (n == 2) {
        T_OK(list[0].id == id && list[1].id == open_id, "ordered by id");
        T_OK(strncmp(list[0].prefix, secret, KZ_KEYS_PREFIX_LEN) == 0, "prefix shown");
        T_EQ_INT(list[0].n_models, 3);
    }
    kz_keys_list_free(list, n);
    T_EQ_INT(kz_keys_list_all(l, &list, &n, &err), KZ_OK);
    T_OK(n == 3 && list[2].id == other_id && list[2].tenant_id == t2, "all keys");
    kz_keys_list_free(list, n);
    T_EQ_INT(kz_keys_list(l, 0, &list, &n, &err), KZ_EINVAL);

    /* Bad specs. */
    s.tenant_id = 0;
    T_EQ_INT(kz_keys_create(l, &s, secret, &id, &err), KZ_EINVAL);
    s.tenant_id = 999;
    T_EQ_INT(kz_keys_create(l, &s, secret, &id, &err), KZ_ENOTFOUND);
    s.tenant_id = t;
    s.privacy = (enum kz_privacy)7;
    T_EQ_INT(kz_keys_create(l, &s, secret, &id, &err), KZ_EINVAL);
    s.privacy = KZ_PRIVACY_LOCAL;
    static const char *const empty[] = {""};
    s.models = empty;
    s.n_models = 1;
    T_EQ_INT(kz_keys_create(l, &s, secret, &id, &err), KZ_EINVAL);
    s.n_models = KZ_KEYS_MAX_MODELS + 1;
    T_EQ_INT(kz_keys_create(l, &s, secret, &id, &err), KZ_EINVAL);
    s.n_models = 0;
    s.budget = -5;
    T_EQ_INT(kz_keys_create(l, &s, secret, &id, &err), KZ_EINVAL);
    tl_check(l);
    kz_ledger_close(l);
}

int main(void)
{
    t_subtest("stored_as_hash", stored_as_hash);
    t_subtest("lookup", lookup);
    t_subtest("scopes", scopes);
    return t_done();
}
