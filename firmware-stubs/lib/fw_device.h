/* SPDX-License-Identifier: MIT */
/*
 * The portable device: handshake, AES channel and the core CoAP session
 * of a Particle device (protocol.md §2, §3, §6, §8.2), as a non-blocking
 * state machine. The owner calls fw_device_step() whenever it likes (a
 * main loop on the nRF52840, one timer for thousands of devices in the
 * simulator); the device polls its port and never blocks. No malloc: all
 * state, including the two 800-byte protocol buffers, is in the struct.
 *
 * Handled inside: nonce, RSA key block, session key check, framed
 * AES-128-CBC with per-direction IV chaining, Hello both ways, ping and
 * keep-alive, time request and reply, Describe. Everything else (function
 * calls, variables, events from the cloud, OTA) goes to the message
 * callback.
 */
#ifndef FW_DEVICE_H
#define FW_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw_aes.h"
#include "port.h"

struct pcoap_msg;

#define FW_DEVICE_BUF 800 /* Photon PROTOCOL_BUFFER_SIZE (§1.5) */
/* Largest ciphertext accepted in one frame: buffer - 2 - 16. */
#define FW_DEVICE_RX_MAX_CT (FW_DEVICE_BUF - 2 - 16)
#define FW_DEVICE_ID_LEN 12	   /* device ID bytes (§2.2) */
#define FW_DEVICE_NONCE_LEN 40	   /* step 1 */
#define FW_DEVICE_KEYBLOCK_LEN 256 /* step 2 */
#define FW_DEVICE_SESSION_LEN 384  /* step 3 */

/* Timers in milliseconds. */
#define FW_DEVICE_STEP_TIMEOUT 20000 /* connect and each handshake read */
#define FW_DEVICE_HELLO_TIMEOUT 4000 /* server Hello after ours (§2.3) */
#define FW_DEVICE_PING_AFTER 15000   /* silence before a ping (§8.2) */
#define FW_DEVICE_PING_TIMEOUT 10000 /* then silence before giving up */
#define FW_DEVICE_RETRY_MIN 1000     /* first reconnect delay */
#define FW_DEVICE_RETRY_MAX 32000    /* reconnect delay cap */

enum fw_device_state {
	FW_DEVICE_IDLE = 0,   /* stopped, or waiting to reconnect */
	FW_DEVICE_CONNECTING, /* port connecting */
	FW_DEVICE_NONCE,      /* reading the 40-byte nonce */
	FW_DEVICE_KEYBLOCK,   /* writing the 256-byte RSA block */
	FW_DEVICE_SESSION,    /* reading the 384-byte session block */
	FW_DEVICE_HELLO,      /* channel up, waiting for the server Hello */
	FW_DEVICE_READY,      /* session established */
};

struct fw_device;

/**
 * A decrypted, decoded message the core did not handle itself. The
 * message's views point into the device's receive buffer and are valid
 * only during the call. The callback may call fw_device_send() and the
 * other senders.
 */
typedef void (*fw_device_message_cb)(struct fw_device *d,
				     const struct pcoap_msg *m, void *arg);

/**
 * The session became ready (server Hello received). When set, the core
 * sends nothing by itself after the Hello: the callback owns the §2.5
 * sequence (the application layer, lib/fw_app.h, uses it).
 */
typedef void (*fw_device_ready_cb)(struct fw_device *d, void *arg);

/**
 * Build the Describe JSON for the request flags (PCOAP_DESCRIBE_*; 0 =
 * system + application) into buf (cap bytes, caller storage).
 * @return 0 and *len, or a negative FW_ERR_* code (the request is then
 *         answered with ACK 5.00)
 */
typedef int (*fw_device_describe_cb)(struct fw_device *d, uint8_t flags,
				     char *buf, size_t cap, size_t *len,
				     void *arg);

struct fw_device_config {
	uint8_t id[FW_DEVICE_ID_LEN];	 /* device ID */
	uint16_t product_id;		 /* Hello; platform ID if no product */
	uint16_t product_version;	 /* Hello; 0xffff when none */
	uint16_t platform_id;		 /* Hello (6 Photon, 3 virtual, ...) */
	uint8_t hello_flags;		 /* PCOAP_HELLO_F_* */
	bool extended_hello;		 /* Device OS 3.0+: the 20-byte Hello */
	uint16_t system_version;	 /* extended Hello: system module
					    version */
	uint32_t max_binary;		 /* extended Hello: largest image */
	uint16_t ota_chunk_size;	 /* extended Hello and
					    spark/hardware/ota_chunk_size;
					    0 = 512 */
	const char *describe;		 /* Describe JSON (borrowed for the
					    device's lifetime); NULL = empty */
	fw_device_message_cb on_message; /* may be NULL */
	fw_device_ready_cb on_ready;	 /* may be NULL */
	fw_device_describe_cb describe_cb; /* NULL = the describe string */
	void *cb_arg;			   /* passed to the callbacks */
};

