/* SPDX-License-Identifier: MIT */
/*
 * The device application layer (firmware-stubs/lib/fw_app.c, fw_ota.c,
 * fw_modules.c) over an in-memory port. The device is put straight into
 * the Hello state with a known session key (the handshake has its own
 * tests in check_fw_device.c), so the test plays the server with the
 * library's own AES channel and the shared codec: the §2.5 sequence,
 * Describe bytes, functions, variables, publish limits, subscriptions,
 * spark/device/reset, safe mode, and OTA (normal, fast with missed
 * chunks, bad chunk CRC, bad images, updates disabled). No sockets, no
 * sleeps: time is a number the test advances.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "coap/pcoap.h"
#include "fw_app.h"
#include "fw_crc32.h"
#include "fw_err.h"
#include "fw_memdev.h"

static struct fw_memdev md;

/* ---- the test server ---------------------------------------------------- */

static const uint8_t session_key[16] = "0123456789abcdef";
static const uint8_t session_iv[16] = "fedcba9876543210";
static struct pcoap_msg msg; /* last message from the device */
static uint16_t srv_mid = 1000;

static void
srv_send(const uint8_t *m, size_t len)
{
	fw_memdev_server_send(&md, m, len);
}

/* Take the next device message into msg; false when none. */
static bool
srv_next(void)
{
	return fw_memdev_server_next(&md, &msg);
}

static void
srv_expect(void)
{
	ck_assert_msg(srv_next(), "the device sent nothing");
}

static void
srv_expect_none(void)
{
	ck_assert_msg(!srv_next(), "unexpected message kind %s code %#x",
		      pcoap_kind_str(pcoap_particle_kind(&msg)), msg.code);
}

static struct port port;
static struct fw_app app;
static struct fw_modules mods;

/* notifications */
static int n_ready, n_safemode, n_installed, n_rejected, n_begin, n_done;
static char last_reject[32], last_event[128], last_call[700];

static void
on_note(struct fw_app *a, enum fw_app_note what, const char *x, const char *y,
	void *arg)
{
	(void)a;
	(void)arg;
	switch (what) {
	case FW_NOTE_READY:
		n_ready++;
		break;
	case FW_NOTE_SAFEMODE:
		n_safemode++;
		break;
	case FW_NOTE_OTA_INSTALLED:
		n_installed++;
		break;
	case FW_NOTE_OTA_REJECTED:
		n_rejected++;
		snprintf(last_reject, sizeof(last_reject), "%s", x);
		break;
	case FW_NOTE_OTA_BEGIN:
		n_begin++;
		break;
	case FW_NOTE_OTA_DONE:
		n_done++;
		break;
	case FW_NOTE_EVENT:
		snprintf(last_event, sizeof(last_event), "%s=%s", x, y);
		break;
	case FW_NOTE_CALL:
		snprintf(last_call, sizeof(last_call), "%s(%s)", x, y);
		break;
	default:
		break;
	}
}

static int pins[8];
static int32_t counter = 42;
static double ratio = 0.25;
static char greeting[] = "hello";

static int
fn_digitalwrite(const char *arg, void *ctx)
{
	(void)ctx;
	if (strcmp(arg, "D7,HIGH") != 0)
		return -1;
	pins[7] = 1;
	return 1;
}

static int
fn_echo(const char *arg, void *ctx)
{
	(void)ctx;
	return (int)strlen(arg);
}

static int
fn_dummy(const char *arg, void *ctx)
{
	(void)arg;
	(void)ctx;
	return 0;
}

static void
get_flag(const char *name, union fw_app_value *v, void *ctx)
{
	(void)name;
	(void)ctx;
	v->b = true;
}

static void
make_app(bool with_modules, uint16_t requires)
{
	struct fw_app_config cfg;

	fw_memdev_init(&md, &port);
	n_ready = n_safemode = n_installed = n_rejected = n_begin = n_done = 0;
	last_reject[0] = last_event[0] = last_call[0] = '\0';

	memset(&cfg, 0, sizeof(cfg));
	memcpy(cfg.dev.id, "\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67",
	       12);
	cfg.dev.product_id = 3;
	cfg.dev.product_version = 0xffff;
	cfg.dev.platform_id = 3;
	if (with_modules) {
		uint8_t hash[32];
		int i;

		for (i = 0; i < 32; i++)
			hash[i] = (uint8_t)(i * 7);
		fw_modules_default(&mods, 1512, requires, hash);
		cfg.modules = &mods;
	}
	cfg.updates_enabled = true;
	cfg.fast_ota = true;
	cfg.notify = on_note;
	fw_app_init(&app, &port, &cfg);
}

static void
tinker(void)
{
	ck_assert_int_eq(fw_app_function(&app, "digitalread", fn_dummy, NULL),
			 0);
	ck_assert_int_eq(
		fw_app_function(&app, "digitalwrite", fn_digitalwrite, NULL),
		0);
	ck_assert_int_eq(fw_app_function(&app, "analogread", fn_dummy, NULL),
			 0);
	ck_assert_int_eq(fw_app_function(&app, "analogwrite", fn_dummy, NULL),
			 0);
}

static void
step(void)
{
	int i;

	for (i = 0; i < 4; i++)
		ck_assert_int_eq(fw_app_step(&app, md.now), 0);
}

/* Steps that may drop the connection (hostile input). */
static void
step_any(void)
{
	int i;

	for (i = 0; i < 4; i++)
		(void)fw_app_step(&app, md.now);
}

/* Start, open the channel with the test key, exchange Hellos, and drain
 * the §2.5 sequence (returned in order through the callback). */
static void
go_ready_raw(void)
{
	uint8_t m[64];
	size_t n;

	fw_app_start(&app, md.now);
	app.dev.state = FW_DEVICE_HELLO;
	app.dev.deadline = md.now + FW_DEVICE_HELLO_TIMEOUT;
	fw_aes_chan_init(&app.dev.chan, session_key, session_iv);
	fw_aes_chan_init(&md.srv, session_key, session_iv);
	ck_assert_int_eq(pcoap_build_hello(m, sizeof(m), &n, srv_mid++, NULL),
			 PCOAP_OK);
	srv_send(m, n);
	step();
	ck_assert(fw_device_is_ready(&app.dev));
	ck_assert_int_eq(n_ready, 1);
}

