/* SPDX-License-Identifier: MIT
 * The sliding-window rate limiter against a hand-moved clock: RPM exact,
 * TPM over by at most one request, Retry-After and reset figures, token
 * corrections at settlement, several owners at once.
 */
#include <string.h>

#include "t.h"
#include "tenancy/ratelimit.h"

static void rpm_exact(void)
{
    struct kz_rl *rl;
    T_OK(kz_rl_new(&rl) == KZ_OK, "new");
    struct kz_rl_owner o = {'k', 7, 5, 0};
    int64_t t = 1000000, retry = -1;
    struct kz_rl_state st;
    int admitted = 0;
    /* 5 in the first second, then 20 more tries over the next 30 s */
    for (int i = 0; i < 5; i++)
        admitted += kz_rl_admit(rl, &o, 1, 0, t + i * 10, &retry, &st);
    T_EQ_INT(admitted, 5);
    T_EQ_INT(st.remaining_requests, 0);
    T_EQ_INT(st.limit_requests, 5);
    for (int i = 0; i < 20; i++)
        admitted += kz_rl_admit(rl, &o, 1, 0, t + 1000 + i * 1500, &retry, &st);
    T_EQ_INT(admitted, 5);
    /* refused at t+29.5 s: the first second's slot leaves at t+60 s */
    T_EQ_INT(retry, 60000 - (1000 + 19 * 1500));
    T_OK(st.reset_requests_ms == retry, "reset %lld == retry %lld", (long long)st.reset_requests_ms,
         (long long)retry);
    /* just before the window moves: still refused; at it: admitted */
    T_OK(!kz_rl_admit(rl, &o, 1, 0, t + 59999, &retry, NULL), "refused at 59.999 s");
    T_EQ_INT(retry, 1);
    T_OK(kz_rl_admit(rl, &o, 1, 0, t + 60000, &retry, &st), "admitted at 60 s");
    T_EQ_INT(st.remaining_requests, 4); /* the first five left together; refusals never counted */
    /* a sliding window: never more than rpm in any 60 s */
    int64_t times[400];
    int n = 0;
    for (int64_t now = t + 61000; now < t + 400000; now += 700)
        if (kz_rl_admit(rl, &o, 1, 0, now, NULL, NULL))
            times[n++] = now;
    T_OK(n > 20, "%d admitted over 340 s", n);
    int worst = 0;
    for (int i = 0; i < n; i++) {
        int in = 0;
        for (int j = i; j < n && times[j] < times[i] + 60000 - 1000; j++)
            in++;
        worst = in > worst ? in : worst;
    }
    T_OK(worst <= 5, "at most 5 in any 59 s (%d)", worst);
    kz_rl_free(rl);
}

static void tpm_one_over(void)
{
    struct kz_rl *rl;
    T_OK(kz_rl_new(&rl) == KZ_OK, "new");
    struct kz_rl_owner o = {'k', 1, 0, 1000};
    int64_t t = 5000000, retry;
    struct kz_rl_state st;
    /* requests of 300 tokens: admitted while fewer than 1000 were counted */
    int admitted = 0;
    for (int i = 0; i < 10; i++)
        admitted += kz_rl_admit(rl, &o, 1, 300, t, &retry, &st);
    T_EQ_INT(admitted, 4); /* 0, 300, 600, 900 < 1000: the fourth crosses it */
    T_EQ_INT(st.remaining_tokens, 0);
    T_OK(retry > 0 && retry <= 60000, "retry %lld", (long long)retry);
    /* they turn out smaller: the estimates are replaced */
    for (int i = 0; i < 4; i++)
        kz_rl_settle(rl, &o, 1, t, 300, 100, t + 10);
    T_OK(kz_rl_admit(rl, &o, 1, 300, t + 20, &retry, &st), "room again after settlement");
    T_EQ_INT(st.remaining_tokens, 1000 - 700);
    /* a settlement after its slot left the window changes nothing */
    kz_rl_settle(rl, &o, 1, t, 300, 0, t + 120000);
    T_OK(kz_rl_admit(rl, &o, 1, 10, t + 120000, &retry, &st), "empty window later");
    T_EQ_INT(st.remaining_tokens, 990);
    kz_rl_free(rl);
}

static void owners_together(void)
{
    struct kz_rl *rl;
    T_OK(kz_rl_new(&rl) == KZ_OK, "new");
    /* two keys of one tenant: the tenant's limit binds both */
    struct kz_rl_owner a[2] = {{'k', 1, 10, 0}, {'t', 9, 3, 0}};
    struct kz_rl_owner b[2] = {{'k', 2, 10, 0}, {'t', 9, 3, 0}};
    int64_t t = 9000000;
    int ok = 0;
    ok += kz_rl_admit(rl, a, 2, 0, t, NULL, NULL);
    ok += kz_rl_admit(rl, b, 2, 0, t, NULL, NULL);
    ok += kz_rl_admit(rl, a, 2, 0, t, NULL, NULL);
    T_EQ_INT(ok, 3);
    T_OK(!kz_rl_admit(rl, b, 2, 0, t, NULL, NULL), "tenant limit refuses the other key");
    /* a refusal counts nothing: key 2 alone still has its 10 */
    struct kz_rl_owner b_alone = {'k', 2, 10, 0};
    struct kz_rl_state st;
    T_OK(kz_rl_admit(rl, &b_alone, 1, 0, t, NULL, &st), "key alone");
    T_EQ_INT(st.remaining_requests, 10 - 2);
    /* owners without limits are not tracked and always pass */
    struct kz_rl_owner free_ = {'k', 3, 0, 0};
    int admitted = 0;
    for (int i = 0; i < 1000; i++)
        admitted += kz_rl_admit(rl, &free_, 1, 100000, t, NULL, NULL);
    T_EQ_INT(admitted, 1000);
    kz_rl_free(rl);
}

int main(void)
{
    rpm_exact();
    tpm_one_over();
    owners_together();
    return t_done();
}
