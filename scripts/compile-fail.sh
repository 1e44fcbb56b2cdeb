#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The compile-fail check of the framework's guarantees. Each snippet in
# tools/hmmgpu/compile-fail/ is built, after common.rs, as an external module of
# the test kernel, all in one make -k. control.rs does right what the others do
# wrong and must build; every other snippet must fail with the error its first
# line names ("// expect: E0597"), in its own file. The exit status is non-zero
# when a snippet builds that must not, fails for another reason, or the control
# does not build.
#
# Usage: compile-fail.sh WORKDIR
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
dir=$top/tools/hmmgpu/compile-fail
work=$1
rm -rf "$work" && mkdir -p "$work"

objs=()
for f in "$dir"/*.rs; do
	name=$(basename "$f" .rs)
	[ "$name" = common ] && continue
	{ cat "$dir/common.rs"; echo; cat "$f"; } > "$work/cf_$name.rs"
	objs+=("cf_$name.o")
done
echo "obj-m := ${objs[*]}" > "$work/Kbuild"

"$top/scripts/kernel.sh" make -k M="$work" "${objs[@]}" > "$work/build.log" 2>&1

python3 - "$dir" "$work" <<'PY'
import os, re, sys

src, work = sys.argv[1], sys.argv[2]
log = open(os.path.join(work, "build.log"), errors="replace").read().splitlines()
# error[E0597]: ... then, a few lines on, "--> path/cf_NAME.rs:LINE:COL".
errors = {}
code = None
for line in log:
    m = re.match(r"error\[(E\d{4})\]", line)
    if m:
        code = m.group(1)
        continue
    m = re.search(r"--> .*?cf_(\w+)\.rs:\d+", line)
    if m and code:
        errors.setdefault(m.group(1), set()).add(code)
        code = None
    elif line.startswith("error"):
        code = None

failed = 0
for f in sorted(os.listdir(src)):
    name, ext = os.path.splitext(f)
    if ext != ".rs" or name == "common":
        continue
    first = open(os.path.join(src, f)).readline()
    want = re.match(r"// expect: (\S+)", first)
    want = want.group(1) if want else "?"
    got = errors.get(name, set())
    built = os.path.exists(os.path.join(work, "cf_%s.o" % name))
    if want == "builds":
        ok = built and not got
        what = "builds" if built else "fails: " + " ".join(sorted(got) or ["?"])
    else:
        ok = want in got and not built
        what = "builds" if built else "fails with " + " ".join(sorted(got) or ["no error code"])
    print("compile-fail: %-16s expect %-7s %-30s %s" % (name, want, what, "ok" if ok else "WRONG"))
    failed += not ok
if failed:
    print("compile-fail: %d snippet(s) wrong; the compiler's output is in %s/build.log" % (failed, work))
sys.exit(1 if failed else 0)
PY
