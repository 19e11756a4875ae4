/* SPDX-License-Identifier: MIT */
/*
 * pcoap: the pure codec for the Particle TCP device protocol. It does
 * the 2-byte length framing, RFC 7252 message encoding and decoding, and
 * builders/parsers for every Particle message (protocol.md §3.6).
 * Pure: no I/O, no malloc, no logging, no mutable globals; only
 * <stdint.h>, <stddef.h>, <stdbool.h> and <string.h>, so it also builds
 * for a Cortex-M4 (firmware-stubs links it). Decoding yields views
 * (pointer + length into the caller's input); encoding writes into
 * caller buffers. Encryption is not done here.
 */
#ifndef CINDER_PCOAP_H
#define CINDER_PCOAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Result codes. 0 is success, failures are negative. Every function that
 * returns int returns one of these.
 */
enum pcoap_result {
	PCOAP_OK = 0,
	PCOAP_NEED_MORE = -1, /* input incomplete (framing only) */
	PCOAP_MALFORMED = -2, /* input breaks the wire format / a rule */
	PCOAP_TOO_BIG = -3,   /* input over a size or count limit */
	PCOAP_NOSPACE = -4,   /* caller's output buffer is too small */
};

/* CoAP message types (RFC 7252 §3). */
enum pcoap_type {
	PCOAP_CON = 0,
	PCOAP_NON = 1,
	PCOAP_ACK = 2,
	PCOAP_RST = 3,
};

/* Codes: class * 32 + detail. Only those used by the protocol. */
#define PCOAP_CODE(cls, detail) ((uint8_t)(((cls) << 5) | (detail)))
#define PCOAP_CODE_EMPTY 0x00	    /* 0.00 empty message / ping */
#define PCOAP_CODE_GET 0x01	    /* 0.01 */
#define PCOAP_CODE_POST 0x02	    /* 0.02 */
#define PCOAP_CODE_PUT 0x03	    /* 0.03 */
#define PCOAP_CODE_CHANGED 0x44	    /* 2.04 */
#define PCOAP_CODE_CONTENT 0x45	    /* 2.05 */
#define PCOAP_CODE_BAD_REQUEST 0x80 /* 4.00 */
#define PCOAP_CODE_NOT_FOUND 0x84   /* 4.04 */
#define PCOAP_CODE_INTERNAL 0xa0    /* 5.00 */
#define PCOAP_CODE_UNAVAILABLE 0xa3 /* 5.03 */

/* Option numbers used by the protocol (RFC 7252 §5.10, RFC 7967). */
#define PCOAP_OPT_URI_PATH 11
#define PCOAP_OPT_MAX_AGE 14
#define PCOAP_OPT_URI_QUERY 15
#define PCOAP_OPT_NO_RESPONSE 258

/* Limits. */
#define PCOAP_HDR_LEN 4		 /* fixed CoAP header */
#define PCOAP_MAX_TOKEN 8	 /* RFC 7252 TKL 0..8 */
#define PCOAP_MAX_OPTIONS 16	 /* more options in one message: TOO_BIG */
#define PCOAP_FRAME_HDR_LEN 2	 /* Particle frame: 2-byte BE length */
#define PCOAP_FRAME_MAX_CT 65535 /* largest ciphertext the length holds */
#define PCOAP_AES_BLOCK 16	 /* ciphertext is a multiple of this */
/* Largest plaintext CoAP message a Photon/P1/Electron accepts (§1.5). */
#define PCOAP_DEVICE_RX_MAX 767
/* The same for the Core (platform 0). */
#define PCOAP_DEVICE_RX_MAX_CORE 607
/* Largest ciphertext a Photon accepts in one frame. */
#define PCOAP_DEVICE_RX_MAX_CT 768
/* Largest plaintext a Photon sends (buffer 800 - 2 - 16). */
#define PCOAP_DEVICE_TX_MAX 782
/* Ciphertext limit a server should accept per frame (at least 1024). */
#define PCOAP_SERVER_RX_MAX_CT 1024
/* Default OTA chunk size (§5.2). */
#define PCOAP_CHUNK_SIZE_DEFAULT 512
/* Event TTL the device omits from the wire (§3.8). */
#define PCOAP_EVENT_TTL_DEFAULT 60
/* Largest TTL the 3-byte Max-Age holds. */
#define PCOAP_EVENT_TTL_MAX 0xffffffu
/* Name and data limits of Photon/P1/Electron Device OS >= 0.8 (§3.8). */
#define PCOAP_EVENT_NAME_MAX 64	   /* event name bytes */
#define PCOAP_EVENT_DATA_MAX 622   /* event data bytes */
#define PCOAP_NAME_MAX 64	   /* function / variable name bytes */
#define PCOAP_FUNCTION_ARG_MAX 622 /* function argument bytes */
#define PCOAP_FILTER_MAX 63	   /* subscription filter bytes */
/* Device ID length in a subscribe payload (24 hex chars). */
#define PCOAP_DEVICE_ID_LEN 24
/* Device ID length in binary form (a DTLS or extended Hello). */
#define PCOAP_DEVICE_ID_BYTES 12

