/*
 * The nng transport: limits against strangers and TLS diagnostics.
 * transport/nng_internal.h describes the objects, the threads and the files.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "transport/nng_internal.h"

/* ------------------------------------------------------------------------
 * Limits against strangers (docs/security.md): the handshake deadline and
 * caps of the public address, caps on dedicated connections with a reserve
 * for known peers, take-overs, and what failed TLS handshakes say
 * ---------------------------------------------------------------------- */

static void host_of(nng_pipe p, host *h)
{
    nng_sockaddr sa;
    memset(h, 0, sizeof *h);
    if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0) {
        return;
    }
    if (sa.s_family == NNG_AF_INET) {
        h->family = NNG_AF_INET;
        memcpy(h->a, &sa.s_in.sa_addr, 4);
    } else if (sa.s_family == NNG_AF_INET6) {
        h->family = NNG_AF_INET6;
        memcpy(h->a, sa.s_in6.sa_addr, 16);
    }
}

static bool host_eq(const host *a, const host *b)
{
    return a->family == b->family && memcmp(a->a, b->a, sizeof a->a) == 0;
}

static const char *host_name(const host *h, char *buf, size_t cap)
{
    if (h->family == NNG_AF_INET) {
        snprintf(buf, cap, "%u.%u.%u.%u", h->a[0], h->a[1], h->a[2], h->a[3]);
    } else if (h->family == NNG_AF_INET6) {
        size_t k = 0;
        for (int i = 0; i < 16 && k < cap; i += 2) {
            k += (size_t)snprintf(buf + k, cap - k, i ? ":%x" : "%x",
                                  (unsigned)(h->a[i] << 8 | h->a[i + 1]));
        }
    } else {
        snprintf(buf, cap, "local");
    }
    return buf;
}

/* Is `id` a known peer: one we connect()ed or one listed in known_ids? */
static bool peer_known(const tn *n, uint64_t id)
{
    for (const dialer *d = n->dialers; d != NULL; d = d->next) {
        if (d->want_id == id) {
            return true;
        }
    }
    return rlg_transport_id_known(&n->cfg, id);
}

void rlg_nng_rdv_pipe_cb(nng_pipe p, nng_pipe_ev what, void *arg)
{
    tn *n = arg;
    rdv *r = &n->rdv;
    uint32_t id = (uint32_t)nng_pipe_id(p);
    bool reject = false;
    host h;
    if (what == NNG_PIPE_EV_ADD_PRE) {
        host_of(p, &h);
    }
    nng_mtx_lock(n->mtx);
    if (what == NNG_PIPE_EV_ADD_PRE) {
        unsigned same = 0;
        for (unsigned i = 0; i < r->nguests; i++) {
            same += host_eq(&r->guests[i].h, &h);
        }
        reject = r->nguests >= r->gcap || rlg_limits_guest_refused(&n->cfg, r->nguests, same);
        if (reject) {
            r->refused++;
        } else {
            guest *g = &r->guests[r->nguests++];
            g->pipe = p;
            g->h = h;
            g->since = nng_clock();
            g->spoke = false;
            r->trim = true;
        }
        rlg_nng_ev_queue_locked(&r->gev);
    } else if (what == NNG_PIPE_EV_REM_POST) {
        for (unsigned i = 0; i < r->nguests; i++) {
            if ((uint32_t)nng_pipe_id(r->guests[i].pipe) == id) {
                r->guests[i] = r->guests[--r->nguests];
                break;
            }
        }
    }
    nng_mtx_unlock(n->mtx);
    if (reject) {
        nng_pipe_close(p);
    }
}

/* Under mtx: the oldest guest that has not spoken (from host h when h is
 * non-NULL); -1 when there is none. */
static int guest_oldest_silent_locked(const rdv *r, const host *h)
{
    int best = -1;
    for (unsigned i = 0; i < r->nguests; i++) {
        const guest *g = &r->guests[i];
        if (!g->spoke && (h == NULL || host_eq(&g->h, h)) &&
            (best < 0 || g->since < r->guests[best].since)) {
            best = (int)i;
        }
    }
    return best;
}

/* Under mtx: a guest whose host has more than max_conns_per_host guests
 * (its oldest silent one), or -1. */
static int guest_over_host_cap_locked(const tn *n, const rdv *r)
{
    for (unsigned i = 0; i < r->nguests; i++) {
        unsigned same = 0;
        for (unsigned k = 0; k < r->nguests; k++) {
            same += host_eq(&r->guests[k].h, &r->guests[i].h);
        }
        if (rlg_limits_host_over(&n->cfg, same)) {
            int g = guest_oldest_silent_locked(r, &r->guests[i].h);
            if (g >= 0) {
                return g;
            }
        }
    }
    return -1;
}

