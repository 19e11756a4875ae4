/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the describe parser: parse, then run every analysis
 * over what was accepted; also decode the bytes as a variable value of
 * every type. Properties: no crash; a failure leaves no result; the
 * missing-dependency count is bounded by the limits; a string value keeps
 * its length.
 */
#include "config.h"

#include <stdlib.h>

#include "describe.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct describe_missing miss[DESCRIBE_MAX_MODULES * DESCRIBE_MAX_DEPS];
	struct describe *d = NULL;
	char err[DESCRIBE_ERRLEN];
	static const char *types[] = {"bool", "int32", "string", "double"};
	json_t *j;
	size_t n, i;

	/* The same bytes as a variable value of every type. */
	for (i = 0; i < 4; i++) {
		if (describe_value_decode(types[i], data, size, &j) == 0) {
			if (json_is_string(j) && json_string_length(j) != size)
				abort();
			json_decref(j);
		} else if (j != NULL) {
			abort();
		}
	}
	if (describe_parse((const char *)data, size, &d, err, sizeof(err)) !=
	    0) {
		if (d != NULL || err[0] == '\0')
			abort();
		return 0;
	}
	if (d->n_modules > DESCRIBE_MAX_MODULES ||
	    json_array_size(d->functions) > DESCRIBE_MAX_FUNCTIONS ||
	    json_object_size(d->variables) > DESCRIBE_MAX_VARIABLES)
		abort();
	n = describe_missing_dependencies(d, miss,
					  sizeof(miss) / sizeof(miss[0]));
	if (n > sizeof(miss) / sizeof(miss[0]))
		abort();
	(void)describe_system_version(d);
	(void)describe_is_safe_mode(d);
	(void)describe_user_module(d);
	describe_free(d);
	return 0;
}
