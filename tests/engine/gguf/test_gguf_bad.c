/* SPDX-License-Identifier: MIT
 * GGUF reader on malformed files (RELIABILITY.md CF-1, "GGUF loader
 * validation"): one hand-made file per bug class, every prefix of small valid
 * files, truncated files on disk, and the valid edge cases next to each limit.
 *
 * Every bad file must be rejected with KZ_EPROTO, a message that starts with
 * the file's name and names the problem, and within 50 ms. Each file is
 * copied into a buffer of exactly its size, so a read one byte past the end
 * is an ASan report in the sanitizer build.
 *
 * To add a case: write a `static void mk_<id>(struct bb *b)` that appends the
 * file's bytes, add a row {id, mk_<id>, "substring the message must contain"}
 * to bad_cases[], then refresh the fuzz seeds with tools/gen_gguf_corpus.sh
 * (under ctest this test fails while tests/fuzz/corpora/gguf/ is out of date).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/gguf/gguf.h"
#include "t.h"

#define MAX_LOAD_MS 50.0

// --- byte builder -------------------------------------------------------------

/* A growing byte buffer; GGUF integers are written little-endian. */
struct bb {
    uint8_t *p;
    size_t len, cap;
};

static void bb_put(struct bb *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *np = kz_realloc(b->p, cap);
        if (!np) {
            fprintf(stderr, "test_gguf_bad: out of memory\n");
            exit(2);
        }
        b->p = np;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void bb_u8(struct bb *b, uint8_t v) { bb_put(b, &v, 1); }

static void bb_u16(struct bb *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    bb_put(b, x, 2);
}

static void bb_u32(struct bb *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    bb_put(b, x, 4);
}

static void bb_u64(struct bb *b, uint64_t v)
{
    bb_u32(b, (uint32_t)v);
    bb_u32(b, (uint32_t)(v >> 32));
}

static void bb_f32(struct bb *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    bb_u32(b, u);
}

static void bb_f64(struct bb *b, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    bb_u64(b, u);
}

static void bb_zeros(struct bb *b, size_t n)
{
    static const uint8_t z[64];
    for (; n > sizeof z; n -= sizeof z)
        bb_put(b, z, sizeof z);
    bb_put(b, z, n);
}

static void bb_pad(struct bb *b, size_t align)
{
    bb_zeros(b, (align - b->len % align) % align);
}

/* GGUF string: u64 length, then the bytes. */
static void bb_str(struct bb *b, const char *s)
{
    bb_u64(b, strlen(s));
    bb_put(b, s, strlen(s));
}

static void bb_hdr(struct bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    bb_put(b, "GGUF", 4);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}

/* Key and value type; the caller appends the value. */
static void bb_key(struct bb *b, const char *key, uint32_t type)
{
    bb_str(b, key);
    bb_u32(b, type);
}

static void bb_kv_u32(struct bb *b, const char *key, uint32_t v)
{
    bb_key(b, key, KZ_GGUF_U32);
    bb_u32(b, v);
}

static void bb_kv_str(struct bb *b, const char *key, const char *v)
{
    bb_key(b, key, KZ_GGUF_STRING);
    bb_str(b, v);
}

/* Array header: key, type 9, element type, count; the caller appends elements. */
static void bb_arr(struct bb *b, const char *key, uint32_t elem_type, uint64_t n)
{
    bb_key(b, key, KZ_GGUF_ARRAY);
    bb_u32(b, elem_type);
    bb_u64(b, n);
}

static void bb_tensor(struct bb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                      uint64_t offset)
{
    bb_str(b, name);
    bb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        bb_u64(b, ne[d]);
    bb_u32(b, type);
    bb_u64(b, offset);
}

/* Header with n_tensors and one kv, the start of most tensor cases. */
static void bb_model_hdr(struct bb *b, uint64_t n_tensors)
{
    bb_hdr(b, 3, n_tensors, 1);
    bb_kv_str(b, "general.architecture", "llama");
}

/* Padding to the default alignment, then n bytes of tensor data. */
static void bb_data(struct bb *b, size_t n)
{
    bb_pad(b, KZ_GGUF_DEFAULT_ALIGNMENT);
    bb_zeros(b, n);
}

#define NE(...) ((const uint64_t[]){__VA_ARGS__})

// --- header -------------------------------------------------------------------

static void mk_bad_magic(struct bb *b)
{
    bb_put(b, "GGML", 4);
    bb_u32(b, 3);
    bb_u64(b, 0);
    bb_u64(b, 0);
}

static void mk_version_1(struct bb *b) { bb_hdr(b, 1, 0, 0); }
static void mk_version_4(struct bb *b) { bb_hdr(b, 4, 0, 0); }

static void mk_short_header(struct bb *b)
{
    bb_hdr(b, 3, 0, 0);
    b->len = 23; /* one byte short of the fixed header */
}

static void mk_n_kv_too_many(struct bb *b)
{
    bb_hdr(b, 3, 0, 100);
    bb_kv_u32(b, "a.b", 1);
}

static void mk_n_kv_max(struct bb *b)
{
    bb_hdr(b, 3, 0, UINT64_MAX);
    bb_kv_u32(b, "a.b", 1);
}

/* Passes the up-front count check (39 bytes left >= 3 x 13) and runs out on
 * the third key. */
static void mk_n_kv_short(struct bb *b)
{
    bb_hdr(b, 3, 0, 3);
    bb_kv_u32(b, "a.b", 1);
    bb_kv_u32(b, "a.c", 2);
    bb_u8(b, 0);
}

static void mk_n_tensors_too_many(struct bb *b)
{
    bb_model_hdr(b, 1000);
    bb_tensor(b, "blk.0.w", 1, NE(8), KZ_DT_F32, 0);
    bb_data(b, 32);
}

static void mk_n_tensors_2e63(struct bb *b)
{
    bb_model_hdr(b, UINT64_C(1) << 63);
    bb_tensor(b, "blk.0.w", 1, NE(8), KZ_DT_F32, 0);
    bb_data(b, 32);
}

// --- strings ------------------------------------------------------------------

static void mk_key_past_end(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_u64(b, 100);
    bb_put(b, "general.name", 12);
}

static void mk_key_over_1mib(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_u64(b, KZ_GGUF_MAX_STRING + 1);
    bb_put(b, "general.name", 12);
}

static void mk_str_past_end(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_key(b, "general.name", KZ_GGUF_STRING); /* the value's length sits at offset 48 */
    bb_u64(b, 50);
    bb_put(b, "short", 5);
}

static void mk_str_over_1mib(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_key(b, "general.name", KZ_GGUF_STRING);
    bb_u64(b, KZ_GGUF_MAX_STRING + 1);
    bb_put(b, "short", 5);
}

static void mk_str_len_max(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_key(b, "general.name", KZ_GGUF_STRING);
    bb_u64(b, UINT64_MAX);
    bb_put(b, "short", 5);
}

// --- arrays -------------------------------------------------------------------

static void mk_arr_past_end(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_arr(b, "a.arr", KZ_GGUF_U32, 1000);
    bb_u32(b, 1);
    bb_u32(b, 2);
}

/* 2^62 x 4 bytes is 2^64: an unchecked product wraps to 0 and "fits". */
static void mk_arr_count_2e62_u32(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_arr(b, "a.arr", KZ_GGUF_U32, UINT64_C(1) << 62);
    bb_u32(b, 1);
}

static void mk_arr_count_2e61_u64(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_arr(b, "a.arr", KZ_GGUF_U64, UINT64_C(1) << 61);
    bb_u64(b, 1);
}

static void mk_arr_count_2e63_i16(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_arr(b, "a.arr", KZ_GGUF_I16, UINT64_C(1) << 63);
    bb_u16(b, 1);
}

static void mk_arr_str_count_huge(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_arr(b, "tokenizer.ggml.tokens", KZ_GGUF_STRING, UINT64_C(1) << 61);
    bb_str(b, "a");
}

static void mk_arr_str_elem_past_end(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_arr(b, "tokenizer.ggml.tokens", KZ_GGUF_STRING, 2);
    bb_str(b, "ab");
    bb_u64(b, 100);
    bb_put(b, "cd", 2);
}

static void mk_arr_type_truncated(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_key(b, "a.arr", KZ_GGUF_ARRAY);
    bb_put(b, "\1\2", 2);
}

static void mk_arr_len_truncated(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_key(b, "a.arr", KZ_GGUF_ARRAY);
    bb_u32(b, KZ_GGUF_U8);
    bb_put(b, "\1\2\3\4", 4);
}

static void mk_arr_elem_type_13(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_arr(b, "a.arr", KZ_GGUF_TYPE_COUNT, 1);
    bb_u64(b, 1);
}

static void mk_arr_elem_type_max(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_arr(b, "a.arr", UINT32_MAX, 1);
    bb_u64(b, 1);
}

static void mk_arr_nested(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_arr(b, "a.arr", KZ_GGUF_ARRAY, 1);
    bb_u32(b, KZ_GGUF_U8); /* what an inner array header would look like */
    bb_u64(b, 1);
    bb_u8(b, 7);
}

// --- values and keys ----------------------------------------------------------

static void mk_value_type_13(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_key(b, "general.name", KZ_GGUF_TYPE_COUNT);
    bb_u64(b, 0);
}

static void mk_value_type_2e31(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_key(b, "general.name", UINT32_C(1) << 31);
    bb_u64(b, 0);
}

static void mk_value_truncated(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_key(b, "general.size", KZ_GGUF_U64);
    bb_put(b, "\1\2\3", 3);
}

static void mk_value_type_truncated(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_str(b, "general.size");
    bb_put(b, "\1\2", 2);
}

static void mk_dup_key(struct bb *b)
{
    bb_hdr(b, 3, 0, 2);
    bb_kv_str(b, "general.architecture", "llama");
    bb_kv_u32(b, "general.architecture", 7);
}

static void mk_empty_key(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_kv_u32(b, "", 1);
}

// --- general.alignment ----------------------------------------------------------

static void mk_align_u64(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_key(b, "general.alignment", KZ_GGUF_U64);
    bb_u64(b, 32);
}

static void mk_align_0(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_kv_u32(b, "general.alignment", 0);
}

static void mk_align_48(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_kv_u32(b, "general.alignment", 48);
}

static void mk_align_2mib(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_kv_u32(b, "general.alignment", 2u << 20);
}

// --- tensor info ---------------------------------------------------------------

static void mk_tensor_ndims_0(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 0, NE(8), KZ_DT_F32, 0);
    bb_data(b, 32);
}

