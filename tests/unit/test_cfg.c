/*
 * lib/config: the golden broken configs of tests/data/conf (NAME.yaml against
 * the exact lines of NAME.err), values of every type, defaults, the round trip
 * through cfg_describe(), secrets kept out of messages; the drop-ins of
 * conf.d: merge rules, each error in its own file, name order, ignored names,
 * limits, unreadable and odd files, where each value came from (the goldens
 * of tests/data/conf/merge); and two documents that must agree with the
 * schema tables: conf/iotbridge.reference.yaml (its defaults are the code's,
 * and every key is in it) and docs/configuration.md (every key is documented
 * with its type and default, and nothing else is).
 */
#define _XOPEN_SOURCE 700	/* nftw() */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "config/cfg.h"

#define GOLDEN_DIR	IOTB_TEST_DATA "/conf"
#define MERGE_DIR	GOLDEN_DIR "/merge"
#define SHIPPED		IOTB_SOURCE_ROOT "/conf/iotbridge.yaml"
#define REFERENCE	IOTB_SOURCE_ROOT "/conf/iotbridge.reference.yaml"
#define DOCS		IOTB_SOURCE_ROOT "/docs/configuration.md"

/* --- helpers -------------------------------------------------------------- */

static char *
slurp(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (f == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	do {
		if (len + 4096 + 1 > cap) {
			cap = (len + 4096 + 1) * 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

static void
print_diag(const struct cfg_diag *d)
{
	for (size_t i = 0; i < d->count; i++)
		print_message("  %s\n", d->msgs[i]);
}

/* Load text that must be valid. */
static struct cfg *
load_ok(const char *text)
{
	struct cfg_diag d = { 0 };
	struct cfg *cfg;
	enum cfg_status st;

	st = cfg_load_mem("t.yaml", text, strlen(text), &cfg, &d);
	if (st != CFG_OK) {
		print_message("unexpected errors for:\n%s\n", text);
		print_diag(&d);
	}
	assert_int_equal(st, CFG_OK);
	assert_non_null(cfg);
	assert_int_equal(d.count, 0);
	return cfg;
}

/* Load text that must be refused with exactly the given message. */
static void
load_bad(const char *text, const char *want)
{
	struct cfg_diag d = { 0 };
	struct cfg *cfg;

	assert_int_equal(cfg_load_mem("t.yaml", text, strlen(text), &cfg, &d),
	    CFG_INVALID);
	assert_null(cfg);
	if (d.count != 1 || strcmp(d.msgs[0], want) != 0) {
		print_message("for:\n%s\nwanted:\n  %s\ngot:\n", text, want);
		print_diag(&d);
		fail();
	}
	cfg_diag_clear(&d);
}

static char *
describe(const struct cfg *cfg)
{
	char *s = cfg_describe(cfg);

	assert_non_null(s);
	return s;
}

/* a and b are the same configuration: they describe the same. */
static void
assert_same_config(const struct cfg *a, const struct cfg *b)
{
	char *x = describe(a), *y = describe(b);

	assert_string_equal(x, y);
	free(x);
	free(y);
}

/* The messages of d are exactly the lines of want, in order. */
static void
assert_lines(const struct cfg_diag *d, const char *want, const char *what)
{
	char *lines = strdup(want), *line, *save;
	size_t k = 0;
	bool same = true;

	assert_non_null(lines);
	for (line = strtok_r(lines, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save), k++)
		same &= k < d->count && strcmp(line, d->msgs[k]) == 0;
	free(lines);
	if (!same || k != d->count) {
		print_message("%s: wanted:\n%s\ngot:\n", what, want);
		print_diag(d);
		fail();
	}
}

/* --- defaults and values -------------------------------------------------- */

static void
test_defaults(void **state)
{
	struct cfg *cfg;
	uint8_t lo[4] = { 127, 0, 0, 1 };

	assert_int_equal(cfg_defaults(&cfg), CFG_OK);
	assert_int_equal(cfg->nlisteners, 1);
	assert_int_equal(cfg->listeners[0].bind.family, AF_INET);
	assert_memory_equal(cfg->listeners[0].bind.ip, lo, 4);
	assert_int_equal(cfg->listeners[0].bind.port, 1883);
	assert_true(cfg->listeners[0].auth.anonymous);
	assert_null(cfg->listeners[0].tls.cert);
	assert_int_equal(cfg->listeners[0].max_connections, 0);
	assert_string_equal(cfg->broker.state_dir, "/var/lib/iotbridge");
	assert_int_equal(cfg->broker.sys_interval_ms, 10000);
	assert_true(cfg->broker.persistence);
	assert_int_equal(cfg->broker.max_sessions, 1000);
	assert_int_equal(cfg->broker.session_expiry_ms, 86400000);
	assert_int_equal(cfg->broker.slow_subscriber, CFG_SLOW_DROP_QOS0);
	assert_int_equal(cfg->limits.max_connections, 1024);
	assert_int_equal(cfg->limits.max_packet_size, 1 << 20);
	assert_int_equal(cfg->limits.max_inflight, 20);
	assert_int_equal(cfg->limits.max_queued_messages, 1000);
	assert_int_equal(cfg->limits.max_subscriptions, 100);
	assert_int_equal(cfg->limits.connect_timeout_ms, 10000);
	assert_int_equal(cfg->limits.max_client_buffer, 1 << 20);
	assert_false(cfg->aws.present);
	assert_null(cfg->aws.endpoint.host);
	assert_int_equal(cfg->reconnect.base_ms, 1000);
	assert_int_equal(cfg->reconnect.max_ms, 32000);
	assert_int_equal(cfg->reconnect.stable_ms, 20000);
	assert_true(cfg->reconnect.jitter);
	assert_string_equal(cfg->queue.dir, "/var/lib/iotbridge/queue");
	assert_int_equal(cfg->queue.max_messages, 100000);
	assert_int_equal(cfg->queue.max_bytes, 64 << 20);
	assert_int_equal(cfg->queue.drop, CFG_DROP_OLDEST);
	assert_int_equal(cfg->queue.drain_hz, 50);
	assert_int_equal(cfg->queue.fsync, CFG_FSYNC_INTERVAL);
	assert_int_equal(cfg->queue.fsync_interval_ms, 100);
	assert_int_equal(cfg->queue.segment_size, 4 << 20);
	assert_int_equal(cfg->nbridge, 0);
	assert_null(cfg->bridge);
	assert_int_equal(cfg->log.level, CFG_LOG_INFO);
	assert_string_equal(cfg->control.socket, "/run/iotbridge/control.sock");
	assert_int_equal(cfg->metrics.listen.family, AF_UNSPEC);
	cfg_free(cfg);
	cfg_free(NULL);
}

/* Files with nothing in them are the defaults, and so are empty sections. */
static void
test_empty_files(void **state)
{
	static const char *const empty[] = {
		"", "\n", "# only a comment\n", "---\n", "~\n", "---\n...\n",
		"broker:\nlimits:\nqueue: {}\nbridge:\nlog: ~\n",
		"\xEF\xBB\xBFlog: {level: info}\n",	/* UTF-8 BOM */
	};
	struct cfg *dflt, *cfg;
	char *want, *got;

	assert_int_equal(cfg_defaults(&dflt), CFG_OK);
	want = describe(dflt);
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		cfg = load_ok(empty[i]);
		got = describe(cfg);
		assert_string_equal(got, want);
		free(got);
		cfg_free(cfg);
	}
	free(want);
	cfg_free(dflt);
}

static void
default_is_canonical(const struct cfg_key *key, const char *value, void *arg)
{
	int *n = arg;

	if (key->dflt == NULL)
		return;
	/* The default text is what describe writes for it: the docs and the
	 * shipped file can quote it as it is. */
	assert_non_null(value);
	if (strcmp(value, key->dflt) != 0)
		fail_msg("%s: default \"%s\" is shown as \"%s\"", key->path,
		    key->dflt, value);
	(*n)++;
}

static void
test_defaults_canonical(void **state)
{
	struct cfg *cfg;
	int n = 0;

	/* The aws section is walked only when present, bridge keys only in a
	 * rule: every key with a default is then visited once. */
	cfg = load_ok("aws: {endpoint: a.iot.eu-west-1.amazonaws.com, "
	    "client_id: x}\nbridge: [{topic: a, direction: out}]\n");
	cfg_walk(cfg, default_is_canonical, &n);
	assert_int_equal(n, 55);
	cfg_free(cfg);
}

static void
test_durations_sizes(void **state)
{
	static const struct {
		const char *text;
		uint64_t ms;
	} durations[] = {	/* as reconnect.max: 1s..1d */
		{ "20s", 20000 }, { "2m", 120000 }, { "1h", 3600000 },
		{ "1d", 86400000 }, { "90000ms", 90000 }, { "\"45s\"", 45000 },
	};
	static const struct {
		const char *text;
		uint64_t bytes;
	} sizes[] = {		/* as aws.limits.bandwidth: 1KiB..1GiB */
		{ "512KiB", 512 << 10 }, { "64MiB", 64 << 20 },
		{ "1GiB", 1 << 30 }, { "1048576B", 1 << 20 },
		{ "'2KiB'", 2048 },
	};
	char text[256];
	struct cfg *cfg;

	for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		snprintf(text, sizeof(text), "reconnect: {max: %s}\n",
		    durations[i].text);
		cfg = load_ok(text);
		assert_int_equal(cfg->reconnect.max_ms, durations[i].ms);
		cfg_free(cfg);
	}
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(text, sizeof(text), "aws: {endpoint: "
		    "a.iot.eu-west-1.amazonaws.com, client_id: x, "
		    "limits: {bandwidth: %s}}\n", sizes[i].text);
		cfg = load_ok(text);
		assert_int_equal(cfg->aws.limits.bandwidth, sizes[i].bytes);
		cfg_free(cfg);
	}
	cfg = load_ok("reconnect: {base: 500ms}\nlimits: {max_packet_size: 100B}\n"
	    "queue: {max_bytes: 1TiB}\n");
	assert_int_equal(cfg->reconnect.base_ms, 500);
	assert_int_equal(cfg->limits.max_packet_size, 100);
	assert_int_equal(cfg->queue.max_bytes, 1ULL << 40);
	cfg_free(cfg);
	/* A bare 0 needs no unit; 0 means off where the key says so. */
	cfg = load_ok("broker: {sys_interval: 0}\n"
	    "aws: {endpoint: a.iot.eu-west-1.amazonaws.com, client_id: x,"
	    " dead_letter: {max_bytes: 0}}\n");
	assert_int_equal(cfg->broker.sys_interval_ms, 0);
	assert_int_equal(cfg->aws.dead_letter.max_bytes, 0);
	cfg_free(cfg);
	load_bad("broker: {sys_interval: 0s5}\n", "t.yaml:1:24: "
	    "broker.sys_interval: \"0s5\" is not a duration (expected a "
	    "number and a unit: ms, s, m, h or d)");
	load_bad("queue: {max_bytes: 99999999999TiB}\n", "t.yaml:1:20: "
	    "queue.max_bytes: \"99999999999TiB\" is too large (expected "
	    "1MiB..1TiB)");
}

static void
test_values(void **state)
{
	struct cfg *cfg;
	uint8_t v6[16];

	cfg = load_ok(
	    "listeners:\n"
	    "  - bind: \"[::1]:1884\"\n"
	    "  - bind: unix:/run/iotbridge/mqtt.sock\n"
	    "    max_connections: 10\n"
	    "  - bind: 192.168.1.2:8883\n"
	    "    tls: {cert: /c.pem, key: /k.pem, client_ca: /ca.pem}\n"
	    "    auth: {anonymous: false, password_file: /p, acl_file: /a}\n"
	    "broker: {slow_subscriber: disconnect, persistence: false}\n"
	    "queue: {max_messages: -1, drop: newest, fsync: always}\n"
	    "log: {level: debug}\n"
	    "metrics: {listen: 127.0.0.1:9469}\n"
	    "reconnect: {jitter: false}\n"
	    "bridge:\n"
	    "  - {topic: \"sensors/#\", direction: out, remote_prefix: gw01/}\n"
	    "  - topic: cmd/+/set\n"
	    "    direction: both\n"
	    "    qos: 0\n"
	    "    local_prefix: site/\n"
	    "    ack: delivered\n");
	assert_int_equal(cfg->nlisteners, 3);
	assert_int_equal(inet_pton(AF_INET6, "::1", v6), 1);
	assert_int_equal(cfg->listeners[0].bind.family, AF_INET6);
	assert_memory_equal(cfg->listeners[0].bind.ip, v6, 16);
	assert_int_equal(cfg->listeners[0].bind.port, 1884);
	assert_int_equal(cfg->listeners[1].bind.family, AF_UNIX);
	assert_string_equal(cfg->listeners[1].bind.path,
	    "/run/iotbridge/mqtt.sock");
	assert_int_equal(cfg->listeners[1].max_connections, 10);
	assert_string_equal(cfg->listeners[2].tls.cert, "/c.pem");
	assert_string_equal(cfg->listeners[2].tls.key, "/k.pem");
	assert_string_equal(cfg->listeners[2].tls.client_ca, "/ca.pem");
	assert_false(cfg->listeners[2].auth.anonymous);
	assert_string_equal(cfg->listeners[2].auth.password_file, "/p");
	assert_string_equal(cfg->listeners[2].auth.acl_file, "/a");
	assert_int_equal(cfg->broker.slow_subscriber, CFG_SLOW_DISCONNECT);
	assert_false(cfg->broker.persistence);
	assert_int_equal(cfg->queue.max_messages, -1);
	assert_int_equal(cfg->queue.drop, CFG_DROP_NEWEST);
	assert_int_equal(cfg->queue.fsync, CFG_FSYNC_ALWAYS);
	assert_int_equal(cfg->log.level, CFG_LOG_DEBUG);
	assert_int_equal(cfg->metrics.listen.family, AF_INET);
	assert_int_equal(cfg->metrics.listen.port, 9469);
	assert_false(cfg->reconnect.jitter);
	assert_int_equal(cfg->nbridge, 2);
	assert_string_equal(cfg->bridge[0].topic, "sensors/#");
	assert_int_equal(cfg->bridge[0].direction, CFG_DIR_OUT);
	assert_int_equal(cfg->bridge[0].qos, 1);
	assert_string_equal(cfg->bridge[0].local_prefix, "");
	assert_string_equal(cfg->bridge[0].remote_prefix, "gw01/");
	assert_int_equal(cfg->bridge[0].ack, CFG_ACK_STORED);
	assert_string_equal(cfg->bridge[1].topic, "cmd/+/set");
	assert_int_equal(cfg->bridge[1].direction, CFG_DIR_BOTH);
	assert_int_equal(cfg->bridge[1].qos, 0);
	assert_string_equal(cfg->bridge[1].local_prefix, "site/");
	assert_int_equal(cfg->bridge[1].ack, CFG_ACK_DELIVERED);
	cfg_free(cfg);
}

static void
test_aws(void **state)
{
	struct cfg *cfg;

	cfg = load_ok(
	    "aws:\n"
	    "  endpoint: abcdefgh-ats.iot.eu-west-1.amazonaws.com\n"
	    "  client_id: gateway-01\n");
	assert_true(cfg->aws.present);
	assert_string_equal(cfg->aws.endpoint.host,
	    "abcdefgh-ats.iot.eu-west-1.amazonaws.com");
	assert_int_equal(cfg->aws.endpoint.port, 443);
	assert_string_equal(cfg->aws.region, "eu-west-1");
	assert_string_equal(cfg->aws.client_id, "gateway-01");
	assert_string_equal(cfg->aws.ca_file,
	    "/etc/ssl/certs/ca-certificates.crt");
	assert_int_equal(cfg->aws.credentials.source, CFG_CRED_ENV);
	assert_string_equal(cfg->aws.credentials.profile, "default");
	assert_int_equal(cfg->aws.keepalive_ms, 30000);
	assert_int_equal(cfg->aws.max_connection_age_ms, 23 * 3600000);
	assert_null(cfg->aws.proxy.url.host);
	assert_int_equal(cfg->aws.limits.publish_rate, 100);
	assert_int_equal(cfg->aws.limits.bandwidth, 512 << 10);
	assert_int_equal(cfg->aws.limits.max_payload, 128 << 10);
	assert_int_equal(cfg->aws.limits.max_topic_length, 256);
	assert_int_equal(cfg->aws.limits.max_topic_slashes, 7);
	assert_int_equal(cfg->aws.limits.max_subscriptions, 50);
	assert_int_equal(cfg->aws.limits.filters_per_subscribe, 8);
	assert_int_equal(cfg->aws.limits.max_inflight, 100);
	cfg_free(cfg);

	/* China and FIPS endpoints name their region too; an explicit one
	 * that agrees is fine; a port and a non-AWS host with a region. */
	cfg = load_ok("aws: {endpoint: \"x.iot.cn-north-1.amazonaws.com.cn\","
	    " client_id: a, region: cn-north-1}\n");
	assert_string_equal(cfg->aws.region, "cn-north-1");
	cfg_free(cfg);
	cfg = load_ok("aws: {endpoint: data.iot-fips.us-east-1.amazonaws.com,"
	    " client_id: a}\n");
	assert_string_equal(cfg->aws.region, "us-east-1");
	cfg_free(cfg);
	cfg = load_ok("aws: {endpoint: \"localhost:8443\", region: eu-west-1,"
	    " client_id: a}\n");
	assert_string_equal(cfg->aws.endpoint.host, "localhost");
	assert_int_equal(cfg->aws.endpoint.port, 8443);
	cfg_free(cfg);
	cfg = load_ok("aws: {endpoint: \"[::1]:8443\", region: eu-west-1,"
	    " client_id: a}\n");
	assert_string_equal(cfg->aws.endpoint.host, "::1");
	assert_int_equal(cfg->aws.endpoint.port, 8443);
	cfg_free(cfg);

	cfg = load_ok(
	    "aws:\n"
	    "  endpoint: a.iot.eu-west-1.amazonaws.com\n"
	    "  client_id: \"g\\u00e4teway\"\n"
	    "  credentials:\n"
	    "    source: static\n"
	    "    access_key_id: AKIDEXAMPLE\n"
	    "    secret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n"
	    "    session_token: FwoGZXIvYXdzEXAMPLE\n"
	    "  proxy: {url: \"http://proxy.example:3128/\", username: u,"
	    " password: p4ss}\n");
	assert_string_equal(cfg->aws.client_id, "g\xC3\xA4teway");
	assert_int_equal(cfg->aws.credentials.source, CFG_CRED_STATIC);
	assert_string_equal(cfg->aws.credentials.access_key_id, "AKIDEXAMPLE");
	assert_string_equal(cfg->aws.credentials.secret_access_key,
	    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
	assert_string_equal(cfg->aws.credentials.session_token,
	    "FwoGZXIvYXdzEXAMPLE");
	assert_string_equal(cfg->aws.proxy.url.host, "proxy.example");
	assert_int_equal(cfg->aws.proxy.url.port, 3128);
	assert_string_equal(cfg->aws.proxy.username, "u");
	assert_string_equal(cfg->aws.proxy.password, "p4ss");
	cfg_free(cfg);

	cfg = load_ok("aws: {endpoint: a.iot.eu-west-1.amazonaws.com,"
	    " client_id: a, credentials: {source: profile, file: /f,"
	    " profile: gw}}\n");
	assert_int_equal(cfg->aws.credentials.source, CFG_CRED_PROFILE);
	assert_string_equal(cfg->aws.credentials.file, "/f");
	assert_string_equal(cfg->aws.credentials.profile, "gw");
	cfg_free(cfg);
}

/* The device certificate, the transports and the credentials provider. */
static void
test_aws_x509(void **state)
{
	struct cfg *cfg;

	/* no certificate: SigV4 over wss, as before there were others */
	cfg = load_ok("aws: {endpoint: a.iot.eu-west-1.amazonaws.com,"
	    " client_id: a}\n");
	assert_int_equal(cfg->aws.transport, CFG_TRANSPORT_WSS);
	assert_null(cfg->aws.cert_file);
	assert_null(cfg->aws.key_file);
	assert_int_equal(cfg->aws.mqtts_port, 8883);
	cfg_free(cfg);

	/* a certificate and no SigV4 credentials named: auto */
	cfg = load_ok("aws: {endpoint: a.iot.eu-west-1.amazonaws.com,"
	    " client_id: a, cert_file: /c, key_file: /k}\n");
	assert_int_equal(cfg->aws.transport, CFG_TRANSPORT_AUTO);
	assert_string_equal(cfg->aws.cert_file, "/c");
	assert_string_equal(cfg->aws.key_file, "/k");
	cfg_free(cfg);

	/* ... and a credentials section of another source keeps wss */
	cfg = load_ok("aws: {endpoint: a.iot.eu-west-1.amazonaws.com,"
	    " client_id: a, cert_file: /c, key_file: /k,"
	    " credentials: {source: profile}}\n");
	assert_int_equal(cfg->aws.transport, CFG_TRANSPORT_WSS);
	cfg_free(cfg);

	/* the credentials provider: auto, its three keys */
	cfg = load_ok("aws:\n"
	    "  endpoint: a.iot.eu-west-1.amazonaws.com\n"
	    "  client_id: gw-01\n"
	    "  cert_file: /etc/iotbridge/device.crt\n"
	    "  key_file: /etc/iotbridge/device.key\n"
	    "  credentials:\n"
	    "    source: iot\n"
	    "    endpoint: c2abcdefgh.credentials.iot.eu-west-1.amazonaws.com\n"
	    "    role_alias: iotbridge-role-alias\n"
	    "    thing_name: gw-01\n");
	assert_int_equal(cfg->aws.transport, CFG_TRANSPORT_AUTO);
	assert_int_equal(cfg->aws.credentials.source, CFG_CRED_IOT);
	assert_string_equal(cfg->aws.credentials.endpoint.host,
	    "c2abcdefgh.credentials.iot.eu-west-1.amazonaws.com");
	assert_int_equal(cfg->aws.credentials.endpoint.port, 443);
	assert_string_equal(cfg->aws.credentials.role_alias,
	    "iotbridge-role-alias");
	assert_string_equal(cfg->aws.credentials.thing_name, "gw-01");
	cfg_free(cfg);

	/* each transport by name; mqtts needs no region */
	cfg = load_ok("aws: {endpoint: \"localhost:8443\", client_id: a,"
	    " transport: mqtts, mqtts_port: 9883, cert_file: /c,"
	    " key_file: /k}\n");
	assert_int_equal(cfg->aws.transport, CFG_TRANSPORT_MQTTS);
	assert_int_equal(cfg->aws.mqtts_port, 9883);
	assert_null(cfg->aws.region);
	cfg_free(cfg);
	cfg = load_ok("aws: {endpoint: a.iot.eu-west-1.amazonaws.com,"
	    " client_id: a, transport: mqtts-alpn, cert_file: /c,"
	    " key_file: /k}\n");
	assert_int_equal(cfg->aws.transport, CFG_TRANSPORT_MQTTS_ALPN);
	cfg_free(cfg);
	cfg = load_ok("aws: {endpoint: a.iot.eu-west-1.amazonaws.com,"
	    " client_id: a, transport: wss, cert_file: /c, key_file: /k}\n");
	assert_int_equal(cfg->aws.transport, CFG_TRANSPORT_WSS);
	cfg_free(cfg);
	cfg = load_ok("aws: {endpoint: a.iot.eu-west-1.amazonaws.com,"
	    " client_id: a, transport: auto, cert_file: /c, key_file: /k,"
	    " credentials: {source: env}}\n");
	assert_int_equal(cfg->aws.transport, CFG_TRANSPORT_AUTO);
	cfg_free(cfg);

	load_bad("aws: {endpoint: a.iot.eu-west-1.amazonaws.com, client_id: a,"
	    " transport: mqtts}\n",
	    "t.yaml:1:6: aws.cert_file: missing (required with transport: "
	    "mqtts)");
	load_bad("aws: {endpoint: a.iot.eu-west-1.amazonaws.com, client_id: a,"
	    " transport: tls}\n",
	    "t.yaml:1:73: aws.transport: \"tls\" is not valid (expected "
	    "mqtts, mqtts-alpn, wss or auto)");
	load_bad("aws: {endpoint: a.iot.eu-west-1.amazonaws.com, client_id: a,"
	    " key_file: /k}\n",
	    "t.yaml:1:6: aws.cert_file: missing (required with key_file)");
	load_bad("aws: {endpoint: a.iot.eu-west-1.amazonaws.com, client_id: a,"
	    " cert_file: /c}\n",
	    "t.yaml:1:6: aws.key_file: missing (required with cert_file)");
	load_bad("aws: {endpoint: a.iot.eu-west-1.amazonaws.com, client_id: a,"
	    " transport: wss, credentials: {source: iot, endpoint: c.example,"
	    " role_alias: r, thing_name: t}}\n",
	    "t.yaml:1:6: aws.cert_file: missing (required with "
	    "credentials.source: iot)");
}

/* Single refusals the goldens do not show. */
static void
test_refusals(void **state)
{
	load_bad("listeners: [{bind: \"[::]:1883\"}, {bind: \"[::1]:1883\"}]\n",
	    "t.yaml:1:41: listeners[1].bind: [::1]:1883 overlaps "
	    "listeners[0].bind [::]:1883 (expected another port: a wildcard "
	    "address takes the port on every address)");
	load_bad("listeners: [{bind: unix:/a}, {bind: \"unix:/a\"}]\n",
	    "t.yaml:1:37: listeners[1].bind: unix:/a is already "
	    "listeners[0].bind (expected each address once)");
	load_bad("metrics: {listen: \"\"}\nlisteners: [{bind: \"\"}]\n",
	    "t.yaml:2:20: listeners[0].bind: \"\" has no port (expected an "
	    "address such as 127.0.0.1:1883, [::1]:1883 or unix:/PATH)");
	load_bad("queue: {dir: var/queue}\n",
	    "t.yaml:1:14: queue.dir: \"var/queue\" is not an absolute path "
	    "(expected a path starting with /)");
	load_bad("aws: {endpoint: \"a b\", client_id: x}\n",
	    "t.yaml:1:17: aws.endpoint: \"a b\": not a valid host name "
	    "(expected a host name such as "
	    "xxx-ats.iot.eu-west-1.amazonaws.com)");
	load_bad("aws: {endpoint: a.iot.eu-west-1.amazonaws.com, client_id: \"\"}\n",
	    "t.yaml:1:59: aws.client_id: empty string (expected at least 1 "
	    "byte)");
	load_bad("aws: {endpoint: a.iot.eu-west-1.amazonaws.com, client_id: x,"
	    " proxy: {url: \"https://p:1\"}}\n",
	    "t.yaml:1:75: aws.proxy.url: not an http:// URL (expected "
	    "http://HOST:PORT; the tunnel through the proxy is TLS)");
	load_bad("aws: {endpoint: a.iot.eu-west-1.amazonaws.com, client_id: x,"
	    " proxy: {url: \"http://p\"}}\n",
	    "t.yaml:1:75: aws.proxy.url: \"http://p\" has no port (expected "
	    "HOST:PORT, port 1..65535)");
	load_bad("aws: {endpoint: a.iot.eu-west-1.amazonaws.com, client_id: x,"
	    " region: EU}\n",
	    "t.yaml:1:70: aws.region: \"EU\" is not an AWS region (expected a "
	    "name such as eu-west-1)");
	load_bad("aws: {endpoint: a.iot.eu-west-1.amazonaws.com, client_id: x,"
	    " credentials: {source: static, access_key_id: k,"
	    " secret_access_key: \"s\\x01\"}}\n",
	    "t.yaml:1:129: aws.credentials.secret_access_key: control "
	    "character at byte 2 (expected printable text; value hidden)");
	load_bad("bridge: [{topic: \"\", direction: in}]\n",
	    "t.yaml:1:18: bridge[0].topic: \"\" is not a valid topic filter: "
	    "empty (expected a filter such as sensors/# or sensors/+/temp)");
	load_bad("queue: {\"dr\\u00f6p\": oldest}\n",
	    "t.yaml:1:9: queue.\"dr\xC3\xB6p\": unknown key (did you mean "
	    "drop?)");
	load_bad("? [a, b]\n: c\n",
	    "t.yaml:1:3: document: a list as a key (expected a key name)");
	load_bad("hello\n",
	    "t.yaml:1:1: document: got a single value (expected a mapping)");
	load_bad("queue: &q {drop: oldest}\n",
	    "t.yaml:1:8: queue: anchor &q (expected no anchor: anchors and "
	    "aliases are not supported)");
	load_bad("log:\n  level: info\n  bad\n",
	    "t.yaml:4:1: yaml: could not find expected ':' (while scanning a "
	    "simple key at 3:3)");
}

/* --- goldens -------------------------------------------------------------- */

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Each tests/data/conf/NAME.yaml must fail with exactly the lines of
 * NAME.err. Loaded as "NAME.yaml" from inside the directory: the FILE part
 * is the path as given, as with iotbridged --check-config -c NAME.yaml. */
static void
test_goldens(void **state)
{
	char *names[256], errname[300], *want;
	size_t n = 0, nerr = 0;
	struct dirent *de;
	DIR *dir;
	char cwd[4096];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(GOLDEN_DIR), 0);
	assert_non_null(dir = opendir("."));
	while ((de = readdir(dir)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len > 4 && strcmp(de->d_name + len - 4, ".err") == 0)
			nerr++;
		if (len > 5 && strcmp(de->d_name + len - 5, ".yaml") == 0) {
			assert_true(n < 256);
			names[n++] = strdup(de->d_name);
		}
	}
	closedir(dir);
	qsort(names, n, sizeof(names[0]), name_cmp);
	assert_true(n >= 25);
	assert_int_equal(nerr, n);	/* and below: each .yaml has its .err */

	for (size_t i = 0; i < n; i++) {
		struct cfg_diag d = { 0 };
		struct cfg *cfg;
		enum cfg_status st;

		snprintf(errname, sizeof(errname), "%.*s.err",
		    (int)(strlen(names[i]) - 5), names[i]);
		want = slurp(errname, NULL);
		st = cfg_load_file(names[i], &cfg, &d);
		assert_null(cfg);
		if (st != CFG_INVALID)
			fail_msg("%s: status %s", names[i], cfg_strerror(st));
		assert_lines(&d, want, names[i]);
		free(want);
		cfg_diag_clear(&d);
		free(names[i]);
	}
	assert_int_equal(chdir(cwd), 0);
}

/* --- secrets -------------------------------------------------------------- */

static void
no_secret_in_value(const struct cfg_key *key, const char *value, void *arg)
{
	if (key->secret && value != NULL)
		assert_string_equal(value, "(set)");
}

static void
test_secrets(void **state)
{
	/* Goldens that hold secrets: no message may show them. */
	static const struct {
		const char *file, *secret;
	} goldens[] = {
		{ "static_without_secret.yaml", "AKIAIOSFODNN7EXAMPLE" },
		{ "secret_with_env.yaml", "wJalrXUtnFEMI" },
		{ "proxy_userinfo.yaml", "hunter2" },
	};
	static const char text[] =
	    "aws:\n"
	    "  endpoint: a.iot.eu-west-1.amazonaws.com\n"
	    "  client_id: x\n"
	    "  credentials: {source: static, access_key_id: AKIDSECRET1,"
	    " secret_access_key: SECRETKEY2, session_token: SECRETTOKEN3}\n"
	    "  proxy: {url: \"http://p:1\", username: u, password: SECRETPW4}\n";
	static const char *const secrets[] = {
		"AKIDSECRET1", "SECRETKEY2", "SECRETTOKEN3", "SECRETPW4"
	};
	char path[4096], *s;
	struct cfg_diag d = { 0 };
	struct cfg *cfg, *again;

	for (size_t i = 0; i < sizeof(goldens) / sizeof(goldens[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR,
		    goldens[i].file);
		s = slurp(path, NULL);
		assert_non_null(strstr(s, goldens[i].secret));
		free(s);
		assert_int_equal(cfg_load_file(path, &cfg, &d), CFG_INVALID);
		assert_true(d.count > 0);
		for (size_t k = 0; k < d.count; k++)
			assert_null(strstr(d.msgs[k], goldens[i].secret));
		cfg_diag_clear(&d);
	}

	cfg = load_ok(text);
	s = describe(cfg);
	for (size_t i = 0; i < 4; i++)
		assert_null(strstr(s, secrets[i]));
	assert_non_null(strstr(s, "secret_access_key: \"(set)\""));
	assert_non_null(strstr(s, "password: \"(set)\""));
	cfg_walk(cfg, no_secret_in_value, NULL);
	/* What describe wrote loads back: the secrets are then "(set)". */
	again = load_ok(s);
	assert_string_equal(again->aws.credentials.secret_access_key, "(set)");
	free(s);
	cfg_free(again);
	cfg_free(cfg);
}

/* --- describe ------------------------------------------------------------- */

static void
test_describe_roundtrip(void **state)
{
	static const char *const texts[] = {
		"",
		("listeners: [{bind: \"[::]:1883\"}, {bind: \"unix:/run/a b.sock\","
		" tls: {cert: /c, key: /k}, auth: {anonymous: false,"
		" password_file: \"/etc/with \\\"quote\\\"\"}}]\n"
		"metrics: {listen: \"[::1]:9469\"}\n"),
		("aws: {endpoint: \"[::1]:8443\", region: eu-west-1,"
		" client_id: \"id with: colon\", proxy: {url: \"http://[::1]:3128\"}}\n"
		"bridge:\n"
		"  - {topic: \"#\", direction: both, local_prefix: \"a b/\","
		" remote_prefix: \"-x/\"}\n"
		"  - {topic: \"null\", direction: in, remote_prefix: \"~/\"}\n"),
		("queue: {max_messages: -1, max_bytes: 1025KiB, segment_size: 65537B}\n"
		"broker: {sys_interval: 0, session_expiry: 61s}\n"),
	};
	struct cfg *back[4];

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct cfg *cfg = load_ok(texts[i]), *again;
		char *first = describe(cfg), *second;

		again = load_ok(first);
		second = describe(again);
		assert_string_equal(first, second);
		free(first);
		free(second);
		cfg_free(cfg);
		back[i] = again;
	}
	/* What needed quoting came back as it was. */
	assert_string_equal(back[1]->listeners[1].bind.path, "/run/a b.sock");
	assert_string_equal(back[1]->listeners[1].auth.password_file,
	    "/etc/with \"quote\"");
	assert_int_equal(back[1]->metrics.listen.family, AF_INET6);
	assert_string_equal(back[2]->aws.endpoint.host, "::1");
	assert_int_equal(back[2]->aws.endpoint.port, 8443);
	assert_string_equal(back[2]->aws.client_id, "id with: colon");
	assert_string_equal(back[2]->aws.proxy.url.host, "::1");
	assert_string_equal(back[2]->bridge[0].local_prefix, "a b/");
	assert_string_equal(back[2]->bridge[0].remote_prefix, "-x/");
	assert_string_equal(back[2]->bridge[1].topic, "null");
	assert_string_equal(back[2]->bridge[1].remote_prefix, "~/");
	assert_int_equal(back[3]->queue.max_bytes, 1025 << 10);
	assert_int_equal(back[3]->queue.segment_size, 65537);
	assert_int_equal(back[3]->broker.session_expiry_ms, 61000);
	for (size_t i = 0; i < 4; i++)
		cfg_free(back[i]);
}

/* --- limits of the loader ------------------------------------------------- */

static void
test_many_errors(void **state)
{
	size_t cap = 200 * 16, len = 0;
	char *text = malloc(cap);
	struct cfg_diag d = { 0 };
	struct cfg *cfg;

	for (int i = 0; i < 150; i++)
		len += (size_t)snprintf(text + len, cap - len, "k%03d: 1\n", i);
	assert_int_equal(cfg_load_mem("m.yaml", text, len, &cfg, &d),
	    CFG_INVALID);
	assert_int_equal(d.count, CFG_MAX_ERRORS + 1);
	assert_string_equal(d.msgs[0], "m.yaml:1:1: k000: unknown key "
	    "(expected one of: listeners, broker, limits, aws, reconnect, "
	    "queue, bridge, log, control, metrics)");
	assert_string_equal(d.msgs[CFG_MAX_ERRORS],
	    "m.yaml: 50 more errors not shown");
	cfg_diag_clear(&d);
	free(text);
}

static void
test_file_errors(void **state)
{
	struct cfg_diag d = { 0 };
	struct cfg *cfg;
	char *big;

	assert_int_equal(cfg_load_file("/nonexistent/iotbridge.yaml", &cfg, &d),
	    CFG_IO);
	assert_null(cfg);
	assert_int_equal(d.count, 1);
	assert_string_equal(d.msgs[0], "/nonexistent/iotbridge.yaml: cannot "
	    "open (No such file or directory)");
	cfg_diag_clear(&d);

	assert_int_equal(cfg_load_file(GOLDEN_DIR, &cfg, &d), CFG_IO);
	assert_int_equal(d.count, 1);
	assert_string_equal(d.msgs[0], GOLDEN_DIR ": cannot read (Is a "
	    "directory)");
	cfg_diag_clear(&d);

	big = malloc(CFG_MAX_FILE + 1);
	memset(big, '#', CFG_MAX_FILE + 1);
	assert_int_equal(cfg_load_mem("big.yaml", big, CFG_MAX_FILE + 1, &cfg,
	    &d), CFG_IO);
	assert_string_equal(d.msgs[0], "big.yaml: file too large (expected at "
	    "most 1MiB)");
	cfg_diag_clear(&d);
	/* Exactly the limit is fine: one long comment. */
	assert_int_equal(cfg_load_mem("big.yaml", big, CFG_MAX_FILE, &cfg, &d),
	    CFG_OK);
	cfg_free(cfg);
	free(big);
}

/* --- drop-ins: merging ---------------------------------------------------- */

static const char *const src_names[] = {
	"main.yaml", "conf.d/1.yaml", "conf.d/2.yaml", "conf.d/3.yaml",
	"conf.d/4.yaml", "conf.d/5.yaml",
};

static enum cfg_status
merge(const char *const *texts, size_t n, unsigned flags, struct cfg **cfg,
    struct cfg_diag *d)
{
	struct cfg_source src[6];

	assert_true(n <= 6);
	for (size_t i = 0; i < n; i++)
		src[i] = (struct cfg_source){ src_names[i], texts[i],
		    strlen(texts[i]) };
	return cfg_load_sources(src, n, flags, cfg, d);
}

/* Merge texts, which must be valid. */
static struct cfg *
merge_ok(const char *const *texts, size_t n)
{
	struct cfg_diag d = { 0 };
	struct cfg *cfg;

	if (merge(texts, n, CFG_LOAD_ORIGINS, &cfg, &d) != CFG_OK) {
		print_diag(&d);
		fail();
	}
	assert_int_equal(cfg->nfiles, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(cfg->files[i], src_names[i]);
	return cfg;
}

/* Merge texts, which must be refused with exactly the lines of want. */
static void
merge_bad(const char *const *texts, size_t n, enum cfg_status st,
    const char *want)
{
	struct cfg_diag d = { 0 };
	struct cfg *cfg;

	assert_int_equal(merge(texts, n, 0, &cfg, &d), st);
	assert_null(cfg);
	assert_lines(&d, want, "merge");
	cfg_diag_clear(&d);
}

static void
test_merge_rules(void **state)
{
	static const char *const files[] = {
		("listeners: [{bind: 127.0.0.1:1883}, {bind: 127.0.0.1:1884}]\n"
		"queue: {drop: newest, max_bytes: 128MiB}\n"
		"bridge: [{topic: a, direction: out},"
		" {topic: b, direction: in}]\n"
		"log: {level: debug}\n"
		"reconnect:\n"),
		/* a list replaces, a value overrides, an empty section adds
		 * nothing */
		("listeners: [{bind: \"[::1]:1885\"}]\n"
		"queue: {max_bytes: 256MiB}\n"
		"log:\n"),
		/* a list can be emptied; an empty section can be filled */
		"bridge: []\nbroker: {max_sessions: 5}\nreconnect: {max: 1m}\n",
		"",
		"# only a comment\n",
	};
	/* The same, written as one file. */
	static const char one[] =
	    "listeners: [{bind: \"[::1]:1885\"}]\n"
	    "queue: {drop: newest, max_bytes: 256MiB}\n"
	    "broker: {max_sessions: 5}\n"
	    "log: {level: debug}\n"
	    "reconnect: {max: 1m}\n";
	static const char *const aws[] = {
		("aws:\n"
		"  endpoint: a.iot.eu-west-1.amazonaws.com\n"
		"  client_id: gw\n"
		"  credentials: {source: profile}\n"),
		("aws:\n"
		"  endpoint: b.iot.us-east-1.amazonaws.com\n"
		"  credentials: {profile: gw}\n"
		"  limits: {publish_rate: 10}\n"),
	};
	struct cfg *cfg, *single;

	cfg = merge_ok(files, 5);
	assert_int_equal(cfg->nlisteners, 1);
	assert_int_equal(cfg->listeners[0].bind.family, AF_INET6);
	assert_int_equal(cfg->listeners[0].bind.port, 1885);
	assert_int_equal(cfg->queue.drop, CFG_DROP_NEWEST);
	assert_int_equal(cfg->queue.max_bytes, 256 << 20);
	assert_int_equal(cfg->nbridge, 0);
	assert_null(cfg->bridge);
	assert_int_equal(cfg->log.level, CFG_LOG_DEBUG);
	assert_int_equal(cfg->broker.max_sessions, 5);
	assert_int_equal(cfg->reconnect.max_ms, 60000);
	single = load_ok(one);
	assert_same_config(cfg, single);
	cfg_free(single);
	cfg_free(cfg);

	/* Nested sections merge key by key; the region follows the merged
	 * endpoint, an aws section of a drop-in alone is an uplink. */
	cfg = merge_ok(aws, 2);
	assert_true(cfg->aws.present);
	assert_string_equal(cfg->aws.endpoint.host,
	    "b.iot.us-east-1.amazonaws.com");
	assert_string_equal(cfg->aws.region, "us-east-1");
	assert_string_equal(cfg->aws.client_id, "gw");
	assert_int_equal(cfg->aws.credentials.source, CFG_CRED_PROFILE);
	assert_string_equal(cfg->aws.credentials.profile, "gw");
	assert_int_equal(cfg->aws.limits.publish_rate, 10);
	cfg_free(cfg);
	cfg = merge_ok((const char *const []){ "log: {level: info}\n",
	    aws[0] }, 2);
	assert_true(cfg->aws.present);
	assert_string_equal(cfg->aws.region, "eu-west-1");
	cfg_free(cfg);
}

static void
test_merge_errors(void **state)
{
	/* Every file is checked alone: a value a later file overrides is
	 * still an error, in its own file; messages go by file, then line. */
	static const char *const overridden[] = {
		"log: {level: info}\n\n\nqueue: {drop: sideways}\n",
		"queue: {drop: oldest}\nlog: {level: loud}\n",
		"queue: 5\n",
		"queue: {drop: newest}\n",
	};
	/* The merged checks wait for every file to pass alone. */
	static const char *const waiting[] = {
		"aws: {endpoint: a.iot.eu-west-1.amazonaws.com}\n",
		"log: {level: loud}\n",
	};
	static const char *const merged[] = {
		("aws: {endpoint: a.iot.eu-west-1.amazonaws.com}\n"
		"reconnect: {max: 30s}\n"),
		"aws:\n  region: us-east-1\n",
		"reconnect: {base: 1m}\n",
	};

	merge_bad(overridden, 4, CFG_INVALID,
	    "main.yaml:4:15: queue.drop: \"sideways\" is not valid (expected "
	    "oldest or newest)\n"
	    "conf.d/1.yaml:2:14: log.level: \"loud\" is not valid (expected "
	    "error, warning, notice, info or debug)\n"
	    "conf.d/2.yaml:1:8: queue: got a single value (expected a "
	    "mapping)\n");
	merge_bad(waiting, 2, CFG_INVALID,
	    "conf.d/1.yaml:1:14: log.level: \"loud\" is not valid (expected "
	    "error, warning, notice, info or debug)\n");
	merge_bad(waiting, 1, CFG_INVALID,
	    "main.yaml:1:6: aws.client_id: missing (required in aws)\n");
	/* A check over keys of several files names the file of the key it
	 * reports on. */
	merge_bad(merged, 3, CFG_INVALID,
	    "main.yaml:1:6: aws.client_id: missing (required in aws)\n"
	    "conf.d/1.yaml:2:11: aws.region: us-east-1 differs from the "
	    "endpoint's eu-west-1 (expected eu-west-1, or no region)\n"
	    "conf.d/2.yaml:1:19: reconnect.base: 1m is more than "
	    "reconnect.max 30s (expected base <= max)\n");
}

static void
test_merge_limits(void **state)
{
	struct cfg_source src[CFG_MAX_DROPINS + 2];
	struct cfg_diag d = { 0 };
	struct cfg *cfg;
	char *big;

	for (size_t i = 0; i < CFG_MAX_DROPINS + 2; i++)
		src[i] = (struct cfg_source){ i ? "d.yaml" : "m.yaml",
		    "log: {level: info}\n", 19 };
	assert_int_equal(cfg_load_sources(src, CFG_MAX_DROPINS + 1, 0, &cfg,
	    &d), CFG_OK);
	assert_int_equal(cfg->nfiles, CFG_MAX_DROPINS + 1);
	cfg_free(cfg);
	assert_int_equal(cfg_load_sources(src, CFG_MAX_DROPINS + 2, 0, &cfg,
	    &d), CFG_IO);
	assert_null(cfg);
	assert_int_equal(d.count, 1);
	assert_string_equal(d.msgs[0], "m.yaml: 65 drop-in files (expected at "
	    "most 64)");
	cfg_diag_clear(&d);

	/* Four files at the limit of one are the limit of all; one byte
	 * more anywhere is too much. */
	big = malloc(CFG_MAX_FILE + 1);
	memset(big, '#', CFG_MAX_FILE + 1);
	for (size_t i = 0; i < 4; i++)
		src[i] = (struct cfg_source){ i ? "d.yaml" : "m.yaml", big,
		    CFG_MAX_FILE };
	assert_int_equal(cfg_load_sources(src, 4, 0, &cfg, &d), CFG_OK);
	cfg_free(cfg);
	src[4] = (struct cfg_source){ "e.yaml", "\n", 1 };
	assert_int_equal(cfg_load_sources(src, 5, 0, &cfg, &d), CFG_IO);
	assert_string_equal(d.msgs[0], "m.yaml: with its 4 drop-in files, more "
	    "than 4MiB (expected at most 4MiB together)");
	cfg_diag_clear(&d);
	src[1].len = CFG_MAX_FILE + 1;
	src[2] = (struct cfg_source){ "f.yaml", "log: {level: loud}\n", 19 };
	assert_int_equal(cfg_load_sources(src, 3, 0, &cfg, &d), CFG_IO);
	assert_int_equal(d.count, 2);
	assert_string_equal(d.msgs[0], "d.yaml: file too large (expected at "
	    "most 1MiB)");
	assert_string_equal(d.msgs[1], "f.yaml:1:14: log.level: \"loud\" is "
	    "not valid (expected error, warning, notice, info or debug)");
	cfg_diag_clear(&d);
	free(big);
}

/* --- drop-ins: files ----------------------------------------------------- */

static void
put(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

/* A scratch directory holding iotbridge.yaml and an empty conf.d. */
static char *
scratch(void)
{
	char *dir = strdup("/tmp/iotb-test-cfg-XXXXXX"), sub[4096];

	assert_non_null(mkdtemp(dir));
	put(dir, "iotbridge.yaml", "log: {level: info}\n");
	snprintf(sub, sizeof(sub), "%s/conf.d", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	return dir;
}

static void
scratch_free(char *dir)
{
	char sub[4096];

	/* What a test made unreadable can still be removed, but not read
	 * through: give the directory back its rights first. */
	snprintf(sub, sizeof(sub), "%s/conf.d", dir);
	(void)chmod(sub, 0755);
	assert_int_equal(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(dir);
}

/* Load dir/iotbridge.yaml with its drop-ins, run from dir so that the
 * messages name the files as the goldens do. */
static enum cfg_status
load_dir(const char *dir, unsigned flags, struct cfg **cfg,
    struct cfg_diag *d)
{
	char cwd[4096];
	enum cfg_status st;

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	st = cfg_load("iotbridge.yaml", CFG_LOAD_DROPINS | flags, cfg, d);
	assert_int_equal(chdir(cwd), 0);
	return st;
}

/* dir must be refused with exactly the one message want. */
static void
load_dir_bad(const char *dir, enum cfg_status st, const char *want)
{
	struct cfg_diag d = { 0 };
	struct cfg *cfg;

	assert_int_equal(load_dir(dir, 0, &cfg, &d), st);
	assert_null(cfg);
	if (d.count != 1 || strcmp(d.msgs[0], want) != 0) {
		print_message("wanted:\n  %s\ngot:\n", want);
		print_diag(&d);
		fail();
	}
	cfg_diag_clear(&d);
}

static int
dir_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int
not_dot(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

/*
 * Each directory NAME of tests/data/conf/merge holds an iotbridge.yaml and
 * its conf.d, and either check.err, the exact messages of the refusal, or
 * check-v.out, the exact output of iotbridged --check-config -v: the merged
 * configuration with where each value came from.
 */
static void
test_merge_goldens(void **state)
{
	struct dirent **names;
	char dir[4096], path[4200], *want, *got, *line;
	int n;

	n = scandir(MERGE_DIR, &names, not_dot, dir_cmp);
	assert_true(n >= 5);
	for (int i = 0; i < n; i++) {
		struct cfg_diag d = { 0 };
		struct cfg *cfg = NULL;
		enum cfg_status st;

		snprintf(dir, sizeof(dir), "%s/%s", MERGE_DIR,
		    names[i]->d_name);
		st = load_dir(dir, CFG_LOAD_ORIGINS, &cfg, &d);
		snprintf(path, sizeof(path), "%s/check.err", dir);
		if (access(path, F_OK) == 0) {
			want = slurp(path, NULL);
			if (st != CFG_INVALID)
				fail_msg("%s: %s", dir, cfg_strerror(st));
			assert_lines(&d, want, path);
			cfg_diag_clear(&d);
		} else {
			snprintf(path, sizeof(path), "%s/check-v.out", dir);
			want = slurp(path, NULL);
			if (st != CFG_OK) {
				print_diag(&d);
				fail_msg("%s: %s", dir, cfg_strerror(st));
			}
			got = cfg_describe_origins(cfg);
			assert_non_null(got);
			line = strchr(want, '\n');
			assert_non_null(line);
			assert_string_equal(line + 1, got);
			free(got);
			cfg_free(cfg);
		}
		free(want);
		free(names[i]);
	}
	free(names);
}

static void
test_dropin_dir(void **state)
{
	char buf[64];

	assert_true(cfg_dropin_dir("/etc/iotbridge/iotbridge.yaml", buf,
	    sizeof(buf)));
	assert_string_equal(buf, "/etc/iotbridge/conf.d");
	assert_true(cfg_dropin_dir("iotbridge.yaml", buf, sizeof(buf)));
	assert_string_equal(buf, "conf.d");
	assert_true(cfg_dropin_dir("a/b.yaml", buf, sizeof(buf)));
	assert_string_equal(buf, "a/conf.d");
	assert_true(cfg_dropin_dir("/x.yaml", buf, sizeof(buf)));
	assert_string_equal(buf, "/conf.d");
	assert_false(cfg_dropin_dir("/etc/iotbridge/iotbridge.yaml", buf, 21));
	assert_true(cfg_dropin_dir("/etc/iotbridge/iotbridge.yaml", buf, 22));
}

static void
test_dropin_files(void **state)
{
	char *dir = scratch(), sub[4096], path[4200];
	struct cfg_diag d = { 0 };
	struct cfg *cfg;

	/* An empty conf.d, a missing one, and drop-ins not asked for. */
	assert_int_equal(load_dir(dir, 0, &cfg, &d), CFG_OK);
	assert_int_equal(cfg->nfiles, 1);
	assert_string_equal(cfg->files[0], "iotbridge.yaml");
	cfg_free(cfg);
	snprintf(sub, sizeof(sub), "%s/conf.d", dir);
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(load_dir(dir, 0, &cfg, &d), CFG_OK);
	cfg_free(cfg);
	put(dir, "conf.d", "not a directory\n");
	load_dir_bad(dir, CFG_IO, "conf.d: cannot open (Not a directory)");
	assert_int_equal(unlink(sub), 0);
	assert_int_equal(mkdir(sub, 0755), 0);
	put(sub, "10-bad.yaml", "log: {level: loud}\n");
	snprintf(path, sizeof(path), "%s/iotbridge.yaml", dir);
	assert_int_equal(cfg_load(path, 0, &cfg, &d), CFG_OK);
	cfg_free(cfg);

	/* A symbolic link to a file is read under its own name. */
	snprintf(path, sizeof(path), "%s/elsewhere.yaml", dir);
	put(dir, "elsewhere.yaml", "log: {level: debug}\n");
	put(sub, "10-bad.yaml", "log: {level: warning}\n");
	snprintf(path, sizeof(path), "%s/20-link.yaml", sub);
	assert_int_equal(symlink("../elsewhere.yaml", path), 0);
	assert_int_equal(load_dir(dir, CFG_LOAD_ORIGINS, &cfg, &d), CFG_OK);
	assert_int_equal(cfg->log.level, CFG_LOG_DEBUG);
	assert_int_equal(cfg->nfiles, 3);
	assert_string_equal(cfg->files[2], "conf.d/20-link.yaml");
	cfg_free(cfg);

	/* What is not a regular file is refused before anything is read,
	 * every one of them named. */
	snprintf(path, sizeof(path), "%s/30-dir.yaml", sub);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/31-fifo.yaml", sub);
	assert_int_equal(mkfifo(path, 0644), 0);
	snprintf(path, sizeof(path), "%s/32-dangling.yaml", sub);
	assert_int_equal(symlink("nowhere.yaml", path), 0);
	assert_int_equal(load_dir(dir, 0, &cfg, &d), CFG_IO);
	assert_null(cfg);
	assert_int_equal(d.count, 3);
	assert_string_equal(d.msgs[0], "conf.d/30-dir.yaml: not a regular file "
	    "(expected a file, or a symbolic link to one)");
	assert_string_equal(d.msgs[1], "conf.d/31-fifo.yaml: not a regular "
	    "file (expected a file, or a symbolic link to one)");
	assert_string_equal(d.msgs[2], "conf.d/32-dangling.yaml: cannot open "
	    "(No such file or directory)");
	cfg_diag_clear(&d);
	snprintf(path, sizeof(path), "%s/30-dir.yaml", sub);
	assert_int_equal(rmdir(path), 0);
	snprintf(path, sizeof(path), "%s/31-fifo.yaml", sub);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/32-dangling.yaml", sub);
	assert_int_equal(unlink(path), 0);

	/* A file that cannot be read is named, and the others still checked:
	 * /proc/self/mem is a regular file whose first page is unmapped. */
	snprintf(path, sizeof(path), "%s/40-mem.yaml", sub);
	assert_int_equal(symlink("/proc/self/mem", path), 0);
	put(sub, "50-bad.yaml", "log: {level: loud}\n");
	assert_int_equal(load_dir(dir, 0, &cfg, &d), CFG_IO);
	assert_int_equal(d.count, 2);
	assert_string_equal(d.msgs[0], "conf.d/40-mem.yaml: cannot read "
	    "(Input/output error)");
	assert_string_equal(d.msgs[1], "conf.d/50-bad.yaml:1:14: log.level: "
	    "\"loud\" is not valid (expected error, warning, notice, info or "
	    "debug)");
	cfg_diag_clear(&d);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/50-bad.yaml", sub);
	assert_int_equal(unlink(path), 0);

	/* Permissions: only without root's rights to read anything. */
	if (geteuid() != 0) {
		snprintf(path, sizeof(path), "%s/60-secret.yaml", sub);
		put(sub, "60-secret.yaml", "log: {level: info}\n");
		assert_int_equal(chmod(path, 0), 0);
		load_dir_bad(dir, CFG_IO, "conf.d/60-secret.yaml: cannot open "
		    "(Permission denied)");
		assert_int_equal(unlink(path), 0);
		assert_int_equal(chmod(sub, 0300), 0);
		load_dir_bad(dir, CFG_IO, "conf.d: cannot open (Permission "
		    "denied)");
		assert_int_equal(chmod(sub, 0755), 0);
	}

	/* A name that would forge a line of a message. */
	put(sub, "70-a\nconf.d: fine.yaml", "log: {level: info}\n");
	load_dir_bad(dir, CFG_IO, "conf.d: file name \"70-a\\x0Aconf.d: "
	    "fine.yaml\" has a control character (expected a printable name)");
	scratch_free(dir);
}

static void
test_dropin_limits(void **state)
{
	char *dir = scratch(), sub[4096], name[64], *big;
	struct cfg_diag d = { 0 };
	struct cfg *cfg;

	snprintf(sub, sizeof(sub), "%s/conf.d", dir);
	for (int i = 0; i < CFG_MAX_DROPINS; i++) {
		snprintf(name, sizeof(name), "%02d.yaml", i);
		put(sub, name, "broker: {max_sessions: 7}\n");
	}
	assert_int_equal(load_dir(dir, 0, &cfg, &d), CFG_OK);
	assert_int_equal(cfg->nfiles, CFG_MAX_DROPINS + 1);
	assert_int_equal(cfg->broker.max_sessions, 7);
	cfg_free(cfg);
	/* Ignored names do not count. */
	put(sub, "99.yaml~", "x\n");
	put(sub, ".99.yaml", "x\n");
	assert_int_equal(load_dir(dir, 0, &cfg, &d), CFG_OK);
	cfg_free(cfg);
	put(sub, "99.yaml", "broker: {max_sessions: 8}\n");
	load_dir_bad(dir, CFG_IO, "conf.d: 65 drop-in files (expected at most "
	    "64)");
	scratch_free(dir);

	/* The sizes are added up before any file is read. */
	dir = scratch();
	snprintf(sub, sizeof(sub), "%s/conf.d", dir);
	big = malloc(CFG_MAX_FILE + 1);
	memset(big, '#', CFG_MAX_FILE);
	big[CFG_MAX_FILE] = '\0';
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "%d.yaml", i);
		put(sub, name, big);
	}
	assert_int_equal(load_dir(dir, 0, &cfg, &d), CFG_OK);
	cfg_free(cfg);
	put(sub, "3.yaml", big);
	load_dir_bad(dir, CFG_IO, "conf.d: 4 drop-in files, with the main file "
	    "more than 4MiB (expected at most 4MiB together)");
	free(big);
	scratch_free(dir);
}

/* --- where values came from ----------------------------------------------- */

struct origin_want {
	const char	*path, *file;
	unsigned	 line;
	int		 seen;
};

static void
origin_key(const struct cfg_key *key, const char *value, void *arg)
{
	struct origin_want *w = arg;

	for (; w->path != NULL; w++) {
		if (strcmp(w->path, key->path) != 0)
			continue;
		w->seen++;
		if (w->file == NULL) {
			assert_null(key->file);
			assert_int_equal(key->line, 0);
		} else {
			assert_non_null(key->file);
			assert_string_equal(key->file, w->file);
			assert_int_equal(key->line, w->line);
		}
		return;
	}
	/* Everything else is a default, or derived. */
	assert_null(key->file);
}

/* The line of text that starts with start says "# want" at its end. */
static void
assert_origin(const char *text, const char *start, const char *want)
{
	const char *line = strstr(text, start), *end, *hash;

	if (line == NULL)
		fail_msg("no line %s", start);
	end = strchr(line + 1, '\n');
	hash = strstr(line, "  # ");
	if (hash == NULL || hash > end || (size_t)(end - hash - 4) !=
	    strlen(want) || memcmp(hash + 4, want, strlen(want)) != 0)
		fail_msg("%s: wanted # %s, got %.*s", start, want,
		    (int)(end - line), line);
}

static void
test_origins(void **state)
{
	static const char *const files[] = {
		("queue:\n  drop: newest\n  max_bytes: 128MiB\n"
		"bridge:\n  - topic: a/#\n    direction: out\n"),
		("\n\nqueue:\n  max_bytes: 256MiB\n"
		"aws:\n  endpoint: a.iot.eu-west-1.amazonaws.com\n"
		"  client_id: gw\n"),
	};
	struct origin_want want[] = {
		{ "queue.drop", "main.yaml", 2, 0 },
		{ "queue.max_bytes", "conf.d/1.yaml", 4, 0 },
		{ "bridge[0].topic", "main.yaml", 5, 0 },
		{ "bridge[0].direction", "main.yaml", 6, 0 },
		{ "bridge[0].qos", NULL, 0, 0 },
		{ "aws.endpoint", "conf.d/1.yaml", 6, 0 },
		{ "aws.client_id", "conf.d/1.yaml", 7, 0 },
		{ "aws.region", NULL, 0, 0 },
		{ "queue.dir", NULL, 0, 0 },
		{ NULL, NULL, 0, 0 },
	};
	struct cfg_diag d = { 0 };
	struct cfg *cfg, *again;
	char *a, *b;

	cfg = merge_ok(files, 2);
	cfg_walk(cfg, origin_key, want);
	for (size_t i = 0; want[i].path != NULL; i++)
		if (want[i].seen != 1)
			fail_msg("%s walked %d times", want[i].path,
			    want[i].seen);
	a = cfg_describe_origins(cfg);
	assert_non_null(a);
	assert_origin(a, "\nbridge:", "main.yaml:4");
	assert_origin(a, "\n  - topic:", "main.yaml:5");
	assert_origin(a, "\n  region: eu-west-1", "derived");
	assert_origin(a, "\n  max_bytes: 256MiB", "conf.d/1.yaml:4");
	assert_origin(a, "\n  drop: newest", "main.yaml:2");
	assert_origin(a, "\n    qos: 1", "default");
	/* The annotated text loads back to the same config. */
	again = load_ok(a);
	assert_same_config(cfg, again);
	free(a);
	cfg_free(again);
	cfg_free(cfg);

	/* Not asked for: no record, and no comments. */
	assert_int_equal(merge(files, 2, 0, &cfg, &d), CFG_OK);
	assert_null(cfg->origins);
	a = cfg_describe_origins(cfg);
	b = describe(cfg);
	assert_string_equal(a, b);
	free(a);
	free(b);
	cfg_free(cfg);

	/* The defaults come from no file: every value says so. */
	assert_int_equal(cfg_defaults(&cfg), CFG_OK);
	a = cfg_describe_origins(cfg);
	assert_non_null(strstr(a, "#   (none)\nlisteners: "));
	assert_origin(a, "\nlisteners:", "default");
	assert_origin(a, "\n  - bind: 127.0.0.1:1883", "default");
	for (char *p = strstr(a, "\nlisteners:"); p != NULL;
	    p = strchr(p + 1, '\n'))
		if (p[1] != '\0' && strchr(p + 1, ':') < strchr(p + 1, '\n') &&
		    strstr(p + 1, "# default") == NULL)
			fail_msg("no origin on: %.40s", p + 1);
	free(a);
	cfg_free(cfg);
}

/* --- the schema against conf/iotbridge.reference.yaml --------------------- */

/* The reference as it stands is exactly the defaults, and so is the small
 * conffile: a local broker on 127.0.0.1:1883, no aws section. */
static void
test_shipped_is_defaults(void **state)
{
	static const char *const files[] = { REFERENCE, SHIPPED };
	struct cfg_diag d = { 0 };
	struct cfg *shipped, *dflt;

	assert_int_equal(cfg_defaults(&dflt), CFG_OK);
	for (size_t i = 0; i < 2; i++) {
		if (cfg_load_file(files[i], &shipped, &d) != CFG_OK) {
			print_diag(&d);
			fail();
		}
		assert_false(shipped->aws.present);
		assert_same_config(shipped, dflt);
		cfg_free(shipped);
	}
	cfg_free(dflt);
}

/*
 * The convention of both shipped files: "#key: value" and "#- key: value",
 * the '#' right before the key at the key's indentation, are options; "# text"
 * is prose. Uncommenting is deleting that '#'.
 */
static char *
uncomment(const char *text)
{
	char *out = strdup(text), *o = out;

	assert_non_null(out);
	for (const char *p = text; *p != '\0';) {
		const char *q = p;

		while (*q == ' ')
			q++;
		if (*q == '#' && ((q[1] >= 'a' && q[1] <= 'z') ||
		    (q[1] == '-' && q[2] == ' '))) {
			memcpy(o, p, (size_t)(q - p));
			o += q - p;
			p = q + 1;
		}
		while (*p != '\0' && *p != '\n')
			*o++ = *p++;
		if (*p == '\n')
			*o++ = *p++;
	}
	*o = '\0';
	return out;
}

struct pathset {
	char	*paths[256];
	size_t	 n;
};

static bool
pathset_has(const struct pathset *s, const char *path)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->paths[i], path) == 0)
			return true;
	return false;
}

/* Key paths present in a YAML document, in the notation of cfg_keys(). */
static void
collect(yaml_document_t *doc, yaml_node_t *node, const char *prefix,
    struct pathset *set)
{
	char path[512];

	if (node->type != YAML_MAPPING_NODE)
		return;
	for (yaml_node_pair_t *pr = node->data.mapping.pairs.start;
	    pr < node->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(doc, pr->value);

		snprintf(path, sizeof(path), "%s%s%s", prefix,
		    *prefix ? "." : "", (char *)k->data.scalar.value);
		if (v->type == YAML_MAPPING_NODE) {
			collect(doc, v, path, set);
			continue;
		}
		assert_true(set->n < 256);
		set->paths[set->n++] = strdup(path);
		if (v->type != YAML_SEQUENCE_NODE)
			continue;
		strncat(path, "[]", sizeof(path) - strlen(path) - 1);
		for (yaml_node_item_t *it = v->data.sequence.items.start;
		    it < v->data.sequence.items.top; it++)
			collect(doc, yaml_document_get_node(doc, *it), path,
			    set);
	}
}

struct shipped_check {
	const struct pathset	*present;
	const char		*text;
	int			 keys;
};

/* Keys that cannot all be set at once: the static credentials go with
 * source: static, the provider's with source: iot, the shipped example shows
 * source: env. They must still be named in the file. */
static const char *const not_together[] = {
	"aws.credentials.access_key_id",
	"aws.credentials.secret_access_key",
	"aws.credentials.session_token",
	"aws.credentials.endpoint",
	"aws.credentials.role_alias",
	"aws.credentials.thing_name",
};

static void
shipped_key(const struct cfg_key *key, const char *value, void *arg)
{
	struct shipped_check *c = arg;
	char needle[128];

	c->keys++;
	for (size_t i = 0; i < sizeof(not_together) / sizeof(not_together[0]);
	    i++) {
		if (strcmp(key->path, not_together[i]) != 0)
			continue;
		snprintf(needle, sizeof(needle), "#   %s:",
		    strrchr(key->path, '.') + 1);
		if (strstr(c->text, needle) == NULL)
			fail_msg("%s is not mentioned in %s", key->path,
			    REFERENCE);
		return;
	}
	if (!pathset_has(c->present, key->path))
		fail_msg("%s is not in %s", key->path, REFERENCE);
}

static void
uncommented_is_default(const struct cfg_key *key, const char *value,
    void *arg)
{
	if (key->dflt == NULL)
		return;
	if (value == NULL || strcmp(value, key->dflt) != 0)
		fail_msg("%s: the reference says %s, the default is %s",
		    key->path, value ? value : "(unset)", key->dflt);
}

static void
test_shipped_uncommented(void **state)
{
	struct pathset present = { .n = 0 };
	struct shipped_check check = { &present, NULL, 0 };
	struct cfg_diag d = { 0 };
	yaml_parser_t parser;
	yaml_document_t doc;
	struct cfg *cfg;
	char *text, *all;
	size_t len;

	text = slurp(REFERENCE, &len);
	all = uncomment(text);
	assert_true(strlen(all) < len - 50);	/* it did uncomment */
	if (cfg_load_mem("uncommented.yaml", all, strlen(all), &cfg, &d) !=
	    CFG_OK) {
		print_diag(&d);
		fail();
	}
	/* Everything set is a default; what has none is a valid example. */
	assert_true(cfg->aws.present);
	assert_non_null(cfg->listeners[0].tls.cert);
	assert_int_equal(cfg->nbridge, 1);
	cfg_walk(cfg, uncommented_is_default, NULL);
	cfg_free(cfg);

	/* Every key of the schema is in the file. */
	assert_true(yaml_parser_initialize(&parser));
	yaml_parser_set_input_string(&parser, (const unsigned char *)all,
	    strlen(all));
	assert_true(yaml_parser_load(&parser, &doc));
	collect(&doc, yaml_document_get_root_node(&doc), "", &present);
	check.text = text;
	cfg_keys(shipped_key, &check);
	assert_true(check.keys > 60);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	for (size_t i = 0; i < present.n; i++)
		free(present.paths[i]);
	free(all);
	free(text);
}

/* The small conffile: what it leaves commented out is what getting-started
 * tells the operator to fill in, and is valid once uncommented. */
static void
test_conffile_uncommented(void **state)
{
	struct cfg_diag d = { 0 };
	struct cfg *cfg;
	char *text, *all;
	size_t len;

	text = slurp(SHIPPED, &len);
	assert_true(len < 4096);
	all = uncomment(text);
	if (cfg_load_mem("uncommented.yaml", all, strlen(all), &cfg, &d) !=
	    CFG_OK) {
		print_diag(&d);
		fail();
	}
	assert_int_equal(cfg->nlisteners, 1);
	assert_false(cfg->listeners[0].auth.anonymous);
	assert_non_null(cfg->listeners[0].auth.password_file);
	assert_non_null(cfg->listeners[0].auth.acl_file);
	assert_true(cfg->aws.present);
	assert_non_null(cfg->aws.endpoint.host);
	assert_non_null(cfg->aws.client_id);
	assert_int_equal(cfg->aws.credentials.source, CFG_CRED_PROFILE);
	assert_int_equal(cfg->nbridge, 2);
	cfg_free(cfg);
	free(all);
	free(text);
}

/* --- the schema against docs/configuration.md ----------------------------- */

struct doc_row {
	char	*path, *type, *dflt;
	bool	 seen;
};

struct doc_rows {
	struct doc_row	rows[256];
	size_t		n;
};

static char *
cell(char **p)
{
	char *start = *p, *end = strchr(start, '|');

	if (end == NULL)
		return NULL;
	*p = end + 1;
	*end = '\0';
	while (*start == ' ')
		start++;
	while (end > start && end[-1] == ' ')
		*--end = '\0';
	return start;
}

/* Rows "| `path` | type | default | meaning |" of the reference tables. */
static void
doc_parse(char *text, struct doc_rows *rows)
{
	char *save, *line;

	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *p = line + 1, *path;
		struct doc_row *r;

		if (strncmp(line, "| `", 3) != 0)
			continue;
		path = cell(&p);
		assert_non_null(path);
		assert_true(rows->n < 256);
		r = &rows->rows[rows->n++];
		path[strlen(path) - 1] = '\0';
		r->path = path + 1;
		r->type = cell(&p);
		r->dflt = cell(&p);
		assert_non_null(r->dflt);
		r->seen = false;
	}
}

