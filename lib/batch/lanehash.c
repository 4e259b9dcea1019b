/*
 * Lane assignment by topic (see lanehash.h). The constants are FNV's 64-bit
 * offset basis and prime, MurmurHash3's fmix64 multipliers, and the 64-bit
 * linear congruential generator of the jump consistent hash paper.
 */
#include "batch/lanehash.h"

#include <assert.h>

uint64_t
lanehash_topic(const void *topic, size_t len)
{
	const uint8_t *p = topic;
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= UINT64_C(0x100000001b3);
	}
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64_C(0xc4ceb9fe1a85ec53);
	return h ^ h >> 33;
}

uint32_t
lanehash_pick(uint64_t hash, uint32_t n)
{
	int64_t b = -1, j = 0;

	assert(n >= 1);
	/*
	 * The paper's j = (b + 1) * (2^31 / ((key >> 33) + 1)) in doubles;
	 * (b + 1) * 2^31 fits 64 bits for any uint32_t n, and the integer
	 * quotient is the exact floor the double computation approximates.
	 */
	while (j < (int64_t)n) {
		b = j;
		hash = hash * UINT64_C(2862933555777941757) + 1;
		j = (int64_t)(((uint64_t)(b + 1) << 31) / ((hash >> 33) + 1));
	}
	return (uint32_t)b;
}
