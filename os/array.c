/* Growing an array (os/array.h). */
#include "os/array.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rlog/common.h"

int rlg_array_grow(void *pp, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : first;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return RLOG_ENOMEM;
        c *= 2;
    }
    if (elem && c > SIZE_MAX / elem)
        return RLOG_ENOMEM;
    void *old; /* through memcpy: *pp is any object pointer type */
    memcpy(&old, pp, sizeof old);
    void *n = realloc(old, c * elem);
    if (!n)
        return RLOG_ENOMEM;
    memcpy(pp, &n, sizeof n);
    *cap = c;
    return 0;
}
