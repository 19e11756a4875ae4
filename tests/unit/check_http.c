/* SPDX-License-Identifier: MIT */
/*
 * The HTTP layer over real sockets: the server runs on 127.0.0.1:0 inside
 * a libevent loop in the test process; libcurl (multi interface, in a
 * client thread) or a raw socket on the loop thread makes the requests.
 * The loop runs until the client thread signals it is done through a
 * pipe, or until the server-side event under test happens; no sleeps.
 */
#include "config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include "err.h"
#include "log.h"
#include "xmalloc.h"
#include "api/handlers.h"
#include "api/http.h"
#include "http_test.h"

#define MAX_BODY (64 * 1024)

/* A growing buffer for an answer's body or headers. */
struct cbuf {
	char *p;  /* NUL-terminated, or NULL */
	size_t n; /* length */
};

/* One request made by the client thread. */
struct creq {
	const char *method;	  /* NULL: GET */
	char url[256];		  /* absolute URL */
	const char *body;	  /* request body or NULL */
	size_t body_len;	  /* its length */
	bool chunked;		  /* send the body chunked */
	bool insecure;		  /* https without certificate checks */
	bool expect;		  /* keep curl's Expect: 100-continue */
	const char *hdr[4];	  /* extra request headers */
	long status;		  /* answer status, 0 if none */
	char *resp;		  /* answer body (NUL-terminated) */
	char *headers;		  /* answer headers, as received */
	struct cbuf rb, hb;	  /* internal: where they grow */
	struct curl_slist *slist; /* internal */
};

/* Per-test state (each test runs in its own forked child). */
struct fx {
	struct event_base *base;
	struct http *h;
	int pipefd[2];	       /* client thread -> loop: done */
	struct event *ev_done; /* reads pipefd[0] */
	struct creq *reqs;     /* the client thread's requests */
	size_t nreqs;
	uint64_t held_id;     /* last request parked by /t/hold */
	int raw_fd;	      /* raw client socket, -1 if none */
	bool closed;	      /* close hook ran */
	bool closed_answered; /* ... with answered */
	bool stopped;	      /* http_stop drained */
	bool client_done;     /* client thread finished */
	bool stop_in_handler; /* /t/hold calls http_stop */
	bool db_down;	      /* status hook reports the database down */
	int stream_left;      /* events still to write on /t/stream */
};

static struct fx F;

/* ---- handlers ---- */

static int
h_hello(struct http_request *req, void *arg)
{
	json_t *o = json_pack("{s:s}", "hello", "world");
	const char *x = http_request_query(req, "x");

	if (x != NULL)
		json_object_set_new(o, "x", json_string(x));
	return http_respond_json(req, 200, o);
}

static int
h_echo(struct http_request *req, void *arg)
{
	json_t *o = json_object();
	const struct json_files *files = http_request_files(req);
	char *user, *pass;

	json_object_set(o, "body", http_request_body(req));
	json_object_set_new(o, "name",
			    json_string(http_request_param(req, "name")));
	json_object_set_new(o, "ip", json_string(http_request_client_ip(req)));
	if (http_request_token(req) != NULL)
		json_object_set_new(o, "token",
				    json_string(http_request_token(req)));
	if (files != NULL)
		json_object_set_new(o, "nfiles",
				    json_integer((json_int_t)files->n));
	if (http_request_basic_auth(req, &user, &pass) == 0) {
		json_object_set_new(o, "basic_user", json_string(user));
		json_object_set_new(o, "basic_pass", json_string(pass));
		free(user);
		freezero(pass, strlen(pass));
	}
	if (http_request_arg(req, "arg") != NULL)
		json_object_set_new(o, "arg",
				    json_string(http_request_arg(req, "arg")));
	http_response_header_add(req, "X-Test", "yes");
	return http_respond_json(req, 201, o);
}

/*
 * http_request_arg_into() first (a form body stays unparsed), then
 * http_request_arg() (which parses it): the same answers. ?cap=N sets
 * the buffer size (default 64).
 */
static int
h_arg(struct http_request *req, void *arg)
{
	static const char *const names[] = {"arg", "args", "access_token", "x"};
	const char *cs = http_request_query(req, "cap");
	size_t cap = cs != NULL ? strtoul(cs, NULL, 10) : 64, i;
	char buf[4][64];
	const char *into[4], *v;
	json_t *o = json_object(), *a = json_object();

	ck_assert_uint_le(cap, sizeof(buf[0]));
	json_object_set_new(o, "parsed",
			    json_boolean(http_request_body_peek(req) != NULL));
	for (i = 0; i < 4; i++)
		into[i] = http_request_arg_into(req, names[i], buf[i], cap);
	json_object_set_new(o, "parsed_after",
			    json_boolean(http_request_body_peek(req) != NULL));
	for (i = 0; i < 4; i++) {
		v = http_request_arg(req, names[i]);
		if (into[i] == NULL)
			ck_assert_msg(v == NULL, "%s: %s", names[i], v);
		else
			ck_assert_msg(v != NULL && strcmp(v, into[i]) == 0,
				      "%s: %s vs %s", names[i], v, into[i]);
		/* and again, from the object now */
		v = http_request_arg_into(req, names[i], buf[i], cap);
		if (into[i] == NULL)
			ck_assert_ptr_null(v);
		else
			ck_assert_str_eq(v, into[i]);
		if (v != NULL)
			json_object_set_new(a, names[i], json_string(v));
	}
	json_object_set_new(o, "args", a);
	json_object_set(o, "body", http_request_body(req));
	if (http_request_token(req) != NULL)
		json_object_set_new(o, "token",
				    json_string(http_request_token(req)));
	return http_respond_json(req, 200, o);
}

static void
resume_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t *idp = arg;

	ck_assert_int_eq(http_request_resume_with(
				 F.h, *idp, 200, json_pack("{s:b}", "late", 1)),
			 0);
	/* a second answer for the same id is refused */
	ck_assert_int_eq(
		http_request_resume_with(F.h, *idp, 200, json_object()),
		CINDER_ERR_INVAL);
	free(idp);
}

static int
h_suspend(struct http_request *req, void *arg)
{
	uint64_t *idp = malloc(sizeof(*idp));
	struct timeval tv = {0, 5000};

	*idp = http_request_id(req);
	ck_assert_int_eq(http_request_suspend(req), 0);
	ck_assert_int_eq(event_base_once(F.base, -1, EV_TIMEOUT,
					 resume_timer_cb, idp, &tv),
			 0);
	return 0;
}

