/* SPDX-License-Identifier: MIT
 * The subcommands' option parser (cli/args.c): every kind of option, the
 * spellings, positional arguments, "--", and each error with its message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "t.h"

struct vals {
    int flag, seen;
    const char *text;
    long num;
    uint64_t big;
    float real;
    const char *pos[2];
};

/* kz_args on a command line given as one string (split at spaces), with
 * what it wrote to stderr in err (the last line, without the newline). */
static int parse(const char *line, struct vals *v, int with_pos, int *n_pos, char *err, size_t err_size)
{
    char buf[512], *argv[32] = {"cmd"};
    int argc = 1;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *tok = strtok(buf, " "); tok && argc < 32; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    *v = (struct vals){.num = 7};
    struct kz_args_pos pos = {v->pos, 2, 0};
    const struct kz_opt opts[] = {
        KZ_ARG_FLAG("-f|--flag", &v->flag),
        KZ_ARG_TEXT("-t|--text|--words", &v->text),
        KZ_ARG_INT("--num", &v->num, -5, 100),
        {.names = "--big", .kind = KZ_OPT_U64, .out = &v->big, .given = &v->seen},
        KZ_ARG_FLOAT("--real", &v->real, 0.0, 1.0),
    };
    char path[600];
    snprintf(path, sizeof path, "%s/stderr", t_tmpdir());
    FILE *f = fopen(path, "w+");
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(f), 2);
    int rc = KZ_ARGS("cmd", "HELP\n", opts, argc, argv, with_pos ? &pos : NULL);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(f);
    err[0] = '\0';
    while (fgets(err, (int)err_size, f))
        ;
    err[strcspn(err, "\n")] = '\0';
    fclose(f);
    *n_pos = pos.n;
    return rc;
}

static void options(void)
{
    struct vals v;
    char err[256];
    int n;
    T_EQ_INT(parse("", &v, 0, &n, err, sizeof err), -1);
    T_OK(!v.flag && !v.text && v.num == 7 && !v.seen, "nothing given, nothing set");
    T_EQ_INT(parse("-f --words hello --num -5 --big 18446744073709551615 --real 0.25", &v, 0, &n, err, sizeof err),
             -1);
    T_OK(v.flag && v.text && !strcmp(v.text, "hello") && v.num == -5, "flag, text, int: %d %s %ld", v.flag,
         v.text ? v.text : "(null)", v.num);
    T_OK(v.big == UINT64_MAX && v.seen && v.real == 0.25f, "u64, given, float");
    T_EQ_INT(parse("-t a --text b --num 1 --num 2", &v, 0, &n, err, sizeof err), -1);
    T_OK(!strcmp(v.text, "b") && v.num == 2, "the later one wins");
    T_EQ_INT(parse("-t --flag", &v, 0, &n, err, sizeof err), -1);
    T_OK(!strcmp(v.text, "--flag") && !v.flag, "a text value may start with '-'");
    T_EQ_INT(parse("--num 3 --help --bogus", &v, 0, &n, err, sizeof err), 0);
}

static void positionals(void)
{
    struct vals v;
    char err[256];
    int n;
    T_EQ_INT(parse("a -f b", &v, 1, &n, err, sizeof err), -1);
    T_OK(n == 2 && !strcmp(v.pos[0], "a") && !strcmp(v.pos[1], "b") && v.flag, "two around a flag");
    T_EQ_INT(parse("-5 -", &v, 1, &n, err, sizeof err), -1);
    T_OK(n == 2 && !strcmp(v.pos[0], "-5") && !strcmp(v.pos[1], "-"), "a negative number and '-' are arguments");
    T_EQ_INT(parse("-f -- --num -f", &v, 1, &n, err, sizeof err), -1);
    T_OK(n == 2 && !strcmp(v.pos[0], "--num") && !strcmp(v.pos[1], "-f") && v.num == 7, "after --, no options");
    T_EQ_INT(parse("a b c", &v, 1, &n, err, sizeof err), 2);
    T_EQ_STR(err, "kyozon cmd: unexpected argument 'c' (see kyozon cmd --help)");
    T_EQ_INT(parse("a", &v, 0, &n, err, sizeof err), 2);
    T_EQ_STR(err, "kyozon cmd: unknown option 'a' (see kyozon cmd --help)");
}

static void errors(void)
{
    static const struct {
        const char *line, *err;
    } cases[] = {
        {"--bogus", "kyozon cmd: unknown option '--bogus' (see kyozon cmd --help)"},
        {"--flag=1", "kyozon cmd: unknown option '--flag=1' (see kyozon cmd --help)"},
        {"--tex", "kyozon cmd: unknown option '--tex' (see kyozon cmd --help)"},
        {"-t", "kyozon cmd: -t needs a value (see kyozon cmd --help)"},
        {"--num", "kyozon cmd: --num needs a value (see kyozon cmd --help)"},
        {"--num 101", "kyozon cmd: --num: 101 is out of range (-5..100)"},
        {"--num 2x", "kyozon cmd: --num: '2x' is not an integer"},
        {"--num 99999999999999999999", "kyozon cmd: --num: '99999999999999999999' is not an integer"},
        {"--big -1", "kyozon cmd: --big: '-1' is not a non-negative integer"},
        {"--real nan", "kyozon cmd: --real: 'nan' is not a number"},
        {"--real 1.5", "kyozon cmd: --real: 1.5 is out of range (0..1)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct vals v;
        char err[256];
        int n;
        T_EQ_INT(parse(cases[i].line, &v, 1, &n, err, sizeof err), 2);
        T_OK(!strcmp(err, cases[i].err), "%s: got '%s'", cases[i].line, err);
    }
}

int main(void)
{
    t_subtest("options", options);
    t_subtest("positionals", positionals);
    t_subtest("errors", errors);
    return t_done();
}
