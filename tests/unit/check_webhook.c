/* SPDX-License-Identifier: MIT */
/*
 * Webhooks, pure parts: the template engine (every cloud-api.md §3.2
 * case, escaping, missing fields, deep JSON, huge input, parse errors),
 * definition validation (fields, aliases, refusals naming the field),
 * request construction (§3.3 defaults, noDefaults, bodies, query, auth),
 * the retry schedule, host skipping and the address guard.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "err.h"
#include "webhook/hookdef.h"
#include "webhook/policy.h"
#include "webhook/template.h"

/* Render text against ctx (JSON); returns a static copy. */
static char rendered[4096];
static const char *
R(const char *text, const char *ctx_json)
{
	json_t *ctx = json_loads(ctx_json, JSON_DECODE_ANY, NULL);
	char err[TEMPLATE_ERRLEN], *out = NULL;
	int r;

	ck_assert_ptr_nonnull(ctx);
	r = template_expand(text, ctx, &out, err, sizeof(err));
	ck_assert_msg(r == 0, "%s: %s", text, err);
	snprintf(rendered, sizeof(rendered), "%s", out);
	free(out);
	json_decref(ctx);
	return rendered;
}

START_TEST(test_template_variables)
{
	const char *c = "{\"a\":\"<b>&\\\"'\",\"n\":42,\"f\":21.5,\"t\":true,"
			"\"z\":null,\"o\":{\"p\":{\"q\":\"deep\"}},"
			"\"c\":[{\"ca\":\"x0\"},{\"ca\":\"x1\"}]}";

	ck_assert_str_eq(R("{{a}}", c), "&lt;b&gt;&amp;&quot;&#39;");
	ck_assert_str_eq(R("{{{a}}}", c), "<b>&\"'");
	ck_assert_str_eq(R("{{& a}}", c), "<b>&\"'");
	ck_assert_str_eq(R("n={{n}} f={{f}} t={{t}} z=[{{z}}]", c),
			 "n=42 f=21.5 t=true z=[]");
	ck_assert_str_eq(R("{{o.p.q}}/{{{c.1.ca}}}/{{c.9.ca}}", c), "deep/x1/");
	ck_assert_str_eq(R("[{{missing}}][{{o.missing.x}}]", c), "[][]");
	ck_assert_str_eq(R("{{ n }}{{! a comment }}", c), "42");
	ck_assert_str_eq(R("{{{o.p}}}", c), "{\"q\":\"deep\"}");
	ck_assert_str_eq(R("plain text only", c), "plain text only");
	ck_assert_str_eq(R("", c), "");
}
END_TEST

START_TEST(test_template_sections)
{
	const char *c = "{\"list\":[1,2,3],\"empty\":[],\"yes\":true,"
			"\"no\":false,\"s\":\"\",\"zero\":0,"
			"\"obj\":{\"k\":\"v\"},\"items\":[{\"n\":\"a\"},"
			"{\"n\":\"b\"}],\"top\":\"T\"}";

	ck_assert_str_eq(R("{{#list}}<{{.}}>{{/list}}", c), "<1><2><3>");
	ck_assert_str_eq(R("{{#empty}}x{{/empty}}{{^empty}}none{{/empty}}", c),
			 "none");
	ck_assert_str_eq(R("{{#yes}}Y{{/yes}}{{#no}}N{{/no}}", c), "Y");
	ck_assert_str_eq(R("{{^no}}n{{/no}}{{^s}}s{{/s}}{{^zero}}0{{/zero}}"
			   "{{^nothere}}m{{/nothere}}{{^yes}}y{{/yes}}",
			   c),
			 "ns0m");
	ck_assert_str_eq(R("{{#obj}}{{k}}{{/obj}}", c), "v");
	/* names not found in the section's value come from outer ones */
	ck_assert_str_eq(R("{{#items}}{{n}}{{top}},{{/items}}", c), "aT,bT,");
	ck_assert_str_eq(R("{{#items}}{{#obj}}{{n}}{{k}}{{/obj}}{{/items}}", c),
			 "avbv");
}
END_TEST

