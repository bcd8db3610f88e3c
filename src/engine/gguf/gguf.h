/* SPDX-License-Identifier: MIT
 * GGUF reader (versions 2 and 3) and writer.
 *
 * File layout, all integers little-endian:
 *   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv x { string key | u32 value_type | value }
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset }
 *   padding to `general.alignment` (u32, default 32)
 *   data section: tensor data at data_start + offset (offset % alignment == 0)
 * string = u64 length + bytes (no NUL). value types: 0 u8, 1 i8, 2 u16, 3 i16,
 * 4 u32, 5 i32, 6 f32, 7 bool (u8), 8 string, 9 array (u32 elem type, u64 n,
 * elements), 10 u64, 11 i64, 12 f64. (Version 1 used u32 counts; not read.)
 *
 * Invariants after a successful open: every key, string, array and tensor
 * lies inside the file; keys and tensor names are unique; every tensor's
 * data range is aligned, inside the data section and overlaps no other.
 * Nothing is read outside [base, base+size). Every rejection carries a
 * message that starts with the file's name and says what is wrong.
 *
 * Thread-safety: an open kz_gguf is immutable and may be read from many
 * threads. Pointers and slices it returns stay valid until kz_gguf_close.
 */
#ifndef KZ_GGUF_H
#define KZ_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"
#include "core/status.h"

enum kz_gguf_type {
    KZ_GGUF_U8 = 0,
    KZ_GGUF_I8 = 1,
    KZ_GGUF_U16 = 2,
    KZ_GGUF_I16 = 3,
    KZ_GGUF_U32 = 4,
    KZ_GGUF_I32 = 5,
    KZ_GGUF_F32 = 6,
    KZ_GGUF_BOOL = 7,
    KZ_GGUF_STRING = 8,
    KZ_GGUF_ARRAY = 9,
    KZ_GGUF_U64 = 10,
    KZ_GGUF_I64 = 11,
    KZ_GGUF_F64 = 12,
    KZ_GGUF_TYPE_COUNT = 13
};

#define KZ_GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define KZ_GGUF_DEFAULT_ALIGNMENT 32
#define KZ_GGUF_MAX_STRING (1u << 20)    /* 1 MiB */
#define KZ_GGUF_MAX_ALIGNMENT (1u << 20) /* 1 MiB */
#define KZ_GGUF_MAX_NAME 64              /* tensor name bytes */
#define KZ_GGUF_MAX_DIMS 4

struct kz_gguf;