static void
on_close(uint64_t id, bool answered, void *arg)
{
	F.closed = true;
	F.closed_answered = answered;
	ck_assert_ptr_null(http_request_lookup(F.h, id));
	event_base_loopbreak(F.base);
}

static int
h_hold(struct http_request *req, void *arg)
{
	F.held_id = http_request_id(req);
	http_request_on_close(req, on_close, NULL);
	ck_assert_int_eq(http_request_suspend(req), 0);
	if (F.raw_fd >= 0) {
		/* the client hangs up while the request waits */
		close(F.raw_fd);
		F.raw_fd = -1;
	}
	if (F.stop_in_handler)
		ck_assert_int_eq(http_stop(F.h, NULL, NULL), 0);
	return 0;
}

static int
h_err(struct http_request *req, void *arg)
{
	return CINDER_ERR_TIMEOUT;
}

static int
h_noanswer(struct http_request *req, void *arg)
{
	return 0;
}

static int
h_whoami(struct http_request *req, void *arg)
{
	json_t *o = json_pack("{s:s}", "user",
			      (const char *)http_request_user(req));

	json_object_set(o, "body", http_request_body(req));
	return http_respond_json(req, 200, o);
}

static void
stream_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t *idp = arg;
	struct timeval tv = {0, 2000};
	char buf[64];

	if (F.stream_left-- > 0) {
		snprintf(buf, sizeof(buf), "event: e%d\ndata: {}\n\n",
			 F.stream_left);
		ck_assert_int_eq(http_stream_write(F.h, *idp, buf, strlen(buf)),
				 0);
		event_base_once(F.base, -1, EV_TIMEOUT, stream_timer_cb, idp,
				&tv);
		return;
	}
	ck_assert_int_eq(http_stream_end(F.h, *idp), 0);
	ck_assert_int_eq(http_stream_write(F.h, *idp, "x", 1),
			 CINDER_ERR_INVAL);
	free(idp);
}

static int
h_stream(struct http_request *req, void *arg)
{
	uint64_t *idp = malloc(sizeof(*idp));
	struct timeval tv = {0, 2000};

	*idp = http_request_id(req);
	ck_assert_int_eq(http_stream_start(req, 200, "text/event-stream"), 0);
	ck_assert_int_eq(http_stream_write(F.h, *idp, ":ok\n\n", 5), 0);
	frame_refs++;
	ck_assert_int_eq(http_stream_write_ref(F.h, *idp, frame,
					       sizeof(frame) - 1, frame_unref,
					       NULL),
			 0);
	F.stream_left = 3;
	event_base_once(F.base, -1, EV_TIMEOUT, stream_timer_cb, idp, &tv);
	return 0;
}

static int
h_stream_hold(struct http_request *req, void *arg)
{
	F.held_id = http_request_id(req);
	http_request_on_close(req, on_close, NULL);
	return http_stream_start(req, 200, "text/event-stream");
}

static const struct route test_routes[] = {
	{"GET", "/t/hello", 0, h_hello},
	{"POST", "/t/echo/:name", 0, h_echo},
	{"POST", "/t/arg", 0, h_arg},
	{"POST", "/t/upload", ROUTE_UPLOAD, h_echo},
	{"GET", "/t/suspend", 0, h_suspend},
	{"GET", "/t/hold", 0, h_hold},
	{"GET", "/t/err", 0, h_err},
	{"GET", "/t/noanswer", 0, h_noanswer},
	{"GET", "/t/auth", ROUTE_AUTH_REQUIRED, h_whoami},
	{"POST", "/t/auth", ROUTE_AUTH_REQUIRED, h_whoami},
	{"GET", "/t/stream", 0, h_stream},
	{"GET", "/t/stream-hold", 0, h_stream_hold},
};

static void
auth_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t *idp = arg;
	struct http_request *req = http_request_lookup(F.h, *idp);

	ck_assert_ptr_nonnull(req);
	http_request_set_user(req, strdup("later"), free);
	ck_assert_int_eq(http_request_auth_done(F.h, *idp, 0), 0);
	free(idp);
}

static int
test_auth(struct http_request *req, const char *token, void *arg)
{
	uint64_t *idp;
	struct timeval tv = {0, 1000};

	if (strcmp(token, "good") == 0) {
		http_request_set_user(req, strdup("alice"), free);
		return 0;
	}
	if (strcmp(token, "nope") == 0)
		return CINDER_ERR_FORBIDDEN;
	if (strcmp(token, "sync") == 0) {
		/* the lookup finished before the hook returned */
		http_request_set_user(req, strdup("quick"), free);
		ck_assert_int_eq(
			http_request_auth_done(F.h, http_request_id(req), 0),
			0);
		return HTTP_AUTH_PENDING;
	}
	if (strcmp(token, "syncbad") == 0) {
		ck_assert_int_eq(http_request_auth_done(F.h,
							http_request_id(req),
							CINDER_ERR_AUTH),
				 0);
		return HTTP_AUTH_PENDING;
	}
	if (strcmp(token, "pending") == 0) {
		idp = malloc(sizeof(*idp));
		*idp = http_request_id(req);
		event_base_once(F.base, -1, EV_TIMEOUT, auth_timer_cb, idp,
				&tv);
		return HTTP_AUTH_PENDING;
	}
	return CINDER_ERR_AUTH;
}

static void
test_status(json_t *o, void *arg)
{
	json_object_set_new(o, "database",
			    json_string(F.db_down ? "down" : "up"));
	if (F.db_down)
		json_object_set_new(o, "ok", json_false());
}

/* ---- fixture ---- */

static void
done_cb(evutil_socket_t fd, short what, void *arg)
{
	char c;

	if (read(fd, &c, 1) == 1)
		F.client_done = true;
	event_base_loopbreak(F.base);
}

