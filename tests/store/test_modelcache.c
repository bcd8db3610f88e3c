/* SPDX-License-Identifier: MIT
 * The model cache without the network: source names to URLs and cache
 * names (including hostile ones), KYOZON_HOME, listing, and every way
 * kz_model_resolve accepts a name. To add a naming case, append a row to
 * `good` or `bad` in sources().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/modelcache.h"
#include "t.h"

static char home[1024];

static void put_file(const char *rel, const char *content)
{
    char p[2048];
    snprintf(p, sizeof p, "%s/models/%s", home, rel);
    /* mkdir -p of the parent */
    for (char *s = p + strlen(home) + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    }
    FILE *f = fopen(p, "wb");
    if (f) {
        fputs(content, f);
        fclose(f);
    }
}

static void sources(void)
{
    static const struct {
        const char *src, *url, *rel;
    } good[] = {
        {"hf:TheBloke/Llama-2-7B-GGUF/llama-2-7b.Q4_K_M.gguf",
         "https://huggingface.co/TheBloke/Llama-2-7B-GGUF/resolve/main/llama-2-7b.Q4_K_M.gguf",
         "hf/TheBloke/Llama-2-7B-GGUF/llama-2-7b.Q4_K_M.gguf"},
        {"hf:o/r/sub dir/m+1.gguf", "https://huggingface.co/o/r/resolve/main/sub%20dir/m%2B1.gguf",
         "hf/o/r/sub dir/m+1.gguf"},
        {"https://Example.COM:8443/a/b/model%20v2.gguf?download=1#x", "https://Example.COM:8443/a/b/model%20v2.gguf?download=1#x",
         "url/example.com_8443/model_v2.gguf"},
        {"http://user:secret@host/m.gguf", "http://user:secret@host/m.gguf", "url/host/m.gguf"},
        {"http://host/..", "http://host/..", "url/host/_."},
        {"HTTP://host/.hidden", "HTTP://host/.hidden", "url/host/_hidden"},
    };
    static const char *bad[] = {
        "hf:o/r",          "hf:o/r/",         "hf:o//m.gguf",   "hf:../r/m.gguf", "hf:o/r/../x.gguf",
        "hf:o/r/a/./b",    "hf:o/r/.git/x",   "hf:o/r$/m",      "hf:o/r/m.gguf.partial",
        "http://host/",    "http://host",     "http:///m.gguf", "http://h/a b",   "ftp://h/m.gguf",
        "model.gguf",      "",                "http://h/m.gguf.partial",
    };
    unsetenv("KYOZON_HF_ENDPOINT");
    unsetenv("HF_ENDPOINT");
    struct kz_model_source s;
    struct kz_err err = {{0}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        kz_status rc = kz_model_source_parse(good[i].src, &s, &err);
        T_OK(rc == KZ_OK, "%s: %s", good[i].src, err.msg);
        T_EQ_STR(s.url, good[i].url);
        T_EQ_STR(s.rel, good[i].rel);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kz_status rc = kz_model_source_parse(bad[i], &s, &err);
        T_OK(rc == KZ_EINVAL, "rejected '%s' (%s)", bad[i], err.msg);
    }
    setenv("KYOZON_HF_ENDPOINT", "http://127.0.0.1:1234/mirror/", 1);
    T_OK(kz_model_source_parse("hf:o/r/m.gguf", &s, &err) == KZ_OK, "endpoint override");
    T_EQ_STR(s.url, "http://127.0.0.1:1234/mirror/o/r/resolve/main/m.gguf");
    setenv("KYOZON_HF_ENDPOINT", "file:///etc", 1);
    T_EQ_INT(kz_model_source_parse("hf:o/r/m.gguf", &s, &err), KZ_EINVAL);
    unsetenv("KYOZON_HF_ENDPOINT");
}

static void home_dir(void)
{
    char d[2048];
    struct kz_err err = {{0}};
    setenv("KYOZON_HOME", "/srv/kz", 1);
    T_OK(kz_model_dir(d, sizeof d, &err) == KZ_OK, "KYOZON_HOME");
    T_EQ_STR(d, "/srv/kz/models");
    unsetenv("KYOZON_HOME");
    const char *h = getenv("HOME");
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", h ? h : "");
    setenv("HOME", "/home/u", 1);
    T_OK(kz_model_dir(d, sizeof d, &err) == KZ_OK, "HOME");
    T_EQ_STR(d, "/home/u/.cache/kyozon/models");
    unsetenv("HOME");
    T_EQ_INT(kz_model_dir(d, sizeof d, &err), KZ_EINVAL);
    if (h)
        setenv("HOME", saved, 1);
    setenv("KYOZON_HOME", "/srv/kz", 1);
    T_EQ_INT(kz_model_dir(d, 8, &err), KZ_ELIMIT);
}

