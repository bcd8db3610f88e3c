/* SPDX-License-Identifier: MIT
 * Retry-After values (RFC 9110 section 10.2.3): delta-seconds or an
 * HTTP-date (section 5.6.7), plus the millisecond form some providers send
 * in "retry-after-ms". Parsed by hand: strptime and timegm depend on the
 * locale and the platform, and a header is a few dozen bytes.
 */
#include <string.h>

#include "router/upstream_error.h"

/* A cursor over the header value; every reader fails by returning 0. */
struct cur {
    const char *p, *end;
};

static int lit(struct cur *c, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n))
        return 0;
    c->p += n;
    return 1;
}

/* Exactly n digits (n <= 4). */
static int digits(struct cur *c, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, c->p++) {
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return 0;
        v = v * 10 + (*c->p - '0');
    }
    *out = v;
    return 1;
}

/* One of the names (case-sensitive, as the grammar says); its index in *out. */
static int word(struct cur *c, const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (lit(c, names[i])) {
            *out = i;
            return 1;
        }
    return 0;
}

static const char *const day_short[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const day_long[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static long leaps_before(int y) { return (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400; }

/* Unix seconds of a UTC date into *t (long long: year 9999 does not fit a
 * 32-bit long, and 1900..1969 are negative); 0 when a field is out of range. */
static int unix_time(int y, int mon, int d, int h, int mi, int s, long long *t)
{
    static const int before[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || mon < 0 || mon > 11 || d < 1 || d > mdays[mon] + (mon == 1 && leap(y)) || h > 23 || mi > 59 ||
        s > 60)
        return 0;
    long long days = (long long)(y - 1970) * 365 + leaps_before(y) - leaps_before(1970) + before[mon] +
                     (mon > 1 && leap(y)) + d - 1;
    *t = ((days * 24 + h) * 60 + mi) * 60 + s;
    return 1;
}

/* "HH:MM:SS" */
static int hms(struct cur *c, int *h, int *mi, int *s)
{
    return digits(c, 2, h) && lit(c, ":") && digits(c, 2, mi) && lit(c, ":") && digits(c, 2, s);
}

/* The three HTTP-date forms: unix seconds into *t, or 0 when it is none. */
static int http_date(const char *p, const char *end, long now, long long *t)
{
    struct cur c = {p, end};
    int wd, d, mon, y, h, mi, s;
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
    if (word(&c, day_short, 7, &wd) && lit(&c, ", ") && digits(&c, 2, &d) && lit(&c, " ") &&
        word(&c, months, 12, &mon) && lit(&c, " ") && digits(&c, 4, &y) && lit(&c, " ") && hms(&c, &h, &mi, &s) &&
        lit(&c, " GMT") && c.p == end)
        return unix_time(y, mon, d, h, mi, s, t);
    /* rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT". A two-digit year more
     * than 50 years ahead of now is the most recent past year with those
     * digits (RFC 9110 section 5.6.7). */
    c.p = p;
    if (word(&c, day_long, 7, &wd) && lit(&c, ", ") && digits(&c, 2, &d) && lit(&c, "-") &&
        word(&c, months, 12, &mon) && lit(&c, "-") && digits(&c, 2, &y) && lit(&c, " ") && hms(&c, &h, &mi, &s) &&
        lit(&c, " GMT") && c.p == end) {
        long year_now = 1970 + now / 31556952L; /* mean Gregorian year; a year off at the edges does not matter here */
        y += (int)(year_now / 100 * 100);
        if (y > year_now + 50)
            y -= 100;
        return unix_time(y, mon, d, h, mi, s, t);
    }
    /* asctime-date: "Sun Nov  6 08:49:37 1994" (day padded with a space) */
    c.p = p;
    if (word(&c, day_short, 7, &wd) && lit(&c, " ") && word(&c, months, 12, &mon) && lit(&c, " ") &&
        (lit(&c, " ") ? digits(&c, 1, &d) : digits(&c, 2, &d)) && lit(&c, " ") && hms(&c, &h, &mi, &s) &&
        lit(&c, " ") && digits(&c, 4, &y) && c.p == end)
        return unix_time(y, mon, d, h, mi, s, t);
    return 0;
}

/* A non-negative decimal number "123" or "1.5" in units of `unit` ms,
 * saturating at the cap; -1 when it is not one. */
static long number_ms(const char *p, const char *end, long unit)
{
    long v = 0;
    const char *q = p;
    for (; q < end && *q >= '0' && *q <= '9'; q++)
        if (v <= KZ_RETRY_AFTER_MAX_MS)
            v = v * 10 + (*q - '0');
    if (q == p)
        return -1;
    v = v > KZ_RETRY_AFTER_MAX_MS / unit ? KZ_RETRY_AFTER_MAX_MS + 1 : v * unit;
    if (q < end && *q == '.') {
        const char *f = ++q;
        long frac = 0, scale = unit;
        for (; q < end && *q >= '0' && *q <= '9'; q++)
            if (scale >= 10) { /* finer than a millisecond does not matter */
                scale /= 10;
                frac += (*q - '0') * scale;
            }
        if (q == f)
            return -1;
        v += frac;
    }
    if (q != end)
        return -1;
    return v > KZ_RETRY_AFTER_MAX_MS ? KZ_RETRY_AFTER_MAX_MS : v;
}

long kz_retry_after_ms(const char *value, size_t len, int ms, long now)
{
    if (!value)
        return -1;
    const char *p = value, *end = value + len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (p == end)
        return -1;
    if (ms)
        return number_ms(p, end, 1);
    if (*p >= '0' && *p <= '9')
        return number_ms(p, end, 1000);
    long long t;
    if (!http_date(p, end, now, &t))
        return -1;
    if (t <= now)
        return 0;
    return t - now >= KZ_RETRY_AFTER_MAX_MS / 1000 ? KZ_RETRY_AFTER_MAX_MS : (long)(t - now) * 1000;
}