static void
setup(void)
{
	static bool debug_mode;
	struct http_options o;

	if (!debug_mode) {
		event_enable_debug_mode();
		debug_mode = true;
	}
	log_current_level = LOG_LEVEL_WARN;
	memset(&F, 0, sizeof(F));
	F.raw_fd = -1;
	ck_assert_int_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	F.base = event_base_new();
	ck_assert_ptr_nonnull(F.base);
	memset(&o, 0, sizeof(o));
	o.max_body = MAX_BODY;
	o.max_upload = 4 * MAX_BODY;
	F.h = http_new(F.base, "127.0.0.1:0", &o);
	ck_assert_ptr_nonnull(F.h);
	ck_assert_uint_ne(http_port(F.h), 0);
	ck_assert_int_eq(
		http_add_routes(F.h, test_routes,
				sizeof(test_routes) / sizeof(test_routes[0]),
				NULL),
		0);
	http_set_auth_cb(F.h, test_auth, NULL);
	http_set_status_cb(F.h, test_status, NULL);
	ck_assert_int_eq(pipe2(F.pipefd, O_NONBLOCK | O_CLOEXEC), 0);
	F.ev_done = event_new(F.base, F.pipefd[0], EV_READ | EV_PERSIST,
			      done_cb, NULL);
	event_add(F.ev_done, NULL);
}

static void
teardown(void)
{
	http_free(F.h);
	event_free(F.ev_done);
	close(F.pipefd[0]);
	close(F.pipefd[1]);
	if (F.raw_fd >= 0)
		close(F.raw_fd);
	event_base_free(F.base);
	curl_global_cleanup();
}

/* ---- client thread ---- */

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	struct cbuf *b = arg;
	size_t add = size * n;

	b->p = realloc(b->p, b->n + add + 1);
	memcpy(b->p + b->n, p, add);
	b->n += add;
	b->p[b->n] = '\0';
	return add;
}

static void *
client_main(void *arg)
{
	CURLM *m = curl_multi_init();
	CURL **e = calloc(F.nreqs, sizeof(*e));
	int running = 1;
	size_t i, j;

	for (i = 0; i < F.nreqs; i++) {
		struct creq *r = &F.reqs[i];

		e[i] = curl_easy_init();
		curl_easy_setopt(e[i], CURLOPT_URL, r->url);
		curl_easy_setopt(e[i], CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e[i], CURLOPT_TIMEOUT, 30L);
		curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, collect);
		curl_easy_setopt(e[i], CURLOPT_WRITEDATA, &r->rb);
		curl_easy_setopt(e[i], CURLOPT_HEADERFUNCTION, collect);
		curl_easy_setopt(e[i], CURLOPT_HEADERDATA, &r->hb);
		if (r->insecure) {
			curl_easy_setopt(e[i], CURLOPT_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(e[i], CURLOPT_SSL_VERIFYHOST, 0L);
		}
		if (r->method != NULL)
			curl_easy_setopt(e[i], CURLOPT_CUSTOMREQUEST,
					 r->method);
		if (r->body != NULL) {
			curl_easy_setopt(e[i], CURLOPT_POSTFIELDS, r->body);
			curl_easy_setopt(e[i], CURLOPT_POSTFIELDSIZE,
					 (long)r->body_len);
		}
		if (r->chunked)
			r->slist = curl_slist_append(
				r->slist, "Transfer-Encoding: chunked");
		for (j = 0; j < 4 && r->hdr[j] != NULL; j++)
			r->slist = curl_slist_append(r->slist, r->hdr[j]);
		if (!r->expect)
			r->slist = curl_slist_append(r->slist, "Expect:");
		curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, r->slist);
		curl_multi_add_handle(m, e[i]);
	}
	while (running > 0) {
		curl_multi_perform(m, &running);
		if (running > 0)
			curl_multi_poll(m, NULL, 0, 1000, NULL);
	}
	for (i = 0; i < F.nreqs; i++) {
		curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE,
				  &F.reqs[i].status);
		curl_multi_remove_handle(m, e[i]);
		curl_easy_cleanup(e[i]);
		curl_slist_free_all(F.reqs[i].slist);
		F.reqs[i].resp = F.reqs[i].rb.p;
		F.reqs[i].headers = F.reqs[i].hb.p;
	}
	curl_multi_cleanup(m);
	free(e);
	if (write(F.pipefd[1], "x", 1) != 1)
		abort();
	return NULL;
}

static struct creq *
creq_new(size_t n)
{
	return calloc(n, sizeof(struct creq));
}

static void
creq_url(struct creq *r, const char *path)
{
	snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%u%s",
		 (unsigned)http_port(F.h), path);
}

/* Run the requests concurrently; the loop serves them until done. */
static void
client_run(struct creq *reqs, size_t n)
{
	pthread_t th;

	F.reqs = reqs;
	F.nreqs = n;
	F.client_done = false;
	ck_assert_int_eq(pthread_create(&th, NULL, client_main, NULL), 0);
	while (!F.client_done)
		ck_assert_int_eq(event_base_dispatch(F.base), 0);
	pthread_join(th, NULL);
}

static void
creq_free(struct creq *reqs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(reqs[i].resp);
		free(reqs[i].headers);
	}
	free(reqs);
}

static bool
has_header(const struct creq *r, const char *line)
{
	const char *p;
	size_t n = strlen(line);

	for (p = r->headers; p != NULL && *p != '\0'; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncasecmp(p, line, n) == 0)
			return true;
	}
	return false;
}

static json_t *
resp_json(const struct creq *r)
{
	json_error_t e;
	json_t *o;

	ck_assert_ptr_nonnull(r->resp);
	o = json_loads(r->resp, 0, &e);
	ck_assert_msg(o != NULL, "not JSON: %s", r->resp);
	return o;
}

/* Open a raw client socket and send a request on it. */
static void
raw_send(const char *text)
{
	F.raw_fd = http_test_raw_send(F.h, text);
}

/* ---- tests ---- */

START_TEST(test_http_new_listen)
{
	struct http *h;

	ck_assert_ptr_null(http_new(F.base, "nonsense", NULL));
	ck_assert_ptr_null(http_new(F.base, "127.0.0.1", NULL));
	ck_assert_ptr_null(http_new(F.base, "127.0.0.1:99999", NULL));
	ck_assert_ptr_null(http_new(F.base, "[::1:80", NULL));
	/* the port is taken */
	{
		char addr[64];

		snprintf(addr, sizeof(addr), "127.0.0.1:%u",
			 (unsigned)http_port(F.h));
		ck_assert_ptr_null(http_new(F.base, addr, NULL));
	}
	h = http_new(F.base, "[::1]:0", NULL);
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_ne(http_port(h), 0);
	http_free(h);
	h = http_new(F.base, "*:0", NULL);
	ck_assert_ptr_nonnull(h);
	http_free(h);
	http_free(NULL);
}
END_TEST

