/*
 * test_template.c: unit tests for engine/template.c, the Jinja subset.
 * Each test renders small templates against a fake host (ref, source,
 * config, var, is_incremental, echo; this and target) and compares exact
 * bytes or exact "path:line:col: message" errors. Expected outputs were
 * checked against Jinja2 where the subset and Jinja agree.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "../../engine/template.h"

#define PATH "models/m.sql"

/* ---- fake host ---------------------------------------------------------- */

struct test_host {
	struct arena a;          /* what the host keeps between calls */
	struct val config;       /* kwargs of every config() call, merged */
	int incremental;
	int ncalls;
	int last_line, last_col; /* position the template gave the last call */
};

static struct test_host th;
static struct arena scratch;
static struct buf out;
static struct sluice_err err;

static int host_call(void *ud, const struct tpl_call *c, struct val *ret, struct sluice_err *e)
{
	struct test_host *h = ud;
	struct buf b = BUF_INIT;
	size_t i;

	h->ncalls++;
	h->last_line = c->line;
	h->last_col = c->col;
	if (!strcmp(c->name, "ref")) {
		if (c->nargs != 1 || c->args[0].kind != V_STR)
			return err_set(e, SLUICE_EUSAGE, "ref() takes one model name");
		if (!strcmp(c->args[0].u.str.s, "missing"))
			return err_set(e, SLUICE_EIO, "unknown ref 'missing'");
		*ret = val_str(arena_printf(c->arena, "\"analytics\".\"%s\"", c->args[0].u.str.s));
		return 0;
	}
	if (!strcmp(c->name, "source")) {
		if (c->nargs != 2)
			return err_set(e, SLUICE_EUSAGE, "source() takes two arguments");
		*ret = val_str(arena_printf(c->arena, "\"raw_%s\".\"%s\"", c->args[0].u.str.s,
					    c->args[1].u.str.s));
		return 0;
	}
	if (!strcmp(c->name, "config")) {
		for (i = 0; i < c->nkw; i++)
			val_dict_set(&h->a, &h->config, arena_strdup(&h->a, c->kwnames[i]),
				     val_clone(&h->a, &c->kwargs[i]));
		*ret = val_str("");
		return 0;
	}
	if (!strcmp(c->name, "var")) {
		if (c->nargs >= 1 && !strcmp(c->args[0].u.str.s, "start"))
			*ret = val_str("2024-01-01");
		else if (c->nargs == 2)
			*ret = c->args[1];
		else
			return err_set(e, SLUICE_EUSAGE, "required var '%s' is not set", c->args[0].u.str.s);
		return 0;
	}
	if (!strcmp(c->name, "flaky")) {
		/* returns one code, records another: the recorded one wins */
		err_set(e, SLUICE_ECONN, "connection reset");
		return -1;
	}
	if (!strcmp(c->name, "pick")) {
		/* a function as a value: pick('echo')(1) */
		ret->kind = V_FUNC;
		ret->u.fn.fn = arena_strdup(c->arena, c->args[0].u.str.s);
		ret->u.fn.tag = TPL_FN_HOST;
		return 0;
	}
	if (!strcmp(c->name, "wrapped")) {
		/* what a {% call %} block gave a host function */
		*ret = val_str(arena_printf(c->arena, "<%s>", c->body ? c->body->u.str.s : "no body"));
		return 0;
	}
	if (!strcmp(c->name, "is_incremental")) {
		*ret = val_bool(h->incremental);
		return 0;
	}
	if (!strcmp(c->name, "echo")) {
		/* "a, b; k=v" in repr form: shows exactly what arrived */
		for (i = 0; i < c->nargs; i++) {
			if (i)
				buf_puts(&b, ", ");
			val_repr(&c->args[i], &b);
		}
		buf_puts(&b, ";");
		for (i = 0; i < c->nkw; i++) {
			buf_printf(&b, " %s=", c->kwnames[i]);
			val_repr(&c->kwargs[i], &b);
		}
		*ret = val_str_dup(c->arena, b.s, b.len);
		buf_release(&b);
		return 0;
	}
	return 1;
}

static int host_lookup(void *ud, const char *name, struct arena *a, struct val *ret)
{
	(void)ud;
	if (!strcmp(name, "this")) {
		*ret = val_str("\"analytics\".\"m\"");
		return 0;
	}
	if (!strcmp(name, "pkg")) {
		struct val f = { V_FUNC, { 0 } };

		f.u.fn.fn = "echo";
		f.u.fn.tag = TPL_FN_HOST;
		*ret = val_dict_new();
		val_dict_set(a, ret, "echo", f);
		return 0;
	}
	if (!strcmp(name, "rel")) {
		struct val *attrs = arena_alloc(a, sizeof(*attrs));

		*attrs = val_dict_new();
		val_dict_set(a, attrs, "schema", val_str("analytics"));
		val_dict_set(a, attrs, "identifier", val_str("m"));
		*ret = val_str("\"analytics\".\"m\"");
		ret->u.str.attrs = attrs;
		return 0;
	}
	if (!strcmp(name, "target")) {
		*ret = val_dict_new();
		val_dict_set(a, ret, "name", val_str("dev"));
		val_dict_set(a, ret, "schema", val_str("analytics"));
		val_dict_set(a, ret, "threads", val_num(4));
		return 0;
	}
	return 1;
}

static const struct tpl_host host = { &th, host_call, host_lookup, NULL, NULL };