START_TEST(test_template_errors)
{
	static const char *bad[] = {
		"{{#a}}open",  "{{/a}}", "{{#a}}{{/b}}",
		"{{unclosed",  "{{{x}}", "{{> partial}}",
		"{{=<% %>=}}", "{{}}",	 "{{#a}}{{#b}}{{/a}}{{/b}}",
		"{{  }}",
	};
	char err[TEMPLATE_ERRLEN], deep[TEMPLATE_MAX_DEPTH * 16 + 64];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(template_check(bad[i], err, sizeof(err)) != 0,
			      "accepted %s", bad[i]);
		ck_assert_msg(err[0] != '\0', "no message for %s", bad[i]);
	}
	deep[0] = '\0';
	for (i = 0; i <= TEMPLATE_MAX_DEPTH; i++)
		strcat(deep, "{{#a}}");
	ck_assert_int_eq(template_check(deep, err, sizeof(err)),
			 CINDER_ERR_TOO_BIG);
	{
		struct template *t;

		ck_assert_int_eq(
			template_parse("a\0b", 3, &t, err, sizeof(err)),
			CINDER_ERR_MALFORMED);
		ck_assert_ptr_null(t);
	}
}
END_TEST

START_TEST(test_template_huge)
{
	char *big = malloc(TEMPLATE_MAX_LEN + 2), *out = NULL, err[128];
	json_t *ctx;
	struct template *t;
	int i;

	memset(big, 'x', TEMPLATE_MAX_LEN + 1);
	big[TEMPLATE_MAX_LEN + 1] = '\0';
	ck_assert_int_eq(template_check(big, err, sizeof(err)),
			 CINDER_ERR_TOO_BIG);
	/* output bound: nested loops over a big array */
	ctx = json_array();
	for (i = 0; i < 2000; i++)
		json_array_append_new(ctx, json_string("0123456789"));
	ctx = json_pack("{s:o}", "l", ctx);
	ck_assert_int_eq(template_parse("{{#l}}{{#l}}{{.}}{{/l}}{{/l}}", 29, &t,
					err, sizeof(err)),
			 0);
	ck_assert_int_eq(template_render(t, ctx, &out, NULL),
			 CINDER_ERR_TOO_BIG);
	ck_assert_ptr_null(out);
	template_free(t);
	/* deep JSON: a path 200 levels down */
	{
		json_t *v = json_string("bottom"), *root;
		char path[1024] = "";

		for (i = 0; i < 200; i++) {
			v = json_pack("{s:o}", "k", v);
			strcat(path, i ? ".k" : "k");
		}
		root = v;
		snprintf(big, 1100, "{{%s}}", path);
		ck_assert_int_eq(
			template_expand(big, root, &out, err, sizeof(err)), 0);
		ck_assert_str_eq(out, "bottom");
		free(out);
		json_decref(root);
	}
	json_decref(ctx);
	free(big);
}
END_TEST

/* ---- definitions ---- */

static int
validate(const char *text, json_t **canon, char *err)
{
	json_t *in = json_loads(text, 0, NULL);
	int r;

	ck_assert_ptr_nonnull(in);
	err[0] = '\0';
	r = hookdef_validate(in, canon, err, HOOKDEF_ERRLEN);
	json_decref(in);
	return r;
}

