/*
 * Unit tests for mqtt/mqtt: every packet type round-trips through encode and
 * decode in both versions (and every strict prefix of each encoding is
 * NEED_MORE), the specification's examples decode and re-encode byte for
 * byte, and every format rule has a row of exact bad bytes with the status it
 * must produce. The encoder's own validation, the iterators, the header-only
 * PUBLISH and the status tables are tested last.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "mqtt/mqtt.h"

#define BUFSZ	4096

/*
 * Bytes from a readable spec: hex pairs, and 'text' for ASCII runs, with
 * spaces anywhere between them: "00 03 'a/b' 01".
 */
static size_t
hex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;

	while (*s != '\0') {
		if (*s == ' ') {
			s++;
		} else if (*s == '\'') {
			for (s++; *s != '\'' && *s != '\0'; s++) {
				assert_true(n < cap);
				out[n++] = (uint8_t)*s;
			}
			assert_int_equal(*s, '\'');
			s++;
		} else {
			char pair[3] = { s[0], s[1], '\0' };
			char *end;

			assert_true(n < cap);
			out[n++] = (uint8_t)strtoul(pair, &end, 16);
			assert_ptr_equal(end, pair + 2);
			s += 2;
		}
	}
	return n;
}

/* A packet from its first byte and its body: the Remaining Length is added. */
static size_t
frame(uint8_t first, const char *body, uint8_t *out, size_t cap)
{
	uint8_t tmp[BUFSZ];
	struct buf_writer w;
	size_t n = hex(body, tmp, sizeof(tmp));

	buf_writer_init(&w, out, cap);
	buf_put_u8(&w, first);
	buf_put_varint(&w, (uint32_t)n);
	buf_put_bytes(&w, tmp, n);
	assert_int_equal(buf_writer_status(&w), BUF_OK);
	return buf_written(&w);
}

static struct buf_view
view(const uint8_t *p, size_t n)
{
	struct buf_view v = { p, n };

	return v;
}

/*
 * Encode, decode, compare; then the properties of the encoding: exact size,
 * canonical re-encoding, every strict prefix NEED_MORE, the size limit, the
 * output limit, and a following packet left alone.
 */
static void
roundtrip(const struct mqtt_packet *in, enum mqtt_version v)
{
	uint8_t out[BUFSZ + 2], again[BUFSZ];
	struct mqtt_packet got, scratch;
	size_t size, n, n2, used, i;

	assert_int_equal(mqtt_size(in, v, &size), MQTT_OK);
	assert_int_equal(mqtt_encode(in, v, out, BUFSZ, &n), MQTT_OK);
	assert_int_equal(n, size);
	assert_int_equal(mqtt_decode(out, n, v, MQTT_MAX_PACKET, &got, &used),
	    MQTT_OK);
	assert_int_equal(used, n);
	assert_int_equal(got.type, in->type);
	assert_true(mqtt_packet_equal(in, &got, v));
	assert_true(mqtt_packet_equal(&got, in, v));

	assert_int_equal(mqtt_encode(&got, v, again, sizeof(again), &n2), MQTT_OK);
	assert_int_equal(n2, n);
	assert_memory_equal(again, out, n);

	for (i = 0; i < n; i++)
		assert_int_equal(mqtt_decode(out, i, v, MQTT_MAX_PACKET,
		    &scratch, &used), MQTT_NEED_MORE);
	assert_int_equal(mqtt_decode(out, n, v, n - 1, &scratch, &used),
	    MQTT_E_TOO_LARGE);
	assert_int_equal(mqtt_decode(out, n, v, n, &scratch, &used), MQTT_OK);
	assert_int_equal(mqtt_encode(in, v, again, n - 1, &n2), MQTT_NO_SPACE);

	out[n] = 0xc0;		/* a PINGREQ right behind */
	out[n + 1] = 0x00;
	assert_int_equal(mqtt_decode(out, n + 2, v, MQTT_MAX_PACKET, &scratch,
	    &used), MQTT_OK);
	assert_int_equal(used, n);
}

static void
roundtrip_both(const struct mqtt_packet *in)
{
	roundtrip(in, MQTT_V311);
	roundtrip(in, MQTT_V5);
}

static struct buf_view
user_props(void)
{
	static uint8_t mem[128];
	struct buf_writer w;

	buf_writer_init(&w, mem, sizeof(mem));
	mqtt_user_prop_put(&w, buf_cstr("k1"), buf_cstr("v1"));
	mqtt_user_prop_put(&w, buf_cstr("k2"), buf_cstr(""));
	mqtt_user_prop_put(&w, buf_cstr("k1"), buf_cstr("v3"));
	assert_int_equal(buf_writer_status(&w), BUF_OK);
	return view(mem, buf_written(&w));
}

static struct buf_view
sub_ids(void)
{
	static uint8_t mem[16];
	struct buf_writer w;

	buf_writer_init(&w, mem, sizeof(mem));
	mqtt_sub_id_put(&w, 1);
	mqtt_sub_id_put(&w, 268435455);
	mqtt_sub_id_put(&w, 200);
	assert_int_equal(buf_writer_status(&w), BUF_OK);
	return view(mem, buf_written(&w));
}

