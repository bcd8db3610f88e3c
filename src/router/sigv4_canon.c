/* SPDX-License-Identifier: MIT
 * SigV4 canonical request: method, canonical URI, canonical query,
 * canonical headers, signed headers, payload hash, one per line. The rules
 * for each part, and why, are in sigv4.h; this file only builds the string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/fmt.h"
#include "core/sha256.h"
#include "router/sigv4.h"
#include "router/sigv4_int.h"

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
        int hi = i + 2 < n ? kz_hex_value(s[i + 1]) : -1;
        int lo = i + 2 < n ? kz_hex_value(s[i + 2]) : -1;
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

/* Lowercased copies of the caller's headers, each checked, into h. */
static kz_status collect(const struct kz_sigv4_req *r, struct hdr *h, size_t *n, struct kz_err *err)
{
    for (size_t i = 0; i < r->n_headers; i++) {
        const char *nm = r->headers[i].name, *v = r->headers[i].value;
        if (!nm || !nm[0] || !v)
            return kz_err_set(err, KZ_EINVAL, "sigv4: headers[%zu]: name and value are required", i);
        for (const char *c = nm; *c; c++)
            if (!tchar((unsigned char)*c))
                return kz_err_set(err, KZ_EINVAL, "sigv4: header '%.64s': bad character in the name", nm);
        if (strpbrk(v, "\r\n"))
            return kz_err_set(err, KZ_EINVAL, "sigv4: header '%.64s': line breaks are not allowed in a value", nm);
        if (!(h[*n].name = kz_strdup(nm)))
            return kz_err_set(err, KZ_ENOMEM, "sigv4: out of memory");
        for (char *c = h[*n].name; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        h[*n].value = v;
        h[*n].order = i;
        (*n)++;
    }
    return KZ_OK;
}

static size_t count_named(const struct hdr *h, size_t n, const char *lname, const char **value)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(h[i].name, lname) == 0) {
            k++;
            *value = h[i].value;
        }
    return k;
}

/* v equals want once leading and trailing spaces and tabs are ignored. */
static int same_trimmed(const char *v, const char *want)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n == strlen(want) && memcmp(v, want, n) == 0;
}

/* A date or token header the caller gives must be given once and carry the
 * value being signed for (want; NULL: any value), or AWS would check the
 * signature against another string than the one signed here. Adds it,
 * signed, when the caller did not give it and want is set. */
static kz_status date_or_token(struct hdr *h, size_t *n, size_t order, const char *lname, const char *want,
                               struct kz_err *err)
{
    const char *given = NULL;
    if (want && !want[0])
        want = NULL; /* an empty session token means none */
    size_t k = count_named(h, *n, lname, &given);
    if (k > 1)
        return kz_err_set(err, KZ_EINVAL, "sigv4: header '%s' is repeated", lname);
    if (k == 1 && want && !same_trimmed(given, want))
        return kz_err_set(err, KZ_EINVAL, "sigv4: header '%s' differs from the value being signed", lname);
    if (k == 1 || !want)
        return KZ_OK;
    if (!(h[*n].name = kz_strdup(lname)))
        return kz_err_set(err, KZ_ENOMEM, "sigv4: out of memory");
    h[*n].value = want;
    h[*n].order = order;
    (*n)++;
    return KZ_OK;
}

/* The canonical header block ("name:value\n" each) into b and the signed
 * header list ("a;b;c") into sig. */
static kz_status canonical_headers(struct sb *b, struct sb *sig, const struct kz_sigv4_req *r, struct kz_err *err)
{
    size_t n = 0;
    const char *unused;
    struct hdr *h = kz_calloc(r->n_headers + 2, sizeof *h);
    if (!h)
        return kz_err_set(err, KZ_ENOMEM, "sigv4: out of memory");
    kz_status rc = collect(r, h, &n, err);
    if (rc == KZ_OK && count_named(h, n, "host", &unused) == 0)
        rc = kz_err_set(err, KZ_EINVAL, "sigv4: headers: 'host' is required");
    /* Added ones sort after the caller's, which only matters for order ties. */
    if (rc == KZ_OK)
        rc = date_or_token(h, &n, r->n_headers, "x-amz-date", r->amz_date, err);
    if (rc == KZ_OK)
        rc = date_or_token(h, &n, r->n_headers + 1, "x-amz-security-token", r->session_token, err);
    if (rc == KZ_OK) {
        qsort(h, n, sizeof *h, cmp_hdr);
        for (size_t i = 0; i < n; i++) {
            if (i == 0 || strcmp(h[i].name, h[i - 1].name) != 0) {
                if (i) {
                    sb_chr(b, '\n');
                    sb_chr(sig, ';');
                }
                sb_str(b, h[i].name);
                sb_chr(b, ':');
                sb_str(sig, h[i].name);
            } else {
                sb_chr(b, ','); /* a repeated name: values joined in the order given */
            }
            add_trimmed(b, h[i].value);
        }
        sb_chr(b, '\n');
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

kz_status kz_sigv4__canonical(const struct kz_sigv4_req *r, char **creq, char **signed_headers, struct kz_err *err)
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