/* Ready, and skip the post-connect messages. */
static void
go_ready(void)
{
	go_ready_raw();
	while (srv_next())
		;
	ck_assert_int_eq(app.seq, FW_SEQ_DONE);
}

static void
expect_event(const char *name, const char *data, bool is_private)
{
	struct pcoap_event ev;
	char nm[80];

	srv_expect();
	ck_assert_int_eq(pcoap_particle_kind(&msg), PCOAP_KIND_EVENT);
	ck_assert_int_eq(pcoap_parse_event(&msg, &ev, nm, sizeof(nm)),
			 PCOAP_OK);
	ck_assert_str_eq(nm, name);
	ck_assert_int_eq(ev.is_private, is_private);
	ck_assert_uint_eq(ev.data.len, strlen(data));
	if (ev.data.len)
		ck_assert_mem_eq(ev.data.p, data, ev.data.len);
}

static void
expect_subscribe(const char *filter, int scope)
{
	struct pcoap_subscribe s;
	char f[80];

	srv_expect();
	ck_assert_int_eq(msg.type, PCOAP_CON);
	ck_assert_int_eq(pcoap_particle_kind(&msg), PCOAP_KIND_SUBSCRIBE);
	ck_assert_int_eq(pcoap_parse_subscribe(&msg, &s, f, sizeof(f)),
			 PCOAP_OK);
	ck_assert_str_eq(f, filter);
	ck_assert_int_eq(s.scope, scope);
}

/* ---- Describe ----------------------------------------------------------- */

static const char tinker_describe[] =
	"{\"f\":[\"digitalread\",\"digitalwrite\",\"analogread\","
	"\"analogwrite\"],\"v\":{},\"p\":3,\"m\":[]}";

START_TEST(test_fw_app_describe_tinker_exact)
{
	char buf[800];
	size_t len;
	uint8_t m[32];
	size_t n;
	uint8_t tok;

	make_app(false, 0);
	tinker();
	ck_assert_int_eq(fw_app_describe(&app, 0, buf, sizeof(buf), &len), 0);
	ck_assert_str_eq(buf, tinker_describe);
	ck_assert_uint_eq(len, strlen(tinker_describe));

	/* and on the wire: ACK 2.05 + token + the same bytes */
	go_ready();
	ck_assert_int_eq(pcoap_build_describe(m, sizeof(m), &n, 77, 9, 0),
			 PCOAP_OK);
	srv_send(m, n);
	step();
	srv_expect();
	ck_assert_int_eq(msg.type, PCOAP_ACK);
	ck_assert_int_eq(msg.code, PCOAP_CODE_CONTENT);
	ck_assert_uint_eq(msg.mid, 77);
	ck_assert_uint_eq(msg.token.len, 1);
	tok = msg.token.p[0];
	ck_assert_uint_eq(tok, 9);
	ck_assert_uint_eq(msg.payload.len, strlen(tinker_describe));
	ck_assert_mem_eq(msg.payload.p, tinker_describe, msg.payload.len);

	/* application part only */
	ck_assert_int_eq(fw_app_describe(&app, PCOAP_DESCRIBE_APP, buf,
					 sizeof(buf), &len),
			 0);
	ck_assert_str_eq(buf, "{\"f\":[\"digitalread\",\"digitalwrite\","
			      "\"analogread\",\"analogwrite\"],\"v\":{}}");
	ck_assert_int_eq(fw_app_describe(&app, PCOAP_DESCRIBE_SYSTEM, buf,
					 sizeof(buf), &len),
			 0);
	ck_assert_str_eq(buf, "{\"p\":3,\"m\":[]}");
	/* too small a buffer fails cleanly */
	ck_assert_int_eq(fw_app_describe(&app, 0, buf, 20, &len),
			 FW_ERR_TOO_BIG);
}
END_TEST

START_TEST(test_fw_app_describe_variables_and_modules)
{
	static char longname[66];
	char buf[800];
	size_t len;
	const char *want_u =
		"{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":30,\"u\":"
		"\"00070E151C232A31383F464D545B626970777E858C939AA1A8AFB6BDC4C"
		"BD2D9\",\"f\":\"u\",\"n\":\"1\",\"v\":5,\"d\":[{\"f\":\"s\","
		"\"n\":\"2\",\"v\":1512,\"_\":\"\"}]}]}";
	const char *want_s2 =
		"{\"s\":131072,\"l\":\"m\",\"vc\":30,\"vv\":30,"
		"\"f\":\"s\",\"n\":\"2\",\"v\":1512,\"d\":[{"
		"\"f\":\"s\",\"n\":\"1\",\"v\":1512,\"_\":\"\"},"
		"{\"f\":\"b\",\"n\":\"0\",\"v\":400,\"_\":\"\"}]}";

	const char *want_head =
		"{\"f\":[\"echo\"],\"v\":{\"counter\":2,\"ratio\":9,"
		"\"greeting\":4},\"p\":3,\"m\":[{\"s\":16384,\"l\":\"m\","
		"\"vc\":30,\"vv\":30,\"f\":\"b\",\"n\":\"0\",\"v\":501,"
		"\"d\":[]},";

	make_app(true, 1512);
	ck_assert_int_eq(fw_app_function(&app, "echo", fn_echo, NULL), 0);
	ck_assert_int_eq(fw_app_variable(&app, "counter", FW_VAR_INT, &counter,
					 NULL, NULL),
			 0);
	ck_assert_int_eq(fw_app_variable(&app, "ratio", FW_VAR_DOUBLE, &ratio,
					 NULL, NULL),
			 0);
	ck_assert_int_eq(fw_app_variable(&app, "greeting", FW_VAR_STRING,
					 greeting, NULL, NULL),
			 0);
	fw_app_start(&app, md.now);
	ck_assert(!app.safe_mode);
	ck_assert_int_eq(fw_app_describe(&app, 0, buf, sizeof(buf), &len), 0);
	ck_assert_msg(strncmp(buf, want_head, strlen(want_head)) == 0, "%s",
		      buf);
	ck_assert_msg(strstr(buf, want_s2) != NULL, "%s", buf);
	ck_assert_uint_ge(len, strlen(want_u));
	ck_assert_str_eq(buf + len - strlen(want_u), want_u);

	/* registration limits */
	ck_assert_int_eq(fw_app_function(&app, "echo", fn_echo, NULL),
			 FW_ERR_INVAL);
	ck_assert_int_eq(fw_app_function(&app, "", fn_echo, NULL),
			 FW_ERR_INVAL);
	memset(longname, 'a', 65);
	longname[65] = '\0';
	ck_assert_int_eq(fw_app_function(&app, longname, fn_echo, NULL),
			 FW_ERR_INVAL);
	longname[64] = '\0';
	ck_assert_int_eq(fw_app_function(&app, longname, fn_echo, NULL), 0);
	ck_assert_int_eq(fw_app_variable(&app, "x", FW_VAR_INT, &counter,
					 get_flag, NULL),
			 FW_ERR_INVAL);
}
END_TEST

