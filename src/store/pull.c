/* SPDX-License-Identifier: MIT
 * kz_pull: one libcurl easy transfer per attempt, streaming into
 * NAME.partial while hashing, then verify-fsync-rename (contract and
 * invariants in pull.h; the design in docs/internals/pull.md).
 *
 * A pull is a loop of attempts. Each attempt asks for the bytes after what
 * the partial file holds (Range: bytes=N-) and decides, at the first body
 * byte of the final response, whether the server honoured the range (206),
 * ignored it (200: truncate and start over), or answered with an error
 * (body discarded). The digest always covers exactly the bytes on disk, so
 * after a restart or a resume the final digest needs no second read.
 */
#include "store/pull.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"

#define PULL_USER_AGENT "kyozon/0.1"
#define PULL_CONNECT_TIMEOUT_S 30L
/* A transfer slower than 1 byte/s for this long is dead, not slow. */
#define PULL_STALL_S 60L
#define PULL_MAX_REDIRS 10L
#define PULL_REHASH_CHUNK (1u << 20)
#define PULL_PROGRESS_EVERY_S 0.1
static const uint8_t GGUF_MAGIC[4] = {'G', 'G', 'U', 'F'};

// --- transfer state ----------------------------------------------------------

struct xfer {
    CURL *curl;
    const struct kz_model_source *src;
    const char *part_path;
    int fd;                    /* the partial file, flocked */
    int progress;
    const char *label;         /* file name for the progress bar */

    /* the bytes on disk: always exactly what the digest has consumed */
    uint64_t have;
    struct kz_sha256 sha;
    uint8_t magic[4];          /* first bytes of the file (have of them) */
    uint64_t reused;           /* bytes kept from a partial of an earlier run */

    /* this attempt */
    uint64_t start;            /* offset asked for with Range (0: no Range) */
    int began;                 /* the final response's body has started */
    long code;                 /* its HTTP status */
    int64_t total;             /* expected final size, -1 unknown */

    /* headers of the response being received (reset at each status line) */
    int64_t content_length;
    int64_t cr_start, cr_total; /* Content-Range, -1 unknown */
    /* collected over the whole redirect chain: the first value seen wins,
     * because Hugging Face puts them on the resolve URL's own reply */
    int64_t linked_size;
    char linked_sha[KZ_SHA256_HEX_SIZE];
    char etag_sha[KZ_SHA256_HEX_SIZE];

    /* a failure detected inside a callback, reported after perform */
    kz_status fail;
    int fail_remove;           /* the partial's content is wrong: delete it */
    struct kz_err ferr;

    /* progress bar */
    double t_attempt, t_drawn;
    uint64_t have_attempt;     /* have when this attempt started */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void kz_pull_fmt_size(uint64_t n, char *out, size_t size)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(out, size, "%" PRIu64 " B", n);
    else
        snprintf(out, size, "%.1f %s", v, units[u]);
}

// --- progress ----------------------------------------------------------------

static void draw_progress(struct xfer *x, int final)
{
    double t = now_s();
    if (!final && t - x->t_drawn < PULL_PROGRESS_EVERY_S)
        return;
    x->t_drawn = t;
    char done[32], tot[32], rate[32], eta[32] = "";
    kz_pull_fmt_size(x->have, done, sizeof done);
    double dt = t - x->t_attempt;
    double bps = dt > 0 ? (double)(x->have - x->have_attempt) / dt : 0.0;
    kz_pull_fmt_size((uint64_t)bps, rate, sizeof rate);
    if (x->total > 0) {
        enum { W = 24 };
        char bar[W + 1];
        double frac = (double)x->have / (double)x->total;
        if (frac > 1.0)
            frac = 1.0;
        int fill = (int)(frac * W);
        for (int i = 0; i < W; i++)
            bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[W] = '\0';
        kz_pull_fmt_size((uint64_t)x->total, tot, sizeof tot);
        if (bps > 0 && !final && x->have < (uint64_t)x->total) {
            uint64_t left = (uint64_t)(((double)x->total - (double)x->have) / bps);
            snprintf(eta, sizeof eta, " ETA %" PRIu64 ":%02" PRIu64, left / 60, left % 60);
        }
        fprintf(stderr, "\r%-.24s %3d%% [%s] %s / %s %s/s%s\033[K", x->label, (int)(frac * 100.0), bar, done,
                tot, rate, eta);
    } else {
        fprintf(stderr, "\r%-.24s %s %s/s\033[K", x->label, done, rate);
    }
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    struct xfer *x = ud;
    if (x->began && (x->code == 200 || x->code == 206))
        draw_progress(x, 0);
    return 0;
}

