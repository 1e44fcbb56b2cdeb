#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Scan a guest's kernel log for reports that fail a run even when its tests
passed: oopses, BUGs, warnings, lockdep, KASAN, kmemleak, hung tasks, soft
lockups, RCU stalls and panics.

Usage: check-log.py CONSOLE_LOG   (exit status 1 when a report was found)
       check-log.py --selftest     (check the patterns against sample reports)
"""
import re
import sys

REPORTS = [
    # Before BUG: a KASAN report's first line is "BUG: KASAN: ...".
    (r"BUG: KASAN|KASAN: ", "KASAN report"),
    (r"UBSAN: ", "UBSAN report"),
    (r"\bBUG: |\bBUG at\b", "BUG"),
    (r"\bOops\b|general protection fault", "oops"),
    (r"Kernel panic", "panic"),
    (r"rust_panic|panicked at", "Rust panic"),
    (r"^WARNING: ", "WARNING"),
    (r"possible (circular|recursive) locking|inconsistent lock state|DEBUG_LOCKS_WARN_ON"
     r"|suspicious RCU usage|lock held when returning|bad unlock balance", "lockdep report"),
    (r"kmemleak: \d+ new suspected memory leaks|unreferenced object 0x", "kmemleak leak"),
    (r"INFO: task .* blocked for more than", "hung task"),
    (r"soft lockup|hard LOCKUP", "lockup"),
    (r"rcu: INFO: .* detected stalls", "RCU stall"),
]
# Lines that mention the words above without being reports.
BENIGN = [
    r"kmemleak: Kernel memory leak detector initialized",
    r"kmemleak: Automatic memory scanning thread",
    r"lockdep: fixing up alternatives",
    r"Lock dependency validator",
]
STAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")


def scan(path):
    """Return (line number, kind, text) for each report in the log at path."""
    found = []
    with open(path, errors="replace") as log:
        for number, raw in enumerate(log, 1):
            line = STAMP.sub("", raw.rstrip("\r\n"))
            if any(re.search(b, line) for b in BENIGN):
                continue
            for pattern, kind in REPORTS:
                if re.search(pattern, line):
                    found.append((number, kind, line))
                    break
    return found


# For --selftest: a report of each kind, as the kernel prints it, that must be
# found, and boot lines that must not be.
SAMPLES = {
    "KASAN report": "[    4.101010] BUG: KASAN: slab-use-after-free in hmmgpu_job_run+0x6c/0x110",
    "UBSAN report": "[    4.101010] UBSAN: shift-out-of-bounds in rust/helpers/mm.c:12:20",
    "BUG": "[    4.101010] BUG: kernel NULL pointer dereference, address: 0000000000000008",
    "WARNING": "[    4.101010] WARNING: CPU: 1 PID: 77 at mm/hmm.c:123 hmm_range_fault+0x1/0x2",
    "kmemleak leak": "[    4.101010] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)",
}
CLEAN = [
    "[    0.000000] kasan: KernelAddressSanitizer initialized (generic)",
    "[    0.000000] Kernel command line: console=ttyS0 kasan_multi_shot",
    "[    0.100000] kmemleak: Kernel memory leak detector initialized (mem pool available: 1)",
    "[    0.100000] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar",
]


def selftest():
    """Check the patterns against SAMPLES and CLEAN; return an exit status."""
    import tempfile
    bad = 0
    with tempfile.NamedTemporaryFile("w", suffix=".log") as tmp:
        tmp.write("\n".join(CLEAN + list(SAMPLES.values())) + "\n")
        tmp.flush()
        found = {line: kind for _, kind, line in scan(tmp.name)}
    for line in CLEAN:
        if STAMP.sub("", line) in found:
            print(f"check-log: selftest: a clean line counted as a report: {line}")
            bad = 1
    for kind, line in SAMPLES.items():
        got = found.get(STAMP.sub("", line))
        if got != kind:
            print(f"check-log: selftest: {line!r} found as {got}, expected {kind}")
            bad = 1
    print(f"check-log: selftest: {len(SAMPLES)} reports, {len(CLEAN)} clean lines: "
          + ("FAIL" if bad else "ok"))
    return bad


def main():
    if sys.argv[1] == "--selftest":
        return selftest()
    reports = scan(sys.argv[1])
    for number, kind, line in reports[:20]:
        print(f"kernel log: {kind} at line {number}: {line}")
    if len(reports) > 20:
        print(f"kernel log: ... and {len(reports) - 20} more report lines")
    return 1 if reports else 0


if __name__ == "__main__":
    sys.exit(main())
