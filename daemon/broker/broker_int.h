/*
 * What broker.c, session.c, client.c, acks.c, listener.c and persist.c
 * share. Nothing outside the broker includes this file: main.c and the AWS
 * side see only broker.h.
 */
#ifndef IOTB_BROKER_INT_H
#define IOTB_BROKER_INT_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "auth/acl.h"
#include "base/hmap.h"
#include "config/cfg.h"
#include "daemon/broker/broker.h"
#include "daemon/util/file.h"
#include "daemon/util/sock.h"
#include "mqtt/mqtt.h"
#include "topic/trie.h"

struct authw;
struct authw_db;
struct bufferevent;
struct tls_server_ctx;
struct event;

/* Where a message came from: only a device's messages go up to AWS, so a
 * message from AWS never goes back up (loop prevention). */
enum msg_origin {
	MSG_FROM_BROKER = 0,	/* $SYS, the broker's own */
	MSG_FROM_DEVICE,	/* a local client's PUBLISH or will */
	MSG_FROM_AWS,		/* came down an "in" rule */
};

/*
 * An application message, shared by reference among every subscriber, queue
 * and the retained store that hold it: one allocation for topic and payload,
 * whatever the fan-out. Output buffers reference the payload without copying.
 */
struct msg {
	unsigned	 refs;
	uint8_t		 qos;		/* as published */
	bool		 retain;	/* as published */
	uint8_t		 origin;	/* enum msg_origin, MSG_FROM_BROKER
					 * unless the creator says otherwise */
	uint16_t	 topic_len;
	size_t		 payload_len;
	const uint8_t	*payload;	/* inside this allocation, after the topic */
	char		 topic[];
};

struct msg	*msg_new(const void *topic, size_t tlen, const void *payload,
		    size_t plen, uint8_t qos, bool retain);
struct msg	*msg_ref(struct msg *m);
bool		 msg_is_sys(const struct msg *m);
void		 msg_unref(struct msg *m);

/* One subscription: a session's filter with its options, stored in the trie. */
struct sub {
	TAILQ_ENTRY(sub)	 entry;		/* in the session's list */
	struct session		*s;
	uint8_t			 qos;
	bool			 no_local;	/* MQTT 5 */
	bool			 retain_as_published;	/* MQTT 5 */
	uint16_t		 len;
	char			 filter[];
};
TAILQ_HEAD(sub_list, sub);

/* Outgoing QoS 1/2 message of a session: in flight (pid set) or queued. */
enum out_state {
	OUT_QUEUED,		/* not sent yet */
	OUT_SENT,		/* PUBLISH sent; waiting for PUBACK or PUBREC */
	OUT_RELEASED,		/* QoS 2: PUBREL sent; waiting for PUBCOMP */
};

struct outmsg {
	TAILQ_ENTRY(outmsg)	 entry;
	struct msg		*m;
	uint8_t			 qos;		/* after downgrade to the subscription */
	bool			 retain;	/* flag to send */
	enum out_state		 state;
	uint16_t		 pid;		/* 0 while queued */
};
TAILQ_HEAD(out_list, outmsg);

/* A retained message owed to a new subscription, sent as the client's
 * output drains (session_pump()). */
struct retained_out {
	struct msg		*m;
	uint8_t			 qos;
};

/* An acknowledgement owed to a device (acks.c). */
struct owed;
TAILQ_HEAD(owed_list, owed);

struct session {
	char			*id;		/* NUL-terminated copy of the client id */
	size_t			 id_len;
	struct client		*client;	/* NULL while disconnected */
	struct listener		*l;		/* last connected through; NULL if gone */
	char			*username;	/* of the last connection, for the ACL */
	bool			 persistent;	/* kept after disconnect */
	uint64_t		 expiry_ms;	/* how long it is kept once offline */
	uint64_t		 offline_since_ms;
	bool			 offline;	/* in the broker's offline list */
	struct sub_list		 subs;
	size_t			 nsubs;
	struct out_list		 out;		/* in-flight first, in order, then queued */
	size_t			 ninflight;
	size_t			 nqueued;
	uint16_t		 last_pid;
	uint16_t		*qos2_in;	/* incoming QoS 2 ids awaiting PUBREL */
	size_t			 nqos2_in;
	size_t			 capqos2_in;
	struct owed_list	 owed;		/* PUBACK/PUBREC, packet order */
	struct retained_out	*ret;		/* retained messages to send */
	size_t			 ret_head, nret, capret;
	/* routing scratch: one delivery per publish at the highest QoS */
	uint64_t		 match_gen;
	uint8_t			 match_qos;
	bool			 match_rap;	/* retain as published */
	TAILQ_ENTRY(session)	 expiry_entry;	/* in the offline list */
};
TAILQ_HEAD(session_list, session);

