/* SPDX-License-Identifier: MIT */
/*
 * The simulated applications. tinker: digitalread, digitalwrite,
 * analogread, analogwrite over sixteen simulated pins (D0-D7, A0-A7), no
 * variables. testapp (like the recorded test app): tinker's functions plus
 * setcounter and echo (returns the argument length), variables counter,
 * ratio and greeting, subscriptions vdev/cmd (all devices) and vdev/mine
 * (my devices), each received event answered with vdev/reply.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* "D7" -> 7, "A0" -> 8; -1 when not a pin. */
static int
pin_index(const char *s, size_t len)
{
	if (len != 2 || s[1] < '0' || s[1] > '7')
		return -1;
	if (s[0] == 'D')
		return s[1] - '0';
	if (s[0] == 'A')
		return 8 + s[1] - '0';
	return -1;
}

static int
fn_digitalread(const char *arg, void *ctx)
{
	struct sim_appstate *st = ctx;
	int p = pin_index(arg, strlen(arg));

	return p < 0 ? -1 : (st->pins[p] != 0);
}

/* "D7,HIGH" / "A0,123": pin and value. */
static int
parse_write(const char *arg, int *pin, const char **val)
{
	const char *comma = strchr(arg, ',');

	if (comma == NULL)
		return -1;
	*pin = pin_index(arg, (size_t)(comma - arg));
	*val = comma + 1;
	return *pin < 0 ? -1 : 0;
}

static int
fn_digitalwrite(const char *arg, void *ctx)
{
	struct sim_appstate *st = ctx;
	const char *v;
	int p;

	if (parse_write(arg, &p, &v) != 0)
		return -1;
	if (strcmp(v, "HIGH") == 0)
		st->pins[p] = 1;
	else if (strcmp(v, "LOW") == 0)
		st->pins[p] = 0;
	else
		return -1;
	return 1;
}

static int
fn_analogread(const char *arg, void *ctx)
{
	struct sim_appstate *st = ctx;
	int p = pin_index(arg, strlen(arg));

	return p < 0 ? -1 : st->pins[p];
}

static int
fn_analogwrite(const char *arg, void *ctx)
{
	struct sim_appstate *st = ctx;
	const char *v;
	char *end;
	long n;
	int p;

	if (parse_write(arg, &p, &v) != 0)
		return -1;
	n = strtol(v, &end, 10);
	if (end == v || *end != '\0' || n < 0 || n > 4095)
		return -1;
	st->pins[p] = (int32_t)n;
	return 1;
}

static int
fn_setcounter(const char *arg, void *ctx)
{
	struct sim_appstate *st = ctx;

	st->counter = (int32_t)strtol(arg, NULL, 10);
	return st->counter;
}

static int
fn_echo(const char *arg, void *ctx)
{
	(void)ctx;
	return (int)strlen(arg);
}

static void
on_vdev(struct fw_app *a, const char *name, const char *data, void *ctx)
{
	char reply[FW_APP_EVENT_DATA_MAX + 1];

	(void)ctx;
	snprintf(reply, sizeof(reply), "got %s=%s", name, data);
	(void)fw_app_publish(a, "vdev/reply", reply, 60, FW_PUBLISH_PRIVATE);
}

void
sim_app_setup(enum sim_app_kind kind, struct fw_app *a, struct sim_appstate *st,
	      const char *id)
{
	(void)fw_app_function(a, "digitalread", fn_digitalread, st);
	(void)fw_app_function(a, "digitalwrite", fn_digitalwrite, st);
	(void)fw_app_function(a, "analogread", fn_analogread, st);
	(void)fw_app_function(a, "analogwrite", fn_analogwrite, st);
	if (kind != SIM_APP_TESTAPP)
		return;
	(void)fw_app_function(a, "setcounter", fn_setcounter, st);
	(void)fw_app_function(a, "echo", fn_echo, st);
	st->ratio = 0.5;
	snprintf(st->greeting, sizeof(st->greeting), "hello from %s", id);
	(void)fw_app_variable(a, "counter", FW_VAR_INT, &st->counter, NULL,
			      NULL);
	(void)fw_app_variable(a, "ratio", FW_VAR_DOUBLE, &st->ratio, NULL,
			      NULL);
	(void)fw_app_variable(a, "greeting", FW_VAR_STRING, st->greeting, NULL,
			      NULL);
	(void)fw_app_subscribe(a, "vdev/cmd", FW_SUB_ALL, NULL, on_vdev, st);
	(void)fw_app_subscribe(a, "vdev/mine", FW_SUB_MINE, NULL, on_vdev, st);
}
