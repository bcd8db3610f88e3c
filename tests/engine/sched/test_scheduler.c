/* SPDX-License-Identifier: MIT
 * Continuous batching: several greedy jobs through the scheduler produce
 * exactly the tokens each produces alone; embeddings, cancellation, queue
 * limits and oversize prompts behave as documented; every job gets exactly
 * one terminal event.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "engine/gguf/dtype.h"
#include "engine/gguf/gguf.h"
#include "engine/model/model.h"
#include "engine/model/synth.h"
#include "engine/sample/sampler.h"
#include "engine/sched/scheduler.h"
#include "engine/sched/threadpool.h"
#include "engine/tok/tok.h"
#include "t.h"

#define MAXGEN 64

struct result {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int32_t toks[MAXGEN];
    int n;
    int terminal;   /* number of DONE/ERROR events (must end at 1) */
    int after_term; /* events after the terminal one (must stay 0) */
    char finish[16];
    int n_prompt, n_gen;
    float embd[1024];
    int n_embd;
};

static void on_event(void *ud, const struct kz_sched_event *ev)
{
    struct result *r = ud;
    pthread_mutex_lock(&r->mu);
    if (r->terminal)
        r->after_term++;
    switch (ev->type) {
    case KZ_SCHED_TOKEN:
        if (r->n < MAXGEN)
            r->toks[r->n++] = ev->token;
        break;
    case KZ_SCHED_EMBEDDING:
        r->n_embd = ev->n_embd;
        memcpy(r->embd, ev->embd, (size_t)ev->n_embd * sizeof(float));
        break;
    case KZ_SCHED_DONE:
    case KZ_SCHED_ERROR:
        r->terminal++;
        snprintf(r->finish, sizeof r->finish, "%s", ev->type == KZ_SCHED_DONE ? ev->finish : "error");
        r->n_prompt = ev->n_prompt;
        r->n_gen = ev->n_gen;
        pthread_cond_broadcast(&r->cv);
        break;
    }
    pthread_mutex_unlock(&r->mu);
}

static void wait_done(struct result *r)
{
    pthread_mutex_lock(&r->mu);
    while (!r->terminal)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}

static struct kz_model *model;
static struct kz_tok *tok;

static void prompt_of(int j, int32_t *p, int *n)
{
    *n = 3 + j % 4;
    p[0] = 1;
    for (int i = 1; i < *n; i++)
        p[i] = 300 + (j * 17 + i * 5) % 200;
}

/* Greedy generation alone, for comparison; stops on end of text like the scheduler. */
static int solo(const int32_t *p, int n, int max, int32_t *out)
{
    struct kz_ctx *c = NULL;
    struct kz_err err = {{0}};
    kz_ctx_new(model, 128, KZ_DT_F32, NULL, &c, &err);
    kz_ctx_eval(c, p, n, &err);
    int g = 0;
    while (g < max) {
        int32_t t = kz_argmax(kz_ctx_logits(c), kz_model_config(model)->n_vocab);
        if (kz_tok_is_eog(tok, t))
            break;
        out[g++] = t;
        if (g < max)
            kz_ctx_eval(c, &t, 1, &err);
    }
    kz_ctx_free(c);
    return g;
}

static struct kz_sampler_params greedy(void)
{
    struct kz_sampler_params sp = kz_sampler_defaults();
    sp.temp = 0.0f;
    return sp;
}

static void batching_matches_solo(void)
{
    enum { NJ = 7, MAX = 12 };
    struct kz_sched_config cfg = {.n_parallel = 3, .n_ctx = 128, .n_batch = 16, .max_queue = 16, .n_threads = 2};
    struct kz_sched *s = NULL;
    struct kz_err err = {{0}};
    T_EQ_INT(kz_sched_new(model, tok, &cfg, &s, &err), KZ_OK);
    if (!s)
        return;
    static struct result r[NJ];
    int32_t p[NJ][8];
    int np[NJ];
    for (int j = 0; j < NJ; j++) {
        memset(&r[j], 0, sizeof r[j]);
        pthread_mutex_init(&r[j].mu, NULL);
        pthread_cond_init(&r[j].cv, NULL);
        prompt_of(j, p[j], &np[j]);
        struct kz_sched_job job = {.prompt = p[j], .n_prompt = np[j], .max_tokens = MAX, .sampling = greedy(),
                                   .cb = on_event, .ud = &r[j]};
        uint64_t id;
        T_EQ_INT(kz_sched_submit(s, &job, &id, &err), KZ_OK);
    }
    for (int j = 0; j < NJ; j++) {
        wait_done(&r[j]);
        int32_t want[MAX];
        int nw = solo(p[j], np[j], MAX, want);
        int same = nw == r[j].n;
        for (int i = 0; same && i < nw; i++)
            same = want[i] == r[j].toks[i];
        T_OK(same, "job %d: batched tokens equal solo tokens (%d vs %d)", j, r[j].n, nw);
        T_EQ_STR(r[j].finish, nw == MAX ? "length" : "stop");
        T_EQ_INT(r[j].n_prompt, np[j]);
    }
    struct kz_sched_stats st;
    kz_sched_get_stats(s, &st);
    T_OK(st.tokens_out >= NJ, "stats count generated tokens (%llu)", st.tokens_out);
    kz_sched_free(s);
    for (int j = 0; j < NJ; j++) {
        T_EQ_INT(r[j].terminal, 1);
        T_EQ_INT(r[j].after_term, 0);
    }
}

