/*
 * template.c: the Jinja subset described in template.h. A lexer splits the
 * source into text and tag tokens (whitespace control is applied there), a
 * recursive-descent parser builds the AST in the caller's arena, and a
 * tree-walking evaluator renders it with every runtime value in the scratch
 * arena. It does no I/O and knows no dbt functions: ref, config, var and
 * free names such as `this` belong to the host. It is not a full Jinja: no
 * macros, includes, inheritance, autoescaping or sandbox, and undefined
 * names are errors rather than silently empty.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "template.h"
#include "util/xalloc.h"

/* Deeper nesting is refused rather than risking the C stack. */
#define TPL_MAX_DEPTH 200
#define TPL_MAX_BRACKETS 64
#define TPL_MAX_RANGE 1000000
#define TPL_MAX_STRING (64u << 20)

/* ---- tokens and syntax tree -------------------------------------------- */

enum tpl_tok_kind {
	TK_EOF, TK_ERROR, TK_TEXT, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN,
	TK_BLOCK_END, TK_NAME, TK_STRING, TK_NUMBER, TK_OP
};

/* Operators: a one-character operator is the character itself. */
enum { OP_EQ = 256, OP_NE, OP_LE, OP_GE, OP_IN, OP_NOT_IN };

struct tpl_tok {
	enum tpl_tok_kind kind;
	int op;
	int line, col;
	const char *s;   /* TEXT, NAME: into the source copy; STRING: unescaped, NUL-terminated */
	size_t len;
	double num;
};

enum tpl_expr_kind {
	E_LIT, E_NAME, E_LIST, E_DICT, E_ATTR, E_INDEX, E_CALL, E_FILTER, E_TEST,
	E_NOT, E_NEG, E_POS, E_AND, E_OR, E_BIN, E_CMP, E_COND
};

enum tpl_filter_id {
	F_UPPER, F_LOWER, F_JOIN, F_DEFAULT, F_REPLACE, F_TRIM, F_LENGTH,
	F_STRING, F_INT, F_FIRST, F_LAST
};

enum tpl_test_id {
	T_DEFINED, T_UNDEFINED, T_NONE, T_STRING, T_NUMBER, T_BOOLEAN,
	T_MAPPING, T_SEQUENCE
};

struct tpl_args {
	struct tpl_expr **pos;
	size_t npos;
	const char **kwnames;
	struct tpl_expr **kw;
	size_t nkw;
};

/* One link of a comparison chain: a < b <= c is first=a, {<,b}, {<=,c}. */
struct tpl_cmp {
	int op;
	int line, col;
	struct tpl_expr *rhs;
};

struct tpl_expr {
	enum tpl_expr_kind kind;
	int op;          /* E_BIN: the operator; E_FILTER, E_TEST: the id */
	int neg;         /* E_TEST: "is not" */
	int line, col;
	union {
		struct val lit;
		const char *name;
		struct { struct tpl_expr **items, **keys; size_t n; } seq;
		struct { struct tpl_expr *obj; const char *name; } attr;
		struct { struct tpl_expr *obj, *key; } index;
		/* E_CALL (obj is NULL for a function, else the method's
		 * receiver), E_FILTER and E_TEST (obj is the operand). */
		struct { struct tpl_expr *obj; const char *name; struct tpl_args args; } call;
		struct tpl_expr *sub;
		struct { struct tpl_expr *l, *r; } bin;
		struct { struct tpl_expr *first; struct tpl_cmp *ops; size_t n; } cmp;
		struct { struct tpl_expr *then, *cond, *orelse; } cond;
	} u;
};

enum tpl_node_kind { N_TEXT, N_OUT, N_IF, N_FOR, N_SET, N_SET_BLOCK, N_DO };

struct tpl_node {
	enum tpl_node_kind kind;
	int line, col;
	struct tpl_node *next;
	union {
		struct { const char *s; size_t len; } text;
		struct tpl_expr *expr;
		/* elif is an N_IF alone in the orelse of the previous one */
		struct { struct tpl_expr *cond; struct tpl_node *then, *orelse; } branch;
		struct {
			const char *var, *var2;
			struct tpl_expr *iter, *filter;
			struct tpl_node *body, *orelse;
		} loop;
		struct { const char *name; struct tpl_expr *value; struct tpl_node *body; } set;
	} u;
};

struct tpl {
	const char *path;
	struct tpl_node *body;
};

struct tpl_parser {
	struct arena *a;
	const char *path;
	const char *src;         /* arena copy of the source, NUL-terminated */
	size_t len, pos;
	int line;
	size_t bol;              /* offset where the current line begins */
	struct tpl_tok *toks;    /* heap, freed when parsing ends */
	size_t ntoks, cap, i;
	int depth;
	struct sluice_err lexerr;   /* reported when the parser reaches TK_ERROR */
	struct sluice_err *err;
};

/* ---- errors ------------------------------------------------------------- */

static int tpl_verror(struct sluice_err *err, const char *path, int line, int col,
		      const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return err_set(err, SLUICE_EUSAGE, "%s:%d:%d: %s", path, line, col, msg);
}

static int tpl_error(struct sluice_err *err, const char *path, int line, int col,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int tpl_error(struct sluice_err *err, const char *path, int line, int col,
		     const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = tpl_verror(err, path, line, col, fmt, ap);
	va_end(ap);
	return rc;
}

static void tpl_op_text(int op, char out[8])
{
	switch (op) {
	case OP_EQ: memcpy(out, "==", 3); break;
	case OP_NE: memcpy(out, "!=", 3); break;
	case OP_LE: memcpy(out, "<=", 3); break;
	case OP_GE: memcpy(out, ">=", 3); break;
	case OP_IN: memcpy(out, "in", 3); break;
	case OP_NOT_IN: memcpy(out, "not in", 7); break;
	default: out[0] = (char)op; out[1] = '\0';
	}
}

static const char *tpl_tok_desc(const struct tpl_tok *t, char *buf, size_t n)
{
	char op[8];

	switch (t->kind) {
	case TK_EOF: return "end of template";
	case TK_ERROR: return "an error";
	case TK_TEXT: return "text";
	case TK_VAR_BEGIN: return "'{{'";
	case TK_VAR_END: return "'}}'";
	case TK_BLOCK_BEGIN: return "'{%'";
	case TK_BLOCK_END: return "'%}'";
	case TK_STRING: return "a string";
	case TK_NUMBER: return "a number";
	case TK_NAME:
		snprintf(buf, n, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), t->s);
		return buf;
	case TK_OP:
		tpl_op_text(t->op, op);
		snprintf(buf, n, "'%s'", op);
		return buf;
	}
	return "?";
}

static const char *tpl_type(const struct val *v)
{
	switch (v->kind) {
	case V_NONE: return "none";
	case V_BOOL: return "bool";
	case V_NUM: return "number";
	case V_STR: return "string";
	case V_LIST: return "list";
	case V_DICT: return "dict";
	}
	return "?";
}

/* ---- lexer -------------------------------------------------------------- */

static int tpl_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int tpl_is_ident(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Offset of the next "{{", "{%" or "{#" at or after from; len when none. */
static size_t tpl_find_tag(const char *s, size_t len, size_t from)
{
	const char *q;

	while (from + 1 < len && (q = memchr(s + from, '{', len - from - 1))) {
		if (q[1] == '{' || q[1] == '%' || q[1] == '#')
			return (size_t)(q - s);
		from = (size_t)(q - s) + 1;
	}
	return len;
}

static int tpl_lex_col(const struct tpl_parser *p)
{
	return (int)(p->pos - p->bol) + 1;
}

/* Move to offset `to`, counting the lines crossed. */
static void tpl_lex_advance(struct tpl_parser *p, size_t to)
{
	const char *s = p->src + p->pos, *end = p->src + to, *nl;

	while ((nl = memchr(s, '\n', (size_t)(end - s)))) {
		p->line++;
		s = nl + 1;
		p->bol = (size_t)(s - p->src);
	}
	p->pos = to;
}

static struct tpl_tok *tpl_lex_push(struct tpl_parser *p, enum tpl_tok_kind kind, int line, int col)
{
	struct tpl_tok *t;

	if (p->ntoks == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 256;
		p->toks = xrealloc(p->toks, p->cap * sizeof(*p->toks));
	}
	t = &p->toks[p->ntoks++];
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->line = line;
	t->col = col;
	return t;
}

/*
 * Lexing stops at the first error, which is kept aside and left as a
 * TK_ERROR token: a syntax error earlier in the file is still the one the
 * parser reports, since it meets it first.
 */
static int tpl_lex_fail(struct tpl_parser *p, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int tpl_lex_fail(struct tpl_parser *p, int line, int col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tpl_verror(&p->lexerr, p->path, line, col, fmt, ap);
	va_end(ap);
	tpl_lex_push(p, TK_ERROR, line, col);
	return -1;
}

/*
 * Does s[i..] (just after "{%") read "-? word -?%}"? Sets the dashes and
 * the offset just past "%}". Used for {% raw %} and {% endraw %}.
 */
static int tpl_word_tag(const char *s, size_t len, size_t i, const char *word,
			int *ldash, int *rdash, size_t *end)
{
	size_t wl = strlen(word);

	*ldash = i < len && s[i] == '-';
	i += (size_t)*ldash;
	while (i < len && tpl_is_space(s[i]))
		i++;
	if (len - i < wl || memcmp(s + i, word, wl))
		return 0;
	i += wl;
	if (i < len && tpl_is_ident(s[i]))
		return 0;
	while (i < len && tpl_is_space(s[i]))
		i++;
	*rdash = i < len && s[i] == '-';
	i += (size_t)*rdash;
	if (len - i < 2 || s[i] != '%' || s[i + 1] != '}')
		return 0;
	*end = i + 2;
	return 1;
}

static void tpl_lex_text(struct tpl_parser *p, size_t b, size_t e, int lstrip, int rstrip)
{
	struct tpl_tok *t;

	if (lstrip)
		while (b < e && tpl_is_space(p->src[b]))
			b++;
	if (rstrip)
		while (e > b && tpl_is_space(p->src[e - 1]))
			e--;
	if (e == b)
		return;
	tpl_lex_advance(p, b);
	t = tpl_lex_push(p, TK_TEXT, p->line, tpl_lex_col(p));
	t->s = p->src + b;
	t->len = e - b;
}

/* p->pos is at "{% raw %}", which ends at `end`: the body is plain text. */
static int tpl_lex_raw(struct tpl_parser *p, size_t end, int rdash, int *lstrip)
{
	const char *s = p->src, *q;
	size_t from = end, close;
	int line = p->line, col = tpl_lex_col(p), ld, rd;

	for (;;) {
		q = from < p->len ? memmem(s + from, p->len - from, "{%", 2) : NULL;
		if (!q)
			return tpl_lex_fail(p, line, col, "unclosed {%% raw %%} (opened here)");
		if (tpl_word_tag(s, p->len, (size_t)(q - s) + 2, "endraw", &ld, &rd, &close))
			break;
		from = (size_t)(q - s) + 2;
	}
	tpl_lex_text(p, end, (size_t)(q - s), rdash, ld);
	tpl_lex_advance(p, close);
	*lstrip = rd;
	return 0;
}

static int tpl_lex_string(struct tpl_parser *p)
{
	const char *s = p->src;
	char quote = s[p->pos], *out;
	size_t i = p->pos + 1, k = 0, j;
	int line = p->line, col = tpl_lex_col(p);
	struct tpl_tok *t;

	while (i < p->len && s[i] != quote)
		i += s[i] == '\\' && i + 1 < p->len ? 2 : 1;
	if (i >= p->len)
		return tpl_lex_fail(p, line, col, "unterminated string");
	out = arena_alloc(p->a, i - p->pos);
	for (j = p->pos + 1; j < i; j++) {
		char c = s[j];

		if (c == '\\') {
			switch (s[j + 1]) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case '\\': case '\'': case '"': c = s[j + 1]; break;
			default: out[k++] = '\\'; c = s[j + 1]; break;
			}
			j++;
		}
		out[k++] = c;
	}
	out[k] = '\0';
	t = tpl_lex_push(p, TK_STRING, line, col);
	t->s = out;
	t->len = k;
	tpl_lex_advance(p, i + 1);
	return 0;
}

static int tpl_lex_number(struct tpl_parser *p)
{
	const char *s = p->src;
	size_t i = p->pos, n = p->len, j;
	char tmp[64];
	struct tpl_tok *t;

	while (i < n && isdigit((unsigned char)s[i]))
		i++;
	if (i + 1 < n && s[i] == '.' && isdigit((unsigned char)s[i + 1]))
		for (i++; i < n && isdigit((unsigned char)s[i]); i++)
			;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		j = i + 1;
		if (j < n && (s[j] == '+' || s[j] == '-'))
			j++;
		if (j < n && isdigit((unsigned char)s[j]))
			for (i = j; i < n && isdigit((unsigned char)s[i]); i++)
				;
	}
	if (i - p->pos >= sizeof(tmp))
		return tpl_lex_fail(p, p->line, tpl_lex_col(p), "number too long");
	memcpy(tmp, s + p->pos, i - p->pos);
	tmp[i - p->pos] = '\0';
	t = tpl_lex_push(p, TK_NUMBER, p->line, tpl_lex_col(p));
	t->num = strtod(tmp, NULL);
	p->pos = i;
	return 0;
}

