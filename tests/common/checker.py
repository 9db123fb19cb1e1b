"""Invariants of a failure scenario, computed from a Writer's records and the live servers.

Module API
----------
Pure functions on records (no PostgreSQL needed; unit-tested in test_checker.py):
    downtime(attempts, start=None, end=None, threshold=0.5) -> Downtime(longest, total, gaps)
        gaps between consecutive acknowledged commits (by acknowledgement time), including from `start`
        (writer start) to the first ack and from the last ack to `end` (writer stop). `total` sums the gaps
        longer than `threshold` seconds; `longest` is the longest gap of all.
    lost_commits(attempts, present_ids) -> sorted list of acked ids not in present_ids
    ack_overlaps(attempts, min_overlap=0.0) -> list[Overlap]
        split brain seen by clients: two different servers acknowledging commits in overlapping time windows
        (a server's window runs from the first to the last ack of each uninterrupted run of its acks, over
        all writers' records merged). With one writer, windows cannot overlap, so also:
    flip_backs(attempts) -> list[(server, t)]: a server acknowledging again after another server took over.
        Legitimate only after a switchover back; a failure test expects none.
    writable_overlaps(samples) -> list[Overlap]
        from SplitBrainProbe samples (each node's latest answer per round): coarse, a stale answer may count.
    proven_writable_overlaps({name: [(t, writable)]}, max_gap) -> list[Overlap]
        from each node's own answers: two nodes known writable at the same instant (what check() uses).
    is_full_health(rows) -> bool  (rows of autofailover.current_state(): one primary, all others secondary,
        every node at its goal; nodes in maintenance count as healthy)

Helpers that talk to PostgreSQL (psycopg 3):
    fetch_present_ids(conninfo, ids, table=...) -> set of those ids present on that server
    SplitBrainProbe({name: conninfo}, interval=0.1).start() / .stop() / .samples / .answers / .proven_overlaps()
        polls every node: writable = pg_is_in_recovery() = false AND default_transaction_read_only = off
        (Unix-socket conninfos reach a node even while its network is partitioned).
    monitor_state(monitor_conninfo, formation="default") -> list of dict rows of current_state()
    wait_full_health(monitor_conninfo, since, timeout) -> seconds from `since` (time.time()) to full health;
        raises AssertionError with the last state on timeout.

Putting it together:
    check(writer, final_primary_conninfo, probe=None, health_s=None, manual_actions=0, ...) -> Result
    Result fields: attempts, acked, unknown, failed, longest_gap_s, total_downtime_s, lost_ids,
        ack_overlaps, flip_backs, writable_overlaps, time_to_health_s, manual_actions;
    Result.problems() -> list of violated invariants (empty = clean); Result.summary() -> one line;
    Result.as_dict() for reports.

CLI:  /usr/bin/python3 tests/common/checker.py --records FILE --final CONNINFO [--monitor CONNINFO]
"""

import argparse
import dataclasses
import json
import sys
import threading
import time

DEFAULT_GAP_THRESHOLD = 0.5     # seconds: shorter pauses between commits are not downtime
DEFAULT_PROBE_INTERVAL = 0.1    # seconds between two probe rounds
DEFAULT_PROBE_TIMEOUT = 1       # seconds, connect_timeout of a probe connection
DEFAULT_HEALTH_POLL = 0.1       # seconds between two current_state() polls
DEFAULT_TABLE = "autofailover_writer"


def _get(r, key):
    return r[key] if isinstance(r, dict) else getattr(r, key)


def _inserts(records):
    return [r for r in records if (_get(r, "kind") if _has(r, "kind") else "insert") == "insert"]


def _has(r, key):
    return key in r if isinstance(r, dict) else hasattr(r, key)


def _acks(records):
    acks = [r for r in _inserts(records) if _get(r, "status") == "ack"]
    return sorted(acks, key=lambda r: _get(r, "t_done"))


