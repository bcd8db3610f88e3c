/* SPDX-License-Identifier: MIT
 * A fast path for the common OpenAI stream chunk (see openai_up.h).
 *
 * Parsing every chunk into a jansson tree was half of what the router
 * spends on a request (a 4-token answer is 8 chunks). Nearly all chunks are
 * small objects with the same few keys, so this scanner reads them in one
 * pass without allocating. It only ever *claims* a chunk it understands
 * completely: every key known, no escape sequence in a string, integers
 * only, nothing nested beyond the known shape, no duplicate key, valid
 * UTF-8, nothing after the object. Anything else returns 0 and jansson
 * decides, so the two paths cannot disagree on what is valid (the fuzz
 * target checks that they give the same events).
 */
#include "router/openai_scan.h"

#include <string.h>

#include "core/bytescan.h"

struct scan {
    const char *p, *end;
    int body; /* a whole answer: choices hold "message", not "delta" */
};

static inline void ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static inline int eat(struct scan *s, char c)
{
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

static int lit_n(struct scan *s, const char *w, size_t n)
{
    ws(s);
    if ((size_t)(s->end - s->p) >= n && memcmp(s->p, w, n) == 0) {
        s->p += n;
        return 1;
    }
    return 0;
}

#define lit(s, w) lit_n((s), (w), sizeof(w) - 1) /* w: a string literal */

/* A string without escapes: its bytes (valid UTF-8, no control bytes). */
static int str(struct scan *s, const char **b, size_t *n)
{
    if (!eat(s, '"'))
        return 0;
    const char *q = s->p + kz_scan_json_text(s->p, (size_t)(s->end - s->p));
    if (q == s->end || *q != '"')
        return 0; /* an escape, a control byte, ill-formed UTF-8, or no end */
    *b = s->p;
    *n = (size_t)(q - s->p);
    s->p = q + 1;
    return 1;
}

/* A JSON integer of at most 15 digits (no fraction, no exponent). */
static int integer(struct scan *s, long *v)
{
    ws(s);
    const char *q = s->p;
    int neg = q < s->end && *q == '-';
    q += neg;
    const char *d = q;
    long x = 0;
    while (q < s->end && *q >= '0' && *q <= '9' && q - d < 15)
        x = x * 10 + (*q++ - '0');
    if (q == d || (q - d > 1 && *d == '0') || (q < s->end && (*q == '.' || *q == 'e' || *q == 'E' ||
                                                             (*q >= '0' && *q <= '9'))))
        return 0;
    s->p = q;
    *v = neg ? -x : x;
    return 1;
}

static int str_or_null(struct scan *s, const char **b, size_t *n)
{
    *b = NULL;
    *n = 0;
    return lit(s, "null") || str(s, b, n);
}

/* A known key: its length is kept so that matching one costs a compare or two. */
struct key_name {
    const char *s;
    size_t n;
};
#define KEY(w) {(w), sizeof(w) - 1}

/* Which key of `names` comes next; -1 when it is none of them (or repeated). */
static int key(struct scan *s, const struct key_name *names, int count, unsigned *seen)
{
    const char *k;
    size_t n;
    if (!str(s, &k, &n) || !eat(s, ':'))
        return -1;
    for (int i = 0; i < count; i++)
        if (names[i].n == n && n && names[i].s[0] == k[0] && memcmp(names[i].s, k, n) == 0) {
            if (*seen & (1u << i))
                return -1; /* a duplicate: jansson refuses those */
            *seen |= 1u << i;
            return i;
        }
    return -1;
}

/* {"key": value, ...}: every key one of names (once), its value read by
 * fn(s, index of the key, ctx). 0 when anything is not understood. */
static int object(struct scan *s, const struct key_name *names, int count, int (*fn)(struct scan *, int, void *),
                  void *ctx)
{
    unsigned seen = 0;
    if (!eat(s, '{'))
        return 0;
    if (eat(s, '}'))
        return 1;
    do {
        int k = key(s, names, count, &seen);
        if (k < 0 || !fn(s, k, ctx))
            return 0;
    } while (eat(s, ','));
    return eat(s, '}');
}

static int skip_str(struct scan *s)
{
    const char *b;
    size_t n;
    return str_or_null(s, &b, &n);
}

/* A flat object of integers under keys without escapes, none repeated:
 * usage's *_tokens_details. Its values mean nothing to the decoder. */
static int int_object(struct scan *s)
{
    const char *k[8];
    size_t kn[8];
    int n = 0;
    long v;
    if (!eat(s, '{'))
        return 0;
    if (eat(s, '}'))
        return 1;
    do {
        if (n == 8 || !str(s, &k[n], &kn[n]) || !eat(s, ':') || !integer(s, &v))
            return 0;
        for (int i = 0; i < n; i++)
            if (kn[i] == kn[n] && memcmp(k[i], k[n], kn[n]) == 0)
                return 0;
        n++;
    } while (eat(s, ','));
    return eat(s, '}');
}

/* chunks' delta and answers' message; "annotations" is only taken empty */
static const struct key_name delta_keys[] = {KEY("role"), KEY("content"), KEY("refusal"), KEY("annotations")};

static int delta_value(struct scan *s, int k, void *ctx)
{
    struct kz_scan_choice *c = ctx;
    if (k == 3)
        return eat(s, '[') && eat(s, ']');
    if (k != 1)
        return skip_str(s);
    if (!str_or_null(s, &c->content, &c->content_len))
        return 0;
    c->has_content = c->content != NULL;
    return 1;
}

static const struct key_name choice_keys[] = {KEY("index"), KEY("delta"), KEY("text"), KEY("logprobs"),
                                              KEY("finish_reason")};
static const struct key_name body_choice_keys[] = {KEY("index"), KEY("message"), KEY("text"), KEY("logprobs"),
                                                   KEY("finish_reason")};

static int choice_value(struct scan *s, int k, void *ctx)
{
    struct kz_scan_choice *c = ctx;
    const char *b;
    size_t n;
    switch (k) {
    case 0:
        return (c->has_index = integer(s, &c->index));
    case 1:
        return lit(s, "null") || object(s, delta_keys, s->body ? 4 : 3, delta_value, c);
    case 2:
        if (!str_or_null(s, &c->text, &c->text_len))
            return 0;
        c->has_text = c->text != NULL;
        return 1;
    case 3:
        return lit(s, "null");
    default:
        if (!str_or_null(s, &b, &n) || n >= sizeof c->finish)
            return 0;
        if (b) {
            memcpy(c->finish, b, n);
            c->finish[n] = '\0';
            c->has_finish = 1;
        }
        return 1;
    }
}

static const struct key_name usage_keys[] = {KEY("prompt_tokens"), KEY("completion_tokens"), KEY("total_tokens"),
                                             KEY("prompt_tokens_details"), KEY("completion_tokens_details")};

static int usage_value(struct scan *s, int k, void *ctx)
{
    struct kz_scan_chunk *out = ctx;
    long v;
    if (k >= 3)
        return lit(s, "null") || int_object(s);
    if (!integer(s, &v))
        return 0;
    if (k == 0)
        out->prompt_tokens = v >= 0 ? v : -1;
    else if (k == 1)
        out->completion_tokens = v >= 0 ? v : -1;
    return 1;
}

static int choices(struct scan *s, struct kz_scan_chunk *out)
{
    if (!s->body && lit(s, "null"))
        return 1; /* a usage chunk; an answer without choices is an error */
    if (!eat(s, '['))
        return 0;
    if (eat(s, ']'))
        return 1;
    do {
        if (out->n_choices == KZ_SCAN_MAX_CHOICES)
            return 0;
        struct kz_scan_choice *c = &out->choices[out->n_choices++];
        memset(c, 0, sizeof *c);
        if (!object(s, s->body ? body_choice_keys : choice_keys, 5, choice_value, c))
            return 0;
    } while (eat(s, ','));
    return eat(s, ']');
}

static const struct key_name chunk_keys[] = {KEY("id"),      KEY("object"), KEY("created"), KEY("model"),
                                             KEY("system_fingerprint"), KEY("choices"), KEY("usage"),
                                             KEY("service_tier")};

static int chunk_value(struct scan *s, int k, void *ctx)
{
    struct kz_scan_chunk *out = ctx;
    long v;
    switch (k) {
    case 2:
        return integer(s, &v);
    case 5:
        out->has_choices = 1;
        return choices(s, out);
    case 6:
        if (lit(s, "null"))
            return 1;
        out->has_usage = 1;
        out->prompt_tokens = out->completion_tokens = -1;
        return object(s, usage_keys, 5, usage_value, out);
    default:
        return skip_str(s);
    }
}

static int scan(const char *data, size_t len, int body, struct kz_scan_chunk *out)
{
    struct scan s = {data, data + len, body};
    memset(out, 0, sizeof *out);
    if (!object(&s, chunk_keys, 8, chunk_value, out))
        return 0;
    ws(&s);
    return s.p == s.end && (!body || out->has_choices);
}

int kz_openai_scan_chunk(const char *data, size_t len, struct kz_scan_chunk *out)
{
    return scan(data, len, 0, out);
}

int kz_openai_scan_body(const char *data, size_t len, struct kz_scan_chunk *out)
{
    return scan(data, len, 1, out);
}
