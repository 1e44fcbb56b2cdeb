#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Scan a guest's kernel log for reports that fail a run even when its tests
passed: oopses, BUGs, warnings, lockdep, KASAN, kmemleak, hung tasks, soft
lockups, RCU stalls and panics.

Usage: check-log.py CONSOLE_LOG   (exit status 1 when a report was found)
"""
import re
import sys

REPORTS = [
    (r"\bBUG: |\bBUG at\b", "BUG"),
    (r"\bOops\b|general protection fault", "oops"),
    (r"Kernel panic", "panic"),
    (r"rust_panic|panicked at", "Rust panic"),
    (r"^WARNING: ", "WARNING"),
    (r"possible (circular|recursive) locking|inconsistent lock state|DEBUG_LOCKS_WARN_ON"
     r"|suspicious RCU usage|lock held when returning|bad unlock balance", "lockdep report"),
    (r"BUG: KASAN|KASAN: ", "KASAN report"),
    (r"UBSAN: ", "UBSAN report"),
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


def main():
    reports = scan(sys.argv[1])
    for number, kind, line in reports[:20]:
        print(f"kernel log: {kind} at line {number}: {line}")
    if len(reports) > 20:
        print(f"kernel log: ... and {len(reports) - 20} more report lines")
    return 1 if reports else 0


if __name__ == "__main__":
    sys.exit(main())