nng_time rlg_nng_guests_run(tn *n, nng_time now)
{
    rdv *r = &n->rdv;
    nng_time next = TIME_NEVER;
    unsigned expired = 0, evicted = 0;
    uint64_t refused = 0;
    bool more = true;
    while (more) {
        nng_pipe batch[CLOSE_BATCH];
        unsigned k = 0;
        nng_mtx_lock(n->mtx);
        for (unsigned i = 0; i < r->nguests && k < CLOSE_BATCH;) {
            if (rlg_limits_expired(&n->cfg, r->guests[i].since, now)) {
                batch[k++] = r->guests[i].pipe;
                r->guests[i] = r->guests[--r->nguests];
                expired++;
            } else {
                i++;
            }
        }
        while (r->trim && k < CLOSE_BATCH) {
            int g = rlg_limits_guests_over(&n->cfg, r->nguests)
                        ? guest_oldest_silent_locked(r, NULL)
                        : guest_over_host_cap_locked(n, r);
            if (g < 0) {
                r->trim = false; /* within the caps (a new pipe sets it again) */
                break;
            }
            batch[k++] = r->guests[g].pipe;
            r->guests[g] = r->guests[--r->nguests];
            evicted++;
        }
        more = k == CLOSE_BATCH;
        for (unsigned i = 0; !more && i < r->nguests; i++) {
            nng_time due = r->guests[i].since + n->cfg.handshake_ms;
            next = due < next ? due : next;
        }
        refused += r->refused;
        r->refused = 0;
        nng_mtx_unlock(n->mtx);
        for (unsigned i = 0; i < k; i++) {
            nng_pipe_close(batch[i]);
        }
    }
    if (expired + evicted + refused > 0) {
        rlg_nng_log(
            n, RLOG_LEVEL_INFO,
            "rendezvous at %s: closed %u connection(s) silent past the %u ms handshake "
            "deadline, %u silent one(s) to stay within max_conns %u / max_conns_per_host %u, "
            "refused %" PRIu64 " on arrival",
            n->address, expired, n->cfg.handshake_ms, evicted, n->cfg.max_conns,
            n->cfg.max_conns_per_host, refused);
    }
    return next;
}

/* The guest of pipe p, under mtx; NULL when it is gone. */
static guest *guest_find_locked(rdv *r, nng_pipe p)
{
    for (unsigned i = 0; i < r->nguests; i++) {
        if (nng_pipe_id(r->guests[i].pipe) == nng_pipe_id(p)) {
            return &r->guests[i];
        }
    }
    return NULL;
}

bool rlg_nng_guest_request(tn *n, nng_pipe p, host *h, bool answered)
{
    nng_mtx_lock(n->mtx);
    guest *g = guest_find_locked(&n->rdv, p);
    bool ok = g != NULL && !g->spoke;
    if (ok) {
        *h = g->h;
        g->spoke = answered;
    }
    nng_mtx_unlock(n->mtx);
    return ok;
}

const char *rlg_nng_conns_admit(tn *n, uint64_t peer, const host *h, char *why, size_t cap,
                                conn **replace)
{
    unsigned total = 0, same = 0, hs = 0;
    bool up = false;
    conn *oldest = NULL;
    for (conn *c = n->conns; c != NULL; c = c->next) {
        up = up || (c->peer_id == peer && c->state == CONN_UP);
        if (c->outgoing || c->state == CONN_DEAD) {
            continue;
        }
        if (c->peer_id == peer && c->state == CONN_HANDSHAKE) {
            hs++;
            oldest = oldest == NULL || c->deadline < oldest->deadline ? c : oldest;
        }
        total++;
        same += host_eq(&c->h, h);
    }
    *replace = NULL;
    if (hs >= HS_PER_PEER) {
        total--;
        same -= host_eq(&oldest->h, h);
        *replace = oldest;
    }
    char hn[64];
    return rlg_limits_admit(&n->cfg, total, same, peer_known(n, peer), up,
                            host_name(h, hn, sizeof hn), why, cap);
}

bool rlg_nng_takeover_refused(tn *n, const conn *cur, const conn *cand)
{
    if (cur->outgoing || cand->outgoing || cur->state != CONN_UP || host_eq(&cur->h, &cand->h)) {
        return false;
    }
    char a[64], b[64];
    nng_time age = nng_clock() - cur->up_at;
    bool refuse = age < n->cfg.handshake_ms;
    rlg_nng_log(n, RLOG_LEVEL_WARN,
                "server %" PRIu64 ": a connection from host %s %s the one from host %s (up %" PRIu64
                " ms)%s",
                cur->peer_id, host_name(&cand->h, b, sizeof b),
                refuse ? "may not replace" : "replaces", host_name(&cur->h, a, sizeof a),
                (uint64_t)age, n->tls ? "" : "; without TLS a server id is only a claim");
    return refuse;
}