static int setup(void **state)
{
	(void)state;
	memset(&th, 0, sizeof(th));
	arena_init(&th.a);
	th.config = val_dict_new();
	arena_init(&scratch);
	buf_init(&out);
	memset(&err, 0, sizeof(err));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	arena_release(&th.a);
	arena_release(&scratch);
	buf_release(&out);
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static struct tpl *parse_ok(const char *src)
{
	struct tpl *t = NULL;

	if (tpl_parse(&scratch, PATH, src, strlen(src), &t, &err))
		fail_msg("parse failed: %s\n  template: %s", err.msg, src);
	return t;
}

/* Output of src, or NULL with err filled. */
static const char *try_render(const char *src, const struct tpl_host *h)
{
	struct tpl *t;

	buf_reset(&out);
	memset(&err, 0, sizeof(err));
	if (tpl_parse(&scratch, PATH, src, strlen(src), &t, &err) ||
	    tpl_render(t, h, &scratch, &out, &err))
		return NULL;
	return out.s;
}

static const char *render(const char *src)
{
	const char *s = try_render(src, &host);

	if (!s)
		fail_msg("render failed: %s\n  template: %s", err.msg, src);
	return s;
}

/* The error message of a template that must fail (to parse or to render). */
static const char *render_err(const char *src)
{
	const char *s = try_render(src, &host);

	if (s)
		fail_msg("expected an error, got '%s'\n  template: %s", s, src);
	return err.msg;
}

#define assert_render(src, want) assert_string_equal(render(src), want)
#define assert_error(src, want) assert_string_equal(render_err(src), want)

/* ---- text, literals, output --------------------------------------------- */

static void test_plain_text(void **state)
{
	(void)state;
	assert_render("", "");
	assert_render("select 1\nfrom t\n", "select 1\nfrom t\n");
	/* braces and percent signs that are not tag openers stay as they are */
	assert_render("{ } }} %} #} { {x} {'a': 1} 100%", "{ } }} %} #} { {x} {'a': 1} 100%");
	assert_render("trailing {", "trailing {");

	assert_true(tpl_is_plain("select * from t where a = '{'", 29));
	assert_true(tpl_is_plain("", 0));
	assert_true(tpl_is_plain("x {", 3));
	assert_false(tpl_is_plain("a {{ b }}", 9));
	assert_false(tpl_is_plain("{% if %}", 8));
	assert_false(tpl_is_plain("x{#", 3));
	/* only the first len bytes count */
	assert_true(tpl_is_plain("ab{{", 3));
}

static void test_literals(void **state)
{
	(void)state;
	assert_render("{{ 'single' }} {{ \"double\" }}", "single double");
	assert_render("{{ 'a\\nb\\t\\\\\\'\"' }}", "a\nb\t\\'\"");
	assert_render("{{ \"it\\\"s\" }}", "it\"s");
	assert_render("{{ 'a' 'b' \"c\" }}", "abc");
	assert_render("{{ 42 }} {{ 1.5 }} {{ 1.0 }} {{ 0.25e2 }} {{ -3 }}", "42 1.5 1 25 -3");
	assert_render("{{ true }} {{ false }} {{ none }} {{ True }} {{ False }} {{ None }}",
		      "True False None True False None");
	assert_render("{{ [1, 'a', none, [true]] }}", "[1, 'a', None, [True]]");
	assert_render("{{ {'k': 1, \"j\": ['x']} }}", "{'k': 1, 'j': ['x']}");
	/* "}}" inside a dict literal does not end the tag */
	assert_render("{{ {'a': {'b': 1}} }}", "{'a': {'b': 1}}");
	assert_render("{{ [] }} {{ {} }} {{ (1, 2) }} {{ [1, 2,] }}", "[] {} [1, 2] [1, 2]");
	assert_render("{{ 'it''s' }}", "its");
	/* expressions spanning lines */
	assert_render("{{\n  'a'\n  ~ 'b'\n}}", "ab");
}

static void test_operators(void **state)
{
	(void)state;
	assert_render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 10 - 4 - 3 }}", "7 9 3");
	assert_render("{{ 7 / 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 % -3 }}", "3.5 1 2 -2");
	assert_render("{{ -(2 + 3) }} {{ - -4 }} {{ +5 }}", "-5 4 5");
	assert_render("{{ 'a' + 'b' }} {{ [1] + [2, 3] }} {{ 'ab' * 3 }} {{ 2 * 'x' }}",
		      "ab [1, 2, 3] ababab xx");
	assert_render("{{ 'n' ~ 1 ~ none ~ true ~ 2.5 }}", "n1NoneTrue2.5");
	assert_render("{{ 'a' ~ 2 * 3 }} {{ (1 + 2) ~ 'x' }}", "a6 3x");
	assert_render("{{ 1 == 1 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ true == 1 }} {{ [1] == [1] }}",
		      "True True True True True");
	assert_render("{{ 1 < 2 }} {{ 2 <= 2 }} {{ 3 > 4 }} {{ 'b' >= 'a' }} {{ 'ab' < 'b' }}",
		      "True True False True True");
	/* chained comparisons, as in Python */
	assert_render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 < 3 > 2 }}", "True False True");
	assert_render("{{ 2 in [1, 2] }} {{ 'ell' in 'hello' }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }}",
		      "True True True True");
	assert_render("{{ 3 in [1, 2] }} {{ 'v' in {'k': 'v'} }} {{ '' in 'x' }}", "False False True");
	/* and/or return the deciding operand */
	assert_render("{{ 1 and 'x' }}|{{ 0 and 'x' }}|{{ 0 or [] }}|{{ '' or 'd' }}|{{ not 0 }}|{{ not 'a' }}",
		      "x|0|[]|d|True|False");
	assert_render("{{ not 1 == 2 }} {{ not true and false }} {{ true or false and false }}",
		      "True False True");
	assert_render("{{ 'y' if 1 > 0 else 'n' }} {{ 'y' if [] else 'n' }} [{{ 'y' if false }}]",
		      "y n []");
	assert_render("{{ 'a' if false else 'b' if false else 'c' }}", "c");
}

static void test_attr_and_index(void **state)
{
	(void)state;
	assert_render("{% set d = {'a': {'b': [10, 20, 30]}} %}{{ d.a.b[1] }} {{ d['a']['b'][-1] }} {{ d.a['b'][-3] }}",
		      "20 30 10");
	assert_render("{{ 'héllo'[1] }} {{ 'abc'[-1] }} {{ [[1, 2]][0][1] }}", "é c 2");
	assert_render("{{ target.name }}.{{ target['schema'] }} {{ target.threads + 1 }}", "dev.analytics 5");
	assert_render("{% set k = 'name' %}{{ target[k] }}", "dev");
}

/* ---- statements --------------------------------------------------------- */

static void test_if(void **state)
{
	(void)state;
	assert_render("{% if true %}a{% endif %}|{% if false %}a{% endif %}", "a|");
	assert_render("{% if 0 %}a{% else %}b{% endif %}", "b");
	assert_render("{% set n = 2 %}{% if n == 1 %}one{% elif n == 2 %}two{% elif n == 3 %}three{% else %}many{% endif %}",
		      "two");
	assert_render("{% set n = 5 %}{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %}", "many");
	assert_render("{% set n = 3 %}{% if n == 1 %}one{% elif n == 2 %}two{% elif n == 3 %}three{% endif %}",
		      "three");
	assert_render("{% if 1 %}{% if 0 %}x{% else %}y{% endif %}{% endif %}", "y");
	assert_render("{% if [] %}x{% elif {} %}y{% elif 'a' %}z{% endif %}", "z");
	/* an untaken branch with an error in it is never evaluated */
	assert_render("{% if false %}{{ nope }}{% endif %}ok", "ok");
}

static void test_for(void **state)
{
	(void)state;
	assert_render("{% for x in [1, 2, 3] %}{{ x }}{% endfor %}", "123");
	assert_render("{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}"
		      "{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }} {% endfor %}",
		      "10TrueFalse332 21FalseFalse321 32FalseTrue310 ");
	assert_render("{% for c in ['id', 'name'] %}{{ c }}{% if not loop.last %}, {% endif %}{% endfor %}",
		      "id, name");
	assert_render("{% for x in [] %}x{% else %}empty{% endfor %}", "empty");
	assert_render("{% for x in [1] %}x{% else %}empty{% endfor %}", "x");
	assert_render("{% for x in [1, 2, 3, 4] if x is number and x % 2 == 0 %}{{ x }}/{{ loop.length }} {% endfor %}",
		      "2/2 4/2 ");
	assert_render("{% for x in [1, 3] if x > 5 %}x{% else %}none kept{% endfor %}", "none kept");
	/* dicts iterate keys, in insertion order */
	assert_render("{% for k in {'b': 1, 'a': 2} %}{{ k }}{% endfor %}", "ba");
	assert_render("{% for k, v in {'b': 1, 'a': 2}.items() %}{{ k }}={{ v }};{% endfor %}", "b=1;a=2;");
	assert_render("{{ {'b': 1, 'a': 2}.keys() }} {{ {'b': 1, 'a': 2}.values() }}", "['b', 'a'] [1, 2]");
	assert_render("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }} {% endfor %}", "3 7 ");
	assert_render("{% for ch in 'hé!' %}[{{ ch }}]{% endfor %}", "[h][é][!]");
	assert_render("{% for i in range(3) %}{{ i }}{% endfor %} {% for i in range(2, 5) %}{{ i }}{% endfor %}"
		      " {% for i in range(10, 0, -3) %}{{ i }},{% endfor %}{% for i in range(0) %}x{% endfor %}",
		      "012 234 10,7,4,1,");
	/* the inner loop's `loop` shadows the outer one */
	assert_render("{% for a in [1, 2] %}{% for b in ['x', 'y'] %}{{ a }}{{ b }}{{ loop.index }}"
		      "{% endfor %}:{{ loop.index }} {% endfor %}",
		      "1x11y2:1 2x12y2:2 ");
}

static void test_scoping(void **state)
{
	(void)state;
	assert_render("{% set x = 1 %}{% set x = x + 1 %}{{ x }}", "2");
	/* a set inside a loop does not leak out, nor into the next iteration */
	assert_render("{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = 2 %}{{ x }}{% endfor %}{{ x }}",
		      "12121");
	assert_render("{% set total = 0 %}{% for x in [1, 2, 3] %}{% set total = total + x %}{{ total }}"
		      "{% endfor %} {{ total }}",
		      "123 0");
	assert_render("{% for i in [1, 2] %}{% if i == 1 %}{% set y = 'a' %}{% endif %}"
		      "[{{ y is defined }}]{% endfor %}",
		      "[True][False]");
	/* if does not open a scope */
	assert_render("{% if true %}{% set z = 3 %}{% endif %}{{ z }}", "3");
	/* loop variables are gone after the loop */
	assert_render("{% for i in [1] %}{% endfor %}{{ i is defined }} {{ loop is defined }}", "False False");
	/* a loop variable shadows an outer name only inside the loop */
	assert_render("{% set i = 'outer' %}{% for i in [1] %}{{ i }}{% endfor %}{{ i }}", "1outer");
	/* set shadows a host name */
	assert_render("{{ this }} {% set this = 'mine' %}{{ this }}", "\"analytics\".\"m\" mine");
}

