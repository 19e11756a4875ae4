/* SPDX-License-Identifier: MIT */
/*
 * Error codes of the device-side firmware library. 0 is success, failures
 * are negative. The values match the daemon's CINDER_ERR_* where the meaning
 * is the same, but the firmware does not include the daemon's err.h: it is
 * built for targets that carry nothing of the daemon.
 */
#ifndef FW_ERR_H
#define FW_ERR_H

enum fw_err {
	FW_OK = 0,
	FW_ERR_INVAL = -2,     /* invalid argument */
	FW_ERR_PROTO = -3,     /* peer broke the protocol */
	FW_ERR_MALFORMED = -4, /* undecodable input (DER, padding, frame) */
	FW_ERR_TOO_BIG = -5,   /* input over a size limit */
	FW_ERR_IO = -6,	       /* network or flash failure, peer closed */
	FW_ERR_TIMEOUT = -7,   /* deadline passed */
	FW_ERR_CRYPTO = -8,    /* decryption or signature check failed */
	FW_ERR_NOTFOUND = -10, /* no such function, variable, module */
	FW_ERR_BUSY = -13,     /* buffer full, try again later */
	FW_ERR_INTERNAL = -14, /* programming error */
	FW_ERR_AGAIN = -20,    /* operation in progress, call again */
	FW_ERR_LIMIT = -21,    /* rate limit or table full */
	FW_ERR_RESET = -22,    /* connection closed for a (simulated) reset */
};

#endif
