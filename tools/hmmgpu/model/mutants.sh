#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Checks that the range lock model catches deliberate breakages: of the
# kernel's protocol (rust/kernel/mm/range_lock/protocol.rs, changed with sed in
# a copy) and of the model's side of the protocol (cargo features of the model).
# Each mutant is built in a copy of the tree and must make the tests fail.
# Prints a table mutant -> caught/survived; exits non-zero if a mutant survives
# or no longer applies (the source it changes moved: update its sed).
#
# Usage: mutants.sh [NAME...]    (default: every mutant)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
protocol=rust/kernel/mm/range_lock/protocol.rs
invalidated=rust/kernel/mm/invalidated/protocol.rs
cargo=${CARGO:-$(command -v cargo || echo "${CARGO_HOME:-$HOME/.cargo}/bin/cargo")}
# Its own target directory: the mutated builds do not evict the suite's.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hmmgpu/model-mutants-target}
# A mutant that hangs the suite (a loop in the queue, say) is caught.
limit=${MUTANT_TIMEOUT:-600}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The model finds protocol.rs by its path relative to the model, as in the clone.
mkdir -p "$tmp/tools/hmmgpu" "$tmp/$(dirname "$protocol")" "$tmp/$(dirname "$invalidated")"
cp -r "$here" "$tmp/tools/hmmgpu/model"
rm -rf "$tmp/tools/hmmgpu/model/target"
manifest=$tmp/tools/hmmgpu/model/Cargo.toml
# Each mutant's build and test output.
logs=$CARGO_TARGET_DIR/mutant-logs
rm -rf "$logs"
mkdir -p "$logs"

names=() descs=() results=()
failed=0