static void test_set_block(void **state)
{
	(void)state;
	assert_render("{% set x %}  hi {{ 1 + 1 }} {% endset %}[{{ x }}]", "[  hi 2 ]");
	assert_render("a{% set cols %}{% for c in ['x', 'y'] %}{{ c }}{% if not loop.last %},{% endif %}"
		      "{% endfor %}{% endset %}b select {{ cols }}",
		      "ab select x,y");
	assert_render("{% set x %}a{% set y = 2 %}{% endset %}{{ x }}{{ y is defined }}", "aFalse");
	assert_render("{% set x -%}\n  trimmed\n{%- endset %}[{{ x }}]", "[trimmed]");
}

static void test_whitespace_control(void **state)
{
	(void)state;
	/* Jinja defaults: no trim_blocks, no lstrip_blocks */
	assert_render("{% if true %}\nx\n{% endif %}\n", "\nx\n\n");
	assert_render("  {% if true %}x{% endif %}  ", "  x  ");
	assert_render("a  {%- if true -%}  b  {%- endif -%}  c", "abc");
	assert_render("a \n\t {%- if true %} b {% endif %}", "a b ");
	assert_render("a {% if true -%} \n\n b {% endif %}", "a b ");
	assert_render("x \n {{- 1 -}} \n y", "x1y");
	assert_render("x \n {{- 1 }} \n y", "x1 \n y");
	assert_render("x \n {{ 1 -}} \n y", "x \n 1y");
	assert_render("a \n {#- comment -#} \n b", "ab");
	assert_render("a \n {# comment -#} \n b", "a \n b");
	assert_render("select\n{%- for c in ['a', 'b'] %}\n  {{ c }}{% if not loop.last %},{% endif %}\n{%- endfor %}\nfrom t",
		      "select\n  a,\n  b\nfrom t");
	/* only the adjacent text is stripped, even across an empty tag pair */
	assert_render("a {%- if true -%}{% endif %} b", "a b");
	/* a "-" followed by a space is not whitespace control's closing form */
	assert_render("{{ 5 - 3 }}", "2");
	assert_render("{{ 5 -3 }}", "2");
}

static void test_comments_and_raw(void **state)
{
	(void)state;
	assert_render("a{# one #}b{# two\n lines {{ x }} {% if %} #}c", "abc");
	assert_render("{# {{ #}ok", "ok");
	assert_render("{% raw %}{{ x }}{% if %}{# c #}{% endraw %}", "{{ x }}{% if %}{# c #}");
	assert_render("a {%- raw -%} {{ x }} {%- endraw -%} b", "a{{ x }}b");
	assert_render("{%raw%} {% endraw x %} {%endraw%}", " {% endraw x %} ");
	assert_render("{% raw %}{% endraw %}", "");
}

/* ---- filters, tests, methods -------------------------------------------- */

static void test_filters(void **state)
{
	(void)state;
	assert_render("{{ 'MiXed'|upper }} {{ 'MiXed'|lower }} {{ none|lower }} {{ 12|upper }}",
		      "MIXED mixed none 12");
	assert_render("{{ ['a', 'b', 'c']|join }} {{ ['a', 1, none]|join(', ') }} {{ []|join('-') }}",
		      "abc a, 1, None ");
	assert_render("{{ 'a.b.c'|replace('.', '_') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'ab'|replace('', '-') }}",
		      "a_b_c bba -a-b-");
	assert_render("[{{ '  x y \n'|trim }}] [{{ 'xxaxx'|trim('x') }}]", "[x y] [a]");
	assert_render("{{ 'héllo'|length }} {{ [1, 2]|length }} {{ {'a': 1}|count }} {{ ''|length }}", "5 2 1 0");
	assert_render("{{ 12|string ~ 'x' }} {{ '42'|int + 1 }} {{ '3.7'|int }} {{ 'abc'|int }} {{ 'abc'|int(7) }} "
		      "{{ 2.9|int }}",
		      "12x 43 3 0 7 2");
	assert_render("{{ [3, 4]|first }} {{ [3, 4]|last }} {{ 'abc'|first }} {{ []|first|default('e') }}", "3 4 a e");
	/* chains apply left to right and bind tighter than operators */
	assert_render("{{ ' Ab '|trim|lower|replace('a', 'x') }}", "xb");
	assert_render("{{ 'a' ~ 'b'|upper }} {{ -2|string }}", "aB -2");
	assert_render("{{ ['b', 'a']|join(',')|upper }}", "B,A");
}

static void test_default_filter(void **state)
{
	(void)state;
	assert_render("{{ undefined_thing|default('d') }}", "d");
	assert_render("{{ none|default('d') }} {{ 0|default('d') }} {{ ''|default('d') }}", "d 0 ");
	assert_render("{{ ''|default('d', true) }} {{ 0|d('z', true) }} {{ 'v'|default('d', true) }}", "d z v");
	assert_render("[{{ nope|default }}]", "[]");
	assert_render("{{ target.missing|default('m') }} {{ target.name|default('m') }}", "m dev");
	assert_render("{{ [1][5]|default('oob') }} {{ nope.deeper['x']|default(1) }}", "oob 1");
	/* the default argument is only evaluated when it is needed */
	assert_render("{{ 'x'|default(nope) }}", "x");
}

static void test_tests(void **state)
{
	(void)state;
	assert_render("{{ x is defined }} {{ x is not defined }} {{ x is undefined }}", "False True True");
	assert_render("{% set x = none %}{{ x is defined }} {{ x is none }} {{ x is not none }}", "True True False");
	assert_render("{{ this is defined }} {{ target.name is defined }} {{ target.nope is defined }}",
		      "True True False");
	assert_render("{{ [1][0] is defined }} {{ [1][1] is defined }} {{ x.y.z is defined }}", "True False False");
	assert_render("{{ 'a' is string }} {{ 1 is string }} {{ 1.5 is number }} {{ 'a' is number }} "
		      "{{ true is boolean }}",
		      "True False True False True");
	assert_render("{{ {} is mapping }} {{ [] is mapping }} {{ [] is sequence }} {{ 'x' is iterable }} "
		      "{{ 1 is iterable }}",
		      "True False True True False");
	assert_render("{% if not x is defined %}a{% endif %}{% if y is not defined and true %}b{% endif %}", "ab");
}

static void test_methods(void **state)
{
	(void)state;
	assert_render("{{ 'Ab'.upper() }} {{ 'Ab'.lower() }} [{{ '  x  '.strip() }}] [{{ '  x  '.lstrip() }}]"
		      " [{{ '  x  '.rstrip() }}] [{{ '--x--'.strip('-') }}]",
		      "AB ab [x] [x  ] [  x] [x]");
	assert_render("{{ 'stg_orders'.startswith('stg_') }} {{ 'a.sql'.endswith('.csv') }} {{ 'a'.endswith('') }}",
		      "True False True");
	assert_render("{{ 'a-b-c'.replace('-', '+') }} {{ 'a b  c '.split() }} {{ 'a,,b'.split(',') }}",
		      "a+b+c ['a', 'b', 'c'] ['a', '', 'b']");
	assert_render("{{ target.get('name') }} {{ target.get('x') }} {{ target.get('x', 'dflt') }}",
		      "dev None dflt");
	assert_render("{{ target.name.upper() }}", "DEV");
}

/* ---- the host ----------------------------------------------------------- */

