/* SPDX-License-Identifier: MIT
 * The model cache: where pulled GGUF files live, how a pull source maps to a
 * file name, listing, and resolving the model name a user or request gives.
 *
 * Layout (all under $KYOZON_HOME/models; KYOZON_HOME defaults to
 * $HOME/.cache/kyozon):
 *
 *   hf/OWNER/REPO/FILE         pulled from hf:OWNER/REPO/FILE (FILE may
 *                              contain '/', kept as subdirectories)
 *   url/HOST[_PORT]/NAME       pulled from http(s)://HOST[:PORT]/.../NAME;
 *                              HOST and NAME percent-decoded, then every byte
 *                              outside [A-Za-z0-9._-] becomes '_'
 *   <any of the above>.partial an unfinished download (resumable)
 *
 * Invariants: a file under its final name is complete and verified (pull
 * renames it into place only after the size, checksum and GGUF magic check,
 * and after fsync). Cache names never contain "." or ".." components, never
 * start with '.', and never end in ".partial", so no source can write
 * outside the cache or onto another download's partial file.
 *
 * Thread-safety: all functions are reentrant; they read the environment
 * (KYOZON_HOME, HOME, KYOZON_HF_ENDPOINT, HF_ENDPOINT) on each call.
 */
#ifndef KZ_STORE_MODELCACHE_H
#define KZ_STORE_MODELCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define KZ_MODEL_URL_MAX 4096   /* bytes of a source URL, NUL included */
#define KZ_MODEL_REL_MAX 1024   /* bytes of a cache-relative name, NUL included */
#define KZ_MODEL_PATH_MAX 4096  /* bytes of a cache path, NUL included */
#define KZ_MODEL_HF_DEFAULT "https://huggingface.co"

/* The models directory ($KYOZON_HOME/models or $HOME/.cache/kyozon/models)
 * into out. It is not created. KZ_EINVAL when neither variable is set,
 * KZ_ELIMIT when out_size is too small. */
kz_status kz_model_dir(char *out, size_t out_size, struct kz_err *err);

/* A pull source, parsed. */
struct kz_model_source {
    int is_hf;                   /* 1 for hf:OWNER/REPO/FILE */
    char url[KZ_MODEL_URL_MAX];  /* what to GET: the resolve URL for hf: */
    char rel[KZ_MODEL_REL_MAX];  /* cache name, relative to kz_model_dir */
};

/* Parses `source` ("hf:OWNER/REPO/FILE", "https://..." or "http://...").
 * For hf: the URL is <endpoint>/OWNER/REPO/resolve/main/FILE with FILE
 * percent-encoded; the endpoint is $KYOZON_HF_ENDPOINT, else $HF_ENDPOINT,
 * else KZ_MODEL_HF_DEFAULT. Returns KZ_EINVAL with a message naming the
 * problem for anything else (unknown scheme, empty or unsafe components,
 * a name ending in ".partial"), KZ_ELIMIT when a field does not fit. */
kz_status kz_model_source_parse(const char *source, struct kz_model_source *out, struct kz_err *err);

/* One cached model. Strings are owned by the list. */
struct kz_model_entry {
    char *name;      /* what to pass to kz_model_resolve: "hf:OWNER/REPO/FILE"
                      * for Hugging Face files, else the cache-relative name */
    char *rel;       /* cache-relative name ("hf/OWNER/REPO/FILE", "url/...") */
    char *path;      /* absolute path */
    uint64_t size;   /* bytes */
    int64_t mtime;   /* modification time, seconds since the epoch (UTC) */
};

struct kz_model_list {
    struct kz_model_entry *items; /* n of them, sorted by rel */
    size_t n;
};

/* Lists the complete models in the cache (regular files, symlinks to regular
 * files; not *.partial, not names starting with '.'). A missing cache
 * directory is an empty list. On success the caller owns *out and frees it
 * with kz_model_list_deinit; on failure *out is empty. KZ_EIO when a
 * directory cannot be read, KZ_ELIMIT past 100000 entries or 16 levels. */
kz_status kz_model_list(struct kz_model_list *out, struct kz_err *err);
void kz_model_list_deinit(struct kz_model_list *l);

/* Turns what a user or request names into a model file path:
 *   1. an existing regular file: copied to out_path as is;
 *   2. hf:OWNER/REPO/FILE or an http(s) URL: its cache file, if pulled;
 *   3. otherwise a cached model whose cache-relative name, with or without
 *      the ".gguf" suffix, equals name_or_path or ends with "/" name_or_path
 *      (so "FILE", "FILE" without .gguf, "OWNER/REPO/FILE", and the
 *      "hf/..." or "url/..." names all work).
 * Returns KZ_OK; KZ_ENOTFOUND (message says how to pull) when nothing
 * matches; KZ_EINVAL when several cached models match (message lists them)
 * or the name is empty; KZ_ELIMIT when out_size is too small. */
kz_status kz_model_resolve(const char *name_or_path, char *out_path, size_t out_size, struct kz_err *err);

#endif
