/* SPDX-License-Identifier: MIT */
/* Error code names. Pure, no state. */
#include "config.h"

#include "err.h"

const char *
err_str(int r)
{
	switch ((enum cinder_err)r) {
	case CINDER_OK:
		return "success";
	case CINDER_ERR_NOMEM:
		return "out of memory";
	case CINDER_ERR_INVAL:
		return "invalid argument";
	case CINDER_ERR_PROTO:
		return "protocol error";
	case CINDER_ERR_MALFORMED:
		return "malformed input";
	case CINDER_ERR_TOO_BIG:
		return "input too large";
	case CINDER_ERR_IO:
		return "i/o error";
	case CINDER_ERR_TIMEOUT:
		return "timed out";
	case CINDER_ERR_CRYPTO:
		return "cryptographic failure";
	case CINDER_ERR_DB:
		return "database error";
	case CINDER_ERR_NOTFOUND:
		return "not found";
	case CINDER_ERR_CONFLICT:
		return "conflict";
	case CINDER_ERR_AUTH:
		return "authentication failed";
	case CINDER_ERR_BUSY:
		return "busy";
	case CINDER_ERR_INTERNAL:
		return "internal error";
	case CINDER_ERR_FORBIDDEN:
		return "forbidden";
	case CINDER_ERR_UNAVAILABLE:
		return "unavailable";
	}
	return "unknown error";
}
