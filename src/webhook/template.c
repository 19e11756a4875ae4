/* SPDX-License-Identifier: MIT */
/*
 * Mustache subset for webhooks. The text is cut once into tokens (text,
 * variable, raw variable, section, inverted section, close); each section
 * token knows the index of its close, so rendering is a walk over the
 * token array with a small context stack. Output is bounded.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "webhook/template.h"
#include "xmalloc.h"

enum tok_type { T_TEXT, T_VAR, T_RAW, T_SECTION, T_INVERTED, T_CLOSE };

struct tok {
	enum tok_type type;
	const char *s; /* text, or the tag name (into struct template.text) */
	size_t len;
	size_t end; /* sections: index of the matching close */
};

struct template
{
	char *text; /* a copy of the source */
	struct tok *toks;
	size_t ntoks, cap;
};

struct buf {
	char *p;
	size_t len, cap;
	bool over; /* TEMPLATE_MAX_OUT reached */
};

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void
tok_add(struct template *t, enum tok_type type, const char *s, size_t len)
{
	if (t->ntoks == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->toks = xreallocarray(t->toks, t->cap, sizeof(*t->toks));
	}
	t->toks[t->ntoks].type = type;
	t->toks[t->ntoks].s = s;
	t->toks[t->ntoks].len = len;
	t->toks[t->ntoks].end = 0;
	t->ntoks++;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void
template_free(struct template *t)
{
	if (t == NULL)
		return;
	free(t->text);
	free(t->toks);
	free(t);
}

int
template_parse(const char *text, size_t len, struct template **out, char *err,
	       size_t errlen)
{
	struct template *t;
	size_t open[TEMPLATE_MAX_DEPTH], depth = 0, i = 0;
	int r = CINDER_ERR_MALFORMED;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > TEMPLATE_MAX_LEN) {
		seterr(err, errlen, "template longer than %d bytes",
		       TEMPLATE_MAX_LEN);
		return CINDER_ERR_TOO_BIG;
	}
	if (memchr(text, '\0', len) != NULL) {
		seterr(err, errlen, "template contains a NUL byte");
		return CINDER_ERR_MALFORMED;
	}
	t = xcalloc(1, sizeof(*t));
	t->text = xmalloc(len + 1);
	memcpy(t->text, text, len);
	t->text[len] = '\0';
	while (i < len) {
		const char *p = t->text + i, *o, *c, *name;
		size_t nlen;
		char sigil = 0;
		bool triple;

		o = strstr(p, "{{");
		if (o == NULL) {
			tok_add(t, T_TEXT, p, len - i);
			break;
		}
		if (o > p)
			tok_add(t, T_TEXT, p, (size_t)(o - p));
		triple = o[2] == '{';
		name = o + (triple ? 3 : 2);
		c = strstr(name, triple ? "}}}" : "}}");
		if (c == NULL) {
			seterr(err, errlen, "unclosed tag at offset %zu",
			       (size_t)(o - t->text));
			goto out;
		}
		i = (size_t)(c - t->text) + (triple ? 3 : 2);
		if (!triple && strchr("#^/!&>=", *name) != NULL)
			sigil = *name++;
		if (sigil == '!')
			continue;
		while (name < c && is_space(*name))
			name++;
		nlen = (size_t)(c - name);
		while (nlen > 0 && is_space(name[nlen - 1]))
			nlen--;
		if (sigil == '>' || sigil == '=') {
			seterr(err, errlen, "%s are not supported (offset %zu)",
			       sigil == '>' ? "partials" : "delimiter changes",
			       (size_t)(o - t->text));
			goto out;
		}
		if (nlen == 0) {
			seterr(err, errlen, "empty tag at offset %zu",
			       (size_t)(o - t->text));
			goto out;
		}
		if (memchr(name, '{', nlen) || memchr(name, '}', nlen)) {
			seterr(err, errlen, "bad tag name at offset %zu",
			       (size_t)(o - t->text));
			goto out;
		}
		switch (sigil) {
		case '#':
		case '^':
			if (depth == TEMPLATE_MAX_DEPTH) {
				seterr(err, errlen,
				       "sections nested deeper than %d",
				       TEMPLATE_MAX_DEPTH);
				r = CINDER_ERR_TOO_BIG;
				goto out;
			}
			open[depth++] = t->ntoks;
			tok_add(t, sigil == '#' ? T_SECTION : T_INVERTED, name,
				nlen);
			break;
		case '/': {
			struct tok *s;

			if (depth == 0) {
				seterr(err, errlen,
				       "closing tag {{/%.*s}} without a "
				       "section",
				       (int)(nlen > 40 ? 40 : nlen), name);
				goto out;
			}
			s = &t->toks[open[depth - 1]];
			if (s->len != nlen || memcmp(s->s, name, nlen) != 0) {
				seterr(err, errlen,
				       "section {{#%.*s}} closed by {{/%.*s}}",
				       (int)(s->len > 40 ? 40 : s->len), s->s,
				       (int)(nlen > 40 ? 40 : nlen), name);
				goto out;
			}
			s->end = t->ntoks;
			depth--;
			tok_add(t, T_CLOSE, name, nlen);
			break;
		}
		case '&':
			tok_add(t, T_RAW, name, nlen);
			break;
		default:
			tok_add(t, triple ? T_RAW : T_VAR, name, nlen);
		}
	}
	if (depth > 0) {
		struct tok *s = &t->toks[open[depth - 1]];

		seterr(err, errlen, "section {{#%.*s}} is not closed",
		       (int)(s->len > 40 ? 40 : s->len), s->s);
		goto out;
	}
	*out = t;
	t = NULL;
	r = 0;
out:
	template_free(t);
	return r;
}

