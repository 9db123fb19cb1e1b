#!/usr/bin/env bash
# make check-deb-fresh: the .deb of `make deb` on a fresh Debian 12. debootstrap builds a new minimal bookworm
# root file system (nothing of this machine's packages, users or `make install` in it) from the Debian mirror
# this machine's apt uses; inside it (chroot), apt-get installs the package and pulls its dependencies from the
# mirror, then the smoke test runs from the installed files only: scripts/demo.sh with AUTOCTL=/usr/bin/autoctl
# (monitor + two nodes, scram + TLS, an application writing through the multi-host URI), a switchover, and the
# keeper restarted after the switchover. The chroot shares this machine's kernel and network namespace (ports
# below), nothing else. Root only. The root file system is removed at the end unless AUTOFAILOVER_FRESH_KEEP=1.
# usage: check-deb-fresh.sh BUILD_DIR
set -euo pipefail

build=${1:?usage: check-deb-fresh.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
root=${AUTOFAILOVER_FRESH_ROOT:-/var/tmp/autofailover-fresh-root}
# Ports of the smoke formation inside the chroot (monitor, node1, node2).
port=${AUTOFAILOVER_FRESH_PORT:-7380}
user=autofailover
suite=bookworm
apt_lock=/tmp/autofailover-apt.lock

step() { echo "check-deb-fresh: [$(date -u +%T)] $*"; }
die() { echo "check-deb-fresh: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot)"
debs=("$build"/autofailover_*.deb)
[ -f "${debs[0]}" ] || die "no package in $build; run make deb first"
deb=${debs[0]}

# The Debian mirror and the security archive as this machine's apt has them (deb822 or one-line format).
debian_uris() {
    { cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p'
      grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | sed 's/\[[^]]*\]//' | awk '{print $2}'
    } | tr ' ' '\n' | grep -E '^https?://' | sort -u
}
mirror=$(debian_uris | grep -E '/debian/?$' | head -n 1 || true)
security=$(debian_uris | grep -E '/debian-security/?$' | head -n 1 || true)
[ -n "$mirror" ] || die "no Debian mirror found in this machine's apt sources"

if ! command -v debootstrap >/dev/null; then
    step "installing debootstrap"
    flock -o "$apt_lock" apt-get install -y -qq debootstrap >/dev/null
fi

in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root "$@"; }

mounted=()
cleanup() {
    local status=$?
    if [ -d "$root/work" ]; then
        AUTOFAILOVER_DEMO_DIR=/work/demo in_root bash /work/demo-stop.sh >/dev/null 2>&1 || true
    fi
    # Whatever still runs with the chroot as its root (a keeper or postmaster left by a failure).
    for proc in /proc/[0-9]*; do
        if [ "$(readlink "$proc/root" 2>/dev/null)" = "$root" ]; then kill -KILL "${proc#/proc/}" 2>/dev/null || true; fi
    done
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
    if [ "${AUTOFAILOVER_FRESH_KEEP:-}" != 1 ]; then rm -rf --one-file-system "$root"; fi
    if [ "$status" -eq 0 ]; then step "PASSED"; else step "FAILED"; fi
    exit "$status"
}
trap cleanup EXIT

rm -rf --one-file-system "$root"
step "debootstrap $suite (minbase) into $root"
debootstrap --variant=minbase "$suite" "$root" "$mirror" > "$build/check-deb-fresh.debootstrap.log" 2>&1 \
    || { tail -n 20 "$build/check-deb-fresh.debootstrap.log" >&2; die "debootstrap failed"; }
{
    echo "deb $mirror $suite main"
    echo "deb $mirror $suite-updates main"
    [ -z "$security" ] || echo "deb $security $suite-security main"
} > "$root/etc/apt/sources.list"
# A package's postinst must not start services in the chroot, and postgresql-common must not create its own
# "main" cluster: the formation is the only Postgres here.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/etc/postgresql-common"
echo "create_main_cluster = false" > "$root/etc/postgresql-common/createcluster.conf"

for fs in proc dev dev/pts dev/shm; do
    mkdir -p "$root/$fs"
    case $fs in
        proc) mount -t proc proc "$root/proc" ;;
        dev) mount --bind /dev "$root/dev" ;;
        dev/pts) mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts" ;;
        dev/shm) mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm" ;;
    esac
    mounted+=("$root/$fs")
done
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

mkdir -p "$root/work"
cp "$deb" "$root/work/"
cp "$src/scripts/demo.sh" "$src/scripts/demo-stop.sh" "$root/work/"
packages_before=$(in_root dpkg-query -W -f='.\n' | wc -l)
step "fresh root: $packages_before packages; apt-get install ./$(basename "$deb")"
in_root apt-get update -qq
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "/work/$(basename "$deb")" \
    > "$build/check-deb-fresh.apt.log" 2>&1 || { tail -n 30 "$build/check-deb-fresh.apt.log" >&2; die "apt-get install failed"; }
step "installed: $(in_root dpkg-query -W -f='${Package} ${Version}' autofailover);" \
    "$(( $(in_root dpkg-query -W -f='.\n' | wc -l) - packages_before )) packages pulled from the mirror"
[ -z "$(in_root dpkg --verify autofailover)" ] || die "installed files differ from the package"
in_root test -x /usr/bin/autoctl
in_root test -x /usr/lib/postgresql/15/bin/pg_ctl
in_root useradd --system --create-home --home-dir /var/lib/$user --shell /bin/bash $user

step "smoke test: monitor + two nodes from the installed files (ports $port-$((port + 2)))"
in_root env AUTOCTL=/usr/bin/autoctl AUTOFAILOVER_DEMO_DIR=/work/demo AUTOFAILOVER_DEMO_PORT="$port" \
    AUTOFAILOVER_TEST_USER=$user bash /work/demo.sh | sed 's/^/  /'
operator_uri="postgres:///autofailover?host=/work/demo/monitor&port=$port"
autoctl() { in_root runuser -u $user -- env AUTOFAILOVER_MONITOR="$operator_uri" /usr/bin/autoctl "$@"; }

step "switchover with the installed autoctl"
autoctl perform switchover --wait 120 | tail -n 3 | sed 's/^/  /'
# After a switchover node2 writes: ask it directly, over its Unix socket.
in_root runuser -u $user -- /usr/lib/postgresql/15/bin/psql -X -At -h /tmp -p $((port + 2)) -d postgres \
    -c 'SELECT pg_is_in_recovery()' | grep -qx f || die "node2 is not the writable primary after the switchover"
autoctl show state | sed 's/^/  /'

step "the old primary's keeper restarted: node1 is a secondary again"
AUTOFAILOVER_DEMO_DIR=/work/demo in_root bash -c 'kill -TERM "$(head -n 1 /work/demo/node1.keeper/keeper.pid)"'
for _ in $(seq 300); do
    in_root test -e /work/demo/node1/postmaster.pid || break
    sleep 0.1
done
in_root runuser -u $user -- setsid /usr/bin/autoctl run --pgdata /work/demo/node1 </dev/null \
    >>"$root/work/demo/node1.keeper.log" 2>&1 &
# Secondary again: node1's Postgres answers and is in recovery, and the monitor shows a healthy formation.
rejoined=""
for _ in $(seq 1200); do
    rejoined=$(in_root runuser -u $user -- /usr/lib/postgresql/15/bin/psql -X -At -h /tmp -p $((port + 1)) \
        -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null || true)
    [ "$rejoined" = t ] && break
    sleep 0.1
done
[ "$rejoined" = t ] || die "node1 is not in recovery 120 s after its keeper's restart"
autoctl show state --wait 120 | sed 's/^/  /'
