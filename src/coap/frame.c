/* SPDX-License-Identifier: MIT */
/*
 * Particle frame reassembly (protocol.md §1.2): a 2-byte big-endian
 * ciphertext length followed by that many bytes of AES-CBC ciphertext.
 * Incremental in the libcoap style: "need N bytes" / "complete frame" /
 * "malformed or too large". Pure: does not decrypt, copy or allocate.
 */
#include "config.h"

#include "coap/pcoap.h"

const char *
pcoap_strerror(int r)
{
	switch (r) {
	case PCOAP_OK:
		return "ok";
	case PCOAP_NEED_MORE:
		return "need more input";
	case PCOAP_MALFORMED:
		return "malformed message";
	case PCOAP_TOO_BIG:
		return "over a size or count limit";
	case PCOAP_NOSPACE:
		return "output buffer too small";
	default:
		return "unknown pcoap result";
	}
}

int
pcoap_frame_peek(const uint8_t *buf, size_t len, size_t max_len,
		 size_t *frame_len)
{
	size_t ct_len;

	if (frame_len != NULL)
		*frame_len = 0;
	if (buf == NULL || len < PCOAP_FRAME_HDR_LEN) {
		if (frame_len != NULL)
			*frame_len = PCOAP_FRAME_HDR_LEN;
		return PCOAP_NEED_MORE;
	}
	ct_len = ((size_t)buf[0] << 8) | buf[1];
	/* CBC with PKCS#7 always yields at least one whole block. */
	if (ct_len == 0 || ct_len % PCOAP_AES_BLOCK != 0)
		return PCOAP_MALFORMED;
	if (ct_len > max_len)
		return PCOAP_TOO_BIG;
	if (len - PCOAP_FRAME_HDR_LEN < ct_len) {
		if (frame_len != NULL)
			*frame_len = PCOAP_FRAME_HDR_LEN + ct_len;
		return PCOAP_NEED_MORE;
	}
	if (frame_len != NULL)
		*frame_len = PCOAP_FRAME_HDR_LEN + ct_len;
	return PCOAP_OK;
}

int
pcoap_frame_header_encode(size_t ct_len, uint8_t *out, size_t cap)
{
	if (ct_len == 0 || ct_len % PCOAP_AES_BLOCK != 0)
		return PCOAP_MALFORMED;
	if (ct_len > PCOAP_FRAME_MAX_CT)
		return PCOAP_TOO_BIG;
	if (out == NULL || cap < PCOAP_FRAME_HDR_LEN)
		return PCOAP_NOSPACE;
	out[0] = (uint8_t)(ct_len >> 8);
	out[1] = (uint8_t)ct_len;
	return PCOAP_OK;
}
