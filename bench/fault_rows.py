#!/usr/bin/python3
"""Fault rows of tests/faults/test_scenarios.py repeated on one formation, for p50/p99: a benchmark, not a test.

Each row is the test itself (monitor + 3 nodes in network namespaces, the shortened test timeouts of
tests/faults/cluster.py, the writer through the multi-host URI, every invariant checked), called --runs times
in turn (P3, N1, P3, N1, ...); the rows' own report lines give the figures:
  failover_s      fault -> the monitor shows a new primary
  longest_gap_s   the writer's longest gap between two acknowledged commits
  fence_margin_s  the old primary's last writable answer -> the new primary's first (must stay > 0)
Run as root, with the installed autoctl and extension, under the install lock:
  flock -o /tmp/autofailover-install.lock /usr/bin/python3 bench/fault_rows.py --rows P3,N1 --runs 10
Prints one line per run and p50/p99/max per row and figure; --json FILE keeps the report lines.
Monitor settings of the formation: AUTOFAILOVER_FAULTS_SETTINGS (tests/faults/cluster.py), e.g.
`AUTOFAILOVER_FAULTS_SETTINGS=primary_suspect_timeout=2000` turns the early freeze of a suspected primary off
(docs/settings.md) for a before/after comparison on the same build."""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FAULTS = os.path.join(HERE, "..", "tests", "faults")
ROW_TESTS = {
    "P3": "test_P3_primary_machine_reboot",
    "P4": "test_P4_primary_keeper_killed",
    "P5": "test_P5_primary_host_frozen",
    "N1": "test_N1_primary_isolated",
}
FIGURES = ("failover_s", "longest_gap_s", "fence_margin_s")

if "pytest" in sys.modules and __name__ != "__main__":
    # Collected by pytest (the child below): the repeated rows, sharing test_scenarios' module fixtures.
    import pytest

    sys.path.insert(0, FAULTS)
    import test_scenarios as ts  # noqa: E402
    from test_scenarios import net, holder, c  # noqa: E402,F401  (fixtures)

    _rows = os.environ["FAULT_ROWS"].split(",")
    _runs = int(os.environ["FAULT_RUNS"])

    @pytest.mark.parametrize("row", [r for _ in range(_runs) for r in _rows])
    def test_row(c, row):  # noqa: F811
        getattr(ts, ROW_TESTS[row])(c)


def percentile(values, p):
    """Nearest rank: with 10 runs, p99 is the slowest."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def summarize(lines):
    print()
    print(f"{'row':4} {'figure':15} {'n':>3} {'p50':>7} {'p99':>7} {'max':>7}   each run")
    for row in sorted({l["id"] for l in lines}):
        mine = [l for l in lines if l["id"] == row]
        for fig in FIGURES:
            vals = [l[fig] for l in mine if isinstance(l.get(fig), (int, float))]
            if vals:
                print(f"{row:4} {fig:15} {len(vals):3} {statistics.median(vals):7.2f} {percentile(vals, 99):7.2f} "
                      f"{max(vals):7.2f}   " + " ".join(f"{v:.2f}" for v in vals))
        loads = [l.get("load_at_fault") for l in mine if l.get("load_at_fault") is not None]
        bad = [l for l in mine if l.get("outcome") != "pass" or l.get("lost")]
        print(f"{row:4} {'load_at_fault':15} {len(loads):3} " + (f"{min(loads):.2f}-{max(loads):.2f}" if loads else "-")
              + f"   failed/lost rows: {len(bad)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="P3,N1", help="comma list of " + ",".join(ROW_TESTS))
    ap.add_argument("--runs", type=int, default=10, help="runs per row")
    ap.add_argument("--json", help="copy the rows' report lines (JSON lines) to this file")
    args = ap.parse_args()
    rows = args.rows.split(",")
    unknown = [r for r in rows if r not in ROW_TESTS]
    if unknown:
        ap.error(f"unknown rows {unknown}")
    with tempfile.TemporaryDirectory(prefix="autofailover-fault-rows-") as tmp:
        report = args.json or os.path.join(tmp, "rows.jsonl")
        if os.path.exists(report):
            os.unlink(report)
        env = dict(os.environ, FAULT_ROWS=",".join(rows), FAULT_RUNS=str(args.runs),
                   AUTOFAILOVER_FAULTS_REPORT=os.path.abspath(report))
        rc = subprocess.call([sys.executable, "-m", "pytest", "-v", "-s", "-p", "no:cacheprovider", "-rs",
                              os.path.abspath(__file__)], env=env, cwd="/")
        lines = []
        if os.path.exists(report):
            with open(report) as f:
                lines = [json.loads(l) for l in f if l.strip()]
        summarize(lines)
    return rc


if __name__ == "__main__":
    sys.exit(main())
