/*
 * identity.c: who runs and from which commit; see identity.h. Git is
 * asked by running it, never by reading .git: worktrees, packed refs and
 * submodules are its business. Everything here is best effort: a missing
 * git or a directory outside any repository leaves the commit empty.
 */
#include <fcntl.h>
#include <pwd.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "identity.h"

extern char **environ;

/* Run git -C dir args..., stdout into out (at most cap bytes kept), stderr discarded. 0 when it exited 0. */
static int git_output(const char *dir, const char *const *args, struct buf *out)
{
	const char *argv[16] = { "git", "-C", dir };
	posix_spawn_file_actions_t fa;
	int fds[2], status = 0, rc, i;
	pid_t pid;
	char tmp[4096];
	ssize_t n;

	for (i = 0; args[i] && i + 4 < 16; i++)
		argv[3 + i] = args[i];
	argv[3 + i] = NULL;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	rc = posix_spawnp(&pid, "git", &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (rc) {
		close(fds[0]);
		return -1;
	}
	while ((n = read(fds[0], tmp, sizeof(tmp))) != 0) {
		if (n < 0)
			break;
		if (out->len < 65536)
			buf_add(out, tmp, (size_t)n);
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void find_git(struct identity *id, const char *dir)
{
	static const char *const head[] = { "rev-parse", "--verify", "-q", "HEAD", NULL };
	static const char *const status[] = { "status", "--porcelain", "--untracked-files=no", NULL };
	struct buf out = BUF_INIT;

	if (!git_output(dir, head, &out) && out.len >= 40) {
		snprintf(id->git_commit, sizeof(id->git_commit), "%.*s", (int)strcspn(out.s, "\n"), out.s);
		buf_reset(&out);
		id->git_dirty = !git_output(dir, status, &out) && out.len > 0;
	}
	buf_release(&out);
}

/* $SLUICE_USER, else the login name: every statement is traced to a person. */
static void find_user(struct identity *id)
{
	const char *u = getenv("SLUICE_USER");
	struct passwd *pw;
	char *p;

	snprintf(id->user_source, sizeof(id->user_source), "SLUICE_USER");
	if (!u || !*u) {
		snprintf(id->user_source, sizeof(id->user_source), "login");
		u = getenv("USER");
	}
	if ((!u || !*u) && (pw = getpwuid(geteuid())))
		u = pw->pw_name;
	snprintf(id->user, sizeof(id->user), "%s", u && *u ? u : "unknown");
	/* It goes inside SQL comments: keep it printable and comment-safe. */
	for (p = id->user; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == '*' || *p == '/')
			*p = '_';
}

/* Flags whose value is shown: names, selectors, numbers, paths. */
static const char *const shown_values[] = {
	"--project-dir", "--profiles-dir", "--target", "-t", "--threads", "--wait-lock", "--format",
	"--output", "-o", "--resource-type", "--log-format", "--limit", "--reuse-from", NULL,
};
/* Flags followed by selector words, up to the next flag. */
static const char *const selectors[] = { "-s", "--select", "-m", "--models", "--exclude", NULL };

static int listed(const char *const *list, const char *a, size_t n)
{
	for (; *list; list++)
		if (strlen(*list) == n && !strncmp(*list, a, n))
			return 1;
	return 0;
}

void identity_command_line(struct buf *out, int argc, char **argv)
{
	int i;

	buf_puts(out, "sluice");
	if (argc > 0)
		buf_printf(out, " %s", argv[0]);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '=');
		size_t n = eq ? (size_t)(eq - a) : strlen(a);
		if (a[0] != '-' || !a[1]) {
			buf_puts(out, " <omitted>");
			continue;
		}
		if (eq) {
			/* --flag=value: the value only when it cannot be a secret */
			if (listed(shown_values, a, n) || listed(selectors, a, n))
				buf_printf(out, " %s", a);
			else
				buf_printf(out, " %.*s=<omitted>", (int)n, a);
			continue;
		}
		buf_printf(out, " %s", a);
		if (listed(selectors, a, n)) {
			while (i + 1 < argc && argv[i + 1][0] != '-')
				buf_printf(out, " %s", argv[++i]);
		} else if (listed(shown_values, a, n) && i + 1 < argc) {
			buf_printf(out, " %s", argv[++i]);
		}
	}
}

void identity_init(struct identity *id, const char *dir, int argc, char **argv)
{
	memset(id, 0, sizeof(*id));
	buf_init(&id->command_line);
	find_user(id);
	if (dir)
		find_git(id, dir);
	identity_command_line(&id->command_line, argc, argv);
}

void identity_release(struct identity *id)
{
	buf_release(&id->command_line);
}
