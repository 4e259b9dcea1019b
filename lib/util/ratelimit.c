/*
 * The bucket level is in millionths of a token so that a rate of, say, 50 per
 * second refills 50 millionths per microsecond with no rounding drift. Elapsed
 * time is clamped to what fills the bucket, which keeps the multiplication far
 * from overflow whatever the gap between calls.
 */
#include "util/ratelimit.h"

#define MICRO 1000000ULL

static uint64_t
cap_of(const struct ratelimit *rl)
{
	return rl->burst * MICRO;
}

/* Tokens (in millionths) a request of n needs: never more than the bucket holds. */
static uint64_t
need_of(const struct ratelimit *rl, uint64_t n)
{
	return (n < rl->burst ? n : rl->burst) * MICRO;
}

static void
refill(struct ratelimit *rl, uint64_t now_us)
{
	uint64_t dt, room;

	if (now_us <= rl->last_us)
		return;		/* a clock that did not move, or went back */
	dt = now_us - rl->last_us;
	rl->last_us = now_us;
	room = cap_of(rl) - rl->level;
	if (dt >= room / rl->rate + 1)
		rl->level = cap_of(rl);
	else
		rl->level += dt * rl->rate;
}

void
ratelimit_init(struct ratelimit *rl, uint64_t rate, uint64_t burst,
    uint64_t now_us)
{
	rl->rate = rate;
	rl->burst = burst > 0 ? burst : 1;
	rl->level = cap_of(rl);
	rl->last_us = now_us;
}

bool
ratelimit_take(struct ratelimit *rl, uint64_t n, uint64_t now_us)
{
	uint64_t need;

	if (rl->rate == 0)
		return true;
	refill(rl, now_us);
	need = need_of(rl, n);
	if (rl->level < need)
		return false;
	rl->level -= need;
	return true;
}

uint64_t
ratelimit_delay_us(struct ratelimit *rl, uint64_t n, uint64_t now_us)
{
	uint64_t need, missing;

	if (rl->rate == 0)
		return 0;
	refill(rl, now_us);
	need = need_of(rl, n);
	if (rl->level >= need)
		return 0;
	missing = need - rl->level;
	return (missing + rl->rate - 1) / rl->rate;	/* round up */
}
