/* SPDX-License-Identifier: MIT */
/*
 * Logging: the only module that writes diagnostics. Levels follow syslog.
 * The level is checked before arguments are formatted. Lines look like
 *   2026-11-25T01:02:03.456Z notice [dev 0123...] message
 * Context (a device id, a request id) goes first, before the message.
 * Safe to call from worker threads (one fprintf per line).
 * Never pass secrets (keys, tokens, passwords) to these functions.
 */
#ifndef CINDER_LOG_H
#define CINDER_LOG_H

#include <stdbool.h>
#include <time.h>

enum log_level {
	LOG_LEVEL_ERR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

extern enum log_level log_current_level;

/**
 * Parse a level name ("err", "error", "warn", "warning", "notice", "info",
 * "debug").
 * @return 0 and *out set, or CINDER_ERR_INVAL
 */
int log_level_parse(const char *name, enum log_level *out);
/** @return the canonical name of a level */
const char *log_level_name(enum log_level level);

/**
 * Open the sink. path NULL or "" or "stderr" logs to stderr.
 * @return 0 or CINDER_ERR_IO (the previous sink is kept)
 */
int log_open(enum log_level level, const char *path);
/** Reopen the file sink (after logrotate; called on SIGHUP). */
int log_reopen(void);
/** Close the file sink and fall back to stderr. */
void log_close(void);

/** Write one line. ctx may be NULL; it is printed in brackets first. */
/** Milliseconds since *t0 (CLOCK_MONOTONIC), for durations in log lines. */
double log_ms_since(const struct timespec *t0);

void log_write(enum log_level level, const char *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_enabled(l) ((l) <= log_current_level)

#define LOG_AT(l, ctx, ...)                                                    \
	do {                                                                   \
		if (log_enabled(l))                                            \
			log_write((l), (ctx), __VA_ARGS__);                    \
	} while (0)

#define log_err(...) LOG_AT(LOG_LEVEL_ERR, NULL, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_LEVEL_WARN, NULL, __VA_ARGS__)
#define log_notice(...) LOG_AT(LOG_LEVEL_NOTICE, NULL, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__)

/** Log with a context string first, e.g. "dev 0123abcd..." or "req 17". */
#define log_ctx(l, ctx, ...) LOG_AT((l), (ctx), __VA_ARGS__)

#endif
