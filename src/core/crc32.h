/* SPDX-License-Identifier: MIT
 * CRC-32 as used by gzip, zlib, PNG and the AWS event-stream framing
 * (ISO-HDLC: reflected polynomial 0xEDB88320, initial value and final XOR
 * 0xFFFFFFFF). "123456789" checks to 0xCBF43926.
 *
 * Invariant: the running value passed between calls is the finished CRC of
 * everything so far, so kz_crc32_update(kz_crc32(a), b) == kz_crc32(a || b)
 * and a split stream needs no separate context. No allocation, no state.
 */
#ifndef KZ_CRC32_H
#define KZ_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* CRC of `len` bytes (data may be NULL when len is 0). */
uint32_t kz_crc32(const void *data, size_t len);

/* Continues `crc` (a value kz_crc32 or this function returned; 0 for an
 * empty prefix) over `len` more bytes. */
uint32_t kz_crc32_update(uint32_t crc, const void *data, size_t len);

#endif
