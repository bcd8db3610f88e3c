/* SPDX-License-Identifier: MIT
 * Vocabularies that must be refused at load, each with a message naming the
 * file and the problem (RELIABILITY.md, "Hyperparameters" rules for the
 * tokenizer arrays).
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/gguf/gguf.h"
#include "engine/tok/tok.h"
#include "t.h"

/* Builds an SPM vocabulary of 4 tokens; `byte_text` is token 3's text (a byte
 * token); n_scores and n_types set the lengths of those arrays. */
static char *make(const char *byte_text, uint64_t n_scores, uint64_t n_types, int types_as_str, size_t *size)
{
    struct kz_gguf_writer *w = kz_gguf_writer_new();
    struct kz_slice toks[4] = {{"<unk>", 5}, {"<s>", 3}, {"</s>", 4}, {byte_text, strlen(byte_text)}};
    float scores[4] = {0, 0, 0, 0};
    int32_t types[4] = {2, 3, 3, 6};
    kz_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5);
    kz_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
    kz_gguf_writer_set_arr(w, "tokenizer.ggml.scores", KZ_GGUF_F32, scores, n_scores);
    if (types_as_str)
        kz_gguf_writer_set_arr_str(w, "tokenizer.ggml.token_type", toks, n_types);
    else
        kz_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", KZ_GGUF_I32, types, n_types);
    void *buf = NULL;
    kz_gguf_writer_to_mem(w, &buf, size);
    kz_gguf_writer_free(w);
    return buf;
}

static void check(const char *name, const char *byte_text, uint64_t ns, uint64_t nt, int as_str, const char *want)
{
    size_t size = 0;
    char *buf = make(byte_text, ns, nt, as_str, &size);
    struct kz_gguf *g = NULL;
    struct kz_tok *t = NULL;
    struct kz_err err = {{0}};
    T_EQ_INT(kz_gguf_open_mem(buf, size, name, &g, &err), KZ_OK);
    kz_status rc = g ? kz_tok_load(g, &t, &err) : KZ_EPROTO;
    if (!want) {
        T_OK(rc == KZ_OK, "%s: %s", name, err.msg);
    } else {
        T_OK(rc != KZ_OK, "%s: rejected", name);
        T_OK(strstr(err.msg, want) != NULL && strstr(err.msg, name) != NULL, "%s: message '%s' lacks '%s'", name,
             err.msg, want);
    }
    kz_tok_free(t);
    kz_gguf_close(g);
    kz_free(buf);
}

static void cases(void)
{
    check("good.gguf", "<0x41>", 4, 4, 0, NULL);
    check("byte-neg.gguf", "<0x-1>", 4, 4, 0, "is not <0xNN>");
    check("byte-long.gguf", "<0x414>", 4, 4, 0, "is not <0xNN>");
    check("byte-nonhex.gguf", "<0xZZ>", 4, 4, 0, "is not <0xNN>");
    check("scores-short.gguf", "<0x41>", 3, 4, 0, "tokenizer.ggml.scores");
    check("types-short.gguf", "<0x41>", 4, 2, 0, "tokenizer.ggml.token_type");
    check("types-strings.gguf", "<0x41>", 4, 4, 1, "tokenizer.ggml.token_type");
}

int main(void)
{
    t_subtest("malformed vocabularies", cases);
    return t_done();
}
