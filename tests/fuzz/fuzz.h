/*
 * What the fuzz targets share: the libFuzzer entry point's prototype, an
 * oracle check that aborts (a finding), and a way to read every byte of a
 * view so that ASan sees one that overruns its input.
 */
#ifndef IOTB_FUZZ_H
#define IOTB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where walks leave their sums, so the reads they make are not optimised out. */
static volatile unsigned sink;

static inline void
check(int ok)
{
	if (!ok)
		abort();
}

static inline unsigned
touch(struct buf_view v)
{
	unsigned sum = 0;

	for (size_t i = 0; i < v.len; i++)
		sum += v.ptr[i];
	return sum;
}

#endif
