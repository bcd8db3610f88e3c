/* SPDX-License-Identifier: MIT
 * AWS Signature Version 4, following the steps of the AWS "Create a signed
 * AWS API request" guide: canonical request, string to sign, signing key
 * (HMAC chain over date, region, service, "aws4_request"), signature. The
 * rules for each canonical part, and why, are in sigv4.h.
 */
#include "router/sigv4.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/hmac.h"
#include "core/sha256.h"
#include "router/sigv4_int.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

kz_status kz_sigv4_canonical_request(const struct kz_sigv4_req *r, char **out, struct kz_err *err)
{
    return kz_sigv4__canonical(r, out, NULL, err);
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
    kz_status rc = kz_sigv4__canonical(r, &creq, signed_headers, err);
    if (rc)
        return rc;
    uint8_t d[KZ_SHA256_SIZE];
    char hex[KZ_SHA256_HEX_SIZE];
    kz_sha256(creq, strlen(creq), d);
    kz_sha256_hex(d, hex);
    kz_free(creq);
    /* The scope parts are bounded (128 bytes each, checked), so this fits. */
    char sc[320], sts[sizeof sc + 128];
    scope(r, sc, sizeof sc);
    snprintf(sts, sizeof sts, ALGORITHM "\n%s\n%s\n%s", r->amz_date, sc, hex);
    if (!(*out = kz_strdup(sts))) {
        if (signed_headers)
            KZ_FREE(*signed_headers);
        return kz_err_set(err, KZ_ENOMEM, "sigv4: out of memory");
    }
    return KZ_OK;
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