static void mk_tensor_ndims_5(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 5, NE(8, 1, 1, 1, 1), KZ_DT_F32, 0);
    bb_data(b, 32);
}

static void mk_tensor_dim_0(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 2, NE(8, 0), KZ_DT_F32, 0);
    bb_data(b, 32);
}

/* ne is u64 on disk and int64 in memory: 2^63 would turn negative. */
static void mk_tensor_dim_2e63(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 1, NE(UINT64_C(1) << 63), KZ_DT_F32, 0);
    bb_data(b, 32);
}

/* 65536^4 x 1 byte is exactly 2^64: wraps to 0 without a checked product. */
static void mk_tensor_dims_wrap_2e64(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 4, NE(65536, 65536, 65536, 65536), KZ_DT_I8, 0);
    bb_data(b, 32);
}

/* 2^62 x 4 bytes per F32 is 2^64 again, this time in the type-size step. */
static void mk_tensor_size_wrap_f32(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 1, NE(UINT64_C(1) << 62), KZ_DT_F32, 0);
    bb_data(b, 32);
}

static void mk_tensor_type_4(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 1, NE(32), 4, 0); /* retired Q4_2 */
    bb_data(b, 32);
}

static void mk_tensor_type_31(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 1, NE(32), 31, 0);
    bb_data(b, 32);
}

static void mk_tensor_type_200(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 1, NE(32), 200, 0);
    bb_data(b, 32);
}

static void mk_tensor_q4_0_ne33(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 2, NE(33, 2), KZ_DT_Q4_0, 0);
    bb_data(b, 64);
}

static void mk_tensor_q4_k_ne32(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 1, NE(32), KZ_DT_Q4_K, 0);
    bb_data(b, 160);
}

static void mk_tensor_name_65(struct bb *b)
{
    char name[66];
    memset(name, 'x', 65);
    name[65] = '\0';
    bb_model_hdr(b, 1);
    bb_tensor(b, name, 1, NE(8), KZ_DT_F32, 0);
    bb_data(b, 32);
}

static void mk_tensor_name_empty(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "", 1, NE(8), KZ_DT_F32, 0);
    bb_data(b, 32);
}

static void mk_tensor_name_past_end(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_u64(b, 100);
    bb_zeros(b, 40);
}

static void mk_tensor_dup_name(struct bb *b)
{
    bb_model_hdr(b, 2);
    bb_tensor(b, "blk.0.w", 1, NE(8), KZ_DT_F32, 0);
    bb_tensor(b, "blk.0.w", 1, NE(8), KZ_DT_F32, 32);
    bb_data(b, 64);
}

static void mk_tensor_info_truncated(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.attn_q.weight", 2, NE(8, 4), KZ_DT_F32, 0);
    b->len -= 4; /* half of the offset field */
}

/* The truncated tensor cases keep >= 32 bytes after the metadata so that the
 * tensor count passes its up-front check and the field read itself fails. */
#define LONG_NAME "blk.0.attn_output.weight"

static void mk_tensor_ndims_truncated(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_str(b, LONG_NAME);
    bb_put(b, "\1\0", 2);
}

static void mk_tensor_dim_truncated(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_str(b, LONG_NAME);
    bb_u32(b, 2);
    bb_u64(b, 8);
    bb_put(b, "\4\0\0\0", 4);
}

static void mk_tensor_type_truncated(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_str(b, LONG_NAME);
    bb_u32(b, 1);
    bb_u64(b, 8);
    bb_put(b, "\0\0", 2);
}

