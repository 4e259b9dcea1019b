/*
 * The queue's format (see qfmt.h), one encoder and one decoder per item, each
 * the only place that knows the item's layout: queue.c never touches an
 * offset. Version 2 adds to version 1: in the segment header, the numbers
 * counted lost before the segment; in the record's fixed header, the length
 * of its extensions and a reserved field; in the checkpoint, its header
 * length and the durable position.
 */
#include "queue/qfmt.h"

#include <string.h>

#include "base/crc32c.h"

#define SEG_MAGIC	"IOTBQSEG"
#define CKPT_MAGIC	"IOTBQCKP"
#define MAGIC_LEN	8
#define SEG_V1_LEN	32u
#define SEG_V2_LEN	40u
#define CKPT_V1_LEN	32u
#define CKPT_V2_LEN	40u
#define REC_V1_MIN	36u
#define REC_V2_MIN	40u
#define REC_CRC_FROM	8u	/* the CRC covers a record from here on */
#define EXT_EXPIRY_LEN	8u

static bool
version_known(uint32_t v)
{
	return v >= QFMT_VERSION_MIN && v <= QFMT_VERSION;
}

static enum qfmt_status
writer_status(const struct buf_writer *w)
{
	return buf_writer_status(w) == BUF_OK ? QFMT_OK : QFMT_NO_SPACE;
}

/*
 * A header whose version is after ours: intact by the rule every version
 * keeps (its length at offset 12, its CRC in its last 8 bytes) is
 * QFMT_NEWER; anything else is damage.
 */
static enum qfmt_status
newer(const uint8_t *p, size_t n)
{
	struct buf_reader r;
	struct buf_view body;
	uint32_t hlen, crc;

	buf_reader_init(&r, p, n);
	if (buf_get_bytes(&r, MAGIC_LEN + 4, &body) != BUF_OK ||
	    buf_get_le32(&r, &hlen) != BUF_OK)
		return QFMT_SHORT;
	if (hlen < MAGIC_LEN + 4 + 4 + 8 || hlen > QFMT_HDR_MAX)
		return QFMT_MALFORMED;
	if (n < hlen)
		return QFMT_SHORT;
	buf_reader_init(&r, p, n);
	if (buf_get_bytes(&r, hlen - 8, &body) != BUF_OK ||
	    buf_get_le32(&r, &crc) != BUF_OK)
		return QFMT_SHORT;
	if (crc32c_update(0, body.ptr, body.len) != crc)
		return QFMT_BAD_CRC;
	return QFMT_NEWER;
}

/*
 * Magic and version, the start every version keeps. QFMT_OK with *version
 * one this code reads and r past both; QFMT_NEWER with *version set; else
 * QFMT_SHORT, QFMT_BAD_MAGIC or damage as newer() says.
 */
static enum qfmt_status
probe(struct buf_reader *r, const char *magic, uint32_t *version)
{
	const uint8_t	*p = r->ptr;
	size_t		 n = r->len;
	struct buf_view	 m;

	if (buf_get_bytes(r, MAGIC_LEN, &m) != BUF_OK)
		return QFMT_SHORT;
	if (memcmp(m.ptr, magic, MAGIC_LEN) != 0)
		return QFMT_BAD_MAGIC;
	if (buf_get_le32(r, version) != BUF_OK)
		return QFMT_SHORT;
	if (*version > QFMT_VERSION)
		return newer(p, n);
	if (*version < QFMT_VERSION_MIN)
		return QFMT_MALFORMED;
	return QFMT_OK;
}

/* The CRC in the 8 bytes after body[0..n) (then 4 bytes of zero). */
static void
put_crc_tail(struct buf_writer *w, const uint8_t *body, size_t n)
{
	buf_put_le32(w, w->base != NULL && buf_writer_status(w) == BUF_OK ?
	    crc32c_update(0, body, n) : 0);
	buf_put_le32(w, 0);
}

static bool
crc_tail_ok(const uint8_t *p, size_t n, uint32_t crc)
{
	return crc32c_update(0, p, n) == crc;
}

/* --- segment header ------------------------------------------------------ */

size_t
qfmt_seg_hdr_len(uint32_t version)
{
	switch (version) {
	case 1:
		return SEG_V1_LEN;
	case 2:
		return SEG_V2_LEN;
	}
	return 0;
}

