/* SPDX-License-Identifier: MIT */
#include "obs/metrics.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "engine/sched/scheduler.h"

#define N_BUCKETS 14
static const double bucket_le[N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

struct histogram {
    unsigned long long count[N_BUCKETS + 1]; /* last: +Inf only */
    double sum;
    unsigned long long n;
};

#define MAX_SERIES 64

struct series {
    const char *route;
    int status;
    unsigned long long n;
};

struct kz_metrics {
    struct series req[MAX_SERIES];
    int n_req;
    unsigned long long req_dropped; /* label combinations beyond MAX_SERIES */
    struct histogram ttft, duration;
    unsigned long long tokens_in, tokens_out;
};

struct kz_metrics *kz_metrics_new(void) { return kz_calloc(1, sizeof(struct kz_metrics)); }
void kz_metrics_free(struct kz_metrics *m) { kz_free(m); }

static void observe(struct histogram *h, double v)
{
    int i = 0;
    while (i < N_BUCKETS && v > bucket_le[i])
        i++;
    h->count[i]++;
    h->sum += v;
    h->n++;
}

void kz_metrics_request(struct kz_metrics *m, const char *route, int status, double duration_s)
{
    observe(&m->duration, duration_s);
    for (int i = 0; i < m->n_req; i++)
        if (m->req[i].status == status && strcmp(m->req[i].route, route) == 0) {
            m->req[i].n++;
            return;
        }
    if (m->n_req == MAX_SERIES) {
        m->req_dropped++; /* bounded label set: a scanner cannot grow this */
        return;
    }
    m->req[m->n_req++] = (struct series){route, status, 1};
}

void kz_metrics_ttft(struct kz_metrics *m, double seconds) { observe(&m->ttft, seconds); }

void kz_metrics_tokens(struct kz_metrics *m, long input, long output)
{
    m->tokens_in += (unsigned long long)(input > 0 ? input : 0);
    m->tokens_out += (unsigned long long)(output > 0 ? output : 0);
}

static void hist(struct kz_buf *o, const char *name, const char *help, const struct histogram *h)
{
    kz_buf_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    unsigned long long cum = 0;
    for (int i = 0; i < N_BUCKETS; i++) {
        cum += h->count[i];
        kz_buf_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_le[i], cum);
    }
    kz_buf_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, h->n, name, h->sum, name, h->n);
}

char *kz_metrics_render(const struct kz_metrics *m, const struct kz_sched_stats *st)
{
    struct kz_buf o = {0};
    kz_buf_printf(&o, "# HELP kyozon_http_requests_total HTTP requests by route and status.\n"
            "# TYPE kyozon_http_requests_total counter\n");
    for (int i = 0; i < m->n_req; i++)
        kz_buf_printf(&o, "kyozon_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", m->req[i].route, m->req[i].status,
            m->req[i].n);
    kz_buf_printf(&o, "# HELP kyozon_tokens_total Tokens processed, by type.\n# TYPE kyozon_tokens_total counter\n"
            "kyozon_tokens_total{type=\"input\"} %llu\nkyozon_tokens_total{type=\"output\"} %llu\n",
        m->tokens_in, m->tokens_out);
    hist(&o, "kyozon_time_to_first_token_seconds", "Time from request to first generated token.", &m->ttft);
    hist(&o, "kyozon_request_duration_seconds", "Time from request to the end of its response.", &m->duration);
    if (st) {
        kz_buf_printf(&o, "# HELP kyozon_queue_depth Requests waiting for a sequence slot.\n# TYPE kyozon_queue_depth gauge\n"
                "kyozon_queue_depth %d\n",
            st->queued);
        kz_buf_printf(&o, "# HELP kyozon_active_sequences Sequences being generated.\n# TYPE kyozon_active_sequences gauge\n"
                "kyozon_active_sequences %d\n",
            st->active);
        kz_buf_printf(&o, "# HELP kyozon_kv_cache_tokens KV cache positions, used and total.\n"
                "# TYPE kyozon_kv_cache_tokens gauge\n"
                "kyozon_kv_cache_tokens{state=\"used\"} %ld\nkyozon_kv_cache_tokens{state=\"total\"} %ld\n",
            st->kv_used, st->kv_total);
        kz_buf_printf(&o, "# HELP kyozon_kv_cache_usage_ratio Fraction of KV cache positions in use.\n"
                "# TYPE kyozon_kv_cache_usage_ratio gauge\nkyozon_kv_cache_usage_ratio %.6f\n",
            st->kv_total ? (double)st->kv_used / (double)st->kv_total : 0.0);
    }
    if (o.oom)
        kz_buf_free(&o);
    return o.p;
}
