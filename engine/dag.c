/*
 * dag.c: the node graph behind every command. Edges, cycle detection, a
 * deterministic topological order, critical-path priorities and dbt's
 * --select/--exclude syntax, all over plain node indices plus the
 * dag_node_info the caller supplies. It does not load projects, print or
 * schedule: executor.c runs nodes using order and prio, and the callers
 * turn indices back into names for messages.
 *
 * Everything here is iterative (no recursion) because projects have
 * dependency chains thousands of nodes deep.
 */
#include <assert.h>
#include <ctype.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "dag.h"
#include "util/xalloc.h"

struct dag *dag_new(struct arena *a, size_t n)
{
	struct dag *d = arena_alloc(a, sizeof(*d));

	d->n = n;
	d->arena = a;
	d->parents = arena_alloc(a, n * sizeof(*d->parents));
	d->children = arena_alloc(a, n * sizeof(*d->children));
	d->nparents = arena_alloc(a, n * sizeof(*d->nparents));
	d->nchildren = arena_alloc(a, n * sizeof(*d->nchildren));
	d->pcap = arena_alloc(a, n * sizeof(*d->pcap));
	d->ccap = arena_alloc(a, n * sizeof(*d->ccap));
	return d;
}

static int dag_contains(const size_t *list, size_t n, size_t v)
{
	/* Backwards: a repeated edge is most often the one just added. */
	while (n-- > 0)
		if (list[n] == v)
			return 1;
	return 0;
}

static void dag_push(struct arena *a, size_t **list, size_t *n, size_t *cap, size_t v)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 2;

		*list = arena_grow(a, *list, *n, ncap, sizeof(**list));
		*cap = ncap;
	}
	(*list)[(*n)++] = v;
}

void dag_add_edge(struct dag *d, size_t parent, size_t child)
{
	if (parent >= d->n || child >= d->n) {
		assert(!"dag_add_edge: node index out of range");
		return;
	}
	/*
	 * The edge is in both lists or in neither, so search the shorter:
	 * a hub with thousands of children usually meets children with one
	 * or two parents, and the reverse.
	 */
	if (d->nchildren[parent] <= d->nparents[child]) {
		if (dag_contains(d->children[parent], d->nchildren[parent], child))
			return;
	} else if (dag_contains(d->parents[child], d->nparents[child], parent)) {
		return;
	}
	dag_push(d->arena, &d->children[parent], &d->nchildren[parent], &d->ccap[parent], child);
	dag_push(d->arena, &d->parents[child], &d->nparents[child], &d->pcap[child], parent);
}

/* A binary min-heap of node indices: Kahn's algorithm takes the lowest ready index. */
static void dag_heap_push(size_t *h, size_t *len, size_t v)
{
	size_t i = (*len)++;

	while (i > 0) {
		size_t up = (i - 1) / 2;

		if (h[up] <= v)
			break;
		h[i] = h[up];
		i = up;
	}
	h[i] = v;
}

static size_t dag_heap_pop(size_t *h, size_t *len)
{
	size_t top = h[0], n = --*len, last = h[n], i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && h[c + 1] < h[c])
			c++;
		if (last <= h[c])
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = last;
	return top;
}

/*
 * After Kahn's algorithm stalls, every node it could not order still has a
 * parent it could not order (indeg > 0), so following such parents from
 * any of them must come back to a node already seen: that loop is a cycle.
 * The walk goes against the edges; the result is reversed to follow them
 * and rotated to start at its lowest index so the report is stable.
 */
static void dag_find_cycle(const struct dag *d, const size_t *indeg, size_t **cycle, size_t *ncycle)
{
	size_t n = d->n, len = 0, v = 0, j, m, k, clen, lo, *walk, *pos, *out;

	pos = xmalloc(n * sizeof(*pos));
	walk = xmalloc(n * sizeof(*walk));
	for (k = 0; k < n; k++)
		pos[k] = SIZE_MAX;
	while (indeg[v] == 0)
		v++;
	while (pos[v] == SIZE_MAX) {
		pos[v] = len;
		walk[len++] = v;
		for (k = 0; indeg[d->parents[v][k]] == 0; k++)
			;
		v = d->parents[v][k];
	}
	/* walk[j] <- walk[j+1] <- ... <- walk[len-1] <- walk[j] along the edges. */
	j = pos[v];
	clen = len - j;
	/* pos is no longer needed: reuse it for the cycle in edge order. */
	for (m = 1; m < clen; m++)
		pos[m] = walk[len - m];
	pos[0] = walk[j];
	lo = 0;
	for (m = 1; m < clen; m++)
		if (pos[m] < pos[lo])
			lo = m;
	out = arena_alloc(d->arena, (clen + 1) * sizeof(*out));
	for (m = 0; m < clen; m++)
		out[m] = pos[(lo + m) % clen];
	out[clen] = out[0];
	if (cycle)
		*cycle = out;
	if (ncycle)
		*ncycle = clen + 1;
	free(walk);
	free(pos);
}

