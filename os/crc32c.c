/* CRC32C over ISA-L (see os/crc32c.h). */
#include "os/crc32c.h"

#include <isa-l/crc.h>

uint32_t rlg_crc32c_update(uint32_t state, const void *buf, size_t len)
{
    /* crc32_iscsi takes an int length: feed it in pieces. */
    const unsigned char *p = buf;
    while (len > 0) {
        size_t n = len > (1u << 30) ? (1u << 30) : len;
        state = crc32_iscsi((unsigned char *)p, (int)n, state);
        p += n;
        len -= n;
    }
    return state;
}

uint32_t rlg_crc32c(const void *buf, size_t len)
{
    return ~rlg_crc32c_update(0xffffffffu, buf, len);
}
