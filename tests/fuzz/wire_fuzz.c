/* libFuzzer target for the wire decoder (include/rlog/wire.h).
 *
 * Property: any input either decodes or is refused with RLOG_EPROTO and a
 * message; nothing reads outside the input (ASan) or allocates more than
 * O(len). What decodes re-encodes, and the re-encoding decodes to an equal
 * message whose encoding is byte-identical (msgpack-c's packer is
 * canonical). Build and run:
 *   cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DRLOG_FUZZ=ON
 *   cmake --build build-fuzz --target wire_fuzz
 *   ./build-fuzz/wire_fuzz -max_total_time=60 [CORPUS_DIR]
 * A seed corpus: RLOG_WIRE_CORPUS=DIR ./build-wire/transport_codec_test */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rlog/wire.h"
#include "transport/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed property: crash loudly so libFuzzer records the input. */
static void fuzz_check(int ok)
{
    if (!ok) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rlog_msg m;
    char err[256];
    int rc = rlog_msg_decode(data, size, 0, &m, err, sizeof err);
    if (rc != 0) {
        fuzz_check(rc == RLOG_EPROTO && err[0] != '\0' && m.alloc_ == NULL);
        return 0;
    }
    void *buf = NULL;
    size_t len = 0;
    fuzz_check(rlog_msg_encode(&m, &buf, &len) == 0);
    fuzz_check(len <= size); /* canonical encoding is never longer */
    rlog_msg again;
    fuzz_check(rlog_msg_decode(buf, len, 0, &again, err, sizeof err) == 0);
    fuzz_check(rlg_msg_equal(&m, &again));
    void *buf2 = NULL;
    size_t len2 = 0;
    fuzz_check(rlog_msg_encode(&again, &buf2, &len2) == 0);
    fuzz_check(len2 == len && memcmp(buf, buf2, len) == 0);
    rlog_free(buf2);
    rlog_msg_free(&again);
    rlog_free(buf);
    rlog_msg_free(&m);
    return 0;
}