int dag_check(struct dag *d, size_t **cycle, size_t *ncycle)
{
	size_t n = d->n, nheap = 0, done = 0, i, k, *indeg, *heap, *order, *prio;

	if (cycle)
		*cycle = NULL;
	if (ncycle)
		*ncycle = 0;
	order = d->order ? d->order : arena_alloc(d->arena, n * sizeof(*order));
	prio = d->prio ? d->prio : arena_alloc(d->arena, n * sizeof(*prio));
	d->order = d->prio = NULL;

	indeg = xmalloc(n * sizeof(*indeg));
	heap = xmalloc(n * sizeof(*heap));
	for (i = 0; i < n; i++) {
		indeg[i] = d->nparents[i];
		if (!indeg[i])
			dag_heap_push(heap, &nheap, i);
	}
	while (nheap) {
		size_t v = dag_heap_pop(heap, &nheap);

		order[done++] = v;
		for (k = 0; k < d->nchildren[v]; k++) {
			size_t c = d->children[v][k];

			if (--indeg[c] == 0)
				dag_heap_push(heap, &nheap, c);
		}
	}
	free(heap);
	if (done < n) {
		dag_find_cycle(d, indeg, cycle, ncycle);
		free(indeg);
		return SLUICE_EUSAGE;
	}
	free(indeg);

	/* Children come later in order, so walking it backwards sees them first. */
	for (i = n; i-- > 0;) {
		size_t v = order[i], best = 0;

		for (k = 0; k < d->nchildren[v]; k++)
			if (prio[d->children[v][k]] > best)
				best = prio[d->children[v][k]];
		prio[v] = best + 1;
	}
	d->order = order;
	d->prio = prio;
	return 0;
}

/* ---- selection ---- */

enum dag_method { DAG_M_NAME, DAG_M_TAG, DAG_M_PATH, DAG_M_SOURCE, DAG_M_CONFIG, DAG_M_PACKAGE };

static const char *const dag_method_names[] = { "tag", "path", "source", "config", "package" };

/* One parsed selector atom; the strings point into a scratch copy. */
struct dag_atom {
	enum dag_method method;
	const char *value;
	const char *table;     /* source:s.t: the table part, or NULL */
	const char *key;       /* config.a.b: "a\0b", nkey segments */
	size_t nkey;
	int at;                /* @x */
	size_t up, down;       /* depth of +x / x+; 0 = none, SIZE_MAX = unlimited */
};

struct dag_sel {
	const struct dag *d;
	const struct dag_node_info *info;
	unsigned char *seeds, *atom, *term;   /* n bytes each */
	size_t *seen, *dist, *queue, stamp;   /* BFS scratch */
};

static int dag_sel_error(struct sluice_err *err, const char *raw, const char *why)
{
	return err_set(err, SLUICE_EUSAGE, "invalid selector '%s': %s", raw, why);
}

static size_t dag_depth(const char *s, const char *end)
{
	size_t v = 0;

	if (s == end)
		return SIZE_MAX;
	for (; s < end; s++) {
		if (v > (SIZE_MAX - 9) / 10)
			return SIZE_MAX;
		v = v * 10 + (size_t)(*s - '0');
	}
	return v;
}

/*
 * Parse raw (one atom) using work, a same-length copy that is cut up in
 * place. Grammar: [@][N+|+]body[+|+N], body = name | method:value.
 */
