/*
 * MQTT control packets: framing, decoding, checking and encoding (see mqtt.h).
 * Each packet type has three functions in one table: parse reads the wire
 * into struct mqtt_packet and catches what only the wire can show (lengths,
 * reserved bits); check validates the struct against every rule a struct can
 * break; write emits the struct. The decoder is probe + parse + check, the
 * encoder check + write, so both sides enforce the same rules by running the
 * same code. Properties live in mqtt_props.c, reason codes in mqtt_reason.c.
 */
#include "mqtt/mqtt.h"

#include <string.h>

#include "base/utf8.h"
#include "mqtt/mqtt_int.h"
#include "topic/topic.h"

#define SHARE_PREFIX	"$share/"

struct packet_ops {
	/* h_flags: the low nibble of the fixed header; v: the session's version */
	enum mqtt_status (*parse)(struct buf_reader *, uint8_t h_flags,
	    enum mqtt_version v, struct mqtt_packet *);
	enum mqtt_status (*check)(const struct mqtt_packet *, enum mqtt_version);
	void (*write)(struct buf_writer *, const struct mqtt_packet *,
	    enum mqtt_version);
};

/*
 * Reading fields of a body. The body is a sub-reader of exactly Remaining
 * Length bytes, so running out is a malformed packet, not a short read.
 */
static enum mqtt_status
body_status(enum buf_status st)
{
	return st == BUF_OK ? MQTT_OK : MQTT_E_TRUNCATED;
}

static enum mqtt_status
get_u8(struct buf_reader *r, uint8_t *v)
{
	return body_status(buf_get_u8(r, v));
}

static enum mqtt_status
get_u16(struct buf_reader *r, uint16_t *v)
{
	return body_status(buf_get_u16(r, v));
}

static enum mqtt_status
get_binary(struct buf_reader *r, struct buf_view *v)
{
	return body_status(buf_get_binary(r, v));
}

static struct buf_view
get_rest(struct buf_reader *r)
{
	struct buf_view v;

	(void)buf_get_bytes(r, buf_left(r), &v);
	return v;
}

static bool
view_is(struct buf_view v, const char *s)
{
	return buf_view_eq(v, buf_cstr(s));
}

static bool
is_v5(enum mqtt_version v)
{
	return v == MQTT_V5;
}

/* Checks shared with mqtt_props.c. */

enum mqtt_status
mqtt_check_binary(struct buf_view b)
{
	return b.len > BUF_BINARY_MAX ? MQTT_E_LENGTH : MQTT_OK;
}

enum mqtt_status
mqtt_check_string(struct buf_view s)
{
	if (s.len > BUF_BINARY_MAX)
		return MQTT_E_LENGTH;
	return utf8_check(s.ptr, s.len) == UTF8_OK ? MQTT_OK : MQTT_E_UTF8;
}

enum mqtt_status
mqtt_check_topic_name(struct buf_view t)
{
	enum mqtt_status st;

	if ((st = mqtt_check_string(t)) != MQTT_OK)
		return st;
	if (topic_name_check((const char *)t.ptr, t.len) != TOPIC_OK)
		return MQTT_E_TOPIC_NAME;
	return MQTT_OK;
}

/*
 * MQTT 5.0 section 4.8.2: "$share/{ShareName}/{filter}", a ShareName of at
 * least one character without '/', '+' or '#', and a non-empty filter.
 */
static bool
share_ok(struct buf_view f, bool *shared)
{
	const size_t plen = sizeof(SHARE_PREFIX) - 1;
	const uint8_t *name, *slash;
	size_t rest, i;

	*shared = f.len >= plen && memcmp(f.ptr, SHARE_PREFIX, plen) == 0;
	if (!*shared)
		return true;
	name = f.ptr + plen;
	rest = f.len - plen;
	if ((slash = memchr(name, '/', rest)) == NULL)
		return false;
	if (slash == name || slash + 1 == name + rest)
		return false;
	for (i = 0; name + i < slash; i++)
		if (name[i] == '+' || name[i] == '#')
			return false;
	return true;
}

static enum mqtt_status
check_filter(struct buf_view f, enum mqtt_version v, bool *shared)
{
	enum mqtt_status st;

	*shared = false;
	if ((st = mqtt_check_string(f)) != MQTT_OK)
		return st;
	if (topic_filter_check((const char *)f.ptr, f.len) != TOPIC_OK)
		return MQTT_E_TOPIC_FILTER;
	if (is_v5(v) && !share_ok(f, shared))
		return MQTT_E_TOPIC_FILTER;
	return MQTT_OK;
}

static enum mqtt_status
check_packet_id(uint16_t id)
{
	return id == 0 ? MQTT_E_PACKET_ID : MQTT_OK;
}

static enum mqtt_status
check_reason(uint8_t code, enum mqtt_type t)
{
	return mqtt_reason_allowed(code, t) ? MQTT_OK : MQTT_E_REASON_CODE;
}

