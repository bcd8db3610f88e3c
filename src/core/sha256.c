/* SPDX-License-Identifier: MIT
 * SHA-256 as specified in FIPS 180-4, sections 4.1.2 (functions), 4.2.2
 * (constants), 5.1.1 (padding), 5.3.3 (initial value) and 6.2 (computation).
 * Written for clarity: downloads are bounded by disk and network speed, so
 * one compression per 64-byte block in portable C is far from the bottleneck.
 */
#include "core/sha256.h"

#include <string.h>

/* First 32 bits of the fractional parts of the cube roots of the first 64
 * primes (FIPS 180-4, 4.2.2). */
static const uint32_t K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

static uint32_t rotr(uint32_t x, unsigned n) { return (x >> n) | (x << (32u - n)); }

/* One block: message schedule W[0..63], then 64 rounds (FIPS 180-4, 6.2.2). */
static void compress(uint32_t h[8], const uint8_t p[64])
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 | (uint32_t)p[4 * t + 2] << 8 |
               (uint32_t)p[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + S1 + ch + K[t] + w[t];
        uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + maj;
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

void kz_sha256_init(struct kz_sha256 *c)
{
    /* First 32 bits of the fractional parts of the square roots of the
     * first 8 primes (FIPS 180-4, 5.3.3). */
    static const uint32_t h0[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                   0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    memcpy(c->h, h0, sizeof h0);
    c->n_bytes = 0;
    c->block_len = 0;
}

void kz_sha256_update(struct kz_sha256 *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (len == 0)
        return; /* data may be NULL, and memcpy(dst, NULL, 0) is undefined */
    c->n_bytes += len;
    if (c->block_len) {
        size_t take = 64 - c->block_len < len ? 64 - c->block_len : len;
        memcpy(c->block + c->block_len, p, take);
        c->block_len += take;
        p += take;
        len -= take;
        if (c->block_len < 64)
            return;
        compress(c->h, c->block);
        c->block_len = 0;
    }
    /* Whole blocks straight from the caller's buffer: no copy. */
    for (; len >= 64; p += 64, len -= 64)
        compress(c->h, p);
    if (len) {
        memcpy(c->block, p, len);
        c->block_len = len;
    }
}

void kz_sha256_final(struct kz_sha256 *c, uint8_t out[KZ_SHA256_SIZE])
{
    /* Padding (5.1.1): a 1 bit, zeros up to 56 mod 64, then the message
     * length in bits as a big-endian 64-bit number. */
    uint64_t bits = c->n_bytes * 8u;
    c->block[c->block_len++] = 0x80;
    if (c->block_len > 56) {
        memset(c->block + c->block_len, 0, 64 - c->block_len);
        compress(c->h, c->block);
        c->block_len = 0;
    }
    memset(c->block + c->block_len, 0, 56 - c->block_len);
    for (int i = 0; i < 8; i++)
        c->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    compress(c->h, c->block);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
    c->block_len = 0;
}

void kz_sha256(const void *data, size_t len, uint8_t out[KZ_SHA256_SIZE])
{
    struct kz_sha256 c;
    kz_sha256_init(&c);
    kz_sha256_update(&c, data, len);
    kz_sha256_final(&c, out);
}

void kz_sha256_hex(const uint8_t digest[KZ_SHA256_SIZE], char hex[KZ_SHA256_HEX_SIZE])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < KZ_SHA256_SIZE; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[2 * KZ_SHA256_SIZE] = '\0';
}

int kz_sha256_hex_normalize(const char *s, size_t len, char hex[KZ_SHA256_HEX_SIZE])
{
    if (len != 2 * KZ_SHA256_SIZE)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch >= '0' && ch <= '9')
            hex[i] = ch;
        else if (ch >= 'a' && ch <= 'f')
            hex[i] = ch;
        else if (ch >= 'A' && ch <= 'F')
            hex[i] = (char)(ch - 'A' + 'a');
        else
            return 0;
    }
    hex[len] = '\0';
    return 1;
}
