/* SPDX-License-Identifier: MIT
 * The AWS event-stream binary framing (application/vnd.amazon.eventstream),
 * in which Bedrock ConverseStream sends its answer. One message is
 *
 *   total length u32 BE | headers length u32 BE | prelude CRC u32 BE
 *   headers (headers-length bytes) | payload | message CRC u32 BE
 *
 * where the prelude CRC covers the first 8 bytes and the message CRC every
 * byte before it (CRC-32, core/crc32.h); the fixed overhead is 16 bytes. A
 * header is: name length u8, name, value type u8, value, with the value by
 * type: 0 true, 1 false (no bytes), 2 byte, 3 int16, 4 int32, 5 int64 (all
 * big-endian, signed), 6 byte array and 7 string (u16 BE length, bytes),
 * 8 timestamp (int64 milliseconds since the epoch), 9 UUID (16 bytes).
 *
 * The decoder works on a caller's buffer: it never allocates and every
 * pointer in a decoded message points into that buffer (valid while the
 * buffer is). It is meant for a receive loop: append what arrived, decode
 * while it returns a message, drop the used bytes, wait for more.
 */
#ifndef KZ_EVENTSTREAM_H
#define KZ_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

enum kz_evs_type {
    KZ_EVS_TRUE = 0,
    KZ_EVS_FALSE = 1,
    KZ_EVS_BYTE = 2,
    KZ_EVS_INT16 = 3,
    KZ_EVS_INT32 = 4,
    KZ_EVS_INT64 = 5,
    KZ_EVS_BYTES = 6,
    KZ_EVS_STRING = 7,
    KZ_EVS_TIMESTAMP = 8,
    KZ_EVS_UUID = 9
};

#define KZ_EVS_MAX_HEADERS 32
#define KZ_EVS_MAX_MESSAGE (16u << 20) /* 16 MiB: Bedrock's frames are a few hundred bytes */
#define KZ_EVS_OVERHEAD 16             /* prelude (12) + message CRC (4) */

/* One header. name/str point into the decoded buffer, not NUL-terminated.
 * num: TRUE/FALSE 1/0, the integer types and TIMESTAMP their value.
 * str/str_len: BYTES and STRING their bytes, UUID its 16 bytes. */
struct kz_evs_header {
    const char *name;
    size_t name_len;
    int type; /* enum kz_evs_type */
    const char *str;
    size_t str_len;
    int64_t num;
};

struct kz_evs_msg {
    struct kz_evs_header headers[KZ_EVS_MAX_HEADERS];
    size_t n_headers;
    const uint8_t *payload; /* points into the input buffer */
    size_t payload_len;
};

/* Decodes one message from the start of buf. KZ_OK with *used > 0: a message
 * (of *used bytes); KZ_OK with *used == 0: need more bytes; KZ_EPROTO: bad
 * prelude/message CRC, lengths that do not add up, bad header type, > 32
 * headers; KZ_ELIMIT: a message over 16 MiB (checked from the prelude,
 * before waiting for the bytes). A corrupt stream cannot be resynchronized:
 * after an error the caller drops the connection. */
kz_status kz_evs_decode(const uint8_t *buf, size_t len, struct kz_evs_msg *msg, size_t *used, struct kz_err *err);

/* Looks up a string header (":event-type", ":message-type",
 * ":exception-type", ":content-type") by exact name; NULL if absent or if
 * the header of that name is not a string. */
const struct kz_evs_header *kz_evs_get(const struct kz_evs_msg *m, const char *name);

/* Encodes a message with string headers only (used by tests and the mock
 * upstream). names[i] must be 1 to 255 bytes, values[i] at most 65535, n at
 * most 32 (KZ_EINVAL otherwise); KZ_ELIMIT over 16 MiB. On success *out is
 * a new buffer of *out_len bytes: kz_free *out. payload may be NULL when
 * len is 0. */
kz_status kz_evs_encode(const char *const *names, const char *const *values, size_t n, const void *payload,
                        size_t len, uint8_t **out, size_t *out_len, struct kz_err *err);

#endif
