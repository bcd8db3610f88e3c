/* SPDX-License-Identifier: MIT
 * Anthropic Messages request bodies from kyozon's chat request form (the
 * rules are listed in anthropic.h).
 */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "router/anthropic.h"

/* Texts joined with "\n\n", grown in place: a request may hold thousands of
 * consecutive same-role messages, and rebuilding the string for each one
 * would be quadratic in the body size. */
struct joined {
    char *p;
    size_t len, cap;
};

static int join_add(struct joined *j, const char *s, size_t n)
{
    size_t sep = j->len ? 2 : 0;
    if (n > (size_t)-1 - j->len - sep - 1)
        return -1;
    size_t need = j->len + sep + n + 1;
    if (need > j->cap) {
        size_t cap = j->cap ? j->cap : 64;
        while (cap < need)
            cap = cap > (size_t)-1 / 2 ? need : cap * 2;
        char *p = kz_realloc(j->p, cap);
        if (!p)
            return -1;
        j->p = p;
        j->cap = cap;
    }
    memcpy(j->p + j->len, "\n\n", sep);
    memcpy(j->p + j->len + sep, s, n);
    j->len += sep + n;
    j->p[j->len] = '\0';
    return 0;
}

/* Appends {role, content} to the turns and empties j. The joined texts came
 * from JSON strings and ASCII separators, so they are valid UTF-8 already. */
static int add_turn(json_t *turns, const char *role, struct joined *j)
{
    json_t *t = json_pack("{s:s, s:o}", "role", role, "content", json_stringn_nocheck(j->p ? j->p : "", j->len));
    j->len = 0;
    return !t || json_array_append_new(turns, t) ? -1 : 0;
}

/* Anthropic refuses a stop sequence made only of whitespace ("stop_sequences:
 * each stop sequence must contain non-whitespace"), so "\n", which OpenAI
 * clients often send, cannot cross over. */
static int blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return 0;
    return 1;
}

/* An assistant turn first, or only system text: the Messages API wants a
 * user turn to open the conversation (see anthropic.h). */
static int open_with_user(json_t *turns)
{
    const char *first = json_string_value(json_object_get(json_array_get(turns, 0), "role"));
    if (first && strcmp(first, "user") == 0)
        return 0;
    return json_array_insert_new(turns, 0, json_pack("{s:s, s:s}", "role", "user", "content", KZ_ANTHROPIC_LEAD_USER));
}

/* Splits the messages into the system text and alternating turns. */
static kz_status convert_messages(const json_t *messages, json_t *turns, struct joined *sys, struct kz_err *err)
{
    struct joined cur = {0};
    const char *cur_role = NULL;
    kz_status rc = KZ_OK;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        if (!role || !json_is_string(content)) {
            rc = kz_err_set(err, KZ_EINVAL, "messages[%zu]: role and string content expected", i);
            goto out;
        }
        const char *text = json_string_value(content);
        size_t n = json_string_length(content);
        if (n == 0)
            continue; /* Anthropic refuses empty text; it carries nothing */
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            if (join_add(sys, text, n))
                goto oom;
            continue;
        }
        if (strcmp(role, "user") && strcmp(role, "assistant")) {
            rc = kz_err_set(err, KZ_EINVAL, "messages[%zu].role: '%s' has no Anthropic equivalent", i, role);
            goto out;
        }
        if (cur_role && strcmp(cur_role, role) && add_turn(turns, cur_role, &cur))
            goto oom;
        cur_role = role;
        if (join_add(&cur, text, n))
            goto oom;
    }
    if ((cur_role && add_turn(turns, cur_role, &cur)) || open_with_user(turns))
        goto oom;
    goto out;
oom:
    rc = kz_err_set(err, KZ_ENOMEM, "anthropic request: out of memory");
out:
    kz_free(cur.p);
    return rc;
}

/* Sets key to v on o; v is consumed even on failure. */
static int put(json_t *o, const char *key, json_t *v)
{
    return !v || json_object_set_new(o, key, v) ? -1 : 0;
}

static int put_sampling(json_t *o, const struct kz_api_request *r)
{
    /* OpenAI's temperature range is 0..2, Anthropic's 0..1. Values above 1
     * are clamped rather than scaled so that the settings people use (0,
     * 0.2, 0.7, 1) mean the same on both sides. */
    if (r->has_temperature && put(o, "temperature", json_real(r->temperature > 1.0 ? 1.0 : r->temperature)))
        return -1;
    /* Current Claude models refuse temperature and top_p together ("cannot
     * both be specified for this model"), so temperature wins. */
    if (r->has_top_p && !r->has_temperature && put(o, "top_p", json_real(r->top_p)))
        return -1;
    /* top_k 0 means no cut, which is what leaving the field out means. */
    if (r->top_k > 0 && put(o, "top_k", json_integer(r->top_k)))
        return -1;
    json_t *stops = json_array();
    if (!stops)
        return -1;
    for (size_t i = 0; i < r->n_stop; i++)
        if (r->stop[i] && !blank(r->stop[i]) && json_array_append_new(stops, json_string(r->stop[i]))) {
            json_decref(stops);
            return -1;
        }
    if (json_array_size(stops) == 0) {
        json_decref(stops);
        return 0;
    }
    return put(o, "stop_sequences", stops);
}

kz_status kz_anthropic_build_request(const struct kz_api_request *r, const char *upstream_model, int stream,
                                     int default_max_tokens, char **body, size_t *len, struct kz_err *err)
{
    if (r->kind != KZ_API_CHAT || !r->messages)
        return kz_err_set(err, KZ_EUNSUPPORTED, "anthropic: only chat requests translate to the Messages API");
    if (!upstream_model || !upstream_model[0])
        return kz_err_set(err, KZ_EINVAL, "anthropic: no upstream model name");
    int max_tokens = r->max_tokens > 0 ? r->max_tokens : default_max_tokens;
    if (max_tokens <= 0)
        return kz_err_set(err, KZ_EINVAL, "anthropic: max_tokens is required and no default is configured");

    struct joined sys = {0};
    json_t *root = json_object(), *turns = json_array();
    kz_status rc = KZ_OK;
    if (!root || !turns)
        goto oom;
    rc = convert_messages(r->messages, turns, &sys, err);
    if (rc)
        goto out;
    if (put(root, "model", json_string(upstream_model)) ||
        (sys.len && put(root, "system", json_stringn_nocheck(sys.p, sys.len))) ||
        put(root, "messages", json_incref(turns)) ||
        put(root, "max_tokens", json_integer(max_tokens)) || put_sampling(root, r) ||
        (stream && put(root, "stream", json_true())) ||
        (r->user && r->user[0] && put(root, "metadata", json_pack("{s:s}", "user_id", r->user))))
        goto oom;

    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    if (!s)
        goto oom;
    *len = strlen(s);
    *body = kz_strndup(s, *len); /* callers free with kz_free, not jansson's free */
    free(s);
    if (!*body)
        goto oom;
    goto out;
oom:
    rc = kz_err_set(err, KZ_ENOMEM, "anthropic request: out of memory");
out:
    kz_free(sys.p);
    json_decref(turns);
    json_decref(root);
    return rc;
}
