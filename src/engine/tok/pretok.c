/* SPDX-License-Identifier: MIT
 * Pre-tokenizers for byte-level BPE: `tokenizer.ggml.pre` names a list of
 * regexes; each stage cuts every current fragment into its matches and the
 * text between them (both kept), and the next stage cuts those again.
 *
 * Semantics follow the reference engine, which is what the vocab tests pin
 * down, including two of its shortcuts:
 *  - A regex that uses \p{..} runs on a "collapsed" copy of the text: one
 *    byte per code point, ASCII kept, every other code point replaced by a
 *    byte naming its category (non-ASCII white space becomes \v). \p{X}
 *    becomes a class of that byte plus X's ASCII members. So \p{Lu} means
 *    any letter, and ASCII '~' is not \p{S}.
 *  - A regex without \p{..} runs on the real code points, but with non-ASCII
 *    white space replaced by \v, and \s, \d, \w stay ASCII-only (no UCP).
 * The three most used regexes are hand-written scanners (much faster than a
 * regex engine, and they define the reference behaviour for those sets).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "core/alloc.h"
#include "engine/tok/tok_int.h"

#define RE_GPT2 "@gpt2"
#define RE_LLAMA3 "@llama3"
#define RE_QWEN2 "@qwen2"

/* 's|'t|... as explicit classes: the case-insensitive group of the original
 * patterns, spelled so every regex engine reads it the same way. */
#define CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define CJK_DEEPSEEK "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"
#define NOT_BREAK_PORO " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"

struct pre_def {
    const char *const *names; /* NULL-terminated */
    int ignore_merges;
    int add_bos; /* -1: leave the vocabulary default */
    const char *re[TOK_MAX_STAGES];
};

static const char *const n_default[] = {"default", NULL};
static const char *const n_llama3[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                                       "midm-2.0", "lfm2", "jina-v5-nano", NULL};
static const char *const n_llama3_re[] = {"dbrx", "smaug-bpe", "glm4", "chatglm-bpe", NULL};
static const char *const n_ds_llm[] = {"deepseek-llm", NULL};
static const char *const n_ds3[] = {"deepseek-v3", "hunyuan-dense", "joyai-llm", NULL};
static const char *const n_ds_coder[] = {"deepseek-coder", NULL};
static const char *const n_falcon[] = {"falcon", NULL};
static const char *const n_starcoder[] = {"starcoder", "refact", "command-r", "smollm", "codeshell",
                                          "exaone", "minerva-7b", "mellum2", NULL};
static const char *const n_gpt2[] = {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es",
                                     "jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "mpt", "olmo",
                                     "jais", "trillion", "granite-docling", "exaone4", "jina-v1-en",
                                     "jina-v2-code", "roberta-bpe", NULL};
static const char *const n_qwen2[] = {"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez",
                                      "stablelm2", "hunyuan", "solar-open", "grok-2", NULL};
static const char *const n_poro[] = {"poro-chat", "bloom", "gpt3-finnish", NULL};
static const char *const n_viking[] = {"viking", NULL};
static const char *const n_tekken[] = {"tekken", NULL};
static const char *const n_gpt4o[] = {"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2", NULL};
static const char *const n_seed[] = {"seed-coder", NULL};
static const char *const n_bailing[] = {"bailingmoe", "bailingmoe2", "llada-moe", NULL};

/* Upper/lower letter runs written with lookaheads, as the reference does for
 * these two sets (and, being collapsed, "upper" and "lower" only split ASCII). */
#define UPPER_THEN_LOWER "((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+"
#define LOWER_AFTER_UPPER "((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*"

