#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make fuzz, inside the guest: load hmmgpu and run hmmgpu_fuzz for $1 seconds,
# with seed $2 when given (else it picks one and prints it). Its findings and
# the program in flight go to the ext4 disk (/mnt/ext4/fuzz), which the host
# reads back when the guest did not get to print them (a panic).

seconds=${1:-600}
seed=${2:-}
dir=/mnt/ext4/fuzz

modprobe hmmgpu || exit 1
mkdir -p $dir
/opt/hmmgpu/bin/hmmgpu_fuzz -t "$seconds" ${seed:+-s "$seed"} -o $dir
rc=$?
sync
modprobe -r hmmgpu || rc=1
exit $rc
