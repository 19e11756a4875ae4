/* SPDX-License-Identifier: MIT */
/* Fuzz target: the config parser must reject or accept, never crash. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf *cfg = conf_new_defaults();
	char err[CONF_ERRLEN];

	(void)conf_parse_text(cfg, (const char *)data, size, "fuzz", err,
			      sizeof(err));
	conf_free(cfg);
	return 0;
}
