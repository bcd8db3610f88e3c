/* SPDX-License-Identifier: MIT
 * Template lexer: text between tags, the tags themselves and the tokens of
 * the expressions inside them, with Jinja2's whitespace rules as Hugging
 * Face configures them:
 *   - the source's newlines are normalised to "\n" and one trailing newline
 *     is dropped (keep_trailing_newline=False);
 *   - trim_blocks: the first "\n" after a block or comment tag is removed;
 *   - lstrip_blocks: spaces and tabs between a line start and a block or
 *     comment tag are removed;
 *   - "{%-" / "-%}" (and {{- -}} {#- -#}) strip all white space before /
 *     after the tag; "{%+" and "+%}" switch lstrip / trim off for one tag.
 * A tag ends at its closing delimiter only when the brackets inside it are
 * balanced, so {{ {'a': {'b': 1}} }} lexes as Jinja2 lexes it.
 */
#include <stdlib.h>
#include <string.h>

#include "api/template_int.h"
#include "core/alloc.h"
#include "core/fmt.h"

/* Deepest bracket nesting inside one tag. */
#define LEX_MAX_BRACKETS 256

struct lexer {
    struct tmpl_arena *a;
    const char *s; /* normalised source */
    size_t len, pos;
    int line;
    struct tmpl_tok *toks;
    size_t n, cap;
    struct kz_err *err;
};

static kz_status lex_fail(struct lexer *L, kz_status s, const char *msg, const char *arg)
{
    return kz_err_set(L->err, s, "template line %d: %s%s%s", L->line, msg, arg ? arg : "",
                      arg ? "'" : "");
}

static kz_status push(struct lexer *L, struct tmpl_tok t)
{
    if (L->n == L->cap) {
        size_t nc = L->cap ? L->cap * 2 : 256;
        struct tmpl_tok *nt = kz_realloc(L->toks, nc * sizeof *nt);
        if (!nt)
            return kz_err_set(L->err, KZ_ENOMEM, "template: out of memory");
        L->toks = nt;
        L->cap = nc;
    }
    L->toks[L->n++] = t;
    return KZ_OK;
}

static kz_status push_simple(struct lexer *L, enum tmpl_tk kind)
{
    struct tmpl_tok t = {.kind = (uint8_t)kind, .line = L->line};
    return push(L, t);
}

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void count_lines(struct lexer *L, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (L->s[i] == '\n')
            L->line++;
}

/* Skips white space from pos (the effect of a "-" closing modifier). */
static void skip_ws(struct lexer *L)
{
    size_t p = L->pos;
    while (p < L->len && is_ws(L->s[p]))
        p++;
    count_lines(L, L->pos, p);
    L->pos = p;
}

/* Emits s[from..to) as text after the whitespace control of the tag that
 * follows it: `mod` is that tag's modifier ('-', '+' or 0) and `lstrip`
 * says whether lstrip_blocks applies to it (block and comment tags). */
static kz_status emit_text(struct lexer *L, size_t from, size_t to, char mod, int lstrip)
{
    size_t end = to;
    if (mod == '-') {
        while (end > from && is_ws(L->s[end - 1]))
            end--;
    } else if (mod != '+' && lstrip) {
        size_t lpos = end;
        while (lpos > from && L->s[lpos - 1] != '\n')
            lpos--;
        /* Only when the tag starts its line: text begins at a line start or
         * contains the newline itself. */
        int line_start = lpos > from || from == 0 || L->s[from - 1] == '\n';
        int only_ws = lpos < end;
        for (size_t i = lpos; i < end && only_ws; i++)
            only_ws = L->s[i] == ' ' || L->s[i] == '\t' || L->s[i] == '\v' || L->s[i] == '\f' ||
                      L->s[i] == '\r';
        if (line_start && only_ws)
            end = lpos;
    }
    if (end > from) {
        struct tmpl_tok t = {.kind = TK_TEXT, .line = L->line};
        t.s.p = L->s + from;
        t.s.len = end - from;
        kz_status rc = push(L, t);
        if (rc)
            return rc;
    }
    count_lines(L, from, to);
    return KZ_OK;
}

/* After a block or comment tag closed with modifier `mod`. */
static void after_block_end(struct lexer *L, char mod)
{
    if (mod == '-') {
        skip_ws(L);
    } else if (mod != '+' && L->pos < L->len && L->s[L->pos] == '\n') {
        L->pos++; /* trim_blocks */
        L->line++;
    }
}

/* A string literal at pos (the quote). Escapes follow Python's
 * unicode-escape codec, which is what Jinja2 decodes literals with. */
