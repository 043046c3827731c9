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

int rlg_array_grow_zero(void *pp, size_t *cap, size_t need, size_t elem, size_t first)
{
    size_t old = *cap;
    int rv = rlg_array_grow(pp, cap, need, elem, first);
    if (rv == 0 && *cap > old) {
        uint8_t *p;
        memcpy(&p, pp, sizeof p);
        memset(p + old * elem, 0, (*cap - old) * elem);
    }
    return rv;
}
