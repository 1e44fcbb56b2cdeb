#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make bench, inside the guest: load hmmgpu and the references (test_hmm for
# /dev/hmm_dmirror0; gup_test is built in, under debugfs), run hmmgpu_bench
# with $1 repetitions at the sizes (MiB) that follow, and unload. The exit
# status is non-zero when a module did not load or unload, or the bench found
# something that does not work or data that is wrong.
#
# Usage: bench.sh REPS SIZE_MIB...

reps=${1:-5}
[ $# -gt 0 ] && shift

modprobe hmmgpu || exit 1
if ! modprobe test_hmm; then
	modprobe -r hmmgpu
	exit 1
fi
[ -e /sys/kernel/debug/gup_test ] || mount -t debugfs debugfs /sys/kernel/debug
# NUMA balancing would unmap pages now and then, invalidating what is mirrored:
# noise in every figure. /init leaves it off; make sure.
echo 0 > /proc/sys/kernel/numa_balancing

# Jobs and GPU faults run in workers of unbound workqueues. Under TCG a vCPU
# halted in the idle loop may wake for the other's wakeup only at its next tick:
# a pipe round trip between threads on the two CPUs took 0 to 4 ms (p50 2.9 ms,
# 22 us on one CPU), and so did a job whose worker ran on the other CPU, which
# swamped the figures of microseconds. The bench runs on CPU 0 (its storm
# thread on CPU 1): so do the unbound workqueues while it runs.
wq=/sys/devices/virtual/workqueue/cpumask
wq_mask=$(cat $wq) || exit 1
echo 1 > $wq || exit 1

/opt/hmmgpu/bin/hmmgpu_bench -r "$reps" "$@"
rc=$?
echo "$wq_mask" > $wq || rc=1
modprobe -r test_hmm || rc=1
modprobe -r hmmgpu || rc=1
exit $rc
