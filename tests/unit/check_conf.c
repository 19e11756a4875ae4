/* SPDX-License-Identifier: MIT */
/* Tests for conf: file parsing, environment and flag overrides, errors. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "err.h"

static int
parse(const char *text, struct conf **out, char *err)
{
	struct conf *cfg = conf_new_defaults();
	int r = conf_parse_text(cfg, text, strlen(text), "t.conf", err,
				CONF_ERRLEN);

	if (r != 0) {
		conf_free(cfg);
		cfg = NULL;
	}
	*out = cfg;
	return r;
}

START_TEST(test_conf_defaults)
{
	struct conf *cfg = conf_new_defaults();

	ck_assert_str_eq(cfg->device_listen, "0.0.0.0:5683");
	ck_assert_str_eq(cfg->api_listen, "0.0.0.0:8080");
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_NOTICE);
	ck_assert_int_eq(cfg->crypto_threads, 0);
	ck_assert_int_eq(cfg->loop_nice, 0);
	ck_assert_int_eq(cfg->request_timeout, 30);
	ck_assert_int_eq(cfg->device_cache_linger_s, 60);
	conf_free(cfg);
}
END_TEST

START_TEST(test_conf_parse_good)
{
	struct conf *cfg;
	char err[CONF_ERRLEN];
	const char *text = "# comment\n"
			   "\n"
			   "  database_url   host=/tmp dbname=x  \n"
			   "device_listen 127.0.0.1:0\r\n"
			   "api_listen [::1]:8081\n"
			   "log_level debug\n"
			   "rate_limits all=20000,token=50,lock=3\n"
			   "crypto_threads 4\n"
			   "loop_nice -10\n"
			   "device_cache_linger_s 0\n"
			   "web_root \"\"\n"
			   "log_file \"/var/log/cinder d.log\"\n";

	ck_assert_int_eq(parse(text, &cfg, err), 0);
	ck_assert_str_eq(cfg->database_url, "host=/tmp dbname=x");
	ck_assert_str_eq(cfg->device_listen, "127.0.0.1:0");
	ck_assert_str_eq(cfg->api_listen, "[::1]:8081");
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_DEBUG);
	ck_assert_int_eq(cfg->crypto_threads, 4);
	ck_assert_int_eq(cfg->loop_nice, -10);
	ck_assert_int_eq(cfg->device_cache_linger_s, 0);
	ck_assert_str_eq(cfg->rate_limits, "all=20000,token=50,lock=3");
	ck_assert_str_eq(cfg->web_root, "");
	ck_assert_str_eq(cfg->log_file, "/var/log/cinder d.log");
	conf_free(cfg);
}
END_TEST

/* Each bad line must fail with a message naming the line and the key. */
static const struct {
	const char *text;
	const char *want; /* substring of the error */
} bad[] = {
	{"nosuchkey 1\n", "t.conf:1: unknown key \"nosuchkey\""},
	{"\n\ncrypto_threads many\n", "t.conf:3: crypto_threads"},
	{"crypto_threads 100000\n", "t.conf:1: crypto_threads"},
	{"crypto_threads 4x\n", "t.conf:1: crypto_threads"},
	{"loop_nice -21\n", "t.conf:1: loop_nice: \"-21\" is not a number "
			    "from -20 to 19"},
	{"loop_nice 20\n", "t.conf:1: loop_nice"},
	{"loop_nice high\n", "t.conf:1: loop_nice"},
	{"loop_nice -5.5\n", "t.conf:1: loop_nice"},
	{"log_level loud\n", "t.conf:1: log_level"},
	{"device_listen 5683\n", "t.conf:1: device_listen"},
	{"device_listen host:99999\n", "t.conf:1: device_listen"},
	{"device_listen localhost:5683\n", "numeric address:port"},
	{"api_listen [::1]8080\n", "t.conf:1: api_listen"},
	{"server_key\n", "t.conf:1: server_key: missing value"},
	{"keepalive_timeout 2\n", "t.conf:1: keepalive_timeout"},
	{"device_cache_linger_s -1\n", "t.conf:1: device_cache_linger_s"},
	{"device_cache_linger_s 86401\n", "t.conf:1: device_cache_linger_s"},
	{"rate_limits all=0\n", "t.conf:1: rate_limits"},
	{"rate_limits all=5,tokens=3\n", "t.conf:1: rate_limits"},
	{"rate_limits all=5,\n", "t.conf:1: rate_limits"},
};

START_TEST(test_conf_parse_bad)
{
	struct conf *cfg;
	char err[CONF_ERRLEN];

	ck_assert_int_eq(parse(bad[_i].text, &cfg, err), CINDER_ERR_INVAL);
	ck_assert_ptr_null(cfg);
	ck_assert_msg(strstr(err, bad[_i].want) != NULL,
		      "error \"%s\" lacks \"%s\"", err, bad[_i].want);
}
END_TEST

