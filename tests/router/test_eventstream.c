/* SPDX-License-Identifier: MIT
 * AWS event-stream framing: the published encoded/decoded test vectors,
 * round trips, every truncation, every single-bit flip, length and limit
 * edge cases, header-block errors, and long concatenated streams fed in
 * pieces.
 *
 * The v_* and bad_* arrays are the files of aws-sdk-go's
 * private/protocol/eventstream/testdata/encoded/{positive,negative}/
 * (github.com/aws/aws-sdk-go, Apache-2.0, commit 8d203cc), byte for byte;
 * the expected values come from the matching decoded/ files (for example
 * all_headers: total 204, headers 175, prelude_crc 263087306, the ten
 * header values checked below). Two fields of decoded/positive/all_headers
 * disagree with its own encoded frame, whose checksums both hold: the uuid
 * there is 00..0f and message_crc 3758045736, while the frame carries
 * 01..10 and 0xaba5f10c; we check the frame's bytes. decoded/negative says
 * corrupted_header_len and corrupted_length fail the prelude checksum and
 * corrupted_headers and corrupted_payload the message checksum.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/crc32.h"
#include "router/eventstream.h"
#include "t.h"

static const uint8_t v_all_headers[204] = {
    0x00, 0x00, 0x00, 0xcc, 0x00, 0x00, 0x00, 0xaf, 0x0f, 0xae, 0x64, 0xca, 0x0a, 0x65, 0x76, 0x65,
    0x6e, 0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x04, 0x00, 0x00, 0xa0, 0x0c, 0x0c, 0x63, 0x6f, 0x6e,
    0x74, 0x65, 0x6e, 0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x07, 0x00, 0x10, 0x61, 0x70, 0x70, 0x6c,
    0x69, 0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x6a, 0x73, 0x6f, 0x6e, 0x0a, 0x62, 0x6f, 0x6f,
    0x6c, 0x20, 0x66, 0x61, 0x6c, 0x73, 0x65, 0x01, 0x09, 0x62, 0x6f, 0x6f, 0x6c, 0x20, 0x74, 0x72,
    0x75, 0x65, 0x00, 0x04, 0x62, 0x79, 0x74, 0x65, 0x02, 0xcf, 0x08, 0x62, 0x79, 0x74, 0x65, 0x20,
    0x62, 0x75, 0x66, 0x06, 0x00, 0x14, 0x49, 0x27, 0x6d, 0x20, 0x61, 0x20, 0x6c, 0x69, 0x74, 0x74,
    0x6c, 0x65, 0x20, 0x74, 0x65, 0x61, 0x70, 0x6f, 0x74, 0x21, 0x09, 0x74, 0x69, 0x6d, 0x65, 0x73,
    0x74, 0x61, 0x6d, 0x70, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x84, 0x5f, 0xed, 0x05, 0x69, 0x6e,
    0x74, 0x31, 0x36, 0x03, 0x00, 0x2a, 0x05, 0x69, 0x6e, 0x74, 0x36, 0x34, 0x05, 0x00, 0x00, 0x00,
    0x00, 0x02, 0x87, 0x57, 0xb2, 0x04, 0x75, 0x75, 0x69, 0x64, 0x09, 0x01, 0x02, 0x03, 0x04, 0x05,
    0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x7b, 0x27, 0x66, 0x6f, 0x6f,
    0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0xab, 0xa5, 0xf1, 0x0c,
};
static const uint8_t v_empty_message[16] = {
    0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff,
};
static const uint8_t v_int32_header[45] = {
    0x00, 0x00, 0x00, 0x2d, 0x00, 0x00, 0x00, 0x10, 0x41, 0xc4, 0x24, 0xb8, 0x0a, 0x65, 0x76, 0x65,
    0x6e, 0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x04, 0x00, 0x00, 0xa0, 0x0c, 0x7b, 0x27, 0x66, 0x6f,
    0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0x36, 0xf4, 0x80, 0xa0,
};
static const uint8_t v_payload_no_headers[29] = {
    0x00, 0x00, 0x00, 0x1d, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52, 0x8c, 0x5a, 0x7b, 0x27, 0x66, 0x6f,
    0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0xc3, 0x65, 0x39, 0x36,
};
static const uint8_t v_payload_one_str_header[61] = {
    0x00, 0x00, 0x00, 0x3d, 0x00, 0x00, 0x00, 0x20, 0x07, 0xfd, 0x83, 0x96, 0x0c, 0x63, 0x6f, 0x6e,
    0x74, 0x65, 0x6e, 0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x07, 0x00, 0x10, 0x61, 0x70, 0x70, 0x6c,
    0x69, 0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x6a, 0x73, 0x6f, 0x6e, 0x7b, 0x27, 0x66, 0x6f,
    0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0x8d, 0x9c, 0x08, 0xb1,
};
static const uint8_t bad_corrupted_header_len[61] = {
    0x00, 0x00, 0x00, 0x3d, 0x00, 0x00, 0x00, 0x21, 0x07, 0xfd, 0x83, 0x96, 0x0c, 0x63, 0x6f, 0x6e,
    0x74, 0x65, 0x6e, 0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x07, 0x00, 0x10, 0x61, 0x70, 0x70, 0x6c,
    0x69, 0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x6a, 0x73, 0x6f, 0x6e, 0x7b, 0x27, 0x66, 0x6f,
    0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0x8d, 0x9c, 0x08, 0xb1,
};
static const uint8_t bad_corrupted_headers[61] = {
    0x00, 0x00, 0x00, 0x3d, 0x00, 0x00, 0x00, 0x20, 0x07, 0xfd, 0x83, 0x96, 0x0c, 0x63, 0x6f, 0x6e,
    0x74, 0x65, 0x6e, 0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x07, 0x00, 0x10, 0x61, 0x70, 0x70, 0x6c,
    0x69, 0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x6a, 0x73, 0x6f, 0x6e, 0x7b, 0x61, 0x66, 0x6f,
    0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0x8d, 0x9c, 0x08, 0xb1,
};
static const uint8_t bad_corrupted_length[61] = {
    0x00, 0x00, 0x00, 0x3e, 0x00, 0x00, 0x00, 0x20, 0x07, 0xfd, 0x83, 0x96, 0x0c, 0x63, 0x6f, 0x6e,
    0x74, 0x65, 0x6e, 0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x07, 0x00, 0x10, 0x61, 0x70, 0x70, 0x6c,
    0x69, 0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x6a, 0x73, 0x6f, 0x6e, 0x7b, 0x27, 0x66, 0x6f,
    0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0x8d, 0x9c, 0x08, 0xb1,
};
static const uint8_t bad_corrupted_payload[29] = {
    0x00, 0x00, 0x00, 0x1d, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52, 0x8c, 0x5a, 0x5b, 0x27, 0x66, 0x6f,
    0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0xc3, 0x65, 0x39, 0x36,
};

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int hdr_is(const struct kz_evs_header *h, const char *name, int type)
{
    return h->name_len == strlen(name) && memcmp(h->name, name, h->name_len) == 0 && h->type == type;
}

static int bytes_are(const char *p, size_t n, const void *want, size_t want_n)
{
    return n == want_n && (n == 0 || memcmp(p, want, n) == 0);
}

static void published_positive(void)
{
    struct kz_evs_msg m;
    size_t used;
    struct kz_err err = {{0}};

    T_EQ_INT(kz_evs_decode(v_all_headers, sizeof v_all_headers, &m, &used, &err), KZ_OK);
    T_EQ_INT(used, 204);
    T_EQ_INT(rd32(v_all_headers + 4), 175);
    T_EQ_INT(rd32(v_all_headers + 8), 263087306u);
    T_EQ_INT(rd32(v_all_headers + 200), 0xaba5f10cu);
    T_EQ_INT(kz_crc32(v_all_headers, 200), 0xaba5f10cu);
    T_EQ_INT(m.n_headers, 10);
    if (m.n_headers == 10) {
        const struct kz_evs_header *h = m.headers;
        T_OK(hdr_is(&h[0], "event-type", KZ_EVS_INT32) && h[0].num == 40972, "event-type int32 40972");
        T_OK(hdr_is(&h[1], "content-type", KZ_EVS_STRING) && bytes_are(h[1].str, h[1].str_len, "application/json", 16),
             "content-type string");
        T_OK(hdr_is(&h[2], "bool false", KZ_EVS_FALSE) && h[2].num == 0, "bool false");
        T_OK(hdr_is(&h[3], "bool true", KZ_EVS_TRUE) && h[3].num == 1, "bool true");
        /* decoded/ shows 207: the byte 0xcf, which as a signed byte is -49 */
        T_OK(hdr_is(&h[4], "byte", KZ_EVS_BYTE) && h[4].num == -49 && (uint8_t)h[4].num == 207, "byte 0xcf");
        T_OK(hdr_is(&h[5], "byte buf", KZ_EVS_BYTES) && bytes_are(h[5].str, h[5].str_len, "I'm a little teapot!", 20),
             "byte buf");
        T_OK(hdr_is(&h[6], "timestamp", KZ_EVS_TIMESTAMP) && h[6].num == 8675309, "timestamp");
        T_OK(hdr_is(&h[7], "int16", KZ_EVS_INT16) && h[7].num == 42, "int16");
        T_OK(hdr_is(&h[8], "int64", KZ_EVS_INT64) && h[8].num == 42424242, "int64");
        static const uint8_t uuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        T_OK(hdr_is(&h[9], "uuid", KZ_EVS_UUID) && bytes_are(h[9].str, h[9].str_len, uuid, 16), "uuid");
    }
    T_OK(bytes_are((const char *)m.payload, m.payload_len, "{'foo':'bar'}", 13), "all_headers payload");
    T_OK(kz_evs_get(&m, "content-type") == &m.headers[1], "get finds the string header");
    T_OK(kz_evs_get(&m, "event-type") == NULL, "get skips a non-string header");
    T_OK(kz_evs_get(&m, "content-typ") == NULL && kz_evs_get(&m, ":content-type") == NULL, "get matches exactly");

    T_EQ_INT(kz_evs_decode(v_empty_message, sizeof v_empty_message, &m, &used, &err), KZ_OK);
    T_OK(used == 16 && m.n_headers == 0 && m.payload_len == 0, "empty_message");
    T_EQ_INT(rd32(v_empty_message + 8), 96618731u);
    T_EQ_INT(rd32(v_empty_message + 12), 2107164927u);

    T_EQ_INT(kz_evs_decode(v_int32_header, sizeof v_int32_header, &m, &used, &err), KZ_OK);
    T_OK(used == 45 && m.n_headers == 1 && hdr_is(&m.headers[0], "event-type", KZ_EVS_INT32) &&
             m.headers[0].num == 40972 && m.payload_len == 13,
         "int32_header");

    T_EQ_INT(kz_evs_decode(v_payload_no_headers, sizeof v_payload_no_headers, &m, &used, &err), KZ_OK);
    T_OK(used == 29 && m.n_headers == 0 && bytes_are((const char *)m.payload, m.payload_len, "{'foo':'bar'}", 13),
         "payload_no_headers");

    T_EQ_INT(kz_evs_decode(v_payload_one_str_header, sizeof v_payload_one_str_header, &m, &used, &err), KZ_OK);
    T_OK(used == 61 && m.n_headers == 1 && kz_evs_get(&m, "content-type") != NULL, "payload_one_str_header");
}

