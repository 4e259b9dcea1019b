/*
 * The broker's state file, encoded and decoded: one header, then records that
 * each carry their length and a CRC-32C, then an END record that counts them.
 * Encoders check a record against the same rules the decoder applies, so a
 * file this module wrote is a file it reads back. The decoder trusts nothing:
 * every length is bounded by the file and by STATE_MAX_BODY before it is used,
 * every body must parse exactly, and only records that passed every check
 * reach the callbacks. docs/state-format.md is the byte-level description.
 *
 * Record bodies, all integers little endian (strN: uN length, then the bytes):
 *
 *	RETAINED 1	u8 qos (0..2), str16 topic name, str32 payload
 *	SESSION  2	u64 expiry_ms, u64 offline_ms, u16 last_pid,
 *			str16 client id (1..65535 bytes of UTF-8)
 *	SUB      3	u8 qos (0..2), u8 options (bit 0 no local, bit 1 retain
 *			as published, the rest 0), str16 topic filter
 *	MSG      4	u8 qos (1..2), u8 flags (bit 0 retain, the rest 0),
 *			u8 out_state (0..2, 2 only at QoS 2), u16 pid (0 exactly
 *			when queued), str16 topic name, str32 payload
 *	QOS2     5	u16 pid (not 0)
 *	END      6	u64 number of records before it
 */
#include "state/state.h"

#include <string.h>

#include "base/utf8.h"
#include "base/crc32c.h"
#include "topic/topic.h"

static const uint8_t state_magic[8] = { 'I', 'O', 'T', 'B', 'S', 'T', 0, 1 };

enum state_kind {
	KIND_RETAINED = 1,
	KIND_SESSION,
	KIND_SUB,
	KIND_MSG,
	KIND_QOS2,
	KIND_END,
};

#define REC_HEAD	9	/* u32 length, u32 crc, u8 kind */

/* Fixed parts of the bodies, to size the variable ones against the cap. */
#define RETAINED_FIXED	(1 + 2 + 4)
#define MSG_FIXED	(1 + 1 + 1 + 2 + 2 + 4)

#define SUB_NO_LOCAL	0x01
#define SUB_RAP		0x02
#define MSG_RETAIN	0x01

/* --- length-prefixed strings, little endian (buf.h) ---------------------- */

static void
put_str16(struct buf_writer *w, struct buf_view v)
{
	buf_put_le16(w, (uint16_t)v.len);
	buf_put_bytes(w, v.ptr, v.len);
}

static void
put_str32(struct buf_writer *w, struct buf_view v)
{
	buf_put_le32(w, (uint32_t)v.len);
	buf_put_bytes(w, v.ptr, v.len);
}

static bool
get_u8(struct buf_reader *r, uint8_t *v)
{
	return buf_get_u8(r, v) == BUF_OK;
}

static bool
get_u16(struct buf_reader *r, uint16_t *v)
{
	return buf_get_le16(r, v) == BUF_OK;
}

static bool
get_u64(struct buf_reader *r, uint64_t *v)
{
	return buf_get_le64(r, v) == BUF_OK;
}

/* A length-prefixed string (a 16- or 32-bit length); the reader does not
 * move unless all of it is there. */
static bool
get_str(struct buf_reader *r, bool wide, struct buf_view *v)
{
	struct buf_reader t = *r;
	uint16_t n16;
	uint32_t n;

	if (wide ? buf_get_le32(&t, &n) != BUF_OK :
	    buf_get_le16(&t, &n16) != BUF_OK)
		return false;
	if (!wide)
		n = n16;
	if (buf_get_bytes(&t, n, v) != BUF_OK)
		return false;
	*r = t;
	return true;
}

/* --- the rules, shared by encoders and the decoder ---------------------- */

static bool
name_ok(struct buf_view v)
{
	return topic_name_check((const char *)v.ptr, v.len) == TOPIC_OK;
}

static bool
retained_ok(const struct state_retained *r)
{
	return r->qos <= 2 && name_ok(r->topic) &&
	    r->payload.len <= STATE_MAX_BODY - RETAINED_FIXED - r->topic.len;
}

