/*
 * shell.c: shell models' config and quoting, and the child process that
 * runs a script; see shell.h.
 *
 * The script is started with posix_spawn (safe from a worker thread of a
 * threaded process) in a process group of its own, so a timeout or a
 * Ctrl-C reaches everything it started, and a terminal's Ctrl-C reaches
 * sluice alone, which then forwards it. Its output comes back through a
 * pipe rather than straight into the log file, so that secrets can be
 * scrubbed line by line and the last lines kept for the error message.
 * The waiting thread polls the pipe and a pidfd of the child.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "shell.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/xalloc.h"

extern char **environ;

#define LINE_MAX_BYTES 65536     /* a longer "line" is written in pieces */
#define TAIL_LINE_CHARS 200      /* a tail line longer than this is cut in the message */
#define TAIL_BUDGET 1500         /* bytes of tail in an error message (struct sluice_err holds 2048) */

void shell_escape_dq(struct buf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\' || *s == '$' || *s == '`')
			buf_addc(out, '\\');
		buf_addc(out, *s);
	}
}

/* ---- config ---- */

static const char *place(struct arena *a, const struct node *n, const char *key)
{
	const struct val *pos = val_get(&n->config_pos, key);

	if (pos && pos->kind == V_LIST && pos->u.list.n == 2)
		return arena_printf(a, "%s:%d:%d", n->model->path, (int)pos->u.list.items[0].u.num,
				    (int)pos->u.list.items[1].u.num);
	return n->model->path;
}

/* A string or a list of strings, as a list; 1 when it is neither. */
static int string_list(struct arena *a, const struct val *v, struct val *out)
{
	size_t i;

	*out = val_list_new();
	if (!v || v->kind == V_NONE)
		return 0;
	if (v->kind == V_STR) {
		val_list_push(a, out, *v);
		return v->u.str.len ? 0 : 1;
	}
	if (v->kind != V_LIST)
		return 1;
	for (i = 0; i < v->u.list.n; i++) {
		if (v->u.list.items[i].kind != V_STR || !v->u.list.items[i].u.str.len)
			return 1;
		val_list_push(a, out, v->u.list.items[i]);
	}
	return 0;
}

int shell_config(const struct node *n, struct arena *a, struct shell_config *out, struct sluice_err *err)
{
	const struct val *c = &n->config, *v;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (string_list(a, val_get(c, "inputs"), &out->inputs))
		return err_set(err, SLUICE_EUSAGE, "%s: inputs takes a glob pattern or a list of them, such as ['data/ref/*.csv']",
			       place(a, n, "inputs"));
	if (string_list(a, val_get(c, "outputs"), &out->outputs))
		return err_set(err, SLUICE_EUSAGE, "%s: outputs takes a file path or a list of them, such as ['target/files/genes.csv']",
			       place(a, n, "outputs"));
	for (i = 0; i < out->outputs.u.list.n; i++)
		if (strpbrk(out->outputs.u.list.items[i].u.str.s, "*?["))
			return err_set(err, SLUICE_EUSAGE, "%s: outputs are file paths, not patterns: '%s'",
				       place(a, n, "outputs"), out->outputs.u.list.items[i].u.str.s);
	v = val_get(c, "timeout");
	if (v && v->kind != V_NONE && (val_duration(v, &out->timeout) || out->timeout <= 0)) {
		struct buf shown = BUF_INIT;
		int rc;
		val_format(v, &shown);
		rc = err_set(err, SLUICE_EUSAGE, "%s: timeout takes a duration such as '90s', '10m' or '1h', not '%s'",
			     place(a, n, "timeout"), shown.s);
		buf_release(&shown);
		return rc;
	}
	v = val_get(c, "relation");
	if (v && v->kind != V_NONE && v->kind != V_BOOL)
		return err_set(err, SLUICE_EUSAGE, "%s: relation takes true or false", place(a, n, "relation"));
	out->relation = val_get_bool(c, "relation", 0);
	return 0;
}

/* ---- cancellation ---- */

static int proc_cancel(struct sluice_conn *c)
{
	struct shell_proc *p = (struct shell_proc *)c;
	int n = __atomic_add_fetch(&p->cancels, 1, __ATOMIC_SEQ_CST);
	pid_t pid = __atomic_load_n(&p->pid, __ATOMIC_SEQ_CST);
	int sig = p->signo ? __atomic_load_n(p->signo, __ATOMIC_SEQ_CST) : 0;

	if (pid <= 0)
		return 0;   /* shell_run sends it once the group exists */
	if (n > 1)
		kill(-pid, SIGKILL);   /* asked twice: no more waiting */
	else if (!__atomic_exchange_n(&p->forwarded, 1, __ATOMIC_SEQ_CST))
		kill(-pid, sig ? sig : SIGINT);
	return 0;
}

static const struct sluice_connector proc_connector = {
	.name = "shell",
	.cancel = proc_cancel,
};

void shell_proc_init(struct shell_proc *p, const char *name, const int *signo)
{
	memset(p, 0, sizeof(*p));
	p->base.drv = &proc_connector;
	p->base.name = name;
	p->signo = signo;
}

/* ---- output: pipe -> scrubbed lines -> log file and tail ---- */

struct out_state {
	int fd;                        /* the log */
	int write_errno;               /* first failed write, or 0 */
	const char *const *secrets;
	struct buf line;               /* the current, unfinished line */
	struct buf *tail;              /* ring of the last lines */
	size_t ntail, next, filled;
};

static void write_all(struct out_state *o, const char *s, size_t n)
{
	while (n && !o->write_errno) {
		ssize_t w = write(o->fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			o->write_errno = errno;
			return;
		}
		s += w;
		n -= (size_t)w;
	}
}

static void flush_line(struct out_state *o)
{
	const char *const *s;
	struct buf *t;

	if (!o->line.len)
		return;
	for (s = o->secrets; s && *s; s++)
		buf_scrub(&o->line, *s);
	write_all(o, o->line.s, o->line.len);
	t = &o->tail[o->next];
	buf_reset(t);
	buf_add(t, o->line.s, o->line.len);
	if (!t->len || t->s[t->len - 1] != '\n')
		buf_addc(t, '\n');
	o->next = (o->next + 1) % o->ntail;
	if (o->filled < o->ntail)
		o->filled++;
	buf_reset(&o->line);
}

static void feed(struct out_state *o, const char *s, size_t n)
{
	while (n) {
		const char *nl = memchr(s, '\n', n);
		size_t k = nl ? (size_t)(nl - s) + 1 : n;
		buf_add(&o->line, s, k);
		if (nl || o->line.len >= LINE_MAX_BYTES)
			flush_line(o);
		s += k;
		n -= k;
	}
}

/* Read what the pipe holds now. Returns 1 at end of file. */
static int drain(struct out_state *o, int fd)
{
	char chunk[16384];

	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r > 0)
			feed(o, chunk, (size_t)r);
		else if (r == 0)
			return 1;
		else if (errno == EINTR)
			continue;
		else
			return errno != EAGAIN && errno != EWOULDBLOCK;
	}
}

/* The tail, oldest first, cut to fit an error message; lines prefixed with "    | ". */
static void format_tail(const struct out_state *o, struct buf *out)
{
	size_t i, used = 0, first = o->filled;

	/* newest lines matter most: count back until the budget is spent */
	for (i = 0; i < o->filled; i++) {
		const struct buf *t = &o->tail[(o->next + o->ntail - 1 - i) % o->ntail];
		size_t len = (t->len > TAIL_LINE_CHARS ? TAIL_LINE_CHARS + 3 : t->len) + 6;
		if (used + len > TAIL_BUDGET)
			break;
		used += len;
		first = o->filled - 1 - i;
	}
	for (i = first; i < o->filled; i++) {
		const struct buf *t = &o->tail[(o->next + o->ntail - o->filled + i) % o->ntail];
		size_t len = t->len - 1, k;
		buf_puts(out, "\n    | ");
		for (k = 0; k < len && k < TAIL_LINE_CHARS; k++)
			buf_addc(out, t->s[k] == '\t' || (unsigned char)t->s[k] >= ' ' ? t->s[k] : '?');
		if (len > TAIL_LINE_CHARS)
			buf_puts(out, "...");
	}
}

/* ---- spawning ---- */

/* The inherited environment with cmd->env's names replaced; strings point into *store or environ. */
static char **make_envp(const char *extra, char **store)
{
	size_t n = 0, nextra, cap = 16, i, k;
	char **envp, *p, *s;

	*store = xstrdup(extra ? extra : "");
	for (i = 0; environ[i]; i++)
		cap++;
	for (s = *store; *s; s++)
		cap += *s == '\n';
	envp = xcalloc(cap + 1, sizeof(char *));
	for (p = *store; *p; p = s) {
		s = strchr(p, '\n');
		if (s)
			*s++ = '\0';
		else
			s = p + strlen(p);
		if (strchr(p, '='))
			envp[n++] = p;
	}
	nextra = n;
	for (i = 0; environ[i]; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t len = eq ? (size_t)(eq - environ[i]) + 1 : strlen(environ[i]);
		int replaced = 0;
		for (k = 0; k < nextra && !replaced; k++)
			replaced = !strncmp(envp[k], environ[i], len);
		if (!replaced && n < cap)
			envp[n++] = environ[i];
	}
	envp[n] = NULL;
	return envp;
}

/*
 * argv for the script: "#!interp [arg]" as the kernel reads it (one
 * optional argument, the rest of the line), else /bin/sh. Strings point
 * into *store.
 */
static void make_argv(const char *script, const char *path, char **store, char *argv[4])
{
	size_t n = 0;
	char *line, *p, *arg;

	*store = NULL;
	if (strncmp(script, "#!", 2)) {
		argv[n++] = "/bin/sh";
	} else {
		line = *store = xstrndup(script + 2, strcspn(script + 2, "\n"));
		for (p = line; *p == ' ' || *p == '\t'; p++)
			;
		argv[n++] = p;
		p += strcspn(p, " \t\r");
		arg = p;
		if (*p) {
			*p++ = '\0';
			for (arg = p; *arg == ' ' || *arg == '\t'; arg++)
				;
			for (p = arg + strlen(arg); p > arg && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\r'); p--)
				p[-1] = '\0';
		}
		if (*arg)
			argv[n++] = arg;
	}
	argv[n++] = (char *)path;
	argv[n] = NULL;
}

static int spawn(const struct shell_cmd *cmd, int out_fd, pid_t *pid, struct sluice_err *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	char *argv[4], *argstore, *envstore, **envp;
	static const int defaults[] = { SIGINT, SIGQUIT, SIGTERM, SIGPIPE, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM };
	size_t i;
	int rc;

	make_argv(cmd->script, cmd->script_path, &argstore, argv);
	envp = make_envp(cmd->env, &envstore);
	sigemptyset(&none);
	sigemptyset(&dfl);
	for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		sigaddset(&dfl, defaults[i]);
	posix_spawnattr_init(&at);
	/*
	 * Worker threads block SIGINT/SIGTERM and sluice ignores SIGPIPE: the
	 * script starts with neither, as it would from a terminal.
	 */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addchdir_np(&fa, cmd->dir);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	rc = posix_spawn(pid, argv[0], &fa, &at, argv, envp);
	if (rc)
		err_set(err, SLUICE_EIO, "cannot start %s%s: %s", argv[0], argstore ? " (the script's #! line)" : "",
			strerror(rc));
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	free(argstore);
	free(envstore);
	free(envp);
	return rc ? SLUICE_EIO : 0;
}

/*
 * Whether any process of group pgid is still running. Zombies do not
 * count: an orphan that died waits for its new parent to reap it, and
 * some init processes (in containers) take their time. Without /proc,
 * any member counts.
 */
static int group_alive(pid_t pgid)
{
	struct dirent *de;
	DIR *d = opendir("/proc");
	int alive = 0;

	if (!d)
		return kill(-pgid, 0) == 0;
	while (!alive && (de = readdir(d))) {
		char path[300], stat[512], *p;
		long long pg;
		char state;
		ssize_t n;
		int fd;
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		n = read(fd, stat, sizeof(stat) - 1);
		close(fd);
		if (n <= 0)
			continue;
		stat[n] = '\0';
		/* "pid (comm) state ppid pgrp ...": comm may hold anything, so from the last ')' */
		if (!(p = strrchr(stat, ')')) || sscanf(p + 1, " %c %*d %lld", &state, &pg) != 2)
			continue;
		alive = pg == (long long)pgid && state != 'Z' && state != 'X';
	}
	closedir(d);
	return alive;
}

/*
 * After the script itself exited on a timeout or cancel: give what it
 * left in its group the grace period, then kill it. Once the leader is
 * reaped its pid stays reserved while the group has members, so -pid
 * cannot name someone else's group while anything is left to kill.
 */
static void finish_group(pid_t pid, double grace)
{
	double end = clock_monotonic() + grace;
	struct timespec tick = { 0, 20 * 1000 * 1000 };

	while (group_alive(pid) && clock_monotonic() < end)
		nanosleep(&tick, NULL);
	kill(-pid, SIGKILL);
}

/* A duration as config would write it: 600 -> "10m", 90 -> "90s", 0.5 -> "0.5s". */
static const char *duration_text(double secs, char out[64])
{
	if (secs >= 3600 && fmod(secs, 3600) == 0)
		snprintf(out, 64, "%gh", secs / 3600);
	else if (secs >= 60 && fmod(secs, 60) == 0)
		snprintf(out, 64, "%gm", secs / 60);
	else
		snprintf(out, 64, "%gs", secs);
	return out;
}

static void send_group(pid_t pid, int sig)
{
	kill(-pid, sig);
}

int shell_run(const struct shell_cmd *cmd, struct shell_proc *p, struct shell_result *res_out,
	      struct sluice_err *err)
{
	struct shell_result local, *res = res_out ? res_out : &local;
	struct out_state o;
	double grace = cmd->grace > 0 ? cmd->grace : 5, start, term_at = 0, kill_at = 0;
	int pipefd[2] = { -1, -1 }, pidfd = -1, status = 0, stage = 0, eof = 0, rc = 0;
	pid_t pid = 0;
	size_t i;
	struct buf msg = BUF_INIT;
	char unit[64];

	memset(res, 0, sizeof(*res));
	buf_init(&res->tail);
	memset(&o, 0, sizeof(o));
	o.fd = -1;
	o.secrets = cmd->secrets;
	o.ntail = cmd->tail_lines ? cmd->tail_lines : 20;
	o.tail = xcalloc(o.ntail, sizeof(struct buf));
	buf_init(&o.line);
	for (i = 0; i < o.ntail; i++)
		buf_init(&o.tail[i]);

	if (fs_mkdir_parent(cmd->log_path, err)) {
		rc = err->code;
		goto out;
	}
	o.fd = open(cmd->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (o.fd < 0) {
		rc = err_set(err, SLUICE_EIO, "%s: %s", cmd->log_path, strerror(errno));
		goto out;
	}
	if (pipe2(pipefd, O_CLOEXEC)) {
		rc = err_set(err, SLUICE_EIO, "pipe: %s", strerror(errno));
		goto out;
	}
	start = clock_monotonic();
	if ((rc = spawn(cmd, pipefd[1], &pid, err)))
		goto out;
	__atomic_store_n(&p->pid, pid, __ATOMIC_SEQ_CST);
	/* a cancel() that came before the group existed */
	if (__atomic_load_n(&p->cancels, __ATOMIC_SEQ_CST) && !__atomic_exchange_n(&p->forwarded, 1, __ATOMIC_SEQ_CST)) {
		int sig = p->signo ? __atomic_load_n(p->signo, __ATOMIC_SEQ_CST) : 0;
		send_group(pid, sig ? sig : SIGINT);
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	fcntl(pipefd[0], F_SETFL, fcntl(pipefd[0], F_GETFL) | O_NONBLOCK);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (cmd->timeout > 0)
		term_at = start + cmd->timeout;

	for (;;) {
		struct pollfd fds[2];
		nfds_t nfds = 0;
		double now, next;
		int ms;
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid || (w < 0 && errno != EINTR)) {
			eof = eof || drain(&o, pipefd[0]);
			break;
		}
		now = clock_monotonic();
		if (!res->cancelled && __atomic_load_n(&p->cancels, __ATOMIC_SEQ_CST)) {
			/* cancel() forwarded the signal: TERM and KILL follow if it is ignored */
			res->cancelled = 1;
			if (stage == 0)
				term_at = now + grace;
		}
		if (stage == 0 && term_at && now >= term_at) {
			res->timed_out = !res->cancelled;
			send_group(pid, SIGTERM);
			stage = 1;
			kill_at = now + grace;
		} else if (stage == 1 && now >= kill_at) {
			send_group(pid, SIGKILL);
			stage = 2;
		}
		next = stage == 0 ? term_at : stage == 1 ? kill_at : 0;
		ms = pidfd >= 0 ? 1000 : 100;
		if (next && (next - now) * 1000 < ms)
			ms = (int)((next - now) * 1000) + 1;
		if (!eof)
			fds[nfds++] = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
		if (pidfd >= 0)
			fds[nfds++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		if (poll(fds, nfds, ms) > 0 && !eof && fds[0].revents)
			eof = drain(&o, pipefd[0]);
	}
	flush_line(&o);
	res->elapsed = clock_monotonic() - start;
	/* a script that died of the forwarded signal before the loop saw the cancel */
	if (__atomic_load_n(&p->cancels, __ATOMIC_SEQ_CST))
		res->cancelled = 1;
	if (res->timed_out || res->cancelled)
		finish_group(pid, grace);
	__atomic_store_n(&p->pid, 0, __ATOMIC_SEQ_CST);   /* a late cancel() has nothing left to signal */
	if (WIFEXITED(status)) {
		res->status = WEXITSTATUS(status);
	} else {
		res->status = -1;
		res->signo = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	}
	format_tail(&o, &res->tail);

	if (res->cancelled)
		buf_printf(&msg, "cancelled: signal forwarded to the script's process group");
	else if (res->timed_out)
		buf_printf(&msg, "timed out after %s: its process group was killed", duration_text(cmd->timeout, unit));
	else if (res->status > 0)
		buf_printf(&msg, "exited with status %d", res->status);
	else if (res->status < 0) {
		/* not strsignal: this runs on worker threads, and its buffer is shared */
		const char *what = sigdescr_np(res->signo);

		buf_printf(&msg, "killed by signal %d (%s)", res->signo, what ? what : "unknown signal");
	}
	{
		char foot[256];
		snprintf(foot, sizeof(foot), "[sluice] %s after %.2fs\n", msg.len ? msg.s : "exited with status 0",
			 res->elapsed);
		write_all(&o, foot, strlen(foot));
	}
	if (msg.len) {
		rc = err_set(err, res->cancelled ? SLUICE_ECANCEL : SLUICE_EDB, "%s; %s%s", msg.s,
			     res->tail.len ? "last lines of " : "no output in ", cmd->log_path);
		if (res->tail.len) {
			size_t have = strlen(err->msg);
			snprintf(err->msg + have, sizeof(err->msg) - have, ":%s", res->tail.s);
		}
	} else if (o.write_errno) {
		rc = err_set(err, SLUICE_EIO, "%s: %s", cmd->log_path, strerror(o.write_errno));
	}
out:
	if (pidfd >= 0)
		close(pidfd);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	if (o.fd >= 0 && close(o.fd) && !rc)
		rc = err_set(err, SLUICE_EIO, "%s: %s", cmd->log_path, strerror(errno));
	buf_release(&o.line);
	for (i = 0; i < o.ntail; i++)
		buf_release(&o.tail[i]);
	free(o.tail);
	buf_release(&msg);
	if (res == &local)
		shell_result_release(&local);
	return rc;
}

void shell_result_release(struct shell_result *res)
{
	if (res)
		buf_release(&res->tail);
}
