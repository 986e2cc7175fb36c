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
/* Macro calls in progress at once: deeper is a recursion without an end. */
#define TPL_MAX_CALLS 100
/* Macro calls in one render: more is a recursion that branches (2^depth calls). */
#define TPL_MAX_TOTAL_CALLS 20000
/* Not an error: return() unwinding to the macro call that catches it. */
#define TPL_RETURN 2

/* ---- tokens and syntax tree -------------------------------------------- */

enum tpl_tok_kind {
	TK_EOF, TK_ERROR, TK_TEXT, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN,
	TK_BLOCK_END, TK_NAME, TK_STRING, TK_NUMBER, TK_OP
};

/* Operators: a one-character operator is the character itself. */
enum { OP_EQ = 256, OP_NE, OP_LE, OP_GE, OP_IN, OP_NOT_IN, OP_POW, OP_FLOORDIV };

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
	E_NOT, E_NEG, E_POS, E_AND, E_OR, E_BIN, E_CMP, E_COND, E_SLICE
};

enum tpl_filter_id {
	F_UPPER, F_LOWER, F_JOIN, F_DEFAULT, F_REPLACE, F_TRIM, F_LENGTH,
	F_STRING, F_INT, F_FIRST, F_LAST, F_AS_BOOL, F_AS_NUMBER, F_AS_NATIVE,
	F_TITLE, F_CAPITALIZE, F_UNIQUE, F_SORT, F_SELECT, F_REJECT, F_SELECTATTR,
	F_REJECTATTR, F_MAP, F_LIST, F_FLOAT, F_ROUND, F_ABS, F_INDENT, F_WORDCOUNT,
	F_REVERSE, F_SUM, F_MIN, F_MAX, F_HOST
};

enum tpl_test_id {
	T_DEFINED, T_UNDEFINED, T_NONE, T_STRING, T_NUMBER, T_BOOLEAN,
	T_MAPPING, T_SEQUENCE, T_TRUE, T_FALSE, T_INTEGER, T_FLOAT, T_CALLABLE,
	T_LOWER, T_UPPER, T_ODD, T_EVEN, T_DIVISIBLEBY, T_EQ, T_NE, T_LT, T_LE,
	T_GT, T_GE, T_IN, T_SAMEAS
};

struct tpl_args {
	struct tpl_expr **pos;
	size_t npos;
	const char **kwnames;
	struct tpl_expr **kw;
	size_t nkw;
	struct tpl_expr *star, *dstar;   /* f(*list, **dict), or NULL */
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
		struct { struct tpl_expr *obj, *start, *stop, *step; } slice;   /* each bound may be NULL */
		/* E_CALL (obj is NULL for a function, else the method's
		 * receiver), E_FILTER and E_TEST (obj is the operand). */
		struct { struct tpl_expr *obj; const char *name; struct tpl_args args; } call;
		struct tpl_expr *sub;
		struct { struct tpl_expr *l, *r; } bin;
		struct { struct tpl_expr *first; struct tpl_cmp *ops; size_t n; } cmp;
		struct { struct tpl_expr *then, *cond, *orelse; } cond;
	} u;
};

enum tpl_node_kind { N_TEXT, N_OUT, N_IF, N_FOR, N_SET, N_SET_BLOCK, N_DO, N_CALL_BLOCK, N_FILTER_BLOCK };

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
		/* {% set name = value %}, {% set name.attr = value %}, {% set name %}body */
		struct { const char *name, *attr; struct tpl_expr *value; struct tpl_node *body; } set;
		/*
		 * {% call m(args) %}body{% endcall %}: expr is the call, made with
		 * `caller` bound to body; {% filter f %}body{% endfilter %}: expr
		 * is the filter, applied to the body's text (bound to TPL_BODY).
		 */
		struct { struct tpl_expr *expr; struct tpl_node *body; } block;
	} u;
};

/* The name a {% filter %} block's text is bound to: no template can write it. */
#define TPL_BODY " body"

struct tpl_macro {
	const char *name;           /* a {% test x %} is "test_x" */
	const struct tpl *t;        /* where it is defined */
	const char **params;
	struct tpl_expr **defaults; /* NULL where a parameter has none */
	size_t nparams;
	struct tpl_node *body;
	int is_test;
	int uses_varargs, uses_kwargs, uses_caller;
	int line, col;
	const char *text;           /* from its "{%" to its endmacro's "%}" */
	size_t text_len;
	const void *data;           /* the host's (tpl_macro_set_data) */
};

struct tpl {
	const char *path;
	struct tpl_node *body;
	struct tpl_macro **macros;  /* every definition, in order, wherever it stands */
	size_t nmacros;
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
	struct tpl_macro *macro;    /* the definition being parsed, or NULL */
	struct tpl_macro **macros;
	size_t nmacros, mcap;
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
	case OP_POW: memcpy(out, "**", 3); break;
	case OP_FLOORDIV: memcpy(out, "//", 3); break;
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
	case V_FUNC: return "function";
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
	} else if (i + 1 < p->len && (c == '*' || c == '/') && s[i + 1] == c) {
		op = c == '*' ? OP_POW : OP_FLOORDIV;
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
	tpl_lex_push(p, block ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, line, col)->s = s + p->pos;
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
				tpl_lex_push(p, block ? TK_BLOCK_END : TK_VAR_END, p->line, tpl_lex_col(p))->s =
					s + i + dash + 2;
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
	const char *kw;
};

/*
 * kw: the keyword arguments it takes, NULL for none. F_HOST filters are
 * the host's functions (tojson(x) is x|tojson).
 */
static const struct tpl_filter_def tpl_filters[] = {
	{ "upper", F_UPPER, 0, 0, NULL },
	{ "lower", F_LOWER, 0, 0, NULL },
	{ "join", F_JOIN, 0, 2, "d attribute" },
	{ "default", F_DEFAULT, 0, 2, NULL },
	{ "d", F_DEFAULT, 0, 2, NULL },
	{ "replace", F_REPLACE, 2, 3, NULL },
	{ "trim", F_TRIM, 0, 1, NULL },
	{ "length", F_LENGTH, 0, 0, NULL },
	{ "count", F_LENGTH, 0, 0, NULL },
	{ "string", F_STRING, 0, 0, NULL },
	{ "as_text", F_STRING, 0, 0, NULL },
	{ "int", F_INT, 0, 2, "default base" },
	{ "float", F_FLOAT, 0, 1, "default" },
	{ "first", F_FIRST, 0, 0, NULL },
	{ "last", F_LAST, 0, 0, NULL },
	{ "as_bool", F_AS_BOOL, 0, 0, NULL },
	{ "as_number", F_AS_NUMBER, 0, 0, NULL },
	{ "as_native", F_AS_NATIVE, 0, 0, NULL },
	{ "title", F_TITLE, 0, 0, NULL },
	{ "capitalize", F_CAPITALIZE, 0, 0, NULL },
	{ "unique", F_UNIQUE, 0, 2, "case_sensitive attribute" },
	{ "sort", F_SORT, 0, 3, "reverse case_sensitive attribute" },
	{ "select", F_SELECT, 0, 2, NULL },
	{ "reject", F_REJECT, 0, 2, NULL },
	{ "selectattr", F_SELECTATTR, 1, 3, NULL },
	{ "rejectattr", F_REJECTATTR, 1, 3, NULL },
	{ "map", F_MAP, 0, 8, "attribute default" },
	{ "list", F_LIST, 0, 0, NULL },
	{ "round", F_ROUND, 0, 2, "precision method" },
	{ "abs", F_ABS, 0, 0, NULL },
	{ "indent", F_INDENT, 0, 3, "width first blank" },
	{ "wordcount", F_WORDCOUNT, 0, 0, NULL },
	{ "reverse", F_REVERSE, 0, 0, NULL },
	{ "sum", F_SUM, 0, 2, "attribute start" },
	{ "min", F_MIN, 0, 1, "attribute" },
	{ "max", F_MAX, 0, 1, "attribute" },
	{ "tojson", F_HOST, 0, 1, "indent" },
	{ "fromjson", F_HOST, 0, 0, NULL },
	{ "fromyaml", F_HOST, 0, 0, NULL },
	{ "toyaml", F_HOST, 0, 0, NULL },
};

/* nargs: the test takes one argument (`x is divisibleby 3`, `x is in(list)`). */
static const struct { const char *name; enum tpl_test_id id; int nargs; } tpl_tests[] = {
	{ "defined", T_DEFINED, 0 },
	{ "undefined", T_UNDEFINED, 0 },
	{ "none", T_NONE, 0 },
	{ "string", T_STRING, 0 },
	{ "number", T_NUMBER, 0 },
	{ "boolean", T_BOOLEAN, 0 },
	{ "mapping", T_MAPPING, 0 },
	{ "sequence", T_SEQUENCE, 0 },
	{ "iterable", T_SEQUENCE, 0 },
	{ "true", T_TRUE, 0 },
	{ "false", T_FALSE, 0 },
	{ "integer", T_INTEGER, 0 },
	{ "float", T_FLOAT, 0 },
	{ "callable", T_CALLABLE, 0 },
	{ "lower", T_LOWER, 0 },
	{ "upper", T_UPPER, 0 },
	{ "odd", T_ODD, 0 },
	{ "even", T_EVEN, 0 },
	{ "divisibleby", T_DIVISIBLEBY, 1 },
	{ "eq", T_EQ, 1 }, { "equalto", T_EQ, 1 }, { "==", T_EQ, 1 },
	{ "ne", T_NE, 1 }, { "!=", T_NE, 1 },
	{ "lt", T_LT, 1 }, { "lessthan", T_LT, 1 }, { "<", T_LT, 1 },
	{ "le", T_LE, 1 }, { "<=", T_LE, 1 },
	{ "gt", T_GT, 1 }, { "greaterthan", T_GT, 1 }, { ">", T_GT, 1 },
	{ "ge", T_GE, 1 }, { ">=", T_GE, 1 },
	{ "in", T_IN, 1 },
	{ "sameas", T_SAMEAS, 1 },
};

static int tpl_test_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(tpl_tests) / sizeof(tpl_tests[0]); i++)
		if (strlen(tpl_tests[i].name) == len && !memcmp(tpl_tests[i].name, name, len))
			return (int)i;
	return -1;
}

static const struct tpl_filter_def *tpl_filter_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(tpl_filters) / sizeof(tpl_filters[0]); i++)
		if (strlen(tpl_filters[i].name) == len && !memcmp(tpl_filters[i].name, name, len))
			return &tpl_filters[i];
	return NULL;
}

