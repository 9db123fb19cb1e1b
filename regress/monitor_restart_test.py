#!/usr/bin/python3
"""The extension refuses to load without shared_preload_libraries; a monitor
restarted mid-run keeps all its state and its health-check worker
resumes probing. Runs a real PostgreSQL 15 (as the unprivileged test user)
with the INSTALLED autofailover extension; registered nodes point at closed
ports on 127.0.0.1, so their probes fail and are stored as 'bad'."""
import os
import shutil
import socket
import json
import subprocess
import sys
import tempfile
import time

import psycopg

USER = os.environ.get("AUTOFAILOVER_TEST_USER", "autofailover")
BINDIR = "/usr/lib/postgresql/15/bin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT = free_port()


def as_user(*args):
    prefix = ["runuser", "-u", USER, "--"] if os.geteuid() == 0 else []
    subprocess.run(prefix + list(args), check=True, stdout=subprocess.DEVNULL)


def connect(sockdir, dbname):
    return psycopg.connect(host=sockdir, port=PORT, user=USER, dbname=dbname, autocommit=True)


def wait_for(what, predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def snapshot(conn):
    rows = conn.execute(
        "SELECT node_name, group_id, host, port, reported_state::text, goal_state::text, timeline, lsn::text, "
        "candidate_priority, replication_quorum FROM autofailover.current_state('rst') ORDER BY node_name").fetchall()
    events = conn.execute("SELECT count(*), max(event_id) FROM autofailover.events").fetchone()
    return rows, events


def last_check(conn):
    """The oldest probe time over all nodes; None until every node was probed (min() alone skips NULLs,
    which let the test go on after the first stored probe and then find the others unknown)."""
    return conn.execute("SELECT CASE WHEN bool_and(last_health_check IS NOT NULL) THEN min(last_health_check) END "
                        "FROM autofailover.node_health").fetchone()[0]


def main():
    work = tempfile.mkdtemp(prefix="autofailover-restart.")
    if os.geteuid() == 0:
        shutil.chown(work, USER)
    pgdata = os.path.join(work, "data")
    try:
        as_user(f"{BINDIR}/initdb", "-D", pgdata, "-A", "trust", "-U", USER)
        log = os.path.join(work, "postgres.log")
        with open(os.path.join(pgdata, "postgresql.conf"), "a") as conf:
            conf.write(f"""
port = {PORT}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{work}'
""")
        # Without shared_preload_libraries the extension refuses to load, with a hint.
        as_user(f"{BINDIR}/pg_ctl", "-D", pgdata, "-l", log, "-w", "start")
        with connect(work, "postgres") as conn:
            try:
                conn.execute("CREATE EXTENSION autofailover")
                raise AssertionError("CREATE EXTENSION worked without shared_preload_libraries")
            except psycopg.errors.ObjectNotInPrerequisiteState as error:
                assert "shared_preload_libraries" in str(error), error
        as_user(f"{BINDIR}/pg_ctl", "-D", pgdata, "-m", "fast", "-w", "stop")
        with open(os.path.join(pgdata, "postgresql.conf"), "a") as conf:
            conf.write(f"""
shared_preload_libraries = 'autofailover'
autofailover.health_check_period = 200ms
autofailover.health_check_timeout = 200ms
autofailover.health_check_max_retries = 0
autofailover.node_considered_unhealthy_timeout = 1h
autofailover.require_leader_lease = off
autofailover.steady_answer_slots = 1234
""")
        as_user(f"{BINDIR}/pg_ctl", "-D", pgdata, "-l", log, "-w", "start")
        # Every autofailover.* value of postgresql.conf is in effect from the start, whichever
        # module file defines it (require_leader_lease = on was once dropped until a reload).
        with open(log) as text:
            dropped = [line for line in text if "invalid configuration parameter name" in line]
        assert not dropped, dropped
        with connect(work, "postgres") as conn:
            slots = conn.execute("SHOW autofailover.steady_answer_slots").fetchone()[0]
            assert slots == "1234", slots
        with connect(work, "postgres") as conn:
            conn.execute("CREATE DATABASE autofailover")
        with connect(work, "autofailover") as conn, connect(work, "autofailover") as listener:
            conn.execute("CREATE EXTENSION autofailover")
            notes = []
            listener.add_notify_handler(lambda note: notes.append((note.channel, json.loads(note.payload))))
            listener.execute("LISTEN autofailover_state")
            conn.execute("SELECT autofailover.create_formation('rst')")
            primary = conn.execute(
                "SELECT node_id FROM autofailover.register_node('rst', '127.0.0.1', 9, 'rst_a')").fetchone()[0]
            conn.execute("SELECT * FROM autofailover.node_active('rst', %s, 'single', true, 1, '0/2000000')",
                         (primary,))
            conn.execute("SELECT * FROM autofailover.register_node('rst', '127.0.0.1', 10, 'rst_b')")
            # A node whose Postgres answers "role autofailover_monitor does not exist": the server runs, so good.
            conn.execute("SELECT * FROM autofailover.register_node('rst', '127.0.0.1', %s, 'rst_self')", (PORT,))
            listener.execute("SELECT 1")  # delivers the pending notifications
            assert notes, "register_node sent no NOTIFY"
            channel, first = notes[0]
            assert channel == "autofailover_state"
            assert set(first) == {"formation", "group", "node_id", "node", "reported", "goal", "reason", "rule"}, first
            assert (first["formation"], first["group"], first["node"], first["goal"]) == ("rst", 0, "rst_a", "single")
            assert first["rule"] == "initial_assignment", first
            assert first["node_id"] == primary and first["reason"], first
            wait_for("first probes", lambda: last_check(conn) is not None)
            # Take the group's pending decision now, so the worker has nothing left to change.
            conn.execute("SELECT autofailover.run_decision('rst', 0)")
            before = snapshot(conn)
            health = dict(conn.execute("SELECT n.node_name, h.health FROM autofailover.node_health h "
                                       "JOIN autofailover.nodes n USING (node_id)").fetchall())
            assert health == {"rst_a": "bad", "rst_b": "bad", "rst_self": "good"}, f"unexpected probe results {health}"

        as_user(f"{BINDIR}/pg_ctl", "-D", pgdata, "-l", log, "-m", "fast", "-w", "restart")
        restarted_at = time.time()

        with connect(work, "autofailover") as conn:
            after = snapshot(conn)
            assert after == before, f"state changed across restart:\n{before}\n{after}"
            wait_for("the worker after restart",
                     lambda: conn.execute("SELECT count(*) FROM pg_stat_activity "
                                          "WHERE backend_type = 'autofailover health check'").fetchone()[0] == 1)
            wait_for("probes after restart",
                     lambda: last_check(conn) is not None and last_check(conn).timestamp() > restarted_at)
            # the keeper protocol works on the restored state
            goal = conn.execute("SELECT goal_state::text FROM autofailover.node_active('rst', %s, 'single', true, "
                                "1, '0/2000000')", (primary,)).fetchone()[0]
        print(f"state kept across restart ({len(before[0])} nodes, {before[1][0]} events); probes resumed; "
              f"primary goal after restart: {goal}")
        return 0
    finally:
        if os.path.exists(os.path.join(pgdata, "postmaster.pid")):
            as_user(f"{BINDIR}/pg_ctl", "-D", pgdata, "-m", "immediate", "-w", "stop")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
