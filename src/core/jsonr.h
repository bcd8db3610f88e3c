/* SPDX-License-Identifier: MIT
 * Reading a JSON object into a jansson tree without jansson's parser, for
 * the request bodies every call decodes: json_loadb reads a byte at a time
 * through a stream callback and cost more than the rest of a proxied
 * request; this reads runs of plain bytes at once (core/bytescan.h) and
 * builds the same tree with jansson's own constructors.
 *
 * It only claims text it fully understands, and for that text gives the
 * tree json_loadb(text, JSON_REJECT_DUPLICATES) gives: the same values, the
 * same types (an integer stays an integer), keys in the same order. For
 * anything else (not an object, a syntax error, a duplicate key, \u0000, a
 * lone surrogate, an integer of more than 18 digits, a number strtod calls
 * out of range, nesting beyond max_depth) it returns NULL and the caller
 * asks json_loadb, which then decides and words the error. The fuzz target
 * fuzz_openai_req compares the two on every input.
 */
#ifndef KZ_JSONR_H
#define KZ_JSONR_H

#include <jansson.h>
#include <stddef.h>

/* A new reference to the object in p[0..n), or NULL: not claimed (see above)
 * or out of memory, either way ask json_loadb. max_depth counts the
 * top-level object as 1. */
json_t *kz_jr_object(const char *p, size_t n, int max_depth);

#endif
