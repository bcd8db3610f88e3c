/* SPDX-License-Identifier: MIT
 * Model cache naming, listing and name resolution (see modelcache.h for the
 * layout and its invariants).
 */
#include "store/modelcache.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/fmt.h"

#define LIST_MAX_ENTRIES 100000
#define LIST_MAX_DEPTH 16
static const char PARTIAL_SUFFIX[] = ".partial";

// --- small string helpers ----------------------------------------------------

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t sl = strlen(suffix);
    return len >= sl && memcmp(s + len - sl, suffix, sl) == 0;
}

static int has_prefix_ci(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++) {
        char a = *s, b = *prefix;
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return 1;
}

/* Bounded appender: on overflow `over` is set and the text stays truncated,
 * so callers check once at the end. */
struct sbuf {
    char *p;
    size_t size, len;
    int over;
};

static void sb_putc(struct sbuf *b, char c)
{
    if (b->len + 1 >= b->size) {
        b->over = 1;
        return;
    }
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}

static void sb_putn(struct sbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sb_putc(b, s[i]);
}

static void sb_puts(struct sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

// --- the models directory ----------------------------------------------------

kz_status kz_model_dir(char *out, size_t out_size, struct kz_err *err)
{
    const char *home = getenv("KYOZON_HOME");
    int n;
    if (home && *home) {
        n = snprintf(out, out_size, "%s/models", home);
    } else {
        home = getenv("HOME");
        if (!home || !*home)
            return kz_err_set(err, KZ_EINVAL, "cannot locate the model cache: set KYOZON_HOME (or HOME)");
        n = snprintf(out, out_size, "%s/.cache/kyozon/models", home);
    }
    if (n < 0 || (size_t)n >= out_size)
        return kz_err_set(err, KZ_ELIMIT, "model cache path too long");
    return KZ_OK;
}

// --- sources -----------------------------------------------------------------

/* A cache name component must not escape or hide: no "", ".", "..", no
 * leading '.', no control bytes or backslashes. */
static int safe_component(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '\\' || c == '/')
            return 0;
    }
    return 1;
}

/* Hugging Face owner and repository names: [A-Za-z0-9._-], not leading '.'. */
static int hf_name(const char *s, size_t n)
{
    if (!safe_component(s, n))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Appends s percent-encoded, leaving RFC 3986 unreserved bytes and '/'. */
static void sb_put_pct(struct sbuf *b, const char *s)
{
    static const char digits[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '.' || c == '_' || c == '~' || c == '/') {
            sb_putc(b, (char)c);
        } else {
            sb_putc(b, '%');
            sb_putc(b, digits[c >> 4]);
            sb_putc(b, digits[c & 15]);
        }
    }
}

static kz_status parse_hf(const char *source, struct kz_model_source *out, struct kz_err *err)
{
    const char *spec = source + 3;
    const char *s1 = strchr(spec, '/');
    const char *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    if (!s1 || !s2 || !s2[1])
        return kz_err_set(err, KZ_EINVAL, "'%s': expected hf:OWNER/REPO/FILE", source);
    if (!hf_name(spec, (size_t)(s1 - spec)) || !hf_name(s1 + 1, (size_t)(s2 - s1 - 1)))
        return kz_err_set(err, KZ_EINVAL, "'%s': OWNER and REPO may only use letters, digits, '.', '_' and '-'",
                          source);
    const char *file = s2 + 1;
    for (const char *c = file;;) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (!safe_component(c, n))
            return kz_err_set(err, KZ_EINVAL, "'%s': unsafe file name component '%.*s'", source, (int)n, c);
        if (!e)
            break;
        c = e + 1;
    }
    if (ends_with(file, strlen(file), PARTIAL_SUFFIX))
        return kz_err_set(err, KZ_EINVAL, "'%s': a file name may not end in %s", source, PARTIAL_SUFFIX);

    const char *ep = getenv("KYOZON_HF_ENDPOINT");
    if (!ep || !*ep)
        ep = getenv("HF_ENDPOINT");
    if (!ep || !*ep)
        ep = KZ_MODEL_HF_DEFAULT;
    if (!has_prefix_ci(ep, "http://") && !has_prefix_ci(ep, "https://"))
        return kz_err_set(err, KZ_EINVAL, "Hugging Face endpoint '%s' is not an http(s) URL", ep);
    size_t ep_len = strlen(ep);
    while (ep_len && ep[ep_len - 1] == '/')
        ep_len--;

    struct sbuf u = {out->url, sizeof out->url, 0, 0};
    out->url[0] = '\0';
    sb_putn(&u, ep, ep_len);
    sb_putc(&u, '/');
    sb_putn(&u, spec, (size_t)(s2 - spec));
    sb_puts(&u, "/resolve/main/");
    sb_put_pct(&u, file);
    struct sbuf r = {out->rel, sizeof out->rel, 0, 0};
    out->rel[0] = '\0';
    sb_puts(&r, "hf/");
    sb_puts(&r, spec);
    if (u.over || r.over)
        return kz_err_set(err, KZ_ELIMIT, "'%.64s...': source too long", source);
    out->is_hf = 1;
    return KZ_OK;
}

