/*
 * pg-embedded.c: sluice's own PostgreSQL cluster under <project>/.sluice/pg:
 * initdb on first use, start on demand, status, stop, create a database.
 * It runs the server binaries (initdb, pg_ctl) as child processes with an
 * explicit argv, never through a shell of ours (pg_ctl itself uses /bin/sh
 * to launch postgres: see start_server), and as an unprivileged user when
 * we are root. It is not a connection driver (postgres.c is) and not the test
 * suite's server (tests/harness/pg.sh is).
 *
 * Layout: <project>/.sluice/pg is the cluster, or a symlink to
 * /var/tmp/sluice-embedded-<hash>/pg when the server user cannot traverse
 * the project (root's projects under /root). pg.lock serialises start-ups
 * between processes; pg.log receives the server's output.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>
#include "pg-embedded.h"
#include "../engine/util/buf.h"
#include "../engine/util/fs.h"
#include "../engine/util/xalloc.h"

extern char **environ;

#define EMB_USER "sluice"
#define START_TRIES 5
#define MAX_GROUPS 64

/* Who runs the server binaries: we ourselves, or (as root) a plain user. */
struct runas {
	int drop;
	uid_t uid;
	gid_t gid;
	char name[64];
	gid_t groups[MAX_GROUPS];
	int ngroups;
};

struct emb {
	struct buf project;   /* real path of the project */
	struct buf dotdir;    /* <project>/.sluice */
	struct buf link;      /* <project>/.sluice/pg: the cluster or a symlink to it */
	struct buf datadir;   /* where the cluster really is; "" when there is none */
	struct buf sockdir;
	char hash[17];        /* of the project path: names the fallback dirs */
	struct runas ru;
};

