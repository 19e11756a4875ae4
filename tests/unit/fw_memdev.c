/* SPDX-License-Identifier: MIT */
/* The in-memory device of the firmware-library tests (fw_memdev.h). */
#include "config.h"

#include <string.h>

#include <check.h>

#include "fw_crc32.h"
#include "fw_err.h"
#include "fw_memdev.h"
#include "fw_modules.h"

static int
md_connect(void *ctx)
{
	struct fw_memdev *md = ctx;

	return md->connected ? 0 : FW_ERR_AGAIN; /* reconnects stay pending */
}

static int
md_send(void *ctx, const uint8_t *buf, size_t len)
{
	struct fw_memdev *md = ctx;

	if (!md->connected)
		return FW_ERR_IO;
	ck_assert_uint_le(md->d2s.len + len, FW_MEMDEV_PIPE_CAP);
	memcpy(md->d2s.buf + md->d2s.len, buf, len);
	md->d2s.len += len;
	return (int)len;
}

static int
md_recv(void *ctx, uint8_t *buf, size_t cap)
{
	struct fw_memdev *md = ctx;
	size_t n = md->s2d.len < cap ? md->s2d.len : cap;

	if (!md->connected)
		return FW_ERR_IO;
	memcpy(buf, md->s2d.buf, n);
	memmove(md->s2d.buf, md->s2d.buf + n, md->s2d.len - n);
	md->s2d.len -= n;
	return (int)n;
}

static void
md_close(void *ctx)
{
	struct fw_memdev *md = ctx;

	md->connected = false;
	md->closes++;
}

static uint32_t
md_millis(void *ctx)
{
	struct fw_memdev *md = ctx;

	return md->now;
}

static int
md_random(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	memset(buf, 0x5a, len);
	return 0;
}

static int
md_flash_read(void *ctx, uint32_t off, uint8_t *buf, size_t len)
{
	struct fw_memdev *md = ctx;

	ck_assert_uint_le(off + len, FW_MEMDEV_FLASH_SIZE);
	memcpy(buf, md->flash + off, len);
	return 0;
}

static int
md_flash_write(void *ctx, uint32_t off, const uint8_t *buf, size_t len)
{
	struct fw_memdev *md = ctx;

	ck_assert_uint_le(off + len, FW_MEMDEV_FLASH_SIZE);
	memcpy(md->flash + off, buf, len);
	return 0;
}

static int
md_flash_erase(void *ctx, uint32_t off, size_t len)
{
	struct fw_memdev *md = ctx;

	ck_assert_uint_le(off + len, FW_MEMDEV_FLASH_SIZE);
	memset(md->flash + off, 0xff, len);
	return 0;
}

void
fw_memdev_init(struct fw_memdev *md, struct port *port)
{
	md->d2s.len = 0;
	md->s2d.len = 0;
	md->connected = true;
	md->closes = 0;
	md->now = 5000;
	memset(port, 0, sizeof(*port));
	port->ctx = md;
	port->net_connect = md_connect;
	port->net_send = md_send;
	port->net_recv = md_recv;
	port->net_close = md_close;
	port->millis = md_millis;
	port->random = md_random;
	port->flash_read = md_flash_read;
	port->flash_write = md_flash_write;
	port->flash_erase = md_flash_erase;
	port->flash_size = FW_MEMDEV_FLASH_SIZE;
}

void
fw_memdev_server_send(struct fw_memdev *md, const uint8_t *m, size_t len)
{
	struct fw_memdev_pipe *p = &md->s2d;
	size_t ct;

	ck_assert_uint_le(p->len + 2 + len + 16, FW_MEMDEV_PIPE_CAP);
	ck_assert_int_eq(fw_aes_chan_seal(&md->srv, m, len, p->buf + p->len + 2,
					  FW_MEMDEV_PIPE_CAP - p->len - 2, &ct),
			 0);
	p->buf[p->len] = (uint8_t)(ct >> 8);
	p->buf[p->len + 1] = (uint8_t)ct;
	p->len += 2 + ct;
}

bool
fw_memdev_server_next(struct fw_memdev *md, struct pcoap_msg *m)
{
	struct fw_memdev_pipe *p = &md->d2s;
	size_t len, n;

	if (p->len < 2)
		return false;
	len = (size_t)p->buf[0] << 8 | p->buf[1];
	ck_assert_uint_le(2 + len, p->len);
	ck_assert_uint_le(len, sizeof(md->last));
	memcpy(md->last, p->buf + 2, len);
	memmove(p->buf, p->buf + 2 + len, p->len - 2 - len);
	p->len -= 2 + len;
	ck_assert_int_eq(fw_aes_chan_open(&md->srv, md->last, len, &n), 0);
	md->last_len = n;
	ck_assert_int_eq(pcoap_msg_decode(md->last, n, m), PCOAP_OK);
	return true;
}

void
fw_memdev_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

void
fw_memdev_user_image(uint8_t *img, size_t cap, size_t len, uint16_t version,
		     uint16_t platform, uint16_t needs)
{
	uint32_t start = 0x08080000, crc;
	size_t mlen = len - 4, i;

	ck_assert_uint_le(len, cap);
	memset(img, 0, len);
	fw_memdev_put_le32(img, start);
	fw_memdev_put_le32(img + 4, start + (uint32_t)mlen);
	img[10] = (uint8_t)version;
	img[11] = (uint8_t)(version >> 8);
	img[12] = (uint8_t)platform;
	img[13] = (uint8_t)(platform >> 8);
	img[14] = FW_MOD_USER;
	img[15] = 1;
	img[16] = FW_MOD_SYSTEM;
	img[17] = 2;
	img[18] = (uint8_t)needs;
	img[19] = (uint8_t)(needs >> 8);
	for (i = 24; i < mlen - 40; i++)
		img[i] = (uint8_t)(i * 31);
	for (i = 0; i < 32; i++)
		img[mlen - 34 + i] = (uint8_t)(0xa0 + i);
	img[mlen - 2] = 40; /* suffix size, LE */
	img[mlen - 1] = 0;
	crc = fw_crc32(0, img, mlen);
	img[mlen] = (uint8_t)(crc >> 24);
	img[mlen + 1] = (uint8_t)(crc >> 16);
	img[mlen + 2] = (uint8_t)(crc >> 8);
	img[mlen + 3] = (uint8_t)crc;
}