START_TEST(test_definition_valid)
{
	char err[HOOKDEF_ERRLEN];
	json_t *c;

	ck_assert_int_eq(validate("{\"event\":\"temp\",\"url\":\"http://h/x\"}",
				  &c, err),
			 0);
	ck_assert_str_eq(json_string_value(json_object_get(c, "requestType")),
			 "POST");
	ck_assert(json_is_true(json_object_get(c, "rejectUnauthorized")));
	ck_assert(json_is_false(json_object_get(c, "noDefaults")));
	ck_assert_str_eq(json_string_value(json_object_get(c, "deviceID")), "");
	json_decref(c);
	/* aliases, lower-case method, string booleans, numbers in maps */
	ck_assert_int_eq(
		validate("{\"eventName\":\"t\",\"url\":\"HTTPS://h\","
			 "\"requestType\":\"put\",\"deviceid\":"
			 "\"0123456789ABCDEF01234567\",\"noDefaults\":\"true\","
			 "\"rejectUnauthorized\":false,\"form\":{\"n\":5},"
			 "\"headers\":{\"X-A\":\"{{a}}\"},\"auth\":{"
			 "\"username\":\"u\",\"password\":\"p\"},"
			 "\"responseTopic\":\"r/{{PARTICLE_DEVICE_ID}}\"}",
			 &c, err),
		0);
	ck_assert_str_eq(json_string_value(json_object_get(c, "requestType")),
			 "PUT");
	ck_assert_str_eq(json_string_value(json_object_get(c, "deviceID")),
			 "0123456789abcdef01234567");
	ck_assert(json_is_true(json_object_get(c, "noDefaults")));
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(c, "form"), "n")),
			 "5");
	json_decref(c);
}
END_TEST

START_TEST(test_definition_refused)
{
	static const struct {
		const char *def, *field;
	} bad[] = {
		{"{\"url\":\"http://h\"}", "event:"},
		{"{\"event\":\"e\"}", "url:"},
		{"{\"event\":\"e\",\"url\":\"ftp://h\"}", "url:"},
		{"{\"event\":\"e\",\"url\":\"http:///path\"}", "url:"},
		{"{\"event\":\"e\",\"url\":\"http://h/{{#x}}\"}", "url:"},
		{"{\"event\":\"e\",\"url\":\"http://"
		 "h\",\"requestType\":\"PATCH\"}",
		 "requestType:"},
		{"{\"event\":\"e\",\"url\":\"http://h\",\"json\":{\"a\":\"{{/"
		 "a}}\"}}",
		 "json:"},
		{"{\"event\":\"e\",\"url\":\"http://"
		 "h\",\"json\":{},\"body\":\"x\"}",
		 "json:"},
		{"{\"event\":\"e\",\"url\":\"http://h\",\"form\":[1]}",
		 "form:"},
		{"{\"event\":\"e\",\"url\":\"http://"
		 "h\",\"headers\":{\"A\":\"x\\r\\nB: y\"}}",
		 "headers.A:"},
		{"{\"event\":\"e\",\"url\":\"http://"
		 "h\",\"auth\":{\"password\":\"p\"}}",
		 "auth:"},
		{"{\"event\":\"e\",\"url\":\"http://h\",\"deviceID\":\"x y\"}",
		 "deviceID:"},
		{"{\"event\":\"e\",\"url\":\"http://"
		 "h\",\"noDefaults\":\"maybe\"}",
		 "noDefaults:"},
		{"{\"event\":\"e\",\"url\":\"http://"
		 "h\",\"responseTopic\":\"{{#a}}\"}",
		 "responseTopic:"},
		{"{\"event\":"
		 "\"0123456789012345678901234567890123456789012345678901"
		 "234567890123456789\",\"url\":\"http://h\"}",
		 "event:"},
	};
	char err[HOOKDEF_ERRLEN], *huge;
	json_t *c = NULL;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(validate(bad[i].def, &c, err) != 0, "accepted %s",
			      bad[i].def);
		ck_assert_ptr_null(c);
		ck_assert_msg(
			strncmp(err, bad[i].field, strlen(bad[i].field)) == 0,
			"%s: error \"%s\" does not name %s", bad[i].def, err,
			bad[i].field);
	}
	huge = malloc(HOOKDEF_FIELD_MAX + 200);
	strcpy(huge, "{\"event\":\"e\",\"url\":\"http://h\",\"body\":\"");
	memset(huge + strlen(huge), 'b', HOOKDEF_FIELD_MAX + 1);
	strcpy(huge + 38 + HOOKDEF_FIELD_MAX + 1, "\"}");
	ck_assert_int_eq(validate(huge, &c, err), CINDER_ERR_TOO_BIG);
	ck_assert_msg(strncmp(err, "body:", 5) == 0, "%s", err);
	free(huge);
}
END_TEST

