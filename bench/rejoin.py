#!/usr/bin/python3
"""Crash failover and rejoin times at DEFAULT timeouts (not the shortened test ones), on a real formation
(monitor + 2 nodes on 127.0.0.1, tests/e2e/formation.py) with a writer (tests/common/writer.py, one
autocommit INSERT every 20 ms through the multi-host URI).

Paths, each run `--runs` times on one formation per path (the roles alternate from run to run):
  rewind      kill -9 of the primary's keeper, postmaster and every child ("machine crash"); the standby is
              promoted; --rest seconds later the old primary's keeper is started again: pg_rewind, then stream.
              Also gives the crash's writer downtime (longest gap between two acknowledged commits).
  basebackup  the same, but state.json of the old primary says rejoin_needs_base_backup (a keeper restarted
              after a rejoin that could not follow): a fresh base backup instead of pg_rewind.
  standby     kill -9 of the standby's keeper, postmaster and children; once the monitor has seen it silent
              and failing the probes (its goal left secondary), its keeper is started again.
Figures per run, from the keeper (re)start, the monitor polled every 20 ms:
  secondary   the node reports secondary, its goal, and its keeper counts as reporting
  settled     every node reported = goal, one primary, the other secondary, every keeper reporting
  healthy     settled and the monitor's probes say 'good' for both (the probe round is health_check_period)

Run as root (servers run as the unprivileged test user), with the installed extension and autoctl, under the
install lock:
  flock /tmp/autofailover-install.lock /usr/bin/python3 bench/rejoin.py --runs 10
Prints one line per run and p50/p99 per path; --json FILE saves everything."""

import argparse
import json
import os
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "common"))

import formation as fm  # noqa: E402
import checker  # noqa: E402
from processes import pid_alive  # noqa: E402
from writer import Writer  # noqa: E402

# Defaults everywhere: no --setting for the monitor, keeper.json as `create postgres` wrote it.
fm.MONITOR_SETTINGS.clear()
fm.KEEPER_TIMEOUTS.clear()

