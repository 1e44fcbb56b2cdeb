#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# make run, inside the guest: load the driver and run the demonstration.

modprobe hmmgpu || exit 1
/opt/hmmgpu/bin/hmmgpu_demo
rc=$?
modprobe -r hmmgpu || rc=1
exit $rc
