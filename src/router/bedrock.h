/* SPDX-License-Identifier: MIT
 * Amazon Bedrock Converse / ConverseStream translation: OpenAI-style
 * requests to Converse bodies, and Converse answers (a JSON body, or
 * event-stream messages from router/eventstream.h) to the internal event
 * stream of router/events.h. Transport and signing (router/sigv4.h) are the
 * caller's.
 *
 * Field names follow the AWS Bedrock API Reference (Converse,
 * ConverseStream, ConverseStreamOutput, InferenceConfiguration,
 * MessageStopEvent, ConverseStreamMetadataEvent, TokenUsage), checked
 * against the bedrock-runtime service model that AWS SDKs are generated from.
 *
 * What is translated: system messages (wherever they are) become the
 * top-level "system" list, in order; user and assistant messages become
 * "messages" with one {"text"} block each, and consecutive messages of the
 * same role are merged into one message with several blocks, since Converse
 * requires the roles to alternate. Empty or whitespace-only texts are left
 * out (Bedrock refuses blank text blocks). max_tokens, temperature, top_p
 * and stop map to inferenceConfig (maxTokens, temperature, topP,
 * stopSequences); top_k (when above 0, as 0 means no cut) goes to
 * additionalModelRequestFields.top_k, the name Anthropic models on Bedrock
 * read. Sampling knobs Converse lacks
 * (seed, penalties, min_p) are not sent.
 *
 * Stop reasons map per WIRE.md's normalization table: end_turn and
 * stop_sequence -> stop; max_tokens and model_context_window_exceeded ->
 * length; tool_use -> tool_calls; guardrail_intervened and content_filtered
 * -> content_filter; anything else (malformed_model_output, a reason added
 * later) -> stop, since the answer did end and the text so far is whole.
 *
 * Ownership: strings returned here are the caller's (kz_free). Decoders
 * call fn with events whose pointers live only during the call. The
 * decoders never print; errors come back as kz_status with err naming the
 * problem.
 */
#ifndef KZ_BEDROCK_H
#define KZ_BEDROCK_H

#include <stddef.h>

#include "api/openai.h"
#include "core/status.h"
#include "router/eventstream.h"
#include "router/events.h"

/* Converse / ConverseStream request body (JSON, NUL-terminated, *len bytes)
 * from a chat request. The model id goes in the URL (kz_bedrock_path), not
 * the body. KZ_EUNSUPPORTED for a non-chat request; KZ_EINVAL when nothing
 * would be left to send (no non-blank user or assistant text) or a value is
 * outside what Converse accepts (temperature above 1). kz_free *body. */
kz_status kz_bedrock_build_request(const struct kz_api_request *r, char **body, size_t *len, struct kz_err *err);

/* URL path for a model id, percent-encoded (everything but A-Z a-z 0-9
 * - . _ ~, so ':' and the '/' of an ARN are encoded): "/model/<id>/converse"
 * or ".../converse-stream" when stream is nonzero. Pass this exact string as
 * the SigV4 path. NULL for an empty id or out of memory; kz_free the result. */
char *kz_bedrock_path(const char *model_id, int stream);

/* ConverseStream decoding state, one per answer. Plain data. */
struct kz_bedrock_dec {
    int n_text;             /* TEXT events sent */
    long in_tokens;         /* from metadata.usage; -1 until seen */
    long out_tokens;
    int started;            /* messageStart seen */
    int finished;           /* messageStop seen (FINISH sent) */
    int failed;             /* an ERROR event was sent */
};

void kz_bedrock_dec_init(struct kz_bedrock_dec *d);

/* One ConverseStream message (after kz_evs_decode):
 * :message-type "event" with :event-type messageStart / contentBlockStart /
 * contentBlockDelta / contentBlockStop / messageStop / metadata -> TEXT for
 * delta.text, FINISH from messageStop.stopReason, USAGE from metadata.usage
 * (inputTokens / outputTokens); other deltas (toolUse, reasoningContent) and
 * unknown event types are ignored (forward compatible).
 * :message-type "exception" -> one ERROR event: throttlingException 429,
 * serviceUnavailableException 503, validationException 400,
 * internalServerException, modelStreamErrorException and any other 500;
 * err_type is the :exception-type, message the payload's "message".
 * :message-type "error" (a failure of the stream itself) -> ERROR 500 with
 * the :error-code and :error-message headers.
 * KZ_EPROTO for a missing :message-type or :event-type, a payload that is
 * not a JSON object, or a known field of the wrong type. A nonzero return
 * from fn stops at once with KZ_OK. */
kz_status kz_bedrock_dec_message(struct kz_bedrock_dec *d, const struct kz_evs_msg *m, kz_ev_fn fn, void *ud,
                                 struct kz_err *err);

/* A non-streamed Converse response body (HTTP 200) -> TEXT (each text block
 * of output.message.content, in order), FINISH, USAGE events. KZ_EPROTO
 * when the body is not a Converse response. */
kz_status kz_bedrock_decode_response(const char *body, size_t len, kz_ev_fn fn, void *ud, struct kz_err *err);

/* An HTTP error answer, as the ERROR event's fields (caller-owned, usually
 * on the stack). */
struct kz_bedrock_error {
    int status;        /* the HTTP status, kept as is */
    char err_type[96]; /* "ThrottlingException"; "" when neither header nor body names one */
    char message[512]; /* the body's "message" / "Message", or a generic line naming the status */
};

/* Fills e from an error response: status, the x-amzn-ErrorType header value
 * (or NULL), and the body. The type is the header's (or else the body's
 * "__type" / "code") without the ":http..." suffix AWS sometimes appends
 * and without a "namespace#" prefix. Texts are truncated on a UTF-8
 * boundary. Never fails. */
void kz_bedrock_http_error(int status, const char *amzn_error_type, const char *body, size_t len,
                           struct kz_bedrock_error *e);

/* An ERROR event whose pointers point into e (valid while e is). */
void kz_bedrock_error_event(const struct kz_bedrock_error *e, struct kz_ev *ev);

#endif
