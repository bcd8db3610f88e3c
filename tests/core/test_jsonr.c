/* SPDX-License-Identifier: MIT
 * The fast JSON object reader against json_loadb: what it claims must be
 * exactly jansson's tree (same dump, key order and number types included);
 * what jansson refuses it must never claim; random documents written by
 * jansson (escapes, UTF-8, nesting, numbers) it must claim; and random
 * byte edits of them must never make it disagree.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/jsonr.h"
#include "t.h"

/* 1 when the reader's answer fits jansson's: not claimed, or the same tree. */
static int agrees(const char *text, size_t n, int *claimed)
{
    json_t *fast = kz_jr_object(text, n, 64);
    *claimed = fast != NULL;
    if (!fast)
        return 1;
    json_error_t je;
    json_t *ref = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    char *a = json_dumps(fast, JSON_COMPACT), *b = ref ? json_dumps(ref, JSON_COMPACT) : NULL;
    int ok = ref && a && b && strcmp(a, b) == 0 && json_equal(fast, ref);
    free(a);
    free(b);
    json_decref(fast);
    json_decref(ref);
    return ok;
}

static void claimed(void)
{
    static const char *const docs[] = {
        "{}",
        " \t\r\n{ } \n",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Say ok.\"}],\"max_tokens\":4}",
        "{\"a\":[],\"b\":{},\"c\":[[],[{}]],\"d\":null,\"e\":true,\"f\":false}",
        "{\"i\":0,\"n\":-0,\"big\":999999999999999999,\"neg\":-999999999999999999}",
        "{\"r\":0.5,\"e\":1e3,\"E\":-2.5E-3,\"p\":1e+2,\"z\":-0.0}",
        "{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"u\":\"\\u00e9\\u20AC\\ud83d\\ude00\",\"raw\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
        "{\"\\u006b\":1,\"k\\n\":{\"\\u006b\":2}}",
        "{\"del\":\"\x7f\",\"long\":\"0123456789abcdef0123456789abcdef0123456789abcdef\"}",
        "{ \"a\" : 1 , \"b\" : [ 1 , 2 ] }",
    };
    int bad = 0, unclaimed = 0;
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        int c;
        bad += !agrees(docs[i], strlen(docs[i]), &c);
        unclaimed += !c;
        if (!c)
            fprintf(stderr, "# not claimed: %s\n", docs[i]);
    }
    T_EQ_INT(bad, 0);
    T_EQ_INT(unclaimed, 0);
}

static void refused(void)
{
    static const char *const docs[] = {
        "", " ", "[]", "[1]", "1", "\"s\"", "null",          /* not an object */
        "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,}", "{\"a\":1 \"b\":2}", "{\"a\":1}}", "{\"a\":1} x",
        "{'a':1}", "{a:1}", "{\"a\":[1,]}", "{\"a\":[1 2]}",
        "{\"a\":1,\"a\":2}",                                 /* duplicate */
        "{\"a\":\"\\u0000\"}", "{\"\\u0000\":1}",           /* U+0000 */
        "{\"a\":\"\\ud83d\"}", "{\"a\":\"\\ude00\"}", "{\"a\":\"\\ud83d\\u0041\"}", /* surrogates */
        "{\"a\":\"\\x\"}", "{\"a\":\"\\u12g4\"}", "{\"a\":\"\\u12\"}",
        "{\"a\":\"\x01\"}", "{\"a\":\"\n\"}", "{\"a\":\"\xc3\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xff\"}",
        "{\"a\":01}", "{\"a\":-}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}", "{\"a\":+1}", "{\"a\":0x10}",
        "{\"a\":1234567890123456789}",                       /* 19 digits: jansson's to judge */
        "{\"a\":1e999}", "{\"a\":-1e999}", "{\"a\":1e-320}", /* out of strtod's range */
        "{\"a\":tru}", "{\"a\":nul}", "{\"a\":True}",
        "{\"a\":1}\0",
    };
    int bad = 0, claimed_some = 0;
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        size_t n = strlen(docs[i]) + (strcmp(docs[i], "{\"a\":1}") == 0); /* the last one keeps its NUL */
        json_t *v = kz_jr_object(docs[i], n, 64);
        if (v) {
            claimed_some++;
            fprintf(stderr, "# claimed: %s\n", docs[i]);
        }
        json_decref(v);
        int c;
        bad += !agrees(docs[i], n, &c);
    }
    T_EQ_INT(claimed_some, 0);
    T_EQ_INT(bad, 0);
    /* nesting: claimed up to max_depth, beyond it left to jansson */
    char deep[200];
    size_t n = 0;
    for (int i = 0; i < 10; i++)
        n += (size_t)sprintf(deep + n, "{\"a\":");
    n += (size_t)sprintf(deep + n, "1");
    for (int i = 0; i < 10; i++)
        deep[n++] = '}';
    json_t *v10 = kz_jr_object(deep, n, 10), *v9 = kz_jr_object(deep, n, 9);
    T_OK(v10 && !v9, "ten levels: claimed with max_depth 10, not with 9");
    json_decref(v10);
    json_decref(v9);
}

