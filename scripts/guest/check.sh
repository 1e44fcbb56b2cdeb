#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make check, inside the guest: load the driver (which runs its KUnit suites),
# run every IGT test binary, unload. Each binary's output is framed by
# HMMGPU-TEST-BEGIN/END lines that the host's summary reads.

bin=/opt/hmmgpu/bin
status=0

result() {
	echo "HMMGPU-RESULT: $1 $2${3:+ $3}"
	[ "$2" != FAIL ] || status=1
}

if modprobe hmmgpu; then
	result module/load PASS
else
	result module/load FAIL "modprobe hmmgpu failed"
fi

for t in $bin/igt/*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	name=$(basename "$t")
	echo "HMMGPU-TEST-BEGIN: $name"
	"$t"
	rc=$?
	echo "HMMGPU-TEST-END: $name rc=$rc"
	case $rc in 0|77) ;; *) status=1 ;; esac
done

if modprobe -r hmmgpu && ! [ -e /sys/module/hmmgpu ]; then
	result module/unload PASS
else
	result module/unload FAIL "modprobe -r hmmgpu failed"
fi
exit $status
