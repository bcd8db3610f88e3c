/* SPDX-License-Identifier: MIT
 * kyozon pull: download a model into the cache; kyozon models: list the
 * cache. The work is in store/pull.c and store/modelcache.c; this file only
 * parses options and shapes what the user sees.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "store/modelcache.h"
#include "store/pull.h"

#define PULL_RETRIES_DEFAULT 3
#define PULL_RETRY_DELAY_MS 1000u

static const char pull_help[] =
    "Usage: kyozon pull SOURCE [--force] [--sha256 HEX] [--retries N]\n"
    "\n"
    "Downloads a GGUF model into the model cache and prints its path.\n"
    "\n"
    "SOURCE:\n"
    "  hf:OWNER/REPO/FILE  a file of a Hugging Face repository (main branch);\n"
    "                      size and sha256 are checked against what Hugging Face publishes\n"
    "  https://HOST/PATH   any URL (http:// too); size is checked, sha256 with --sha256\n"
    "\n"
    "Options:\n"
    "      --force         download again even when the model is already cached\n"
    "      --sha256 HEX    expected SHA-256 of the file (64 hex digits)\n"
    "      --retries N     further attempts after a network failure, each resuming (default 3)\n"
    "  -h, --help          show this help\n"
    "\n"
    "An interrupted download is kept as FILE.partial and resumes when the same\n"
    "command runs again. The model appears under its final name only once complete\n"
    "and verified. A progress bar is drawn when stderr is a terminal.\n"
    "\n"
    "Environment:\n"
    "  KYOZON_HOME         cache root (models in $KYOZON_HOME/models; default ~/.cache/kyozon)\n"
    "  HF_TOKEN            Hugging Face access token, for private and gated repositories\n"
    "  KYOZON_HF_ENDPOINT  Hugging Face base URL (default https://huggingface.co)\n";

int kz_cmd_pull(int argc, char **argv)
{
    const char *source = NULL;
    struct kz_pull_opts o = {NULL, 0, 0, PULL_RETRIES_DEFAULT, PULL_RETRY_DELAY_MS};
    const char *sources[64]; /* more than one is an error, said below */
    struct kz_args_pos pos = {sources, 64, 0};
    long retries = o.retries;
    const struct kz_opt opts[] = {
        KZ_ARG_FLAG("--force", &o.force),
        KZ_ARG_TEXT("--sha256", &o.sha256),
        KZ_ARG_INT("--retries", &retries, 0, 100),
    };
    int rc = KZ_ARGS("pull", pull_help, opts, argc, argv, &pos);
    if (rc >= 0)
        return rc;
    if (pos.n > 1) {
        fprintf(stderr, "kyozon pull: one SOURCE at a time ('%s' and '%s')\n", sources[0], sources[1]);
        return 2;
    }
    source = pos.n ? sources[0] : NULL;
    o.retries = (int)retries;
    if (!source) {
        fprintf(stderr, "kyozon pull: SOURCE is required (see kyozon pull --help)\n");
        return 2;
    }
    o.progress = isatty(STDERR_FILENO);

    struct kz_pull_result res;
    struct kz_err err = {{0}};
    if (kz_pull(source, &o, &res, &err) != KZ_OK) {
        fprintf(stderr, "kyozon pull: %s\n", err.msg);
        return 1;
    }
    if (o.progress) {
        if (res.already_cached)
            fprintf(stderr, "already in the cache (--force downloads it again)\n");
        else if (res.verified)
            fprintf(stderr, "verified sha256 %s\n", res.sha256);
        else
            fprintf(stderr, "sha256 %s (not verified: the source publishes no checksum; see --sha256)\n", res.sha256);
    }
    printf("%s\n", res.path);
    return 0;
}

// --- models ------------------------------------------------------------------

static const char models_help[] =
    "Usage: kyozon models [--json]\n"
    "\n"
    "Lists the models in the cache ($KYOZON_HOME/models, default ~/.cache/kyozon/models):\n"
    "name (what -m and the API accept), size, and modification time.\n"
    "\n"
    "Options:\n"
    "      --json  one JSON object: {\"dir\": ..., \"models\": [{\"name\", \"path\", \"size\", \"modified\"}]}\n"
    "  -h, --help  show this help\n";

static int models_json(const char *dir, const struct kz_model_list *l)
{
    int rc = 1;
    json_t *root = json_object(), *arr = json_array();
    if (!root || !arr)
        goto out;
    json_object_set_new(root, "dir", json_string(dir));
    for (size_t i = 0; i < l->n; i++) {
        const struct kz_model_entry *e = &l->items[i];
        char when[32];
        time_t t = (time_t)e->mtime;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "name", e->name, "path", e->path, "size",
                              (json_int_t)e->size, "modified", when);
        if (!o || json_array_append_new(arr, o))
            goto out;
    }
    json_object_set(root, "models", arr);
    if (json_dumpf(root, stdout, JSON_INDENT(2)) != 0)
        goto out;
    putchar('\n');
    rc = 0;
out:
    json_decref(arr);
    json_decref(root);
    if (rc)
        fprintf(stderr, "kyozon models: out of memory\n");
    return rc;
}

int kz_cmd_models(int argc, char **argv)
{
    int json = 0;
    const struct kz_opt opts[] = {KZ_ARG_FLAG("--json", &json)};
    int status = KZ_ARGS("models", models_help, opts, argc, argv, NULL);
    if (status >= 0)
        return status;
    char dir[KZ_MODEL_PATH_MAX];
    struct kz_err err = {{0}};
    struct kz_model_list l;
    if (kz_model_dir(dir, sizeof dir, &err) != KZ_OK || kz_model_list(&l, &err) != KZ_OK) {
        fprintf(stderr, "kyozon models: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (json) {
        rc = models_json(dir, &l);
    } else if (l.n == 0) {
        fprintf(stderr, "no models in %s (kyozon pull SOURCE downloads one)\n", dir);
    } else {
        int w = 4;
        for (size_t i = 0; i < l.n; i++) {
            size_t n = strlen(l.items[i].name);
            if (n > (size_t)w)
                w = n > 80 ? 80 : (int)n;
        }
        printf("%-*s  %10s  %s\n", w, "NAME", "SIZE", "MODIFIED");
        for (size_t i = 0; i < l.n; i++) {
            char size[32], when[32];
            time_t t = (time_t)l.items[i].mtime;
            struct tm tm;
            localtime_r(&t, &tm);
            strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
            kz_pull_fmt_size(l.items[i].size, size, sizeof size);
            printf("%-*s  %10s  %s\n", w, l.items[i].name, size, when);
        }
    }
    kz_model_list_deinit(&l);
    return rc;
}
