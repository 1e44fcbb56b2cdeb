#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Format the project's Rust files with the kernel's rustfmt settings, or with
# --check only report what is not formatted.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
eval "$("$top/scripts/kernel.sh" vars)"
rustfmt=${RUSTFMT:-$(command -v rustfmt || echo "${CARGO_HOME:-$HOME/.cargo}/bin/rustfmt")}
config=$KSRC/.rustfmt.toml
[ -f "$config" ] || "$top/scripts/kernel.sh" prepare

cd "$top"
files=$(git ls-files --cached --others --exclude-standard -- '*.rs' 2>/dev/null | sort -u || find . -name '*.rs')
# shellcheck disable=SC2086
"$rustfmt" --config-path "$config" --edition 2021 "$@" $files
