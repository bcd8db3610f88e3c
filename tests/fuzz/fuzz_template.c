/* SPDX-License-Identifier: MIT
 * Fuzz target: the chat-template compiler and renderer.
 *
 * Input: template bytes, optionally followed by a NUL byte and a JSON
 * object used as the context (when absent or unparsable, a fixed
 * conversation with tools is used, so every template sees realistic data).
 *
 * Oracles, beyond the sanitizers:
 *   - every status is one the header documents, and a failure leaves
 *     *out NULL, *out_len 0 and a message starting with "template";
 *   - a success returns a NUL-terminated buffer within max_output;
 *   - rendering the same compiled template twice gives identical bytes
 *     (no state leaks between renders);
 *   - tight step, memory and output caps keep each input fast, and no
 *     single allocation may exceed 64 MiB (kz_alloc_set_limit aborts).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/template.h"
#include "core/alloc.h"

#define FUZZ_ALLOC_LIMIT ((size_t)64 << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char default_ctx[] =
    "{\"messages\": ["
    "{\"role\": \"system\", \"content\": \"Be brief.\"},"
    "{\"role\": \"user\", \"content\": \"Hi \\u65e5\\u672c \\ud83d\\ude00 <b>&\\n\\t'q'\"},"
    "{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"call12345\", \"type\": \"function\","
    " \"function\": {\"name\": \"get\", \"arguments\": {\"city\": \"Paris\", \"n\": 2.5}}}]},"
    "{\"role\": \"tool\", \"content\": \"{\\\"t\\\": 21}\", \"tool_call_id\": \"call12345\"},"
    "{\"role\": \"assistant\", \"content\": \"<think>x</think>\\n\\nDone.\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get\", \"parameters\": {\"type\": \"object\","
    " \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}],"
    " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

static json_t *fallback;

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_template: invariant broken: %s\n", what);
    abort();
}

static int fixed_clock(void *ud, struct tm *now)
{
    (void)ud;
    memset(now, 0, sizeof *now);
    now->tm_year = 126;
    now->tm_mon = 10;
    now->tm_mday = 22;
    now->tm_hour = 12;
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    kz_alloc_set_limit(FUZZ_ALLOC_LIMIT);
    return 0;
}

static void check_status(kz_status rc, const char *out, size_t len, const struct kz_err *err)
{
    switch (rc) {
    case KZ_OK:
        if (!out || out[len] != '\0')
            fail("success without a NUL-terminated buffer");
        return;
    case KZ_EPROTO:
    case KZ_EINVAL:
    case KZ_EUNSUPPORTED:
    case KZ_ELIMIT:
    case KZ_ENOMEM:
        break;
    default:
        fail("undocumented status");
    }
    if (out || len)
        fail("output left on failure");
    if (strncmp(err->msg, "template", 8) != 0)
        fail("error message does not start with \"template\"");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fallback)
        fallback = json_loads(default_ctx, 0, NULL);
    if (!fallback)
        fail("the default context does not parse");
    const char *src = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t tl = nul ? (size_t)(nul - data) : size;
    json_t *ctx = NULL;
    if (nul)
        ctx = json_loadb((const char *)nul + 1, size - tl - 1, 0, NULL);
    if (!json_is_object(ctx)) {
        json_decref(ctx);
        ctx = json_incref(fallback);
    }

    struct kz_template_opts o = {.clock = fixed_clock, .max_output = 1 << 20, .max_memory = 16 << 20,
                                 .max_steps = 200000};
    struct kz_err err = {{0}};
    struct kz_template *t = NULL;
    kz_status rc = kz_template_compile(src, tl, &t, &err);
    if (rc) {
        check_status(rc, NULL, 0, &err);
        if (t)
            fail("template handle left on failure");
        json_decref(ctx);
        return 0;
    }
    char *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    kz_status ra = kz_template_render_compiled(t, ctx, &o, &a, &al, &err);
    check_status(ra, a, al, &err);
    if (ra == KZ_OK && al > o.max_output)
        fail("output over max_output");
    kz_status rb = kz_template_render_compiled(t, ctx, &o, &b, &bl, &err);
    check_status(rb, b, bl, &err);
    if (ra != rb || al != bl || (al && memcmp(a, b, al) != 0))
        fail("two renders of one template differ");
    kz_free(a);
    kz_free(b);
    kz_template_free(t);
    json_decref(ctx);
    return 0;
}
