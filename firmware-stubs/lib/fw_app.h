/* SPDX-License-Identifier: MIT */
/*
 * The application layer of the portable device (Device OS's "system" +
 * Particle.function/variable/publish/subscribe): cloud functions and
 * variables, the Describe JSON (application part from them, system part
 * from the module table), publishing with Device OS's local rate limits,
 * subscriptions re-sent after every connect and dispatch of received
 * events, the §2.5 system events after the handshake, spark/device/reset,
 * safe mode (the app does not run when the user part's dependencies are
 * unmet) and OTA receive into the port's flash (lib/fw_ota.c).
 *
 * Wraps one struct fw_device; no malloc. Names given to the register
 * functions are borrowed (string literals in practice); subscription
 * prefixes are copied. The owner calls fw_app_step() instead of
 * fw_device_step().
 */
#ifndef FW_APP_H
#define FW_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw_device.h"
#include "fw_modules.h"

#define FW_APP_MAX_FUNCS 15
#define FW_APP_MAX_VARS 20
#define FW_APP_MAX_SUBS 6 /* 2 system (spark, particle) + 4 app */
#define FW_APP_NAME_MAX 64
#define FW_APP_ARG_MAX 622
#define FW_APP_EVENT_DATA_MAX 622
#define FW_APP_FILTER_MAX 63
#define FW_APP_STRING_MAX 622 /* variable string values are truncated */
#define FW_APP_OTA_MAX_CHUNKS 2048
#define FW_APP_OTA_TIMEOUT 30000 /* ms without a chunk: abort (§5.4) */
#define FW_APP_MISSED_MAX 40	 /* indexes per ChunkMissed (§5.5) */

/* User event limit: 4 in any 1 s; system: 255 per 65 s (§3.8). */
#define FW_APP_USER_BURST 4
#define FW_APP_USER_WINDOW 1000
#define FW_APP_SYS_BURST 255
#define FW_APP_SYS_WINDOW 65000

/* Publish flags. */
#define FW_PUBLISH_PUBLIC 0x00
#define FW_PUBLISH_PRIVATE 0x01
#define FW_PUBLISH_NO_ACK 0x02	 /* force NON (the TCP default) */
#define FW_PUBLISH_WITH_ACK 0x08 /* send as CON */

enum fw_var_type {
	FW_VAR_BOOL = 1,   /* bool */
	FW_VAR_INT = 2,	   /* int32_t */
	FW_VAR_STRING = 4, /* NUL-terminated char[] */
	FW_VAR_DOUBLE = 9, /* double */
};

/** A variable value from a getter. */
union fw_app_value {
	bool b;
	int32_t i;
	double d;
	const char *s; /* borrowed until the getter is called again */
};

/** Subscription scope (same values as pcoap's enum pcoap_scope). */
enum fw_sub_scope {
	FW_SUB_ALL = 0,	   /* every device's public events */
	FW_SUB_MINE = 1,   /* devices of the same owner */
	FW_SUB_DEVICE = 2, /* one device */
};

/** What the owner is told about (fw_app_config.notify). */
enum fw_app_note {
	FW_NOTE_READY = 1,     /* session ready; a = NULL */
	FW_NOTE_EVENT,	       /* event received: a = name, b = data */
	FW_NOTE_CALL,	       /* function called: a = name, b = argument */
	FW_NOTE_SAFEMODE,      /* spark/device/safemode published */
	FW_NOTE_OTA_BEGIN,     /* a = "fast"/"normal", b = file size */
	FW_NOTE_OTA_DONE,      /* all chunks in: a = chunk count */
	FW_NOTE_OTA_INSTALLED, /* a = "f/n", b = version */
	FW_NOTE_OTA_REJECTED,  /* a = reason */
	FW_NOTE_RESET,	       /* about to reset: a = reason */
};

struct fw_app;

/** A cloud function: returns the int32 result. */
typedef int (*fw_app_func_cb)(const char *arg, void *ctx);
/** A variable getter. */
typedef void (*fw_app_var_cb)(const char *name, union fw_app_value *v,
			      void *ctx);
/** A subscription handler: data is NUL-terminated (may be ""). */
typedef void (*fw_app_event_cb)(struct fw_app *a, const char *name,
				const char *data, void *ctx);
