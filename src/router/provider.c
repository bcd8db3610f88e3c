/* SPDX-License-Identifier: MIT
 * Attempt-result helpers shared by the adapters (see provider.h).
 */
#include "router/provider.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void kz_attempt_fail(struct kz_attempt_result *res, enum kz_outcome o, int retryable, int status, const char *type,
                     const char *code, const char *fmt, ...)
{
    memset(res, 0, sizeof *res);
    res->outcome = o;
    res->retryable = retryable;
    res->status = status;
    res->type = type;
    res->code = code;
    res->retry_after_ms = -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof res->message, fmt, ap);
    va_end(ap);
}

void kz_attempt_from_status(struct kz_attempt_result *res, int status, long retry_after_ms, const char *provider,
                            const char *msg)
{
    if (status == 429 || status == 529) {
        kz_attempt_fail(res, KZ_OUT_THROTTLED, 1, 429, "rate_limit_error", "upstream_rate_limited",
                        "provider '%s' is rate limiting (%d): %s", provider, status, msg);
    } else if (status >= 500 || status == 408 || status == 409 || status < 100) {
        kz_attempt_fail(res, KZ_OUT_FAIL, 1, status >= 500 && status <= 599 && status != 529 ? status : 502,
                        "server_error", "upstream_error", "provider '%s' failed (%d): %s", provider, status, msg);
    } else if (status == 400 || status == 413 || status == 422) {
        /* the request itself is at fault: another provider would refuse it too */
        kz_attempt_fail(res, KZ_OUT_NEUTRAL, 0, status, "invalid_request_error", "upstream_rejected",
                        "provider '%s' refused the request (%d): %s", provider, status, msg);
    } else {
        /* 401, 403, 404 and the rest say our configuration of that provider
         * is wrong (key, model id, URL): not the client's fault, so not its
         * status either; another deployment may work */
        kz_attempt_fail(res, KZ_OUT_FAIL, 1, 502, "server_error", "upstream_error",
                        "provider '%s' answered %d: %s", provider, status, msg);
    }
    res->retry_after_ms = retry_after_ms;
}
