/* SPDX-License-Identifier: MIT */
/*
 * libevent's small allocations in evmem's slots: a loop watching many
 * descriptors holds one slot per descriptor (its evmap entry) and gives
 * them back when freed; larger allocations and reallocations still work.
 * Pure (pipes only).
 */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>

#include "evmem.h"

static void
noop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

START_TEST(test_evmem_loop)
{
	struct event_base *base;
	struct event *ev[200];
	int fds[100][2];
	size_t before, i;

	evmem_install();
	evmem_install(); /* twice: nothing more */
	before = evmem_slots();
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	for (i = 0; i < 100; i++) {
		ck_assert_int_eq(pipe(fds[i]), 0);
		ev[2 * i] = event_new(base, fds[i][0], EV_READ | EV_PERSIST,
				      noop_cb, NULL);
		ev[2 * i + 1] =
			event_new(base, fds[i][1], EV_WRITE, noop_cb, NULL);
		ck_assert_int_eq(event_add(ev[2 * i], NULL), 0);
		ck_assert_int_eq(event_add(ev[2 * i + 1], NULL), 0);
	}
	/* an entry per descriptor watched, in the slots */
	ck_assert_uint_ge(evmem_slots(), before + 200);
	ck_assert_int_eq(event_base_loop(base, EVLOOP_NONBLOCK), 0);
	for (i = 0; i < 200; i++)
		event_free(ev[i]);
	event_base_free(base);
	ck_assert_uint_le(evmem_slots(), before);
	for (i = 0; i < 100; i++) {
		close(fds[i][0]);
		close(fds[i][1]);
	}
}
END_TEST

static Suite *
evmem_suite(void)
{
	Suite *s = suite_create("evmem");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_evmem_loop);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(evmem_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