/** Owner notification; a and b may be NULL. */
typedef void (*fw_app_notify_cb)(struct fw_app *a, enum fw_app_note what,
				 const char *x, const char *y, void *arg);

struct fw_app_func {
	const char *name; /* borrowed */
	fw_app_func_cb fn;
	void *ctx;
};

struct fw_app_var {
	const char *name; /* borrowed */
	uint8_t type;	  /* enum fw_var_type */
	const void *ptr;  /* the value, or NULL when get is used */
	fw_app_var_cb get;
	void *ctx;
};

struct fw_app_sub {
	char prefix[FW_APP_FILTER_MAX + 1]; /* copied */
	uint8_t scope;			    /* enum fw_sub_scope */
	char device[25];		    /* FW_SUB_DEVICE: hex device ID */
	bool system;			    /* spark/particle of the system */
	bool sent;			    /* sent on this connection */
	fw_app_event_cb fn;		    /* NULL for system ones */
	void *ctx;
};

struct fw_app_ota {
	bool active;	     /* between UpdateBegin and the end */
	bool fast;	     /* chunks carry indexes, no replies */
	uint16_t chunk_size; /* bytes per chunk */
	uint32_t file_size;  /* image length */
	uint16_t n_chunks;   /* chunks expected */
	uint16_t next;	     /* normal mode: next chunk index */
	uint16_t received;   /* distinct chunks stored */
	uint32_t last_at;    /* millis of the last chunk */
	uint8_t map[FW_APP_OTA_MAX_CHUNKS / 8]; /* received bitmap */
};

struct fw_app_config {
	struct fw_device_config dev;	  /* id, product, platform, hello flags;
					     the callbacks are the app's own */
	const struct fw_modules *modules; /* copied; NULL = none */
	bool updates_enabled;		  /* accept UpdateBegin */
	bool fast_ota;			  /* accept fast OTA when offered */
	bool devos3;			  /* act as Device OS 3.0+: extended
					     Hello, describe posted at connect
					     (no spark/hardware events),
					     Goodbye before a reset */
	fw_app_notify_cb notify;	  /* may be NULL */
	void *notify_arg;
};

/* The post-connect sequence of §2.5. */
enum fw_app_seq {
	FW_SEQ_IDLE = 0,
	FW_SEQ_DESCRIBE_POST,
	FW_SEQ_MAX_BINARY,
	FW_SEQ_CHUNK_SIZE,
	FW_SEQ_SAFEMODE,
	FW_SEQ_SUBS,
	FW_SEQ_TIME,
	FW_SEQ_DONE,
};

struct fw_app {
	struct fw_device dev;	   /* the protocol core (first member) */
	struct fw_modules modules; /* installed modules */
	bool safe_mode;		   /* running without the app */
	bool force_safe_mode;	   /* next reset enters safe mode */
	bool updates_enabled;	   /* particle/device/updates/... */
	bool updates_forced;	   /* set by the cloud */
	bool updates_pending;	   /* set by the cloud */
	bool fast_ota;		   /* accept fast OTA */
	bool reset_pending;	   /* reset once the send queue drained */
	bool staged_set;	   /* an update waits for the reset */
	struct fw_module staged;   /* ... this module, installed then */
	bool devos3;		   /* see fw_app_config */
	bool goodbye_sent;	   /* before the pending reset */
	const char *reset_reason;  /* for FW_NOTE_RESET */
	int reset_mode;		   /* PORT_RESET_* */
	enum fw_app_seq seq;	   /* post-connect sequence */
	fw_app_notify_cb notify;
	void *notify_arg;
	struct fw_app_func funcs[FW_APP_MAX_FUNCS];
	size_t n_funcs;
	struct fw_app_var vars[FW_APP_MAX_VARS];
	size_t n_vars;
	struct fw_app_sub subs[FW_APP_MAX_SUBS];
	size_t n_subs;
	uint32_t user_ts[FW_APP_USER_BURST]; /* last user publish times */
	size_t user_ts_pos;		     /* ring position */
	uint32_t sys_window;		     /* start of the system window */
	uint16_t sys_count;		     /* system events in the window */
	uint32_t now;			     /* time of the current step */
	struct fw_app_ota ota;
};

/**
 * Set up the device and its application layer (stopped). The system
 * subscriptions to spark and particle (my devices) are registered here.
 * @param a caller storage
 * @param p port, borrowed for the lifetime
 */