static int emb_open(struct emb *m, const char *project_dir, struct sluice_err *err)
{
	char *real;
	uint64_t h = 1469598103934665603ULL;
	const unsigned char *p;

	memset(m, 0, sizeof(*m));
	buf_init(&m->project);
	buf_init(&m->dotdir);
	buf_init(&m->link);
	buf_init(&m->datadir);
	buf_init(&m->sockdir);
	if (!project_dir || !*project_dir)
		return err_set(err, SLUICE_EUSAGE, "no project directory given");
	real = realpath(project_dir, NULL);
	if (!real)
		return err_set(err, errno == ENOENT ? SLUICE_EUSAGE : SLUICE_EIO,
			       "project directory %s: %s", project_dir, strerror(errno));
	buf_puts(&m->project, real);
	free(real);
	/* FNV-1a: stable across runs and machines, enough to tell projects apart. */
	for (p = (const unsigned char *)m->project.s; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	snprintf(m->hash, sizeof(m->hash), "%016llx", (unsigned long long)h);
	buf_printf(&m->dotdir, "%s/.sluice", m->project.s);
	buf_printf(&m->link, "%s/pg", m->dotdir.s);
	return 0;
}

static void emb_release(struct emb *m)
{
	buf_release(&m->project);
	buf_release(&m->dotdir);
	buf_release(&m->link);
	buf_release(&m->datadir);
	buf_release(&m->sockdir);
}

static int runas_from_pw(struct runas *ru, const struct passwd *pw)
{
	ru->drop = 1;
	ru->uid = pw->pw_uid;
	ru->gid = pw->pw_gid;
	snprintf(ru->name, sizeof(ru->name), "%s", pw->pw_name);
	ru->ngroups = MAX_GROUPS;
	if (getgrouplist(pw->pw_name, pw->pw_gid, ru->groups, &ru->ngroups) < 0) {
		ru->groups[0] = pw->pw_gid;
		ru->ngroups = 1;
	}
	return 0;
}

/*
 * As root, pick the user the server runs as: the owner of an existing
 * cluster (so a later `apt install postgresql` does not orphan it), else
 * "postgres", else "nobody". Otherwise we run everything as ourselves.
 */
static int runas_init(struct runas *ru, const char *datadir, struct sluice_err *err)
{
	struct passwd pwbuf, *pw = NULL;
	char tmp[4096];
	struct stat st;

	memset(ru, 0, sizeof(*ru));
	if (geteuid() != 0)
		return 0;
	if (datadir && *datadir && stat(datadir, &st) == 0 && st.st_uid != 0) {
		if (getpwuid_r(st.st_uid, &pwbuf, tmp, sizeof(tmp), &pw) == 0 && pw)
			return runas_from_pw(ru, pw);
		ru->drop = 1;
		ru->uid = st.st_uid;
		ru->gid = st.st_gid;
		ru->groups[0] = st.st_gid;
		ru->ngroups = 1;
		snprintf(ru->name, sizeof(ru->name), "uid %ld", (long)st.st_uid);
		return 0;
	}
	if (getpwnam_r("postgres", &pwbuf, tmp, sizeof(tmp), &pw) == 0 && pw)
		return runas_from_pw(ru, pw);
	if (getpwnam_r("nobody", &pwbuf, tmp, sizeof(tmp), &pw) == 0 && pw)
		return runas_from_pw(ru, pw);
	return err_set(err, SLUICE_EUSAGE,
		       "running as root, and neither user postgres nor nobody exists to run the server");
}

/* Drop to ru in a forked child. Only async-signal-safe calls. */
static int runas_apply(const struct runas *ru)
{
	if (!ru->drop)
		return 0;
	if (setgroups((size_t)ru->ngroups, ru->groups) < 0 || setgid(ru->gid) < 0 ||
	    setuid(ru->uid) < 0)
		return -1;
	return 0;
}

/* Does user ru have search permission all the way to path? */
static int runas_can_traverse(const struct runas *ru, const char *path)
{
	pid_t pid, w;
	int st;

	if (!ru->drop)
		return 1;
	pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		if (runas_apply(ru) < 0)
			_exit(2);
		_exit(access(path, X_OK) == 0 ? 0 : 1);
	}
	while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	return w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Environment for the server binaries: ours without PG* (PGDATA, PGPORT,
 * PGOPTIONS would steer them) and with predictable messages. */
static char **child_environ(void)
{
	size_t n = 0, i, k = 0;
	char **env;

	while (environ && environ[n])
		n++;
	env = xcalloc(n + 2, sizeof(*env));
	for (i = 0; i < n; i++) {
		const char *e = environ[i];
		if (!strncmp(e, "PG", 2) || !strncmp(e, "LC_ALL=", 7))
			continue;
		env[k++] = environ[i];
	}
	env[k++] = (char *)"LC_ALL=C";
	env[k] = NULL;
	return env;
}

/* A CLOEXEC fd >= 3, so the child's dup2 onto 0..2 cannot clobber it. */
static int fd_high(int fd)
{
	int hi;

	if (fd < 0 || fd > 2)
		return fd;
	hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return hi;
}

struct exec_report {
	int stage;
	int errnum;
};

static const char *const exec_stage[] = { "redirect output", "drop privileges", "exec" };

/* Close every descriptor from lo up, except keep (lo <= keep). */
static void close_fds_from(int lo, int keep)
{
	long max;
	int fd;

	if ((keep == lo || close_range((unsigned)lo, (unsigned)keep - 1, 0) == 0) &&
	    close_range((unsigned)keep + 1, ~0U, 0) == 0)
		return;
	/* Kernels before 5.9: one by one. */
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (fd = lo; fd < max; fd++)
		if (fd != keep)
			close(fd);
}

/*
 * Run argv (argv[0] an absolute path) as ru with stdin from /dev/null and
 * stdout+stderr appended to outfd; wait for it. Returns 0 when it ran, with
 * its wait status in *status, or SLUICE_EIO when it could not be started.
 */
static int run_cmd(const struct runas *ru, char *const argv[], int outfd, int *status,
		   struct sluice_err *err)
{
	static const int reset[] = { SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD,
				     SIGUSR1, SIGUSR2 };
	struct exec_report rep;
	char **envp;
	int pfd[2], devnull, st = 0;
	ssize_t n;
	pid_t pid, w;
	size_t i;

	devnull = fd_high(open("/dev/null", O_RDONLY | O_CLOEXEC));
	if (devnull < 0)
		return err_set(err, SLUICE_EIO, "/dev/null: %s", strerror(errno));
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		close(devnull);
		return err_set(err, SLUICE_EIO, "pipe: %s", strerror(errno));
	}
	pfd[0] = fd_high(pfd[0]);
	pfd[1] = fd_high(pfd[1]);
	if (pfd[0] < 0 || pfd[1] < 0) {
		close(devnull);
		close(pfd[0]);
		close(pfd[1]);
		return err_set(err, SLUICE_EIO, "pipe: %s", strerror(errno));
	}
	envp = child_environ();
	pid = fork();
	if (pid == 0) {
		sigset_t none;

		rep.stage = 0;
		if (dup2(devnull, 0) < 0 || dup2(outfd, 1) < 0 || dup2(outfd, 2) < 0)
			goto fail;
		close_fds_from(3, pfd[1]);
		/* A worker thread may have blocked or ignored signals; the
		 * server must not inherit that (pg_ctl stop sends SIGINT). */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
			signal(reset[i], SIG_DFL);
		if (chdir("/") < 0)
			goto fail;
		rep.stage = 1;
		if (runas_apply(ru) < 0)
			goto fail;
		rep.stage = 2;
		execve(argv[0], argv, envp);
fail:
		rep.errnum = errno;
		if (write(pfd[1], &rep, sizeof(rep)) < 0)
			_exit(126);
		_exit(127);
	}
	free(envp);
	close(pfd[1]);
	close(devnull);
	if (pid < 0) {
		close(pfd[0]);
		return err_set(err, SLUICE_EIO, "%s: fork: %s", argv[0], strerror(errno));
	}
	while ((n = read(pfd[0], &rep, sizeof(rep))) < 0 && errno == EINTR)
		;
	close(pfd[0]);
	while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	if (w < 0)
		return err_set(err, SLUICE_EIO, "%s: waitpid: %s", argv[0], strerror(errno));
	if (n == (ssize_t)sizeof(rep))
		return err_set(err, SLUICE_EIO, "%s: %s%s%s: %s", argv[0],
			       exec_stage[rep.stage], ru->drop ? " as " : "",
			       ru->drop ? ru->name : "", strerror(rep.errnum));
	*status = st;
	return 0;
}

