"""The test-formation base shared by tests/e2e (formation.py: every server on 127.0.0.1, told apart by its
port) and tests/faults (cluster.py, ha_cluster.py: one network namespace per host). What both harnesses do
the same way lives here: the work directory and the secret files (replication password, the test process's
pgpass), autoctl run as the unprivileged test user, the first node's password and the shortened keeper
timeouts, reading the monitor's state and waiting for one, and stopping every process by its PID.

Where they differ is a host strategy, the object that runs a server's commands:
    LocalHost (here)                 everything on this machine's loopback, as the test user
    netns.NamespaceHost (faults)     inside the host's network namespace, as the test user
Both have `ip`, `name`, `popen(argv, user=True, **kw)` and `run(argv, user=True, check=True, timeout, **kw)`;
popen's pid is the program's own pid (setpriv and ip netns exec exec in place), so it can be signalled."""

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import time
import urllib.parse

import psycopg

import checker
from processes import STOP_TIMEOUT, TEST_USER, pid_alive, read_pid, stop_pid, user_ids

PG_BINDIR = os.environ.get("AUTOFAILOVER_PG_BINDIR", "/usr/lib/postgresql/15/bin")
AUTOCTL = os.environ.get("AUTOCTL") or shutil.which("autoctl") or "/usr/local/bin/autoctl"
# One CLI call (create postgres includes a base backup).
COMMAND_TIMEOUT = 180.0


def write_secret_file(path, text, owner=True):
    """A 0600 file; owned by the test user (owner=True) or by the test process."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if owner and os.geteuid() == 0:
        os.chown(path, *user_ids())


def as_user(argv):
    """argv run as the test user. setpriv execs in place (runuser forks and
    waits), so a Popen's pid is the program's own pid and can be signalled."""
    if os.geteuid() != 0:
        return list(argv)
    uid, gid = user_ids()
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--"] + list(argv)


def psql_as_test_user(host, port, dbname, sql, stdin=False, strip=True):
    """SQL through the Unix socket as the test user (peer authentication; sockets are not network-namespaced).
    stdin=True sends it on standard input, so that a password in it is on no command line."""
    argv = [os.path.join(PG_BINDIR, "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-At", "-h", host, "-p", str(port),
            "-d", dbname]
    r = subprocess.run(as_user(argv + ([] if stdin else ["-c", sql])), input=sql if stdin else None,
                       capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip() if strip else r.stdout


class LocalHost:
    """Host strategy of the localhost formations: this machine's loopback; servers differ by port."""

    name = "localhost"
    ip = "127.0.0.1"
    isolated = False

    def argv(self, argv, user=True):
        return as_user([str(a) for a in argv]) if user else [str(a) for a in argv]

    def popen(self, argv, user=True, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("cwd", "/")
        kw.setdefault("start_new_session", True)
        return subprocess.Popen(self.argv(argv, user), **kw)

    def run(self, argv, user=True, check=True, timeout=COMMAND_TIMEOUT, **kw):
        """Waits for the program (runuser: it does not need to be signalled, and it sets the user's
        USER/LOGNAME as a login would)."""
        kw.setdefault("cwd", "/")
        full = [str(a) for a in argv]
        if user and os.geteuid() == 0:
            full = ["runuser", "-u", TEST_USER, "--"] + full
        r = subprocess.run(full, capture_output=True, text=True, timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, argv))} exited {r.returncode}\n"
                                 f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def __repr__(self):
        return "LocalHost(127.0.0.1)"


def _daemon_alias(role):
    """The supervising process under its role's name (node.keeper, monitor.agent), read and assigned."""
    return property(lambda self: self.daemon, lambda self, proc: setattr(self, "daemon", proc),
                    doc=f"the {role} process (a Popen) this harness started, or None")


