/*
 * TLS with mutual authentication in the nng transport (docs/security.md):
 * certificates from a throwaway CA made at test time with the `openssl`
 * command; a peer with a good certificate gets in, one without a
 * certificate, with one from another CA, or with one named for another id
 * is refused with a log line that says so; the configuration is checked
 * (tls+tcp:// exactly when TLS is on, unusable files named). Shipping over
 * TLS is in tests/transport_ship_test.c. Loopback only; bounded waits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "util/testutil.h"
#include "util/tnode.h"

static char *dir; /* the certificates, made once for every test */

static int group_setup(void **state)
{
    (void)state;
    dir = tu_mkdtemp("tls");
    tnode_tls_ca(dir, "ca");
    tnode_tls_ca(dir, "ca2");
    tnode_tls_cert(dir, "ca", "n1", "rlog-1");
    tnode_tls_cert(dir, "ca", "n2", "rlog-2");
    tnode_tls_cert(dir, "ca", "n3", "rlog-3");
    tnode_tls_cert(dir, "ca2", "x2", "rlog-2"); /* the right name, another CA */
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tu_rmdir_r(dir);
    free(dir);
    return 0;
}

/* A TLS node with server id `id` using certificate `name` from CA `ca`;
 * listening on tls+tcp://127.0.0.1:0 when `listen`. */
static tnode *tls_node(uint64_t id, const char *ca, const char *name, bool listen)
{
    rlog_transport_config c;
    rlog_transport_config_init(&c);
    c.address = listen ? "tls+tcp://127.0.0.1:0" : "";
    c.handshake_ms = 1000; /* refusals show at the deadline: keep it short */
    tnode_tls_cfg(&c, dir, ca, name);
    return tnode_new(id, &c);
}

static int ups_total(const tnode *nd)
{
    int k = 0;
    for (int i = 0; i < TNODE_MAXID; i++) {
        k += nd->ups[i];
    }
    return k;
}

/* Property: two servers with certificates from the same CA, each named
 * after its id, connect over tls+tcp:// (the dialer names the id it
 * expects, and the listener binds the dialer's claimed id to its
 * certificate on the dedicated connection); a dialer that accepts any id
 * (0) gets in too. */
static void test_tls_good(void **state)
{
    (void)state;
    tnode *l = tls_node(1, "ca", "n1", true);
    assert_non_null(strstr(tnode_addr(l), "tls+tcp://127.0.0.1:"));
    tnode *d = tls_node(2, "ca", "n2", false);
    assert_int_equal(d->t->connect(d->t, 1, tnode_addr(l)), 0);
    TNODE_PUMP_UNTIL(l->ups[2] == 1 && d->ups[1] == 1, l, d);
    tnode *e = tls_node(3, "ca", "n3", false);
    assert_int_equal(e->t->connect(e->t, 0, tnode_addr(l)), 0);
    TNODE_PUMP_UNTIL(l->ups[3] == 1 && e->ups[1] == 1, l, d, e);
    if (strstr(l->log, "TLS handshake") != NULL) {
        /* seen twice under load ~15 (not reproduced in 6 runs): say what */
        printf("listener log:\n%s\ndialer 2 log:\n%s\ndialer 3 log:\n%s\n", l->log, d->log,
               e->log);
    }
    assert_null(strstr(l->log, "TLS handshake"));
    tnode_free(e);
    tnode_free(d);
    tnode_free(l);
}

/* Property: a client without a certificate (an nng req0 socket that
 * trusts our CA but presents nothing) never reaches the rendezvous: the
 * listener logs the failed TLS handshakes and no peer comes up. */
static void test_tls_no_certificate(void **state)
{
    (void)state;
    tnode *l = tls_node(1, "ca", "n1", true);
    nng_socket req;
    assert_int_equal(nng_req0_open(&req), 0);
    nng_dialer dl;
    assert_int_equal(nng_dialer_create(&dl, req, tnode_addr(l)), 0);
    nng_tls_config *tc;
    assert_int_equal(nng_tls_config_alloc(&tc, NNG_TLS_MODE_CLIENT), 0);
    char ca[1024];
    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    assert_int_equal(nng_tls_config_ca_file(tc, ca), 0);
    assert_int_equal(nng_dialer_set_ptr(dl, NNG_OPT_TLS_CONFIG, tc), 0);
    nng_tls_config_free(tc);
    assert_int_equal(nng_dialer_start(dl, NNG_FLAG_NONBLOCK), 0);
    TNODE_PUMP_UNTIL(strstr(l->log, "whose TLS handshake failed (no certificate") != NULL, l);
    nng_close(req);
    assert_int_equal(ups_total(l), 0);
    tnode_free(l);
}

