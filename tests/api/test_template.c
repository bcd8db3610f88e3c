/* SPDX-License-Identifier: MIT
 * The template language, construct by construct: expressions, filters,
 * tests, methods, statements, whitespace control, errors, limits, the
 * compile-once/render-many API, allocation failure and the `kyozon
 * template` command.
 *
 * The `cases` table holds renderings recorded from Jinja2 3.1.6 configured
 * as Hugging Face transformers configures it (ImmutableSandboxedEnvironment,
 * trim_blocks, lstrip_blocks, loopcontrols, raise_exception, strftime_now at
 * 2026-11-22 12:00:00, tojson = json.dumps(ensure_ascii=False)). To add a
 * case, render it there and append {template, context JSON, expected text,
 * NULL}; for a template that must fail, give NULL and a substring of our
 * error message instead.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/template.h"
#include "core/alloc.h"
#include "t.h"

int kz_cmd_template(int argc, char **argv);

static int frozen_clock(void *ud, struct tm *now)
{
    (void)ud;
    memset(now, 0, sizeof *now);
    now->tm_year = 2026 - 1900;
    now->tm_mon = 10;
    now->tm_mday = 22;
    now->tm_hour = 12;
    now->tm_wday = 0;
    now->tm_yday = 325;
    return 0;
}

static const struct kz_template_opts frozen = {.clock = frozen_clock};

struct tcase {
    const char *tmpl;
    const char *ctx;      /* JSON object */
    const char *expected; /* NULL: must fail */
    const char *error;    /* substring of the message when it must fail */
};

