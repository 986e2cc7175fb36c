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

#endif
