#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Builds the core's self-test programs (lib/tests/) and checks what they
# print and return against IGT's behaviour: result lines, failure messages,
# exit codes 0/77/79/98, subtest selection and listing, fixtures, dynamic
# subtests and forked children. Needs no DRM device.
#
# Usage: lib/selftest.sh   (O=DIR for the build directory, as make takes it)
# Prints each failed check, and "N passed, N failed" last; exits non-zero
# when any check failed.

set -u

here=$(cd "$(dirname "$0")/.." && pwd)
O=${O:-$here/build}
MAKE=${MAKE:-make}

passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! $MAKE -s -C "$here" O="$O" selftest-build >"$tmp/build.log" 2>&1; then
	cat "$tmp/build.log"
	echo "selftest: the build failed"
	echo "0 passed, 1 failed"
	exit 1
fi

st=$O/lib/tests/igt_selftest
simple=$O/lib/tests/igt_selftest_simple
basic=$O/hmmgpu_basic
src=lib/tests/igt_selftest.c

# A subtest's result line, as IGT prints it without a terminal.
T='\([0-9]+\.[0-9]{3}s\)'
# The prefix of a logged line that is not information.
P='\(igt_selftest:[0-9]+\)'

pass() {
	passed=$((passed + 1))
}

fail() {
	failed=$((failed + 1))
	echo "FAIL: [$label] $*"
}

# run LABEL COMMAND...: runs it, keeping stdout, stderr and the exit status.
run() {
	label=$1
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
}

expect_rc() {
	if [ "$rc" -eq "$1" ]; then pass; else fail "exit status $rc, expected $1"; fi
}

# expect_line out|err REGEX: some whole line matches the extended regex.
expect_line() {
	if grep -Eq -- "^$2\$" "$tmp/$1"; then pass; else fail "no line in std$1: $2"; fi
}

expect_no_line() {
	if grep -Eq -- "^$2\$" "$tmp/$1"; then fail "unexpected line in std$1: $2"; else pass; fi
}

# expect_count out|err REGEX N: exactly N whole lines match.
expect_count() {
	n=$(grep -Ec -- "^$2\$" "$tmp/$1")
	if [ "$n" -eq "$3" ]; then pass; else fail "$n lines in std$1 match $2, expected $3"; fi
}

expect_empty() {
	if [ -s "$tmp/$1" ]; then fail "std$1 is not empty: $(head -n 3 "$tmp/$1")"; else pass; fi
}

# The line of the source that carries "selftest: NAME".
line_of() {
	grep -n "selftest: $1 \*/" "$here/$src" | cut -d: -f1
}

subtests="pass formatted-7 skip require require-f skip-on fail-eq fail-errno fail-u32
fail-u64 fail-lt fail-lte fail-neq fail-fd fail-f fail-direct fail-code dynamic-mixed
dynamic-pass dynamic-none dynamic-all-skip dynamic-container-skip dynamic-f-x fork-pass
fork-fail fork-skip fork-signal fixture-skip-a fixture-skip-b fixture-fail-a fixture-pass
after-groups"
num_subtests=$(echo $subtests | wc -w)

# --- Listing -----------------------------------------------------------------

run list "$st" --list-subtests
expect_rc 0
echo $subtests | tr ' ' '\n' >"$tmp/expected"
if cmp -s "$tmp/out" "$tmp/expected"; then pass; else fail "listed: $(tr '\n' ' ' <"$tmp/out")"; fi
expect_empty err

# Listing runs no fixture: a failing one changes nothing.
run list-top-fail env SELFTEST_TOP=fail "$st" --list-subtests
expect_rc 0
if cmp -s "$tmp/out" "$tmp/expected"; then pass; else fail "listing differs"; fi
expect_empty err

# --- A full run ----------------------------------------------------------------

run full "$st"
expect_rc 98
expect_line out 'IGT-Version: .*'
expect_count out "Subtest [a-z0-9-]+: (SUCCESS|SKIP|FAIL) $T" "$num_subtests"

expect_line out 'Starting subtest: pass'
expect_line out "Subtest pass: SUCCESS $T"
expect_line out 'info line'
expect_line err "$P WARNING: warn line"
expect_no_line out "$P DEBUG: before passing"
expect_line out "Subtest formatted-7: SUCCESS $T"

expect_line out 'deliberate skip'
expect_line out "Subtest skip: SKIP $T"
expect_line out "Test requirement not met in function require_x, file $src:$(line_of require):"
expect_line out 'Test requirement: x == 2'
expect_line out "Subtest require: SKIP $T"
expect_line out 'Test requirement: y > 10'
expect_line out 'need more than 10'
expect_line out "Subtest require-f: SKIP $T"
expect_line out 'Test requirement: !\(x == 1\)'
expect_line out "Subtest skip-on: SKIP $T"

