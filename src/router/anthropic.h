/* SPDX-License-Identifier: MIT
 * The Anthropic Messages dialect (POST /v1/messages): building a request
 * body from kyozon's one request form, and turning an answer, streamed
 * (named SSE events) or whole, into the internal event stream (events.h).
 *
 * What does not cross over, on purpose:
 *   - seed, min_p, repeat/presence/frequency penalties: the Messages API has
 *     no such parameters, so they are dropped rather than refused (the
 *     answer is still a faithful one, only sampled differently);
 *   - top_p when temperature is given too (current Claude models refuse
 *     the pair), and stop sequences made only of whitespace such as "\n"
 *     (Anthropic refuses them): both would otherwise fail every request;
 *   - thinking, tool_use, server tool and citation content: the OpenAI side
 *     sees one text choice, so only text blocks become TEXT events.
 *
 * Ownership: kz_anthropic_build_request returns a new body the caller frees
 * with kz_free. The decoders keep no pointer into the data they are given;
 * pointers in the events they emit are valid only during the callback.
 */
#ifndef KZ_ROUTER_ANTHROPIC_H
#define KZ_ROUTER_ANTHROPIC_H

#include <stddef.h>

#include "api/openai.h"
#include "core/status.h"
#include "router/events.h"

/* The user turn put first when a conversation does not start with one
 * (see kz_anthropic_build_request). */
#define KZ_ANTHROPIC_LEAD_USER "(conversation start)"

/* Messages API request body from an OpenAI-style chat request:
 *   - "model" = upstream_model;
 *   - system-role messages (the decoder already maps "developer" to system)
 *     joined with "\n\n" into the top-level "system" string, in order;
 *   - user and assistant messages kept in order, consecutive same-role ones
 *     merged into one turn (texts joined with "\n\n") because Anthropic wants
 *     the roles to alternate; messages with empty content are left out, as
 *     Anthropic refuses empty text;
 *   - when the first remaining turn is not a user turn (the conversation
 *     opens with an assistant greeting, or holds only system text), a user
 *     turn with the text KZ_ANTHROPIC_LEAD_USER is put first: the Messages
 *     API requires a leading user turn, and refusing the request here would
 *     fail one that OpenAI-style providers serve;
 *   - "max_tokens" = r->max_tokens, or default_max_tokens when the client
 *     gave none (Anthropic requires it);
 *   - temperature clamped to 0..1, top_p (unless temperature is given),
 *     top_k when > 0, stop -> stop_sequences (whitespace-only ones left out),
 *     "stream": true when `stream` is nonzero, metadata.user_id = r->user.
 * Only chat requests translate (KZ_EUNSUPPORTED otherwise). On success
 * *body is a new NUL-terminated string of *len bytes; kz_free it. */
kz_status kz_anthropic_build_request(const struct kz_api_request *r, const char *upstream_model, int stream,
                                     int default_max_tokens, char **body /* out */, size_t *len /* out */,
                                     struct kz_err *err);

/* Streaming decoder state; plain data, nothing to free. */
struct kz_anthropic_dec {
    long input_tokens;  /* -1 until message_start or message_delta says */
    long output_tokens; /* -1 until said; message_delta's count is cumulative */
    int finished;       /* FINISH has been emitted */
    int stopped;        /* message_stop arrived: the answer is complete */
    int failed;         /* an error event arrived: the answer ended badly */
};

void kz_anthropic_dec_init(struct kz_anthropic_dec *d);

/* Feeds one SSE event: `event` is the "event:" line's value, or NULL when
 * the server sent none (then the data's "type" names it); data/len is the
 * event's data (JSON, not necessarily NUL-terminated).
 *   message_start       -> remembers usage.input_tokens / output_tokens
 *   content_block_delta -> TEXT (index 0) for text_delta; other deltas
 *                          (thinking, signature, tool input, citations) are
 *                          skipped
 *   message_delta       -> FINISH (stop_reason mapped by kz_anthropic_finish)
 *                          and USAGE once a stop_reason arrives; one without
 *                          a stop_reason only updates the counts, and one
 *                          after FINISH gives a new USAGE (it replaces)
 *   message_stop        -> nothing (FINISH stop and USAGE first if no
 *                          message_delta carried a stop_reason); then
 *                          kz_anthropic_dec_done returns 1
 *   error               -> ERROR with the status of kz_anthropic_error_status
 *   ping, content_block_start/stop -> nothing
 * USAGE is emitted only when the provider gave at least one count. Events
 * after message_stop or error are ignored, and so are event names we do not
 * know (the API adds new ones; their data is not even parsed). The data of
 * every known event must be a JSON object: otherwise KZ_EPROTO, with err
 * naming the event. Returns KZ_OK at once when fn asks to stop. */
kz_status kz_anthropic_dec_event(struct kz_anthropic_dec *d, const char *event, const char *data, size_t len,
                                 kz_ev_fn fn, void *ud, struct kz_err *err);

/* 1 once message_stop has arrived (a stream that ends before it was cut). */
int kz_anthropic_dec_done(const struct kz_anthropic_dec *d);

/* A whole non-streamed Messages response (HTTP 200): TEXT for each text
 * block in order, FINISH, then USAGE (when the body has a count). A body
 * that is an error object ({"type":"error",...}) gives one ERROR event.
 * KZ_EPROTO when the body is not JSON or has no "content" array. */
kz_status kz_anthropic_decode_response(const char *body, size_t len, kz_ev_fn fn, void *ud, struct kz_err *err);

/* The normalized finish reason (a KZ_FINISH_* string) for a stop_reason:
 * end_turn, stop_sequence, pause_turn -> stop; max_tokens,
 * model_context_window_exceeded -> length; tool_use -> tool_calls;
 * refusal -> content_filter; NULL or anything else -> stop. */
const char *kz_anthropic_finish(const char *stop_reason);

/* The HTTP status an Anthropic error type stands for (overloaded_error 529,
 * rate_limit_error 429, invalid_request_error 400, ...); 500 when unknown
 * or NULL. Also usable for a non-200 response's body. */
int kz_anthropic_error_status(const char *type);

#endif
