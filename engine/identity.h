/*
 * identity.h: who runs, and from what: the run identity every artifact,
 * state record and history entry carries. The user name and how it was
 * established, the git commit of the project directory (and whether
 * tracked files were modified), and the command line with every value that
 * could hold a secret left out.
 *
 * Not here: the invocation id and start time (session.c), or where the
 * identity is written (artifacts.c, build.c, history.c).
 */
#ifndef SLUICE_IDENTITY_H
#define SLUICE_IDENTITY_H

#include <stddef.h>
#include "util/buf.h"

struct identity {
	char user[128];
	char user_source[80];          /* "SLUICE_USER", "login" ("schedule:<name>": the scheduler's) */
	char git_commit[48];           /* "" when the project is not in a git repository */
	int git_dirty;                 /* tracked files modified */
	struct buf command_line;       /* "sluice run -s orders --vars <omitted>" */
};

/*
 * Fill id: the user ($SLUICE_USER, else the login name) and, when dir is
 * not NULL, the git facts of dir, read by running git quietly (no git,
 * or not a repository: no commit, not an error). argv[0] is the command.
 */
void identity_init(struct identity *id, const char *dir, int argc, char **argv);
void identity_release(struct identity *id);

/*
 * The command line as it may be shown: "sluice" and the command, sluice's
 * own flags with their values when these cannot hold a secret (selectors,
 * target, threads, paths), "<omitted>" in place of any other value
 * (--vars, positional arguments). Appended to out.
 */
void identity_command_line(struct buf *out, int argc, char **argv);

#endif
