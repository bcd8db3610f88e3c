/* SPDX-License-Identifier: MIT
 * The growable buffer: appends across growth, the limit, formatting past
 * the capacity, allocation failure.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "t.h"

static void appends(void)
{
    struct kz_buf b = {0};
    int bad = 0;
    for (int i = 0; i < 1000; i++)
        bad += kz_buf_append(&b, "abc", 3, 0) != KZ_OK;
    T_EQ_INT(bad, 0);
    T_EQ_INT((long)b.len, 3000);
    T_OK(b.p[2999] == 'c' && b.p[3000] == '\0', "bytes kept and terminated");
    T_EQ_INT(kz_buf_append(&b, "x", 1, 3000), KZ_ELIMIT);
    T_EQ_INT((long)b.len, 3000);
    T_EQ_INT(kz_buf_append(&b, NULL, 0, 3000), KZ_OK);
    kz_buf_free(&b);
    T_OK(b.p == NULL && b.len == 0, "freed and reset");
}

static void printf_growth(void)
{
    struct kz_buf b = {0};
    kz_buf_printf(&b, "%s", "");
    T_OK(b.p && b.len == 0 && b.p[0] == '\0', "empty text still allocates a terminated buffer");
    char big[1000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    kz_buf_printf(&b, "%d:%s", 42, big);
    kz_buf_printf(&b, "|%s", "end");
    T_EQ_INT((long)b.len, 3 + 999 + 4);
    T_OK(strncmp(b.p, "42:yyy", 6) == 0 && strcmp(b.p + b.len - 4, "|end") == 0, "text");
    kz_buf_free(&b);
    kz_alloc_fail_after(1);
    kz_buf_printf(&b, "%s", big);
    kz_alloc_fail_after(0);
    T_OK(b.oom, "allocation failure is remembered");
    kz_buf_printf(&b, "x");
    T_OK(b.oom && b.len == 0, "and later calls do nothing");
    kz_buf_free(&b);
}

int main(void)
{
    t_subtest("appends", appends);
    t_subtest("printf_growth", printf_growth);
    return t_done();
}