/* Percent-decodes s[0..n) and maps every byte outside [A-Za-z0-9._-] to '_'
 * (lower-casing when `lower`), so the result is a safe file name component. */
static void sb_put_sanitized(struct sbuf *b, const char *s, size_t n, int lower)
{
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%' && i + 2 < n && kz_hex_value(s[i + 1]) >= 0 && kz_hex_value(s[i + 2]) >= 0) {
            c = kz_hex_value(s[i + 1]) * 16 + kz_hex_value(s[i + 2]);
            i += 2;
        }
        if (lower && c >= 'A' && c <= 'Z')
            c = c - 'A' + 'a';
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            c = '_';
        sb_putc(b, (char)c);
    }
}

static kz_status parse_url(const char *source, struct kz_model_source *out, struct kz_err *err)
{
    for (const char *c = source; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return kz_err_set(err, KZ_EINVAL, "'%s': URLs may not contain spaces or non-ASCII bytes", source);
    const char *auth = strstr(source, "://") + 3;
    size_t auth_len = strcspn(auth, "/?#");
    const char *path = auth + auth_len;
    /* drop user:password@ so credentials never land in a file name */
    for (size_t i = auth_len; i > 0; i--) {
        if (auth[i - 1] == '@') {
            auth_len -= i;
            auth += i;
            break;
        }
    }
    if (auth_len == 0)
        return kz_err_set(err, KZ_EINVAL, "'%s': URL has no host", source);
    size_t path_len = strcspn(path, "?#");
    const char *name = path + path_len;
    while (name > path && name[-1] != '/')
        name--;
    size_t name_len = (size_t)(path + path_len - name);
    if (name_len == 0)
        return kz_err_set(err, KZ_EINVAL, "'%s': cannot take a file name from a URL that ends in '/'", source);

    struct sbuf r = {out->rel, sizeof out->rel, 0, 0};
    out->rel[0] = '\0';
    sb_puts(&r, "url/");
    size_t host_at = r.len;
    sb_put_sanitized(&r, auth, auth_len, 1);
    if (!r.over && out->rel[host_at] == '.')
        out->rel[host_at] = '_';
    sb_putc(&r, '/');
    size_t name_at = r.len;
    sb_put_sanitized(&r, name, name_len, 0);
    if (!r.over && out->rel[name_at] == '.')
        out->rel[name_at] = '_'; /* no hidden files, no "." or ".." */
    if (ends_with(out->rel, r.len, PARTIAL_SUFFIX))
        return kz_err_set(err, KZ_EINVAL, "'%s': a file name may not end in %s", source, PARTIAL_SUFFIX);
    int n = snprintf(out->url, sizeof out->url, "%s", source);
    if (r.over || n < 0 || (size_t)n >= sizeof out->url)
        return kz_err_set(err, KZ_ELIMIT, "'%.64s...': URL too long", source);
    out->is_hf = 0;
    return KZ_OK;
}

kz_status kz_model_source_parse(const char *source, struct kz_model_source *out, struct kz_err *err)
{
    memset(out, 0, sizeof *out);
    if (strncmp(source, "hf:", 3) == 0)
        return parse_hf(source, out, err);
    if (has_prefix_ci(source, "http://") || has_prefix_ci(source, "https://"))
        return parse_url(source, out, err);
    return kz_err_set(err, KZ_EINVAL, "'%s': expected hf:OWNER/REPO/FILE or an http(s):// URL", source);
}

// --- listing -----------------------------------------------------------------

static void entry_deinit(struct kz_model_entry *e)
{
    kz_free(e->name);
    kz_free(e->rel);
    kz_free(e->path);
}

void kz_model_list_deinit(struct kz_model_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        entry_deinit(&l->items[i]);
    KZ_FREE(l->items);
    l->n = 0;
}

/* "hf/OWNER/REPO/FILE" displays (and resolves) as "hf:OWNER/REPO/FILE". */
static char *display_name(const char *rel)
{
    if (strncmp(rel, "hf/", 3) == 0) {
        const char *a = strchr(rel + 3, '/');
        if (a && strchr(a + 1, '/')) {
            size_t n = strlen(rel);
            char *s = kz_malloc(n + 1);
            if (s) {
                memcpy(s, rel, n + 1);
                s[2] = ':';
            }
            return s;
        }
    }
    return kz_strdup(rel);
}

static kz_status list_add(struct kz_model_list *l, size_t *cap, const char *path, const char *rel,
                          const struct stat *st, struct kz_err *err)
{
    if (l->n == LIST_MAX_ENTRIES)
        return kz_err_set(err, KZ_ELIMIT, "model cache holds more than %d files", LIST_MAX_ENTRIES);
    if (l->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct kz_model_entry *p = kz_realloc(l->items, nc * sizeof *p);
        if (!p)
            return kz_err_set(err, KZ_ENOMEM, "out of memory listing the model cache");
        l->items = p;
        *cap = nc;
    }
    struct kz_model_entry *e = &l->items[l->n];
    e->name = display_name(rel);
    e->rel = kz_strdup(rel);
    e->path = kz_strdup(path);
    e->size = (uint64_t)st->st_size;
    e->mtime = (int64_t)st->st_mtime;
    if (!e->name || !e->rel || !e->path) {
        entry_deinit(e);
        return kz_err_set(err, KZ_ENOMEM, "out of memory listing the model cache");
    }
    l->n++;
    return KZ_OK;
}

/* Walks dir (absolute path `path`, cache-relative `rel`, "" at the top). */
static kz_status walk(struct kz_model_list *l, size_t *cap, const char *path, const char *rel, int depth,
                      struct kz_err *err)
{
    kz_status rc = KZ_OK;
    char *cpath = NULL, *crel = NULL;
    if (depth > LIST_MAX_DEPTH)
        return kz_err_set(err, KZ_ELIMIT, "%s: directories nested too deep", path);
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT && depth == 0)
            return KZ_OK; /* nothing pulled yet */
        return kz_err_set(err, KZ_EIO, "%s: %s", path, strerror(errno));
    }
    size_t path_len = strlen(path), rel_len = strlen(rel);
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                rc = kz_err_set(err, KZ_EIO, "%s: %s", path, strerror(errno));
            break;
        }
        size_t nl = strlen(de->d_name);
        if (de->d_name[0] == '.' || ends_with(de->d_name, nl, PARTIAL_SUFFIX))
            continue;
        cpath = kz_malloc(path_len + nl + 2);
        crel = kz_malloc(rel_len + nl + 2);
        if (!cpath || !crel) {
            rc = kz_err_set(err, KZ_ENOMEM, "out of memory listing the model cache");
            goto out;
        }
        snprintf(cpath, path_len + nl + 2, "%s/%s", path, de->d_name);
        snprintf(crel, rel_len + nl + 2, "%s%s%s", rel, rel_len ? "/" : "", de->d_name);
        struct stat lst, st;
        if (lstat(cpath, &lst) == 0 && stat(cpath, &st) == 0) {
            /* recurse into real directories only: a symlinked directory
             * could form a loop */
            if (S_ISDIR(lst.st_mode))
                rc = walk(l, cap, cpath, crel, depth + 1, err);
            else if (S_ISREG(st.st_mode))
                rc = list_add(l, cap, cpath, crel, &st, err);
        } /* else: vanished while we looked, or a dangling link: skip */
        KZ_FREE(cpath);
        KZ_FREE(crel);
        if (rc)
            goto out;
    }
