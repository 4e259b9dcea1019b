/*
 * The session's records live in one table indexed by pid & (cap - 1). We
 * choose the ids, so we choose them to land on free slots: lookup is one
 * probe, and allocation steps past occupied slots, which stay few because
 * the table is kept at least twice as large as what it holds (up to the
 * 65536 slots that every id has one of its own in). Growing keeps ids and
 * order: ids distinct under a mask stay distinct under a wider one.
 */
#include "mqttc/mqttc.h"

#include <stdlib.h>
#include <string.h>

#define NIL		UINT32_MAX
#define CAP_MIN		16u
#define CAP_MAX		65536u

struct slot {
	uint64_t	cookie;
	uint64_t	sent_ms;
	uint32_t	prev, next;	/* in the kind's list, sending order */
	uint16_t	pid;		/* 0: free */
	uint8_t		kind;
};

struct list {
	uint32_t	head, tail;
	size_t		n;
};

struct mqttc {
	struct slot	*slots;
	uint32_t	 cap;		/* a power of two, CAP_MIN..CAP_MAX */
	size_t		 count;
	struct list	 lists[MQTTC_NKINDS];
	uint16_t	 last_pid;
	uint64_t	*q0;		/* QoS 0 cookies, a ring */
	size_t		 q0cap, q0head, q0n;
	uint64_t	 keepalive_ms, op_timeout_ms;
	uint64_t	 last_sent_ms, ping_sent_ms;
	bool		 ping_pending;
};

static void
lists_init(struct mqttc *m)
{
	for (int k = 0; k < MQTTC_NKINDS; k++)
		m->lists[k] = (struct list){ NIL, NIL, 0 };
}

struct mqttc *
mqttc_new(void)
{
	struct mqttc *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	if ((m->slots = calloc(CAP_MIN, sizeof(*m->slots))) == NULL) {
		free(m);
		return NULL;
	}
	m->cap = CAP_MIN;
	lists_init(m);
	return m;
}

void
mqttc_free(struct mqttc *m)
{
	if (m == NULL)
		return;
	free(m->slots);
	free(m->q0);
	free(m);
}

void
mqttc_set_timing(struct mqttc *m, uint64_t keepalive_ms, uint64_t op_timeout_ms)
{
	m->keepalive_ms = keepalive_ms;
	m->op_timeout_ms = op_timeout_ms;
}

void
mqttc_reset(struct mqttc *m, uint64_t now_ms)
{
	memset(m->slots, 0, m->cap * sizeof(*m->slots));
	m->count = 0;
	lists_init(m);
	m->q0head = m->q0n = 0;
	m->ping_pending = false;
	m->last_sent_ms = now_ms;
}

static void
link_tail(struct mqttc *m, uint32_t i)
{
	struct slot *s = &m->slots[i];
	struct list *l = &m->lists[s->kind];

	s->prev = l->tail;
	s->next = NIL;
	if (l->tail != NIL)
		m->slots[l->tail].next = i;
	else
		l->head = i;
	l->tail = i;
	l->n++;
}

static void
unlink_slot(struct mqttc *m, uint32_t i)
{
	struct slot *s = &m->slots[i];
	struct list *l = &m->lists[s->kind];

	if (s->prev != NIL)
		m->slots[s->prev].next = s->next;
	else
		l->head = s->next;
	if (s->next != NIL)
		m->slots[s->next].prev = s->prev;
	else
		l->tail = s->prev;
	l->n--;
	memset(s, 0, sizeof(*s));
	m->count--;
}

/* Twice the slots; every list is rebuilt in its order. */
static bool
grow(struct mqttc *m)
{
	uint32_t ncap = m->cap * 2, mask = ncap - 1;
	struct slot *old = m->slots, *ns;
	struct list ol[MQTTC_NKINDS];

	if ((ns = calloc(ncap, sizeof(*ns))) == NULL)
		return false;
	memcpy(ol, m->lists, sizeof(ol));
	m->slots = ns;
	m->cap = ncap;
	m->count = 0;
	lists_init(m);
	for (int k = 0; k < MQTTC_NKINDS; k++) {
		for (uint32_t i = ol[k].head; i != NIL; i = old[i].next) {
			uint32_t j = old[i].pid & mask;

			ns[j] = old[i];
			link_tail(m, j);
			m->count++;
		}
	}
	free(old);
	return true;
}

enum mqttc_status
mqttc_add(struct mqttc *m, enum mqttc_kind kind, uint64_t cookie,
    uint64_t now_ms, uint16_t *pid)
{
	uint32_t mask, i;
	uint16_t p;

	if (m->count >= MQTTC_MAX_INFLIGHT)
		return MQTTC_FULL;
	if ((m->count + 1) * 2 > m->cap && m->cap < CAP_MAX && !grow(m))
		return MQTTC_NOMEM;
	mask = m->cap - 1;
	/* fewer records than slots: some id among the next cap lands free */
	p = m->last_pid;
	do {
		if (++p == 0)
			p = 1;
		i = p & mask;
	} while (m->slots[i].pid != 0);
	m->last_pid = p;
	m->slots[i] = (struct slot){ .cookie = cookie, .sent_ms = now_ms,
	    .pid = p, .kind = (uint8_t)kind };
	link_tail(m, i);
	m->count++;
	*pid = p;
	return MQTTC_OK;
}

static void
op_of(const struct slot *s, struct mqttc_op *op)
{
	if (op != NULL)
		*op = (struct mqttc_op){ .kind = (enum mqttc_kind)s->kind,
		    .pid = s->pid, .cookie = s->cookie, .sent_ms = s->sent_ms };
}

