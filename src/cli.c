/* SPDX-License-Identifier: MIT */
/*
 * cinderd's command line: one binary, several subcommands (run, keygen,
 * migrate, user, device, check-config; firmware lives in healer/fwcli.c).
 * Each subcommand loads the same configuration (file, environment,
 * --key value flags) and has --help.
 * The operator subcommands other than run use blocking database calls;
 * they never run inside the daemon's loop.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "conf.h"
#include "crypto.h"
#include "daemon.h"
#include "err.h"
#include "healer/fwcli.h"
#include "log.h"
#include "store.h"
#include "xmalloc.h"

extern char **environ;

#define MAX_POSITIONAL 4

/* What one invocation asked for, after splitting argv. */
struct cli_args {
	const char *config_path;	 /* -c FILE, or NULL for the default */
	bool help;			 /* -h / --help */
	bool admin;			 /* user add --admin */
	const char *owner;		 /* device add/accept --owner */
	const char *name;		 /* device add/accept --name */
	const char *pos[MAX_POSITIONAL]; /* positional arguments */
	int npos;			 /* how many */
	char **flags;			 /* --key value flags for conf_load */
	int nflags;			 /* how many strings in flags */
};

struct cli_cmd {
	const char *name;			     /* subcommand */
	int (*fn)(struct conf *, struct cli_args *); /* handler */
	const char *usage;			     /* one-line usage */
	const char *help;			     /* what it does */
	bool needs_db;				     /* touches PostgreSQL */
};

static int cmd_run(struct conf *, struct cli_args *);
static int cmd_keygen(struct conf *, struct cli_args *);
static int cmd_migrate(struct conf *, struct cli_args *);
static int cmd_user(struct conf *, struct cli_args *);
static int cmd_device(struct conf *, struct cli_args *);
static int cmd_check_config(struct conf *, struct cli_args *);

static const struct cli_cmd commands[] = {
	{"run", cmd_run, "run [options]",
	 "run the daemon in the foreground (the default subcommand)", true},
	{"keygen", cmd_keygen, "keygen [options]",
	 "create the server RSA-2048 key (server_key, mode 0600) and write "
	 "its public half next to it as .pub.der (the 294 bytes a device "
	 "stores) and .pub.pem",
	 false},
	{"migrate", cmd_migrate, "migrate [options]",
	 "apply the sql/ migrations to the database and exit", true},
	{"user", cmd_user, "user add NAME [--admin] [options]",
	 "add a user; the password is read from standard input (or asked "
	 "for on a terminal)",
	 true},
	{"device", cmd_device,
	 "device add ID PUBKEY.pem [--owner NAME] [--name NAME] | "
	 "device pending | device accept ID [--owner NAME] [--name NAME]",
	 "register a device's RSA public key; list the keys of unknown "
	 "devices that tried to connect; accept one of them",
	 true},
	{"check-config", cmd_check_config, "check-config [options]",
	 "validate the configuration, print the effective values, and exit",
	 false},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage_all(FILE *fp)
{
	size_t i;

	fprintf(fp, "usage: cinderd [SUBCOMMAND] [-c FILE] [--KEY VALUE ...]\n"
		    "\nsubcommands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(fp, "  %-14s %s\n", commands[i].name, commands[i].help);
	fprintf(fp, "  %-14s %s\n", "firmware",
		"inspect, make-module, plan, import: module binaries and the "
		"Device OS catalogue (cinderd firmware help)");
	fprintf(fp, "  %-14s %s\n", "help", "show this list");
	fprintf(fp, "  %-14s %s\n", "version", "print the version");
	fprintf(fp, "\nconfiguration (cinder.conf keys; also CINDER_<KEY> "
		    "in the environment):\n");
	conf_print_keys(fp);
	fprintf(fp, "\nThe config file is -c FILE, else $CINDER_CONFIG, else "
		    "./cinder.conf if it exists.\n");
}

static void
usage_cmd(const struct cli_cmd *c, FILE *fp)
{
	fprintf(fp,
		"usage: cinderd %s\n\n%s\n\noptions:\n"
		"  -c, --config FILE      configuration file\n"
		"  -h, --help             this text\n",
		c->usage, c->help);
	conf_print_keys(fp);
}

static const struct cli_cmd *
find_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < NCOMMANDS; i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

/* Split argv into our own options, positionals and conf flags. */
static int
split_args(int argc, char **argv, struct cli_args *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	a->flags = xcalloc((size_t)argc + 1, sizeof(char *));
	for (i = 0; i < argc; i++) {
		const char *s = argv[i];

		if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
			a->help = true;
		} else if (strcmp(s, "-c") == 0 || strcmp(s, "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "cinderd: %s needs a file\n",
					s);
				return CINDER_ERR_INVAL;
			}
			a->config_path = argv[++i];
		} else if (strncmp(s, "--config=", 9) == 0) {
			a->config_path = s + 9;
		} else if (strcmp(s, "--admin") == 0) {
			a->admin = true;
		} else if (strcmp(s, "--owner") == 0 ||
			   strcmp(s, "--name") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "cinderd: %s needs a value\n",
					s);
				return CINDER_ERR_INVAL;
			}
			if (s[2] == 'o')
				a->owner = argv[++i];
			else
				a->name = argv[++i];
		} else if (strncmp(s, "--", 2) == 0) {
			a->flags[a->nflags++] = argv[i];
			/* "--key value": keep the value with its key. */
			if (strchr(s, '=') == NULL && i + 1 < argc)
				a->flags[a->nflags++] = argv[++i];
		} else {
			if (a->npos >= MAX_POSITIONAL) {
				fprintf(stderr,
					"cinderd: too many arguments at "
					"\"%s\"\n",
					s);
				return CINDER_ERR_INVAL;
			}
			a->pos[a->npos++] = s;
		}
	}
	return 0;
}

