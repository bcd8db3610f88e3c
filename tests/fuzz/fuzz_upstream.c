/* SPDX-License-Identifier: MIT
 * Fuzz target: what OpenAI-dialect providers send back. The first byte
 * picks the path: an SSE stream of chat or completion chunks (fed in pieces
 * whose sizes come from the second byte, through the SSE parser into the
 * chunk decoder), or a whole response body (chat, completion, embeddings).
 * Upstream bytes are untrusted: every input must be decoded or refused with
 * an error, never crash, and events must be well-formed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "router/openai_up.h"
#include "router/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct st {
    struct kz_openai_dec dec;
    int chat;
    int failed;
};

static int check_ev(void *ud, const struct kz_ev *ev)
{
    (void)ud;
    switch (ev->type) {
    case KZ_EV_TEXT:
        if (!ev->text || ev->len == 0 || ev->index < 0)
            abort();
        break;
    case KZ_EV_FINISH:
        if (!ev->finish || ev->index < 0)
            abort();
        break;
    case KZ_EV_EMBEDDING:
        if (!ev->vec || ev->dim == 0)
            abort();
        break;
    case KZ_EV_USAGE:
    case KZ_EV_ERROR:
        break;
    }
    return 0;
}

/* A digest of events, to compare the fast path with jansson's: a hash of
 * every field and text byte, so that nothing is cut off however long. The
 * callback asks to stop after stop_after events (0: never), which both
 * paths must honour alike. */
struct log {
    uint64_t h;
    size_t n;
    size_t stop_after;
};

static void mix(struct log *l, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        l->h = (l->h ^ b[i]) * 0x100000001b3u;
}

static int log_ev(void *ud, const struct kz_ev *ev)
{
    check_ev(NULL, ev);
    struct log *l = ud;
    char tmp[96];
    int n = snprintf(tmp, sizeof tmp, "%d:%d:%zu:%s:%ld:%ld|", (int)ev->type, ev->index, ev->len,
                     ev->finish ? ev->finish : "", ev->prompt_tokens, ev->completion_tokens);
    mix(l, tmp, n > 0 ? (size_t)n : 0);
    if (ev->type == KZ_EV_TEXT)
        mix(l, ev->text, ev->len);
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static int on_sse(void *ud, const char *event, const char *d, size_t len)
{
    struct st *s = ud;
    (void)event;
    if (d[len] != '\0')
        abort(); /* the parser terminates data for its callers */
    /* the fast path and jansson alone must agree, on the result and the events */
    struct kz_openai_dec slow;
    memset(&slow, 0, sizeof slow);
    slow.no_fast = 1;
    slow.done = s->dec.done;
    struct log a = {0xcbf29ce484222325u, 0, 0}, b = a;
    kz_status r1 = kz_openai_dec_chunk(&s->dec, s->chat, d, len, log_ev, &a, NULL);
    kz_status r2 = kz_openai_dec_chunk(&slow, s->chat, d, len, log_ev, &b, NULL);
    if (r1 != r2 || a.n != b.n || a.h != b.h)
        abort();
    if (r1 != KZ_OK)
        s->failed = 1;
    return s->failed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int mode = data[0] % 5;
    size_t piece = (size_t)data[1] % 64 + 1;
    const char *p = (const char *)data + 2;
    size_t n = size - 2;
    if (mode < 2) {
        struct st s = {{0, 0, 0, 0}, mode == 0, 0};
        struct kz_sse sse;
        kz_sse_init(&sse, 4096);
        for (size_t off = 0; off < n && !s.failed; off += piece) {
            size_t k = n - off < piece ? n - off : piece;
            if (kz_sse_feed(&sse, p + off, k, on_sse, &s, NULL) != KZ_OK)
                break;
        }
        kz_sse_free(&sse);
        return 0;
    }
    enum kz_api_kind kind = mode == 2 ? KZ_API_CHAT : mode == 3 ? KZ_API_COMPLETION : KZ_API_EMBEDDINGS;
    if (kind == KZ_API_EMBEDDINGS) {
        kz_openai_decode_body(kind, p, n, check_ev, NULL, NULL);
        return 0;
    }
    /* the fast path and jansson alone must agree here too, also when the
     * callback stops them (after the number of events the second byte says) */
    struct log a = {0xcbf29ce484222325u, 0, (size_t)data[1] % 8}, b = a;
    kz_status r1 = kz_openai_decode_body_opt(kind, p, n, 0, log_ev, &a, NULL);
    kz_status r2 = kz_openai_decode_body_opt(kind, p, n, 1, log_ev, &b, NULL);
    if (r1 != r2 || a.n != b.n || a.h != b.h)
        abort();
    return 0;
}
