#include "util/tnode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t tnode_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

rlog_msg tnode_hello(uint64_t id, uint32_t proto, uint64_t flags)
{
    rlog_msg m;
    memset(&m, 0, sizeof m);
    m.type = RLOG_MSG_HELLO;
    m.u.hello.server_id = id;
    m.u.hello.address = "";
    m.u.hello.protocol_version = proto;
    m.u.hello.role = RLOG_ROLE_RAFT;
    m.u.hello.flags = flags;
    return m;
}

static void tnode_up(void *data, uint64_t peer, const rlog_msg_hello *h)
{
    tnode *nd = data;
    (void)h;
    assert_true(peer < TNODE_MAXID);
    nd->ups[peer]++;
}

static void tnode_down(void *data, uint64_t peer, int reason)
{
    tnode *nd = data;
    (void)reason;
    assert_true(peer < TNODE_MAXID);
    nd->downs[peer]++;
}

void tnode_keep_line(char *log, size_t *loglen, size_t cap, rlog_level level, const char *msg)
{
    if (getenv("RLOG_TEST_VERBOSE") != NULL) {
        fprintf(stderr, "[%d] %s\n", (int)level, msg);
    }
    size_t len = strlen(msg);
    if (*loglen + len + 2 < cap) {
        memcpy(log + *loglen, msg, len);
        *loglen += len;
        log[(*loglen)++] = '\n';
        log[*loglen] = '\0';
    }
}

static void tnode_logger(void *data, rlog_level level, const char *msg)
{
    tnode *nd = data;
    tnode_keep_line(nd->log, &nd->loglen, sizeof nd->log, level, msg);
}

int tnode_try_new(uint64_t id, const rlog_transport_config *cfg, tnode **out)
{
    tnode *nd = calloc(1, sizeof *nd);
    assert_non_null(nd);
    *out = NULL;
    nd->id = id;
    assert_int_equal(rlog_transport_nng_new(&nd->t), 0);
    rlog_transport_config c = *cfg;
    c.server_id = id;
    c.role = c.role ? c.role : RLOG_ROLE_RAFT;
    c.logger = tnode_logger;
    c.logger_data = nd;
    rlog_transport_events ev = {.data = nd, .peer_up = tnode_up, .peer_down = tnode_down};
    int rc = nd->t->init(nd->t, &c, &ev);
    if (rc == 0 && c.address != NULL && c.address[0] != '\0') {
        rc = nd->t->listen(nd->t);
    }
    if (rc != 0) {
        tnode_logger(nd, RLOG_LEVEL_ERROR, nd->t->errmsg);
        fprintf(stderr, "tnode %llu: %s\n", (unsigned long long)id, nd->t->errmsg);
        nd->t->close(nd->t);
        free(nd);
        return rc;
    }
    *out = nd;
    return 0;
}

tnode *tnode_new(uint64_t id, const rlog_transport_config *cfg)
{
    tnode *nd;
    assert_int_equal(tnode_try_new(id, cfg, &nd), 0);
    return nd;
}

void tnode_free(tnode *nd)
{
    if (nd != NULL) {
        nd->t->close(nd->t);
        free(nd);
    }
}

const char *tnode_addr(tnode *nd)
{
    return nd->t->local_address(nd->t);
}

void tnode_pump(tnode **ns, size_t k)
{
    int ran = 0;
    for (size_t i = 0; i < k; i++) {
        if (ns[i] != NULL) {
            int r = ns[i]->t->poll(ns[i]->t, 0);
            assert_true(r >= 0);
            ran += r;
        }
    }
    if (ran == 0 && k > 0 && ns[0] != NULL) {
        assert_true(ns[0]->t->poll(ns[0]->t, 1) >= 0);
    }
}

static void tnode_sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0) {
        fail_msg("'%s' failed (%d): is the openssl command installed (scripts/deps.sh)?", cmd, rc);
    }
}

void tnode_tls_ca(const char *dir, const char *ca)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
             "-nodes -keyout %s.key -out %s.crt -days 2 -subj /CN=rlog-test-%s >/dev/null 2>&1",
             dir, ca, ca, ca);
    tnode_sh(cmd);
}

void tnode_tls_cert(const char *dir, const char *ca, const char *name, const char *cn)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s.key -out %s.csr -subj /CN=%s >/dev/null 2>&1 && openssl x509 -req -in "
             "%s.csr -CA %s.crt -CAkey %s.key -CAcreateserial -out %s.crt -days 2 >/dev/null 2>&1",
             dir, name, name, cn, name, ca, ca, name);
    tnode_sh(cmd);
}

void tnode_tls_cfg(rlog_transport_config *cfg, const char *dir, const char *ca, const char *name)
{
    static char cert[1024], key[1024], cafile[1024];
    snprintf(cert, sizeof cert, "%s/%s.crt", dir, name);
    snprintf(key, sizeof key, "%s/%s.key", dir, name);
    snprintf(cafile, sizeof cafile, "%s/%s.crt", dir, ca);
    cfg->tls_cert_file = cert;
    cfg->tls_key_file = key;
    cfg->tls_ca_file = cafile;
}