expect_line out "Subtest fail-eq: FAIL $T"
expect_line err "$P CRITICAL: Test assertion failure function fail_eq, file $src:$(line_of fail-eq):"
expect_line err "$P CRITICAL: Failed assertion: a == b"
expect_line err "$P CRITICAL: error: 3 != 4"
# The log of a failed subtest, debug lines included, follows its failure.
expect_line err 'Subtest fail-eq failed\.'
expect_line err '\*\*\*\* DEBUG \*\*\*\*'
expect_line err "$P DEBUG: before failing"
expect_line err '\*\*\*\*  END  \*\*\*\*'

expect_line out "Subtest fail-errno: FAIL $T"
expect_line err "$P CRITICAL: Test assertion failure function fail_errno, file $src:$(line_of fail-errno):"
expect_line err "$P CRITICAL: Failed assertion: x == 2"
expect_line err "$P CRITICAL: Last errno: 22, Invalid argument"
expect_line err "$P CRITICAL: error: 0x10 != 0x20"
expect_line err "$P CRITICAL: error: 0x10000000000 != 0x1"
expect_line err "$P CRITICAL: Failed assertion: a < b"
expect_line err "$P CRITICAL: error: 5 >= 5"
expect_line err "$P CRITICAL: Failed assertion: a <= b"
expect_line err "$P CRITICAL: error: 6 > 5"
expect_line err "$P CRITICAL: Failed assertion: a != b"
expect_line err "$P CRITICAL: error: 7 == 7"
expect_line err "$P CRITICAL: Failed assertion: fd >= 0"
expect_line err "$P CRITICAL: file descriptor fd failed"
expect_line err "$P CRITICAL: x is 1"
for t in fail-u32 fail-u64 fail-lt fail-lte fail-neq fail-fd fail-f fail-direct fail-code; do
	expect_line out "Subtest $t: FAIL $T"
done

expect_line out 'Starting dynamic subtest: dyn-pass'
expect_line out "Dynamic subtest dyn-pass: SUCCESS $T"
expect_line out "Dynamic subtest dyn-fail: FAIL $T"
expect_line out "Dynamic subtest dyn-skip: SKIP $T"
expect_line out "Dynamic subtest dyn-f-3: SUCCESS $T"
expect_line out "Subtest dynamic-mixed: FAIL $T"
expect_line err 'Dynamic subtest dyn-fail failed\.'
# The container's failure is its dynamic subtest's: no second log.
expect_no_line err 'Subtest dynamic-mixed failed\.'
expect_line out "Subtest dynamic-pass: SUCCESS $T"
expect_line out 'No dynamic tests executed\.'
expect_line out "Subtest dynamic-none: SKIP $T"
expect_line out "Dynamic subtest only: SKIP $T"
expect_line out "Subtest dynamic-all-skip: SKIP $T"
expect_line out 'container requirement'
expect_no_line out 'Starting dynamic subtest: never'
expect_line out "Subtest dynamic-container-skip: SKIP $T"
expect_line out "Subtest dynamic-f-x: SUCCESS $T"

expect_line out "Subtest fork-pass: SUCCESS $T"
expect_line out 'child 1 failed with exit status 98'
expect_line err '\(igt_selftest:[0-9]+\) CRITICAL: error: 1 != 0'
expect_line out "Subtest fork-fail: FAIL $T"
expect_line err "$P CRITICAL: skips are not allowed in forks"
expect_line out "Subtest fork-skip: FAIL $T"
expect_line out 'child 0 died with signal 9, Killed'
expect_line out "Subtest fork-signal: FAIL $T"

# Subtests after a failed or skipped fixture report without starting.
expect_line out 'fixture requirement'
expect_line out 'Subtest fixture-skip-a: SKIP \(0\.000s\)'
expect_line out 'Subtest fixture-skip-b: SKIP \(0\.000s\)'
expect_no_line out 'Starting subtest: fixture-skip-a'
expect_line out 'Subtest fixture-fail-a: FAIL \(0\.000s\)'
expect_no_line out 'Starting subtest: fixture-fail-a'
expect_line err 'Test igt_selftest failed\.'
# A group confines its fixture's failure.
expect_line out "Subtest fixture-pass: SUCCESS $T"
expect_line out "Subtest after-groups: SUCCESS $T"

# --- Selecting subtests --------------------------------------------------------

quiet="env SELFTEST_GROUP_FIXTURE=pass"

run only-pass $quiet "$st" --run-subtest pass
expect_rc 0
expect_count out 'Starting subtest: .*' 1
expect_line out "Subtest pass: SUCCESS $T"

run only-skip $quiet "$st" --run-subtest skip
expect_rc 77
expect_line out "Subtest skip: SKIP $T"

run only-fixture-skip $quiet "$st" --run-subtest 'fixture-skip-*'
expect_rc 77
expect_count out "Subtest .*" 2

run list-of-two $quiet "$st" --run-subtest 'pass,skip'
expect_rc 0
expect_count out "Subtest (pass|skip): (SUCCESS|SKIP) $T" 2
expect_count out 'Starting subtest: .*' 2

run only-fail $quiet "$st" --run-subtest fail-eq
expect_rc 98
expect_count out "Subtest fail-eq: FAIL $T" 1

# The exit status is the first failure's.
run fail-code $quiet "$st" --run-subtest fail-code
expect_rc 99

