/* SPDX-License-Identifier: MIT
 * Tokenizer tests.
 *
 *  - tiny_*: self-contained vocabularies built with the GGUF writer (SPM,
 *    byte-level BPE, WordPiece) with hand-checked expected ids, error
 *    paths, and allocation-failure injection.
 *  - vocab_files: every ggml-vocab-*.gguf in the shared data's vocab/ that
 *    has .inp/.out next to it. .inp holds test texts, each followed by
 *    "\n__ggml_vocab_test__\n" (what follows the last separator is not a
 *    test); line i of .out holds the expected ids of text i, each preceded
 *    by a space. Tokenized without BOS/EOS and without special parsing.
 *    To add a vocabulary, drop the three files there.
 *  - aidreams_goldens: golden/aidreams260K/NN.json "prompt" -> "prompt_ids"
 *    (with BOS, special parsing on), and "gen_ids" decode to "gen_text_hex".
 *  - round_trip: decode(encode(x)) == x for every .inp text (SPM: minus the
 *    one leading space it adds; WordPiece normalises, so it is left out).
 *  - random_bytes: arbitrary bytes (invalid UTF-8, NULs, special-token
 *    fragments) through every vocabulary; checks ids are in range (the
 *    sanitizer build checks memory).
 *  - speed: load time and encoding ~16 KiB of mixed text per vocabulary.
 */
#include <dirent.h>
#include <math.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "engine/gguf/gguf.h"
#include "engine/tok/tok.h"
#include "engine/tok/tok_int.h"
#include "t.h"

#define SEP "\n__ggml_vocab_test__\n"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ids as " 1 2 3" (the .out format) into a new string */
static char *fmt_ids(const int32_t *ids, size_t n)
{
    char *s = kz_malloc(n * 12 + 1);
    size_t len = 0;
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, 13, " %d", ids[i]);
    s[len] = '\0';
    return s;
}

static char *detok(const struct kz_tok *t, const int32_t *ids, size_t n, size_t *len)
{
    size_t cap = 64, k = 0;
    char *s = kz_malloc(cap);
    for (size_t i = 0; s && i < n; i++) {
        size_t need = kz_tok_piece(t, ids[i], s + k, cap - k, 0);
        if (need > cap - k) {
            char *q;
            while (cap - k < need)
                cap *= 2;
            q = kz_realloc(s, cap);
            if (!q) {
                kz_free(s);
                return NULL;
            }
            s = q;
            need = kz_tok_piece(t, ids[i], s + k, cap - k, 0);
        }
        k += need;
    }
    *len = k;
    return s;
}

static int ids_eq(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

/* ---- tiny self-contained vocabularies ------------------------------------------ */

struct tiny {
    void *mem;
    struct kz_gguf *g;
    struct kz_tok *t;
};

static void tiny_close(struct tiny *x)
{
    kz_tok_free(x->t);
    kz_gguf_close(x->g);
    kz_free(x->mem);
    memset(x, 0, sizeof *x);
}

/* Serializes w, opens it and loads a tokenizer; returns the load status. */
static kz_status tiny_open(struct kz_gguf_writer *w, struct tiny *x, struct kz_err *err)
{
    size_t size;
    kz_status rc;
    memset(x, 0, sizeof *x);
    rc = kz_gguf_writer_to_mem(w, &x->mem, &size);
    if (!rc)
        rc = kz_gguf_open_mem(x->mem, size, "tiny", &x->g, err);
    if (!rc)
        rc = kz_tok_load(x->g, &x->t, err);
    return rc;
}

static int32_t find_id(const struct kz_tok *t, const char *s)
{
    for (int32_t i = 0; i < kz_tok_n_vocab(t); i++) {
        size_t n;
        const char *p = kz_tok_text(t, i, &n);
        if (n == strlen(s) && memcmp(p, s, n) == 0)
            return i;
    }
    return -1;
}

static struct kz_gguf_writer *tiny_spm(void)
{
    /* <unk> <s> </s>, 256 byte tokens, then pieces with merge scores */
    static const struct {
        const char *s;
        float score;
    } pieces[] = {{"\xe2\x96\x81", -1}, {"h", -1}, {"e", -1}, {"l", -1}, {"o", -1}, {"ll", 5}, {"he", 4},
                  {"\xe2\x96\x81he", 3}, {"\xe2\x96\x81hell", 2}, {"\xe2\x96\x81hello", 1}};
    enum { NP = sizeof pieces / sizeof pieces[0], N = 3 + 256 + NP };
    static char bytes[256][7];
    struct kz_slice toks[N];
    float scores[N];
    int32_t types[N];
    struct kz_gguf_writer *w = kz_gguf_writer_new();
    const char *specials[3] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) {
        toks[i] = (struct kz_slice){specials[i], strlen(specials[i])};
        scores[i] = 0;
        types[i] = i == 0 ? 2 : 3;
    }
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        toks[3 + b] = (struct kz_slice){bytes[b], 6};
        scores[3 + b] = 0;
        types[3 + b] = 6;
    }
    for (int i = 0; i < NP; i++) {
        toks[259 + i] = (struct kz_slice){pieces[i].s, strlen(pieces[i].s)};
        scores[259 + i] = pieces[i].score;
        types[259 + i] = 1;
    }
    if (!w)
        return NULL;
    kz_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5);
    kz_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, N);
    kz_gguf_writer_set_arr(w, "tokenizer.ggml.scores", KZ_GGUF_F32, scores, N);
    kz_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", KZ_GGUF_I32, types, N);
    kz_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    kz_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    return w;
}