START_TEST(test_http_new_tls_files)
{
	struct http_options o;

	memset(&o, 0, sizeof(o));
	o.tls_cert_file = "/nonexistent/cert.pem";
	o.tls_key_file = "/nonexistent/key.pem";
	ck_assert_ptr_null(http_new(F.base, "127.0.0.1:0", &o));
	o.tls_key_file = NULL;
	ck_assert_ptr_null(http_new(F.base, "127.0.0.1:0", &o));
}
END_TEST

/*
 * HTTPS with a throwaway self-signed certificate made by the openssl
 * command (skipped when it is missing). The server is a second http on
 * the same loop.
 */
START_TEST(test_http_new_tls)
{
	char dir[] = "/tmp/cinder-http-tls.XXXXXX", cmd[512], cert[128];
	char key[128];
	struct http_options o;
	struct http *plain = F.h;
	struct creq *r;
	int rc;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt "
		 "ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost "
		 "-days 1 -keyout %s -out %s >/dev/null 2>&1",
		 key, cert);
	rc = system(cmd);
	if (rc != 0) {
		fprintf(stderr,
			"openssl command unavailable: TLS not tested\n");
		rmdir(dir);
		return;
	}
	memset(&o, 0, sizeof(o));
	o.tls_cert_file = cert;
	o.tls_key_file = key;
	F.h = http_new(F.base, "127.0.0.1:0", &o);
	unlink(cert);
	unlink(key);
	rmdir(dir);
	ck_assert_ptr_nonnull(F.h);
	r = creq_new(1);
	snprintf(r[0].url, sizeof(r[0].url), "https://127.0.0.1:%u/v1/ping",
		 (unsigned)http_port(F.h));
	r[0].insecure = true;
	client_run(r, 1);
	ck_assert_int_eq(r[0].status, 200);
	ck_assert_ptr_nonnull(strstr(r[0].resp, "\"ok\":true"));
	creq_free(r, 1);
	http_free(F.h);
	F.h = plain;
}
END_TEST

START_TEST(test_http_forwarded_for)
{
	struct http_options o;
	struct http *plain = F.h;
	struct creq *r = creq_new(3);
	json_t *j;

	memset(&o, 0, sizeof(o));
	o.trust_forwarded_for = true;
	F.h = http_new(F.base, "127.0.0.1:0", &o);
	ck_assert_ptr_nonnull(F.h);
	ck_assert_int_eq(http_add_routes(F.h, test_routes + 1, 1, NULL), 0);
	creq_url(&r[0], "/t/echo/x");
	r[0].body = "";
	r[0].hdr[0] = "X-Forwarded-For: 10.9.9.9, 192.0.2.7";
	creq_url(&r[1], "/t/echo/x");
	r[1].body = "";
	r[1].hdr[0] = "X-Forwarded-For: not-an-ip";
	creq_url(&r[2], "/t/echo/x");
	r[2].body = "";
	r[2].hdr[0] = "X-Forwarded-For: 2001:db8::1";
	client_run(r, 3);
	j = resp_json(&r[0]);
	ck_assert_str_eq(json_string_value(json_object_get(j, "ip")),
			 "192.0.2.7");
	json_decref(j);
	j = resp_json(&r[1]);
	ck_assert_str_eq(json_string_value(json_object_get(j, "ip")),
			 "127.0.0.1");
	json_decref(j);
	j = resp_json(&r[2]);
	ck_assert_str_eq(json_string_value(json_object_get(j, "ip")),
			 "2001:db8::1");
	json_decref(j);
	creq_free(r, 3);
	http_free(F.h);
	F.h = plain;
}
END_TEST

START_TEST(test_http_get_json_and_cors)
{
	struct creq *r = creq_new(1);
	json_t *o;

	creq_url(&r[0], "/t/hello?x=a%20b+c");
	client_run(r, 1);
	ck_assert_int_eq(r[0].status, 200);
	ck_assert(has_header(&r[0], "Access-Control-Allow-Origin: *"));
	ck_assert(has_header(&r[0],
			     "Content-Type: application/json; charset=utf-8"));
	ck_assert_str_eq(r[0].resp, "{\"hello\":\"world\",\"x\":\"a b c\"}");
	o = resp_json(&r[0]);
	json_decref(o);
	creq_free(r, 1);
}
END_TEST

START_TEST(test_http_health)
{
	struct creq *r = creq_new(2);
	json_t *o;

	creq_url(&r[0], "/v1/ping");
	creq_url(&r[1], "/healthz");
	client_run(r, 2);
	ck_assert_int_eq(r[0].status, 200);
	ck_assert_int_eq(r[1].status, 200);
	o = resp_json(&r[0]);
	ck_assert(json_is_true(json_object_get(o, "ok")));
	ck_assert_str_eq(json_string_value(json_object_get(o, "version")),
			 PACKAGE_VERSION);
	ck_assert(json_is_integer(json_object_get(o, "uptime_s")));
	ck_assert_str_eq(json_string_value(json_object_get(o, "database")),
			 "up");
	ck_assert(json_is_object(json_object_get(o, "http")));
	json_decref(o);
	ck_assert(has_header(&r[1], "Access-Control-Allow-Origin: *"));
	creq_free(r, 2);

	/* the status hook says the database is down: 503, same shape */
	F.db_down = true;
	r = creq_new(1);
	creq_url(&r[0], "/v1/ping");
	client_run(r, 1);
	ck_assert_int_eq(r[0].status, 503);
	o = resp_json(&r[0]);
	ck_assert(json_is_false(json_object_get(o, "ok")));
	ck_assert_str_eq(json_string_value(json_object_get(o, "database")),
			 "down");
	ck_assert_ptr_nonnull(json_object_get(o, "version"));
	json_decref(o);
	creq_free(r, 1);
}
END_TEST