static void describe_status(int st, struct buf *out)
{
	if (WIFEXITED(st))
		buf_printf(out, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		buf_printf(out, "killed by signal %d", WTERMSIG(st));
	else
		buf_puts(out, "stopped");
}

/* What was written to path after offset from (its last 8 KiB at most). */
static void log_since(const char *path, off_t from, struct buf *out)
{
	char tmp[8192];
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size - from > (off_t)sizeof(tmp))
		from = st.st_size - (off_t)sizeof(tmp);
	n = pread(fd, tmp, sizeof(tmp), from);
	close(fd);
	if (n > 0)
		buf_add(out, tmp, (size_t)n);
}

/* The last few lines written to path after offset from, on one line. */
static void log_tail(const char *path, off_t from, struct buf *out)
{
	struct buf text = BUF_INIT;
	size_t i, lines = 0;
	const char *s;

	log_since(path, from, &text);
	buf_rtrim(&text);
	/* Keep the last 6 lines. */
	for (i = text.len; i > 0; i--)
		if (text.s[i - 1] == '\n' && ++lines == 6)
			break;
	for (s = text.s + i; *s; s++) {
		if (*s == '\n')
			buf_puts(out, " | ");
		else
			buf_addc(out, *s);
	}
	buf_release(&text);
}

static int fail_with_log(int st, const char *what, const char *logpath, off_t from,
			 struct sluice_err *err)
{
	struct buf why = BUF_INIT, tail = BUF_INIT;
	int rc;

	describe_status(st, &why);
	log_tail(logpath, from, &tail);
	rc = err_set(err, SLUICE_EIO, "%s failed (%s); %s ends with: %s", what, why.s, logpath,
		     tail.len ? tail.s : "(nothing)");
	buf_release(&why);
	buf_release(&tail);
	return rc;
}

/* Newest /usr/lib/postgresql/N/bin, or $SLUICE_PG_BINDIR, or the PATH's. */
static int find_bindir(struct buf *out, struct sluice_err *err)
{
	const char *env = getenv("SLUICE_PG_BINDIR"), *path;
	struct buf probe = BUF_INIT;
	glob_t g;
	size_t i;
	int found = 0;

	if (env && *env) {
		buf_printf(&probe, "%s/initdb", env);
		found = access(probe.s, X_OK) == 0;
		buf_release(&probe);
		if (!found)
			return err_set(err, SLUICE_EUSAGE, "SLUICE_PG_BINDIR=%s has no initdb", env);
		buf_puts(out, env);
		return 0;
	}
	if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0) {
		const char *best = NULL;
		for (i = 0; i < g.gl_pathc; i++)
			if (access(g.gl_pathv[i], X_OK) == 0 &&
			    (!best || strverscmp(g.gl_pathv[i], best) > 0))
				best = g.gl_pathv[i];
		if (best) {
			buf_add(out, best, strlen(best) - strlen("/initdb"));
			found = 1;
		}
		globfree(&g);
		if (found)
			return 0;
	}
	for (path = getenv("PATH"); path && *path;) {
		const char *colon = strchrnul(path, ':');
		buf_reset(&probe);
		buf_printf(&probe, "%.*s/initdb", (int)(colon - path), path);
		if (probe.s[0] == '/' && access(probe.s, X_OK) == 0) {
			buf_add(out, path, (size_t)(colon - path));
			buf_release(&probe);
			return 0;
		}
		path = *colon ? colon + 1 : colon;
	}
	buf_release(&probe);
	return err_set(err, SLUICE_EUSAGE,
		       "no initdb under /usr/lib/postgresql/*/bin or in PATH "
		       "(install the postgresql package, or set SLUICE_PG_BINDIR)");
}

static int lock_take(const struct emb *m, int *fdp, struct sluice_err *err)
{
	struct buf path = BUF_INIT;
	int fd;

	buf_printf(&path, "%s/pg.lock", m->dotdir.s);
	fd = open(path.s, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		err_set(err, SLUICE_EIO, "%s: %s", path.s, strerror(errno));
		buf_release(&path);
		return SLUICE_EIO;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		err_set(err, SLUICE_EIO, "lock %s: %s", path.s, strerror(errno));
		close(fd);
		buf_release(&path);
		return SLUICE_EIO;
	}
	buf_release(&path);
	*fdp = fd;
	return 0;
}