START_TEST(test_fw_app_function_limits)
{
	static const char *names[] = {"f0", "f1", "f2", "f3", "f4", "f5",
				      "f6", "f7", "f8", "f9", "fa", "fb",
				      "fc", "fd", "fe", "ff"};
	static const char *vnames[] = {"v00", "v01", "v02", "v03", "v04", "v05",
				       "v06", "v07", "v08", "v09", "v10", "v11",
				       "v12", "v13", "v14", "v15", "v16", "v17",
				       "v18", "v19", "v20"};
	int i;

	make_app(false, 0);
	for (i = 0; i < 15; i++)
		ck_assert_int_eq(
			fw_app_function(&app, names[i], fn_dummy, NULL), 0);
	ck_assert_int_eq(fw_app_function(&app, names[15], fn_dummy, NULL),
			 FW_ERR_LIMIT);
	for (i = 0; i < 20; i++)
		ck_assert_int_eq(fw_app_variable(&app, vnames[i], FW_VAR_BOOL,
						 NULL, get_flag, NULL),
				 0);
	ck_assert_int_eq(fw_app_variable(&app, vnames[20], FW_VAR_BOOL, NULL,
					 get_flag, NULL),
			 FW_ERR_LIMIT);
}
END_TEST

/* ---- post-connect sequence ---------------------------------------------- */

START_TEST(test_fw_app_step_post_connect_order)
{
	make_app(true, 1512);
	tinker();
	ck_assert_int_eq(fw_app_subscribe(&app, "vdev/cmd", FW_SUB_ALL, NULL,
					  NULL, NULL),
			 0);
	go_ready_raw();
	expect_event("spark/hardware/max_binary", "65536", true);
	expect_event("spark/hardware/ota_chunk_size", "512", true);
	expect_subscribe("spark", PCOAP_SCOPE_MINE);
	expect_subscribe("particle", PCOAP_SCOPE_MINE);
	expect_subscribe("vdev/cmd", PCOAP_SCOPE_ALL);
	srv_expect();
	ck_assert_int_eq(pcoap_particle_kind(&msg), PCOAP_KIND_TIME);
	srv_expect_none();
	ck_assert_int_eq(n_safemode, 0);

	/* message IDs: consecutive after the Hello's salt-based counter */
	ck_assert_int_eq(app.seq, FW_SEQ_DONE);
}
END_TEST

START_TEST(test_fw_app_step_safe_mode)
{
	char buf[800];
	size_t len;
	uint8_t m[64];
	size_t n;

	make_app(true, 2000); /* the app needs s/2 >= 2000, 1512 installed */
	tinker();
	ck_assert_int_eq(fw_app_subscribe(&app, "vdev/cmd", FW_SUB_ALL, NULL,
					  NULL, NULL),
			 0);
	go_ready_raw();
	ck_assert(app.safe_mode);
	expect_event("spark/hardware/max_binary", "65536", true);
	expect_event("spark/hardware/ota_chunk_size", "512", true);
	expect_event("spark/device/safemode", "", true);
	expect_subscribe("spark", PCOAP_SCOPE_MINE);
	expect_subscribe("particle", PCOAP_SCOPE_MINE);
	/* the app's subscription is not sent: the app does not run */
	srv_expect();
	ck_assert_int_eq(pcoap_particle_kind(&msg), PCOAP_KIND_TIME);
	srv_expect_none();
	ck_assert_int_eq(n_safemode, 1);

	ck_assert_int_eq(fw_app_describe(&app, 0, buf, sizeof(buf), &len), 0);
	ck_assert_msg(strncmp(buf, "{\"f\":[],\"v\":{},\"p\":3,\"m\":[", 26) ==
			      0,
		      "%s", buf);
	ck_assert_msg(strstr(buf, "\"vc\":30,\"vv\":26,\"u\":") != NULL, "%s",
		      buf);
	ck_assert_msg(strstr(buf, "\"v\":2000,\"_\":\"\"}]}]}") != NULL, "%s",
		      buf);

	/* no functions: the call is accepted and never answered */
	ck_assert_int_eq(pcoap_build_function_call(m, sizeof(m), &n, 50, 3,
						   "digitalwrite", 12,
						   "D7,HIGH", 7),
			 PCOAP_OK);
	srv_send(m, n);
	step();
	srv_expect();
	ck_assert_int_eq(pcoap_particle_kind(&msg), PCOAP_KIND_EMPTY_ACK);
	srv_expect_none();
	ck_assert_int_eq(pins[7], 0);
}
END_TEST

/* ---- functions and variables -------------------------------------------- */

