"""Observation and local configuration commands end to end, on one 2-node
formation: `autoctl show metrics` (Prometheus text from autofailover.metrics(),
a killed keeper shows as not reporting; served over HTTP with --http-port), `perform switchover|failover|promotion
--dry-run` (who would be promoted, nothing changes), the Lag column of `show
state`, `autoctl watch --count` and its clean exit on SIGINT/SIGTERM,
`autoctl config get|set|check` on keeper.json and `autoctl reload`, and
`autoctl show fsm --dot`."""

import json
import os
import re
import signal
import stat
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from formation import AUTOCTL, TEST_USER, as_user


@pytest.fixture(scope="module")
def formation(formation_factory):
    f = formation_factory(port_offset=0)
    f.create_monitor()
    f.create_node("node_a")
    f.create_nodes([{"name": "node_b"}])
    f.wait_healthy()
    return f


def parse_prometheus(text):
    """{(name, labels): value}, and checks the text format line by line."""
    samples = {}
    typed = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("gauge", "counter"), line
            assert name not in typed, f"TYPE twice for {name}"
            typed.add(name)
            continue
        m = re.fullmatch(r'([a-z_]+)(\{(?:[a-z_]+="(?:[^"\\]|\\.)*",?)*\})? (\S+)', line)
        assert m, f"not a sample line: {line!r}"
        assert m.group(1) in typed, f"sample before its TYPE: {line}"
        samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return samples


def node_sample(samples, name, node):
    found = [v for (n, labels), v in samples.items() if n == name and f'node="{node}"' in labels]
    assert len(found) == 1, (name, node, samples)
    return found[0]


def test_show_metrics(formation):
    primary = formation.primary().name
    standby = [n for n in formation.nodes if n != primary][0]
    samples = parse_prometheus(formation.autoctl("show", "metrics").stdout)
    assert node_sample(samples, "autofailover_node_is_primary", primary) == 1
    assert node_sample(samples, "autofailover_node_is_primary", standby) == 0
    for node in formation.nodes:
        assert node_sample(samples, "autofailover_node_keeper_reporting", node) == 1
        assert 0 <= node_sample(samples, "autofailover_node_last_report_age_seconds", node) < 5
    assert samples[("autofailover_group_has_primary", '{formation="default",group="0"}')] == 1
    assert samples[("autofailover_group_sync_standbys", '{formation="default",group="0"}')] == 1
    assert samples[("autofailover_decisions_total", "")] > 0
    # the worker's probes of running nodes succeed, and take well under a second on loopback
    formation.wait_until(lambda s: all(v["health"] == "good" for v in s.values()), "good probes")
    samples = parse_prometheus(formation.autoctl("show", "metrics").stdout)
    for node in formation.nodes:
        assert node_sample(samples, "autofailover_node_probe_up", node) == 1
        assert 0 <= node_sample(samples, "autofailover_node_probe_duration_seconds", node) < 1
    # --formation of an unknown formation is refused (exit 2, the monitor's message)
    r = formation.autoctl("show", "metrics", "--formation", "nope", check=False)
    assert r.returncode == 2 and "does not exist" in r.stderr, r


