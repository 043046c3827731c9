/*
 * kv_client — talks to kv_server's line protocol (see kv_server.c).
 *
 *   kv_client --servers 127.0.0.1:7001,127.0.0.1:7002,... [--timeout S] COMMAND
 *
 *   status               every server's status line ("unreachable" if down)
 *   leader               the status line of the server that is leader
 *   put KEY VALUE        -> ok INDEX
 *   get KEY              -> the value (exit status 3 if the key is missing)
 *   del KEY              -> ok INDEX
 *   fill PREFIX FROM TO  put PREFIX<i> = <i>.PREFIX for FROM <= i < TO, one
 *                        "acked KEY INDEX" line per acknowledged put
 *   check PREFIX FROM TO get every key of fill and compare its value
 *
 * put/get/del go to the leader: a server that answers "notleader", is down
 * or answers "retry" is left for the next one in the list, round after
 * round, until --timeout seconds (default 10) have passed for that request
 * (for "leader": for the whole command). Exit status 0 on success, 1 on a
 * failure or timeout, 2 on a usage error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERVERS 16
#define REPLY_MAX   (1u << 20)

struct client {
    char *servers[MAX_SERVERS];
    int n_servers;
    int current;     /* index of the server of fd */
    int fd;          /* -1 when not connected */
    double timeout;  /* seconds, for each request */
    double deadline; /* of the leader and status commands */
    char reply[REPLY_MAX];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_to(const char *server)
{
    char host[64];
    const char *colon = strrchr(server, ':');
    if (!colon || (size_t)(colon - server) >= sizeof host)
        return -1;
    memcpy(host, server, (size_t)(colon - server));
    host[colon - server] = '\0';
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 2}; /* a hung server counts as down */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void disconnect(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Sends line (with its newline) on c->fd and reads one reply line into
 * c->reply (newline removed). Returns 0, or -1 if the connection failed. */
static int exchange(struct client *c, const char *line)
{
    size_t len = strlen(line), off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, line + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    size_t got = 0;
    for (;;) {
        if (got == REPLY_MAX - 1)
            return -1;
        ssize_t n = recv(c->fd, c->reply + got, 1, 0); /* byte by byte: stop at the newline */
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        if (c->reply[got] == '\n')
            break;
        got++;
    }
    c->reply[got] = '\0';
    return 0;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Sends line to the leader (see the header comment). Returns 0 with the
 * reply in c->reply, or -1 after c->timeout seconds (c->reply says what was
 * last seen). */
static int to_leader(struct client *c, const char *line)
{
    int tried = 0; /* servers tried in this round */
    double deadline = now_s() + c->timeout;
    snprintf(c->reply, sizeof c->reply, "no server answered");
    while (now_s() < deadline) {
        if (c->fd < 0)
            c->fd = connect_to(c->servers[c->current]);
        if (c->fd >= 0 && exchange(c, line) == 0 && !starts_with(c->reply, "notleader") &&
            !starts_with(c->reply, "retry"))
            return 0;
        disconnect(c);
        c->current = (c->current + 1) % c->n_servers;
        if (++tried == c->n_servers) {
            tried = 0;
            usleep(100 * 1000);
        }
    }
    return -1;
}

/* The status line of server i (or "unreachable") into c->reply. */
static void status_of(struct client *c, int i)
{
    disconnect(c);
    c->fd = connect_to(c->servers[i]);
    if (c->fd < 0 || exchange(c, "status\n") != 0)
        snprintf(c->reply, sizeof c->reply, "unreachable");
    disconnect(c);
}

static int cmd_status(struct client *c)
{
    for (int i = 0; i < c->n_servers; i++) {
        status_of(c, i);
        printf("%s: %s\n", c->servers[i], c->reply);
    }
    return 0;
}

static int cmd_leader(struct client *c)
{
    while (now_s() < c->deadline) {
        for (int i = 0; i < c->n_servers; i++) {
            status_of(c, i);
            if (strstr(c->reply, " state=leader ")) {
                printf("%s: %s\n", c->servers[i], c->reply);
                return 0;
            }
        }
        usleep(100 * 1000);
    }
    fprintf(stderr, "kv_client: no leader within the timeout\n");
    return 1;
}

/* put/get/del KEY [VALUE]: prints the reply's payload. */
static int cmd_simple(struct client *c, const char *line, bool is_get)
{
    if (to_leader(c, line) != 0) {
        fprintf(stderr, "kv_client: timed out (last reply: %s)\n", c->reply);
        return 1;
    }
    if (is_get && strcmp(c->reply, "missing") == 0)
        return 3;
    if (is_get && starts_with(c->reply, "value ")) {
        printf("%s\n", c->reply + 6);
        return 0;
    }
    printf("%s\n", c->reply);
    return starts_with(c->reply, "ok ") ? 0 : 1;
}

static int cmd_fill(struct client *c, const char *prefix, long from, long to)
{
    char line[512];
    for (long i = from; i < to; i++) {
        snprintf(line, sizeof line, "put %s%ld %ld.%s\n", prefix, i, i, prefix);
        if (to_leader(c, line) != 0 || !starts_with(c->reply, "ok ")) {
            fprintf(stderr, "kv_client: put %s%ld failed: %s\n", prefix, i, c->reply);
            return 1;
        }
        printf("acked %s%ld %s\n", prefix, i, c->reply + 3);
        fflush(stdout);
    }
    return 0;
}

static int cmd_check(struct client *c, const char *prefix, long from, long to)
{
    char line[512], want[512];
    long bad = 0;
    for (long i = from; i < to; i++) {
        snprintf(line, sizeof line, "get %s%ld\n", prefix, i);
        snprintf(want, sizeof want, "value %ld.%s", i, prefix);
        if (to_leader(c, line) != 0) {
            fprintf(stderr, "kv_client: get %s%ld timed out: %s\n", prefix, i, c->reply);
            return 1;
        }
        if (strcmp(c->reply, want) != 0) {
            if (bad++ < 10)
                fprintf(stderr, "kv_client: %s%ld: expected '%s', got '%s'\n", prefix, i, want + 6,
                        c->reply);
        }
    }
    printf("checked %ld keys %s%ld..%s%ld: %s\n", to - from, prefix, from, prefix, to - 1,
           bad ? "MISMATCH" : "all values match");
    if (bad)
        printf("%ld keys wrong or missing\n", bad);
    return bad ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: kv_client --servers HOST:PORT[,...] [--timeout S] "
                    "status | leader | put KEY VALUE | get KEY | del KEY | "
                    "fill PREFIX FROM TO | check PREFIX FROM TO\n");
    exit(2);
}

static long number(const char *text)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (end == text || *end || v < 0)
        usage();
    return v;
}