enum qfmt_status
qfmt_seg_encode(uint8_t *out, size_t cap, const struct qfmt_seg *h,
    size_t *len)
{
	struct buf_writer w;

	*len = 0;
	if (!version_known(h->version) || h->first_seq == 0 ||
	    h->first_seq >= QFMT_SEQ_LIMIT || h->counted_from == 0 ||
	    h->counted_from > h->first_seq ||
	    (h->version == 1 && h->counted_from != h->first_seq))
		return QFMT_INVALID;
	buf_writer_init(&w, out, cap);
	buf_put_bytes(&w, SEG_MAGIC, MAGIC_LEN);
	buf_put_le32(&w, h->version);
	buf_put_le32(&w, (uint32_t)qfmt_seg_hdr_len(h->version));
	buf_put_le64(&w, h->first_seq);
	if (h->version >= 2)
		buf_put_le64(&w, h->counted_from);
	put_crc_tail(&w, out, buf_written(&w));
	*len = buf_written(&w);
	return writer_status(&w);
}

enum qfmt_status
qfmt_seg_decode(const uint8_t *p, size_t n, struct qfmt_seg *h)
{
	struct buf_reader r;
	enum qfmt_status st;
	uint32_t version = 0, hlen, crc;
	uint64_t first, from;
	size_t want;

	buf_reader_init(&r, p, n);
	if ((st = probe(&r, SEG_MAGIC, &version)) != QFMT_OK) {
		h->version = version;
		return st;
	}
	want = qfmt_seg_hdr_len(version);
	if (buf_get_le32(&r, &hlen) != BUF_OK ||
	    buf_get_le64(&r, &first) != BUF_OK ||
	    (version >= 2 && buf_get_le64(&r, &from) != BUF_OK) ||
	    buf_get_le32(&r, &crc) != BUF_OK || n < want)
		return QFMT_SHORT;
	if (version == 1)
		from = first;
	if (!crc_tail_ok(p, want - 8, crc))
		return QFMT_BAD_CRC;
	if (hlen != want || first == 0 || first >= QFMT_SEQ_LIMIT ||
	    from == 0 || from > first)
		return QFMT_MALFORMED;
	h->version = version;
	h->first_seq = first;
	h->counted_from = from;
	return QFMT_OK;
}

/* --- checkpoint ---------------------------------------------------------- */

enum qfmt_status
qfmt_ckpt_encode(uint8_t *out, size_t cap, const struct qfmt_ckpt *c,
    size_t *len)
{
	struct buf_writer w;

	*len = 0;
	if (!version_known(c->version) || c->released >= QFMT_SEQ_LIMIT ||
	    c->durable >= QFMT_SEQ_LIMIT || (c->version == 1 && c->durable != 0))
		return QFMT_INVALID;
	buf_writer_init(&w, out, cap);
	buf_put_bytes(&w, CKPT_MAGIC, MAGIC_LEN);
	buf_put_le32(&w, c->version);
	/* version 1 has zero where later versions keep the header length */
	buf_put_le32(&w, c->version == 1 ? 0 : CKPT_V2_LEN);
	buf_put_le64(&w, c->released);
	if (c->version >= 2)
		buf_put_le64(&w, c->durable);
	put_crc_tail(&w, out, buf_written(&w));
	*len = buf_written(&w);
	return writer_status(&w);
}

enum qfmt_status
qfmt_ckpt_decode(const uint8_t *p, size_t n, struct qfmt_ckpt *c)
{
	struct buf_reader r;
	enum qfmt_status st;
	uint32_t version = 0, hlen, crc;
	uint64_t released, durable = 0;
	size_t want;

	buf_reader_init(&r, p, n);
	if ((st = probe(&r, CKPT_MAGIC, &version)) != QFMT_OK) {
		c->version = version;
		return st;
	}
	want = version == 1 ? CKPT_V1_LEN : CKPT_V2_LEN;
	if (buf_get_le32(&r, &hlen) != BUF_OK ||
	    buf_get_le64(&r, &released) != BUF_OK ||
	    (version >= 2 && buf_get_le64(&r, &durable) != BUF_OK) ||
	    buf_get_le32(&r, &crc) != BUF_OK || n < want)
		return QFMT_SHORT;
	if (!crc_tail_ok(p, want - 8, crc))
		return QFMT_BAD_CRC;
	if (n != want || hlen != (version == 1 ? 0 : want) ||
	    released >= QFMT_SEQ_LIMIT || durable >= QFMT_SEQ_LIMIT)
		return QFMT_MALFORMED;
	c->version = version;
	c->released = released;
	c->durable = durable;
	return QFMT_OK;
}

