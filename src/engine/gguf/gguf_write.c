/* SPDX-License-Identifier: MIT
 * GGUF v3 writer: metadata and tensors are gathered in memory, then the whole
 * file is serialized and written to a temporary file that is renamed into
 * place, so readers never see a partial model under the final name.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/gguf/gguf.h"

struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int oom;
};

static void wb_put(struct wbuf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *np = kz_realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void wb_u32(struct wbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    wb_put(b, x, 4);
}

static void wb_u64(struct wbuf *b, uint64_t v)
{
    wb_u32(b, (uint32_t)v);
    wb_u32(b, (uint32_t)(v >> 32));
}

static void wb_str(struct wbuf *b, const char *p, size_t len)
{
    wb_u64(b, len);
    wb_put(b, p, len);
}

struct wtensor {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[KZ_GGUF_MAX_DIMS];
    const void *data;
    size_t nbytes;
};

struct kz_gguf_writer {
    struct wbuf kv;    /* serialized key/value entries */
    uint64_t n_kv;
    uint32_t alignment;
    struct wtensor *t;
    size_t n_t, cap_t;
};

struct kz_gguf_writer *kz_gguf_writer_new(void)
{
    struct kz_gguf_writer *w = kz_calloc(1, sizeof *w);
    if (w)
        w->alignment = KZ_GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void kz_gguf_writer_free(struct kz_gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_t; i++)
        kz_free(w->t[i].name);
    kz_free(w->t);
    kz_free(w->kv.p);
    kz_free(w);
}

static kz_status kv_head(struct kz_gguf_writer *w, const char *key, enum kz_gguf_type t)
{
    wb_str(&w->kv, key, strlen(key));
    wb_u32(&w->kv, (uint32_t)t);
    w->n_kv++;
    return w->kv.oom ? KZ_ENOMEM : KZ_OK;
}

kz_status kz_gguf_writer_set_u32(struct kz_gguf_writer *w, const char *key, uint32_t v)
{
    kv_head(w, key, KZ_GGUF_U32);
    wb_u32(&w->kv, v);
    if (strcmp(key, "general.alignment") == 0 && v && !(v & (v - 1)))
        w->alignment = v;
    return w->kv.oom ? KZ_ENOMEM : KZ_OK;
}

kz_status kz_gguf_writer_set_i32(struct kz_gguf_writer *w, const char *key, int32_t v)
{
    kv_head(w, key, KZ_GGUF_I32);
    wb_u32(&w->kv, (uint32_t)v);
    return w->kv.oom ? KZ_ENOMEM : KZ_OK;
}

kz_status kz_gguf_writer_set_f32(struct kz_gguf_writer *w, const char *key, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    kv_head(w, key, KZ_GGUF_F32);
    wb_u32(&w->kv, u);
    return w->kv.oom ? KZ_ENOMEM : KZ_OK;
}

kz_status kz_gguf_writer_set_bool(struct kz_gguf_writer *w, const char *key, int v)
{
    uint8_t b = v ? 1 : 0;
    kv_head(w, key, KZ_GGUF_BOOL);
    wb_put(&w->kv, &b, 1);
    return w->kv.oom ? KZ_ENOMEM : KZ_OK;
}

kz_status kz_gguf_writer_set_str(struct kz_gguf_writer *w, const char *key, const char *p, size_t len)
{
    kv_head(w, key, KZ_GGUF_STRING);
    wb_str(&w->kv, p, len);
    return w->kv.oom ? KZ_ENOMEM : KZ_OK;
}

static size_t elem_size(enum kz_gguf_type t)
{
    switch (t) {
    case KZ_GGUF_U8: case KZ_GGUF_I8: case KZ_GGUF_BOOL: return 1;
    case KZ_GGUF_U16: case KZ_GGUF_I16: return 2;
    case KZ_GGUF_U32: case KZ_GGUF_I32: case KZ_GGUF_F32: return 4;
    case KZ_GGUF_U64: case KZ_GGUF_I64: case KZ_GGUF_F64: return 8;
    default: return 0;
    }
}

kz_status kz_gguf_writer_set_arr(struct kz_gguf_writer *w, const char *key, enum kz_gguf_type t, const void *data,
                                 uint64_t n)
{
    size_t es = elem_size(t);
    if (!es)
        return KZ_EINVAL;
    kv_head(w, key, KZ_GGUF_ARRAY);
    wb_u32(&w->kv, (uint32_t)t);
    wb_u64(&w->kv, n);
    wb_put(&w->kv, data, (size_t)n * es); /* host is little-endian (x86-64, aarch64) */
    return w->kv.oom ? KZ_ENOMEM : KZ_OK;
}