class SupervisedServer:
    """A Postgres server and the autoctl process that runs it (a node's keeper, a monitor's agent) on one
    host; its output goes to <workdir>/<name>.<DAEMON>.out."""

    DAEMON = "keeper"
    LOG_TAIL_LINES = 30

    def __init__(self, workdir, host, name, port):
        self.workdir = workdir
        self.host = host
        self.name = name
        self.port = port
        self.pgdata = os.path.join(workdir, name)
        self.daemon = None
        self._log = None

    def _start_daemon(self, argv, env):
        if self._log is None:
            self._log = open(os.path.join(self.workdir, f"{self.name}.{self.DAEMON}.out"), "ab")
        self.daemon = self.host.popen(argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir, env=env)

    def daemon_running(self):
        return self.daemon is not None and self.daemon.poll() is None

    def daemon_pid(self):
        return self.daemon.pid if self.daemon_running() else None

    def postmaster_pid(self):
        return read_pid(os.path.join(self.pgdata, "postmaster.pid"))

    def log_paths(self):
        return [os.path.join(self.workdir, f"{self.name}.{self.DAEMON}.out"),
                os.path.join(self.workdir, f"{self.name}.postgres.log")]

    def log_tail(self, lines=None):
        lines = self.LOG_TAIL_LINES if lines is None else lines
        out = []
        for path in self.log_paths():
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    out.append(f"--- {path}\n" + "".join(f.readlines()[-lines:]))
        return "\n".join(out)

    def teardown(self):
        """The supervisor first (SIGTERM), so that it does not restart Postgres, then the postmaster's fast
        shutdown (SIGINT); each by its PID, SIGKILL after STOP_TIMEOUT."""
        stop_pid(self.daemon_pid(), signal.SIGTERM)
        if self.daemon is not None:
            try:
                self.daemon.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        stop_pid(self.postmaster_pid(), signal.SIGINT)
        if self._log is not None:
            self._log.close()
            self._log = None


class KeeperNode(SupervisedServer):
    """A data node: Postgres and its keeper (`autoctl run`)."""

    def __init__(self, formation, host, name, port):
        super().__init__(formation.workdir, host, name, port)
        self.formation = formation
        self.state_dir = self.pgdata + ".keeper"

    keeper = _daemon_alias("keeper")

    def _keeper_may_start(self):
        return not pid_alive(self.keeper_pid())

    def start_keeper(self):
        assert self._keeper_may_start(), f"keeper of {self.name} already runs"
        self._start_daemon([AUTOCTL, "run", "--pgdata", self.pgdata], self.formation.env)

    def keeper_pid(self):
        """The keeper this harness started, else the one its pid file names."""
        if self.daemon_running():
            return self.daemon.pid
        return read_pid(os.path.join(self.state_dir, "keeper.pid"))

    def daemon_pid(self):
        return self.keeper_pid()

    def log_paths(self):
        paths = super().log_paths()
        return paths[:1] + [os.path.join(self.state_dir, "keeper.log")] + paths[1:]

    def socket_dir(self):
        try:
            with open(os.path.join(self.state_dir, "keeper.json")) as f:
                return json.load(f).get("socket_dir") or "/tmp"
        except (OSError, ValueError):
            return "/tmp"

    def tcp_conninfo(self, dbname="postgres"):
        return (f"host={self.host.ip} port={self.port} user={TEST_USER} dbname={dbname} connect_timeout=2"
                f"{self.formation.passfile_option()}")

    def kill_keeper(self, sig=signal.SIGKILL):
        pid = self.keeper_pid()
        assert pid_alive(pid), f"keeper of {self.name} is not running"
        os.kill(pid, sig)
        if self.daemon is not None and self.daemon.pid == pid:
            self.daemon.wait(timeout=STOP_TIMEOUT)

    def kill_postgres(self, sig=signal.SIGKILL):
        pid = self.postmaster_pid()
        assert pid_alive(pid), f"postgres of {self.name} is not running"
        os.kill(pid, sig)
        return pid

    def stop_postgres(self):
        """Clean fast shutdown, as an operator would do it."""
        self.host.run([f"{PG_BINDIR}/pg_ctl", "-D", self.pgdata, "-m", "fast", "-w", "stop"],
                      timeout=COMMAND_TIMEOUT, cwd=self.workdir)