static void test_host_calls(void **state)
{
	const struct val *v;

	(void)state;
	assert_render("select * from {{ ref('orders') }} join {{ source('shop', 'items') }}",
		      "select * from \"analytics\".\"orders\" join \"raw_shop\".\"items\"");
	assert_render("{{ echo(1, 'a', [true], k='v', n=none) }}", "1, 'a', [True]; k='v' n=None");
	assert_render("{{ echo() }}|{{ echo(k={'x': 1},) }}", ";|; k={'x': 1}");
	assert_render("{% set m = 'customers' %}{{ echo(m ~ '_v2', 1 + 1) }}", "'customers_v2', 2;");
	assert_render("{{ var('start') }} {{ var('end', '2099-12-31') }} {{ var('n', 7) + 1 }}",
		      "2024-01-01 2099-12-31 8");
	assert_render("{{ this }}", "\"analytics\".\"m\"");

	assert_render("{{ config(materialized='incremental', unique_key=['id', 'day'], enabled=true) }}x", "x");
	assert_int_equal(th.config.u.dict.n, 3);
	v = val_get(&th.config, "materialized");
	assert_non_null(v);
	assert_string_equal(v->u.str.s, "incremental");
	v = val_get(&th.config, "unique_key");
	assert_non_null(v);
	assert_int_equal(v->kind, V_LIST);
	assert_int_equal(v->u.list.n, 2);
	assert_string_equal(v->u.list.items[1].u.str.s, "day");
	assert_true(val_get_bool(&th.config, "enabled", 0));

	th.incremental = 0;
	assert_render("{% if is_incremental() %}where d > (select max(d) from {{ this }}){% endif %}", "");
	th.incremental = 1;
	assert_render("{% if is_incremental() %}where d > 0{% endif %}", "where d > 0");

	/* the host learns where each call is */
	assert_render("a\n  x {{ ref('y') }}", "a\n  x \"analytics\".\"y\"");
	assert_int_equal(th.last_line, 2);
	assert_int_equal(th.last_col, 8);
	/* host functions are not called in untaken branches */
	th.ncalls = 0;
	assert_render("{% if false %}{{ ref('a') }}{% endif %}{% for x in [] %}{{ ref('b') }}{% endfor %}", "");
	assert_int_equal(th.ncalls, 0);
}

static void test_no_host(void **state)
{
	(void)state;
	assert_null(try_render("{{ x }}", NULL));
	assert_string_equal(err.msg, PATH ":1:4: undefined name 'x'");
	assert_null(try_render("{{ ref('a') }}", NULL));
	assert_string_equal(err.msg, PATH ":1:4: undefined function 'ref'");
	assert_string_equal(try_render("{% set x = 1 %}{{ x }} {{ range(2) }} {{ y is defined }}", NULL),
			    "1 [0, 1] False");
}

/* ---- errors ------------------------------------------------------------- */

static void test_syntax_errors(void **state)
{
	(void)state;
	assert_error("{{ 1 + }}", PATH ":1:8: expected an expression, got '}}'");
	assert_error("{{ }}", PATH ":1:4: expected an expression, got '}}'");
	assert_error("a\n{{ x y }}", PATH ":2:6: expected '}}', got 'y'");
	assert_error("{% if x %}abc", PATH ":1:14: unclosed {% if %} opened at 1:1");
	assert_error("a\n  {% for x in y %}\n{% if x %}{% endif %}", PATH ":3:22: unclosed {% for %} opened at 2:3");
	assert_error("{% if a %}{% elif b %}{% else %}", PATH ":1:33: unclosed {% if %} opened at 1:1");
	assert_error("x\n{% set v %}abc", PATH ":2:15: unclosed {% set %} opened at 2:1");
	assert_error("{% for x in y %}\n  {% endif %}", PATH ":2:6: expected 'endfor', got 'endif'");
	assert_error("{% if x %}{% endfor %}", PATH ":1:14: expected 'endif', got 'endfor'");
	assert_error("{% if x %}{% else %}{% elif y %}{% endif %}", PATH ":1:24: expected 'endif', got 'elif'");
	assert_error("{% for x in y %}{% else %}{% else %}{% endfor %}", PATH ":1:30: expected 'endfor', got 'else'");
	assert_error("ok\n{% endif %}", PATH ":2:4: unexpected 'endif' (no block is open)");
	assert_error("{% else %}", PATH ":1:4: unexpected 'else' (no block is open)");
	assert_error("{% endif x %}", PATH ":1:4: unexpected 'endif' (no block is open)");
	assert_error("{% if x %}{% endif x %}", PATH ":1:20: expected '%}', got 'x'");
	assert_error("{% include 'x.sql' %}", PATH ":1:4: unsupported tag 'include'");
	assert_error("{% materialization m, default %}{% endmaterialization %}", PATH ":1:4: unsupported tag 'materialization'");
	assert_error("{% extends 'base' %}", PATH ":1:4: unsupported tag 'extends'");
	assert_error("{%- import 'm' as m %}", PATH ":1:5: unsupported tag 'import'");
	assert_error("{% block b %}{% endblock %}", PATH ":1:4: unsupported tag 'block'");
	assert_error("{% frobnicate %}", PATH ":1:4: unknown tag 'frobnicate'");
	assert_error("{% %}", PATH ":1:4: expected a tag name, got '%}'");
	assert_error("{% for in x %}{% endfor %}", PATH ":1:8: expected a loop variable, got 'in'");
	assert_error("{% for x of y %}{% endfor %}", PATH ":1:10: expected 'in', got 'of'");
	assert_error("{% set = 1 %}", PATH ":1:8: expected a variable name, got '='");
	assert_error("{% set x 1 %}", PATH ":1:10: expected '=' or '%}', got a number");
	assert_error("\n\n   {{ x", PATH ":3:4: unclosed '{{' (expected '}}')");
	assert_error("{% if x", PATH ":1:1: unclosed '{%' (expected '%}')");
	assert_error("a {# note", PATH ":1:3: unclosed comment (opened here)");
	assert_error("{{ 'abc }}", PATH ":1:4: unterminated string");
	assert_error("{{ 1 $ 2 }}", PATH ":1:6: unexpected character '$'");
	assert_error("{{ f(1, [2 }}", PATH ":1:12: unexpected '}', expected ']'");
	assert_error("{{ f(1 ", PATH ":1:5: unclosed '('");
	assert_error("{% raw %}abc", PATH ":1:1: unclosed {% raw %} (opened here)");
	assert_error("{{ x|frob }}", PATH ":1:6: filter 'frob' is not supported yet: the model cannot be compiled "
		     "without it (docs/templates.md lists the filters sluice has)");
	assert_error("{{ x|replace('a') }}", PATH ":1:6: filter 'replace' takes 2 to 3 arguments (1 given)");
	assert_error("{{ x|upper(1) }}", PATH ":1:6: filter 'upper' takes 0 arguments (1 given)");
	assert_error("{{ x|join(sep=',') }}", PATH ":1:6: filter 'join' takes no keyword argument 'sep'");
	assert_error("{{ x| }}", PATH ":1:7: expected a filter name after '|', got '}}'");
	assert_error("{{ x is frob }}", PATH ":1:9: unknown test 'frob'");
	assert_error("{{ f(a=1, 2) }}", PATH ":1:11: positional argument follows keyword argument");
	assert_error("{{ f(a=1, a=2) }}", PATH ":1:11: duplicate keyword argument 'a'");
	assert_error("{{ x. }}", PATH ":1:7: expected an attribute name after '.', got '}}'");
	assert_error("{{ {1: 2} }}", PATH ":1:5: dict keys must be strings");
	assert_error("{{ [1, 2 }}", PATH ":1:10: unexpected '}', expected ']'");
	assert_error("{{ and }}", PATH ":1:4: expected an expression, got 'and'");
	assert_error("{% for x in y recursive %}{% endfor %}", PATH ":1:15: unsupported loop modifier 'recursive'");
	/* the first error in the file wins, even when a later one is a lexical one */
	assert_error("{{ 1 + }}\n{{ 'unterminated }}", PATH ":1:8: expected an expression, got '}}'");
}

