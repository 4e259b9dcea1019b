/*
 * The configuration: iotbridge.yaml and the drop-in files of conf.d/ next to
 * it, parsed (libyaml), merged in order and turned into one typed, public
 * struct cfg, or into a list of error messages that all read
 *
 *	FILE:LINE:COLUMN: key.path: what is wrong (what was expected)
 *
 * where FILE is whichever file holds the node that is wrong. Merging: the
 * main file first, then each drop-in in byte order of its name; mappings
 * merge key by key, anything else (a value, a list such as listeners or
 * bridge) is replaced by the later file's. Each file is first checked on its
 * own (types, ranges, unknown keys); once every file passes, the merged
 * configuration is checked as a whole (required keys, keys that must agree).
 *
 * The schema is a set of tables, one per section (cfg_schema.c): every key's
 * type, field, range, default and one-line doc live there and nowhere else.
 * The loader, the did-you-mean for unknown keys, cfg_describe() and the
 * documentation test all read those tables. docs/configuration.md is the
 * reference for users; the comments below say what the fields hold.
 *
 * Reading the files is the only I/O of this module. Durations are stored in
 * milliseconds (fields named *_ms), sizes in bytes.
 */
#ifndef IOTB_CFG_H
#define IOTB_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFG_MAX_FILE	(1024 * 1024)	/* larger files are refused */
#define CFG_MAX_DROPINS	64		/* *.yaml files in conf.d */
#define CFG_MAX_TOTAL	(4 * 1024 * 1024) /* all files of one load */
#define CFG_DROPIN_DIR	"conf.d"	/* next to the main file */
#define CFG_MAX_DEPTH	32		/* deepest nesting of lists and mappings */
#define CFG_MAX_ERRORS	100		/* more are summed up in one last line */
#define CFG_UNIX_PATH_MAX 107		/* sizeof(sun_path) - 1 on Linux */

enum cfg_status {
	CFG_OK = 0,
	CFG_INVALID,		/* a file has errors; the diag lists them */
	CFG_IO,			/* a file was unreadable: diag says why */
	CFG_NOMEM,		/* out of memory; the diag may be incomplete */
};

/* The messages of a failed load, in file order. Start zeroed, release with
 * cfg_diag_clear(). */
struct cfg_diag {
	char	**msgs;		/* count NUL-terminated lines, no newline */
	size_t	  count;
};

/* A local listening address: "127.0.0.1:1883", "[::1]:1883",
 * "unix:/run/iotbridge/mqtt.sock". family is AF_UNSPEC when not set
 * (metrics.listen ""). */
struct cfg_addr {
	int	 family;	/* AF_UNSPEC, AF_INET, AF_INET6 or AF_UNIX */
	uint8_t	 ip[16];	/* network byte order; AF_INET uses 4 bytes */
	uint16_t port;		/* host byte order; 0 for AF_UNIX */
	char	 path[CFG_UNIX_PATH_MAX + 1];	/* AF_UNIX */
};

/* A remote host and port: aws.endpoint, aws.proxy.url. host NULL: not set. */
struct cfg_hostport {
	char	*host;		/* name, IPv4 literal or IPv6 literal (no brackets) */
	uint16_t port;
};

struct cfg_tls {
	char	*cert;		/* NULL: no TLS on this listener; then key is NULL */
	char	*key;		/* set exactly when cert is */
	char	*client_ca;	/* NULL: clients are not asked for a certificate */
};

struct cfg_auth {
	bool	 anonymous;	/* clients without username/password allowed */
	char	*password_file;	/* NULL: none */
	char	*acl_file;	/* NULL: every client may use every topic */
};

struct cfg_listener {
	struct cfg_addr	bind;
	struct cfg_tls	tls;
	struct cfg_auth	auth;
	int64_t		max_connections;	/* 0: only limits.max_connections */
};

enum cfg_slow {
	CFG_SLOW_DROP_QOS0,	/* drop QoS 0 for that client, keep QoS 1/2 queued */
	CFG_SLOW_DISCONNECT,
};

struct cfg_broker {
	char		*state_dir;
	uint64_t	 sys_interval_ms;	/* 0: no $SYS topics */
	bool		 persistence;
	uint64_t	 persist_interval_ms;
	int64_t		 max_sessions;
	uint64_t	 session_expiry_ms;
	enum cfg_slow	 slow_subscriber;
};

