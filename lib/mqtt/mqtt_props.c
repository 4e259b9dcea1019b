/*
 * MQTT 5 properties. One table, indexed by property identifier, says for each
 * property its wire type, the packets it may appear in, where it may repeat,
 * the range of its value and the field of struct mqtt_props that holds it;
 * reading, checking, writing, comparing and iterating are loops over that
 * table, so adding a property is adding a row.
 */
#include "mqtt/mqtt.h"

#include <stddef.h>
#include <string.h>

#include "mqtt/mqtt_int.h"

enum prop_type {
	PT_BYTE = 1,
	PT_U16,
	PT_U32,
	PT_VARINT,
	PT_STRING,
	PT_TOPIC,		/* a string that must be a topic name */
	PT_BINARY,
	PT_PAIR,		/* two strings */
};

/* Packet bits of the placement columns (see mqtt_where_bit()). */
enum {
	IN_WILL = 1 << MQTT_PROPS_WILL,
	IN_CONNECT = 1 << MQTT_CONNECT,
	IN_CONNACK = 1 << MQTT_CONNACK,
	IN_PUBLISH = 1 << MQTT_PUBLISH,
	IN_PUBACK = 1 << MQTT_PUBACK,
	IN_PUBREC = 1 << MQTT_PUBREC,
	IN_PUBREL = 1 << MQTT_PUBREL,
	IN_PUBCOMP = 1 << MQTT_PUBCOMP,
	IN_SUBSCRIBE = 1 << MQTT_SUBSCRIBE,
	IN_SUBACK = 1 << MQTT_SUBACK,
	IN_UNSUBSCRIBE = 1 << MQTT_UNSUBSCRIBE,
	IN_UNSUBACK = 1 << MQTT_UNSUBACK,
	IN_DISCONNECT = 1 << MQTT_DISCONNECT,
	IN_AUTH = 1 << MQTT_AUTH,

	IN_MESSAGE = IN_PUBLISH | IN_WILL,
	IN_ACKS = IN_CONNACK | IN_PUBACK | IN_PUBREC | IN_PUBREL | IN_PUBCOMP |
	    IN_SUBACK | IN_UNSUBACK | IN_DISCONNECT | IN_AUTH,
	IN_ALL = IN_ACKS | IN_WILL | IN_CONNECT | IN_PUBLISH | IN_SUBSCRIBE |
	    IN_UNSUBSCRIBE,
};

struct prop_def {
	enum prop_type	type;		/* 0: no such property */
	uint32_t	in;		/* IN_* where it may appear */
	uint32_t	repeats;	/* IN_* where it may appear more than once */
	uint32_t	min, max;	/* integer range */
	size_t		field;		/* offset of the single value */
	size_t		list;		/* offset of the list view, if it repeats */
};

#define FIELD(f)	offsetof(struct mqtt_props, f)