/* ---- requests ---- */

static json_t *
ctx_for(const char *data)
{
	struct hookdef_event e = {0};

	e.name = "temp/x";
	e.data = data;
	e.data_len = data ? strlen(data) : 0;
	e.coreid = "0123456789abcdef01234567";
	e.published_ms = 1767323045678ULL; /* 2026-01-02T03:04:05.678Z */
	e.event_id = 7;
	return hookdef_context(&e);
}

static json_t *
ctx_some(const char *data, unsigned needs)
{
	struct hookdef_event e = {0};

	e.name = "temp/x";
	e.data = data;
	e.data_len = data ? strlen(data) : 0;
	e.coreid = "0123456789abcdef01234567";
	e.published_ms = 1767323045678ULL;
	e.event_id = 7;
	return hookdef_context_some(&e, needs);
}

static void
same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		ck_assert_ptr_eq(a, b);
	else
		ck_assert_str_eq(a, b);
}

/* Every request is also built through a plan, with the context cut to
   what the plan needs: the result must be the same. */
static void
build(const char *def, const char *data, struct hookreq *r)
{
	char err[HOOKDEF_ERRLEN];
	json_t *c, *ctx = ctx_for(data), *pctx;
	struct hookplan *p;
	struct hookreq pr;
	size_t i;

	ck_assert_msg(validate(def, &c, err) == 0, "%s", err);
	ck_assert_msg(hookreq_build(c, ctx, r, err, sizeof(err)) == 0, "%s",
		      err);
	p = hookplan_new(c);
	pctx = ctx_some(data, hookplan_needs(p));
	ck_assert_msg(hookreq_build_plan(p, pctx, &pr, err, sizeof(err)) == 0,
		      "%s", err);
	ck_assert_str_eq(pr.method, r->method);
	ck_assert_str_eq(pr.url, r->url);
	same_str(pr.body, r->body);
	ck_assert_uint_eq(pr.body_len, r->body_len);
	ck_assert_uint_eq(pr.nheaders, r->nheaders);
	for (i = 0; i < pr.nheaders; i++)
		ck_assert_str_eq(pr.headers[i], r->headers[i]);
	same_str(pr.username, r->username);
	same_str(pr.password, r->password);
	hookreq_clear(&pr);
	hookplan_unref(p);
	json_decref(pctx);
	json_decref(c);
	json_decref(ctx);
}

static unsigned
needs_of(const char *def)
{
	char err[HOOKDEF_ERRLEN];
	json_t *c;
	struct hookplan *p;
	unsigned n;

	ck_assert_msg(validate(def, &c, err) == 0, "%s", err);
	p = hookplan_new(c);
	ck_assert_ptr_eq(hookplan_def(p), c);
	n = hookplan_needs(p);
	hookplan_unref(p);
	json_decref(c);
	return n;
}