static unsigned rng = 99;

static unsigned next(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

static json_t *random_string(void)
{
    static const char *const bits[] = {"a", "key", " ", "\"", "\\", "/", "\n", "\t", "\x01", "\x1f", "\x7f",
                                       "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "0123456789abcdef"};
    char s[256];
    size_t n = 0, parts = next() % 12;
    for (size_t i = 0; i < parts; i++) {
        const char *b = bits[next() % (sizeof bits / sizeof bits[0])];
        size_t l = strlen(b);
        if (n + l < sizeof s) {
            memcpy(s + n, b, l);
            n += l;
        }
    }
    return json_stringn(s, n);
}

static json_t *random_value(int depth)
{
    switch (next() % (depth > 4 ? 6 : 8)) {
    case 0:
        return json_integer((json_int_t)(next() % 2000000) - 1000000);
    case 1:
        return json_integer(((json_int_t)next() << 24 | next()) % 999999999999999999LL);
    case 2:
        return json_real(((double)next() - 8e6) / (1 + next() % 1000) * (next() % 2 ? 1e-5 : 1e12));
    case 3:
        return random_string();
    case 4:
        return next() % 2 ? json_true() : json_false();
    case 5:
        return json_null();
    case 6: {
        json_t *a = json_array();
        for (unsigned i = 0, k = next() % 5; i < k; i++)
            json_array_append_new(a, random_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (unsigned i = 0, k = next() % 6; i < k; i++) {
            json_t *key = random_string();
            json_object_set_new(o, json_string_value(key), random_value(depth + 1));
            json_decref(key);
        }
        return o;
    }
    }
}

static void random_documents(void)
{
    static const size_t flag_sets[] = {JSON_COMPACT, JSON_INDENT(2), JSON_ENSURE_ASCII | JSON_COMPACT,
                                       JSON_ESCAPE_SLASH | JSON_INDENT(1) | JSON_ENSURE_ASCII};
    int bad = 0, unclaimed = 0, edits_claimed = 0;
    for (int round = 0; round < 3000; round++) {
        json_t *o = json_object();
        for (unsigned i = 0, k = next() % 6; i < k; i++) {
            char key[16];
            snprintf(key, sizeof key, "k%u", next() % 10);
            json_object_set_new(o, key, random_value(1));
        }
        char *text = json_dumps(o, flag_sets[round % 4]);
        json_decref(o);
        if (!text)
            continue;
        size_t n = strlen(text);
        int c;
        bad += !agrees(text, n, &c);
        unclaimed += !c;
        /* a few byte edits: whatever the reader claims, jansson must read alike */
        for (int e = 0; e < 8 && n; e++) {
            char *t = kz_malloc(n);
            memcpy(t, text, n);
            static const char edit[] = "{}[],:\"\\u0 -.e1\x80\xff";
            t[next() % n] = edit[next() % (sizeof edit - 1)];
            bad += !agrees(t, n, &c);
            edits_claimed += c;
            kz_free(t);
        }
        free(text);
    }
    T_EQ_INT(bad, 0);
    T_EQ_INT(unclaimed, 0);
    T_OK(edits_claimed > 0, "some edited documents were still claimed (%d)", edits_claimed);
}

int main(void)
{
    t_subtest("claimed", claimed);
    t_subtest("refused", refused);
    t_subtest("random_documents", random_documents);
    return t_done();
}
