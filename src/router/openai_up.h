/* SPDX-License-Identifier: MIT
 * The OpenAI dialect on the upstream side (providers of type openai, azure
 * and kyozon): the body we send, and the stream chunks we read back turned
 * into kz_ev events (router/events.h).
 *
 * By default chat and completion requests go upstream as streams with
 * stream_options.include_usage, whatever the client asked: a time to first
 * token for the latency strategy, usage for metering, and a failure before
 * the first byte of a non-streamed answer can still fail over; the
 * client-side encoder aggregates when the client did not ask to stream.
 * With `upstream_stream: client` a non-streamed request gets a whole answer
 * (kz_openai_decode_body). Both decoders read the common shapes with a
 * scanner (openai_scan.h) and leave anything else to jansson.
 *
 * Decoding is lenient where peers differ (a usage chunk with choices null
 * or absent, a missing finish_reason) and strict where a wrong shape would
 * lose text (choices not an array, content not a string): KZ_EPROTO.
 */
#ifndef KZ_OPENAI_UP_H
#define KZ_OPENAI_UP_H

#include <stddef.h>

#include "api/openai.h"
#include "core/status.h"
#include "router/events.h"

/* The client's body with "model" replaced by upstream_model; chat and
 * completions ask for a stream with usage when stream is set, and go as the
 * client sent them otherwise; embeddings ask for float vectors (the
 * client's encoding_format is applied when we answer).
 * Unknown fields pass through. kz_free *body. */
kz_status kz_openai_build_request(const struct kz_api_request *r, const char *upstream_model, int stream, char **body,
                                  size_t *len, struct kz_err *err);

struct kz_openai_dec {
    int done;     /* "[DONE]" seen */
    int n_chunks; /* JSON chunks decoded */
    int n_fast;   /* of which by the fast path (openai_scan.h) */
    int no_fast;  /* tests: always use jansson */
};

/* One SSE data payload of a chat (chat != 0) or completion stream. */
kz_status kz_openai_dec_chunk(struct kz_openai_dec *d, int chat, const char *data, size_t len, kz_ev_fn fn,
                              void *ud, struct kz_err *err);

/* A whole (non-streamed) response body: chat.completion, text_completion
 * or an embeddings list (float or base64 vectors). */
kz_status kz_openai_decode_body(enum kz_api_kind kind, const char *body, size_t len, kz_ev_fn fn, void *ud,
                                struct kz_err *err);
/* The same; no_fast (tests) always uses jansson. */
kz_status kz_openai_decode_body_opt(enum kz_api_kind kind, const char *body, size_t len, int no_fast, kz_ev_fn fn,
                                    void *ud, struct kz_err *err);

/* Maps an OpenAI finish_reason to a KZ_FINISH_* string (unknown: stop). */
const char *kz_openai_finish(const char *reason);

#endif