static void test_runtime_errors(void **state)
{
	(void)state;
	assert_error("select\n  {{ nope }}", PATH ":2:6: undefined name 'nope'");
	assert_error("{{ frob(1) }}", PATH ":1:4: undefined function 'frob'");
	assert_error("{{ 'x' ~ frob(1) }}", PATH ":1:10: undefined function 'frob'");
	assert_error("{{ ref(nope) }}", PATH ":1:8: undefined name 'nope'");
	assert_error("{% for x in nope %}{% endfor %}", PATH ":1:13: undefined name 'nope'");
	assert_error("{{ target.nope }}", PATH ":1:11: 'dict' has no attribute 'nope'");
	assert_error("{{ this.name }}", PATH ":1:9: 'string' has no attribute 'name'");
	assert_error("{{ target['nope'] }}", PATH ":1:10: key 'nope' not found");
	assert_error("{{ [1, 2][2] }}", PATH ":1:10: list index 2 out of range");
	assert_error("{{ [1, 2]['a'] }}", PATH ":1:10: list indices must be integers, not string");
	assert_error("{{ none[0] }}", PATH ":1:8: 'none' is not subscriptable");
	assert_error("{{ 'a' - 1 }}", PATH ":1:8: unsupported operand types for -: 'string' and 'number'");
	assert_error("{{ 'a' + 1 }}", PATH ":1:8: unsupported operand types for +: 'string' and 'number'");
	/* ~ binds tighter than + (as in Jinja): this is 1 + (2 ~ 'x') */
	assert_error("{{ 1 + 2 ~ 'x' }}", PATH ":1:6: unsupported operand types for +: 'number' and 'string'");
	assert_error("{{ -'a' }}", PATH ":1:4: bad operand type for unary -: 'string'");
	assert_error("{{ 1 / 0 }}", PATH ":1:6: division by zero");
	assert_error("{{ 1 % 0 }}", PATH ":1:6: modulo by zero");
	assert_error("{{ 1 < 'a' }}", PATH ":1:6: cannot compare 'number' and 'string' with '<'");
	assert_error("{{ 1 in 5 }}", PATH ":1:6: argument of type 'number' is not iterable");
	assert_error("{{ 1 in 'abc' }}", PATH ":1:6: 'in <string>' needs a string on the left, not number");
	assert_error("{% for x in 5 %}{% endfor %}", PATH ":1:13: 'number' is not iterable");
	assert_error("{% for k, v in [1] %}{% endfor %}", PATH ":1:4: cannot unpack number into 'k, v'");
	assert_error("{{ 5|length }}", PATH ":1:6: object of type 'number' has no length");
	assert_error("{{ 'a'|join }}", PATH ":1:8: join expects a list, not string");
	assert_error("{{ 'a'.append(2) }}", PATH ":1:8: 'string' has no method 'append'");
	assert_error("{{ target.items(1) }}", PATH ":1:11: items() takes 0 arguments (1 given)");
	assert_error("{{ range(1, 2, 0) }}", PATH ":1:4: range() step must not be zero");
	assert_error("{{ range('a') }}", PATH ":1:4: range() arguments must be integers");
	assert_error("{{ range(10000000) }}", PATH ":1:4: range() too large (10000000 items)");
	assert_error("{{ {nope: 1} }}", PATH ":1:5: undefined name 'nope'");
	assert_error("{% set k = 1 %}{{ {k: 1} }}", PATH ":1:20: dict keys must be strings, not number");
	assert_error("{{ undefined_thing|upper }}", PATH ":1:4: undefined name 'undefined_thing'");
	/* an error inside a loop body or a set block still names its place */
	assert_error("{% for i in [1, 2] %}\n{% if i == 2 %}{{ i ~ boom }}{% endif %}{% endfor %}",
		     PATH ":2:23: undefined name 'boom'");
	assert_error("{% set x %}\n\n  {{ y }}{% endset %}", PATH ":3:6: undefined name 'y'");
}

static void test_host_errors(void **state)
{
	(void)state;
	/* the host's message gets the call's position; its code is kept */
	assert_null(try_render("select *\nfrom {{ ref('missing') }}", &host));
	assert_string_equal(err.msg, PATH ":2:9: unknown ref 'missing'");
	assert_int_equal(err.code, SLUICE_EIO);

	assert_null(try_render("{{ var('required') }}", &host));
	assert_string_equal(err.msg, PATH ":1:4: required var 'required' is not set");
	assert_int_equal(err.code, SLUICE_EUSAGE);

	assert_null(try_render("{{ 'a' ~ flaky() }}", &host));
	assert_string_equal(err.msg, PATH ":1:10: connection reset");
	assert_int_equal(err.code, SLUICE_ECONN);

	assert_null(try_render("  {{ ref(1, 2) }}", &host));
	assert_string_equal(err.msg, PATH ":1:6: ref() takes one model name");

	/* our own errors are usage errors */
	assert_null(try_render("{{ nope }}", &host));
	assert_int_equal(err.code, SLUICE_EUSAGE);
	assert_null(try_render("{{ 1 + }}", &host));
	assert_int_equal(err.code, SLUICE_EUSAGE);
}

static void test_output_on_error(void **state)
{
	struct tpl *t = parse_ok("part one {{ ref('a') }} {{ nope }}");

	(void)state;
	buf_reset(&out);
	buf_puts(&out, "kept|");
	assert_int_equal(tpl_render(t, &host, &scratch, &out, &err), SLUICE_EUSAGE);
	/* nothing of the failed render is left behind */
	assert_string_equal(out.s, "kept|");
	assert_int_equal(out.len, 5);

	t = parse_ok("more");
	assert_int_equal(tpl_render(t, &host, &scratch, &out, &err), 0);
	assert_string_equal(out.s, "kept|more");
}

static void test_nesting_limit(void **state)
{
	struct buf src = BUF_INIT;
	int i;

	(void)state;
	buf_puts(&src, "{{ ");
	for (i = 0; i < 5000; i++)
		buf_addc(&src, '(');
	buf_addc(&src, '1');
	for (i = 0; i < 5000; i++)
		buf_addc(&src, ')');
	buf_puts(&src, " }}");
	assert_null(try_render(src.s, &host));
	assert_non_null(strstr(err.msg, "nested too deeply"));

	buf_reset(&src);
	buf_puts(&src, "{{ 0");
	for (i = 0; i < 5000; i++)
		buf_puts(&src, " + 1");
	buf_puts(&src, " }}");
	assert_null(try_render(src.s, &host));
	assert_non_null(strstr(err.msg, "nested too deeply"));

	buf_reset(&src);
	for (i = 0; i < 5000; i++)
		buf_puts(&src, "{% if true %}");
	assert_null(try_render(src.s, &host));
	assert_non_null(strstr(err.msg, "nested too deeply"));

	/* ordinary depths are fine */
	buf_reset(&src);
	buf_puts(&src, "{{ ((((((((((1)))))))))) + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 }}");
	assert_string_equal(render(src.s), "11");
	buf_release(&src);
}

/* ---- lifetime, determinism ---------------------------------------------- */

static void test_source_not_kept(void **state)
{
	const char *text = "{% for x in ['a', 'b'] %}{{ x|upper }}-{{ 'lit' }}{% endfor %} tail";
	char *src = strdup(text);
	struct tpl *t;

	(void)state;
	assert_int_equal(tpl_parse(&scratch, PATH, src, strlen(src), &t, &err), 0);
	memset(src, '#', strlen(src));
	free(src);
	buf_reset(&out);
	assert_int_equal(tpl_render(t, &host, &scratch, &out, &err), 0);
	assert_string_equal(out.s, "A-litB-lit tail");
}

static void test_not_nul_terminated(void **state)
{
	const char src[] = "{{ 1 + 1 }}{{ 'ignored' }}";
	struct tpl *t;

	(void)state;
	assert_int_equal(tpl_parse(&scratch, PATH, src, 11, &t, &err), 0);
	buf_reset(&out);
	assert_int_equal(tpl_render(t, &host, &scratch, &out, &err), 0);
	assert_string_equal(out.s, "2");
	/* cut inside a tag: the tag is unclosed */
	assert_int_equal(tpl_parse(&scratch, PATH, src, 9, &t, &err), SLUICE_EUSAGE);
	assert_string_equal(err.msg, PATH ":1:1: unclosed '{{' (expected '}}')");
}

static void test_deterministic(void **state)
{
	const char *src = "{% for k, v in {'z': 1, 'a': [1.5, none], 'm': {'x': true}}.items() %}"
			  "{{ k }}={{ v }};{% endfor %}{{ config(a=1) }}{{ ref('r') }}";
	struct tpl *t = parse_ok(src);
	struct buf first = BUF_INIT;
	int i;

	(void)state;
	for (i = 0; i < 3; i++) {
		buf_reset(&out);
		assert_int_equal(tpl_render(t, &host, &scratch, &out, &err), 0);
		if (!i)
			buf_add(&first, out.s, out.len);
		assert_string_equal(out.s, first.s);
	}
	assert_string_equal(first.s, "z=1;a=[1.5, None];m={'x': True};\"analytics\".\"r\"");
	buf_release(&first);
}

/* ---- static walk -------------------------------------------------------- */

struct found {
	struct buf b;     /* "name(args; kw) @line:col\n" per call */
	int n, stop_at;
};