START_TEST(test_fw_app_step_function_call)
{
	uint8_t m[800];
	char arg[700];
	size_t n;
	int32_t v;

	make_app(false, 0);
	tinker();
	ck_assert_int_eq(fw_app_function(&app, "echo", fn_echo, NULL), 0);
	go_ready();
	pins[7] = 0;
	ck_assert_int_eq(pcoap_build_function_call(m, sizeof(m), &n, 60, 4,
						   "digitalwrite", 12,
						   "D7,HIGH", 7),
			 PCOAP_OK);
	srv_send(m, n);
	step();
	srv_expect();
	ck_assert_int_eq(pcoap_particle_kind(&msg), PCOAP_KIND_EMPTY_ACK);
	ck_assert_uint_eq(msg.mid, 60);
	srv_expect();
	ck_assert_int_eq(msg.type, PCOAP_NON);
	ck_assert_int_eq(msg.code, PCOAP_CODE_CHANGED);
	ck_assert_uint_eq(msg.token.len, 1);
	ck_assert_uint_eq(msg.token.p[0], 4);
	ck_assert_int_eq(
		pcoap_value_decode_int32(msg.payload.p, msg.payload.len, &v),
		PCOAP_OK);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(pins[7], 1);
	ck_assert_str_eq(last_call, "digitalwrite(D7,HIGH)");

	/* the longest argument: 622 bytes */
	memset(arg, 'x', 622);
	ck_assert_int_eq(pcoap_build_function_call(m, sizeof(m), &n, 61, 5,
						   "echo", 4, arg, 622),
			 PCOAP_OK);
	srv_send(m, n);
	step();
	srv_expect();
	ck_assert_int_eq(pcoap_particle_kind(&msg), PCOAP_KIND_EMPTY_ACK);
	srv_expect();
	ck_assert_int_eq(
		pcoap_value_decode_int32(msg.payload.p, msg.payload.len, &v),
		PCOAP_OK);
	ck_assert_int_eq(v, 622);

	/* 623 bytes: ACK 4.00 with the token, no call */
	ck_assert_int_eq(pcoap_build_function_call(m, sizeof(m), &n, 62, 6,
						   "echo", 4, arg, 623),
			 PCOAP_OK);
	srv_send(m, n);
	step();
	srv_expect();
	ck_assert_int_eq(msg.type, PCOAP_ACK);
	ck_assert_int_eq(msg.code, PCOAP_CODE_BAD_REQUEST);
	ck_assert_uint_eq(msg.mid, 62);
	ck_assert_uint_eq(msg.token.p[0], 6);
	srv_expect_none();

	/* unknown function: empty ACK, never a result (Device OS 1.5) */
	ck_assert_int_eq(pcoap_build_function_call(m, sizeof(m), &n, 63, 7,
						   "nosuch", 6, "", 0),
			 PCOAP_OK);
	srv_send(m, n);
	step();
	srv_expect();
	ck_assert_int_eq(pcoap_particle_kind(&msg), PCOAP_KIND_EMPTY_ACK);
	ck_assert_uint_eq(msg.mid, 63);
	srv_expect_none();
	ck_assert(fw_device_is_ready(&app.dev));
}
END_TEST

static void
request_var(const char *name, uint8_t tok)
{
	uint8_t m[128];
	size_t n;

	ck_assert_int_eq(pcoap_build_variable(m, sizeof(m), &n, 70 + tok, tok,
					      name, strlen(name)),
			 PCOAP_OK);
	srv_send(m, n);
	step();
}

static void
expect_var_reply(uint8_t tok)
{
	srv_expect();
	ck_assert_int_eq(pcoap_particle_kind(&msg), PCOAP_KIND_EMPTY_ACK);
	ck_assert_uint_eq(msg.mid, 70 + tok);
	srv_expect();
	ck_assert_int_eq(msg.type, PCOAP_NON);
	ck_assert_int_eq(msg.code, PCOAP_CODE_CONTENT);
	ck_assert_uint_eq(msg.token.len, 1);
	ck_assert_uint_eq(msg.token.p[0], tok);
}

START_TEST(test_fw_app_step_variables)
{
	int32_t i;
	double d;
	bool b;

	make_app(false, 0);
	ck_assert_int_eq(fw_app_variable(&app, "counter", FW_VAR_INT, &counter,
					 NULL, NULL),
			 0);
	ck_assert_int_eq(fw_app_variable(&app, "ratio", FW_VAR_DOUBLE, &ratio,
					 NULL, NULL),
			 0);
	ck_assert_int_eq(fw_app_variable(&app, "greeting", FW_VAR_STRING,
					 greeting, NULL, NULL),
			 0);
	ck_assert_int_eq(fw_app_variable(&app, "flag", FW_VAR_BOOL, NULL,
					 get_flag, NULL),
			 0);
	go_ready();

	request_var("counter", 1);
	expect_var_reply(1);
	ck_assert_int_eq(
		pcoap_value_decode_int32(msg.payload.p, msg.payload.len, &i),
		PCOAP_OK);
	ck_assert_int_eq(i, 42);

	request_var("ratio", 2);
	expect_var_reply(2);
	ck_assert_int_eq(
		pcoap_value_decode_double(msg.payload.p, msg.payload.len, &d),
		PCOAP_OK);
	ck_assert(d == 0.25);

	request_var("greeting", 3);
	expect_var_reply(3);
	ck_assert_uint_eq(msg.payload.len, 5);
	ck_assert_mem_eq(msg.payload.p, "hello", 5);

	request_var("flag", 4);
	expect_var_reply(4);
	ck_assert_int_eq(
		pcoap_value_decode_bool(msg.payload.p, msg.payload.len, &b),
		PCOAP_OK);
	ck_assert(b);

	request_var("nosuch", 5);
	srv_expect();
	ck_assert_int_eq(msg.type, PCOAP_ACK);
	ck_assert_int_eq(msg.code, PCOAP_CODE_NOT_FOUND);
	ck_assert_uint_eq(msg.mid, 75);
	ck_assert_uint_eq(msg.token.len, 1);
	ck_assert_uint_eq(msg.token.p[0], 5);
	srv_expect_none();
}
END_TEST

/* ---- publish ------------------------------------------------------------ */

START_TEST(test_fw_app_publish_rate_limit)
{
	const struct pcoap_opt *o;
	struct pcoap_event ev;
	char nm[80];
	int i;

	make_app(false, 0);
	go_ready();
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(fw_app_publish(&app, "temp", "23", 60,
						FW_PUBLISH_PRIVATE),
				 0);
		step();
		expect_event("temp", "23", true);
		md.now += 100;
	}
	/* fifth within one second: refused locally, nothing sent */
	ck_assert_int_eq(fw_app_publish(&app, "temp", "23", 60, 0),
			 FW_ERR_LIMIT);
	/* system events have their own budget */
	ck_assert_int_eq(fw_app_publish(&app, "spark/device/x", "", 60,
					FW_PUBLISH_PRIVATE),
			 0);
	step();
	expect_event("spark/device/x", "", true);
	srv_expect_none();
	/* one second after the first, one slot is free again */
	md.now = md.now - 400 + 1000;
	ck_assert_int_eq(
		fw_app_publish(&app, "temp", "24", 120,
			       FW_PUBLISH_PUBLIC | FW_PUBLISH_WITH_ACK),
		0);
	ck_assert_int_eq(fw_app_publish(&app, "temp", "25", 60, 0),
			 FW_ERR_LIMIT);
	step();
	srv_expect();
	ck_assert_int_eq(msg.type, PCOAP_CON);
	ck_assert_int_eq(pcoap_parse_event(&msg, &ev, nm, sizeof(nm)),
			 PCOAP_OK);
	ck_assert(!ev.is_private);
	ck_assert_uint_eq(ev.ttl, 120);
	o = pcoap_msg_opt(&msg, PCOAP_OPT_MAX_AGE, 0);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(o->len, 3);
	/* TTL 60: no Max-Age; NO_ACK wins over WITH_ACK */
	md.now += 1000;
	ck_assert_int_eq(
		fw_app_publish(&app, "temp", "26", 60,
			       FW_PUBLISH_NO_ACK | FW_PUBLISH_WITH_ACK),
		0);
	step();
	srv_expect();
	ck_assert_int_eq(msg.type, PCOAP_NON);
	ck_assert_ptr_null(pcoap_msg_opt(&msg, PCOAP_OPT_MAX_AGE, 0));
	/* limits */
	ck_assert_int_eq(fw_app_publish(&app, "", "", 60, 0), FW_ERR_INVAL);
}
END_TEST

