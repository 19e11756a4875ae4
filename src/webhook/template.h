/* SPDX-License-Identifier: MIT */
/*
 * The webhook template engine: the mustache subset Particle's webhooks use
 * (cloud-api.md §3.2). {{x}} inserts a value HTML-escaped (& < > " '),
 * {{{x}}} and {{& x}} insert it as is, {{#x}}...{{/x}} renders its body
 * once per array element, once for an object or another true value, and
 * not at all for a false one; {{^x}}...{{/x}} renders its body only for a
 * false value (missing, null, false, "", 0, empty array). {{! ...}} is a
 * comment. Names are dotted paths into the context (objects by key,
 * arrays by index: c.0.ca); "." is the current value. Partials and
 * delimiter changes are refused. Pure: no I/O, no globals.
 */
#ifndef CINDER_WEBHOOK_TEMPLATE_H
#define CINDER_WEBHOOK_TEMPLATE_H

#include <stddef.h>

#include <jansson.h>

#define TEMPLATE_MAX_LEN 65536	       /* longest template text */
#define TEMPLATE_MAX_DEPTH 16	       /* sections nested at most */
#define TEMPLATE_MAX_OUT (1024 * 1024) /* longest rendering */
#define TEMPLATE_ERRLEN 128	       /* size of error buffers */

struct template;

/**
 * Parse a template.
 * @param text len bytes (NUL bytes are refused)
 * @param out receives the template (free with template_free())
 * @param err receives a message when the text does not parse
 * @return 0, CINDER_ERR_MALFORMED (unbalanced or unknown tag) or
 *     CINDER_ERR_TOO_BIG (text over TEMPLATE_MAX_LEN, sections too deep)
 */
int template_parse(const char *text, size_t len, struct template **out,
		   char *err, size_t errlen);

/** Free a template. NULL-safe. */
void template_free(struct template *t);

/**
 * Render a template.
 * @param ctx the root context (usually an object); borrowed
 * @param outp receives a NUL-terminated string (caller frees)
 * @param lenp if not NULL, receives its length
 * @return 0 or CINDER_ERR_TOO_BIG (output over TEMPLATE_MAX_OUT)
 */
int template_render(const struct template *t, const json_t *ctx, char **outp,
		    size_t *lenp);

/** Parse and render in one call (errors as both). */
int template_expand(const char *text, const json_t *ctx, char **outp, char *err,
		    size_t errlen);

/** @return 0 if text parses as a template, else as template_parse() */
int template_check(const char *text, char *err, size_t errlen);

/**
 * Call fn with the name of every tag of t (variables and sections, in
 * order; comments have none).
 */
void template_foreach_name(const struct template *t,
			   void (*fn)(const char *name, size_t len, void *arg),
			   void *arg);

/**
 * Look a dotted path up in v (objects by key, arrays by decimal index).
 * @return the value (borrowed) or NULL
 */
const json_t *template_lookup(const json_t *v, const char *path, size_t len);

#endif