/* The tensor table is complete but the file ends before the aligned start
 * of the data section. */
static void mk_data_start_past_end(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 1, NE(8), KZ_DT_F32, 0);
    if (b->len % KZ_GGUF_DEFAULT_ALIGNMENT == 0)
        bb_zeros(b, 1); /* keep the start unaligned whatever the lengths above */
}

// --- tensor data layout ---------------------------------------------------------

static void mk_offset_misaligned(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 1, NE(8), KZ_DT_F32, 4);
    bb_data(b, 64);
}

static void mk_offset_misaligned_64(struct bb *b)
{
    bb_hdr(b, 3, 1, 1);
    bb_kv_u32(b, "general.alignment", 64);
    bb_tensor(b, "blk.0.w", 1, NE(8), KZ_DT_F32, 32);
    bb_pad(b, 64);
    bb_zeros(b, 128);
}

static void mk_offset_past_end(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 1, NE(8), KZ_DT_F32, 4096);
    bb_data(b, 32);
}

/* Far past the end: the message switches to KB and MB. */
static void mk_offset_past_end_kb(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 1, NE(8), KZ_DT_F32, 100 << 10);
    bb_data(b, 32);
}

static void mk_offset_past_end_mb(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 1, NE(8), KZ_DT_F32, 20 << 20);
    bb_data(b, 32);
}

static void mk_data_past_end(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.3.attn_q.weight", 2, NE(8, 4), KZ_DT_F32, 0); /* 128 bytes */
    bb_data(b, 32);
}

/* offset + nbytes is exactly 2^64. */
static void mk_offset_wrap_2e64(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 1, NE(8), KZ_DT_F32, UINT64_MAX - 31);
    bb_data(b, 32);
}

/* offset + nbytes fits in u64, but adding the data section's start does not. */
static void mk_offset_near_2e64(struct bb *b)
{
    bb_model_hdr(b, 1);
    bb_tensor(b, "blk.0.w", 1, NE(8), KZ_DT_F32, UINT64_MAX - 63);
    bb_data(b, 32);
}

static void mk_tensors_overlap(struct bb *b)
{
    bb_model_hdr(b, 2);
    bb_tensor(b, "blk.0.b", 1, NE(8), KZ_DT_F32, 32);
    bb_tensor(b, "blk.0.a", 1, NE(16), KZ_DT_F32, 0); /* bytes 0..63, over b's 32..63 */
    bb_data(b, 64);
}

static void mk_tensors_same_offset(struct bb *b)
{
    bb_model_hdr(b, 2);
    bb_tensor(b, "blk.0.a", 1, NE(8), KZ_DT_F32, 0);
    bb_tensor(b, "blk.0.b", 1, NE(8), KZ_DT_F32, 0);
    bb_data(b, 64);
}

// --- valid files ------------------------------------------------------------------

/* Every value type as a scalar and as an array, and tensors of several types.
 * The last tensor ends exactly at the end of the file, so every strict
 * prefix of this file is invalid. */
static void mk_all_types(struct bb *b)
{
    static const struct {
        const char *name;
        uint32_t type, n_dims;
        uint64_t ne[4];
        size_t nbytes;
    } ts[] = {
        {"token_embd.weight", KZ_DT_F32, 2, {8, 2, 1, 1}, 64},
        {"blk.0.attn_norm.weight", KZ_DT_F16, 1, {16, 1, 1, 1}, 32},
        {"blk.0.attn_q.weight", KZ_DT_Q4_0, 2, {32, 2, 1, 1}, 36},
        {"blk.0.attn_k.weight", KZ_DT_Q8_0, 1, {32, 1, 1, 1}, 34},
        {"blk.0.ffn_down.weight", KZ_DT_Q4_K, 1, {256, 1, 1, 1}, 144},
        {"blk.0.ffn_gate.weight", KZ_DT_Q6_K, 1, {256, 1, 1, 1}, 210},
        {"output.weight", KZ_DT_I32, 4, {2, 2, 2, 2}, 64},
    };
    size_t n_t = sizeof ts / sizeof ts[0];
    bb_hdr(b, 3, n_t, 27);
    bb_kv_str(b, "general.architecture", "llama");
    bb_kv_u32(b, "general.alignment", 32);
    bb_key(b, "t.u8", KZ_GGUF_U8);
    bb_u8(b, 200);
    bb_key(b, "t.i8", KZ_GGUF_I8);
    bb_u8(b, (uint8_t)-5);
    bb_key(b, "t.u16", KZ_GGUF_U16);
    bb_u16(b, 60000);
    bb_key(b, "t.i16", KZ_GGUF_I16);
    bb_u16(b, (uint16_t)-30000);
    bb_kv_u32(b, "t.u32", 4000000000u);
    bb_key(b, "t.i32", KZ_GGUF_I32);
    bb_u32(b, (uint32_t)-2000000000);
    bb_key(b, "t.f32", KZ_GGUF_F32);
    bb_f32(b, 1.5f);
    bb_key(b, "t.bool", KZ_GGUF_BOOL);
    bb_u8(b, 1);
    bb_key(b, "t.u64", KZ_GGUF_U64);
    bb_u64(b, (UINT64_C(1) << 63) + 5); /* above INT64_MAX: get_int must refuse it */
    bb_key(b, "t.i64", KZ_GGUF_I64);
    bb_u64(b, (uint64_t)-(INT64_C(1) << 62));
    bb_key(b, "t.f64", KZ_GGUF_F64);
    bb_f64(b, -0.25);
    bb_kv_str(b, "t.str", "h\xc3\xa9llo");
    bb_arr(b, "a.u8", KZ_GGUF_U8, 3);
    bb_put(b, "\1\2\3", 3);
    bb_arr(b, "a.i8", KZ_GGUF_I8, 2);
    bb_put(b, "\x7f\x80", 2);
    bb_arr(b, "a.u16", KZ_GGUF_U16, 2);
    bb_u16(b, 1);
    bb_u16(b, 65535);
    bb_arr(b, "a.i16", KZ_GGUF_I16, 1);
    bb_u16(b, (uint16_t)-2);
    bb_arr(b, "a.u32", KZ_GGUF_U32, 2);
    bb_u32(b, 7);
    bb_u32(b, UINT32_MAX);
    bb_arr(b, "a.i32", KZ_GGUF_I32, 1);
    bb_u32(b, (uint32_t)-3);
    bb_arr(b, "a.f32", KZ_GGUF_F32, 3);
    bb_f32(b, 0.5f);
    bb_u32(b, 0x7fc00000u); /* NaN: read as an integer it must not be UB */
    bb_f32(b, -1e30f);
    bb_arr(b, "a.bool", KZ_GGUF_BOOL, 2);
    bb_put(b, "\0\1", 2);
    bb_arr(b, "a.u64", KZ_GGUF_U64, 1);
    bb_u64(b, UINT64_MAX);
    bb_arr(b, "a.i64", KZ_GGUF_I64, 1);
    bb_u64(b, (uint64_t)INT64_MIN);
    bb_arr(b, "a.f64", KZ_GGUF_F64, 2);
    bb_f64(b, 2.5);
    bb_f64(b, 1e300);
    bb_arr(b, "tokenizer.ggml.tokens", KZ_GGUF_STRING, 3);
    bb_str(b, "a");
    bb_str(b, "");
    bb_str(b, "\xe2\x96\x81" "b");
    bb_arr(b, "a.empty", KZ_GGUF_U32, 0);
    uint64_t off = 0;
    for (size_t i = 0; i < n_t; i++) {
        bb_tensor(b, ts[i].name, ts[i].n_dims, ts[i].ne, ts[i].type, off);
        off += (ts[i].nbytes + 31) / 32 * 32;
    }
    bb_pad(b, 32);
    for (size_t i = 0; i < n_t; i++) {
        for (size_t j = 0; j < ts[i].nbytes; j++)
            bb_u8(b, (uint8_t)(i * 16 + j));
        bb_pad(b, 32);
    }
}

