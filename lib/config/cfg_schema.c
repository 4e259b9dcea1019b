/*
 * The schema: one table per section, every key with its type, field, range,
 * default and one-line doc. This is the only place defaults live; the loader,
 * the did-you-mean, cfg_describe(), cfg_keys() and through it the test of
 * docs/configuration.md and conf/iotbridge.reference.yaml all read these
 * tables.
 * Also the table-driven walks that need nothing but the tables: defaults,
 * freeing, and the key listing.
 */
#include "config/cfg.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "config/cfg_int.h"

/* Enum fields are written through an int. */
_Static_assert(sizeof(enum cfg_slow) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_cred_source) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_transport) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_drop) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_fsync) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_direction) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_ack) == sizeof(int), "enum size");
_Static_assert(sizeof(enum cfg_log_level) == sizeof(int), "enum size");

#define NKEYS(a)	(sizeof(a) / sizeof((a)[0]))
#define KEY(n, t, f)	.name = (n), .type = (t), .off = offsetof(S, f)
#define SECTION(name, keys, type, chk) \
	static const struct cfg_section name = { keys, NKEYS(keys), sizeof(type), chk }

#define KIB	1024LL
#define MIB	(1024 * KIB)
#define GIB	(1024 * MIB)
#define SEC	1000LL
#define MIN	(60 * SEC)
#define HOUR	(60 * MIN)
#define DAY	(24 * HOUR)

/* --- listeners ------------------------------------------------------------ */

#define S struct cfg_tls
static const struct cfg_keydef tls_keys[] = {
	{ KEY("cert", CFG_T_PATH, cert), .flags = CFG_K_REQUIRED,
	  .doc = "server certificate chain, PEM" },
	{ KEY("key", CFG_T_PATH, key), .flags = CFG_K_REQUIRED,
	  .doc = "private key of cert, PEM" },
	{ KEY("client_ca", CFG_T_PATH, client_ca),
	  .doc = "CA bundle that client certificates must chain to; "
	      "unset: no client certificates" },
};
#undef S
SECTION(tls_section, tls_keys, struct cfg_tls, NULL);

#define S struct cfg_auth
static const struct cfg_keydef auth_keys[] = {
	{ KEY("anonymous", CFG_T_BOOL, anonymous), .dflt = "true",
	  .doc = "accept clients that give no username" },
	{ KEY("password_file", CFG_T_PATH, password_file),
	  .doc = "users and password hashes; unset: no password logins" },
	{ KEY("acl_file", CFG_T_PATH, acl_file),
	  .doc = "topic access rules per user; unset: all topics for all" },
};
#undef S
SECTION(auth_section, auth_keys, struct cfg_auth, NULL);

#define S struct cfg_listener
static const struct cfg_keydef listener_keys[] = {
	/* First: the list's default sets it. */
	{ KEY("bind", CFG_T_ADDR, bind), .flags = CFG_K_REQUIRED | CFG_K_UNIX,
	  .doc = "address to listen on: IPv4:PORT, [IPv6]:PORT or unix:/PATH" },
	{ KEY("tls", CFG_T_SECTION, tls), .sub = &tls_section,
	  .doc = "TLS on this listener; absent: plain MQTT" },
	{ KEY("auth", CFG_T_SECTION, auth), .sub = &auth_section,
	  .doc = "who may connect" },
	{ KEY("max_connections", CFG_T_INT, max_connections),
	  .min = 1, .max = 1000000, .special = "only limits.max_connections",
	  .special_value = 0, .dflt = "0",
	  .doc = "connections on this listener" },
};
#undef S
SECTION(listener_section, listener_keys, struct cfg_listener,
    cfg_check_listener);

/* --- broker, limits ------------------------------------------------------- */

static const char *const slow_values[] = { "drop_qos0", "disconnect", NULL };

