/* SPDX-License-Identifier: MIT */
/*
 * CRC-32 (IEEE 802.3, reflected 0xEDB88320; the module files' and the
 * OTA chunks' CRC, protocol.md §5.4 and §5.8) for the server: the same
 * value as pcoap_crc32(), eight bytes per step ("slicing by 8", an 8 KB
 * table built once). pcoap_crc32() stays the small one the device
 * firmware shares; this is for the server's whole-image passes (every
 * flash upload is checked, every image's chunk CRCs are computed).
 * Thread-safe.
 */
#ifndef CINDER_HEALER_CRC32_H
#define CINDER_HEALER_CRC32_H

#include <stddef.h>
#include <stdint.h>

/** Continue crc (0 to start) over len bytes at p. */
uint32_t crc32_fast(uint32_t crc, const uint8_t *p, size_t len);

#endif
