"""A client that writes through a multi-host URI and records everything it saw.

Module API (psycopg 3; used in-process by tests/e2e and tests/faults, or as a CLI)
-------------------------------------------------------------------------------
    from writer import Writer, Attempt

    w = Writer(uri, table="autofailover_writer", rate=50, name="s1")
    w.start()                 # background thread; returns at once
    w.wait_for_acks(20)       # block until 20 more commits were acknowledged (AssertionError on timeout)
    ...                       # inject the fault
    w.stop()                  # stops the thread (idempotent); also: `with Writer(...) as w:`
    w.attempts                # list[Attempt], one per INSERT sent, in order
    w.connects                # list[Connect], one per connection attempt
    w.started_at, w.stopped_at
    w.save("records.jsonl")   # JSON lines, loadable with checker.load_records()

Each INSERT is its own transaction (autocommit), one row per commit: (id bigint primary key, payload text).
Ids are unique across writers and runs (microsecond clock base + counter), so several writers may share the
table. An Attempt records:
    id, t_sent, t_done (time.time() seconds), status, server, error
status:
    "ack"      the server acknowledged the commit (COMMIT returned, no warning): the row must survive.
    "fail"     the server refused it with an error that guarantees no commit (read-only, etc.).
    "unknown"  the outcome is unknown: the connection broke while the commit was in flight, or the commit
               had to be cancelled after `commit_timeout` (PostgreSQL then commits locally and only warns
               that synchronous replication was not confirmed: that is not an acknowledgement).
server is "addr:port" of the server that answered (inet_server_addr()/inet_server_port(), falling back to
the libpq host for Unix sockets), plus "#<system_identifier>" so a reinitialized node is told apart
(standbys share the system identifier of their primary, so the address is what tells nodes apart).

Every wait is a named constructor argument: connect_timeout, commit_timeout, retry_delay, rate.
The writer reconnects after every failure, through the same multi-host URI, so libpq picks whichever host
accepts writes (target_session_attrs=read-write is added unless the URI says otherwise).

CLI:
    /usr/bin/python3 tests/common/writer.py --uri URI [--rate 50] [--duration S] [--out FILE] [--table T]
runs until --duration or SIGINT/SIGTERM, then writes the records (JSON lines) to --out and prints a summary.
"""

import argparse
import dataclasses
import json
import signal
import sys
import threading
import time

import psycopg
from psycopg import errors as pgerrors

DEFAULT_TABLE = "autofailover_writer"
DEFAULT_RATE = 50.0            # commits per second at most
DEFAULT_CONNECT_TIMEOUT = 2    # seconds, libpq connect_timeout per host
DEFAULT_COMMIT_TIMEOUT = 5.0   # seconds before an in-flight commit is cancelled (outcome then "unknown")
DEFAULT_RETRY_DELAY = 0.1      # seconds between two connection attempts
DEFAULT_ACK_WAIT = 60.0        # seconds wait_for_acks waits by default

# Errors after which the transaction surely did not commit.
_DEFINITE_FAILURES = (pgerrors.ReadOnlySqlTransaction, pgerrors.UniqueViolation, pgerrors.UndefinedTable,
                      pgerrors.AdminShutdown, pgerrors.CannotConnectNow)


@dataclasses.dataclass
class Attempt:
    id: int
    t_sent: float
    t_done: float
    status: str          # "ack" | "fail" | "unknown"
    server: str
    error: str = ""
    writer: str = ""
    kind: str = "insert"


@dataclasses.dataclass
class Connect:
    t_start: float
    t_done: float
    ok: bool
    server: str
    error: str = ""
    writer: str = ""
    kind: str = "connect"


def _with_defaults(uri, connect_timeout):
    """Adds target_session_attrs / connect_timeout / keepalives unless the URI sets them."""
    extra = {
        "target_session_attrs": "read-write",
        "connect_timeout": str(connect_timeout),
        "keepalives": "1", "keepalives_idle": "1", "keepalives_interval": "1", "keepalives_count": "3",
    }
    low = uri.lower()
    if low.startswith("postgres://") or low.startswith("postgresql://"):
        add = [f"{k}={v}" for k, v in extra.items() if f"{k}=" not in low]
        if not add:
            return uri
        return uri + ("&" if "?" in uri else "?") + "&".join(add)
    add = [f"{k}={v}" for k, v in extra.items() if f"{k}=" not in low]
    return (uri + " " + " ".join(add)).strip()


