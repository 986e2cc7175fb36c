/*
 * retry.c: the classification of retry.h. Plain string rules, kept in
 * one table each so that a new transient case is one line.
 */
#include <string.h>
#include "retry.h"

static const char *const transient_states[] = {
	"57P01",   /* admin_shutdown: terminated, or the server stopping */
	"57P02",   /* crash_shutdown */
	"57P03",   /* cannot_connect_now: starting up */
	"40001",   /* serialization_failure */
	"40P01",   /* deadlock_detected */
	"53300",   /* too_many_connections */
	NULL
};

/* Lower-case phrases of drivers, libpq and libcurl for a lost or refused connection. */
static const char *const transient_words[] = {
	"connection refused",
	"connection reset",
	"server closed the connection unexpectedly",
	"terminating connection due to administrator command",
	"the database system is starting up",
	"the database system is shutting down",
	"no connection to the server",
	"could not receive data from server",
	"could not send data to server",
	"couldn't connect to server",
	"broken pipe",
	"ssl syscall error: eof detected",
	NULL
};

static int contains_nocase(const char *hay, const char *needle)
{
	return strcasestr(hay, needle) != NULL;
}

/* "(HTTP 503)": how the S3 client names a status it gave up on. */
static int s3_5xx(const char *m)
{
	const char *p = m;

	while ((p = strstr(p, "(HTTP 5")) != NULL) {
		if (p[7] >= '0' && p[7] <= '9' && p[8] >= '0' && p[8] <= '9' && p[9] == ')')
			return 1;
		p++;
	}
	return 0;
}

int retry_transient(const char *sqlstate, const char *message)
{
	size_t i;

	if (sqlstate && *sqlstate) {
		if (!strncmp(sqlstate, "08", 2))
			return 1;
		for (i = 0; transient_states[i]; i++)
			if (!strcmp(sqlstate, transient_states[i]))
				return 1;
		/* Any other SQLSTATE is the database saying no: an error in the statement or the data. */
		return 0;
	}
	if (!message)
		return 0;
	if (s3_5xx(message))
		return 1;
	for (i = 0; transient_words[i]; i++)
		if (contains_nocase(message, transient_words[i]))
			return 1;
	return 0;
}

double retry_backoff(double first, int next)
{
	double d = first;
	int i;

	for (i = 2; i < next && d < 3600; i++)
		d *= 2;
	return d < 3600 ? d : 3600;
}
