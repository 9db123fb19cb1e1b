"""Authentication and TLS end to end, with autoctl's defaults: a monitor and two
data nodes created with no --auth / --ssl option are scram-sha-256 and TLS
(self-signed). Replication logs in with the formation's password (from a
pgpass file, never from a conninfo), keepers reach the monitor over TLS with
the password from the monitor's 0600 file (never on a command line or in a
URI), pg_hba.conf holds no trust line for TCP, a switchover works, an
application writes through the multi-host URI with a password, and missing or
wrong passwords are refused with a clear message. A second formation uses
certificates of its own CA (--ssl-ca-file, --server-cert, --server-key):
every connection then verifies the server (sslmode=verify-full)."""

import json
import os
import re
import secrets
import subprocess
import urllib.parse

import psycopg
import pytest

from formation import PG_BINDIR, Node, TEST_USER, _user_ids, as_user, write_secret_file

SCRAM = "scram-sha-256"


def hba_rules(path):
    with open(path) as f:
        return [line.split() for line in f if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def secure(formation_factory):
    f = formation_factory()
    f.create_monitor(extra_args=["--allow", "10.99.0.0/16"])
    f.create_node("node_a")
    f.create_node("node_b")
    f.wait_healthy()
    return f


def test_printed_uris_require_tls_and_hold_no_password(secure):
    f = secure
    uri = urllib.parse.urlparse(f.keeper_uri)
    assert uri.username == "autofailover_keeper" and uri.password is None, f.keeper_uri
    assert "sslmode=require" in uri.query
    # The password is in a 0600 file inside the monitor's data directory; stderr names the file.
    st = os.stat(f.monitor_password_file)
    assert st.st_mode & 0o777 == 0o600 and st.st_uid == _user_ids()[0]
    with open(f.monitor_password_file) as fh:
        password = fh.readline().strip()
    assert len(password) >= 32
    assert password not in f.monitor_stderr and password not in f.keeper_uri
    # The server got a SCRAM verifier, never the password (not even in its log).
    with open(f.monitor_pgdata + ".postgres.log", errors="replace") as fh:
        assert password not in fh.read()
    # The operator is the OS user over the monitor's Unix socket (peer), not a TCP login.
    assert f.operator_uri.startswith("postgres:///autofailover?host=" + f.monitor_pgdata), f.operator_uri
    assert "WARNING" not in f.monitor_stderr


def test_keepers_hold_passwords_in_private_files_only(secure):
    f = secure
    with open(f.monitor_password_file) as fh:
        monitor_password = fh.readline().strip()
    for node in f.nodes.values():
        with open(os.path.join(node.state_dir, "keeper.json")) as fh:
            config = json.load(fh)
        assert config["auth_method"] == SCRAM and config["ssl_key_file"], config
        assert monitor_password not in config["monitor_uri"]
        for key in ("monitor_passfile", "replication_passfile", "ssl_key_file"):
            assert os.stat(config[key]).st_mode & 0o777 == 0o600, (key, config[key])
        for path in (os.path.join(node.pgdata, "postgresql.auto.conf"), os.path.join(node.state_dir, "keeper.json"),
                     os.path.join(f.workdir, f"{node.name}.keeper.out"),
                     os.path.join(f.workdir, f"{node.name}.postgres.log")):
            with open(path, errors="replace") as fh:
                text = fh.read()
            assert f.replication_password not in text and monitor_password not in text, path
    key = os.path.join(f.monitor_pgdata, "server.key")
    assert os.stat(key).st_mode & 0o777 == 0o600


def test_replication_streams_over_tls_with_the_formation_password(secure):
    f = secure
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


def test_keepers_reach_the_monitor_over_tls_and_probes_see_nodes(secure):
    f = secure
    with psycopg.connect(f.monitor_conninfo(), autocommit=True) as conn:
        with_ssl, total = conn.execute(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a "
            "JOIN pg_stat_ssl s USING (pid) WHERE a.usename LIKE 'autofailover\\_keeper\\_%'").fetchone()
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
    assert total >= 2 and with_ssl == total, (with_ssl, total)
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
    f = secure
    files = [os.path.join(f.monitor_pgdata, "pg_hba.conf")] + [os.path.join(n.pgdata, "pg_hba.conf")
                                                               for n in f.nodes.values()]
    for path in files:
        rules = hba_rules(path)
        tcp = [r for r in rules if r[0].startswith("host")]
        assert tcp, path
        assert not [r for r in tcp if r[-1] == "trust"], (path, tcp)
        # The socket: peer only (each OS user as its own role).
        assert {r[-1] for r in rules if r[0] == "local"} == {"peer"}, (path, rules)
        # The keeper's and the monitor's own lines accept TLS connections only.
        ours = [r for r in tcp if any(u in ("autofailover_replicator", "autofailover_monitor", "autofailover_keeper",
                                            "+autofailover_operator") for u in r)]
        assert ours and all(r[0] == "hostssl" for r in ours), (path, ours)
    monitor_sources = {r[3] for r in hba_rules(files[0]) if r[0] == "hostssl"}
    assert monitor_sources == {"127.0.0.1/32", "::1/128", "10.99.0.0/16"}, monitor_sources
    # No monitor line names the OS user's superuser role for TCP.
    assert not [r for r in hba_rules(files[0]) if r[0].startswith("host") and TEST_USER in r[2].split(",")]


def test_monitor_refuses_plain_tcp_and_wrong_passwords(secure):
    f = secure
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(f.monitor_conninfo() + " sslmode=disable")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f.monitor_conninfo().replace(f.passfile_option(), "") + " password=wrong sslmode=require")


