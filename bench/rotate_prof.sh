#!/bin/sh
# SPDX-License-Identifier: MIT
# Where a durable rotation of a token of any age goes, as the store grows (issue #16 item 6):
# bench/rotate_raw's any-age comparison (LMDB alone, in place and spent log) with a clock
# profile (perf record -e cpu-clock, Debian's linux-perf) of each timed phase alone, not of
# the unsynced prefill before it.
#
# Usage: bench/rotate_prof.sh [PREFILL [ROTATIONS]]   (defaults 10000000 and 20000)
# Prints rotate_raw's lines, then per layout the profile's shares: kernel and user space,
# and the top symbols. The store is made under /var/tmp (a real disk, not tmpfs) and removed.
set -eu
prefill=${1:-10000000}
rotations=${2:-20000}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/release/bench/rotate_raw
[ -x "$bin" ] || { echo "rotate_prof: build it first: make BUILD=release bench-tools" >&2; exit 2; }
command -v perf >/dev/null || { echo "rotate_prof: needs perf (Debian: linux-perf)" >&2; exit 2; }
d=$(mktemp -d /var/tmp/fg-rotprof-XXXXXX)
trap 'rm -rf "$d"' EXIT INT TERM
mkfifo "$d/err"
taskset -c 0 "$bin" "$d" "$rotations" 7 "$prefill" 160 anyage 2>"$d/err" &
pid=$!
perf_pid=
while IFS= read -r line; do
    case $line in
    *"timed phase begins")
        layout=$(echo "$line" | sed 's/^rotate_raw: \([a-z-]*\) .*/\1/')
        perf record -q -e cpu-clock -F 4999 -g -p "$pid" -o "$d/perf.$layout" 2>/dev/null &
        perf_pid=$!
        ;;
    *"timed phase ends")
        [ -n "$perf_pid" ] && kill -INT "$perf_pid" && wait "$perf_pid" || true
        perf_pid=
        ;;
    *) echo "$line" >&2 ;;
    esac
done <"$d/err"
wait "$pid"
for f in "$d"/perf.*; do
    layout=${f##*/perf.}
    echo "== $layout: share of the timed phase's samples"
    perf report -i "$f" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -6
    echo "-- top symbols"
    perf report -i "$f" --no-children --sort sym --stdio -g none 2>/dev/null |
        grep -E '^ +[0-9]' | head -14
done
