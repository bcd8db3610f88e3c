/* SPDX-License-Identifier: MIT
 * Command-line helpers shared by the subcommands: strict number parsing
 * (the whole string must be a number in range) and uniform error output.
 */
#ifndef KZ_CLI_ARGS_H
#define KZ_CLI_ARGS_H

#include <stdint.h>

/* Each returns 0 on success; on failure prints "kyozon CMD: OPT: ..." to
 * stderr and returns -1. `val` may be NULL (missing argument). */
int kz_arg_int(const char *cmd, const char *opt, const char *val, long lo, long hi, long *out);
int kz_arg_u64(const char *cmd, const char *opt, const char *val, uint64_t *out);
int kz_arg_float(const char *cmd, const char *opt, const char *val, double lo, double hi, float *out);
/* For an option that needs a value: prints an error when val is NULL. */
int kz_arg_need(const char *cmd, const char *opt, const char *val);

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
