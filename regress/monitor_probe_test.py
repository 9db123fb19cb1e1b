#!/usr/bin/python3
"""The monitor's health probe against hostile or broken servers (docs/security.md, "Health probe").

1. Classification comes from the protocol, never from message text: nodes whose host NAME contains
   "authentication", "FATAL", "pg_hba.conf" or "fe_sendauth" (words the old text matching looked for,
   and libpq puts the host name in its messages) and whose port refuses or closes the connection are bad;
   servers that answer in the protocol (an ErrorResponse 28000, a password request, a real server whose
   pg_hba rejects the probe, under TLS then in clear text) are good; "cannot connect now" (57P03) is bad.
2. A node that accepts TCP and never answers costs only its own probe: while its one probe attempt is
   open, the other nodes' health keeps being stored every round.
3. A host name whose DNS lookup hangs does not stall the worker either, and the node is bad after its own
   probe timeout.

The monitor runs in a private mount namespace (unshare -m) whose /etc/hosts maps the test names to
127.0.0.1 and whose /etc/resolv.conf points at a DNS server of this test that never answers. Needs root
(exit 77: skipped otherwise). Real PostgreSQL 15 as the unprivileged test user, INSTALLED extension.
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

USER = os.environ.get("AUTOFAILOVER_TEST_USER", "autofailover")
BINDIR = "/usr/lib/postgresql/15/bin"
SKIPPED = 77
PERIOD_MS = 200
TIMEOUT_MS = 1500
SSL_REQUEST_CODE = 80877103


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_user(*args):
    subprocess.run(["runuser", "-u", USER, "--"] + list(args), check=True, stdout=subprocess.DEVNULL)


def wait_for(what, predicate, timeout=20.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def read_exactly(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


def read_startup(conn):
    """Reads libpq's SSLRequest (answered 'N': no TLS here) and the startup packet."""
    length, code = struct.unpack("!II", read_exactly(conn, 8))
    if length == 8 and code == SSL_REQUEST_CODE:
        conn.sendall(b"N")
        length = struct.unpack("!I", read_exactly(conn, 4))[0]
        read_exactly(conn, length - 4)
    else:
        read_exactly(conn, length - 8)


def error_response(sqlstate, text):
    body = b"SFATAL\0VFATAL\0C" + sqlstate.encode() + b"\0M" + text.encode() + b"\0\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


class Listener:
    """A TCP server on 127.0.0.1 that plays one role; records when probes connect and leave."""

    def __init__(self, role):
        self.role = role
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.sessions = []  # [accepted_at, closed_by_peer_at or None]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            session = [time.time(), None]
            self.sessions.append(session)
            threading.Thread(target=self.handle, args=(conn, session), daemon=True).start()

    def handle(self, conn, session):
        try:
            if self.role == "close":
                conn.close()
                return
            if self.role == "hang":
                while conn.recv(4096):  # never answers; returns when the probe gives up
                    pass
            else:
                read_startup(conn)
                if self.role == "password":
                    conn.sendall(b"R" + struct.pack("!II", 12, 5) + b"salt")  # AuthenticationMD5Password
                elif self.role.startswith("error "):
                    conn.sendall(error_response(self.role.split()[1], "no thanks"))
                while conn.recv(4096):
                    pass
            session[1] = time.time()
        except OSError:
            session[1] = time.time()
        finally:
            conn.close()


class SilentDns:
    """A DNS server that reads queries and never answers."""

    def __init__(self, address):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        self.queries = []  # (time, packet)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                packet, _ = self.sock.recvfrom(512)
            except OSError:
                return
            self.queries.append((time.time(), packet))

    def asked_for(self, name):
        # A query names each label with a length byte: b"\x07slowdns\x04test".
        wire = b"".join(bytes([len(label)]) + label.encode() for label in name.split("."))
        return [t for t, packet in self.queries if wire in packet]