int
cli_main(int argc, char **argv)
{
	const struct cli_cmd *cmd;
	struct cli_args a;
	struct conf *cfg = NULL;
	char err[CONF_ERRLEN];
	const char *path;
	bool must_exist = true;
	int argi = 1, rc = 1, r;

	daemon_note_start();
	memset(&a, 0, sizeof(a));
	if (argc > 1 && argv[1][0] != '-') {
		if (strcmp(argv[1], "help") == 0) {
			if (argc > 2 && (cmd = find_cmd(argv[2])) != NULL)
				usage_cmd(cmd, stdout);
			else
				usage_all(stdout);
			return 0;
		}
		if (strcmp(argv[1], "firmware") == 0)
			return fwcli_main(argc - 2, argv + 2);
		if (strcmp(argv[1], "version") == 0) {
			printf("cinderd %s\n", PACKAGE_VERSION);
			return 0;
		}
		if ((cmd = find_cmd(argv[1])) == NULL) {
			fprintf(stderr,
				"cinderd: unknown subcommand \"%s\" (try "
				"cinderd help)\n",
				argv[1]);
			return 2;
		}
		argi = 2;
	} else {
		cmd = find_cmd("run");
	}
	if (split_args(argc - argi, argv + argi, &a) != 0) {
		rc = 2;
		goto out;
	}
	if (a.help) {
		usage_cmd(cmd, stdout);
		rc = 0;
		goto out;
	}
	path = a.config_path;
	if (path == NULL && (path = getenv("CINDER_CONFIG")) == NULL) {
		path = "cinder.conf";
		must_exist = false;
	}
	r = conf_load(path, must_exist, environ, a.nflags, a.flags, &cfg, err,
		      sizeof(err));
	if (r != 0) {
		fprintf(stderr, "cinderd: %s\n", err);
		rc = 2;
		goto out;
	}
	if (log_open(cfg->log_level,
		     cmd->fn == cmd_run ? cfg->log_file : NULL) != 0) {
		rc = 1;
		goto out;
	}
	rc = cmd->fn(cfg, &a);
out:
	free(a.flags);
	conf_free(cfg);
	log_close();
	return rc;
}

