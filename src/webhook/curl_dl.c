/* SPDX-License-Identifier: MIT */
/* libcurl loaded at the first webhook delivery (curl_dl.h). */
#include "config.h"

#include <dlfcn.h>

#include "err.h"
#include "log.h"
#include "webhook/curl_dl.h"

struct curl_dl curl_dl;

static int state; /* 0: not tried, 1: loaded, -1: failed */

int
curl_dl_load(void)
{
	void *h;

	if (state != 0)
		return state > 0 ? 0 : CINDER_ERR_UNAVAILABLE;
	state = -1;
	if ((h = dlopen(CURL_DL_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		log_err("webhooks: could not load %s: %s", CURL_DL_SONAME,
			dlerror());
		return CINDER_ERR_UNAVAILABLE;
	}
	/* a data pointer to a function pointer: as POSIX dlsym() has it */
#define CURL_DL_SYM(field, name)                                               \
	do {                                                                   \
		if ((*(void **)&curl_dl.field = dlsym(h, name)) == NULL) {     \
			log_err("webhooks: %s has no %s", CURL_DL_SONAME,      \
				name);                                         \
			return CINDER_ERR_UNAVAILABLE;                         \
		}                                                              \
	} while (0)
	CURL_DL_SYM(global_init, "curl_global_init");
	CURL_DL_SYM(easy_init, "curl_easy_init");
	CURL_DL_SYM(easy_setopt, "curl_easy_setopt");
	CURL_DL_SYM(easy_getinfo, "curl_easy_getinfo");
	CURL_DL_SYM(easy_reset, "curl_easy_reset");
	CURL_DL_SYM(easy_cleanup, "curl_easy_cleanup");
	CURL_DL_SYM(easy_strerror, "curl_easy_strerror");
	CURL_DL_SYM(slist_append, "curl_slist_append");
	CURL_DL_SYM(slist_free_all, "curl_slist_free_all");
	CURL_DL_SYM(multi_init, "curl_multi_init");
	CURL_DL_SYM(multi_setopt, "curl_multi_setopt");
	CURL_DL_SYM(multi_assign, "curl_multi_assign");
	CURL_DL_SYM(multi_add_handle, "curl_multi_add_handle");
	CURL_DL_SYM(multi_remove_handle, "curl_multi_remove_handle");
	CURL_DL_SYM(multi_socket_action, "curl_multi_socket_action");
	CURL_DL_SYM(multi_info_read, "curl_multi_info_read");
	CURL_DL_SYM(multi_cleanup, "curl_multi_cleanup");
#undef CURL_DL_SYM
	state = 1;
	return 0;
}
