#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Make sure every tool the build and the tests need is on the machine, and
# install what is missing. Quick and silent when everything is there.
set -euo pipefail

BINDGEN_VERSION=0.73.2

# Debian package -> a file it installs, so the check needs no dpkg query.
declare -A PKGS=(
	[linux-source-6.12]=/usr/src/linux-source-6.12.tar.xz
	[rustc-web]=/usr/bin/rustc
	[rust-web-src]=/usr/lib/rustlib/src/rust/library/core/src/lib.rs
	[rust-web-clippy]=/usr/bin/clippy-driver
	[libclang-dev]=/usr/lib/llvm-14/lib/libclang.so
	[clang]=/usr/bin/clang
	# The KASAN kernel (HMMGPU_FLAVOUR=kasan): Rust with KASAN needs a clang
	# build, and bindgen reads its headers with the same clang's libclang.
	[clang-19]=/usr/bin/clang-19
	[lld-19]=/usr/bin/ld.lld-19
	[llvm-19]=/usr/bin/llvm-ar-19
	[libclang1-19]=/usr/lib/llvm-19/lib/libclang-19.so.1
	[flex]=/usr/bin/flex
	[bison]=/usr/bin/bison
	[bc]=/usr/bin/bc
	[libelf-dev]=/usr/include/libelf.h
	[libssl-dev]=/usr/include/openssl/ssl.h
	[cpio]=/usr/bin/cpio
	[e2fsprogs]=/usr/sbin/mkfs.ext4
	[dwarves]=/usr/bin/pahole
	[kmod]=/usr/sbin/depmod
	[qemu-system-x86]=/usr/bin/qemu-system-x86_64
	[libdrm-dev]=/usr/lib/x86_64-linux-gnu/libdrm.a
	[busybox-static]=/bin/busybox
	[pkg-config]=/usr/bin/pkg-config
	[gcc]=/usr/bin/gcc
	[make]=/usr/bin/make
	[xz-utils]=/usr/bin/xz
	[rsync]=/usr/bin/rsync
	[python3]=/usr/bin/python3
)

missing=()
for pkg in "${!PKGS[@]}"; do
	[ -e "${PKGS[$pkg]}" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq >/dev/null
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin
bindgen=$cargo_bin/bindgen
if ! [ -x "$bindgen" ] || ! "$bindgen" --version 2>/dev/null | grep -qx "bindgen $BINDGEN_VERSION"; then
	echo "deps: installing bindgen-cli $BINDGEN_VERSION (about a minute)"
	command -v cargo >/dev/null || { echo "deps: cargo is needed to install bindgen-cli" >&2; exit 1; }
	cargo install --quiet --locked --force "bindgen-cli@$BINDGEN_VERSION"
fi