/* --- record -------------------------------------------------------------- */

size_t
qfmt_rec_min(uint32_t version)
{
	switch (version) {
	case 1:
		return REC_V1_MIN;
	case 2:
		return REC_V2_MIN;
	}
	return 0;
}

/* Extension bytes record r needs in version v. */
static size_t
ext_len(uint32_t version, const struct qfmt_rec *r)
{
	if (version < 2 || r->expiry_ms == 0)
		return 0;
	return 2 + EXT_EXPIRY_LEN;
}

enum qfmt_status
qfmt_rec_size(uint32_t version, const struct qfmt_rec *r, uint64_t *len)
{
	uint64_t n;

	*len = 0;
	if (!version_known(version) || r->qos > 2 ||
	    r->topic.len > UINT16_MAX || r->seq == 0 ||
	    r->seq >= QFMT_SEQ_LIMIT || (version == 1 && r->expiry_ms != 0))
		return QFMT_INVALID;
	if (r->props.len > QFMT_REC_MAX || r->payload.len > QFMT_REC_MAX)
		return QFMT_INVALID;
	n = (uint64_t)qfmt_rec_min(version) + ext_len(version, r) +
	    r->topic.len + r->props.len + r->payload.len;
	if (n > QFMT_REC_MAX)
		return QFMT_INVALID;
	*len = n;
	return QFMT_OK;
}

enum qfmt_status
qfmt_rec_head_encode(uint32_t version, uint8_t *out, size_t cap,
    const struct qfmt_rec *r, size_t *hlen)
{
	struct buf_writer w, crcw;
	enum qfmt_status st;
	uint64_t len;
	size_t xl;
	uint32_t crc;

	*hlen = 0;
	if ((st = qfmt_rec_size(version, r, &len)) != QFMT_OK)
		return st;
	xl = ext_len(version, r);
	buf_writer_init(&w, out, cap);
	buf_put_le32(&w, (uint32_t)len);
	buf_put_le32(&w, 0);		/* the CRC, once the rest is known */
	buf_put_le64(&w, r->seq);
	buf_put_le64(&w, r->time_ms);
	buf_put_u8(&w, r->qos);
	buf_put_u8(&w, r->flags);
	buf_put_le16(&w, (uint16_t)r->topic.len);
	buf_put_le32(&w, (uint32_t)r->props.len);
	buf_put_le32(&w, (uint32_t)r->payload.len);
	if (version >= 2) {
		buf_put_le16(&w, (uint16_t)xl);
		buf_put_le16(&w, 0);	/* reserved */
		if (r->expiry_ms != 0) {
			buf_put_u8(&w, QFMT_EXT_EXPIRY);
			buf_put_u8(&w, EXT_EXPIRY_LEN);
			buf_put_le64(&w, r->expiry_ms);
		}
	}
	if ((st = writer_status(&w)) != QFMT_OK)
		return st;
	crc = crc32c_update(0, out + REC_CRC_FROM, buf_written(&w) - REC_CRC_FROM);
	crc = crc32c_update(crc, r->topic.ptr, r->topic.len);
	crc = crc32c_update(crc, r->props.ptr, r->props.len);
	crc = crc32c_update(crc, r->payload.ptr, r->payload.len);
	buf_writer_init(&crcw, out + 4, 4);
	buf_put_le32(&crcw, crc);
	*hlen = buf_written(&w);
	return QFMT_OK;
}

