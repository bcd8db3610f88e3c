/* SPDX-License-Identifier: MIT */
#include "engine/sample/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

struct cand {
    int32_t id;
    float logit;
    float p;
};

struct kz_sampler {
    struct kz_sampler_params p;
    int n_vocab;
    uint64_t rng[4];
    struct cand *c;      /* (n_vocab) scratch */
    int32_t *hist;       /* ring of the last repeat_last_n accepted tokens */
    int hist_n, hist_pos;
    uint16_t *count;     /* (n_vocab) occurrences inside the window */
};

struct kz_sampler_params kz_sampler_defaults(void)
{
    struct kz_sampler_params p = {
        .temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
        .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0,
    };
    return p;
}

kz_status kz_sampler_params_check(const struct kz_sampler_params *p, struct kz_err *err)
{
    if (!(p->temp >= 0.0f) || !isfinite(p->temp))
        return kz_err_set(err, KZ_EINVAL, "temperature must be a finite number >= 0 (got %g)", (double)p->temp);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return kz_err_set(err, KZ_EINVAL, "top_p must be in (0, 1] (got %g)", (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return kz_err_set(err, KZ_EINVAL, "min_p must be in [0, 1] (got %g)", (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty))
        return kz_err_set(err, KZ_EINVAL, "repeat_penalty must be > 0 (got %g)", (double)p->repeat_penalty);
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return kz_err_set(err, KZ_EINVAL, "penalties must be finite numbers");
    if (p->repeat_last_n < 0 || p->repeat_last_n > 1 << 20)
        return kz_err_set(err, KZ_EINVAL, "repeat_last_n must be in 0..1048576 (got %d)", p->repeat_last_n);
    return KZ_OK;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1) with 53 random bits. */
static double next_unit(uint64_t *s) { return (double)(next_u64(s) >> 11) * (1.0 / 9007199254740992.0); }

struct kz_sampler *kz_sampler_new(const struct kz_sampler_params *p, int n_vocab)
{
    struct kz_sampler *s = kz_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->p = *p;
    s->n_vocab = n_vocab;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix(&x);
    s->c = kz_calloc((size_t)n_vocab, sizeof *s->c);
    s->count = kz_calloc((size_t)n_vocab, sizeof *s->count);
    s->hist = kz_calloc((size_t)(p->repeat_last_n > 0 ? p->repeat_last_n : 1), sizeof *s->hist);
    if (!s->c || !s->count || !s->hist) {
        kz_sampler_free(s);
        return NULL;
    }
    return s;
}

void kz_sampler_free(struct kz_sampler *s)
{
    if (!s)
        return;
    kz_free(s->c);
    kz_free(s->count);
    kz_free(s->hist);
    kz_free(s);
}

void kz_sampler_accept(struct kz_sampler *s, int32_t token)
{
    int w = s->p.repeat_last_n;
    if (w <= 0 || token < 0 || token >= s->n_vocab)
        return;
    if (s->hist_n == w) {
        int32_t old = s->hist[s->hist_pos];
        s->count[old]--;
    } else {
        s->hist_n++;
    }
    s->hist[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % w;
    if (s->count[token] < UINT16_MAX)
        s->count[token]++;
}

int32_t kz_argmax(const float *v, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

static int by_logit_desc(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Penalized logit of candidate i. */
static float penalized(const struct kz_sampler *s, int32_t id, float l)
{
    unsigned n = s->count[id];
    if (!n)
        return l;
    float rp = s->p.repeat_penalty;
    if (rp != 1.0f)
        l = l > 0.0f ? l / rp : l * rp;
    return l - (float)n * s->p.frequency_penalty - s->p.presence_penalty;
}

int32_t kz_sampler_sample(struct kz_sampler *s, const float *logits)
{
    int n = s->n_vocab;
    struct cand *c = s->c;
    int any_penalty = s->hist_n > 0 && (s->p.repeat_penalty != 1.0f || s->p.presence_penalty != 0.0f ||
                                        s->p.frequency_penalty != 0.0f);
    float mx = -INFINITY;
    int32_t best = 0;
    for (int i = 0; i < n; i++) {
        float l = any_penalty ? penalized(s, i, logits[i]) : logits[i];
        c[i].id = i;
        c[i].logit = l;
        if (l > mx) {
            mx = l;
            best = i;
        }
    }
    if (s->p.temp <= 0.0f)
        return best;
    /* Only tokens within 30 (x temperature, when above 1) logit units of the
     * best can matter: each is less likely than e^-30 ~ 1e-13 relative to it,
     * so a whole vocabulary of them carries under 1e-8 of the mass. Sorting
     * just those keeps a step cheap at 150k-token vocabularies, where a full
     * sort per token would cost more than the model. */
    float cut = mx - 30.0f * (s->p.temp > 1.0f ? s->p.temp : 1.0f);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (c[i].logit >= cut)
            c[m++] = c[i];
    n = m;
    /* top-k: keep the k best. A full sort of the vocabulary costs ~1 ms at
     * 150k entries; partition first when k is small. */
    int k = (s->p.top_k > 0 && s->p.top_k < n) ? s->p.top_k : n;
    if (k < n) {
        /* quickselect the k largest to the front, then sort only those */
        int lo = 0, hi = n - 1;
        while (lo < hi) {
            struct cand pivot = c[(lo + hi) / 2];
            int i = lo, j = hi;
            while (i <= j) {
                while (by_logit_desc(&c[i], &pivot) < 0)
                    i++;
                while (by_logit_desc(&c[j], &pivot) > 0)
                    j--;
                if (i <= j) {
                    struct cand t = c[i];
                    c[i] = c[j];
                    c[j] = t;
                    i++;
                    j--;
                }
            }
            if (k - 1 <= j)
                hi = j;
            else if (k - 1 >= i)
                lo = i;
            else
                break;
        }
    }
    qsort(c, (size_t)k, sizeof *c, by_logit_desc);
    /* softmax at temperature 1 for the top-p / min-p cut */
    double sum = 0.0;
    for (int i = 0; i < k; i++) {
        c[i].p = expf(c[i].logit - c[0].logit);
        sum += (double)c[i].p;
    }
    int keep = k;
    if (s->p.top_p < 1.0f) {
        double cum = 0.0;
        for (int i = 0; i < k; i++) {
            cum += (double)c[i].p / sum;
            if (cum >= (double)s->p.top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    if (s->p.min_p > 0.0f) {
        float floor_p = s->p.min_p * c[0].p; /* c[0].p == 1 */
        int i = 1;
        while (i < keep && c[i].p >= floor_p)
            i++;
        keep = i;
    }
    /* temperature, then draw */
    double tsum = 0.0;
    for (int i = 0; i < keep; i++) {
        c[i].p = expf((c[i].logit - c[0].logit) / s->p.temp);
        tsum += (double)c[i].p;
    }
    double r = next_unit(s->rng) * tsum, acc = 0.0;
    for (int i = 0; i < keep; i++) {
        acc += (double)c[i].p;
        if (r < acc)
            return c[i].id;
    }
    return c[keep - 1].id;
}
