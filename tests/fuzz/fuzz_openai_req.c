/* SPDX-License-Identifier: MIT
 * Fuzz target: the OpenAI request decoder (chat, completions, embeddings).
 * The first byte picks the endpoint; the rest is the body. Every input must
 * be accepted or rejected with a 4xx/5xx error object, never crash; an
 * accepted request must have what the server relies on. The fast body
 * reader (core/jsonr.h) must claim only what json_loadb accepts, and then
 * build the very tree it builds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/openai.h"
#include "core/alloc.h"
#include "core/jsonr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_tree(const char *p, size_t n)
{
    json_t *fast = kz_jr_object(p, n, 64);
    if (!fast)
        return; /* not claimed: jansson decides, as the decoder does */
    json_error_t je;
    json_t *ref = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
    char *a = json_dumps(fast, JSON_COMPACT), *b = ref ? json_dumps(ref, JSON_COMPACT) : NULL;
    /* the dump keeps key order and tells 1 from 1.0; json_equal checks the values */
    if (!ref || !a || !b || strcmp(a, b) != 0 || !json_equal(fast, ref))
        abort();
    free(a);
    free(b);
    json_decref(fast);
    json_decref(ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    same_tree((const char *)data + 1, size - 1);
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
