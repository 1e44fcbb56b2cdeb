#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the built kernel in QEMU (TCG: KVM does not work on these machines) and
# run a command in the guest. The guest's initramfs carries busybox, the
# kernel's modules, the project's test binaries (with their libraries) and the
# guest scripts; a fresh ext4 image is its disk. Its /init sets up swap, the
# disk and the memory cgroup, and checks the CPUs, clocksource and NUMA nodes
# (README.md: "What the guest has, and why"). The command's output is shown as
# it runs and kept in $out/output.log; the kernel log is kept in
# $out/console.log.
#
# Exit status: the command's, or 124 when the wall-clock limit killed the
# guest, or 125 when the guest ended without reporting a status. A kernel
# log that shows an oops, a warning, a lockdep report, a leak or a hung task
# fails the run even when the command passed, as does a guest that /init
# found not set up as the tests expect.
#
# Usage: vm.sh [-t SECONDS] [-o OUTDIR] [-b BINDIR]... -- COMMAND...
#
# The contents of each BINDIR land in the guest's /opt/hmmgpu/bin, which is on PATH.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
eval "$("$top/scripts/kernel.sh" vars)"
timeout=${HMMGPU_VM_TIMEOUT:-1200}
out=$top/out/vm
bindirs=()
while getopts t:o:b: opt; do
	case $opt in
	t) timeout=$OPTARG ;;
	o) out=$OPTARG ;;
	b) bindirs+=("$OPTARG") ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || { echo "usage: $0 [-t S] [-o DIR] [-b BINDIR]... -- COMMAND..." >&2; exit 2; }

kernel=$KBUILD/arch/x86/boot/bzImage
[ -f "$kernel" ] || { echo "vm: no kernel at $kernel: run make kernel" >&2; exit 1; }

mkdir -p "$out"
root=$out/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc,lib,lib64,opt/hmmgpu/bin}

cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
cp "$top/scripts/guest/init" "$root/init"
cp "$top"/scripts/guest/*.sh "$root/opt/hmmgpu/" 2>/dev/null || true
cp -a "$KBUILD/modroot/lib/modules" "$root/lib/"
printf '%s\n' "$*" > "$root/opt/hmmgpu/cmd"

# Test binaries, and the shared libraries of those that are not static.
for dir in "${bindirs[@]}"; do
	[ -d "$dir" ] && cp -a "$dir"/. "$root/opt/hmmgpu/bin/"
done
find "$root/opt/hmmgpu/bin" -type f -perm -u+x | while read -r bin; do
	{ ldd "$bin" 2>/dev/null || true; } | { grep -o '/[^ ]*' || true; } | while read -r lib; do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
done

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initramfs.cpio.gz"

# A fresh ext4 disk for each boot (the guest mounts it at /mnt/ext4): file
# mappings there are written back to a real block device.
disk=$out/ext4.img
rm -f "$disk"
truncate -s 1G "$disk"
mkfs.ext4 -q -F -L hmmgpu -E lazy_itable_init=0,lazy_journal_init=0 "$disk"

: > "$out/console.log"
: > "$out/output.log"
# Lines for the host (markers, the bench's JSON) are not shown.
tail -n +1 -f "$out/output.log" | grep --line-buffered -v '^HMMGPU-\(BEGIN\|EXIT\|BENCH\)' &
tailer=$!
# HMMGPU_VM_KEEP_DISK=1 keeps the disk for the caller to read (make fuzz).
trap 'kill $tailer 2>/dev/null || true; [ -n "${HMMGPU_VM_KEEP_DISK:-}" ] || rm -f "$disk"' EXIT

# Two vCPUs under multi-threaded TCG, each its own socket on its own NUMA node
# of 2 GiB (in one socket they would share a last-level cache across nodes,
# which the scheduler warns about). Only 1 GiB of RAM sits below 4 GiB, so
# that both nodes have a Normal zone and movablecore= gives each a movable zone.
# The kernel command line, beyond the console and panic settings:
#  transparent_hugepage=always  THPs wherever they fit
#  tsc=reliable        no clocksource watchdog or sync check for the TSC (under
#                      TCG it is the host's TSC): a check that a descheduled vCPU
#                      thread delays must not make the kernel drop it for the
#                      HPET, which is slow to read under TCG
#  pci=noacpi          route PCI interrupts with the BIOS's $PIR table: under
#                      TCG with lockdep and kmemleak, the ACPI _PRT method takes
#                      7 s to interpret for each PCI device
#  movablecore=1G      a movable zone, and a CMA area: long-term pins must
#  cma=128M            migrate pages out of them first
#  hmmgpu_cpus=N       how many CPUs /init must find online
#  kasan_multi_shot    (KASAN kernels) report every bad access, not only the
#                      first: by default KASAN falls silent after its first
#                      report, and lockdep turns itself off with the taint
cpus=2
cmdline="console=ttyS0 ignore_loglevel oops=panic panic=-1 rdinit=/init"
cmdline+=" transparent_hugepage=always tsc=reliable pci=noacpi"
cmdline+=" movablecore=1G cma=128M hmmgpu_cpus=$cpus"
if grep -qx CONFIG_KASAN=y "$KBUILD/.config"; then
	cmdline+=" kasan_multi_shot"
fi

start=$(date +%s)
set +e
timeout -s KILL "$timeout" qemu-system-x86_64 \
	-accel tcg,thread=multi -cpu max -smp $cpus,sockets=$cpus \
	-machine pc,max-ram-below-4g=1G -m 4G \
	-object memory-backend-ram,id=mem0,size=2G \
	-object memory-backend-ram,id=mem1,size=2G \
	-numa node,nodeid=0,cpus=0,memdev=mem0 \
	-numa node,nodeid=1,cpus=1,memdev=mem1 \
	-nodefaults -display none -no-reboot \
	-kernel "$kernel" -initrd "$out/initramfs.cpio.gz" \
	-append "$cmdline" \
	-serial file:"$out/console.log" -serial file:"$out/output.log" \
	-drive if=none,id=disk,format=raw,cache=unsafe,file="$disk" \
	-device virtio-blk-pci,drive=disk \
	-device virtio-gpu-pci </dev/null
qemu_rc=$?
set -e
sleep 0.3
kill $tailer 2>/dev/null || true
wait $tailer 2>/dev/null || true
elapsed=$(($(date +%s) - start))

rc=$(sed -n 's/^HMMGPU-EXIT: \([0-9]*\).*/\1/p' "$out/output.log" | tail -n 1)
if [ $qemu_rc -eq 137 ]; then
	echo "vm: the guest ran past the ${timeout}s limit and was killed" >&2
	rc=124
elif [ -z "$rc" ]; then
	echo "vm: the guest ended without reporting a status (QEMU exit $qemu_rc); see $out/console.log" >&2
	rc=125
fi
echo "vm: guest finished in ${elapsed}s, status $rc; kernel log in $out/console.log" >&2

# The guest's /init checks what the tests rely on (CPUs online, clocksource,
# swap, disk, NUMA nodes, memory cgroup): a run without them proves little.
if grep -q '^HMMGPU-RESULT: guest/[^ ]* FAIL' "$out/output.log"; then
	echo "vm: the guest is not set up as the tests expect:" >&2
	grep '^HMMGPU-RESULT: guest/[^ ]* FAIL' "$out/output.log" | sed 's/^/vm:   /' >&2
	[ "$rc" -ne 0 ] || rc=1
fi

if ! "$top/scripts/check-log.py" "$out/console.log" >&2; then
	[ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
