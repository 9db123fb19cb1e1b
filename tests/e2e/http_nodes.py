"""Helpers of the HTTP-endpoint e2e tests (test_http_endpoint.py, test_haproxy.py): a formation whose
keepers serve `--http-port` (each node's Postgres port plus HTTP_PORT_OFFSET, on 127.0.0.1, the
default listen address), GET requests that never raise, and the processes of a Postgres cluster
(to freeze a node or the monitor with SIGSTOP)."""

import json
import os
import signal
import time
import urllib.error
import urllib.request


from processes import read_pid, user_ids

# keeper HTTP port = Postgres port + this (autoctl show haproxy --http-port-offset).
HTTP_PORT_OFFSET = 10
# Socket timeout of one GET: the endpoint answers from memory, so a slow answer is a failure.
GET_TIMEOUT = 2.0


def http_port(node):
    return node.port + HTTP_PORT_OFFSET


def create_http_node(formation, name, hooks=None, candidate_priority=50):
    """Formation.create_node with --http-port (through the CLI option, not by editing keeper.json).
    hooks: keeper.json "hooks" (default: hook_script() for on_start, on_role_change, on_fence)."""
    node = formation.new_node(name)
    formation.autoctl(*formation.create_args(node, candidate_priority), "--http-port", http_port(node))
    formation._after_first_node(node)
    formation.shorten_keeper_timeouts(node)
    path = os.path.join(node.state_dir, "keeper.json")
    with open(path) as f:
        config = json.load(f)
    assert config["http_port"] == http_port(node) and config["http_listen"] == "127.0.0.1", config
    if hooks is None:
        # Every hook appends one line to hooks.log (hook_lines() reads it).
        hook = hook_script(formation)
        hooks = {"on_start": hook, "on_role_change": hook, "on_fence": hook, "timeout_ms": 5000}
    config["hooks"] = hooks
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(config, f, indent=2)
    os.chown(tmp, *user_ids())
    os.replace(tmp, path)
    node.start_keeper()
    return node


def hook_script(formation):
    path = os.path.join(formation.workdir, "hook.sh")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho \"$AUTOFAILOVER_HOOK $AUTOFAILOVER_NODE $AUTOFAILOVER_OLD_ROLE "
                    "$AUTOFAILOVER_NEW_ROLE $AUTOFAILOVER_PRIMARY_NAME $AUTOFAILOVER_PRIMARY_PORT\" >> "
                    f"{os.path.join(formation.workdir, 'hooks.log')}\n")
        os.chmod(path, 0o755)
    return path


def wait_hook_line(formation, prefix, timeout=10.0):
    """Until hooks.log has a line starting with prefix; returns it."""
    path = os.path.join(formation.workdir, "hooks.log")
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
        for line in lines:
            if line.startswith(prefix):
                return line
        time.sleep(0.1)
    raise AssertionError(f"no hook line starting {prefix!r} in {path}: {lines}")


def get(node, path, method="GET"):
    """(status, body) of one request to the node's keeper; status None when nothing answered."""
    req = urllib.request.Request(f"http://127.0.0.1:{http_port(node)}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=GET_TIMEOUT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError):
        return None, ""


def status(node, path):
    return get(node, path)[0]


def state(node):
    code, body = get(node, "/state")
    assert code == 200, f"/state of {node.name}: {code} {body}"
    return json.loads(body)


def wait_status(node, path, expected, timeout=15.0, interval=0.05):
    """Polls until GET path answers `expected`; returns the seconds it took."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout:
        last = get(node, path)
        if last[0] == expected:
            return time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"{node.name} {path}: expected {expected} within {timeout}s, last answer {last}\n"
                         + node.log_tail(20))


def cluster_pids(pgdata):
    """The postmaster of pgdata and all its children (backends, walsender/receiver, workers)."""
    postmaster = read_pid(os.path.join(pgdata, "postmaster.pid"))
    if postmaster is None:
        return []
    pids = [postmaster]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == postmaster:
            pids.append(int(entry))
    return pids


def signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def freeze(pids):
    signal_all(pids, signal.SIGSTOP)


def thaw(pids):
    signal_all(pids, signal.SIGCONT)
