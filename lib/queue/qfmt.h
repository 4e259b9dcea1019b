/*
 * The offline queue's file format, encoded and decoded: the segment header,
 * the record and the checkpoint, in every version this code reads (1 and 2)
 * and writes (2, and 1 for tests and the fuzzer). Pure: bytes in, views out,
 * over base/buf.h's bounded reader and writer; no I/O, no allocation, no
 * pointer kept. queue.c owns the files and decides what a failure means
 * there (damage to step over, or a queue to refuse); docs/queue-format.md
 * is the byte-level description and says how to extend the format.
 *
 * Every version keeps, at the start of a segment header and of a checkpoint,
 * the 8-byte magic, the 32-bit version and the 32-bit header length, and puts
 * the CRC-32C of the header's other bytes in its last 8 bytes (CRC, then
 * zero). That is what lets an older reader tell "written by a later version"
 * (intact, refuse to touch it) from "damaged" (recover around it).
 */
#ifndef IOTB_QFMT_H
#define IOTB_QFMT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define QFMT_VERSION		2u	/* what the queue writes */
#define QFMT_VERSION_MIN	1u	/* the oldest it reads */
#define QFMT_SEG_HDR_MAX	40u	/* largest segment header we know */
#define QFMT_CKPT_MAX		40u	/* largest checkpoint this code knows */
#define QFMT_HDR_MAX		4096u	/* largest header any version may have */
#define QFMT_REC_MAX		(1u << 20)	/* largest record, header included */
#define QFMT_REC_HEAD_MAX	64u	/* largest record header we encode */
#define QFMT_SEQ_LIMIT		((uint64_t)1 << 62)	/* sequence numbers stay below */

/* Version 2 record extensions (docs/queue-format.md, "Extending"). */
#define QFMT_EXT_EXPIRY		1u	/* u64: expiry time, the caller's clock */

enum qfmt_status {
	QFMT_OK = 0,
	QFMT_SHORT,		/* decode: the bytes end inside the item */
	QFMT_BAD_MAGIC,		/* decode: not a segment header / checkpoint */
	QFMT_BAD_CRC,		/* decode: the checksum does not match */
	QFMT_MALFORMED,		/* decode: a field out of range, lengths that
				   do not add up, a version below 1 */
	QFMT_NEWER,		/* decode: an intact header of a version after
				   QFMT_VERSION */
	QFMT_NO_SPACE,		/* encode: the output buffer is too small */
	QFMT_INVALID,		/* encode: a field does not fit the format */
};

/* A segment header: the first qfmt_seg_hdr_len() bytes of a segment file. */
struct qfmt_seg {
	uint32_t	 version;	/* QFMT_VERSION_MIN..QFMT_VERSION */
	uint64_t	 first_seq;	/* 1..QFMT_SEQ_LIMIT - 1 */
	/*
	 * Numbers from here up to first_seq were found lost (and counted)
	 * when the segment was created: a later recovery does not count them
	 * again. first_seq when there were none, and always in version 1.
	 */
	uint64_t	 counted_from;
};

/* The checkpoint file. */
struct qfmt_ckpt {
	uint32_t	 version;
	uint64_t	 released;	/* every sequence number below is done */
	/* Every record up to this one was durable when the checkpoint was
	 * written (version 2; 0 in version 1): what recovery holds a missing
	 * tail against. */
	uint64_t	 durable;
};

/* A record. Decoded views point into the caller's bytes. */
struct qfmt_rec {
	uint32_t	 len;		/* the whole record, header included */
	uint64_t	 seq;
	uint64_t	 time_ms;
	uint64_t	 expiry_ms;	/* 0: none (always 0 in version 1) */
	uint8_t		 qos;		/* 0..2 */
	uint8_t		 flags;		/* the caller's, stored as is */
	struct buf_view	 topic;		/* up to 65535 bytes */
	struct buf_view	 props;		/* MQTT 5 properties, opaque */
	struct buf_view	 payload;
};

/* The segment header length of version v (32, 40), where records begin; 0
 * for a version this code does not know. */
size_t		qfmt_seg_hdr_len(uint32_t version);

