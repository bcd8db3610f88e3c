/* SPDX-License-Identifier: MIT
 * Server-Sent Events formatting on top of the streamed response API
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 * an event is optional "event:" and "data:" lines and a blank line. Data
 * that contains line breaks becomes one "data:" line per line, so no byte
 * of the payload can end an event early or inject a field.
 */
#include "http/http.h"

#include <stdint.h>
#include <string.h>

#include "core/alloc.h"

/* Events up to this size are built on the stack. */
#define SSE_STACK 2048

/* Bytes needed for the formatted event, or 0 on overflow. */
static size_t event_size(const char *event, size_t ev_len, const char *data, size_t len)
{
    size_t n = 0, lines = 1;
    if (event)
        n += 7 + ev_len + 1; /* "event: " X "\n" */
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n' || (data[i] == '\r' && !(i + 1 < len && data[i + 1] == '\n')))
            lines++;
    }
    if (len > SIZE_MAX / 2 || lines > SIZE_MAX / 8)
        return 0;
    n += len + lines * 7 + 1; /* "data: " + "\n" per line, data bytes, blank line */
    return n;
}

static size_t format_event(char *out, const char *event, size_t ev_len, const char *data, size_t len)
{
    size_t o = 0;
    if (event) {
        memcpy(out + o, "event: ", 7);
        o += 7;
        memcpy(out + o, event, ev_len);
        o += ev_len;
        out[o++] = '\n';
    }
    memcpy(out + o, "data: ", 6);
    o += 6;
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < len && data[i + 1] == '\n')
                i++;
            memcpy(out + o, "\ndata: ", 7);
            o += 7;
        } else {
            out[o++] = c;
        }
    }
    out[o++] = '\n';
    out[o++] = '\n';
    return o;
}

kz_status kz_http_res_sse_event(struct kz_http_res *res, const char *event, const char *data, size_t len,
                                size_t *queued)
{
    char stack[SSE_STACK];
    char *buf = stack;
    size_t ev_len = 0;
    kz_status rc;
    if (queued)
        *queued = 0;
    if (event) {
        ev_len = strlen(event);
        /* An event name with a line break would start a new field. */
        if (memchr(event, '\n', ev_len) || memchr(event, '\r', ev_len))
            return KZ_EINVAL;
    }
    if (!data)
        len = 0;
    size_t need = event_size(event, ev_len, data, len);
    if (need == 0)
        return KZ_EINVAL;
    if (need > sizeof stack) {
        buf = kz_malloc(need);
        if (!buf)
            return KZ_ENOMEM;
    }
    size_t n = format_event(buf, event, ev_len, data ? data : "", len);
    rc = kz_http_res_write(res, buf, n, queued);
    if (buf != stack)
        kz_free(buf);
    return rc;
}

kz_status kz_http_res_sse_comment(struct kz_http_res *res, const char *text, size_t *queued)
{
    char buf[256];
    size_t tl = text ? strlen(text) : 0;
    if (queued)
        *queued = 0;
    if (tl > sizeof buf - 4 || (text && (memchr(text, '\n', tl) || memchr(text, '\r', tl))))
        return KZ_EINVAL;
    buf[0] = ':';
    buf[1] = ' ';
    if (tl)
        memcpy(buf + 2, text, tl);
    buf[2 + tl] = '\n';
    buf[3 + tl] = '\n';
    return kz_http_res_write(res, buf, tl + 4, queued);
}
