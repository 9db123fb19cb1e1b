#!/usr/bin/env bash
# The full failure-test matrix on isolated hosts (network namespaces; needs root), then docs/failure-tests.md.
# Usage: scripts/faults.sh [BUILD_DIR]   (make faults). Settings by environment:
#   AUTOFAILOVER_NEMESIS_ROUNDS (5), AUTOFAILOVER_NEMESIS_SEED (random, printed), AUTOFAILOVER_FAULTS_HOLD (6),
#   AUTOFAILOVER_FAULTS_RATE (50), AUTOFAILOVER_FAULTS_SETTINGS ("name=value,..." monitor GUCs / keeper timeouts),
#   AUTOFAILOVER_NEMESIS_HA_ROUNDS (3): nemesis rounds against the monitor-HA shape (0: none)
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
# The installed autoctl (make faults installs first), which the unprivileged test user can run wherever the
# build tree is; the tests check it is the one in $BUILD (tests/common/installed.py).
export AUTOCTL=${AUTOCTL:-/usr/local/bin/autoctl}
export AUTOFAILOVER_BUILT_AUTOCTL=${AUTOFAILOVER_BUILT_AUTOCTL:-$(realpath "$BUILD/autoctl/autoctl" 2>/dev/null)}
RESULTS=$BUILD/faults-results.jsonl
LOG=$BUILD/faults-pytest.log
mkdir -p "$BUILD"
: > "$RESULTS"
export AUTOFAILOVER_FAULTS_REPORT=$(realpath "$RESULTS")
/usr/bin/python3 tests/faults/netns.py cleanup >/dev/null
started=$(date +%s)
( cd tests/faults && /usr/bin/python3 -m pytest -v -s -p no:cacheprovider -rs test_harness.py test_scenarios.py \
    test_nemesis.py test_monitor_ha.py test_backups.py ) 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}            # pytest's, not tee's: a failing scenario fails `make faults`
# The nemesis against the monitor-HA shape (3 etcd, 2 monitors): its own pytest run, the shape is per module.
if [ "${AUTOFAILOVER_NEMESIS_HA_ROUNDS:-3}" -gt 0 ]; then
    ( cd tests/faults && AUTOFAILOVER_NEMESIS_SHAPE=monitor-ha AUTOFAILOVER_NEMESIS_ROUNDS=${AUTOFAILOVER_NEMESIS_HA_ROUNDS:-3} \
        /usr/bin/python3 -m pytest -v -s -p no:cacheprovider -rs test_nemesis.py -k round ) 2>&1 | tee -a "$LOG"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
/usr/bin/python3 tests/faults/netns.py cleanup >/dev/null
# the page is written also when scenarios failed (their rows say so)
/usr/bin/python3 tests/faults/report.py "$RESULTS" docs/failure-tests.md --wall-s "$(( $(date +%s) - started ))" \
    --commit "$(git describe --always --dirty 2>/dev/null || echo unknown)" --pytest-status "$status" || status=1
grep -E '^\[(S|P|N|M|F|R|H|B)[0-9]' "$LOG" || true
echo "faults: pytest exit status $status; wall time $(( $(date +%s) - started )) s; page docs/failure-tests.md"
exit "$status"
