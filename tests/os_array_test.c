/* os/array.c, the one rule for growing an array: the capacity starts at
 * `first` and doubles until it holds what is needed, the elements already
 * there are kept, and a size that overflows size_t is
 * RLOG_ENOMEM with the array and its capacity unchanged; the zero-filling
 * variant zeroes exactly what it adds. */
#include "util/testutil.h"

#include <stdint.h>
#include <stdlib.h>

#include "os/array.h"

static void test_grow_doubles_and_keeps(void **state)
{
    (void)state;
    uint64_t *v = NULL;
    size_t cap = 0;
    assert_int_equal(rlg_array_grow(&v, &cap, 0, sizeof *v, 8), 0);
    assert_null(v); /* nothing needed: nothing allocated */
    assert_int_equal(cap, 0);
    for (size_t n = 0; n < 1000; n++) {
        assert_int_equal(rlg_array_grow(&v, &cap, n + 1, sizeof *v, 8), 0);
        assert_true(cap >= n + 1);
        v[n] = n * 7;
    }
    assert_int_equal(cap, 1024); /* 8, 16, ..., 1024 */
    for (size_t n = 0; n < 1000; n++)
        assert_int_equal(v[n], n * 7);
    /* a jump past several doublings lands on the first power that holds it */
    assert_int_equal(rlg_array_grow(&v, &cap, 5000, sizeof *v, 8), 0);
    assert_int_equal(cap, 8192);
    assert_int_equal(v[999], 999 * 7);
    free(v);
}

static void test_overflow_leaves_the_array(void **state)
{
    (void)state;
    uint32_t *v = NULL;
    size_t cap = 0;
    assert_int_equal(rlg_array_grow(&v, &cap, 10, sizeof *v, 4), 0);
    assert_int_equal(cap, 16);
    v[9] = 42;
    uint32_t *before = v;
    assert_int_equal(rlg_array_grow(&v, &cap, SIZE_MAX / 2 + 2, sizeof *v, 4), RLOG_ENOMEM);
    /* elements so large that the bytes overflow (no allocation is tried) */
    assert_int_equal(rlg_array_grow(&v, &cap, 17, SIZE_MAX / 8, 4), RLOG_ENOMEM);
    assert_ptr_equal(v, before);
    assert_int_equal(cap, 16);
    assert_int_equal(v[9], 42);
    free(v);
}

/* rlg_array_grow_zero: what it adds is zero, what was there is kept, and a
 * failed growth changes nothing (the simulator's models rely on both). */
static void test_grow_zero_fills_only_the_new_part(void **state)
{
    (void)state;
    static const size_t need[] = {3, 4, 9, 40}, caps[] = {4, 4, 16, 64};
    uint64_t *v = NULL;
    size_t cap = 0, filled = 0;
    for (size_t k = 0; k < sizeof need / sizeof need[0]; k++) {
        assert_int_equal(rlg_array_grow_zero(&v, &cap, need[k], sizeof *v, 4), 0);
        assert_int_equal(cap, caps[k]);
        for (size_t i = 0; i < cap; i++) /* kept below `filled`, zero above */
            assert_int_equal(v[i], i < filled ? i * 3 + 1 : 0);
        for (; filled < cap; filled++)
            v[filled] = filled * 3 + 1;
    }
    assert_int_equal(rlg_array_grow_zero(&v, &cap, SIZE_MAX / 2 + 2, sizeof *v, 4), RLOG_ENOMEM);
    assert_int_equal(cap, 64);
    for (size_t i = 0; i < cap; i++)
        assert_int_equal(v[i], i * 3 + 1);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_doubles_and_keeps),
        cmocka_unit_test(test_overflow_leaves_the_array),
        cmocka_unit_test(test_grow_zero_fills_only_the_new_part),
    };
    return TU_RUN("os_array", tests, NULL, NULL);
}
