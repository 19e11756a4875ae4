/* SPDX-License-Identifier: MIT */
/*
 * Routing table. Patterns are compiled into segment arrays once, at
 * router_add(); a match splits and percent-decodes the path once and
 * scans the rows that can match a path of its length (an index kept by
 * router_add(): a scan of every row read each row's compiled segments,
 * some 300 bytes, to look at its length).
 * No I/O; the path is untrusted and only read within its length.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xmalloc.h"
#include "api/json.h"
#include "api/router.h"

enum seg_kind {
	SEG_WILD = 0,  /* "*rest": the remaining path */
	SEG_PARAM = 1, /* ":name": one segment */
	SEG_LIT = 2,   /* literal text */
};

/* One compiled pattern segment. */
struct seg {
	enum seg_kind kind; /* what it matches */
	char *text;	    /* literal text or parameter name (owned) */
};

/* One compiled row. */
struct crow {
	const struct route *route;	     /* borrowed row */
	void *arg;			     /* handler arg */
	size_t nseg;			     /* used entries of seg */
	bool wild;			     /* the last segment is "*rest" */
	struct seg seg[ROUTER_MAX_SEGMENTS]; /* compiled segments */
};

struct router {
	struct crow *rows; /* compiled rows */
	size_t n;	   /* used */
	/* for each path length in segments, the rows that can match such
	   a path (that many segments, or fewer before a "*rest"), as
	   indexes into rows in table order */
	size_t *by_len[ROUTER_MAX_SEGMENTS + 1];
	size_t n_by_len[ROUTER_MAX_SEGMENTS + 1];
};

struct router *
router_new(void)
{
	return xcalloc(1, sizeof(struct router));
}

static void
crow_cleanup(struct crow *c)
{
	size_t i;

	for (i = 0; i < c->nseg; i++)
		free(c->seg[i].text);
	c->nseg = 0;
}

void
router_free(struct router *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		crow_cleanup(&r->rows[i]);
	for (i = 0; i <= ROUTER_MAX_SEGMENTS; i++)
		free(r->by_len[i]);
	free(r->rows);
	free(r);
}

/* Can row c match a path of len segments? */
static bool
len_fits(const struct crow *c, size_t len)
{
	return c->wild ? len >= c->nseg : len == c->nseg;
}

/* Make r->by_len again from r->rows. */
static void
index_rows(struct router *r)
{
	size_t len, i, k;

	for (len = 0; len <= ROUTER_MAX_SEGMENTS; len++) {
		free(r->by_len[len]);
		r->by_len[len] = xcalloc(r->n > 0 ? r->n : 1, sizeof(size_t));
		for (i = 0, k = 0; i < r->n; i++)
			if (len_fits(&r->rows[i], len))
				r->by_len[len][k++] = i;
		r->n_by_len[len] = k;
	}
}

static int
compile(const struct route *rt, void *arg, struct crow *c)
{
	const char *p = rt->pattern, *e;
	size_t len, nparams = 0;
	struct seg *s;

	memset(c, 0, sizeof(*c));
	c->route = rt;
	c->arg = arg;
	if (rt->method == NULL || rt->handler == NULL || p == NULL || *p != '/')
		return CINDER_ERR_INVAL;
	if (strcmp(p, "/") == 0)
		return 0;
	while (*p == '/') {
		p++;
		e = strchr(p, '/');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		if (len == 0 || c->nseg >= ROUTER_MAX_SEGMENTS)
			goto bad;
		s = &c->seg[c->nseg++];
		if (*p == ':' || *p == '*') {
			if (len < 2 || ++nparams > ROUTER_MAX_PARAMS)
				goto bad;
			s->kind = *p == ':' ? SEG_PARAM : SEG_WILD;
			s->text = xstrndup(p + 1, len - 1);
			if (s->kind == SEG_WILD && e != NULL)
				goto bad; /* '*' only last */
			c->wild = s->kind == SEG_WILD;
		} else {
			s->kind = SEG_LIT;
			s->text = xstrndup(p, len);
		}
		p += len;
	}
	if (*p != '\0')
		goto bad;
	return 0;
bad:
	crow_cleanup(c);
	return CINDER_ERR_INVAL;
}