class MonitorAgent(SupervisedServer):
    """A replicated monitor: Postgres and its agent (`autoctl run-monitor`)."""

    DAEMON = "agent"

    agent = _daemon_alias("agent")

    def agent_env(self):
        raise NotImplementedError

    def start_agent(self):
        assert not self.daemon_running(), f"agent of {self.name} already runs"
        self._start_daemon([AUTOCTL, "run-monitor", "--pgdata", self.pgdata], self.agent_env())

    def agent_running(self):
        return self.daemon_running()


class FormationBase:
    """A monitor and data nodes created with autoctl's secure defaults (scram-sha-256, TLS) unless a
    subclass asks otherwise. The keepers get the monitor's password file and a replication password file
    (0600, the test user's); the test process logs in as the test user with a password from its own pgpass
    file (`passfile=` in every conninfo it builds), a password the test user sets over the socket (peer)."""

    node_class = KeeperNode
    keeper_timeouts = {}              # keeper.json "timeouts" of every node (subclasses name theirs)
    healthy_timeout = 90.0            # how long wait_until waits by default
    state_errors = (psycopg.Error,)   # what wait_until retries on (the monitor may be down)
    client_uri_options = ""           # appended to client_uri()'s query string
    monitor_port = None               # the monitor's Postgres port (on monitor_host)

    def __init__(self, workdir):
        self.workdir = workdir
        self.nodes = {}
        self.monitor_host = None
        self.monitor_pgdata = os.path.join(workdir, "monitor")
        self.keeper_uri = None
        self.monitor_password_file = None
        self.env = dict(os.environ, HOME=pwd.getpwnam(TEST_USER).pw_dir, LC_ALL="C.UTF-8")
        self.env.pop("PGPASSFILE", None)
        os.makedirs(workdir, exist_ok=True)
        os.chown(workdir, *user_ids())
        os.chmod(workdir, 0o755)
        # The formation's replication password, for the keepers (test user's file).
        self.replication_password = "repl:" + secrets.token_hex(12)  # ':' exercises pgpass escaping
        self.replication_password_file = os.path.join(workdir, "replication.password")
        write_secret_file(self.replication_password_file, self.replication_password + "\n")
        # The test user's role password on the monitor and the nodes, for the test process only.
        self.user_password = secrets.token_hex(12)
        self.test_pgpass = os.path.join(workdir, "test-process.pgpass")
        write_secret_file(self.test_pgpass, f"*:*:*:{TEST_USER}:{self.user_password}\n", owner=False)

    def passfile_option(self):
        return f" passfile={self.test_pgpass}"

    def set_test_user_password(self, socket_dir, port, dbname):
        """The test user sets its own password over the socket (peer), from stdin."""
        psql_as_test_user(socket_dir, port, dbname, f"ALTER ROLE {TEST_USER} PASSWORD '{self.user_password}'",
                          stdin=True)

    # -- creation ------------------------------------------------------------------
    def run_autoctl(self, host, args, check=True, timeout=COMMAND_TIMEOUT, env=None):
        return host.run([AUTOCTL] + [str(a) for a in args], check=check, timeout=timeout, cwd=self.workdir,
                        env=env if env is not None else self.env)

    def _created_monitor(self, r):
        """What `autoctl create monitor` printed: the keepers' URI (stdout), the operator's
        AUTOFAILOVER_MONITOR and the keepers' password file (stderr). Returns the operator's URI."""
        self.keeper_uri = r.stdout.strip().splitlines()[-1]
        assert self.keeper_uri.startswith("postgres://autofailover_keeper@"), r.stdout
        password_file = re.search(r"--monitor-password-file (\S+)", r.stderr)
        self.monitor_password_file = password_file.group(1) if password_file else None
        operator = re.search(r"export AUTOFAILOVER_MONITOR='([^']+)'", r.stderr)
        assert operator, r.stderr
        self.env["AUTOFAILOVER_MONITOR"] = operator.group(1)
        return operator.group(1)

    def _prepare_created(self, node):
        """Hook: what a harness does to a node's files after `create postgres`, before its keeper starts."""

    def _after_first_node(self, node):
        """The first node's superuser role (the test user) gets the test password; standbys copy it."""
        if len(self.nodes) == 1:
            self.set_test_user_password(node.socket_dir(), node.port, "postgres")

    def _after_create(self, node, start=True):
        self._prepare_created(node)
        self._after_first_node(node)
        self.shorten_keeper_timeouts(node)
        if start:
            node.start_keeper()

    def _create_in_parallel(self, nodes_and_args):
        """Several `create postgres` at once (their base backups overlap), then each keeper started."""
        procs = []
        for node, args in nodes_and_args:
            procs.append((node, node.host.popen([AUTOCTL] + [str(a) for a in args], stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT, text=True, cwd=self.workdir,
                                                env=self.env, start_new_session=False)))
        for node, proc in procs:
            out, _ = proc.communicate(timeout=COMMAND_TIMEOUT)
            assert proc.returncode == 0, f"create postgres {node.name} exited {proc.returncode}:\n{out}"
            self._after_create(node)

    def shorten_keeper_timeouts(self, node):
        path = os.path.join(node.state_dir, "keeper.json")
        with open(path) as f:
            config = json.load(f)
        config.setdefault("timeouts", {}).update(self.keeper_timeouts)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(config, f, indent=2)
        os.chown(tmp, *user_ids())
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

    # -- monitor state -------------------------------------------------------------
    def monitor_conninfo(self):
        return (f"host={self.monitor_host.ip} port={self.monitor_port} user={TEST_USER} dbname=autofailover "
                f"connect_timeout=2{self.passfile_option()}")

    def state(self):
        """{node name: row of autofailover.current_state('default')}, by node id."""
        return {r["node_name"]: r for r in checker.monitor_state(self.monitor_conninfo())}

    def is_healthy(self, state=None):
        """One primary, every other node secondary (or in maintenance), every node at its goal, every
        keeper reporting, every node of this harness listed."""
        state = state if state is not None else self.state()
        return checker.is_full_health(list(state.values())) and len(state) == len(self.nodes)

    def wait_until(self, predicate, what, timeout=None, interval=0.1):
        timeout = self.healthy_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.state()
                if predicate(last):
                    return last
            except self.state_errors as e:
                last = f"monitor error: {e}"
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last state:\n{self.describe(last)}\n"
                             + "\n".join(n.log_tail(15) for n in self.nodes.values()))

    def wait_healthy(self, timeout=None, hold=0.0):
        """hold: health must last this many seconds (right after a monitor was frozen or restarted it may
        still show the healthy picture from before, until the keepers' reports change it)."""
        if not hold:
            return self.wait_until(self.is_healthy, "one primary and all secondaries", timeout)
        return self.wait_until(lambda _state: self._healthy_for(hold), f"health that holds {hold} s", timeout)

    def _healthy_for(self, seconds, interval=0.1):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.is_healthy():
                return False
            time.sleep(interval)
        return True

    def primary(self):
        state = self.state()
        names = [n for n, s in state.items() if s["goal_state"] == "primary" and s["reported_state"] == "primary"]
        assert len(names) == 1, f"expected one primary:\n{self.describe(state)}"
        return self.nodes[names[0]]

    def standbys(self):
        return [self.nodes[n] for n, s in self.state().items() if s["goal_state"] == "secondary"]

    def client_uri(self):
        hosts = ",".join(f"{n.host.ip}:{n.port}" for n in self.nodes.values())
        return (f"postgresql://{TEST_USER}@{hosts}/postgres?target_session_attrs=read-write"
                f"{self.client_uri_options}&passfile={urllib.parse.quote(self.test_pgpass)}")

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
