/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: urlencoded form bodies read in place (src/api/form.c)
 * against json_form_parse(), which builds the object they replace on a
 * function call's path. Input = one selector byte (field limit and
 * Content-Type), then the body. Properties: form_check() gives
 * json_form_parse()'s verdict; on a body both accept, form_find() and
 * form_get() give each key's string (its exact bytes) or array, and
 * nothing for names the object lacks; for a body json_body_is_form()
 * picks, json_form_check() gives json_body_parse()'s code and message.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "fuzz.h"
#include "api/form.h"
#include "api/json.h"

static const char *const types[] = {
	NULL,
	"application/x-www-form-urlencoded",
	"text/plain",
	"application/json",
	"multipart/form-data; boundary=B",
	"application/zip",
	"",
	"application/x-www-form-urlencoded; charset=utf-8",
};

static const char *const probe[] = {"arg", "args", "access_token",
				    "a",   "x",	   "arg "};

static void
same_fields(const char *s, size_t len, json_t *o)
{
	const char *k, *raw;
	json_t *v;
	char *buf = malloc(len + 1);
	size_t i, n, rawlen;
	int got;

	json_object_foreach(o, k, v)
	{
		got = form_find(s, len, k, &raw, &rawlen);
		if (json_is_string(v)) {
			if (got != 1 || raw < s || raw + rawlen > s + len)
				abort();
			/* exactly the encoded length + 1 is enough */
			if (form_get(s, len, k, buf, rawlen + 1, &n) != 1 ||
			    n != json_string_length(v) ||
			    memcmp(buf, json_string_value(v), n) != 0 ||
			    buf[n] != '\0')
				abort();
			if (form_get(s, len, k, buf, rawlen, &n) !=
			    CINDER_ERR_TOO_BIG)
				abort();
		} else if (!json_is_array(v) || got != FORM_MANY ||
			   json_array_size(v) < 2) {
			abort();
		}
	}
	for (i = 0; i < sizeof(probe) / sizeof(probe[0]); i++)
		if (json_object_get(o, probe[i]) == NULL &&
		    form_find(s, len, probe[i], NULL, NULL) != 0)
			abort();
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_limits lim = {0, 0, 0};
	const char *s, *ct;
	char e1[256], e2[256];
	json_t *o;
	size_t max_fields;
	int r1, r2;

	if (size < 1)
		return 0;
	max_fields = data[0] & 0x08 ? 4 : 0;
	ct = types[data[0] & 0x07];
	data++;
	size--;
	s = (const char *)data;

	o = json_object();
	r1 = json_form_parse(s, size, o, max_fields);
	r2 = form_check(s, size, max_fields);
	if (r1 != r2)
		abort();
	if (r1 == 0)
		same_fields(s, size, o);
	json_decref(o);

	lim.max_fields = max_fields;
	if (!json_body_is_form(ct, data, size))
		return 0;
	o = NULL;
	r1 = json_body_parse(ct, data, size, &lim, &o, NULL, e1, sizeof(e1));
	json_decref(o);
	r2 = json_form_check(data, size, &lim, e2, sizeof(e2));
	if (r1 != r2 || strcmp(e1, e2) != 0)
		abort();
	return 0;
}