static void listing_and_resolve(void)
{
    snprintf(home, sizeof home, "%s/home", t_tmpdir());
    mkdir(home, 0755);
    setenv("KYOZON_HOME", home, 1);
    struct kz_model_list l;
    struct kz_err err = {{0}};
    T_OK(kz_model_list(&l, &err) == KZ_OK && l.n == 0, "no cache directory: empty list (%s)", err.msg);
    kz_model_list_deinit(&l);

    put_file("hf/acme/tiny/tiny-q8.gguf", "GGUF1");
    put_file("hf/acme/tiny/sub/other.gguf", "GGUF22");
    put_file("hf/acme/big/shared.gguf", "GGUF333");
    put_file("url/example.com/shared.gguf", "GGUF4444");
    put_file("url/example.com/half.gguf.partial", "GG");
    put_file("url/example.com/.hidden", "x");
    T_OK(kz_model_list(&l, &err) == KZ_OK, "list: %s", err.msg);
    T_EQ_INT(l.n, 4);
    if (l.n == 4) {
        /* sorted by cache name; hf entries display as hf: names */
        T_EQ_STR(l.items[0].name, "hf:acme/big/shared.gguf");
        T_EQ_STR(l.items[1].name, "hf:acme/tiny/sub/other.gguf");
        T_EQ_STR(l.items[2].name, "hf:acme/tiny/tiny-q8.gguf");
        T_EQ_STR(l.items[3].name, "url/example.com/shared.gguf");
        T_EQ_STR(l.items[3].rel, "url/example.com/shared.gguf");
        T_EQ_INT(l.items[2].size, 5);
        T_OK(l.items[2].mtime > 1600000000, "mtime set");
    }
    kz_model_list_deinit(&l);

    char want[2048], got[2048];
    snprintf(want, sizeof want, "%s/models/hf/acme/tiny/tiny-q8.gguf", home);
    static const char *names[] = {"tiny-q8.gguf", "tiny-q8", "hf:acme/tiny/tiny-q8.gguf", "acme/tiny/tiny-q8.gguf",
                                  "tiny/tiny-q8", "hf/acme/tiny/tiny-q8.gguf"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        got[0] = '\0';
        kz_status rc = kz_model_resolve(names[i], got, sizeof got, &err);
        T_OK(rc == KZ_OK, "resolve '%s': %s", names[i], err.msg);
        T_EQ_STR(got, want);
    }
    /* a name inside a subdirectory of FILE */
    snprintf(want, sizeof want, "%s/models/hf/acme/tiny/sub/other.gguf", home);
    T_OK(kz_model_resolve("other", got, sizeof got, &err) == KZ_OK, "resolve 'other': %s", err.msg);
    T_EQ_STR(got, want);

    /* an existing path is returned as is, even a relative one */
    T_OK(kz_model_resolve(want, got, sizeof got, &err) == KZ_OK, "existing path");
    T_EQ_STR(got, want);
    char cwd[2048];
    T_OK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
    T_OK(chdir(home) == 0, "chdir");
    T_OK(kz_model_resolve("models/url/example.com/shared.gguf", got, sizeof got, &err) == KZ_OK, "relative path");
    T_EQ_STR(got, "models/url/example.com/shared.gguf");
    T_OK(chdir(cwd) == 0, "chdir back");

    /* two cached files share a name: ambiguous, listing both; the longer
     * names pick one */
    kz_status rc = kz_model_resolve("shared", got, sizeof got, &err);
    T_EQ_INT(rc, KZ_EINVAL);
    T_OK(strstr(err.msg, "ambiguous") && strstr(err.msg, "hf:acme/big/shared.gguf") &&
         strstr(err.msg, "url/example.com/shared.gguf"), "%s", err.msg);
    T_OK(kz_model_resolve("example.com/shared", got, sizeof got, &err) == KZ_OK, "host/name");
    snprintf(want, sizeof want, "%s/models/url/example.com/shared.gguf", home);
    T_EQ_STR(got, want);

    /* not found: says how to get it */
    rc = kz_model_resolve("nope", got, sizeof got, &err);
    T_EQ_INT(rc, KZ_ENOTFOUND);
    T_OK(strstr(err.msg, "kyozon pull") != NULL, "%s", err.msg);
    rc = kz_model_resolve("hf:acme/tiny/absent.gguf", got, sizeof got, &err);
    T_EQ_INT(rc, KZ_ENOTFOUND);
    T_OK(strstr(err.msg, "kyozon pull hf:acme/tiny/absent.gguf") != NULL, "%s", err.msg);
    /* a partial download is not a model */
    T_EQ_INT(kz_model_resolve("half", got, sizeof got, &err), KZ_ENOTFOUND);
    T_EQ_INT(kz_model_resolve("", got, sizeof got, &err), KZ_EINVAL);
    T_EQ_INT(kz_model_resolve("tiny-q8", got, 8, &err), KZ_ELIMIT);
    /* a URL that was pulled resolves to its cache file */
    T_OK(kz_model_resolve("https://example.com/dl/shared.gguf?x=1", got, sizeof got, &err) == KZ_OK, "url: %s",
         err.msg);
    T_EQ_STR(got, want);
}

int main(void)
{
    t_subtest("source names", sources);
    t_subtest("KYOZON_HOME", home_dir);
    t_subtest("list and resolve", listing_and_resolve);
    return t_done();
}
