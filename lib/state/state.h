/*
 * The broker's state file: retained messages and persistent sessions, written
 * as a whole snapshot (the daemon writes it to a temporary file, fsyncs and
 * renames it over the old one, so a crash at any moment leaves a complete
 * file). This module only encodes records into caller buffers and decodes a
 * file image handed to it; it does no I/O.
 *
 * Format (little endian): an 8-byte magic "IOTBST\0\1" and a u32 version, then
 * records [u32 body length][u32 CRC32C of kind+body][u8 kind][body], and an END
 * record carrying the number of records before it. Session-scoped records
 * (SUB, MSG, QOS2) belong to the SESSION record before them. The record
 * bodies are described in state.c and docs/state-format.md.
 */
#ifndef IOTB_STATE_H
#define IOTB_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define STATE_VERSION		1
#define STATE_HEADER_SIZE	12
#define STATE_MAX_BODY		(300u * 1024 * 1024)	/* largest record body */

enum state_status {
	STATE_OK = 0,
	STATE_NO_SPACE,		/* encode: out too small; *len says how much */
	STATE_INVALID,		/* encode: a field breaks a rule of the format */
	STATE_BAD_MAGIC,	/* not a state file */
	STATE_BAD_VERSION,	/* a version this build cannot read */
	STATE_TRUNCATED,	/* ends inside a record, or without END */
	STATE_BAD_CRC,		/* a record's checksum does not match */
	STATE_MALFORMED,	/* a record's body does not parse, or is misplaced */
	STATE_ABORTED,		/* a callback returned non-zero */
};

struct state_retained {
	struct buf_view	topic;
	struct buf_view	payload;
	uint8_t		qos;
};

struct state_session {
	struct buf_view	id;
	uint64_t	expiry_ms;	/* how long it is kept offline */
	uint64_t	offline_ms;	/* how long it had been offline when saved */
	uint16_t	last_pid;
};

struct state_sub {
	struct buf_view	filter;
	uint8_t		qos;
	bool		no_local;
	bool		retain_as_published;
};

/* An outgoing QoS 1/2 message of the session, in order. */
struct state_msg {
	struct buf_view	topic;
	struct buf_view	payload;
	uint8_t		qos;
	bool		retain;
	uint8_t		out_state;	/* 0 queued, 1 sent, 2 released (QoS 2) */
	uint16_t	pid;		/* 0 when queued */
};

/*
 * Encoders: write one record (or the header) into out[0..cap) and set *len to
 * its size. With out NULL or cap too small: STATE_NO_SPACE and *len the size
 * needed (out[0..cap) may then hold a partial record). STATE_INVALID, *len 0,
 * when the record breaks a rule state_decode() enforces, so that a file
 * written with these always reads back:
 *  - retained: qos 0..2, topic a valid topic name, body within STATE_MAX_BODY;
 *  - session: id 1..65535 bytes of UTF-8 (no U+0000);
 *  - sub: qos 0..2, filter a valid topic filter;
 *  - msg: qos 1..2, out_state 0..2 and 2 only at QoS 2, pid 0 exactly when
 *    out_state is 0, topic a valid topic name, body within STATE_MAX_BODY;
 *  - qos2: pid not 0.
 * The header and END never fail but for space. out and the record are only
 * read during the call; views may have a NULL ptr when their len is 0.
 */
enum state_status state_header_encode(uint8_t *out, size_t cap, size_t *len);
enum state_status state_retained_encode(uint8_t *out, size_t cap,
		    const struct state_retained *r, size_t *len);
enum state_status state_session_encode(uint8_t *out, size_t cap,
		    const struct state_session *s, size_t *len);
enum state_status state_sub_encode(uint8_t *out, size_t cap,
		    const struct state_sub *s, size_t *len);
enum state_status state_msg_encode(uint8_t *out, size_t cap,
		    const struct state_msg *m, size_t *len);
/* An incoming QoS 2 packet id waiting for PUBREL. */
enum state_status state_qos2_encode(uint8_t *out, size_t cap, uint16_t pid,
		    size_t *len);
enum state_status state_end_encode(uint8_t *out, size_t cap,
		    uint64_t nrecords, size_t *len);

/* Called for each record, in file order, with views into the file image
 * (valid as long as the image is). A non-zero return stops decoding with
 * STATE_ABORTED. A NULL member skips that kind of record. */
struct state_callbacks {
	int	(*retained)(const struct state_retained *, void *arg);
	int	(*session)(const struct state_session *, void *arg);
	int	(*sub)(const struct state_sub *, void *arg);
	int	(*msg)(const struct state_msg *, void *arg);
	int	(*qos2)(uint16_t pid, void *arg);
};

struct state_report {
	uint64_t	records;	/* good records before bad_offset, END
					   excluded (NULL callbacks count) */
	size_t		bad_offset;	/* start of the record that failed (of
					   the bytes after END, if that was
					   it), 0 for the magic, 8 for the
					   version; len on success */
};

/*
 * Decode a whole file image. Records are delivered as they are checked, so on
 * a failure past the header the callbacks have seen every good record before
 * bad_offset: the caller can keep what was salvaged. Topic names, filters and
 * client ids are checked (UTF-8, wildcards) so that what comes back can be
 * put straight into the broker. Not checked: duplicates (two SESSIONs with one
 * id, two RETAINED with one topic, a pid used twice in a session).
 *
 * cb may be NULL (a pure check), and so may rep. buf is only read. Returns:
 *  STATE_OK		header, good records, END with the right count, nothing
 *			after it;
 *  STATE_BAD_MAGIC	shorter than the header, or not the magic;
 *  STATE_BAD_VERSION	a version other than STATE_VERSION;
 *  STATE_TRUNCATED	the image ends inside a record, or before END;
 *  STATE_BAD_CRC	a record's checksum does not match;
 *  STATE_MALFORMED	a body length over STATE_MAX_BODY, an unknown kind, a
 *			body that does not parse exactly or breaks a rule of
 *			the encoders, SUB/MSG/QOS2 before any SESSION, an END
 *			count that is not the number of records before it, or
 *			bytes after END;
 *  STATE_ABORTED	a callback returned non-zero (that record is not
 *			counted in rep->records).
 */
enum state_status state_decode(const uint8_t *buf, size_t len,
		    const struct state_callbacks *cb, void *arg,
		    struct state_report *rep);

const char	*state_strerror(enum state_status st);

#endif
