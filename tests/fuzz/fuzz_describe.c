/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the describe parser: parse, then run every analysis
 * over what was accepted. Properties: no crash; a failure leaves no
 * result; the missing-dependency count is bounded by the limits.
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
	size_t n;

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
