/* SPDX-License-Identifier: MIT */
/*
 * Configuration (module conf): cinder.conf ("key value" lines, # comments),
 * every key also settable as CINDER_<KEY> in the environment and as --key=value
 * (or
 * --key value) on the command line. Precedence: defaults < file <
 * environment < flags. The parsed struct is immutable once built; a reload
 * builds a new one. Pure except for reading the file and the environment.
 */
#ifndef CINDER_CONF_H
#define CINDER_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

struct conf {
	char *database_url;	  /* libpq conninfo or postgresql:// URL */
	int db_queue_max;	  /* store statements queued + in flight */
	char *device_listen;	  /* host:port for device TCP sessions */
	char *api_listen;	  /* host:port for REST/SSE */
	char *server_key;	  /* server RSA-2048 private key (PEM) */
	enum log_level log_level; /* err warn notice info debug */
	char *log_file;		  /* "" or "stderr" = stderr */
	int crypto_threads;	  /* RSA worker threads, 0 = cores */
	int loop_nice;		  /* loop thread's nice, 0 = as started */
	char *sql_dir;		  /* migration files */
	char *node_id;		  /* this node's name in a cluster */
	int handshake_timeout;	  /* seconds for a whole handshake */
	int max_handshakes;	  /* handshakes in progress at once */
	int keepalive_timeout;	  /* seconds of device silence before close */
	int request_timeout;	  /* seconds to wait for a device reply */
	int max_sessions;	  /* device sessions at once */
	int api_max_connections; /* API connections at once (SSE streams too) */
	int publish_rate;	 /* device user events per second */
	int publish_burst;	 /* ... and the bucket size */
	char *tls_cert;	   /* PEM certificate chain: HTTPS on api_listen */
	char *tls_key;	   /* PEM private key for tls_cert */
	char *rate_limits; /* "all=N,token=N,lock=N" or "" */
	int trust_proxy;   /* client IP from X-Forwarded-For (0/1) */
	char *web_root;	   /* static console files, "" = none */
	char *webhook_allow_nets;  /* CIDRs deliveries may reach anyway */
	char *webhook_retry;	   /* retry delays in seconds, "30,60" */
	char *webhook_ca_file;	   /* CA bundle for https deliveries */
	int webhook_timeout;	   /* seconds for one delivery */
	int webhook_queue_max;	   /* unfinished deliveries per webhook */
	int webhook_max_inflight;  /* requests in flight per webhook */
	int webhook_user_inflight; /* requests in flight per user */
	int webhook_host_errors;   /* failures before a host is skipped */
	int webhook_host_sleep;	   /* seconds a failing host is skipped */
	int healer_max_concurrent; /* devices healing at once */
	int healer_retries;	   /* failed sends per (device, module) */
	int healer_backoff;	   /* seconds before a resend, doubling */
	int healer_prerelease;	   /* 1: may send images only in -rc releases */
	int ota_image_cache_mb;	   /* MB of OTA images in memory at once */
	int device_cache_linger_s; /* seconds a gone device's state is kept */
	char *config_file;	   /* path it was loaded from, or NULL */
};

/** Size of the error message buffer callers pass to conf_load(). */
#define CONF_ERRLEN 256

/**
 * Build a configuration from defaults, then the file at path (NULL: no file;
 * a missing file is an error only when must_exist), then the environment
 * (envp, NULL-terminated "KEY=value" strings; pass NULL to skip), then the
 * flags in argv[0..argc-1] (only --key=value / --key value of known keys;
 * any other flag is an error).
 * @param out receives a new config; caller frees with conf_free()
 * @param err receives a message naming the key, and the line when it came
 *	from the file
 * @return 0, CINDER_ERR_INVAL (bad value or unknown key) or CINDER_ERR_IO
 */
int conf_load(const char *path, bool must_exist, char *const *envp, int argc,
	      char *const *argv, struct conf **out, char *err, size_t errlen);

/** Parse config text (for tests and fuzzing). Same rules as a file. */
int conf_parse_text(struct conf *cfg, const char *text, size_t len,
		    const char *name, char *err, size_t errlen);

/** A config holding only the defaults. Caller frees with conf_free(). */
struct conf *conf_new_defaults(void);

/** Free a config and everything it owns. NULL-safe. */
void conf_free(struct conf *cfg);

/** Write every key and its effective value, one "key value" line each. */
void conf_dump(const struct conf *cfg, FILE *fp);

/**
 * This node's name: node_id, else the host name, else "cinderd".
 * @param out receives it, NUL-terminated (truncated to outlen - 1)
 */
void conf_node_name(const struct conf *cfg, char *out, size_t outlen);

/** @return true if name is a known config key */
bool conf_key_is_known(const char *name);

/** Print the key list with descriptions (for --help). */
void conf_print_keys(FILE *fp);

#endif
