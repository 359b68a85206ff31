#!/usr/bin/env bash
# The one test command (README, .ci/run): every part's suite, each installing what it needs itself.
# A failing part does not stop the others, so one run shows every failure; the exit code is non-zero
# when any part failed.
set -uo pipefail
cd "$(dirname "$0")/.."

parts=(${MUNERO_TEST_PARTS:-rust backend frontend stack deploy vm})
passed=0 failed=0 failed_names=()
for part in "${parts[@]}"; do
  script="scripts/test-$part.sh"
  echo "=== $part: $script ($(date -u +%H:%M:%S))"
  start=$(date +%s)
  if bash "$script"; then
    passed=$((passed + 1)); verdict=ok
  else
    failed=$((failed + 1)); failed_names+=("$part"); verdict=FAILED
  fi
  echo "=== $part: $verdict in $(( $(date +%s) - start ))s"
done

if ((failed)); then echo "failed parts: ${failed_names[*]}"; fi
echo "suites: $passed passed, $failed failed"
((failed == 0))
