/* SPDX-License-Identifier: MIT
 * The upstream client's HTTP/1.x response parser: every framing (length,
 * chunked with extensions and trailers, to the close, none), interim heads,
 * keep-alive rules, each malformed input it must refuse, and every valid
 * response cut at every byte and fed one byte at a time, with the same
 * head lines, body and verdict as when it comes whole.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "router/h1_resp.h"
#include "t.h"

struct out {
    char lines[2048], body[2048];
    size_t nl, nb, total;
    int stop_at_body;
};

static int on_line(void *ud, const char *p, size_t n)
{
    struct out *o = ud;
    if (o->nl + n < sizeof o->lines)
        memcpy(o->lines + o->nl, p, n), o->nl += n;
    return 0;
}

static int on_body(void *ud, const char *p, size_t n)
{
    struct out *o = ud;
    o->total += n;
    if (o->nb + n < sizeof o->body)
        memcpy(o->body + o->nb, p, n), o->nb += n;
    return o->stop_at_body;
}

static const struct kz_h1_cbs cbs = {on_line, on_body};

struct verdict {
    enum kz_h1_rc rc;
    int status, keep_alive;
    size_t left; /* input not taken */
    struct out o;
    char msg[96];
};

/* Feeds s in pieces of `step` bytes after a first piece of `first` bytes;
 * at the end of input, reports the close when eof is set. */
static void run(const char *s, size_t n, size_t first, size_t step, int eof, struct verdict *v)
{
    struct kz_h1_resp p;
    kz_h1_resp_init(&p);
    memset(v, 0, sizeof *v);
    size_t i = 0;
    enum kz_h1_rc rc = KZ_H1_MORE;
    while (i < n && rc == KZ_H1_MORE) {
        size_t take = i == 0 && first ? first : step;
        if (take > n - i)
            take = n - i;
        size_t used = 0;
        rc = kz_h1_resp_feed(&p, s + i, take, &used, &cbs, &v->o);
        i += used;
        if (rc == KZ_H1_MORE && used != take)
            break; /* must not happen: checked by the caller through left */
    }
    if (rc == KZ_H1_MORE && eof)
        rc = kz_h1_resp_eof(&p);
    v->rc = rc;
    v->status = p.status;
    v->keep_alive = p.keep_alive;
    v->left = n - i;
    snprintf(v->msg, sizeof v->msg, "%s", p.msg);
    kz_h1_resp_free(&p);
}

struct good {
    const char *name, *in;
    int eof;         /* the close ends it */
    int status, keep_alive;
    const char *lines, *body;
    size_t left;
};

