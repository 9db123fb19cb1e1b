#!/usr/bin/python3
"""Server CPU per node_active call, a figure a busy machine does not skew the way latency is skewed.

Runs an unconstrained pgbench (the given script, as the benchmark user) against one monitor and reads
/proc for the CPU time of that postmaster's children between two samples: the backends serving the
calls, the monitor's background worker(s) ("health check"), and the rest (WAL writer, checkpointer...).
Calls are counted by pg_stat_user_functions (the instance needs track_functions = 'all').
Prints one line: label, calls/s, backend CPU microseconds per call, cores used by each kind of process.
"""
import argparse
import os
import subprocess
import time


def children_cpu(postmaster_pid):
    """pid -> (kind, CPU ticks) for the postmaster's children."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(") ", 1)[1].split()
            if fields[1] != postmaster_pid:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except (OSError, IndexError):
            continue
        kind = "backend" if "127.0.0.1(" in cmd else "worker" if "health check" in cmd else "other"
        out[pid] = (kind, int(fields[11]) + int(fields[12]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", required=True)
    ap.add_argument("--pgdata", required=True)
    ap.add_argument("--port", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--script", required=True)
    ap.add_argument("--nodes", required=True)
    ap.add_argument("--clients", default="4")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--user", default="autofailover")
    ap.add_argument("--bindir", default="/usr/lib/postgresql/15/bin")
    a = ap.parse_args()
    with open(os.path.join(a.pgdata, "postmaster.pid")) as f:
        postmaster = f.readline().strip()
    as_user = ["runuser", "-u", a.user, "--"]

    def calls():
        r = subprocess.run(as_user + ["psql", "-X", "-h", "127.0.0.1", "-p", a.port, "-d", a.db, "-Atc",
                                      "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions "
                                      "WHERE funcname = 'node_active'"],
                           capture_output=True, text=True, check=True)
        return int(r.stdout.strip())

    bench = subprocess.Popen(as_user + [f"{a.bindir}/pgbench", "-n", "-M", "prepared", "-h", "127.0.0.1", "-p", a.port,
                                        "-c", a.clients, "-j", "2", "-T", str(a.seconds), "-D", f"nodes={a.nodes}",
                                        "-D", f"clients={a.clients}", "-D", "i=0", "-f", a.script, a.db],
                             cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(3)  # connections made, plans prepared
    before, calls0, t0 = children_cpu(postmaster), calls(), time.monotonic()
    time.sleep(max(1, a.seconds - 5))
    after, calls1, t1 = children_cpu(postmaster), calls(), time.monotonic()
    output = bench.communicate()[0]
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid, (kind, cpu) in after.items():
        used[kind] = used.get(kind, 0.0) + (cpu - before.get(pid, (kind, 0))[1]) / ticks
    n, dt = calls1 - calls0, t1 - t0
    per_call = 1e6 * used.get("backend", 0.0) / n if n else float("nan")
    print(f"{a.label:<16} {a.nodes:>6} {n / dt:8.0f} {per_call:12.0f} {used.get('backend', 0.0) / dt:9.2f} "
          f"{used.get('worker', 0.0) / dt:8.2f} {used.get('other', 0.0) / dt:7.2f}  load {os.getloadavg()[0]:.1f}")
    for line in output.splitlines():
        if "error" in line.lower() or "aborted" in line:
            print("  pgbench:", line)


if __name__ == "__main__":
    main()
