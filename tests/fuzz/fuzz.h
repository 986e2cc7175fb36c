/*
 * fuzz.h: what the libFuzzer targets under tests/fuzz/ share: the entry
 * point's prototype, splitting one input into several files' worth, and a
 * scratch directory for targets whose parser reads files.
 *
 * Each fuzz_<target>.c defines LLVMFuzzerTestOneInput only. Linked with
 * -fsanitize=fuzzer it is a libFuzzer binary (make fuzz); linked with
 * replay.c it replays tests/fuzz/corpus/<target>/ and
 * tests/fuzz/regress/<target>/ as a TAP test of make test.
 */
#ifndef SLUICE_FUZZ_H
#define SLUICE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Cut data at each line "%%" (its line end and the one before it go
 * with it) into at most n parts: part[i] and len[i]
 * (parts that are absent are empty). Returns how many parts there were.
 * The separator is short, so the fuzzer finds it, and a line of its own,
 * so a seed made of files reads naturally.
 */
size_t fuzz_split(const uint8_t *data, size_t size, const char **part, size_t *len, size_t n);

/*
 * Whether a template in data may ask for work far beyond its size: a
 * number of five digits or more, or in exponent form, where range() or
 * a repetition (x * n) could use it. Such inputs are the author's request,
 * not a defect, and would only make the fuzzer report timeouts.
 */
int fuzz_big_number(const uint8_t *data, size_t size);

/*
 * A scratch directory of this process, made once and emptied of the
 * names fuzz_write writes on every call; removed at exit.
 */
const char *fuzz_dir(void);
/* Write len bytes to fuzz_dir()/name (dirs created); a failure aborts: it is the machine's, not the input's. */
void fuzz_write(const char *name, const char *data, size_t len);

#endif
