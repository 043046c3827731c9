/*
 * The nng transport: errors, logging, addresses and message encoding.
 * transport/nng_internal.h describes the objects, the threads and the files.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "transport/nng_internal.h"

/* ------------------------------------------------------------------------
 * Errors and logging
 * ---------------------------------------------------------------------- */

int rlg_nng_err(tn *n, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->t->errmsg, sizeof n->t->errmsg, fmt, ap);
    va_end(ap);
    return rc;
}

void rlg_nng_log(tn *n, rlog_level level, const char *fmt, ...)
{
    if (n->cfg.logger == NULL) {
        return;
    }
    char buf[LOG_MAX];
    int k = snprintf(buf, sizeof buf, "transport %" PRIu64 ": ", n->cfg.server_id);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + k, sizeof buf - (size_t)k, fmt, ap);
    va_end(ap);
    n->cfg.logger(n->cfg.logger_data, level, buf);
}

const char *rlg_nng_conn_name(const conn *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "server %" PRIu64 " at %s (via %s)", c->peer_id,
             c->peer_addr && c->peer_addr[0] ? c->peer_addr : "(no address)",
             c->where ? c->where : "?");
    return buf;
}

const char *rlg_nng_pipe_name(nng_pipe p, char *buf, size_t cap)
{
    nng_sockaddr sa;
    if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0) {
        snprintf(buf, cap, "pipe %" PRIu32, (uint32_t)nng_pipe_id(p));
        return buf;
    }
    if (sa.s_family == NNG_AF_INET) {
        const uint8_t *a = (const uint8_t *)&sa.s_in.sa_addr;
        const uint8_t *pt = (const uint8_t *)&sa.s_in.sa_port;
        snprintf(buf, cap, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3],
                 (unsigned)(pt[0] << 8 | pt[1]));
    } else if (sa.s_family == NNG_AF_INET6) {
        const uint8_t *a = sa.s_in6.sa_addr;
        const uint8_t *pt = (const uint8_t *)&sa.s_in6.sa_port;
        size_t k = 0;
        k += (size_t)snprintf(buf + k, cap - k, "[");
        for (int i = 0; i < 16 && k < cap; i += 2) {
            k += (size_t)snprintf(buf + k, cap - k, i ? ":%x" : "%x",
                                  (unsigned)(a[i] << 8 | a[i + 1]));
        }
        if (k < cap) {
            snprintf(buf + k, cap - k, "]:%u", (unsigned)(pt[0] << 8 | pt[1]));
        }
    } else if (sa.s_family == NNG_AF_IPC) {
        snprintf(buf, cap, "ipc pipe %" PRIu32, (uint32_t)nng_pipe_id(p));
    } else {
        snprintf(buf, cap, "pipe %" PRIu32, (uint32_t)nng_pipe_id(p));
    }
    return buf;
}

/* ------------------------------------------------------------------------
 * Addresses
 * ---------------------------------------------------------------------- */

/* The longest ipc:// path a Unix socket address holds (sun_path, with its
 * terminating NUL: 107 bytes on Linux). */
#define IPC_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

bool rlg_nng_ipc_too_long(const char *url)
{
    return strncmp(url, "ipc://", 6) == 0 && strlen(url + 6) > IPC_PATH_MAX;
}

int rlg_nng_ipc_too_long_err(tn *n, const char *what, const char *url)
{
    return rlg_nng_err(n, RLOG_EINVAL,
                       "%s: ipc path of %zu bytes is over the %zu-byte limit of a Unix socket path "
                       "(sun_path): use a shorter path or abstract://name (%s)",
                       what, strlen(url + 6), (size_t)IPC_PATH_MAX, url);
}

