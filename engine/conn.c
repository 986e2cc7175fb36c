/*
 * conn.c: opening connections by profile name, the connections a build
 * keeps, and sending statements with the audit comment; see conn.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "audit.h"
#include "conn.h"
#include "ui.h"
#include "util/clock.h"
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
	pthread_condattr_t ca;
	size_t i;
	int rc;

	memset(pool, 0, sizeof(*pool));
	pool->s = s;
	pool->nslots = p->target.nconns;
	pool->slots = xcalloc(pool->nslots ? pool->nslots : 1, sizeof(*pool->slots));
	pthread_mutex_init(&pool->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pool->returned, &ca);
	pthread_condattr_destroy(&ca);
	for (i = 0; i < pool->nslots; i++) {
		const char *dname;
		pool->slots[i].idle = xcalloc(1, sizeof(*pool->slots[i].idle));
		pool->slots[i].spare = -1;
		if ((rc = connector_resolve(&p->target.conns[i].settings, &pool->slots[i].drv, &dname, err)))
			return err_prefix(err, "%s: connection '%s'", p->target.profiles_path ? p->target.profiles_path : "profile",
					  p->target.conns[i].name);
		if (!(pool->slots[i].dialect = dialect_find(dname)))
			return err_set(err, SLUICE_EUSAGE, "connection '%s': unknown dialect '%s'", p->target.conns[i].name, dname);
	}
	return 0;
}

/* A new connection of slot i, tagged with the run and user. */
static struct sluice_conn *open_tagged(struct conn_pool *pool, size_t slot, struct sluice_err *err)
{
	const struct dialect *d = pool->slots[slot].dialect;
	struct sluice_conn *c;

	if (conn_open(pool->s, pool->s->project.target.conns[slot].name, &c, NULL, err))
		return NULL;
	if (d->session_tag) {
		/* The warehouse's query log can then tell this run's sessions apart. */
		struct sluice_err ignored = SLUICE_ERR_INIT;
		struct buf tag = BUF_INIT, sql = BUF_INIT;
		dialect_session_tag_text(&tag, pool->s->invocation_id, pool->s->user);
		d->session_tag(&sql, tag.s);
		c->drv->exec(c, sql.s, NULL, &ignored);
		buf_release(&tag);
		buf_release(&sql);
	}
	return c;
}

const struct dialect *conn_pool_dialect(const struct conn_pool *pool, size_t slot)
{
	return pool->slots[slot].dialect;
}

struct sluice_conn *conn_pool_main(struct conn_pool *pool, size_t slot, struct sluice_err *err)
{
	struct conn_slot *cs = &pool->slots[slot];

	if (!cs->main) {
		if (!(cs->main = open_tagged(pool, slot, err)))
			return NULL;
		cs->nopen++;
	}
	return cs->main;
}

/* Budget query's two values: sessions still allowed, and the limit that allows them. */
struct budget {
	long long room, limit;
	int rows;
};

static int budget_row(void *ud, const struct sluice_row *row)
{
	struct budget *bu = ud;

	if (!bu->rows++ && row->ncols >= 2 && row->values[0] && row->values[1]) {
		bu->room = strtoll(row->values[0], NULL, 10);
		bu->limit = strtoll(row->values[1], NULL, 10);
	}
	return 0;
}

int conn_pool_plan(struct conn_pool *pool, size_t slot, int threads, int extra_per_worker, int *workers,
		   struct buf *why, struct sluice_err *err)
{
	const struct dialect *d = pool->slots[slot].dialect;
	struct budget bu = { -1, -1, 0 };
	struct sluice_conn *c;
	struct buf q = BUF_INIT;
	long long reserve, fit;
	int rc;