bool
mqttc_cancel(struct mqttc *m, uint16_t pid)
{
	uint32_t i = pid & (m->cap - 1);

	if (pid == 0 || m->slots[i].pid != pid)
		return false;
	unlink_slot(m, i);
	return true;
}

enum mqttc_status
mqttc_ack(struct mqttc *m, enum mqttc_kind kind, uint16_t pid,
    struct mqttc_op *op)
{
	uint32_t i = pid & (m->cap - 1);

	if (pid == 0 || kind == MQTTC_PING || m->slots[i].pid != pid ||
	    m->slots[i].kind != kind)
		return MQTTC_UNKNOWN;
	op_of(&m->slots[i], op);
	unlink_slot(m, i);
	return MQTTC_OK;
}

size_t
mqttc_count(const struct mqttc *m, enum mqttc_kind kind)
{
	if (kind == MQTTC_PING)
		return m->ping_pending ? 1 : 0;
	return kind < MQTTC_NKINDS ? m->lists[kind].n : 0;
}

bool
mqttc_oldest(const struct mqttc *m, enum mqttc_kind kind, struct mqttc_op *op)
{
	if (kind == MQTTC_PING) {
		if (m->ping_pending && op != NULL)
			*op = (struct mqttc_op){ .kind = MQTTC_PING,
			    .sent_ms = m->ping_sent_ms };
		return m->ping_pending;
	}
	if (kind >= MQTTC_NKINDS || m->lists[kind].head == NIL)
		return false;
	op_of(&m->slots[m->lists[kind].head], op);
	return true;
}

enum mqttc_status
mqttc_add_qos0(struct mqttc *m, uint64_t cookie)
{
	if (m->q0n == m->q0cap) {
		size_t ncap = m->q0cap ? m->q0cap * 2 : 64;
		uint64_t *n;

		if ((n = malloc(ncap * sizeof(*n))) == NULL)
			return MQTTC_NOMEM;
		/* unroll the ring into the front of the new one */
		for (size_t i = 0; i < m->q0n; i++)
			n[i] = m->q0[(m->q0head + i) % m->q0cap];
		free(m->q0);
		m->q0 = n;
		m->q0cap = ncap;
		m->q0head = 0;
	}
	m->q0[(m->q0head + m->q0n) % m->q0cap] = cookie;
	m->q0n++;
	return MQTTC_OK;
}

bool
mqttc_qos0_pop(struct mqttc *m, uint64_t *cookie)
{
	if (m->q0n == 0)
		return false;
	*cookie = m->q0[m->q0head];
	m->q0head = (m->q0head + 1) % m->q0cap;
	m->q0n--;
	return true;
}

size_t
mqttc_qos0_count(const struct mqttc *m)
{
	return m->q0n;
}

bool
mqttc_first_cookie(const struct mqttc *m, uint64_t *cookie)
{
	const struct list *l = &m->lists[MQTTC_PUBLISH];
	bool any = false;

	if (l->head != NIL) {
		*cookie = m->slots[l->head].cookie;
		any = true;
	}
	if (m->q0n > 0 && (!any || m->q0[m->q0head] < *cookie)) {
		*cookie = m->q0[m->q0head];
		any = true;
	}
	return any;
}

void
mqttc_sent(struct mqttc *m, uint64_t now_ms)
{
	m->last_sent_ms = now_ms;
}

enum mqttc_ka
mqttc_keepalive(const struct mqttc *m, uint64_t now_ms, uint64_t *wait_ms)
{
	uint64_t idle;

	if (m->keepalive_ms == 0) {
		*wait_ms = UINT64_MAX;
		return MQTTC_KA_WAIT;
	}
	if (m->ping_pending) {
		*wait_ms = m->keepalive_ms;
		return MQTTC_KA_WAIT;
	}
	idle = now_ms > m->last_sent_ms ? now_ms - m->last_sent_ms : 0;
	if (idle >= m->keepalive_ms) {
		*wait_ms = m->keepalive_ms;
		return MQTTC_KA_PING;
	}
	*wait_ms = m->keepalive_ms - idle;
	return MQTTC_KA_WAIT;
}

void
mqttc_ping_sent(struct mqttc *m, uint64_t now_ms)
{
	m->ping_pending = true;
	m->ping_sent_ms = now_ms;
}

void
mqttc_pong(struct mqttc *m)
{
	m->ping_pending = false;
}

bool
mqttc_overdue(const struct mqttc *m, uint64_t now_ms, struct mqttc_op *late,
    uint64_t *wait_ms)
{
	struct mqttc_op oldest, op;
	bool any = false;
	uint64_t age;

	for (int k = 0; k < MQTTC_NKINDS; k++) {
		if (!mqttc_oldest(m, (enum mqttc_kind)k, &op))
			continue;
		if (!any || op.sent_ms < oldest.sent_ms)
			oldest = op;
		any = true;
	}
	*wait_ms = UINT64_MAX;
	if (!any || m->op_timeout_ms == 0)
		return false;
	age = now_ms > oldest.sent_ms ? now_ms - oldest.sent_ms : 0;
	if (age >= m->op_timeout_ms) {
		if (late != NULL)
			*late = oldest;
		return true;
	}
	*wait_ms = m->op_timeout_ms - age;
	return false;
}

const char *
mqttc_strerror(enum mqttc_status st)
{
	switch (st) {
	case MQTTC_OK:		return "ok";
	case MQTTC_UNKNOWN:	return "no such packet awaits an answer";
	case MQTTC_FULL:	return "every packet id is in use";
	case MQTTC_NOMEM:	return "out of memory";
	}
	return "unknown status";
}
