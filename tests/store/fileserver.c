/* SPDX-License-Identifier: MIT
 * A tiny HTTP/1.1 file server for the pull tests, included by them (not a
 * test program itself). It listens on 127.0.0.1 on a kernel-chosen port, in
 * a thread, one request per connection, and never talks to any other host.
 *
 * It serves one in-memory file at `path`, with byte ranges ("bytes=N-"),
 * and can misbehave on request:
 *   redirect_from   answers that path with a 302 to `path` carrying
 *                   X-Linked-Size / X-Linked-ETag, as the Hugging Face
 *                   resolve URL does
 *   drop_after      the next GET of `path` sends that many body bytes, then
 *                   closes the connection (one shot; -1 = off)
 *   ignore_range    answers every GET with 200 and the whole file
 *   status          answers everything with this status (e.g. 401, 500)
 * Every other path is a 404. It records the path, Range and Authorization
 * header of each request, read them after fs_stop.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define FS_MAX_REQ 16

struct fs_server {
    /* configuration: set before fs_start (drop_after may be re-armed
     * between pulls, while no request is in flight) */
    const unsigned char *body;
    size_t body_len;
    const char *path;
    const char *redirect_from;   /* NULL: no redirect */
    const char *redirect_to;     /* Location; NULL: `path` */
    long long linked_size;       /* -1: no X-Linked-Size */
    const char *linked_etag;     /* NULL: no X-Linked-ETag */
    long drop_after;
    int ignore_range;
    int status;                  /* 0: normal */

    /* observations */
    int n_req;
    char req_path[FS_MAX_REQ][256];
    char req_range[FS_MAX_REQ][64];
    char req_auth[FS_MAX_REQ][128];

    int lfd;
    unsigned short port;
    atomic_int stop;
    pthread_t th;
};

static void fs_send(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the client went away: fine for these tests */
        c += w;
        n -= (size_t)w;
    }
}

/* Copies the value of header `name` (lower case) from the request head. */
static void fs_header(const char *head, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\r\n");
            snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), v);
            return;
        }
    }
}

static void fs_handle(struct fs_server *s, int fd)
{
    char head[8192];
    size_t n = 0;
    while (n < sizeof head - 1) {
        ssize_t r = recv(fd, head + n, sizeof head - 1 - n, 0);
        if (r <= 0)
            return;
        n += (size_t)r;
        head[n] = '\0';
        if (strstr(head, "\r\n\r\n"))
            break;
    }
    char path[256] = "", range[64], auth[128], hdr[1024];
    const char *sp = strchr(head, ' ');
    if (sp)
        snprintf(path, sizeof path, "%.*s", (int)strcspn(sp + 1, " \r\n"), sp + 1);
    fs_header(head, "range", range, sizeof range);
    fs_header(head, "authorization", auth, sizeof auth);
    if (s->n_req < FS_MAX_REQ) {
        memcpy(s->req_path[s->n_req], path, sizeof path);
        memcpy(s->req_range[s->n_req], range, sizeof range);
        memcpy(s->req_auth[s->n_req], auth, sizeof auth);
    }
    s->n_req++;

    if (s->status) {
        snprintf(hdr, sizeof hdr, "HTTP/1.1 %d Nope\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope\n", s->status);
        fs_send(fd, hdr, strlen(hdr));
        return;
    }
    if (s->redirect_from && strcmp(path, s->redirect_from) == 0) {
        int k = snprintf(hdr, sizeof hdr, "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\nConnection: close\r\n",
                         s->redirect_to ? s->redirect_to : s->path);
        if (s->linked_size >= 0)
            k += snprintf(hdr + k, sizeof hdr - (size_t)k, "X-Linked-Size: %lld\r\n", s->linked_size);
        if (s->linked_etag)
            k += snprintf(hdr + k, sizeof hdr - (size_t)k, "X-Linked-ETag: \"%s\"\r\n", s->linked_etag);
        snprintf(hdr + k, sizeof hdr - (size_t)k, "\r\n");
        fs_send(fd, hdr, strlen(hdr));
        return;
    }
    if (strcmp(path, s->path) != 0) {
        snprintf(hdr, sizeof hdr, "HTTP/1.1 404 Not Found\r\nContent-Length: 16\r\nConnection: close\r\n\r\nEntry not found\n");
        fs_send(fd, hdr, strlen(hdr));
        return;
    }
    size_t from = 0;
    unsigned long long want = 0;
    int ranged = !s->ignore_range && strncmp(range, "bytes=", 6) == 0;
    if (ranged) {
        char *end;
        want = strtoull(range + 6, &end, 10);
        if (*end != '-' || end[1]) /* only the "N-" form the client uses */
            ranged = 0;
    }
    if (ranged && want >= s->body_len) {
        snprintf(hdr, sizeof hdr,
                 "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */%zu\r\nContent-Length: 0\r\n"
                 "Connection: close\r\n\r\n",
                 s->body_len);
        fs_send(fd, hdr, strlen(hdr));
        return;
    }
    if (ranged) {
        from = (size_t)want;
        snprintf(hdr, sizeof hdr,
                 "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %zu-%zu/%zu\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 from, s->body_len - 1, s->body_len, s->body_len - from);
    } else {
        snprintf(hdr, sizeof hdr, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
                 s->body_len);
    }
    fs_send(fd, hdr, strlen(hdr));
    size_t len = s->body_len - from;
    if (s->drop_after >= 0) {
        if ((size_t)s->drop_after < len)
            len = (size_t)s->drop_after;
        s->drop_after = -1;
    }
    fs_send(fd, s->body + from, len);
}

static void *fs_main(void *ud)
{
    struct fs_server *s = ud;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        fs_handle(s, fd);
        shutdown(fd, SHUT_WR); /* the bytes sent so far arrive, then EOF */
        char sink[256];
        struct pollfd q = {fd, POLLIN, 0};
        while (poll(&q, 1, 200) > 0 && recv(fd, sink, sizeof sink, 0) > 0)
            ;
        close(fd);
    }
    return NULL;
}

/* Starts serving; returns 0, or -1 (with a message) when it cannot. */
static int fs_start(struct fs_server *s)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->lfd, 16) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0) {
        perror("fileserver");
        return -1;
    }
    s->port = ntohs(a.sin_port);
    atomic_store(&s->stop, 0);
    return pthread_create(&s->th, NULL, fs_main, s) == 0 ? 0 : -1;
}

static void fs_stop(struct fs_server *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->lfd);
}

/* A server with defaults: file at `path`, no redirect, no faults. */
static void fs_init(struct fs_server *s, const unsigned char *body, size_t len, const char *path)
{
    memset(s, 0, sizeof *s);
    s->body = body;
    s->body_len = len;
    s->path = path;
    s->linked_size = -1;
    s->drop_after = -1;
}
