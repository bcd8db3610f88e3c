/* SPDX-License-Identifier: MIT
 * SHA-256 (FIPS 180-4): streaming digest for verifying downloaded models
 * against the checksum their source publishes.
 *
 * Invariant: a context is plain data (no allocation, no teardown), so it can
 * be copied, reset with kz_sha256_init at any time, and abandoned freely.
 * Inputs up to 2^61 - 1 bytes are hashed correctly (the message length is
 * kept as a 64-bit bit count, as the standard requires).
 */
#ifndef KZ_SHA256_H
#define KZ_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define KZ_SHA256_SIZE 32                       /* digest bytes */
#define KZ_SHA256_HEX_SIZE (2 * KZ_SHA256_SIZE + 1) /* hex digits + NUL */

struct kz_sha256 {
    uint32_t h[8];          /* running hash state */
    uint64_t n_bytes;       /* message bytes consumed so far */
    uint8_t block[64];      /* pending input, block_len bytes used */
    size_t block_len;
};

/* Starts (or restarts) a digest. Never fails. */
void kz_sha256_init(struct kz_sha256 *c);

/* Feeds `len` bytes (data may be NULL when len is 0). Never fails. */
void kz_sha256_update(struct kz_sha256 *c, const void *data, size_t len);

/* Writes the 32-byte digest to `out`. The context is finished afterwards:
 * call kz_sha256_init before using it again. */
void kz_sha256_final(struct kz_sha256 *c, uint8_t out[KZ_SHA256_SIZE]);

/* One-shot digest of a buffer. */
void kz_sha256(const void *data, size_t len, uint8_t out[KZ_SHA256_SIZE]);

/* Lower-case hex of a digest into `hex` (65 bytes, NUL-terminated). */
void kz_sha256_hex(const uint8_t digest[KZ_SHA256_SIZE], char hex[KZ_SHA256_HEX_SIZE]);

/* Copies a 64-digit hex digest (either case, surrounding quotes and spaces
 * not allowed) to `hex` in lower case. Returns 1 when `s` (of length len) is
 * exactly 64 hex digits, 0 otherwise (hex is then left unspecified). */
int kz_sha256_hex_normalize(const char *s, size_t len, char hex[KZ_SHA256_HEX_SIZE]);

#endif