static const struct tcase cases[] = {
    {"{{ 'a' ~ 1 ~ none ~ true }}",
     "{}",
     "a1NoneTrue", NULL},
    {"{{ 1 + 2 * 3 - 4 / 2 }}",
     "{}",
     "5.0", NULL},
    {"{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }}",
     "{}",
     "3 -4 1 2 -2 1024 0.5", NULL},
    {"{{ 7.5 // 2 }} {{ -7.5 % 2 }} {{ 1 / 3 }} {{ 10 / 2 }} {{ 1e20 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1.5e16 }} {{ 123456789.123 }}",
     "{}",
     "3.0 0.5 0.3333333333333333 5.0 1e+20 0.0001 1e-05 1.5e+16 123456789.123", NULL},
    {"{{ 'abc'[0] }}{{ 'abc'[-1] }}{{ 'abcdef'[1:3] }}{{ 'abcdef'[::-1] }}{{ 'abcdef'[::2] }}{{ [1,2,3][1:] }}{{ [1,2,3][:-1] }}",
     "{}",
     "acbcfedcbaace[2, 3][1, 2]", NULL},
    {"{{ '日本語😀'[::-1] }}|{{ '日本語😀'[1:3] }}|{{ '日本語😀'|length }}|{{ '日本語😀'[-1] }}",
     "{}",
     "😀語本日|本語|4|😀", NULL},
    {"{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/{{ loop.last }}/{{ loop.length }};{% endfor %}",
     "{\"messages\": [{\"role\": \"system\", \"content\": \"Be nice.\"}, {\"role\": \"user\", \"content\": \"Hi  there \"}, {\"role\": \"assistant\", \"content\": \"Hello!\"}, {\"role\": \"user\", \"content\": \"日本語 😀 ok\"}], \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"tools\": null}",
     "1/0/4/3/True/False/4;2/1/3/2/False/False/4;3/2/2/1/False/False/4;4/3/1/0/False/True/4;", NULL},
    {"{% for m in [] %}x{% else %}empty{% endfor %}",
     "{}",
     "empty", NULL},
    {"{% for k, v in {'a': 1, 'b': [2]}.items() %}{{ k }}={{ v }},{% endfor %}",
     "{}",
     "a=1,b=[2],", NULL},
    {"{% for k, v in d|items %}{{ k }}={{ v }},{% endfor %}",
     "{\"d\": {\"x\": 1, \"y\": null}}",
     "x=1,y=None,", NULL},
    {"{% for m in messages if m.role == 'user' %}{{ loop.index }}:{{ m.content }}{{ ',' if not loop.last }}{% endfor %}",
     "{\"messages\": [{\"role\": \"system\", \"content\": \"Be nice.\"}, {\"role\": \"user\", \"content\": \"Hi  there \"}, {\"role\": \"assistant\", \"content\": \"Hello!\"}, {\"role\": \"user\", \"content\": \"日本語 😀 ok\"}], \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"tools\": null}",
     "1:Hi  there ,2:日本語 😀 ok", NULL},
    {"{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}",
     "{}",
     "0134", NULL},
    {"{% if x %}a{% elif y %}b{% else %}c{% endif %}",
     "{\"y\": 1}",
     "b", NULL},
    {"{% if x %}a{% elif y %}b{% else %}c{% endif %}",
     "{}",
     "c", NULL},
    {"{% set ns = namespace(a=1, b='x') %}{% set ns.a = ns.a + 1 %}{{ ns.a }}{{ ns.b }}",
     "{}",
     "2x", NULL},
    {"{% set ns = namespace() %}{% set ns.c = 5 %}{{ ns.c }}",
     "{}",
     "5", NULL},
    {"{% set x = 1 %}{% for i in [1,2] %}{% set x = i %}{{ x }}{% endfor %}{{ x }}",
     "{}",
     "121", NULL},
    {"{% set a, b = 1, 2 %}{{ a }}{{ b }}",
     "{}",
     "12", NULL},
    {"{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}]",
     "{}",
     "[inner 2]", NULL},
    {"{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 'a' is string }}{{ {} is mapping }}{{ [] is iterable }}{{ 1 is number }}{{ [] is sequence }}{{ true is boolean }}{{ true is true }}{{ false is false }}{{ 1 is integer }}{{ 1.0 is float }}",
     "{}",
     "FalseTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrue", NULL},
    {"{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 'a' is equalto 'a' }}{{ 2 is gt 1 }}{{ x is not none }}{{ 'a' is in 'abc' }}{{ 1 is sameas 1 }}",
     "{\"x\": null}",
     "TrueTrueTrueTrueTrueFalseTrueTrue", NULL},
    {"{{ 'a' in 'cat' }}{{ 'z' not in 'cat' }}{{ 1 in [1,2] }}{{ 'k' in {'k': 1} }}{{ 'k' in d }}",
     "{\"d\": {\"k\": 0}}",
     "TrueTrueTrueTrueTrue", NULL},
    {"{{ 1 < 2 < 3 }}{{ 3 > 2 > 2 }}{{ 'a' < 'b' }}{{ [1,2] < [1,3] }}{{ 1 == 1.0 }}{{ true == 1 }}",
     "{}",
     "TrueFalseTrueTrueTrueTrue", NULL},
    {"{{ 'yes' if x else 'no' }}|{{ 'yes' if y }}|",
     "{\"x\": 0}",
     "no||", NULL},
    {"{{ [1, 'a', none, true, 1.5, {'k': [1]}] }}",
     "{}",
     "[1, 'a', None, True, 1.5, {'k': [1]}]", NULL},
    {"{{ {'a': 1, 'b': \"it's\"} }}{{ ('a',) }}{{ (1, 2) }}{{ () }}",
     "{}",
     "{'a': 1, 'b': \"it's\"}('a',)(1, 2)()", NULL},
    {"{{ 'a\\tb\\n\\\\ \\'q\\' \\\"d\\\" \\x41\\u00e9\\U0001F600' }}",
     "{}",
     "a\tb\n\\ 'q' \"d\" Aé😀", NULL},
    {"{{ \"x\" 'y' \"z\" }}",
     "{}",
     "xyz", NULL},
    {"{{ '  hi  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'Hello World'|upper }}{{ 'Hello'|lower }}|{{ 'hello wORLD-foo(bar'|title }}|{{ 'hELLO'|capitalize }}",
     "{}",
     "hi|hi|HELLO WORLDhello|Hello World-Foo(Bar|Hello", NULL},
    {"{{ 'aXbXc'|replace('X', '-') }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ 'ab'|replace('', '.') }}",
     "{}",
     "a-b-c|bba|.a.b.", NULL},
    {"{{ [1,2,3]|join(', ') }}|{{ ['a','b']|join }}|{{ messages|map(attribute='role')|join(',') }}",
     "{\"messages\": [{\"role\": \"system\", \"content\": \"Be nice.\"}, {\"role\": \"user\", \"content\": \"Hi  there \"}, {\"role\": \"assistant\", \"content\": \"Hello!\"}, {\"role\": \"user\", \"content\": \"日本語 😀 ok\"}], \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"tools\": null}",
     "1, 2, 3|ab|system,user,assistant,user", NULL},
    {"{{ [3,1,2]|first }}{{ [3,1,2]|last }}{{ 'abc'|first }}{{ []|first is defined }}",
     "{}",
     "32aFalse", NULL},
    {"{{ x|default('d') }}|{{ ''|default('d') }}|{{ ''|default('d', true) }}|{{ none|d('n') }}",
     "{}",
     "d||d|None", NULL},
    {"{{ 1|string ~ 'x' }}{{ '42'|int + 1 }}{{ '4.7'|int }}{{ 'abc'|int }}{{ 'abc'|int(7) }}{{ '3.5'|float }}{{ 'x'|float }}{{ 3.9|int }}{{ true|int }}",
     "{}",
     "1x434073.50.031", NULL},
    {"{{ 'abc'|list }}{{ {'a': 1}|list }}{{ {'a': 1, 'b': 2}|items|list }}",
     "{}",
     "['a', 'b', 'c']['a'][('a', 1), ('b', 2)]", NULL},
    {"{{ messages|selectattr('role', 'equalto', 'user')|list|length }}{{ messages|rejectattr('role', 'equalto', 'user')|map(attribute='content')|list }}",
     "{\"messages\": [{\"role\": \"system\", \"content\": \"Be nice.\"}, {\"role\": \"user\", \"content\": \"Hi  there \"}, {\"role\": \"assistant\", \"content\": \"Hello!\"}, {\"role\": \"user\", \"content\": \"日本語 😀 ok\"}], \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"tools\": null}",
     "2['Be nice.', 'Hello!']", NULL},
    {"{{ [1, 0, 2, none]|select|list }}{{ [1,2,3,4]|select('odd')|list }}{{ [1,2,3,4]|reject('even')|list }}{{ ['a','b']|reject('equalto', 'a')|list }}",
     "{}",
     "[1, 2][1, 3][1, 3]['b']", NULL},
    {"{{ ['a','b']|map('upper')|list }}{{ [{'a': {'b': 1}}]|map(attribute='a.b')|list }}{{ [{}]|map(attribute='z', default='D')|list }}",
     "{}",
     "['A', 'B'][1]['D']", NULL},
    {"{{ '<b>&\"\\''|e }}|{{ '<b>'|safe }}|{{ '<b>'|escape }}",
     "{}",
     "&lt;b&gt;&amp;&#34;&#39;|<b>|&lt;b&gt;", NULL},
    {"{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb\\n'|indent(2, blank=true) }}|{{ 'a\\nb'|indent('--') }}",
     "{}",
     "a\n    b\n\n    c|  a\n  b|a\n  \n  b\n  |a\n--b", NULL},
    {"{{ 2.5|round }}{{ 3.5|round }}{{ 2.675|round(2) }}{{ 2.1|round(0, 'ceil') }}{{ 2.9|round(method='floor') }}{{ 5|round }}{{ -3|abs }}{{ -2.5|abs }}",
     "{}",
     "2.04.02.673.02.0532.5", NULL},
    {"{{ ['a','A','b', 'a']|unique|list }}{{ [3,1,2]|sort }}{{ [3,1,2]|sort(reverse=true) }}{{ ['b','A','a']|sort }}{{ [{'n': 2}, {'n': 1}]|sort(attribute='n') }}",
     "{}",
     "['a', 'b'][1, 2, 3][3, 2, 1]['A', 'a', 'b'][{'n': 1}, {'n': 2}]", NULL},
    {"{{ {'b': 1, 'a': 2}|dictsort }}{{ [1,2,3]|sum }}{{ [1,2.5]|sum }}{{ [3,1,2]|max }}{{ [3,1,2]|min }}{{ 'abc'|reverse }}{{ [1,2]|reverse|list }}",
     "{}",
     "[('a', 2), ('b', 1)]63.531cba[2, 1]", NULL},
    {"{{ {'a': 'é', 'b': [1, 2.5, true, none]}|tojson }}|{{ {'a': {'b': []}, 'c': {}}|tojson(indent=2) }}|{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}|{{ [1,2]|tojson(separators=(',', ':')) }}",
     "{}",
     "{\"a\": \"é\", \"b\": [1, 2.5, true, null]}|{\n  \"a\": {\n    \"b\": []\n  },\n  \"c\": {}\n}|{\"a\": 2, \"b\": 1}|[1,2]", NULL},
    {"{{ 'x\\u0001\\n\"\\\\'|tojson }}{{ 'é😀'|tojson(ensure_ascii=true) }}{{ 1.0|tojson }}{{ 'a'|tojson(indent=4) }}",
     "{}",
     "\"x\\u0001\\n\\\"\\\\\"\"\\u00e9\\ud83d\\ude00\"1.0\"a\"", NULL},
    {"{{ '  a b  c '.strip() }}|{{ 'xxaxx'.lstrip('x') }}|{{ 'xxaxx'.rstrip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b c '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}",
     "{}",
     "a b  c|axx|xxa|['a', 'b', '', 'c']|['a', 'b', 'c']|['a', 'b c']|['a,b', 'c']", NULL},
    {"{{ 'hello'.startswith('he') }}{{ 'hello'.endswith(('x', 'lo')) }}{{ 'Hi'.upper() }}{{ 'Hi'.lower() }}{{ 'a-b c'.replace('-', '+') }}{{ \"they're bill's\".title() }}",
     "{}",
     "TrueTrueHIhia+b cThey'Re Bill'S", NULL},
    {"{{ 'Hello {}, {name}! {{x}}'.format('A', name='B') }}|{{ '{0}{1}{0}'.format('a', 'b') }}",
     "{}",
     "Hello A, B! {x}|aba", NULL},
    {"{{ d.get('a') }}{{ d.get('z') }}{{ d.get('z', 'dflt') }}{{ d.keys()|list }}{{ d.values()|list }}{{ d.items()|list }}",
     "{\"d\": {\"a\": 1, \"b\": 2}}",
     "1Nonedflt['a', 'b'][1, 2][('a', 1), ('b', 2)]", NULL},
    {"{{ raise_exception('Bad thing') }}",
     "{}",
     NULL, "template line 1: raise_exception: Bad thing"},
    {"{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S %A %j') }}",
     "{}",
     "22 Nov 2026|2026-11-22 12:00:00 Sunday 326", NULL},
    {"  {% if true %}\n    x\n  {% endif %}\n  y\n",
     "{}",
     "    x\n  y", NULL},
    {"a  {%- if true -%}  b  {%- endif -%}  c",
     "{}",
     "abc", NULL},
    {"a\n  {{- 'b' -}}  \n c",
     "{}",
     "abc", NULL},
    {"a\n  {# comment #}\nb\n{#- c2 -#}  \nc",
     "{}",
     "a\nbc", NULL},
    {"{% raw %}{{ not rendered }}{% endraw %}|{%- raw -%} x {%- endraw -%}|",
     "{}",
     "{{ not rendered }}|x|", NULL},
    {"  {%+ if true %}x{% endif +%}\ny",
     "{}",
     "  x\ny", NULL},
    {"line1\r\nline2\r\n{% if true %}\r\nz{% endif %}\r\n",
     "{}",
     "line1\nline2\nz", NULL},
    {"{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} {{ greet('B', '?') }} {{ greet(punct='.', name='C') }}",
     "{}",
     "Hi A! Hi B? Hi C.", NULL},
    {"{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a is defined }}",
     "{}",
     "3False", NULL},
    {"{% filter upper %}abc {{ 'd' }}{% endfilter %}",
     "{}",
     "ABC D", NULL},
    {"{{ messages[0]['content'] }}{{ messages[0].content }}{{ messages[1:]|length }}{{ messages[-1].role }}{{ messages[10] is defined }}",
     "{\"messages\": [{\"role\": \"system\", \"content\": \"Be nice.\"}, {\"role\": \"user\", \"content\": \"Hi  there \"}, {\"role\": \"assistant\", \"content\": \"Hello!\"}, {\"role\": \"user\", \"content\": \"日本語 😀 ok\"}], \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"tools\": null}",
     "Be nice.Be nice.3userFalse", NULL},
    {"{{ x.y }}",
     "{}",
     NULL, "template line 1: 'x' is undefined"},
    {"{{ x.y is defined }}",
     "{\"x\": {}}",
     "False", NULL},
    {"{{ m.content.content is defined }}",
     "{\"m\": {\"content\": \"str\"}}",
     "False", NULL},
    {"{{ 1 + 'a' }}",
     "{}",
     NULL, "template line 1: unsupported operand type(s) for +: 'int' and 'str'"},
    {"{{ 'a' + x }}",
     "{}",
     NULL, "template line 1: 'x' is undefined"},
    {"{{ x + 1 }}",
     "{\"x\": null}",
     NULL, "template line 1: unsupported operand type(s) for +: 'NoneType' and 'int'"},
    {"{% for x in 5 %}{% endfor %}",
     "{}",
     NULL, "template line 1: 'int' object is not iterable"},
    {"{{ 1 / 0 }}",
     "{}",
     NULL, "template line 1: division by zero"},
    {"{{ 'abc' * 3 }}{{ [1] * 2 }}{{ 3 * 'x' }}",
     "{}",
     "abcabcabc[1, 1]xxx", NULL},
    {"{{ -x }}{{ +3 }}{{ not x }}{{ not not x }}",
     "{\"x\": 2}",
     "-23FalseTrue", NULL},
    {"{{ x or 'b' }}{{ x and 'b' }}{{ 'a' and 'b' }}{{ 0 or none }}",
     "{\"x\": \"\"}",
     "bbNone", NULL},
    {"{{ true }}{{ True }}{{ none }}{{ None }}{{ false }}",
     "{}",
     "TrueTrueNoneNoneFalse", NULL},
    {"{{ 'a' 'b' }}{{ \"a\\\"b\" }}",
     "{}",
     "aba\"b", NULL},
    {"{% set l = [1, 2, 3] %}{{ l|length }}{{ l|count }}{{ {'a': 1}|length }}{{ x|length }}",
     "{}",
     "3310", NULL},
    {"{{ loop }}",
     "{}",
     "", NULL},
    {"{% for a in [1,2] %}{% for b in [3,4] %}{{ loop.index }}{% endfor %}{{ loop.index }}{% endfor %}",
     "{}",
     "121122", NULL},
    {"{% for x in [1,2,3] %}{{ loop.cycle('a','b') }}{{ loop.previtem }}{{ loop.nextitem }}|{% endfor %}",
     "{}",
     "a2|b13|a2|", NULL},
    {"{{ '%s is %d years, %.2f' % ('Bob', 30, 1.5) }}|{{ '%5s|%-5s|' % ('a', 'b') }}|{{ '%x' % 255 }}|{{ 'hi %s' % 'x' }}|{{ '%%' % () }}",
     "{}",
     "Bob is 30 years, 1.50|    a|b    ||ff|hi x|%", NULL},
    {"{{ '%s and %s'|format('a', 'b') }}",
     "{}",
     "a and b", NULL},
    {"{{ 'a' < 1 }}",
     "{}",
     NULL, "template line 1: '<' not supported between instances of 'str' and 'int'"},
    {"{{ foo(1) }}",
     "{}",
     NULL, "template line 1: 'foo' is undefined"},
    {"{{ 'x'|nosuchfilter }}",
     "{}",
     NULL, "template line 1: unknown filter 'nosuchfilter'"},
    {"{% if 1 is nosuchtest %}{% endif %}",
     "{}",
     NULL, "template line 1: unknown test 'nosuchtest'"},
    {"{{ [1,2,3][5] }}|{{ {'a': 1}['b'] }}|",
     "{}",
     "||", NULL},
    {"{{ range(3)|list }}{{ range(1, 10, 3)|list }}{{ range(5, 0, -2)|list }}",
     "{}",
     "[0, 1, 2][1, 4, 7][5, 3, 1]", NULL},
    {"{{ dict(a=1) }}{{ namespace(a=1).a }}",
     "{}",
     "{'a': 1}1", NULL},
    {"{{ 'ß'|upper }}{{ 'ÀÉ'|lower }}",
     "{}",
     "SSàé", NULL},
    {"{{ 1.0 }}{{ 1.5 }}{{ -0.0 }}{{ 100.0 }}{{ 1e100 }}{{ 3.14159 }}{{ 2.0 ** 0.5 }}",
     "{}",
     "1.01.5-0.0100.01e+1003.141591.4142135623730951", NULL},
    {"{{ x }}",
     "{\"x\": 1.0}",
     "1.0", NULL},
    {"{{ x }}{{ x|tojson }}",
     "{\"x\": 1e-07}",
     "1e-071e-07", NULL},
    {"{{ 'a,b'.split(',')[-1] }}{{ 'x</think>y'.split('</think>')[0] }}",
     "{}",
     "bx", NULL},
    {"{{ 'abc'.find('c') }}{{ 'abc'.find('z') }}{{ 'abca'.count('a') }}{{ '-'.join(['a','b']) }}{{ 'a1'.isalnum() }}{{ '12'.isdigit() }}",
     "{}",
     "2-12a-bTrueTrue", NULL},
};