static int collect(void *ud, const struct tpl_call *c)
{
	struct found *f = ud;
	size_t i;

	f->n++;
	buf_printf(&f->b, "%s(", c->name);
	for (i = 0; i < c->nargs; i++) {
		if (i)
			buf_puts(&f->b, ", ");
		val_repr(&c->args[i], &f->b);
	}
	for (i = 0; i < c->nkw; i++) {
		buf_printf(&f->b, "%s%s=", i || c->nargs ? ", " : "", c->kwnames[i]);
		val_repr(&c->kwargs[i], &f->b);
	}
	buf_printf(&f->b, ") %s:%d:%d\n", c->path, c->line, c->col);
	return f->n == f->stop_at ? 42 : 0;
}

static const char *walk(const char *src, const char *name, int stop_at, int *rc)
{
	static struct found f;
	struct tpl *t = parse_ok(src);

	buf_release(&f.b);
	f.n = 0;
	f.stop_at = stop_at;
	*rc = tpl_each_call(t, name, collect, &f, &scratch);
	buf_reset(&out);
	buf_add(&out, f.b.s, f.b.len);
	buf_release(&f.b);
	return out.s;
}

static void test_each_call(void **state)
{
	int rc;

	(void)state;
	assert_string_equal(walk("{% if is_incremental() %}\n"
				 "  {{ ref('a') }}\n"
				 "{% elif var('x') %}{{ ref('b') }}\n"
				 "{% else %}{{ ref(\"c\", v=2) }}{% endif %}\n"
				 "{% for m in [ref('d')] if m != ref('e') %}{{ ref('f') }}{% else %}{{ ref('g') }}{% endfor %}\n"
				 "{% set x = ref('h') %}{% set y %}{{ ref('i') }}{% endset %}\n"
				 "{{ 'x'|replace(ref('j'), 'y')|default(ref('k')) }} {{ ref('l') if ref('m') else ref('n') }}\n"
				 "{{ config(post_hook=ref('o')) }} {{ [1, ref('p')] }} {{ {'k': ref('q')}['k'] }}\n"
				 "{{ not ref('r') }} {{ -ref('s') }} {{ ref('t') ~ ref('u') }} {{ ref('v') in ref('w') }}\n"
				 "{{ ref('x').y }} {{ ref('y')[ref('z')] }} {{ ref('aa') is defined }} {% do ref('bb') %}",
				 "ref", 0, &rc),
			    "ref('a') " PATH ":2:6\n"
			    "ref('b') " PATH ":3:23\n"
			    "ref('c', v=2) " PATH ":4:14\n"
			    "ref('d') " PATH ":5:14\n"
			    "ref('e') " PATH ":5:32\n"
			    "ref('f') " PATH ":5:46\n"
			    "ref('g') " PATH ":5:70\n"
			    "ref('h') " PATH ":6:12\n"
			    "ref('i') " PATH ":6:37\n"
			    "ref('j') " PATH ":7:16\n"
			    "ref('k') " PATH ":7:39\n"
			    "ref('l') " PATH ":7:55\n"
			    "ref('m') " PATH ":7:67\n"
			    "ref('n') " PATH ":7:81\n"
			    "ref('o') " PATH ":8:21\n"
			    "ref('p') " PATH ":8:41\n"
			    "ref('q') " PATH ":8:63\n"
			    "ref('r') " PATH ":9:8\n"
			    "ref('s') " PATH ":9:24\n"
			    "ref('t') " PATH ":9:39\n"
			    "ref('u') " PATH ":9:50\n"
			    "ref('v') " PATH ":9:65\n"
			    "ref('w') " PATH ":9:77\n"
			    "ref('x') " PATH ":10:4\n"
			    "ref('y') " PATH ":10:21\n"
			    "ref('z') " PATH ":10:30\n"
			    "ref('aa') " PATH ":10:46\n"
			    "ref('bb') " PATH ":10:76\n");
	assert_int_equal(rc, 0);

	/* non-literal arguments are skipped, literal ones of every kind kept */
	assert_string_equal(walk("{{ ref(name) }}{{ ref('a' ~ 'b') }}{{ ref(var('m')) }}{{ ref('x', v=y) }}"
				 "{{ ref('pkg', 'm', -1, 2.5, none, true, ['l', 1], {'d': [none]}, k=False) }}"
				 "{{ x.ref('method') }}{{ source('s', 't') }}{{ ref() }}",
				 "ref", 0, &rc),
			    "ref('pkg', 'm', -1, 2.5, None, True, ['l', 1], {'d': [None]}, k=False) " PATH ":1:77\n"
			    "ref() " PATH ":1:196\n");
	assert_string_equal(walk("{{ config(materialized='table', tags=['a', 'b']) }}{{ config(enabled=var('e')) }}",
				 "config", 0, &rc),
			    "config(materialized='table', tags=['a', 'b']) " PATH ":1:4\n");
	/* a call of another name inside the argument list is walked too */
	assert_string_equal(walk("{{ config(pre_hook=source('s', 't')) }}", "source", 0, &rc),
			    "source('s', 't') " PATH ":1:20\n");

	/* the callback stops the walk and its value is returned */
	assert_string_equal(walk("{{ ref('a') }}{{ ref('b') }}{{ ref('c') }}", "ref", 2, &rc),
			    "ref('a') " PATH ":1:4\nref('b') " PATH ":1:18\n");
	assert_int_equal(rc, 42);

	assert_string_equal(walk("plain text, no calls", "ref", 0, &rc), "");
	assert_int_equal(rc, 0);
}

static int count_calls(void *ud, const struct tpl_call *c)
{
	(void)c;
	(*(int *)ud)++;
	return 0;
}

static void test_each_call_without_arena(void **state)
{
	struct tpl *t = parse_ok("{{ ref('a', 'b') }}{% if x %}{{ ref('c', k=1) }}{% endif %}");
	int n = 0;

	(void)state;
	assert_int_equal(tpl_each_call(t, "ref", count_calls, &n, NULL), 0);
	assert_int_equal(n, 2);
}

/* The static value of a nested call: ref('x') -> "ref:x"; anything else is not static. */
static int inner_ref(void *ud, const struct tpl_call *c, struct val *ret)
{
	struct found *f = ud;

	if (strcmp(c->name, "ref") || c->nargs != 1 || c->args[0].kind != V_STR)
		return 1;
	buf_printf(&f->b, "(inner ref %s at %d:%d) ", c->args[0].u.str.s, c->line, c->col);
	*ret = val_str(c->args[0].u.str.s);
	return 0;
}

static int inner_fails(void *ud, const struct tpl_call *c, struct val *ret)
{
	(void)ud;
	(void)c;
	(void)ret;
	return -7;
}

static const char *walk_nested(const char *src, int (*inner)(void *, const struct tpl_call *, struct val *), int *rc)
{
	static struct found f;
	struct tpl *t = parse_ok(src);

	buf_release(&f.b);
	f.n = 0;
	f.stop_at = 0;
	*rc = tpl_each_call_nested(t, "config", collect, inner, &f, &scratch);
	buf_reset(&out);
	buf_add(&out, f.b.s, f.b.len);
	buf_release(&f.b);
	return out.s;
}

static void test_each_call_nested(void **state)
{
	const char *src = "{{ config(materialized='table', depends_on=[ref('a'), 'b'], meta={'k': ref('c')}) }}\n"
			  "{{ config(tags=[var('t')]) }}{{ config(x=ref(name)) }}{{ config(y=ref('d').attr) }}";
	int rc;

	(void)state;
	/* without inner, a config() holding a call is skipped whole (the old behaviour) */
	assert_string_equal(walk(src, "config", 0, &rc), "");
	/* with it, nested calls with literal arguments take inner's value; others still skip their config() */
	assert_string_equal(walk_nested(src, inner_ref, &rc),
			    "(inner ref a at 1:45) (inner ref c at 1:72) "
			    "config(materialized='table', depends_on=['a', 'b'], meta={'k': 'c'}) " PATH ":1:4\n");
	assert_int_equal(rc, 0);
	/* an error from inner stops the walk with its code */
	walk_nested(src, inner_fails, &rc);
	assert_int_equal(rc, -7);
}


/* ---- macros ------------------------------------------------------------- */

