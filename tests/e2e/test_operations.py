"""Operator commands end to end, on one 3-node formation of its own:
show settings / standby-names / events (text and --json), set node
candidate-priority (the highest priority wins the next failover), perform
failover, perform promotion of a named standby, set formation
number-sync-standbys 0/1/2 (the primary's synchronous_standby_names follows,
writes block or go on as documented), five switchovers in a row, drop node.
Every scenario runs a writer through the multi-host URI and asserts zero lost
acknowledged commits, never two writable primaries, a return to full health,
and prints its writer downtime. Order matters: each test starts from a
healthy formation and leaves one behind; drop node comes last."""

import json
import threading
import time

import psycopg
import pytest

from formation import HEALTHY_TIMEOUT
from workload import Workload

# Back-to-back switchovers on one formation (the second one once timed out,
# aimed at the node that had just rejoined through pg_rewind).
SWITCHOVERS_IN_A_ROW = 5
# How long a commit must stay blocked to count as "writes block".
BLOCKED_FOR_SECONDS = 4.0
# Longer than the test monitor's node_considered_unhealthy_timeout (2 s) plus probe rounds.
STANDBY_DOWN_SECONDS = 6.0
WAIT = "60"  # --wait of every operator command
PROBE_TABLE = "autofailover_ops_probe"


@pytest.fixture(scope="module")
def formation(formation_factory):
    f = formation_factory(port_offset=0)
    f.create_monitor()
    f.create_node("node_a")
    f.create_nodes([{"name": "node_b"}, {"name": "node_c"}])
    f.wait_healthy()
    f.primary().sql(f"CREATE TABLE IF NOT EXISTS {PROBE_TABLE} (id bigint)")
    return f


# -- helpers -------------------------------------------------------------------
def node_ids(formation):
    return {n: s["node_id"] for n, s in formation.state().items()}


def slot_name(formation, node_name):
    return f"autofailover_node_{node_ids(formation)[node_name]}"


def shown_standby_names(formation):
    shown = json.loads(formation.autoctl("show", "standby-names", "--json").stdout)
    assert shown["formation"] == "default" and shown["group"] == 0, shown
    return shown["synchronous_standby_names"]


def running_standby_names(node):
    return node.sql("SHOW synchronous_standby_names")[0][0]


def parse_any(names):
    """'ANY 2 (a, b)' -> (2, {'a', 'b'}); '' -> (0, set())."""
    if not names:
        return 0, set()
    assert names.startswith("ANY "), names
    count, rest = names[4:].split(" ", 1)
    assert rest.startswith("(") and rest.endswith(")"), names
    return int(count), {n.strip() for n in rest[1:-1].split(",")}


def writable_primary(formation):
    """The node that reached a writable goal (primary, wait_primary or single)."""
    state = formation.state()
    names = [n for n, s in state.items()
             if s["goal_state"] in ("primary", "wait_primary", "single") and s["reported_state"] == s["goal_state"]]
    assert len(names) == 1, f"expected one primary:\n{formation.describe(state)}"
    return formation.nodes[names[0]]


def wait_for_running_names(formation, expected, timeout=HEALTHY_TIMEOUT):
    """The primary runs with what the monitor computes (keepers apply it with ALTER SYSTEM + reload)."""
    deadline = time.monotonic() + timeout
    running = None
    while time.monotonic() < deadline:
        try:
            running = running_standby_names(writable_primary(formation))
            if parse_any(running) == parse_any(expected):
                return running
        except (AssertionError, psycopg.Error):
            pass
        time.sleep(0.2)
    raise AssertionError(f"the primary runs with synchronous_standby_names={running!r}, expected {expected!r}")


class BackgroundCommit:
    """One INSERT on a given server in a thread: tells whether a commit blocks."""

    def __init__(self, node):
        self.done_at = None
        self.error = None
        self._thread = threading.Thread(target=self._run, args=(node,), daemon=True)
        self._thread.start()

    def _run(self, node):
        try:
            with psycopg.connect(node.conninfo(), autocommit=True) as conn:
                conn.execute(f"INSERT INTO {PROBE_TABLE} VALUES (1)")
            self.done_at = time.monotonic()
        except psycopg.Error as e:
            self.error = e

    def wait(self, timeout):
        self._thread.join(timeout)
        return self.done_at is not None