// --- headers -----------------------------------------------------------------

/* Strict unsigned decimal (the whole of s[0..n)); -1 when not one. */
static int64_t parse_u63(const char *s, size_t n)
{
    if (n == 0 || n > 18) /* 18 digits always fit in int64_t */
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int name_is(const char *name, size_t n, const char *want)
{
    if (strlen(want) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != want[i])
            return 0;
    }
    return 1;
}

/* An entity tag that is a sha256: optional W/, optional quotes, 64 hex. */
static int etag_as_sha(const char *v, size_t n, char out[KZ_SHA256_HEX_SIZE])
{
    if (n >= 2 && v[0] == 'W' && v[1] == '/') {
        v += 2;
        n -= 2;
    }
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v++;
        n -= 2;
    }
    return kz_sha256_hex_normalize(v, n, out);
}

// "bytes START-END/TOTAL", or "bytes */TOTAL" in a 416 reply.
static void parse_content_range(struct xfer *x, const char *v, size_t n)
{
    x->cr_start = x->cr_total = -1;
    if (n < 6 || memcmp(v, "bytes ", 6) != 0)
        return;
    v += 6;
    n -= 6;
    const char *slash = memchr(v, '/', n);
    if (!slash)
        return;
    x->cr_total = parse_u63(slash + 1, (size_t)(v + n - slash - 1));
    const char *dash = memchr(v, '-', (size_t)(slash - v));
    if (dash)
        x->cr_start = parse_u63(v, (size_t)(dash - v));
}

static size_t on_header(char *p, size_t sz, size_t nitems, void *ud)
{
    struct xfer *x = ud;
    size_t len = sz * nitems, n = len;
    while (n && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* a new response (a redirect, a 100-continue, or the final one):
         * its body, if any, is judged by its own status */
        x->content_length = x->cr_start = x->cr_total = -1;
        x->began = 0;
        return len;
    }
    const char *colon = memchr(p, ':', n);
    if (!colon)
        return len;
    size_t name_len = (size_t)(colon - p);
    const char *v = colon + 1;
    while (v < p + n && (*v == ' ' || *v == '\t'))
        v++;
    size_t vn = (size_t)(p + n - v);
    char hex[KZ_SHA256_HEX_SIZE];
    if (name_is(p, name_len, "content-length")) {
        x->content_length = parse_u63(v, vn);
    } else if (name_is(p, name_len, "content-range")) {
        parse_content_range(x, v, vn);
    } else if (name_is(p, name_len, "x-linked-size")) {
        if (x->linked_size < 0)
            x->linked_size = parse_u63(v, vn);
    } else if (name_is(p, name_len, "x-linked-etag")) {
        if (!x->linked_sha[0] && etag_as_sha(v, vn, hex))
            memcpy(x->linked_sha, hex, sizeof hex);
    } else if (name_is(p, name_len, "etag")) {
        if (!x->etag_sha[0] && etag_as_sha(v, vn, hex))
            memcpy(x->etag_sha, hex, sizeof hex);
    }
    return len;
}

// --- body --------------------------------------------------------------------

static kz_status truncate_partial(struct xfer *x, struct kz_err *err)
{
    if (ftruncate(x->fd, 0) != 0)
        return kz_err_set(err, KZ_EIO, "disk error: truncating %s: %s", x->part_path, strerror(errno));
    x->have = 0;
    x->reused = 0;
    kz_sha256_init(&x->sha);
    return KZ_OK;
}