def main():
    if os.geteuid() != 0:
        print("SKIPPED: needs root for a private mount namespace (unshare -m) with its own /etc/hosts")
        return SKIPPED
    port = free_port()
    work = tempfile.mkdtemp(prefix="autofailover-probe.")
    shutil.chown(work, USER)
    os.chmod(work, 0o755)
    pgdata = os.path.join(work, "data")
    log = os.path.join(work, "postgres.log")
    dns_address = f"127.53.{os.getpid() % 250 + 1}.1"
    dns = SilentDns(dns_address)
    listeners = {role: Listener(role) for role in
                 ("close", "hang", "password", "error 28000", "error 57P03")}
    closed_port = free_port()  # nothing listens there: refused
    # "pg_hba.conf" and "fe_sendauth" themselves hold '_', which register_node's host check refuses
    # (review #4); their hyphenated forms still go through the probe.
    names = ["authentication-db.test", "FATAL-db.test", "pg-hba.conf.test", "fe-sendauth.test"]
    hosts = os.path.join(work, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n127.0.0.1 " + " ".join(names) + "\n")
    resolv = os.path.join(work, "resolv.conf")
    with open(resolv, "w") as f:
        f.write(f"nameserver {dns_address}\noptions timeout:30 attempts:1\n")
    try:
        as_user(f"{BINDIR}/initdb", "-D", pgdata, "-A", "trust", "-U", USER)
        subprocess.run(["openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=monitor",
                        "-keyout", f"{pgdata}/server.key", "-out", f"{pgdata}/server.crt"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(f"{pgdata}/server.key", 0o600)
        shutil.chown(f"{pgdata}/server.key", USER)
        shutil.chown(f"{pgdata}/server.crt", USER)
        with open(os.path.join(pgdata, "postgresql.conf"), "a") as conf:
            conf.write(f"""
port = {port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{work}'
ssl = on
shared_preload_libraries = 'autofailover'
autofailover.health_check_period = {PERIOD_MS}ms
autofailover.health_check_timeout = {TIMEOUT_MS}ms
autofailover.health_check_max_retries = 0
autofailover.node_considered_unhealthy_timeout = 1h
""")
        # The monitor's pg_hba rejects its own probes: an ErrorResponse before authentication,
        # first under TLS, then (libpq's sslmode=prefer retry) in clear text.
        hba = os.path.join(pgdata, "pg_hba.conf")
        with open(hba) as f:
            rules = f.read()
        with open(hba, "w") as f:
            f.write("host all autofailover_monitor 127.0.0.1/32 reject\n" + rules)
        subprocess.run(["unshare", "-m", "sh", "-c",
                        f"mount --bind {hosts} /etc/hosts && mount --bind {resolv} /etc/resolv.conf && "
                        f"exec runuser -u {USER} -- {BINDIR}/pg_ctl -D {pgdata} -l {log} -w start"],
                       check=True, stdout=subprocess.DEVNULL)
        with psycopg.connect(host=work, port=port, user=USER, dbname="postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE autofailover")
        with psycopg.connect(host=work, port=port, user=USER, dbname="autofailover", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION autofailover")
            conn.execute("SELECT autofailover.create_formation('probe')")
            group = iter(range(1000))

            def register(name, host, node_port):
                conn.execute("SELECT * FROM autofailover.register_node('probe', %s, %s, %s, %s)",
                             (host, node_port, name, next(group)))

            def health(name):
                return conn.execute("SELECT h.health, h.last_health_check FROM autofailover.node_health h "
                                    "JOIN autofailover.nodes n USING (node_id) WHERE n.node_name = %s",
                                    (name,)).fetchone()

            expected = {"monitor_rejects_probe": "good", "error_28000": "good", "password_request": "good",
                        "error_57P03": "bad", "refused": "bad", "closes": "bad"}
            register("monitor_rejects_probe", "127.0.0.1", port)
            register("error_28000", "127.0.0.1", listeners["error 28000"].port)
            register("password_request", "127.0.0.1", listeners["password"].port)
            register("error_57P03", "127.0.0.1", listeners["error 57P03"].port)
            register("refused", "127.0.0.1", closed_port)
            register("closes", "127.0.0.1", listeners["close"].port)
            for name in names:
                register(f"{name}_refused", name, closed_port)
                register(f"{name}_closes", name, listeners["close"].port)
                expected[f"{name}_refused"] = expected[f"{name}_closes"] = "bad"
            # Two stored rounds after every node's first result: the verdicts are settled.
            wait_for("every node's first probe result", lambda: all(health(n)[1] for n in expected))
            started = max(health(n)[1] for n in expected)
            wait_for("a later round", lambda: all(health(n)[1] > started for n in expected))
            seen = {n: health(n)[0] for n in expected}
            wrong = {n: (seen[n], want) for n, want in expected.items() if seen[n] != want}
            assert not wrong, f"misclassified (seen, expected): {wrong}"
            print(f"classification: all {len(expected)} nodes as expected")

            # 2. A node that accepts TCP and never answers.
            def sample(names, since, until):
                """Distinct (health, last_health_check) rows of each node stored in (since, until), polled."""
                rows = {name: set() for name in names}
                while time.time() < until:
                    for name in names:
                        state, checked = health(name)
                        if checked is not None and since < checked.timestamp() < until:
                            rows[name].add((checked.timestamp(), state))
                    time.sleep(0.02)
                return {name: sorted(values) for name, values in rows.items()}

            hang = listeners["hang"]
            register("blackhole", "127.0.0.1", hang.port)
            wait_for("the probe of the blackhole node", lambda: hang.sessions, timeout=10)
            accepted = hang.sessions[0][0]
            stored = set()
            while hang.sessions[0][1] is None and time.time() < accepted + 10:
                stored.update(sample(["monitor_rejects_probe"], accepted, min(time.time() + 0.1, accepted + 10))
                              ["monitor_rejects_probe"])
            closed = hang.sessions[0][1]
            assert closed is not None, "the probe never gave up on the blackhole node"
            # The round that gives up on the blackhole stores right after closing its socket, a moment before
            # this listener's thread notices: that store does not count.
            inside = sorted(t for t, _ in stored if accepted < t < closed - 0.1)
            gaps = [b - a for a, b in zip([accepted] + inside, inside + [closed])]
            assert len(inside) >= 2, (f"while the blackhole probe was open ({closed - accepted:.2f} s) the other "
                                      f"node's health was stored {len(inside)} times")
            wait_for("blackhole stored as bad", lambda: health("blackhole")[0] == "bad", timeout=10)
            print(f"blackhole: probe open {closed - accepted:.2f} s (timeout {TIMEOUT_MS} ms); meanwhile the "
                  f"other node was stored {len(inside)} times, largest gap {max(gaps):.3f} s (period {PERIOD_MS} ms)")

            # 3. A name whose DNS lookup never returns (the resolver waits 30 s).
            register("slow_dns", "slowdns.test", 5432)
            asked = wait_for("the DNS query for slowdns.test", lambda: dns.asked_for("slowdns.test"), timeout=10)[0]
            rows = sample(["monitor_rejects_probe", "slow_dns"], asked, asked + 3 * TIMEOUT_MS / 1000)
            inside = rows["monitor_rejects_probe"]
            assert len(inside) >= 2, f"during a hung DNS lookup the other node's health was stored {len(inside)} times"
            bad = [t for t, state in rows["slow_dns"] if state == "bad"]
            assert bad, f"slow_dns was not stored as bad within {3 * TIMEOUT_MS} ms of its DNS query"
            print(f"slow DNS: other node stored {len(inside)} times in {3 * TIMEOUT_MS / 1000:.1f} s after the query; "
                  f"slow_dns bad {bad[0] - asked:.2f} s after it; {len(dns.queries)} DNS packets while it was "
                  f"probed {len(rows['slow_dns'])} times (one lookup shared by the attempts)")

        # (Before CREATE DATABASE autofailover the worker exits with code 1 and is restarted: by design.)
        with open(log) as f:
            lines = f.read().split("\n")
        started = next(i for i, line in enumerate(lines) if "health check: started in database" in line)
        crashes = [line for line in lines[started:] if "terminated by signal" in line or "exited with exit code" in line]
        assert not crashes, f"a server process died: {crashes}"
        return 0
    except BaseException:
        if os.path.exists(log):
            with open(log) as f:
                print("".join([line for line in f if "pg_hba.conf rejects" not in line][-40:]), file=sys.stderr)
        raise
    finally:
        if os.path.exists(os.path.join(pgdata, "postmaster.pid")):
            as_user(f"{BINDIR}/pg_ctl", "-D", pgdata, "-m", "immediate", "-w", "stop")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