/* Properties exist in 5.0 only; in 3.1.1 they are neither read nor written. */
static enum mqtt_status
read_props(struct buf_reader *r, enum mqtt_version v, unsigned where,
    struct mqtt_props *p)
{
	return is_v5(v) ? mqtt_props_read(r, where, p) : MQTT_OK;
}

static enum mqtt_status
check_props(const struct mqtt_props *p, enum mqtt_version v, unsigned where)
{
	return is_v5(v) ? mqtt_props_check(p, where) : MQTT_OK;
}

static void
write_props(struct buf_writer *w, const struct mqtt_props *p,
    enum mqtt_version v, unsigned where)
{
	if (is_v5(v))
		mqtt_props_write(w, p, where);
}

static void
put_view(struct buf_writer *w, struct buf_view v)
{
	buf_put_binary(w, v.ptr, v.len);
}

/* CONNECT */

enum {
	CF_RESERVED = 0x01,
	CF_CLEAN = 0x02,
	CF_WILL = 0x04,
	CF_WILL_QOS_SHIFT = 3,
	CF_WILL_RETAIN = 0x20,
	CF_PASSWORD = 0x40,
	CF_USERNAME = 0x80,
};

static enum mqtt_status
parse_connect(struct buf_reader *r, uint8_t h_flags, enum mqtt_version v,
    struct mqtt_packet *pkt)
{
	struct mqtt_connect *c = &pkt->connect;
	struct buf_view name;
	enum mqtt_status st;
	uint8_t flags;
	bool mqisdp;

	if ((st = get_binary(r, &name)) != MQTT_OK)
		return st;
	mqisdp = view_is(name, "MQIsdp");
	if (!view_is(name, "MQTT") && !mqisdp)
		return MQTT_E_PROTOCOL_NAME;
	if ((st = get_u8(r, &c->protocol_level)) != MQTT_OK)
		return st;
	if (mqisdp || (c->protocol_level != MQTT_V311 &&
	    c->protocol_level != MQTT_V5))
		return MQTT_E_VERSION;
	v = c->protocol_level;

	if ((st = get_u8(r, &flags)) != MQTT_OK)
		return st;
	if (flags & CF_RESERVED)
		return MQTT_E_CONNECT_FLAGS;
	c->clean_start = (flags & CF_CLEAN) != 0;
	c->will = (flags & CF_WILL) != 0;
	c->will_qos = (flags >> CF_WILL_QOS_SHIFT) & 3;
	c->will_retain = (flags & CF_WILL_RETAIN) != 0;
	c->has_password = (flags & CF_PASSWORD) != 0;
	c->has_username = (flags & CF_USERNAME) != 0;
	if ((st = get_u16(r, &c->keep_alive)) != MQTT_OK ||
	    (st = read_props(r, v, MQTT_CONNECT, &c->props)) != MQTT_OK ||
	    (st = get_binary(r, &c->client_id)) != MQTT_OK)
		return st;
	if (c->will) {
		if ((st = read_props(r, v, MQTT_PROPS_WILL, &c->will_props)) !=
		    MQTT_OK ||
		    (st = get_binary(r, &c->will_topic)) != MQTT_OK ||
		    (st = get_binary(r, &c->will_payload)) != MQTT_OK)
			return st;
	}
	if (c->has_username && (st = get_binary(r, &c->username)) != MQTT_OK)
		return st;
	if (c->has_password && (st = get_binary(r, &c->password)) != MQTT_OK)
		return st;
	return MQTT_OK;
}

static enum mqtt_status
check_connect(const struct mqtt_packet *pkt, enum mqtt_version v)
{
	const struct mqtt_connect *c = &pkt->connect;
	enum mqtt_status st;

	if (c->will_qos > 2 || (!c->will && (c->will_qos != 0 || c->will_retain)))
		return MQTT_E_WILL_FLAGS;
	if (!is_v5(v) && c->has_password && !c->has_username)
		return MQTT_E_PASSWORD_FLAG;
	if ((st = check_props(&c->props, v, MQTT_CONNECT)) != MQTT_OK ||
	    (st = mqtt_check_string(c->client_id)) != MQTT_OK)
		return st;
	if (!is_v5(v) && c->client_id.len == 0 && !c->clean_start)
		return MQTT_E_CLIENT_ID;
	if (c->will) {
		if ((st = check_props(&c->will_props, v, MQTT_PROPS_WILL)) !=
		    MQTT_OK ||
		    (st = mqtt_check_topic_name(c->will_topic)) != MQTT_OK ||
		    (st = mqtt_check_binary(c->will_payload)) != MQTT_OK)
			return st;
	}
	if (c->has_username && (st = mqtt_check_string(c->username)) != MQTT_OK)
		return st;
	if (c->has_password && (st = mqtt_check_binary(c->password)) != MQTT_OK)
		return st;
	return MQTT_OK;
}