START_TEST(test_fw_app_publish_system_budget)
{
	int i;

	make_app(false, 0);
	go_ready();
	/* the post-connect sequence took 2 of the 255 */
	for (i = 0; i < 253; i++) {
		ck_assert_int_eq(fw_app_publish(&app, "particle/x", "1", 60,
						FW_PUBLISH_PRIVATE),
				 0);
		step();
		srv_expect();
	}
	ck_assert_int_eq(fw_app_publish(&app, "spark/y", "1", 60, 0),
			 FW_ERR_LIMIT);
	/* user events are unaffected */
	ck_assert_int_eq(fw_app_publish(&app, "user", "1", 60, 0), 0);
	md.now += FW_APP_SYS_WINDOW;
	ck_assert_int_eq(fw_app_publish(&app, "spark/y", "1", 60, 0), 0);
}
END_TEST

START_TEST(test_fw_app_publish_not_ready)
{
	make_app(false, 0);
	ck_assert_int_eq(fw_app_publish(&app, "temp", "1", 60, 0),
			 FW_ERR_INVAL);
}
END_TEST

/* ---- subscriptions ------------------------------------------------------ */

static int hits_cmd, hits_mine;
static char got[128];

static void
on_cmd(struct fw_app *a, const char *name, const char *data, void *ctx)
{
	(void)a;
	(void)ctx;
	hits_cmd++;
	snprintf(got, sizeof(got), "%s=%s", name, data);
}

static void
on_mine(struct fw_app *a, const char *name, const char *data, void *ctx)
{
	(void)a;
	(void)name;
	(void)data;
	(void)ctx;
	hits_mine++;
}

static void
send_event(const char *name, const char *data)
{
	uint8_t m[256];
	size_t n;

	ck_assert_int_eq(pcoap_build_event(m, sizeof(m), &n, PCOAP_NON,
					   srv_mid++, false, name, strlen(name),
					   60, (const uint8_t *)data,
					   strlen(data)),
			 PCOAP_OK);
	srv_send(m, n);
	step();
}

START_TEST(test_fw_app_subscribe_dispatch)
{
	const char *dev = "0123456789abcdef01234567";
	struct pcoap_subscribe s;
	char f[80];

	make_app(false, 0);
	hits_cmd = hits_mine = 0;
	ck_assert_int_eq(fw_app_subscribe(&app, "vdev/cmd", FW_SUB_ALL, NULL,
					  on_cmd, NULL),
			 0);
	ck_assert_int_eq(fw_app_subscribe(&app, "vdev/mine", FW_SUB_MINE, NULL,
					  on_mine, NULL),
			 0);
	ck_assert_int_eq(
		fw_app_subscribe(&app, "", FW_SUB_ALL, NULL, on_cmd, NULL),
		FW_ERR_INVAL);
	go_ready();

	send_event("vdev/cmd/go", "now");
	ck_assert_int_eq(hits_cmd, 1);
	ck_assert_int_eq(hits_mine, 0);
	ck_assert_str_eq(got, "vdev/cmd/go=now");
	ck_assert_str_eq(last_event, "vdev/cmd/go=now");
	send_event("vdev/mine", "");
	ck_assert_int_eq(hits_mine, 1);
	send_event("other", "x");
	ck_assert_int_eq(hits_cmd, 1);
	ck_assert_int_eq(hits_mine, 1);
	srv_expect_none(); /* events are not acknowledged */

	/* a subscription added while connected goes out at once */
	ck_assert_int_eq(
		fw_app_subscribe(&app, "dev/", FW_SUB_DEVICE, dev, NULL, NULL),
		0);
	step();
	srv_expect();
	ck_assert_int_eq(pcoap_parse_subscribe(&msg, &s, f, sizeof(f)),
			 PCOAP_OK);
	ck_assert_int_eq(s.scope, PCOAP_SCOPE_DEVICE);
	ck_assert_uint_eq(s.device_id.len, 24);
	ck_assert_mem_eq(s.device_id.p, dev, 24);
	/* table full: 2 system + 4 */
	ck_assert_int_eq(
		fw_app_subscribe(&app, "a", FW_SUB_ALL, NULL, NULL, NULL), 0);
	ck_assert_int_eq(
		fw_app_subscribe(&app, "b", FW_SUB_ALL, NULL, NULL, NULL),
		FW_ERR_LIMIT);

	/* updates flags from the cloud */
	send_event("particle/device/updates/forced", "true");
	ck_assert(app.updates_forced);
	send_event("particle/device/updates/pending", "true");
	ck_assert(app.updates_pending);
}
END_TEST

START_TEST(test_fw_app_subscribe_resent_after_reset)
{
	make_app(false, 0);
	ck_assert_int_eq(fw_app_subscribe(&app, "vdev/cmd", FW_SUB_ALL, NULL,
					  on_cmd, NULL),
			 0);
	go_ready();
	send_event("spark/device/reset", "reboot");
	ck_assert_int_eq(md.closes, 1);
	ck_assert(!fw_device_is_ready(&app.dev));
	ck_assert_int_eq(app.dev.last_err, FW_ERR_RESET);

	/* the same device connects again: everything is re-sent */
	md.connected = true;
	n_ready = 0;
	go_ready_raw();
	expect_event("spark/hardware/max_binary", "65536", true);
	expect_event("spark/hardware/ota_chunk_size", "512", true);
	expect_subscribe("spark", PCOAP_SCOPE_MINE);
	expect_subscribe("particle", PCOAP_SCOPE_MINE);
	expect_subscribe("vdev/cmd", PCOAP_SCOPE_ALL);

	/* "safe mode": the next boot runs without the app */
	while (srv_next())
		;
	send_event("spark/device/reset", "safe mode");
	ck_assert_int_eq(md.closes, 2);
	ck_assert(app.safe_mode);
	md.connected = true;
	n_ready = 0;
	go_ready_raw();
	expect_event("spark/hardware/max_binary", "65536", true);
	expect_event("spark/hardware/ota_chunk_size", "512", true);
	expect_event("spark/device/safemode", "", true);
}
END_TEST