struct tpl_bracket {
	char c;
	int line, col;
};

/* One token inside a tag; brackets are tracked so "}}" can close a dict. */
static int tpl_lex_token(struct tpl_parser *p, struct tpl_bracket *stack, size_t *depth)
{
	const char *s = p->src;
	size_t i = p->pos;
	unsigned char c = (unsigned char)s[i];
	int line = p->line, col = tpl_lex_col(p), op = 0;
	struct tpl_tok *t;

	if (isalpha(c) || c == '_') {
		while (i < p->len && tpl_is_ident(s[i]))
			i++;
		t = tpl_lex_push(p, TK_NAME, line, col);
		t->s = s + p->pos;
		t->len = i - p->pos;
		p->pos = i;
		return 0;
	}
	if (isdigit(c))
		return tpl_lex_number(p);
	if (c == '\'' || c == '"')
		return tpl_lex_string(p);
	if (i + 1 < p->len && s[i + 1] == '=') {
		switch (c) {
		case '=': op = OP_EQ; break;
		case '!': op = OP_NE; break;
		case '<': op = OP_LE; break;
		case '>': op = OP_GE; break;
		}
	}
	if (op) {
		p->pos += 2;
	} else if (c && strchr("()[]{},:.|=<>+-*/%~", c)) {
		op = c;
		p->pos++;
	} else if (isprint(c)) {
		return tpl_lex_fail(p, line, col, "unexpected character '%c'", c);
	} else {
		return tpl_lex_fail(p, line, col, "unexpected byte 0x%02x", c);
	}
	if (op == '(' || op == '[' || op == '{') {
		if (*depth == TPL_MAX_BRACKETS)
			return tpl_lex_fail(p, line, col, "brackets nested too deeply");
		stack[*depth].c = (char)op;
		stack[*depth].line = line;
		stack[*depth].col = col;
		(*depth)++;
	} else if ((op == ')' || op == ']' || op == '}') && *depth) {
		char want = stack[*depth - 1].c == '(' ? ')' : stack[*depth - 1].c == '[' ? ']' : '}';

		if (op != want)
			return tpl_lex_fail(p, line, col, "unexpected '%c', expected '%c'", op, want);
		(*depth)--;
	}
	t = tpl_lex_push(p, TK_OP, line, col);
	t->op = op;
	return 0;
}

/* p->pos is at "{{" or "{%". */
static int tpl_lex_tag(struct tpl_parser *p, int *lstrip)
{
	struct tpl_bracket stack[TPL_MAX_BRACKETS];
	const char *s = p->src;
	int block = s[p->pos + 1] == '%';
	char close = block ? '%' : '}';
	int line = p->line, col = tpl_lex_col(p), ld, rd;
	size_t depth = 0, i, end;

	if (block && tpl_word_tag(s, p->len, p->pos + 2, "raw", &ld, &rd, &end))
		return tpl_lex_raw(p, end, rd, lstrip);
	tpl_lex_push(p, block ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, line, col);
	p->pos += 2;
	if (p->pos < p->len && s[p->pos] == '-')
		p->pos++;
	for (;;) {
		for (i = p->pos; i < p->len && tpl_is_space(s[i]); i++)
			;
		tpl_lex_advance(p, i);
		if (i >= p->len) {
			if (depth)
				return tpl_lex_fail(p, stack[depth - 1].line, stack[depth - 1].col,
						    "unclosed '%c'", stack[depth - 1].c);
			return tpl_lex_fail(p, line, col, "unclosed '%s' (expected '%s')",
					    block ? "{%" : "{{", block ? "%}" : "}}");
		}
		if (!depth) {
			int dash = s[i] == '-';

			if (i + (size_t)dash + 1 < p->len && s[i + dash] == close && s[i + dash + 1] == '}') {
				tpl_lex_push(p, block ? TK_BLOCK_END : TK_VAR_END, p->line, tpl_lex_col(p));
				p->pos = i + (size_t)dash + 2;
				*lstrip = dash;
				return 0;
			}
		}
		if (tpl_lex_token(p, stack, &depth))
			return -1;
	}
}

static int tpl_lex_comment(struct tpl_parser *p, int *lstrip)
{
	size_t start = p->pos + 2, end;
	const char *q = memmem(p->src + start, p->len - start, "#}", 2);

	if (!q)
		return tpl_lex_fail(p, p->line, tpl_lex_col(p), "unclosed comment (opened here)");
	end = (size_t)(q - p->src);
	*lstrip = end > start && p->src[end - 1] == '-';
	tpl_lex_advance(p, end + 2);
	return 0;
}

static void tpl_lex(struct tpl_parser *p)
{
	int lstrip = 0;

	while (p->pos < p->len) {
		size_t tag = tpl_find_tag(p->src, p->len, p->pos);
		int rstrip = tag + 2 < p->len && p->src[tag + 2] == '-';

		tpl_lex_text(p, p->pos, tag, lstrip, rstrip);
		tpl_lex_advance(p, tag);
		if (tag == p->len)
			break;
		if (p->src[tag + 1] == '#' ? tpl_lex_comment(p, &lstrip) : tpl_lex_tag(p, &lstrip))
			return;
	}
	tpl_lex_push(p, TK_EOF, p->line, tpl_lex_col(p));
}

/* ---- parser: helpers ---------------------------------------------------- */

static const struct tpl_tok *tpl_peek(const struct tpl_parser *p)
{
	return &p->toks[p->i];
}

static int tpl_at_end(const struct tpl_tok *t)
{
	return t->kind == TK_EOF || t->kind == TK_ERROR;
}

static const struct tpl_tok *tpl_peek2(const struct tpl_parser *p)
{
	return tpl_at_end(&p->toks[p->i]) ? &p->toks[p->i] : &p->toks[p->i + 1];
}

static const struct tpl_tok *tpl_next(struct tpl_parser *p)
{
	const struct tpl_tok *t = &p->toks[p->i];

	if (!tpl_at_end(t))
		p->i++;
	return t;
}

static int tpl_tok_is_op(const struct tpl_tok *t, int op)
{
	return t->kind == TK_OP && t->op == op;
}

static int tpl_tok_is(const struct tpl_tok *t, const char *word)
{
	size_t n = strlen(word);

	return t->kind == TK_NAME && t->len == n && !memcmp(t->s, word, n);
}