/* Renders tmpl over ctx_json; returns the status, *out (kz_free) and err. */
static kz_status render(const char *tmpl, const char *ctx_json, const struct kz_template_opts *o, char **out,
                        size_t *out_len, struct kz_err *err)
{
    json_error_t je;
    json_t *ctx = json_loads(ctx_json, 0, &je);
    if (!ctx) {
        fprintf(stderr, "bad test context: %s\n", ctx_json);
        abort();
    }
    kz_status rc = kz_template_render(tmpl, strlen(tmpl), ctx, o, out, out_len, err);
    json_decref(ctx);
    return rc;
}

static void test_recorded(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct tcase *c = &cases[i];
        char *out = NULL;
        size_t len = 0;
        struct kz_err err = {{0}};
        kz_status rc = render(c->tmpl, c->ctx, &frozen, &out, &len, &err);
        if (c->expected) {
            T_OK(rc == KZ_OK && len == strlen(c->expected) && memcmp(out, c->expected, len) == 0,
                 "case %zu %s: got [%s] (%s), want [%s]", i, c->tmpl, out ? out : "", err.msg, c->expected);
        } else {
            T_OK(rc != KZ_OK && out == NULL && strstr(err.msg, c->error) != NULL,
                 "case %zu %s: want an error containing \"%s\", got status %d \"%s\"", i, c->tmpl, c->error,
                 (int)rc, err.msg);
        }
        kz_free(out);
    }
}

