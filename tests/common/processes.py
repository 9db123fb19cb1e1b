"""Processes of the test formations (e2e and faults): the unprivileged test user, pid files, and stopping a
process by its PID, never by name."""

import os
import pwd
import signal
import time

TEST_USER = os.environ.get("AUTOFAILOVER_TEST_USER", "autofailover")
# How long a process may take to exit after a signal before SIGKILL.
STOP_TIMEOUT = 15.0


def user_ids():
    pw = pwd.getpwnam(TEST_USER)
    return pw.pw_uid, pw.pw_gid


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid):
    """True while pid runs; a zombie (dead, not yet reaped) counts as gone."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_pid(pid, sig, timeout=STOP_TIMEOUT):
    """Signal pid (SIGCONT first: it may be paused), wait for it to go away, SIGKILL after timeout."""
    if not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)  # our own child (a Popen) must be reaped to disappear
        except ChildProcessError:
            pass
        time.sleep(0.05)
    if pid_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def children_of(pid):
    """PIDs whose parent is pid (from /proc): a postmaster's backends and workers."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry))
        except (OSError, IndexError, ValueError):
            pass
    return out
