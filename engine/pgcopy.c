/* pgcopy.c: PostgreSQL's binary COPY stream cut into whole rows; see pgcopy.h. */
#include <stdint.h>
#include <string.h>
#include "pgcopy.h"

#define SIGNATURE_LEN 11
#define HEAD_LEN 15                    /* the signature and the flags; then the extension's length */

const char pgcopy_header[PGCOPY_HEADER_LEN] = "PGCOPY\n\377\r\n";   /* the rest: zero */
const char pgcopy_trailer[2] = { '\377', '\377' };

void pgcopy_scan_init(struct pgcopy_scan *s)
{
	memset(s, 0, sizeof(*s));
	s->phase = PGCOPY_HEAD;
	s->left = HEAD_LEN;
}

int pgcopy_ended(const struct pgcopy_scan *s)
{
	return s->phase == PGCOPY_END;
}

static long word_value(const struct pgcopy_scan *s)
{
	if (s->have == 2)
		return (int16_t)((s->word[0] << 8) | s->word[1]);
	return (int32_t)(((uint32_t)s->word[0] << 24) | ((uint32_t)s->word[1] << 16) | ((uint32_t)s->word[2] << 8) |
			 s->word[3]);
}

int pgcopy_feed(struct pgcopy_scan *s, const void *data, size_t len, pgcopy_emit_fn emit, void *ud,
		struct sluice_err *err)
{
	const unsigned char *p = data, *end = p + len, *from = p;
	size_t k;

	while (p < end) {
		switch (s->phase) {
		case PGCOPY_HEAD:
			if (HEAD_LEN - s->left < SIGNATURE_LEN &&
			    *p != (unsigned char)pgcopy_header[HEAD_LEN - s->left])
				return err_set(err, SLUICE_EDB, "the server's binary COPY has no signature");
			from = ++p;
			if (!--s->left)
				s->phase = PGCOPY_EXT_LEN;
			break;
		case PGCOPY_EXT:
			k = (size_t)(end - p) < (size_t)s->left ? (size_t)(end - p) : (size_t)s->left;
			p += k;
			s->left -= (long long)k;
			from = p;
			if (!s->left)
				s->phase = PGCOPY_COUNT;
			break;
		case PGCOPY_EXT_LEN:
		case PGCOPY_COUNT:
			/* not passed on as they come: a count of -1 is the stream's trailer, and each part has its own */
			s->word[s->have++] = *p++;
			from = p;
			if (s->have < (s->phase == PGCOPY_COUNT ? 2 : 4))
				break;
			if (s->phase == PGCOPY_EXT_LEN) {
				s->left = word_value(s);
				if (s->left < 0)
					return err_set(err, SLUICE_EDB, "the server's binary COPY has a negative header extension");
				s->phase = s->left ? PGCOPY_EXT : PGCOPY_COUNT;
			} else if ((s->fields = (int)word_value(s)) < 0) {
				s->phase = PGCOPY_END;
			} else if (emit(ud, s->word, 2, !s->fields, err)) {
				return err->code;
			} else {
				s->phase = s->fields ? PGCOPY_LEN : PGCOPY_COUNT;
			}
			s->have = 0;
			break;
		case PGCOPY_LEN:
			s->word[s->have++] = *p++;
			if (s->have < 4)
				break;
			s->left = word_value(s);
			s->have = 0;
			if (s->left < -1)
				return err_set(err, SLUICE_EDB, "the server's binary COPY has a field of length %lld", s->left);
			if (s->left > 0) {
				s->phase = PGCOPY_DATA;
				break;
			}
			s->left = 0;
			/* fall through - a NULL or empty field is done */
		case PGCOPY_DATA:
			k = (size_t)(end - p) < (size_t)s->left ? (size_t)(end - p) : (size_t)s->left;
			p += k;
			s->left -= (long long)k;
			if (s->left)
				break;
			if (--s->fields) {
				s->phase = PGCOPY_LEN;
				break;
			}
			s->phase = PGCOPY_COUNT;
			if (emit(ud, from, (size_t)(p - from), 1, err))
				return err->code;
			from = p;
			break;
		case PGCOPY_END:
			return err_set(err, SLUICE_EDB, "the server's binary COPY goes on after its end");
		}
	}
	/* a row that goes on in the next bytes */
	if (p > from && (s->phase == PGCOPY_LEN || s->phase == PGCOPY_DATA) && emit(ud, from, (size_t)(p - from), 0, err))
		return err->code;
	return 0;
}