/* ---- OTA ---------------------------------------------------------------- */

static uint8_t image[3000];
static size_t image_len;

/* A user part image (§5.8) of len bytes: prefix, filler, suffix, CRC. */
static void
make_image(size_t len, uint16_t version, uint16_t platform, uint16_t needs)
{
	memset(image, 0, sizeof(image));
	fw_memdev_user_image(image, sizeof(image), len, version, platform,
			     needs);
	image_len = len;
}

static void
send_begin(bool fast, uint16_t chunk_size, uint8_t tok)
{
	struct pcoap_update_begin ub;
	uint8_t m[64];
	size_t n;

	memset(&ub, 0, sizeof(ub));
	ub.flags = fast ? PCOAP_UPDATE_F_FAST : 0;
	ub.chunk_size = chunk_size;
	ub.file_size = (uint32_t)image_len;
	ck_assert_int_eq(
		pcoap_build_update_begin(m, sizeof(m), &n, 100, tok, &ub),
		PCOAP_OK);
	srv_send(m, n);
	step();
}

static void
send_chunk(uint16_t cs, int idx, bool fast, bool bad_crc)
{
	uint8_t m[800], data[512];
	size_t off = (size_t)idx * cs, len, n;
	uint32_t crc;

	len = image_len - off < cs ? image_len - off : cs;
	memset(data, 0, sizeof(data));
	memcpy(data, image + off, len);
	len = cs; /* padded like the Node servers */
	crc = fw_crc32(0, data, len) ^ (bad_crc ? 1 : 0);
	ck_assert_int_eq(pcoap_build_chunk(m, sizeof(m), &n, srv_mid++,
					   (uint8_t)(20 + idx), crc,
					   fast ? idx : -1, data, len),
			 PCOAP_OK);
	srv_send(m, n);
	step();
}

static void
send_done(uint8_t tok)
{
	uint8_t m[32];
	size_t n;

	ck_assert_int_eq(pcoap_build_update_done(m, sizeof(m), &n, PCOAP_CON,
						 200, &tok, 1, NULL, 0),
			 PCOAP_OK);
	srv_send(m, n);
	step();
}

static void
expect_ready_reply(uint8_t tok, uint8_t flags)
{
	uint8_t f;

	srv_expect();
	ck_assert_int_eq(pcoap_particle_kind(&msg), PCOAP_KIND_EMPTY_ACK);
	ck_assert_uint_eq(msg.mid, 100);
	srv_expect();
	ck_assert_int_eq(msg.type, PCOAP_NON);
	ck_assert_uint_eq(msg.token.p[0], tok);
	ck_assert_int_eq(pcoap_parse_update_ready(&msg, &f), PCOAP_OK);
	ck_assert_uint_eq(f, flags);
}

static void
expect_done_ok(uint8_t tok)
{
	srv_expect();
	ck_assert_int_eq(msg.type, PCOAP_ACK);
	ck_assert_int_eq(msg.code, PCOAP_CODE_CHANGED);
	ck_assert_uint_eq(msg.mid, 200);
	ck_assert_uint_eq(msg.token.p[0], tok);
	ck_assert_msg(
		msg.payload.len > 10 &&
			memcmp(msg.payload.p, "{\"r\":\"ok\",\"u\":{", 15) == 0,
		"%.*s", (int)msg.payload.len, msg.payload.p);
}

START_TEST(test_fw_ota_normal)
{
	const struct fw_module *u;
	int i;

	make_app(true, 1512);
	go_ready();
	make_image(2000, 7, 3, 1512);
	send_begin(false, 512, 9);
	expect_ready_reply(9, 0);
	ck_assert_int_eq(n_begin, 1);
	/* events are refused while the update runs */
	ck_assert_int_eq(fw_app_publish(&app, "x", "", 60, 0), FW_ERR_BUSY);
	for (i = 0; i < 4; i++) {
		send_chunk(512, i, false, false);
		srv_expect();
		ck_assert_int_eq(pcoap_particle_kind(&msg),
				 PCOAP_KIND_EMPTY_ACK);
		srv_expect();
		ck_assert_int_eq(msg.type, PCOAP_NON);
		ck_assert_int_eq(msg.code, PCOAP_CODE_CHANGED);
		ck_assert_uint_eq(msg.token.p[0], 20 + i);
	}
	send_done(11);
	expect_done_ok(11);
	ck_assert_int_eq(n_done, 1);
	ck_assert_int_eq(n_installed, 1);
	u = fw_modules_find(&app.modules, FW_MOD_USER, 1);
	ck_assert_uint_eq(u->version, 7);
	ck_assert_uint_eq(u->hash[0], 0xa0);
	/* then the device resets, with Hello flag 0x01 next time */
	step();
	ck_assert_int_eq(md.closes, 1);
	ck_assert(!fw_device_is_ready(&app.dev));
	ck_assert_uint_eq(app.dev.cfg.hello_flags & PCOAP_HELLO_F_OTA_DONE,
			  PCOAP_HELLO_F_OTA_DONE);
	md.connected = true;
	n_ready = 0;
	go_ready_raw();
	ck_assert_uint_eq(app.dev.cfg.hello_flags & PCOAP_HELLO_F_OTA_DONE, 0);
}
END_TEST

