/* SPDX-License-Identifier: MIT
 * kz_pull end to end against tests/store/fileserver.c on 127.0.0.1: full
 * download with the Hugging Face redirect and checksum headers, resume after
 * a dropped connection, a server that ignores Range, checksum and size
 * mismatches, 404 / 401, a file that is not GGUF, a dead port, a concurrent
 * pull, and the pull / models commands.
 *
 * Every case gets its own KYOZON_HOME (fresh_home) and its own server. To add
 * a case: write a static function that sets up a struct fs_server with
 * fs_init + fields, calls kz_pull, checks files with exists()/same_as_body(),
 * and register it in main().
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/args.h"
#include "core/alloc.h"
#include "core/sha256.h"
#include "store/modelcache.h"
#include "store/pull.h"
#include "t.h"

#include "fileserver.c"


#define BODY_LEN 300000
static unsigned char body[BODY_LEN];
static char body_sha[KZ_SHA256_HEX_SIZE];
static char home[1024];

static void make_body(void)
{
    uint32_t r = 12345;
    memcpy(body, "GGUF\3\0\0\0", 8);
    for (size_t i = 8; i < BODY_LEN; i++) {
        r = r * 1103515245u + 12345u;
        body[i] = (unsigned char)(r >> 16);
    }
    uint8_t d[KZ_SHA256_SIZE];
    kz_sha256(body, BODY_LEN, d);
    kz_sha256_hex(d, body_sha);
}

/* A new, empty KYOZON_HOME for one case. */
static void fresh_home(const char *name)
{
    snprintf(home, sizeof home, "%s/%s", t_tmpdir(), name);
    mkdir(home, 0755);
    setenv("KYOZON_HOME", home, 1);
}

