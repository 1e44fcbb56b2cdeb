#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check: the host-side tests beside the guest run, then one line per test
# and the closing "N passed, N failed, N skipped" line. With --guest-only (make
# check-kasan), the guest run alone, on the kernel HMMGPU_FLAVOUR names: the
# host-side tests do not depend on the kernel's flavour.
#
# Usage: check.sh [--guest-only] OUTDIR BINDIR TIMEOUT
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
host_tests=1
[ "${1:-}" = --guest-only ] && { host_tests=0; shift; }
out=$1 bin=$2 timeout=$3
mkdir -p "$out/check"
host=$out/check/host.log
: > "$host"

# Tests that run on the host: the IGT-compatible core's own self-test, the
# formatting of the project's Rust code, the range lock's model check, the
# compile-fail snippets (against the test kernel's build) and the log scan's
# self-test. They run beside the guest, at a lower priority, and print after it.
run_host_tests() {
	if make -s -C "$top/igt-tests" selftest O="$out/igt-selftest" > "$out/check/igt-selftest.log" 2>&1; then
		echo "HMMGPU-RESULT: host/igt-core-selftest PASS" >> "$host"
	else
		tail -n 20 "$out/check/igt-selftest.log"
		echo "HMMGPU-RESULT: host/igt-core-selftest FAIL see $out/check/igt-selftest.log" >> "$host"
	fi
	if "$top/scripts/rustfmt.sh" --check > "$out/check/rustfmt.log" 2>&1; then
		echo "HMMGPU-RESULT: host/rustfmt PASS" >> "$host"
	else
		cat "$out/check/rustfmt.log"
		echo "HMMGPU-RESULT: host/rustfmt FAIL run make rustfmt" >> "$host"
	fi
	# The range lock's protocol, model-checked on the host with loom (the kernel's own
	# rust/kernel/mm/range_lock/protocol.rs).
	if "$top/tools/hmmgpu/model/run.sh" > "$out/check/model.log" 2>&1; then
		cat "$out/check/model.log"
		echo "HMMGPU-RESULT: host/range-lock-model PASS" >> "$host"
	else
		cat "$out/check/model.log"
		echo "HMMGPU-RESULT: host/range-lock-model FAIL see $out/check/model.log" >> "$host"
	fi
	# The framework's compile-time guarantees: snippets that misuse it must not build.
	if "$top/scripts/compile-fail.sh" "$out/check/compile-fail" > "$out/check/compile-fail.log" 2>&1; then
		echo "HMMGPU-RESULT: host/compile-fail PASS" >> "$host"
	else
		cat "$out/check/compile-fail.log"
		echo "HMMGPU-RESULT: host/compile-fail FAIL see $out/check/compile-fail.log" >> "$host"
	fi
	# The kernel-log scan finds a report of each kind it looks for.
	if "$top/scripts/check-log.py" --selftest > "$out/check/check-log.log" 2>&1; then
		echo "HMMGPU-RESULT: host/check-log-selftest PASS" >> "$host"
	else
		cat "$out/check/check-log.log"
		echo "HMMGPU-RESULT: host/check-log-selftest FAIL see $out/check/check-log.log" >> "$host"
	fi
}

host_pid=
if [ $host_tests -eq 1 ]; then
	( renice -n 10 -p $BASHPID > /dev/null; run_host_tests ) > "$out/check/host.out" 2>&1 &
	host_pid=$!
fi

"$top/scripts/vm.sh" -t "$timeout" -o "$out/check/vm" -b "$bin" -- sh /opt/hmmgpu/check.sh
vm_status=$?
if [ -n "$host_pid" ]; then
	wait "$host_pid"
	cat "$out/check/host.out"
fi

echo
echo "== results"
"$top/scripts/summary.py" "$out/check/vm/console.log" "$vm_status" \
	"$host" "$out/check/vm/output.log"