/** A borrowed byte range. */
struct pcoap_view {
	const uint8_t *p; /* first byte; may be NULL when len == 0 */
	size_t len;	  /* number of bytes */
};

/** One option: number and a view of its value. */
struct pcoap_opt {
	uint16_t num;	    /* absolute option number */
	const uint8_t *val; /* value bytes; may be NULL when len == 0 */
	size_t len;	    /* value length */
};

/**
 * A CoAP message. Decoding fills it with views into the input; for
 * encoding the caller fills it (pcoap_msg_init + pcoap_msg_add_opt) with
 * views of its own data. The struct never owns memory.
 */
struct pcoap_msg {
	uint8_t type;				  /* enum pcoap_type */
	uint8_t code;				  /* PCOAP_CODE_* */
	uint16_t mid;				  /* message ID */
	struct pcoap_view token;		  /* 0..8 bytes */
	size_t n_opts;				  /* options used in opts[] */
	struct pcoap_opt opts[PCOAP_MAX_OPTIONS]; /* ascending numbers */
	struct pcoap_view payload; /* after 0xff; len 0 = no payload */
};

/**
 * Describe a result code.
 * @param r a PCOAP_* result
 * @return a static string; never NULL
 */
const char *pcoap_strerror(int r);

/* ---------------------------------------------------------------- */
/* Framing (protocol.md §1.2): 2-byte BE length + ciphertext.         */

/**
 * Look at the start of a received byte stream for one complete frame.
 * Incremental: call again with more bytes after PCOAP_NEED_MORE.
 * @param buf received bytes (may be NULL when len == 0); borrowed
 * @param len number of bytes in buf
 * @param max_len largest ciphertext length accepted (<= 65535)
 * @param frame_len out: on PCOAP_OK the total frame size (2 + ciphertext
 *        length) to consume; on PCOAP_NEED_MORE the total number of bytes
 *        needed before the next call can succeed (2 while the length is
 *        incomplete); 0 otherwise. May be NULL.
 * @return PCOAP_OK (the ciphertext is buf[2 .. *frame_len)),
 *         PCOAP_NEED_MORE, PCOAP_MALFORMED (length 0 or not a multiple of
 *         16), PCOAP_TOO_BIG (length over max_len)
 */
int pcoap_frame_peek(const uint8_t *buf, size_t len, size_t max_len,
		     size_t *frame_len);

/**
 * Write the 2-byte frame header for a ciphertext of ct_len bytes.
 * @param ct_len ciphertext length: > 0, multiple of 16, <= 65535
 * @param out receives 2 bytes
 * @param cap size of out
 * @return PCOAP_OK, PCOAP_MALFORMED (bad ct_len), PCOAP_TOO_BIG
 *         (ct_len > 65535), PCOAP_NOSPACE (cap < 2)
 */
int pcoap_frame_header_encode(size_t ct_len, uint8_t *out, size_t cap);

/* ---------------------------------------------------------------- */
/* Generic CoAP messages (RFC 7252 §3).                               */

/**
 * Decode one complete CoAP message (e.g. a decrypted frame).
 * @param buf message bytes; borrowed: the views in m point into it and
 *        stay valid as long as buf does
 * @param len message length
 * @param m out: the decoded message (cleared first)
 * @return PCOAP_OK, PCOAP_MALFORMED (short, version != 1, TKL > 8,
 *         option nibble 15, option number > 65535, option past the end,
 *         payload marker with empty payload), PCOAP_TOO_BIG (more than
 *         PCOAP_MAX_OPTIONS options)
 */