static void append(char *buf, size_t size, const char *s)
{
    size_t n = strlen(buf);
    snprintf(buf + n, size - n, "%s", s);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static int same_as_body(const char *path)
{
    size_t n = 0;
    char *b = t_read_file(path, &n);
    int ok = b && n == BODY_LEN && memcmp(b, body, BODY_LEN) == 0;
    kz_free(b);
    return ok;
}

static void url_of(const struct fs_server *s, const char *path, char *out, size_t size)
{
    snprintf(out, size, "http://127.0.0.1:%u%s", (unsigned)s->port, path);
}

static void hf_endpoint(const struct fs_server *s)
{
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%u", (unsigned)s->port);
    setenv("KYOZON_HF_ENDPOINT", ep, 1);
}

// --- cases -------------------------------------------------------------------

/* hf: source through a 302 with X-Linked-Size/ETag, token sent, file lands
 * under $KYOZON_HOME/models/hf/OWNER/REPO/FILE; a second pull is a no-op. */
static void hf_full(void)
{
    fresh_home("hf_full");
    struct fs_server s;
    fs_init(&s, body, BODY_LEN, "/cdn/blob");
    s.redirect_from = "/owner/repo/resolve/main/model.gguf";
    s.linked_size = BODY_LEN;
    s.linked_etag = body_sha;
    if (fs_start(&s) != 0) {
        T_OK(0, "server started");
        return;
    }
    hf_endpoint(&s);
    setenv("HF_TOKEN", "hf_test_token", 1);
    struct kz_pull_result r;
    struct kz_err err = {{0}};
    kz_status rc = kz_pull("hf:owner/repo/model.gguf", NULL, &r, &err);
    T_OK(rc == KZ_OK, "pull: %s", err.msg);
    char want[1200];
    snprintf(want, sizeof want, "%s/models/hf/owner/repo/model.gguf", home);
    T_EQ_STR(r.path, want);
    T_OK(same_as_body(want), "file is byte-identical");
    T_OK(r.verified, "checksum was verified");
    T_EQ_STR(r.sha256, body_sha);
    T_EQ_INT(r.size, BODY_LEN);
    T_EQ_INT(r.already_cached, 0);
    append(want, sizeof want, ".partial");
    T_OK(!exists(want), "no partial left");
    T_EQ_INT(s.n_req, 2);
    T_EQ_STR(s.req_path[0], "/owner/repo/resolve/main/model.gguf");
    T_EQ_STR(s.req_auth[0], "Bearer hf_test_token");
    T_EQ_STR(s.req_range[0], "");

    rc = kz_pull("hf:owner/repo/model.gguf", NULL, &r, &err);
    T_OK(rc == KZ_OK && r.already_cached, "second pull: already cached (%s)", err.msg);
    T_EQ_INT(s.n_req, 2);
    struct kz_pull_opts o = {NULL, 1, 0, 0, 0};
    rc = kz_pull("hf:owner/repo/model.gguf", &o, &r, &err);
    T_OK(rc == KZ_OK && !r.already_cached && r.verified, "--force downloads again (%s)", err.msg);
    T_EQ_INT(s.n_req, 4);
    fs_stop(&s);
    unsetenv("HF_TOKEN");
}

/* The token goes to the Hugging Face endpoint, not to the host a redirect
 * leads to (here "localhost" instead of "127.0.0.1": the same loopback
 * server under another host name). */
static void token_not_forwarded(void)
{
    fresh_home("token");
    struct fs_server s;
    fs_init(&s, body, BODY_LEN, "/cdn/blob");
    s.redirect_from = "/o/r/resolve/main/m.gguf";
    s.linked_size = BODY_LEN;
    s.linked_etag = body_sha;
    if (fs_start(&s) != 0) {
        T_OK(0, "server started");
        return;
    }
    char to[128];
    snprintf(to, sizeof to, "http://localhost:%u/cdn/blob", (unsigned)s.port);
    s.redirect_to = to;
    hf_endpoint(&s);
    setenv("HF_TOKEN", "hf_secret", 1);
    struct kz_pull_result r;
    struct kz_err err = {{0}};
    kz_status rc = kz_pull("hf:o/r/m.gguf", NULL, &r, &err);
    T_OK(rc == KZ_OK && r.verified, "pull: %s", err.msg);
    T_EQ_INT(s.n_req, 2);
    T_EQ_STR(s.req_auth[0], "Bearer hf_secret");
    T_EQ_STR(s.req_auth[1], "");
    fs_stop(&s);
    unsetenv("HF_TOKEN");
}

/* The connection drops after 100000 bytes: the error keeps the partial and
 * says so; the next pull asks for the rest with Range and completes. */
static void resume(void)
{
    fresh_home("resume");
    struct fs_server s;
    fs_init(&s, body, BODY_LEN, "/files/m.gguf");
    s.drop_after = 100000;
    if (fs_start(&s) != 0) {
        T_OK(0, "server started");
        return;
    }
    char url[128], final_path[1200], part[1300];
    url_of(&s, "/files/m.gguf", url, sizeof url);
    snprintf(final_path, sizeof final_path, "%s/models/url/127.0.0.1_%u/m.gguf", home, (unsigned)s.port);
    snprintf(part, sizeof part, "%s.partial", final_path);
    struct kz_pull_opts o = {body_sha, 0, 0, 0, 0};
    struct kz_pull_result r;
    struct kz_err err = {{0}};
    kz_status rc = kz_pull(url, &o, &r, &err);
    T_EQ_INT(rc, KZ_EIO);
    T_OK(strstr(err.msg, "network error") && strstr(err.msg, "resume"), "message: %s", err.msg);
    T_OK(!exists(final_path), "no final file after the drop");
    T_EQ_INT(file_size(part), 100000);

    rc = kz_pull(url, &o, &r, &err);
    T_OK(rc == KZ_OK, "resumed pull: %s", err.msg);
    T_EQ_INT(s.n_req, 2);
    T_EQ_STR(s.req_range[1], "bytes=100000-");
    T_OK(same_as_body(final_path), "resumed file is byte-identical");
    T_EQ_INT(r.resumed_from, 100000);
    T_OK(r.verified, "verified against --sha256");
    T_OK(!exists(part), "partial renamed away");
    fs_stop(&s);
}

/* With retries the same pull resumes by itself. */
static void resume_retry(void)
{
    fresh_home("resume_retry");
    struct fs_server s;
    fs_init(&s, body, BODY_LEN, "/m.gguf");
    s.drop_after = 4096;
    if (fs_start(&s) != 0) {
        T_OK(0, "server started");
        return;
    }
    char url[128];
    url_of(&s, "/m.gguf", url, sizeof url);
    /* progress on: exercises the bar and the retry notice (to stderr) */
    struct kz_pull_opts o = {NULL, 0, 1, 2, 1};
    struct kz_pull_result r;
    struct kz_err err = {{0}};
    kz_status rc = kz_pull(url, &o, &r, &err);
    T_OK(rc == KZ_OK, "pull with retries: %s", err.msg);
    T_EQ_INT(s.n_req, 2);
    T_EQ_STR(s.req_range[1], "bytes=4096-");
    T_OK(same_as_body(r.path), "byte-identical");
    T_OK(!r.verified, "no checksum to verify for a plain URL");
    T_EQ_STR(r.sha256, body_sha);
    fs_stop(&s);
}

/* A partial with wrong bytes after the magic, and a server that answers a
 * Range request with 200: the pull starts over from byte 0. */
static void range_ignored(void)
{
    fresh_home("range_ignored");
    struct fs_server s;
    fs_init(&s, body, BODY_LEN, "/m.gguf");
    s.ignore_range = 1;
    if (fs_start(&s) != 0) {
        T_OK(0, "server started");
        return;
    }
    char url[128], dir[1200], part[1300];
    url_of(&s, "/m.gguf", url, sizeof url);
    snprintf(dir, sizeof dir, "%s/models/url/127.0.0.1_%u", home, (unsigned)s.port);
    snprintf(part, sizeof part, "%s/m.gguf.partial", dir);
    char mk[1400];
    snprintf(mk, sizeof mk, "%s/models", home);
    mkdir(mk, 0755);
    snprintf(mk, sizeof mk, "%s/models/url", home);
    mkdir(mk, 0755);
    mkdir(dir, 0755);
    FILE *f = fopen(part, "wb");
    fwrite("GGUFjunkjunkjunk", 1, 16, f);
    fclose(f);
    struct kz_pull_opts o = {body_sha, 0, 0, 0, 0};
    struct kz_pull_result r;
    struct kz_err err = {{0}};
    kz_status rc = kz_pull(url, &o, &r, &err);
    T_OK(rc == KZ_OK, "pull: %s", err.msg);
    T_EQ_STR(s.req_range[0], "bytes=16-");
    T_OK(same_as_body(r.path), "restarted from 0, byte-identical");
    T_EQ_INT(r.resumed_from, 0);
    fs_stop(&s);
}

/* The partial already holds the whole file (a crash before the rename): the
 * server's 416 says so and the pull only verifies. */
static void complete_partial(void)
{
    fresh_home("complete_partial");
    struct fs_server s;
    fs_init(&s, body, BODY_LEN, "/m.gguf");
    if (fs_start(&s) != 0) {
        T_OK(0, "server started");
        return;
    }
    char url[128], p[1400];
    url_of(&s, "/m.gguf", url, sizeof url);
    snprintf(p, sizeof p, "%s/models", home);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/models/url", home);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/models/url/127.0.0.1_%u", home, (unsigned)s.port);
    mkdir(p, 0755);
    append(p, sizeof p, "/m.gguf.partial");
    FILE *f = fopen(p, "wb");
    fwrite(body, 1, BODY_LEN, f);
    fclose(f);
    struct kz_pull_opts o = {body_sha, 0, 0, 0, 0};
    struct kz_pull_result r;
    struct kz_err err = {{0}};
    kz_status rc = kz_pull(url, &o, &r, &err);
    T_OK(rc == KZ_OK, "pull: %s", err.msg);
    T_EQ_INT(s.n_req, 1);
    T_OK(same_as_body(r.path), "byte-identical");
    T_EQ_INT(r.resumed_from, BODY_LEN);
    fs_stop(&s);
}

