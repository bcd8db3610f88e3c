/* SPDX-License-Identifier: MIT
 * HMAC-SHA256 against the seven test cases of RFC 4231 section 4 (case 5 is
 * truncated to 128 bits there, so only that prefix is compared), plus
 * streaming at every split point and keys around the 64-byte block size.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/hmac.h"
#include "t.h"

/* A byte string: `hex` repeated `repeat` times (or `text` when hex is NULL). */
struct bytes {
    const char *hex;
    size_t repeat;
    const char *text;
};

struct vector {
    struct bytes key, data;
    const char *mac; /* hex; shorter than 64 digits means truncated */
};

/* RFC 4231, section 4.2 to 4.8. */
static const struct vector vectors[] = {
    {{"0b", 20, NULL}, {NULL, 0, "Hi There"},
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {{NULL, 0, "Jefe"}, {NULL, 0, "what do ya want for nothing?"},
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {{"aa", 20, NULL}, {"dd", 50, NULL}, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
    {{"0102030405060708090a0b0c0d0e0f10111213141516171819", 1, NULL}, {"cd", 50, NULL},
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    {{"0c", 20, NULL}, {NULL, 0, "Test With Truncation"}, "a3b6167473100ee06e0c796c2955552b"},
    {{"aa", 131, NULL}, {NULL, 0, "Test Using Larger Than Block-Size Key - Hash Key First"},
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {{"aa", 131, NULL},
     {NULL, 0,
      "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be "
      "hashed before being used by the HMAC algorithm."},
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
};

static int hexval(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

/* Expands a byte string into a new buffer (kz_free). */
static uint8_t *expand(const struct bytes *b, size_t *len)
{
    if (!b->hex) {
        *len = strlen(b->text);
        uint8_t *p = kz_malloc(*len + 1);
        memcpy(p, b->text, *len);
        return p;
    }
    size_t unit = strlen(b->hex) / 2;
    *len = unit * b->repeat;
    uint8_t *p = kz_malloc(*len + 1);
    for (size_t r = 0; r < b->repeat; r++)
        for (size_t i = 0; i < unit; i++)
            p[r * unit + i] = (uint8_t)(hexval(b->hex[2 * i]) << 4 | hexval(b->hex[2 * i + 1]));
    return p;
}

static void to_hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void rfc4231(void)
{
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        size_t kl, dl;
        uint8_t *k = expand(&vectors[i].key, &kl), *d = expand(&vectors[i].data, &dl);
        uint8_t mac[KZ_HMAC_SHA256_SIZE];
        char hex[2 * KZ_HMAC_SHA256_SIZE + 1];
        kz_hmac_sha256(k, kl, d, dl, mac);
        to_hex(mac, sizeof mac, hex);
        size_t want = strlen(vectors[i].mac);
        T_OK(strncmp(hex, vectors[i].mac, want) == 0, "RFC 4231 case %zu: %s", i + 1, hex);
        kz_free(k);
        kz_free(d);
    }
}

/* Feeding the message in two pieces at every split gives the one-shot MAC. */
static void streaming(void)
{
    const struct vector *v = &vectors[6];
    size_t kl, dl;
    uint8_t *k = expand(&v->key, &kl), *d = expand(&v->data, &dl);
    uint8_t whole[KZ_HMAC_SHA256_SIZE];
    kz_hmac_sha256(k, kl, d, dl, whole);
    int bad = 0;
    for (size_t cut = 0; cut <= dl; cut++) {
        struct kz_hmac_sha256 c;
        uint8_t part[KZ_HMAC_SHA256_SIZE];
        kz_hmac_sha256_init(&c, k, kl);
        kz_hmac_sha256_update(&c, d, cut);
        kz_hmac_sha256_update(&c, d + cut, dl - cut);
        kz_hmac_sha256_final(&c, part);
        bad += memcmp(part, whole, sizeof whole) != 0;
    }
    T_EQ_INT(bad, 0);
    kz_free(k);
    kz_free(d);
}

/* Keys of 63, 64 and 65 bytes: the first two are padded, the third hashed,
 * so 64 and 65 must differ and a 65-byte key must equal its own digest
 * used as a key (RFC 2104: K is replaced by H(K)). */
static void key_lengths(void)
{
    uint8_t key[65], mac64[32], mac65[32], via_digest[32], kd[32];
    memset(key, 'k', sizeof key);
    kz_hmac_sha256(key, 64, "m", 1, mac64);
    kz_hmac_sha256(key, 65, "m", 1, mac65);
    T_OK(memcmp(mac64, mac65, 32) != 0, "64- and 65-byte keys differ");
    kz_sha256(key, 65, kd);
    kz_hmac_sha256(kd, sizeof kd, "m", 1, via_digest);
    T_OK(memcmp(mac65, via_digest, 32) == 0, "a long key acts as its digest");
    /* A key shorter than the block is zero-padded: adding zero bytes up to
     * 64 does not change the MAC. */
    uint8_t padded[64] = {0}, m1[32], m2[32];
    memcpy(padded, "Jefe", 4);
    kz_hmac_sha256("Jefe", 4, "x", 1, m1);
    kz_hmac_sha256(padded, sizeof padded, "x", 1, m2);
    T_OK(memcmp(m1, m2, 32) == 0, "short keys are zero-padded");
    /* The empty key and the empty message are allowed. */
    uint8_t e[32];
    char hex[65];
    kz_hmac_sha256(NULL, 0, NULL, 0, e);
    to_hex(e, 32, hex);
    /* HMAC-SHA256("", "") as computed by any conforming implementation. */
    T_EQ_STR(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

int main(void)
{
    t_subtest("rfc4231", rfc4231);
    t_subtest("streaming", streaming);
    t_subtest("key_lengths", key_lengths);
    return t_done();
}
