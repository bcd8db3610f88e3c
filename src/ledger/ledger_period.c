/* SPDX-License-Identifier: MIT
 * Time in the ledger: the clock, budget periods (UTC days and months) and
 * day numbers for usage grouping.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ledger/ledger_int.h"

#define MS_PER_DAY INT64_C(86400000)

static const char *const PERIOD_NAMES[] = {"total", "day", "month"};

const char *kz_ledger_period_name(enum kz_ledger_period p)
{
    return (unsigned)p < sizeof PERIOD_NAMES / sizeof PERIOD_NAMES[0] ? PERIOD_NAMES[p] : "?";
}

kz_status kz_ledger_period_parse(const char *s, enum kz_ledger_period *out, struct kz_err *err)
{
    for (size_t i = 0; s && i < sizeof PERIOD_NAMES / sizeof PERIOD_NAMES[0]; i++)
        if (strcmp(s, PERIOD_NAMES[i]) == 0) {
            *out = (enum kz_ledger_period)i;
            return KZ_OK;
        }
    return kz_err_set(err, KZ_EINVAL, "unknown budget period '%s' (expected day, month or total)", s ? s : "");
}

int64_t kz_ledger_now(const struct kz_ledger *l)
{
    if (l->opts.clock_ms)
        return l->opts.clock_ms(l->opts.clock_ud);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Floor division, so times before 1970 (only a test clock makes them) still
 * land in the right day. */
int64_t kz_ledger_day(int64_t ms)
{
    int64_t d = ms / MS_PER_DAY;
    return (ms % MS_PER_DAY < 0) ? d - 1 : d;
}

int64_t kz_ledger_period_start(enum kz_ledger_period p, int64_t ms)
{
    if (p == KZ_PERIOD_DAY)
        return kz_ledger_day(ms) * MS_PER_DAY;
    if (p != KZ_PERIOD_MONTH)
        return 0;
    /* The libc calendar does the month arithmetic: first day of the month
     * that holds this day, at 00:00 UTC. */
    time_t t = (time_t)(kz_ledger_day(ms) * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    return (int64_t)timegm(&tm) * 1000;
}

void kz_ledger_day_name(int64_t day, char *buf, size_t size)
{
    time_t t = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, size, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}
