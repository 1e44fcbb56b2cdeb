#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Prepare the kernel tree and build it.
#
# The kernel tree is unpacked once per kernel version into the cache, outside
# the clone. The project's files are copied in at their kernel paths when their
# content differs (so a fresh clone of unchanged files rebuilds nothing), and
# the patches in kernel/patches/ are kept applied: when they change, the old
# set is reversed and the new one applied. The build goes to a directory keyed
# by kernel version and config fragments.
#
# HMMGPU_FLAVOUR picks the kernel: "test" (the default; kernel/hmmgpu.config,
# with the debugging options make check relies on), "bench" (the same, with
# kernel/bench.config on top: no debugging options, for make bench), "kcov"
# (kernel/kcov.config on top: KCOV, for make fuzz FUZZ_KERNEL=kcov) or "kasan"
# (the test kernel with kernel/kasan.config on top, built with clang 19: Linux
# 6.12 has Rust and KASAN together only in a clang build). All share the source
# tree; each has its own build directory, keyed by the fragments and the
# toolchain, so that a gcc and a clang build never share one.
#
# Usage: kernel.sh vars | prepare | build | make ARGS...
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${HMMGPU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hmmgpu}
tarball=/usr/src/linux-source-6.12.tar.xz
# Debian's package version names the upstream release it carries (6.12.117-1~deb12u1).
kver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
kver=${kver%%-*}
src=$cache/src/linux-$kver
# toolchain: extra make variables of the build: the compiler (none: gcc), and
# KCOV_RUST=y for the kcov flavour (patch 0017: KCOV for the Rust code too).
toolchain=()
case "${HMMGPU_FLAVOUR:-test}" in
test) fragments=("$top/kernel/hmmgpu.config") ;;
bench) fragments=("$top/kernel/hmmgpu.config" "$top/kernel/bench.config") ;;
kcov)
	fragments=("$top/kernel/hmmgpu.config" "$top/kernel/kcov.config")
	toolchain=(KCOV_RUST=y)
	;;
kasan)
	fragments=("$top/kernel/hmmgpu.config" "$top/kernel/kasan.config")
	# Debian 12's clang-19, ld.lld-19, llvm-ar-19... Bindgen must parse the
	# headers with the same clang release (its default is the newest libclang
	# it finds, or libclang-dev's 14), so it is pointed at clang 19's.
	toolchain=(LLVM=-19)
	export LIBCLANG_PATH=/usr/lib/llvm-19/lib
	;;