POLL = 0.02


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def descendants(pid):
    """Every process whose parent chain leads to pid (read from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def crash(node):
    """kill -9 of the keeper (and its children), the postmaster and every child: a machine crash."""
    pids = []
    for pid in (node.keeper_pid(), node.postmaster_pid()):
        if pid and pid_alive(pid):
            pids += [pid] + descendants(pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if node.keeper is not None:
        node.keeper.wait(timeout=10)
    node.keeper = None
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)


def settled(state):
    return len(state) == 2 and fm.Formation.is_healthy(None, state)


def probes_good(state):
    return settled(state) and all(s["health"] == "good" for s in state.values())


def wait_state(f, predicate, what, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            s = f.state()
            if predicate(s):
                return s
        except Exception:  # noqa: BLE001 -- the monitor is busy: poll again
            pass
        time.sleep(POLL)
    raise AssertionError(f"timed out waiting for {what}: {f.describe(f.state())}")


def time_rejoin(f, node):
    """Starts node's keeper; seconds until the node itself reports secondary (and its keeper counts as
    reporting), until the whole formation settled, and until the probes agree."""
    started = time.monotonic()
    node.start_keeper()
    mine = lambda s: s[node.name]["reported_state"] == s[node.name]["goal_state"] == "secondary" \
        and s[node.name]["keeper_reporting"]  # noqa: E731
    wait_state(f, mine, "the node to report secondary")
    t_node = time.monotonic() - started
    wait_state(f, settled, "settled after the keeper restart")
    t_settled = time.monotonic() - started
    wait_state(f, probes_good, "probes good after the keeper restart")
    return t_node, t_settled, time.monotonic() - started


def set_needs_base_backup(node):
    path = os.path.join(node.state_dir, "state.json")
    with open(path) as fh:
        state = json.load(fh)
    state["rejoin_needs_base_backup"] = True
    tmp = path + ".bench"
    with open(tmp, "w") as fh:
        json.dump(state, fh)
    os.chown(tmp, *fm._user_ids())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def set_keeper_config(node, settings):
    path = os.path.join(node.state_dir, "keeper.json")
    with open(path) as fh:
        config = json.load(fh)
    config.update(settings)
    tmp = path + ".bench"
    with open(tmp, "w") as fh:
        json.dump(config, fh, indent=2)
    os.chown(tmp, *fm._user_ids())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def wal_dir_mb(node):
    return float(node.sql("SELECT sum(size) FROM pg_ls_waldir()")[0][0]) / 2**20


def crash_run(f, writer, path, rest):
    old = f.primary()
    writer.wait_for_acks(25)
    crashed_wall = time.time()
    crash(old)
    crashed = time.monotonic()
    wait_state(f, lambda s: any(n != old.name and st["reported_state"] in ("wait_primary", "primary")
                                    for n, st in s.items()), "the promotion")
    promoted = time.monotonic() - crashed
    writer.wait_for_acks(10)
    first_ack = min(a.t_done for a in list(writer.attempts)
                    if a.status == "ack" and a.t_done > crashed_wall and f":{old.port}" not in a.server)
    gap = checker.downtime([a for a in list(writer.attempts) if a.t_done > crashed_wall - 5])
    time.sleep(rest)
    if path == "basebackup":
        set_needs_base_backup(old)
    # PostgreSQL 15's pg_rewind copies every file of the source's pg_wal: its size explains the rewind's time.
    source = next(n for n in f.nodes.values() if n is not old)
    source_wal_mb = round(wal_dir_mb(source), 1)
    load = load_average()
    t_node, t_settled, t_good = time_rejoin(f, old)
    return {"path": path, "node": old.name, "promoted_s": round(promoted, 3), "source_wal_mb": source_wal_mb,
            "first_ack_after_crash_s": round(first_ack - crashed_wall, 3), "downtime_s": round(gap.longest, 3),
            "secondary_s": round(t_node, 3), "settled_s": round(t_settled, 3), "healthy_s": round(t_good, 3), "load": load}


def standby_run(f, rest):
    standby = f.standbys()[0]
    crash(standby)
    # A real return: the monitor saw the standby silent and failing the probes.
    wait_state(f, lambda s: s[standby.name]["goal_state"] != "secondary" and not s[standby.name]["keeper_reporting"],
               "the monitor to notice the dead standby")
    time.sleep(rest)
    load = load_average()
    t_node, t_settled, t_good = time_rejoin(f, standby)
    return {"path": "standby", "node": standby.name, "secondary_s": round(t_node, 3), "settled_s": round(t_settled, 3), "healthy_s": round(t_good, 3),
            "load": load}


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summary(rows, key):
    values = [r[key] for r in rows if key in r]
    return f"{key} p50 {pct(values, 50):.2f} s, p99 {pct(values, 99):.2f} s, max {max(values):.2f} s (n={len(values)})"


def fill_wal(primary, megabytes):
    """A long-lived formation's pg_wal: about `megabytes` of WAL written (and replicated), then the table
    dropped, as an application's writes would have left it."""
    primary.sql("CREATE TABLE bench_fill (v text)")
    for _ in range(max(1, megabytes // 64)):  # about 60 MB of WAL a statement (10 of them left 592 MB)
        primary.sql("INSERT INTO bench_fill SELECT repeat('x', 900) FROM generate_series(1, 60000)")
    primary.sql("DROP TABLE bench_fill")
    print(f"filled: {primary.sql('SELECT pg_current_wal_lsn()')[0][0]}, pg_wal {wal_dir_mb(primary):.0f} MB", flush=True)


def run_path(path, args, port_base):
    workdir = tempfile.mkdtemp(prefix=f"autofailover-bench-{path}-")
    f = fm.Formation(workdir, port_base)
    rows = []
    try:
        f.create_monitor()
        for name in ("n1", "n2"):
            settings = dict(args.keeper_setting)
            if args.pg_bindir:  # diagnosis: wrapped Postgres tools (e.g. pg_rewind under strace)
                settings["pg_bindir"] = args.pg_bindir
            node = f.create_node(name, start=not settings)
            if settings:
                set_keeper_config(node, settings)
                node.start_keeper()
            wait_state(f, lambda s: all(st["reported_state"] == st["goal_state"] for st in s.values()),
                       f"{name} to settle")
        wait_state(f, probes_good, "the formation to be healthy")
        if args.fill_mb:
            fill_wal(f.primary(), args.fill_mb)
        writer = Writer(f.client_uri(), rate=50, name=f"bench_{path}")
        writer.start()
        try:
            for i in range(args.runs):
                row = standby_run(f, args.rest) if path == "standby" else crash_run(f, writer, path, args.rest)
                row["run"] = i + 1
                print(json.dumps(row), flush=True)
                rows.append(row)
                time.sleep(args.pause)
        finally:
            writer.stop()
        primary = f.primary()
        result = checker.check(writer, primary.conninfo())
        lost = len(result.lost_ids)
        overlaps = len(result.ack_overlaps)
        print(f"[{path}] writer: {result.acked} acknowledged, {lost} lost, {overlaps} overlapping primaries",
              flush=True)
        for r in rows:
            r["lost_total"] = lost
    finally:
        f.teardown()
        if not args.keep:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--paths", default="rewind,basebackup,standby")
    ap.add_argument("--port-base", type=int, default=6470)
    ap.add_argument("--rest", type=float, default=12.0, help="seconds between the failover and the keeper restart")
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between two runs")
    ap.add_argument("--keep", action="store_true", help="keep the work directories (logs)")
    ap.add_argument("--pg-bindir", help="diagnosis only: pg_bindir for the keepers (wrapped tools)")
    ap.add_argument("--json", help="write every row to this file")
    ap.add_argument("--fill-mb", type=int, default=0,
                    help="write about this much WAL before the first run, as on a long-lived formation")
    ap.add_argument("--keeper-setting", action="append", default=[], metavar="KEY=VALUE",
                    type=lambda kv: tuple(kv.split("=", 1)),
                    help="a keeper.json string setting for both nodes, e.g. wal_keep_size=0 (not the defaults then)")
    args = ap.parse_args()
    print(f"autoctl {fm.AUTOCTL}; start {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; load {load_average()}", flush=True)
    all_rows = []
    for i, path in enumerate(args.paths.split(",")):
        all_rows += run_path(path, args, args.port_base + 10 * i)
    print(f"end {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; load {load_average()}")
    for path in args.paths.split(","):
        rows = [r for r in all_rows if r["path"] == path]
        if not rows:
            continue
        loads = [r["load"] for r in rows]
        print(f"== {path}: {summary(rows, 'secondary_s')}; {summary(rows, 'settled_s')}; {summary(rows, 'healthy_s')}; "
              f"load1 {min(loads):.2f}-{max(loads):.2f}")
        if path != "standby":
            print(f"   crash: {summary(rows, 'downtime_s')}; {summary(rows, 'promoted_s')}")
            print(f"   the source's pg_wal at each rejoin (MB): {' '.join(str(r['source_wal_mb']) for r in rows)}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(all_rows, fh, indent=1)


if __name__ == "__main__":
    main()