static void
write_connect(struct buf_writer *w, const struct mqtt_packet *pkt,
    enum mqtt_version v)
{
	const struct mqtt_connect *c = &pkt->connect;
	uint8_t flags = 0;

	if (c->clean_start)
		flags |= CF_CLEAN;
	if (c->will)
		flags |= CF_WILL | (uint8_t)(c->will_qos << CF_WILL_QOS_SHIFT) |
		    (c->will_retain ? CF_WILL_RETAIN : 0);
	if (c->has_password)
		flags |= CF_PASSWORD;
	if (c->has_username)
		flags |= CF_USERNAME;

	put_view(w, buf_cstr("MQTT"));
	buf_put_u8(w, (uint8_t)v);
	buf_put_u8(w, flags);
	buf_put_u16(w, c->keep_alive);
	write_props(w, &c->props, v, MQTT_CONNECT);
	put_view(w, c->client_id);
	if (c->will) {
		write_props(w, &c->will_props, v, MQTT_PROPS_WILL);
		put_view(w, c->will_topic);
		put_view(w, c->will_payload);
	}
	if (c->has_username)
		put_view(w, c->username);
	if (c->has_password)
		put_view(w, c->password);
}

/* CONNACK */

static enum mqtt_status
parse_connack(struct buf_reader *r, uint8_t h_flags, enum mqtt_version v,
    struct mqtt_packet *pkt)
{
	struct mqtt_connack *c = &pkt->connack;
	enum mqtt_status st;
	uint8_t flags;

	if ((st = get_u8(r, &flags)) != MQTT_OK)
		return st;
	if (flags & 0xfe)
		return MQTT_E_CONNACK_FLAGS;
	c->session_present = flags & 1;
	if ((st = get_u8(r, &c->reason_code)) != MQTT_OK)
		return st;
	return read_props(r, v, MQTT_CONNACK, &c->props);
}

static enum mqtt_status
check_connack(const struct mqtt_packet *pkt, enum mqtt_version v)
{
	const struct mqtt_connack *c = &pkt->connack;

	if (c->session_present && c->reason_code != 0)
		return MQTT_E_CONNACK_FLAGS;
	if (is_v5(v) ? !mqtt_reason_allowed(c->reason_code, MQTT_CONNACK) :
	    c->reason_code > 5)
		return MQTT_E_REASON_CODE;
	return check_props(&c->props, v, MQTT_CONNACK);
}

static void
write_connack(struct buf_writer *w, const struct mqtt_packet *pkt,
    enum mqtt_version v)
{
	const struct mqtt_connack *c = &pkt->connack;

	buf_put_u8(w, c->session_present ? 1 : 0);
	buf_put_u8(w, c->reason_code);
	write_props(w, &c->props, v, MQTT_CONNACK);
}

/* PUBLISH */

enum {
	PF_RETAIN = 0x01,
	PF_QOS_SHIFT = 1,
	PF_DUP = 0x08,
};

static enum mqtt_status
parse_publish(struct buf_reader *r, uint8_t h_flags, enum mqtt_version v,
    struct mqtt_packet *pkt)
{
	struct mqtt_publish *p = &pkt->publish;
	enum mqtt_status st;

	p->dup = (h_flags & PF_DUP) != 0;
	p->qos = (h_flags >> PF_QOS_SHIFT) & 3;
	p->retain = (h_flags & PF_RETAIN) != 0;
	if ((st = get_binary(r, &p->topic)) != MQTT_OK)
		return st;
	if (p->qos > 0 && (st = get_u16(r, &p->packet_id)) != MQTT_OK)
		return st;
	if ((st = read_props(r, v, MQTT_PUBLISH, &p->props)) != MQTT_OK)
		return st;
	p->payload = get_rest(r);
	return MQTT_OK;
}

static enum mqtt_status
check_publish(const struct mqtt_packet *pkt, enum mqtt_version v)
{
	const struct mqtt_publish *p = &pkt->publish;
	enum mqtt_status st;

	if (p->qos > 2)
		return MQTT_E_QOS;
	if (p->dup && p->qos == 0)
		return MQTT_E_DUP;
	if (p->qos > 0 && (st = check_packet_id(p->packet_id)) != MQTT_OK)
		return st;
	if ((st = check_props(&p->props, v, MQTT_PUBLISH)) != MQTT_OK)
		return st;
	/* 5.0 section 3.3.2.1: an empty topic name stands for a Topic Alias. */
	if (p->topic.len == 0 && is_v5(v) &&
	    mqtt_props_has(&p->props, MQTT_PROP_TOPIC_ALIAS))
		return MQTT_OK;
	return mqtt_check_topic_name(p->topic);
}

