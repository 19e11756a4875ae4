/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for frame reassembly. Input layout: byte 0 selects the
 * maximum ciphertext length (16 * (1 + b0)), byte 1 the number of split
 * points k (0..7), the next k bytes the piece sizes, the rest is the byte
 * stream. The stream is reassembled twice, whole and fed in pieces; the
 * sequence of frames and the final state must be the same.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "coap/pcoap.h"
#include "fuzz.h"

#define MAX_EVENTS 4096

struct trace {
	size_t n;		 /* frames taken */
	size_t lens[MAX_EVENTS]; /* their total lengths */
	int last;		 /* result that stopped the last peek */
	size_t left;		 /* bytes left unconsumed at the end */
};

/*
 * Take every complete frame at the front of acc; return the result
 * that stopped it, with the consumed bytes removed from acc.
 */
static int
drain(uint8_t *acc, size_t *acc_len, size_t max, struct trace *t)
{
	size_t fl;
	int r;

	while ((r = pcoap_frame_peek(acc, *acc_len, max, &fl)) == PCOAP_OK) {
		if (fl < PCOAP_FRAME_HDR_LEN + PCOAP_AES_BLOCK ||
		    fl > *acc_len || (fl - PCOAP_FRAME_HDR_LEN) > max)
			abort();
		if (t->n < MAX_EVENTS)
			t->lens[t->n] = fl;
		t->n++;
		memmove(acc, acc + fl, *acc_len - fl);
		*acc_len -= fl;
	}
	if (r == PCOAP_NEED_MORE && fl <= *acc_len)
		abort();
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct trace whole, pieces;
	const uint8_t *splits, *stream;
	size_t max, k, len, fed = 0, acc_len, i;
	uint8_t *acc;
	int r = PCOAP_NEED_MORE;

	if (size < 2)
		return 0;
	max = 16 * (1 + (size_t)data[0]);
	k = data[1] % 8;
	if (size < 2 + k)
		return 0;
	splits = data + 2;
	stream = data + 2 + k;
	len = size - 2 - k;
	if ((acc = malloc(len > 0 ? len : 1)) == NULL)
		abort();

	memset(&whole, 0, sizeof(whole));
	memset(&pieces, 0, sizeof(pieces));
	if (len > 0)
		memcpy(acc, stream, len);
	acc_len = len;
	whole.last = drain(acc, &acc_len, max, &whole);
	whole.left = acc_len;

	acc_len = 0;
	for (i = 0; fed < len; i++) {
		size_t piece = k > 0 ? splits[i % k] : 1;

		if (piece == 0)
			piece = 1;
		if (piece > len - fed)
			piece = len - fed;
		memcpy(acc + acc_len, stream + fed, piece);
		acc_len += piece;
		fed += piece;
		r = drain(acc, &acc_len, max, &pieces);
		/* An error is final: the connection would be closed. */
		if (r != PCOAP_NEED_MORE)
			break;
	}
	if (len == 0)
		r = drain(acc, &acc_len, max, &pieces);
	pieces.last = r;
	/* Bytes not yet fed count as left over too. */
	pieces.left = acc_len + (len - fed);

	if (whole.n != pieces.n || whole.last != pieces.last ||
	    whole.left != pieces.left)
		abort();
	for (i = 0; i < whole.n && i < MAX_EVENTS; i++)
		if (whole.lens[i] != pieces.lens[i])
			abort();
	free(acc);
	return 0;
}