enum client_state {
	CLIENT_S_NEW,		/* connected, waiting for CONNECT */
	CLIENT_S_ONLINE,	/* CONNACK sent */
	CLIENT_S_CLOSING,	/* flushing a last packet, or about to be freed */
};

struct listener {
	TAILQ_ENTRY(listener)	 entry;
	struct broker		*b;
	struct sock_acceptor	*acc;
	struct sock_file	 file;		/* AF_UNIX: the socket we made */
	struct cfg_addr		 addr;
	const struct cfg_listener *conf;	/* refreshed at every reload */
	struct tls_server_ctx	*tls;		/* NULL: plain TCP or unix */
	struct authw_db		*passwd;	/* auth.password_file, NULL if none */
	struct acl		*acl;		/* auth.acl_file, NULL if none */
	size_t			 nclients;
	bool			 keep;		/* reload bookkeeping */
	char			 name[CFG_UNIX_PATH_MAX + 16];	/* for logs */
};
TAILQ_HEAD(listener_list, listener);

struct client {
	TAILQ_ENTRY(client)	 entry;
	struct broker		*b;
	struct listener		*l;		/* NULL once its listener is gone */
	struct bufferevent	*bev;
	struct event		*ev_deadline;	/* CONNECT timeout, close flush */
	enum client_state	 state;
	enum mqtt_version	 version;
	struct session		*s;
	struct msg		*will;
	uint8_t			 will_qos;
	bool			 will_retain;
	uint16_t		 keepalive;
	uint32_t		 max_out_packet;	/* MQTT 5: client's maximum */
	uint16_t		 receive_max;	/* MQTT 5: client's window, 0: none */
	uint64_t		 qos0_dropped;
	char			*username;
	char			 peer[64];
	char			 idlog[96];	/* escaped client id for logs */
};
TAILQ_HEAD(client_list, client);

struct broker_stats {
	uint64_t	msgs_received;
	uint64_t	msgs_sent;
	uint64_t	bytes_received;
	uint64_t	bytes_sent;
	uint64_t	msgs_dropped;		/* queue full, slow subscriber */
	uint64_t	clients_refused;
	uint64_t	protocol_errors;
	uint64_t	retained_refused;	/* over limits.max_retained* */
	uint64_t	retained_skipped;	/* a session's backlog was full */
};

struct broker {
	struct event_base	*base;
	const struct cfg	*cfg;
	struct listener_list	 listeners;
	struct client_list	 clients;
	struct client_list	 closing;	/* closed, flushing a last packet */
	size_t			 nclients;
	struct hmap		 sessions;	/* id -> struct session */
	struct session_list	 offline;	/* persistent sessions, oldest first */
	size_t			 noffline;
	bool			 any_acl;	/* some listener has an ACL file */
	struct trie		*subs;
	struct hmap		 retained;	/* topic -> struct msg */
	size_t			 nretained;	/* of them, not $SYS */
	uint64_t		 retained_bytes;	/* their topics and payloads */
	struct event		*ev_sys;
	struct event		*ev_expire;
	struct event		*ev_persist;
	bool			 dirty;		/* the state file is behind */
	bool			 loading;	/* reading the state file */
	uint64_t		 started_ms;
	uint64_t		 match_gen;
	struct session		**matched;	/* routing scratch */
	size_t			 nmatched;
	size_t			 capmatched;
	uint64_t		 next_auto_id;
	struct broker_stats	 stats;
	struct bridge		*bridge;	/* NULL: nothing goes upstream */
	struct authw		*authw;		/* password checks (authw.h) */
	struct owed_list	 owed_stored;	/* pending acks by seq (acks.c) */
	struct owed_list	 owed_delivered;
	struct hmap		 owed_by_seq;	/* seq -> owed, ack: delivered */
};

uint64_t	 broker_now_ms(const struct broker *b);

/* May session s read (receive) or write (publish) this topic under the ACL of
 * the listener it connected through? true without an ACL. */
bool		 broker_may(const struct broker *b, const struct session *s,
		    const char *topic, size_t len, enum acl_access access);


