/*
 * iotbridgectl: the operator's tool next to the daemon. Commands that need no
 * running daemon work on files directly; status and reload talk to iotbridged
 * over its control socket (ctl_status.c), found from -s or the configuration.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iotb_build.h"
#include "base/mbedcompat.h"
#include "config/cfg.h"
#include "daemon/ctl/ctl.h"

/* control.socket's default, for the help text (the schema holds the value) */
#define CTL_DEFAULT_SOCKET	"/run/iotbridge/control.sock"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: iotbridgectl [-s SOCKET] [-c CONFIG] COMMAND [ARGS]\n"
	    "\n"
	    "Commands:\n"
	    "  status [--json]     show what the running iotbridged is doing:\n"
	    "                      uplink, queue, broker (--json: one JSON object)\n"
	    "  reload              make the running iotbridged reload its\n"
	    "                      configuration, as SIGHUP does; an invalid one\n"
	    "                      is refused with its errors (exit 1)\n"
	    "  check-config FILE   check a configuration file and the conf.d drop-ins\n"
	    "                      next to it, print every error (exit 0: valid,\n"
	    "                      1: invalid)\n"
	    "  passwd FILE USER    add or change USER in a password file (created\n"
	    "                      0640 if absent); the password is asked twice,\n"
	    "                      or read as one line from stdin if not a tty\n"
	    "  passwd -D FILE USER delete USER from a password file\n"
	    "  version             print the version\n"
	    "  help                print this help\n"
	    "\n"
	    "Options for status and reload:\n"
	    "  -s, --socket SOCKET the daemon's control socket (default: control.socket\n"
	    "                      of CONFIG, else %s)\n"
	    "  -c, --config CONFIG the daemon's configuration file (default\n"
	    "                      %s, when readable)\n"
	    "\n"
	    "Exit status: 0 done, 1 failed (daemon unreachable, reload refused),\n"
	    "2 usage error.\n", CTL_DEFAULT_SOCKET, IOTB_SYSCONFDIR "/iotbridge.yaml");
}

static int
cmd_check_config(int argc, char *argv[])
{
	struct cfg_diag diag = { 0 };
	struct cfg *cfg = NULL;

	if (argc != 2) {
		fprintf(stderr, "usage: iotbridgectl check-config FILE\n");
		return 2;
	}
	(void)cfg_load(argv[1], CFG_LOAD_DROPINS, &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "%s\n", diag.msgs[i]);
	cfg_diag_clear(&diag);
	if (cfg == NULL)
		return 1;
	printf("%s: configuration OK\n", argv[1]);
	cfg_free(cfg);
	return 0;
}

/* status and reload: find the socket, then ask. */
static int
cmd_daemon(const char *opt_socket, const char *opt_config,
    int (*fn)(const char *, int, char *[]), int argc, char *argv[])
{
	char path[CFG_UNIX_PATH_MAX + 1];

	if (ctl_socket_path(opt_socket, opt_config, path, sizeof(path)) == -1)
		return 1;
	return fn(path, argc, argv);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "socket",	required_argument, NULL, 's' },
		{ "config",	required_argument, NULL, 'c' },
		{ "help",	no_argument,	   NULL, 'h' },
		{ "version",	no_argument,	   NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *opt_socket = NULL, *opt_config = NULL, *cmd;
	int ch;

	/* options before the command only: "+" stops at the first word */
	while ((ch = getopt_long(argc, argv, "+s:c:hV", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 's':
			opt_socket = optarg;
			break;
		case 'c':
			opt_config = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("iotbridgectl %s\n", IOTB_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	/* mbedTLS 3.6's PSA crypto: once, before any use (passwd hashes) */
	if ((ch = mbedcompat_crypto_init()) != 0) {
		fprintf(stderr, "iotbridgectl: cannot initialise mbedTLS's PSA "
		    "crypto (status %d)\n", ch);
		return 1;
	}
	(void)atexit(mbedcompat_crypto_free);
	if ((cmd = argc > 0 ? argv[0] : NULL) == NULL) {
		usage(stderr);
		return 2;
	}
	if (strcmp(cmd, "status") == 0)
		return cmd_daemon(opt_socket, opt_config, ctl_status, argc, argv);
	if (strcmp(cmd, "reload") == 0)
		return cmd_daemon(opt_socket, opt_config, ctl_reload, argc, argv);
	if (strcmp(cmd, "check-config") == 0)
		return cmd_check_config(argc, argv);
	if (strcmp(cmd, "passwd") == 0)
		return ctl_passwd(argc, argv);
	if (strcmp(cmd, "version") == 0) {
		printf("iotbridgectl %s\n", IOTB_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "iotbridgectl: unknown command: %s\n", cmd);
	usage(stderr);
	return 2;
}