static void check_all_types(const struct kz_gguf *g)
{
    struct kz_err err = {{0}};
    int64_t iv = 0;
    double dv = 0;
    struct kz_slice s;
    T_EQ_INT(kz_gguf_n_kv(g), 27);
    T_EQ_INT(kz_gguf_get_int(g, "t.u8", &iv, &err), KZ_OK);
    T_EQ_INT(iv, 200);
    T_EQ_INT(kz_gguf_get_int(g, "t.i8", &iv, &err), KZ_OK);
    T_EQ_INT(iv, -5);
    T_EQ_INT(kz_gguf_get_int(g, "t.u16", &iv, &err), KZ_OK);
    T_EQ_INT(iv, 60000);
    T_EQ_INT(kz_gguf_get_int(g, "t.i16", &iv, &err), KZ_OK);
    T_EQ_INT(iv, -30000);
    T_EQ_INT(kz_gguf_get_int(g, "t.u32", &iv, &err), KZ_OK);
    T_EQ_INT(iv, 4000000000LL);
    T_EQ_INT(kz_gguf_get_int(g, "t.i32", &iv, &err), KZ_OK);
    T_EQ_INT(iv, -2000000000LL);
    T_EQ_INT(kz_gguf_get_int(g, "t.i64", &iv, &err), KZ_OK);
    T_EQ_INT(iv, -(INT64_C(1) << 62));
    T_EQ_INT(kz_gguf_get_int(g, "t.u64", &iv, &err), KZ_EPROTO);
    T_OK(strstr(err.msg, "out of range") != NULL, "u64 above INT64_MAX: %s", err.msg);
    T_EQ_INT(kz_gguf_get_float(g, "t.f32", &dv, &err), KZ_OK);
    T_OK(dv == 1.5, "f32 %g", dv);
    T_EQ_INT(kz_gguf_get_float(g, "t.f64", &dv, &err), KZ_OK);
    T_OK(dv == -0.25, "f64 %g", dv);
    T_EQ_INT(kz_gguf_get_str(g, "t.str", &s, &err), KZ_OK);
    T_OK(kz_slice_eq(s, "h\xc3\xa9llo"), "str");
    T_EQ_INT(kz_gguf_arr_int(g, "a.i8", 1), -128);
    T_EQ_INT(kz_gguf_arr_int(g, "a.u16", 1), 65535);
    T_EQ_INT(kz_gguf_arr_int(g, "a.i16", 0), -2);
    T_EQ_INT(kz_gguf_arr_int(g, "a.u32", 1), UINT32_MAX);
    T_EQ_INT(kz_gguf_arr_int(g, "a.i32", 0), -3);
    T_EQ_INT(kz_gguf_arr_int(g, "a.i64", 0), INT64_MIN);
    T_EQ_INT(kz_gguf_arr_int(g, "a.bool", 1), 1);
    /* float elements read as integers: NaN gives 0, out of range saturates */
    T_EQ_INT(kz_gguf_arr_int(g, "a.f32", 0), 0);
    T_EQ_INT(kz_gguf_arr_int(g, "a.f32", 1), 0);
    T_EQ_INT(kz_gguf_arr_int(g, "a.f32", 2), INT64_MIN);
    T_EQ_INT(kz_gguf_arr_int(g, "a.f64", 1), INT64_MAX);
    T_OK(kz_gguf_arr_float(g, "a.f64", 0) == 2.5, "f64 elem");
    T_OK(kz_gguf_arr_float(g, "a.u8", 2) == 3.0, "u8 elem as float");
    T_OK(kz_slice_eq(kz_gguf_arr_str(g, "tokenizer.ggml.tokens", 2), "\xe2\x96\x81" "b"), "str elem");
    uint64_t n = 99;
    T_EQ_INT(kz_gguf_get_arr(g, "a.empty", NULL, &n, &err), KZ_OK);
    T_EQ_INT(n, 0);
    T_EQ_INT(kz_gguf_n_tensors(g), 7);
    const struct kz_gguf_tensor *t = kz_gguf_find_tensor(g, "blk.0.ffn_gate.weight");
    T_OK(t && t->type == KZ_DT_Q6_K && t->nbytes == 210, "Q6_K tensor");
    T_OK(t && ((const uint8_t *)t->data)[1] == 5 * 16 + 1, "Q6_K data");
    t = kz_gguf_find_tensor(g, "output.weight");
    T_OK(t && t->ne[3] == 2 && t->nbytes == 64, "4-d tensor");
    T_OK(t && (const uint8_t *)t->data + t->nbytes == (const uint8_t *)kz_gguf_tensor(g, 0)->data -
                                                             kz_gguf_data_offset(g) + kz_gguf_file_size(g),
         "last tensor ends at the end of the file");
}

/* A version 2 file: same layout as version 3 for everything we read. */
static void mk_v2(struct bb *b)
{
    bb_hdr(b, 2, 1, 1);
    bb_kv_str(b, "general.architecture", "llama");
    bb_tensor(b, "blk.0.w", 1, NE(8), KZ_DT_F32, 0);
    bb_data(b, 32);
}

static void check_v2(const struct kz_gguf *g)
{
    T_EQ_INT(kz_gguf_version(g), 2);
    T_EQ_INT(kz_gguf_n_tensors(g), 1);
}

/* Metadata only (a vocabulary file), ending right after the last value with
 * no padding: accepted, with an empty data section. */
static void mk_metadata_only(struct bb *b)
{
    bb_hdr(b, 3, 0, 2);
    bb_kv_str(b, "tokenizer.ggml.model", "llama");
    bb_arr(b, "tokenizer.ggml.tokens", KZ_GGUF_STRING, 2);
    bb_str(b, "<s>");
    bb_str(b, "x");
}

static void check_metadata_only(const struct kz_gguf *g)
{
    T_EQ_INT(kz_gguf_n_tensors(g), 0);
    T_EQ_INT(kz_gguf_n_kv(g), 2);
    T_EQ_INT(kz_gguf_data_offset(g), kz_gguf_file_size(g));
}

