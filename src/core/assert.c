/* SPDX-License-Identifier: MIT */
#include "core/assert.h"

#include <stdio.h>
#include <stdlib.h>

void kz_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "kyozon: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
    abort();
}
