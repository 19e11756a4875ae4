/* SPDX-License-Identifier: MIT */
/*
 * Log sinks: stderr or a file, reopened on SIGHUP. Each line is written with
 * one fprintf so that lines from worker threads do not interleave.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "xmalloc.h"

enum log_level log_current_level = LOG_LEVEL_NOTICE;

static FILE *log_fp;   /* file sink, NULL for stderr */
static char *log_path; /* path of the file sink */

static const char *const level_names[] = {"err", "warn", "notice", "info",
					  "debug"};

int
log_level_parse(const char *name, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
		{"err", LOG_LEVEL_ERR},	      {"error", LOG_LEVEL_ERR},
		{"warn", LOG_LEVEL_WARN},     {"warning", LOG_LEVEL_WARN},
		{"notice", LOG_LEVEL_NOTICE}, {"info", LOG_LEVEL_INFO},
		{"debug", LOG_LEVEL_DEBUG},
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(name, names[i].name) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return CINDER_ERR_INVAL;
}

const char *
log_level_name(enum log_level level)
{
	if ((unsigned)level > LOG_LEVEL_DEBUG)
		return "?";
	return level_names[level];
}

static int
open_file(const char *path, FILE **out)
{
	FILE *fp = fopen(path, "a");

	if (fp == NULL) {
		fprintf(stderr, "cinderd: could not open log file %s: %s\n",
			path, strerror(errno));
		return CINDER_ERR_IO;
	}
	setvbuf(fp, NULL, _IOLBF, 0);
	*out = fp;
	return 0;
}

int
log_open(enum log_level level, const char *path)
{
	FILE *fp = NULL;
	int r;

	log_current_level = level;
	if (path == NULL || *path == '\0' || strcmp(path, "stderr") == 0) {
		log_close();
		return 0;
	}
	if ((r = open_file(path, &fp)) != 0)
		return r;
	log_close();
	log_fp = fp;
	log_path = xstrdup(path);
	return 0;
}

int
log_reopen(void)
{
	FILE *fp = NULL;
	int r;

	if (log_fp == NULL)
		return 0;
	if ((r = open_file(log_path, &fp)) != 0)
		return r;
	fclose(log_fp);
	log_fp = fp;
	return 0;
}

void
log_close(void)
{
	if (log_fp != NULL)
		fclose(log_fp);
	log_fp = NULL;
	free(log_path);
	log_path = NULL;
}

void
log_write(enum log_level level, const char *ctx, const char *fmt, ...)
{
	char msg[2048], ts[32];
	struct timeval tv;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(log_fp ? log_fp : stderr, "%s.%03dZ %s %s%s%s%s\n", ts,
		(int)(tv.tv_usec / 1000), log_level_name(level), ctx ? "[" : "",
		ctx ? ctx : "", ctx ? "] " : "", msg);
}

double
log_ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}
