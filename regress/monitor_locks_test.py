#!/usr/bin/python3
"""Nobody but the extension's own functions can stall the monitor's decisions
(security review #6). A real PostgreSQL 15 with the INSTALLED extension, as the
unprivileged test user: a role without grants holds the advisory locks the
monitor used before, the bootstrap keeper role tries to lock the tables, a
node's keeper role keeps its group lock by leaving its transaction open or by
sleeping in the same statement, and an operator holds a group lock while the
health-check worker goes on probing. Each attack must fail, or be cut off at
autofailover.keeper_transaction_limit."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

USER = os.environ.get("AUTOFAILOVER_TEST_USER", "autofailover")
BINDIR = "/usr/lib/postgresql/15/bin"
LIMIT_S = 1.0  # autofailover.keeper_transaction_limit of this instance


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT = free_port()


def as_user(*args):
    prefix = ["runuser", "-u", USER, "--"] if os.geteuid() == 0 else []
    subprocess.run(prefix + list(args), check=True, stdout=subprocess.DEVNULL)


def connect(sockdir, user=USER, dbname="autofailover"):
    return psycopg.connect(host=sockdir, port=PORT, user=user, dbname=dbname, autocommit=True)


def report(conn, node_id, state="single"):
    """One keeper report, timed."""
    started = time.monotonic()
    conn.execute("SELECT goal_state FROM autofailover.node_active('lk', %s, %s, true, 1, '0/3000000')",
                 (node_id, state)).fetchone()
    return time.monotonic() - started


def expect_error(conn, sql, fragment):
    try:
        with conn.transaction():
            conn.execute(sql)
    except psycopg.Error as error:
        assert fragment in str(error), f"{sql}: {error}"
        return
    raise AssertionError(f"{sql} was accepted")


def expect_terminated(conn, what):
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return
    raise AssertionError(f"{what}: the session still runs")


def main():
    work = tempfile.mkdtemp(prefix="autofailover-locks.")
    if os.geteuid() == 0:
        shutil.chown(work, USER)
    pgdata = os.path.join(work, "data")
    log = os.path.join(work, "postgres.log")
    try:
        as_user(f"{BINDIR}/initdb", "-D", pgdata, "-A", "trust", "-U", USER)
        with open(os.path.join(pgdata, "postgresql.conf"), "a") as conf:
            conf.write(f"""
