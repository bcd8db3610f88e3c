/* SPDX-License-Identifier: MIT
 * Pulling a model: download a GGUF from Hugging Face (hf:OWNER/REPO/FILE) or
 * an http(s) URL into the model cache (layout: store/modelcache.h).
 *
 * Invariants:
 *  - bytes go to CACHE/NAME.partial; the file appears as CACHE/NAME only once
 *    complete and verified (size, sha256 when known, GGUF magic), after
 *    fsync, by rename, and the directory is fsynced after the rename;
 *  - a partial file left by an interrupted pull is resumed with an HTTP Range
 *    request (and restarted from byte 0 when the server ignores Range);
 *  - a partial file whose content is proven wrong (checksum or size
 *    mismatch, not a GGUF file) is deleted; one cut short by the network is
 *    kept for the next attempt;
 *  - two pulls of the same name never write the same partial file: the
 *    second fails at once (an exclusive flock on the partial file).
 *
 * What is checked against what:
 *  - hf: sources: the size from X-Linked-Size (else the response's own
 *    length) and the sha256 from X-Linked-ETag (else an ETag that is 64 hex
 *    digits), as Hugging Face publishes them for LFS files on the resolve
 *    URL, before its redirect. $HF_TOKEN is sent as "Authorization: Bearer"
 *    to the Hugging Face endpoint only (libcurl drops it on a redirect to
 *    another host, such as the CDN).
 *  - URLs: the size from Content-Length / Content-Range, the sha256 only
 *    when the caller passes one. A caller's sha256 also overrides the one
 *    Hugging Face publishes.
 */
#ifndef KZ_STORE_PULL_H
#define KZ_STORE_PULL_H

#include <stdint.h>

#include "core/sha256.h"
#include "core/status.h"
#include "store/modelcache.h"

struct kz_pull_opts {
    const char *sha256;       /* expected digest (64 hex digits) or NULL */
    int force;                /* download again even when already cached */
    int progress;             /* draw a progress bar on stderr (callers pass
                               * isatty(2)); otherwise silent */
    int retries;              /* further attempts after a network failure or
                               * HTTP 5xx/429, each resuming; 0 = none */
    unsigned retry_delay_ms;  /* wait before the first retry; doubles each time */
};

struct kz_pull_result {
    char path[KZ_MODEL_PATH_MAX];     /* the final file */
    char sha256[KZ_SHA256_HEX_SIZE];  /* its digest; "" when already_cached */
    uint64_t size;                    /* its size in bytes */
    int verified;                     /* sha256 compared with a published or
                                       * given digest (else only size + magic) */
    int already_cached;               /* present before; nothing downloaded */
    uint64_t resumed_from;            /* bytes reused from a partial file */
};

/* n bytes for people: "512 B", "1.5 MiB" (binary units, one decimal). */
void kz_pull_fmt_size(uint64_t n, char *out, size_t size);

/* Downloads `source` into the cache. opts may be NULL (all defaults: no
 * retries, no progress). On KZ_OK *res describes the file (also when it was
 * already cached and opts->force is off). Errors, each with a message that
 * names the URL or file:
 *   KZ_ENOTFOUND  HTTP 404 ("not found: URL")
 *   KZ_EINVAL     bad source or digest; HTTP 401/403 (message suggests
 *                 HF_TOKEN); another pull of the same file is running
 *   KZ_EPROTO     checksum or size mismatch, not a GGUF file, a server reply
 *                 that contradicts the request (message: expected vs got)
 *   KZ_EIO        network failure or other HTTP status; disk errors
 *   KZ_ELIMIT     not enough free disk space
 * Blocking; safe to call from several threads for different sources. */
kz_status kz_pull(const char *source, const struct kz_pull_opts *opts, struct kz_pull_result *res,
                  struct kz_err *err);

#endif