/* Just the fixed header: no metadata, no tensors. */
static void mk_empty(struct bb *b) { bb_hdr(b, 3, 0, 0); }

static void check_empty(const struct kz_gguf *g)
{
    T_EQ_INT(kz_gguf_n_kv(g), 0);
    T_EQ_INT(kz_gguf_n_tensors(g), 0);
    T_EQ_INT(kz_gguf_find(g, "general.architecture"), -1);
}

/* Alignment 1, the smallest legal value: tensors may start at any byte. */
static void mk_align_1(struct bb *b)
{
    bb_hdr(b, 3, 2, 1);
    bb_kv_u32(b, "general.alignment", 1);
    bb_tensor(b, "blk.0.a", 1, NE(3), KZ_DT_I8, 0);
    bb_tensor(b, "blk.0.b", 1, NE(1), KZ_DT_I16, 3);
    bb_zeros(b, 5);
}

static void check_align_1(const struct kz_gguf *g)
{
    T_EQ_INT(kz_gguf_alignment(g), 1);
    const struct kz_gguf_tensor *t = kz_gguf_find_tensor(g, "blk.0.b");
    T_OK(t && t->offset == 3 && t->nbytes == 2, "tensor at an odd offset");
}

/* A string of exactly the 1 MiB limit. Too big for the seed corpus. */
static void mk_str_1mib(struct bb *b)
{
    bb_hdr(b, 3, 0, 1);
    bb_key(b, "general.license", KZ_GGUF_STRING);
    bb_u64(b, KZ_GGUF_MAX_STRING);
    size_t at = b->len;
    bb_zeros(b, KZ_GGUF_MAX_STRING);
    memset(b->p + at, 'L', KZ_GGUF_MAX_STRING);
}

static void check_str_1mib(const struct kz_gguf *g)
{
    struct kz_slice s = {0};
    struct kz_err err = {{0}};
    T_EQ_INT(kz_gguf_get_str(g, "general.license", &s, &err), KZ_OK);
    T_EQ_INT(s.len, KZ_GGUF_MAX_STRING);
    T_OK(s.len && s.p[s.len - 1] == 'L', "last byte");
}

// --- case tables --------------------------------------------------------------------

struct bad_case {
    const char *id;                /* subtest label; seed file cf1_<id>.seed */
    void (*build)(struct bb *b);
    const char *want;              /* the message must contain this */
};

static const struct bad_case bad_cases[] = {
    {"bad_magic", mk_bad_magic, "not a GGUF file (bad magic)"},
    {"version_1", mk_version_1, "GGUF version 1 is not supported"},
    {"version_4", mk_version_4, "GGUF version 4 is not supported"},
    {"short_header", mk_short_header, "file is 23 bytes, too small for a GGUF header"},
    {"n_kv_too_many", mk_n_kv_too_many, "header claims 100 metadata entries"},
    {"n_kv_max", mk_n_kv_max, "header claims 18446744073709551615 metadata entries"},
    {"n_kv_short", mk_n_kv_short, "truncated: metadata key needs 8 bytes"},
    {"n_tensors_too_many", mk_n_tensors_too_many, "header claims 1000 tensors"},
    {"n_tensors_2e63", mk_n_tensors_2e63, "header claims 9223372036854775808 tensors"},
    {"key_past_end", mk_key_past_end, "metadata key at offset 24 has length 100, past the end"},
    {"key_over_1mib", mk_key_over_1mib, "metadata key at offset 24 has length 1048577, limit is 1048576"},
    {"str_past_end", mk_str_past_end, "string value at offset 48 has length 50, past the end"},
    {"str_over_1mib", mk_str_over_1mib, "string value at offset 48 has length 1048577, limit is 1048576"},
    {"str_len_max", mk_str_len_max, "has length 18446744073709551615, limit is"},
    {"arr_past_end", mk_arr_past_end, "key 'a.arr': array of 1000 x u32 past the end"},
    {"arr_count_2e62_u32", mk_arr_count_2e62_u32, "array of 4611686018427387904 x u32 past the end"},
    {"arr_count_2e61_u64", mk_arr_count_2e61_u64, "array of 2305843009213693952 x u64 past the end"},
    {"arr_count_2e63_i16", mk_arr_count_2e63_i16, "array of 9223372036854775808 x i16 past the end"},
    {"arr_str_count_huge", mk_arr_str_count_huge, "array of 2305843009213693952 strings cannot fit"},
    {"arr_str_elem_past_end", mk_arr_str_elem_past_end, "(key 'tokenizer.ggml.tokens', element 1)"},
    {"arr_type_truncated", mk_arr_type_truncated, "truncated: array element type needs 4 bytes"},
    {"arr_len_truncated", mk_arr_len_truncated, "truncated: array length needs 8 bytes"},
    {"arr_elem_type_13", mk_arr_elem_type_13, "key 'a.arr': unknown array element type 13"},
    {"arr_elem_type_max", mk_arr_elem_type_max, "unknown array element type 4294967295"},
    {"arr_nested", mk_arr_nested, "key 'a.arr': nested arrays are not allowed"},
    {"value_type_13", mk_value_type_13, "key 'general.name': unknown value type 13"},
    {"value_type_2e31", mk_value_type_2e31, "unknown value type 2147483648"},
    {"value_truncated", mk_value_truncated, "truncated: value needs 8 bytes"},
    {"value_type_truncated", mk_value_type_truncated, "truncated: metadata value type needs 4 bytes"},
    {"dup_key", mk_dup_key, "duplicate metadata key 'general.architecture'"},
    {"empty_key", mk_empty_key, "metadata entry 0 has an empty key"},
    {"align_u64", mk_align_u64, "general.alignment has type u64, expected u32"},
    {"align_0", mk_align_0, "general.alignment 0 is not a power of two"},
    {"align_48", mk_align_48, "general.alignment 48 is not a power of two"},
    {"align_2mib", mk_align_2mib, "general.alignment 2097152 is not a power of two in 1..1048576"},
    {"tensor_ndims_0", mk_tensor_ndims_0, "tensor 'blk.0.w' has 0 dimensions (1..4 allowed)"},
    {"tensor_ndims_5", mk_tensor_ndims_5, "tensor 'blk.0.w' has 5 dimensions (1..4 allowed)"},
    {"tensor_dim_0", mk_tensor_dim_0, "tensor 'blk.0.w' dimension 1 is 0"},
    {"tensor_dim_2e63", mk_tensor_dim_2e63, "dimension 0 is 9223372036854775808"},
    {"tensor_dims_wrap_2e64", mk_tensor_dims_wrap_2e64, "tensor 'blk.0.w' size overflows"},
    {"tensor_size_wrap_f32", mk_tensor_size_wrap_f32, "tensor 'blk.0.w' size overflows"},
    {"tensor_type_4", mk_tensor_type_4, "tensor 'blk.0.w' has unknown type 4"},
    {"tensor_type_31", mk_tensor_type_31, "has unknown type 31"},
    {"tensor_type_200", mk_tensor_type_200, "has unknown type 200"},
    {"tensor_q4_0_ne33", mk_tensor_q4_0_ne33, "row length 33 is not a multiple of Q4_0's block size 32"},
    {"tensor_q4_k_ne32", mk_tensor_q4_k_ne32, "row length 32 is not a multiple of Q4_K's block size 256"},
    {"tensor_name_65", mk_tensor_name_65, "tensor 0 name length 65 is not in 1..64"},
    {"tensor_name_empty", mk_tensor_name_empty, "tensor 0 name length 0 is not in 1..64"},
    {"tensor_name_past_end", mk_tensor_name_past_end, "tensor name at offset 69 has length 100, past the end"},
    {"tensor_dup_name", mk_tensor_dup_name, "duplicate tensor name 'blk.0.w'"},
    {"tensor_info_truncated", mk_tensor_info_truncated, "truncated: tensor offset needs 8 bytes"},
    {"tensor_ndims_truncated", mk_tensor_ndims_truncated, "truncated: tensor n_dims needs 4 bytes"},
    {"tensor_dim_truncated", mk_tensor_dim_truncated, "truncated: tensor dimension needs 8 bytes"},
    {"tensor_type_truncated", mk_tensor_type_truncated, "truncated: tensor type needs 4 bytes"},
    {"data_start_past_end", mk_data_start_past_end, "truncated: data section would start at"},
    {"offset_misaligned", mk_offset_misaligned, "tensor 'blk.0.w' offset 4 is not a multiple of the alignment 32"},
    {"offset_misaligned_64", mk_offset_misaligned_64, "offset 32 is not a multiple of the alignment 64"},
    {"offset_past_end", mk_offset_past_end, "tensor 'blk.0.w' data ends at 4256 bytes, file is 160 bytes"},
    {"offset_past_end_kb", mk_offset_past_end_kb, "tensor 'blk.0.w' data ends at 100 KB, file is 160 bytes"},
    {"offset_past_end_mb", mk_offset_past_end_mb, "tensor 'blk.0.w' data ends at 20 MB, file is 160 bytes"},
    {"data_past_end", mk_data_past_end, "tensor 'blk.3.attn_q.weight' data ends at 256 bytes, file is 160 bytes"},
    {"offset_wrap_2e64", mk_offset_wrap_2e64, "tensor 'blk.0.w' data range overflows"},
    {"offset_near_2e64", mk_offset_near_2e64, "tensor 'blk.0.w' data range overflows"},
    {"tensors_overlap", mk_tensors_overlap, "tensors 'blk.0.a' and 'blk.0.b' overlap"},
    {"tensors_same_offset", mk_tensors_same_offset, "overlap"},
};