def stop_node(formation, node):
    formation.autoctl("stop", "--pgdata", node.pgdata)
    if node.keeper is not None:
        node.keeper.wait(timeout=30)
    node.keeper = None


def timelines(formation):
    """Per node: the monitor's reported timeline, and what Postgres itself says
    (WAL receiver timeline while streaming, pg_control's min recovery / checkpoint
    timelines). pg_control lags behind on a standby until a restartpoint or a
    buffer write updates it."""
    monitor = {n: s.get("timeline") for n, s in formation.state().items()}
    out = {}
    for node in formation.nodes.values():
        try:
            row = node.sql("SELECT pg_is_in_recovery(), (SELECT received_tli FROM pg_stat_wal_receiver), "
                           "(SELECT min_recovery_end_timeline FROM pg_control_recovery()), "
                           "(SELECT timeline_id FROM pg_control_checkpoint())")[0]
            out[node.name] = {"monitor": monitor.get(node.name), "in_recovery": row[0], "received_tli": row[1],
                              "min_recovery_tli": row[2], "checkpoint_tli": row[3]}
        except psycopg.Error as e:
            out[node.name] = {"monitor": monitor.get(node.name), "error": str(e).strip()}
    return out


def last_event_id(formation):
    events = json.loads(formation.autoctl("show", "events", "--count", "1", "--json").stdout)
    return events[-1]["event_id"] if events else 0


def events_since(formation, event_id, count=500):
    events = json.loads(formation.autoctl("show", "events", "--count", count, "--json").stdout)
    return [e for e in events if e["event_id"] > event_id]


def assert_planned_handover_only(formation, first_event):
    """A role change with a live primary never turns into an election (report_lsn)
    nor is it abandoned."""
    for e in events_since(formation, first_event):
        assert e["goal_state"] not in ("report_lsn", "fast_forward"), f"the handover became an election: {e}"
        assert "switchover_timeout" not in e["description"] and "failed" not in e["description"], e


def print_events(formation, count=40):
    print(formation.autoctl("show", "events", "--count", count, check=False).stdout)


# -- show ----------------------------------------------------------------------
def steady_answer_counts(formation):
    with psycopg.connect(formation.monitor_conninfo(), autocommit=True) as conn:
        return conn.execute("SELECT answers_from_cache, nodes_with_answer FROM autofailover._steady_answer_counts()"
                            ).fetchone()


def test_steady_heartbeats_are_answered_from_shared_memory(formation):
    """A healthy formation is steady: the keepers' heartbeats are answered from the monitor's shared memory
    (monitor_ext/steady_answers.h), not by a decision and a row update each. The table keeps the last report
    that took the full path; current_state shows the newer heartbeat. The operator commands of the tests
    below change goals through the same formation, so they also show that those writes void the answers."""
    formation.wait_healthy()
    answered_before, _ = steady_answer_counts(formation)
    time.sleep(4)
    answered_after, with_answer = steady_answer_counts(formation)
    # Three keepers, about one heartbeat a second each.
    assert answered_after - answered_before >= 6, (answered_before, answered_after)
    assert with_answer == 3, with_answer
    with psycopg.connect(formation.monitor_conninfo(), autocommit=True) as conn:
        rows = conn.execute("SELECT s.node_name, extract(epoch FROM s.keeper_last_report - n.last_report) "
                            "FROM autofailover.current_state('default') s JOIN autofailover.nodes n USING (node_id)"
                            ).fetchall()
    assert all(ahead > 2 for _, ahead in rows), rows