static int tpl_parse_fail(struct tpl_parser *p, const struct tpl_tok *t, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int tpl_parse_fail(struct tpl_parser *p, const struct tpl_tok *t, const char *fmt, ...)
{
	va_list ap;

	if (t->kind == TK_ERROR) {
		*p->err = p->lexerr;
		return SLUICE_EUSAGE;
	}
	va_start(ap, fmt);
	tpl_verror(p->err, p->path, t->line, t->col, fmt, ap);
	va_end(ap);
	return SLUICE_EUSAGE;
}

static int tpl_expect(struct tpl_parser *p, enum tpl_tok_kind kind)
{
	const struct tpl_tok *t = tpl_peek(p);
	char b[64];

	if (t->kind == kind) {
		tpl_next(p);
		return 0;
	}
	return tpl_parse_fail(p, t, "expected %s, got %s", kind == TK_VAR_END ? "'}}'" : "'%}'",
			      tpl_tok_desc(t, b, sizeof(b)));
}

static int tpl_expect_op(struct tpl_parser *p, int op)
{
	const struct tpl_tok *t = tpl_peek(p);
	char b[64];

	if (tpl_tok_is_op(t, op)) {
		tpl_next(p);
		return 0;
	}
	return tpl_parse_fail(p, t, "expected '%c', got %s", op, tpl_tok_desc(t, b, sizeof(b)));
}

static int tpl_enter(struct tpl_parser *p)
{
	if (++p->depth > TPL_MAX_DEPTH)
		return tpl_parse_fail(p, tpl_peek(p), "nested too deeply");
	return 0;
}

static const char *tpl_tok_str(struct tpl_parser *p, const struct tpl_tok *t)
{
	return arena_strndup(p->a, t->s, t->len);
}

static struct tpl_expr *tpl_expr_new(struct tpl_parser *p, enum tpl_expr_kind kind, int line, int col)
{
	struct tpl_expr *e = arena_alloc(p->a, sizeof(*e));

	e->kind = kind;
	e->line = line;
	e->col = col;
	return e;
}

/* Room for one more element in an arena array that doubles. */
static void *tpl_vec_room(struct arena *a, void *arr, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return arr;
	*cap = *cap ? 2 * *cap : 4;
	return arena_grow(a, arr, n, *cap, size);
}

static int tpl_is_keyword(const struct tpl_tok *t)
{
	static const char *const kw[] = { "and", "or", "not", "in", "is", "if", "else", NULL };
	size_t i;

	for (i = 0; kw[i]; i++)
		if (tpl_tok_is(t, kw[i]))
			return 1;
	return 0;
}

/* ---- parser: expressions ------------------------------------------------ */

static struct tpl_expr *tpl_parse_cond(struct tpl_parser *p, int with_if);
static struct tpl_expr *tpl_parse_unary(struct tpl_parser *p, int with_filter);

static struct tpl_expr *tpl_parse_expr(struct tpl_parser *p)
{
	return tpl_parse_cond(p, 1);
}

struct tpl_filter_def {
	const char *name;
	enum tpl_filter_id id;
	size_t min, max;
};

static const struct tpl_filter_def tpl_filters[] = {
	{ "upper", F_UPPER, 0, 0 },
	{ "lower", F_LOWER, 0, 0 },
	{ "join", F_JOIN, 0, 1 },
	{ "default", F_DEFAULT, 0, 2 },
	{ "d", F_DEFAULT, 0, 2 },
	{ "replace", F_REPLACE, 2, 3 },
	{ "trim", F_TRIM, 0, 1 },
	{ "length", F_LENGTH, 0, 0 },
	{ "count", F_LENGTH, 0, 0 },
	{ "string", F_STRING, 0, 0 },
	{ "int", F_INT, 0, 1 },
	{ "first", F_FIRST, 0, 0 },
	{ "last", F_LAST, 0, 0 },
};

static const struct { const char *name; enum tpl_test_id id; } tpl_tests[] = {
	{ "defined", T_DEFINED },
	{ "undefined", T_UNDEFINED },
	{ "none", T_NONE },
	{ "string", T_STRING },
	{ "number", T_NUMBER },
	{ "boolean", T_BOOLEAN },
	{ "mapping", T_MAPPING },
	{ "sequence", T_SEQUENCE },
	{ "iterable", T_SEQUENCE },
};

static void tpl_arity_text(char *buf, size_t n, size_t min, size_t max)
{
	if (min == max)
		snprintf(buf, n, "%zu argument%s", min, min == 1 ? "" : "s");
	else
		snprintf(buf, n, "%zu to %zu arguments", min, max);
}

/* Lists and dicts whose parts are all literals become one literal. */
static void tpl_fold(struct tpl_parser *p, struct tpl_expr *e)
{
	struct val v = e->kind == E_LIST ? val_list_new() : val_dict_new();
	size_t i;

	for (i = 0; i < e->u.seq.n; i++)
		if (e->u.seq.items[i]->kind != E_LIT ||
		    (e->kind == E_DICT && e->u.seq.keys[i]->kind != E_LIT))
			return;
	for (i = 0; i < e->u.seq.n; i++) {
		if (e->kind == E_LIST)
			val_list_push(p->a, &v, e->u.seq.items[i]->u.lit);
		else
			val_dict_set(p->a, &v, e->u.seq.keys[i]->u.lit.u.str.s, e->u.seq.items[i]->u.lit);
	}
	e->kind = E_LIT;
	e->u.lit = v;
}

/* Comma-separated expressions up to the closing bracket `close`. */
static int tpl_parse_items(struct tpl_parser *p, struct tpl_expr *e, int close)
{
	size_t cap = 0, kcap = 0;
	const struct tpl_tok *t;
	struct tpl_expr *x;

	while (!tpl_tok_is_op(tpl_peek(p), close)) {
		if (e->kind == E_DICT) {
			t = tpl_peek(p);
			if (!(x = tpl_parse_expr(p)))
				return SLUICE_EUSAGE;
			if (x->kind == E_LIT && x->u.lit.kind != V_STR)
				return tpl_parse_fail(p, t, "dict keys must be strings");
			e->u.seq.keys = tpl_vec_room(p->a, e->u.seq.keys, e->u.seq.n, &kcap, sizeof(x));
			e->u.seq.keys[e->u.seq.n] = x;
			if (tpl_expect_op(p, ':'))
				return SLUICE_EUSAGE;
		}
		if (!(x = tpl_parse_expr(p)))
			return SLUICE_EUSAGE;
		e->u.seq.items = tpl_vec_room(p->a, e->u.seq.items, e->u.seq.n, &cap, sizeof(x));
		e->u.seq.items[e->u.seq.n++] = x;
		if (!tpl_tok_is_op(tpl_peek(p), ','))
			break;
		tpl_next(p);
	}
	return tpl_expect_op(p, close);
}

static struct tpl_expr *tpl_parse_primary(struct tpl_parser *p)
{
	const struct tpl_tok *t = tpl_peek(p);
	struct tpl_expr *e;
	char b[64];

	switch (t->kind) {
	case TK_NAME:
		if (tpl_is_keyword(t))
			break;
		e = tpl_expr_new(p, E_LIT, t->line, t->col);
		if (tpl_tok_is(t, "true") || tpl_tok_is(t, "True"))
			e->u.lit = val_bool(1);
		else if (tpl_tok_is(t, "false") || tpl_tok_is(t, "False"))
			e->u.lit = val_bool(0);
		else if (tpl_tok_is(t, "none") || tpl_tok_is(t, "None"))
			e->u.lit = val_none();
		else {
			e->kind = E_NAME;
			e->u.name = tpl_tok_str(p, t);
		}
		tpl_next(p);
		return e;
	case TK_STRING:
		e = tpl_expr_new(p, E_LIT, t->line, t->col);
		e->u.lit = val_strn(t->s, t->len);
		tpl_next(p);
		/* Adjacent literals concatenate, as in Python. */
		while ((t = tpl_peek(p))->kind == TK_STRING) {
			char *s = arena_alloc(p->a, e->u.lit.u.str.len + t->len + 1);

			memcpy(s, e->u.lit.u.str.s, e->u.lit.u.str.len);
			memcpy(s + e->u.lit.u.str.len, t->s, t->len + 1);
			e->u.lit = val_strn(s, e->u.lit.u.str.len + t->len);
			tpl_next(p);
		}
		return e;
	case TK_NUMBER:
		e = tpl_expr_new(p, E_LIT, t->line, t->col);
		e->u.lit = val_num(t->num);
		tpl_next(p);
		return e;
	case TK_OP:
		if (t->op == '(') {
			tpl_next(p);
			if (tpl_tok_is_op(tpl_peek(p), ')')) {
				/* () is an empty tuple, which is a list here */
				e = tpl_expr_new(p, E_LIT, t->line, t->col);
				e->u.lit = val_list_new();
				tpl_next(p);
				return e;
			}
			if (!(e = tpl_parse_expr(p)))
				return NULL;
			if (tpl_tok_is_op(tpl_peek(p), ',')) {
				struct tpl_expr *tuple = tpl_expr_new(p, E_LIST, t->line, t->col);
				size_t cap = 0;

				tpl_next(p);
				tuple->u.seq.items = tpl_vec_room(p->a, NULL, 0, &cap, sizeof(e));
				tuple->u.seq.items[tuple->u.seq.n++] = e;
				if (tpl_parse_items(p, tuple, ')'))
					return NULL;
				tpl_fold(p, tuple);
				return tuple;
			}
			return tpl_expect_op(p, ')') ? NULL : e;
		}
		if (t->op == '[' || t->op == '{') {
			e = tpl_expr_new(p, t->op == '[' ? E_LIST : E_DICT, t->line, t->col);
			tpl_next(p);
			if (tpl_parse_items(p, e, t->op == '[' ? ']' : '}'))
				return NULL;
			tpl_fold(p, e);
			return e;
		}
		break;
	default:
		break;
	}
	tpl_parse_fail(p, t, "expected an expression, got %s", tpl_tok_desc(t, b, sizeof(b)));
	return NULL;
}

/* After "(": positional then keyword arguments, up to ")". */
static int tpl_parse_args(struct tpl_parser *p, struct tpl_args *args)
{
	size_t cap = 0, kcap = 0, kcap2, i;
	const struct tpl_tok *t;
	struct tpl_expr *x;

	while (!tpl_tok_is_op(t = tpl_peek(p), ')')) {
		if (t->kind == TK_NAME && tpl_tok_is_op(tpl_peek2(p), '=')) {
			for (i = 0; i < args->nkw; i++)
				if (strlen(args->kwnames[i]) == t->len && !memcmp(args->kwnames[i], t->s, t->len))
					return tpl_parse_fail(p, t, "duplicate keyword argument '%.*s'",
							      (int)t->len, t->s);
			tpl_next(p);
			tpl_next(p);
			if (!(x = tpl_parse_expr(p)))
				return SLUICE_EUSAGE;
			kcap2 = kcap;
			args->kwnames = tpl_vec_room(p->a, args->kwnames, args->nkw, &kcap, sizeof(char *));
			args->kw = tpl_vec_room(p->a, args->kw, args->nkw, &kcap2, sizeof(x));
			args->kwnames[args->nkw] = tpl_tok_str(p, t);
			args->kw[args->nkw++] = x;
		} else {
			if (args->nkw)
				return tpl_parse_fail(p, t, "positional argument follows keyword argument");
			if (!(x = tpl_parse_expr(p)))
				return SLUICE_EUSAGE;
			args->pos = tpl_vec_room(p->a, args->pos, args->npos, &cap, sizeof(x));
			args->pos[args->npos++] = x;
		}
		if (!tpl_tok_is_op(tpl_peek(p), ','))
			break;
		tpl_next(p);
	}
	return tpl_expect_op(p, ')');
}

/*
 * .attr, [index] and (call) after a primary. Chains like this one, and
 * those of binary operators, count towards the nesting limit: they become
 * left-deep trees that evaluation walks recursively.
 */
static struct tpl_expr *tpl_parse_postfix(struct tpl_parser *p, struct tpl_expr *e)
{
	const struct tpl_tok *t;
	struct tpl_expr *x;
	int nested = 0;
	char b[64];

	for (;; nested++) {
		if (tpl_enter(p))
			return NULL;
		t = tpl_peek(p);
		if (tpl_tok_is_op(t, '.')) {
			tpl_next(p);
			t = tpl_peek(p);
			if (t->kind != TK_NAME) {
				tpl_parse_fail(p, t, "expected an attribute name after '.', got %s",
					       tpl_tok_desc(t, b, sizeof(b)));
				return NULL;
			}
			x = tpl_expr_new(p, E_ATTR, t->line, t->col);
			x->u.attr.obj = e;
			x->u.attr.name = tpl_tok_str(p, t);
			tpl_next(p);
		} else if (tpl_tok_is_op(t, '[')) {
			tpl_next(p);
			x = tpl_expr_new(p, E_INDEX, t->line, t->col);
			x->u.index.obj = e;
			if (!(x->u.index.key = tpl_parse_expr(p)) || tpl_expect_op(p, ']'))
				return NULL;
		} else if (tpl_tok_is_op(t, '(')) {
			if (e->kind != E_NAME && e->kind != E_ATTR) {
				tpl_parse_fail(p, t, "only functions and methods can be called");
				return NULL;
			}
			tpl_next(p);
			x = tpl_expr_new(p, E_CALL, e->line, e->col);
			x->u.call.obj = e->kind == E_ATTR ? e->u.attr.obj : NULL;
			x->u.call.name = e->kind == E_ATTR ? e->u.attr.name : e->u.name;
			if (tpl_parse_args(p, &x->u.call.args))
				return NULL;
		} else {
			p->depth -= nested + 1;
			return e;
		}
		e = x;
	}
}

static struct tpl_expr *tpl_parse_filter(struct tpl_parser *p, struct tpl_expr *e)
{
	const struct tpl_tok *t = tpl_peek(p);
	const struct tpl_filter_def *f = NULL;
	struct tpl_expr *x;
	size_t i, n;
	char b[64];

	if (t->kind != TK_NAME) {
		tpl_parse_fail(p, t, "expected a filter name after '|', got %s", tpl_tok_desc(t, b, sizeof(b)));
		return NULL;
	}
	for (i = 0; i < sizeof(tpl_filters) / sizeof(tpl_filters[0]); i++)
		if (tpl_tok_is(t, tpl_filters[i].name))
			f = &tpl_filters[i];
	if (!f) {
		tpl_parse_fail(p, t, "unknown filter '%.*s'", (int)t->len, t->s);
		return NULL;
	}
	x = tpl_expr_new(p, E_FILTER, t->line, t->col);
	x->op = f->id;
	x->u.call.obj = e;
	x->u.call.name = f->name;
	tpl_next(p);
	if (tpl_tok_is_op(tpl_peek(p), '(')) {
		tpl_next(p);
		if (tpl_parse_args(p, &x->u.call.args))
			return NULL;
	}
	n = x->u.call.args.npos;
	if (x->u.call.args.nkw) {
		tpl_parse_fail(p, t, "filter '%s' takes no keyword arguments", f->name);
		return NULL;
	}
	if (n < f->min || n > f->max) {
		tpl_arity_text(b, sizeof(b), f->min, f->max);
		tpl_parse_fail(p, t, "filter '%s' takes %s (%zu given)", f->name, b, n);
		return NULL;
	}
	return x;
}

static struct tpl_expr *tpl_parse_test(struct tpl_parser *p, struct tpl_expr *e)
{
	const struct tpl_tok *t;
	struct tpl_expr *x;
	int neg = 0;
	size_t i;
	char b[64];

	if (tpl_tok_is(tpl_peek(p), "not")) {
		tpl_next(p);
		neg = 1;
	}
	t = tpl_peek(p);
	if (t->kind != TK_NAME) {
		tpl_parse_fail(p, t, "expected a test name after 'is', got %s", tpl_tok_desc(t, b, sizeof(b)));
		return NULL;
	}
	for (i = 0; i < sizeof(tpl_tests) / sizeof(tpl_tests[0]); i++)
		if (tpl_tok_is(t, tpl_tests[i].name))
			break;
	if (i == sizeof(tpl_tests) / sizeof(tpl_tests[0])) {
		tpl_parse_fail(p, t, "unknown test '%.*s'", (int)t->len, t->s);
		return NULL;
	}
	x = tpl_expr_new(p, E_TEST, t->line, t->col);
	x->op = tpl_tests[i].id;
	x->neg = neg;
	x->u.call.obj = e;
	x->u.call.name = tpl_tests[i].name;
	tpl_next(p);
	return x;
}

/* As in Jinja, a unary minus binds looser than filters: -x|f is (-x)|f. */
static struct tpl_expr *tpl_parse_unary(struct tpl_parser *p, int with_filter)
{
	const struct tpl_tok *t = tpl_peek(p);
	struct tpl_expr *e, *sub;
	int nested = 0;

	if (tpl_enter(p))
		return NULL;
	if (tpl_tok_is_op(t, '-') || tpl_tok_is_op(t, '+')) {
		tpl_next(p);
		if (!(sub = tpl_parse_unary(p, 0)))
			return NULL;
		if (sub->kind == E_LIT && sub->u.lit.kind == V_NUM) {
			/* fold -1 so that ref('x', -1) stays a literal call */
			if (t->op == '-')
				sub->u.lit.u.num = -sub->u.lit.u.num;
			sub->line = t->line;
			sub->col = t->col;
			e = sub;
		} else {
			e = tpl_expr_new(p, t->op == '-' ? E_NEG : E_POS, t->line, t->col);
			e->u.sub = sub;
		}
	} else if (!(e = tpl_parse_primary(p))) {
		return NULL;
	}
	if (!(e = tpl_parse_postfix(p, e)))
		return NULL;
	while (with_filter) {
		t = tpl_peek(p);
		if (tpl_tok_is_op(t, '|')) {
			tpl_next(p);
			e = tpl_parse_filter(p, e);
		} else if (tpl_tok_is(t, "is")) {
			tpl_next(p);
			e = tpl_parse_test(p, e);
		} else {
			break;
		}
		if (!e || tpl_enter(p))
			return NULL;
		nested++;
	}
	p->depth -= nested + 1;
	return e;
}

/* Levels of left-associative binary operators, loosest first (Jinja's). */
static const char *const tpl_bin_levels[] = { "+-", "~", "*/%" };

static struct tpl_expr *tpl_parse_binary(struct tpl_parser *p, size_t level)
{
	const struct tpl_tok *t;
	struct tpl_expr *l, *x;
	int nested = 0;

	if (level == sizeof(tpl_bin_levels) / sizeof(tpl_bin_levels[0]))
		return tpl_parse_unary(p, 1);
	l = tpl_parse_binary(p, level + 1);
	while (l && (t = tpl_peek(p))->kind == TK_OP && t->op < 256 &&
	       strchr(tpl_bin_levels[level], t->op)) {
		if (tpl_enter(p))
			return NULL;
		nested++;
		x = tpl_expr_new(p, E_BIN, t->line, t->col);
		x->op = t->op;
		x->u.bin.l = l;
		tpl_next(p);
		if (!(x->u.bin.r = tpl_parse_binary(p, level + 1)))
			return NULL;
		l = x;
	}
	p->depth -= nested;
	return l;
}

static struct tpl_expr *tpl_parse_compare(struct tpl_parser *p)
{
	struct tpl_expr *first = tpl_parse_binary(p, 0), *x = NULL;
	const struct tpl_tok *t;
	size_t cap = 0;
	int op;

	while (first) {
		t = tpl_peek(p);
		if (t->kind == TK_OP && (t->op == OP_EQ || t->op == OP_NE || t->op == OP_LE ||
					 t->op == OP_GE || t->op == '<' || t->op == '>'))
			op = t->op;
		else if (tpl_tok_is(t, "in"))
			op = OP_IN;
		else if (tpl_tok_is(t, "not") && tpl_tok_is(tpl_peek2(p), "in"))
			op = OP_NOT_IN;
		else
			break;
		tpl_next(p);
		if (op == OP_NOT_IN)
			tpl_next(p);
		if (!x) {
			x = tpl_expr_new(p, E_CMP, first->line, first->col);
			x->u.cmp.first = first;
		}
		x->u.cmp.ops = tpl_vec_room(p->a, x->u.cmp.ops, x->u.cmp.n, &cap, sizeof(struct tpl_cmp));
		x->u.cmp.ops[x->u.cmp.n].op = op;
		x->u.cmp.ops[x->u.cmp.n].line = t->line;
		x->u.cmp.ops[x->u.cmp.n].col = t->col;
		if (!(x->u.cmp.ops[x->u.cmp.n++].rhs = tpl_parse_binary(p, 0)))
			return NULL;
	}
	return x ? x : first;
}

static struct tpl_expr *tpl_parse_not(struct tpl_parser *p)
{
	const struct tpl_tok *t = tpl_peek(p);
	struct tpl_expr *e;

	if (!tpl_tok_is(t, "not"))
		return tpl_parse_compare(p);
	if (tpl_enter(p))
		return NULL;
	tpl_next(p);
	e = tpl_expr_new(p, E_NOT, t->line, t->col);
	if (!(e->u.sub = tpl_parse_not(p)))
		return NULL;
	p->depth--;
	return e;
}

static struct tpl_expr *tpl_parse_logic(struct tpl_parser *p, int is_or)
{
	struct tpl_expr *l = is_or ? tpl_parse_logic(p, 0) : tpl_parse_not(p), *x;
	const struct tpl_tok *t;
	int nested = 0;

	while (l && tpl_tok_is(t = tpl_peek(p), is_or ? "or" : "and")) {
		if (tpl_enter(p))
			return NULL;
		nested++;
		x = tpl_expr_new(p, is_or ? E_OR : E_AND, t->line, t->col);
		x->u.bin.l = l;
		tpl_next(p);
		if (!(x->u.bin.r = is_or ? tpl_parse_logic(p, 0) : tpl_parse_not(p)))
			return NULL;
		l = x;
	}
	p->depth -= nested;
	return l;
}

/* `a if c else b`; without with_if (a for loop's iterable) `if` is left alone. */
static struct tpl_expr *tpl_parse_cond(struct tpl_parser *p, int with_if)
{
	struct tpl_expr *e, *x;
	const struct tpl_tok *t;

	if (tpl_enter(p))
		return NULL;
	e = tpl_parse_logic(p, 1);
	while (e && with_if && tpl_tok_is(t = tpl_peek(p), "if")) {
		x = tpl_expr_new(p, E_COND, t->line, t->col);
		x->u.cond.then = e;
		tpl_next(p);
		if (!(x->u.cond.cond = tpl_parse_logic(p, 1)))
			return NULL;
		if (tpl_tok_is(tpl_peek(p), "else")) {
			tpl_next(p);
			if (!(x->u.cond.orelse = tpl_parse_cond(p, 1)))
				return NULL;
		}
		e = x;
	}
	p->depth--;
	return e;
}

/* ---- parser: statements ------------------------------------------------- */

/* The block being parsed, for "unclosed" and "expected 'endX'" messages. */
struct tpl_open {
	const char *tag, *end;
	int line, col;       /* of its "{%" */
};

static int tpl_parse_body(struct tpl_parser *p, const struct tpl_open *open,
			  const char *const *stops, int *which, struct tpl_node **out);

static struct tpl_node *tpl_node_new(struct tpl_parser *p, enum tpl_node_kind kind, const struct tpl_tok *at)
{
	struct tpl_node *n = arena_alloc(p->a, sizeof(*n));

	n->kind = kind;
	n->line = at->line;
	n->col = at->col;
	return n;
}

static int tpl_parse_if(struct tpl_parser *p, const struct tpl_tok *begin, struct tpl_node **out)
{
	static const char *const stops[] = { "elif", "else", "endif", NULL };
	static const char *const end[] = { "endif", NULL };
	struct tpl_open open = { "if", "endif", begin->line, begin->col };
	struct tpl_node *n = tpl_node_new(p, N_IF, tpl_next(p)), *cur = n;
	int which;

	if (tpl_enter(p))
		return SLUICE_EUSAGE;
	for (;;) {
		if (!(cur->u.branch.cond = tpl_parse_expr(p)) || tpl_expect(p, TK_BLOCK_END) ||
		    tpl_parse_body(p, &open, stops, &which, &cur->u.branch.then))
			return SLUICE_EUSAGE;
		if (which != 0)
			break;
		cur->u.branch.orelse = tpl_node_new(p, N_IF, &p->toks[p->i - 1]);
		cur = cur->u.branch.orelse;
	}
	if (which == 1 && (tpl_expect(p, TK_BLOCK_END) ||
			   tpl_parse_body(p, &open, end, &which, &cur->u.branch.orelse)))
		return SLUICE_EUSAGE;
	if (tpl_expect(p, TK_BLOCK_END))
		return SLUICE_EUSAGE;
	p->depth--;
	*out = n;
	return 0;
}

/* A loop variable name, or NULL after reporting what stood there instead. */
static const char *tpl_loop_var(struct tpl_parser *p)
{
	const struct tpl_tok *t = tpl_peek(p);
	char b[64];

	if (t->kind != TK_NAME || tpl_is_keyword(t)) {
		tpl_parse_fail(p, t, "expected a loop variable, got %s", tpl_tok_desc(t, b, sizeof(b)));
		return NULL;
	}
	return tpl_tok_str(p, tpl_next(p));
}

static int tpl_parse_for(struct tpl_parser *p, const struct tpl_tok *begin, struct tpl_node **out)
{
	static const char *const stops[] = { "else", "endfor", NULL };
	static const char *const end[] = { "endfor", NULL };
	struct tpl_open open = { "for", "endfor", begin->line, begin->col };
	struct tpl_node *n = tpl_node_new(p, N_FOR, tpl_next(p));
	const struct tpl_tok *t = tpl_peek(p);
	int which;
	char b[64];

	if (tpl_enter(p) || !(n->u.loop.var = tpl_loop_var(p)))
		return SLUICE_EUSAGE;
	if (tpl_tok_is_op(tpl_peek(p), ',')) {
		tpl_next(p);
		if (!(n->u.loop.var2 = tpl_loop_var(p)))
			return SLUICE_EUSAGE;
	}
	t = tpl_peek(p);
	if (!tpl_tok_is(t, "in"))
		return tpl_parse_fail(p, t, "expected 'in', got %s", tpl_tok_desc(t, b, sizeof(b)));
	tpl_next(p);
	if (!(n->u.loop.iter = tpl_parse_cond(p, 0)))
		return SLUICE_EUSAGE;
	if (tpl_tok_is(tpl_peek(p), "if")) {
		tpl_next(p);
		if (!(n->u.loop.filter = tpl_parse_expr(p)))
			return SLUICE_EUSAGE;
	}
	if (tpl_tok_is(t = tpl_peek(p), "recursive"))
		return tpl_parse_fail(p, t, "unsupported loop modifier 'recursive'");
	if (tpl_expect(p, TK_BLOCK_END) || tpl_parse_body(p, &open, stops, &which, &n->u.loop.body))
		return SLUICE_EUSAGE;
	if (which == 0 && (tpl_expect(p, TK_BLOCK_END) ||
			   tpl_parse_body(p, &open, end, &which, &n->u.loop.orelse)))
		return SLUICE_EUSAGE;
	if (tpl_expect(p, TK_BLOCK_END))
		return SLUICE_EUSAGE;
	p->depth--;
	*out = n;
	return 0;
}

static int tpl_parse_set(struct tpl_parser *p, const struct tpl_tok *begin, struct tpl_node **out)
{
	static const char *const end[] = { "endset", NULL };
	struct tpl_open open = { "set", "endset", begin->line, begin->col };
	struct tpl_node *n = tpl_node_new(p, N_SET, tpl_next(p));
	const struct tpl_tok *t = tpl_peek(p);
	int which;
	char b[64];

	if (t->kind != TK_NAME || tpl_is_keyword(t))
		return tpl_parse_fail(p, t, "expected a variable name, got %s", tpl_tok_desc(t, b, sizeof(b)));
	n->u.set.name = tpl_tok_str(p, tpl_next(p));
	t = tpl_peek(p);
	if (tpl_tok_is_op(t, '=')) {
		tpl_next(p);
		if (!(n->u.set.value = tpl_parse_expr(p)) || tpl_expect(p, TK_BLOCK_END))
			return SLUICE_EUSAGE;
	} else if (t->kind == TK_BLOCK_END) {
		tpl_next(p);
		n->kind = N_SET_BLOCK;
		if (tpl_enter(p) || tpl_parse_body(p, &open, end, &which, &n->u.set.body) ||
		    tpl_expect(p, TK_BLOCK_END))
			return SLUICE_EUSAGE;
		p->depth--;
	} else {
		return tpl_parse_fail(p, t, "expected '=' or '%%}', got %s", tpl_tok_desc(t, b, sizeof(b)));
	}
	*out = n;
	return 0;
}

/* p is at the tag name, just after "{%" (begin). */
static int tpl_parse_tag(struct tpl_parser *p, const struct tpl_tok *begin,
			 const struct tpl_open *open, struct tpl_node **out)
{
	static const char *const unsupported[] = {
		"macro", "call", "include", "import", "from", "extends", "block",
		"filter", "with", "autoescape", "break", "continue", "materialization",
		"test", "snapshot", "docs", NULL
	};
	const struct tpl_tok *t = tpl_peek(p);
	struct tpl_node *n;
	size_t i;
	char b[64];

	if (t->kind != TK_NAME)
		return tpl_parse_fail(p, t, "expected a tag name, got %s", tpl_tok_desc(t, b, sizeof(b)));
	if (tpl_tok_is(t, "if"))
		return tpl_parse_if(p, begin, out);
	if (tpl_tok_is(t, "for"))
		return tpl_parse_for(p, begin, out);
	if (tpl_tok_is(t, "set"))
		return tpl_parse_set(p, begin, out);
	if (tpl_tok_is(t, "do")) {
		n = tpl_node_new(p, N_DO, tpl_next(p));
		if (!(n->u.expr = tpl_parse_expr(p)) || tpl_expect(p, TK_BLOCK_END))
			return SLUICE_EUSAGE;
		*out = n;
		return 0;
	}
	if (tpl_tok_is(t, "elif") || tpl_tok_is(t, "else") || (t->len > 3 && !memcmp(t->s, "end", 3))) {
		if (open)
			return tpl_parse_fail(p, t, "expected '%s', got '%.*s'", open->end, (int)t->len, t->s);
		return tpl_parse_fail(p, t, "unexpected '%.*s' (no block is open)", (int)t->len, t->s);
	}
	for (i = 0; unsupported[i]; i++)
		if (tpl_tok_is(t, unsupported[i]))
			return tpl_parse_fail(p, t, "unsupported tag '%s'", unsupported[i]);
	return tpl_parse_fail(p, t, "unknown tag '%.*s'", (int)t->len > 40 ? 40 : (int)t->len, t->s);
}

/*
 * Nodes up to the end of the template (open == NULL) or up to a tag named
 * in stops: then "{%" and the name are consumed, *which is its index, and
 * the caller parses the rest of that tag.
 */
static int tpl_parse_body(struct tpl_parser *p, const struct tpl_open *open,
			  const char *const *stops, int *which, struct tpl_node **out)
{
	struct tpl_node *head = NULL, **tail = &head, *n = NULL;
	const struct tpl_tok *t;
	char b[64];
	int k;

	*out = NULL;
	*which = -1;
	for (;;) {
		t = tpl_peek(p);
		switch (t->kind) {
		case TK_EOF:
			/* Point at the end of the file, and say where the block began. */
			if (open)
				return tpl_error(p->err, p->path, t->line, t->col,
						 "unclosed {%% %s %%} opened at %d:%d", open->tag,
						 open->line, open->col);
			*out = head;
			return 0;
		case TK_TEXT:
			n = tpl_node_new(p, N_TEXT, tpl_next(p));
			n->u.text.s = t->s;
			n->u.text.len = t->len;
			break;
		case TK_VAR_BEGIN:
			n = tpl_node_new(p, N_OUT, tpl_next(p));
			if (!(n->u.expr = tpl_parse_expr(p)) || tpl_expect(p, TK_VAR_END))
				return SLUICE_EUSAGE;
			break;
		case TK_BLOCK_BEGIN:
			for (k = 0; stops && stops[k]; k++)
				if (tpl_tok_is(tpl_peek2(p), stops[k])) {
					tpl_next(p);
					tpl_next(p);
					*which = k;
					*out = head;
					return 0;
				}
			tpl_next(p);
			if (tpl_parse_tag(p, t, open, &n))
				return SLUICE_EUSAGE;
			break;
		default:
			return tpl_parse_fail(p, t, "unexpected %s", tpl_tok_desc(t, b, sizeof(b)));
		}
		*tail = n;
		tail = &n->next;
	}
}

int tpl_parse(struct arena *a, const char *path, const char *src, size_t len,
	      struct tpl **out, struct sluice_err *err)
{
	struct sluice_err dummy = SLUICE_ERR_INIT;
	struct tpl_parser p;
	struct tpl_node *body;
	struct tpl *t;
	int which, rc;

	*out = NULL;
	memset(&p, 0, sizeof(p));
	p.a = a;
	p.path = path ? path : "<template>";
	p.src = len ? arena_strndup(a, src, len) : "";
	p.len = len;
	p.line = 1;
	p.err = err ? err : &dummy;
	tpl_lex(&p);
	rc = tpl_parse_body(&p, NULL, NULL, &which, &body);
	free(p.toks);
	if (rc)
		return rc;
	t = arena_alloc(a, sizeof(*t));
	t->path = p.path;
	t->body = body;
	*out = t;
	return 0;
}

int tpl_is_plain(const char *src, size_t len)
{
	return tpl_find_tag(src, len, 0) == len;
}

/* ---- evaluator ---------------------------------------------------------- */

/* Names bound by set and for; a for loop pushes one for its body. */
struct tpl_scope {
	struct tpl_scope *up;
	const char **names;
	struct val *vals;
	size_t n, cap;
};

struct tpl_run {
	const struct tpl *t;
	const struct tpl_host *host;
	struct arena *a;
	struct buf *out;
	struct buf tmp;          /* formatting scratch; results are copied to a */
	struct sluice_err *err;
	struct tpl_scope *scope;
};

static int tpl_eval(struct tpl_run *r, const struct tpl_expr *e, struct val *out);
static int tpl_render_nodes(struct tpl_run *r, const struct tpl_node *n);

/*
 * A number as a long long, for indices and counts. Converting a double
 * beyond a long long's range (1e400 is inf) is undefined in C: beyond
 * +-1e18, which no index or count reaches, it is clamped; NaN is 0.
 */
static int tpl_fail(struct tpl_run *r, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int tpl_fail(struct tpl_run *r, int line, int col, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = tpl_verror(r->err, r->t->path, line, col, fmt, ap);
	va_end(ap);
	return rc;
}

static const struct val *tpl_scope_get(const struct tpl_run *r, const char *name)
{
	const struct tpl_scope *s;
	size_t i;

	for (s = r->scope; s; s = s->up)
		for (i = 0; i < s->n; i++)
			if (!strcmp(s->names[i], name))
				return &s->vals[i];
	return NULL;
}

static void tpl_scope_set(struct tpl_run *r, const char *name, struct val v)
{
	struct tpl_scope *s = r->scope;
	size_t i, cap;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->names[i], name)) {
			s->vals[i] = v;
			return;
		}
	if (s->n == s->cap) {
		cap = s->cap ? 2 * s->cap : 8;
		s->names = arena_grow(r->a, s->names, s->n, cap, sizeof(*s->names));
		s->vals = arena_grow(r->a, s->vals, s->n, cap, sizeof(*s->vals));
		s->cap = cap;
	}
	s->names[s->n] = name;
	s->vals[s->n++] = v;
}

