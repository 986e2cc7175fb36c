/*
 * fuzz_template.c: the Jinja subset (engine/template.c). The input is a
 * template: parse it, walk its calls as the manifest does (ref, and
 * config with nested calls), and render it against a host that answers
 * a few functions and names the way sluice's own hosts do, and fails
 * one of them, so that errors raised mid-render are covered too.
 *
 * A template may ask for as much work as it likes: nested loops over
 * long strings, a string doubled or replaced into itself again and
 * again, range() of a million. That is the author's request, not a
 * defect, and would only make the fuzzer report timeouts; so inputs that
 * can ask for much (two loops in more than 256 bytes, three loops, two
 * replaces, many concatenations, range() or a repetition by a five-digit
 * number, a macro with range() or a loop in it: a macro may run 20,000
 * times) are skipped, and a timeout means the implementation itself is
 * slow.
 */
#include <string.h>
#include "../../engine/template.h"
#include "fuzz.h"

static size_t count(const uint8_t *data, size_t size, const char *word)
{
	size_t n = 0, wl = strlen(word), i;

	for (i = 0; i + wl <= size; i++)
		n += !memcmp(data + i, word, wl);
	return n;
}

/* Whether the template could ask for work far beyond its size. */
static int too_costly(const uint8_t *data, size_t size)
{
	size_t loops = count(data, size, "for");

	if ((count(data, size, "range") || count(data, size, "*")) && fuzz_big_number(data, size))
		return 1;
	/* a macro may run 20,000 times: with range() or a loop in it, that is the author's request too */
	if (count(data, size, "macro") && (count(data, size, "range") || loops))
		return 1;

	return loops > 2 || (loops == 2 && size > 256) || count(data, size, "replace") > 1 ||
	       count(data, size, "~") + count(data, size, "+") > 8;
}

static int host_call(void *ud, const struct tpl_call *c, struct val *out, struct sluice_err *err)
{
	(void)ud;
	if (!strcmp(c->name, "fail"))
		return err_set(err, SLUICE_EDB, "failed on purpose");
	if (!strcmp(c->name, "ref") || !strcmp(c->name, "source")) {
		if (c->nargs < 1 || c->args[0].kind != V_STR)
			return err_set(err, SLUICE_EUSAGE, "%s() takes a name", c->name);
		*out = val_str(arena_printf(c->arena, "\"s\".\"%s\"", c->args[0].u.str.s));
		return 0;
	}
	if (!strcmp(c->name, "var"))
		*out = c->nargs > 1 ? c->args[1] : val_str("v");
	else if (!strcmp(c->name, "is_incremental"))
		*out = val_bool(1);
	else if (!strcmp(c->name, "config"))
		*out = val_str("");
	else
		return 1;
	return 0;
}

static int host_lookup(void *ud, const char *name, struct arena *a, struct val *out)
{
	struct val d = val_dict_new(), l = val_list_new();

	(void)ud;
	if (!strcmp(name, "this")) {
		val_dict_set(a, &d, "schema", val_str("analytics"));
		val_dict_set(a, &d, "name", val_str("m"));
		*out = d;
	} else if (!strcmp(name, "target")) {
		val_list_push(a, &l, val_num(1));
		val_list_push(a, &l, val_str("two"));
		val_dict_set(a, &d, "name", val_str("dev"));
		val_dict_set(a, &d, "threads", val_num(4));
		val_dict_set(a, &d, "list", l);
		*out = d;
	} else {
		return 1;
	}
	return 0;
}

static int each(void *ud, const struct tpl_call *c)
{
	(void)c;
	++*(int *)ud;
	return 0;
}

static int inner(void *ud, const struct tpl_call *c, struct val *out)
{
	(void)ud;
	if (strcmp(c->name, "ref"))
		return 1;
	*out = val_str("r");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct tpl_host host = { NULL, host_call, host_lookup, NULL, NULL };
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a, scratch;
	struct buf out = BUF_INIT;
	struct tpl *t;
	int n = 0;

	if (too_costly(data, size))
		return 0;
	arena_init(&a);
	arena_init(&scratch);
	tpl_is_plain((const char *)data, size);
	if (tpl_parse(&a, "models/fuzz.sql", (const char *)data, size, &t, &err) == 0) {
		tpl_each_call(t, "ref", each, &n, &a);
		tpl_each_call_nested(t, "config", each, inner, &n, &a);
		tpl_render(t, &host, &scratch, &out, &err);
	}
	buf_release(&out);
	arena_release(&scratch);
	arena_release(&a);
	return 0;
}