static void
set_connect_props(struct mqtt_props *p)
{
	p->session_expiry = 3600;
	p->receive_maximum = 20;
	p->maximum_packet_size = 65536;
	p->topic_alias_maximum = 10;
	p->request_response_info = 1;
	p->request_problem_info = 0;
	p->auth_method = buf_cstr("SCRAM-SHA-1");
	p->auth_data = buf_cstr("\x01\x02");
	mqtt_props_set(p, MQTT_PROP_SESSION_EXPIRY);
	mqtt_props_set(p, MQTT_PROP_RECEIVE_MAXIMUM);
	mqtt_props_set(p, MQTT_PROP_MAXIMUM_PACKET_SIZE);
	mqtt_props_set(p, MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
	mqtt_props_set(p, MQTT_PROP_REQUEST_RESPONSE_INFO);
	mqtt_props_set(p, MQTT_PROP_REQUEST_PROBLEM_INFO);
	mqtt_props_set(p, MQTT_PROP_AUTH_METHOD);
	mqtt_props_set(p, MQTT_PROP_AUTH_DATA);
	p->user_props = user_props();
}

/* The properties of an application message: PUBLISH and Will. */
static void
set_message_props(struct mqtt_props *p)
{
	p->payload_format = 1;
	p->message_expiry = 120;
	p->content_type = buf_cstr("application/json");
	p->response_topic = buf_cstr("reply/here");
	p->correlation_data = buf_cstr("\xde\xad\xbe\xef");
	mqtt_props_set(p, MQTT_PROP_PAYLOAD_FORMAT);
	mqtt_props_set(p, MQTT_PROP_MESSAGE_EXPIRY);
	mqtt_props_set(p, MQTT_PROP_CONTENT_TYPE);
	mqtt_props_set(p, MQTT_PROP_RESPONSE_TOPIC);
	mqtt_props_set(p, MQTT_PROP_CORRELATION_DATA);
	p->user_props = user_props();
}

static void
set_reason_props(struct mqtt_props *p)
{
	p->reason_string = buf_cstr("because");
	mqtt_props_set(p, MQTT_PROP_REASON_STRING);
	p->user_props = user_props();
}

/* Round trips */

static void
test_connect_roundtrip(void **state)
{
	enum mqtt_version versions[] = { MQTT_V311, MQTT_V5 };
	size_t i;

	for (i = 0; i < 2; i++) {
		enum mqtt_version v = versions[i];
		struct mqtt_packet p = { .type = MQTT_CONNECT };

		p.connect.protocol_level = (uint8_t)v;
		p.connect.clean_start = true;
		p.connect.keep_alive = 60;
		p.connect.client_id = buf_cstr("esp-12");
		roundtrip(&p, v);

		p.connect.client_id = buf_cstr("");	/* server assigns one */
		roundtrip(&p, v);

		p.connect.clean_start = false;
		p.connect.client_id = buf_cstr("esp-12");
		p.connect.keep_alive = 0;
		p.connect.will = true;
		p.connect.will_qos = 2;
		p.connect.will_retain = true;
		p.connect.will_topic = buf_cstr("status/esp-12");
		p.connect.will_payload = buf_cstr("offline");
		p.connect.has_username = true;
		p.connect.username = buf_cstr("dev\xC3\xA9");
		p.connect.has_password = true;
		p.connect.password = view((const uint8_t *)"\x00\xff", 2);
		if (v == MQTT_V5) {
			set_connect_props(&p.connect.props);
			set_message_props(&p.connect.will_props);
			p.connect.will_props.will_delay = 30;
			mqtt_props_set(&p.connect.will_props,
			    MQTT_PROP_WILL_DELAY);
		}
		roundtrip(&p, v);

		p.connect.has_password = false;
		p.connect.will_qos = 0;
		p.connect.will_retain = false;
		p.connect.will_payload = buf_cstr("");
		roundtrip(&p, v);
	}
}

static void
test_connack_roundtrip(void **state)
{
	struct mqtt_packet p = { .type = MQTT_CONNACK };
	struct mqtt_props *pr = &p.connack.props;

	p.connack.session_present = true;
	roundtrip_both(&p);
	p.connack.session_present = false;
	p.connack.reason_code = 0x05;	/* 3.1.1: not authorized */
	roundtrip(&p, MQTT_V311);
	p.connack.reason_code = 0x87;
	roundtrip(&p, MQTT_V5);

	p.connack.reason_code = 0;
	p.connack.session_present = true;
	pr->session_expiry = 0xffffffff;
	pr->receive_maximum = 65535;
	pr->maximum_qos = 1;
	pr->retain_available = 0;
	pr->maximum_packet_size = 1048576;
	pr->assigned_client_id = buf_cstr("auto-7f3a");
	pr->topic_alias_maximum = 0;
	pr->wildcard_sub_available = 1;
	pr->sub_id_available = 0;
	pr->shared_sub_available = 1;
	pr->server_keep_alive = 30;
	pr->response_info = buf_cstr("resp/");
	pr->server_reference = buf_cstr("other:1883");
	pr->auth_method = buf_cstr("SCRAM-SHA-1");
	pr->auth_data = buf_cstr("final");
	mqtt_props_set(pr, MQTT_PROP_SESSION_EXPIRY);
	mqtt_props_set(pr, MQTT_PROP_RECEIVE_MAXIMUM);
	mqtt_props_set(pr, MQTT_PROP_MAXIMUM_QOS);
	mqtt_props_set(pr, MQTT_PROP_RETAIN_AVAILABLE);
	mqtt_props_set(pr, MQTT_PROP_MAXIMUM_PACKET_SIZE);
	mqtt_props_set(pr, MQTT_PROP_ASSIGNED_CLIENT_ID);
	mqtt_props_set(pr, MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
	mqtt_props_set(pr, MQTT_PROP_WILDCARD_SUB_AVAILABLE);
	mqtt_props_set(pr, MQTT_PROP_SUB_ID_AVAILABLE);
	mqtt_props_set(pr, MQTT_PROP_SHARED_SUB_AVAILABLE);
	mqtt_props_set(pr, MQTT_PROP_SERVER_KEEP_ALIVE);
	mqtt_props_set(pr, MQTT_PROP_RESPONSE_INFO);
	mqtt_props_set(pr, MQTT_PROP_SERVER_REFERENCE);
	mqtt_props_set(pr, MQTT_PROP_AUTH_METHOD);
	mqtt_props_set(pr, MQTT_PROP_AUTH_DATA);
	set_reason_props(pr);
	roundtrip_both(&p);	/* 3.1.1 leaves the properties out */
}

static void
test_publish_roundtrip(void **state)
{
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	uint8_t qos;

	p.publish.topic = buf_cstr("sensors/t\xC3\xA9mp");
	p.publish.payload = buf_cstr("21.5");
	for (qos = 0; qos <= 2; qos++) {
		p.publish.qos = qos;
		p.publish.packet_id = qos == 0 ? 0 : 0xffff;
		p.publish.dup = qos > 0;
		p.publish.retain = qos == 1;
		roundtrip_both(&p);
	}
	p.publish.payload = buf_cstr("");
	roundtrip_both(&p);

	set_message_props(&p.publish.props);
	p.publish.props.topic_alias = 7;
	mqtt_props_set(&p.publish.props, MQTT_PROP_TOPIC_ALIAS);
	p.publish.props.sub_ids = sub_ids();
	roundtrip_both(&p);

	p.publish.topic = buf_cstr("");	/* 5.0: the alias stands for it */
	roundtrip(&p, MQTT_V5);
}

static void
test_acks_roundtrip(void **state)
{
	const enum mqtt_type types[] = {
		MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP
	};
	const uint8_t failure[] = { 0x97, 0x83, 0x92, 0x92 };
	size_t i;

	for (i = 0; i < 4; i++) {
		struct mqtt_packet p = { .type = types[i] };

		p.ack.packet_id = 1;
		roundtrip_both(&p);
		p.ack.reason_code = failure[i];
		roundtrip(&p, MQTT_V5);
		set_reason_props(&p.ack.props);
		roundtrip(&p, MQTT_V5);
		p.ack.reason_code = 0;
		roundtrip(&p, MQTT_V5);
	}
}

static struct buf_view
subscriptions(enum mqtt_version v)
{
	static uint8_t mem[128];
	struct mqtt_subscription s[3] = {
		{ .filter = buf_cstr("a/+/c"), .qos = 1 },
		{ .filter = buf_cstr("#"), .qos = 2 },
		{ .filter = buf_cstr("$SYS/x"), .qos = 0 },
	};
	struct buf_writer w;
	size_t i;

	if (v == MQTT_V5) {
		s[0].no_local = true;
		s[1].retain_as_published = true;
		s[1].retain_handling = 2;
		s[2].filter = buf_cstr("$share/grp/b/#");
		s[2].retain_handling = 1;
	}
	buf_writer_init(&w, mem, sizeof(mem));
	for (i = 0; i < 3; i++)
		mqtt_subscription_put(&w, &s[i]);
	assert_int_equal(buf_writer_status(&w), BUF_OK);
	return view(mem, buf_written(&w));
}

static void
test_subscribe_roundtrip(void **state)
{
	struct mqtt_packet p = { .type = MQTT_SUBSCRIBE };

	p.subscribe.packet_id = 10;
	p.subscribe.list = subscriptions(MQTT_V311);
	roundtrip_both(&p);
	p.subscribe.list = subscriptions(MQTT_V5);
	p.subscribe.props.subscription_id = 42;
	mqtt_props_set(&p.subscribe.props, MQTT_PROP_SUBSCRIPTION_ID);
	p.subscribe.props.user_props = user_props();
	roundtrip(&p, MQTT_V5);
}

static void
test_suback_roundtrip(void **state)
{
	const uint8_t codes311[] = { 0x00, 0x01, 0x02, 0x80 };
	const uint8_t codes5[] = { 0x00, 0x02, 0x83, 0x8f, 0x9e, 0xa1, 0xa2 };
	struct mqtt_packet p = { .type = MQTT_SUBACK };

	p.suback.packet_id = 10;
	p.suback.reason_codes = view(codes311, sizeof(codes311));
	roundtrip_both(&p);
	p.suback.reason_codes = view(codes5, sizeof(codes5));
	set_reason_props(&p.suback.props);
	roundtrip(&p, MQTT_V5);
}

static void
test_unsubscribe_roundtrip(void **state)
{
	uint8_t mem[64];
	struct mqtt_packet p = { .type = MQTT_UNSUBSCRIBE };
	struct buf_writer w;

	buf_writer_init(&w, mem, sizeof(mem));
	mqtt_filter_put(&w, buf_cstr("a/+/c"));
	mqtt_filter_put(&w, buf_cstr("#"));
	p.unsubscribe.packet_id = 11;
	p.unsubscribe.list = view(mem, buf_written(&w));
	roundtrip_both(&p);
	p.unsubscribe.props.user_props = user_props();
	roundtrip(&p, MQTT_V5);
}

static void
test_unsuback_roundtrip(void **state)
{
	const uint8_t codes[] = { 0x00, 0x11, 0x87 };
	struct mqtt_packet p = { .type = MQTT_UNSUBACK };

	p.unsuback.packet_id = 11;
	roundtrip(&p, MQTT_V311);	/* 3.1.1: no reason codes */
	p.unsuback.reason_codes = view(codes, sizeof(codes));
	roundtrip_both(&p);
	set_reason_props(&p.unsuback.props);
	roundtrip(&p, MQTT_V5);
}

static void
test_ping_roundtrip(void **state)
{
	struct mqtt_packet req = { .type = MQTT_PINGREQ };
	struct mqtt_packet resp = { .type = MQTT_PINGRESP };

	roundtrip_both(&req);
	roundtrip_both(&resp);
}

static void
test_disconnect_roundtrip(void **state)
{
	struct mqtt_packet p = { .type = MQTT_DISCONNECT };

	roundtrip_both(&p);
	p.disconnect.reason_code = 0x04;
	roundtrip(&p, MQTT_V5);
	p.disconnect.reason_code = 0x8e;
	set_reason_props(&p.disconnect.props);
	p.disconnect.props.session_expiry = 0;
	mqtt_props_set(&p.disconnect.props, MQTT_PROP_SESSION_EXPIRY);
	p.disconnect.props.server_reference = buf_cstr("b:1883");
	mqtt_props_set(&p.disconnect.props, MQTT_PROP_SERVER_REFERENCE);
	roundtrip(&p, MQTT_V5);
	p.disconnect.reason_code = 0;
	roundtrip(&p, MQTT_V5);
}

static void
test_auth_roundtrip(void **state)
{
	struct mqtt_packet p = { .type = MQTT_AUTH };
	size_t size;

	roundtrip(&p, MQTT_V5);
	assert_int_equal(mqtt_size(&p, MQTT_V311, &size), MQTT_E_TYPE);
	p.auth.reason_code = 0x18;
	p.auth.props.auth_method = buf_cstr("SCRAM-SHA-1");
	p.auth.props.auth_data = buf_cstr("client-first");
	mqtt_props_set(&p.auth.props, MQTT_PROP_AUTH_METHOD);
	mqtt_props_set(&p.auth.props, MQTT_PROP_AUTH_DATA);
	set_reason_props(&p.auth.props);
	roundtrip(&p, MQTT_V5);
	p.auth.reason_code = 0x19;
	roundtrip(&p, MQTT_V5);
	p.auth.reason_code = 0x00;
	roundtrip(&p, MQTT_V5);
}

/* Published examples and exact encodings */

static void
expect_bytes(const struct mqtt_packet *p, enum mqtt_version v, const uint8_t *want,
    size_t len)
{
	uint8_t out[BUFSZ];
	size_t n;

	assert_int_equal(mqtt_encode(p, v, out, sizeof(out), &n), MQTT_OK);
	assert_int_equal(n, len);
	assert_memory_equal(out, want, len);
}

/* MQTT 3.1.1 section 3.1.2.10, figure 3.6: the CONNECT variable header. */
static void
test_spec_connect_311(void **state)
{
	uint8_t in[128];
	struct mqtt_packet p;
	size_t n, used;

	n = frame(0x10, "00 04 'MQTT' 04 ce 00 0a"
	    " 00 03 'cid' 00 03 'w/t' 00 02 'wm' 00 04 'user' 00 04 'pass'",
	    in, sizeof(in));
	assert_int_equal(mqtt_decode(in, n, MQTT_V311, MQTT_MAX_PACKET, &p,
	    &used), MQTT_OK);
	assert_int_equal(p.connect.protocol_level, 4);
	assert_true(p.connect.has_username);
	assert_true(p.connect.has_password);
	assert_false(p.connect.will_retain);
	assert_int_equal(p.connect.will_qos, 1);
	assert_true(p.connect.will);
	assert_true(p.connect.clean_start);
	assert_int_equal(p.connect.keep_alive, 10);
	assert_true(buf_view_eq(p.connect.client_id, buf_cstr("cid")));
	assert_true(buf_view_eq(p.connect.will_topic, buf_cstr("w/t")));
	assert_true(buf_view_eq(p.connect.will_payload, buf_cstr("wm")));
	assert_true(buf_view_eq(p.connect.username, buf_cstr("user")));
	assert_true(buf_view_eq(p.connect.password, buf_cstr("pass")));
	expect_bytes(&p, MQTT_V311, in, n);
}

/* MQTT 5.0 section 3.1.2.11, figure 3-6: level 5, flags C2, 10 s, expiry 10. */
static void
test_spec_connect_v5(void **state)
{
	uint8_t in[128];
	struct mqtt_packet p;
	size_t n, used;

	n = frame(0x10, "00 04 'MQTT' 05 c2 00 0a 05 11 00 00 00 0a"
	    " 00 03 'cid' 00 04 'user' 00 04 'pass'", in, sizeof(in));
	assert_int_equal(mqtt_decode(in, n, MQTT_V311, MQTT_MAX_PACKET, &p,
	    &used), MQTT_OK);
	assert_int_equal(p.connect.protocol_level, 5);
	assert_true(p.connect.clean_start);
	assert_false(p.connect.will);
	assert_true(mqtt_props_has(&p.connect.props, MQTT_PROP_SESSION_EXPIRY));
	assert_int_equal(p.connect.props.session_expiry, 10);
	assert_int_equal(p.connect.props.present,
	    (uint64_t)1 << MQTT_PROP_SESSION_EXPIRY);
	expect_bytes(&p, MQTT_V5, in, n);
}

/* MQTT 5.0 section 1.5.4, figure 1-1: "A" U+2A6D4 is 00 05 41 F0 AA 9B 94. */
static void
test_spec_utf8_string(void **state)
{
	uint8_t in[32];
	struct mqtt_packet p;
	size_t n, used;

	n = frame(0x30, "00 05 41 f0 aa 9b 94 'x'", in, sizeof(in));
	assert_int_equal(mqtt_decode(in, n, MQTT_V311, MQTT_MAX_PACKET, &p,
	    &used), MQTT_OK);
	assert_true(buf_view_eq(p.publish.topic, buf_cstr("A\xF0\xAA\x9B\x94")));
	assert_true(buf_view_eq(p.publish.payload, buf_cstr("x")));
	expect_bytes(&p, MQTT_V311, in, n);

	n = frame(0x30, "00 04 41 f0 aa 9b 94", in, sizeof(in));
	assert_int_equal(mqtt_decode(in, n, MQTT_V311, MQTT_MAX_PACKET, &p,
	    &used), MQTT_E_UTF8);
}

/* The Remaining Length rows of the specification's varint table. */
static void
test_spec_remaining_length(void **state)
{
	static const struct {
		uint32_t	remlen;
		const char	*header;
	} rows[] = {
		{ 0, "30 00" },
		{ 127, "30 7f" },
		{ 128, "30 80 01" },
		{ 16383, "30 ff 7f" },
		{ 16384, "30 80 80 01" },
		{ 2097151, "30 ff ff 7f" },
		{ 2097152, "30 80 80 80 01" },
		{ 268435455, "30 ff ff ff 7f" },
	};
	uint8_t hdr[8], out[16];
	struct mqtt_header h;
	size_t i, n, k, size;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		n = hex(rows[i].header, hdr, sizeof(hdr));
		assert_int_equal(mqtt_probe(hdr, n, MQTT_MAX_PACKET, &h), MQTT_OK);
		assert_int_equal(h.type, MQTT_PUBLISH);
		assert_int_equal(h.remaining, rows[i].remlen);
		assert_int_equal(h.size, n + rows[i].remlen);
		for (k = 0; k < n; k++)
			assert_int_equal(mqtt_probe(hdr, k, MQTT_MAX_PACKET, &h),
			    MQTT_NEED_MORE);

		/* The encoder writes the same header: topic "t" + payload. */
		if (rows[i].remlen >= 3) {
			struct mqtt_publish pub = { .topic = buf_cstr("t") };

			pub.payload.len = rows[i].remlen - 3;
			assert_int_equal(mqtt_encode_publish_header(&pub,
			    MQTT_V311, out, sizeof(out), &k), MQTT_OK);
			assert_int_equal(k, n + 3);
			assert_memory_equal(out, hdr, n);
			assert_int_equal(mqtt_publish_header_size(&pub,
			    MQTT_V311, &size), MQTT_OK);
			assert_int_equal(size, k);
		}
	}

	n = hex("30 ff ff ff ff 7f", hdr, sizeof(hdr));
	assert_int_equal(mqtt_probe(hdr, n, MQTT_MAX_PACKET, &h), MQTT_E_REMLEN);
	n = hex("30 ff ff ff 80", hdr, sizeof(hdr));	/* 5th byte announced */
	assert_int_equal(mqtt_probe(hdr, n, MQTT_MAX_PACKET, &h), MQTT_E_REMLEN);
	n = hex("30 80 00", hdr, sizeof(hdr));		/* 0 in two bytes */
	assert_int_equal(mqtt_probe(hdr, n, MQTT_MAX_PACKET, &h), MQTT_E_REMLEN);
	n = hex("30 ff 80 00", hdr, sizeof(hdr));	/* 127 in three bytes */
	assert_int_equal(mqtt_decode(hdr, n, MQTT_V5, MQTT_MAX_PACKET,
	    &(struct mqtt_packet){ 0 }, &k), MQTT_E_REMLEN);

	/* One byte more than the largest Remaining Length. */
	{
		struct mqtt_publish pub = { .topic = buf_cstr("t") };

		pub.payload.len = 268435455 - 3 + 1;
		assert_int_equal(mqtt_publish_header_size(&pub, MQTT_V311,
		    &size), MQTT_E_TOO_LARGE);
	}
}

static void
test_short_forms(void **state)
{
	uint8_t want[16];
	struct mqtt_packet p = { .type = MQTT_PUBACK };
	size_t n;

	p.ack.packet_id = 1;
	n = hex("40 02 00 01", want, sizeof(want));
	expect_bytes(&p, MQTT_V5, want, n);
	expect_bytes(&p, MQTT_V311, want, n);
	p.ack.reason_code = 0x10;
	n = hex("40 03 00 01 10", want, sizeof(want));
	expect_bytes(&p, MQTT_V5, want, n);
	n = hex("40 02 00 01", want, sizeof(want));	/* 3.1.1 has no code */
	expect_bytes(&p, MQTT_V311, want, n);
	set_reason_props(&p.ack.props);
	p.ack.props.user_props = view(NULL, 0);
	n = hex("40 0e 00 01 10 0a 1f 00 07 'because'", want, sizeof(want));
	expect_bytes(&p, MQTT_V5, want, n);

	p.type = MQTT_DISCONNECT;
	memset(&p.disconnect, 0, sizeof(p.disconnect));
	n = hex("e0 00", want, sizeof(want));
	expect_bytes(&p, MQTT_V5, want, n);
	p.disconnect.reason_code = 0x04;
	n = hex("e0 01 04", want, sizeof(want));
	expect_bytes(&p, MQTT_V5, want, n);
	n = hex("e0 00", want, sizeof(want));
	expect_bytes(&p, MQTT_V311, want, n);

	p.type = MQTT_AUTH;
	memset(&p.auth, 0, sizeof(p.auth));
	n = hex("f0 00", want, sizeof(want));
	expect_bytes(&p, MQTT_V5, want, n);
}

/* Decoding the short forms gives the defaults the specification names. */
static void
test_short_forms_decode(void **state)
{
	uint8_t in[16];
	struct mqtt_packet p;
	size_t n, used;

	n = hex("50 02 00 07", in, sizeof(in));
	assert_int_equal(mqtt_decode(in, n, MQTT_V5, MQTT_MAX_PACKET, &p, &used),
	    MQTT_OK);
	assert_int_equal(p.ack.packet_id, 7);
	assert_int_equal(p.ack.reason_code, 0);
	n = hex("50 03 00 07 10", in, sizeof(in));
	assert_int_equal(mqtt_decode(in, n, MQTT_V5, MQTT_MAX_PACKET, &p, &used),
	    MQTT_OK);
	assert_int_equal(p.ack.reason_code, 0x10);
	assert_int_equal(p.ack.props.present, 0);
	n = hex("e0 01 8b", in, sizeof(in));
	assert_int_equal(mqtt_decode(in, n, MQTT_V5, MQTT_MAX_PACKET, &p, &used),
	    MQTT_OK);
	assert_int_equal(p.disconnect.reason_code, 0x8b);
}

/* Format rules: exact bytes in, exact status out */

struct rule_case {
	const char		*what;
	enum mqtt_version	 v;
	uint8_t			 first;
	const char		*body;
	enum mqtt_status	 want;
};

#define V3	MQTT_V311
#define V5	MQTT_V5

#define CONNECT5(flags, props, payload) \
	"00 04 'MQTT' 05 " flags " 00 3c " props " " payload
#define CONNECT3(flags, payload) \
	"00 04 'MQTT' 04 " flags " 00 3c " payload

static const struct rule_case rules[] = {
	/* Fixed header: type and flags (MQTT-2.1.3-1, MQTT-3.3.1-4). */
	{ "AUTH is reserved in 3.1.1", V3, 0xf0, "", MQTT_E_TYPE },
	{ "CONNECT flags 0001", V3, 0x11, "", MQTT_E_FLAGS },
	{ "CONNACK flags 0001", V5, 0x21, "", MQTT_E_FLAGS },
	{ "PUBACK flags 0001", V3, 0x41, "00 01", MQTT_E_FLAGS },
	{ "PUBREC flags 1000", V3, 0x58, "00 01", MQTT_E_FLAGS },
	{ "PUBREL flags 0000", V3, 0x60, "00 01", MQTT_E_FLAGS },
	{ "PUBREL flags 0011", V5, 0x63, "00 01", MQTT_E_FLAGS },
	{ "PUBCOMP flags 0010", V3, 0x72, "00 01", MQTT_E_FLAGS },
	{ "SUBSCRIBE flags 0000", V3, 0x80, "00 01 00 01 'a' 00", MQTT_E_FLAGS },
	{ "SUBSCRIBE flags 0011", V5, 0x83, "", MQTT_E_FLAGS },
	{ "SUBACK flags 0001", V3, 0x91, "00 01 00", MQTT_E_FLAGS },
	{ "UNSUBSCRIBE flags 0000", V3, 0xa0, "00 01 00 01 'a'", MQTT_E_FLAGS },
	{ "UNSUBACK flags 0100", V3, 0xb4, "00 01", MQTT_E_FLAGS },
	{ "PINGREQ flags 0001", V3, 0xc1, "", MQTT_E_FLAGS },
	{ "PINGRESP flags 1000", V3, 0xd8, "", MQTT_E_FLAGS },
	{ "DISCONNECT flags 0010", V5, 0xe2, "", MQTT_E_FLAGS },
	{ "AUTH flags 0001", V5, 0xf1, "", MQTT_E_FLAGS },
	{ "PUBLISH QoS 3", V3, 0x36, "00 01 't' 00 01", MQTT_E_QOS },
	{ "PUBLISH DUP QoS 3", V5, 0x3e, "", MQTT_E_QOS },
	{ "PUBLISH DUP on QoS 0", V3, 0x38, "00 01 't'", MQTT_E_DUP },

	/* Lengths */
	{ "PUBACK cut short", V3, 0x40, "00", MQTT_E_TRUNCATED },
	{ "PUBACK 3.1.1 with a reason code", V3, 0x40, "00 01 00",
	    MQTT_E_TRAILING },
	{ "PINGREQ with a body", V3, 0xc0, "00", MQTT_E_TRAILING },
	{ "PINGRESP with a body", V5, 0xd0, "00", MQTT_E_TRAILING },
	{ "DISCONNECT 3.1.1 with a body", V3, 0xe0, "00", MQTT_E_TRAILING },
	{ "UNSUBACK 3.1.1 with a code", V3, 0xb0, "00 01 00", MQTT_E_TRAILING },
	{ "CONNACK 3.1.1 with properties", V3, 0x20, "00 00 00",
	    MQTT_E_TRAILING },
	{ "CONNACK 5.0 without property length", V5, 0x20, "00 00",
	    MQTT_E_TRUNCATED },
	{ "topic length past the end", V3, 0x30, "00 09 'a/b'",
	    MQTT_E_TRUNCATED },
	{ "AUTH reason code without properties", V5, 0xf0, "18",
	    MQTT_E_TRUNCATED },

	/* CONNECT (section 3.1) */
	{ "protocol name MQTX", V5, 0x10,
	    "00 04 'MQTX' 05 02 00 3c 00 00 03 'cid'", MQTT_E_PROTOCOL_NAME },
	{ "protocol name in lower case", V3, 0x10,
	    "00 04 'mqtt' 04 02 00 3c 00 03 'cid'", MQTT_E_PROTOCOL_NAME },
	{ "MQTT 3.1 (MQIsdp, level 3)", V3, 0x10,
	    "00 06 'MQIsdp' 03 02 00 3c 00 03 'cid'", MQTT_E_VERSION },
	{ "level 3 named MQTT", V3, 0x10, "00 04 'MQTT' 03 02 00 3c 00 03 'cid'",
	    MQTT_E_VERSION },
	{ "level 6", V5, 0x10, "00 04 'MQTT' 06 02 00 3c 00 00 03 'cid'",
	    MQTT_E_VERSION },
	{ "reserved connect flag", V3, 0x10, CONNECT3("03", "00 03 'cid'"),
	    MQTT_E_CONNECT_FLAGS },
	{ "will QoS without will flag", V3, 0x10, CONNECT3("0a", "00 03 'cid'"),
	    MQTT_E_WILL_FLAGS },
	{ "will retain without will flag", V5, 0x10,
	    CONNECT5("22", "00", "00 03 'cid'"), MQTT_E_WILL_FLAGS },
	{ "will QoS 3", V3, 0x10,
	    CONNECT3("1e", "00 03 'cid' 00 01 't' 00 01 'm'"),
	    MQTT_E_WILL_FLAGS },
	{ "3.1.1 password without user name", V3, 0x10,
	    CONNECT3("42", "00 03 'cid' 00 02 'pw'"), MQTT_E_PASSWORD_FLAG },
	{ "user name flag without user name", V3, 0x10,
	    CONNECT3("82", "00 03 'cid'"), MQTT_E_TRUNCATED },
	{ "user name without its flag", V3, 0x10,
	    CONNECT3("02", "00 03 'cid' 00 01 'u'"), MQTT_E_TRAILING },
	{ "will flag without will topic", V5, 0x10,
	    CONNECT5("06", "00", "00 03 'cid' 00"), MQTT_E_TRUNCATED },
	{ "CONNECT cut inside keep alive", V3, 0x10, "00 04 'MQTT' 04 02 00",
	    MQTT_E_TRUNCATED },
	{ "3.1.1 empty client id without clean session", V3, 0x10,
	    CONNECT3("00", "00 00"), MQTT_E_CLIENT_ID },
	{ "client id not UTF-8", V3, 0x10, CONNECT3("02", "00 02 c0 80"),
	    MQTT_E_UTF8 },
	{ "client id with U+0000", V5, 0x10, CONNECT5("02", "00", "00 01 00"),
	    MQTT_E_UTF8 },
	{ "will topic with wildcard", V3, 0x10,
	    CONNECT3("06", "00 03 'cid' 00 03 'a/#' 00 01 'm'"),
	    MQTT_E_TOPIC_NAME },
	{ "will topic empty", V3, 0x10,
	    CONNECT3("06", "00 03 'cid' 00 00 00 01 'm'"), MQTT_E_TOPIC_NAME },
	{ "user name not UTF-8", V3, 0x10, CONNECT3("82", "00 03 'cid' 00 01 ff"),
	    MQTT_E_UTF8 },
	{ "Topic Alias in will properties", V5, 0x10,
	    CONNECT5("06", "00", "00 03 'cid' 03 23 00 01 00 01 't' 00 01 'm'"),
	    MQTT_E_PROP_NOT_ALLOWED },
	{ "Will Delay in CONNECT properties", V5, 0x10,
	    CONNECT5("02", "05 18 00 00 00 01", "00 03 'cid'"),
	    MQTT_E_PROP_NOT_ALLOWED },
	{ "Receive Maximum 0", V5, 0x10,
	    CONNECT5("02", "03 21 00 00", "00 03 'cid'"), MQTT_E_PROP_VALUE },
	{ "Maximum Packet Size 0", V5, 0x10,
	    CONNECT5("02", "05 27 00 00 00 00", "00 03 'cid'"),
	    MQTT_E_PROP_VALUE },
	{ "Request Problem Information 2", V5, 0x10,
	    CONNECT5("02", "02 17 02", "00 03 'cid'"), MQTT_E_PROP_VALUE },
	{ "Request Response Information 2", V5, 0x10,
	    CONNECT5("02", "02 19 02", "00 03 'cid'"), MQTT_E_PROP_VALUE },
	{ "Session Expiry twice", V5, 0x10,
	    CONNECT5("02", "0a 11 00 00 00 01 11 00 00 00 02", "00 03 'cid'"),
	    MQTT_E_PROP_DUP },
	{ "Authentication Data without Method", V5, 0x10,
	    CONNECT5("02", "04 16 00 01 'x'", "00 03 'cid'"),
	    MQTT_E_AUTH_METHOD },
	{ "Property Length past the packet", V5, 0x10,
	    CONNECT5("02", "7f", "00 03 'cid'"), MQTT_E_PROP_LENGTH },
	{ "property past the Property Length", V5, 0x10,
	    CONNECT5("02", "02 11 00", "00 03 'cid'"), MQTT_E_PROP_LENGTH },
	{ "unknown property 0x04", V5, 0x10,
	    CONNECT5("02", "02 04 00", "00 03 'cid'"), MQTT_E_PROP_UNKNOWN },
	{ "unknown property 0x80 0x01", V5, 0x10,
	    CONNECT5("02", "03 80 01 00", "00 03 'cid'"), MQTT_E_PROP_UNKNOWN },
	{ "property identifier not minimal", V5, 0x10,
	    CONNECT5("02", "02 91 00", "00 03 'cid'"), MQTT_E_VARINT },
	{ "Property Length not minimal", V5, 0x10,
	    CONNECT5("02", "80 00", "00 03 'cid'"), MQTT_E_VARINT },
	{ "User Property value not UTF-8", V5, 0x10,
	    CONNECT5("02", "07 26 00 01 'k' 00 01 ff", "00 03 'cid'"),
	    MQTT_E_UTF8 },
	{ "Auth Method not UTF-8", V5, 0x10,
	    CONNECT5("02", "04 15 00 01 c0", "00 03 'cid'"), MQTT_E_UTF8 },

	/* CONNACK (section 3.2) */
	{ "CONNACK reserved flag bits", V3, 0x20, "02 00", MQTT_E_CONNACK_FLAGS },
	{ "CONNACK reserved flag bits 5.0", V5, 0x20, "80 00 00",
	    MQTT_E_CONNACK_FLAGS },
	{ "session present on refusal", V3, 0x20, "01 05", MQTT_E_CONNACK_FLAGS },
	{ "session present on failure 5.0", V5, 0x20, "01 87 00",
	    MQTT_E_CONNACK_FLAGS },
	{ "3.1.1 return code 6", V3, 0x20, "00 06", MQTT_E_REASON_CODE },
	{ "5.0 CONNACK reason 0x10", V5, 0x20, "00 10 00", MQTT_E_REASON_CODE },
	{ "5.0 CONNACK reason 0x8b", V5, 0x20, "00 8b 00", MQTT_E_REASON_CODE },
	{ "Maximum QoS 2", V5, 0x20, "00 00 02 24 02", MQTT_E_PROP_VALUE },
	{ "Retain Available 2", V5, 0x20, "00 00 02 25 02", MQTT_E_PROP_VALUE },
	{ "Wildcard Subscription Available 2", V5, 0x20, "00 00 02 28 02",
	    MQTT_E_PROP_VALUE },
	{ "Subscription Identifiers Available 2", V5, 0x20, "00 00 02 29 02",
	    MQTT_E_PROP_VALUE },
	{ "Shared Subscription Available 2", V5, 0x20, "00 00 02 2a 02",
	    MQTT_E_PROP_VALUE },
	{ "Request Problem Information in CONNACK", V5, 0x20, "00 00 02 17 01",
	    MQTT_E_PROP_NOT_ALLOWED },
	{ "Assigned Client Identifier twice", V5, 0x20,
	    "00 00 08 12 00 01 'a' 12 00 01 'b'", MQTT_E_PROP_DUP },

	/* PUBLISH (section 3.3) */
	{ "QoS 1 packet identifier 0", V3, 0x32, "00 03 'a/b' 00 00 'hi'",
	    MQTT_E_PACKET_ID },
	{ "QoS 2 packet identifier 0", V5, 0x34, "00 03 'a/b' 00 00 00",
	    MQTT_E_PACKET_ID },
	{ "topic name with +", V3, 0x30, "00 03 'a/+' 'hi'", MQTT_E_TOPIC_NAME },
	{ "topic name #", V5, 0x30, "00 01 '#' 00", MQTT_E_TOPIC_NAME },
	{ "3.1.1 empty topic name", V3, 0x30, "00 00 'hi'", MQTT_E_TOPIC_NAME },
	{ "5.0 empty topic name without alias", V5, 0x30, "00 00 00 'hi'",
	    MQTT_E_TOPIC_NAME },
	{ "topic name surrogate", V3, 0x30, "00 03 ed a0 80", MQTT_E_UTF8 },
	{ "topic name with U+0000", V3, 0x30, "00 03 'a' 00 'b'", MQTT_E_UTF8 },
	{ "Topic Alias 0", V5, 0x30, "00 03 'a/b' 03 23 00 00",
	    MQTT_E_PROP_VALUE },
	{ "Topic Alias twice", V5, 0x30, "00 03 'a/b' 06 23 00 01 23 00 02",
	    MQTT_E_PROP_DUP },
	{ "Content Type twice", V5, 0x30,
	    "00 03 'a/b' 08 03 00 01 'x' 03 00 01 'y'", MQTT_E_PROP_DUP },
	{ "Subscription Identifier 0", V5, 0x30, "00 03 'a/b' 02 0b 00",
	    MQTT_E_PROP_VALUE },
	{ "Subscription Identifier not minimal", V5, 0x30,
	    "00 03 'a/b' 03 0b 81 00", MQTT_E_VARINT },
	{ "Payload Format Indicator 2", V5, 0x30, "00 03 'a/b' 02 01 02",
	    MQTT_E_PROP_VALUE },
	{ "Response Topic with wildcard", V5, 0x30,
	    "00 03 'a/b' 06 08 00 03 'r/#'", MQTT_E_TOPIC_NAME },
	{ "Session Expiry in PUBLISH", V5, 0x30, "00 03 'a/b' 05 11 00 00 00 01",
	    MQTT_E_PROP_NOT_ALLOWED },
	{ "Will Delay in PUBLISH", V5, 0x30, "00 03 'a/b' 05 18 00 00 00 01",
	    MQTT_E_PROP_NOT_ALLOWED },

	/* PUBACK, PUBREC, PUBREL, PUBCOMP (sections 3.4 to 3.7) */
	{ "PUBACK packet identifier 0", V3, 0x40, "00 00", MQTT_E_PACKET_ID },
	{ "PUBREC packet identifier 0", V5, 0x50, "00 00", MQTT_E_PACKET_ID },
	{ "PUBREL packet identifier 0", V3, 0x62, "00 00", MQTT_E_PACKET_ID },
	{ "PUBCOMP packet identifier 0", V5, 0x70, "00 00 00 00",
	    MQTT_E_PACKET_ID },
	{ "PUBACK reason 0x92", V5, 0x40, "00 01 92", MQTT_E_REASON_CODE },
	{ "PUBREC reason 0x04", V5, 0x50, "00 01 04", MQTT_E_REASON_CODE },
	{ "PUBREL reason 0x10", V5, 0x62, "00 01 10", MQTT_E_REASON_CODE },
	{ "PUBCOMP reason 0x80", V5, 0x70, "00 01 80", MQTT_E_REASON_CODE },
	{ "Topic Alias in PUBACK", V5, 0x40, "00 01 00 03 23 00 01",
	    MQTT_E_PROP_NOT_ALLOWED },
	{ "Reason String twice", V5, 0x40,
	    "00 01 00 08 1f 00 01 'a' 1f 00 01 'b'", MQTT_E_PROP_DUP },
	{ "PUBACK property past the length", V5, 0x40, "00 01 00 05 1f 00",
	    MQTT_E_PROP_LENGTH },

	/* SUBSCRIBE (section 3.8) */
	{ "SUBSCRIBE packet identifier 0", V3, 0x82, "00 00 00 03 'a/b' 01",
	    MQTT_E_PACKET_ID },
	{ "3.1.1 SUBSCRIBE without filters", V3, 0x82, "00 01",
	    MQTT_E_EMPTY_LIST },
	{ "5.0 SUBSCRIBE without filters", V5, 0x82, "00 01 00",
	    MQTT_E_EMPTY_LIST },
	{ "3.1.1 requested QoS reserved bits", V3, 0x82, "00 01 00 03 'a/b' 05",
	    MQTT_E_SUB_OPTIONS },
	{ "3.1.1 requested QoS bit 7", V3, 0x82, "00 01 00 03 'a/b' 80",
	    MQTT_E_SUB_OPTIONS },
	{ "3.1.1 requested QoS 3", V3, 0x82, "00 01 00 03 'a/b' 03",
	    MQTT_E_QOS },
	{ "5.0 requested QoS 3", V5, 0x82, "00 01 00 00 03 'a/b' 03",
	    MQTT_E_QOS },
	{ "5.0 options bit 6", V5, 0x82, "00 01 00 00 03 'a/b' 41",
	    MQTT_E_SUB_OPTIONS },
	{ "5.0 options bit 7", V5, 0x82, "00 01 00 00 03 'a/b' 80",
	    MQTT_E_SUB_OPTIONS },
	{ "Retain Handling 3", V5, 0x82, "00 01 00 00 03 'a/b' 30",
	    MQTT_E_RETAIN_HANDLING },
	{ "No Local on a shared subscription", V5, 0x82,
	    "00 01 00 00 0a '$share/g/t' 04", MQTT_E_SHARED_NO_LOCAL },
	{ "filter with # inside", V3, 0x82, "00 01 00 05 'a/#/b' 00",
	    MQTT_E_TOPIC_FILTER },
	{ "filter with # glued", V3, 0x82, "00 01 00 02 'a#' 00",
	    MQTT_E_TOPIC_FILTER },
	{ "filter with + glued", V5, 0x82, "00 01 00 00 02 'a+' 00",
	    MQTT_E_TOPIC_FILTER },
	{ "empty filter", V3, 0x82, "00 01 00 00 00", MQTT_E_TOPIC_FILTER },
	{ "filter not UTF-8", V3, 0x82, "00 01 00 02 c3 28 00", MQTT_E_UTF8 },
	{ "shared: empty share name", V5, 0x82, "00 01 00 00 09 '$share//t' 00",
	    MQTT_E_TOPIC_FILTER },
	{ "shared: no filter", V5, 0x82, "00 01 00 00 08 '$share/g' 00",
	    MQTT_E_TOPIC_FILTER },
	{ "shared: empty filter", V5, 0x82, "00 01 00 00 09 '$share/g/' 00",
	    MQTT_E_TOPIC_FILTER },
	{ "shared: + as share name", V5, 0x82,
	    "00 01 00 00 0a '$share/+/t' 00", MQTT_E_TOPIC_FILTER },
	{ "entry without options", V3, 0x82, "00 01 00 03 'a/b'",
	    MQTT_E_TRUNCATED },
	{ "second entry cut", V3, 0x82, "00 01 00 01 'a' 00 00 05 'b'",
	    MQTT_E_TRUNCATED },
	{ "Subscription Identifier twice in SUBSCRIBE", V5, 0x82,
	    "00 01 04 0b 01 0b 02 00 01 'a' 00", MQTT_E_PROP_DUP },
	{ "Subscription Identifier 0 in SUBSCRIBE", V5, 0x82,
	    "00 01 02 0b 00 00 01 'a' 00", MQTT_E_PROP_VALUE },
	{ "Reason String in SUBSCRIBE", V5, 0x82,
	    "00 01 04 1f 00 01 'x' 00 01 'a' 00", MQTT_E_PROP_NOT_ALLOWED },

	/* SUBACK (section 3.9) */
	{ "3.1.1 SUBACK without codes", V3, 0x90, "00 01", MQTT_E_EMPTY_LIST },
	{ "5.0 SUBACK without codes", V5, 0x90, "00 01 00", MQTT_E_EMPTY_LIST },
	{ "3.1.1 SUBACK code 3", V3, 0x90, "00 01 00 03", MQTT_E_REASON_CODE },
	{ "3.1.1 SUBACK code 0x81", V3, 0x90, "00 01 81", MQTT_E_REASON_CODE },
	{ "SUBACK packet identifier 0", V3, 0x90, "00 00 00", MQTT_E_PACKET_ID },
	{ "5.0 SUBACK code 0x11", V5, 0x90, "00 01 00 00 11",
	    MQTT_E_REASON_CODE },

	/* UNSUBSCRIBE and UNSUBACK (sections 3.10, 3.11) */
	{ "3.1.1 UNSUBSCRIBE without filters", V3, 0xa2, "00 01",
	    MQTT_E_EMPTY_LIST },
	{ "5.0 UNSUBSCRIBE without filters", V5, 0xa2, "00 01 00",
	    MQTT_E_EMPTY_LIST },
	{ "UNSUBSCRIBE packet identifier 0", V3, 0xa2, "00 00 00 01 'a'",
	    MQTT_E_PACKET_ID },
	{ "UNSUBSCRIBE filter a#b", V3, 0xa2, "00 01 00 03 'a#b'",
	    MQTT_E_TOPIC_FILTER },
	{ "UNSUBSCRIBE shared without filter", V5, 0xa2,
	    "00 01 00 00 08 '$share/g'", MQTT_E_TOPIC_FILTER },
	{ "UNSUBSCRIBE filter cut", V3, 0xa2, "00 01 00 05 'a'",
	    MQTT_E_TRUNCATED },
	{ "UNSUBSCRIBE with properties not allowed", V5, 0xa2,
	    "00 01 05 11 00 00 00 01 00 01 'a'", MQTT_E_PROP_NOT_ALLOWED },
	{ "UNSUBACK packet identifier 0", V3, 0xb0, "00 00", MQTT_E_PACKET_ID },
	{ "5.0 UNSUBACK without codes", V5, 0xb0, "00 01 00",
	    MQTT_E_EMPTY_LIST },
	{ "5.0 UNSUBACK code 0x01", V5, 0xb0, "00 01 00 01",
	    MQTT_E_REASON_CODE },

	/* DISCONNECT and AUTH (sections 3.14, 3.15) */
	{ "DISCONNECT reason 0x84", V5, 0xe0, "84", MQTT_E_REASON_CODE },
	{ "Will Delay in DISCONNECT", V5, 0xe0, "00 05 18 00 00 00 0a",
	    MQTT_E_PROP_NOT_ALLOWED },
	{ "DISCONNECT property cut", V5, 0xe0, "00 05 11 00",
	    MQTT_E_PROP_LENGTH },
	{ "AUTH reason 0x01", V5, 0xf0, "01 00", MQTT_E_REASON_CODE },
	{ "AUTH continue without method", V5, 0xf0, "18 00",
	    MQTT_E_AUTH_METHOD },
	{ "AUTH with data, without method", V5, 0xf0, "19 04 16 00 01 'x'",
	    MQTT_E_AUTH_METHOD },
	{ "AUTH with a user property, without method", V5, 0xf0,
	    "00 07 26 00 01 'k' 00 01 'v'", MQTT_E_AUTH_METHOD },
	{ "Session Expiry in AUTH", V5, 0xf0,
	    "18 0c 15 00 04 'SCRA' 11 00 00 00 01", MQTT_E_PROP_NOT_ALLOWED },

	/* What the rules allow */
	{ "5.0 password without user name", V5, 0x10,
	    CONNECT5("42", "00", "00 03 'cid' 00 02 'pw'"), MQTT_OK },
	{ "3.1.1 empty client id with clean session", V3, 0x10,
	    CONNECT3("02", "00 00"), MQTT_OK },
	{ "5.0 empty client id without clean start", V5, 0x10,
	    CONNECT5("00", "00", "00 00"), MQTT_OK },
	{ "User Property repeated", V5, 0x10,
	    CONNECT5("02", "0e 26 00 01 'k' 00 01 'v' 26 00 01 'k' 00 01 'v'",
	    "00 03 'cid'"), MQTT_OK },
	{ "5.0 empty topic name with alias", V5, 0x30, "00 00 03 23 00 01 'hi'",
	    MQTT_OK },
	{ "Subscription Identifier repeated in PUBLISH", V5, 0x30,
	    "00 03 'a/b' 04 0b 01 0b 02", MQTT_OK },
	{ "shared subscription", V5, 0x82, "00 01 00 00 0a '$share/g/t' 01",
	    MQTT_OK },
	{ "$share/g is a plain filter in 3.1.1", V3, 0x82,
	    "00 01 00 08 '$share/g' 00", MQTT_OK },
	{ "No Local on a plain filter", V5, 0x82, "00 01 00 00 01 'a' 04",
	    MQTT_OK },
	{ "PUBACK with reason string", V5, 0x40, "00 01 10 04 1f 00 01 'x'",
	    MQTT_OK },
	{ "DISCONNECT with Session Expiry", V5, 0xe0, "00 05 11 00 00 00 0a",
	    MQTT_OK },
	{ "AUTH bare long form", V5, 0xf0, "00 00", MQTT_OK },
	{ "AUTH continue with method", V5, 0xf0, "18 07 15 00 04 'SCRA'",
	    MQTT_OK },
	{ "5.0 SUBACK codes", V5, 0x90, "00 01 00 00 01 02 80 a2", MQTT_OK },
	{ "5.0 UNSUBACK codes", V5, 0xb0, "00 01 00 00 11 8f", MQTT_OK },
};

static void
test_rules(void **state)
{
	size_t i;
	int failed = 0;

	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		const struct rule_case *c = &rules[i];
		uint8_t in[BUFSZ], out[BUFSZ];
		struct mqtt_packet p, again;
		enum mqtt_status st;
		size_t n, used, m;

		n = frame(c->first, c->body, in, sizeof(in));
		st = mqtt_decode(in, n, c->v, MQTT_MAX_PACKET, &p, &used);
		if (st != c->want) {
			print_error("%s: got \"%s\", want \"%s\"\n", c->what,
			    mqtt_strerror(st), mqtt_strerror(c->want));
			failed++;
			continue;
		}
		if (st != MQTT_OK)
			continue;
		/* What decodes must re-encode to something equal. */
		if (p.type == MQTT_CONNECT)
			assert_int_equal(p.connect.protocol_level, c->v);
		assert_int_equal(used, n);
		assert_int_equal(mqtt_encode(&p, c->v, out, sizeof(out), &m),
		    MQTT_OK);
		assert_int_equal(mqtt_decode(out, m, c->v, MQTT_MAX_PACKET,
		    &again, &used), MQTT_OK);
		assert_true(mqtt_packet_equal(&p, &again, c->v));
	}
	assert_int_equal(failed, 0);
}

