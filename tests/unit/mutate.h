/* SPDX-License-Identifier: MIT */
/*
 * Deterministic input mutator for parser robustness tests (after
 * OpenSSH's test_helper fuzz mode): bit flips, byte changes, inserts,
 * deletes and truncations driven by a seeded PRNG, so that a failure
 * reproduces from its seed and iteration number. Test code only: it
 * allocates and aborts on allocation failure.
 */
#ifndef CINDER_MUTATE_H
#define CINDER_MUTATE_H

#include <stddef.h>
#include <stdint.h>

/** PRNG state (xorshift64*); plain data, seed with mutate_seed(). */
struct mutate_rng {
	uint64_t s; /* never 0 */
};

/**
 * Seed a PRNG. The same seed always gives the same sequence.
 * @param rng state to initialise
 * @param seed any value (0 is mapped to a fixed non-zero state)
 */
void mutate_seed(struct mutate_rng *rng, uint64_t seed);

/** Next 32 pseudo-random bits. */
uint32_t mutate_rand(struct mutate_rng *rng);

/** Pseudo-random value in [0, n); 0 when n == 0. */
size_t mutate_below(struct mutate_rng *rng, size_t n);

/* Extra room mutate_once() may need beyond the input length. */
#define MUTATE_SLACK 16

/**
 * Apply 1 to 4 random mutations (flip a bit, set a byte to a random or
 * an "interesting" value such as 0x00, 0xff, 0x0d, 0x0e, 0x0f, insert,
 * delete, duplicate a byte, truncate) to a copy of in.
 * @param rng PRNG state, advanced
 * @param in input bytes (may be NULL when in_len == 0); borrowed
 * @param in_len input length
 * @param out output buffer, owned by the caller
 * @param cap its size; must be >= in_len + MUTATE_SLACK
 * @return the mutated length (<= cap)
 */
size_t mutate_once(struct mutate_rng *rng, const uint8_t *in, size_t in_len,
		   uint8_t *out, size_t cap);

/** Callback given each mutated input; buf is exactly len bytes long. */
typedef void (*mutate_cb)(const uint8_t *buf, size_t len, void *arg);

/**
 * Run fn over iterations mutants of in, then over every truncation
 * 0..in_len-1. Each input is passed in its own heap block of exactly its
 * length, so that AddressSanitizer catches any read past the end.
 * @param in seed input; borrowed
 * @param in_len its length
 * @param seed PRNG seed
 * @param iterations number of mutants
 * @param fn callback
 * @param arg passed to fn
 */
void mutate_run(const uint8_t *in, size_t in_len, uint64_t seed,
		unsigned iterations, mutate_cb fn, void *arg);

#endif