addr_kind rlg_nng_addr_parse(const char *url, size_t *port_at, unsigned *port)
{
    static const char *const tcp[] = {"tcp://",     "tcp4://",     "tcp6://",
                                      "tls+tcp://", "tls+tcp4://", "tls+tcp6://"};
    static const char *const suffix[] = {"ipc://", "inproc://", "abstract://"};
    for (size_t i = 0; i < 3; i++) {
        size_t sl = strlen(suffix[i]);
        if (strncmp(url, suffix[i], sl) == 0) {
            return url[sl] != '\0' ? ADDR_SUFFIX : ADDR_BAD;
        }
    }
    for (size_t i = 0; i < sizeof tcp / sizeof tcp[0]; i++) {
        size_t sl = strlen(tcp[i]);
        if (strncmp(url, tcp[i], sl) != 0) {
            continue;
        }
        const char *colon = strrchr(url + sl, ':');
        if (colon == NULL) {
            return ADDR_BAD;
        }
        size_t digits = strlen(colon + 1);
        if (digits == 0 || digits > 5 || strspn(colon + 1, "0123456789") != digits) {
            return ADDR_BAD;
        }
        unsigned long v = strtoul(colon + 1, NULL, 10);
        if (v > 65535) {
            return ADDR_BAD;
        }
        *port_at = (size_t)(colon + 1 - url);
        *port = (unsigned)v;
        return ADDR_TCP;
    }
    return ADDR_BAD;
}

char *rlg_nng_str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (s != NULL) {
        va_start(ap, fmt);
        vsnprintf(s, (size_t)len + 1, fmt, ap);
        va_end(ap);
    }
    return s;
}

char *rlg_nng_redirect_target(const char *dialled, const char *redirect, const char **why)
{
    size_t at = 0, rat = 0;
    unsigned port = 0, rport = 0;
    addr_kind k = rlg_nng_addr_parse(dialled, &at, &port);
    if (k == ADDR_TCP) {
        if (rlg_nng_addr_parse(redirect, &rat, &rport) != ADDR_TCP || rport == 0) {
            *why = "redirect is not a tcp address with a port";
            return NULL;
        }
        char *s = rlg_nng_str_printf("%.*s%u", (int)at, dialled, rport);
        *why = s ? NULL : "out of memory";
        return s;
    }
    size_t dl = strlen(dialled);
    const char *tail = redirect + dl;
    size_t tl = strlen(redirect) >= dl ? strlen(tail) : 0;
    if (strncmp(redirect, dialled, dl) != 0 || tl < 2 || tl > 17 || tail[0] != '.' ||
        strspn(tail + 1, "0123456789abcdef") != tl - 1) {
        *why = "redirect is not the dialled address plus a suffix";
        return NULL;
    }
    char *s = strdup(redirect);
    *why = s ? NULL : "out of memory";
    return s;
}

/* ------------------------------------------------------------------------
 * Messages
 * ---------------------------------------------------------------------- */

int rlg_nng_msg_to_nng(const rlog_msg *msg, size_t max, nng_msg **out, size_t *len)
{
    void *buf = NULL;
    *out = NULL;
    int rc = rlog_msg_encode(msg, &buf, len);
    if (rc != 0) {
        return rc;
    }
    if (*len > max) {
        rlog_free(buf);
        return RLOG_ETOOBIG;
    }
    if (nng_msg_alloc(out, *len) != 0) {
        rlog_free(buf);
        return RLOG_ENOMEM;
    }
    memcpy(nng_msg_body(*out), buf, *len);
    rlog_free(buf);
    return 0;
}

int rlg_nng_hello_to_nng(tn *n, uint64_t flags, nng_msg **out)
{
    rlog_msg m;
    memset(&m, 0, sizeof m);
    m.type = RLOG_MSG_HELLO;
    m.u.hello.server_id = n->cfg.server_id;
    m.u.hello.address = n->address;
    m.u.hello.protocol_version = RLOG_WIRE_PROTOCOL;
    m.u.hello.role = n->cfg.role;
    m.u.hello.flags = flags;
    size_t len;
    return rlg_nng_msg_to_nng(&m, RDV_MAX_BYTES, out, &len);
}

uint64_t rlg_nng_random64(void)
{
    uint64_t v = ((uint64_t)nng_random() << 32) | nng_random();
    return v != 0 ? v : 1;
}

int rlg_nng_to_rlog(int rv)
{
    switch (rv) {
    case NNG_EADDRINUSE:
        return RLOG_EBUSY;
    case NNG_EADDRINVAL:
    case NNG_ENOTSUP:
    case NNG_EINVAL:
        return RLOG_EINVAL;
    case NNG_ENOMEM:
        return RLOG_ENOMEM;
    default:
        return RLOG_EIO;
    }
}