static void check_encode(const struct kz_tok *t, const char *text, int add_special, int parse_special,
                         const int32_t *want, size_t n_want)
{
    int32_t *ids = NULL;
    size_t n = 0;
    struct kz_err err = {{0}};
    kz_status rc = kz_tok_encode(t, text, strlen(text), add_special, parse_special, &ids, &n, &err);
    T_EQ_INT(rc, KZ_OK);
    if (!rc && !ids_eq(ids, n, want, n_want)) {
        char *got = fmt_ids(ids, n), *exp = fmt_ids(want, n_want);
        T_OK(0, "encode \"%s\" (%d,%d): got [%s] want [%s]", text, add_special, parse_special, got, exp);
        kz_free(got);
        kz_free(exp);
    }
    kz_free(ids);
}

static void check_piece(const struct kz_tok *t, int32_t id, int special, const char *want)
{
    char buf[64];
    size_t n = kz_tok_piece(t, id, buf, sizeof buf, special);
    T_OK(n == strlen(want) && memcmp(buf, want, n) == 0, "piece %d -> \"%.*s\", want \"%s\"", id,
         (int)(n < sizeof buf ? n : sizeof buf), buf, want);
}

static void test_tiny_spm(void)
{
    struct kz_gguf_writer *w = tiny_spm();
    struct tiny x;
    struct kz_err err = {{0}};
    kz_status rc = tiny_open(w, &x, &err);
    kz_gguf_writer_free(w);
    T_OK(rc == KZ_OK, "load: %s", err.msg);
    if (rc) {
        tiny_close(&x);
        return;
    }
    int32_t sp = find_id(x.t, "\xe2\x96\x81"), hello = find_id(x.t, "\xe2\x96\x81hello"), h = find_id(x.t, "h");
    int32_t he = find_id(x.t, "he"), ll = find_id(x.t, "ll"), o = find_id(x.t, "o");
    int32_t byte_i = 3 + 'i', lt = 3 + '<', s_ = 3 + 's', gt = 3 + '>';
    T_EQ_INT(kz_tok_bos(x.t), 1);
    T_EQ_INT(kz_tok_eos(x.t), 2);
    T_OK(kz_tok_is_eog(x.t, 2) && !kz_tok_is_eog(x.t, 1) && !kz_tok_is_eog(x.t, -1), "eog");
    {
        const int32_t want[] = {hello};
        check_encode(x.t, "hello", 0, 0, want, 1);
    }
    {
        const int32_t want[] = {1, hello};
        check_encode(x.t, "hello", 1, 0, want, 2);
    }
    {
        /* 'i' is no piece: byte fallback */
        const int32_t want[] = {sp, h, byte_i};
        check_encode(x.t, "hi", 0, 0, want, 3);
    }
    {
        /* after a special token the text gets its leading space again */
        const int32_t want[] = {1, hello};
        check_encode(x.t, "<s>hello", 0, 1, want, 2);
    }
    {
        const int32_t want[] = {sp, lt, s_, gt, he, ll, o};
        check_encode(x.t, "<s>hello", 0, 0, want, 7);
    }
    check_encode(x.t, "", 0, 0, NULL, 0);
    {
        const int32_t want[] = {1};
        check_encode(x.t, "", 1, 0, want, 1);
    }
    check_piece(x.t, hello, 0, " hello");
    check_piece(x.t, byte_i, 0, "i");
    check_piece(x.t, 1, 0, "");
    check_piece(x.t, 1, 1, "<s>");
    check_piece(x.t, -5, 1, "");
    {
        char small[2];
        T_EQ_INT(kz_tok_piece(x.t, hello, small, sizeof small, 0), 6);
    }
    {
        size_t n;
        const char *p = kz_tok_text(x.t, hello, &n);
        T_OK(p && n == 8 && memcmp(p, "\xe2\x96\x81hello", 8) == 0, "text");
        T_OK(kz_tok_text(x.t, 99999, &n) == NULL && n == 0, "text out of range");
    }
    tiny_close(&x);
}

