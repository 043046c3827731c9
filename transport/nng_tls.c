/*
 * TLS for the nng transport: see transport/nng_tls.h and docs/security.md.
 *
 * nng 1.5.2 (Debian 12, built with mbedTLS 2.28) offers no way to read a
 * peer's certificate, so the binding of a server id to a certificate is
 * made by the handshake itself: the configuration of each dedicated
 * listener and of each dialer carries the name the peer's certificate must
 * hold ("rlog-<id>"), and mbedTLS refuses a certificate that does not hold
 * it (subject alternative DNS names, else the common name), on the server
 * side as on the client side.
 */
#include "transport/nng_tls.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/supplemental/tls/tls.h>

#include "rlog/vfs.h"

#define PEM_MAX (1u << 20) /* a certificate chain, a key: far below */

struct rlg_tls {
    char *cert, *key, *ca; /* PEM text, NUL-terminated */
};

bool rlg_tls_url(const char *url)
{
    return strncmp(url, "tls+tcp://", 10) == 0 || strncmp(url, "tls+tcp4://", 11) == 0 ||
           strncmp(url, "tls+tcp6://", 11) == 0;
}

/* The whole file at `path` as a NUL-terminated string (malloc'd). */
static int pem_read(const char *what, const char *path, char **out, char *err, size_t errcap)
{
    rlog_vfs *v = rlog_vfs_posix();
    rlog_file *f = NULL;
    uint64_t size = 0;
    size_t done = 0;
    char *buf = NULL;
    *out = NULL;
    int e = v->open(v, path, RLOG_VFS_RDONLY, &f);
    if (e == 0) {
        e = v->size(v, f, &size);
    }
    if (e == 0 && (size == 0 || size > PEM_MAX)) {
        v->close(v, f);
        snprintf(err, errcap, "TLS %s file '%s': %" PRIu64 " bytes (expected 1..%u)", what, path,
                 size, PEM_MAX);
        return RLOG_EINVAL;
    }
    if (e == 0 && (buf = malloc((size_t)size + 1)) == NULL) {
        v->close(v, f);
        snprintf(err, errcap, "TLS %s file '%s': out of memory", what, path);
        return RLOG_ENOMEM;
    }
    if (e == 0) {
        e = v->pread(v, f, buf, (size_t)size, 0, &done);
        e = e == 0 && done != size ? EIO : e;
    }
    if (f != NULL) {
        v->close(v, f);
    }
    if (e != 0) {
        free(buf);
        snprintf(err, errcap, "TLS %s file '%s': %s", what, path, strerror(e));
        return rlog_from_errno(e);
    }
    buf[size] = '\0';
    *out = buf;
    return 0;
}

/* A configuration for one listener (server) or dialer (client). */
static int tls_config(const rlg_tls *tls, nng_tls_mode mode, uint64_t peer_id, nng_tls_config **out)
{
    nng_tls_config *c;
    int rv = nng_tls_config_alloc(&c, mode);
    if (rv != 0) {
        return rv;
    }
    rv = nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED);
    if (rv == 0) {
        rv = nng_tls_config_ca_chain(c, tls->ca, NULL);
    }
    if (rv == 0) {
        rv = nng_tls_config_own_cert(c, tls->cert, tls->key, NULL);
    }
    if (rv == 0 && peer_id != 0) {
        char name[32];
        snprintf(name, sizeof name, "rlog-%" PRIu64, peer_id);
        rv = nng_tls_config_server_name(c, name);
    }
    if (rv != 0) {
        nng_tls_config_free(c);
        return rv;
    }
    *out = c;
    return 0;
}

void rlg_tls_free(rlg_tls *tls)
{
    if (tls != NULL) {
        free(tls->cert);
        free(tls->key);
        free(tls->ca);
        free(tls);
    }
}

