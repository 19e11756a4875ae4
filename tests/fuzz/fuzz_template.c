/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the webhook template engine and definition checks.
 * Input: template text, optionally a NUL byte and a JSON context.
 * Properties: no crash; a refused template has a message; a rendering is
 * NUL-terminated, at most TEMPLATE_MAX_OUT bytes; the same bytes as a
 * webhook definition are accepted or refused with a message, and an
 * accepted one builds a request (or refuses it with a message).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "webhook/hookdef.h"
#include "webhook/template.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nul = memchr(data, '\0', size);
	size_t tlen = nul ? (size_t)(nul - (const char *)data) : size;
	struct template *t = NULL;
	char err[TEMPLATE_ERRLEN] = "";
	char herr[HOOKDEF_ERRLEN] = "";
	json_t *ctx = NULL, *canon = NULL;
	char *out = NULL;
	size_t len = 0;
	int r;

	if (nul != NULL)
		ctx = json_loadb(nul + 1, size - tlen - 1, JSON_DECODE_ANY,
				 NULL);
	if (ctx == NULL)
		ctx = json_pack("{s:s, s:{s:[i, s]}}", "a", "<&>", "b", "c", 1,
				"x");
	r = template_parse((const char *)data, tlen, &t, err, sizeof(err));
	if (r != 0) {
		if (t != NULL || err[0] == '\0')
			abort();
	} else {
		r = template_render(t, ctx, &out, &len);
		if (r == 0 && (out == NULL || strlen(out) != len ||
			       len > TEMPLATE_MAX_OUT))
			abort();
		if (r != 0 && out != NULL)
			abort();
		free(out);
		template_free(t);
	}
	/* the whole input as a definition */
	{
		json_t *def = json_loadb((const char *)data, size, 0, NULL);

		if (json_is_object(def)) {
			r = hookdef_validate(def, &canon, herr, sizeof(herr));
			if (r != 0 && (canon != NULL || herr[0] == '\0'))
				abort();
			if (r == 0) {
				struct hookreq req;

				herr[0] = '\0';
				if (hookreq_build(canon, ctx, &req, herr,
						  sizeof(herr)) != 0 &&
				    herr[0] == '\0')
					abort();
				hookreq_clear(&req);
				json_decref(canon);
			}
		}
		json_decref(def);
	}
	json_decref(ctx);
	return 0;
}
