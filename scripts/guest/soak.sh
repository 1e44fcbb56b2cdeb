#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make soak, inside the guest: load the driver and run hmmgpu_soak for $1
# seconds per VM mode, with seed $2 when given (else the test picks one and
# prints it).

seconds=${1:-600}
seed=${2:-}

modprobe hmmgpu || exit 1
HMMGPU_SOAK_SECONDS=$seconds HMMGPU_SOAK_SEED=$seed /opt/hmmgpu/bin/igt/hmmgpu_soak
rc=$?
modprobe -r hmmgpu || rc=1
exit $rc
