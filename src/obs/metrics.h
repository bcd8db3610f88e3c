/* SPDX-License-Identifier: MIT
 * Prometheus metrics of the server: requests by route and status, token
 * counters, time-to-first-token and request-duration histograms, plus the
 * engine gauges (queue depth, active sequences, KV cache use) read from the
 * scheduler at scrape time.
 *
 * Threads: updated and rendered on the HTTP loop thread only (no locks).
 */
#ifndef KZ_METRICS_H
#define KZ_METRICS_H

#include <stddef.h>

struct kz_metrics;
struct kz_sched_stats;

struct kz_metrics *kz_metrics_new(void); /* NULL on OOM */
void kz_metrics_free(struct kz_metrics *m);

/* route: a static label such as "/v1/chat/completions" (not copied). */
void kz_metrics_request(struct kz_metrics *m, const char *route, int status, double duration_s);
void kz_metrics_ttft(struct kz_metrics *m, double seconds);
void kz_metrics_tokens(struct kz_metrics *m, long input, long output);

/* Prometheus text exposition (version 0.0.4); st may be NULL (no engine).
 * New string, kz_free it; NULL on OOM. */
char *kz_metrics_render(const struct kz_metrics *m, const struct kz_sched_stats *st);

#endif
