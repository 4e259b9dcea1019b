/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of our
 * files: every queue record, segment header and checkpoint, every record of
 * the broker's state file. Software, table-driven, eight bytes at a time for
 * long inputs. Pure but for its lookup tables, built once on first use by
 * whichever thread gets there first (pthread_once), so any thread may call it.
 */
#ifndef IOTB_CRC32C_H
#define IOTB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continue a CRC-32C over p[0..n): start with crc 0, feed the result of one
 * call into the next. crc32c_update(0, "123456789", 9) is 0xE3069283. p is
 * only read, and may be NULL when n is 0.
 */
uint32_t	crc32c_update(uint32_t crc, const void *p, size_t n);

#endif /* IOTB_CRC32C_H */
