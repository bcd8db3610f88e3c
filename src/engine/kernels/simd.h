/* SPDX-License-Identifier: MIT
 * Internal to src/engine/kernels/: the SIMD variant tables and the CPU
 * feature checks dispatch.c makes before handing one out.
 *
 * Each table is defined in its own ISA file (x86/avx2.c, x86/avx512.c,
 * arm/neon.c, arm/neon_dotprod.c), compiled with that ISA's flags; nothing outside those files may call
 * into them until the CPU has been checked (kz_kernels_find/get do this).
 */
#ifndef KZ_SIMD_H
#define KZ_SIMD_H

#include "engine/kernels/kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#define KZ_HAVE_X86 1
/* AVX2 + FMA + F16C (Haswell, Zen 1 and later). */
extern const struct kz_kernels kz_kernels_avx2;
/* AVX-512 F/BW/VL/DQ + VNNI (Ice Lake, Zen 4 and later), plus the AVX2 set. */
extern const struct kz_kernels kz_kernels_avx512;
#else
#define KZ_HAVE_X86 0
#endif

#if defined(__aarch64__)
#define KZ_HAVE_ARM 1
/* Advanced SIMD, present on every ARMv8-A core. */
extern const struct kz_kernels kz_kernels_neon;
/* Plus the ARMv8.2 dot-product extension (sdot). */
extern const struct kz_kernels kz_kernels_neon_dotprod;
#else
#define KZ_HAVE_ARM 0
#endif

#endif
