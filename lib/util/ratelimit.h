/*
 * Token bucket for flow control: AWS IoT's per-connection publish rate and
 * bandwidth, the queue's drain rate, and rate-limited log lines. A bucket holds
 * up to `burst` tokens and refills at `rate` tokens per second; callers ask how
 * long to wait instead of being refused, because flow control waits, it does not
 * drop. Integer arithmetic in millionths of a token; time comes from the caller
 * as a monotonic microsecond count.
 */
#ifndef IOTB_RATELIMIT_H
#define IOTB_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit {
	uint64_t	rate;		/* tokens per second; 0: unlimited */
	uint64_t	burst;		/* bucket size in tokens, >= 1 */
	uint64_t	level;		/* millionths of a token */
	uint64_t	last_us;	/* time of the last refill */
};

/* A full bucket at now_us. burst 0 is taken as 1. */
void	ratelimit_init(struct ratelimit *rl, uint64_t rate, uint64_t burst,
	    uint64_t now_us);

/*
 * Take n tokens if the bucket holds them now; false leaves it unchanged. A
 * request larger than the bucket is served once the bucket is full (and empties
 * it), so one big message waits instead of blocking forever.
 */
bool	ratelimit_take(struct ratelimit *rl, uint64_t n, uint64_t now_us);

/* Microseconds until ratelimit_take(rl, n, ...) will succeed; 0 when it would now. */
uint64_t ratelimit_delay_us(struct ratelimit *rl, uint64_t n, uint64_t now_us);

#endif
