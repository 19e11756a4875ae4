/* SPDX-License-Identifier: MIT */
/*
 * The scripted device shared by the OTA tests (check_ota.c,
 * check_ota_device.c): an ota_ops table (t_ops) whose callbacks record
 * every message sent into sent[] and count the reports, an output budget,
 * send failures on demand, the clock (now_ms), the image buffer and the
 * machine under test (o). Defined in ota_script.c.
 */
#ifndef CINDER_TESTS_OTA_SCRIPT_H
#define CINDER_TESTS_OTA_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "healer/ota.h"

#define MAX_SENT 512

struct sent {
	uint8_t b[OTA_MSG_MAX];
	size_t len;
};

extern struct sent sent[MAX_SENT];
extern size_t n_sent;
extern uint16_t mid_next;
extern uint8_t tok_next;
extern bool budget_on;
extern size_t budget;
extern bool send_fails;
extern int send_fail_rc;
extern int n_started, n_progress, n_success, n_failed;
extern enum ota_fail last_reason;
extern char last_text[160], last_json[600];

/* the ops: send records into sent[] (or fails, or spends the budget) */
int t_send(void *arg, const uint8_t *msg, size_t len);
uint16_t t_mid(void *arg);
uint8_t t_tok(void *arg);
size_t t_writable(void *arg);
/* counts the reports; keeps the last failure's reason, text and JSON */
void t_report(void *arg, const struct ota_report *r);
extern const struct ota_ops t_ops;

extern uint8_t img_buf[40000];
extern struct ota_image *img;
extern struct ota *o;
extern uint64_t now_ms;

/* everything recorded cleared, the clock at 1000 */
void reset_script(void);
/* An image of len pseudo-random bytes, and a machine for it. */
void setup_ota(size_t len, const struct ota_params *p);
void teardown_ota(void);

#endif