static bool
session_ok(const struct state_session *s)
{
	return s->id.len > 0 && s->id.len <= UINT16_MAX &&
	    utf8_check(s->id.ptr, s->id.len) == UTF8_OK;
}

static bool
sub_ok(const struct state_sub *s)
{
	return s->qos <= 2 &&
	    topic_filter_check((const char *)s->filter.ptr, s->filter.len) ==
	    TOPIC_OK;
}

static bool
msg_ok(const struct state_msg *m)
{
	if (m->qos < 1 || m->qos > 2 || m->out_state > 2)
		return false;
	if (m->out_state == 2 && m->qos != 2)
		return false;	/* only QoS 2 has a PUBREL stage */
	if ((m->out_state == 0) != (m->pid == 0))
		return false;
	return name_ok(m->topic) &&
	    m->payload.len <= STATE_MAX_BODY - MSG_FIXED - m->topic.len;
}

/* --- encoding ----------------------------------------------------------- */

static void
header_put(struct buf_writer *w)
{
	buf_put_bytes(w, state_magic, sizeof(state_magic));
	buf_put_le32(w, STATE_VERSION);
}

/* Room for the record head; record_end() fills it once the body is known. */
static void
record_begin(struct buf_writer *w, uint8_t *out, size_t cap, uint8_t kind)
{
	static const uint8_t zero[8];

	buf_writer_init(w, out, cap);
	buf_put_bytes(w, zero, sizeof(zero));
	buf_put_u8(w, kind);
}

static enum state_status
record_end(struct buf_writer *w, size_t *len)
{
	struct buf_writer head;
	size_t body;

	*len = buf_written(w);
	if (w->base == NULL || buf_writer_status(w) != BUF_OK)
		return STATE_NO_SPACE;
	body = *len - REC_HEAD;
	buf_writer_init(&head, w->base, 8);
	buf_put_le32(&head, (uint32_t)body);
	buf_put_le32(&head, crc32c_update(0, w->base + 8, body + 1));
	return STATE_OK;
}

enum state_status
state_header_encode(uint8_t *out, size_t cap, size_t *len)
{
	struct buf_writer w;

	buf_writer_init(&w, out, cap);
	header_put(&w);
	*len = buf_written(&w);
	if (out == NULL || buf_writer_status(&w) != BUF_OK)
		return STATE_NO_SPACE;
	return STATE_OK;
}

enum state_status
state_retained_encode(uint8_t *out, size_t cap, const struct state_retained *r,
    size_t *len)
{
	struct buf_writer w;

	*len = 0;
	if (!retained_ok(r))
		return STATE_INVALID;
	record_begin(&w, out, cap, KIND_RETAINED);
	buf_put_u8(&w, r->qos);
	put_str16(&w, r->topic);
	put_str32(&w, r->payload);
	return record_end(&w, len);
}

enum state_status
state_session_encode(uint8_t *out, size_t cap, const struct state_session *s,
    size_t *len)
{
	struct buf_writer w;

	*len = 0;
	if (!session_ok(s))
		return STATE_INVALID;
	record_begin(&w, out, cap, KIND_SESSION);
	buf_put_le64(&w, s->expiry_ms);
	buf_put_le64(&w, s->offline_ms);
	buf_put_le16(&w, s->last_pid);
	put_str16(&w, s->id);
	return record_end(&w, len);
}

enum state_status
state_sub_encode(uint8_t *out, size_t cap, const struct state_sub *s,
    size_t *len)
{
	struct buf_writer w;

	*len = 0;
	if (!sub_ok(s))
		return STATE_INVALID;
	record_begin(&w, out, cap, KIND_SUB);
	buf_put_u8(&w, s->qos);
	buf_put_u8(&w, (uint8_t)((s->no_local ? SUB_NO_LOCAL : 0) |
	    (s->retain_as_published ? SUB_RAP : 0)));
	put_str16(&w, s->filter);
	return record_end(&w, len);
}

enum state_status
state_msg_encode(uint8_t *out, size_t cap, const struct state_msg *m,
    size_t *len)
{
	struct buf_writer w;

	*len = 0;
	if (!msg_ok(m))
		return STATE_INVALID;
	record_begin(&w, out, cap, KIND_MSG);
	buf_put_u8(&w, m->qos);
	buf_put_u8(&w, m->retain ? MSG_RETAIN : 0);
	buf_put_u8(&w, m->out_state);
	buf_put_le16(&w, m->pid);
	put_str16(&w, m->topic);
	put_str32(&w, m->payload);
	return record_end(&w, len);
}

