/* SPDX-License-Identifier: MIT
 * Fuzz target (RELIABILITY.md FZ-5): the GGUF loader on an in-memory buffer.
 *
 * Oracles, beyond the sanitizers:
 *   - a rejected input gives KZ_EPROTO, a NULL handle and a message starting
 *     with the buffer's name; never an abort;
 *   - no single allocation exceeds 64 MiB (kz_alloc_set_limit aborts);
 *   - an accepted input keeps the invariants gguf.h promises: every key and
 *     tensor name is found again by lookup, every string and tensor lies
 *     inside the buffer, tensor data is aligned and each tensor's first and
 *     last byte can be read (ASan catches a read outside the buffer).
 * Walking every value and element is what turns a bad bound accepted at
 * parse time into a report here instead of in a kernel later.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/gguf.h"

#define FUZZ_ALLOC_LIMIT ((size_t)64 << 20)
#define FUZZ_NAME "fuzz.gguf"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *in_lo, *in_hi; /* the input buffer, for range checks */

/* A broken invariant is a finding: crash so the fuzzer saves the input. */
static void fail(const char *what)
{
    fprintf(stderr, "fuzz_gguf: invariant broken: %s\n", what);
    abort();
}

static void check_range(const void *p, size_t len, const char *what)
{
    const uint8_t *b = p;
    if (len && (b < in_lo || b > in_hi || len > (size_t)(in_hi - b)))
        fail(what);
}

/* Reads the first and last byte so an out-of-bounds slice faults under ASan;
 * the sum goes to a volatile so the reads are not optimized away. */
static volatile uint8_t sink;

static void touch(const void *p, size_t len)
{
    if (!len)
        return;
    const volatile uint8_t *b = p;
    sink = (uint8_t)(sink + b[0] + b[len - 1]);
}

static void walk_kv(const struct kz_gguf *g, size_t i)
{
    char buf[256], key[256];
    struct kz_err err;
    struct kz_slice k = kz_gguf_kv_key(g, i);
    check_range(k.p, k.len, "key outside the buffer");
    touch(k.p, k.len);
    if (k.len == 0)
        fail("empty key accepted");
    kz_gguf_kv_format(g, i, buf, sizeof buf);
    if (strlen(buf) >= sizeof buf)
        fail("kv_format overran its buffer");
    kz_gguf_kv_format(g, i, buf, 1); /* smallest legal buffer */

    /* Lookup by name must find this very entry (keys are unique); a key with a
     * NUL byte cannot be named by a C string, so skip those. */
    if (k.len < sizeof key && !memchr(k.p, '\0', k.len)) {
        memcpy(key, k.p, k.len);
        key[k.len] = '\0';
        if (kz_gguf_find(g, key) != (int64_t)i)
            fail("key not found by lookup");
        int64_t iv;
        double dv;
        int bv;
        struct kz_slice s;
        enum kz_gguf_type et;
        uint64_t n;
        kz_gguf_get_int(g, key, &iv, &err);
        kz_gguf_get_float(g, key, &dv, &err);
        kz_gguf_get_bool(g, key, &bv, &err);
        if (kz_gguf_get_str(g, key, &s, &err) == KZ_OK) {
            check_range(s.p, s.len, "string value outside the buffer");
            touch(s.p, s.len);
        }
        kz_gguf_get_arr(g, key, &et, &n, &err);
    }

    if (kz_gguf_kv_type(g, i) != KZ_GGUF_ARRAY)
        return;
    enum kz_gguf_type et = kz_gguf_kv_arr_type(g, i);
    uint64_t n = kz_gguf_kv_arr_len(g, i);
    for (uint64_t j = 0; j < n; j++) {
        if (et == KZ_GGUF_STRING) {
            struct kz_slice s = kz_gguf_kv_arr_str(g, i, j);
            check_range(s.p, s.len, "string element outside the buffer");
            touch(s.p, s.len);
        } else {
            /* both readers on every numeric type: conversions must not be UB */
            volatile int64_t iv = kz_gguf_kv_arr_int(g, i, j);
            volatile double dv = kz_gguf_kv_arr_float(g, i, j);
            (void)iv;
            (void)dv;
        }
    }
}

static void walk_tensor(const struct kz_gguf *g, size_t i)
{
    const struct kz_gguf_tensor *t = kz_gguf_tensor(g, i);
    char name[KZ_GGUF_MAX_NAME + 1];
    if (t->name.len == 0 || t->name.len > KZ_GGUF_MAX_NAME)
        fail("tensor name length out of 1..64");
    check_range(t->name.p, t->name.len, "tensor name outside the buffer");
    if (t->nbytes == 0)
        fail("empty tensor accepted");
    check_range(t->data, t->nbytes, "tensor data outside the buffer");
    const uint8_t *d = t->data;
    if ((size_t)(d - in_lo) < kz_gguf_data_offset(g))
        fail("tensor data before the data section");
    if ((size_t)(d - in_lo - kz_gguf_data_offset(g)) % kz_gguf_alignment(g))
        fail("tensor data misaligned");
    touch(t->data, t->nbytes);
    memcpy(name, t->name.p, t->name.len);
    name[t->name.len] = '\0';
    if (!memchr(t->name.p, '\0', t->name.len) && kz_gguf_find_tensor(g, name) != t)
        fail("tensor not found by name");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    kz_alloc_set_limit(FUZZ_ALLOC_LIMIT);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kz_gguf *g = NULL;
    struct kz_err err = {{0}};
    in_lo = data;
    in_hi = data + size;
    kz_status rc = kz_gguf_open_mem(data, size, FUZZ_NAME, &g, &err);
    if (rc != KZ_OK) {
        if (rc != KZ_EPROTO)
            fail("rejected with a status other than KZ_EPROTO");
        if (g)
            fail("handle not cleared on failure");
        if (strncmp(err.msg, FUZZ_NAME ": ", sizeof FUZZ_NAME + 1) != 0)
            fail("message does not start with the file name");
        return 0;
    }
    uint32_t a = kz_gguf_alignment(g);
    if (kz_gguf_file_size(g) != size || kz_gguf_data_offset(g) > size)
        fail("file size or data offset out of range");
    if (a == 0 || (a & (a - 1)) || a > KZ_GGUF_MAX_ALIGNMENT)
        fail("alignment accepted outside powers of two in 1..1 MiB");
    if (kz_gguf_version(g) != 2 && kz_gguf_version(g) != 3)
        fail("unsupported version accepted");
    for (size_t i = 0; i < kz_gguf_n_kv(g); i++)
        walk_kv(g, i);
    for (size_t i = 0; i < kz_gguf_n_tensors(g); i++)
        walk_tensor(g, i);
    kz_gguf_close(g);
    return 0;
}