/* byte-level alphabet spelling of byte b (test-side copy of the mapping) */
static size_t byte_spell(int b, char *out)
{
    int cp = b;
    if (b <= 0x20)
        cp = 0x100 + b;
    else if (b >= 0x7F && b <= 0xA0)
        cp = 0x100 + 33 + (b - 0x7F);
    else if (b == 0xAD)
        cp = 0x100 + 67;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

static struct kz_gguf_writer *tiny_bpe(const char *pre)
{
    static char spell[256][3];
    static const char *extra[] = {"he", "ll", "hell", "hello", "\xc4\xa0w", "<|endoftext|>"};
    static const char *merge_txt[] = {"h e", "l l", "he ll", "hell o", "\xc4\xa0 w"};
    enum { NE = 6, N = 256 + NE };
    struct kz_slice toks[N], merges[5];
    int32_t types[N];
    struct kz_gguf_writer *w = kz_gguf_writer_new();
    for (int b = 0; b < 256; b++) {
        size_t n = byte_spell(b, spell[b]);
        toks[b] = (struct kz_slice){spell[b], n};
        types[b] = 1;
    }
    for (int i = 0; i < NE; i++) {
        toks[256 + i] = (struct kz_slice){extra[i], strlen(extra[i])};
        types[256 + i] = i == NE - 1 ? 3 : 1;
    }
    for (int i = 0; i < 5; i++)
        merges[i] = (struct kz_slice){merge_txt[i], strlen(merge_txt[i])};
    if (!w)
        return NULL;
    kz_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", 4);
    if (pre)
        kz_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre, strlen(pre));
    kz_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, N);
    kz_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", KZ_GGUF_I32, types, N);
    kz_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 5);
    kz_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", N - 1);
    kz_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", N - 1);
    return w;
}

static void test_tiny_bpe(void)
{
    struct kz_gguf_writer *w = tiny_bpe("gpt-2");
    struct tiny x;
    struct kz_err err = {{0}};
    kz_status rc = tiny_open(w, &x, &err);
    kz_gguf_writer_free(w);
    T_OK(rc == KZ_OK, "load: %s", err.msg);
    if (rc) {
        tiny_close(&x);
        return;
    }
    int32_t hello = find_id(x.t, "hello"), gw = find_id(x.t, "\xc4\xa0w"), eot = find_id(x.t, "<|endoftext|>");
    {
        /* the 256 single-byte spellings come first, in byte order */
        const int32_t want[] = {hello, gw, 'o', 'r', 'l', 'd'};
        check_encode(x.t, "hello world", 0, 0, want, 6);
        /* gpt2 vocabularies add no BOS unless the metadata asks */
        check_encode(x.t, "hello world", 1, 0, want, 6);
    }
    {
        const int32_t want[] = {hello, eot, hello};
        check_encode(x.t, "hello<|endoftext|>hello", 0, 1, want, 3);
    }
    {
        int32_t *ids = NULL;
        size_t n = 0, len = 0;
        const char *s = "hello<|endoftext|> w\xc3\xa9ird  \t\n\x01 bytes\xff";
        T_EQ_INT(kz_tok_encode(x.t, s, strlen(s), 0, 0, &ids, &n, &err), KZ_OK);
        char *back = detok(x.t, ids, n, &len);
        /* the stray 0xFF byte comes back as U+FFFD, as in the reference */
        T_OK(back && len == strlen(s) + 2 && memcmp(back, s, strlen(s) - 1) == 0 &&
                 memcmp(back + strlen(s) - 1, "\xef\xbf\xbd", 3) == 0,
             "round trip");
        kz_free(back);
        kz_free(ids);
    }
    T_OK(kz_tok_is_eog(x.t, eot), "eot is eog");
    check_piece(x.t, gw, 0, " w");
    check_piece(x.t, eot, 0, "");
    check_piece(x.t, eot, 1, "<|endoftext|>");
    tiny_close(&x);

    /* every pre-tokenizer set compiles and splits plain text sensibly */
    static const char *pres[] = {"default", "llama-bpe", "deepseek-llm", "deepseek-coder", "deepseek-v3",
                                 "falcon", "mpt", "starcoder", "refact", "gpt-2", "qwen2", "smollm",
                                 "poro-chat", "viking", "tekken", "gpt-4o", "seed-coder", "bailingmoe",
                                 "command-r", "olmo", "dbrx", NULL};
    for (const char **p = pres; *p; p++) {
        w = tiny_bpe(*p);
        rc = tiny_open(w, &x, &err);
        kz_gguf_writer_free(w);
        T_OK(rc == KZ_OK, "pre %s: %s", *p, err.msg);
        if (!rc) {
            int32_t *ids = NULL;
            size_t n = 0, len = 0;
            const char *s = "Hello world's 12345 \xe4\xbd\xa0\xe5\xa5\xbd!!  \n\n x";
            rc = kz_tok_encode(x.t, s, strlen(s), 0, 0, &ids, &n, &err);
            char *back = rc ? NULL : detok(x.t, ids, n, &len);
            T_OK(!rc && back && len == strlen(s) && memcmp(back, s, len) == 0, "pre %s round trip", *p);
            kz_free(back);
            kz_free(ids);
        }
        tiny_close(&x);
    }
}