run fork-signal $quiet "$st" --run-subtest fork-signal
expect_rc 137

run wildcards $quiet "$st" --run-subtest 'fail-[el]*,fork-?ass'
expect_rc 98
expect_count out "Subtest .*" 5
expect_line out "Subtest fork-pass: SUCCESS $T"

run negation $quiet "$st" --run-subtest '*,!f*,!dynamic-mixed'
expect_rc 0
expect_no_line out 'Starting subtest: f.*'
expect_line out "Subtest after-groups: SUCCESS $T"
expect_count out "Subtest .*" 11

run unknown $quiet "$st" --run-subtest nonexistent
expect_rc 79
expect_line err "$P CRITICAL: Unknown subtest: nonexistent"

# Fixtures run whatever is selected, as in IGT: a failing one fails the run.
run fixture-fails-run "$st" --run-subtest pass
expect_rc 98
expect_line out "Subtest pass: SUCCESS $T"

run dynamic-one $quiet "$st" --run-subtest dynamic-mixed --dynamic-subtest dyn-pass
expect_rc 0
expect_no_line out 'Starting dynamic subtest: dyn-fail'
expect_line out "Subtest dynamic-mixed: SUCCESS $T"

run dynamic-wildcard $quiet "$st" --run-subtest dynamic-mixed --dynamic-subtest 'dyn-f*'
expect_rc 98
expect_count out 'Starting dynamic subtest: .*' 2
expect_line out "Subtest dynamic-mixed: FAIL $T"

run dynamic-none $quiet "$st" --run-subtest dynamic-mixed --dynamic-subtest nope
expect_rc 77
expect_line out "Subtest dynamic-mixed: SKIP $T"

run debug $quiet "$st" --debug --run-subtest pass
expect_rc 0
expect_line out "$P DEBUG: before passing"

# --- A fixture before every subtest ----------------------------------------------

run top-skip env SELFTEST_TOP=skip "$st"
expect_rc 77
expect_line out 'top-level fixture skipped'
expect_count out "Subtest [a-z0-9-]+: SKIP \(0\.000s\)" "$num_subtests"
expect_count out 'Starting subtest: .*' 0

run top-fail env SELFTEST_TOP=fail "$st"
expect_rc 98
expect_line err "$P CRITICAL: top-level fixture failed"
expect_count out "Subtest [a-z0-9-]+: FAIL \(0\.000s\)" "$num_subtests"
expect_count out 'Starting subtest: .*' 0

# --- Other options -------------------------------------------------------------

run help "$st" --help
expect_rc 0
expect_line out 'Usage: igt_selftest \[OPTIONS\]'

run bad-option "$st" --no-such-option
expect_rc 79
expect_line err 'Usage: igt_selftest \[OPTIONS\]'

run help-description "$st" --help-description
expect_rc 0
expect_line out 'Checks of the IGT-compatible core itself\.'

run describe "$st" --describe='pass,fixture-skip-a,after-groups'
expect_rc 0
expect_line out "SUB pass $src:[0-9]+:"
expect_line out '  Passes, with every assertion holding\.'
expect_line out "SUB fixture-skip-a $src:[0-9]+:"
expect_line out '  A fixture that skips\.'
expect_line out "SUB after-groups $src:[0-9]+:"
expect_line out '  NO DOCUMENTATION!'
expect_count out 'SUB .*' 3

# --- A test without subtests -----------------------------------------------------

P='\(igt_selftest_simple:[0-9]+\)'

run simple-pass "$simple"
expect_rc 0
expect_line out 'simple pass'
expect_line out "SUCCESS $T"

run simple-skip env SELFTEST_MODE=skip "$simple"
expect_rc 77
expect_line out 'simple skip'
expect_line out "SKIP $T"

run simple-fail env SELFTEST_MODE=fail "$simple"
expect_rc 98
expect_line err "$P CRITICAL: error: 1 != 2"
expect_line err 'Test igt_selftest_simple failed\.'
expect_line out "FAIL $T"

run simple-fork-fail env SELFTEST_MODE=fork-fail "$simple"
expect_rc 98
expect_line out 'child 1 failed with exit status 98'
expect_line out "FAIL $T"

run simple-list "$simple" --list-subtests
expect_rc 79

run simple-run-subtest "$simple" --run-subtest x
expect_rc 79
expect_line err "$P WARNING: Unknown subtest: x"

# --- hmmgpu_basic without a device -------------------------------------------------

run basic-list "$basic" --list-subtests
expect_rc 0
expect_line out 'module-reload'
expect_line out 'get-param'
expect_empty err
num_basic=$(wc -l <"$tmp/out")

if [ -e /dev/dri ]; then
	echo "selftest: /dev/dri exists, not checking hmmgpu_basic's run without a device"
else
	run basic-no-device "$basic"
	expect_rc 77
	expect_line out 'No known gpu found for chipset flags 0x[0-9a-f]+ \(hmmgpu\)'
	expect_count out "Subtest [a-z0-9-]+: SKIP \(0\.000s\)" "$num_basic"
	expect_count out 'Starting subtest: .*' 0
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