/* The fixed header; *crc and *xl (extension length) for the callers below. */
static enum qfmt_status
rec_fixed(uint32_t version, const uint8_t *p, size_t n, struct qfmt_rec *r,
    uint32_t *crc, uint16_t *xl)
{
	struct buf_reader b;
	uint16_t tl, reserved;
	uint32_t len, pl, yl;
	size_t min = qfmt_rec_min(version);

	*xl = 0;
	if (min == 0)
		return QFMT_MALFORMED;
	buf_reader_init(&b, p, n);
	if (n < min)
		return QFMT_SHORT;
	/* n >= min: none of these can fail */
	(void)buf_get_le32(&b, &len);
	(void)buf_get_le32(&b, crc);
	(void)buf_get_le64(&b, &r->seq);
	(void)buf_get_le64(&b, &r->time_ms);
	(void)buf_get_u8(&b, &r->qos);
	(void)buf_get_u8(&b, &r->flags);
	(void)buf_get_le16(&b, &tl);
	(void)buf_get_le32(&b, &pl);
	(void)buf_get_le32(&b, &yl);
	if (version >= 2) {
		(void)buf_get_le16(&b, xl);
		(void)buf_get_le16(&b, &reserved);
	}
	if (len < min || len > QFMT_REC_MAX || r->qos > 2 || r->seq == 0 ||
	    r->seq >= QFMT_SEQ_LIMIT ||
	    (uint64_t)min + *xl + tl + pl + yl != len)
		return QFMT_MALFORMED;
	r->len = len;
	r->expiry_ms = 0;
	r->topic = (struct buf_view){ NULL, tl };
	r->props = (struct buf_view){ NULL, pl };
	r->payload = (struct buf_view){ NULL, yl };
	return QFMT_OK;
}

enum qfmt_status
qfmt_rec_head(uint32_t version, const uint8_t *p, size_t n,
    struct qfmt_rec *r)
{
	uint32_t crc;
	uint16_t xl;

	return rec_fixed(version, p, n, r, &crc, &xl);
}

/*
 * Version 2 extensions: (u8 tag, u8 length, bytes), back to back. An unknown
 * tag is skipped: that is what lets a later writer add optional fields
 * without a new version. A known one must have its length and come once.
 */
static enum qfmt_status
ext_parse(struct buf_reader *x, struct qfmt_rec *r)
{
	struct buf_reader v;
	uint8_t tag, n;
	bool expiry = false;

	while (buf_left(x) > 0) {
		if (buf_get_u8(x, &tag) != BUF_OK || buf_get_u8(x, &n) != BUF_OK ||
		    buf_get_reader(x, n, &v) != BUF_OK)
			return QFMT_MALFORMED;
		if (tag != QFMT_EXT_EXPIRY)
			continue;
		if (expiry || n != EXT_EXPIRY_LEN)
			return QFMT_MALFORMED;
		(void)buf_get_le64(&v, &r->expiry_ms);
		if (r->expiry_ms == 0)
			return QFMT_MALFORMED;	/* 0 is written as no extension */
		expiry = true;
	}
	return QFMT_OK;
}

static enum qfmt_status
rec_decode(uint32_t version, const uint8_t *p, size_t n, struct qfmt_rec *r,
    bool check_crc)
{
	struct buf_reader b, x;
	enum qfmt_status st;
	uint32_t crc;
	uint16_t xl;

	if ((st = rec_fixed(version, p, n, r, &crc, &xl)) != QFMT_OK)
		return st;
	if (n < r->len)
		return QFMT_SHORT;
	if (check_crc && crc32c_update(0, p + REC_CRC_FROM,
	    r->len - REC_CRC_FROM) != crc)
		return QFMT_BAD_CRC;
	/* rec_fixed() proved that the parts add up to len */
	buf_reader_init(&b, p + qfmt_rec_min(version), r->len -
	    qfmt_rec_min(version));
	(void)buf_get_reader(&b, xl, &x);
	(void)buf_get_bytes(&b, r->topic.len, &r->topic);
	(void)buf_get_bytes(&b, r->props.len, &r->props);
	(void)buf_get_bytes(&b, r->payload.len, &r->payload);
	return ext_parse(&x, r);
}

enum qfmt_status
qfmt_rec_decode(uint32_t version, const uint8_t *p, size_t n,
    struct qfmt_rec *r)
{
	return rec_decode(version, p, n, r, true);
}

enum qfmt_status
qfmt_rec_view(uint32_t version, const uint8_t *p, size_t n,
    struct qfmt_rec *r)
{
	return rec_decode(version, p, n, r, false);
}

const char *
qfmt_strerror(enum qfmt_status st)
{
	switch (st) {
	case QFMT_OK:		return "success";
	case QFMT_SHORT:	return "ends inside the item";
	case QFMT_BAD_MAGIC:	return "not a queue file";
	case QFMT_BAD_CRC:	return "checksum mismatch";
	case QFMT_MALFORMED:	return "malformed";
	case QFMT_NEWER:	return "written by a newer version";
	case QFMT_NO_SPACE:	return "output buffer too small";
	case QFMT_INVALID:	return "a field does not fit the format";
	}
	return "unknown qfmt status";
}
