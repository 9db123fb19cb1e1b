"""The application of tests/faults/test_clients.py, run inside its own network namespace: tests/common/writer.py's
Writer through the multi-host URI, its acknowledged-commit count in --progress (rewritten every 50 ms, so the
test can wait for commits), every record in --out (JSON lines, checker.load_records) once SIGTERM arrives.

    ip netns exec NS /usr/bin/python3 tests/faults/app_writer.py --uri URI --out F --progress P [--rate 50]
"""

import argparse
import json
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import writer  # noqa: E402


def _write_progress(path, w):
    last_connect = w.connects[-1] if w.connects else None
    text = json.dumps({"acks": w.ack_count,
                       "last_connect_error": last_connect.error if last_connect and not last_connect.ok else ""})
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--uri", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--progress", required=True)
    p.add_argument("--name", default="app")
    p.add_argument("--rate", type=float, default=writer.DEFAULT_RATE)
    p.add_argument("--commit-timeout", type=float, default=writer.DEFAULT_COMMIT_TIMEOUT)
    args = p.parse_args()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    # The URI carries its own timeouts (docs/clients.md); nothing is added to it.
    w = writer.Writer(args.uri, rate=args.rate, name=args.name, commit_timeout=args.commit_timeout,
                      add_defaults=False)
    w.start()
    while not done.wait(0.05):
        _write_progress(args.progress, w)
    w.stop()
    w.save(args.out)
    _write_progress(args.progress, w)
    return 0


if __name__ == "__main__":
    sys.exit(main())
