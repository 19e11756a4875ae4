/* SPDX-License-Identifier: MIT */
/*
 * Crypto worker pool. One mutex guards a FIFO of queued jobs; workers
 * sleep on a counting semaphore, posted once per queued job (and once
 * per worker to stop). A finished job is pushed onto a lock-free
 * done stack and, when that stack was empty, one byte is written to a
 * non-blocking pipe whose read end is a persistent libevent read event:
 * the loop then takes the whole stack with one atomic exchange and runs
 * the completions, oldest first, on its own thread. The loop never waits
 * for a worker's lock to take completions, and a worker rings the pipe
 * holding no lock (perf showed the loop blocked on the pool mutex of a
 * worker preempted inside that write). No libevent call is made from a
 * worker.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "crypto.h"
#include "cryptopool.h"
#include "err.h"
#include "evprio.h"
#include "log.h"
#include "xmalloc.h"

struct cryptopool_job {
	cryptopool_work_cb work;     /* runs on a worker */
	cryptopool_done_cb done;     /* runs on the loop */
	void *arg;		     /* caller's, never dereferenced */
	struct cryptopool_job *next; /* queue or done stack link */
};

struct cryptopool {
	struct event_base *base;      /* borrowed loop */
	struct event *wake_ev;	      /* read event on wake_fd[0] */
	int wake_fd[2];		      /* worker -> loop doorbell */
	struct cryptopool_job *done;  /* finished, not yet delivered:
					 newest first (atomic) */
	struct cryptopool_job *ready; /* taken from done, oldest first,
					 not yet delivered (loop only) */
	struct cryptopool_job *ready_tail;
	sem_t work;		       /* one post per queued job, and one
					  per worker to stop */
	pthread_mutex_t lock;	       /* guards everything below */
	struct cryptopool_job *q_head; /* jobs waiting for a worker */
	struct cryptopool_job *q_tail;
	size_t q_len;	    /* length of the queue */
	size_t q_max;	    /* bound on q_len */
	size_t pending;	    /* accepted, not yet delivered (atomic) */
	bool stopping;	    /* no new jobs, no new starts */
	pthread_t *threads; /* workers */
	unsigned n_threads; /* started workers */
};

unsigned
cryptopool_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	if (n > CRYPTOPOOL_MAX_THREADS)
		return CRYPTOPOOL_MAX_THREADS;
	return (unsigned)n;
}