/* The encoder reproduces the published string-header frames exactly. */
static void published_encode(void)
{
    static const struct {
        const uint8_t *bytes;
        size_t len;
        size_t n;
    } cases[] = {
        {v_empty_message, sizeof v_empty_message, 0},
        {v_payload_no_headers, sizeof v_payload_no_headers, 0},
        {v_payload_one_str_header, sizeof v_payload_one_str_header, 1},
    };
    const char *names[1] = {"content-type"}, *values[1] = {"application/json"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *out;
        size_t out_len;
        const char *payload = cases[i].len > 16 ? "{'foo':'bar'}" : NULL;
        T_EQ_INT(kz_evs_encode(names, values, cases[i].n, payload, payload ? 13 : 0, &out, &out_len, NULL), KZ_OK);
        T_OK(out_len == cases[i].len && memcmp(out, cases[i].bytes, out_len) == 0, "encoder matches vector %zu", i);
        kz_free(out);
    }
}

static void published_negative(void)
{
    static const struct {
        const uint8_t *bytes;
        size_t len;
        const char *why;
    } cases[] = {
        {bad_corrupted_header_len, sizeof bad_corrupted_header_len, "prelude CRC"},
        {bad_corrupted_length, sizeof bad_corrupted_length, "prelude CRC"},
        {bad_corrupted_headers, sizeof bad_corrupted_headers, "message CRC"},
        {bad_corrupted_payload, sizeof bad_corrupted_payload, "message CRC"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kz_evs_msg m;
        size_t used = 99;
        struct kz_err err = {{0}};
        T_EQ_INT(kz_evs_decode(cases[i].bytes, cases[i].len, &m, &used, &err), KZ_EPROTO);
        T_OK(strstr(err.msg, cases[i].why) != NULL, "negative %zu: '%s' says %s", i, err.msg, cases[i].why);
        T_EQ_INT(used, 0);
    }
}

/* Deterministic filler (xorshift32). */
static uint32_t rng = 0x2545f491u;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* A random string of 1..max bytes from an alphabet that includes ':' and
 * bytes above 0x7f (header values are bytes, not text). */
static void rand_str(char *s, size_t max)
{
    size_t n = 1 + rnd() % max;
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(1 + rnd() % 255);
    s[n] = '\0';
}

static void round_trips(void)
{
    int bad = 0;
    for (int round = 0; round < 300; round++) {
        static char nbuf[KZ_EVS_MAX_HEADERS][256], vbuf[KZ_EVS_MAX_HEADERS][300];
        const char *names[KZ_EVS_MAX_HEADERS], *values[KZ_EVS_MAX_HEADERS];
        size_t n = rnd() % (KZ_EVS_MAX_HEADERS + 1);
        for (size_t i = 0; i < n; i++) {
            rand_str(nbuf[i], round % 7 == 0 ? 255 : 20);
            rand_str(vbuf[i], 299);
            if (rnd() % 5 == 0)
                vbuf[i][0] = '\0'; /* empty values are allowed */
            names[i] = nbuf[i];
            values[i] = vbuf[i];
        }
        uint8_t payload[600];
        size_t plen = rnd() % sizeof payload;
        for (size_t i = 0; i < plen; i++)
            payload[i] = (uint8_t)rnd();
        uint8_t *out;
        size_t out_len, used;
        struct kz_evs_msg m;
        if (kz_evs_encode(names, values, n, payload, plen, &out, &out_len, NULL) != KZ_OK) {
            bad++;
            continue;
        }
        if (kz_evs_decode(out, out_len, &m, &used, NULL) != KZ_OK || used != out_len || m.n_headers != n ||
            !bytes_are((const char *)m.payload, m.payload_len, payload, plen)) {
            bad++;
        } else {
            for (size_t i = 0; i < n; i++)
                bad += !(m.headers[i].type == KZ_EVS_STRING &&
                         bytes_are(m.headers[i].name, m.headers[i].name_len, names[i], strlen(names[i])) &&
                         bytes_are(m.headers[i].str, m.headers[i].str_len, values[i], strlen(values[i])));
        }
        kz_free(out);
    }
    T_EQ_INT(bad, 0);
}

/* A frame with a three-header block and a payload, used by the edit tests. */
static uint8_t *sample(size_t *len)
{
    const char *names[3] = {":event-type", ":content-type", ":message-type"};
    const char *values[3] = {"contentBlockDelta", "application/json", "event"};
    const char *p = "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"}}";
    uint8_t *out = NULL;
    kz_evs_encode(names, values, 3, p, strlen(p), &out, len, NULL);
    return out;
}

