/* SPDX-License-Identifier: MIT
 * kz_status: the one error type every fallible function returns, and
 * struct kz_err: the human-readable detail that travels with it.
 *
 * Invariant: KZ_OK is 0, so `if (rc) goto out;` works everywhere. The detail
 * message is written once where the problem is detected (naming the file,
 * key or field) and printed once at the edge (CLI, HTTP error object).
 */
#ifndef KZ_STATUS_H
#define KZ_STATUS_H

#include <stddef.h>

typedef enum kz_status {
    KZ_OK = 0,
    KZ_ENOMEM,    /* allocation failed */
    KZ_EINVAL,    /* bad argument or bad input (user-facing) */
    KZ_EPROTO,    /* malformed file or wire data */
    KZ_ELIMIT,    /* a configured or structural limit was exceeded */
    KZ_EIO,       /* operating-system I/O error */
    KZ_ENOTFOUND, /* a key, tensor or file is absent */
    KZ_EUNSUPPORTED /* valid input we do not implement (yet) */
} kz_status;

/* Static text for a status; never NULL. */
const char *kz_status_str(kz_status s);

#define KZ_ERR_MSG_SIZE 512

/* Error detail, caller-owned (usually on the stack). msg is always
 * NUL-terminated; empty when nothing was recorded. */
struct kz_err {
    char msg[KZ_ERR_MSG_SIZE];
};

/* Formats into e->msg (truncating) and returns `s`, so a detector can write
 * `return kz_err_set(err, KZ_EPROTO, "%s: bad magic", path);`.
 * e may be NULL (the message is dropped). */
kz_status kz_err_set(struct kz_err *e, kz_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prepends "prefix: " to an existing message (for adding a file name at a
 * higher level). e may be NULL. */
void kz_err_prefix(struct kz_err *e, const char *prefix);

/* Appends formatted text to an existing message (truncating). e may be NULL. */
void kz_err_append(struct kz_err *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