static void
write_publish(struct buf_writer *w, const struct mqtt_packet *pkt,
    enum mqtt_version v)
{
	const struct mqtt_publish *p = &pkt->publish;

	put_view(w, p->topic);
	if (p->qos > 0)
		buf_put_u16(w, p->packet_id);
	write_props(w, &p->props, v, MQTT_PUBLISH);
	buf_put_bytes(w, p->payload.ptr, p->payload.len);
}

/* PUBACK, PUBREC, PUBREL, PUBCOMP */

static enum mqtt_status
parse_ack(struct buf_reader *r, uint8_t h_flags, enum mqtt_version v,
    struct mqtt_packet *pkt)
{
	struct mqtt_ack *a = &pkt->ack;
	enum mqtt_status st;

	if ((st = get_u16(r, &a->packet_id)) != MQTT_OK)
		return st;
	/* 5.0: the reason code and the properties may each be left out. */
	if (!is_v5(v) || buf_left(r) == 0)
		return MQTT_OK;
	if ((st = get_u8(r, &a->reason_code)) != MQTT_OK)
		return st;
	if (buf_left(r) == 0)
		return MQTT_OK;
	return mqtt_props_read(r, pkt->type, &a->props);
}

static enum mqtt_status
check_ack(const struct mqtt_packet *pkt, enum mqtt_version v)
{
	const struct mqtt_ack *a = &pkt->ack;
	enum mqtt_status st;

	if ((st = check_packet_id(a->packet_id)) != MQTT_OK)
		return st;
	if (!is_v5(v))
		return MQTT_OK;
	if ((st = check_reason(a->reason_code, pkt->type)) != MQTT_OK)
		return st;
	return mqtt_props_check(&a->props, pkt->type);
}

/* The 5.0 tail shared by acks, DISCONNECT and AUTH: reason code, then
 * properties, each left out when it says nothing. */
static void
write_reason_tail(struct buf_writer *w, uint8_t reason,
    const struct mqtt_props *p, enum mqtt_type t)
{
	bool no_props = mqtt_props_empty(p, t);

	if (reason == 0 && no_props)
		return;
	buf_put_u8(w, reason);
	if (!no_props)
		mqtt_props_write(w, p, t);
}

static void
write_ack(struct buf_writer *w, const struct mqtt_packet *pkt,
    enum mqtt_version v)
{
	const struct mqtt_ack *a = &pkt->ack;

	buf_put_u16(w, a->packet_id);
	if (is_v5(v))
		write_reason_tail(w, a->reason_code, &a->props, pkt->type);
}

/* SUBSCRIBE and UNSUBSCRIBE */

enum {
	SO_QOS = 0x03,
	SO_NO_LOCAL = 0x04,
	SO_RAP = 0x08,
	SO_RH_SHIFT = 4,
	SO_RESERVED_V5 = 0xc0,
	SO_RESERVED_V311 = 0xfc,
};

static enum mqtt_status
parse_sublist(struct buf_reader *r, uint8_t h_flags, enum mqtt_version v,
    struct mqtt_packet *pkt)
{
	struct mqtt_subscribe *s = &pkt->subscribe;
	enum mqtt_status st;

	if ((st = get_u16(r, &s->packet_id)) != MQTT_OK ||
	    (st = read_props(r, v, pkt->type, &s->props)) != MQTT_OK)
		return st;
	s->list = get_rest(r);
	return MQTT_OK;
}

/* One SUBSCRIBE entry; the options byte is also returned whole, for checks. */
static enum mqtt_status
read_subscription(struct buf_reader *r, struct mqtt_subscription *s,
    uint8_t *opts)
{
	enum mqtt_status st;

	if ((st = get_binary(r, &s->filter)) != MQTT_OK ||
	    (st = get_u8(r, opts)) != MQTT_OK)
		return st;
	s->qos = *opts & SO_QOS;
	s->no_local = (*opts & SO_NO_LOCAL) != 0;
	s->retain_as_published = (*opts & SO_RAP) != 0;
	s->retain_handling = (*opts >> SO_RH_SHIFT) & 3;
	return MQTT_OK;
}

static enum mqtt_status
check_subscription(const struct mqtt_subscription *s, uint8_t opts,
    enum mqtt_version v)
{
	enum mqtt_status st;
	bool shared;

	if ((st = check_filter(s->filter, v, &shared)) != MQTT_OK)
		return st;
	if (s->qos > 2)
		return MQTT_E_QOS;
	if (opts & (is_v5(v) ? SO_RESERVED_V5 : SO_RESERVED_V311))
		return MQTT_E_SUB_OPTIONS;
	if (s->retain_handling > 2)
		return MQTT_E_RETAIN_HANDLING;
	if (shared && s->no_local)
		return MQTT_E_SHARED_NO_LOCAL;
	return MQTT_OK;
}

