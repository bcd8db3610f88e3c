/* SPDX-License-Identifier: MIT
 * A provider at run time: something that takes a decoded request and
 * answers with the internal event stream (router/events.h). Adapters:
 * router/remote.c (openai, azure, kyozon, anthropic, bedrock over HTTP) and
 * router/local.c (this node's engine).
 *
 * An attempt calls on_event for TEXT, FINISH, USAGE and EMBEDDING events
 * (never ERROR: a failure, also one reported inside a stream, ends the
 * attempt), then on_end exactly once, unless it was cancelled first. Both
 * run on the loop thread, never from inside start().
 *
 * The result classifies the end for the router: whether another deployment
 * may be tried, what it does to this deployment's health, and what the
 * client sees if it is the last word.
 */
#ifndef KZ_PROVIDER_H
#define KZ_PROVIDER_H

#include "api/openai.h"
#include "core/status.h"
#include "router/config.h"
#include "router/events.h"
#include "router/router.h"

struct kz_attempt;

struct kz_attempt_result {
    int ok;
    enum kz_outcome outcome; /* health effect */
    int retryable;           /* another deployment may answer instead */
    int status;              /* HTTP status for the client when this is final */
    const char *type;        /* OpenAI error type: static */
    const char *code;        /* static or NULL */
    const char *param;       /* the request field at fault (static), or NULL */
    long retry_after_ms;     /* from Retry-After, or -1 */
    int unsent;              /* the provider never received the request (no connection) */
    char message[512];
};

struct kz_attempt_cbs {
    int (*on_event)(void *ud, const struct kz_ev *ev); /* nonzero: stop (the attempt then ends) */
    void (*on_end)(void *ud, const struct kz_attempt_result *res);
};

struct kz_provider;

struct kz_provider_ops {
    /* Starts an attempt. On failure fills *res (the attempt's result) and
     * returns nonzero; no callback follows. */
    kz_status (*start)(struct kz_provider *p, const struct kz_api_request *r, const char *upstream_model,
                       const struct kz_attempt_cbs *cbs, void *ud, struct kz_attempt **out,
                       struct kz_attempt_result *res);
    void (*cancel)(struct kz_attempt *a); /* no callback after it */
    /* Active health check: calls done(ud, ok) later on the loop; NULL when
     * the provider cannot be checked. */
    void (*check)(struct kz_provider *p, void (*done)(void *ud, int ok), void *ud);
    void (*free)(struct kz_provider *p);
};

struct kz_provider {
    const struct kz_cfg_provider *cfg;
    const struct kz_provider_ops *ops;
    void *impl;
};

/* Helpers for adapters: a failed result (ok = 0) with a formatted message. */
void kz_attempt_fail(struct kz_attempt_result *res, enum kz_outcome o, int retryable, int status, const char *type,
                     const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 7, 8)))
#endif
    ;

/* Maps an upstream HTTP error status to the result: 429 and 529 throttled
 * and retryable; 5xx, 408 and 409 failures and retryable (5xx passed
 * through); 400, 413 and 422 the request's own fault (passed through, not
 * retried); other 4xx (401, 403, 404: our configuration of the provider)
 * failures, retryable, 502 for the client. */
void kz_attempt_from_status(struct kz_attempt_result *res, int status, long retry_after_ms, const char *provider,
                            const char *msg);

#endif