static kz_status lex_string(struct lexer *L)
{
    char q = L->s[L->pos];
    size_t start = L->pos + 1, p = start;
    int line0 = L->line;
    while (p < L->len && L->s[p] != q) {
        if (L->s[p] == '\\' && p + 1 < L->len)
            p++;
        p++;
    }
    if (p >= L->len)
        return lex_fail(L, KZ_EPROTO, "unterminated string literal", NULL);
    /* Decoded text is never longer than the literal. */
    char *out = tmpl_arena_alloc(L->a, p - start + 1);
    if (!out)
        return kz_err_set(L->err, L->a->failed, "template: out of memory");
    size_t o = 0;
    for (size_t i = start; i < p; i++) {
        char c = L->s[i];
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        char e = L->s[++i];
        uint32_t cp = 0;
        int nhex = 0;
        switch (e) {
        case '\n': break; /* line continuation */
        case '\\': out[o++] = '\\'; break;
        case '\'': out[o++] = '\''; break;
        case '"': out[o++] = '"'; break;
        case 'a': out[o++] = '\a'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'v': out[o++] = '\v'; break;
        case 'x': nhex = 2; break;
        case 'u': nhex = 4; break;
        case 'U': nhex = 8; break;
        case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
            int k = 0;
            while (k < 3 && i < p && L->s[i] >= '0' && L->s[i] <= '7') {
                cp = cp * 8 + (uint32_t)(L->s[i] - '0');
                i++;
                k++;
            }
            i--;
            o += tmpl_utf8_encode(cp, out + o);
            break;
        }
        default: /* unknown escapes keep their backslash, as in Python */
            out[o++] = '\\';
            out[o++] = e;
            break;
        }
        if (nhex) {
            for (int k = 0; k < nhex; k++) {
                int h = i + 1 < p ? kz_hex_value(L->s[i + 1]) : -1;
                if (h < 0)
                    return lex_fail(L, KZ_EPROTO, "truncated \\x, \\u or \\U escape in string literal", NULL);
                cp = cp * 16 + (uint32_t)h;
                i++;
            }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return lex_fail(L, KZ_EPROTO, "escape names no Unicode character", NULL);
            o += tmpl_utf8_encode(cp, out + o);
        }
    }
    out[o] = '\0';
    struct tmpl_tok t = {.kind = TK_STRING, .line = line0};
    t.s.p = out;
    t.s.len = o;
    count_lines(L, L->pos, p + 1);
    L->pos = p + 1;
    return push(L, t);
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

/* Digits with single underscores between them, copied without those. */
static size_t scan_digits(struct lexer *L, size_t p, char *buf, size_t *bl, size_t bcap)
{
    while (p < L->len && (is_digit(L->s[p]) || (L->s[p] == '_' && p + 1 < L->len && is_digit(L->s[p + 1]) &&
                                                 p > 0 && is_digit(L->s[p - 1])))) {
        if (L->s[p] != '_' && *bl + 1 < bcap)
            buf[(*bl)++] = L->s[p];
        p++;
    }
    return p;
}

static kz_status lex_number(struct lexer *L)
{
    char buf[128];
    size_t bl = 0, p = scan_digits(L, L->pos, buf, &bl, sizeof buf);
    int is_float = 0;
    /* After a '.', digits are an attribute index (x.0.1), never a float. */
    int after_dot = L->pos > 0 && L->s[L->pos - 1] == '.';
    if (!after_dot && p + 1 < L->len && L->s[p] == '.' && is_digit(L->s[p + 1])) {
        buf[bl++] = '.';
        p = scan_digits(L, p + 1, buf, &bl, sizeof buf);
        is_float = 1;
    }
    if (!after_dot && p < L->len && (L->s[p] == 'e' || L->s[p] == 'E')) {
        size_t q = p + 1;
        if (q < L->len && (L->s[q] == '+' || L->s[q] == '-'))
            q++;
        if (q < L->len && is_digit(L->s[q])) {
            if (bl + 2 < sizeof buf) {
                buf[bl++] = 'e';
                if (L->s[p + 1] == '-')
                    buf[bl++] = '-';
            }
            p = scan_digits(L, q, buf, &bl, sizeof buf);
            is_float = 1;
        }
    }
    if (bl + 1 >= sizeof buf)
        return lex_fail(L, KZ_EPROTO, "number literal too long", NULL);
    buf[bl] = '\0';
    struct tmpl_tok t = {.kind = is_float ? TK_FLOAT : TK_INT, .line = L->line};
    if (is_float) {
        t.f = strtod(buf, NULL);
    } else {
        int64_t v = 0;
        for (size_t i = 0; i < bl; i++) {
            if (v > (INT64_MAX - (buf[i] - '0')) / 10)
                return lex_fail(L, KZ_EUNSUPPORTED, "integer literal too large", NULL);
            v = v * 10 + (buf[i] - '0');
        }
        t.i = v;
    }
    L->pos = p;
    return push(L, t);
}

