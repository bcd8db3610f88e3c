/* SPDX-License-Identifier: MIT
 * AWS Signature Version 4, following the steps of the AWS "Create a signed
 * AWS API request" guide: canonical request, string to sign, signing key
 * (HMAC chain over date, region, service, "aws4_request"), signature. The
 * rules for each canonical part, and why, are in sigv4.h.
 */
#include "router/sigv4.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/hmac.h"
#include "core/sha256.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

/* ---- a growable string; an allocation failure is remembered, not checked at every call ---- */

struct sb {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = kz_realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sb *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_chr(struct sb *b, char c) { sb_add(b, &c, 1); }

/* Takes the string out of b (never NULL on success: "" for empty). */
static kz_status sb_take(struct sb *b, char **out, struct kz_err *err)
{
    if (!b->oom && !b->p)
        sb_add(b, "", 0);
    if (b->oom) {
        KZ_FREE(b->p);
        return kz_err_set(err, KZ_ENOMEM, "sigv4: out of memory");
    }
    *out = b->p;
    b->p = NULL;
    return KZ_OK;
}

/* ---- URI encoding (the SigV4 flavour: RFC 3986 unreserved kept, %XX uppercase) ---- */

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

static void uri_encode(struct sb *b, const char *s, size_t n, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            sb_chr(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_add(b, e, 3);
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into a new buffer (*out, *out_len). */
static kz_status uri_decode(const char *s, size_t n, char **out, size_t *out_len, struct kz_err *err)
{
    char *d = kz_malloc(n + 1);
    if (!d)
        return kz_err_set(err, KZ_ENOMEM, "sigv4: out of memory");
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            d[j++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            kz_free(d);
            return kz_err_set(err, KZ_EINVAL, "sigv4: query: bad percent-escape at offset %zu", i);
        }
        d[j++] = (char)(hi << 4 | lo);
        i += 2;
    }
    d[j] = '\0';
    *out = d;
    *out_len = j;
    return KZ_OK;
}

/* ---- canonical URI ---- */

/* Appends the normalized, encoded path (see sigv4.h). Segments are kept as
 * (start, length) pairs into `path`; ".." pops one. */
static kz_status canonical_uri(struct sb *b, const char *path, const char *service, struct kz_err *err)
{
    if (!path || !path[0]) {
        sb_chr(b, '/');
        return KZ_OK;
    }
    if (path[0] != '/')
        return kz_err_set(err, KZ_EINVAL, "sigv4: path must start with '/' (got \"%.64s\")", path);
    if (strcmp(service, "s3") == 0) {
        sb_str(b, path);
        return KZ_OK;
    }
    size_t n = strlen(path), n_seg = 0;
    size_t(*seg)[2] = kz_calloc(n / 2 + 1, sizeof *seg); /* at most one segment per two bytes ("/x") */
    if (!seg)
        return kz_err_set(err, KZ_ENOMEM, "sigv4: out of memory");
    int trailing = 0; /* RFC 3986 5.2.4: "/a/" and "/a/." and "/a/b/.." all end in '/' */
    size_t i = 0;
    while (i < n) {
        while (i < n && path[i] == '/')
            i++;
        size_t s = i;
        while (i < n && path[i] != '/')
            i++;
        size_t len = i - s;
        int last = i >= n;
        if (len == 0) {
            trailing = 1; /* the path ended in one or more slashes */
        } else if (len == 1 && path[s] == '.') {
            trailing = last;
        } else if (len == 2 && path[s] == '.' && path[s + 1] == '.') {
            if (n_seg)
                n_seg--;
            trailing = last;
        } else {
            seg[n_seg][0] = s;
            seg[n_seg][1] = len;
            n_seg++;
            trailing = 0;
        }
    }
    for (size_t k = 0; k < n_seg; k++) {
        sb_chr(b, '/');
        uri_encode(b, path + seg[k][0], seg[k][1], 0);
    }
    if (n_seg == 0 || trailing)
        sb_chr(b, '/');
    kz_free(seg);
    return KZ_OK;
}

/* ---- canonical query ---- */

struct qparam {
    char *name, *value; /* encoded, NUL-terminated */
};

static int cmp_qparam(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Decodes and re-encodes s[0..n) into a new NUL-terminated string. */
static kz_status reencode(const char *s, size_t n, char **out, struct kz_err *err)
{
    char *raw = NULL;
    size_t raw_len = 0;
    kz_status rc = uri_decode(s, n, &raw, &raw_len, err);
    if (rc)
        return rc;
    struct sb b = {0};
    uri_encode(&b, raw, raw_len, 0);
    kz_free(raw);
    return sb_take(&b, out, err);
}

static kz_status canonical_query(struct sb *b, const char *query, struct kz_err *err)
{
    if (!query || !query[0])
        return KZ_OK;
    size_t n_max = 1;
    for (const char *q = query; *q; q++)
        n_max += *q == '&';
    struct qparam *ps = kz_calloc(n_max, sizeof *ps);
    if (!ps)
        return kz_err_set(err, KZ_ENOMEM, "sigv4: out of memory");
    size_t np = 0;
    kz_status rc = KZ_OK;
    const char *p = query;
    while (*p && rc == KZ_OK) {
        const char *end = strchr(p, '&');
        if (!end)
            end = p + strlen(p);
        if (end > p) { /* "a=1&&b=2": the empty piece is not a parameter */
            const char *eq = memchr(p, '=', (size_t)(end - p));
            const char *name_end = eq ? eq : end;
            rc = reencode(p, (size_t)(name_end - p), &ps[np].name, err);
            if (rc == KZ_OK) {
                rc = eq ? reencode(eq + 1, (size_t)(end - eq - 1), &ps[np].value, err)
                        : reencode("", 0, &ps[np].value, err);
                np++; /* counted even when the value failed, so its name is freed below */
            }
        }
        p = *end ? end + 1 : end;
    }
    if (rc == KZ_OK) {
        qsort(ps, np, sizeof *ps, cmp_qparam);
        for (size_t i = 0; i < np; i++) {
            if (i)
                sb_chr(b, '&');
            sb_str(b, ps[i].name);
            sb_chr(b, '=');
            sb_str(b, ps[i].value);
        }
    }
    for (size_t i = 0; i < np; i++) {
        kz_free(ps[i].name);
        kz_free(ps[i].value);
    }
    kz_free(ps);
    return rc;
}

/* ---- canonical headers ---- */

struct hdr {
    char *name;        /* lowercased copy */
    const char *value; /* as given */
    size_t order;      /* position given, so repeated names keep their order */
};

static int cmp_hdr(const void *a, const void *b)
{
    const struct hdr *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* RFC 9110 token characters. */
static int tchar(unsigned char c)
{
    return unreserved(c) || (c && strchr("!#$%&'*+^`|", c) != NULL);
}

/* Appends a value trimmed, with inner runs of spaces and tabs collapsed. */
static void add_trimmed(struct sb *b, const char *v)
{
    int pending_space = 0, any = 0;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') {
            pending_space = any;
            continue;
        }
        if (pending_space)
            sb_chr(b, ' ');
        pending_space = 0;
        sb_chr(b, *v);
        any = 1;
    }
}

static int has_header(const struct hdr *h, size_t n, const char *lname)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(h[i].name, lname) == 0)
            return 1;
    return 0;
}

