#!/bin/sh
# Soak: runs the simulator (`rlog sim`) over a seed range for each workload,
# in chunks, in parallel jobs; progress on stderr; every failing seed with
# its one-line replay command appended to a file; seeds/min per workload at
# the end. See docs/simulator.md, "Soak".
#
#   scripts/soak.sh [-b RLOG] [-w "log raft ship"] [-f FROM] [-n SEEDS]
#                   [-j JOBS] [-c CHUNK] [-s STEPS] [-k CRASHES] [-o FAILFILE]
#
# Exit code: 0 when every seed passed, 1 when one failed, 3 on bad usage.
set -eu

rlog=build/rlog
workloads="log raft ship"
from=0
seeds=10000
jobs=2
chunk=2000
steps=1000
crashes=5
out=soak-failures.txt

usage() {
    sed -n '2,10p' "$0" >&2
    exit 3
}

while getopts b:w:f:n:j:c:s:k:o:h opt; do
    case $opt in
    b) rlog=$OPTARG ;;
    w) workloads=$OPTARG ;;
    f) from=$OPTARG ;;
    n) seeds=$OPTARG ;;
    j) jobs=$OPTARG ;;
    c) chunk=$OPTARG ;;
    s) steps=$OPTARG ;;
    k) crashes=$OPTARG ;;
    o) out=$OPTARG ;;
    *) usage ;;
    esac
done
[ -x "$rlog" ] || { echo "soak: $rlog is not an executable (build first, or -b)" >&2; exit 3; }
[ "$seeds" -gt 0 ] && [ "$chunk" -gt 0 ] && [ "$jobs" -gt 0 ] || usage

work=$(mktemp -d "${TMPDIR:-/tmp}/soak.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
: >>"$out"
status=0

for w in $workloads; do
    start=$(date +%s)
    wfail=0
    end=$((from + seeds))
    s=$from
    # one `rlog sim --jobs` per chunk: its children run the chunk in parallel
    while [ "$s" -lt "$end" ]; do
        n=$chunk
        [ $((s + n)) -gt "$end" ] && n=$((end - s))
        rc=0
        "$rlog" sim --workload "$w" --from "$s" --seeds "$n" --steps "$steps" \
            --crashes "$crashes" --jobs "$jobs" >"$work/chunk" 2>&1 || rc=$?
        if [ "$rc" -ne 0 ]; then
            if grep -q '^FAIL' "$work/chunk"; then
                status=1
                grep -A1 '^FAIL' "$work/chunk" | grep -v '^--$' >>"$out"
            else
                echo "soak: rlog sim exited $rc for $w seeds $s..$((s + n - 1)):" >&2
                cat "$work/chunk" >&2
                exit 4
            fi
        fi
        s=$((s + n))
        now=$(date +%s)
        el=$((now - start))
        nf=$(grep -c "^FAIL" "$work/chunk" || true)
        wfail=$((wfail + nf))
        printf 'soak: %s %d/%d seeds (up to %d), %d failed in this chunk, %ds\n' \
            "$w" $((s - from)) "$seeds" $((s - 1)) "$nf" "$el" >&2
    done
    el=$(($(date +%s) - start))
    [ "$el" -gt 0 ] || el=1
    printf 'workload=%s from=%d seeds=%d failed=%d seconds=%d seeds_min=%d failures=%s\n' \
        "$w" "$from" "$seeds" "$wfail" "$el" $((seeds * 60 / el)) "$out"
done
exit $status
