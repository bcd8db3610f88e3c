/* SPDX-License-Identifier: MIT
 * AWS event-stream frames: decoding from a receive buffer and encoding with
 * string headers. Layout and header types are in eventstream.h.
 *
 * The checks come in the order that keeps a bad length from doing harm: the
 * prelude CRC first (so a corrupted length is caught before it is believed),
 * then the size limit (before waiting for bytes that may never be sent),
 * then the message CRC over the whole frame, and only then the headers.
 */
#include "router/eventstream.h"

#include <string.h>

#include "core/alloc.h"
#include "core/crc32.h"

#define PRELUDE 12 /* two lengths and the prelude CRC */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Two's-complement reinterpretation without implementation-defined casts. */
static int64_t as_signed(uint64_t v, unsigned bits)
{
    uint64_t sign = (uint64_t)1 << (bits - 1);
    v &= bits == 64 ? ~(uint64_t)0 : (sign << 1) - 1;
    return v & sign ? -(int64_t)(~v & (sign - 1)) - 1 : (int64_t)v;
}

/* Parses the header block h[0..n) into m. */
static kz_status parse_headers(const uint8_t *h, size_t n, struct kz_evs_msg *m, struct kz_err *err)
{
    size_t i = 0;
    m->n_headers = 0;
    while (i < n) {
        if (m->n_headers == KZ_EVS_MAX_HEADERS)
            return kz_err_set(err, KZ_EPROTO, "event-stream: more than %d headers", KZ_EVS_MAX_HEADERS);
        struct kz_evs_header *x = &m->headers[m->n_headers];
        size_t name_len = h[i++];
        if (name_len == 0)
            return kz_err_set(err, KZ_EPROTO, "event-stream: header %zu has an empty name", m->n_headers);
        if (n - i < name_len + 1) /* the name and the type byte */
            return kz_err_set(err, KZ_EPROTO, "event-stream: header %zu runs past the header block", m->n_headers);
        x->name = (const char *)h + i;
        x->name_len = name_len;
        i += name_len;
        x->type = h[i++];
        x->str = NULL;
        x->str_len = 0;
        x->num = 0;
        size_t fixed = 0; /* value bytes for the fixed-size types */
        switch (x->type) {
        case KZ_EVS_TRUE: x->num = 1; break;
        case KZ_EVS_FALSE: break;
        case KZ_EVS_BYTE: fixed = 1; break;
        case KZ_EVS_INT16: fixed = 2; break;
        case KZ_EVS_INT32: fixed = 4; break;
        case KZ_EVS_INT64:
        case KZ_EVS_TIMESTAMP: fixed = 8; break;
        case KZ_EVS_UUID: fixed = 16; break;
        case KZ_EVS_BYTES:
        case KZ_EVS_STRING:
            if (n - i < 2)
                return kz_err_set(err, KZ_EPROTO, "event-stream: header '%.*s' length runs past the header block",
                                  (int)name_len, x->name);
            x->str_len = be16(h + i);
            i += 2;
            if (n - i < x->str_len)
                return kz_err_set(err, KZ_EPROTO, "event-stream: header '%.*s' value runs past the header block",
                                  (int)name_len, x->name);
            x->str = (const char *)h + i;
            i += x->str_len;
            break;
        default:
            return kz_err_set(err, KZ_EPROTO, "event-stream: header '%.*s' has unknown value type %d", (int)name_len,
                              x->name, x->type);
        }
        if (fixed) {
            if (n - i < fixed)
                return kz_err_set(err, KZ_EPROTO, "event-stream: header '%.*s' value runs past the header block",
                                  (int)name_len, x->name);
            if (x->type == KZ_EVS_UUID) {
                x->str = (const char *)h + i;
                x->str_len = 16;
            } else {
                uint64_t v = fixed == 1 ? h[i] : fixed == 2 ? be16(h + i) : fixed == 4 ? be32(h + i) : be64(h + i);
                x->num = as_signed(v, (unsigned)fixed * 8);
            }
            i += fixed;
        }
        m->n_headers++;
    }
    return KZ_OK;
}

