/* SPDX-License-Identifier: MIT
 * The AWS event-stream frame encoder (application/vnd.amazon.eventstream,
 * as Bedrock's ConverseStream sends it), local to mockllm until the router's
 * own encoder (router/eventstream.h, kz_evs_encode) is on main; then this
 * file and evs.c go and bedrock.c calls that one.
 *
 * A frame: total length (u32 BE), headers length (u32 BE), CRC-32 of those
 * 8 bytes, the headers, the payload, CRC-32 of everything before it. A
 * header: name length (u8), name, value type (u8, 7 = string), value length
 * (u16 BE), value. CRC-32 is the IEEE / gzip one.
 */
#ifndef KZ_MOCK_EVS_H
#define KZ_MOCK_EVS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320) of p, continuing from crc (0 to start). */
uint32_t kz_mock_crc32(uint32_t crc, const void *p, size_t n);

/* Encodes one frame with n string headers names[i]: values[i]. On success
 * *out is a new buffer (kz_free) of *out_len bytes. KZ_ELIMIT when a name
 * exceeds 255 bytes or a value 65535, KZ_ENOMEM. */
kz_status kz_mock_evs_frame(const char *const *names, const char *const *values, size_t n, const void *payload,
                            size_t payload_len, char **out /* out */, size_t *out_len /* out */, struct kz_err *err);

#endif