static kz_status check_space(struct xfer *x, struct kz_err *err)
{
    struct statvfs vs;
    if (x->total < 0 || (uint64_t)x->total <= x->have || fstatvfs(x->fd, &vs) != 0)
        return KZ_OK; /* unknown: the write itself will say */
    uint64_t need = (uint64_t)x->total - x->have;
    uint64_t avail = (uint64_t)vs.f_bavail * (uint64_t)vs.f_frsize;
    if (avail < need) {
        char a[32], b[32];
        kz_pull_fmt_size(need, a, sizeof a);
        kz_pull_fmt_size(avail, b, sizeof b);
        return kz_err_set(err, KZ_ELIMIT, "not enough disk space for %s: need %s more, %s free", x->part_path, a, b);
    }
    return KZ_OK;
}

/* The final response's status is known and its body starts now: decide
 * what the bytes that follow mean. Sets x->fail on a contradiction. */
static void begin_body(struct xfer *x)
{
    x->began = 1;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->code);
    if (x->code != 200 && x->code != 206)
        return;
    int64_t body_total = -1;
    if (x->code == 200) {
        if (x->have > 0) {
            /* Range ignored: the body is the whole file from byte 0 */
            x->fail = truncate_partial(x, &x->ferr);
            if (x->fail)
                return;
        }
        body_total = x->content_length;
    } else {
        if (x->cr_start < 0 || (uint64_t)x->cr_start != x->start) {
            x->fail = kz_err_set(&x->ferr, KZ_EPROTO, "%s: asked for bytes from %" PRIu64 ", the server sent %s%" PRId64,
                                 x->src->url, x->start, x->cr_start < 0 ? "no usable Content-Range " : "bytes from ",
                                 x->cr_start);
            return;
        }
        body_total = x->cr_total;
    }
    if (x->linked_size >= 0 && body_total >= 0 && x->linked_size != body_total) {
        x->fail = kz_err_set(&x->ferr, KZ_EPROTO,
                             "size mismatch for %s: the source publishes %" PRId64 " bytes, the download has %" PRId64,
                             x->src->url, x->linked_size, body_total);
        return;
    }
    x->total = x->linked_size >= 0 ? x->linked_size : body_total;
    if (x->total >= 0 && x->have > (uint64_t)x->total) {
        x->fail = kz_err_set(&x->ferr, KZ_EPROTO, "%s: partial file is larger (%" PRIu64 ") than the source (%" PRId64 ")",
                             x->part_path, x->have, x->total);
        x->fail_remove = 1;
        return;
    }
    x->fail = check_space(x, &x->ferr);
}

