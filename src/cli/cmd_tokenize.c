/* SPDX-License-Identifier: MIT
 * kyozon tokenize: the token ids of a text, space-separated on one line.
 */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "core/alloc.h"
#include "engine/gguf/gguf.h"
#include "engine/tok/tok.h"

static const char help[] =
    "Usage: kyozon tokenize -m FILE [--no-bos] [--stdin | TEXT]\n"
    "\n"
    "Prints the token ids of TEXT (or of standard input) on one line.\n"
    "\n"
    "Options:\n"
    "  -m, --model FILE  GGUF model or vocabulary file (required)\n"
    "      --no-bos      add no BOS or other special tokens, and tokenize special-token\n"
    "                    text such as <s> as plain text\n"
    "      --stdin       read the text from standard input (all of it, bytes as they are)\n"
    "  -h, --help        show this help\n";

#define MAX_INPUT (64u << 20)

static char *read_stdin(size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = kz_malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= MAX_INPUT) {
                fprintf(stderr, "kyozon tokenize: standard input is larger than %u MiB\n", MAX_INPUT >> 20);
                kz_free(buf);
                return NULL;
            }
            char *nb = kz_realloc(buf, cap * 2);
            if (!nb) {
                kz_free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, stdin);
        if (r == 0)
            break;
        n += r;
    }
    *len = n;
    return buf;
}

int kz_cmd_tokenize(int argc, char **argv)
{
    const char *path = NULL, *text = NULL;
    int no_bos = 0, use_stdin = 0;
    const char *texts[64]; /* more than one is an error, said below */
    struct kz_args_pos pos = {texts, 64, 0};
    const struct kz_opt opts[] = {
        KZ_ARG_TEXT("-m|--model", &path),
        KZ_ARG_FLAG("--no-bos", &no_bos),
        KZ_ARG_FLAG("--stdin", &use_stdin),
    };
    int rc = KZ_ARGS("tokenize", help, opts, argc, argv, &pos);
    if (rc >= 0)
        return rc;
    if (pos.n > 1) {
        fprintf(stderr, "kyozon tokenize: give the text as one argument (quote it)\n");
        return 2;
    }
    text = pos.n ? texts[0] : NULL;
    if (!path || (!text && !use_stdin) || (text && use_stdin)) {
        fprintf(stderr, "kyozon tokenize: %s (see kyozon tokenize --help)\n",
                !path ? "-m FILE is required" : "give either TEXT or --stdin");
        return 2;
    }
    struct kz_err err = {{0}};
    struct kz_gguf *g = NULL;
    struct kz_tok *tok = NULL;
    char *in = NULL;
    int32_t *ids = NULL;
    size_t len = 0, n = 0;
    int status = 1;
    if (use_stdin) {
        in = read_stdin(&len);
        if (!in)
            goto out;
    } else {
        len = strlen(text);
    }
    if (kz_gguf_open(path, &g, &err) || kz_tok_load(g, &tok, &err) ||
        kz_tok_encode(tok, in ? in : text, len, !no_bos, !no_bos, &ids, &n, &err)) {
        fprintf(stderr, "kyozon tokenize: %s\n", err.msg);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        printf("%s%d", i ? " " : "", ids[i]);
    putchar('\n');
    status = 0;
out:
    kz_free(ids);
    kz_free(in);
    kz_tok_free(tok);
    kz_gguf_close(g);
    return status;
}
