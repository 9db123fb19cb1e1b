#!/usr/bin/env bash
# make soak: the seeded nemesis (tests/faults/test_nemesis.py) for many rounds on the single-monitor shape of the
# fault suite (network namespaces; root), then its section of docs/failure-tests.md (tests/faults/report.py --soak).
# Usage: scripts/soak.sh [BUILD_DIR]. Settings by environment: AUTOFAILOVER_SOAK_ROUNDS (100),
# AUTOFAILOVER_NEMESIS_SEED (random, printed first), and those of scripts/faults.sh (AUTOFAILOVER_FAULTS_*).
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
export AUTOCTL=${AUTOCTL:-/usr/local/bin/autoctl}
export AUTOFAILOVER_BUILT_AUTOCTL=${AUTOFAILOVER_BUILT_AUTOCTL:-$(realpath "$BUILD/autoctl/autoctl" 2>/dev/null)}
rounds=${AUTOFAILOVER_SOAK_ROUNDS:-100}
seed=${AUTOFAILOVER_NEMESIS_SEED:-$(/usr/bin/python3 -c 'import random; print(random.SystemRandom().randrange(1 << 31))')}
RESULTS=$BUILD/soak-results.jsonl
LOG=$BUILD/soak-pytest.log
mkdir -p "$BUILD"
: > "$RESULTS"
results_abs=$(realpath "$RESULTS")
echo "soak: seed $seed, $rounds rounds; replay: AUTOFAILOVER_NEMESIS_SEED=$seed AUTOFAILOVER_SOAK_ROUNDS=$rounds make soak"
echo "soak: one round k alone: AUTOFAILOVER_NEMESIS_SEED=$seed AUTOFAILOVER_NEMESIS_ROUNDS=$rounds" \
     "/usr/bin/python3 -m pytest -v -s tests/faults/test_nemesis.py -k 'round[k-1]'"
/usr/bin/python3 tests/faults/netns.py cleanup >/dev/null
started=$(date +%s)
( cd tests/faults && AUTOFAILOVER_FAULTS_REPORT=$results_abs AUTOFAILOVER_NEMESIS_SEED=$seed \
    AUTOFAILOVER_NEMESIS_ROUNDS=$rounds /usr/bin/python3 -m pytest -v -s -p no:cacheprovider -rs test_nemesis.py \
    -k round ) 2>&1 | tee "$LOG" | grep --line-buffered -E '^\[(nemesis|R[0-9]+)\]|PASSED|FAILED|ERROR'
status=${PIPESTATUS[0]}            # pytest's: a failing round fails `make soak`
/usr/bin/python3 tests/faults/netns.py cleanup >/dev/null
/usr/bin/python3 tests/faults/report.py "$RESULTS" docs/failure-tests.md --soak --wall-s "$(( $(date +%s) - started ))" \
    --commit "$(git describe --always --dirty 2>/dev/null || echo unknown)" || status=1
echo "soak: seed $seed, $rounds rounds, pytest exit status $status; wall time $(( $(date +%s) - started )) s;" \
     "log $LOG; page docs/failure-tests.md"
exit "$status"