START_TEST(test_http_errors)
{
	struct creq *r = creq_new(6);
	json_t *o;

	creq_url(&r[0], "/nope");
	creq_url(&r[1], "/t/hello");
	r[1].method = "DELETE";
	creq_url(&r[2], "/t/err");
	creq_url(&r[3], "/t/noanswer");
	creq_url(&r[4], "/t/hello%zz");
	creq_url(&r[5], "/v1/devices");
	r[5].method = "OPTIONS";
	client_run(r, 6);

	ck_assert_int_eq(r[0].status, 404);
	ck_assert(has_header(&r[0], "Access-Control-Allow-Origin: *"));
	ck_assert(has_header(&r[0], "Content-Type: application/json"));
	o = resp_json(&r[0]);
	ck_assert(json_is_false(json_object_get(o, "ok")));
	ck_assert_str_eq(json_string_value(json_object_get(o, "error")),
			 "Not Found");
	ck_assert_ptr_nonnull(json_object_get(o, "error_description"));
	json_decref(o);

	ck_assert_int_eq(r[1].status, 405);
	ck_assert(has_header(&r[1], "Allow: GET, OPTIONS"));
	ck_assert(has_header(&r[1], "Access-Control-Allow-Origin: *"));

	ck_assert_int_eq(r[2].status, 408);
	o = resp_json(&r[2]);
	ck_assert_str_eq(json_string_value(json_object_get(o, "error")),
			 "Timed out.");
	json_decref(o);

	ck_assert_int_eq(r[3].status, 500);
	ck_assert_int_eq(r[4].status, 400);

	ck_assert_int_eq(r[5].status, 204);
	ck_assert(has_header(&r[5], "Access-Control-Allow-Origin: *"));
	ck_assert(has_header(&r[5], "Access-Control-Allow-Methods: GET, "
				    "POST, PUT, DELETE, OPTIONS"));
	ck_assert(has_header(&r[5], "Access-Control-Allow-Headers: "
				    "X-Requested-With, Content-Type, Accept, "
				    "Authorization"));
	ck_assert(has_header(&r[5], "Access-Control-Max-Age: 300"));
	creq_free(r, 6);
}
END_TEST

START_TEST(test_http_body_parse)
{
	struct creq *r = creq_new(6);
	json_t *o;

	creq_url(&r[0], "/t/echo/a%2Fb");
	r[0].body = "{\"args\":\"on\",\"n\":1}";
	r[0].body_len = strlen(r[0].body);
	r[0].hdr[0] = "Content-Type: application/json";
	creq_url(&r[1], "/t/echo/x");
	r[1].body = "arg=on&access_token=tok1";
	r[1].body_len = strlen(r[1].body);
	creq_url(&r[2], "/t/echo/x");
	r[2].body = "{\"args\":";
	r[2].body_len = strlen(r[2].body);
	r[2].hdr[0] = "Content-Type: application/json";
	creq_url(&r[3], "/t/echo/x");
	r[3].body = "x";
	r[3].body_len = 1;
	r[3].hdr[0] = "Content-Type: application/zip";
	/* Basic credentials; an argument from the query string */
	creq_url(&r[4], "/t/echo/x?arg=fromquery");
	r[4].body = "";
	r[4].hdr[0] = "Authorization: Basic cGFydGljbGU6cGEgc3M6eA==";
	creq_url(&r[5], "/t/echo/x?arg=fromquery");
	r[5].body = "arg=frombody";
	r[5].body_len = strlen(r[5].body);
	r[5].hdr[0] = "Authorization: Basic !!!";
	client_run(r, 6);

	ck_assert_int_eq(r[0].status, 201);
	ck_assert(has_header(&r[0], "X-Test: yes"));
	o = resp_json(&r[0]);
	ck_assert_str_eq(json_string_value(json_object_get(o, "name")), "a/b");
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(o, "body"), "args")),
			 "on");
	ck_assert_str_eq(json_string_value(json_object_get(o, "ip")),
			 "127.0.0.1");
	json_decref(o);

	/* form: the token is found and stripped from the body */
	ck_assert_int_eq(r[1].status, 201);
	o = resp_json(&r[1]);
	ck_assert_str_eq(json_string_value(json_object_get(o, "token")),
			 "tok1");
	ck_assert_ptr_null(
		json_object_get(json_object_get(o, "body"), "access_token"));
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(o, "body"), "arg")),
			 "on");
	json_decref(o);

	ck_assert_int_eq(r[2].status, 400);
	o = resp_json(&r[2]);
	ck_assert_msg(strstr(json_string_value(
				     json_object_get(o, "error_description")),
			     "malformed JSON body") != NULL,
		      "%s", r[2].resp);
	json_decref(o);
	ck_assert_int_eq(r[3].status, 400);

	o = resp_json(&r[4]);
	ck_assert_str_eq(json_string_value(json_object_get(o, "basic_user")),
			 "particle");
	ck_assert_str_eq(json_string_value(json_object_get(o, "basic_pass")),
			 "pa ss:x");
	ck_assert_ptr_null(json_object_get(o, "token"));
	ck_assert_str_eq(json_string_value(json_object_get(o, "arg")),
			 "fromquery");
	json_decref(o);
	o = resp_json(&r[5]);
	ck_assert_ptr_null(json_object_get(o, "basic_user"));
	ck_assert_str_eq(json_string_value(json_object_get(o, "arg")),
			 "frombody");
	json_decref(o);
	creq_free(r, 6);
}
END_TEST

/*
 * A form body is checked before the handler and parsed only when asked:
 * its argument and token read from the bytes are what the object gives.
 */
