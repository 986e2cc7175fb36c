/*
 * fuzz_s3_xml.c: the S3 response parsers (connectors/s3.c): one
 * ListObjectsV2 page (keys, sizes, ETags, the continuation token) and an
 * error body (<Code>, <Message>), entities decoded. The input is the
 * response body, NUL-terminated as the client's buffer is.
 */
#include <stdlib.h>
#include <string.h>
#include "../../connectors/s3.h"
#include "fuzz.h"

static int each(void *ud, const struct s3_object *o)
{
	/* Stop after a few, as a caller that found what it wanted does. */
	return ++*(int *)ud > 100 && o->size >= 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf xml = BUF_INIT, next = BUF_INIT, code = BUF_INIT, msg = BUF_INIT;
	int n = 0, truncated;

	buf_add(&xml, data, size);
	s3_list_parse(xml.s, xml.len, each, &n, &next, &truncated);
	s3_error_parse(xml.s, xml.len, &code, &msg);
	buf_release(&xml);
	buf_release(&next);
	buf_release(&code);
	buf_release(&msg);
	return 0;
}
