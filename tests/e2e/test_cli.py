"""autoctl against a real monitor without data nodes: help on every command,
documented exit codes, clear errors, create monitor idempotence, show
commands and their JSON."""

import json
import os
import subprocess

import pytest

from formation import AUTOCTL

COMMANDS = [
    [], ["create"], ["create", "monitor"], ["create", "postgres"], ["run"], ["stop"], ["status"],
    ["show"], ["show", "state"], ["show", "uri"], ["show", "events"], ["show", "settings"],
    ["show", "standby-names"], ["show", "systemd"],
    ["perform"], ["perform", "switchover"], ["perform", "failover"], ["perform", "promotion"],
    ["enable", "maintenance"], ["disable", "maintenance"],
    ["set", "node", "candidate-priority"], ["set", "node", "replication-quorum"],
    ["set", "formation", "number-sync-standbys"], ["drop", "node"],
]


@pytest.fixture(scope="module")
def monitor(formation_factory):
    f = formation_factory(port_offset=20)
    f.create_monitor()
    return f


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "autoctl")
def test_help_on_every_command(command):
    result = subprocess.run([AUTOCTL] + command + ["--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_bad_arguments_exit_1(monitor):
    assert monitor.autoctl("show", check=False).returncode == 1
    assert monitor.autoctl("show", "state", "--no-such-option", check=False).returncode == 1
    r = monitor.autoctl("set", "node", "candidate-priority", "101", "--name", "x", check=False)
    assert r.returncode == 1


def test_create_monitor_refuses_root(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only meaningful as root")
    r = subprocess.run([AUTOCTL, "create", "monitor", "--pgdata", str(tmp_path / "m"), "--pgport", "6499",
                        "--hostname", "127.0.0.1"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "root" in r.stderr and "runuser" in r.stderr
    assert not (tmp_path / "m").exists()


def test_unreachable_monitor_exit_2(monitor):
    r = monitor.autoctl("show", "state", "--monitor", "postgres://nobody@127.0.0.1:6498/autofailover", check=False)
    assert r.returncode == 2
    assert "cannot connect to the monitor" in r.stderr


def test_no_monitor_given_says_how(monitor):
    env = {k: v for k, v in monitor.env.items() if k != "AUTOFAILOVER_MONITOR"}
    r = subprocess.run(["runuser", "-u", "autofailover", "--", AUTOCTL, "show", "state"] if os.geteuid() == 0
                       else [AUTOCTL, "show", "state"], capture_output=True, text=True, env=env, cwd=monitor.workdir)
    assert r.returncode == 1
    assert "--monitor" in r.stderr and "AUTOFAILOVER_MONITOR" in r.stderr


def test_monitor_refusal_exit_2_with_the_monitor_message(monitor):
    r = monitor.autoctl("perform", "promotion", "--name", "no_such_node", check=False)
    assert r.returncode == 2
    assert "no_such_node" in r.stderr
    assert "CONTEXT" not in r.stderr


def test_show_commands_on_an_empty_formation(monitor):
    assert json.loads(monitor.autoctl("show", "state", "--json").stdout) == []
    assert "no node" in monitor.autoctl("show", "state").stdout
    settings = json.loads(monitor.autoctl("show", "settings", "--json").stdout)
    # The test monitor runs with the shortened timeout given by --setting.
    assert settings["autofailover.node_considered_unhealthy_timeout"] in ("2s", "2000ms", "2000")
    assert isinstance(json.loads(monitor.autoctl("show", "events", "--json").stdout), list)


def test_wait_times_out_with_exit_3(monitor):
    r = monitor.autoctl("show", "state", "--wait", "1", check=False)
    assert r.returncode == 3
    assert "not healthy" in r.stderr


def test_create_monitor_is_idempotent(monitor):
    again = monitor.autoctl("create", "monitor", "--pgdata", monitor.monitor_pgdata, "--pgport", monitor.port_base,
                            "--hostname", "127.0.0.1", "--setting", "node_considered_unhealthy_timeout=2000")
    assert again.stdout.strip() == monitor.keeper_uri


def test_show_systemd_for_the_monitor(monitor):
    unit = monitor.autoctl("show", "systemd", "--pgdata", monitor.monitor_pgdata).stdout
    assert "[Service]" in unit and monitor.monitor_pgdata in unit
    r = monitor.autoctl("show", "systemd", "--pgdata", monitor.workdir, check=False)
    assert r.returncode == 1


@pytest.mark.parametrize("bad", ['d q"x', "d`id`", "d$HOME", "d\\x", "d\nx"], ids=["quote", "backtick", "dollar",
                                                                                   "backslash", "newline"])
def test_create_refuses_pgdata_a_shell_would_interpret(monitor, bad):
    """security-review #14: pg_ctl hands pgdata to /bin/sh; such a path used to hang create until init-timeout."""
    pgdata = os.path.join(monitor.workdir, bad)
    r = monitor.autoctl("create", "monitor", "--pgdata", pgdata, "--pgport", monitor.port_base + 7,
                        "--hostname", "127.0.0.1", check=False, timeout=20)
    assert r.returncode == 1 and "must not contain" in r.stderr, r
    r = monitor.autoctl("create", "postgres", "--pgdata", pgdata, "--pgport", monitor.port_base + 8,
                        "--hostname", "127.0.0.1", "--monitor", monitor.keeper_uri, "--name", "bad_path",
                        "--replication-password-file", monitor.replication_password_file,
                        "--monitor-password-file", monitor.monitor_password_file, check=False, timeout=20)
    assert r.returncode == 1 and "must not contain" in r.stderr, r
    assert not os.path.exists(pgdata) and not os.path.exists(pgdata + ".keeper")
    assert "bad_path" not in monitor.state()


def test_create_refuses_a_hostname_that_is_no_host(monitor):
    for host in ("all", "bad host", "h'ost"):
        r = monitor.autoctl("create", "postgres", "--pgdata", os.path.join(monitor.workdir, "badhost"), "--pgport",
                            monitor.port_base + 8, "--hostname", host, "--monitor", monitor.keeper_uri,
                            "--replication-password-file", monitor.replication_password_file,
                            "--monitor-password-file", monitor.monitor_password_file, check=False, timeout=20)
        assert r.returncode == 1 and "--hostname" in r.stderr, r
