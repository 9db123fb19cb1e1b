#!/usr/bin/env bash
# make demo: a monitor and two data nodes on 127.0.0.1, run by the unprivileged
# OS user $AUTOFAILOVER_TEST_USER in $AUTOFAILOVER_DEMO_DIR, keepers in the
# background (log and pid files there), with autoctl's defaults: scram-sha-256
# and TLS. Waits until one primary + one secondary, creates the application
# role demo_app (password in a 0600 pgpass file), checks that the client URI
# works, prints the state, the client URI and how to stop.
set -euo pipefail

demo_dir=${AUTOFAILOVER_DEMO_DIR:-/tmp/autofailover-demo}
demo_user=${AUTOFAILOVER_TEST_USER:-autofailover}
monitor_port=${AUTOFAILOVER_DEMO_PORT:-6400}
node1_port=$((monitor_port + 1))
node2_port=$((monitor_port + 2))
# How long the demo waits for the formation to become healthy.
healthy_timeout=${AUTOFAILOVER_DEMO_TIMEOUT:-120}
autoctl=${AUTOCTL:-$(command -v autoctl || echo /usr/local/bin/autoctl)}
psql=/usr/lib/postgresql/15/bin/psql
# The operator (the demo user, the monitor's superuser) over the monitor's Unix socket (peer).
operator_uri="postgres:///autofailover?host=$demo_dir/monitor&port=$monitor_port"
# Secrets, each in a file of mode 0600 owned by the demo user; never on a command line.
replication_password_file=$demo_dir/replication.password
monitor_password_file=$demo_dir/monitor/autofailover_keeper.password
app_pgpass=$demo_dir/demo_app.pgpass

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
    (cd "$demo_dir" && AUTOFAILOVER_MONITOR="$operator_uri" as_user "$autoctl" show state) || true
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

secret_file() {  # path: a new file of mode 0600 owned by the demo user, content on stdin
    (umask 077 && cat > "$1")
    chown "$demo_user:" "$1"
}

echo "demo: [$(elapsed)s] creating the monitor on 127.0.0.1:$monitor_port (scram-sha-256, TLS)"
monitor_uri=$(as_user "$autoctl" create monitor --pgdata "$demo_dir/monitor" --pgport "$monitor_port" \
    --hostname 127.0.0.1)
export AUTOFAILOVER_MONITOR=$operator_uri
# The password of autofailover_replicator, the same file for every node of the formation.
openssl rand -hex 24 | secret_file "$replication_password_file"

start_keeper() {  # name
    # setsid: the keeper outlives this script and the terminal; its pid is in <node>.keeper/keeper.pid.
    as_user setsid "$autoctl" run --pgdata "$demo_dir/$1" </dev/null >>"$demo_dir/$1.keeper.log" 2>&1 &
}

create_node() {  # name port
    as_user "$autoctl" create postgres --pgdata "$demo_dir/$1" --pgport "$2" --hostname 127.0.0.1 --name "$1" \
        --monitor "$monitor_uri" --monitor-password-file "$monitor_password_file" \
        --replication-password-file "$replication_password_file"
}

echo "demo: [$(elapsed)s] creating node1 (primary) on 127.0.0.1:$node1_port"
create_node node1 "$node1_port"
start_keeper node1
echo "demo: [$(elapsed)s] creating node2 (standby) on 127.0.0.1:$node2_port"
create_node node2 "$node2_port"
start_keeper node2

echo "demo: [$(elapsed)s] waiting for one primary and one secondary"
as_user "$autoctl" show state --wait "$healthy_timeout" >/dev/null
echo "demo: formation healthy (one primary, one secondary) $(elapsed)s after start"

# The application's role, created by the demo user over the primary's Unix socket (peer); the
# password reaches psql on stdin and the client through a pgpass file, never a command line.
app_password=$(openssl rand -hex 16)
printf '*:*:*:demo_app:%s\n' "$app_password" | secret_file "$app_pgpass"
as_user "$psql" -X -q -v ON_ERROR_STOP=1 \
    "host=/tmp,/tmp port=$node1_port,$node2_port dbname=postgres target_session_attrs=read-write" <<SQL
CREATE ROLE demo_app LOGIN PASSWORD '$app_password';
CREATE SCHEMA demo_app AUTHORIZATION demo_app;
SQL
unset app_password
client_uri=$(as_user "$autoctl" show uri --sslmode require | awk '$1 == "formation" { print $3 }')
client_uri=${client_uri/postgres:\/\//postgres://demo_app@}
PGPASSFILE=$app_pgpass "$psql" -X -q -v ON_ERROR_STOP=1 "$client_uri" \
    -c 'CREATE TABLE IF NOT EXISTS demo(t timestamptz); INSERT INTO demo VALUES (now())'
echo "demo: [$(elapsed)s] role demo_app created; the client URI below wrote a row over TLS"
echo
as_user "$autoctl" show state
echo
echo "Client URI (writes go to the primary, wherever it is; TLS, password in $app_pgpass):"
echo "  $client_uri"
echo "Try:"
echo "  PGPASSFILE=$app_pgpass psql '$client_uri' -c 'INSERT INTO demo VALUES (now())'"
echo "  runuser -u $demo_user -- env AUTOFAILOVER_MONITOR='$operator_uri' autoctl perform switchover"
echo "Logs: $demo_dir/*.log"
echo "Stop: make demo-stop (stops keepers and servers by pid; keeps $demo_dir for its logs, the next make demo removes it)"
