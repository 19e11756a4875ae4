/* SPDX-License-Identifier: MIT */
/*
 * cinder-sim command line: `provision` makes device IDs and RSA-1024
 * keys in a directory (and registers them with `cinderd device add`),
 * `run` connects them to a Cinder. Provisioning is idempotent: devices
 * already listed in DIR/devices.txt are kept, and a DIR/<id>.registered
 * marker keeps a key from being registered twice.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/encoder.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "sim.h"

void
sim_usage(FILE *f)
{
	fprintf(f, "usage: cinder-sim provision --count N --dir DIR "
		   "[--cinderd PATH "
		   "--config FILE] [--owner NAME] [--prefix HEX] "
		   "[--app tinker|testapp]\n"
		   "       cinder-sim run --dir DIR --server HOST:PORT "
		   "--server-key server_key.pub.der [--count N] "
		   "[--app tinker|testapp] [--publish "
		   "NAME:PERIOD_MS[:private|public]] "
		   "[--system-version V] [--app-requires V] "
		   "[--behaviour normal|silent|garbage] "
		   "[--reconnect|--no-reconnect] [--startup devos|early] "
		   "[--devos3] [--updates-disabled] [--ota-drop-after N[:K]] "
		   "[--ota-chunk-size N] [--max-binary N] [--app-hash HEX]\n"
		   "       cinder-sim --help\n"
		   "\n"
		   "--startup devos (testapp's default): the app registers its "
		   "functions,\n"
		   "  variables and subscriptions in setup(), after the cloud "
		   "connection is up,\n"
		   "  as Device OS does; early (tinker's default): before "
		   "connecting.\n"
		   "--devos3: speak as Device OS 3.0+ (20-byte Hello, describe "
		   "posted at\n"
		   "  connect, Goodbye before a reset); default: the 8-byte "
		   "Hello of 2.x.\n"
		   "--updates-disabled: the app disabled updates; UpdateBegin "
		   "is refused\n"
		   "  (5.03) unless the cloud forced updates "
		   "(particle/device/updates/forced).\n"
		   "--app-hash HEX: the application's hash (64 hex digits) in "
		   "the Describe;\n"
		   "  default all zero.\n"
		   "--ota-drop-after N[:K]: a fault: close the connection once "
		   "N chunks of an\n"
		   "  update have arrived, for the first K updates of each "
		   "device (default 1),\n"
		   "  then reconnect; the partial image is dropped.\n"
		   "--ota-chunk-size N: the OTA chunk size the device "
		   "announces (extended\n"
		   "  Hello, or spark/hardware/ota_chunk_size), 64-751; "
		   "default 512.\n"
		   "--max-binary N: the largest update the device takes and "
		   "announces\n"
		   "  (extended Hello, or spark/hardware/max_binary), "
		   "1024-262144; default 262144.\n");
}

static void
usage(void)
{
	sim_usage(stderr);
}

static bool
file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* ---- provision ---------------------------------------------------------- */