static int tpl_num(const struct val *v, double *d)
{
	if (v->kind == V_NUM)
		*d = v->u.num;
	else if (v->kind == V_BOOL)
		*d = v->u.b;
	else
		return 0;
	return 1;
}

static size_t tpl_utf8_step(const char *s, size_t left)
{
	unsigned char c = (unsigned char)s[0];
	size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;

	return n > left ? left : n;
}

static size_t tpl_utf8_count(const char *s, size_t len)
{
	size_t i = 0, n = 0;

	while (i < len) {
		i += tpl_utf8_step(s + i, len - i);
		n++;
	}
	return n;
}

static struct val tpl_strv(struct tpl_run *r, const char *s, size_t len)
{
	return val_str_dup(r->a, len ? s : "", len);
}

/* A value as the string {{ }} would print; strings are borrowed. */
static void tpl_str(struct tpl_run *r, const struct val *v, const char **s, size_t *len)
{
	if (v->kind == V_STR) {
		*s = v->u.str.s ? v->u.str.s : "";
		*len = v->u.str.s ? v->u.str.len : 0;
		return;
	}
	buf_reset(&r->tmp);
	val_format(v, &r->tmp);
	*s = arena_strndup(r->a, r->tmp.s, r->tmp.len);
	*len = r->tmp.len;
}