START_TEST(test_http_form_lazy)
{
	static const struct {
		const char *url, *body, *hdr, *want;
	} t[] = {
		{"/t/arg?x=qx&access_token=qt",
		 "arg=a+b%26c&access_token=tok1&x=1&x=2", NULL,
		 "{\"parsed\":false,\"parsed_after\":false,\"args\":{\"arg\":"
		 "\"a b&c\",\"access_token\":\"qt\",\"x\":\"qx\"},\"body\":{"
		 "\"arg\":\"a b&c\",\"x\":[\"1\",\"2\"]},\"token\":\"tok1\"}"},
		/* the argument does not fit in 3 bytes: the object is made */
		{"/t/arg?cap=3", "arg=a+b%26c&args=xy", NULL,
		 "{\"parsed\":false,\"parsed_after\":true,\"args\":{\"arg\":"
		 "\"a b&c\",\"args\":\"xy\"},\"body\":{\"arg\":\"a b&c\","
		 "\"args\":\"xy\"}}"},
		{"/t/arg", "{\"arg\":\"j\",\"args\":1}",
		 "Content-Type: application/json",
		 "{\"parsed\":true,\"parsed_after\":true,\"args\":{\"arg\":"
		 "\"j\"},\"body\":{\"arg\":\"j\",\"args\":1}}"},
		{"/t/arg?arg=q", NULL, NULL,
		 "{\"parsed\":false,\"parsed_after\":false,\"args\":{\"arg\":"
		 "\"q\"},\"body\":{}}"},
		{"/t/arg", "arg=tp&=%FF", "Content-Type: text/plain",
		 "{\"parsed\":false,\"parsed_after\":false,\"args\":{\"arg\":"
		 "\"tp\"},\"body\":{\"arg\":\"tp\"}}"},
		{"/t/arg", "access_token=body&arg=1",
		 "Authorization: Bearer hdr",
		 "{\"parsed\":false,\"parsed_after\":false,\"args\":{\"arg\":"
		 "\"1\"},\"body\":{\"arg\":\"1\"},\"token\":\"hdr\"}"},
		{"/t/arg", "access_token=%74o+k", NULL,
		 "{\"parsed\":false,\"parsed_after\":false,\"args\":{},"
		 "\"body\":{},\"token\":\"to k\"}"},
		{"/t/arg?access_token=qt",
		 "access_token=a&access_token=b&arg=", NULL,
		 "{\"parsed\":false,\"parsed_after\":false,\"args\":{\"arg\":"
		 "\"\",\"access_token\":\"qt\"},\"body\":{\"arg\":\"\"},"
		 "\"token\":\"qt\"}"},
		{"/t/arg?access_token=qt", "access_token=&arg", NULL,
		 "{\"parsed\":false,\"parsed_after\":false,\"args\":{\"arg\":"
		 "\"\",\"access_token\":\"qt\"},\"body\":{\"arg\":\"\"},"
		 "\"token\":\"qt\"}"},
		/* a token longer than the request's own 64 bytes */
		{"/t/arg",
		 "access_token="
		 "0123456789012345678901234567890123456789012345678"
		 "901234567890123456789%41",
		 NULL,
		 "{\"parsed\":false,\"parsed_after\":false,\"args\":{},"
		 "\"body\":{},\"token\":\"012345678901234567890123456789012345"
		 "6789012345678901234567890123456789A\"}"},
	};
	size_t n = sizeof(t) / sizeof(t[0]), i;
	struct creq *r = creq_new(n + 2);

	for (i = 0; i < n; i++) {
		r[i].method = "POST";
		creq_url(&r[i], t[i].url);
		r[i].body = t[i].body != NULL ? t[i].body : "";
		r[i].body_len = strlen(r[i].body);
		r[i].hdr[0] = t[i].hdr;
	}
	/* refused before the handler, as when parsed */
	r[n].method = "POST";
	creq_url(&r[n], "/t/arg");
	r[n].body = "arg=1&x=%C0%80";
	r[n].body_len = strlen(r[n].body);
	r[n + 1].method = "POST";
	creq_url(&r[n + 1], "/t/arg");
	r[n + 1].body = "arg=1&x=%";
	r[n + 1].body_len = strlen(r[n + 1].body);
	r[n + 1].hdr[0] = "Content-Type: application/x-www-form-urlencoded";
	client_run(r, n + 2);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(r[i].status, 200);
		ck_assert_str_eq(r[i].resp, t[i].want);
	}
	for (i = n; i < n + 2; i++) {
		ck_assert_int_eq(r[i].status, 400);
		ck_assert_str_eq(
			r[i].resp,
			"{\"ok\":false,\"error\":\"malformed form body: "
			"bad percent-escape, NUL byte or invalid "
			"UTF-8\",\"error_description\":\"malformed "
			"form body: bad percent-escape, NUL byte or "
			"invalid UTF-8\"}");
	}
	creq_free(r, n + 2);
}
END_TEST

START_TEST(test_http_body_limit)
{
	struct creq *r = creq_new(5);
	char *big = malloc(MAX_BODY + 100);
	char *mp;
	size_t mplen;
	json_t *o;

	memset(big, 'a', MAX_BODY + 100);
	big[0] = 'x';
	big[1] = '=';
	creq_url(&r[0], "/t/echo/x");
	r[0].body = big;
	r[0].body_len = MAX_BODY + 100;
	creq_url(&r[1], "/t/echo/x");
	r[1].body = big;
	r[1].body_len = MAX_BODY + 100;
	r[1].chunked = true;
	creq_url(&r[2], "/t/echo/x");
	r[2].body = big;
	r[2].body_len = MAX_BODY - 1;
	/* an upload route takes more, as multipart */
	mp = malloc(MAX_BODY * 2);
	mplen = (size_t)snprintf(
		mp, MAX_BODY * 2,
		"--b\r\nContent-Disposition: form-data; name=\"file\"; "
		"filename=\"f.bin\"\r\n\r\n");
	memset(mp + mplen, 'z', MAX_BODY);
	mplen += MAX_BODY;
	mplen += (size_t)snprintf(mp + mplen, 64, "\r\n--b--\r\n");
	creq_url(&r[3], "/t/upload");
	r[3].body = mp;
	r[3].body_len = mplen;
	r[3].hdr[0] = "Content-Type: multipart/form-data; boundary=b";
	/* Expect: 100-continue: refused before the body is sent */
	creq_url(&r[4], "/t/echo/x");
	r[4].body = big;
	r[4].body_len = MAX_BODY + 100;
	r[4].expect = true;
	r[4].hdr[0] = "Expect: 100-continue";
	client_run(r, 5);

	ck_assert_int_eq(r[4].status, 413);
	ck_assert_int_eq(r[0].status, 413);
	o = resp_json(&r[0]);
	ck_assert(json_is_false(json_object_get(o, "ok")));
	json_decref(o);
	ck_assert_int_eq(r[1].status, 413);
	ck_assert_int_eq(r[2].status, 201);
	ck_assert_int_eq(r[3].status, 201);
	o = resp_json(&r[3]);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "nfiles")), 1);
	json_decref(o);
	creq_free(r, 5);
	free(big);
	free(mp);
}
END_TEST

