#!/usr/bin/env bash
# Idempotent: installs the Debian 12 packages the build, the tests and the demo
# need, only when one is missing, and creates the unprivileged OS user that runs
# PostgreSQL servers in tests and the demo (PostgreSQL refuses to run as root).
set -euo pipefail

packages=(
  g++ make cmake pkg-config
  postgresql-15 postgresql-server-dev-15 postgresql-contrib
  libpq-dev libpqxx-dev libcli11-dev libfmt-dev catch2 nlohmann-json3-dev
  python3 python3-pytest python3-psycopg
  iproute2 util-linux procps
  openssl
  etcd-server libcpp-httplib-dev
  haproxy python3-prometheus-client
  pgbouncer
  pgbackrest
  dpkg-dev debootstrap
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

user=${AUTOFAILOVER_TEST_USER:-autofailover}
if [ "$(id -u)" -eq 0 ] && ! id -u "$user" >/dev/null 2>&1; then
  useradd --system --create-home --home-dir "/var/lib/$user" --shell /bin/bash "$user"
  echo "install-deps: created system user $user"
fi
# A second unprivileged user: the hostile e2e test (tests/e2e/test_hostile.py) checks that it can log in
# nowhere on a default formation. It owns nothing and has no login shell.
other=${AUTOFAILOVER_OTHER_USER:-autofailover_other}
if [ "$(id -u)" -eq 0 ] && ! id -u "$other" >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$other"
  echo "install-deps: created system user $other"
fi