/* ---- rendering ---- */

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->over)
		return;
	if (b->len + n > TEMPLATE_MAX_OUT) {
		b->over = true;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = xreallocarray(b->p, cap, 1);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_escaped(struct buf *b, const char *s, size_t n)
{
	size_t i, from = 0;

	for (i = 0; i < n; i++) {
		const char *rep;

		switch (s[i]) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		default:
			continue;
		}
		buf_add(b, s + from, i - from);
		buf_add(b, rep, strlen(rep));
		from = i + 1;
	}
	buf_add(b, s + from, n - from);
}

const json_t *
template_lookup(const json_t *v, const char *path, size_t len)
{
	size_t i = 0;

	if (len == 1 && path[0] == '.')
		return v;
	while (v != NULL && i <= len) {
		const char *seg = path + i;
		const char *dot = memchr(seg, '.', len - i);
		size_t slen = dot ? (size_t)(dot - seg) : len - i;

		if (json_is_object(v)) {
			v = json_object_getn(v, seg, slen);
		} else if (json_is_array(v)) {
			size_t k, idx = 0;

			if (slen == 0 || slen > 9)
				return NULL;
			for (k = 0; k < slen; k++) {
				if (seg[k] < '0' || seg[k] > '9')
					return NULL;
				idx = idx * 10 + (size_t)(seg[k] - '0');
			}
			v = json_array_get(v, idx);
		} else {
			return NULL;
		}
		if (dot == NULL)
			break;
		i += slen + 1;
	}
	return v;
}

/* Shortest %g form that reads back as the same double. */
static void
real_text(double d, char *out, size_t outlen)
{
	int prec;

	for (prec = 1; prec <= 17; prec++) {
		snprintf(out, outlen, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			return;
	}
}

static void
value_add(struct buf *b, const json_t *v, bool escape)
{
	char tmp[64];
	char *dumped = NULL;
	const char *s = NULL;
	size_t n = 0;

	switch (json_typeof(v)) {
	case JSON_STRING:
		s = json_string_value(v);
		n = json_string_length(v);
		break;
	case JSON_INTEGER:
		n = (size_t)snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT,
				     json_integer_value(v));
		s = tmp;
		break;
	case JSON_REAL:
		real_text(json_real_value(v), tmp, sizeof(tmp));
		s = tmp;
		n = strlen(tmp);
		break;
	case JSON_TRUE:
		s = "true";
		n = 4;
		break;
	case JSON_FALSE:
		s = "false";
		n = 5;
		break;
	case JSON_OBJECT:
	case JSON_ARRAY:
		dumped = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		s = dumped;
		n = dumped ? strlen(dumped) : 0;
		break;
	default:
		return; /* null */
	}
	if (escape)
		buf_escaped(b, s, n);
	else
		buf_add(b, s, n);
	free(dumped);
}

