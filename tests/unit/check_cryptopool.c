/* SPDX-License-Identifier: MIT */
/*
 * Tests for cryptopool: many jobs complete on the loop thread, work runs
 * on worker threads, the bounded queue reports BUSY, and shutdown with
 * jobs pending cancels exactly the jobs that never ran. Jobs that must
 * wait use a gate (mutex + condvar) released by the test: no sleeps.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cryptopool.h"
#include "err.h"
#include "evprio.h"
#include "xmalloc.h"

/* A one-shot gate: jobs block in gate_wait() until gate_open(). */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;   /* released by the test */
	int entered; /* jobs that reached the gate */
};

static struct gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			   false, 0};

static struct event_base *base;
static pthread_t loop_thread;

static void
setup(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	loop_thread = pthread_self();
	gate.open = false; /* also right under CK_FORK=no */
	gate.entered = 0;
}

static void
teardown(void)
{
	event_base_free(base);
	base = NULL;
}

static void
gate_wait(void)
{
	pthread_mutex_lock(&gate.lock);
	gate.entered++;
	pthread_cond_broadcast(&gate.cond);
	while (!gate.open)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
}

/* Wait until n jobs are blocked in the gate. */
static void
gate_until_entered(int n)
{
	pthread_mutex_lock(&gate.lock);
	while (gate.entered < n)
		pthread_cond_wait(&gate.cond, &gate.lock);
	pthread_mutex_unlock(&gate.lock);
}

static void
gate_open(void)
{
	pthread_mutex_lock(&gate.lock);
	gate.open = true;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
}

struct job {
	unsigned id;	  /* index into the results */
	unsigned input;	  /* work input */
	unsigned output;  /* written by work */
	pthread_t worker; /* thread that ran work */
	bool use_gate;	  /* block in the gate first */
	bool ran;	  /* work was called */
};

struct results {
	unsigned done;		 /* completions seen */
	unsigned cancelled;	 /* of which cancelled */
	unsigned want;		 /* break the loop at this many */
	unsigned *seen;		 /* completions per job id */
	struct cryptopool *pool; /* for resubmission tests */
};

static struct results res;

static void
job_work(void *arg)
{
	struct job *j = arg;

	if (j->use_gate)
		gate_wait();
	j->worker = pthread_self();
	j->output = j->input * j->input + 1;
	j->ran = true;
}

static void
job_done(void *arg, bool cancelled)
{
	struct job *j = arg;

	/* The whole point: completions run on the loop thread. */
	ck_assert(pthread_equal(pthread_self(), loop_thread));
	res.seen[j->id]++;
	res.done++;
	if (cancelled) {
		res.cancelled++;
		ck_assert(!j->ran);
	} else {
		ck_assert(j->ran);
		ck_assert_uint_eq(j->output, j->input * j->input + 1);
		ck_assert(!pthread_equal(j->worker, loop_thread));
	}
	free(j);
	if (res.want != 0 && res.done == res.want)
		event_base_loopbreak(base);
}

static struct job *
job_new(unsigned id, bool use_gate)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->id = id;
	j->input = id + 3;
	j->use_gate = use_gate;
	return j;
}

static void
results_init(unsigned n, unsigned want)
{
	memset(&res, 0, sizeof(res));
	res.seen = xcalloc(n, sizeof(*res.seen));
	res.want = want;
}

START_TEST(test_cryptopool_submit_many)
{
	struct cryptopool *p = NULL;
	const unsigned n = 2000;
	unsigned i;

	results_init(n, n);
	ck_assert_int_eq(cryptopool_new(base, 4, n, &p), 0);
	ck_assert_uint_eq(cryptopool_threads(p), 4);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(cryptopool_submit(p, job_work, job_done,
						   job_new(i, false)),
				 0);
	/* No completion runs inside submit. */
	ck_assert_uint_le(res.done, 0);
	ck_assert_int_eq(event_base_dispatch(base), 0);
	ck_assert_uint_eq(res.done, n);
	ck_assert_uint_eq(res.cancelled, 0);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(res.seen[i], 1);
	ck_assert_uint_eq(cryptopool_pending(p), 0);
	cryptopool_free(p);
	free(res.seen);
}
END_TEST