/* Whether a filter takes the keyword argument name (its kw list is space-separated). */
static int tpl_filter_takes(const struct tpl_filter_def *f, const char *name)
{
	size_t n = strlen(name);
	const char *k;

	for (k = f->kw; k && (k = strstr(k, name)); k += n)
		if ((k == f->kw || k[-1] == ' ') && (k[n] == ' ' || !k[n]))
			return 1;
	return 0;
}

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
			if (p->macro && !strcmp(e->u.name, "varargs"))
				p->macro->uses_varargs = 1;
			else if (p->macro && !strcmp(e->u.name, "kwargs"))
				p->macro->uses_kwargs = 1;
			else if (p->macro && !strcmp(e->u.name, "caller"))
				p->macro->uses_caller = 1;
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
	struct tpl_expr *x, **splat;

	while (!tpl_tok_is_op(t = tpl_peek(p), ')')) {
		if (tpl_tok_is_op(t, '*') || tpl_tok_is_op(t, OP_POW)) {
			/* f(*list), f(**dict): one of each, after the other arguments */
			splat = t->op == '*' ? &args->star : &args->dstar;
			if (*splat || (t->op == '*' && args->dstar))
				return tpl_parse_fail(p, t, "misplaced %s argument", t->op == '*' ? "*" : "**");
			tpl_next(p);
			if (!(*splat = tpl_parse_expr(p)))
				return SLUICE_EUSAGE;
		} else if (args->dstar || (args->star && !(t->kind == TK_NAME && tpl_tok_is_op(tpl_peek2(p), '=')))) {
			return tpl_parse_fail(p, t, "an argument after *list or **dict");
		} else if (t->kind == TK_NAME && tpl_tok_is_op(tpl_peek2(p), '=')) {
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
			if (!tpl_tok_is_op(tpl_peek(p), ':') && !(x->u.index.key = tpl_parse_expr(p)))
				return NULL;
			if (tpl_tok_is_op(tpl_peek(p), ':')) {
				/* x[start:stop:step], each part optional */
				struct tpl_expr *start = x->u.index.key;

				x->kind = E_SLICE;
				x->u.slice.obj = e;
				x->u.slice.start = start;
				tpl_next(p);
				if (!tpl_tok_is_op(tpl_peek(p), ']') && !tpl_tok_is_op(tpl_peek(p), ':') &&
				    !(x->u.slice.stop = tpl_parse_expr(p)))
					return NULL;
				if (tpl_tok_is_op(tpl_peek(p), ':')) {
					tpl_next(p);
					if (!tpl_tok_is_op(tpl_peek(p), ']') && !(x->u.slice.step = tpl_parse_expr(p)))
						return NULL;
				}
			}
			if (tpl_expect_op(p, ']'))
				return NULL;
		} else if (tpl_tok_is_op(t, '(')) {
			/*
			 * f(...) and obj.m(...) name what they call; anything
			 * else, such as adapter.dispatch('x')(...), calls the
			 * value of obj (name NULL).
			 */
			tpl_next(p);
			x = tpl_expr_new(p, E_CALL, e->line, e->col);
			x->u.call.obj = e->kind == E_ATTR ? e->u.attr.obj : e->kind == E_NAME ? NULL : e;
			x->u.call.name = e->kind == E_ATTR ? e->u.attr.name : e->kind == E_NAME ? e->u.name : NULL;
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
	if (!(f = tpl_filter_find(t->s, t->len))) {
		tpl_parse_fail(p, t, "filter '%.*s' is not supported yet: the model cannot be compiled "
			       "without it (docs/templates.md lists the filters sluice has)", (int)t->len, t->s);
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
	for (i = 0; i < x->u.call.args.nkw; i++)
		if (!tpl_filter_takes(f, x->u.call.args.kwnames[i])) {
			tpl_parse_fail(p, t, "filter '%s' takes no keyword argument '%s'", f->name,
				       x->u.call.args.kwnames[i]);
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
	int neg = 0, k;
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
	if ((k = tpl_test_find(t->s, t->len)) < 0) {
		tpl_parse_fail(p, t, "unknown test '%.*s'", (int)t->len, t->s);
		return NULL;
	}
	x = tpl_expr_new(p, E_TEST, t->line, t->col);
	x->op = tpl_tests[k].id;
	x->neg = neg;
	x->u.call.obj = e;
	x->u.call.name = tpl_tests[k].name;
	tpl_next(p);
	if (!tpl_tests[k].nargs)
		return x;
	/* x is divisibleby 3, x is in(list), x is sameas none */
	if (tpl_tok_is_op(tpl_peek(p), '(')) {
		tpl_next(p);
		if (tpl_parse_args(p, &x->u.call.args))
			return NULL;
	} else {
		struct tpl_expr *arg = tpl_parse_primary(p);

		if (!arg || !(arg = tpl_parse_postfix(p, arg)))
			return NULL;
		x->u.call.args.pos = arena_alloc(p->a, sizeof(arg));
		x->u.call.args.pos[0] = arg;
		x->u.call.args.npos = 1;
	}
	if (x->u.call.args.npos != 1 || x->u.call.args.nkw) {
		tpl_parse_fail(p, t, "test '%s' takes one argument", tpl_tests[k].name);
		return NULL;
	}
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
static const char *const tpl_bin_levels[] = { "+-", "~", "*/%", "" };

/* Whether token t is a binary operator of level (// with * / %, ** alone and tightest). */
static int tpl_bin_op_at(const struct tpl_tok *t, size_t level)
{
	if (t->kind != TK_OP)
		return 0;
	if (t->op == OP_FLOORDIV)
		return level == 2;
	if (t->op == OP_POW)
		return level == 3;
	return t->op < 256 && *tpl_bin_levels[level] && strchr(tpl_bin_levels[level], t->op);
}

static struct tpl_expr *tpl_parse_binary(struct tpl_parser *p, size_t level)
{
	const struct tpl_tok *t;
	struct tpl_expr *l, *x;
	int nested = 0;

	if (level == sizeof(tpl_bin_levels) / sizeof(tpl_bin_levels[0]))
		return tpl_parse_unary(p, 1);
	l = tpl_parse_binary(p, level + 1);
	while (l && tpl_bin_op_at(t = tpl_peek(p), level)) {
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
	if (tpl_tok_is_op(t, '.')) {
		tpl_next(p);
		t = tpl_peek(p);
		if (t->kind != TK_NAME)
			return tpl_parse_fail(p, t, "expected an attribute name, got %s", tpl_tok_desc(t, b, sizeof(b)));
		n->u.set.attr = tpl_tok_str(p, tpl_next(p));
		if (!tpl_tok_is_op(t = tpl_peek(p), '='))
			return tpl_parse_fail(p, t, "expected '=', got %s", tpl_tok_desc(t, b, sizeof(b)));
	}
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

/*
 * {% macro name(a, b=1) %}body{% endmacro %}, or {% test name(...) %}
 * ... {% endtest %} (a macro named test_<name>). A definition is no node:
 * it joins the template's list, so that every part of the file may call
 * it, wherever it stands.
 */
static int tpl_parse_macro(struct tpl_parser *p, const struct tpl_tok *begin, int is_test)
{
	static const char *const mend[] = { "endmacro", NULL };
	static const char *const tend[] = { "endtest", NULL };
	struct tpl_open open = { is_test ? "test" : "macro", is_test ? "endtest" : "endmacro",
				 begin->line, begin->col };
	struct tpl_macro *m = arena_alloc(p->a, sizeof(*m)), *outer = p->macro;
	const struct tpl_tok *t;
	size_t cap = 0, dcap, i;
	int which, rc;
	char b[64];

	tpl_next(p);
	t = tpl_peek(p);
	if (t->kind != TK_NAME || tpl_is_keyword(t))
		return tpl_parse_fail(p, t, "expected a %s name, got %s", open.tag, tpl_tok_desc(t, b, sizeof(b)));
	m->name = is_test ? arena_printf(p->a, "test_%.*s", (int)t->len, t->s) : tpl_tok_str(p, t);
	for (i = 0; i < p->nmacros; i++)
		if (!strcmp(p->macros[i]->name, m->name))
			return tpl_parse_fail(p, t, "%s '%.*s' is defined twice (first at %d:%d)", open.tag,
					      (int)t->len, t->s, p->macros[i]->line, p->macros[i]->col);
	m->is_test = is_test;
	m->line = begin->line;
	m->col = begin->col;
	tpl_next(p);
	if (tpl_expect_op(p, '('))
		return SLUICE_EUSAGE;
	while (!tpl_tok_is_op(t = tpl_peek(p), ')')) {
		if (t->kind != TK_NAME || tpl_is_keyword(t))
			return tpl_parse_fail(p, t, "expected a parameter name, got %s", tpl_tok_desc(t, b, sizeof(b)));
		for (i = 0; i < m->nparams; i++)
			if (strlen(m->params[i]) == t->len && !memcmp(m->params[i], t->s, t->len))
				return tpl_parse_fail(p, t, "duplicate parameter '%.*s'", (int)t->len, t->s);
		dcap = cap;
		m->params = tpl_vec_room(p->a, m->params, m->nparams, &cap, sizeof(char *));
		m->defaults = tpl_vec_room(p->a, m->defaults, m->nparams, &dcap, sizeof(struct tpl_expr *));
		m->params[m->nparams] = tpl_tok_str(p, tpl_next(p));
		m->defaults[m->nparams] = NULL;
		if (tpl_tok_is_op(tpl_peek(p), '=')) {
			tpl_next(p);
			if (!(m->defaults[m->nparams] = tpl_parse_expr(p)))
				return SLUICE_EUSAGE;
		} else if (m->nparams && m->defaults[m->nparams - 1]) {
			return tpl_parse_fail(p, t, "parameter '%s' without a default follows one with a default",
					      m->params[m->nparams]);
		}
		m->nparams++;
		if (!tpl_tok_is_op(tpl_peek(p), ','))
			break;
		tpl_next(p);
	}
	if (tpl_expect_op(p, ')') || tpl_expect(p, TK_BLOCK_END) || tpl_enter(p))
		return SLUICE_EUSAGE;
	p->macro = m;
	rc = tpl_parse_body(p, &open, is_test ? tend : mend, &which, &m->body);
	p->macro = outer;
	if (rc)
		return rc;
	t = tpl_peek(p);
	if (tpl_expect(p, TK_BLOCK_END))
		return SLUICE_EUSAGE;
	m->text = begin->s;
	m->text_len = (size_t)(t->s - begin->s);
	p->depth--;
	p->macros = tpl_vec_room(p->a, p->macros, p->nmacros, &p->mcap, sizeof(*p->macros));
	p->macros[p->nmacros++] = m;
	return 0;
}

/*
 * {% call m(args) %}body{% endcall %} and {% filter f(args)|g %}body
 * {% endfilter %}: one expression, then a body.
 */
static int tpl_parse_block(struct tpl_parser *p, const struct tpl_tok *begin, struct tpl_node **out)
{
	static const char *const cend[] = { "endcall", NULL };
	static const char *const fend[] = { "endfilter", NULL };
	int is_call = tpl_tok_is(tpl_peek(p), "call"), which;
	struct tpl_open open = { is_call ? "call" : "filter", is_call ? "endcall" : "endfilter",
				 begin->line, begin->col };
	struct tpl_node *n = tpl_node_new(p, is_call ? N_CALL_BLOCK : N_FILTER_BLOCK, tpl_next(p));
	const struct tpl_tok *t = tpl_peek(p);
	struct tpl_expr *x;

	if (is_call) {
		if (tpl_tok_is_op(t, '('))
			return tpl_parse_fail(p, t, "parameters of caller ({%% call(...) %%}) are not supported yet");
		if (!(x = tpl_parse_expr(p)))
			return SLUICE_EUSAGE;
		if (x->kind != E_CALL)
			return tpl_parse_fail(p, t, "{%% call %%} expects a call of a macro");
	} else {
		x = tpl_expr_new(p, E_NAME, t->line, t->col);
		x->u.name = TPL_BODY;
		for (;;) {
			if (!(x = tpl_parse_filter(p, x)))
				return SLUICE_EUSAGE;
			if (!tpl_tok_is_op(tpl_peek(p), '|'))
				break;
			tpl_next(p);
		}
	}
	n->u.block.expr = x;
	if (tpl_expect(p, TK_BLOCK_END) || tpl_enter(p) ||
	    tpl_parse_body(p, &open, is_call ? cend : fend, &which, &n->u.block.body) ||
	    tpl_expect(p, TK_BLOCK_END))
		return SLUICE_EUSAGE;
	p->depth--;
	*out = n;
	return 0;
}

/* p is at the tag name, just after "{%" (begin). *out is NULL for a definition. */
static int tpl_parse_tag(struct tpl_parser *p, const struct tpl_tok *begin,
			 const struct tpl_open *open, struct tpl_node **out)
{
	static const char *const unsupported[] = {
		"include", "import", "from", "extends", "block", "with", "autoescape",
		"break", "continue", "materialization", "snapshot", "docs", NULL
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
	if (tpl_tok_is(t, "macro") || tpl_tok_is(t, "test")) {
		*out = NULL;
		return tpl_parse_macro(p, begin, tpl_tok_is(t, "test"));
	}
	if (tpl_tok_is(t, "call") || tpl_tok_is(t, "filter"))
		return tpl_parse_block(p, begin, out);
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
			if (!n)
				continue;
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
	t->macros = p.macros;
	t->nmacros = p.nmacros;
	for (which = 0; (size_t)which < p.nmacros; which++)
		p.macros[which]->t = t;
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
	const struct tpl *top;   /* the template tpl_render was given */
	struct tpl_scope *root;  /* its top-level scope */
	int calls;               /* macro and caller() calls in progress */
	long total_calls;        /* macro calls so far */
	struct val ret;          /* what return() gave, while TPL_RETURN unwinds */
};

/* The body of a {% call %} block, with the scope it is rendered in. */
struct tpl_closure {
	const struct tpl *t;
	struct tpl_scope *scope;
	const struct tpl_node *body;
};

/* Arguments of a call, evaluated. */
struct tpl_argv {
	struct val *args;
	size_t nargs;
	const char *const *kwnames;
	struct val *kwargs;
	size_t nkw;
	const struct val *caller;    /* {% call %}: the block's body, or NULL */
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

/* The binding of name, innermost first; a method such as append changes it in place. */
static struct val *tpl_scope_get(const struct tpl_run *r, const char *name)
{
	const struct tpl_scope *s;
	size_t i;

	for (s = r->scope; s; s = s->up)
		for (i = 0; i < s->n; i++)
			if (!strcmp(s->names[i], name))
				return &s->vals[i];
	return NULL;
}

static int tpl_scope_has(const struct tpl_scope *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->names[i], name))
			return 1;
	return 0;
}

/* ": <the host's explanation>" for an undefined name, or "". */
static const char *tpl_why(struct tpl_run *r, const char *name)
{
	const char *why = r->host && r->host->why_undefined ? r->host->why_undefined(r->host->ud, name) : NULL;

	return why ? arena_printf(r->a, ": %s", why) : "";
}

/* A macro of the template being rendered (a model's own, or its file's for a macro). */
static const struct tpl_macro *tpl_local_macro(const struct tpl *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->nmacros; i++)
		if (!strcmp(t->macros[i]->name, name))
			return t->macros[i];
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
		/* a row of a query's result is a dict that also answers row[0] */
		if (k->kind == V_NUM && k->u.num >= 0 && k->u.num < (double)o->u.dict.n && k->u.num == floor(k->u.num)) {
			*out = o->u.dict.vals[(size_t)k->u.num];
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
	const struct tpl_macro *m;
	const struct val *v;
	struct val o, k;
	int rc;

	switch (e->kind) {
	case E_NAME:
		if ((v = tpl_scope_get(r, e->u.name))) {
			*out = *v;
			return 0;
		}
		if ((m = tpl_local_macro(r->t, e->u.name))) {
			*out = tpl_macro_value(m);
			return 0;
		}
		*out = val_none();
		if (r->host && r->host->lookup && r->host->lookup(r->host->ud, e->u.name, r->a, out) == 0)
			return 0;
		if (undef) {
			*undef = 1;
			return 0;
		}
		return tpl_fail(r, e->line, e->col, "undefined name '%s'%s", e->u.name, tpl_why(r, e->u.name));
	case E_ATTR:
		if ((rc = tpl_eval_ref(r, e->u.attr.obj, &o, undef)) || (undef && *undef))
			return rc;
		if ((v = val_get(o.kind == V_DICT ? &o : val_attrs(&o), e->u.attr.name))) {
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

/* A copy of list with room for extra more items (n grows as they are set). */
static struct val tpl_list_copy(struct tpl_run *r, const struct val *list, size_t extra)
{
	struct val c = val_list_of(r->a, list->u.list.n + extra);

	if (list->u.list.n)
		memcpy(c.u.list.items, list->u.list.items, list->u.list.n * sizeof(*c.u.list.items));
	c.u.list.n = list->u.list.n;
	return c;
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
			/* one allocation; a list that doubles at each call of a recursion stops here */
			if (a->u.list.n + b->u.list.n > TPL_MAX_RANGE)
				return tpl_fail(r, e->line, e->col, "list too large (%zu items)", a->u.list.n + b->u.list.n);
			*out = tpl_list_copy(r, a, b->u.list.n);
			for (i = 0; i < b->u.list.n; i++)
				out->u.list.items[out->u.list.n++] = b->u.list.items[i];
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
			if (times > 0 && s->u.str.len) {
				/* by doubling: a few copies, not one per repetition */
				size_t want = s->u.str.len * (size_t)times, n;

				buf_grow(&r->tmp, want);
				buf_add(&r->tmp, s->u.str.s, s->u.str.len);
				while (r->tmp.len < want) {
					n = r->tmp.len < want - r->tmp.len ? r->tmp.len : want - r->tmp.len;
					buf_add(&r->tmp, r->tmp.s, n);
				}
			}
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
	case OP_POW:
		if (nums) {
			*out = val_num(pow(x, y));
			if (!isfinite(out->u.num))
				return tpl_fail(r, e->line, e->col, "number too large");
			return 0;
		}
		break;
	case OP_FLOORDIV:
		if (nums) {
			if (y == 0)
				return tpl_fail(r, e->line, e->col, "division by zero");
			*out = val_num(floor(x / y));
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

/* Evaluate a call's arguments into av, *list and **dict spread out. */
static int tpl_eval_args(struct tpl_run *r, const struct tpl_args *in, struct tpl_argv *av)
{
	struct val star = val_list_new(), dstar = val_dict_new();
	const char **names;
	size_t i;
	int rc;

	memset(av, 0, sizeof(*av));
	if (in->star && (rc = tpl_eval(r, in->star, &star)))
		return rc;
	if (in->dstar && (rc = tpl_eval(r, in->dstar, &dstar)))
		return rc;
	if (star.kind != V_LIST || dstar.kind != V_DICT)
		return tpl_fail(r, (star.kind != V_LIST ? in->star : in->dstar)->line,
				(star.kind != V_LIST ? in->star : in->dstar)->col, "%s needs a %s, not %s",
				star.kind != V_LIST ? "*" : "**", star.kind != V_LIST ? "list" : "dict",
				tpl_type(star.kind != V_LIST ? &star : &dstar));
	av->nargs = in->npos + star.u.list.n;
	av->nkw = in->nkw + dstar.u.dict.n;
	av->args = av->nargs ? arena_alloc(r->a, av->nargs * sizeof(*av->args)) : NULL;
	av->kwargs = av->nkw ? arena_alloc(r->a, av->nkw * sizeof(*av->kwargs)) : NULL;
	av->kwnames = (const char *const *)in->kwnames;
	for (i = 0; i < in->npos; i++)
		if ((rc = tpl_eval(r, in->pos[i], &av->args[i])))
			return rc;
	for (i = 0; i < in->nkw; i++)
		if ((rc = tpl_eval(r, in->kw[i], &av->kwargs[i])))
			return rc;
	for (i = 0; i < star.u.list.n; i++)
		av->args[in->npos + i] = star.u.list.items[i];
	if (dstar.u.dict.n) {
		names = arena_alloc(r->a, av->nkw * sizeof(*names));
		for (i = 0; i < in->nkw; i++)
			names[i] = in->kwnames[i];
		for (i = 0; i < dstar.u.dict.n; i++) {
			names[in->nkw + i] = dstar.u.dict.keys[i];
			av->kwargs[in->nkw + i] = dstar.u.dict.vals[i];
		}
		av->kwnames = names;
	}
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


/*
 * Methods that change a list or a dict. A list or dict is a value here:
 * the method makes a new one and binds it where the old one was bound
 * (obj), so that another name bound to the old one never sees a change
 * half made. 1 when m is not one of them.
 */
static int tpl_mutate(struct tpl_run *r, const struct tpl_expr *e, struct val *obj,
		      const struct val *args, size_t nargs, size_t nkw, struct val *out)
{
	const char *m = e->u.call.name;
	struct val c;
	size_t i, n;
	int rc;

	*out = val_none();
	if (obj->kind == V_LIST && (!strcmp(m, "append") || !strcmp(m, "extend"))) {
		if ((rc = tpl_arity(r, e, nargs, nkw, 1, 1)))
			return rc;
		if (m[0] == 'e' && args[0].kind != V_LIST)
			return tpl_fail(r, e->line, e->col, "extend() expects a list, not %s", tpl_type(&args[0]));
		n = m[0] == 'a' ? 1 : args[0].u.list.n;
		c = tpl_list_copy(r, obj, n);
		for (i = 0; i < n; i++)
			c.u.list.items[c.u.list.n++] = m[0] == 'a' ? args[0] : args[0].u.list.items[i];
		*obj = c;
		return 0;
	}
	if (obj->kind == V_LIST && (!strcmp(m, "pop") || !strcmp(m, "remove") || !strcmp(m, "insert"))) {
		double d = m[0] == 'p' ? -1 : 0;
		long long at = 0;

		if ((rc = tpl_arity(r, e, nargs, nkw, m[0] == 'p' ? 0 : m[0] == 'r' ? 1 : 2, m[0] == 'i' ? 2 : 1)))
			return rc;
		if (m[0] == 'r') {
			for (at = 0; at < (long long)obj->u.list.n; at++)
				if (val_equal(&obj->u.list.items[at], &args[0]))
					break;
			if (at == (long long)obj->u.list.n)
				return tpl_fail(r, e->line, e->col, "remove(): the value is not in the list");
		} else {
			if (nargs && !tpl_num(&args[0], &d))
				return tpl_fail(r, e->line, e->col, "%s() index must be a number", m);
			at = val_num_ll(d);
			if (at < 0)
				at += (long long)obj->u.list.n + (m[0] == 'i');
			if (m[0] == 'i')
				at = at < 0 ? 0 : at > (long long)obj->u.list.n ? (long long)obj->u.list.n : at;
			else if (at < 0 || at >= (long long)obj->u.list.n)
				return tpl_fail(r, e->line, e->col, "pop index out of range");
		}
		c = val_list_of(r->a, obj->u.list.n + 1);
		c.u.list.n = 0;
		for (i = 0; i <= obj->u.list.n; i++) {
			if ((long long)i == at && m[0] == 'i')
				c.u.list.items[c.u.list.n++] = args[1];
			if (i == obj->u.list.n)
				break;
			if ((long long)i == at && m[0] != 'i')
				*out = m[0] == 'p' ? obj->u.list.items[i] : val_none();
			else
				c.u.list.items[c.u.list.n++] = obj->u.list.items[i];
		}
		*obj = c;
		return 0;
	}
	if (obj->kind == V_DICT && (!strcmp(m, "update") || !strcmp(m, "setdefault") || !strcmp(m, "pop"))) {
		const struct val *v;

		if (m[0] == 'u') {
			if ((rc = tpl_arity(r, e, nargs, nkw, 1, 1)))
				return rc;
			if (args[0].kind != V_DICT)
				return tpl_fail(r, e->line, e->col, "update() expects a dict, not %s", tpl_type(&args[0]));
			*obj = val_dict_merge(r->a, obj, &args[0]);
			return 0;
		}
		if ((rc = tpl_arity(r, e, nargs, nkw, 1, 2)))
			return rc;
		if (args[0].kind != V_STR)
			return tpl_fail(r, e->line, e->col, "dict keys are strings, not %s", tpl_type(&args[0]));
		v = val_get(obj, args[0].u.str.s);
		if (m[0] == 's') {
			*out = v ? *v : nargs > 1 ? args[1] : val_none();
			if (!v) {
				c = val_dict_new();
				val_dict_set(r->a, &c, args[0].u.str.s, *out);
				*obj = val_dict_merge(r->a, obj, &c);
			}
			return 0;
		}
		if (!v && nargs < 2)
			return tpl_fail(r, e->line, e->col, "key '%s' not found", args[0].u.str.s);
		*out = v ? *v : args[1];
		c = val_dict_new();
		for (i = 0; i < obj->u.dict.n; i++)
			if (strcmp(obj->u.dict.keys[i], args[0].u.str.s))
				val_dict_append(r->a, &c, obj->u.dict.keys[i], obj->u.dict.vals[i]);
		*obj = c;
		return 0;
	}
	return 1;
}

static int tpl_method(struct tpl_run *r, const struct tpl_expr *e, struct val *obj,
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
	if ((rc = tpl_mutate(r, e, obj, args, nargs, nkw, out)) <= 0)
		return rc;
	/* pkg.macro() of a package that lacks it: the host may know why (dbt.date_spine) */
	if (e->u.call.obj->kind == E_NAME && obj->kind == V_DICT)
		return tpl_fail(r, e->line, e->col, "'%s' has no macro or method '%s'%s", e->u.call.obj->u.name, m,
				tpl_why(r, arena_printf(r->a, "%s.%s", e->u.call.obj->u.name, m)));
	return tpl_fail(r, e->line, e->col, "'%s' has no method '%s'", tpl_type(obj), m);
}

static void tpl_buf_truncate(struct buf *b, size_t len)
{
	if (b->cap) {
		b->len = len;
		b->s[len] = '\0';
	}
}

/* A host function: 0, 1 when the host does not know it, or an error with the call's place. */
static int tpl_host_call(struct tpl_run *r, const struct tpl_expr *e, const char *name,
			 const struct val *self, const struct tpl_argv *av, const struct val *body,
			 struct val *out)
{
	struct tpl_call c;
	int rc;

	if (!r->host || !r->host->call)
		return 1;
	memset(&c, 0, sizeof(c));
	c.name = name;
	c.args = av->args;
	c.nargs = av->nargs;
	c.kwnames = av->kwnames;
	c.kwargs = av->kwargs;
	c.nkw = av->nkw;
	c.path = r->t->path;
	c.line = e->line;
	c.col = e->col;
	c.arena = r->a;
	c.self = self;
	c.body = body;
	*out = val_none();
	if ((rc = r->host->call(r->host->ud, &c, out, r->err)) >= 0)
		return rc;
	if (r->err->code >= 0)
		r->err->code = rc;
	return err_prefix(r->err, "%s:%d:%d", r->t->path, e->line, e->col);
}

/*
 * An error inside a macro, seen from its call: the call's place goes in
 * front, so that the message reads as the chain of calls, outermost first.
 */
static int tpl_chain(struct tpl_run *r, const struct tpl_expr *e)
{
	char old[sizeof(r->err->msg)], link[300];
	int code = r->err->code;
	size_t n;

	/* A recursion repeats one link: it is printed once. A chain too long keeps its inner end. */
	n = (size_t)snprintf(link, sizeof(link), "%s:%d:%d \u2192 ", r->t->path, e->line, e->col);
	if (!strncmp(r->err->msg, link, n) || strlen(r->err->msg) + n >= sizeof(old) / 2)
		return code;
	memcpy(old, r->err->msg, sizeof(old));
	err_set(r->err, code, "%s%s", link, old);
	return code;
}

/* Render body with scope s as the innermost and t as the template, into *text. */
static int tpl_render_into(struct tpl_run *r, const struct tpl *t, struct tpl_scope *s,
			   const struct tpl_node *body, struct val *text)
{
	const struct tpl *saved_t = r->t;
	struct tpl_scope *saved_scope = r->scope;
	size_t start = r->out->len;
	int rc;

	r->t = t;
	r->scope = s;
	rc = tpl_render_nodes(r, body);
	if (rc == 0)
		*text = tpl_strv(r, r->out->s + start, r->out->len - start);
	tpl_buf_truncate(r->out, start);
	r->t = saved_t;
	r->scope = saved_scope;
	return rc;
}

/* Bind a macro's parameters in s from av, as Python binds a call's arguments. */
static int tpl_bind_params(struct tpl_run *r, const struct tpl_expr *e, const struct tpl_macro *m,
			   struct tpl_scope *s, const struct tpl_argv *av)
{
	struct val extra = val_list_new(), kw = val_dict_new(), v;
	size_t i, k;
	int rc;

	for (i = 0; i < av->nargs; i++) {
		if (i < m->nparams)
			tpl_scope_set(r, m->params[i], av->args[i]);
		else if (m->uses_varargs)
			val_list_push(r->a, &extra, av->args[i]);
		else
			return tpl_fail(r, e->line, e->col, "macro '%s' takes %zu argument%s (%zu given)",
					m->name, m->nparams, m->nparams == 1 ? "" : "s", av->nargs);
	}
	for (i = 0; i < av->nkw; i++) {
		for (k = 0; k < m->nparams && strcmp(m->params[k], av->kwnames[i]); k++)
			;
		if (k < m->nparams && k < av->nargs)
			return tpl_fail(r, e->line, e->col, "macro '%s' got two values for '%s'",
					m->name, av->kwnames[i]);
		if (k < m->nparams)
			tpl_scope_set(r, m->params[k], av->kwargs[i]);
		else if (m->uses_kwargs)
			val_dict_set(r->a, &kw, av->kwnames[i], av->kwargs[i]);
		else
			return tpl_fail(r, e->line, e->col, "macro '%s' has no parameter '%s'",
					m->name, av->kwnames[i]);
	}
	/* Defaults are evaluated at the call, in the macro's own file and scope. */
	for (i = av->nargs; i < m->nparams; i++) {
		if (tpl_scope_has(s, m->params[i]))
			continue;
		v = val_none();
		if (m->defaults[i]) {
			const struct tpl *saved = r->t;

			r->t = m->t;
			rc = tpl_eval(r, m->defaults[i], &v);
			r->t = saved;
			if (rc)
				return rc;
		}
		tpl_scope_set(r, m->params[i], v);
	}
	if (m->uses_varargs)
		tpl_scope_set(r, "varargs", extra);
	if (m->uses_kwargs)
		tpl_scope_set(r, "kwargs", kw);
	if (av->caller)
		tpl_scope_set(r, "caller", *av->caller);
	return 0;
}

/*
 * Call macro m: its body renders in a scope of its own that sees only its
 * parameters (free names go to the host, as for the model), and gives
 * what it printed, or what return() gave.
 */
static int tpl_call_macro(struct tpl_run *r, const struct tpl_expr *e, const struct tpl_macro *m,
			  const struct tpl_argv *av, struct val *out)
{
	struct tpl_scope s, *saved = r->scope;
	int rc;

	if (r->calls >= TPL_MAX_CALLS)
		return tpl_fail(r, e->line, e->col, "macro '%s': more than %d calls nested (a recursion that never ends?)",
				m->name, TPL_MAX_CALLS);
	if (++r->total_calls > TPL_MAX_TOTAL_CALLS)
		return tpl_fail(r, e->line, e->col, "macro '%s': more than %d macro calls in one render "
				"(a recursion that branches?)", m->name, TPL_MAX_TOTAL_CALLS);
	memset(&s, 0, sizeof(s));
	/* A macro of the template being rendered sees its top-level names, as in Jinja. */
	s.up = m->t == r->top ? r->root : NULL;
	r->scope = &s;
	rc = tpl_bind_params(r, e, m, &s, av);
	r->scope = saved;
	if (rc)
		return rc;
	if (r->host && r->host->on_macro)
		r->host->on_macro(r->host->ud, m);
	r->calls++;
	rc = tpl_render_into(r, m->t, &s, m->body, out);
	r->calls--;
	if (rc == TPL_RETURN) {
		*out = r->ret;
		return 0;
	}
	return rc ? tpl_chain(r, e) : 0;
}

static int tpl_call_value(struct tpl_run *r, const struct tpl_expr *e, const struct val *f,
			  const struct tpl_argv *av, struct val *out)
{
	const struct tpl_closure *c;
	struct val body;
	struct tpl_scope s;
	int rc;

	switch (f->u.fn.tag) {
	case TPL_FN_MACRO:
		return tpl_call_macro(r, e, f->u.fn.fn, av, out);
	case TPL_FN_CALLER:
		c = f->u.fn.fn;
		if (r->calls >= TPL_MAX_CALLS)
			return tpl_fail(r, e->line, e->col, "caller(): more than %d calls nested", TPL_MAX_CALLS);
		memset(&s, 0, sizeof(s));
		s.up = c->scope;
		r->calls++;
		rc = tpl_render_into(r, c->t, &s, c->body, out);
		r->calls--;
		return rc;
	case TPL_FN_HOST:
		/* A host function called by {% call %} gets the block's text. */
		if (av->caller && (rc = tpl_call_value(r, e, av->caller, &(struct tpl_argv){ 0 }, &body)))
			return rc;
		rc = tpl_host_call(r, e, f->u.fn.fn, f->u.fn.self, av, av->caller ? &body : NULL, out);
		if (rc > 0)
			return tpl_fail(r, e->line, e->col, "undefined function '%s'", (const char *)f->u.fn.fn);
		return rc;
	}
	return tpl_fail(r, e->line, e->col, "'%s' is not callable", tpl_type(f));
}

/* The binding an expression names, when it is a variable or a key of one; else NULL. */
static struct val *tpl_lvalue(struct tpl_run *r, const struct tpl_expr *e)
{
	struct val *o;
	size_t i;

	if (e->kind == E_NAME)
		return tpl_scope_get(r, e->u.name);
	if (e->kind != E_ATTR || !(o = tpl_lvalue(r, e->u.attr.obj)) || o->kind != V_DICT)
		return NULL;
	for (i = 0; i < o->u.dict.n; i++)
		if (!strcmp(o->u.dict.keys[i], e->u.attr.name))
			return &o->u.dict.vals[i];
	return NULL;
}

/* namespace(), dict(), zip(): functions of the template itself. 1 when name is none of them. */
static int tpl_builtin(struct tpl_run *r, const struct tpl_expr *e, const char *name,
		       const struct tpl_argv *av, struct val *out)
{
	size_t i, j, n;

	if (!strcmp(name, "range"))
		return tpl_range(r, e, av->args, av->nargs, av->nkw, out);
	if (!strcmp(name, "namespace") || !strcmp(name, "dict")) {
		if (av->nargs > 1 || (av->nargs && av->args[0].kind != V_DICT))
			return tpl_fail(r, e->line, e->col, "%s() takes keyword arguments or one dict", name);
		*out = av->nargs ? val_dict_merge(r->a, &av->args[0], NULL) : val_dict_new();
		for (i = 0; i < av->nkw; i++)
			val_dict_set(r->a, out, av->kwnames[i], av->kwargs[i]);
		return 0;
	}
	if (!strcmp(name, "zip")) {
		if (av->nkw)
			return tpl_fail(r, e->line, e->col, "zip() takes no keyword arguments");
		for (n = (size_t)-1, i = 0; i < av->nargs; i++) {
			if (av->args[i].kind != V_LIST)
				return tpl_fail(r, e->line, e->col, "zip() takes lists, not %s", tpl_type(&av->args[i]));
			n = av->args[i].u.list.n < n ? av->args[i].u.list.n : n;
		}
		*out = val_list_of(r->a, av->nargs ? n : 0);
		for (j = 0; av->nargs && j < n; j++) {
			out->u.list.items[j] = val_list_of(r->a, av->nargs);
			for (i = 0; i < av->nargs; i++)
				out->u.list.items[j].u.list.items[i] = av->args[i].u.list.items[j];
		}
		return 0;
	}
	return 1;
}

static int tpl_eval_call_with(struct tpl_run *r, const struct tpl_expr *e, const struct val *caller,
			      struct val *out)
{
	const struct tpl_args *ar = &e->u.call.args;
	const char *name = e->u.call.name;
	const struct tpl_macro *m;
	const struct val *v;
	struct val obj, f, *slot = NULL;
	struct tpl_argv av;
	int rc;

	if (e->u.call.obj) {
		if (name && (slot = tpl_lvalue(r, e->u.call.obj)))
			obj = *slot;
		else if ((rc = tpl_eval(r, e->u.call.obj, &obj)))
			return rc;
	}
	if ((rc = tpl_eval_args(r, ar, &av)))
		return rc;
	av.caller = caller;
	if (e->u.call.obj && !name) {
		if (obj.kind != V_FUNC)
			return tpl_fail(r, e->line, e->col, "'%s' is not callable", tpl_type(&obj));
		return tpl_call_value(r, e, &obj, &av, out);
	}
	if (e->u.call.obj) {
		/* A function held by a dict (a package's macros) or by a relation. */
		v = val_get(obj.kind == V_DICT ? &obj : val_attrs(&obj), name);
		if (v && v->kind == V_FUNC)
			return tpl_call_value(r, e, v, &av, out);
		if (caller)
			return tpl_fail(r, e->line, e->col, "{%% call %%} expects a macro, not the method '%s'", name);
		return tpl_method(r, e, slot ? slot : &obj, av.args, av.nargs, av.nkw, out);
	}
	if (!strcmp(name, "return")) {
		if (!r->calls)
			return tpl_fail(r, e->line, e->col, "return() outside a macro");
		if (av.nargs > 1 || av.nkw)
			return tpl_fail(r, e->line, e->col, "return() takes one argument");
		r->ret = av.nargs ? av.args[0] : val_none();
		return TPL_RETURN;
	}
	if ((v = tpl_scope_get(r, name)) && v->kind == V_FUNC)
		return tpl_call_value(r, e, v, &av, out);
	if ((m = tpl_local_macro(r->t, name)))
		return tpl_call_macro(r, e, m, &av, out);
	if ((rc = tpl_builtin(r, e, name, &av, out)) <= 0)
		return rc;
	if (!caller && (rc = tpl_host_call(r, e, name, NULL, &av, NULL, out)) <= 0)
		return rc;
	f = val_none();
	if (r->host && r->host->lookup && r->host->lookup(r->host->ud, name, r->a, &f) == 0 && f.kind == V_FUNC)
		return tpl_call_value(r, e, &f, &av, out);
	if (caller) {
		f.kind = V_FUNC;
		f.u.fn.fn = name;
		f.u.fn.tag = TPL_FN_HOST;
		return tpl_call_value(r, e, &f, &av, out);
	}
	return tpl_fail(r, e->line, e->col, "undefined function '%s'%s", name, tpl_why(r, name));
}

static int tpl_eval_call(struct tpl_run *r, const struct tpl_expr *e, struct val *out)
{
	return tpl_eval_call_with(r, e, NULL, out);
}

static int tpl_apply_test(struct tpl_run *r, const struct tpl_expr *e, int id, const struct val *v,
			  const struct val *arg, int *res)
{
	struct tpl_cmp c = { 0, e->line, e->col, NULL };
	double d, d2;
	size_t i;

	switch (id) {
	case T_DEFINED: *res = 1; return 0;
	case T_UNDEFINED: *res = 0; return 0;
	case T_NONE: *res = v->kind == V_NONE; return 0;
	case T_STRING: *res = v->kind == V_STR; return 0;
	case T_NUMBER: *res = v->kind == V_NUM; return 0;
	case T_BOOLEAN: *res = v->kind == V_BOOL; return 0;
	case T_MAPPING: *res = v->kind == V_DICT; return 0;
	case T_SEQUENCE: *res = v->kind == V_LIST || v->kind == V_DICT || v->kind == V_STR; return 0;
	case T_TRUE: *res = v->kind == V_BOOL && v->u.b; return 0;
	case T_FALSE: *res = v->kind == V_BOOL && !v->u.b; return 0;
	case T_INTEGER: *res = v->kind == V_NUM && v->u.num == floor(v->u.num); return 0;
	case T_FLOAT: *res = v->kind == V_NUM && v->u.num != floor(v->u.num); return 0;
	case T_CALLABLE: *res = v->kind == V_FUNC; return 0;
	case T_LOWER:
	case T_UPPER:
		*res = v->kind == V_STR;
		for (i = 0; *res && i < v->u.str.len; i++)
			if (id == T_LOWER ? isupper((unsigned char)v->u.str.s[i]) : islower((unsigned char)v->u.str.s[i]))
				*res = 0;
		return 0;
	case T_ODD:
	case T_EVEN:
	case T_DIVISIBLEBY:
		if (!tpl_num(v, &d) || (id == T_DIVISIBLEBY && !tpl_num(arg, &d2)))
			return tpl_fail(r, e->line, e->col, "test '%s' needs numbers", e->u.call.name ? e->u.call.name : "?");
		if (id == T_DIVISIBLEBY)
			*res = d2 != 0 && fmod(d, d2) == 0;
		else
			*res = fmod(fabs(d), 2) == (id == T_ODD);
		return 0;
	case T_SAMEAS:
		*res = v->kind == arg->kind && val_equal(v, arg);
		return 0;
	case T_IN:
		return tpl_contains(r, &c, arg, v, res);
	default:
		c.op = id == T_EQ ? OP_EQ : id == T_NE ? OP_NE : id == T_LT ? '<' : id == T_LE ? OP_LE :
		       id == T_GT ? '>' : OP_GE;
		return tpl_compare(r, &c, v, arg, res);
	}
}

static const struct val *tpl_kwarg(const struct tpl_argv *av, const char *name)
{
	size_t i;

	for (i = 0; i < av->nkw; i++)
		if (!strcmp(av->kwnames[i], name))
			return &av->kwargs[i];
	return NULL;
}

/* item.path, path dotted ("a.b") with numbers for list indexes; none where missing. */
static struct val tpl_attr_path(struct tpl_run *r, const struct val *item, const char *path)
{
	struct val cur = *item;
	const struct val *v;
	const char *dot;
	char *key, *end;
	long idx;

	while (*path) {
		dot = strchr(path, '.');
		key = arena_strndup(r->a, path, dot ? (size_t)(dot - path) : strlen(path));
		path = dot ? dot + 1 : path + strlen(path);
		idx = strtol(key, &end, 10);
		if (cur.kind == V_LIST && *key && !*end && idx >= 0 && (size_t)idx < cur.u.list.n)
			cur = cur.u.list.items[idx];
		else if ((v = val_get(cur.kind == V_DICT ? &cur : val_attrs(&cur), key)))
			cur = *v;
		else
			return val_none();
	}
	return cur;
}

/* An attribute= argument as a path: text, or a number (map(attribute=0) on rows). NULL otherwise. */
static const char *tpl_attr_arg(struct tpl_run *r, const struct val *v)
{
	if (!v)
		return NULL;
	if (v->kind == V_STR)
		return v->u.str.s;
	if (v->kind == V_NUM && v->u.num >= 0 && v->u.num == floor(v->u.num) && v->u.num < 1e9)
		return arena_printf(r->a, "%lld", (long long)v->u.num);
	return NULL;
}

/* Order for sort, min, max: numbers, then strings (case folded unless cs), by kind otherwise. */
static int tpl_order(const struct val *a, const struct val *b, int cs)
{
	if (a->kind == V_STR && b->kind == V_STR && !cs) {
		int c = strcasecmp(a->u.str.s, b->u.str.s);
		return c < 0 ? -1 : c > 0;
	}
	return val_compare(a, b);
}

/* A stable merge sort of items by keys (both n long; tmp holds 2n). */
static void tpl_sort(struct val *items, struct val *keys, struct val *tmp, size_t n, int cs, int rev)
{
	size_t mid = n / 2, i = 0, j = mid, k = 0;
	int o;

	if (n < 2)
		return;
	tpl_sort(items, keys, tmp, mid, cs, rev);
	tpl_sort(items + mid, keys + mid, tmp, n - mid, cs, rev);
	while (i < mid || j < n) {
		o = i < mid && j < n ? tpl_order(&keys[i], &keys[j], cs) * (rev ? -1 : 1) : i < mid ? -1 : 1;
		if (o <= 0) {
			tmp[k] = items[i];
			tmp[n + k++] = keys[i++];
		} else {
			tmp[k] = items[j];
			tmp[n + k++] = keys[j++];
		}
	}
	memcpy(items, tmp, n * sizeof(*items));
	memcpy(keys, tmp + n, n * sizeof(*keys));
}

static int tpl_iter_items(struct tpl_run *r, const struct tpl_expr *e, const struct val *seq,
			  struct val *items);

/*
 * `as_bool`, `as_number`, `as_native`: dbt's filters that turn the text a
 * render gave back into a value: true/false, a number, or the text.
 */
static struct val tpl_native(const struct val *v, enum tpl_filter_id id)
{
	const char *s;
	char *end;
	double d;

	if (v->kind != V_STR)
		return *v;
	s = v->u.str.s;
	if (id != F_AS_NUMBER && (!strcmp(s, "True") || !strcmp(s, "true")))
		return val_bool(1);
	if (id != F_AS_NUMBER && (!strcmp(s, "False") || !strcmp(s, "false")))
		return val_bool(0);
	if (id != F_AS_BOOL && *s && !isspace((unsigned char)*s)) {
		d = strtod(s, &end);
		if (!*end && isfinite(d))
			return val_num(d);
	}
	if (id == F_AS_NATIVE && (!strcmp(s, "None") || !strcmp(s, "none")))
		return val_none();
	return *v;
}

static int tpl_apply_filter(struct tpl_run *r, const struct tpl_expr *e, const struct tpl_filter_def *f,
			    struct val v, const struct tpl_argv *av, struct val *out)
{
	const char *s, *s1 = NULL, *s2;
	const struct val *kw;
	struct val list, item, key;
	size_t n, l1 = 0, l2, i, j;
	double d, d2;
	int rc, res;

	if ((f->id == F_MAP || f->id == F_SELECT || f->id == F_REJECT || f->id == F_SELECTATTR ||
	     f->id == F_REJECTATTR || f->id == F_UNIQUE || f->id == F_SORT || f->id == F_LIST ||
	     f->id == F_SUM || f->id == F_MIN || f->id == F_MAX || (f->id == F_REVERSE && v.kind != V_STR)) &&
	    (rc = tpl_iter_items(r, e, &v, &list)))
		return rc;
	switch (f->id) {
	case F_UPPER:
	case F_LOWER:
		tpl_str(r, &v, &s, &n);
		*out = tpl_case(r, s, n, f->id == F_UPPER);
		return 0;
	case F_STRING:
		tpl_str(r, &v, &s, &n);
		*out = val_strn(s, n);
		return 0;
	case F_JOIN:
		if (v.kind != V_LIST)
			return tpl_fail(r, e->line, e->col, "join expects a list, not %s", tpl_type(&v));
		if (av->nargs)
			tpl_str(r, &av->args[0], &s1, &l1);
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
		if (av->nargs == 3 && !tpl_num(&av->args[2], &d))
			return tpl_fail(r, e->line, e->col, "replace count must be a number");
		tpl_str(r, &v, &s, &n);
		tpl_str(r, &av->args[0], &s1, &l1);
		tpl_str(r, &av->args[1], &s2, &l2);
		*out = tpl_replace(r, s, n, s1, l1, s2, l2, val_num_ll(d));
		return 0;
	case F_TRIM:
		tpl_str(r, &v, &s, &n);
		if (av->nargs && av->args[0].kind != V_NONE)
			tpl_str(r, &av->args[0], &s1, &l1);
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
				if (!av->nargs) {
					*out = val_num(0);
					return 0;
				}
				*out = av->args[0];
				return 0;
			}
		}
		*out = val_num(trunc(d));
		return 0;
	case F_FIRST:
	case F_LAST:
		if (v.kind == V_LIST) {
			*out = !v.u.list.n ? val_none() : v.u.list.items[f->id == F_FIRST ? 0 : v.u.list.n - 1];
			return 0;
		}
		if (v.kind == V_STR) {
			if (tpl_char_at(r, &v, f->id == F_FIRST ? 0 : -1, out))
				*out = val_str("");
			return 0;
		}
		return tpl_fail(r, e->line, e->col, "%s expects a list or string, not %s",
				f->name, tpl_type(&v));
	case F_AS_BOOL:
	case F_AS_NUMBER:
	case F_AS_NATIVE:
		*out = tpl_native(&v, f->id);
		return 0;
	case F_DEFAULT:
		*out = v.kind != V_NONE ? v : av->nargs ? av->args[0] : val_str("");
		return 0;
	case F_FLOAT:
		if (!tpl_num(&v, &d)) {
			char *end = NULL;

			d = v.kind == V_STR ? strtod(v.u.str.s, &end) : 0;
			if (!end || end == v.u.str.s || *end || !isfinite(d)) {
				kw = av->nargs ? &av->args[0] : tpl_kwarg(av, "default");
				*out = kw ? *kw : val_num(0);
				return 0;
			}
		}
		*out = val_num(d);
		return 0;
	case F_ABS:
		if (!tpl_num(&v, &d))
			return tpl_fail(r, e->line, e->col, "abs expects a number, not %s", tpl_type(&v));
		*out = val_num(fabs(d));
		return 0;
	case F_ROUND: {
		double scale;
		const char *method = "common";

		d2 = 0;
		if (!tpl_num(&v, &d) || (av->nargs && !tpl_num(&av->args[0], &d2)) ||
		    ((kw = tpl_kwarg(av, "precision")) && !tpl_num(kw, &d2)))
			return tpl_fail(r, e->line, e->col, "round expects numbers");
		if (av->nargs > 1 && av->args[1].kind == V_STR)
			method = av->args[1].u.str.s;
		if ((kw = tpl_kwarg(av, "method")) && kw->kind == V_STR)
			method = kw->u.str.s;
		scale = pow(10, d2 > 15 ? 15 : d2 < -15 ? -15 : floor(d2));
		d *= scale;
		d = !strcmp(method, "ceil") ? ceil(d) : !strcmp(method, "floor") ? floor(d) : round(d);
		*out = val_num(d / scale);
		return 0;
	}
	case F_TITLE:
	case F_CAPITALIZE: {
		char *t;
		int start = 1;

		tpl_str(r, &v, &s, &n);
		t = arena_strndup(r->a, s, n);
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)t[i];

			t[i] = (char)(start ? toupper(c) : tolower(c));
			start = f->id == F_TITLE ? !isalnum(c) : 0;
		}
		*out = val_strn(t, n);
		return 0;
	}
	case F_WORDCOUNT:
		tpl_str(r, &v, &s, &n);
		for (i = 0, j = 0; i < n; i++)
			if ((isalnum((unsigned char)s[i]) || s[i] == '_') &&
			    (!i || !(isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_')))
				j++;
		*out = val_num((double)j);
		return 0;
	case F_INDENT: {
		struct val width = av->nargs ? av->args[0] : (kw = tpl_kwarg(av, "width")) ? *kw : val_num(4);
		int first = av->nargs > 1 ? val_truthy(&av->args[1]) : (kw = tpl_kwarg(av, "first")) && val_truthy(kw);
		int blank = av->nargs > 2 ? val_truthy(&av->args[2]) : (kw = tpl_kwarg(av, "blank")) && val_truthy(kw);
		const char *pad;
		size_t pl;

		if (width.kind == V_STR) {
			pad = width.u.str.s;
			pl = width.u.str.len;
		} else {
			if (!tpl_num(&width, &d) || d < 0 || d > 1000)
				return tpl_fail(r, e->line, e->col, "indent width must be a number from 0 to 1000");
			pl = (size_t)d;
			pad = memset(arena_alloc(r->a, pl + 1), ' ', pl);
		}
		tpl_str(r, &v, &s, &n);
		buf_reset(&r->tmp);
		for (i = 0; i < n; i = j + 1) {
			for (j = i; j < n && s[j] != '\n'; j++)
				;
			if ((i ? 1 : first) && (blank || j > i))
				buf_add(&r->tmp, pad, pl);
			buf_add(&r->tmp, s + i, j - i);
			if (j < n)
				buf_addc(&r->tmp, '\n');
		}
		*out = tpl_strv(r, r->tmp.s, r->tmp.len);
		return 0;
	}
	case F_LIST:
		*out = list;
		return 0;
	case F_REVERSE:
		if (v.kind == V_STR) {
			char *t = arena_alloc(r->a, v.u.str.len + 1);

			for (i = 0; i < v.u.str.len; i++)
				t[i] = v.u.str.s[v.u.str.len - 1 - i];
			*out = val_strn(t, v.u.str.len);
			return 0;
		}
		*out = val_list_of(r->a, list.u.list.n);
		for (i = 0; i < list.u.list.n; i++)
			out->u.list.items[i] = list.u.list.items[list.u.list.n - 1 - i];
		return 0;
	case F_UNIQUE:
	case F_SORT:
	case F_MIN:
	case F_MAX:
	case F_SUM: {
		int cs = (kw = tpl_kwarg(av, "case_sensitive")) && val_truthy(kw);
		int rev = f->id == F_SORT && (av->nargs ? val_truthy(&av->args[0]) : (kw = tpl_kwarg(av, "reverse")) && val_truthy(kw));
		const struct val *attr = tpl_kwarg(av, "attribute");
		struct val *keys = arena_alloc(r->a, (list.u.list.n + 1) * sizeof(*keys));

		if (f->id == F_SORT && av->nargs > 2)
			attr = &av->args[2];
		if (attr && attr->kind != V_STR)
			return tpl_fail(r, e->line, e->col, "%s: attribute must be a string", f->name);
		for (i = 0; i < list.u.list.n; i++)
			keys[i] = attr ? tpl_attr_path(r, &list.u.list.items[i], attr->u.str.s) : list.u.list.items[i];
		if (f->id == F_SUM) {
			d = 0;
			if ((kw = tpl_kwarg(av, "start")) && !tpl_num(kw, &d))
				return tpl_fail(r, e->line, e->col, "sum: start must be a number");
			for (i = 0; i < list.u.list.n; i++) {
				if (!tpl_num(&keys[i], &d2))
					return tpl_fail(r, e->line, e->col, "sum: cannot add %s", tpl_type(&keys[i]));
				d += d2;
			}
			*out = val_num(d);
			return 0;
		}
		if (f->id == F_MIN || f->id == F_MAX) {
			*out = val_none();
			for (i = j = 0; i < list.u.list.n; i++)
				if (tpl_order(&keys[i], &keys[j], cs) * (f->id == F_MIN ? -1 : 1) > 0)
					j = i;
			if (list.u.list.n)
				*out = list.u.list.items[j];
			return 0;
		}
		if (f->id == F_UNIQUE) {
			*out = val_list_new();
			for (i = 0; i < list.u.list.n; i++) {
				for (j = 0; j < i; j++)
					if (cs || keys[i].kind != V_STR || keys[j].kind != V_STR
					    ? val_equal(&keys[i], &keys[j]) : !strcasecmp(keys[i].u.str.s, keys[j].u.str.s))
						break;
				if (j == i)
					val_list_push(r->a, out, list.u.list.items[i]);
			}
			return 0;
		}
		*out = tpl_list_copy(r, &list, 0);
		tpl_sort(out->u.list.items, keys, arena_alloc(r->a, (2 * list.u.list.n + 1) * sizeof(*keys)),
			 list.u.list.n, cs, rev);
		return 0;
	}
	case F_SELECT:
	case F_REJECT:
	case F_SELECTATTR:
	case F_REJECTATTR: {
		int byattr = f->id == F_SELECTATTR || f->id == F_REJECTATTR, want = f->id == F_SELECT || f->id == F_SELECTATTR;
		const struct val *tname = av->nargs > (size_t)byattr ? &av->args[byattr] : NULL;
		const struct val *targ = av->nargs > (size_t)byattr + 1 ? &av->args[byattr + 1] : NULL;
		int t = -1;

		if (byattr && av->args[0].kind != V_STR)
			return tpl_fail(r, e->line, e->col, "%s: the attribute must be a string", f->name);
		if (tname && (tname->kind != V_STR || (t = tpl_test_find(tname->u.str.s, tname->u.str.len)) < 0))
			return tpl_fail(r, e->line, e->col, "%s: unknown test %s", f->name,
					tname->kind == V_STR ? tname->u.str.s : "");
		if (t >= 0 && tpl_tests[t].nargs && !targ)
			return tpl_fail(r, e->line, e->col, "%s: test '%s' needs an argument", f->name, tpl_tests[t].name);
		*out = val_list_new();
		for (i = 0; i < list.u.list.n; i++) {
			item = byattr ? tpl_attr_path(r, &list.u.list.items[i], av->args[0].u.str.s) : list.u.list.items[i];
			if (t < 0)
				res = val_truthy(&item);
			else if (byattr && item.kind == V_NONE && tpl_tests[t].id == T_DEFINED)
				res = 0;
			else if (byattr && item.kind == V_NONE && tpl_tests[t].id == T_UNDEFINED)
				res = 1;
			else if ((rc = tpl_apply_test(r, e, tpl_tests[t].id, &item, targ, &res)))
				return rc;
			if (res == want)
				val_list_push(r->a, out, list.u.list.items[i]);
		}
		return 0;
	}
	case F_MAP: {
		const struct val *attr = tpl_kwarg(av, "attribute"), *def = tpl_kwarg(av, "default");
		const struct tpl_filter_def *g = NULL;
		struct tpl_argv rest = *av;
		const char *path = tpl_attr_arg(r, attr);

		if (!attr) {
			if (!av->nargs || av->args[0].kind != V_STR ||
			    !(g = tpl_filter_find(av->args[0].u.str.s, av->args[0].u.str.len)))
				return tpl_fail(r, e->line, e->col, "map: give attribute='name' or the name of a filter");
			rest.args++;
			rest.nargs--;
			rest.nkw = 0;
			if (rest.nargs < g->min || rest.nargs > g->max)
				return tpl_fail(r, e->line, e->col, "map: filter '%s' takes %zu to %zu arguments",
						g->name, g->min, g->max);
		} else if (!path) {
			return tpl_fail(r, e->line, e->col, "map: attribute must be a name or an index");
		}
		*out = val_list_of(r->a, list.u.list.n);
		for (i = 0; i < list.u.list.n; i++) {
			if (attr) {
				key = tpl_attr_path(r, &list.u.list.items[i], path);
				out->u.list.items[i] = key.kind == V_NONE && def ? *def : key;
			} else if ((rc = tpl_apply_filter(r, e, g, list.u.list.items[i], &rest, &out->u.list.items[i]))) {
				return rc;
			}
		}
		return 0;
	}
	case F_HOST: {
		struct tpl_argv one = *av;
		struct val *args = arena_alloc(r->a, (av->nargs + 1) * sizeof(*args));

		args[0] = v;
		if (av->nargs)
			memcpy(args + 1, av->args, av->nargs * sizeof(*args));
		one.args = args;
		one.nargs = av->nargs + 1;
		rc = tpl_host_call(r, e, f->name, NULL, &one, NULL, out);
		return rc > 0 ? tpl_fail(r, e->line, e->col, "filter '%s' is not available here", f->name) : rc;
	}
	}
	return tpl_fail(r, e->line, e->col, "filter '%s' is not implemented", f->name);
}

static int tpl_eval_filter(struct tpl_run *r, const struct tpl_expr *e, struct val *out)
{
	const struct tpl_args *ar = &e->u.call.args;
	const struct tpl_filter_def *f = tpl_filter_find(e->u.call.name, strlen(e->u.call.name));
	struct tpl_argv av;
	struct val v, flag;
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
	if ((rc = tpl_eval(r, e->u.call.obj, &v)) || (rc = tpl_eval_args(r, ar, &av)))
		return rc;
	return tpl_apply_filter(r, e, f, v, &av, out);
}

/* x[start:stop:step] of a list or a string, as Python slices. */
static int tpl_eval_slice(struct tpl_run *r, const struct tpl_expr *e, struct val *out)
{
	struct tpl_expr *part[3] = { e->u.slice.start, e->u.slice.stop, e->u.slice.step };
	long long b[3] = { 0, 0, 1 }, n, i;
	int given[3] = { 0, 0, 0 }, j, rc;
	size_t *at = NULL, len, k, step;
	struct val o, v;
	double d;

	if ((rc = tpl_eval(r, e->u.slice.obj, &o)))
		return rc;
	if (o.kind != V_LIST && o.kind != V_STR)
		return tpl_fail(r, e->line, e->col, "'%s' cannot be sliced", tpl_type(&o));
	for (j = 0; j < 3; j++) {
		if (!part[j])
			continue;
		if ((rc = tpl_eval(r, part[j], &v)))
			return rc;
		if (v.kind == V_NONE)
			continue;
		if (!tpl_num(&v, &d) || d != floor(d))
			return tpl_fail(r, part[j]->line, part[j]->col, "slice indices must be integers, not %s",
					tpl_type(&v));
		b[j] = val_num_ll(d);
		given[j] = 1;
	}
	if (b[2] == 0)
		return tpl_fail(r, e->line, e->col, "slice step cannot be zero");
	if (o.kind == V_STR) {
		/* where each character starts, and one past the end */
		at = xmalloc((o.u.str.len + 1) * sizeof(*at));
		for (k = 0, len = 0; k < o.u.str.len; k += step) {
			at[len++] = k;
			step = tpl_utf8_step(o.u.str.s + k, o.u.str.len - k);
		}
		at[len] = o.u.str.len;
	}
	n = (long long)(o.kind == V_STR ? len : o.u.list.n);
	for (j = 0; j < 2; j++) {
		if (!given[j]) {
			b[j] = j == 0 ? (b[2] > 0 ? 0 : n - 1) : (b[2] > 0 ? n : -1);
			continue;
		}
		if (b[j] < 0)
			b[j] += n;
		if (b[2] > 0)
			b[j] = b[j] < 0 ? 0 : b[j] > n ? n : b[j];
		else
			b[j] = b[j] < -1 ? -1 : b[j] > n - 1 ? n - 1 : b[j];
	}
	buf_reset(&r->tmp);
	*out = val_list_new();
	for (i = b[0]; b[2] > 0 ? i < b[1] : i > b[1]; i += b[2]) {
		if (o.kind == V_STR)
			buf_add(&r->tmp, o.u.str.s + at[i], at[i + 1] - at[i]);
		else
			val_list_push(r->a, out, o.u.list.items[i]);
	}
	if (o.kind == V_STR)
		*out = tpl_strv(r, r->tmp.s, r->tmp.len);
	free(at);
	return 0;
}

static int tpl_eval_test(struct tpl_run *r, const struct tpl_expr *e, struct val *out)
{
	struct val v, arg = val_none();
	int rc, undef = 0, res = 0;

	if (e->op == T_DEFINED || e->op == T_UNDEFINED) {
		if ((rc = tpl_eval_ref(r, e->u.call.obj, &v, &undef)))
			return rc;
		res = e->op == T_DEFINED ? !undef : undef;
	} else {
		if ((rc = tpl_eval(r, e->u.call.obj, &v)) ||
		    (e->u.call.args.npos && (rc = tpl_eval(r, e->u.call.args.pos[0], &arg))) ||
		    (rc = tpl_apply_test(r, e, e->op, &v, &arg, &res)))
			return rc;
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
	case E_SLICE:
		return tpl_eval_slice(r, e, out);
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
		/* a character is an item: the same limit as a list's */
		if (seq->u.str.len > TPL_MAX_RANGE)
			return tpl_fail(r, e->line, e->col, "string too long to iterate (%zu bytes, the limit is %d)",
					seq->u.str.len, TPL_MAX_RANGE);
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
			if (n->u.set.attr) {
				struct val one = val_dict_new(), *ns = tpl_scope_get(r, n->u.set.name);

				if (!ns || ns->kind != V_DICT)
					return tpl_fail(r, n->line, n->col, "cannot set '%s.%s': '%s' is %s, not a namespace",
							n->u.set.name, n->u.set.attr, n->u.set.name,
							ns ? tpl_type(ns) : "undefined");
				val_dict_set(r->a, &one, n->u.set.attr, v);
				*ns = val_dict_merge(r->a, ns, &one);
				break;
			}
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
		case N_CALL_BLOCK: {
			struct tpl_closure *c = arena_alloc(r->a, sizeof(*c));
			struct val caller = { V_FUNC, { 0 } };

			c->t = r->t;
			c->scope = r->scope;
			c->body = n->u.block.body;
			caller.u.fn.fn = c;
			caller.u.fn.tag = TPL_FN_CALLER;
			if ((rc = tpl_eval_call_with(r, n->u.block.expr, &caller, &v)))
				return rc;
			val_format(&v, r->out);
			break;
		}
		case N_FILTER_BLOCK:
			memset(&inner, 0, sizeof(inner));
			inner.up = r->scope;
			if ((rc = tpl_render_into(r, r->t, &inner, n->u.block.body, &v)))
				return rc;
			r->scope = &inner;
			tpl_scope_set(r, TPL_BODY, v);
			rc = tpl_eval(r, n->u.block.expr, &v);
			r->scope = inner.up;
			if (rc)
				return rc;
			val_format(&v, r->out);
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
	r.top = t;
	r.root = &root;
	buf_init(&r.tmp);
	rc = tpl_render_nodes(&r, t->body);
	buf_release(&r.tmp);
	if (rc)
		tpl_buf_truncate(out, start);
	return rc;
}

int tpl_call(const struct tpl_macro *m, const struct val *args, size_t nargs, const struct tpl_host *host,
	     struct arena *scratch, struct val *out, struct sluice_err *err)
{
	struct sluice_err dummy = SLUICE_ERR_INIT;
	struct tpl_expr at;
	struct tpl_argv av;
	struct tpl_scope root;
	struct buf text = BUF_INIT;
	struct tpl_run r;
	int rc;

	memset(&at, 0, sizeof(at));
	at.kind = E_CALL;
	at.line = m->line;
	at.col = m->col;
	memset(&av, 0, sizeof(av));
	av.args = (struct val *)args;
	av.nargs = nargs;
	memset(&root, 0, sizeof(root));
	memset(&r, 0, sizeof(r));
	r.t = r.top = m->t;
	r.root = r.scope = &root;
	r.host = host;
	r.a = scratch;
	r.out = &text;
	r.err = err ? err : &dummy;
	buf_init(&r.tmp);
	rc = tpl_call_macro(&r, &at, m, &av, out);
	buf_release(&r.tmp);
	buf_release(&text);
	return rc;
}

/* ---- static walk -------------------------------------------------------- */

struct tpl_walk {
	const struct tpl *t;
	const char *name;
	int (*cb)(void *ud, const struct tpl_call *call);
	int (*inner)(void *ud, const struct tpl_call *call, struct val *out);   /* or NULL */
	tpl_name_fn *on_name;      /* tpl_each_name's walk: name and cb are NULL */
	void *ud;
	struct arena *a;
};

/* A call's first argument when it is a literal, for tpl_each_name. */
static const struct val *tpl_lit_arg0(const struct tpl_expr *e)
{
	const struct tpl_args *ar = &e->u.call.args;

	return ar->npos && ar->pos[0]->kind == E_LIT ? &ar->pos[0]->u.lit : NULL;
}

/* What e names, for tpl_each_name: a name, name.attr, a call of either. */
static int tpl_walk_name(struct tpl_walk *w, const struct tpl_expr *e)
{
	if (e->kind == E_NAME)
		return w->on_name(w->ud, e->u.name, NULL, NULL);
	if (e->kind == E_ATTR && e->u.attr.obj->kind == E_NAME)
		return w->on_name(w->ud, e->u.attr.obj->u.name, e->u.attr.name, NULL);
	if (e->kind != E_CALL || !e->u.call.name)
		return 0;
	if (!e->u.call.obj)
		return w->on_name(w->ud, e->u.call.name, NULL, tpl_lit_arg0(e));
	if (e->u.call.obj->kind == E_NAME)
		return w->on_name(w->ud, e->u.call.obj->u.name, e->u.call.name, tpl_lit_arg0(e));
	return 0;
}

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
	if ((rc = tpl_walk_expr(w, ar->star)))
		return rc;
	return tpl_walk_expr(w, ar->dstar);
}

static int tpl_static_value(struct tpl_walk *w, const struct tpl_expr *e, struct val *out);

/* Fill c with the call e, its arguments evaluated statically: 0, 1 when one is not static, or <0. */
static int tpl_static_call(struct tpl_walk *w, const struct tpl_expr *e, struct tpl_call *c)
{
	const struct tpl_args *ar = &e->u.call.args;
	struct val *args = NULL, *kwargs = NULL;
	size_t i;
	int rc;

	if (ar->star || ar->dstar)
		return 1;   /* arguments known only when it runs */
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
	if (w->on_name && (rc = tpl_walk_name(w, e)))
		return rc;
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
		/* tpl_each_name reported name.attr: the name alone is not used */
		if (w->on_name && e->u.attr.obj->kind == E_NAME)
			return 0;
		return tpl_walk_expr(w, e->u.attr.obj);
	case E_INDEX:
		if ((rc = tpl_walk_expr(w, e->u.index.obj)))
			return rc;
		return tpl_walk_expr(w, e->u.index.key);
	case E_SLICE:
		if ((rc = tpl_walk_expr(w, e->u.slice.obj)) || (rc = tpl_walk_expr(w, e->u.slice.start)) ||
		    (rc = tpl_walk_expr(w, e->u.slice.stop)))
			return rc;
		return tpl_walk_expr(w, e->u.slice.step);
	case E_CALL:
		if (!(w->on_name && e->u.call.name && e->u.call.obj && e->u.call.obj->kind == E_NAME) &&
		    (rc = tpl_walk_expr(w, e->u.call.obj)))
			return rc;
		if (w->name && !e->u.call.obj && !strcmp(e->u.call.name, w->name) &&
		    (rc = tpl_walk_call(w, e)))
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
		case N_CALL_BLOCK:
		case N_FILTER_BLOCK:
			if (!(rc = tpl_walk_expr(w, n->u.block.expr)))
				rc = tpl_walk_nodes(w, n->u.block.body);
			break;
		}
	}
	return rc;
}

static int tpl_walk_macro(struct tpl_walk *w, const struct tpl_macro *m)
{
	size_t i;
	int rc;

	for (i = 0; i < m->nparams; i++)
		if ((rc = tpl_walk_expr(w, m->defaults[i])))
			return rc;
	return tpl_walk_nodes(w, m->body);
}

static int tpl_walk_all(const struct tpl *t, const char *name,
			int (*cb)(void *ud, const struct tpl_call *call),
			int (*inner)(void *ud, const struct tpl_call *call, struct val *out),
			void *ud, struct arena *a)
{
	struct arena tmp = ARENA_INIT;
	struct tpl_walk w;
	int rc;

	size_t i;

	memset(&w, 0, sizeof(w));
	w.t = t;
	w.name = name;
	w.cb = cb;
	w.inner = inner;
	w.ud = ud;
	w.a = a ? a : &tmp;
	rc = tpl_walk_nodes(&w, t->body);
	for (i = 0; !rc && i < t->nmacros; i++)
		rc = tpl_walk_macro(&w, t->macros[i]);
	arena_release(&tmp);
	return rc;
}

int tpl_each_name(const struct tpl *t, const struct tpl_macro *m, tpl_name_fn *cb, void *ud)
{
	struct tpl_walk w;

	memset(&w, 0, sizeof(w));
	w.t = m ? m->t : t;
	w.on_name = cb;
	w.ud = ud;
	return m ? tpl_walk_macro(&w, m) : tpl_walk_nodes(&w, t->body);
}

size_t tpl_macro_count(const struct tpl *t)
{
	return t->nmacros;
}

const struct tpl_macro *tpl_macro_at(const struct tpl *t, size_t i)
{
	return t->macros[i];
}

const char *tpl_macro_name(const struct tpl_macro *m)
{
	return m->name;
}

int tpl_macro_is_test(const struct tpl_macro *m)
{
	return m->is_test;
}

const char *tpl_macro_text(const struct tpl_macro *m, size_t *len)
{
	*len = m->text_len;
	return m->text;
}

int tpl_macro_line(const struct tpl_macro *m)
{
	return m->line;
}

void tpl_macro_set_data(struct tpl *t, size_t i, const void *data)
{
	t->macros[i]->data = data;
}

const void *tpl_macro_data(const struct tpl_macro *m)
{
	return m->data;
}

const char *tpl_path(const struct tpl *t)
{
	return t->path;
}

struct val tpl_macro_value(const struct tpl_macro *m)
{
	struct val v = { V_FUNC, { 0 } };

	v.u.fn.fn = m;
	v.u.fn.tag = TPL_FN_MACRO;
	return v;
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