/* Push a finished job; ring the loop when the stack was empty. */
static void
cryptopool_done_push(struct cryptopool *p, struct cryptopool_job *j)
{
	struct cryptopool_job *top =
		__atomic_load_n(&p->done, __ATOMIC_RELAXED);
	ssize_t n;

	do {
		j->next = top;
	} while (!__atomic_compare_exchange_n(
		&p->done, &top, j, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	if (top != NULL)
		return; /* the loop has been rung and not yet taken them */
	/* One byte per empty->non-empty transition; a full pipe (EAGAIN)
	   already guarantees a wake-up. */
	do {
		n = write(p->wake_fd[1], "", 1);
	} while (n == -1 && errno == EINTR);
}

/*
 * Workers are throughput work: SCHED_BATCH keeps a worker woken by a
 * submit from preempting the loop in the middle of its turn (the loop,
 * SCHED_OTHER, still preempts a worker when it wakes). Each preemption
 * was two context switches on the loop thread, the largest part of its
 * CPU per handshake in perf. Best effort: the policy needs no privilege.
 *
 * Workers are not also nice'd or SCHED_IDLE. Both were measured in the
 * B1s storm (2026-12-06, nice 5/10/19 and SCHED_IDLE against this): the
 * loop thread waited less per wake-up and the pings' p50 fell, but their
 * p99 did not: the loop also waits behind the load generator, PostgreSQL
 * and other processes, which a worker's priority does not reorder. And
 * on a host shared with a busy PostgreSQL a nice'd worker gets only its
 * weight's share (nice 10: ~10% against one nice-0 process) and a
 * SCHED_IDLE one next to nothing, so handshakes would stall behind it.
 */
static void
cryptopool_batch_policy(void)
{
#ifdef SCHED_BATCH
	struct sched_param sp;

	memset(&sp, 0, sizeof(sp));
	(void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
#endif
}

/*
 * A worker sleeps on the semaphore, not on a condition variable: glibc
 * takes the mutex back after a condition wait marked as contended, so
 * the worker's next unlock made a futex call that woke nobody, once per
 * job (two per handshake in strace). The mutex is now only ever held for
 * a few list operations, and a post wakes a worker only when one sleeps.
 */
static void *
cryptopool_worker(void *ctx)
{
	struct cryptopool *p = ctx;
	struct cryptopool_job *j;

	cryptopool_batch_policy();
	for (;;) {
		while (sem_wait(&p->work) == -1 && errno == EINTR)
			;
		pthread_mutex_lock(&p->lock);
		if (p->stopping) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		j = p->q_head;
		if (j != NULL) {
			p->q_head = j->next;
			if (p->q_head == NULL)
				p->q_tail = NULL;
			p->q_len--;
		}
		pthread_mutex_unlock(&p->lock);
		if (j == NULL)
			continue; /* cannot happen: one post per job */
		j->work(j->arg);
		cryptopool_done_push(p, j);
	}
	crypto_thread_cleanup(); /* the thread's cached OpenSSL contexts */
	return NULL;
}

/* Move the done stack to the end of the ready list, oldest first (loop
   thread). */
static void
cryptopool_take(struct cryptopool *p)
{
	struct cryptopool_job *j, *next, *fifo = NULL, *last;

	j = __atomic_exchange_n(&p->done, NULL, __ATOMIC_ACQUIRE);
	last = j;
	for (; j != NULL; j = next) {
		next = j->next;
		j->next = fifo;
		fifo = j;
	}
	if (fifo == NULL)
		return;
	if (p->ready_tail != NULL)
		p->ready_tail->next = fifo;
	else
		p->ready = fifo;
	p->ready_tail = last;
}

/* Run up to max completions, oldest first (loop thread); true when some
   are left. */
static bool
cryptopool_deliver(struct cryptopool *p, size_t max)
{
	struct cryptopool_job *j;

	cryptopool_take(p);
	while (max-- > 0 && (j = p->ready) != NULL) {
		p->ready = j->next;
		if (p->ready == NULL)
			p->ready_tail = NULL;
		__atomic_fetch_sub(&p->pending, 1, __ATOMIC_RELAXED);
		j->done(j->arg, false);
		free(j);
	}
	return p->ready != NULL;
}

static void
cryptopool_wake_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct cryptopool *p = ctx;
	char buf[64];
	ssize_t n;

	/* Drain before delivering so a byte written meanwhile re-arms us.
	   A short read took every byte rung so far, so the drain stops there
	   instead of reading again into EAGAIN (a second syscall on every
	   wake-up); a byte rung after it leaves the level-triggered event
	   ready. */
	do {
		n = read(fd, buf, sizeof(buf));
	} while (n == (ssize_t)sizeof(buf) || (n == -1 && errno == EINTR));
	/* A storm finishes handshakes by the thousand: deliver a batch,
	   then let the loop poll (connected devices' frames first, see
	   evprio.h) and come back for the rest. */
	if (cryptopool_deliver(p, EVPRIO_BULK_BATCH))
		event_active(p->wake_ev, EV_READ, 0);
}

static int
cryptopool_pipe(int fds[2])
{
	int i, fl;

	if (pipe(fds) == -1)
		return -1;
	for (i = 0; i < 2; i++) {
		if ((fl = fcntl(fds[i], F_GETFL)) == -1 ||
		    fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) == -1 ||
		    fcntl(fds[i], F_SETFD, FD_CLOEXEC) == -1)
			return -1;
	}
	return 0;
}

int
cryptopool_new(struct event_base *base, unsigned nthreads, size_t queue_max,
	       struct cryptopool **out)
{
	struct cryptopool *p = NULL;
	sigset_t all, old;
	unsigned i;
	int e, r = CINDER_ERR_INTERNAL;

	if (out != NULL)
		*out = NULL;
	if (base == NULL || out == NULL || nthreads > CRYPTOPOOL_MAX_THREADS)
		return CINDER_ERR_INVAL;
	if (nthreads == 0)
		nthreads = cryptopool_default_threads();
	if (queue_max == 0)
		queue_max = CRYPTOPOOL_DEFAULT_QUEUE;

	p = xcalloc(1, sizeof(*p));
	p->base = base;
	p->q_max = queue_max;
	p->wake_fd[0] = p->wake_fd[1] = -1;
	pthread_mutex_init(&p->lock, NULL);
	sem_init(&p->work, 0, 0);
	p->threads = xcalloc(nthreads, sizeof(*p->threads));

	if (cryptopool_pipe(p->wake_fd) == -1) {
		log_err("could not create crypto pool pipe: %s",
			strerror(errno));
		r = CINDER_ERR_IO;
		goto out;
	}
	p->wake_ev = event_new(base, p->wake_fd[0], EV_READ | EV_PERSIST,
			       cryptopool_wake_cb, p);
	if (p->wake_ev != NULL)
		(void)event_priority_set(p->wake_ev, EVPRIO_BULK);
	if (p->wake_ev == NULL || event_add(p->wake_ev, NULL) == -1) {
		log_err("could not watch crypto pool pipe");
		r = CINDER_ERR_IO;
		goto out;
	}

	/* Workers inherit a full signal mask: signals belong to the loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < nthreads; i++) {
		e = pthread_create(&p->threads[i], NULL, cryptopool_worker, p);
		if (e != 0) {
			log_err("could not start crypto worker: %s",
				strerror(e));
			break;
		}
		p->n_threads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p->n_threads != nthreads) {
		r = CINDER_ERR_INTERNAL;
		goto out;
	}
	r = 0;
	*out = p;
	p = NULL;
out:
	cryptopool_free(p);
	return r;
}

int
cryptopool_submit(struct cryptopool *p, cryptopool_work_cb work,
		  cryptopool_done_cb done, void *arg)
{
	struct cryptopool_job *j;
	int r = CINDER_ERR_INTERNAL;

	if (p == NULL || work == NULL || done == NULL)
		return CINDER_ERR_INVAL;
	j = xmalloc(sizeof(*j));
	j->work = work;
	j->done = done;
	j->arg = arg;
	j->next = NULL;

	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		r = CINDER_ERR_UNAVAILABLE;
	} else if (p->q_len >= p->q_max) {
		r = CINDER_ERR_BUSY;
	} else {
		if (p->q_tail != NULL)
			p->q_tail->next = j;
		else
			p->q_head = j;
		p->q_tail = j;
		p->q_len++;
		__atomic_fetch_add(&p->pending, 1, __ATOMIC_RELAXED);
		j = NULL;
		r = 0;
	}
	pthread_mutex_unlock(&p->lock);
	if (r == 0)
		sem_post(&p->work);
	free(j);
	return r;
}

void
cryptopool_stop(struct cryptopool *p)
{
	unsigned i;
	bool was;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	was = p->stopping;
	p->stopping = true;
	pthread_mutex_unlock(&p->lock);
	/* one post per worker: each one wakes, sees stopping and ends */
	for (i = 0; !was && i < p->n_threads; i++)
		sem_post(&p->work);
}

void
cryptopool_free(struct cryptopool *p)
{
	struct cryptopool_job *j, *next;
	unsigned i;

	if (p == NULL)
		return;
	cryptopool_stop(p);
	for (i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	p->n_threads = 0;

	/* Workers are gone: no locking needed from here on. */
	(void)cryptopool_deliver(p, SIZE_MAX);
	j = p->q_head;
	p->q_head = p->q_tail = NULL;
	p->q_len = 0;
	for (; j != NULL; j = next) {
		next = j->next;
		__atomic_fetch_sub(&p->pending, 1, __ATOMIC_RELAXED);
		j->done(j->arg, true);
		free(j);
	}
	if (p->wake_ev != NULL)
		event_free(p->wake_ev);
	for (i = 0; i < 2; i++) {
		if (p->wake_fd[i] != -1)
			close(p->wake_fd[i]);
	}
	sem_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}

unsigned
cryptopool_threads(const struct cryptopool *p)
{
	return p != NULL ? p->n_threads : 0;
}

size_t
cryptopool_pending(const struct cryptopool *p)
{
	if (p == NULL)
		return 0;
	return __atomic_load_n(&p->pending, __ATOMIC_RELAXED);
}
