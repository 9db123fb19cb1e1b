"""The old primary's way back after a machine crash, on a 2-node formation of
its own, with wal_keep_size 0 on every node (the keeper setting) so that only
replication slots keep WAL for it:

1. the new primary recycles WAL while the old primary is down; the slot the new
   primary made for it while still a standby keeps what it needs: it rejoins
   through pg_rewind, no base backup;
2. the WAL the old primary needs is really gone (its slot was dropped and
   re-made after more checkpoints, as if it had been made too late or lost):
   the keeper sees the removed segment, re-initializes it from a fresh base
   backup and it rejoins without any manual step;
3. a keeper restarted after such a failed rejoin (state.json says so) goes
   straight to the base backup and does not pg_rewind again.

All assert zero lost acknowledged commits, never two writable primaries, and
full health within REJOIN_TIMEOUT, and print the measured time to rejoin."""

import json
import os
import signal
import time

import pytest

from formation import _user_ids
from workload import Workload

# From the old primary's keeper start to full health (rewind or base backup of a small database);
# generous because this 2-core machine is shared (76.7 s seen at load average 13.5, 12-16 s at 6-8).
REJOIN_TIMEOUT = 150.0
WAL_SEGMENT_BYTES = 16 * 1024 * 1024
# The keeper's rejoin_stream_timeout for this module (default 30 s): bounds the
# case where no log line tells that the standby cannot follow.
REJOIN_STREAM_TIMEOUT_MS = 10000


@pytest.fixture(scope="module")
def formation(formation_factory):
    return formation_factory(port_offset=0).create_healthy(["node1", "node2"])


def set_keeper_settings(node, settings, timeouts=None):
    """Edits the node's keeper.json and sends SIGHUP to its keeper (the keeper
    rewrites autofailover.conf and reloads Postgres)."""
    path = os.path.join(node.state_dir, "keeper.json")
    with open(path) as f:
        config = json.load(f)
    config.update(settings)
    config.setdefault("timeouts", {}).update(timeouts or {})
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(config, f, indent=2)
    os.chown(tmp, *_user_ids())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    os.kill(node.keeper_pid(), signal.SIGHUP)


