/* SPDX-License-Identifier: MIT */
/* teststore.h: waiting for a store's answers in a Check test. */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>

#include <check.h>
#include <event2/event.h>

#include "store.h"
#include "testdb.h"
#include "teststore.h"

static void
expire_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

static void
answered_cb(int r, const struct store_result *res, void *arg)
{
	(void)res;
	ck_assert_int_eq(r, 0);
	*(bool *)arg = true;
}

void
teststore_settle(struct event_base *base, struct store *st)
{
	bool done = false, expired = false;
	struct timeval tv = {30, 0};
	struct event *t = evtimer_new(base, expire_cb, &expired);

	ck_assert_int_eq(store_query(st, STORE_Q_WRITE, "SELECT 1", 0, NULL,
				     answered_cb, &done, NULL),
			 0);
	evtimer_add(t, &tv);
	while (!done && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	ck_assert_msg(!expired, "the store did not answer in 30 s");
}

int
teststore_main(Suite *(*make_suite)(void))
{
	SRunner *sr;
	int failed;

	testdb_require();
	sr = srunner_create(make_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
