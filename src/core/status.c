/* SPDX-License-Identifier: MIT */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *kz_status_str(kz_status s)
{
    switch (s) {
    case KZ_OK: return "ok";
    case KZ_ENOMEM: return "out of memory";
    case KZ_EINVAL: return "invalid argument";
    case KZ_EPROTO: return "malformed data";
    case KZ_ELIMIT: return "limit exceeded";
    case KZ_EIO: return "I/O error";
    case KZ_ENOTFOUND: return "not found";
    case KZ_EUNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}

kz_status kz_err_set(struct kz_err *e, kz_status s, const char *fmt, ...)
{
    if (!e)
        return s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return s;
}

void kz_err_prefix(struct kz_err *e, const char *prefix)
{
    if (!e)
        return;
    size_t pl = strlen(prefix), ml = strlen(e->msg);
    if (pl + 3 > sizeof e->msg)
        return;
    size_t keep = ml < sizeof e->msg - 1 - pl - 2 ? ml : sizeof e->msg - 1 - pl - 2;
    memmove(e->msg + pl + 2, e->msg, keep);
    memcpy(e->msg, prefix, pl);
    e->msg[pl] = ':';
    e->msg[pl + 1] = ' ';
    e->msg[pl + 2 + keep] = '\0';
}

void kz_err_append(struct kz_err *e, const char *fmt, ...)
{
    if (!e)
        return;
    size_t ml = strlen(e->msg);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg + ml, sizeof e->msg - ml, fmt, ap);
    va_end(ap);
}
