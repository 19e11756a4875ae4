/* SPDX-License-Identifier: MIT */
/*
 * libcurl, loaded with dlopen when the first webhook delivery needs it
 * rather than by the dynamic loader at exec: its libraries (HTTP/2, SSH,
 * RTMP, IDN, PSL, zstd, brotli) took 3-4.5 ms of CPU before main() on the
 * bench VM (docs/benchmarks.md, B7), on the way to listening, for a
 * feature a start does not need at once. The webhook engine includes this
 * instead of <curl/curl.h>; its libcurl calls go through curl_dl's table,
 * filled by curl_dl_load(). Loop thread only.
 */
#ifndef CINDER_WEBHOOK_CURL_DL_H
#define CINDER_WEBHOOK_CURL_DL_H

#include <curl/curl.h>

/** libcurl's SONAME (4 since libcurl 7.16, 2006). */
#define CURL_DL_SONAME "libcurl.so.4"

/** The libcurl functions the webhook engine calls. */
struct curl_dl {
	__typeof__(curl_global_init) *global_init;
	__typeof__(curl_easy_init) *easy_init;
	__typeof__(curl_easy_setopt) *easy_setopt;
	__typeof__(curl_easy_getinfo) *easy_getinfo;
	__typeof__(curl_easy_reset) *easy_reset;
	__typeof__(curl_easy_cleanup) *easy_cleanup;
	__typeof__(curl_easy_strerror) *easy_strerror;
	__typeof__(curl_slist_append) *slist_append;
	__typeof__(curl_slist_free_all) *slist_free_all;
	__typeof__(curl_multi_init) *multi_init;
	__typeof__(curl_multi_setopt) *multi_setopt;
	__typeof__(curl_multi_assign) *multi_assign;
	__typeof__(curl_multi_add_handle) *multi_add_handle;
	__typeof__(curl_multi_remove_handle) *multi_remove_handle;
	__typeof__(curl_multi_socket_action) *multi_socket_action;
	__typeof__(curl_multi_info_read) *multi_info_read;
	__typeof__(curl_multi_cleanup) *multi_cleanup;
};

extern struct curl_dl curl_dl;

/**
 * Load libcurl and fill curl_dl, once; later calls return the first
 * outcome. A failure is logged (once).
 * @return 0 or CINDER_ERR_UNAVAILABLE
 */
int curl_dl_load(void);

/* The calls below go through the table (none before curl_dl_load()). */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init (*curl_dl.global_init)
#define curl_easy_init (*curl_dl.easy_init)
#define curl_easy_setopt (*curl_dl.easy_setopt)
#define curl_easy_getinfo (*curl_dl.easy_getinfo)
#define curl_easy_reset (*curl_dl.easy_reset)
#define curl_easy_cleanup (*curl_dl.easy_cleanup)
#define curl_easy_strerror (*curl_dl.easy_strerror)
#define curl_slist_append (*curl_dl.slist_append)
#define curl_slist_free_all (*curl_dl.slist_free_all)
#define curl_multi_init (*curl_dl.multi_init)
#define curl_multi_setopt (*curl_dl.multi_setopt)
#define curl_multi_assign (*curl_dl.multi_assign)
#define curl_multi_add_handle (*curl_dl.multi_add_handle)
#define curl_multi_remove_handle (*curl_dl.multi_remove_handle)
#define curl_multi_socket_action (*curl_dl.multi_socket_action)
#define curl_multi_info_read (*curl_dl.multi_info_read)
#define curl_multi_cleanup (*curl_dl.multi_cleanup)

#endif
