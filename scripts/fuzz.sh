#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make fuzz: boot the test kernel and run tools/hmmgpu/fuzz (hmmgpu_fuzz) in
# the guest for SECONDS, with SEED when given. The guest's output and kernel
# log go to OUTDIR/fuzz/, and so does each reproducer the fuzzer saved
# (NNN-KIND.prog, replayed in the guest with hmmgpu_fuzz -r FILE): the guest
# prints them between HMMGPU-FUZZ-REPRO-BEGIN/END lines. If the guest died
# before it could (a panic: the guest boots with oops=panic), the program that
# was running is read back from the guest's disk as OUTDIR/fuzz/current.prog.
#
# JOBS runs go side by side in the guest (default 1), with seeds SEED,
# SEED + 1, ...; their reproducers are named I-NNN-KIND.prog, I the run.
#
# Usage: fuzz.sh OUTDIR BINDIR SECONDS [SEED [JOBS]]
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$1/fuzz bin=$2 seconds=$3 seed=${4:-} jobs=${5:-1}

case "$seconds" in '' | *[!0-9]*) echo "fuzz: FUZZ_SECONDS=$seconds is not a number" >&2; exit 2 ;; esac
case "$seed" in *[!0-9]*) echo "fuzz: FUZZ_SEED=$seed is not a number" >&2; exit 2 ;; esac
case "$jobs" in '' | 0 | *[!0-9]*) echo "fuzz: FUZZ_JOBS=$jobs is not a positive number" >&2; exit 2 ;; esac

mkdir -p "$out"
rm -f "$out"/*.prog
# The guest's limit: the run, the boot, a hang's 30 s and the closing checks.
HMMGPU_VM_KEEP_DISK=1 "$top/scripts/vm.sh" -t $((seconds + 600)) -o "$out" -b "$bin" -- \
	sh /opt/hmmgpu/fuzz.sh "$seconds" "$seed" "$jobs"
status=$?

tr -d '\r' < "$out/output.log" | awk -v dir="$out" '
	/^HMMGPU-FUZZ-REPRO-BEGIN: / { file = dir "/" $2; printf "" > file; next }
	/^HMMGPU-FUZZ-REPRO-END: / { close(file); file = ""; next }
	file != "" { print > file }'
if [ "$(grep -c '^fuzz: findings:' "$out/output.log")" -lt "$jobs" ] && [ -f "$out/ext4.img" ]; then
	for i in $(seq 0 $((jobs - 1))); do
		cur=$out/$i-current.prog
		debugfs -R "dump /fuzz/$i/current.prog $cur" "$out/ext4.img" >/dev/null 2>&1
		# The program ends at the first NUL (the fuzzer writes over the same blocks).
		[ -f "$cur" ] && python3 -c 'import sys
p = sys.argv[1]
text = open(p, "rb").read().split(b"\0")[0]
open(p, "wb").write(text)' "$cur"
		[ -s "$cur" ] &&
			echo "fuzz: the guest did not finish; the program run $i was running is in $cur"
	done
fi
rm -f "$out/ext4.img"

echo
grep '^fuzz: ' "$out/output.log" | tr -d '\r' | grep -v '^fuzz: .* saved as ' |
	grep -v '^fuzz: calls' | tail -n $((5 * jobs + 1))
for f in "$out"/*.prog; do
	[ -e "$f" ] && echo "fuzz: reproducer $f"
done
if [ $status -eq 0 ]; then
	echo "fuzz: passed; output and kernel log in $out"
else
	echo "fuzz: FAILED (status $status); output and kernel log in $out"
fi
exit $status
