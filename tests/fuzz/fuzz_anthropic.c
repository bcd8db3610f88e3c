/* SPDX-License-Identifier: MIT
 * Fuzz target: the Anthropic answer decoders (src/router/anthropic_dec.c)
 * and the provider error readers (src/router/upstream_error.c, retry_after.c).
 *
 * Input: records separated by NUL bytes, each one SSE event: the first line
 * is the event name and the rest its data; a record without a newline is an
 * event without a name. The whole input is also read as a non-streamed
 * response body, as an error body and as a Retry-After value.
 *
 * Oracles, beyond the sanitizers:
 *   - the decoders return KZ_OK or KZ_EPROTO, and KZ_EPROTO comes with a
 *     message;
 *   - every event is well-formed: TEXT non-empty valid UTF-8 for choice 0,
 *     FINISH one of the KZ_FINISH_* strings, USAGE with at least one count
 *     and no count below -1, ERROR with a 4xx/5xx status and a message;
 *   - a stream has at most one FINISH and nothing after an ERROR, and after
 *     message_stop (kz_anthropic_dec_done) or an ERROR nothing more comes;
 *   - the error text and type are NUL-terminated within their buffers,
 *     valid UTF-8 without control characters, for every buffer size;
 *   - Retry-After gives -1 or 0..KZ_RETRY_AFTER_MAX_MS.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "router/anthropic.h"
#include "router/upstream_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_anthropic: invariant broken: %s\n", what);
    abort();
}

static int valid_utf8(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = kz_utf8_seq_len(s + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

struct seen {
    int finish, error, after_end;
};

static int check_event(void *ud, const struct kz_ev *ev)
{
    struct seen *s = ud;
    if (s->error || s->after_end)
        fail("an event after the answer ended");
    switch (ev->type) {
    case KZ_EV_TEXT:
        if (ev->index != 0 || !ev->text || ev->len == 0 || !valid_utf8(ev->text, ev->len))
            fail("TEXT");
        break;
    case KZ_EV_FINISH:
        if (s->finish++ || !ev->finish ||
            (strcmp(ev->finish, KZ_FINISH_STOP) && strcmp(ev->finish, KZ_FINISH_LENGTH) &&
             strcmp(ev->finish, KZ_FINISH_TOOL_CALLS) && strcmp(ev->finish, KZ_FINISH_CONTENT_FILTER)))
            fail("FINISH");
        break;
    case KZ_EV_USAGE:
        if ((ev->prompt_tokens < 0 && ev->completion_tokens < 0) || ev->prompt_tokens < -1 ||
            ev->completion_tokens < -1)
            fail("USAGE");
        break;
    case KZ_EV_ERROR:
        s->error = 1;
        if (ev->status < 400 || ev->status > 599 || !ev->message)
            fail("ERROR");
        break;
    default:
        fail("unknown event type");
    }
    return 0;
}

static void check_status(kz_status rc, const struct kz_err *err)
{
    if (rc != KZ_OK && rc != KZ_EPROTO)
        fail("status other than KZ_OK / KZ_EPROTO");
    if (rc == KZ_EPROTO && !err->msg[0])
        fail("KZ_EPROTO without a message");
}

static void check_line(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    if (n >= size || !valid_utf8(s, n))
        fail("error text not a NUL-terminated UTF-8 string within its buffer");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
            fail("control character in error text");
}

static void stream(const char *p, size_t size)
{
    struct kz_anthropic_dec d;
    struct seen s = {0};
    kz_anthropic_dec_init(&d);
    const char *end = p + size;
    while (p < end) {
        const char *rec_end = memchr(p, '\0', (size_t)(end - p));
        if (!rec_end)
            rec_end = end;
        const char *nl = memchr(p, '\n', (size_t)(rec_end - p));
        char name[64];
        const char *event = NULL, *data = p;
        if (nl) {
            snprintf(name, sizeof name, "%.*s", (int)(nl - p), p);
            event = name;
            data = nl + 1;
        }
        s.after_end = kz_anthropic_dec_done(&d);
        struct kz_err err = {{0}};
        kz_status rc = kz_anthropic_dec_event(&d, event, data, (size_t)(rec_end - data), check_event, &s, &err);
        check_status(rc, &err);
        if (s.after_end && rc != KZ_OK)
            fail("the decoder went on after the answer ended");
        p = rec_end + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    stream(in, size);

    struct seen s = {0};
    struct kz_err err = {{0}};
    check_status(kz_anthropic_decode_response(in, size, check_event, &s, &err), &err);

    static const size_t sizes[] = {512, 9, 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char msg[512], type[512];
        memset(msg, 'x', sizeof msg);
        memset(type, 'x', sizeof type);
        kz_upstream_error_text(in, size, msg, sizes[i], type, sizes[i]);
        check_line(msg, sizes[i]);
        check_line(type, sizes[i]);
        if (sizes[i] > 1 && !msg[0])
            fail("no error message at all");
    }

    for (int ms = 0; ms <= 1; ms++) {
        long v = kz_retry_after_ms(in, size, ms, 1700000000L);
        if (v < -1 || v > KZ_RETRY_AFTER_MAX_MS)
            fail("Retry-After out of range");
    }
    return 0;
}
