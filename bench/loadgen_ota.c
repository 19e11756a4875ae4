/* SPDX-License-Identifier: MIT */
/*
 * cinder-loadgen's ota mode (B6), its device and API sides: the devices'
 * shared flash area (their port's flash calls) and their OTA milestones,
 * and the multipart PUT that has the API flash the next device.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

#include "fw_app.h"
#include "fw_err.h"

#include "loadgen.h"

/* the devices' shared flash area (see the top comment of loadgen.c) */
static uint8_t ota_flash[OTA_FLASH];
#define OTA_BOUNDARY "cinderbenchboundary7e3f"
static const char ota_pre[] = "--" OTA_BOUNDARY "\r\n"
			      "Content-Disposition: form-data; name=\"file\"; "
			      "filename=\"bench.bin\"\r\n"
			      "Content-Type: application/octet-stream\r\n\r\n";
static const char ota_post[] = "\r\n--" OTA_BOUNDARY "--\r\n";

/* Flash: only the ota mode has any (the shared area); erasing is a
 * no-op there, as every device writes the same bytes. */
int
p_flash(void *ctx, uint32_t off, size_t len)
{
	struct dev *d = ctx;

	if (d->lg->image == NULL || off > OTA_FLASH || len > OTA_FLASH - off)
		return FW_ERR_INVAL;
	return 0;
}

int
p_flash_rd(void *ctx, uint32_t off, uint8_t *b, size_t len)
{
	int r = p_flash(ctx, off, len);

	if (r == 0)
		memcpy(b, ota_flash + off, len);
	return r;
}

int
p_flash_wr(void *ctx, uint32_t off, const uint8_t *b, size_t len)
{
	int r = p_flash(ctx, off, len);

	if (r == 0)
		memcpy(ota_flash + off, b, len);
	return r;
}

/* ota mode: the device's OTA milestones */
void
ota_note(struct fw_app *a, enum fw_app_note what, const char *x, const char *y,
	 void *arg)
{
	struct dev *d = arg;
	struct lg *g = d->lg;

	(void)y;
	if (what == FW_NOTE_OTA_BEGIN && !d->ota_begun) {
		d->ota_begun = true;
		if (++g->ota_inflight > g->ota_inflight_max)
			g->ota_inflight_max = g->ota_inflight;
	} else if (what == FW_NOTE_OTA_INSTALLED && !d->installed) {
		/* The device would reboot now (a reset once its output is
		 * sent) and reconnect with a new handshake, whose RSA work
		 * would land in the measured phase. It stays connected
		 * instead, as the same session: a last event held back keeps
		 * the output busy, so dev_step() can cancel the reset first. */
		d->installed = true;
		d->hold_tx = true;
		(void)fw_app_publish(a, "bench/flashed", "", 60,
				     FW_PUBLISH_PRIVATE);
		g->flashed++;
		g->ota_inflight--;
		g->t_last_flashed = now_us();
		lat_add(&g->lat, now_us() - d->t_start);
	} else if (what == FW_NOTE_OTA_REJECTED) {
		if (g->ota_failed++ < 3)
			fprintf(stderr, "device %s refused the image: %s\n",
				d->id, x != NULL ? x : "?");
		if (d->ota_begun) {
			d->ota_begun = false;
			g->ota_inflight--;
		}
	} else if (what == FW_NOTE_RESET && d->installed) {
		d->stop_now = true; /* flashed: no reboot, no new handshake */
	}
}

/* ota mode: the next device's flash, a multipart PUT of the image */
void
ota_put_send(struct lg *g, struct hc *c)
{
	char req[1024];
	struct iovec iov[4];
	struct dev *d;
	size_t tot = 0, k;
	int n;

	if (g->puts_next >= g->puts_limit) {
		c->busy = false;
		return;
	}
	d = &g->devs[g->puts_next++];
	d->t_start = now_us();
	n = snprintf(req, sizeof(req),
		     "PUT /v1/devices/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		     "Authorization: Bearer %s\r\n"
		     "Content-Type: multipart/form-data; boundary=" OTA_BOUNDARY
		     "\r\nContent-Length: %zu\r\n\r\n",
		     d->id, g->token ? g->token : "-",
		     sizeof(ota_pre) - 1 + g->image_len + sizeof(ota_post) - 1);
	iov[0] = (struct iovec){req, (size_t)n};
	iov[1] = (struct iovec){(void *)ota_pre, sizeof(ota_pre) - 1};
	iov[2] = (struct iovec){g->image, g->image_len};
	iov[3] = (struct iovec){(void *)ota_post, sizeof(ota_post) - 1};
	c->t0 = now_us();
	c->busy = true;
	c->len = 0;
	for (k = 0; k < 4; k++)
		tot += iov[k].iov_len;
	/* blocking socket: one writev normally sends it all */
	for (k = 0; k < 4 && tot > 0;) {
		ssize_t w = writev(c->fd, iov + k, (int)(4 - k));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("send: %s", strerror(errno));
		tot -= (size_t)w;
		while (k < 4 && (size_t)w >= iov[k].iov_len)
			w -= (ssize_t)iov[k++].iov_len;
		if (k < 4) {
			iov[k].iov_base = (char *)iov[k].iov_base + w;
			iov[k].iov_len -= (size_t)w;
		}
	}
}