int rlg_nng_dial_start(tn *n, nng_socket sock, const char *url, uint64_t expect_id, nng_dialer *out)
{
    int rv = nng_dialer_create(out, sock, url);
    if (rv == 0 && n->tls != NULL) {
        rv = rlg_tls_dialer(n->tls, *out, expect_id);
    }
    if (rv == 0) {
        rv = nng_dialer_start(*out, NNG_FLAG_NONBLOCK);
    }
    return rv;
}

int rlg_nng_tls_url_check(tn *n, const char *what, const char *url)
{
    bool tls_url = rlg_tls_url(url);
    if (tls_url == (n->tls != NULL)) {
        return 0;
    }
    return rlg_nng_err(n, RLOG_EINVAL, "%s %s: %s", what, url,
                       tls_url ? "tls+tcp:// needs tls_cert_file, tls_key_file and tls_ca_file"
                               : "TLS is configured: use a tls+tcp:// address");
}

/* The end of a dialer's TLS failure line: when it asked for server `id`,
 * the name that server's certificate must hold (another member listening
 * at that address, e.g. one posing as the leader, fails on it). */
static const char *tls_name_hint(uint64_t id, char *buf, size_t cap)
{
    if (id == 0) {
        return "";
    }
    snprintf(buf, cap, " or not named rlog-%" PRIu64 " (not server %" PRIu64 ")", id, id);
    return buf;
}

void rlg_nng_tls_explain(tn *n, const conn *c, nng_stat **snap)
{
    if (n->tls == NULL || (*snap == NULL && nng_stats_get(snap) != 0)) {
        return;
    }
    uint64_t k =
        c->outgoing ? rlg_tls_failures(*snap, NULL, &c->dl) : rlg_tls_failures(*snap, &c->l, NULL);
    if (k == 0) {
        return;
    }
    if (c->outgoing) {
        char name[80];
        rlg_nng_log(n, RLOG_LEVEL_WARN,
                    "connection to %s (server %" PRIu64 "): %" PRIu64
                    " TLS handshake(s) failed: it refused our certificate, or its certificate is "
                    "not from our CA%s",
                    c->where, c->peer_id, k, tls_name_hint(c->peer_id, name, sizeof name));
    } else {
        rlg_nng_log(n, RLOG_LEVEL_WARN,
                    "refused server %" PRIu64 " at %s: %" PRIu64
                    " TLS handshake(s) failed: its certificate is not named rlog-%" PRIu64
                    " or not from our CA (a peer claiming another's id?)",
                    c->peer_id, c->where, k, c->peer_id);
    }
}

nng_time rlg_nng_tls_report(tn *n, nng_time now, nng_stat **snap)
{
    rdv *r = &n->rdv;
    if (n->tls == NULL || !r->open) {
        return TIME_NEVER;
    }
    if (now < r->tls_check) {
        return r->tls_check;
    }
    r->tls_check = now + TLS_REPORT_MS;
    if (*snap == NULL && nng_stats_get(snap) != 0) {
        return r->tls_check;
    }
    uint64_t k = rlg_tls_failures(*snap, &r->l, NULL);
    if (k > r->tls_failed) {
        rlg_nng_log(
            n, RLOG_LEVEL_WARN,
            "rendezvous at %s: refused %" PRIu64
            " connection(s) whose TLS handshake failed (no certificate, one not from our CA, "
            "or not trusting ours)",
            n->address, k - r->tls_failed);
        r->tls_failed = k;
    }
    return r->tls_check;
}

void rlg_nng_tls_explain_dialer(tn *n, const dialer *d)
{
    char name[80];
    nng_stat *snap = NULL;
    if (n->tls == NULL || nng_stats_get(&snap) != 0) {
        return;
    }
    uint64_t k = rlg_tls_failures(snap, NULL, &d->req_dl);
    nng_stats_free(snap);
    if (k > 0) {
        rlg_nng_log(
            n, RLOG_LEVEL_WARN,
            "dialling %s: %" PRIu64
            " TLS handshake(s) failed: the server refused our certificate, or its certificate "
            "is not from our CA%s",
            d->address, k, tls_name_hint(d->want_id, name, sizeof name));
    }
}