static struct val tpl_concat(struct tpl_run *r, const char *s1, size_t l1, const char *s2, size_t l2)
{
	char *s = arena_alloc(r->a, l1 + l2 + 1);

	if (l1)
		memcpy(s, s1, l1);
	if (l2)
		memcpy(s + l1, s2, l2);
	return val_strn(s, l1 + l2);
}

/* The code point at index i (negative from the end), or -1 when out of range. */
static int tpl_char_at(struct tpl_run *r, const struct val *v, long long i, struct val *out)
{
	const char *s = v->u.str.s;
	size_t len = v->u.str.len, pos = 0, step;
	long long n = (long long)tpl_utf8_count(s, len);

	if (i < 0)
		i += n;
	if (i < 0 || i >= n)
		return -1;
	while (i-- > 0)
		pos += tpl_utf8_step(s + pos, len - pos);
	step = tpl_utf8_step(s + pos, len - pos);
	*out = tpl_strv(r, s + pos, step);
	return 0;
}

/*
 * obj[key]. When undef is not NULL, a missing key or index sets *undef
 * instead of failing, for `is defined` and |default.
 */
static int tpl_index(struct tpl_run *r, const struct tpl_expr *e, const struct val *o,
		     const struct val *k, struct val *out, int *undef)
{
	const struct val *v;
	double d;
	long long i;

	if (o->kind == V_DICT) {
		if (k->kind == V_STR && (v = val_get(o, k->u.str.s))) {
			*out = *v;
			return 0;
		}
		if (undef)
			goto missing;
		if (k->kind != V_STR)
			return tpl_fail(r, e->line, e->col, "dict keys are strings, not %s", tpl_type(k));
		return tpl_fail(r, e->line, e->col, "key '%s' not found", k->u.str.s);
	}
	if (o->kind != V_LIST && o->kind != V_STR) {
		if (undef)
			goto missing;
		return tpl_fail(r, e->line, e->col, "'%s' is not subscriptable", tpl_type(o));
	}
	if (!tpl_num(k, &d) || d != floor(d))
		return tpl_fail(r, e->line, e->col, "%s indices must be integers, not %s",
				tpl_type(o), tpl_type(k));
	i = val_num_ll(d);
	if (o->kind == V_STR) {
		if (tpl_char_at(r, o, i, out) == 0)
			return 0;
	} else {
		if (i < 0)
			i += (long long)o->u.list.n;
		if (i >= 0 && i < (long long)o->u.list.n) {
			*out = o->u.list.items[i];
			return 0;
		}
	}
	if (undef)
		goto missing;
	return tpl_fail(r, e->line, e->col, "%s index %.0f out of range", tpl_type(o), d);
missing:
	*undef = 1;
	return 0;
}

/*
 * Names, attributes and indexing. With undef NULL a missing name, key or
 * attribute is an error; otherwise it sets *undef (which starts at 0).
 */
static int tpl_eval_ref(struct tpl_run *r, const struct tpl_expr *e, struct val *out, int *undef)
{
	const struct val *v;
	struct val o, k;
	int rc;

	switch (e->kind) {
	case E_NAME:
		if ((v = tpl_scope_get(r, e->u.name))) {
			*out = *v;
			return 0;
		}
		*out = val_none();
		if (r->host && r->host->lookup && r->host->lookup(r->host->ud, e->u.name, r->a, out) == 0)
			return 0;
		if (undef) {
			*undef = 1;
			return 0;
		}
		return tpl_fail(r, e->line, e->col, "undefined name '%s'", e->u.name);
	case E_ATTR:
		if ((rc = tpl_eval_ref(r, e->u.attr.obj, &o, undef)) || (undef && *undef))
			return rc;
		if ((v = val_get(&o, e->u.attr.name))) {
			*out = *v;
			return 0;
		}
		if (undef) {
			*undef = 1;
			return 0;
		}
		return tpl_fail(r, e->line, e->col, "'%s' has no attribute '%s'", tpl_type(&o), e->u.attr.name);
	case E_INDEX:
		if ((rc = tpl_eval_ref(r, e->u.index.obj, &o, undef)) || (undef && *undef))
			return rc;
		if ((rc = tpl_eval(r, e->u.index.key, &k)))
			return rc;
		return tpl_index(r, e, &o, &k, out, undef);
	default:
		return tpl_eval(r, e, out);
	}
}

static int tpl_binop(struct tpl_run *r, const struct tpl_expr *e, const struct val *a,
		     const struct val *b, struct val *out)
{
	const char *s1, *s2;
	size_t l1, l2, i;
	double x = 0, y = 0, m;
	int nums = tpl_num(a, &x) && tpl_num(b, &y);
	char op[8];

	switch (e->op) {
	case '~':
		tpl_str(r, a, &s1, &l1);
		tpl_str(r, b, &s2, &l2);
		*out = tpl_concat(r, s1, l1, s2, l2);
		return 0;
	case '+':
		if (nums) {
			*out = val_num(x + y);
			return 0;
		}
		if (a->kind == V_STR && b->kind == V_STR) {
			*out = tpl_concat(r, a->u.str.s, a->u.str.len, b->u.str.s, b->u.str.len);
			return 0;
		}
		if (a->kind == V_LIST && b->kind == V_LIST) {
			*out = val_list_new();
			for (i = 0; i < a->u.list.n; i++)
				val_list_push(r->a, out, a->u.list.items[i]);
			for (i = 0; i < b->u.list.n; i++)
				val_list_push(r->a, out, b->u.list.items[i]);
			return 0;
		}
		break;
	case '-':
		if (nums) {
			*out = val_num(x - y);
			return 0;
		}
		break;
	case '*':
		if (nums) {
			*out = val_num(x * y);
			return 0;
		}
		if ((a->kind == V_STR && tpl_num(b, &y)) || (b->kind == V_STR && tpl_num(a, &y))) {
			const struct val *s = a->kind == V_STR ? a : b;
			long long times = y > 0 ? val_num_ll(y) : 0;

			if (times && s->u.str.len * (unsigned long long)times > TPL_MAX_STRING)
				return tpl_fail(r, e->line, e->col, "string repetition too large");
			buf_reset(&r->tmp);
			while (times-- > 0)
				buf_add(&r->tmp, s->u.str.s, s->u.str.len);
			*out = tpl_strv(r, r->tmp.s, r->tmp.len);
			return 0;
		}
		break;
	case '/':
		if (nums) {
			if (y == 0)
				return tpl_fail(r, e->line, e->col, "division by zero");
			*out = val_num(x / y);
			return 0;
		}
		break;
	case '%':
		if (nums) {
			if (y == 0)
				return tpl_fail(r, e->line, e->col, "modulo by zero");
			/* Python's sign rule: the result takes the divisor's sign */
			m = fmod(x, y);
			if (m != 0 && (m < 0) != (y < 0))
				m += y;
			*out = val_num(m);
			return 0;
		}
		break;
	}
	tpl_op_text(e->op, op);
	return tpl_fail(r, e->line, e->col, "unsupported operand types for %s: '%s' and '%s'",
			op, tpl_type(a), tpl_type(b));
}