int pcoap_msg_decode(const uint8_t *buf, size_t len, struct pcoap_msg *m);

/**
 * Compute the encoded size of a message.
 * @param m message; options must be in ascending (non-decreasing) order
 * @param size out: number of bytes pcoap_msg_encode() writes
 * @return PCOAP_OK or PCOAP_MALFORMED (type > 3, token > 8 bytes,
 *         n_opts > PCOAP_MAX_OPTIONS, options out of order, NULL view
 *         with a length)
 */
int pcoap_msg_encoded_size(const struct pcoap_msg *m, size_t *size);

/**
 * Encode a message. Byte-exact inverse of pcoap_msg_decode() for every
 * message that decodes OK.
 * @param m message to encode; borrowed
 * @param out output buffer, owned by the caller
 * @param cap size of out
 * @param out_len out: bytes written (0 on failure); may be NULL
 * @return PCOAP_OK, PCOAP_MALFORMED (see pcoap_msg_encoded_size),
 *         PCOAP_NOSPACE (cap too small; nothing useful written)
 */
int pcoap_msg_encode(const struct pcoap_msg *m, uint8_t *out, size_t cap,
		     size_t *out_len);

/**
 * Start a message for encoding: no token, options or payload.
 * @param m message to initialise
 */
void pcoap_msg_init(struct pcoap_msg *m, uint8_t type, uint8_t code,
		    uint16_t mid);

/**
 * Set the token (a view; the bytes must outlive the encode call).
 * @return PCOAP_OK or PCOAP_TOO_BIG (len > 8)
 */
int pcoap_msg_set_token(struct pcoap_msg *m, const uint8_t *tok, size_t len);

/**
 * Append an option (a view). Options must be appended in ascending number
 * order; equal numbers repeat the option.
 * @return PCOAP_OK, PCOAP_TOO_BIG (already PCOAP_MAX_OPTIONS options),
 *         PCOAP_MALFORMED (number lower than the previous option's)
 */
int pcoap_msg_add_opt(struct pcoap_msg *m, uint16_t num, const void *val,
		      size_t len);

/**
 * Find an option.
 * @param m decoded message
 * @param num option number
 * @param nth 0 for the first occurrence, 1 for the second, ...
 * @return a pointer into m->opts, or NULL when absent
 */
const struct pcoap_opt *pcoap_msg_opt(const struct pcoap_msg *m, uint16_t num,
				      size_t nth);

/**
 * Decode an option value as an unsigned big-endian integer (RFC 7252
 * §3.2 uint; empty = 0).
 * @param o option
 * @param v out: the value
 * @return PCOAP_OK or PCOAP_TOO_BIG (value longer than 4 bytes)
 */
int pcoap_opt_uint(const struct pcoap_opt *o, uint32_t *v);

/* ---------------------------------------------------------------- */
/* Particle messages (protocol.md §3.6).                              */

/* What a decoded message is, from type, code and first Uri-Path. */
enum pcoap_kind {
	PCOAP_KIND_UNKNOWN = 0,	  /* anything else: drop silently */
	PCOAP_KIND_PING,	  /* CON 0.00, nothing else */
	PCOAP_KIND_EMPTY_ACK,	  /* ACK 0.00 */
	PCOAP_KIND_ACK,		  /* ACK with a response code (piggy-backed) */
	PCOAP_KIND_RESPONSE,	  /* CON/NON with a response code: separate */
	PCOAP_KIND_RST,		  /* RST */
	PCOAP_KIND_HELLO,	  /* POST h */
	PCOAP_KIND_DESCRIBE,	  /* GET d (server request) */
	PCOAP_KIND_DESCRIBE_POST, /* POST d (device, 2.2+) */
	PCOAP_KIND_FUNCTION_CALL, /* POST f */
	PCOAP_KIND_VARIABLE,	  /* GET v */
	PCOAP_KIND_EVENT,	  /* POST e or E */
	PCOAP_KIND_SUBSCRIBE,	  /* GET e */
	PCOAP_KIND_TIME,	  /* GET t */
	PCOAP_KIND_SIGNAL,	  /* PUT s */
	PCOAP_KIND_KEY_CHANGE,	  /* PUT k */
	PCOAP_KIND_UPDATE_BEGIN,  /* POST u */
	PCOAP_KIND_SAVE_BEGIN,	  /* POST s (same payload as update begin) */
	PCOAP_KIND_CHUNK,	  /* POST c */
	PCOAP_KIND_CHUNK_MISSED,  /* GET c */
	PCOAP_KIND_UPDATE_DONE,	  /* PUT u */
	PCOAP_KIND_GOODBYE,	  /* POST x */
};

