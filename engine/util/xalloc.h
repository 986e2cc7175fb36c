/*
 * xalloc.h: allocation that aborts on failure.
 *
 * Out of memory is not recoverable for a command-line build tool; aborting
 * with a message beats threading ENOMEM through every caller.
 */
#ifndef SLUICE_XALLOC_H
#define SLUICE_XALLOC_H

#include <stddef.h>
#include "banned.h"   /* also forced into every unit by the Makefile */

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
