/* SPDX-License-Identifier: MIT */
/*
 * Device session state machine, after the handshake (protocol.md §2.4-§3,
 * §6). Works on decrypted CoAP messages and does no I/O itself: everything
 * it wants done (send a message, close, report the describe, finish an API
 * request, hand on an event) goes through the callbacks in struct
 * session_ops, which the connection driver (devconn.c) or a unit test
 * supplies. Time is passed in by the caller (milliseconds, monotonic).
 * Loop thread only. Not re-entrant: callbacks must not call back into the
 * same session except session_* functions documented as safe for that.
 *
 * States: HELLO_WAIT (until the device's Hello) -> DESCRIBING (server Hello
 * sent, Describe requested) -> READY (describe reply received) -> CLOSED.
 */
#ifndef CINDER_SESSION_H
#define CINDER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coap/pcoap.h"

struct session;

enum session_state {
	SESSION_HELLO_WAIT = 0, /* waiting for the device's Hello */
	SESSION_DESCRIBING,	/* Hello exchanged, Describe in flight */
	SESSION_READY,		/* describe received: online */
	SESSION_CLOSED,		/* a close was requested; ignore input */
};

/* What kind of API request a session_request_* call started. */
enum session_req_kind {
	SESSION_REQ_FUNCTION = 1, /* POST f: result is an int32 */
	SESSION_REQ_VARIABLE,	  /* GET v: result is typed bytes */
	SESSION_REQ_SIGNAL,	  /* PUT s: result is ok/failed */
	SESSION_REQ_DESCRIBE,	  /* GET d issued on behalf of the API */
};

/* Result of an API request, passed to ops->request_done. */
struct session_result {
	int status;	     /* 0 ok, or CINDER_ERR_TIMEOUT, _NOTFOUND (4.04),
				_PROTO (other 4.xx/5.xx or RST),
				_UNAVAILABLE (session closed), _BUSY */
	uint8_t code;	     /* CoAP response code when the device answered */
	int32_t int_value;   /* FUNCTION: the return value */
	const uint8_t *data; /* VARIABLE/DESCRIBE: value bytes; borrowed
				for the duration of the callback only */
	size_t data_len;     /* bytes in data */
};

/* What the Hello said (copied out of the message). */
struct session_hello {
	uint16_t product_id;	   /* 0xffff: none */
	uint16_t product_version;  /* 0xffff: none */
	uint8_t flags;		   /* PCOAP_HELLO_F_* */
	uint16_t platform_id;	   /* 0xffff: unknown */
	bool extended;		   /* Device OS 3.0+ fields below are set */
	uint16_t system_version;   /* system module version, 0: unknown */
	uint16_t max_message_size; /* largest message, 0: unknown */
	uint32_t max_binary_size;  /* largest OTA image, 0: unknown */
	uint16_t ota_chunk_size;   /* OTA chunk size, 0: unknown */
};

/*
 * The callbacks. arg is the pointer given to session_new(). Every callback
 * is optional except send and close.
 */
struct session_ops {
	/* Send one plaintext CoAP message (the driver encrypts and frames
	   it). msg is borrowed for the call. @return 0, or an error, after
	   which the session asks to close. */
	int (*send)(void *arg, const uint8_t *msg, size_t len);
	/* The session must end: reason is a short static text for the log,
	   status the CINDER_ERR_* cause. Called at most once. The driver
	   closes the connection at a safe point (not from inside this call
	   stack) and then calls session_free(). */
	void (*close)(void *arg, int status, const char *reason);
	/* The device's Hello arrived (before the server Hello is sent). */
	void (*hello)(void *arg, const struct session_hello *h);
	/* The describe reply arrived; json is the raw JSON text (borrowed
	   for the call, not NUL-terminated). The first one makes the
	   session READY (ops->ready follows). */
	void (*describe)(void *arg, const char *json, size_t len);
	/* The session became READY (once). */
	void (*ready)(void *arg);
	/* The device published an event. name is NUL-terminated; data
	   borrowed for the call. Return 0 to
	   accept, or CINDER_ERR_BUSY to refuse it: a CON event is then
	   answered with ACK 4.00 ("slow down"), otherwise an empty ACK. */
	int (*event)(void *arg, const char *name, const uint8_t *data,
		     size_t data_len, uint32_t ttl, bool is_private);
	/* The device subscribed. filter is NUL-terminated ("" = none);
	   scope is enum pcoap_scope; device_id (24 chars, not terminated)
	   only for PCOAP_SCOPE_DEVICE, else NULL. The session already sent
	   the empty ACK. */
	void (*subscribe)(void *arg, const char *filter, int scope,
			  const char *device_id);
	/* An API request finished (answered, failed or timed out). */
	void (*request_done)(void *arg, uint64_t req_id,
			     enum session_req_kind kind,
			     const struct session_result *res);
	/* Wall-clock Unix seconds for the time reply; NULL: time(NULL). */
	uint32_t (*unix_time)(void *arg);
	/* The device said Goodbye (POST x, Device OS 2.x+) with these
	   reasons; it is about to reset, sleep or disconnect. */
	void (*goodbye)(void *arg, const struct pcoap_goodbye *g);
};

