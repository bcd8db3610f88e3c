/* SPDX-License-Identifier: MIT
 * Error answers in each provider's shape (WIRE.md): the router's adapters
 * tell retryable failures from final ones by these bodies and headers, so
 * the shapes follow the providers' references, not one generic form.
 *   OpenAI    {"error":{"message","type","param":null,"code"}}
 *   Azure     {"error":{"code":"<status or name>","message"}}
 *   Anthropic {"type":"error","error":{"type","message"}}
 *   Bedrock   {"message"} with the error name in x-amzn-ErrorType
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "mock.h"

static const char *openai_type(int status)
{
    if (status == 429)
        return "requests";
    return status >= 500 ? "server_error" : "invalid_request_error";
}

static const char *openai_code(int status)
{
    switch (status) {
    case 401: return "invalid_api_key";
    case 404: return "model_not_found";
    case 429: return "rate_limit_exceeded";
    default: return NULL;
    }
}

static const char *anthropic_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

static const char *bedrock_type(int status)
{
    switch (status) {
    case 400: return "ValidationException";
    case 403: return "AccessDeniedException";
    case 404: return "ResourceNotFoundException";
    case 408: return "ModelTimeoutException";
    case 424: return "ModelErrorException";
    case 429: return "ThrottlingException";
    case 503: return "ServiceUnavailableException";
    default: return status >= 500 ? "InternalServerException" : "ValidationException";
    }
}

static const char *azure_code(int status, char *buf, size_t size)
{
    if (status == 400)
        return "BadRequest";
    snprintf(buf, size, "%d", status);
    return buf;
}

struct kz_mock_script *kz_mock_error(const struct kz_mock_ctx *c, enum kz_mock_dialect d, int status,
                                     const char *message)
{
    char extra[160] = "";
    size_t n = 0;
    if (c->retry_after >= 0)
        n += (size_t)snprintf(extra + n, sizeof extra - n, "Retry-After: %ld\r\n", c->retry_after);
    json_t *v = NULL;
    char buf[16];
    switch (d) {
    case KZ_MOCK_D_OPENAI: {
        const char *code = openai_code(status);
        v = json_pack("{s:{s:s, s:s, s:n, s:o}}", "error", "message", message, "type", openai_type(status), "param",
                      "code", code ? json_string(code) : json_null());
        break;
    }
    case KZ_MOCK_D_AZURE:
        v = json_pack("{s:{s:s, s:s}}", "error", "code", azure_code(status, buf, sizeof buf), "message", message);
        break;
    case KZ_MOCK_D_ANTHROPIC:
        v = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", anthropic_type(status), "message",
                      message);
        break;
    case KZ_MOCK_D_BEDROCK:
        snprintf(extra + n, sizeof extra - n, "x-amzn-ErrorType: %s\r\n", bedrock_type(status));
        v = json_pack("{s:s}", "message", message);
        break;
    }
    return kz_mock_respond_json(status, extra, v, c->keep_alive);
}