#define S struct cfg_broker
static const struct cfg_keydef broker_keys[] = {
	{ KEY("state_dir", CFG_T_PATH, state_dir), .dflt = "/var/lib/iotbridge",
	  .doc = "directory for persistent sessions and retained messages" },
	{ KEY("sys_interval", CFG_T_DURATION, sys_interval_ms),
	  .min = SEC, .max = HOUR, .special = "off", .special_value = 0,
	  .dflt = "10s", .doc = "how often the $SYS/# statistics are published" },
	{ KEY("persistence", CFG_T_BOOL, persistence), .dflt = "true",
	  .doc = "keep sessions and retained messages across restarts" },
	{ KEY("persist_interval", CFG_T_DURATION, persist_interval_ms),
	  .min = 100, .max = HOUR, .dflt = "5s",
	  .doc = "longest time a change waits before the state file is "
	      "rewritten (SD card wear against what a power cut loses)" },
	{ KEY("max_sessions", CFG_T_INT, max_sessions),
	  .min = 0, .max = 1000000, .dflt = "1000",
	  .doc = "persistent sessions kept; the least recently used go first" },
	{ KEY("session_expiry", CFG_T_DURATION, session_expiry_ms),
	  .min = MIN, .max = 365 * DAY, .dflt = "1d",
	  .doc = "how long a disconnected persistent session is kept at most" },
	{ KEY("slow_subscriber", CFG_T_ENUM, slow_subscriber),
	  .values = slow_values, .dflt = "drop_qos0",
	  .doc = "when a client's output buffer is full: drop its QoS 0 "
	      "messages, or disconnect it" },
};
#undef S
SECTION(broker_section, broker_keys, struct cfg_broker, NULL);

#define S struct cfg_limits
static const struct cfg_keydef limits_keys[] = {
	{ KEY("max_connections", CFG_T_INT, max_connections),
	  .min = 1, .max = 1000000, .dflt = "1024",
	  .doc = "client connections, all listeners together" },
	{ KEY("max_packet_size", CFG_T_SIZE, max_packet_size),
	  .min = 16, .max = 256 * MIB, .dflt = "1MiB",
	  .doc = "largest MQTT packet accepted from a client" },
	{ KEY("max_inflight", CFG_T_INT, max_inflight),
	  .min = 1, .max = 65535, .dflt = "20",
	  .doc = "QoS 1 and 2 messages sent to a client and not yet acknowledged" },
	{ KEY("max_queued_messages", CFG_T_INT, max_queued_messages),
	  .min = 1, .max = 1000000, .dflt = "1000",
	  .doc = "messages held per session while its client is away or slow" },
	{ KEY("max_subscriptions", CFG_T_INT, max_subscriptions),
	  .min = 1, .max = 100000, .dflt = "100",
	  .doc = "subscriptions per client" },
	{ KEY("connect_timeout", CFG_T_DURATION, connect_timeout_ms),
	  .min = SEC, .max = 5 * MIN, .dflt = "10s",
	  .doc = "time a new connection has to send CONNECT" },
	{ KEY("max_client_buffer", CFG_T_SIZE, max_client_buffer),
	  .min = 4 * KIB, .max = GIB, .dflt = "1MiB",
	  .doc = "output buffered per client before broker.slow_subscriber "
	      "applies" },
	{ KEY("max_retained", CFG_T_INT, max_retained),
	  .min = 0, .max = 10000000, .dflt = "10000",
	  .doc = "retained messages kept, all topics together; past it a "
	      "new topic's retained message is delivered but not kept" },
	{ KEY("max_retained_bytes", CFG_T_SIZE, max_retained_bytes),
	  .min = 0, .max = 4 * GIB, .dflt = "16MiB",
	  .doc = "bytes of the retained messages' topics and payloads "
	      "together, with the same rule" },
};
#undef S
SECTION(limits_section, limits_keys, struct cfg_limits, NULL);

/* --- aws ------------------------------------------------------------------ */

static const char *const source_values[] = {
	"env", "static", "profile", "iot", NULL
};

