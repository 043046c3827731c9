#!/usr/bin/env bash
# The kv example's failover scenario, used by `make demo` (examples/demo.sh)
# and by ctest (raftio_kv_process_test_<io>):
#
#   bash examples/kv/failover.sh BUILD_DIR [IO] [WORK_DIR]
#
# Starts 3 kv_server processes on loopback (free ports), writes keys while
# SIGKILLing the leader in the middle of the writes, shows the new leader,
# keeps writing (a small snapshot threshold, so the leader compacts its log
# past what the dead node has), restarts the killed node and waits until it
# caught up (through a snapshot install), then reads every key back from the
# leader and compares all values; every node must reach the same applied
# index with an identical map (the status digest) holding every key. IO is rlog
# or uv (default: the server's default). Exit status 0 only if all of that
# held; every server is stopped on exit. About 10 s; at most LIMIT (100 s).
set -u

BUILD=${1:-build}
IO=${2:-}
WORK=${3:-$BUILD/kv-failover${IO:+-$IO}}
SERVER="$BUILD/examples/kv_server"
CLIENT="$BUILD/examples/kv_client"
FIRST=300  # keys written by the fill during which the leader is killed
TOTAL=800  # keys in all
KILL_AT=100

LIMIT=100 # seconds for the whole scenario (ctest's timeout is 120)

# Past LIMIT seconds, timeout(1) sends SIGTERM and the trap below stops the
# servers, rather than an outside kill orphaning them.
if [ -z "${KV_FAILOVER_LIMITED:-}" ]; then
    KV_FAILOVER_LIMITED=1 exec timeout --kill-after=20 $LIMIT bash "$0" "$@"
fi

pids=()
fill_pid=
cleanup() {
    [ -n "$fill_pid" ] && kill -KILL "$fill_pid" 2>/dev/null
    for p in "${pids[@]}"; do
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
    done
    wait 2>/dev/null
}
trap cleanup EXIT
trap 'echo "KV FAILOVER FAILED: interrupted or over ${LIMIT} s" >&2; exit 1' INT TERM

