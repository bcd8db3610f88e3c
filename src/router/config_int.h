/* SPDX-License-Identifier: MIT
 * Internals of the configuration loader, shared by the src/router/config*.c
 * files only.
 *
 * Loading runs in two steps. config_tree.c turns the YAML events into a small
 * tree of nodes (mapping, sequence, scalar), each with its line and a link to
 * its parent, so any node can name itself ("providers[1].type") in an error.
 * The hostile-input limits (depth, sizes, counts, no aliases, no duplicate
 * keys) are enforced while the tree is built, before anything reads it. Then
 * config.c, config_provider.c and config_model.c walk the tree with the typed
 * readers of config_value.c and config_secret.c into struct kz_config.
 *
 * Every reader returns kz_status and, on failure, writes the one message
 * "NAME:LINE: key.path: problem" through kz_cfg__fail.
 */
#ifndef KZ_ROUTER_CONFIG_INT_H
#define KZ_ROUTER_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "router/config.h"

/* Limits against hostile input (see docs/CONFIG.md). */
#define KZ_CFG_MAX_FILE (1u << 20)  /* bytes in the file */
#define KZ_CFG_MAX_DEPTH 16         /* nested mappings and sequences */
#define KZ_CFG_MAX_SCALAR 4096      /* bytes in one key or value */
#define KZ_CFG_MAX_KEYS 64          /* keys in one mapping */
#define KZ_CFG_MAX_ITEMS 1024       /* items in one sequence */
#define KZ_CFG_MAX_PROVIDERS 256
#define KZ_CFG_MAX_MODELS 1024
#define KZ_CFG_MAX_DEPLOYMENTS 64
#define KZ_CFG_MAX_SECRET (64u << 10) /* bytes in a file: secret */
#define KZ_CFG_MAX_PROVIDER_NAME 64
#define KZ_CFG_MAX_MODEL_NAME 128
/* Timeouts and intervals stop at INT_MAX so that users of these values can
 * hand them to APIs taking int or long without another check. */
#define KZ_CFG_MAX_MS 2147483647LL
/* A price above a million dollars per million tokens is a typo. */
#define KZ_CFG_MAX_PRICE_MICRO 1000000000000LL

enum kz_cfg_kind { KZ_CFG_SCALAR, KZ_CFG_MAP, KZ_CFG_SEQ };

struct kz_cfg_node {
    enum kz_cfg_kind kind;
    int line;                        /* 1-based line where the node starts */
    const struct kz_cfg_node *parent; /* NULL for the root */
    char *key;                       /* in a mapping: this entry's key (owned); else NULL */
    int key_line;                    /* in a mapping: the key's line */
    size_t index;                    /* in a sequence: this item's position */
    /* scalar */
    char *val;                       /* NUL-terminated (NUL bytes are refused), owned */
    size_t len;
    int plain;                       /* unquoted: may be a number or null */
    /* mapping (entries in file order) or sequence */
    struct kz_cfg_node **kids;
    size_t n_kids, cap_kids;
};

/* What every reader needs: the name for messages and where to write them. */
struct kz_cfg_ctx {
    const char *name; /* the file name as given, for messages and relative paths */
    struct kz_err *err;
};

/* Words for the enums of config.h, indexed by value (defined in config.c). */
extern const char *const kz_cfg__type_names[6];
extern const char *const kz_cfg__privacy_names[3];
extern const char *const kz_cfg__strategy_names[5];

/* ---- config_tree.c ------------------------------------------------------ */

/* Parses YAML text into a tree; *root is NULL for an empty document. On
 * failure nothing is left allocated. The caller frees with kz_cfg__tree_free. */
kz_status kz_cfg__tree_build(const struct kz_cfg_ctx *cx, const char *text, size_t len,
                             struct kz_cfg_node **root /* out */);
void kz_cfg__tree_free(struct kz_cfg_node *n); /* NULL is a no-op */

