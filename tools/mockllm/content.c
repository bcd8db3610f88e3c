/* SPDX-License-Identifier: MIT
 * The deterministic content every dialect shares, so that a test can predict
 * an answer exactly: token i is the text "tok<i> " (another word with
 * --word), and a prompt of B content
 * bytes counts as B / 4 + 1 prompt tokens (a rough rule of thumb for English
 * text, and never zero).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "mock.h"

const char *kz_mock_word = "tok";

size_t kz_mock_token(int i, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s%d ", kz_mock_word, i);
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

char *kz_mock_tokens_text(int n, size_t *len)
{
    char *t = kz_malloc((size_t)(n > 0 ? n : 0) * 80 + 1);
    size_t k = 0;
    for (int i = 0; t && i < n; i++)
        k += kz_mock_token(i, t + k, 80);
    if (t)
        t[k] = '\0';
    *len = k;
    return t;
}

json_t *kz_mock_tokens_json(int n)
{
    size_t len;
    char *t = kz_mock_tokens_text(n, &len);
    json_t *v = t ? json_stringn(t, len) : NULL;
    kz_free(t);
    return v;
}

long kz_mock_prompt_tokens(size_t content_bytes) { return (long)(content_bytes / 4 + 1); }

char *kz_mock_dump(json_t *v)
{
    if (!v)
        return NULL;
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(v);
    if (!s)
        return NULL;
    char *out = kz_strdup(s); /* ours are freed with kz_free, jansson's with free */
    free(s);
    return out;
}