static int tpl_contains(struct tpl_run *r, const struct tpl_cmp *c, const struct val *hay,
			const struct val *needle, int *res)
{
	size_t i;

	switch (hay->kind) {
	case V_LIST:
		*res = 0;
		for (i = 0; i < hay->u.list.n && !*res; i++)
			*res = val_equal(&hay->u.list.items[i], needle);
		return 0;
	case V_DICT:
		*res = needle->kind == V_STR && val_get(hay, needle->u.str.s);
		return 0;
	case V_STR:
		if (needle->kind != V_STR)
			return tpl_fail(r, c->line, c->col, "'in <string>' needs a string on the left, not %s",
					tpl_type(needle));
		*res = !needle->u.str.len ||
		       (hay->u.str.len && memmem(hay->u.str.s, hay->u.str.len, needle->u.str.s, needle->u.str.len));
		return 0;
	default:
		return tpl_fail(r, c->line, c->col, "argument of type '%s' is not iterable", tpl_type(hay));
	}
}

static int tpl_compare(struct tpl_run *r, const struct tpl_cmp *c, const struct val *a,
		       const struct val *b, int *res)
{
	double x, y;
	int ord, rc;
	size_t n;
	char op[8];

	switch (c->op) {
	case OP_EQ:
		*res = val_equal(a, b);
		return 0;
	case OP_NE:
		*res = !val_equal(a, b);
		return 0;
	case OP_IN:
	case OP_NOT_IN:
		if ((rc = tpl_contains(r, c, b, a, res)))
			return rc;
		if (c->op == OP_NOT_IN)
			*res = !*res;
		return 0;
	}
	if (tpl_num(a, &x) && tpl_num(b, &y)) {
		ord = x < y ? -1 : x > y;
	} else if (a->kind == V_STR && b->kind == V_STR) {
		n = a->u.str.len < b->u.str.len ? a->u.str.len : b->u.str.len;
		ord = n ? memcmp(a->u.str.s, b->u.str.s, n) : 0;
		if (!ord)
			ord = a->u.str.len < b->u.str.len ? -1 : a->u.str.len > b->u.str.len;
	} else {
		tpl_op_text(c->op, op);
		return tpl_fail(r, c->line, c->col, "cannot compare '%s' and '%s' with '%s'",
				tpl_type(a), tpl_type(b), op);
	}
	switch (c->op) {
	case '<': *res = ord < 0; break;
	case '>': *res = ord > 0; break;
	case OP_LE: *res = ord <= 0; break;
	default: *res = ord >= 0; break;
	}
	return 0;
}

static int tpl_eval_cmp(struct tpl_run *r, const struct tpl_expr *e, struct val *out)
{
	struct val a, b;
	size_t i;
	int rc, res = 1;

	if ((rc = tpl_eval(r, e->u.cmp.first, &a)))
		return rc;
	for (i = 0; i < e->u.cmp.n && res; i++) {
		if ((rc = tpl_eval(r, e->u.cmp.ops[i].rhs, &b)) ||
		    (rc = tpl_compare(r, &e->u.cmp.ops[i], &a, &b, &res)))
			return rc;
		a = b;
	}
	*out = val_bool(res);
	return 0;
}

static int tpl_eval_args(struct tpl_run *r, const struct tpl_args *in, struct val **args, struct val **kwargs)
{
	size_t i;
	int rc;

	*args = in->npos ? arena_alloc(r->a, in->npos * sizeof(**args)) : NULL;
	*kwargs = in->nkw ? arena_alloc(r->a, in->nkw * sizeof(**kwargs)) : NULL;
	for (i = 0; i < in->npos; i++)
		if ((rc = tpl_eval(r, in->pos[i], &(*args)[i])))
			return rc;
	for (i = 0; i < in->nkw; i++)
		if ((rc = tpl_eval(r, in->kw[i], &(*kwargs)[i])))
			return rc;
	return 0;
}

static int tpl_arity(struct tpl_run *r, const struct tpl_expr *e, size_t nargs, size_t nkw,
		     size_t min, size_t max)
{
	char b[64];

	if (nkw)
		return tpl_fail(r, e->line, e->col, "%s() takes no keyword arguments", e->u.call.name);
	if (nargs >= min && nargs <= max)
		return 0;
	tpl_arity_text(b, sizeof(b), min, max);
	return tpl_fail(r, e->line, e->col, "%s() takes %s (%zu given)", e->u.call.name, b, nargs);
}

static int tpl_range(struct tpl_run *r, const struct tpl_expr *e, const struct val *args,
		     size_t nargs, size_t nkw, struct val *out)
{
	double v[3] = { 0, 0, 1 }, count;    /* start, stop, step */
	size_t i, skip = nargs == 1;         /* range(n) is range(0, n) */
	int rc;

	if ((rc = tpl_arity(r, e, nargs, nkw, 1, 3)))
		return rc;
	for (i = 0; i < nargs; i++)
		if (!tpl_num(&args[i], &v[i + skip]) || v[i + skip] != floor(v[i + skip]))
			return tpl_fail(r, e->line, e->col, "range() arguments must be integers");
	if (v[2] == 0)
		return tpl_fail(r, e->line, e->col, "range() step must not be zero");
	count = ceil((v[1] - v[0]) / v[2]);
	if (count > TPL_MAX_RANGE)
		return tpl_fail(r, e->line, e->col, "range() too large (%.0f items)", count);
	*out = val_list_new();
	for (i = 0; (double)i < count; i++)
		val_list_push(r->a, out, val_num(v[0] + (double)i * v[2]));
	return 0;
}

static struct val tpl_case(struct tpl_run *r, const char *s, size_t len, int upper)
{
	char *d = arena_alloc(r->a, len + 1);
	size_t i;

	for (i = 0; i < len; i++)
		d[i] = (char)(upper ? toupper((unsigned char)s[i]) : tolower((unsigned char)s[i]));
	return val_strn(d, len);
}

static int tpl_in_set(char c, const char *chars, size_t nchars)
{
	return chars ? memchr(chars, c, nchars) != NULL : tpl_is_space(c);
}

/* Strip bytes in `chars` (NULL: whitespace) from the ends. */
static struct val tpl_strip(struct tpl_run *r, const char *s, size_t len, const char *chars,
			    size_t nchars, int left, int right)
{
	size_t b = 0, e = len;

	while (left && b < e && tpl_in_set(s[b], chars, nchars))
		b++;
	while (right && e > b && tpl_in_set(s[e - 1], chars, nchars))
		e--;
	return tpl_strv(r, s + b, e - b);
}

/* Python's str.replace; count < 0 means all. */
static struct val tpl_replace(struct tpl_run *r, const char *s, size_t n, const char *old, size_t on,
			      const char *rep, size_t rn, long long count)
{
	struct buf *b = &r->tmp;
	const char *hit;
	size_t i = 0, step;

	buf_reset(b);
	if (!on) {
		/* an empty needle matches before every character and at the end */
		while (count != 0) {
			buf_add(b, rep, rn);
			if (count > 0)
				count--;
			if (i >= n)
				break;
			step = tpl_utf8_step(s + i, n - i);
			buf_add(b, s + i, step);
			i += step;
		}
	} else {
		while (count != 0 && i < n && (hit = memmem(s + i, n - i, old, on))) {
			buf_add(b, s + i, (size_t)(hit - (s + i)));
			buf_add(b, rep, rn);
			i = (size_t)(hit - s) + on;
			if (count > 0)
				count--;
		}
	}
	buf_add(b, s + i, n - i);
	return tpl_strv(r, b->s, b->len);
}

static struct val tpl_split(struct tpl_run *r, const char *s, size_t n, const char *sep, size_t sn)
{
	struct val list = val_list_new();
	const char *hit;
	size_t i = 0, j;

	if (!sep) {
		/* no separator: runs of whitespace, no empty parts */
		while (i < n) {
			while (i < n && tpl_is_space(s[i]))
				i++;
			for (j = i; j < n && !tpl_is_space(s[j]); j++)
				;
			if (j > i)
				val_list_push(r->a, &list, tpl_strv(r, s + i, j - i));
			i = j;
		}
		return list;
	}
	while ((hit = i <= n ? memmem(s + i, n - i, sep, sn) : NULL)) {
		val_list_push(r->a, &list, tpl_strv(r, s + i, (size_t)(hit - (s + i))));
		i = (size_t)(hit - s) + sn;
	}
	val_list_push(r->a, &list, tpl_strv(r, s + i, n - i));
	return list;
}

static int tpl_method(struct tpl_run *r, const struct tpl_expr *e, const struct val *obj,
		      const struct val *args, size_t nargs, size_t nkw, struct val *out)
{
	const char *m = e->u.call.name, *s1 = NULL, *s2;
	size_t i, l1 = 0, l2, len;
	struct val pair;
	int rc;

	if (obj->kind == V_DICT) {
		if (!strcmp(m, "items") || !strcmp(m, "keys") || !strcmp(m, "values")) {
			if ((rc = tpl_arity(r, e, nargs, nkw, 0, 0)))
				return rc;
			*out = val_list_new();
			for (i = 0; i < obj->u.dict.n; i++) {
				struct val key = val_str(obj->u.dict.keys[i]);

				if (m[0] == 'k') {
					val_list_push(r->a, out, key);
				} else if (m[0] == 'v') {
					val_list_push(r->a, out, obj->u.dict.vals[i]);
				} else {
					pair = val_list_new();
					val_list_push(r->a, &pair, key);
					val_list_push(r->a, &pair, obj->u.dict.vals[i]);
					val_list_push(r->a, out, pair);
				}
			}
			return 0;
		}
		if (!strcmp(m, "get")) {
			const struct val *v;

			if ((rc = tpl_arity(r, e, nargs, nkw, 1, 2)))
				return rc;
			v = args[0].kind == V_STR ? val_get(obj, args[0].u.str.s) : NULL;
			*out = v ? *v : nargs == 2 ? args[1] : val_none();
			return 0;
		}
	} else if (obj->kind == V_STR) {
		const char *s = obj->u.str.s;

		len = obj->u.str.len;
		if (!strcmp(m, "upper") || !strcmp(m, "lower")) {
			if ((rc = tpl_arity(r, e, nargs, nkw, 0, 0)))
				return rc;
			*out = tpl_case(r, s, len, m[0] == 'u');
			return 0;
		}
		if (!strcmp(m, "strip") || !strcmp(m, "lstrip") || !strcmp(m, "rstrip")) {
			if ((rc = tpl_arity(r, e, nargs, nkw, 0, 1)))
				return rc;
			if (nargs && args[0].kind != V_NONE)
				tpl_str(r, &args[0], &s1, &l1);
			*out = tpl_strip(r, s, len, s1, l1, m[0] != 'r', m[0] != 'l');
			return 0;
		}
		if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
			if ((rc = tpl_arity(r, e, nargs, nkw, 1, 1)))
				return rc;
			tpl_str(r, &args[0], &s1, &l1);
			*out = val_bool(l1 <= len && (!l1 || !memcmp(m[0] == 's' ? s : s + len - l1, s1, l1)));
			return 0;
		}
		if (!strcmp(m, "replace")) {
			double d = -1;

			if ((rc = tpl_arity(r, e, nargs, nkw, 2, 3)))
				return rc;
			if (nargs == 3 && !tpl_num(&args[2], &d))
				return tpl_fail(r, e->line, e->col, "replace() count must be a number");
			tpl_str(r, &args[0], &s1, &l1);
			tpl_str(r, &args[1], &s2, &l2);
			*out = tpl_replace(r, s, len, s1, l1, s2, l2, val_num_ll(d));
			return 0;
		}
		if (!strcmp(m, "split")) {
			if ((rc = tpl_arity(r, e, nargs, nkw, 0, 1)))
				return rc;
			if (nargs && args[0].kind != V_NONE) {
				tpl_str(r, &args[0], &s1, &l1);
				if (!l1)
					return tpl_fail(r, e->line, e->col, "split() separator is empty");
			}
			*out = tpl_split(r, s, len, s1, l1);
			return 0;
		}
	}
	return tpl_fail(r, e->line, e->col, "'%s' has no method '%s'", tpl_type(obj), m);
}

