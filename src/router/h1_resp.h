/* SPDX-License-Identifier: MIT
 * An incremental HTTP/1.x response parser for the upstream client: bytes
 * arrive in any split; it hands out the head one whole line at a time (the
 * status line, each header line, the blank line, each with its line end,
 * exactly as they came) and the body as decoded slices, without copying
 * them unless a head line spans two reads.
 *
 * Framing (RFC 9112 §6.3): no body for 1xx, 204 and 304; chunked when
 * Transfer-Encoding ends in "chunked"; else Content-Length; else the body
 * runs until the connection closes. Interim 1xx heads (100 Continue) are
 * passed on line by line and the real head follows. Chunk extensions and
 * trailers are read and dropped.
 *
 * Upstream bytes are untrusted: a head over 64 KiB, a malformed status
 * line, a bad or conflicting Content-Length, a bad chunk size, 101
 * (we never ask to switch protocols) all end the parse with an error.
 *
 * keep_alive says, once the response is complete, whether the connection
 * may carry another request: HTTP/1.1 unless "Connection: close", HTTP/1.0
 * only with "Connection: keep-alive", never for a body that ran to the close.
 */
#ifndef KZ_H1_RESP_H
#define KZ_H1_RESP_H

#include <stddef.h>
#include <stdint.h>

enum kz_h1_rc {
    KZ_H1_MORE,  /* all input consumed, the response goes on */
    KZ_H1_DONE,  /* the response is complete; *used says how much input it took */
    KZ_H1_STOP,  /* a callback returned nonzero */
    KZ_H1_ERROR  /* malformed: p->msg says what */
};

struct kz_h1_cbs {
    int (*on_line)(void *ud, const char *line, size_t len); /* head lines, line end included */
    int (*on_body)(void *ud, const char *p, size_t n);
};

struct kz_h1_resp {
    int state;
    int status;
    int http10;
    int keep_alive;
    int chunked, has_len, te, conn_close, conn_ka;
    int touched;     /* a byte of this response has arrived */
    uint64_t len;    /* Content-Length */
    uint64_t remain; /* of the body or of the current chunk */
    char *line;      /* a head or chunk-size line spanning reads */
    size_t line_len, line_cap;
    size_t head_bytes;
    char msg[96];
};

void kz_h1_resp_init(struct kz_h1_resp *p);
/* For the next response on the same connection (keeps the line buffer). */
void kz_h1_resp_reset(struct kz_h1_resp *p);
void kz_h1_resp_free(struct kz_h1_resp *p);

enum kz_h1_rc kz_h1_resp_feed(struct kz_h1_resp *p, const char *buf, size_t n, size_t *used,
                              const struct kz_h1_cbs *cbs, void *ud);
/* The connection closed: KZ_H1_DONE when that ends a body that runs to the
 * close, KZ_H1_ERROR (with msg) when the response was cut short. */
enum kz_h1_rc kz_h1_resp_eof(struct kz_h1_resp *p);
/* Nothing of a response has arrived yet. */
int kz_h1_resp_untouched(const struct kz_h1_resp *p);

#endif