#define S struct cfg_credentials
static const struct cfg_keydef credentials_keys[] = {
	{ KEY("source", CFG_T_ENUM, source), .values = source_values,
	  .dflt = "env",
	  .doc = "env: AWS_ACCESS_KEY_ID etc.; static: the keys below; "
	      "profile: file and profile; iot: the AWS IoT credentials "
	      "provider, with aws.cert_file" },
	{ KEY("access_key_id", CFG_T_STRING, access_key_id),
	  .flags = CFG_K_SECRET, .min = 1, .max = 128,
	  .doc = "source static: the access key id (required)" },
	{ KEY("secret_access_key", CFG_T_STRING, secret_access_key),
	  .flags = CFG_K_SECRET, .min = 1, .max = 128,
	  .doc = "source static: the secret access key (required)" },
	{ KEY("session_token", CFG_T_STRING, session_token),
	  .flags = CFG_K_SECRET, .min = 1, .max = CFG_STR_MAX,
	  .doc = "source static: the session token of temporary credentials" },
	{ KEY("file", CFG_T_PATH, file), .dflt = "/etc/iotbridge/aws-credentials",
	  .doc = "source profile: AWS shared credentials file" },
	{ KEY("profile", CFG_T_STRING, profile), .min = 1, .max = 128,
	  .dflt = "default", .doc = "source profile: the profile in file" },
	{ KEY("endpoint", CFG_T_ENDPOINT, endpoint),
	  .doc = "source iot: the account's credentials endpoint, HOST or "
	      "HOST:PORT (required)" },
	{ KEY("role_alias", CFG_T_STRING, role_alias), .min = 1, .max = 128,
	  .doc = "source iot: the role alias whose IAM role's credentials "
	      "are fetched (required)" },
	{ KEY("thing_name", CFG_T_STRING, thing_name), .min = 1, .max = 128,
	  .doc = "source iot: the thing the certificate is attached to "
	      "(required)" },
};
#undef S
SECTION(credentials_section, credentials_keys, struct cfg_credentials,
    cfg_check_credentials);

#define S struct cfg_proxy
static const struct cfg_keydef proxy_keys[] = {
	{ KEY("url", CFG_T_URL, url), .flags = CFG_K_REQUIRED,
	  .doc = "HTTP proxy for the connection to AWS: http://HOST:PORT" },
	{ KEY("username", CFG_T_STRING, username), .min = 1, .max = 256,
	  .doc = "proxy user (Basic authentication), with password" },
	{ KEY("password", CFG_T_STRING, password), .flags = CFG_K_SECRET,
	  .min = 1, .max = 256, .doc = "proxy password, with username" },
};
#undef S
SECTION(proxy_section, proxy_keys, struct cfg_proxy, cfg_check_proxy);

#define S struct cfg_aws_limits
static const struct cfg_keydef aws_limits_keys[] = {
	{ KEY("publish_rate", CFG_T_INT, publish_rate),
	  .min = 1, .max = 10000, .dflt = "100",
	  .doc = "PUBLISH per second to AWS (AWS: 100 per connection)" },
	{ KEY("bandwidth", CFG_T_SIZE, bandwidth),
	  .min = KIB, .max = GIB, .dflt = "512KiB",
	  .doc = "bytes per second to AWS (AWS: 512KiB per connection)" },
	{ KEY("max_payload", CFG_T_SIZE, max_payload),
	  .min = 1, .max = 128 * KIB, .dflt = "128KiB",
	  .doc = "largest payload sent to AWS; larger are refused locally" },
	{ KEY("max_topic_length", CFG_T_INT, max_topic_length),
	  .min = 1, .max = 256, .dflt = "256",
	  .doc = "longest topic sent to AWS, bytes" },
	{ KEY("max_topic_slashes", CFG_T_INT, max_topic_slashes),
	  .min = 0, .max = 7, .dflt = "7",
	  .doc = "most '/' in a topic sent to AWS" },
	{ KEY("max_subscriptions", CFG_T_INT, max_subscriptions),
	  .min = 1, .max = 1000, .dflt = "50",
	  .doc = "subscriptions on the AWS connection (AWS: 50)" },
	{ KEY("filters_per_subscribe", CFG_T_INT, filters_per_subscribe),
	  .min = 1, .max = 8, .dflt = "8",
	  .doc = "topic filters in one SUBSCRIBE to AWS" },
	{ KEY("max_inflight", CFG_T_INT, max_inflight),
	  .min = 1, .max = 100, .dflt = "100",
	  .doc = "QoS 1 messages sent to AWS and not yet acknowledged" },
};
#undef S
SECTION(aws_limits_section, aws_limits_keys, struct cfg_aws_limits, NULL);

#define S struct cfg_dead_letter
static const struct cfg_keydef dead_letter_keys[] = {
	{ KEY("max_bytes", CFG_T_SIZE, max_bytes),
	  .min = KIB, .max = GIB, .special = "off", .special_value = 0,
	  .dflt = "1MiB",
	  .doc = "messages AWS's rules refuse are kept in broker.state_dir "
	      "up to this size" },
};
#undef S
SECTION(dead_letter_section, dead_letter_keys, struct cfg_dead_letter, NULL);

static const char *const transport_values[] = {
	"mqtts", "mqtts-alpn", "wss", "auto", NULL
};