/* Limits. */
#define SESSION_MAX_INFLIGHT 32		  /* API requests sent and unanswered */
#define SESSION_MAX_QUEUED 256		  /* API requests waiting for a token */
#define SESSION_DESCRIBE_TIMEOUT_MS 15000 /* describe reply deadline */
#define SESSION_EVENT_NAME_MAX 64	  /* longest event name kept */
#define SESSION_EVENT_DATA_MAX 1024	  /* longest event data accepted */
/*
 * The Describe asked right after the Hello is answered before a device
 * in Device OS's default (AUTOMATIC) mode has run setup(), so its
 * functions and variables are missing. The session asks once more when
 * the start-up burst (events, subscriptions, time request) has been
 * quiet for SESSION_SETTLE_QUIET_MS, at the latest SESSION_SETTLE_MAX_MS
 * after the session became READY.
 */
#define SESSION_SETTLE_QUIET_MS 300
#define SESSION_SETTLE_MAX_MS 1000

/**
 * Create a session for a connection whose handshake just completed.
 * @param ops callbacks; borrowed, must outlive the session
 * @param arg passed to every callback
 * @param server_mid first message ID the server uses (random)
 * @param now_ms current monotonic time in milliseconds
 * @return the session; free with session_free()
 */
struct session *session_new(const struct session_ops *ops, void *arg,
			    uint16_t server_mid, uint64_t now_ms);

/** Free a session. Pending requests are NOT reported. NULL-safe. */
void session_free(struct session *s);

/**
 * Fail every pending and queued request with CINDER_ERR_UNAVAILABLE
 * (ops->request_done for each), e.g. just before the driver frees a
 * closed session.
 */
void session_abort_requests(struct session *s);

/** @return the current state */
enum session_state session_state(const struct session *s);

/** @return the Hello fields (zeroed before the Hello arrived) */
const struct session_hello *session_hello(const struct session *s);

/**
 * Feed one decrypted message from the device. Malformed CoAP, or a first
 * message that is not a Hello, make the session close (ops->close) and
 * return an error; unknown message kinds are dropped silently, as the
 * device does.
 * @param msg, len the plaintext; borrowed
 * @param now_ms current time
 * @return 0, or a CINDER_ERR_* code after ops->close was called
 */
int session_input(struct session *s, const uint8_t *msg, size_t len,
		  uint64_t now_ms);

/**
 * Advance time: fail requests whose deadline passed (request_done with
 * CINDER_ERR_TIMEOUT), close the session when the describe does not come.
 * @return the number of milliseconds until the next deadline, or -1 when
 *	none is pending (the driver arms a timer with it)
 */
int64_t session_tick(struct session *s, uint64_t now_ms);

/**
 * Call a function on the device. The name must be in the describe (the
 * caller checks), arg at most 622 bytes.
 * @param req_id the caller's id, echoed in request_done
 * @param timeout_ms deadline from now
 * @return 0 (queued or sent; request_done follows exactly once),
 *	CINDER_ERR_TOO_BIG (name/arg too long for one device message),
 *	CINDER_ERR_BUSY (queue full), CINDER_ERR_UNAVAILABLE (not READY)
 */
