/* SPDX-License-Identifier: MIT
 * Runs of ordinary bytes, found eight at a time.
 *
 * The parsers of network text (HTTP heads, SSE lines, JSON strings) spend
 * most of their time stepping over bytes that need nothing but a copy or a
 * skip. Each function here returns how many bytes at the start of p belong
 * to such a run; the caller then handles the byte that ended it one at a
 * time, as before. Words are tested with carry-free bit tricks in plain C
 * (no intrinsics, so every target gets them); the _ref versions are the
 * byte-at-a-time definitions, and the test holds the two equal.
 */
#ifndef KZ_BYTESCAN_H
#define KZ_BYTESCAN_H

#include <stddef.h>

/* Printable ASCII, 0x20-0x7e: what a request line or header needs no check for. */
size_t kz_scan_printable(const char *p, size_t n);
size_t kz_scan_printable_ref(const char *p, size_t n);

/* Anything but CR and LF: the rest of an SSE line. */
size_t kz_scan_line(const char *p, size_t n);
size_t kz_scan_line_ref(const char *p, size_t n);

/* ASCII that a JSON string holds as itself: 0x20-0x7f except '"' and '\\'
 * (bytes from 0x80 on end the run: the caller checks their UTF-8). */
size_t kz_scan_json_plain(const char *p, size_t n);
size_t kz_scan_json_plain_ref(const char *p, size_t n);

/* What a JSON string holds as itself, UTF-8 included: runs of
 * kz_scan_json_plain and well-formed UTF-8 sequences. The byte it stops at
 * (when short of n) is '"', '\\', a control byte, or the start of
 * ill-formed UTF-8 (>= 0x80): what a reader or writer must look at. */
size_t kz_scan_json_text(const char *p, size_t n);

#endif