struct kz_gguf_tensor {
    struct kz_slice name;
    uint32_t type;          /* enum kz_dtype */
    uint32_t n_dims;
    int64_t ne[KZ_GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
    uint64_t offset;        /* from the start of the data section */
    size_t nbytes;
    const void *data;       /* into the mapping */
};

/* Opens and validates `path`, mapping it read-only. On success *out owns the
 * mapping; free with kz_gguf_close. On failure *out is NULL and err says why
 * (the message starts with `path`). */
kz_status kz_gguf_open(const char *path, struct kz_gguf **out, struct kz_err *err);

/* Same, but the file is read into memory of its own (huge pages where the
 * system allows), for model weights that are streamed every token; the
 * checks, errors and ownership are those of kz_gguf_open. Metadata readers
 * (info, tokenizer) map instead: they touch little of the file. */
kz_status kz_gguf_load(const char *path, struct kz_gguf **out, struct kz_err *err);

/* Same checks on a caller-owned buffer that must outlive the handle (fuzzing,
 * tests). `name` is used in messages. */
kz_status kz_gguf_open_mem(const void *data, size_t size, const char *name,
                           struct kz_gguf **out, struct kz_err *err);

void kz_gguf_close(struct kz_gguf *g); /* NULL is a no-op */

const char *kz_gguf_name(const struct kz_gguf *g);   /* path or name given to open */
uint32_t kz_gguf_version(const struct kz_gguf *g);
uint32_t kz_gguf_alignment(const struct kz_gguf *g);
size_t kz_gguf_file_size(const struct kz_gguf *g);
size_t kz_gguf_data_offset(const struct kz_gguf *g); /* start of data section in the file */

/* ---- metadata ---------------------------------------------------------- */

size_t kz_gguf_n_kv(const struct kz_gguf *g);
/* Index of `key`, or -1 when absent. */
int64_t kz_gguf_find(const struct kz_gguf *g, const char *key);
struct kz_slice kz_gguf_kv_key(const struct kz_gguf *g, size_t i);
enum kz_gguf_type kz_gguf_kv_type(const struct kz_gguf *g, size_t i);

/* Typed getters. Return KZ_OK, KZ_ENOTFOUND (absent) or KZ_EPROTO (present
 * with an incompatible type; err names key and both types).
 * get_int accepts every integer type (and bool) whose value fits int64;
 * get_float accepts f32 and f64; get_str returns a slice into the file. */
kz_status kz_gguf_get_int(const struct kz_gguf *g, const char *key, int64_t *out, struct kz_err *err);
kz_status kz_gguf_get_float(const struct kz_gguf *g, const char *key, double *out, struct kz_err *err);
kz_status kz_gguf_get_bool(const struct kz_gguf *g, const char *key, int *out, struct kz_err *err);
kz_status kz_gguf_get_str(const struct kz_gguf *g, const char *key, struct kz_slice *out, struct kz_err *err);

/* Arrays. get_arr finds `key` and checks it is an array; elem_type and n
 * describe it. Element access by index (i < n, checked by KZ_ASSERT):
 * arr_str for string arrays; arr_int / arr_float for numeric arrays (any
 * integer type / f32 or f64; the caller has checked elem_type). */
kz_status kz_gguf_get_arr(const struct kz_gguf *g, const char *key, enum kz_gguf_type *elem_type,
                          uint64_t *n, struct kz_err *err);
struct kz_slice kz_gguf_arr_str(const struct kz_gguf *g, const char *key, uint64_t i);
int64_t kz_gguf_arr_int(const struct kz_gguf *g, const char *key, uint64_t i);
double kz_gguf_arr_float(const struct kz_gguf *g, const char *key, uint64_t i);

/* Same by kv index (faster in loops; key lookup is a hash probe anyway). */
struct kz_slice kz_gguf_kv_arr_str(const struct kz_gguf *g, size_t kv, uint64_t i);
int64_t kz_gguf_kv_arr_int(const struct kz_gguf *g, size_t kv, uint64_t i);
double kz_gguf_kv_arr_float(const struct kz_gguf *g, size_t kv, uint64_t i);
uint64_t kz_gguf_kv_arr_len(const struct kz_gguf *g, size_t kv);
enum kz_gguf_type kz_gguf_kv_arr_type(const struct kz_gguf *g, size_t kv);
/* Scalar value by index as text (for `kyozon info`, debugging); writes at most
 * size bytes incl. NUL. Arrays print as "[N x type]". */
void kz_gguf_kv_format(const struct kz_gguf *g, size_t kv, char *buf, size_t size);

const char *kz_gguf_type_name(enum kz_gguf_type t);

/* ---- tensors ----------------------------------------------------------- */

size_t kz_gguf_n_tensors(const struct kz_gguf *g);
const struct kz_gguf_tensor *kz_gguf_tensor(const struct kz_gguf *g, size_t i);
/* NULL when absent. */
const struct kz_gguf_tensor *kz_gguf_find_tensor(const struct kz_gguf *g, const char *name);

/* ---- writer ------------------------------------------------------------ */
/* Builds a GGUF v3 file in memory then writes it out atomically (temp file +
 * rename), so a crash never leaves a half-written model under the final name.
 * Values are copied; data pointers passed to add_tensor must stay valid until
 * kz_gguf_writer_write returns. */
struct kz_gguf_writer;

struct kz_gguf_writer *kz_gguf_writer_new(void);
void kz_gguf_writer_free(struct kz_gguf_writer *w);
kz_status kz_gguf_writer_set_u32(struct kz_gguf_writer *w, const char *key, uint32_t v);
kz_status kz_gguf_writer_set_i32(struct kz_gguf_writer *w, const char *key, int32_t v);
kz_status kz_gguf_writer_set_f32(struct kz_gguf_writer *w, const char *key, float v);
kz_status kz_gguf_writer_set_bool(struct kz_gguf_writer *w, const char *key, int v);
kz_status kz_gguf_writer_set_str(struct kz_gguf_writer *w, const char *key, const char *p, size_t len);
/* Array of n elements of scalar type t (not string/array) from raw little-endian bytes. */
kz_status kz_gguf_writer_set_arr(struct kz_gguf_writer *w, const char *key, enum kz_gguf_type t,
                                 const void *data, uint64_t n);
kz_status kz_gguf_writer_set_arr_str(struct kz_gguf_writer *w, const char *key,
                                     const struct kz_slice *strs, uint64_t n);
/* Copies every key/value of src (e.g. a vocabulary) except those whose key
 * starts with one of the NULL-terminated `skip_prefixes`. */
kz_status kz_gguf_writer_copy_kv(struct kz_gguf_writer *w, const struct kz_gguf *src,
                                 const char *const *skip_prefixes);
kz_status kz_gguf_writer_add_tensor(struct kz_gguf_writer *w, const char *name, uint32_t type,
                                    uint32_t n_dims, const int64_t *ne, const void *data);
kz_status kz_gguf_writer_write(struct kz_gguf_writer *w, const char *path, struct kz_err *err);
/* The serialized file in a new buffer (kz_free it); for tests and fuzz seeds. */
kz_status kz_gguf_writer_to_mem(struct kz_gguf_writer *w, void **out, size_t *out_size);

#endif