struct opdef {
    const char *text;
    uint8_t op;
};

/* Longest first, so "//" wins over "/". */
static const struct opdef ops[] = {
    {"//", OP_FLOORDIV}, {"**", OP_POW}, {"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE},
    {"+", OP_ADD}, {"-", OP_SUB}, {"*", OP_MUL}, {"/", OP_DIV}, {"%", OP_MOD}, {"~", OP_TILDE},
    {"[", OP_LBRACKET}, {"]", OP_RBRACKET}, {"(", OP_LPAREN}, {")", OP_RPAREN}, {"{", OP_LBRACE},
    {"}", OP_RBRACE}, {"<", OP_LT}, {">", OP_GT}, {"=", OP_ASSIGN}, {".", OP_DOT}, {":", OP_COLON},
    {"|", OP_PIPE}, {",", OP_COMMA}, {";", OP_SEMICOLON},
};

static int starts(const struct lexer *L, size_t p, const char *lit)
{
    size_t n = strlen(lit);
    return p + n <= L->len && memcmp(L->s + p, lit, n) == 0;
}

/* Tokens of one tag's inside, up to and including its closing delimiter.
 * `close` is '}' (for "}}") or '%'. Returns the closing modifier through
 * *mod ('-', '+' or 0). */
static kz_status lex_tag_body(struct lexer *L, char close, char *mod)
{
    char stack[LEX_MAX_BRACKETS];
    int depth = 0;
    int line0 = L->line;
    for (;;) {
        while (L->pos < L->len && is_ws(L->s[L->pos])) {
            if (L->s[L->pos] == '\n')
                L->line++;
            L->pos++;
        }
        if (L->pos >= L->len) {
            L->line = line0;
            return lex_fail(L, KZ_EPROTO, close == '}' ? "unclosed '{{'" : "unclosed '{%'", NULL);
        }
        size_t p = L->pos;
        if (depth == 0) {
            const char *end = close == '}' ? "}}" : "%}";
            if ((L->s[p] == '-' || (L->s[p] == '+' && close == '%')) && starts(L, p + 1, end)) {
                *mod = L->s[p];
                L->pos = p + 3;
                return KZ_OK;
            }
            if (starts(L, p, end)) {
                *mod = 0;
                L->pos = p + 2;
                return KZ_OK;
            }
        }
        char c = L->s[p];
        kz_status rc;
        if (c == '\'' || c == '"') {
            rc = lex_string(L);
        } else if (is_digit(c)) {
            rc = lex_number(L);
        } else if (is_name_start(c)) {
            size_t q = p;
            while (q < L->len && (is_name_start(L->s[q]) || is_digit(L->s[q])))
                q++;
            struct tmpl_tok t = {.kind = TK_NAME, .line = L->line};
            t.s.p = L->s + p;
            t.s.len = q - p;
            L->pos = q;
            rc = push(L, t);
        } else {
            const struct opdef *od = NULL;
            for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
                if (starts(L, p, ops[k].text)) {
                    od = &ops[k];
                    break;
                }
            if (!od) {
                char what[8] = {'\'', c, 0};
                if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
                    return lex_fail(L, KZ_EPROTO, "unexpected byte in tag", NULL);
                return lex_fail(L, KZ_EPROTO, "unexpected character ", what);
            }
            if (od->op == OP_LPAREN || od->op == OP_LBRACKET || od->op == OP_LBRACE) {
                if (depth == LEX_MAX_BRACKETS)
                    return lex_fail(L, KZ_ELIMIT, "brackets nested too deeply", NULL);
                stack[depth++] = od->op == OP_LPAREN ? ')' : od->op == OP_LBRACKET ? ']' : '}';
            } else if (od->op == OP_RPAREN || od->op == OP_RBRACKET || od->op == OP_RBRACE) {
                if (depth == 0 || stack[depth - 1] != od->text[0]) {
                    char what[8] = {'\'', od->text[0], 0};
                    return lex_fail(L, KZ_EPROTO, "unexpected ", what);
                }
                depth--;
            }
            struct tmpl_tok t = {.kind = TK_OP, .op = od->op, .line = L->line};
            L->pos = p + strlen(od->text);
            rc = push(L, t);
        }
        if (rc)
            return rc;
    }
}

/* After "{%" + modifier at pos: is this "raw %}"? Returns the position
 * after the tag's "%}" and its closing modifier, or 0. */
static size_t match_raw(const struct lexer *L, size_t p, const char *word, char *mod)
{
    int is_end = word[0] == 'e';
    while (p < L->len && is_ws(L->s[p]))
        p++;
    size_t wl = strlen(word);
    if (!starts(L, p, word))
        return 0;
    p += wl;
    while (p < L->len && is_ws(L->s[p]))
        p++;
    /* "{% raw +%}" is no raw tag in Jinja2, "{% endraw +%}" is */
    if (p < L->len && (L->s[p] == '-' || (L->s[p] == '+' && is_end)) && starts(L, p + 1, "%}")) {
        *mod = L->s[p];
        return p + 3;
    }
    if (starts(L, p, "%}")) {
        *mod = 0;
        return p + 2;
    }
    return 0;
}

/* {% raw %} ... {% endraw %}: pos is just after the opening tag. */
static kz_status lex_raw(struct lexer *L)
{
    for (size_t p = L->pos; p + 1 < L->len; p++) {
        if (L->s[p] != '{' || L->s[p + 1] != '%')
            continue;
        char bmod = p + 2 < L->len ? L->s[p + 2] : 0;
        char emod;
        size_t after = match_raw(L, p + 2 + (bmod == '-' || bmod == '+'), "endraw", &emod);
        if (!after)
            continue;
        kz_status rc = emit_text(L, L->pos, p, bmod == '-' || bmod == '+' ? bmod : 0, 1);
        if (rc)
            return rc;
        count_lines(L, p, after);
        L->pos = after;
        after_block_end(L, emod);
        return KZ_OK;
    }
    return lex_fail(L, KZ_EPROTO, "missing {% endraw %}", NULL);
}

kz_status tmpl_lex(struct tmpl_arena *a, const char *src, size_t len, struct tmpl_tok **toks, size_t *n_toks,
                   struct kz_err *err)
{
    struct lexer L = {.a = a, .line = 1, .err = err};
    kz_status rc = KZ_OK;
    *toks = NULL;
    *n_toks = 0;
    /* Normalise newlines (\r\n and lone \r become \n), as Jinja2 does to the
     * whole source before lexing, string literals included. */
    char *norm = tmpl_arena_alloc(a, len + 1);
    if (!norm)
        return kz_err_set(err, a->failed, "template: out of memory");
    size_t nl = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            norm[nl++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n')
                i++;
        } else {
            norm[nl++] = src[i];
        }
    }
    if (nl > 0 && norm[nl - 1] == '\n')
        nl--; /* keep_trailing_newline=False */
    L.s = norm;
    L.len = nl;

    while (L.pos < L.len) {
        /* Next tag opener. */
        size_t p = L.pos;
        while (p + 1 < L.len && !(L.s[p] == '{' && (L.s[p + 1] == '{' || L.s[p + 1] == '%' || L.s[p + 1] == '#')))
            p++;
        if (p + 1 >= L.len) {
            rc = emit_text(&L, L.pos, L.len, 0, 0);
            if (rc)
                goto out;
            L.pos = L.len;
            break;
        }
        char kind = L.s[p + 1];
        char mod = p + 2 < L.len ? L.s[p + 2] : 0;
        if (mod != '-' && (mod != '+' || kind == '{'))
            mod = 0;
        rc = emit_text(&L, L.pos, p, mod, kind != '{');
        if (rc)
            goto out;
        L.pos = p + 2 + (mod != 0);
        if (kind == '#') {
            size_t q = L.pos;
            while (q + 1 < L.len && !(L.s[q] == '#' && L.s[q + 1] == '}'))
                q++;
            if (q + 1 >= L.len) {
                rc = lex_fail(&L, KZ_EPROTO, "unclosed comment", NULL);
                goto out;
            }
            char emod = q > L.pos && (L.s[q - 1] == '-' || L.s[q - 1] == '+') ? L.s[q - 1] : 0;
            count_lines(&L, L.pos, q + 2);
            L.pos = q + 2;
            after_block_end(&L, emod);
            continue;
        }
        if (kind == '%') {
            char rmod;
            size_t after = match_raw(&L, L.pos, "raw", &rmod);
            if (after) {
                count_lines(&L, L.pos, after);
                L.pos = after;
                if (rmod == '-') /* trim_blocks does not apply to "{% raw %}" */
                    skip_ws(&L);
                rc = lex_raw(&L);
                if (rc)
                    goto out;
                continue;
            }
        }
        rc = push_simple(&L, kind == '{' ? TK_VAR_BEGIN : TK_BLOCK_BEGIN);
        if (rc)
            goto out;
        char emod = 0;
        rc = lex_tag_body(&L, kind == '{' ? '}' : '%', &emod);
        if (rc)
            goto out;
        rc = push_simple(&L, kind == '{' ? TK_VAR_END : TK_BLOCK_END);
        if (rc)
            goto out;
        if (kind == '{') {
            if (emod == '-')
                skip_ws(&L);
        } else {
            after_block_end(&L, emod);
        }
    }
    rc = push_simple(&L, TK_EOF);
out:
    if (rc) {
        kz_free(L.toks);
        return rc;
    }
    *toks = L.toks;
    *n_toks = L.n;
    return KZ_OK;
}
