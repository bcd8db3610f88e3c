/* SPDX-License-Identifier: MIT
 * Command-line helpers shared by the subcommands: an option table parser,
 * strict number parsing (the whole string must be a number in range) and
 * uniform error output.
 */
#ifndef KZ_CLI_ARGS_H
#define KZ_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

/* One option of a command, for kz_args. */
enum kz_opt_kind { KZ_OPT_FLAG, KZ_OPT_TEXT, KZ_OPT_INT, KZ_OPT_U64, KZ_OPT_FLOAT };
struct kz_opt {
    const char *names;     /* its spellings, '|' between: "-m|--model" */
    enum kz_opt_kind kind;
    void *out;             /* FLAG: int (set to 1), TEXT: const char *, INT: long, U64: uint64_t, FLOAT: float */
    double lo, hi;         /* INT and FLOAT: the range allowed */
    int *given;            /* when not NULL: set to 1 when the option appears */
};

/* Where kz_args puts the arguments that are not options: v[0..max), n of
 * them given. */
struct kz_args_pos {
    const char **v;
    int max, n;
};

/* Parses argv[1..argc) of command cmd ("serve") against opts[0..n_opts);
 * -h and --help print help. An argument that is not an option (it does
 * not start with '-', or is "-" alone, or a negative number, or follows
 * "--") goes to pos; with pos NULL, or more than pos->max, it is an error.
 * A later option overrides an earlier one. Returns -1 to go on, or the
 * exit status: 0 once help is printed, 2 after an error message. */
int kz_args(const char *cmd, const char *help, const struct kz_opt *opts, size_t n_opts, int argc, char **argv,
            struct kz_args_pos *pos);
#define KZ_ARGS(cmd, help, opts, argc, argv, pos) \
    kz_args(cmd, help, opts, sizeof(opts) / sizeof((opts)[0]), argc, argv, pos)

/* Table entries. The conditional makes the compiler warn when p has the
 * wrong type (an error with KZ_WERROR, as in CI). */
#define KZ_ARG_FLAG(n, p) {.names = (n), .kind = KZ_OPT_FLAG, .out = (1 ? (p) : (int *)0)}
#define KZ_ARG_TEXT(n, p) {.names = (n), .kind = KZ_OPT_TEXT, .out = (1 ? (p) : (const char **)0)}
#define KZ_ARG_INT(n, p, min, max) \
    {.names = (n), .kind = KZ_OPT_INT, .out = (1 ? (p) : (long *)0), .lo = (min), .hi = (max)}
#define KZ_ARG_U64(n, p) {.names = (n), .kind = KZ_OPT_U64, .out = (1 ? (p) : (uint64_t *)0)}
#define KZ_ARG_U64_GIVEN(n, p, g) \
    {.names = (n), .kind = KZ_OPT_U64, .out = (1 ? (p) : (uint64_t *)0), .given = (1 ? (g) : (int *)0)}
#define KZ_ARG_FLOAT(n, p, min, max) \
    {.names = (n), .kind = KZ_OPT_FLOAT, .out = (1 ? (p) : (float *)0), .lo = (min), .hi = (max)}

/* Subcommands; each returns the process exit status. */
int kz_cmd_run(int argc, char **argv);
int kz_cmd_info(int argc, char **argv);
int kz_cmd_tokenize(int argc, char **argv);
int kz_cmd_synth(int argc, char **argv);
int kz_cmd_serve(int argc, char **argv);
int kz_cmd_pull(int argc, char **argv);
int kz_cmd_models(int argc, char **argv);
int kz_cmd_template(int argc, char **argv);
int kz_cmd_bench(int argc, char **argv);
int kz_cmd_keys(int argc, char **argv);
int kz_cmd_tenants(int argc, char **argv);
int kz_cmd_usage(int argc, char **argv);

#endif