static void truncations(void)
{
    size_t len;
    uint8_t *f = sample(&len);
    T_OK(f != NULL, "sample frame");
    if (!f)
        return;
    int bad = 0;
    for (size_t k = 0; k < len; k++) {
        /* a buffer of exactly k bytes, so a read past it is an ASan report */
        uint8_t *cut = kz_malloc(k ? k : 1);
        memcpy(cut, f, k);
        struct kz_evs_msg m;
        size_t used = 99;
        kz_status rc = kz_evs_decode(cut, k, &m, &used, NULL);
        bad += rc != KZ_OK || used != 0;
        kz_free(cut);
    }
    T_EQ_INT(bad, 0);
    kz_free(f);
}

static int same_msg(const struct kz_evs_msg *a, const struct kz_evs_msg *b)
{
    if (a->n_headers != b->n_headers || !bytes_are((const char *)a->payload, a->payload_len, b->payload, b->payload_len))
        return 0;
    for (size_t i = 0; i < a->n_headers; i++) {
        const struct kz_evs_header *x = &a->headers[i], *y = &b->headers[i];
        if (x->type != y->type || x->num != y->num || !bytes_are(x->name, x->name_len, y->name, y->name_len) ||
            !bytes_are(x->str ? x->str : "", x->str_len, y->str ? y->str : "", y->str_len))
            return 0;
    }
    return 1;
}

