/* SPDX-License-Identifier: MIT */
/*
 * Tests for the Particle frame reassembly in src/coap/frame.c: the
 * incremental peek (need more / complete / malformed / too big), header
 * encoding, streams split at arbitrary points, every truncation and the
 * deterministic mutator.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coap/pcoap.h"
#include "mutate.h"

START_TEST(test_pcoap_frame_peek_need_header)
{
	uint8_t b[1] = {0x00};
	size_t fl = 99;

	ck_assert_int_eq(pcoap_frame_peek(NULL, 0, 1024, &fl), PCOAP_NEED_MORE);
	ck_assert_uint_eq(fl, 2);
	ck_assert_int_eq(pcoap_frame_peek(b, 1, 1024, &fl), PCOAP_NEED_MORE);
	ck_assert_uint_eq(fl, 2);
	ck_assert_int_eq(pcoap_frame_peek(b, 1, 1024, NULL), PCOAP_NEED_MORE);
}
END_TEST

START_TEST(test_pcoap_frame_peek_complete)
{
	uint8_t b[2 + 32 + 5];
	size_t fl = 0;

	memset(b, 0xaa, sizeof(b));
	b[0] = 0x00;
	b[1] = 0x20;
	/* Exactly one frame, then the same with trailing bytes of the next. */
	ck_assert_int_eq(pcoap_frame_peek(b, 34, 1024, &fl), PCOAP_OK);
	ck_assert_uint_eq(fl, 34);
	ck_assert_int_eq(pcoap_frame_peek(b, sizeof(b), 1024, &fl), PCOAP_OK);
	ck_assert_uint_eq(fl, 34);
	/* max_len is inclusive. */
	ck_assert_int_eq(pcoap_frame_peek(b, 34, 32, &fl), PCOAP_OK);
}
END_TEST

START_TEST(test_pcoap_frame_peek_need_body)
{
	uint8_t b[2 + 16] = {0x00, 0x10};
	size_t fl = 0, n;

	for (n = 2; n < sizeof(b); n++) {
		ck_assert_int_eq(pcoap_frame_peek(b, n, 1024, &fl),
				 PCOAP_NEED_MORE);
		ck_assert_uint_eq(fl, 18);
	}
}
END_TEST

START_TEST(test_pcoap_frame_peek_malformed)
{
	static const uint8_t bad[][2] = {
		{0x00, 0x00}, {0x00, 0x01}, {0x00, 0x0f},
		{0x00, 0x11}, {0x03, 0x01}, {0xff, 0xff},
	};
	size_t i, fl = 1;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(pcoap_frame_peek(bad[i], 2, 65535, &fl),
				 PCOAP_MALFORMED);
		ck_assert_uint_eq(fl, 0);
	}
}
END_TEST

START_TEST(test_pcoap_frame_peek_too_big)
{
	uint8_t b[2] = {0x03, 0x10}; /* 784 */
	size_t fl = 1;

	ck_assert_int_eq(pcoap_frame_peek(b, 2, PCOAP_DEVICE_RX_MAX_CT, &fl),
			 PCOAP_TOO_BIG);
	ck_assert_uint_eq(fl, 0);
	ck_assert_int_eq(pcoap_frame_peek(b, 2, PCOAP_SERVER_RX_MAX_CT, &fl),
			 PCOAP_NEED_MORE);
	ck_assert_uint_eq(fl, 786);
	b[0] = 0x03;
	b[1] = 0x00; /* 768: the largest a Photon takes */
	ck_assert_int_eq(pcoap_frame_peek(b, 2, PCOAP_DEVICE_RX_MAX_CT, &fl),
			 PCOAP_NEED_MORE);
}
END_TEST

START_TEST(test_pcoap_frame_header_encode_ok)
{
	uint8_t h[2];

	ck_assert_int_eq(pcoap_frame_header_encode(16, h, 2), PCOAP_OK);
	ck_assert_uint_eq(h[0], 0x00);
	ck_assert_uint_eq(h[1], 0x10);
	ck_assert_int_eq(pcoap_frame_header_encode(65520, h, 2), PCOAP_OK);
	ck_assert_uint_eq(h[0], 0xff);
	ck_assert_uint_eq(h[1], 0xf0);
}
END_TEST

