#!/usr/bin/env python3
"""`make test`'s runner: runs each suite (Rust, Lua in real Neovim, MCP interop), streams their
output, and ends with one tally of what ran — passed, failed and skipped, per suite and in all.

Every suite runs even when an earlier one failed, so one run shows every failure. Exits non-zero
when a suite failed, when a suite's output has no closing line (it ran nothing we can count), or —
with ZEKE_TEST_NO_SKIP=1, as `make test` sets — when anything was skipped.
Usage: scripts/test_all.py [make-target ...]   (default: test-rust test-lua test-mcp)
"""
import os
import re
import subprocess
import sys
import time

CARGO = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored;")
PLAIN = re.compile(r"^(?:[\w-]+: )?(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$")
NAMES = {"test-rust": "rust", "test-lua": "lua", "test-mcp": "mcp"}


def run(target):
    """Runs one make target; returns (exit code, passed, failed, skipped, closing lines seen)."""
    counts = [0, 0, 0]
    seen = 0
    proc = subprocess.Popen(
        [os.environ.get("MAKE", "make"), "--no-print-directory", target],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
    )
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        s = line.strip()
        m = CARGO.match(s) or PLAIN.match(s)
        if m:
            seen += 1
            for i, g in enumerate(m.groups()):
                counts[i] += int(g or 0)
    return proc.wait(), *counts, seen


def main():
    targets = sys.argv[1:] or ["test-rust", "test-lua", "test-mcp"]
    no_skip = os.environ.get("ZEKE_TEST_NO_SKIP") == "1"
    rows, bad = [], []
    total = [0, 0, 0]
    for t in targets:
        t0 = time.monotonic()
        code, p, f, s, seen = run(t)
        name = NAMES.get(t, t)
        rows.append(f"{name}: {p} passed, {f} failed, {s} skipped ({time.monotonic() - t0:.0f} s)")
        total = [a + b for a, b in zip(total, (p, f, s))]
        if code != 0:
            bad.append(f"{name} exited {code}")
        if seen == 0:
            bad.append(f"{name} printed no closing line: nothing it ran can be counted")
    if no_skip and total[2] > 0:
        bad.append(f"{total[2]} skipped, and ZEKE_TEST_NO_SKIP=1 says nothing may be skipped here")
    print("\n== make test ==")
    for r in rows:
        print(r)
    for b in bad:
        print(f"FAILED: {b}")
    print(f"total: {total[0]} passed, {total[1]} failed, {total[2]} skipped", flush=True)
    sys.exit(1 if bad or total[1] else 0)


if __name__ == "__main__":
    main()
