/*
 * Progressive reconnect backoff as in the AWS IoT Device SDK: the n-th retry
 * waits t = min(2^n * base, max), and n goes back to 0 once a connection has
 * stayed up for `stable`. Jitter takes up to a quarter off t so that a fleet of
 * gateways does not reconnect in lockstep after an outage, while the delay never
 * exceeds the formula's value (operators can reason about the worst case).
 * Time and randomness come from the caller.
 */
#ifndef IOTB_BACKOFF_H
#define IOTB_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

struct backoff {
	uint64_t	base_ms;
	uint64_t	max_ms;
	uint64_t	stable_ms;
	bool		jitter;
	unsigned	attempt;	/* retries since the last stable connection */
};

/* Set the parameters (base_ms <= max_ms, base_ms > 0) and start at attempt 0. */
void	backoff_init(struct backoff *b, uint64_t base_ms, uint64_t max_ms,
	    uint64_t stable_ms, bool jitter);

/* The formula's delay for the current attempt, without jitter. */
uint64_t backoff_peek(const struct backoff *b);

/*
 * The delay before the next attempt, in ms, and count the attempt. rnd is a
 * uniformly random 32-bit value (ignored without jitter). The result lies in
 * [3/4 t, t] with jitter, exactly t without.
 */
uint64_t backoff_next(struct backoff *b, uint32_t rnd);

/*
 * A connection ended after being up for up_ms: when that reached stable_ms the
 * next delay is base again. Returns true when it reset.
 */
bool	backoff_connection_ended(struct backoff *b, uint64_t up_ms);

/* Skip to the maximum delay (e.g. another device is using our client id). */
void	backoff_to_max(struct backoff *b);

#endif
