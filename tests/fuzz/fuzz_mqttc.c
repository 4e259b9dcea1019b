/*
 * libFuzzer target for the MQTT client session's bookkeeping
 * (lib/mqttc/mqttc.c): the input is a program of operations (add, ack,
 * cancel, reset, QoS 0 add and pop, time passing, keepalive and timeout
 * questions) run against the table and against a naive model of it. Beyond
 * not crashing: no id is given twice or is 0, every answer returns the
 * cookie its packet was added with, an answer of the wrong kind or for an
 * unknown id changes nothing, counts, the oldest record and the first
 * cookie agree with the model, and an overdue answer really is.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mqttc/mqttc.h"

#define INPUT_MAX	4096

struct model {
	uint8_t		 kind[65536];	/* 0: free */
	uint64_t	 cookie[65536];
	uint64_t	 sent[65536];
	uint64_t	 order[65536];	/* when it was added: sending order */
	size_t		 n[MQTTC_NKINDS];
	uint64_t	 q0[INPUT_MAX];
	size_t		 q0head, q0n;
	uint64_t	 seq;
};

static struct model md;

static void
model_check(const struct mqttc *m)
{
	struct mqttc_op op;

	for (int k = MQTTC_PUBLISH; k < MQTTC_NKINDS; k++) {
		uint64_t best = UINT64_MAX;
		uint32_t at = 0;

		check(mqttc_count(m, (enum mqttc_kind)k) == md.n[k]);
		for (uint32_t p = 1; p < 65536; p++)
			if (md.kind[p] == k && md.order[p] < best) {
				best = md.order[p];
				at = p;
			}
		check(mqttc_oldest(m, (enum mqttc_kind)k, &op) == (at != 0));
		if (at != 0)
			check(op.pid == at && op.cookie == md.cookie[at]);
	}
	check(mqttc_qos0_count(m) == md.q0n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mqttc *m;
	uint64_t now = 0, cookie = 0, c, wait;
	struct mqttc_op op;
	uint16_t pid;

	if (size > INPUT_MAX || (m = mqttc_new()) == NULL)
		return 0;
	memset(&md, 0, sizeof(md));
	mqttc_set_timing(m, 30000, 5000);
	mqttc_reset(m, 0);
	for (size_t i = 0; i + 2 < size; i += 3) {
		uint16_t arg = (uint16_t)(data[i + 1] | data[i + 2] << 8);
		enum mqttc_kind k = data[i] & 1 ? MQTTC_SUBSCRIBE :
		    MQTTC_PUBLISH;

		switch (data[i] >> 1 & 7) {
		case 0:		/* add, many at once when asked */
			for (unsigned j = 0; j <= (arg & 0x3ff) % 64; j++) {
				if (mqttc_add(m, k, ++cookie, now, &pid) !=
				    MQTTC_OK)
					break;
				check(pid != 0 && md.kind[pid] == 0);
				md.kind[pid] = (uint8_t)k;
				md.cookie[pid] = cookie;
				md.sent[pid] = now;
				md.order[pid] = ++md.seq;
				md.n[k]++;
			}
			break;
		case 1:		/* an answer, right or wrong */
			if (md.kind[arg] == k && arg != 0) {
				check(mqttc_ack(m, k, arg, &op) == MQTTC_OK);
				check(op.cookie == md.cookie[arg] &&
				    op.pid == arg && op.kind == k &&
				    op.sent_ms == md.sent[arg]);
				md.kind[arg] = 0;
				md.n[k]--;
			} else {
				check(mqttc_ack(m, k, arg, &op) ==
				    MQTTC_UNKNOWN);
			}
			break;
		case 2:
			check(mqttc_cancel(m, arg) == (md.kind[arg] != 0 &&
			    arg != 0));
			if (arg != 0 && md.kind[arg] != 0) {
				md.n[md.kind[arg]]--;
				md.kind[arg] = 0;
			}
			break;
		case 3:
			if (arg % 16 == 0) {
				mqttc_reset(m, now);
				memset(md.kind, 0, sizeof(md.kind));
				memset(md.n, 0, sizeof(md.n));
				md.q0n = 0;
			} else {
				now += arg;
			}
			break;
		case 4:
			if (mqttc_add_qos0(m, ++cookie) == MQTTC_OK)
				md.q0[(md.q0head + md.q0n++) % INPUT_MAX] =
				    cookie;
			break;
		case 5:
			check(mqttc_qos0_pop(m, &c) == (md.q0n > 0));
			if (md.q0n > 0) {
				check(c == md.q0[md.q0head]);
				md.q0head = (md.q0head + 1) % INPUT_MAX;
				md.q0n--;
			}
			break;
		case 6:
			if (mqttc_keepalive(m, now, &wait) == MQTTC_KA_PING) {
				mqttc_sent(m, now);
				mqttc_ping_sent(m, now);
			} else if (arg & 1) {
				mqttc_pong(m);
			}
			break;
		case 7:
			if (mqttc_overdue(m, now, &op, &wait))
				check(now - op.sent_ms >= 5000);
			else
				check(wait == UINT64_MAX || (wait > 0 &&
				    wait <= 5000));
			break;
		}
		if (mqttc_first_cookie(m, &c))
			check(c <= cookie);
	}
	model_check(m);
	mqttc_free(m);
	return 0;
}