#define S struct cfg_aws
static const struct cfg_keydef aws_keys[] = {
	{ KEY("endpoint", CFG_T_ENDPOINT, endpoint), .flags = CFG_K_REQUIRED,
	  .doc = "AWS IoT data endpoint, HOST or HOST:PORT (port 443)" },
	{ KEY("region", CFG_T_REGION, region),
	  .doc = "SigV4 region; unset: taken from endpoint "
	      "*.iot.REGION.amazonaws.com" },
	{ KEY("client_id", CFG_T_STRING, client_id), .flags = CFG_K_REQUIRED,
	  .min = 1, .max = 128, .doc = "MQTT client id towards AWS" },
	{ KEY("transport", CFG_T_ENUM, transport), .values = transport_values,
	  .doc = "mqtts: mutual TLS to mqtts_port; mqtts-alpn: the same to "
	      "endpoint's port with ALPN; wss: SigV4 WebSocket; auto: the "
	      "first that works. Unset: auto with cert_file and no SigV4 "
	      "credentials named, else wss" },
	{ KEY("ca_file", CFG_T_PATH, ca_file),
	  .dflt = "/etc/ssl/certs/ca-certificates.crt",
	  .doc = "CA bundle that verifies AWS" },
	{ KEY("cert_file", CFG_T_PATH, cert_file),
	  .doc = "the device certificate registered with AWS IoT, PEM "
	      "(then any intermediates), with key_file" },
	{ KEY("key_file", CFG_T_PATH, key_file),
	  .doc = "its private key, PEM (RSA or EC), readable by no other "
	      "user" },
	{ KEY("mqtts_port", CFG_T_INT, mqtts_port), .min = 1, .max = 65535,
	  .dflt = "8883", .doc = "port of transport mqtts" },
	{ KEY("credentials", CFG_T_SECTION, credentials),
	  .sub = &credentials_section, .doc = "AWS credentials for SigV4" },
	{ KEY("keepalive", CFG_T_DURATION, keepalive_ms),
	  .min = 30 * SEC, .max = 20 * MIN, .dflt = "30s",
	  .doc = "MQTT keepalive towards AWS (AWS accepts 30s..20m)" },
	{ KEY("connect_timeout", CFG_T_DURATION, connect_timeout_ms),
	  .min = SEC, .max = 5 * MIN, .dflt = "10s",
	  .doc = "from starting to connect until CONNACK" },
	{ KEY("operation_timeout", CFG_T_DURATION, operation_timeout_ms),
	  .min = SEC, .max = 5 * MIN, .dflt = "5s",
	  .doc = "wait for PUBACK or SUBACK before reconnecting" },
	{ KEY("max_connection_age", CFG_T_DURATION, max_connection_age_ms),
	  .min = 5 * SEC, .max = DAY, .dflt = "23h",
	  .doc = "reconnect after this long, ahead of AWS's 24h limit" },
	{ KEY("proxy", CFG_T_SECTION, proxy), .sub = &proxy_section,
	  .doc = "HTTP proxy; absent: https_proxy from the environment" },
	{ KEY("limits", CFG_T_SECTION, limits), .sub = &aws_limits_section,
	  .doc = "AWS IoT Core's limits, enforced before sending" },
	{ KEY("dead_letter", CFG_T_SECTION, dead_letter),
	  .sub = &dead_letter_section,
	  .doc = "messages that cannot be sent to AWS" },
};
#undef S
SECTION(aws_section, aws_keys, struct cfg_aws, cfg_check_aws);

/* --- reconnect, queue ----------------------------------------------------- */

#define S struct cfg_reconnect
static const struct cfg_keydef reconnect_keys[] = {
	{ KEY("base", CFG_T_DURATION, base_ms),
	  .min = 100, .max = HOUR, .dflt = "1s",
	  .doc = "first delay before reconnecting to AWS; doubles each time" },
	{ KEY("max", CFG_T_DURATION, max_ms),
	  .min = SEC, .max = DAY, .dflt = "32s",
	  .doc = "longest delay between reconnects" },
	{ KEY("stable", CFG_T_DURATION, stable_ms),
	  .min = SEC, .max = HOUR, .dflt = "20s",
	  .doc = "connected this long, the delay starts again from base" },
	{ KEY("jitter", CFG_T_BOOL, jitter), .dflt = "true",
	  .doc = "randomize each delay between base and the computed one" },
};
#undef S
SECTION(reconnect_section, reconnect_keys, struct cfg_reconnect,
    cfg_check_reconnect);

