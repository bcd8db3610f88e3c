/* SPDX-License-Identifier: MIT
 * KZ_ASSERT stays on in release builds and aborts with file:line. It is for
 * our own bugs only: never assert on file, network or user input.
 */
#ifndef KZ_ASSERT_H
#define KZ_ASSERT_H

void kz_assert_fail(const char *expr, const char *file, int line);

#define KZ_ASSERT(x) ((x) ? (void)0 : kz_assert_fail(#x, __FILE__, __LINE__))

#endif
