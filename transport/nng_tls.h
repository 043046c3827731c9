/*
 * TLS for the nng transport (docs/security.md): the PEM files of
 * rlog_transport_config read once, one nng_tls_config per listener or
 * dialer that binds the peer's server id to its certificate, and the
 * counters nng keeps of failed TLS handshakes (nng 1.5.2 reports them no
 * other way). Internal to the nng transport (transport/nng*.c).
 */
#ifndef RLG_TRANSPORT_NNG_TLS_H
#define RLG_TRANSPORT_NNG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "rlog/transport.h"

typedef struct rlg_tls rlg_tls;

/* Whether url names a TLS transport (tls+tcp://, tls+tcp4://, tls+tcp6://). */
bool rlg_tls_url(const char *url);

/* Reads cfg's three PEM files (through the posix vfs) and checks that nng
 * accepts them as a CA chain and a certificate with its key. *out is NULL
 * when cfg asks for no TLS. Returns 0, RLOG_EINVAL / RLOG_EIO / RLOG_ENOMEM
 * with a message naming the file in err. */
int rlg_tls_load(const rlog_transport_config *cfg, rlg_tls **out, char *err, size_t errcap);
void rlg_tls_free(rlg_tls *tls);

/* Sets the TLS configuration of a listener (before it starts): our
 * certificate, a client certificate required and chained to the CA, and,
 * when peer_id != 0, named "rlog-<peer_id>". Returns an nng error. */
int rlg_tls_listener(const rlg_tls *tls, nng_listener l, uint64_t peer_id);
/* The same for a dialer: the server's certificate must chain to the CA
 * and, when peer_id != 0, be named "rlog-<peer_id>". */
int rlg_tls_dialer(const rlg_tls *tls, nng_dialer d, uint64_t peer_id);

/* Connections that failed while being set up (nng's "auth", "other" and
 * "proto" counters: with TLS, failed handshakes) on the listener (when l
 * is non-NULL) or dialer, from a statistics snapshot (nng_stats_get). */
uint64_t rlg_tls_failures(nng_stat *snap, const nng_listener *l, const nng_dialer *d);

#endif