static int dag_atom_parse(const char *raw, char *work, struct dag_atom *at, struct sluice_err *err)
{
	char *p = work, *end = work + strlen(work), *q, *value;
	int has_up = 0, has_down = 0;

	memset(at, 0, sizeof(*at));
	if (*p == '@') {
		at->at = 1;
		p++;
	}
	for (q = p; isdigit((unsigned char)*q); q++)
		;
	if (*q == '+') {
		at->up = dag_depth(p, q);
		has_up = 1;
		p = q + 1;
	}
	for (q = end; q > p && isdigit((unsigned char)q[-1]); q--)
		;
	if (q > p && q[-1] == '+') {
		at->down = dag_depth(q, end);
		has_down = 1;
		end = q - 1;
	}
	*end = '\0';
	if (at->at && (has_up || has_down))
		return dag_sel_error(err, raw, "'@' cannot be combined with '+'");
	if (p == end)
		return dag_sel_error(err, raw, "missing a name or method:value");
	if (strchr(p, '+'))
		return dag_sel_error(err, raw, "unexpected '+'");
	if (*p == '@')
		return dag_sel_error(err, raw, "'@' must come first");

	value = strchr(p, ':');
	if (!value) {
		at->method = DAG_M_NAME;
		at->value = p;
		return 0;
	}
	if (value == p)
		return dag_sel_error(err, raw, "missing method before ':'");
	*value++ = '\0';
	at->value = value;
	if (!*value)
		return err_set(err, SLUICE_EUSAGE, "invalid selector '%s': missing value after '%s:'", raw, p);
	if (!strcmp(p, "tag")) {
		at->method = DAG_M_TAG;
	} else if (!strcmp(p, "package")) {
		at->method = DAG_M_PACKAGE;
	} else if (!strcmp(p, "path")) {
		size_t len;

		/* "./models/x/", "models/x" and "models/x/" mean the same; "." is everything. */
		at->method = DAG_M_PATH;
		while (value[0] == '.' && value[1] == '/')
			value += 2;
		len = strlen(value);
		while (len > 1 && value[len - 1] == '/')
			value[--len] = '\0';
		if (!strcmp(value, "."))
			value[0] = '\0';
		at->value = value;
	} else if (!strcmp(p, "source")) {
		char *dot = strchr(value, '.');

		at->method = DAG_M_SOURCE;
		if (dot) {
			*dot = '\0';
			at->table = dot + 1;
			if (!*value || !*at->table)
				return dag_sel_error(err, raw, "expected source:<source> or source:<source>.<table>");
		}
	} else if (!strncmp(p, "config.", 7) || !strcmp(p, "config")) {
		char *k = p + 6, *s;

		at->method = DAG_M_CONFIG;
		if (*k != '.' || !k[1])
			return dag_sel_error(err, raw, "expected config.<key>:<value>");
		at->key = ++k;
		at->nkey = 1;
		for (s = k; *s; s++) {
			if (*s != '.')
				continue;
			if (s == k || !s[1] || s[1] == '.')
				return dag_sel_error(err, raw, "empty key in config.<key>");
			*s = '\0';
			at->nkey++;
		}
	} else {
		const char *near = dag_suggest(p, dag_method_names,
					       sizeof(dag_method_names) / sizeof(dag_method_names[0]));

		if (near)
			return err_set(err, SLUICE_EUSAGE, "invalid selector '%s': unknown method '%s' (did you mean '%s'?)",
				       raw, p, near);
		return err_set(err, SLUICE_EUSAGE, "invalid selector '%s': unknown method '%s'", raw, p);
	}
	return 0;
}

static int dag_glob(const char *pattern, const char *s)
{
	return s && fnmatch(pattern, s, 0) == 0;
}

static int dag_path_matches(const char *want, const char *path)
{
	size_t len = strlen(want);

	if (!path)
		return 0;
	while (path[0] == '.' && path[1] == '/')
		path += 2;
	if (!len)
		return 1;
	if (strpbrk(want, "*?["))
		return fnmatch(want, path, FNM_LEADING_DIR) == 0;
	return !strncmp(path, want, len) && (path[len] == '\0' || path[len] == '/');
}