struct good_case {
    const char *id;
    void (*build)(struct bb *b);
    void (*check)(const struct kz_gguf *g);
    int seed; /* also a fuzz seed (small enough) */
};

static const struct good_case good_cases[] = {
    {"ok_all_types", mk_all_types, check_all_types, 1},
    {"ok_v2", mk_v2, check_v2, 1},
    {"ok_metadata_only", mk_metadata_only, check_metadata_only, 1},
    {"ok_empty", mk_empty, check_empty, 1},
    {"ok_align_1", mk_align_1, check_align_1, 1},
    {"ok_str_1mib", mk_str_1mib, check_str_1mib, 0},
};

// --- running ------------------------------------------------------------------------

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Opens an exact-size copy of bytes, so an over-read is an ASan report. */
static kz_status open_exact(const uint8_t *bytes, size_t len, const char *name, struct kz_gguf **g,
                            struct kz_err *err, uint8_t **copy, double *ms)
{
    *copy = kz_malloc(len);
    if (len)
        memcpy(*copy, bytes, len);
    double t0 = now_ms();
    kz_status rc = kz_gguf_open_mem(*copy, len, name, g, err);
    *ms = now_ms() - t0;
    return rc;
}

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* Seed `stem`.seed (malformed GGUF bytes; not named .gguf because they are
 * no models): with KZ_GGUF_CORPUS_OUT set, write the file there; under
 * ctest (KZ_SRC_DIR set) check the checked-in seed is byte-identical. Stems
 * are cf1_<id> for rejected files and ok_<id> for valid ones; other seeds in
 * the directory (inputs the fuzzer found) are not ours to check. */
static void sync_seed(const char *id, const uint8_t *bytes, size_t len)
{
    char path[512];
    const char *out = getenv("KZ_GGUF_CORPUS_OUT");
    if (out && *out) {
        snprintf(path, sizeof path, "%s/%s.seed", out, id);
        FILE *f = fopen(path, "wb");
        T_OK(f && fwrite(bytes, 1, len, f) == len, "write %s", path);
        if (f)
            fclose(f);
        return;
    }
    if (!getenv("KZ_SRC_DIR"))
        return;
    snprintf(path, sizeof path, "tests/fuzz/corpora/gguf/%s.seed", id);
    size_t have_len = 0;
    char *have = t_read_file(t_src_path(path), &have_len);
    T_OK(have && have_len == len && memcmp(have, bytes, len) == 0,
         "%s is missing or stale: run tools/gen_gguf_corpus.sh", path);
    kz_free(have);
}

static const struct bad_case *cur_bad;

static void run_bad(void)
{
    const struct bad_case *c = cur_bad;
    struct bb b = {0};
    c->build(&b);
    T_OK(b.len <= 64 * 1024, "%s: seed is %zu bytes", c->id, b.len);
    char name[96], prefix[100];
    snprintf(name, sizeof name, "%s.gguf", c->id);
    snprintf(prefix, sizeof prefix, "%s: ", name);
    struct kz_gguf *g = (struct kz_gguf *)(uintptr_t)1; /* non-NULL sentinel: open must clear it */
    struct kz_err err = {{0}};
    uint8_t *copy;
    double ms;
    kz_status rc = open_exact(b.p, b.len, name, &g, &err, &copy, &ms);
    T_EQ_INT(rc, KZ_EPROTO);
    T_OK(g == NULL, "%s: handle cleared on failure", c->id);
    T_OK(starts_with(err.msg, prefix), "%s: message starts with the file name: %s", c->id, err.msg);
    T_OK(strstr(err.msg, c->want) != NULL, "%s: message \"%s\" lacks \"%s\"", c->id, err.msg, c->want);
    T_OK(ms < MAX_LOAD_MS, "%s: rejected in %.2f ms", c->id, ms);
    if (rc == KZ_OK)
        kz_gguf_close(g);
    char seed[96];
    snprintf(seed, sizeof seed, "cf1_%s", c->id);
    sync_seed(seed, b.p, b.len);
    kz_free(copy);
    kz_free(b.p);
}

static const struct good_case *cur_good;