static int
cmd_run(struct conf *cfg, struct cli_args *a)
{
	struct daemon *d = NULL;
	int r;

	if (a->npos > 0) {
		fprintf(stderr, "cinderd run: unexpected argument \"%s\"\n",
			a->pos[0]);
		return 2;
	}
	if ((r = daemon_new(cfg, &d)) != 0)
		return 1;
	r = daemon_run(d);
	daemon_free(d);
	return r == 0 ? 0 : 1;
}

/* "dir/server_key.pem" -> "dir/server_key" + suffix. */
static char *
sibling_path(const char *key, const char *suffix)
{
	size_t n = strlen(key);

	if (n > 4 && strcmp(key + n - 4, ".pem") == 0)
		n -= 4;
	return xasprintf("%.*s%s", (int)n, key, suffix);
}

static int
cmd_keygen(struct conf *cfg, struct cli_args *a)
{
	char *der = sibling_path(cfg->server_key, ".pub.der");
	char *pem = sibling_path(cfg->server_key, ".pub.pem");
	int r;

	r = crypto_server_key_generate(cfg->server_key, der, pem);
	if (r == CINDER_ERR_CONFLICT) {
		fprintf(stderr,
			"cinderd keygen: %s already exists; not overwriting "
			"it (devices trust the key they were given)\n",
			cfg->server_key);
	} else if (r != 0) {
		fprintf(stderr, "cinderd keygen: could not create %s: %s\n",
			cfg->server_key, err_str(r));
	} else {
		printf("server key:        %s (keep it secret)\n"
		       "public key (DER):  %s (294 bytes: flash this into "
		       "devices)\n"
		       "public key (PEM):  %s\n",
		       cfg->server_key, der, pem);
	}
	free(der);
	free(pem);
	return r == 0 ? 0 : 1;
}

static int
cmd_migrate(struct conf *cfg, struct cli_args *a)
{
	int r = store_migrate(cfg->database_url, cfg->sql_dir);

	if (r != 0) {
		fprintf(stderr, "cinderd migrate: failed: %s\n", err_str(r));
		return 1;
	}
	printf("database is up to date\n");
	return 0;
}

/* Read a password: a line from stdin, with echo off on a terminal. */
static char *
read_password(const char *prompt)
{
	struct termios old, noecho;
	bool tty = isatty(STDIN_FILENO);
	char buf[1024];
	size_t n;

	if (tty) {
		fprintf(stderr, "%s", prompt);
		if (tcgetattr(STDIN_FILENO, &old) == 0) {
			noecho = old;
			noecho.c_lflag &= ~(tcflag_t)ECHO;
			tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho);
		} else {
			tty = false;
		}
	}
	if (fgets(buf, sizeof(buf), stdin) == NULL)
		buf[0] = '\0';
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	char *pw = xstrdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return pw;
}

static bool
username_is_valid(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 254)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && strchr("@._+-", c) == NULL)
			return false;
	}
	return true;
}

static int
cmd_user(struct conf *cfg, struct cli_args *a)
{
	char *pw = NULL, *hash = NULL;
	int r, rc = 1;

	if (a->npos != 2 || strcmp(a->pos[0], "add") != 0) {
		fprintf(stderr, "usage: cinderd user add NAME [--admin]\n");
		return 2;
	}
	if (!username_is_valid(a->pos[1])) {
		fprintf(stderr,
			"cinderd user add: \"%s\" is not a valid user name "
			"(letters, digits and @._+- only)\n",
			a->pos[1]);
		return 2;
	}
	pw = read_password("password: ");
	if (strlen(pw) < 8) {
		fprintf(stderr,
			"cinderd user add: the password needs at least 8 "
			"characters\n");
		goto out;
	}
	if ((r = crypto_password_hash(pw, &hash)) != 0) {
		fprintf(stderr, "cinderd user add: could not hash: %s\n",
			err_str(r));
		goto out;
	}
	r = store_sync_user_add(cfg->database_url, a->pos[1], hash, a->admin);
	if (r == CINDER_ERR_CONFLICT) {
		fprintf(stderr, "cinderd user add: user %s already exists\n",
			a->pos[1]);
		goto out;
	}
	if (r != 0) {
		fprintf(stderr, "cinderd user add: failed: %s\n", err_str(r));
		goto out;
	}
	printf("user %s added%s\n", a->pos[1], a->admin ? " (admin)" : "");
	rc = 0;
out:
	if (pw != NULL)
		freezero(pw, strlen(pw));
	free(hash);
	return rc;
}