/* config.<key>:<value> on a scalar: strings exactly, bools as true/false, numbers as printed. */
static int dag_scalar_matches(const struct val *v, const char *want)
{
	struct buf b = BUF_INIT;
	int ok;

	switch (v->kind) {
	case V_STR:
		return !strcmp(v->u.str.s, want);
	case V_BOOL:
		return !strcasecmp(want, v->u.b ? "true" : "false");
	case V_NUM:
		val_format(v, &b);
		ok = !strcmp(b.s, want);
		buf_release(&b);
		return ok;
	default:
		return 0;
	}
}

static int dag_config_matches(const struct dag_atom *at, const struct val *config)
{
	const struct val *v = config;
	const char *k = at->key;
	size_t i;

	for (i = 0; v && i < at->nkey; i++) {
		v = val_get(v, k);
		k += strlen(k) + 1;
	}
	if (!v)
		return 0;
	if (v->kind != V_LIST)
		return dag_scalar_matches(v, at->value);
	for (i = 0; i < v->u.list.n; i++)
		if (dag_scalar_matches(&v->u.list.items[i], at->value))
			return 1;
	return 0;
}

static int dag_node_matches(const struct dag_atom *at, const struct dag_node_info *ni)
{
	size_t i;

	switch (at->method) {
	case DAG_M_NAME:
		/* As in dbt, a bare name selects models, not the sources they read. */
		return !ni->is_source && dag_glob(at->value, ni->name);
	case DAG_M_TAG:
		for (i = 0; i < ni->ntags; i++)
			if (dag_glob(at->value, ni->tags[i]))
				return 1;
		return 0;
	case DAG_M_PATH:
		return dag_path_matches(at->value, ni->path);
	case DAG_M_SOURCE:
		return ni->is_source && dag_glob(at->value, ni->source_name) &&
		       (!at->table || dag_glob(at->table, ni->name));
	case DAG_M_CONFIG:
		return ni->config && dag_config_matches(at, ni->config);
	case DAG_M_PACKAGE: {
		/* the project or package: unique_id's second part ("model.<package>.<name>") */
		const char *s = ni->unique_id ? strchr(ni->unique_id, '.') : NULL, *e = s ? strchr(s + 1, '.') : NULL;
		char pkg[256];
		if (!e || (size_t)(e - s - 1) >= sizeof(pkg))
			return 0;
		memcpy(pkg, s + 1, (size_t)(e - s - 1));
		pkg[e - s - 1] = '\0';
		return dag_glob(at->value, pkg);
	}
	}
	return 0;
}

/*
 * Mark in out every node at most depth edges away from a node marked in
 * from, going up (parents) or down (children); from's own nodes are not
 * marked. from may be out: it is only read before the first write.
 */
static void dag_walk(struct dag_sel *s, const unsigned char *from, size_t depth, int up, unsigned char *out)
{
	const struct dag *d = s->d;
	size_t n = d->n, head = 0, tail = 0, v, k;

	s->stamp++;
	for (v = 0; v < n; v++)
		if (from[v]) {
			s->seen[v] = s->stamp;
			s->dist[v] = 0;
			s->queue[tail++] = v;
		}
	while (head < tail) {
		const size_t *adj;
		size_t nadj;

		v = s->queue[head++];
		if (s->dist[v] >= depth)
			continue;
		adj = up ? d->parents[v] : d->children[v];
		nadj = up ? d->nparents[v] : d->nchildren[v];
		for (k = 0; k < nadj; k++) {
			size_t w = adj[k];

			if (s->seen[w] == s->stamp)
				continue;
			s->seen[w] = s->stamp;
			s->dist[w] = s->dist[v] + 1;
			s->queue[tail++] = w;
			out[w] = 1;
		}
	}
}

static int dag_atom_eval(struct dag_sel *s, const char *p, size_t len, unsigned char *out,
			 struct sluice_err *err)
{
	size_t n = s->d->n, i;
	char *raw = xstrndup(p, len), *work = xstrndup(p, len);
	struct dag_atom at;
	int rc;

	rc = dag_atom_parse(raw, work, &at, err);
	if (rc)
		goto done;
	for (i = 0; i < n; i++)
		s->seeds[i] = (unsigned char)dag_node_matches(&at, &s->info[i]);
	memcpy(out, s->seeds, n);
	if (at.at) {
		/* The node, its descendants, and everything those need to build. */
		dag_walk(s, s->seeds, SIZE_MAX, 0, out);
		dag_walk(s, out, SIZE_MAX, 1, out);
	} else {
		if (at.up)
			dag_walk(s, s->seeds, at.up, 1, out);
		if (at.down)
			dag_walk(s, s->seeds, at.down, 0, out);
	}
done:
	free(raw);
	free(work);
	return rc;
}