@dataclasses.dataclass
class Downtime:
    longest: float
    total: float
    gaps: list  # (start, end) of every gap longer than the threshold


def downtime(records, start=None, end=None, threshold=DEFAULT_GAP_THRESHOLD):
    times = [_get(r, "t_done") for r in _acks(records)]
    points = ([start] if start is not None else []) + times + ([end] if end is not None else [])
    if len(points) < 2:
        if start is not None and end is not None:
            return Downtime(end - start, end - start, [(start, end)])
        return Downtime(0.0, 0.0, [])
    longest, total, gaps = 0.0, 0.0, []
    for a, b in zip(points, points[1:]):
        gap = b - a
        longest = max(longest, gap)
        if gap > threshold:
            total += gap
            gaps.append((a, b))
    return Downtime(longest, total, gaps)


def lost_commits(records, present_ids):
    present = set(present_ids)
    return sorted(_get(r, "id") for r in _acks(records) if _get(r, "id") not in present)


@dataclasses.dataclass
class Overlap:
    a: str
    b: str
    start: float
    end: float

    @property
    def seconds(self):
        return self.end - self.start

    def __str__(self):
        return f"{self.a}+{self.b} for {self.seconds:.2f}s"


def _runs(acks):
    """Uninterrupted runs of acks by the same server: [(server, first_t, last_t)]."""
    runs = []
    for r in acks:
        server, t = _get(r, "server"), _get(r, "t_done")
        if runs and runs[-1][0] == server:
            runs[-1][2] = t
        else:
            runs.append([server, t, t])
    return runs


def ack_overlaps(records, min_overlap=0.0):
    """Windows of two servers' acks that overlap in time (split brain as clients saw it). The windows are
    built per writer (a writer talks to one server at a time) and then compared across all writers."""
    by_writer = {}
    for r in _acks(records):
        by_writer.setdefault(_get(r, "writer") if _has(r, "writer") else "", []).append(r)
    windows = []
    for acks in by_writer.values():
        windows.extend(_runs(acks))
    out = []
    for i, (sa, a0, a1) in enumerate(windows):
        for sb, b0, b1 in windows[i + 1:]:
            if sa == sb:
                continue
            lo, hi = max(a0, b0), min(a1, b1)
            # a single ack (zero-length window) inside another server's window counts too
            if (hi >= lo) if min_overlap == 0.0 else (hi - lo > min_overlap):
                out.append(Overlap(sa, sb, lo, hi))
    return out


def flip_backs(records):
    """A server that acknowledges again after another server acknowledged in between (per writer)."""
    out = []
    by_writer = {}
    for r in _acks(records):
        by_writer.setdefault(_get(r, "writer") if _has(r, "writer") else "", []).append(r)
    for acks in by_writer.values():
        seen = set()
        for server, t0, _ in _runs(acks):
            if server in seen:
                out.append((server, t0))
            seen.add(server)
    return out


def writable_overlaps(samples):
    """samples: [(t, {name: writable_bool_or_None})] in time order. Returns the time ranges in which two or
    more nodes were writable in the same probe round (a range ends at the first round where it stopped)."""
    out = []
    current = None  # [names, start, last]
    for t, flags in samples:
        names = tuple(sorted(n for n, w in flags.items() if w))
        if len(names) >= 2:
            if current is not None and current[0] == names:
                current[2] = t
            else:
                if current is not None:
                    out.append(Overlap(current[0][0], ",".join(current[0][1:]), current[1], current[2]))
                current = [names, t, t]
        elif current is not None:
            out.append(Overlap(current[0][0], ",".join(current[0][1:]), current[1], current[2]))
            current = None
    if current is not None:
        out.append(Overlap(current[0][0], ",".join(current[0][1:]), current[1], current[2]))
    return out


