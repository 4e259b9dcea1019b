/*
 * Exponential backoff with a cap and a stability reset. The attempt counter is
 * clamped at the first n where 2^n * base reaches max, so the shift can never
 * overflow however long the uplink stays down.
 */
#include "util/backoff.h"

void
backoff_init(struct backoff *b, uint64_t base_ms, uint64_t max_ms,
    uint64_t stable_ms, bool jitter)
{
	b->base_ms = base_ms > 0 ? base_ms : 1;
	b->max_ms = max_ms >= b->base_ms ? max_ms : b->base_ms;
	b->stable_ms = stable_ms;
	b->jitter = jitter;
	b->attempt = 0;
}

uint64_t
backoff_peek(const struct backoff *b)
{
	uint64_t t = b->base_ms;

	for (unsigned i = 0; i < b->attempt && t < b->max_ms; i++)
		t = t > b->max_ms / 2 ? b->max_ms : t * 2;
	return t < b->max_ms ? t : b->max_ms;
}

uint64_t
backoff_next(struct backoff *b, uint32_t rnd)
{
	uint64_t t = backoff_peek(b), q = t / 4;

	if (t < b->max_ms)
		b->attempt++;
	if (!b->jitter)
		return t;
	/* take off q * rnd / 2^32, in [0, q), without overflowing 64 bits */
	return t - (q <= UINT32_MAX ? q * rnd >> 32 : (q >> 32) * rnd);
}

bool
backoff_connection_ended(struct backoff *b, uint64_t up_ms)
{
	if (up_ms < b->stable_ms)
		return false;
	b->attempt = 0;
	return true;
}

void
backoff_to_max(struct backoff *b)
{
	while (backoff_peek(b) < b->max_ms)
		b->attempt++;
}