enum state_status
state_qos2_encode(uint8_t *out, size_t cap, uint16_t pid, size_t *len)
{
	struct buf_writer w;

	*len = 0;
	if (pid == 0)
		return STATE_INVALID;
	record_begin(&w, out, cap, KIND_QOS2);
	buf_put_le16(&w, pid);
	return record_end(&w, len);
}

enum state_status
state_end_encode(uint8_t *out, size_t cap, uint64_t nrecords, size_t *len)
{
	struct buf_writer w;

	record_begin(&w, out, cap, KIND_END);
	buf_put_le64(&w, nrecords);
	return record_end(&w, len);
}

/* --- decoding ----------------------------------------------------------- */

/*
 * Each parser reads a whole body, checks it against the encoders' rules, and
 * insists that nothing is left over, so that every valid file has exactly
 * one encoding.
 */
static bool
retained_parse(struct buf_reader *b, struct state_retained *r)
{
	return get_u8(b, &r->qos) && get_str(b, false, &r->topic) &&
	    get_str(b, true, &r->payload) && buf_left(b) == 0 && retained_ok(r);
}

static bool
session_parse(struct buf_reader *b, struct state_session *s)
{
	return get_u64(b, &s->expiry_ms) && get_u64(b, &s->offline_ms) &&
	    get_u16(b, &s->last_pid) && get_str(b, false, &s->id) &&
	    buf_left(b) == 0 && session_ok(s);
}

static bool
sub_parse(struct buf_reader *b, struct state_sub *s)
{
	uint8_t opts;

	if (!get_u8(b, &s->qos) || !get_u8(b, &opts) ||
	    (opts & ~(SUB_NO_LOCAL | SUB_RAP)) != 0)
		return false;
	s->no_local = (opts & SUB_NO_LOCAL) != 0;
	s->retain_as_published = (opts & SUB_RAP) != 0;
	return get_str(b, false, &s->filter) && buf_left(b) == 0 && sub_ok(s);
}

static bool
msg_parse(struct buf_reader *b, struct state_msg *m)
{
	uint8_t flags;

	if (!get_u8(b, &m->qos) || !get_u8(b, &flags) ||
	    (flags & ~MSG_RETAIN) != 0)
		return false;
	m->retain = (flags & MSG_RETAIN) != 0;
	return get_u8(b, &m->out_state) && get_u16(b, &m->pid) &&
	    get_str(b, false, &m->topic) && get_str(b, true, &m->payload) &&
	    buf_left(b) == 0 && msg_ok(m);
}

static bool
qos2_parse(struct buf_reader *b, uint16_t *pid)
{
	return get_u16(b, pid) && buf_left(b) == 0 && *pid != 0;
}

static bool
end_parse(struct buf_reader *b, uint64_t *count)
{
	return get_u64(b, count) && buf_left(b) == 0;
}

/* What a decode has seen so far, for the rules that span records. */
struct decoder {
	const struct state_callbacks	*cb;
	void				*arg;
	uint64_t			 records;
	bool				 in_session;
	bool				 ended;
};