out:
    kz_free(cpath);
    kz_free(crel);
    closedir(d);
    return rc;
}

static int by_rel(const void *a, const void *b)
{
    return strcmp(((const struct kz_model_entry *)a)->rel, ((const struct kz_model_entry *)b)->rel);
}

kz_status kz_model_list(struct kz_model_list *out, struct kz_err *err)
{
    char dir[KZ_MODEL_PATH_MAX];
    size_t cap = 0;
    out->items = NULL;
    out->n = 0;
    kz_status rc = kz_model_dir(dir, sizeof dir, err);
    if (rc)
        goto out;
    rc = walk(out, &cap, dir, "", 0, err);
    if (rc)
        goto out;
    if (out->n > 1)
        qsort(out->items, out->n, sizeof *out->items, by_rel);
out:
    if (rc)
        kz_model_list_deinit(out);
    return rc;
}

// --- resolving ---------------------------------------------------------------

static kz_status copy_out(const char *path, char *out, size_t out_size, struct kz_err *err)
{
    size_t n = strlen(path);
    if (n >= out_size)
        return kz_err_set(err, KZ_ELIMIT, "model path too long: %s", path);
    memcpy(out, path, n + 1);
    return KZ_OK;
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Does `rel` (or rel without ".gguf") equal `name` or end in "/" name? */
static int rel_matches(const char *rel, const char *name)
{
    size_t rl = strlen(rel), nl = strlen(name);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (!ends_with(rel, rl, ".gguf"))
                break;
            rl -= 5;
        }
        if (rl == nl && memcmp(rel, name, nl) == 0)
            return 1;
        if (rl > nl && rel[rl - nl - 1] == '/' && memcmp(rel + rl - nl, name, nl) == 0)
            return 1;
    }
    return 0;
}