START_TEST(test_conf_parse_long_line)
{
	struct conf *cfg;
	char err[CONF_ERRLEN];
	char *text = malloc(10000);

	memset(text, 'a', 9999);
	text[9999] = '\0';
	ck_assert_int_eq(parse(text, &cfg, err), CINDER_ERR_INVAL);
	ck_assert_ptr_nonnull(strstr(err, "line too long"));
	free(text);
}
END_TEST

START_TEST(test_conf_load_precedence)
{
	char path[] = "/tmp/check_conf.XXXXXX";
	int fd = mkstemp(path);
	struct conf *cfg;
	char err[CONF_ERRLEN];
	char e0[] = "CINDER_API_LISTEN=127.0.0.1:9000";
	char e1[] = "CINDER_LOG_LEVEL=info", e2[] = "HOME=/root";
	char a0[] = "--log-level", a1[] = "debug", a2[] = "--request_timeout=5";
	char *envp[] = {e0, e1, e2, NULL};
	char *argv[] = {a0, a1, a2};
	const char *text = "api_listen 127.0.0.1:1\nlog_level err\n"
			   "request_timeout 9\nmax_sessions 7\n"
			   "publish_rate 500\npublish_burst 1000\n";

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
	close(fd);
	ck_assert_int_eq(
		conf_load(path, true, envp, 3, argv, &cfg, err, sizeof(err)),
		0);
	ck_assert_str_eq(cfg->api_listen, "127.0.0.1:9000"); /* env > file */
	ck_assert_int_eq(cfg->log_level, LOG_LEVEL_DEBUG);   /* flag > env */
	ck_assert_int_eq(cfg->request_timeout, 5);	     /* flag > file */
	ck_assert_int_eq(cfg->max_sessions, 7);		     /* file */
	ck_assert_int_eq(cfg->publish_rate, 500);	     /* file */
	ck_assert_int_eq(cfg->publish_burst, 1000);	     /* file */
	ck_assert_str_eq(cfg->config_file, path);
	conf_free(cfg);
	unlink(path);
}
END_TEST

START_TEST(test_conf_load_errors)
{
	struct conf *cfg = NULL;
	char err[CONF_ERRLEN];
	char e0[] = "CINDER_CRYPTO_THREADS=-1";
	char b0[] = "--no-such-key", b1[] = "1", n0[] = "--api_listen";
	char *envp[] = {e0, NULL};
	char *argv_bad[] = {b0, b1};
	char *argv_novalue[] = {n0};

	ck_assert_int_eq(conf_load("/nonexistent/cinder.conf", true, NULL, 0,
				   NULL, &cfg, err, sizeof(err)),
			 CINDER_ERR_IO);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/cinder.conf"));
	/* A missing optional file is fine. */
	ck_assert_int_eq(conf_load("/nonexistent/cinder.conf", false, NULL, 0,
				   NULL, &cfg, err, sizeof(err)),
			 0);
	conf_free(cfg);
	ck_assert_int_eq(
		conf_load(NULL, false, envp, 0, NULL, &cfg, err, sizeof(err)),
		CINDER_ERR_INVAL);
	ck_assert_ptr_nonnull(strstr(err, "environment: crypto_threads"));
	ck_assert_int_eq(conf_load(NULL, false, NULL, 2, argv_bad, &cfg, err,
				   sizeof(err)),
			 CINDER_ERR_INVAL);
	ck_assert_ptr_nonnull(strstr(err, "unknown option --no_such_key"));
	ck_assert_int_eq(conf_load(NULL, false, NULL, 1, argv_novalue, &cfg,
				   err, sizeof(err)),
			 CINDER_ERR_INVAL);
	ck_assert_ptr_nonnull(strstr(err, "needs a value"));
	ck_assert_ptr_null(cfg);
}
END_TEST

START_TEST(test_conf_dump_hides_password)
{
	struct conf *cfg;
	char err[CONF_ERRLEN], *buf = NULL;
	size_t len = 0;
	FILE *fp;

	ck_assert_int_eq(
		parse("database_url postgresql://u:secret@h/db\n", &cfg, err),
		0);
	fp = open_memstream(&buf, &len);
	conf_dump(cfg, fp);
	fclose(fp);
	ck_assert_ptr_null(strstr(buf, "secret"));
	ck_assert_ptr_nonnull(strstr(buf, "api_listen \"0.0.0.0:8080\""));
	free(buf);
	conf_free(cfg);
}
END_TEST

static Suite *
conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_conf_defaults);
	tcase_add_test(tc, test_conf_parse_good);
	tcase_add_loop_test(tc, test_conf_parse_bad, 0,
			    sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_conf_parse_long_line);
	suite_add_tcase(s, tc);
	tc = tcase_create("load");
	tcase_add_test(tc, test_conf_load_precedence);
	tcase_add_test(tc, test_conf_load_errors);
	tcase_add_test(tc, test_conf_dump_hides_password);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(conf_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
