#!/usr/bin/env python3
"""A hostile client against a running `rlog ship serve` (loopback only):
opens N raw TCP connections that never speak and M that finish the SP
handshake (as a req0 peer) and then stay silent, then reports, every
second for --seconds, how many of each are still open and how many
descriptors the server holds (--pid). Figures for docs/security.md.

  rlog ship serve DIR --listen tcp://127.0.0.1:PORT & PID=$!
  scripts/hostile.py --port PORT --raw 200 --sp 200 --seconds 12 --pid $PID
"""
import argparse, os, select, socket, time

def closed(s):
    """Whether the server closed s: reads (and drops) what it sent, such as
    its SP header, until nothing is left or the end of the stream."""
    p = select.poll()
    p.register(s, select.POLLIN)
    while True:
        if not p.poll(0):
            return False
        try:
            if s.recv(4096, socket.MSG_DONTWAIT) == b"":
                return True
        except BlockingIOError:
            return False
        except OSError:
            return True

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--raw", type=int, default=200)
    ap.add_argument("--sp", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=12)
    ap.add_argument("--pid", type=int, default=0)
    a = ap.parse_args()
    raw, sp, failed = [], [], 0
    for _ in range(a.raw):
        try:
            raw.append(socket.create_connection(("127.0.0.1", a.port), timeout=2))
        except OSError:
            failed += 1
    for _ in range(a.sp):
        try:
            s = socket.create_connection(("127.0.0.1", a.port), timeout=2)
            s.sendall(b"\x00SP\x00\x00\x30\x00\x00")  # req0
            s.recv(8)
            sp.append(s)
        except OSError:
            failed += 1
    print(f"opened raw={len(raw)} sp={len(sp)} failed={failed}")
    t0 = time.time()
    for _ in range(a.seconds + 1):
        fds = len(os.listdir(f"/proc/{a.pid}/fd")) if a.pid else -1
        print(f"t={time.time() - t0:5.1f}s raw_open={sum(not closed(s) for s in raw)} "
              f"sp_open={sum(not closed(s) for s in sp)} server_fds={fds}", flush=True)
        time.sleep(1)

if __name__ == "__main__":
    main()