def writable_intervals(answers, max_gap):
    """answers: [(t, writable_or_None)] of one node, in time order. A node is known writable over [t1, t2]
    when two consecutive answers t1, t2 (at most max_gap apart) both said writable; a lone writable answer is
    the point [t, t]. Nothing is assumed about a node that did not answer."""
    out = []
    prev = None
    for t, value in answers:
        if value:
            if prev is not None and prev[1] and t - prev[0] <= max_gap:
                out[-1] = (out[-1][0], t)
            else:
                out.append((t, t))
        prev = (t, value)
    return out


def proven_writable_overlaps(answers_by_node, max_gap):
    """Two nodes known writable at the same instant (from each node's own answers; a stale or missing answer
    never counts): list[Overlap]."""
    names = sorted(answers_by_node)
    spans = {n: writable_intervals(answers_by_node[n], max_gap) for n in names}
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for a0, a1 in spans[a]:
                for b0, b1 in spans[b]:
                    lo, hi = max(a0, b0), min(a1, b1)
                    if hi >= lo:
                        out.append(Overlap(a, b, lo, hi))
    return sorted(out, key=lambda o: o.start)


def is_full_health(rows):
    """rows: dicts with reported_state, goal_state (and optionally keeper_reporting) per node."""
    if not rows:
        return False
    primaries = 0
    for r in rows:
        goal, reported = str(r["goal_state"]), str(r["reported_state"])
        if goal != reported or r.get("keeper_reporting") is False:
            return False
        if goal == "primary":
            primaries += 1
        elif goal not in ("secondary", "maintenance"):
            return False
    return primaries == 1


# -- helpers that talk to PostgreSQL -------------------------------------------------------------------------

def fetch_present_ids(conninfo, ids, table=DEFAULT_TABLE):
    import psycopg
    ids = list(ids)
    if not ids:
        return set()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute(f"SELECT id FROM {table} WHERE id = ANY(%s)", (ids,)).fetchall()
    return {r[0] for r in rows}


def monitor_state(monitor_conninfo, formation="default"):
    import psycopg
    with psycopg.connect(monitor_conninfo, autocommit=True) as conn:
        cur = conn.execute("SELECT node_name, host, port, reported_state::text AS reported_state, "
                           "goal_state::text AS goal_state, keeper_reporting, health, lsn::text AS lsn, "
                           "node_id, candidate_priority, replication_quorum, sync_state, timeline "
                           "FROM autofailover.current_state(%s) ORDER BY node_id", (formation,))
        cols = [d.name for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]


def wait_full_health(monitor_conninfo, since, timeout, formation="default", poll=DEFAULT_HEALTH_POLL):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = monitor_state(monitor_conninfo, formation)
            if is_full_health(last):
                return time.time() - since
        except Exception as e:  # noqa: BLE001 - the monitor may be down in this scenario
            last = f"monitor error: {e}"
        time.sleep(poll)
    raise AssertionError(f"not back to full health after {timeout}s; last state: {last}")


class Poller:
    """One daemon thread per target (so that a hanging one does not delay the others), each keeping one
    connection, reopened after any error, and calling _ask(conn) every `interval` seconds; _record(name, value)
    gets the answer, or None after an error (kept when record_errors) and the thread
    waits retry_wait more. Used by SplitBrainProbe and by the fault suite's leader-lease checker."""

    thread_prefix = "poll"
    record_errors = True
    retry_wait = 0.0

    def __init__(self, conninfos, interval, connect_kwargs=None, join_timeout=5.0):
        self.conninfos = dict(conninfos)
        self.interval = interval
        self.connect_kwargs = dict(connect_kwargs or {})
        self.join_timeout = join_timeout
        self._stop = threading.Event()
        self._threads = []
        self._lock = threading.Lock()

    def _spawn(self, target, args, name):
        t = threading.Thread(target=target, args=args, daemon=True, name=name)
        t.start()
        self._threads.append(t)

    def start(self):
        for name in self.conninfos:
            self._spawn(self._poll, (name,), f"{self.thread_prefix}-{name}")
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.join_timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def _ask(self, conn):
        raise NotImplementedError

    def _record(self, name, value):
        raise NotImplementedError

    def _poll(self, name):
        import psycopg
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.conninfos[name], autocommit=True, **self.connect_kwargs)
                value = self._ask(conn)
            except Exception:  # noqa: BLE001 - down, unreachable, restarting: no answer
                value = None
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001
                        pass
                conn = None
                self._stop.wait(self.retry_wait)
                if not self.record_errors:
                    self._stop.wait(self.interval)
                    continue
            self._record(name, value)
            self._stop.wait(self.interval)
        if conn is not None:
            conn.close()


