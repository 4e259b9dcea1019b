/*
 * Which way to AWS IoT Core the uplink takes, and in which order it tries
 * them when it may choose (aws.transport: auto). The ways are AWS's three
 * for MQTT: raw MQTT over mutual TLS on port 8883 ("mqtts"), the same on
 * port 443 with the ALPN protocol x-amzn-mqtt-ca ("mqtts-alpn"), and MQTT
 * over a SigV4-signed WebSocket on port 443 ("wss").
 *
 * auto tries mqtts, then mqtts-alpn, then wss (the last only when SigV4
 * credentials exist; the first not behind an HTTP proxy, which only lets
 * 443 out), one way per connection attempt, so that the session's normal
 * backoff runs across the whole list. The way that carried a session last
 * is remembered in a small file (see tchoice_memory_encode()) and tried
 * first at the next start; the others follow in their usual order.
 *
 * Pure: no I/O, no clock; the daemon reads and writes the file and says
 * when an attempt failed or worked.
 */
#ifndef IOTB_TCHOICE_H
#define IOTB_TCHOICE_H

#include <stdbool.h>
#include <stddef.h>

enum tchoice_way {
	TCHOICE_MQTTS,		/* MQTT over mutual TLS, port 8883 */
	TCHOICE_MQTTS_ALPN,	/* the same on 443, ALPN x-amzn-mqtt-ca */
	TCHOICE_WSS,		/* MQTT over a SigV4 WebSocket, port 443 */
};
#define TCHOICE_NWAYS	3

/* What aws.transport says. */
enum tchoice_mode {
	TCHOICE_MODE_MQTTS,
	TCHOICE_MODE_MQTTS_ALPN,
	TCHOICE_MODE_WSS,
	TCHOICE_MODE_AUTO,
};

/* For tchoice_init(): what the gateway has. */
#define TCHOICE_PROXY	0x01	/* an HTTP proxy: only 443 gets out */
#define TCHOICE_SIGV4	0x02	/* SigV4 credentials of some source */

#define TCHOICE_MEMORY_MAX	320	/* bytes of the memory file */
#define TCHOICE_HOST_MAX	253

enum tchoice_status {
	TCHOICE_OK = 0,
	TCHOICE_MALFORMED,	/* not a memory file of this format */
	TCHOICE_OTHER,		/* well-formed, for another endpoint */
	TCHOICE_NO_SPACE,	/* the output does not fit */
};

/* The ways to try and where the trying is; fill with tchoice_init(). */
struct tchoice {
	enum tchoice_way ways[TCHOICE_NWAYS];
	size_t		 n;		/* 1..TCHOICE_NWAYS */
	size_t		 cur;		/* the way of this attempt */
	bool		 auto_mode;
	bool		 known;		/* a way worked (or was remembered) */
	enum tchoice_way worked;	/* that way */
	unsigned	 announced;	/* bit per way: logged since a success */
};

/*
 * The list for mode. A fixed mode is a list of its one way (flags do not
 * matter: the operator chose). auto: mqtts (not with TCHOICE_PROXY),
 * mqtts-alpn, wss (with TCHOICE_SIGV4), in that order, except that
 * remembered (NULL: none), when it is in the list, goes first. The attempt
 * starts at the head of the list.
 */
void	tchoice_init(struct tchoice *c, enum tchoice_mode mode, unsigned flags,
	    const enum tchoice_way *remembered);

/* The way of the current attempt. */
enum tchoice_way tchoice_current(const struct tchoice *c);

/*
 * Should the current way be logged as the one tried? True once per way
 * between successes (never for the way that worked last), so that a
 * gateway cycling through the list for hours says each choice once;
 * false for a fixed mode.
 */
bool	tchoice_announce(struct tchoice *c);

/*
 * The current attempt ended without carrying a session: in auto, move on
 * to the next way (after the last, the first). Returns whether the way
 * changed.
 */
bool	tchoice_failed(struct tchoice *c);

/*
 * The current way carried a session: it stays the way, and the
 * announcements of the others start afresh. Returns true when it should be written to
 * the memory file: auto, and not the way remembered or worked before.
 */
bool	tchoice_worked(struct tchoice *c);

/*
 * The memory file's text for way at endpoint host (a DNS name or address of
 * 1..TCHOICE_HOST_MAX printable characters without white space), one line:
 *
 *	iotbridge-transport 1 WAY HOST\n
 *
 * into out[0..cap), NUL-terminated; *len (may be NULL) gets the length
 * without the NUL. TCHOICE_OK, TCHOICE_MALFORMED (a host it cannot hold) or
 * TCHOICE_NO_SPACE.
 */
enum tchoice_status tchoice_memory_encode(enum tchoice_way way,
	    const char *host, char *out, size_t cap, size_t *len);

/*
 * Read a memory file from buf[0..len) (borrowed, not kept): exactly the one
 * line above, the final newline optional, version 1, a known way. *way gets
 * the way when the file is for host (compared ASCII case-insensitively, as
 * DNS names are). Returns TCHOICE_OK, TCHOICE_OTHER (a good file for
 * another endpoint: *way is set all the same) or TCHOICE_MALFORMED
 * (anything else, more than TCHOICE_MEMORY_MAX bytes included).
 */
enum tchoice_status tchoice_memory_parse(const void *buf, size_t len,
	    const char *host, enum tchoice_way *way);

/* "mqtts", "mqtts-alpn", "wss". */
const char *tchoice_name(enum tchoice_way way);

/* Static English text for a status. */
const char *tchoice_strerror(enum tchoice_status st);

#endif