struct cfg_limits {
	int64_t		max_connections;
	uint64_t	max_packet_size;
	int64_t		max_inflight;
	int64_t		max_queued_messages;
	int64_t		max_subscriptions;
	uint64_t	connect_timeout_ms;
	uint64_t	max_client_buffer;
	int64_t		max_retained;		/* retained messages kept */
	uint64_t	max_retained_bytes;	/* their topics and payloads */
};

enum cfg_cred_source {
	CFG_CRED_ENV,		/* AWS_ACCESS_KEY_ID etc. in the environment */
	CFG_CRED_STATIC,	/* the keys below, from this file */
	CFG_CRED_PROFILE,	/* a profile of an AWS shared credentials file */
	CFG_CRED_IOT,		/* temporary, from the AWS IoT credentials
				 * provider for aws.cert_file */
};

/* Strings marked secret are zeroized by cfg_free() and never printed. */
struct cfg_credentials {
	enum cfg_cred_source source;
	char	*access_key_id;		/* secret; static only (set then) */
	char	*secret_access_key;	/* secret; static only (set then) */
	char	*session_token;		/* secret; static only, optional */
	char	*file;			/* profile: the credentials file */
	char	*profile;		/* profile: the section in it */
	struct cfg_hostport endpoint;	/* iot: the credentials endpoint (set
					 * then, a DNS name) */
	char	*role_alias;		/* iot: set then */
	char	*thing_name;		/* iot: set then */
};

struct cfg_proxy {
	struct cfg_hostport url;	/* host NULL: no proxy section */
	char	*username;		/* set exactly when password is */
	char	*password;		/* secret */
};

struct cfg_aws_limits {
	int64_t		publish_rate;		/* messages per second */
	uint64_t	bandwidth;		/* bytes per second */
	uint64_t	max_payload;
	int64_t		max_topic_length;
	int64_t		max_topic_slashes;
	int64_t		max_subscriptions;
	int64_t		filters_per_subscribe;
	int64_t		max_inflight;
};

struct cfg_dead_letter {
	uint64_t	max_bytes;		/* 0: refused messages are dropped */
};

/* The way to AWS IoT Core (lib/tchoice's modes, in their order). */
enum cfg_transport {
	CFG_TRANSPORT_MQTTS,		/* MQTT over mutual TLS, mqtts_port */
	CFG_TRANSPORT_MQTTS_ALPN,	/* the same on endpoint's port, ALPN */
	CFG_TRANSPORT_WSS,		/* MQTT over a SigV4 WebSocket */
	CFG_TRANSPORT_AUTO,		/* the first of them that works */
};

/* present false: no uplink; the other fields then hold their defaults. */
struct cfg_aws {
	bool			present;
	struct cfg_hostport	endpoint;	/* port: of wss and mqtts-alpn */
	char			*region;	/* given or derived; NULL only
						 * with transport mqtts or
						 * mqtts-alpn */
	char			*client_id;
	enum cfg_transport	transport;	/* given or derived */
	char			*ca_file;
	char			*cert_file;	/* the device certificate, PEM;
						 * set exactly when key_file is */
	char			*key_file;
	int64_t			mqtts_port;	/* of transport mqtts */
	struct cfg_credentials	credentials;
	uint64_t		keepalive_ms;
	uint64_t		connect_timeout_ms;
	uint64_t		operation_timeout_ms;
	uint64_t		max_connection_age_ms;
	struct cfg_proxy	proxy;		/* no host: https_proxy at run time */
	struct cfg_aws_limits	limits;
	struct cfg_dead_letter	dead_letter;
};

struct cfg_reconnect {
	uint64_t	base_ms;	/* <= max_ms */
	uint64_t	max_ms;
	uint64_t	stable_ms;
	bool		jitter;
};

enum cfg_drop {
	CFG_DROP_OLDEST,
	CFG_DROP_NEWEST,
};

enum cfg_fsync {
	CFG_FSYNC_ALWAYS,
	CFG_FSYNC_INTERVAL,
	CFG_FSYNC_NEVER,
};

struct cfg_queue {
	char		*dir;
	int64_t		 max_messages;		/* -1: only max_bytes limits */
	uint64_t	 max_bytes;		/* >= segment_size */
	enum cfg_drop	 drop;
	int64_t		 drain_hz;		/* 0: as fast as flow control allows */
	enum cfg_fsync	 fsync;
	uint64_t	 fsync_interval_ms;
	uint64_t	 segment_size;
};

