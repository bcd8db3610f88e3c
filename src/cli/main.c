/* SPDX-License-Identifier: MIT
 * kyozon: one binary, one subcommand per job.
 */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"

static const char usage[] =
    "kyozon - self-hosted AI model platform\n"
    "\n"
    "Usage: kyozon COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  serve     serve the OpenAI API over local models and remote providers\n"
    "  keys      create, list and revoke API keys\n"
    "  tenants   create and list tenants, add credit\n"
    "  usage     requests, tokens and cost from the ledger\n"
    "  pull      download a GGUF model into the model cache\n"
    "  models    list the model cache\n"
    "  run       generate text from a GGUF model on this machine's CPU\n"
    "  bench     measure prompt and generation speed against the memory roofline\n"
    "  info      describe a GGUF model file\n"
    "  tokenize  print the token ids of a text\n"
    "  template  render a chat template for a conversation\n"
    "  synth     write a synthetic model with random weights (tests, benchmarks)\n"
    "\n"
    "Run 'kyozon COMMAND --help' for the options of a command. After '--' no\n"
    "argument is read as an option: kyozon tokenize -m FILE -- --text\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        puts("kyozon 0.1.0");
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return kz_cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "keys") == 0)
        return kz_cmd_keys(argc - 1, argv + 1);
    if (strcmp(cmd, "tenants") == 0)
        return kz_cmd_tenants(argc - 1, argv + 1);
    if (strcmp(cmd, "usage") == 0)
        return kz_cmd_usage(argc - 1, argv + 1);
    if (strcmp(cmd, "pull") == 0)
        return kz_cmd_pull(argc - 1, argv + 1);
    if (strcmp(cmd, "models") == 0)
        return kz_cmd_models(argc - 1, argv + 1);
    if (strcmp(cmd, "template") == 0)
        return kz_cmd_template(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return kz_cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0)
        return kz_cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "info") == 0)
        return kz_cmd_info(argc - 1, argv + 1);
    if (strcmp(cmd, "tokenize") == 0)
        return kz_cmd_tokenize(argc - 1, argv + 1);
    if (strcmp(cmd, "synth") == 0)
        return kz_cmd_synth(argc - 1, argv + 1);
    fprintf(stderr, "kyozon: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}
