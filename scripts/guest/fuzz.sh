#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make fuzz, inside the guest: load hmmgpu and run hmmgpu_fuzz for $1 seconds,
# with seed $2 when given (else each run picks one and prints it), as $3 runs
# side by side (default 1; run I gets seed $2 + I and its own corpus), one per
# CPU being what keeps both busy. Each run's findings and the program in
# flight go to the ext4 disk (/mnt/ext4/fuzz/I), which the host reads back
# when the guest did not get to print them (a panic). The runs' outputs are
# printed one after the other at the end, their reproducers named I-NNN-KIND.

seconds=${1:-600}
seed=${2:-}
jobs=${3:-1}
dir=/mnt/ext4/fuzz

modprobe hmmgpu || exit 1
rm -rf $dir
i=0
while [ $i -lt "$jobs" ]; do
	mkdir -p $dir/$i
	/opt/hmmgpu/bin/hmmgpu_fuzz -t "$seconds" ${seed:+-s $((seed + i))} -o $dir/$i \
		> $dir/$i/output 2>&1 &
	echo $! > $dir/$i/pid
	i=$((i + 1))
done
rc=0
i=0
while [ $i -lt "$jobs" ]; do
	wait "$(cat $dir/$i/pid)" || rc=1
	[ "$jobs" -gt 1 ] && echo "fuzz: run $i of $jobs:"
	sed "s/^\(HMMGPU-FUZZ-REPRO-[A-Z]*\): /\1: $i-/" $dir/$i/output
	i=$((i + 1))
done
if [ "$jobs" -gt 1 ]; then
	# The runs' totals: "fuzz: seed S, P programs, I ioctls (K succeeded), C calls in T s".
	sed -n 's/^fuzz: seed [0-9]*, \([0-9]*\) programs, \([0-9]*\) ioctls.*/\1 \2/p' \
		$dir/*/output | awk -v n="$jobs" '{ p += $1; i += $2 }
		END { printf "fuzz: %d runs together: %d programs, %d ioctls\n", n, p, i }'
fi
sync
modprobe -r hmmgpu || rc=1
exit $rc
