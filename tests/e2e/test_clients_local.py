"""docs/clients.md on one host: `--skip-pg-hba` leaves pg_hba.conf to the DBA (no keeper block, ever), and
`autoctl set node allow-clients` refuses to pretend otherwise; ports 6600-6609. The application side (other hosts,
--allow-clients, role changes) is tests/faults/test_clients.py."""

import os
import time


def test_skip_pg_hba_leaves_the_file_to_the_dba(formation_factory):
    f = formation_factory()
    f.create_monitor()
    node = f.new_node("dba_managed")
    f.autoctl(*f.create_args(node), "--skip-pg-hba")
    f._after_first_node(node)
    f.shorten_keeper_timeouts(node)
    node.start_keeper()
    f.wait_until(lambda st: st[node.name]["reported_state"] == "single" and st[node.name]["keeper_reporting"],
                 "the node running as single")
    hba = os.path.join(node.pgdata, "pg_hba.conf")
    with open(hba) as fh:
        before = fh.read()
    assert "# BEGIN autofailover" not in before, before
    # The node works on initdb's loopback lines: the test user logs in over TCP with its password.
    assert node.sql("SELECT 1")[0][0] == 1
    r = f.autoctl("set", "node", "allow-clients", "10.9.0.0/16", "--pgdata", node.pgdata, check=False)
    assert r.returncode == 1 and "--skip-pg-hba" in r.stderr, (r.stdout, r.stderr)
    r = f.autoctl("set", "node", "allow-clients", "--none", "--pgdata", node.pgdata)
    assert "yours to write" in r.stdout, r.stdout
    shown = f.autoctl("show", "uri", "--pgdata", node.pgdata).stdout
    assert "--skip-pg-hba" in shown and "sslmode=require" in shown, shown
    time.sleep(2)   # several keeper periods (250 ms), a SIGHUP reload included
    with open(hba) as fh:
        assert fh.read() == before
