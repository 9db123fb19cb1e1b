#!/usr/bin/env bash
# Runs the monitor's pg_regress (regress) or isolation (isolation) suite against
# a temporary PostgreSQL 15 instance that preloads the INSTALLED autofailover
# extension. PostgreSQL refuses to run as root, so the suite runs as the
# unprivileged test user in a scratch copy of this directory that it owns.
set -euo pipefail

kind=${1:?usage: run_pg_regress.sh regress|isolation}
src=$(cd "$(dirname "$0")" && pwd)
user=${AUTOFAILOVER_TEST_USER:-autofailover}
pg_config=${PG_CONFIG:-pg_config}
bindir=$("$pg_config" --bindir)
[ -x /usr/lib/postgresql/15/bin/initdb ] && bindir=/usr/lib/postgresql/15/bin
testdir=$("$pg_config" --pkglibdir)/pgxs/src/test

work=$(mktemp -d "/tmp/autofailover-$kind.XXXXXX")
cp -r "$src/." "$work/"
if [ "$(id -u)" -eq 0 ]; then
  chown -R "$user" "$work"
  as_user=(runuser -u "$user" --)
else
  as_user=()
fi

cd "$work"
status=0
case "$kind" in
  regress)
    "${as_user[@]}" "$testdir/regress/pg_regress" --temp-instance="$work/tmp_check" \
      --temp-config="$work/regress.conf" --bindir="$bindir" --inputdir="$work" --outputdir="$work" \
      --dbname=autofailover --schedule="$work/schedule" || status=$?
    ;;
  isolation)
    "${as_user[@]}" "$testdir/isolation/pg_isolation_regress" --temp-instance="$work/tmp_check" \
      --temp-config="$work/isolation.conf" --bindir="$bindir" --inputdir="$work" --outputdir="$work/output_iso" \
      --dbname=autofailover --schedule="$work/isolation_schedule" || status=$?
    ;;
  *)
    echo "unknown suite $kind" >&2
    exit 2
    ;;
esac

if [ "$status" -ne 0 ]; then
  for diffs in "$work/regression.diffs" "$work/output_iso/regression.diffs"; do
    [ -f "$diffs" ] && cat "$diffs"
  done
  for log in "$work"/tmp_check/log/postmaster.log; do
    [ -f "$log" ] && tail -n 40 "$log"
  done
  echo "kept $work for inspection" >&2
  exit "$status"
fi
rm -rf "$work"
