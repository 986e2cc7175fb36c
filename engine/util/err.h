/*
 * err.h: the error record every fallible function fills.
 *
 * Functions return 0 on success and a negative SLUICE_E* code on failure,
 * after writing a one-line message into a caller-provided struct sluice_err.
 * The message names the place (file:line:col, model, connection) and never
 * contains a secret. Only main() and cmd-*.c print errors or pick exit codes.
 */
#ifndef SLUICE_ERR_H
#define SLUICE_ERR_H

#include <stddef.h>

enum {
	SLUICE_OK = 0,
	SLUICE_EUSAGE = -1,   /* bad flags, bad project files: exit 2 */
	SLUICE_EDB = -2,      /* a statement failed: the node fails, exit 1 */
	SLUICE_ECONN = -3,    /* could not connect: exit 3 */
	SLUICE_EIO = -4,      /* file system or network I/O */
	SLUICE_ECANCEL = -5,  /* cancelled by a signal */
	SLUICE_ENOTSUP = -6,  /* the connector lacks a capability */
	SLUICE_ELOCK = -7,    /* state lock held by someone else */
	SLUICE_ECONFLICT = -8, /* a conditional write's condition failed: the object changed */
};

struct sluice_err {
	int code;
	char sqlstate[6];     /* five characters and NUL, or "" */
	char msg[2048];
};

#define SLUICE_ERR_INIT { 0, "", "" }

/* Set code and message; returns code so call sites read `return err_set(...)`. */
int err_set(struct sluice_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepend "prefix: " (printf-style) to the message already in e; returns e->code. */
int err_prefix(struct sluice_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Exit code a command should use for an error code. */
int err_exit_code(int code);

/*
 * Messages collected instead of stopping at the first: the errors of
 * independent parts of a project (each file, each entry, each ref), or
 * warnings. Keeps the first ERR_LIST_KEEP messages and counts the rest.
 * Zero-initialise; err_list_release frees the messages.
 */
#define ERR_LIST_KEEP 50

struct err_list {
	char *msg[ERR_LIST_KEEP];  /* heap, the first n added */
	size_t n;
	size_t total;              /* added, kept or not */
};

/* Add a copy of msg (printf-style). l may be NULL: nothing happens. */
void err_list_add(struct err_list *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_list_release(struct err_list *l);

/*
 * An error in one independent part: with a list, note e's message in it and
 * return 0 so that the caller goes on with the next part; without a list,
 * or for errors that are not the project's (I/O, connections), return rc.
 */
int err_collect(struct err_list *l, const struct sluice_err *e, int rc);

#endif