/**
 * Classify a decoded message. Requests need their first option to be a
 * one-character Uri-Path (§3.2); otherwise they are PCOAP_KIND_UNKNOWN.
 * Replies are only told apart by shape; match them by message ID (ACK)
 * or token (separate response). The device treats every 2.05 from the
 * server as the time reply.
 * @param m decoded message
 * @return an enum pcoap_kind value
 */
int pcoap_particle_kind(const struct pcoap_msg *m);

/**
 * Name of a kind, e.g. "function_call".
 * @return a static string; never NULL
 */
const char *pcoap_kind_str(int kind);

/**
 * Check that a message the server is about to send obeys the device
 * parser's hard constraints (§3.2, §1.5): first option is the
 * one-letter Uri-Path; requests the device answers carry a 1-byte token;
 * a function call has the argument Uri-Query right after the name; no
 * 2.05 except the ACK time reply with a 4-byte payload; events carry
 * only Uri-Path options then optional Max-Age; encoded size <= max_len.
 * @param m message to check
 * @param max_len largest plaintext accepted (PCOAP_DEVICE_RX_MAX)
 * @return PCOAP_OK, PCOAP_MALFORMED (a constraint is broken) or
 *         PCOAP_TOO_BIG (too long)
 */
int pcoap_check_to_device(const struct pcoap_msg *m, size_t max_len);

/*
 * Builders. All write one encoded message into out (capacity cap), set
 * *out_len (may be NULL) to its length and return PCOAP_OK,
 * PCOAP_NOSPACE (cap too small), PCOAP_TOO_BIG (a value over a protocol
 * limit) or PCOAP_MALFORMED (invalid arguments). Pointer arguments are
 * borrowed for the duration of the call; a NULL pointer is allowed when
 * its length is 0. "tok" is the 1-byte request token; replies take a
 * token view because some ACKs carry none.
 *
 * Parsers take a decoded message, check that it is of the right kind
 * and shape, and fill a result whose views point into the message's
 * input buffer. They return PCOAP_OK or PCOAP_MALFORMED.
 */

/*
 * Hello payload (§2.4). Every generation's layout is accepted: 0 bytes
 * (unknown), 6 (original Core library), 8 (TCP up to Device OS 2.x), 22
 * (DTLS up to 2.x: a 12-byte device ID after a 2-byte length) and the
 * extended Hello of Device OS 3.0+ (20 bytes over TCP, 32 over DTLS):
 * byte 8 reserved, byte 9 the device-ID length n, the ID, then the
 * system module version, the largest message and binary the device
 * accepts and its OTA chunk size. Bytes after the extended fields are
 * newer than this parser and ignored.
 */
struct pcoap_hello {
	uint16_t product_id;	     /* 0xffff when absent */
	uint16_t product_version;    /* 0xffff when absent */
	uint8_t flags;		     /* byte 5 (PCOAP_HELLO_F_*) */
	uint16_t platform_id;	     /* 0xffff when absent */
	struct pcoap_view device_id; /* 12 bytes when sent (DTLS), else empty */
	bool extended;		     /* the Device OS 3.0+ fields follow */
	uint16_t system_version;     /* extended: system module version */
	uint16_t max_message_size;   /* extended: largest CoAP message */
	uint32_t max_binary_size;    /* extended: largest OTA image */
	uint16_t ota_chunk_size;     /* extended: preferred chunk size */
	size_t payload_len;	     /* bytes as received */
};
#define PCOAP_HELLO_F_OTA_DONE 0x01
#define PCOAP_HELLO_F_DIAGNOSTICS 0x02
#define PCOAP_HELLO_F_IMMEDIATE_UPDATES 0x04
#define PCOAP_HELLO_F_GOODBYE 0x10
#define PCOAP_HELLO_F_DEVICE_DESCRIBE 0x20
#define PCOAP_HELLO_F_COMPRESSED_OTA 0x40