static enum mqtt_status
check_sublist(const struct mqtt_packet *pkt, enum mqtt_version v)
{
	const struct mqtt_subscribe *s = &pkt->subscribe;
	struct mqtt_subscription sub;
	struct buf_reader r;
	enum mqtt_status st;
	uint8_t opts;

	if ((st = check_packet_id(s->packet_id)) != MQTT_OK ||
	    (st = check_props(&s->props, v, pkt->type)) != MQTT_OK)
		return st;
	if (s->list.len == 0)
		return MQTT_E_EMPTY_LIST;
	buf_reader_init(&r, s->list.ptr, s->list.len);
	while (buf_left(&r) > 0) {
		if (pkt->type == MQTT_UNSUBSCRIBE) {
			bool shared;

			if ((st = get_binary(&r, &sub.filter)) != MQTT_OK ||
			    (st = check_filter(sub.filter, v, &shared)) != MQTT_OK)
				return st;
			continue;
		}
		if ((st = read_subscription(&r, &sub, &opts)) != MQTT_OK ||
		    (st = check_subscription(&sub, opts, v)) != MQTT_OK)
			return st;
	}
	return MQTT_OK;
}

static void
write_sublist(struct buf_writer *w, const struct mqtt_packet *pkt,
    enum mqtt_version v)
{
	const struct mqtt_subscribe *s = &pkt->subscribe;

	buf_put_u16(w, s->packet_id);
	write_props(w, &s->props, v, pkt->type);
	buf_put_bytes(w, s->list.ptr, s->list.len);
}

/* SUBACK and UNSUBACK */

static bool
has_codes(enum mqtt_type t, enum mqtt_version v)
{
	return t == MQTT_SUBACK || is_v5(v);	/* 3.1.1 UNSUBACK has none */
}

static enum mqtt_status
parse_suback(struct buf_reader *r, uint8_t h_flags, enum mqtt_version v,
    struct mqtt_packet *pkt)
{
	struct mqtt_suback *s = &pkt->suback;
	enum mqtt_status st;

	if ((st = get_u16(r, &s->packet_id)) != MQTT_OK ||
	    (st = read_props(r, v, pkt->type, &s->props)) != MQTT_OK)
		return st;
	if (has_codes(pkt->type, v))
		s->reason_codes = get_rest(r);
	return MQTT_OK;
}

static bool
suback_code_ok(uint8_t code, enum mqtt_type t, enum mqtt_version v)
{
	if (is_v5(v))
		return mqtt_reason_allowed(code, t);
	return code <= 2 || code == 0x80;
}

static enum mqtt_status
check_suback(const struct mqtt_packet *pkt, enum mqtt_version v)
{
	const struct mqtt_suback *s = &pkt->suback;
	enum mqtt_status st;
	size_t i;

	if ((st = check_packet_id(s->packet_id)) != MQTT_OK ||
	    (st = check_props(&s->props, v, pkt->type)) != MQTT_OK)
		return st;
	if (!has_codes(pkt->type, v))
		return MQTT_OK;
	if (s->reason_codes.len == 0)
		return MQTT_E_EMPTY_LIST;
	for (i = 0; i < s->reason_codes.len; i++)
		if (!suback_code_ok(s->reason_codes.ptr[i], pkt->type, v))
			return MQTT_E_REASON_CODE;
	return MQTT_OK;
}

static void
write_suback(struct buf_writer *w, const struct mqtt_packet *pkt,
    enum mqtt_version v)
{
	const struct mqtt_suback *s = &pkt->suback;

	buf_put_u16(w, s->packet_id);
	write_props(w, &s->props, v, pkt->type);
	if (has_codes(pkt->type, v))
		buf_put_bytes(w, s->reason_codes.ptr, s->reason_codes.len);
}

/* PINGREQ and PINGRESP: nothing but the fixed header. */

static enum mqtt_status
parse_empty(struct buf_reader *r, uint8_t h_flags, enum mqtt_version v,
    struct mqtt_packet *pkt)
{
	return MQTT_OK;
}

static enum mqtt_status
check_empty(const struct mqtt_packet *pkt, enum mqtt_version v)
{
	return MQTT_OK;
}

static void
write_empty(struct buf_writer *w, const struct mqtt_packet *pkt,
    enum mqtt_version v)
{
}

/* DISCONNECT and AUTH */

static enum mqtt_status
parse_disconnect(struct buf_reader *r, uint8_t h_flags, enum mqtt_version v,
    struct mqtt_packet *pkt)
{
	struct mqtt_disconnect *d = &pkt->disconnect;
	enum mqtt_status st;

	if (!is_v5(v) || buf_left(r) == 0)
		return MQTT_OK;
	if ((st = get_u8(r, &d->reason_code)) != MQTT_OK)
		return st;
	/* DISCONNECT may stop after the reason code; AUTH may not. */
	if (pkt->type == MQTT_DISCONNECT && buf_left(r) == 0)
		return MQTT_OK;
	return mqtt_props_read(r, pkt->type, &d->props);
}