/* Published checksum differs: error names both digests, nothing remains. */
static void bad_checksum(void)
{
    fresh_home("bad_checksum");
    static const char wrong[] = "0000000000000000000000000000000000000000000000000000000000000001";
    struct fs_server s;
    fs_init(&s, body, BODY_LEN, "/cdn/blob");
    s.redirect_from = "/o/r/resolve/main/m.gguf";
    s.linked_size = BODY_LEN;
    s.linked_etag = wrong;
    if (fs_start(&s) != 0) {
        T_OK(0, "server started");
        return;
    }
    hf_endpoint(&s);
    struct kz_pull_result r;
    struct kz_err err = {{0}};
    kz_status rc = kz_pull("hf:o/r/m.gguf", NULL, &r, &err);
    T_EQ_INT(rc, KZ_EPROTO);
    T_OK(strstr(err.msg, "checksum mismatch") && strstr(err.msg, wrong) && strstr(err.msg, body_sha),
         "expected vs got: %s", err.msg);
    char p[1300];
    snprintf(p, sizeof p, "%s/models/hf/o/r/m.gguf", home);
    T_OK(!exists(p), "no final file");
    append(p, sizeof p, ".partial");
    T_OK(!exists(p), "partial removed");

    /* a caller's --sha256 wins over the published one */
    struct kz_pull_opts o = {body_sha, 0, 0, 0, 0};
    rc = kz_pull("hf:o/r/m.gguf", &o, &r, &err);
    T_OK(rc == KZ_OK && r.verified, "--sha256 overrides: %s", err.msg);

    /* and a wrong --sha256 on a plain URL fails the same way */
    char url[128];
    url_of(&s, "/cdn/blob", url, sizeof url);
    struct kz_pull_opts o2 = {wrong, 0, 0, 0, 0};
    rc = kz_pull(url, &o2, &r, &err);
    T_EQ_INT(rc, KZ_EPROTO);
    T_OK(strstr(err.msg, "expected sha256 0000") != NULL, "%s", err.msg);
    struct kz_pull_opts o3 = {"abc", 0, 0, 0, 0};
    rc = kz_pull(url, &o3, &r, &err);
    T_EQ_INT(rc, KZ_EINVAL);
    fs_stop(&s);
}