static int
write_keys(const char *dir, const char *id)
{
	char path[4096];
	EVP_PKEY *k = EVP_RSA_gen(1024);
	OSSL_ENCODER_CTX *enc = NULL;
	FILE *f = NULL;
	int r = -1;

	if (k == NULL)
		goto out;
	snprintf(path, sizeof(path), "%s/%s.pem", dir, id);
	if ((f = fopen(path, "w")) == NULL)
		goto out;
	(void)fchmod(fileno(f), 0600);
	/* PKCS#1 "RSA PRIVATE KEY" (type-specific structure) */
	enc = OSSL_ENCODER_CTX_new_for_pkey(k, OSSL_KEYMGMT_SELECT_KEYPAIR,
					    "PEM", "type-specific", NULL);
	if (enc == NULL || OSSL_ENCODER_to_fp(enc, f) != 1)
		goto out;
	if (fclose(f) != 0) {
		f = NULL;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s.pub.pem", dir, id);
	if ((f = fopen(path, "w")) == NULL || PEM_write_PUBKEY(f, k) != 1)
		goto out;
	if (fclose(f) != 0) {
		f = NULL;
		goto out;
	}
	f = NULL;
	r = 0;
out:
	if (f != NULL)
		fclose(f);
	OSSL_ENCODER_CTX_free(enc);
	EVP_PKEY_free(k);
	if (r != 0)
		fprintf(stderr, "cinder-sim: cannot write the keys of %s\n",
			id);
	return r;
}

static int
register_key(const char *dir, const char *id, const char *cinderd,
	     const char *config, const char *owner)
{
	char pub[4096], mark[4096];
	const char *argv[10];
	int argc = 0, status;
	pid_t pid;
	FILE *f;

	snprintf(mark, sizeof(mark), "%s/%s.registered", dir, id);
	if (file_exists(mark))
		return 0;
	snprintf(pub, sizeof(pub), "%s/%s.pub.pem", dir, id);
	argv[argc++] = cinderd;
	argv[argc++] = "device";
	argv[argc++] = "add";
	argv[argc++] = id;
	argv[argc++] = pub;
	if (owner != NULL) {
		argv[argc++] = "--owner";
		argv[argc++] = owner;
	}
	argv[argc++] = "-c";
	argv[argc++] = config;
	argv[argc] = NULL;
	fflush(NULL);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		/* the child's stdout would mix with our output lines */
		(void)dup2(2, 1);
		execv(cinderd, (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "cinder-sim: registering %s failed\n", id);
		return -1;
	}
	if ((f = fopen(mark, "w")) != NULL)
		fclose(f);
	return 0;
}

static int
provision(int argc, char **argv)
{
	const char *dir = NULL, *cinderd = NULL, *config = NULL, *owner = NULL;
	const char *prefix = NULL, *app = NULL;
	char path[4096], line[128], id[25], (*ids)[25] = NULL;
	unsigned long count = 0, have = 0, i, ctr;
	uint8_t rnd[12];
	FILE *f;
	int a, rc = 1;

	for (a = 0; a < argc; a++) {
		const char *o = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;

		if (v == NULL)
			goto bad;
		if (strcmp(o, "--count") == 0)
			count = strtoul(v, NULL, 10);
		else if (strcmp(o, "--dir") == 0)
			dir = v;
		else if (strcmp(o, "--cinderd") == 0)
			cinderd = v;
		else if (strcmp(o, "--config") == 0)
			config = v;
		else if (strcmp(o, "--owner") == 0)
			owner = v;
		else if (strcmp(o, "--prefix") == 0)
			prefix = v;
		else if (strcmp(o, "--app") == 0)
			app = v;
		else
			goto bad;
		a++;
	}
	if (dir == NULL || count == 0 || count > 1000000 ||
	    (cinderd == NULL) != (config == NULL) ||
	    (prefix != NULL &&
	     (strlen(prefix) > 20 ||
	      strspn(prefix, "0123456789abcdef") != strlen(prefix))) ||
	    (app != NULL && strcmp(app, "tinker") != 0 &&
	     strcmp(app, "testapp") != 0))
		goto bad;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "cinder-sim: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	if ((ids = calloc(count, sizeof(*ids))) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/devices.txt", dir);
	if ((f = fopen(path, "r")) != NULL) {
		while (have < count && fgets(line, sizeof(line), f) != NULL) {
			line[strcspn(line, "\r\n \t")] = '\0';
			if (strlen(line) == 24)
				memcpy(ids[have++], line, 25);
		}
		fclose(f);
	}
	for (i = have, ctr = have + 1; i < count; i++, ctr++) {
		if (prefix != NULL) {
			snprintf(id, sizeof(id), "%s%0*lx", prefix,
				 (int)(24 - strlen(prefix)), ctr);
		} else {
			if (RAND_bytes(rnd, sizeof(rnd)) != 1)
				goto out;
			for (a = 0; a < 12; a++)
				snprintf(id + 2 * a, 3, "%02x", rnd[a]);
		}
		if (write_keys(dir, id) != 0)
			goto out;
		if ((f = fopen(path, "a")) == NULL)
			goto out;
		fprintf(f, "%s\n", id);
		if (fclose(f) != 0)
			goto out;
		memcpy(ids[i], id, 25);
	}
	if (app != NULL) {
		snprintf(path, sizeof(path), "%s/app", dir);
		if ((f = fopen(path, "w")) != NULL) {
			fprintf(f, "%s\n", app);
			fclose(f);
		}
	}
	for (i = 0; cinderd != NULL && i < count; i++)
		if (register_key(dir, ids[i], cinderd, config, owner) != 0)
			goto out;
	for (i = 0; i < count; i++)
		sim_out("device %s", ids[i]);
	rc = 0;
out:
	free(ids);
	return rc;
bad:
	usage();
	free(ids);
	return 2;
}

/* ---- run ---------------------------------------------------------------- */

static int
parse_app(const char *v, enum sim_app_kind *k)
{
	if (strcmp(v, "tinker") == 0)
		*k = SIM_APP_TINKER;
	else if (strcmp(v, "testapp") == 0)
		*k = SIM_APP_TESTAPP;
	else
		return -1;
	return 0;
}

static int
parse_u16(const char *v, uint16_t *out)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);

	if (end == v || *end != '\0' || n > 65535)
		return -1;
	*out = (uint16_t)n;
	return 0;
}

