#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Compare two make bench results files figure by figure.

Usage: bench-compare.py BEFORE.json AFTER.json [SECTIONS]

For each figure both runs have (same section, case, pages and size), prints
its median in each run and, more telling under TCG, its ratio to each of its
references in each run (the references run in the same guest boot as the
figure, so the ratio cancels most of what differs between two boots). The
last column is after/before of the ratios (or of the medians, for figures
without a reference): below 1 the figure got faster. SECTIONS (e.g. "bcd")
keeps only those sections.
"""
import json
import signal
import sys


def key(f):
    return (f["section"], f["case"], f["pages"], f["size"])


def load(path):
    with open(path) as fh:
        figs = json.load(fh)["figures"]
    return {key(f): f for f in figs}


def ratios(f):
    """The figure's median over each reference's, in the same run: {reference: ratio}."""
    return {r["case"]: r["ratio"] for r in f.get("refs", []) if r.get("ratio") is not None}


def fmt_us(us):
    if us >= 1e6:
        return f"{us / 1e6:.2f} s"
    if us >= 1e3:
        return f"{us / 1e3:.2f} ms"
    return f"{us:.0f} us"


def main():
    # Quietly, when piped into head.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    before, after = load(sys.argv[1]), load(sys.argv[2])
    sections = sys.argv[3] if len(sys.argv) > 3 else None
    print(f"{'':2} {'case':32} {'pages':5} {'size':>8}  {'before':>10} {'after':>10}  "
          f"{'reference':32} {'ratio':>6} {'ratio':>6}  {'after/before':>12}")
    for k, a in after.items():
        if sections and k[0] not in sections:
            continue
        b = before.get(k)
        if not b:
            continue
        size = f"{k[3] >> 20} MiB" if k[3] >= 1 << 20 else f"{k[3] >> 10} KiB"
        start = f"{k[0]:2} {k[1]:32} {k[2]:5} {size:>8}  {fmt_us(b['median']):>10} " \
                f"{fmt_us(a['median']):>10}"
        rb, ra = ratios(b), ratios(a)
        common = [ref for ref in ra if ref in rb]
        if not common:
            change = a["median"] / b["median"] if b["median"] else float("nan")
            print(f"{start}  {'-':32} {'-':>6} {'-':>6}  {change:12.2f}")
        for ref in common:
            print(f"{start}  {ref:32} {rb[ref]:6.2f} {ra[ref]:6.2f}  {ra[ref] / rb[ref]:12.2f}")

if __name__ == "__main__":
    main()