static void
test_reserved_type(void **state)
{
	const uint8_t in[] = { 0x00, 0x00 };
	struct mqtt_packet p;
	struct mqtt_header h;
	size_t used;

	assert_int_equal(mqtt_probe(in, 1, MQTT_MAX_PACKET, &h), MQTT_E_TYPE);
	assert_int_equal(mqtt_decode(in, 2, MQTT_V5, MQTT_MAX_PACKET, &p, &used),
	    MQTT_E_TYPE);
}

/* A session version other than 4 or 5 is the caller's mistake. */
static void
test_decode_bad_version(void **state)
{
	const uint8_t ping[] = { 0xc0, 0x00 };
	struct mqtt_packet p;
	size_t used;

	assert_int_equal(mqtt_decode(ping, 2, (enum mqtt_version)3,
	    MQTT_MAX_PACKET, &p, &used), MQTT_E_VERSION);
}

/* The header is judged from its first byte, before the body arrives. */
static void
test_probe_fails_early(void **state)
{
	const uint8_t qos3[] = { 0x36 }, flags[] = { 0x80 }, dup0[] = { 0x38 };
	const uint8_t big[] = { 0x30, 0x80, 0x01 };
	struct mqtt_header h;
	struct mqtt_packet p;
	size_t used;

	assert_int_equal(mqtt_probe(qos3, 1, MQTT_MAX_PACKET, &h), MQTT_E_QOS);
	assert_int_equal(mqtt_probe(flags, 1, MQTT_MAX_PACKET, &h), MQTT_E_FLAGS);
	assert_int_equal(mqtt_probe(dup0, 1, MQTT_MAX_PACKET, &h), MQTT_E_DUP);
	assert_int_equal(mqtt_probe(big, 0, MQTT_MAX_PACKET, &h), MQTT_NEED_MORE);

	/* 131 bytes announced: too large for 130 though only 3 are here. */
	assert_int_equal(mqtt_probe(big, 3, 130, &h), MQTT_E_TOO_LARGE);
	assert_int_equal(h.type, MQTT_PUBLISH);
	assert_int_equal(h.size, 131);
	assert_int_equal(mqtt_decode(big, 3, MQTT_V5, 130, &p, &used),
	    MQTT_E_TOO_LARGE);
	assert_int_equal(mqtt_probe(big, 3, 131, &h), MQTT_OK);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.remaining, 128);
	assert_int_equal(mqtt_decode(big, 3, MQTT_V5, 131, &p, &used),
	    MQTT_NEED_MORE);
}

