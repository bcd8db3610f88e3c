/* SPDX-License-Identifier: MIT
 * Request body parsing: jansson's json_loadb against the fast reader
 * (core/jsonr.h) on chat bodies from one short message to a long multi-turn
 * conversation, and the whole request decoder (kz_api_request_decode) on
 * the same bodies. Every body is checked to be claimed by the fast reader
 * first. Reported: median microseconds per body and MB/s of body text.
 *
 * Usage: bench_json [--runs N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/openai.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/jsonr.h"
#include "core/jsonw.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A chat body of n_msg messages of about msg_len bytes each: prose with a
 * quote, a line break and a few non-ASCII characters, as users write it. */
static char *chat_body(int n_msg, size_t msg_len, size_t *len)
{
    static const char prose[] = "The quick brown fox \"jumps\" over the lazy dog.\nCaf\xc3\xa9 \xe2\x82\xac 42. ";
    struct kz_buf b = {0}, text = {0};
    while (text.len < msg_len)
        kz_jw_raw(&text, prose, sizeof prose - 1);
    KZ_JW_LIT(&b, "{\"model\":\"chat\",\"messages\":[");
    for (int i = 0; i < n_msg; i++) {
        if (i)
            KZ_JW_LIT(&b, ",");
        KZ_JW_LIT(&b, "{\"role\":");
        kz_jw_cstr(&b, i == 0 ? "system" : i % 2 ? "user" : "assistant");
        KZ_JW_LIT(&b, ",\"content\":");
        kz_jw_str(&b, text.p, msg_len);
        KZ_JW_LIT(&b, "}");
    }
    KZ_JW_LIT(&b, "],\"max_tokens\":256,\"temperature\":0.7,\"stream\":true}");
    kz_buf_free(&text);
    *len = b.len;
    return b.oom ? NULL : b.p;
}

enum what { LOADB, FAST, DECODE };

/* Median seconds per parse over runs, each run long enough to time. */
static double time_it(enum what w, const char *body, size_t len, int runs)
{
    double t[64];
    int reps = (int)(2e6 / (double)(len + 200)) + 1;
    for (int r = 0; r < runs; r++) {
        double t0 = now();
        for (int i = 0; i < reps; i++) {
            if (w == DECODE) {
                struct kz_api_request req;
                struct kz_api_error e;
                if (kz_api_request_decode(KZ_API_CHAT, body, len, &req, &e) != KZ_OK)
                    exit((fprintf(stderr, "bench_json: body refused: %s\n", e.message), 1));
                kz_api_request_free(&req);
                continue;
            }
            json_error_t je;
            json_t *v = w == LOADB ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : kz_jr_object(body, len, 64);
            if (!v)
                exit((fprintf(stderr, "bench_json: body not parsed\n"), 1));
            json_decref(v);
        }
        t[r] = (now() - t0) / reps;
    }
    qsort(t, (size_t)runs, sizeof t[0], cmp);
    return t[runs / 2];
}

int main(int argc, char **argv)
{
    int runs = 7;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc && (runs = atoi(argv[++i])) >= 1 && runs <= 64)
            continue;
        fprintf(stderr, "usage: bench_json [--runs N (1-64, default 7)]\n");
        return strcmp(argv[i], "--help") ? 2 : 0;
    }
    static const struct {
        int n_msg;
        size_t msg_len;
    } shapes[] = {{1, 8}, {2, 200}, {8, 1000}, {32, 4000}};
    printf("| body | bytes | json_loadb us | fast reader us | speed-up | fast MB/s | whole decode us |\n"
           "|---|---|---|---|---|---|---|\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t len;
        char *body = chat_body(shapes[s].n_msg, shapes[s].msg_len, &len);
        json_t *probe = body ? kz_jr_object(body, len, 64) : NULL;
        if (!probe)
            return fprintf(stderr, "bench_json: the fast reader did not claim a test body\n"), 1;
        json_decref(probe);
        double a = time_it(LOADB, body, len, runs), b = time_it(FAST, body, len, runs);
        double d = time_it(DECODE, body, len, runs);
        printf("| %d x %zu B | %zu | %.2f | %.2f | %.1fx | %.0f | %.2f |\n", shapes[s].n_msg, shapes[s].msg_len, len,
               a * 1e6, b * 1e6, a / b, (double)len / b / 1e6, d * 1e6);
        kz_free(body);
    }
    return 0;
}