port = {PORT}
listen_addresses = ''
unix_socket_directories = '{work}'
shared_preload_libraries = 'autofailover'
autofailover.health_check_period = 200ms
autofailover.health_check_timeout = 200ms
autofailover.health_check_max_retries = 0
autofailover.node_considered_unhealthy_timeout = 1h
autofailover.keeper_transaction_limit = {int(LIMIT_S * 1000)}ms
autofailover.decision_lock_timeout = 300ms
""")
        as_user(f"{BINDIR}/pg_ctl", "-D", pgdata, "-l", log, "-w", "start")
        with connect(work, dbname="postgres") as conn:
            conn.execute("CREATE DATABASE autofailover")
        with connect(work) as admin:
            admin.execute("CREATE EXTENSION autofailover")
            admin.execute("SELECT autofailover.create_formation('lk')")
            a_id, a_role = admin.execute(
                "SELECT node_id, keeper_role FROM autofailover.register_node('lk', '127.0.0.1', 9, 'lk_a')").fetchone()
            b_id, b_role = admin.execute(
                "SELECT node_id, keeper_role FROM autofailover.register_node('lk', '127.0.0.1', 10, 'lk_b')").fetchone()
            admin.execute("CREATE ROLE lk_stranger LOGIN")
            admin.execute("CREATE ROLE lk_bootstrap LOGIN IN ROLE autofailover_keeper")
            admin.execute("CREATE ROLE lk_operator LOGIN IN ROLE autofailover_operator")

            with connect(work, a_role) as a, connect(work, b_role) as b:
                report(a, a_id)

                # 1. A stranger holds the advisory locks the monitor used to take: they stall nothing now.
                with connect(work, "lk_stranger") as stranger:
                    stranger.execute("BEGIN")
                    stranger.execute("SELECT pg_advisory_xact_lock(hashtext('autofailover:lk')::bigint)")
                    stranger.execute("SELECT pg_advisory_xact_lock(hashtext('autofailover:lk'), 0)")
                    took = report(a, a_id)
                    assert took < 0.5, f"node_active took {took:.2f}s behind a stranger's advisory lock"
                    stranger.execute("ROLLBACK")
                    expect_error(stranger, "SELECT 1 FROM autofailover.groups FOR UPDATE", "permission denied")
                print(f"stranger: advisory locks stall nothing (node_active {took * 1000:.0f} ms); no row lock")

                # 2. Neither the bootstrap role nor a node's role nor an operator can lock the rows themselves.
                for role in ("lk_bootstrap", a_role, "lk_operator"):
                    with connect(work, role) as conn:
                        for sql in ("SELECT 1 FROM autofailover.groups FOR NO KEY UPDATE",
                                    "SELECT 1 FROM autofailover.formations FOR SHARE",
                                    "LOCK TABLE autofailover.groups IN ROW EXCLUSIVE MODE"):
                            expect_error(conn, sql, "permission denied")
                print("bootstrap, node and operator roles: locking the tables directly is refused")

                # 3. A node's keeper opens a transaction, reports, and keeps it open: its session is
                #    ended at the limit, and the other keeper of the group waits at most that long.
                with connect(work, a_role) as hog:
                    hog.execute("BEGIN")
                    report(hog, a_id)
                    took = report(b, b_id, "wait_standby")
                    assert LIMIT_S * 0.5 < took < LIMIT_S + 1.5, f"the other keeper waited {took:.2f}s"
                    expect_terminated(hog, "a keeper's transaction left open")
                print(f"node role, transaction left open: ended, the other keeper waited {took:.2f}s")

                # 4. The same in one statement: report, then sleep while holding the lock.
                with connect(work, a_role) as hog:
                    holder = threading.Thread(target=lambda: expect_terminated_statement(hog, a_id))
                    holder.start()
                    time.sleep(0.2)
                    took = report(b, b_id, "wait_standby")
                    holder.join()
                    assert took < LIMIT_S + 1.5, f"the other keeper waited {took:.2f}s"
                print(f"node role, sleeping in the reporting statement: ended, the other keeper waited {took:.2f}s")

                # 5. An operator is trusted with the lock (never cut off); meanwhile the health-check worker
                #    skips the group after autofailover.decision_lock_timeout and keeps probing every round.
                report(b, b_id, "init")  # a report behind its goal: the worker decides the group every round
                with connect(work, "lk_operator") as op:
                    op.execute("BEGIN")
                    op.execute("SELECT autofailover.set_node_candidate_priority('lk', 'lk_b', 40)")
                    before = admin.execute("SELECT max(last_health_check) FROM autofailover.node_health").fetchone()[0]
                    time.sleep(LIMIT_S + 1.5)
                    after = admin.execute("SELECT max(last_health_check) FROM autofailover.node_health").fetchone()[0]
                    op.execute("SELECT 1")  # still alive past the keepers' limit
                    op.execute("ROLLBACK")
                assert (after - before).total_seconds() > LIMIT_S, f"the worker stalled: {before} -> {after}"
                print(f"operator holds the group lock {LIMIT_S + 1.5:.1f}s: not ended; the worker probed on "
                      f"({(after - before).total_seconds():.1f}s of checks)")

        with open(log, errors="replace") as f:
            text = f.read()
        assert "terminated the session of role" in text and "keeper_transaction_limit" in text, "no log line"
        assert "canceling statement due to lock timeout" in text, "the worker never skipped the locked group"
        return 0
    finally:
        if os.path.exists(os.path.join(pgdata, "postmaster.pid")):
            as_user(f"{BINDIR}/pg_ctl", "-D", pgdata, "-m", "immediate", "-w", "stop")
        shutil.rmtree(work, ignore_errors=True)


def expect_terminated_statement(conn, node_id):
    try:
        conn.execute("SELECT a.goal_state, pg_sleep(30) FROM autofailover.node_active('lk', %s, 'single', true, 1, "
                     "'0/3000000') a", (node_id,))
    except psycopg.OperationalError:
        return
    raise AssertionError("a keeper's statement slept 30 s holding the group lock")


if __name__ == "__main__":
    sys.exit(main())