static enum mqtt_status
check_disconnect(const struct mqtt_packet *pkt, enum mqtt_version v)
{
	const struct mqtt_disconnect *d = &pkt->disconnect;
	enum mqtt_status st;

	if (!is_v5(v))
		return pkt->type == MQTT_AUTH ? MQTT_E_TYPE : MQTT_OK;
	if ((st = check_reason(d->reason_code, pkt->type)) != MQTT_OK ||
	    (st = mqtt_props_check(&d->props, pkt->type)) != MQTT_OK)
		return st;
	/*
	 * 5.0 section 3.15.2.2.2: an AUTH carries its Authentication Method;
	 * only the bare form (success, no properties) has no room for one.
	 */
	if (pkt->type == MQTT_AUTH &&
	    (d->reason_code != 0 || !mqtt_props_empty(&d->props, MQTT_AUTH)) &&
	    !mqtt_props_has(&d->props, MQTT_PROP_AUTH_METHOD))
		return MQTT_E_AUTH_METHOD;
	return MQTT_OK;
}

static void
write_disconnect(struct buf_writer *w, const struct mqtt_packet *pkt,
    enum mqtt_version v)
{
	const struct mqtt_disconnect *d = &pkt->disconnect;

	if (!is_v5(v))
		return;
	if (pkt->type == MQTT_DISCONNECT) {
		write_reason_tail(w, d->reason_code, &d->props, pkt->type);
	} else if (d->reason_code != 0 ||
	    !mqtt_props_empty(&d->props, pkt->type)) {
		buf_put_u8(w, d->reason_code);
		mqtt_props_write(w, &d->props, pkt->type);
	}
}

static const struct packet_ops packet_ops[] = {
	[MQTT_CONNECT] = { parse_connect, check_connect, write_connect },
	[MQTT_CONNACK] = { parse_connack, check_connack, write_connack },
	[MQTT_PUBLISH] = { parse_publish, check_publish, write_publish },
	[MQTT_PUBACK] = { parse_ack, check_ack, write_ack },
	[MQTT_PUBREC] = { parse_ack, check_ack, write_ack },
	[MQTT_PUBREL] = { parse_ack, check_ack, write_ack },
	[MQTT_PUBCOMP] = { parse_ack, check_ack, write_ack },
	[MQTT_SUBSCRIBE] = { parse_sublist, check_sublist, write_sublist },
	[MQTT_SUBACK] = { parse_suback, check_suback, write_suback },
	[MQTT_UNSUBSCRIBE] = { parse_sublist, check_sublist, write_sublist },
	[MQTT_UNSUBACK] = { parse_suback, check_suback, write_suback },
	[MQTT_PINGREQ] = { parse_empty, check_empty, write_empty },
	[MQTT_PINGRESP] = { parse_empty, check_empty, write_empty },
	[MQTT_DISCONNECT] = { parse_disconnect, check_disconnect, write_disconnect },
	[MQTT_AUTH] = { parse_disconnect, check_disconnect, write_disconnect },
};

static const struct packet_ops *
ops_of(enum mqtt_type t)
{
	if (t < MQTT_CONNECT || t > MQTT_AUTH)
		return NULL;
	return &packet_ops[t];
}

/* The fixed-header flags each type requires; PUBLISH's carry its fields. */
static uint8_t
fixed_flags(enum mqtt_type t)
{
	switch (t) {
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		return 0x2;
	default:
		return 0x0;
	}
}

static enum mqtt_status
check_first_byte(uint8_t b)
{
	enum mqtt_type t = b >> 4;
	uint8_t flags = b & 0x0f, qos;

	if (t == 0)
		return MQTT_E_TYPE;
	if (t != MQTT_PUBLISH)
		return flags == fixed_flags(t) ? MQTT_OK : MQTT_E_FLAGS;
	qos = (flags >> PF_QOS_SHIFT) & 3;
	if (qos == 3)
		return MQTT_E_QOS;
	if ((flags & PF_DUP) && qos == 0)
		return MQTT_E_DUP;
	return MQTT_OK;
}

enum mqtt_status
mqtt_probe(const uint8_t *buf, size_t len, size_t max_size,
    struct mqtt_header *h)
{
	struct buf_reader r;
	enum mqtt_status st;
	enum buf_status bst;
	uint8_t b;

	buf_reader_init(&r, buf, len);
	if (buf_get_u8(&r, &b) != BUF_OK)
		return MQTT_NEED_MORE;
	if ((st = check_first_byte(b)) != MQTT_OK)
		return st;
	if ((bst = buf_get_varint(&r, &h->remaining)) != BUF_OK)
		return bst == BUF_SHORT ? MQTT_NEED_MORE : MQTT_E_REMLEN;
	h->type = b >> 4;
	h->flags = b & 0x0f;
	h->size = (len - buf_left(&r)) + h->remaining;
	return h->size > max_size ? MQTT_E_TOO_LARGE : MQTT_OK;
}

