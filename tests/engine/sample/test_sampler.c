/* SPDX-License-Identifier: MIT
 * Sampler: greedy, seeds, each filter at its edge, penalties, and the
 * empirical distribution against the softmax it should follow.
 */
#include <math.h>
#include <string.h>

#include "engine/sample/sampler.h"
#include "t.h"

static struct kz_sampler_params greedy_params(void)
{
    struct kz_sampler_params p = kz_sampler_defaults();
    p.temp = 0.0f;
    return p;
}

static void greedy(void)
{
    float l[5] = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f};
    struct kz_sampler_params p = greedy_params();
    struct kz_sampler *s = kz_sampler_new(&p, 5);
    T_EQ_INT(kz_sampler_sample(s, l), 1); /* tie between 1 and 3: lowest id */
    T_EQ_INT(kz_argmax(l, 5), 1);
    kz_sampler_free(s);
}

static void seeded(void)
{
    float l[64];
    for (int i = 0; i < 64; i++)
        l[i] = (float)sin(i * 0.7) * 2.0f;
    struct kz_sampler_params p = kz_sampler_defaults();
    p.temp = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 42;
    struct kz_sampler *a = kz_sampler_new(&p, 64), *b = kz_sampler_new(&p, 64);
    int same = 1, distinct = 0, first = -1;
    for (int i = 0; i < 200; i++) {
        int x = kz_sampler_sample(a, l), y = kz_sampler_sample(b, l);
        same &= x == y;
        if (first < 0)
            first = x;
        distinct |= x != first;
    }
    T_OK(same, "same seed, same tokens");
    T_OK(distinct, "temperature 1 does not always pick one token");
    kz_sampler_free(a);
    kz_sampler_free(b);
}

static void distribution(void)
{
    float l[4] = {1.0f, 0.0f, -1.0f, 0.5f};
    struct kz_sampler_params p = kz_sampler_defaults();
    p.temp = 0.7f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 1;
    struct kz_sampler *s = kz_sampler_new(&p, 4);
    int cnt[4] = {0};
    const int n = 40000;
    for (int i = 0; i < n; i++)
        cnt[kz_sampler_sample(s, l)]++;
    double z = 0, want[4];
    for (int i = 0; i < 4; i++)
        z += exp((double)l[i] / 0.7);
    for (int i = 0; i < 4; i++) {
        want[i] = exp((double)l[i] / 0.7) / z;
        double got = (double)cnt[i] / n;
        /* 5 standard deviations of a binomial proportion */
        T_OK(fabs(got - want[i]) < 5 * sqrt(want[i] * (1 - want[i]) / n), "token %d: %.4f vs %.4f", i, got,
             want[i]);
    }
    kz_sampler_free(s);
}

static void filters(void)
{
    float l[6] = {3.0f, 2.9f, 1.0f, 0.0f, -5.0f, 2.95f};
    struct kz_sampler_params p = kz_sampler_defaults();
    p.temp = 5.0f; /* flat: without filters every token shows up */
    p.seed = 3;
    p.min_p = 0.0f;
    p.top_p = 1.0f;
    p.top_k = 2;
    struct kz_sampler *s = kz_sampler_new(&p, 6);
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        int t = kz_sampler_sample(s, l);
        bad |= t != 0 && t != 5;
    }
    T_OK(!bad, "top-k 2 keeps only the two best");
    kz_sampler_free(s);

    p.top_k = 0;
    p.top_p = 0.01f;
    s = kz_sampler_new(&p, 6);
    bad = 0;
    for (int i = 0; i < 500; i++)
        bad |= kz_sampler_sample(s, l) != 0;
    T_OK(!bad, "tiny top-p keeps only the best");
    kz_sampler_free(s);

    p.top_p = 1.0f;
    p.min_p = 0.5f; /* exp(-1) < 0.5 drops token 2 and below; 2.9, 2.95 stay */
    s = kz_sampler_new(&p, 6);
    int seen[6] = {0};
    for (int i = 0; i < 3000; i++)
        seen[kz_sampler_sample(s, l)] = 1;
    T_OK(seen[0] && seen[1] && seen[5] && !seen[2] && !seen[3] && !seen[4], "min-p 0.5");
    kz_sampler_free(s);
}

static void penalties(void)
{
    float l[3] = {2.0f, 1.5f, -1.0f};
    struct kz_sampler_params p = greedy_params();
    p.repeat_penalty = 2.0f; /* 2.0 -> 1.0 < 1.5 */
    struct kz_sampler *s = kz_sampler_new(&p, 3);
    T_EQ_INT(kz_sampler_sample(s, l), 0);
    kz_sampler_accept(s, 0);
    T_EQ_INT(kz_sampler_sample(s, l), 1);
    kz_sampler_free(s);

    p = greedy_params();
    p.frequency_penalty = 0.3f;
    p.repeat_last_n = 2;
    s = kz_sampler_new(&p, 3);
    kz_sampler_accept(s, 0);
    T_EQ_INT(kz_sampler_sample(s, l), 0); /* 2.0 - 0.3 = 1.7 > 1.5 */
    kz_sampler_accept(s, 0);
    T_EQ_INT(kz_sampler_sample(s, l), 1); /* 2.0 - 0.6 = 1.4 < 1.5 */
    kz_sampler_accept(s, 1);
    kz_sampler_accept(s, 1);              /* window 2: token 0 has left it */
    T_EQ_INT(kz_sampler_sample(s, l), 0);
    kz_sampler_free(s);

    p = greedy_params();
    p.presence_penalty = 0.6f;
    s = kz_sampler_new(&p, 3);
    kz_sampler_accept(s, 0);
    T_EQ_INT(kz_sampler_sample(s, l), 1); /* 2.0 - 0.6 = 1.4 */
    kz_sampler_free(s);
}

static void check_params(void)
{
    struct kz_sampler_params p = kz_sampler_defaults();
    struct kz_err err = {{0}};
    T_EQ_INT(kz_sampler_params_check(&p, &err), KZ_OK);
    p.temp = -1.0f;
    T_EQ_INT(kz_sampler_params_check(&p, &err), KZ_EINVAL);
    T_OK(strstr(err.msg, "temperature") != NULL, "names temperature: %s", err.msg);
    p = kz_sampler_defaults();
    p.top_p = 0.0f;
    T_EQ_INT(kz_sampler_params_check(&p, &err), KZ_EINVAL);
    T_OK(strstr(err.msg, "top_p") != NULL, "names top_p: %s", err.msg);
    p = kz_sampler_defaults();
    p.min_p = 1.5f;
    T_EQ_INT(kz_sampler_params_check(&p, &err), KZ_EINVAL);
    p = kz_sampler_defaults();
    p.repeat_penalty = 0.0f;
    T_EQ_INT(kz_sampler_params_check(&p, &err), KZ_EINVAL);
    p = kz_sampler_defaults();
    p.frequency_penalty = NAN;
    T_EQ_INT(kz_sampler_params_check(&p, &err), KZ_EINVAL);
}

int main(void)
{
    t_subtest("greedy", greedy);
    t_subtest("seeded", seeded);
    t_subtest("distribution", distribution);
    t_subtest("filters", filters);
    t_subtest("penalties", penalties);
    t_subtest("parameter checks", check_params);
    return t_done();
}
