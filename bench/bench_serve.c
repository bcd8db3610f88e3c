/* SPDX-License-Identifier: MIT
 * Server throughput under concurrency: starts `kyozon serve` on 127.0.0.1
 * over a synthetic model and reports aggregate generated tokens/s with 1,
 * 4, 8 and 16 concurrent clients (each sends `rounds` completions of
 * max_tokens tokens, one after the other), and each figure's ratio to the
 * single-client one. Continuous batching should make 8 clients several
 * times faster in aggregate than 1, since a step reads the weights once for
 * every sequence.
 *
 *   build/bench_serve [--model FILE] [--type q8_0] [--tokens 128] [--rounds 2] [-t THREADS]
 * Without --model it writes build/bench-small-TYPE.gguf (kyozon synth
 * --shape small, ~125M parameters) once and reuses it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int port;
static int max_tokens = 128, rounds = 2;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One non-streamed completion; returns usage.completion_tokens or -1. */
static long one_request(int seq)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* loopback only, by construction */
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char body[256], req[512];
    /* min_p 0 and top_k 0 with temperature 1: full sampling, different seeds */
    int bl = snprintf(body, sizeof body,
                      "{\"model\":\"bench\",\"prompt\":\"Request %d begins here\",\"max_tokens\":%d,\"seed\":%d}", seq,
                      max_tokens, seq);
    int rl = snprintf(req, sizeof req,
                      "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                      bl, body);
    if (write(fd, req, (size_t)rl) != rl) {
        close(fd);
        return -1;
    }
    static __thread char buf[1 << 16];
    size_t n = 0;
    ssize_t k;
    while (n < sizeof buf - 1 && (k = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)k;
    close(fd);
    buf[n] = '\0';
    const char *u = strstr(buf, "\"completion_tokens\":");
    return u ? atol(u + 20) : -1;
}

struct client {
    int id;
    long tokens;
    int errors;
};

static void *client(void *arg)
{
    struct client *c = arg;
    for (int r = 0; r < rounds; r++) {
        long t = one_request(c->id * 1000 + r);
        if (t < 0)
            c->errors++;
        else
            c->tokens += t;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *type = "q8_0", *threads = "2";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model"))
            model = argv[i + 1];
        else if (!strcmp(argv[i], "--type"))
            type = argv[i + 1];
        else if (!strcmp(argv[i], "--tokens"))
            max_tokens = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-t"))
            threads = argv[i + 1];
        else {
            fprintf(stderr, "bench_serve: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    char exe[4096], path[4200], cmd[9000], log[64];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (el <= 0)
        return 1;
    exe[el] = '\0';
    *strrchr(exe, '/') = '\0'; /* the build directory, where kyozon is */
    if (!model) {
        snprintf(path, sizeof path, "%s/bench-small-%s.gguf", exe, type);
        struct stat st;
        if (stat(path, &st) != 0) {
            snprintf(cmd, sizeof cmd, "%s/kyozon synth -o %s --shape small --type %s --seed 1", exe, path, type);
            fprintf(stderr, "writing %s ...\n", path);
            if (system(cmd) != 0)
                return 1;
        }
        model = path;
    }
    snprintf(log, sizeof log, "/tmp/bench_serve.%d.log", (int)getpid());
    snprintf(cmd, sizeof cmd, "exec %s/kyozon serve -m %s --port 0 --model-name bench --parallel 16 --ctx 256 -t %s 2>%s",
             exe, model, threads, log);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 600 && !port; i++) {
        usleep(50000);
        FILE *f = fopen(log, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f)) {
            const char *p = strstr(line, "listening on http://127.0.0.1:");
            if (p)
                port = atoi(p + strlen("listening on http://127.0.0.1:"));
        }
        if (f)
            fclose(f);
    }
    for (int i = 0; i < 600; i++) { /* until the model is loaded */
        FILE *f = fopen(log, "r");
        char line[512];
        int ready = 0;
        while (f && fgets(line, sizeof line, f))
            ready |= strstr(line, "ready") != NULL;
        if (f)
            fclose(f);
        if (ready)
            break;
        usleep(50000);
    }
    if (!port) {
        fprintf(stderr, "bench_serve: the server did not start (see %s)\n", log);
        kill(pid, SIGTERM);
        return 1;
    }
    one_request(0); /* warm up: page in the weights */
    printf("model %s, %d tokens per request, %d rounds per client, -t %s\n\n", model, max_tokens, rounds, threads);
    printf("| clients | generated tokens | seconds | aggregate t/s | vs 1 client |\n|---|---|---|---|---|\n");
    double base = 0;
    static const int levels[] = {1, 4, 8, 16};
    for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
        int c = levels[l];
        struct client cl[16];
        pthread_t th[16];
        double t0 = now();
        for (int i = 0; i < c; i++) {
            cl[i] = (struct client){i + 1, 0, 0};
            pthread_create(&th[i], NULL, client, &cl[i]);
        }
        long tokens = 0;
        int errors = 0;
        for (int i = 0; i < c; i++) {
            pthread_join(th[i], NULL);
            tokens += cl[i].tokens;
            errors += cl[i].errors;
        }
        double dt = now() - t0, tps = (double)tokens / dt;
        if (c == 1)
            base = tps;
        printf("| %d | %ld | %.2f | %.1f | %.2fx |%s\n", c, tokens, dt, tps, base > 0 ? tps / base : 0.0,
               errors ? " (errors!)" : "");
        fflush(stdout);
    }
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    unlink(log);
    return 0;
}
