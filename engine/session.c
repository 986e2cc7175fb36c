/*
 * session.c: common flags and the load-project-then-select sequence every
 * command starts with; see session.h.
 */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "audit.h"
#include "conn.h"
#include "schedule.h"
#include "session.h"
#include "ui.h"
#include "util/fs.h"
#include "util/xalloc.h"

static int flag_value(int argc, char **argv, int *i, const char *name, const char **out,
		      struct sluice_err *err)
{
	size_t n = strlen(name);

	if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=') {
		*out = argv[*i] + n + 1;
		return 1;
	}
	if (strcmp(argv[*i], name))
		return 0;
	if (*i + 1 >= argc) {
		err_set(err, SLUICE_EUSAGE, "%s needs a value", name);
		return -1;
	}
	*out = argv[++*i];
	return 1;
}

static void add_words(struct buf *b, const char *s)
{
	if (b->len)
		buf_addc(b, ' ');
	buf_puts(b, s);
}

int cli_parse(struct cli *cli, int argc, char **argv, const char *const *extra, struct sluice_err *err)
{
	int i, r;

	cli->args = xcalloc((size_t)argc + 1, sizeof(char *));
	cli->argc = argc;
	cli->argv = argv;
	cli->wait_lock = -1;
	for (i = 1; i < argc; i++) {
		const char *v = NULL, *a = argv[i];
		const char *const *e;

#define VALUE(name, field) \
	if ((r = flag_value(argc, argv, &i, name, &v, err)) < 0) return SLUICE_EUSAGE; \
	if (r) { field = v; continue; }
		VALUE("--project-dir", cli->project_dir)
		VALUE("--profiles-dir", cli->profiles_dir)
		VALUE("--target", cli->target)
		VALUE("-t", cli->target)
		VALUE("--vars", cli->vars)
		VALUE("--log-format", cli->log_format)
		VALUE("--output", cli->output)
		VALUE("-o", cli->output)
		VALUE("--resource-type", cli->resource_type)
		VALUE("--format", cli->format)
		VALUE("--report-to", cli->report_to)
#undef VALUE
		if (!strcmp(a, "-s") || !strcmp(a, "--select") || !strcmp(a, "-m") || !strcmp(a, "--models") ||
		    !strcmp(a, "--exclude")) {
			struct buf *dst = !strcmp(a, "--exclude") ? &cli->exclude : &cli->select;
			if (i + 1 >= argc || argv[i + 1][0] == '-')
				return err_set(err, SLUICE_EUSAGE, "%s needs a selector", a);
			/* dbt takes several words after one -s */
			while (i + 1 < argc && argv[i + 1][0] != '-')
				add_words(dst, argv[++i]);
			continue;
		}
		if (!strncmp(a, "--select=", 9) || !strncmp(a, "--exclude=", 10)) {
			add_words(a[2] == 's' ? &cli->select : &cli->exclude, strchr(a, '=') + 1);
			continue;
		}
		if ((r = flag_value(argc, argv, &i, "--reuse-from", &v, err)) < 0)
			return SLUICE_EUSAGE;
		if (r) {
			if (!*v)
				return err_set(err, SLUICE_EUSAGE, "--reuse-from needs a target name");
			if (cli->reuse_from.len)
				buf_addc(&cli->reuse_from, ',');
			buf_puts(&cli->reuse_from, v);
			continue;
		}
		if (!strcmp(a, "--full-refresh")) {
			cli->full_refresh = 1;
			continue;
		}
		if (!strcmp(a, "--force")) {
			cli->force = 1;
			continue;
		}
		if ((r = flag_value(argc, argv, &i, "--wait-lock", &v, err)) < 0)
			return SLUICE_EUSAGE;
		if (r) {
			char *end;
			long n = strtol(v, &end, 10);
			if (*end || n < 0 || n > 86400)
				return err_set(err, SLUICE_EUSAGE, "--wait-lock takes seconds from 0 to 86400, not '%s'", v);
			cli->wait_lock = (int)n;
			continue;
		}
		if ((r = flag_value(argc, argv, &i, "--threads", &v, err)) < 0)
			return SLUICE_EUSAGE;
		if (r) {
			char *end;
			long n = strtol(v, &end, 10);
			if (*end || n < 1 || n > 64)
				return err_set(err, SLUICE_EUSAGE, "--threads takes a number from 1 to 64, not '%s'", v);
			cli->threads = (int)n;
			continue;
		}
		for (e = extra; e && *e; e++) {
			size_t n = strlen(*e);
			if (!strncmp(a, *e, n) && (a[n] == '\0' || a[n] == '='))
				break;
		}
		if (e && *e) {
			cli->args[cli->nargs++] = argv[i];
			continue;
		}
		if (a[0] == '-' && a[1])
			return err_set(err, SLUICE_EUSAGE, "unknown option '%s' for '%s' (see sluice help)", a, argv[0]);
		cli->args[cli->nargs++] = argv[i];
	}
	/* only the commands that end with a report publish it (cmd_report_run) */
	if (cli->report_to && strcmp(argv[0], "run") && strcmp(argv[0], "build") && strcmp(argv[0], "test"))
		return err_set(err, SLUICE_EUSAGE, "--report-to is for run, build and test, not '%s'", argv[0]);
	if (cli->reuse_from.len && strcmp(argv[0], "run") && strcmp(argv[0], "build") && strcmp(argv[0], "plan"))
		return err_set(err, SLUICE_EUSAGE, "--reuse-from is for run, build and plan, not '%s'", argv[0]);
	if (cli->log_format && strcmp(cli->log_format, "text") && strcmp(cli->log_format, "json"))
		return err_set(err, SLUICE_EUSAGE, "--log-format takes text or json, not '%s'", cli->log_format);
	return 0;
}