static void test_tiny_wpm(void)
{
    static const char *words[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "\xe2\x96\x81hello", "\xe2\x96\x81,",
                                  "\xe2\x96\x81" "un", "aff", "able", "\xe2\x96\x81" "world", "\xe2\x96\x81" "cafe",
                                  "\xe2\x96\x81\xe4\xbd\xa0"};
    enum { N = sizeof words / sizeof words[0] };
    struct kz_slice toks[N];
    int32_t types[N];
    struct kz_gguf_writer *w = kz_gguf_writer_new();
    struct tiny x;
    struct kz_err err = {{0}};
    for (int i = 0; i < N; i++) {
        toks[i] = (struct kz_slice){words[i], strlen(words[i])};
        types[i] = i < 4 ? 3 : 1;
    }
    kz_gguf_writer_set_str(w, "tokenizer.ggml.model", "bert", 4);
    kz_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, N);
    kz_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", KZ_GGUF_I32, types, N);
    kz_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 1);
    kz_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 2);
    kz_gguf_writer_set_u32(w, "tokenizer.ggml.seperator_token_id", 3);
    kz_status rc = tiny_open(w, &x, &err);
    kz_gguf_writer_free(w);
    T_OK(rc == KZ_OK, "load: %s", err.msg);
    if (!rc) {
        /* lowercase, accent stripping, punctuation split, CJK split, unknown word */
        const int32_t want[] = {2, 4, 5, 6, 7, 8, 9, 10, 11, 1, 1, 3};
        check_encode(x.t, "Hello, UNAFFABLE world Caf\xc3\xa9\xe4\xbd\xa0! zz", 1, 0, want, 12);
        check_piece(x.t, 4, 0, " hello");
        check_piece(x.t, 7, 0, "aff");
    }
    tiny_close(&x);
}

static void test_tiny_errors(void)
{
    struct kz_gguf_writer *w = kz_gguf_writer_new();
    struct tiny x;
    struct kz_err err = {{0}};
    kz_gguf_writer_set_str(w, "tokenizer.ggml.model", "rwkv", 4);
    T_EQ_INT(tiny_open(w, &x, &err), KZ_EUNSUPPORTED);
    T_OK(x.t == NULL && strstr(err.msg, "rwkv"), "message names the model: %s", err.msg);
    tiny_close(&x);
    kz_gguf_writer_free(w);

    w = tiny_bpe("no-such-pre");
    T_EQ_INT(tiny_open(w, &x, &err), KZ_EUNSUPPORTED);
    T_OK(strstr(err.msg, "no-such-pre") != NULL, "message names the pre-tokenizer: %s", err.msg);
    tiny_close(&x);
    kz_gguf_writer_free(w);

    w = kz_gguf_writer_new();
    kz_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5);
    T_EQ_INT(tiny_open(w, &x, &err), KZ_ENOTFOUND);
    tiny_close(&x);
    kz_gguf_writer_free(w);

    /* scores shorter than the token list */
    w = tiny_spm();
    {
        float one = 0;
        kz_gguf_writer_free(w);
        w = kz_gguf_writer_new();
        struct kz_slice tk[2] = {{"a", 1}, {"b", 1}};
        kz_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5);
        kz_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tk, 2);
        kz_gguf_writer_set_arr(w, "tokenizer.ggml.scores", KZ_GGUF_F32, &one, 1);
    }
    T_EQ_INT(tiny_open(w, &x, &err), KZ_EPROTO);
    tiny_close(&x);
    kz_gguf_writer_free(w);
}

/* Every allocation in load and encode may fail: the call must report
 * KZ_ENOMEM and leak nothing (the sanitizer build checks the leaks). */
