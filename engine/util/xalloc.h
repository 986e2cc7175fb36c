/*
 * xalloc.h: allocation that aborts on failure, and the banned libc calls.
 *
 * Out of memory is not recoverable for a command-line build tool; aborting
 * with a message beats threading ENOMEM through every caller.
 */
#ifndef SLUICE_XALLOC_H
#define SLUICE_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* As in git's banned.h: these invite overflows. */
#define strcpy(a, b) sluice_banned_strcpy
#define strcat(a, b) sluice_banned_strcat
#define sprintf(...) sluice_banned_sprintf
#define vsprintf(...) sluice_banned_vsprintf
#define strtok(a, b) sluice_banned_strtok
#define gets(a) sluice_banned_gets

#endif