/* 64 hex digits into 32 bytes. */
static int
parse_hash(const char *v, uint8_t out[32])
{
	unsigned i, hi, lo;

	if (strlen(v) != 64 || strspn(v, "0123456789abcdefABCDEF") != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		if (sscanf(v + 2 * i, "%1x%1x", &hi, &lo) != 2)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* N[:K], N >= 1, K >= 1 (default 1). */
static int
parse_drop(const char *v, uint32_t *n, uint32_t *k)
{
	char *end;
	unsigned long a, b = 1;

	a = strtoul(v, &end, 10);
	if (end == v || a == 0 || a > 65535)
		return -1;
	if (*end == ':') {
		v = end + 1;
		b = strtoul(v, &end, 10);
		if (end == v || b == 0 || b > 1000000)
			return -1;
	}
	if (*end != '\0')
		return -1;
	*n = (uint32_t)a;
	*k = (uint32_t)b;
	return 0;
}

static int
run(int argc, char **argv)
{
	static char pubname[128];
	struct sim_opts o;
	bool have_app = false, have_req = false, have_startup = false;
	char path[4096], line[32], *colon;
	FILE *f;
	int a;

	memset(&o, 0, sizeof(o));
	o.system_version = 1512;
	o.reconnect = true;
	for (a = 0; a < argc; a++) {
		const char *opt = argv[a];
		const char *v = a + 1 < argc ? argv[a + 1] : NULL;

		if (strcmp(opt, "--reconnect") == 0) {
			o.reconnect = true;
			continue;
		}
		if (strcmp(opt, "--no-reconnect") == 0) {
			o.reconnect = false;
			continue;
		}
		if (strcmp(opt, "--devos3") == 0) {
			o.devos3 = true;
			continue;
		}
		if (strcmp(opt, "--updates-disabled") == 0) {
			o.updates_disabled = true;
			continue;
		}
		if (v == NULL)
			goto bad;
		a++;
		if (strcmp(opt, "--dir") == 0) {
			o.dir = v;
		} else if (strcmp(opt, "--server") == 0) {
			o.server = v;
		} else if (strcmp(opt, "--server-key") == 0) {
			o.server_key = v;
		} else if (strcmp(opt, "--count") == 0) {
			o.count = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(opt, "--app") == 0) {
			if (parse_app(v, &o.app) != 0)
				goto bad;
			have_app = true;
		} else if (strcmp(opt, "--publish") == 0) {
			snprintf(pubname, sizeof(pubname), "%s", v);
			if ((colon = strchr(pubname, ':')) == NULL)
				goto bad;
			*colon++ = '\0';
			o.publish_period = (uint32_t)strtoul(colon, &colon, 10);
			if (*colon == ':')
				o.publish_public =
					strcmp(colon + 1, "public") == 0;
			if (pubname[0] == '\0' || o.publish_period == 0)
				goto bad;
			o.publish_name = pubname;
		} else if (strcmp(opt, "--system-version") == 0) {
			if (parse_u16(v, &o.system_version) != 0)
				goto bad;
		} else if (strcmp(opt, "--app-hash") == 0) {
			if (parse_hash(v, o.app_hash) != 0)
				goto bad;
			o.have_app_hash = true;
		} else if (strcmp(opt, "--app-requires") == 0) {
			if (parse_u16(v, &o.app_requires) != 0)
				goto bad;
			have_req = true;
		} else if (strcmp(opt, "--ota-chunk-size") == 0) {
			if (parse_u16(v, &o.ota_chunk_size) != 0 ||
			    o.ota_chunk_size < 64 || o.ota_chunk_size > 751)
				goto bad;
		} else if (strcmp(opt, "--max-binary") == 0) {
			o.max_binary = (uint32_t)strtoul(v, &colon, 10);
			if (*v == '\0' || *colon != '\0' ||
			    o.max_binary < 1024 || o.max_binary > 262144)
				goto bad;
		} else if (strcmp(opt, "--ota-drop-after") == 0) {
			if (parse_drop(v, &o.ota_drop_after,
				       &o.ota_drop_times) != 0)
				goto bad;
		} else if (strcmp(opt, "--startup") == 0) {
			if (strcmp(v, "devos") == 0)
				o.setup_early = false;
			else if (strcmp(v, "early") == 0)
				o.setup_early = true;
			else
				goto bad;
			have_startup = true;
		} else if (strcmp(opt, "--behaviour") == 0 ||
			   strcmp(opt, "--behavior") == 0) {
			if (strcmp(v, "normal") == 0)
				o.behaviour = SIM_NORMAL;
			else if (strcmp(v, "silent") == 0)
				o.behaviour = SIM_SILENT;
			else if (strcmp(v, "garbage") == 0)
				o.behaviour = SIM_GARBAGE;
			else
				goto bad;
		} else {
			goto bad;
		}
	}
	if (o.dir == NULL || o.server == NULL || o.server_key == NULL)
		goto bad;
	if (!have_req)
		o.app_requires = o.system_version;
	if (!have_app) {
		snprintf(path, sizeof(path), "%s/app", o.dir);
		if ((f = fopen(path, "r")) != NULL) {
			if (fgets(line, sizeof(line), f) != NULL) {
				line[strcspn(line, "\r\n")] = '\0';
				(void)parse_app(line, &o.app);
			}
			fclose(f);
		}
	}
	if (!have_startup)
		o.setup_early = o.app != SIM_APP_TESTAPP;
	return sim_run(&o);
bad:
	usage();
	return 2;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "provision") == 0)
		return provision(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return run(argc - 2, argv + 2);
	if (argc >= 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	     strcmp(argv[1], "help") == 0)) {
		sim_usage(stdout);
		return 0;
	}
	usage();
	return 2;
}
