/*
 * pgcopy.h: PostgreSQL's binary COPY format, read as a stream and cut
 * into whole rows, for stages with format='binary' (stage.c,
 * docs/stages.md). It knows the framing only: a header (signature,
 * flags, an extension), each row as a 16-bit field count and each field
 * as a 32-bit length (-1: NULL) and its bytes, and -1 for a count at the
 * end. What a field holds is the server's business.
 */
#ifndef SLUICE_PGCOPY_H
#define SLUICE_PGCOPY_H

#include <stddef.h>
#include "util/err.h"

#define PGCOPY_SUFFIX ".pgcopy"        /* a stage part in this format, before any compression suffix */
#define PGCOPY_HEADER_LEN 19           /* the signature, flags 0 and no extension */
extern const char pgcopy_header[PGCOPY_HEADER_LEN];
extern const char pgcopy_trailer[2];

enum pgcopy_phase { PGCOPY_HEAD, PGCOPY_EXT_LEN, PGCOPY_EXT, PGCOPY_COUNT, PGCOPY_LEN, PGCOPY_DATA, PGCOPY_END };

struct pgcopy_scan {
	enum pgcopy_phase phase;
	unsigned char word[4];         /* the count or length being read */
	int have;
	long long left;                /* bytes of the header, extension or field still to pass */
	int fields;                    /* fields of the row still to read */
};

/*
 * Bytes of rows, in order: copied as they are, they make the rows
 * without the stream's header and trailer. row_end: a row ends with
 * these bytes. Returns 0, or non-zero with err set to stop the scan.
 */
typedef int (*pgcopy_emit_fn)(void *ud, const void *bytes, size_t len, int row_end, struct sluice_err *err);

void pgcopy_scan_init(struct pgcopy_scan *s);
/* Feed the next len bytes of a stream, cut anywhere. 0, or the emit's code, or SLUICE_EDB for a stream that is not one. */
int pgcopy_feed(struct pgcopy_scan *s, const void *data, size_t len, pgcopy_emit_fn emit, void *ud,
		struct sluice_err *err);
/* Whether the stream's trailer has been read: it ended whole. */
int pgcopy_ended(const struct pgcopy_scan *s);

#endif
