/*
 * iotbridged: arguments, the event loop, signals, configuration reload and the
 * systemd protocol. Runs in the foreground only; systemd (Type=notify) or the
 * operator's shell supervises it. This file owns the daemon's lifetime; the
 * LAN broker, uplink and queue hang off the event base it creates.
 */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "iotb_build.h"
#include "base/mbedcompat.h"
#include "config/cfg.h"
#include "daemon/aws/bridge.h"
#include "daemon/broker/broker.h"
#include "daemon/ops/control.h"
#include "daemon/util/log.h"
#include "daemon/ops/metrics.h"
#include "daemon/util/notify.h"
#include "daemon/util/tls.h"

#define DEFAULT_CONFIG IOTB_SYSCONFDIR "/iotbridge.yaml"

struct daemon {
	struct event_base	*base;
	struct event		*ev_sigterm;
	struct event		*ev_sigint;
	struct event		*ev_sighup;
	struct event		*ev_watchdog;
	struct event		*ev_status;	/* keeps STATUS= current */
	char			 last_status[320];
	struct cfg		*cfg;
	struct broker		*broker;
	struct bridge		*bridge;
	struct control		*control;	/* NULL: out of memory at start */
	struct metrics		*metrics;
	const char		*cfg_path;
	int			 verbose;	/* number of -v given */
	time_t			 started;
	unsigned		 reloads;
	bool			 reload_failed;	/* until a reload succeeds */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: iotbridged [-v] [-c FILE] [--check-config]\n"
	    "\n"
	    "MQTT broker for LAN devices, bridged to AWS IoT Core.\n"
	    "\n"
	    "  -c, --config FILE   configuration file (default %s)\n"
	    "                      and the *.yaml drop-ins of the conf.d next to it\n"
	    "  -t, --check-config  check the configuration, print every error, exit\n"
	    "                      (0: valid, 1: invalid; with -v print the effective\n"
	    "                      configuration and the file and line of each value)\n"
	    "  -v, --verbose       one more level of logging than log.level (repeatable)\n"
	    "  -V, --version       print the version and exit\n"
	    "  -h, --help          print this help and exit\n"
	    "\n"
	    "Exit status: 0 stopped; 78 invalid configuration at start; 1 other\n"
	    "start-up failures; 2 bad command line.\n"
	    "\n"
	    "Signals: SIGHUP reloads the configuration (an invalid one is refused and\n"
	    "the running one kept), SIGTERM and SIGINT stop.\n",
	    DEFAULT_CONFIG);
}

/*
 * Load and validate a configuration file and the drop-ins of conf.d/ next to
 * it. On failure every error goes to the log (or to stderr for
 * --check-config) and NULL is returned; the caller keeps whatever it was
 * running with. keep (may be NULL) also receives the errors, for the control
 * socket to answer with.
 */
static struct cfg *
config_load(const char *path, unsigned flags, bool to_stderr,
    struct cfg_diag *keep)
{
	struct cfg_diag own = { 0 }, *diag = keep != NULL ? keep : &own;
	size_t first = diag->count;
	struct cfg *cfg = NULL;

	(void)cfg_load(path, CFG_LOAD_DROPINS | flags, &cfg, diag);
	for (size_t i = first; i < diag->count; i++) {
		if (to_stderr)
			fprintf(stderr, "%s\n", diag->msgs[i]);
		else
			log_warnx("%s", diag->msgs[i]);
	}
	cfg_diag_clear(&own);
	return cfg;
}

static enum log_level
effective_level(const struct daemon *d)
{
	/* cfg's levels run error..debug in the same order as syslog's */
	int level = LOG_L_ERR + (int)d->cfg->log.level + d->verbose;

	return level > LOG_L_DEBUG ? LOG_L_DEBUG : (enum log_level)level;
}

/*
 * One line for STATUS= and the log: what the daemon is doing right now. A
 * refused reload stays in it until a reload succeeds: the operator who runs
 * systemctl status a minute later must still see that the file on disk is
 * not what runs.
 */