static void
doc_key(const struct cfg_key *key, const char *value, void *arg)
{
	struct doc_rows *rows = arg;
	char want[160];

	for (size_t i = 0; i < rows->n; i++) {
		struct doc_row *r = &rows->rows[i];

		if (strcmp(r->path, key->path) != 0)
			continue;
		if (r->seen)
			fail_msg("%s is documented twice", key->path);
		r->seen = true;
		if (strcmp(r->type, key->type) != 0)
			fail_msg("%s: documented as %s, is %s", key->path,
			    r->type, key->type);
		if (key->dflt != NULL)
			snprintf(want, sizeof(want), "`%s`", key->dflt[0] ?
			    key->dflt : "\"\"");
		else
			snprintf(want, sizeof(want), "%s", key->required ?
			    "required" : "unset");
		if (strcmp(r->dflt, want) != 0)
			fail_msg("%s: documented default %s, is %s", key->path,
			    r->dflt, want);
		return;
	}
	fail_msg("%s is not documented in %s", key->path, DOCS);
}

static void
test_docs(void **state)
{
	struct doc_rows *rows = calloc(1, sizeof(*rows));
	char *text = slurp(DOCS, NULL);

	doc_parse(text, rows);
	assert_true(rows->n > 60);
	cfg_keys(doc_key, rows);
	for (size_t i = 0; i < rows->n; i++)
		if (!rows->rows[i].seen)
			fail_msg("%s documents %s, which is not a key", DOCS,
			    rows->rows[i].path);
	free(text);
	free(rows);
}