static void run_good(void)
{
    const struct good_case *c = cur_good;
    struct bb b = {0};
    c->build(&b);
    struct kz_gguf *g;
    struct kz_err err = {{0}};
    uint8_t *copy;
    double ms;
    kz_status rc = open_exact(b.p, b.len, c->id, &g, &err, &copy, &ms);
    T_OK(rc == KZ_OK, "%s: %s", c->id, err.msg);
    T_OK(ms < MAX_LOAD_MS, "%s: opened in %.2f ms", c->id, ms);
    if (rc == KZ_OK) {
        c->check(g);
        kz_gguf_close(g);
    }
    if (c->seed) {
        T_OK(b.len <= 64 * 1024, "%s: seed is %zu bytes", c->id, b.len);
        sync_seed(c->id, b.p, b.len);
    }
    kz_free(copy);
    kz_free(b.p);
}

/* A truncated file is the commonest corruption. Of a file whose last tensor
 * ends at its last byte, every strict prefix must be rejected cleanly. */
static void every_prefix_rejected(void)
{
    struct bb b = {0};
    mk_all_types(&b);
    static const char *const kinds[] = {"too small", "truncated", "past the end", "cannot", "data ends at"};
    double worst = 0;
    int bad = 0;
    for (size_t len = 0; len < b.len && bad < 5; len++) {
        struct kz_gguf *g;
        struct kz_err err = {{0}};
        uint8_t *copy;
        double ms;
        kz_status rc = open_exact(b.p, len, "prefix.gguf", &g, &err, &copy, &ms);
        int kind = 0;
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            kind |= strstr(err.msg, kinds[k]) != NULL;
        int ok = rc == KZ_EPROTO && g == NULL && starts_with(err.msg, "prefix.gguf: ") && kind;
        T_OK(ok, "prefix of %zu/%zu bytes: rc %d: %s", len, b.len, (int)rc, err.msg);
        bad += !ok;
        if (rc == KZ_OK)
            kz_gguf_close(g);
        if (ms > worst)
            worst = ms;
        kz_free(copy);
    }
    T_OK(worst < MAX_LOAD_MS, "slowest prefix took %.2f ms", worst);
    kz_free(b.p);
}

/* Metadata-only file padded like the writer pads: a prefix is valid exactly
 * when it holds every key/value, whether or not the padding is there. */
static void metadata_prefixes(void)
{
    struct bb b = {0};
    mk_metadata_only(&b);
    size_t kv_end = b.len;
    bb_pad(&b, KZ_GGUF_DEFAULT_ALIGNMENT);
    int bad = 0;
    for (size_t len = 0; len <= b.len && bad < 5; len++) {
        struct kz_gguf *g;
        struct kz_err err = {{0}};
        uint8_t *copy;
        double ms;
        kz_status rc = open_exact(b.p, len, "vocab.gguf", &g, &err, &copy, &ms);
        int ok;
        if (len < kv_end)
            ok = rc == KZ_EPROTO && g == NULL && starts_with(err.msg, "vocab.gguf: ");
        else
            ok = rc == KZ_OK && kz_gguf_n_kv(g) == 2 && kz_gguf_data_offset(g) <= len;
        T_OK(ok, "prefix of %zu/%zu bytes (metadata ends at %zu): rc %d: %s", len, b.len, kv_end, (int)rc, err.msg);
        bad += !ok;
        if (rc == KZ_OK)
            kz_gguf_close(g);
        kz_free(copy);
    }
    kz_free(b.p);
}

static int write_file(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int rc = fwrite(p, 1, len, f) == len ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

typedef kz_status (*open_fn)(const char *path, struct kz_gguf **out, struct kz_err *err);

/* The file paths, mapped (kz_gguf_open) and read into memory (kz_gguf_load):
 * a truncated copy on disk, a file too small for the header, and a file
 * that shrinks after it was opened (reopening must fail cleanly; the old
 * mapping or copy is only released, never read). */
static void truncated_on_disk_with(open_fn open_path)
{
    struct bb b = {0};
    mk_all_types(&b);
    char full[512], cut[512], tiny[512];
    snprintf(full, sizeof full, "%s/full.gguf", t_tmpdir());
    snprintf(cut, sizeof cut, "%s/cut.gguf", t_tmpdir());
    snprintf(tiny, sizeof tiny, "%s/tiny.gguf", t_tmpdir());
    T_OK(write_file(full, b.p, b.len) == 0, "write %s", full);
    T_OK(write_file(cut, b.p, b.len - 16) == 0, "write %s", cut);
    T_OK(write_file(tiny, b.p, 10) == 0, "write %s", tiny);

    struct kz_gguf *g;
    struct kz_err err = {{0}};
    double t0 = now_ms();
    kz_status rc = open_path(cut, &g, &err);
    double ms = now_ms() - t0;
    T_EQ_INT(rc, KZ_EPROTO);
    T_OK(g == NULL, "cleared");
    T_OK(starts_with(err.msg, cut), "names the path: %s", err.msg);
    T_OK(strstr(err.msg, "tensor 'output.weight' data ends at") != NULL, "says what is cut: %s", err.msg);
    T_OK(ms < MAX_LOAD_MS, "rejected in %.2f ms", ms);

    rc = open_path(tiny, &g, &err);
    T_EQ_INT(rc, KZ_EPROTO);
    T_OK(starts_with(err.msg, tiny) && strstr(err.msg, "too small for a GGUF header"), "%s", err.msg);

    rc = open_path(t_tmpdir(), &g, &err);
    T_EQ_INT(rc, KZ_EIO);
    T_OK(starts_with(err.msg, t_tmpdir()) && strstr(err.msg, "not a regular file"), "%s", err.msg);

    struct kz_gguf *first;
    rc = open_path(full, &first, &err);
    T_OK(rc == KZ_OK && strcmp(kz_gguf_name(first), full) == 0, "open full: %s", err.msg);
    T_OK(truncate(full, (off_t)(b.len - 100)) == 0, "truncate %s", full);
    rc = open_path(full, &g, &err);
    T_EQ_INT(rc, KZ_EPROTO);
    T_OK(starts_with(err.msg, full) && strstr(err.msg, "data ends at"), "%s", err.msg);
    kz_gguf_close(first);

    unlink(full);
    unlink(cut);
    unlink(tiny);
    kz_free(b.p);
}

static void truncated_on_disk(void) { truncated_on_disk_with(kz_gguf_open); }
static void truncated_on_disk_loaded(void) { truncated_on_disk_with(kz_gguf_load); }

/* A loaded file holds the same bytes where the mapped one does (a short
 * or misplaced read would not). */
static void loaded_matches_mapped(void)
{
    struct bb b = {0};
    mk_all_types(&b);
    char path[512];
    snprintf(path, sizeof path, "%s/same.gguf", t_tmpdir());
    T_OK(write_file(path, b.p, b.len) == 0, "write %s", path);
    struct kz_gguf *gm = NULL, *gl = NULL;
    struct kz_err err = {{0}};
    T_EQ_INT(kz_gguf_open(path, &gm, &err), KZ_OK);
    T_EQ_INT(kz_gguf_load(path, &gl, &err), KZ_OK);
    if (gm && gl) {
        T_EQ_INT((int)kz_gguf_n_tensors(gl), (int)kz_gguf_n_tensors(gm));
        T_OK(kz_gguf_n_tensors(gl) > 0, "has tensors");
        for (size_t i = 0; i < kz_gguf_n_tensors(gm); i++) {
            const struct kz_gguf_tensor *tm = kz_gguf_tensor(gm, i), *tl = kz_gguf_tensor(gl, i);
            T_OK(tm->nbytes == tl->nbytes && memcmp(tm->data, tl->data, tm->nbytes) == 0, "tensor %zu bytes", i);
        }
    }
    kz_gguf_close(gm);
    kz_gguf_close(gl);
    T_EQ_INT(kz_gguf_load("/nonexistent/x.gguf", &gl, &err), KZ_ENOTFOUND);
    T_OK(gl == NULL, "cleared");
    unlink(path);
    kz_free(b.p);
}

/* The exact wording users see for the commonest corruption. */
static void data_past_end_message(void)
{
    struct bb b = {0};
    mk_data_past_end(&b);
    struct kz_gguf *g;
    struct kz_err err = {{0}};
    T_EQ_INT(kz_gguf_open_mem(b.p, b.len, "model.gguf", &g, &err), KZ_EPROTO);
    T_EQ_STR(err.msg, "model.gguf: tensor 'blk.3.attn_q.weight' data ends at 256 bytes, file is 160 bytes "
                      "(truncated or corrupt)");
    kz_free(b.p);
}

/* A writer-made file is a seed too: the fuzzer starts from what we emit. */
static void writer_seed(void)
{
    struct kz_gguf_writer *w = kz_gguf_writer_new();
    T_OK(w != NULL, "writer");
    if (!w)
        return;
    kz_gguf_writer_set_str(w, "general.architecture", "llama", 5);
    kz_gguf_writer_set_u32(w, "llama.block_count", 1);
    kz_gguf_writer_set_i32(w, "test.i32", -7);
    kz_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    kz_gguf_writer_set_bool(w, "test.bool", 0);
    struct kz_slice toks[4] = {{"<unk>", 5}, {"<s>", 3}, {"</s>", 4}, {"<0x0A>", 6}};
    kz_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
    int32_t types[4] = {2, 3, 3, 6};
    kz_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", KZ_GGUF_I32, types, 4);
    static uint8_t data[256];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 37);
    T_EQ_INT(kz_gguf_writer_add_tensor(w, "token_embd.weight", KZ_DT_F16, 2, (const int64_t[]){8, 4}, data), KZ_OK);
    T_EQ_INT(kz_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", KZ_DT_Q8_0, 2, (const int64_t[]){32, 2}, data),
             KZ_OK);
    T_EQ_INT(kz_gguf_writer_add_tensor(w, "output_norm.weight", KZ_DT_F32, 1, (const int64_t[]){8}, data), KZ_OK);
    void *buf = NULL;
    size_t size = 0;
    T_EQ_INT(kz_gguf_writer_to_mem(w, &buf, &size), KZ_OK);
    kz_gguf_writer_free(w);
    struct kz_gguf *g;
    struct kz_err err = {{0}};
    kz_status rc = kz_gguf_open_mem(buf, size, "writer.gguf", &g, &err);
    T_OK(rc == KZ_OK, "%s", err.msg);
    if (rc == KZ_OK) {
        const struct kz_gguf_tensor *t = kz_gguf_find_tensor(g, "blk.0.attn_q.weight");
        T_OK(t && t->nbytes == 68 && memcmp(t->data, data, 68) == 0, "Q8_0 data");
        kz_gguf_close(g);
    }
    sync_seed("ok_writer", buf, size);
    kz_free(buf);
}

