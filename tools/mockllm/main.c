/* SPDX-License-Identifier: MIT
 * mockllm's command line. Loopback only: it is a test fixture that answers
 * anything, and must never be reachable from elsewhere.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

static const char usage[] =
    "usage: mockllm [--host 127.0.0.1] [--port 0] [--mode MODE] [--tokens N] [--cadence-ms MS]\n"
    "  A scripted upstream LLM server for tests (OpenAI, Azure OpenAI, Anthropic\n"
    "  and Bedrock dialects). Prints \"mockllm: listening on http://HOST:PORT\" on\n"
    "  stderr once ready; exits 0 on SIGTERM or SIGINT.\n"
    "  --host H        loopback address to bind (127.x.x.x or localhost) [127.0.0.1]\n"
    "  --port P        port, 0 for any free one [0]\n"
    "  --mode MODE     initial mode (GET /_mock/modes lists them) [ok]\n"
    "  --tokens N      tokens in a full answer [8]\n"
    "  --cadence-ms MS delay before each token in mode slow [50]\n"
    "  --word W        token i reads \"W<i> \" [tok]\n"
    "  --after K       hang_mid/close_mid: tokens; reset_after: bytes [1]\n"
    "  --retry-after S status:CODE answers carry Retry-After: S [none]\n"
    "Control API: POST /_mock/mode, GET /_mock/modes, GET /_mock/stats, POST /_mock/reset.\n";

/* A whole non-negative number no larger than max, or -1. */
static long parse_num(const char *s, long max)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (end == s || *end || v < 0 || v > max) ? -1 : v;
}

static int is_loopback(const char *host)
{
    struct sockaddr_in a;
    return uv_ip4_addr(host, 0, &a) == 0 && (ntohl(a.sin_addr.s_addr) >> 24) == 127;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    long port = 0;
    struct kz_mock_server srv;
    memset(&srv, 0, sizeof srv);
    struct kz_mock_settings st = {{KZ_MOCK_OK, 0, 0}, 8, 50, -1, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n = 0;
        struct kz_err err = {{0}};
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "mockllm: unknown option or missing value: %s\n%s", a, usage);
            return 2;
        }
        i++;
        if (strcmp(a, "--host") == 0)
            host = strcmp(v, "localhost") == 0 ? "127.0.0.1" : v;
        else if (strcmp(a, "--port") == 0 && (port = parse_num(v, 65535)) >= 0)
            continue;
        else if (strcmp(a, "--mode") == 0) {
            if (kz_mock_mode_parse(v, &st.mode, &err) != KZ_OK) {
                fprintf(stderr, "mockllm: --mode: %s\n", err.msg);
                return 2;
            }
        } else if (strcmp(a, "--tokens") == 0 && (n = parse_num(v, 100000)) >= 0)
            st.tokens = (int)n;
        else if (strcmp(a, "--cadence-ms") == 0 && (n = parse_num(v, 600000)) >= 0)
            st.cadence_ms = (unsigned)n;
        else if (strcmp(a, "--word") == 0 && strlen(v) > 0 && strlen(v) < 64 && !strpbrk(v, "\"\\ "))
            kz_mock_word = v;
        else if (strcmp(a, "--after") == 0 && (n = parse_num(v, 1L << 30)) >= 0)
            st.after = (unsigned long)n;
        else if (strcmp(a, "--retry-after") == 0 && (n = parse_num(v, 86400)) >= 0)
            st.retry_after = n;
        else {
            fprintf(stderr, "mockllm: bad option or value: %s %s\n%s", a, v, usage);
            return 2;
        }
    }
    if (!is_loopback(host)) {
        fprintf(stderr, "mockllm: refusing to listen on '%s': only loopback addresses (127.0.0.0/8) are allowed\n",
                host);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a client that leaves mid-answer is a write error, not a death */
    srv.cur = srv.start = st;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int bound = 0;
    struct kz_err err = {{0}};
    if (kz_mock_server_start(&srv, &loop, host, (int)port, &bound, &err) != KZ_OK) {
        fprintf(stderr, "mockllm: %s\n", err.msg);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        kz_mock_server_free(&srv);
        return 1;
    }
    fprintf(stderr, "mockllm: listening on http://%s:%d\n", host, bound);
    fflush(stderr);
    uv_run(&loop, UV_RUN_DEFAULT);
    kz_mock_server_free(&srv);
    uv_loop_close(&loop);
    return 0;
}