static void test_macros(void **state)
{
	(void)state;
	/* a definition prints nothing; defaults, keywords */
	assert_render("{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}"
		      "{{ greet('a') }} {{ greet('b', '?') }} {{ greet(punct='.', name='c') }}",
		      "Hello a! Hello b? Hello c.");
	/* called before it is defined: definitions belong to the whole file */
	assert_render("{{ m() }}{% macro m() %}x{% endmacro %}", "x");
	/* return() gives a value, not text */
	assert_render("{% macro two() %}ignored{{ return([1, 2]) }}{% endmacro %}{{ two() | length }}", "2");
	assert_render("{% macro pick(x) %}{% if x %}{{ return('yes') }}{% endif %}{{ return('no') }}{% endmacro %}"
		      "{{ pick(1) }} {{ pick(0) }}", "yes no");
	/* varargs and kwargs collect what the parameters do not take */
	assert_render("{% macro v(a) %}{{ a }} {{ varargs }} {{ kwargs }}{% endmacro %}{{ v(1, 2, 3, k=4) }}",
		      "1 [2, 3] {'k': 4}");
	/* a parameter without an argument or a default is none */
	assert_render("{% macro n(a, b) %}{{ b is none }}{% endmacro %}{{ n(1) }}", "True");
	/* defaults are evaluated at the call, and may use earlier parameters */
	assert_render("{% macro d(a, b=a * 2) %}{{ b }}{% endmacro %}{{ d(3) }}", "6");
	/* recursion */
	assert_render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}", "321");
	/* a macro sees its template's top-level names, not its caller's loop variables */
	assert_render("{% set z = 1 %}{% macro m() %}{{ z }}{% endmacro %}{{ m() }}", "1");
	assert_error("{% macro m() %}{{ i }}{% endmacro %}{% for i in [1] %}{{ m() }}{% endfor %}",
		     PATH ":1:58 \u2192 " PATH ":1:19: undefined name 'i'");
	/* free names go to the host, as the model's do */
	assert_render("{% macro r() %}{{ ref('x') }} {{ this }}{% endmacro %}{{ r() }}", "\"analytics\".\"x\" \"analytics\".\"m\"");
	/* a macro is a value */
	assert_render("{% macro m(x) %}<{{ x }}>{% endmacro %}{% set f = m %}{{ f(1) }} {{ m is callable }}", "<1> True");
	/* whitespace control around definitions */
	assert_render("a\n{%- macro m() -%}\n  x\n{%- endmacro -%}\nb", "ab");
}

static void test_macro_errors(void **state)
{
	(void)state;
	assert_error("{% macro g(a) %}{% endmacro %}{{ g(1, 2) }}", PATH ":1:34: macro 'g' takes 1 argument (2 given)");
	assert_error("{% macro g(a) %}{% endmacro %}{{ g(b=1) }}", PATH ":1:34: macro 'g' has no parameter 'b'");
	assert_error("{% macro g(a) %}{% endmacro %}{{ g(1, a=1) }}", PATH ":1:34: macro 'g' got two values for 'a'");
	assert_error("{% macro g(a=1, b) %}{% endmacro %}",
		     PATH ":1:17: parameter 'b' without a default follows one with a default");
	assert_error("{% macro g(a, a) %}{% endmacro %}", PATH ":1:15: duplicate parameter 'a'");
	assert_error("{% macro g() %}{% endmacro %}{% macro g() %}{% endmacro %}",
		     PATH ":1:39: macro 'g' is defined twice (first at 1:1)");
	assert_error("{% macro g() %}x", PATH ":1:17: unclosed {% macro %} opened at 1:1");
	assert_error("{{ return(1) }}", PATH ":1:4: return() outside a macro");
	/* a recursion without an end stops at the limit, with a clear message */
	assert_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
		     PATH ":1:42 \u2192 " PATH ":1:19 \u2192 " PATH ":1:19: macro 'f': more than 100 calls nested "
		     "(a recursion that never ends?)");
	/* a recursion that branches (2^60 calls) stops at 20,000 calls, not after the age of the universe */
	assert_true(strstr(render_err("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
				      "{{ f(60) }}"),
			   "more than 20000 macro calls in one render (a recursion that branches?)") != NULL);
	/* an error inside macros prints the chain of calls, outermost first */
	assert_error("{% macro inner() %}\n  {{ y }}{% endmacro %}\n{% macro outer() %}{{ inner() }}{% endmacro %}\n{{ outer() }}",
		     PATH ":4:4 \u2192 " PATH ":3:23 \u2192 " PATH ":2:6: undefined name 'y'");
	/* a host error inside a macro carries its own code */
	assert_null(try_render("{% macro m() %}{{ flaky() }}{% endmacro %}{{ m() }}", &host));
	assert_int_equal(err.code, SLUICE_ECONN);
}

static void test_call_and_filter_blocks(void **state)
{
	(void)state;
	assert_render("{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}"
		      "{% set x = 1 %}{% call wrap('b') %}in{{ x }}{% endcall %}", "<b>in1</b>");
	/* the body sees the names where it stands, a loop variable too */
	assert_render("{% macro twice() %}{{ caller() }}{{ caller() }}{% endmacro %}"
		      "{% for i in [1, 2] %}{% call twice() %}{{ i }}{% endcall %}{% endfor %}", "1122");
	/* a host function called by {% call %} gets the block's text (dbt's statement) */
	assert_render("{% call wrapped() %}select {{ 1 + 1 }}{% endcall %}", "<select 2>");
	assert_render("{% filter upper %}ab{{ 'c' }}{% endfilter %}", "ABC");
	assert_render("{% filter replace('a', 'b') | upper %}aa{% endfilter %}", "BB");
	assert_error("{% call 1 %}{% endcall %}", PATH ":1:9: {% call %} expects a call of a macro");
}

static void test_namespace_and_mutation(void **state)
{
	(void)state;
	assert_render("{% set ns = namespace(found=false) %}{% for x in [1, 2, 3] %}{% if x == 2 %}"
		      "{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }}", "True");
	assert_render("{% set l = [] %}{% for x in [1, 2] %}{% do l.append(x * 2) %}{% endfor %}{{ l }}", "[2, 4]");
	assert_render("{% set l = [1] %}{% do l.extend([2, 3]) %}{% do l.insert(0, 0) %}{{ l.pop() }} {{ l }}"
		      "{% do l.remove(1) %} {{ l }}", "3 [0, 1, 2] [0, 2]");
	/* lists are values: a second name keeps what it was given */
	assert_render("{% set a = [1] %}{% set b = a %}{% do a.append(2) %}{% do b.append(3) %}{{ a }} {{ b }}",
		      "[1, 2] [1, 3]");
	assert_render("{% set d = {'a': 1} %}{% do d.update({'b': 2}) %}{{ d }} {{ d.setdefault('c', 3) }} "
		      "{{ d.pop('a') }} {{ d }}", "{'a': 1, 'b': 2} 3 1 {'b': 2, 'c': 3}");
	/* a dict inside a namespace changes in place */
	assert_render("{% set ns = namespace(cols=[]) %}{% for c in ['a', 'b'] %}{% do ns.cols.append(c) %}{% endfor %}"
		      "{{ ns.cols | join(',') }}", "a,b");
	assert_render("{{ dict(a=1) }} {{ zip([1, 2], ['a', 'b']) }}", "{'a': 1} [[1, 'a'], [2, 'b']]");
	assert_error("{% set s = 'x' %}{% set s.a = 1 %}", PATH ":1:21: cannot set 's.a': 's' is string, not a namespace");
}

static void test_function_values(void **state)
{
	(void)state;
	/* a host's dict of functions (a package's macros) and a function a call returns */
	assert_render("{{ pkg.echo(1, k=2) }}", "1; k=2");
	assert_render("{{ pick('echo')(5) }}", "5;");
	assert_error("{{ (1)(2) }}", PATH ":1:5: 'number' is not callable");
	/* a string with attributes: a relation */
	assert_render("{{ rel }} {{ rel.schema }}.{{ rel.identifier }} {{ rel ~ '' }}",
		      "\"analytics\".\"m\" analytics.m \"analytics\".\"m\"");
}

static int collect_name(void *ud, const char *name, const char *attr, const struct val *arg0)
{
	buf_printf(ud, "%s%s%s%s%s ", name, attr ? "." : "", attr ? attr : "",
		   arg0 && arg0->kind == V_STR ? ":" : "", arg0 && arg0->kind == V_STR ? arg0->u.str.s : "");
	return 0;
}