/* Status and exact message for the errors users see. */
static void test_errors(void)
{
    static const struct {
        const char *tmpl;
        kz_status status;
        const char *msg;
    } e[] = {
        {"{{ x|nosuchfilter }}", KZ_EUNSUPPORTED, "template line 1: unknown filter 'nosuchfilter'"},
        {"a\nb\n{% if x is frobbed %}{% endif %}", KZ_EUNSUPPORTED, "template line 3: unknown test 'frobbed'"},
        {"\n\n{{ raise_exception('System role not supported') }}", KZ_EINVAL,
         "template line 3: raise_exception: System role not supported"},
        {"{% if true %}\nx", KZ_EPROTO, "template line 1: missing {% endif %} for the block opened here"},
        {"{% for x in y %}{% endif %}", KZ_EPROTO, "template line 1: unexpected tag 'endif'"},
        {"\n{% frob %}", KZ_EPROTO, "template line 2: unknown tag 'frob'"},
        {"{% include 'x.html' %}", KZ_EUNSUPPORTED, "template line 1: unsupported tag 'include'"},
        {"{{ 'abc }}", KZ_EPROTO, "template line 1: unterminated string literal"},
        {"{{ 1 + }}", KZ_EPROTO, "template line 1: expected an expression, got '}}'"},
        {"{{ x ) }}", KZ_EPROTO, "template line 1: unexpected ')'"},
        {"{{ x", KZ_EPROTO, "template line 1: unclosed '{{'"},
        {"{# x", KZ_EPROTO, "template line 1: unclosed comment"},
        {"{% break %}", KZ_EPROTO, "template line 1: 'break' outside a loop"},
        {"{{ a.b }}", KZ_EINVAL, "template line 1: 'a' is undefined"},
        {"{{ {}.b.c }}", KZ_EINVAL, "template line 1: object has no attribute 'b'"},
        {"{{ 1 + 'a' }}", KZ_EINVAL, "template line 1: unsupported operand type(s) for +: 'int' and 'str'"},
        {"{% set x.y = 1 %}", KZ_EINVAL, "cannot assign attribute on non-namespace object"},
        {"{{ 1 // 0 }}", KZ_EINVAL, "template line 1: integer division or modulo by zero"},
        {"{{ 9223372036854775807 + 1 }}", KZ_EUNSUPPORTED, "integer overflow"},
        {"{{ range(1000000)|length }}", KZ_ELIMIT, "range() of more than 100000 items"},
        {"{% raw %}x", KZ_EPROTO, "missing {% endraw %}"},
        {"{% call m() %}{% endcall %}", KZ_EUNSUPPORTED, "unsupported tag 'call'"},
    };
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
        char *out = NULL;
        size_t len = 0;
        struct kz_err err = {{0}};
        kz_status rc = render(e[i].tmpl, "{}", &frozen, &out, &len, &err);
        T_OK(rc == e[i].status && strstr(err.msg, e[i].msg) && !out && len == 0,
             "%s: got status %d \"%s\", want %d \"%s\"", e[i].tmpl, (int)rc, err.msg, (int)e[i].status, e[i].msg);
        kz_free(out);
    }
}