/* Payload lengths of the known Hello layouts. */
#define PCOAP_HELLO_LEN_TCP 8	   /* Device OS TCP up to 2.x */
#define PCOAP_HELLO_LEN_EXT_TCP 20 /* Device OS 3.0+ over TCP */
#define PCOAP_HELLO_LEN_MAX 64	   /* longest payload read at all */

/**
 * Build a NON POST h Hello. With h == NULL the payload is empty (the
 * server's Hello); otherwise the 8-byte TCP payload (product id, product
 * version, 0, flags, platform id) from h, or the 20-byte extended TCP
 * payload when h->extended (device ID length 0, then the system version,
 * maximum message size, maximum binary size and OTA chunk size).
 */
int pcoap_build_hello(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid,
		      const struct pcoap_hello *h);

/**
 * Parse a Hello of any generation (see struct pcoap_hello). Malformed:
 * any other length (a cut Hello), an extended Hello whose device-ID
 * length is not 0 or 12 or runs past the payload, a payload over
 * PCOAP_HELLO_LEN_MAX.
 */
int pcoap_parse_hello(const struct pcoap_msg *m, struct pcoap_hello *h);

/** Build a ping: CON 0.00, no token (`40 00 MM`). */
int pcoap_build_ping(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid);

/** Build an empty ACK (`60 00 MM`). */
int pcoap_build_empty_ack(uint8_t *out, size_t cap, size_t *out_len,
			  uint16_t mid);

/**
 * Build any reply: a piggy-backed ACK (type PCOAP_ACK, mid = request's)
 * or a separate response (PCOAP_CON/PCOAP_NON, a fresh mid), with a
 * response code, the echoed token (0..8 bytes) and an optional payload.
 */
int pcoap_build_reply(uint8_t *out, size_t cap, size_t *out_len, uint8_t type,
		      uint8_t code, uint16_t mid, const uint8_t *token,
		      size_t token_len, const uint8_t *payload,
		      size_t payload_len);

/** Describe flags (Uri-Query byte). */
#define PCOAP_DESCRIBE_SYSTEM 0x01
#define PCOAP_DESCRIBE_APP 0x02
#define PCOAP_DESCRIBE_METRICS 0x04

/**
 * Build a Describe request: CON GET d, 1-byte token; flags == 0 omits
 * the Uri-Query (device default: system + application).
 */
int pcoap_build_describe(uint8_t *out, size_t cap, size_t *out_len,
			 uint16_t mid, uint8_t tok, uint8_t flags);

/**
 * Parse a Describe request. *flags = the query byte, or 0 when absent
 * (meaning system + application). Requires a 1-byte token.
 */
int pcoap_parse_describe(const struct pcoap_msg *m, uint8_t *tok,
			 uint8_t *flags);

/**
 * Build the Describe reply: type PCOAP_ACK (piggy-backed, mid = the
 * request's) or PCOAP_CON (separate, fresh mid), code 2.05, token, JSON.
 */
int pcoap_build_describe_reply(uint8_t *out, size_t cap, size_t *out_len,
			       uint8_t type, uint16_t mid, uint8_t tok,
			       const char *json, size_t json_len);

/** Build a device Describe post: CON POST d, Uri-Query flags, JSON. */
int pcoap_build_describe_post(uint8_t *out, size_t cap, size_t *out_len,
			      uint16_t mid, uint8_t flags, const char *json,
			      size_t json_len);

/** Parse a Describe post; *flags = 0 when the query is absent. */
int pcoap_parse_describe_post(const struct pcoap_msg *m, uint8_t *flags,
			      struct pcoap_view *json);

/** A function call or variable request. */
struct pcoap_call {
	uint8_t token;		/* the 1-byte request token */
	struct pcoap_view name; /* function or variable name */
	struct pcoap_view arg;	/* function argument (empty for variables) */
};

/**
 * Build a function call: CON POST f, 1-byte token, Uri-Path name, and
 * ALWAYS the Uri-Query argument, even when empty (§3.2).
 */
int pcoap_build_function_call(uint8_t *out, size_t cap, size_t *out_len,
			      uint16_t mid, uint8_t tok, const char *name,
			      size_t name_len, const char *arg, size_t arg_len);