static size_t on_body(char *p, size_t sz, size_t nitems, void *ud)
{
    struct xfer *x = ud;
    size_t len = sz * nitems;
    if (!x->began)
        begin_body(x);
    if (x->fail)
        return 0;
    if (x->code != 200 && x->code != 206)
        return len; /* an error page: reported from the status, not stored */
    if (x->total >= 0 && x->have + len > (uint64_t)x->total) {
        x->fail = kz_err_set(&x->ferr, KZ_EPROTO, "size mismatch for %s: more than the expected %" PRId64 " bytes",
                             x->src->url, x->total);
        x->fail_remove = 1;
        return 0;
    }
    for (size_t i = 0; i < len && x->have + i < sizeof x->magic; i++)
        x->magic[x->have + i] = (uint8_t)p[i];
    if (x->have < 4 && x->have + len >= 4 && memcmp(x->magic, GGUF_MAGIC, 4) != 0) {
        /* fail early: a login page or an HTML error with status 200 */
        x->fail = kz_err_set(&x->ferr, KZ_EPROTO, "%s is not a GGUF file (it starts with %02x %02x %02x %02x)",
                             x->src->url, x->magic[0], x->magic[1], x->magic[2], x->magic[3]);
        x->fail_remove = 1;
        return 0;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = pwrite(x->fd, p + off, len - off, (off_t)(x->have + off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            x->fail = kz_err_set(&x->ferr, KZ_EIO, "disk error: writing %s: %s", x->part_path,
                                 w < 0 ? strerror(errno) : "no progress");
            return 0;
        }
        off += (size_t)w;
    }
    kz_sha256_update(&x->sha, p, len);
    x->have += len;
    return len;
}

// --- one attempt -------------------------------------------------------------

enum attempt_next { NEXT_DONE, NEXT_RETRY, NEXT_RESTART, NEXT_FAIL };

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static kz_status http_status_error(const struct xfer *x, long code, int *retryable, struct kz_err *err)
{
    const char *url = x->src->url;
    if (code == 404)
        return kz_err_set(err, KZ_ENOTFOUND, "not found: %s", url);
    if (code == 401 || code == 403) {
        if (!x->src->is_hf)
            return kz_err_set(err, KZ_EINVAL, "access denied (HTTP %ld): %s", code, url);
        const char *tok = getenv("HF_TOKEN");
        if (tok && *tok)
            return kz_err_set(err, KZ_EINVAL,
                              "access denied (HTTP %ld): %s: the HF_TOKEN that was sent has no access "
                              "(a gated model needs its terms accepted on its Hugging Face page)",
                              code, url);
        return kz_err_set(err, KZ_EINVAL,
                          "access denied (HTTP %ld): %s: the repository may be private or gated; "
                          "set HF_TOKEN to a Hugging Face access token",
                          code, url);
    }
    *retryable = code == 429 || code >= 500;
    return kz_err_set(err, KZ_EIO, "HTTP %ld from %s", code, url);
}

/* One GET. Returns what the loop should do next; on NEXT_FAIL and
 * NEXT_RETRY `err` says why. */
static enum attempt_next attempt(struct xfer *x, kz_status *rc, struct kz_err *err)
{
    char range[48];
    x->start = x->have;
    x->began = 0;
    x->code = 0;
    x->total = -1;
    x->content_length = x->cr_start = x->cr_total = -1;
    x->fail = KZ_OK;
    x->fail_remove = 0;
    x->t_attempt = now_s();
    x->t_drawn = 0;
    x->have_attempt = x->have;
    if (x->start) {
        snprintf(range, sizeof range, "%" PRIu64 "-", x->start);
        curl_easy_setopt(x->curl, CURLOPT_RANGE, range);
    } else {
        curl_easy_setopt(x->curl, CURLOPT_RANGE, (char *)NULL);
    }
    CURLcode cc = curl_easy_perform(x->curl);
    if (x->progress && x->began && (x->code == 200 || x->code == 206))
        draw_progress(x, 1);
    if (!x->fail && cc == CURLE_OK && !x->began)
        begin_body(x); /* an empty body: no write callback ran */
    if (x->fail) {
        *rc = x->fail;
        memcpy(err->msg, x->ferr.msg, sizeof err->msg);
        if (x->fail_remove) {
            unlink(x->part_path);
            kz_err_append(err, " (partial download removed)");
        }
        return NEXT_FAIL;
    }
    if (cc != CURLE_OK) {
        *rc = kz_err_set(err, KZ_EIO, "network error fetching %s: %s", x->src->url, curl_easy_strerror(cc));
        return NEXT_RETRY;
    }
    if (x->code == 416 && x->start > 0) {
        /* asked for bytes past the end: complete already, or a stale partial */
        if (x->cr_total >= 0 && (uint64_t)x->cr_total == x->have &&
            (x->linked_size < 0 || x->linked_size == x->cr_total)) {
            x->total = x->cr_total;
            return NEXT_DONE;
        }
        return NEXT_RESTART;
    }
    if (x->code != 200 && x->code != 206) {
        int retryable = 0;
        *rc = http_status_error(x, x->code, &retryable, err);
        return retryable ? NEXT_RETRY : NEXT_FAIL;
    }
    if (x->total >= 0 && x->have < (uint64_t)x->total) {
        *rc = kz_err_set(err, KZ_EIO, "network error fetching %s: the transfer ended at %" PRIu64 " of %" PRId64 " bytes",
                         x->src->url, x->have, x->total);
        return NEXT_RETRY;
    }
    return NEXT_DONE;
}

// --- files -------------------------------------------------------------------

static kz_status mkdir_p(char *path, struct kz_err *err)
{
    for (char *s = path + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char keep = *s;
        *s = '\0';
        int r = mkdir(path, 0755);
        int e = errno;
        *s = keep;
        if (r != 0 && e != EEXIST) {
            *s = '\0';
            kz_err_set(err, KZ_EIO, "disk error: creating %s: %s", path, strerror(e));
            *s = keep;
            return KZ_EIO;
        }
        if (!keep)
            return KZ_OK;
    }
}

/* Reads back the bytes an earlier run left, so the digest covers them. */
static kz_status rehash_partial(struct xfer *x, uint64_t size, struct kz_err *err)
{
    kz_status rc = KZ_OK;
    uint8_t *buf = kz_malloc(PULL_REHASH_CHUNK);
    if (!buf)
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    if (x->progress && size > 0) {
        char s[32];
        kz_pull_fmt_size(size, s, sizeof s);
        fprintf(stderr, "resuming %s: checking the %s already downloaded\n", x->label, s);
    }
    while (x->have < size) {
        size_t want = size - x->have < PULL_REHASH_CHUNK ? (size_t)(size - x->have) : PULL_REHASH_CHUNK;
        ssize_t r = pread(x->fd, buf, want, (off_t)x->have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = kz_err_set(err, KZ_EIO, "disk error: reading %s: %s", x->part_path, r < 0 ? strerror(errno) : "short read");
            goto out;
        }
        for (uint64_t i = x->have; i < sizeof x->magic && i < x->have + (uint64_t)r; i++)
            x->magic[i] = buf[i - x->have];
        kz_sha256_update(&x->sha, buf, (size_t)r);
        x->have += (uint64_t)r;
    }
out:
    kz_free(buf);
    return rc;
}

static kz_status fsync_dir(const char *file, struct kz_err *err)
{
    char dir[KZ_MODEL_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return KZ_OK;
    *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return kz_err_set(err, KZ_EIO, "disk error: opening %s: %s", dir, strerror(errno));
    int r = fsync(fd);
    int e = errno;
    close(fd);
    if (r != 0 && e != EINVAL) /* some filesystems cannot sync directories */
        return kz_err_set(err, KZ_EIO, "disk error: syncing %s: %s", dir, strerror(e));
    return KZ_OK;
}

/* Size, magic and digest of the finished partial; then fsync and rename. */
static kz_status finish(struct xfer *x, const struct kz_pull_opts *o, const char *final_path,
                        struct kz_pull_result *res, struct kz_err *err)
{
    kz_status rc = KZ_OK;
    uint8_t d[KZ_SHA256_SIZE];
    char got[KZ_SHA256_HEX_SIZE], want[KZ_SHA256_HEX_SIZE] = "";
    struct kz_sha256 c = x->sha;
    kz_sha256_final(&c, d);
    kz_sha256_hex(d, got);
    if (x->have < 4 || memcmp(x->magic, GGUF_MAGIC, 4) != 0) {
        rc = kz_err_set(err, KZ_EPROTO, "%s is not a GGUF file (%" PRIu64 " bytes, no GGUF magic)", x->src->url, x->have);
        goto bad;
    }
    if (o->sha256)
        kz_sha256_hex_normalize(o->sha256, strlen(o->sha256), want); /* validated by kz_pull */
    else if (x->src->is_hf && x->linked_sha[0])
        memcpy(want, x->linked_sha, sizeof want);
    else if (x->src->is_hf && x->etag_sha[0])
        memcpy(want, x->etag_sha, sizeof want);
    if (want[0] && strcmp(want, got) != 0) {
        rc = kz_err_set(err, KZ_EPROTO, "checksum mismatch for %s: expected sha256 %s, got %s", x->src->url, want, got);
        goto bad;
    }
    if (fsync(x->fd) != 0)
        return kz_err_set(err, KZ_EIO, "disk error: syncing %s: %s", x->part_path, strerror(errno));
    if (rename(x->part_path, final_path) != 0)
        return kz_err_set(err, KZ_EIO, "disk error: renaming %s: %s", x->part_path, strerror(errno));
    rc = fsync_dir(final_path, err);
    if (rc)
        return rc;
    memcpy(res->sha256, got, sizeof got);
    res->size = x->have;
    res->verified = want[0] != '\0';
    res->resumed_from = x->reused;
    return KZ_OK;
bad:
    unlink(x->part_path);
    kz_err_append(err, " (partial download removed)");
    return rc;
}

// --- the pull ----------------------------------------------------------------

kz_status kz_pull(const char *source, const struct kz_pull_opts *opts, struct kz_pull_result *res,
                  struct kz_err *err)
{
    static const struct kz_pull_opts defaults = {NULL, 0, 0, 0, 0};
    const struct kz_pull_opts *o = opts ? opts : &defaults;
    struct kz_model_source src;
    struct xfer x;
    struct curl_slist *hdrs = NULL;
    char dir[KZ_MODEL_PATH_MAX], part[KZ_MODEL_PATH_MAX + 16], errbuf[CURL_ERROR_SIZE];
    kz_status rc;
    struct stat st;

    memset(res, 0, sizeof *res);
    memset(&x, 0, sizeof x);
    x.fd = -1;
    rc = kz_model_source_parse(source, &src, err);
    if (rc)
        goto out;
    char hex[KZ_SHA256_HEX_SIZE];
    if (o->sha256 && !kz_sha256_hex_normalize(o->sha256, strlen(o->sha256), hex)) {
        rc = kz_err_set(err, KZ_EINVAL, "--sha256 '%s': expected 64 hex digits", o->sha256);
        goto out;
    }
    rc = kz_model_dir(dir, sizeof dir, err);
    if (rc)
        goto out;
    int n = snprintf(res->path, sizeof res->path, "%s/%s", dir, src.rel);
    if (n < 0 || (size_t)n >= sizeof res->path) {
        rc = kz_err_set(err, KZ_ELIMIT, "model path too long");
        goto out;
    }
    snprintf(part, sizeof part, "%s.partial", res->path);
    if (!o->force && stat(res->path, &st) == 0 && S_ISREG(st.st_mode)) {
        res->already_cached = 1;
        res->size = (uint64_t)st.st_size;
        goto out;
    }
    char parent[KZ_MODEL_PATH_MAX];
    memcpy(parent, res->path, sizeof parent);
    *strrchr(parent, '/') = '\0';
    rc = mkdir_p(parent, err);
    if (rc)
        goto out;

    x.src = &src;
    x.part_path = part;
    x.progress = o->progress;
    x.label = strrchr(res->path, '/') + 1;
    x.linked_size = -1;
    kz_sha256_init(&x.sha);
    x.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (x.fd < 0) {
        rc = kz_err_set(err, KZ_EIO, "disk error: opening %s: %s", part, strerror(errno));
        goto out;
    }
    if (flock(x.fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? kz_err_set(err, KZ_EINVAL, "another pull of %s is in progress", source)
                                  : kz_err_set(err, KZ_EIO, "disk error: locking %s: %s", part, strerror(errno));
        close(x.fd); /* not ours to remove: the other pull owns it */
        x.fd = -1;
        goto out;
    }
    if (o->force) {
        rc = truncate_partial(&x, err);
    } else if (fstat(x.fd, &st) != 0) {
        rc = kz_err_set(err, KZ_EIO, "disk error: %s: %s", part, strerror(errno));
    } else {
        rc = rehash_partial(&x, (uint64_t)st.st_size, err);
        x.reused = x.have;
    }
    if (rc)
        goto out;

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        rc = kz_err_set(err, KZ_EIO, "libcurl initialisation failed: %s", curl_easy_strerror(curl_init_rc));
        goto out;
    }
    x.curl = curl_easy_init();
    if (!x.curl) {
        rc = kz_err_set(err, KZ_ENOMEM, "libcurl: cannot create a transfer");
        goto out;
    }
    const char *tok = getenv("HF_TOKEN");
    if (src.is_hf && tok && *tok) {
        size_t tl = strlen(tok) + 32;
        char *h = kz_malloc(tl);
        if (!h) {
            rc = kz_err_set(err, KZ_ENOMEM, "out of memory");
            goto out;
        }
        snprintf(h, tl, "Authorization: Bearer %s", tok);
        /* libcurl drops custom Authorization headers when a redirect leaves
         * the host (CURLOPT_UNRESTRICTED_AUTH stays off), so the token never
         * reaches the CDN */
        hdrs = curl_slist_append(NULL, h);
        kz_free(h);
        if (!hdrs) {
            rc = kz_err_set(err, KZ_ENOMEM, "out of memory");
            goto out;
        }
    }
    int https = strncmp(src.url, "https:", 6) == 0 || strncmp(src.url, "HTTPS:", 6) == 0;
    errbuf[0] = '\0';
    curl_easy_setopt(x.curl, CURLOPT_URL, src.url);
    curl_easy_setopt(x.curl, CURLOPT_PROTOCOLS_STR, "http,https");
    /* never follow an https source down to plain http */
    curl_easy_setopt(x.curl, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
    curl_easy_setopt(x.curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(x.curl, CURLOPT_MAXREDIRS, PULL_MAX_REDIRS);
    curl_easy_setopt(x.curl, CURLOPT_USERAGENT, PULL_USER_AGENT);
    curl_easy_setopt(x.curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(x.curl, CURLOPT_CONNECTTIMEOUT, PULL_CONNECT_TIMEOUT_S);
    curl_easy_setopt(x.curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(x.curl, CURLOPT_LOW_SPEED_TIME, PULL_STALL_S);
    curl_easy_setopt(x.curl, CURLOPT_NOSIGNAL, 1L); /* thread-safe timeouts */
    curl_easy_setopt(x.curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(x.curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(x.curl, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(x.curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x.curl, CURLOPT_WRITEDATA, &x);
    if (x.progress) {
        curl_easy_setopt(x.curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(x.curl, CURLOPT_XFERINFODATA, &x);
        curl_easy_setopt(x.curl, CURLOPT_NOPROGRESS, 0L);
    }

    unsigned delay = o->retry_delay_ms;
    int restarted = 0;
    for (int tries = 0;;) {
        errbuf[0] = '\0';
        enum attempt_next next = attempt(&x, &rc, err);
        if (next == NEXT_DONE)
            break;
        if (next == NEXT_FAIL)
            goto out;
        if (next == NEXT_RESTART) {
            if (restarted) {
                rc = kz_err_set(err, KZ_EPROTO, "%s: the server refuses every byte range", src.url);
                goto out;
            }
            restarted = 1;
            rc = truncate_partial(&x, err);
            if (rc)
                goto out;
            continue;
        }
        if (errbuf[0])
            kz_err_append(err, " (%s)", errbuf);
        if (tries++ >= o->retries) {
            if (x.have > 0)
                kz_err_append(err, "; %" PRIu64 " bytes kept in %s, run the same pull again to resume", x.have, part);
            goto out;
        }
        if (x.progress)
            fprintf(stderr, "%s; retrying in %u ms\n", err->msg, delay);
        struct timespec ts = {(time_t)(delay / 1000u), (long)(delay % 1000u) * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        delay = delay > 60000u ? 120000u : delay * 2u;
    }
    rc = finish(&x, o, res->path, res, err);
out:
    if (x.curl)
        curl_easy_cleanup(x.curl);
    curl_slist_free_all(hdrs);
    if (x.fd >= 0) {
        if (rc && x.have == 0)
            unlink(part); /* nothing worth resuming: leave no empty file */
        close(x.fd);      /* releases the flock */
    }
    return rc;
}
