/* SPDX-License-Identifier: MIT */
#include "engine/gguf/dtype.h"

#include <strings.h>

struct dtype_row {
    const char *name;
    uint32_t blck;
    uint32_t size;
};

/* Indexed by type id; a NULL name marks an unused id. Sizes follow the
 * published block layouts (e.g. Q4_K: f16 d, f16 dmin, 12 scale bytes,
 * 128 nibble bytes = 144 bytes per 256 weights). */
static const struct dtype_row rows[KZ_DT_COUNT] = {
    [KZ_DT_F32] = {"F32", 1, 4},
    [KZ_DT_F16] = {"F16", 1, 2},
    [KZ_DT_Q4_0] = {"Q4_0", 32, 18},
    [KZ_DT_Q4_1] = {"Q4_1", 32, 20},
    [KZ_DT_Q5_0] = {"Q5_0", 32, 22},
    [KZ_DT_Q5_1] = {"Q5_1", 32, 24},
    [KZ_DT_Q8_0] = {"Q8_0", 32, 34},
    [KZ_DT_Q8_1] = {"Q8_1", 32, 36},
    [KZ_DT_Q2_K] = {"Q2_K", 256, 84},
    [KZ_DT_Q3_K] = {"Q3_K", 256, 110},
    [KZ_DT_Q4_K] = {"Q4_K", 256, 144},
    [KZ_DT_Q5_K] = {"Q5_K", 256, 176},
    [KZ_DT_Q6_K] = {"Q6_K", 256, 210},
    [KZ_DT_Q8_K] = {"Q8_K", 256, 292},
    [KZ_DT_IQ2_XXS] = {"IQ2_XXS", 256, 66},
    [KZ_DT_IQ2_XS] = {"IQ2_XS", 256, 74},
    [KZ_DT_IQ3_XXS] = {"IQ3_XXS", 256, 98},
    [KZ_DT_IQ1_S] = {"IQ1_S", 256, 50},
    [KZ_DT_IQ4_NL] = {"IQ4_NL", 32, 18},
    [KZ_DT_IQ3_S] = {"IQ3_S", 256, 110},
    [KZ_DT_IQ2_S] = {"IQ2_S", 256, 82},
    [KZ_DT_IQ4_XS] = {"IQ4_XS", 256, 136},
    [KZ_DT_I8] = {"I8", 1, 1},
    [KZ_DT_I16] = {"I16", 1, 2},
    [KZ_DT_I32] = {"I32", 1, 4},
    [KZ_DT_I64] = {"I64", 1, 8},
    [KZ_DT_F64] = {"F64", 1, 8},
    [KZ_DT_IQ1_M] = {"IQ1_M", 256, 56},
    [KZ_DT_BF16] = {"BF16", 1, 2},
    [KZ_DT_TQ1_0] = {"TQ1_0", 256, 54},
    [KZ_DT_TQ2_0] = {"TQ2_0", 256, 66},
    [KZ_DT_MXFP4] = {"MXFP4", 32, 17},
};

int kz_dtype_info(uint32_t t, uint32_t *blck, uint32_t *type_size)
{
    if (t >= KZ_DT_COUNT || !rows[t].name)
        return 0;
    if (blck)
        *blck = rows[t].blck;
    if (type_size)
        *type_size = rows[t].size;
    return 1;
}

const char *kz_dtype_name(uint32_t t)
{
    return t < KZ_DT_COUNT ? rows[t].name : NULL;
}

int kz_dtype_from_name(const char *name)
{
    for (int t = 0; t < KZ_DT_COUNT; t++)
        if (rows[t].name && strcasecmp(rows[t].name, name) == 0)
            return t;
    return -1;
}

size_t kz_dtype_row_size(uint32_t t, int64_t n)
{
    uint32_t b = 1, s = 0;
    if (!kz_dtype_info(t, &b, &s))
        return 0;
    return (size_t)(n / b) * s;
}
