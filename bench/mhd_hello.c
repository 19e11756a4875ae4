/* SPDX-License-Identifier: MIT */
/*
 * The HTTP floor of the benchmark suite: a libmicrohttpd server that
 * answers every request with a small JSON body from one internal thread
 * (epoll), as cinderd's API does. bench/run loads it with cinder-loadgen
 * and divides by its CPU.
 *   mhd_hello PORT     (0 = any free port; prints "ready PORT", runs
 *                       until SIGTERM)
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

static const char body[] = "{\"ok\":true,\"return_value\":5}";

static enum MHD_Result
answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload, size_t *upload_size,
       void **state)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)upload;
	if (*state == NULL) { /* first call: headers only */
		*state = c;
		return MHD_YES;
	}
	if (*upload_size > 0) { /* swallow the body */
		*upload_size = 0;
		return MHD_YES;
	}
	r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
					    MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	sigset_t set;
	int sig, port = argc > 1 ? atoi(argv[1]) : 0;

	if (argc < 2 || port < 0 || port > 65535) {
		fputs("usage: mhd_hello PORT\n", stderr);
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
			     (uint16_t)port, NULL, NULL, answer, NULL,
			     MHD_OPTION_CONNECTION_LIMIT, 10000u,
			     MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "mhd_hello: cannot listen on %d\n", port);
		return 1;
	}
	if (port == 0) {
		const union MHD_DaemonInfo *i =
			MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
		port = i != NULL ? i->port : 0;
	}
	printf("ready %d\n", port);
	fflush(stdout);
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}
