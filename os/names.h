/* Naming an enumerated value: one lookup in a table indexed by the value
 * ([VALUE] = "name"), for every value-to-name function. */
#ifndef RLG_OS_NAMES_H
#define RLG_OS_NAMES_H

#include <stddef.h>
#include <stdint.h>

/* names[v] of a table of count slots; "unknown" when v is past the table
 * or its slot is empty. */
static inline const char *rlg_name_at(const char *const *names, size_t count, uint64_t v)
{
    return v < count && names[v] != NULL ? names[v] : "unknown";
}

#endif /* RLG_OS_NAMES_H */