int main(int argc, char **argv)
{
    static struct client client;
    struct client *c = &client;
    c->fd = -1;
    c->timeout = 10;
    int i = 1;
    for (; i + 1 < argc && starts_with(argv[i], "--"); i += 2) {
        if (strcmp(argv[i], "--servers") == 0) {
            char *save = NULL;
            for (char *s = strtok_r(argv[i + 1], ",", &save); s; s = strtok_r(NULL, ",", &save))
                if (c->n_servers < MAX_SERVERS)
                    c->servers[c->n_servers++] = s;
        } else if (strcmp(argv[i], "--timeout") == 0) {
            c->timeout = atof(argv[i + 1]);
        } else {
            usage();
        }
    }
    if (c->n_servers == 0 || i >= argc)
        usage();
    c->deadline = now_s() + c->timeout;
    const char *cmd = argv[i];
    int n = argc - i - 1; /* arguments after the command */
    char **a = argv + i + 1;
    char line[REPLY_MAX];
    if (strcmp(cmd, "status") == 0 && n == 0)
        return cmd_status(c);
    if (strcmp(cmd, "leader") == 0 && n == 0)
        return cmd_leader(c);
    if ((strcmp(cmd, "get") == 0 || strcmp(cmd, "del") == 0) && n == 1) {
        snprintf(line, sizeof line, "%s %s\n", cmd, a[0]);
        return cmd_simple(c, line, cmd[0] == 'g');
    }
    if (strcmp(cmd, "put") == 0 && n == 2) {
        snprintf(line, sizeof line, "put %s %s\n", a[0], a[1]);
        return cmd_simple(c, line, false);
    }
    if (strcmp(cmd, "fill") == 0 && n == 3)
        return cmd_fill(c, a[0], number(a[1]), number(a[2]));
    if (strcmp(cmd, "check") == 0 && n == 3)
        return cmd_check(c, a[0], number(a[1]), number(a[2]));
    usage();
    return 2;
}