static void test_tiny_oom(void)
{
    struct kz_gguf_writer *(*make[2])(void) = {tiny_spm, NULL};
    for (int which = 0; which < 2; which++) {
        int done = 0;
        for (long k = 1; k < 2000 && !done; k++) {
            struct kz_gguf_writer *w = which == 0 ? make[0]() : tiny_bpe("deepseek-llm");
            void *mem = NULL;
            size_t size;
            struct kz_gguf *g = NULL;
            struct kz_tok *t = NULL;
            struct kz_err err = {{0}};
            int32_t *ids = NULL;
            size_t n;
            kz_status rc;
            kz_gguf_writer_to_mem(w, &mem, &size);
            kz_gguf_writer_free(w);
            kz_gguf_open_mem(mem, size, "oom", &g, &err);
            kz_alloc_fail_after(k);
            rc = kz_tok_load(g, &t, &err);
            if (!rc)
                rc = kz_tok_encode(t, "hello world's 123 \xe4\xbd\xa0", 22, 1, 1, &ids, &n, &err);
            kz_alloc_fail_after(0);
            T_OK(rc == KZ_OK || rc == KZ_ENOMEM, "k=%ld rc=%d", k, (int)rc);
            if (!rc)
                done = 1;
            kz_free(ids);
            kz_tok_free(t);
            kz_gguf_close(g);
            kz_free(mem);
        }
        T_OK(done, "eventually succeeds");
    }
}

/* ---- shared-data vocabularies ---------------------------------------------------- */

struct cases {
    char *inp, *outp;     /* file contents (kz_free) */
    char **text;          /* borrowed into inp, NUL-terminated in place */
    size_t *text_len;
    char **want;          /* borrowed into outp */
    size_t n;
};

static void cases_free(struct cases *c)
{
    kz_free(c->inp);
    kz_free(c->outp);
    kz_free(c->text);
    kz_free(c->text_len);
    kz_free(c->want);
    memset(c, 0, sizeof *c);
}

/* Splits the .inp/.out pair; 0 on success. */
static int cases_load(const char *gguf_path, struct cases *c)
{
    char path[8192];
    size_t inp_len, out_len, cap = 64, k;
    char *p, *end;
    memset(c, 0, sizeof *c);
    snprintf(path, sizeof path, "%s.inp", gguf_path);
    c->inp = t_read_file(path, &inp_len);
    snprintf(path, sizeof path, "%s.out", gguf_path);
    c->outp = t_read_file(path, &out_len);
    if (!c->inp || !c->outp)
        return -1;
    c->text = kz_malloc(cap * sizeof *c->text);
    c->text_len = kz_malloc(cap * sizeof *c->text_len);
    c->want = kz_malloc(cap * sizeof *c->want);
    p = c->inp;
    end = c->inp + inp_len;
    for (;;) {
        char *s = memmem(p, (size_t)(end - p), SEP, strlen(SEP));
        if (!s)
            break; /* the rest after the last separator is not a test */
        if (c->n == cap)
            return -1;
        c->text[c->n] = p;
        c->text_len[c->n] = (size_t)(s - p);
        *s = '\0';
        c->n++;
        p = s + strlen(SEP);
    }
    p = c->outp;
    end = c->outp + out_len;
    for (k = 0; k < c->n; k++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return -1;
        *nl = '\0';
        c->want[k] = p;
        p = nl + 1;
    }
    return 0;
}

/* Names of the vocabularies with test files, sorted. */
static int list_vocabs(const char *dir, char names[][128], int max)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return 0;
    while ((e = readdir(d)) && n < max) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "ggml-vocab-", 11) == 0 && l > 5 && strcmp(e->d_name + l - 5, ".gguf") == 0 &&
            l < 128)
            strcpy(names[n++], e->d_name);
    }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char tmp[128];
            memcpy(tmp, names[j], 128);
            memcpy(names[j], names[j - 1], 128);
            memcpy(names[j - 1], tmp, 128);
        }
    return n;
}

#define MAX_VOCABS 32
#define N_VOCAB_FILES_EXPECTED 10

