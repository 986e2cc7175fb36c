/*
 * replay.c: a fuzz target without libFuzzer, as a TAP test. It feeds each
 * file of tests/fuzz/corpus/<target>/ and tests/fuzz/regress/<target>/
 * (FUZZ_TARGET, from the Makefile; run from the top directory) to
 * LLVMFuzzerTestOneInput once: the seeds and every input a fuzzer once
 * broke the code with. A crash ends the test; the sanitizer build of make
 * test also catches leaks and undefined behaviour there.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replay every file of dir; returns the number of the last test. */
static int replay_dir(const char *dir, int n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t count = 0, i;

	if (!d)
		return n;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		names = realloc(names, (count + 1) * sizeof(*names));
		names[count++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, count, sizeof(*names), cmp_name);
	for (i = 0; i < count; i++) {
		char path[1024];
		FILE *f;
		char *data = NULL;
		size_t len = 0, cap = 0, got;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (!(f = fopen(path, "rb"))) {
			printf("not ok %d - %s: cannot open\n", ++n, path);
			free(names[i]);
			continue;
		}
		do {
			if (len == cap)
				data = realloc(data, cap = cap ? 2 * cap : 4096);
			got = fread(data + len, 1, cap - len, f);
			len += got;
		} while (got);
		fclose(f);
		LLVMFuzzerTestOneInput((const uint8_t *)data, len);
		free(data);
		printf("ok %d - %s\n", ++n, path);
		fflush(stdout);
		free(names[i]);
	}
	free(names);
	return n;
}

int main(void)
{
	int n = 0;

	n = replay_dir("tests/fuzz/corpus/" FUZZ_TARGET, n);
	n = replay_dir("tests/fuzz/regress/" FUZZ_TARGET, n);
	printf("1..%d\n", n);
	return 0;
}
