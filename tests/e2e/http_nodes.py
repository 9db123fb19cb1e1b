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

from formation import PG_BINDIR, as_user  # noqa: F401  (PG_BINDIR re-exported for the tests)
from processes import read_pid

# keeper HTTP port = Postgres port + this (autoctl show haproxy --http-port-offset).
HTTP_PORT_OFFSET = 10
# Socket timeout of one GET: the endpoint answers from memory, so a slow answer is a failure.
GET_TIMEOUT = 2.0


def http_port(node):
    return node.port + HTTP_PORT_OFFSET


def create_http_node(formation, name):
    """Formation.create_node with --http-port (through the CLI option, not by editing keeper.json)."""
    node = formation.new_node(name)
    formation.autoctl(*formation.create_args(node), "--http-port", http_port(node))
    formation._after_first_node(node)
    formation.shorten_keeper_timeouts(node)
    with open(os.path.join(node.state_dir, "keeper.json")) as f:
        config = json.load(f)
    assert config["http_port"] == http_port(node) and config["http_listen"] == "127.0.0.1", config
    node.start_keeper()
    return node


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