/* Check one body and hand it to its callback. */
static enum state_status
record_deliver(struct decoder *d, uint8_t kind, struct buf_reader *b)
{
	const struct state_callbacks *cb = d->cb;
	struct state_retained r;
	struct state_session s;
	struct state_sub sub;
	struct state_msg m;
	uint64_t count;
	uint16_t pid;
	int rc = 0;

	/* Session-scoped kinds need a SESSION somewhere before them. */
	if ((kind == KIND_SUB || kind == KIND_MSG || kind == KIND_QOS2) &&
	    !d->in_session)
		return STATE_MALFORMED;

	switch (kind) {
	case KIND_RETAINED:
		if (!retained_parse(b, &r))
			return STATE_MALFORMED;
		if (cb->retained != NULL)
			rc = cb->retained(&r, d->arg);
		break;
	case KIND_SESSION:
		if (!session_parse(b, &s))
			return STATE_MALFORMED;
		d->in_session = true;
		if (cb->session != NULL)
			rc = cb->session(&s, d->arg);
		break;
	case KIND_SUB:
		if (!sub_parse(b, &sub))
			return STATE_MALFORMED;
		if (cb->sub != NULL)
			rc = cb->sub(&sub, d->arg);
		break;
	case KIND_MSG:
		if (!msg_parse(b, &m))
			return STATE_MALFORMED;
		if (cb->msg != NULL)
			rc = cb->msg(&m, d->arg);
		break;
	case KIND_QOS2:
		if (!qos2_parse(b, &pid))
			return STATE_MALFORMED;
		if (cb->qos2 != NULL)
			rc = cb->qos2(pid, d->arg);
		break;
	case KIND_END:
		if (!end_parse(b, &count) || count != d->records)
			return STATE_MALFORMED;
		d->ended = true;
		return STATE_OK;
	default:
		return STATE_MALFORMED;
	}
	if (rc != 0)
		return STATE_ABORTED;
	d->records++;
	return STATE_OK;
}

enum state_status
state_decode(const uint8_t *buf, size_t len, const struct state_callbacks *cb,
    void *arg, struct state_report *rep)
{
	static const struct state_callbacks none;
	struct decoder d = { .cb = cb != NULL ? cb : &none, .arg = arg };
	struct buf_reader r, body;
	struct buf_view magic, crcd;
	enum state_status st;
	uint32_t version, blen, crc;
	uint8_t kind;
	size_t at = 0;

	buf_reader_init(&r, buf, len);
	if (buf_get_bytes(&r, sizeof(state_magic), &magic) != BUF_OK ||
	    memcmp(magic.ptr, state_magic, sizeof(state_magic)) != 0 ||
	    buf_get_le32(&r, &version) != BUF_OK) {
		st = STATE_BAD_MAGIC;
		goto done;
	}
	at = sizeof(state_magic);
	if (version != STATE_VERSION) {
		st = STATE_BAD_VERSION;
		goto done;
	}

	for (;;) {
		at = len - buf_left(&r);
		if (d.ended) {
			st = buf_left(&r) == 0 ? STATE_OK : STATE_MALFORMED;
			break;
		}
		/*
		 * The length is judged before anything else: absurd first,
		 * then past the end of the file (a torn write, the one way a
		 * good file goes bad in practice). Only then is the CRC worth
		 * computing, and only a body that passed it is parsed.
		 */
		if (buf_get_le32(&r, &blen) != BUF_OK ||
		    buf_get_le32(&r, &crc) != BUF_OK) {
			st = STATE_TRUNCATED;
			break;
		}
		if (blen > STATE_MAX_BODY) {
			st = STATE_MALFORMED;
			break;
		}
		if (buf_get_bytes(&r, (size_t)blen + 1, &crcd) != BUF_OK) {
			st = STATE_TRUNCATED;
			break;
		}
		if (crc32c_update(0, crcd.ptr, crcd.len) != crc) {
			st = STATE_BAD_CRC;
			break;
		}
		kind = crcd.ptr[0];
		buf_reader_init(&body, crcd.ptr + 1, (size_t)blen);
		if ((st = record_deliver(&d, kind, &body)) != STATE_OK)
			break;
	}
done:
	if (rep != NULL) {
		rep->records = d.records;
		rep->bad_offset = at;	/* len after a good END */
	}
	return st;
}

const char *
state_strerror(enum state_status st)
{
	switch (st) {
	case STATE_OK:
		return "no error";
	case STATE_NO_SPACE:
		return "output buffer too small";
	case STATE_INVALID:
		return "a field is out of its range";
	case STATE_BAD_MAGIC:
		return "not a state file";
	case STATE_BAD_VERSION:
		return "unsupported state file version";
	case STATE_TRUNCATED:
		return "state file truncated";
	case STATE_BAD_CRC:
		return "record checksum mismatch";
	case STATE_MALFORMED:
		return "malformed or misplaced record";
	case STATE_ABORTED:
		return "stopped by the caller";
	}
	return "unknown state status";
}
