/* CRC32C (Castagnoli, reflected, init and final xor 0xffffffff), the one
 * checksum of rlog's formats, computed with ISA-L's crc32_iscsi. */
#ifndef RLG_OS_CRC32C_H
#define RLG_OS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Standard CRC32C of buf. */
uint32_t rlg_crc32c(const void *buf, size_t len);
/* Raw CRC state helper (no final inversion): state' = update(state, buf).
 * Start from 0xffffffff; the CRC is ~state. */
uint32_t rlg_crc32c_update(uint32_t state, const void *buf, size_t len);

#endif /* RLG_OS_CRC32C_H */
