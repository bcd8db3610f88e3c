/* SPDX-License-Identifier: MIT
 * HMAC (RFC 2104, section 2) with SHA-256: B = 64-byte blocks, L = 32.
 *   HMAC(K, m) = H((K0 ^ opad) || H((K0 ^ ipad) || m))
 * where K0 is the key, hashed first if longer than B, then zero-padded to B.
 */
#include "core/hmac.h"

#include <string.h>

#define BLOCK 64

/* Key-derived bytes are cleared with explicit_bzero (glibc; the build
 * defines _GNU_SOURCE) because a plain memset of a dying buffer may be
 * optimized away. */

void kz_hmac_sha256_init(struct kz_hmac_sha256 *c, const void *key, size_t key_len)
{
    uint8_t k0[BLOCK] = {0};
    if (key_len > BLOCK)
        kz_sha256(key, key_len, k0); /* RFC 2104: long keys are replaced by H(K) */
    else if (key_len)
        memcpy(k0, key, key_len);

    uint8_t pad[BLOCK];
    for (int i = 0; i < BLOCK; i++)
        pad[i] = (uint8_t)(k0[i] ^ 0x36u);
    kz_sha256_init(&c->inner);
    kz_sha256_update(&c->inner, pad, BLOCK);
    for (int i = 0; i < BLOCK; i++)
        pad[i] = (uint8_t)(k0[i] ^ 0x5cu);
    kz_sha256_init(&c->outer);
    kz_sha256_update(&c->outer, pad, BLOCK);
    explicit_bzero(k0, sizeof k0);
    explicit_bzero(pad, sizeof pad);
}

void kz_hmac_sha256_update(struct kz_hmac_sha256 *c, const void *data, size_t len)
{
    kz_sha256_update(&c->inner, data, len);
}

void kz_hmac_sha256_final(struct kz_hmac_sha256 *c, uint8_t out[KZ_HMAC_SHA256_SIZE])
{
    uint8_t ih[KZ_SHA256_SIZE];
    kz_sha256_final(&c->inner, ih);
    kz_sha256_update(&c->outer, ih, sizeof ih);
    kz_sha256_final(&c->outer, out);
    explicit_bzero(ih, sizeof ih);
}

void kz_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    uint8_t out[KZ_HMAC_SHA256_SIZE])
{
    struct kz_hmac_sha256 c;
    kz_hmac_sha256_init(&c, key, key_len);
    kz_hmac_sha256_update(&c, data, len);
    kz_hmac_sha256_final(&c, out);
    explicit_bzero(&c, sizeof c);
}
