/*
 * fuzz.c: the helpers of fuzz.h. Not a parser of anything sluice reads:
 * only the plumbing between one fuzz input and the files a loader opens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fuzz.h"

size_t fuzz_split(const uint8_t *data, size_t size, const char **part, size_t *len, size_t n)
{
	const char *s = (const char *)data, *end = s + size;
	size_t i = 0;

	for (i = 0; i < n; i++) {
		part[i] = "";
		len[i] = 0;
	}
	for (i = 0; i < n && s <= end; i++) {
		const char *p = s, *sep = NULL;

		while (p + 3 <= end) {
			if ((p == s || p[-1] == '\n') && !memcmp(p, "%%\n", 3)) {
				sep = p;
				break;
			}
			p++;
		}
		part[i] = s;
		len[i] = (size_t)((sep ? sep : end) - s);
		/* The line end before "%%" belongs to the separator. */
		if (sep && len[i])
			len[i]--;
		if (!sep)
			return i + 1;
		s = sep + 3;
	}
	return i;
}

static char scratch[64];

int fuzz_big_number(const uint8_t *data, size_t size)
{
	size_t i, run = 0;

	for (i = 0; i < size; i++) {
		if (data[i] >= '0' && data[i] <= '9')
			run++;
		else if (run && (data[i] == 'e' || data[i] == 'E'))
			return 1;
		else
			run = 0;
		if (run >= 5)
			return 1;
	}
	return 0;
}

static void fuzz_cleanup(void)
{
	char cmd[128];

	if (scratch[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
		if (system(cmd) != 0)
			fprintf(stderr, "fuzz: could not remove %s\n", scratch);
	}
}

const char *fuzz_dir(void)
{
	if (!scratch[0]) {
		/* In memory where there is a tmpfs: loaders fsync what they write. */
		snprintf(scratch, sizeof(scratch), "%s/sluice-fuzz.XXXXXX",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
		if (!mkdtemp(scratch)) {
			perror("fuzz: mkdtemp");
			abort();
		}
		atexit(fuzz_cleanup);
	}
	return scratch;
}

void fuzz_write(const char *name, const char *data, size_t len)
{
	char path[512];
	char *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", fuzz_dir(), name);
	for (slash = strchr(path + strlen(fuzz_dir()) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		abort();
	}
}