static void test_vocab_files(void)
{
    const char *dp = t_data_path("vocab");
    char dir[4096], names[MAX_VOCABS][128];
    int n;
    if (!dp) {
        t_skip(N_VOCAB_FILES_EXPECTED, "vocab tests: shared data directory absent");
        return;
    }
    snprintf(dir, sizeof dir, "%s", dp);
    n = list_vocabs(dir, names, MAX_VOCABS);
    T_OK(n >= N_VOCAB_FILES_EXPECTED, "found %d vocabularies in %s", n, dir);
    for (int v = 0; v < n; v++) {
        char path[8192 + 160];
        struct kz_gguf *g = NULL;
        struct kz_tok *t = NULL;
        struct kz_err err = {{0}};
        struct cases c;
        size_t pass = 0;
        int shown = 0;
        double t0, t_load;
        snprintf(path, sizeof path, "%s/%s", dir, names[v]);
        if (cases_load(path, &c)) {
            cases_free(&c);
            continue; /* no test files for this one */
        }
        t0 = now_ms();
        kz_status rc = kz_gguf_open(path, &g, &err);
        if (!rc)
            rc = kz_tok_load(g, &t, &err);
        t_load = now_ms() - t0;
        T_OK(rc == KZ_OK, "%s: %s", names[v], err.msg);
        for (size_t i = 0; !rc && i < c.n; i++) {
            int32_t *ids = NULL;
            size_t m = 0;
            kz_status erc = kz_tok_encode(t, c.text[i], c.text_len[i], 0, 0, &ids, &m, &err);
            char *got = erc ? NULL : fmt_ids(ids, m);
            if (got && strcmp(got, c.want[i]) == 0) {
                pass++;
            } else if (shown++ < 3) {
                T_OK(0, "%s case %zu \"%s\":\n  got [%s]\n want [%s]", names[v], i, c.text[i], got ? got : "?",
                     c.want[i]);
            } else {
                T_OK(0, "%s case %zu", names[v], i);
            }
            kz_free(got);
            kz_free(ids);
        }
        printf("# %-32s %zu/%zu cases pass (load %.1f ms)\n", names[v], pass, c.n, t_load);
        kz_tok_free(t);
        kz_gguf_close(g);
        cases_free(&c);
    }
}

static void test_round_trip(void)
{
    const char *dp = t_data_path("vocab");
    char dir[4096], names[MAX_VOCABS][128];
    int n;
    if (!dp) {
        t_skip(N_VOCAB_FILES_EXPECTED - 1, "round trip: shared data directory absent");
        return;
    }
    snprintf(dir, sizeof dir, "%s", dp);
    n = list_vocabs(dir, names, MAX_VOCABS);
    for (int v = 0; v < n; v++) {
        char path[8192 + 160];
        struct kz_gguf *g = NULL;
        struct kz_tok *t = NULL;
        struct kz_err err = {{0}};
        struct cases c;
        size_t pass = 0;
        int spm;
        if (strstr(names[v], "bert"))
            continue; /* WordPiece lowercases and drops spaces: not invertible */
        snprintf(path, sizeof path, "%s/%s", dir, names[v]);
        if (cases_load(path, &c) || kz_gguf_open(path, &g, &err) || kz_tok_load(g, &t, &err)) {
            T_OK(0, "%s: %s", names[v], err.msg);
            kz_tok_free(t);
            kz_gguf_close(g);
            cases_free(&c);
            continue;
        }
        spm = strstr(names[v], "spm") || strstr(names[v], "phi-3");
        for (size_t i = 0; i < c.n; i++) {
            int32_t *ids = NULL;
            size_t m = 0, len = 0;
            char *back = NULL;
            const char *b;
            if (!kz_tok_encode(t, c.text[i], c.text_len[i], 0, 0, &ids, &m, &err))
                back = detok(t, ids, m, &len);
            b = back;
            if (spm && len > 0 && b[0] == ' ') {
                b++; /* the space SentencePiece puts in front */
                len--;
            }
            if (back && len == c.text_len[i] && memcmp(b, c.text[i], len) == 0)
                pass++;
            else
                T_OK(0, "%s round trip case %zu \"%s\" -> \"%.*s\"", names[v], i, c.text[i], (int)len, b ? b : "");
            kz_free(back);
            kz_free(ids);
        }
        printf("# %-32s round trip %zu/%zu\n", names[v], pass, c.n);
        kz_tok_free(t);
        kz_gguf_close(g);
        cases_free(&c);
    }
}

