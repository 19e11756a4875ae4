/* SPDX-License-Identifier: MIT */
/*
 * The OTA sender (src/healer/ota.c) end to end against the real device
 * library of firmware-stubs (the code cinder-sim runs), in-process over
 * an AES channel (fw_memdev.[ch]): the machine sends a real module image,
 * the device stores, validates and installs it, in fast mode (with chunks
 * dropped on purpose) and in normal mode; a refused image, updates
 * disabled, and the transfer attached to a real session. Reports go to
 * the counters of the scripted device (ota_script.[ch]); the scripted
 * cases are check_ota.c.
 * Time is a number the test advances; no sockets, no sleeps.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "coap/pcoap.h"
#include "fw_app.h"
#include "fw_err.h"
#include "fw_memdev.h"
#include "healer/ota.h"
#include "ota_script.h"
#include "session.h"

/* ==== end to end against the device library ========================= */

static struct fw_memdev md;
static struct port port;
static struct fw_app app;
static struct fw_modules mods;
static const uint8_t e2e_key[16] = "0123456789abcdef";
static const uint8_t e2e_iv[16] = "fedcba9876543210";
static int drop_every, dropped, n_chunks_seen, n_installed;
/* A Describe request sent right behind UpdateDone (token DESC_TOK), and
   the device's answer to it. */
#define DESC_TOK 0xee
static bool describe_behind_done;
static char describe_seen[2048];

static void
d_note(struct fw_app *a, enum fw_app_note what, const char *x, const char *y,
       void *arg)
{
	(void)a;
	(void)x;
	(void)y;
	(void)arg;
	if (what == FW_NOTE_OTA_INSTALLED)
		n_installed++;
}

/* The server side of the channel: OTA messages sealed to the device, some
   fast-mode chunks dropped on purpose. */
static int
e2e_send(void *arg, const uint8_t *msg, size_t len)
{
	struct pcoap_msg m;

	(void)arg;
	ck_assert_int_eq(pcoap_msg_decode(msg, len, &m), PCOAP_OK);
	if (pcoap_particle_kind(&m) == PCOAP_KIND_CHUNK) {
		n_chunks_seen++;
		if (drop_every > 0 && n_chunks_seen % drop_every == 0) {
			dropped++;
			return 0;
		}
	}
	fw_memdev_server_send(&md, msg, len);
	if (describe_behind_done &&
	    pcoap_particle_kind(&m) == PCOAP_KIND_UPDATE_DONE) {
		uint8_t d[16];
		size_t n;

		ck_assert_int_eq(pcoap_build_describe(d, sizeof(d), &n, 0x7000,
						      DESC_TOK, 0),
				 PCOAP_OK);
		fw_memdev_server_send(&md, d, n);
	}
	return 0;
}

/* The output budget: what the pipe still holds, with room for framing. */
static size_t
e2e_writable(void *arg)
{
	(void)arg;
	size_t used = md.s2d.len;

	return FW_MEMDEV_PIPE_CAP - used > 64 ? FW_MEMDEV_PIPE_CAP - used - 64
					      : 0;
}

static const struct ota_ops e2e_ops = {
	.send = e2e_send,
	.take_mid = t_mid,
	.take_token = t_tok,
	.writable = e2e_writable,
	.report = t_report,
};

/* A user part module (§5.8) of len bytes for platform 3. */
static void
make_module(size_t len, uint16_t version)
{
	fw_memdev_user_image(img_buf, sizeof(img_buf), len, version, 3, 1512);
}

static bool e2e_deliver(bool to_ota);

/* A device whose channel is up, waiting for the server Hello. */
static void
e2e_device_init(bool fast_ota)
{
	struct fw_app_config cfg;
	uint8_t hash[32];
	int i;

	fw_memdev_init(&md, &port);
	n_installed = dropped = n_chunks_seen = 0;
	memset(&cfg, 0, sizeof(cfg));
	memcpy(cfg.dev.id, "\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15",
	       12);
	cfg.dev.product_id = 3;
	cfg.dev.product_version = 0xffff;
	cfg.dev.platform_id = 3;
	for (i = 0; i < 32; i++)
		hash[i] = (uint8_t)i;
	fw_modules_default(&mods, 1512, 1512, hash);
	cfg.modules = &mods;
	cfg.updates_enabled = true;
	cfg.fast_ota = fast_ota;
	cfg.notify = d_note;
	fw_app_init(&app, &port, &cfg);
	fw_app_start(&app, md.now);
	app.dev.state = FW_DEVICE_HELLO;
	app.dev.deadline = md.now + FW_DEVICE_HELLO_TIMEOUT;
	fw_aes_chan_init(&app.dev.chan, e2e_key, e2e_iv);
	fw_aes_chan_init(&md.srv, e2e_key, e2e_iv);
}