kz_status kz_gguf_writer_set_arr_str(struct kz_gguf_writer *w, const char *key, const struct kz_slice *strs,
                                     uint64_t n)
{
    kv_head(w, key, KZ_GGUF_ARRAY);
    wb_u32(&w->kv, KZ_GGUF_STRING);
    wb_u64(&w->kv, n);
    for (uint64_t i = 0; i < n; i++)
        wb_str(&w->kv, strs[i].p, strs[i].len);
    return w->kv.oom ? KZ_ENOMEM : KZ_OK;
}

static int has_prefix(struct kz_slice key, const char *const *prefixes)
{
    for (; prefixes && *prefixes; prefixes++) {
        size_t n = strlen(*prefixes);
        if (key.len >= n && memcmp(key.p, *prefixes, n) == 0)
            return 1;
    }
    return 0;
}

kz_status kz_gguf_writer_copy_kv(struct kz_gguf_writer *w, const struct kz_gguf *src,
                                 const char *const *skip_prefixes)
{
    char key[KZ_GGUF_MAX_STRING < 4096 ? KZ_GGUF_MAX_STRING : 4096];
    for (size_t i = 0; i < kz_gguf_n_kv(src); i++) {
        struct kz_slice k = kz_gguf_kv_key(src, i);
        if (has_prefix(k, skip_prefixes) || k.len >= sizeof key)
            continue;
        memcpy(key, k.p, k.len);
        key[k.len] = '\0';
        enum kz_gguf_type t = kz_gguf_kv_type(src, i);
        kz_status rc = KZ_OK;
        if (t == KZ_GGUF_STRING) {
            struct kz_slice s;
            kz_gguf_get_str(src, key, &s, NULL);
            rc = kz_gguf_writer_set_str(w, key, s.p, s.len);
        } else if (t == KZ_GGUF_ARRAY) {
            enum kz_gguf_type et = kz_gguf_kv_arr_type(src, i);
            uint64_t n = kz_gguf_kv_arr_len(src, i);
            kv_head(w, key, KZ_GGUF_ARRAY);
            wb_u32(&w->kv, (uint32_t)et);
            wb_u64(&w->kv, n);
            for (uint64_t j = 0; j < n; j++) {
                if (et == KZ_GGUF_STRING) {
                    struct kz_slice s = kz_gguf_kv_arr_str(src, i, j);
                    wb_str(&w->kv, s.p, s.len);
                } else if (et == KZ_GGUF_F32) {
                    float f = (float)kz_gguf_kv_arr_float(src, i, j);
                    wb_put(&w->kv, &f, 4);
                } else if (et == KZ_GGUF_F64) {
                    double d = kz_gguf_kv_arr_float(src, i, j);
                    wb_put(&w->kv, &d, 8);
                } else {
                    int64_t v = kz_gguf_kv_arr_int(src, i, j);
                    wb_put(&w->kv, &v, elem_size(et)); /* little-endian truncation */
                }
            }
            rc = w->kv.oom ? KZ_ENOMEM : KZ_OK;
        } else {
            int64_t iv = 0;
            double fv = 0;
            int bv = 0;
            switch (t) {
            case KZ_GGUF_F32: kz_gguf_get_float(src, key, &fv, NULL); rc = kz_gguf_writer_set_f32(w, key, (float)fv); break;
            case KZ_GGUF_BOOL: kz_gguf_get_bool(src, key, &bv, NULL); rc = kz_gguf_writer_set_bool(w, key, bv); break;
            case KZ_GGUF_U32: kz_gguf_get_int(src, key, &iv, NULL); rc = kz_gguf_writer_set_u32(w, key, (uint32_t)iv); break;
            case KZ_GGUF_I32: kz_gguf_get_int(src, key, &iv, NULL); rc = kz_gguf_writer_set_i32(w, key, (int32_t)iv); break;
            default: {
                /* other scalar widths: copy the raw value */
                size_t es = elem_size(t);
                if (t == KZ_GGUF_F64) {
                    kz_gguf_get_float(src, key, &fv, NULL);
                    kv_head(w, key, t);
                    wb_put(&w->kv, &fv, 8);
                } else {
                    kz_gguf_get_int(src, key, &iv, NULL);
                    kv_head(w, key, t);
                    wb_put(&w->kv, &iv, es);
                }
                rc = w->kv.oom ? KZ_ENOMEM : KZ_OK;
            }
            }
        }
        if (rc)
            return rc;
    }
    return KZ_OK;
}

