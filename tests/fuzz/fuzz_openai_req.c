/* SPDX-License-Identifier: MIT
 * Fuzz target: the OpenAI request decoder (chat, completions, embeddings).
 * The first byte picks the endpoint; the rest is the body. Every input must
 * be accepted or rejected with a 4xx/5xx error object, never crash; an
 * accepted request must have what the server relies on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/openai.h"
#include "core/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum kz_api_kind kind = data[0] % 3 == 0 ? KZ_API_CHAT : data[0] % 3 == 1 ? KZ_API_COMPLETION : KZ_API_EMBEDDINGS;
    struct kz_api_request r;
    struct kz_api_error e;
    memset(&e, 0, sizeof e);
    kz_status rc = kz_api_request_decode(kind, (const char *)data + 1, size - 1, &r, &e);
    if (rc) {
        if (e.status < 400 || e.status > 599 || !e.type)
            abort();
        char *j = kz_api_error_json(&e);
        if (!j)
            abort();
        kz_free(j);
    } else {
        if (!r.model || !r.model[0])
            abort();
        if (kind == KZ_API_CHAT && (!r.messages || json_array_size(r.messages) == 0))
            abort();
        if (kind != KZ_API_CHAT && r.n_inputs == 0)
            abort();
        if (r.max_tokens == 0 || r.max_tokens > KZ_API_MAX_TOKENS_LIMIT || r.n_stop > KZ_API_MAX_STOP)
            abort();
        for (size_t i = 0; i < r.n_inputs; i++)
            if (!r.inputs[i])
                abort();
    }
    kz_api_request_free(&r);
    return 0;
}