/* CRC-32 detects every single-bit error, so each flipped frame must be
 * refused; "decodes to the same message" is the only other acceptable
 * answer, and "need more" never is (the full frame is there). */
static void bit_flips(void)
{
    size_t len;
    uint8_t *f = sample(&len);
    if (!f)
        return;
    struct kz_evs_msg orig;
    size_t used;
    T_EQ_INT(kz_evs_decode(f, len, &orig, &used, NULL), KZ_OK);
    uint8_t *g = kz_malloc(len);
    int refused = 0, bad = 0;
    for (size_t bit = 0; bit < len * 8; bit++) {
        memcpy(g, f, len);
        g[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        struct kz_evs_msg m;
        kz_status rc = kz_evs_decode(g, len, &m, &used, NULL);
        if (rc == KZ_EPROTO || rc == KZ_ELIMIT)
            refused++;
        else if (rc != KZ_OK || used == 0 || !same_msg(&m, &orig))
            bad++;
    }
    T_EQ_INT(bad, 0);
    T_EQ_INT(refused, len * 8);
    kz_free(g);
    kz_free(f);
}

/* A frame from raw parts with correct CRCs; the lengths can be overridden
 * to build frames whose checksums hold but whose lengths lie. */
static size_t frame(uint8_t *buf, const void *hdrs, size_t hlen, const void *payload, size_t plen, uint32_t total,
                    uint32_t hlen_field)
{
    size_t real = 16 + hlen + plen;
    wr32(buf, total ? total : (uint32_t)real);
    wr32(buf + 4, hlen_field != UINT32_MAX ? hlen_field : (uint32_t)hlen);
    wr32(buf + 8, kz_crc32(buf, 8));
    if (hlen)
        memcpy(buf + 12, hdrs, hlen);
    if (plen)
        memcpy(buf + 12 + hlen, payload, plen);
    wr32(buf + 12 + hlen + plen, kz_crc32(buf, 12 + hlen + plen));
    return real;
}

static kz_status dec(const uint8_t *b, size_t n, size_t *used, char *msg, size_t msg_size)
{
    struct kz_evs_msg m;
    struct kz_err err = {{0}};
    kz_status rc = kz_evs_decode(b, n, &m, used, &err);
    if (msg)
        snprintf(msg, msg_size, "%s", err.msg);
    return rc;
}

static void lengths(void)
{
    uint8_t b[64];
    size_t used;
    char msg[KZ_ERR_MSG_SIZE];
    /* total below the 16-byte minimum, with a valid prelude CRC */
    frame(b, NULL, 0, NULL, 0, 15, UINT32_MAX);
    T_EQ_INT(dec(b, 16, &used, msg, sizeof msg), KZ_EPROTO);
    T_OK(strstr(msg, "do not add up") != NULL, "total 15: %s", msg);
    frame(b, NULL, 0, NULL, 0, 0, UINT32_MAX);
    wr32(b, 0);
    wr32(b + 8, kz_crc32(b, 8));
    T_EQ_INT(dec(b, 16, &used, NULL, 0), KZ_EPROTO);
    /* headers longer than the frame allows, and the u32 extreme */
    frame(b, NULL, 0, "abc", 3, 0, 4);
    T_EQ_INT(dec(b, 19, &used, NULL, 0), KZ_EPROTO);
    frame(b, NULL, 0, "abc", 3, 0, UINT32_MAX - 1);
    T_EQ_INT(dec(b, 19, &used, NULL, 0), KZ_EPROTO);
    /* a header length that cuts a header in two */
    static const uint8_t one[] = {1, 'a', KZ_EVS_INT32, 0, 0, 0, 7};
    frame(b, one, sizeof one, NULL, 0, 0, UINT32_MAX);
    T_EQ_INT(dec(b, 16 + sizeof one, &used, NULL, 0), KZ_OK);
    T_EQ_INT(used, 16 + sizeof one);
    uint8_t two[sizeof one + 1];
    memcpy(two, one, sizeof one);
    two[sizeof one] = 'x'; /* the payload's first byte, claimed by no header */
    frame(b, two, sizeof one - 2, two + sizeof one - 2, 3, 0, UINT32_MAX);
    T_EQ_INT(dec(b, 16 + sizeof one + 1, &used, msg, sizeof msg), KZ_EPROTO);
    T_OK(strstr(msg, "past the header block") != NULL, "cut header: %s", msg);
    /* 16 MiB is allowed (need more), 16 MiB + 1 is refused from the prelude alone */
    wr32(b, KZ_EVS_MAX_MESSAGE);
    wr32(b + 4, 0);
    wr32(b + 8, kz_crc32(b, 8));
    T_EQ_INT(dec(b, 12, &used, NULL, 0), KZ_OK);
    T_EQ_INT(used, 0);
    wr32(b, KZ_EVS_MAX_MESSAGE + 1);
    wr32(b + 8, kz_crc32(b, 8));
    T_EQ_INT(dec(b, 12, &used, msg, sizeof msg), KZ_ELIMIT);
    T_OK(strstr(msg, "limit") != NULL, "over 16 MiB: %s", msg);
    wr32(b, UINT32_MAX);
    wr32(b + 4, UINT32_MAX);
    wr32(b + 8, kz_crc32(b, 8));
    T_EQ_INT(dec(b, 12, &used, NULL, 0), KZ_ELIMIT);
    /* fewer than 12 bytes: need more even when they are garbage */
    T_EQ_INT(dec((const uint8_t *)"\xff\xff\xff\xff\xff", 5, &used, NULL, 0), KZ_OK);
    T_EQ_INT(used, 0);
}

static void header_errors(void)
{
    static const struct {
        uint8_t h[24];
        size_t n;
        const char *why;
    } cases[] = {
        {{0, KZ_EVS_TRUE}, 2, "empty name"},
        {{1, 'a', 10}, 3, "unknown value type 10"},
        {{1, 'a', 255}, 3, "unknown value type 255"},
        {{5, 'a', 'b'}, 3, "past the header block"},
        {{1, 'a'}, 2, "past the header block"},
        {{1, 'a', KZ_EVS_STRING, 0}, 4, "length runs past"},
        {{1, 'a', KZ_EVS_STRING, 0, 5, 'x'}, 6, "value runs past"},
        {{1, 'a', KZ_EVS_BYTES, 0xff, 0xff}, 5, "value runs past"},
        {{1, 'a', KZ_EVS_INT64, 0, 0, 0}, 6, "value runs past"},
        {{1, 'a', KZ_EVS_UUID, 1, 2, 3}, 6, "value runs past"},
        {{1, 'a', KZ_EVS_BYTE}, 3, "value runs past"},
    };
    uint8_t b[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t used, n = frame(b, cases[i].h, cases[i].n, "{}", 2, 0, UINT32_MAX);
        char msg[KZ_ERR_MSG_SIZE];
        T_EQ_INT(dec(b, n, &used, msg, sizeof msg), KZ_EPROTO);
        T_OK(strstr(msg, cases[i].why) != NULL, "header case %zu: '%s' says '%s'", i, msg, cases[i].why);
    }
    /* 32 headers are fine, 33 are not */
    uint8_t hb[33 * 3], big[16 + sizeof hb];
    for (size_t i = 0; i < 33; i++) {
        hb[3 * i] = 1;
        hb[3 * i + 1] = (uint8_t)('a' + i % 26);
        hb[3 * i + 2] = KZ_EVS_TRUE;
    }
    size_t used;
    size_t n = frame(big, hb, 32 * 3, NULL, 0, 0, UINT32_MAX);
    T_EQ_INT(dec(big, n, &used, NULL, 0), KZ_OK);
    n = frame(big, hb, 33 * 3, NULL, 0, 0, UINT32_MAX);
    char msg[KZ_ERR_MSG_SIZE];
    T_EQ_INT(dec(big, n, &used, msg, sizeof msg), KZ_EPROTO);
    T_OK(strstr(msg, "more than 32 headers") != NULL, "33 headers: %s", msg);
}

/* Integer headers at their extremes keep their sign. */
static void integer_extremes(void)
{
    static const uint8_t h[] = {
        1, 'b', KZ_EVS_BYTE,  0x80,                                           /* -128 */
        1, 's', KZ_EVS_INT16, 0x80, 0x00,                                     /* -32768 */
        1, 'i', KZ_EVS_INT32, 0xff, 0xff, 0xff, 0xff,                         /* -1 */
        1, 'l', KZ_EVS_INT64, 0x80, 0, 0, 0, 0, 0, 0, 0,                       /* INT64_MIN */
        1, 'm', KZ_EVS_INT64, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* INT64_MAX */
    };
    uint8_t b[128];
    struct kz_evs_msg m;
    size_t used, n = frame(b, h, sizeof h, NULL, 0, 0, UINT32_MAX);
    T_EQ_INT(kz_evs_decode(b, n, &m, &used, NULL), KZ_OK);
    T_EQ_INT(m.n_headers, 5);
    T_EQ_INT(m.headers[0].num, -128);
    T_EQ_INT(m.headers[1].num, -32768);
    T_EQ_INT(m.headers[2].num, -1);
    T_OK(m.headers[3].num == INT64_MIN, "int64 min");
    T_OK(m.headers[4].num == INT64_MAX, "int64 max");
}

/* Many messages back to back, decoded from one buffer and again from a
 * buffer that grows by random amounts, as a receive loop sees them. */
static void concatenated(void)
{
    enum { N = 1000 };
    uint8_t *all = NULL;
    size_t all_len = 0, ends[N];
    for (int i = 0; i < N; i++) {
        char idx[16], text[64];
        snprintf(idx, sizeof idx, "%d", i);
        snprintf(text, sizeof text, "{\"i\":%d}", i);
        const char *names[2] = {":event-type", "i"}, *values[2] = {"contentBlockDelta", idx};
        uint8_t *f;
        size_t fl;
        if (kz_evs_encode(names, values, 2, text, strlen(text), &f, &fl, NULL) != KZ_OK)
            break;
        uint8_t *na = kz_realloc(all, all_len + fl);
        if (!na) {
            kz_free(f);
            break;
        }
        all = na;
        memcpy(all + all_len, f, fl);
        all_len += fl;
        ends[i] = all_len;
        kz_free(f);
    }
    /* one buffer */
    size_t off = 0;
    int count = 0, bad = 0;
    while (off < all_len) {
        struct kz_evs_msg m;
        size_t used;
        if (kz_evs_decode(all + off, all_len - off, &m, &used, NULL) != KZ_OK || used == 0)
            break;
        off += used;
        char want[16];
        snprintf(want, sizeof want, "%d", count);
        const struct kz_evs_header *h = kz_evs_get(&m, "i");
        bad += !h || !bytes_are(h->str, h->str_len, want, strlen(want)) || off != ends[count];
        count++;
    }
    T_EQ_INT(count, N);
    T_EQ_INT(bad, 0);
    /* a growing receive buffer */
    size_t have = 0, start = 0;
    count = 0;
    bad = 0;
    for (;;) {
        struct kz_evs_msg m;
        size_t used;
        kz_status rc;
        while ((rc = kz_evs_decode(all + start, have - start, &m, &used, NULL)) == KZ_OK && used) {
            start += used;
            bad += count >= N || start != ends[count];
            count++;
        }
        if (rc != KZ_OK || bad || start == all_len)
            break;
        if (have == all_len) { /* every byte is here and it still wants more */
            bad++;
            break;
        }
        size_t step = 1 + rnd() % 97;
        have = all_len - have < step ? all_len : have + step;
    }
    T_EQ_INT(count, N);
    T_EQ_INT(bad, 0);
    kz_free(all);
}

static void encode_rejects(void)
{
    static char long_name[257], long_value[65537];
    memset(long_name, 'n', 256);
    memset(long_value, 'v', 65536);
    const char *empty[1] = {""}, *nm256[1] = {long_name}, *v[1] = {"x"}, *big[1] = {long_value};
    const char *ok[1] = {"n"};
    uint8_t *out = (uint8_t *)1;
    size_t ol = 5;
    struct kz_err err = {{0}};
    T_EQ_INT(kz_evs_encode(empty, v, 1, NULL, 0, &out, &ol, &err), KZ_EINVAL);
    T_OK(out == NULL && ol == 0, "outputs cleared on failure");
    T_EQ_INT(kz_evs_encode(nm256, v, 1, NULL, 0, &out, &ol, &err), KZ_EINVAL);
    T_EQ_INT(kz_evs_encode(ok, big, 1, NULL, 0, &out, &ol, &err), KZ_EINVAL);
    const char *many[33];
    for (int i = 0; i < 33; i++)
        many[i] = "h";
    T_EQ_INT(kz_evs_encode(many, many, 33, NULL, 0, &out, &ol, &err), KZ_EINVAL);
    T_EQ_INT(kz_evs_encode(NULL, NULL, 0, NULL, 5, &out, &ol, &err), KZ_EINVAL);
    /* the size limit, checked before allocating */
    long_name[255] = '\0';
    T_EQ_INT(kz_evs_encode(NULL, NULL, 0, long_value, KZ_EVS_MAX_MESSAGE - 15, &out, &ol, &err), KZ_ELIMIT);
    T_EQ_INT(kz_evs_encode(NULL, NULL, 0, long_value, (size_t)-1, &out, &ol, &err), KZ_ELIMIT);
    /* a 255-byte name and a 65535-byte value are the largest allowed */
    long_value[65535] = '\0';
    T_EQ_INT(kz_evs_encode(nm256, big, 1, NULL, 0, &out, &ol, &err), KZ_OK);
    struct kz_evs_msg m;
    size_t used;
    T_EQ_INT(kz_evs_decode(out, ol, &m, &used, NULL), KZ_OK);
    T_OK(m.n_headers == 1 && m.headers[0].name_len == 255 && m.headers[0].str_len == 65535, "largest header");
    kz_free(out);
}

int main(void)
{
    t_subtest("published_positive", published_positive);
    t_subtest("published_encode", published_encode);
    t_subtest("published_negative", published_negative);
    t_subtest("round_trips", round_trips);
    t_subtest("truncations", truncations);
    t_subtest("bit_flips", bit_flips);
    t_subtest("lengths", lengths);
    t_subtest("header_errors", header_errors);
    t_subtest("integer_extremes", integer_extremes);
    t_subtest("concatenated", concatenated);
    t_subtest("encode_rejects", encode_rejects);
    return t_done();
}
