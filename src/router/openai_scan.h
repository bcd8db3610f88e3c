/* SPDX-License-Identifier: MIT
 * The fast path of the OpenAI decoders (openai_scan.c): reads the common
 * shapes of a stream chunk and of a whole answer without building a JSON
 * tree, and declines (returns 0) whatever it does not fully understand,
 * leaving it to jansson.
 * Pointers in the result point into the input.
 */
#ifndef KZ_OPENAI_SCAN_H
#define KZ_OPENAI_SCAN_H

#include <stddef.h>

#define KZ_SCAN_MAX_CHOICES 8

struct kz_scan_choice {
    long index;
    int has_index;
    const char *content;  /* delta.content or message.content (chat) */
    size_t content_len;
    int has_content;
    const char *text;     /* text (completions) */
    size_t text_len;
    int has_text;
    char finish[32];
    int has_finish;
};

struct kz_scan_chunk {
    struct kz_scan_choice choices[KZ_SCAN_MAX_CHOICES];
    size_t n_choices;
    int has_choices; /* the key was there (null in a chunk counts) */
    int has_usage;
    long prompt_tokens, completion_tokens; /* -1 when absent or negative */
};

/* 1 and *out when the chunk is understood in full, else 0. */
int kz_openai_scan_chunk(const char *data, size_t len, struct kz_scan_chunk *out);

/* The same for a whole chat.completion or text_completion body: choices
 * carry "message" instead of "delta" and must be an array. */
int kz_openai_scan_body(const char *data, size_t len, struct kz_scan_chunk *out);

#endif