/* Find the cluster: <dotdir>/pg itself, or the target of that symlink. */
static void locate(struct emb *m)
{
	struct stat st;
	char target[PATH_MAX];
	ssize_t n;

	buf_reset(&m->datadir);
	if (lstat(m->link.s, &st) < 0)
		return;
	if (S_ISLNK(st.st_mode)) {
		n = readlink(m->link.s, target, sizeof(target) - 1);
		if (n > 0 && target[0] == '/')
			buf_add(&m->datadir, target, (size_t)n);
	} else if (S_ISDIR(st.st_mode)) {
		buf_puts(&m->datadir, m->link.s);
	}
}

static int is_symlink(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

static int cluster_exists(const char *datadir)
{
	struct buf p = BUF_INIT;
	int ok;

	buf_printf(&p, "%s/PG_VERSION", datadir);
	ok = fs_exists(p.s);
	buf_release(&p);
	return ok;
}

/* postmaster.pid: line 1 pid, line 4 port, line 5 socket directory. */
static int read_pidfile(const char *datadir, long *pid, int *port, struct buf *sockdir)
{
	struct buf path = BUF_INIT, text = BUF_INIT;
	struct sluice_err ignore = SLUICE_ERR_INIT;
	char *line, *next;
	int lineno = 0, rc = -1;

	*pid = 0;
	*port = 0;
	buf_printf(&path, "%s/postmaster.pid", datadir);
	if (fs_read_file(path.s, &text, &ignore) == 0) {
		for (line = text.s; line && *line; line = next) {
			next = strchr(line, '\n');
			if (next)
				*next++ = '\0';
			lineno++;
			if (lineno == 1)
				*pid = strtol(line, NULL, 10);
			else if (lineno == 4)
				*port = (int)strtol(line, NULL, 10);
			else if (lineno == 5 && sockdir)
				buf_puts(sockdir, line);
		}
		rc = *pid > 0 && *port > 0 ? 0 : -1;
	}
	buf_release(&path);
	buf_release(&text);
	return rc;
}

static int pid_alive(long pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static int server_answers(const char *sockdir, int port)
{
	char ps[16];
	const char *const kw[] = { "host", "port", "dbname", "user", "connect_timeout", NULL };
	const char *const vals[] = { sockdir, ps, "postgres", EMB_USER, "5", NULL };

	snprintf(ps, sizeof(ps), "%d", port);
	return PQpingParams(kw, vals, 0) == PQPING_OK;
}

static void fill_info(struct pg_embedded *e, const char *datadir, const char *sockdir, int port,
		      long pid)
{
	snprintf(e->datadir, sizeof(e->datadir), "%s", datadir);
	snprintf(e->sockdir, sizeof(e->sockdir), "%s", sockdir);
	e->port = port;
	e->pid = pid;
}

/* Status of the located cluster; fills e when it runs. */
/* ask: the server must answer too, not only its pid file say it runs. */
static int status_of(const struct emb *m, struct pg_embedded *e, int ask)
{
	struct buf sock = BUF_INIT;
	long pid;
	int port, st = PG_EMBEDDED_STOPPED;

	if (!m->datadir.len || !cluster_exists(m->datadir.s))
		return PG_EMBEDDED_ABSENT;
	if (read_pidfile(m->datadir.s, &pid, &port, &sock) == 0 && pid_alive(pid) && sock.len &&
	    (!ask || server_answers(sock.s, port))) {
		fill_info(e, m->datadir.s, sock.s, port, pid);
		st = PG_EMBEDDED_RUNNING;
	}
	buf_release(&sock);
	return st;
}

/*
 * mkdir a directory only we and the server user may use. It may already
 * exist from an earlier run, but then it must be a real directory owned by
 * one of us: these live in world-writable /tmp and /var/tmp.
 */
static int private_dir(const char *path, const struct runas *ru, struct sluice_err *err)
{
	struct stat st;

	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return err_set(err, SLUICE_EIO, "mkdir %s: %s", path, strerror(errno));
	if (lstat(path, &st) < 0)
		return err_set(err, SLUICE_EIO, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode) || (st.st_uid != geteuid() && !(ru->drop && st.st_uid == ru->uid)))
		return err_set(err, SLUICE_EIO,
			       "%s exists but is not a directory owned by us or %s; remove it",
			       path, ru->drop ? ru->name : "us");
	if (ru->drop && chown(path, ru->uid, ru->gid) < 0)
		return err_set(err, SLUICE_EIO, "chown %s: %s", path, strerror(errno));
	if (chmod(path, 0700) < 0)
		return err_set(err, SLUICE_EIO, "chmod %s: %s", path, strerror(errno));
	return 0;
}

/* Socket paths are short (sun_path) and go into pg_ctl's shell command
 * line unquoted, so keep to characters that need no quoting there. */
static int sockdir_ok(const char *dir)
{
	struct sockaddr_un sa;
	const char *s;

	if (strlen(dir) + strlen("/.s.PGSQL.65535") >= sizeof(sa.sun_path))
		return 0;
	for (s = dir; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+", *s))
			return 0;
	return 1;
}

/* <project>/.sluice/run when the server can reach the project (the cluster
 * is not elsewhere) and the path fits, else /tmp/sluice-<hash>. */
static void pick_sockdir(struct emb *m)
{
	buf_reset(&m->sockdir);
	if (!strcmp(m->datadir.s, m->link.s)) {
		buf_printf(&m->sockdir, "%s/run", m->dotdir.s);
		if (sockdir_ok(m->sockdir.s))
			return;
		buf_reset(&m->sockdir);
	}
	buf_printf(&m->sockdir, "/tmp/sluice-%s", m->hash);
}

static int prepare_sockdir(const struct emb *m, struct sluice_err *err)
{
	struct stat st;

	if (strncmp(m->sockdir.s, "/tmp/", 5) == 0)
		return private_dir(m->sockdir.s, &m->ru, err);
	if (mkdir(m->sockdir.s, 0700) < 0 && errno != EEXIST)
		return err_set(err, SLUICE_EIO, "mkdir %s: %s", m->sockdir.s, strerror(errno));
	if (lstat(m->sockdir.s, &st) < 0 || !S_ISDIR(st.st_mode))
		return err_set(err, SLUICE_EIO, "%s is not a directory", m->sockdir.s);
	if (m->ru.drop && chown(m->sockdir.s, m->ru.uid, m->ru.gid) < 0)
		return err_set(err, SLUICE_EIO, "chown %s: %s", m->sockdir.s, strerror(errno));
	return 0;
}

/*
 * Decide where a new cluster goes. The server user must be able to reach
 * it; as root with a project under /root it cannot, so the cluster goes to
 * /var/tmp/sluice-embedded-<hash>/pg and <project>/.sluice/pg links there.
 */
static int choose_location(struct emb *m, struct sluice_err *err)
{
	struct buf base = BUF_INIT;
	int rc;

	buf_reset(&m->datadir);
	if (runas_can_traverse(&m->ru, m->dotdir.s)) {
		buf_puts(&m->datadir, m->link.s);
		return 0;
	}
	buf_printf(&base, "/var/tmp/sluice-embedded-%s", m->hash);
	rc = private_dir(base.s, &m->ru, err);
	if (!rc)
		buf_printf(&m->datadir, "%s/pg", base.s);
	buf_release(&base);
	return rc;
}

static int make_datadir(const char *dir, const struct runas *ru, struct sluice_err *err)
{
	struct sluice_err ignore = SLUICE_ERR_INIT;

	fs_remove_tree(dir, &ignore);
	if (mkdir(dir, 0700) < 0)
		return err_set(err, SLUICE_EIO, "mkdir %s: %s", dir, strerror(errno));
	if (ru->drop && chown(dir, ru->uid, ru->gid) < 0)
		return err_set(err, SLUICE_EIO, "chown %s: %s", dir, strerror(errno));
	return 0;
}

static int append_conf(const char *datadir, const char *sockdir, struct sluice_err *err)
{
	struct buf path = BUF_INIT, conf = BUF_INIT;
	int fd, rc = 0;

	buf_printf(&path, "%s/postgresql.conf", datadir);
	buf_printf(&conf,
		   "\n# sluice embedded server (connectors/pg-embedded.c)\n"
		   "listen_addresses = '127.0.0.1'\n"
		   "unix_socket_directories = '%s'\n"
		   "unix_socket_permissions = 0700\n"
		   "max_connections = 100\n"
		   "shared_buffers = 32MB\n",
		   sockdir);
	fd = open(path.s, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || write(fd, conf.s, conf.len) != (ssize_t)conf.len)
		rc = err_set(err, SLUICE_EIO, "%s: %s", path.s, strerror(errno));
	if (fd >= 0 && close(fd) < 0 && !rc)
		rc = err_set(err, SLUICE_EIO, "%s: %s", path.s, strerror(errno));
	buf_release(&path);
	buf_release(&conf);
	return rc;
}

/*
 * initdb into <datadir>.tmp, configure, then rename into place: a cluster
 * is either complete or absent, even if we are killed half-way.
 */
static int init_cluster(struct emb *m, const char *bindir, struct sluice_err *err)
{
	struct buf tmp = BUF_INIT, log = BUF_INIT, initdb = BUF_INIT, tail = BUF_INIT;
	const char *target = m->datadir.s, *slash = strrchr(target, '/');
	const char *locales[] = { "--locale=C.UTF-8", "--locale=C" };
	int fd = -1, st = 0, rc = 0;
	size_t i;

	if (cluster_exists(target))
		goto link;
	buf_printf(&tmp, "%s.tmp", target);
	buf_printf(&log, "%.*s/pg-init.log", (int)(slash - target), target);
	buf_printf(&initdb, "%s/initdb", bindir);
	fd = fd_high(open(log.s, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
	if (fd < 0) {
		rc = err_set(err, SLUICE_EIO, "%s: %s", log.s, strerror(errno));
		goto out;
	}
	for (i = 0; i < sizeof(locales) / sizeof(locales[0]); i++) {
		char *argv[] = { initdb.s, (char *)"-D", tmp.s, (char *)"-U", (char *)EMB_USER,
				 (char *)"--auth-local=trust", (char *)"--auth-host=reject",
				 (char *)"-E", (char *)"UTF8", (char *)locales[i],
				 (char *)"--no-instructions", NULL };
		off_t from = lseek(fd, 0, SEEK_END);

		if ((rc = make_datadir(tmp.s, &m->ru, err)))
			goto out;
		if ((rc = run_cmd(&m->ru, argv, fd, &st, err)))
			goto out;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			break;
		/* A system without the C.UTF-8 locale still has C. */
		buf_reset(&tail);
		log_since(log.s, from, &tail);
		if (!strstr(tail.s, "locale") || i + 1 == sizeof(locales) / sizeof(locales[0])) {
			rc = fail_with_log(st, "initdb", log.s, from, err);
			goto out;
		}
	}
	if ((rc = append_conf(tmp.s, m->sockdir.s, err)))
		goto out;
	if (rename(tmp.s, target) < 0) {
		rc = err_set(err, SLUICE_EIO, "rename %s to %s: %s", tmp.s, target, strerror(errno));
		goto out;
	}
link:
	if (strcmp(target, m->link.s) && !is_symlink(m->link.s) && symlink(target, m->link.s) < 0)
		rc = err_set(err, SLUICE_EIO, "symlink %s -> %s: %s", m->link.s, target,
			     strerror(errno));
out:
	if (rc && tmp.len) {
		struct sluice_err ignore = SLUICE_ERR_INIT;
		fs_remove_tree(tmp.s, &ignore);
	}
	if (fd >= 0)
		close(fd);
	buf_release(&tmp);
	buf_release(&log);
	buf_release(&initdb);
	buf_release(&tail);
	return rc;
}

static int free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = 0;

	if (s < 0)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(s, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(s);
	return port;
}

static int open_log(const struct emb *m, struct buf *path, struct sluice_err *err)
{
	int fd;

	buf_printf(path, "%s/pg.log", m->dotdir.s);
	fd = fd_high(open(path->s, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
	if (fd < 0)
		return err_set(err, SLUICE_EIO, "%s: %s", path->s, strerror(errno));
	return fd;
}

/*
 * pg_ctl start. The server's output goes to the pg.log descriptor we hand
 * it rather than `-l`, because as root the server user may not be able to
 * open a file inside the project.
 */
static int start_server(struct emb *m, const char *bindir, struct pg_embedded *e,
			struct sluice_err *err)
{
	struct buf log = BUF_INIT, pg_ctl = BUF_INIT, opts = BUF_INIT, tail = BUF_INIT;
	struct buf sock = BUF_INIT;
	int fd, st = 0, rc = 0, attempt, port;
	long pid;

	/* pg_ctl runs the server through /bin/sh with -D "DIR" in double quotes. */
	if (strpbrk(m->datadir.s, "\"$`\\"))
		return err_set(err, SLUICE_EUSAGE,
			       "%s: pg_ctl cannot start a cluster whose path contains \", $, ` or \\",
			       m->datadir.s);
	if ((rc = prepare_sockdir(m, err)))
		return rc;
	fd = open_log(m, &log, err);
	if (fd < 0) {
		buf_release(&log);
		return fd;
	}
	buf_printf(&pg_ctl, "%s/pg_ctl", bindir);
	for (attempt = 1;; attempt++) {
		off_t from = lseek(fd, 0, SEEK_END);
		char *argv[] = { pg_ctl.s, (char *)"-D", m->datadir.s, (char *)"-w", (char *)"-t",
				 (char *)"60", (char *)"-s", (char *)"-o", NULL, (char *)"start", NULL };

		port = free_port();
		if (!port) {
			rc = err_set(err, SLUICE_EIO, "no free port on 127.0.0.1: %s", strerror(errno));
			goto out;
		}
		buf_reset(&opts);
		buf_printf(&opts, "-p %d -k %s", port, m->sockdir.s);
		argv[8] = opts.s;
		if ((rc = run_cmd(&m->ru, argv, fd, &st, err)))
			goto out;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			break;
		/* Someone took the port between our probe and the server's bind. */
		buf_reset(&tail);
		log_since(log.s, from, &tail);
		if (strstr(tail.s, "Address already in use") && attempt < START_TRIES)
			continue;
		rc = fail_with_log(st, "pg_ctl start", log.s, from, err);
		goto out;
	}
	if (read_pidfile(m->datadir.s, &pid, &port, &sock) < 0 || !sock.len) {
		rc = err_set(err, SLUICE_EIO, "server started but %s/postmaster.pid is unreadable",
			     m->datadir.s);
		goto out;
	}
	fill_info(e, m->datadir.s, sock.s, port, pid);
out:
	close(fd);
	buf_release(&log);
	buf_release(&pg_ctl);
	buf_release(&opts);
	buf_release(&tail);
	buf_release(&sock);
	return rc;
}

/* A postmaster that is alive but not answering is starting up (or
 * recovering): wait for it rather than start a second one. */
static int wait_for_starting(const struct emb *m, struct pg_embedded *e)
{
	struct buf sock = BUF_INIT;
	struct timespec nap = { 0, 100 * 1000 * 1000 };
	long pid;
	int port, i, st = PG_EMBEDDED_STOPPED;

	for (i = 0; i < 600; i++) {
		buf_reset(&sock);
		if (read_pidfile(m->datadir.s, &pid, &port, &sock) < 0 || !pid_alive(pid))
			break;
		if (sock.len && server_answers(sock.s, port)) {
			fill_info(e, m->datadir.s, sock.s, port, pid);
			st = PG_EMBEDDED_RUNNING;
			break;
		}
		nanosleep(&nap, NULL);
	}
	buf_release(&sock);
	return st;
}

static int ensure_locked(struct emb *m, const char *bindir, struct pg_embedded *e, int *started,
			 struct sluice_err *err)
{
	int rc, fresh;

	locate(m);
	if (m->datadir.len && !cluster_exists(m->datadir.s)) {
		if (is_symlink(m->link.s)) {
			/* Dangling: /var/tmp was cleaned. Start over. */
			if (unlink(m->link.s) < 0)
				return err_set(err, SLUICE_EIO, "unlink %s: %s", m->link.s,
					       strerror(errno));
		} else if (rmdir(m->link.s) < 0) {
			return err_set(err, SLUICE_EIO,
				       "%s exists but holds no PostgreSQL cluster (no PG_VERSION); move it away",
				       m->link.s);
		}
		buf_reset(&m->datadir);
	}
	fresh = !m->datadir.len;
	if ((rc = runas_init(&m->ru, fresh ? NULL : m->datadir.s, err)))
		return rc;
	if (fresh && (rc = choose_location(m, err)))
		return rc;
	pick_sockdir(m);
	if (fresh && (rc = init_cluster(m, bindir, err)))
		return rc;
	if (status_of(m, e, 1) == PG_EMBEDDED_RUNNING || wait_for_starting(m, e) == PG_EMBEDDED_RUNNING)
		return 0;
	if ((rc = start_server(m, bindir, e, err)))
		return rc;
	*started = 1;
	return 0;
}

int pg_embedded_ensure(const char *project_dir, struct pg_embedded *e, int *started,
		       struct sluice_err *err)
{
	struct emb m;
	struct buf bindir = BUF_INIT;
	int lockfd = -1, rc;

	*started = 0;
	memset(e, 0, sizeof(*e));
	if ((rc = emb_open(&m, project_dir, err)) == 0 &&
	    (rc = fs_mkdir_p(m.dotdir.s, err)) == 0 &&
	    (rc = find_bindir(&bindir, err)) == 0 &&
	    (rc = lock_take(&m, &lockfd, err)) == 0)
		rc = ensure_locked(&m, bindir.s, e, started, err);
	if (rc)
		err_prefix(err, "embedded PostgreSQL");
	if (lockfd >= 0)
		close(lockfd);
	buf_release(&bindir);
	emb_release(&m);
	return rc;
}

static int status_in(const char *project_dir, struct pg_embedded *e, int ask)
{
	struct sluice_err ignore = SLUICE_ERR_INIT;
	struct emb m;
	int st = PG_EMBEDDED_ABSENT;

	memset(e, 0, sizeof(*e));
	if (emb_open(&m, project_dir, &ignore) == 0) {
		locate(&m);
		st = status_of(&m, e, ask);
	}
	emb_release(&m);
	return st;
}

int pg_embedded_status(const char *project_dir, struct pg_embedded *e)
{
	return status_in(project_dir, e, 1);
}

int pg_embedded_address(const char *project_dir, struct pg_embedded *e)
{
	return status_in(project_dir, e, 0);
}

int pg_embedded_stop(const char *project_dir, struct sluice_err *err)
{
	struct buf bindir = BUF_INIT, log = BUF_INIT, pg_ctl = BUF_INIT;
	struct sluice_err ignore = SLUICE_ERR_INIT;
	struct emb m;
	long pid = 0;
	int port, lockfd = -1, logfd = -1, st = 0, rc;

	if (emb_open(&m, project_dir, &ignore) < 0) {
		/* No project, no server. */
		emb_release(&m);
		return 0;
	}
	rc = 0;
	if (!fs_is_dir(m.dotdir.s))
		goto out;
	if ((rc = lock_take(&m, &lockfd, err)))
		goto out;
	locate(&m);
	if (!m.datadir.len || !cluster_exists(m.datadir.s) ||
	    read_pidfile(m.datadir.s, &pid, &port, NULL) < 0 || !pid_alive(pid))
		goto out;
	if ((rc = find_bindir(&bindir, err)) || (rc = runas_init(&m.ru, m.datadir.s, err)))
		goto out;
	logfd = open_log(&m, &log, err);
	if (logfd < 0) {
		rc = logfd;
		goto out;
	}
	buf_printf(&pg_ctl, "%s/pg_ctl", bindir.s);
	{
		off_t from = lseek(logfd, 0, SEEK_END);
		char *argv[] = { pg_ctl.s, (char *)"-D", m.datadir.s, (char *)"-m", (char *)"fast",
				 (char *)"-w", (char *)"-t", (char *)"60", (char *)"-s",
				 (char *)"stop", NULL };

		if ((rc = run_cmd(&m.ru, argv, logfd, &st, err)))
			goto out;
		/* It may have gone away by itself meanwhile: that is fine too. */
		if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0) &&
		    read_pidfile(m.datadir.s, &pid, &port, NULL) == 0 && pid_alive(pid))
			rc = fail_with_log(st, "pg_ctl stop", log.s, from, err);
	}
out:
	if (rc)
		err_prefix(err, "embedded PostgreSQL");
	if (logfd >= 0)
		close(logfd);
	if (lockfd >= 0)
		close(lockfd);
	buf_release(&bindir);
	buf_release(&log);
	buf_release(&pg_ctl);
	emb_release(&m);
	return rc;
}

int pg_embedded_remove(const char *project_dir, struct sluice_err *err)
{
	struct sluice_err ignore = SLUICE_ERR_INIT;
	struct buf fallback = BUF_INIT;
	struct emb m;
	int lockfd = -1, rc;

	if ((rc = pg_embedded_stop(project_dir, err)))
		return rc;
	if (emb_open(&m, project_dir, &ignore) < 0 || !fs_is_dir(m.dotdir.s)) {
		emb_release(&m);
		return 0;
	}
	if (!(rc = lock_take(&m, &lockfd, err))) {
		locate(&m);
		/* only what is ours: the cluster in the project, or the fallback named after it */
		buf_printf(&fallback, "/var/tmp/sluice-embedded-%s", m.hash);
		if (is_symlink(m.link.s)) {
			if (m.datadir.len == fallback.len + 3 && !strncmp(m.datadir.s, fallback.s, fallback.len))
				rc = fs_remove_tree(fallback.s, err);
			if (!rc && unlink(m.link.s) < 0)
				rc = err_set(err, SLUICE_EIO, "%s: %s", m.link.s, strerror(errno));
		} else if (m.datadir.len) {
			rc = fs_remove_tree(m.datadir.s, err);
		}
		close(lockfd);
	}
	if (rc)
		err_prefix(err, "embedded PostgreSQL");
	buf_release(&fallback);
	emb_release(&m);
	return rc;
}

/* 1 when database name exists, 0 when not, -1 when we cannot tell. */
static int db_exists(PGconn *pg, const char *name)
{
	const char *params[1] = { name };
	PGresult *res = PQexecParams(pg, "select 1 from pg_database where datname = $1", 1, NULL,
				     params, NULL, NULL, 0);
	int rc = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) > 0 : -1;

	PQclear(res);
	return rc;
}

/* Server text spans lines ("ERROR:  ...\nDETAIL:  ..."); ours is one line. */
static void add_line(struct buf *b, const char *s)
{
	for (; *s; s++)
		if (*s != '\n' || s[1])
			buf_addc(b, *s == '\n' ? ' ' : *s);
	buf_rtrim(b);
}

int pg_embedded_create_db(const struct pg_embedded *e, const char *name, struct sluice_err *err)
{
	char ps[16];
	const char *const kw[] = { "host", "port", "dbname", "user", "connect_timeout",
				   "application_name", NULL };
	const char *const vals[] = { e->sockdir, ps, "postgres", EMB_USER, "10", "sluice", NULL };
	struct buf msg = BUF_INIT;
	PGconn *pg;
	PGresult *res;
	int rc = 0;

	if (!name || !*name)
		return err_set(err, SLUICE_EUSAGE, "embedded PostgreSQL: empty database name");
	snprintf(ps, sizeof(ps), "%d", e->port);
	pg = PQconnectdbParams(kw, vals, 0);
	if (PQstatus(pg) != CONNECTION_OK) {
		add_line(&msg, PQerrorMessage(pg));
		rc = err_set(err, SLUICE_ECONN, "embedded PostgreSQL on %s: %s", e->sockdir, msg.s);
		goto out;
	}
	if (db_exists(pg, name) == 1)
		goto out;
	{
		char *ident = PQescapeIdentifier(pg, name, strlen(name));
		struct buf sql = BUF_INIT;

		buf_printf(&sql, "CREATE DATABASE %s", ident ? ident : "\"\"");
		PQfreemem(ident);
		res = PQexec(pg, sql.s);
		buf_release(&sql);
	}
	/*
	 * Another process may have created it since we looked: that fails
	 * with duplicate_database (42P04) or, when both passed the check at
	 * once, a unique violation on pg_database. Either way it exists now,
	 * which is all we wanted.
	 */
	if (PQresultStatus(res) != PGRES_COMMAND_OK && db_exists(pg, name) != 1) {
		add_line(&msg, PQresultErrorMessage(res));
		rc = err_set(err, SLUICE_EDB, "embedded PostgreSQL: create database %s: %s", name,
			     msg.s);
	}
	PQclear(res);
out:
	PQfinish(pg);
	buf_release(&msg);
	return rc;
}