static const char *const drop_values[] = { "oldest", "newest", NULL };
static const char *const fsync_values[] = {
	"always", "interval", "never", NULL
};

#define S struct cfg_queue
static const struct cfg_keydef queue_keys[] = {
	{ KEY("dir", CFG_T_PATH, dir), .dflt = "/var/lib/iotbridge/queue",
	  .doc = "directory of the store-and-forward queue" },
	{ KEY("max_messages", CFG_T_INT, max_messages),
	  .min = 1, .max = 1000000000, .special = "no limit",
	  .special_value = -1, .dflt = "100000",
	  .doc = "messages in the queue" },
	{ KEY("max_bytes", CFG_T_SIZE, max_bytes),
	  .min = MIB, .max = 1024 * GIB, .dflt = "64MiB",
	  .doc = "disk space of the queue" },
	{ KEY("drop", CFG_T_ENUM, drop), .values = drop_values,
	  .dflt = "oldest",
	  .doc = "queue full: discard the oldest message, or refuse the new one" },
	{ KEY("drain_hz", CFG_T_INT, drain_hz),
	  .min = 0, .max = 10000, .dflt = "50",
	  .doc = "backlog messages sent per second after reconnecting; 0: as "
	      "fast as flow control allows" },
	{ KEY("fsync", CFG_T_ENUM, fsync), .values = fsync_values,
	  .dflt = "interval",
	  .doc = "when appended messages are flushed to disk" },
	{ KEY("fsync_interval", CFG_T_DURATION, fsync_interval_ms),
	  .min = 1, .max = MIN, .dflt = "100ms",
	  .doc = "fsync interval: the longest a message waits for its flush" },
	{ KEY("segment_size", CFG_T_SIZE, segment_size),
	  .min = 64 * KIB, .max = GIB, .dflt = "4MiB",
	  .doc = "size of one queue file" },
};
#undef S
SECTION(queue_section, queue_keys, struct cfg_queue, cfg_check_queue);

/* --- bridge, log, control, metrics --------------------------------------- */

static const char *const direction_values[] = { "out", "in", "both", NULL };
static const char *const ack_values[] = { "stored", "delivered", NULL };

#define S struct cfg_bridge_rule
static const struct cfg_keydef bridge_keys[] = {
	{ KEY("topic", CFG_T_FILTER, topic), .flags = CFG_K_REQUIRED,
	  .doc = "topic filter, below the prefixes on either side" },
	{ KEY("direction", CFG_T_ENUM, direction), .flags = CFG_K_REQUIRED,
	  .values = direction_values,
	  .doc = "out: LAN to AWS; in: AWS to LAN; both" },
	{ KEY("qos", CFG_T_INT, qos), .min = 0, .max = 2, .dflt = "1",
	  .doc = "highest QoS forwarded (AWS takes 2 as 1)" },
	{ KEY("local_prefix", CFG_T_PREFIX, local_prefix), .dflt = "",
	  .doc = "prepended to topic on the LAN side" },
	{ KEY("remote_prefix", CFG_T_PREFIX, remote_prefix), .dflt = "",
	  .doc = "prepended to topic on the AWS side" },
	{ KEY("ack", CFG_T_ENUM, ack), .values = ack_values, .dflt = "stored",
	  .doc = "acknowledge a QoS 1 message to its sender once the bridge "
	      "has it, or once the other side acknowledged it" },
};
#undef S
SECTION(bridge_section, bridge_keys, struct cfg_bridge_rule,
    cfg_check_bridge);

static const char *const level_values[] = {
	"error", "warning", "notice", "info", "debug", NULL
};

#define S struct cfg_log
static const struct cfg_keydef log_keys[] = {
	{ KEY("level", CFG_T_ENUM, level), .values = level_values,
	  .dflt = "info", .doc = "least important messages logged" },
};
#undef S
SECTION(log_section, log_keys, struct cfg_log, NULL);

#define S struct cfg_control
static const struct cfg_keydef control_keys[] = {
	{ KEY("socket", CFG_T_PATH, socket), .max = CFG_UNIX_PATH_MAX,
	  .dflt = "/run/iotbridge/control.sock",
	  .doc = "unix socket for iotbridgectl" },
};
#undef S
SECTION(control_section, control_keys, struct cfg_control, NULL);