/* MQTT 5.0 section 2.2.2.2, table 2-4. */
static const struct prop_def defs[] = {
	[MQTT_PROP_PAYLOAD_FORMAT] =
	    { PT_BYTE, IN_MESSAGE, 0, 0, 1, FIELD(payload_format), 0 },
	[MQTT_PROP_MESSAGE_EXPIRY] =
	    { PT_U32, IN_MESSAGE, 0, 0, UINT32_MAX, FIELD(message_expiry), 0 },
	[MQTT_PROP_CONTENT_TYPE] =
	    { PT_STRING, IN_MESSAGE, 0, 0, 0, FIELD(content_type), 0 },
	[MQTT_PROP_RESPONSE_TOPIC] =
	    { PT_TOPIC, IN_MESSAGE, 0, 0, 0, FIELD(response_topic), 0 },
	[MQTT_PROP_CORRELATION_DATA] =
	    { PT_BINARY, IN_MESSAGE, 0, 0, 0, FIELD(correlation_data), 0 },
	[MQTT_PROP_SUBSCRIPTION_ID] =
	    { PT_VARINT, IN_PUBLISH | IN_SUBSCRIBE, IN_PUBLISH, 1, BUF_VARINT_MAX,
	    FIELD(subscription_id), FIELD(sub_ids) },
	[MQTT_PROP_SESSION_EXPIRY] =
	    { PT_U32, IN_CONNECT | IN_CONNACK | IN_DISCONNECT, 0, 0, UINT32_MAX,
	    FIELD(session_expiry), 0 },
	[MQTT_PROP_ASSIGNED_CLIENT_ID] =
	    { PT_STRING, IN_CONNACK, 0, 0, 0, FIELD(assigned_client_id), 0 },
	[MQTT_PROP_SERVER_KEEP_ALIVE] =
	    { PT_U16, IN_CONNACK, 0, 0, UINT16_MAX, FIELD(server_keep_alive), 0 },
	[MQTT_PROP_AUTH_METHOD] =
	    { PT_STRING, IN_CONNECT | IN_CONNACK | IN_AUTH, 0, 0, 0,
	    FIELD(auth_method), 0 },
	[MQTT_PROP_AUTH_DATA] =
	    { PT_BINARY, IN_CONNECT | IN_CONNACK | IN_AUTH, 0, 0, 0,
	    FIELD(auth_data), 0 },
	[MQTT_PROP_REQUEST_PROBLEM_INFO] =
	    { PT_BYTE, IN_CONNECT, 0, 0, 1, FIELD(request_problem_info), 0 },
	[MQTT_PROP_WILL_DELAY] =
	    { PT_U32, IN_WILL, 0, 0, UINT32_MAX, FIELD(will_delay), 0 },
	[MQTT_PROP_REQUEST_RESPONSE_INFO] =
	    { PT_BYTE, IN_CONNECT, 0, 0, 1, FIELD(request_response_info), 0 },
	[MQTT_PROP_RESPONSE_INFO] =
	    { PT_STRING, IN_CONNACK, 0, 0, 0, FIELD(response_info), 0 },
	[MQTT_PROP_SERVER_REFERENCE] =
	    { PT_STRING, IN_CONNACK | IN_DISCONNECT, 0, 0, 0,
	    FIELD(server_reference), 0 },
	[MQTT_PROP_REASON_STRING] =
	    { PT_STRING, IN_ACKS, 0, 0, 0, FIELD(reason_string), 0 },
	[MQTT_PROP_RECEIVE_MAXIMUM] =
	    { PT_U16, IN_CONNECT | IN_CONNACK, 0, 1, UINT16_MAX,
	    FIELD(receive_maximum), 0 },
	[MQTT_PROP_TOPIC_ALIAS_MAXIMUM] =
	    { PT_U16, IN_CONNECT | IN_CONNACK, 0, 0, UINT16_MAX,
	    FIELD(topic_alias_maximum), 0 },
	[MQTT_PROP_TOPIC_ALIAS] =
	    { PT_U16, IN_PUBLISH, 0, 1, UINT16_MAX, FIELD(topic_alias), 0 },
	[MQTT_PROP_MAXIMUM_QOS] =
	    { PT_BYTE, IN_CONNACK, 0, 0, 1, FIELD(maximum_qos), 0 },
	[MQTT_PROP_RETAIN_AVAILABLE] =
	    { PT_BYTE, IN_CONNACK, 0, 0, 1, FIELD(retain_available), 0 },
	[MQTT_PROP_USER] =
	    { PT_PAIR, IN_ALL, IN_ALL, 0, 0, 0, FIELD(user_props) },
	[MQTT_PROP_MAXIMUM_PACKET_SIZE] =
	    { PT_U32, IN_CONNECT | IN_CONNACK, 0, 1, UINT32_MAX,
	    FIELD(maximum_packet_size), 0 },
	[MQTT_PROP_WILDCARD_SUB_AVAILABLE] =
	    { PT_BYTE, IN_CONNACK, 0, 0, 1, FIELD(wildcard_sub_available), 0 },
	[MQTT_PROP_SUB_ID_AVAILABLE] =
	    { PT_BYTE, IN_CONNACK, 0, 0, 1, FIELD(sub_id_available), 0 },
	[MQTT_PROP_SHARED_SUB_AVAILABLE] =
	    { PT_BYTE, IN_CONNACK, 0, 0, 1, FIELD(shared_sub_available), 0 },
};

#define NDEFS	(sizeof(defs) / sizeof(defs[0]))

/* One property as read off the wire. */
struct prop_value {
	uint32_t	num;		/* integer types */
	struct buf_view	str;		/* strings and binary; a pair's key */
	struct buf_view	str2;		/* a pair's value */
};

uint32_t
mqtt_where_bit(unsigned where)
{
	return (uint32_t)1 << where;
}

static uint64_t
id_bit(unsigned id)
{
	return (uint64_t)1 << id;
}

static const struct prop_def *
lookup(uint32_t id)
{
	if (id >= NDEFS || defs[id].type == 0)
		return NULL;
	return &defs[id];
}

static bool
repeats_in(const struct prop_def *d, unsigned where)
{
	return (d->repeats & mqtt_where_bit(where)) != 0;
}