static void embeddings_cancel_limits(void)
{
    /* a long context, so the endless job below cannot end by itself before
     * it is cancelled, however fast the kernels are */
    struct kz_sched_config cfg = {.n_parallel = 1, .n_ctx = 4096, .n_batch = 8, .max_queue = 1, .n_threads = 1};
    struct kz_sched *s = NULL;
    struct kz_err err = {{0}};
    T_EQ_INT(kz_sched_new(model, tok, &cfg, &s, &err), KZ_OK);
    if (!s)
        return;
    int32_t p[20];
    for (int i = 0; i < 20; i++)
        p[i] = 300 + i;
    static struct result re, rl, rq1, rq2;
    struct result *all[4] = {&re, &rl, &rq1, &rq2};
    for (int i = 0; i < 4; i++) {
        memset(all[i], 0, sizeof *all[i]);
        pthread_mutex_init(&all[i]->mu, NULL);
        pthread_cond_init(&all[i]->cv, NULL);
    }
    struct kz_sched_job ej = {.prompt = p, .n_prompt = 20, .embedding = 1, .sampling = greedy(), .cb = on_event,
                              .ud = &re};
    uint64_t id;
    T_EQ_INT(kz_sched_submit(s, &ej, &id, &err), KZ_OK);
    wait_done(&re);
    struct kz_ctx *c = NULL;
    kz_ctx_new(model, 4096, KZ_DT_F32, NULL, &c, &err);
    kz_ctx_eval_embd(c, p, 20, &err);
    float want[1024];
    kz_ctx_embedding(c, want, &err);
    kz_ctx_free(c);
    int ne = kz_model_config(model)->n_embd;
    T_EQ_INT(re.n_embd, ne);
    double d = 0;
    for (int i = 0; i < ne; i++)
        d = fmax(d, fabs((double)re.embd[i] - (double)want[i]));
    T_OK(d < 1e-4, "embedding equals the direct one (%.3g)", d);
    T_EQ_STR(re.finish, "stop");

    /* a prompt that cannot fit */
    static int32_t big[4100];
    struct kz_sched_job bj = {.prompt = big, .n_prompt = 4100, .sampling = greedy(), .cb = on_event, .ud = &rl};
    T_EQ_INT(kz_sched_submit(s, &bj, &id, &err), KZ_ELIMIT);
    T_OK(strstr(err.msg, "context holds 4096") != NULL, "%s", err.msg);

    /* a job with a 3000-token prompt (hundreds of 8-token steps, so it is
     * certainly still running when cancelled), and a queued one behind it */
    static int32_t longp[3000];
    for (int i = 0; i < 3000; i++)
        longp[i] = 300 + i % 200;
    struct kz_sched_job lj = {.prompt = longp, .n_prompt = 3000, .max_tokens = 0, .sampling = greedy(),
                              .cb = on_event, .ud = &rl};
    uint64_t long_id, q1;
    T_EQ_INT(kz_sched_submit(s, &lj, &long_id, &err), KZ_OK);
    struct kz_sched_job qj = {.prompt = p, .n_prompt = 3, .max_tokens = 2, .sampling = greedy(), .cb = on_event,
                              .ud = &rq1};
    kz_status rc1 = kz_sched_submit(s, &qj, &q1, &err);
    T_EQ_INT(rc1, KZ_OK);
    qj.ud = &rq2;
    kz_status rc = kz_sched_submit(s, &qj, &id, &err);
    T_OK(rc == KZ_ELIMIT || rc == KZ_OK, "third submit: ok or busy");
    if (rc == KZ_ELIMIT)
        T_OK(strstr(err.msg, "busy") != NULL, "%s", err.msg);
    usleep(2000);
    kz_sched_cancel(s, long_id);
    wait_done(&rl);
    T_EQ_STR(rl.finish, "cancelled");
    if (rc1 == KZ_OK) { /* never wait for a job that was refused */
        wait_done(&rq1);
        T_EQ_STR(rq1.finish, "length");
        T_EQ_INT(rq1.n, 2);
    }
    if (rc == KZ_OK)
        wait_done(&rq2);
    kz_sched_free(s);
    T_EQ_INT(rl.terminal, 1);
    T_EQ_INT(rl.after_term, 0);
}

