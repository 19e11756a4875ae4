/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for what the OTA sender reads from a device: the input is
 * split into CoAP messages (2-byte length each) fed to a machine that is
 * past UpdateBegin (fast and normal mode, alternating on the first byte),
 * and the whole input is also read as an UpdateDone validation JSON.
 * Properties: no crash; exactly at most one final report; nothing sent
 * is larger than the device's message limit; a result of 0 from the
 * JSON reader comes with no reason.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "coap/pcoap.h"
#include "fuzz.h"
#include "healer/ota.h"

static int finals;
static uint16_t mid = 1;
static uint8_t tok;

static int
f_send(void *arg, const uint8_t *msg, size_t len)
{
	(void)arg;
	(void)msg;
	if (len > PCOAP_DEVICE_RX_MAX)
		abort();
	return 0;
}

static uint16_t
f_mid(void *arg)
{
	(void)arg;
	return mid++;
}

static uint8_t
f_tok(void *arg)
{
	(void)arg;
	return ++tok == 0 ? ++tok : tok;
}

static void
f_report(void *arg, const struct ota_report *r)
{
	(void)arg;
	if (r->ev == OTA_EV_SUCCESS || r->ev == OTA_EV_FAILED)
		finals++;
}

static const struct ota_ops f_ops = {
	.send = f_send,
	.take_mid = f_mid,
	.take_token = f_tok,
	.report = f_report,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t image[5000];
	struct ota_params p;
	struct ota_image *img;
	struct pcoap_msg m;
	struct ota *o;
	const char *why;
	uint8_t ready[8];
	size_t off = 1, len, n;
	uint64_t now = 1000;

	if (ota_parse_result((const char *)data, size, &why) == 0 &&
	    why != NULL)
		abort();
	if (size < 1)
		return 0;
	memset(&p, 0, sizeof(p));
	p.fast = true;
	p.chunk_size = 256;
	img = ota_image_new(image, sizeof(image));
	if (ota_new(&f_ops, NULL, img, &p, &o) != 0)
		abort();
	ota_image_unref(img);
	finals = 0;
	mid = 1;
	tok = 0;
	if (ota_start(o, now) != 0)
		abort();
	/* UpdateReady for begin token 1 (mid 1): fast or normal. */
	if (pcoap_build_update_ready(ready, sizeof(ready), &n, 9000, 1,
				     data[0] & 1) != PCOAP_OK ||
	    pcoap_msg_decode(ready, n, &m) != PCOAP_OK)
		abort();
	(void)ota_input(o, &m, pcoap_particle_kind(&m), now);
	while (off + 2 <= size) {
		len = (size_t)data[off] << 8 | data[off + 1];
		off += 2;
		if (len > size - off)
			len = size - off;
		if (pcoap_msg_decode(data + off, len, &m) == PCOAP_OK)
			(void)ota_input(o, &m, pcoap_particle_kind(&m), now);
		off += len;
		now += 1000;
		(void)ota_tick(o, now);
	}
	ota_abort(o, OTA_FAIL_DISCONNECTED, NULL);
	if (finals != 1)
		abort();
	ota_free(o);
	return 0;
}
