/*
 * The delay between connections, decided in one place: the backoff formula
 * (backoff.h), its reset after a stable connection, the immediate retry of a
 * planned reconnect or of a cause that was fixed, the escalation when AWS
 * keeps closing connections right after CONNACK (its answer to a second
 * client with the same id), and the pacing AWS wants between CONNECTs of one
 * client id.
 */
#include "mqttc/mqttc.h"

void
mqttc_retry_init(struct mqttc_retry *r, uint64_t base_ms, uint64_t max_ms,
    uint64_t stable_ms, bool jitter)
{
	backoff_init(&r->bo, base_ms, max_ms, stable_ms, jitter);
	r->short_lived = 0;
	r->dup_warned = false;
}

void
mqttc_retry_params(struct mqttc_retry *r, uint64_t base_ms, uint64_t max_ms,
    uint64_t stable_ms, bool jitter)
{
	unsigned attempt = r->bo.attempt;

	backoff_init(&r->bo, base_ms, max_ms, stable_ms, jitter);
	r->bo.attempt = attempt;
}

void
mqttc_retry_next(struct mqttc_retry *r, enum mqttc_end end, bool was_up,
    uint64_t up_ms, uint64_t since_attempt_ms, uint32_t rnd,
    struct mqttc_wait *w)
{
	*w = (struct mqttc_wait){ 0 };
	if (was_up) {
		(void)backoff_connection_ended(&r->bo, up_ms);
		if (end == MQTTC_END_LOST && up_ms < MQTTC_SHORT_LIVED_MS)
			r->short_lived++;
		else
			r->short_lived = 0;
	}
	if (r->short_lived >= MQTTC_SHORT_LIVED_MAX) {
		w->duplicate = true;
		w->warn = !r->dup_warned;
		r->dup_warned = true;
		backoff_to_max(&r->bo);
	}
	if (end == MQTTC_END_PLANNED || end == MQTTC_END_RETRY)
		w->delay_ms = 0;
	else
		w->delay_ms = backoff_next(&r->bo, rnd);
	if (since_attempt_ms < MQTTC_CONNECT_PACE_MS &&
	    w->delay_ms < MQTTC_CONNECT_PACE_MS - since_attempt_ms)
		w->delay_ms = MQTTC_CONNECT_PACE_MS - since_attempt_ms;
}