START_TEST(test_plan_needs)
{
	json_t *ctx;

	ck_assert_uint_eq(
		needs_of("{\"event\":\"t\",\"noDefaults\":true,"
			 "\"url\":\"http://h/{{PARTICLE_DEVICE_ID}}\","
			 "\"body\":\"{{{PARTICLE_EVENT_VALUE}}} "
			 "{{SPARK_PUBLISHED_AT}}\"}"),
		HOOKCTX_DEVICE_ID | HOOKCTX_EVENT_VALUE | HOOKCTX_SPARK);
	/* the default fields */
	ck_assert_uint_eq(needs_of("{\"event\":\"t\",\"url\":\"http://h/\"}"),
			  HOOKCTX_DEFAULTS);
	ck_assert_uint_eq(needs_of("{\"event\":\"t\",\"noDefaults\":true,"
				   "\"url\":\"http://h/\",\"json\":{\"a\":"
				   "\"{{PARTICLE_EVENT_JSON}}\"}}"),
			  HOOKCTX_JSON);
	ck_assert_uint_eq(needs_of("{\"event\":\"t\",\"noDefaults\":true,"
				   "\"url\":\"http://h/\",\"headers\":{\"X-B\":"
				   "\"{{PARTICLE_EVENT_BASE64}}\"}}"),
			  HOOKCTX_BASE64);
	/* a data key, also inside a section, in a key, in a topic */
	ck_assert_uint_eq(needs_of("{\"event\":\"t\",\"noDefaults\":true,"
				   "\"url\":\"http://h/\","
				   "\"query\":{\"{{k}}\":\"v\"}}"),
			  HOOKCTX_DATA);
	ck_assert_uint_eq(needs_of("{\"event\":\"t\",\"noDefaults\":true,"
				   "\"url\":\"http://h/\",\"responseTopic\":"
				   "\"r/{{#a}}{{b.c}}{{/a}}\"}"),
			  HOOKCTX_DATA);
	ck_assert_uint_eq(needs_of("{\"event\":\"t\",\"url\":\"http://h/\","
				   "\"body\":\"{{.}}\"}"),
			  HOOKCTX_ALL);
	/* what is not needed is not built */
	ctx = ctx_some("{\"k\":1}", HOOKCTX_PUBLISHED_AT);
	ck_assert_uint_eq(json_object_size(ctx), 1);
	ck_assert_str_eq(json_string_value(
				 json_object_get(ctx, "PARTICLE_PUBLISHED_AT")),
			 "2026-01-02T03:04:05.678Z");
	json_decref(ctx);
	ctx = ctx_some("{\"k\":1}", HOOKCTX_ALL);
	ck_assert_int_eq(json_integer_value(json_object_get(ctx, "k")), 1);
	ck_assert_ptr_nonnull(json_object_get(ctx, "PARTICLE_EVENT_BASE64"));
	ck_assert_ptr_nonnull(json_object_get(ctx, "SPARK_CORE_ID"));
	json_decref(ctx);
}
END_TEST

/* A plan renders a text it does not hold (parsed then), and its own
   definition's after a reference taken and dropped. */
START_TEST(test_plan_render)
{
	char err[HOOKDEF_ERRLEN];
	json_t *c, *ctx = ctx_for("{\"k\":\"v\"}");
	struct hookplan *p;
	char *s;

	ck_assert_msg(validate("{\"event\":\"t\",\"url\":\"http://h/\","
			       "\"responseTopic\":\"r/{{k}}\"}",
			       &c, err) == 0,
		      "%s", err);
	p = hookplan_new(c);
	json_decref(c); /* the plan keeps the definition */
	hookplan_unref(hookplan_ref(p));
	s = hookplan_render_field(p, "responseTopic", "x", ctx);
	ck_assert_str_eq(s, "r/v");
	free(s);
	s = hookplan_render_field(p, "errorResponseTopic",
				  "e/{{{PARTICLE_EVENT_NAME}}}", ctx);
	ck_assert_str_eq(s, "e/temp/x");
	free(s);
	ck_assert_ptr_null(hookplan_render(p, "{{#a}}", ctx));
	ck_assert(hookplan_headers_static(p));
	hookplan_unref(p);
	json_decref(ctx);
}
END_TEST

static bool
headers_static(const char *def)
{
	char err[HOOKDEF_ERRLEN];
	json_t *c;
	struct hookplan *p;
	bool r;

	ck_assert_msg(validate(def, &c, err) == 0, "%s", err);
	p = hookplan_new(c);
	r = hookplan_headers_static(p);
	hookplan_unref(p);
	json_decref(c);
	return r;
}

