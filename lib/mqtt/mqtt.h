/*
 * MQTT 3.1.1 and 5.0 packet codec: a header probe for framing off a stream,
 * a strict decoder and a validating two-step encoder for every control packet.
 * Nothing is allocated and nothing is kept: a decoded packet is a set of views
 * (pointer, length) into the caller's input, valid while that input is; lists
 * (topic filters, reason codes, User Properties, Subscription Identifiers) stay
 * in wire format and are walked with the iterators below. Every normative MUST
 * about packet format is checked, by the decoder and by the encoder alike, and
 * each violation has its own status with its MQTT 5 reason code. What depends
 * on session state (topic alias ranges, receive maximum, in-use packet ids,
 * who may send what) is the caller's job.
 *
 * MQTT 3.1 ("MQIsdp", level 3) is not supported: its CONNECT decodes to
 * MQTT_E_VERSION so that a server can answer CONNACK 0x01, which 3.1 clients
 * understand as "unacceptable protocol version".
 */
#ifndef IOTB_MQTT_H
#define IOTB_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define MQTT_MAX_REMLEN		268435455u	/* 4-byte Remaining Length */
#define MQTT_MAX_HEADER		5		/* type byte + 4 length bytes */
#define MQTT_MAX_PACKET		(MQTT_MAX_HEADER + (size_t)MQTT_MAX_REMLEN)

/* Protocol levels as carried by CONNECT. */
enum mqtt_version {
	MQTT_V311 = 4,
	MQTT_V5 = 5,
};

enum mqtt_type {
	MQTT_CONNECT = 1,
	MQTT_CONNACK,
	MQTT_PUBLISH,
	MQTT_PUBACK,
	MQTT_PUBREC,
	MQTT_PUBREL,
	MQTT_PUBCOMP,
	MQTT_SUBSCRIBE,
	MQTT_SUBACK,
	MQTT_UNSUBSCRIBE,
	MQTT_UNSUBACK,
	MQTT_PINGREQ,
	MQTT_PINGRESP,
	MQTT_DISCONNECT,
	MQTT_AUTH,		/* 5.0 only */
};

/*
 * Decode and encode results. MQTT_NEED_MORE and MQTT_NO_SPACE are about the
 * caller's buffers; every MQTT_E_* is a packet that breaks the specification,
 * and mqtt_status_reason() gives the MQTT 5 reason code to report it with
 * (0x81 Malformed Packet unless noted).
 */
enum mqtt_status {
	MQTT_OK = 0,
	MQTT_NEED_MORE,		/* decode: the input ends inside the packet */
	MQTT_NO_SPACE,		/* encode: the output buffer is too small */
	MQTT_E_REMLEN,		/* Remaining Length over 4 bytes or not minimal */
	MQTT_E_TOO_LARGE,	/* over the maximum packet size (0x95) */
	MQTT_E_TYPE,		/* packet type 0, or AUTH in 3.1.1 */
	MQTT_E_FLAGS,		/* fixed-header flags not those the type requires */
	MQTT_E_QOS,		/* QoS 3 in PUBLISH, a Will or a subscription */
	MQTT_E_DUP,		/* DUP set on a QoS 0 PUBLISH */
	MQTT_E_TRUNCATED,	/* a field runs past the Remaining Length */
	MQTT_E_TRAILING,	/* bytes after the last field */
	MQTT_E_VARINT,		/* Variable Byte Integer over 4 bytes or not minimal */
	MQTT_E_UTF8,		/* string not well-formed UTF-8, or with U+0000 */
	MQTT_E_LENGTH,		/* encode: string or binary over 65535 bytes */
	MQTT_E_PROTOCOL_NAME,	/* CONNECT protocol name not "MQTT" (0x84) */
	MQTT_E_VERSION,		/* protocol level not 4 or 5 (0x84) */
	MQTT_E_CONNECT_FLAGS,	/* CONNECT reserved flag set */
	MQTT_E_WILL_FLAGS,	/* Will QoS or Retain without Will flag, Will QoS 3 */
	MQTT_E_PASSWORD_FLAG,	/* 3.1.1: password without user name */
	MQTT_E_CLIENT_ID,	/* 3.1.1: empty client id without clean session (0x85) */
	MQTT_E_CONNACK_FLAGS,	/* CONNACK reserved bits, or session present on failure */
	MQTT_E_PACKET_ID,	/* packet identifier 0 (0x82) */
	MQTT_E_TOPIC_NAME,	/* topic name empty or with wildcards (0x90) */
	MQTT_E_TOPIC_FILTER,	/* topic filter invalid (0x8F) */
	MQTT_E_EMPTY_LIST,	/* (UN)SUBSCRIBE without filters, (UN)SUBACK without codes (0x82) */
	MQTT_E_SUB_OPTIONS,	/* reserved bits in subscription options */
	MQTT_E_RETAIN_HANDLING,	/* Retain Handling 3 (0x82) */
	MQTT_E_SHARED_NO_LOCAL,	/* No Local on a shared subscription (0x82) */
	MQTT_E_REASON_CODE,	/* reason or return code not valid for the packet (0x82) */
	MQTT_E_PROP_LENGTH,	/* property runs past the Property Length */
	MQTT_E_PROP_UNKNOWN,	/* unknown property identifier */
	MQTT_E_PROP_NOT_ALLOWED, /* property not allowed in this packet (0x82) */
	MQTT_E_PROP_DUP,	/* single-valued property given twice (0x82) */
	MQTT_E_PROP_VALUE,	/* property value out of its range (0x82) */
	MQTT_E_AUTH_METHOD,	/* Authentication Data or AUTH without Method (0x82) */
};