/* Writes "NAME:LINE: path: message" (path of n; just "NAME:LINE: message" for
 * the root) and returns s. The line is n's own; kz_cfg__fail_key uses the
 * line of n's key instead, for problems with the key itself. */
kz_status kz_cfg__fail(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, kz_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
kz_status kz_cfg__fail_key(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, kz_status s,
                           const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Copies s into buf for a message: at most cap-1 bytes, bytes outside
 * printable ASCII replaced by '?', "..." when cut. Returns buf. Never use it
 * on secrets: they must not reach a message at all. */
const char *kz_cfg__show(char *buf, size_t cap, const char *s);

/* The value of `key` in mapping m, or NULL (also when m is not a mapping). */
const struct kz_cfg_node *kz_cfg__get(const struct kz_cfg_node *m, const char *key);

/* ---- config_value.c: typed readers -------------------------------------- */

/* A plain ~, null, Null, NULL or empty value: the loader treats it as absent. */
int kz_cfg__is_null(const struct kz_cfg_node *n);

/* Checks that n is a mapping (sequence); the error names what it found. */
kz_status kz_cfg__want_map(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n);
kz_status kz_cfg__want_seq(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n);

/* For the list at n: a zeroed array with one element of elem_size per item
 * in *out (kz_free; left alone for an empty list) and the item count in
 * *count. More than max items is an error: "too many WHAT (at most MAX)". */
kz_status kz_cfg__list(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, size_t max, const char *what,
                       size_t elem_size, void **out /* out */, size_t *count /* out */);

/* A non-empty string without control characters, at most max_len bytes.
 * *out is a new copy (kz_free); an earlier *out is freed first. */
kz_status kz_cfg__string(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, size_t max_len,
                         char **out /* out */);

/* A plain decimal integer in lo..hi. */
kz_status kz_cfg__integer(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, long long lo, long long hi,
                          long long *out /* out */);
/* The same, stored as int or unsigned (the range must fit the type). */
kz_status kz_cfg__int(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, int lo, int hi, int *out);
kz_status kz_cfg__ms(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, unsigned lo, unsigned *out);

/* A plain finite decimal number in lo..hi. */
kz_status kz_cfg__number(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, double lo, double hi,
                         double *out /* out */);

/* Dollars per million tokens -> micro-dollars, exactly, rounded half up. */
kz_status kz_cfg__money(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, int64_t *out /* out */);

/* `price: {input_per_mtok, output_per_mtok}` (both optional, 0 by default). */
kz_status kz_cfg__price(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, struct kz_price *out /* out */);

/* One of names[0..count-1]; *out is its index. `what` names the kind in the
 * message: "unknown WHAT 'x' (expected a, b or c)". */
kz_status kz_cfg__choice(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, const char *what,
                         const char *const *names, int count, int *out /* out */);

/* Fails with "unknown key (expected ...)" on the first key of mapping m that
 * is not in keys[0..count-1]. */
kz_status kz_cfg__known_keys(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *m, const char *const *keys,
                             size_t count);

/* ---- config_secret.c ---------------------------------------------------- */

/* Resolves `env:NAME` or `file:PATH` (relative to the config's directory)
 * into a new string (*out, freed by kz_cfg__secret_free); an earlier *out is
 * released first. Literal values are refused. No message ever contains the
 * secret or the literal. */
kz_status kz_cfg__secret(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, char **out /* out */);
/* Wipes and frees a secret (NULL is a no-op). */
void kz_cfg__secret_free(char *s);

/* `rel` made relative to the directory of the config file (name): a new
 * string (kz_free), or NULL when out of memory. Absolute paths are copied. */
char *kz_cfg__path_near(const char *name, const char *rel);

/* ---- config_provider.c, config_model.c ---------------------------------- */

/* Reads the `providers` sequence (n may be NULL or null) into c. */
kz_status kz_cfg__providers(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, struct kz_config *c);
/* Reads the `models` sequence; providers must be read first. */
kz_status kz_cfg__models(const struct kz_cfg_ctx *cx, const struct kz_cfg_node *n, struct kz_config *c);

#endif
