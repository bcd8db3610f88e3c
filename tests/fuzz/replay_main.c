/* SPDX-License-Identifier: MIT
 * Corpus replay driver: the main() linked with a fuzz_*.c target when it is
 * built without libFuzzer, so CI runs every seed (and every saved crasher)
 * through the target under the sanitizer build.
 *
 * Usage: replay_<name> PATH...  (directories are read one level deep, files
 * are taken as they are). Prints how many inputs it ran. Exits non-zero when
 * a path is missing or unreadable or when nothing at all was run, so an
 * empty or misplaced corpus fails the test instead of passing vacuously.
 *
 * This file stands in for libFuzzer's driver, so its buffers use plain
 * malloc: they are not the code under test's and must not count against
 * the kz_alloc size cap a target sets.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target, as with libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Runs the target on one file. The input gets a buffer of exactly its size,
 * as libFuzzer gives it, so a read one past the end is an ASan report.
 * Returns 0, or -1 if the file cannot be read. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    uint8_t *buf = NULL;
    if (fseek(f, 0, SEEK_END) != 0)
        goto out;
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = malloc(n ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        goto out;
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "replay: %s: read failed\n", path);
    free(buf);
    fclose(f);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file in dir, in name order so a failure is repeatable.
 * Adds the count to *n_run. Returns 0, or -1 on an unreadable entry. */
static int run_dir(const char *dir, long *n_run)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = -1;
                break;
            }
            names = nn;
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, by_name);
    char path[4096];
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        rc = run_file(path);
        if (rc == 0)
            (*n_run)++;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    long n_run = 0;
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            failed = 1;
        } else if (S_ISDIR(st.st_mode)) {
            long before = n_run;
            failed |= run_dir(argv[i], &n_run) != 0;
            if (n_run == before) {
                fprintf(stderr, "replay: %s: no inputs in the corpus directory\n", argv[i]);
                failed = 1;
            }
        } else {
            int r = run_file(argv[i]);
            failed |= r != 0;
            n_run += r == 0;
        }
    }
    printf("replay: ran %ld input%s\n", n_run, n_run == 1 ? "" : "s");
    if (n_run == 0)
        failed = 1;
    return failed ? 1 : 0;
}