int
router_add(struct router *r, const struct route *routes, size_t n, void *arg)
{
	struct crow *rows = NULL;
	size_t i, j;
	int rc = CINDER_ERR_INTERNAL;

	rows = xcalloc(n > 0 ? n : 1, sizeof(*rows));
	for (i = 0; i < n; i++) {
		if ((rc = compile(&routes[i], arg, &rows[i])) != 0)
			goto out;
		for (j = 0; j < r->n + i; j++) {
			const struct route *o =
				j < r->n ? r->rows[j].route : &routes[j - r->n];
			if (strcmp(o->method, routes[i].method) == 0 &&
			    strcmp(o->pattern, routes[i].pattern) == 0) {
				crow_cleanup(&rows[i]);
				rc = CINDER_ERR_INVAL;
				goto out;
			}
		}
	}
	r->rows = xreallocarray(r->rows, r->n + n, sizeof(*r->rows));
	memcpy(r->rows + r->n, rows, n * sizeof(*rows));
	r->n += n;
	free(rows);
	index_rows(r);
	return 0;
out:
	while (i-- > 0)
		crow_cleanup(&rows[i]);
	free(rows);
	return rc;
}

/*
 * A split, decoded path. The segments are decoded into one block (buf),
 * each NUL-terminated: a decoded segment is never longer than its raw
 * text, so the path's length plus a NUL per segment bounds it (perf on
 * bench/run B4: an allocation per segment and request).
 */
struct path {
	size_t n;			      /* segments */
	char *buf;			      /* the decoded segments */
	bool owned;			      /* buf was allocated */
	char *dec[ROUTER_MAX_SEGMENTS];	      /* each segment, in buf */
	const char *raw[ROUTER_MAX_SEGMENTS]; /* start of each raw segment */
	const char *end;		      /* end of the raw path */
};

static void
path_cleanup(struct path *pp)
{
	if (pp->owned)
		free(pp->buf);
	pp->buf = NULL;
	pp->owned = false;
	pp->n = 0;
}

/*
 * Returns ROUTER_FOUND, ROUTER_NO_PATH (unmatchable) or ROUTER_BAD_PATH.
 * The segments go into inl (cap bytes) if they fit, else into an
 * allocation (pp->owned).
 */
static enum router_result
path_split(const char *path, struct path *pp, char *inl, size_t cap)
{
	const char *p = path, *e, *end;
	char *out;
	size_t len;

	memset(pp, 0, sizeof(*pp));
	if (path == NULL || *path != '/')
		return ROUTER_NO_PATH;
	len = strlen(path);
	end = path + len;
	if (len > 1 && path[len - 1] == '/')
		end--; /* one trailing slash is ignored (Express behaviour) */
	pp->end = end;
	if (end - path == 1)
		return ROUTER_FOUND; /* "/" */
	/* segments and their NULs fit in the path's bytes plus one */
	if (len + 1 <= cap) {
		out = pp->buf = inl;
	} else {
		out = pp->buf = xmalloc(len + 1);
		pp->owned = true;
	}
	while (p < end && *p == '/') {
		p++;
		e = memchr(p, '/', (size_t)(end - p));
		if (e == NULL)
			e = end;
		if (e == p || pp->n >= ROUTER_MAX_SEGMENTS) {
			path_cleanup(pp);
			return ROUTER_NO_PATH;
		}
		pp->raw[pp->n] = p;
		pp->dec[pp->n] = out;
		if (json_url_decode_into(p, (size_t)(e - p), false, out,
					 &len) != 0) {
			path_cleanup(pp);
			return ROUTER_BAD_PATH;
		}
		out += len + 1;
		pp->n++;
		p = e;
	}
	return ROUTER_FOUND;
}

/* Does row c match the path? Fills score[] with the segment kinds. */
static bool
row_matches(const struct crow *c, const struct path *pp, int *score)
{
	size_t i;

	for (i = 0; i < c->nseg; i++) {
		if (c->seg[i].kind == SEG_WILD) {
			if (i >= pp->n)
				return false; /* "*rest" needs >= 1 segment */
			score[i] = SEG_WILD;
			return true;
		}
		if (i >= pp->n)
			return false;
		/* the first byte tells most literals apart ("devices",
		 * "products", "events") without a call */
		if (c->seg[i].kind == SEG_LIT &&
		    (c->seg[i].text[0] != pp->dec[i][0] ||
		     strcmp(c->seg[i].text, pp->dec[i]) != 0))
			return false;
		score[i] = c->seg[i].kind;
	}
	return c->nseg == pp->n;
}