static void
daemon_status(const struct daemon *d, char *buf, size_t cap)
{
	char broker[160], bridge[96];

	broker_summary(d->broker, broker, sizeof(broker));
	bridge_summary(d->bridge, bridge, sizeof(bridge));
	snprintf(buf, cap, "running: %s; %s%s", broker, bridge,
	    d->reload_failed ? " (last reload failed: invalid configuration)" :
	    "");
}

/* Keys in a file others can read are no secret: say so, every start. */
static void
secrets_check(const char *path, const struct cfg *cfg)
{
	const struct cfg_credentials *c = &cfg->aws.credentials;
	struct stat sb;

	if (!cfg->aws.present)
		return;
	if (c->source == CFG_CRED_STATIC)
		;
	else if (c->source == CFG_CRED_PROFILE)
		path = c->file;
	else
		return;
	if (stat(path, &sb) == 0 && (sb.st_mode & S_IROTH))
		log_warnx("%s holds AWS credentials and is readable by every "
		    "user: chmod o-r %s", path, path);
}

static void
daemon_log_config(const struct daemon *d)
{
	char *text;

	log_info("config file=%s log.level=%s listeners=%zu aws=%s "
	    "queue.dir=%s bridge_rules=%zu", d->cfg_path,
	    log_level_name(LOG_L_ERR + (int)d->cfg->log.level),
	    d->cfg->nlisteners,
	    d->cfg->aws.present ? d->cfg->aws.endpoint.host : "off",
	    d->cfg->queue.dir, d->cfg->nbridge);
	for (size_t i = 1; i < d->cfg->nfiles; i++)
		log_info("config drop-in file=%s", d->cfg->files[i]);
	if (log_getlevel() < LOG_L_DEBUG)
		return;
	/* The rendering hides secrets; log it line by line for the journal. */
	if ((text = cfg_describe(d->cfg)) == NULL)
		return;
	for (char *line = strtok(text, "\n"); line != NULL;
	    line = strtok(NULL, "\n"))
		log_debug("config: %s", line);
	free(text);
}

/*
 * SIGHUP, or "reload" on the control socket. Returns 0 when the new config
 * runs, 1 when some listener of it could not be bound, -1 when it was
 * refused; errors (may be NULL) then also receives the reasons.
 */
static int
daemon_reload(struct daemon *d, struct cfg_diag *errors)
{
	struct cfg *next;
	char status[sizeof(d->last_status)];
	int rc = 0;

	notify_reloading();
	log_info("reloading config file=%s", d->cfg_path);
	if ((next = config_load(d->cfg_path, 0, false, errors)) == NULL) {
		log_warnx("reload failed, keeping the running configuration");
		d->reload_failed = true;
		daemon_status(d, status, sizeof(status));
		/* one datagram, so READY=1 never arrives without the warning */
		notify_ready(status);
		memcpy(d->last_status, status, sizeof(d->last_status));
		return -1;
	}
	if (broker_reload(d->broker, next) == -1) {
		log_warnx("reload: some listeners could not be applied");
		rc = 1;
	}
	secrets_check(d->cfg_path, next);
	if (bridge_reload(d->bridge, next) == -1)
		rc = 1;		/* logged: the queue or the uplink is down */
	cfg_free(d->cfg);
	d->cfg = next;
	d->reloads++;
	d->reload_failed = false;
	log_setlevel(effective_level(d));
	if (d->control != NULL)
		control_reload(d->control, d->cfg->control.socket);
	if (d->metrics != NULL)
		metrics_reload(d->metrics, &d->cfg->metrics.listen);
	log_info("configuration reloaded");
	daemon_log_config(d);
	daemon_status(d, status, sizeof(status));
	notify_ready(status);
	memcpy(d->last_status, status, sizeof(d->last_status));
	return rc;
}

/* systemctl status shows STATUS=: say when the uplink or the queue moved. */
static void
on_status_tick(evutil_socket_t fd, short events, void *arg)
{
	struct daemon *d = arg;
	char status[sizeof(d->last_status)];

	daemon_status(d, status, sizeof(status));
	if (strcmp(status, d->last_status) != 0) {
		memcpy(d->last_status, status, sizeof(status));
		notify_status("%s", status);
	}
}