enum cfg_direction {
	CFG_DIR_OUT,		/* LAN -> AWS */
	CFG_DIR_IN,		/* AWS -> LAN */
	CFG_DIR_BOTH,
};

enum cfg_ack {
	CFG_ACK_STORED,
	CFG_ACK_DELIVERED,
};

/* topic, local_prefix + topic and remote_prefix + topic are valid filters;
 * the prefixes hold no wildcard. */
struct cfg_bridge_rule {
	char			*topic;
	enum cfg_direction	 direction;
	int64_t			 qos;		/* 0..2 */
	char			*local_prefix;	/* "" when none, never NULL */
	char			*remote_prefix;	/* "" when none, never NULL */
	enum cfg_ack		 ack;
};

enum cfg_log_level {
	CFG_LOG_ERROR,
	CFG_LOG_WARNING,
	CFG_LOG_NOTICE,
	CFG_LOG_INFO,
	CFG_LOG_DEBUG,
};

struct cfg_log {
	enum cfg_log_level level;
};

struct cfg_control {
	char	*socket;
};

struct cfg_metrics {
	struct cfg_addr listen;		/* AF_UNSPEC: no metrics endpoint */
};

/* Where each key of a loaded config was set (CFG_LOAD_ORIGINS): opaque,
 * read through cfg_walk() and cfg_describe_origins(). */
struct cfg_origins;

struct cfg {
	struct cfg_listener	*listeners;	/* at least one */
	size_t			 nlisteners;
	struct cfg_broker	 broker;
	struct cfg_limits	 limits;
	struct cfg_aws		 aws;
	struct cfg_reconnect	 reconnect;
	struct cfg_queue	 queue;
	struct cfg_bridge_rule	*bridge;	/* NULL when nbridge is 0 */
	size_t			 nbridge;
	struct cfg_log		 log;
	struct cfg_control	 control;
	struct cfg_metrics	 metrics;

	/* What was read, in merge order: the main file, then the drop-ins. The
	 * names as in messages; nfiles 0 for cfg_defaults(). */
	char			**files;
	size_t			 nfiles;
	struct cfg_origins	*origins;	/* NULL: not recorded */
};

/* Also the drop-ins of the directory cfg_dropin_dir() names for path. */
#define CFG_LOAD_DROPINS	0x01
/* Record where each key was set, for cfg_walk() and cfg_describe_origins(). */
#define CFG_LOAD_ORIGINS	0x02

/*
 * Read the main file at path, then (CFG_LOAD_DROPINS) every drop-in of the
 * directory cfg_dropin_dir() names, and merge them. The drop-ins are the
 * files whose name ends in ".yaml" and does not start with "." (so editor
 * and package backups such as x.yaml~, x.yaml.dpkg-old or .#x.yaml are
 * ignored), in byte order of their names, named "DIR/NAME" in messages; the
 * directory missing or empty is no error. Each is stat(2)ed before any is
 * read: more than CFG_MAX_DROPINS of them, one that
 * is not a regular file, a name with a control character or, with the main
 * file, more than CFG_MAX_TOTAL bytes together are refused. The path is the
 * FILE part of the main file's messages. On CFG_OK, *out is a new config
 * owned by the caller (cfg_free) and diag is untouched. Otherwise *out is
 * NULL and diag holds the messages (appended to whatever it held), by file
 * in merge order, then by position:
 *   CFG_INVALID  the files were read and have errors, all listed (but a
 *                YAML syntax error is the one message of its file; past
 *                CFG_MAX_ERRORS a last line counts the rest). The merged
 *                configuration is checked only once every file passes on
 *                its own.
 *   CFG_IO       a file or the directory could not be read, or a limit
 *                above was passed: one message per problem, "FILE: what is
 *                wrong" without position
 *   CFG_NOMEM    out of memory
 */
enum cfg_status cfg_load(const char *path, unsigned flags, struct cfg **out,
    struct cfg_diag *diag);

/* cfg_load(path, 0, out, diag): the file alone. */
enum cfg_status cfg_load_file(const char *path, struct cfg **out,
    struct cfg_diag *diag);

/*
 * The drop-in directory of the main file path: CFG_DROPIN_DIR in the
 * directory of path ("conf.d" for "iotbridge.yaml", "/etc/iotbridge/conf.d"
 * for "/etc/iotbridge/iotbridge.yaml"), in buf. False when it does not fit.
 */
bool cfg_dropin_dir(const char *path, char *buf, size_t cap);

