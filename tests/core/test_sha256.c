/* SPDX-License-Identifier: MIT
 * SHA-256 against the FIPS 180-4 example messages (and the long-message
 * vector of the NIST examples), padding boundaries, and streaming at every
 * split point. To add a case, append {message, repeat, digest} to `vectors`.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/sha256.h"
#include "t.h"

struct vector {
    const char *msg;  /* repeated `repeat` times */
    size_t repeat;
    const char *hex;
};

static const struct vector vectors[] = {
    {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    /* the 448-bit message: padding needs a second block */
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    /* the 896-bit message */
    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
     1, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    /* one million 'a' */
    {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    /* lengths around the 56- and 64-byte padding boundaries */
    {"a", 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
    {"a", 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
    {"a", 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
    {"a", 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
    {"a", 65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
    {"a", 119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
    {"a", 120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
};

/* Expands a vector into one buffer (kz_free). */
static char *expand(const struct vector *v, size_t *len)
{
    size_t ml = strlen(v->msg);
    *len = ml * v->repeat;
    char *b = kz_malloc(*len + 1);
    for (size_t i = 0; i < v->repeat; i++)
        memcpy(b + i * ml, v->msg, ml);
    return b;
}

static void one_shot(void)
{
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        size_t len;
        char *m = expand(&vectors[i], &len);
        uint8_t d[KZ_SHA256_SIZE];
        char hex[KZ_SHA256_HEX_SIZE];
        kz_sha256(m, len, d);
        kz_sha256_hex(d, hex);
        T_EQ_STR(hex, vectors[i].hex);
        kz_free(m);
    }
}

/* The million-'a' vector fed in 1-byte and odd-sized pieces, as a download
 * delivers it. */
static void streaming(void)
{
    struct kz_sha256 c;
    uint8_t d[KZ_SHA256_SIZE];
    char hex[KZ_SHA256_HEX_SIZE];
    kz_sha256_init(&c);
    for (int i = 0; i < 1000000; i++)
        kz_sha256_update(&c, "a", 1);
    kz_sha256_final(&c, d);
    kz_sha256_hex(d, hex);
    T_EQ_STR(hex, vectors[4].hex);

    size_t len;
    char *m = expand(&vectors[4], &len);
    kz_sha256_init(&c);
    for (size_t off = 0, step = 1; off < len; step = step * 7 % 1000 + 1) {
        size_t n = step < len - off ? step : len - off;
        kz_sha256_update(&c, m + off, n);
        off += n;
    }
    kz_sha256_final(&c, d);
    kz_sha256_hex(d, hex);
    T_EQ_STR(hex, vectors[4].hex);
    kz_free(m);
}

/* Every split point of the 896-bit message gives the same digest, and a
 * context can be reused after kz_sha256_init. */
static void splits(void)
{
    const struct vector *v = &vectors[3];
    size_t len = strlen(v->msg);
    int bad = 0;
    struct kz_sha256 c;
    for (size_t cut = 0; cut <= len; cut++) {
        uint8_t d[KZ_SHA256_SIZE];
        char hex[KZ_SHA256_HEX_SIZE];
        kz_sha256_init(&c);
        kz_sha256_update(&c, v->msg, cut);
        kz_sha256_update(&c, NULL, 0);
        kz_sha256_update(&c, v->msg + cut, len - cut);
        kz_sha256_final(&c, d);
        kz_sha256_hex(d, hex);
        bad += strcmp(hex, v->hex) != 0;
    }
    T_EQ_INT(bad, 0);
}

static void hex_normalize(void)
{
    char hex[KZ_SHA256_HEX_SIZE];
    const char *up = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
    T_OK(kz_sha256_hex_normalize(up, strlen(up), hex), "upper case accepted");
    T_EQ_STR(hex, vectors[1].hex);
    T_OK(!kz_sha256_hex_normalize(up, 63, hex), "63 digits rejected");
    T_OK(!kz_sha256_hex_normalize("g0", 2, hex), "short rejected");
    char bad[65];
    memcpy(bad, vectors[1].hex, 65);
    bad[10] = 'x';
    T_OK(!kz_sha256_hex_normalize(bad, 64, hex), "non-hex digit rejected");
}

int main(void)
{
    t_subtest("fips 180-4 vectors", one_shot);
    t_subtest("streaming", streaming);
    t_subtest("split points", splits);
    t_subtest("hex", hex_normalize);
    return t_done();
}
