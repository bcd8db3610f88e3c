/* SPDX-License-Identifier: MIT
 * GGUF reader: bounds-checked parse of the header, metadata and tensor table
 * of a memory-mapped or loaded file. See gguf.h for the layout and the invariants.
 *
 * Every length read from the file is checked against the bytes that remain
 * before it is used, with overflow-checked arithmetic, so a hostile file can
 * make us reject it but never read out of bounds or allocate more than a
 * small multiple of its own size.
 */
#include "engine/gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/assert.h"
#include "engine/gguf/dtype.h"

struct kv {
    struct kz_slice key;
    enum kz_gguf_type type;
    union {
        uint64_t u;
        int64_t i;
        double f;
        struct kz_slice str;
        struct {
            enum kz_gguf_type type;
            uint64_t n;
            const uint8_t *data;   /* numeric elements, packed, maybe unaligned */
            struct kz_slice *strs; /* string elements (owned), NULL otherwise */
        } arr;
    } v;
};

struct kz_gguf {
    char *name;
    const uint8_t *base;
    size_t size;
    int mapped;
    uint32_t version;
    uint32_t alignment;
    size_t data_offset;
    size_t n_kv;
    struct kv *kvs;
    size_t n_tensors;
    struct kz_gguf_tensor *tensors;
    /* open-addressing hash tables of indices+1 (0 = empty); cap a power of 2 */
    uint32_t *kv_index;
    size_t kv_cap;
    uint32_t *t_index;
    size_t t_cap;
};

/* Encoded size of a scalar value type; 0 for string, array and unknown. */
static size_t scalar_size(uint32_t t)
{
    switch (t) {
    case KZ_GGUF_U8: case KZ_GGUF_I8: case KZ_GGUF_BOOL: return 1;
    case KZ_GGUF_U16: case KZ_GGUF_I16: return 2;
    case KZ_GGUF_U32: case KZ_GGUF_I32: case KZ_GGUF_F32: return 4;
    case KZ_GGUF_U64: case KZ_GGUF_I64: case KZ_GGUF_F64: return 8;
    default: return 0;
    }
}

const char *kz_gguf_type_name(enum kz_gguf_type t)
{
    static const char *names[KZ_GGUF_TYPE_COUNT] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                    "bool", "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < KZ_GGUF_TYPE_COUNT ? names[t] : "unknown";
}

/* ---- little-endian loads from possibly unaligned memory ------------------ */

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }

static float ldf32(const uint8_t *p)
{
    uint32_t u = ld32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static double ldf64(const uint8_t *p)
{
    uint64_t u = ld64(p);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* ---- hashing -------------------------------------------------------------- */

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static size_t table_cap(size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    return cap;
}

/* Returns the slot for `name`: holding its index+1, or 0 (free) if absent. */
static size_t probe(const uint32_t *tab, size_t cap, const char *name, size_t len,
                    struct kz_slice (*key_of)(const struct kz_gguf *, size_t), const struct kz_gguf *g)
{
    size_t mask = cap - 1, i = (size_t)hash_bytes(name, len) & mask;
    while (tab[i]) {
        struct kz_slice k = key_of(g, tab[i] - 1);
        if (k.len == len && memcmp(k.p, name, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static struct kz_slice kv_key_of(const struct kz_gguf *g, size_t i) { return g->kvs[i].key; }
static struct kz_slice tensor_key_of(const struct kz_gguf *g, size_t i) { return g->tensors[i].name; }

/* ---- cursor ----------------------------------------------------------------- */

struct rd {
    const uint8_t *p;
    size_t size;
    size_t pos;
    const char *name; /* file name for messages */
    struct kz_err *err;
};

static size_t left(const struct rd *r) { return r->size - r->pos; }

static kz_status need(struct rd *r, size_t n, const char *what)
{
    if (n > left(r))
        return kz_err_set(r->err, KZ_EPROTO,
                          "%s: truncated: %s needs %zu bytes at offset %zu, file is %zu bytes",
                          r->name, what, n, r->pos, r->size);
    return KZ_OK;
}

static kz_status rd_u32(struct rd *r, uint32_t *out, const char *what)
{
    kz_status rc = need(r, 4, what);
    if (rc)
        return rc;
    *out = ld32(r->p + r->pos);
    r->pos += 4;
    return KZ_OK;
}

static kz_status rd_u64(struct rd *r, uint64_t *out, const char *what)
{
    kz_status rc = need(r, 8, what);
    if (rc)
        return rc;
    *out = ld64(r->p + r->pos);
    r->pos += 8;
    return KZ_OK;
}

static kz_status rd_str(struct rd *r, struct kz_slice *out, const char *what)
{
    uint64_t len;
    kz_status rc = rd_u64(r, &len, what);
    if (rc)
        return rc;
    if (len > KZ_GGUF_MAX_STRING)
        return kz_err_set(r->err, KZ_EPROTO, "%s: %s at offset %zu has length %" PRIu64 ", limit is %u",
                          r->name, what, r->pos - 8, len, KZ_GGUF_MAX_STRING);
    if (len > left(r))
        return kz_err_set(r->err, KZ_EPROTO,
                          "%s: %s at offset %zu has length %" PRIu64 ", past the end of the file (%zu bytes)",
                          r->name, what, r->pos - 8, len, r->size);
    out->p = (const char *)r->p + r->pos;
    out->len = (size_t)len;
    r->pos += (size_t)len;
    return KZ_OK;
}

/* A printable, bounded copy of a key or name for messages. */
static const char *show(struct kz_slice s, char *buf, size_t size)
{
    size_t n = s.len < size - 1 ? s.len : size - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    buf[n] = '\0';
    return buf;
}

/* ---- metadata --------------------------------------------------------------- */

static kz_status read_value(struct rd *r, struct kv *kv, const char *keytxt)
{
    kz_status rc;
    const uint8_t *p;
    switch (kv->type) {
    case KZ_GGUF_STRING:
        return rd_str(r, &kv->v.str, "string value");
    case KZ_GGUF_ARRAY: {
        uint32_t et;
        uint64_t n;
        rc = rd_u32(r, &et, "array element type");
        if (rc)
            return rc;
        rc = rd_u64(r, &n, "array length");
        if (rc)
            return rc;
        if (et == KZ_GGUF_ARRAY)
            return kz_err_set(r->err, KZ_EPROTO, "%s: key '%s': nested arrays are not allowed", r->name, keytxt);
        if (et >= KZ_GGUF_TYPE_COUNT)
            return kz_err_set(r->err, KZ_EPROTO, "%s: key '%s': unknown array element type %u", r->name,
                              keytxt, et);
        kv->v.arr.type = (enum kz_gguf_type)et;
        kv->v.arr.n = n;
        if (et == KZ_GGUF_STRING) {
            /* each element takes at least its 8-byte length */
            if (n > left(r) / 8)
                return kz_err_set(r->err, KZ_EPROTO,
                                  "%s: key '%s': array of %" PRIu64 " strings cannot fit in the %zu bytes left",
                                  r->name, keytxt, n, left(r));
            kv->v.arr.strs = kz_calloc((size_t)n ? (size_t)n : 1, sizeof *kv->v.arr.strs);
            if (!kv->v.arr.strs)
                return kz_err_set(r->err, KZ_ENOMEM, "%s: out of memory reading '%s'", r->name, keytxt);
            for (uint64_t i = 0; i < n; i++) {
                rc = rd_str(r, &kv->v.arr.strs[i], "string array element");
                if (rc) {
                    kz_err_append(r->err, " (key '%s', element %" PRIu64 ")", keytxt, i);
                    return rc;
                }
            }
            return KZ_OK;
        }
        size_t es = scalar_size(et);
        if (n > left(r) / es)
            return kz_err_set(r->err, KZ_EPROTO,
                              "%s: key '%s': array of %" PRIu64 " x %s past the end of the file (%zu bytes left)",
                              r->name, keytxt, n, kz_gguf_type_name((enum kz_gguf_type)et), left(r));
        kv->v.arr.data = r->p + r->pos;
        r->pos += (size_t)n * es;
        return KZ_OK;
    }
    default:
        break;
    }
    size_t sz = scalar_size(kv->type);
    if (!sz)
        return kz_err_set(r->err, KZ_EPROTO, "%s: key '%s': unknown value type %u", r->name, keytxt,
                          (unsigned)kv->type);
    rc = need(r, sz, "value");
    if (rc)
        return rc;
    p = r->p + r->pos;
    r->pos += sz;
    switch (kv->type) {
    case KZ_GGUF_U8: kv->v.u = p[0]; break;
    case KZ_GGUF_BOOL: kv->v.u = p[0]; break;
    case KZ_GGUF_I8: kv->v.i = (int8_t)p[0]; break;
    case KZ_GGUF_U16: kv->v.u = ld16(p); break;
    case KZ_GGUF_I16: kv->v.i = (int16_t)ld16(p); break;
    case KZ_GGUF_U32: kv->v.u = ld32(p); break;
    case KZ_GGUF_I32: kv->v.i = (int32_t)ld32(p); break;
    case KZ_GGUF_U64: kv->v.u = ld64(p); break;
    case KZ_GGUF_I64: kv->v.i = (int64_t)ld64(p); break;
    case KZ_GGUF_F32: kv->v.f = (double)ldf32(p); break;
    case KZ_GGUF_F64: kv->v.f = ldf64(p); break;
    default: break;
    }
    return KZ_OK;
}

static kz_status read_kvs(struct kz_gguf *g, struct rd *r, uint64_t n_kv)
{
    /* minimum encoded entry: 8-byte key length, 4-byte type, 1-byte value */
    if (n_kv > left(r) / 13)
        return kz_err_set(r->err, KZ_EPROTO, "%s: header claims %" PRIu64 " metadata entries; the file cannot hold that many",
                          r->name, n_kv);
    g->kvs = kz_calloc((size_t)n_kv ? (size_t)n_kv : 1, sizeof *g->kvs);
    g->kv_cap = table_cap((size_t)n_kv);
    g->kv_index = kz_calloc(g->kv_cap, sizeof *g->kv_index);
    if (!g->kvs || !g->kv_index)
        return kz_err_set(r->err, KZ_ENOMEM, "%s: out of memory", r->name);
    char keytxt[96];
    for (uint64_t i = 0; i < n_kv; i++) {
        struct kv *kv = &g->kvs[i];
        uint32_t type;
        kz_status rc = rd_str(r, &kv->key, "metadata key");
        if (rc)
            return rc;
        show(kv->key, keytxt, sizeof keytxt);
        if (kv->key.len == 0)
            return kz_err_set(r->err, KZ_EPROTO, "%s: metadata entry %" PRIu64 " has an empty key", r->name, i);
        rc = rd_u32(r, &type, "metadata value type");
        if (rc)
            return rc;
        if (type >= KZ_GGUF_TYPE_COUNT)
            return kz_err_set(r->err, KZ_EPROTO, "%s: key '%s': unknown value type %u", r->name, keytxt, type);
        kv->type = (enum kz_gguf_type)type;
        g->n_kv = (size_t)i + 1; /* so close() frees this entry's arrays */
        rc = read_value(r, kv, keytxt);
        if (rc)
            return rc;
        size_t slot = probe(g->kv_index, g->kv_cap, kv->key.p, kv->key.len, kv_key_of, g);
        if (g->kv_index[slot])
            return kz_err_set(r->err, KZ_EPROTO, "%s: duplicate metadata key '%s'", r->name, keytxt);
        g->kv_index[slot] = (uint32_t)i + 1;
    }
    return KZ_OK;
}

/* ---- tensors ------------------------------------------------------------------ */

static void fmt_bytes(char *buf, size_t size, uint64_t n)
{
    if (n >= 10u << 20)
        snprintf(buf, size, "%" PRIu64 " MB", n >> 20);
    else if (n >= 10u << 10)
        snprintf(buf, size, "%" PRIu64 " KB", n >> 10);
    else
        snprintf(buf, size, "%" PRIu64 " bytes", n);
}

static int cmp_offset(const void *a, const void *b)
{
    const struct kz_gguf_tensor *x = *(const struct kz_gguf_tensor *const *)a;
    const struct kz_gguf_tensor *y = *(const struct kz_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static kz_status read_tensors(struct kz_gguf *g, struct rd *r, uint64_t n_t)
{
    /* minimum tensor info: name length 8, n_dims 4, one dim 8, type 4, offset 8 */
    if (n_t > left(r) / 32)
        return kz_err_set(r->err, KZ_EPROTO, "%s: header claims %" PRIu64 " tensors; the file cannot hold that many",
                          r->name, n_t);
    g->tensors = kz_calloc((size_t)n_t ? (size_t)n_t : 1, sizeof *g->tensors);
    g->t_cap = table_cap((size_t)n_t);
    g->t_index = kz_calloc(g->t_cap, sizeof *g->t_index);
    if (!g->tensors || !g->t_index)
        return kz_err_set(r->err, KZ_ENOMEM, "%s: out of memory", r->name);
    char nm[96];
    for (uint64_t i = 0; i < n_t; i++) {
        struct kz_gguf_tensor *t = &g->tensors[i];
        uint32_t nd, type;
        kz_status rc = rd_str(r, &t->name, "tensor name");
        if (rc)
            return rc;
        show(t->name, nm, sizeof nm);
        if (t->name.len == 0 || t->name.len > KZ_GGUF_MAX_NAME)
            return kz_err_set(r->err, KZ_EPROTO, "%s: tensor %" PRIu64 " name length %zu is not in 1..%d",
                              r->name, i, t->name.len, KZ_GGUF_MAX_NAME);
        rc = rd_u32(r, &nd, "tensor n_dims");
        if (rc)
            return rc;
        if (nd < 1 || nd > KZ_GGUF_MAX_DIMS)
            return kz_err_set(r->err, KZ_EPROTO, "%s: tensor '%s' has %u dimensions (1..%d allowed)", r->name, nm,
                              nd, KZ_GGUF_MAX_DIMS);
        t->n_dims = nd;
        for (int d = 0; d < KZ_GGUF_MAX_DIMS; d++)
            t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t ne;
            rc = rd_u64(r, &ne, "tensor dimension");
            if (rc)
                return rc;
            if (ne < 1 || ne > (uint64_t)INT64_MAX)
                return kz_err_set(r->err, KZ_EPROTO, "%s: tensor '%s' dimension %u is %" PRIu64 " (must be >= 1)",
                                  r->name, nm, d, ne);
            t->ne[d] = (int64_t)ne;
        }
        rc = rd_u32(r, &type, "tensor type");
        if (rc)
            return rc;
        rc = rd_u64(r, &t->offset, "tensor offset");
        if (rc)
            return rc;
        uint32_t blck, tsize;
        if (!kz_dtype_info(type, &blck, &tsize))
            return kz_err_set(r->err, KZ_EPROTO, "%s: tensor '%s' has unknown type %u", r->name, nm, type);
        t->type = type;
        if (t->ne[0] % blck)
            return kz_err_set(r->err, KZ_EPROTO, "%s: tensor '%s' row length %" PRId64 " is not a multiple of %s's block size %u",
                              r->name, nm, t->ne[0], kz_dtype_name(type), blck);
        /* nbytes = ne0/blck * tsize * ne1 * ne2 * ne3, every step overflow-checked */
        uint64_t nb = (uint64_t)(t->ne[0] / blck);
        int ovf = __builtin_mul_overflow(nb, (uint64_t)tsize, &nb);
        for (int d = 1; d < KZ_GGUF_MAX_DIMS && !ovf; d++)
            ovf = __builtin_mul_overflow(nb, (uint64_t)t->ne[d], &nb);
        if (ovf || nb > SIZE_MAX)
            return kz_err_set(r->err, KZ_EPROTO, "%s: tensor '%s' size overflows (dimensions %" PRId64 " x %" PRId64
                              " x %" PRId64 " x %" PRId64 ")", r->name, nm, t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
        t->nbytes = (size_t)nb;
        size_t slot = probe(g->t_index, g->t_cap, t->name.p, t->name.len, tensor_key_of, g);
        if (g->t_index[slot])
            return kz_err_set(r->err, KZ_EPROTO, "%s: duplicate tensor name '%s'", r->name, nm);
        g->t_index[slot] = (uint32_t)i + 1;
        g->n_tensors = (size_t)i + 1;
    }
    return KZ_OK;
}

static kz_status check_layout(struct kz_gguf *g, struct kz_err *err)
{
    char nm[96], a[32], b[32];
    size_t data_size = g->size - g->data_offset;
    for (size_t i = 0; i < g->n_tensors; i++) {
        struct kz_gguf_tensor *t = &g->tensors[i];
        show(t->name, nm, sizeof nm);
        if (t->offset % g->alignment)
            return kz_err_set(err, KZ_EPROTO, "%s: tensor '%s' offset %" PRIu64 " is not a multiple of the alignment %u",
                              g->name, nm, t->offset, g->alignment);
        uint64_t end;
        if (__builtin_add_overflow(t->offset, (uint64_t)t->nbytes, &end) || end > data_size) {
            uint64_t abs_end = end + g->data_offset;
            if (end < t->offset || abs_end < end)
                return kz_err_set(err, KZ_EPROTO, "%s: tensor '%s' data range overflows (offset %" PRIu64 ", %zu bytes)",
                                  g->name, nm, t->offset, t->nbytes);
            fmt_bytes(a, sizeof a, abs_end);
            fmt_bytes(b, sizeof b, g->size);
            return kz_err_set(err, KZ_EPROTO, "%s: tensor '%s' data ends at %s, file is %s (truncated or corrupt)",
                              g->name, nm, a, b);
        }
        t->data = g->base + g->data_offset + t->offset;
    }
    if (g->n_tensors < 2)
        return KZ_OK;
    /* overlap check on a sorted copy of pointers */
    const struct kz_gguf_tensor **s = kz_calloc(g->n_tensors, sizeof *s);
    if (!s)
        return kz_err_set(err, KZ_ENOMEM, "%s: out of memory", g->name);
    for (size_t i = 0; i < g->n_tensors; i++)
        s[i] = &g->tensors[i];
    qsort(s, g->n_tensors, sizeof *s, cmp_offset);
    kz_status rc = KZ_OK;
    for (size_t i = 1; i < g->n_tensors; i++) {
        if (s[i]->offset < s[i - 1]->offset + s[i - 1]->nbytes) {
            char nm2[96];
            rc = kz_err_set(err, KZ_EPROTO, "%s: tensors '%s' and '%s' overlap", g->name,
                            show(s[i - 1]->name, nm, sizeof nm), show(s[i]->name, nm2, sizeof nm2));
            break;
        }
    }
    kz_free(s);
    return rc;
}

static kz_status parse(struct kz_gguf *g, struct kz_err *err)
{
    struct rd r = {g->base, g->size, 0, g->name, err};
    uint32_t magic;
    uint64_t n_t, n_kv;
    kz_status rc;
    if (g->size < 24)
        return kz_err_set(err, KZ_EPROTO, "%s: file is %zu bytes, too small for a GGUF header", g->name, g->size);
    rc = rd_u32(&r, &magic, "magic");
    if (rc)
        return rc;
    if (magic != KZ_GGUF_MAGIC)
        return kz_err_set(err, KZ_EPROTO, "%s: not a GGUF file (bad magic)", g->name);
    rc = rd_u32(&r, &g->version, "version");
    if (rc)
        return rc;
    if (g->version != 2 && g->version != 3)
        return kz_err_set(err, KZ_EPROTO, "%s: GGUF version %u is not supported (2 and 3 are)", g->name, g->version);
    rc = rd_u64(&r, &n_t, "tensor count");
    if (rc)
        return rc;
    rc = rd_u64(&r, &n_kv, "metadata count");
    if (rc)
        return rc;
    rc = read_kvs(g, &r, n_kv);
    if (rc)
        return rc;
    g->alignment = KZ_GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = kz_gguf_find(g, "general.alignment");
    if (ai >= 0) {
        const struct kv *kv = &g->kvs[ai];
        if (kv->type != KZ_GGUF_U32)
            return kz_err_set(err, KZ_EPROTO, "%s: general.alignment has type %s, expected u32", g->name,
                              kz_gguf_type_name(kv->type));
        uint64_t a = kv->v.u;
        if (a == 0 || (a & (a - 1)) || a > KZ_GGUF_MAX_ALIGNMENT)
            return kz_err_set(err, KZ_EPROTO, "%s: general.alignment %" PRIu64 " is not a power of two in 1..%u",
                              g->name, a, KZ_GGUF_MAX_ALIGNMENT);
        g->alignment = (uint32_t)a;
    }
    rc = read_tensors(g, &r, n_t);
    if (rc)
        return rc;
    size_t off = r.pos + (g->alignment - r.pos % g->alignment) % g->alignment;
    if (off > g->size) {
        if (g->n_tensors)
            return kz_err_set(err, KZ_EPROTO, "%s: truncated: data section would start at %zu, file is %zu bytes",
                              g->name, off, g->size);
        off = g->size; /* a metadata-only file (e.g. a vocabulary) may end unpadded */
    }
    g->data_offset = off;
    return check_layout(g, err);
}

static kz_status open_common(struct kz_gguf *g, struct kz_gguf **out, struct kz_err *err)
{
    kz_status rc = parse(g, err);
    if (rc) {
        kz_gguf_close(g);
        *out = NULL;
        return rc;
    }
    *out = g;
    return KZ_OK;
}

kz_status kz_gguf_open_mem(const void *data, size_t size, const char *name, struct kz_gguf **out,
                           struct kz_err *err)
{
    *out = NULL;
    struct kz_gguf *g = kz_calloc(1, sizeof *g);
    if (!g)
        return kz_err_set(err, KZ_ENOMEM, "%s: out of memory", name);
    g->name = kz_strdup(name);
    if (!g->name) {
        kz_free(g);
        return kz_err_set(err, KZ_ENOMEM, "%s: out of memory", name);
    }
    g->base = data;
    g->size = size;
    return open_common(g, out, err);
}

/* Reads the whole file into anonymous memory advised for transparent huge
 * pages, then makes it read-only. Decode streams every weight once per
 * token; on 4 KiB pages of a file mapping that is a TLB miss every 4 KiB
 * and the software prefetches stop at page walks. On 2 MiB pages a 2-core
 * AMD EPYC generated 4-11% faster at 1 thread (docs/PERFORMANCE.md). The
 * page cache keeps its copy, which the kernel may drop; the process holds
 * the file's size once, as the mapping did. Returns MAP_FAILED with errno
 * set, or EPIPE for a file that ended early. */
static void *read_resident(int fd, size_t size)
{
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return m;
#ifdef MADV_HUGEPAGE
    (void)madvise(m, size, MADV_HUGEPAGE); /* advice: without THP the copy still works */
#endif
    size_t done = 0;
    while (done < size) {
        size_t want = size - done < ((size_t)1 << 24) ? size - done : (size_t)1 << 24;
        ssize_t n = pread(fd, (char *)m + done, want, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EPIPE;
            munmap(m, size);
            errno = e;
            return MAP_FAILED;
        }
        done += (size_t)n;
    }
    if (mprotect(m, size, PROT_READ) != 0) { /* weights are never written: a stray store faults */
        int e = errno;
        munmap(m, size);
        errno = e;
        return MAP_FAILED;
    }
    return m;
}

static kz_status open_file(const char *path, int resident, struct kz_gguf **out, struct kz_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kz_err_set(err, errno == ENOENT ? KZ_ENOTFOUND : KZ_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return kz_err_set(err, KZ_EIO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size < 24) {
        close(fd);
        return kz_err_set(err, KZ_EPROTO, "%s: file is %zu bytes, too small for a GGUF header", path, size);
    }
    /* MAP_POPULATE faults the pages in now; the size is then checked again so a
     * file truncated between fstat and mmap is rejected here instead of
     * raising SIGBUS later inside a kernel. (A resident copy that comes up
     * short fails with EPIPE, the same message.) */
    void *m = resident ? read_resident(fd, size) : MAP_FAILED;
    const char *what = "reading";
    if (!resident || (m == MAP_FAILED && errno == ENOMEM)) { /* no room for a copy: the page cache can still serve a mapping */
        m = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        what = "mmap";
    }
    if (m == MAP_FAILED) {
        int e = errno;
        close(fd);
        if (e == EPIPE)
            return kz_err_set(err, KZ_EIO, "%s: file changed size while being opened", path);
        return kz_err_set(err, KZ_EIO, "%s: %s failed: %s", path, what, strerror(e));
    }
    struct stat st2;
    int bad = fstat(fd, &st2) != 0 || st2.st_size != st.st_size;
    close(fd);
    if (bad) {
        munmap(m, size);
        return kz_err_set(err, KZ_EIO, "%s: file changed size while being opened", path);
    }
    struct kz_gguf *g = kz_calloc(1, sizeof *g);
    if (!g || !(g->name = kz_strdup(path))) {
        kz_free(g);
        munmap(m, size);
        return kz_err_set(err, KZ_ENOMEM, "%s: out of memory", path);
    }
    g->base = m;
    g->size = size;
    g->mapped = 1;
    return open_common(g, out, err);
}

kz_status kz_gguf_open(const char *path, struct kz_gguf **out, struct kz_err *err)
{
    return open_file(path, 0, out, err);
}

kz_status kz_gguf_load(const char *path, struct kz_gguf **out, struct kz_err *err)
{
    return open_file(path, 1, out, err);
}

void kz_gguf_close(struct kz_gguf *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_kv; i++)
        if (g->kvs[i].type == KZ_GGUF_ARRAY)
            kz_free(g->kvs[i].v.arr.strs);
    kz_free(g->kvs);
    kz_free(g->kv_index);
    kz_free(g->tensors);
    kz_free(g->t_index);
    if (g->mapped)
        munmap((void *)(uintptr_t)g->base, g->size);
    kz_free(g->name);
    kz_free(g);
}

const char *kz_gguf_name(const struct kz_gguf *g) { return g->name; }
uint32_t kz_gguf_version(const struct kz_gguf *g) { return g->version; }
uint32_t kz_gguf_alignment(const struct kz_gguf *g) { return g->alignment; }
size_t kz_gguf_file_size(const struct kz_gguf *g) { return g->size; }
size_t kz_gguf_data_offset(const struct kz_gguf *g) { return g->data_offset; }
size_t kz_gguf_n_kv(const struct kz_gguf *g) { return g->n_kv; }
size_t kz_gguf_n_tensors(const struct kz_gguf *g) { return g->n_tensors; }

int64_t kz_gguf_find(const struct kz_gguf *g, const char *key)
{
    if (!g->kv_index)
        return -1;
    size_t slot = probe(g->kv_index, g->kv_cap, key, strlen(key), kv_key_of, g);
    return g->kv_index[slot] ? (int64_t)g->kv_index[slot] - 1 : -1;
}

struct kz_slice kz_gguf_kv_key(const struct kz_gguf *g, size_t i)
{
    KZ_ASSERT(i < g->n_kv);
    return g->kvs[i].key;
}

enum kz_gguf_type kz_gguf_kv_type(const struct kz_gguf *g, size_t i)
{
    KZ_ASSERT(i < g->n_kv);
    return g->kvs[i].type;
}

const struct kz_gguf_tensor *kz_gguf_tensor(const struct kz_gguf *g, size_t i)
{
    KZ_ASSERT(i < g->n_tensors);
    return &g->tensors[i];
}

const struct kz_gguf_tensor *kz_gguf_find_tensor(const struct kz_gguf *g, const char *name)
{
    if (!g->t_index)
        return NULL;
    size_t slot = probe(g->t_index, g->t_cap, name, strlen(name), tensor_key_of, g);
    return g->t_index[slot] ? &g->tensors[g->t_index[slot] - 1] : NULL;
}

/* ---- typed getters -------------------------------------------------------------- */

static const struct kv *lookup(const struct kz_gguf *g, const char *key)
{
    int64_t i = kz_gguf_find(g, key);
    return i < 0 ? NULL : &g->kvs[i];
}

static kz_status wrong_type(const struct kz_gguf *g, const char *key, enum kz_gguf_type have, const char *want,
                            struct kz_err *err)
{
    return kz_err_set(err, KZ_EPROTO, "%s: key '%s' has type %s, expected %s", g->name, key,
                      kz_gguf_type_name(have), want);
}

static int is_unsigned(enum kz_gguf_type t)
{
    return t == KZ_GGUF_U8 || t == KZ_GGUF_U16 || t == KZ_GGUF_U32 || t == KZ_GGUF_U64 || t == KZ_GGUF_BOOL;
}

static int is_signed(enum kz_gguf_type t)
{
    return t == KZ_GGUF_I8 || t == KZ_GGUF_I16 || t == KZ_GGUF_I32 || t == KZ_GGUF_I64;
}

kz_status kz_gguf_get_int(const struct kz_gguf *g, const char *key, int64_t *out, struct kz_err *err)
{
    const struct kv *kv = lookup(g, key);
    if (!kv)
        return KZ_ENOTFOUND;
    if (is_signed(kv->type)) {
        *out = kv->v.i;
        return KZ_OK;
    }
    if (is_unsigned(kv->type)) {
        if (kv->v.u > (uint64_t)INT64_MAX)
            return kz_err_set(err, KZ_EPROTO, "%s: key '%s' value %" PRIu64 " is out of range", g->name, key,
                              kv->v.u);
        *out = (int64_t)kv->v.u;
        return KZ_OK;
    }
    return wrong_type(g, key, kv->type, "an integer", err);
}

kz_status kz_gguf_get_float(const struct kz_gguf *g, const char *key, double *out, struct kz_err *err)
{
    const struct kv *kv = lookup(g, key);
    if (!kv)
        return KZ_ENOTFOUND;
    if (kv->type != KZ_GGUF_F32 && kv->type != KZ_GGUF_F64)
        return wrong_type(g, key, kv->type, "f32", err);
    *out = kv->v.f;
    return KZ_OK;
}

kz_status kz_gguf_get_bool(const struct kz_gguf *g, const char *key, int *out, struct kz_err *err)
{
    const struct kv *kv = lookup(g, key);
    if (!kv)
        return KZ_ENOTFOUND;
    if (kv->type != KZ_GGUF_BOOL)
        return wrong_type(g, key, kv->type, "bool", err);
    *out = kv->v.u != 0;
    return KZ_OK;
}

kz_status kz_gguf_get_str(const struct kz_gguf *g, const char *key, struct kz_slice *out, struct kz_err *err)
{
    const struct kv *kv = lookup(g, key);
    if (!kv)
        return KZ_ENOTFOUND;
    if (kv->type != KZ_GGUF_STRING)
        return wrong_type(g, key, kv->type, "string", err);
    *out = kv->v.str;
    return KZ_OK;
}

kz_status kz_gguf_get_arr(const struct kz_gguf *g, const char *key, enum kz_gguf_type *elem_type, uint64_t *n,
                          struct kz_err *err)
{
    const struct kv *kv = lookup(g, key);
    if (!kv)
        return KZ_ENOTFOUND;
    if (kv->type != KZ_GGUF_ARRAY)
        return wrong_type(g, key, kv->type, "array", err);
    if (elem_type)
        *elem_type = kv->v.arr.type;
    if (n)
        *n = kv->v.arr.n;
    return KZ_OK;
}

uint64_t kz_gguf_kv_arr_len(const struct kz_gguf *g, size_t kv)
{
    KZ_ASSERT(kv < g->n_kv && g->kvs[kv].type == KZ_GGUF_ARRAY);
    return g->kvs[kv].v.arr.n;
}

enum kz_gguf_type kz_gguf_kv_arr_type(const struct kz_gguf *g, size_t kv)
{
    KZ_ASSERT(kv < g->n_kv && g->kvs[kv].type == KZ_GGUF_ARRAY);
    return g->kvs[kv].v.arr.type;
}

struct kz_slice kz_gguf_kv_arr_str(const struct kz_gguf *g, size_t kv, uint64_t i)
{
    KZ_ASSERT(kv < g->n_kv);
    const struct kv *k = &g->kvs[kv];
    KZ_ASSERT(k->type == KZ_GGUF_ARRAY && k->v.arr.type == KZ_GGUF_STRING && i < k->v.arr.n);
    return k->v.arr.strs[i];
}

/* Float element read as an integer. The value comes from the file, and a C
 * cast of NaN or of anything outside the int64 range is undefined, so
 * truncate toward zero only in range, saturate outside it, and map NaN to 0. */
static int64_t float_to_i64(double d)
{
    if (d != d)
        return 0;
    if (d >= 9223372036854775808.0) /* 2^63 */
        return INT64_MAX;
    if (d < -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)d;
}

int64_t kz_gguf_kv_arr_int(const struct kz_gguf *g, size_t kv, uint64_t i)
{
    KZ_ASSERT(kv < g->n_kv);
    const struct kv *k = &g->kvs[kv];
    KZ_ASSERT(k->type == KZ_GGUF_ARRAY && i < k->v.arr.n);
    const uint8_t *p = k->v.arr.data + i * scalar_size(k->v.arr.type);
    switch (k->v.arr.type) {
    case KZ_GGUF_U8: case KZ_GGUF_BOOL: return p[0];
    case KZ_GGUF_I8: return (int8_t)p[0];
    case KZ_GGUF_U16: return ld16(p);
    case KZ_GGUF_I16: return (int16_t)ld16(p);
    case KZ_GGUF_U32: return ld32(p);
    case KZ_GGUF_I32: return (int32_t)ld32(p);
    case KZ_GGUF_U64: case KZ_GGUF_I64: return (int64_t)ld64(p);
    case KZ_GGUF_F32: return float_to_i64((double)ldf32(p));
    case KZ_GGUF_F64: return float_to_i64(ldf64(p));
    default: KZ_ASSERT(!"not a numeric array"); return 0;
    }
}

double kz_gguf_kv_arr_float(const struct kz_gguf *g, size_t kv, uint64_t i)
{
    KZ_ASSERT(kv < g->n_kv);
    const struct kv *k = &g->kvs[kv];
    KZ_ASSERT(k->type == KZ_GGUF_ARRAY && i < k->v.arr.n);
    const uint8_t *p = k->v.arr.data + i * scalar_size(k->v.arr.type);
    if (k->v.arr.type == KZ_GGUF_F32)
        return (double)ldf32(p);
    if (k->v.arr.type == KZ_GGUF_F64)
        return ldf64(p);
    return (double)kz_gguf_kv_arr_int(g, kv, i);
}

static size_t must_find(const struct kz_gguf *g, const char *key)
{
    int64_t i = kz_gguf_find(g, key);
    KZ_ASSERT(i >= 0);
    return (size_t)i;
}

struct kz_slice kz_gguf_arr_str(const struct kz_gguf *g, const char *key, uint64_t i)
{
    return kz_gguf_kv_arr_str(g, must_find(g, key), i);
}

int64_t kz_gguf_arr_int(const struct kz_gguf *g, const char *key, uint64_t i)
{
    return kz_gguf_kv_arr_int(g, must_find(g, key), i);
}

double kz_gguf_arr_float(const struct kz_gguf *g, const char *key, uint64_t i)
{
    return kz_gguf_kv_arr_float(g, must_find(g, key), i);
}

void kz_gguf_kv_format(const struct kz_gguf *g, size_t i, char *buf, size_t size)
{
    KZ_ASSERT(i < g->n_kv);
    const struct kv *kv = &g->kvs[i];
    char tmp[80];
    switch (kv->type) {
    case KZ_GGUF_STRING:
        snprintf(buf, size, "%.*s", (int)(kv->v.str.len > 200 ? 200 : kv->v.str.len), kv->v.str.p);
        break;
    case KZ_GGUF_ARRAY:
        snprintf(buf, size, "[%" PRIu64 " x %s]", kv->v.arr.n, kz_gguf_type_name(kv->v.arr.type));
        break;
    case KZ_GGUF_F32: case KZ_GGUF_F64:
        snprintf(buf, size, "%g", kv->v.f);
        break;
    case KZ_GGUF_BOOL:
        snprintf(buf, size, "%s", kv->v.u ? "true" : "false");
        break;
    default:
        if (is_signed(kv->type))
            snprintf(tmp, sizeof tmp, "%" PRId64, kv->v.i);
        else
            snprintf(tmp, sizeof tmp, "%" PRIu64, kv->v.u);
        snprintf(buf, size, "%s", tmp);
    }
}
