/*
 * kind-sql.c: SQL models as node kinds: views, tables, incremental
 * models and ephemeral models. Their statements are materialize.c's
 * plans; here is only when each is planned and run. An ephemeral model is
 * inlined into what reads it and never runs.
 */
#include <string.h>
#include "build.h"

/* An incremental model whose table exists, unless a full refresh is asked for. */
static int sql_prepare(struct build *b, size_t idx)
{
	const struct node_run *r = &b->runs[idx];
	struct compile_opts o = { .invocation_id = b->s->invocation_id };

	o.is_incremental = (r->kind->flags & KIND_INCREMENTAL) && r->existing == REL_TABLE &&
			   !b->s->cli->full_refresh;
	return build_plan_node(b, idx, &o, o.is_incremental, NULL);
}

static int sql_run(struct build *b, struct exec_worker *w, size_t idx, struct sluice_err *err)
{
	struct node_run *r = &b->runs[idx];

	if (r->decision.full_refresh && r->plan.strategy) {
		/* planned incremental, but the decision says from scratch */
		struct compile_opts o = { .invocation_id = b->s->invocation_id };
		if (build_plan_node(b, idx, &o, 0, NULL)) {
			*err = *run_err(r);
			return err->code;
		}
	}
	return build_run_plan(b, w, idx, NULL, err);
}

/*
 * An ephemeral model builds nothing, but target/compiled shows its query
 * as its readers inline it (the ephemeral models it reads as CTEs), as
 * dbt writes it.
 */
static int ephemeral_prepare(struct build *b, size_t idx)
{
	struct node_run *r = &b->runs[idx];
	struct compile_opts o = { .invocation_id = b->s->invocation_id };
	struct arena scratch = ARENA_INIT;
	struct buf sql = BUF_INIT;
	struct sluice_err e = SLUICE_ERR_INIT;
	int rc;

	rc = manifest_compile(&b->s->manifest, &b->s->manifest.nodes[idx], &o, &scratch, &sql, NULL, &e);
	if (rc)
		*run_err(r) = e;
	if (!rc && b->mode != BUILD_PLAN)   /* plan changes nothing, target/ included */
		build_write_target_file(b, "compiled", b->s->manifest.nodes[idx].model->path, sql.s);
	buf_release(&sql);
	arena_release(&scratch);
	return rc;
}

const struct node_kind kind_view = {
	.name = "view",
	/*
	 * Never a view over another environment's view: that one reads its
	 * own environment's upstream, which may move on without a trace, as
	 * a view is not re-decided when its data changes. It is made again
	 * here over our relations, which costs no more than a view over theirs.
	 */
	.flags = KIND_LIVE | KIND_REMADE,
	.what = BUILD_MODELS,
	.prepare = sql_prepare,
	.run = sql_run,
};

const struct node_kind kind_table = {
	.name = "table",
	.flags = KIND_SHAREABLE | KIND_COPYABLE,
	.what = BUILD_MODELS,
	.prepare = sql_prepare,
	.run = sql_run,
};

const struct node_kind kind_incremental = {
	.name = "incremental",
	/* never a view over another environment's table: what it appends to must be its own */
	.flags = KIND_INCREMENTAL | KIND_COPYABLE,
	.what = BUILD_MODELS,
	.prepare = sql_prepare,
	.run = sql_run,
};

const struct node_kind kind_ephemeral = {
	.name = "ephemeral",
	.flags = KIND_PASS | KIND_LIVE,
	.what = BUILD_MODELS,
	.prepare = ephemeral_prepare,
};