kz_status kz_model_resolve(const char *name, char *out_path, size_t out_size, struct kz_err *err)
{
    struct kz_model_list l = {NULL, 0};
    kz_status rc;
    char dir[KZ_MODEL_PATH_MAX];
    if (!name || !*name)
        return kz_err_set(err, KZ_EINVAL, "empty model name");
    if (is_file(name))
        return copy_out(name, out_path, out_size, err);

    rc = kz_model_dir(dir, sizeof dir, err);
    if (rc)
        return rc;
    if (strncmp(name, "hf:", 3) == 0 || has_prefix_ci(name, "http://") || has_prefix_ci(name, "https://")) {
        struct kz_model_source src;
        rc = kz_model_source_parse(name, &src, err);
        if (rc)
            return rc;
        char path[KZ_MODEL_PATH_MAX];
        int n = snprintf(path, sizeof path, "%s/%s", dir, src.rel);
        if (n < 0 || (size_t)n >= sizeof path)
            return kz_err_set(err, KZ_ELIMIT, "model path too long");
        if (!is_file(path))
            return kz_err_set(err, KZ_ENOTFOUND, "model '%s' is not in the cache %s (run: kyozon pull %s)", name,
                              dir, name);
        return copy_out(path, out_path, out_size, err);
    }

    rc = kz_model_list(&l, err);
    if (rc)
        goto out;
    size_t hit = 0, n_hits = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (strcmp(l.items[i].rel, name) == 0) { /* the full cache name wins outright */
            hit = i;
            n_hits = 1;
            break;
        }
        if (rel_matches(l.items[i].rel, name)) {
            if (n_hits == 0)
                hit = i;
            n_hits++;
        }
    }
    if (n_hits == 0) {
        rc = kz_err_set(err, KZ_ENOTFOUND,
                        "model '%s' not found: no such file, and nothing by that name in %s "
                        "(kyozon models lists the cache; kyozon pull downloads)",
                        name, dir);
        goto out;
    }
    if (n_hits > 1) {
        rc = kz_err_set(err, KZ_EINVAL, "model name '%s' is ambiguous; it matches", name);
        for (size_t i = 0; i < l.n; i++)
            if (rel_matches(l.items[i].rel, name))
                kz_err_append(err, " %s", l.items[i].name);
        goto out;
    }
    rc = copy_out(l.items[hit].path, out_path, out_size, err);
out:
    kz_model_list_deinit(&l);
    return rc;
}