enum mqtt_prop_id {
	MQTT_PROP_PAYLOAD_FORMAT = 0x01,
	MQTT_PROP_MESSAGE_EXPIRY = 0x02,
	MQTT_PROP_CONTENT_TYPE = 0x03,
	MQTT_PROP_RESPONSE_TOPIC = 0x08,
	MQTT_PROP_CORRELATION_DATA = 0x09,
	MQTT_PROP_SUBSCRIPTION_ID = 0x0B,
	MQTT_PROP_SESSION_EXPIRY = 0x11,
	MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
	MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
	MQTT_PROP_AUTH_METHOD = 0x15,
	MQTT_PROP_AUTH_DATA = 0x16,
	MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
	MQTT_PROP_WILL_DELAY = 0x18,
	MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
	MQTT_PROP_RESPONSE_INFO = 0x1A,
	MQTT_PROP_SERVER_REFERENCE = 0x1C,
	MQTT_PROP_REASON_STRING = 0x1F,
	MQTT_PROP_RECEIVE_MAXIMUM = 0x21,
	MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
	MQTT_PROP_TOPIC_ALIAS = 0x23,
	MQTT_PROP_MAXIMUM_QOS = 0x24,
	MQTT_PROP_RETAIN_AVAILABLE = 0x25,
	MQTT_PROP_USER = 0x26,
	MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,
	MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
	MQTT_PROP_SUB_ID_AVAILABLE = 0x29,
	MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,
};

/*
 * MQTT 5 properties of one packet (or of a CONNECT's Will). A single-valued
 * property is in its field when mqtt_props_has() says so. The repeatable ones
 * are not copied out: user_props is a run of wire-format property entries
 * from which every User Property is taken, and sub_ids likewise for the
 * Subscription Identifiers of a PUBLISH (a SUBSCRIBE's single one is in
 * subscription_id). The decoder points both views at the whole property
 * section; an encoder takes only the entries of the kind it wants from each,
 * so a decoded packet's properties can be forwarded as they are, and new
 * lists are built with mqtt_user_prop_put() and mqtt_sub_id_put().
 * Ignored in 3.1.1, where packets have no properties.
 */
struct mqtt_props {
	uint64_t	present;	/* bit (1 << id) per property present */

	uint8_t		payload_format;
	uint8_t		request_problem_info;
	uint8_t		request_response_info;
	uint8_t		maximum_qos;
	uint8_t		retain_available;
	uint8_t		wildcard_sub_available;
	uint8_t		sub_id_available;
	uint8_t		shared_sub_available;
	uint16_t	server_keep_alive;
	uint16_t	receive_maximum;
	uint16_t	topic_alias_maximum;
	uint16_t	topic_alias;
	uint32_t	message_expiry;
	uint32_t	session_expiry;
	uint32_t	will_delay;
	uint32_t	maximum_packet_size;
	uint32_t	subscription_id;	/* SUBSCRIBE only */

	struct buf_view	content_type;
	struct buf_view	response_topic;
	struct buf_view	correlation_data;
	struct buf_view	assigned_client_id;
	struct buf_view	auth_method;
	struct buf_view	auth_data;
	struct buf_view	response_info;
	struct buf_view	server_reference;
	struct buf_view	reason_string;

	struct buf_view	user_props;	/* see above: mqtt_user_prop_next() */
	struct buf_view	sub_ids;	/* PUBLISH: mqtt_sub_id_next() */
};