	*workers = threads;
	if (!d->connection_budget_query)
		return 0;
	if (!(c = conn_pool_main(pool, slot, err)))
		return err->code;
	d->connection_budget_query(&q);
	rc = conn_send_query(c, NULL, q.s, budget_row, &bu, err);
	buf_release(&q);
	if (rc || bu.limit < 0)
		return rc;
	/* room for a DBA's session and another run's first connections */
	reserve = bu.limit / 10 > 2 ? bu.limit / 10 : 2;
	/*
	 * The main connection (open, so counted already) is lent to the
	 * workers too: one more worker than there is room for.
	 */
	fit = (bu.room - reserve) / (1 + extra_per_worker) + 1;
	if (fit > threads)
		fit = threads;
	if (fit < 1)
		fit = 1;
	/* what the workers leave is for the streams of unloads and loads (conn_pool_extra_take) */
	pthread_mutex_lock(&pool->mu);
	pool->slots[slot].spare = bu.room - reserve - (fit - 1) - fit * extra_per_worker;
	if (pool->slots[slot].spare < 0)
		pool->slots[slot].spare = 0;
	pthread_mutex_unlock(&pool->mu);
	if (fit >= threads)
		return 0;
	*workers = (int)fit;
	buf_printf(why, "connection '%s' may open %lld more session%s (of a limit of %lld), "
		   "%lld kept free for others", pool->s->project.target.conns[slot].name,
		   bu.room < 0 ? 0 : bu.room, bu.room == 1 ? "" : "s", bu.limit, reserve);
	return 0;
}

int conn_pool_extra_take(struct conn_pool *pool, size_t slot, int want)
{
	struct conn_slot *cs = &pool->slots[slot];
	int got = want;

	pthread_mutex_lock(&pool->mu);
	if (cs->spare >= 0) {
		if (got > cs->spare)
			got = cs->spare;
		cs->spare -= got;
	}
	pthread_mutex_unlock(&pool->mu);
	return got;
}

void conn_pool_extra_done(struct conn_pool *pool, size_t slot, int n)
{
	struct conn_slot *cs = &pool->slots[slot];

	pthread_mutex_lock(&pool->mu);
	if (cs->spare >= 0)
		cs->spare += n;
	pthread_mutex_unlock(&pool->mu);
}

void conn_pool_add_workers(struct conn_pool *pool, int workers, int (*give_up)(void *ud), void *ud)
{
	size_t k;
	int t;

	pool->held = xcalloc((size_t)(workers > 0 ? workers : 1), sizeof(*pool->held));
	for (t = 0; t < workers; t++)
		pool->held[t] = xcalloc(pool->nslots ? pool->nslots : 1, sizeof(struct sluice_conn *));
	pool->nworkers = workers;
	pool->give_up = give_up;
	pool->give_up_ud = ud;
	for (k = 0; k < pool->nslots; k++) {
		struct conn_slot *cs = &pool->slots[k];
		cs->idle = xrealloc(cs->idle, (size_t)(workers + 1) * sizeof(*cs->idle));
		if (cs->main)
			cs->idle[cs->nidle++] = cs->main;
	}
}

static void deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Open a new connection of the slot, unlocked; the pool's lock is held on return. */
static struct sluice_conn *try_open(struct conn_pool *pool, size_t slot, struct sluice_err *err)
{
	struct sluice_conn *c;

	pthread_mutex_unlock(&pool->mu);
	c = open_tagged(pool, slot, err);
	pthread_mutex_lock(&pool->mu);
	if (c)
		pool->slots[slot].nopen++;
	return c;
}

struct sluice_conn *conn_pool_worker(struct conn_pool *pool, int worker, size_t slot, struct sluice_err *err)
{
	struct conn_slot *cs = &pool->slots[slot];
	struct sluice_conn **held = &pool->held[worker - 1][slot];
	struct sluice_err oerr = SLUICE_ERR_INIT;
	double give_up_at = 0, retry_at = 0;

	if (*held)
		return *held;
	pthread_mutex_lock(&pool->mu);
	for (;;) {
		struct timespec ts;
		double now;
		if (cs->nidle) {
			*held = cs->idle[--cs->nidle];
			break;
		}
		now = clock_monotonic();
		if (now >= retry_at) {
			if ((*held = try_open(pool, slot, &oerr)))
				break;
			if (oerr.code == SLUICE_EUSAGE || !cs->nopen) {
				*err = oerr;   /* nothing of this run's to wait for */
				break;
			}
			if (!give_up_at)
				give_up_at = now + CONN_WAIT_SECONDS;
			/* each refused attempt is a line in the server's log: not too often */
			retry_at = now + 5;
			if (!cs->refused++)
				ui_warn("connection '%s': the server refused another session (%s); "
					"this run goes on with the %d it has", pool->s->project.target.conns[slot].name,
					oerr.msg, cs->nopen);
		}
		if (pool->give_up && pool->give_up(pool->give_up_ud)) {
			err_set(err, SLUICE_ECANCEL, "cancelled while waiting for a connection");
			break;
		}
		if (now >= give_up_at) {
			*err = oerr;
			err_prefix(err, "no connection of this run came free in %d s", CONN_WAIT_SECONDS);
			break;
		}
		deadline_in(&ts, 250);
		pthread_cond_timedwait(&pool->returned, &pool->mu, &ts);
	}
	pthread_mutex_unlock(&pool->mu);
	return *held;
}

