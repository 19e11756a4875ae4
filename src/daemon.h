/* SPDX-License-Identifier: MIT */
/*
 * The daemon: owns the libevent loop and every long-lived component (store,
 * HTTP server, crypto pool, device listener). Loop thread only. SIGTERM and
 * SIGINT stop it cleanly (stop accepting, close sessions, flush pending
 * writes for a bounded time); SIGHUP reopens the log file.
 */
#ifndef CINDER_DAEMON_H
#define CINDER_DAEMON_H

#include "conf.h"

struct daemon;

/**
 * Note the time the process reached main() and the CPU it had used until
 * then (loading its libraries), for daemon_new()'s start-up log line.
 * Call first thing in main (cli_main does); without it the line counts
 * from daemon_new().
 */
void daemon_note_start(void);

/**
 * Create the daemon: connect to PostgreSQL, apply migrations, load the
 * server key, bind the listeners. Logs the reason on failure.
 * @param cfg borrowed; must outlive the daemon
 * @param out receives the daemon; free with daemon_free()
 * @return 0 or a CINDER_ERR_* code
 */
int daemon_new(const struct conf *cfg, struct daemon **out);

/** Run the loop until a stop signal. @return 0 on a clean stop */
int daemon_run(struct daemon *d);

/** Ask the loop to stop cleanly (as SIGTERM does). Loop thread only. */
void daemon_stop(struct daemon *d);

/** Free the daemon and everything it owns. NULL-safe. */
void daemon_free(struct daemon *d);

#endif