/* A server answers in the client's version, so the level survives errors. */
static void
test_connect_level_on_error(void **state)
{
	uint8_t in[64];
	struct mqtt_packet p;
	size_t n, used;

	n = frame(0x10, "00 06 'MQIsdp' 03 02 00 3c 00 03 'cid'", in, sizeof(in));
	assert_int_equal(mqtt_decode(in, n, MQTT_V5, MQTT_MAX_PACKET, &p, &used),
	    MQTT_E_VERSION);
	assert_int_equal(p.connect.protocol_level, 3);
	assert_int_equal(mqtt_status_connack311(MQTT_E_VERSION), 0x01);

	n = frame(0x10, CONNECT5("03", "00", "00 03 'cid'"), in, sizeof(in));
	assert_int_equal(mqtt_decode(in, n, MQTT_V311, MQTT_MAX_PACKET, &p,
	    &used), MQTT_E_CONNECT_FLAGS);
	assert_int_equal(p.connect.protocol_level, 5);
}

/* Encoder validation: what the decoder refuses, the encoder does not write. */

static enum mqtt_status
try_encode(const struct mqtt_packet *p, enum mqtt_version v)
{
	uint8_t out[BUFSZ];
	enum mqtt_status st1, st2;
	size_t size, n;

	st1 = mqtt_size(p, v, &size);
	st2 = mqtt_encode(p, v, out, sizeof(out), &n);
	assert_int_equal(st1, st2);
	return st1;
}