def test_show_settings_standby_names_events_and_json(formation):
    with Workload(formation, "show commands") as w:
        w.wait_for_commits(20)
        text = formation.autoctl("show", "settings").stdout
        settings = json.loads(formation.autoctl("show", "settings", "--json").stdout)
        names_text = formation.autoctl("show", "standby-names").stdout.strip()
        names = shown_standby_names(formation)
        events = json.loads(formation.autoctl("show", "events", "--count", "100", "--json").stdout)
        events_text = formation.autoctl("show", "events", "--count", "5").stdout
        state = json.loads(formation.autoctl("show", "state", "--json").stdout)
        running = running_standby_names(formation.primary())
        w.wait_for_commits(20)
    w.assert_clean()

    assert settings["number_sync_standbys"] == "0", settings
    assert settings["dbname"] == "postgres", settings
    assert settings["autofailover.node_considered_unhealthy_timeout"] in ("2s", "2000ms"), settings
    for key in settings:
        assert key in text, f"{key} missing from show settings:\n{text}"

    # Default number_sync_standbys 0 still runs with ANY 1 of both quorum standbys.
    standbys = {slot_name(formation, n.name) for n in formation.standbys()}
    assert parse_any(names) == (1, standbys), names
    assert names_text == names
    assert parse_any(running) == parse_any(names), f"primary runs {running!r}, monitor says {names!r}"

    assert len(state) == 3 and {n["name"] for n in state} == {"node_a", "node_b", "node_c"}, state
    ids = [e["event_id"] for e in events]
    assert ids == sorted(ids), "show events lists oldest first"
    for e in events:
        assert {"event_id", "event_time", "node_id", "node_name", "group_id", "reported_state", "goal_state",
                "description"} <= set(e), e
    assert any(e["node_name"] == "node_a" and e["goal_state"] == "single" for e in events), events
    assert any(e["goal_state"] == "secondary" and e["description"] for e in events), events
    assert events[-1]["description"] in events_text, events_text


# -- role changes ----------------------------------------------------------------
def test_highest_candidate_priority_wins_the_failover(formation):
    old = formation.primary()
    # The standby the tie-break would not pick (highest id) gets the highest priority.
    favourite = max(formation.standbys(), key=lambda n: node_ids(formation)[n.name])
    formation.autoctl("set", "node", "candidate-priority", "90", "--name", favourite.name, "--wait", WAIT)
    assert formation.state()[favourite.name]["candidate_priority"] == 90
    # The standby names are ordered by priority: the favourite first.
    names = shown_standby_names(formation)
    others = [slot_name(formation, n.name) for n in formation.standbys() if n.name != favourite.name]
    assert all(names.index(slot_name(formation, favourite.name)) < names.index(o) for o in others), names
    with Workload(formation, "perform failover (priority 90 wins)") as w:
        w.wait_for_commits(20)
        out = formation.autoctl("perform", "failover", "--wait", WAIT).stdout
        assert "healthy" in out, out
        w.wait_for_commits(20)
    w.assert_clean()
    new = formation.primary()
    assert new.name == favourite.name, f"expected {favourite.name} (priority 90), got {new.name}"
    assert new.name != old.name
    state = formation.wait_healthy()
    assert state[old.name]["goal_state"] == "secondary", "the old primary rejoins as a standby"
    assert [n.name for n in formation.writable_nodes()] == [new.name]
    formation.autoctl("set", "node", "candidate-priority", "50", "--name", favourite.name, "--wait", WAIT)


def test_perform_failover_with_a_live_primary(formation):
    old = formation.primary()
    first_event = last_event_id(formation)
    with Workload(formation, "perform failover") as w:
        w.wait_for_commits(20)
        formation.autoctl("perform", "failover", "--wait", WAIT)
        w.wait_for_commits(20)
    w.assert_clean()
    assert formation.primary().name != old.name
    formation.wait_healthy()
    assert len(formation.writable_nodes()) == 1
    assert_planned_handover_only(formation, first_event)