def test_wrong_monitor_password_is_refused_clearly(secure):
    f = secure
    node = Node(f, "node_wrong_monitor", f.port_base + 9)
    wrong = os.path.join(f.workdir, "wrong-monitor.password")
    write_secret_file(wrong, "not-the-password\n")
    args = f.create_args(node)
    args[args.index("--monitor-password-file") + 1] = wrong
    r = f.autoctl(*args, check=False)
    assert r.returncode == 2, r
    assert 'password authentication failed for user "autofailover_keeper"' in r.stderr, r.stderr
    assert "not-the-password" not in r.stderr + r.stdout
    assert "node_wrong_monitor" not in f.state()


def test_unsafe_replication_password_file_is_refused(secure):
    f = secure
    node = Node(f, "node_no_password", f.port_base + 9)
    args = f.create_args(node)
    i = args.index("--replication-password-file")
    loose = os.path.join(f.workdir, "loose.password")
    write_secret_file(loose, "x\n")
    os.chmod(loose, 0o644)
    args[i + 1] = loose
    r = f.autoctl(*args, check=False)
    assert r.returncode == 1 and "chmod 600" in r.stderr, r
    assert "node_no_password" not in f.state()


def test_each_keeper_has_its_own_monitor_role_and_private_password(secure):
    f = secure
    with open(f.monitor_password_file) as fh:
        bootstrap_password = fh.readline().strip()
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


@pytest.fixture(scope="module")
def generated(formation_factory):
    """The secure defaults without --replication-password-file: the monitor
    generates the formation's replication password and hands it to its nodes."""
    f = formation_factory(port_offset=20)
    f.replication_password_file = None
    f.create_monitor()
    f.create_node("node_a")
    f.create_node("node_b")
    f.wait_healthy()
    return f


def test_replication_password_generated_by_the_monitor(generated):
    f = generated
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


def test_switchover(secure):
    f = secure
    old = f.primary()
    f.autoctl("perform", "switchover", "--wait", "90")
    f.wait_healthy()
    new = f.primary()
    assert new is not old
    rows = new.sql("SELECT r.state, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)")
    assert rows == [("streaming", True)], rows


