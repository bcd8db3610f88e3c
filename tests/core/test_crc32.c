/* SPDX-License-Identifier: MIT
 * CRC-32: the catalogue check value, known strings, every single byte (which
 * touches every table entry) and random buffers against a bit-at-a-time
 * reference written straight from the polynomial, and continuation across
 * every split point.
 */
#include <string.h>

#include "core/crc32.h"
#include "t.h"

/* One bit per step, no table: the definition the table must agree with. */
static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int b = 0; b < 8; b++)
            c = (c & 1u) ? (c >> 1) ^ 0xedb88320u : c >> 1;
    }
    return c ^ 0xffffffffu;
}

/* Deterministic filler (a 32-bit LCG's high byte), so a failure is repeatable. */
static uint32_t lcg = 12345u;
static uint8_t next_byte(void)
{
    lcg = lcg * 1103515245u + 12345u;
    return (uint8_t)(lcg >> 24);
}

static void known(void)
{
    /* The "check" value of CRC-32/ISO-HDLC in the CRC catalogues. */
    T_EQ_INT(kz_crc32("123456789", 9), 0xcbf43926u);
    T_EQ_INT(kz_crc32("", 0), 0);
    T_EQ_INT(kz_crc32(NULL, 0), 0);
    T_EQ_INT(kz_crc32("The quick brown fox jumps over the lazy dog", 43), 0x414fa339u);
    /* The AWS event-stream empty message's prelude: total 16, headers 0
     * (aws-sdk-go testdata empty_message, prelude_crc 96618731). */
    const uint8_t prelude[8] = {0, 0, 0, 16, 0, 0, 0, 0};
    T_EQ_INT(kz_crc32(prelude, 8), 96618731u);
}

static void every_byte(void)
{
    int bad = 0;
    for (int b = 0; b < 256; b++) {
        uint8_t x = (uint8_t)b;
        bad += kz_crc32(&x, 1) != crc_bitwise(&x, 1);
    }
    T_EQ_INT(bad, 0);
}

static void random_buffers(void)
{
    uint8_t buf[1024];
    int bad = 0;
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)next_byte() << 2 | (next_byte() & 3u); /* 0..1023 */
        for (size_t i = 0; i < n; i++)
            buf[i] = next_byte();
        bad += kz_crc32(buf, n) != crc_bitwise(buf, n);
    }
    T_EQ_INT(bad, 0);
}

static void continuation(void)
{
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = next_byte();
    uint32_t whole = kz_crc32(buf, sizeof buf);
    int bad = 0;
    for (size_t cut = 0; cut <= sizeof buf; cut++)
        bad += kz_crc32_update(kz_crc32(buf, cut), buf + cut, sizeof buf - cut) != whole;
    T_EQ_INT(bad, 0);
    T_EQ_INT(kz_crc32_update(0, buf, sizeof buf), whole);
}

int main(void)
{
    t_subtest("known", known);
    t_subtest("every_byte", every_byte);
    t_subtest("random_buffers", random_buffers);
    t_subtest("continuation", continuation);
    return t_done();
}