static void
test_encode_publish_rules(void **state)
{
	static uint8_t long_topic[65536];
	const uint8_t garbage[] = { 0x26, 0x00 }, zero_id[] = { 0x0b, 0x00 };
	const uint8_t bad_user[] = { 0x26, 0x00, 0x01, 'k', 0x00, 0x01, 0xff };
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	size_t size;

	p.publish.topic = buf_cstr("a/b");
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_OK);
	p.publish.qos = 3;
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_QOS);
	p.publish.qos = 0;
	p.publish.dup = true;
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_E_DUP);
	p.publish.dup = false;
	p.publish.qos = 1;
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_E_PACKET_ID);
	p.publish.packet_id = 5;
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_OK);
	p.publish.topic = buf_cstr("a/+");
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_E_TOPIC_NAME);
	p.publish.topic = buf_cstr("");
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_E_TOPIC_NAME);
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_TOPIC_NAME);
	mqtt_props_set(&p.publish.props, MQTT_PROP_TOPIC_ALIAS);
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_PROP_VALUE);
	p.publish.props.topic_alias = 1;
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_OK);
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_E_TOPIC_NAME);

	memset(long_topic, 'x', sizeof(long_topic));
	p.publish.topic = view(long_topic, sizeof(long_topic));
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_E_LENGTH);
	p.publish.topic = view(long_topic, sizeof(long_topic) - 1);
	assert_int_equal(mqtt_size(&p, MQTT_V311, &size), MQTT_OK);
	assert_int_equal(size, 1 + 3 + 2 + 65535 + 2);
	p.publish.topic = buf_cstr("a\xC0\x80");
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_E_UTF8);
	p.publish.topic = buf_cstr("a/b");

	mqtt_props_set(&p.publish.props, MQTT_PROP_SESSION_EXPIRY);
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_PROP_NOT_ALLOWED);
	/* 3.1.1 has no properties: they are left out, not refused. */
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_OK);
	p.publish.props.present = (uint64_t)1 << 0x04;
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_PROP_UNKNOWN);
	p.publish.props.present = 0;
	p.publish.props.user_props = view(garbage, sizeof(garbage));
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_PROP_LENGTH);
	p.publish.props.user_props = view(bad_user, sizeof(bad_user));
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_UTF8);
	p.publish.props.user_props = view(NULL, 0);
	p.publish.props.sub_ids = view(zero_id, sizeof(zero_id));
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_PROP_VALUE);
	p.publish.props.response_topic = buf_cstr("r/+");
	p.publish.props.sub_ids = view(NULL, 0);
	mqtt_props_set(&p.publish.props, MQTT_PROP_RESPONSE_TOPIC);
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_TOPIC_NAME);
}

