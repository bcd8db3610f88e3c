/* SPDX-License-Identifier: MIT
 * Typed readers for configuration values: strings, integers, decimal numbers,
 * money and choices, each checking its node and naming it on failure.
 *
 * Numbers must be plain (unquoted) scalars, as YAML itself reads "8080" in
 * quotes as a string. Decimals are parsed by hand, exactly, rather than
 * with strtod: strtod follows the process locale (a decimal comma would
 * break it) and a binary double cannot round money the way a person reads it
 * (0.0000005 is just below one half millionth as a double).
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "router/config_int.h"

#define MICRO 1000000LL

int kz_cfg__is_null(const struct kz_cfg_node *n)
{
    if (!n || n->kind != KZ_CFG_SCALAR || !n->plain)
        return 0;
    return n->len == 0 || strcmp(n->val, "~") == 0 || strcmp(n->val, "null") == 0 || strcmp(n->val, "Null") == 0 ||
           strcmp(n->val, "NULL") == 0;
}

static const char *kind_name(const struct kz_cfg_node *n)
{
    if (n->kind == KZ_CFG_MAP)
        return "a mapping";
    if (n->kind == KZ_CFG_SEQ)
        return "a list";
    return kz_cfg__is_null(n) ? "empty" : "a single value";
}

kz_status kz_cfg__want_map(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n)
{
    if (n->kind != KZ_CFG_MAP)
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must be a mapping (key: value lines), not %s", kind_name(n));
    return KZ_OK;
}

kz_status kz_cfg__want_seq(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n)
{
    if (n->kind != KZ_CFG_SEQ)
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must be a list, not %s", kind_name(n));
    return KZ_OK;
}

kz_status kz_cfg__list(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, size_t max, const char *what,
                       size_t elem_size, void **out, size_t *count)
{
    kz_status rc = kz_cfg__want_seq(cx, n);
    if (rc)
        return rc;
    if (n->n_kids > max)
        return kz_cfg__fail(cx, n, KZ_ELIMIT, "too many %s (at most %zu)", what, max);
    if (n->n_kids == 0)
        return KZ_OK;
    void *a = kz_calloc(n->n_kids, elem_size);
    if (!a)
        return KZ_ENOMEM;
    *out = a;
    *count = n->n_kids;
    return KZ_OK;
}

static kz_status want_scalar(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, const char *what)
{
    if (n->kind != KZ_CFG_SCALAR)
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must be %s, not %s", what, kind_name(n));
    return KZ_OK;
}

kz_status kz_cfg__string(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, size_t max_len, char **out)
{
    kz_status rc = want_scalar(cx, n, "a string");
    if (rc)
        return rc;
    if (n->len == 0)
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must not be empty");
    if (n->len > max_len)
        return kz_cfg__fail(cx, n, KZ_ELIMIT, "longer than %zu bytes", max_len);
    for (size_t i = 0; i < n->len; i++) {
        unsigned char ch = (unsigned char)n->val[i];
        if (ch < 0x20 || ch == 0x7f)
            return kz_cfg__fail(cx, n, KZ_EINVAL, "must not contain control characters");
    }
    char *s = kz_strndup(n->val, n->len);
    if (!s)
        return KZ_ENOMEM;
    kz_free(*out);
    *out = s;
    return KZ_OK;
}

/* ---- integers ----------------------------------------------------------- */

/* Optional sign and decimal digits only (no 0x, no '_'). Returns 0, -1 when
 * it is not such an integer, -2 when its magnitude is above 10^18. */
