/*
 * Bounded reader and counting writer (see buf.h). Every get checks the length
 * it needs before touching a byte, so a failed get leaves the reader exactly
 * where it was; every put goes through one function that decides whether the
 * bytes fit, so overflow is handled in a single place.
 */
#include "base/buf.h"

#include <string.h>

void
buf_reader_init(struct buf_reader *r, const void *data, size_t len)
{
	r->ptr = data;
	r->len = len;
}

size_t
buf_left(const struct buf_reader *r)
{
	return r->len;
}

static void
advance(struct buf_reader *r, size_t n)
{
	if (n == 0)
		return;		/* ptr may be NULL, and NULL + 0 is undefined */
	r->ptr += n;
	r->len -= n;
}

enum buf_status
buf_get_u8(struct buf_reader *r, uint8_t *v)
{
	if (r->len < 1)
		return BUF_SHORT;
	*v = r->ptr[0];
	advance(r, 1);
	return BUF_OK;
}

enum buf_status
buf_get_u16(struct buf_reader *r, uint16_t *v)
{
	if (r->len < 2)
		return BUF_SHORT;
	*v = (uint16_t)(r->ptr[0] << 8 | r->ptr[1]);
	advance(r, 2);
	return BUF_OK;
}

enum buf_status
buf_get_u32(struct buf_reader *r, uint32_t *v)
{
	if (r->len < 4)
		return BUF_SHORT;
	*v = (uint32_t)r->ptr[0] << 24 | (uint32_t)r->ptr[1] << 16 |
	    (uint32_t)r->ptr[2] << 8 | r->ptr[3];
	advance(r, 4);
	return BUF_OK;
}

/* n bytes, least significant first; n is at most 8. */
static enum buf_status
get_le(struct buf_reader *r, size_t n, uint64_t *v)
{
	uint64_t x = 0;
	size_t i;

	if (r->len < n)
		return BUF_SHORT;
	for (i = 0; i < n; i++)
		x |= (uint64_t)r->ptr[i] << (8 * i);
	*v = x;
	advance(r, n);
	return BUF_OK;
}

enum buf_status
buf_get_le16(struct buf_reader *r, uint16_t *v)
{
	uint64_t x;
	enum buf_status st;

	if ((st = get_le(r, 2, &x)) == BUF_OK)
		*v = (uint16_t)x;
	return st;
}

enum buf_status
buf_get_le32(struct buf_reader *r, uint32_t *v)
{
	uint64_t x;
	enum buf_status st;

	if ((st = get_le(r, 4, &x)) == BUF_OK)
		*v = (uint32_t)x;
	return st;
}

enum buf_status
buf_get_le64(struct buf_reader *r, uint64_t *v)
{
	return get_le(r, 8, v);
}

enum buf_status
buf_get_varint(struct buf_reader *r, uint32_t *v)
{
	uint32_t value = 0;
	size_t i;

	for (i = 0; i < 4; i++) {
		uint8_t b;

		if (i == r->len)
			return BUF_SHORT;
		b = r->ptr[i];
		value |= (uint32_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			/* A zero last byte adds nothing: a shorter form exists. */
			if (i > 0 && b == 0)
				return BUF_MALFORMED;
			*v = value;
			advance(r, i + 1);
			return BUF_OK;
		}
	}
	return BUF_MALFORMED;
}

enum buf_status
buf_get_bytes(struct buf_reader *r, size_t n, struct buf_view *v)
{
	if (r->len < n)
		return BUF_SHORT;
	v->ptr = r->ptr;
	v->len = n;
	advance(r, n);
	return BUF_OK;
}

enum buf_status
buf_get_reader(struct buf_reader *r, size_t n, struct buf_reader *sub)
{
	if (r->len < n)
		return BUF_SHORT;
	buf_reader_init(sub, r->ptr, n);
	advance(r, n);
	return BUF_OK;
}

