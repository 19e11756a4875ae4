/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: module_parse() on arbitrary bytes, then on a copy whose
 * SHA-256 and CRC are made right (so that the checks after them are
 * reached too). Properties: a failure names a check and says why; a
 * success has a consistent header (length, order of addresses, known
 * function, suffix inside the file), and rebuilding an image from the
 * parsed fields gives a file that parses back to the same fields.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "coap/pcoap.h"
#include "crypto.h"
#include "fuzz.h"
#include "healer/module.h"

static void
one(const uint8_t *data, size_t size)
{
	struct module_parse_opts opts = {0};
	struct module_info mi, again;
	struct module_error e;
	struct module_spec s;
	uint8_t *b;
	size_t len;
	int r;

	r = module_parse(data, size, &opts, &mi, &e);
	if (r != 0) {
		if (e.code == MODULE_OK || e.msg[0] == '\0')
			abort();
		return;
	}
	if ((uint64_t)mi.end - mi.start + 4 != size || mi.end <= mi.start ||
	    mi.func == MODULE_FUNC_NONE || mi.func > MODULE_FUNC_ASSET ||
	    mi.suffix_size < MODULE_SUFFIX_MIN || e.code != MODULE_OK ||
	    (size_t)mi.prefix_offset + MODULE_PREFIX_LEN + mi.suffix_size >
		    size - MODULE_CRC_LEN)
		abort();
	memset(&s, 0, sizeof(s));
	s.platform_id = mi.platform_id;
	s.func = mi.func;
	s.index = mi.index;
	s.version = mi.version;
	memcpy(s.deps, mi.deps, sizeof(s.deps));
	s.start = mi.start;
	s.size = size;
	if (module_build(&s, &b, &len, &e) != 0)
		return; /* e.g. a prefix offset the builder does not use */
	if (module_parse(b, len, NULL, &again, &e) == 0 &&
	    (again.version != mi.version || again.func != mi.func ||
	     again.index != mi.index || again.platform_id != mi.platform_id ||
	     memcmp(again.deps, mi.deps, sizeof(mi.deps)) != 0))
		abort();
	free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *c;
	uint32_t crc;

	one(data, size);
	if (size < MODULE_FILE_MIN || size > 65536)
		return 0;
	c = malloc(size);
	memcpy(c, data, size);
	if (crypto_sha256(c, size - 38, c + size - 38) == 0) {
		crc = pcoap_crc32(0, c, size - 4);
		c[size - 4] = (uint8_t)(crc >> 24);
		c[size - 3] = (uint8_t)(crc >> 16);
		c[size - 2] = (uint8_t)(crc >> 8);
		c[size - 1] = (uint8_t)crc;
		one(c, size);
	}
	free(c);
	return 0;
}
