/* SPDX-License-Identifier: MIT */
/*
 * The healer's loop-side glue: flashes with their spark/flash/status
 * events. See healer.h.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "events.h"
#include "healer/healer.h"
#include "healer/ota.h"
#include "log.h"
#include "registry.h"
#include "xmalloc.h"

#define HEALER_DEVICE_ID_MAX 24

/* One flash in progress; freed by its final report. h is NULL once the
   healer is gone (the registry may report during its own shutdown). */
struct healer_flash {
	struct healer *h;
	struct healer_flash *next, *prev; /* h->flashes */
	int64_t owner_id;
	char device_id[HEALER_DEVICE_ID_MAX + 1];
};

struct healer {
	struct healer_deps d;
	struct healer_flash *flashes; /* live transfers */
};

int
healer_new(const struct healer_deps *deps, struct healer **out)
{
	struct healer *h = xcalloc(1, sizeof(*h));

	h->d = *deps;
	*out = h;
	return 0;
}

void
healer_free(struct healer *h)
{
	struct healer_flash *f;

	if (h == NULL)
		return;
	for (f = h->flashes; f != NULL; f = f->next)
		f->h = NULL;
	free(h);
}

static void
flash_unlink(struct healer_flash *f)
{
	if (f->h == NULL)
		return;
	if (f->prev != NULL)
		f->prev->next = f->next;
	else
		f->h->flashes = f->next;
	if (f->next != NULL)
		f->next->prev = f->prev;
}

static void
flash_status(struct healer_flash *f, const char *status)
{
	if (f->h == NULL || f->h->d.events == NULL)
		return;
	events_publish_internal(f->h->d.events, f->device_id, f->owner_id,
				"spark/flash/status",
				(const uint8_t *)status, strlen(status), 60,
				true, 0);
}

static void
flash_report(uint64_t flash_id, const char *device_id,
	     const struct ota_report *r, void *arg)
{
	struct healer_flash *f = arg;

	switch (r->ev) {
	case OTA_EV_STARTED:
		flash_status(f, "started");
		return;
	case OTA_EV_PROGRESS:
		return;
	case OTA_EV_SUCCESS:
		log_notice("device %s: flash %llu: success (%u chunks, %s)",
			   device_id, (unsigned long long)flash_id,
			   r->n_chunks, r->fast ? "fast" : "normal");
		flash_status(f, "success");
		break;
	case OTA_EV_FAILED:
		log_notice("device %s: flash %llu: failed: %s%s%s", device_id,
			   (unsigned long long)flash_id,
			   ota_fail_str(r->reason), r->text ? ": " : "",
			   r->text ? r->text : "");
		flash_status(f, "failed");
		break;
	}
	flash_unlink(f);
	free(f);
}

int
healer_flash(struct healer *h, const char *device_id, int64_t owner_id,
	     struct ota_image *img)
{
	struct healer_flash *f;
	uint64_t id;
	int rc;

	if (strlen(device_id) > HEALER_DEVICE_ID_MAX)
		return CINDER_ERR_INVAL;
	f = xcalloc(1, sizeof(*f));
	f->h = h;
	f->owner_id = owner_id;
	strcpy(f->device_id, device_id);
	f->next = h->flashes;
	if (h->flashes != NULL)
		h->flashes->prev = f;
	h->flashes = f;
	rc = registry_flash(h->d.reg, device_id, img, NULL, flash_report, f,
			    &id);
	if (rc != 0) {
		flash_unlink(f);
		free(f);
	}
	/* On success f may be gone already (a final report). */
	return rc;
}