/* Property: a follower whose certificate (with the right name, rlog-2)
 * comes from another CA is refused: the listener logs failed TLS
 * handshakes, the follower logs that its handshakes failed, and neither
 * side ever reports the other up. */
static void test_tls_other_ca(void **state)
{
    (void)state;
    tnode *l = tls_node(1, "ca", "n1", true);
    tnode *d = tls_node(2, "ca2", "x2", false);
    assert_int_equal(d->t->connect(d->t, 1, tnode_addr(l)), 0);
    TNODE_PUMP_UNTIL(strstr(l->log, "whose TLS handshake failed") != NULL &&
                         strstr(d->log, "TLS handshake(s) failed") != NULL,
                     l, d);
    assert_int_equal(ups_total(l), 0);
    assert_int_equal(ups_total(d), 0);
    tnode_free(d);
    tnode_free(l);
}

/* Property: ids are bound to certificates. A follower holding a good
 * certificate for rlog-3 that claims id 2 passes the public address (its
 * certificate is from our CA) but is refused on the dedicated connection
 * for server 2, with a log line naming the id and the certificate name;
 * the real server 2 then gets in. And a dialer that expects server 5 at
 * the address of server 1 refuses server 1's certificate. */
static void test_tls_claims_other_id(void **state)
{
    (void)state;
    tnode *l = tls_node(1, "ca", "n1", true);
    tnode *imp = tls_node(2, "ca", "n3", false);
    assert_int_equal(imp->t->connect(imp->t, 1, tnode_addr(l)), 0);
    TNODE_PUMP_UNTIL(strstr(l->log, "refused server 2") != NULL, l, imp);
    assert_non_null(strstr(l->log, "its certificate is not named rlog-2"));
    assert_int_equal(ups_total(l), 0);
    assert_int_equal(ups_total(imp), 0);
    tnode_free(imp);
    tnode *d = tls_node(2, "ca", "n2", false);
    assert_int_equal(d->t->connect(d->t, 1, tnode_addr(l)), 0);
    TNODE_PUMP_UNTIL(l->ups[2] == 1 && d->ups[1] == 1, l, d);
    tnode_free(d);

    tnode *w = tls_node(3, "ca", "n3", false);
    assert_int_equal(w->t->connect(w->t, 5, tnode_addr(l)), 0);
    TNODE_PUMP_UNTIL(strstr(w->log, "TLS handshake(s) failed") != NULL, l, w);
    assert_non_null(strstr(w->log, "not named rlog-5 (not server 5)"));
    assert_int_equal(ups_total(w), 0);
    tnode_free(w);
    tnode_free(l);
}

/* Property: the configuration is checked at init and connect: tls+tcp://
 * without the TLS files, tcp:// with them, a missing file and a file that
 * is not a certificate are each refused with RLOG_EINVAL (or the file's
 * error) and a message naming the problem. */
static void test_tls_config_errors(void **state)
{
    (void)state;
    rlog_transport_config c;
    tnode *nd;
    rlog_transport_config_init(&c);
    c.address = "tls+tcp://127.0.0.1:0";
    assert_int_equal(tnode_try_new(1, &c, &nd), RLOG_EINVAL);
    tnode_tls_cfg(&c, dir, "ca", "n1");
    c.address = "tcp://127.0.0.1:0";
    assert_int_equal(tnode_try_new(1, &c, &nd), RLOG_EINVAL);
    c.address = "";
    nd = tnode_new(1, &c);
    assert_int_equal(nd->t->connect(nd->t, 2, "tcp://127.0.0.1:9"), RLOG_EINVAL);
    assert_non_null(strstr(nd->t->errmsg, "use a tls+tcp:// address"));
    tnode_free(nd);
    char missing[1024];
    snprintf(missing, sizeof missing, "%s/missing.crt", dir);
    c.tls_cert_file = missing;
    assert_int_equal(tnode_try_new(1, &c, &nd), RLOG_ENOTFOUND);
    tnode_tls_cfg(&c, dir, "ca", "n1");
    c.tls_cert_file = c.tls_key_file; /* a key where the certificate belongs */
    assert_int_equal(tnode_try_new(1, &c, &nd), RLOG_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_good),          cmocka_unit_test(test_tls_no_certificate),
        cmocka_unit_test(test_tls_other_ca),      cmocka_unit_test(test_tls_claims_other_id),
        cmocka_unit_test(test_tls_config_errors),
    };
    return tu_run("transport_tls", tests, sizeof tests / sizeof tests[0], NULL, NULL, group_setup,
                  group_teardown);
}