START_TEST(test_plan_headers)
{
	ck_assert(headers_static("{\"event\":\"t\",\"url\":\"http://h/{{a}}\","
				 "\"body\":\"{{b}}\",\"headers\":"
				 "{\"X-A\":\"1\",\"X-B\":\"2\"}}"));
	ck_assert(!headers_static("{\"event\":\"t\",\"url\":\"http://h/\","
				  "\"headers\":{\"X-A\":\"{{a}}\"}}"));
	ck_assert(!headers_static("{\"event\":\"t\",\"url\":\"http://h/\","
				  "\"headers\":{\"X-{{PARTICLE_EVENT_ID}}\":"
				  "\"1\"}}"));
}
END_TEST

static bool
has_hdr(const struct hookreq *r, const char *line)
{
	size_t i;

	for (i = 0; i < r->nheaders; i++)
		if (strcmp(r->headers[i], line) == 0)
			return true;
	return false;
}

START_TEST(test_request_defaults)
{
	struct hookreq r;

	/* event + url only: the defaults, form-encoded */
	build("{\"event\":\"temp\",\"url\":\"http://h/in\"}", "21 C", &r);
	ck_assert_str_eq(r.method, "POST");
	ck_assert_str_eq(r.url, "http://h/in");
	ck_assert_str_eq(r.body, "event=temp%2Fx&data=21%20C&published_at="
				 "2026-01-02T03%3A04%3A05.678Z&coreid="
				 "0123456789abcdef01234567");
	ck_assert(
		has_hdr(&r, "Content-Type: application/x-www-form-urlencoded"));
	ck_assert(has_hdr(&r, "User-Agent: " HOOKDEF_USER_AGENT));
	hookreq_clear(&r);
	/* GET: the defaults go to the query string, no body */
	build("{\"event\":\"temp\",\"url\":\"http://h/in?k=1\","
	      "\"requestType\":\"GET\",\"query\":{\"a\":\"{{v}}\"}}",
	      "{\"v\":\"x y\"}", &r);
	ck_assert_ptr_null(r.body);
	ck_assert_str_eq(r.url, "http://h/in?k=1&a=x%20y&event=temp%2Fx&data="
				"%7B%22v%22%3A%22x%20y%22%7D&published_at="
				"2026-01-02T03%3A04%3A05.678Z&coreid="
				"0123456789abcdef01234567");
	hookreq_clear(&r);
	/* noDefaults: nothing added */
	build("{\"event\":\"temp\",\"url\":\"http://h/\",\"noDefaults\":true}",
	      "x", &r);
	ck_assert_ptr_null(r.body);
	hookreq_clear(&r);
}
END_TEST

START_TEST(test_request_bodies)
{
	struct hookreq r;
	json_t *j;

	/* json object: rendered leaves plus the defaults */
	build("{\"event\":\"temp\",\"url\":\"http://h/{{PARTICLE_DEVICE_ID}}\","
	      "\"json\":{\"t\":\"{{{t}}}\",\"nested\":{\"n\":\"{{PARTICLE_"
	      "EVENT_NAME}}\"},\"k\":5}}",
	      "{\"t\":\"<21>\"}", &r);
	ck_assert_str_eq(r.url, "http://h/0123456789abcdef01234567");
	ck_assert(has_hdr(&r, "Content-Type: application/json"));
	j = json_loads(r.body, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(json_string_value(json_object_get(j, "t")), "<21>");
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(j, "nested"), "n")),
			 "temp/x");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "k")), 5);
	ck_assert_str_eq(json_string_value(json_object_get(j, "coreid")),
			 "0123456789abcdef01234567");
	ck_assert_str_eq(json_string_value(json_object_get(j, "data")),
			 "{\"t\":\"<21>\"}");
	json_decref(j);
	hookreq_clear(&r);
	/* json string template, noDefaults */
	build("{\"event\":\"t\",\"url\":\"http://h/\",\"noDefaults\":true,"
	      "\"json\":\"{\\\"v\\\": {{{v}}} }\"}",
	      "{\"v\":3.5}", &r);
	ck_assert_str_eq(r.body, "{\"v\": 3.5 }");
	hookreq_clear(&r);
	/* form with the defaults, custom header, basic auth */
	build("{\"event\":\"t\",\"url\":\"http://h/\",\"requestType\":\"PUT\","
	      "\"form\":{\"a\":\"{{{a}}}\",\"event\":\"mine\"},\"headers\":{"
	      "\"Content-Type\":\"text/x\",\"X-Id\":\"{{PARTICLE_EVENT_ID}}\"},"
	      "\"auth\":{\"username\":\"{{a}}\",\"password\":\"s3cret\"}}",
	      "{\"a\":\"&=\"}", &r);
	ck_assert_str_eq(r.method, "PUT");
	ck_assert_ptr_nonnull(strstr(r.body, "a=%26%3D&event=mine&data="));
	ck_assert_ptr_null(strstr(r.body, "event=temp"));
	ck_assert(has_hdr(&r, "Content-Type: text/x"));
	ck_assert(has_hdr(&r, "X-Id: 7"));
	ck_assert_str_eq(r.username, "&amp;=");
	ck_assert_str_eq(r.password, "s3cret");
	hookreq_clear(&r);
	/* raw body */
	build("{\"event\":\"t\",\"url\":\"http://h/\",\"body\":\"v={{{PARTICLE_"
	      "EVENT_VALUE}}};{{SPARK_CORE_ID}}\"}",
	      "1<2", &r);
	ck_assert_str_eq(r.body, "v=1<2;0123456789abcdef01234567");
	hookreq_clear(&r);
}
END_TEST

