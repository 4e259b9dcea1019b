/*
 * The daemon's clocks, in the units its modules count in. Monotonic time for
 * timeouts, rates and ages (immune to NTP steps, which a Pi without RTC takes
 * at boot); wall time only where a date is stored or shown.
 */
#ifndef IOTB_CLOCK_H
#define IOTB_CLOCK_H

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

static inline uint64_t
clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static inline uint64_t
clock_mono_ms(void)
{
	return clock_mono_us() / 1000;
}

static inline uint64_t
clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ms as the struct timeval that event_add() takes. */
static inline struct timeval
clock_tv(uint64_t ms)
{
	return (struct timeval){
		.tv_sec = (time_t)(ms / 1000),
		.tv_usec = (suseconds_t)(ms % 1000) * 1000,
	};
}

#endif
