/* SPDX-License-Identifier: MIT
 * kyozon info: what a GGUF file holds, read from its metadata and tensor
 * table only (works for architectures the engine cannot run, too).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "engine/gguf/dtype.h"
#include "engine/gguf/gguf.h"
#include "engine/model/model.h"

static const char help[] =
    "Usage: kyozon info -m FILE [--all]\n"
    "\n"
    "Describes a GGUF model: architecture, parameter count, context length,\n"
    "tensor types with counts, vocabulary size, and whether a chat template is present.\n"
    "\n"
    "Options:\n"
    "  -m, --model FILE  GGUF file (required)\n"
    "      --all         also list every metadata key\n"
    "  -h, --help        show this help\n";

static void print_int(const struct kz_gguf *g, const char *arch, const char *label, const char *suffix)
{
    char key[128];
    int64_t v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (kz_gguf_get_int(g, key, &v, NULL) == KZ_OK)
        printf("%-18s %" PRId64 "\n", label, v);
}

int kz_cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    int all = 0;
    const struct kz_opt opts[] = {
        KZ_ARG_TEXT("-m|--model", &path),
        KZ_ARG_FLAG("--all", &all),
    };
    int rc = KZ_ARGS("info", help, opts, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!path) {
        fprintf(stderr, "kyozon info: -m FILE is required (see kyozon info --help)\n");
        return 2;
    }
    struct kz_gguf *g;
    struct kz_err err = {{0}};
    if (kz_gguf_open(path, &g, &err) != KZ_OK) {
        fprintf(stderr, "kyozon info: %s\n", err.msg);
        return 1;
    }
    struct kz_slice s = {"(unknown)", 9};
    kz_gguf_get_str(g, "general.architecture", &s, NULL);
    char arch[64];
    snprintf(arch, sizeof arch, "%.*s", (int)s.len, s.p);
    printf("%-18s %s\n", "file", path);
    printf("%-18s %u\n", "gguf version", kz_gguf_version(g));
    printf("%-18s %s\n", "architecture", arch);
    struct kz_slice nm;
    if (kz_gguf_get_str(g, "general.name", &nm, NULL) == KZ_OK)
        printf("%-18s %.*s\n", "name", (int)nm.len, nm.p);

    uint64_t n_params = 0;
    size_t counts[KZ_DT_COUNT] = {0};
    for (size_t i = 0; i < kz_gguf_n_tensors(g); i++) {
        const struct kz_gguf_tensor *t = kz_gguf_tensor(g, i);
        uint64_t n = 1;
        for (int d = 0; d < KZ_GGUF_MAX_DIMS; d++)
            n *= (uint64_t)t->ne[d];
        n_params += n;
        counts[t->type]++;
    }
    if (n_params >= 1000000000u)
        printf("%-18s %.2f B (%" PRIu64 ")\n", "parameters", (double)n_params / 1e9, n_params);
    else if (n_params >= 1000000u)
        printf("%-18s %.2f M (%" PRIu64 ")\n", "parameters", (double)n_params / 1e6, n_params);
    else
        printf("%-18s %" PRIu64 "\n", "parameters", n_params);
    print_int(g, arch, "context length", "context_length");
    print_int(g, arch, "embedding", "embedding_length");
    print_int(g, arch, "layers", "block_count");
    print_int(g, arch, "heads", "attention.head_count");
    print_int(g, arch, "kv heads", "attention.head_count_kv");
    print_int(g, arch, "feed forward", "feed_forward_length");
    printf("%-18s %zu:", "tensor types", kz_gguf_n_tensors(g));
    for (int t = 0; t < KZ_DT_COUNT; t++)
        if (counts[t])
            printf(" %s x%zu", kz_dtype_name((uint32_t)t), counts[t]);
    putchar('\n');
    uint64_t nv = 0;
    struct kz_slice tm = {"none", 4};
    kz_gguf_get_str(g, "tokenizer.ggml.model", &tm, NULL);
    if (kz_gguf_get_arr(g, "tokenizer.ggml.tokens", NULL, &nv, NULL) == KZ_OK)
        printf("%-18s %" PRIu64 " (%.*s)\n", "vocabulary", nv, (int)tm.len, tm.p);
    else
        printf("%-18s none\n", "vocabulary");
    printf("%-18s %s\n", "chat template", kz_gguf_find(g, "tokenizer.chat_template") >= 0 ? "present" : "absent");

    struct kz_model_config cfg;
    if (kz_model_read_config(g, &cfg, &err) != KZ_OK)
        printf("%-18s no: %s\n", "runnable", err.msg);
    if (all) {
        printf("\nmetadata (%zu keys):\n", kz_gguf_n_kv(g));
        for (size_t i = 0; i < kz_gguf_n_kv(g); i++) {
            char val[256];
            struct kz_slice k = kz_gguf_kv_key(g, i);
            kz_gguf_kv_format(g, i, val, sizeof val);
            printf("  %.*s = %s\n", (int)k.len, k.p, val);
        }
    }
    kz_gguf_close(g);
    return 0;
}