/* Templates written to exhaust something must stop with KZ_ELIMIT. */
static void test_limits(void)
{
    static const struct {
        const char *tmpl;
        const char *msg;
    } e[] = {
        {"{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}", "steps"},
        {"{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nesting deeper"},
        {"{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
         "memory limit"},
        {"{% for i in range(100000) %}{{ 'abcdefghij' * 100 }}{% endfor %}", "output is over"},
        {"{{ 'x' * 100000000000 }}", "memory limit"},
    };
    struct kz_template_opts o = frozen;
    o.max_steps = 1000000;
    o.max_memory = 8 << 20;
    o.max_output = 1 << 20;
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
        char *out = NULL;
        size_t len = 0;
        struct kz_err err = {{0}};
        kz_status rc = render(e[i].tmpl, "{}", &o, &out, &len, &err);
        T_OK(rc == KZ_ELIMIT && strstr(err.msg, e[i].msg) && !out, "%s: status %d \"%s\", want KZ_ELIMIT \"%s\"",
             e[i].tmpl, (int)rc, err.msg, e[i].msg);
        kz_free(out);
    }
    /* A cap exactly at the output size passes; one byte less fails. */
    char *out = NULL;
    size_t len = 0;
    struct kz_err err = {{0}};
    o.max_output = 5;
    T_EQ_INT(render("{{ 'ab' }}cde", "{}", &o, &out, &len, &err), KZ_OK);
    kz_free(out);
    o.max_output = 4;
    T_EQ_INT(render("{{ 'ab' }}cde", "{}", &o, &out, &len, &err), KZ_ELIMIT);
    /* Deeply nested source is refused at compile time, not on the stack. */
    char deep[4096];
    size_t k = 0;
    k += (size_t)snprintf(deep + k, sizeof deep - k, "{{ ");
    for (int i = 0; i < 1000; i++)
        deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 1000; i++)
        deep[k++] = ')';
    snprintf(deep + k, sizeof deep - k, " }}");
    struct kz_template *t = NULL;
    T_EQ_INT(kz_template_compile(deep, strlen(deep), &t, &err), KZ_ELIMIT);
    T_OK(t == NULL, "no template on failure");
}