static bool
version_ok(enum mqtt_version v)
{
	return v == MQTT_V311 || v == MQTT_V5;
}

enum mqtt_status
mqtt_decode(const uint8_t *buf, size_t len, enum mqtt_version v,
    size_t max_size, struct mqtt_packet *pkt, size_t *used)
{
	const struct packet_ops *ops;
	struct mqtt_header h;
	struct buf_reader body;
	enum mqtt_status st;

	memset(pkt, 0, sizeof(*pkt));
	if ((st = mqtt_probe(buf, len, max_size, &h)) != MQTT_OK)
		return st;
	if (len < h.size)
		return MQTT_NEED_MORE;
	pkt->type = h.type;
	if (h.type != MQTT_CONNECT && !version_ok(v))
		return MQTT_E_VERSION;
	if (h.type == MQTT_AUTH && !is_v5(v))
		return MQTT_E_TYPE;

	ops = ops_of(h.type);
	buf_reader_init(&body, buf + (h.size - h.remaining), h.remaining);
	if ((st = ops->parse(&body, h.flags, v, pkt)) != MQTT_OK)
		return st;
	if (buf_left(&body) != 0)
		return MQTT_E_TRAILING;
	if (h.type == MQTT_CONNECT)
		v = pkt->connect.protocol_level;
	if ((st = ops->check(pkt, v)) != MQTT_OK)
		return st;
	*used = h.size;
	return MQTT_OK;
}

static enum mqtt_status
writer_status(const struct buf_writer *w)
{
	switch (buf_writer_status(w)) {
	case BUF_OK:
		return MQTT_OK;
	case BUF_NO_SPACE:
		return MQTT_NO_SPACE;
	default:
		/* Strings were checked, so only a length varint can overflow. */
		return MQTT_E_TOO_LARGE;
	}
}

/*
 * Check and write *pkt into out (NULL: only count). extra bytes follow what
 * is written here and count in the Remaining Length: the payload a header-only
 * PUBLISH leaves to the caller.
 */
static enum mqtt_status
encode(const struct mqtt_packet *pkt, enum mqtt_version v, size_t extra,
    uint8_t *out, size_t cap, size_t *written)
{
	const struct packet_ops *ops = ops_of(pkt->type);
	struct buf_writer w, count;
	enum mqtt_status st;
	size_t body;
	uint8_t b;

	if (ops == NULL)
		return MQTT_E_TYPE;
	if (!version_ok(v))
		return MQTT_E_VERSION;
	if ((st = ops->check(pkt, v)) != MQTT_OK)
		return st;

	buf_writer_init(&count, NULL, 0);
	ops->write(&count, pkt, v);
	if ((st = writer_status(&count)) != MQTT_OK)
		return st;
	body = buf_written(&count);
	if (extra > MQTT_MAX_REMLEN || body > MQTT_MAX_REMLEN - extra)
		return MQTT_E_TOO_LARGE;

	b = (uint8_t)(pkt->type << 4 | fixed_flags(pkt->type));
	if (pkt->type == MQTT_PUBLISH)
		b |= (pkt->publish.dup ? PF_DUP : 0) |
		    (uint8_t)(pkt->publish.qos << PF_QOS_SHIFT) |
		    (pkt->publish.retain ? PF_RETAIN : 0);
	buf_writer_init(&w, out, cap);
	buf_put_u8(&w, b);
	buf_put_varint(&w, (uint32_t)(body + extra));
	ops->write(&w, pkt, v);
	if ((st = writer_status(&w)) != MQTT_OK)
		return st;
	*written = buf_written(&w);
	return MQTT_OK;
}

enum mqtt_status
mqtt_size(const struct mqtt_packet *pkt, enum mqtt_version v, size_t *size)
{
	return encode(pkt, v, 0, NULL, 0, size);
}

enum mqtt_status
mqtt_encode(const struct mqtt_packet *pkt, enum mqtt_version v, uint8_t *out,
    size_t cap, size_t *written)
{
	return encode(pkt, v, 0, out, cap, written);
}

/* The packet a header-only encode writes: pub without its payload bytes. */
static void
header_only(const struct mqtt_publish *pub, struct mqtt_packet *pkt)
{
	memset(pkt, 0, sizeof(*pkt));
	pkt->type = MQTT_PUBLISH;
	pkt->publish = *pub;
	pkt->publish.payload.ptr = NULL;
	pkt->publish.payload.len = 0;
}

enum mqtt_status
mqtt_publish_header_size(const struct mqtt_publish *pub, enum mqtt_version v,
    size_t *size)
{
	struct mqtt_packet pkt;

	header_only(pub, &pkt);
	return encode(&pkt, v, pub->payload.len, NULL, 0, size);
}

