#!/usr/bin/env bash
# Monitor capacity side by side: the same node_active load (N simulated nodes in
# groups of 3, each calling once per second: pgbench --rate N, same client count)
# against autofailover's monitor (INSTALLED extension) and pg_auto_failover 2.0's
# monitor (Debian postgresql-15-auto-failover). Both the same way by default: health
# checks off and every node marked healthy (the simulated nodes have no Postgres),
# so standbys reach secondary and our steady groups' heartbeats are answered from
# shared memory. BENCH_AF_PROBES=on: our health worker probes all N closed ports every
# second instead (every node then looks down, no group is steady: the full path).
# Two PostgreSQL instances run as the autofailover user; for each N the two are
# measured one after the other.
# usage: run_node_active_sidebyside.sh [N ...]   (default: 1000 3000 10000)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
user=${AUTOFAILOVER_TEST_USER:-autofailover}
bindir=/usr/lib/postgresql/15/bin
duration=${BENCH_SECONDS:-20}
clients=${BENCH_CLIENTS:-8}
port_af=${BENCH_PORT:-7200}
port_pgaf=${BENCH_PGAF_PORT:-7201}
af_probes=${BENCH_AF_PROBES:-off}
# 0: our monitor answers every heartbeat by the full path (the figures before steady answers).
af_steady_slots=${BENCH_AF_STEADY_SLOTS:-16384}
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(1000 3000 10000)
[ -f /usr/share/postgresql/15/extension/pgautofailover.control ] || {
  echo "pg_auto_failover's monitor is not installed (apt-get install postgresql-15-auto-failover)" >&2; exit 2; }

