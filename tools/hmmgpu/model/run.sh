#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Model-checks the range lock protocol on the host, for make check: builds the
# model (the kernel's rust/kernel/mm/range_lock/protocol.rs as is, over loom)
# and runs its tests in release mode. The build is cached outside the clone.
# Prints one line; on failure, the failed checks first. Exits non-zero on
# failure.
#
# Usage: run.sh [TESTNAME]
#   HMMGPU_MODEL_BOUND=N|none  the preemption bound of the three-thread tests
#   HMMGPU_MODEL_FRESH=1       run even if these inputs passed before
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cargo=${CARGO:-$(command -v cargo || echo "${CARGO_HOME:-$HOME/.cargo}/bin/cargo")}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hmmgpu/model-target}
mkdir -p "$CARGO_TARGET_DIR"
log=$CARGO_TARGET_DIR/run.log

# The result of a run is a function of its inputs (loom explores every
# interleaving within the bound, in the same order each time): a run that
# passed is not repeated for the same sources, toolchain, bound and arguments.
# HMMGPU_MODEL_FRESH=1 runs it regardless.
top=$(cd "$here/../../.." && pwd)
key=$( (cd "$top" && cat tools/hmmgpu/model/Cargo.toml tools/hmmgpu/model/Cargo.lock \
		tools/hmmgpu/model/src/*.rs tools/hmmgpu/model/tests/*.rs \
		rust/kernel/mm/range_lock/protocol.rs rust/kernel/mm/invalidated/protocol.rs \
		"$here/run.sh"
	"${RUSTC:-rustc}" -vV; "$cargo" -V
	echo "bound=${HMMGPU_MODEL_BOUND:-} args=$*") 2>&1 | sha1sum | cut -c1-16)
passed_file=$CARGO_TARGET_DIR/passed/$key
if [ "${HMMGPU_MODEL_FRESH:-0}" != 1 ] && [ -s "$passed_file" ]; then
	echo "$(cat "$passed_file") (cached: these inputs passed on" \
		"$(date -r "$passed_file" '+%F %R'); HMMGPU_MODEL_FRESH=1 runs it again)"
	exit 0
fi

start=$SECONDS
"$cargo" test --release --locked --manifest-path "$here/Cargo.toml" "$@" -- --nocapture > "$log" 2>&1
status=$?
took=$((SECONDS - start))

passed=$(sed -nE 's/^test result: .* ([0-9]+) passed.*/\1/p' "$log" | awk '{ n += $1 } END { print n + 0 }')
failed=$(sed -nE 's/^test result: .* ([0-9]+) failed.*/\1/p' "$log" | awk '{ n += $1 } END { print n + 0 }')
ignored=$(sed -nE 's/^test result: .* ([0-9]+) ignored.*/\1/p' "$log" | awk '{ n += $1 } END { print n + 0 }')
runs=$(sed -nE 's/.*: ([0-9]+) interleavings.*/\1/p' "$log" | awk '{ n += $1 } END { print n + 0 }')
if [ $status -eq 0 ] && [ "$passed" -gt 0 ]; then
	[ "$ignored" -gt 0 ] && ignored=" ($ignored ignored)" || ignored=
	line="range lock model: $passed tests passed$ignored, $runs interleavings, ${took} s"
	mkdir -p "${passed_file%/*}" && echo "$line" > "$passed_file"
	echo "$line"
	exit 0
fi
# The failed checks, with what happened before them, or the build error.
if grep -q 'panicked at' "$log"; then
	grep -A40 'panicked at' "$log" | grep -vE '^ +[0-9]+: |^ +at |^stack backtrace:|^note: ' | head -n 80
else
	tail -n 40 "$log"
fi
echo "range lock model: FAILED, $passed passed, $failed failed, ${took} s (log: $log)"
exit 1
