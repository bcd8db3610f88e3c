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

#include "core/utf8.h"

struct scan {
    const char *p, *end;
};

static void ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int eat(struct scan *s, char c)
{
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

static int lit(struct scan *s, const char *w)
{
    size_t n = strlen(w);
    ws(s);
    if ((size_t)(s->end - s->p) >= n && memcmp(s->p, w, n) == 0) {
        s->p += n;
        return 1;
    }
    return 0;
}

/* A string without escapes: its bytes (valid UTF-8, no control bytes). */
static int str(struct scan *s, const char **b, size_t *n)
{
    if (!eat(s, '"'))
        return 0;
    const char *q = s->p;
    while (q < s->end && *q != '"') {
        unsigned char c = (unsigned char)*q;
        if (c == '\\' || c < 0x20)
            return 0;
        if (c < 0x80) {
            q++;
            continue;
        }
        size_t k = kz_utf8_seq_len(q, (size_t)(s->end - q));
        if (!k)
            return 0;
        q += k;
    }
    if (q == s->end)
        return 0;
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

/* Which key of `names` comes next; -1 when it is none of them (or repeated). */
static int key(struct scan *s, const char *const *names, int count, unsigned *seen)
{
    const char *k;
    size_t n;
    if (!str(s, &k, &n) || !eat(s, ':'))
        return -1;
    for (int i = 0; i < count; i++)
        if (strlen(names[i]) == n && memcmp(names[i], k, n) == 0) {
            if (*seen & (1u << i))
                return -1; /* a duplicate: jansson refuses those */
            *seen |= 1u << i;
            return i;
        }
    return -1;
}

static int parse_delta(struct scan *s, struct kz_scan_choice *c)
{
    static const char *const names[] = {"role", "content", "refusal"};
    unsigned seen = 0;
    if (lit(s, "null"))
        return 1;
    if (!eat(s, '{'))
        return 0;
    if (eat(s, '}'))
        return 1;
    do {
        const char *b;
        size_t n;
        switch (key(s, names, 3, &seen)) {
        case 0:
        case 2:
            if (!str_or_null(s, &b, &n))
                return 0;
            break;
        case 1:
            if (!str_or_null(s, &c->content, &c->content_len))
                return 0;
            c->has_content = c->content != NULL;
            break;
        default:
            return 0;
        }
    } while (eat(s, ','));
    return eat(s, '}');
}

static int parse_choice(struct scan *s, struct kz_scan_choice *c)
{
    static const char *const names[] = {"index", "delta", "text", "logprobs", "finish_reason"};
    unsigned seen = 0;
    memset(c, 0, sizeof *c);
    if (!eat(s, '{'))
        return 0;
    if (eat(s, '}'))
        return 1;
    do {
        const char *b;
        size_t n;
        switch (key(s, names, 5, &seen)) {
        case 0:
            if (!integer(s, &c->index))
                return 0;
            c->has_index = 1;
            break;
        case 1:
            if (!parse_delta(s, c))
                return 0;
            break;
        case 2:
            if (!str_or_null(s, &c->text, &c->text_len))
                return 0;
            c->has_text = c->text != NULL;
            break;
        case 3:
            if (!lit(s, "null"))
                return 0;
            break;
        case 4:
            if (!str_or_null(s, &b, &n) || n >= sizeof c->finish)
                return 0;
            if (b) {
                memcpy(c->finish, b, n);
                c->finish[n] = '\0';
                c->has_finish = 1;
            }
            break;
        default:
            return 0;
        }
    } while (eat(s, ','));
    return eat(s, '}');
}

static int parse_usage(struct scan *s, struct kz_scan_chunk *out)
{
    static const char *const names[] = {"prompt_tokens", "completion_tokens", "total_tokens"};
    unsigned seen = 0;
    if (lit(s, "null"))
        return 1;
    if (!eat(s, '{'))
        return 0;
    out->has_usage = 1;
    out->prompt_tokens = out->completion_tokens = -1;
    if (eat(s, '}'))
        return 1;
    do {
        long v;
        int k = key(s, names, 3, &seen);
        if (k < 0 || !integer(s, &v))
            return 0;
        if (k == 0)
            out->prompt_tokens = v >= 0 ? v : -1;
        else if (k == 1)
            out->completion_tokens = v >= 0 ? v : -1;
    } while (eat(s, ','));
    return eat(s, '}');
}

int kz_openai_scan_chunk(const char *data, size_t len, struct kz_scan_chunk *out)
{
    static const char *const names[] = {"id",      "object", "created", "model", "system_fingerprint",
                                        "choices", "usage",  "service_tier"};
    struct scan s = {data, data + len};
    unsigned seen = 0;
    memset(out, 0, sizeof *out);
    if (!eat(&s, '{'))
        return 0;
    if (!eat(&s, '}')) {
        do {
            const char *b;
            size_t n;
            long v;
            switch (key(&s, names, 8, &seen)) {
            case 0:
            case 1:
            case 3:
            case 4:
            case 7:
                if (!str_or_null(&s, &b, &n))
                    return 0;
                break;
            case 2:
                if (!integer(&s, &v))
                    return 0;
                break;
            case 5:
                if (lit(&s, "null"))
                    break;
                if (!eat(&s, '['))
                    return 0;
                if (eat(&s, ']'))
                    break;
                do {
                    if (out->n_choices == KZ_SCAN_MAX_CHOICES || !parse_choice(&s, &out->choices[out->n_choices]))
                        return 0;
                    out->n_choices++;
                } while (eat(&s, ','));
                if (!eat(&s, ']'))
                    return 0;
                break;
            case 6:
                if (!parse_usage(&s, out))
                    return 0;
                break;
            default:
                return 0;
            }
        } while (eat(&s, ','));
        if (!eat(&s, '}'))
            return 0;
    }
    ws(&s);
    return s.p == s.end;
}
