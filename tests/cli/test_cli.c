/* SPDX-License-Identifier: MIT
 * The kyozon binary end to end: run, tokenize, info, synth, --help, and the
 * error messages users see. Runs the real binary ($KZ_BIN) through the shell
 * with stdout and stderr captured to files.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/alloc.h"
#include "t.h"

struct res {
    int status;
    char *out;
    size_t out_len;
    char *err;
};

static const char *bin(void)
{
    const char *b = getenv("KZ_BIN");
    return b ? b : "./kyozon";
}

/* Runs "$KZ_BIN <args>" (args is shell text). Caller frees with res_free. */
static struct res run(const char *args)
{
    struct res r = {0};
    char cmd[8192], o[512], e[512];
    snprintf(o, sizeof o, "%s/stdout", t_tmpdir());
    snprintf(e, sizeof e, "%s/stderr", t_tmpdir());
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s </dev/null", bin(), args, o, e);
    int st = system(cmd);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    r.out = t_read_file(o, &r.out_len);
    r.err = t_read_file(e, NULL);
    if (!r.out)
        r.out = kz_strdup("");
    if (!r.err)
        r.err = kz_strdup("");
    return r;
}

static void res_free(struct res *r)
{
    kz_free(r->out);
    kz_free(r->err);
}

static void help(void)
{
    static const char *cmds[] = {"run",   "info",  "tokenize", "synth", "serve",  "pull",
                                 "models", "template", "bench", "keys",  "tenants", "usage"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char a[64];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        struct res r = run(a);
        T_EQ_INT(r.status, 0);
        T_OK(strstr(r.out, "Usage: kyozon") != NULL, "%s --help prints usage", cmds[i]);
        res_free(&r);
    }
    struct res r = run("--help");
    T_EQ_INT(r.status, 0);
    T_OK(strstr(r.out, "Commands:") != NULL, "top-level help");
    res_free(&r);
    r = run("frobnicate");
    T_EQ_INT(r.status, 2);
    T_OK(strstr(r.err, "unknown command 'frobnicate'") != NULL, "unknown command: %s", r.err);
    res_free(&r);
}