work=$(mktemp -d /tmp/autofailover-sbs.XXXXXX)
chown "$user" "$work"
chmod 755 "$work"
cp "$here"/node_active.sql "$here"/settle.sql "$here"/pgaf_node_active.sql "$here"/pgaf_settle.sql "$work/"
as_user() { runuser -u "$user" -- "$@"; }
cleanup() {
  for d in af pgaf; do
    [ -f "$work/$d/postmaster.pid" ] && as_user "$bindir/pg_ctl" -D "$work/$d" -m fast -w stop >/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

start_pg() { # dir port preload extra-conf
  as_user "$bindir/initdb" -D "$work/$1" -A trust -U "$user" >/dev/null
  cat >> "$work/$1/postgresql.conf" <<CONF
port = $2
listen_addresses = '127.0.0.1'
unix_socket_directories = '$work'
shared_preload_libraries = '$3'
max_connections = 100
shared_buffers = 256MB
synchronous_commit = on
track_functions = 'all'
$4
CONF
  as_user "$bindir/pg_ctl" -D "$work/$1" -l "$work/$1.log" -w start >/dev/null
}
af_probe_period=1h
[ "$af_probes" = on ] && af_probe_period=1s
start_pg af "$port_af" autofailover "autofailover.health_check_period = $af_probe_period
autofailover.health_check_max_retries = 0
autofailover.steady_answer_slots = $af_steady_slots
autofailover.startup_grace_period = 0"
start_pg pgaf "$port_pgaf" pgautofailover "pgautofailover.enable_health_checks = off"
psql_() { local p=$1; shift; as_user psql -X -q -h 127.0.0.1 -p "$p" -v ON_ERROR_STOP=1 "$@"; }
psql_ "$port_af" -d postgres -c "CREATE DATABASE autofailover"
psql_ "$port_af" -d autofailover -c "CREATE EXTENSION autofailover" \
  -c "SELECT autofailover.create_formation('bench')" -f "$work/settle.sql" >/dev/null
psql_ "$port_pgaf" -d postgres -c "CREATE DATABASE pg_auto_failover"
psql_ "$port_pgaf" -d pg_auto_failover -c "CREATE EXTENSION pgautofailover CASCADE" -f "$work/pgaf_settle.sql" >/dev/null

# pgbench per-transaction log -> one result line. The last figure is the p99 of the calls that
# started after the first BENCH_STEADY_AFTER seconds (default 5) of the run: pgbench opens new
# sessions for each run, so every simulated keeper's first report of a run is that of a reconnected
# keeper (our monitor decides it by the full path); what follows is the steady state.
summarize() { /usr/bin/python3 -c '
import sys
steady_after = float(sys.argv[1])
rows, skipped = [], 0
for line in sys.stdin:
    f = line.split()
    if f[2] == "skipped":
        skipped += 1
        continue
    t = int(f[2]); lag = int(f[6]) if len(f) > 6 else 0
    done = int(f[4]) + int(f[5]) / 1e6
    rows.append((done - t / 1e6, done, t / 1000.0, (t - lag) / 1000.0))
scheduled_first = min(r[0] for r in rows) if rows else 0.0
first = min(r[1] for r in rows) if rows else 0.0
last = max(r[1] for r in rows) if rows else 0.0
lat = sorted(r[2] for r in rows); svc = sorted(r[3] for r in rows)
# Calls scheduled after the first seconds; none done means the monitor never caught up in the run.
steady = sorted(r[2] for r in rows if r[0] >= scheduled_first + steady_after)
pct = lambda a, p: a[min(len(a) - 1, int(p * len(a)))] if a else float("nan")
rate = len(lat) / (last - first) if lat and last > first else 0.0
steady_p99 = f"{pct(steady, .99):.2f}" if steady else "none_done"
print(f"{rate:.0f} {pct(lat, .5):.2f} {pct(lat, .99):.2f} {lat[-1] if lat else 0:.1f} {pct(svc, .99):.2f} {steady_p99}")
' "${BENCH_STEADY_AFTER:-5}"; }
run_load() { # port db script n -> prints "calls/s p50 p99 max svc_p99"
  local p=$1 db=$2 script=$3 n=$4 tag=$5
  as_user "$bindir/pgbench" -n -M prepared -h 127.0.0.1 -p "$p" -c "$clients" -j 2 --rate="$n" \
    -D nodes="$n" -D clients="$clients" -D i=0 -f "$work/$script" -T 4 "$db" >/dev/null 2>&1 || true
  rm -f "$work"/log_"$tag".*
  (cd "$work" && as_user "$bindir/pgbench" -n -M prepared -h 127.0.0.1 -p "$p" -c "$clients" -j 2 --rate="$n" \
    -D nodes="$n" -D clients="$clients" -D i=0 -f "$work/$script" -T "$duration" -l --log-prefix="$work/log_$tag" \
    "$db" > "$work/pgbench_$tag.out" 2>&1) || true
  cat "$work"/log_"$tag".* | summarize
}

cost_seconds=${BENCH_COST_SECONDS:-15}
cost_rows=()
cost() { # port datadir db script label n
  /usr/bin/python3 "$here/cpu_per_call.py" --label "$5" --pgdata "$work/$2" --port "$1" --db "$3" \
    --script "$work/$4" --nodes "$6" --clients "$clients" --seconds "$cost_seconds" --user "$user"
}
# The simulated nodes' ports are closed, so every probe fails: while no load runs against our monitor
# (settling, the other system's runs), its unhealthy and suspicion timeouts are held at 1h.
hold_af_timeouts() {
  psql_ "$port_af" -d autofailover -c "ALTER SYSTEM SET autofailover.node_considered_unhealthy_timeout = '1h'" \
    -c "ALTER SYSTEM SET autofailover.primary_suspect_timeout = '1h'" \
    -c "SELECT pg_reload_conf()" >/dev/null
}
registered=0
echo "# $(date -u '+%F %T') UTC, $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg), clients=$clients, ${duration}s per run, rate=N calls/s, autofailover probes: $af_probes, steady_answer_slots: $af_steady_slots"
printf "%-14s %6s %8s %8s %8s %9s %11s %13s  %s\n" monitor nodes calls/s p50_ms p99_ms max_ms svc_p99_ms steady_p99_ms goals_after
for n in "${sizes[@]}"; do
  # --- register and settle both monitors up to n nodes ---
  hold_af_timeouts
  psql_ "$port_af" -d autofailover -c "SELECT count(*) FROM generate_series($((registered + 1)), $n) i,
      autofailover.register_node('bench', '127.0.0.1', 10000 + i, 'b' || i, group_id => (i - 1) / 3)" >/dev/null
  [ "$af_probes" = on ] || psql_ "$port_af" -d autofailover -c "INSERT INTO autofailover.node_health (node_id, health,
      last_health_check) SELECT node_id, 'good', clock_timestamp() FROM autofailover.nodes
      ON CONFLICT (node_id) DO UPDATE SET health = 'good', last_health_check = clock_timestamp()" >/dev/null
  psql_ "$port_af" -d autofailover -c "CALL bench_settle()"
  # pg_auto_failover: one formation per group; a standby registers once its primary is up.
  for k in 0 1 2; do
    psql_ "$port_pgaf" -d pg_auto_failover -c "SELECT count(*) FROM generate_series($((registered + 1)), $n) i,
        LATERAL (SELECT CASE WHEN $k = 0 AND (i - 1) % 3 = 0 THEN pgautofailover.create_formation('g' || (i - 1) / 3,
                 'pgsql', 'postgres', true, 0)::text END) f,
        LATERAL pgautofailover.register_node('g' || (i - 1) / 3, '127.0.0.1', 10000 + i, 'postgres', 'b' || i, 7000000000 + (i - 1) / 3, i)
        WHERE (i - 1) % 3 = $k" >/dev/null
    psql_ "$port_pgaf" -d pg_auto_failover -c "UPDATE pgautofailover.node SET health = 1, healthchecktime = now()" \
      -c "CALL bench_pgaf_settle()" >/dev/null
  done
  registered=$n
  # --- measure, alternating ---
  af_goals() { psql_ "$port_af" -d autofailover -Atc "SELECT string_agg(goal_state || '=' || c, ',' ORDER BY goal_state)
      FROM (SELECT goal_state, count(*) c FROM autofailover.nodes GROUP BY 1) s"; }
  pgaf_goals() { psql_ "$port_pgaf" -d pg_auto_failover -Atc "SELECT string_agg(goalstate || '=' || c, ',' ORDER BY goalstate)
      FROM (SELECT goalstate, count(*) c FROM pgautofailover.node GROUP BY 1) s"; }
  before_af=$(af_goals); before_pgaf=$(pgaf_goals)
  ( sleep 2.5; psql_ "$port_af" -d autofailover -c "ALTER SYSTEM RESET autofailover.node_considered_unhealthy_timeout" \
    -c "ALTER SYSTEM RESET autofailover.primary_suspect_timeout" \
      -c "SELECT pg_reload_conf()" >/dev/null ) &
  read -r af_rate af_p50 af_p99 af_max af_svc af_steady < <(run_load "$port_af" autofailover node_active.sql "$n" af)
  wait
  # Once its load stops, every simulated node is silent with failing probes, and the monitor would
  # rightly fail the groups over while the other system is measured: hold the timeouts off again.
  after_af=$(af_goals)
  hold_af_timeouts
  read -r pg_rate pg_p50 pg_p99 pg_max pg_svc pg_steady < <(run_load "$port_pgaf" pg_auto_failover pgaf_node_active.sql "$n" pgaf)
  after_pgaf=$(pgaf_goals)
  printf "%-14s %6d %8s %8s %8s %9s %11s %13s  %s\n" autofailover "$n" "$af_rate" "$af_p50" "$af_p99" "$af_max" "$af_svc" "$af_steady" \
    "before[$before_af] after[$after_af]"
  printf "%-14s %6d %8s %8s %8s %9s %11s %13s  %s\n" pg_auto_failover "$n" "$pg_rate" "$pg_p50" "$pg_p99" "$pg_max" "$pg_svc" "$pg_steady" \
    "before[$before_pgaf] after[$after_pgaf]"
  /usr/bin/python3 -c 'import sys; a=[float(x) for x in sys.argv[1:]]
r = lambda x, y: f"{x / y:.2f}" if y else "n/a"
print(f"ratio            {int(a[6]):6d}  calls/s ours/pgaf {r(a[0], a[3])}  p50 pgaf/ours {r(a[4], a[1])}  p99 pgaf/ours {r(a[5], a[2])}  (>1: autofailover better)")' \
    "$af_rate" "$af_p50" "$af_p99" "$pg_rate" "$pg_p50" "$pg_p99" "$n"
  grep -hE "aborted|ERROR" "$work"/pgbench_af.out "$work"/pgbench_pgaf.out | head -3 || true
  # Unconstrained, a round over all nodes may take longer than the unhealthy timeout: hold it off, so
  # the cost is that of heartbeats, not of failovers the slow rounds would cause.
  # (still held since the end of the rate-limited run; the next size's run resets them in its warm-up)
  cost_rows+=("$(cost "$port_af" af autofailover node_active.sql autofailover "$n")")
  psql_ "$port_af" -d autofailover -Atc "SELECT '# autofailover heartbeats answered from shared memory so far: ' ||
      answers_from_cache || ' (nodes with a cached answer now: ' || nodes_with_answer || ')'
      FROM autofailover._steady_answer_counts()"
  cost_rows+=("$(cost "$port_pgaf" pgaf pg_auto_failover pgaf_node_active.sql pg_auto_failover "$n")")
done
# The same calls unconstrained: server CPU per call (bench/cpu_per_call.py), which a busy machine skews
# far less than latency. "worker": autofailover's health check (probing all N nodes every second);
# pg_auto_failover's health checks are off here.
echo "# server CPU per node_active call (unconstrained pgbench, ${cost_seconds}s, $clients clients)"
printf "%-16s %6s %8s %12s %9s %8s %7s\n" monitor nodes calls/s backend_us/call backends worker other
printf "%s\n" "${cost_rows[@]}"
echo "# end $(date -u '+%T') UTC, load: $(cut -d' ' -f1-3 /proc/loadavg)"
