"""A monitor that answers with refusals is no monitor contact: a primary whose
monitor refuses every report and whose standby is gone fences itself within
network_partition_timeout. (Security review #2: a removed primary's keeper got
"not registered" every second, counted it as contact, and never fenced while
another node was promoted.) Here the monitor refuses because its database went
read-only, as a monitor standby would; the keeper protocol cannot store reports."""

import time

import psycopg
import pytest

# network_partition_timeout of the test monitor (1.5 s) + the standby's last reply (up to 2 s) + slack.
FENCE_WITHIN = 10.0


@pytest.fixture(scope="module")
def formation(formation_factory):
    return formation_factory(port_offset=0).create_healthy(["node1", "node2"])


def test_keeper_calls_stuck_on_a_lock_are_cancelled(formation):
    """An operator transaction holds the group's decision lock for 4 s: each keeper call gives up after
    monitor_call_timeout and cancels its query (PQcancel), so no backend is left waiting behind
    (security review #6: 5 stuck backends after 8 s, one per second)."""
    f = formation
    with psycopg.connect(f.monitor_conninfo(), autocommit=True) as op, \
            psycopg.connect(f.monitor_conninfo(), autocommit=True) as watch:
        op.execute("BEGIN")
        op.execute("SELECT autofailover.set_node_candidate_priority('default', 'node2', 50)")
        most = {}
        started = time.monotonic()
        while time.monotonic() - started < 4.0:
            for role, waiting in watch.execute(
                    "SELECT usename, count(*) FROM pg_stat_activity WHERE usename LIKE 'autofailover\\_keeper\\_%' "
                    "AND wait_event_type = 'Lock' GROUP BY usename").fetchall():
                most[role] = max(most.get(role, 0), waiting)
            time.sleep(0.05)
        op.execute("ROLLBACK")
    print(f"\n[cancel] most keeper backends waiting on the lock at once, per role: {most}")
    assert most, "no keeper call waited on the lock: the test held nothing"
    # One call in flight, plus at most one whose cancel request is still on its way.
    assert max(most.values()) <= 2, most
    f.wait_healthy()


def refuse_keeper_reports(f):
    """New monitor sessions are read-only; the keepers' current sessions are ended so they reconnect into one."""
    with psycopg.connect(f.monitor_conninfo(), autocommit=True) as conn:
        conn.execute("ALTER DATABASE autofailover SET default_transaction_read_only = on")
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE usename LIKE 'autofailover\\_keeper%'")


def wait_for_fence(f, primary, started, label, cause):
    """Waits until the primary takes no writes, then until its keeper logged the fence (the write lease may
    stop writes a moment before it); returns the keeper's log. cause: what began at `started`."""
    while primary.is_writable():
        assert time.monotonic() - started < FENCE_WITHIN, (
            f"{primary.name} still takes writes {FENCE_WITHIN}s after {cause} and its standby vanished\n"
            + primary.log_tail(20))
        time.sleep(0.1)
    print(f"\n[{label}] {primary.name} stopped taking writes {time.monotonic() - started:.1f}s after {cause}")
    while True:
        with open(f"{f.workdir}/{primary.name}.keeper.out", errors="replace") as log:
            text = log.read()
        if "network partition" in text or time.monotonic() - started > FENCE_WITHIN:
            return text
        time.sleep(0.1)


def test_primary_refused_by_the_monitor_and_without_standby_fences(formation):
    f = formation
    primary = f.primary()
    standby = f.standbys()[0]
    refuse_keeper_reports(f)
    # The standby disappears for good: keeper and Postgres killed, nothing restarts it.
    standby.kill_keeper()
    standby.kill_postgres()
    text = wait_for_fence(f, primary, time.monotonic(), "refusal", "its monitor started refusing")
    assert "node_active refused" in text and "read-only" in text, primary.log_tail(20)
    assert "network partition" in text, primary.log_tail(20)
    assert not primary.is_writable() and not standby.is_writable()


@pytest.fixture(scope="module")
def leased(formation_factory):
    """A monitor that requires the leader lease of replicated monitors (docs/monitor-ha.md), granted by hand
    for an hour here instead of by an etcd agent, so the test can take it away at a chosen moment."""
    f = formation_factory(port_offset=5)
    f.create_monitor()
    f.create_node("node1")
    f.create_node("node2")
    f.wait_healthy()
    with psycopg.connect(f.monitor_conninfo(), autocommit=True) as conn:
        conn.execute("SELECT autofailover.renew_leader_lease(3600000)")
        conn.execute("ALTER SYSTEM SET autofailover.require_leader_lease = on")
        conn.execute("SELECT pg_reload_conf()")
    time.sleep(0.3)
    f.wait_healthy()
    return f


def last_reports(f):
    with psycopg.connect(f.monitor_conninfo(), autocommit=True) as conn:
        return dict(conn.execute("SELECT node_name, last_report FROM autofailover.nodes").fetchall())


def test_a_monitor_without_the_leader_lease_is_no_contact(leased):
    """M4 of docs/monitor-ha.md: a replicated monitor that lost its etcd lease still records heartbeats and
    returns stored goals, but a new leader may be failing the primary over meanwhile. Its answers must not
    keep the primary writable: with its standby gone, the primary fences within network_partition_timeout,
    exactly as with no monitor at all. (Before node_active said whether the monitor leads, the keeper counted
    these answers as contact and renewed its write lease for ever.)"""
    f = leased
    primary = f.primary()
    standby = f.standbys()[0]
    standby.kill_keeper()
    standby.kill_postgres()
    # Control: while the monitor holds its lease, its answers are contact and the primary keeps writing.
    time.sleep(FENCE_WITHIN / 2)
    assert primary.is_writable(), primary.log_tail(20)
    before = last_reports(f)
    with psycopg.connect(f.monitor_conninfo(), autocommit=True) as conn:
        conn.execute("SELECT autofailover.renew_leader_lease(0)")  # fenced at once, as at the lease deadline
    text = wait_for_fence(f, primary, time.monotonic(), "no lease", "its monitor lost the leader lease")
    assert "without a valid leader lease" in text, primary.log_tail(20)
    assert "network partition" in text, primary.log_tail(20)
    # The M5 half: the fenced monitor still records the keeper's reports (show state stays true).
    after = last_reports(f)
    assert after[primary.name] > before[primary.name], (before, after)
