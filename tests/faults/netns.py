"""Network-namespace harness: one namespace per host, veth pairs to a bridge in the root namespace.

    net = Net()                         # unique prefix, e.g. "afn3f2a"; takes /run/autofailover-netns.lock
    mon = net.add_host("mon")           # namespace afn3f2a-mon, eth0 = 10.200.0.10/24
    n1 = net.add_host("n1")             # 10.200.0.11, ...
    p = n1.popen([...], user=True)      # process inside the namespace, as the unprivileged test user
    n1.run([...])                       # same, waits (CompletedProcess)
    net.isolate(n1) / net.heal(n1)      # root-side veth down/up: n1 reaches nobody, nobody reaches n1
    net.cut(n1, mon) / net.uncut(n1, mon)   # blackhole routes both ways: only n1 <-> mon is cut
    net.flap(n1, period_s, duration_s)  # background thread: link down/up every period (no netem here)
    net.kill_all(n1, sig)               # every process of the namespace, by pid (ip netns pids)
    net.crash(n1)                       # power loss: isolate, then SIGKILL every process of the namespace
    net.teardown()                      # kills what runs inside, deletes namespaces, veths and the bridge

The root namespace holds the bridge with 10.200.0.1/24: the test process (the "application") reaches
every host through it, like any other client on the network. Unix sockets are not network-namespaced,
so probes through a node's socket directory still see a partitioned node.

Teardown always runs: Net.teardown() is registered with atexit and tests call it in finally; leftovers of
crashed runs are removed by `cleanup()` (all namespaces/links named afn*), also as a CLI:
    /usr/bin/python3 tests/faults/netns.py cleanup
Needs root and iproute2; `netns_unavailable()` returns the reason when it cannot work, so tests skip.
Settings: SUBNET (10.200.0), PREFIX (afn). Only addresses inside namespaces this harness creates are used.
"""

import atexit
import fcntl
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid

PREFIX = "afn"
SUBNET = os.environ.get("AUTOFAILOVER_FAULTS_SUBNET", "10.200.0")   # a /24 used only inside our namespaces
TEST_USER = os.environ.get("AUTOFAILOVER_TEST_USER", "autofailover")
LOCK_PATH = "/run/autofailover-netns.lock"
IP = shutil.which("ip") or "/usr/sbin/ip"


def sh(*argv, check=True, timeout=30):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {r.returncode}: {r.stderr.strip()}")
    return r


def netns_unavailable():
    """None when namespaces, veth and bridges work here; otherwise the reason (for pytest.skip)."""
    if os.geteuid() != 0:
        return "network-namespace fault tests need root (ip netns add)"
    if not os.path.exists(IP):
        return "iproute2 (ip) is not installed"
    probe = f"{PREFIX}chk{os.getpid() % 100000}"
    try:
        sh(IP, "netns", "add", probe)
        sh(IP, "netns", "exec", probe, IP, "link", "set", "lo", "up")
    except Exception as e:  # noqa: BLE001
        return f"ip netns does not work in this sandbox: {e}"
    finally:
        sh(IP, "netns", "del", probe, check=False)
    return None


def as_user_argv(argv):
    pw = pwd.getpwnam(TEST_USER)
    return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--"] + list(argv)


