/*
 * fuzz_csv.c: both CSV readers. A seed's file (engine/seed.c: header,
 * rows, type inference, the CSV written back for COPY) and the rows the
 * ODBC connector's load_csv parses as COPY ... CSV would
 * (connectors/odbc.c, through odbc_csv_parse, no connection).
 *
 * The first byte chooses: the delimiter (bits 0-1), column_types or not
 * (bit 2), the number of columns load_csv expects (bits 3-5, 1 to 8);
 * the second, the size of the chunks load_csv's parser is fed (so fields
 * span reads); the rest is the CSV.
 */
#include "../../connectors/odbc.h"
#include "../../engine/seed.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char delims[] = { ',', ';', '\t', '|' };
	struct sluice_err err = SLUICE_ERR_INIT;
	struct val types = val_dict_new();
	struct seed_table t;
	struct buf out = BUF_INIT;
	const char *csv;
	long long rows;
	struct arena a;
	size_t len, c;

	if (size < 2)
		return 0;
	csv = (const char *)data + 2;
	len = size - 2;
	arena_init(&a);
	val_dict_set(&a, &types, "id", val_str("bigint"));
	if (seed_parse(&a, "seeds/fuzz.csv", csv, len, delims[data[0] & 3], data[0] & 4 ? &types : NULL, &t,
		       &err) == 0) {
		seed_write_csv(&t, &out);
		for (c = 0; c < t.ncols; c++)
			seed_column_sql(&t, c, c & 1, &out);
	}
	odbc_csv_parse(csv, len, data[1], ((data[0] >> 3) & 7) + 1, &rows, &err);
	buf_release(&out);
	arena_release(&a);
	return 0;
}