class SplitBrainProbe(Poller):
    """Polls every node every `interval` seconds; samples = [(t, {name: True|False|None})] (None: no answer)."""

    thread_prefix = "probe"

    def __init__(self, conninfos, interval=DEFAULT_PROBE_INTERVAL, connect_timeout=DEFAULT_PROBE_TIMEOUT):
        super().__init__(conninfos, interval, {"connect_timeout": connect_timeout}, connect_timeout + 2)
        self.connect_timeout = connect_timeout
        self.samples = []
        self.answers = {n: [] for n in self.conninfos}   # name -> [(t_answer, True|False|None)]
        self._latest = {n: None for n in self.conninfos}

    def start(self):
        super().start()
        self._spawn(self._sample, (), "probe-sampler")
        return self

    def _ask(self, conn):
        row = conn.execute("SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'),"
                           " current_setting('transaction_read_only')").fetchone()
        return (not row[0]) and row[1] == "off" and row[2] == "off"

    def _record(self, name, value):
        # None: down or unreachable, not writable as far as we can tell
        with self._lock:
            now = time.time()
            self._latest[name] = (now, value)
            self.answers[name].append((now, value))

    def _sample(self):
        while not self._stop.is_set():
            now = time.time()
            with self._lock:
                # a node's last answer counts only while fresh (2 intervals + connect timeout)
                flags = {n: (v[1] if v is not None and now - v[0] <= 2 * self.interval + self.connect_timeout
                             else None) for n, v in self._latest.items()}
            self.samples.append((now, flags))
            self._stop.wait(self.interval)

    def proven_overlaps(self):
        """Moments where two nodes were writable according to their own consecutive answers."""
        with self._lock:
            answers = {n: list(a) for n, a in self.answers.items()}
        return proven_writable_overlaps(answers, 2 * self.interval + self.connect_timeout)

    def writable_now(self):
        with self._lock:
            return [n for n, v in self._latest.items() if v is not None and v[1]]


@dataclasses.dataclass
class Result:
    attempts: int
    acked: int
    unknown: int
    failed: int
    longest_gap_s: float
    total_downtime_s: float
    lost_ids: list
    ack_overlaps: list
    flip_backs: list
    writable_overlaps: list
    time_to_health_s: float = None
    manual_actions: int = 0
    allow_flip_backs: bool = False

    def problems(self):
        out = []
        if self.lost_ids:
            out.append(f"{len(self.lost_ids)} acknowledged commits lost (first ids {self.lost_ids[:5]})")
        if self.ack_overlaps:
            out.append("two servers acknowledged commits at the same time: "
                       + ", ".join(str(o) for o in self.ack_overlaps[:3]))
        if self.writable_overlaps:
            out.append("two writable primaries at once (probe): "
                       + ", ".join(str(o) for o in self.writable_overlaps[:3]))
        if self.flip_backs and not self.allow_flip_backs:
            out.append(f"an old primary acknowledged again after another took over: {self.flip_backs[:3]}")
        if self.acked == 0:
            out.append("no commit was acknowledged at all")
        return out

    def summary(self):
        health = "n/a" if self.time_to_health_s is None else f"{self.time_to_health_s:.1f}s"
        return (f"acked={self.acked} unknown={self.unknown} failed={self.failed} "
                f"longest_gap={self.longest_gap_s:.2f}s downtime={self.total_downtime_s:.2f}s "
                f"lost={len(self.lost_ids)} two_writers={len(self.ack_overlaps) + len(self.writable_overlaps)} "
                f"flip_backs={len(self.flip_backs)} health_after={health} manual={self.manual_actions}")

    def as_dict(self):
        d = dataclasses.asdict(self)
        d["lost"] = len(self.lost_ids)
        d["lost_ids"] = self.lost_ids[:20]
        return d


