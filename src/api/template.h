/* SPDX-License-Identifier: MIT
 * Chat-template renderer: the subset of Jinja2 that models' own
 * `tokenizer.chat_template` strings use, evaluated the way Hugging Face
 * transformers evaluates them (sandboxed environment with trim_blocks and
 * lstrip_blocks on, loop controls, globals raise_exception() and
 * strftime_now(), tojson = json.dumps(x, ensure_ascii=False, ...)).
 *
 * Invariants:
 *   - A compiled template is never written after kz_template_compile
 *     returns, so any number of threads may render it at once.
 *   - Every render is bounded: output bytes, working memory, executed steps
 *     (statements, loop iterations, calls) and nesting depth each have a
 *     ceiling; crossing one is KZ_ELIMIT with a message, never a crash or an
 *     unbounded allocation, whatever the template or the context holds.
 *   - Errors name the template line and the construct:
 *       "template line 12: unknown filter 'foo'"
 *       "template line 3: raise_exception: System role not supported"
 *
 * Status codes: KZ_EPROTO for a template that does not parse, KZ_EINVAL for
 * a render that fails on this context (raise_exception, a type error, use
 * of an undefined value), KZ_EUNSUPPORTED for valid Jinja2 this renderer
 * does not implement, KZ_ELIMIT for a ceiling, KZ_ENOMEM for allocation
 * failure. docs/internals/template.md lists what is supported.
 */
#ifndef KZ_TEMPLATE_H
#define KZ_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

struct json_t; /* jansson's json_t */
struct tm;
struct kz_template;

/* Largest template source kz_template_compile accepts. */
#define KZ_TEMPLATE_MAX_SOURCE ((size_t)4 << 20)
/* Defaults used when the matching kz_template_opts field is 0. "input" is
 * the template length plus the bytes of every string in the context. */
#define KZ_TEMPLATE_DEFAULT_OUTPUT_BASE ((size_t)1 << 20)  /* + 8 x input */
#define KZ_TEMPLATE_DEFAULT_MEMORY_BASE ((size_t)64 << 20) /* + 16 x input */
#define KZ_TEMPLATE_DEFAULT_STEPS 10000000u
/* Nesting depth of evaluation (expressions, blocks and macro calls). At
 * this depth a release build uses under 256 KiB of the calling thread's
 * stack (sanitizer builds several times more). */
#define KZ_TEMPLATE_MAX_DEPTH 250

/* Fills *now with the wall-clock time strftime_now() formats (already in
 * the time zone the caller wants). Returns 0, or non-zero to make
 * strftime_now() fail the render. Called at most once per strftime_now()
 * call, from the rendering thread. */
typedef int (*kz_template_clock_fn)(void *ud, struct tm *now /* out */);

/* Render options; a zeroed struct (or a NULL pointer) means all defaults. */
struct kz_template_opts {
    kz_template_clock_fn clock; /* NULL: the local time now */
    void *clock_ud;
    size_t max_output;  /* bytes of rendered text; 0: default above */
    size_t max_memory;  /* bytes of working memory per render; 0: default */
    uint64_t max_steps; /* statements + loop iterations + calls; 0: default */
};

/* Parses `src` (src_len bytes, need not be NUL-terminated; the caller's
 * buffer is not kept) into *out. Returns KZ_OK, or KZ_EPROTO with err
 * naming the line and problem (*out NULL), KZ_ELIMIT for a source over
 * KZ_TEMPLATE_MAX_SOURCE or nested too deeply, KZ_EUNSUPPORTED for a tag
 * this renderer does not implement (include, extends, call, ...), KZ_ENOMEM.
 * Free the result with kz_template_free. */
kz_status kz_template_compile(const char *src, size_t src_len, struct kz_template **out /* out */,
                              struct kz_err *err);

/* Frees a compiled template; NULL is a no-op. No render may be running. */
void kz_template_free(struct kz_template *t);

/* Renders a compiled template. `context` is a JSON object whose members
 * become the template's variables (messages, add_generation_prompt,
 * bos_token, eos_token, tools, ...); it is only read, and only during this
 * call; NULL means no variables. Hugging Face passes tools = None, so
 * callers that mimic it put "tools": null in the context.
 * On KZ_OK, *out is a new NUL-terminated buffer (kz_free) holding *out_len
 * bytes of rendered text (which may itself contain NUL bytes). On failure
 * *out is NULL, *out_len 0 and err says why (see the status list above).
 * opts may be NULL. Thread-safe for concurrent renders of one template. */
kz_status kz_template_render_compiled(const struct kz_template *t, const struct json_t *context,
                                      const struct kz_template_opts *opts, char **out /* out */,
                                      size_t *out_len /* out */, struct kz_err *err);

/* kz_template_compile + kz_template_render_compiled + kz_template_free in
 * one call, for a template rendered once. Same contract as those two. */
kz_status kz_template_render(const char *src, size_t src_len, const struct json_t *context,
                             const struct kz_template_opts *opts, char **out /* out */,
                             size_t *out_len /* out */, struct kz_err *err);

#endif