def http_get(url):
    """(status, body) of a GET, HTTP errors included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def start_exporter(formation, port, *args, env=None):
    p = subprocess.Popen(as_user([AUTOCTL, "show", "metrics", "--http-port", str(port), *args]),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or formation.env,
                         cwd=formation.workdir)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            http_get(f"http://127.0.0.1:{port}/none")
            return p
        except OSError:
            assert p.poll() is None, p.communicate()
            time.sleep(0.1)
    p.kill()
    raise AssertionError("the exporter did not listen within 10 s")


def test_metrics_exporter(formation):
    port = formation.port_base + 3
    primary = formation.primary().name
    p = start_exporter(formation, port)
    try:
        status, body = http_get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200, body
        samples = parse_prometheus(body)
        assert node_sample(samples, "autofailover_node_is_primary", primary) == 1
        assert 0 <= samples[("autofailover_exporter_scrape_duration_seconds", "")] < 5
        # a second scrape on the same connection, and nothing but /metrics is served
        assert http_get(f"http://127.0.0.1:{port}/metrics")[0] == 200
        assert http_get(f"http://127.0.0.1:{port}/state")[0] == 404
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
    assert p.returncode == 0, (p.returncode, err)
    assert f"http://127.0.0.1:{port}/metrics" in err
    # a monitor that cannot be reached: 503 for the scrape, the exporter keeps serving
    env = dict(formation.env, AUTOFAILOVER_MONITOR=f"postgres://nobody@127.0.0.1:{port + 1}/autofailover")
    p = start_exporter(formation, port, env=env)
    try:
        status, body = http_get(f"http://127.0.0.1:{port}/metrics")
        assert status == 503 and "monitor unavailable" in body, (status, body)
        assert p.poll() is None
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
    assert p.returncode == 0, (p.returncode, err)
    assert "exporter scrape failed" in err, err
    # only loopback unless the operator opens it; a bad address is refused
    r = formation.autoctl("show", "metrics", "--http-port", str(port), "--http-listen", "localhost; id",
                          check=False)
    assert r.returncode != 0 and "--http-listen" in r.stderr, r


def test_metrics_show_a_dead_keeper(formation):
    standby = formation.nodes[[n for n in formation.nodes if n != formation.primary().name][0]]
    standby.kill_keeper()
    try:
        formation.wait_until(lambda s: not s[standby.name]["keeper_reporting"], "the keeper to count as down",
                             timeout=30)
        samples = parse_prometheus(formation.autoctl("show", "metrics").stdout)
        assert node_sample(samples, "autofailover_node_keeper_reporting", standby.name) == 0
        assert node_sample(samples, "autofailover_node_last_report_age_seconds", standby.name) >= 2
    finally:
        standby.start_keeper()
    formation.wait_healthy()


def test_dry_run_changes_nothing(formation):
    before = formation.state()
    primary = formation.primary().name
    standby = [n for n in formation.nodes if n != primary][0]
    events_before = formation.autoctl("show", "events", "--count", "1000", "--json").stdout
    for command in (["switchover"], ["failover"], ["promotion", "--name", standby]):
        out = formation.autoctl("perform", *command, "--dry-run").stdout
        assert f"Would be promoted: {standby}" in out, out
        assert "Commits at risk: none" in out, out
        assert "Waiting for: nothing" in out, out
        assert re.search(rf"{primary}\s+primary\s+primary\s+draining", out), out
    time.sleep(1)
    after = formation.state()
    assert {n: (s["reported_state"], s["goal_state"]) for n, s in after.items()} == \
        {n: (s["reported_state"], s["goal_state"]) for n, s in before.items()}
    assert formation.autoctl("show", "events", "--count", "1000", "--json").stdout == events_before
    # a plan the monitor refuses is refused in the dry run too
    r = formation.autoctl("perform", "promotion", "--name", primary, "--dry-run", check=False)
    assert r.returncode == 2 and "already the primary" in r.stderr, r


def test_show_state_has_a_lag_column(formation):
    out = formation.autoctl("show", "state").stdout
    assert re.search(r"TLI: LSN\s+Lag\s+Connection", out), out
    rows = json.loads(formation.autoctl("show", "state", "--json").stdout)
    lags = {r["name"]: r["lag_bytes"] for r in rows}
    primary = formation.primary().name
    assert lags[primary] is None
    assert all(isinstance(v, int) and v >= 0 for n, v in lags.items() if n != primary), lags


def test_watch_count(formation):
    r = formation.autoctl("watch", "--count", "2", "--interval", "0.2", timeout=20)
    assert r.stdout.count("Recent events") == 2, r.stdout
    assert "\033[2J" not in r.stdout  # not a terminal: frames follow each other, no clear
    for node in formation.nodes:
        assert node in r.stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_watch_exits_cleanly_on_signal(formation, sig):
    p = subprocess.Popen(as_user([AUTOCTL, "watch", "--interval", "0.2"]), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=formation.env, cwd=formation.workdir)
    time.sleep(1.5)
    p.send_signal(sig)
    out, err = p.communicate(timeout=5)
    assert p.returncode == 0, (p.returncode, err)
    assert "Recent events" in out


def keeper_json(node):
    return os.path.join(node.state_dir, "keeper.json")


def test_config_get_set_check(formation):
    node = formation.nodes["node_b"]
    args = ["--pgdata", node.pgdata]
    assert formation.autoctl("config", "get", "http_port", *args).stdout == "0\n"
    assert json.loads(formation.autoctl("config", "get", *args).stdout)["name"] == "node_b"
    r = formation.autoctl("config", "set", "timeouts.poll_period_ms", "700", *args)
    assert "written" in r.stdout
    with open(keeper_json(node)) as f:
        assert json.load(f)["timeouts"]["poll_period_ms"] == 700
    assert stat.S_IMODE(os.stat(keeper_json(node)).st_mode) == 0o600
    assert formation.autoctl("config", "get", "timeouts.poll_period_ms", *args).stdout == "700\n"
    # refused before anything is written: unknown keys, wrong types, values the keeper would refuse,
    # keys that identify the node
    with open(keeper_json(node)) as f:
        saved = f.read()
    for key, value in [("no_such_key", "1"), ("timeouts.poll_period_ms", "fast"), ("http_port", "70000"),
                       ("allow_clients", "all"), ("socket_dir", "/tmp/$(id)"), ("name", "other"),
                       ("timeouts", "1")]:
        r = formation.autoctl("config", "set", key, value, *args, check=False)
        assert r.returncode == 1, (key, value, r)
        with open(keeper_json(node)) as f:
            assert f.read() == saved, (key, value)
    assert "is valid" in formation.autoctl("config", "check", *args).stdout
    # a secret file readable by others is reported
    passfile = os.path.join(node.state_dir, "monitor.pgpass")
    os.chmod(passfile, 0o644)
    try:
        r = formation.autoctl("config", "check", *args, check=False)
        assert r.returncode == 1 and "monitor.pgpass has mode 0644" in r.stderr, r
    finally:
        os.chmod(passfile, 0o600)


def test_reload(formation):
    node = formation.nodes["node_b"]
    formation.autoctl("config", "set", "timeouts.poll_period_ms", "900", "--pgdata", node.pgdata)
    r = formation.autoctl("reload", "--pgdata", node.pgdata)
    assert f"pid {node.keeper_pid()}" in r.stdout
    deadline = time.monotonic() + 10
    while "reloaded keeper.json (poll_period=900ms)" not in node.log_tail(200):
        assert time.monotonic() < deadline, node.log_tail(30)
        time.sleep(0.2)
    formation.wait_healthy()
    # not a node: exit 1 before any signal
    r = formation.autoctl("reload", "--pgdata", os.path.join(formation.workdir, "nowhere"), check=False)
    assert r.returncode == 1, r  # no keeper.json there


def test_show_fsm_dot(formation):
    out = formation.autoctl("show", "fsm", "--dot").stdout
    assert out.startswith("// Generated") and "digraph autofailover_keeper_fsm {" in out
    assert '"primary" -> "draining" [label="stop_postgres"' in out
    assert '"any state" -> "dropped"' in out
