/* SPDX-License-Identifier: MIT */
/*
 * Deterministic mutator for parser tests: xorshift64* PRNG plus a small
 * set of byte-level strategies. Each mutant is handed to the callback in
 * an exact-size heap block so that sanitizers see over-reads.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mutate.h"

void
mutate_seed(struct mutate_rng *rng, uint64_t seed)
{
	rng->s = seed != 0 ? seed : 0x9e3779b97f4a7c15ULL;
	/* Stir so that nearby seeds give unrelated sequences. */
	(void)mutate_rand(rng);
	(void)mutate_rand(rng);
}

uint32_t
mutate_rand(struct mutate_rng *rng)
{
	uint64_t x = rng->s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng->s = x;
	return (uint32_t)((x * 0x2545f4914f6cdd1dULL) >> 32);
}

size_t
mutate_below(struct mutate_rng *rng, size_t n)
{
	if (n == 0)
		return 0;
	return (size_t)mutate_rand(rng) % n;
}

/* Values that sit on wire-format boundaries (CoAP nibbles, lengths). */
static const uint8_t interesting[] = {
	0x00, 0x01, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x40, 0x48,
	0x49, 0x7f, 0x80, 0xd0, 0xe0, 0xf0, 0xfe, 0xff,
};

size_t
mutate_once(struct mutate_rng *rng, const uint8_t *in, size_t in_len,
	    uint8_t *out, size_t cap)
{
	size_t len = in_len, i, pos, rounds;

	if (cap < in_len)
		abort();
	if (in_len > 0)
		memcpy(out, in, in_len);
	rounds = 1 + mutate_below(rng, 4);
	for (i = 0; i < rounds; i++) {
		pos = mutate_below(rng, len);
		switch (mutate_below(rng, 7)) {
		case 0: /* flip one bit */
			if (len > 0)
				out[pos] ^=
					(uint8_t)(1u << mutate_below(rng, 8));
			break;
		case 1: /* random byte */
			if (len > 0)
				out[pos] = (uint8_t)mutate_rand(rng);
			break;
		case 2: /* interesting byte */
			if (len > 0)
				out[pos] = interesting[mutate_below(
					rng, sizeof(interesting))];
			break;
		case 3: /* insert a random byte */
			if (len < cap) {
				pos = mutate_below(rng, len + 1);
				memmove(out + pos + 1, out + pos, len - pos);
				out[pos] = (uint8_t)mutate_rand(rng);
				len++;
			}
			break;
		case 4: /* delete a byte */
			if (len > 0) {
				memmove(out + pos, out + pos + 1,
					len - pos - 1);
				len--;
			}
			break;
		case 5: /* duplicate a byte */
			if (len > 0 && len < cap) {
				memmove(out + pos + 1, out + pos, len - pos);
				len++;
			}
			break;
		default: /* truncate */
			len = mutate_below(rng, len + 1);
			break;
		}
	}
	return len;
}

static void
call_exact(const uint8_t *buf, size_t len, mutate_cb fn, void *arg)
{
	/* malloc(0) may return NULL; give a 1-byte block but pass len 0. */
	uint8_t *copy = malloc(len > 0 ? len : 1);

	if (copy == NULL)
		abort();
	if (len > 0)
		memcpy(copy, buf, len);
	fn(copy, len, arg);
	free(copy);
}

void
mutate_run(const uint8_t *in, size_t in_len, uint64_t seed, unsigned iterations,
	   mutate_cb fn, void *arg)
{
	struct mutate_rng rng;
	size_t cap = in_len + MUTATE_SLACK, len;
	uint8_t *work;
	unsigned i;

	work = malloc(cap);
	if (work == NULL)
		abort();
	mutate_seed(&rng, seed);
	for (i = 0; i < iterations; i++) {
		len = mutate_once(&rng, in, in_len, work, cap);
		call_exact(work, len, fn, arg);
	}
	for (len = 0; len < in_len; len++)
		call_exact(in, len, fn, arg);
	free(work);
}