static void
test_encode_other_rules(void **state)
{
	const uint8_t code3[] = { 0x03 };
	uint8_t mem[32];
	struct mqtt_subscription sub = { .filter = buf_cstr("a") };
	struct mqtt_packet p = { .type = MQTT_CONNECT };
	struct buf_writer w;

	p.connect.client_id = buf_cstr("c");
	p.connect.will_qos = 1;
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_WILL_FLAGS);
	p.connect.will_qos = 0;
	p.connect.has_password = true;
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_E_PASSWORD_FLAG);
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_OK);
	p.connect.has_password = false;
	p.connect.client_id = buf_cstr("");
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_E_CLIENT_ID);
	p.connect.clean_start = true;
	p.connect.will = true;
	p.connect.will_topic = buf_cstr("w/#");
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_E_TOPIC_NAME);

	memset(&p, 0, sizeof(p));
	p.type = MQTT_CONNACK;
	p.connack.session_present = true;
	p.connack.reason_code = 0x80;
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_CONNACK_FLAGS);
	p.connack.session_present = false;
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_OK);
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_E_REASON_CODE);

	memset(&p, 0, sizeof(p));
	p.type = MQTT_SUBSCRIBE;
	p.subscribe.packet_id = 1;
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_E_EMPTY_LIST);
	sub.retain_handling = 3;
	buf_writer_init(&w, mem, sizeof(mem));
	mqtt_subscription_put(&w, &sub);
	p.subscribe.list = view(mem, buf_written(&w));
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_RETAIN_HANDLING);
	sub.retain_handling = 0;
	sub.no_local = true;
	buf_writer_init(&w, mem, sizeof(mem));
	mqtt_subscription_put(&w, &sub);
	p.subscribe.list = view(mem, buf_written(&w));
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_E_SUB_OPTIONS);
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_OK);

	memset(&p, 0, sizeof(p));
	p.type = MQTT_SUBACK;
	p.suback.packet_id = 1;
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_EMPTY_LIST);
	p.suback.reason_codes = view(code3, 1);
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_E_REASON_CODE);

	memset(&p, 0, sizeof(p));
	p.type = MQTT_AUTH;
	p.auth.reason_code = 0x18;
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_AUTH_METHOD);
	assert_int_equal(try_encode(&p, MQTT_V311), MQTT_E_TYPE);

	p.type = 0;
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_TYPE);
	p.type = 16;
	assert_int_equal(try_encode(&p, MQTT_V5), MQTT_E_TYPE);
	p.type = MQTT_PINGREQ;
	assert_int_equal(try_encode(&p, (enum mqtt_version)3), MQTT_E_VERSION);
}

