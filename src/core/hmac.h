/* SPDX-License-Identifier: MIT
 * HMAC-SHA256 (RFC 2104 over FIPS 180-4 SHA-256), for request signing
 * (AWS Signature Version 4 chains five of them to derive its key).
 *
 * Invariant: like struct kz_sha256, a context is plain data: no allocation,
 * copyable, abandoned freely. It holds key-derived state, so callers that
 * care wipe it after use (the one-shot function does).
 */
#ifndef KZ_HMAC_H
#define KZ_HMAC_H

#include <stddef.h>
#include <stdint.h>

#include "core/sha256.h"

#define KZ_HMAC_SHA256_SIZE KZ_SHA256_SIZE

struct kz_hmac_sha256 {
    struct kz_sha256 inner; /* H(K ^ ipad || message...) in progress */
    struct kz_sha256 outer; /* H(K ^ opad || ...), waiting for the inner digest */
};

/* Starts a MAC under `key` (any length; keys over 64 bytes are hashed first,
 * as RFC 2104 says). key may be NULL when key_len is 0. */
void kz_hmac_sha256_init(struct kz_hmac_sha256 *c, const void *key, size_t key_len);
void kz_hmac_sha256_update(struct kz_hmac_sha256 *c, const void *data, size_t len);
/* Writes the 32-byte MAC; the context is finished (init again to reuse). */
void kz_hmac_sha256_final(struct kz_hmac_sha256 *c, uint8_t out[KZ_HMAC_SHA256_SIZE]);

/* One-shot MAC of a buffer. */
void kz_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    uint8_t out[KZ_HMAC_SHA256_SIZE]);

#endif
