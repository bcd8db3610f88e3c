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
    "      --shape NAME    tiny (a few MB), small (125M), tinyllama-1.1b, llama-3b\n"
    "      --type TYPE     f32 f16 bf16 q8_0 q4_0 q4_k q6_k q4_k_m\n"
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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help, stdout);
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            bad = kz_arg_need("synth", a, v);
            o.out_path = v;
            i++;
        } else if (!strcmp(a, "--shape")) {
            bad = kz_arg_need("synth", a, v);
            o.shape = v;
            i++;
        } else if (!strcmp(a, "--type")) {
            bad = kz_arg_need("synth", a, v);
            o.type = v;
            i++;
        } else if (!strcmp(a, "--arch")) {
            bad = kz_arg_need("synth", a, v);
            o.arch = v;
            i++;
        } else if (!strcmp(a, "--vocab")) {
            bad = kz_arg_need("synth", a, v);
            o.vocab_path = v;
            i++;
        } else if (!strcmp(a, "--seed")) {
            bad = kz_arg_u64("synth", a, v, &o.seed);
            i++;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            bad = kz_arg_int("synth", a, v, 1, 1024, &threads);
            i++;
        } else if (!strcmp(a, "--tied")) {
            o.tied = 1;
        } else {
            fprintf(stderr, "kyozon synth: unknown option '%s' (see kyozon synth --help)\n", a);
            return 2;
        }
        if (bad)
            return 2;
    }
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
