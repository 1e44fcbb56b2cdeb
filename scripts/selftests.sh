#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the kernel selftests that make check runs in the guest, from the
# kernel tree in the cache, statically: tools/testing/selftests/mm/hmm-tests.c
# exercises lib/test_hmm.ko, and so checks that the guest's mm configuration
# is what HMM needs.
#
# Usage: selftests.sh OUTDIR
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
eval "$("$top/scripts/kernel.sh" vars)"
out=$1
mkdir -p "$out"

src=$KSRC/tools/testing/selftests/mm/hmm-tests.c
bin=$out/hmm-tests
if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ]; then
	gcc -static -O2 -Wall -o "$bin" "$src" \
		-I"$KSRC/tools/testing/selftests" -I"$KSRC" -I"$KSRC/tools/include/uapi" -lpthread
fi