static void test_api(void)
{
    struct kz_err err = {{0}};
    struct kz_template *t = NULL;
    const char *src = "{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}{{ x }}";
    T_EQ_INT(kz_template_compile(src, strlen(src), &t, &err), KZ_OK);
    /* render many times from one compiled template, with changing contexts */
    for (int i = 0; i < 3; i++) {
        char ctxs[256], want[256];
        snprintf(ctxs, sizeof ctxs, "{\"messages\": [{\"role\": \"user\", \"content\": \"m%d\"}], \"x\": %d}", i, i);
        snprintf(want, sizeof want, "[user:m%d]%d", i, i);
        json_t *ctx = json_loads(ctxs, 0, NULL);
        char *out = NULL;
        size_t len = 0;
        T_EQ_INT(kz_template_render_compiled(t, ctx, NULL, &out, &len, &err), KZ_OK);
        T_EQ_STR(out, want);
        T_EQ_INT(len, strlen(want));
        kz_free(out);
        json_decref(ctx);
    }
    /* NULL context and NULL options: no variables, default limits */
    char *out = NULL;
    size_t len = 99;
    T_EQ_INT(kz_template_render_compiled(t, NULL, NULL, &out, &len, &err), KZ_OK);
    T_EQ_STR(out, "");
    T_EQ_INT(len, 0);
    kz_free(out);
    /* a context that is no object */
    json_t *arr = json_array();
    T_EQ_INT(kz_template_render_compiled(t, arr, NULL, &out, &len, &err), KZ_EINVAL);
    T_OK(out == NULL && strstr(err.msg, "object"), "non-object context refused: %s", err.msg);
    json_decref(arr);
    kz_template_free(t);
    kz_template_free(NULL);
    /* template text need not be NUL-terminated; embedded NUL bytes pass */
    const char raw[] = {'a', '\0', 'b', '{', '{', ' ', '1', ' ', '}', '}', 'X'};
    T_EQ_INT(kz_template_render(raw, 10, NULL, NULL, &out, &len, &err), KZ_OK);
    T_OK(len == 4 && memcmp(out, "a\0b1", 4) == 0, "bytes kept, length honoured");
    kz_free(out);
    /* the default clock works and strftime_now formats it */
    T_EQ_INT(render("{{ strftime_now('%Y') }}", "{}", NULL, &out, &len, &err), KZ_OK);
    T_OK(len == 4 && out[0] == '2', "strftime_now with the real clock: %s", out);
    kz_free(out);
    /* unknown conversions are copied, not handed to strftime */
    T_EQ_INT(render("{{ strftime_now('%d %Q %-d%') }}", "{}", &frozen, &out, &len, &err), KZ_OK);
    T_EQ_STR(out, "22 %Q 22%");
    kz_free(out);
}

