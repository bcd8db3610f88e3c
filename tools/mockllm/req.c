/* SPDX-License-Identifier: MIT
 * The received request as the answer builders see it: owned copies of the
 * method, path, query, headers (names lower-cased once here, so every lookup
 * is a plain strcmp) and body.
 */
#include <string.h>

#include "core/alloc.h"
#include "mock.h"

void kz_mock_req_free(struct kz_mock_req *r)
{
    if (!r)
        return;
    kz_free(r->method);
    kz_free(r->path);
    kz_free(r->query);
    for (size_t i = 0; i < r->n_headers; i++) {
        kz_free(r->headers[i].name);
        kz_free(r->headers[i].value);
    }
    kz_free(r->headers);
    kz_free(r->body);
    memset(r, 0, sizeof *r);
}

const char *kz_mock_req_header(const struct kz_mock_req *r, const char *lname)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].name, lname) == 0)
            return r->headers[i].value;
    return NULL;
}

int kz_mock_req_query(const struct kz_mock_req *r, const char *name, char *out, size_t size)
{
    size_t nlen = strlen(name);
    const char *q = r->query;
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t plen = amp ? (size_t)(amp - q) : strlen(q);
        if (plen > nlen && strncmp(q, name, nlen) == 0 && q[nlen] == '=') {
            size_t vlen = plen - nlen - 1;
            if (vlen >= size)
                vlen = size - 1;
            memcpy(out, q + nlen + 1, vlen);
            out[vlen] = '\0';
            return 1;
        }
        q = amp ? amp + 1 : NULL;
    }
    return 0;
}
