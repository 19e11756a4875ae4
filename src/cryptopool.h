/* SPDX-License-Identifier: MIT */
/*
 * Crypto worker pool: N pthreads run CPU-heavy jobs (the handshake's RSA
 * operations) off the libevent loop thread. A job is a work function plus
 * an opaque argument; work runs on a worker, then the done callback runs
 * back ON THE LOOP THREAD with the same argument. Completions travel over
 * a pipe watched by the loop, so evthread_use_pthreads() is not needed by
 * the pool itself. Create, submit and free only from the loop thread.
 * Pass ids (connection id + generation), not pointers, through arg: the
 * connection may be gone when the job completes (style.md O4).
 */
#ifndef CINDER_CRYPTOPOOL_H
#define CINDER_CRYPTOPOOL_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct cryptopool;

/** Largest number of worker threads. */
#define CRYPTOPOOL_MAX_THREADS 256
/** Default bound of jobs waiting for a worker. */
#define CRYPTOPOOL_DEFAULT_QUEUE 4096

/**
 * The job's work; runs on a worker thread. It must not touch loop-owned
 * state (sessions, registry, libevent objects) — only what arg owns.
 */
typedef void (*cryptopool_work_cb)(void *arg);

/**
 * Completion; runs on the loop thread exactly once for every accepted
 * job. cancelled is true when the pool was shut down before the job's
 * work ran (work was not called). Typically frees arg. It may submit
 * new jobs (not after cryptopool_stop()).
 */
typedef void (*cryptopool_done_cb)(void *arg, bool cancelled);

/**
 * @return the number of online CPUs (at least 1, at most
 *	CRYPTOPOOL_MAX_THREADS): the default for config `crypto_threads`
 */
unsigned cryptopool_default_threads(void);

/**
 * Create a pool and start its threads. Worker threads block all signals.
 * @param base the loop the completions are delivered on; borrowed, must
 *	outlive the pool
 * @param nthreads number of workers; 0 = cryptopool_default_threads()
 * @param queue_max most jobs waiting for a worker (not counting the ones
 *	running); 0 = CRYPTOPOOL_DEFAULT_QUEUE
 * @param out receives the pool; free with cryptopool_free()
 * @return 0, CINDER_ERR_INVAL (nthreads over the maximum),
 *	CINDER_ERR_IO (pipe or event setup failed) or CINDER_ERR_INTERNAL
 *	(a thread could not be started)
 */
int cryptopool_new(struct event_base *base, unsigned nthreads, size_t queue_max,
		   struct cryptopool **out);

/**
 * Queue a job. Never blocks.
 * @param work runs on a worker thread
 * @param done runs later on the loop thread with arg (never from inside
 *	this call)
 * @param arg handed to both; the pool never dereferences it
 * @return 0 (done will be called exactly once), CINDER_ERR_INVAL,
 *	CINDER_ERR_BUSY (queue full) or CINDER_ERR_UNAVAILABLE (the pool is
 *	stopped); on error neither callback is ever called
 */
int cryptopool_submit(struct cryptopool *p, cryptopool_work_cb work,
		      cryptopool_done_cb done, void *arg);

/**
 * Stop accepting jobs and stop starting queued ones; jobs already running
 * finish. Does not block. Completions of finished jobs are still
 * delivered by the loop until cryptopool_free().
 */
void cryptopool_stop(struct cryptopool *p);

/**
 * Shut the pool down: stop, wait for running jobs and join the threads,
 * then call, on the calling (loop) thread, done(arg, false) for every
 * finished job whose completion is still undelivered and done(arg, true)
 * for every job that never ran. NULL is a no-op.
 */
void cryptopool_free(struct cryptopool *p);

/** @return the number of worker threads */
unsigned cryptopool_threads(const struct cryptopool *p);

/** @return jobs accepted whose completion has not been delivered yet */
size_t cryptopool_pending(const struct cryptopool *p);

#endif
