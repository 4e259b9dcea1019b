/*
 * systemd readiness protocol (sd_notify) and the service watchdog. Built without
 * libsystemd, every call is a no-op and the watchdog is never armed.
 */
#ifndef IOTB_NOTIFY_H
#define IOTB_NOTIFY_H

#include <stdint.h>

/* READY=1 with a STATUS= line: after config, bind and queue recovery. */
void	notify_ready(const char *status);
/* STATUS= one-line state, shown by systemctl status. */
void	notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* RELOADING=1 (with MONOTONIC_USEC, as systemd's notify-reload wants). */
void	notify_reloading(void);
void	notify_stopping(void);
/* WATCHDOG=1. Call from the event loop only, so a stuck loop stops the pings. */
void	notify_watchdog(void);
/* Microseconds between pings (half of WATCHDOG_USEC), 0 when there is no watchdog. */
uint64_t notify_watchdog_interval(void);

#endif