START_TEST(test_pcoap_frame_header_encode_errors)
{
	uint8_t h[2];

	ck_assert_int_eq(pcoap_frame_header_encode(0, h, 2), PCOAP_MALFORMED);
	ck_assert_int_eq(pcoap_frame_header_encode(17, h, 2), PCOAP_MALFORMED);
	ck_assert_int_eq(pcoap_frame_header_encode(65536, h, 2), PCOAP_TOO_BIG);
	ck_assert_int_eq(pcoap_frame_header_encode(16, h, 1), PCOAP_NOSPACE);
	ck_assert_int_eq(pcoap_frame_header_encode(16, NULL, 2), PCOAP_NOSPACE);
}
END_TEST

/*
 * Build a stream of n frames of varying lengths, each body filled with
 * its frame number, and reassemble it from pieces of random size, as a
 * bufferevent read callback would.
 */
START_TEST(test_pcoap_frame_peek_split_stream)
{
	enum { NFRAMES = 40 };
	uint8_t *stream, *acc;
	size_t lens[NFRAMES], total = 0, off = 0, fed = 0, acc_len = 0;
	size_t got = 0, i, fl;
	struct mutate_rng rng;

	mutate_seed(&rng, 7);
	for (i = 0; i < NFRAMES; i++) {
		lens[i] = 16 * (1 + mutate_below(&rng, 48));
		total += 2 + lens[i];
	}
	stream = malloc(total);
	acc = malloc(total);
	ck_assert_ptr_nonnull(stream);
	ck_assert_ptr_nonnull(acc);
	for (i = 0; i < NFRAMES; i++) {
		ck_assert_int_eq(
			pcoap_frame_header_encode(lens[i], stream + off, 2),
			PCOAP_OK);
		memset(stream + off + 2, (int)i, lens[i]);
		off += 2 + lens[i];
	}
	while (fed < total || acc_len > 0) {
		size_t piece = 1 + mutate_below(&rng, 100);
		int r;

		if (piece > total - fed)
			piece = total - fed;
		memcpy(acc + acc_len, stream + fed, piece);
		acc_len += piece;
		fed += piece;
		while ((r = pcoap_frame_peek(acc, acc_len, 1024, &fl)) ==
		       PCOAP_OK) {
			ck_assert_uint_lt(got, NFRAMES);
			ck_assert_uint_eq(fl, 2 + lens[got]);
			ck_assert_uint_eq(acc[2], (uint8_t)got);
			ck_assert_uint_eq(acc[fl - 1], (uint8_t)got);
			memmove(acc, acc + fl, acc_len - fl);
			acc_len -= fl;
			got++;
		}
		ck_assert_int_eq(r, PCOAP_NEED_MORE);
		if (fed == total)
			ck_assert_uint_eq(acc_len, 0);
	}
	ck_assert_uint_eq(got, NFRAMES);
	free(stream);
	free(acc);
}
END_TEST

START_TEST(test_pcoap_frame_peek_truncations)
{
	uint8_t b[2 + 48];
	size_t n, fl;

	memset(b, 0x5a, sizeof(b));
	b[0] = 0;
	b[1] = 48;
	for (n = 0; n < sizeof(b); n++) {
		uint8_t *copy = malloc(n > 0 ? n : 1);

		memcpy(copy, b, n);
		ck_assert_int_eq(pcoap_frame_peek(copy, n, 1024, &fl),
				 PCOAP_NEED_MORE);
		free(copy);
	}
	ck_assert_int_eq(pcoap_frame_peek(b, sizeof(b), 1024, &fl), PCOAP_OK);
}
END_TEST

/*
 * The device->server byte stream of the recorded testapp session (after
 * the 256-byte handshake block), as stored in the fuzz seed corpus:
 * 37 frames whose ciphertext lengths match the decoded recording.
 */
