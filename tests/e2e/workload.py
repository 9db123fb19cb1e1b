"""The client side of a scenario: tests/common's Writer writes through the
formation's multi-host URI and records every attempted and acknowledged
commit; its SplitBrainProbe samples which nodes accept writes. At the end the
checker verifies zero lost acknowledged commits and never two writable
primaries, and the measured writer downtime is printed and appended to
$AUTOFAILOVER_E2E_REPORT."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "common"))

import checker  # noqa: E402
from writer import Writer  # noqa: E402

# How long a scenario waits for the writer to get n more commits through.
ACK_TIMEOUT = 60.0


class Workload:
    def __init__(self, formation, scenario, allow_flip_backs=False):
        self.formation = formation
        self.scenario = scenario
        self.allow_flip_backs = allow_flip_backs
        self.writer = Writer(formation.client_uri(), name=scenario.replace(" ", "_"))
        self.probe = checker.SplitBrainProbe({n.name: n.conninfo() for n in formation.nodes.values()})
        self.result = None
        self.records_path = os.path.join(formation.workdir, f"writer-{self.writer.name}.jsonl")

    def __enter__(self):
        self.probe.start()
        self.writer.start()
        return self

    def wait_for_commits(self, n, timeout=ACK_TIMEOUT):
        self.writer.wait_for_acks(n, timeout)

    def __exit__(self, exc_type, exc, tb):
        self.writer.stop()
        self.probe.stop()
        self.writer.save(self.records_path)
        if exc_type is None:
            primary = self.formation.primary()
            self.result = checker.check(self.writer, primary.conninfo(), probe=self.probe,
                                        allow_flip_backs=self.allow_flip_backs)
        return False

    def assert_clean(self):
        r = self.result
        assert r is not None, "the workload did not finish"
        line = f"[{self.scenario}] writer downtime {r.longest_gap_s:.2f}s (longest gap; total {r.total_downtime_s:.2f}s), " \
               f"{r.acked} commits acknowledged, {len(r.lost_ids)} lost, " \
               f"{len(r.ack_overlaps) + len(r.writable_overlaps)} moments with two writable primaries"
        print("\n" + line)
        report = os.environ.get("AUTOFAILOVER_E2E_REPORT")
        if report:
            with open(report, "a") as f:
                f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "scenario": self.scenario,
                                    **r.as_dict()}, default=str) + "\n")
        problems = r.problems()
        assert not problems, f"{self.scenario}: " + "; ".join(problems) + f" (records: {self.records_path})"