/* "X-Big: hhh...": a header line of n bytes with its NUL */
static char *
header_line(size_t n)
{
	char *h = malloc(n);

	ck_assert_ptr_nonnull(h);
	memcpy(h, "X-Big: ", 7);
	memset(h + 7, 'h', n - 8);
	h[n - 1] = '\0';
	return h;
}

START_TEST(test_http_header_limit)
{
	struct creq *r = creq_new(4);
	char *big = header_line(40000);
	/* an 8 KiB header line, what a Particle cloud front end takes */
	char *line8k = header_line(8192);
	/* just over HTTP_DEFAULT_MAX_HEADER (16 KiB) */
	char *over = header_line(17000);

	creq_url(&r[0], "/t/hello");
	r[0].hdr[0] = big;
	creq_url(&r[1], "/t/hello");
	creq_url(&r[2], "/t/hello");
	r[2].hdr[0] = line8k;
	creq_url(&r[3], "/t/hello");
	r[3].hdr[0] = over;
	client_run(r, 4);
	/* MHD refuses it itself (431); the server carries on */
	ck_assert_int_ge(r[0].status, 400);
	ck_assert_int_lt(r[0].status, 500);
	ck_assert_int_eq(r[1].status, 200);
	ck_assert_int_eq(r[2].status, 200);
	ck_assert_int_ge(r[3].status, 400);
	ck_assert_int_lt(r[3].status, 500);
	creq_free(r, 4);
	free(big);
	free(line8k);
	free(over);
}
END_TEST

START_TEST(test_http_auth)
{
	struct creq *r = creq_new(9);
	json_t *o;

	creq_url(&r[0], "/t/auth");
	creq_url(&r[1], "/t/auth");
	r[1].hdr[0] = "Authorization: Bearer good";
	creq_url(&r[2], "/t/auth?access_token=good");
	creq_url(&r[3], "/t/auth");
	r[3].body = "access_token=good&arg=1";
	r[3].body_len = strlen(r[3].body);
	creq_url(&r[4], "/t/auth");
	r[4].hdr[0] = "Authorization: Bearer bad";
	creq_url(&r[5], "/t/auth");
	r[5].hdr[0] = "Authorization: Bearer nope";
	creq_url(&r[6], "/t/auth");
	r[6].hdr[0] = "Authorization: Bearer pending";
	creq_url(&r[7], "/t/auth");
	r[7].hdr[0] = "Authorization: Bearer sync";
	creq_url(&r[8], "/t/auth");
	r[8].hdr[0] = "Authorization: Bearer syncbad";
	client_run(r, 9);

	ck_assert_int_eq(r[0].status, 401);
	o = resp_json(&r[0]);
	ck_assert_str_eq(json_string_value(json_object_get(o, "error")),
			 "invalid_token");
	ck_assert_str_eq(
		json_string_value(json_object_get(o, "error_description")),
		"The access token was not found");
	json_decref(o);
	ck_assert_int_eq(r[1].status, 200);
	ck_assert_str_eq(r[1].resp, "{\"user\":\"alice\",\"body\":{}}");
	ck_assert_int_eq(r[2].status, 200);
	ck_assert_int_eq(r[3].status, 200);
	ck_assert_str_eq(r[3].resp,
			 "{\"user\":\"alice\",\"body\":{\"arg\":\"1\"}}");
	ck_assert_int_eq(r[4].status, 401);
	o = resp_json(&r[4]);
	ck_assert_str_eq(
		json_string_value(json_object_get(o, "error_description")),
		"The access token provided is invalid.");
	json_decref(o);
	ck_assert_int_eq(r[5].status, 403);
	ck_assert_int_eq(r[6].status, 200);
	ck_assert_str_eq(r[6].resp, "{\"user\":\"later\",\"body\":{}}");
	ck_assert_int_eq(r[7].status, 200);
	ck_assert_str_eq(r[7].resp, "{\"user\":\"quick\",\"body\":{}}");
	ck_assert_int_eq(r[8].status, 401);
	creq_free(r, 9);
}
END_TEST

static void
stopped_cb(void *arg)
{
	F.stopped = true;
	event_base_loopbreak(F.base);
}

/*
 * The client has closed its connections; wait until the server has seen
 * every one of them close (the last answer's completion may still be in
 * flight when the client thread reports).
 */
static void
drain(void)
{
	http_test_drain(F.base, F.h, stopped_cb, &F.stopped);
}

START_TEST(test_http_request_resume_timer)
{
	struct creq *r = creq_new(1);

	creq_url(&r[0], "/t/suspend");
	client_run(r, 1);
	ck_assert_int_eq(r[0].status, 200);
	ck_assert_str_eq(r[0].resp, "{\"late\":true}");
	ck_assert(has_header(&r[0], "Access-Control-Allow-Origin: *"));
	creq_free(r, 1);
	drain();
}
END_TEST

START_TEST(test_http_request_client_gone)
{
	uint64_t id;

	raw_send("GET /t/hold HTTP/1.1\r\nHost: x\r\n\r\n");
	/* the handler parks the request and closes the client socket */
	while (!F.closed)
		ck_assert_int_eq(event_base_dispatch(F.base), 0);
	id = F.held_id;
	ck_assert_uint_ne(id, 0);
	ck_assert(!F.closed_answered);
	ck_assert_ptr_null(http_request_lookup(F.h, id));
	ck_assert_uint_eq(http_active_count(F.h), 0);
	/* the late answer finds nothing */
	ck_assert_int_eq(http_request_resume_with(
				 F.h, id, 200, json_pack("{s:b}", "late", 1)),
			 CINDER_ERR_NOTFOUND);
	ck_assert_int_eq(
		http_request_resume_error(F.h, id, CINDER_ERR_TIMEOUT, NULL),
		CINDER_ERR_NOTFOUND);
	/* and MHD really closes the connection */
	drain();
}
END_TEST

START_TEST(test_http_stream)
{
	struct creq *r = creq_new(1);

	creq_url(&r[0], "/t/stream");
	client_run(r, 1);
	ck_assert_int_eq(r[0].status, 200);
	ck_assert(has_header(&r[0], "Content-Type: text/event-stream"));
	ck_assert(has_header(&r[0], "Cache-Control: no-cache"));
	ck_assert(has_header(&r[0], "Access-Control-Allow-Origin: *"));
	ck_assert_int_eq(frame_refs, 0);
	ck_assert_str_eq(r[0].resp, ":ok\n\n"
				    "event: shared\ndata: {}\n\n"
				    "event: e2\ndata: {}\n\n"
				    "event: e1\ndata: {}\n\n"
				    "event: e0\ndata: {}\n\n");
	creq_free(r, 1);
}
END_TEST