static void test_macro_introspection(void **state)
{
	const char *src = "{% macro a(x=dflt) %}{{ dbt_utils.star(x) }}{{ adapter.dispatch('y', 'p')() }}{% endmacro %}"
			  "{% test not_null(model) %}select{% endtest %}{{ b(1) }}";
	struct buf names = BUF_INIT;
	struct tpl *t;
	size_t len;
	const char *text;

	(void)state;
	t = parse_ok(src);
	assert_int_equal(tpl_macro_count(t), 2);
	assert_string_equal(tpl_macro_name(tpl_macro_at(t, 0)), "a");
	assert_string_equal(tpl_macro_name(tpl_macro_at(t, 1)), "test_not_null");
	assert_true(tpl_macro_is_test(tpl_macro_at(t, 1)));
	text = tpl_macro_text(tpl_macro_at(t, 1), &len);
	assert_int_equal(len, strlen("{% test not_null(model) %}select{% endtest %}"));
	assert_memory_equal(text, "{% test not_null(model) %}select{% endtest %}", len);
	tpl_each_name(t, NULL, collect_name, &names);
	assert_string_equal(names.s, "b ");
	buf_reset(&names);
	tpl_each_name(t, tpl_macro_at(t, 0), collect_name, &names);
	assert_string_equal(names.s, "dflt dbt_utils.star x adapter.dispatch:y ");
	buf_release(&names);
}

static void test_more_filters(void **state)
{
	(void)state;
	assert_render("{{ ['b', 'A', 'c'] | sort }} {{ [3, 1, 2] | sort(reverse=true) }}", "['A', 'b', 'c'] [3, 2, 1]");
	assert_render("{{ [{'n': 2}, {'n': 1}] | sort(attribute='n') | map(attribute='n') | list }}", "[1, 2]");
	assert_render("{{ [1, 2, 2, 1] | unique | list }} {{ ['a', 'A'] | unique | list }}", "[1, 2] ['a']");
	assert_render("{{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3] | reject('equalto', 2) | list }}",
		      "[1, 3] [1, 3]");
	assert_render("{{ [{'n': 'a', 'x': 1}, {'n': 'b'}] | selectattr('x', 'defined') | map(attribute='n') | list }}"
		      " {{ [{'n': 'a', 'x': 1}, {'n': 'b'}] | rejectattr('x') | map(attribute='n') | first }}", "['a'] b");
	assert_render("{{ ['a', 'b'] | map('upper') | join(',') }} {{ ['a,b'] | map('replace', ',', '-') | list }}",
		      "A,B ['a-b']");
	assert_render("{{ 'true' | as_bool }} {{ '3' | as_number + 1 }} {{ 'x' | as_bool }} {{ 1 | as_text }}",
		      "True 4 x 1");
	assert_render("{{ 'hello wide-world' | title }} {{ 'hELLO' | capitalize }}", "Hello Wide-World Hello");
	assert_render("{{ -3.7 | abs }} {{ 3.14159 | round(2) }} {{ 2.5 | round }} {{ 2.1 | round(method='ceil') }}",
		      "3.7 3.14 3 3");
	assert_render("{{ 'a\nb\n\nc' | indent(2) }}|{{ 'a\nb' | indent('> ', first=true) }}", "a\n  b\n\n  c|> a\n> b");
	assert_render("{{ 'one two,  three_x' | wordcount }}", "3");
	assert_render("{{ [3, 1, 2] | max }} {{ [3, 1, 2] | min }} {{ [1, 2, 3] | sum }} {{ [1, 2] | reverse | list }}"
		      " {{ 'ab' | reverse }} {{ 'ab' | list }}", "3 1 6 [2, 1] ba ['a', 'b']");
	assert_render("{{ '1.5' | float + 1 }} {{ 'x' | float }} {{ 'x' | float(2) }}", "2.5 0 2");
	assert_error("{{ [1] | map }}", PATH ":1:10: map: give attribute='name' or the name of a filter");
	assert_error("{{ 1 | sort(foo=1) }}", PATH ":1:8: filter 'sort' takes no keyword argument 'foo'");
}

static void test_splats_slices_powers(void **state)
{
	(void)state;
	assert_render("{% macro v(a, b=0) %}{{ a }}{{ b }} {{ kwargs }}{% endmacro %}"
		      "{% set l = [1, 2] %}{% set d = {'k': 3} %}{{ v(*l) }}|{{ v(1, **d) }}|{{ echo(0, *l, x=1, **d) }}",
		      "12 {}|10 {'k': 3}|0, 1, 2; x=1 k=3");
	assert_render("{{ [1, 2, 3, 4][1:3] }} {{ [1, 2, 3][:-1] }} {{ [1, 2, 3][::-1] }} {{ 'héllo'[1:] }} {{ 'abc'[5:] }}",
		      "[2, 3] [1, 2] [3, 2, 1] éllo ");
	assert_render("{{ 2 ** 10 }} {{ 2 * 3 ** 2 }} {{ 7 // 2 }} {{ -7 // 2 }}", "1024 18 3 -4");
	/* a list doubled at each level of a recursion stops at a million items */
	assert_true(strstr(render_err("{% macro f(n, acc=[1]) %}{% if n %}{{ f(n - 1, acc + acc) }}{% endif %}{% endmacro %}"
				      "{{ f(40) }}"), "list too large (1048576 items)") != NULL);
	assert_render("{{ [1, 2] + [3] + [] }}", "[1, 2, 3]");
	/* a string is iterated by character up to the same limit: text that grows at each level stops */
	assert_render("{{ ('ab' * 500000) | list | length }}", "1000000");
	assert_render("{{ 'héllo'[1:3] }} {{ 'héllo'[::-1] }} {{ 'héllo'[-2:] }} {{ ('xy' * 1000001)[1:4] }}",
		      "él olléh lo yxy");
	assert_error("{{ ('ab' * 500001) | list | length }}",
		     PATH ":1:22: string too long to iterate (1000002 bytes, the limit is 1000000)");
	assert_true(strstr(render_err("{% macro f(n) %}{% if n %}{{ f(n - 1) | map(attribute='q') | list }}"
				      "{% else %}abc{% endif %}{% endmacro %}{{ f(9) }}"),
			   "string too long to iterate") != NULL);
	/* repetition by doubling: any count, exact length and content */
	assert_render("{{ 'abc' * 5 }} {{ ('xy' * 1000001) | length }} {{ ('xy' * 1000001)[-3:] }}",
		      "abcabcabcabcabc 2000002 yxy");
	assert_error("{{ echo(*1) }}", PATH ":1:10: * needs a list, not number");
	assert_error("{{ echo(*[1], 2) }}", PATH ":1:15: an argument after *list or **dict");
	assert_error("{{ [1][::0] }}", PATH ":1:7: slice step cannot be zero");
}

static void test_more_tests(void **state)
{
	(void)state;
	assert_render("{{ 4 is divisibleby 2 }} {{ 3 is odd }} {{ 'x' is in ['x'] }} {{ 2 is eq 2 }} {{ 'ab' is lower }}"
		      " {{ 'AB' is upper }} {{ 1 is integer }} {{ 1.5 is float }} {{ true is true }} {{ 2 is gt(1) }}",
		      "True True True True True True True True True True");
	assert_render("{{ 3 is divisibleby 2 }} {{ 'x' is not in 'abc' }} {{ none is sameas none }}", "False True True");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_plain_text),
		T(test_each_call_nested),
		T(test_literals),
		T(test_operators),
		T(test_attr_and_index),
		T(test_if),
		T(test_for),
		T(test_scoping),
		T(test_set_block),
		T(test_whitespace_control),
		T(test_comments_and_raw),
		T(test_filters),
		T(test_default_filter),
		T(test_tests),
		T(test_methods),
		T(test_host_calls),
		T(test_no_host),
		T(test_syntax_errors),
		T(test_runtime_errors),
		T(test_host_errors),
		T(test_output_on_error),
		T(test_nesting_limit),
		T(test_source_not_kept),
		T(test_not_nul_terminated),
		T(test_deterministic),
		T(test_each_call),
		T(test_each_call_without_arena),
		T(test_macros),
		T(test_macro_errors),
		T(test_call_and_filter_blocks),
		T(test_namespace_and_mutation),
		T(test_function_values),
		T(test_macro_introspection),
		T(test_more_filters),
		T(test_more_tests),
		T(test_splats_slices_powers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
