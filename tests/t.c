/* SPDX-License-Identifier: MIT */
#include "t.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"

static int n_pass, n_fail, n_skip;
static const char *cur = "";

void t_ok(int cond, const char *file, int line, const char *fmt, ...)
{
    if (cond) {
        n_pass++;
        return; /* quiet on success: a golden test makes thousands of checks */
    }
    n_fail++;
    fprintf(stdout, "not ok - [%s] %s:%d: ", cur, file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

void t_subtest(const char *name, void (*fn)(void))
{
    int before = n_fail;
    cur = name;
    fn();
    printf("%s - %s\n", n_fail == before ? "ok" : "not ok", name);
    fflush(stdout);
}

int t_failures(void) { return n_fail; }

static int under_ci(void)
{
    const char *ci = getenv("CI");
    return ci && (strcmp(ci, "true") == 0 || strcmp(ci, "1") == 0);
}

void t_skip(int n, const char *why)
{
    n_skip += n;
    fprintf(stderr, "*** %d case(s) NOT RUN: %s%s\n", n, why,
            under_ci() ? " (a failure under CI)" : "");
    if (under_ci())
        n_fail += n;
}

static char tmp_dir[256]; /* t_tmpdir's, once made */
static pid_t tmp_owner; /* the process that made it: a forked child calling t_done leaves it */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0; /* best effort: go on past what cannot be removed */
}

int t_done(void)
{
    /* a passing program leaves nothing behind; a failing one keeps its files to look at */
    int owner = tmp_dir[0] && getpid() == tmp_owner;
    if (owner && n_fail == 0)
        nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else if (owner)
        printf("# files of this run kept in %s\n", tmp_dir);
    if (n_skip)
        printf("%d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
    else
        printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}

static char pathbuf[4096];

const char *t_data_path(const char *rel)
{
    const char *dir = getenv("KYOZON_TEST_DATA");
    if (!dir || !*dir)
        dir = getenv("KZ_DEFAULT_TEST_DATA");
    if (!dir || !*dir)
        dir = "../shared/data";
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    snprintf(pathbuf, sizeof pathbuf, "%s/%s", dir, rel);
    return pathbuf;
}

const char *t_src_path(const char *rel)
{
    const char *dir = getenv("KZ_SRC_DIR");
    snprintf(pathbuf, sizeof pathbuf, "%s/%s", dir ? dir : ".", rel);
    return pathbuf;
}

const char *t_tmpdir(void)
{
    if (!tmp_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmp_dir, sizeof tmp_dir, "%s/kztest.XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(tmp_dir)) {
            perror("mkdtemp");
            exit(2);
        }
        tmp_owner = getpid();
    }
    return tmp_dir;
}

char *t_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = kz_malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            char *nb = kz_realloc(buf, cap + 1);
            if (!nb) {
                kz_free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}