fail() {
    echo "KV FAILOVER FAILED: $*" >&2
    for i in 1 2 3; do
        [ -f "$WORK/n$i.err" ] && [ -s "$WORK/n$i.err" ] && { echo "-- node $i stderr:"; tail -n 5 "$WORK/n$i.err"; } >&2
    done
    exit 1
}
# The value of key=... in a line of key=value pairs.
field() {
    echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

[ -x "$SERVER" ] && [ -x "$CLIENT" ] || fail "$SERVER or $CLIENT is not built"
rm -rf "$WORK"
mkdir -p "$WORK"

# Six free loopback ports: random candidates nobody accepts connections on,
# below the system's ephemeral range (the servers' own outgoing and
# dedicated connections take ports from that range and could take ours
# between this check and the server's bind).
read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || eph_lo=32768
lo=10000
[ "$eph_lo" -gt $((lo + 2000)) ] || lo=1024
ports=()
while [ ${#ports[@]} -lt 6 ]; do
    p=$((lo + RANDOM % (eph_lo - lo)))
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && continue
    [[ " ${ports[*]} " == *" $p "* ]] && continue
    ports+=("$p")
done
raft_port() { echo "${ports[$(($1 - 1))]}"; }
client_port() { echo "${ports[$(($1 + 2))]}"; }
CLUSTER="1@127.0.0.1:$(raft_port 1),2@127.0.0.1:$(raft_port 2),3@127.0.0.1:$(raft_port 3)"
SERVERS="127.0.0.1:$(client_port 1),127.0.0.1:$(client_port 2),127.0.0.1:$(client_port 3)"

start() { # start N: node N in the background, appending to its output files
    "$SERVER" --id "$1" --address "127.0.0.1:$(raft_port "$1")" --cluster "$CLUSTER" \
        --dir "$WORK/n$1" --client-port "$(client_port "$1")" ${IO:+--io "$IO"} \
        --snapshot-threshold 64 --snapshot-trailing 32 --election-timeout 500 --heartbeat 50 \
        >>"$WORK/n$1.out" 2>>"$WORK/n$1.err" &
    pids[$1]=$!
}
kv() { "$CLIENT" --servers "$SERVERS" --timeout 15 "$@"; }
status_of() { "$CLIENT" --servers "127.0.0.1:$(client_port "$1")" status | cut -d' ' -f2-; }

echo "3 kv_server processes (${IO:-default} io), raft $CLUSTER, clients $SERVERS"
for i in 1 2 3; do start $i; done
line=$(kv leader) || fail "no leader elected"
leader=$(field "$line" id)
echo "leader: node $leader ($(field "$line" io) io, term $(field "$line" term))"

echo "writing keys k0..k$((FIRST - 1)); SIGKILL the leader (node $leader) after $KILL_AT acknowledgements"
kv fill k 0 $FIRST >"$WORK/fill1.out" 2>"$WORK/fill1.err" &
fill_pid=$!
for _ in $(seq 200); do
    n=$(grep -c '^acked ' "$WORK/fill1.out" 2>/dev/null)
    [ "${n:-0}" -ge $KILL_AT ] && break
    kill -0 $fill_pid 2>/dev/null || break
    sleep 0.05
done
kill -KILL "${pids[$leader]}"
wait "${pids[$leader]}" 2>/dev/null
pids[$leader]=
echo "killed node $leader after $(grep -c '^acked ' "$WORK/fill1.out") acknowledged puts"
wait $fill_pid
rc=$?
fill_pid=
[ $rc -eq 0 ] || fail "writes did not go on after the kill: $(tail -n 2 "$WORK/fill1.err")"
line=$(kv leader) || fail "no new leader"
new_leader=$(field "$line" id)
[ "$new_leader" != "$leader" ] || fail "node $leader is leader again while dead"
echo "new leader: node $new_leader (term $(field "$line" term)); all $FIRST puts acknowledged"

echo "writing keys k$FIRST..k$((TOTAL - 1)) with node $leader down (snapshot threshold 64, trailing 32)"
kv fill k $FIRST $TOTAL >"$WORK/fill2.out" 2>"$WORK/fill2.err" || fail "writes failed: $(tail -n 2 "$WORK/fill2.err")"
acked=$(cat "$WORK/fill1.out" "$WORK/fill2.out" | grep -c '^acked ')
[ "$acked" -eq $TOTAL ] || fail "$acked of $TOTAL puts acknowledged"

echo "restarting node $leader from its directory"
start "$leader"
line=$(kv leader) || fail "no leader after the restart"
commit=$(field "$line" commit)
caught=
for _ in $(seq 150); do
    st=$(status_of "$leader")
    applied=$(field "$st" applied)
    if [ "${applied:-0}" -ge "$commit" ] && [ "$(field "$st" keys)" = "$TOTAL" ]; then
        caught=1
        break
    fi
    sleep 0.1
done
echo "node $leader: $st"
[ -n "$caught" ] || fail "node $leader did not catch up to commit $commit with $TOTAL keys"
installs=$(field "$st" snapshot_installs)
[ "${installs:-0}" -ge 1 ] || fail "node $leader caught up without a snapshot install (compaction did not run?)"
echo "node $leader caught up through $installs snapshot install(s)"

echo "reading every key back from the leader (linearizable reads: a barrier first)"
kv check k 0 $TOTAL || fail "values read back differ from the acknowledged puts"
# Every node applies the same log: once they applied the same index, their
# maps must have the same digest (keys and values) and hold every key.
same=
for _ in $(seq 100); do
    lines=()
    for i in 1 2 3; do lines[$i]=$(status_of $i); done
    a1=$(field "${lines[1]}" applied) a2=$(field "${lines[2]}" applied) a3=$(field "${lines[3]}" applied)
    if [ -n "$a1" ] && [ "$a1" = "$a2" ] && [ "$a2" = "$a3" ]; then
        same=1
        break
    fi
    sleep 0.1
done
for i in 1 2 3; do echo "node $i: ${lines[$i]}"; done
[ -n "$same" ] || fail "the nodes did not reach the same applied index"
d1=$(field "${lines[1]}" digest)
for i in 1 2 3; do
    [ "$(field "${lines[$i]}" keys)" = "$TOTAL" ] || fail "node $i holds $(field "${lines[$i]}" keys) keys, not $TOTAL"
    [ "$(field "${lines[$i]}" digest)" = "$d1" ] || fail "node $i's map differs from node 1's at the same applied index"
done
echo "all three nodes applied index $a1 and hold identical maps (digest $d1)"

# A clean stop: SIGTERM closes raft and the io; each server must exit 0
# within 10 s (under ASan this also checks for leaks).
for i in 1 2 3; do kill -TERM "${pids[$i]}"; done
for i in 1 2 3; do
    for _ in $(seq 100); do
        kill -0 "${pids[$i]}" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "${pids[$i]}" 2>/dev/null && fail "node $i did not exit within 10 s of SIGTERM"
    wait "${pids[$i]}"
    rc=$?
    pids[$i]=
    [ $rc -eq 0 ] || fail "node $i exited with status $rc after SIGTERM"
done
echo "kv failover passed: $TOTAL acknowledged puts read back, every node holds $TOTAL keys;"
echo "all three servers stopped cleanly on SIGTERM"
