/* SPDX-License-Identifier: MIT
 * Fuzz target: the AWS event-stream decoder (src/router/eventstream.c) and
 * the Bedrock ConverseStream translation on top of it
 * (src/router/bedrock_stream.c). The input is a received byte stream:
 * messages are decoded in a loop until "need more" or an error, and each
 * one goes to kz_bedrock_dec_message.
 *
 * Oracles, beyond the sanitizers:
 *   - a decoded message uses at least the 16 bytes of overhead and no more
 *     than is there; its headers (at most 32) and payload lie inside it;
 *   - every shorter prefix of a decoded message is "need more" (checked at
 *     a few cut points), so a receive loop never acts on half a frame;
 *   - a message whose headers are all strings without NUL bytes encodes
 *     back, with kz_evs_encode, to exactly the bytes it was decoded from;
 *   - events are well formed: TEXT has bytes, FINISH one of the four
 *     normalized reasons, USAGE counts >= -1, ERROR a 4xx/5xx status;
 *   - only KZ_EPROTO or KZ_ELIMIT ever reject the framing, and only
 *     KZ_EPROTO a message's content.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "router/bedrock.h"
#include "router/eventstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_evstream: invariant broken: %s\n", what);
    abort();
}

static int inside(const void *p, size_t n, const uint8_t *lo, size_t len)
{
    const uint8_t *q = p;
    return n == 0 || (q >= lo && q <= lo + len && n <= (size_t)(lo + len - q));
}

static int check_event(void *ud, const struct kz_ev *ev)
{
    (void)ud;
    switch (ev->type) {
    case KZ_EV_TEXT:
        if (!ev->text || ev->len == 0)
            fail("TEXT without bytes");
        break;
    case KZ_EV_FINISH:
        if (!ev->finish || (strcmp(ev->finish, KZ_FINISH_STOP) && strcmp(ev->finish, KZ_FINISH_LENGTH) &&
                            strcmp(ev->finish, KZ_FINISH_TOOL_CALLS) && strcmp(ev->finish, KZ_FINISH_CONTENT_FILTER)))
            fail("FINISH with an unknown reason");
        break;
    case KZ_EV_USAGE:
        if (ev->prompt_tokens < -1 || ev->completion_tokens < -1)
            fail("USAGE below -1");
        break;
    case KZ_EV_ERROR:
        if (ev->status < 400 || ev->status > 599)
            fail("ERROR status outside 4xx/5xx");
        if (ev->message)
            (void)strlen(ev->message);
        if (ev->err_type)
            (void)strlen(ev->err_type);
        break;
    default: fail("unknown event type");
    }
    return 0;
}

/* Re-encodes a string-only message and compares it with its bytes. */
static void check_reencode(const struct kz_evs_msg *m, const uint8_t *bytes, size_t n)
{
    static char names[KZ_EVS_MAX_HEADERS][256], values[KZ_EVS_MAX_HEADERS][65536];
    const char *np[KZ_EVS_MAX_HEADERS], *vp[KZ_EVS_MAX_HEADERS];
    for (size_t i = 0; i < m->n_headers; i++) {
        const struct kz_evs_header *h = &m->headers[i];
        if (h->type != KZ_EVS_STRING || memchr(h->name, 0, h->name_len) || (h->str_len && memchr(h->str, 0, h->str_len)))
            return;
        memcpy(names[i], h->name, h->name_len);
        names[i][h->name_len] = '\0';
        if (h->str_len)
            memcpy(values[i], h->str, h->str_len);
        values[i][h->str_len] = '\0';
        np[i] = names[i];
        vp[i] = values[i];
    }
    uint8_t *out;
    size_t out_len;
    if (kz_evs_encode(np, vp, m->n_headers, m->payload, m->payload_len, &out, &out_len, NULL) != KZ_OK)
        fail("a decoded string-only message does not encode");
    if (out_len != n || memcmp(out, bytes, n) != 0)
        fail("re-encoding differs from the decoded bytes");
    kz_free(out);
}

static void check_prefixes(const uint8_t *p, size_t used)
{
    size_t cuts[4] = {0, 12, used / 2, used - 1};
    for (int i = 0; i < 4; i++) {
        if (cuts[i] >= used)
            continue;
        struct kz_evs_msg m;
        size_t u = 1;
        if (kz_evs_decode(p, cuts[i], &m, &u, NULL) != KZ_OK || u != 0)
            fail("a prefix of a good message is not 'need more'");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kz_bedrock_dec d;
    kz_bedrock_dec_init(&d);
    size_t off = 0;
    while (off < size) {
        struct kz_evs_msg m;
        struct kz_err err = {{0}};
        size_t used = 0;
        kz_status rc = kz_evs_decode(data + off, size - off, &m, &used, &err);
        if (rc) {
            if (rc != KZ_EPROTO && rc != KZ_ELIMIT)
                fail("framing rejected with an unexpected status");
            if (!err.msg[0])
                fail("a rejection without a message");
            break;
        }
        if (used == 0)
            break; /* need more: the rest is a partial message */
        if (used < KZ_EVS_OVERHEAD || used > size - off || m.n_headers > KZ_EVS_MAX_HEADERS)
            fail("used bytes out of range");
        const uint8_t *msg = data + off;
        if (!inside(m.payload, m.payload_len, msg, used))
            fail("payload outside the message");
        for (size_t i = 0; i < m.n_headers; i++)
            if (!inside(m.headers[i].name, m.headers[i].name_len, msg, used) || m.headers[i].name_len == 0 ||
                !inside(m.headers[i].str, m.headers[i].str_len, msg, used))
                fail("header outside the message");
        check_prefixes(msg, used);
        check_reencode(&m, msg, used);
        rc = kz_bedrock_dec_message(&d, &m, check_event, NULL, &err);
        if (rc && (rc != KZ_EPROTO || !err.msg[0]))
            fail("a message rejected without KZ_EPROTO and a reason");
        off += used;
    }
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* The decoder allocates nothing; the re-encode check at most one frame
     * (16 MiB). Anything larger is a finding. */
    kz_alloc_set_limit((size_t)17 << 20);
    return 0;
}
