/*
 * The codes and names of MQTT: the reason code table of MQTT 5.0 (which
 * packets may carry each code), the codec's statuses with the reason code
 * each is reported with, and packet type names for logs.
 */
#include "mqtt/mqtt.h"

#include "mqtt/mqtt_int.h"

enum {
	CONNACK = 1 << MQTT_CONNACK,
	PUBACK = 1 << MQTT_PUBACK,
	PUBREC = 1 << MQTT_PUBREC,
	PUBREL = 1 << MQTT_PUBREL,
	PUBCOMP = 1 << MQTT_PUBCOMP,
	SUBACK = 1 << MQTT_SUBACK,
	UNSUBACK = 1 << MQTT_UNSUBACK,
	DISCONNECT = 1 << MQTT_DISCONNECT,
	AUTH = 1 << MQTT_AUTH,

	PUB = PUBACK | PUBREC,
	SUB = SUBACK | UNSUBACK,
};

struct reason_def {
	uint8_t		 code;
	uint32_t	 packets;
	const char	*name;
};

/* MQTT 5.0 section 2.4, table 2-6. 0x00 is named for most packets. */
static const struct reason_def reasons[] = {
	{ 0x00, CONNACK | PUB | PUBREL | PUBCOMP | SUB | DISCONNECT | AUTH,
	    "success" },
	{ 0x01, SUBACK, "granted QoS 1" },
	{ 0x02, SUBACK, "granted QoS 2" },
	{ 0x04, DISCONNECT, "disconnect with will message" },
	{ 0x10, PUB, "no matching subscribers" },
	{ 0x11, UNSUBACK, "no subscription existed" },
	{ 0x18, AUTH, "continue authentication" },
	{ 0x19, AUTH, "re-authenticate" },
	{ 0x80, CONNACK | PUB | SUB | DISCONNECT, "unspecified error" },
	{ 0x81, CONNACK | DISCONNECT, "malformed packet" },
	{ 0x82, CONNACK | DISCONNECT, "protocol error" },
	{ 0x83, CONNACK | PUB | SUB | DISCONNECT, "implementation specific error" },
	{ 0x84, CONNACK, "unsupported protocol version" },
	{ 0x85, CONNACK, "client identifier not valid" },
	{ 0x86, CONNACK, "bad user name or password" },
	{ 0x87, CONNACK | PUB | SUB | DISCONNECT, "not authorized" },
	{ 0x88, CONNACK, "server unavailable" },
	{ 0x89, CONNACK | DISCONNECT, "server busy" },
	{ 0x8A, CONNACK, "banned" },
	{ 0x8B, DISCONNECT, "server shutting down" },
	{ 0x8C, CONNACK | DISCONNECT, "bad authentication method" },
	{ 0x8D, DISCONNECT, "keep alive timeout" },
	{ 0x8E, DISCONNECT, "session taken over" },
	{ 0x8F, SUB | DISCONNECT, "topic filter invalid" },
	{ 0x90, CONNACK | PUB | DISCONNECT, "topic name invalid" },
	{ 0x91, PUB | SUB, "packet identifier in use" },
	{ 0x92, PUBREL | PUBCOMP, "packet identifier not found" },
	{ 0x93, DISCONNECT, "receive maximum exceeded" },
	{ 0x94, DISCONNECT, "topic alias invalid" },
	{ 0x95, CONNACK | DISCONNECT, "packet too large" },
	{ 0x96, DISCONNECT, "message rate too high" },
	{ 0x97, CONNACK | PUB | SUBACK | DISCONNECT, "quota exceeded" },
	{ 0x98, DISCONNECT, "administrative action" },
	{ 0x99, CONNACK | PUB | DISCONNECT, "payload format invalid" },
	{ 0x9A, CONNACK | DISCONNECT, "retain not supported" },
	{ 0x9B, CONNACK | DISCONNECT, "QoS not supported" },
	{ 0x9C, CONNACK | DISCONNECT, "use another server" },
	{ 0x9D, CONNACK | DISCONNECT, "server moved" },
	{ 0x9E, SUBACK | DISCONNECT, "shared subscriptions not supported" },
	{ 0x9F, CONNACK | DISCONNECT, "connection rate exceeded" },
	{ 0xA0, DISCONNECT, "maximum connect time" },
	{ 0xA1, SUBACK | DISCONNECT, "subscription identifiers not supported" },
	{ 0xA2, SUBACK | DISCONNECT, "wildcard subscriptions not supported" },
};

static const struct reason_def *
reason_lookup(uint8_t code)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == code)
			return &reasons[i];
	return NULL;
}

bool
mqtt_reason_allowed(uint8_t code, enum mqtt_type t)
{
	const struct reason_def *r = reason_lookup(code);

	return r != NULL && (r->packets & mqtt_where_bit(t)) != 0;
}

const char *
mqtt_reason_name(uint8_t code)
{
	const struct reason_def *r = reason_lookup(code);

	return r != NULL ? r->name : "unknown reason code";
}

struct status_def {
	uint8_t		 reason;
	const char	*text;
};