def test_perform_promotion_of_a_named_standby(formation):
    old = formation.primary()
    target = min(formation.standbys(), key=lambda n: n.name)
    first_event = last_event_id(formation)
    with Workload(formation, f"perform promotion --name {target.name}") as w:
        w.wait_for_commits(20)
        out = formation.autoctl("perform", "promotion", "--name", target.name, "--wait", WAIT).stdout
        assert f"promotion of {target.name} requested" in out, out
        w.wait_for_commits(20)
    w.assert_clean()
    assert formation.primary().name == target.name
    state = formation.wait_healthy()
    assert state[old.name]["goal_state"] == "secondary"
    assert_planned_handover_only(formation, first_event)
    # Promoting the primary again is a no-op, exit 0.
    again = formation.autoctl("perform", "promotion", "--name", target.name, "--wait", WAIT).stdout
    assert "already the primary" in again, again
    assert formation.primary().name == target.name


# -- number_sync_standbys -----------------------------------------------------------
def test_number_sync_standbys_0_1_2(formation):
    quorum = {slot_name(formation, n.name) for n in formation.standbys()}
    with Workload(formation, "set formation number-sync-standbys 1, 2, 0") as w:
        w.wait_for_commits(20)
        for n in (1, 2, 0):
            formation.autoctl("set", "formation", "number-sync-standbys", n, "--wait", WAIT)
            settings = json.loads(formation.autoctl("show", "settings", "--json").stdout)
            assert settings["number_sync_standbys"] == str(n), settings
            names = shown_standby_names(formation)
            assert parse_any(names) == (max(1, n), quorum), f"number_sync_standbys={n}: {names!r}"
            running = wait_for_running_names(formation, names)
            print(f"\n[number-sync-standbys {n}] primary runs {running!r}")
            w.wait_for_commits(20)
        # More than the quorum standbys: refused by the monitor (exit 2), nothing changes.
        refused = formation.autoctl("set", "formation", "number-sync-standbys", "3", "--wait", WAIT, check=False)
        assert refused.returncode == 2, refused
        assert json.loads(formation.autoctl("show", "settings", "--json").stdout)["number_sync_standbys"] == "0"
        w.wait_for_commits(20)
    w.assert_clean()


def test_number_sync_standbys_2_blocks_writes_without_both_standbys(formation):
    formation.autoctl("set", "formation", "number-sync-standbys", "2", "--wait", WAIT)
    try:
        primary = formation.primary()
        standby = formation.standbys()[0]
        with Workload(formation, "number-sync-standbys 2, a standby stopped (writes block)") as w:
            w.wait_for_commits(20)
            stop_node(formation, standby)
            commit = BackgroundCommit(primary)
            assert not commit.wait(BLOCKED_FOR_SECONDS), \
                "with number_sync_standbys 2 and one of two standbys down a commit must wait"
            assert commit.error is None, commit.error
            # It stays blocked past failure detection: the monitor must not relax it.
            time.sleep(STANDBY_DOWN_SECONDS)
            assert commit.done_at is None and commit.error is None
            assert formation.state()[primary.name]["goal_state"] in ("primary", "apply_settings"), \
                formation.describe(formation.state())
            standby.start_keeper()
            assert commit.wait(HEALTHY_TIMEOUT), "the commit must go through once the standby is back"
            formation.wait_healthy()
            w.wait_for_commits(20)
        w.assert_clean()
    finally:
        formation.autoctl("set", "formation", "number-sync-standbys", "1", "--wait", WAIT)


def test_number_sync_standbys_1_goes_on_with_one_standby(formation):
    primary = formation.primary()
    standby = formation.standbys()[0]
    with Workload(formation, "number-sync-standbys 1, a standby stopped (writes go on)") as w:
        w.wait_for_commits(20)
        stop_node(formation, standby)
        commit = BackgroundCommit(primary)
        assert commit.wait(BLOCKED_FOR_SECONDS), "ANY 1 of two standbys: one down must not block commits"
        time.sleep(STANDBY_DOWN_SECONDS)
        w.wait_for_commits(20)
        standby.start_keeper()
        formation.wait_healthy()
        w.wait_for_commits(20)
    w.assert_clean()


