/* SPDX-License-Identifier: MIT
 * The "neon" kernel family: AArch64 Advanced SIMD as every ARMv8-A core has
 * it. The loops are in neon_body.h; this file fixes the byte dot product:
 * smull (8 int8 x int8 -> int16, exact: |product| <= 2^14) on each half,
 * then sadalp adds neighbouring int16 pairs into the int32 lanes.
 */
#define KZ_ARM_TABLE kz_kernels_neon
#define KZ_ARM_NAME "neon"
#define KZ_ARM_DOT_S8(acc, a, b)                                                                   \
    vpadalq_s16(vpadalq_s16((acc), vmull_s8(vget_low_s8(a), vget_low_s8(b))), vmull_high_s8((a), (b)))

#include "engine/kernels/arm/neon_body.h"