/* out = union over whitespace-separated terms of the intersection of their comma-separated atoms. */
static int dag_eval_spec(struct dag_sel *s, const char *spec, unsigned char *out, struct sluice_err *err)
{
	size_t n = s->d->n, i;
	const char *p = spec;
	int rc;

	memset(out, 0, n);
	for (;;) {
		const char *term, *term_end, *a;

		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			return 0;
		term = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		term_end = p;
		for (a = term;;) {
			const char *c = memchr(a, ',', (size_t)(term_end - a));

			if (!c)
				c = term_end;
			if (c == a)
				return err_set(err, SLUICE_EUSAGE, "invalid selector '%.*s': empty part in a ',' intersection",
					       (int)(term_end - term), term);
			rc = dag_atom_eval(s, a, (size_t)(c - a), a == term ? s->term : s->atom, err);
			if (rc)
				return rc;
			if (a != term)
				for (i = 0; i < n; i++)
					s->term[i] &= s->atom[i];
			if (c == term_end)
				break;
			a = c + 1;
		}
		for (i = 0; i < n; i++)
			out[i] |= s->term[i];
	}
}

static int dag_spec_empty(const char *spec)
{
	if (!spec)
		return 1;
	while (isspace((unsigned char)*spec))
		spec++;
	return !*spec;
}

int dag_select(const struct dag *d, const struct dag_node_info *info,
	       const char *select, const char *exclude, unsigned char *selected,
	       struct sluice_err *err)
{
	size_t n = d->n, i;
	struct dag_sel s;
	unsigned char *excl;
	int rc = 0;

	s.d = d;
	s.info = info;
	s.stamp = 0;
	s.seeds = xcalloc(4 * n, 1);
	s.atom = s.seeds + n;
	s.term = s.atom + n;
	excl = s.term + n;
	s.seen = xcalloc(3 * n, sizeof(size_t));
	s.dist = s.seen + n;
	s.queue = s.dist + n;

	if (dag_spec_empty(select))
		memset(selected, 1, n);
	else
		rc = dag_eval_spec(&s, select, selected, err);
	if (!rc && !dag_spec_empty(exclude)) {
		rc = dag_eval_spec(&s, exclude, excl, err);
		for (i = 0; !rc && i < n; i++)
			if (excl[i])
				selected[i] = 0;
	}
	if (rc)
		memset(selected, 0, n);
	free(s.seeds);
	free(s.seen);
	return rc;
}

/* ---- suggestions ---- */

/* Levenshtein distance, giving up (returning limit + 1) once it must exceed limit. */
static size_t dag_distance(const char *a, size_t la, const char *b, size_t *row, size_t limit)
{
	size_t lb = strlen(b), i, j;

	if ((la > lb ? la - lb : lb - la) > limit)
		return limit + 1;
	for (i = 0; i <= la; i++)
		row[i] = i;
	for (j = 1; j <= lb; j++) {
		size_t diag = row[0], lo;

		row[0] = j;
		lo = row[0];
		for (i = 1; i <= la; i++) {
			size_t up = row[i], best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[i - 1] + 1 < best)
				best = row[i - 1] + 1;
			row[i] = best;
			diag = up;
			if (best < lo)
				lo = best;
		}
		if (lo > limit)
			return limit + 1;
	}
	return row[la];
}

const char *dag_suggest(const char *name, const char *const *candidates, size_t n)
{
	size_t len = strlen(name), limit = len / 3 > 2 ? len / 3 : 2, best = limit + 1, i, *row;
	const char *found = NULL;

	row = xmalloc((len + 1) * sizeof(*row));
	for (i = 0; i < n && best > 0; i++) {
		size_t dist;

		if (!candidates[i])
			continue;
		/* Only strictly closer counts, so ties keep the earlier candidate. */
		dist = dag_distance(name, len, candidates[i], row, best - 1);
		if (dist < best) {
			best = dist;
			found = candidates[i];
		}
	}
	free(row);
	return found;
}
