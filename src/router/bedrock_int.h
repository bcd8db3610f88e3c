/* SPDX-License-Identifier: MIT
 * Pieces shared by the Bedrock translation files (bedrock_req.c,
 * bedrock_resp.c, bedrock_stream.c); not part of the module's interface.
 */
#ifndef KZ_BEDROCK_INT_H
#define KZ_BEDROCK_INT_H

#include <jansson.h>
#include <stddef.h>

#include "core/status.h"
#include "router/events.h"

/* The normalized finish reason (a static KZ_FINISH_* string) for a Converse
 * stopReason; see bedrock.h for the table. */
const char *kz_bedrock__finish(const char *stop_reason);

/* Reads a TokenUsage object into *in and *out (-1 for an absent count).
 * KZ_EPROTO, naming `where`, when usage or a count has the wrong type. */
kz_status kz_bedrock__usage(const json_t *usage, const char *where, long *in, long *out, struct kz_err *err);

/* Copies len bytes of provider text into dst (size >= 1) as NUL-terminated
 * UTF-8 that is safe to show: whole characters only, ill-formed bytes as
 * '?', control characters as spaces, truncated to fit. */
void kz_bedrock__copy_text(char *dst, size_t size, const char *src, size_t len);

/* Parses an event or response payload that must be a JSON object.
 * KZ_EPROTO naming `what` otherwise; *out is the caller's (json_decref). */
kz_status kz_bedrock__parse_object(const void *data, size_t len, const char *what, json_t **out, struct kz_err *err);

#endif