static bool
truthy(const json_t *v)
{
	if (v == NULL)
		return false;
	switch (json_typeof(v)) {
	case JSON_NULL:
	case JSON_FALSE:
		return false;
	case JSON_STRING:
		return json_string_length(v) > 0;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0.0;
	case JSON_ARRAY:
		return json_array_size(v) > 0;
	default:
		return true;
	}
}

struct rctx {
	const struct template *t;
	const json_t *stack[TEMPLATE_MAX_DEPTH + 1];
	size_t depth; /* entries used in stack */
	struct buf out;
};

static const json_t *
resolve(const struct rctx *rc, const struct tok *tk)
{
	size_t i;
	const json_t *v;

	if (tk->len == 1 && tk->s[0] == '.')
		return rc->stack[rc->depth - 1];
	for (i = rc->depth; i > 0; i--) {
		v = template_lookup(rc->stack[i - 1], tk->s, tk->len);
		if (v != NULL)
			return v;
	}
	return NULL;
}

static void
render_range(struct rctx *rc, size_t from, size_t to)
{
	size_t i, k;

	for (i = from; i < to && !rc->out.over; i++) {
		const struct tok *tk = &rc->t->toks[i];
		const json_t *v;

		switch (tk->type) {
		case T_TEXT:
			buf_add(&rc->out, tk->s, tk->len);
			break;
		case T_VAR:
		case T_RAW:
			v = resolve(rc, tk);
			if (v != NULL)
				value_add(&rc->out, v, tk->type == T_VAR);
			break;
		case T_INVERTED:
			if (!truthy(resolve(rc, tk)))
				render_range(rc, i + 1, tk->end);
			i = tk->end;
			break;
		case T_SECTION:
			v = resolve(rc, tk);
			if (truthy(v)) {
				size_t n = json_is_array(v) ? json_array_size(v)
							    : 1;

				for (k = 0; k < n && !rc->out.over; k++) {
					rc->stack[rc->depth++] =
						json_is_array(v)
							? json_array_get(v, k)
							: v;
					render_range(rc, i + 1, tk->end);
					rc->depth--;
				}
			}
			i = tk->end;
			break;
		case T_CLOSE:
			break;
		}
	}
}

int
template_render(const struct template *t, const json_t *ctx, char **outp,
		size_t *lenp)
{
	struct rctx rc;

	memset(&rc, 0, sizeof(rc));
	rc.t = t;
	rc.stack[0] = ctx;
	rc.depth = 1;
	*outp = NULL;
	render_range(&rc, 0, t->ntoks);
	if (rc.out.over) {
		free(rc.out.p);
		return CINDER_ERR_TOO_BIG;
	}
	if (rc.out.p == NULL)
		rc.out.p = xstrdup("");
	*outp = rc.out.p;
	if (lenp != NULL)
		*lenp = rc.out.len;
	return 0;
}

int
template_expand(const char *text, const json_t *ctx, char **outp, char *err,
		size_t errlen)
{
	struct template *t;
	int r;

	*outp = NULL;
	if ((r = template_parse(text, strlen(text), &t, err, errlen)) != 0)
		return r;
	r = template_render(t, ctx, outp, NULL);
	if (r != 0)
		seterr(err, errlen, "rendering is longer than %d bytes",
		       TEMPLATE_MAX_OUT);
	template_free(t);
	return r;
}

void
template_foreach_name(const struct template *t,
		      void (*fn)(const char *name, size_t len, void *arg),
		      void *arg)
{
	size_t i;

	for (i = 0; i < t->ntoks; i++)
		if (t->toks[i].type != T_TEXT && t->toks[i].type != T_CLOSE)
			fn(t->toks[i].s, t->toks[i].len, arg);
}

int
template_check(const char *text, char *err, size_t errlen)
{
	struct template *t;
	int r = template_parse(text, strlen(text), &t, err, errlen);

	template_free(t);
	return r;
}