# mutant NAME DESCRIPTION FEATURE SED...: builds the model with cargo feature
# FEATURE (none if empty) against the range lock's protocol.rs changed by the
# sed scripts (those that start with "invalidated:" change the invalidated
# list's protocol.rs instead), and runs the tests.
mutant() {
	local name=$1 desc=$2 feature=$3
	shift 3
	if [ ${#only[@]} -gt 0 ] && ! printf '%s\n' "${only[@]}" | grep -qx -- "$name"; then
		return
	fi
	local log=$logs/$name.log result first="" applied=1
	cp "$top/$protocol" "$tmp/$protocol"
	cp "$top/$invalidated" "$tmp/$invalidated"
	local script src
	for script in "$@"; do
		src=$tmp/$protocol
		case $script in invalidated:*) src=$tmp/$invalidated script=${script#invalidated:} ;; esac
		cp "$src" "$src.before"
		sed -i -e "$script" "$src"
		cmp -s "$src.before" "$src" && applied=0
	done
	local args=(--release --locked --manifest-path "$manifest" --no-fail-fast)
	[ -n "$feature" ] && args+=(--features "$feature")
	printf '%-36s ' "$name"
	if [ $applied -eq 0 ]; then
		result="NOT APPLIED (a sed matched nothing)"
		failed=1
	elif ! "$cargo" test "${args[@]}" --no-run > "$log" 2>&1; then
		result="DOES NOT BUILD (see the sed)"
		failed=1
		tail -n 20 "$log" | sed 's/^/    /'
	else
		local start=$SECONDS
		timeout "$limit" "$cargo" test "${args[@]}" >> "$log" 2>&1
		local status=$?
		local n
		n=$(grep -cE '^test .* \.\.\. FAILED$' "$log")
		if [ $status -eq 124 ]; then
			result="caught: the suite hangs (over ${limit} s)"
		elif [ $status -ne 0 ] && [ "$n" -gt 0 ]; then
			result="caught by $n tests"
			first=$(grep -m1 -A1 'panicked at' "$log" | tail -n 1 | cut -c1-110)
		elif [ $status -ne 0 ]; then
			result="FAILED OTHERWISE (see $log)"
			failed=1
			tail -n 20 "$log" | sed 's/^/    /'
		else
			result="SURVIVED"
			failed=1
		fi
		result="$result [$((SECONDS - start)) s]"
	fi
	echo "$result"
	[ -n "$first" ] && echo "    first failure: $first"
	names+=("$name") descs+=("$desc") results+=("$result")
}

only=("$@")

# Breakages of the protocol: who waits for whom.
mutant mirror-skips-invalidations \
	"mirrors do not wait for earlier invalidations" "" \
	's/Side::Mirror => true,/Side::Mirror => earlier.side == Side::Mirror,/'
mutant invalidations-never-wait \
	"invalidations do not wait for mirrors" "" \
	's/Side::Invalidate => earlier.side == Side::Mirror && now < earlier.until,/Side::Invalidate => false,/'
mutant invalidations-ignore-overlap \
	"invalidations wait for mirrors of disjoint ranges" "" \
	's/if !self.overlaps(earlier) || self.owner == earlier.owner {/if (self.side == Side::Mirror \&\& !self.overlaps(earlier)) || self.owner == earlier.owner {/'
mutant invalidations-wait-for-invalidations \
	"invalidations wait for earlier invalidations too" "" \
	's/Side::Invalidate => earlier.side == Side::Mirror && now < earlier.until,/Side::Invalidate => now < earlier.until,/'
mutant adjacent-ranges-overlap \
	"[a, b) and [b, c) overlap" "" \
	's/self.start < other.end && other.start < self.end/self.start <= other.end \&\& other.start <= self.end/'
mutant partial-overlap-missed \
	"only equal ranges overlap" "" \
	's/self.start < other.end && other.start < self.end/self.start == other.start \&\& self.end == other.end/'
mutant same-owner-waits \
	"entries of the same task wait for each other" "" \
	's/if !self.overlaps(earlier) || self.owner == earlier.owner {/if !self.overlaps(earlier) {/' \
	's/if node.side == Side::Invalidate && earlier.owner == node.owner {/if false {/'
mutant own-entry-ignored \
	"an invalidation waits for what follows an entry of its own task" "" \
	's/if node.side == Side::Invalidate && earlier.owner == node.owner {/if false {/'
mutant patience-never-runs-out \
	"an invalidation waits for a mirror at its deadline still" "" \
	's/now < earlier.until,/now <= earlier.until,/'
mutant verdict-looks-past-itself \
	"verdict looks at the entries after the node too" "" \
	's/while !cur.is_null() && !ptr::eq(cur, node) {/while !cur.is_null() {/'
mutant link-forgets-tail \
	"link does not move the tail" "" \
	'/pub unsafe fn link/,/^    }/ s/^        self.tail = node;$/        let _ = node;/'
mutant unlink-leaves-head \
	"unlinking the first entry leaves the head at it" "" \
	's/true => self.head = next,/true => (),/'
mutant unlink-leaves-prev-link \
	"unlink leaves the previous entry linking to it" "" \
	's/false => (\*prev).next = next,/false => (),/'
mutant unlink-leaves-next-back-link \
	"unlink leaves the next entry's back link at it" "" \
	's/false => (\*next).prev = prev,/false => (),/'
mutant acquire-checks-once \
	"a mirror goes ahead at the first wake-up" "" \
	'/^pub unsafe fn acquire/,/^}/ s/^    while queue.verdict/    if queue.verdict/'
mutant nonblocking-goes-ahead \
	"an invalidation that may not block goes ahead of a mirror" "" \
	's/if !may_block && queue.verdict/if false \&\& queue.verdict/'
mutant begin-invalidate-links-unchecked \
	"begin_invalidate links after the check without re-checking" "" \
	'/^pub unsafe fn begin_invalidate/,/^}/ s/^    unsafe { queue.link(node) };$/    drop(queue);\n    let mut queue = platform.lock();\n    unsafe { queue.link(node) };/'
mutant notification-ends-patience \
	"a notification ends an invalidation's wait as a signal" "" \
	's/if !platform.wait_until(&mut queue, until) && platform.now() < until {/if !platform.wait_until(\&mut queue, until) || platform.now() < until {/'
mutant release-does-not-notify \
	"release does not wake the waiters" "" \
	'/^pub unsafe fn release/,/^}/ { /^    platform.notify_all();$/d; }'

# Breakages of the model's side: the driver and the core MM.
mutant no-read-retry \
	"a mirror commits without read_retry" mutant-no-read-retry
mutant set-seq-late \
	"an invalidation calls set_seq after clearing, in a later critical section" mutant-set-seq-late

# Breakages of the invalidated list's rules.
mutant publish-ignores-generation \
	"a submission publishes without the generation check" "" \
	'invalidated:s/generation == self.generation \&\& self.clearing == 0/self.clearing == 0/'
mutant publish-ignores-clearing \
	"a submission publishes while an invalidation is clearing" "" \
	'invalidated:s/generation == self.generation \&\& self.clearing == 0/generation == self.generation/'
mutant clearing-keeps-generation \
	"an invalidation of a mapped mirror does not bump the generation" "" \
	'invalidated:s/self.generation = self.generation.wrapping_add(1);/let _ = self.generation;/'
mutant mark-leaves-valid \
	"marking a mirror invalid leaves it valid" "" \
	'invalidated:/pub fn mark/,/^    }/ s/self.invalid = true;/self.invalid = self.invalid;/'

echo
printf '%-36s %-8s %s\n' mutant result breakage
for i in "${!names[@]}"; do
	r=${results[$i]}
	case $r in caught*) r=caught ;; SURVIVED*) r=SURVIVED ;; *) r=ERROR ;; esac
	printf '%-36s %-8s %s\n' "${names[$i]}" "$r" "${descs[$i]}"
done
if [ ${#names[@]} -eq 0 ]; then
	echo "mutants: no mutant named ${only[*]}"
	exit 2
fi
if [ $failed -ne 0 ]; then
	echo "mutants: some survived or did not apply; logs in $logs"
	exit 1
fi
echo "mutants: all ${#names[@]} caught"
