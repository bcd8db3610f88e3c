/* SPDX-License-Identifier: MIT */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int kz_arg_need(const char *cmd, const char *opt, const char *val)
{
    if (val)
        return 0;
    fprintf(stderr, "kyozon %s: %s needs a value (see kyozon %s --help)\n", cmd, opt, cmd);
    return -1;
}

int kz_arg_int(const char *cmd, const char *opt, const char *val, long lo, long hi, long *out)
{
    if (kz_arg_need(cmd, opt, val))
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

int kz_arg_u64(const char *cmd, const char *opt, const char *val, uint64_t *out)
{
    if (kz_arg_need(cmd, opt, val))
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

int kz_arg_float(const char *cmd, const char *opt, const char *val, double lo, double hi, float *out)
{
    if (kz_arg_need(cmd, opt, val))
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
