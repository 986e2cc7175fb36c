/*
 * conn.c: opening connections by profile name, the connections a build
 * keeps, and sending statements with the audit comment; see conn.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "audit.h"
#include "conn.h"
#include "util/xalloc.h"

int conn_open(struct session *s, const char *name, struct sluice_conn **out, const struct dialect **dialect,
	      struct sluice_err *err)
{
	const struct conn_cfg *cfg = project_conn(&s->project, name);
	const struct sluice_connector *drv;
	const char *dname;
	struct sluice_conn_params params;
	int rc;

	if (!cfg)
		return err_set(err, SLUICE_EUSAGE, "unknown connection '%s'", name);
	if ((rc = connector_resolve(&cfg->settings, &drv, &dname, err)))
		return rc;
	if (dialect && !(*dialect = dialect_find(dname)))
		return err_set(err, SLUICE_EUSAGE, "connection '%s': unknown dialect '%s'", name, dname);
	params.name = cfg->name;
	params.settings = &cfg->settings;
	params.project_dir = s->project.dir;
	params.application_name = s->app_name;
	if ((rc = drv->connect(&params, out, err)))
		return rc;
	/* every statement on it is logged, whoever sends it */
	*out = audit_wrap(s->audit, *out);
	return 0;
}

size_t conn_slot_of(const struct project *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->target.nconns; i++)
		if (!strcmp(p->target.conns[i].name, name))
			return i;
	return 0;   /* manifest_build already rejected unknown names */
}

int conn_pool_init(struct conn_pool *pool, struct session *s, struct sluice_err *err)
{
	struct project *p = &s->project;
	size_t i;
	int rc;

	memset(pool, 0, sizeof(*pool));
	pool->s = s;
	pool->nslots = p->target.nconns;
	pool->slots = xcalloc(pool->nslots ? pool->nslots : 1, sizeof(*pool->slots));
	for (i = 0; i < pool->nslots; i++) {
		const char *dname;
		if ((rc = connector_resolve(&p->target.conns[i].settings, &pool->slots[i].drv, &dname, err)))
			return err_prefix(err, "%s: connection '%s'", p->target.profiles_path ? p->target.profiles_path : "profile",
					  p->target.conns[i].name);
		if (!(pool->slots[i].dialect = dialect_find(dname)))
			return err_set(err, SLUICE_EUSAGE, "connection '%s': unknown dialect '%s'", p->target.conns[i].name, dname);
	}
	return 0;
}

void conn_pool_add_workers(struct conn_pool *pool, int workers)
{
	int t;

	pool->workers = xcalloc((size_t)(workers > 0 ? workers : 1), sizeof(*pool->workers));
	for (t = 0; t < workers; t++)
		pool->workers[t] = xcalloc(pool->nslots ? pool->nslots : 1, sizeof(struct sluice_conn *));
	pool->nworkers = workers;
}

const struct dialect *conn_pool_dialect(const struct conn_pool *pool, size_t slot)
{
	return pool->slots[slot].dialect;
}

struct sluice_conn *conn_pool_main(struct conn_pool *pool, size_t slot, struct sluice_err *err)
{
	struct conn_slot *cs = &pool->slots[slot];

	if (!cs->main && conn_open(pool->s, pool->s->project.target.conns[slot].name, &cs->main, NULL, err))
		return NULL;
	return cs->main;
}

struct sluice_conn *conn_pool_worker(struct conn_pool *pool, int worker, size_t slot, struct sluice_err *err)
{
	struct sluice_conn **c = &pool->workers[worker - 1][slot];
	const struct dialect *d = pool->slots[slot].dialect;

	if (*c)
		return *c;
	if (conn_open(pool->s, pool->s->project.target.conns[slot].name, c, NULL, err))
		return NULL;
	if (d->session_tag) {
		/* The warehouse's query log can then tell this run's sessions apart. */
		struct sluice_err ignored = SLUICE_ERR_INIT;
		struct buf tag = BUF_INIT, sql = BUF_INIT;
		dialect_session_tag_text(&tag, pool->s->invocation_id, pool->s->user);
		d->session_tag(&sql, tag.s);
		(*c)->drv->exec(*c, sql.s, NULL, &ignored);
		buf_release(&tag);
		buf_release(&sql);
	}
	return *c;
}

void conn_pool_drop(struct conn_pool *pool, int worker, size_t slot)
{
	conn_close(pool->workers[worker - 1][slot]);
	pool->workers[worker - 1][slot] = NULL;
}

void conn_pool_release(struct conn_pool *pool)
{
	size_t k;
	int t;

	for (k = 0; k < pool->nslots; k++)
		conn_close(pool->slots[k].main);
	for (t = 0; t < pool->nworkers; t++) {
		for (k = 0; k < pool->nslots; k++)
			conn_close(pool->workers[t][k]);
		free(pool->workers[t]);
	}
	free(pool->workers);
	free(pool->slots);
	memset(pool, 0, sizeof(*pool));
}

void conn_audit_comment(const struct session *s, const char *node, struct buf *out)
{
	buf_printf(out, "/* sluice run=%s node=%s user=%s%s%s */\n", s->invocation_id, node, s->user,
		   s->schedule[0] ? " schedule=" : "", s->schedule);
}

int conn_send_exec(struct sluice_conn *c, const char *audit, const char *sql, long long *rows,
		   struct sluice_err *err)
{
	struct buf b = BUF_INIT;
	int rc;

	buf_printf(&b, "%s%s", audit ? audit : "", sql);
	rc = c->drv->exec(c, b.s, rows, err);
	buf_release(&b);
	return rc;
}

int conn_send_query(struct sluice_conn *c, const char *audit, const char *sql, sluice_row_fn fn, void *ud,
		    struct sluice_err *err)
{
	struct buf b = BUF_INIT;
	int rc;

	buf_printf(&b, "%s%s", audit ? audit : "", sql);
	rc = c->drv->query(c, b.s, fn, ud, err);
	buf_release(&b);
	return rc;
}

int conn_first_value(void *ud, const struct sluice_row *row)
{
	char **out = ud;

	if (!*out && row->ncols && row->values[0])
		*out = xstrdup(row->values[0]);
	return 0;
}