/* A completion that submits a follow-up job (handshake step 2 -> 3). */
static void
chain_done(void *arg, bool cancelled)
{
	struct job *j = arg;

	ck_assert(pthread_equal(pthread_self(), loop_thread));
	ck_assert(!cancelled);
	if (j->id < 99) {
		ck_assert_int_eq(cryptopool_submit(res.pool, job_work,
						   chain_done,
						   job_new(j->id + 1, false)),
				 0);
	} else {
		event_base_loopbreak(base);
	}
	res.done++;
	free(j);
}

START_TEST(test_cryptopool_submit_from_completion)
{
	results_init(100, 0);
	ck_assert_int_eq(cryptopool_new(base, 2, 8, &res.pool), 0);
	ck_assert_int_eq(cryptopool_submit(res.pool, job_work, chain_done,
					   job_new(0, false)),
			 0);
	ck_assert_int_eq(event_base_dispatch(base), 0);
	ck_assert_uint_eq(res.done, 100);
	cryptopool_free(res.pool);
	free(res.seen);
}
END_TEST

START_TEST(test_cryptopool_submit_busy)
{
	struct cryptopool *p = NULL;
	struct job *extra;
	unsigned i;

	results_init(16, 0);
	ck_assert_int_eq(cryptopool_new(base, 1, 4, &p), 0);
	/* Occupy the only worker, then fill the queue of 4. */
	ck_assert_int_eq(
		cryptopool_submit(p, job_work, job_done, job_new(0, true)), 0);
	gate_until_entered(1);
	for (i = 1; i <= 4; i++)
		ck_assert_int_eq(cryptopool_submit(p, job_work, job_done,
						   job_new(i, false)),
				 0);
	extra = job_new(5, false);
	ck_assert_int_eq(cryptopool_submit(p, job_work, job_done, extra),
			 CINDER_ERR_BUSY);
	ck_assert_uint_eq(cryptopool_pending(p), 5);
	ck_assert_int_eq(cryptopool_submit(p, NULL, job_done, extra),
			 CINDER_ERR_INVAL);
	ck_assert_int_eq(cryptopool_submit(NULL, job_work, job_done, extra),
			 CINDER_ERR_INVAL);
	/* Once the queue drains there is room again. */
	res.want = 5;
	gate_open();
	ck_assert_int_eq(event_base_dispatch(base), 0);
	ck_assert_uint_eq(res.done, 5);
	res.want = 6;
	ck_assert_int_eq(cryptopool_submit(p, job_work, job_done, extra), 0);
	ck_assert_int_eq(event_base_dispatch(base), 0);
	ck_assert_uint_eq(res.done, 6);
	ck_assert_uint_eq(res.cancelled, 0);
	cryptopool_free(p);
	free(res.seen);
}
END_TEST

/* A storm's completions go out EVPRIO_BULK_BATCH per callback, oldest
   first, so the loop can poll between batches; all of them in the end. */
START_TEST(test_cryptopool_delivers_in_batches)
{
	struct cryptopool *p = NULL;
	const unsigned n = 3 * EVPRIO_BULK_BATCH + 5;
	unsigned i;

	results_init(n + 1, 1);
	ck_assert_int_eq(cryptopool_new(base, 1, n + 1, &p), 0);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(cryptopool_submit(p, job_work, job_done,
						   job_new(i, false)),
				 0);
	/* One worker, FIFO: when the last job reaches the gate, the n
	   before it are all finished and waiting for the loop. */
	ck_assert_int_eq(
		cryptopool_submit(p, job_work, job_done, job_new(n, true)), 0);
	gate_until_entered(1);
	/* The break is taken when the callback returns: one batch. */
	ck_assert_int_eq(event_base_dispatch(base), 0);
	ck_assert_uint_eq(res.done, EVPRIO_BULK_BATCH);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(res.seen[i], i < EVPRIO_BULK_BATCH ? 1 : 0);
	res.want = n + 1;
	gate_open();
	ck_assert_int_eq(event_base_dispatch(base), 0);
	ck_assert_uint_eq(res.done, n + 1);
	for (i = 0; i <= n; i++)
		ck_assert_uint_eq(res.seen[i], 1);
	ck_assert_uint_eq(cryptopool_pending(p), 0);
	cryptopool_free(p);
	free(res.seen);
}
END_TEST

