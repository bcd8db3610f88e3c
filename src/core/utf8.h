/* SPDX-License-Identifier: MIT
 * UTF-8 validation helpers for text that must become JSON: model output can
 * end inside a character or hold bytes that are no character at all.
 */
#ifndef KZ_UTF8_H
#define KZ_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes at s
 * are not one (bad lead or continuation byte, overlong form, surrogate,
 * beyond U+10FFFF, or cut short by len). len >= 1. */
size_t kz_utf8_seq_len(const char *s, size_t len);

/* A copy of s with ill-formed bytes replaced by U+FFFD, one per maximal
 * subpart (the Unicode recommendation, as TextDecoder and Python do it: a
 * cut-short "E2 96" is one U+FFFD). New NUL-terminated buffer (kz_free),
 * length in *out_len; NULL on OOM. */
char *kz_utf8_sanitize(const char *s, size_t len, size_t *out_len);

/* Encodes code point cp (<= U+10FFFF) into out (4 bytes of room); returns
 * the byte count. */
size_t kz_utf8_encode(uint32_t cp, char *out);

#endif