static bool
device_id_is_valid(const char *s)
{
	size_t i;

	if (strlen(s) != 24)
		return false;
	for (i = 0; i < 24; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

static char *
lower_dup(const char *s)
{
	char *p = xstrdup(s), *q;

	for (q = p; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	return p;
}

static int
device_add(struct conf *cfg, struct cli_args *a)
{
	struct crypto_key *key = NULL;
	char *id = NULL, *pem = NULL;
	int r, rc = 1;

	if (a->npos != 3) {
		fprintf(stderr, "usage: cinderd device add ID PUBKEY.pem "
				"[--owner NAME] [--name NAME]\n");
		return 2;
	}
	if (!device_id_is_valid(a->pos[1])) {
		fprintf(stderr,
			"cinderd device add: \"%s\" is not a device id (24 "
			"hex digits)\n",
			a->pos[1]);
		return 2;
	}
	id = lower_dup(a->pos[1]);
	if ((r = crypto_pubkey_load(a->pos[2], &key)) != 0 ||
	    (r = crypto_key_public_pem(key, &pem)) != 0) {
		fprintf(stderr,
			"cinderd device add: %s is not an RSA public key "
			"(PEM or DER): %s\n",
			a->pos[2], err_str(r));
		goto out;
	}
	r = store_sync_device_add(cfg->database_url, id, pem, a->owner,
				  a->name);
	if (r != 0) {
		fprintf(stderr, "cinderd device add: %s: %s\n", id,
			r == CINDER_ERR_NOTFOUND ? "no such owner"
			: r == CINDER_ERR_CONFLICT
				? "a device with that id or name exists"
				: err_str(r));
		goto out;
	}
	printf("device %s registered%s%s\n", id, a->owner ? " to " : "",
	       a->owner ? a->owner : "");
	rc = 0;
out:
	crypto_key_free(key);
	free(id);
	free(pem);
	return rc;
}

static int
cmd_device(struct conf *cfg, struct cli_args *a)
{
	char *id;
	int r;

	if (a->npos >= 1 && strcmp(a->pos[0], "add") == 0)
		return device_add(cfg, a);
	if (a->npos == 1 && strcmp(a->pos[0], "pending") == 0) {
		r = store_sync_pending_print(cfg->database_url, stdout);
		if (r != 0)
			fprintf(stderr, "cinderd device pending: %s\n",
				err_str(r));
		return r == 0 ? 0 : 1;
	}
	if (a->npos == 2 && strcmp(a->pos[0], "accept") == 0) {
		if (!device_id_is_valid(a->pos[1])) {
			fprintf(stderr,
				"cinderd device accept: \"%s\" is not "
				"a device id\n",
				a->pos[1]);
			return 2;
		}
		id = lower_dup(a->pos[1]);
		r = store_sync_device_accept(cfg->database_url, id, a->owner,
					     a->name);
		if (r != 0)
			fprintf(stderr, "cinderd device accept: %s: %s\n", id,
				r == CINDER_ERR_NOTFOUND
					? "no pending key for that device "
					  "(or no such owner)"
					: err_str(r));
		else
			printf("device %s accepted\n", id);
		free(id);
		return r == 0 ? 0 : 1;
	}
	fprintf(stderr, "usage: cinderd %s\n", find_cmd("device")->usage);
	return 2;
}

static int
cmd_check_config(struct conf *cfg, struct cli_args *a)
{
	printf("# configuration OK%s%s\n", cfg->config_file ? ": " : "",
	       cfg->config_file ? cfg->config_file : " (defaults)");
	conf_dump(cfg, stdout);
	return 0;
}