def test_number_sync_standbys_0_relaxes_without_standbys(formation):
    formation.autoctl("set", "formation", "number-sync-standbys", "0", "--wait", WAIT)
    primary = formation.primary()
    standbys = formation.standbys()
    with Workload(formation, "number-sync-standbys 0, both standbys stopped (relaxed)") as w:
        w.wait_for_commits(20)
        for s in standbys:
            stop_node(formation, s)
        state = formation.wait_until(lambda s: s[primary.name]["reported_state"] == "wait_primary",
                                     "the primary to relax synchronous replication", timeout=30)
        assert state[primary.name]["goal_state"] == "wait_primary"
        assert shown_standby_names(formation) == ""
        wait_for_running_names(formation, "")
        w.wait_for_commits(20)  # writes go on without any standby
        for s in standbys:
            s.start_keeper()
        formation.wait_healthy()
        w.wait_for_commits(20)
    w.assert_clean()
    assert parse_any(wait_for_running_names(formation, shown_standby_names(formation)))[0] == 1


# -- switchovers in a row ----------------------------------------------------------
def test_switchovers_back_to_back(formation):
    took = []
    first_event = last_event_id(formation)
    with Workload(formation, f"{SWITCHOVERS_IN_A_ROW} switchovers in a row", allow_flip_backs=True) as w:
        w.wait_for_commits(20)
        for i in range(SWITCHOVERS_IN_A_ROW):
            old = formation.primary()
            print(f"\n[switchover {i + 1}] timelines before: {timelines(formation)}")
            started = time.monotonic()
            result = formation.autoctl("perform", "switchover", "--wait", WAIT, check=False)
            took.append(time.monotonic() - started)
            if result.returncode != 0:
                print_events(formation, 60)
                raise AssertionError(f"switchover {i + 1} from {old.name} exited {result.returncode}\n"
                                     f"{result.stdout}\n{result.stderr}\n"
                                     + "\n".join(n.log_tail(30) for n in formation.nodes.values()))
            new = formation.primary()
            assert new.name != old.name, f"switchover {i + 1}: {old.name} is still the primary"
            formation.wait_healthy()
            w.wait_for_commits(20)
    w.assert_clean()
    print(f"[switchovers] each took (s): {', '.join(f'{t:.1f}' for t in took)}")
    assert_planned_handover_only(formation, first_event)


# -- drop node ----------------------------------------------------------------------
def test_drop_a_standby(formation):
    dropped = formation.standbys()[-1]
    dropped_slot = slot_name(formation, dropped.name)
    primary = formation.primary()
    assert dropped_slot in [r[0] for r in primary.sql("SELECT slot_name FROM pg_replication_slots")]
    with Workload(formation, f"drop node {dropped.name}") as w:
        w.wait_for_commits(20)
        out = formation.autoctl("drop", "node", "--name", dropped.name, "--wait", WAIT).stdout
        assert f"{dropped.name} is being removed" in out, out
        state = formation.wait_until(lambda s: dropped.name not in s, f"{dropped.name} to leave the formation")
        assert formation.is_healthy(state), formation.describe(state)
        assert dropped.keeper.wait(timeout=30) == 121, "a dropped node's keeper exits 121"
        w.wait_for_commits(20)
    w.assert_clean()
    dropped.teardown()
    del formation.nodes[dropped.name]

    state = formation.wait_healthy()
    assert len(state) == 2 and dropped.name not in state
    assert formation.primary().name == primary.name
    slots = [r[0] for r in primary.sql("SELECT slot_name FROM pg_replication_slots")]
    assert dropped_slot not in slots, f"slot of the dropped node is still on the primary: {slots}"
    names = shown_standby_names(formation)
    assert dropped_slot not in names, names
    running = wait_for_running_names(formation, names)
    assert dropped_slot not in running, running
    replication = [r[0] for r in primary.sql("SELECT application_name FROM pg_stat_replication")]
    assert dropped_slot not in replication, replication
    events = json.loads(formation.autoctl("show", "events", "--count", "30", "--json").stdout)
    assert any(e["node_name"] == dropped.name and e["goal_state"] == "dropped" for e in events), events
    # The remaining two nodes still fail over cleanly.
    with Workload(formation, "switchover after drop") as w:
        w.wait_for_commits(20)
        formation.autoctl("perform", "switchover", "--wait", WAIT)
        w.wait_for_commits(20)
    w.assert_clean()
    assert formation.primary().name != primary.name
