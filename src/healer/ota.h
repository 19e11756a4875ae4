/* SPDX-License-Identifier: MIT */
/*
 * OTA sender (protocol.md §5): sends one firmware image to one device.
 * UpdateBegin, then chunks (fast mode with ChunkMissed resends, or normal
 * mode one chunk at a time), then UpdateDone, and the validation result.
 *
 * A pure state machine: no I/O, no clock reads (time is passed in, in
 * monotonic milliseconds), no logging (the caller logs the reports).
 * Everything it wants goes through struct ota_ops: send a message,
 * take a message ID and a token from the session that owns those
 * counters, ask how many bytes the connection accepts now, report.
 * See docs/internals/ota.md for the states, timeouts and limits.
 *
 * The image is shared: struct ota_image is a refcounted read-only buffer,
 * one copy in memory for every device receiving it. An ota holds one
 * reference while it lives.
 *
 * Loop thread only. Callbacks must not call into the machine that called
 * them (ota_free() included): free it after the ota_* call returns, once
 * ota_finished() says so.
 */
#ifndef CINDER_HEALER_OTA_H
#define CINDER_HEALER_OTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coap/pcoap.h"

/**
 * A firmware image shared by every transfer that sends it, with the chunk
 * CRCs of the first transfer's chunking cached for the others.
 */
struct ota_image {
	unsigned refs;	     /* references; freed at 0 */
	size_t len;	     /* bytes */
	const uint8_t *data; /* the image; owned */
	uint32_t *crcs;	     /* CRC-32 per chunk, or NULL; owned */
	uint16_t crc_cs;     /* the chunk size they are for */
	bool crc_padded;     /* the last one over the padded chunk */
	/* Called once at the last reference, before the image is freed
	   (the image cache, otacache.h, forgets it there); NULL = none. */
	void (*on_free)(void *arg, struct ota_image *img);
	void *on_free_arg;
};

/**
 * Make a shared image by copying data once.
 * @return the image with one reference; ota_image_unref() it
 */
struct ota_image *ota_image_new(const uint8_t *data, size_t len);

/** Make a shared image that takes a malloc()ed buffer. */
struct ota_image *ota_image_new_take(uint8_t *data, size_t len);

/** Add a reference. @return img */
struct ota_image *ota_image_ref(struct ota_image *img);

/**
 * Drop a reference; at the last one calls img->on_free, then frees the
 * image. NULL-safe.
 */
void ota_image_unref(struct ota_image *img);

/* Why a transfer failed (struct ota_report.reason). */
enum ota_fail {
	OTA_FAIL_NONE = 0,
	OTA_FAIL_REFUSED,      /* UpdateBegin answered 4.00 (<= 1.1.x) */
	OTA_FAIL_DISABLED,     /* 5.03: the application disabled updates */
	OTA_FAIL_TIMEOUT,      /* UpdateReady, a reply or the whole transfer */
	OTA_FAIL_MISSED,       /* too many ChunkMissed rounds or CRC retries */
	OTA_FAIL_REJECTED,     /* the device will not install the image */
	OTA_FAIL_DISCONNECTED, /* ota_abort(): the connection ended */
	OTA_FAIL_PROTO,	       /* RST, or the send failed */
};

/** @return a short static name of a failure ("refused", ...) */
const char *ota_fail_str(enum ota_fail f);

enum ota_event {
	OTA_EV_STARTED = 1, /* UpdateReady received: chunks follow */
	OTA_EV_PROGRESS,    /* every tenth of the first pass */
	OTA_EV_SUCCESS,	    /* the device accepted the complete image */
	OTA_EV_FAILED,	    /* reason and text say why */
};

/** What report() gets; every pointer is borrowed for the call. */
struct ota_report {
	enum ota_event ev;
	enum ota_fail reason; /* OTA_EV_FAILED only */
	const char *text;     /* FAILED: human-readable reason */
	bool fast;	      /* fast OTA in use (after STARTED) */
	uint32_t chunks_sent; /* chunk messages sent so far, resends too */
	uint32_t n_chunks;    /* chunks in the image */
	const char *json;     /* SUCCESS/REJECTED: the device's validation
				 JSON (§5.6), NUL-terminated; NULL if none */
};

struct ota_ops {
	/* Send one plaintext CoAP message. @return 0 or an error, which
	   fails the transfer (OTA_FAIL_PROTO). */
	int (*send)(void *arg, const uint8_t *msg, size_t len);
	/* Take the next server message ID. */
	uint16_t (*take_mid)(void *arg);
	/* Take a free 1-byte token (never 0). */
	uint8_t (*take_token)(void *arg);
	/* Bytes the caller accepts now (the output budget); NULL means
	   unlimited. Fast mode sends a chunk only when its whole message
	   fits; ota_pump() resumes after the output drained. */
	size_t (*writable)(void *arg);
	/* Progress and the final result (exactly one SUCCESS or FAILED). */
	void (*report)(void *arg, const struct ota_report *r);
};