/* Freeing the scheduler with work in flight ends every job once. */
static void shutdown(void)
{
    struct kz_sched_config cfg = {.n_parallel = 2, .n_ctx = 64, .n_batch = 8, .max_queue = 8, .n_threads = 1};
    struct kz_sched *s = NULL;
    struct kz_err err = {{0}};
    T_EQ_INT(kz_sched_new(model, tok, &cfg, &s, &err), KZ_OK);
    if (!s)
        return;
    static struct result r[5];
    int32_t p[3] = {1, 400, 401};
    for (int j = 0; j < 5; j++) {
        memset(&r[j], 0, sizeof r[j]);
        pthread_mutex_init(&r[j].mu, NULL);
        pthread_cond_init(&r[j].cv, NULL);
        struct kz_sched_job job = {.prompt = p, .n_prompt = 3, .max_tokens = 0, .sampling = greedy(),
                                   .cb = on_event, .ud = &r[j]};
        uint64_t id;
        kz_sched_submit(s, &job, &id, &err);
    }
    usleep(10000);
    kz_sched_free(s);
    for (int j = 0; j < 5; j++)
        T_OK(r[j].terminal == 1 && r[j].after_term == 0, "job %d ended once (%d)", j, r[j].terminal);
}

/* cores counted from /proc/cpuinfo text: (physical id, core id) pairs,
 * hyperthreads once, long lines full of digits (flags) and lines longer
 * than the reader's buffer passed over */
static int cores_of(const char *text)
{
    FILE *f = tmpfile();
    if (!f)
        return -2;
    fputs(text, f);
    rewind(f);
    int n = kz_cpu_cores_parse(f);
    fclose(f);
    return n;
}

static void cpuinfo_cores(void)
{
    char flags[2048] = "flags\t\t: fpu";
    for (int i = 0; i < 150; i++) /* avx512f sse4_1 ...: digits that no int holds */
        strcat(flags, " avx512f_4_1");
    strcat(flags, "\n");
    char text[8192];
    snprintf(text, sizeof text,
             "processor\t: 0\nphysical id\t: 0\ncore id\t\t: 0\n%s"
             "processor\t: 1\nphysical id\t: 0\ncore id\t\t: 0\n%s" /* hyperthread of core 0 */
             "processor\t: 2\nphysical id\t: 0\ncore id\t\t: 1\n%s"
             "processor\t: 3\nphysical id\t: 1\ncore id\t\t: 0\nmicrocode\t: 0x2b000603\n"
             "cache size\t: 491520000000000 KB\n",
             flags, flags, flags);
    T_EQ_INT(cores_of(text), 3);
    T_EQ_INT(cores_of("processor\t: 0\nmodel name\t: Some CPU 123456789012345\n"), 0); /* no ids: caller falls back */
    T_EQ_INT(cores_of(""), 0);
    T_OK(kz_cpu_physical_cores() >= 1, "this machine has a core");
}

int main(void)
{
    t_subtest("cores from /proc/cpuinfo", cpuinfo_cores);
    char path[512];
    snprintf(path, sizeof path, "%s/sched.gguf", t_tmpdir());
    struct kz_synth_opts o = {.out_path = path, .shape = "tiny", .type = "q8_0", .seed = 4, .n_threads = 2};
    struct kz_err err = {{0}};
    if (kz_synth_write(&o, &err) || kz_model_load(path, &model, &err) ||
        kz_tok_load(kz_model_gguf(model), &tok, &err)) {
        T_OK(0, "setup: %s", err.msg);
        return t_done();
    }
    t_subtest("batched jobs equal solo generation", batching_matches_solo);
    t_subtest("embeddings, cancel, limits", embeddings_cancel_limits);
    t_subtest("shutdown with work in flight", shutdown);
    kz_tok_free(tok);
    kz_model_free(model);
    return t_done();
}