/* X-Linked-Size disagrees with what the download delivers. */
static void bad_size(void)
{
    fresh_home("bad_size");
    struct fs_server s;
    fs_init(&s, body, BODY_LEN, "/cdn/blob");
    s.redirect_from = "/o/r/resolve/main/m.gguf";
    s.linked_size = BODY_LEN + 1;
    if (fs_start(&s) != 0) {
        T_OK(0, "server started");
        return;
    }
    hf_endpoint(&s);
    struct kz_pull_result r;
    struct kz_err err = {{0}};
    kz_status rc = kz_pull("hf:o/r/m.gguf", NULL, &r, &err);
    T_EQ_INT(rc, KZ_EPROTO);
    T_OK(strstr(err.msg, "size mismatch") != NULL, "%s", err.msg);
    char p[1300];
    snprintf(p, sizeof p, "%s/models/hf/o/r/m.gguf", home);
    T_OK(!exists(p), "no final file");
    fs_stop(&s);
}

static void http_errors(void)
{
    fresh_home("http_errors");
    struct fs_server s;
    fs_init(&s, body, BODY_LEN, "/m.gguf");
    if (fs_start(&s) != 0) {
        T_OK(0, "server started");
        return;
    }
    char url[128];
    url_of(&s, "/missing.gguf", url, sizeof url);
    struct kz_pull_result r;
    struct kz_err err = {{0}};
    kz_status rc = kz_pull(url, NULL, &r, &err);
    T_EQ_INT(rc, KZ_ENOTFOUND);
    char want[200];
    snprintf(want, sizeof want, "not found: %s", url);
    T_EQ_STR(err.msg, want);
    char p[1300];
    snprintf(p, sizeof p, "%s/models/url/127.0.0.1_%u/missing.gguf.partial", home, (unsigned)s.port);
    T_OK(!exists(p), "no empty partial left behind");

    hf_endpoint(&s);
    s.status = 401;
    rc = kz_pull("hf:o/gated/m.gguf", NULL, &r, &err);
    T_EQ_INT(rc, KZ_EINVAL);
    T_OK(strstr(err.msg, "HTTP 401") && strstr(err.msg, "HF_TOKEN"), "suggests HF_TOKEN: %s", err.msg);
    s.status = 503;
    struct kz_pull_opts o = {NULL, 0, 0, 1, 1};
    rc = kz_pull("hf:o/r/m.gguf", &o, &r, &err);
    T_EQ_INT(rc, KZ_EIO);
    T_OK(strstr(err.msg, "HTTP 503") != NULL, "%s", err.msg);
    T_EQ_INT(s.n_req, 4); /* 404, 401, 503 and its one retry */
    fs_stop(&s);
}

