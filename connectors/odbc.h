/*
 * odbc.h: the unixODBC driver (psqlODBC for PostgreSQL, a vendor ODBC
 * driver for Redshift). Everything else about it is in connector.h; the
 * profile keys it reads are described in docs/odbc.md.
 */
#ifndef SLUICE_ODBC_H
#define SLUICE_ODBC_H

#include "connector.h"

extern const struct sluice_connector odbc_connector;

/*
 * Append "key=value" to a connection string, adding the ';' separator and
 * brace-quoting value when it holds ';', '{', '}', '=' or edge spaces
 * ('}' doubled inside braces). Exposed for the unit tests.
 */
void odbc_cs_add(struct buf *cs, const char *key, const char *value);

/*
 * The Amazon Redshift ODBC driver's IAM keys from settings `iam:`
 * (IAM=1;ClusterID;Region;DbUser, DbUser defaulting to user:, and
 * Profile), appended to cs; nothing without `iam:`. SLUICE_EUSAGE when cs
 * (a connection_string) already sets one. Exposed for the unit tests.
 */
int odbc_iam_keys(const char *name, const struct val *settings, struct buf *cs, struct sluice_err *err);

/*
 * Parse csv (len bytes, fed to the parser chunk bytes at a time, 0: at
 * once) as load_csv does, with no connection: 0 and the number of rows in
 * *rows, or the error load_csv would give for the same bytes. Exposed for
 * the fuzzer (tests/fuzz/fuzz_csv.c).
 */
int odbc_csv_parse(const char *csv, size_t len, size_t chunk, size_t ncols, long long *rows,
		   struct sluice_err *err);

#endif
