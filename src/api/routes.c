/* SPDX-License-Identifier: MIT
 * The route table (see routes.h).
 */
#include "api/routes.h"

#include <string.h>

const struct kz_route kz_routes[] = {
    {"GET", "/health", KZ_AUTH_PUBLIC},
    {"GET", "/metrics", KZ_AUTH_PUBLIC},
    {"GET", "/v1/models", KZ_AUTH_KEY},
    {"GET", "/v1/models/{id}", KZ_AUTH_KEY},
    {"POST", "/v1/chat/completions", KZ_AUTH_KEY},
    {"POST", "/v1/completions", KZ_AUTH_KEY},
    {"POST", "/v1/embeddings", KZ_AUTH_KEY},
    {"GET", "/v1/usage", KZ_AUTH_KEY},
    {"GET", "/v1/providers", KZ_AUTH_ADMIN},
    {"GET", "/admin/tenants", KZ_AUTH_ADMIN},
    {"POST", "/admin/tenants", KZ_AUTH_ADMIN},
    {"POST", "/admin/tenants/{name}/credit", KZ_AUTH_ADMIN},
    {"GET", "/admin/keys", KZ_AUTH_ADMIN},
    {"POST", "/admin/keys", KZ_AUTH_ADMIN},
    {"POST", "/admin/keys/{id}/revoke", KZ_AUTH_ADMIN},
    {"DELETE", "/admin/keys/{id}", KZ_AUTH_ADMIN},
    {"GET", "/admin/usage", KZ_AUTH_ADMIN},
};
const size_t kz_n_routes = sizeof kz_routes / sizeof kz_routes[0];

int kz_route_match(const char *pattern, struct kz_slice path)
{
    const char *p = pattern;
    size_t i = 0;
    while (*p) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (!close)
                return 0;
            size_t start = i;
            while (i < path.len && path.p[i] != '/')
                i++;
            if (i == start)
                return 0; /* a segment may not be empty */
            p = close + 1;
            continue;
        }
        if (i >= path.len || path.p[i] != *p)
            return 0;
        i++;
        p++;
    }
    return i == path.len;
}

enum kz_route_auth kz_route_auth_of(struct kz_slice path)
{
    for (size_t i = 0; i < kz_n_routes; i++)
        if (kz_route_match(kz_routes[i].pattern, path))
            return kz_routes[i].auth;
    return path.len >= 6 && memcmp(path.p, "/admin", 6) == 0 ? KZ_AUTH_ADMIN : KZ_AUTH_KEY;
}
