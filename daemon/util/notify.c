/*
 * Thin wrapper over libsystemd's sd_notify so the rest of the daemon has no
 * #ifdefs. Notification failures are not errors: outside systemd there is no
 * NOTIFY_SOCKET and sd_notify returns 0.
 */
#include "daemon/util/notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "iotb_build.h"

#if IOTB_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#define NOTIFY(msg) ((void)sd_notify(0, (msg)))
#else
#define NOTIFY(msg) ((void)(msg))
#endif

void
notify_ready(const char *status)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
	NOTIFY(msg);
}

void
notify_status(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	n = snprintf(msg, sizeof(msg), "STATUS=");
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	NOTIFY(msg);
}

void
notify_reloading(void)
{
	struct timespec ts;
	char msg[128];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000ULL);
	NOTIFY(msg);
}

void
notify_stopping(void)
{
	NOTIFY("STOPPING=1");
}

void
notify_watchdog(void)
{
	NOTIFY("WATCHDOG=1");
}

uint64_t
notify_watchdog_interval(void)
{
#if IOTB_HAVE_SYSTEMD
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
		return usec / 2;
#endif
	return 0;
}