struct mqtt_connect {
	uint8_t		protocol_level;	/* decode: 4 or 5; encode: ignored */
	bool		clean_start;	/* Clean Session in 3.1.1 */
	uint16_t	keep_alive;
	struct mqtt_props props;
	struct buf_view	client_id;
	bool		will;
	uint8_t		will_qos;
	bool		will_retain;
	struct mqtt_props will_props;
	struct buf_view	will_topic;
	struct buf_view	will_payload;
	bool		has_username;
	bool		has_password;
	struct buf_view	username;
	struct buf_view	password;
};

struct mqtt_connack {
	bool		session_present;
	uint8_t		reason_code;	/* 3.1.1: the return code, 0 to 5 */
	struct mqtt_props props;
};

struct mqtt_publish {
	bool		dup;
	uint8_t		qos;
	bool		retain;
	struct buf_view	topic;		/* 5.0: may be empty with a Topic Alias */
	uint16_t	packet_id;	/* QoS 1 and 2 only */
	struct mqtt_props props;
	struct buf_view	payload;
};

/* PUBACK, PUBREC, PUBREL, PUBCOMP. reason_code and props are 5.0 only. */
struct mqtt_ack {
	uint16_t	packet_id;
	uint8_t		reason_code;
	struct mqtt_props props;
};

/*
 * SUBSCRIBE and UNSUBSCRIBE. list is the payload in wire format: walk a
 * SUBSCRIBE's with mqtt_subscription_next(), an UNSUBSCRIBE's with
 * mqtt_filter_next(); build one with mqtt_subscription_put() or
 * mqtt_filter_put().
 */
struct mqtt_subscribe {
	uint16_t	packet_id;
	struct mqtt_props props;
	struct buf_view	list;
};

/* SUBACK and UNSUBACK: one reason code byte per filter (none in a 3.1.1 UNSUBACK). */
struct mqtt_suback {
	uint16_t	packet_id;
	struct mqtt_props props;
	struct buf_view	reason_codes;
};

/* DISCONNECT and AUTH: a reason code and properties, 5.0 only. */
struct mqtt_disconnect {
	uint8_t		reason_code;
	struct mqtt_props props;
};

struct mqtt_packet {
	enum mqtt_type	type;
	union {
		struct mqtt_connect	connect;
		struct mqtt_connack	connack;
		struct mqtt_publish	publish;
		struct mqtt_ack		ack;		/* PUBACK PUBREC PUBREL PUBCOMP */
		struct mqtt_subscribe	subscribe;
		struct mqtt_subscribe	unsubscribe;
		struct mqtt_suback	suback;
		struct mqtt_suback	unsuback;
		struct mqtt_disconnect	disconnect;
		struct mqtt_disconnect	auth;
	};
};

/* One SUBSCRIBE entry. In 3.1.1 only filter and qos exist. */
struct mqtt_subscription {
	struct buf_view	filter;
	uint8_t		qos;
	bool		no_local;
	bool		retain_as_published;
	uint8_t		retain_handling;
};

/* The fixed header, as mqtt_probe() finds it. */
struct mqtt_header {
	enum mqtt_type	type;
	uint8_t		flags;		/* low 4 bits of the first byte */
	uint32_t	remaining;	/* Remaining Length */
	size_t		size;		/* the whole packet: header + remaining */
};

/* A cursor over a wire-format list view; the view is borrowed. */
struct mqtt_iter {
	struct buf_reader r;
};

/*
 * Read the fixed header from the first bytes of buf[0..len) (5 are always
 * enough) and check it before the body is waited for: the type, the flags
 * the type requires, the Remaining Length encoding, and that the whole packet
 * fits max_size bytes (MQTT_MAX_PACKET for no limit of one's own). AUTH is
 * accepted here whatever the version; mqtt_decode() refuses it in 3.1.1.
 * Returns MQTT_OK with *h filled, MQTT_NEED_MORE, MQTT_E_TOO_LARGE (with *h
 * filled, so the packet can be named in a log or skipped), MQTT_E_TYPE,
 * MQTT_E_FLAGS, MQTT_E_QOS, MQTT_E_DUP or MQTT_E_REMLEN.
 */
enum mqtt_status mqtt_probe(const uint8_t *buf, size_t len, size_t max_size,
		    struct mqtt_header *h);

/*
 * Decode the packet at the start of buf[0..len), which may hold less than a
 * packet (MQTT_NEED_MORE: nothing was consumed) or more (the rest is left).
 * v is the session's protocol version; a CONNECT ignores it and reads its own
 * into pkt->connect.protocol_level, which is also set when the decode fails
 * after it was read, so that a server knows which CONNACK to answer with.
 * On MQTT_OK *pkt holds views into buf and *used the packet's size. On any
 * failure *pkt must not be used otherwise. Returns MQTT_OK, MQTT_NEED_MORE,
 * MQTT_E_TOO_LARGE (max_size as for mqtt_probe()), or the MQTT_E_* of the
 * first violation found.
 */