kz_status kz_gguf_writer_add_tensor(struct kz_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                    const int64_t *ne, const void *data)
{
    uint32_t blck, ts;
    if (!kz_dtype_info(type, &blck, &ts) || n_dims < 1 || n_dims > KZ_GGUF_MAX_DIMS || ne[0] % blck)
        return KZ_EINVAL;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 16;
        struct wtensor *nt = kz_realloc(w->t, cap * sizeof *nt);
        if (!nt)
            return KZ_ENOMEM;
        w->t = nt;
        w->cap_t = cap;
    }
    struct wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = kz_strdup(name);
    if (!t->name)
        return KZ_ENOMEM;
    t->type = type;
    t->n_dims = n_dims;
    size_t nb = (size_t)(ne[0] / blck) * ts;
    for (uint32_t d = 0; d < KZ_GGUF_MAX_DIMS; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    for (uint32_t d = 1; d < n_dims; d++)
        nb *= (size_t)ne[d];
    t->nbytes = nb;
    t->data = data;
    w->n_t++;
    return KZ_OK;
}

static size_t pad_to(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Everything before the data section: header, metadata, tensor infos, padding. */
static kz_status serialize_header(struct kz_gguf_writer *w, struct wbuf *b)
{
    static const uint8_t zeros[64];
    wb_u32(b, KZ_GGUF_MAGIC);
    wb_u32(b, 3);
    wb_u64(b, w->n_t);
    wb_u64(b, w->n_kv);
    wb_put(b, w->kv.p, w->kv.len);
    size_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        struct wtensor *t = &w->t[i];
        wb_str(b, t->name, strlen(t->name));
        wb_u32(b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            wb_u64(b, (uint64_t)t->ne[d]);
        wb_u32(b, t->type);
        wb_u64(b, off);
        off = pad_to(off + t->nbytes, w->alignment);
    }
    while (b->len % w->alignment && !b->oom)
        wb_put(b, zeros, 1);
    return (b->oom || w->kv.oom) ? KZ_ENOMEM : KZ_OK;
}

static size_t pad_len(size_t n, size_t a) { return pad_to(n, a) - n; }

kz_status kz_gguf_writer_to_mem(struct kz_gguf_writer *w, void **out, size_t *out_size)
{
    struct wbuf b = {0};
    static const uint8_t zeros[KZ_GGUF_MAX_ALIGNMENT > 4096 ? 4096 : KZ_GGUF_MAX_ALIGNMENT];
    kz_status rc = serialize_header(w, &b);
    for (size_t i = 0; i < w->n_t && !rc; i++) {
        wb_put(&b, w->t[i].data, w->t[i].nbytes);
        size_t pad = pad_len(w->t[i].nbytes, w->alignment);
        while (pad && !b.oom) {
            size_t n = pad < sizeof zeros ? pad : sizeof zeros;
            wb_put(&b, zeros, n);
            pad -= n;
        }
    }
    if (rc || b.oom) {
        kz_free(b.p);
        return KZ_ENOMEM;
    }
    *out = b.p;
    *out_size = b.len;
    return KZ_OK;
}

/* Streams the header and then each tensor's data straight from the caller's
 * buffers, so writing a multi-GB model needs no second copy in memory. */
kz_status kz_gguf_writer_write(struct kz_gguf_writer *w, const char *path, struct kz_err *err)
{
    static const uint8_t zeros[4096];
    struct wbuf b = {0};
    kz_status rc = serialize_header(w, &b);
    if (rc) {
        kz_free(b.p);
        return kz_err_set(err, rc, "%s: out of memory serializing GGUF", path);
    }
    size_t plen = strlen(path);
    char *tmp = kz_malloc(plen + 16);
    FILE *f = NULL;
    if (!tmp) {
        rc = kz_err_set(err, KZ_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    snprintf(tmp, plen + 16, "%s.part%d", path, (int)getpid() % 100000);
    f = fopen(tmp, "wb");
    if (!f) {
        rc = kz_err_set(err, KZ_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    int ok = fwrite(b.p, 1, b.len, f) == b.len;
    for (size_t i = 0; i < w->n_t && ok; i++) {
        ok = fwrite(w->t[i].data, 1, w->t[i].nbytes, f) == w->t[i].nbytes;
        size_t pad = pad_len(w->t[i].nbytes, w->alignment);
        while (ok && pad) {
            size_t n = pad < sizeof zeros ? pad : sizeof zeros;
            ok = fwrite(zeros, 1, n, f) == n;
            pad -= n;
        }
    }
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0)
        ok = 0;
    f = NULL;
    if (!ok) {
        rc = kz_err_set(err, KZ_EIO, "%s: write failed: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = kz_err_set(err, KZ_EIO, "%s: rename failed: %s", path, strerror(errno));
        unlink(tmp);
    }
out:
    kz_free(tmp);
    kz_free(b.p);
    return rc;
}