static const struct good goods[] = {
    {"length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello", 0, 200, 1,
     "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\n", "hello", 0},
    {"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nT: z\r\n\r\n",
     0, 200, 1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "hello world", 0},
    {"chunked upper hex, gzip first", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
     0, 200, 1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "0123456789", 0},
    {"interim head", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno", 0, 404, 1,
     "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n", "no", 0},
    {"to the close", "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", 1, 200, 0,
     "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n", "all of it", 0},
    {"1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx", 0, 200, 1,
     "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n", "x", 0},
    {"close", "HTTP/1.1 503 Busy\r\nConnection: x, close\r\nContent-Length: 0\r\n\r\n", 0, 503, 0,
     "HTTP/1.1 503 Busy\r\nConnection: x, close\r\nContent-Length: 0\r\n\r\n", "", 0},
    {"no body for 204", "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", 0, 204, 1,
     "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", "", 0},
    {"bare LF line ends", "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n", 0, 200, 1,
     "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n", "abc", 0},
    {"status without reason", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", 0, 200, 1,
     "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n", "ok", 0},
    {"bytes past the answer", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", 0, 200, 1,
     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "ok", 5},
    {"same length twice", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\nz", 0, 200, 1,
     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\n", "z", 0},
};

static void check_good(const struct good *g, const struct verdict *v, const char *how)
{
    int ok = v->rc == KZ_H1_DONE && v->status == g->status && v->keep_alive == g->keep_alive &&
             v->left == g->left && v->o.nl == strlen(g->lines) && memcmp(v->o.lines, g->lines, v->o.nl) == 0 &&
             v->o.nb == strlen(g->body) && memcmp(v->o.body, g->body, v->o.nb) == 0;
    T_OK(ok, "%s (%s): rc %d status %d keep-alive %d left %zu body '%.*s' %s", g->name, how, v->rc, v->status,
         v->keep_alive, v->left, (int)v->o.nb, v->o.body, v->msg);
}

static void good_inputs(void)
{
    for (size_t k = 0; k < sizeof goods / sizeof *goods; k++) {
        const struct good *g = &goods[k];
        size_t n = strlen(g->in);
        struct verdict v;
        run(g->in, n, 0, n, g->eof, &v);
        check_good(g, &v, "whole");
        run(g->in, n, 0, 1, g->eof, &v);
        check_good(g, &v, "bytewise");
        int bad_split = 0;
        for (size_t cut = 1; cut < n && !bad_split; cut++) {
            run(g->in, n, cut, n, g->eof, &v);
            char how[32];
            snprintf(how, sizeof how, "cut at %zu", cut);
            bad_split = v.rc != KZ_H1_DONE || v.o.nb != strlen(g->body) || v.left != g->left;
            if (bad_split)
                check_good(g, &v, how);
        }
        T_OK(!bad_split, "%s: every cut gives the same answer", g->name);
    }
}

struct bad {
    const char *name, *in;
    int eof;
    const char *msg;
};

static const struct bad bads[] = {
    {"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", 0, "malformed status line"},
    {"HTTP/2 status", "HTTP/2 200\r\n\r\n", 0, "malformed status line"},
    {"status 600", "HTTP/1.1 600 X\r\n\r\n", 0, "malformed status line"},
    {"two-digit status", "HTTP/1.1 20 OK\r\n\r\n", 0, "malformed status line"},
    {"header without colon", "HTTP/1.1 200 OK\r\nnocolon\r\n\r\n", 0, "malformed header"},
    {"folded header", "HTTP/1.1 200 OK\r\nA: b\r\n  c\r\n\r\n", 0, "malformed header"},
    {"space before colon", "HTTP/1.1 200 OK\r\nA : b\r\n\r\n", 0, "malformed header"},
    {"letters in length", "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", 0, "bad Content-Length"},
    {"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, "bad Content-Length"},
    {"empty length", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", 0, "bad Content-Length"},
    {"huge length", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", 0, "bad Content-Length"},
    {"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0, "conflicting"},
    {"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, "bad chunk size"},
    {"negative chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", 0, "bad chunk size"},
    {"huge chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n", 0, "too large"},
    {"chunk without its line end", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", 0,
     "not followed by a line end"},
    {"switching protocols", "HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n", 0, "switched protocols"},
    {"length larger than the body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 1, "before the response was complete"},
    {"cut inside a chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 1, "before the response was complete"},
    {"cut inside the head", "HTTP/1.1 200 OK\r\nContent-Le", 1, "before the response was complete"},
    {"nothing at all", "", 1, "without answering"},
};

static void bad_inputs(void)
{
    for (size_t k = 0; k < sizeof bads / sizeof *bads; k++) {
        const struct bad *b = &bads[k];
        size_t n = strlen(b->in);
        struct verdict v;
        for (int bytewise = 0; bytewise < 2; bytewise++) {
            run(b->in, n, 0, bytewise ? 1 : (n ? n : 1), b->eof, &v);
            T_OK(v.rc == KZ_H1_ERROR && strstr(v.msg, b->msg), "%s (%s): rc %d msg '%s'", b->name,
                 bytewise ? "bytewise" : "whole", v.rc, v.msg);
        }
    }
}

/* A head over 64 KiB, one long line or many short ones; a long chunked
 * stream is fine however many chunks it has. */
static void limits(void)
{
    size_t big = 70u << 10;
    char *s = kz_malloc(big + 256);
    T_OK(s != NULL, "memory");
    if (!s)
        return;
    struct verdict v;
    int n = snprintf(s, 256, "HTTP/1.1 200 OK\r\nX: ");
    memset(s + n, 'a', big);
    memcpy(s + n + big, "\r\n\r\n", 5);
    run(s, strlen(s), 0, 4096, 0, &v);
    T_OK(v.rc == KZ_H1_ERROR && strstr(v.msg, "larger than 64 KiB"), "one long header line: %d %s", v.rc, v.msg);
    n = snprintf(s, 256, "HTTP/1.1 200 OK\r\n");
    size_t len = (size_t)n;
    while (len < big)
        len += (size_t)snprintf(s + len, 64, "X-Many: 0123456789\r\n");
    memcpy(s + len, "\r\n", 3);
    run(s, strlen(s), 0, 1000, 0, &v);
    T_OK(v.rc == KZ_H1_ERROR && strstr(v.msg, "larger than 64 KiB"), "many header lines: %d %s", v.rc, v.msg);
    kz_free(s);

    /* 20,000 chunks: 160 KB of chunk framing, more than the head limit */
    size_t cap = 20000 * 8 + 128;
    char *c = kz_malloc(cap);
    T_OK(c != NULL, "memory");
    if (!c)
        return;
    len = (size_t)snprintf(c, cap, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 20000; i++)
        len += (size_t)snprintf(c + len, cap - len, "1\r\n%c\r\n", 'a' + i % 26);
    len += (size_t)snprintf(c + len, cap - len, "0\r\n\r\n");
    run(c, len, 0, 777, 0, &v);
    T_OK(v.rc == KZ_H1_DONE && v.o.total == 20000 && v.o.body[27] == 'b', "20,000 chunks: rc %d, %zu bytes %s",
         v.rc, v.o.total, v.msg);
    kz_free(c);
}

/* A callback's stop ends the parse at once; reset readies the next answer. */
static void stop_and_reset(void)
{
    const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    struct kz_h1_resp p;
    kz_h1_resp_init(&p);
    struct out o = {.stop_at_body = 1};
    size_t used;
    T_EQ_INT(kz_h1_resp_feed(&p, a, strlen(a), &used, &cbs, &o), KZ_H1_STOP);
    kz_h1_resp_reset(&p);
    T_OK(kz_h1_resp_untouched(&p), "reset: nothing of the next answer yet");
    memset(&o, 0, sizeof o);
    T_EQ_INT(kz_h1_resp_feed(&p, a, strlen(a), &used, &cbs, &o), KZ_H1_DONE);
    T_OK(used == strlen(a) && o.nb == 3 && p.keep_alive, "the next answer whole: %zu %zu", used, o.nb);
    kz_h1_resp_free(&p);
}

int main(void)
{
    t_subtest("good_inputs", good_inputs);
    t_subtest("bad_inputs", bad_inputs);
    t_subtest("limits", limits);
    t_subtest("stop_and_reset", stop_and_reset);
    return t_done();
}
