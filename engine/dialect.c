/*
 * dialect.c: quoting shared by all dialects, and the table of dialects.
 * The SQL each warehouse needs lives in dialect-<name>.c.
 */
#include <ctype.h>
#include <string.h>
#include "dialect.h"

extern const struct dialect dialect_postgres;
extern const struct dialect dialect_redshift;
extern const struct dialect dialect_redshift_serverless;

static const struct dialect *const dialects[] = {
	&dialect_postgres,
	&dialect_redshift,
	&dialect_redshift_serverless,
};

const struct dialect *dialect_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(dialects) / sizeof(dialects[0]); i++)
		if (!strcmp(dialects[i]->name, name))
			return dialects[i];
	return NULL;
}

static void quote_with(struct buf *b, const char *s, char q)
{
	buf_addc(b, q);
	for (; *s; s++) {
		if (*s == q)
			buf_addc(b, q);
		buf_addc(b, *s);
	}
	buf_addc(b, q);
}

void dialect_quote_ident(struct buf *b, const char *ident)
{
	quote_with(b, ident, '"');
}

int dialect_is_ident(const char *s)
{
	if (!s || !(isalpha((unsigned char)*s) || *s == '_'))
		return 0;
	for (s++; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return 0;
	return 1;
}

void dialect_folded_ident(struct buf *b, const char *ident)
{
	struct buf low = BUF_INIT;

	for (; *ident; ident++)
		buf_addc(&low, (char)tolower((unsigned char)*ident));
	dialect_quote_ident(b, low.s ? low.s : "");
	buf_release(&low);
}

void dialect_quote_literal(struct buf *b, const char *s)
{
	quote_with(b, s, '\'');
}

void dialect_literal(const struct dialect *d, struct buf *b, const char *s)
{
	if (d && d->quote_literal)
		d->quote_literal(b, s);
	else
		dialect_quote_literal(b, s);
}

void dialect_relation(struct buf *b, const char *schema, const char *ident)
{
	dialect_quote_ident(b, schema);
	buf_addc(b, '.');
	dialect_quote_ident(b, ident);
}

void dialect_session_tag_text(struct buf *b, const char *invocation_id, const char *user)
{
	buf_printf(b, DIALECT_TAG_PREFIX "%s user=%s", invocation_id, user);
}

void dialect_col_list(struct buf *b, const char *prefix, const char *const *cols, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		buf_printf(b, "%s%s%s", i ? ", " : "", prefix, cols[i]);
}

void dialect_key_match(struct buf *b, const char *l, const char *r, const char *const *keys, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		buf_printf(b, "%s%s.%s = %s.%s", i ? " AND " : "", l, keys[i], r, keys[i]);
}

void dialect_create_table_like(struct buf *b, const char *rel, const char *like)
{
	buf_printf(b, "CREATE TABLE %s (LIKE %s)", rel, like);
}

void dialect_create_table_columns(struct buf *b, const char *rel, const char *const *names,
				  const char *const *types, size_t n)
{
	size_t i;

	buf_printf(b, "CREATE TABLE %s (", rel);
	for (i = 0; i < n; i++) {
		buf_puts(b, i ? ", " : "");
		dialect_quote_ident(b, names[i]);
		buf_printf(b, " %s", types[i]);
	}
	buf_addc(b, ')');
}

/* The window counts every row before LIMIT cuts: one pass over the failing rows. */
void dialect_failures_query(struct buf *b, const char *sql, int limit)
{
	buf_printf(b, "SELECT count(*) OVER () AS __sluice_failures, sluice_failing.*\nFROM (\n%s\n) AS sluice_failing\nLIMIT %d",
		   sql, limit);
}

void dialect_sample_query(struct buf *b, const char *sql, int limit)
{
	buf_printf(b, "SELECT * FROM (\n%s\n) AS sluice_failing LIMIT %d", sql, limit);
}

void dialect_insert_select(struct buf *b, const char *target, const char *tmp, const char *const *cols, size_t n)
{
	buf_printf(b, "INSERT INTO %s (", target);
	dialect_col_list(b, "", cols, n);
	buf_puts(b, ")\nSELECT ");
	dialect_col_list(b, "", cols, n);
	buf_puts(b, " FROM ");
	dialect_quote_ident(b, tmp);
}