/* Every allocation in a render may fail: the result is a clean error. */
static void test_alloc_failure(void)
{
    const char *tmpl = "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
                       "{{ m.role|upper }}: {{ m.content|trim|tojson }} {{ m|tojson(indent=2) }}\n{% endfor %}"
                       "{{ messages|map(attribute='role')|join(',') }}{{ ns.n }}";
    const char *ctx = "{\"messages\": [{\"role\": \"user\", \"content\": \" hi \"}, {\"role\": \"assistant\", "
                      "\"content\": \"yo\"}]}";
    char *want = NULL;
    size_t want_len = 0;
    struct kz_err err = {{0}};
    T_EQ_INT(render(tmpl, ctx, NULL, &want, &want_len, &err), KZ_OK);
    int ok_seen = 0;
    for (long k = 1; k < 400 && !ok_seen; k++) {
        json_t *c = json_loads(ctx, 0, NULL);
        char *out = NULL;
        size_t len = 0;
        kz_alloc_fail_after(k);
        kz_status rc = kz_template_render(tmpl, strlen(tmpl), c, NULL, &out, &len, &err);
        kz_alloc_fail_after(0);
        if (rc == KZ_OK) {
            ok_seen = 1;
            T_OK(len == want_len && memcmp(out, want, len) == 0, "complete output once allocations succeed");
        } else {
            T_OK(rc == KZ_ENOMEM && out == NULL, "fail #%ld: status %d (%s)", k, (int)rc, err.msg);
        }
        kz_free(out);
        json_decref(c);
    }
    T_OK(ok_seen, "render succeeded once enough allocations pass");
    kz_free(want);
}

/* ---- kyozon template ----------------------------------------------------- */

struct cli_res {
    int status;
    char *out;
    size_t out_len;
    char *err;
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
}

