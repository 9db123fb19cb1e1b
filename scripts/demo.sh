#!/usr/bin/env bash
# make demo: a monitor and two data nodes on 127.0.0.1, run by the unprivileged
# OS user $AUTOFAILOVER_TEST_USER in $AUTOFAILOVER_DEMO_DIR, keepers in the
# background (log and pid files there). Waits until one primary + one
# secondary, prints the state, the client URI and how to stop.
set -euo pipefail

demo_dir=${AUTOFAILOVER_DEMO_DIR:-/tmp/autofailover-demo}
demo_user=${AUTOFAILOVER_TEST_USER:-autofailover}
monitor_port=${AUTOFAILOVER_DEMO_PORT:-6400}
node1_port=$((monitor_port + 1))
node2_port=$((monitor_port + 2))
# How long the demo waits for the formation to become healthy.
healthy_timeout=${AUTOFAILOVER_DEMO_TIMEOUT:-120}
autoctl=${AUTOCTL:-$(command -v autoctl || echo /usr/local/bin/autoctl)}

as_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$demo_user" -- "$@"
    else
        "$@"
    fi
}

if [ "$(id -u)" -ne 0 ] && [ "$(id -un)" != "$demo_user" ]; then
    echo "demo: run as root (make demo) or as the user $demo_user" >&2
    exit 1
fi
if [ ! -x "$autoctl" ]; then
    echo "demo: autoctl not found ($autoctl); run 'make install' first" >&2
    exit 1
fi

pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
first_line() { [ -f "$1" ] && head -n 1 "$1" || true; }

running=""
for pidfile in "$demo_dir"/monitor/postmaster.pid "$demo_dir"/node*.keeper/keeper.pid "$demo_dir"/node*/postmaster.pid; do
    pid=$(first_line "$pidfile")
    if pid_alive "$pid"; then running="$running $pid"; fi
done
if [ -n "$running" ]; then
    echo "demo: a demo is already running in $demo_dir (pids:$running)."
    echo "demo: its state:"
    (cd "$demo_dir" && AUTOFAILOVER_MONITOR="postgres://$demo_user@127.0.0.1:$monitor_port/autofailover" \
        as_user "$autoctl" show state) || true
    echo "demo: stop it with: make demo-stop"
    exit 0
fi

# A stopped earlier demo leaves its directory for its logs; start from scratch.
rm -rf "$demo_dir"
mkdir -p "$demo_dir"
chown "$demo_user:" "$demo_dir"
chmod 0755 "$demo_dir"
cd "$demo_dir"

start_ns=$(date +%s%N)
elapsed() { echo "$(( ($(date +%s%N) - start_ns) / 1000000 ))" | awk '{printf "%.1f", $1/1000}'; }

echo "demo: [$(elapsed)s] creating the monitor on 127.0.0.1:$monitor_port"
monitor_uri=$(as_user "$autoctl" create monitor --pgdata "$demo_dir/monitor" --pgport "$monitor_port" \
    --hostname 127.0.0.1 --auth trust --no-ssl)
export AUTOFAILOVER_MONITOR="postgres://$demo_user@127.0.0.1:$monitor_port/autofailover"

start_keeper() {  # name
    # setsid: the keeper outlives this script and the terminal; its pid is in <node>.keeper/keeper.pid.
    as_user setsid "$autoctl" run --pgdata "$demo_dir/$1" </dev/null >>"$demo_dir/$1.keeper.log" 2>&1 &
}

echo "demo: [$(elapsed)s] creating node1 (primary) on 127.0.0.1:$node1_port"
as_user "$autoctl" create postgres --pgdata "$demo_dir/node1" --pgport "$node1_port" --hostname 127.0.0.1 \
    --name node1 --monitor "$monitor_uri"
start_keeper node1
echo "demo: [$(elapsed)s] creating node2 (standby) on 127.0.0.1:$node2_port"
as_user "$autoctl" create postgres --pgdata "$demo_dir/node2" --pgport "$node2_port" --hostname 127.0.0.1 \
    --name node2 --monitor "$monitor_uri"
start_keeper node2

echo "demo: [$(elapsed)s] waiting for one primary and one secondary"
as_user "$autoctl" show state --wait "$healthy_timeout" >/dev/null
echo "demo: formation healthy (one primary, one secondary) $(elapsed)s after start"
echo
as_user "$autoctl" show state
client_uri=$(as_user "$autoctl" show uri | awk '$1 == "formation" { print $3 }')
client_uri=${client_uri/postgres:\/\//postgres://$demo_user@}
echo
echo "Client URI (writes go to the primary, wherever it is):"
echo "  $client_uri"
echo "Try:"
echo "  psql '$client_uri' -c 'CREATE TABLE IF NOT EXISTS demo(t timestamptz); INSERT INTO demo VALUES (now())'"
echo "  runuser -u $demo_user -- env AUTOFAILOVER_MONITOR=$AUTOFAILOVER_MONITOR autoctl perform switchover"
echo "Logs: $demo_dir/*.log"
echo "Stop: make demo-stop (stops keepers and servers by pid; keeps $demo_dir for its logs, the next make demo removes it)"