def wait_for(predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 -- a server restarting: try again
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def segment_of(lsn_text):
    high, low = (int(x, 16) for x in lsn_text.split("/"))
    return ((high << 32) | low) // WAL_SEGMENT_BYTES


def oldest_segment(node):
    names = [r[0] for r in node.sql("SELECT name FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'")]
    return min(int(n[8:16], 16) * (0x100000000 // WAL_SEGMENT_BYTES) + int(n[16:24], 16) for n in names)


def switch_point_segment(node):
    """Segment holding the point where node's current timeline forked off the previous one."""
    tli = node.sql("SELECT timeline_id FROM pg_control_checkpoint()")[0][0]
    history = node.sql("SELECT pg_read_file(%s)", (f"pg_wal/{tli:08X}.history",))[0][0]
    last = [line for line in history.splitlines() if line.strip() and not line.startswith("#")][-1]
    return segment_of(last.split()[1])


def recycle_wal(node, rounds):
    """Fills and switches WAL segments and checkpoints, so that the primary removes
    every segment that neither a slot nor wal_keep_size holds."""
    for i in range(rounds):
        node.sql("CREATE TABLE IF NOT EXISTS rejoin_filler (i int, pad text)")
        node.sql("INSERT INTO rejoin_filler SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g")
        node.sql("SELECT pg_switch_wal()")
        node.sql("CHECKPOINT")
    node.sql("DROP TABLE IF EXISTS rejoin_filler")


def keeper_log(node):
    path = os.path.join(node.formation.workdir, f"{node.name}.keeper.out")
    with open(path, errors="replace") as f:
        return f.read()


def crash_primary_and_wait_for_failover(formation, old):
    old.kill_keeper(signal.SIGKILL)
    old.kill_postgres(signal.SIGKILL)
    killed = time.monotonic()
    state = formation.wait_until(
        lambda s: any(n != old.name and st["reported_state"] in ("wait_primary", "primary") for n, st in s.items()),
        "the standby to be promoted", timeout=60)
    new = next(n for n, st in state.items() if n != old.name and st["reported_state"] in ("wait_primary", "primary"))
    print(f"\n[rejoin] {new} promoted {time.monotonic() - killed:.1f}s after the crash of {old.name}")
    return formation.nodes[new]


def rejoin(formation, old):
    """Starts the old primary's keeper; returns the seconds until full health and its new log lines."""
    log_offset = len(keeper_log(old))
    old.keeper = None
    old.start_keeper()
    started = time.monotonic()
    state = formation.wait_healthy(timeout=REJOIN_TIMEOUT)
    took = time.monotonic() - started
    assert state[old.name]["goal_state"] == "secondary", formation.describe(state)
    return took, keeper_log(old)[log_offset:]


def load_average():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def test_formation_with_wal_keep_size_zero(formation):
    for node in formation.nodes.values():
        # Throw-away clusters: the base backup need not fsync (seconds under load).
        set_keeper_settings(node, {"wal_keep_size": "0", "sync_new_data_directories": False},
                            {"rejoin_stream_timeout_ms": REJOIN_STREAM_TIMEOUT_MS})
    for node in formation.nodes.values():
        wait_for(lambda: node.sql("SHOW wal_keep_size")[0][0] == "0", f"wal_keep_size 0 on {node.name}")
    formation.wait_healthy()


def test_old_primary_rejoins_by_rewind_while_the_new_primary_recycles_wal(formation):
    old = formation.primary()
    with Workload(formation, "rejoin through pg_rewind after WAL recycling") as w:
        w.wait_for_commits(20)
        new = crash_primary_and_wait_for_failover(formation, old)
        w.wait_for_commits(20)
        slot = f"autofailover_node_{formation.state()[old.name]['node_id']}"
        restart = new.sql("SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = %s", (slot,))
        assert restart and restart[0][0], f"{new.name} holds no slot {slot} for the old primary"
        # Made while still a standby: it reserves WAL from before the fork.
        assert segment_of(restart[0][0]) <= switch_point_segment(new), restart
        recycle_wal(new, rounds=4)
        assert oldest_segment(new) <= switch_point_segment(new), "the slot should have kept the WAL"
        took, log = rejoin(formation, old)
        w.wait_for_commits(20)
    w.assert_clean()
    assert "pg_rewind from" in log, log
    assert "pg_basebackup from" not in log and "cannot follow" not in log, log
    print(f"\n[rejoin] old primary back as secondary through pg_rewind in {took:.1f}s (load average {load_average()})")


def test_old_primary_whose_wal_is_gone_rejoins_from_a_base_backup(formation):
    old = formation.primary()
    with Workload(formation, "rejoin after the WAL it needs was removed") as w:
        w.wait_for_commits(20)
        new = crash_primary_and_wait_for_failover(formation, old)
        w.wait_for_commits(20)
        slot = f"autofailover_node_{formation.state()[old.name]['node_id']}"
        recycle_wal(new, rounds=2)  # still held by the slot
        # The slot is lost (as if made after the post-promotion checkpoint, or dropped by a DBA);
        # the keeper re-makes it, reserving WAL only from the latest checkpoint on.
        new.sql("SELECT pg_drop_replication_slot(%s)", (slot,))
        wait_for(lambda: new.sql("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)),
                 f"the keeper of {new.name} to re-make slot {slot}")
        recycle_wal(new, rounds=3)
        oldest, fork = oldest_segment(new), switch_point_segment(new)
        assert oldest > fork, f"{new.name} still holds segment {oldest:X}, the fork is in {fork:X}"
        took, log = rejoin(formation, old)
        w.wait_for_commits(20)
    w.assert_clean()
    print("\n" + "\n".join(line for line in log.splitlines()
                            if any(k in line for k in ("pg_rewind", "cannot follow", "pg_basebackup", "→"))))
    assert "cannot follow the primary" in log and "has already removed WAL segment" in log, log
    assert "pg_basebackup from" in log, log
    with open(os.path.join(old.state_dir, "state.json")) as f:
        assert json.load(f)["rejoin_needs_base_backup"] is False
    print(f"\n[rejoin] old primary needed removed WAL; back as secondary through a fresh base backup in "
          f"{took:.1f}s (load average {load_average()})")


def test_keeper_restarted_after_a_failed_rejoin_goes_straight_to_a_base_backup(formation):
    old = formation.primary()
    with Workload(formation, "rejoin of a keeper restarted after a failed rejoin") as w:
        w.wait_for_commits(20)
        crash_primary_and_wait_for_failover(formation, old)
        w.wait_for_commits(20)
        # What state.json holds when a keeper died after it saw that the rewound directory
        # cannot follow, before its base backup was in place.
        path = os.path.join(old.state_dir, "state.json")
        with open(path) as f:
            state = json.load(f)
        state["rejoin_needs_base_backup"] = True
        with open(path + ".tmp", "w") as f:
            json.dump(state, f, indent=2)
        os.chown(path + ".tmp", *_user_ids())
        os.chmod(path + ".tmp", 0o600)
        os.replace(path + ".tmp", path)
        took, log = rejoin(formation, old)
        w.wait_for_commits(20)
    w.assert_clean()
    assert "could not follow the primary before" in log and "pg_basebackup from" in log, log
    assert "pg_rewind from" not in log, "a restarted keeper must not rewind again after a failed rejoin"
    with open(path) as f:
        assert json.load(f)["rejoin_needs_base_backup"] is False
    print(f"\n[rejoin] restarted keeper went straight to a base backup; secondary in {took:.1f}s "
          f"(load average {load_average()})")


def test_standby_away_longer_than_its_slot_holds_is_rebuilt_from_a_base_backup(formation):
    """max_slot_wal_keep_size (keeper.json, default 10GB) caps the WAL a slot holds for a node that is
    away, so that a node which never returns cannot fill the primary's disk. A standby away for longer
    finds its WAL gone ("requested WAL segment ... has already been removed", for ever): its keeper
    re-initializes it from a fresh base backup, with no manual step."""
    primary = formation.primary()
    standby = next(n for n in formation.nodes.values() if n.name != primary.name)
    set_keeper_settings(primary, {"max_slot_wal_keep_size": "32MB"})
    wait_for(lambda: primary.sql("SHOW max_slot_wal_keep_size")[0][0] == "32MB",
             f"max_slot_wal_keep_size 32MB on {primary.name}")
    slot = f"autofailover_node_{formation.state()[standby.name]['node_id']}"
    with Workload(formation, "standby rebuilt after its slot exceeded max_slot_wal_keep_size") as w:
        w.wait_for_commits(20)
        standby.kill_keeper(signal.SIGKILL)
        standby.stop_postgres()
        recycle_wal(primary, rounds=5)
        status = primary.sql("SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s", (slot,))
        assert status and status[0][0] == "lost", f"slot {slot} should be invalidated: {status}"
        took, log = rejoin(formation, standby)
        w.wait_for_commits(20)
    w.assert_clean()
    print("\n" + "\n".join(line for line in log.splitlines()
                            if any(k in line for k in ("cannot follow", "pg_basebackup", "→"))))
    assert "cannot follow the primary" in log and "has already removed WAL segment" in log, log
    assert "pg_basebackup from" in log, log
    set_keeper_settings(primary, {"max_slot_wal_keep_size": "10GB"})
    print(f"\n[rejoin] standby away past max_slot_wal_keep_size back as secondary through a fresh base backup "
          f"in {took:.1f}s (load average {load_average()})")