#define S struct cfg_metrics
static const struct cfg_keydef metrics_keys[] = {
	{ KEY("listen", CFG_T_ADDR, listen), .special = "off", .dflt = "",
	  .doc = "address of the Prometheus endpoint, e.g. 127.0.0.1:9469" },
};
#undef S
SECTION(metrics_section, metrics_keys, struct cfg_metrics, NULL);

/* --- the root ------------------------------------------------------------- */

#define S struct cfg
static const struct cfg_keydef root_keys[] = {
	{ KEY("listeners", CFG_T_LIST, listeners),
	  .off2 = offsetof(S, nlisteners), .min = 1, .max = 64,
	  .sub = &listener_section, .dflt = "127.0.0.1:1883",
	  .doc = "MQTT listeners for the LAN" },
	{ KEY("broker", CFG_T_SECTION, broker), .sub = &broker_section,
	  .doc = "the local broker" },
	{ KEY("limits", CFG_T_SECTION, limits), .sub = &limits_section,
	  .doc = "limits on LAN clients" },
	{ KEY("aws", CFG_T_SECTION, aws), .flags = CFG_K_PRESENCE,
	  .off2 = offsetof(S, aws.present), .sub = &aws_section,
	  .doc = "the uplink; absent: local broker only" },
	{ KEY("reconnect", CFG_T_SECTION, reconnect),
	  .sub = &reconnect_section, .doc = "reconnect backoff towards AWS" },
	{ KEY("queue", CFG_T_SECTION, queue), .sub = &queue_section,
	  .doc = "the store-and-forward queue" },
	{ KEY("bridge", CFG_T_LIST, bridge), .off2 = offsetof(S, nbridge),
	  .min = 0, .max = 1024, .sub = &bridge_section,
	  .doc = "rules: which topics go between the LAN and AWS" },
	{ KEY("log", CFG_T_SECTION, log), .sub = &log_section, .doc = "logging" },
	{ KEY("control", CFG_T_SECTION, control), .sub = &control_section,
	  .doc = "control socket" },
	{ KEY("metrics", CFG_T_SECTION, metrics), .sub = &metrics_section,
	  .doc = "Prometheus metrics" },
};
#undef S
const struct cfg_section cfg_root = {
	root_keys, NKEYS(root_keys), sizeof(struct cfg), cfg_check_root
};

/* --- walks over the tables ------------------------------------------------ */

const struct cfg_keydef *
cfg_section_key(const struct cfg_section *sec, const char *name, size_t len)
{
	for (size_t i = 0; i < sec->nkeys; i++)
		if (strlen(sec->keys[i].name) == len &&
		    memcmp(sec->keys[i].name, name, len) == 0)
			return &sec->keys[i];
	return NULL;
}

enum cfg_status
cfg_section_defaults(const struct cfg_section *sec, void *obj)
{
	char err[CFG_ERR_MAX];
	enum cfg_status st;

	assert(sec->nkeys <= CFG_SECTION_MAX_KEYS);
	for (size_t i = 0; i < sec->nkeys; i++) {
		const struct cfg_keydef *kd = &sec->keys[i];
		char *field = (char *)obj + kd->off;

		if (kd->type == CFG_T_SECTION) {
			st = cfg_section_defaults(kd->sub, field);
		} else if (kd->type == CFG_T_LIST) {
			void *item;

			if (kd->dflt == NULL)
				continue;
			if ((item = calloc(1, kd->sub->size)) == NULL)
				return CFG_NOMEM;
			memcpy(field, &item, sizeof(item));
			*(size_t *)((char *)obj + kd->off2) = 1;
			if ((st = cfg_section_defaults(kd->sub, item)) == CFG_OK)
				st = cfg_value_set(&kd->sub->keys[0], item,
				    kd->dflt, err, sizeof(err));
		} else if (kd->dflt != NULL) {
			st = cfg_value_set(kd, obj, kd->dflt, err, sizeof(err));
		} else {
			continue;
		}
		/* The unit tests prove every default parses. */
		assert(st != CFG_INVALID);
		if (st != CFG_OK)
			return st;
	}
	return CFG_OK;
}

static void
free_string(char **p, bool secret)
{
	if (*p == NULL)
		return;
	if (secret)
		mbedtls_platform_zeroize(*p, strlen(*p));
	free(*p);
	*p = NULL;
}

