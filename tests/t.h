/* SPDX-License-Identifier: MIT
 * Minimal test harness: TAP-style lines per check, a closing
 * "N passed, N failed" line, exit status 0 only when nothing failed.
 *
 * A test program is main() { t_subtest("name", fn); ... return t_done(); }.
 * To add a case, write a static void function with T_* checks and register it
 * with t_subtest. Data-dependent tests call t_data_path(): it returns NULL
 * when ../shared/data is absent (and KZ_TEST_DATA is unset); report the cases
 * you could not run with t_skip(n, why). Under CI=true a skip is a failure.
 */
#ifndef KZ_T_H
#define KZ_T_H

#include <stddef.h>
#include <stdint.h>

void t_ok(int cond, const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
void t_subtest(const char *name, void (*fn)(void));
/* Records n cases that could not run (loud on stderr; a failure under CI). */
void t_skip(int n, const char *why);
/* Prints the closing line and returns the exit status for main(). */
int t_done(void);
/* Number of failures so far (to stop early after a broken precondition). */
int t_failures(void);

/* Path of `rel` inside the shared test data, in a static buffer (valid until
 * the next call); NULL when the data directory is absent. */
const char *t_data_path(const char *rel);
/* Path of `rel` inside the source tree (KZ_SRC_DIR), static buffer. */
const char *t_src_path(const char *rel);
/* A fresh temporary directory for this program (created once); t_done
 * removes it when nothing failed. */
const char *t_tmpdir(void);
/* Reads a whole file into a new buffer (kz_free); NULL on error. */
char *t_read_file(const char *path, size_t *len /* out, may be NULL */);

#define T_OK(cond, ...) t_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define T_EQ_INT(a, b)                                                                    \
    do {                                                                                  \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                           \
        t_ok(t_a_ == t_b_, __FILE__, __LINE__, "%s == %s (%lld vs %lld)", #a, #b, t_a_, t_b_); \
    } while (0)
#define T_EQ_STR(a, b)                                                                    \
    do {                                                                                  \
        const char *t_a_ = (a), *t_b_ = (b);                                              \
        t_ok(t_a_ && t_b_ && strcmp(t_a_, t_b_) == 0, __FILE__, __LINE__, "%s == %s (\"%s\" vs \"%s\")", \
             #a, #b, t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)");                     \
    } while (0)

#endif
