/* SPDX-License-Identifier: MIT
 * Mode names: parsing what --mode, POST /_mock/mode and the x-mock-mode
 * header say, and the list GET /_mock/modes returns so that tests can walk
 * every variant without hard-coding the names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "mock.h"

static const struct {
    const char *name;
    enum kz_mock_mode_kind kind;
} plain[] = {
    {"ok", KZ_MOCK_OK},
    {"hang_headers", KZ_MOCK_HANG_HEADERS},
    {"hang_mid", KZ_MOCK_HANG_MID},
    {"reset_after", KZ_MOCK_RESET_AFTER},
    {"close_mid", KZ_MOCK_CLOSE_MID},
    {"kill_self", KZ_MOCK_KILL_SELF},
    {"slow", KZ_MOCK_SLOW},
};
#define N_PLAIN (sizeof plain / sizeof plain[0])

kz_status kz_mock_mode_parse(const char *s, struct kz_mock_mode *out, struct kz_err *err)
{
    struct kz_mock_mode m = {KZ_MOCK_OK, 0, 0};
    for (size_t i = 0; i < N_PLAIN; i++)
        if (strcmp(s, plain[i].name) == 0) {
            m.kind = plain[i].kind;
            *out = m;
            return KZ_OK;
        }
    if (strncmp(s, "status:", 7) == 0) {
        char *end;
        long code = strtol(s + 7, &end, 10);
        if (end == s + 7 || *end || code < 100 || code > 999)
            return kz_err_set(err, KZ_EINVAL, "mode '%s': the status must be a number from 100 to 999", s);
        m.kind = KZ_MOCK_STATUS;
        m.status = (int)code;
        *out = m;
        return KZ_OK;
    }
    if (strncmp(s, "garbage:", 8) == 0) {
        for (size_t i = 0; i < kz_mock_garbage_count(); i++)
            if (strcmp(s + 8, kz_mock_garbage_name(i)) == 0) {
                m.kind = KZ_MOCK_GARBAGE;
                m.garbage = i;
                *out = m;
                return KZ_OK;
            }
        return kz_err_set(err, KZ_EINVAL, "mode '%s': no such garbage variant (GET /_mock/modes lists them)", s);
    }
    return kz_err_set(err, KZ_EINVAL,
                      "unknown mode '%s' (expected ok, status:CODE, hang_headers, hang_mid, reset_after, "
                      "close_mid, kill_self, slow or garbage:NAME)",
                      s);
}

const char *kz_mock_mode_name(const struct kz_mock_mode *m, char *buf, size_t size)
{
    if (m->kind == KZ_MOCK_STATUS)
        snprintf(buf, size, "status:%d", m->status);
    else if (m->kind == KZ_MOCK_GARBAGE)
        snprintf(buf, size, "garbage:%s", kz_mock_garbage_name(m->garbage));
    else
        for (size_t i = 0; i < N_PLAIN; i++)
            if (plain[i].kind == m->kind)
                snprintf(buf, size, "%s", plain[i].name);
    return buf;
}

char *kz_mock_mode_list(void)
{
    size_t cap = 256;
    for (size_t i = 0; i < kz_mock_garbage_count(); i++)
        cap += strlen(kz_mock_garbage_name(i)) + 10;
    char *out = kz_malloc(cap);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < N_PLAIN; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s\n", plain[i].name);
    n += (size_t)snprintf(out + n, cap - n, "status:CODE\n");
    for (size_t i = 0; i < kz_mock_garbage_count(); i++)
        n += (size_t)snprintf(out + n, cap - n, "garbage:%s\n", kz_mock_garbage_name(i));
    return out;
}
