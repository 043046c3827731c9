/* Growing an array: the one rule for every array that grows by appends
 * (capacity doubles from a first size, overflow checked, the array left
 * as it was when memory runs out). */
#ifndef RLG_OS_ARRAY_H
#define RLG_OS_ARRAY_H

#include <stddef.h>

/* Makes the array *pp (elements of `elem` bytes, capacity *cap) hold at
 * least `need` elements: the capacity becomes `first` (when 0) doubled
 * until it is enough. pp is the address of the array's pointer (of any
 * object pointer type). 0, or RLOG_ENOMEM with *pp and *cap unchanged. */
int rlg_array_grow(void *pp, size_t *cap, size_t need, size_t elem, size_t first);
/* The same, and the elements it adds (from the old capacity to the new)
 * are zero. */
int rlg_array_grow_zero(void *pp, size_t *cap, size_t need, size_t elem, size_t first);

#endif /* RLG_OS_ARRAY_H */
