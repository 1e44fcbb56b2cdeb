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
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cargo=${CARGO:-$(command -v cargo || echo "${CARGO_HOME:-$HOME/.cargo}/bin/cargo")}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hmmgpu/model-target}
mkdir -p "$CARGO_TARGET_DIR"
log=$CARGO_TARGET_DIR/run.log

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
	echo "range lock model: $passed tests passed$ignored, $runs interleavings, ${took} s"
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
