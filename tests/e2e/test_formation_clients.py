"""`autoctl set formation allow-clients` (docs/clients.md, "One list for the whole formation"): set once on the
monitor, every keeper of the formation writes the same client lines into its pg_hba.conf block within a poll
period, merged with the node's own keeper.json list, kept across a switchover, removed by --none.

The application is on this host but seen from other loopback addresses: a small relay accepts on 127.0.0.1 and
connects to the node FROM 127.0.0.7 (admitted) or 127.0.0.8 (not), so Postgres applies pg_hba.conf to that
source address (libpq cannot choose its source address). Ports 7050-7069."""

import os
import socket
import threading
import time

import psycopg
import pytest

from formation import TEST_USER

ADMITTED = "127.0.0.7"
OTHER = "127.0.0.8"
APPLY_TIMEOUT = 5.0   # "within a few seconds": the keepers poll every 250 ms here


class Relay:
    """Accepts on 127.0.0.1:listen_port and forwards each connection to 127.0.0.1:target_port from source_ip."""

    def __init__(self, listen_port, source_ip, target_port):
        self.source_ip, self.target_port = source_ip, target_port
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", listen_port))
        self.server.listen(8)
        self.port = listen_port
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.bind((self.source_ip, 0))
            try:
                upstream.connect(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                upstream.close()
                continue
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.server.close()
        for s in self.sockets:
            s.close()


@pytest.fixture(scope="module")
def setup(formation_factory):
    f = formation_factory()
    f.create_monitor()
    f.create_node("fc1")
    f.create_node("fc2")
    f.wait_healthy()
    relays = {}
    port = f.port_base + 10
    for node in f.nodes.values():
        for ip in (ADMITTED, OTHER):
            relays[(node.name, ip)] = Relay(port, ip, node.port)
            port += 1
    yield f, relays
    for r in relays.values():
        r.close()


def connect_from(f, relays, node, ip):
    """SELECT through the relay: the node sees the connection coming from `ip`. Returns 'ok' or the error."""
    conninfo = (f"host=127.0.0.1 port={relays[(node.name, ip)].port} user={TEST_USER} dbname=postgres "
                f"sslmode=require connect_timeout=3 passfile={f.test_pgpass}")
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            addr = conn.execute("SELECT host(inet_client_addr()), pg_is_in_recovery()").fetchone()
            assert addr[0] == ip, addr
            if not addr[1]:
                conn.execute("CREATE TABLE IF NOT EXISTS fc_writes (at timestamptz)")
                conn.execute("INSERT INTO fc_writes VALUES (now())")
            return "ok"
    except psycopg.OperationalError as e:
        return str(e)


def hba_client_lines(node):
    with open(os.path.join(node.pgdata, "pg_hba.conf")) as fh:
        return [line.strip() for line in fh if "127.0.0.7" in line or "127.0.0.8" in line]


def file_rules(node):
    """What Postgres loaded (pg_hba_file_rules reads the file; the keeper reloads after writing it)."""
    return node.sql("SELECT type, database, user_name, address, auth_method, error FROM pg_hba_file_rules "
                    "WHERE address LIKE '127.0.0.%' AND address <> '127.0.0.1' ORDER BY line_number")


def wait_for(predicate, what, timeout=APPLY_TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)


def admitted_line():
    return f"hostssl all {TEST_USER} {ADMITTED}/32 scram-sha-256"


def test_formation_list_reaches_every_node(setup):
    f, relays = setup
    nodes = list(f.nodes.values())
    for node in nodes:
        assert "no pg_hba.conf entry" in connect_from(f, relays, node, ADMITTED)
    # Refused by autoctl (and by the monitor: regress formation_clients) before anything is stored.
    for bad in ("all", "samenet", "10.1.2.3/8", "app.example.com"):
        r = f.autoctl("set", "formation", "allow-clients", bad, check=False)
        assert r.returncode == 1, (bad, r.stdout, r.stderr)
    r = f.autoctl("set", "formation", "allow-clients", "10.0.0.0/8", "--client-role", "autofailover_replicator",
                  check=False)
    assert r.returncode == 1 and "--client-role" in r.stderr, r.stderr
    started = time.monotonic()
    r = f.autoctl("set", "formation", "allow-clients", f"{ADMITTED},10.99.0.0/16", "--client-role", TEST_USER)
    assert "version 1" in r.stdout, r.stdout
    for node in nodes:
        wait_for(lambda: admitted_line() in hba_client_lines(node), f"{node.name}'s pg_hba.conf has the line")
    print(f"both nodes' pg_hba.conf had the formation line {time.monotonic() - started:.2f}s after the command")
    for node in nodes:
        lines = hba_client_lines(node)
        assert lines == [f"host all autofailover_replicator,autofailover_monitor {ADMITTED}/32 reject",
                         admitted_line()], (node.name, lines)
        # Loaded by Postgres (the keeper reloads), without errors.
        wait_for(lambda: ("hostssl", ["all"], [TEST_USER], ADMITTED, "scram-sha-256", None) in file_rules(node),
                 f"{node.name} loaded the rule")
        # A client from the admitted address gets in (primary and standby), one from another is refused.
        assert wait_for(lambda: connect_from(f, relays, node, ADMITTED) == "ok", f"{node.name} admits {ADMITTED}")
        assert "no pg_hba.conf entry" in connect_from(f, relays, node, OTHER)
    # The same lines on both nodes: a failover changes nothing for clients.
    assert hba_client_lines(nodes[0]) == hba_client_lines(nodes[1])
    shown = f.autoctl("show", "uri", "--pgdata", nodes[0].pgdata).stdout
    assert "Formation-wide (version 1)" in shown and ADMITTED in shown, shown


def test_node_list_adds_to_the_formation_list(setup):
    f, relays = setup
    fc1, fc2 = f.nodes["fc1"], f.nodes["fc2"]
    # `set node allow-clients` waits until the merged block is in place (it must expect the formation's lines).
    r = f.autoctl("set", "node", "allow-clients", OTHER, "--client-role", TEST_USER, "--pgdata", fc1.pgdata,
                  "--wait", "10")
    assert "now admits" in r.stdout, r.stdout
    assert admitted_line() in hba_client_lines(fc1)
    assert connect_from(f, relays, fc1, OTHER) == "ok"
    assert connect_from(f, relays, fc1, ADMITTED) == "ok"
    assert "no pg_hba.conf entry" in connect_from(f, relays, fc2, OTHER)
    r = f.autoctl("set", "node", "allow-clients", "--none", "--pgdata", fc1.pgdata, "--wait", "10")
    assert "no pg_hba.conf entry" in wait_for(
        lambda: (lambda e: e if e != "ok" else None)(connect_from(f, relays, fc1, OTHER)), "fc1 refuses 127.0.0.8")
    assert connect_from(f, relays, fc1, ADMITTED) == "ok"


def test_formation_lines_survive_a_switchover(setup):
    f, relays = setup
    old = f.primary()
    f.autoctl("perform", "switchover", "--wait", "90")
    f.wait_healthy()
    new = f.primary()
    assert new is not old
    for node in f.nodes.values():
        assert admitted_line() in hba_client_lines(node), node.name
        assert wait_for(lambda: connect_from(f, relays, node, ADMITTED) == "ok", f"{node.name} admits {ADMITTED}")
        assert "no pg_hba.conf entry" in connect_from(f, relays, node, OTHER)
    # The new primary takes writes from the admitted address.
    assert new.sql("SELECT count(*) FROM fc_writes")[0][0] >= 1


def test_formation_list_removed(setup):
    f, relays = setup
    r = f.autoctl("set", "formation", "allow-clients", "--none")
    assert "version 2" in r.stdout, r.stdout
    for node in f.nodes.values():
        wait_for(lambda: hba_client_lines(node) == [], f"{node.name}'s formation lines removed")
        assert "no pg_hba.conf entry" in wait_for(
            lambda: (lambda e: e if e != "ok" else None)(connect_from(f, relays, node, ADMITTED)),
            f"{node.name} refuses {ADMITTED} again")
    events = f.autoctl("show", "events").stdout
    assert "formation client networks removed" in events, events
