/* SPDX-License-Identifier: MIT
 * Bedrock Converse request bodies and URL paths (the mapping is described
 * in bedrock.h).
 */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "router/bedrock.h"

/* Bedrock refuses a text block that is empty or only whitespace. */
static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* Adds one {"text"} block, starting a new message unless the last one has
 * the same role (Converse requires user and assistant to alternate). */
static int add_turn(json_t *messages, const char *role, json_t *block)
{
    size_t n = json_array_size(messages);
    json_t *last = n ? json_array_get(messages, n - 1) : NULL;
    if (last && strcmp(json_string_value(json_object_get(last, "role")), role) == 0)
        return json_array_append_new(json_object_get(last, "content"), block);
    return json_array_append_new(messages, json_pack("{s:s, s:[o]}", "role", role, "content", block));
}

/* system and messages from the normalized [{role, content}] list. */
static kz_status add_messages(const struct kz_api_request *r, json_t *system, json_t *messages, struct kz_err *err)
{
    size_t i;
    json_t *m;
    json_array_foreach(r->messages, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        if (!role || !json_is_string(content))
            return kz_err_set(err, KZ_EINVAL, "bedrock: messages[%zu] is not {role, content: string}", i);
        const char *text = json_string_value(content);
        size_t tl = json_string_length(content);
        if (blank(text, tl))
            continue;
        json_t *block = json_pack("{s:s%}", "text", text, tl);
        if (!block)
            return kz_err_set(err, KZ_ENOMEM, "bedrock: out of memory");
        int bad;
        if (strcmp(role, "system") == 0) {
            bad = json_array_append_new(system, block);
        } else if (strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0) {
            bad = add_turn(messages, role, block);
        } else {
            json_decref(block);
            return kz_err_set(err, KZ_EINVAL, "bedrock: messages[%zu].role '%s' has no Converse equivalent", i, role);
        }
        if (bad)
            return kz_err_set(err, KZ_ENOMEM, "bedrock: out of memory");
    }
    if (json_array_size(messages) == 0)
        return kz_err_set(err, KZ_EINVAL, "bedrock: messages: Converse needs at least one non-blank user or "
                                          "assistant message");
    return KZ_OK;
}

/* inferenceConfig, or NULL when the request sets none of its fields. */
static kz_status inference_config(const struct kz_api_request *r, json_t **out, struct kz_err *err)
{
    *out = NULL;
    if (r->has_temperature && r->temperature > 1.0)
        return kz_err_set(err, KZ_EINVAL, "bedrock: temperature %g is above 1, the most Converse accepts",
                          r->temperature);
    json_t *c = json_object();
    if (!c)
        return kz_err_set(err, KZ_ENOMEM, "bedrock: out of memory");
    int bad = 0;
    if (r->max_tokens > 0)
        bad |= json_object_set_new(c, "maxTokens", json_integer(r->max_tokens));
    if (r->has_temperature)
        bad |= json_object_set_new(c, "temperature", json_real(r->temperature));
    if (r->has_top_p)
        bad |= json_object_set_new(c, "topP", json_real(r->top_p));
    if (r->n_stop) {
        json_t *stops = json_array();
        for (size_t i = 0; i < r->n_stop && stops; i++)
            bad |= json_array_append_new(stops, json_string(r->stop[i]));
        bad |= json_object_set_new(c, "stopSequences", stops);
    }
    if (bad) {
        json_decref(c);
        return kz_err_set(err, KZ_ENOMEM, "bedrock: out of memory");
    }
    if (json_object_size(c))
        *out = c;
    else
        json_decref(c);
    return KZ_OK;
}

kz_status kz_bedrock_build_request(const struct kz_api_request *r, char **body, size_t *len, struct kz_err *err)
{
    *body = NULL;
    *len = 0;
    if (r->kind != KZ_API_CHAT || !json_is_array(r->messages))
        return kz_err_set(err, KZ_EUNSUPPORTED, "bedrock: only chat requests have a Converse form");
    json_t *root = json_object(), *system = json_array(), *messages = json_array(), *config = NULL;
    kz_status rc = KZ_OK;
    if (!root || !system || !messages) {
        rc = kz_err_set(err, KZ_ENOMEM, "bedrock: out of memory");
        goto out;
    }
    if ((rc = add_messages(r, system, messages, err)) || (rc = inference_config(r, &config, err)))
        goto out;
    int bad = 0;
    if (json_array_size(system))
        bad |= json_object_set(root, "system", system);
    bad |= json_object_set(root, "messages", messages);
    if (config)
        bad |= json_object_set_new(root, "inferenceConfig", config);
    if (r->top_k > 0) /* 0 means "no top-k cut" to OpenAI-style servers: nothing to send */
        bad |= json_object_set_new(root, "additionalModelRequestFields", json_pack("{s:i}", "top_k", r->top_k));
    char *s = bad ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    if (s) {
        *len = strlen(s);
        *body = kz_strndup(s, *len); /* callers free with kz_free, jansson's copy with free */
        free(s);
    }
    if (!*body) {
        *len = 0;
        rc = kz_err_set(err, KZ_ENOMEM, "bedrock: out of memory");
    }
out:
    json_decref(root);
    json_decref(system);
    json_decref(messages);
    return rc;
}

char *kz_bedrock_path(const char *model_id, int stream)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!model_id || !model_id[0])
        return NULL;
    const char *tail = stream ? "/converse-stream" : "/converse";
    size_t n = strlen(model_id);
    char *p = kz_malloc(7 + 3 * n + strlen(tail) + 1);
    if (!p)
        return NULL;
    size_t j = 0;
    memcpy(p, "/model/", 7);
    j = 7;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)model_id[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            p[j++] = (char)c;
        } else {
            p[j++] = '%';
            p[j++] = hex[c >> 4];
            p[j++] = hex[c & 15];
        }
    }
    strcpy(p + j, tail);
    return p;
}