START_TEST(test_fw_ota_normal_bad_crc)
{
	make_app(true, 1512);
	go_ready();
	make_image(1000, 8, 3, 1512);
	send_begin(false, 512, 9);
	expect_ready_reply(9, 0);
	send_chunk(512, 0, false, true);
	srv_expect();
	ck_assert_int_eq(pcoap_particle_kind(&msg), PCOAP_KIND_EMPTY_ACK);
	srv_expect();
	ck_assert_int_eq(msg.code, PCOAP_CODE_BAD_REQUEST);
	ck_assert_uint_eq(msg.token.p[0], 20);
	/* resent correctly: stored as chunk 0 */
	send_chunk(512, 0, false, false);
	srv_next();
	srv_expect();
	ck_assert_int_eq(msg.code, PCOAP_CODE_CHANGED);
	/* done too early: 4.00 and the missing list */
	send_done(12);
	srv_expect();
	ck_assert_int_eq(msg.code, PCOAP_CODE_BAD_REQUEST);
	srv_expect();
	ck_assert_int_eq(pcoap_particle_kind(&msg), PCOAP_KIND_CHUNK_MISSED);
	send_chunk(512, 1, false, false);
	srv_next();
	srv_next();
	send_done(13);
	expect_done_ok(13);
	ck_assert_uint_eq(
		fw_modules_find(&app.modules, FW_MOD_USER, 1)->version, 8);
}
END_TEST

