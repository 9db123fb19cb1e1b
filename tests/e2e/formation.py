"""A real formation for end-to-end tests: a monitor and data nodes on
127.0.0.1, each a PostgreSQL 15 server plus its keeper, all run as the
unprivileged OS user (PostgreSQL refuses root). Every process is ended by
its PID in teardown(), also when a test failed.

The formation uses autoctl's secure defaults (scram-sha-256, TLS with
self-signed certificates): the keepers get the monitor's password file and a
replication password file (0600, owned by the test user). The test process
(root) reaches the monitor and the nodes over TCP as the test user with a
password from its own pgpass file (`passfile=` in every conninfo it builds);
that password is set over the Unix socket by the test user itself (peer).
Formation(..., trust=True) builds the old insecure kind (--auth trust --no-ssl)."""

import json
import os
import re
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse

import psycopg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import short_timeouts  # noqa: E402
from processes import STOP_TIMEOUT, TEST_USER, pid_alive, read_pid, stop_pid  # noqa: E402,F401
from processes import user_ids as _user_ids  # noqa: E402

PG_BINDIR = os.environ.get("AUTOFAILOVER_PG_BINDIR", "/usr/lib/postgresql/15/bin")
AUTOCTL = os.environ.get("AUTOCTL") or shutil.which("autoctl") or "/usr/local/bin/autoctl"
# Short timeouts so that scenarios take seconds (tests/common/short_timeouts.py).
MONITOR_SETTINGS = dict(short_timeouts.MONITOR_SETTINGS)
KEEPER_TIMEOUTS = dict(short_timeouts.KEEPER_TIMEOUTS)
# How long a test waits for the formation to return to full health.
HEALTHY_TIMEOUT = float(os.environ.get("AUTOFAILOVER_E2E_HEALTHY_TIMEOUT", "90"))
# One CLI call (create postgres includes a base backup).
COMMAND_TIMEOUT = 180.0