static bool
method_matches(const char *row, const char *method)
{
	if (strcmp(row, method) == 0)
		return true;
	return strcmp(method, "HEAD") == 0 && strcmp(row, "GET") == 0;
}

static void
allow_add(char *allow, size_t size, const char *method)
{
	size_t len = strlen(allow), ml = strlen(method);
	const char *p = allow;

	/* skip duplicates */
	while ((p = strstr(p, method)) != NULL) {
		if ((p == allow || p[-1] == ' ') &&
		    (p[ml] == ',' || p[ml] == '\0'))
			return;
		p += ml;
	}
	snprintf(allow + len, size - len, "%s%s", len > 0 ? ", " : "", method);
}

enum router_result
router_match(const struct router *r, const char *method, const char *path,
	     struct router_match *m)
{
	struct path pp;
	const struct crow *best = NULL, *c;
	int best_score[ROUTER_MAX_SEGMENTS], score[ROUTER_MAX_SEGMENTS];
	bool path_seen = false;
	enum router_result res;
	const size_t *cand;
	size_t i, k, len, ncand;

	memset(m, 0, sizeof(*m));
	if ((res = path_split(path, &pp, m->inl, sizeof(m->inl))) !=
	    ROUTER_FOUND)
		return res;
	/* only rows of the path's length (perf on bench/run B4: a scan of
	 * every row was 2-3% of cinderd) */
	cand = r->by_len[pp.n];
	ncand = r->n_by_len[pp.n];
	for (i = 0; i < ncand; i++) {
		c = &r->rows[cand[i]];
		memset(score, 0, sizeof(score));
		if (!row_matches(c, &pp, score))
			continue;
		path_seen = true;
		/* the Allow list is built below, only when no row matched
		 * (a match's is empty) */
		if (!method_matches(c->route->method, method))
			continue;
		/* GET rows serve HEAD, but an explicit HEAD row wins */
		if (best != NULL) {
			int cmp;

			for (k = 0; k < ROUTER_MAX_SEGMENTS; k++)
				if (score[k] != best_score[k])
					break;
			cmp = k == ROUTER_MAX_SEGMENTS
				      ? 0
				      : (score[k] > best_score[k] ? 1 : -1);
			if (cmp < 0)
				continue;
			if (cmp == 0 &&
			    strcmp(best->route->method, method) == 0)
				continue;
		}
		best = c;
		memcpy(best_score, score, sizeof(score));
	}
	if (best == NULL) {
		if (!path_seen) {
			path_cleanup(&pp);
			return ROUTER_NO_PATH;
		}
		for (i = 0; i < ncand; i++) {
			c = &r->rows[cand[i]];
			memset(score, 0, sizeof(score));
			if (row_matches(c, &pp, score))
				allow_add(m->allow, sizeof(m->allow),
					  c->route->method);
		}
		allow_add(m->allow, sizeof(m->allow), "OPTIONS");
		path_cleanup(&pp);
		return ROUTER_NO_METHOD;
	}
	m->route = best->route;
	m->arg = best->arg;
	m->allow[0] = '\0';
	for (i = 0; i < best->nseg; i++) {
		if (best->seg[i].kind == SEG_LIT)
			continue;
		m->params[m->nparams].name = best->seg[i].text;
		if (best->seg[i].kind == SEG_PARAM) {
			m->params[m->nparams].value = pp.dec[i];
		} else {
			/* the rest of the path, decoded as one piece; "*rest"
			 * is last, so a match has at most one */
			len = (size_t)(pp.end - pp.raw[i]);
			if (json_url_decode(pp.raw[i], len, false, &m->rest,
					    NULL) != 0) {
				path_cleanup(&pp);
				router_match_cleanup(m);
				return ROUTER_BAD_PATH;
			}
			m->params[m->nparams].value = m->rest;
		}
		m->nparams++;
	}
	/* the parameters point into the decoded segments */
	m->buf = pp.owned ? pp.buf : NULL;
	return ROUTER_FOUND;
}

void
router_match_cleanup(struct router_match *m)
{
	free(m->buf);
	free(m->rest);
	m->buf = m->rest = NULL;
	m->nparams = 0;
	m->route = NULL;
}

const char *
router_match_param(const struct router_match *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->nparams; i++)
		if (strcmp(m->params[i].name, name) == 0)
			return m->params[i].value;
	return NULL;
}
