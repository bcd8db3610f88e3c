/* SPDX-License-Identifier: MIT
 * The one internal answer form: whatever dialect a provider speaks (OpenAI
 * SSE chunks, Anthropic named events, Bedrock event-stream frames, the local
 * engine's tokens), its adapter turns the answer into this stream of events,
 * and the client-side encoders turn the stream back into the client's
 * dialect. Adding a provider touches one adapter file, not the router.
 *
 * A well-formed answer is: TEXT* (per choice index, in order), FINISH per
 * choice, at most one USAGE (cumulative totals: a later USAGE replaces an
 * earlier one), then the adapter's caller sees the end of the transport.
 * An ERROR event ends the answer wherever it comes.
 *
 * Pointers in an event are valid only during the callback.
 */
#ifndef KZ_EVENTS_H
#define KZ_EVENTS_H

#include <stddef.h>

enum kz_ev_type {
    KZ_EV_TEXT,   /* generated text for choice `index` (any byte split; UTF-8 overall) */
    KZ_EV_FINISH, /* choice `index` ended; finish is one of kz_finish_* below */
    KZ_EV_USAGE,  /* token totals so far for the whole request */
    KZ_EV_ERROR,  /* the provider reported a failure (in the body or mid-stream) */
    KZ_EV_EMBEDDING /* embeddings: the vector of input `index` */
};

/* Normalized finish reasons (the OpenAI names; see WIRE.md's table). */
#define KZ_FINISH_STOP "stop"
#define KZ_FINISH_LENGTH "length"
#define KZ_FINISH_TOOL_CALLS "tool_calls"
#define KZ_FINISH_CONTENT_FILTER "content_filter"

struct kz_ev {
    enum kz_ev_type type;
    int index;                 /* TEXT, FINISH: choice index (0 for chat) */
    const char *text;          /* TEXT: bytes, not NUL-terminated */
    size_t len;
    const char *finish;        /* FINISH: static string, one of KZ_FINISH_* */
    long prompt_tokens;        /* USAGE: -1 when the provider did not say */
    long completion_tokens;    /* USAGE: -1 when the provider did not say */
    int status;                /* ERROR: the HTTP status it maps to (429, 500, 503, 400, ...) */
    const char *err_type;      /* ERROR: provider's error type text or NULL */
    const char *message;       /* ERROR: human-readable, NUL-terminated, or NULL */
    const float *vec;          /* EMBEDDING: dim floats */
    size_t dim;
};

/* The sink adapters write into. Returns 0 to go on, nonzero to stop
 * decoding (the decoder then returns at once with KZ_OK). */
typedef int (*kz_ev_fn)(void *ud, const struct kz_ev *ev);

#endif