START_TEST(test_request_rendered_header_refused)
{
	char err[HOOKDEF_ERRLEN];
	struct hookreq r;
	json_t *c, *ctx = ctx_for("{\"h\":\"a\\r\\nX-Evil: 1\"}");

	ck_assert_int_eq(validate("{\"event\":\"t\",\"url\":\"http://h/\","
				  "\"headers\":{\"X\":\"{{{h}}}\"}}",
				  &c, err),
			 0);
	ck_assert_int_eq(hookreq_build(c, ctx, &r, err, sizeof(err)),
			 CINDER_ERR_INVAL);
	hookreq_clear(&r);
	json_decref(c);
	json_decref(ctx);
}
END_TEST

/* ---- policy ---- */

START_TEST(test_retry_schedule)
{
	struct policy_retry p;

	ck_assert_int_eq(policy_retry_parse("30,60", &p), 0);
	ck_assert_int_eq(policy_retry_delay(&p, 1), 30);
	ck_assert_int_eq(policy_retry_delay(&p, 2), 60);
	ck_assert_int_eq(policy_retry_delay(&p, 3), -1);
	ck_assert_int_eq(policy_retry_parse("", &p), 0);
	ck_assert_int_eq(policy_retry_delay(&p, 1), -1);
	ck_assert_int_ne(policy_retry_parse("30,", &p), 0);
	ck_assert_int_ne(policy_retry_parse("0", &p), 0);
	ck_assert_int_ne(policy_retry_parse("x", &p), 0);
	ck_assert_int_ne(
		policy_retry_parse("1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1", &p), 0);
	ck_assert(policy_retryable(0));
	ck_assert(policy_retryable(500));
	ck_assert(policy_retryable(503));
	ck_assert(policy_retryable(429));
	ck_assert(!policy_retryable(404));
	ck_assert(!policy_retryable(400));
	ck_assert(policy_success(200) && policy_success(204));
	ck_assert(!policy_success(404) && !policy_success(0));
}
END_TEST

