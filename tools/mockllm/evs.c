/* SPDX-License-Identifier: MIT
 * AWS event-stream frames (see evs.h). Bitwise CRC: frames are small and
 * few, a table would only add code.
 */
#include "evs.h"

#include <string.h>

#include "core/alloc.h"

uint32_t kz_mock_crc32(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= b[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

kz_status kz_mock_evs_frame(const char *const *names, const char *const *values, size_t n, const void *payload,
                            size_t payload_len, char **out, size_t *out_len, struct kz_err *err)
{
    size_t hlen = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(names[i]), vl = strlen(values[i]);
        if (nl == 0 || nl > 255 || vl > 65535)
            return kz_err_set(err, KZ_ELIMIT, "event-stream header '%.40s': name or value too long", names[i]);
        hlen += 1 + nl + 1 + 2 + vl;
    }
    size_t total = 12 + hlen + payload_len + 4;
    if (total > UINT32_MAX)
        return kz_err_set(err, KZ_ELIMIT, "event-stream frame of %zu bytes is too large", total);
    unsigned char *f = kz_malloc(total);
    if (!f)
        return kz_err_set(err, KZ_ENOMEM, "event-stream frame: out of memory");
    put_u32(f, (uint32_t)total);
    put_u32(f + 4, (uint32_t)hlen);
    put_u32(f + 8, kz_mock_crc32(0, f, 8));
    size_t o = 12;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(names[i]), vl = strlen(values[i]);
        f[o++] = (unsigned char)nl;
        memcpy(f + o, names[i], nl);
        o += nl;
        f[o++] = 7; /* string */
        f[o++] = (unsigned char)(vl >> 8);
        f[o++] = (unsigned char)vl;
        memcpy(f + o, values[i], vl);
        o += vl;
    }
    if (payload_len)
        memcpy(f + o, payload, payload_len);
    o += payload_len;
    put_u32(f + o, kz_mock_crc32(0, f, o));
    *out = (char *)f;
    *out_len = total;
    return KZ_OK;
}
