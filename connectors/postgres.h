/*
 * postgres.h: the libpq driver (PostgreSQL, and Redshift over the
 * PostgreSQL protocol). Everything else about it is in connector.h.
 */
#ifndef SLUICE_POSTGRES_H
#define SLUICE_POSTGRES_H

#include "connector.h"

extern const struct sluice_connector pg_connector;

#endif
