/*
 * cmd-show.c: `sluice show <model> [--limit N] [--format table|csv|json]`:
 * a model's rows, read through whichever connector the model uses (the
 * equivalent of targets' tar_read). Built models are read from their
 * relation; ephemeral models run their compiled SQL. Memory stays bounded
 * at any --limit: csv and json stream, and the table takes its column
 * widths from the first rows, then streams.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "conn.h"
#include "cmd.h"
#include "ui.h"
#include "util/xalloc.h"

#define WIDTH_ROWS 500      /* rows buffered to size the table's columns */
#define MAX_WIDTH 60        /* wider values are cut, with "…" */

enum show_format { SHOW_TABLE, SHOW_CSV, SHOW_JSON };

struct show {
	enum show_format format;
	size_t ncols;
	char **names;
	size_t *width;
	char ***held;           /* table: the first rows, until widths are known */
	size_t nheld;
	int header_done;
	long long rows;
};

static void csv_field(const char *v)
{
	const char *p;

	if (!v)
		return;
	if (!strpbrk(v, ",\"\n\r")) {
		fputs(v, stdout);
		return;
	}
	putchar('"');
	for (p = v; *p; p++) {
		if (*p == '"')
			putchar('"');
		putchar(*p);
	}
	putchar('"');
}

/* Display width in characters (UTF-8 continuation bytes do not count). */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static void table_cell(const char *v, size_t width, int last)
{
	const char *s = v ? v : "NULL";
	size_t w = text_width(s), i, n = 0;

	if (w > width) {
		/* cut at a character boundary, leaving room for the ellipsis */
		for (i = 0; s[i] && n < width - 1; i++)
			n += ((unsigned char)s[i + 1] & 0xc0) != 0x80;
		fwrite(s, 1, i, stdout);
		fputs("…", stdout);
		w = width;
	} else {
		fputs(s, stdout);
	}
	if (!last)
		for (; w < width; w++)
			putchar(' ');
	fputs(last ? "\n" : " | ", stdout);
}

static void table_header(struct show *sh)
{
	size_t i, k;

	for (i = 0; i < sh->ncols; i++)
		table_cell(sh->names[i], sh->width[i], i + 1 == sh->ncols);
	for (i = 0; i < sh->ncols; i++) {
		for (k = 0; k < sh->width[i]; k++)
			putchar('-');
		fputs(i + 1 == sh->ncols ? "\n" : "-+-", stdout);
	}
	sh->header_done = 1;
}

static void table_flush(struct show *sh)
{
	size_t r, i;

	if (!sh->header_done)
		table_header(sh);
	for (r = 0; r < sh->nheld; r++) {
		for (i = 0; i < sh->ncols; i++) {
			table_cell(sh->held[r][i], sh->width[i], i + 1 == sh->ncols);
			free(sh->held[r][i]);
		}
		free(sh->held[r]);
	}
	sh->nheld = 0;
}

static void start_columns(struct show *sh, const struct sluice_row *row)
{
	size_t i;

	sh->ncols = row->ncols;
	sh->names = xcalloc(row->ncols ? row->ncols : 1, sizeof(char *));
	sh->width = xcalloc(row->ncols ? row->ncols : 1, sizeof(size_t));
	for (i = 0; i < row->ncols; i++) {
		sh->names[i] = xstrdup(row->names[i]);
		sh->width[i] = text_width(row->names[i]);
	}
	if (sh->format == SHOW_CSV) {
		for (i = 0; i < sh->ncols; i++) {
			if (i)
				putchar(',');
			csv_field(sh->names[i]);
		}
		putchar('\n');
	}
}

static int show_row(void *ud, const struct sluice_row *row)
{
	struct show *sh = ud;
	size_t i;

	if (!sh->names)
		start_columns(sh, row);
	sh->rows++;
	switch (sh->format) {
	case SHOW_CSV:
		for (i = 0; i < row->ncols; i++) {
			if (i)
				putchar(',');
			csv_field(row->values[i]);
		}
		putchar('\n');
		break;
	case SHOW_JSON: {
		json_t *o = json_object();
		char *text;
		for (i = 0; i < row->ncols; i++)
			json_object_set_new(o, row->names[i], row->values[i] ? json_string(row->values[i]) : json_null());
		text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		puts(text);
		free(text);
		json_decref(o);
		break;
	}
	case SHOW_TABLE:
		if (sh->header_done) {
			for (i = 0; i < row->ncols; i++)
				table_cell(row->values[i], sh->width[i], i + 1 == row->ncols);
			break;
		}
		if (!sh->held)
			sh->held = xcalloc(WIDTH_ROWS, sizeof(char **));
		sh->held[sh->nheld] = xcalloc(row->ncols ? row->ncols : 1, sizeof(char *));
		for (i = 0; i < row->ncols; i++) {
			size_t w = row->values[i] ? text_width(row->values[i]) : 4;
			sh->held[sh->nheld][i] = row->values[i] ? xstrdup(row->values[i]) : NULL;
			if (w > sh->width[i])
				sh->width[i] = w < MAX_WIDTH ? w : MAX_WIDTH;
		}
		if (++sh->nheld == WIDTH_ROWS)
			table_flush(sh);
		break;
	}
	return ferror(stdout) ? SLUICE_EIO : 0;
}

