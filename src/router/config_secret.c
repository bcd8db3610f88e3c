/* SPDX-License-Identifier: MIT
 * Secret references in the configuration: `env:NAME` reads an environment
 * variable, `file:PATH` a file (relative to the config file's directory,
 * trailing whitespace stripped). A literal secret in the file is refused, so
 * config files can be shared, committed and printed without leaking keys.
 *
 * Invariant: no message written here contains a secret or a literal value;
 * messages name the key, the variable or the file, nothing else. Resolved
 * secrets are wiped before their memory is released.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "router/config_int.h"

#define MAX_ENV_NAME 128

void kz_cfg__secret_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    kz_free(s);
}

char *kz_cfg__path_near(const char *name, const char *rel)
{
    const char *slash = strrchr(name, '/');
    if (rel[0] == '/' || !slash)
        return kz_strdup(rel);
    size_t dir = slash == name ? 1 : (size_t)(slash - name); /* "/x.yaml" lives in "/" */
    size_t rl = strlen(rel);
    char *p = kz_malloc(dir + 1 + rl + 1);
    if (!p)
        return NULL;
    memcpy(p, name, dir);
    size_t at = dir;
    if (p[at - 1] != '/')
        p[at++] = '/';
    memcpy(p + at, rel, rl + 1);
    return p;
}

/* Secrets go into HTTP headers and signatures: a control character there
 * would at best fail the request and at worst split a header. */
static int clean_secret(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return 0;
    }
    return 1;
}

static int env_name_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        if (!alpha && !(n > 0 && c >= '0' && c <= '9'))
            return 0;
    }
    return n > 0 && n <= MAX_ENV_NAME;
}

static kz_status from_env(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, const char *var, char **out)
{
    /* The name is printed below only once it has the shape of a variable
     * name: `env:` followed by a pasted key is not echoed back. */
    if (!env_name_ok(var))
        return kz_cfg__fail(cx, n, KZ_EINVAL, "env: must be followed by a variable name (letters, digits, '_')");
    const char *v = getenv(var);
    if (!v)
        return kz_cfg__fail(cx, n, KZ_ENOTFOUND, "environment variable %s is not set", var);
    if (!v[0])
        return kz_cfg__fail(cx, n, KZ_EINVAL, "environment variable %s is empty", var);
    if (!clean_secret(v, strlen(v)))
        return kz_cfg__fail(cx, n, KZ_EINVAL, "environment variable %s contains control characters", var);
    char *s = kz_strdup(v);
    if (!s)
        return KZ_ENOMEM;
    kz_cfg__secret_free(*out);
    *out = s;
    return KZ_OK;
}

/* Reads at most KZ_CFG_MAX_SECRET bytes of a regular file into buf
 * (KZ_CFG_MAX_SECRET + 1 bytes). Returns the byte count, -1 with errno set on
 * an I/O error, -2 for a file that is not regular, -3 for a larger file. */
static long read_small(const char *path, char *buf)
{
    /* O_NONBLOCK: a FIFO must not hang the load; it is refused below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return -1;
    struct stat st;
    long r = 0;
    size_t got = 0;
    if (fstat(fd, &st) != 0) {
        r = -1;
    } else if (!S_ISREG(st.st_mode)) {
        r = -2;
    } else {
        for (;;) {
            ssize_t k = read(fd, buf + got, KZ_CFG_MAX_SECRET + 1 - got);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                r = -1;
                break;
            }
            got += (size_t)k;
            if (k == 0 || got > KZ_CFG_MAX_SECRET)
                break;
        }
        if (r == 0)
            r = got > KZ_CFG_MAX_SECRET ? -3 : (long)got;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

static kz_status from_file(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, const char *rel, char **out)
{
    if (!rel[0])
        return kz_cfg__fail(cx, n, KZ_EINVAL, "file: must be followed by a path");
    char shown[160];
    kz_cfg__show(shown, sizeof shown, rel);
    char *path = kz_cfg__path_near(cx->name, rel);
    char *buf = kz_malloc(KZ_CFG_MAX_SECRET + 1);
    kz_status rc = KZ_OK;
    long len = 0;
    if (!path || !buf) {
        rc = KZ_ENOMEM;
        goto out;
    }
    len = read_small(path, buf);
    if (len == -1)
        rc = kz_cfg__fail(cx, n, KZ_EIO, "cannot read secret file '%s': %s", shown, strerror(errno));
    else if (len == -2)
        rc = kz_cfg__fail(cx, n, KZ_EINVAL, "secret file '%s' is not a regular file", shown);
    else if (len == -3)
        rc = kz_cfg__fail(cx, n, KZ_ELIMIT, "secret file '%s' is larger than %u bytes", shown, KZ_CFG_MAX_SECRET);
    if (rc)
        goto out;
    size_t n_len = (size_t)len;
    while (n_len > 0 && (buf[n_len - 1] == '\n' || buf[n_len - 1] == '\r' || buf[n_len - 1] == ' ' ||
                         buf[n_len - 1] == '\t'))
        n_len--;
    if (n_len == 0) {
        rc = kz_cfg__fail(cx, n, KZ_EINVAL, "secret file '%s' is empty", shown);
    } else if (!clean_secret(buf, n_len)) {
        rc = kz_cfg__fail(cx, n, KZ_EINVAL, "secret file '%s' contains control characters", shown);
    } else {
        char *s = kz_strndup(buf, n_len);
        if (!s) {
            rc = KZ_ENOMEM;
        } else {
            kz_cfg__secret_free(*out);
            *out = s;
        }
    }
out:
    if (buf)
        explicit_bzero(buf, len > 0 ? (size_t)len : 0);
    kz_free(buf);
    kz_free(path);
    return rc;
}

kz_status kz_cfg__secret(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, char **out)
{
    if (n->kind != KZ_CFG_SCALAR)
        return kz_cfg__fail(cx, n, KZ_EINVAL, "must be a reference (env:NAME or file:PATH)");
    if (strncmp(n->val, "env:", 4) == 0)
        return from_env(cx, n, n->val + 4, out);
    if (strncmp(n->val, "file:", 5) == 0)
        return from_file(cx, n, n->val + 5, out);
    return kz_cfg__fail(cx, n, KZ_EINVAL, "secrets must be references (env:NAME or file:PATH), not literal values");
}
