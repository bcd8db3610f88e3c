/* SPDX-License-Identifier: MIT
 * kyozon template: renders a chat template over a conversation and prints
 * the exact text (no newline added), the prompt a model would be given.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/template.h"
#include "cli/args.h"
#include "core/alloc.h"
#include "engine/gguf/gguf.h"
#include "engine/tok/tok.h"

int kz_cmd_template(int argc, char **argv);

static const char help[] =
    "Usage: kyozon template (--file T.jinja | -m MODEL.gguf) --messages M.json\n"
    "                       [--add-generation-prompt] [--bos-token TEXT] [--eos-token TEXT] [--now TIME]\n"
    "\n"
    "Renders a chat template the way Hugging Face transformers renders\n"
    "tokenizer.chat_template, and prints the text exactly as rendered.\n"
    "\n"
    "Options:\n"
    "  -f, --file FILE            the template (Jinja2 text)\n"
    "  -m, --model FILE           take the template (tokenizer.chat_template) and the\n"
    "                             BOS/EOS token texts from a GGUF model\n"
    "  -M, --messages FILE        JSON: an array of messages, or an object whose members\n"
    "                             all become template variables (messages, tools, ...);\n"
    "                             '-' reads standard input\n"
    "      --add-generation-prompt  end with the assistant's turn header\n"
    "      --bos-token TEXT       bos_token (default: the model's, else undefined; --bos also works)\n"
    "      --eos-token TEXT       eos_token (default: the model's, else undefined; --eos also works)\n"
    "      --now 'YYYY-MM-DD[ HH:MM:SS]'  the time strftime_now() formats\n"
    "                             (default: the local time now)\n"
    "  -h, --help                 show this help\n"
    "\n"
    "tools is None unless the messages file sets it, as in transformers.\n";

#define MAX_FILE ((size_t)64 << 20)

/* Reads a whole file ("-" = stdin) into a NUL-terminated buffer (kz_free). */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (cap - n < 4096) {
            size_t nc = cap ? cap * 2 : 65536;
            char *nb = nc <= MAX_FILE + 1 ? kz_realloc(buf, nc) : NULL;
            if (!nb) {
                KZ_FREE(buf);
                break;
            }
            buf = nb;
            cap = nc;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) {
            if (ferror(f))
                KZ_FREE(buf);
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

/* "YYYY-MM-DD" or "YYYY-MM-DD HH:MM:SS" (or with a 'T'). */
static int parse_time(const char *s, struct tm *out)
{
    int v[6] = {0, 0, 0, 12, 0, 0};
    static const char seps[] = "-- ::"; /* before month, day, hour, minute, second */
    const char *p = s;
    for (int k = 0; k < 6; k++) {
        if (k > 0) {
            if (*p == '\0' && k == 3) {
                v[3] = 12;
                break;
            }
            if (*p != seps[k - 1] && !(k == 3 && *p == 'T'))
                return -1;
            p++;
        }
        if (*p < '0' || *p > '9')
            return -1;
        int x = 0;
        for (int d = 0; *p >= '0' && *p <= '9' && d < 5; d++)
            x = x * 10 + (*p++ - '0');
        v[k] = x;
    }
    if (*p || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
        return -1;
    struct tm tm = {0};
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    time_t t = timegm(&tm); /* normalises and fills the weekday and year day */
    if (!gmtime_r(&t, out))
        return -1;
    return 0;
}

static int fixed_clock(void *ud, struct tm *now)
{
    *now = *(const struct tm *)ud;
    return 0;
}

/* Sets key to a string unless it is already in the context. */
static int set_token(json_t *ctx, const char *key, const char *text, size_t len)
{
    if (!text || json_object_get(ctx, key))
        return 0;
    return json_object_set_new(ctx, key, json_stringn(text, len));
}

int kz_cmd_template(int argc, char **argv)
{
    const char *file = NULL, *model = NULL, *messages = NULL, *bos = NULL, *eos = NULL, *now = NULL;
    int gen_prompt = 0;
    const struct kz_opt args[] = {
        KZ_ARG_FLAG("--add-generation-prompt", &gen_prompt),
        KZ_ARG_TEXT("-f|--file", &file),
        KZ_ARG_TEXT("-m|--model", &model),
        KZ_ARG_TEXT("-M|--messages", &messages),
        KZ_ARG_TEXT("--bos|--bos-token", &bos),
        KZ_ARG_TEXT("--eos|--eos-token", &eos),
        KZ_ARG_TEXT("--now", &now),
    };
    int rc = KZ_ARGS("template", help, args, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if ((!file == !model) || !messages) {
        fprintf(stderr, "kyozon template: %s (see kyozon template --help)\n",
                !messages ? "--messages FILE is required" : "give exactly one of --file and -m");
        return 2;
    }

    int status = 1;
    struct kz_err err = {{0}};
    struct kz_gguf *g = NULL;
    struct kz_tok *tok = NULL;
    char *tmpl = NULL, *msgs = NULL, *out = NULL;
    size_t tmpl_len = 0, msgs_len = 0, out_len = 0;
    const char *src = NULL, *tmpl_name = file ? file : model;
    json_t *doc = NULL, *ctx = NULL;
    struct tm fixed;
    struct kz_template_opts opts = {0};

    if (now) {
        if (parse_time(now, &fixed)) {
            fprintf(stderr, "kyozon template: --now: expected YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS', got '%s'\n", now);
            status = 2;
            goto out;
        }
        opts.clock = fixed_clock;
        opts.clock_ud = &fixed;
    }
    if (file) {
        tmpl = read_all(file, &tmpl_len);
        if (!tmpl) {
            fprintf(stderr, "kyozon template: %s: cannot read the file\n", file);
            goto out;
        }
        src = tmpl;
    } else {
        struct kz_slice s;
        if (kz_gguf_open(model, &g, &err) || kz_gguf_get_str(g, "tokenizer.chat_template", &s, &err)) {
            fprintf(stderr, "kyozon template: %s\n", err.msg);
            goto out;
        }
        src = s.p;
        tmpl_len = s.len;
        if (kz_tok_load(g, &tok, &err)) {
            fprintf(stderr, "kyozon template: %s\n", err.msg);
            goto out;
        }
    }
    msgs = read_all(messages, &msgs_len);
    if (!msgs) {
        fprintf(stderr, "kyozon template: %s: cannot read the file\n", messages);
        goto out;
    }
    json_error_t jerr;
    doc = json_loadb(msgs, msgs_len, 0, &jerr);
    if (!doc) {
        fprintf(stderr, "kyozon template: %s: line %d: %s\n", messages, jerr.line, jerr.text);
        goto out;
    }
    if (json_is_array(doc)) {
        ctx = json_object();
        if (!ctx || json_object_set(ctx, "messages", doc))
            goto oom;
    } else if (json_is_object(doc)) {
        ctx = json_incref(doc);
    } else {
        fprintf(stderr, "kyozon template: %s: expected an array of messages or an object\n", messages);
        goto out;
    }
    if (!json_object_get(ctx, "tools") && json_object_set_new(ctx, "tools", json_null()))
        goto oom;
    if (gen_prompt || !json_object_get(ctx, "add_generation_prompt"))
        if (json_object_set_new(ctx, "add_generation_prompt", json_boolean(gen_prompt)))
            goto oom;
    if (set_token(ctx, "bos_token", bos, bos ? strlen(bos) : 0) ||
        set_token(ctx, "eos_token", eos, eos ? strlen(eos) : 0))
        goto oom;
    if (tok) {
        size_t l = 0;
        const char *t = kz_tok_bos(tok) >= 0 ? kz_tok_text(tok, kz_tok_bos(tok), &l) : NULL;
        if (set_token(ctx, "bos_token", t, l))
            goto oom;
        t = kz_tok_eos(tok) >= 0 ? kz_tok_text(tok, kz_tok_eos(tok), &l) : NULL;
        if (set_token(ctx, "eos_token", t, l))
            goto oom;
    }
    if (kz_template_render(src, tmpl_len, ctx, &opts, &out, &out_len, &err)) {
        fprintf(stderr, "kyozon template: %s: %s\n", tmpl_name, err.msg);
        goto out;
    }
    if (fwrite(out, 1, out_len, stdout) != out_len || fflush(stdout)) {
        fprintf(stderr, "kyozon template: cannot write the output\n");
        goto out;
    }
    status = 0;
    goto out;
oom:
    fprintf(stderr, "kyozon template: out of memory\n");
out:
    kz_free(out);
    json_decref(ctx);
    json_decref(doc);
    kz_free(msgs);
    kz_free(tmpl);
    kz_tok_free(tok);
    kz_gguf_close(g);
    return status;
}
