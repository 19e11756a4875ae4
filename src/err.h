/* SPDX-License-Identifier: MIT */
/*
 * Project-wide error codes. 0 is success, failures are negative
 * CINDER_ERR_* values. err_str() turns one into text. Foreign error
 * systems (OpenSSL, libpq, MHD, jansson) are translated into these at
 * their single point of contact.
 */
#ifndef CINDER_ERR_H
#define CINDER_ERR_H

enum cinder_err {
	CINDER_OK = 0,
	CINDER_ERR_NOMEM = -1,	      /* out of memory where survivable */
	CINDER_ERR_INVAL = -2,	      /* invalid argument or request */
	CINDER_ERR_PROTO = -3,	      /* peer broke the protocol */
	CINDER_ERR_MALFORMED = -4,    /* undecodable input */
	CINDER_ERR_TOO_BIG = -5,      /* input over a size limit */
	CINDER_ERR_IO = -6,	      /* system call failed */
	CINDER_ERR_TIMEOUT = -7,      /* deadline passed */
	CINDER_ERR_CRYPTO = -8,	      /* OpenSSL failure or bad signature */
	CINDER_ERR_DB = -9,	      /* database failure */
	CINDER_ERR_NOTFOUND = -10,    /* no such object */
	CINDER_ERR_CONFLICT = -11,    /* already exists / state conflict */
	CINDER_ERR_AUTH = -12,	      /* authentication failed */
	CINDER_ERR_BUSY = -13,	      /* resource busy or limit reached */
	CINDER_ERR_INTERNAL = -14,    /* programming error */
	CINDER_ERR_FORBIDDEN = -15,   /* authenticated but not allowed */
	CINDER_ERR_UNAVAILABLE = -16, /* dependency down (database, device) */
};

/**
 * Describe an error code.
 * @param r a CINDER_ERR_* value or 0
 * @return a static string; never NULL
 */
const char *err_str(int r);

#endif