START_TEST(test_host_skipping)
{
	struct policy_host h = {0};
	int i;

	for (i = 0; i < 4; i++) {
		policy_host_record(&h, false, 1000, 5, 10000);
		ck_assert(!policy_host_skipping(&h, 1000));
	}
	policy_host_record(&h, false, 1000, 5, 10000);
	ck_assert(policy_host_skipping(&h, 1000));
	ck_assert(policy_host_skipping(&h, 10999));
	ck_assert(!policy_host_skipping(&h, 11000)); /* one trial */
	policy_host_record(&h, false, 11000, 5, 10000);
	ck_assert(policy_host_skipping(&h, 11001)); /* skipped again */
	policy_host_record(&h, true, 30000, 5, 10000);
	ck_assert(!policy_host_skipping(&h, 30000));
	ck_assert_uint_eq(h.fails, 0);
	/* threshold 0: never */
	for (i = 0; i < 100; i++)
		policy_host_record(&h, false, 1, 0, 10000);
	ck_assert(!policy_host_skipping(&h, 1));
}
END_TEST

static bool
allowed(const char *addr, const struct policy_nets *n)
{
	struct sockaddr_in a4 = {0};
	struct sockaddr_in6 a6 = {0};

	if (inet_pton(AF_INET, addr, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		return policy_addr_allowed((struct sockaddr *)&a4, n);
	}
	ck_assert_int_eq(inet_pton(AF_INET6, addr, &a6.sin6_addr), 1);
	a6.sin6_family = AF_INET6;
	return policy_addr_allowed((struct sockaddr *)&a6, n);
}

START_TEST(test_address_guard)
{
	static const char *refused[] = {
		"127.0.0.1",
		"10.1.2.3",
		"172.16.0.1",
		"172.31.255.255",
		"192.168.1.1",
		"169.254.169.254",
		"0.0.0.0",
		"100.64.0.1",
		"224.0.0.1",
		"::1",
		"::",
		"fe80::1",
		"fd00::1",
		"::ffff:127.0.0.1",
		"::ffff:10.0.0.1",
	};
	static const char *ok[] = {"8.8.8.8", "172.32.0.1", "2001:db8::1",
				   "::ffff:1.2.3.4", "192.169.0.1"};
	struct policy_nets n;
	size_t i;

	ck_assert_int_eq(policy_nets_parse("", &n), 0);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		ck_assert_msg(!allowed(refused[i], &n), "%s allowed",
			      refused[i]);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		ck_assert_msg(allowed(ok[i], &n), "%s refused", ok[i]);
	ck_assert_int_eq(policy_nets_parse("127.0.0.0/8, ::1,10.1.0.0/16", &n),
			 0);
	ck_assert(allowed("127.0.0.1", &n));
	ck_assert(allowed("::ffff:127.0.0.1", &n));
	ck_assert(allowed("::1", &n));
	ck_assert(allowed("10.1.9.9", &n));
	ck_assert(!allowed("10.2.0.1", &n));
	ck_assert(!allowed("192.168.1.1", &n));
	ck_assert_int_ne(policy_nets_parse("127.0.0.1/33", &n), 0);
	ck_assert_int_ne(policy_nets_parse("nonsense", &n), 0);
	ck_assert_int_ne(policy_nets_parse("1.2.3.4/", &n), 0);
}
END_TEST

static Suite *
webhook_suite(void)
{
	Suite *s = suite_create("webhook");
	struct {
		const char *name;
		const TTest *t;
	} tests[] = {
		{"test_template_variables", test_template_variables},
		{"test_template_sections", test_template_sections},
		{"test_template_errors", test_template_errors},
		{"test_template_huge", test_template_huge},
		{"test_definition_valid", test_definition_valid},
		{"test_plan_needs", test_plan_needs},
		{"test_plan_render", test_plan_render},
		{"test_plan_headers", test_plan_headers},
		{"test_definition_refused", test_definition_refused},
		{"test_request_defaults", test_request_defaults},
		{"test_request_bodies", test_request_bodies},
		{"test_request_rendered_header_refused",
		 test_request_rendered_header_refused},
		{"test_retry_schedule", test_retry_schedule},
		{"test_host_skipping", test_host_skipping},
		{"test_address_guard", test_address_guard},
	};
	size_t i;

	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		TCase *tc = tcase_create(tests[i].name);

		tcase_add_test(tc, tests[i].t);
		suite_add_tcase(s, tc);
	}
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(webhook_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
