/*
 * libFuzzer target for the MQTT codec. The first input byte picks the
 * protocol version (bit 0: 3.1.1 or 5.0), the rest is decoded as a stream
 * head. Whatever decodes is walked through every view and iterator, then used
 * as a round-trip oracle: it must re-encode, the encoding must decode to an
 * equal packet, re-encode to the very same bytes, never be larger than the
 * input, and every strict prefix of it must be NEED_MORE. The probe must agree
 * with the decoder. Any disagreement aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "mqtt/mqtt.h"

#define MAX_INPUT	65536

static unsigned
walk_props(const struct mqtt_props *p)
{
	struct mqtt_iter it;
	struct buf_view k, v;
	unsigned sum = 0;
	uint32_t id;

	sum += touch(p->content_type) + touch(p->response_topic) +
	    touch(p->correlation_data) + touch(p->assigned_client_id) +
	    touch(p->auth_method) + touch(p->auth_data) +
	    touch(p->response_info) + touch(p->server_reference) +
	    touch(p->reason_string);
	mqtt_iter_init(&it, p->user_props);
	while (mqtt_user_prop_next(&it, &k, &v))
		sum += touch(k) + touch(v);
	mqtt_iter_init(&it, p->sub_ids);
	while (mqtt_sub_id_next(&it, &id))
		check(id >= 1 && id <= MQTT_MAX_REMLEN);
	return sum;
}

static unsigned
walk(const struct mqtt_packet *pkt)
{
	const struct mqtt_connect *c = &pkt->connect;
	struct mqtt_subscription s;
	struct mqtt_iter it;
	struct buf_view f;
	unsigned sum = 0;
	size_t n = 0;

	switch (pkt->type) {
	case MQTT_CONNECT:
		sum += walk_props(&c->props) + walk_props(&c->will_props) +
		    touch(c->client_id) + touch(c->will_topic) +
		    touch(c->will_payload) + touch(c->username) +
		    touch(c->password);
		break;
	case MQTT_CONNACK:
		sum += walk_props(&pkt->connack.props);
		break;
	case MQTT_PUBLISH:
		sum += walk_props(&pkt->publish.props) +
		    touch(pkt->publish.topic) + touch(pkt->publish.payload);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		sum += walk_props(&pkt->ack.props);
		break;
	case MQTT_SUBSCRIBE:
		sum += walk_props(&pkt->subscribe.props);
		mqtt_iter_init(&it, pkt->subscribe.list);
		while (mqtt_subscription_next(&it, &s)) {
			check(s.qos <= 2 && s.retain_handling <= 2);
			sum += touch(s.filter);
			n++;
		}
		check(n > 0 && buf_left(&it.r) == 0);
		break;
	case MQTT_UNSUBSCRIBE:
		sum += walk_props(&pkt->unsubscribe.props);
		mqtt_iter_init(&it, pkt->unsubscribe.list);
		while (mqtt_filter_next(&it, &f)) {
			sum += touch(f);
			n++;
		}
		check(n > 0 && buf_left(&it.r) == 0);
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		sum += walk_props(&pkt->suback.props) +
		    touch(pkt->suback.reason_codes);
		break;
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		sum += walk_props(&pkt->disconnect.props);
		break;
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		break;
	}
	return sum;
}

/* A header-only PUBLISH followed by its payload is the full encoding. */
static void
check_publish_header(const struct mqtt_publish *pub, enum mqtt_version v,
    const uint8_t *full, size_t full_len)
{
	uint8_t *hdr;
	size_t hsize, n;

	check(mqtt_publish_header_size(pub, v, &hsize) == MQTT_OK);
	check(hsize + pub->payload.len == full_len);
	hdr = malloc(hsize);
	check(hdr != NULL);
	check(mqtt_encode_publish_header(pub, v, hdr, hsize, &n) == MQTT_OK);
	check(n == hsize && memcmp(hdr, full, hsize) == 0);
	free(hdr);
}

static void
roundtrip(const struct mqtt_packet *pkt, enum mqtt_version v, size_t in_len)
{
	struct mqtt_packet again;
	uint8_t *out = NULL, *out2 = NULL;
	size_t size, n, used, i;

	/* A CONNECT carries its own version; everything else uses the session's. */
	if (pkt->type == MQTT_CONNECT)
		v = pkt->connect.protocol_level;
	check(mqtt_size(pkt, v, &size) == MQTT_OK);
	check(size <= in_len);
	/* Exactly the size asked for: ASan catches a byte written beyond it. */
	out = malloc(size);
	out2 = malloc(size);
	check(out != NULL && out2 != NULL);
	check(mqtt_encode(pkt, v, out, size, &n) == MQTT_OK && n == size);
	if (size > 0)
		check(mqtt_encode(pkt, v, out2, size - 1, &n) == MQTT_NO_SPACE);

	check(mqtt_decode(out, size, v, size, &again, &used) == MQTT_OK);
	check(used == size);
	check(mqtt_packet_equal(pkt, &again, v));
	check(mqtt_packet_equal(&again, pkt, v));
	sink += walk(&again);

	check(mqtt_encode(&again, v, out2, size, &n) == MQTT_OK && n == size);
	check(memcmp(out, out2, size) == 0);

	if (pkt->type == MQTT_PUBLISH)
		check_publish_header(&pkt->publish, v, out, size);

	for (i = size < 64 ? 0 : size - 1; i < size; i++)
		check(mqtt_decode(out, i, v, MQTT_MAX_PACKET, &again, &used) ==
		    MQTT_NEED_MORE);
	free(out2);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum mqtt_version v;
	struct mqtt_packet pkt;
	struct mqtt_header h;
	enum mqtt_status st, pst;
	size_t used = 0, used2;

	if (size < 1 || size > MAX_INPUT)
		return 0;
	v = (data[0] & 1) ? MQTT_V5 : MQTT_V311;
	data++;
	size--;

	pst = mqtt_probe(data, size, MQTT_MAX_PACKET, &h);
	st = mqtt_decode(data, size, v, MQTT_MAX_PACKET, &pkt, &used);
	(void)mqtt_strerror(st);
	(void)mqtt_status_reason(st);
	if (st == MQTT_NEED_MORE)
		check(pst == MQTT_NEED_MORE || (pst == MQTT_OK && h.size > size));
	else if (pst != MQTT_OK)
		check(st == pst);
	if (st != MQTT_OK)
		return 0;

	check(pst == MQTT_OK && h.size == used && h.type == pkt.type);
	sink += walk(&pkt);
	roundtrip(&pkt, v, used);
	check(mqtt_decode(data, used, v, used - 1, &pkt, &used2) ==
	    MQTT_E_TOO_LARGE);
	return 0;
}
