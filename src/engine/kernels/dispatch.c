/* SPDX-License-Identifier: MIT
 * Picks the kernel table: checks the CPU once, prefers the best variant
 * whose features are all present (avx512 > avx2 > ref on x86-64,
 * neon-dotprod > neon > ref on AArch64), and honours
 * KZ_KERNELS=<name> to force one for debugging and benchmarking.
 *
 * On x86-64 a feature counts only when the CPU reports it (cpuid) *and* the
 * OS saves the register state it needs (xgetbv XCR0): YMM state for AVX2,
 * plus opmask and ZMM state for AVX-512. On AArch64 Linux the kernel's
 * HWCAP bits say both at once.
 */
#include "engine/kernels/kernels.h"
#include "engine/kernels/simd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if KZ_HAVE_X86
#include <cpuid.h>

static uint64_t xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

enum { CPU_AVX2 = 1, CPU_AVX512 = 2 };

/* Bit set of the CPU_* families this machine can run. */
static unsigned cpu_families(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx)
        return 0;
    uint64_t xcr = xcr0();
    if ((xcr & 0x6) != 0x6) /* XMM and YMM state */
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1;
    int f512 = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    int vnni = (c >> 11) & 1;
    unsigned fam = 0;
    if (avx2 && fma && f16c)
        fam |= CPU_AVX2;
    if ((fam & CPU_AVX2) && f512 && dq && bw && vl && vnni && (xcr & 0xe6) == 0xe6)
        fam |= CPU_AVX512; /* opmask, upper ZMM0-15 and ZMM16-31 state */
    return fam;
}
#endif

#if KZ_HAVE_ARM
#include <sys/auxv.h>

/* Linux's AArch64 HWCAP bits (asm/hwcap.h), spelled out so the build does
 * not depend on the kernel headers' age. */
enum { ARM_HWCAP_ASIMD = 1 << 1, ARM_HWCAP_ASIMDDP = 1 << 20 };
#endif

int kz_kernels_list(const struct kz_kernels **out, int max)
{
    int n = 0;
#if KZ_HAVE_X86
    unsigned fam = cpu_families();
    if ((fam & CPU_AVX512) && n < max)
        out[n++] = &kz_kernels_avx512;
    if ((fam & CPU_AVX2) && n < max)
        out[n++] = &kz_kernels_avx2;
#endif
#if KZ_HAVE_ARM
    unsigned long hw = getauxval(AT_HWCAP);
    if ((hw & ARM_HWCAP_ASIMD) && (hw & ARM_HWCAP_ASIMDDP) && n < max)
        out[n++] = &kz_kernels_neon_dotprod;
    if ((hw & ARM_HWCAP_ASIMD) && n < max)
        out[n++] = &kz_kernels_neon;
#endif
    if (n < max)
        out[n++] = &kz_kernels_ref;
    return n;
}

const struct kz_kernels *kz_kernels_find(const char *name)
{
    const struct kz_kernels *all[8];
    int n = kz_kernels_list(all, 8);
    for (int i = 0; i < n; i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

static const struct kz_kernels *chosen;

const struct kz_kernels *kz_kernels_get(void)
{
    if (chosen)
        return chosen;
    const struct kz_kernels *best[8];
    kz_kernels_list(best, 8);
    const struct kz_kernels *pick = best[0];
    const char *want = getenv("KZ_KERNELS");
    if (want && *want) {
        const struct kz_kernels *forced = kz_kernels_find(want);
        if (forced)
            pick = forced;
        else
            fprintf(stderr, "kyozon: KZ_KERNELS=%s is unknown or not supported by this CPU; using \"%s\"\n",
                    want, pick->name);
    }
    chosen = pick;
    return chosen;
}