void conn_pool_job_done(struct conn_pool *pool, int worker)
{
	size_t k;
	int back = 0;

	pthread_mutex_lock(&pool->mu);
	for (k = 0; k < pool->nslots; k++) {
		struct sluice_conn **held = &pool->held[worker - 1][k];
		if (*held) {
			pool->slots[k].idle[pool->slots[k].nidle++] = *held;
			*held = NULL;
			back = 1;
		}
	}
	if (back)
		pthread_cond_broadcast(&pool->returned);
	pthread_mutex_unlock(&pool->mu);
}

void conn_pool_drop(struct conn_pool *pool, int worker, size_t slot)
{
	struct conn_slot *cs = &pool->slots[slot];
	struct sluice_conn *c = pool->held[worker - 1][slot];

	if (!c)
		return;
	pool->held[worker - 1][slot] = NULL;
	conn_close(c);
	pthread_mutex_lock(&pool->mu);
	cs->nopen--;
	if (c == cs->main)
		cs->main = NULL;
	pthread_cond_broadcast(&pool->returned);
	pthread_mutex_unlock(&pool->mu);
}

void conn_pool_release(struct conn_pool *pool)
{
	size_t k, i;
	int t;

	for (k = 0; k < pool->nslots; k++) {
		struct conn_slot *cs = &pool->slots[k];
		for (t = 0; t < pool->nworkers; t++)
			if (pool->held[t][k] && pool->held[t][k] != cs->main)
				conn_close(pool->held[t][k]);
		for (i = 0; i < cs->nidle; i++)
			if (cs->idle[i] != cs->main)
				conn_close(cs->idle[i]);
		conn_close(cs->main);
		free(cs->idle);
	}
	for (t = 0; t < pool->nworkers; t++)
		free(pool->held[t]);
	free(pool->held);
	free(pool->slots);
	pthread_mutex_destroy(&pool->mu);
	pthread_cond_destroy(&pool->returned);
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

/* ---- the warehouse for templates ---- */

struct conn_render_db {
	struct render_db base;         /* first: what templates are given */
	struct session *s;
	pthread_mutex_t mu;            /* one query at a time, and the list below */
	struct { const char *name; struct sluice_conn *c; const struct dialect *d; } *open;
	size_t nopen;
};

static int render_db_query(const struct render_db *base, const char *name, const char *sql,
			   int (*fn)(void *ud, const struct sluice_row *row), void *ud, struct sluice_err *err)
{
	struct conn_render_db *db = (struct conn_render_db *)base;
	struct sluice_conn *c = NULL;
	const struct dialect *d = NULL;
	size_t i;
	int rc;

	pthread_mutex_lock(&db->mu);
	for (i = 0; i < db->nopen; i++)
		if (!strcmp(db->open[i].name, name)) {
			c = db->open[i].c;
			d = db->open[i].d;
		}
	if (!c) {
		if ((rc = conn_open(db->s, name, &c, &d, err))) {
			pthread_mutex_unlock(&db->mu);
			return rc;
		}
		db->open = xrealloc(db->open, (db->nopen + 1) * sizeof(*db->open));
		db->open[db->nopen].name = name;
		db->open[db->nopen].c = c;
		db->open[db->nopen++].d = d;
	}
	/* read-only: a template reads the warehouse, it never writes it */
	rc = c->drv->exec(c, "BEGIN READ ONLY", NULL, err);
	if (!rc) {
		rc = c->drv->query(c, sql, fn, ud, err);
		c->drv->exec(c, d->rollback, NULL, &(struct sluice_err)SLUICE_ERR_INIT);
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

struct render_db *conn_render_db_new(struct session *s)
{
	struct conn_render_db *db = xcalloc(1, sizeof(*db));

	db->base.query = render_db_query;
	db->s = s;
	pthread_mutex_init(&db->mu, NULL);
	return &db->base;
}

void conn_render_db_free(struct render_db *base)
{
	struct conn_render_db *db = (struct conn_render_db *)base;
	size_t i;

	if (!db)
		return;
	for (i = 0; i < db->nopen; i++)
		conn_close(db->open[i].c);
	free(db->open);
	pthread_mutex_destroy(&db->mu);
	free(db);
}