/* A device on the channel, READY, its post-connect messages drained. */
static void
e2e_device(bool fast_ota)
{
	uint8_t m[64];
	size_t n;
	int i;

	e2e_device_init(fast_ota);
	ck_assert_int_eq(pcoap_build_hello(m, sizeof(m), &n, 500, NULL),
			 PCOAP_OK);
	ck_assert_int_eq(e2e_send(NULL, m, n), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(fw_app_step(&app, md.now), 0);
	ck_assert(fw_device_is_ready(&app.dev));
	/* the post-connect events: through the channel, not to the OTA */
	while (e2e_deliver(false))
		;
}

/* Hand the device's messages to the machine; false when none. */
static bool
e2e_deliver(bool to_ota)
{
	struct pcoap_msg m;

	if (!fw_memdev_server_next(&md, &m))
		return false;
	if (m.token.len == 1 && m.token.p[0] == DESC_TOK && m.payload.len > 0) {
		size_t n = m.payload.len < sizeof(describe_seen)
				   ? m.payload.len
				   : sizeof(describe_seen) - 1;

		memcpy(describe_seen, m.payload.p, n);
		describe_seen[n] = '\0';
		return true;
	}
	if (to_ota)
		(void)ota_input(o, &m, pcoap_particle_kind(&m), now_ms);
	return true;
}

/* Run device and machine until the machine finishes. */
static void
e2e_run(size_t len, uint16_t version, const struct ota_params *p)
{
	int i;

	make_module(len, version);
	reset_script();
	img = ota_image_new(img_buf, len);
	ck_assert_int_eq(ota_new(&e2e_ops, NULL, img, p, &o), 0);
	ota_image_unref(img);
	ck_assert_int_eq(ota_start(o, now_ms), 0);
	for (i = 0; i < 20000 && !ota_finished(o); i++) {
		(void)fw_app_step(&app, md.now);
		while (e2e_deliver(true))
			;
		ota_pump(o, now_ms);
		now_ms += 5;
		md.now += 5;
		(void)ota_tick(o, now_ms);
	}
	ck_assert_msg(ota_finished(o), "the transfer did not finish");
}

START_TEST(test_ota_e2e_fast_with_drops)
{
	e2e_device(true);
	drop_every = 7;
	e2e_run(30000, 21, &(struct ota_params){.fast = true});
	ck_assert_msg(n_success == 1, "failed: %s", last_text);
	ck_assert_int_gt(dropped, 5);
	/* all 59 chunks once, plus a resend for each dropped one (some
	   resends are dropped again) */
	ck_assert_int_ge(n_chunks_seen, 59 + dropped);
	ck_assert_int_eq(n_installed, 1);
	ck_assert_uint_eq(
		fw_modules_find(&app.modules, FW_MOD_USER, 1)->version, 21);
	ck_assert_uint_eq(
		fw_modules_find(&app.modules, FW_MOD_USER, 1)->hash[0], 0xa0);
	ck_assert_ptr_nonnull(strstr(last_json, "\"r\":\"ok\""));
	teardown_ota();
	drop_every = 0;
}
END_TEST

START_TEST(test_ota_e2e_normal)
{
	/* the device declines fast mode: one chunk at a time */
	e2e_device(false);
	e2e_run(5000, 22,
		&(struct ota_params){.fast = true, .chunk_size = 300});
	ck_assert_msg(n_success == 1, "failed: %s", last_text);
	ck_assert_int_eq(n_chunks_seen, 17);
	ck_assert_int_eq(n_installed, 1);
	ck_assert_uint_eq(
		fw_modules_find(&app.modules, FW_MOD_USER, 1)->version, 22);
	teardown_ota();
}
END_TEST

static unsigned
user_version(void)
{
	return fw_modules_find(&app.modules, FW_MOD_USER, 1)->version;
}

/* As Device OS's bootloader does, the device installs an update when it
   resets: a Describe answered between UpdateDone and the reset lists
   the module it replaces (the healer must not take it for the new
   one), and the reset brings the new one in. */
START_TEST(test_ota_e2e_describe_before_reset)
{
	/* the user part as the table had it before: version 5 */
	static const char *const old_user = "\"f\":\"u\",\"n\":\"1\",\"v\":5,";
	int i;

	e2e_device(true);
	describe_behind_done = true;
	describe_seen[0] = '\0';
	e2e_run(3000, 21, &(struct ota_params){.fast = true});
	describe_behind_done = false;
	ck_assert_msg(n_success == 1, "failed: %s", last_text);
	ck_assert_int_eq(n_installed, 1);
	for (i = 0; i < 8 && describe_seen[0] == '\0'; i++) {
		(void)fw_app_step(&app, md.now);
		while (e2e_deliver(false))
			;
	}
	ck_assert_msg(describe_seen[0] != '\0', "no describe answered");
	ck_assert_msg(strstr(describe_seen, old_user) != NULL,
		      "describe before the reset: %s", describe_seen);
	ck_assert_ptr_null(strstr(describe_seen, "\"v\":21,"));
	for (i = 0; i < 8 && user_version() != 21; i++)
		(void)fw_app_step(&app, md.now);
	ck_assert_uint_eq(user_version(), 21);
	teardown_ota();
}
END_TEST

START_TEST(test_ota_e2e_rejected_and_disabled)
{
	/* an image for another platform: the device refuses it */
	e2e_device(true);
	make_module(4000, 23);
	img_buf[12] = 6;
	reset_script();
	img = ota_image_new(img_buf, 4000);
	ck_assert_int_eq(ota_new(&e2e_ops, NULL, img,
				 &(struct ota_params){.fast = true}, &o),
			 0);
	ota_image_unref(img);
	ck_assert_int_eq(ota_start(o, now_ms), 0);
	while (!ota_finished(o)) {
		(void)fw_app_step(&app, md.now);
		while (e2e_deliver(true))
			;
		now_ms += 500;
		md.now += 500;
		(void)ota_tick(o, now_ms);
	}
	ck_assert_int_eq(n_failed, 1);
	ck_assert_int_eq(last_reason, OTA_FAIL_REJECTED);
	ck_assert_int_eq(n_installed, 0);
	teardown_ota();

	/* updates disabled by the application: 5.03 */
	e2e_device(true);
	app.updates_enabled = false;
	e2e_run(4000, 24, NULL);
	ck_assert_int_eq(last_reason, OTA_FAIL_DISABLED);
	teardown_ota();
}
END_TEST

/* The whole server side: a real session, the transfer attached to it. */
static int sess_closes;

static void
sess_close(void *arg, int status, const char *reason)
{
	(void)arg;
	(void)status;
	(void)reason;
	sess_closes++;
}

static const struct session_ops e2e_sess_ops = {
	.send = e2e_send,
	.close = sess_close,
};

/* Every device message into the session; false when none. */
static bool
e2e_deliver_session(struct session *s)
{
	struct pcoap_msg m;

	if (!fw_memdev_server_next(&md, &m))
		return false;
	ck_assert_int_eq(session_input(s, md.last, md.last_len, now_ms), 0);
	return true;
}

static void
e2e_session_step(struct session *s)
{
	(void)fw_app_step(&app, md.now);
	while (e2e_deliver_session(s))
		;
	session_ota_pump(s, now_ms);
	now_ms += 5;
	md.now += 5;
	(void)session_tick(s, now_ms);
}

START_TEST(test_ota_e2e_through_session)
{
	struct pcoap_hello h = {
		.product_id = 3, .product_version = 0xffff, .platform_id = 3};
	struct session *s;
	uint8_t m[64];
	size_t n;
	int i;

	e2e_device_init(true);
	reset_script();
	sess_closes = 0;
	drop_every = 5;
	s = session_new(&e2e_sess_ops, NULL, 3000, now_ms);
	/* the device's Hello (the library sent it with the handshake) */
	ck_assert_int_eq(pcoap_build_hello(m, sizeof(m), &n, 77, &h), PCOAP_OK);
	ck_assert_int_eq(session_input(s, m, n, now_ms), 0);
	for (i = 0; i < 400 && session_state(s) != SESSION_READY; i++)
		e2e_session_step(s);
	ck_assert_int_eq(session_state(s), SESSION_READY);
	make_module(20000, 31);
	img = ota_image_new(img_buf, 20000);
	ck_assert_int_eq(
		session_ota_start(s, img, &(struct ota_params){.fast = true},
				  e2e_writable, t_report, NULL, now_ms),
		0);
	ota_image_unref(img);
	for (i = 0; i < 20000 && n_success + n_failed == 0; i++)
		e2e_session_step(s);
	ck_assert_msg(n_success == 1, "failed: %s", last_text);
	ck_assert_int_gt(dropped, 3);
	ck_assert(!session_ota_active(s));
	ck_assert_int_eq(n_installed, 1);
	ck_assert_uint_eq(
		fw_modules_find(&app.modules, FW_MOD_USER, 1)->version, 31);
	ck_assert_int_eq(sess_closes, 0);
	session_abort_requests(s);
	session_free(s);
	drop_every = 0;
}
END_TEST

static Suite *
ota_device_suite(void)
{
	Suite *s = suite_create("ota_device");
	TCase *tc;

	tc = tcase_create("device");
	tcase_add_test(tc, test_ota_e2e_fast_with_drops);
	tcase_add_test(tc, test_ota_e2e_normal);
	tcase_add_test(tc, test_ota_e2e_describe_before_reset);
	tcase_add_test(tc, test_ota_e2e_rejected_and_disabled);
	tcase_add_test(tc, test_ota_e2e_through_session);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(ota_device_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
