/* SPDX-License-Identifier: MIT
 * An incremental Server-Sent Events parser for upstream answers (the
 * WHATWG "event stream" rules): bytes arrive in any split, lines end in
 * CRLF, LF or CR, "data:" lines of one event are joined with "\n", "event:"
 * names it, lines starting with ':' are comments, a blank line dispatches.
 * "id:" and "retry:" are read and ignored (we never reconnect a stream).
 *
 * Upstream bytes are untrusted: one event (its data plus the line being
 * read) is capped at max_event bytes; beyond that the parser fails with
 * KZ_ELIMIT instead of growing, so a provider that never sends a blank line
 * cannot grow the server.
 *
 * Ownership: the parser owns its buffer (kz_sse_free). Pointers passed to the
 * callback are valid during the call only.
 */
#ifndef KZ_SSE_H
#define KZ_SSE_H

#include <stddef.h>

#include "core/status.h"

/* One dispatched event. event is "" when the event had no "event:" line. */
typedef int (*kz_sse_fn)(void *ud, const char *event, const char *data, size_t data_len);

struct kz_sse {
    size_t max_event;
    char *line;           /* the line being read (not terminated yet) */
    size_t line_len, line_cap;
    char *data;           /* data lines of the current event, joined */
    size_t data_len, data_cap;
    int has_data;
    char event[64];
    int skip_lf;          /* the previous byte was CR: a following LF belongs to it */
    int stopped;          /* the callback asked to stop */
    size_t n_events;
    size_t n_comments;
};

void kz_sse_init(struct kz_sse *p, size_t max_event /* 0: 1 MiB */);
void kz_sse_free(struct kz_sse *p);

/* Feeds bytes, calling fn for every complete event. Returns KZ_OK (also
 * when fn returned nonzero: then the rest of the input is ignored and
 * p->stopped is set), KZ_ELIMIT (an event over max_event), KZ_ENOMEM. */
kz_status kz_sse_feed(struct kz_sse *p, const char *buf, size_t n, kz_sse_fn fn, void *ud, struct kz_err *err);

#endif
