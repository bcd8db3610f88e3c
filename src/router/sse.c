/* SPDX-License-Identifier: MIT
 * Incremental SSE parsing (see sse.h). Lines are found a word at a time
 * (core/bytescan.h); a line that arrived whole is read where it lies, and
 * only one cut by the end of an input is copied into the line buffer, which
 * keeps the state machine simple across arbitrary splits.
 */
#include "router/sse.h"

#include <string.h>

#include "core/alloc.h"
#include "core/bytescan.h"

void kz_sse_init(struct kz_sse *p, size_t max_event)
{
    memset(p, 0, sizeof *p);
    p->max_event = max_event ? max_event : (size_t)1 << 20;
}

void kz_sse_free(struct kz_sse *p)
{
    kz_free(p->line);
    kz_free(p->data);
    p->line = p->data = NULL;
}

static kz_status grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return KZ_OK;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    char *nb = kz_realloc(*buf, c);
    if (!nb)
        return KZ_ENOMEM;
    *buf = nb;
    *cap = c;
    return KZ_OK;
}

/* A complete line l[0..n) (without its terminator): from the input when it
 * arrived whole, else from p->line. */
static kz_status line_done(struct kz_sse *p, const char *l, size_t n, kz_sse_fn fn, void *ud, struct kz_err *err)
{
    if (n == 0) { /* blank line: dispatch */
        if (p->has_data) {
            if (grow(&p->data, &p->data_cap, p->data_len + 1))
                return kz_err_set(err, KZ_ENOMEM, "out of memory");
            p->data[p->data_len] = '\0';
            p->n_events++;
            if (fn(ud, p->event, p->data, p->data_len))
                p->stopped = 1;
        }
        p->has_data = 0;
        p->data_len = 0;
        p->event[0] = '\0';
        return KZ_OK;
    }
    if (l[0] == ':') {
        p->n_comments++;
        return KZ_OK;
    }
    const char *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vlen = colon ? n - flen - 1 : 0;
    if (vlen && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (flen == 4 && memcmp(l, "data", 4) == 0) {
        size_t need = p->data_len + (p->has_data ? 1 : 0) + vlen + 1;
        if (need > p->max_event)
            return kz_err_set(err, KZ_ELIMIT, "upstream event larger than %zu bytes", p->max_event);
        if (grow(&p->data, &p->data_cap, need))
            return kz_err_set(err, KZ_ENOMEM, "out of memory");
        if (p->has_data)
            p->data[p->data_len++] = '\n';
        memcpy(p->data + p->data_len, v, vlen);
        p->data_len += vlen;
        p->has_data = 1;
    } else if (flen == 5 && memcmp(l, "event", 5) == 0) {
        size_t k = vlen < sizeof p->event - 1 ? vlen : sizeof p->event - 1;
        memcpy(p->event, v, k);
        p->event[k] = '\0';
    }
    return KZ_OK;
}

kz_status kz_sse_feed(struct kz_sse *p, const char *buf, size_t n, kz_sse_fn fn, void *ud, struct kz_err *err)
{
    for (size_t i = 0; i < n && !p->stopped;) {
        char c = buf[i];
        if (p->skip_lf) {
            p->skip_lf = 0;
            if (c == '\n') {
                i++;
                continue;
            }
        }
        if (c == '\r' || c == '\n') { /* the end of the line collected in p->line */
            p->skip_lf = c == '\r';
            size_t len = p->line_len;
            p->line_len = 0;
            kz_status rc = line_done(p, p->line, len, fn, ud, err);
            if (rc)
                return rc;
            i++;
            continue;
        }
        size_t run = kz_scan_line(buf + i, n - i);
        if (p->line_len + run + p->data_len > p->max_event)
            return kz_err_set(err, KZ_ELIMIT, "upstream event larger than %zu bytes", p->max_event);
        if (p->line_len == 0 && i + run < n) {
            /* the whole line is in this input: read in place, no copy */
            p->skip_lf = buf[i + run] == '\r';
            kz_status rc = line_done(p, buf + i, run, fn, ud, err);
            if (rc)
                return rc;
            i += run + 1;
            continue;
        }
        /* the line goes on in the next input: keep what came */
        if (grow(&p->line, &p->line_cap, p->line_len + run))
            return kz_err_set(err, KZ_ENOMEM, "out of memory");
        memcpy(p->line + p->line_len, buf + i, run);
        p->line_len += run;
        i += run;
    }
    return KZ_OK;
}