static enum mqtt_status
section_status(enum buf_status st)
{
	return st == BUF_MALFORMED ? MQTT_E_VARINT : MQTT_E_PROP_LENGTH;
}

/*
 * Read one property entry. The reader's position after a failure does not
 * matter: every caller gives up on the section.
 */
static enum mqtt_status
prop_next(struct buf_reader *r, uint32_t *id, struct prop_value *val)
{
	const struct prop_def *d;
	enum buf_status st;
	uint8_t u8;
	uint16_t u16;

	if ((st = buf_get_varint(r, id)) != BUF_OK)
		return section_status(st);
	if ((d = lookup(*id)) == NULL)
		return MQTT_E_PROP_UNKNOWN;
	switch (d->type) {
	case PT_BYTE:
		st = buf_get_u8(r, &u8);
		val->num = u8;
		break;
	case PT_U16:
		st = buf_get_u16(r, &u16);
		val->num = u16;
		break;
	case PT_U32:
		st = buf_get_u32(r, &val->num);
		break;
	case PT_VARINT:
		st = buf_get_varint(r, &val->num);
		break;
	case PT_STRING:
	case PT_TOPIC:
	case PT_BINARY:
		st = buf_get_binary(r, &val->str);
		break;
	case PT_PAIR:
		if ((st = buf_get_binary(r, &val->str)) == BUF_OK)
			st = buf_get_binary(r, &val->str2);
		break;
	}
	return st == BUF_OK ? MQTT_OK : section_status(st);
}

static void
store(struct mqtt_props *p, const struct prop_def *d, const struct prop_value *val)
{
	char *f = (char *)p + d->field;

	switch (d->type) {
	case PT_BYTE:
		*(uint8_t *)f = (uint8_t)val->num;
		break;
	case PT_U16:
		*(uint16_t *)f = (uint16_t)val->num;
		break;
	case PT_U32:
	case PT_VARINT:
		*(uint32_t *)f = val->num;
		break;
	case PT_STRING:
	case PT_TOPIC:
	case PT_BINARY:
		*(struct buf_view *)f = val->str;
		break;
	case PT_PAIR:		/* always repeatable: never stored */
		break;
	}
}

/* The single value of a property as a prop_value, for checks and output. */
static struct prop_value
load(const struct mqtt_props *p, const struct prop_def *d)
{
	const char *f = (const char *)p + d->field;
	struct prop_value val;

	memset(&val, 0, sizeof(val));
	switch (d->type) {
	case PT_BYTE:
		val.num = *(const uint8_t *)f;
		break;
	case PT_U16:
		val.num = *(const uint16_t *)f;
		break;
	case PT_U32:
	case PT_VARINT:
		val.num = *(const uint32_t *)f;
		break;
	case PT_STRING:
	case PT_TOPIC:
	case PT_BINARY:
		val.str = *(const struct buf_view *)f;
		break;
	case PT_PAIR:
		break;
	}
	return val;
}

static struct buf_view
list_of(const struct mqtt_props *p, const struct prop_def *d)
{
	return *(const struct buf_view *)((const char *)p + d->list);
}

enum mqtt_status
mqtt_props_read(struct buf_reader *r, unsigned where, struct mqtt_props *p)
{
	struct buf_reader sec;
	struct buf_view all;
	struct prop_value val;
	enum buf_status bst;
	enum mqtt_status st;
	uint32_t len, id;

	if ((bst = buf_get_varint(r, &len)) != BUF_OK)
		return bst == BUF_SHORT ? MQTT_E_TRUNCATED : MQTT_E_VARINT;
	if (buf_get_bytes(r, len, &all) != BUF_OK)
		return MQTT_E_PROP_LENGTH;
	p->user_props = p->sub_ids = all;
	buf_reader_init(&sec, all.ptr, all.len);
	while (buf_left(&sec) > 0) {
		const struct prop_def *d;

		if ((st = prop_next(&sec, &id, &val)) != MQTT_OK)
			return st;
		d = &defs[id];
		if ((d->in & mqtt_where_bit(where)) == 0)
			return MQTT_E_PROP_NOT_ALLOWED;
		if (!repeats_in(d, where)) {
			if (p->present & id_bit(id))
				return MQTT_E_PROP_DUP;
			store(p, d, &val);
		}
		p->present |= id_bit(id);
	}
	return MQTT_OK;
}