START_TEST(test_cryptopool_free_cancels_pending)
{
	struct cryptopool *p = NULL;
	struct job *extra;
	unsigned i;

	results_init(11, 0);
	ck_assert_int_eq(cryptopool_new(base, 1, 100, &p), 0);
	ck_assert_int_eq(
		cryptopool_submit(p, job_work, job_done, job_new(0, true)), 0);
	gate_until_entered(1);
	for (i = 1; i <= 10; i++)
		ck_assert_int_eq(cryptopool_submit(p, job_work, job_done,
						   job_new(i, false)),
				 0);
	/* Stop first so the worker cannot start job 1 after the gate. */
	cryptopool_stop(p);
	extra = job_new(0, false);
	ck_assert_int_eq(cryptopool_submit(p, job_work, job_done, extra),
			 CINDER_ERR_UNAVAILABLE);
	free(extra); /* refused jobs stay the caller's */
	gate_open();
	cryptopool_free(p);
	/* Job 0 ran (its completion delivered by free), 1..10 cancelled. */
	ck_assert_uint_eq(res.done, 11);
	ck_assert_uint_eq(res.cancelled, 10);
	for (i = 0; i <= 10; i++)
		ck_assert_uint_eq(res.seen[i], 1);
	free(res.seen);
}
END_TEST

START_TEST(test_cryptopool_free_while_busy)
{
	struct cryptopool *p = NULL;
	const unsigned n = 500;
	unsigned i;

	/* Free with work in every state: each job completes exactly once. */
	results_init(n, 0);
	ck_assert_int_eq(cryptopool_new(base, 3, n, &p), 0);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(cryptopool_submit(p, job_work, job_done,
						   job_new(i, false)),
				 0);
	event_base_loop(base, EVLOOP_NONBLOCK);
	cryptopool_free(p);
	ck_assert_uint_eq(res.done, n);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(res.seen[i], 1);
	free(res.seen);
	cryptopool_free(NULL);
}
END_TEST

START_TEST(test_cryptopool_new_args)
{
	struct cryptopool *p = (struct cryptopool *)1;

	ck_assert_int_eq(cryptopool_new(NULL, 1, 1, &p), CINDER_ERR_INVAL);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(
		cryptopool_new(base, CRYPTOPOOL_MAX_THREADS + 1, 1, &p),
		CINDER_ERR_INVAL);
	ck_assert_uint_ge(cryptopool_default_threads(), 1);
	ck_assert_int_eq(cryptopool_new(base, 0, 0, &p), 0);
	ck_assert_uint_eq(cryptopool_threads(p), cryptopool_default_threads());
	ck_assert_uint_eq(cryptopool_pending(p), 0);
	cryptopool_free(p);
	ck_assert_uint_eq(cryptopool_threads(NULL), 0);
}
END_TEST

static Suite *
cryptopool_suite(void)
{
	Suite *s = suite_create("cryptopool");
	TCase *tc = tcase_create("pool");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_cryptopool_submit_many);
	tcase_add_test(tc, test_cryptopool_submit_from_completion);
	tcase_add_test(tc, test_cryptopool_submit_busy);
	tcase_add_test(tc, test_cryptopool_delivers_in_batches);
	tcase_add_test(tc, test_cryptopool_free_cancels_pending);
	tcase_add_test(tc, test_cryptopool_free_while_busy);
	tcase_add_test(tc, test_cryptopool_new_args);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(cryptopool_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