/* Out of memory at each allocation of an open in turn (and every one after
 * it): each must end in KZ_ENOMEM with a named message and free what it
 * took (LeakSanitizer checks at exit in the sanitizer build), until the open
 * needs fewer allocations than the failure point and succeeds. */
static void oom_every_allocation(void)
{
    struct bb b = {0};
    mk_all_types(&b);
    int succeeded = 0;
    for (long k = 1; k <= 64 && !succeeded; k++) {
        struct kz_gguf *g = NULL;
        struct kz_err err = {{0}};
        kz_alloc_fail_after(k);
        kz_status rc = kz_gguf_open_mem(b.p, b.len, "oom.gguf", &g, &err);
        kz_alloc_fail_after(0);
        if (rc == KZ_OK) {
            succeeded = 1;
            T_EQ_INT(kz_gguf_n_tensors(g), 7);
            kz_gguf_close(g);
            continue;
        }
        T_OK(rc == KZ_ENOMEM && g == NULL, "failing allocation %ld: rc %d", k, (int)rc);
        T_OK(starts_with(err.msg, "oom.gguf: ") && strstr(err.msg, "out of memory"), "allocation %ld: %s", k,
             err.msg);
    }
    T_OK(succeeded, "open succeeds once allocations stop failing");
    kz_free(b.p);
}

/* The fuzz target's "no allocation above 64 MiB" oracle relies on the cap
 * aborting loudly; check that in a child process. */
static void alloc_cap_aborts(void)
{
    int fds[2];
    T_OK(pipe(fds) == 0, "pipe");
    fflush(stdout);
    pid_t pid = fork();
    T_OK(pid >= 0, "fork");
    if (pid == 0) {
        dup2(fds[1], 2);
        kz_alloc_set_limit((size_t)64 << 20);
        void *ok = kz_malloc((size_t)64 << 20); /* at the cap: allowed */
        kz_free(ok);
        void *big = kz_calloc(((size_t)64 << 20) / 8 + 1, 8);
        kz_free(big);
        _exit(0); /* not reached when the cap works */
    }
    close(fds[1]);
    char msg[256] = {0};
    size_t n = 0;
    while (n < sizeof msg - 1) {
        ssize_t r = read(fds[0], msg + n, sizeof msg - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    T_OK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "child aborted (status %d)", st);
    T_OK(strstr(msg, "67108872 bytes is above the limit of 67108864") != NULL, "message: %s", msg);
}

int main(void)
{
    /* t_subtest keeps the label only for the duration of the call */
    static char label[128];
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        cur_bad = &bad_cases[i];
        snprintf(label, sizeof label, "CF-1 %s", bad_cases[i].id);
        t_subtest(label, run_bad);
    }
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        cur_good = &good_cases[i];
        snprintf(label, sizeof label, "valid %s", good_cases[i].id);
        t_subtest(label, run_good);
    }
    t_subtest("CF-1 every prefix of a valid file is rejected", every_prefix_rejected);
    t_subtest("CF-1 metadata-only prefixes", metadata_prefixes);
    t_subtest("CF-1 truncated file on disk", truncated_on_disk);
    t_subtest("CF-1 truncated file on disk, loaded", truncated_on_disk_loaded);
    t_subtest("loaded file matches the mapped one", loaded_matches_mapped);
    t_subtest("CF-1 data-past-end message", data_past_end_message);
    t_subtest("valid writer-made file", writer_seed);
    t_subtest("out of memory at every allocation", oom_every_allocation);
    t_subtest("FZ-5 allocation cap aborts", alloc_cap_aborts);
    return t_done();
}