void cli_release(struct cli *cli)
{
	buf_release(&cli->select);
	buf_release(&cli->exclude);
	buf_release(&cli->reuse_from);
	free(cli->args);
}

void session_new_invocation_id(char *out, size_t n)
{
	unsigned char r[16] = { 0 };
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, r, sizeof(r)) != (ssize_t)sizeof(r)) {
		/* Never fatal: fall back to time and pid. */
		double t = now_seconds();
		memcpy(r, &t, sizeof(t));
		r[8] = (unsigned char)getpid();
		r[9] = (unsigned char)(getpid() >> 8);
	}
	if (fd >= 0)
		close(fd);
	/*
	 * UUIDv7: the first 48 bits are the Unix time in milliseconds, so
	 * ids (and the stage generations named after them) sort by time.
	 */
	{
		unsigned long long ms = (unsigned long long)(now_seconds() * 1000.0);
		int i;
		for (i = 5; i >= 0; i--, ms >>= 8)
			r[i] = (unsigned char)(ms & 0xff);
	}
	r[6] = (r[6] & 0x0f) | 0x70;
	r[8] = (r[8] & 0x3f) | 0x80;
	snprintf(out, n, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

/*
 * A run started by `sluice schedule` gets the schedule's name and the
 * invocation id the scheduler chose in its environment (cmd-schedule.c),
 * so that its audit comment names the schedule and the scheduler can
 * find this run's run_results.json among the attempts.
 */
static void find_schedule(struct session *s)
{
	const char *name = getenv("SLUICE_SCHEDULE"), *id = getenv("SLUICE_INVOCATION_ID");
	size_t i;

	if (name && schedule_name_ok(name))
		snprintf(s->schedule, sizeof(s->schedule), "%s", name);
	for (i = 0; id && id[i] && (isxdigit((unsigned char)id[i]) || id[i] == '-'); i++)
		;
	if (id && i == 36 && !id[i])
		snprintf(s->invocation_id, sizeof(s->invocation_id), "%s", id);
	else
		session_new_invocation_id(s->invocation_id, sizeof(s->invocation_id));
}

int session_open(struct session *s, struct cli *cli, struct sluice_err *err)
{
	struct project_opts po = { cli->project_dir, cli->profiles_dir, cli->target, cli->vars, &s->errors,
				   &s->warnings };
	struct manifest *m = &s->manifest;
	int rc;

	memset(s, 0, sizeof(*s));
	s->cli = cli;
	s->started_at = now_seconds();
	find_schedule(s);
	/* git status can take a while in a large repository: only for what records it */
	identity_init(&s->id, cli->identity_git ? (cli->project_dir ? cli->project_dir : ".") : NULL, cli->argc,
		      cli->argv);
	if (s->schedule[0])    /* the person who started the scheduler, through the schedule */
		snprintf(s->id.user_source, sizeof(s->id.user_source), "schedule:%s", s->schedule);
	s->user = s->id.user;
	/* application_name is at most 63 bytes */
	snprintf(s->app_name, sizeof(s->app_name), "sluice/%.56s", s->user);
	rc = project_load(&s->project, &po, err);
	ui_list(&s->warnings, 1);
	if (!rc)
		rc = manifest_build(m, &s->project, err);
	if (rc && s->errors.total)   /* one that stopped the load, after those collected */
		err_list_add(&s->errors, "%s", err->msg);
	else if (!rc && s->errors.total > 1)
		rc = err_set(err, SLUICE_EUSAGE, "%s (and %zu more errors)", s->errors.msg[0], s->errors.total - 1);
	else if (!rc && s->errors.total)
		rc = err_set(err, SLUICE_EUSAGE, "%s", s->errors.msg[0]);
	if (rc)
		return rc;
	s->render_db = conn_render_db_new(s);
	m->db = s->render_db;
	{
		time_t t = (time_t)s->started_at;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(s->run_started_at, 20, "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(s->run_started_at + 19, sizeof(s->run_started_at) - 19, ".%06d",
			 (int)((s->started_at - (double)t) * 1e6));
		m->run_started_at = s->run_started_at;
	}
	s->selected = arena_alloc(&s->project.arena, m->n ? m->n : 1);
	{
		struct dag_node_info *info = arena_alloc(&s->project.arena, (m->n ? m->n : 1) * sizeof(*info));
		size_t i;
		for (i = 0; i < m->n; i++)
			info[i] = m->nodes[i].info;
		rc = dag_select(m->dag, info, cli->select.s, cli->exclude.s, s->selected, err);
		for (i = 0; !rc && i < m->n && !s->selected[i]; i++)
			;
		if (!rc && i == m->n && (cli->select.len || cli->exclude.len))
			ui_warn("nothing matches the selection%s%s%s%s", cli->select.len ? " -s " : "", cli->select.s,
				cli->exclude.len ? " --exclude " : "", cli->exclude.s);
	}
	return rc;
}

int session_audit(struct session *s, struct sluice_err *err)
{
	struct buf path = BUF_INIT;
	int rc;

	buf_printf(&path, "%s/audit.jsonl", s->project.target_path);
	if (!(rc = fs_mkdir_parent(path.s, err)))
		rc = audit_open(&s->audit, path.s, s->invocation_id, s->user, err);
	buf_release(&path);
	return rc;
}

void session_close(struct session *s)
{
	conn_render_db_free(s->render_db);
	s->render_db = NULL;
	audit_close(s->audit);
	s->audit = NULL;
	err_list_release(&s->errors);
	err_list_release(&s->warnings);
	identity_release(&s->id);
	manifest_release(&s->manifest);
	project_release(&s->project);
}
