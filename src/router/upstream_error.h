/* SPDX-License-Identifier: MIT
 * What a provider says when it fails, read the same way for every dialect:
 * the message and type in an error response body, and how long it asks us
 * to wait (Retry-After). One reading serves every adapter and the router's
 * retry logic, and whatever a provider sends (HTML from a proxy, binary
 * garbage, a 10 MB page) comes out as a short line that is safe to log and
 * to put into JSON.
 *
 * Ownership: nothing is allocated for the caller; results go into
 * caller-owned buffers or the return value.
 */
#ifndef KZ_ROUTER_UPSTREAM_ERROR_H
#define KZ_ROUTER_UPSTREAM_ERROR_H

#include <stddef.h>

/* At most this many bytes of a body we cannot read as a known error shape
 * are quoted. */
#define KZ_UPSTREAM_RAW_MAX 200

/* The longest wait we honour, in milliseconds: a provider asking for more is
 * out for longer than any request should hang on. */
#define KZ_RETRY_AFTER_MAX_MS 3600000L

/* Reads an error response body of any supported provider:
 *   OpenAI / Azure / vLLM  {"error":{"message","type","code"}} (type, else code)
 *   Anthropic              {"type":"error","error":{"type","message"}}
 *   Bedrock                {"message"} or {"Message"}, type from "__type"
 *   others                 {"error":"..."}, {"message","type"}, {"detail"}
 *   anything else          the first KZ_UPSTREAM_RAW_MAX bytes as text.
 * The message is one line: invalid UTF-8 becomes U+FFFD, control characters
 * (and the invisible ones that reorder or break lines) become spaces, runs
 * of spaces one space, and it is cut at a character boundary to fit
 * msg_size - 1 bytes. An empty body reads "empty response body". `type` gets
 * the provider's error type the same way, or "". Either buffer may have size
 * 0 (nothing is written to it). Never fails. */
void kz_upstream_error_text(const char *body, size_t len, char *msg, size_t msg_size, char *type, size_t type_size);

/* Parses a Retry-After header value: delta-seconds (a decimal fraction is
 * accepted too) or an HTTP-date (IMF-fixdate, or the obsolete RFC 850 and
 * asctime forms HTTP recipients must accept) taken relative to `now` (unix
 * seconds; a date in the past gives 0). With ms != 0 the value is a plain
 * number of milliseconds, as in the "retry-after-ms" header some providers
 * send. Returns milliseconds, capped at KZ_RETRY_AFTER_MAX_MS, or -1 when the
 * value is absent (NULL or blank) or unparseable. */
long kz_retry_after_ms(const char *value, size_t len, int ms, long now);

#endif