enum buf_status
buf_get_binary(struct buf_reader *r, struct buf_view *v)
{
	size_t n;

	if (r->len < 2)
		return BUF_SHORT;
	n = (size_t)r->ptr[0] << 8 | r->ptr[1];
	if (r->len - 2 < n)
		return BUF_SHORT;
	v->ptr = r->ptr + 2;
	v->len = n;
	advance(r, 2 + n);
	return BUF_OK;
}

void
buf_writer_init(struct buf_writer *w, void *out, size_t cap)
{
	w->base = out;
	w->cap = out == NULL ? 0 : cap;
	w->len = 0;
	w->st = BUF_OK;
}

static void
fail(struct buf_writer *w, enum buf_status st)
{
	if (w->st == BUF_OK)
		w->st = st;
}

void
buf_put_bytes(struct buf_writer *w, const void *p, size_t n)
{
	if (n > SIZE_MAX - w->len) {
		fail(w, BUF_RANGE);
		return;
	}
	if (w->base != NULL && w->st == BUF_OK) {
		if (n > w->cap - w->len)
			fail(w, BUF_NO_SPACE);
		else if (n > 0)
			memcpy(w->base + w->len, p, n);
	}
	w->len += n;
}

void
buf_put_u8(struct buf_writer *w, uint8_t v)
{
	buf_put_bytes(w, &v, 1);
}

void
buf_put_u16(struct buf_writer *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	buf_put_bytes(w, b, sizeof(b));
}

void
buf_put_u32(struct buf_writer *w, uint32_t v)
{
	uint8_t b[4] = {
		(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v
	};

	buf_put_bytes(w, b, sizeof(b));
}

static void
put_le(struct buf_writer *w, uint64_t v, size_t n)
{
	uint8_t b[8];
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	buf_put_bytes(w, b, n);
}

void
buf_put_le16(struct buf_writer *w, uint16_t v)
{
	put_le(w, v, 2);
}

void
buf_put_le32(struct buf_writer *w, uint32_t v)
{
	put_le(w, v, 4);
}

void
buf_put_le64(struct buf_writer *w, uint64_t v)
{
	put_le(w, v, 8);
}

void
buf_put_varint(struct buf_writer *w, uint32_t v)
{
	uint8_t b[4];
	size_t n = 0;

	if (v > BUF_VARINT_MAX) {
		fail(w, BUF_RANGE);
		return;
	}
	do {
		b[n] = v & 0x7f;
		v >>= 7;
		if (v != 0)
			b[n] |= 0x80;
		n++;
	} while (v != 0);
	buf_put_bytes(w, b, n);
}

void
buf_put_binary(struct buf_writer *w, const void *p, size_t n)
{
	if (n > BUF_BINARY_MAX) {
		fail(w, BUF_RANGE);
		return;
	}
	buf_put_u16(w, (uint16_t)n);
	buf_put_bytes(w, p, n);
}

size_t
buf_written(const struct buf_writer *w)
{
	return w->len;
}

enum buf_status
buf_writer_status(const struct buf_writer *w)
{
	return w->st;
}

size_t
buf_varint_size(uint32_t v)
{
	if (v < 128)
		return 1;
	if (v < 16384)
		return 2;
	if (v < 2097152)
		return 3;
	if (v <= BUF_VARINT_MAX)
		return 4;
	return 0;
}

struct buf_view
buf_cstr(const char *s)
{
	struct buf_view v = { (const uint8_t *)s, strlen(s) };

	return v;
}

bool
buf_view_eq(struct buf_view a, struct buf_view b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

const char *
buf_strerror(enum buf_status st)
{
	switch (st) {
	case BUF_OK:		return "success";
	case BUF_SHORT:		return "input ends inside the item";
	case BUF_MALFORMED:	return "malformed variable byte integer";
	case BUF_NO_SPACE:	return "output buffer too small";
	case BUF_RANGE:		return "value does not fit its field";
	}
	return "unknown buf status";
}
