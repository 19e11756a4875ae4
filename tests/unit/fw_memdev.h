/* SPDX-License-Identifier: MIT */
/*
 * An in-memory device for the firmware-library tests: a port whose
 * network is two byte pipes and whose flash is an array, the server's
 * end of the AES channel over those pipes, and a generator of valid user
 * part images (§5.8). Shared by check_fw_app.c and check_ota_device.c.
 */
#ifndef CINDER_TESTS_FW_MEMDEV_H
#define CINDER_TESTS_FW_MEMDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coap/pcoap.h"
#include "fw_aes.h"
#include "port.h"

#define FW_MEMDEV_PIPE_CAP 16384
#define FW_MEMDEV_FLASH_SIZE 65536

struct fw_memdev_pipe {
	uint8_t buf[FW_MEMDEV_PIPE_CAP];
	size_t len;
};

struct fw_memdev {
	struct fw_memdev_pipe d2s;	     /* device to server */
	struct fw_memdev_pipe s2d;	     /* server to device */
	bool connected;			     /* net_connect succeeds */
	int closes;			     /* net_close calls */
	uint32_t now;			     /* the port's millis */
	uint8_t flash[FW_MEMDEV_FLASH_SIZE]; /* the OTA area */
	struct fw_aes_chan srv;		     /* the server's channel */
	uint8_t last[1024];		     /* last opened device message */
	size_t last_len;		     /* its plaintext length */
};

/** Empty pipes, connected, time 5000; port's callbacks on md. */
void fw_memdev_init(struct fw_memdev *md, struct port *port);

/** Seal a plaintext message into s2d, framed (Check assertions). */
void fw_memdev_server_send(struct fw_memdev *md, const uint8_t *m, size_t len);

/**
 * Open the next device message of d2s into m (views into md->last).
 * @return false when d2s holds no frame
 */
bool fw_memdev_server_next(struct fw_memdev *md, struct pcoap_msg *m);

/**
 * Write a valid user part (module prefix at 0x08080000, filler, a 40-byte
 * suffix whose SHA-256 field is a0 a1 ... bf, the CRC-32) of len bytes.
 */
void fw_memdev_user_image(uint8_t *img, size_t cap, size_t len,
			  uint16_t version, uint16_t platform, uint16_t needs);

/** Store v little-endian (module headers). */
void fw_memdev_put_le32(uint8_t *p, uint32_t v);

#endif