/* Defaults and limits. */
#define OTA_CHUNK_OVERHEAD 16	   /* chunk message bytes besides data */
#define OTA_MSG_MAX 1400	   /* largest message size taken from a Hello */
#define OTA_MAX_CHUNKS 65534	   /* the chunk count must be < 65535 (§5.2) */
#define OTA_MISSED_PER_MSG 64	   /* indexes read from one ChunkMissed */
#define OTA_BEGIN_TIMEOUT_MS 6000  /* per UpdateBegin try (Node: 6 s) */
#define OTA_BEGIN_TRIES 4	   /* UpdateBegin sends in all */
#define OTA_BEGIN_LAST_MS 30000	   /* wait after the last try */
#define OTA_REPLY_TIMEOUT_MS 20000 /* normal chunk reply, UpdateDone ACK */
#define OTA_MISSED_WAIT_MS 10000   /* ChunkMissed after UpdateDone 4.00 */
#define OTA_TOTAL_TIMEOUT_MS 600000 /* the whole transfer */
#define OTA_CHUNK_RETRIES 3	    /* normal mode: resends after 4.00 */
#define OTA_DONE_ROUNDS 10	    /* ChunkMissed rounds */

/** Parameters; zero fields take the defaults above. */
struct ota_params {
	bool fast;	     /* offer fast OTA */
	uint16_t chunk_size; /* device's chunk size; 0 = 512 */
	uint16_t max_msg;    /* device's largest message; 0 = 767 */
	uint32_t max_binary; /* device's largest image; 0 = unknown */
	uint8_t store;	     /* UpdateBegin store (0 = firmware) */
	uint32_t address;    /* UpdateBegin address */
	uint32_t begin_timeout_ms;
	uint32_t begin_tries;
	uint32_t begin_last_ms;
	uint32_t reply_timeout_ms;
	uint32_t missed_wait_ms;
	uint32_t total_timeout_ms;
	uint32_t chunk_retries;
	uint32_t done_rounds;
};

struct ota;

/**
 * Create a transfer (nothing is sent until ota_start()).
 * @param ops callbacks, borrowed for the lifetime
 * @param img the image; the ota takes its own reference
 * @param p parameters, copied; NULL = defaults
 * @param out the new machine
 * @return 0, CINDER_ERR_INVAL (empty image), CINDER_ERR_TOO_BIG (larger
 *	than p->max_binary, or 65535 chunks or more)
 */
int ota_new(const struct ota_ops *ops, void *arg, struct ota_image *img,
	    const struct ota_params *p, struct ota **out);

/** Free a transfer (no report). NULL-safe. */
void ota_free(struct ota *o);

/** Send UpdateBegin. @return 0 or the send error (also reported). */
int ota_start(struct ota *o, uint64_t now_ms);

/**
 * Offer a decoded device message. Consumes (and ACKs when CON) what
 * belongs to the transfer: ACKs and RSTs of its messages (by message ID),
 * UpdateReady and chunk replies (by token), ChunkMissed, a device PUT u.
 * @param kind pcoap_particle_kind(m)
 * @return true when consumed; false: the caller handles the message
 */
bool ota_input(struct ota *o, const struct pcoap_msg *m, int kind,
	       uint64_t now_ms);

/** The output drained: send what the budget now allows. */
void ota_pump(struct ota *o, uint64_t now_ms);

/**
 * Advance time: deadlines, resends, and pumping.
 * @return ms until the next deadline, or -1 when finished
 */
int64_t ota_tick(struct ota *o, uint64_t now_ms);

/** Fail the transfer now (e.g. OTA_FAIL_DISCONNECTED); no-op if done. */
void ota_abort(struct ota *o, enum ota_fail reason, const char *text);

/** @return true once SUCCESS or FAILED was reported */
bool ota_finished(const struct ota *o);

/** @return true while tok is one the transfer waits for */
bool ota_token_in_use(const struct ota *o, uint8_t tok);

/** @return the chunk size in use (after clamping) */
uint16_t ota_chunk_size(const struct ota *o);

/** @return the number of chunks */
uint32_t ota_chunk_count(const struct ota *o);

/**
 * Read the UpdateDone validation JSON (§5.6):
 * {"r":"ok"|"error","u":{...,"vc":N,"vv":N}}.
 * @param why set on failure to a short static reason
 * @return 0 (the device will accept it), CINDER_ERR_MALFORMED (not that
 *	JSON), CINDER_ERR_INVAL ("r" is "error" or vv != vc)
 */
int ota_parse_result(const char *json, size_t len, const char **why);

#endif