/* The canonical header block ("name:value\n" each) into b and the signed
 * header list ("a;b;c") into sig. Checks that host is present and that an
 * x-amz-date / x-amz-security-token given by the caller agrees with the
 * request's date and token. */
static kz_status canonical_headers(struct sb *b, struct sb *sig, const struct kz_sigv4_req *r, struct kz_err *err)
{
    size_t n = 0;
    struct hdr *h = kz_calloc(r->n_headers + 2, sizeof *h);
    if (!h)
        return kz_err_set(err, KZ_ENOMEM, "sigv4: out of memory");
    kz_status rc = KZ_OK;
    for (size_t i = 0; i < r->n_headers && rc == KZ_OK; i++) {
        const char *nm = r->headers[i].name, *v = r->headers[i].value;
        if (!nm || !nm[0] || !v) {
            rc = kz_err_set(err, KZ_EINVAL, "sigv4: headers[%zu]: name and value are required", i);
            break;
        }
        for (const char *c = nm; *c; c++)
            if (!tchar((unsigned char)*c)) {
                rc = kz_err_set(err, KZ_EINVAL, "sigv4: header '%.64s': bad character in the name", nm);
                break;
            }
        if (rc == KZ_OK && strpbrk(v, "\r\n"))
            rc = kz_err_set(err, KZ_EINVAL, "sigv4: header '%.64s': line breaks are not allowed in a value", nm);
        if (rc)
            break;
        h[n].name = kz_strdup(nm);
        if (!h[n].name) {
            rc = kz_err_set(err, KZ_ENOMEM, "sigv4: out of memory");
            break;
        }
        for (char *c = h[n].name; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        h[n].value = v;
        h[n].order = i;
        n++;
    }
    if (rc == KZ_OK && !has_header(h, n, "host"))
        rc = kz_err_set(err, KZ_EINVAL, "sigv4: headers: 'host' is required");
    /* The date and the token are signed; they are added at the end of the
     * given order, which only matters if the caller repeats the name. */
    const char *synth[2][2] = {{"x-amz-date", r->amz_date}, {"x-amz-security-token", r->session_token}};
    for (int k = 0; k < 2 && rc == KZ_OK; k++) {
        if (!synth[k][1] || !synth[k][1][0] || has_header(h, n, synth[k][0]))
            continue;
        h[n].name = kz_strdup(synth[k][0]);
        if (!h[n].name) {
            rc = kz_err_set(err, KZ_ENOMEM, "sigv4: out of memory");
            break;
        }
        h[n].value = synth[k][1];
        h[n].order = r->n_headers + (size_t)k;
        n++;
    }
    if (rc == KZ_OK) {
        qsort(h, n, sizeof *h, cmp_hdr);
        for (size_t i = 0; i < n && rc == KZ_OK; i++) {
            int first = i == 0 || strcmp(h[i].name, h[i - 1].name) != 0;
            int last = i + 1 == n || strcmp(h[i].name, h[i + 1].name) != 0;
            size_t value_at = 0;
            if (first) {
                sb_str(b, h[i].name);
                sb_chr(b, ':');
                if (i)
                    sb_chr(sig, ';');
                sb_str(sig, h[i].name);
            } else {
                sb_chr(b, ','); /* a repeated name: values joined in the order given */
            }
            value_at = b->len;
            add_trimmed(b, h[i].value);
            if (!last)
                continue;
            sb_chr(b, '\n');
            /* A caller-supplied date or token must be the one being signed for. */
            const char *want = strcmp(h[i].name, "x-amz-date") == 0                                ? r->amz_date
                               : strcmp(h[i].name, "x-amz-security-token") == 0 && r->session_token ? r->session_token
                                                                                                    : NULL;
            if (want && !b->oom && first) {
                size_t vl = b->len - 1 - value_at;
                if (vl != strlen(want) || memcmp(b->p + value_at, want, vl) != 0)
                    rc = kz_err_set(err, KZ_EINVAL, "sigv4: header '%s' differs from the value being signed",
                                    h[i].name);
            } else if (want && !first) {
                rc = kz_err_set(err, KZ_EINVAL, "sigv4: header '%s' is repeated", h[i].name);
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        kz_free(h[i].name);
    kz_free(h);
    return rc;
}

/* ---- the whole canonical request ---- */

static int valid_amz_date(const char *d)
{
    if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
        return 0;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9'))
            return 0;
    return 1;
}

/* A credential-scope part: it is joined with '/' and sent in a header.
 * The bound keeps the scope within its fixed buffer. */
#define SCOPE_PART_MAX 128

static int valid_scope_part(const char *s)
{
    if (!s || !s[0] || strlen(s) > SCOPE_PART_MAX)
        return 0;
    for (; *s; s++)
        if (!unreserved((unsigned char)*s))
            return 0;
    return 1;
}

static kz_status check(const struct kz_sigv4_req *r, struct kz_err *err)
{
    if (!r->method || !r->method[0])
        return kz_err_set(err, KZ_EINVAL, "sigv4: method is required");
    for (const char *c = r->method; *c; c++)
        if (*c < 'A' || *c > 'Z')
            return kz_err_set(err, KZ_EINVAL, "sigv4: method '%.16s' is not an upper-case token", r->method);
    if (!valid_amz_date(r->amz_date))
        return kz_err_set(err, KZ_EINVAL, "sigv4: amz_date must look like 20150830T123600Z");
    if (!valid_scope_part(r->region))
        return kz_err_set(err, KZ_EINVAL, "sigv4: region must be 1 to 128 of A-Z a-z 0-9 - . _ ~");
    if (!valid_scope_part(r->service))
        return kz_err_set(err, KZ_EINVAL, "sigv4: service must be 1 to 128 of A-Z a-z 0-9 - . _ ~");
    if (!valid_scope_part(r->access_key_id))
        return kz_err_set(err, KZ_EINVAL, "sigv4: access_key_id must be 1 to 128 of A-Z a-z 0-9 - . _ ~");
    if (!r->secret_access_key || !r->secret_access_key[0])
        return kz_err_set(err, KZ_EINVAL, "sigv4: secret_access_key is required");
    if (r->session_token && strpbrk(r->session_token, "\r\n"))
        return kz_err_set(err, KZ_EINVAL, "sigv4: session_token has a line break");
    if (r->payload_len && !r->payload)
        return kz_err_set(err, KZ_EINVAL, "sigv4: payload is NULL with payload_len %zu", r->payload_len);
    if (r->n_headers && !r->headers)
        return kz_err_set(err, KZ_EINVAL, "sigv4: headers is NULL with n_headers %zu", r->n_headers);
    return KZ_OK;
}

/* Canonical request into *creq and, when wanted, the signed header list. */
static kz_status build(const struct kz_sigv4_req *r, char **creq, char **signed_headers, struct kz_err *err)
{
    *creq = NULL;
    if (signed_headers)
        *signed_headers = NULL;
    kz_status rc = check(r, err);
    if (rc)
        return rc;
    struct sb b = {0}, sig = {0};
    sb_str(&b, r->method);
    sb_chr(&b, '\n');
    if ((rc = canonical_uri(&b, r->path, r->service, err)))
        goto fail;
    sb_chr(&b, '\n');
    if ((rc = canonical_query(&b, r->query, err)))
        goto fail;
    sb_chr(&b, '\n');
    if ((rc = canonical_headers(&b, &sig, r, err)))
        goto fail;
    sb_chr(&b, '\n');
    sb_add(&b, sig.p ? sig.p : "", sig.len);
    sb_chr(&b, '\n');
    uint8_t d[KZ_SHA256_SIZE];
    char hex[KZ_SHA256_HEX_SIZE];
    kz_sha256(r->payload, r->payload_len, d);
    kz_sha256_hex(d, hex);
    sb_str(&b, hex);
    if ((rc = sb_take(&b, creq, err)))
        goto fail;
    if (signed_headers && (rc = sb_take(&sig, signed_headers, err))) {
        KZ_FREE(*creq);
        goto fail;
    }
    kz_free(sig.p);
    return KZ_OK;
fail:
    kz_free(b.p);
    kz_free(sig.p);
    return rc;
}

kz_status kz_sigv4_canonical_request(const struct kz_sigv4_req *r, char **out, struct kz_err *err)
{
    return build(r, out, NULL, err);
}

/* "20150830/us-east-1/service/aws4_request" into buf. */
static void scope(const struct kz_sigv4_req *r, char *buf, size_t size)
{
    snprintf(buf, size, "%.8s/%s/%s/aws4_request", r->amz_date, r->region, r->service);
}

static kz_status string_to_sign(const struct kz_sigv4_req *r, char **out, char **signed_headers, struct kz_err *err)
{
    char *creq;
    *out = NULL;
    kz_status rc = build(r, &creq, signed_headers, err);
    if (rc)
        return rc;
    uint8_t d[KZ_SHA256_SIZE];
    char hex[KZ_SHA256_HEX_SIZE];
    kz_sha256(creq, strlen(creq), d);
    kz_sha256_hex(d, hex);
    kz_free(creq);
    struct sb b = {0};
    sb_str(&b, ALGORITHM "\n");
    sb_str(&b, r->amz_date);
    sb_chr(&b, '\n');
    char sc[320];
    scope(r, sc, sizeof sc);
    sb_str(&b, sc);
    sb_chr(&b, '\n');
    sb_str(&b, hex);
    rc = sb_take(&b, out, err);
    if (rc && signed_headers)
        KZ_FREE(*signed_headers);
    return rc;
}

kz_status kz_sigv4_string_to_sign(const struct kz_sigv4_req *r, char **out, struct kz_err *err)
{
    return string_to_sign(r, out, NULL, err);
}

kz_status kz_sigv4_sign(const struct kz_sigv4_req *r, char *auth, size_t auth_size, struct kz_err *err)
{
    if (!auth || auth_size == 0)
        return kz_err_set(err, KZ_EINVAL, "sigv4: no room for the Authorization value");
    auth[0] = '\0';
    char *sts, *signed_headers;
    kz_status rc = string_to_sign(r, &sts, &signed_headers, err);
    if (rc)
        return rc;

    /* kSecret = "AWS4" + secret; kDate = HMAC(kSecret, yyyymmdd); kRegion;
     * kService; kSigning = HMAC(kService, "aws4_request"). */
    size_t sl = strlen(r->secret_access_key);
    uint8_t *k0 = kz_malloc(sl + 4);
    if (!k0) {
        kz_free(sts);
        kz_free(signed_headers);
        return kz_err_set(err, KZ_ENOMEM, "sigv4: out of memory");
    }
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, r->secret_access_key, sl);
    uint8_t k[KZ_HMAC_SHA256_SIZE], sig[KZ_HMAC_SHA256_SIZE];
    kz_hmac_sha256(k0, sl + 4, r->amz_date, 8, k);
    explicit_bzero(k0, sl + 4);
    kz_free(k0);
    kz_hmac_sha256(k, sizeof k, r->region, strlen(r->region), k);
    kz_hmac_sha256(k, sizeof k, r->service, strlen(r->service), k);
    kz_hmac_sha256(k, sizeof k, "aws4_request", 12, k);
    kz_hmac_sha256(k, sizeof k, sts, strlen(sts), sig);
    explicit_bzero(k, sizeof k);
    kz_free(sts);

    char hex[KZ_SHA256_HEX_SIZE], sc[320];
    kz_sha256_hex(sig, hex);
    scope(r, sc, sizeof sc);
    int n = snprintf(auth, auth_size, ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s", r->access_key_id,
                     sc, signed_headers, hex);
    kz_free(signed_headers);
    if (n < 0 || (size_t)n >= auth_size) {
        auth[0] = '\0';
        return kz_err_set(err, KZ_ELIMIT, "sigv4: the Authorization value needs %d bytes, have %zu", n + 1,
                          auth_size);
    }
    return KZ_OK;
}

void kz_sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        memcpy(out, "19700101T000000Z", 17);
}
