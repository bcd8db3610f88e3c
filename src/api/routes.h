/* SPDX-License-Identifier: MIT
 * The server's route table: every path it answers and who may call it. The
 * handler asks kz_route_auth before anything else, and the security tests
 * walk this table (an unauthenticated call to every non-public route must
 * get 401), so a route added here without the right rule fails them.
 */
#ifndef KZ_ROUTES_H
#define KZ_ROUTES_H

#include <stddef.h>

#include "core/slice.h"

enum kz_route_auth {
    KZ_AUTH_PUBLIC, /* no key, ever: liveness and metrics */
    KZ_AUTH_KEY,    /* any valid key once keys exist */
    KZ_AUTH_ADMIN   /* an admin key once keys exist */
};

struct kz_route {
    const char *method;  /* "GET", "POST", "DELETE" */
    const char *pattern; /* a path; "{x}" stands for one segment */
    enum kz_route_auth auth;
};

extern const struct kz_route kz_routes[];
extern const size_t kz_n_routes;

/* The rule for a path (any method): that of the first matching route;
 * paths the table does not know need a key, and an admin key under /admin
 * (an unknown path says 401 or 403 before it says 404). */
enum kz_route_auth kz_route_auth_of(struct kz_slice path);

/* 1 when `path` matches `pattern`. */
int kz_route_match(const char *pattern, struct kz_slice path);

#endif
