#!/usr/bin/env bash
# make demo-stop: stops the demo's keepers (which stop their Postgres) and the
# monitor, by pid. Keeps the work directory for its logs; the next `make demo`
# removes it.
set -uo pipefail

demo_dir=${AUTOFAILOVER_DEMO_DIR:-/tmp/autofailover-demo}
# Seconds to wait for each process to exit after SIGTERM before SIGKILL.
stop_timeout=${AUTOFAILOVER_DEMO_STOP_TIMEOUT:-30}

if [ ! -d "$demo_dir" ]; then
    echo "demo-stop: no demo in $demo_dir"
    exit 0
fi
cd "$demo_dir"

first_line() { [ -f "$1" ] && head -n 1 "$1" || true; }
pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

stop_pid() {  # what pid signal
    local what=$1 pid=$2 signal=$3 waited=0
    pid_alive "$pid" || return 0
    echo "demo-stop: stopping $what (pid $pid)"
    kill "-$signal" "$pid" 2>/dev/null || true
    while pid_alive "$pid" && [ "$waited" -lt $((stop_timeout * 10)) ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    if pid_alive "$pid"; then
        echo "demo-stop: $what (pid $pid) ignored SIG$signal for ${stop_timeout}s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
}

# Keepers first, so none restarts its Postgres; they stop Postgres themselves.
for keeper_dir in "$demo_dir"/node*.keeper; do
    [ -d "$keeper_dir" ] || continue
    stop_pid "keeper of $(basename "${keeper_dir%.keeper}")" "$(first_line "$keeper_dir/keeper.pid")" TERM
done
# SIGINT is the postmaster's fast shutdown (SIGTERM would wait for clients).
# Whatever Postgres is still up (keeper killed earlier, or it keeps Postgres running).
for pgdata in "$demo_dir"/node* "$demo_dir"/monitor; do
    [ -f "$pgdata/PG_VERSION" ] || continue
    stop_pid "postgres $(basename "$pgdata")" "$(first_line "$pgdata/postmaster.pid")" INT
done
echo "demo-stop: stopped; $demo_dir is kept for its logs (the next make demo removes it)"
