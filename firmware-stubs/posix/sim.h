/* SPDX-License-Identifier: MIT */
/*
 * cinder-sim, the posix port of the device library: many simulated
 * devices in one process and one thread (epoll, non-blocking sockets,
 * OpenSSL for the handshake's RSA). sim_main.c parses the command line
 * and provisions key files, sim_run.c runs the devices, sim_apps.c holds
 * the simulated applications (tinker, testapp).
 */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "fw_app.h"

enum sim_app_kind { SIM_APP_TINKER = 0, SIM_APP_TESTAPP = 1 };
enum sim_behaviour { SIM_NORMAL = 0, SIM_SILENT = 1, SIM_GARBAGE = 2 };

struct sim_dev;

/** Options of `cinder-sim run`. */
struct sim_opts {
	const char *dir;	  /* provisioned devices */
	const char *server;	  /* HOST:PORT */
	const char *server_key;	  /* server_key.pub.der */
	unsigned count;		  /* 0 = all of devices.txt */
	enum sim_app_kind app;	  /* simulated application */
	const char *publish_name; /* --publish NAME, or NULL */
	uint32_t publish_period;  /* ms */
	bool publish_public;	  /* :public */
	uint16_t system_version;  /* system part module version */
	uint16_t app_requires;	  /* user part's need on s/2 */
	enum sim_behaviour behaviour;
	bool reconnect;		 /* reconnect after a close */
	bool setup_early;	 /* register the app before connecting; else as
				    Device OS does: setup() after the cloud
				    connection is up (and after every reboot) */
	bool devos3;		 /* speak as Device OS 3.0+ (fw_app_config) */
	uint16_t ota_chunk_size; /* announced OTA chunk size; 0 = 512 */
	uint32_t max_binary;	 /* OTA area / announced largest binary;
				    0 = 256 KB */
	uint32_t ota_drop_after; /* close after N OTA chunks; 0 = never */
	uint32_t ota_drop_times; /* ... for the first K transfers */
	/* --updates-disabled: the app disabled updates; UpdateBegin gets
	   5.03 unless the cloud sent particle/device/updates/forced */
	bool updates_disabled;
	/* --app-hash HEX: the user part's "u" (32 bytes); else all zero */
	bool have_app_hash;
	uint8_t app_hash[32];
};

/** Per-device application state (both apps use the same fields). */
struct sim_appstate {
	int32_t counter;
	double ratio;
	char greeting[48];
	int32_t pins[16]; /* D0-D7, A0-A7 */
	uint32_t published;
};

/**
 * Register the application's functions, variables and subscriptions.
 * @param a the device's application layer
 * @param st the device's application state (caller storage)
 * @param id the device ID (hex), for the greeting
 */
void sim_app_setup(enum sim_app_kind kind, struct fw_app *a,
		   struct sim_appstate *st, const char *id);

/** Print the usage text to f. */
void sim_usage(FILE *f);

/**
 * Run the simulator until quit, SIGTERM or SIGINT.
 * @return process exit status
 */
int sim_run(const struct sim_opts *o);

/**
 * Print one output line (with a newline) and flush stdout.
 */
void sim_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