def test_client_uri_with_password_writes(secure):
    f = secure
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
    f = secure
    wrong = os.path.join(f.workdir, "wrong.password")
    write_secret_file(wrong, "not-the-replication-password\n")
    node = Node(f, "node_wrong_replication", f.port_base + 1 + len(f.nodes))
    f.nodes[node.name] = node
    args = f.create_args(node)
    args[args.index("--replication-password-file") + 1] = wrong
    r = f.autoctl(*args, "--init-timeout", "20", check=False)
    output = r.stdout + r.stderr
    assert r.returncode == 4, output
    assert 'password authentication failed for user "autofailover_replicator"' in output, output
    assert "not-the-replication-password" not in output


@pytest.mark.parametrize("network,message", [("10.0.0.7/24", "host bits"), ("10.0.0.0/33", "prefix length"),
                                              ("example.org/24", "CIDR notation")])
def test_create_monitor_refuses_bad_allow_networks(secure, network, message):
    f = secure
    pgdata = os.path.join(f.workdir, "monitor_bad_allow")
    r = f.autoctl("create", "monitor", "--pgdata", pgdata, "--pgport", f.port_base + 8, "--hostname", "127.0.0.1",
                  "--allow", network, check=False)
    assert r.returncode == 1 and message in r.stderr, r
    assert not os.path.exists(pgdata)


# -- certificates of the operator's own CA -------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=cwd, timeout=60)


def make_ca(directory):
    """A CA and one certificate for 127.0.0.1 (SAN IP and CN), all owned by the test user, keys 0600."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    openssl("req", "-new", "-x509", "-nodes", "-days", "2", "-subj", "/CN=autofailover test CA",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=directory)
    openssl("req", "-new", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr",
            cwd=directory)
    with open(os.path.join(directory, "san.ext"), "w") as fh:
        fh.write("subjectAltName = IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "san.ext", "-out", "server.crt", cwd=directory)
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        os.chmod(path, 0o600 if name.endswith(".key") else 0o644)
        os.chown(path, *_user_ids())
    os.chmod(directory, 0o755)
    os.chown(directory, *_user_ids())
    return {k: os.path.join(directory, v) for k, v in (("ca", "ca.crt"), ("cert", "server.crt"),
                                                        ("key", "server.key"))}


@pytest.fixture(scope="module")
def with_ca(formation_factory):
    f = formation_factory(port_offset=10)
    ca = make_ca(os.path.join(f.workdir, "ca"))
    tls = ["--ssl-ca-file", ca["ca"], "--server-cert", ca["cert"], "--server-key", ca["key"]]
    f.create_monitor(extra_args=tls)
    original = f.node_security_args
    f.node_security_args = lambda: original() + tls
    f.create_node("ca_a")
    f.create_node("ca_b")
    f.wait_healthy()
    f.ca = ca
    return f


def test_own_ca_uris_and_replication_verify_the_server(with_ca):
    f = with_ca
    query = urllib.parse.parse_qs(urllib.parse.urlparse(f.keeper_uri).query)
    assert query["sslmode"] == ["verify-full"] and query["sslrootcert"] == [f.ca["ca"]], f.keeper_uri
    standby = f.standbys()[0]
    conninfo = standby.sql("SELECT current_setting('primary_conninfo')")[0][0]
    assert "sslmode=verify-full" in conninfo and "sslrootcert=" in conninfo, conninfo
    rows = f.primary().sql("SELECT r.state, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)")
    assert rows == [("streaming", True)], rows
    # A client that verifies the server with that CA gets in; one that trusts another CA does not.
    with psycopg.connect(f.monitor_conninfo() + f" sslmode=verify-full sslrootcert={f.ca['ca']}") as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0]
    other = make_ca(os.path.join(f.workdir, "other-ca"))
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(f.monitor_conninfo() + f" sslmode=verify-full sslrootcert={other['ca']}")