*) echo "kernel: unknown HMMGPU_FLAVOUR ${HMMGPU_FLAVOUR}: test, bench, kcov or kasan" >&2; exit 2 ;;
esac
# The test kernel keeps the key it always had, so that its cache stays valid;
# extra make variables (a toolchain other than gcc) are part of the key.
fraghash=$( (cat "${fragments[@]}"; [ ${#toolchain[@]} -eq 0 ] || echo "${toolchain[*]}") |
	sha1sum | cut -c1-12)
build=${HMMGPU_BUILD:-$cache/build/$kver-$fraghash}
state=$src/.hmmgpu

# The project's files that live in the kernel tree, relative to its top.
ours() {
	cd "$top" && git ls-files --cached --others --exclude-standard -- \
		Kconfig drivers rust include Documentation 2>/dev/null ||
		find Kconfig drivers rust include Documentation -type f
}

# Debian's rustc, and its rustdoc, which builds the kernel crate's doctests and
# must be of the same release (the rustup one on PATH cannot read its crates).
kmake() {
	make -C "$src" O="$build" -j"$(nproc)" ${toolchain[@]+"${toolchain[@]}"} \
		RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
		BINDGEN="${CARGO_HOME:-$HOME/.cargo}/bin/bindgen" \
		CLIPPY_DRIVER=/usr/bin/clippy-driver ${HMMGPU_CLIPPY:+CLIPPY=1} \
		"$@"
}

unpack() {
	[ -f "$src/Makefile" ] && return
	echo "kernel: unpacking $kver into $src"
	mkdir -p "$cache/src"
	rm -rf "$src.tmp" && mkdir -p "$src.tmp"
	tar -xf "$tarball" -C "$src.tmp" --strip-components=1
	mkdir -p "$src.tmp/.hmmgpu/applied"
	mv "$src.tmp" "$src"
}

sync_files() {
	local f list new=$state/manifest.new
	ours | sort -u > "$new"
	while read -r f; do
		# The project's top-level Kconfig goes next to the kernel's.
		local dst=$src/$f
		[ "$f" = Kconfig ] && dst=$src/Kconfig.hmmgpu
		if ! cmp -s "$top/$f" "$dst"; then
			mkdir -p "$(dirname "$dst")"
			cp "$top/$f" "$dst"
		fi
	done < "$new"
	# Files we installed before and no longer have.
	if [ -f "$state/manifest" ]; then
		comm -23 "$state/manifest" "$new" | while read -r f; do
			rm -f "$src/$f"
		done
	fi
	mv "$new" "$state/manifest"
}

sync_patches() {
	local p name applied=() wanted=() keep=0 i
	for p in "$state"/applied/*.patch; do [ -f "$p" ] && applied+=("$(basename "$p")"); done
	for p in "$top"/kernel/patches/*.patch; do wanted+=("$(basename "$p")"); done
	# Keep the leading patches that did not change; reverse the rest, newest first.
	while [ $keep -lt ${#applied[@]} ] && [ $keep -lt ${#wanted[@]} ] &&
		[ "${applied[$keep]}" = "${wanted[$keep]}" ] &&
		cmp -s "$state/applied/${applied[$keep]}" "$top/kernel/patches/${wanted[$keep]}"; do
		keep=$((keep + 1))
	done
	for ((i = ${#applied[@]} - 1; i >= keep; i--)); do
		name=${applied[$i]}
		echo "kernel: reverting $name"
		patch -s -R -p1 -d "$src" < "$state/applied/$name"
		rm "$state/applied/$name"
	done
	for ((i = keep; i < ${#wanted[@]}; i++)); do
		name=${wanted[$i]}
		echo "kernel: applying $name"
		patch -s -N -p1 -d "$src" < "$top/kernel/patches/$name"
		cp "$top/kernel/patches/$name" "$state/applied/"
	done
}

configure() {
	[ -f "$build/.config" ] && [ -f "$build/.hmmgpu-configured" ] && return
	echo "kernel: configuring $build"
	mkdir -p "$build"
	kmake tinyconfig >/dev/null
	KCONFIG_CONFIG="$build/.config" "$src/scripts/kconfig/merge_config.sh" -m -O "$build" \
		"$build/.config" "${fragments[@]}" >/dev/null
	kmake olddefconfig >/dev/null
	# Every setting of the fragments must have taken effect (a later fragment's
	# setting of a symbol overrides an earlier one's).
	local bad=0 line sym val
	declare -A want=()
	while read -r line; do
		case "$line" in CONFIG_*=*) ;; *) continue ;; esac
		want[${line%%=*}]=${line#*=}
	done < <(cat "${fragments[@]}")
	for sym in "${!want[@]}"; do
		val=${want[$sym]}
		if [ "$val" = n ]; then
			grep -q "^$sym=" "$build/.config" && { echo "kernel: $sym is set, wanted n" >&2; bad=1; }
		else
			grep -qx "$sym=$val" "$build/.config" || { echo "kernel: $sym=$val did not take effect" >&2; bad=1; }
		fi
	done
	[ $bad -eq 0 ] || { echo "kernel: see make -C $src O=$build rustavailable / menuconfig" >&2; exit 1; }
	touch "$build/.hmmgpu-configured"
}

prepare() {
	mkdir -p "$cache"
	exec 9>"$cache/.lock"
	flock 9
	unpack
	sync_patches
	sync_files
}

case "${1:-build}" in
vars)
	echo "KVER=$kver"
	echo "KSRC=$src"
	echo "KBUILD=$build"
	;;
prepare)
	prepare
	;;
make)
	# make in the built kernel's tree, with the build's tools: for external modules
	# (M=DIR), as scripts/compile-fail.sh builds.
	shift
	kmake "$@"
	;;
build)
	prepare
	configure
	echo "kernel: building $kver in $build"
	log=$build/build.log
	if ! kmake bzImage modules > "$log" 2>&1; then
		# The first error with its context, as the compiler printed it.
		grep -n -m1 -E "^error|: error:|ERROR:|Error [0-9]" "$log" | cut -d: -f1 |
			xargs -I{} sed -n '{},+60p' "$log" >&2
		echo "kernel: build failed, full log in $log" >&2
		exit 1
	fi
	grep -E "^(warning|error)|: warning:" "$log" >&2 || true
	rm -rf "$build/modroot"
	kmake INSTALL_MOD_PATH="$build/modroot" INSTALL_MOD_STRIP=1 modules_install >/dev/null
	echo "${HMMGPU_FLAVOUR:-test}" > "$build/.hmmgpu-used"
	# Keep the three build directories used last (other fragments, other clones)
	# and the last one of each flavour, so that building one flavour never
	# evicts another's (make ci needs two, make fuzz and make bench one more).
	ls -td "$cache"/build/*/.hmmgpu-used 2>/dev/null | {
		n=0 seen=" "
		while read -r used; do
			n=$((n + 1))
			flavour=$(cat "$used" 2>/dev/null)
			flavour=${flavour:-unknown}
			case "$seen" in *" $flavour "*) first=n ;; *) first=y ;; esac
			seen="$seen$flavour "
			[ $n -le 3 ] || [ $first = y ] && continue
			echo "kernel: removing the unused build directory $(dirname "$used")"
			rm -rf "$(dirname "$used")"
		done
	}
	;;
*)
	echo "usage: $0 vars|prepare|build" >&2
	exit 2
	;;
esac