static const struct pre_def pre_defs[] = {
    {n_default, 0, -1, {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}},
    {n_llama3, 1, 1, {RE_LLAMA3}},
    {n_llama3_re, 0, -1, {RE_LLAMA3}},
    {n_ds_llm, 0, -1,
     {"[\r\n]",
      "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}"
      "\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}"
      "\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}"
      "\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"
      "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"
      "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"
      "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}"
      "\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}"
      "\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}"
      "\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}"
      "\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}"
      "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"
      "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}"
      "\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"
      "\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}"
      "\\x{1E900}-\\x{1E943}]+",
      "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
      "\\s+$", CJK_DEEPSEEK, "\\p{N}+"}},
    {n_ds3, 0, -1,
     {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
      "| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}},
    {n_ds_coder, 0, -1, {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", CJK_DEEPSEEK, "\\p{N}"}},
    {n_falcon, 0, -1, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}},
    {n_starcoder, 0, -1, {"\\p{N}", RE_GPT2}},
    {n_gpt2, 0, -1, {RE_GPT2}},
    {n_qwen2, 0, -1, {RE_QWEN2}},
    {n_poro, 0, -1, {NOT_BREAK_PORO}},
    {n_viking, 0, -1, {NOT_BREAK_PORO, "\\p{N}"}},
    {n_tekken, 1, 1,
     {"[^\\r\\n\\p{L}\\p{N}]?" UPPER_THEN_LOWER "|[^\\r\\n\\p{L}\\p{N}]?" LOWER_AFTER_UPPER
      "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {n_gpt4o, 0, -1,
     {"[^\\r\\n\\p{L}\\p{N}]?" UPPER_THEN_LOWER CONTRACTIONS "?|[^\\r\\n\\p{L}\\p{N}]?" LOWER_AFTER_UPPER
      CONTRACTIONS "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {n_seed, 0, -1,
     {CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+"
                   "|\\s+(?!\\S)|\\s+"}},
    {n_bailing, 0, -1,
     {"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
      "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"}},
};

/* ---- collapsed patterns ------------------------------------------------------ */

#define COLL_OTHER 0xD0
#define COLL_NUMBER 0xD1
#define COLL_LETTER 0xD2
#define COLL_PUNCT 0xD3
#define COLL_MARK 0xD4
#define COLL_SYMBOL 0xD5

struct ucat {
    const char *name;      /* as written in a pattern */
    const char *replace;   /* class members: the category byte + ASCII members */
};

/* \p{S}'s ASCII members leave out '~': that is how the reference reads it. */
static const struct ucat ucats[] = {
    {"\\p{N}", "\\xD1" "0-9"},
    {"\\p{L}", "\\xD2" "A-Za-z"},
    {"\\p{P}", "\\xD3" "!-#%-*,-/:;?@\\x5B-\\x5D_\\x7B\\x7D"},
    {"\\p{M}", "\\xD4"},
    {"\\p{S}", "\\xD5" "\\x24\\x2B\\x3C-\\x3E\\x5E\\x60\\x7C"},
    {"\\p{Lu}", "\\xD2" "A-Za-z"},
    {"\\p{Ll}", "\\xD2" "A-Za-z"},
    {"\\p{Lt}", "\\xD2" "A-Za-z"},
    {"\\p{Lm}", "\\xD2" "A-Za-z"},
    {"\\p{Lo}", "\\xD2" "A-Za-z"},
};
#define N_UCATS (sizeof ucats / sizeof ucats[0])

static int uses_categories(const char *re)
{
    for (size_t i = 0; i < N_UCATS; i++)
        if (strstr(re, ucats[i].name))
            return 1;
    return 0;
}

/* Rewrites \p{X} into byte classes for matching the collapsed text.
 * *out is a new NUL-terminated string (kz_free). */
static kz_status collapse_pattern(const char *re, char **out)
{
    struct tok_buf b = {0};
    int inside = 0;
    size_t n = strlen(re);
    kz_status rc = KZ_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        const struct ucat *hit = NULL;
        if (re[i] == '[' && (i == 0 || re[i - 1] != '\\')) {
            inside = 1;
        } else if (inside && re[i] == ']' && re[i - 1] != '\\') {
            inside = 0;
        } else if (re[i] == '\\' && re[i + 1] == 'p' && re[i + 2] == '{') {
            for (size_t k = 0; k < N_UCATS; k++)
                if (strncmp(re + i, ucats[k].name, strlen(ucats[k].name)) == 0)
                    hit = &ucats[k];
        }
        if (!hit) {
            rc = kz_tok__buf_put(&b, re + i, 1);
            continue;
        }
        if (!inside)
            rc = kz_tok__buf_put(&b, "[", 1);
        if (!rc)
            rc = kz_tok__buf_put(&b, hit->replace, strlen(hit->replace));
        if (!rc && !inside)
            rc = kz_tok__buf_put(&b, "]", 1);
        i += strlen(hit->name) - 1;
    }
    if (!rc)
        rc = kz_tok__buf_put(&b, "", 1);
    if (rc) {
        kz_free(b.p);
        return rc;
    }
    *out = b.p;
    return KZ_OK;
}

static unsigned char collapse_cpt(uint32_t cp)
{
    unsigned f;
    if (cp < 0x80)
        return (unsigned char)cp;
    f = kz_tok__cpt_flags(cp);
    if (f & TOK_CPT_SPACE)
        return 0x0B;
    switch (f & 0xFFu) {
    case TOK_CPT_NUMBER: return COLL_NUMBER;
    case TOK_CPT_LETTER: return COLL_LETTER;
    case TOK_CPT_PUNCT: return COLL_PUNCT;
    case TOK_CPT_MARK: return COLL_MARK;
    case TOK_CPT_SYMBOL: return COLL_SYMBOL;
    default: return COLL_OTHER;
    }
}

/* ---- setup ------------------------------------------------------------------- */

static void *pcre_alloc(size_t size, void *data)
{
    (void)data;
    return kz_malloc(size);
}

static void pcre_free(void *p, void *data)
{
    (void)data;
    kz_free(p);
}

static kz_status compile_stage(struct kz_tok *t, struct tok_stage *st, const char *re, struct kz_err *err)
{
    char *pat = NULL;
    pcre2_compile_context *cctx = NULL;
    pcre2_code *code = NULL;
    int ecode = 0;
    PCRE2_SIZE eoff = 0;
    uint32_t opts = PCRE2_DOLLAR_ENDONLY; /* '$' is the fragment's end, not "before a final \n" */
    kz_status rc = KZ_OK;

    st->kind = TOK_RE_PCRE;
    st->collapsed = uses_categories(re);
    if (st->collapsed) {
        rc = collapse_pattern(re, &pat);
        if (rc)
            goto out;
    } else {
        opts |= PCRE2_UTF;
    }
    cctx = pcre2_compile_context_create(t->pcre_gctx);
    if (!cctx) {
        rc = KZ_ENOMEM;
        goto out;
    }
    code = pcre2_compile((PCRE2_SPTR)(pat ? pat : re), PCRE2_ZERO_TERMINATED, opts, &ecode, &eoff, cctx);
    if (!code) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        /* compile error 21 is PCRE2's "failed to get memory" */
        rc = kz_err_set(err, ecode == PCRE2_ERROR_NOMEMORY || ecode == 121 ? KZ_ENOMEM : KZ_EPROTO,
                        "pre-tokenizer regex does not compile at %zu: %s", (size_t)eoff, (const char *)msg);
        goto out;
    }
    /* JIT is an optimisation only: without it the interpreter runs */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    st->code = code;
    code = NULL;
out:
    pcre2_code_free(code);
    pcre2_compile_context_free(cctx);
    kz_free(pat);
    return rc;
}

kz_status kz_tok__pre_init(struct kz_tok *t, const char *name, size_t name_len, struct kz_err *err)
{
    const struct pre_def *def = NULL;
    kz_status rc = KZ_OK;

    for (size_t i = 0; i < sizeof pre_defs / sizeof pre_defs[0] && !def; i++)
        for (const char *const *n = pre_defs[i].names; *n; n++)
            if (strlen(*n) == name_len && memcmp(*n, name, name_len) == 0) {
                def = &pre_defs[i];
                break;
            }
    if (!def)
        return kz_err_set(err, KZ_EUNSUPPORTED, "unknown pre-tokenizer type '%.*s'", (int)name_len, name);

    t->ignore_merges = def->ignore_merges;
    if (def->add_bos >= 0)
        t->add_bos = def->add_bos;
    t->pcre_gctx = pcre2_general_context_create(pcre_alloc, pcre_free, NULL);
    if (!t->pcre_gctx)
        return KZ_ENOMEM;
    for (int i = 0; i < TOK_MAX_STAGES && def->re[i]; i++) {
        struct tok_stage *st = &t->stages[t->n_stages];
        const char *re = def->re[i];
        if (strcmp(re, RE_GPT2) == 0) {
            st->kind = TOK_RE_GPT2;
        } else if (strcmp(re, RE_LLAMA3) == 0) {
            st->kind = TOK_RE_LLAMA3;
        } else if (strcmp(re, RE_QWEN2) == 0) {
            st->kind = TOK_RE_QWEN2;
        } else {
            rc = compile_stage(t, st, re, err);
            if (rc)
                return rc;
        }
        t->n_stages++;
    }
    return KZ_OK;
}

void kz_tok__pre_free(struct kz_tok *t)
{
    for (int i = 0; i < t->n_stages; i++) {
        pcre2_code_free(t->stages[i].code);
        t->stages[i].code = NULL;
    }
    t->n_stages = 0;
    pcre2_general_context_free(t->pcre_gctx);
    t->pcre_gctx = NULL;
}

/* ---- hand-written scanners ------------------------------------------------------ */

/* Scanner state over one fragment [ini, end) of the code points. */
struct scan {
    const uint32_t *cps;
    size_t ini, end;
    size_t prev;          /* end of the last emitted piece */
    struct tok_ids *out;
    kz_status rc;
};

#define OOR 0xFFFFFFFFu /* "outside the fragment" */

static uint32_t cpt_at(const struct scan *s, size_t pos) { return pos >= s->ini && pos < s->end ? s->cps[pos] : OOR; }

static unsigned flags_at(const struct scan *s, size_t pos)
{
    return pos >= s->ini && pos < s->end ? kz_tok__cpt_flags(s->cps[pos]) : 0;
}

static void emit(struct scan *s, size_t end)
{
    if (end > s->prev && !s->rc)
        s->rc = kz_tok__push(s->out, (int32_t)(end - s->prev));
    s->prev = end;
}

#define LNS (TOK_CPT_LETTER | TOK_CPT_NUMBER | TOK_CPT_SPACE)

/* 's|'t|'re|'ve|'m|'ll|'d (fold: also the upper-case forms). Returns the
 * length of the contraction at pos, 0 when there is none. */
static size_t contraction(const struct scan *s, size_t pos, int fold)
{
    uint32_t c1, c2;
    if (s->cps[pos] != '\'' || pos + 1 >= s->end)
        return 0;
    c1 = fold ? kz_tok__tolower(s->cps[pos + 1]) : s->cps[pos + 1];
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
        return 2;
    if (pos + 2 >= s->end)
        return 0;
    c2 = fold ? kz_tok__tolower(s->cps[pos + 2]) : s->cps[pos + 2];
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
        return 3;
    return 0;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void scan_gpt2(struct scan *s)
{
    size_t pos = s->ini;
    while (pos < s->end && !s->rc) {
        uint32_t cp = s->cps[pos];
        unsigned f2 = cp == ' ' ? flags_at(s, pos + 1) : flags_at(s, pos);
        size_t n = contraction(s, pos, 0), nws = 0;
        if (n) {
            pos += n;
            emit(s, pos);
            continue;
        }
        if (f2 & (TOK_CPT_LETTER | TOK_CPT_NUMBER)) {
            unsigned want = f2 & TOK_CPT_LETTER ? TOK_CPT_LETTER : TOK_CPT_NUMBER;
            pos += cp == ' ';
            while (flags_at(s, pos) & want)
                pos++;
            emit(s, pos);
            continue;
        }
        if (f2 && !(f2 & LNS)) {
            pos += cp == ' ';
            for (unsigned f = flags_at(s, pos); f && !(f & LNS); f = flags_at(s, pos))
                pos++;
            emit(s, pos);
            continue;
        }
        while (flags_at(s, pos + nws) & TOK_CPT_SPACE)
            nws++;
        if (nws > 1 && pos + nws < s->end) {
            pos += nws - 1; /* \s+(?!\S): leave the last space to the next word */
            emit(s, pos);
            continue;
        }
        pos += nws ? nws : 1;
        emit(s, pos);
    }
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}
 * | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static void scan_llama3(struct scan *s, size_t max_digits)
{
    size_t pos = s->ini;
    while (pos < s->end && !s->rc) {
        uint32_t cp = s->cps[pos];
        unsigned f = flags_at(s, pos), f2;
        size_t n = contraction(s, pos, 1), nws = 0, last_nl = 0;
        if (n) {
            pos += n;
            emit(s, pos);
            continue;
        }
        if (!(cp == '\r' || cp == '\n' || (f & TOK_CPT_NUMBER)) &&
            ((f & TOK_CPT_LETTER) || (flags_at(s, pos + 1) & TOK_CPT_LETTER))) {
            pos++;
            while (flags_at(s, pos) & TOK_CPT_LETTER)
                pos++;
            emit(s, pos);
            continue;
        }
        if (f & TOK_CPT_NUMBER) {
            size_t run = 0;
            while ((flags_at(s, pos) & TOK_CPT_NUMBER) && run < max_digits) {
                pos++;
                run++;
            }
            emit(s, pos);
            continue;
        }
        f2 = cp == ' ' ? flags_at(s, pos + 1) : f;
        if (f2 && !(f2 & LNS)) {
            pos += cp == ' ';
            for (unsigned g = flags_at(s, pos); g && !(g & LNS); g = flags_at(s, pos))
                pos++;
            while (cpt_at(s, pos) == '\r' || cpt_at(s, pos) == '\n')
                pos++;
            emit(s, pos);
            continue;
        }
        while (flags_at(s, pos + nws) & TOK_CPT_SPACE) {
            uint32_t c = s->cps[pos + nws];
            if (c == '\r' || c == '\n')
                last_nl = pos + nws + 1;
            nws++;
        }
        if (last_nl) {
            pos = last_nl; /* \s*[\r\n]+ ends at the last line break of the run */
            emit(s, pos);
            continue;
        }
        if (nws > 1 && pos + nws < s->end) {
            pos += nws - 1;
            emit(s, pos);
            continue;
        }
        pos += nws ? nws : 1;
        emit(s, pos);
    }
}

/* ---- PCRE2 stages ------------------------------------------------------------------ */

/* The two matching views of the whole text, built on first use. */
struct views {
    unsigned char *coll; /* (n) collapsed, one byte per code point */
    char *wide;          /* UTF-8, non-ASCII white space as \v */
    size_t *boff;        /* (n+1) byte offset of each code point in wide */
    uint32_t *cp_of;     /* (wide_len+1) code point index of each byte offset */
};

static kz_status build_coll(struct views *v, const uint32_t *cps, size_t n)
{
    v->coll = kz_malloc(n ? n : 1);
    if (!v->coll)
        return KZ_ENOMEM;
    for (size_t i = 0; i < n; i++)
        v->coll[i] = collapse_cpt(cps[i]);
    return KZ_OK;
}

static kz_status build_wide(struct views *v, const uint32_t *cps, size_t n)
{
    size_t len = 0;
    v->wide = kz_malloc(4 * n + 1);
    v->boff = kz_malloc((n + 1) * sizeof *v->boff);
    v->cp_of = kz_malloc((4 * n + 1) * sizeof *v->cp_of);
    if (!v->wide || !v->boff || !v->cp_of)
        return KZ_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = cps[i];
        size_t k;
        if (cp >= 0x80 && (kz_tok__cpt_flags(cp) & TOK_CPT_SPACE))
            cp = 0x0B;
        v->boff[i] = len;
        k = kz_tok__utf8_encode(cp, v->wide + len);
        for (size_t j = 0; j < k; j++)
            v->cp_of[len + j] = (uint32_t)i;
        len += k;
    }
    v->boff[n] = len;
    v->cp_of[len] = (uint32_t)n;
    return KZ_OK;
}

static kz_status run_pcre(const struct kz_tok *t, const struct tok_stage *st, struct views *v,
                          pcre2_match_data *md, size_t ini, size_t end, struct tok_ids *out)
{
    const unsigned char *subj;
    size_t len, pos = 0, last = 0; /* in subject units (bytes) */
    kz_status rc = KZ_OK;
    (void)t;

    if (st->collapsed) {
        subj = v->coll + ini;
        len = end - ini;
    } else {
        subj = (const unsigned char *)v->wide + v->boff[ini];
        len = v->boff[end] - v->boff[ini];
    }
/* subject offset -> code points from the fragment start */
#define CPS(off) (st->collapsed ? (off) : (size_t)v->cp_of[v->boff[ini] + (off)] - ini)
    while (pos < len && !rc) {
        int m = pcre2_match((const pcre2_code *)st->code, subj, len, pos, st->collapsed ? 0 : PCRE2_NO_UTF_CHECK,
                            md, NULL);
        PCRE2_SIZE *ov;
        if (m == PCRE2_ERROR_NOMATCH)
            break;
        if (m == PCRE2_ERROR_NOMEMORY)
            return KZ_ENOMEM;
        if (m < 0)
            return KZ_ELIMIT; /* match or heap limit on hostile input */
        ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) {
            /* an empty match cuts nothing; step one character on */
            pos = ov[0] + 1;
            if (!st->collapsed)
                while (pos < len && (subj[pos] & 0xC0) == 0x80)
                    pos++;
            continue;
        }
        if (ov[0] > last)
            rc = kz_tok__push(out, (int32_t)(CPS(ov[0]) - CPS(last)));
        if (!rc)
            rc = kz_tok__push(out, (int32_t)(CPS(ov[1]) - CPS(ov[0])));
        last = pos = ov[1];
    }
    if (!rc && last < len)
        rc = kz_tok__push(out, (int32_t)(CPS(len) - CPS(last)));
#undef CPS
    return rc;
}

kz_status kz_tok__pre_split(const struct kz_tok *t, const uint32_t *cps, size_t n, struct tok_ids *lens)
{
    struct views v = {0};
    struct tok_ids tmp = {0};
    pcre2_match_data *md = NULL;
    kz_status rc = KZ_OK;

    lens->n = 0;
    if (n == 0)
        return KZ_OK;
    rc = kz_tok__push(lens, (int32_t)n);
    for (int si = 0; si < t->n_stages && !rc; si++) {
        const struct tok_stage *st = &t->stages[si];
        size_t start = 0;
        struct tok_ids swap;
        tmp.n = 0;
        if (st->kind == TOK_RE_PCRE) {
            if (st->collapsed && !v.coll)
                rc = build_coll(&v, cps, n);
            else if (!st->collapsed && !v.wide)
                rc = build_wide(&v, cps, n);
            pcre2_match_data_free(md);
            md = rc ? NULL : pcre2_match_data_create_from_pattern((const pcre2_code *)st->code, t->pcre_gctx);
            if (!rc && !md)
                rc = KZ_ENOMEM;
        }
        for (size_t i = 0; i < lens->n && !rc; i++) {
            size_t end = start + (size_t)lens->p[i];
            struct scan s = {cps, start, end, start, &tmp, KZ_OK};
            switch (st->kind) {
            case TOK_RE_GPT2: scan_gpt2(&s); rc = s.rc; break;
            case TOK_RE_LLAMA3: scan_llama3(&s, 3); rc = s.rc; break;
            case TOK_RE_QWEN2: scan_llama3(&s, 1); rc = s.rc; break;
            case TOK_RE_PCRE: rc = run_pcre(t, st, &v, md, start, end, &tmp); break;
            }
            start = end;
        }
        swap = *lens;
        *lens = tmp;
        tmp = swap;
    }
    pcre2_match_data_free(md);
    kz_free(tmp.p);
    kz_free(v.coll);
    kz_free(v.wide);
    kz_free(v.boff);
    kz_free(v.cp_of);
    return rc;
}