/*
 * Encode a segment header of h->version into out[0..cap); *len receives its
 * length. QFMT_OK, QFMT_NO_SPACE, QFMT_INVALID (version unknown, first_seq
 * 0 or not below QFMT_SEQ_LIMIT, counted_from 0 or above first_seq, or not
 * first_seq in version 1).
 */
enum qfmt_status qfmt_seg_encode(uint8_t *out, size_t cap,
		    const struct qfmt_seg *h, size_t *len);

/*
 * Decode the segment header at the start of p[0..n) (n is what the file
 * has, up to QFMT_HDR_MAX; the records begin at qfmt_seg_hdr_len()).
 * QFMT_OK with *h filled; QFMT_SHORT, QFMT_BAD_MAGIC, QFMT_BAD_CRC,
 * QFMT_MALFORMED: damage; QFMT_NEWER: a later version's intact header,
 * with h->version set.
 */
enum qfmt_status qfmt_seg_decode(const uint8_t *p, size_t n,
		    struct qfmt_seg *h);

/*
 * Encode checkpoint c (version 1: 32 bytes, durable must be 0; version 2:
 * 40 bytes) into out[0..cap); *len receives its size. QFMT_OK,
 * QFMT_NO_SPACE, QFMT_INVALID.
 */
enum qfmt_status qfmt_ckpt_encode(uint8_t *out, size_t cap,
		    const struct qfmt_ckpt *c, size_t *len);

/*
 * Decode a whole checkpoint file p[0..n): bytes beyond the version's length
 * are QFMT_MALFORMED. Statuses as qfmt_seg_decode().
 */
enum qfmt_status qfmt_ckpt_decode(const uint8_t *p, size_t n,
		    struct qfmt_ckpt *c);

/*
 * The fixed header length of a record of version v, which is also the
 * smallest record; 0 for a version this code does not know.
 */
size_t		qfmt_rec_min(uint32_t version);

/*
 * The whole length of record r in version v: header (with the extensions
 * r asks for) and the three parts. QFMT_OK, or QFMT_INVALID when a field
 * does not fit (qos above 2, topic over 65535 bytes, an expiry in version 1,
 * seq 0 or not below QFMT_SEQ_LIMIT) or the record would be over
 * QFMT_REC_MAX.
 */
enum qfmt_status qfmt_rec_size(uint32_t version, const struct qfmt_rec *r,
		    uint64_t *len);

/*
 * Encode the header of record r in version v (its fixed part and its
 * extensions, the CRC over it and r's three parts) into out[0..cap); *hlen
 * receives its size. The caller writes topic, props and payload right after
 * it: the header and the parts make the record without a copy. r->len is
 * not read. QFMT_OK, QFMT_NO_SPACE, QFMT_INVALID as qfmt_rec_size().
 */
enum qfmt_status qfmt_rec_head_encode(uint32_t version, uint8_t *out,
		    size_t cap, const struct qfmt_rec *r, size_t *hlen);

/*
 * The cheap checks, on the fixed header alone (p[0..n), n at least
 * qfmt_rec_min(v)): length in range, parts that add up to it, a valid QoS,
 * a sequence number in 1..QFMT_SEQ_LIMIT - 1.
 * QFMT_OK with r->len, seq, time_ms, qos and flags set (the views and the
 * expiry come with qfmt_rec_decode()); QFMT_SHORT; QFMT_MALFORMED.
 */
enum qfmt_status qfmt_rec_head(uint32_t version, const uint8_t *p, size_t n,
		    struct qfmt_rec *r);

/*
 * Decode the whole record at p[0..n): qfmt_rec_head(), then the CRC, then
 * the extensions (known ones checked, unknown ones skipped). QFMT_OK with
 * every field of *r set and its views into p; QFMT_SHORT (n below the
 * record's length), QFMT_MALFORMED, QFMT_BAD_CRC.
 */
enum qfmt_status qfmt_rec_decode(uint32_t version, const uint8_t *p,
		    size_t n, struct qfmt_rec *r);

/*
 * qfmt_rec_decode() without the CRC, for a record whose CRC the caller
 * checked in these very bytes already.
 */
enum qfmt_status qfmt_rec_view(uint32_t version, const uint8_t *p, size_t n,
		    struct qfmt_rec *r);

/* Static English text for a status. */
const char	*qfmt_strerror(enum qfmt_status st);

#endif /* IOTB_QFMT_H */