static int tpl_eval_call(struct tpl_run *r, const struct tpl_expr *e, struct val *out)
{
	const struct tpl_args *ar = &e->u.call.args;
	struct val obj, *args, *kwargs;
	struct tpl_call c;
	int rc;

	if (e->u.call.obj) {
		if ((rc = tpl_eval(r, e->u.call.obj, &obj)) || (rc = tpl_eval_args(r, ar, &args, &kwargs)))
			return rc;
		return tpl_method(r, e, &obj, args, ar->npos, ar->nkw, out);
	}
	if ((rc = tpl_eval_args(r, ar, &args, &kwargs)))
		return rc;
	if (!strcmp(e->u.call.name, "range"))
		return tpl_range(r, e, args, ar->npos, ar->nkw, out);
	if (!r->host || !r->host->call)
		return tpl_fail(r, e->line, e->col, "undefined function '%s'", e->u.call.name);
	memset(&c, 0, sizeof(c));
	c.name = e->u.call.name;
	c.args = args;
	c.nargs = ar->npos;
	c.kwnames = ar->kwnames;
	c.kwargs = kwargs;
	c.nkw = ar->nkw;
	c.path = r->t->path;
	c.line = e->line;
	c.col = e->col;
	c.arena = r->a;
	*out = val_none();
	rc = r->host->call(r->host->ud, &c, out, r->err);
	if (rc == 0)
		return 0;
	if (rc > 0)
		return tpl_fail(r, e->line, e->col, "undefined function '%s'", e->u.call.name);
	if (r->err->code >= 0)
		r->err->code = rc;
	return err_prefix(r->err, "%s:%d:%d", r->t->path, e->line, e->col);
}

static int tpl_eval_filter(struct tpl_run *r, const struct tpl_expr *e, struct val *out)
{
	const struct tpl_args *ar = &e->u.call.args;
	struct val v, flag, *args, *kwargs;
	const char *s, *s1 = NULL, *s2;
	size_t n, l1 = 0, l2, i;
	double d;
	int rc, undef = 0;

	if (e->op == F_DEFAULT) {
		/* Unlike Jinja's, this default also replaces none. */
		if ((rc = tpl_eval_ref(r, e->u.call.obj, &v, &undef)))
			return rc;
		if (!undef && v.kind != V_NONE) {
			if (ar->npos < 2)
				goto keep;
			if ((rc = tpl_eval(r, ar->pos[1], &flag)))
				return rc;
			if (!val_truthy(&flag) || val_truthy(&v))
				goto keep;
		}
		if (!ar->npos) {
			*out = val_str("");
			return 0;
		}
		return tpl_eval(r, ar->pos[0], out);
keep:
		*out = v;
		return 0;
	}
	if ((rc = tpl_eval(r, e->u.call.obj, &v)) || (rc = tpl_eval_args(r, ar, &args, &kwargs)))
		return rc;
	switch (e->op) {
	case F_UPPER:
	case F_LOWER:
		tpl_str(r, &v, &s, &n);
		*out = tpl_case(r, s, n, e->op == F_UPPER);
		return 0;
	case F_STRING:
		tpl_str(r, &v, &s, &n);
		*out = val_strn(s, n);
		return 0;
	case F_JOIN:
		if (v.kind != V_LIST)
			return tpl_fail(r, e->line, e->col, "join expects a list, not %s", tpl_type(&v));
		if (ar->npos)
			tpl_str(r, &args[0], &s1, &l1);
		buf_reset(&r->tmp);
		for (i = 0; i < v.u.list.n; i++) {
			if (i && l1)
				buf_add(&r->tmp, s1, l1);
			val_format(&v.u.list.items[i], &r->tmp);
		}
		*out = tpl_strv(r, r->tmp.s, r->tmp.len);
		return 0;
	case F_REPLACE:
		d = -1;
		if (ar->npos == 3 && !tpl_num(&args[2], &d))
			return tpl_fail(r, e->line, e->col, "replace count must be a number");
		tpl_str(r, &v, &s, &n);
		tpl_str(r, &args[0], &s1, &l1);
		tpl_str(r, &args[1], &s2, &l2);
		*out = tpl_replace(r, s, n, s1, l1, s2, l2, val_num_ll(d));
		return 0;
	case F_TRIM:
		tpl_str(r, &v, &s, &n);
		if (ar->npos && args[0].kind != V_NONE)
			tpl_str(r, &args[0], &s1, &l1);
		*out = tpl_strip(r, s, n, s1, l1, 1, 1);
		return 0;
	case F_LENGTH:
		if (v.kind == V_LIST)
			*out = val_num((double)v.u.list.n);
		else if (v.kind == V_DICT)
			*out = val_num((double)v.u.dict.n);
		else if (v.kind == V_STR)
			*out = val_num((double)tpl_utf8_count(v.u.str.s, v.u.str.len));
		else
			return tpl_fail(r, e->line, e->col, "object of type '%s' has no length", tpl_type(&v));
		return 0;
	case F_INT:
		if (!tpl_num(&v, &d)) {
			char *end = NULL;

			d = 0;
			if (v.kind == V_STR) {
				d = strtod(v.u.str.s, &end);
				while (end && tpl_is_space(*end))
					end++;
			}
			if (!end || end == v.u.str.s || *end || !isfinite(d)) {
				if (!ar->npos) {
					*out = val_num(0);
					return 0;
				}
				*out = args[0];
				return 0;
			}
		}
		*out = val_num(trunc(d));
		return 0;
	case F_FIRST:
	case F_LAST:
		if (v.kind == V_LIST) {
			*out = !v.u.list.n ? val_none() : v.u.list.items[e->op == F_FIRST ? 0 : v.u.list.n - 1];
			return 0;
		}
		if (v.kind == V_STR) {
			if (tpl_char_at(r, &v, e->op == F_FIRST ? 0 : -1, out))
				*out = val_str("");
			return 0;
		}
		return tpl_fail(r, e->line, e->col, "%s expects a list or string, not %s",
				e->u.call.name, tpl_type(&v));
	}
	return tpl_fail(r, e->line, e->col, "filter '%s' is not implemented", e->u.call.name);
}

static int tpl_eval_test(struct tpl_run *r, const struct tpl_expr *e, struct val *out)
{
	struct val v;
	int rc, undef = 0, res = 0;

	if (e->op == T_DEFINED || e->op == T_UNDEFINED) {
		if ((rc = tpl_eval_ref(r, e->u.call.obj, &v, &undef)))
			return rc;
		res = e->op == T_DEFINED ? !undef : undef;
	} else {
		if ((rc = tpl_eval(r, e->u.call.obj, &v)))
			return rc;
		switch (e->op) {
		case T_NONE: res = v.kind == V_NONE; break;
		case T_STRING: res = v.kind == V_STR; break;
		case T_NUMBER: res = v.kind == V_NUM; break;
		case T_BOOLEAN: res = v.kind == V_BOOL; break;
		case T_MAPPING: res = v.kind == V_DICT; break;
		case T_SEQUENCE: res = v.kind == V_LIST || v.kind == V_DICT || v.kind == V_STR; break;
		}
	}
	*out = val_bool(e->neg ? !res : res);
	return 0;
}

static int tpl_eval(struct tpl_run *r, const struct tpl_expr *e, struct val *out)
{
	struct val a, b;
	double d;
	size_t i;
	int rc;

	switch (e->kind) {
	case E_LIT:
		*out = e->u.lit;
		return 0;
	case E_NAME:
	case E_ATTR:
	case E_INDEX:
		return tpl_eval_ref(r, e, out, NULL);
	case E_LIST:
		*out = val_list_new();
		for (i = 0; i < e->u.seq.n; i++) {
			if ((rc = tpl_eval(r, e->u.seq.items[i], &a)))
				return rc;
			val_list_push(r->a, out, a);
		}
		return 0;
	case E_DICT:
		*out = val_dict_new();
		for (i = 0; i < e->u.seq.n; i++) {
			if ((rc = tpl_eval(r, e->u.seq.keys[i], &a)))
				return rc;
			if (a.kind != V_STR)
				return tpl_fail(r, e->u.seq.keys[i]->line, e->u.seq.keys[i]->col,
						"dict keys must be strings, not %s", tpl_type(&a));
			if ((rc = tpl_eval(r, e->u.seq.items[i], &b)))
				return rc;
			val_dict_set(r->a, out, a.u.str.s, b);
		}
		return 0;
	case E_CALL:
		return tpl_eval_call(r, e, out);
	case E_FILTER:
		return tpl_eval_filter(r, e, out);
	case E_TEST:
		return tpl_eval_test(r, e, out);
	case E_NOT:
		if ((rc = tpl_eval(r, e->u.sub, &a)))
			return rc;
		*out = val_bool(!val_truthy(&a));
		return 0;
	case E_NEG:
	case E_POS:
		if ((rc = tpl_eval(r, e->u.sub, &a)))
			return rc;
		if (!tpl_num(&a, &d))
			return tpl_fail(r, e->line, e->col, "bad operand type for unary %c: '%s'",
					e->kind == E_NEG ? '-' : '+', tpl_type(&a));
		*out = val_num(e->kind == E_NEG ? -d : d);
		return 0;
	case E_AND:
	case E_OR:
		/* Python semantics: the deciding operand itself is the result */
		if ((rc = tpl_eval(r, e->u.bin.l, out)))
			return rc;
		if (val_truthy(out) == (e->kind == E_OR))
			return 0;
		return tpl_eval(r, e->u.bin.r, out);
	case E_BIN:
		if ((rc = tpl_eval(r, e->u.bin.l, &a)) || (rc = tpl_eval(r, e->u.bin.r, &b)))
			return rc;
		return tpl_binop(r, e, &a, &b, out);
	case E_CMP:
		return tpl_eval_cmp(r, e, out);
	case E_COND:
		if ((rc = tpl_eval(r, e->u.cond.cond, &a)))
			return rc;
		if (val_truthy(&a))
			return tpl_eval(r, e->u.cond.then, out);
		if (e->u.cond.orelse)
			return tpl_eval(r, e->u.cond.orelse, out);
		*out = val_str("");
		return 0;
	}
	return tpl_fail(r, e->line, e->col, "bad expression");
}

/* ---- rendering ---------------------------------------------------------- */

static void tpl_buf_truncate(struct buf *b, size_t len)
{
	if (b->cap) {
		b->len = len;
		b->s[len] = '\0';
	}
}

/* What a for loop walks: a list's items, a dict's keys, a string's characters. */
static int tpl_iter_items(struct tpl_run *r, const struct tpl_expr *e, const struct val *seq, struct val *items)
{
	size_t i, step;

	switch (seq->kind) {
	case V_LIST:
		*items = *seq;
		return 0;
	case V_DICT:
		*items = val_list_new();
		for (i = 0; i < seq->u.dict.n; i++)
			val_list_push(r->a, items, val_str(seq->u.dict.keys[i]));
		return 0;
	case V_STR:
		*items = val_list_new();
		for (i = 0; i < seq->u.str.len; i += step) {
			step = tpl_utf8_step(seq->u.str.s + i, seq->u.str.len - i);
			val_list_push(r->a, items, tpl_strv(r, seq->u.str.s + i, step));
		}
		return 0;
	default:
		return tpl_fail(r, e->line, e->col, "'%s' is not iterable", tpl_type(seq));
	}
}

static int tpl_bind_loop_vars(struct tpl_run *r, const struct tpl_node *n, const struct val *item)
{
	if (!n->u.loop.var2) {
		tpl_scope_set(r, n->u.loop.var, *item);
		return 0;
	}
	if (item->kind != V_LIST || item->u.list.n != 2)
		return tpl_fail(r, n->line, n->col, "cannot unpack %s into '%s, %s'",
				item->kind == V_LIST ? "a list that is not a pair" : tpl_type(item),
				n->u.loop.var, n->u.loop.var2);
	tpl_scope_set(r, n->u.loop.var, item->u.list.items[0]);
	tpl_scope_set(r, n->u.loop.var2, item->u.list.items[1]);
	return 0;
}

/*
 * Jinja scoping: the body gets a scope of its own, fresh for every
 * iteration, so a set inside the loop is gone after it (and at the next
 * iteration).
 */
