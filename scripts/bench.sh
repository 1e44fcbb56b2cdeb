#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: boot the bench kernel (HMMGPU_FLAVOUR=bench: no debugging
# options) and run tools/hmmgpu/hmmgpu_bench in the guest, which measures the
# mirroring side by side with the kernel's own references (see the comment at
# the top of hmmgpu_bench.c). The guest's output and kernel log go to
# OUTDIR/bench/; the figures, with their raw repetitions and the clock's
# calibration, to OUTDIR/bench/results.json; the table is printed last.
#
# BENCH_REPS (default 5) repetitions of each figure; BENCH_SIZES (default
# "16 256") the buffer sizes in MiB; BENCH_TIMEOUT (default 2400) the guest's
# wall-clock limit in seconds.
#
# Usage: bench.sh OUTDIR BINDIR
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$1/bench bin=$2
reps=${BENCH_REPS:-5}
sizes=${BENCH_SIZES:-16 256}
timeout=${BENCH_TIMEOUT:-2400}
export HMMGPU_FLAVOUR=bench

case "$reps" in '' | *[!0-9]*) echo "bench: BENCH_REPS=$reps is not a number" >&2; exit 2 ;; esac
for s in $sizes; do
	case "$s" in '' | *[!0-9]*) echo "bench: BENCH_SIZES has $s, not a number of MiB" >&2; exit 2 ;; esac
done

mkdir -p "$out"
rm -f "$out/results.json"
start=$(date +%s)
# shellcheck disable=SC2086 # the sizes are words of their own
"$top/scripts/vm.sh" -t "$timeout" -o "$out" -b "$bin" -- sh /opt/hmmgpu/bench.sh "$reps" $sizes
status=$?
elapsed=$(($(date +%s) - start))

# The guest prints "HMMGPU-BENCH: " and a JSON object for the run, one for
# each figure and one when it is done: one object with the run's members, "done"
# and the figures.
if ! python3 - "$out/output.log" "$out/results.json" <<'PY'
import json, sys
run, done, figures = None, None, []
with open(sys.argv[1], errors="replace") as log:
    for line in log:
        if not line.startswith("HMMGPU-BENCH: "):
            continue
        obj = json.loads(line[len("HMMGPU-BENCH: "):])
        if "run" in obj:
            run = obj["run"]
        elif "done" in obj:
            done = obj["done"]
        else:
            figures.append(obj)
if run is None:
    sys.exit("bench: the guest printed no run line")
# A run cut short keeps the figures it took, without "done".
with open(sys.argv[2], "w") as f:
    json.dump({**run, "done": done, "figures": figures}, f, indent=1)
    f.write("\n")
PY
then
	echo "bench: no results in $out/output.log" >&2
	[ $status -ne 0 ] || status=1
fi

echo
sed -n '/^== results$/,/^== end$/p' "$out/output.log" | sed '1d;$d'
echo
[ -f "$out/results.json" ] && echo "bench: results in $out/results.json"
if [ $status -eq 0 ]; then
	echo "bench: done in ${elapsed}s"
else
	echo "bench: FAILED (status $status) after ${elapsed}s; output and kernel log in $out"
fi
exit $status
