/* SPDX-License-Identifier: MIT
 * Chat templates against golden renderings from Hugging Face transformers
 * (shared data, templates/<name>.jinja + <name>.cases.json; README section
 * 6). Every case must match byte for byte; an error case must fail with a
 * message that contains the template's own exception text. The clock is
 * frozen at 2026-11-22 12:00:00 as in the recordings.
 *
 * To add a template: drop <name>.jinja and <name>.cases.json into the
 * shared data directory; this test renders every *.jinja it finds there,
 * compiling each template once and rendering every case from that.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/template.h"
#include "core/alloc.h"
#include "t.h"

static int frozen_clock(void *ud, struct tm *now)
{
    (void)ud;
    memset(now, 0, sizeof *now);
    now->tm_year = 2026 - 1900;
    now->tm_mon = 10;
    now->tm_mday = 22;
    now->tm_hour = 12;
    now->tm_wday = 0;   /* a Sunday */
    now->tm_yday = 325;
    return 0;
}

/* Index of the first differing byte, for a readable failure. */
static size_t first_diff(const char *a, size_t al, const char *b, size_t bl)
{
    size_t i = 0;
    while (i < al && i < bl && a[i] == b[i])
        i++;
    return i;
}

static int total_cases, total_pass;

static void run_template(const char *dir, const char *name)
{
    char path[4096];
    size_t tl = 0;
    int w = snprintf(path, sizeof path, "%s/%s.jinja", dir, name);
    char *src = w > 0 && (size_t)w < sizeof path ? t_read_file(path, &tl) : NULL;
    w = snprintf(path, sizeof path, "%s/%s.cases.json", dir, name);
    json_error_t jerr;
    json_t *cases = w > 0 && (size_t)w < sizeof path ? json_load_file(path, 0, &jerr) : NULL;
    T_OK(src && cases && json_is_array(cases), "%s: template and cases readable", name);
    if (!src || !cases) {
        kz_free(src);
        json_decref(cases);
        return;
    }
    struct kz_err err = {{0}};
    struct kz_template *t = NULL;
    kz_status rc = kz_template_compile(src, tl, &t, &err);
    T_OK(rc == KZ_OK, "%s: compiles: %s", name, err.msg);
    struct kz_template_opts opts = {.clock = frozen_clock};
    size_t n = json_array_size(cases);
    int pass = 0;
    for (size_t i = 0; t && i < n; i++) {
        json_t *c = json_array_get(cases, i);
        json_t *ctx = json_object();
        json_object_set(ctx, "messages", json_object_get(c, "messages"));
        json_object_set(ctx, "add_generation_prompt", json_object_get(c, "add_generation_prompt"));
        json_object_set_new(ctx, "tools", json_null());
        /* a null token is not passed at all */
        if (json_is_string(json_object_get(c, "bos_token")))
            json_object_set(ctx, "bos_token", json_object_get(c, "bos_token"));
        if (json_is_string(json_object_get(c, "eos_token")))
            json_object_set(ctx, "eos_token", json_object_get(c, "eos_token"));
        const char *conv = json_string_value(json_object_get(c, "conversation"));
        int agp = json_is_true(json_object_get(c, "add_generation_prompt"));
        json_t *exp = json_object_get(c, "expected");
        char *out = NULL;
        size_t out_len = 0;
        err.msg[0] = '\0';
        rc = kz_template_render_compiled(t, ctx, &opts, &out, &out_len, &err);
        int ok;
        if (json_is_string(exp)) {
            const char *e = json_string_value(exp);
            size_t el = json_string_length(exp);
            ok = rc == KZ_OK && out_len == el && memcmp(out, e, el) == 0;
            if (rc != KZ_OK) {
                T_OK(0, "%s [%s, agp=%d]: render failed: %s", name, conv, agp, err.msg);
            } else if (!ok) {
                size_t d = first_diff(out, out_len, e, el);
                T_OK(0, "%s [%s, agp=%d]: differs at byte %zu: got \"%.*s\" want \"%.*s\"", name, conv, agp, d,
                     (int)(out_len - d < 60 ? out_len - d : 60), out + d, (int)(el - d < 60 ? el - d : 60), e + d);
            }
        } else {
            const char *want = json_string_value(json_object_get(c, "expected_error"));
            ok = rc == KZ_EINVAL && want && strstr(err.msg, want) != NULL;
            T_OK(ok, "%s [%s, agp=%d]: expected error containing \"%s\", got status %d \"%s\"", name, conv, agp,
                 want ? want : "?", (int)rc, err.msg);
        }
        pass += ok;
        kz_free(out);
        json_decref(ctx);
    }
    printf("# %-28s %d/%zu cases pass\n", name, pass, n);
    total_cases += (int)n;
    total_pass += pass;
    kz_template_free(t);
    json_decref(cases);
    kz_free(src);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_golden(void)
{
    const char *p = t_data_path("templates");
    if (!p) {
        t_skip(1, "shared data absent: no chat-template golden renderings");
        return;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", p);
    DIR *d = opendir(dir);
    if (!d) {
        t_skip(1, "templates/ missing from the shared data");
        return;
    }
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        size_t l = strlen(e->d_name);
        if (l > 6 && strcmp(e->d_name + l - 6, ".jinja") == 0)
            names[n++] = kz_strndup(e->d_name, l - 6);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    T_OK(n > 0, "at least one template in %s", dir);
    for (size_t i = 0; i < n; i++) {
        run_template(dir, names[i]);
        kz_free(names[i]);
    }
    printf("# all templates: %d/%d cases pass\n", total_pass, total_cases);
}

int main(void)
{
    t_subtest("golden chat templates", test_golden);
    return t_done();
}