kz_status kz_evs_decode(const uint8_t *buf, size_t len, struct kz_evs_msg *msg, size_t *used, struct kz_err *err)
{
    *used = 0;
    if (len < PRELUDE)
        return KZ_OK;
    uint32_t total = be32(buf), hlen = be32(buf + 4);
    if (kz_crc32(buf, 8) != be32(buf + 8))
        return kz_err_set(err, KZ_EPROTO, "event-stream: prelude CRC mismatch");
    if (total > KZ_EVS_MAX_MESSAGE)
        return kz_err_set(err, KZ_ELIMIT, "event-stream: a %u-byte message is over the %u-byte limit", total,
                          KZ_EVS_MAX_MESSAGE);
    if (total < KZ_EVS_OVERHEAD || hlen > total - KZ_EVS_OVERHEAD)
        return kz_err_set(err, KZ_EPROTO, "event-stream: lengths do not add up (total %u, headers %u)", total, hlen);
    if (len < total)
        return KZ_OK;
    if (kz_crc32(buf, total - 4) != be32(buf + total - 4))
        return kz_err_set(err, KZ_EPROTO, "event-stream: message CRC mismatch");
    kz_status rc = parse_headers(buf + PRELUDE, hlen, msg, err);
    if (rc)
        return rc;
    msg->payload = buf + PRELUDE + hlen;
    msg->payload_len = total - KZ_EVS_OVERHEAD - hlen;
    *used = total;
    return KZ_OK;
}

const struct kz_evs_header *kz_evs_get(const struct kz_evs_msg *m, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < m->n_headers; i++) {
        const struct kz_evs_header *h = &m->headers[i];
        if (h->type == KZ_EVS_STRING && h->name_len == nl && memcmp(h->name, name, nl) == 0)
            return h;
    }
    return NULL;
}

kz_status kz_evs_encode(const char *const *names, const char *const *values, size_t n, const void *payload,
                        size_t len, uint8_t **out, size_t *out_len, struct kz_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (n > KZ_EVS_MAX_HEADERS)
        return kz_err_set(err, KZ_EINVAL, "event-stream: %zu headers, at most %d", n, KZ_EVS_MAX_HEADERS);
    if (len && !payload)
        return kz_err_set(err, KZ_EINVAL, "event-stream: payload is NULL with length %zu", len);
    size_t hlen = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(names[i]), vl = strlen(values[i]);
        if (nl == 0 || nl > 255)
            return kz_err_set(err, KZ_EINVAL, "event-stream: header %zu: a name is 1 to 255 bytes (got %zu)", i, nl);
        if (vl > 65535)
            return kz_err_set(err, KZ_EINVAL, "event-stream: header '%s': a value is at most 65535 bytes", names[i]);
        hlen += 1 + nl + 1 + 2 + vl;
    }
    if (len > KZ_EVS_MAX_MESSAGE || hlen + len > KZ_EVS_MAX_MESSAGE - KZ_EVS_OVERHEAD)
        return kz_err_set(err, KZ_ELIMIT, "event-stream: the message would be over %u bytes", KZ_EVS_MAX_MESSAGE);
    size_t total = KZ_EVS_OVERHEAD + hlen + len;
    uint8_t *b = kz_malloc(total);
    if (!b)
        return kz_err_set(err, KZ_ENOMEM, "event-stream: out of memory");
    put32(b, (uint32_t)total);
    put32(b + 4, (uint32_t)hlen);
    put32(b + 8, kz_crc32(b, 8));
    size_t i = PRELUDE;
    for (size_t k = 0; k < n; k++) {
        size_t nl = strlen(names[k]), vl = strlen(values[k]);
        b[i++] = (uint8_t)nl;
        memcpy(b + i, names[k], nl);
        i += nl;
        b[i++] = KZ_EVS_STRING;
        b[i++] = (uint8_t)(vl >> 8);
        b[i++] = (uint8_t)vl;
        memcpy(b + i, values[k], vl);
        i += vl;
    }
    if (len)
        memcpy(b + i, payload, len);
    i += len;
    put32(b + i, kz_crc32(b, i));
    *out = b;
    *out_len = total;
    return KZ_OK;
}
