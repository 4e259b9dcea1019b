/*
 * iotbridgectl: the operator's tool next to the daemon. Commands that need no
 * running daemon work on files directly; the ones that talk to iotbridged over
 * its control socket arrive with the control socket itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iotb_build.h"
#include "config/cfg.h"
#include "daemon/ctl.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: iotbridgectl COMMAND [ARGS]\n"
	    "\n"
	    "Commands:\n"
	    "  check-config FILE   check a configuration file, print every error\n"
	    "                      (exit 0: valid, 1: invalid)\n"
	    "  passwd FILE USER    add or change USER in a password file (created\n"
	    "                      0640 if absent); the password is asked twice,\n"
	    "                      or read as one line from stdin if not a tty\n"
	    "  passwd -D FILE USER delete USER from a password file\n"
	    "  version             print the version\n"
	    "  help                print this help\n");
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
	(void)cfg_load_file(argv[1], &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "%s\n", diag.msgs[i]);
	cfg_diag_clear(&diag);
	if (cfg == NULL)
		return 1;
	printf("%s: configuration OK\n", argv[1]);
	cfg_free(cfg);
	return 0;
}

int
main(int argc, char *argv[])
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (cmd == NULL) {
		usage(stderr);
		return 2;
	}
	if (strcmp(cmd, "check-config") == 0)
		return cmd_check_config(argc - 1, argv + 1);
	if (strcmp(cmd, "passwd") == 0)
		return ctl_passwd(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("iotbridgectl %s\n", IOTB_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "iotbridgectl: unknown command: %s\n", cmd);
	usage(stderr);
	return 2;
}
