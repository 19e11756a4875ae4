/* SPDX-License-Identifier: MIT */
/*
 * CRC-32 with the IEEE 802.3 / zlib polynomial (reflected 0xEDB88320,
 * initial and final XOR 0xFFFFFFFF), as used to check OTA chunks. Same
 * calling convention as zlib's crc32(): start with 0, feed the previous
 * result back to continue.
 */
#ifndef FW_CRC32_H
#define FW_CRC32_H

#include <stddef.h>
#include <stdint.h>

/**
 * Update a CRC-32.
 * @param crc 0 to start, or the value returned for the preceding data
 * @param data bytes (borrowed); may be NULL if len is 0
 * @param len number of bytes
 * @return the CRC-32 of everything fed so far
 */
uint32_t fw_crc32(uint32_t crc, const void *data, size_t len);

#endif
