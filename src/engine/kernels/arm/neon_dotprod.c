/* SPDX-License-Identifier: MIT
 * The "neon-dotprod" kernel family: ARMv8.2-A's dot-product extension
 * (compiled with -march=armv8.2-a+dotprod; dispatch.c checks the CPU's
 * HWCAP_ASIMDDP first). The shared loops are in neon_body.h; here the byte
 * dot product is one sdot: four int8 products summed into each int32 lane.
 */
#define KZ_ARM_TABLE kz_kernels_neon_dotprod
#define KZ_ARM_NAME "neon-dotprod"
#define KZ_ARM_DOT_S8(acc, a, b) vdotq_s32((acc), (a), (b))

#include "engine/kernels/arm/neon_body.h"
