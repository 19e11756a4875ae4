/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the firmware library: big-endian load/store,
 * constant-time compare and a wipe the compiler may not remove. Pure.
 */
#ifndef FW_UTIL_H
#define FW_UTIL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Storage class of the library's scratch buffers (messages and JSON being
 * built). A microcontroller runs one thread: plain static. On a host the
 * same library may drive devices from several threads at once
 * (bench/cinder-loadgen), so each thread gets its own copy there.
 */
#if defined(__unix__)
#define FW_SCRATCH static _Thread_local
#else
#define FW_SCRATCH static
#endif

/**
 * Read a big-endian 32-bit value.
 * @param p 4 readable bytes (borrowed)
 */
uint32_t fw_get_be32(const uint8_t *p);

/**
 * Write a big-endian 32-bit value.
 * @param p 4 writable bytes (caller storage)
 * @param v value
 */
void fw_put_be32(uint8_t *p, uint32_t v);

/**
 * Compare two buffers in time that depends only on the length.
 * @return 0 if equal, non-zero otherwise
 */
int fw_ct_cmp(const void *a, const void *b, size_t len);

/**
 * Overwrite a buffer with zeros (secrets: keys, session material).
 * @param p buffer (borrowed); may be NULL if len is 0
 * @param len number of bytes
 */
void fw_wipe(void *p, size_t len);

/**
 * Append n bytes of s to buf at *len, keeping buf NUL-terminated.
 * @param buf caller storage of cap bytes
 * @return 0, FW_ERR_TOO_BIG (nothing appended) when it does not fit
 */
int fw_buf_put(char *buf, size_t cap, size_t *len, const char *s, size_t n);

/** fw_buf_put of a NUL-terminated string. */
int fw_buf_puts(char *buf, size_t cap, size_t *len, const char *s);

/** Append an unsigned decimal number. */
int fw_buf_putu(char *buf, size_t cap, size_t *len, uint32_t v);

/**
 * Append s as the inside of a JSON string: '"' and '\\' escaped, control
 * bytes as \\u00XX.
 */
int fw_buf_put_json(char *buf, size_t cap, size_t *len, const char *s);

#endif