static void
count_key(const struct cfg_key *key, const char *value, void *arg)
{
	struct {
		int n, required, secret, enums;
	} *c = arg;

	c->n++;
	c->required += key->required;
	c->secret += key->secret;
	c->enums += key->values != NULL;
	assert_null(value);
	assert_non_null(key->doc);
	if (strcmp(key->path, "listeners[].bind") == 0)
		assert_true(key->required);
	if (strcmp(key->path, "queue.drop") == 0) {
		assert_string_equal(key->values[0], "oldest");
		assert_string_equal(key->values[1], "newest");
		assert_null(key->values[2]);
	}
}

static void
test_keys(void **state)
{
	struct {
		int n, required, secret, enums;
	} c = { 0, 0, 0, 0 };

	cfg_keys(count_key, &c);
	/* listeners.bind, tls.cert, tls.key, aws.endpoint, aws.client_id,
	 * proxy.url, bridge.topic, bridge.direction */
	assert_int_equal(c.required, 8);
	assert_int_equal(c.secret, 4);
	assert_int_equal(c.enums, 8);
	assert_int_equal(c.n, 80);
}

/* https_proxy as curl and friends write it; nothing of a password leaks. */
static void
test_proxy_env(void **state)
{
	struct cfg_proxy px;
	char err[256];

	(void)state;
	assert_int_equal(cfg_proxy_parse("http://proxy.lan:3128/", &px, err,
	    sizeof(err)), CFG_OK);
	assert_string_equal(px.url.host, "proxy.lan");
	assert_int_equal(px.url.port, 3128);
	assert_null(px.username);
	cfg_proxy_clear(&px);

	assert_int_equal(cfg_proxy_parse("proxy.lan", &px, err, sizeof(err)),
	    CFG_OK);
	assert_int_equal(px.url.port, 1080);
	cfg_proxy_clear(&px);

	assert_int_equal(cfg_proxy_parse("http://bob:s%40cret@[::1]:8080", &px,
	    err, sizeof(err)), CFG_OK);
	assert_string_equal(px.url.host, "::1");
	assert_int_equal(px.url.port, 8080);
	assert_string_equal(px.username, "bob");
	assert_string_equal(px.password, "s@cret");
	cfg_proxy_clear(&px);
	assert_null(px.password);

	assert_int_equal(cfg_proxy_parse("https://proxy.lan:3128", &px, err,
	    sizeof(err)), CFG_INVALID);
	assert_int_equal(cfg_proxy_parse("http://bob:hunter2@", &px, err,
	    sizeof(err)), CFG_INVALID);
	assert_null(strstr(err, "hunter2"));
	assert_int_equal(cfg_proxy_parse("http://bob:hunter2%zz@p:1", &px, err,
	    sizeof(err)), CFG_INVALID);
	assert_null(strstr(err, "hunter2"));
	assert_int_equal(cfg_proxy_parse("http://bob@p:1", &px, err,
	    sizeof(err)), CFG_INVALID);
	assert_int_equal(cfg_proxy_parse("http://p:1/path", &px, err,
	    sizeof(err)), CFG_INVALID);
	assert_int_equal(cfg_proxy_parse("http://p:99999", &px, err,
	    sizeof(err)), CFG_INVALID);
	assert_null(px.url.host);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_empty_files),
		cmocka_unit_test(test_defaults_canonical),
		cmocka_unit_test(test_durations_sizes),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_aws),
		cmocka_unit_test(test_aws_x509),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_goldens),
		cmocka_unit_test(test_secrets),
		cmocka_unit_test(test_describe_roundtrip),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_merge_rules),
		cmocka_unit_test(test_merge_errors),
		cmocka_unit_test(test_merge_limits),
		cmocka_unit_test(test_merge_goldens),
		cmocka_unit_test(test_dropin_dir),
		cmocka_unit_test(test_dropin_files),
		cmocka_unit_test(test_dropin_limits),
		cmocka_unit_test(test_origins),
		cmocka_unit_test(test_shipped_is_defaults),
		cmocka_unit_test(test_shipped_uncommented),
		cmocka_unit_test(test_conffile_uncommented),
		cmocka_unit_test(test_docs),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_proxy_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
