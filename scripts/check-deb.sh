#!/usr/bin/env bash
# make check-deb: installs the .deb of `make deb` with apt-get and runs a smoke test from the installed files only:
# scripts/demo.sh with AUTOCTL=/usr/bin/autoctl (a monitor and two nodes, scram + TLS, an application writing
# through the multi-host URI), a switchover, `autoctl show systemd` against the packaged unit templates; then it
# stops every process it started, purges the package, and puts back the files `make install` had left in the
# PostgreSQL directories the package shares with it, so `make install` and the other tests find the system as it was.
# Root only. Everything that touches the system runs under /tmp/autofailover-install.lock (apt-get also under
# /tmp/autofailover-apt.lock), as tests do.
# usage: check-deb.sh BUILD_DIR
set -euo pipefail

build=${1:?usage: check-deb.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
# Ports of the smoke formation (monitor, node1, node2) and its directory.
port=${AUTOFAILOVER_DEB_PORT:-7080}
demo_dir=${AUTOFAILOVER_DEB_DIR:-/tmp/autofailover-deb-smoke}
user=${AUTOFAILOVER_TEST_USER:-autofailover}
install_lock=/tmp/autofailover-install.lock
apt_lock=/tmp/autofailover-apt.lock

if [ "$(id -u)" -ne 0 ]; then
    echo "check-deb: run as root (apt-get install)" >&2
    exit 1
fi
debs=("$build"/autofailover_*.deb)
if [ ! -f "${debs[0]}" ]; then
    echo "check-deb: no package in $build; run make deb first" >&2
    exit 1
fi
deb=${debs[0]}

if [ "${CHECK_DEB_LOCKED:-}" != 1 ]; then
    # -o: servers started inside must not inherit the lock (COMMON.md).
    exec env CHECK_DEB_LOCKED=1 flock -o "$install_lock" bash "$0" "$@"
fi

backup=$(mktemp -d /tmp/autofailover-deb-backup.XXXXXX)
installed=0
step() { echo "check-deb: $*"; }

cleanup() {
    local status=$?
    AUTOFAILOVER_DEMO_DIR=$demo_dir bash "$src/scripts/demo-stop.sh" >/dev/null 2>&1 || true
    if [ "$installed" = 1 ]; then
        step "purging the package"
        flock -o "$apt_lock" apt-get purge -y -qq autofailover >/dev/null || status=1
    fi
    # What `make install` had put where the package installs (not owned by any package): back in place.
    if [ -d "$backup/root" ]; then
        cp -a "$backup/root/." /
        step "restored $(find "$backup/root" -type f | wc -l) file(s) of the previous make install"
    fi
    rm -rf "$backup"
    if [ "$status" -eq 0 ]; then step "PASSED"; else step "FAILED"; fi
    exit "$status"
}
trap cleanup EXIT

dpkg -s autofailover >/dev/null 2>&1 && { echo "check-deb: the package is installed already; purge it first" >&2; exit 1; }
# The package's files that exist already (from make install): kept aside, restored after the purge.
while IFS= read -r path; do
    path=${path#.}
    if [ -f "$path" ] && ! dpkg -S "$path" >/dev/null 2>&1; then
        mkdir -p "$backup/root$(dirname "$path")"
        cp -a "$path" "$backup/root$path"
    fi
done < <(dpkg-deb --fsys-tarfile "$deb" | tar -t | grep -v '/$')

step "apt-get install $deb"
flock -o "$apt_lock" apt-get install -y -qq "$deb" >/dev/null
installed=1
# Every file as packaged (no leftover of make install in its place).
changed=$(dpkg --verify autofailover || true)
[ -z "$changed" ] || { echo "check-deb: installed files differ from the package: $changed" >&2; exit 1; }
for f in /usr/bin/autoctl /usr/bin/autofailover-keeper "$(pg_config --pkglibdir)/autofailover.so" \
         "$(pg_config --pkglibdir)/autofailover_node.so" "$(pg_config --sharedir)/extension/autofailover.control" \
         /lib/systemd/system/autofailover-keeper@.service /usr/share/doc/autofailover/clients.md; do
    [ "$(dpkg -S "$f" 2>/dev/null | cut -d: -f1)" = autofailover ] || { echo "check-deb: $f not from the package" >&2; exit 1; }
done
step "$(dpkg-query -W -f='${Package} ${Version}: ${Depends}' autofailover)"
/usr/bin/autofailover-keeper --help >/dev/null

step "smoke test: monitor and two nodes from the installed files (ports $port-$((port + 2)), $demo_dir)"
AUTOCTL=/usr/bin/autoctl AUTOFAILOVER_DEMO_DIR=$demo_dir AUTOFAILOVER_DEMO_PORT=$port AUTOFAILOVER_TEST_USER=$user \
    bash "$src/scripts/demo.sh" | sed 's/^/  /'
operator_uri="postgres:///autofailover?host=$demo_dir/monitor&port=$port"
autoctl() { (cd "$demo_dir" && runuser -u "$user" -- env AUTOFAILOVER_MONITOR="$operator_uri" /usr/bin/autoctl "$@"); }
# The monitor's server loaded the packaged extension.
autoctl show settings >/dev/null
step "switchover with the installed autoctl"
autoctl perform switchover --wait 120 | tail -n 4 | sed 's/^/  /'
primary=$(autoctl show state --json | /usr/bin/python3 -c \
    'import json,sys; print([n["name"] for n in json.load(sys.stdin) if n["reported_state"] == "primary"][0])')
[ "$primary" = node2 ] || { echo "check-deb: after the switchover the primary is $primary, not node2" >&2; exit 1; }

step "systemd units: the packaged templates run what autoctl show systemd prints"
unit=$(autoctl show systemd --pgdata "$demo_dir/node1")
echo "$unit" | grep -qx "ExecStart=/usr/bin/autoctl run --pgdata $demo_dir/node1"
template=/lib/systemd/system/autofailover-keeper@.service
for key in Type Restart RestartSec TimeoutStopSec KillMode; do
    grep -qx "$(echo "$unit" | grep "^$key=")" "$template" || { echo "check-deb: $key differs in $template" >&2; exit 1; }
done
grep -qx 'ExecStart=/usr/bin/autoctl run --pgdata %I' "$template"
if command -v systemd-analyze >/dev/null; then
    instance=$(systemd-escape --path "$demo_dir/node1")
    verify_dir=$(mktemp -d)
    cp "$template" "$verify_dir/autofailover-keeper@$instance.service"
    cp /lib/systemd/system/autofailover-monitor@.service \
       "$verify_dir/autofailover-monitor@$(systemd-escape --path "$demo_dir/monitor").service"
    SYSTEMD_LOG_LEVEL=err systemd-analyze verify --man=no "$verify_dir"/*.service
    rm -rf "$verify_dir"
fi
AUTOFAILOVER_DEMO_DIR=$demo_dir bash "$src/scripts/demo-stop.sh" | sed 's/^/  /'
rm -rf "$demo_dir"
