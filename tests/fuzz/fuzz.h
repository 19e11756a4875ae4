/* SPDX-License-Identifier: MIT */
/*
 * The libFuzzer entry point every tests/fuzz/fuzz_*.c defines. With
 * --enable-fuzzing libFuzzer calls it; otherwise standalone.c's main()
 * replays corpus files through it, so each target is also a regression
 * test in `make check`.
 */
#ifndef CINDER_FUZZ_H
#define CINDER_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/**
 * Run one input. Must not crash; a broken property aborts.
 * @param data input bytes; borrowed for the call
 * @param size input length
 * @return 0 (other values are reserved by libFuzzer)
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