/**
 * Parse a function call. Requires a 1-byte token and a name; a missing
 * argument query reads as an empty argument.
 */
int pcoap_parse_function_call(const struct pcoap_msg *m, struct pcoap_call *c);

/** Build the separate function result: NON 2.04, token, int32 BE. */
int pcoap_build_function_return(uint8_t *out, size_t cap, size_t *out_len,
				uint16_t mid, uint8_t tok, int32_t value);

/** Build a variable request: CON GET v, 1-byte token, Uri-Path name. */
int pcoap_build_variable(uint8_t *out, size_t cap, size_t *out_len,
			 uint16_t mid, uint8_t tok, const char *name,
			 size_t name_len);

/** Parse a variable request (1-byte token, name required). */
int pcoap_parse_variable(const struct pcoap_msg *m, struct pcoap_call *c);

/**
 * Build a variable value reply: type PCOAP_ACK (≤1.4.x piggy-backed,
 * mid = request's) or PCOAP_NON (≥1.5 separate, fresh mid), code 2.05,
 * token, value bytes (see pcoap_value_*).
 */
int pcoap_build_variable_reply(uint8_t *out, size_t cap, size_t *out_len,
			       uint8_t type, uint16_t mid, uint8_t tok,
			       const uint8_t *value, size_t value_len);

/* Variable types of the describe "v" object (§3.11). */
#define PCOAP_VAR_BOOL 1
#define PCOAP_VAR_INT 2
#define PCOAP_VAR_STRING 4
#define PCOAP_VAR_DOUBLE 9

/** Encode a bool value: 1 byte 0/1. @return PCOAP_OK or PCOAP_NOSPACE */
int pcoap_value_encode_bool(bool v, uint8_t *out, size_t cap, size_t *out_len);
/** Encode an int32 value: 4 bytes BE. */
int pcoap_value_encode_int32(int32_t v, uint8_t *out, size_t cap,
			     size_t *out_len);
/** Encode a double value: 8 bytes IEEE-754 little-endian. */
int pcoap_value_encode_double(double v, uint8_t *out, size_t cap,
			      size_t *out_len);
/** Decode a bool: exactly 1 byte (non-zero = true). */
int pcoap_value_decode_bool(const uint8_t *p, size_t len, bool *v);
/** Decode an int32: exactly 4 bytes BE (function results too). */
int pcoap_value_decode_int32(const uint8_t *p, size_t len, int32_t *v);
/** Decode a double: exactly 8 bytes LE. */
int pcoap_value_decode_double(const uint8_t *p, size_t len, double *v);

/** An event (§3.8). */
struct pcoap_event {
	bool is_private;	/* 'E' (true) or 'e' */
	size_t name_len;	/* bytes in the caller's name buffer */
	uint32_t ttl;		/* seconds; missing or 0 on the wire = 60 */
	struct pcoap_view data; /* payload; len 0 = no data */
};

/**
 * Build an event: type PCOAP_NON (default) or PCOAP_CON (WITH_ACK), POST
 * e/E, no token, the name as ONE Uri-Path option (slashes kept), Max-Age
 * as 3 bytes BE only when ttl != 60, payload data (absent when empty).
 * @return also PCOAP_MALFORMED for an empty name, PCOAP_TOO_BIG for
 *         ttl > PCOAP_EVENT_TTL_MAX
 */
int pcoap_build_event(uint8_t *out, size_t cap, size_t *out_len, uint8_t type,
		      uint16_t mid, bool is_private, const char *name,
		      size_t name_len, uint32_t ttl, const uint8_t *data,
		      size_t data_len);

/**
 * Parse an event. Name segments after the letter are joined with '/'
 * into name (NUL-terminated); Max-Age of any length up to 4 bytes.
 * @param name buffer for the joined name, owned by the caller
 * @param name_cap its size (name length + 1 needed)
 * @return PCOAP_OK, PCOAP_MALFORMED (no name, Max-Age > 4 bytes),
 *         PCOAP_NOSPACE (name buffer too small)
 */
int pcoap_parse_event(const struct pcoap_msg *m, struct pcoap_event *ev,
		      char *name, size_t name_cap);

/* Subscription scope (§3.9). */
enum pcoap_scope {
	PCOAP_SCOPE_ALL = 0,	/* firehose: no query, no payload */
	PCOAP_SCOPE_MINE = 1,	/* Uri-Query "u": my devices */
	PCOAP_SCOPE_DEVICE = 2, /* payload = one device ID */
};