def evaluate(records, present_ids, start=None, end=None, samples=None, time_to_health_s=None,
             manual_actions=0, threshold=DEFAULT_GAP_THRESHOLD, allow_flip_backs=False, overlaps=None):
    """Pure: everything except fetching the ids from the final primary. `overlaps` (from
    SplitBrainProbe.proven_overlaps) replaces the coarser overlaps computed from `samples`."""
    ins = _inserts(records)
    dt = downtime(ins, start, end, threshold)
    return Result(
        attempts=len(ins),
        acked=sum(1 for r in ins if _get(r, "status") == "ack"),
        unknown=sum(1 for r in ins if _get(r, "status") == "unknown"),
        failed=sum(1 for r in ins if _get(r, "status") == "fail"),
        longest_gap_s=dt.longest, total_downtime_s=dt.total,
        lost_ids=lost_commits(ins, present_ids),
        ack_overlaps=ack_overlaps(ins),
        flip_backs=flip_backs(ins),
        writable_overlaps=overlaps if overlaps is not None else writable_overlaps(samples or []),
        time_to_health_s=time_to_health_s, manual_actions=manual_actions, allow_flip_backs=allow_flip_backs)


def check(writers, final_primary_conninfo, probe=None, time_to_health_s=None, manual_actions=0,
          table=DEFAULT_TABLE, threshold=DEFAULT_GAP_THRESHOLD, allow_flip_backs=False):
    """writers: one Writer or a list. Fetches the acked ids from the final primary and evaluates."""
    if not isinstance(writers, (list, tuple)):
        writers = [writers]
    records = [r for w in writers for r in w.records()]
    acked = [_get(r, "id") for r in _acks(records)]
    present = fetch_present_ids(final_primary_conninfo, acked, table)
    start = min(w.started_at for w in writers)
    end = max(w.stopped_at for w in writers)
    return evaluate(records, present, start, end, probe.samples if probe else None, time_to_health_s,
                    manual_actions, threshold, allow_flip_backs,
                    overlaps=probe.proven_overlaps() if probe else None)


def load_records(path):
    """Reads a Writer.save() file: returns (header dict, records list of dicts)."""
    header, records = {}, []
    with open(path) as f:
        for line in f:
            d = json.loads(line)
            if d.get("kind") == "writer":
                header = d
            else:
                records.append(d)
    return header, records


def main(argv=None):
    p = argparse.ArgumentParser(description="Check a writer's records against the final primary.")
    p.add_argument("--records", required=True, help="file written by writer.py --out")
    p.add_argument("--final", required=True, help="conninfo of the final primary")
    p.add_argument("--monitor", help="monitor conninfo: also report whether the formation is healthy now")
    p.add_argument("--table", default=DEFAULT_TABLE)
    p.add_argument("--threshold", type=float, default=DEFAULT_GAP_THRESHOLD)
    args = p.parse_args(argv)
    header, records = load_records(args.records)
    acked = [r["id"] for r in records if r.get("kind") == "insert" and r["status"] == "ack"]
    present = fetch_present_ids(args.final, acked, args.table)
    result = evaluate(records, present, header.get("started_at"), header.get("stopped_at"),
                      threshold=args.threshold)
    out = result.as_dict()
    if args.monitor:
        out["healthy_now"] = is_full_health(monitor_state(args.monitor))
    print(json.dumps(out, default=str, indent=1))
    print(result.summary())
    return 1 if result.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
