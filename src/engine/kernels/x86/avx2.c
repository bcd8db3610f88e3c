/* SPDX-License-Identifier: MIT
 * The "avx2" kernel family: AVX2 + FMA + F16C (compiled with -mavx2 -mfma
 * -mf16c; dispatch.c hands it out only after checking the CPU and OS).
 * The loops are in x86_body.h; this file fixes the one primitive that
 * differs between the x86 families, the unsigned-by-signed byte dot product:
 * pmaddubsw (pairs to int16, exact under the kernels' bounds) then pmaddwd
 * by ones (pairs of int16 to int32).
 */
#define KZ_X86_TABLE kz_kernels_avx2
#define KZ_X86_NAME "avx2"
#define KZ_X86_DOT_U8S8(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))

#include "engine/kernels/x86/x86_body.h"
