/* SPDX-License-Identifier: MIT
 * The subcommands' option parsing (args.h).
 */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* For an option that needs a value: 0, or -1 with a message when val is
 * NULL. The number readers below also return 0, or -1 after a message
 * "kyozon CMD: OPT: ..."; the whole string must be a number in range. */
static int arg_need(const char *cmd, const char *opt, const char *val)
{
    if (val)
        return 0;
    fprintf(stderr, "kyozon %s: %s needs a value (see kyozon %s --help)\n", cmd, opt, cmd);
    return -1;
}

static int arg_int(const char *cmd, const char *opt, const char *val, long lo, long hi, long *out)
{
    if (arg_need(cmd, opt, val))
        return -1;
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end) {
        fprintf(stderr, "kyozon %s: %s: '%s' is not an integer\n", cmd, opt, val);
        return -1;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "kyozon %s: %s: %ld is out of range (%ld..%ld)\n", cmd, opt, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int arg_u64(const char *cmd, const char *opt, const char *val, uint64_t *out)
{
    if (arg_need(cmd, opt, val))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (errno || end == val || *end || val[0] == '-') {
        fprintf(stderr, "kyozon %s: %s: '%s' is not a non-negative integer\n", cmd, opt, val);
        return -1;
    }
    *out = v;
    return 0;
}

static int arg_float(const char *cmd, const char *opt, const char *val, double lo, double hi, float *out)
{
    if (arg_need(cmd, opt, val))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || !isfinite(v)) {
        fprintf(stderr, "kyozon %s: %s: '%s' is not a number\n", cmd, opt, val);
        return -1;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "kyozon %s: %s: %g is out of range (%g..%g)\n", cmd, opt, v, lo, hi);
        return -1;
    }
    *out = (float)v;
    return 0;
}

/* Whether a is one of the '|'-separated spellings in names. */
static int named(const char *names, const char *a)
{
    size_t n = strlen(a);
    for (const char *p = names;; p++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !memcmp(p, a, n))
            return 1;
        if (!bar)
            return 0;
        p = bar;
    }
}

/* Sets o from v (argument i of the command line); 0 or -1 (message shown). */
static int set_opt(const char *cmd, const struct kz_opt *o, const char *a, const char *v)
{
    switch (o->kind) {
    case KZ_OPT_FLAG:
        *(int *)o->out = 1;
        return 0;
    case KZ_OPT_TEXT:
        if (arg_need(cmd, a, v))
            return -1;
        *(const char **)o->out = v;
        return 0;
    case KZ_OPT_INT:
        return arg_int(cmd, a, v, (long)o->lo, (long)o->hi, o->out);
    case KZ_OPT_U64:
        return arg_u64(cmd, a, v, o->out);
    case KZ_OPT_FLOAT:
        return arg_float(cmd, a, v, o->lo, o->hi, o->out);
    }
    return -1;
}

int kz_args(const char *cmd, const char *help, const struct kz_opt *opts, size_t n_opts, int argc, char **argv,
            struct kz_args_pos *pos)
{
    int options = 1; /* until "--" */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && !strcmp(a, "--")) {
            options = 0;
            continue;
        }
        if (options && a[0] == '-' && a[1] && !(a[1] >= '0' && a[1] <= '9')) {
            if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
                fputs(help, stdout);
                return 0;
            }
            const struct kz_opt *o = NULL;
            for (size_t k = 0; !o && k < n_opts; k++)
                if (named(opts[k].names, a))
                    o = &opts[k];
            if (!o) {
                fprintf(stderr, "kyozon %s: unknown option '%s' (see kyozon %s --help)\n", cmd, a, cmd);
                return 2;
            }
            const char *v = o->kind != KZ_OPT_FLAG && i + 1 < argc ? argv[++i] : NULL;
            if (set_opt(cmd, o, a, v) != 0)
                return 2;
            if (o->given)
                *o->given = 1;
        } else if (!pos) {
            fprintf(stderr, "kyozon %s: unknown option '%s' (see kyozon %s --help)\n", cmd, a, cmd);
            return 2;
        } else if (pos->n == pos->max) {
            fprintf(stderr, "kyozon %s: unexpected argument '%s' (see kyozon %s --help)\n", cmd, a, cmd);
            return 2;
        } else {
            pos->v[pos->n++] = a;
        }
    }
    return -1;
}