/* One file's contents, for cfg_load_sources(). */
struct cfg_source {
	const char	*name;		/* FILE in messages */
	const void	*buf;		/* len bytes, no NUL needed */
	size_t		 len;
};

/*
 * Parse and merge n sources (1..CFG_MAX_DROPINS + 1) in order, as cfg_load()
 * does with files; flags: CFG_LOAD_ORIGINS. Nothing is kept of the sources.
 * Returns as cfg_load();
 * CFG_IO only when a source is larger than CFG_MAX_FILE, all of them larger
 * than CFG_MAX_TOTAL, or n is out of range. An empty buffer (or one holding
 * only comments) adds nothing.
 */
enum cfg_status cfg_load_sources(const struct cfg_source *src, size_t n,
    unsigned flags, struct cfg **out, struct cfg_diag *diag);

/* One source called name in messages: cfg_load_sources() with n = 1. */
enum cfg_status cfg_load_mem(const char *name, const void *buf, size_t len,
    struct cfg **out, struct cfg_diag *diag);

/* The config of an empty file: every default. CFG_OK or CFG_NOMEM. */
enum cfg_status cfg_defaults(struct cfg **out);

/* Zeroize the secrets, free everything. cfg_free(NULL) is a no-op. */
void cfg_free(struct cfg *cfg);

/* Free the messages and zero the diag so it can be used again. */
void cfg_diag_clear(struct cfg_diag *diag);

/*
 * The effective config as YAML that loads back to the same config: every key
 * with its value, defaults included; unset keys and an absent aws section
 * are left out; secrets read "(set)". Returns a NUL-terminated string the
 * caller frees, NULL when out of memory.
 */
char *cfg_describe(const struct cfg *cfg);

/*
 * cfg_describe() with where each value came from: a header comment listing
 * cfg->files in merge order, and after each value and list a comment
 * "# FILE:LINE" (the line of its key), "# default" or "# derived" (computed
 * from other keys, as aws.region from aws.endpoint). Needs a config loaded
 * with CFG_LOAD_ORIGINS (or cfg_defaults()); for another, the same text as
 * cfg_describe(). Loads back as cfg_describe()'s text does.
 */
char *cfg_describe_origins(const struct cfg *cfg);

/* What the schema says of one key, for documentation and tooling. */
struct cfg_key {
	const char	*path;		/* "queue.max_bytes", "listeners[].bind" */
	const char	*type;		/* "duration", "size", "enum", "list", ... */
	const char	*dflt;		/* the default as written in YAML, NULL: none */
	const char *const *values;	/* enum: the accepted names, NULL-ended */
	const char	*doc;		/* one line */
	bool		 required;	/* must be given when its section is */
	bool		 secret;
	/* cfg_walk() with origins: the file (as in cfg->files) and line that
	 * set the key; NULL and 0 when none did (a default, or derived). */
	const char	*file;
	unsigned	 line;
};

/* Called once per key; value is NULL for cfg_keys(). Everything pointed to
 * is valid only during the call. */
typedef void (*cfg_key_fn)(const struct cfg_key *key, const char *value,
    void *arg);

/*
 * Call fn for every key the schema accepts, in schema order: every leaf and
 * every list (listeners, bridge); keys inside list items have paths like
 * "bridge[].topic". Sections (queue, aws, aws.limits, ...) are not keys.
 */
void cfg_keys(cfg_key_fn fn, void *arg);

/*
 * Call fn for every leaf of cfg, in schema order, with its value as
 * cfg_describe() writes it (unquoted): "64MiB", "20s", "true", "(set)" for a
 * secret, NULL when unset. Items have paths like "bridge[0].topic"; an absent
 * aws section is skipped. key->path is the indexed path; key->file and
 * key->line say where it was set when cfg has origins.
 */
void cfg_walk(const struct cfg *cfg, cfg_key_fn fn, void *arg);

/*
 * A proxy URL as the https_proxy environment variable gives it:
 * [http://][USER:PASSWORD@]HOST[:PORT][/], the port 1080 when left out (as
 * curl does), %XX escapes decoded in the user and password. On CFG_OK *px
 * holds copies (cfg_proxy_clear() frees them); otherwise err says what is
 * wrong without showing the user info, and *px is empty.
 */
enum cfg_status cfg_proxy_parse(const char *url, struct cfg_proxy *px,
    char *err, size_t cap);
void cfg_proxy_clear(struct cfg_proxy *px);

/* Static English text for a status. */
const char *cfg_strerror(enum cfg_status st);

#endif