static const struct status_def statuses[] = {
	[MQTT_OK] = { 0x00, "success" },
	[MQTT_NEED_MORE] = { 0x80, "packet incomplete, more bytes needed" },
	[MQTT_NO_SPACE] = { 0x80, "output buffer too small" },
	[MQTT_E_REMLEN] = { 0x81, "malformed remaining length" },
	[MQTT_E_TOO_LARGE] = { 0x95, "packet too large" },
	[MQTT_E_TYPE] = { 0x81, "reserved packet type" },
	[MQTT_E_FLAGS] = { 0x81, "reserved fixed header flags" },
	[MQTT_E_QOS] = { 0x81, "QoS 3" },
	[MQTT_E_DUP] = { 0x81, "DUP set on QoS 0 PUBLISH" },
	[MQTT_E_TRUNCATED] = { 0x81, "field runs past the remaining length" },
	[MQTT_E_TRAILING] = { 0x81, "bytes after the last field" },
	[MQTT_E_VARINT] = { 0x81, "malformed variable byte integer" },
	[MQTT_E_UTF8] = { 0x81, "string not well-formed UTF-8 or with U+0000" },
	[MQTT_E_LENGTH] = { 0x81, "string or binary data over 65535 bytes" },
	[MQTT_E_PROTOCOL_NAME] = { 0x84, "protocol name not MQTT" },
	[MQTT_E_VERSION] = { 0x84, "unsupported protocol version" },
	[MQTT_E_CONNECT_FLAGS] = { 0x81, "reserved CONNECT flag set" },
	[MQTT_E_WILL_FLAGS] = { 0x81, "will QoS or retain inconsistent" },
	[MQTT_E_PASSWORD_FLAG] = { 0x81, "password without user name" },
	[MQTT_E_CLIENT_ID] = { 0x85,
	    "empty client identifier without clean session" },
	[MQTT_E_CONNACK_FLAGS] = { 0x81, "invalid CONNACK acknowledge flags" },
	[MQTT_E_PACKET_ID] = { 0x82, "packet identifier 0" },
	[MQTT_E_TOPIC_NAME] = { 0x90, "invalid topic name" },
	[MQTT_E_TOPIC_FILTER] = { 0x8F, "invalid topic filter" },
	[MQTT_E_EMPTY_LIST] = { 0x82, "no topic filters or reason codes" },
	[MQTT_E_SUB_OPTIONS] = { 0x81, "reserved subscription option bits set" },
	[MQTT_E_RETAIN_HANDLING] = { 0x82, "retain handling 3" },
	[MQTT_E_SHARED_NO_LOCAL] = { 0x82, "no local on a shared subscription" },
	[MQTT_E_REASON_CODE] = { 0x82, "reason code not valid for the packet" },
	[MQTT_E_PROP_LENGTH] = { 0x81, "property runs past the property length" },
	[MQTT_E_PROP_UNKNOWN] = { 0x81, "unknown property identifier" },
	[MQTT_E_PROP_NOT_ALLOWED] = { 0x82, "property not allowed in the packet" },
	[MQTT_E_PROP_DUP] = { 0x82, "property given more than once" },
	[MQTT_E_PROP_VALUE] = { 0x82, "property value out of range" },
	[MQTT_E_AUTH_METHOD] = { 0x82, "authentication method missing" },
};

static const struct status_def *
status_lookup(enum mqtt_status st)
{
	if ((size_t)st >= sizeof(statuses) / sizeof(statuses[0]) ||
	    statuses[st].text == NULL)
		return NULL;
	return &statuses[st];
}

uint8_t
mqtt_status_reason(enum mqtt_status st)
{
	const struct status_def *s = status_lookup(st);

	return s != NULL ? s->reason : 0x80;
}

uint8_t
mqtt_status_connack311(enum mqtt_status st)
{
	switch (st) {
	case MQTT_E_VERSION:
		return 0x01;
	case MQTT_E_CLIENT_ID:
		return 0x02;
	default:
		return 0;
	}
}

const char *
mqtt_strerror(enum mqtt_status st)
{
	const struct status_def *s = status_lookup(st);

	return s != NULL ? s->text : "unknown MQTT status";
}

const char *
mqtt_type_name(enum mqtt_type t)
{
	static const char *const names[] = {
		[MQTT_CONNECT] = "CONNECT", [MQTT_CONNACK] = "CONNACK",
		[MQTT_PUBLISH] = "PUBLISH", [MQTT_PUBACK] = "PUBACK",
		[MQTT_PUBREC] = "PUBREC", [MQTT_PUBREL] = "PUBREL",
		[MQTT_PUBCOMP] = "PUBCOMP", [MQTT_SUBSCRIBE] = "SUBSCRIBE",
		[MQTT_SUBACK] = "SUBACK", [MQTT_UNSUBSCRIBE] = "UNSUBSCRIBE",
		[MQTT_UNSUBACK] = "UNSUBACK", [MQTT_PINGREQ] = "PINGREQ",
		[MQTT_PINGRESP] = "PINGRESP", [MQTT_DISCONNECT] = "DISCONNECT",
		[MQTT_AUTH] = "AUTH",
	};

	if ((size_t)t >= sizeof(names) / sizeof(names[0]) || names[t] == NULL)
		return "reserved";
	return names[t];
}
