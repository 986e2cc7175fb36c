/*
 * seed.h: a seed's CSV file as a table: its header, its rows, the SQL type
 * of each column (inferred as dbt infers them, or given by column_types),
 * and the rows again as the plain CSV a COPY (or the ODBC connector's
 * load_csv) reads. Pure: no connection, no files; kind-seed.c runs it.
 *
 * Reading: RFC 4180 with any one-byte delimiter, "" inside quotes, CRLF or
 * LF line ends, a UTF-8 byte order mark skipped; no '\r' is left in a
 * value. An empty line at the end is not a row.
 *
 * Types, tried in dbt's order on every non-null value of a column:
 * number (integer when no value has a fractional part, else float8, as
 * dbt-postgres; bigint when an integer does not fit in 32 bits), date
 * (YYYY-MM-DD), timestamp (YYYY-MM-DD HH:MM:SS or ISO 8601 with T), boolean
 * (true/false, any case), else text. "" and "null" (any case) are NULL.
 * A column with no value at all is integer, as in dbt.
 */
#ifndef SLUICE_SEED_H
#define SLUICE_SEED_H

#include <stddef.h>
#include "util/arena.h"
#include "util/buf.h"
#include "util/err.h"
#include "value.h"

struct seed_table {
	size_t ncols, nrows;
	const char **names;        /* header as written */
	const char **types;        /* SQL type of each column */
	const char ***rows;        /* rows[r][c]; NULL is SQL NULL */
};

/*
 * Parse src (len bytes) into t, everything in a. delimiter: ',' by
 * default. column_types: a dict column -> SQL type, or NULL; a column it
 * names takes that type (its values are not inferred). Errors name path
 * and line: "seeds/x.csv:4: 3 fields, the header has 2".
 */
int seed_parse(struct arena *a, const char *path, const char *src, size_t len, char delimiter,
	       const struct val *column_types, struct seed_table *t, struct sluice_err *err);

/* The type dbt would infer for these values (n of them, NULL entries are NULL). */
const char *seed_infer_type(const char *const *values, size_t n);

/* The rows as CSV: comma-separated, every value quoted, NULL an unquoted empty field. */
void seed_write_csv(const struct seed_table *t, struct buf *out);

/*
 * Column c's name in SQL, quoted: with quote_columns, as written; without
 * (dbt's default), a plain identifier as PostgreSQL folds it (lower case),
 * anything else as written, since unquoted it would not parse.
 */
void seed_column_sql(const struct seed_table *t, size_t c, int quote_columns, struct buf *out);

#endif