START_TEST(test_http_stream_client_gone)
{
	char buf[256];
	ssize_t n;

	raw_send("GET /t/stream-hold HTTP/1.1\r\nHost: x\r\n\r\n");
	/* wait for the headers: the stream is then parked, idle */
	n = 0;
	while (n <= 0) {
		ck_assert_int_eq(event_base_loop(F.base, EVLOOP_ONCE), 0);
		n = recv(F.raw_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	}
	buf[n] = '\0';
	ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
	ck_assert_int_eq(http_stream_write(F.h, F.held_id, "x", 1), 0);
	frame_refs++;
	ck_assert_int_eq(http_stream_write_ref(F.h, F.held_id, frame,
					       sizeof(frame) - 1, frame_unref,
					       NULL),
			 0);
	close(F.raw_fd);
	F.raw_fd = -1;
	while (!F.closed)
		ck_assert_int_eq(event_base_dispatch(F.base), 0);
	ck_assert(!F.closed_answered);
	ck_assert_int_eq(http_stream_write(F.h, F.held_id, "x", 1),
			 CINDER_ERR_NOTFOUND);
	ck_assert_uint_eq(http_stream_buffered(F.h, F.held_id), 0);
	/* every reference is released, sent or not */
	drain();
	ck_assert_int_eq(frame_refs, 0);
}
END_TEST

START_TEST(test_http_concurrent)
{
	const size_t n = 120;
	struct creq *r = creq_new(n);
	size_t i;

	for (i = 0; i < n; i++)
		creq_url(&r[i], i % 3 == 0   ? "/t/suspend"
				: i % 3 == 1 ? "/t/hello"
					     : "/v1/ping");
	client_run(r, n);
	for (i = 0; i < n; i++) {
		ck_assert_msg(r[i].status == 200, "request %zu: %ld", i,
			      r[i].status);
		ck_assert_ptr_nonnull(r[i].resp);
	}
	creq_free(r, n);
	drain();
}
END_TEST

START_TEST(test_http_stop_graceful)
{
	struct creq *r = creq_new(1);

	/* a request parked when the stop begins gets 503, then the drain
	 * completes once the client has closed */
	F.stop_in_handler = true;
	creq_url(&r[0], "/t/hold");
	client_run(r, 1);
	ck_assert_int_eq(r[0].status, 503);
	ck_assert(has_header(&r[0], "Connection: close"));
	creq_free(r, 1);
	/* new connections are refused */
	r = creq_new(1);
	creq_url(&r[0], "/v1/ping");
	client_run(r, 1);
	ck_assert_int_eq(r[0].status, 0);
	creq_free(r, 1);
	ck_assert_int_eq(http_stop(F.h, NULL, NULL), CINDER_ERR_INVAL);
}
END_TEST

START_TEST(test_http_stop_idle_keepalive)
{
	char buf[1024];
	ssize_t n = 0;

	/* one answered request leaves an idle keep-alive connection */
	raw_send("GET /v1/ping HTTP/1.1\r\nHost: x\r\n\r\n");
	while (n <= 0) {
		ck_assert_int_eq(event_base_loop(F.base, EVLOOP_ONCE), 0);
		n = recv(F.raw_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	}
	buf[n] = '\0';
	ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
	/* the drain closes it instead of waiting for the idle timeout */
	ck_assert_int_eq(http_stop(F.h, stopped_cb, NULL), 0);
	while (!F.stopped)
		ck_assert_int_eq(event_base_dispatch(F.base), 0);
	n = recv(F.raw_fd, buf, sizeof(buf), 0);
	ck_assert_int_le(n, 0);
}
END_TEST

static void
count_close(uint64_t id, bool answered, void *arg)
{
	int *n = arg;

	ck_assert(!answered);
	(*n)++;
}

START_TEST(test_http_free_with_open_stream)
{
	char buf[256];
	ssize_t n = 0;
	int closes = 0;
	struct http_request *req;

	raw_send("GET /t/stream-hold HTTP/1.1\r\nHost: x\r\n\r\n");
	while (n <= 0) {
		ck_assert_int_eq(event_base_loop(F.base, EVLOOP_ONCE), 0);
		n = recv(F.raw_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	}
	req = http_request_lookup(F.h, F.held_id);
	ck_assert_ptr_nonnull(req);
	http_request_on_close(req, count_close, &closes);
	/* freeing the server with a parked stream closes it cleanly */
	http_free(F.h);
	F.h = NULL;
	ck_assert_int_eq(closes, 1);
	n = recv(F.raw_fd, buf, sizeof(buf), 0);
	while (n > 0)
		n = recv(F.raw_fd, buf, sizeof(buf), 0);
	ck_assert_int_eq(n, 0);
}
END_TEST

static Suite *
http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc;

	tc = tcase_create("new");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_http_new_listen);
	tcase_add_test(tc, test_http_new_tls_files);
	tcase_add_test(tc, test_http_new_tls);
	tcase_add_test(tc, test_http_forwarded_for);
	suite_add_tcase(s, tc);

	tc = tcase_create("respond");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_http_get_json_and_cors);
	tcase_add_test(tc, test_http_health);
	tcase_add_test(tc, test_http_errors);
	tcase_add_test(tc, test_http_body_parse);
	tcase_add_test(tc, test_http_form_lazy);
	tcase_add_test(tc, test_http_body_limit);
	tcase_add_test(tc, test_http_header_limit);
	tcase_add_test(tc, test_http_auth);
	suite_add_tcase(s, tc);

	tc = tcase_create("suspend");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_http_request_resume_timer);
	tcase_add_test(tc, test_http_request_client_gone);
	tcase_add_test(tc, test_http_stream);
	tcase_add_test(tc, test_http_stream_client_gone);
	tcase_add_test(tc, test_http_concurrent);
	tcase_add_test(tc, test_http_stop_graceful);
	tcase_add_test(tc, test_http_stop_idle_keepalive);
	tcase_add_test(tc, test_http_free_with_open_stream);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(http_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
