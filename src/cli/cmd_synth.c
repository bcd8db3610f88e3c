/* SPDX-License-Identifier: MIT
 * kyozon synth: write a synthetic model (random weights, fixed seed).
 */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "engine/model/synth.h"

static const char help[] =
    "Usage: kyozon synth -o FILE --shape NAME --type TYPE [options]\n"
    "\n"
    "Writes a GGUF model with random weights of a named Llama-family shape,\n"
    "for tests and benchmarks. The same seed always gives the same file.\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE   file to write (written atomically)\n"
    "      --shape NAME    tiny (a few MB), small (125M), tinyllama-1.1b,\n"
    "                      tinyllama-1layer (its widths, one layer), llama-3b\n"
    "      --type TYPE     f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k q4_k_m\n"
    "      --arch ARCH     llama (default) or qwen2 (adds q/k/v biases)\n"
    "      --seed N        random seed (default 0)\n"
    "      --vocab FILE    copy the tokenizer from this GGUF (default: a generated\n"
    "                      byte-fallback vocabulary of the shape's default size)\n"
    "      --tied          no output.weight: logits use the token embedding\n"
    "  -t, --threads N     threads for generating and quantizing (default: physical cores)\n"
    "  -h, --help          show this help\n";

int kz_cmd_synth(int argc, char **argv)
{
    struct kz_synth_opts o = {0};
    long threads = 0;
    const struct kz_opt opts[] = {
        KZ_ARG_TEXT("-o|--output", &o.out_path),
        KZ_ARG_TEXT("--shape", &o.shape),
        KZ_ARG_TEXT("--type", &o.type),
        KZ_ARG_TEXT("--arch", &o.arch),
        KZ_ARG_TEXT("--vocab", &o.vocab_path),
        KZ_ARG_U64("--seed", &o.seed),
        KZ_ARG_INT("-t|--threads", &threads, 1, 1024),
        KZ_ARG_FLAG("--tied", &o.tied),
    };
    int rc = KZ_ARGS("synth", help, opts, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!o.out_path || !o.shape || !o.type) {
        fprintf(stderr, "kyozon synth: -o FILE, --shape NAME and --type TYPE are required (see kyozon synth --help)\n");
        return 2;
    }
    o.n_threads = (int)threads;
    struct kz_err err = {{0}};
    if (kz_synth_write(&o, &err) != KZ_OK) {
        fprintf(stderr, "kyozon synth: %s\n", err.msg);
        return 1;
    }
    return 0;
}
