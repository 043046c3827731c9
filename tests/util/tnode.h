/* A transport endpoint for tests (tests/transport_hostile_test.c,
 * tests/transport_tls_test.c): an nng transport whose events are counted
 * per peer id and whose log lines are kept, and bounded pump loops. Test
 * code only: fails the test (cmocka) on setup errors. */
#ifndef RLOG_TESTS_TNODE_H
#define RLOG_TESTS_TNODE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rlog/transport.h"

#define TNODE_MAXID   64
#define TNODE_LOGCAP  (256 * 1024)
#define TNODE_WAIT_MS 10000 /* what a bounded wait allows before the test fails */

typedef struct tnode {
    rlog_transport *t;
    uint64_t id;
    int ups[TNODE_MAXID], downs[TNODE_MAXID];
    char log[TNODE_LOGCAP]; /* every log line, '\n'-separated (kept from the start) */
    size_t loglen;
} tnode;

/* A node with server id `id` initialised with cfg (server_id, logger and
 * role are set here; role RLOG_ROLE_RAFT unless cfg says otherwise), and
 * listening when cfg->address is non-empty. Fails the test on an error. */
tnode *tnode_new(uint64_t id, const rlog_transport_config *cfg);
/* Same, returning init's (or listen's) error instead; *out NULL then. */
int tnode_try_new(uint64_t id, const rlog_transport_config *cfg, tnode **out);
void tnode_free(tnode *nd);
const char *tnode_addr(tnode *nd);
/* Polls each node once (waiting up to 1 ms on the first when none ran). */
void tnode_pump(tnode **ns, size_t k);
uint64_t tnode_now_ms(void);
/* A transport logger's body: appends msg and a newline to log (*loglen
 * bytes used of cap; a line that does not fit is dropped) and echoes it to
 * stderr when $RLOG_TEST_VERBOSE is set. */
void tnode_keep_line(char *log, size_t *loglen, size_t cap, rlog_level level, const char *msg);
/* A hello as a raw client would send it (address "", role Raft). */
rlog_msg tnode_hello(uint64_t id, uint32_t proto, uint64_t flags);

/* Throwaway certificates made with the `openssl` command (EC P-256, valid
 * for 2 days) in dir: tnode_tls_ca makes dir/<ca>.crt and .key, a CA;
 * tnode_tls_cert makes dir/<name>.crt and .key signed by that CA with the
 * common name `cn` (e.g. "rlog-7"). Fail the test when openssl fails. */
void tnode_tls_ca(const char *dir, const char *ca);
void tnode_tls_cert(const char *dir, const char *ca, const char *name, const char *cn);
/* Points cfg's TLS files at dir/<name>.crt, dir/<name>.key and
 * dir/<ca>.crt (static buffers: valid until the next call). */
void tnode_tls_cfg(rlog_transport_config *cfg, const char *dir, const char *ca, const char *name);

/* Pumps the nodes (of type T, polled by pump(T **, size_t)) until cond
 * holds; fails the test, naming the line and the condition, after wait_ms. */
#define TNODE_PUMP_UNTIL_OF(T, pump, wait_ms, cond, ...)                                           \
    do {                                                                                           \
        T *ns_[] = {__VA_ARGS__};                                                                  \
        uint64_t end_ = tnode_now_ms() + (wait_ms);                                                \
        while (!(cond)) {                                                                          \
            if (tnode_now_ms() > end_) {                                                           \
                fail_msg("%s:%d: timed out waiting for %s", __FILE__, __LINE__, #cond);            \
            }                                                                                      \
            pump(ns_, sizeof ns_ / sizeof ns_[0]);                                                 \
        }                                                                                          \
    } while (0)

/* Pumps the nodes (as above) for ms milliseconds. */
#define TNODE_PUMP_FOR_OF(T, pump, ms, ...)                                                        \
    do {                                                                                           \
        T *ns_[] = {__VA_ARGS__};                                                                  \
        uint64_t end_ = tnode_now_ms() + (ms);                                                     \
        while (tnode_now_ms() < end_) {                                                            \
            pump(ns_, sizeof ns_ / sizeof ns_[0]);                                                 \
        }                                                                                          \
    } while (0)

#define TNODE_PUMP_UNTIL(cond, ...)                                                                \
    TNODE_PUMP_UNTIL_OF(tnode, tnode_pump, TNODE_WAIT_MS, cond, __VA_ARGS__)
#define TNODE_PUMP_FOR(ms, ...) TNODE_PUMP_FOR_OF(tnode, tnode_pump, ms, __VA_ARGS__)

#endif