struct fw_device {
	const struct port *port;     /* borrowed for the lifetime */
	struct fw_device_config cfg; /* copied at init */
	enum fw_device_state state;  /* where the state machine is */
	bool running;		     /* started and not stopped */
	int last_err;		     /* why the last connection ended */
	uint32_t deadline;	     /* current state's time limit */
	uint32_t retry_at;	     /* IDLE: when to reconnect */
	uint32_t retry_delay;	     /* next reconnect delay */
	uint32_t last_rx;	     /* last time bytes arrived */
	uint32_t ping_at;	     /* when the pending ping went out */
	bool ping_pending;	     /* a keep-alive ping is unanswered */
	bool ping_sent;		     /* the last ping's ACK has not come */
	uint16_t ping_mid;	     /* message ID of the last ping sent */
	unsigned pongs;		     /* pings answered by their empty ACK */
	uint16_t mid;		     /* last message ID used */
	uint8_t token;		     /* last token used */
	uint8_t time_token;	     /* token of the pending time request */
	uint32_t unix_time;	     /* cloud time from the last reply */
	uint32_t unix_time_at;	     /* millis when it arrived; 0 = none */
	unsigned connects;	     /* sessions established so far */
	unsigned describes;	     /* Describe requests answered */
	struct fw_aes_chan chan;     /* session cipher (secret) */
	uint8_t rx[FW_DEVICE_BUF];   /* received bytes */
	size_t rx_len;		     /* bytes in rx */
	uint8_t tx[FW_DEVICE_BUF + 2 + 16]; /* bytes to send */
	size_t tx_len;			    /* bytes in tx */
	size_t tx_off;			    /* bytes of tx already sent */
};

/**
 * Set up a device (stopped). Nothing is allocated.
 * @param d caller storage (about 1.9 KB)
 * @param p port, borrowed for the device's lifetime
 * @param cfg configuration, copied (describe stays borrowed)
 */
void fw_device_init(struct fw_device *d, const struct port *p,
		    const struct fw_device_config *cfg);

/**
 * Start connecting at the next step.
 */
void fw_device_start(struct fw_device *d, uint32_t now);

/**
 * Close the connection and stop; secrets of the session are wiped.
 */
void fw_device_stop(struct fw_device *d);

/**
 * Close the connection now (a simulated reset, or a network reset) and
 * connect again at the next step, without the reconnect back-off.
 * @param why recorded in last_err (FW_ERR_RESET for a reset)
 */
void fw_device_reconnect(struct fw_device *d, uint32_t now, int why);

/**
 * Whether every queued byte has been handed to the port.
 */
bool fw_device_tx_idle(const struct fw_device *d);

/**
 * Advance the state machine: connect, read, write, time out, reconnect.
 * @param now the port's millis()
 * @return 0, or the negative FW_ERR_* code that made this step drop the
 *         connection (the device then waits and reconnects by itself)
 */
int fw_device_step(struct fw_device *d, uint32_t now);

/**
 * Whether the session is established (server Hello received).
 */
bool fw_device_is_ready(const struct fw_device *d);

/**
 * The OTA chunk size the device announces (cfg.ota_chunk_size, or 512).
 */
uint16_t fw_device_chunk_size(const struct fw_device *d);

/**
 * Next CoAP message ID (the counter starts from the handshake salt).
 */
uint16_t fw_device_next_mid(struct fw_device *d);

/**
 * Encrypt and frame one plaintext CoAP message for sending. The bytes go
 * out during this and the following steps.
 * @param msg encoded CoAP message (borrowed until return)
 * @param len at most FW_DEVICE_BUF - 2 - 16 bytes
 * @return 0, FW_ERR_INVAL (no channel yet), FW_ERR_TOO_BIG, FW_ERR_BUSY
 *         (send buffer full: try again after a step)
 */
int fw_device_send(struct fw_device *d, const uint8_t *msg, size_t len);

/**
 * Publish an event (NON POST e/E, the name as one Uri-Path).
 * @return as fw_device_send, and FW_ERR_INVAL when not ready
 */
int fw_device_publish(struct fw_device *d, const char *name, bool is_private,
		      const uint8_t *data, size_t len);

/**
 * Ask the cloud for the time (CON GET t); the answer lands in unix_time.
 * @return as fw_device_send
 */
int fw_device_request_time(struct fw_device *d);

/**
 * Send a CoAP ping now (CON 0.00), as the keep-alive does after 15 s of
 * silence; when its empty ACK (same message ID) arrives, pongs grows by
 * one. A benchmark times pings with it.
 * @return as fw_device_send, FW_ERR_INVAL when not ready
 */
int fw_device_ping(struct fw_device *d, uint32_t now);

/**
 * Post the Describe without being asked (CON POST d with a flags query,
 * Device OS 2.2+): flags 1 = system part, 2 = application, 3 = both.
 * @return as fw_device_send, FW_ERR_INVAL when not ready
 */
int fw_device_post_describe(struct fw_device *d, uint8_t flags);

/**
 * Say Goodbye before a reset (NON POST x, No-Response, Device OS 2.x+):
 * the reset reason only (a Device OS reset-reason number).
 * @return as fw_device_send, FW_ERR_INVAL when not ready
 */
int fw_device_goodbye(struct fw_device *d, uint32_t reset_reason);

#endif