static int parse_integer(const char *s, long long *out)
{
    int neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    if (!*s)
        return -1;
    long long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > 100000000000000000LL)
            return -2;
        v = v * 10 + (*s - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

kz_status kz_cfg__integer(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, long long lo, long long hi,
                          long long *out)
{
    kz_status rc = want_scalar(cx, n, "an integer");
    if (rc)
        return rc;
    char shown[48];
    kz_cfg__show(shown, sizeof shown, n->val);
    if (!n->plain)
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must be an integer, not a quoted string");
    long long v = 0;
    int r = parse_integer(n->val, &v);
    if (r == -1)
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must be an integer (got '%s')", shown);
    if (r == -2 || v < lo || v > hi)
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must be between %lld and %lld (got %s)", lo, hi, shown);
    *out = v;
    return KZ_OK;
}

kz_status kz_cfg__int(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, int lo, int hi, int *out)
{
    long long v = 0;
    kz_status rc = kz_cfg__integer(cx, n, lo, hi, &v);
    if (!rc)
        *out = (int)v;
    return rc;
}

kz_status kz_cfg__ms(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, unsigned lo, unsigned *out)
{
    long long v = 0;
    kz_status rc = kz_cfg__integer(cx, n, lo, KZ_CFG_MAX_MS, &v);
    if (!rc)
        *out = (unsigned)v;
    return rc;
}

/* ---- decimals ----------------------------------------------------------- */

#define SIG_DIGITS 40

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Parses [+-]digits[.digits][e[+-]digits] into millionths, rounded half away
 * from zero. *mag gets the magnitude, *neg the sign. Returns 0, -1 when s is
 * not such a number, -2 when the magnitude is above max. Only the first
 * SIG_DIGITS significant digits are kept: with max below 10^19 any digit
 * further right is below the rounding digit, so it cannot change the result. */
static int decimal_micro(const char *s, int64_t max, int *neg, int64_t *mag)
{
    char dig[SIG_DIGITS];
    int nd = 0, any = 0;
    long long exp10 = 0;
    *neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    for (; is_digit(*s); s++) {
        any = 1;
        if (nd == 0 && *s == '0')
            continue;
        if (nd < SIG_DIGITS)
            dig[nd++] = *s;
        else
            exp10++;
    }
    if (*s == '.') {
        for (s++; is_digit(*s); s++) {
            any = 1;
            if (nd == 0 && *s == '0') {
                exp10--;
            } else if (nd < SIG_DIGITS) {
                dig[nd++] = *s;
                exp10--;
            }
        }
    }
    if (!any)
        return -1;
    if (*s == 'e' || *s == 'E') {
        s++;
        int eneg = *s == '-';
        if (*s == '-' || *s == '+')
            s++;
        if (!is_digit(*s))
            return -1;
        long long e = 0;
        for (; is_digit(*s); s++)
            if (e < 100000) /* far past any digit count: enough to say "too large" or "zero" */
                e = e * 10 + (*s - '0');
        exp10 += eneg ? -e : e;
    }
    if (*s)
        return -1;
    /* value = dig × 10^exp10; in millionths, 6 more */
    exp10 += 6;
    long long keep = nd + exp10; /* digits left of the point */
    if (nd == 0 || keep < 0) {
        *mag = 0;
        return 0;
    }
    if (keep > 19)
        return -2;
    int64_t v = 0;
    for (long long i = 0; i < keep; i++) {
        int d = i < nd ? dig[i] - '0' : 0;
        if (v > (max - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    if (keep < nd && dig[keep] >= '5') {
        if (v == max)
            return -2;
        v++;
    }
    *mag = v;
    return 0;
}

/* What kz_cfg__number and kz_cfg__money share: a plain scalar through
 * decimal_micro; "not a number" is reported here, *r says 0 or -2 (above
 * max). `what` completes "must be ...". shown gets the value for messages. */
static kz_status read_decimal(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, const char *what, int64_t max,
                              int *neg, int64_t *mag, int *r, char shown[48])
{
    kz_status rc = want_scalar(cx, n, what);
    if (rc)
        return rc;
    kz_cfg__show(shown, 48, n->val);
    if (!n->plain)
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must be %s, not a quoted string", what);
    *r = decimal_micro(n->val, max, neg, mag);
    if (*r == -1)
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must be %s (got '%s')", what, shown);
    return KZ_OK;
}

kz_status kz_cfg__number(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, double lo, double hi,
                         double *out)
{
    char shown[48];
    int neg = 0, r = 0;
    int64_t mag = 0;
    kz_status rc = read_decimal(cx, n, "a number", (int64_t)(hi * MICRO), &neg, &mag, &r, shown);
    if (rc)
        return rc;
    double v = (double)mag / (double)MICRO * (neg ? -1.0 : 1.0);
    if (r == -2 || v < lo || v > hi)
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must be between %g and %g (got %s)", lo, hi, shown);
    *out = v;
    return KZ_OK;
}

kz_status kz_cfg__money(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, int64_t *out)
{
    char shown[48];
    int neg = 0, r = 0;
    int64_t mag = 0;
    kz_status rc = read_decimal(cx, n, "a number of dollars per million tokens", KZ_CFG_MAX_PRICE_MICRO, &neg, &mag,
                                &r, shown);
    if (rc)
        return rc;
    if (neg && (r == -2 || mag > 0))
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must not be negative (got %s)", shown);
    if (r == -2)
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must be at most %lld dollars per million tokens (got %s)",
                            KZ_CFG_MAX_PRICE_MICRO / MICRO, shown);
    *out = mag;
    return KZ_OK;
}

kz_status kz_cfg__price(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, struct kz_price *out)
{
    static const char *const keys[] = {"input_per_mtok", "output_per_mtok"};
    kz_status rc = kz_cfg__want_map(cx, n);
    if (!rc)
        rc = kz_cfg__known_keys(cx, n, keys, 2);
    struct kz_price p = {0, 0};
    const struct kz_cfg_node *v = kz_cfg__get(n, keys[0]);
    if (!rc && v && !kz_cfg__is_null(v))
        rc = kz_cfg__money(cx, v, &p.input_per_mtok);
    v = kz_cfg__get(n, keys[1]);
    if (!rc && v && !kz_cfg__is_null(v))
        rc = kz_cfg__money(cx, v, &p.output_per_mtok);
    if (!rc)
        *out = p;
    return rc;
}

/* ---- choices and key sets ----------------------------------------------- */

/* "a, b or c" into buf. */
static void list_words(char *buf, size_t cap, const char *const *words, size_t count)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < count && used < cap; i++) {
        const char *sep = i == 0 ? "" : i + 1 == count ? " or " : ", ";
        int w = snprintf(buf + used, cap - used, "%s%s", sep, words[i]);
        if (w < 0)
            return;
        used += (size_t)w;
    }
}

kz_status kz_cfg__choice(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, const char *what,
                         const char *const *names, int count, int *out)
{
    char expected[256], shown[48];
    list_words(expected, sizeof expected, names, (size_t)count);
    kz_status rc = want_scalar(cx, n, "a single word");
    if (rc)
        return rc;
    for (int i = 0; i < count; i++) {
        if (strcmp(n->val, names[i]) == 0) {
            *out = i;
            return KZ_OK;
        }
    }
    return kz_cfg__fail(cx, n, KZ_EINVAL, "unknown %s '%s' (expected %s)", what,
                        kz_cfg__show(shown, sizeof shown, n->val), expected);
}

kz_status kz_cfg__known_keys(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *m, const char *const *keys,
                             size_t count)
{
    for (size_t i = 0; i < m->n_kids; i++) {
        size_t k = 0;
        while (k < count && strcmp(keys[k], m->kids[i]->key) != 0)
            k++;
        if (k == count) {
            char expected[320];
            list_words(expected, sizeof expected, keys, count);
            return kz_cfg__fail_key(cx, m->kids[i], KZ_EINVAL, "unknown key (expected %s)", expected);
        }
    }
    return KZ_OK;
}