/** A subscription. */
struct pcoap_subscribe {
	size_t filter_len;	     /* bytes in the caller's filter buffer */
	int scope;		     /* enum pcoap_scope */
	struct pcoap_view device_id; /* PCOAP_SCOPE_DEVICE only */
};

/**
 * Build a subscription: CON GET e, no token, Uri-Path filter (omitted
 * when empty), Uri-Query "u" for PCOAP_SCOPE_MINE, payload = device_id
 * for PCOAP_SCOPE_DEVICE (device_id_len > 0 required).
 */
int pcoap_build_subscribe(uint8_t *out, size_t cap, size_t *out_len,
			  uint16_t mid, const char *filter, size_t filter_len,
			  int scope, const char *device_id,
			  size_t device_id_len);

/**
 * Parse a subscription; the filter segments are joined with '/' into
 * filter (NUL-terminated; "" when absent).
 * @return PCOAP_OK, PCOAP_MALFORMED, PCOAP_NOSPACE (filter buffer)
 */
int pcoap_parse_subscribe(const struct pcoap_msg *m, struct pcoap_subscribe *s,
			  char *filter, size_t filter_cap);

/** Build a time request: CON GET t, 1-byte token. */
int pcoap_build_time(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid,
		     uint8_t tok);

/** Build the time reply: ACK 2.05, mid and token of the request, 4 B BE. */
int pcoap_build_time_reply(uint8_t *out, size_t cap, size_t *out_len,
			   uint16_t mid, uint8_t tok, uint32_t unix_time);

/** Parse a time reply: code 2.05, 1-byte token, exactly 4 payload bytes. */
int pcoap_parse_time_reply(const struct pcoap_msg *m, uint32_t *unix_time);

/** Build a signal: CON PUT s, 1-byte token, Uri-Query 1 byte (1/0). */
int pcoap_build_signal(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid,
		       uint8_t tok, bool on);

/** Parse a signal (1-byte token and the 1-byte query required). */
int pcoap_parse_signal(const struct pcoap_msg *m, uint8_t *tok, bool *on);

/** UpdateBegin payload (§5.2). */
struct pcoap_update_begin {
	uint8_t flags;	     /* PCOAP_UPDATE_F_FAST */
	uint16_t chunk_size; /* bytes per chunk */
	uint32_t file_size;  /* exact binary length; 0 when not given */
	uint8_t store;	     /* 0 firmware, 1 system, 128 application */
	uint32_t address;    /* 0 for firmware */
};
#define PCOAP_UPDATE_F_FAST 0x01
#define PCOAP_UPDATE_BEGIN_LEN 12

/** Build UpdateBegin: CON POST u, token, 12-byte payload (20 bytes). */
int pcoap_build_update_begin(uint8_t *out, size_t cap, size_t *out_len,
			     uint16_t mid, uint8_t tok,
			     const struct pcoap_update_begin *ub);

/**
 * Parse UpdateBegin (or SaveBegin). A missing payload yields the device
 * defaults (chunk 512, file size 0, store 0, address 0); a payload of at
 * least 12 bytes is parsed; other lengths are malformed.
 */
int pcoap_parse_update_begin(const struct pcoap_msg *m, uint8_t *tok,
			     struct pcoap_update_begin *ub);

/** Build UpdateReady: NON 2.04, token of UpdateBegin, 1 byte flags. */
int pcoap_build_update_ready(uint8_t *out, size_t cap, size_t *out_len,
			     uint16_t mid, uint8_t tok, uint8_t flags);

/** Parse UpdateReady: code 2.04; *flags = payload byte or 0. */
int pcoap_parse_update_ready(const struct pcoap_msg *m, uint8_t *flags);

/** An OTA chunk (§5.4). */
struct pcoap_chunk {
	uint8_t token;		/* 1-byte token */
	uint32_t crc;		/* CRC-32 of data */
	bool has_index;		/* fast OTA: index present */
	uint16_t index;		/* 0-based chunk index */
	struct pcoap_view data; /* chunk bytes */
};

/**
 * Build a chunk: CON POST c, token, Uri-Query CRC (4 B BE), Uri-Query
 * index (2 B BE) when index >= 0, payload. index must be < 65536.
 */
