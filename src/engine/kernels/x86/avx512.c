/* SPDX-License-Identifier: MIT
 * The "avx512" kernel family: AVX-512 F/BW/VL/DQ + VNNI on top of the AVX2
 * set (compiled with those flags; dispatch.c checks CPU and OS first).
 * The shared loops are in x86_body.h; here the byte dot product is one
 * vpdpbusd (four u8*s8 products summed straight into int32, no int16 step).
 */
#define KZ_X86_TABLE kz_kernels_avx512
#define KZ_X86_NAME "avx512"
#define KZ_X86_ZMM 1 /* the micro tiles of x86_body.h on zmm with VNNI */
#define KZ_X86_DOT_U8S8(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))

#include "engine/kernels/x86/x86_body.h"
