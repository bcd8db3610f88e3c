/* SPDX-License-Identifier: MIT
 * AWS Signature Version 4 (header form, HMAC-SHA256): the Authorization
 * value for a request to an AWS service such as Bedrock. Our own code over
 * core/sha256 and core/hmac, so that the three published intermediate
 * strings (canonical request, string to sign, Authorization) can be checked
 * against the AWS SigV4 test suite.
 *
 * What the caller sends. The request on the wire must carry exactly the
 * headers that were signed, with the same values:
 *   - every header in r->headers (host included, it is required);
 *   - X-Amz-Date: r->amz_date (the signer adds it to the signed set when
 *     r->headers lacks it, so the caller must add it to the request too);
 *   - X-Amz-Security-Token: r->session_token when a session token is given
 *     (temporary credentials): it is signed, so add it to the request too;
 *   - Authorization: the value kz_sigv4_sign writes.
 * Headers the caller adds after signing (user-agent, content-length, ...)
 * are simply unsigned, which AWS accepts.
 *
 * Canonical URI. r->path is the path as it goes on the wire, already
 * percent-encoded once. For every service but s3, AWS normalizes it (RFC 3986
 * dot segments, plus empty segments dropped, so "//a//" is "/a/") and then
 * URI-encodes it again, byte by byte, keeping only A-Z a-z 0-9 - . _ ~ and
 * '/'. So a Bedrock model id "anthropic.claude-3-haiku-20240307-v1:0" is sent
 * as ".../anthropic.claude-3-haiku-20240307-v1%3A0/converse" and appears in
 * the canonical request as "...-v1%253A0/converse" (the '%' of %3A encoded
 * to %25). The test suite's requests show raw paths ("/example space/",
 * raw UTF-8); this one rule encodes those exactly once, as its canonical
 * requests expect. For s3 the path is used as given (S3 encodes once and
 * does not normalize).
 *
 * Canonical query. r->query is the wire query without '?'. Each name and
 * value is percent-decoded and re-encoded with the same unreserved set
 * (uppercase hex, space as %20), then the pairs are sorted by name, then
 * value. A '+' is taken literally (it becomes %2B): send spaces as %20.
 *
 * Canonical headers: names lowercased; values trimmed of spaces and tabs
 * with each inner run collapsed to one space; repeated names joined with ','
 * in the order given; sorted by name. Multi-line (obs-fold) values are
 * refused: CR, LF and NUL in a value are errors.
 *
 * Ownership: nothing in r is kept or freed. The string results of
 * kz_sigv4_canonical_request and kz_sigv4_string_to_sign are the caller's
 * (kz_free). No function here logs anything; the secret only ever enters
 * the HMAC key and its derived copies are wiped.
 */
#ifndef KZ_SIGV4_H
#define KZ_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "core/status.h"

struct kz_sigv4_header {
    const char *name;
    const char *value;
};

struct kz_sigv4_req {
    const char *method;            /* "POST" */
    const char *path;              /* as sent on the wire, e.g. "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse" */
    const char *query;             /* without '?', may be NULL or "" */
    const struct kz_sigv4_header *headers; /* must include host; x-amz-date is added by the signer if absent */
    size_t n_headers;
    const void *payload;           /* the exact body bytes sent (NULL when payload_len is 0) */
    size_t payload_len;
    const char *region, *service;  /* "us-east-1", "bedrock" */
    const char *access_key_id, *secret_access_key, *session_token; /* token may be NULL */
    const char *amz_date;          /* "20150830T123600Z" (tests fix it; callers pass the current UTC time) */
};

/* Room for an Authorization value with a few signed headers. */
#define KZ_SIGV4_AUTH_SIZE 512

/* Writes the Authorization header value into auth (>= 512 bytes), e.g.
 * "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request,
 * SignedHeaders=host;x-amz-date, Signature=<64 hex>". KZ_EINVAL names the
 * field at fault; KZ_ELIMIT when the value does not fit in auth_size. */
kz_status kz_sigv4_sign(const struct kz_sigv4_req *r, char *auth, size_t auth_size, struct kz_err *err);

/* The intermediate strings, for tests and debugging: kz_free the results.
 * On failure *out is NULL. */
kz_status kz_sigv4_canonical_request(const struct kz_sigv4_req *r, char **out, struct kz_err *err);
kz_status kz_sigv4_string_to_sign(const struct kz_sigv4_req *r, char **out, struct kz_err *err);

/* Formats a UTC time as an amz_date, "YYYYMMDDTHHMMSSZ" (17 bytes with NUL). */
void kz_sigv4_amz_date(time_t t, char out[17]);

#endif