void fw_app_init(struct fw_app *a, const struct port *p,
		 const struct fw_app_config *cfg);

/**
 * Register a cloud function (before or after connecting; the Describe is
 * built at each request).
 * @param name at most FW_APP_NAME_MAX bytes, borrowed
 * @return 0, FW_ERR_INVAL (bad name, duplicate), FW_ERR_LIMIT (table full)
 */
int fw_app_function(struct fw_app *a, const char *name, fw_app_func_cb fn,
		    void *ctx);

/**
 * Register a variable: by pointer (ptr != NULL, to a bool, int32_t,
 * double or NUL-terminated string) or by getter.
 * @return as fw_app_function
 */
int fw_app_variable(struct fw_app *a, const char *name, enum fw_var_type type,
		    const void *ptr, fw_app_var_cb get, void *ctx);

/**
 * Subscribe to events whose name starts with prefix. Sent now when
 * connected, and again after every reconnect.
 * @param prefix 1..FW_APP_FILTER_MAX bytes, copied
 * @param device FW_SUB_DEVICE: the 24-hex-digit device ID, else NULL
 * @return 0, FW_ERR_INVAL, FW_ERR_LIMIT (6 subscriptions)
 */
int fw_app_subscribe(struct fw_app *a, const char *prefix,
		     enum fw_sub_scope scope, const char *device,
		     fw_app_event_cb fn, void *ctx);

/**
 * Publish an event.
 * @param ttl seconds (60 = default, sent without Max-Age)
 * @param flags FW_PUBLISH_*
 * @return 0, FW_ERR_INVAL (not connected, bad name), FW_ERR_LIMIT (rate
 *         limit), FW_ERR_BUSY (send queue full, or an OTA is running),
 *         FW_ERR_TOO_BIG
 */
int fw_app_publish(struct fw_app *a, const char *name, const char *data,
		   uint32_t ttl, unsigned flags);

/**
 * Build the Describe JSON (flags PCOAP_DESCRIBE_*, 0 = system + app).
 * @param buf caller storage; NUL-terminated on success
 * @return 0 and *len, or FW_ERR_TOO_BIG
 */
int fw_app_describe(struct fw_app *a, uint8_t flags, char *buf, size_t cap,
		    size_t *len);

/**
 * Start (connect at the next step); re-evaluates safe mode.
 */
void fw_app_start(struct fw_app *a, uint32_t now);

/**
 * Forget the application's functions, variables and subscriptions (the
 * system ones stay): what a reboot does before setup() runs again.
 */
void fw_app_clear(struct fw_app *a);

/**
 * Advance: fw_device_step, the post-connect sequence, pending
 * subscriptions, the OTA timeout, a requested reset.
 * @return as fw_device_step
 */
int fw_app_step(struct fw_app *a, uint32_t now);

/**
 * Reset the device the way Device OS does on spark/device/reset or after
 * an OTA: once queued bytes are out the connection is closed and opened
 * again (a port with a system_reset function is called first).
 * @param mode PORT_RESET_*
 * @param reason text for FW_NOTE_RESET (borrowed, static)
 */
void fw_app_request_reset(struct fw_app *a, int mode, const char *reason);

/* ---- OTA (lib/fw_ota.c) ---------------------------------------------- */

/**
 * Handle UpdateBegin/SaveBegin, Chunk or UpdateDone.
 * @param kind PCOAP_KIND_*
 * @return 0 or a negative FW_ERR_* that drops the connection
 */
int fw_ota_handle(struct fw_app *a, const struct pcoap_msg *m, int kind);

/**
 * Abort a transfer that saw no chunk for FW_APP_OTA_TIMEOUT.
 */
void fw_ota_timer(struct fw_app *a, uint32_t now);

/**
 * Check the image in the OTA area (§5.8): module prefix, length, CRC-32
 * (big-endian after the module), platform, a known slot and range, and
 * for system parts their dependencies. On success *out describes the
 * module as it would be installed.
 * @param file_size bytes of the image
 * @return 0, or FW_ERR_MALFORMED / FW_ERR_CRYPTO (CRC) / FW_ERR_INVAL
 *         (platform, slot, dependencies) / FW_ERR_IO (flash)
 */
int fw_ota_validate(struct fw_app *a, uint32_t file_size,
		    struct fw_module *out);

#endif