static void test_aidreams_goldens(void)
{
    const char *p = t_data_path("aidreams260K.gguf");
    char model[4096], gdir[4096];
    struct kz_gguf *g = NULL;
    struct kz_tok *t = NULL;
    struct kz_err err = {{0}};
    int ran = 0;
    if (!p) {
        t_skip(8, "aidreams goldens: shared data directory absent");
        return;
    }
    snprintf(model, sizeof model, "%s", p);
    snprintf(gdir, sizeof gdir, "%s", t_data_path("golden/aidreams260K"));
    kz_status rc = kz_gguf_open(model, &g, &err);
    if (!rc)
        rc = kz_tok_load(g, &t, &err);
    T_OK(rc == KZ_OK, "load: %s", err.msg);
    for (int i = 1; !rc && i <= 99; i++) {
        char jp[4200];
        json_error_t je;
        json_t *root, *ids_j;
        const char *prompt;
        int add_bos;
        int32_t *ids = NULL;
        size_t n = 0;
        snprintf(jp, sizeof jp, "%s/%02d.json", gdir, i);
        root = json_load_file(jp, 0, &je);
        if (!root)
            break;
        prompt = json_string_value(json_object_get(root, "prompt"));
        add_bos = json_is_true(json_object_get(root, "add_bos"));
        ids_j = json_object_get(root, "prompt_ids");
        T_OK(prompt && json_is_array(ids_j), "%s: fields", jp);
        if (prompt && json_is_array(ids_j) &&
            !kz_tok_encode(t, prompt, strlen(prompt), add_bos, 1, &ids, &n, &err)) {
            int same = n == json_array_size(ids_j);
            for (size_t k = 0; same && k < n; k++)
                same = ids[k] == (int32_t)json_integer_value(json_array_get(ids_j, k));
            char *got = fmt_ids(ids, n);
            T_OK(same, "%s: \"%s\" -> [%s]", jp, prompt, got);
            kz_free(got);
        }
        kz_free(ids);
        {
            /* the generated ids must decode to the recorded text */
            json_t *gen = json_object_get(root, "gen_ids");
            const char *hex = json_string_value(json_object_get(root, "gen_text_hex"));
            if (json_is_array(gen) && hex) {
                size_t ng = json_array_size(gen), len = 0, hl = strlen(hex);
                int32_t *gi = kz_malloc((ng ? ng : 1) * sizeof *gi);
                char *want = kz_malloc(hl / 2 + 1), *got;
                for (size_t k = 0; k < ng; k++)
                    gi[k] = (int32_t)json_integer_value(json_array_get(gen, k));
                for (size_t k = 0; k + 1 < hl; k += 2) {
                    char h2[3] = {hex[k], hex[k + 1], 0};
                    want[k / 2] = (char)strtol(h2, NULL, 16);
                }
                got = detok(t, gi, ng, &len);
                T_OK(got && len == hl / 2 && memcmp(got, want, len) == 0, "%s: gen_ids decode to gen_text", jp);
                kz_free(got);
                kz_free(want);
                kz_free(gi);
            }
        }
        json_decref(root);
        ran++;
    }
    T_OK(ran >= 8, "ran %d golden prompts", ran);
    printf("# aidreams260K goldens: %d prompts checked\n", ran);
    kz_tok_free(t);
    kz_gguf_close(g);
}

/* Loading and encoding must stay interactive: a 16 KiB prompt in well under
 * a second even on a sanitizer build (release: about a millisecond). */
static void test_speed(void)
{
    const char *dp = t_data_path("vocab");
    char dir[4096], names[MAX_VOCABS][128];
    static const char chunk[] = "The quick brown fox jumps over the lazy dog. It's 2024, and \xe4\xbd\xa0\xe5\xa5\xbd "
                                "\xf0\x9f\x98\x81 costs $3.50!\n\tdef f(x): return x**2  # ok\n";
    char *text;
    size_t len = 0;
    int n;
    if (!dp) {
        t_skip(1, "speed: shared data directory absent");
        return;
    }
    snprintf(dir, sizeof dir, "%s", dp);
    n = list_vocabs(dir, names, MAX_VOCABS);
    text = kz_malloc(16384 + sizeof chunk);
    while (len + sizeof chunk - 1 < 16384) {
        memcpy(text + len, chunk, sizeof chunk - 1);
        len += sizeof chunk - 1;
    }
    for (int v = 0; v < n; v++) {
        char path[8192 + 160];
        struct kz_gguf *g = NULL;
        struct kz_tok *t = NULL;
        struct kz_err err = {{0}};
        int32_t *ids = NULL;
        size_t m = 0;
        double t0, t1, t2;
        snprintf(path, sizeof path, "%s/%s", dir, names[v]);
        if (kz_gguf_open(path, &g, &err))
            continue;
        t0 = now_ms();
        if (kz_tok_load(g, &t, &err)) {
            kz_gguf_close(g);
            continue;
        }
        t1 = now_ms();
        T_EQ_INT(kz_tok_encode(t, text, len, 1, 1, &ids, &m, &err), KZ_OK);
        t2 = now_ms();
        printf("# %-32s load %7.1f ms, encode %zu bytes -> %zu ids in %6.2f ms\n", names[v], t1 - t0, len, m,
               t2 - t1);
        T_OK(t2 - t1 < 1000.0, "%s: encoding took %.1f ms", names[v], t2 - t1);
        kz_free(ids);
        kz_tok_free(t);
        kz_gguf_close(g);
    }
    kz_free(text);
}

