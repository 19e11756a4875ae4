/* SPDX-License-Identifier: MIT */
/*
 * Webhook definitions (cloud-api.md §3.1) and request construction
 * (§3.3). hookdef_validate() checks a definition as a client sent it and
 * returns it in canonical form (the form stored in webhooks.config);
 * hookreq_build() turns a canonical definition and an event into the HTTP
 * request to make. Pure: no I/O.
 */
#ifndef CINDER_WEBHOOK_HOOKDEF_H
#define CINDER_WEBHOOK_HOOKDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define HOOKDEF_ERRLEN 192	/* size of error buffers */
#define HOOKDEF_URL_MAX 2048	/* longest url (template) */
#define HOOKDEF_FIELD_MAX 16384 /* longest template string */
#define HOOKDEF_MAX_SIZE 65536	/* longest definition as JSON */
#define HOOKDEF_MAX_ENTRIES 64	/* entries of headers, form, query */
#define HOOKDEF_NAME_MAX 256	/* longest display name */
#define HOOKDEF_EVENT_MAX 64	/* longest event prefix */
#define HOOKDEF_USER_AGENT "CinderBot/1.0 (ParticleBot/1.1 compatible)"

/**
 * Check a definition and build its canonical form: keys event, url,
 * requestType (upper case), deviceID ("" = any), name, disabled,
 * noDefaults, rejectUnauthorized, and when given json (object or
 * string), form, query, headers, auth {username, password}, body,
 * responseTopic, errorResponseTopic, responseTemplate. Aliases accepted:
 * eventName, deviceId, deviceid, and booleans as "true"/"false" strings.
 * Unknown keys are ignored (mydevices, integration_type, ...).
 * @param in the client's object; borrowed
 * @param outp receives the canonical object (new reference)
 * @param err receives "field: problem" when the definition is refused
 * @return 0, CINDER_ERR_INVAL or CINDER_ERR_TOO_BIG
 */
int hookdef_validate(const json_t *in, json_t **outp, char *err, size_t errlen);

/** An event as the webhook sees it. */
struct hookdef_event {
	const char *name;
	const char *data; /* NUL-terminated; may be NULL */
	size_t data_len;
	const char *coreid;    /* device id, "api" or "particle-internal" */
	uint64_t published_ms; /* Unix ms */
	uint64_t event_id;     /* unique id of the event */
	uint32_t product_id;   /* 0 = none */
};

/* Parts of an event's template context (hookdef_context_some). */
#define HOOKCTX_DATA 0x1   /* the keys of data that is a JSON object */
#define HOOKCTX_JSON 0x2   /* PARTICLE_EVENT_JSON */
#define HOOKCTX_BASE64 0x4 /* PARTICLE_EVENT_BASE64 */
/* the other names, one bit each in the order of the list above */
#define HOOKCTX_DEVICE_ID 0x8
#define HOOKCTX_EVENT_NAME 0x10
#define HOOKCTX_EVENT_VALUE 0x20
#define HOOKCTX_PUBLISHED_AT 0x40
#define HOOKCTX_EVENT_ID 0x80
#define HOOKCTX_PRODUCT_ID 0x100
#define HOOKCTX_SPARK 0x200 /* the four SPARK_* aliases */
/* what the default fields (event, data, published_at, coreid) use */
#define HOOKCTX_DEFAULTS                                                       \
	(HOOKCTX_DEVICE_ID | HOOKCTX_EVENT_NAME | HOOKCTX_EVENT_VALUE |        \
	 HOOKCTX_PUBLISHED_AT)
#define HOOKCTX_ALL 0x3ff

/**
 * The template context of an event: the keys of the data when it is a
 * JSON object, then PARTICLE_DEVICE_ID, PARTICLE_EVENT_NAME,
 * PARTICLE_EVENT_VALUE, PARTICLE_PUBLISHED_AT, PARTICLE_EVENT_ID,
 * PRODUCT_ID, PARTICLE_EVENT_JSON, PARTICLE_EVENT_BASE64 and the SPARK_*
 * aliases (these win over data keys of the same name).
 * @return a new object
 */
json_t *hookdef_context(const struct hookdef_event *e);

/**
 * The same context with only the parts in needs (HOOKCTX_*): what the
 * templates of a definition use (hookplan_needs()) renders the same.
 * @return a new object
 */
json_t *hookdef_context_some(const struct hookdef_event *e, unsigned needs);

/**
 * A canonical definition prepared for delivery: its templates parsed once
 * and what they use of the context. It keeps a reference to the
 * definition, so a webhook whose definition is replaced needs a new plan
 * (compare hookplan_def()). Reference-counted: a request in flight may
 * hold one after its webhook changed.
 */
struct hookplan;

/** @param def canonical definition; borrowed (a reference is taken) */
struct hookplan *hookplan_new(json_t *def);

/** @return p with one more reference */
struct hookplan *hookplan_ref(struct hookplan *p);

/** Drop a reference (NULL-safe); the last one frees the plan. */
void hookplan_unref(struct hookplan *p);

/** @return the definition the plan was made from (borrowed) */
const json_t *hookplan_def(const struct hookplan *p);

/** @return the HOOKCTX_* parts of the context the templates use */
unsigned hookplan_needs(const struct hookplan *p);

/**
 * @return true when no header template has a tag: every request of the
 *     plan has the same header lines (hookreq.headers)
 */
bool hookplan_headers_static(const struct hookplan *p);

/**
 * Attach data of the caller's (freed with fn when the plan is freed, or
 * replaced).
 */
void hookplan_set_user(struct hookplan *p, void *user, void (*fn)(void *));

/** @return the data set by hookplan_set_user(), or NULL */
void *hookplan_user(const struct hookplan *p);

/** One request to make. */
struct hookreq {
	char method[8];	 /* GET POST PUT DELETE */
	char *url;	 /* with the query string */
	char **headers;	 /* "Name: value" lines */
	size_t nheaders; /* entries in headers */
	char *body;	 /* may be NULL */
	size_t body_len;
	char *username, *password; /* HTTP Basic, or NULL */
};

/**
 * Build the request for a canonical definition and a context.
 * @param out filled in; release with hookreq_clear() (also on error)
 * @return 0, CINDER_ERR_INVAL (a rendered URL that is not http(s), a
 *     header with a line break) or CINDER_ERR_TOO_BIG
 */
int hookreq_build(const json_t *def, const json_t *ctx, struct hookreq *out,
		  char *err, size_t errlen);

/** hookreq_build() with the templates of a plan (same result). */
int hookreq_build_plan(const struct hookplan *p, const json_t *ctx,
		       struct hookreq *out, char *err, size_t errlen);

/** Free what hookreq_build() allocated. */
void hookreq_clear(struct hookreq *r);

/**
 * Render one string field of a definition (responseTopic, ...) or dflt
 * when the field is absent.
 * @return a new string, or NULL when it does not render
 */
char *hookdef_render_field(const json_t *def, const char *field,
			   const char *dflt, const json_t *ctx);

/** hookdef_render_field() on the plan's definition and templates. */
char *hookplan_render_field(const struct hookplan *p, const char *field,
			    const char *dflt, const json_t *ctx);

/**
 * Render a template text of the plan's definition (a string of it: a
 * field's value or an object key), parsed once; any other text is parsed
 * here. p may be NULL.
 * @return a new string, or NULL when it does not render
 */
char *hookplan_render(const struct hookplan *p, const char *tpl,
		      const json_t *ctx);

/** Append s percent-encoded (form style: space as %20) to a string. */
char *hookdef_urlencode(const char *s);

#endif