class Writer:
    def __init__(self, uri, table=DEFAULT_TABLE, rate=DEFAULT_RATE, name="writer",
                 connect_timeout=DEFAULT_CONNECT_TIMEOUT, commit_timeout=DEFAULT_COMMIT_TIMEOUT,
                 retry_delay=DEFAULT_RETRY_DELAY, add_defaults=True):
        self.uri = _with_defaults(uri, connect_timeout) if add_defaults else uri
        self.table = table
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self.name = name
        self.commit_timeout = commit_timeout
        self.retry_delay = retry_delay
        self.attempts = []
        self.connects = []
        self.started_at = None
        self.stopped_at = None
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()
        self._acked = threading.Condition(self._lock)
        self._ack_count = 0
        self._id_base = time.time_ns() // 1000 * 1000
        self._next = 0
        self._table_ready = False
        self._warnings = []

    # -- public API ------------------------------------------------------------
    def start(self):
        assert self._thread is None, "writer already started"
        self.started_at = time.time()
        self._thread = threading.Thread(target=self._run, name=f"writer-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=None):
        """Stops the loop; waits for the in-flight commit (at most commit_timeout + a margin)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.commit_timeout + 5.0)
        if self.stopped_at is None:
            self.stopped_at = time.time()
        with self._lock:
            self._acked.notify_all()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def ack_count(self):
        with self._lock:
            return self._ack_count

    def acked_ids(self):
        with self._lock:
            return [a.id for a in self.attempts if a.status == "ack"]

    def wait_for_acks(self, n, timeout=DEFAULT_ACK_WAIT):
        """Blocks until n more commits than now are acknowledged."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._ack_count + n
            while self._ack_count < target:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    last = self.attempts[-1] if self.attempts else None
                    raise AssertionError(f"writer {self.name}: {self._ack_count}/{target} acks after {timeout}s; "
                                         f"last attempt: {last}; last connect: "
                                         f"{self.connects[-1] if self.connects else None}")
                self._acked.wait(min(left, 0.5))

    def records(self):
        with self._lock:
            return list(self.attempts) + list(self.connects)

    def save(self, path):
        with open(path, "w") as f:
            f.write(json.dumps({"kind": "writer", "name": self.name, "started_at": self.started_at,
                                "stopped_at": self.stopped_at, "interval": self.interval}) + "\n")
            for r in self.records():
                f.write(json.dumps(dataclasses.asdict(r)) + "\n")

    # -- loop ------------------------------------------------------------------
    def _connect(self):
        t0 = time.time()
        try:
            conn = psycopg.connect(self.uri, autocommit=True)
        except Exception as e:  # noqa: BLE001 - any failure is recorded and retried
            self.connects.append(Connect(t0, time.time(), False, "", _short(e), self.name))
            return None, None
        try:
            conn.add_notice_handler(self._on_notice)
            row = conn.execute("SELECT inet_server_addr()::text, inet_server_port(), "
                               "(SELECT system_identifier FROM pg_control_system())").fetchone()
            addr = row[0].split("/")[0] if row[0] else conn.info.host
            port = row[1] if row[1] is not None else conn.info.port
            server = f"{addr}:{port}#{row[2]}"
            if not self._table_ready:
                conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (id bigint PRIMARY KEY, payload text)")
                self._table_ready = True
        except Exception as e:  # noqa: BLE001
            self.connects.append(Connect(t0, time.time(), False, "", _short(e), self.name))
            _close(conn)
            return None, None
        self.connects.append(Connect(t0, time.time(), True, server, "", self.name))
        return conn, server

    def _on_notice(self, diag):
        self._warnings.append(diag.message_primary or "")

    def _run(self):
        conn, server = None, None
        next_slot = time.monotonic()
        try:
            while not self._stop.is_set():
                if conn is None:
                    conn, server = self._connect()
                    if conn is None:
                        self._stop.wait(self.retry_delay)
                        continue
                now = time.monotonic()
                if next_slot > now:
                    self._stop.wait(next_slot - now)
                    if self._stop.is_set():
                        break
                next_slot = max(next_slot + self.interval, time.monotonic())
                if not self._insert(conn, server):
                    _close(conn)
                    conn, server = None, None
        finally:
            _close(conn)
            self.stopped_at = time.time()
            with self._lock:
                self._acked.notify_all()

    def _insert(self, conn, server):
        """One commit; returns False when the connection must be dropped."""
        row_id = self._id_base + self._next
        self._next += 1
        self._warnings.clear()
        timer = threading.Timer(self.commit_timeout, _cancel, (conn,))
        timer.daemon = True
        t0 = time.time()
        timer.start()
        try:
            conn.execute(f"INSERT INTO {self.table} (id, payload) VALUES (%s, %s)", (row_id, self.name))
            status, error, keep = "ack", "", True
        except _DEFINITE_FAILURES as e:
            status, error, keep = "fail", _short(e), False
        except Exception as e:  # noqa: BLE001 - connection lost / cancelled mid-commit: outcome unknown
            status, error, keep = "unknown", _short(e), False
        finally:
            timer.cancel()
        t1 = time.time()
        if status == "ack" and any("synchronous replication" in w for w in self._warnings):
            # the commit wait was cancelled: committed locally only, never acknowledged as durable
            status, error, keep = "unknown", "cancelled sync rep wait: " + "; ".join(self._warnings), False
        with self._lock:
            self.attempts.append(Attempt(row_id, t0, t1, status, server, error, self.name))
            if status == "ack":
                self._ack_count += 1
                self._acked.notify_all()
        return keep


def _cancel(conn):
    try:
        conn.cancel()
    except Exception:  # noqa: BLE001 - best effort
        pass


def _close(conn):
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass


def _short(e):
    return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:300]


def main(argv=None):
    p = argparse.ArgumentParser(description="Write one row per commit through a multi-host URI and record it.")
    p.add_argument("--uri", required=True)
    p.add_argument("--table", default=DEFAULT_TABLE)
    p.add_argument("--rate", type=float, default=DEFAULT_RATE)
    p.add_argument("--duration", type=float, default=0, help="seconds; 0 = until SIGINT/SIGTERM")
    p.add_argument("--connect-timeout", type=int, default=DEFAULT_CONNECT_TIMEOUT)
    p.add_argument("--commit-timeout", type=float, default=DEFAULT_COMMIT_TIMEOUT)
    p.add_argument("--name", default="writer")
    p.add_argument("--out", help="JSON lines file for the records")
    args = p.parse_args(argv)
    w = Writer(args.uri, args.table, args.rate, args.name, args.connect_timeout, args.commit_timeout)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    w.start()
    done.wait(args.duration if args.duration > 0 else None)
    w.stop()
    if args.out:
        w.save(args.out)
    counts = {}
    for a in w.attempts:
        counts[a.status] = counts.get(a.status, 0) + 1
    print(json.dumps({"attempts": len(w.attempts), **counts,
                      "servers": sorted({a.server for a in w.attempts if a.status == "ack"})}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
