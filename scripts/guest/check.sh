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

# The ioctl fuzzer, briefly and with a fixed seed (make fuzz runs it as long as
# asked): one result, which names the reproducers it printed when it failed.
if [ -x $bin/hmmgpu_fuzz ]; then
	$bin/hmmgpu_fuzz -t 25 -s 1 -o /tmp/fuzz > /tmp/fuzz.log 2>&1
	rc=$?
	cat /tmp/fuzz.log
	line=$(sed -n 's/^fuzz: \(seed .*\)/\1/p' /tmp/fuzz.log | tail -n 1)
	if [ $rc -eq 0 ]; then
		result fuzz/hmmgpu_fuzz PASS "$line"
	else
		result fuzz/hmmgpu_fuzz FAIL "exit status $rc: $line; reproducers above"
	fi
fi

# The core MM's own HMM selftest, against lib/test_hmm.ko: a check that the
# guest's mm configuration is what HMM needs.
if [ -x $bin/selftests/hmm-tests ]; then
	if modprobe test_hmm; then
		result selftest/test_hmm/load PASS
		thp=/sys/kernel/mm/transparent_hugepage/enabled
		# Huge pages for the hugetlbfs cases.
		echo 16 > /proc/sys/vm/nr_hugepages
		# In 6.12 make_device_exclusive_range() skips the pages of large folios, so
		# the exclusive cases fail with -EBUSY when every anonymous mapping gets
		# THPs; anon_write_huge asks for them with MADV_HUGEPAGE.
		echo madvise > $thp
		echo "HMMGPU-KTAP-BEGIN: hmm-tests"
		(cd /tmp && $bin/selftests/hmm-tests)
		echo "HMMGPU-KTAP-END: hmm-tests rc=$?"
		echo always > $thp
		echo 0 > /proc/sys/vm/nr_hugepages
		modprobe -r test_hmm || result selftest/test_hmm/unload FAIL
	else
		result selftest/test_hmm/load FAIL "modprobe test_hmm failed"
	fi
fi

if modprobe -r hmmgpu && ! [ -e /sys/module/hmmgpu ]; then
	result module/unload PASS
else
	result module/unload FAIL "modprobe -r hmmgpu failed"
fi
exit $status