static void
test_publish_header_only(void **state)
{
	static uint8_t payload[300];
	uint8_t full[512], hdr[256];
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	size_t n, h, size;

	memset(payload, 'p', sizeof(payload));
	p.publish.qos = 1;
	p.publish.packet_id = 9;
	p.publish.topic = buf_cstr("big/one");
	p.publish.payload = view(payload, sizeof(payload));
	set_message_props(&p.publish.props);

	assert_int_equal(mqtt_encode(&p, MQTT_V5, full, sizeof(full), &n),
	    MQTT_OK);
	assert_int_equal(mqtt_publish_header_size(&p.publish, MQTT_V5, &size),
	    MQTT_OK);
	assert_int_equal(mqtt_encode_publish_header(&p.publish, MQTT_V5, hdr,
	    sizeof(hdr), &h), MQTT_OK);
	assert_int_equal(h, size);
	assert_int_equal(h + sizeof(payload), n);
	assert_memory_equal(hdr, full, h);
	assert_memory_equal(full + h, payload, sizeof(payload));
	assert_int_equal(mqtt_encode_publish_header(&p.publish, MQTT_V5, hdr,
	    h - 1, &h), MQTT_NO_SPACE);
	p.publish.topic = buf_cstr("big/+");
	assert_int_equal(mqtt_publish_header_size(&p.publish, MQTT_V5, &size),
	    MQTT_E_TOPIC_NAME);
}

/* Iterators and forwarding */

