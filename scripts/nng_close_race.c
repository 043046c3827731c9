/*
 * nng-only reproducer for the nng_close hang seen in raftio_cluster_test and
 * bench/raftkv teardown: a pair1 socket is closed while its peer keeps
 * sending. With nng 1.5.2 (Debian 12) the pipe's receive can be lost when
 * the close lands between two reads of one message (the transport
 * resubmits its read on an aio the close has already stopped), so the
 * reaper waits forever for the protocol's receive in pipe_destroy and
 * nng_close waits forever for the reaper. Fixed for tcp:// upstream by
 * nanomsg/nng PR #1636 (nng 1.6.0); ipc:// has the same shape.
 *
 *   cc -O1 -o /tmp/nng_close_race scripts/nng_close_race.c -lnng -lpthread
 *   /tmp/nng_close_race [iterations] [first port] [tcp|ipc]
 *
 * Exit 0 when every close returned, 2 (and "HANG at iteration i") when one
 * close took more than 10 s.
 */
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int stop;
static nng_socket snd;
static volatile sig_atomic_t iter;

static void *sender(void *arg)
{
    (void)arg;
    char buf[200];
    memset(buf, 'x', sizeof buf);
    unsigned k = 0;
    while (!atomic_load(&stop)) {
        if (nng_send(snd, buf, 1 + k++ % sizeof buf, NNG_FLAG_NONBLOCK) != 0) {
            usleep(10);
        }
    }
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    char m[64];
    int k = snprintf(m, sizeof m, "HANG at iteration %d\n", (int)iter);
    if (write(2, m, (size_t)k) < 0) {
        _exit(3);
    }
    _exit(2);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200;
    int port = argc > 2 ? atoi(argv[2]) : 23456;
    int ipc = argc > 3 && strcmp(argv[3], "ipc") == 0;
    signal(SIGALRM, on_alarm);
    for (iter = 0; iter < n; iter++) {
        char url[64];
        if (ipc) {
            snprintf(url, sizeof url, "ipc:///tmp/nng_close_race.%d", port + iter % 50);
        } else {
            snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port + iter % 50);
        }
        nng_socket rcv;
        if (nng_pair1_open(&rcv) != 0 || nng_pair1_open(&snd) != 0) {
            return 1;
        }
        if (nng_listen(rcv, url, NULL, 0) != 0 || nng_dial(snd, url, NULL, 0) != 0) {
            nng_close(rcv);
            nng_close(snd);
            continue;
        }
        atomic_store(&stop, 0);
        pthread_t t;
        pthread_create(&t, NULL, sender, NULL);
        for (int k = 0; k < 20; k++) {
            nng_msg *m;
            if (nng_recvmsg(rcv, &m, 0) == 0) {
                nng_msg_free(m);
            }
        }
        alarm(10);
        nng_close(rcv); /* the pipe closes while the peer is sending */
        atomic_store(&stop, 1);
        pthread_join(t, NULL);
        nng_close(snd);
        alarm(0);
    }
    printf("ok %d iterations\n", n);
    return 0;
}
