/* SPDX-License-Identifier: MIT */
/*
 * The healer's planner: needs from the Describe, the lowest fitting
 * catalogue image per need, the chain of the images' own dependencies,
 * and the first image that can be installed now. See planner.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "describe.h"
#include "err.h"
#include "healer/planner.h"

struct need {
	struct planner_need n;
	const struct planner_image *img; /* resolved image or NULL */
};

struct plan {
	const struct describe *d;
	uint16_t platform_id;
	const struct planner_image *cat;
	size_t ncat;
	bool allow_pre;
	struct need v[PLANNER_MAX_NEEDS];
	size_t n;
};

static void
say(struct planner_result *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
}

/* The installed main module with this function and index (the first
   one listed, as binary-version-reader's chain walk takes it). */
static bool
installed(const struct describe *d, uint8_t func, uint8_t index,
	  uint32_t *version)
{
	size_t i;

	for (i = 0; i < d->n_modules; i++) {
		const struct describe_module *m = &d->modules[i];

		if (m->location == 'm' && m->func != 0 &&
		    module_func_from_char(m->func) == (int)func &&
		    m->index == (int)index) {
			*version = m->version;
			return true;
		}
	}
	return false;
}

static bool
met(const struct describe *d, uint8_t func, uint8_t index, uint32_t version)
{
	uint32_t have;

	return installed(d, func, index, &have) && have >= version;
}

/* Record a need (merged per function/index at the highest version).
   @return 1 when it changed the set, 0 when not, or TOO_BIG */
static int
need_add(struct plan *p, uint8_t func, uint8_t index, uint32_t version)
{
	struct need *x;
	size_t i;

	for (i = 0; i < p->n; i++) {
		x = &p->v[i];
		if (x->n.func == func && x->n.index == index) {
			if (version <= x->n.version)
				return 0;
			x->n.version = version;
			return 1;
		}
	}
	if (p->n == PLANNER_MAX_NEEDS)
		return CINDER_ERR_TOO_BIG;
	x = &p->v[p->n++];
	memset(x, 0, sizeof(*x));
	x->n.func = func;
	x->n.index = index;
	x->n.version = version;
	x->n.installed = installed(p->d, func, index, &x->n.have);
	return 1;
}

/* The lowest catalogue version >= the need and above the installed
   one, for the platform. */
static const struct planner_image *
resolve(const struct plan *p, const struct planner_need *n)
{
	const struct planner_image *best = NULL, *c;
	size_t i;

	for (i = 0; i < p->ncat; i++) {
		c = &p->cat[i];
		if (c->platform_id != p->platform_id || c->func != n->func ||
		    c->index != n->index || c->version < n->version)
			continue;
		if (n->installed && c->version <= n->have)
			continue; /* never a downgrade or a resend */
		if (c->prerelease && !p->allow_pre)
			continue;
		if (best == NULL || c->version < best->version)
			best = c;
	}
	return best;
}

/* Order of preference among images that can go now: bootloader first,
   then by function, then by index. */
static int
rank(const struct planner_image *img)
{
	int f = img->func == MODULE_FUNC_BOOTLOADER ? 0 : img->func;

	return f * 256 + img->index;
}

static bool
ready(const struct plan *p, const struct planner_image *img)
{
	int k;

	for (k = 0; k < 2; k++) {
		const struct module_dep *dep = &img->deps[k];

		if (dep->func == MODULE_FUNC_NONE)
			continue;
		if (!met(p->d, dep->func, dep->index, dep->version))
			return false;
	}
	return true;
}

const char *
planner_status_str(enum planner_status s)
{
	switch (s) {
	case PLANNER_NOTHING:
		return "nothing";
	case PLANNER_SEND:
		return "send";
	case PLANNER_MISSING:
		return "missing";
	case PLANNER_BLOCKED:
		return "blocked";
	}
	return "unknown";
}