static int
on_control_reload(void *arg, struct cfg_diag *errors)
{
	return daemon_reload(arg, errors);
}

static void
on_signal(evutil_socket_t sig, short events, void *arg)
{
	struct daemon *d = arg;

	switch (sig) {
	case SIGHUP:
		(void)daemon_reload(d, NULL);
		break;
	case SIGTERM:
	case SIGINT:
		log_info("stopping signal=%s", sig == SIGTERM ? "SIGTERM" :
		    "SIGINT");
		notify_stopping();
		event_base_loopbreak(d->base);
		break;
	}
}

static void
on_watchdog(evutil_socket_t fd, short events, void *arg)
{
	notify_watchdog();
}

/* libevent's own warnings belong in our log, not on a bare stderr. */
static void
on_libevent_log(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_debug("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		log_info("libevent: %s", msg);
		break;
	default:
		log_warnx("libevent: %s", msg);
		break;
	}
}

static int
daemon_setup(struct daemon *d)
{
	struct event_config *ec;
	uint64_t wd;

	event_set_log_callback(on_libevent_log);
	/* Rate limits and the drain wait in milliseconds: libevent's default
	 * coarse clock ticks every 4 ms, which would cap sending at ~250/s. */
	if ((ec = event_config_new()) == NULL ||
	    event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER) == -1 ||
	    (d->base = event_base_new_with_config(ec)) == NULL)
		fatalx("cannot create the event loop");
	event_config_free(ec);
	d->ev_sigterm = evsignal_new(d->base, SIGTERM, on_signal, d);
	d->ev_sigint = evsignal_new(d->base, SIGINT, on_signal, d);
	d->ev_sighup = evsignal_new(d->base, SIGHUP, on_signal, d);
	if (d->ev_sigterm == NULL || d->ev_sigint == NULL ||
	    d->ev_sighup == NULL || evsignal_add(d->ev_sigterm, NULL) == -1 ||
	    evsignal_add(d->ev_sigint, NULL) == -1 ||
	    evsignal_add(d->ev_sighup, NULL) == -1)
		fatalx("cannot install signal handlers");
	signal(SIGPIPE, SIG_IGN);

	if ((wd = notify_watchdog_interval()) > 0) {
		struct timeval tv = {
			.tv_sec = (time_t)(wd / 1000000),
			.tv_usec = (suseconds_t)(wd % 1000000),
		};

		d->ev_watchdog = event_new(d->base, -1, EV_PERSIST,
		    on_watchdog, d);
		if (d->ev_watchdog == NULL ||
		    event_add(d->ev_watchdog, &tv) == -1)
			fatalx("cannot arm the watchdog timer");
	}
	return 0;
}