static void
test_iterators(void **state)
{
	uint8_t in[128];
	struct mqtt_packet p;
	struct mqtt_iter it;
	struct mqtt_subscription s;
	struct buf_view k, v;
	size_t n, used;
	uint32_t id;

	/* User Properties and Subscription Identifiers between other properties. */
	n = frame(0x30, "00 01 't' 15 26 00 01 'a' 00 01 '1' 0b 05 23 00 02"
	    " 26 00 01 'b' 00 00 0b 80 01 'pay'", in, sizeof(in));
	assert_int_equal(mqtt_decode(in, n, MQTT_V5, MQTT_MAX_PACKET, &p, &used),
	    MQTT_OK);
	assert_int_equal(p.publish.props.topic_alias, 2);
	assert_true(buf_view_eq(p.publish.payload, buf_cstr("pay")));
	mqtt_iter_init(&it, p.publish.props.user_props);
	assert_true(mqtt_user_prop_next(&it, &k, &v));
	assert_true(buf_view_eq(k, buf_cstr("a")) && buf_view_eq(v, buf_cstr("1")));
	assert_true(mqtt_user_prop_next(&it, &k, &v));
	assert_true(buf_view_eq(k, buf_cstr("b")) && v.len == 0);
	assert_false(mqtt_user_prop_next(&it, &k, &v));
	mqtt_iter_init(&it, p.publish.props.sub_ids);
	assert_true(mqtt_sub_id_next(&it, &id));
	assert_int_equal(id, 5);
	assert_true(mqtt_sub_id_next(&it, &id));
	assert_int_equal(id, 128);
	assert_false(mqtt_sub_id_next(&it, &id));

	n = frame(0x82, "00 01 00 00 01 'a' 2d 00 03 'b/#' 02", in, sizeof(in));
	assert_int_equal(mqtt_decode(in, n, MQTT_V5, MQTT_MAX_PACKET, &p, &used),
	    MQTT_OK);
	mqtt_iter_init(&it, p.subscribe.list);
	assert_true(mqtt_subscription_next(&it, &s));
	assert_true(buf_view_eq(s.filter, buf_cstr("a")));
	assert_int_equal(s.qos, 1);
	assert_true(s.no_local);
	assert_true(s.retain_as_published);
	assert_int_equal(s.retain_handling, 2);
	assert_true(mqtt_subscription_next(&it, &s));
	assert_true(buf_view_eq(s.filter, buf_cstr("b/#")));
	assert_int_equal(s.qos, 2);
	assert_false(s.no_local);
	assert_int_equal(s.retain_handling, 0);
	assert_false(mqtt_subscription_next(&it, &s));

	n = frame(0xa2, "00 01 00 01 'a' 00 03 'b/#'", in, sizeof(in));
	assert_int_equal(mqtt_decode(in, n, MQTT_V311, MQTT_MAX_PACKET, &p,
	    &used), MQTT_OK);
	mqtt_iter_init(&it, p.unsubscribe.list);
	assert_true(mqtt_filter_next(&it, &k));
	assert_true(buf_view_eq(k, buf_cstr("a")));
	assert_true(mqtt_filter_next(&it, &k));
	assert_true(buf_view_eq(k, buf_cstr("b/#")));
	assert_false(mqtt_filter_next(&it, &k));

	/* Bad bytes end an iteration instead of running past them. */
	n = hex("26 00 05 'ab'", in, sizeof(in));
	mqtt_iter_init(&it, view(in, n));
	assert_false(mqtt_user_prop_next(&it, &k, &v));
	assert_false(mqtt_user_prop_next(&it, &k, &v));
}

/* A decoded section can be handed to the encoder: it takes only its kind. */
static void
test_forward_user_props(void **state)
{
	uint8_t in[128], out[128];
	struct mqtt_packet c, p = { .type = MQTT_PUBLISH }, got;
	struct mqtt_iter it;
	struct buf_view k, v;
	size_t n, used;

	n = frame(0x10, CONNECT5("02",
	    "12 11 00 00 00 0a 26 00 02 'up' 00 01 '1' 21 00 05 0b 07",
	    "00 01 'c'"), in, sizeof(in));
	/* Subscription Identifier is not allowed in CONNECT. */
	assert_int_equal(mqtt_decode(in, n, MQTT_V5, MQTT_MAX_PACKET, &c, &used),
	    MQTT_E_PROP_NOT_ALLOWED);
	n = frame(0x10, CONNECT5("02",
	    "10 11 00 00 00 0a 26 00 02 'up' 00 01 '1' 21 00 05",
	    "00 01 'c'"), in, sizeof(in));
	assert_int_equal(mqtt_decode(in, n, MQTT_V5, MQTT_MAX_PACKET, &c, &used),
	    MQTT_OK);

	p.publish.topic = buf_cstr("t");
	p.publish.props.user_props = c.connect.props.user_props;
	p.publish.props.sub_ids = c.connect.props.user_props;	/* none there */
	assert_int_equal(mqtt_encode(&p, MQTT_V5, out, sizeof(out), &n), MQTT_OK);
	assert_int_equal(mqtt_decode(out, n, MQTT_V5, MQTT_MAX_PACKET, &got,
	    &used), MQTT_OK);
	assert_int_equal(got.publish.props.present,
	    (uint64_t)1 << MQTT_PROP_USER);
	mqtt_iter_init(&it, got.publish.props.user_props);
	assert_true(mqtt_user_prop_next(&it, &k, &v));
	assert_true(buf_view_eq(k, buf_cstr("up")) && buf_view_eq(v, buf_cstr("1")));
	assert_false(mqtt_user_prop_next(&it, &k, &v));
	assert_true(mqtt_packet_equal(&p, &got, MQTT_V5));
}

static void
test_equal_detects_differences(void **state)
{
	struct mqtt_packet a = { .type = MQTT_PUBLISH }, b;

	a.publish.topic = buf_cstr("t");
	a.publish.payload = buf_cstr("x");
	a.publish.props.user_props = user_props();
	b = a;
	assert_true(mqtt_packet_equal(&a, &b, MQTT_V5));
	b.publish.payload = buf_cstr("y");
	assert_false(mqtt_packet_equal(&a, &b, MQTT_V5));
	b = a;
	b.publish.props.user_props.len -= 3;	/* drop the last value's bytes */
	assert_false(mqtt_packet_equal(&a, &b, MQTT_V5));
	assert_true(mqtt_packet_equal(&a, &b, MQTT_V311));
	b = a;
	b.publish.props.message_expiry = 5;
	mqtt_props_set(&b.publish.props, MQTT_PROP_MESSAGE_EXPIRY);
	assert_false(mqtt_packet_equal(&a, &b, MQTT_V5));
	b = a;
	b.type = MQTT_PUBACK;
	assert_false(mqtt_packet_equal(&a, &b, MQTT_V5));
}

/* Statuses, reason codes, names */

static void
test_status_tables(void **state)
{
	static const struct {
		enum mqtt_status	st;
		uint8_t			reason;
	} map[] = {
		{ MQTT_OK, 0x00 },
		{ MQTT_E_REMLEN, 0x81 },
		{ MQTT_E_TRAILING, 0x81 },
		{ MQTT_E_UTF8, 0x81 },
		{ MQTT_E_FLAGS, 0x81 },
		{ MQTT_E_PACKET_ID, 0x82 },
		{ MQTT_E_PROP_DUP, 0x82 },
		{ MQTT_E_PROP_NOT_ALLOWED, 0x82 },
		{ MQTT_E_TOO_LARGE, 0x95 },
		{ MQTT_E_VERSION, 0x84 },
		{ MQTT_E_PROTOCOL_NAME, 0x84 },
		{ MQTT_E_CLIENT_ID, 0x85 },
		{ MQTT_E_TOPIC_NAME, 0x90 },
		{ MQTT_E_TOPIC_FILTER, 0x8f },
	};
	size_t i;
	int st, other;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		assert_int_equal(mqtt_status_reason(map[i].st), map[i].reason);
	for (st = MQTT_OK; st <= MQTT_E_AUTH_METHOD; st++) {
		assert_string_not_equal(mqtt_strerror(st), "unknown MQTT status");
		for (other = MQTT_OK; other < st; other++)
			assert_string_not_equal(mqtt_strerror(st),
			    mqtt_strerror(other));
	}
	assert_string_equal(mqtt_strerror(MQTT_E_AUTH_METHOD + 1),
	    "unknown MQTT status");
	assert_int_equal(mqtt_status_connack311(MQTT_E_CLIENT_ID), 0x02);
	assert_int_equal(mqtt_status_connack311(MQTT_E_UTF8), 0);
	assert_string_equal(mqtt_reason_name(0x87), "not authorized");
	assert_string_equal(mqtt_reason_name(0x03), "unknown reason code");
	assert_string_equal(mqtt_type_name(MQTT_SUBACK), "SUBACK");
	assert_string_equal(mqtt_type_name(0), "reserved");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_roundtrip),
		cmocka_unit_test(test_connack_roundtrip),
		cmocka_unit_test(test_publish_roundtrip),
		cmocka_unit_test(test_acks_roundtrip),
		cmocka_unit_test(test_subscribe_roundtrip),
		cmocka_unit_test(test_suback_roundtrip),
		cmocka_unit_test(test_unsubscribe_roundtrip),
		cmocka_unit_test(test_unsuback_roundtrip),
		cmocka_unit_test(test_ping_roundtrip),
		cmocka_unit_test(test_disconnect_roundtrip),
		cmocka_unit_test(test_auth_roundtrip),
		cmocka_unit_test(test_spec_connect_311),
		cmocka_unit_test(test_spec_connect_v5),
		cmocka_unit_test(test_spec_utf8_string),
		cmocka_unit_test(test_spec_remaining_length),
		cmocka_unit_test(test_short_forms),
		cmocka_unit_test(test_short_forms_decode),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_reserved_type),
		cmocka_unit_test(test_decode_bad_version),
		cmocka_unit_test(test_probe_fails_early),
		cmocka_unit_test(test_connect_level_on_error),
		cmocka_unit_test(test_encode_publish_rules),
		cmocka_unit_test(test_encode_other_rules),
		cmocka_unit_test(test_publish_header_only),
		cmocka_unit_test(test_iterators),
		cmocka_unit_test(test_forward_user_props),
		cmocka_unit_test(test_equal_detects_differences),
		cmocka_unit_test(test_status_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
