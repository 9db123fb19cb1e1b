"""Two e2e writers side by side (test_haproxy.py, test_pgbouncer.py): one through a proxy in front of the
formation (HAProxy, PgBouncer), one through the direct multi-host URI, plus the split-brain probe. Both must
lose no acknowledged commit and never see two writers; the downtime of each (the writer's longest gap
between two acknowledged commits) is printed and appended to $AUTOFAILOVER_E2E_REPORT."""

import json
import os
import sys
import time
import urllib.parse

from formation import TEST_USER

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "common"))
import checker  # noqa: E402
from writer import Writer  # noqa: E402


def proxy_uri(formation, port, **params):
    """URI of the test user through a proxy on 127.0.0.1:port (the test process's pgpass)."""
    query = {"passfile": formation.test_pgpass, "connect_timeout": "2", **params}
    return f"postgresql://{TEST_USER}@127.0.0.1:{port}/postgres?" + urllib.parse.urlencode(query)


class DualWorkload:
    """`with DualWorkload(...) as w: ...` then w.assert_clean(); w.downtimes after it."""

    def __init__(self, formation, proxy, via_uri, scenario, max_extra_downtime=None):
        self.formation = formation
        self.proxy = proxy              # "haproxy", "pgbouncer": labels the writer and the report
        self.scenario = scenario
        self.max_extra_downtime = max_extra_downtime
        tag = scenario.replace(" ", "_")
        self.via = Writer(via_uri, name=f"{proxy}_{tag}")
        self.direct = Writer(formation.client_uri(), name=f"direct_{tag}")
        self.probe = checker.SplitBrainProbe({n.name: n.conninfo() for n in formation.nodes.values()})
        self.result = None
        self.downtimes = None

    def __enter__(self):
        self.probe.start()
        self.via.start()
        self.direct.start()
        return self

    def wait_for_commits(self, n):
        self.via.wait_for_acks(n)
        self.direct.wait_for_acks(n)

    def __exit__(self, exc_type, exc, tb):
        for w in (self.via, self.direct):
            w.stop()
        self.probe.stop()
        for w in (self.via, self.direct):
            w.save(os.path.join(self.formation.workdir, f"writer-{w.name}.jsonl"))
        if exc_type is None:
            self.result = checker.check([self.via, self.direct], self.formation.primary().conninfo(),
                                        probe=self.probe)
        return False

    def assert_clean(self):
        r = self.result
        assert r is not None, "the workload did not finish"
        via, direct = (checker.downtime(w.attempts, w.started_at, w.stopped_at).longest
                       for w in (self.via, self.direct))
        self.downtimes = (via, direct)
        line = (f"[{self.proxy}: {self.scenario}] writer downtime through {self.proxy} {via:.2f}s, direct "
                f"multi-host URI {direct:.2f}s; {r.acked} commits acknowledged, {len(r.lost_ids)} lost, "
                f"{len(r.ack_overlaps) + len(r.writable_overlaps)} moments with two writers")
        print("\n" + line)
        report = os.environ.get("AUTOFAILOVER_E2E_REPORT")
        if report:
            with open(report, "a") as f:
                f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                    "scenario": f"{self.proxy} {self.scenario}",
                                    f"downtime_{self.proxy}_s": via, "downtime_direct_s": direct, **r.as_dict()},
                                   default=str) + "\n")
        problems = r.problems()
        assert not problems, f"{self.scenario}: " + "; ".join(problems)
        if self.max_extra_downtime is not None:
            assert via <= direct + self.max_extra_downtime, line
