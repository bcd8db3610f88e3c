/* SPDX-License-Identifier: MIT
 * Fuzz target: the upstream client's HTTP/1.x response parser, on what a
 * provider might send. The first byte sets the size of the pieces the rest
 * is fed in. Every input must parse or be refused, never crash, and the
 * verdict, the head lines and the body must be the same whole as in pieces;
 * the body is never longer than the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "router/h1_resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
    uint32_t lines_hash, body_hash;
    size_t nl, nb;
};

static uint32_t mix(uint32_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

static int on_line(void *ud, const char *p, size_t n)
{
    struct out *o = ud;
    if (n == 0 || p[n - 1] != '\n')
        abort(); /* a head line always comes whole, with its line end */
    o->lines_hash = mix(o->lines_hash, p, n);
    o->nl += n;
    return 0;
}

static int on_body(void *ud, const char *p, size_t n)
{
    struct out *o = ud;
    if (n == 0)
        abort();
    o->body_hash = mix(o->body_hash, p, n);
    o->nb += n;
    return 0;
}

static const struct kz_h1_cbs cbs = {on_line, on_body};

static enum kz_h1_rc parse(const char *s, size_t n, size_t step, struct out *o, size_t *taken)
{
    struct kz_h1_resp p;
    kz_h1_resp_init(&p);
    memset(o, 0, sizeof *o);
    o->lines_hash = o->body_hash = 2166136261u;
    enum kz_h1_rc rc = KZ_H1_MORE;
    size_t i = 0;
    while (i < n && rc == KZ_H1_MORE) {
        size_t take = n - i < step ? n - i : step, used = 0;
        rc = kz_h1_resp_feed(&p, s + i, take, &used, &cbs, o);
        if (used > take || (rc == KZ_H1_MORE && used != take))
            abort();
        i += used;
    }
    if (rc == KZ_H1_MORE)
        rc = kz_h1_resp_eof(&p);
    if (rc == KZ_H1_ERROR && !p.msg[0])
        abort(); /* a refusal always says why */
    *taken = i;
    kz_h1_resp_free(&p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    struct out whole, pieces;
    size_t t1, t2;
    enum kz_h1_rc r1 = parse(s, n, n ? n : 1, &whole, &t1);
    enum kz_h1_rc r2 = parse(s, n, step, &pieces, &t2);
    if (r1 != r2 || whole.nl != pieces.nl || whole.lines_hash != pieces.lines_hash)
        abort();
    /* after an error, how much body got out before it depends on the pieces */
    if (r1 == KZ_H1_DONE && (whole.nb != pieces.nb || whole.body_hash != pieces.body_hash || t1 != t2))
        abort();
    if (whole.nb + whole.nl > n || pieces.nb + pieces.nl > n)
        abort();
    return 0;
}
