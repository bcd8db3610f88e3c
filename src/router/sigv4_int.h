/* SPDX-License-Identifier: MIT
 * The link between the two halves of the SigV4 signer: sigv4_canon.c builds
 * the canonical request, sigv4.c hashes and signs it. Not part of the
 * module's interface.
 */
#ifndef KZ_SIGV4_INT_H
#define KZ_SIGV4_INT_H

#include "core/status.h"
#include "router/sigv4.h"

/* Checks r and builds its canonical request into *creq and, when
 * signed_headers is not NULL, the signed header list ("host;x-amz-date")
 * into *signed_headers. Both are the caller's (kz_free); on failure both
 * are NULL. */
kz_status kz_sigv4__canonical(const struct kz_sigv4_req *r, char **creq, char **signed_headers, struct kz_err *err);

#endif