/* Runs kz_cmd_template with stdout and stderr redirected to files. */
static struct cli_res run_cli(int argc, char **argv)
{
    struct cli_res r = {0};
    char o[512], e[512];
    snprintf(o, sizeof o, "%s/cli.out", t_tmpdir());
    snprintf(e, sizeof e, "%s/cli.err", t_tmpdir());
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    FILE *fo = freopen(o, "wb", stdout);
    FILE *fe = freopen(e, "wb", stderr);
    if (!fo || !fe)
        abort();
    r.status = kz_cmd_template(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    r.out = t_read_file(o, &r.out_len);
    r.err = t_read_file(e, NULL);
    return r;
}

static void cli_free(struct cli_res *r)
{
    kz_free(r->out);
    kz_free(r->err);
}

static void test_cli(void)
{
    char tp[512], mp[512], op[512], bad[512];
    snprintf(tp, sizeof tp, "%s/t.jinja", t_tmpdir());
    snprintf(mp, sizeof mp, "%s/m.json", t_tmpdir());
    snprintf(op, sizeof op, "%s/o.json", t_tmpdir());
    snprintf(bad, sizeof bad, "%s/bad.jinja", t_tmpdir());
    write_file(tp, "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
                   "{% if add_generation_prompt %}<assistant>{% endif %}{{ eos_token }}{{ tools is none }}"
                   "|{{ strftime_now('%d %b %Y') }}");
    write_file(mp, "[{\"role\": \"user\", \"content\": \"Hi\\n\"}]");
    write_file(op, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [1]}");
    write_file(bad, "line 1\n{{ raise_exception('nope') }}");

    char *a1[] = {"template", "--file", tp, "--messages", mp, "--add-generation-prompt", "--bos", "<s>", "--eos",
                  "</s>", "--now", "2026-11-22 12:00:00"};
    struct cli_res r = run_cli(12, a1);
    T_EQ_INT(r.status, 0);
    T_OK(r.out && strcmp(r.out, "<s><user>Hi\n<assistant></s>True|22 Nov 2026") == 0, "exact output: [%s] %s",
         r.out ? r.out : "", r.err ? r.err : "");
    cli_free(&r);

    char *a2[] = {"template", "-f", tp, "-M", op, "--now", "2026-01-02"};
    r = run_cli(7, a2);
    T_EQ_INT(r.status, 0);
    T_OK(r.out && strcmp(r.out, "<user>xFalse|02 Jan 2026") == 0, "object context, no tokens: [%s]",
         r.out ? r.out : "");
    cli_free(&r);

    char *a3[] = {"template", "--file", bad, "--messages", mp};
    r = run_cli(5, a3);
    T_EQ_INT(r.status, 1);
    T_OK(r.out_len == 0 && r.err && strstr(r.err, "bad.jinja: template line 2: raise_exception: nope"),
         "error names the file and the problem: %s", r.err ? r.err : "");
    cli_free(&r);

    char *a4[] = {"template", "--file", tp};
    r = run_cli(3, a4);
    T_EQ_INT(r.status, 2);
    T_OK(r.err && strstr(r.err, "--messages"), "usage error: %s", r.err ? r.err : "");
    cli_free(&r);

    char *a5[] = {"template", "--help"};
    r = run_cli(2, a5);
    T_EQ_INT(r.status, 0);
    T_OK(r.out && strstr(r.out, "Usage: kyozon template"), "help text");
    cli_free(&r);

    char *a6[] = {"template", "--file", "/nonexistent/t.jinja", "--messages", mp};
    r = run_cli(5, a6);
    T_EQ_INT(r.status, 1);
    T_OK(r.err && strstr(r.err, "/nonexistent/t.jinja"), "missing file named: %s", r.err ? r.err : "");
    cli_free(&r);

    write_file(mp, "[{\"role\": ");
    char *a7[] = {"template", "--file", tp, "--messages", mp};
    r = run_cli(5, a7);
    T_EQ_INT(r.status, 1);
    T_OK(r.err && strstr(r.err, "m.json"), "bad JSON named: %s", r.err ? r.err : "");
    cli_free(&r);

    char *a8[] = {"template", "--file", tp, "--messages", mp, "--now", "yesterday"};
    r = run_cli(7, a8);
    T_EQ_INT(r.status, 2);
    cli_free(&r);
}

/* -m: the template and the BOS/EOS texts come from a GGUF file. */
static void test_cli_model(void)
{
    const char *p = t_data_path("vocab/ggml-vocab-phi-3.gguf");
    if (!p) {
        t_skip(1, "shared data absent: no GGUF with a chat template");
        return;
    }
    char model[1024], mp[512];
    snprintf(model, sizeof model, "%s", p);
    snprintf(mp, sizeof mp, "%s/m2.json", t_tmpdir());
    write_file(mp, "[{\"role\": \"user\", \"content\": \"Hi\"}]");
    char *a[] = {"template", "-m", model, "--messages", mp, "--add-generation-prompt"};
    struct cli_res r = run_cli(6, a);
    T_EQ_INT(r.status, 0);
    T_OK(r.out && strstr(r.out, "<|user|>\nHi<|end|>\n<|assistant|>\n"), "phi-3 prompt: [%s] %s", r.out ? r.out : "",
         r.err ? r.err : "");
    cli_free(&r);
}

int main(void)
{
    t_subtest("recorded renderings", test_recorded);
    t_subtest("error messages", test_errors);
    t_subtest("limits", test_limits);
    t_subtest("api", test_api);
    t_subtest("allocation failure", test_alloc_failure);
    t_subtest("kyozon template", test_cli);
    t_subtest("kyozon template -m", test_cli_model);
    return t_done();
}