static void test_random_bytes(void)
{
    const char *dp = t_data_path("vocab");
    char dir[4096], names[MAX_VOCABS][128];
    static const char *bits[] = {"<s>", "</s>", "<|endoftext|>", "[PAD", "  ", "\xe2\x96\x81", "\xc3\xb5", "'s",
                                 "\n", "\xf0\x9f", "123", "[CLS]", "<\xef\xbd\x9c"};
    uint32_t seed = 12345;
    int n;
    if (!dp) {
        t_skip(1, "random bytes: shared data directory absent");
        return;
    }
    snprintf(dir, sizeof dir, "%s", dp);
    n = list_vocabs(dir, names, MAX_VOCABS);
    for (int v = 0; v < n; v++) {
        char path[8192 + 160], buf[512];
        struct kz_gguf *g = NULL;
        struct kz_tok *t = NULL;
        struct kz_err err = {{0}};
        int bad = 0;
        snprintf(path, sizeof path, "%s/%s", dir, names[v]);
        if (kz_gguf_open(path, &g, &err) || kz_tok_load(g, &t, &err)) {
            kz_gguf_close(g);
            continue;
        }
        for (int k = 0; k < 200; k++) {
            size_t len = 0, target, m = 0;
            int32_t *ids = NULL;
            seed = seed * 1103515245u + 12345u;
            target = (seed >> 16) % 300;
            while (len < target) {
                seed = seed * 1103515245u + 12345u;
                if ((seed >> 16) % 4 == 0) {
                    const char *b = bits[(seed >> 8) % (sizeof bits / sizeof bits[0])];
                    size_t bl = strlen(b);
                    if (len + bl > sizeof buf)
                        break;
                    memcpy(buf + len, b, bl);
                    len += bl;
                } else {
                    buf[len++] = (char)(seed >> 20);
                }
            }
            if (kz_tok_encode(t, buf, len, k & 1, k & 2, &ids, &m, &err) != KZ_OK)
                bad++;
            for (size_t i = 0; i < m; i++)
                if (ids[i] < 0 || ids[i] >= kz_tok_n_vocab(t))
                    bad++;
            for (size_t i = 0; i < m; i++) {
                char piece[256];
                (void)kz_tok_piece(t, ids[i], piece, sizeof piece, k & 4);
            }
            kz_free(ids);
        }
        T_OK(bad == 0, "%s: %d bad results on random input", names[v], bad);
        kz_tok_free(t);
        kz_gguf_close(g);
    }
}

/* The SentencePiece merge key sorts like the scores it comes from: a
 * higher score gives a smaller key, equal scores (-0 and +0 too) the same
 * key; on fixed awkward values and random bit patterns. */
static void test_score_key(void)
{
    const float fixed[] = {0.0f, -0.0f, 1.0f, -1.0f, 1e-45f, -1e-45f, 1.17549435e-38f, -1.17549435e-38f,
                           3.4028235e38f, -3.4028235e38f, (float)INFINITY, -(float)INFINITY, -12.5f, -12.499999f};
    enum { NF = sizeof fixed / sizeof fixed[0] };
    uint64_t seed = 0x5eed;
    int bad = 0;
    for (int k = 0; k < NF * NF + 200000; k++) {
        float a, b;
        if (k < NF * NF) {
            a = fixed[k / NF];
            b = fixed[k % NF];
        } else {
            uint32_t u[2];
            for (int j = 0; j < 2; j++) {
                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                u[j] = (uint32_t)(seed >> 32);
            }
            if (k & 1)
                u[1] = u[0] ^ (1u << (seed >> 27 & 31)); /* neighbours in bits */
            memcpy(&a, &u[0], sizeof a);
            memcpy(&b, &u[1], sizeof b);
            if (a != a || b != b)
                continue;
        }
        int32_t ka = tok_score_key(a), kb = tok_score_key(b);
        int want = a > b ? -1 : a < b, got = ka < kb ? -1 : ka > kb;
        if (want != got && bad++ < 5)
            T_OK(0, "score %a vs %a: keys %d, %d", (double)a, (double)b, ka, kb);
    }
    T_OK(bad == 0, "%d pairs out of order", bad);
    T_OK(tok_score_key(NAN) == INT32_MAX, "NaN sorts last");
}

int main(void)
{
    t_subtest("score_key", test_score_key);
    t_subtest("tiny_spm", test_tiny_spm);
    t_subtest("tiny_bpe", test_tiny_bpe);
    t_subtest("tiny_wpm", test_tiny_wpm);
    t_subtest("tiny_errors", test_tiny_errors);
    t_subtest("tiny_oom", test_tiny_oom);
    t_subtest("vocab_files", test_vocab_files);
    t_subtest("aidreams_goldens", test_aidreams_goldens);
    t_subtest("round_trip", test_round_trip);
    t_subtest("random_bytes", test_random_bytes);
    t_subtest("speed", test_speed);
    return t_done();
}