class NamespaceHost:
    """One host of the network: its namespace, its address on the bridge, and how to run a program inside it
    (the host strategy of tests/common/formation_base.py for the fault suite)."""

    def __init__(self, net, name, index):
        self.net = net
        self.name = name
        self.ns = f"{net.prefix}-{name}"
        self.ip = f"{SUBNET}.{10 + index}"
        self.veth = f"{net.prefix}{name}"[:15]     # root side, enslaved to the bridge
        self.isolated = False
        self.cut_from = set()

    def argv(self, argv, user=True):
        inner = as_user_argv(argv) if user else list(argv)
        return [IP, "netns", "exec", self.ns] + [str(a) for a in inner]

    def popen(self, argv, user=True, **kw):
        """ip netns exec and setpriv both exec in place: the Popen's pid is the program's pid. Runs in /
        unless told otherwise: the test user may not enter the test process's directory (a clone in /root)."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("cwd", "/")
        kw.setdefault("start_new_session", True)
        return subprocess.Popen(self.argv(argv, user), **kw)

    def run(self, argv, user=True, check=True, timeout=180, **kw):
        kw.setdefault("cwd", "/")
        r = subprocess.run(self.argv(argv, user), capture_output=True, text=True, timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"[{self.name}] {' '.join(map(str, argv))} exited {r.returncode}\n"
                                 f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def pids(self):
        r = sh(IP, "netns", "pids", self.ns, check=False)
        return [int(p) for p in r.stdout.split()] if r.returncode == 0 else []

    def __repr__(self):
        return f"Host({self.name} {self.ip} ns={self.ns})"


Host = NamespaceHost


class Net:
    def __init__(self, prefix=None):
        self.prefix = prefix or f"{PREFIX}{uuid.uuid4().hex[:4]}"
        self.bridge = f"{self.prefix}br"
        self.hosts = {}
        self._flappers = []
        self._torn_down = False
        self._lock = open(LOCK_PATH, "w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)   # one harness at a time: they share the subnet
        cleanup()                                # leftovers of a crashed run
        atexit.register(self.teardown)
        sh(IP, "link", "add", self.bridge, "type", "bridge")
        sh(IP, "addr", "add", f"{SUBNET}.1/24", "dev", self.bridge)
        sh(IP, "link", "set", self.bridge, "up")

    def add_host(self, name):
        host = NamespaceHost(self, name, len(self.hosts))
        sh(IP, "netns", "add", host.ns)
        sh(IP, "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.ns)
        sh(IP, "link", "set", host.veth, "master", self.bridge)
        sh(IP, "link", "set", host.veth, "up")
        for cmd in (["link", "set", "lo", "up"], ["addr", "add", f"{host.ip}/24", "dev", "eth0"],
                    ["link", "set", "eth0", "up"]):
            sh(IP, "netns", "exec", host.ns, IP, *cmd)
        self.hosts[name] = host
        return host

    # -- faults ------------------------------------------------------------------
    def isolate(self, host):
        sh(IP, "link", "set", host.veth, "down")
        host.isolated = True

    def heal(self, host):
        sh(IP, "link", "set", host.veth, "up")
        host.isolated = False

    def cut(self, a, b):
        """a and b no longer reach each other (both keep reaching everyone else)."""
        sh(IP, "netns", "exec", a.ns, IP, "route", "add", "blackhole", f"{b.ip}/32")
        sh(IP, "netns", "exec", b.ns, IP, "route", "add", "blackhole", f"{a.ip}/32")
        a.cut_from.add(b.name)
        b.cut_from.add(a.name)

    def uncut(self, a, b):
        sh(IP, "netns", "exec", a.ns, IP, "route", "del", "blackhole", f"{b.ip}/32", check=False)
        sh(IP, "netns", "exec", b.ns, IP, "route", "del", "blackhole", f"{a.ip}/32", check=False)
        a.cut_from.discard(b.name)
        b.cut_from.discard(a.name)

    def heal_all(self):
        self.stop_flapping()
        for h in self.hosts.values():
            if h.isolated:
                self.heal(h)
            for other in list(h.cut_from):
                self.uncut(h, self.hosts[other])

    def flap(self, host, period_s, duration_s):
        """Link down and up every period_s for duration_s (tc netem is not available in this kernel)."""
        stop = threading.Event()

        def loop():
            end = time.monotonic() + duration_s
            down = False
            while not stop.is_set() and time.monotonic() < end:
                sh(IP, "link", "set", host.veth, "up" if down else "down", check=False)
                down = not down
                stop.wait(period_s)
            sh(IP, "link", "set", host.veth, "up", check=False)

        t = threading.Thread(target=loop, daemon=True, name=f"flap-{host.name}")
        t.start()
        self._flappers.append((stop, t))
        return t

    def stop_flapping(self):
        for stop, t in self._flappers:
            stop.set()
            t.join(10)
        self._flappers = []

    def crash(self, host, wait_s=10.0):
        """Power loss: the link goes first (nothing more leaves the host), then every process of the namespace
        is SIGKILLed; returns once none is left (or after wait_s)."""
        self.isolate(host)
        self.kill_all(host, signal.SIGKILL)
        deadline = time.monotonic() + wait_s
        while host.pids() and time.monotonic() < deadline:
            time.sleep(0.05)

    def kill_all(self, host, sig=signal.SIGKILL):
        """Every process running in the host's namespace (a machine crash), by pid."""
        pids = host.pids()
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return pids

    def teardown(self):
        if self._torn_down:
            return
        self._torn_down = True
        self.stop_flapping()
        for h in self.hosts.values():
            _kill_namespace_pids(h.ns)
        _delete(self.prefix)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
        except Exception:  # noqa: BLE001
            pass


def _kill_namespace_pids(ns, wait_s=10.0):
    r = sh(IP, "netns", "pids", ns, check=False)
    pids = [int(p) for p in r.stdout.split()] if r.returncode == 0 else []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + wait_s
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if os.path.exists(f"/proc/{p}")]
        for p in pids:
            try:
                os.waitpid(p, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.05)


def _delete(prefix):
    r = sh(IP, "netns", "list", check=False)
    for line in r.stdout.splitlines():
        ns = line.split()[0] if line.split() else ""
        if ns.startswith(prefix):
            _kill_namespace_pids(ns)
            sh(IP, "netns", "del", ns, check=False)
    r = sh(IP, "-o", "link", "show", check=False)
    for line in r.stdout.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            name = parts[1].strip().split("@")[0]
            if name.startswith(prefix):
                sh(IP, "link", "del", name, check=False)


def cleanup():
    """Removes every namespace and link of this harness (prefix afn), killing what still runs inside."""
    _delete(PREFIX)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "cleanup":
        cleanup()
        print("removed leftover afn* namespaces and links")
    else:
        print(netns_unavailable() or "network namespaces work here")