static int tpl_render_for(struct tpl_run *r, const struct tpl_node *n)
{
	/* Eight keys: a dict's capacity is implicit (value.c), and 8 is full. */
	static const char *loop_keys[] = {
		"index", "index0", "revindex", "revindex0", "first", "last", "length", "depth"
	};
	struct tpl_scope s;
	struct val seq, items, kept, test, loop, *lv;
	size_t i, count;
	int rc = 0;

	if ((rc = tpl_eval(r, n->u.loop.iter, &seq)) || (rc = tpl_iter_items(r, n->u.loop.iter, &seq, &items)))
		return rc;
	memset(&s, 0, sizeof(s));
	s.up = r->scope;
	r->scope = &s;
	if (n->u.loop.filter) {
		kept = val_list_new();
		for (i = 0; i < items.u.list.n; i++) {
			s.n = 0;
			if ((rc = tpl_bind_loop_vars(r, n, &items.u.list.items[i])) ||
			    (rc = tpl_eval(r, n->u.loop.filter, &test)))
				goto out;
			if (val_truthy(&test))
				val_list_push(r->a, &kept, items.u.list.items[i]);
		}
		items = kept;
	}
	count = items.u.list.n;
	if (!count) {
		s.n = 0;
		rc = tpl_render_nodes(r, n->u.loop.orelse);
		goto out;
	}
	for (i = 0; i < count; i++) {
		s.n = 0;
		if ((rc = tpl_bind_loop_vars(r, n, &items.u.list.items[i])))
			goto out;
		lv = arena_alloc(r->a, 8 * sizeof(*lv));
		lv[0] = val_num((double)(i + 1));
		lv[1] = val_num((double)i);
		lv[2] = val_num((double)(count - i));
		lv[3] = val_num((double)(count - i - 1));
		lv[4] = val_bool(i == 0);
		lv[5] = val_bool(i + 1 == count);
		lv[6] = val_num((double)count);
		lv[7] = val_num(1);
		loop = val_dict_new();
		loop.u.dict.keys = loop_keys;
		loop.u.dict.vals = lv;
		loop.u.dict.n = 8;
		tpl_scope_set(r, "loop", loop);
		if ((rc = tpl_render_nodes(r, n->u.loop.body)))
			goto out;
	}
out:
	r->scope = s.up;
	return rc;
}

static int tpl_render_nodes(struct tpl_run *r, const struct tpl_node *n)
{
	struct tpl_scope inner;
	struct val v;
	size_t start;
	int rc;

	for (; n; n = n->next) {
		switch (n->kind) {
		case N_TEXT:
			buf_add(r->out, n->u.text.s, n->u.text.len);
			break;
		case N_OUT:
			if ((rc = tpl_eval(r, n->u.expr, &v)))
				return rc;
			val_format(&v, r->out);
			break;
		case N_IF:
			if ((rc = tpl_eval(r, n->u.branch.cond, &v)) ||
			    (rc = tpl_render_nodes(r, val_truthy(&v) ? n->u.branch.then : n->u.branch.orelse)))
				return rc;
			break;
		case N_FOR:
			if ((rc = tpl_render_for(r, n)))
				return rc;
			break;
		case N_SET:
			if ((rc = tpl_eval(r, n->u.set.value, &v)))
				return rc;
			tpl_scope_set(r, n->u.set.name, v);
			break;
		case N_SET_BLOCK:
			/* Render in place, then take the bytes back out. */
			start = r->out->len;
			memset(&inner, 0, sizeof(inner));
			inner.up = r->scope;
			r->scope = &inner;
			rc = tpl_render_nodes(r, n->u.set.body);
			r->scope = inner.up;
			if (rc)
				return rc;
			v = tpl_strv(r, r->out->s + start, r->out->len - start);
			tpl_buf_truncate(r->out, start);
			tpl_scope_set(r, n->u.set.name, v);
			break;
		case N_DO:
			if ((rc = tpl_eval(r, n->u.expr, &v)))
				return rc;
			break;
		}
	}
	return 0;
}

int tpl_render(const struct tpl *t, const struct tpl_host *host, struct arena *scratch,
	       struct buf *out, struct sluice_err *err)
{
	struct sluice_err dummy = SLUICE_ERR_INIT;
	struct tpl_scope root;
	struct tpl_run r;
	size_t start = out->len;
	int rc;

	memset(&root, 0, sizeof(root));
	memset(&r, 0, sizeof(r));
	r.t = t;
	r.host = host;
	r.a = scratch;
	r.out = out;
	r.err = err ? err : &dummy;
	r.scope = &root;
	buf_init(&r.tmp);
	rc = tpl_render_nodes(&r, t->body);
	buf_release(&r.tmp);
	if (rc)
		tpl_buf_truncate(out, start);
	return rc;
}

/* ---- static walk -------------------------------------------------------- */

struct tpl_walk {
	const struct tpl *t;
	const char *name;
	int (*cb)(void *ud, const struct tpl_call *call);
	int (*inner)(void *ud, const struct tpl_call *call, struct val *out);   /* or NULL */
	void *ud;
	struct arena *a;
};

static int tpl_walk_expr(struct tpl_walk *w, const struct tpl_expr *e);

static int tpl_walk_args(struct tpl_walk *w, const struct tpl_args *ar)
{
	size_t i;
	int rc;

	for (i = 0; i < ar->npos; i++)
		if ((rc = tpl_walk_expr(w, ar->pos[i])))
			return rc;
	for (i = 0; i < ar->nkw; i++)
		if ((rc = tpl_walk_expr(w, ar->kw[i])))
			return rc;
	return 0;
}

static int tpl_static_value(struct tpl_walk *w, const struct tpl_expr *e, struct val *out);

/* Fill c with the call e, its arguments evaluated statically: 0, 1 when one is not static, or <0. */
static int tpl_static_call(struct tpl_walk *w, const struct tpl_expr *e, struct tpl_call *c)
{
	const struct tpl_args *ar = &e->u.call.args;
	struct val *args = NULL, *kwargs = NULL;
	size_t i;
	int rc;

	if (ar->npos)
		args = arena_alloc(w->a, ar->npos * sizeof(*args));
	if (ar->nkw)
		kwargs = arena_alloc(w->a, ar->nkw * sizeof(*kwargs));
	for (i = 0; i < ar->npos; i++)
		if ((rc = tpl_static_value(w, ar->pos[i], &args[i])))
			return rc;
	for (i = 0; i < ar->nkw; i++)
		if ((rc = tpl_static_value(w, ar->kw[i], &kwargs[i])))
			return rc;
	memset(c, 0, sizeof(*c));
	c->name = e->u.call.name;
	c->args = args;
	c->nargs = ar->npos;
	c->kwnames = ar->kwnames;
	c->kwargs = kwargs;
	c->nkw = ar->nkw;
	c->path = w->t->path;
	c->line = e->line;
	c->col = e->col;
	c->arena = w->a;
	return 0;
}

/*
 * A literal; with w->inner, also a list or dict of them and calls that
 * inner knows (config(depends_on=[ref('x')])). 1 when not static.
 */
static int tpl_static_value(struct tpl_walk *w, const struct tpl_expr *e, struct val *out)
{
	struct tpl_call c;
	size_t i;
	int rc;

	if (e->kind == E_LIT) {
		*out = e->u.lit;
		return 0;
	}
	if (!w->inner)
		return 1;
	if (e->kind == E_LIST || e->kind == E_DICT) {
		*out = e->kind == E_LIST ? val_list_new() : val_dict_new();
		for (i = 0; i < e->u.seq.n; i++) {
			struct val k = val_none(), v;
			if ((e->kind == E_DICT && (rc = tpl_static_value(w, e->u.seq.keys[i], &k))) ||
			    (rc = tpl_static_value(w, e->u.seq.items[i], &v)))
				return rc;
			if (e->kind == E_LIST)
				val_list_push(w->a, out, v);
			else if (k.kind == V_STR)
				val_dict_set(w->a, out, k.u.str.s, v);
			else
				return 1;
		}
		return 0;
	}
	if (e->kind == E_CALL && !e->u.call.obj) {
		if ((rc = tpl_static_call(w, e, &c)))
			return rc;
		return w->inner(w->ud, &c, out);
	}
	return 1;
}

/* Report a call of w->name when every argument is static (see tpl_static_value). */
static int tpl_walk_call(struct tpl_walk *w, const struct tpl_expr *e)
{
	struct tpl_call c;
	int rc = tpl_static_call(w, e, &c);

	if (rc)
		return rc > 0 ? 0 : rc;
	return w->cb(w->ud, &c);
}

static int tpl_walk_expr(struct tpl_walk *w, const struct tpl_expr *e)
{
	size_t i;
	int rc;

	if (!e)
		return 0;
	switch (e->kind) {
	case E_LIT:
	case E_NAME:
		return 0;
	case E_LIST:
	case E_DICT:
		for (i = 0; i < e->u.seq.n; i++)
			if ((e->kind == E_DICT && (rc = tpl_walk_expr(w, e->u.seq.keys[i]))) ||
			    (rc = tpl_walk_expr(w, e->u.seq.items[i])))
				return rc;
		return 0;
	case E_ATTR:
		return tpl_walk_expr(w, e->u.attr.obj);
	case E_INDEX:
		if ((rc = tpl_walk_expr(w, e->u.index.obj)))
			return rc;
		return tpl_walk_expr(w, e->u.index.key);
	case E_CALL:
		if ((rc = tpl_walk_expr(w, e->u.call.obj)))
			return rc;
		if (!e->u.call.obj && !strcmp(e->u.call.name, w->name) && (rc = tpl_walk_call(w, e)))
			return rc;
		return tpl_walk_args(w, &e->u.call.args);
	case E_FILTER:
	case E_TEST:
		if ((rc = tpl_walk_expr(w, e->u.call.obj)))
			return rc;
		return tpl_walk_args(w, &e->u.call.args);
	case E_NOT:
	case E_NEG:
	case E_POS:
		return tpl_walk_expr(w, e->u.sub);
	case E_AND:
	case E_OR:
	case E_BIN:
		if ((rc = tpl_walk_expr(w, e->u.bin.l)))
			return rc;
		return tpl_walk_expr(w, e->u.bin.r);
	case E_CMP:
		if ((rc = tpl_walk_expr(w, e->u.cmp.first)))
			return rc;
		for (i = 0; i < e->u.cmp.n; i++)
			if ((rc = tpl_walk_expr(w, e->u.cmp.ops[i].rhs)))
				return rc;
		return 0;
	case E_COND:
		if ((rc = tpl_walk_expr(w, e->u.cond.then)) || (rc = tpl_walk_expr(w, e->u.cond.cond)))
			return rc;
		return tpl_walk_expr(w, e->u.cond.orelse);
	}
	return 0;
}

static int tpl_walk_nodes(struct tpl_walk *w, const struct tpl_node *n)
{
	int rc = 0;

	for (; n && !rc; n = n->next) {
		switch (n->kind) {
		case N_TEXT:
			break;
		case N_OUT:
		case N_DO:
			rc = tpl_walk_expr(w, n->u.expr);
			break;
		case N_IF:
			if (!(rc = tpl_walk_expr(w, n->u.branch.cond)) && !(rc = tpl_walk_nodes(w, n->u.branch.then)))
				rc = tpl_walk_nodes(w, n->u.branch.orelse);
			break;
		case N_FOR:
			if (!(rc = tpl_walk_expr(w, n->u.loop.iter)) && !(rc = tpl_walk_expr(w, n->u.loop.filter)) &&
			    !(rc = tpl_walk_nodes(w, n->u.loop.body)))
				rc = tpl_walk_nodes(w, n->u.loop.orelse);
			break;
		case N_SET:
			rc = tpl_walk_expr(w, n->u.set.value);
			break;
		case N_SET_BLOCK:
			rc = tpl_walk_nodes(w, n->u.set.body);
			break;
		}
	}
	return rc;
}

static int tpl_walk_all(const struct tpl *t, const char *name,
			int (*cb)(void *ud, const struct tpl_call *call),
			int (*inner)(void *ud, const struct tpl_call *call, struct val *out),
			void *ud, struct arena *a)
{
	struct arena tmp = ARENA_INIT;
	struct tpl_walk w;
	int rc;

	w.t = t;
	w.name = name;
	w.cb = cb;
	w.inner = inner;
	w.ud = ud;
	w.a = a ? a : &tmp;
	rc = tpl_walk_nodes(&w, t->body);
	arena_release(&tmp);
	return rc;
}

int tpl_each_call(const struct tpl *t, const char *name,
		  int (*cb)(void *ud, const struct tpl_call *call), void *ud, struct arena *a)
{
	return tpl_walk_all(t, name, cb, NULL, ud, a);
}

int tpl_each_call_nested(const struct tpl *t, const char *name,
			 int (*cb)(void *ud, const struct tpl_call *call),
			 int (*inner)(void *ud, const struct tpl_call *call, struct val *out),
			 void *ud, struct arena *a)
{
	return tpl_walk_all(t, name, cb, inner, ud, a);
}