enum mqtt_status mqtt_decode(const uint8_t *buf, size_t len, enum mqtt_version v,
		    size_t max_size, struct mqtt_packet *pkt, size_t *used);

/*
 * Validate *pkt for version v as the decoder would and set *size to the bytes
 * mqtt_encode() will write. Fields that do not exist in v are ignored. A
 * CONNECT is encoded with protocol level v. Returns MQTT_OK, MQTT_E_TOO_LARGE
 * beyond MQTT_MAX_REMLEN, or the MQTT_E_* of the first violation.
 */
enum mqtt_status mqtt_size(const struct mqtt_packet *pkt, enum mqtt_version v,
		    size_t *size);

/*
 * Validate and encode *pkt into out[0..cap) (borrowed, not kept); *written
 * is the packet's size. Returns what mqtt_size() does, or MQTT_NO_SPACE, in
 * which case out holds nothing usable. Nothing of *pkt is kept.
 */
enum mqtt_status mqtt_encode(const struct mqtt_packet *pkt, enum mqtt_version v,
		    uint8_t *out, size_t cap, size_t *written);

/*
 * The same for a PUBLISH without its payload: the fixed header (whose
 * Remaining Length counts pub->payload.len), the variable header, and nothing
 * of the payload, which the caller sends right after from wherever it lives.
 * pub->payload.ptr is not read. Returns as mqtt_encode().
 */
enum mqtt_status mqtt_publish_header_size(const struct mqtt_publish *pub,
		    enum mqtt_version v, size_t *size);
enum mqtt_status mqtt_encode_publish_header(const struct mqtt_publish *pub,
		    enum mqtt_version v, uint8_t *out, size_t cap, size_t *written);

/*
 * Do a and b say the same in version v? Views compare by content and lists
 * item by item, so a packet equals its re-encoded and decoded self even when
 * the bytes differ (property order, the short forms of acks).
 */
bool		mqtt_packet_equal(const struct mqtt_packet *a,
		    const struct mqtt_packet *b, enum mqtt_version v);

/* Is property id present in *p? */
bool		mqtt_props_has(const struct mqtt_props *p, enum mqtt_prop_id id);

/* Mark property id present; set its field as well. */
void		mqtt_props_set(struct mqtt_props *p, enum mqtt_prop_id id);

/*
 * Iterators over the wire-format lists of a packet. Each next() returns true
 * with the next item, false at the end or at bytes that do not parse (which
 * a decoded or encoded packet never has). Items are views into the list.
 */
void		mqtt_iter_init(struct mqtt_iter *it, struct buf_view list);
bool		mqtt_user_prop_next(struct mqtt_iter *it, struct buf_view *key,
		    struct buf_view *value);
bool		mqtt_sub_id_next(struct mqtt_iter *it, uint32_t *id);
bool		mqtt_subscription_next(struct mqtt_iter *it,
		    struct mqtt_subscription *s);
bool		mqtt_filter_next(struct mqtt_iter *it, struct buf_view *filter);

/*
 * Append one list item in wire format to w, to build the views the encoder
 * reads. Nothing is validated here (the packet encoder does it); a key, value
 * or filter over 65535 bytes leaves w in BUF_RANGE, and a subscription's qos
 * and retain_handling are written as their low two bits.
 */
void		mqtt_user_prop_put(struct buf_writer *w, struct buf_view key,
		    struct buf_view value);
void		mqtt_sub_id_put(struct buf_writer *w, uint32_t id);
void		mqtt_subscription_put(struct buf_writer *w,
		    const struct mqtt_subscription *s);
void		mqtt_filter_put(struct buf_writer *w, struct buf_view filter);

/* The MQTT 5 reason code to report a status with: 0x00 for MQTT_OK, 0x80 for
 * NEED_MORE and NO_SPACE, which are not the peer's fault. */
uint8_t		mqtt_status_reason(enum mqtt_status st);

/* The MQTT 3.1.1 CONNACK return code for a failed CONNECT: 0x01 for
 * MQTT_E_VERSION, 0x02 for MQTT_E_CLIENT_ID, 0 when the server should
 * close without a CONNACK. */
uint8_t		mqtt_status_connack311(enum mqtt_status st);

/* Static English text for a status, a reason code, a packet type. */
const char	*mqtt_strerror(enum mqtt_status st);
const char	*mqtt_reason_name(uint8_t code);
const char	*mqtt_type_name(enum mqtt_type t);

#endif