START_TEST(test_fw_ota_fast_missed_chunks)
{
	uint16_t idx[8];
	size_t n;
	int i;

	make_app(true, 1512);
	go_ready();
	make_image(2500, 9, 3, 1512);
	send_begin(true, 256, 10);
	expect_ready_reply(10, 1);
	for (i = 0; i < 10; i++)
		if (i != 1 && i != 7)
			send_chunk(256, i, true, false);
	/* a chunk with a bad CRC is ignored, a duplicate too */
	send_chunk(256, 7, true, true);
	send_chunk(256, 0, true, false);
	srv_expect_none(); /* fast mode: no replies */
	send_done(14);
	srv_expect();
	ck_assert_int_eq(msg.type, PCOAP_ACK);
	ck_assert_int_eq(msg.code, PCOAP_CODE_BAD_REQUEST);
	ck_assert_uint_eq(msg.token.p[0], 14);
	srv_expect();
	ck_assert_int_eq(msg.type, PCOAP_CON);
	ck_assert_int_eq(pcoap_parse_chunk_missed(&msg, idx, 8, &n), PCOAP_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(idx[0], 1);
	ck_assert_uint_eq(idx[1], 7);
	ck_assert_int_eq(n_installed, 0);
	send_chunk(256, 1, true, false);
	send_chunk(256, 7, true, false);
	srv_expect_none();
	send_done(15);
	expect_done_ok(15);
	ck_assert_int_eq(n_installed, 1);
	ck_assert_uint_eq(
		fw_modules_find(&app.modules, FW_MOD_USER, 1)->version, 9);
}
END_TEST

static void
ota_all(uint16_t cs, uint8_t tok)
{
	size_t i, chunks = (image_len + cs - 1) / cs;

	send_begin(true, cs, tok);
	expect_ready_reply(tok, 1);
	for (i = 0; i < chunks; i++)
		send_chunk(cs, (int)i, true, false);
	send_done(tok);
}

START_TEST(test_fw_ota_bad_image)
{
	make_app(true, 1512);
	go_ready();

	/* image CRC broken (the chunk CRCs are right) */
	make_image(1200, 10, 3, 1512);
	image[500] ^= 0xff;
	ota_all(512, 30);
	srv_expect();
	ck_assert_int_eq(msg.code, PCOAP_CODE_BAD_REQUEST);
	ck_assert_int_eq(n_rejected, 1);
	ck_assert_str_eq(last_reject, "crc");

	/* another platform */
	make_image(1200, 10, 6, 1512);
	ota_all(512, 31);
	srv_expect();
	ck_assert_int_eq(msg.code, PCOAP_CODE_BAD_REQUEST);
	ck_assert_str_eq(last_reject, "module");

	/* header whose end does not match the file length */
	make_image(1200, 10, 3, 1512);
	fw_memdev_put_le32(image + 4, 0x08080000 + 100);
	ota_all(512, 32);
	srv_expect();
	ck_assert_int_eq(msg.code, PCOAP_CODE_BAD_REQUEST);
	ck_assert_str_eq(last_reject, "header");

	ck_assert_int_eq(n_installed, 0);
	ck_assert_uint_eq(
		fw_modules_find(&app.modules, FW_MOD_USER, 1)->version, 5);
	ck_assert(fw_device_is_ready(&app.dev));

	/* an app that needs a newer system part installs (user dependencies
	 * are optional) and the device comes back in safe mode */
	make_image(1200, 11, 3, 3000);
	ota_all(512, 33);
	expect_done_ok(33);
	step();
	ck_assert(app.safe_mode);
}
END_TEST

START_TEST(test_fw_ota_disabled)
{
	make_app(true, 1512);
	app.updates_enabled = false;
	go_ready();
	make_image(1000, 8, 3, 1512);
	send_begin(false, 512, 40);
	srv_expect();
	ck_assert_int_eq(msg.type, PCOAP_ACK);
	ck_assert_int_eq(msg.code, PCOAP_CODE_UNAVAILABLE);
	ck_assert_uint_eq(msg.token.p[0], 40);
	srv_expect_none();
	/* forced by the cloud: accepted */
	send_event("particle/device/updates/forced", "true");
	send_begin(false, 512, 41);
	expect_ready_reply(41, 0);
	/* too big for the flash area */
	image_len = FW_MEMDEV_FLASH_SIZE + 1;
	send_begin(false, 512, 42);
	srv_expect();
	ck_assert_int_eq(msg.code, PCOAP_CODE_BAD_REQUEST);
}
END_TEST

START_TEST(test_fw_ota_timeout)
{
	make_app(true, 1512);
	go_ready();
	make_image(1000, 8, 3, 1512);
	send_begin(false, 512, 9);
	expect_ready_reply(9, 0);
	ck_assert(app.ota.active);
	md.now += FW_APP_OTA_TIMEOUT;
	step();
	ck_assert(!app.ota.active);
	ck_assert_str_eq(last_reject, "timeout");

	/* a transfer cut by a reconnect is dropped; the sequence runs */
	while (srv_next()) /* the keep-alive ping of the quiet 30 s */
		;
	send_begin(false, 512, 10);
	expect_ready_reply(10, 0);
	send_event("spark/device/reset", "network");
	ck_assert(!fw_device_is_ready(&app.dev));
	md.connected = true;
	n_ready = 0;
	go_ready();
	ck_assert(!app.ota.active);
	ck_assert_str_eq(last_reject, "disconnected");
}
END_TEST

/* ---- module table ------------------------------------------------------- */

START_TEST(test_fw_modules_safe_mode)
{
	struct fw_modules t;
	struct fw_module_info mi;
	uint8_t p[24];

	fw_modules_default(&t, 1512, 1512, NULL);
	ck_assert(!fw_modules_safe_mode(&t));
	fw_modules_default(&t, 1512, 1513, NULL);
	ck_assert(fw_modules_safe_mode(&t));
	ck_assert_uint_eq(
		fw_modules_vv(&t, fw_modules_find(&t, FW_MOD_USER, 1)), 26);
	/* non-transitive: a broken system chain does not matter here */
	fw_modules_default(&t, 1512, 1512, NULL);
	((struct fw_module *)fw_modules_find(&t, FW_MOD_BOOTLOADER, 0))
		->version = 1;
	ck_assert(!fw_modules_safe_mode(&t));
	ck_assert_uint_eq(
		fw_modules_vv(&t, fw_modules_find(&t, FW_MOD_SYSTEM, 2)), 26);
	/* no user part: no safe mode */
	fw_modules_init(&t);
	ck_assert(!fw_modules_safe_mode(&t));

	memset(p, 0, sizeof(p));
	ck_assert_int_eq(fw_module_parse_prefix(p, &mi), FW_ERR_MALFORMED);
	fw_memdev_put_le32(p, 0x1000);
	fw_memdev_put_le32(p + 4, 0x2000);
	p[14] = FW_MOD_SYSTEM;
	p[15] = 2;
	ck_assert_int_eq(fw_module_parse_prefix(p, &mi), 0);
	ck_assert_uint_eq(mi.end - mi.start, 0x1000);
	ck_assert_uint_eq(mi.func, FW_MOD_SYSTEM);
	ck_assert_int_eq(fw_module_func_char(FW_MOD_USER), 'u');
	ck_assert_int_eq(fw_module_func_char(200), '_');
}
END_TEST

/* ---- hostile input ------------------------------------------------------- */

START_TEST(test_fw_app_step_mutated_messages)
{
	struct pcoap_update_begin ub;
	uint8_t base[8][800], m[800], data[512];
	size_t blen[8], n, i;
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	int it, k;

	memset(data, 0x33, sizeof(data));
	memset(&ub, 0, sizeof(ub));
	ub.flags = 1;
	ub.chunk_size = 512;
	ub.file_size = 4000;
	ck_assert_int_eq(pcoap_build_function_call(base[0], 800, &blen[0], 1, 1,
						   "echo", 4, "abc", 3),
			 PCOAP_OK);
	ck_assert_int_eq(pcoap_build_variable(base[1], 800, &blen[1], 2, 2,
					      "counter", 7),
			 PCOAP_OK);
	ck_assert_int_eq(pcoap_build_event(base[2], 800, &blen[2], PCOAP_NON, 3,
					   true, "spark/device/reset", 18, 60,
					   (const uint8_t *)"network", 7),
			 PCOAP_OK);
	ck_assert_int_eq(
		pcoap_build_update_begin(base[3], 800, &blen[3], 4, 4, &ub),
		PCOAP_OK);
	ck_assert_int_eq(pcoap_build_chunk(base[4], 800, &blen[4], 5, 5,
					   fw_crc32(0, data, 512), 3, data,
					   512),
			 PCOAP_OK);
	ck_assert_int_eq(
		pcoap_build_update_done(base[5], 800, &blen[5], PCOAP_CON, 6,
					(const uint8_t *)"\x06", 1, NULL, 0),
		PCOAP_OK);
	ck_assert_int_eq(pcoap_build_describe(base[6], 800, &blen[6], 7, 7, 3),
			 PCOAP_OK);
	ck_assert_int_eq(pcoap_build_signal(base[7], 800, &blen[7], 8, 8, true),
			 PCOAP_OK);

	for (it = 0; it < 1500; it++) {
		if (it % 50 == 0) {
			make_app(true, 1512);
			ck_assert_int_eq(
				fw_app_function(&app, "echo", fn_echo, NULL),
				0);
			ck_assert_int_eq(fw_app_variable(&app, "counter",
							 FW_VAR_INT, &counter,
							 NULL, NULL),
					 0);
			go_ready();
		}
		if (!fw_device_is_ready(&app.dev)) {
			md.connected = true;
			n_ready = 0;
			md.d2s.len = md.s2d.len = 0;
			go_ready();
		}
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		k = (int)(rng % 8);
		n = blen[k];
		memcpy(m, base[k], n);
		/* flip 1-4 bytes, sometimes cut the message */
		for (i = 0; i < 1 + (rng >> 8) % 4; i++)
			m[(rng >> (16 + 4 * i)) % n] ^=
				(uint8_t)(1u << ((rng >> (40 + i)) % 8));
		if ((rng >> 60) == 0)
			n = (rng >> 20) % n + 1;
		srv_send(m, n);
		step_any();
		while (srv_next())
			;
	}
}
END_TEST

static Suite *
fw_app_suite(void)
{
	Suite *s = suite_create("fw_app");
	TCase *tc;

#define ADD(name)                                                              \
	do {                                                                   \
		tc = tcase_create(#name);                                      \
		tcase_add_test(tc, name);                                      \
		suite_add_tcase(s, tc);                                        \
	} while (0)
	ADD(test_fw_app_describe_tinker_exact);
	ADD(test_fw_app_describe_variables_and_modules);
	ADD(test_fw_app_function_limits);
	ADD(test_fw_app_step_post_connect_order);
	ADD(test_fw_app_step_safe_mode);
	ADD(test_fw_app_step_function_call);
	ADD(test_fw_app_step_variables);
	ADD(test_fw_app_publish_rate_limit);
	ADD(test_fw_app_publish_system_budget);
	ADD(test_fw_app_publish_not_ready);
	ADD(test_fw_app_subscribe_dispatch);
	ADD(test_fw_app_subscribe_resent_after_reset);
	ADD(test_fw_ota_normal);
	ADD(test_fw_ota_normal_bad_crc);
	ADD(test_fw_ota_fast_missed_chunks);
	ADD(test_fw_ota_bad_image);
	ADD(test_fw_ota_disabled);
	ADD(test_fw_ota_timeout);
	ADD(test_fw_modules_safe_mode);
	ADD(test_fw_app_step_mutated_messages);
#undef ADD
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(fw_app_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
