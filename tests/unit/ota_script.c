/* SPDX-License-Identifier: MIT */
/*
 * The scripted device of the OTA tests (ota_script.h): an ota_ops table
 * that records what the machine sends and counts what it reports, the
 * image buffer and the machine under test, and setup/reset/teardown.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <check.h>

#include "err.h"
#include "healer/ota.h"
#include "ota_script.h"

struct sent sent[MAX_SENT];
size_t n_sent;
uint16_t mid_next;
uint8_t tok_next;
bool budget_on;
size_t budget;
bool send_fails;
int send_fail_rc = CINDER_ERR_IO;
int n_started, n_progress, n_success, n_failed;
enum ota_fail last_reason;
char last_text[160], last_json[600];

int
t_send(void *arg, const uint8_t *msg, size_t len)
{
	(void)arg;
	if (send_fails)
		return send_fail_rc;
	ck_assert_uint_lt(n_sent, MAX_SENT);
	ck_assert_uint_le(len, sizeof(sent[0].b));
	if (budget_on) {
		ck_assert_uint_le(len, budget);
		budget -= len;
	}
	memcpy(sent[n_sent].b, msg, len);
	sent[n_sent].len = len;
	n_sent++;
	return 0;
}

uint16_t
t_mid(void *arg)
{
	(void)arg;
	return mid_next++;
}

uint8_t
t_tok(void *arg)
{
	(void)arg;
	if (++tok_next == 0)
		tok_next = 1;
	return tok_next;
}

size_t
t_writable(void *arg)
{
	(void)arg;
	return budget_on ? budget : SIZE_MAX;
}

void
t_report(void *arg, const struct ota_report *r)
{
	(void)arg;
	switch (r->ev) {
	case OTA_EV_STARTED:
		n_started++;
		break;
	case OTA_EV_PROGRESS:
		n_progress++;
		break;
	case OTA_EV_SUCCESS:
		n_success++;
		break;
	case OTA_EV_FAILED:
		n_failed++;
		last_reason = r->reason;
		snprintf(last_text, sizeof(last_text), "%s", r->text);
		break;
	}
	if (r->ev == OTA_EV_SUCCESS || r->ev == OTA_EV_FAILED)
		snprintf(last_json, sizeof(last_json), "%s",
			 r->json != NULL ? r->json : "");
}

const struct ota_ops t_ops = {
	.send = t_send,
	.take_mid = t_mid,
	.take_token = t_tok,
	.writable = t_writable,
	.report = t_report,
};

uint8_t img_buf[40000];
struct ota_image *img;
struct ota *o;
uint64_t now_ms;

void
reset_script(void)
{
	n_sent = 0;
	mid_next = 100;
	tok_next = 0;
	budget_on = false;
	send_fails = false;
	n_started = n_progress = n_success = n_failed = 0;
	last_reason = OTA_FAIL_NONE;
	last_text[0] = last_json[0] = '\0';
	now_ms = 1000;
}

/* An image of len pseudo-random bytes, and a machine for it. */
void
setup_ota(size_t len, const struct ota_params *p)
{
	size_t i;

	reset_script();
	ck_assert_uint_le(len, sizeof(img_buf));
	for (i = 0; i < len; i++)
		img_buf[i] = (uint8_t)(i * 131 + (i >> 8));
	img = ota_image_new(img_buf, len);
	ck_assert_int_eq(ota_new(&t_ops, NULL, img, p, &o), 0);
	ota_image_unref(img); /* the machine keeps its own reference */
}

void
teardown_ota(void)
{
	ota_free(o);
	o = NULL;
}
