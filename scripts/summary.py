#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn a guest run into one line per test and a closing count.

Reads the KTAP results of KUnit suites from the kernel log, the IGT output of
every test binary (framed by HMMGPU-TEST-BEGIN/END lines from the guest
script), the TAP output of kernel selftests (framed by HMMGPU-KTAP-BEGIN/END),
single results (HMMGPU-RESULT lines), and counts the kernel log's reports as
one more test.

Usage: summary.py CONSOLE_LOG VM_STATUS OUTPUT_LOG...
Prints "N passed, N failed, N skipped" last; exits 1 when anything failed.
"""
import importlib.util
import os
import re
import sys

spec = importlib.util.spec_from_file_location(
    "check_log", os.path.join(os.path.dirname(__file__), "check-log.py"))
check_log = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_log)

STAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")
# IGT colours its result lines when its output is a terminal, as the guest's serial port is.
ANSI = re.compile(r"\x1b\[[0-9;]*m")
RANK = {"PASS": 0, "SKIP": 1, "FAIL": 2}
# Built-in KUnit suites that must have run: missing from the log, they fail (a config change
# that dropped one would otherwise go unnoticed). rust_doctests_kernel holds the examples of
# the kernel crate's documentation (CONFIG_RUST_KERNEL_DOCTESTS).
REQUIRED_SUITES = ("rust_doctests_kernel",)


class Results:
    def __init__(self):
        self.order = []
        self.status = {}

    def failed_under(self, prefix):
        """Whether a test named under prefix failed."""
        return any(s == "FAIL" for n, (s, _) in self.status.items() if n.startswith(prefix))

    def add(self, name, status, why=""):
        if name not in self.status:
            self.order.append(name)
            self.status[name] = (status, why)
        elif RANK[status] > RANK[self.status[name][0]]:
            # A test that ran more than once (a module reloaded) keeps its worst result.
            self.status[name] = (status, why)


def kunit(path, results):
    """KTAP from the kernel log: '# Subtest: suite', then '    ok N case' lines."""
    suites = {}  # indent -> suite name
    open_suites = set()
    with open(path, errors="replace") as log:
        for raw in log:
            line = STAMP.sub("", raw.rstrip("\r\n"))
            m = re.match(r"^(\s*)# Subtest: (\S+)", line)
            if m:
                indent = len(m.group(1))
                suites[indent] = m.group(2)
                if indent == 4:
                    open_suites.add(m.group(2))
                continue
            m = re.match(r"^(\s*)(ok|not ok) \d+ (\S+)(.*)$", line)
            if not m:
                continue
            indent, ok, name, rest = len(m.group(1)), m.group(2), m.group(3), m.group(4)
            if indent == 0:
                if name in open_suites:
                    open_suites.discard(name)
                    if ok != "ok" and not any(n.startswith(f"kunit/{name}/")
                                              for n in results.status):
                        results.add(f"kunit/{name}", "FAIL", "suite failed")
                continue
            if indent != 4 or 4 not in suites:
                continue  # parameters of a parameterised case: the case line counts
            status = "SKIP" if "# SKIP" in rest else ("PASS" if ok == "ok" else "FAIL")
            results.add(f"kunit/{suites[4]}/{name}", status)
    for suite in sorted(open_suites):
        results.add(f"kunit/{suite}", "FAIL", "suite did not finish")


def igt(path, results):
    current = None
    ktap = None
    subtest = None
    dynamic_parent = set()
    saw_result = False
    with open(path, errors="replace") as log:
        for line in log:
            line = ANSI.sub("", line.rstrip("\r\n"))
            m = re.match(r"^HMMGPU-TEST-BEGIN: (\S+)", line)
            if m:
                current, subtest, saw_result = m.group(1), None, False
                continue
            m = re.match(r"^HMMGPU-TEST-END: (\S+) rc=(\d+)", line)
            if m and current:
                rc = int(m.group(2))
                if subtest:
                    results.add(f"igt/{current}/{subtest}", "FAIL", "did not finish")
                if rc not in (0, 77) and not results.failed_under(f"igt/{current}/"):
                    results.add(f"igt/{current}", "FAIL", f"exit status {rc}")
                elif not saw_result:
                    results.add(f"igt/{current}", "PASS" if rc == 0 else "SKIP")
                current = subtest = None
                continue
            m = re.match(r"^HMMGPU-KTAP-BEGIN: (\S+)", line)
            if m:
                ktap = m.group(1)
                continue
            m = re.match(r"^HMMGPU-KTAP-END: (\S+) rc=(\d+)", line)
            if m:
                if m.group(2) != "0" and not results.failed_under(f"selftest/{ktap}/"):
                    results.add(f"selftest/{ktap}", "FAIL", f"exit status {m.group(2)}")
                ktap = None
                continue
            m = re.match(r"^(ok|not ok) \d+ (\S+)(.*)$", line)
            if m and ktap:
                status = "SKIP" if "# SKIP" in m.group(3) else (
                    "PASS" if m.group(1) == "ok" else "FAIL")
                results.add(f"selftest/{ktap}/{m.group(2)}", status)
                continue
            m = re.match(r"^HMMGPU-RESULT: (\S+) (PASS|FAIL|SKIP)(.*)$", line)
            if m:
                results.add(m.group(1), m.group(2), m.group(3).strip())
                continue
            if not current:
                continue
            m = re.match(r"^Starting subtest: (\S+)", line)
            if m:
                subtest = m.group(1)
                continue
            m = re.match(r"^Dynamic subtest (\S+): (SUCCESS|FAIL|SKIP|CRASH)", line)
            if m and subtest:
                dynamic_parent.add((current, subtest))
                saw_result = True
                results.add(f"igt/{current}/{subtest}/{m.group(1)}", igt_status(m.group(2)))
                continue
            m = re.match(r"^Subtest (\S+): (SUCCESS|FAIL|SKIP|CRASH)", line)
            if m:
                saw_result = True
                name = m.group(1)
                status = igt_status(m.group(2))
                if (current, name) not in dynamic_parent or status == "FAIL":
                    results.add(f"igt/{current}/{name}", status)
                subtest = None


def igt_status(word):
    return {"SUCCESS": "PASS", "SKIP": "SKIP"}.get(word, "FAIL")


def main():
    console, vm_status, outputs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    results = Results()
    kunit(console, results)
    for suite in REQUIRED_SUITES:
        if not any(n == f"kunit/{suite}" or n.startswith(f"kunit/{suite}/")
                   for n in results.status):
            results.add(f"kunit/{suite}", "FAIL", "did not run")
    for output in outputs:
        igt(output, results)
    reports = check_log.scan(console)
    if reports:
        results.add("kernel-log", "FAIL", f"{len(reports)} report lines, first: {reports[0][2]}")
    else:
        results.add("kernel-log", "PASS")
    if vm_status in (124, 125):
        results.add("vm", "FAIL", "the guest was killed or ended without a status")

    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    for name in results.order:
        status, why = results.status[name]
        counts[status] += 1
        print(f"{status:4} {name}" + (f"  ({why})" if why else ""))
    failed = counts["FAIL"]
    if vm_status not in (0, 124, 125) and failed == 0:
        # The guest command failed without a test saying why.
        print(f"FAIL guest-command  (exit status {vm_status})")
        failed += 1
    print(f"{counts['PASS']} passed, {failed} failed, {counts['SKIP']} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