enum mqtt_status
mqtt_encode_publish_header(const struct mqtt_publish *pub, enum mqtt_version v,
    uint8_t *out, size_t cap, size_t *written)
{
	struct mqtt_packet pkt;

	header_only(pub, &pkt);
	return encode(&pkt, v, pub->payload.len, out, cap, written);
}

/* Equality */

static bool
connect_equal(const struct mqtt_connect *a, const struct mqtt_connect *b)
{
	if (a->clean_start != b->clean_start || a->keep_alive != b->keep_alive ||
	    !mqtt_props_equal(&a->props, &b->props, MQTT_CONNECT) ||
	    !buf_view_eq(a->client_id, b->client_id) || a->will != b->will ||
	    a->has_username != b->has_username ||
	    a->has_password != b->has_password)
		return false;
	if (a->will && (a->will_qos != b->will_qos ||
	    a->will_retain != b->will_retain ||
	    !mqtt_props_equal(&a->will_props, &b->will_props, MQTT_PROPS_WILL) ||
	    !buf_view_eq(a->will_topic, b->will_topic) ||
	    !buf_view_eq(a->will_payload, b->will_payload)))
		return false;
	if (a->has_username && !buf_view_eq(a->username, b->username))
		return false;
	if (a->has_password && !buf_view_eq(a->password, b->password))
		return false;
	return true;
}

bool
mqtt_packet_equal(const struct mqtt_packet *a, const struct mqtt_packet *b,
    enum mqtt_version v)
{
	const struct mqtt_publish *pa = &a->publish, *pb = &b->publish;
	bool v5 = is_v5(v);

	if (a->type != b->type)
		return false;
	switch (a->type) {
	case MQTT_CONNECT:
		/* A CONNECT carries its own version. */
		return a->connect.protocol_level == b->connect.protocol_level &&
		    connect_equal(&a->connect, &b->connect);
	case MQTT_CONNACK:
		return a->connack.session_present == b->connack.session_present &&
		    a->connack.reason_code == b->connack.reason_code &&
		    (!v5 || mqtt_props_equal(&a->connack.props, &b->connack.props,
		    MQTT_CONNACK));
	case MQTT_PUBLISH:
		return pa->dup == pb->dup && pa->qos == pb->qos &&
		    pa->retain == pb->retain && buf_view_eq(pa->topic, pb->topic) &&
		    (pa->qos == 0 || pa->packet_id == pb->packet_id) &&
		    (!v5 || mqtt_props_equal(&pa->props, &pb->props,
		    MQTT_PUBLISH)) && buf_view_eq(pa->payload, pb->payload);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return a->ack.packet_id == b->ack.packet_id && (!v5 ||
		    (a->ack.reason_code == b->ack.reason_code &&
		    mqtt_props_equal(&a->ack.props, &b->ack.props, a->type)));
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		/* The encoder copies lists verbatim: equal items, equal bytes. */
		return a->unsubscribe.packet_id == b->unsubscribe.packet_id &&
		    (!v5 || mqtt_props_equal(&a->unsubscribe.props,
		    &b->unsubscribe.props, a->type)) &&
		    buf_view_eq(a->unsubscribe.list, b->unsubscribe.list);
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		return a->suback.packet_id == b->suback.packet_id &&
		    (!v5 || mqtt_props_equal(&a->suback.props, &b->suback.props,
		    a->type)) && (!has_codes(a->type, v) ||
		    buf_view_eq(a->suback.reason_codes, b->suback.reason_codes));
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		return true;
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		return !v5 || (a->disconnect.reason_code ==
		    b->disconnect.reason_code && mqtt_props_equal(
		    &a->disconnect.props, &b->disconnect.props, a->type));
	}
	return false;
}

/* List iterators and builders */

bool
mqtt_subscription_next(struct mqtt_iter *it, struct mqtt_subscription *s)
{
	struct buf_reader r = it->r;
	uint8_t opts;

	if (buf_left(&r) == 0 || read_subscription(&r, s, &opts) != MQTT_OK)
		return false;
	it->r = r;
	return true;
}

bool
mqtt_filter_next(struct mqtt_iter *it, struct buf_view *filter)
{
	return buf_get_binary(&it->r, filter) == BUF_OK;
}

void
mqtt_subscription_put(struct buf_writer *w, const struct mqtt_subscription *s)
{
	put_view(w, s->filter);
	buf_put_u8(w, (uint8_t)((s->qos & SO_QOS) |
	    (s->no_local ? SO_NO_LOCAL : 0) |
	    (s->retain_as_published ? SO_RAP : 0) |
	    (s->retain_handling & 3) << SO_RH_SHIFT));
}

void
mqtt_filter_put(struct buf_writer *w, struct buf_view filter)
{
	put_view(w, filter);
}