void
cfg_key_clear(const struct cfg_keydef *kd, void *obj)
{
	char *field = (char *)obj + kd->off;
	size_t *count;
	char *items;

	switch (kd->type) {
	case CFG_T_STRING:
	case CFG_T_PATH:
	case CFG_T_FILTER:
	case CFG_T_PREFIX:
	case CFG_T_REGION:
		free_string((char **)(void *)field, kd->flags & CFG_K_SECRET);
		break;
	case CFG_T_ENDPOINT:
	case CFG_T_URL:
		free_string(&((struct cfg_hostport *)(void *)field)->host,
		    false);
		break;
	case CFG_T_SECTION:
		cfg_section_clear(kd->sub, field);
		break;
	case CFG_T_LIST:
		memcpy(&items, field, sizeof(items));
		count = (size_t *)(void *)((char *)obj + kd->off2);
		for (size_t j = 0; items != NULL && j < *count; j++)
			cfg_section_clear(kd->sub, items + j * kd->sub->size);
		free(items);
		items = NULL;
		memcpy(field, &items, sizeof(items));
		*count = 0;
		break;
	default:
		break;
	}
}

void
cfg_section_clear(const struct cfg_section *sec, void *obj)
{
	for (size_t i = 0; i < sec->nkeys; i++)
		cfg_key_clear(&sec->keys[i], obj);
}

/* Append ".name" (or "name" at the start) to path; false when it is full. */
static bool
path_add(char *path, size_t cap, size_t len, const char *name,
    const char *suffix)
{
	int n = snprintf(path + len, cap - len, "%s%s%s", len ? "." : "",
	    name, suffix);

	return n >= 0 && (size_t)n < cap - len;
}

static void
keys_walk(const struct cfg_section *sec, char *path, size_t cap,
    cfg_key_fn fn, void *arg)
{
	size_t len = strlen(path);
	char dflt[128];

	for (size_t i = 0; i < sec->nkeys; i++) {
		const struct cfg_keydef *kd = &sec->keys[i];
		struct cfg_key key = {
			.path = path, .type = cfg_type_name(kd),
			.dflt = kd->dflt, .values = kd->values, .doc = kd->doc,
			.required = kd->flags & CFG_K_REQUIRED,
			.secret = kd->flags & CFG_K_SECRET,
		};

		if (kd->type == CFG_T_SECTION) {
			if (path_add(path, cap, len, kd->name, ""))
				keys_walk(kd->sub, path, cap, fn, arg);
			path[len] = '\0';
			continue;
		}
		if (kd->type == CFG_T_LIST) {
			if (kd->dflt != NULL)
				snprintf(dflt, sizeof(dflt), "[{%s: %s}]",
				    kd->sub->keys[0].name, kd->dflt);
			else
				snprintf(dflt, sizeof(dflt), "[]");
			key.dflt = dflt;
		}
		if (path_add(path, cap, len, kd->name, ""))
			fn(&key, NULL, arg);
		path[len] = '\0';
		if (kd->type == CFG_T_LIST) {
			if (path_add(path, cap, len, kd->name, "[]"))
				keys_walk(kd->sub, path, cap, fn, arg);
			path[len] = '\0';
		}
	}
}

void
cfg_keys(cfg_key_fn fn, void *arg)
{
	char path[CFG_PATH_MAX] = "";

	keys_walk(&cfg_root, path, sizeof(path), fn, arg);
}

struct find {
	const char	*name;
	size_t		 len;
	char		*buf;
	size_t		 cap;
	bool		 found;
	bool		 in_list;	/* found only inside a list item so far */
};

static void
find_fn(const struct cfg_key *key, const char *value, void *arg)
{
	struct find *f = arg;
	const char *leaf = strrchr(key->path, '.');

	leaf = leaf ? leaf + 1 : key->path;
	if ((f->found && !f->in_list) || strlen(leaf) != f->len ||
	    memcmp(leaf, f->name, f->len) != 0)
		return;
	/* limits.max_connections reads better than listeners[].max_... */
	if (f->found && strchr(key->path, '[') != NULL)
		return;
	snprintf(f->buf, f->cap, "%s", key->path);
	f->found = true;
	f->in_list = strchr(key->path, '[') != NULL;
}

bool
cfg_schema_find(const char *name, size_t len, char *buf, size_t cap)
{
	struct find f = { name, len, buf, cap, false, false };

	cfg_keys(find_fn, &f);
	return f.found;
}
