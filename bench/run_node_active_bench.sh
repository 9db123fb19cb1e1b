#!/usr/bin/env bash
# Benchmark of the keeper protocol: N simulated nodes (groups of 3) each call
# node_active once per second (pgbench --rate N) over TCP 127.0.0.1 against a
# temporary monitor running the INSTALLED extension, its health-check worker
# probing all N nodes every second (closed ports). Prints calls/s and p50/p99.
# usage: run_node_active_bench.sh [N ...]   (default: 100 1000 10000)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
user=${AUTOFAILOVER_TEST_USER:-autofailover}
bindir=/usr/lib/postgresql/15/bin
duration=${BENCH_SECONDS:-30}
clients=${BENCH_CLIENTS:-8}
port=${BENCH_PORT:-7202}
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(100 1000 10000)

work=$(mktemp -d /tmp/autofailover-bench.XXXXXX)
chown "$user" "$work"
cp "$here/node_active.sql" "$here/settle.sql" "$work/"
as_user() { runuser -u "$user" -- "$@"; }
cleanup() {
  [ -f "$work/data/postmaster.pid" ] && as_user "$bindir/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

as_user "$bindir/initdb" -D "$work/data" -A trust -U "$user" >/dev/null
cat >> "$work/data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work'
shared_preload_libraries = 'autofailover'
max_connections = 100
shared_buffers = 256MB
synchronous_commit = on
autofailover.health_check_period = 1s
autofailover.health_check_max_retries = 0
autofailover.startup_grace_period = 0
CONF
as_user "$bindir/pg_ctl" -D "$work/data" -l "$work/postgres.log" -w start >/dev/null
psql_() { as_user psql -X -q -h 127.0.0.1 -p "$port" -v ON_ERROR_STOP=1 "$@"; }
psql_ -d postgres -c "CREATE DATABASE autofailover"
psql_ -d autofailover -c "CREATE EXTENSION autofailover" -c "SELECT autofailover.create_formation('bench')" \
  -f "$work/settle.sql" >/dev/null

registered=0
echo "nodes  calls/s  p50_ms  p99_ms  max_ms  p99_service_ms  failed  (clients=$clients, ${duration}s, rate=N/s)"
for n in "${sizes[@]}"; do
  # While registering and settling, keepers of the nodes not yet reached are
  # silent and their probes fail (closed ports): hold the unhealthy timeout off
  # so no group fails over before the measurement.
  psql_ -d autofailover -c "ALTER SYSTEM SET autofailover.node_considered_unhealthy_timeout = '1h'" \
    -c "ALTER SYSTEM SET autofailover.primary_suspect_timeout = '1h'" \
    -c "SELECT pg_reload_conf()" >/dev/null
  # Register up to n nodes: groups of 3.
  psql_ -d autofailover -c "SELECT count(*) FROM generate_series($((registered + 1)), $n) i,
      autofailover.register_node('bench', '127.0.0.1', 10000 + i, 'b' || i, group_id => (i - 1) / 3)" >/dev/null
  registered=$n
  # Settle every group (primary + 2 secondaries) with perfect keepers before measuring.
  psql_ -d autofailover -c "CALL bench_settle()"
  psql_ -d autofailover -Atc "SELECT 'settled: ' || string_agg(goal_state || '=' || c, ', ') FROM
      (SELECT goal_state, count(*) c FROM autofailover.nodes GROUP BY 1) s"
  bench() {
    as_user "$bindir/pgbench" -n -M prepared -h 127.0.0.1 -p "$port" -c "$clients" -j 2 --rate="$n" \
      -D nodes="$n" -D clients="$clients" -D i=0 -f "$work/node_active.sql" "$@" autofailover
  }
  # Warm-up at the target rate; once every node reported, the default timeout is back.
  bench -T 4 >/dev/null 2>&1 &
  sleep 2.5
  psql_ -d autofailover -c "ALTER SYSTEM RESET autofailover.node_considered_unhealthy_timeout" \
    -c "ALTER SYSTEM RESET autofailover.primary_suspect_timeout" \
    -c "SELECT pg_reload_conf()" >/dev/null
  wait
  rm -f "$work"/pgbench_log.*
  (cd "$work" && bench -T "$duration" -l --log-prefix="$work/pgbench_log" > "$work/pgbench.out" 2>&1) || true
  cat "$work"/pgbench_log.* | /usr/bin/python3 -c '
import sys
lat, svc, failed, first, last = [], [], 0, None, None
for line in sys.stdin:
    f = line.split()
    if f[2] == "skipped":
        failed += 1
        continue
    t = int(f[2]); lag = int(f[6]) if len(f) > 6 else 0
    lat.append(t / 1000.0); svc.append((t - lag) / 1000.0)
    ts = int(f[4]) + int(f[5]) / 1e6
    first = ts if first is None else min(first, ts); last = ts if last is None else max(last, ts)
lat.sort(); svc.sort()
pct = lambda a, p: a[min(len(a) - 1, int(p * len(a)))] if a else float("nan")
rate = len(lat) / (last - first) if lat and last > first else 0.0
print(f"{sys.argv[1]:>5}  {rate:7.0f}  {pct(lat, .5):6.2f}  {pct(lat, .99):6.2f}  {lat[-1] if lat else 0:6.1f}  {pct(svc, .99):14.2f}  {failed:6d}")
' "$n"
  grep -E "aborted|error" "$work/pgbench.out" || true
  psql_ -d autofailover -Atc "SELECT 'after: ' || string_agg(goal_state || '=' || c, ', ') FROM
      (SELECT goal_state, count(*) c FROM autofailover.nodes GROUP BY 1) s"
done
psql_ -d autofailover -Atc "SELECT 'groups deciding wait: ' || count(*) FROM autofailover.groups WHERE waiting_reason <> ''"