/* What becomes of a device's QoS 1/2 message, and when it is acknowledged. */
enum broker_fate {
	BROKER_ACK,		/* now: not bridged, or bridged and durable */
	BROKER_ACK_STORED,	/* once queue record *seq is durable */
	BROKER_ACK_DELIVERED,	/* once AWS acknowledged record *seq */
	BROKER_REFUSED,		/* the bridge's queue is full (drop: newest) */
	BROKER_UNSTORED,	/* the bridge could not store it: disk full or
				 * failing, queue failed */
	BROKER_WITHHELD,	/* acks.c: never acknowledged on this
				 * connection, which is closed (client.c) */
};

/*
 * Route a message to every sink, in one place: the matching local
 * subscriptions (origin is the publishing session, for No Local; NULL for
 * none), the retained store when it says so, then, for a device's message
 * only (m->origin), the bridge's "out" rules. seq NULL: nothing is owed for
 * it (QoS 0, wills, the broker's own); otherwise *seq receives the queue
 * record a BROKER_ACK_STORED or _DELIVERED fate waits for.
 */
enum broker_fate broker_publish(struct broker *b, struct session *origin,
		    struct msg *m, uint64_t *seq);

/* Send the retained messages matching filter to a new subscription. */
void		 broker_send_retained(struct broker *b, struct sub *sub);

/* sessions (session.c) */
struct session	*session_find(struct broker *b, const char *id, size_t len);
struct session	*session_new(struct broker *b, const char *id, size_t len);
void		 session_free(struct broker *b, struct session *s);
void		 session_attach(struct broker *b, struct session *s,
		    struct client *c);
void		 session_detach(struct broker *b, struct session *s);
void		 session_deliver(struct broker *b, struct session *s,
		    struct msg *m, uint8_t qos, bool retain);
void		 session_pump(struct broker *b, struct session *s);
bool		 session_retained_add(struct broker *b, struct session *s,
		    struct msg *m, uint8_t qos);
void		 session_resend(struct broker *b, struct session *s);
bool		 session_ack(struct broker *b, struct session *s,
		    enum mqtt_type type, uint16_t pid);
struct sub	*session_sub_find(struct session *s, const char *f, size_t len);
int		 session_subscribe(struct broker *b, struct session *s,
		    const struct mqtt_subscription *req, struct sub **out,
		    bool *existed);
bool		 session_unsubscribe(struct broker *b, struct session *s,
		    const char *f, size_t len);
bool		 session_qos2_seen(struct session *s, uint16_t pid);
bool		 session_qos2_add(struct session *s, uint16_t pid, size_t max);
bool		 session_qos2_release(struct session *s, uint16_t pid);
void		 session_expire(struct broker *b);

/* acknowledgements owed to devices (acks.c), see broker_acks_*() */
void		 acks_owe(struct broker *b, struct session *s,
		    enum mqtt_type type, uint16_t pid, uint8_t reason,
		    enum broker_fate fate, uint64_t seq);
void		 acks_durable(struct broker *b, uint64_t seq);
void		 acks_delivered(struct broker *b, uint64_t seq, uint8_t reason);
void		 acks_undelivered_below(struct broker *b, uint64_t seq,
		    uint8_t reason);
bool		 acks_awaiting_delivery(const struct broker *b,
		    uint64_t *lowest);
void		 acks_session_free(struct broker *b, struct session *s);
void		 acks_connection_lost(struct broker *b, struct session *s);

/* connections (client.c) */
void		 client_accept(struct listener *l, int fd,
		    const struct sockaddr *sa, int salen);
void		 client_close(struct client *c, const char *why,
		    uint8_t reason);
void		 client_shutdown(struct client *c);
bool		 client_can_write(const struct client *c);
bool		 client_fits(const struct client *c, const struct msg *m,
		    uint8_t qos);
bool		 client_send_publish(struct client *c, const struct msg *m,
		    uint8_t qos, bool retain, bool dup, uint16_t pid);
void		 client_send_ack(struct client *c, enum mqtt_type type,
		    uint16_t pid, uint8_t reason);

/* the state file (persist.c) */
int		 persist_init(struct broker *b);
int		 persist_save(struct broker *b);
void		 persist_touch(struct broker *b);

/* listeners (listener.c) */
int		 listener_sync(struct broker *b, const struct cfg *cfg,
		    bool starting);
void		 listener_free_all(struct broker *b);

#endif