static void show_release(struct show *sh)
{
	size_t i;

	for (i = 0; i < sh->ncols; i++)
		free(sh->names[i]);
	free(sh->names);
	free(sh->width);
	free(sh->held);
}

static int parse_args(struct cli *cli, const char **model, long long *limit, enum show_format *fmt,
		      struct sluice_err *err)
{
	int i;

	*model = NULL;
	*limit = 10;
	*fmt = SHOW_TABLE;
	for (i = 0; i < cli->nargs; i++) {
		const char *a = cli->args[i];
		if (!strncmp(a, "--limit", 7)) {
			const char *v = a[7] == '=' ? a + 8 : (i + 1 < cli->nargs ? cli->args[++i] : "");
			char *end;
			*limit = strtoll(v, &end, 10);
			if (!*v || *end || *limit < 0)
				return err_set(err, SLUICE_EUSAGE, "--limit takes a number of rows, not '%s'", v);
		} else if (!*model) {
			*model = a;
		} else {
			return err_set(err, SLUICE_EUSAGE, "show takes one model, not '%s' too", a);
		}
	}
	if (!*model)
		return err_set(err, SLUICE_EUSAGE, "usage: sluice show MODEL [--limit N] [--format table|csv|json]");
	if (!cli->format || !strcmp(cli->format, "table"))
		*fmt = SHOW_TABLE;
	else if (!strcmp(cli->format, "csv"))
		*fmt = SHOW_CSV;
	else if (!strcmp(cli->format, "json"))
		*fmt = SHOW_JSON;
	else
		return err_set(err, SLUICE_EUSAGE, "--format takes table, csv or json, not '%s'", cli->format);
	return 0;
}

static int relation_exists(void *ud, const struct sluice_row *row)
{
	(void)row;
	*(int *)ud = 1;
	return 0;
}

int cmd_show(int argc, char **argv)
{
	static const char *const extra[] = { "--limit", NULL };
	struct cli cli = { 0 };
	struct session s;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;
	const struct dialect *d;
	struct show sh = { 0 };
	struct buf q = BUF_INIT, sql = BUF_INIT;
	struct arena scratch = ARENA_INIT;
	struct compile_opts o = { 0 };
	const struct node *n;
	const char *name;
	long long limit;
	int rc, exists = 0;

	if ((rc = cmd_open(argc, argv, extra, &cli, &s)))
		return rc;
	o.invocation_id = s.invocation_id;
	if ((rc = parse_args(&cli, &name, &limit, &sh.format, &err)))
		goto out;
	if (!(n = manifest_node(&s.manifest, name))) {
		rc = err_set(&err, SLUICE_EUSAGE, "no model named '%s'", name);
		goto out;
	}
	if (n->mat == MAT_SHELL && !val_get_bool(&n->config, "relation", 0)) {
		rc = err_set(&err, SLUICE_EUSAGE, "'%s' is a shell model that creates no relation: nothing to show", name);
		goto out;
	}
	if ((rc = conn_open(&s, n->connection, &c, &d, &err)))
		goto out;
	if (n->mat != MAT_EPHEMERAL) {   /* an ephemeral model is its query: always there */
		d->columns_query(&q, n->schema, n->identifier);
		if ((rc = c->drv->query(c, q.s, relation_exists, &exists, &err)))
			goto out;
		if (!exists) {
			rc = err_set(&err, SLUICE_EDB, "%s is not built yet (sluice run -s %s)", n->display, n->name);
			goto out;
		}
		buf_reset(&q);
	}
	if ((rc = manifest_read_sql(&s.manifest, n, &o, &scratch, &sql, &err)))
		goto out;
	buf_printf(&q, "SELECT * FROM %s AS sluice_show LIMIT %lld", sql.s, limit);
	rc = c->drv->query(c, q.s, show_row, &sh, &err);
	if (!rc && sh.format == SHOW_TABLE) {
		if (sh.names)
			table_flush(&sh);
		printf("(%lld row%s)\n", sh.rows, sh.rows == 1 ? "" : "s");
	}
out:
	conn_close(c);
	show_release(&sh);
	buf_release(&q);
	buf_release(&sql);
	arena_release(&scratch);
	cmd_close(&cli, &s);
	if (rc == SLUICE_EIO && ferror(stdout))
		return 1;
	if (rc)
		return cmd_fail(&err);
	return ui_flush() < 0 ? 1 : 0;
}
