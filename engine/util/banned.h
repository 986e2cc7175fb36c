/*
 * banned.h: libc calls sluice does not use, because they invite buffer
 * overflows (as in git's banned.h). A use fails to compile, naming the
 * call: sluice_banned_strcpy undeclared. Use buf.h, snprintf or xstrdup.
 *
 * The Makefile forces this header into every compilation unit (-include,
 * so it comes before anything the unit includes). The bans are macros,
 * and a macro named strcpy would garble <string.h>'s own prototype of
 * strcpy if that header were read after it. So the headers that declare
 * the banned calls are included here first: their include guards then
 * make the unit's own #include <string.h> a no-op, and the macros only
 * ever meet the unit's code. For that, feature-test macros must come from
 * the command line (-D_GNU_SOURCE), never from a #define in a .c file.
 *
 * Not for style rules or deprecations: only calls with a safe replacement.
 */
#ifndef SLUICE_BANNED_H
#define SLUICE_BANNED_H

#include <stdio.h>
#include <string.h>

/* #undef first: a libc may define some of these as macros (fortify). */
#undef strcpy
#define strcpy(a, b) sluice_banned_strcpy
#undef strcat
#define strcat(a, b) sluice_banned_strcat
#undef sprintf
#define sprintf(...) sluice_banned_sprintf
#undef vsprintf
#define vsprintf(...) sluice_banned_vsprintf
#undef strtok
#define strtok(a, b) sluice_banned_strtok
#undef gets
#define gets(a) sluice_banned_gets

#endif