static enum mqtt_status
check_value(const struct prop_def *d, const struct prop_value *val)
{
	enum mqtt_status st;

	switch (d->type) {
	case PT_BYTE:
	case PT_U16:
	case PT_U32:
	case PT_VARINT:
		if (val->num < d->min || val->num > d->max)
			return MQTT_E_PROP_VALUE;
		return MQTT_OK;
	case PT_STRING:
		return mqtt_check_string(val->str);
	case PT_TOPIC:
		return mqtt_check_topic_name(val->str);
	case PT_BINARY:
		return mqtt_check_binary(val->str);
	case PT_PAIR:
		if ((st = mqtt_check_string(val->str)) != MQTT_OK)
			return st;
		return mqtt_check_string(val->str2);
	}
	return MQTT_E_PROP_UNKNOWN;
}

/*
 * Check every entry of property id in a list view. The other entries must
 * parse, since the same walk writes the list out, but are not looked at.
 */
static enum mqtt_status
check_list(struct buf_view list, uint32_t want, const struct prop_def *d)
{
	struct buf_reader r;
	struct prop_value val;
	enum mqtt_status st;
	uint32_t id;

	buf_reader_init(&r, list.ptr, list.len);
	while (buf_left(&r) > 0) {
		if ((st = prop_next(&r, &id, &val)) != MQTT_OK)
			return st;
		if (id == want && (st = check_value(d, &val)) != MQTT_OK)
			return st;
	}
	return MQTT_OK;
}

enum mqtt_status
mqtt_props_check(const struct mqtt_props *p, unsigned where)
{
	enum mqtt_status st;
	uint32_t id;

	for (id = 0; id < 64; id++) {
		const struct prop_def *d = lookup(id);
		struct prop_value val;

		if (d != NULL && repeats_in(d, where)) {
			st = check_list(list_of(p, d), id, d);
			if (st != MQTT_OK)
				return st;
			continue;
		}
		if ((p->present & id_bit(id)) == 0)
			continue;
		if (d == NULL)
			return MQTT_E_PROP_UNKNOWN;
		if ((d->in & mqtt_where_bit(where)) == 0)
			return MQTT_E_PROP_NOT_ALLOWED;
		val = load(p, d);
		if ((st = check_value(d, &val)) != MQTT_OK)
			return st;
	}
	if (mqtt_props_has(p, MQTT_PROP_AUTH_DATA) &&
	    !mqtt_props_has(p, MQTT_PROP_AUTH_METHOD))
		return MQTT_E_AUTH_METHOD;
	return MQTT_OK;
}

static void
put_value(struct buf_writer *w, uint32_t id, const struct prop_def *d,
    const struct prop_value *val)
{
	buf_put_varint(w, id);
	switch (d->type) {
	case PT_BYTE:
		buf_put_u8(w, (uint8_t)val->num);
		break;
	case PT_U16:
		buf_put_u16(w, (uint16_t)val->num);
		break;
	case PT_U32:
		buf_put_u32(w, val->num);
		break;
	case PT_VARINT:
		buf_put_varint(w, val->num);
		break;
	case PT_STRING:
	case PT_TOPIC:
	case PT_BINARY:
		buf_put_binary(w, val->str.ptr, val->str.len);
		break;
	case PT_PAIR:
		buf_put_binary(w, val->str.ptr, val->str.len);
		buf_put_binary(w, val->str2.ptr, val->str2.len);
		break;
	}
}

/* Write the entries of property want from a list view, in their order. */
static void
put_list(struct buf_writer *w, struct buf_view list, uint32_t want,
    const struct prop_def *d)
{
	struct buf_reader r;
	struct prop_value val;
	uint32_t id;

	buf_reader_init(&r, list.ptr, list.len);
	while (buf_left(&r) > 0 && prop_next(&r, &id, &val) == MQTT_OK)
		if (id == want)
			put_value(w, id, d, &val);
}

static void
put_entries(struct buf_writer *w, const struct mqtt_props *p, unsigned where)
{
	uint32_t id;

	for (id = 0; id < NDEFS; id++) {
		const struct prop_def *d = lookup(id);
		struct prop_value val;

		if (d == NULL)
			continue;
		if (repeats_in(d, where)) {
			put_list(w, list_of(p, d), id, d);
		} else if (p->present & id_bit(id)) {
			val = load(p, d);
			put_value(w, id, d, &val);
		}
	}
}

void
mqtt_props_write(struct buf_writer *w, const struct mqtt_props *p,
    unsigned where)
{
	struct buf_writer count;
	size_t len;

	buf_writer_init(&count, NULL, 0);
	put_entries(&count, p, where);
	len = buf_written(&count);
	/* An oversize section must fail as BUF_RANGE, not wrap to a small length. */
	buf_put_varint(w, len > BUF_VARINT_MAX ? UINT32_MAX : (uint32_t)len);
	put_entries(w, p, where);
}

