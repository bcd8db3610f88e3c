/* SPDX-License-Identifier: MIT
 * GGUF reader on well-formed files: a writer round trip (every value type,
 * arrays of strings, alignment) and the real files in the shared data.
 * Malformed files are in test_gguf_bad.c.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/gguf/gguf.h"
#include "t.h"

static void roundtrip(void)
{
    struct kz_gguf_writer *w = kz_gguf_writer_new();
    T_OK(w != NULL, "writer");
    kz_gguf_writer_set_str(w, "general.architecture", "llama", 5);
    kz_gguf_writer_set_u32(w, "general.alignment", 64);
    kz_gguf_writer_set_i32(w, "test.i32", -7);
    kz_gguf_writer_set_f32(w, "test.f32", 0.5f);
    kz_gguf_writer_set_bool(w, "test.bool", 1);
    struct kz_slice strs[3] = {{"a", 1}, {"", 0}, {"\xe2\x96\x81hi", 5}};
    kz_gguf_writer_set_arr_str(w, "test.strs", strs, 3);
    float fs[2] = {1.5f, -2.0f};
    kz_gguf_writer_set_arr(w, "test.fs", KZ_GGUF_F32, fs, 2);
    float data[64];
    for (int i = 0; i < 64; i++)
        data[i] = (float)i;
    int64_t ne[2] = {16, 4};
    T_EQ_INT(kz_gguf_writer_add_tensor(w, "t.a", KZ_DT_F32, 2, ne, data), KZ_OK);
    int64_t ne1[1] = {3};
    T_EQ_INT(kz_gguf_writer_add_tensor(w, "t.b", KZ_DT_F32, 1, ne1, data), KZ_OK);
    void *buf;
    size_t size;
    T_EQ_INT(kz_gguf_writer_to_mem(w, &buf, &size), KZ_OK);
    kz_gguf_writer_free(w);

    struct kz_gguf *g;
    struct kz_err err = {{0}};
    kz_status rc = kz_gguf_open_mem(buf, size, "mem.gguf", &g, &err);
    T_OK(rc == KZ_OK, "open: %s", err.msg);
    if (rc) {
        kz_free(buf);
        return;
    }
    T_EQ_INT(kz_gguf_version(g), 3);
    T_EQ_INT(kz_gguf_alignment(g), 64);
    T_EQ_INT(kz_gguf_data_offset(g) % 64, 0);
    struct kz_slice s;
    T_EQ_INT(kz_gguf_get_str(g, "general.architecture", &s, &err), KZ_OK);
    T_OK(kz_slice_eq(s, "llama"), "arch");
    int64_t iv;
    T_EQ_INT(kz_gguf_get_int(g, "test.i32", &iv, &err), KZ_OK);
    T_EQ_INT(iv, -7);
    double dv;
    T_EQ_INT(kz_gguf_get_float(g, "test.f32", &dv, &err), KZ_OK);
    T_OK(dv == 0.5, "f32");
    int bv;
    T_EQ_INT(kz_gguf_get_bool(g, "test.bool", &bv, &err), KZ_OK);
    T_EQ_INT(bv, 1);
    T_EQ_INT(kz_gguf_get_int(g, "test.missing", &iv, &err), KZ_ENOTFOUND);
    T_EQ_INT(kz_gguf_get_int(g, "general.architecture", &iv, &err), KZ_EPROTO);
    T_OK(strstr(err.msg, "general.architecture") != NULL, "type error names key: %s", err.msg);
    enum kz_gguf_type et;
    uint64_t n;
    T_EQ_INT(kz_gguf_get_arr(g, "test.strs", &et, &n, &err), KZ_OK);
    T_EQ_INT(et, KZ_GGUF_STRING);
    T_EQ_INT(n, 3);
    T_OK(kz_slice_eq(kz_gguf_arr_str(g, "test.strs", 2), "\xe2\x96\x81hi"), "str elem");
    T_OK(kz_gguf_arr_str(g, "test.strs", 1).len == 0, "empty elem");
    T_OK(kz_gguf_arr_float(g, "test.fs", 1) == -2.0, "float elem");
    T_EQ_INT(kz_gguf_n_tensors(g), 2);
    const struct kz_gguf_tensor *t = kz_gguf_find_tensor(g, "t.a");
    T_OK(t && t->ne[0] == 16 && t->ne[1] == 4 && t->nbytes == 256, "tensor a");
    T_OK(t && ((const float *)t->data)[17] == 17.0f, "tensor data");
    T_OK(t && ((uintptr_t)t->data - (uintptr_t)buf) % 64 == 0, "aligned");
    T_OK(kz_gguf_find_tensor(g, "t.c") == NULL, "absent tensor");
    kz_gguf_close(g);
    kz_free(buf);
}

static void real_files(void)
{
    static const char *files[] = {"aidreams260K.gguf", "models/llama-f32.gguf", "models/llama-q4_k_m.gguf",
                                  "models/qwen2-q8_0.gguf", "vocab/ggml-vocab-llama-spm.gguf"};
    int n = (int)(sizeof files / sizeof files[0]);
    if (!t_data_path("")) {
        t_skip(n, "shared data absent: real GGUF files not opened");
        return;
    }
    for (int i = 0; i < n; i++) {
        struct kz_gguf *g;
        struct kz_err err = {{0}};
        kz_status rc = kz_gguf_open(t_data_path(files[i]), &g, &err);
        T_OK(rc == KZ_OK, "%s: %s", files[i], err.msg);
        if (rc)
            continue;
        struct kz_slice s;
        T_EQ_INT(kz_gguf_get_str(g, "tokenizer.ggml.model", &s, &err), KZ_OK);
        uint64_t nt;
        T_EQ_INT(kz_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &nt, &err), KZ_OK);
        T_OK(nt >= 512, "%s: vocab size %llu", files[i], (unsigned long long)nt);
        kz_gguf_close(g);
    }
    struct kz_gguf *g;
    struct kz_err err = {{0}};
    if (kz_gguf_open(t_data_path("models/llama-q4_k_m.gguf"), &g, &err) == KZ_OK) {
        const struct kz_gguf_tensor *t = kz_gguf_find_tensor(g, "output.weight");
        T_OK(t && t->type == KZ_DT_Q6_K, "q4_k_m output is Q6_K");
        t = kz_gguf_find_tensor(g, "blk.0.attn_q.weight");
        T_OK(t && t->type == KZ_DT_Q4_K && t->ne[0] == 256 && t->ne[1] == 256, "attn_q Q4_K 256x256");
        kz_gguf_close(g);
    }
}

static void missing_file(void)
{
    struct kz_gguf *g;
    struct kz_err err = {{0}};
    T_EQ_INT(kz_gguf_open("/nonexistent/x.gguf", &g, &err), KZ_ENOTFOUND);
    T_OK(g == NULL, "out cleared");
    T_OK(strstr(err.msg, "/nonexistent/x.gguf") != NULL, "names file: %s", err.msg);
}

int main(void)
{
    t_subtest("writer round trip", roundtrip);
    t_subtest("real files", real_files);
    t_subtest("missing file", missing_file);
    return t_done();
}