static void
daemon_teardown(struct daemon *d)
{
	if (d->ev_watchdog != NULL)
		event_free(d->ev_watchdog);
	if (d->ev_status != NULL)
		event_free(d->ev_status);
	if (d->ev_sighup != NULL)
		event_free(d->ev_sighup);
	if (d->ev_sigint != NULL)
		event_free(d->ev_sigint);
	if (d->ev_sigterm != NULL)
		event_free(d->ev_sigterm);
	control_free(d->control);
	metrics_free(d->metrics);
	broker_set_bridge(d->broker, NULL);
	bridge_free(d->bridge);		/* flushes and checkpoints the queue */
	broker_free(d->broker);
	tls_shutdown();		/* connections still saying close_notify */
	if (d->base != NULL) {
		/* bufferevents with deferred callbacks (TLS) finish freeing
		 * from the loop: let it run what is due once more */
		(void)event_base_loop(d->base, EVLOOP_NONBLOCK);
		(void)event_base_loop(d->base, EVLOOP_NONBLOCK);
		event_base_free(d->base);
	}
	cfg_free(d->cfg);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config",	  required_argument, NULL, 'c' },
		{ "check-config", no_argument,	     NULL, 't' },
		{ "verbose",	  no_argument,	     NULL, 'v' },
		{ "version",	  no_argument,	     NULL, 'V' },
		{ "help",	  no_argument,	     NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon d = { .cfg_path = DEFAULT_CONFIG };
	bool check_only = false;
	char status[320];
	int ch;

	while ((ch = getopt_long(argc, argv, "c:tvVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d.cfg_path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'v':
			d.verbose++;
			break;
		case 'V':
			printf("iotbridged %s (%s)\n", IOTB_VERSION,
			    tls_library());
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "iotbridged: unexpected argument: %s\n",
		    argv[optind]);
		usage(stderr);
		return 2;
	}

	/* mbedTLS 3.6 does TLS 1.3 through PSA crypto: once, before any use */
	if ((ch = mbedcompat_crypto_init()) != 0) {
		fprintf(stderr, "iotbridged: cannot initialise mbedTLS's PSA "
		    "crypto (status %d)\n", ch);
		return 1;
	}
	(void)atexit(mbedcompat_crypto_free);

	if (check_only) {
		if ((d.cfg = config_load(d.cfg_path, d.verbose > 0 ?
		    CFG_LOAD_ORIGINS : 0, true, NULL)) == NULL)
			return 1;
		printf("%s: configuration OK\n", d.cfg_path);
		if (d.verbose > 0) {
			char *text = cfg_describe_origins(d.cfg);

			if (text != NULL)
				fputs(text, stdout);
			free(text);
		}
		cfg_free(d.cfg);
		return 0;
	}

	log_init("iotbridged", LOG_L_INFO);
	/* AWS keys and session tokens live in this process's memory: no core
	 * dump, and no ptrace by other processes of the same user. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		log_warn("prctl(PR_SET_DUMPABLE)");
	/* Signals first: a SIGHUP or SIGTERM sent while we start up is queued
	 * for the loop instead of killing the process with the default action. */
	daemon_setup(&d);
	if ((d.cfg = config_load(d.cfg_path, 0, false, NULL)) == NULL) {
		/* EX_CONFIG: the unit's RestartPreventExitStatus= stops here,
		 * since restarting cannot fix the file; other start-up failures
		 * (exit 1) are retried */
		log_msg(LOG_L_ERR, "invalid configuration file=%s, not starting",
		    d.cfg_path);
		notify_status("invalid configuration file=%s, not starting (see "
		    "the log)", d.cfg_path);
		exit(EX_CONFIG);
	}
	log_setlevel(effective_level(&d));
	log_info("iotbridged %s starting (%s)", IOTB_VERSION, tls_library());
	d.started = time(NULL);
	daemon_log_config(&d);
	if (d.ev_watchdog != NULL)
		log_info("watchdog ping every %llu ms",
		    (unsigned long long)(notify_watchdog_interval() / 1000));
	/* READY=1 only once the listeners are bound: devices can connect */
	if ((d.broker = broker_new(d.base, d.cfg)) == NULL)
		fatalx("cannot start the broker");
	secrets_check(d.cfg_path, d.cfg);
	if ((d.bridge = bridge_new(d.base, d.cfg, d.broker)) == NULL)
		fatalx("cannot start the bridge");
	broker_set_bridge(d.broker, d.bridge);
	/* neither is fatal: without them the gateway still does its job */
	if ((d.control = control_new(d.base, d.cfg->control.socket, d.cfg_path,
	    d.broker, d.bridge, on_control_reload, &d)) == NULL ||
	    (d.metrics = metrics_new(d.base, &d.cfg->metrics.listen, d.broker,
	    d.bridge)) == NULL)
		fatalx("out of memory");

	daemon_status(&d, status, sizeof(status));
	log_info("ready: %s", status);
	notify_ready(status);
	memcpy(d.last_status, status, sizeof(d.last_status));
	{
		struct timeval tv = { 5, 0 };

		if ((d.ev_status = event_new(d.base, -1, EV_PERSIST,
		    on_status_tick, &d)) != NULL)
			event_add(d.ev_status, &tv);
	}

	if (event_base_dispatch(d.base) == -1)
		log_warnx("event loop failed");

	daemon_teardown(&d);
	log_info("stopped");
	return 0;
}
