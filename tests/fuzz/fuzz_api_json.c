/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: REST request parsing. Input = one selector byte (content
 * type), a path line, then the body. The path goes through the router,
 * the body through json_body_parse(); a body that parses must be an
 * object that serialises and, for JSON, parses back to an equal value.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "api/json.h"
#include "api/router.h"

static int
h_fuzz(struct http_request *req, void *arg)
{
	return 0;
}

static const struct route rows[] = {
	{"GET", "/v1/devices", 0, h_fuzz},
	{"GET", "/v1/devices/events/:prefix", 0, h_fuzz},
	{"GET", "/v1/devices/:id", 0, h_fuzz},
	{"POST", "/v1/devices/:id/:fn", 0, h_fuzz},
	{"GET", "/v1/events/:prefix", 0, h_fuzz},
	{"GET", "/console/*file", 0, h_fuzz},
};

static const char *const types[] = {
	NULL,
	"application/json",
	"application/x-www-form-urlencoded",
	"multipart/form-data; boundary=B",
	"text/plain",
	"multipart/form-data; boundary=\"x y\"",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct router *r;
	struct router_match m;
	struct json_files *files = NULL;
	struct json_limits lim = {4096, 16, 4};
	const uint8_t *nl;
	char *path, *dump, err[256];
	json_t *obj = NULL, *again;
	const char *ct, *method;
	size_t plen, i;

	if (r == NULL) {
		r = router_new();
		if (router_add(r, rows, sizeof(rows) / sizeof(rows[0]), NULL) !=
		    0)
			abort();
	}
	if (size < 1)
		return 0;
	ct = types[(data[0] & 0x7f) % (sizeof(types) / sizeof(types[0]))];
	method = data[0] & 0x80 ? "POST" : "GET";
	data++;
	size--;
	nl = memchr(data, '\n', size);
	plen = nl != NULL ? (size_t)(nl - data) : size;
	path = malloc(plen + 1);
	memcpy(path, data, plen);
	path[plen] = '\0';
	if (router_match(r, method, path, &m) == ROUTER_FOUND) {
		if (m.route == NULL)
			abort();
		for (i = 0; i < m.nparams; i++)
			if (m.params[i].value == NULL)
				abort();
	}
	router_match_cleanup(&m);
	free(path);
	if (nl == NULL)
		return 0;
	data += plen + 1;
	size -= plen + 1;
	if (json_body_parse(ct, data, size, &lim, &obj, &files, err,
			    sizeof(err)) != 0) {
		if (obj != NULL || files != NULL)
			abort();
		return 0;
	}
	if (!json_is_object(obj))
		abort();
	for (i = 0; files != NULL && i < files->n; i++)
		if (files->v[i].data < data ||
		    files->v[i].data + files->v[i].len > data + size)
			abort();
	dump = json_dump_compact(obj, NULL);
	if (dump == NULL)
		abort();
	again = json_loads(dump, 0, NULL);
	if (again == NULL || !json_equal(again, obj))
		abort();
	json_decref(again);
	free(dump);
	json_decref(obj);
	json_files_free(files);
	return 0;
}
