/*
 * libFuzzer target for the request head parser (lib/util/httpreq.c). The
 * first input byte picks the size limit, the rest is the request. Beyond not
 * crashing: every view lies inside the head, path and query inside the
 * target; a head that parses needs more when cut anywhere short of its end
 * and parses the same from exactly its own bytes; and a verdict reached on a
 * prefix of the input (half of it) is the verdict on the whole.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util/httpreq.h"

#define INPUT_MAX	(8 * 1024)

static const size_t limits[] = { 4096, 16, 64, 300 };

static void
inside(struct buf_view v, struct buf_view outer)
{
	check(v.len == 0 || (v.ptr >= outer.ptr &&
	    v.ptr + v.len <= outer.ptr + outer.len));
	sink += touch(v);
}

static void
check_ok(const uint8_t *in, size_t len, size_t max, const struct httpreq *r)
{
	struct buf_view head = { in, r->head_len };
	struct httpreq again;

	check(r->head_len >= 16 && r->head_len <= len && r->head_len <= max);
	check(in[r->head_len - 2] == '\r' && in[r->head_len - 1] == '\n');
	check(r->method.len > 0 && r->target.len > 0);
	check(r->minor >= 0 && r->minor <= 9);
	check(r->nheaders <= HTTPREQ_MAX_HEADERS);
	inside(r->method, head);
	inside(r->target, head);
	inside(r->path, r->target);
	inside(r->query, r->target);
	check(r->path.len == 0 || r->path.ptr == r->target.ptr);
	check(memchr(r->target.ptr, '#', r->target.len) == NULL);
	/* its own bytes, and any cut short of them */
	check(httpreq_parse(in, r->head_len, max, &again) == HTTPREQ_OK);
	check(again.head_len == r->head_len && again.nheaders == r->nheaders);
	check(httpreq_parse(in, r->head_len - 1, max, &again) ==
	    HTTPREQ_NEED_MORE);
	check(httpreq_parse(in, r->head_len / 2, max, &again) ==
	    HTTPREQ_NEED_MORE);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct httpreq r, half;
	enum httpreq_status st, st_half;
	size_t max;

	if (size < 1 || size > INPUT_MAX)
		return 0;
	max = limits[data[0] % (sizeof(limits) / sizeof(limits[0]))];
	data++;
	size--;
	st = httpreq_parse(data, size, max, &r);
	check(st == HTTPREQ_OK || st == HTTPREQ_NEED_MORE ||
	    st == HTTPREQ_MALFORMED || st == HTTPREQ_TOO_BIG);
	check(httpreq_strerror(st) != NULL);
	if (st == HTTPREQ_OK)
		check_ok(data, size, max, &r);
	if (st == HTTPREQ_NEED_MORE)
		check(size < max);
	st_half = httpreq_parse(data, size / 2, max, &half);
	if (st_half != HTTPREQ_NEED_MORE) {
		check(st_half == st);
		check(st != HTTPREQ_OK || half.head_len == r.head_len);
	}
	return 0;
}
