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
# Usage: fuzz.sh OUTDIR BINDIR SECONDS [SEED]
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$1/fuzz bin=$2 seconds=$3 seed=${4:-}

case "$seconds" in '' | *[!0-9]*) echo "fuzz: FUZZ_SECONDS=$seconds is not a number" >&2; exit 2 ;; esac
case "$seed" in *[!0-9]*) echo "fuzz: FUZZ_SEED=$seed is not a number" >&2; exit 2 ;; esac

mkdir -p "$out"
rm -f "$out"/*.prog
# The guest's limit: the run, the boot, a hang's 30 s and the closing checks.
HMMGPU_VM_KEEP_DISK=1 "$top/scripts/vm.sh" -t $((seconds + 600)) -o "$out" -b "$bin" -- \
	sh /opt/hmmgpu/fuzz.sh "$seconds" $seed
status=$?

tr -d '\r' < "$out/output.log" | awk -v dir="$out" '
	/^HMMGPU-FUZZ-REPRO-BEGIN: / { file = dir "/" $2; printf "" > file; next }
	/^HMMGPU-FUZZ-REPRO-END: / { close(file); file = ""; next }
	file != "" { print > file }'
if ! grep -q '^fuzz: findings:' "$out/output.log" && [ -f "$out/ext4.img" ]; then
	debugfs -R "dump /fuzz/current.prog $out/current.prog" "$out/ext4.img" >/dev/null 2>&1
	# The program ends at the first NUL (the fuzzer writes over the same blocks).
	[ -f "$out/current.prog" ] && python3 -c 'import sys
p = sys.argv[1]
text = open(p, "rb").read().split(b"\0")[0]
open(p, "wb").write(text)' "$out/current.prog"
	[ -s "$out/current.prog" ] &&
		echo "fuzz: the guest did not finish; the program it was running is in $out/current.prog"
fi
rm -f "$out/ext4.img"

echo
grep '^fuzz: ' "$out/output.log" | tr -d '\r' | grep -v '^fuzz: .* saved as ' | tail -n 6
for f in "$out"/*.prog; do
	[ -e "$f" ] && echo "fuzz: reproducer $f"
done
if [ $status -eq 0 ]; then
	echo "fuzz: passed; output and kernel log in $out"
else
	echo "fuzz: FAILED (status $status); output and kernel log in $out"
fi
exit $status