int session_request_function(struct session *s, uint64_t req_id,
			     const char *name, const char *arg, uint64_t now_ms,
			     uint32_t timeout_ms);

/** Read a variable; as session_request_function(). */
int session_request_variable(struct session *s, uint64_t req_id,
			     const char *name, uint64_t now_ms,
			     uint32_t timeout_ms);

/** Start or stop the device's rainbow LED; as session_request_function(). */
int session_request_signal(struct session *s, uint64_t req_id, bool on,
			   uint64_t now_ms, uint32_t timeout_ms);

/**
 * Send an event to the device (NON POST e/E, Max-Age only if ttl != 60).
 * @return 0, CINDER_ERR_TOO_BIG (over the device's 767-byte limit) or
 *	CINDER_ERR_UNAVAILABLE (not READY)
 */
int session_send_event(struct session *s, const char *name, const uint8_t *data,
		       size_t data_len, uint32_t ttl, bool is_private);

/* Counters, for the health endpoint and tests. */
struct session_stats {
	uint64_t msgs_in;	  /* messages from the device */
	uint64_t msgs_out;	  /* messages sent */
	uint64_t mid_resyncs;	  /* device message-ID gaps tolerated */
	uint64_t dropped_unknown; /* unknown kinds dropped */
};

/** @return the session's counters */
const struct session_stats *session_stats(const struct session *s);

/*
 * Additions by the session engineer (not in the original contract).
 */

/**
 * Read the device's Describe on behalf of the API (CON GET d). The JSON
 * comes back in request_done (res->data); ops->describe is NOT called
 * for it (only the session's own Describe and a device POST d go there).
 * @param flags PCOAP_DESCRIBE_* bits, 0 = device default (system + app)
 * @return as session_request_function()
 */
int session_request_describe(struct session *s, uint64_t req_id, uint8_t flags,
			     uint64_t now_ms, uint32_t timeout_ms);

/**
 * Set the context printed first in the session's log lines (e.g. the
 * device ID). ctx is borrowed and must outlive the session (the
 * connection's own text: no copy per idle session); NULL clears it.
 */
void session_set_log_ctx(struct session *s, const char *ctx);

/** @return API requests in flight plus queued (for tests, health) */
size_t session_pending(const struct session *s);

/*
 * Firmware over the air (src/healer/ota.h, protocol.md §5). Additions by
 * the OTA engineer.
 */
struct ota_image;
struct ota_params;
struct ota_report;

/* Bytes the connection accepts now (the transfer's output budget). */
typedef size_t (*session_ota_space_cb)(void *arg);
/* Progress and the one final result of a transfer. */
typedef void (*session_ota_report_cb)(void *arg, const struct ota_report *r);

/**
 * Send a firmware image to the device of a READY session. While the
 * transfer runs the session routes its messages to it (ACKs by message
 * ID, UpdateReady and chunk replies by token, ChunkMissed, a device PUT
 * u) and holds new API requests in its queue (the link is locked, §5.1);
 * they go out when it ends. session_abort_requests() fails it with
 * OTA_FAIL_DISCONNECTED. The chunk messages are kept within the device's
 * message limit (p->max_msg is lowered to it).
 * @param img shared image; the transfer holds a reference
 * @param p parameters (NULL: defaults), copied
 * @param space output budget callback; NULL = unlimited
 * @param report called with arg for progress and exactly one final
 *	result (possibly before this returns, e.g. when the send fails)
 * @return 0, CINDER_ERR_UNAVAILABLE (not READY), CINDER_ERR_BUSY (a
 *	transfer is already running), or ota_new()'s errors
 */
int session_ota_start(struct session *s, struct ota_image *img,
		      const struct ota_params *p, session_ota_space_cb space,
		      session_ota_report_cb report, void *arg, uint64_t now_ms);

/** The connection's output drained: let the transfer send more. */
void session_ota_pump(struct session *s, uint64_t now_ms);

/** @return true while a transfer is attached */
bool session_ota_active(const struct session *s);

#endif
