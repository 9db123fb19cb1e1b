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
    f = formation_factory(port_offset=0)
    f.create_monitor()
    f.create_node("node1")
    f.create_node("node2")
    f.wait_healthy()
    return f


def refuse_keeper_reports(f):
    """New monitor sessions are read-only; the keepers' current sessions are ended so they reconnect into one."""
    with psycopg.connect(f.monitor_conninfo(), autocommit=True) as conn:
        conn.execute("ALTER DATABASE autofailover SET default_transaction_read_only = on")
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE usename LIKE 'autofailover\\_keeper%'")


def test_primary_refused_by_the_monitor_and_without_standby_fences(formation):
    f = formation
    primary = f.primary()
    standby = f.standbys()[0]
    refuse_keeper_reports(f)
    # The standby disappears for good: keeper and Postgres killed, nothing restarts it.
    standby.kill_keeper()
    standby.kill_postgres()
    started = time.monotonic()
    while primary.is_writable():
        assert time.monotonic() - started < FENCE_WITHIN, (
            f"{primary.name} still takes writes {FENCE_WITHIN}s after its monitor started refusing and its "
            f"standby vanished\n" + primary.log_tail(20))
        time.sleep(0.1)
    print(f"\n[refusal] {primary.name} stopped taking writes {time.monotonic() - started:.1f}s after the refusals began")
    # The write lease may stop writes a moment before the keeper's fence: wait for the fence too.
    while True:
        with open(f"{f.workdir}/{primary.name}.keeper.out", errors="replace") as log:
            text = log.read()
        if "network partition" in text or time.monotonic() - started > FENCE_WITHIN:
            break
        time.sleep(0.1)
    assert "node_active refused" in text and "read-only" in text, primary.log_tail(20)
    assert "network partition" in text, primary.log_tail(20)
    assert not primary.is_writable() and not standby.is_writable()
