/*
 * Bounded reading and writing of wire formats. A reader walks a caller's bytes
 * and every get either succeeds or fails without moving, so a caller can stop
 * at the first short field and try again once more bytes have arrived; a
 * length-prefixed section is handed out as a sub-reader that cannot read past
 * the section's end. A writer fills a caller's buffer, notes the first failure
 * and keeps counting, so one pass both sizes and fills an output. Big-endian
 * integers, the MQTT Variable Byte Integer, and 16-bit length-prefixed byte
 * strings are the vocabulary of the wire; little-endian integers that of our
 * own files (the queue's segments and checkpoint, the broker's state file).
 * Nothing here allocates or keeps a pointer beyond the reader or writer it
 * was given.
 */
#ifndef IOTB_BUF_H
#define IOTB_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUF_VARINT_MAX	268435455u	/* largest value of 4 varint bytes */
#define BUF_BINARY_MAX	65535u		/* largest 16-bit length-prefixed item */

enum buf_status {
	BUF_OK = 0,
	BUF_SHORT,		/* reader: the input ends inside the item */
	BUF_MALFORMED,		/* reader: varint over 4 bytes or not minimal */
	BUF_NO_SPACE,		/* writer: the output buffer is full */
	BUF_RANGE,		/* writer: the value does not fit its wire field */
};

/* A borrowed run of bytes; never NUL-terminated. */
struct buf_view {
	const uint8_t	*ptr;
	size_t		 len;
};

/* Reads [ptr, ptr + len); both advance together. */
struct buf_reader {
	const uint8_t	*ptr;
	size_t		 len;
};

/*
 * Writes into [base, base + cap). len counts every byte put, including those
 * that did not fit, so after a failed pass it is the size that was needed.
 * st is the first failure, BUF_OK while there is none.
 */
struct buf_writer {
	uint8_t		*base;
	size_t		 cap;
	size_t		 len;
	enum buf_status	 st;
};

/* Start reading data[0..len). data is borrowed and must outlive the reader. */
void		buf_reader_init(struct buf_reader *r, const void *data, size_t len);

/* Bytes not yet read. */
size_t		buf_left(const struct buf_reader *r);

/*
 * Fixed-width big-endian integers. BUF_OK and advance, or BUF_SHORT and
 * leave the reader and *v untouched.
 */
enum buf_status	buf_get_u8(struct buf_reader *r, uint8_t *v);
enum buf_status	buf_get_u16(struct buf_reader *r, uint16_t *v);
enum buf_status	buf_get_u32(struct buf_reader *r, uint32_t *v);

/* The same in little-endian byte order: the formats of our own files. */
enum buf_status	buf_get_le16(struct buf_reader *r, uint16_t *v);
enum buf_status	buf_get_le32(struct buf_reader *r, uint32_t *v);
enum buf_status	buf_get_le64(struct buf_reader *r, uint64_t *v);

/*
 * MQTT Variable Byte Integer: 1 to 4 bytes, 7 bits each, least significant
 * first. BUF_SHORT when the input ends before the last byte; BUF_MALFORMED
 * when a 4th byte still has its continuation bit set, or when the encoding is
 * not the shortest one (a last byte of 0 after a continuation byte). Neither
 * failure advances the reader; BUF_MALFORMED wins over BUF_SHORT as soon as
 * the bytes present prove it.
 */
enum buf_status	buf_get_varint(struct buf_reader *r, uint32_t *v);

/* The next n bytes as a view into the input: BUF_OK or BUF_SHORT. */
enum buf_status	buf_get_bytes(struct buf_reader *r, size_t n, struct buf_view *v);

/*
 * The next n bytes as a reader of their own, like ibuf_get_ibuf(): the parent
 * moves past them, the sub-reader cannot read beyond them. BUF_OK or BUF_SHORT.
 */
enum buf_status	buf_get_reader(struct buf_reader *r, size_t n, struct buf_reader *sub);

/*
 * A 16-bit big-endian length followed by that many bytes (MQTT Binary Data
 * and, before its UTF-8 check, UTF-8 Encoded String). BUF_OK, or BUF_SHORT
 * without consuming the length when the bytes are not all there.
 */
enum buf_status	buf_get_binary(struct buf_reader *r, struct buf_view *v);

/*
 * Start writing into out[0..cap). out is borrowed. With out NULL the writer
 * only counts: nothing is stored and it never runs out of space, which is how
 * encoders compute sizes with the code that writes.
 */
void		buf_writer_init(struct buf_writer *w, void *out, size_t cap);

/*
 * The puts append; after the first failure they only count, so check
 * buf_writer_status() once at the end. None of them fails loudly.
 */
void		buf_put_u8(struct buf_writer *w, uint8_t v);
void		buf_put_u16(struct buf_writer *w, uint16_t v);
void		buf_put_u32(struct buf_writer *w, uint32_t v);
void		buf_put_le16(struct buf_writer *w, uint16_t v);
void		buf_put_le32(struct buf_writer *w, uint32_t v);
void		buf_put_le64(struct buf_writer *w, uint64_t v);
/* Minimal encoding; v above BUF_VARINT_MAX records BUF_RANGE. */
void		buf_put_varint(struct buf_writer *w, uint32_t v);
void		buf_put_bytes(struct buf_writer *w, const void *p, size_t n);
/* 16-bit length then the bytes; n above BUF_BINARY_MAX records BUF_RANGE. */
void		buf_put_binary(struct buf_writer *w, const void *p, size_t n);

/* Bytes put so far, including those that did not fit. */
size_t		buf_written(const struct buf_writer *w);

/* BUF_OK, or the first of BUF_NO_SPACE / BUF_RANGE that happened. */
enum buf_status	buf_writer_status(const struct buf_writer *w);

/* Bytes a varint of v takes: 1 to 4, or 0 when v is above BUF_VARINT_MAX. */
size_t		buf_varint_size(uint32_t v);

/* A view of a NUL-terminated string, without the NUL. s is borrowed. */
struct buf_view	buf_cstr(const char *s);

/* Same length and same bytes. */
bool		buf_view_eq(struct buf_view a, struct buf_view b);

/* Static English text for a status. */
const char	*buf_strerror(enum buf_status st);

#endif
