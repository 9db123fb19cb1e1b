"""Authentication and TLS end to end: a monitor and two data nodes created with
--auth scram-sha-256 --ssl-self-signed on 127.0.0.1. Replication logs in with
the formation's password (from a pgpass file, never from a conninfo), keepers
reach the monitor over TLS, pg_hba.conf holds no trust line for TCP, a
switchover works, an application writes through the multi-host URI with a
password, and missing or wrong passwords are refused with a clear message."""

import json
import os
import re
import secrets
import subprocess
import urllib.parse

import psycopg
import pytest

from formation import AUTOCTL, MONITOR_SETTINGS, PG_BINDIR, TEST_USER, Node, _user_ids, as_user

SCRAM = "scram-sha-256"


def write_secret_file(path, text, owner=True):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    if owner and os.geteuid() == 0:
        uid, gid = _user_ids()
        os.chown(path, uid, gid)


def psql_as_test_user(host, port, dbname, sql):
    """SQL through the Unix socket as the test user (peer authentication)."""
    r = subprocess.run(as_user([os.path.join(PG_BINDIR, "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-At",
                                "-h", host, "-p", str(port), "-d", dbname, "-c", sql]),
                       capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def hba_rules(path):
    with open(path) as f:
        return [line.split() for line in f if line.strip() and not line.lstrip().startswith("#")]


class SecureFormation:
    """A formation of the shared e2e harness, created with scram-sha-256 and
    SSL. The test process finds the test user's password in its own pgpass
    file (PGPASSFILE), so the harness's helpers (state(), Node.sql()) work
    unchanged; the autoctl children never see that file."""

    def __init__(self, f, with_password_file=True):
        self.f = f
        self.replication_password = "repl:" + secrets.token_hex(12)  # ':' exercises pgpass escaping
        self.user_password = secrets.token_hex(12)
        self.password_file = None
        if with_password_file:
            self.password_file = os.path.join(f.workdir, "replication.password")
            write_secret_file(self.password_file, self.replication_password + "\n")
        self.test_pgpass = os.path.join(f.workdir, "test-process.pgpass")
        write_secret_file(self.test_pgpass, f"*:*:*:{TEST_USER}:{self.user_password}\n", owner=False)
        self.saved_env = {k: os.environ.get(k) for k in ("PGPASSFILE",)}
        os.environ["PGPASSFILE"] = self.test_pgpass

    def restore_env(self):
        for k, v in self.saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def create_monitor(self):
        f = self.f
        args = ["create", "monitor", "--pgdata", f.monitor_pgdata, "--pgport", f.port_base,
                "--hostname", "127.0.0.1", "--auth", SCRAM, "--ssl-self-signed", "--allow", "10.99.0.0/16"]
        for name, value in MONITOR_SETTINGS.items():
            args += ["--setting", f"{name}={value}"]
        r = f.autoctl(*args)
        f.keeper_uri = r.stdout.strip().splitlines()[-1]
        self.monitor_stderr = r.stderr
        operator = re.search(r"export AUTOFAILOVER_MONITOR='([^']+)'", r.stderr)
        assert operator, r.stderr
        f.env["AUTOFAILOVER_MONITOR"] = operator.group(1)
        psql_as_test_user(f.monitor_pgdata, f.port_base, "autofailover",
                          f"ALTER ROLE {TEST_USER} PASSWORD '{self.user_password}'")

    def create_args(self, node, password_file=None):
        args = ["create", "postgres", "--pgdata", node.pgdata, "--pgport", node.port, "--hostname", "127.0.0.1",
                "--name", node.name, "--monitor", self.f.keeper_uri, "--auth", SCRAM, "--ssl-self-signed"]
        if self.password_file is not None:
            args += ["--replication-password-file", password_file or self.password_file]
        return args

    def new_node(self, name):
        node = Node(self.f, name, self.f.port_base + 1 + len(self.f.nodes))
        self.f.nodes[name] = node
        return node

    def create_node(self, name):
        node = self.new_node(name)
        self.f.autoctl(*self.create_args(node))
        self.f.shorten_keeper_timeouts(node)
        node.start_keeper()
        return node


def start_secure_formation(s):
    s.create_monitor()
    first = s.create_node("node_a")
    # The superuser role of the test user logs in over TCP with a password now; standbys inherit it.
    psql_as_test_user("/tmp", first.port, "postgres", f"ALTER ROLE {TEST_USER} PASSWORD '{s.user_password}'")
    s.create_node("node_b")
    s.f.wait_healthy()


@pytest.fixture(scope="module")
def secure(formation_factory):
    s = SecureFormation(formation_factory())
    try:
        start_secure_formation(s)
        yield s
    finally:
        s.restore_env()


def test_printed_uris_require_tls_and_password(secure):
    uri = urllib.parse.urlparse(secure.f.keeper_uri)
    assert uri.username == "autofailover_keeper" and uri.password, secure.f.keeper_uri
    assert "sslmode=require" in uri.query
    # stderr shows the keeper URI too (for the operator), never the replication password.
    assert secure.replication_password not in secure.monitor_stderr


def test_replication_streams_over_tls_with_the_formation_password(secure):
    f = secure.f
    primary = f.primary()
    standby = f.standbys()[0]
    rows = primary.sql("SELECT r.usename, r.state, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)")
    assert rows == [("autofailover_replicator", "streaming", True)], rows
    primary.sql("CREATE TABLE IF NOT EXISTS auth_probe(v text)")
    primary.sql("INSERT INTO auth_probe VALUES ('replicated')")
    f.wait_until(lambda _s: standby.sql("SELECT count(*) FROM auth_probe WHERE v = 'replicated'")[0][0] == 1,
                 "the row on the standby", timeout=30)
    # The standby's primary_conninfo names a pgpass file, not the password; the file is private.
    conninfo = standby.sql("SELECT current_setting('primary_conninfo')")[0][0]
    assert "passfile=" in conninfo and "sslmode=require" in conninfo, conninfo
    passfile = re.search(r"passfile='([^']+)'", conninfo).group(1)
    assert os.stat(passfile).st_mode & 0o777 == 0o600
    for node in f.nodes.values():
        for path in (os.path.join(node.pgdata, "postgresql.auto.conf"), os.path.join(node.state_dir, "keeper.json"),
                     os.path.join(f.workdir, f"{node.name}.keeper.out")):
            with open(path) as fh:
                assert secure.replication_password not in fh.read(), path
        with open(os.path.join(node.state_dir, "keeper.json")) as fh:
            config = json.load(fh)
        assert config["auth_method"] == SCRAM and config["ssl_key_file"], config


def test_keepers_reach_the_monitor_over_tls_and_probes_see_nodes(secure):
    f = secure.f
    rows = psql_as_test_user(f.monitor_pgdata, f.port_base, "autofailover",
                             "SELECT count(*) FILTER (WHERE s.ssl), count(*), count(DISTINCT a.usename) "
                             "FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
                             "WHERE a.usename LIKE 'autofailover\\_keeper%'")
    with_ssl, total, roles = map(int, rows.split("|"))
    # Each keeper is logged in as its node's own role (docs/security.md, "Keeper identity").
    assert total >= 2 and with_ssl == total and roles == 2, rows
    # The probes get an authentication request from scram-sha-256 pg_hba lines: that counts as up.
    state = f.state()
    assert all(s["health"] == "good" for s in state.values()), state
    # They reach those hostssl lines over TLS: a plain probe would find no line, and the server
    # would log a FATAL "no pg_hba.conf entry ... no encryption" for every probe.
    for node in f.nodes.values():
        with open(os.path.join(f.workdir, f"{node.name}.postgres.log"), errors="replace") as fh:
            refused = [line for line in fh if "no pg_hba.conf entry" in line]
        assert not refused, refused[:3]


def test_pg_hba_has_no_trust_line_for_tcp(secure):
    f = secure.f
    files = [os.path.join(f.monitor_pgdata, "pg_hba.conf")] + [os.path.join(n.pgdata, "pg_hba.conf")
                                                               for n in f.nodes.values()]
    for path in files:
        rules = hba_rules(path)
        tcp = [r for r in rules if r[0].startswith("host")]
        assert tcp, path
        assert not [r for r in tcp if r[-1] == "trust"], (path, tcp)
        # The keeper's and the monitor's own lines accept TLS connections only.
        ours = [r for r in tcp if any(u in ("autofailover_replicator", "autofailover_monitor", "autofailover_keeper",
                                            "+autofailover_node_keepers", "+autofailover_operator") for u in r)]
        assert ours and all(r[0] == "hostssl" for r in ours), (path, ours)
    monitor_sources = {r[3] for r in hba_rules(files[0]) if r[0] == "hostssl"}
    assert monitor_sources == {"127.0.0.1/32", "::1/128", "10.99.0.0/16"}, monitor_sources


def test_monitor_refuses_plain_tcp_and_wrong_passwords(secure):
    f = secure.f
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(f.monitor_conninfo() + " sslmode=disable")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f.monitor_conninfo() + " password=wrong sslmode=require")


def test_wrong_monitor_password_is_refused_clearly(secure):
    f = secure.f
    node = Node(f, "node_wrong_monitor", f.port_base + 9)
    wrong_uri = re.sub(r"(autofailover_keeper:)[^@]*@", r"\1not-the-password@", f.keeper_uri)
    args = secure.create_args(node)
    args[args.index("--monitor") + 1] = wrong_uri
    r = f.autoctl(*args, check=False)
    assert r.returncode == 2, r
    assert 'password authentication failed for user "autofailover_keeper"' in r.stderr, r.stderr
    assert "not-the-password" not in r.stderr + r.stdout
    assert "node_wrong_monitor" not in f.state()


def test_each_keeper_has_its_own_monitor_role_and_private_password(secure):
    f = secure.f
    bootstrap_password = urllib.parse.urlparse(f.keeper_uri).password
    roles = set()
    for node in f.nodes.values():
        with open(os.path.join(node.state_dir, "keeper.json")) as fh:
            text = fh.read()
        config = json.loads(text)
        assert bootstrap_password not in text, "keeper.json keeps the bootstrap password"
        assert re.fullmatch(r"autofailover_keeper_[0-9]+", config["monitor_user"]), config
        assert os.stat(config["monitor_passfile"]).st_mode & 0o777 == 0o600
        with open(config["monitor_passfile"]) as fh:
            line = [x for x in fh if not x.startswith("#")][0].strip()
        password = line.split(":", 4)[4]
        assert len(password) == 48 and password not in text
        with open(os.path.join(f.workdir, f"{node.name}.keeper.out"), errors="replace") as fh:
            assert password not in fh.read()
        roles.add(config["monitor_user"])
        # The node's role logs in with its own password, and reads only its own formation.
        conn = (f"host=127.0.0.1 port={f.port_base} dbname=autofailover sslmode=require "
                f"user={config['monitor_user']} passfile={config['monitor_passfile']}")
        r = subprocess.run(as_user([os.path.join(PG_BINDIR, "psql"), "-X", "-At", "-d", conn, "-c",
                                    "SELECT count(*) FROM autofailover.get_nodes('default')"]),
                           capture_output=True, text=True, timeout=60, cwd="/", env=f.env)
        assert r.returncode == 0 and r.stdout.strip() == "2", r
    assert len(roles) == len(f.nodes)


def test_unsafe_replication_password_file_is_refused(secure):
    f = secure.f
    node = Node(f, "node_no_password", f.port_base + 9)
    loose = os.path.join(f.workdir, "loose.password")
    write_secret_file(loose, "x\n")
    os.chmod(loose, 0o644)
    r = f.autoctl(*secure.create_args(node, loose), check=False)
    assert r.returncode == 1 and "chmod 600" in r.stderr, r
    assert "node_no_password" not in f.state()


def test_switchover(secure):
    f = secure.f
    old = f.primary()
    f.autoctl("perform", "switchover", "--wait", "90")
    f.wait_healthy()
    new = f.primary()
    assert new is not old
    rows = new.sql("SELECT r.state, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)")
    assert rows == [("streaming", True)], rows


def test_client_uri_with_password_writes(secure):
    f = secure.f
    app_password = secrets.token_hex(8)
    f.primary().sql(f"CREATE ROLE app LOGIN PASSWORD '{app_password}'")
    f.primary().sql("CREATE TABLE app_data(v int); GRANT INSERT, SELECT ON app_data TO app")
    shown = json.loads(f.autoctl("show", "uri", "--sslmode", "require", "--json").stdout)
    uri = shown["formation"]["default"]
    assert "target_session_attrs=read-write" in uri and "sslmode=require" in uri, uri
    with_password = re.sub(r"^postgres(ql)?://", f"postgresql://app:{app_password}@", uri)
    with psycopg.connect(with_password, autocommit=True) as conn:
        conn.execute("INSERT INTO app_data VALUES (1)")
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
    assert f.primary().sql("SELECT count(*) FROM app_data")[0][0] == 1


def test_wrong_replication_password_is_refused_clearly(secure):
    """Last: the refused standby stays registered, waiting for its base backup."""
    f = secure.f
    wrong = os.path.join(f.workdir, "wrong.password")
    write_secret_file(wrong, "not-the-replication-password\n")
    node = secure.new_node("node_wrong_replication")
    r = f.autoctl(*secure.create_args(node, wrong), "--init-timeout", "20", check=False)
    output = r.stdout + r.stderr
    assert r.returncode == 4, output
    assert 'password authentication failed for user "autofailover_replicator"' in output, output
    assert "not-the-replication-password" not in output


@pytest.mark.parametrize("network,message", [("10.0.0.7/24", "host bits"), ("10.0.0.0/33", "prefix length"),
                                              ("example.org/24", "CIDR notation")])
def test_create_monitor_refuses_bad_allow_networks(secure, network, message):
    f = secure.f
    pgdata = os.path.join(f.workdir, "monitor_bad_allow")
    r = f.autoctl("create", "monitor", "--pgdata", pgdata, "--pgport", f.port_base + 8, "--hostname", "127.0.0.1",
                  "--allow", network, check=False)
    assert r.returncode == 1 and message in r.stderr, r
    assert not os.path.exists(pgdata)


@pytest.fixture(scope="module")
def generated(formation_factory):
    """scram-sha-256 and TLS without --replication-password-file: the monitor
    generates the formation's replication password and hands it to its nodes."""
    s = SecureFormation(formation_factory(port_offset=10), with_password_file=False)
    try:
        start_secure_formation(s)
        yield s
    finally:
        s.restore_env()


def test_replication_password_generated_by_the_monitor(generated):
    f = generated.f
    primary = f.primary()
    rows = primary.sql("SELECT r.usename, r.state, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)")
    assert rows == [("autofailover_replicator", "streaming", True)], rows
    passwords = set()
    for node in f.nodes.values():
        with open(os.path.join(node.state_dir, "keeper.json")) as fh:
            text = fh.read()
        config = json.loads(text)
        assert os.stat(config["replication_passfile"]).st_mode & 0o777 == 0o600
        with open(config["replication_passfile"]) as fh:
            line = [x for x in fh if not x.startswith("#")][0].strip()
        assert line.startswith("*:*:*:autofailover_replicator:"), line
        password = line.split(":", 4)[4]
        assert len(password) == 48 and password not in text
        for path in (os.path.join(node.pgdata, "postgresql.auto.conf"),
                     os.path.join(f.workdir, f"{node.name}.keeper.out")):
            with open(path, errors="replace") as fh:
                assert password not in fh.read(), path
        passwords.add(password)
    assert len(passwords) == 1, "every node of the formation got the same replication password"