static void not_gguf(void)
{
    fresh_home("not_gguf");
    static const unsigned char html[] = "<!doctype html><html><body>Please log in</body></html>";
    struct fs_server s;
    fs_init(&s, html, sizeof html - 1, "/m.gguf");
    if (fs_start(&s) != 0) {
        T_OK(0, "server started");
        return;
    }
    char url[128];
    url_of(&s, "/m.gguf", url, sizeof url);
    struct kz_pull_result r;
    struct kz_err err = {{0}};
    kz_status rc = kz_pull(url, NULL, &r, &err);
    T_EQ_INT(rc, KZ_EPROTO);
    T_OK(strstr(err.msg, "not a GGUF file") != NULL, "%s", err.msg);
    char p[1300];
    snprintf(p, sizeof p, "%s/models/url/127.0.0.1_%u/m.gguf", home, (unsigned)s.port);
    T_OK(!exists(p), "no final file");
    append(p, sizeof p, ".partial");
    T_OK(!exists(p), "no partial");
    fs_stop(&s);
}

/* A port nobody listens on (bound, then closed). */
static void network_error(void)
{
    fresh_home("network_error");
    struct fs_server s;
    fs_init(&s, body, BODY_LEN, "/m.gguf");
    if (fs_start(&s) != 0) {
        T_OK(0, "server started");
        return;
    }
    fs_stop(&s);
    char url[128];
    url_of(&s, "/m.gguf", url, sizeof url);
    struct kz_pull_result r;
    struct kz_err err = {{0}};
    kz_status rc = kz_pull(url, NULL, &r, &err);
    T_EQ_INT(rc, KZ_EIO);
    T_OK(strstr(err.msg, "network error") != NULL, "%s", err.msg);
}

/* Another pull holds the partial's lock. */
static void concurrent(void)
{
    fresh_home("concurrent");
    char p[1300];
    snprintf(p, sizeof p, "%s/models", home);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/models/url", home);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/models/url/127.0.0.1_9", home);
    mkdir(p, 0755);
    append(p, sizeof p, "/m.gguf.partial");
    int fd = open(p, O_RDWR | O_CREAT, 0644);
    T_OK(fd >= 0 && flock(fd, LOCK_EX) == 0, "test holds the lock");
    struct kz_pull_result r;
    struct kz_err err = {{0}};
    kz_status rc = kz_pull("http://127.0.0.1:9/m.gguf", NULL, &r, &err);
    T_EQ_INT(rc, KZ_EINVAL);
    T_OK(strstr(err.msg, "in progress") != NULL, "%s", err.msg);
    T_OK(exists(p), "the other pull's partial is left alone");
    close(fd);
}

/* Runs a command function on `args` (split at spaces) with stdout sent to a
 * file; returns its status and the captured text (kz_free). */
