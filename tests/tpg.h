/* SPDX-License-Identifier: MIT
 * A private PostgreSQL server for one test program: Debian's postgresql
 * binaries (scripts/setup.sh installs them) run a throwaway cluster in a
 * fresh directory under /tmp, on a free port of 127.0.0.1, with trust
 * authentication for the role `kz`. It starts on the first tpg_db call and
 * stops when the program that started it exits (children that fork do not
 * stop it). Running as root, the server runs as the `postgres` user
 * (PostgreSQL refuses to run as root).
 *
 * The cluster runs with fsync off: the tests kill processes (kyozon, the
 * postgres server itself with `stop -m immediate`), never the machine, and
 * a killed process loses nothing the kernel already has (commits still
 * write their WAL before they return).
 *
 * Header-only (static inline) like tnet.h, so each test stays one file.
 */
#ifndef KZ_TEST_TPG_H
#define KZ_TEST_TPG_H

#include <glob.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t.h"
#include "tnet.h"

struct tpg {
    char dir[64];     /* the cluster: dir/data, dir/log, the socket */
    char bin[256];    /* PostgreSQL's bindir */
    char as[64];      /* "runuser -u postgres -- " when root */
    char base[128];   /* postgres://kz@127.0.0.1:PORT/ */
    char url[256];    /* the last tpg_db result */
    int port;
    pid_t owner;
    int failed;
};

static struct tpg tpg_state;

/* pg_ctl with extra arguments, as the server's user; output to dir/ctl.log. */
static inline int tpg_ctl(const char *args)
{
    struct tpg *p = &tpg_state;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s%s/pg_ctl -D %s/data -l %s/log -w -t 30 %s >>%s/ctl.log 2>&1", p->as, p->bin, p->dir,
             p->dir, args, p->dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Starts the server on tpg_state.port (again, after tpg_ctl("stop ...")). */
static inline int tpg_start_server(void)
{
    char args[256];
    snprintf(args, sizeof args, "-o '-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200' start",
             tpg_state.port, tpg_state.dir);
    return tpg_ctl(args);
}

static inline void tpg_stop_at_exit(void)
{
    struct tpg *p = &tpg_state;
    if (p->owner != getpid() || !p->dir[0])
        return;
    tpg_ctl("stop -m immediate");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf %s", p->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "tpg: could not remove %s\n", p->dir);
}

static inline int tpg_find_bin(struct tpg *p)
{
    FILE *f = popen("pg_config --bindir 2>/dev/null", "r");
    if (f) {
        if (fgets(p->bin, sizeof p->bin, f))
            p->bin[strcspn(p->bin, "\n")] = '\0';
        pclose(f);
    }
    char probe[300];
    snprintf(probe, sizeof probe, "%s/initdb", p->bin);
    if (p->bin[0] && access(probe, X_OK) == 0)
        return 0;
    glob_t g;
    int found = -1;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        snprintf(p->bin, sizeof p->bin, "%s", g.gl_pathv[g.gl_pathc - 1]);
        p->bin[strlen(p->bin) - strlen("/initdb")] = '\0';
        found = 0;
    }
    if (found == 0)
        globfree(&g);
    return found;
}

/* The server's base URL (no database), starting it on first use; NULL with
 * a failed check when PostgreSQL cannot be started here. */
static inline const char *tpg_base(void)
{
    struct tpg *p = &tpg_state;
    if (p->base[0])
        return p->base;
    if (p->failed)
        return NULL;
    p->failed = 1;
    if (tpg_find_bin(p) != 0) {
        T_OK(0, "PostgreSQL's server programs (initdb, pg_ctl) are not installed: run scripts/setup.sh");
        return NULL;
    }
    snprintf(p->dir, sizeof p->dir, "/tmp/kzpg-XXXXXX");
    if (!mkdtemp(p->dir)) {
        T_OK(0, "mkdtemp for the PostgreSQL cluster");
        return NULL;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw || chown(p->dir, pw->pw_uid, pw->pw_gid) != 0) {
            T_OK(0, "running as root needs the 'postgres' user (Debian's postgresql package makes it)");
            return NULL;
        }
        snprintf(p->as, sizeof p->as, "runuser -u postgres -- ");
    }
    p->owner = getpid();
    atexit(tpg_stop_at_exit);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s%s/initdb -D %s/data -A trust -U kz -E UTF8 --locale=C --no-sync >%s/initdb.log 2>&1",
             p->as, p->bin, p->dir, p->dir);
    if (system(cmd) != 0) {
        T_OK(0, "initdb failed (see %s/initdb.log)", p->dir);
        return NULL;
    }
    snprintf(cmd, sizeof cmd, "%s/data/postgresql.conf", p->dir);
    FILE *f = fopen(cmd, "a");
    if (f) {
        /* not synchronous_commit = off: a commit must be in the kernel's
         * hands when it returns, or an immediate stop loses it */
        fputs("fsync = off\nfull_page_writes = off\n", f);
        fclose(f);
    }
    for (int tries = 0; tries < 5 && !p->base[0]; tries++) {
        p->port = tnet_free_port();
        if (tpg_start_server() == 0)
            snprintf(p->base, sizeof p->base, "postgres://kz@127.0.0.1:%d/", p->port);
    }
    if (!p->base[0]) {
        T_OK(0, "PostgreSQL did not start (see %s/log and %s/ctl.log)", p->dir, p->dir);
        return NULL;
    }
    p->failed = 0;
    return p->base;
}

static inline void tpg_quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg; /* "database ... does not exist, skipping" */
}

/* Runs SQL on database `db` of the private server; 0 on success. */
static inline int tpg_exec(const char *db, const char *sql)
{
    char url[256];
    const char *base = tpg_base();
    if (!base)
        return -1;
    snprintf(url, sizeof url, "%s%s", base, db);
    PGconn *c = PQconnectdb(url);
    int ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PQsetNoticeProcessor(c, tpg_quiet, NULL);
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok)
            fprintf(stderr, "tpg: %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

/* The first column of the first row of a query, as an integer (-1 when
 * there is none or the query fails). `url` is a full database URL. */
static inline int64_t tpg_int(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    int64_t v = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    PQfinish(c);
    return v;
}

/* A fresh, empty database `name` (dropped first if it exists): its URL
 * (a static buffer), or NULL with a failed check. */
static inline const char *tpg_db(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    if (tpg_exec("postgres", sql) != 0)
        return NULL;
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    if (tpg_exec("postgres", sql) != 0) {
        T_OK(0, "creating database %s", name);
        return NULL;
    }
    snprintf(tpg_state.url, sizeof tpg_state.url, "%s%s", tpg_state.base, name);
    return tpg_state.url;
}

#endif