START_TEST(test_pcoap_frame_peek_recorded)
{
	static const size_t want[] = {16, 48, 48, 16, 16, 16, 32, 144, 16, 16,
				      32, 16, 16, 48, 32, 32, 16, 32,  16, 32,
				      32, 16, 32, 16, 32, 32, 16, 32,  16, 32,
				      32, 16, 32, 16, 32, 32, 16};
	const char *top = getenv("top_srcdir");
	char path[1024];
	uint8_t *buf;
	size_t len, off, fl, n = 0;
	long size;
	FILE *f;

	snprintf(path, sizeof(path),
		 "%s/tests/fuzz/corpus/coap_frame/"
		 "testapp-d2s-whole",
		 top != NULL ? top : ".");
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	ck_assert_int_gt(size, 2);
	rewind(f);
	buf = malloc((size_t)size);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	/* Skip the fuzz target's two control bytes. */
	len = (size_t)size;
	off = 2;
	while (pcoap_frame_peek(buf + off, len - off, PCOAP_SERVER_RX_MAX_CT,
				&fl) == PCOAP_OK) {
		ck_assert_uint_lt(n, sizeof(want) / sizeof(want[0]));
		ck_assert_uint_eq(fl - 2, want[n]);
		off += fl;
		n++;
	}
	ck_assert_uint_eq(n, sizeof(want) / sizeof(want[0]));
	ck_assert_uint_eq(off, len);
	free(buf);
}
END_TEST

static void
frame_mutant(const uint8_t *buf, size_t len, void *arg)
{
	size_t fl = 0, fl2 = 0, max = *(size_t *)arg;
	int r = pcoap_frame_peek(buf, len, max, &fl);

	switch (r) {
	case PCOAP_OK:
		ck_assert_uint_le(fl, len);
		ck_assert_uint_eq((fl - 2) % 16, 0);
		ck_assert_uint_le(fl - 2, max);
		/* Any prefix shorter than the frame needs more. */
		ck_assert_int_eq(pcoap_frame_peek(buf, fl - 1, max, &fl2),
				 PCOAP_NEED_MORE);
		ck_assert_uint_eq(fl2, fl);
		break;
	case PCOAP_NEED_MORE:
		ck_assert_uint_gt(fl, len);
		break;
	case PCOAP_MALFORMED:
	case PCOAP_TOO_BIG:
		ck_assert_uint_ge(len, 2);
		ck_assert_uint_eq(fl, 0);
		break;
	default:
		ck_abort_msg("unexpected result %d", r);
	}
}

START_TEST(test_pcoap_frame_peek_mutate)
{
	uint8_t b[2 + 64];
	size_t max = 48;

	memset(b, 0x11, sizeof(b));
	b[0] = 0;
	b[1] = 32;
	mutate_run(b, sizeof(b), 1, 5000, frame_mutant, &max);
	max = 1024;
	mutate_run(b, sizeof(b), 2, 5000, frame_mutant, &max);
}
END_TEST

static Suite *
frame_suite(void)
{
	Suite *s = suite_create("coap_frame");
	TCase *tc;

	tc = tcase_create("peek");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_pcoap_frame_peek_need_header);
	tcase_add_test(tc, test_pcoap_frame_peek_complete);
	tcase_add_test(tc, test_pcoap_frame_peek_need_body);
	tcase_add_test(tc, test_pcoap_frame_peek_malformed);
	tcase_add_test(tc, test_pcoap_frame_peek_too_big);
	tcase_add_test(tc, test_pcoap_frame_peek_split_stream);
	tcase_add_test(tc, test_pcoap_frame_peek_truncations);
	tcase_add_test(tc, test_pcoap_frame_peek_recorded);
	tcase_add_test(tc, test_pcoap_frame_peek_mutate);
	suite_add_tcase(s, tc);

	tc = tcase_create("header");
	tcase_add_test(tc, test_pcoap_frame_header_encode_ok);
	tcase_add_test(tc, test_pcoap_frame_header_encode_errors);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(frame_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