static int capture(int (*cmd)(int, char **), const char *args, char **out)
{
    char buf[1024], *argv[16], path[1200];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", args);
    for (char *tok = buf; tok && argc < 15;) {
        argv[argc++] = tok;
        tok = strchr(tok, ' ');
        if (tok)
            *tok++ = '\0';
    }
    argv[argc] = NULL;
    snprintf(path, sizeof path, "%s/cmd_stdout", t_tmpdir());
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    int rc = cmd(argc, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    *out = t_read_file(path, NULL);
    return rc;
}

/* kyozon pull and kyozon models through their command functions. */
static void commands(void)
{
    fresh_home("commands");
    struct fs_server s;
    fs_init(&s, body, BODY_LEN, "/cdn/blob");
    s.redirect_from = "/acme/tiny/resolve/main/tiny-q8.gguf";
    s.linked_size = BODY_LEN;
    s.linked_etag = body_sha;
    if (fs_start(&s) != 0) {
        T_OK(0, "server started");
        return;
    }
    hf_endpoint(&s);
    char *out = NULL;
    int rc = capture(kz_cmd_pull, "pull hf:acme/tiny/tiny-q8.gguf", &out);
    T_EQ_INT(rc, 0);
    char want[1300];
    snprintf(want, sizeof want, "%s/models/hf/acme/tiny/tiny-q8.gguf\n", home);
    T_EQ_STR(out, want);
    kz_free(out);

    rc = capture(kz_cmd_pull, "pull hf:acme/tiny/missing.gguf --retries 0", &out);
    T_EQ_INT(rc, 1);
    kz_free(out);
    rc = capture(kz_cmd_pull, "pull --bogus", &out);
    T_EQ_INT(rc, 2);
    kz_free(out);

    rc = capture(kz_cmd_models, "models", &out);
    T_EQ_INT(rc, 0);
    T_OK(out && strstr(out, "NAME") && strstr(out, "hf:acme/tiny/tiny-q8.gguf") && strstr(out, "293.0 KiB"),
         "models table: %s", out ? out : "(null)");
    kz_free(out);

    rc = capture(kz_cmd_models, "models --json", &out);
    T_EQ_INT(rc, 0);
    json_error_t je;
    json_t *j = out ? json_loads(out, 0, &je) : NULL;
    json_t *m = json_array_get(json_object_get(j, "models"), 0);
    T_OK(j && json_array_size(json_object_get(j, "models")) == 1, "one model in the json");
    T_EQ_STR(json_string_value(json_object_get(m, "name")), "hf:acme/tiny/tiny-q8.gguf");
    T_EQ_INT(json_integer_value(json_object_get(m, "size")), BODY_LEN);
    const char *mod = json_string_value(json_object_get(m, "modified"));
    T_OK(mod && strlen(mod) == 20 && mod[19] == 'Z', "modified is ISO 8601 UTC: %s", mod ? mod : "(null)");
    json_decref(j);
    kz_free(out);

    char path[1300];
    struct kz_err err = {{0}};
    T_OK(kz_model_resolve("tiny-q8", path, sizeof path, &err) == KZ_OK, "resolve after pull: %s", err.msg);
    want[strlen(want) - 1] = '\0';
    T_EQ_STR(path, want);
    fs_stop(&s);
}

/* Sizes for people at each unit's edges. */
static void sizes(void)
{
    static const struct {
        uint64_t n;
        const char *want;
    } cases[] = {{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
                 {(1u << 20) - 1, "1024.0 KiB"}, {5u << 20, "5.0 MiB"}, {(uint64_t)3 << 30, "3.0 GiB"},
                 {(uint64_t)1 << 40, "1.0 TiB"}, {(uint64_t)1 << 50, "1024.0 TiB"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[32];
        kz_pull_fmt_size(cases[i].n, got, sizeof got);
        T_EQ_STR(got, cases[i].want);
    }
}

int main(void)
{
    /* loopback only, and never through a proxy from the environment */
    static const char *proxies[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
        unsetenv(proxies[i]);
    unsetenv("HF_TOKEN");
    unsetenv("HF_ENDPOINT");
    make_body();
    t_subtest("sizes", sizes);
    t_subtest("hf: full download, verified", hf_full);
    t_subtest("token stays with the endpoint", token_not_forwarded);
    t_subtest("resume after a dropped connection", resume);
    t_subtest("resume by retrying", resume_retry);
    t_subtest("server ignores Range", range_ignored);
    t_subtest("partial already complete (416)", complete_partial);
    t_subtest("wrong checksum", bad_checksum);
    t_subtest("wrong size", bad_size);
    t_subtest("404, 401, 503", http_errors);
    t_subtest("not a GGUF file", not_gguf);
    t_subtest("network error", network_error);
    t_subtest("concurrent pull", concurrent);
    t_subtest("pull and models commands", commands);
    return t_done();
}