def write_secret_file(path, text, owner=True):
    """A 0600 file; owned by the test user (owner=True) or by the test process."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if owner and os.geteuid() == 0:
        os.chown(path, *_user_ids())


def psql_as_test_user(host, port, dbname, sql, stdin=False):
    """SQL through the Unix socket as the test user (peer authentication). stdin=True sends
    it on standard input, so that a password in it is on no command line."""
    argv = [os.path.join(PG_BINDIR, "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-At", "-h", host, "-p", str(port),
            "-d", dbname]
    r = subprocess.run(as_user(argv + ([] if stdin else ["-c", sql])), input=sql if stdin else None,
                       capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def as_user(argv):
    """argv run as the test user. setpriv execs in place (runuser forks and
    waits), so a Popen's pid is the program's own pid and can be signalled."""
    if os.geteuid() != 0:
        return list(argv)
    uid, gid = _user_ids()
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--"] + list(argv)


class Node:
    def __init__(self, formation, name, port):
        self.formation = formation
        self.name = name
        self.port = port
        self.pgdata = os.path.join(formation.workdir, name)
        self.state_dir = self.pgdata + ".keeper"
        self.keeper = None
        self._keeper_log = None

    # -- processes -----------------------------------------------------------
    def start_keeper(self):
        assert self.keeper is None or self.keeper.poll() is not None, f"keeper of {self.name} already runs"
        if self._keeper_log is None:
            self._keeper_log = open(os.path.join(self.formation.workdir, f"{self.name}.keeper.out"), "ab")
        self.keeper = subprocess.Popen(
            as_user([AUTOCTL, "run", "--pgdata", self.pgdata]),
            stdout=self._keeper_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=self.formation.workdir, env=self.formation.env, start_new_session=True)

    def keeper_pid(self):
        if self.keeper is not None and self.keeper.poll() is None:
            return self.keeper.pid
        return read_pid(os.path.join(self.state_dir, "keeper.pid"))

    def postmaster_pid(self):
        return read_pid(os.path.join(self.pgdata, "postmaster.pid"))

    def socket_dir(self):
        try:
            with open(os.path.join(self.state_dir, "keeper.json")) as f:
                return json.load(f).get("socket_dir") or "/tmp"
        except (OSError, ValueError):
            return "/tmp"

    def kill_keeper(self, sig=signal.SIGKILL):
        pid = self.keeper_pid()
        assert pid is not None and pid_alive(pid), f"keeper of {self.name} is not running"
        os.kill(pid, sig)
        if self.keeper is not None:
            self.keeper.wait(timeout=STOP_TIMEOUT)

    def kill_postgres(self, sig=signal.SIGKILL):
        pid = self.postmaster_pid()
        assert pid is not None and pid_alive(pid), f"postgres of {self.name} is not running"
        os.kill(pid, sig)
        return pid

    def stop_postgres(self):
        """Clean fast shutdown, as an operator would do it."""
        subprocess.run(as_user([os.path.join(PG_BINDIR, "pg_ctl"), "-D", self.pgdata, "-m", "fast", "-w",
                                "stop"]), check=True, capture_output=True, timeout=COMMAND_TIMEOUT,
                       cwd=self.formation.workdir)

    def teardown(self):
        stop_pid(self.keeper_pid(), signal.SIGTERM)
        if self.keeper is not None:
            try:
                self.keeper.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        stop_pid(self.postmaster_pid(), signal.SIGINT)  # the postmaster's fast shutdown
        if self._keeper_log is not None:
            self._keeper_log.close()
            self._keeper_log = None

    # -- SQL -----------------------------------------------------------------
    def conninfo(self, dbname="postgres"):
        return (f"host=127.0.0.1 port={self.port} user={TEST_USER} dbname={dbname} connect_timeout=2"
                f"{self.formation.passfile_option()}")

    def is_writable(self):
        """True when this server accepts writes right now (a client with
        target_session_attrs=read-write would land here)."""
        try:
            with psycopg.connect(self.conninfo(), autocommit=True) as conn:
                row = conn.execute("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')").fetchone()
                return (not row[0]) and row[1] == "off"
        except psycopg.Error:
            return False

    def sql(self, query, params=None):
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else None

    def log_tail(self, lines=40):
        out = []
        for path in (os.path.join(self.formation.workdir, f"{self.name}.keeper.out"),
                     os.path.join(self.state_dir, "keeper.log"),
                     os.path.join(self.formation.workdir, f"{self.name}.postgres.log")):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    out.append(f"--- {path}\n" + "".join(f.readlines()[-lines:]))
        return "\n".join(out)


class Formation:
    """Monitor on port_base, data nodes on port_base+1, +2, ..."""

    def __init__(self, workdir, port_base, trust=False):
        self.workdir = workdir
        self.port_base = port_base
        self.trust = trust
        self.nodes = {}
        self.monitor_pgdata = os.path.join(workdir, "monitor")
        self.keeper_uri = None
        self.monitor_password_file = None
        self.monitor_stderr = ""
        # The monitor's superuser (the test user) logs in over the socket with peer.
        self.operator_uri = f"postgres:///autofailover?host={self.monitor_pgdata}&port={port_base}"
        self.env = dict(os.environ, AUTOFAILOVER_MONITOR=self.operator_uri, HOME=pwd.getpwnam(TEST_USER).pw_dir,
                        LC_ALL="C.UTF-8")
        self.env.pop("PGPASSFILE", None)
        os.makedirs(workdir, exist_ok=True)
        uid, gid = _user_ids()
        os.chown(workdir, uid, gid)
        os.chmod(workdir, 0o755)
        # The formation's replication password, for the keepers (test user's file).
        self.replication_password = "repl:" + secrets.token_hex(12)  # ':' exercises pgpass escaping
        self.replication_password_file = os.path.join(workdir, "replication.password")
        write_secret_file(self.replication_password_file, self.replication_password + "\n")
        # The test user's role password on the monitor and the nodes, for the test process only.
        self.user_password = secrets.token_hex(12)
        self.test_pgpass = os.path.join(workdir, "test-process.pgpass")
        write_secret_file(self.test_pgpass, f"*:*:*:{TEST_USER}:{self.user_password}\n", owner=False)
        # The same, owned by the test user: for autoctl as an operator over TCP (PGPASSFILE).
        self.operator_pgpass = os.path.join(workdir, "operator.pgpass")
        write_secret_file(self.operator_pgpass, f"*:*:*:{TEST_USER}:{self.user_password}\n")
        # Options added to every `autoctl create postgres` (e.g. --backup pgbackrest ...).
        self.node_extra_args = []

    def passfile_option(self):
        return f" passfile={self.test_pgpass}"

    def security_args(self):
        return ["--auth", "trust", "--no-ssl"] if self.trust else []

    def node_security_args(self):
        args = self.security_args()
        if self.replication_password_file:  # None: the monitor generates the formation's password
            args += ["--replication-password-file", self.replication_password_file]
        if self.monitor_password_file:
            args += ["--monitor-password-file", self.monitor_password_file]
        return args

    def set_test_user_password(self, host, port, dbname):
        """The test user sets its own password over the socket (peer), from stdin."""
        psql_as_test_user(host, port, dbname, f"ALTER ROLE {TEST_USER} PASSWORD '{self.user_password}'",
                          stdin=True)

    # -- autoctl ---------------------------------------------------------------
    def autoctl(self, *args, check=True, timeout=COMMAND_TIMEOUT, env=None):
        """Runs autoctl as the test user; returns the CompletedProcess."""
        argv = ["runuser", "-u", TEST_USER, "--", AUTOCTL] + [str(a) for a in args] if os.geteuid() == 0 \
            else [AUTOCTL] + [str(a) for a in args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.workdir,
                                env=env if env is not None else self.env)
        if check and result.returncode != 0:
            raise AssertionError(f"autoctl {' '.join(map(str, args))} exited {result.returncode}\n"
                                 f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result

    def create_monitor(self, settings=None, extra_args=()):
        args = ["create", "monitor", "--pgdata", self.monitor_pgdata, "--pgport", self.port_base,
                "--hostname", "127.0.0.1"] + self.security_args() + list(extra_args)
        for name, value in {**MONITOR_SETTINGS, **(settings or {})}.items():
            args += ["--setting", f"{name}={value}"]
        r = self.autoctl(*args)
        self.monitor_stderr = r.stderr
        self.keeper_uri = r.stdout.strip().splitlines()[-1]
        assert self.keeper_uri.startswith("postgres://autofailover_keeper@"), self.keeper_uri
        operator = re.search(r"export AUTOFAILOVER_MONITOR='([^']+)'", r.stderr)
        assert operator, r.stderr
        self.operator_uri = self.env["AUTOFAILOVER_MONITOR"] = operator.group(1)
        password_file = re.search(r"--monitor-password-file (\S+)", r.stderr)
        self.monitor_password_file = password_file.group(1) if password_file else None
        assert self.trust or self.monitor_password_file, r.stderr
        self.set_test_user_password(self.monitor_pgdata, self.port_base, "autofailover")

    def create_args(self, node, candidate_priority=50, replication_quorum=True):
        return ["create", "postgres", "--pgdata", node.pgdata, "--pgport", node.port, "--hostname", "127.0.0.1",
                "--name", node.name, "--monitor", self.keeper_uri, "--candidate-priority", candidate_priority,
                "--replication-quorum", "true" if replication_quorum else "false"] + self.node_security_args() \
            + list(self.node_extra_args)

    def new_node(self, name):
        """A Node on the next port, not created yet."""
        node = Node(self, name, self.port_base + 1 + len(self.nodes))
        self.nodes[name] = node
        return node

    def _after_first_node(self, node):
        """The first node's superuser role (the test user) gets the test password; standbys copy it."""
        if len(self.nodes) == 1:
            self.set_test_user_password(node.socket_dir(), node.port, "postgres")

    def create_node(self, name, candidate_priority=50, replication_quorum=True, start=True):
        """autoctl create postgres (blocks until the node is initialized:
        single, or a standby streaming), shortens its keeper timeouts, starts
        its keeper."""
        node = self.new_node(name)
        self.autoctl(*self.create_args(node, candidate_priority, replication_quorum))
        self._after_first_node(node)
        self.shorten_keeper_timeouts(node)
        if start:
            node.start_keeper()
        return node

    def create_nodes(self, specs):
        """Several standbys at once: their base backups overlap. specs: list of
        dicts with name and optional candidate_priority / replication_quorum."""
        procs = []
        for spec in specs:
            node = self.new_node(spec["name"])
            args = [AUTOCTL] + [str(a) for a in self.create_args(node, spec.get("candidate_priority", 50),
                                                                 spec.get("replication_quorum", True))]
            procs.append((node, subprocess.Popen(as_user(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                 text=True, cwd=self.workdir, env=self.env)))
        for node, proc in procs:
            out, _ = proc.communicate(timeout=COMMAND_TIMEOUT)
            assert proc.returncode == 0, f"create postgres {node.name} exited {proc.returncode}:\n{out}"
            self._after_first_node(node)
            self.shorten_keeper_timeouts(node)
            node.start_keeper()

    def shorten_keeper_timeouts(self, node):
        path = os.path.join(node.state_dir, "keeper.json")
        with open(path) as f:
            config = json.load(f)
        config.setdefault("timeouts", {}).update(KEEPER_TIMEOUTS)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(config, f, indent=2)
        uid, gid = _user_ids()
        os.chown(tmp, uid, gid)
        os.replace(tmp, path)

    def set_monitor_setting(self, name, value):
        """Changes an autofailover.* GUC of the running monitor (they are all
        reloadable); value None resets it to what autofailover.conf says."""
        with psycopg.connect(self.monitor_conninfo(), autocommit=True) as conn:
            if value is None:
                conn.execute(f"ALTER SYSTEM RESET autofailover.{name}")
            else:
                conn.execute(f"ALTER SYSTEM SET autofailover.{name} = '{int(value)}'")
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.2)  # the reload is asynchronous

    # -- monitor state ---------------------------------------------------------
    def monitor_conninfo(self):
        return (f"host=127.0.0.1 port={self.port_base} user={TEST_USER} dbname=autofailover connect_timeout=2"
                f"{self.passfile_option()}")

    def state(self):
        with psycopg.connect(self.monitor_conninfo(), autocommit=True) as conn:
            cur = conn.execute(
                "SELECT node_name, node_id, reported_state::text, goal_state::text, keeper_reporting, health, "
                "candidate_priority, replication_quorum, sync_state, lsn::text, timeline "
                "FROM autofailover.current_state('default') ORDER BY node_id")
            cols = [d.name for d in cur.description]
            return {row[0]: dict(zip(cols, row)) for row in cur.fetchall()}

    def is_healthy(self, state=None):
        """One primary, every other node secondary (or in maintenance), every
        node at its goal, every keeper reporting: what `autoctl ... --wait` waits for."""
        state = state if state is not None else self.state()
        if not state:
            return False
        primaries = [n for n, s in state.items() if s["goal_state"] == "primary"]
        for s in state.values():
            if s["reported_state"] != s["goal_state"] or not s["keeper_reporting"]:
                return False
            if s["goal_state"] not in ("primary", "secondary", "maintenance"):
                return False
        return len(primaries) == 1

    def wait_until(self, predicate, what, timeout=HEALTHY_TIMEOUT, interval=0.1):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.state()
                if predicate(last):
                    return last
            except psycopg.Error as e:
                last = f"monitor error: {e}"
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last state:\n{self.describe(last)}\n"
                             + "\n".join(n.log_tail(15) for n in self.nodes.values()))

    def wait_healthy(self, timeout=HEALTHY_TIMEOUT):
        return self.wait_until(self.is_healthy, "one primary and all secondaries", timeout)

    def primary(self):
        state = self.state()
        names = [n for n, s in state.items() if s["goal_state"] == "primary" and s["reported_state"] == "primary"]
        assert len(names) == 1, f"expected one primary:\n{self.describe(state)}"
        return self.nodes[names[0]]

    def standbys(self):
        state = self.state()
        return [self.nodes[n] for n, s in state.items() if s["goal_state"] == "secondary"]

    def writable_nodes(self):
        return [n for n in self.nodes.values() if n.is_writable()]

    def client_uri(self):
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes.values())
        return (f"postgresql://{TEST_USER}@{hosts}/postgres?target_session_attrs=read-write"
                f"&passfile={urllib.parse.quote(self.test_pgpass)}")

    @staticmethod
    def describe(state):
        if not isinstance(state, dict):
            return str(state)
        return "\n".join(f"  {n}: reported={s['reported_state']} goal={s['goal_state']} "
                         f"keeper_reporting={s['keeper_reporting']} health={s['health']} lsn={s['lsn']}"
                         for n, s in state.items())

    def teardown(self):
        for node in self.nodes.values():
            node.teardown()
        stop_pid(read_pid(os.path.join(self.monitor_pgdata, "postmaster.pid")), signal.SIGINT)