int rlg_tls_load(const rlog_transport_config *cfg, rlg_tls **out, char *err, size_t errcap)
{
    *out = NULL;
    if (cfg->tls_ca_file == NULL) {
        return 0;
    }
    rlg_tls *tls = calloc(1, sizeof *tls);
    if (tls == NULL) {
        snprintf(err, errcap, "TLS: out of memory");
        return RLOG_ENOMEM;
    }
    int rc = pem_read("certificate", cfg->tls_cert_file, &tls->cert, err, errcap);
    if (rc == 0) {
        rc = pem_read("key", cfg->tls_key_file, &tls->key, err, errcap);
    }
    if (rc == 0) {
        rc = pem_read("CA", cfg->tls_ca_file, &tls->ca, err, errcap);
    }
    if (rc != 0) {
        rlg_tls_free(tls);
        return rc;
    }
    /* Parse once now, so that a bad file fails init and names itself. */
    nng_tls_config *c;
    int rv = nng_tls_config_alloc(&c, NNG_TLS_MODE_SERVER);
    if (rv != 0) {
        rlg_tls_free(tls);
        snprintf(err, errcap, "TLS: nng has no TLS support: %s", nng_strerror(rv));
        return RLOG_EINVAL;
    }
    if ((rv = nng_tls_config_ca_chain(c, tls->ca, NULL)) != 0) {
        snprintf(err, errcap, "TLS: CA file '%s' holds no usable certificate: %s", cfg->tls_ca_file,
                 nng_strerror(rv));
    } else if ((rv = nng_tls_config_own_cert(c, tls->cert, tls->key, NULL)) != 0) {
        snprintf(err, errcap,
                 "TLS: certificate file '%s' with key file '%s' is not usable (not PEM, an "
                 "encrypted key, or a key that does not match): %s",
                 cfg->tls_cert_file, cfg->tls_key_file, nng_strerror(rv));
    }
    nng_tls_config_free(c);
    if (rv != 0) {
        rlg_tls_free(tls);
        return RLOG_EINVAL;
    }
    *out = tls;
    return 0;
}

int rlg_tls_listener(const rlg_tls *tls, nng_listener l, uint64_t peer_id)
{
    nng_tls_config *c;
    int rv = tls_config(tls, NNG_TLS_MODE_SERVER, peer_id, &c);
    if (rv == 0) {
        rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, c);
        nng_tls_config_free(c); /* the listener holds it */
    }
    return rv;
}

int rlg_tls_dialer(const rlg_tls *tls, nng_dialer d, uint64_t peer_id)
{
    nng_tls_config *c;
    int rv = tls_config(tls, NNG_TLS_MODE_CLIENT, peer_id, &c);
    if (rv == 0) {
        rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, c);
        nng_tls_config_free(c);
    }
    return rv;
}

/* The statistics scope named `kind` ("listener", "dialer") whose "id" is
 * id, anywhere under st. (nng 1.5.2's nng_stat_find_listener can return
 * another listener's scope, so the tree is walked here.) */
static nng_stat *stat_scope(nng_stat *st, const char *kind, uint64_t id)
{
    for (; st != NULL; st = nng_stat_next(st)) {
        if (strcmp(nng_stat_name(st), kind) == 0) {
            nng_stat *sid = nng_stat_find(st, "id");
            if (sid != NULL && nng_stat_value(sid) == id) {
                return st;
            }
        }
        nng_stat *in = stat_scope(nng_stat_child(st), kind, id);
        if (in != NULL) {
            return in;
        }
    }
    return NULL;
}

uint64_t rlg_tls_failures(nng_stat *snap, const nng_listener *l, const nng_dialer *d)
{
    nng_stat *s = l != NULL ? stat_scope(snap, "listener", (uint64_t)nng_listener_id(*l))
                            : stat_scope(snap, "dialer", (uint64_t)nng_dialer_id(*d));
    /* mbedTLS's refusals arrive as "auth" (certificate not verified) or
     * "other" (e.g. the peer's alert), a cut handshake as "proto". */
    static const char *const kinds[] = {"auth", "other", "proto"};
    uint64_t k = 0;
    for (size_t i = 0; s != NULL && i < 3; i++) {
        nng_stat *v = nng_stat_find(s, kinds[i]);
        k += v != NULL ? nng_stat_value(v) : 0;
    }
    return k;
}
