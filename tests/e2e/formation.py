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
Formation(..., trust=True) builds the old insecure kind (--auth trust --no-ssl).

What it shares with the fault suite's namespace clusters (tests/faults/cluster.py) is in
tests/common/formation_base.py; here the host strategy is LocalHost (127.0.0.1, one port per server)."""

import os
import sys

import psycopg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import short_timeouts  # noqa: E402
from processes import STOP_TIMEOUT, TEST_USER, pid_alive, read_pid, stop_pid  # noqa: E402,F401
from processes import user_ids as _user_ids  # noqa: E402,F401
from formation_base import (AUTOCTL, COMMAND_TIMEOUT, PG_BINDIR, FormationBase, KeeperNode,  # noqa: E402,F401
                            LocalHost, as_user, psql_as_test_user, write_secret_file)

# Short timeouts so that scenarios take seconds (tests/common/short_timeouts.py).
MONITOR_SETTINGS = dict(short_timeouts.MONITOR_SETTINGS)
KEEPER_TIMEOUTS = dict(short_timeouts.KEEPER_TIMEOUTS)
# How long a test waits for the formation to return to full health.
HEALTHY_TIMEOUT = float(os.environ.get("AUTOFAILOVER_E2E_HEALTHY_TIMEOUT", "90"))
LOCALHOST = LocalHost()


class Node(KeeperNode):
    """A data node on 127.0.0.1 (tests/common/formation_base.py's KeeperNode on the LocalHost strategy)."""

    LOG_TAIL_LINES = 40

    def __init__(self, formation, name, port):
        super().__init__(formation, LOCALHOST, name, port)

    def _keeper_may_start(self):
        return not self.daemon_running()

    # -- SQL -----------------------------------------------------------------
    def conninfo(self, dbname="postgres"):
        return self.tcp_conninfo(dbname)

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


class Formation(FormationBase):
    """Monitor on port_base, data nodes on port_base+1, +2, ... (all on 127.0.0.1)."""

    node_class = Node
    keeper_timeouts = KEEPER_TIMEOUTS
    healthy_timeout = HEALTHY_TIMEOUT

    def __init__(self, workdir, port_base, trust=False):
        super().__init__(workdir)
        self.port_base = port_base
        self.trust = trust
        self.monitor_host = LOCALHOST
        self.monitor_stderr = ""
        # The monitor's superuser (the test user) logs in over the socket with peer.
        self.operator_uri = f"postgres:///autofailover?host={self.monitor_pgdata}&port={port_base}"
        self.env["AUTOFAILOVER_MONITOR"] = self.operator_uri
        # The test user's password, owned by the test user: for autoctl as an operator over TCP (PGPASSFILE).
        self.operator_pgpass = os.path.join(workdir, "operator.pgpass")
        write_secret_file(self.operator_pgpass, f"*:*:*:{TEST_USER}:{self.user_password}\n")
        # Options added to every `autoctl create postgres` (e.g. --backup pgbackrest ...).
        self.node_extra_args = []

    @property
    def monitor_port(self):
        return self.port_base   # test_monitor_rebuild moves the monitor by changing port_base

    def security_args(self):
        return ["--auth", "trust", "--no-ssl"] if self.trust else []

    def node_security_args(self):
        args = self.security_args()
        if self.replication_password_file:  # None: the monitor generates the formation's password
            args += ["--replication-password-file", self.replication_password_file]
        if self.monitor_password_file:
            args += ["--monitor-password-file", self.monitor_password_file]
        return args

    # -- autoctl ---------------------------------------------------------------
    def autoctl(self, *args, check=True, timeout=COMMAND_TIMEOUT, env=None):
        """Runs autoctl as the test user; returns the CompletedProcess."""
        result = self.run_autoctl(LOCALHOST, args, check=False, timeout=timeout, env=env)
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
        self.operator_uri = self._created_monitor(r)
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

    def create_node(self, name, candidate_priority=50, replication_quorum=True, start=True):
        """autoctl create postgres (blocks until the node is initialized:
        single, or a standby streaming), shortens its keeper timeouts, starts
        its keeper."""
        node = self.new_node(name)
        self.autoctl(*self.create_args(node, candidate_priority, replication_quorum))
        self._after_create(node, start)
        return node

    def create_nodes(self, specs):
        """Several standbys at once: their base backups overlap. specs: list of
        dicts with name and optional candidate_priority / replication_quorum."""
        pairs = []
        for spec in specs:
            node = self.new_node(spec["name"])
            pairs.append((node, self.create_args(node, spec.get("candidate_priority", 50),
                                                 spec.get("replication_quorum", True))))
        self._create_in_parallel(pairs)

    def create_healthy(self, names):
        """The monitor, then each node in turn, then full health: the usual small formation of a module."""
        self.create_monitor()
        for name in names:
            self.create_node(name)
        self.wait_healthy()
        return self

    # -- monitor state ---------------------------------------------------------
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

    def writable_nodes(self):
        return [n for n in self.nodes.values() if n.is_writable()]