/* Step 1: unmet dependencies of the main modules. */
static int
initial_needs(struct plan *p)
{
	size_t i, k;
	int r, f;

	for (i = 0; i < p->d->n_modules; i++) {
		const struct describe_module *m = &p->d->modules[i];

		if (m->location != 'm' || m->func == 0)
			continue;
		for (k = 0; k < m->n_deps; k++) {
			const struct describe_dep *dep = &m->deps[k];

			f = module_func_from_char(dep->func);
			if (f <= MODULE_FUNC_NONE || dep->index < 0 ||
			    dep->index > 255 ||
			    met(p->d, (uint8_t)f, (uint8_t)dep->index,
				dep->version))
				continue;
			r = need_add(p, (uint8_t)f, (uint8_t)dep->index,
				     dep->version);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* Steps 2 and 3: resolve every need, add the images' unmet header
   dependencies, until nothing changes.
   @return 0, 1 (a need has no image: *miss set) or TOO_BIG */
static int
resolve_all(struct plan *p, size_t *miss)
{
	bool changed = true;
	size_t i, guard = 0;
	int k, r;

	while (changed && guard++ < 4 * PLANNER_MAX_NEEDS) {
		changed = false;
		for (i = 0; i < p->n; i++) {
			struct need *x = &p->v[i];

			if (x->img != NULL && x->img->version >= x->n.version)
				continue;
			if ((x->img = resolve(p, &x->n)) == NULL) {
				*miss = i;
				return 1;
			}
		}
		for (i = 0; i < p->n; i++) {
			const struct planner_image *img = p->v[i].img;

			if (img == NULL)
				continue; /* added this round: next round */
			for (k = 0; k < 2; k++) {
				const struct module_dep *dep = &img->deps[k];

				if (dep->func == MODULE_FUNC_NONE ||
				    dep->func == MODULE_FUNC_USER ||
				    met(p->d, dep->func, dep->index,
					dep->version))
					continue;
				r = need_add(p, dep->func, dep->index,
					     dep->version);
				if (r < 0)
					return r;
				if (r > 0)
					changed = true;
			}
		}
	}
	return 0;
}

int
planner_next(const struct describe *d, uint16_t platform_id,
	     const struct planner_image *cat, size_t n,
	     const struct planner_opts *opts, struct planner_result *out)
{
	struct plan p;
	const struct need *best = NULL;
	size_t i, miss = 0;
	int r;

	memset(out, 0, sizeof(*out));
	memset(&p, 0, sizeof(p));
	p.d = d;
	p.platform_id = platform_id;
	p.cat = cat;
	p.ncat = n;
	p.allow_pre = opts != NULL && opts->allow_prerelease;
	if ((r = initial_needs(&p)) == 0)
		r = resolve_all(&p, &miss);
	out->n_needs = p.n;
	if (r < 0) {
		out->status = PLANNER_BLOCKED;
		say(out, "more than %d distinct modules needed",
		    PLANNER_MAX_NEEDS);
		return r;
	}
	if (p.n == 0) {
		out->status = PLANNER_NOTHING;
		say(out, "every dependency is met");
		return 0;
	}
	if (r == 1) {
		const struct planner_need *x = &p.v[miss].n;

		out->status = PLANNER_MISSING;
		out->need = *x;
		say(out,
		    "no %s %u of version %u or later for platform %u in the "
		    "catalogue",
		    module_func_name(x->func), x->index, x->version,
		    platform_id);
		return 0;
	}
	for (i = 0; i < p.n; i++) {
		if (p.v[i].img == NULL || !ready(&p, p.v[i].img))
			continue;
		if (best == NULL || rank(p.v[i].img) < rank(best->img))
			best = &p.v[i];
	}
	if (best == NULL) {
		out->status = PLANNER_BLOCKED;
		say(out,
		    "%zu modules needed, but each depends on another that is "
		    "not installed yet",
		    p.n);
		return 0;
	}
	out->status = PLANNER_SEND;
	out->image = best->img;
	out->need = best->n;
	say(out, "send %s %u version %u (needs >= %u, installed %s%u)",
	    module_func_name(best->img->func), best->img->index,
	    best->img->version, best->n.version,
	    best->n.installed ? "" : "none ", best->n.have);
	return 0;
}