bool
mqtt_props_empty(const struct mqtt_props *p, unsigned where)
{
	struct buf_writer count;

	buf_writer_init(&count, NULL, 0);
	put_entries(&count, p, where);
	return buf_written(&count) == 0;
}

static bool
value_eq(const struct prop_def *d, const struct prop_value *a,
    const struct prop_value *b)
{
	return a->num == b->num && buf_view_eq(a->str, b->str) &&
	    (d->type != PT_PAIR || buf_view_eq(a->str2, b->str2));
}

/* Do two list views hold the same entries of property want, in order? */
static bool
list_eq(struct buf_view la, struct buf_view lb, uint32_t want,
    const struct prop_def *d)
{
	struct buf_reader ra, rb;
	struct prop_value va, vb;
	uint32_t id;
	bool more_a, more_b;

	buf_reader_init(&ra, la.ptr, la.len);
	buf_reader_init(&rb, lb.ptr, lb.len);
	for (;;) {
		memset(&va, 0, sizeof(va));
		memset(&vb, 0, sizeof(vb));
		while ((more_a = buf_left(&ra) > 0 &&
		    prop_next(&ra, &id, &va) == MQTT_OK) && id != want)
			memset(&va, 0, sizeof(va));
		while ((more_b = buf_left(&rb) > 0 &&
		    prop_next(&rb, &id, &vb) == MQTT_OK) && id != want)
			memset(&vb, 0, sizeof(vb));
		if (!more_a || !more_b)
			return more_a == more_b;
		if (!value_eq(d, &va, &vb))
			return false;
	}
}

bool
mqtt_props_equal(const struct mqtt_props *a, const struct mqtt_props *b,
    unsigned where)
{
	uint32_t id;

	for (id = 0; id < NDEFS; id++) {
		const struct prop_def *d = lookup(id);
		struct prop_value va, vb;

		if (d == NULL)
			continue;
		if (repeats_in(d, where)) {
			if (!list_eq(list_of(a, d), list_of(b, d), id, d))
				return false;
			continue;
		}
		if ((a->present & id_bit(id)) != (b->present & id_bit(id)))
			return false;
		if ((a->present & id_bit(id)) == 0)
			continue;
		va = load(a, d);
		vb = load(b, d);
		if (!value_eq(d, &va, &vb))
			return false;
	}
	return true;
}

bool
mqtt_props_has(const struct mqtt_props *p, enum mqtt_prop_id id)
{
	return (p->present & id_bit(id)) != 0;
}

void
mqtt_props_set(struct mqtt_props *p, enum mqtt_prop_id id)
{
	p->present |= id_bit(id);
}

void
mqtt_iter_init(struct mqtt_iter *it, struct buf_view list)
{
	buf_reader_init(&it->r, list.ptr, list.len);
}

/* The next entry of property want; at bad bytes, the iterator ends. */
static bool
next_of(struct mqtt_iter *it, uint32_t want, struct prop_value *val)
{
	uint32_t id;

	while (buf_left(&it->r) > 0) {
		if (prop_next(&it->r, &id, val) != MQTT_OK) {
			buf_reader_init(&it->r, NULL, 0);
			return false;
		}
		if (id == want)
			return true;
	}
	return false;
}

bool
mqtt_user_prop_next(struct mqtt_iter *it, struct buf_view *key,
    struct buf_view *value)
{
	struct prop_value val;

	if (!next_of(it, MQTT_PROP_USER, &val))
		return false;
	*key = val.str;
	*value = val.str2;
	return true;
}

bool
mqtt_sub_id_next(struct mqtt_iter *it, uint32_t *id)
{
	struct prop_value val;

	if (!next_of(it, MQTT_PROP_SUBSCRIPTION_ID, &val))
		return false;
	*id = val.num;
	return true;
}

void
mqtt_user_prop_put(struct buf_writer *w, struct buf_view key,
    struct buf_view value)
{
	struct prop_value val = { 0, key, value };

	put_value(w, MQTT_PROP_USER, &defs[MQTT_PROP_USER], &val);
}

void
mqtt_sub_id_put(struct buf_writer *w, uint32_t id)
{
	struct prop_value val = { id, { NULL, 0 }, { NULL, 0 } };

	put_value(w, MQTT_PROP_SUBSCRIPTION_ID, &defs[MQTT_PROP_SUBSCRIPTION_ID],
	    &val);
}