int pcoap_build_chunk(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid,
		      uint8_t tok, uint32_t crc, int32_t index,
		      const uint8_t *data, size_t data_len);

/** Parse a chunk: 1-byte token, 4-byte CRC query, optional 2-byte index. */
int pcoap_parse_chunk(const struct pcoap_msg *m, struct pcoap_chunk *c);

/** Build ChunkReceived: NON 2.04 (ok) or 4.00 (bad CRC), token. */
int pcoap_build_chunk_received(uint8_t *out, size_t cap, size_t *out_len,
			       uint16_t mid, uint8_t tok, bool ok);

/**
 * Build ChunkMissed: type PCOAP_CON (1.x) or PCOAP_NON (2.x), GET c, no
 * token, payload = n indexes as 2 B BE (n >= 1).
 */
int pcoap_build_chunk_missed(uint8_t *out, size_t cap, size_t *out_len,
			     uint8_t type, uint16_t mid, const uint16_t *idx,
			     size_t n);

/**
 * Parse ChunkMissed into idx[0 .. *n).
 * @return PCOAP_OK, PCOAP_MALFORMED (odd or empty payload),
 *         PCOAP_NOSPACE (more than cap indexes)
 */
int pcoap_parse_chunk_missed(const struct pcoap_msg *m, uint16_t *idx,
			     size_t cap, size_t *n);

/**
 * Build UpdateDone: PUT u. Server: PCOAP_CON with the 1-byte token
 * (token_len 1), no payload. Legacy device: PCOAP_NON, no token,
 * optional JSON payload.
 */
int pcoap_build_update_done(uint8_t *out, size_t cap, size_t *out_len,
			    uint8_t type, uint16_t mid, const uint8_t *token,
			    size_t token_len, const uint8_t *payload,
			    size_t payload_len);

/** Parse UpdateDone; *payload = optional JSON (legacy device). */
int pcoap_parse_update_done(const struct pcoap_msg *m,
			    struct pcoap_view *payload);

/**
 * Build a key change: CON PUT k, 1-byte token, Uri-Query 1 byte when
 * flags != 0 (1 = discard session; DTLS only). Has no effect over TCP
 * and a server should not send it (§3.6); here for completeness.
 */
int pcoap_build_key_change(uint8_t *out, size_t cap, size_t *out_len,
			   uint16_t mid, uint8_t tok, uint8_t flags);

/** Parse a key change; *flags = the query byte or 0. */
int pcoap_parse_key_change(const struct pcoap_msg *m, uint8_t *tok,
			   uint8_t *flags);

/** Goodbye payload (Device OS 2.x, §3.6). */
struct pcoap_goodbye {
	uint32_t flags;		 /* PCOAP_GOODBYE_F_*: which fields follow */
	uint32_t cloud_reason;	 /* if PCOAP_GOODBYE_F_CLOUD */
	uint32_t reset_reason;	 /* if PCOAP_GOODBYE_F_RESET */
	uint32_t sleep_duration; /* if PCOAP_GOODBYE_F_SLEEP */
	uint32_t network_reason; /* if PCOAP_GOODBYE_F_NETWORK */
};
#define PCOAP_GOODBYE_F_CLOUD 0x01
#define PCOAP_GOODBYE_F_RESET 0x02
#define PCOAP_GOODBYE_F_SLEEP 0x04
#define PCOAP_GOODBYE_F_NETWORK 0x08

/**
 * Build a Goodbye: NON POST x, empty No-Response option, payload =
 * LEB128 varints: flags, then the fields whose flag is set, in order.
 */
int pcoap_build_goodbye(uint8_t *out, size_t cap, size_t *out_len, uint16_t mid,
			const struct pcoap_goodbye *g);

/**
 * Parse a Goodbye. An empty payload means flags 0; a varint longer than
 * 32 bits, a cut varint or trailing bytes are malformed.
 */
int pcoap_parse_goodbye(const struct pcoap_msg *m, struct pcoap_goodbye *g);

/**
 * CRC-32 (IEEE, reflected, zlib-compatible) for chunk checksums.
 * Chain calls by passing the previous result as crc (start with 0).
 */
uint32_t pcoap_crc32(uint32_t crc, const uint8_t *p, size_t len);

#endif