static void bad_input(void)
{
    struct res r = run("run -p hi");
    T_EQ_INT(r.status, 2);
    T_OK(strstr(r.err, "-m FILE is required") != NULL, "missing -m: %s", r.err);
    res_free(&r);
    r = run("run -m /nonexistent/model.gguf -p hi");
    T_EQ_INT(r.status, 1);
    T_OK(strstr(r.err, "/nonexistent/model.gguf") != NULL, "names the file: %s", r.err);
    res_free(&r);
    r = run("serve -m /nonexistent/model.gguf");
    T_EQ_INT(r.status, 1);
    T_OK(strstr(r.err, "/nonexistent/model.gguf") != NULL, "serve names the model: %s", r.err);
    res_free(&r);
    r = run("serve --port 99999 -m x");
    T_EQ_INT(r.status, 2);
    T_OK(strstr(r.err, "--port: 99999 is out of range") != NULL, "serve bad port: %s", r.err);
    res_free(&r);
    r = run("run -m x.gguf -p hi --temp abc");
    T_EQ_INT(r.status, 2);
    T_OK(strstr(r.err, "--temp: 'abc' is not a number") != NULL, "bad number: %s", r.err);
    res_free(&r);
    r = run("run -m x.gguf -p hi --bogus");
    T_EQ_INT(r.status, 2);
    T_OK(strstr(r.err, "unknown option '--bogus'") != NULL, "unknown option: %s", r.err);
    res_free(&r);
    /* the shared option parser, through each kind of command */
    static const struct {
        const char *args, *err;
    } cases[] = {
        {"run -m", "run: -m needs a value"},
        {"serve stray", "serve: unknown option 'stray'"},
        {"serve -m x --kv-type bf16", "serve: unknown KV cache type 'bf16' (f16 or f32)"},
        /* a configuration sets the local engine up; these flags would be dropped */
        {"serve --config r.yaml --ctx 512", "serve: --ctx is for -m MODEL; with --config set it on the local provider in r.yaml"},
        {"serve --config r.yaml -m x.gguf", "serve: -m is for -m MODEL"},
        {"serve --config r.yaml --kv-type f32", "serve: --kv-type is for -m MODEL"},
        {"serve --config r.yaml --parallel 2", "serve: --parallel is for -m MODEL"},
        {"serve --config r.yaml -t 2", "serve: --threads is for -m MODEL"},
        {"serve --config r.yaml --model-name m", "serve: --model-name is for -m MODEL"},
        {"bench -m x -r 0", "bench: -r: 0 is out of range (1..1000)"},
        {"synth --seed -3", "synth: --seed: '-3' is not a non-negative integer"},
        {"tokenize -m x one two", "give the text as one argument"},
        {"pull a b", "one SOURCE at a time ('a' and 'b')"},
        {"keys create a b c", "keys: unexpected argument 'c'"},
        {"tenants create t --rpm x", "tenants: --rpm: 'x' is not an integer"},
        {"models --json --bogus", "models: unknown option '--bogus'"},
        {"template --bos", "template: --bos needs a value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r = run(cases[i].args);
        T_EQ_INT(r.status, 2);
        T_OK(strstr(r.err, cases[i].err) != NULL, "%s: %s", cases[i].args, r.err);
        res_free(&r);
    }
    char path[600], args[1400];
    snprintf(path, sizeof path, "%s/notgguf.gguf", t_tmpdir());
    FILE *f = fopen(path, "w");
    fputs("this is not a model file, just some text that is long enough", f);
    fclose(f);
    snprintf(args, sizeof args, "info -m %s", path);
    r = run(args);
    T_EQ_INT(r.status, 1);
    T_OK(strstr(r.err, "notgguf.gguf: not a GGUF file") != NULL, "bad magic: %s", r.err);
    res_free(&r);
}

/* synth -> info -> run on the result; same seed, same bytes. */
static void synth(void)
{
    char a[1400], p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/tiny-q8.gguf", t_tmpdir());
    snprintf(p2, sizeof p2, "%s/tiny-q8b.gguf", t_tmpdir());
    for (int i = 0; i < 2; i++) {
        snprintf(a, sizeof a, "synth -o %s --shape tiny --type q8_0 --seed 7 -t %d", i ? p2 : p1, i + 1);
        struct res r = run(a);
        T_OK(r.status == 0, "synth: %s", r.err);
        res_free(&r);
    }
    size_t n1 = 0, n2 = 0;
    char *b1 = t_read_file(p1, &n1), *b2 = t_read_file(p2, &n2);
    T_OK(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0, "same seed, same file, any thread count");
    kz_free(b1);
    kz_free(b2);
    snprintf(a, sizeof a, "info -m %s", p1);
    struct res r = run(a);
    T_EQ_INT(r.status, 0);
    T_OK(strstr(r.out, "architecture       llama") != NULL, "info arch:\n%s", r.out);
    T_OK(strstr(r.out, "Q8_0 x16") != NULL, "info types:\n%s", r.out);
    T_OK(strstr(r.out, "vocabulary         512") != NULL, "info vocab:\n%s", r.out);
    T_OK(strstr(r.out, "chat template      absent") != NULL, "info template:\n%s", r.out);
    res_free(&r);
    snprintf(a, sizeof a, "run -m %s -p 'Hello world' -n 8 --temp 0 -t 2", p1);
    r = run(a);
    T_OK(r.status == 0, "run on synthetic: %s", r.err);
    T_OK(strstr(r.err, "generation: 8 tokens") != NULL, "speeds on stderr: %s", r.err);
    res_free(&r);
    snprintf(a, sizeof a, "bench -m %s -p 8 -n 4 -r 1 -t 1", p1);
    r = run(a);
    T_OK(r.status == 0, "bench: %s", r.err);
    T_OK(strstr(r.out, "| pp8 |") && strstr(r.out, "| tg4 |") && strstr(r.out, "% of roofline") &&
             strstr(r.out, "GB/s"),
         "bench table:\n%s", r.out);
    res_free(&r);
    /* generation after tokens already in the context: its own row label */
    snprintf(a, sizeof a, "bench -m %s -p 8 -n 4 -d 16 -r 1 -t 1", p1);
    r = run(a);
    T_OK(r.status == 0, "bench -d: %s", r.err);
    T_OK(strstr(r.out, "| tg4 @ d16 |") != NULL, "bench -d table:\n%s", r.out);
    T_OK(strstr(r.out, "F16 KV cache") != NULL, "bench: F16 KV cache by default:\n%s", r.out);
    res_free(&r);
    snprintf(a, sizeof a, "bench -m %s -p 8 -n 4 -d 16 -r 1 -t 1 --kv-type f32", p1);
    r = run(a);
    T_OK(r.status == 0 && strstr(r.out, "F32 KV cache") != NULL, "bench --kv-type f32: %s\n%s", r.err, r.out);
    res_free(&r);
    snprintf(a, sizeof a, "run -m %s -p 'Hello world' -n 2 --kv-type q4_0", p1);
    r = run(a);
    T_EQ_INT(r.status, 1);
    T_OK(strstr(r.err, "unknown KV cache type 'q4_0' (f16 or f32)") != NULL, "bad KV type: %s", r.err);
    res_free(&r);
    /* a prompt longer than the context is refused with a clear message */
    snprintf(a, sizeof a, "run -m %s -p 'Hello world, this prompt is long' --ctx 4 --temp 0", p1);
    r = run(a);
    T_EQ_INT(r.status, 1);
    T_OK(strstr(r.err, "the context holds 4") != NULL, "ctx overflow: %s", r.err);
    res_free(&r);
    snprintf(a, sizeof a, "synth -o %s/x.gguf --shape huge --type q8_0", t_tmpdir());
    r = run(a);
    T_EQ_INT(r.status, 1);
    T_OK(strstr(r.err, "unknown shape 'huge'") != NULL, "bad shape: %s", r.err);
    res_free(&r);
}

static int hexval(char c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

/* kyozon run --temp 0 prints exactly the golden bytes; --logits-out matches
 * (KV cache in F32, as the reference kept it). */
static void golden_run(void)
{
    const char *model = t_data_path("aidreams260K.gguf");
    if (!model) {
        t_skip(8, "shared data absent: kyozon run goldens");
        return;
    }
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s", model);
    for (int i = 1; i <= 8; i++) {
        char rel[64], gpath[4096];
        snprintf(rel, sizeof rel, "golden/aidreams260K/%02d.json", i);
        snprintf(gpath, sizeof gpath, "%s", t_data_path(rel));
        json_t *j = json_load_file(gpath, 0, NULL);
        T_OK(j != NULL, "%s", gpath);
        if (!j)
            continue;
        const char *prompt = json_string_value(json_object_get(j, "prompt"));
        const char *hex = json_string_value(json_object_get(j, "gen_text_hex"));
        int n = (int)json_integer_value(json_object_get(j, "n_gen_requested"));
        /* the prompt goes through a file: it may hold quotes */
        char ppath[600], lpath[600], a[6000];
        snprintf(ppath, sizeof ppath, "%s/prompt.txt", t_tmpdir());
        snprintf(lpath, sizeof lpath, "%s/logits.json", t_tmpdir());
        FILE *f = fopen(ppath, "w");
        fputs(prompt, f);
        fclose(f);
        snprintf(a, sizeof a, "run -m %s -p \"$(cat %s)\" -n %d --temp 0 -t 1 --kv-type f32 --logits-out %s", mpath,
                 ppath, n, lpath);
        struct res r = run(a);
        T_OK(r.status == 0, "run %02d: %s", i, r.err);
        size_t hl = strlen(hex);
        int same = r.out_len == hl / 2;
        for (size_t k = 0; same && k < r.out_len; k++)
            same = (char)(hexval(hex[2 * k]) << 4 | hexval(hex[2 * k + 1])) == r.out[k];
        T_OK(same, "case %02d: stdout is exactly the golden text (got %zu bytes: %.*s)", i, r.out_len,
             (int)r.out_len, r.out);
        json_t *lj = json_load_file(lpath, 0, NULL), *gl = json_object_get(j, "last_logits");
        T_OK(lj && json_array_size(lj) == json_array_size(gl), "logits-out array of n_vocab");
        if (lj && json_array_size(lj) == json_array_size(gl)) {
            double err = 0, mean = 0, var = 0;
            size_t nv = json_array_size(gl);
            for (size_t k = 0; k < nv; k++)
                mean += json_number_value(json_array_get(gl, k));
            mean /= (double)nv;
            for (size_t k = 0; k < nv; k++) {
                double g = json_number_value(json_array_get(gl, k)), o = json_number_value(json_array_get(lj, k));
                err += (g - o) * (g - o);
                var += (g - mean) * (g - mean);
            }
            T_OK(sqrt(err / var) < 1e-4, "case %02d: logits-out nrmse %.3g", i, sqrt(err / var));
        }
        json_decref(lj);
        /* tokenize prints the prompt ids */
        snprintf(a, sizeof a, "tokenize -m %s \"$(cat %s)\"", mpath, ppath);
        res_free(&r);
        r = run(a);
        json_t *pids = json_object_get(j, "prompt_ids");
        char want[4096];
        size_t w = 0;
        for (size_t k = 0; k < json_array_size(pids); k++)
            w += (size_t)snprintf(want + w, sizeof want - w, "%s%lld", k ? " " : "",
                                  (long long)json_integer_value(json_array_get(pids, k)));
        snprintf(want + w, sizeof want - w, "\n");
        T_OK(r.status == 0 && strcmp(r.out, want) == 0, "tokenize %02d: got '%s' want '%s'", i, r.out, want);
        res_free(&r);
        json_decref(j);
    }
    /* --no-bos: no BOS, and "<s>" is plain text */
    char a[4200];
    snprintf(a, sizeof a, "tokenize -m %s --no-bos '<s>'", mpath);
    struct res r = run(a);
    T_OK(r.status == 0 && strncmp(r.out, "1 ", 2) != 0 && strcmp(r.out, "1\n") != 0, "--no-bos: '%s'", r.out);
    res_free(&r);
    snprintf(a, sizeof a, "tokenize -m %s '<s>'", mpath);
    r = run(a);
    T_OK(r.status == 0 && strcmp(r.out, "1 1\n") == 0, "special text parsed by default: '%s'", r.out);
    res_free(&r);
}

int main(void)
{
    t_subtest("help", help);
    t_subtest("bad input", bad_input);
    t_subtest("synth, info, run", synth);
    t_subtest("run goldens", golden_run);
    return t_done();
}
